#!/usr/bin/env python3
"""The origin of the content-cache scenarios k1-k3 (issue 20): a small HTTP/1.1 server that
serves two files of a directory and counts every request it gets.

usage: cache_origin.py PORT DIR [--delay S] [--log FILE]

  GET …/1k.bin          DIR/1k.bin (1 KiB)
  GET …/1m.bin          DIR/1m.bin (1 MiB)
  GET …/slow/…          the same files, answered after --delay seconds (default 0.5; k3's
                        stampede: the cache must hold the other requests while it waits)
  GET /__count          JSON {"total": N, "paths": {path: N, …}}: requests served so far,
                        this one left out (the harness reads it before and after a run)

Anything else is 404. Every answer has Content-Length and nothing that would keep a proxy
from caching it (no Cache-Control, Expires, Set-Cookie, Vary), so `proxy_cache_valid 200 10m`
decides. One thread per connection (ThreadingHTTPServer): if a cache lets a stampede through,
the requests really do reach the origin at once, each with its own delay. With --log, one
line per request (time, path) goes to FILE, as an access log. It prints `READY PORT` once it
listens. Loopback only.
"""
import argparse
import http.server
import json
import os
import sys
import threading
import time


class Origin(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096  # a stampede the cache lets through must not be refused
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("dir")
    ap.add_argument("--delay", type=float, default=0.5)
    ap.add_argument("--log")
    args = ap.parse_args()
    files = {}
    for name in ("1k.bin", "1m.bin"):
        with open(os.path.join(args.dir, name), "rb") as f:
            files[name] = f.read()
    lock = threading.Lock()
    counts = {}
    log = open(args.log, "a", buffering=1) if args.log else None

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "origin"
        sys_version = ""

        def log_message(self, *a):
            pass

        def send_body(self, status, body, ctype):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/__count":
                with lock:
                    body = json.dumps({"total": sum(counts.values()),
                                       "paths": dict(counts)}).encode()
                self.send_body(200, body, "application/json")
                return
            with lock:
                counts[path] = counts.get(path, 0) + 1
            if log:
                log.write(f"{time.time():.6f} {self.command} {self.path}\n")
            name = path.rsplit("/", 1)[-1]
            if name not in files:
                self.send_body(404, b"not found\n", "text/plain")
                return
            if "/slow/" in path:
                time.sleep(args.delay)
            self.send_body(200, files[name], "application/octet-stream")

        do_HEAD = do_GET

    srv = Origin(("127.0.0.1", args.port), Handler)
    print(f"READY {args.port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
