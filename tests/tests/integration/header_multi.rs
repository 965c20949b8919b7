//! Repeated headers through variables, and trailers: `$http_*` and `$cookie_*` over repeated
//! request headers, `$sent_http_*` and `$sent_trailer_*` over repeated response lines,
//! `$upstream_http_*`, `$upstream_cookie_*` and `$upstream_response_length` of a proxied
//! response, `add_trailer` on proxied responses (by status, `always`, HTTP/1.0, HEAD), the
//! headers nginx refuses to see twice, and `expires` over a proxied `Cache-Control`.
//!
//! The cases where nginx 1.22 (Debian's) and later versions agree run against nginx too when
//! it is installed; the joining of every repeated header (nginx 1.23 and later) is checked
//! against the values nginx-tests' http_headers_multi.t expects.

use proton_tests::{nginx_binary, parse_response, raw_exchange, Backend, Nginx, Proton, TempDir};
use std::time::Duration;

/// The server of the comparison (inside `http {}`); `{port}` is filled in.
const SERVER: &str = r#"
server {
    listen 127.0.0.1:{port};
    server_name localhost;
    location /h {
        add_header X-XFF $http_x_forwarded_for;
        add_header X-Cookie $http_cookie;
        add_header X-Foo $http_foo;
        add_header X-C-Foo $cookie_foo;
        add_header X-C-Bar $cookie_bar;
        add_header X-C-Qux $cookie_qux;
        add_header X-User $remote_user;
        add_header X-Host $host;
        add_header X-Add-XFF $proxy_add_x_forwarded_for;
        return 204;
    }
    location /s {
        add_header Cache-Control foo;
        add_header Cache-Control bar;
        add_header Link a;
        add_header Link b;
        add_header Foo x;
        add_header Foo y;
        add_header X-Sent-CC $sent_http_cache_control;
        add_header X-Sent-Link $sent_http_link;
        add_header X-Sent-Foo $sent_http_foo;
        return 204;
    }
    location /t {
        add_trailer Foo foo;
        add_trailer Foo bar;
        add_trailer X-ST $sent_trailer_foo;
        return 200 "";
    }
    location /u {
        add_header X-Up-SC $upstream_http_set_cookie;
        add_header X-Up-Bar $upstream_http_bar;
        add_header X-Up-C-Foo $upstream_cookie_foo;
        add_header X-Up-C-Bar $upstream_cookie_bar;
        add_header X-Up-C-None "[$upstream_cookie_none]";
        add_header X-Up-Addr $upstream_addr;
        add_header X-Up-Status $upstream_status;
        proxy_pass http://127.0.0.1:{port}/backend;
    }
    location /backend {
        add_header Set-Cookie "foo=1; Path=/";
        add_header Set-Cookie "bar = 2";
        add_header Bar a;
        add_header Bar b;
        add_header Cache-Control private;
        add_header Cache-Control no-transform;
        return 200 "0123456789";
    }
    location /pe {
        expires epoch;
        proxy_pass http://127.0.0.1:{port}/backend;
    }
    location /pt/ {
        add_trailer X-Length $upstream_response_length;
        add_trailer X-Status $upstream_status;
        add_trailer X-Sent $sent_http_x_backend;
        add_trailer X-Always a always;
        proxy_pass http://127.0.0.1:{port}/pb/;
    }
    location /pc/ {
        add_trailer X-Length $upstream_response_length;
        proxy_http_version 1.1;
        proxy_pass http://127.0.0.1:{port}/tb/;
    }
    location /pb/ {
        add_header Bar a;
        add_header Bar b;
        add_header X-Backend pb;
        location /pb/nx { return 404; }
        return 200 "0123456789";
    }
    location /tb/ {
        add_trailer X-Inner inner;
        return 200 "0123456789abcdef";
    }
}
"#;

