# shellcheck shell=bash disable=SC2034 # (the globals set here are read by the sourcing scripts)
# bench/common.sh: what the bench scripts (bench/http.sh, bench/history.sh, bench/test-cpu.sh)
# share. Sourced by them after `set -euo pipefail`, never run on its own:
#
#   - log / die, and ensure_tool (installs a missing tool with apt-get, which needs root);
#   - bench_init: the mktemp -d scratch directory $WORK and the traps that, on any exit, stop
#     the server and the background sampler started here and remove $WORK (KEEP=1 keeps it);
#   - bench_binary: $BIN, a private copy of the binary: `cargo build --release --locked` of the
#     working tree, BIN=path (no build), or REV=commit (built from `git archive`, under
#     target/bench-rev/, where every script finds the build again);
#     bench_example NAME: a private copy of examples/NAME, built from the same tree;
#   - generate / make_store: N years of 30-minute samples ending now (~1 in 50 a failure),
#     written as `export --format jsonl` would, and loaded with `internet-monitor import`;
#   - start_server / stop_server: `serve` (by default `--start-delay 1000h --speedtest-bin
#     /bin/false`) on a port of its choosing, ready once it logged "listening on" and /healthz
#     answered 200; await_listening, the wait for such a ready line, for any server;
#   - await_quiet: with QUIET=SECONDS, waits for other jobs (cargo, fuzzers) to finish first;
#   - kib / mib (VmRSS, VmHWM), cpu_ticks / busy_ticks, rss_sampler_start / sampler_stop
#     (VmRSS every ~20 ms in the background; one background sampler at a time, in
#     $SAMPLER_PID, stopped by the clean-up too), median / percentile, verdict, and run_wrk
#     (PERF=1 also profiles the server with `perf record` during each wrk run).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[bench] %s\n' "$*" >&2; }
die() {
    printf '[bench] FAILED: %s\n' "$*" >&2
    exit 1
}

