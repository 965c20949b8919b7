//! proton-run end to end: real master and workers on loopback, real sockets, raw requests.

use proton_tests::{raw_exchange, request, split_responses, wait_until, Proton, TempDir};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

const BASE: &str = r#"
events { worker_connections 64; }
http {
    types { text/html html; text/plain txt; image/png png; }
    default_type application/octet-stream;
    access_log {dir}/logs/access.log;
    server {
        listen 127.0.0.1:{port};
        server_name localhost;
        root {dir}/www;
        error_page 404 /404.html;
        location = /hello { return 200 "hello\n"; }
        location = /moved { return 301 /hello; }
        location = /teapot { return 418; }
        location /old/ { rewrite ^/old/(.*)$ /new/$1 last; }
        location /new/ { return 200 "new:$uri"; }
        location /redir/ { rewrite ^/redir/(.*)$ /hello?from=$1 redirect; }
        location = /go { rewrite ^ $arg_to? redirect; }
        location /try/ { try_files $uri @fallback; }
        location @fallback { return 200 "fallback"; }
        location = /404.html { internal; }
        location /loop { rewrite ^ /loop last; }
        location = /small { client_max_body_size 10; return 200 "ok"; }
    }
}
"#;

fn site(t: &TempDir) {
    t.write("www/index.html", "<h1>index</h1>\n");
    t.write("www/a.txt", "0123456789abcdefghij");
    t.write("www/404.html", "custom not found\n");
    t.write("www/dir/index.html", "dir index\n");
    t.write("www/noindex/file.txt", "x");
    t.write("www/try/real.txt", "real file");
}

fn start(t: &TempDir) -> Proton {
    site(t);
    Proton::start(t.path(), BASE, 2)
}

fn send(port: u16, req: &str) -> (Vec<u8>, bool) {
    raw_exchange(port, req.as_bytes(), Duration::from_secs(5))
}

fn first(raw: &[u8]) -> proton_tests::Response {
    split_responses(raw)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no response in {:?}", String::from_utf8_lossy(raw)))
}

#[test]
fn return_redirect_rewrite_and_errors() {
    let t = TempDir::new("rt-return");
    let p = start(&t);
    let r = request(p.port, Some("localhost"), "/hello").expect("GET /hello");
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "hello\n"),
        "{}",
        p.logs()
    );
    assert!(r.header("date").is_some() && r.header("server").is_some());
    let r = request(p.port, Some("localhost"), "/moved").expect("GET /moved");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("http://localhost:{}/hello", p.port).as_str())
    );
    // As nginx 1.22: the Host lowercased without its port, the local port; without a Host
    // (HTTP/1.0), the local address.
    for (req, want) in [
        (
            "GET /moved HTTP/1.0\r\nHost: Example.COM:99\r\n\r\n",
            "example.com",
        ),
        ("GET /moved HTTP/1.0\r\n\r\n", "127.0.0.1"),
    ] {
        let (raw, _) = send(p.port, req);
        assert_eq!(
            first(&raw).header("location"),
            Some(format!("http://{want}:{}/hello", p.port).as_str()),
            "{req:?}"
        );
    }
    assert_eq!(
        request(p.port, Some("localhost"), "/teapot")
            .expect("teapot")
            .status,
        418
    );
    let r = request(p.port, Some("localhost"), "/old/x/y").expect("rewrite last");
    assert_eq!(r.body_text(), "new:/new/x/y");
    let r = request(p.port, Some("localhost"), "/redir/abc").expect("rewrite redirect");
    assert_eq!(r.status, 302);
    assert!(
        r.header("location")
            .is_some_and(|l| l.ends_with("/hello?from=abc")),
        "{:?}",
        r.headers
    );
    // A redirect is unescaped as nginx's (printable characters, up to the first `?`); CR
    // and LF stay escaped (no header splitting).
    for (to, want) in [
        (
            "http%3A%2F%2Fexample.com%2F%3Ffrom%3Da",
            "http://example.com/?from%3Da",
        ),
        (
            "http%3A%2F%2Fexample.com%0D%0ASet-Cookie:x",
            "http://example.com%0D%0ASet-Cookie:x",
        ),
    ] {
        let r = request(p.port, Some("localhost"), &format!("/go?to={to}")).expect("go");
        assert_eq!((r.status, r.header("location")), (302, Some(want)), "{to}");
        assert!(r.header("set-cookie").is_none());
    }
    // Internal redirect cycle: 10 rounds, then 500.
    assert_eq!(
        request(p.port, Some("localhost"), "/loop")
            .expect("loop")
            .status,
        500
    );
    // error_page to an internal location; the internal location itself is 404 from outside.
    let r = request(p.port, Some("localhost"), "/missing").expect("404");
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (404, "custom not found\n")
    );
    // The error log line is nginx's, OS error number first (written before the response).
    let line = format!(
        "open() \"{}/www/missing\" failed (2: No such file or directory), client: 127.0.0.1",
        t.path().display()
    );
    assert!(p.logs().contains(&line), "{line}\n{}", p.logs());
    assert_eq!(
        request(p.port, Some("localhost"), "/404.html")
            .expect("internal")
            .status,
        404
    );
    // try_files: the file, else the named location.
    assert_eq!(
        request(p.port, Some("localhost"), "/try/real.txt")
            .expect("try")
            .body_text(),
        "real file"
    );
    assert_eq!(
        request(p.port, Some("localhost"), "/try/none")
            .expect("try")
            .body_text(),
        "fallback"
    );
}

