//! `proxy_limit_rate`, `proxy_bind`, `proxy_ignore_client_abort`, `proxy_ignore_headers` and
//! `proxy_force_ranges`, as nginx 1.22, over real sockets: a backend that answers by path
//! (and reports the address a connection came from), clients that measure only what has
//! arrived at each moment or what was logged, never how long anything took.

use proton_tests::{
    nginx_binary, raw_exchange, request, wait_until, Nginx, Proton, Response, TempDir,
};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The body of `/big`.
const BIG: usize = 96 * 1024;

fn big_byte(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

/// Reads a request head from `s` (None when the peer closed first).
fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// What the backend answers for the path of request line `line`, from peer `peer`.
fn answer(line: &str, peer: SocketAddr) -> Vec<u8> {
    let path = line.split(' ').nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    let plain = |extra: &str, body: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    match path {
        // The address the proxy connected from.
        "/peer" => plain("", &peer.to_string()),
        "/big" => {
            let mut r =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\nConnection: close\r\n\r\n")
                    .into_bytes();
            r.extend((0..BIG).map(big_byte));
            r
        }
        "/xa" => plain("X-Accel-Limit-Rate: 1234\r\n", "xa"),
        "/xab" => plain("X-Accel-Limit-Rate: 1234\r\nX-Accel-Buffering: no\r\n", "xab"),
        "/ranges" => plain(
            "Accept-Ranges: none\r\nETag: \"abc\"\r\nLast-Modified: Mon, 28 Sep 1970 06:00:00 GMT\r\nX-Up: 1\r\n",
            "0123456789",
        ),
        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\na\r\n0123456789\r\n0\r\n\r\n".to_vec(),
        "/missing" => b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789".to_vec(),
        _ => plain("", "other"),
    }
}

/// A backend answering each connection's request by its path, then closing.
fn backend() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let peer = s.peer_addr().expect("peer");
                if let Some(head) = read_head(&mut s) {
                    let line = head.lines().next().unwrap_or("").to_string();
                    let _ = s.write_all(&answer(&line, peer));
                }
            });
        }
    });
    port
}

fn conf(locations: &str) -> String {
    format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\n log_format l '$request_uri $status $upstream_status $limit_rate';\n access_log {{dir}}/logs/access.log l;\n server {{\n  listen 127.0.0.1:{{port}};\n{locations}\n }}\n}}\n"
    )
}

fn access_log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("logs/access.log")).unwrap_or_default()
}

fn start(t: &TempDir, locations: &str) -> Proton {
    Proton::start(t.path(), &conf(locations), 1)
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Fetches `path` over HTTP/1.0, sampling (seconds since the request was sent, body bytes
/// received so far).
fn fetch(port: u16, path: &str) -> (Vec<u8>, Vec<(f64, usize)>) {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let start = Instant::now();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: limits.test\r\n\r\n").as_bytes())
        .expect("write");
    let mut got = Vec::new();
    let mut samples = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                let head = got
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(got.len(), |i| i + 4);
                samples.push((start.elapsed().as_secs_f64(), got.len() - head));
            }
        }
    }
    (got, samples)
}

fn body(raw: &[u8]) -> &[u8] {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |i| i + 4);
    &raw[at..]
}

#[test]
fn proxy_limit_rate_bounds_what_is_read_from_the_upstream() {
    let t = TempDir::new("proxy-limit-rate");
    let bp = backend();
    let p = start(
        &t,
        &format!(
            "  location /limited {{ proxy_limit_rate 32k; proxy_buffer_size 4k; proxy_pass http://127.0.0.1:{bp}/big; }}\n  location /unbuffered {{ proxy_limit_rate 32k; proxy_buffering off; proxy_pass http://127.0.0.1:{bp}/big; }}"
        ),
    );
    let want: Vec<u8> = (0..BIG).map(big_byte).collect();
    // 96 KiB read at 32 KiB/s: what the client has is what the proxy read, never more than
    // the rate allows since the request (plus what came with the head, at most the 4k
    // buffer). Unlimited, it would all be there at the first read.
    let (raw, samples) = fetch(p.port, "/limited");
    assert_eq!(body(&raw), &want[..], "{}", p.logs());
    for &(t, n) in &samples {
        let allowed = 32768.0 * (t + 1.0) + 4096.0;
        assert!(
            n as f64 <= allowed,
            "{n} bytes after {t:.3} s, more than {allowed} (samples {samples:?})"
        );
    }
    // As nginx 1.22, the limit is for buffered responses: without buffering the response
    // still arrives whole (its pace is not asserted).
    let (raw, _) = fetch(p.port, "/unbuffered");
    assert_eq!(body(&raw), &want[..], "{}", p.logs());
}