/// A response split into what the cases compare: status, head lines, body (chunks decoded)
/// and the trailer section.
struct Seen {
    status: u16,
    head: Vec<(String, String)>,
    chunked: bool,
    body: String,
    body_len: usize,
    trailers: Vec<String>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `raw`; the body is decoded when chunked and the trailer lines kept.
fn seen(raw: &[u8]) -> Seen {
    let r =
        parse_response(raw).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(raw)));
    let chunked = r.header("transfer-encoding") == Some("chunked");
    let mut trailers = Vec::new();
    if chunked {
        let at = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |i| i + 4);
        let tail = String::from_utf8_lossy(&raw[at..]).into_owned();
        // After the last chunk (`0` CRLF) come the trailer lines, then an empty line.
        let section = tail
            .strip_prefix("0\r\n")
            .or_else(|| tail.rsplit_once("\r\n0\r\n").map(|(_, t)| t))
            .unwrap_or_default();
        trailers = section
            .split("\r\n")
            .take_while(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
    }
    Seen {
        status: r.status,
        head: r.headers.clone(),
        chunked,
        body: r.body_text(),
        body_len: r.body.len(),
        trailers,
    }
}

fn exchange(port: u16, raw: &str) -> Seen {
    let (bytes, _) = raw_exchange(port, raw.as_bytes(), Duration::from_secs(10));
    seen(&bytes)
}

fn get(port: u16, path: &str, headers: &[&str]) -> Seen {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    exchange(port, &raw)
}