#[test]
fn static_files_conditional_and_ranges() {
    let t = TempDir::new("rt-static");
    let p = start(&t);
    let r = request(p.port, Some("localhost"), "/").expect("index");
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "<h1>index</h1>\n"),
        "{}",
        p.logs()
    );
    assert_eq!(r.header("content-type"), Some("text/html"));
    let r = request(p.port, Some("localhost"), "/a.txt").expect("file");
    assert_eq!(r.body_text(), "0123456789abcdefghij");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let etag = r.header("etag").expect("etag").to_string();
    let lm = r
        .header("last-modified")
        .expect("last-modified")
        .to_string();
    // A directory without its slash: 301 to the slashed URI.
    let r = request(p.port, Some("localhost"), "/dir").expect("dir");
    assert_eq!(r.status, 301);
    assert!(r.header("location").is_some_and(|l| l.ends_with("/dir/")));
    assert_eq!(
        request(p.port, Some("localhost"), "/dir/")
            .expect("dir/")
            .body_text(),
        "dir index\n"
    );
    // A directory without index and without autoindex: 403.
    assert_eq!(
        request(p.port, Some("localhost"), "/noindex/")
            .expect("403")
            .status,
        403
    );
    // Conditional requests.
    let (raw, _) = send(p.port, &format!("GET /a.txt HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"));
    assert_eq!(first(&raw).status, 304);
    let (raw, _) = send(p.port, &format!("GET /a.txt HTTP/1.1\r\nHost: localhost\r\nIf-Modified-Since: {lm}\r\nConnection: close\r\n\r\n"));
    assert_eq!(first(&raw).status, 304);
    // Ranges.
    let (raw, _) = send(
        p.port,
        "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=2-5\r\nConnection: close\r\n\r\n",
    );
    let r = first(&raw);
    assert_eq!((r.status, r.body_text().as_str()), (206, "2345"));
    assert_eq!(r.header("content-range"), Some("bytes 2-5/20"));
    let (raw, _) = send(
        p.port,
        "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=-3\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(first(&raw).body_text(), "hij");
    let (raw, _) = send(
        p.port,
        "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=50-60\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(first(&raw).status, 416);
    // Normalised paths never leave the root.
    let (raw, _) = send(
        p.port,
        "GET /../../etc/passwd HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(first(&raw).status, 400);
    let (raw, _) = send(
        p.port,
        "GET /dir/%2e%2e/a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(first(&raw).body_text(), "0123456789abcdefghij");
    // HEAD: headers only.
    let (raw, _) = send(
        p.port,
        "HEAD /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("\r\n\r\n"),
        "{text}"
    );
}

#[test]
fn keep_alive_and_pipelining() {
    let t = TempDir::new("rt-keepalive");
    let p = start(&t);
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // Three pipelined requests in one write: three responses, in order.
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: localhost\r\n\r\nGET /new/z HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let ok = wait_until(Duration::from_secs(20), || {
        if let Ok(n) = s.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        split_responses(&got).len() >= 3
    });
    assert!(ok, "{}", String::from_utf8_lossy(&got));
    let rs = split_responses(&got);
    assert_eq!(rs[0].body_text(), "hello\n");
    assert_eq!(rs[1].body_text(), "0123456789abcdefghij");
    assert_eq!(rs[2].body_text(), "new:/new/z");
    assert!(rs
        .iter()
        .all(|r| r.header("connection") == Some("keep-alive")));
    // The connection is still usable.
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert_eq!(first(&rest).body_text(), "hello\n");
    // HTTP/1.0 closes by default.
    let (raw, closed) = send(p.port, "GET /hello HTTP/1.0\r\n\r\n");
    assert!(closed);
    assert_eq!(first(&raw).header("connection"), Some("close"));
}

#[test]
fn bad_requests_get_4xx_and_close() {
    let t = TempDir::new("rt-bad");
    let p = start(&t);
    let cases: &[(&str, u16)] = &[
        ("GET /hello HTTP/1.1\r\n\r\n", 400),
        ("POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400),
        ("GET /hello HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", 400),
        ("GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        ("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 413),
    ];
    for (req, want) in cases {
        let (raw, closed) = send(p.port, req);
        let r = first(&raw);
        assert_eq!(
            r.status,
            *want,
            "{req:?}: {}",
            String::from_utf8_lossy(&raw)
        );
        assert!(closed, "{req:?}: connection left open");
    }
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(20_000));
    let (raw, closed) = send(p.port, &long);
    assert_eq!(first(&raw).status, 414);
    assert!(closed);
    // A request body that is not needed is discarded and the connection reused.
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let rs = split_responses(&all);
    assert_eq!(rs.len(), 2, "{}", String::from_utf8_lossy(&all));
    assert!(rs.iter().all(|r| r.status == 200));
}

#[test]
fn worker_respawn_and_reload() {
    let t = TempDir::new("rt-reload");
    let mut p = start(&t);
    assert!(
        wait_until(Duration::from_secs(10), || p.workers().len() == 2),
        "{}",
        p.logs()
    );
    let workers = p.workers();
    // kill -9 a worker: the master starts another one and service goes on.
    let _ = std::process::Command::new("kill")
        .arg("-9")
        .arg(workers[0].to_string())
        .status();
    let ok = wait_until(Duration::from_secs(10), || {
        let now = p.workers();
        now.len() == 2 && !now.contains(&workers[0])
    });
    assert!(ok, "no respawn: {}", p.logs());
    assert_eq!(
        request(p.port, Some("localhost"), "/hello")
            .expect("after respawn")
            .status,
        200
    );
    // Reload with a changed answer: the new answer appears.
    for i in 0..3 {
        p.compile(&BASE.replace(
            "return 200 \"hello\\n\";",
            &format!("return 200 \"v{i}\\n\";"),
        ));
        p.signal("HUP");
        let want = format!("v{i}\n");
        // Until the old workers have seen QUIT, a connection may still reach one of them.
        let ok = wait_until(Duration::from_secs(10), || {
            (0..10).all(|_| {
                request(p.port, Some("localhost"), "/hello").is_ok_and(|r| r.body_text() == want)
            })
        });
        assert!(ok, "reload {i} not visible: {}", p.logs());
    }
    // A config that does not load leaves the running one serving.
    std::fs::write(t.path().join("proton.ir"), b"garbage").expect("write");
    p.signal("HUP");
    assert_eq!(
        request(p.port, Some("localhost"), "/hello")
            .expect("still serving")
            .body_text(),
        "v2\n"
    );
    // Graceful stop.
    p.signal("QUIT");
    assert!(
        p.wait_exit(Duration::from_secs(10)),
        "master did not exit: {}",
        p.logs()
    );
}

#[test]
fn access_log_written() {
    let t = TempDir::new("rt-log");
    let mut p = start(&t);
    assert_eq!(
        request(p.port, Some("localhost"), "/hello")
            .expect("hello")
            .status,
        200
    );
    p.signal("QUIT");
    assert!(p.wait_exit(Duration::from_secs(10)));
    let log = std::fs::read_to_string(t.path().join("logs/access.log")).unwrap_or_default();
    assert!(
        log.contains("\"GET /hello HTTP/1.1\" 200 6"),
        "access log: {log:?}"
    );
}

/// Reads one response (Content-Length framed) from a keep-alive connection.
fn read_one(s: &mut TcpStream) -> Option<proton_tests::Response> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(r) = split_responses(&got).into_iter().next() {
            return Some(r);
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// 50 reloads while a client sends requests over fresh and keep-alive connections: no
/// request fails, and after each reload the new answer appears.
/// Clients that send requests without pause while a test reloads the server: one on a new
/// connection per request, one on a keep-alive connection (reconnecting when the server
/// closes it). Every answer that is not 200 and every failed connection is kept.
struct Clients {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ok: std::sync::Arc<std::sync::atomic::AtomicU64>,
    failures: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Clients {
    fn start(port: u16, host: &'static str, path: &'static str) -> Clients {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::{Arc, Mutex};
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut threads = Vec::new();
        for keep_alive in [false, true] {
            let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
            let fail = move |what: String| {
                let mut f = failures.lock().expect("lock");
                if f.len() < 1000 {
                    f.push(what);
                }
            };
            threads.push(std::thread::spawn(move || {
                let mut conn: Option<TcpStream> = None;
                while !stop.load(Ordering::Relaxed) {
                    if !keep_alive {
                        match request(port, Some(host), path) {
                            Ok(r) if r.status == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            other => fail(format!("fresh: {other:?}")),
                        }
                        continue;
                    }
                    let s = match conn.as_mut() {
                        Some(s) => s,
                        None => match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
                            Ok(s) => {
                                s.set_read_timeout(Some(Duration::from_secs(30)))
                                    .expect("timeout");
                                conn.insert(s)
                            }
                            Err(e) => {
                                fail(format!("keep-alive connect: {e}"));
                                continue;
                            }
                        },
                    };
                    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
                    if s.write_all(req.as_bytes()).is_err() {
                        fail("keep-alive write failed".into());
                        conn = None;
                        continue;
                    }
                    match read_one(s) {
                        Some(r) if r.status == 200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            if r.header("connection") == Some("close") {
                                conn = None;
                            }
                        }
                        other => {
                            fail(format!("keep-alive: {other:?}"));
                            conn = None;
                        }
                    }
                }
            }));
        }
        Clients {
            stop,
            ok,
            failures,
            threads,
        }
    }

    /// The failures so far (at most five) and their count, for a message.
    fn report(&self) -> String {
        let f = self.failures.lock().expect("lock");
        format!(
            "{} client failures, the first: {:?}",
            f.len(),
            &f[..f.len().min(5)]
        )
    }

    /// Stops the clients: (requests answered 200, failures).
    fn finish(self) -> (u64, Vec<String>) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        let failures = std::mem::take(&mut *self.failures.lock().expect("lock"));
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

#[test]
fn fifty_reloads_under_load() {
    let t = TempDir::new("rt-reload50");
    let p = start(&t);
    let port = p.port;
    let clients = Clients::start(port, "localhost", "/hello");
    for i in 0..50 {
        p.compile(&BASE.replace(
            "return 200 \"hello\\n\";",
            &format!("return 200 \"gen{i}\\n\";"),
        ));
        p.signal("HUP");
        let want = format!("gen{i}\n");
        let seen = wait_until(Duration::from_secs(10), || {
            request(port, Some("localhost"), "/hello").is_ok_and(|r| r.body_text() == want)
        });
        if !seen {
            let report = clients.report();
            let _ = clients.finish();
            panic!(
                "reload {i}: new answer never appeared; last probe: {:?}; {report}\n{}",
                request(port, Some("localhost"), "/hello"),
                p.logs()
            );
        }
    }
    let (ok, failures) = clients.finish();
    assert!(
        failures.is_empty(),
        "{} failed requests (of {ok}): {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        p.logs()
    );
    assert!(ok > 100, "too few requests went through");
}

/// A reload with a config of 101,000 locations (1,000 servers of 100 locations each): the
/// new configuration is served and no request fails meanwhile, on fresh and on keep-alive
/// connections. The time from the HUP to the new answer is printed, not asserted (tests do
/// not assert timings; `bench/load` measures it on release builds against nginx).
#[test]
fn a_reload_of_a_hundred_thousand_locations_loses_no_request() {
    let t = TempDir::new("rt-reload100k");
    let conf = |answer: &str| {
        let mut c =
            String::from("events { worker_connections 64; }\nhttp {\n    access_log off;\n");
        for s in 0..1000 {
            c.push_str(&format!(
                "    server {{\n        listen 127.0.0.1:{{port}};\n        server_name s{s}.test;\n"
            ));
            for l in 0..100 {
                let body = if s == 999 && l == 99 {
                    answer.to_string()
                } else {
                    format!("s{s} l{l}")
                };
                c.push_str(&format!(
                    "        location /l{l}/ {{ return 200 \"{body}\"; }}\n"
                ));
            }
            c.push_str("    }\n");
        }
        c.push_str("}\n");
        c
    };
    let p = Proton::start(t.path(), &conf("before"), 2);
    let port = p.port;
    let get = || request(port, Some("s999.test"), "/l99/x").map(|r| r.body_text());
    assert_eq!(get().ok().as_deref(), Some("before"));
    let clients = Clients::start(port, "s999.test", "/l99/x");
    assert!(
        wait_until(Duration::from_secs(10), || clients
            .ok
            .load(std::sync::atomic::Ordering::Relaxed)
            > 20),
        "the clients get no answers: {}",
        clients.report()
    );
    p.compile(&conf("after"));
    let hup = std::time::Instant::now();
    p.signal("HUP");
    let seen = wait_until(Duration::from_secs(60), || {
        get().is_ok_and(|b| b == "after")
    });
    let took = hup.elapsed();
    // Keep the clients on while the old workers drain.
    let ok_at_switch = clients.ok.load(std::sync::atomic::Ordering::Relaxed);
    let more = wait_until(Duration::from_secs(10), || {
        clients.ok.load(std::sync::atomic::Ordering::Relaxed) > ok_at_switch + 20
    });
    let (ok, failures) = clients.finish();
    assert!(
        seen,
        "the new answer never appeared: {:?}\n{}",
        get(),
        p.logs()
    );
    assert!(more, "no answers after the switch");
    assert!(
        failures.is_empty(),
        "{} failed requests (of {ok}): {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        p.logs()
    );
    eprintln!(
        "101,000 locations: HUP to the new answer in {:.1} ms ({ok} requests answered, none failed)",
        took.as_secs_f64() * 1000.0
    );
}

#[test]
fn limits_timeouts_and_worker_connections() {
    let t = TempDir::new("rt-limits");
    let conf = r#"
events { worker_connections 8; }
http {
    access_log off;
    client_header_timeout 1s;
    keepalive_timeout 1s;
    server {
        listen 127.0.0.1:{port};
        location / { return 200 "ok"; }
    }
}
"#;
    let p = Proton::start(t.path(), conf, 1);
    // A request head that never completes: closed after client_header_timeout.
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(
        n,
        0,
        "expected a close, got {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Well under the 60 s default: the timeout fired (the bound only catches a hang).
    assert!(started.elapsed() < Duration::from_secs(20));
    // An idle keep-alive connection: closed after keepalive_timeout.
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let r = read_one(&mut s).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(
        s.read(&mut buf).unwrap_or(0),
        0,
        "idle keep-alive connection not closed"
    );
    // worker_connections 8, held by connections that send nothing: as nginx, the oldest
    // idle one is closed to make room, and the new client is served (process.rs has the
    // details, and the refusal when every connection is busy).
    let mut held = Vec::new();
    for _ in 0..8 {
        if let Ok(c) = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)) {
            held.push(c);
        }
    }
    let extra = request(p.port, Some("x"), "/");
    assert!(
        extra.as_ref().is_ok_and(|r| r.status == 200),
        "connection beyond worker_connections not served: {extra:?}\n{}",
        p.logs()
    );
    drop(held);
    let ok = wait_until(Duration::from_secs(20), || {
        request(p.port, Some("x"), "/").is_ok_and(|r| r.status == 200)
    });
    assert!(ok, "server did not recover: {}", p.logs());
}

#[test]
fn large_sparse_file_ranges_and_multipart() {
    let t = TempDir::new("rt-large");
    site(&t);
    // A 5 GiB sparse file with a marker past 4 GiB.
    let big = t.path().join("www/big.bin");
    let f = std::fs::File::create(&big).expect("create");
    f.set_len(5 << 30).expect("set_len");
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"MARKER", (4 << 30) + 12345).expect("write");
    drop(f);
    let p = Proton::start(t.path(), BASE, 1);
    let (raw, _) = send(
        p.port,
        "HEAD /big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("Content-Length: 5368709120"), "{text}");
    let at = (4u64 << 30) + 12345;
    let (raw, _) = send(p.port, &format!("GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes={at}-{}\r\nConnection: close\r\n\r\n", at + 5));
    let r = first(&raw);
    assert_eq!((r.status, r.body_text().as_str()), (206, "MARKER"));
    // Several ranges: multipart/byteranges.
    let (raw, _) = send(p.port, "GET /a.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-1,5-6\r\nConnection: close\r\n\r\n");
    let r = first(&raw);
    assert_eq!(r.status, 206);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("multipart/byteranges; boundary=")));
    let body = r.body_text();
    assert!(
        body.contains("Content-Range: bytes 0-1/20\r\n\r\n01")
            && body.contains("Content-Range: bytes 5-6/20\r\n\r\n56"),
        "{body}"
    );
}

#[test]
fn usr1_reopens_logs_and_autoindex_expires_headers() {
    let t = TempDir::new("rt-usr1");
    site(&t);
    let conf = BASE.replace(
        "location = /hello {",
        "location /list/ { alias {dir}/www/try/; autoindex on; expires 1h; add_header X-Test yes always; }\n        location = /hello {",
    );
    let p = Proton::start(t.path(), &conf, 1);
    assert_eq!(
        request(p.port, Some("localhost"), "/hello")
            .expect("hello")
            .status,
        200
    );
    let log = t.path().join("logs/access.log");
    assert!(
        wait_until(Duration::from_secs(20), || log.exists()),
        "{}",
        p.logs()
    );
    std::fs::rename(&log, t.path().join("logs/access.log.1")).expect("rotate");
    p.signal("USR1");
    // After the reopen, a new access.log receives the next lines.
    let ok = wait_until(Duration::from_secs(20), || {
        let _ = request(p.port, Some("localhost"), "/hello");
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("GET /hello"))
    });
    assert!(ok, "access.log not reopened: {}", p.logs());
    let r = request(p.port, Some("localhost"), "/list/").expect("autoindex");
    assert_eq!(r.status, 200);
    assert!(
        r.body_text().contains("<a href=\"real.txt\">real.txt</a>"),
        "{}",
        r.body_text()
    );
    assert_eq!(r.header("x-test"), Some("yes"));
    assert_eq!(r.header("cache-control"), Some("max-age=3600"));
    assert!(r.header("expires").is_some());
    // Methods: POST to a static file is 405; an unknown method token too.
    let (raw, _) = send(
        p.port,
        "POST /a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(first(&raw).status, 405);
    let (raw, _) = send(
        p.port,
        "FOO /a.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(first(&raw).status, 405);
    // `return` answers any method.
    let (raw, _) = send(
        p.port,
        "DELETE /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(first(&raw).status, 200);
}

#[test]
fn servers_by_host_and_address() {
    let t = TempDir::new("rt-vhost");
    let conf = r#"
events {}
http {
    access_log off;
    server { listen 127.0.0.1:{port} default_server; server_name a.test; return 200 "A"; }
    server { listen 127.0.0.1:{port}; server_name *.b.test; return 200 "B"; }
    server { listen 127.0.0.1:{port}; server_name ~^(?<sub>\w+)\.c\.test$; return 200 "C:$sub"; }
    server { listen 127.0.0.1:{port}; server_name ""; return 200 "nohost"; }
}
"#;
    let p = Proton::start(t.path(), conf, 1);
    let body = |host: Option<&str>| request(p.port, host, "/").expect("request").body_text();
    assert_eq!(body(Some("a.test")), "A");
    assert_eq!(body(Some("WWW.B.TEST.")), "B");
    assert_eq!(body(Some("x.y.b.test:8080")), "B");
    assert_eq!(body(Some("hello.c.test")), "C:hello");
    assert_eq!(body(Some("unknown.test")), "A");
    assert_eq!(body(None), "nohost");
    // Host bytes that are not UTF-8 are matched as bytes, as nginx does (it accepts any
    // byte from 0x80 up in a host): a leading wildcard still applies.
    let (raw, _) = raw_exchange(
        p.port,
        b"GET / HTTP/1.1\r\nHost: \xff\xfe.B.test\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(first(&raw).body_text(), "B");
}

#[test]
fn file_truncated_while_sent_and_fast_stop() {
    let t = TempDir::new("rt-trunc");
    site(&t);
    let path = t.path().join("www/shrink.bin");
    std::fs::write(&path, vec![b'z'; 32 << 20]).expect("write 32 MiB");
    let mut p = Proton::start(t.path(), BASE, 1);
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(b"GET /shrink.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    while got < 256 * 1024 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    // The file shrinks under the transfer: the response ends short and the connection closes.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(1024)
        .expect("truncate");
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got < 32 << 20, "the whole file arrived after truncation");
    // The worker is alive and serving.
    assert_eq!(
        request(p.port, Some("localhost"), "/hello")
            .expect("hello")
            .status,
        200,
        "{}",
        p.logs()
    );
    // TERM: fast stop.
    p.signal("TERM");
    assert!(
        p.wait_exit(Duration::from_secs(10)),
        "master ignored TERM: {}",
        p.logs()
    );
}

#[test]
fn absolute_form_expect_continue_and_bad_ir() {
    let t = TempDir::new("rt-misc");
    let p = start(&t);
    // Absolute-form target: the authority chooses the server and the path is routed.
    let (raw, _) = send(
        p.port,
        "GET http://localhost/hello HTTP/1.1\r\nHost: ignored.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(first(&raw).body_text(), "hello\n");
    // Expect: 100-continue on a handler that does not read the body, from a client that
    // closes after this request: answered at once without a 100 Continue, and closed
    // rather than waiting for a body that may never come (the kept-open case is
    // `expect_continue_as_nginx`).
    let (raw, closed) = send(p.port, "POST /hello HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n");
    assert_eq!(first(&raw).status, 200);
    assert!(closed);
    // proton-run refuses a damaged IR with one clear line and exit code 1.
    let bytes = std::fs::read(t.path().join("proton.ir")).expect("ir");
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("truncated", bytes[..bytes.len() / 2].to_vec(), "truncated"),
        (
            "foreign",
            b"not an IR file at all".to_vec(),
            "not a Proton IR",
        ),
        (
            "version",
            {
                let mut b = bytes.clone();
                b[8] = 0xEE;
                b
            },
            "not supported",
        ),
    ];
    for (name, data, want) in cases {
        let path = t.path().join(format!("{name}.ir"));
        std::fs::write(&path, data).expect("write");
        let out = std::process::Command::new(proton_tests::bin("proton-run"))
            .arg(&path)
            .output()
            .expect("proton-run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(
            err.contains(want) && err.lines().count() == 1,
            "{name}: {err}"
        );
    }
    let out = std::process::Command::new(proton_tests::bin("proton-run"))
        .arg(t.path().join("missing.ir"))
        .output()
        .expect("proton-run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn worker_shutdown_timeout_bounds_a_reload() {
    let t = TempDir::new("rt-shutdown");
    let conf = r#"
worker_shutdown_timeout 1s;
events {}
http {
    access_log off;
    server { listen 127.0.0.1:{port}; location / { return 200 "x"; } }
}
"#;
    let p = Proton::start(t.path(), conf, 1);
    assert!(wait_until(Duration::from_secs(10), || p.workers().len() == 1));
    let old = p.workers();
    // A connection in the middle of a request keeps the old worker busy…
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    assert_eq!(request(p.port, Some("x"), "/").expect("served").status, 200);
    p.compile(&conf.replace("\"x\"", "\"y\""));
    p.signal("HUP");
    // …until worker_shutdown_timeout: then it is closed and the old worker exits.
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the held connection was answered instead of closed");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let gone = wait_until(Duration::from_secs(20), || !p.workers().contains(&old[0]));
    assert!(gone, "old worker still running: {}", p.logs());
    assert_eq!(
        request(p.port, Some("x"), "/").expect("new").body_text(),
        "y"
    );
}

/// A real HTTP client library (ureq, with its own connection pool) against proton-run.
#[test]
fn http_client_crate_round_trips() {
    let t = TempDir::new("rt-ureq");
    let p = start(&t);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    let base = format!("http://127.0.0.1:{}", p.port);
    for _ in 0..3 {
        let r = agent
            .get(&format!("{base}/hello"))
            .set("Host", "localhost")
            .call()
            .expect("GET /hello");
        assert_eq!(r.status(), 200);
        assert_eq!(r.into_string().expect("body"), "hello\n");
    }
    let r = agent
        .get(&format!("{base}/a.txt"))
        .call()
        .expect("GET /a.txt");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.into_string().expect("body"), "0123456789abcdefghij");
    match agent.get(&format!("{base}/missing")).call() {
        Err(ureq::Error::Status(404, r)) => {
            assert_eq!(r.into_string().expect("body"), "custom not found\n")
        }
        other => panic!("expected 404, got {other:?}"),
    }
}

/// `listen … reuseport`: one socket per worker (nginx's meaning); serving and reloading work.
#[test]
fn reuseport_sockets_per_worker() {
    let t = TempDir::new("rt-reuseport");
    let conf = r#"
events {}
http {
    access_log off;
    server { listen 127.0.0.1:{port} reuseport; location / { return 200 "r1"; } }
}
"#;
    let p = Proton::start(t.path(), conf, 2);
    for _ in 0..20 {
        assert_eq!(
            request(p.port, Some("x"), "/").expect("GET").body_text(),
            "r1"
        );
    }
    p.compile(&conf.replace("r1", "r2"));
    p.signal("HUP");
    // Once the old workers have stopped accepting, every socket answers with the new
    // config (until then a connection may still reach an old worker, as with nginx).
    let ok = wait_until(Duration::from_secs(10), || {
        (0..20).all(|_| request(p.port, Some("x"), "/").is_ok_and(|r| r.body_text() == "r2"))
    });
    assert!(ok, "{}", p.logs());
}

/// `sendfile on` with `tcp_nopush on` (TCP_CORK) and `sendfile off` (read + write) deliver
/// the same bytes.
#[test]
fn sendfile_on_and_off_deliver_the_same_bytes() {
    let t = TempDir::new("rt-sendfile");
    site(&t);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(t.path().join("www/data.bin"), &data).expect("write");
    for mode in ["sendfile on; tcp_nopush on;", "sendfile off;"] {
        let conf = BASE.replace(
            "default_type application/octet-stream;",
            &format!("default_type application/octet-stream; {mode}"),
        );
        let p = Proton::start(t.path(), &conf, 1);
        let r = request(p.port, Some("localhost"), "/data.bin").expect("GET");
        assert_eq!(r.status, 200, "{mode}");
        assert!(
            r.body == data,
            "{mode}: body differs ({} bytes)",
            r.body.len()
        );
        let (raw, _) = send(p.port, "GET /data.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=1000000-1000009\r\nConnection: close\r\n\r\n");
        assert_eq!(
            first(&raw).body,
            data[1_000_000..1_000_010].to_vec(),
            "{mode}"
        );
    }
}

/// PROTON_LOG_LEVEL overrides error_log's level; worker_rlimit_nofile reaches the workers;
/// a worker that keeps dying right after start is respawned at once, then after a short
/// delay (its sockets have no other worker to serve them, so the delay stays at 100 ms;
/// process.rs checks the growing delay when other workers cover the slot).
#[test]
fn log_level_rlimit_and_respawn_backoff() {
    let t = TempDir::new("rt-backoff");
    // A limit this machine allows: at most the hard limit of the test process.
    let own = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let hard: u64 = own
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|h| h.parse().ok())
        .unwrap_or(4096);
    let want = hard.min(4096);
    let conf = r#"
worker_rlimit_nofile WANT;
error_log logs/error.log error;
events {}
http {
    access_log off;
    server { listen 127.0.0.1:{port}; location / { return 200 "x"; } }
}
"#;
    let conf = conf.replace("WANT", &want.to_string());
    let p = Proton::start_with_env(t.path(), &conf, 1, &[("PROTON_LOG_LEVEL", "info")]);
    let log = t.path().join("logs/error.log");
    // An info line appears although error_log says `error`.
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(&log)
            .is_ok_and(|l| l.contains("[info]"))),
        "{}",
        p.logs()
    );
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", p.the_worker())).unwrap_or_default();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or("");
    assert!(
        nofile.split_whitespace().any(|f| f == want.to_string()),
        "{nofile}"
    );
    // Kill the worker three times, each right after it started.
    for _ in 0..3 {
        let before = p.workers();
        assert!(wait_until(Duration::from_secs(15), || p.workers().len() == 1));
        let w = p.workers()[0];
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(w.to_string())
            .status();
        assert!(
            wait_until(Duration::from_secs(15), || p
                .workers()
                .first()
                .is_some_and(|n| *n != w)),
            "no respawn after {before:?}: {}",
            p.logs()
        );
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let delays: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split("respawning in ").nth(1))
        .filter_map(|d| d.trim_end_matches(" ms").parse().ok())
        .collect();
    assert_eq!(delays.len(), 3, "{text}");
    // The first respawn is immediate; later ones (if the worker died within 2 s of its
    // start) wait at most 100 ms, the cap for a slot no other worker covers.
    assert!(
        delays[0] == 0 && delays.iter().all(|d| *d <= 100),
        "{delays:?}\n{text}"
    );
    assert_eq!(request(p.port, Some("x"), "/").expect("served").status, 200);
}

/// Reload binds new listen addresses and closes removed ones; access_log buffer=/flush= and
/// escape=json work.
#[test]
fn reload_changes_listeners_and_buffered_json_log() {
    let t = TempDir::new("rt-listeners");
    let second = proton_tests::free_port();
    let one = r#"
events {}
http {
    log_format j escape=json '{"uri":"$uri","ua":"$http_user_agent","status":$status}';
    access_log logs/json.log j buffer=32k flush=1s;
    server { listen 127.0.0.1:{port}; location / { return 200 "first"; } }
}
"#;
    let two = one.replace(
        "location / { return 200 \"first\"; } }",
        &format!("location / {{ return 200 \"first\"; }} }}\n    server {{ listen 127.0.0.1:{second}; location / {{ return 200 \"second\"; }} }}"),
    );
    let p = Proton::start(t.path(), one, 1);
    assert!(
        request(second, Some("x"), "/").is_err(),
        "port {second} answers before the reload"
    );
    p.compile(&two);
    p.signal("HUP");
    let up = wait_until(Duration::from_secs(10), || {
        request(second, Some("x"), "/").is_ok_and(|r| r.body_text() == "second")
    });
    assert!(up, "new listener not bound: {}", p.logs());
    p.compile(one);
    p.signal("HUP");
    let down = wait_until(Duration::from_secs(10), || {
        request(second, Some("x"), "/").is_err()
    });
    assert!(down, "removed listener still open: {}", p.logs());
    assert_eq!(
        request(p.port, Some("x"), "/").expect("first").body_text(),
        "first"
    );
    // The buffered JSON access log is flushed within flush=1s, escaped as JSON.
    let (raw, _) = send(
        p.port,
        "GET /a%22b HTTP/1.1\r\nHost: x\r\nUser-Agent: q\"u\\o\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(first(&raw).status, 200);
    let log = t.path().join("logs/json.log");
    let ok = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&log)
            .is_ok_and(|l| l.contains(r#"{"uri":"/a\"b","ua":"q\"u\\o","status":200}"#))
    });
    assert!(
        ok,
        "json log: {:?}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// `map`: exact keys (ignoring case), regex keys with their captures, the default,
/// `hostnames` wildcards, maps of maps, and map variables in return, add_header, set and
/// log_format, through a real proton-run (the values were checked against nginx 1.22).
#[test]
fn map_variables() {
    let t = TempDir::new("rt-map");
    let conf = r#"
events {}
http {
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    map $arg_k $kind {
        default other;
        Exact   exact-hit;
        ~^re-(?<tail>.+)$ "regex:$1:$tail";
        ~*^CI   ci;
        \default literal-default;
    }
    map $host $site {
        hostnames;
        default         none;
        example.com     apex;
        *.example.com   sub;
        .example.org    org;
        www.example.*   www;
        ~^(?<name>[a-z]+)\.test$ "test-$name";
    }
    map "$kind/$site" $combo {
        exact-hit/apex  both;
        default         "$kind+$site";
    }
    log_format maps "$uri $kind $site $connection_upgrade";
    access_log logs/maps.log maps;
    server {
        listen 127.0.0.1:{port};
        add_header X-Conn $connection_upgrade;
        add_header X-Site $site;
        location / { return 200 "kind=$kind site=$site combo=$combo"; }
        location /set { set $v "[$kind]"; return 200 "$v"; }
    }
}
"#;
    let p = Proton::start(t.path(), conf, 1);
    let body = |host: &str, path: &str| {
        let r = request(p.port, Some(host), path)
            .unwrap_or_else(|e| panic!("GET {path} (Host: {host}): {e}\n{}", p.logs()));
        assert_eq!(r.status, 200, "{path}: {}", p.logs());
        r.body_text()
    };
    // Exact (ignoring case), regex with positional and named captures, case-insensitive
    // regex, `\default` as a key, the default, and an absent source (empty string).
    assert_eq!(
        body("x", "/?k=exact"),
        "kind=exact-hit site=none combo=exact-hit+none"
    );
    assert_eq!(
        body("x", "/?k=EXACT"),
        "kind=exact-hit site=none combo=exact-hit+none"
    );
    assert_eq!(
        body("x", "/?k=re-abc"),
        "kind=regex:abc:abc site=none combo=regex:abc:abc+none"
    );
    assert_eq!(body("x", "/?k=cix"), "kind=ci site=none combo=ci+none");
    assert_eq!(
        body("x", "/?k=default"),
        "kind=literal-default site=none combo=literal-default+none"
    );
    assert_eq!(
        body("x", "/?k=zzz"),
        "kind=other site=none combo=other+none"
    );
    assert_eq!(body("x", "/"), "kind=other site=none combo=other+none");
    // hostnames: exact, leading and trailing wildcards (leading first), `.name` for the name
    // and its subdomains, a regex, the default.
    assert_eq!(
        body("Example.COM", "/?k=exact"),
        "kind=exact-hit site=apex combo=both"
    );
    assert_eq!(
        body("a.example.com", "/"),
        "kind=other site=sub combo=other+sub"
    );
    assert_eq!(
        body("www.example.com", "/"),
        "kind=other site=sub combo=other+sub"
    );
    assert_eq!(
        body("www.example.net", "/"),
        "kind=other site=www combo=other+www"
    );
    assert_eq!(
        body("example.org", "/"),
        "kind=other site=org combo=other+org"
    );
    assert_eq!(
        body("a.b.example.org", "/"),
        "kind=other site=org combo=other+org"
    );
    assert_eq!(
        body("abc.test", "/"),
        "kind=other site=test-abc combo=other+test-abc"
    );
    assert_eq!(
        body("localhost", "/"),
        "kind=other site=none combo=other+none"
    );
    // set copies a map's value.
    assert_eq!(body("x", "/set?k=CI"), "[ci]");
    // add_header: the WebSocket idiom.
    let r = request(p.port, Some("www.example.com"), "/").expect("GET /");
    assert_eq!(r.header("x-conn"), Some("close"));
    assert_eq!(r.header("x-site"), Some("sub"));
    let (raw, _) = send(
        p.port,
        "GET /log-me?k=re-z HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n",
    );
    let r = first(&raw);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-conn"), Some("upgrade"));
    assert_eq!(r.header("x-site"), Some("apex"));
    // log_format.
    let log = t.path().join("logs/maps.log");
    let logged = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("/log-me regex:z:z apex upgrade"))
    });
    assert!(
        logged,
        "maps log: {:?}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// Locations that only `return` a constant text are answered from a head made once per
/// worker; every response must be byte for byte what the general path (the same text made
/// from a variable) writes, but for the Date line.
#[test]
fn constant_return_matches_the_general_path() {
    let t = TempDir::new("rt-const-return");
    let conf = r#"
events { worker_connections 64; }
http {
    default_type text/plain;
    access_log off;
    server {
        listen 127.0.0.1:{port};
        location = /c1 { return 200 "hi\n"; }
        location = /v1 { set $a "hi\n"; return 200 $a; }
        location = /c2 {
            default_type text/html; server_tokens on; keepalive_timeout 30s 20s;
            return 404 "gone";
        }
        location = /v2 {
            default_type text/html; server_tokens on; keepalive_timeout 30s 20s;
            set $a "gone"; return 404 $a;
        }
        location = /c3 { keepalive_timeout 0; return 503 "busy"; }
        location = /v3 { keepalive_timeout 0; set $a "busy"; return 503 $a; }
        location = /c4 { add_header X-A b; return 201 "made"; }
        location = /v4 { add_header X-A b; set $a "made"; return 201 $a; }
        location = /c5 { expires epoch; return 200 "x"; }
        location = /v5 { expires epoch; set $a "x"; return 200 $a; }
    }
}
"#;
    let p = Proton::start(t.path(), conf, 1);
    let without_date = |raw: Vec<u8>| -> String {
        String::from_utf8_lossy(&raw)
            .split("\r\n")
            .filter(|l| !l.starts_with("Date: "))
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let exchange = |path: &str| -> (String, String) {
        // Kept, HEAD, then closed by the client, on one connection; then HTTP/1.0 alone.
        let pipelined = format!(
            "GET {path} HTTP/1.1\r\nHost: a\r\n\r\n\
             HEAD {path} HTTP/1.1\r\nHost: a\r\n\r\n\
             GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        );
        let (raw, closed) = send(p.port, &pipelined);
        assert!(closed, "{path}: {}", String::from_utf8_lossy(&raw));
        let (old, closed) = send(p.port, &format!("GET {path} HTTP/1.0\r\n\r\n"));
        assert!(closed, "{path}: {}", String::from_utf8_lossy(&old));
        (without_date(raw), without_date(old))
    };
    for (n, want) in [
        ("1", "HTTP/1.1 200 OK\r\n"),
        ("2", "HTTP/1.1 404 Not Found\r\n"),
        ("3", "HTTP/1.1 503 "),
        ("4", "HTTP/1.1 201 Created\r\n"),
        ("5", "HTTP/1.1 200 OK\r\n"),
    ] {
        let fast = exchange(&format!("/c{n}"));
        let general = exchange(&format!("/v{n}"));
        assert!(fast.0.starts_with(want), "/c{n}: {}", fast.0);
        assert_eq!(fast, general, "/c{n} vs /v{n}");
    }
    // What the prepared heads must carry (so that equality above is not two wrong answers).
    let (c2, _) = exchange("/c2");
    assert!(c2.contains("Keep-Alive: timeout=20\r\n"), "{c2}");
    assert!(c2.contains("Server: proton/"), "{c2}");
    assert!(c2.contains("Content-Type: text/html\r\n"), "{c2}");
    assert_eq!(c2.matches("gone").count(), 2, "{c2}");
    let (c1, c1_old) = exchange("/c1");
    assert!(c1.contains("Connection: keep-alive\r\n"), "{c1}");
    assert!(c1.contains("Connection: close\r\n"), "{c1}");
    assert!(c1_old.starts_with("HTTP/1.1 200 OK\r\n"), "{c1_old}");
    assert!(c1_old.contains("Connection: close\r\n"), "{c1_old}");
    let (c3, _) = exchange("/c3");
    assert!(!c3.contains("keep-alive"), "{c3}");
    let (c4, _) = exchange("/c4");
    assert!(c4.contains("X-A: b\r\n"), "{c4}");
    let (c5, _) = exchange("/c5");
    assert!(c5.contains("Cache-Control: no-cache\r\n"), "{c5}");
}

/// Regex captures (kept as ranges into reused buffers): a location's named group lasts
/// through a rewrite, whose groups become `$1`…; a map's regex sees its own match; nothing
/// is left for the next request on the connection. Expected values checked against nginx
/// 1.22 with the same config.
#[test]
fn regex_captures_through_rewrite_and_map() {
    let t = TempDir::new("rt-captures");
    let conf = r#"
events {}
http {
    access_log off;
    map $uri $m { ~^/rw/(?<tail>.+)$ "m:$tail:$1"; default none; }
    server {
        listen 127.0.0.1:{port};
        location ~ ^/re/(?<first>[a-z]+)/(.*)$ {
            rewrite ^/re/([a-z]+)/(.*)$ /rw/$2?x=$1;
            return 200 "$first $1 $2 $uri $args";
        }
        location ~ ^/mm/ { rewrite ^/mm/(.*)$ /rw/$1; return 200 "$m"; }
        location ~ ^/plain { return 200 "[$first][$1]"; }
    }
}
"#;
    let p = Proton::start(t.path(), conf, 1);
    let reqs: Vec<Vec<u8>> = [
        "/re/abc/def?q=1",
        "/re/abc/def",
        "/mm/xyz",
        "/plain/abcdefgh",
    ]
    .iter()
    .map(|u| format!("GET {u} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes())
    .collect();
    let reqs: Vec<&[u8]> = reqs.iter().map(Vec::as_slice).collect();
    // Twice on one connection: the second round reuses every buffer of the first.
    let twice: Vec<&[u8]> = reqs.iter().chain(reqs.iter()).copied().collect();
    let got: Vec<String> = proton_tests::keep_alive_exchange(p.port, &twice)
        .unwrap_or_else(|e| panic!("exchange: {e}\n{}", p.logs()))
        .iter()
        .map(|r| r.body_text())
        .collect();
    let want = [
        "abc abc def /rw/def x=abc&q=1",
        "abc abc def /rw/def x=abc",
        "m:xyz:xyz",
        "[][]",
    ];
    assert_eq!(got, [want, want].concat(), "{}", p.logs());
}

/// An access_log path made from variables: one file per value, at most 16 open at a time
/// (the least recently used are flushed and closed, so no line is lost), and a value that
/// could leave the directory (`/`, `..`) is refused with an error line instead of writing
/// elsewhere.
#[test]
fn access_log_paths_from_variables() {
    let t = TempDir::new("rt-logvars");
    t.write("logs/by-arg/.keep", "");
    let conf = r#"
events {}
http {
    log_format p "$uri";
    server {
        listen 127.0.0.1:{port};
        access_log logs/by-arg/$arg_n.log p;
        location / { return 200 "ok"; }
    }
}
"#;
    let p = Proton::start(t.path(), conf, 1);
    let worker = p.the_worker();
    let fds = || {
        std::fs::read_dir(format!("/proc/{worker}/fd"))
            .map(|d| d.count())
            .unwrap_or(usize::MAX)
    };
    assert_eq!(proton_tests::get(p.port, Some("a"), "/first?n=h0").0, 200);
    let base = fds();
    for i in 0..40 {
        assert_eq!(
            proton_tests::get(p.port, Some("a"), &format!("/r{i}?n=h{i}")).0,
            200
        );
    }
    for i in 0..40 {
        let f = t.path().join(format!("logs/by-arg/h{i}.log"));
        let want = if i == 0 {
            "/first\n/r0\n"
        } else {
            &format!("/r{i}\n")[..]
        };
        assert!(
            wait_until(Duration::from_secs(20), || std::fs::read_to_string(&f)
                .is_ok_and(|s| s == want)),
            "{}: {:?}\n{}",
            f.display(),
            std::fs::read_to_string(&f),
            p.logs()
        );
    }
    // 40 files were written; at most 16 stay open (h0 was already open at `base`).
    assert!(
        wait_until(Duration::from_secs(20), || fds() <= base + 15),
        "{} fds open, {base} after the first request",
        fds()
    );
    for n in ["../../escaped", "..", "a%2F..%2Fb"] {
        assert_eq!(
            proton_tests::get(p.port, Some("a"), &format!("/bad?n={n}")).0,
            200
        );
    }
    assert!(!t.path().join("escaped.log").exists());
    assert!(!t.path().join("logs/...log").exists());
    let refused = "access_log path not used: a variable in it has \"/\"";
    assert!(
        wait_until(Duration::from_secs(20), || p
            .logs()
            .matches(refused)
            .count()
            == 2),
        "{}",
        p.logs()
    );
}

/// Reads from `s` until what came ends with `suffix`, the server closes, or the read times
/// out.
fn read_until(s: &mut TcpStream, suffix: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(suffix) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// `Expect: 100-continue` with a body no handler reads, as nginx 1.22 answers it: before a
/// 2xx answer a `100 Continue`, then the answer, and the body that follows is dropped on a
/// connection that stays open; before an error or a redirect no `100 Continue`, the head
/// says `Connection: close` and the connection closes.
#[test]
fn expect_continue_as_nginx() {
    let t = TempDir::new("rt-expect");
    let p = start(&t);
    let ask = |method: &str, path: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
    };
    for (method, path, body) in [
        ("POST", "/hello", "hello\n"),
        ("GET", "/a.txt", "0123456789abcdefghij"),
    ] {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        s.write_all(ask(method, path).as_bytes()).expect("head");
        let got = read_until(&mut s, body.as_bytes());
        let text = String::from_utf8_lossy(&got).into_owned();
        assert!(
            text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
            "{path}: {text}\n{}",
            p.logs()
        );
        assert!(
            text.contains("Connection: keep-alive\r\n"),
            "{path}: {text}"
        );
        // The body, then another request on the same connection.
        s.write_all(b"xxxxxGET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .expect("body and next request");
        let next = read_until(&mut s, b"hello\n");
        assert_eq!(first(&next).body_text(), "hello\n", "{path}");
    }
    for (method, path, status) in [
        ("POST", "/teapot", 418),
        ("POST", "/moved", 301),
        ("GET", "/missing", 404),
    ] {
        let (raw, closed) = send(p.port, &ask(method, path));
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{path}: {text}"
        );
        assert!(text.contains("Connection: close\r\n"), "{path}: {text}");
        assert!(closed, "{path}: the connection stays open");
    }
}

/// Methods on static locations, as nginx 1.22 answered the same config: try_files runs for
/// every method (a POST or PUT goes on to the named location); the static handler takes
/// GET, HEAD and POST, refusing a POST with 405 only for a file that exists (a missing one
/// is 404, a directory without index 403/404), and other methods with 405 at once.
#[test]
fn static_methods_as_nginx() {
    let t = TempDir::new("rt-methods");
    t.write("www/f.txt", "file\n");
    t.write("www/d/x", "x");
    let conf = r#"
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{port};
        root {dir}/www;
        location / { try_files $uri @app; }
        location @app { return 200 "app\n"; }
        location /s/ { }
        location /d/ { autoindex on; }
    }
}
"#;
    let p = Proton::start(t.path(), conf, 1);
    for (method, path, status, body) in [
        ("POST", "/x", 200, Some("app\n")),
        ("PUT", "/x", 200, Some("app\n")),
        ("GET", "/x", 200, Some("app\n")),
        ("POST", "/f.txt", 405, None),
        ("DELETE", "/f.txt", 405, None),
        ("GET", "/f.txt", 200, Some("file\n")),
        ("POST", "/s/missing", 404, None),
        ("POST", "/s/", 404, None),
        ("DELETE", "/s/missing", 405, None),
        ("POST", "/d/", 403, None),
        ("GET", "/d/x", 200, Some("x")),
    ] {
        let (raw, _) = send(
            p.port,
            &format!("{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        );
        let r = first(&raw);
        assert_eq!(r.status, status, "{method} {path}\n{}", p.logs());
        if let Some(b) = body {
            assert_eq!(r.body_text(), b, "{method} {path}");
        }
    }
}

/// try_files candidates as nginx 1.22 answered the same config: a file; `$uri/` for a
/// directory named without its slash (a 301 to add it) and with it (its index); a final
/// URI with its own arguments; `=code`; a candidate without a final `/` never matches a
/// directory, even when the request URI ends in `/`.
#[test]
fn try_files_candidates_as_nginx() {
    let t = TempDir::new("rt-tryfiles");
    t.write("www/a/file.txt", "file");
    t.write("www/a/dir/index.html", "dirindex");
    t.write("www/e/sub/index.html", "subindex");
    let conf = r#"
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{port};
        root {dir}/www;
        location /a/ { try_files $uri $uri/ /echo?from=$uri; }
        location = /echo { return 200 "echo $args"; }
        location /c/ { try_files $uri =418; }
        location /e/ { try_files $uri =418; }
    }
}
"#;
    let p = Proton::start(t.path(), conf, 1);
    for (path, status, body) in [
        ("/a/file.txt", 200, "file"),
        ("/a/dir/", 200, "dirindex"),
        ("/a/none?x=1", 200, "echo from=/a/none"),
        ("/c/none", 418, ""),
        ("/e/sub/", 418, ""),
        ("/e/sub", 418, ""),
    ] {
        let r = request(p.port, Some("localhost"), path).expect(path);
        assert_eq!(r.status, status, "{path}\n{}", p.logs());
        if status == 200 {
            assert_eq!(r.body_text(), body, "{path}");
        }
    }
    let r = request(p.port, Some("localhost"), "/a/dir").expect("/a/dir");
    assert_eq!(r.status, 301, "{}", p.logs());
    assert_eq!(
        r.header("location"),
        Some(format!("http://localhost:{}/a/dir/", p.port).as_str())
    );
}
