#!/usr/bin/env python3
"""Opens N keep-alive connections, sends one request on each, reads the answer and leaves the
connection idle. Used by bench/run's memory scenario (f); usable on its own.

usage: idle_conns.py HOST PORT N [PATH]

Protocol on stdout/stdin (line based, so a harness can measure the server in between):
  -> "READY ok=<n> failed=<n> secs=<t>"   every connection has had its answer (or failed)
  <- "check"                              (optional) count connections still open
  -> "OPEN <n> CLOSED <n>"                idle connections the server has not closed
  <- "quit" or EOF                        close everything and exit

Source addresses rotate over 127.0.0.1-127.0.0.4 when the target is 127.0.0.1, so the
ephemeral port range is never the limit. RLIMIT_NOFILE is raised as far as allowed.
"""
import os
import resource
import selectors
import socket
import sys
import time

CONCURRENT = 256  # connections in the connecting/requesting phase at once
DEADLINE = 120.0  # seconds for the whole opening phase


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want_hard in (max(hard, need), hard):
        want_soft = min(need, want_hard) if want_hard != resource.RLIM_INFINITY else need
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want_soft), want_hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else "/"
    limit = raise_nofile(n + 64)
    if limit < n + 16:
        print(f"idle_conns: RLIMIT_NOFILE is {limit}, opening {limit - 16} instead of {n}",
              file=sys.stderr)
        n = max(0, limit - 16)
    sources = [f"127.0.0.{i}" for i in range(1, 5)] if host == "127.0.0.1" else [None]
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()

    sel = selectors.DefaultSelector()
    idle = []
    ok = failed = started = 0
    active = {}  # sock -> [state, buffer]
    t0 = time.monotonic()

    def start_one(i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        src = sources[i % len(sources)]
        if src:
            s.bind((src, 0))
        err = s.connect_ex((host, port))
        if err not in (0, 115):  # EINPROGRESS
            s.close()
            return False
        active[s] = ["connect", b""]
        sel.register(s, selectors.EVENT_WRITE)
        return True

    def finish(s, good):
        nonlocal ok, failed
        sel.unregister(s)
        del active[s]
        if good:
            ok += 1
            idle.append(s)
        else:
            failed += 1
            s.close()

    while (started < n or active) and time.monotonic() - t0 < DEADLINE:
        while started < n and len(active) < CONCURRENT:
            if not start_one(started):
                failed += 1
            started += 1
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            st = active[s]
            if st[0] == "connect":
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    finish(s, False)
                    continue
                try:
                    s.send(request)  # tiny: goes out in one piece
                except OSError:
                    finish(s, False)
                    continue
                st[0] = "read"
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                finish(s, False)
                continue
            if not data:
                finish(s, False)
                continue
            st[1] += data
            buf = st[1]
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                continue
            head = buf[:end].decode("latin-1").split("\r\n")
            parts = head[0].split(" ")
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            length = 0
            closing = False
            for line in head[1:]:
                k, _, v = line.partition(":")
                k = k.strip().lower()
                if k == "content-length":
                    length = int(v.strip())
                elif k == "connection" and v.strip().lower() == "close":
                    closing = True
            if len(buf) >= end + 4 + length:
                finish(s, status == 200 and not closing)
    for s in list(active):
        finish(s, False)
    secs = time.monotonic() - t0
    print(f"READY ok={ok} failed={failed} secs={secs:.2f}", flush=True)

    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "check":
            # An idle connection that is readable has been closed (or written to) by the server.
            for s in idle:
                sel.register(s, selectors.EVENT_READ)
            closed = len(sel.select(timeout=0))
            for s in idle:
                sel.unregister(s)
            print(f"OPEN {len(idle) - closed} CLOSED {closed}", flush=True)
        elif cmd == "quit":
            break
    for s in idle:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