#[test]
fn proxy_bind_sets_the_local_address_of_upstream_connections() {
    let t = TempDir::new("proxy-bind");
    let bp = backend();
    let p = start(
        &t,
        &format!(
            "  proxy_bind 127.0.0.2;\n  location /lit {{ proxy_bind 127.0.0.3; proxy_pass http://127.0.0.1:{bp}/peer; }}\n  location /inherit {{ proxy_pass http://127.0.0.1:{bp}/peer; }}\n  location /off {{ proxy_bind off; proxy_pass http://127.0.0.1:{bp}/peer; }}\n  location /var {{ proxy_bind $arg_b; proxy_pass http://127.0.0.1:{bp}/peer; }}\n  location /port {{ proxy_bind 127.0.0.4:$remote_port; proxy_pass http://127.0.0.1:{bp}/peer; add_header X-Client-Port $remote_port; }}\n  location /nonlocal {{ proxy_bind 192.0.2.1; proxy_pass http://127.0.0.1:{bp}/peer; }}"
        ),
    );
    let peer = |path: &str| {
        let r = request(p.port, Some("limits.test"), path).expect("request");
        assert_eq!(r.status, 200, "{path}: {}", p.logs());
        let a: SocketAddr = r.body_text().parse().expect("an address");
        (a, r)
    };
    assert_eq!(peer("/lit").0.ip().to_string(), "127.0.0.3");
    assert_eq!(peer("/inherit").0.ip().to_string(), "127.0.0.2");
    assert_eq!(peer("/off").0.ip().to_string(), "127.0.0.1");
    assert_eq!(peer("/var?b=127.0.0.5").0.ip().to_string(), "127.0.0.5");
    // An empty value binds nothing; one that is no address is logged and binds nothing.
    assert_eq!(peer("/var").0.ip().to_string(), "127.0.0.1");
    assert_eq!(peer("/var?b=nowhere").0.ip().to_string(), "127.0.0.1");
    assert!(
        wait_until(Duration::from_secs(10), || p
            .logs()
            .contains("invalid local address \"nowhere\"")),
        "{}",
        p.logs()
    );
    // With a port: the client's own port.
    let (a, r) = peer("/port");
    assert_eq!(a.ip().to_string(), "127.0.0.4");
    assert_eq!(
        Some(a.port().to_string().as_str()),
        r.header("x-client-port")
    );
    // An address of no interface here: bind fails before any connect, 500 (as nginx).
    let r = request(p.port, Some("limits.test"), "/nonlocal").expect("request");
    assert_eq!(r.status, 500);
    assert!(
        wait_until(Duration::from_secs(10), || {
            p.logs().contains(
            "[crit]"
        ) && p
            .logs()
            .contains("bind(192.0.2.1) failed (99: Cannot assign requested address) while connecting to upstream")
        }),
        "{}",
        p.logs()
    );
}

