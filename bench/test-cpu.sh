#!/usr/bin/env bash
# bench/test-cpu.sh: the CPU time `internet-monitor serve` itself spends while a speed test runs
# (it must not compete with the measurement), against the same server idle.
#
# The speed test is a wrapper script written to the scratch directory, passed as
# --speedtest-bin: it tells this script it started (a line into a FIFO), sleeps $TEST_SECONDS,
# then execs tests/fake-speedtest replaying tests/fixtures/ok-1.2-with-loaded-latency (a real
# CLI 1.2 result), so the test takes a known time and needs no network. The store holds $YEARS
# years of 30-minute samples (generated and imported as bench/http.sh does, by bench/common.sh).
# Four modes, each $RUNS times, interleaved (one fresh `serve` per run):
#   test          `serve --start-delay 1s --interval 1000h`: the window runs from the moment the
#                 wrapper starts (speedtest_running has just been set to 1) to the log line
#                 "test succeeded" (logged once the sample is stored and published), read with
#                 `tail -f` (inotify), so nothing polls the server;
#   test+scrape   the same, with a client scraping /metrics every $SCRAPE_INTERVAL s from
#                 start-up on (like Prometheus, but more often), which also shows
#                 speedtest_running was 1 during the window;
#   idle          `serve --start-delay 1000h` (no test), $START_DELAY s after start-up, for as
#                 long as the same run's test window;
#   idle+scrape   idle, scraped as above.
# For each window: the CPU time of the serve process, twice: utime + stime of /proc/PID/stat
# (all its threads, live or exited, but in 10 ms ticks, too coarse for a window of 20 s in
# which serve mostly sleeps) and the sum over its threads of the on-CPU nanoseconds of
# /proc/PID/task/TID/schedstat (exact, but blind to a thread that exits within the window:
# the "threads gone" column says if one did); per second of window (from schedstat) and as a
# share of one core. Not its children: the CLI's CPU is shown apart (cutime + cstime). And how
# many cores other processes kept busy (/proc/stat less serve and the CLI; well above 0 means
# noisy figures). It prints
# markdown tables with the target (< 1 % of a core during a test) at the end. Nothing is
# written outside a mktemp -d directory (apart from the cargo build), which is removed on exit,
# as is every process started here.
#
# Run from anywhere (builds `cargo build --release --locked` first):
#
#     bench/test-cpu.sh
#
# Knobs (environment): BIN=path/to/internet-monitor skips the build; REV=HEAD (any commit)
# builds that commit from `git archive` (under target/bench-rev/; and takes the fake CLI and
# fixture from it); YEARS=1 the store (0: empty); TEST_SECONDS=20 (about a real test's length;
# utime + stime count in 10 ms ticks, so longer windows are more precise); RUNS=3 per mode;
# SCRAPE_INTERVAL=1 s; START_DELAY=1 s; QUIET=900 waits up to 900 s for other jobs (cargo,
# fuzzers) to finish before measuring; KEEP=1 keeps the scratch directory. Takes about
# 4 × RUNS × (TEST_SECONDS + 2) s, after the build: about 5 minutes.
set -euo pipefail

# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
YEARS=${YEARS:-1}
TEST_SECONDS=${TEST_SECONDS:-20}
RUNS=${RUNS:-3}
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-1}
START_DELAY=${START_DELAY:-1}
MODES=(test test+scrape idle idle+scrape)
TARGET_PERCENT=1  # of one core, during a test

need_tools curl python3 awk tail timeout mkfifo
bench_init test-cpu
bench_binary

FAKE=$BUILD_TREE/tests/fake-speedtest
FIXTURE=$BUILD_TREE/tests/fixtures/ok-1.2-with-loaded-latency
[[ -x $FAKE && -f $FIXTURE.stdout ]] || die "$FAKE or $FIXTURE.stdout is missing"

if ((YEARS > 0)); then
    make_store "$YEARS"
    DB=$STORE_DB
else
    DB=$WORK/empty.redb STORE_SAMPLES=0
fi
await_quiet
LOAD_START=$(loadavg)

# The start signal: the wrapper writes a line into this FIFO. Held open read-write here, so
# neither side ever blocks on open and a line waits in the pipe until read.
mkfifo "$WORK/started" "$WORK/nap"
exec 3<>"$WORK/started" 4<>"$WORK/nap"
# nap SECONDS: sleeps without a fork (a read that times out on a FIFO nobody writes).
nap() { read -r -t "$1" -u 4 _ || true; }

