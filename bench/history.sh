#!/usr/bin/env bash
# bench/history.sh: the history of `internet-monitor` over 5 years: the summary API, the CSV
# export over HTTP and the CSV export of the CLI.
#
# For a store of 5 years of 30-minute samples ending now (87,600 samples, about 1 in 50 a
# failure, generated and imported exactly as bench/http.sh does, by bench/common.sh), it
# measures:
#   1. GET /api/v1/summary?window=365d (and ?window=30d, for comparison) on a running
#      `serve --start-delay 1000h --speedtest-bin /bin/false`: the time of $REQUESTS sequential
#      requests, each a new `curl -s -o /dev/null -w '%{time_total}'` (median, p95, min, max,
#      in ms), the server's CPU per request, one `wrk -t1 -c1 -d$WRK_DURATION --latency` run
#      (req/s, p50, p99), and the server's VmRSS / peak VmHWM before and after;
#   2. GET /api/v1/samples.csv without parameters (everything, streamed newest first), $CSV_RUNS
#      times: rows, bytes, wall time (curl's time_total), rows/s, and the server's VmRSS before,
#      the highest of the readings a background loop takes every ~20 ms during the download,
#      and after; checks the CSV has header + one line per sample, newest first. The first
#      export reads most of the store for the first time since start-up, so its RSS rise is
#      reported apart from the later ones' (redb keeps the pages it read in its cache);
#   3. `internet-monitor export --format csv --db FILE` (oldest first, after the server is
#      stopped), $CSV_RUNS times: wall time, rows/s, user + sys CPU and peak RSS
#      (`/usr/bin/time -v`); checks it holds the same rows as the HTTP export, reversed.
# Each measurement also reports the load average and how many cores other processes kept busy
# meanwhile (/proc/stat less the server's and the client's CPU; well above 0 means noisy
# figures: run again). It prints markdown tables with the targets at the end. Nothing is written
# outside a mktemp -d directory (apart from the cargo build), which is removed on exit, as is
# every process started here.
#
# Run from anywhere (builds `cargo build --release --locked` first; installs wrk and GNU time
# with apt-get if they are missing, which needs root):
#
#     bench/history.sh
#
# Knobs (environment): BIN=path/to/internet-monitor skips the build; REV=HEAD (any commit)
# builds that commit from `git archive` (under target/bench-rev/) instead of the working tree;
# YEARS=5 the store; REQUESTS=50 curl requests per summary window; WRK_DURATION=5s;
# CSV_RUNS=3 exports each way; RSS_RISE_MIB=4 the RSS rise the export may cause ("flat");
# QUIET=900 waits up to 900 s for other jobs (cargo, fuzzers) to finish before measuring;
# KEEP=1 keeps the scratch directory. Takes about a minute on 2 cores, after the build.
set -euo pipefail

# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
YEARS=${YEARS:-5}
REQUESTS=${REQUESTS:-50}
WRK_DURATION=${WRK_DURATION:-5s}
CSV_RUNS=${CSV_RUNS:-3}
RSS_RISE_MIB=${RSS_RISE_MIB:-4}
WINDOWS=(365d 30d)
SUMMARY_TARGET_MS=20    # per /api/v1/summary?window=365d
CSV_TARGET_ROWS=200000  # rows/s of the HTTP export

ensure_tool wrk
ensure_tool /usr/bin/time time
need_tools wrk curl python3 awk tac cmp
bench_init history
bench_binary

make_store "$YEARS"
rows=$STORE_SAMPLES
await_quiet
LOAD_START=$(loadavg)

# CPU bookkeeping around one measurement: cpu_begin; ...; cpu_end WALL_S CLIENT_CPU_S prints
# "server-CPU-seconds other-cores".
cpu_begin() {
    CPU_SERVER0=0
    [[ -z $SERVER_PID ]] || CPU_SERVER0=$(cpu_ticks "$SERVER_PID")
    CPU_BUSY0=$(busy_ticks)
}
cpu_end() {
    local server=0 busy
    [[ -z $SERVER_PID ]] || server=$(($(cpu_ticks "$SERVER_PID") - CPU_SERVER0))
    busy=$(($(busy_ticks) - CPU_BUSY0))
    awk -v s="$server" -v b="$busy" -v hz="$CLK_TCK" -v wall="$1" -v c="$2" \
        'BEGIN { printf "%.3f %.2f\n", s / hz, (b / hz - s / hz - c) / wall }'
}
# "wall user sys" (from `time`) -> "wall user+sys".
wall_and_cpu() { awk '{ printf "%s %.3f\n", $1, $2 + $3 }' "$1"; }
# The time_total column of curl's "code seconds" lines, in ms.
ms() { awk '{ printf "%.3f\n", $2 * 1000 }' "$times"; }
TIMEFORMAT='%R %U %S'

