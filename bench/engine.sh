#!/usr/bin/env bash
# bench/engine.sh: the HTTP engine (`run-once --engine http`, release build) against
# `internet-monitor target`, and Debian's iperf3 as the reference, on a veth pair between two
# network namespaces made here (the accuracy lab of tests/accuracy_lab.rs, in shell):
#
#   (a) ceiling: the unshaped veth pair; ours with 4 and 1 streams against iperf3 -P 4 and -P 1
#       in the same run, per direction, and their ratio (goal >= 0.8: the engine must not be
#       the bottleneck on a gigabit line);
#   (b) CPU seconds per GB moved, of run-once (its rusage, from /usr/bin/time) and of the
#       target (utime + stime of /proc/PID/stat around the run), in the ceiling runs;
#   (c) RSS added by a test: run-once's peak RSS (ru_maxrss) in the 4-stream ceiling run less
#       its peak in a run-once that fails at once (nothing listens: connection refused), the
#       binary's own footprint (goal <= 8 MiB);
#   (d) accuracy: the link shaped with tbf to each of $RATES Mbit/s on both ends; iperf3 -P 1
#       and -P 4, ours with 1 and 4 streams, download and upload, error % against iperf3;
#   (e) data moved by one default test (10 s per direction, 4 streams: no --http-duration or
#       --http-streams given) on links shaped to 100 Mbit/s and 1 Gbit/s: what the sample
#       reports (downloaded_bytes + uploaded_bytes, what --data-budget adds up) and what the
#       client's interface counted (headers included, what a metered plan bills).
#
# Every direction runs $SECONDS_PER_DIRECTION s (iperf3 -t and --http-duration; the engine
# leaves its first fifth out as ramp-up) except (e). The target listens on 10.9.0.2:8080 in its
# namespace, the client is 10.9.0.1; tbf: `rate R burst 64kb latency 50ms` (256kb at 1 Gbit/s
# and above). Namespaces are named imbench<pid>c / imbench<pid>t and deleted on exit (with every
# process in them), as are those of an earlier run that was killed (its pid is gone).
#
# Needs root, iproute2 (ip, tc), iperf3, jq and GNU time (/usr/bin/time); a missing tool is
# installed with apt-get. Run from anywhere:
#
#     QUIET=900 bench/engine.sh
#
# Knobs (environment): BIN=path/to/internet-monitor skips the build; REV=commit builds that
# commit (see bench/common.sh); SECONDS_PER_DIRECTION=4; RATES="20 100 500" (Mbit/s);
# DEFAULT_RATES="100 1000" for (e) (empty: skip); QUIET=900 waits for other jobs (cargo,
# fuzzers) to finish before measuring; KEEP=1 keeps the scratch directory. Takes about
# 40 s for (a)-(c), 40 s per rate in (d) and 25 s per rate in (e), after the build.
set -euo pipefail

# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SECONDS_PER_DIRECTION=${SECONDS_PER_DIRECTION:-4}
RATES=${RATES:-20 100 500}
DEFAULT_RATES=${DEFAULT_RATES-100 1000}
CEILING_RATIO=0.8
RSS_GOAL_MIB=8
ERROR_GOAL_PERCENT=5

[[ $(id -u) == 0 ]] || die "needs root: it makes network namespaces and shapes links"
ensure_tool ip iproute2
ensure_tool tc iproute2
ensure_tool iperf3
ensure_tool jq
ensure_tool /usr/bin/time time
need_tools awk
bench_init engine
bench_binary

NS_C=imbench$$c NS_T=imbench$$t
CLIENT_IP=10.9.0.1 TARGET_IP=10.9.0.2 TARGET_PORT=8080 IPERF3_PORT=5201
TARGET_PID=

# kill_in NS: SIGKILL to every process in namespace NS.
kill_in() {
    local pid
    for pid in $(ip netns pids "$1" 2>/dev/null); do
        [[ $pid == "$$" ]] || kill -KILL "$pid" 2>/dev/null || true
    done
}
lab_down() {
    local ns
    for ns in "$NS_C" "$NS_T"; do
        kill_in "$ns"
        ip netns del "$ns" 2>/dev/null || true
    done
}
engine_cleanup() {
    local status=$?
    if [[ -n $TARGET_PID ]]; then
        kill -TERM "$TARGET_PID" 2>/dev/null || true
        wait "$TARGET_PID" 2>/dev/null || true
    fi
    lab_down
    (exit "$status")
    bench_cleanup
}
trap engine_cleanup EXIT