WRAPPER=$WORK/slow-speedtest
cat >"$WRAPPER" <<EOF
#!/bin/sh
# A speed test that takes $TEST_SECONDS s: says it started, waits, answers as the real CLI did.
echo started >$(printf %q "$WORK/started")
sleep $TEST_SECONDS
FAKE_SPEEDTEST_MODE=replay FAKE_SPEEDTEST_FIXTURE=$(printf %q "$FIXTURE") exec $(printf %q "$FAKE") "\$@"
EOF
chmod +x "$WRAPPER"

# Children's CPU (cutime + cstime, fields 16 and 17) of a process, in clock ticks.
child_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $14 + $15 }'; }
# thread_ns PID: "TID on-CPU-ns" for each thread of PID, from /proc/PID/task/TID/schedstat.
thread_ns() {
    local file ns _
    for file in /proc/"$1"/task/*/schedstat; do
        read -r ns _ <"$file" 2>/dev/null || continue
        file=${file%/schedstat}
        echo "${file##*/} $ns"
    done
}
# ns_delta BEFORE AFTER: "ns gone" — the on-CPU ns the threads in AFTER (files of thread_ns)
# spent since BEFORE (all of it for a new thread), and how many threads of BEFORE are gone.
ns_delta() {
    awk 'NR == FNR { before[$1] = $2; next }
        { ns += $2 - ($1 in before ? before[$1] : 0); seen[$1] = 1 }
        END { for (tid in before) if (!(tid in seen)) gone++; printf "%d %d\n", ns, gone }' "$1" "$2"
}
# A microsecond clock without a fork.
now_us() { echo "${EPOCHREALTIME/[.,]/}"; }

# scraper_start URL OUT: GET URL every $SCRAPE_INTERVAL s in the background (in the
# $SAMPLER_PID slot, stopped by sampler_stop or the clean-up), appending to OUT one line per
# scrape: the time (µs) and the value of speedtest_running.
scraper_start() {
    local url=$1 out=$2
    (
        trap - EXIT
        while :; do
            printf '%s %s\n' "$(now_us)" \
                "$(curl -s "$url" | awk '$1 == "speedtest_running" { print $2 }' || true)"
            sleep "$SCRAPE_INTERVAL"
        done
    ) >>"$out" 2>/dev/null &
    SAMPLER_PID=$!
}

# await_stored LOG: returns once LOG holds "test succeeded" (dies on "test failed"), following
# it with `tail -f` (inotify) until serve exits or 2 minutes pass.
await_stored() {
    local log=$1 line tail_pid
    exec 5< <(exec timeout 120 tail -n +1 -s 0.01 -f --pid="$SERVER_PID" "$log")
    tail_pid=$!
    line=$(grep -m1 -E 'test (succeeded|failed)' <&5 || true)
    kill "$tail_pid" 2>/dev/null || true
    exec 5<&-
    [[ $line == *"test succeeded"* ]] || die "the test did not succeed: ${line:-no result logged}"
}

ROWS=()  # "mode|run|window s|serve ticks|serve ns|threads gone|child ticks|scrapes|running=1|others|load"
declare -A WINDOW_S=()
for ((run = 1; run <= RUNS; run++)); do
    for mode in "${MODES[@]}"; do
        load=$(loadavg)
        log "$mode, run $run of $RUNS (load $load)"
        server_log=$WORK/serve-$mode-$run.log
        scrapes=$WORK/scrapes-$mode-$run.txt
        : >"$scrapes"
        delay=1000h
        [[ $mode == test* ]] && delay=${START_DELAY}s
        start_server "$DB" "$server_log" --start-delay "$delay" --interval 1000h \
            --speedtest-bin "$WRAPPER" --timeout "$((TEST_SECONDS + 60))s"
        [[ $mode == *scrape ]] && scraper_start "$BASE/metrics" "$scrapes"

        if [[ $mode == test* ]]; then
            read -r -t $((START_DELAY + 30)) -u 3 _ || die "the test did not start: $(tail -5 "$server_log")"
        else
            nap "$START_DELAY"
        fi
        t0=$(now_us) ticks0=$(cpu_ticks "$SERVER_PID") child0=$(child_ticks "$SERVER_PID") busy0=$(busy_ticks)
        thread_ns "$SERVER_PID" >"$WORK/ns0"
        if [[ $mode == test* ]]; then
            await_stored "$server_log"
        else
            nap "${WINDOW_S[$run]:-$TEST_SECONDS}"
        fi
        thread_ns "$SERVER_PID" >"$WORK/ns1"
        ticks1=$(cpu_ticks "$SERVER_PID") child1=$(child_ticks "$SERVER_PID") busy1=$(busy_ticks) t1=$(now_us)
        read -r ns gone < <(ns_delta "$WORK/ns0" "$WORK/ns1")
        window=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
        [[ $mode == test ]] && WINDOW_S[$run]=$window

        sampler_stop
        read -r in_window running < <(awk -v a="$t0" -v b="$t1" \
            '$1 >= a && $1 <= b { n++; if ($2 == 1) r++ } END { print n + 0, r + 0 }' "$scrapes")
        stop_server
        others=$(awk -v busy=$((busy1 - busy0)) -v s=$((ticks1 - ticks0)) -v c=$((child1 - child0)) \
            -v hz="$CLK_TCK" -v w="$window" 'BEGIN { printf "%.2f", (busy - s - c) / hz / w }')
        ROWS+=("$mode|$run|$window|$((ticks1 - ticks0))|$ns|$gone|$((child1 - child0))|$in_window|$running|$others|$load")
    done
