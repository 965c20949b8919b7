#!/usr/bin/env python3
"""The client of scenario (k3), a cold-cache stampede (issue 20): N clients ask for one key at
once.

usage: stampede.py PORT PATH N --expect FILE [--timeout S] [--connect-timeout S]

It first opens N connections to 127.0.0.1:PORT (at most 100 connects in flight, so the
server's listen backlog is never the limit) and sends nothing on them; once all are open (or
have failed) it writes the same `GET PATH` on every one of them in one loop, as fast as it can,
then reads the N answers (status line, headers, Content-Length body). So the N requests reach
the server within a few milliseconds of each other, all on already accepted connections.

Prints one line:
STAMPEDE {"n", "connected", "connect_failed", "answered", "statuses": {code: n},
          "x_cache": {value: n}, "body_ok", "body_bad", "errors", "first_error",
          "send_spread_ms", "p50_ms", "max_ms", "first_ms", "wall_s"}
(`x_cache` counts the X-Cache header, `$upstream_cache_status` in the bench configs; a body is
ok when it is exactly --expect's bytes; times from the start of the send loop.) Exit 0 even
when requests fail: the harness judges.
"""
import argparse
import asyncio
import json
import resource
import sys
import time


async def connect(port, sem, timeout):
    async with sem:
        return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)


async def read_answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = await reader.readexactly(n) if n else b""
    return status, headers, body


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("path")
    ap.add_argument("n", type=int)
    ap.add_argument("--expect", required=True)
    ap.add_argument("--timeout", type=float, default=15.0)
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.n + 100
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    with open(args.expect, "rb") as f:
        expect = f.read()

    sem = asyncio.Semaphore(100)
    conns = await asyncio.gather(*(connect(args.port, sem, args.connect_timeout)
                                   for _ in range(args.n)), return_exceptions=True)
    ok = [c for c in conns if not isinstance(c, BaseException)]
    errs = [c for c in conns if isinstance(c, BaseException)]
    req = (f"GET {args.path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: stampede\r\n"
           f"Accept: */*\r\n\r\n").encode()

    t0 = time.monotonic()
    for _, w in ok:
        w.write(req)
    t_sent = time.monotonic()
    done_at = []

    async def one(reader):
        r = await asyncio.wait_for(read_answer(reader), args.timeout)
        done_at.append(time.monotonic() - t0)
        return r

    answers = await asyncio.gather(*(one(r) for r, _ in ok), return_exceptions=True)
    wall = time.monotonic() - t0
    statuses, xcache = {}, {}
    body_ok = body_bad = 0
    first_error = repr(errs[0]) if errs else None
    errors = 0
    for a in answers:
        if isinstance(a, BaseException):
            errors += 1
            first_error = first_error or repr(a)
            continue
        status, headers, body = a
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        xc = headers.get("x-cache", "(none)")
        xcache[xc] = xcache.get(xc, 0) + 1
        if status == 200 and body == expect:
            body_ok += 1
        else:
            body_bad += 1
            first_error = first_error or f"status {status}, X-Cache {xc}, {len(body)} bytes"
    for _, w in ok:
        w.close()
    done_at.sort()
    out = {
        "n": args.n, "connected": len(ok), "connect_failed": len(errs),
        "answered": len(ok) - errors, "statuses": statuses, "x_cache": xcache,
        "body_ok": body_ok, "body_bad": body_bad, "errors": errors, "first_error": first_error,
        "send_spread_ms": round((t_sent - t0) * 1000, 2),
        "p50_ms": round(done_at[len(done_at) // 2] * 1000, 1) if done_at else None,
        "max_ms": round(done_at[-1] * 1000, 1) if done_at else None,
        "first_ms": round(done_at[0] * 1000, 1) if done_at else None,
        "wall_s": round(wall, 3),
    }
    print("STAMPEDE " + json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
