#!/usr/bin/env python3
"""Generates a large NGINX-style config for the compile benchmark.

usage: gen_config.py OUT.conf [servers] [locations_per_server] [upstreams]

The same text is valid for nginx and for protonc: servers with exact, wildcard and regex
names; per server a mix of prefix, exact, ^~, regex and nested locations; upstream groups
referenced by proxy_pass.
"""
import sys

out = sys.argv[1]
servers = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
per = int(sys.argv[3]) if len(sys.argv) > 3 else 10
ups = int(sys.argv[4]) if len(sys.argv) > 4 else 100

lines = ["events { worker_connections 1024; }", "http {", "    access_log off;"]
for u in range(ups):
    lines.append(f"    upstream up{u} {{")
    for k in range(3):
        lines.append(f"        server 127.0.0.{k + 1}:{9000 + u} weight={k + 1} max_fails=2 fail_timeout=5s;")
    lines.append("        keepalive 16;")
    lines.append("    }")
for s in range(servers):
    port = 10000 + s % 50
    lines.append("    server {")
    lines.append(f"        listen 127.0.0.1:{port};")
    if s % 10 == 0:
        names = f"*.site{s}.example.com"
    elif s % 10 == 1:
        names = f"www.site{s}.*"
    elif s % 10 == 2:
        names = f"~^api{s}\\d+\\.example\\.net$"
    else:
        names = f"site{s}.example.com www.site{s}.example.com"
    lines.append(f"        server_name {names};")
    lines.append(f"        root /srv/site{s};")
    lines.append("        add_header X-Served-By proton;")
    # `per` location blocks per server: per-2 top-level ones cycling through four kinds,
    # and one prefix location with one nested location (10 per server = 10,000 in all).
    for l in range(per - 2):
        kind = l % 4
        if kind == 0:
            lines.append(f"        location /p{l}/ {{ proxy_pass http://up{(s + l) % ups}; proxy_set_header Host $host; }}")
        elif kind == 1:
            lines.append(f"        location = /e{l} {{ return 200 \"s{s} l{l}\"; }}")
        elif kind == 2:
            lines.append(f"        location ^~ /static{l}/ {{ expires 1h; try_files $uri =404; }}")
        elif kind == 3:
            lines.append(f"        location ~* ^/img{l}/.+\\.(png|jpg)$ {{ expires 30d; }}")
    lines.append("        location /n/ {")
    lines.append(f"            location ~ ^/n/.+\\.json$ {{ default_type application/json; return 200 \"s{s} json\"; }}")
    lines.append("        }")
    lines.append("    }")
lines.append("}")
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