done

# --- report -----------------------------------------------------------------------------------
tick_ms=$(awk -v hz="$CLK_TCK" 'BEGIN { printf "%g", 1000 / hz }')
echo
echo "internet-monitor CPU during a test — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(bench_binary_label)"
echo "test: sleep $TEST_SECONDS s, then tests/fake-speedtest replaying ok-1.2-with-loaded-latency; store: $STORE_SAMPLES samples ($YEARS y);"
echo "scrapes: GET /metrics every $SCRAPE_INTERVAL s; serve CPU: utime + stime of /proc/PID/stat (${tick_ms} ms ticks) and the"
echo "on-CPU time of its threads (/proc/PID/task/*/schedstat, ns); load average at start $LOAD_START"
echo
echo "| mode | run | window s | serve CPU ms, utime+stime | serve CPU ms, schedstat | threads gone | serve CPU ms/s | % of a core | scrapes in window (running=1) | CLI CPU ms (children) | other procs, cores | load avg |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
for row in "${ROWS[@]}"; do
    IFS='|' read -r mode run window ticks ns gone child in_window running others load <<<"$row"
    read -r ms exact per_s pct child_ms < <(awk -v t="$ticks" -v ns="$ns" -v c="$child" -v hz="$CLK_TCK" -v w="$window" \
        'BEGIN { e = ns / 1e6; printf "%.0f %.2f %.3f %.4f %.0f\n", t * 1000 / hz, e, e / w, e / w / 10, c * 1000 / hz }')
    scraped=-
    [[ $mode == *scrape ]] && scraped="$in_window ($running)"
    echo "| $mode | $run | $window | $ms | $exact | $gone | $per_s | $pct | $scraped | $child_ms | $others | $load |"
done
echo
echo "| mode | runs | total window s | total serve CPU ms, utime+stime | total serve CPU ms, schedstat | serve CPU ms/s | % of a core | target | |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|---|"
declare -A PER_S=() SCRAPES=()
for mode in "${MODES[@]}"; do
    read -r runs total_s total_ms exact per_s pct n_scrapes < <(printf '%s\n' "${ROWS[@]}" |
        awk -F'|' -v m="$mode" -v hz="$CLK_TCK" '$1 == m { n++; w += $3; t += $4; ns += $5; s += $8 } END {
            e = ns / 1e6; printf "%d %.1f %.0f %.2f %.3f %.4f %d\n", n, w, t * 1000 / hz, e, e / w, e / w / 10, s }')
    PER_S[$mode]=$per_s SCRAPES[$mode]=$n_scrapes
    if [[ $mode == test* ]]; then
        target="< $TARGET_PERCENT %" met=$(verdict "$pct" "$TARGET_PERCENT" "<=")
    else
        target=- met=-
    fi
    echo "| $mode | $runs | $total_s | $total_ms | $exact | $per_s | $pct | $target | $met |"
done
echo
awk -v t="${PER_S[test]}" -v i="${PER_S[idle]}" -v ts="${PER_S[test+scrape]}" -v is="${PER_S[idle+scrape]}" \
    -v n="${SCRAPES[idle+scrape]}" 'BEGIN {
    printf "A test adds %.3f ms/s to the idle server (%.3f ms/s when both are scraped);", t - i, ts - is
    printf " scraping adds %.3f ms/s to the idle server (%d scrapes in its windows).\n", is - i, n }'
