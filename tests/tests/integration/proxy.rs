//! The reverse proxy end to end: a real `proton-run` in front of real `proton-testbackend`
//! origins on loopback. Each test checks what the client gets and, through the backend's
//! `/echo` and `/stats` routes, what the proxy sent upstream and how many connections it
//! opened. Where Proton's answer is nginx's, the expectation is nginx's (checked against
//! nginx 1.22 behind the same backend).

use proton_tests::{
    free_port, keep_alive_exchange, parse_response, raw_exchange, request, wait_until,
    ws_close_cleanly, Backend, Proton, Response, TempDir,
};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::Message;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A whole config around an `http { }` body: one worker, an `info` error log in
/// `{dir}/logs/error.log` (shown by `Proton::logs`), no access log.
fn conf(http: &str) -> String {
    format!(
        "worker_processes 1;\n\
         error_log {{dir}}/logs/error.log info;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         access_log off;\n\
         {http}\n\
         }}\n"
    )
}

/// Replaces `@NAME@` markers by ports (backend ports, dead ports).
fn with_ports(template: &str, ports: &[(&str, u16)]) -> String {
    let mut s = template.to_string();
    for (name, port) in ports {
        s = s.replace(&format!("@{name}@"), &port.to_string());
    }
    assert!(!s.contains('@'), "unreplaced marker in config:\n{s}");
    s
}

fn start(t: &TempDir, http: &str) -> Proton {
    Proton::start(t.path(), &conf(http), 1)
}

/// Proton in front of one backend, `b1`, whose port replaces `@A@` in `http`: the test
/// directory, the backend and the server, bound in that order so they drop server first.
/// The smallest proxy config: every request to one backend (`one_backend`'s `@A@`).
const PLAIN_PROXY: &str = r#"
upstream be { server 127.0.0.1:@A@; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://be; }
}
"#;

fn one_backend(label: &str, http: &str) -> (TempDir, Backend, Proton) {
    let t = TempDir::new(label);
    let b = Backend::start("b1");
    let p = start(&t, &with_ports(http, &[("A", b.port)]));
    (t, b, p)
}

fn error_log(t: &TempDir) -> String {
    std::fs::read_to_string(t.path().join("logs/error.log")).unwrap_or_default()
}

/// `GET path` (HTTP/1.1, `Host: proxy.test`, `Connection: close`); panics with the logs when
/// the exchange fails.
fn get(p: &Proton, path: &str) -> Response {
    request(p.port, Some("proxy.test"), path)
        .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", p.logs()))
}

/// Sends raw bytes on a new connection and parses the response (read until the server
/// closes, 10 s at most).
fn send(p: &Proton, raw: &[u8]) -> Response {
    let (out, _) = raw_exchange(p.port, raw, Duration::from_secs(10));
    parse_response(&out).unwrap_or_else(|e| {
        panic!(
            "request {:?}: {e}\nraw response: {:?}\n{}",
            String::from_utf8_lossy(raw),
            String::from_utf8_lossy(&out),
            p.logs()
        )
    })
}

/// What the backend's `/echo` saw: the request line, the headers (names lower-cased) and
/// the body.
struct Echo {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Echo {
    fn of(resp: &Response) -> Echo {
        assert_eq!(
            resp.status,
            200,
            "expected an /echo answer, got {} {:?}",
            resp.status,
            resp.body_text()
        );
        let b = &resp.body;
        let split = b
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap_or_else(|| panic!("not an /echo dump: {:?}", resp.body_text()));
        let head = String::from_utf8_lossy(&b[..split]).into_owned();
        let mut lines = head.split('\n');
        let line = lines.next().unwrap_or_default().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
            .collect();
        Echo {
            line,
            headers,
            body: b[split + 2..].to_vec(),
        }
    }

    fn all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The only value of `name`; panics when it was sent more than once.
    fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(
            all.len() <= 1,
            "{name} sent {} times: {:?}",
            all.len(),
            self.headers
        );
        all.first().copied()
    }

    fn dump(&self) -> String {
        format!("{}\n{:?}", self.line, self.headers)
    }
}

/// Byte `i` of the backend's `/big` and `/until-close` bodies.
fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// The index of the first byte of `body` (starting at offset `from` of the pattern) that is
/// wrong.
fn pattern_mismatch(body: &[u8], from: u64) -> Option<usize> {
    body.iter()
        .enumerate()
        .position(|(i, &b)| b != pattern(from + i as u64))
}

/// The backend's `/chunked?n=N&size=S` body.
fn chunked_body(n: usize, size: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|k| std::iter::repeat_n(b'a' + (k % 26) as u8, size))
        .collect()
}

/// New connections the backend accepted between two `stats()` calls (the second `/stats`
/// request is one of them).
fn new_connections(before: (u64, u64), after: (u64, u64)) -> u64 {
    after.0 - before.0 - 1
}

/// Requests the backend served between two `stats()` calls (the second `/stats` excluded).
fn new_requests(before: (u64, u64), after: (u64, u64)) -> u64 {
    after.1 - before.1 - 1
}

/// `n` identical keep-alive requests `GET path HTTP/1.1` on one client connection.
fn keep_alive_gets(p: &Proton, path: &str, n: usize) -> Vec<Response> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: proxy.test\r\n\r\n");
    let reqs: Vec<&[u8]> = (0..n).map(|_| req.as_bytes()).collect();
    let resps = keep_alive_exchange(p.port, &reqs)
        .unwrap_or_else(|e| panic!("keep-alive GET {path} x{n}: {e}\n{}", p.logs()));
    assert_eq!(
        resps.len(),
        n,
        "the client connection was closed after {} of {n} responses\n{}",
        resps.len(),
        p.logs()
    );
    resps
}

/// How many responses each backend (by `X-Backend`) gave.
fn tally(resps: &[Response]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in resps {
        assert_eq!(r.status, 200, "{}", r.body_text());
        let name = r.header("x-backend").unwrap_or("(none)").to_string();
        *m.entry(name).or_insert(0) += 1;
    }
    m
}

/// Percent-encodes a whole query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn connect(p: &Proton) -> TcpStream {
    let s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect to proton");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("write timeout");
    s
}

/// Reads from `s` until `buf` holds a complete head; returns the head's length.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(end + 4);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = read_retrying(s, &mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("closed before a head: {:?}", String::from_utf8_lossy(buf)),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The resident set size of a process in KiB (`VmRSS`); panics with Proton's logs when the
/// process is gone.
fn rss_kib(p: &Proton, pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for worker {pid}: gone?\n{}", p.logs()))
}

// ---------------------------------------------------------------------------------------------
// 1. Basic requests and the request headers sent upstream
// ---------------------------------------------------------------------------------------------