/// The cases nginx 1.22 answers as Proton does: (name, what is compared).
fn common(port: u16) -> Vec<(&'static str, String)> {
    let h = |name: &str, s: &Seen| format!("{}: {}", name, s.header(name).unwrap_or("(none)"));
    let mut out = Vec::new();
    let r = get(
        port,
        "/h",
        &[
            "X-Forwarded-For: a",
            "X-Forwarded-For: b, c",
            "X-Forwarded-For: d",
        ],
    );
    out.push(("multi x-forwarded-for", h("X-XFF", &r)));
    out.push(("proxy_add_x_forwarded_for", h("X-Add-XFF", &r)));
    let r = get(
        port,
        "/h",
        &["Cookie: foo=1, qux=0; bar=2", "Cookie: baz=3"],
    );
    out.push(("multi cookie", h("X-Cookie", &r)));
    out.push(("cookie in a comma list", h("X-C-Foo", &r)));
    out.push(("cookie in the second pair", h("X-C-Bar", &r)));
    let r = get(port, "/h", &["Cookie: x=0", "Cookie: bar = 5"]);
    out.push(("cookie in the second header", h("X-C-Bar", &r)));
    let r = get(port, "/h", &["Authorization: Basic dXNlcjpzZWNyZXQ="]);
    out.push(("remote_user", h("X-User", &r)));
    let r = get(port, "/h", &["Authorization: Basic !!!"]);
    out.push(("remote_user of bad base64", h("X-User", &r)));
    let r = exchange(port, "GET /h HTTP/1.0\r\n\r\n");
    out.push(("host from server_name", h("X-Host", &r)));
    for dup in [
        "If-Modified-Since",
        "If-Unmodified-Since",
        "If-Match",
        "If-None-Match",
        "If-Range",
        "Content-Range",
        "Expect",
        "Authorization",
        "Host",
        "Content-Length",
    ] {
        let one = format!("{dup}: 0");
        let r = get(port, "/s", &[&one, &one]);
        out.push(("duplicate header", format!("{dup}: {}", r.status)));
    }
    let r = get(port, "/s", &[]);
    out.push(("multi sent cache-control", h("X-Sent-CC", &r)));
    out.push(("multi sent link", h("X-Sent-Link", &r)));
    let r = get(port, "/u", &[]);
    out.push(("upstream cookie", h("X-Up-C-Foo", &r)));
    out.push(("upstream cookie with spaces", h("X-Up-C-Bar", &r)));
    out.push(("upstream cookie missing", h("X-Up-C-None", &r)));
    // The upstream of the response being sent, in add_header (its port is the server's own).
    let addr = h("X-Up-Addr", &r).replace(&format!(":{port}"), ":PORT");
    out.push(("upstream_addr in add_header", addr));
    out.push(("upstream_status in add_header", h("X-Up-Status", &r)));
    let r = get(port, "/pe", &[]);
    let mut cc: Vec<&str> = r
        .head
        .iter()
        .filter(|(n, _)| n == "cache-control" || n == "expires")
        .map(|(_, v)| v.as_str())
        .collect();
    // nginx rewrites the first Cache-Control in place and appends Expires; Proton writes
    // both after the upstream's lines: the order is not compared.
    cc.sort_unstable();
    out.push(("expires over a proxied cache-control", format!("{cc:?}")));
    let r = get(port, "/pt/x", &[]);
    out.push((
        "proxied trailers",
        format!(
            "{} chunked={} body={} trailers={:?}",
            r.status, r.chunked, r.body, r.trailers
        ),
    ));
    let r = get(port, "/pt/nx", &[]);
    out.push((
        "proxied trailers, 404",
        format!(
            "{} chunked={} trailers={:?}",
            r.status, r.chunked, r.trailers
        ),
    ));
    let r = exchange(port, "GET /pt/x HTTP/1.0\r\nHost: localhost\r\n\r\n");
    out.push((
        "proxied, HTTP/1.0: no trailers",
        format!("{} chunked={} body={}", r.status, r.chunked, r.body),
    ));
    // A response to HEAD has a head only (its Content-Length is the GET's).
    let (raw, _) = raw_exchange(
        port,
        b"HEAD /pt/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    let raw = String::from_utf8_lossy(&raw).into_owned();
    out.push((
        "proxied, HEAD: no trailers",
        format!(
            "{} chunked={} after the head={:?}",
            raw.get(9..12).unwrap_or_default(),
            raw.contains("Transfer-Encoding: chunked"),
            raw.split_once("\r\n\r\n").map_or("", |(_, b)| b)
        ),
    ));
    let r = get(port, "/pc/x", &[]);
    out.push((
        "proxied chunked upstream",
        format!(
            "{} chunked={} body={} trailers={:?}",
            r.status, r.chunked, r.body, r.trailers
        ),
    ));
    out
}

#[test]
fn repeated_headers_and_trailers_as_nginx() {
    let t = TempDir::new("header-multi");
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{SERVER}}}\n"
    );
    let p = Proton::start(t.path(), &conf, 1);
    let ours = common(p.port);
    let get_case = |name: &str| {
        ours.iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (name, want) in [
        ("multi x-forwarded-for", "X-XFF: a, b, c, d"),
        ("proxy_add_x_forwarded_for", "X-Add-XFF: a, b, c, d, 127.0.0.1"),
        ("multi cookie", "X-Cookie: foo=1, qux=0; bar=2; baz=3"),
        ("cookie in a comma list", "X-C-Foo: 1, qux=0"),
        ("cookie in the second pair", "X-C-Bar: 2"),
        ("cookie in the second header", "X-C-Bar: 5"),
        ("remote_user", "X-User: user"),
        ("remote_user of bad base64", "X-User: (none)"),
        ("host from server_name", "X-Host: localhost"),
        ("multi sent cache-control", "X-Sent-CC: foo, bar"),
        ("multi sent link", "X-Sent-Link: a, b"),
        ("upstream cookie", "X-Up-C-Foo: 1"),
        ("upstream cookie with spaces", "X-Up-C-Bar: 2"),
        ("upstream cookie missing", "X-Up-C-None: []"),
        ("upstream_addr in add_header", "X-Up-Addr: 127.0.0.1:PORT"),
        ("upstream_status in add_header", "X-Up-Status: 200"),
        (
            "expires over a proxied cache-control",
            "[\"Thu, 01 Jan 1970 00:00:01 GMT\", \"no-cache\"]",
        ),
        (
            "proxied trailers",
            "200 chunked=true body=0123456789 trailers=[\"X-Length: 10\", \"X-Status: 200\", \"X-Sent: pb\", \"X-Always: a\"]",
        ),
        (
            "proxied trailers, 404",
            "404 chunked=true trailers=[\"X-Always: a\"]",
        ),
        (
            "proxied, HTTP/1.0: no trailers",
            "200 chunked=false body=0123456789",
        ),
        (
            "proxied, HEAD: no trailers",
            "200 chunked=false after the head=\"\"",
        ),
        (
            "proxied chunked upstream",
            "200 chunked=true body=0123456789abcdef trailers=[\"X-Length: 43\"]",
        ),
    ] {
        let got = get_case(name);
        assert_eq!(got, want, "{name}\n{}", p.logs());
    }
    for line in get_case("duplicate header").lines() {
        assert!(line.ends_with(": 400"), "{line}");
    }
    // Joined as nginx 1.23 and later join every repeated header (nginx 1.22 kept the first
    // value of most of them): the values http_headers_multi.t expects.
    let r = get(p.port, "/h", &["Foo: foo", "Foo: bar", "Foo: bazz"]);
    assert_eq!(r.header("X-Foo"), Some("foo, bar, bazz"));
    let r = get(p.port, "/h", &["Cookie: foo=1, qux=0; bar=2"]);
    assert_eq!(r.header("X-C-Qux"), None, "a comma separates no cookies");
    let r = get(p.port, "/s", &[]);
    assert_eq!(r.header("X-Sent-Foo"), Some("x, y"));
    let r = get(p.port, "/u", &[]);
    assert_eq!(r.header("X-Up-SC"), Some("foo=1; Path=/, bar = 2"));
    assert_eq!(r.header("X-Up-Bar"), Some("a, b"));
    let r = get(p.port, "/t", &[]);
    assert_eq!(r.trailers, ["Foo: foo", "Foo: bar", "X-ST: foo, bar"]);

    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| SERVER.replace("{port}", &port.to_string()));
    let theirs = common(n.port());
    let diffs: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .filter(|(a, b)| a.1 != b.1)
        .map(|((name, a), (_, b))| format!("{name}\n  proton: {a}\n  nginx:  {b}"))
        .collect();
    assert!(
        diffs.is_empty(),
        "differences with nginx:\n{}\n{}",
        diffs.join("\n"),
        n.logs()
    );
}