# --- 1. summary ---------------------------------------------------------------------------------
start_server "$STORE_DB" "$WORK/serve.log"
idle_kib=$(kib "$SERVER_PID" VmRSS)
hwm_before_kib=$(kib "$SERVER_PID" VmHWM)
health=$(curl -sf "$BASE/healthz")
[[ $health == *"\"samples\":$rows"* ]] || die "/healthz says $health, expected $rows samples"

declare -A total=() size=()
for window in "${WINDOWS[@]}"; do
    url="$BASE/api/v1/summary?window=$window"
    code=$(curl -s -o "$WORK/summary-$window.json" -w '%{http_code}' "$url" || true)
    [[ $code == 200 ]] || die "$url answered HTTP $code: $(head -c 300 "$WORK/summary-$window.json")"
    size[$window]=$(stat -c %s "$WORK/summary-$window.json")
    total[$window]=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["runs"]["total"])' \
        "$WORK/summary-$window.json")
done
# The windows hold every 30-minute sample since now - window (the store ends a moment ago).
[[ ${total[365d]} == $((rows < 17520 ? rows : 17520)) ]] ||
    log "warning: the 365d summary counts ${total[365d]} runs, not 17520"
[[ ${total[30d]} == $((rows < 1440 ? rows : 1440)) ]] ||
    log "warning: the 30d summary counts ${total[30d]} runs, not 1440"

SUMMARIES=()  # "window|runs|bytes|median|p95|min|max|server ms/req|others|load|wrk req/s|p50|p99|wrk server µs/req|wrk others"
for window in "${WINDOWS[@]}"; do
    url="$BASE/api/v1/summary?window=$window"
    log "$REQUESTS × curl $url (load $(loadavg))"
    load=$(loadavg)
    times=$WORK/curl-$window.txt
    : >"$times"
    cpu_begin
    { time for ((i = 0; i < REQUESTS; i++)); do
        curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "$url" >>"$times"
    done; } 2>"$WORK/curl-$window.time"
    read -r wall client_s < <(wall_and_cpu "$WORK/curl-$window.time")
    read -r server_s others < <(cpu_end "$wall" "$client_s")
    bad=$(awk '$1 != 200' "$times" | head -3)
    [[ -z $bad ]] || die "$url answered: $bad"
    (($(wc -l <"$times") == REQUESTS)) || die "expected $REQUESTS answers from $url"
    median_ms=$(ms | median)
    p95_ms=$(ms | percentile 95 1)
    min_ms=$(ms | percentile 0 1)
    max_ms=$(ms | percentile 100 1)
    server_ms=$(awk -v s="$server_s" -v n="$REQUESTS" 'BEGIN { printf "%.1f", s * 1000 / n }')

    log "wrk -t1 -c1 -d$WRK_DURATION $url (load $(loadavg))"
    run_wrk 1 1 "$WRK_DURATION" "$url" "$WORK/wrk-$window.txt"
    SUMMARIES+=("$window|${total[$window]}|${size[$window]}|$median_ms|$p95_ms|$min_ms|$max_ms|$server_ms|$others|$load|$WRK_RATE|$WRK_P50|$WRK_P99|$WRK_SERVER_US|$WRK_OTHERS")
done
after_summary_kib=$(kib "$SERVER_PID" VmRSS)
hwm_summary_kib=$(kib "$SERVER_PID" VmHWM)