# Namespaces of a run that was killed: their creator's pid is gone.
for ns in $(ip netns list | awk '{ print $1 }'); do
    if [[ $ns =~ ^imbench([0-9]+)[ct]$ ]] && ! kill -0 "${BASH_REMATCH[1]}" 2>/dev/null; then
        log "removing $ns, left by an earlier run"
        kill_in "$ns"
        ip netns del "$ns" || true
    fi
done

ip netns add "$NS_C"
ip netns add "$NS_T"
ip link add name lab0 netns "$NS_C" type veth peer name lab0 netns "$NS_T"
ip -n "$NS_C" addr add "$CLIENT_IP/24" dev lab0
ip -n "$NS_T" addr add "$TARGET_IP/24" dev lab0
for ns in "$NS_C" "$NS_T"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set lab0 up
done

# shape MBIT: tbf on both ends (client -> target on the client's, the reverse on the target's).
shape() {
    local burst=64kb ns
    (($1 >= 1000)) && burst=256kb
    for ns in "$NS_C" "$NS_T"; do
        tc -n "$ns" qdisc replace dev lab0 root tbf rate "$1mbit" burst "$burst" latency 50ms
    done
}
unshape() {
    local ns
    for ns in "$NS_C" "$NS_T"; do
        tc -n "$ns" qdisc del dev lab0 root 2>/dev/null || true
    done
}

# iperf3_mbit down|up STREAMS SECONDS: the receiver's goodput in Mbit/s, one server per test.
iperf3_mbit() {
    local direction=$1 streams=$2 seconds=$3 pid i reverse=()
    [[ $direction == down ]] && reverse=(-R)
    : >"$WORK/iperf3-server.log"
    ip netns exec "$NS_T" iperf3 -s -1 -p "$IPERF3_PORT" --forceflush >"$WORK/iperf3-server.log" 2>&1 &
    pid=$!
    for ((i = 0; i < 2000; i++)); do
        grep -q 'Server listening' "$WORK/iperf3-server.log" && break
        kill -0 "$pid" 2>/dev/null || die "iperf3 -s exited: $(cat "$WORK/iperf3-server.log")"
        sleep 0.005
    done
    ip netns exec "$NS_C" iperf3 -c "$TARGET_IP" -p "$IPERF3_PORT" -J -t "$seconds" -P "$streams" \
        "${reverse[@]}" >"$WORK/iperf3.json" || die "iperf3 -c failed: $(head -c 2000 "$WORK/iperf3.json")"
    wait "$pid" || true
    jq -r '.end.sum_received.bits_per_second / 1e6 | . * 10 | round / 10' "$WORK/iperf3.json"
}

start_target() {
    local i
    : >"$WORK/target.log"
    ip netns exec "$NS_T" "$BIN" target --listen "$TARGET_IP:$TARGET_PORT" 2>>"$WORK/target.log" &
    TARGET_PID=$!
    for ((i = 0; i < 2000; i++)); do
        grep -q "listening on http://$TARGET_IP:$TARGET_PORT" "$WORK/target.log" && return 0
        kill -0 "$TARGET_PID" 2>/dev/null || die "the target exited: $(tail -5 "$WORK/target.log")"
        sleep 0.005
    done
    die "the target never logged its ready line: $(tail -5 "$WORK/target.log")"
}