# ensure_tool COMMAND [DEBIAN-PACKAGE]: installs the package if COMMAND is not there.
ensure_tool() {
    local tool=$1 package=${2:-$1}
    [[ $tool == /* && -x $tool ]] && return
    [[ $tool != /* ]] && command -v "$tool" >/dev/null && return
    log "$tool is missing: installing $package with apt-get"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >&2; then
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" >&2
    fi
}

# need_tools TOOL...: dies unless every one is on the PATH.
need_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is needed"
    done
}

# --- scratch space and clean-up ---------------------------------------------------------------
SERVER_PID=
SAMPLER_PID=
bench_cleanup() {
    local status=$?
    if [[ -n $SAMPLER_PID ]] && kill -0 "$SAMPLER_PID" 2>/dev/null; then
        kill -TERM "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
    fi
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}

# bench_init NAME: $WORK, a fresh scratch directory, and the clean-up traps.
bench_init() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/internet-monitor-$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

# --- the binary -------------------------------------------------------------------------------
# Sets BIN (a private copy in $WORK, so that a concurrent `cargo build` cannot swap the binary
# mid-run) and BIN_SHOWN (where it came from); BUILD_TREE and BUILD_TARGET say where
# bench_example builds (REV's archive, else the working tree, also when BIN=path is given).
bench_binary() {
    BUILD_TREE=$ROOT BUILD_TARGET=$ROOT/target
    if [[ -n ${REV:-} ]]; then
        # A committed revision, from `git archive`: immune to edits in progress. Its tree and
        # build live under target/bench-rev/ (one source tree per commit, one target directory
        # for all, so the dependencies are built once), and the other bench scripts, or a
        # second run, reuse the build. Run one bench script at a time.
        local commit stamp
        commit=$(git -C "$ROOT" rev-parse --verify "$REV^{commit}") || die "no commit $REV"
        BUILT_COMMIT=${commit:0:7}  # the label's, resolved once: HEAD may move during the run
        BUILD_TREE=$ROOT/target/bench-rev/$commit BUILD_TARGET=$ROOT/target/bench-rev/target
        stamp=$BUILD_TARGET/bench-rev-commit
        log "building $REV ($commit) from git archive in $BUILD_TREE (a clean build takes minutes)"
        if [[ ! -f $BUILD_TREE/Cargo.toml ]]; then
            # Extracted aside and renamed: a tree that is there is complete.
            mkdir -p "$BUILD_TREE.$$"
            git -C "$ROOT" archive "$commit" | tar -x -C "$BUILD_TREE.$$"
            mv -T "$BUILD_TREE.$$" "$BUILD_TREE"
        fi
        # Every commit's crate has the same fingerprint in the shared target directory, and the
        # archive's files carry their commit's (older) times: after another commit's build,
        # cargo would take that build's binary for fresh. Newer files make it rebuild the crate
        # (its dependencies stay built).
        if [[ ! -f $stamp || $(<"$stamp") != "$commit" ]]; then
            find "$BUILD_TREE" -type f -exec touch {} +
        fi
        cargo build --release --locked --manifest-path "$BUILD_TREE/Cargo.toml" \
            --target-dir "$BUILD_TARGET" >&2
        echo "$commit" >"$stamp"
        BIN=$BUILD_TARGET/release/internet-monitor
    elif [[ -z ${BIN:-} ]]; then
        log "cargo build --release --locked"
        (cd "$ROOT" && cargo build --release --locked >&2)
        BIN=$ROOT/target/release/internet-monitor
    fi
    [[ -x $BIN ]] || die "$BIN is not an executable"
    cp "$BIN" "$WORK/internet-monitor"
    BIN_SHOWN=$BIN
    BIN=$WORK/internet-monitor
}

# bench_example NAME [PREBUILT]: EXAMPLE_BIN, a private copy in $WORK of examples/NAME, built
# (`cargo build --release --locked --example NAME`) from the tree bench_binary built from, or
# PREBUILT when it is given (no build). Call after bench_binary.
bench_example() {
    local name=$1 built=${2:-}
    if [[ -z $built ]]; then
        log "cargo build --release --locked --example $name (in $BUILD_TREE)"
        cargo build --release --locked --manifest-path "$BUILD_TREE/Cargo.toml" \
            --target-dir "$BUILD_TARGET" --example "$name" >&2
        built=$BUILD_TARGET/release/examples/$name
    fi
    [[ -x $built ]] || die "$built is not an executable"
    EXAMPLE_BIN=$WORK/$name
    cp "$built" "$EXAMPLE_BIN"
}

# The line that says which binary was measured: version, and commit or working tree.
bench_binary_label() {
    local revision
    if [[ -n ${REV:-} ]]; then
        revision=$BUILT_COMMIT
    else
        revision="$BIN_SHOWN, tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    fi
    echo "$("$BIN" --version 2>/dev/null || echo "$BIN") ($revision)"
}

# --- /proc readers ----------------------------------------------------------------------------
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# kib PID FIELD: a field of /proc/PID/status in KiB (VmRSS, VmHWM). mib KIB: KiB -> "12.3".
kib() { awk -v f="$2" '$1 == f ":" { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# utime + stime of a process, in clock ticks (fields 14 and 15; the name may hold spaces).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
CLK_TCK=$(getconf CLK_TCK)
# Busy ticks of the whole machine: user nice system irq softirq steal.
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# await_quiet: with QUIET=SECONDS (default 0: off), waits up to that long, checking every 30 s,
# until other processes keep < 0.1 core busy (over 5 s) and no cargo, rustc or fuzzer runs, so
# that the figures are not another job's; says either way, with the load average. Each script
# calls it once, after its build, before its first measurement.
await_quiet() {
    local limit=${QUIET:-0} started=$SECONDS before after cores jobs
    ((limit > 0)) || return 0
    while :; do
        before=$(busy_ticks)
        sleep 5
        after=$(busy_ticks)
        cores=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d / hz / 5 }')
        jobs=$(pgrep -fc '^([^ ]*/)?(cargo|rustc|cargo-fuzz)( |$)|fuzz/target/' || true)
        if awk -v c="$cores" 'BEGIN { exit !(c < 0.1) }' && ((jobs == 0)); then
            log "quiet: $cores cores busy, load average $(loadavg)"
            return 0
        fi
        if ((SECONDS - started >= limit)); then
            log "warning: still busy after ${limit} s ($cores cores, $jobs cargo/rustc/fuzz processes, load average $(loadavg)): the figures may be noisy"
            return 0
        fi
        log "waiting for a quiet machine: $cores cores busy, $jobs cargo/rustc/fuzz processes, load average $(loadavg)"
        sleep $((limit - (SECONDS - started) < 25 ? limit - (SECONDS - started) : 25))
    done
}

# rss_sampler_start PID FILE [SECONDS]: appends VmRSS of PID (KiB) to FILE every SECONDS
# (0.02) in the background, until sampler_stop (or PID exits). Pure bash but for sleep.
rss_sampler_start() {
    local pid=$1 out=$2 interval=${3:-0.02}
    (
        trap - EXIT
        while :; do
            while read -r key value _; do
                if [[ $key == VmRSS: ]]; then
                    printf '%s\n' "$value"
                    break
                fi
            done <"/proc/$pid/status" || exit 0
            sleep "$interval"
        done
    ) >>"$out" 2>/dev/null &
    SAMPLER_PID=$!
}
# sampler_stop: stops the background sampler ($SAMPLER_PID, whichever script started it).
sampler_stop() {
    [[ -n $SAMPLER_PID ]] || return 0
    kill -TERM "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
}

# --- statistics -------------------------------------------------------------------------------
# median < numbers: the middle value (the mean of the two middle ones for an even count).
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# percentile P DIGITS < numbers: the nearest-rank P-th percentile, with DIGITS decimals.
percentile() {
    sort -g | awk -v p="$1" -v d="${2:-1}" '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        r = int(p / 100 * NR); if (r < p / 100 * NR) r++; if (r < 1) r = 1
        printf "%.*f", d, v[r] }'
}

