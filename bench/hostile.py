# bench/hostile.py: asyncio clients against a serve on 127.0.0.1 (loopback only; every loop ends after --dur).
# usage: hostile.py --port P --n N --mode noread|slowread|slowheader --paths p1,p2 --dur S [--rate conns/s] [--rcvbuf B] [--readbytes K] [--every T] [--pipeline M] [--reconnect]
import asyncio, socket, argparse, time, random, collections
ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int); ap.add_argument("--n", type=int, default=100)
ap.add_argument("--mode", default="noread"); ap.add_argument("--paths", default="/graph")
ap.add_argument("--dur", type=float, default=30); ap.add_argument("--rate", type=float, default=0)
ap.add_argument("--rcvbuf", type=int, default=0); ap.add_argument("--readbytes", type=int, default=64)
ap.add_argument("--every", type=float, default=3); ap.add_argument("--pipeline", type=int, default=1)
ap.add_argument("--method", default="GET"); ap.add_argument("--extra", default="")
ap.add_argument("--reconnect", action="store_true")
a = ap.parse_args()
paths = a.paths.split(",")
stats = collections.Counter(); first = collections.Counter()
end = time.time() + a.dur
def mk():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if a.rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
    s.setblocking(False); return s
async def one(i):
    loop = asyncio.get_running_loop()
    while time.time() < end:
        s = mk()
        try:
            await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", a.port)), 10)
            stats["connected"] += 1
            path = paths[i % len(paths)]
            req = "".join(f"{a.method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{a.extra.replace('|', chr(13)+chr(10))}\r\n" for _ in range(a.pipeline)).encode()
            if a.mode == "slowheader":
                for ch in req[:-2]:
                    if time.time() > end: break
                    await loop.sock_sendall(s, bytes([ch])); await asyncio.sleep(a.every)
            else:
                await loop.sock_sendall(s, req)
            got = 0; firstchunk = True
            while time.time() < end:
                if a.mode == "noread":
                    # detect close without reading: peek is not available; just sleep and probe with zero-length op
                    await asyncio.sleep(1)
                    try:
                        d = s.recv(1, socket.MSG_PEEK)
                        if d == b"": stats["closed_by_server"] += 1; break
                    except BlockingIOError: pass
                    continue
                d = await asyncio.wait_for(loop.sock_recv(s, a.readbytes), 60)
                if firstchunk and d: first[d[:12]] += 1; firstchunk = False
                if not d: stats["closed_by_server"] += 1; break
                got += len(d); stats["bytes"] += len(d)
                await asyncio.sleep(a.every if a.mode == "slowread" else 0)
        except Exception as e:
            stats["err:" + type(e).__name__] += 1
        finally:
            s.close()
        if not a.reconnect: break
        await asyncio.sleep(0.5)
async def main():
    tasks = []
    for i in range(a.n):
        tasks.append(asyncio.create_task(one(i)))
        if a.rate: await asyncio.sleep(1 / a.rate)
    await asyncio.wait(tasks, timeout=max(1, end - time.time() + 5))
    for t in tasks: t.cancel()
    print(dict(stats), dict(first))
asyncio.run(main())
