//! `limit_req` and `limit_conn` over real sockets, as nginx's modules: rejections with their
//! status and error-log line, burst, `nodelay`, `delay=`, dry runs, `$limit_req_status` and
//! `$limit_conn_status` in the access log, zones shared by the workers and kept across a
//! reload, a full zone (eviction, then "could not allocate node"), and requests in progress
//! counted until they end, whatever the way.
//!
//! Rates are slow (1r/m) where only counting matters, so a slow machine cannot leak the
//! bucket between requests; delays are checked by lower bounds only.

use proton_tests::{request, wait_until, Proton, TempDir};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

fn conf(http: &str) -> String {
    format!(
        "error_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\n\
         log_format lim \"$uri $status $limit_req_status $limit_conn_status $pid\";\n\
         access_log {{dir}}/logs/access.log lim;\n{http}}}\n"
    )
}

fn site(t: &TempDir) -> String {
    let root = t.path().join("html");
    std::fs::create_dir_all(&root).expect("dir");
    std::fs::write(root.join("f"), "file\n").expect("file");
    let big: Vec<u8> = vec![b'x'; 256 * 1024];
    std::fs::write(root.join("big"), big).expect("file");
    root.display().to_string()
}

fn status(port: u16, path: &str) -> u16 {
    request(port, Some("limits.test"), path)
        .map(|r| r.status)
        .unwrap_or(0)
}

