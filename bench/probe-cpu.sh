#!/usr/bin/env bash
# bench/probe-cpu.sh: the CPU time the connectivity monitor costs `internet-monitor serve`, per
# hour, at the default probe interval (10 s, the gateway and three public targets), against
# the same server with probing off.
#
# Everything runs inside three network namespaces made here (home, router, internet, joined by
# veth pairs, the public targets 10.99.3.1-3 on the internet side's loopback), so no probe
# leaves this machine; they and every process are removed on exit. Each mode runs one fresh
# `serve --start-delay 1000h` (no speed test) for $SECONDS_PER_RUN s after a $WARMUP s
# warm-up, $RUNS times, interleaved:
#   off       --probe-interval 0s
#   default   --probe-interval 10s (4 targets: 0.4 probes/s)
#   fast      --probe-interval 1s  (ten times the rounds, for a figure above the tick noise)
# CPU time: utime + stime of /proc/PID/stat (10 ms ticks), per hour of serving, and as a share
# of one core. Store bytes per day are in the store benchmark (BENCHMARKS.md); this script
# also prints the file's size growth over the run for the default mode.
#
# Run as root (namespaces) from anywhere (builds `cargo build --release --locked` first):
#
#     bench/probe-cpu.sh
#
# Knobs: BIN=path skips the build; RUNS=2; SECONDS_PER_RUN=300; WARMUP=15; KEEP=1.
set -euo pipefail

# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RUNS=${RUNS:-2}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-300}
WARMUP=${WARMUP:-15}
((EUID == 0)) || die "run as root: the probes run inside network namespaces made here"
need_tools ip curl awk
bench_init probe-cpu
bench_binary

NS=imbench$$
cleanup_netns() {
    for side in h r i; do
        ip netns pids "$NS$side" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$NS$side" 2>/dev/null || true
    done
}
trap 'cleanup_netns; bench_cleanup' EXIT
for side in h r i; do
    ip netns add "$NS$side"
    ip -n "$NS$side" link set lo up
done
ip link add h0 netns "${NS}h" type veth peer name r0 netns "${NS}r"
ip link add r1 netns "${NS}r" type veth peer name i0 netns "${NS}i"
ip -n "${NS}h" addr add 10.99.1.2/24 dev h0
ip -n "${NS}r" addr add 10.99.1.1/24 dev r0
ip -n "${NS}r" addr add 10.99.2.1/24 dev r1
ip -n "${NS}i" addr add 10.99.2.2/24 dev i0
for dev in h:h0 r:r0 r:r1 i:i0; do ip -n "$NS${dev%%:*}" link set "${dev#*:}" up; done
ip -n "${NS}h" route add default via 10.99.1.1
ip -n "${NS}r" route add 10.99.3.0/24 via 10.99.2.2
ip -n "${NS}i" route add default via 10.99.2.1
for host in 1 2 3; do ip -n "${NS}i" addr add "10.99.3.$host/32" dev lo; done
ip netns exec "${NS}r" sysctl -qw net.ipv4.ip_forward=1

TICK=$(getconf CLK_TCK)
declare -A CPU_PER_HOUR
run_mode() {
    local mode=$1 run=$2 interval db log pid start_ticks end_ticks bytes_start bytes_end
    case $mode in
        off) interval=0s ;;
        default) interval=10s ;;
        fast) interval=1s ;;
    esac
    db=$WORK/$mode-$run.redb
    log=$WORK/$mode-$run.log
    RUST_LOG=info ip netns exec "${NS}h" "$BIN" serve --db "$db" --listen 127.0.0.1:0 \
        --start-delay 1000h --speedtest-bin /bin/false --probe-interval "$interval" \
        --probe-target 10.99.3.1,10.99.3.2,10.99.3.3 2>"$log" &
    pid=$!
    sleep "$WARMUP"
    kill -0 "$pid" || die "serve exited: $(tail -5 "$log")"
    start_ticks=$(cpu_ticks "$pid")
    bytes_start=$(stat -c %s "$db")
    sleep "$SECONDS_PER_RUN"
    end_ticks=$(cpu_ticks "$pid")
    bytes_end=$(stat -c %s "$db")
    kill -TERM "$pid"
    wait "$pid" || die "serve exited badly on SIGTERM: $(tail -5 "$log")"
    local per_hour
    per_hour=$(awk -v t=$((end_ticks - start_ticks)) -v hz="$TICK" -v s="$SECONDS_PER_RUN" \
        'BEGIN { printf "%.2f", t / hz * 3600 / s }')
    CPU_PER_HOUR[$mode]="${CPU_PER_HOUR[$mode]:-} $per_hour"
    log "$mode run $run: $((end_ticks - start_ticks)) ticks in ${SECONDS_PER_RUN} s = $per_hour CPU s/hour; file $bytes_start → $bytes_end bytes ($(grep -c 'probing' "$log" || true) probing line)"
    grep -m1 'probing' "$log" >&2 || true
}
for ((run = 1; run <= RUNS; run++)); do
    for mode in off default fast; do run_mode "$mode" "$run"; done
done

echo "| mode | CPU seconds per hour (each run) | share of one core |"
echo "|---|---|---|"
for mode in off default fast; do
    # shellcheck disable=SC2086
    share=$(printf '%s\n' ${CPU_PER_HOUR[$mode]} | awk '{ s += $1; n++ } END { printf "%.3f %%", s / n / 36 }')
    echo "| $mode | ${CPU_PER_HOUR[$mode]} | $share |"
done
