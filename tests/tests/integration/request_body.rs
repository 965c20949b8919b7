//! Request bodies through the proxy, nginx's way (issue 15): with `proxy_request_buffering
//! on` (the default) the whole body is read first, into memory up to
//! `client_body_buffer_size`, beyond that into a temporary file under
//! `client_body_temp_path`, and only then is an upstream chosen; a retry sends it again; a
//! chunked body goes with a Content-Length; `$request_body`, `$request_body_file` and
//! `$content_length` see it. Real `proton-run` in front of real `proton-testbackend`s.

use proton_tests::{parse_response, raw_exchange, wait_until, Backend, Proton, Response, TempDir};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A whole config around an `http { }` body: one worker, an `info` error log.
pub(super) fn conf(http: &str) -> String {
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

pub(super) fn error_log(t: &TempDir) -> String {
    std::fs::read_to_string(t.path().join("logs/error.log")).unwrap_or_default()
}

fn connect(p: &Proton) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", p.port)).expect("connect to proton");
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = s.set_nodelay(true);
    s
}

/// Sends `raw` on a new connection and parses the answer (read until the server closes).
pub(super) fn send(p: &Proton, raw: &[u8]) -> Response {
    let (out, _) = raw_exchange(p.port, raw, Duration::from_secs(20));
    parse_response(&out).unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}\n{}",
            String::from_utf8_lossy(&out[..out.len().min(2000)]),
            p.logs()
        )
    })
}

