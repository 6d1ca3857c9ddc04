#!/usr/bin/env bash
# bench/abuse.sh: `internet-monitor serve` under 2,000 hostile connections (issue 11, section 2).
#
# Over a store of $SAMPLES one-minute samples ending an hour ago (default 2,000,000, as in the
# issue; loaded with `internet-monitor import`), `serve --interval 5s` runs the fake CLI
# (tests/fake-speedtest replaying tests/fixtures/ok-1.2-with-loaded-latency) while a Python
# driver holds $HOSTILE connections for $DURATION seconds, in four equal kinds:
#   - GET /api/v1/samples?limit=10000, never read;
#   - GET /api/v1/samples.csv (the whole store), never read;
#   - 60 KB of headers that never end;
#   - nothing at all;
# and $LOOPERS threads loop on GET /api/v1/summary?window=3650d, reading each answer.
# Meanwhile it probes /metrics and /healthz every 100 ms (each on a new connection, 20 s
# timeout) and samples the server's VmRSS every 20 ms. It reports:
#   - RSS idle, peak (VmHWM) and after the clients closed;
#   - /metrics and /healthz latency: median, p99 and worst (ms); probes that got no answer;
#   - summaries answered (200 / 503);
#   - the scheduled runs: each slot in the abuse, whether its sample was stored, how late it
#     started (the sample's time against its slot) and how long after its start it was
#     stored (the log line's own timestamp);
#   - the seconds until the server had closed every hostile connection (its open files back
#     to idle), while the clients still held them.
#
#     bench/abuse.sh                 # the working tree
#     REV=30d9427 bench/abuse.sh     # before the fix (any commit; built under target/bench-rev/)
#
# Knobs: SAMPLES, HOSTILE=2000, LOOPERS=8, DURATION=20, BIN=path (no build), QUIET=SECONDS,
# KEEP=1. Takes about a minute after the build and the import (2 M samples: ~1 min).
set -euo pipefail

# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SAMPLES=${SAMPLES:-2000000}
HOSTILE=${HOSTILE:-2000}
LOOPERS=${LOOPERS:-8}
DURATION=${DURATION:-20}

need_tools python3 curl
bench_init abuse
bench_binary
ulimit -n "$(ulimit -Hn)"
((HOSTILE + 200 <= $(ulimit -n))) || die "open-files limit $(ulimit -n) too low for $HOSTILE connections"

log "generating $SAMPLES one-minute samples"
python3 - "$SAMPLES" "$WORK/store.jsonl" <<'PY'
import sys, time
n, path = int(sys.argv[1]), sys.argv[2]
end = int(time.time()) - 3600
with open(path, "w") as out:
    for i in range(n):
        t = end - (n - i) * 60
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))
        out.write('{"time":"%s","outcome":"success","trigger":"schedule",'
                  '"download_bytes_per_second":%d,"upload_bytes_per_second":%d,"ping_seconds":0.00%d,'
                  '"server":{"id":57318,"name":"Zzoomm Plc","location":"Slough","country":"United Kingdom",'
                  '"host":"speedtest.zzoomm.com"},"isp":"Giganet Limited",'
                  '"result_url":"https://www.speedtest.net/result/c/%08d-aaaa-bbbb-cccc-dddddddddddd"}\n'
                  % (stamp, 100000000 + i * 7 % 9999991, 30000000 + i * 13 % 999983, 5 + i % 4, i))
PY
log "importing"
"$BIN" import --db "$WORK/store.redb" "$WORK/store.jsonl" 2>"$WORK/import.log" ||
    die "import failed: $(cat "$WORK/import.log")"
rm -f "$WORK/store.jsonl"
await_quiet

export FAKE_SPEEDTEST_FIXTURE=$ROOT/tests/fixtures/ok-1.2-with-loaded-latency
start_server "$WORK/store.redb" "$WORK/serve.log" --interval 5s --log-format text \
    --speedtest-bin "$ROOT/tests/fake-speedtest"
log "serve $SERVER_PID on $BASE; abuse for $DURATION s"
python3 - "$SERVER_PID" "$PORT" "$WORK/serve.log" "$HOSTILE" "$LOOPERS" "$DURATION" <<'PY'
import os, re, socket, statistics, sys, threading, time, calendar

pid, port, log_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
hostile, loopers, duration = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
address = ("127.0.0.1", port)

def kib(field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])

def files():
    return len(os.listdir(f"/proc/{pid}/fd"))

def get(path, timeout=20):
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return int(data.split(b" ", 2)[1])