#[test]
fn proxy_bind_transparent_needs_the_privilege() {
    let t = TempDir::new("proxy-bind-transparent");
    let bp = backend();
    let root = is_root();
    let loc = format!(
        "  location / {{ proxy_bind 127.0.0.2 transparent; proxy_pass http://127.0.0.1:{bp}/peer; }}"
    );
    // As root the worker may set IP_TRANSPARENT.
    let p = start(&t, &loc);
    let r = request(p.port, Some("limits.test"), "/").expect("request");
    if root {
        assert_eq!(r.status, 200, "{}", p.logs());
        assert!(r.body_text().starts_with("127.0.0.2:"), "{}", r.body_text());
    }
    drop(p);
    // A worker without the privilege (root's workers as nobody, or not root at all): the
    // setsockopt fails, which the log says with the way out, and the answer is 500.
    let t2 = TempDir::new("proxy-bind-transparent-user");
    let user = if root { "user nobody nogroup;\n" } else { "" };
    let _ = std::fs::set_permissions(
        t2.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    );
    let p = Proton::start(t2.path(), &format!("{user}{}", conf(&loc)), 1);
    let r = request(p.port, Some("limits.test"), "/").expect("request");
    assert_eq!(r.status, 500, "{}", p.logs());
    assert!(
        wait_until(Duration::from_secs(10), || {
            p.logs().contains(
            "setsockopt(IP_TRANSPARENT) failed (1: Operation not permitted) (proxy_bind transparent needs CAP_NET_ADMIN)"
        )
        }),
        "{}",
        p.logs()
    );
}

/// A backend for the client-abort test: answers once `go` says so.
fn abort_backend() -> (u16, mpsc::Sender<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Arc::new(std::sync::Mutex::new(go_rx));
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let go_rx = go_rx.clone();
            std::thread::spawn(move || {
                if read_head(&mut s).is_none() {
                    return;
                }
                // The answer waits for the test (at most 20 s).
                let _ = go_rx
                    .lock()
                    .expect("go")
                    .recv_timeout(Duration::from_secs(20));
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nkept",
                );
            });
        }
    });
    (port, go_tx)
}

#[test]
fn proxy_ignore_client_abort_keeps_the_upstream_request() {
    let t = TempDir::new("proxy-ignore-client-abort");
    let (bp, go) = abort_backend();
    let p = start(
        &t,
        &format!(
            "  location /kept {{ proxy_ignore_client_abort on; proxy_pass http://127.0.0.1:{bp}; }}\n  location /dropped {{ proxy_pass http://127.0.0.1:{bp}; }}"
        ),
    );
    let send_and_close = |path: &str| {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: limits.test\r\n\r\n").as_bytes())
            .expect("write");
        drop(s);
    };
    // Both clients leave before any answer. The one without the directive ends its
    // request (499 logged, the upstream connection closed). The proxy handles events in
    // order, so by then it has seen the first client leave too: yet that request goes on,
    // and the answer the backend gives only now is read and logged with its status.
    send_and_close("/kept");
    send_and_close("/dropped");
    assert!(
        wait_until(Duration::from_secs(20), || access_log(t.path())
            .contains("/dropped 499")),
        "{}\n{}",
        access_log(t.path()),
        p.logs()
    );
    go.send(()).expect("go");
    go.send(()).expect("go");
    assert!(
        wait_until(Duration::from_secs(20), || access_log(t.path())
            .contains("/kept 200 200")),
        "{}\n{}",
        access_log(t.path()),
        p.logs()
    );
}