/// `METHOD path` with a Content-Length body and `Connection: close`.
fn with_body(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// The backend's `/echo` dump: header lines (lowercase names) and the body.
struct Echo {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Echo {
    fn of(r: &Response) -> Echo {
        let at = r
            .body
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap_or_else(|| panic!("not an echo: {:?}", r.body_text()));
        let head = String::from_utf8_lossy(&r.body[..at]).into_owned();
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
            .collect();
        Echo {
            headers,
            body: r.body[at + 2..].to_vec(),
        }
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A body of `n` bytes that shows where a byte went missing.
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz"[i % 36])
        .collect()
}

/// New connections the backend accepted between two `stats()` (its own `/stats` request
/// counts one).
fn new_connections(before: (u64, u64), after: (u64, u64)) -> u64 {
    after.0.saturating_sub(before.0).saturating_sub(1)
}

/// Proton and the backend have seen everything sent so far on other connections: a
/// request through the same single worker is answered after them.
fn round_trip(p: &Proton) {
    let r = send(
        p,
        b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", p.logs());
}

/// A slow client: with buffering on, the upstream is not connected to before the last
/// body byte arrived (a slow upload costs the backend nothing, as nginx); with
/// `proxy_request_buffering off` the body streams and the upstream is connected at once.
#[test]
fn a_slow_body_reaches_no_upstream_until_it_is_whole() {
    let t = TempDir::new("rb-slow");
    let b = Backend::start("b1");
    let http = r#"
server {
    listen 127.0.0.1:{port};
    location / { proxy_pass http://127.0.0.1:@A@; }
    location /off/ { proxy_pass http://127.0.0.1:@A@/; proxy_request_buffering off; }
    location = /ping { return 200 "pong"; }
}
"#
    .replace("@A@", &b.port.to_string());
    let p = Proton::start(t.path(), &conf(&http), 1);
    let body = pattern(20_000);

    for (path, streams) in [("/echo", false), ("/off/echo", true)] {
        let before = b.stats();
        let mut s = connect(&p);
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("head");
        s.write_all(&body[..5_000]).expect("first part");
        round_trip(&p);
        if streams {
            assert!(
                b.wait_new_connection(before, Duration::from_secs(10)),
                "{path}: the body should stream: no upstream connection\n{}",
                p.logs()
            );
        } else {
            // A second part, still not all of it: still nothing upstream.
            s.write_all(&body[5_000..15_000]).expect("second part");
            round_trip(&p);
            assert_eq!(
                new_connections(before, b.stats()),
                0,
                "{path}: an upstream was connected before the body was whole\n{}",
                p.logs()
            );
        }
        let sent = if streams { 5_000 } else { 15_000 };
        s.write_all(&body[sent..]).expect("rest");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let r = parse_response(&raw).unwrap_or_else(|e| panic!("{path}: {e}\n{}", p.logs()));
        assert_eq!(r.status, 200, "{path}\n{}", p.logs());
        let e = Echo::of(&r);
        assert!(e.body == body, "{path}: the body arrived changed");
        assert_eq!(e.all("content-length"), ["20000"], "{path}");
    }
}

/// A server that accepts, reads a little of the request and closes the connection with a
/// reset: an upstream `error` after part of the request went out. Counts its connections.
fn resetting_server() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 100];
            let _ = s.read(&mut buf);
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            drop(s);
        }
    });
    (port, count)
}

/// A retry sends the body again from the buffer: in memory and from the temporary file
/// (also past the 64 KiB that used to be kept for a replay), intact every time.
#[test]
fn a_retry_sends_the_buffered_body_again() {
    let t = TempDir::new("rb-retry");
    let b = Backend::start("b2");
    let (reset_port, resets) = resetting_server();
    let http = r#"
upstream u { server 127.0.0.1:@R@ max_fails=0; server 127.0.0.1:@A@ max_fails=0; }
server {
    listen 127.0.0.1:{port};
    client_max_body_size 10m;
    client_body_temp_path {dir}/tmp 1 2;
    location / { proxy_pass http://u; proxy_next_upstream error timeout non_idempotent; }
}
"#
    .replace("@A@", &b.port.to_string())
    .replace("@R@", &reset_port.to_string());
    let p = Proton::start(t.path(), &conf(&http), 1);
    for size in [1_000, 100_000, 1_500_000] {
        let body = pattern(size);
        for _ in 0..2 {
            let r = send(&p, &with_body("POST", "/echo", &body));
            assert_eq!(r.status, 200, "{size}: {}", p.logs());
            let e = Echo::of(&r);
            assert_eq!(e.body.len(), size, "{size}");
            assert!(e.body == body, "{size}: the body arrived changed");
        }
    }
    // Round robin over two servers: each size met the resetting one.
    assert!(resets.load(Ordering::SeqCst) >= 3, "{}", p.logs());
    // The temporary files were unlinked once opened: nothing is left.
    assert!(proton_tests::files_under(&t.path().join("tmp")).is_empty());
}

/// A chunked body read whole reaches the upstream de-chunked with a Content-Length (HTTP/1.1
/// upstream too), in memory and from a temporary file; `$content_length` is its length.
#[test]
fn a_chunked_body_goes_with_a_content_length() {
    let t = TempDir::new("rb-chunked");
    let b = Backend::start("b3");
    let http = r#"
server {
    listen 127.0.0.1:{port};
    client_max_body_size 1m;
    location / {
        proxy_pass http://127.0.0.1:@A@;
        proxy_http_version 1.1;
        add_header X-CL "$content_length";
    }
}
"#
    .replace("@A@", &b.port.to_string());
    let p = Proton::start(t.path(), &conf(&http), 1);
    for size in [10, 300_000] {
        let body = pattern(size);
        let mut raw = b"PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                        Connection: close\r\n\r\n"
            .to_vec();
        for piece in body.chunks(7_000) {
            raw.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
            raw.extend_from_slice(piece);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
        let r = send(&p, &raw);
        assert_eq!(r.status, 200, "{size}: {}", p.logs());
        assert_eq!(r.header("x-cl"), Some(size.to_string().as_str()), "{size}");
        let e = Echo::of(&r);
        assert_eq!(e.all("content-length"), [size.to_string().as_str()]);
        assert!(e.all("transfer-encoding").is_empty());
        assert!(e.body == body, "{size}: the body arrived changed");
    }
    // Over client_max_body_size: 413, the upstream is not asked.
    let before = b.stats();
    let mut raw = b"PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(format!("{:x}\r\n", 2 << 20).as_bytes());
    raw.extend_from_slice(&pattern(1000));
    let r = send(&p, &raw);
    assert_eq!(r.status, 413, "{}", p.logs());
    assert_eq!(new_connections(before, b.stats()), 0);
}

/// A body larger than client_body_buffer_size goes to a temporary file under
/// client_body_temp_path (with its levels), named by `$request_body_file`, and no file is
/// left: after the request, and after a client that gives up in the middle of its body.
/// `client_body_in_file_only on` keeps the file; `clean` removes it after the request.
#[test]
fn temporary_files_are_where_configured_and_removed() {
    let t = TempDir::new("rb-files");
    let b = Backend::start("b4");
    let http = r#"
server {
    listen 127.0.0.1:{port};
    client_body_buffer_size 1k;
    client_body_temp_path {dir}/cbt 1 2;
    add_header X-Body-File "$request_body_file";
    add_header X-Body "$request_body";
    location / { proxy_pass http://127.0.0.1:@A@; }
    location /keep/ { proxy_pass http://127.0.0.1:@A@/; client_body_in_file_only on; }
    location /clean/ { proxy_pass http://127.0.0.1:@A@/; client_body_in_file_only clean; }
    location = /ping { return 200 "pong"; }
}
"#
    .replace("@A@", &b.port.to_string());
    let p = Proton::start(t.path(), &conf(&http), 1);
    let cbt = t.path().join("cbt");

    // Small: in memory, no file.
    let r = send(&p, &with_body("POST", "/echo", b"0123456789"));
    assert_eq!(r.header("x-body"), Some("0123456789"));
    assert_eq!(r.header("x-body-file"), None);

    // Large: a file under cbt/D/DD/, unlinked at once; `$request_body` is then empty.
    let body = pattern(5_000);
    let r = send(&p, &with_body("POST", "/echo", &body));
    assert_eq!(r.status, 200, "{}", p.logs());
    assert!(Echo::of(&r).body == body);
    assert_eq!(r.header("x-body"), None);
    let name = r
        .header("x-body-file")
        .expect("$request_body_file")
        .to_string();
    let rel = Path::new(&name)
        .strip_prefix(&cbt)
        .unwrap_or_else(|_| panic!("{name} is not under {}", cbt.display()));
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    assert_eq!(parts.len(), 3, "{name}");
    assert_eq!((parts[0].len(), parts[1].len(), parts[2].len()), (1, 2, 10));
    assert!(
        parts[2].ends_with(&format!("{}{}", parts[1], parts[0])),
        "{name}"
    );
    assert!(
        proton_tests::files_under(&cbt).is_empty(),
        "{:?}",
        proton_tests::files_under(&cbt)
    );
    assert!(error_log(&t).contains("a client request body is buffered to a temporary file"));

    // client_body_in_file_only on: kept, with the body in it (even a small one).
    let r = send(&p, &with_body("POST", "/keep/echo", b"keep me"));
    let kept = r.header("x-body-file").expect("a file").to_string();
    assert_eq!(std::fs::read(&kept).ok().as_deref(), Some(&b"keep me"[..]));
    assert_eq!(r.header("x-body"), None);
    std::fs::remove_file(&kept).expect("remove the kept file");

    // clean: named on disk while the body is read, gone after the request.
    let r = send(&p, &with_body("POST", "/clean/echo", &body));
    assert!(Echo::of(&r).body == body);
    let name = r.header("x-body-file").expect("a file").to_string();
    assert!(
        wait_until(Duration::from_secs(10), || !Path::new(&name).exists()),
        "{name} is left after the request"
    );

    // A client that gives up half-way: its file goes too.
    let mut s = connect(&p);
    let head = "POST /clean/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&pattern(3_000)).expect("part");
    assert!(
        wait_until(Duration::from_secs(10), || !proton_tests::files_under(&cbt)
            .is_empty()),
        "no temporary file while the body arrives\n{}",
        p.logs()
    );
    drop(s);
    round_trip(&p);
    assert!(
        wait_until(Duration::from_secs(10), || proton_tests::files_under(&cbt)
            .is_empty()),
        "a temporary file is left after the client went away: {:?}",
        proton_tests::files_under(&cbt)
    );
}

/// `$request_body` in `log_format`, `add_header` and a `return` reached through an error
/// page after the proxy read the body; a plain `return` reads no body (empty, as nginx).
/// `$request_length` counts the head and the body bytes read, as received (chunk framing
/// included), as nginx's.
#[test]
fn request_body_variable_everywhere() {
    let t = TempDir::new("rb-var");
    let b = Backend::start("b5");
    let http = r#"
log_format bodies "body=[$request_body] cl=$content_length rl=$request_length";
server {
    listen 127.0.0.1:{port};
    access_log {dir}/logs/bodies.log bodies;
    location / {
        proxy_pass http://127.0.0.1:@A@;
        add_header X-Body $request_body;
    }
    location = /err {
        proxy_pass http://127.0.0.1:@A@/status?code=404;
        proxy_intercept_errors on;
        error_page 404 = /show;
    }
    location = /show { return 200 "shown=[$request_body]"; }
    location = /ret { return 200 "ret=[$request_body]"; }
}
"#
    .replace("@A@", &b.port.to_string());
    let p = Proton::start(t.path(), &conf(&http), 1);

    let first = with_body("POST", "/echo", b"hello body");
    let r = send(&p, &first);
    assert_eq!(r.header("x-body"), Some("hello body"), "{}", p.logs());
    let second = with_body("POST", "/err", b"kept for the page");
    let r = send(&p, &second);
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "shown=[kept for the page]"),
        "{}",
        p.logs()
    );
    let third = with_body("POST", "/ret", b"not read");
    let r = send(&p, &third);
    assert_eq!(r.body_text(), "ret=[]");
    let chunked = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n3;e=1\r\nabc\r\n0\r\n\r\n";
    let r = send(&p, chunked);
    assert_eq!(r.header("x-body"), Some("helloabc"), "{}", p.logs());

    let log = t.path().join("logs/bodies.log");
    let mut text = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines().count() >= 4
        }),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("body=[hello body] cl=10 rl={}", first.len())
    );
    assert_eq!(
        lines[1],
        format!("body=[kept for the page] cl=17 rl={}", second.len())
    );
    // Not read: empty, logged as `-` (nginx); only the head counts.
    assert_eq!(lines[2], format!("body=[-] cl=8 rl={}", third.len() - 8));
    assert_eq!(
        lines[3],
        format!("body=[helloabc] cl=8 rl={}", chunked.len())
    );
}

/// client_body_timeout while the body is read whole: as nginx, no answer, the connection
/// is closed and the request logged with 408; the upstream is never connected to.
#[test]
fn a_stalled_body_times_out_with_408() {
    let t = TempDir::new("rb-timeout");
    let b = Backend::start("b6");
    let http = r#"
log_format st "$request $status";
server {
    listen 127.0.0.1:{port};
    access_log {dir}/logs/st.log st;
    client_body_timeout 300ms;
    location / { proxy_pass http://127.0.0.1:@A@; }
}
"#
    .replace("@A@", &b.port.to_string());
    let p = Proton::start(t.path(), &conf(&http), 1);
    let before = b.stats();
    let mut s = connect(&p);
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        .expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert!(raw.is_empty(), "{:?}", String::from_utf8_lossy(&raw));
    let log = t.path().join("logs/st.log");
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&log).unwrap_or_default() == "POST /echo HTTP/1.1 408\n"
        }),
        "{:?}\n{}",
        std::fs::read_to_string(&log),
        p.logs()
    );
    assert!(error_log(&t).contains(
        "client timed out (110: Connection timed out) while reading client request body"
    ));
    assert_eq!(new_connections(before, b.stats()), 0);
}