#[test]
fn get_and_post_pass_through_with_nginx_request_headers() {
    let (_t, _b, p) = one_backend(
        "px-basic",
        r#"
upstream be { server 127.0.0.1:@A@; keepalive 8; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://be; }
    location /v11/ { proxy_pass http://be/; proxy_http_version 1.1; proxy_set_header Connection ""; }
}
"#,
    );

    let r = get(&p, "/id");
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "b1"),
        "{}",
        p.logs()
    );
    assert_eq!(r.header("x-backend"), Some("b1"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert!(
        r.header("server").is_some_and(|s| s.starts_with("proton")),
        "{:?}",
        r.headers
    );

    // Hop-by-hop headers from the client stay behind; the rest go on. Default: HTTP/1.0,
    // `Host: $proxy_host`, `Connection: close`.
    let req = b"GET /echo HTTP/1.1\r\nHost: client.test\r\nUser-Agent: proxy-test/1\r\n\
                Accept: */*\r\nX-Custom: v1\r\nKeep-Alive: 300\r\nTE: trailers\r\n\
                Proxy-Connection: keep-alive\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n";
    let e = Echo::of(&send(&p, req));
    assert_eq!(e.line, "GET /echo HTTP/1.0", "{}", e.dump());
    assert_eq!(e.one("host"), Some("be"), "{}", e.dump());
    assert_eq!(e.one("connection"), Some("close"), "{}", e.dump());
    for hop in ["keep-alive", "te", "proxy-connection", "upgrade"] {
        assert!(e.all(hop).is_empty(), "{hop} was passed: {}", e.dump());
    }
    assert_eq!(e.one("x-custom"), Some("v1"), "{}", e.dump());
    assert_eq!(e.one("accept"), Some("*/*"), "{}", e.dump());
    assert_eq!(e.one("user-agent"), Some("proxy-test/1"), "{}", e.dump());

    // proxy_http_version 1.1 with `Connection ""`: no Connection header at all.
    let e = Echo::of(&send(
        &p,
        b"GET /v11/echo HTTP/1.1\r\nHost: client.test\r\nKeep-Alive: 5\r\nConnection: close\r\n\r\n",
    ));
    assert_eq!(e.line, "GET /echo HTTP/1.1", "{}", e.dump());
    assert_eq!(e.one("host"), Some("be"), "{}", e.dump());
    assert!(e.all("connection").is_empty(), "{}", e.dump());
    assert!(e.all("keep-alive").is_empty(), "{}", e.dump());

    // A POST body with a Content-Length arrives byte for byte, on both versions.
    let mut body: Vec<u8> = (0..=255u8).collect();
    body.extend_from_slice(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n\0end");
    for (path, version) in [("/echo", "1.0"), ("/v11/echo", "1.1")] {
        let mut req = format!(
            "POST {path}?x=1 HTTP/1.1\r\nHost: client.test\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        let e = Echo::of(&send(&p, &req));
        assert_eq!(
            e.line,
            format!("POST /echo?x=1 HTTP/{version}"),
            "{}",
            e.dump()
        );
        let len = body.len().to_string();
        assert_eq!(e.one("content-length"), Some(len.as_str()), "{}", e.dump());
        assert_eq!(
            e.one("content-type"),
            Some("application/octet-stream"),
            "{}",
            e.dump()
        );
        assert!(e.all("transfer-encoding").is_empty(), "{}", e.dump());
        assert!(e.body == body, "POST body differs via {path}: {:?}", e.body);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. The URI sent upstream
// ---------------------------------------------------------------------------------------------

/// nginx's URI rules. The `mirror` server block on Proton's own port answers with the
/// request target it got (`$request_uri`), so the exact bytes the proxy sent can be seen
/// for paths the backend does not route.
#[test]
fn upstream_uri_follows_nginx_rules() {
    let (_t, _b, p) = one_backend(
        "px-uri",
        r#"
upstream be { server 127.0.0.1:@A@; }
upstream mirror { server 127.0.0.1:{port}; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://be; }
    location /api/ { proxy_pass http://mirror/echo/; proxy_set_header Host mirror; }
    location /be-api/ { proxy_pass http://127.0.0.1:@A@/; }
    location /raw/ { proxy_pass http://mirror; proxy_set_header Host mirror; }
    location /r/ { rewrite ^/r/(.*)$ /$1 break; proxy_pass http://be; }
    location /mr/ { rewrite ^/mr/(.*)$ /echo/$1 break; proxy_pass http://mirror; proxy_set_header Host mirror; }
}
server {
    listen 127.0.0.1:{port};
    server_name mirror;
    location / { return 200 "$request_uri"; }
}
"#,
    );
    let mirror = |path: &str| {
        let r = get(&p, path);
        assert_eq!(r.status, 200, "{path}: {}\n{}", r.body_text(), p.logs());
        r.body_text()
    };

    // A URI part replaces the location prefix; the arguments follow unchanged.
    assert_eq!(mirror("/api/x?y=1"), "/echo/x?y=1");
    // ... and the rest is the normalised URI, escaped again.
    assert_eq!(mirror("/api/%78/a%20b?q=%41"), "/echo/x/a%20b?q=%41");
    // Without a URI part the client's request target goes as it was sent.
    assert_eq!(mirror("/raw/%78/a%20b?a=%20b"), "/raw/%78/a%20b?a=%20b");
    let e = Echo::of(&get(&p, "/echo?a=%20b&c=%2F"));
    assert_eq!(e.line, "GET /echo?a=%20b&c=%2F HTTP/1.0", "{}", e.dump());
    let e = Echo::of(&get(&p, "/be-api/echo?y=1"));
    assert_eq!(e.line, "GET /echo?y=1 HTTP/1.0", "{}", e.dump());
    // A URI changed by `rewrite ... break` is sent as changed (escaped), with the arguments.
    let e = Echo::of(&get(&p, "/r/echo?q=1"));
    assert_eq!(e.line, "GET /echo?q=1 HTTP/1.0", "{}", e.dump());
    assert_eq!(mirror("/mr/a%20b?z=2"), "/echo/a%20b?z=2");
}

// ---------------------------------------------------------------------------------------------
// 3. proxy_set_header with variables
// ---------------------------------------------------------------------------------------------

#[test]
fn proxy_set_header_expands_variables() {
    let (_t, _b, p) = one_backend(
        "px-setheader",
        r#"
upstream be { server 127.0.0.1:@A@; }
server {
    listen 127.0.0.1:{port};
    location / {
        proxy_pass http://be;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Empty "";
        proxy_set_header X-Maybe $http_x_maybe;
    }
    location /host/ { proxy_pass http://be/; proxy_set_header Host $host; }
}
"#,
    );

    let e = Echo::of(&send(
        &p,
        b"GET /echo HTTP/1.1\r\nHost: client.test\r\nX-Empty: from-client\r\nConnection: close\r\n\r\n",
    ));
    assert_eq!(e.one("x-real-ip"), Some("127.0.0.1"), "{}", e.dump());
    assert_eq!(e.one("x-forwarded-for"), Some("127.0.0.1"), "{}", e.dump());
    assert_eq!(e.one("x-forwarded-proto"), Some("http"), "{}", e.dump());
    // An empty value is not sent, and the client's header of that name is not passed either.
    assert!(e.all("x-empty").is_empty(), "{}", e.dump());
    assert!(e.all("x-maybe").is_empty(), "{}", e.dump());
    // The defaults stay although this level sets headers of its own.
    assert_eq!(e.one("host"), Some("be"), "{}", e.dump());
    assert_eq!(e.one("connection"), Some("close"), "{}", e.dump());

    // $proxy_add_x_forwarded_for appends to the client's X-Forwarded-For.
    let e = Echo::of(&send(
        &p,
        b"GET /echo HTTP/1.1\r\nHost: client.test\r\nX-Forwarded-For: 10.0.0.1\r\n\
          X-Maybe: yes\r\nConnection: close\r\n\r\n",
    ));
    assert_eq!(
        e.one("x-forwarded-for"),
        Some("10.0.0.1, 127.0.0.1"),
        "{}",
        e.dump()
    );
    assert_eq!(e.one("x-maybe"), Some("yes"), "{}", e.dump());

    let e = Echo::of(&send(
        &p,
        b"GET /host/echo HTTP/1.1\r\nHost: Client.Example\r\nConnection: close\r\n\r\n",
    ));
    assert_eq!(e.one("host"), Some("client.example"), "{}", e.dump());
}

/// `proxy_pass` with variables: the host names an upstream group or is a literal address, a
/// URI in the directive goes as made (nginx), the Host header is the URL's host, and a name
/// that is neither is a 502 with nginx's log line. The requests share one connection, so the
/// recycled proxy state (which holds the made URL) serves one after the other.
#[test]
fn proxy_pass_with_variables() {
    let (t, b, p) = one_backend(
        "px-vars",
        r#"
upstream be { server 127.0.0.1:@A@; }
server {
    listen 127.0.0.1:{port};
    location = /echo { set $g be; proxy_pass http://$g; }
    location /lit/ { set $a 127.0.0.1:@A@; proxy_pass http://$a/echo$is_args$args; }
    location /bad/ { set $h nowhere.invalid; proxy_pass http://$h; }
}
"#,
    );
    let resps = keep_alive_exchange(
        p.port,
        &[
            b"GET /lit/a/long/path/that/is/replaced?q=2 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /lit/s HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /echo?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
        ],
    )
    .unwrap_or_else(|e| panic!("keep-alive exchange: {e}\n{}", p.logs()));
    assert_eq!(resps.len(), 3, "connection closed early\n{}", p.logs());
    let literal = format!("127.0.0.1:{}", b.port);
    let e = Echo::of(&resps[0]);
    assert_eq!(e.line, "GET /echo?q=2 HTTP/1.0", "{}", e.dump());
    assert_eq!(e.one("host"), Some(literal.as_str()), "{}", e.dump());
    let e = Echo::of(&resps[1]);
    assert_eq!(e.line, "GET /echo HTTP/1.0", "{}", e.dump());
    assert_eq!(e.one("host"), Some(literal.as_str()), "{}", e.dump());
    let e = Echo::of(&resps[2]);
    assert_eq!(e.line, "GET /echo?x=1 HTTP/1.0", "{}", e.dump());
    assert_eq!(e.one("host"), Some("be"), "{}", e.dump());

    let r = get(&p, "/bad/x");
    assert_eq!(r.status, 502, "{}\n{}", r.body_text(), p.logs());
    assert!(
        wait_until(Duration::from_secs(20), || error_log(&t)
            .contains("no resolver defined to resolve nowhere.invalid")),
        "{}",
        error_log(&t)
    );
    // The worker goes on serving after the refusal.
    let e = Echo::of(&get(&p, "/lit/again"));
    assert_eq!(e.line, "GET /echo HTTP/1.0", "{}", e.dump());
}

// ---------------------------------------------------------------------------------------------
// 4. Response headers
// ---------------------------------------------------------------------------------------------

#[test]
fn response_headers_are_hidden_passed_and_redirects_rewritten() {
    let t = TempDir::new("px-resphdr");
    let b = Backend::start("b1");
    let a = b.port;
    let http = with_ports(
        r#"
upstream be { server 127.0.0.1:@A@; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://be; }
    location /pass/ { proxy_pass http://be/; proxy_pass_header Server; proxy_hide_header X-Secret; }
    location /api/ { rewrite ^/api/go$ /redirect break; proxy_pass http://127.0.0.1:@A@/echo/; }
    location /d/ { proxy_pass http://127.0.0.1:@A@/; }
    location /off/ { proxy_pass http://127.0.0.1:@A@/; proxy_redirect off; }
    location /r/ {
        proxy_pass http://127.0.0.1:@A@/;
        proxy_redirect http://other.test/x/ /y/;
        proxy_redirect default;
    }
}
"#,
        &[("A", a)],
    );
    let p = start(&t, &http);
    let old_date = "Sat, 01 Jan 2000 00:00:00 GMT";
    let query = format!(
        "headers?Server=origin&Date={}&X-Secret=1&X-Other=2&X-Accel-Expires=10&X-Accel-Foo=bar",
        enc(old_date)
    );

    let r = get(&p, &format!("/{query}"));
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "ok"),
        "{}",
        p.logs()
    );
    let all = |r: &Response, n: &str| -> Vec<String> {
        r.headers
            .iter()
            .filter(|(h, _)| h == n)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let servers = all(&r, "server");
    assert!(
        servers.len() == 1 && servers[0].starts_with("proton"),
        "{:?}",
        r.headers
    );
    let dates = all(&r, "date");
    assert!(dates.len() == 1 && dates[0] != old_date, "{:?}", r.headers);
    assert_eq!(r.header("x-secret"), Some("1"));
    assert_eq!(r.header("x-other"), Some("2"));
    assert_eq!(r.header("x-accel-expires"), None, "{:?}", r.headers);
    // nginx 1.22 hides only the X-Accel-* names it acts on and would pass X-Accel-Foo;
    // Proton hides the whole family (proxy/response.rs: write_client_head).
    assert_eq!(r.header("x-accel-foo"), None, "{:?}", r.headers);

    let r = get(&p, &format!("/pass/{query}"));
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(
        all(&r, "server"),
        vec!["origin".to_string()],
        "{:?}",
        r.headers
    );
    let dates = all(&r, "date");
    assert!(dates.len() == 1 && dates[0] != old_date, "{:?}", r.headers);
    assert_eq!(r.header("x-secret"), None, "{:?}", r.headers);
    assert_eq!(r.header("x-other"), Some("2"));

    // proxy_redirect default: `http://127.0.0.1:A/echo/` (proxy_pass's host and URI) becomes
    // the location's `/api/`. nginx then makes the value absolute with the client's Host.
    let location = |path: String| {
        let r = get(&p, &path);
        assert_eq!(r.status, 302, "{path}: {}\n{}", r.body_text(), p.logs());
        r.header("location").unwrap_or("(none)").to_string()
    };
    let here = format!("http://proxy.test:{}", p.port);
    let rewritten = |got: &str, want: &str| got == format!("{here}{want}");
    let got = location(format!(
        "/api/go?to={}",
        enc(&format!("http://127.0.0.1:{a}/echo/foo"))
    ));
    assert!(rewritten(&got, "/api/foo"), "Location: {got}");
    let got = location(format!(
        "/d/redirect?to={}",
        enc(&format!("http://127.0.0.1:{a}/foo?x=1"))
    ));
    assert!(rewritten(&got, "/d/foo?x=1"), "Location: {got}");
    // Upstream group: `http://be/` becomes `/`.
    let got = location(format!("/redirect?to={}", enc("http://be/x/y")));
    assert!(rewritten(&got, "/x/y"), "Location: {got}");
    // Another host is left alone; so is everything with proxy_redirect off.
    let got = location(format!(
        "/d/redirect?to={}",
        enc("http://elsewhere.test/foo")
    ));
    assert_eq!(got, "http://elsewhere.test/foo");
    let got = location(format!(
        "/off/redirect?to={}",
        enc(&format!("http://127.0.0.1:{a}/foo"))
    ));
    assert_eq!(got, format!("http://127.0.0.1:{a}/foo"));
    // Explicit rules: the first matching prefix applies; `proxy_redirect default;` among
    // them is the default rule (here `http://127.0.0.1:A/` → `/r/`); others pass unchanged.
    let got = location(format!(
        "/r/redirect?to={}",
        enc("http://other.test/x/z?q=1")
    ));
    assert!(rewritten(&got, "/y/z?q=1"), "Location: {got}");
    let got = location(format!(
        "/r/redirect?to={}",
        enc(&format!("http://127.0.0.1:{a}/foo"))
    ));
    assert!(rewritten(&got, "/r/foo"), "Location: {got}");
    let got = location(format!("/r/redirect?to={}", enc("http://third.test/a")));
    assert_eq!(got, "http://third.test/a");
}

// ---------------------------------------------------------------------------------------------
// 5. Response framing
// ---------------------------------------------------------------------------------------------

const FRAMING: &str = r#"
upstream be { server 127.0.0.1:@A@; keepalive 8; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
}
"#;

#[test]
fn chunked_responses_pass_chunked_or_dechunked() {
    let (_t, _b, p) = one_backend("px-chunked", FRAMING);
    let want = chunked_body(30, 1000);

    // HTTP/1.1 client: chunked, twice on one connection, then an ordinary response.
    let chunked: &[u8] = b"GET /chunked?n=30&size=1000&trailer=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let resps = keep_alive_exchange(
        p.port,
        &[chunked, chunked, b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n"],
    )
    .unwrap_or_else(|e| panic!("keep-alive exchange: {e}\n{}", p.logs()));
    assert_eq!(resps.len(), 3, "connection closed early\n{}", p.logs());
    for r in &resps[..2] {
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("transfer-encoding"),
            Some("chunked"),
            "{:?}",
            r.headers
        );
        assert_eq!(r.header("content-length"), None, "{:?}", r.headers);
        assert!(
            r.body == want,
            "chunked body differs ({} bytes)",
            r.body.len()
        );
    }
    assert_eq!(resps[2].body_text(), "b1");

    // HTTP/1.0 client: the chunks are decoded and the end is the connection's close.
    let (raw, closed) = raw_exchange(
        p.port,
        b"GET /chunked?n=30&size=1000 HTTP/1.0\r\n\r\n",
        Duration::from_secs(10),
    );
    assert!(
        closed,
        "HTTP/1.0 response without length: the connection must close"
    );
    let r = parse_response(&raw).expect("a response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), None, "{:?}", r.headers);
    assert_ne!(
        r.header("connection"),
        Some("keep-alive"),
        "{:?}",
        r.headers
    );
    assert!(
        r.body == want,
        "de-chunked body differs ({} bytes, starts {:?})",
        r.body.len(),
        String::from_utf8_lossy(&r.body[..r.body.len().min(40)])
    );
}

#[test]
fn until_close_and_big_responses_arrive_whole() {
    let (_t, _b, p) = one_backend("px-big", FRAMING);

    // Framed by the upstream's close: with `Connection: close`...
    let r = get(&p, "/until-close?bytes=300000");
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(r.body.len(), 300_000);
    assert_eq!(pattern_mismatch(&r.body, 0), None);
    // ... and for a keep-alive client, either chunked or closed: never ambiguous.
    let (raw, closed) = raw_exchange(
        p.port,
        b"GET /until-close?bytes=300000 HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    let r = parse_response(&raw).expect("a response");
    assert!(
        closed || r.header("transfer-encoding") == Some("chunked"),
        "neither closed nor chunked: {:?}",
        r.headers
    );
    assert_eq!(r.body.len(), 300_000);
    assert_eq!(pattern_mismatch(&r.body, 0), None);

    let n = 50_000_000;
    let r = get(&p, &format!("/big?bytes={n}"));
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(r.header("content-length"), Some(n.to_string().as_str()));
    assert_eq!(r.body.len(), n);
    assert_eq!(pattern_mismatch(&r.body, 0), None, "first wrong byte");
}

/// HEAD through the proxy: the head only, and the connection goes on cleanly.
#[test]
fn head_requests_get_no_body() {
    let (_t, _b, p) = one_backend("px-head", FRAMING);
    // A chunked upstream head gets no framing header towards the client: nginx's chunked
    // filter leaves HEAD responses alone.
    for (path, framing) in [
        ("/big?bytes=1000", Some("content-length: 1000\r\n")),
        ("/chunked?n=3&size=10", None),
        ("/id", Some("content-length: 2\r\n")),
    ] {
        let mut s = connect(&p);
        s.write_all(format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .expect("send HEAD");
        let mut buf = Vec::new();
        let head_len = read_head(&mut s, &mut buf)
            .unwrap_or_else(|e| panic!("HEAD {path}: {e}\n{}", p.logs()));
        let head = String::from_utf8_lossy(&buf[..head_len]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        if let Some(framing) = framing {
            assert!(head.contains(framing), "HEAD {path}: {head}");
        }
        // The next response on the connection follows the head directly.
        s.write_all(b"GET /id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("send GET");
        let mut rest = buf[head_len..].to_vec();
        s.read_to_end(&mut rest).expect("read the GET response");
        let r = parse_response(&rest).unwrap_or_else(|e| {
            panic!(
                "after HEAD {path}: {e}: {:?}",
                String::from_utf8_lossy(&rest)
            )
        });
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "b1"),
            "after HEAD {path}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The keep-alive cache of upstream connections
// ---------------------------------------------------------------------------------------------

#[test]
fn keepalive_pool_reuses_upstream_connections() {
    let t = TempDir::new("px-pool");
    let ka = Backend::start("ka");
    let nk = Backend::start("nk");
    let old = Backend::start("h10");
    let http = with_ports(
        r#"
upstream ka { server 127.0.0.1:@A@; keepalive 8; }
upstream nk { server 127.0.0.1:@B@; }
upstream h10 { server 127.0.0.1:@C@; keepalive 8; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://ka; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /nk/ { proxy_pass http://nk/; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /h10/ { proxy_pass http://h10/; }
}
"#,
        &[("A", ka.port), ("B", nk.port), ("C", old.port)],
    );
    let p = start(&t, &http);

    // 20 requests on one client connection: one upstream connection.
    let before = ka.stats();
    let resps = keep_alive_gets(&p, "/id", 20);
    assert_eq!(tally(&resps).get("ka"), Some(&20));
    let after = ka.stats();
    assert_eq!(new_requests(before, after), 20);
    assert_eq!(
        new_connections(before, after),
        1,
        "20 requests through `keepalive 8` opened several upstream connections\n{}",
        p.logs()
    );
    // 20 more, each on its own client connection: still the cached one.
    let before = ka.stats();
    for _ in 0..20 {
        assert_eq!(get(&p, "/id").body_text(), "ka");
    }
    let after = ka.stats();
    assert_eq!(new_requests(before, after), 20);
    assert_eq!(new_connections(before, after), 0, "{}", p.logs());

    // Without `keepalive`, and with HTTP/1.0 (`Connection: close`), one connection each.
    for (backend, path) in [(&nk, "/nk/id"), (&old, "/h10/id")] {
        let before = backend.stats();
        keep_alive_gets(&p, path, 20);
        let after = backend.stats();
        assert_eq!(new_requests(before, after), 20, "{path}");
        assert_eq!(new_connections(before, after), 20, "{path}");
    }
}

/// `keepalive N` bounds the idle connections kept per worker: after six requests that each
/// needed their own upstream connection, two stay cached and the other four are closed.
#[test]
fn keepalive_cache_keeps_at_most_n_idle_connections() {
    let t = TempDir::new("px-pool-cap");
    let be = Backend::start("cap");
    let http = with_ports(
        r#"
upstream cap { server 127.0.0.1:@A@; keepalive 2; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://cap; proxy_http_version 1.1; proxy_set_header Connection ""; }
}
"#,
        &[("A", be.port)],
    );
    let p = start(&t, &http);
    let burst = || {
        let before = be.stats();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| s.spawn(|| get(&p, "/delay?ms=400")))
                .collect();
            for h in handles {
                let r = h.join().expect("request thread");
                assert_eq!(r.status, 200, "{}", p.logs());
            }
        });
        new_connections(before, be.stats())
    };
    // Six overlapping requests: six connections, of which two stay cached...
    assert_eq!(burst(), 6, "{}", p.logs());
    // ...so the next six overlapping requests open four.
    assert_eq!(burst(), 4, "{}", p.logs());
}

/// Cached connections to a server that goes away: the requests after it still succeed.
#[test]
fn keepalive_pool_survives_a_killed_backend() {
    let t = TempDir::new("px-poolkill");
    let mut a = Backend::start("a");
    let b = Backend::start("b");
    let http = with_ports(
        r#"
upstream two { server 127.0.0.1:@A@; server 127.0.0.1:@B@; keepalive 8; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://two; proxy_http_version 1.1; proxy_set_header Connection ""; }
}
"#,
        &[("A", a.port), ("B", b.port)],
    );
    let p = start(&t, &http);
    let warm = tally(&keep_alive_gets(&p, "/id", 10));
    assert_eq!(
        (warm.get("a"), warm.get("b")),
        (Some(&5), Some(&5)),
        "{warm:?}"
    );
    a.kill();
    for i in 0..30 {
        let r = get(&p, "/id");
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "b"),
            "request {i} after the kill\n{}",
            p.logs()
        );
    }
    // And on a client connection kept alive across requests.
    let after = tally(&keep_alive_gets(&p, "/id", 20));
    assert_eq!(after.get("b"), Some(&20), "{after:?}");
}

// ---------------------------------------------------------------------------------------------
// 7. Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn dead_upstream_gives_502_and_a_log_line() {
    let t = TempDir::new("px-dead");
    let dead_port = proton_tests::dead_port();
    let dead = dead_port.port;
    let http = with_ports(
        r#"
upstream dead { server 127.0.0.1:@D@; }
server {
    listen 127.0.0.1:{port};
    location /dead/ { proxy_pass http://dead; }
    location /direct/ { proxy_pass http://127.0.0.1:@D@; }
}
"#,
        &[("D", dead)],
    );
    let p = start(&t, &http);
    for path in ["/dead/x", "/direct/x", "/dead/y"] {
        let started = Instant::now();
        let r = get(&p, path);
        assert_eq!(r.status, 502, "{path}: {}\n{}", r.body_text(), p.logs());
        assert!(
            r.body_text().contains("502 Bad Gateway"),
            "{path}: {}",
            r.body_text()
        );
        assert_eq!(
            r.header("content-type"),
            Some("text/html"),
            "{:?}",
            r.headers
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    let needle = format!("127.0.0.1:{dead}");
    assert!(
        wait_until(Duration::from_secs(20), || error_log(&t).contains(&needle)),
        "the error log does not name the upstream {needle}:\n{}",
        error_log(&t)
    );
}

/// Issue 12: a 502 or 504 keeps the client connection, as nginx does, when the request
/// had no body or its body was read whole; the next request is answered on it. A POST
/// whose body is still unread when the proxy gives up (`proxy_request_buffering off`: with
/// nginx's default the body is read before any upstream is tried) is answered 502 and
/// closed.
#[test]
fn a_502_or_504_keeps_the_client_connection() {
    let t = TempDir::new("px-502ka");
    let b = Backend::start("b1");
    let dead_port = proton_tests::dead_port();
    let dead = dead_port.port;
    let http = with_ports(
        r#"
upstream dead { server 127.0.0.1:@D@; }
server {
    listen 127.0.0.1:{port};
    location /dead/ { proxy_pass http://dead; proxy_request_buffering off; }
    location /slow/ { proxy_pass http://127.0.0.1:@A@/; proxy_read_timeout 300ms; }
    location / { proxy_pass http://127.0.0.1:@A@; }
}
"#,
        &[("D", dead), ("A", b.port)],
    );
    let p = start(&t, &http);
    let reqs: [&[u8]; 5] = [
        b"GET /dead/x HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /dead/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"GET /slow/delay?ms=3000 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    let resps = keep_alive_exchange(p.port, &reqs)
        .unwrap_or_else(|e| panic!("exchange: {e}\n{}", p.logs()));
    let got: Vec<(u16, Option<&str>)> = resps
        .iter()
        .map(|r| (r.status, r.header("connection")))
        .collect();
    assert_eq!(
        got,
        [
            (502, Some("keep-alive")),
            (200, Some("keep-alive")),
            (502, Some("keep-alive")),
            (504, Some("keep-alive")),
            (200, Some("keep-alive")),
        ],
        "{}",
        p.logs()
    );
    assert_eq!(resps[4].body_text(), "b1");

    // A body the proxy has not read when the upstream fails: 502, then close.
    let mut s = connect(&p);
    s.write_all(b"POST /dead/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nstart")
        .expect("send");
    let mut buf = Vec::new();
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.read_to_end(&mut buf);
    let r = parse_response(&buf).unwrap_or_else(|e| panic!("{e}: {buf:?}\n{}", p.logs()));
    assert_eq!(
        (r.status, r.header("connection")),
        (502, Some("close")),
        "{}",
        p.logs()
    );
}

/// Issue 12: an access log that cannot be written (a full disk; `/dev/full` here) is named
/// in the error log, at `alert` as nginx does, once and not once per request, and requests
/// are served all the same. The lines of the first five requests are written (or lost) by
/// the time the sixth is answered on the same connection.
#[test]
fn access_log_write_errors_are_reported_once() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let (t, _b, p) = one_backend(
        "px-devfull",
        r#"
server {
    listen 127.0.0.1:{port};
    access_log /dev/full;
    location / { proxy_pass http://127.0.0.1:@A@; }
    location /r { return 200 "served"; }
}
"#,
    );
    let reqs = [b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(); 3]
        .into_iter()
        .chain([b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(); 3])
        .collect::<Vec<_>>();
    let resps = keep_alive_exchange(p.port, &reqs)
        .unwrap_or_else(|e| panic!("exchange: {e}\n{}", p.logs()));
    let bodies: Vec<String> = resps.iter().map(Response::body_text).collect();
    assert_eq!(bodies, ["b1", "b1", "b1", "served", "served", "served"]);
    let needle = "write() to \"/dev/full\" failed (28: No space left on device)";
    assert!(
        wait_until(Duration::from_secs(5), || error_log(&t).contains(needle)),
        "no {needle:?}:\n{}",
        error_log(&t)
    );
    let log = error_log(&t);
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("/dev/full")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("[alert]"), "{log}");
}

/// error_page for a proxy error: nginx answers with the page's body and keeps the error's
/// status (`ngx_http_send_header` puts `err_status` back), 502 here.
#[test]
fn error_page_for_a_dead_upstream_keeps_the_502() {
    let t = TempDir::new("px-errpage");
    let dead_port = proton_tests::dead_port();
    let dead = dead_port.port;
    let http = with_ports(
        r#"
upstream dead { server 127.0.0.1:@D@; }
server {
    listen 127.0.0.1:{port};
    location /pretty/ { proxy_pass http://dead; error_page 502 /50x.html; }
    location = /50x.html { return 200 "sorry"; }
}
"#,
        &[("D", dead)],
    );
    let p = start(&t, &http);
    let r = get(&p, "/pretty/x");
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (502, "sorry"),
        "{}",
        p.logs()
    );
}

/// A single-server upstream is never considered unavailable (nginx ignores max_fails and
/// fail_timeout for it): one failed request must not turn the next ones into 502s.
#[test]
fn single_server_upstream_is_never_marked_down() {
    let (_t, _b, p) = one_backend(
        "px-single",
        r#"
upstream one { server 127.0.0.1:@A@; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://one; }
    location /direct/ { proxy_pass http://127.0.0.1:@A@/; }
}
"#,
    );
    for prefix in ["", "/direct"] {
        let r = get(&p, &format!("{prefix}/close-now"));
        assert_eq!(r.status, 502, "{prefix}/close-now\n{}", p.logs());
        let r = get(&p, &format!("{prefix}/id"));
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "b1"),
            "{prefix}/id after a failure\n{}",
            p.logs()
        );
    }
}

/// proxy_read_timeout before the head: 504 (nginx maps a timeout to 504 also when no
/// server is left to try), within the timeout, not the backend's 3 s.
#[test]
fn read_timeout_before_the_head_gives_504() {
    let (t, _b, p) = one_backend(
        "px-timeout",
        r#"
upstream be { server 127.0.0.1:@A@ max_fails=0; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://be; proxy_read_timeout 500ms; }
}
"#,
    );
    let started = Instant::now();
    let r = get(&p, "/delay?ms=3000");
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}\n{}", r.body_text(), p.logs());
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(15),
        "504 after {took:?}"
    );
    assert!(
        error_log(&t).contains("timed out"),
        "no timeout in the error log:\n{}",
        error_log(&t)
    );
}

/// proxy_read_timeout after the head: the client gets the head and a closed connection.
#[test]
fn read_timeout_in_the_body_cuts_the_response() {
    let (t, _b, p) = one_backend(
        "px-timeout-body",
        r#"
upstream be { server 127.0.0.1:@A@ max_fails=0; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://be; proxy_read_timeout 500ms; }
}
"#,
    );
    let started = Instant::now();
    let (raw, closed) = raw_exchange(
        p.port,
        b"GET /headdelay?ms=3000 HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(closed, "not closed after {took:?}: {text:?}\n{}", p.logs());
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(15),
        "closed after {took:?}"
    );
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains("Content-Length: 5\r\n"),
        "{text:?}"
    );
    assert!(
        text.ends_with("\r\n\r\n"),
        "body bytes after a timeout: {text:?}"
    );
    assert!(
        error_log(&t).contains("timed out"),
        "no timeout in the error log:\n{}",
        error_log(&t)
    );
    // Still serving.
    assert_eq!(get(&p, "/id").body_text(), "b1");
}

/// Broken framing from the upstream: 502, and the next request is served cleanly.
/// (`max_fails=0` keeps the single-server rule out of this test.)
#[test]
fn broken_upstream_responses_give_502() {
    let (t, b, p) = one_backend(
        "px-broken",
        r#"
upstream be { server 127.0.0.1:@A@ max_fails=0; keepalive 8; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
}
"#,
    );
    assert_eq!(get(&p, "/id").body_text(), "b1");
    for path in [
        "/bad-cl",
        "/both-cl-te",
        "/bad-te",
        "/bad-status",
        "/close-now",
        "/reset",
    ] {
        let before = b.stats();
        let r = get(&p, path);
        assert_eq!(
            r.status,
            502,
            "{path}: {} {:?}\n{}",
            r.status,
            r.body_text(),
            p.logs()
        );
        assert!(
            r.body_text().contains("502 Bad Gateway"),
            "{path}: {}",
            r.body_text()
        );
        // The connection that carried the broken response is not used again: the next
        // request gets a clean answer on a new upstream connection.
        let r = get(&p, "/id");
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "b1"),
            "after {path}\n{}",
            p.logs()
        );
        let after = b.stats();
        assert!(
            new_connections(before, after) >= 1,
            "after {path}: {before:?} -> {after:?}"
        );
    }
    for what in ["duplicate", "Transfer-Encoding", "prematurely closed"] {
        assert!(
            error_log(&t).contains(what),
            "no {what:?} in the error log:\n{}",
            error_log(&t)
        );
    }
}

#[test]
fn upstream_closing_mid_body_cuts_the_client_response() {
    let (_t, _b, p) = one_backend("px-closemid", FRAMING);
    let started = Instant::now();
    let (raw, closed) = raw_exchange(
        p.port,
        b"GET /close-mid HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    );
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(
        closed,
        "the client connection hangs: {text:?}\n{}",
        p.logs()
    );
    assert!(took < Duration::from_secs(15), "closed after {took:?}");
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    assert!(text.contains("Content-Length: 1000\r\n"), "{text:?}");
    assert!(text.ends_with("\r\n\r\n0123456789"), "{text:?}");
    assert_eq!(get(&p, "/id").body_text(), "b1");
}

/// Issue 12, item 8: a chunked response whose framing breaks after the head went out (a
/// size line `zz`, the upstream then silent but open): the valid part is delivered and the
/// client connection closed at once (nginx), not held until send_timeout (60 s here); the
/// error log names the upstream's fault.
#[test]
fn invalid_chunked_response_closes_the_client_at_once() {
    let (t, _b, p) = one_backend("px-badchunk", FRAMING);
    for (version, framed) in [("1.1", true), ("1.0", false)] {
        let req = format!("GET /bad-chunked HTTP/{version}\r\nHost: x\r\n\r\n");
        // A hang would last send_timeout (60 s); 20 s tells the two apart under any load.
        let (raw, closed) = raw_exchange(p.port, req.as_bytes(), Duration::from_secs(20));
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(
            closed,
            "HTTP/{version}: the client connection was held open: {text:?}\n{}",
            p.logs()
        );
        // nginx answers HTTP/1.1 whatever the request's version.
        assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
        // The valid chunk's data, not the broken size line (chunk framing cut short tells
        // an HTTP/1.1 client the response is incomplete; an HTTP/1.0 one sees the close).
        let body = if framed {
            "\r\n\r\n5\r\nhello"
        } else {
            "\r\n\r\nhello"
        };
        assert!(text.contains(body), "HTTP/{version}: {text:?}");
        assert!(!text.contains("zz"), "HTTP/{version}: {text:?}");
    }
    let log = error_log(&t);
    assert!(
        log.contains("[error]")
            && log.contains("upstream sent invalid chunked response while reading upstream"),
        "{log}"
    );
    assert!(!log.contains("client sent invalid chunk"), "{log}");
    assert_eq!(get(&p, "/id").body_text(), "b1");
}

/// Issue 12: a server that closes each kept-alive connection right after its response
/// (while still saying `Connection: keep-alive`). Proton sees the FIN with the response and
/// must not cache that connection: no request meets it closed, so no retry and no
/// `[error]` line (the retries had made ~900 error lines a second under load).
#[test]
fn upstream_connections_closed_after_a_response_are_not_reused() {
    let (t, b, p) = one_backend("px-kaclose", FRAMING);
    let before = b.stats();
    for i in 0..30 {
        let r = get(&p, "/id?close=1");
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "b1"),
            "request {i}\n{}",
            p.logs()
        );
    }
    let after = b.stats();
    assert_eq!(new_requests(before, after), 30);
    // The backend closes right after its answer. A connection whose close has been seen
    // is never reused; one the backend closes only after Proton cached it (a busy
    // machine can delay the close) is met by the next request and retried, with nginx's
    // error line, as nginx does. Reusing closed connections would meet one per request.
    let log = error_log(&t);
    let stale = log
        .lines()
        .filter(|l| l.contains("upstream prematurely closed connection"))
        .count();
    let other = log
        .lines()
        .filter(|l| l.contains("[error]") && !l.contains("upstream prematurely closed connection"))
        .count();
    assert!(
        stale < 10 && other == 0,
        "closed upstream connections were reused:\n{log}"
    );
}

/// Issue 12: a server that drops a kept-alive connection just as a request arrives on it.
/// As nginx, the failure counts toward max_fails even though the connection was a cached
/// one: a POST that was sent on it gets 502 (it may not be sent twice), and the server is
/// then out for fail_timeout, so the next POSTs go to the other server instead of failing
/// one in two (before, three of twelve POSTs got 502). A GET that meets such a connection
/// is sent again and answered.
#[test]
fn stale_keepalive_failures_count_toward_max_fails() {
    let t = TempDir::new("px-stale");
    let flaky = Backend::start_with("flaky", free_port(), &["--requests-per-connection", "1"]);
    let flaky_get = Backend::start_with("flaky2", free_port(), &["--requests-per-connection", "1"]);
    let good = Backend::start("good");
    let http = with_ports(
        r#"
upstream posts { server 127.0.0.1:@F@ max_fails=1 fail_timeout=60s; server 127.0.0.1:@G@; keepalive 8; }
upstream gets { server 127.0.0.1:@H@ max_fails=1 fail_timeout=60s; server 127.0.0.1:@G@; keepalive 8; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://posts; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /g/ { proxy_pass http://gets/; proxy_http_version 1.1; proxy_set_header Connection ""; }
}
"#,
        &[("F", flaky.port), ("G", good.port), ("H", flaky_get.port)],
    );
    let p = start(&t, &http);
    let post = b"POST /id HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx";
    let answers: Vec<(u16, String)> = (0..12)
        .map(|_| {
            let r = send(&p, post);
            (r.status, r.body_text())
        })
        .collect();
    let failed = answers.iter().filter(|(s, _)| *s == 502).count();
    assert_eq!(failed, 1, "{answers:?}\n{}", p.logs());
    let first_502 = answers.iter().position(|(s, _)| *s == 502).unwrap_or(0);
    for (s, body) in &answers[first_502 + 1..] {
        assert_eq!((*s, body.as_str()), (200, "good"), "{answers:?}");
    }
    // GETs meeting a dropped connection are answered (sent again on another connection).
    for i in 0..8 {
        let r = get(&p, "/g/id");
        assert_eq!(r.status, 200, "GET {i}: {}\n{}", r.body_text(), p.logs());
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Retries (proxy_next_upstream)
// ---------------------------------------------------------------------------------------------

#[test]
fn requests_move_past_a_dead_server() {
    let t = TempDir::new("px-retry");
    let b = Backend::start("live");
    let dead_port = proton_tests::dead_port();
    let dead = dead_port.port;
    let http = with_ports(
        r#"
upstream mixed { server 127.0.0.1:@D@; server 127.0.0.1:@A@; }
upstream mixed0 { server 127.0.0.1:@D@ max_fails=0; server 127.0.0.1:@A@; }
upstream off0 { server 127.0.0.1:@D@ max_fails=0; server 127.0.0.1:@A@; }
server {
    listen 127.0.0.1:{port};
    location /m/ { proxy_pass http://mixed/; }
    location /post/ { proxy_pass http://mixed0/; }
    location /off/ { proxy_pass http://off0/; proxy_next_upstream off; }
}
"#,
        &[("D", dead), ("A", b.port)],
    );
    let p = start(&t, &http);
    let resps = keep_alive_gets(&p, "/m/id", 100);
    assert_eq!(tally(&resps).get("live"), Some(&100));

    // A POST whose connect failed sent nothing: it moves on too (no non_idempotent needed).
    let failures = || error_log(&t).matches(&format!("127.0.0.1:{dead}")).count();
    let before = failures();
    for i in 0..10 {
        let req = format!(
            "POST /post/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nConnection: close\r\n\r\npost={i:02}"
        );
        let e = Echo::of(&send(&p, req.as_bytes()));
        assert_eq!(e.body, format!("post={i:02}").as_bytes(), "{}", e.dump());
    }
    assert!(
        failures() > before,
        "no POST went to the dead server first (max_fails=0):\n{}",
        error_log(&t)
    );

    // proxy_next_upstream off: the dead server's turns are 502s.
    let mut statuses = BTreeMap::new();
    for _ in 0..10 {
        *statuses.entry(get(&p, "/off/id").status).or_insert(0) += 1;
    }
    assert!(
        statuses.get(&502).is_some_and(|&n| n >= 2) && statuses.get(&200).is_some_and(|&n| n >= 2),
        "{statuses:?}\n{}",
        p.logs()
    );
}

/// Once a request was sent, a POST is not sent to another server (unless `non_idempotent`);
/// a GET is.
#[test]
fn sent_posts_are_not_retried_unless_non_idempotent() {
    let t = TempDir::new("px-nonidem");
    let a = Backend::start("a");
    let b = Backend::start("b");
    let http = with_ports(
        r#"
upstream two { server 127.0.0.1:@A@ max_fails=0; server 127.0.0.1:@B@ max_fails=0; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://two; }
    location /ni/ { proxy_pass http://two/; proxy_next_upstream error non_idempotent; }
}
"#,
        &[("A", a.port), ("B", b.port)],
    );
    let p = start(&t, &http);
    let served = || a.stats().1 + b.stats().1 - 2;
    for (method, path, want_tries) in [
        ("GET", "/close-now", 2),
        ("POST", "/close-now", 1),
        ("POST", "/ni/close-now", 2),
    ] {
        let before = served();
        let r = send(
            &p,
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .as_bytes(),
        );
        assert_eq!(r.status, 502, "{method} {path}\n{}", p.logs());
        // Each `served()` call adds two /stats requests.
        let tries = served() - before - 2;
        assert_eq!(
            tries, want_tries,
            "{method} {path} reached the backends {tries} times"
        );
    }
}

/// A loopback port where connect() hangs: a listener whose accept queue is full drops new
/// SYNs (Linux), so only proxy_connect_timeout ends the attempt.
struct Blackhole {
    port: u16,
    _listener: socket2::Socket,
    _queued: Vec<TcpStream>,
}

fn blackhole() -> Blackhole {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    listener
        .bind(&std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .expect("bind");
    listener.listen(0).expect("listen");
    let addr = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("local addr");
    let mut queued = Vec::new();
    while queued.len() < 16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => queued.push(s),
            Err(_) => break,
        }
    }
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
        "the accept queue of {addr} does not fill up"
    );
    Blackhole {
        port: addr.port(),
        _listener: listener,
        _queued: queued,
    }
}

/// proxy_connect_timeout bounds a hanging connect; the request moves to the next server.
#[test]
fn connect_timeout_moves_to_the_next_server() {
    let t = TempDir::new("px-conntimeout");
    let hole = blackhole();
    let b = Backend::start("live");
    let http = with_ports(
        r#"
upstream pair { server 127.0.0.1:@H@ max_fails=0; server 127.0.0.1:@A@ max_fails=0; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://pair; proxy_connect_timeout 300ms; }
}
"#,
        &[("H", hole.port), ("A", b.port)],
    );
    let p = start(&t, &http);
    for i in 0..4 {
        let started = Instant::now();
        let r = get(&p, "/id");
        let took = started.elapsed();
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "live"),
            "request {i}\n{}",
            p.logs()
        );
        assert!(took < Duration::from_secs(15), "request {i} took {took:?}");
    }
    let log = error_log(&t);
    assert!(
        log.contains("timed out") && log.contains(&format!("127.0.0.1:{}", hole.port)),
        "no connect timeout towards the blackhole in the error log:\n{log}"
    );
}

/// A connect timeout on the only server: 504, as nginx.
#[test]
fn connect_timeout_on_the_only_server_gives_504() {
    let t = TempDir::new("px-conn504");
    let hole = blackhole();
    let http = with_ports(
        r#"
upstream hole { server 127.0.0.1:@H@; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://hole; proxy_connect_timeout 300ms; }
}
"#,
        &[("H", hole.port)],
    );
    let p = start(&t, &http);
    let started = Instant::now();
    let r = get(&p, "/id");
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}\n{}", r.body_text(), p.logs());
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(15),
        "504 after {took:?}"
    );
}

/// A backend killed while GETs run: nobody notices.
#[test]
fn killing_a_backend_mid_run_is_invisible_to_gets() {
    let t = TempDir::new("px-killrun");
    let mut a = Backend::start("a");
    let b = Backend::start("b");
    let http = with_ports(
        r#"
upstream ka { server 127.0.0.1:@A@; server 127.0.0.1:@B@; keepalive 8; }
upstream nk { server 127.0.0.1:@A@; server 127.0.0.1:@B@; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://ka; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location /nk/ { proxy_pass http://nk/; }
}
"#,
        &[("A", a.port), ("B", b.port)],
    );
    let p = start(&t, &http);
    let port = p.port;
    let done = Arc::new(AtomicUsize::new(0));
    let runner = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut bad = Vec::new();
            let mut names = BTreeMap::new();
            for i in 0..300 {
                let path = if i % 2 == 0 { "/id" } else { "/nk/id" };
                match request(port, Some("x"), path) {
                    Ok(r) if r.status == 200 => {
                        *names.entry(r.body_text()).or_insert(0) += 1;
                    }
                    Ok(r) => bad.push(format!("#{i} {path}: {} {:?}", r.status, r.body_text())),
                    Err(e) => bad.push(format!("#{i} {path}: {e}")),
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            (bad, names)
        })
    };
    assert!(wait_until(Duration::from_secs(30), || done
        .load(Ordering::SeqCst)
        >= 60));
    a.kill();
    let (bad, names) = runner.join().expect("the client thread");
    assert!(
        bad.is_empty(),
        "client-visible errors: {bad:?}\n{}",
        p.logs()
    );
    assert!(names.get("a").is_some_and(|&n| n >= 20), "{names:?}");
    assert!(names.get("b").is_some_and(|&n| n >= 150), "{names:?}");
}

/// `http_503` in proxy_next_upstream. The 503 comes from a server block of Proton itself
/// (the upstream group lists Proton's own port, reached with `Host: unavailable`), so the
/// same proxied URI answers 503 on one server and 200 on the other.
#[test]
fn next_upstream_http_503_moves_on() {
    let t = TempDir::new("px-503");
    let b = Backend::start("live");
    let http = with_ports(
        r#"
upstream flaky { server 127.0.0.1:{port} max_fails=0; server 127.0.0.1:@A@ max_fails=0; }
server {
    listen 127.0.0.1:{port};
    location /n503/ { proxy_pass http://flaky/; proxy_set_header Host unavailable; proxy_next_upstream error timeout http_503; }
    location /p503/ { proxy_pass http://flaky/; proxy_set_header Host unavailable; }
}
server {
    listen 127.0.0.1:{port};
    server_name unavailable;
    access_log {dir}/logs/unavailable.log;
    location / { return 503 "down"; }
}
"#,
        &[("A", b.port)],
    );
    let p = start(&t, &http);
    let hits = || {
        std::fs::read_to_string(t.path().join("logs/unavailable.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    // Without http_503 the 503s reach the client.
    let mut statuses = BTreeMap::new();
    for _ in 0..10 {
        *statuses.entry(get(&p, "/p503/id").status).or_insert(0) += 1;
    }
    assert!(
        statuses.get(&503).is_some_and(|&n| n >= 2) && statuses.get(&200).is_some_and(|&n| n >= 2),
        "{statuses:?}\n{}",
        p.logs()
    );
    let before = hits();
    for i in 0..10 {
        let r = get(&p, "/n503/id");
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "live"),
            "request {i}\n{}",
            p.logs()
        );
    }
    assert!(
        wait_until(Duration::from_secs(20), || hits() > before),
        "the 503 server was never tried"
    );
}

/// `http_503` when every server answers 503: nginx passes the last 503 response on (it
/// moves on only while servers are left), it does not make a 502 of it.
#[test]
fn next_upstream_http_503_everywhere_passes_the_503() {
    let t = TempDir::new("px-503all");
    let http = r#"
upstream down { server 127.0.0.1:{port} max_fails=0; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://down; proxy_set_header Host unavailable; proxy_next_upstream error timeout http_503; }
}
server {
    listen 127.0.0.1:{port};
    server_name unavailable;
    location / { return 503 "down"; }
}
"#;
    let p = start(&t, http);
    let r = get(&p, "/x");
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (503, "down"),
        "{}",
        p.logs()
    );
}

// ---------------------------------------------------------------------------------------------
// 9. Load balancing
// ---------------------------------------------------------------------------------------------

fn three() -> [Backend; 3] {
    [
        Backend::start("one"),
        Backend::start("two"),
        Backend::start("three"),
    ]
}

#[test]
fn weighted_round_robin_shares() {
    let t = TempDir::new("px-wrr");
    let [x, y, z] = three();
    let http = with_ports(
        r#"
upstream w {
    server 127.0.0.1:@X@ weight=1;
    server 127.0.0.1:@Y@ weight=2;
    server 127.0.0.1:@Z@ weight=3;
    keepalive 8;
}
server {
    listen 127.0.0.1:{port};
    keepalive_requests 10000;
    location / { proxy_pass http://w; proxy_http_version 1.1; proxy_set_header Connection ""; }
}
"#,
        &[("X", x.port), ("Y", y.port), ("Z", z.port)],
    );
    let p = start(&t, &http);
    // Smooth weighted round-robin is deterministic: over 3,000 requests each server's
    // share is within 3 % of its weight (in fact exact, as nginx).
    let counts = tally(&keep_alive_gets(&p, "/id", 3000));
    for (name, want) in [("one", 500), ("two", 1000), ("three", 1500)] {
        let got = counts.get(name).copied().unwrap_or(0);
        assert!(
            got.abs_diff(want) <= 90,
            "{name}: {got} of 3000, want {want} ± 90: {counts:?}"
        );
    }
}

#[test]
fn consistent_hash_is_stable_and_remaps_few_keys() {
    let [x, y, z] = three();
    let ports = [("X", x.port), ("Y", y.port), ("Z", z.port)];
    let all = with_ports(
        r#"
upstream h { hash $arg_k consistent; server 127.0.0.1:@X@; server 127.0.0.1:@Y@; server 127.0.0.1:@Z@; }
server { listen 127.0.0.1:{port}; location / { proxy_pass http://h; } }
"#,
        &ports,
    );
    let two = with_ports(
        r#"
upstream h { hash $arg_k consistent; server 127.0.0.1:@X@; server 127.0.0.1:@Y@; }
server { listen 127.0.0.1:{port}; location / { proxy_pass http://h; } }
"#,
        &ports[..2],
    );
    let keys: Vec<String> = (0..300).map(|i| format!("key-{i}")).collect();
    let map = |p: &Proton| -> Vec<String> {
        let mut reqs = Vec::new();
        for k in &keys {
            reqs.push(format!("GET /id?k={k} HTTP/1.1\r\nHost: x\r\n\r\n"));
        }
        let reqs: Vec<&[u8]> = reqs.iter().map(|r| r.as_bytes()).collect();
        let resps = keep_alive_exchange(p.port, &reqs).expect("hash requests");
        assert_eq!(resps.len(), keys.len(), "{}", p.logs());
        resps.iter().map(|r| r.body_text()).collect()
    };

    let t = TempDir::new("px-hash3");
    let p = start(&t, &all);
    let first = map(&p);
    assert_eq!(map(&p), first, "the same key went to another server");
    let mut share: HashMap<&str, usize> = HashMap::new();
    for n in &first {
        *share.entry(n.as_str()).or_insert(0) += 1;
    }
    for name in ["one", "two", "three"] {
        let n = share.get(name).copied().unwrap_or(0);
        assert!(n >= 45, "{name} got {n} of 300 keys: {share:?}");
    }
    drop(p);

    let t2 = TempDir::new("px-hash2");
    let p = start(&t2, &two);
    let second = map(&p);
    let moved = first.iter().zip(&second).filter(|(a, b)| a != b).count();
    let stayed_on_survivors = first
        .iter()
        .zip(&second)
        .filter(|(a, _)| a.as_str() != "three")
        .filter(|(a, b)| a == b)
        .count();
    let on_survivors = first.iter().filter(|a| a.as_str() != "three").count();
    assert!(
        (45..=165).contains(&moved),
        "{moved} of 300 keys moved after removing one of three servers"
    );
    assert!(
        stayed_on_survivors * 100 >= on_survivors * 95,
        "only {stayed_on_survivors} of {on_survivors} keys of the surviving servers stayed"
    );
    assert!(second.iter().all(|n| n != "three"));
}

#[test]
fn ip_hash_and_least_conn() {
    let t = TempDir::new("px-iphash");
    let [x, y, z] = three();
    let http = with_ports(
        r#"
upstream iph { ip_hash; server 127.0.0.1:@X@; server 127.0.0.1:@Y@; server 127.0.0.1:@Z@; }
upstream lc { least_conn; server 127.0.0.1:@X@; server 127.0.0.1:@Y@; }
server {
    listen 127.0.0.1:{port};
    location /ip/ { proxy_pass http://iph/; }
    location /lc/ { proxy_pass http://lc/; }
}
"#,
        &[("X", x.port), ("Y", y.port), ("Z", z.port)],
    );
    let p = start(&t, &http);
    let counts = tally(&keep_alive_gets(&p, "/ip/id", 30));
    assert_eq!(counts.len(), 1, "ip_hash spread one client: {counts:?}");

    // least_conn: while one server holds a slow request, the quick ones go to the other.
    let served = || x.stats().1 + y.stats().1;
    let mut polls = 1u64;
    let base = served();
    let port = p.port;
    let slow = std::thread::spawn(move || request(port, Some("x"), "/lc/delay?ms=2000"));
    assert!(
        wait_until(Duration::from_secs(20), || {
            polls += 1;
            served() - 2 * polls > base - 2
        }),
        "the slow request never reached a backend"
    );
    let quick = tally(&keep_alive_gets(&p, "/lc/id", 10));
    let slow = slow.join().expect("slow thread").expect("slow request");
    assert_eq!(slow.body_text(), "delayed");
    let busy = slow.header("x-backend").unwrap_or_default().to_string();
    assert_eq!(quick.len(), 1, "{quick:?}");
    assert!(
        !quick.contains_key(&busy),
        "a quick request went to the busy server {busy}: {quick:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 10, 11. WebSocket and h2c
// ---------------------------------------------------------------------------------------------

const UPGRADE: &str = r#"
upstream be { server 127.0.0.1:@A@; }
server {
    listen 127.0.0.1:{port};
    location /ws {
        proxy_pass http://be;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_read_timeout 5s;
    }
    location /up/ {
        proxy_pass http://be/;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_read_timeout 5s;
    }
}
"#;

#[test]
fn websocket_messages_echo_through_the_tunnel() {
    let t = TempDir::new("px-ws");
    let b = Backend::start("ws");
    let p = start(&t, &with_ports(UPGRADE, &[("A", b.port)]));
    let stream = connect(&p);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let url = format!("ws://127.0.0.1:{}/ws", p.port);
    let (mut ws, resp) = tungstenite::client(url.as_str(), stream)
        .unwrap_or_else(|e| panic!("handshake through the proxy: {e}\n{}", p.logs()));
    assert_eq!(resp.status().as_u16(), 101);
    assert_eq!(
        resp.headers().get("x-backend").map(|v| v.as_bytes()),
        Some(&b"ws"[..])
    );
    for size in [1usize, 64 * 1024, 1024 * 1024, 8 * 1024 * 1024] {
        let text: String = (0..size)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        ws.send(Message::text(text.clone()))
            .unwrap_or_else(|e| panic!("send text {size}: {e}"));
        match ws.read() {
            Ok(Message::Text(got)) => {
                assert!(got.as_str() == text, "text echo of {size} bytes differs")
            }
            other => panic!("text {size}: got {:?}", other.map(|m| m.len())),
        }
        let bin: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        ws.send(Message::binary(bin.clone()))
            .unwrap_or_else(|e| panic!("send binary {size}: {e}"));
        match ws.read() {
            Ok(Message::Binary(got)) => {
                assert!(got[..] == bin[..], "binary echo of {size} bytes differs")
            }
            other => panic!("binary {size}: got {:?}", other.map(|m| m.len())),
        }
    }
    ws_close_cleanly(&mut ws);
}

#[test]
fn h2c_upgrade_is_never_passed() {
    let (_t, _b, p) = one_backend("px-h2c", UPGRADE);
    let req: &[u8] = b"GET /up/echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                       Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    // Control: a WebSocket-style upgrade request is passed with its Upgrade header (the
    // backend's /echo answers it with a plain 200).
    let control = send(
        &p,
        b"GET /up/echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n",
    );
    let e = Echo::of(&control);
    assert_eq!(e.one("upgrade"), Some("websocket"), "{}", e.dump());
    assert_eq!(e.one("connection"), Some("upgrade"), "{}", e.dump());

    let resps = keep_alive_exchange(p.port, &[req])
        .unwrap_or_else(|e| panic!("h2c request: {e}\n{}", p.logs()));
    let r = resps
        .first()
        .unwrap_or_else(|| panic!("no response\n{}", p.logs()));
    assert_ne!(r.status, 101);
    let e = Echo::of(r);
    assert!(
        e.all("upgrade").is_empty(),
        "Upgrade forwarded: {}",
        e.dump()
    );
    assert!(
        !e.all("connection")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("upgrade")),
        "{}",
        e.dump()
    );
    // The WebSocket location itself: no 101 for h2c either.
    let r = send(
        &p,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    );
    assert_ne!(r.status, 101, "{:?}", r.headers);
}

// ---------------------------------------------------------------------------------------------
// 12. Request bodies
// ---------------------------------------------------------------------------------------------

const BODIES: &str = r#"
upstream be { server 127.0.0.1:@A@; keepalive 8; }
server {
    listen 127.0.0.1:{port};
    client_max_body_size 10m;
    location / { proxy_pass http://be; }
    location /v11/ {
        proxy_pass http://be/; proxy_http_version 1.1; proxy_set_header Connection "";
        proxy_request_buffering off;
    }
    location /b11/ { proxy_pass http://be/; proxy_http_version 1.1; proxy_set_header Connection ""; }
}
"#;

/// Sends a request head, then each piece of the body in its own write; returns the response.
fn send_in_pieces(p: &Proton, head: &str, pieces: &[&[u8]]) -> Response {
    let mut s = connect(p);
    let _ = s.set_nodelay(true);
    s.write_all(head.as_bytes()).expect("send head");
    for piece in pieces {
        s.write_all(piece).expect("send piece");
        s.flush().expect("flush");
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw).unwrap_or_else(|e| {
        panic!(
            "{head:?}: {e}: {:?}\n{}",
            String::from_utf8_lossy(&raw),
            p.logs()
        )
    })
}

/// Sends a request head and the body pieces but the last, waits until the backend has the
/// proxy's connection (the body is streaming: nginx, like Proton, sends a chunked body that
/// came whole with the head with a Content-Length instead), then the last piece.
fn send_streaming(p: &Proton, b: &Backend, head: &str, pieces: &[&[u8]]) -> Response {
    let before = b.stats();
    let mut s = connect(p);
    let _ = s.set_nodelay(true);
    s.write_all(head.as_bytes()).expect("send head");
    let (last, first) = pieces.split_last().expect("pieces");
    for piece in first {
        s.write_all(piece).expect("send piece");
    }
    assert!(
        b.wait_new_connection(before, Duration::from_secs(10)),
        "the body does not stream\n{}",
        p.logs()
    );
    s.write_all(last).expect("send the last piece");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw).unwrap_or_else(|e| panic!("{head:?}: {e}\n{}", p.logs()))
}

#[test]
fn chunked_request_bodies_reach_the_backend() {
    let (_t, b, p) = one_backend("px-reqchunked", BODIES);
    let pieces: [&[u8]; 4] = [
        b"5\r\nhello\r\n",
        b"6\r\n world\r\n",
        b"1;ext=1\r\n!\r\n",
        b"0\r\n\r\n",
    ];

    // HTTP/1.1 upstream, proxy_request_buffering off: passed chunked.
    let head = "POST /v11/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let e = Echo::of(&send_streaming(&p, &b, head, &pieces));
    assert_eq!(e.line, "POST /echo HTTP/1.1", "{}", e.dump());
    assert_eq!(e.body, b"hello world!", "{}", e.dump());
    assert_eq!(e.one("transfer-encoding"), Some("chunked"), "{}", e.dump());
    assert!(e.all("content-length").is_empty(), "{}", e.dump());

    // HTTP/1.1 upstream, buffering on (nginx's default): read whole, then sent with a
    // Content-Length, as nginx.
    let head = "POST /b11/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let e = Echo::of(&send_in_pieces(&p, head, &pieces));
    assert_eq!(e.line, "POST /echo HTTP/1.1", "{}", e.dump());
    assert_eq!(e.body, b"hello world!", "{}", e.dump());
    assert_eq!(e.one("content-length"), Some("12"), "{}", e.dump());
    assert!(e.all("transfer-encoding").is_empty(), "{}", e.dump());

    // HTTP/1.0 upstream: decoded and sent with a Content-Length.
    let head =
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let e = Echo::of(&send_in_pieces(&p, head, &pieces));
    assert_eq!(e.line, "POST /echo HTTP/1.0", "{}", e.dump());
    assert_eq!(e.body, b"hello world!", "{}", e.dump());
    assert_eq!(e.one("content-length"), Some("12"), "{}", e.dump());
    assert!(e.all("transfer-encoding").is_empty(), "{}", e.dump());

    // 200 KiB in 1 KiB chunks, both ways.
    let mut body = Vec::new();
    for _ in 0..200 {
        body.extend_from_slice(b"400\r\n");
        body.extend(std::iter::repeat_n(b'z', 1024));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    for path in ["/count", "/v11/count", "/b11/count"] {
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        let r = send_in_pieces(&p, &head, &[&body]);
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "bytes=204800"),
            "{path}\n{}",
            p.logs()
        );
    }
}

/// Issue 12, item 7: the client's chunk extensions and trailer section never reach the
/// upstream, whatever they hold (control bytes, an obs-fold, a line shaped like a request):
/// the body goes re-chunked (HTTP/1.1 upstream) or with a Content-Length (HTTP/1.0).
#[test]
fn chunked_request_trailers_and_extensions_are_not_forwarded() {
    let (_t, b, p) = one_backend("px-trailers", BODIES);
    let pieces: [&[u8]; 3] = [
        b"5;name=\"val\"\r\nhello\r\n",
        b"6 ;x-ext\r\n world\r\n0;last\r\n",
        b"X-Bell: a\x07b\r\nGET /smuggled HTTP/1.1\r\nX-Fold: a\r\n  folded\r\n\r\n",
    ];
    let head = "POST /v11/echo?raw=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let e = Echo::of(&send_streaming(&p, &b, head, &pieces));
    assert_eq!(e.one("transfer-encoding"), Some("chunked"), "{}", e.dump());
    // As the backend read it off the wire: clean chunks and an empty trailer section. (As
    // nginx, what one read brought goes as one chunk: the pieces may have been joined.)
    let raw = String::from_utf8_lossy(&e.body).into_owned();
    assert!(
        raw == "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" || raw == "b\r\nhello world\r\n0\r\n\r\n",
        "{raw:?}\n{}",
        p.logs()
    );

    let head =
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let e = Echo::of(&send_in_pieces(&p, head, &pieces));
    assert_eq!(e.body, b"hello world", "{}", e.dump());
    assert_eq!(e.one("content-length"), Some("11"), "{}", e.dump());
    for leak in ["x-bell", "x-fold", "get /smuggled http/1.1"] {
        assert!(
            e.headers.iter().all(|(n, _)| n != leak),
            "{leak} reached the backend: {}",
            e.dump()
        );
    }
}

/// Issue 12, item 7: TRACE and CONNECT never reach an upstream: 405 and a closed
/// connection, with nginx's log line; an absolute-form target with a query but no path
/// (`GET http://localhost?x=1`) is the path `/` with the arguments `x=1`, as nginx (it was
/// a 400).
#[test]
fn trace_connect_and_absolute_form_without_a_path() {
    let (t, b, p) = one_backend(
        "px-methods",
        r#"
upstream be { server 127.0.0.1:@A@; }
server {
    listen 127.0.0.1:{port};
    location = / { proxy_pass http://be/echo; }
    location / { proxy_pass http://be; }
}
"#,
    );
    for method in ["TRACE", "CONNECT"] {
        let before = b.stats();
        let req = format!("{method} /echo HTTP/1.1\r\nHost: x\r\nCookie: secret\r\n\r\n");
        let (raw, closed) = raw_exchange(p.port, req.as_bytes(), Duration::from_secs(10));
        let r = parse_response(&raw).unwrap_or_else(|e| panic!("{method}: {e}\n{}", p.logs()));
        assert_eq!(r.status, 405, "{method}: {}\n{}", r.body_text(), p.logs());
        assert_eq!(r.header("connection"), Some("close"), "{method}");
        assert!(closed, "{method}: the connection stayed open");
        assert!(!r.body_text().contains("secret"), "{method}");
        assert_eq!(
            new_requests(before, b.stats()),
            0,
            "{method} reached the backend"
        );
        let line = format!("client sent {method} method");
        assert!(
            wait_until(Duration::from_secs(5), || error_log(&t).contains(&line)),
            "no {line:?} in the error log:\n{}",
            error_log(&t)
        );
    }
    let r = send(
        &p,
        b"GET http://localhost?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let e = Echo::of(&r);
    assert_eq!(e.line, "GET /echo?x=1 HTTP/1.0", "{}", e.dump());
}

#[test]
fn large_and_expect_continue_uploads() {
    let (_t, _b, p) = one_backend("px-upload", BODIES);
    let body = vec![b'u'; 5 * 1024 * 1024];
    for path in ["/count", "/v11/count"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let r = send_in_pieces(&p, &head, &[&body]);
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "bytes=5242880"),
            "{path}\n{}",
            p.logs()
        );
    }

    // Expect: 100-continue: the go-ahead comes, then the answer; the backend is not asked
    // to send one again.
    let mut s = connect(&p);
    s.write_all(
        b"POST /v11/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\
          Connection: close\r\n\r\n",
    )
    .expect("send head");
    let mut buf = Vec::new();
    let n = read_head(&mut s, &mut buf)
        .unwrap_or_else(|e| panic!("waiting for 100 Continue: {e}\n{}", p.logs()));
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 100"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    s.write_all(b"hello").expect("send body");
    let mut rest = buf[n..].to_vec();
    s.read_to_end(&mut rest).expect("read the answer");
    let e = Echo::of(&parse_response(&rest).expect("a response"));
    assert_eq!(e.body, b"hello", "{}", e.dump());
    assert!(e.all("expect").is_empty(), "{}", e.dump());

    // With an empty body too: the proxy reads the body, so the go-ahead comes first, as
    // nginx sends it (nginx-tests' http_expect_100_continue.t); not for HTTP/1.0.
    for (version, want_100) in [("1.1", true), ("1.0", false)] {
        let (raw, _) = raw_exchange(
            p.port,
            format!(
                "POST /v11/echo HTTP/{version}\r\nHost: x\r\nContent-Length: 0\r\n\
                 Expect: 100-Continue\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
            Duration::from_secs(20),
        );
        let text = String::from_utf8_lossy(&raw);
        assert_eq!(
            text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"),
            want_100,
            "HTTP/{version}: {text}"
        );
        assert!(text.contains(" 200 "), "HTTP/{version}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// 13. Memory with a slow reader
// ---------------------------------------------------------------------------------------------

/// 2 GiB through the proxy, read slowly for a while and then as fast as possible: the
/// worker's resident memory stays flat (backpressure, not buffering).
#[test]
fn two_gib_to_a_slow_reader_keeps_worker_memory_flat() {
    const TOTAL: u64 = 2 * 1024 * 1024 * 1024;
    const PIECE: usize = 1024 * 1024;
    let (_t, _b, p) = one_backend("px-rss", FRAMING);
    assert_eq!(get(&p, "/big?bytes=1000000").body.len(), 1_000_000);
    let worker = p.the_worker();
    let baseline = rss_kib(&p, worker);

    let mut s = connect(&p);
    s.write_all(
        format!("GET /big?bytes={TOTAL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .expect("send");
    let mut buf = Vec::new();
    let head_len = read_head(&mut s, &mut buf).expect("response head");
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("Content-Length: {TOTAL}")), "{head}");

    let reference: Vec<u8> = (0..(PIECE + 251) as u64).map(pattern).collect();
    let mut got = 0u64;
    let check = |bytes: &[u8], got: &mut u64| {
        let phase = (*got % 251) as usize;
        assert!(
            bytes == &reference[phase..phase + bytes.len()],
            "wrong bytes near offset {got}"
        );
        *got += bytes.len() as u64;
    };
    check(&buf[head_len..], &mut got);
    let mut peak = baseline;
    let mut piece = vec![0u8; PIECE];
    let started = Instant::now();
    // Slowly for 2 s: 64 KiB at a time with pauses, so the proxy must hold the upstream back.
    let mut reads = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        let n = read_retrying(&mut s, &mut piece[..64 * 1024]).expect("slow read");
        assert!(n > 0, "closed after {got} bytes");
        check(&piece[..n], &mut got);
        reads += 1;
        if reads.is_multiple_of(16) {
            peak = peak.max(rss_kib(&p, worker));
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    // Then the rest as fast as it comes.
    let mut next_sample = got;
    while got < TOTAL {
        let n = read_retrying(&mut s, &mut piece).expect("fast read");
        assert!(n > 0, "closed after {got} of {TOTAL} bytes\n{}", p.logs());
        check(&piece[..n], &mut got);
        if got >= next_sample {
            peak = peak.max(rss_kib(&p, worker));
            next_sample = got + 32 * 1024 * 1024;
        }
    }
    let mut tail = [0u8; 16];
    assert_eq!(
        read_retrying(&mut s, &mut tail).expect("end"),
        0,
        "bytes past the end"
    );
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "2 GiB in {:?}; worker RSS {baseline} KiB, peak {peak} KiB",
        started.elapsed()
    );
    assert!(
        growth < 16 * 1024,
        "worker RSS grew by {growth} KiB (baseline {baseline} KiB, peak {peak} KiB)"
    );
}

/// A client that goes away while the upstream is still working on its request: the proxy
/// stops too (nginx without proxy_ignore_client_abort), logs it, and the upstream
/// connection is closed rather than left to finish.
#[test]
fn client_abort_closes_the_upstream_request() {
    let (t, _b, p) = one_backend("px-abort", PLAIN_PROXY);
    let mut s = connect(&p);
    s.write_all(b"GET /delay?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    let started = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || error_log(&t)
            .contains("client prematurely closed connection")),
        "no client-abort line:\n{}",
        error_log(&t)
    );
    // The proxy closed the client connection without waiting for the 60 s upstream answer.
    let mut rest = Vec::new();
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// `$upstream_addr`, `$upstream_status` and `$upstream_response_time` in the access log:
/// the server that answered, its status, and the time it took; 502 for a dead one.
#[test]
fn upstream_variables_reach_the_access_log() {
    let t = TempDir::new("px-upvars");
    let b = Backend::start("b1");
    let dead_port = proton_tests::dead_port();
    let dead = dead_port.port;
    let http = with_ports(
        r#"
log_format up '$request_uri $status up=$upstream_addr st=$upstream_status t=$upstream_response_time';
upstream be { server 127.0.0.1:@A@; }
upstream gone { server 127.0.0.1:@D@; }
server {
    listen 127.0.0.1:{port};
    access_log {dir}/logs/up.log up;
    location / { proxy_pass http://be; }
    location /gone/ { proxy_pass http://gone; }
    location = /local { return 200 "x"; }
}
"#,
        &[("A", b.port), ("D", dead)],
    );
    let p = start(&t, &http);
    assert_eq!(get(&p, "/status?code=201").status, 201);
    assert_eq!(get(&p, "/gone/x").status, 502);
    assert_eq!(get(&p, "/local").status, 200);
    let log_path = t.path().join("logs/up.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(20), || log().lines().count() >= 3),
        "{}",
        log()
    );
    let text = log();
    let lines: Vec<&str> = text.lines().collect();
    let ok = format!("up=127.0.0.1:{} st=201 t=", b.port);
    assert!(
        lines[0].starts_with("/status?code=201 201 ") && lines[0].contains(&ok),
        "{text}"
    );
    let t0 = lines[0].rsplit("t=").next().unwrap_or("");
    assert!(
        t0.len() == 5 && t0.as_bytes()[1] == b'.',
        "response time {t0:?} is not like 0.001"
    );
    let gone = format!("up=127.0.0.1:{dead} st=502 t=");
    assert!(
        lines[1].starts_with("/gone/x 502 ") && lines[1].contains(&gone),
        "{text}"
    );
    // Empty values are logged as `-`, as nginx does.
    assert_eq!(lines[2], "/local 200 up=- st=- t=-", "{text}");
}

/// `random two least_conn` spreads sequential requests over every server; `least_time
/// header` (peak-EWMA) keeps nearly all traffic off a server whose answers take 40 ms.
#[test]
fn random_two_and_least_time_over_real_backends() {
    let t = TempDir::new("px-random-lt");
    let [x, y, z] = three();
    let slow = Backend::start_with("slow", 0, &["--id-delay-ms", "40"]);
    let http = with_ports(
        r#"
upstream r2 { random two least_conn; server 127.0.0.1:@X@; server 127.0.0.1:@Y@; server 127.0.0.1:@Z@; }
upstream lt { least_time header; server 127.0.0.1:@X@; server 127.0.0.1:@Y@; server 127.0.0.1:@S@; }
server {
    listen 127.0.0.1:{port};
    location /r2/ { proxy_pass http://r2/; }
    location /lt/ { proxy_pass http://lt/; }
}
"#,
        &[
            ("X", x.port),
            ("Y", y.port),
            ("Z", z.port),
            ("S", slow.port),
        ],
    );
    let p = start(&t, &http);
    let counts = tally(&keep_alive_gets(&p, "/r2/id", 300));
    assert_eq!(counts.len(), 3, "random two left a server out: {counts:?}");
    assert!(
        counts.values().all(|&n| (30..=200).contains(&n)),
        "random two is lopsided: {counts:?}"
    );
    let counts = tally(&keep_alive_gets(&p, "/lt/id", 100));
    let to_slow = counts.get("slow").copied().unwrap_or(0);
    assert!(
        to_slow <= 10,
        "least_time sent {to_slow} of 100 to the slow server: {counts:?}"
    );
    assert!(
        counts.len() >= 2,
        "least_time should still use both fast servers: {counts:?}"
    );
}

/// Upstream host names are resolved when the IR is loaded (`localhost` here), and a name
/// that does not resolve stops proton-run from loading the config, naming the upstream.
#[test]
fn upstream_host_names_resolve_at_load() {
    let t = TempDir::new("px-names");
    let b = Backend::start("named");
    let http = with_ports(
        r#"
upstream byname { server localhost:@A@; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://byname; }
}
"#,
        &[("A", b.port)],
    );
    let p = start(&t, &http);
    let r = get(&p, "/id");
    assert_eq!((r.status, r.body_text().as_str()), (200, "named"));

    let bad = conf("upstream nowhere { server no-such-host.invalid:80; }\nserver { listen 127.0.0.1:{port}; location / { proxy_pass http://nowhere; } }");
    p.compile(&bad);
    let ir = t.path().join("proton.ir");
    let out = std::process::Command::new(proton_tests::bin("proton-run"))
        .arg("-t")
        .arg(&ir)
        .output()
        .expect("proton-run -t");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("host not found in upstream") && err.contains("nowhere"),
        "{err}"
    );
}

/// Server parameters over real backends: a `down` server never gets a request, a server
/// that failed `max_fails` times is skipped for `fail_timeout` (one connect attempt, not one
/// per request), and `backup` servers answer only when no primary can.
#[test]
fn down_max_fails_and_backup_servers() {
    let t = TempDir::new("px-params");
    let live = Backend::start("live");
    let off = Backend::start("off");
    let spare = Backend::start("spare");
    let dead_port = proton_tests::dead_port();
    let dead = dead_port.port;
    let http = with_ports(
        r#"
upstream main {
    server 127.0.0.1:@D@ max_fails=1 fail_timeout=60s;
    server 127.0.0.1:@L@;
    server 127.0.0.1:@O@ down;
    server 127.0.0.1:@S@ backup;
}
upstream lonely { server 127.0.0.1:@D@; server 127.0.0.1:@S@ backup; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://main; }
    location /b/ { proxy_pass http://lonely/; }
}
"#,
        &[
            ("D", dead),
            ("L", live.port),
            ("O", off.port),
            ("S", spare.port),
        ],
    );
    let p = start(&t, &http);
    for _ in 0..40 {
        let r = get(&p, "/id");
        assert_eq!((r.status, r.body_text().as_str()), (200, "live"));
    }
    // The `down` server and the backup were never asked (only /stats itself counts).
    assert_eq!(off.stats().1, 1);
    assert_eq!(spare.stats().1, 1);
    // The dead server was tried once, then left alone for fail_timeout.
    let dead_addr = format!("127.0.0.1:{dead}");
    let attempts = error_log(&t)
        .lines()
        .filter(|l| l.contains("connect()") && l.contains(&dead_addr))
        .count();
    assert_eq!(attempts, 1, "{}", error_log(&t));
    // With every primary failed, the backup answers.
    let r = get(&p, "/b/id");
    assert_eq!((r.status, r.body_text().as_str()), (200, "spare"));
}

/// CPU ticks (user + system) a process has used, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime
    // the 13th of those.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

/// A worker waiting for a slow client's request body (and a slow upstream) sleeps in
/// epoll: it must not spin. Regression test for a send loop that busy-waited for body
/// bytes. One second of waiting may cost at most a few ticks (1 tick = 10 ms).
#[test]
fn a_worker_waiting_on_slow_peers_does_not_spin() {
    let (_t, b, p) = one_backend(
        "px-nospin",
        r#"
upstream be { server 127.0.0.1:@A@; keepalive 4; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
}
"#,
    );
    let worker = p.the_worker();
    // A chunked upload whose body does not come yet, and a request the upstream answers
    // only after 2 s.
    let base = b.stats().1;
    let mut slow_body = connect(&p);
    slow_body
        .write_all(
            b"POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        )
        .expect("send");
    let mut slow_answer = connect(&p);
    slow_answer
        .write_all(b"GET /delay?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    // Once the delayed request is at the backend (its /stats counts it: 1 + this probe),
    // both are waiting; measure one quiet second.
    let mut probes = 0;
    assert!(
        wait_until(Duration::from_secs(20), || {
            probes += 1;
            b.stats().1 > base + probes
        }),
        "the delayed request never reached the backend"
    );
    let before = cpu_ticks(worker);
    let start = Instant::now();
    assert!(!wait_until(Duration::from_secs(1), || false));
    let used = cpu_ticks(worker) - before;
    assert!(
        used <= 10,
        "the worker used {used} ticks in {:?} while only waiting",
        start.elapsed()
    );
    // Both requests still complete.
    slow_body.write_all(b"0\r\n\r\n").expect("finish body");
    let mut buf = Vec::new();
    assert!(read_head(&mut slow_body, &mut buf).is_ok(), "{}", p.logs());
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    let mut buf = Vec::new();
    assert!(
        read_head(&mut slow_answer, &mut buf).is_ok(),
        "{}",
        p.logs()
    );
}

/// `read`, again when a signal interrupted it (EINTR is not an error of the server's).
fn read_retrying(s: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A client that stops reading a proxied response: after send_timeout the proxy says so
/// (not "upstream timed out"), logs the request and closes both connections.
#[test]
fn a_client_that_stops_reading_times_out_on_send_timeout() {
    let (t, _b, p) = one_backend(
        "px-sendto",
        r#"
upstream be { server 127.0.0.1:@A@; }
server {
    listen 127.0.0.1:{port};
    access_log {dir}/logs/access.log;
    send_timeout 1s;
    location / { proxy_pass http://be; }
}
"#,
    );
    let mut s = connect(&p);
    s.write_all(b"GET /big?bytes=200000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    assert!(
        wait_until(Duration::from_secs(20), || error_log(&t).contains(
            "client timed out (110: send_timeout) while sending response to client"
        )),
        "no send_timeout line:\n{}",
        error_log(&t)
    );
    assert!(
        !error_log(&t).contains("upstream timed out"),
        "{}",
        error_log(&t)
    );
    let access = t.path().join("logs/access.log");
    assert!(
        wait_until(Duration::from_secs(20), || std::fs::read_to_string(&access)
            .unwrap_or_default()
            .contains("\"GET /big?bytes=200000000 HTTP/1.1\" 200 ")),
        "no access log line: {:?}",
        std::fs::read_to_string(&access)
    );
}

/// proxy_buffer_size bounds the upstream's response head: a head larger than it is a 502
/// ("too big header"), one that fits passes.
#[test]
fn an_upstream_head_over_proxy_buffer_size_is_a_502() {
    let (t, _b, p) = one_backend(
        "px-bighead",
        r#"
upstream be { server 127.0.0.1:@A@ max_fails=0; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://be; proxy_buffer_size 2k; }
}
"#,
    );
    let small = format!("/headers?X-Pad={}", "a".repeat(500));
    assert_eq!(get(&p, &small).status, 200);
    let big = format!("/headers?X-Pad={}", "a".repeat(3000));
    let r = get(&p, &big);
    assert_eq!(r.status, 502, "{}", p.logs());
    assert!(
        wait_until(Duration::from_secs(20), || error_log(&t)
            .contains("upstream sent too big header")),
        "{}",
        error_log(&t)
    );
}

/// proxy_send_timeout: an upstream that accepts but never reads the request body makes
/// the proxy give up with 504 once the body no longer fits in the socket buffers.
#[test]
fn proxy_send_timeout_gives_504_when_the_upstream_stops_reading() {
    let t = TempDir::new("px-sendtimeout");
    // An "upstream" that accepts and then never reads.
    let deaf = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let deaf_port = deaf.local_addr().expect("addr").port();
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    std::thread::spawn(move || {
        for s in deaf.incoming().flatten() {
            keep.lock().unwrap_or_else(|e| e.into_inner()).push(s);
        }
    });
    let http = with_ports(
        r#"
upstream deaf { server 127.0.0.1:@D@; }
server {
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    location / { proxy_pass http://deaf; proxy_send_timeout 500ms; }
}
"#,
        &[("D", deaf_port)],
    );
    let p = start(&t, &http);
    const BODY: usize = 64 * 1024 * 1024;
    let mut s = connect(&p);
    let mut reader = s.try_clone().expect("clone");
    s.write_all(
        format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY}\r\n\r\n").as_bytes(),
    )
    .expect("head");
    // The body goes out from another thread; it stalls once the deaf upstream's buffers are
    // full, until the proxy gives up and drops the rest.
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..BODY / chunk.len() {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut buf = Vec::new();
    let head = read_head(&mut reader, &mut buf).expect("a response");
    let text = String::from_utf8_lossy(&buf[..head]).to_string();
    assert!(text.starts_with("HTTP/1.1 504"), "{text}\n{}", p.logs());
    assert!(
        wait_until(Duration::from_secs(20), || error_log(&t).contains(
            "upstream timed out (110: Connection timed out) while sending request"
        )),
        "{}",
        error_log(&t)
    );
    drop(reader);
    let _ = writer.join();
}

/// `chunked_transfer_encoding off`: a chunked upstream body reaches an HTTP/1.1 client
/// decoded and delimited by the close (nginx), not chunked.
#[test]
fn chunked_transfer_encoding_off_sends_the_body_close_delimited() {
    let conf = FRAMING.replace(
        "proxy_set_header Connection \"\"; }",
        "proxy_set_header Connection \"\"; chunked_transfer_encoding off; }",
    );
    let (_t, _b, p) = one_backend("px-nochunk", &conf);
    let req = "GET /chunked?n=3&size=4 HTTP/1.1\r\nHost: x\r\n\r\n";
    let (raw, closed) = raw_exchange(p.port, req.as_bytes(), Duration::from_secs(20));
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(closed, "{text:?}\n{}", p.logs());
    let lower = text.to_ascii_lowercase();
    assert!(!lower.contains("transfer-encoding"), "{text:?}");
    assert!(lower.contains("connection: close\r\n"), "{text:?}");
    assert!(text.ends_with("\r\n\r\naaaabbbbcccc"), "{text:?}");
}

/// The URI a `proxy_pass` with a URI part sends after the URI changed, as nginx: the
/// location prefix is replaced after an internal redirect (error_page, try_files), after
/// `rewrite … last` and in a post action; a `rewrite … break` in the proxied location sends
/// the changed URI whole. Run against nginx too where it is installed.
#[test]
fn changed_uris_reach_the_upstream_as_nginx_sends_them() {
    const SERVERS: &str = r#"
    server {
        listen 127.0.0.1:{port};
        location = /ep { error_page 404 = /eprox/a; return 404; }
        location = /tf { try_files /nonexistent /eprox/b; }
        location = /rw { rewrite ^ /eprox/c last; }
        location /eprox/ { proxy_pass http://127.0.0.1:{up}/target/; }
        location /brk/ { rewrite ^/brk/(.*)$ /changed/$1 break; proxy_pass http://127.0.0.1:{up}/target/; }
    }
    server { listen 127.0.0.1:{up}; location / { return 200 "upstream got $request_uri"; } }
    "#;
    const CASES: &[(&str, &str)] = &[
        ("/ep", "upstream got /target/a"),
        ("/tf", "upstream got /target/b"),
        ("/rw", "upstream got /target/c"),
        ("/brk/x?q=1", "upstream got /changed/x?q=1"),
    ];
    let up = proton_tests::free_port();
    let servers = SERVERS.replace("{up}", &up.to_string());
    let t = TempDir::new("proxy-changed-uri");
    let proton = Proton::start(
        t.path(),
        &format!("events {{}}\nhttp {{\n{servers}\n}}\n"),
        1,
    );
    for (path, want) in CASES {
        let r = proton_tests::request(proton.port, Some("localhost"), path).expect("answer");
        assert_eq!(r.body_text(), *want, "Proton, {path}");
    }
    drop(proton);
    if let Some(bin) = proton_tests::nginx_binary() {
        let nginx =
            proton_tests::Nginx::start(&bin, |port| servers.replace("{port}", &port.to_string()));
        for (path, want) in CASES {
            let r = proton_tests::request(nginx.port(), Some("localhost"), path).expect("answer");
            assert_eq!(r.body_text(), *want, "nginx, {path}");
        }
    }
}

/// Upstream `keepalive_time`: a cached connection is reused until it is older than
/// keepalive_time; the response that finds it older closes it, and the next request opens
/// a new one (nginx 1.19.10+).
#[test]
fn upstream_keepalive_time_retires_old_connections() {
    let t = TempDir::new("px-ka-time");
    let b = Backend::start("kt");
    let http = with_ports(
        r#"
upstream kt { server 127.0.0.1:@A@; keepalive 1; keepalive_time 1s; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://kt; proxy_http_version 1.1; proxy_set_header Connection ""; }
}
"#,
        &[("A", b.port)],
    );
    let p = start(&t, &http);
    // Two requests at once: one upstream connection.
    let before = b.stats();
    assert_eq!(get(&p, "/id").body_text(), "kt");
    assert_eq!(get(&p, "/id").body_text(), "kt");
    let after = b.stats();
    assert_eq!(new_connections(before, after), 1, "{}", p.logs());
    // Requests until the backend sees a second connection: the first one was retired once
    // older than a second (with `keepalive_time 1h` it would serve them all).
    let mut sent = 0;
    let renewed = wait_until(Duration::from_secs(20), || {
        let before = b.stats();
        assert_eq!(get(&p, "/id").body_text(), "kt");
        sent += 1;
        new_connections(before, b.stats()) > 0
    });
    assert!(
        renewed,
        "{sent} requests on one upstream connection\n{}",
        p.logs()
    );
}

/// An upstream's `Upgrade` header reaches an HTTP/1.1 client in any response, as nginx
/// passes it (a 426's list of protocols, an `h2c` offer in a 200; nginx's
/// proxy_connection_headers.t); `Connection` and `Keep-Alive` still do not.
#[test]
fn upgrade_in_a_plain_response_is_passed_on() {
    let (_t, _b, p) = one_backend(
        "px-upgrade-200",
        r#"
upstream be { server 127.0.0.1:@A@; }
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://be; proxy_http_version 1.1; }
}
"#,
    );
    let r = get(&p, "/headers?Upgrade=h2c&Keep-Alive=timeout%3D5");
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(r.header("upgrade"), Some("h2c"), "{:?}", r.headers);
    assert_eq!(r.header("keep-alive"), None, "{:?}", r.headers);
}

/// A second line of a one-value field from the upstream (`Expires`, `Content-Type`, `ETag`,
/// `Location`, …) is ignored with a warning, as nginx's (proxy_duplicate_headers.t); a
/// list field (`Cache-Control`) keeps every line.
#[test]
fn duplicate_single_value_fields_keep_the_first() {
    let (t, _b, p) = one_backend("px-dup-fields", PLAIN_PROXY);
    let r = get(
        &p,
        "/headers?Expires=foo&Expires=bar&ETag=%22a%22&ETag=%22b%22&Cache-Control=no-cache&Cache-Control=private",
    );
    assert_eq!(r.status, 200, "{}", p.logs());
    let all = |name: &str| -> Vec<&str> {
        r.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(all("expires"), ["foo"], "{:?}", r.headers);
    assert_eq!(all("etag"), ["\"a\""], "{:?}", r.headers);
    assert_eq!(
        all("cache-control"),
        ["no-cache", "private"],
        "{:?}",
        r.headers
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            error_log(&t).contains(
            "upstream sent duplicate header line: \"Expires: bar\", previous value: \"Expires: foo\", ignored"
        )
        }),
        "{}",
        error_log(&t)
    );
}

/// `$body_bytes_sent` and `$bytes_sent` of a proxied response are what the client got: the
/// body alone, and head and body (they once took the head off twice, logging `0` for short
/// bodies).
#[test]
fn proxied_responses_log_the_bytes_the_client_got() {
    let t = TempDir::new("proxy-bytes-sent");
    let b = Backend::start("b1");
    let http = with_ports(
        r#"
log_format bytes '$request_uri $status $body_bytes_sent $bytes_sent';
upstream be { server 127.0.0.1:@A@; }
server {
    listen 127.0.0.1:{port};
    access_log {dir}/logs/bytes.log bytes;
    location / { proxy_pass http://be; }
}
"#,
        &[("A", b.port)],
    );
    let p = start(&t, &http);
    let mut got = Vec::new();
    for path in ["/id", "/echo"] {
        let (raw, _) = raw_exchange(
            p.port,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            Duration::from_secs(20),
        );
        let head = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| i + 4)
            .expect("a head");
        assert!(raw.len() > head, "{path}: no body: {}", p.logs());
        got.push(format!("{path} 200 {} {}", raw.len() - head, raw.len()));
    }
    let log_path = t.path().join("logs/bytes.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(20), || log().lines().count() >= 2),
        "{}",
        log()
    );
    assert_eq!(log().lines().collect::<Vec<_>>(), got, "{}", p.logs());
}

/// An upstream's 101 to a request that did not ask to switch: as nginx, the client gets
/// that head without a body, no tunnel, and the connection closes (proxy_upgrade.t's
/// "log - bytes noupgrade").
#[test]
fn an_unasked_101_is_passed_on_without_a_tunnel() {
    let (_t, _b, p) = one_backend("px-101", PLAIN_PROXY);
    let (raw, closed) = raw_exchange(
        p.port,
        b"GET /status?code=101 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\r\n",
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "no body: {text}");
    assert!(closed, "the connection closes");
}