#[test]
fn proxy_ignore_headers_drops_the_effect_of_x_accel_headers() {
    let t = TempDir::new("proxy-ignore-headers");
    let bp = backend();
    let locations = |port: u16| {
        format!(
            "  add_header X-Rate $limit_rate;\n  location /xa {{ proxy_pass http://127.0.0.1:{port}/xa; }}\n  location /xa-ignored {{ proxy_ignore_headers X-Accel-Limit-Rate; proxy_pass http://127.0.0.1:{port}/xa; }}\n  location /xab {{ proxy_pass http://127.0.0.1:{port}/xab; }}\n  location /xab-ignored {{ proxy_ignore_headers x-accel-buffering Expires; proxy_pass http://127.0.0.1:{port}/xab; }}"
        )
    };
    let p = start(&t, &locations(bp));
    // X-Accel-Limit-Rate sets the response's rate (`$limit_rate`, seen by add_header)
    // unless ignored. X-Accel-Buffering: no makes the response unbuffered, which nginx 1.22
    // sends with no rate at all once its head is made (the access log's `$limit_rate`),
    // unless ignored. The headers themselves never reach the client.
    let cases = [
        ("/xa", "1234", "1234"),
        ("/xa-ignored", "0", "0"),
        ("/xab", "1234", "0"),
        ("/xab-ignored", "1234", "1234"),
    ];
    for (path, header, logged) in cases {
        let r = request(p.port, Some("limits.test"), path).expect("request");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("x-rate"), Some(header), "{path}");
        assert_eq!(r.header("x-accel-limit-rate"), None, "{path}");
        assert_eq!(r.header("x-accel-buffering"), None, "{path}");
        let line = format!("{path} 200 200 {logged}\n");
        assert!(
            wait_until(Duration::from_secs(10), || access_log(t.path())
                .contains(&line)),
            "{line:?} not in {}",
            access_log(t.path())
        );
    }
    // nginx gives the same answers.
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| {
        format!(
            "server {{\n listen 127.0.0.1:{port};\n{}\n}}\n",
            locations(bp)
        )
    });
    for (path, ..) in cases {
        let ours = request(p.port, Some("limits.test"), path).expect("request");
        let theirs = request(n.port(), Some("limits.test"), path).expect("request");
        assert_eq!(ours.header("x-rate"), theirs.header("x-rate"), "{path}");
    }
}

/// (path, request headers, method, status, body, Content-Range, Accept-Ranges)
type RangeCase<'a> = (
    &'a str,
    String,
    &'a str,
    u16,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
);