# --- data -------------------------------------------------------------------------------------
# generate YEARS PATH: writes YEARS years of 30-minute samples ending now, as
# `export --format jsonl` would, to PATH, and prints how many.
generate() {
    python3 - "$1" "$2" <<'PY'
import datetime, json, math, random, sys, uuid

years, path = int(sys.argv[1]), sys.argv[2]
count = years * 365 * 48
rng = random.Random(20261124 + years)
step = datetime.timedelta(minutes=30)
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
servers = [
    {"id": 57318, "name": "Zzoomm Plc", "location": "Slough",
     "country": "United Kingdom", "host": "speedtest.zzoomm.com"},
    {"id": 30690, "name": "Community Fibre", "location": "London",
     "country": "United Kingdom", "host": "speedtest.communityfibre.co.uk"},
]
failures = [
    ("no_connectivity", "Configuration - Couldn't resolve host name (HostNotFoundException)"),
    ("no_connectivity", "Cannot open socket: Timeout occurred in connect."),
    ("timeout", "the test did not finish within 2m"),
    ("exit", "Configuration - Could not retrieve or read configuration (ConfigurationError)"),
]

def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

with open(path, "w") as out:
    for i in range(count - 1, -1, -1):
        t = now - i * step
        # Evenings are slower, as on a real shared line; a bad week now and then.
        hour = t.hour + t.minute / 60
        evening = 0.25 * max(0.0, math.cos((hour - 21) / 24 * 2 * math.pi)) ** 4
        sample = {"time": stamp(t), "outcome": "success", "reason": None, "message": None,
                  "trigger": "schedule"}
        if rng.random() < 1 / 50:
            reason, message = rng.choice(failures)
            sample.update(outcome="failure", reason=reason, message=message,
                          duration_seconds=round(rng.uniform(0.2, 120 if reason == "timeout" else 8), 3))
            for field in ("download_bytes_per_second", "upload_bytes_per_second", "ping_seconds",
                          "jitter_seconds", "packet_loss_ratio", "download_latency_seconds",
                          "upload_latency_seconds", "downloaded_bytes", "uploaded_bytes"):
                sample[field] = None
            sample.update(server=None, isp=None, result_url=None)
        else:
            down = max(1e6, rng.gauss(115e6, 6e6) * (1 - evening))
            up = max(1e6, rng.gauss(31.5e6, 1.5e6) * (1 - evening / 2))
            ping = max(0.002, rng.gauss(0.0056, 0.0006) * (1 + evening))
            down_seconds, up_seconds = rng.uniform(10, 15), rng.uniform(8, 14)
            sample.update(
                duration_seconds=round(rng.uniform(18, 32), 3),
                download_bytes_per_second=float(round(down)),
                upload_bytes_per_second=float(round(up)),
                ping_seconds=round(ping, 6),
                jitter_seconds=round(abs(rng.gauss(0.0005, 0.0003)), 6),
                packet_loss_ratio=None if rng.random() < 0.05 else
                    (0.0 if rng.random() < 0.9 else round(rng.uniform(0, 0.02), 4)),
                download_latency_seconds=round(ping + abs(rng.gauss(0.003, 0.002)), 6),
                upload_latency_seconds=round(ping + abs(rng.gauss(0.002, 0.0015)), 6),
                downloaded_bytes=round(down * down_seconds),
                uploaded_bytes=round(up * up_seconds),
                server=servers[0] if rng.random() < 0.9 else servers[1],
                isp="Giganet Limited",
                result_url="https://www.speedtest.net/result/c/"
                    + str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            )
        out.write(json.dumps(sample, separators=(",", ":")) + "\n")
print(count)
PY
}

