#!/usr/bin/env bash
# bench/dashboard.sh: the dashboard at `/` in headless Chromium, over 1 and 5 years of history.
#
# For stores of 1 year and 5 years of 30-minute samples ending now (17,520 and 87,600 samples,
# about 1 in 50 a failure; generated and imported by bench/common.sh, as bench/history.sh does),
# on a running `serve --start-delay 1000h --speedtest-bin /bin/false` with a plan, it measures:
#   1. in Debian's headless Chromium (playwright-core from tools/browser, as the browser tests
#      use it), the time from navigation start to `document.body.dataset.drawn` being set (every
#      chart and table of the range drawn: the page's own signal), for the default range (`/`),
#      `?range=1y` and a 5-year `?from=…&to=…` range; each load in a fresh browser context (no
#      HTTP cache). "warm": one load to warm up, then $LOADS loads on the same server; "cold":
#      $LOADS loads, each on a server started for it (nothing read from the store yet). The
#      median of each;
#   2. the page weight of each range: the bytes transferred (encoded bodies, gzip, by the
#      Performance API) of the page and its assets, and of the JSON the page fetched;
#   3. the server time of GET /api/v1/series and /api/v1/heatmap over 5 years as curl sees it
#      (`-w %{time_starttransfer}`, gzip accepted), $REQUESTS requests each: median and p95,
#      and the body size gzipped and not.
# It prints markdown tables with the issue's goals (≤ 1 s to draw a year, ≤ 2 s five years,
# ≤ 10 ms per endpoint over 5 years, ≤ 150 KB gzipped for the page, ≤ 200 KB for a series).
#
# Run from anywhere (builds `cargo build --release --locked` first; needs chromium, Node.js and
# `npm ci --prefix tools/browser`, which it runs when node_modules is missing):
#
#     bench/dashboard.sh
#
# Knobs (environment): BIN=path/to/internet-monitor skips the build; REV=commit builds that
# commit (see bench/common.sh); YEARS_LIST="1 5"; LOADS=5; REQUESTS=20; QUIET=900 waits for a
# quiet machine first; KEEP=1 keeps the scratch directory (the driver's JSON reports are there).
# Takes about 3 minutes on 2 cores, after the build.
set -euo pipefail

# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
YEARS_LIST=${YEARS_LIST:-"1 5"}
LOADS=${LOADS:-5}
REQUESTS=${REQUESTS:-20}
DRIVER=$ROOT/tools/browser/dashboard.mjs
PLAN=(--plan-download 100Mbit/s --plan-upload 20Mbit/s)

need_tools node curl jq python3 awk
[[ -x /usr/bin/chromium ]] || ensure_tool /usr/bin/chromium chromium
if [[ ! -f $ROOT/tools/browser/node_modules/playwright-core/package.json ]]; then
    log "npm ci --prefix tools/browser"
    npm ci --prefix "$ROOT/tools/browser" --no-audit --no-fund >&2
fi
bench_init dashboard
bench_binary
await_quiet

serve_args=(--start-delay 1000h --speedtest-bin /bin/false "${PLAN[@]}")
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
five_years_ago=$(date -u -d "$now - 5 years" +%Y-%m-%dT%H:%M:%SZ)
one_year_ago=$(date -u -d "$now - 1 year" +%Y-%m-%dT%H:%M:%SZ)
PATHS=("/" "/?range=1y" "/?from=$five_years_ago&to=$now")
NAMES=("default" "1y" "5y (from/to)")

# drive OUT.json PATH LOADS WARMUP: one driver run (one browser) against $BASE.
drive() {
    local out=$1 path=$2 loads=$3 warmup=$4
    node "$DRIVER" bench "$BASE" "$WORK" --path "$path" --loads "$loads" --warmup "$warmup" \
        >"$out" 2>>"$WORK/driver.log" || die "the driver failed: $(tail -5 "$WORK/driver.log")"
    local problems
    problems=$(jq -c '.problems' "$out")
    [[ $problems == "[]" ]] || die "the page reported problems on $path: $problems"
    jq -e --arg p "$path" '.paths[$p].loads | all(.drawn_ms != null)' "$out" >/dev/null ||
        die "a load of $path never drew: $(jq -c --arg p "$path" '.paths[$p].loads' "$out")"
}

# The drawn_ms of every load of PATH in the given reports, one a line.
times_of() {
    local path=$1
    shift
    jq -r --arg p "$path" '.paths[$p].drawn_ms[]' "$@"
}

# curl_times URL: $REQUESTS × time_starttransfer in ms (gzip accepted), one a line; checks 200.
curl_times() {
    local url=$1 i code seconds
    for ((i = 0; i < REQUESTS; i++)); do
        read -r code seconds < <(curl -s -o /dev/null -H 'Accept-Encoding: gzip' \
            -w '%{http_code} %{time_starttransfer}\n' "$url")
        [[ $code == 200 ]] || die "$url answered HTTP $code"
        awk -v s="$seconds" 'BEGIN { printf "%.3f\n", s * 1000 }'
    done
}

