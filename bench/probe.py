# bench/probe.py PID PORT SECONDS [path]: probes /metrics (or path) every 0.25 s on a new connection and samples the
# server's VmRSS; prints the latencies, failures and peak RSS as JSON.
import sys, time, socket, json
pid, port, dur = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
path = sys.argv[4] if len(sys.argv) > 4 else "/metrics"
def rss():
    d = {}
    for l in open(f"/proc/{pid}/status"):
        if l.startswith(("VmRSS", "VmHWM", "Threads")): k, v = l.split(":"); d[k] = int(v.split()[0])
    return d
lat = []; fails = []; maxrss = 0; end = time.time() + dur; t_start=time.time()
while time.time() < end:
    t0 = time.time()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        while True:
            c = s.recv(65536)
            if not c: break
            buf += c
        s.close()
        dt = time.time() - t0
        st = buf.split(b" ", 2)[1] if buf else b"EMPTY"
        if st != b"200": fails.append((round(t0-t_start,1), st.decode(errors="replace")))
        lat.append((dt, round(t0-t_start,1)))
    except Exception as e:
        fails.append((round(t0-t_start,1), repr(e))); lat.append((time.time()-t0, round(t0-t_start,1)))
    try: r = rss(); maxrss = max(maxrss, r["VmRSS"])
    except Exception as e: fails.append(("proc", repr(e))); break
    time.sleep(max(0, 0.25 - (time.time() - t0)))
ls = sorted(x[0] for x in lat)
print(json.dumps({"probes": len(lat), "max_ms": round(ls[-1]*1000,1) if ls else None, "p50_ms": round(ls[len(ls)//2]*1000,1) if ls else None,
  "over_100ms": sum(1 for x in ls if x > 0.1), "worst": sorted(lat, reverse=True)[:5], "fails": fails[:10], "nfails": len(fails),
  "max_rss_kb": maxrss, "final": rss()}))