# make_store YEARS: generates and imports YEARS years into $WORK/<YEARS>y.redb. Sets STORE_DB,
# STORE_SAMPLES, STORE_IMPORT_S (seconds the import took) and STORE_DB_MIB.
make_store() {
    local years=$1 jsonl=$WORK/$1y.jsonl started
    STORE_DB=$WORK/${years}y.redb
    log "generating $years year(s) of 30-minute samples"
    STORE_SAMPLES=$(generate "$years" "$jsonl")
    log "importing $STORE_SAMPLES samples"
    started=$(date +%s.%N)
    "$BIN" import --db "$STORE_DB" "$jsonl" 2>"$WORK/import.log" || {
        cat "$WORK/import.log" >&2
        die "import failed"
    }
    STORE_IMPORT_S=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    grep -q "imported $STORE_SAMPLES new samples" "$WORK/import.log" ||
        die "import did not report $STORE_SAMPLES new samples: $(cat "$WORK/import.log")"
    STORE_DB_MIB=$(mib $(($(stat -c %s "$STORE_DB") / 1024)))
}

# --- the server -------------------------------------------------------------------------------
# await_listening PID FILE SKIP: waits (up to ~10 s, polling every 1 ms) until FILE, from byte
# SKIP on (1 for all of it), holds "listening on http://127.0.0.1:PORT"; dies if PID exits
# first. Sets PORT and BASE (the URL).
await_listening() {
    local pid=$1 file=$2 skip=$3 i line
    PORT=
    for ((i = 0; i < 10000; i++)); do
        line=$(tail -c "+$skip" "$file" | grep -m1 -oE 'listening on http://127\.0\.0\.1:[0-9]+' || true)
        if [[ -n $line ]]; then
            PORT=${line##*:}
            BASE=http://127.0.0.1:$PORT
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "the server exited: $(tail -5 "$file")"
        sleep 0.001
    done
    die "the server never printed its ready line: $(tail -5 "$file")"
}

# start_server DB LOG [SERVE-OPTION...]: `serve` on DB, stderr appended to LOG, listening on a
# port it picks, with the options given (default: `--start-delay 1000h --speedtest-bin
# /bin/false`, no test ever). Returns once it logged its ready line ("listening on
# http://127.0.0.1:PORT", at info level, hence RUST_LOG=info) and /healthz answered 200. Sets
# SERVER_PID, PORT and BASE (the URL).
start_server() {
    local db=$1 server_log=$2 skip i
    shift 2
    (($# > 0)) || set -- --start-delay 1000h --speedtest-bin /bin/false
    touch "$server_log"
    skip=$(($(stat -c %s "$server_log") + 1))
    RUST_LOG=info "$BIN" serve --db "$db" --listen 127.0.0.1:0 "$@" 2>>"$server_log" &
    SERVER_PID=$!
    await_listening "$SERVER_PID" "$server_log" "$skip"
    for ((i = 0; i < 1000; i++)); do
        curl -sf -o /dev/null "$BASE/healthz" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "serve exited: $(tail -5 "$server_log")"
        sleep 0.001
    done
    die "serve logged its ready line but never answered /healthz"
}

# stop_server: SIGTERM, and dies unless serve exits 0.
stop_server() {
    local status=0
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || status=$?
    SERVER_PID=
    ((status == 0)) || die "serve exited with status $status on SIGTERM"
}

# --- wrk --------------------------------------------------------------------------------------
# "123.45us" / "1.20ms" / "1.5s" -> milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# run_wrk THREADS CONNECTIONS DURATION URL OUT: `wrk --latency` against the server
# ($SERVER_PID), its output kept in OUT; dies on any error or non-2xx answer. Sets WRK_RATE
# (req/s), WRK_REQUESTS, WRK_P50 and WRK_P99 (ms), WRK_SERVER_US and WRK_CLIENT_US (CPU µs
# per request of the server and of wrk) and WRK_OTHERS (cores everything else kept busy).
# With PERF=1, `perf record -g` samples the server meanwhile, to OUT.perf.data, and the
# hottest symbols (inclusive) go to OUT.perf.txt (keep them with KEEP=1); perf's own CPU then
# counts among the other processes, and the figures are a little lower: profile, don't report.
run_wrk() {
    local threads=$1 connections=$2 duration=$3 url=$4 out_file=$5
    local before after busy_before busy_after out wall wrk_user wrk_sys wrk_cpu TIMEFORMAT='%R %U %S'
    local perf_pid=
    if [[ ${PERF:-0} == 1 ]]; then
        perf record -q -F 499 -g --call-graph dwarf,16384 -p "$SERVER_PID" \
            -o "$out_file.perf.data" -- sleep "$duration" 2>/dev/null &
        perf_pid=$!
    fi
    before=$(cpu_ticks "$SERVER_PID")
    busy_before=$(busy_ticks)
    out=$( { time wrk -t"$threads" -c"$connections" -d"$duration" --latency "$url"; } 2>"$out_file.time")
    busy_after=$(busy_ticks)
    after=$(cpu_ticks "$SERVER_PID")
    if [[ -n $perf_pid ]]; then
        wait "$perf_pid" || true
        perf report -i "$out_file.perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -80 >"$out_file.perf.txt" || true
        log "profile of the server: $out_file.perf.txt (perf report -i $out_file.perf.data)"
    fi
    printf '%s\n' "$out" >"$out_file"
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        printf '%s\n' "$out" >&2
        die "wrk saw errors on $url"
    fi
    WRK_RATE=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
    WRK_REQUESTS=$(awk '/requests in/ { print $1 }' <<<"$out")
    WRK_P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    WRK_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    read -r wall wrk_user wrk_sys <"$out_file.time"
    wrk_cpu=$(awk -v u="$wrk_user" -v s="$wrk_sys" 'BEGIN { print u + s }')
    # CPU per request of the server and of wrk; the cores everything else kept busy.
    read -r WRK_SERVER_US WRK_CLIENT_US WRK_OTHERS < <(awk -v t=$((after - before)) -v hz="$CLK_TCK" \
        -v n="$WRK_REQUESTS" -v w="$wrk_cpu" -v busy=$((busy_after - busy_before)) -v wall="$wall" \
        'BEGIN { printf "%.1f %.1f %.2f\n", t / hz * 1e6 / n, w * 1e6 / n, (busy / hz - t / hz - w) / wall }')
}

# verdict VALUE TARGET ">="|"<=": met, **MISSED**, or - without a target.
verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN {
    if (t == "-") print "-"; else if ((dir == ">=" && v >= t) || (dir == "<=" && v <= t)) print "met"; else print "**MISSED**" }'; }