/// A proxied body whose length the upstream does not say (it closes the connection) gets
/// trailers too: Proton frames what arrives in chunks and ends with the trailer section,
/// `$upstream_response_length` counting every byte received (chunk framing included, as
/// nginx counts). The upstream's own trailers are
/// dropped; its chunks are framed anew.
#[test]
fn proxied_trailers_over_every_upstream_framing() {
    let t = TempDir::new("proxy-trailers");
    let b = Backend::start("tr");
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\n\
         log_format t '$uri len=$upstream_response_length cc=$sent_http_x_backend';\n\
         access_log {{dir}}/logs/t.log t;\n\
         server {{ listen 127.0.0.1:{{port}};\n\
         add_trailer X-Length $upstream_response_length;\n\
         location / {{ proxy_http_version 1.1; proxy_pass http://127.0.0.1:{}; }}\n\
         location /off/ {{ chunked_transfer_encoding off; proxy_pass http://127.0.0.1:{}/; }}\n\
         }}\n}}\n",
        b.port, b.port
    );
    let p = Proton::start(t.path(), &conf, 1);
    let until_close = get(p.port, "/until-close?bytes=100000", &[]);
    assert_eq!(until_close.status, 200, "{}", p.logs());
    assert!(until_close.chunked);
    assert_eq!(until_close.body_len, 100_000);
    assert_eq!(until_close.trailers, ["X-Length: 100000"]);
    let chunked = get(p.port, "/chunked?n=3&size=4&trailer=1", &[]);
    assert!(chunked.chunked);
    assert_eq!(chunked.body_len, 12);
    assert_eq!(
        chunked.trailers,
        // 3 chunks of 4 (9 bytes each framed), the last chunk and the upstream's trailer.
        ["X-Length: 48"],
        "the upstream's trailer is dropped"
    );
    let big = get(p.port, "/big?bytes=300000", &[]);
    assert_eq!(big.body_len, 300_000);
    assert_eq!(big.trailers, ["X-Length: 300000"]);
    assert_eq!(big.header("content-length"), None);
    // No chunks, no trailers: the length as the upstream said it.
    let off = get(p.port, "/off/big?bytes=10", &[]);
    assert!(!off.chunked);
    assert_eq!(off.header("content-length"), Some("10"));

    // The access log sees the length and the head sent to the client.
    let log = t.path().join("logs/t.log");
    let mut text = String::new();
    let complete = proton_tests::wait_until(Duration::from_secs(10), || {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().count() >= 4
    });
    assert!(complete, "{text}\n{}", p.logs());
    assert!(text.contains("/until-close len=100000 cc=tr"), "{text}");
    assert!(text.contains("/big len=300000 cc=tr"), "{text}");
}