def millis(stamp):
    """RFC 3339 UTC, any number of fraction digits or none, to ms."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S")) * 1000 + int((frac + "000")[:3])

def stored():
    """(sample time, logged at) of each stored scheduled run, in ms."""
    runs = []
    with open(log_path, errors="replace") as log:
        for line in log:
            if "test succeeded" in line and "trigger=schedule" in line:
                logged = millis(line.split()[0])
                sample = millis(re.search(r"time=(\S+)", line).group(1))
                runs.append((sample, logged))
    return runs

idle_rss, idle_files = kib("VmRSS"), files()
grid = stored()
if not grid:
    time.sleep(6)
    grid = stored()
grid_ms = grid[0][0]
stop = threading.Event()
peak = [idle_rss]

def sampler():
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], kib("VmRSS"))
        except (FileNotFoundError, TypeError):
            return
        time.sleep(0.02)

def hostile_client(i):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(address)
        kind = i % 4
        if kind == 0:
            s.sendall(b"GET /api/v1/samples?limit=10000 HTTP/1.1\r\nHost: x\r\n\r\n")
        elif kind == 1:
            s.sendall(b"GET /api/v1/samples.csv HTTP/1.1\r\nHost: x\r\n\r\n")
        elif kind == 2:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 60000)
    except OSError:
        pass
    return s

summaries = []
def looper():
    while not stop.is_set():
        try:
            summaries.append(get("/api/v1/summary?window=3650d"))
        except OSError:
            summaries.append(0)

threading.Thread(target=sampler, daemon=True).start()
started = time.time() * 1000
clients = []
opener = threading.Thread(target=lambda: clients.extend(hostile_client(i) for i in range(hostile - loopers)))
opener.start()
threads = [threading.Thread(target=looper, daemon=True) for _ in range(loopers)]
for t in threads:
    t.start()
latency = {"/metrics": [], "/healthz": []}
failed = {"/metrics": 0, "/healthz": 0}
while time.time() * 1000 - started < duration * 1000:
    for path in latency:
        t0 = time.perf_counter()
        try:
            status = get(path)
            latency[path].append((time.perf_counter() - t0) * 1000)
            if status != 200:
                failed[path] += 1
        except OSError:
            failed[path] += 1
    time.sleep(0.1)
ended = time.time() * 1000
stop.set()
opener.join()
for t in threads:
    t.join(timeout=25)
# The server is to close every hostile connection itself while the clients hold them.
closing = time.time()
while files() > idle_files + 10 and time.time() - closing < 60:
    time.sleep(0.1)
closed_after = time.time() * 1000 - started
left = files()
hwm = kib("VmHWM")
for c in clients:
    c.close()
time.sleep(2)
after = kib("VmRSS")

def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[max(0, -(-len(values) * p // 100) - 1)]

print(f"RSS: idle {idle_rss / 1024:.1f} MiB, peak (VmHWM) {hwm / 1024:.1f} MiB, "
      f"sampled peak {peak[0] / 1024:.1f} MiB, after the clients closed {after / 1024:.1f} MiB")
for path, values in latency.items():
    print(f"{path}: {len(values)} answered, median {pct(values, 50):.1f} ms, p99 {pct(values, 99):.1f} ms, "
          f"worst {max(values, default=float('nan')):.1f} ms; {failed[path]} without a 200 within 20 s")
print(f"summaries: {summaries.count(200)} answered 200, {summaries.count(503)} 503, "
      f"{len(summaries) - summaries.count(200) - summaries.count(503)} other or failed")
runs = stored()
slots = [s for s in range(int((started - grid_ms) // 5000) + 1, int((ended - 1000 - grid_ms) // 5000) + 1)]
on_time = 0
for slot in slots:
    due = grid_ms + slot * 5000
    match = [r for r in runs if abs(r[0] - due) < 2500]
    if match:
        sample, logged = match[0]
        print(f"slot +{slot * 5} s: started {sample - due:+d} ms from its slot, stored {logged - sample} ms after")
        on_time += abs(sample - due) <= 500 and logged - sample <= 1000
    else:
        print(f"slot +{slot * 5} s: no sample stored")
print(f"scheduled runs on time (within 500 ms of the slot, stored within 1 s): {on_time} of {len(slots)}")
print(f"hostile connections closed by the server: {'all' if left <= idle_files + 10 else f'not all ({left} files open)'}"
      f" {closed_after / 1000:.1f} s after the abuse began")
PY
stop_server
log "binary: $(bench_binary_label)"