# ours STREAMS DURATION [URL]: one run-once in the client's namespace; sets OK (1 on success),
# DOWN and UP (Mbit/s), MOVED (bytes, both directions), CPU_S (run-once's user + system s),
# RSS_KIB (its peak), TARGET_CPU_S (the target's utime + stime over the run) and WHY (the
# reason and message of a failure). STREAMS/DURATION "-": the defaults (flag not given).
RUN=0
ours() {
    local streams=$1 duration=$2 url=${3:-http://$TARGET_IP:$TARGET_PORT} args=() status=0 t0 t1
    RUN=$((RUN + 1))
    [[ $streams != - ]] && args+=(--http-streams "$streams")
    [[ $duration != - ]] && args+=(--http-duration "$duration")
    t0=$(cpu_ticks "$TARGET_PID")
    /usr/bin/time -f '%U %S %M' -o "$WORK/time" ip netns exec "$NS_C" "$BIN" run-once \
        --engine http --http-server "$url" --http-protocol cloudflare "${args[@]}" \
        --timeout 60s --db "$WORK/run-$RUN.redb" >"$WORK/sample.json" 2>"$WORK/run-once.log" || status=$?
    t1=$(cpu_ticks "$TARGET_PID")
    TARGET_CPU_S=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d / hz }')
    read -r user sys RSS_KIB < <(tail -n 1 "$WORK/time")
    CPU_S=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    if [[ $status == 0 ]] && [[ $(jq -r .outcome "$WORK/sample.json") == success ]]; then
        OK=1 WHY=
        DOWN=$(jq -r '.download_bytes_per_second * 8 / 1e6 | . * 10 | round / 10' "$WORK/sample.json")
        UP=$(jq -r '.upload_bytes_per_second * 8 / 1e6 | . * 10 | round / 10' "$WORK/sample.json")
    else
        OK=0 DOWN=- UP=-
        WHY="exit $status: $(jq -r '"\(.reason): \(.message)"' "$WORK/sample.json" 2>/dev/null || tail -n 3 "$WORK/run-once.log")"
        log "run-once ${args[*]} failed: $WHY"
    fi
    MOVED=$(jq -r '(.downloaded_bytes // 0) + (.uploaded_bytes // 0)' "$WORK/sample.json" 2>/dev/null || echo 0)
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
error_pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%+.1f", (a - b) / b * 100 }'; }
within() { awk -v e="$1" -v g="$2" 'BEGIN { if (e == "-") print "**MISSED**"; else if (e < 0 ? -e <= g : e <= g) print "met"; else print "**MISSED**" }'; }
per_gb() { awk -v s="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", s / (b / 1e9) }'; }

start_target
await_quiet
LOAD_START=$(loadavg)
S=$SECONDS_PER_DIRECTION
declare -a CEILING=() ACCURACY=() DEFAULTS=()
busy0=$(busy_ticks) wall0=$(date +%s.%N)

# --- (a), (b), (c): the ceiling, CPU and RSS --------------------------------------------------
log "(c) baseline: a run-once that fails at once (connection refused)"
ours 1 1s "http://$TARGET_IP:9"
IDLE_RSS_KIB=$RSS_KIB
for streams in 4 1; do
    log "(a) unshaped, $streams stream(s): iperf3 down, up; ours"
    ref_down=$(iperf3_mbit down "$streams" "$S")
    ref_up=$(iperf3_mbit up "$streams" "$S")
    ours "$streams" "${S}s"
    CEILING+=("$streams|$ref_down|$DOWN|$ref_up|$UP|$CPU_S|$TARGET_CPU_S|$MOVED|$RSS_KIB|$WHY")
done

# --- (d) accuracy --------------------------------------------------------------------------------
for rate in $RATES; do
    shape "$rate"
    for streams in 1 4; do
        log "(d) $rate Mbit/s, $streams stream(s): iperf3 down, up; ours"
        ref_down=$(iperf3_mbit down "$streams" "$S")
        ref_up=$(iperf3_mbit up "$streams" "$S")
        ours "$streams" "${S}s"
        ACCURACY+=("$rate|$streams|$ref_down|$DOWN|$ref_up|$UP|$WHY")
    done
done

# --- (e) one default test ----------------------------------------------------------------------
# wire_bytes: bytes received + sent by the client's veth end (headers included).
wire_bytes() { ip -n "$NS_C" -s -j link show lab0 | jq '.[0].stats64 | .rx.bytes + .tx.bytes'; }
for rate in $DEFAULT_RATES; do
    shape "$rate"
    log "(e) a default test (10 s per direction, 4 streams) at $rate Mbit/s"
    w0=$(wire_bytes)
    ours - -
    w1=$(wire_bytes)
    DEFAULTS+=("$rate|$DOWN|$UP|$MOVED|$((w1 - w0))|$WHY")
done
unshape
busy1=$(busy_ticks) wall1=$(date +%s.%N)
OTHERS=$(awk -v d=$((busy1 - busy0)) -v hz="$CLK_TCK" -v w0="$wall0" -v w1="$wall1" \
    'BEGIN { printf "%.2f", d / hz / (w1 - w0) }')

# --- report ------------------------------------------------------------------------------------
echo
echo "HTTP engine against iperf3 — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r), $(bench_binary_label)"
echo "$(iperf3 --version | sed -n 1p); $S s per direction; load average at start $LOAD_START; all cores busy on average $OTHERS"
echo "(this run's own processes included: a run at 500 Mbit/s keeps about one core busy)"
echo
echo "(a) ceiling on the unshaped veth pair (Mbit/s, goodput), goal ours/iperf3 >= $CEILING_RATIO"
echo
echo "| streams | iperf3 down | ours down | ratio | | iperf3 up | ours up | ratio | |"
echo "|--:|--:|--:|--:|---|--:|--:|--:|---|"
for row in "${CEILING[@]}"; do
    IFS='|' read -r streams ref_down down ref_up up _ _ _ _ why <<<"$row"
    rd=$(ratio "$down" "$ref_down") ru=$(ratio "$up" "$ref_up")
    echo "| $streams | $ref_down | $down | $rd | $(verdict "${rd/-/0}" "$CEILING_RATIO" ">=") | $ref_up | $up | $ru | $(verdict "${ru/-/0}" "$CEILING_RATIO" ">=") |${why:+ $why}"
done
echo
echo "(b) CPU per GB moved (both directions; run-once: user + system from its rusage; target: utime + stime)"
echo
echo "| streams | GB moved | run-once CPU s | run-once CPU s/GB | target CPU s | target CPU s/GB |"
echo "|--:|--:|--:|--:|--:|--:|"
for row in "${CEILING[@]}"; do
    IFS='|' read -r streams _ _ _ _ cpu target_cpu moved _ _ <<<"$row"
    gb=$(awk -v b="$moved" 'BEGIN { printf "%.2f", b / 1e9 }')
    echo "| $streams | $gb | $cpu | $(per_gb "$cpu" "$moved") | $target_cpu | $(per_gb "$target_cpu" "$moved") |"
done
echo
echo "(c) RSS added by a test: peak RSS of run-once (ru_maxrss) less that of a run-once failing at once ($(mib "$IDLE_RSS_KIB") MiB), goal <= $RSS_GOAL_MIB MiB"
echo
echo "| streams | peak RSS MiB | added MiB | |"
echo "|--:|--:|--:|---|"
for row in "${CEILING[@]}"; do
    IFS='|' read -r streams _ _ _ _ _ _ _ rss _ <<<"$row"
    added=$(mib $((rss - IDLE_RSS_KIB)))
    echo "| $streams | $(mib "$rss") | $added | $(verdict "$added" "$RSS_GOAL_MIB" "<=") |"
done
echo
echo "(d) accuracy on a tbf-shaped link (Mbit/s, goodput), goal |error| <= $ERROR_GOAL_PERCENT % of iperf3 with as many streams"
echo
echo "| shaped | streams | iperf3 down | ours down | error | | iperf3 up | ours up | error | |"
echo "|--:|--:|--:|--:|--:|---|--:|--:|--:|---|"
for row in "${ACCURACY[@]}"; do
    IFS='|' read -r rate streams ref_down down ref_up up why <<<"$row"
    ed=$(error_pct "$down" "$ref_down") eu=$(error_pct "$up" "$ref_up")
    echo "| $rate | $streams | $ref_down | $down | $ed % | $(within "$ed" "$ERROR_GOAL_PERCENT") | $ref_up | $up | $eu % | $(within "$eu" "$ERROR_GOAL_PERCENT") |${why:+ $why}"
done
if [[ -n $DEFAULT_RATES ]]; then
    echo
    echo "(e) data moved by one default test (10 s per direction, 4 streams), both directions"
    echo
    echo "| shaped | ours down | ours up | MB moved (downloaded_bytes + uploaded_bytes) | MB on the wire (client's interface, headers included) |"
    echo "|--:|--:|--:|--:|--:|"
    for row in "${DEFAULTS[@]}"; do
        IFS='|' read -r rate down up moved wire why <<<"$row"
        echo "| $rate Mbit/s | $down | $up | $(awk -v b="$moved" 'BEGIN { printf "%.0f", b / 1e6 }') | $(awk -v b="$wire" 'BEGIN { printf "%.0f", b / 1e6 }') |${why:+ $why}"
    done
fi