fn access_lines(t: &TempDir) -> Vec<String> {
    std::fs::read_to_string(t.path().join("logs/access.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until the access log has `n` lines (a line is written after the response).
fn wait_lines(t: &TempDir, n: usize) -> Vec<String> {
    wait_until(Duration::from_secs(10), || access_lines(t).len() >= n);
    access_lines(t)
}

fn wait_log(p: &Proton, needle: &str) {
    assert!(
        wait_until(Duration::from_secs(10), || p.logs().contains(needle)),
        "no {needle:?} in\n{}",
        p.logs()
    );
}

#[test]
fn limit_req_rejects_over_the_burst() {
    let t = TempDir::new("limit-req");
    let root = site(&t);
    let http = format!(
        r#"
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=two:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=dry:1m rate=1r/m;
    limit_req_zone $arg_k zone=bykey:1m rate=1r/m;
    server {{
        listen 127.0.0.1:{{port}};
        server_name limits.test;
        root {root};
        location /one/ {{ alias {root}/; limit_req zone=one burst=1 nodelay; }}
        location /two/ {{
            alias {root}/;
            limit_req zone=two nodelay;
            limit_req_status 429;
            limit_req_log_level warn;
        }}
        location /dry/ {{ alias {root}/; limit_req zone=dry nodelay; limit_req_dry_run on; }}
        location /key/ {{ alias {root}/; limit_req zone=bykey nodelay; }}
        location /ret {{ limit_req zone=one nodelay; return 200 "rewrite phase first\n"; }}
    }}
"#
    );
    let p = Proton::start(t.path(), &conf(&http), 1);
    // burst=1: the first request and one more, then 503 (the refused one is not counted).
    assert_eq!(status(p.port, "/one/f"), 200);
    assert_eq!(status(p.port, "/one/f"), 200);
    assert_eq!(status(p.port, "/one/f"), 503);
    assert_eq!(status(p.port, "/one/f"), 503);
    wait_log(&p, "[error]");
    wait_log(&p, "limiting requests, excess: ");
    assert!(p.logs().contains(" by zone \"one\", client: 127.0.0.1, server: limits.test, request: \"GET /one/f HTTP/1.1\", host: \"limits.test\""), "{}", p.logs());
    // limit_req_status and limit_req_log_level.
    assert_eq!(status(p.port, "/two/f"), 200);
    assert_eq!(status(p.port, "/two/f"), 429);
    wait_log(&p, "[warn]");
    assert!(p.logs().contains("by zone \"two\""));
    // Dry run: served, counted and logged.
    assert_eq!(status(p.port, "/dry/f"), 200);
    assert_eq!(status(p.port, "/dry/f"), 200);
    wait_log(&p, "limiting requests, dry run, excess: 1.");
    // An empty key is not limited; each key has its own bucket.
    for _ in 0..3 {
        assert_eq!(status(p.port, "/key/f"), 200);
    }
    assert_eq!(status(p.port, "/key/f?k=a"), 200);
    assert_eq!(status(p.port, "/key/f?k=b"), 200);
    assert_eq!(status(p.port, "/key/f?k=a"), 503);
    // `return` answers in the rewrite phase, before limit_req.
    assert_eq!(status(p.port, "/ret"), 200);
    let lines = wait_lines(&t, 15);
    let statuses: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').nth(2).unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        [
            "PASSED",
            "PASSED",
            "REJECTED",
            "REJECTED",
            "PASSED",
            "REJECTED",
            "PASSED",
            "REJECTED_DRY_RUN",
            "-",
            "-",
            "-",
            "PASSED",
            "PASSED",
            "REJECTED",
            "-",
        ],
        "{lines:?}"
    );
}

/// Sends a request and returns when its answer arrived and its status.
fn timed(port: u16, path: &str) -> std::thread::JoinHandle<(Instant, u16)> {
    let path = path.to_string();
    std::thread::spawn(move || {
        let s = status(port, &path);
        (Instant::now(), s)
    })
}

#[test]
fn limit_req_delays_on_timers() {
    let t = TempDir::new("limit-req-delay");
    let root = site(&t);
    let http = format!(
        r#"
    limit_req_zone $binary_remote_addr zone=d:1m rate=2r/s;
    limit_req_zone $binary_remote_addr zone=dl:1m rate=2r/s;
    limit_req_zone $binary_remote_addr zone=dd:1m rate=2r/s;
    server {{
        listen 127.0.0.1:{{port}};
        server_name limits.test;
        location /d/ {{ alias {root}/; limit_req zone=d burst=5; }}
        location /dl/ {{ alias {root}/; limit_req zone=dl burst=5 delay=1; }}
        location /dd/ {{ alias {root}/; limit_req zone=dd burst=5; limit_req_dry_run on; }}
        location /other {{ return 200 "not waiting\n"; }}
    }}
"#
    );
    let p = Proton::start(t.path(), &conf(&http), 1);
    // 2r/s: the second request within the first half second waits the rest of it.
    let start = Instant::now();
    assert_eq!(status(p.port, "/d/f"), 200);
    let second = timed(p.port, "/d/f");
    // The worker is not blocked meanwhile.
    assert_eq!(status(p.port, "/other"), 200);
    let (done, s) = second.join().expect("thread");
    assert_eq!(s, 200);
    assert!(
        done.duration_since(start) >= Duration::from_millis(450),
        "answered after {:?}",
        done.duration_since(start)
    );
    wait_log(&p, "[warn]");
    // The excess is 1 request less what the rate gave back since the first: 0.xxx, or
    // 1.000 when both came within the same millisecond of the worker's clock.
    wait_log(&p, "delaying request, excess: ");
    let logs = p.logs();
    let excess = logs
        .split("delaying request, excess: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(
        excess.is_some_and(|e| e > 0.0 && e <= 1.0),
        "excess {excess:?} in\n{logs}"
    );
    assert!(logs.contains(", by zone \"d\""));
    // delay=1: the first excess request goes at once, the next waits.
    let start = Instant::now();
    assert_eq!(status(p.port, "/dl/f"), 200);
    assert_eq!(status(p.port, "/dl/f"), 200);
    let (done, s) = timed(p.port, "/dl/f").join().expect("thread");
    assert_eq!(s, 200);
    assert!(
        done.duration_since(start) >= Duration::from_millis(450),
        "answered after {:?}",
        done.duration_since(start)
    );
    // Dry run: never waits, logged with ", dry run".
    assert_eq!(status(p.port, "/dd/f"), 200);
    assert_eq!(status(p.port, "/dd/f"), 200);
    wait_log(&p, "delaying request, dry run, excess: ");
    let lines = wait_lines(&t, 8);
    let statuses: Vec<&str> = lines
        .iter()
        .filter(|l| !l.starts_with("/other"))
        .map(|l| l.split(' ').nth(2).unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        [
            "PASSED",
            "DELAYED",
            "PASSED",
            "PASSED",
            "DELAYED",
            "PASSED",
            "DELAYED_DRY_RUN"
        ],
        "{lines:?}"
    );
}

#[test]
fn limit_req_client_gone_while_delayed() {
    let t = TempDir::new("limit-req-gone");
    let root = site(&t);
    let http = format!(
        r#"
    limit_req_zone $binary_remote_addr zone=d:1m rate=1r/m;
    server {{
        listen 127.0.0.1:{{port}};
        server_name limits.test;
        location /d/ {{ alias {root}/; limit_req zone=d burst=5; }}
    }}
"#
    );
    let p = Proton::start(t.path(), &conf(&http), 1);
    assert_eq!(status(p.port, "/d/f"), 200);
    // The next waits a minute; the client leaves: the request ends (499 in the log).
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    s.write_all(b"GET /d/f HTTP/1.1\r\nHost: limits.test\r\n\r\n")
        .expect("write");
    wait_log(&p, "delaying request");
    let _ = s.shutdown(std::net::Shutdown::Both);
    drop(s);
    let lines = wait_lines(&t, 2);
    assert!(
        lines.len() >= 2 && lines[1].contains(" 499 DELAYED"),
        "{lines:?}"
    );
}

#[test]
fn limit_req_is_shared_by_workers_and_kept_across_reload() {
    let t = TempDir::new("limit-req-shared");
    let root = site(&t);
    let http = |gen: u32| {
        format!(
            r#"
    limit_req_zone $binary_remote_addr zone=one:64k rate=1r/m;
    server {{
        listen 127.0.0.1:{{port}};
        server_name limits.test;
        add_header X-Gen {gen} always;
        location / {{ alias {root}/; limit_req zone=one burst=2 nodelay; }}
    }}
"#
        )
    };
    let p = Proton::start(t.path(), &conf(&http(1)), 2);
    // New connections spread over both workers (SO_REUSEPORT); only 3 pass in all.
    let mut passed = 0;
    let mut n = 0;
    let pids = loop {
        n += 1;
        if status(p.port, "/f") == 200 {
            passed += 1;
        }
        let lines = wait_lines(&t, n);
        let mut pids: Vec<String> = lines
            .iter()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .collect();
        pids.sort();
        pids.dedup();
        if (pids.len() >= 2 && n >= 6) || n >= 60 {
            break pids;
        }
    };
    assert_eq!(pids.len(), 2, "one worker served all {n} requests");
    assert_eq!(passed, 3, "{:?}", access_lines(&t));
    // A reload that keeps the zone's name and size keeps its state: the first answer of
    // the new generation is already refused. (While the old workers drain, a request may
    // still reach one of them: those answers say generation 1 and are skipped.)
    p.compile(&conf(&http(2)));
    p.signal("HUP");
    let mut first_new = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            if let Ok(r) = request(p.port, Some("limits.test"), "/f") {
                if r.header("x-gen") == Some("2") {
                    first_new = Some(r.status);
                }
            }
            first_new.is_some()
        }),
        "{}",
        p.logs()
    );
    assert_eq!(first_new, Some(503), "the zone's state was kept");
}