# --- 2. CSV over HTTP -------------------------------------------------------------------------
EXPORTS=()  # "run|lines|bytes|wall|rows/s|MiB/s|before|max|after|readings|hwm|server s|others|load"
for ((run = 1; run <= CSV_RUNS; run++)); do
    csv=$WORK/export-http.csv
    rss=$WORK/rss-$run.txt
    : >"$rss"
    load=$(loadavg)
    log "GET /api/v1/samples.csv, run $run of $CSV_RUNS (load $load)"
    before_kib=$(kib "$SERVER_PID" VmRSS)
    rss_sampler_start "$SERVER_PID" "$rss" 0.02
    sleep 0.1  # a few readings before the download starts
    cpu_begin
    { time curl -s -o "$csv" -w '%{http_code} %{time_total} %{size_download}\n' \
        "$BASE/api/v1/samples.csv" >"$WORK/curl-csv.out"; } 2>"$WORK/curl-csv.time"
    after_kib=$(kib "$SERVER_PID" VmRSS)
    read -r code wall bytes <"$WORK/curl-csv.out"
    read -r _ client_s < <(wall_and_cpu "$WORK/curl-csv.time")
    read -r server_s others < <(cpu_end "$wall" "$client_s")
    sleep 0.1  # and a few after it
    sampler_stop
    hwm_kib=$(kib "$SERVER_PID" VmHWM)
    [[ $code == 200 ]] || die "/api/v1/samples.csv answered HTTP $code"
    lines=$(wc -l <"$csv")
    ((lines == rows + 1)) || die "the CSV export has $lines lines, expected $((rows + 1)) (header + $rows rows)"
    [[ $(head -1 "$csv") == time,outcome,* ]] || die "the CSV export starts with $(head -c 100 "$csv")"
    newest=$(sed -n '2s/,.*//p' "$csv")
    oldest=$(tail -1 "$csv" | cut -d, -f1)
    [[ $newest > $oldest ]] || die "the CSV export is not newest first: $newest ... $oldest"
    max_kib=$(sort -n "$rss" | tail -1)
    readings=$(wc -l <"$rss")
    read -r rate mib_s < <(awk -v r="$rows" -v w="$wall" -v b="$bytes" \
        'BEGIN { printf "%.0f %.1f\n", r / w, b / w / 1048576 }')
    EXPORTS+=("$run|$lines|$bytes|$wall|$rate|$mib_s|$before_kib|$max_kib|$after_kib|$readings|$hwm_kib|$server_s|$others|$load")
done
final_hwm_kib=$(kib "$SERVER_PID" VmHWM)
stop_server

# --- 3. CSV from the CLI ----------------------------------------------------------------------
CLI=()  # "run|lines|wall|rows/s|cpu|peak|others|load"
for ((run = 1; run <= CSV_RUNS; run++)); do
    csv=$WORK/export-cli.csv
    load=$(loadavg)
    log "internet-monitor export --format csv, run $run of $CSV_RUNS (load $load)"
    cpu_begin
    started=$(date +%s%N)
    /usr/bin/time -v "$BIN" export --format csv --db "$STORE_DB" >"$csv" 2>"$WORK/cli-time.txt" || {
        cat "$WORK/cli-time.txt" >&2
        die "export failed"
    }
    wall=$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$WORK/cli-time.txt")
    read -r _ others < <(cpu_end "$wall" "$cpu")
    peak_kib=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/cli-time.txt")
    lines=$(wc -l <"$csv")
    ((lines == rows + 1)) || die "the CLI export has $lines lines, expected $((rows + 1))"
    oldest=$(sed -n '2s/,.*//p' "$csv")
    newest=$(tail -1 "$csv" | cut -d, -f1)
    [[ $oldest < $newest ]] || die "the CLI export is not oldest first: $oldest ... $newest"
    rate=$(awk -v r="$rows" -v w="$wall" 'BEGIN { printf "%.0f", r / w }')
    CLI+=("$run|$lines|$wall|$rate|$cpu|$peak_kib|$others|$load")
done
if cmp -s <(head -1 "$WORK/export-cli.csv") <(head -1 "$WORK/export-http.csv") &&
    cmp -s <(tail -n +2 "$WORK/export-cli.csv" | tac) <(tail -n +2 "$WORK/export-http.csv"); then
    same="yes: the same header and rows, in opposite orders"
else
    same="**NO**: the CLI and HTTP exports differ (beyond their order)"
fi

