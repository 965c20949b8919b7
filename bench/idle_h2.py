#!/usr/bin/env python3
"""Opens N TLS connections that speak HTTP/2 (ALPN h2), completes the connection preface and
SETTINGS exchange on each, and leaves them idle. Used by bench/run's memory scenario (h4);
usable on its own.

usage: idle_h2.py HOST PORT N [--sni NAME] [--threads T] [--timeout S]

Per connection: TCP connect, TLS handshake offering only `h2` by ALPN (any certificate
accepted: a loopback test server with a self-signed one; never point this at anything else),
then the client preface and an empty SETTINGS frame; it reads the server's frames until it
has both the server's SETTINGS (answered with a SETTINGS ACK) and the ACK of its own, then
holds the connection without sending anything more. No request is sent.

Protocol on stdout/stdin (idle_conns.py's, so a harness can measure the server in between):
  -> "READY ok=<n> failed=<n> secs=<t>"   every connection has done the exchange (or failed)
  <- "check"                              (optional) count connections still open
  -> "OPEN <n> CLOSED <n>"                idle connections the server has not closed
  <- "quit" or EOF                        close everything and exit

`check` reads what the server sent since: end of stream, an error, or a GOAWAY frame counts
the connection as closed (a late WINDOW_UPDATE or SETTINGS ACK does not). Source addresses
rotate over 127.0.0.1-127.0.0.4 when the target is 127.0.0.1; RLIMIT_NOFILE is raised as far
as allowed. Connections are opened by T threads (default 8; the handshakes release the GIL).
"""
import argparse
import concurrent.futures
import resource
import selectors
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, GOAWAY = 0x4, 0x7
ACK = 0x1
DEADLINE = 120.0  # seconds for the whole opening phase


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(
        ">I", stream & 0x7FFFFFFF) + payload


def frames(buf):
    """Complete frames at the start of `buf`: ([(type, flags)], rest)."""
    out = []
    while len(buf) >= 9:
        length = int.from_bytes(buf[:3], "big")
        if len(buf) < 9 + length:
            break
        out.append((buf[3], buf[4]))
        buf = buf[9 + length:]
    return out, buf


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""


def open_one(i, host, port, sni, timeout, sources, ctx, t0):
    """One connection through the exchange; the Conn, or None on failure."""
    if time.monotonic() - t0 > DEADLINE:
        return None
    src = sources[i % len(sources)]
    s = None
    try:
        raw = socket.create_connection((host, port), timeout=timeout,
                                       source_address=(src, 0) if src else None)
        s = ctx.wrap_socket(raw, server_hostname=sni)
        if s.selected_alpn_protocol() != "h2":
            s.close()
            return None
        s.sendall(PREFACE + frame(SETTINGS, 0, 0))
        c = Conn(s)
        got_settings = got_ack = False
        while not (got_settings and got_ack):
            data = s.recv(65536)
            if not data:
                s.close()
                return None
            got, c.buf = frames(c.buf + data)
            for ftype, flags in got:
                if ftype == GOAWAY:
                    s.close()
                    return None
                if ftype == SETTINGS and flags & ACK:
                    got_ack = True
                elif ftype == SETTINGS:
                    got_settings = True
                    s.sendall(frame(SETTINGS, ACK, 0))
        s.setblocking(False)
        return c
    except (OSError, ssl.SSLError):
        if s is not None:
            s.close()
        return None


def still_open(c):
    """False when the server closed the connection, failed it, or sent GOAWAY since."""
    try:
        while True:
            data = c.sock.recv(65536)
            if not data:
                return False
            got, c.buf = frames(c.buf + data)
            if any(t == GOAWAY for t, _ in got):
                return False
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return True
    except (OSError, ssl.SSLError):
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("--sni", default="localhost")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()
    n = a.n
    limit = raise_nofile(n + 64)
    if limit < n + 16:
        print(f"idle_h2: RLIMIT_NOFILE is {limit}, opening {limit - 16} instead of {n}",
              file=sys.stderr)
        n = max(0, limit - 16)
    sources = [f"127.0.0.{i}" for i in range(1, 5)] if a.host == "127.0.0.1" else [None]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.threads)) as ex:
        conns = list(ex.map(lambda i: open_one(i, a.host, a.port, a.sni, a.timeout, sources,
                                               ctx, t0), range(n)))
    idle = [c for c in conns if c is not None]
    secs = time.monotonic() - t0
    print(f"READY ok={len(idle)} failed={n - len(idle)} secs={secs:.2f}", flush=True)

    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "check":
            sel = selectors.DefaultSelector()
            for c in idle:
                sel.register(c.sock, selectors.EVENT_READ, c)
            readable = [key.data for key, _ in sel.select(timeout=0)]
            sel.close()
            closed = sum(1 for c in readable if not still_open(c))
            print(f"OPEN {len(idle) - closed} CLOSED {closed}", flush=True)
        elif cmd == "quit":
            break
    for c in idle:
        c.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