/// A server that records every request it reads (head and Content-Length body) and
/// answers `200 ok`, one request per connection.
fn recording_server() -> (u16, Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let rec = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if let Ok(mut v) = rec.lock() {
                v.push(got);
            }
            let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    (port, seen)
}

/// A proxied post action sends the body the request's location read whole again (nginx
/// does; Proton used to refuse it).
#[test]
fn a_proxied_post_action_sends_the_body_again() {
    let t = TempDir::new("rb-post-action");
    let (port, seen) = recording_server();
    let http = r#"
server {
    listen 127.0.0.1:{port};
    location /pa { proxy_pass http://127.0.0.1:@R@; post_action /post; }
    location /post { proxy_pass http://127.0.0.1:@R@; }
}
"#
    .replace("@R@", &port.to_string());
    let p = Proton::start(t.path(), &conf(&http), 1);
    let r = send(&p, &with_body("POST", "/pa", b"the body"));
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "ok"),
        "{}",
        p.logs()
    );
    let mut got = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            got = seen.lock().map(|v| v.clone()).unwrap_or_default();
            got.len() >= 2
        }),
        "{got:?}\n{}",
        p.logs()
    );
    for (req, line) in got.iter().zip(["POST /pa ", "POST /post "]) {
        let text = String::from_utf8_lossy(req);
        assert!(text.starts_with(line), "{text}");
        assert!(text.ends_with("\r\n\r\nthe body"), "{text}");
        assert!(text.contains("Content-Length: 8\r\n"), "{text}");
    }
}