# --- report -----------------------------------------------------------------------------------
echo
echo "internet-monitor history bench — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(bench_binary_label)"
echo "$rows 30-minute samples ($YEARS y) ending now, ~1 in 50 a failure; db $STORE_DB_MIB MiB, import $STORE_IMPORT_S s; load average at start $LOAD_START"
echo
echo "### /api/v1/summary"
echo
echo "| window | runs | body bytes | curl ×$REQUESTS median ms | p95 ms | min ms | max ms | server CPU ms/req | other procs, cores | load avg | wrk -t1 -c1 req/s | wrk p50 ms | wrk p99 ms | wrk: server CPU µs/req | wrk: other procs | target | |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|---|"
for row in "${SUMMARIES[@]}"; do
    IFS='|' read -r window runs bytes median_ms p95_ms min_ms max_ms server_ms others load rate p50 p99 wrk_cpu wrk_others <<<"$row"
    if [[ $window == 365d ]]; then
        target="≤ $SUMMARY_TARGET_MS ms" met="median $(verdict "$median_ms" "$SUMMARY_TARGET_MS" "<="), p95 $(verdict "$p95_ms" "$SUMMARY_TARGET_MS" "<=")"
    else
        target=- met=-
    fi
    echo "| $window | $runs | $bytes | $median_ms | $p95_ms | $min_ms | $max_ms | $server_ms | $others | $load | $rate | $p50 | $p99 | $wrk_cpu | $wrk_others | $target | $met |"
done
echo
echo "Server memory: VmRSS $(mib "$idle_kib") MiB idle after start-up, $(mib "$after_summary_kib") MiB after the summaries;"
echo "peak VmHWM $(mib "$hwm_before_kib") MiB before the summaries, $(mib "$hwm_summary_kib") MiB after them, $(mib "$final_hwm_kib") MiB after the CSV exports."
echo
echo "### GET /api/v1/samples.csv (everything, newest first)"
echo
echo "| run | lines | bytes | wall s | rows/s | MiB/s | RSS before MiB | RSS max during MiB | RSS after MiB | rise MiB | RSS readings | VmHWM after MiB | server CPU s | other procs, cores | load avg |"
echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
rates=() cold_rise='' warm_rise=''
for row in "${EXPORTS[@]}"; do
    IFS='|' read -r run lines bytes wall rate mib_s before max after readings hwm server_s others load <<<"$row"
    top=$((max > after ? max : after))
    rise=$(mib $((top - before)))
    if ((run == 1)); then
        cold_rise=$rise
    else
        warm_rise=$(awk -v a="${warm_rise:-0}" -v b="$rise" 'BEGIN { print (b > a ? b : a) }')
    fi
    rates+=("$rate")
    echo "| $run | $lines | $bytes | $(printf '%.3f' "$wall") | $rate | $mib_s | $(mib "$before") | $(mib "$max") | $(mib "$after") | $rise | $readings | $(mib "$hwm") | $server_s | $others | $load |"
done
median_rate=$(printf '%s\n' "${rates[@]}" | median | awk '{ printf "%.0f", $1 }')
echo
echo "Median $median_rate rows/s: target ≥ $CSV_TARGET_ROWS rows/s $(verdict "$median_rate" "$CSV_TARGET_ROWS" ">=");"
# The first export is the first read of most of the store by this server: the RSS it adds is
# what the store's page cache (redb's, 1 GiB at most by default) keeps of a file of
# $STORE_DB_MIB MiB; the later ones show whether the export itself holds memory.
echo "RSS rise (max during or after less before; flat: ≤ $RSS_RISE_MIB MiB): first export $cold_rise MiB" \
    "$(verdict "$cold_rise" "$RSS_RISE_MIB" "<="); later exports at most ${warm_rise:--} MiB" \
    "$(verdict "${warm_rise:--}" "$([[ -n $warm_rise ]] && echo "$RSS_RISE_MIB" || echo -)" "<="). The store file is $STORE_DB_MIB MiB."
echo "Lines: header + $rows rows; newest first."
echo
echo "### internet-monitor export --format csv (everything, oldest first; server stopped)"
echo
echo "| run | lines | wall s | rows/s | user+sys CPU s | peak RSS MiB | other procs, cores | load avg |"
echo "|--:|--:|--:|--:|--:|--:|--:|---|"
for row in "${CLI[@]}"; do
    IFS='|' read -r run lines wall rate cpu peak others load <<<"$row"
    echo "| $run | $lines | $wall | $rate | $cpu | $(mib "$peak") | $others | $load |"
done
echo
echo "Same rows as the HTTP export: $same."