#[test]
fn full_zone_evicts_then_cannot_allocate() {
    let t = TempDir::new("limit-req-full");
    let root = site(&t);
    let http = format!(
        r#"
    large_client_header_buffers 4 64k;
    limit_req_zone $arg_k zone=small:32k rate=1r/m;
    limit_req_zone $http_x_key zone=tiny:32k rate=1r/m;
    server {{
        listen 127.0.0.1:{{port}};
        server_name limits.test;
        location /s/ {{ alias {root}/; limit_req zone=small nodelay; }}
        location /t/ {{ alias {root}/; limit_req zone=tiny nodelay; }}
    }}
"#
    );
    let p = Proton::start(t.path(), &conf(&http), 1);
    assert_eq!(status(p.port, "/s/f?k=first"), 200);
    assert_eq!(status(p.port, "/s/f?k=first"), 503);
    // A 32k zone holds about 480 one-cell entries: 600 more keys push the first out.
    for i in 0..600 {
        assert_eq!(status(p.port, &format!("/s/f?k=key{i}")), 200, "key {i}");
    }
    assert_eq!(status(p.port, "/s/f?k=first"), 200, "{}", p.logs());
    // A key too large for the zone: no node, refused with the status.
    let key = "k".repeat(40_000);
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s.write_all(
        format!(
            "GET /t/f HTTP/1.1\r\nHost: limits.test\r\nX-Key: {key}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("write");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert!(
        raw.starts_with(b"HTTP/1.1 503"),
        "{}",
        String::from_utf8_lossy(&raw[..raw.len().min(200)])
    );
    wait_log(&p, "[alert]");
    wait_log(&p, "could not allocate node in limit_req zone \"tiny\"");
}

#[test]
fn limit_conn_counts_requests_in_progress() {
    let t = TempDir::new("limit-conn");
    let root = site(&t);
    let http = format!(
        r#"
    limit_conn_zone $binary_remote_addr zone=addr:1m;
    limit_conn_zone $binary_remote_addr zone=dry:1m;
    limit_conn_zone $binary_remote_addr zone=err:1m;
    server {{
        listen 127.0.0.1:{{port}};
        server_name limits.test;
        location /c/ {{ alias {root}/; limit_conn addr 1; limit_rate 4k; }}
        location /dry/ {{
            alias {root}/;
            limit_conn dry 1;
            limit_conn_dry_run on;
            limit_conn_status 429;
            limit_conn_log_level warn;
            limit_rate 4k;
        }}
        location /denied {{ limit_conn err 1; deny all; }}
    }}
"#
    );
    let p = Proton::start(t.path(), &conf(&http), 2);
    // One slow download holds the count; another request of the key is refused.
    let mut slow = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    slow.write_all(b"GET /c/big HTTP/1.1\r\nHost: limits.test\r\n\r\n")
        .expect("write");
    let mut first = [0u8; 64];
    let n = slow.read(&mut first).expect("read");
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    assert_eq!(status(p.port, "/c/f"), 503);
    assert_eq!(status(p.port, "/c/f"), 503);
    wait_log(
        &p,
        "limiting connections by zone \"addr\", client: 127.0.0.1",
    );
    // The client leaves: its count goes, the key is served again.
    drop(slow);
    assert!(
        wait_until(Duration::from_secs(20), || status(p.port, "/c/f") == 200),
        "{}",
        p.logs()
    );
    // Dry run: served, logged.
    let mut slow = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    slow.write_all(b"GET /dry/big HTTP/1.1\r\nHost: limits.test\r\n\r\n")
        .expect("write");
    let n = slow.read(&mut first).expect("read");
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    assert_eq!(status(p.port, "/dry/f"), 200);
    wait_log(&p, "[warn]");
    wait_log(&p, "limiting connections, dry run, by zone \"dry\"");
    drop(slow);
    // A request refused later (403) gives its count back too.
    for _ in 0..3 {
        assert_eq!(status(p.port, "/denied"), 403);
    }
    let lines = access_lines(&t);
    let conn: Vec<&str> = lines
        .iter()
        .filter(|l| !l.starts_with("/c/big") && !l.starts_with("/dry/big"))
        .map(|l| l.split(' ').nth(3).unwrap_or(""))
        .collect();
    assert!(conn.starts_with(&["REJECTED", "REJECTED"]), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("/c/f 200 - PASSED")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("/dry/f 200 - REJECTED_DRY_RUN")),
        "{lines:?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("/denied 403 - PASSED"))
            .count(),
        3,
        "{lines:?}"
    );
}
