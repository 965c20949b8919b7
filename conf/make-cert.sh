#!/bin/sh
# Makes the self-signed certificate the default config's HTTPS server uses
# (conf/tls/localhost.crt and .key: ECDSA P-256, for localhost and 127.0.0.1, valid 30 days),
# unless it is already there. For trying Proton out only: browsers will warn about it.
# Safe to run concurrently: the pair is made in a directory of its own, then renamed into
# place in one step, so nobody ever sees a key without its certificate.
set -eu
conf=$(cd "$(dirname "$0")" && pwd)
[ -s "$conf/tls/localhost.crt" ] && [ -s "$conf/tls/localhost.key" ] && exit 0
tmp=$(mktemp -d "$conf/.tls.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$tmp/localhost.key" -out "$tmp/localhost.crt" 2>/dev/null
chmod 600 "$tmp/localhost.key"
chmod 755 "$tmp"
# rename(2) onto a missing or empty directory is atomic; if another run won, keep its pair.
if mv -T "$tmp" "$conf/tls" 2>/dev/null; then
    echo "made $conf/tls/localhost.crt"
fi