# body_sizes URL: "gzipped plain" bytes of one answer.
body_sizes() {
    local gz plain
    gz=$(curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{size_download}' "$1")
    plain=$(curl -s -o /dev/null -w '%{size_download}' "$1")
    echo "$gz $plain"
}

DRAWN=()     # "years|range|warm median|warm all|cold median|cold all"
WEIGHT=()    # "years|assets bytes|api bytes|total|requests"
ENDPOINTS=() # "years|endpoint|median|p95|gz|plain"
for years in $YEARS_LIST; do
    make_store "$years"
    log "$years year(s): $STORE_SAMPLES samples imported in ${STORE_IMPORT_S} s ($STORE_DB_MIB MiB)"

    # Cold: a server started for each load.
    unset cold
    declare -A cold=()
    for i in "${!PATHS[@]}"; do
        files=()
        for ((load = 0; load < LOADS; load++)); do
            start_server "$STORE_DB" "$WORK/serve.log" "${serve_args[@]}"
            drive "$WORK/cold-$years-$i-$load.json" "${PATHS[$i]}" 1 0
            stop_server
            files+=("$WORK/cold-$years-$i-$load.json")
        done
        cold[$i]=$(times_of "${PATHS[$i]}" "${files[@]}" | tr '\n' ' ')
    done

    start_server "$STORE_DB" "$WORK/serve.log" "${serve_args[@]}"
    for i in "${!PATHS[@]}"; do
        log "$years y, ${NAMES[$i]}: $LOADS warm loads (load average $(loadavg))"
        drive "$WORK/warm-$years-$i.json" "${PATHS[$i]}" "$LOADS" 1
        warm=$(times_of "${PATHS[$i]}" "$WORK/warm-$years-$i.json" | tr '\n' ' ')
        DRAWN+=("$years|${NAMES[$i]}|$(tr ' ' '\n' <<<"$warm" | grep . | median)|$warm|$(tr ' ' '\n' <<<"${cold[$i]}" | grep . | median)|${cold[$i]}")
        # The weight: the page and its assets, the JSON it fetched (the series and the first
        # page of runs apart), as transferred and as decoded.
        WEIGHT+=("$years|${NAMES[$i]}|$(jq -r --arg p "${PATHS[$i]}" '.paths[$p].loads[0]
            | def sum(f): [.by_path[] | select(f)] | map(.encoded) | add // 0;
            [sum(.path | startswith("/api/") | not), sum(.path | startswith("/api/")),
             sum(.path == "/api/v1/series"), sum(.path == "/api/v1/samples"),
             .encoded_bytes, .decoded_bytes, .requests] | join("|")' "$WORK/warm-$years-$i.json")")
    done

    for request in "series?from=(5 y ago)&to=(now)|series?from=$five_years_ago&to=$now" \
        "heatmap?from=(5 y ago)&to=(now)|heatmap?from=$five_years_ago&to=$now" \
        "series?from=(1 y ago)&to=(now)|series?from=$one_year_ago&to=$now" \
        "series (default: 24 h)|series" "heatmap (default: 30 d)|heatmap"; do
        label=${request%%|*}
        url="$BASE/api/v1/${request#*|}"
        log "$REQUESTS × curl $url"
        curl -s -o /dev/null "$url" # the first request reads the store; the table shows the rest
        times=$(curl_times "$url")
        read -r gz plain < <(body_sizes "$url")
        ENDPOINTS+=("$years|/api/v1/$label|$(median <<<"$times")|$(percentile 95 1 <<<"$times")|$gz|$plain")
    done
    stop_server
done

cat <<EOF

## Dashboard — \`bench/dashboard.sh\`

$(bench_binary_label); $(nproc) cores; $(chromium --version 2>/dev/null | tail -1); load average at the end $(loadavg).

### Navigation start → every chart drawn (\`document.body.dataset.drawn\`), ms

Each load in a fresh browser context. Warm: the same server, after one warm-up load. Cold: a
server started for the load. Goal: ≤ 1000 ms for a year, ≤ 2000 ms for 5 years.

| store | range | warm median | warm loads | cold median | cold loads |
|---|---|---:|---|---:|---|
EOF
for row in "${DRAWN[@]}"; do
    IFS='|' read -r years name warm_median warm cold_median cold <<<"$row"
    echo "| ${years} y | $name | $warm_median | $warm | $cold_median | $cold |"
done
cat <<EOF

### Page weight (bytes of encoded bodies, as transferred; goal ≤ 150 KB gzipped for the page)

| store | range | page + assets | JSON | of which series | of which runs (samples) | total | total decoded | requests |
|---|---|---:|---:|---:|---:|---:|---:|---:|
EOF
for row in "${WEIGHT[@]}"; do
    IFS='|' read -r years name assets api series samples total decoded requests <<<"$row"
    echo "| ${years} y | $name | $assets | $api | $series | $samples | $total | $decoded | $requests |"
done
cat <<EOF

### Server time (curl \`time_starttransfer\`, gzip accepted, $REQUESTS requests; goal ≤ 10 ms over 5 years) and size

| store | request | median ms | p95 ms | gzip bytes | plain bytes |
|---|---|---:|---:|---:|---:|
EOF
for row in "${ENDPOINTS[@]}"; do
    IFS='|' read -r years request median p95 gz plain <<<"$row"
    echo "| ${years} y | \`${request}\` | $median | $p95 | $gz | $plain |"
done