/// A chunked body already malformed in what came with the head is a 400 and a close, also
/// where the location would not read the body (a `return`), as nginx.
#[test]
fn a_malformed_chunked_body_is_a_400_even_when_discarded() {
    let t = TempDir::new("rb-runaway");
    let p = Proton::start(
        t.path(),
        &conf("server { listen 127.0.0.1:{port}; location / { return 200 \"TEST\\n\"; } }"),
        1,
    );
    let r = send(
        &p,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
          4\r\nSEE-THIS\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 400, "{}", p.logs());
    // A good one still gets the location's answer.
    let r = send(
        &p,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
          4\r\nSEE-\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", p.logs());
}

/// A temporary file that cannot be made is a 500 with nginx's `crit` line, never a crash,
/// and the worker goes on serving (a small body still works).
#[test]
fn a_temporary_file_that_cannot_be_made_is_a_500() {
    let t = TempDir::new("rb-nofile");
    let b = Backend::start("b7");
    let http = r#"
server {
    listen 127.0.0.1:{port};
    client_body_buffer_size 1k;
    client_body_temp_path /proc/proton-no-such-dir/body;
    location / { proxy_pass http://127.0.0.1:@A@; }
}
"#
    .replace("@A@", &b.port.to_string());
    let p = Proton::start(t.path(), &conf(&http), 1);
    let before = b.stats();
    let r = send(&p, &with_body("POST", "/echo", &pattern(5_000)));
    assert_eq!(r.status, 500, "{}", p.logs());
    assert!(
        wait_until(Duration::from_secs(10), || {
            let log = error_log(&t);
            log.contains("[crit]") && log.contains("open() \"/proc/proton-no-such-dir/body/")
        }),
        "{}",
        p.logs()
    );
    assert_eq!(new_connections(before, b.stats()), 0);
    let r = send(&p, &with_body("POST", "/echo", b"small"));
    assert_eq!(r.status, 200, "{}", p.logs());
    assert!(Echo::of(&r).body == b"small");
}

/// The same requests through nginx 1.22 and Proton, behind the same echo backend: the
/// status, `$request_body` and `$content_length` the front sees, and the framing and body
/// the upstream gets, buffered and streamed, with a length and chunked.
#[test]
fn bodies_as_nginx() {
    let b = Backend::start("b8");
    let http = r#"
server {
    listen 127.0.0.1:{port};
    client_body_buffer_size 2k;
    add_header X-Body "$request_body";
    add_header X-CL "$content_length";
    location / { proxy_pass http://127.0.0.1:@A@; }
    location /v11/ { proxy_pass http://127.0.0.1:@A@/; proxy_http_version 1.1; }
    location /off/ { proxy_pass http://127.0.0.1:@A@/; proxy_request_buffering off; }
    location /off11/ {
        proxy_pass http://127.0.0.1:@A@/;
        proxy_request_buffering off;
        proxy_http_version 1.1;
    }
    location /ret { return 200 "ret"; }
}
"#
    .replace("@A@", &b.port.to_string());
    let chunked = |body: &[u8]| -> Vec<u8> {
        let mut out = Vec::new();
        for piece in body.chunks(1000) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    };
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for path in ["/echo", "/v11/echo", "/off/echo", "/off11/echo", "/ret"] {
        for size in [10, 1_500, 5_000] {
            let body = pattern(size);
            cases.push((
                format!("{path} length {size}"),
                with_body("POST", path, &body),
            ));
            let mut raw = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            .into_bytes();
            raw.extend_from_slice(&chunked(&body));
            cases.push((format!("{path} chunked {size}"), raw));
        }
    }
    let describe = |port: u16, raw: &[u8]| -> String {
        let (out, _) = raw_exchange(port, raw, Duration::from_secs(20));
        let Ok(r) = parse_response(&out) else {
            return format!("no response: {:?}", String::from_utf8_lossy(&out));
        };
        let upstream = if r.header("x-backend").is_some() {
            let e = Echo::of(&r);
            format!(
                "cl={:?} te={:?} body={}",
                e.all("content-length"),
                e.all("transfer-encoding"),
                e.body.len()
            )
        } else {
            r.body_text()
        };
        format!(
            "{} x-body={:?} x-cl={:?} {upstream}",
            r.status,
            r.header("x-body").map(str::len),
            r.header("x-cl")
        )
    };
    let t = TempDir::new("rb-nginx");
    let p = Proton::start(t.path(), &conf(&http), 1);
    let ours: Vec<String> = cases.iter().map(|(_, raw)| describe(p.port, raw)).collect();
    let Some(nginx) = proton_tests::nginx_binary() else {
        return;
    };
    let n = proton_tests::Nginx::start(&nginx, |port| http.replace("{port}", &port.to_string()));
    let theirs: Vec<String> = cases
        .iter()
        .map(|(_, raw)| describe(n.port(), raw))
        .collect();
    let labels: Vec<&String> = cases.iter().map(|(l, _)| l).collect();
    proton_tests::assert_same_as_nginx(&labels, &ours, &theirs, &p.logs());
}

/// `error_page 502 = /fallback;` after an intercepted upstream error, where `/fallback`
/// proxies too (a common nginx pattern): the fallback's answer goes out (it was lost: the
/// client got nothing), as a GET (nginx makes an error page's redirect a GET), and the log
/// line is the client's request. With `proxy_request_buffering off`, a body whose first
/// part went to the failing upstream (nginx's h2_proxy_request_buffering_redirect.t).
#[test]
fn an_error_page_that_proxies_answers() {
    let t = TempDir::new("ep-proxy");
    let b = Backend::start("ep");
    let http = r#"
log_format f "$request $status ua=$http_user_agent";
server {
    listen 127.0.0.1:{port};
    access_log {dir}/logs/ep.log f;
    location ~ ^/[ab]$ {
        proxy_pass http://127.0.0.1:@A@;
        rewrite ^ /status?code=502 break;
        proxy_intercept_errors on;
        error_page 502 = /fallback;
    }
    location = /unbuffered {
        proxy_request_buffering off;
        proxy_pass http://127.0.0.1:@A@/status?code=502;
        proxy_intercept_errors on;
        error_page 502 = /fallback;
    }
    location /fallback { proxy_pass http://127.0.0.1:@A@/echo; }
}
"#
    .replace("@A@", &b.port.to_string());
    let p = Proton::start(t.path(), &conf(&http), 1);

    let r = send(
        &p,
        b"GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: t1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", p.logs());
    assert!(r.body_text().starts_with("GET /echo "), "{}", r.body_text());
    let r = send(&p, &with_body("POST", "/b", b"hello"));
    assert_eq!(r.status, 200, "{}", p.logs());
    assert!(r.body_text().starts_with("GET /echo "), "{}", r.body_text());

    // Half the body; the rest once the first upstream has answered 502.
    let before = b.stats().1;
    let mut s = connect(&p);
    s.write_all(b"POST /unbuffered HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\nSEE-")
        .unwrap();
    // (Each `/stats` counts itself.)
    let mut calls = 1;
    assert!(
        wait_until(Duration::from_secs(10), || {
            calls += 1;
            b.stats().1 >= before + calls
        }),
        "{}",
        p.logs()
    );
    s.write_all(b"THIS").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let r = parse_response(&out).unwrap_or_else(|e| panic!("{e}: {}", p.logs()));
    assert_eq!(r.status, 200, "{}", p.logs());

    let log = t.path().join("logs/ep.log");
    let mut text = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines().count() >= 3
        }),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "GET /a HTTP/1.1 200 ua=t1");
    assert_eq!(lines[1], "POST /b HTTP/1.1 200 ua=-");
    assert_eq!(lines[2], "POST /unbuffered HTTP/1.1 200 ua=-");
}