fn ranged(port: u16, path: &str, headers: &str, method: &str) -> Response {
    let (raw, _) = raw_exchange(
        port,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: limits.test\r\nConnection: close\r\n{headers}\r\n"
        )
        .as_bytes(),
        Duration::from_secs(10),
    );
    // A HEAD answer has the head only (with the Content-Length a GET would get).
    let raw = if method == "HEAD" {
        let text = String::from_utf8_lossy(&raw).replace("Content-Length: ", "X-Length: ");
        text.into_bytes()
    } else {
        raw
    };
    proton_tests::parse_response(&raw).unwrap_or_else(|e| {
        panic!(
            "{method} {path} {headers:?}: {e}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

#[test]
fn proxy_force_ranges_serves_one_range_of_a_known_length() {
    let t = TempDir::new("proxy-force-ranges");
    let bp = backend();
    let locations = |port: u16| {
        format!(
            "  location / {{ proxy_force_ranges on; proxy_pass http://127.0.0.1:{port}; }}\n  location /nb/ {{ proxy_force_ranges on; proxy_buffering off; proxy_pass http://127.0.0.1:{port}/; }}\n  location /plain/ {{ proxy_pass http://127.0.0.1:{port}/; }}"
        )
    };
    let p = start(&t, &locations(bp));
    let lm = "Mon, 28 Sep 1970 06:00:00 GMT";
    let cases: Vec<RangeCase> = vec![
        (
            "/ranges",
            "Range: bytes=2-4\r\n".into(),
            "GET",
            206,
            "234",
            Some("bytes 2-4/10"),
            None,
        ),
        (
            "/ranges",
            "Range: bytes=-3\r\n".into(),
            "GET",
            206,
            "789",
            Some("bytes 7-9/10"),
            None,
        ),
        (
            "/nb/ranges",
            "Range: bytes=2-4\r\n".into(),
            "GET",
            206,
            "234",
            Some("bytes 2-4/10"),
            None,
        ),
        // Several ranges: the whole response (one range only, as nginx's proxy).
        (
            "/ranges",
            "Range: bytes=2-4,6-7\r\n".into(),
            "GET",
            200,
            "0123456789",
            None,
            Some("bytes"),
        ),
        // Without Range: the upstream's Accept-Ranges: none is replaced.
        (
            "/ranges",
            String::new(),
            "GET",
            200,
            "0123456789",
            None,
            Some("bytes"),
        ),
        (
            "/ranges",
            "Range: bytes=20-\r\n".into(),
            "GET",
            416,
            "",
            Some("bytes */10"),
            None,
        ),
        (
            "/ranges",
            "Range: bytes=2-4\r\nIf-Range: \"abc\"\r\n".into(),
            "GET",
            206,
            "234",
            Some("bytes 2-4/10"),
            None,
        ),
        (
            "/ranges",
            "Range: bytes=2-4\r\nIf-Range: \"abd\"\r\n".into(),
            "GET",
            200,
            "0123456789",
            None,
            Some("bytes"),
        ),
        (
            "/ranges",
            format!("Range: bytes=2-4\r\nIf-Range: {lm}\r\n"),
            "GET",
            206,
            "234",
            Some("bytes 2-4/10"),
            None,
        ),
        (
            "/ranges",
            "Range: bytes=2-4\r\n".into(),
            "HEAD",
            206,
            "",
            Some("bytes 2-4/10"),
            None,
        ),
        // Unknown length, or not a 200: untouched.
        (
            "/chunked",
            "Range: bytes=2-4\r\n".into(),
            "GET",
            200,
            "0123456789",
            None,
            None,
        ),
        (
            "/missing",
            "Range: bytes=2-4\r\n".into(),
            "GET",
            404,
            "0123456789",
            None,
            None,
        ),
        // Without the directive: the upstream's own Accept-Ranges, no range served.
        (
            "/plain/ranges",
            "Range: bytes=2-4\r\n".into(),
            "GET",
            200,
            "0123456789",
            None,
            Some("none"),
        ),
    ];
    for (path, headers, method, status, want, content_range, accept) in &cases {
        let r = ranged(p.port, path, headers, method);
        let what = format!("{method} {path} {headers:?}");
        assert_eq!(r.status, *status, "{what}: {}", p.logs());
        if *status != 416 {
            assert_eq!(r.body_text(), *want, "{what}");
        } else {
            assert!(
                r.body_text()
                    .contains("416 Requested Range Not Satisfiable"),
                "{what}"
            );
        }
        assert_eq!(r.header("content-range"), *content_range, "{what}");
        assert_eq!(r.header("accept-ranges"), *accept, "{what}");
        if *status == 206 {
            let length = r.header("content-length").or(r.header("x-length"));
            assert_eq!(length, Some("3"), "{what}");
        }
    }
    // nginx answers each the same.
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| {
        format!(
            "server {{\n listen 127.0.0.1:{port};\n{}\n}}\n",
            locations(bp)
        )
    });
    for (path, headers, method, ..) in &cases {
        let ours = ranged(p.port, path, headers, method);
        let theirs = ranged(n.port(), path, headers, method);
        let what = format!("{method} {path} {headers:?}");
        assert_eq!(ours.status, theirs.status, "{what}");
        assert_eq!(
            ours.header("content-range"),
            theirs.header("content-range"),
            "{what}"
        );
        assert_eq!(
            ours.header("accept-ranges"),
            theirs.header("accept-ranges"),
            "{what}"
        );
        assert_eq!(
            ours.header("content-length"),
            theirs.header("content-length"),
            "{what}"
        );
        assert_eq!(ours.header("x-length"), theirs.header("x-length"), "{what}");
        // The same header lines (a 416 keeps the upstream's, but for those of its body).
        let names = |r: &proton_tests::Response| {
            let mut v: Vec<String> = r
                .headers
                .iter()
                .map(|(n, _)| n.to_ascii_lowercase())
                .filter(|n| n != "server" && n != "date")
                .collect();
            v.sort();
            v
        };
        assert_eq!(names(&ours), names(&theirs), "{what}");
        if ours.status != 416 {
            assert_eq!(ours.body_text(), theirs.body_text(), "{what}");
        }
    }
}
