//! Active health checks through the real proxy: a server that stops answering is taken out
//! of rotation (no request reaches it, even with retries off) and comes back once it passes;
//! a `match` block judges the answer's status, headers and body; and hundreds of checked
//! servers are probed from the worker's event loop, without a thread each, while it serves.

use proton_tests::{dead_port, get, wait_until, Backend, DeadPort, Proton, TempDir};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn conf(b1: u16, b2: u16) -> String {
    format!(
        r#"
worker_processes 2;
error_log {{dir}}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    upstream be {{
        server 127.0.0.1:{b1} max_fails=0;
        server 127.0.0.1:{b2} max_fails=0;
        health_check interval=100ms uri=/id fails=1 passes=1 timeout=500ms;
    }}
    server {{
        listen 127.0.0.1:{{port}};
        location / {{
            proxy_pass http://be;
            proxy_next_upstream off;
        }}
    }}
}}
"#
    )
}

fn error_log(t: &TempDir) -> String {
    std::fs::read_to_string(t.path().join("error.log")).unwrap_or_default()
}

#[test]
fn a_failing_server_is_evicted_and_comes_back() {
    let t = TempDir::new("health");
    let b1 = Backend::start("b1");
    let mut b2 = Backend::start("b2");
    let b2_port = b2.port;
    let proton = Proton::start(t.path(), &conf(b1.port, b2_port), 2);

    // Both serve while healthy.
    let mut seen = std::collections::HashSet::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (status, body) = get(proton.port, None, "/id");
            assert_eq!(status, 200, "{body}");
            seen.insert(body);
            seen.len() == 2
        }),
        "both backends should answer: {seen:?}"
    );

    // b2 dies: the checker marks it down; then no request goes there (retries are off, so
    // a request to it would be a 502).
    b2.kill();
    let down = format!("127.0.0.1:{b2_port} (127.0.0.1:{b2_port}) is down");
    assert!(
        wait_until(Duration::from_secs(10), || error_log(&t).contains(&down)),
        "no 'is down' line:\n{}",
        error_log(&t)
    );
    for _ in 0..60 {
        let (status, body) = get(proton.port, None, "/id");
        assert_eq!((status, body.as_str()), (200, "b1"));
    }

    // b2 returns on the same port: it passes a check and gets traffic again.
    let _b2 = Backend::start_on("b2", b2_port);
    assert!(
        wait_until(Duration::from_secs(10), || error_log(&t).contains(
            &format!("127.0.0.1:{b2_port} (127.0.0.1:{b2_port}) is up again")
        )),
        "no 'is up again' line:\n{}",
        error_log(&t)
    );
    assert!(
        wait_until(Duration::from_secs(10), || get(proton.port, None, "/id").1
            == "b2"),
        "b2 gets no traffic after coming back"
    );
}

/// What a [`FlipBackend`] answers to `/health`.
#[derive(Clone)]
struct HealthAnswer {
    status: u16,
    /// Extra header lines, each ending in CRLF.
    headers: String,
    body: String,
}

impl HealthAnswer {
    fn ok() -> HealthAnswer {
        HealthAnswer {
            status: 200,
            headers: "Content-Type: text/plain\r\n".into(),
            body: "all good".into(),
        }
    }
}

/// A backend on loopback whose `/health` answer the test sets and flips; every other path
/// answers its name. Counts the `/health` requests it got. Stops on drop.
struct FlipBackend {
    port: u16,
    answer: Arc<Mutex<HealthAnswer>>,
    probes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FlipBackend {
    fn start(name: &'static str) -> FlipBackend {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = listener.local_addr().expect("address").port();
        let answer = Arc::new(Mutex::new(HealthAnswer::ok()));
        let probes = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ans, count, done) = (answer.clone(), probes.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(c) = conn else { continue };
                let (ans, count) = (ans.clone(), count.clone());
                std::thread::spawn(move || serve(c, name, &ans, &count));
            }
        });
        FlipBackend {
            port,
            answer,
            probes,
            stop,
        }
    }

    fn set(&self, a: HealthAnswer) {
        *self.answer.lock().unwrap_or_else(|e| e.into_inner()) = a;
    }

    fn probes(&self) -> usize {
        self.probes.load(Ordering::Relaxed)
    }
}

impl Drop for FlipBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

/// One request on `c`: `/health` gets the current answer, anything else the name.
fn serve(mut c: TcpStream, name: &str, answer: &Mutex<HealthAnswer>, probes: &AtomicUsize) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let path = line.split(' ').nth(1).unwrap_or("");
    let out = if path == "/health" {
        probes.fetch_add(1, Ordering::Relaxed);
        let a = answer.lock().unwrap_or_else(|e| e.into_inner()).clone();
        format!(
            "HTTP/1.1 {} X\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            a.status,
            a.headers,
            a.body.len(),
            a.body
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
            name.len()
        )
    };
    let _ = c.write_all(out.as_bytes());
}

fn match_conf(b1: u16, b2: u16) -> String {
    format!(
        r#"
worker_processes 2;
error_log {{dir}}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    upstream be {{
        server 127.0.0.1:{b1} max_fails=0;
        server 127.0.0.1:{b2} max_fails=0;
        health_check interval=100ms uri=/health fails=2 passes=3 timeout=1s match=healthy;
    }}
    match healthy {{
        status 200-299;
        header Content-Type ~ "^text/plain";
        header ! X-Maintenance;
        body !~ "maint(enance)?";
    }}
    server {{
        listen 127.0.0.1:{{port}};
        location / {{
            proxy_pass http://be;
            proxy_next_upstream off;
        }}
    }}
}}
"#
    )
}

/// Occurrences of `needle` in the error log.
fn count(t: &TempDir, needle: &str) -> usize {
    error_log(t).matches(needle).count()
}

/// Waits (15 s at most) for the `n`-th line that says server `port` is down, which must
/// give `reason`; returns how many `/health` requests `b` got meanwhile.
fn wait_down(t: &TempDir, b: &FlipBackend, n: usize, reason: &str) -> usize {
    let before = b.probes();
    let down = format!("127.0.0.1:{0} (127.0.0.1:{0}) is down", b.port);
    assert!(
        wait_until(Duration::from_secs(15), || count(t, &down) >= n),
        "no 'is down' line number {n}:\n{}",
        error_log(t)
    );
    let log = error_log(t);
    let line = log
        .lines()
        .filter(|l| l.contains(&down))
        .nth(n - 1)
        .unwrap_or_default();
    assert!(
        line.contains("is down: 2 failed health check(s) of /health, last: ")
            && line.contains(reason),
        "{line:?} does not give {reason:?}"
    );
    b.probes() - before
}

/// Waits (15 s at most) for the `n`-th line that says server `port` is up again; returns how
/// many `/health` requests `b` got meanwhile.
fn wait_up(t: &TempDir, b: &FlipBackend, n: usize) -> usize {
    let before = b.probes();
    let up = format!(
        "127.0.0.1:{0} (127.0.0.1:{0}) is up again: 3 passed health check(s) of /health",
        b.port
    );
    assert!(
        wait_until(Duration::from_secs(15), || count(t, &up) >= n),
        "no 'is up again' line number {n}:\n{}",
        error_log(t)
    );
    b.probes() - before
}

/// Only b1 answers, `n` times in a row (retries are off: a request sent to b2 would get
/// b2's name).
fn only_b1(port: u16, n: usize) {
    for _ in 0..n {
        let (status, body) = get(port, None, "/id");
        assert_eq!((status, body.as_str()), (200, "b1"));
    }
}

/// A `match` block takes a server out when the body, a header or the status of its health
/// answer fails a test (after `fails` failures), and `passes` passes bring it back.
#[test]
fn a_match_block_takes_a_server_out_and_passes_bring_it_back() {
    let t = TempDir::new("health-match");
    let b1 = FlipBackend::start("b1");
    let b2 = FlipBackend::start("b2");
    let proton = Proton::start(t.path(), &match_conf(b1.port, b2.port), 2);
    let up = format!("127.0.0.1:{0} (127.0.0.1:{0}) is up:", b2.port);
    assert!(
        wait_until(Duration::from_secs(15), || count(&t, &up) == 1),
        "b2 is never confirmed up:\n{}",
        error_log(&t)
    );
    let mut seen = std::collections::HashSet::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            seen.insert(get(proton.port, None, "/id").1);
            seen.len() == 2
        }),
        "both backends should answer: {seen:?}"
    );

    // The body says maintenance (status and headers are fine).
    b2.set(HealthAnswer {
        body: "down for maintenance".into(),
        ..HealthAnswer::ok()
    });
    let probes = wait_down(
        &t,
        &b2,
        1,
        "status 200, match \"healthy\" failed: body !~ \"maint(enance)?\"",
    );
    assert!(probes >= 2, "down after {probes} probe(s), fails=2");
    only_b1(proton.port, 40);
    b2.set(HealthAnswer::ok());
    let probes = wait_up(&t, &b2, 1);
    assert!(probes >= 3, "up after {probes} probe(s), passes=3");
    assert!(
        wait_until(Duration::from_secs(10), || get(proton.port, None, "/id").1
            == "b2"),
        "b2 gets no traffic after coming back"
    );

    // A header that must be absent.
    b2.set(HealthAnswer {
        headers: "Content-Type: text/plain\r\nX-Maintenance: on\r\n".into(),
        ..HealthAnswer::ok()
    });
    wait_down(&t, &b2, 2, "failed: header ! x-maintenance");
    only_b1(proton.port, 20);
    b2.set(HealthAnswer::ok());
    wait_up(&t, &b2, 2);

    // A header value that does not match.
    b2.set(HealthAnswer {
        headers: "Content-Type: application/json\r\n".into(),
        ..HealthAnswer::ok()
    });
    wait_down(&t, &b2, 3, "failed: header content-type ~ \"^text/plain\"");
    b2.set(HealthAnswer::ok());
    wait_up(&t, &b2, 3);

    // A status out of the range (a 3xx passes without `match`, not with this one).
    b2.set(HealthAnswer {
        status: 302,
        ..HealthAnswer::ok()
    });
    wait_down(
        &t,
        &b2,
        4,
        "status 302, match \"healthy\" failed: status 200-299",
    );
    only_b1(proton.port, 20);
    // b1 was never taken out.
    let b1_down = format!("127.0.0.1:{0} (127.0.0.1:{0}) is down", b1.port);
    assert_eq!(count(&t, &b1_down), 0, "{}", error_log(&t));
}

/// Threads of process `pid` (`Threads:` of /proc/PID/status).
fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Threads: line in /proc/{pid}/status"))
}

/// 300 checked servers that refuse connections, and one that works: the worker probes them
/// all (each is reported down) from its event loop — its thread count stays that of a
/// single-threaded worker — and serves requests to the working server all along.
#[test]
fn hundreds_of_servers_are_probed_without_a_thread_each() {
    const DEAD: usize = 300;
    let t = TempDir::new("health-many");
    let live = Backend::start("live");
    let dead: Vec<DeadPort> = (0..DEAD).map(|_| dead_port()).collect();
    let servers: String = dead
        .iter()
        .map(|d| format!("        server 127.0.0.1:{} max_fails=0;\n", d.port))
        .collect();
    let conf = format!(
        r#"
worker_processes 1;
error_log {{dir}}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log off;
    upstream dead {{
{servers}        health_check interval=1s fails=1 timeout=1s;
    }}
    upstream live {{
        server 127.0.0.1:{live_port};
        health_check interval=200ms uri=/id;
    }}
    server {{
        listen 127.0.0.1:{{port}};
        location / {{ proxy_pass http://live; }}
        location /dead {{ proxy_pass http://dead; }}
    }}
}}
"#,
        live_port = live.port
    );
    let proton = Proton::start(t.path(), &conf, 1);
    let worker = proton.the_worker();
    let all_down = || {
        let log = error_log(&t);
        dead.iter()
            .filter(|d| log.contains(&format!("127.0.0.1:{0} (127.0.0.1:{0}) is down", d.port)))
            .count()
    };
    let mut served = 0;
    assert!(
        wait_until(Duration::from_secs(30), || {
            let (status, body) = get(proton.port, None, "/id");
            assert_eq!((status, body.as_str()), (200, "live"));
            served += 1;
            all_down() == DEAD
        }),
        "only {} of {DEAD} dead servers reported down:\n{}",
        all_down(),
        proton.logs()
    );
    // Still serving, and still probing (the live server keeps passing).
    for _ in 0..50 {
        let (status, body) = get(proton.port, None, "/id");
        assert_eq!((status, body.as_str()), (200, "live"));
    }
    assert!(served > 0);
    assert_eq!(proton.the_worker(), worker, "the worker was replaced");
    let n = threads(worker);
    assert!(
        n <= 4,
        "the worker has {n} threads while checking {} servers",
        DEAD + 1
    );
    let log = error_log(&t);
    assert!(
        log.contains(&format!(
            "upstream \"dead\" server 127.0.0.1:{0} (127.0.0.1:{0}) is down: 1 failed health check(s) of /, last: connect failed: Connection refused",
            dead[0].port
        )),
        "{log}"
    );
    assert!(!log.contains("health check of upstream"), "{log}");
}

/// A reload keeps what the workers learnt of the servers both configurations have: a
/// server that failed (`max_fails`) is not tried again by the new workers within its
/// `fail_timeout`, and a server the health checks found down stays out of rotation.
#[test]
fn a_reload_keeps_failed_and_down_servers_out() {
    let t = TempDir::new("health-reload");
    let b1 = Backend::start("b1");
    let dead = dead_port();
    let mut b3 = Backend::start("b3");
    let conf = format!(
        r#"
worker_processes 1;
error_log {{dir}}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    upstream passive {{
        server 127.0.0.1:{dead} max_fails=1 fail_timeout=300s;
        server 127.0.0.1:{b1} max_fails=0;
    }}
    upstream active {{
        server 127.0.0.1:{b1} max_fails=0;
        server 127.0.0.1:{b3} max_fails=0;
        health_check interval=100ms uri=/id fails=1 passes=1 timeout=500ms;
    }}
    server {{
        listen 127.0.0.1:{{port}};
        location /passive/ {{ proxy_pass http://passive/; }}
        location /active/ {{ proxy_pass http://active/; proxy_next_upstream off; }}
    }}
}}
"#,
        dead = dead.port,
        b1 = b1.port,
        b3 = b3.port
    );
    let proton = Proton::start(t.path(), &conf, 1);
    let refused = |t: &TempDir| error_log(t).matches("connect() failed").count();

    // The dead server fails once, then is left alone for fail_timeout.
    for _ in 0..4 {
        let (status, body) = get(proton.port, None, "/passive/id");
        assert_eq!((status, body.as_str()), (200, "b1"));
    }
    assert_eq!(refused(&t), 1, "{}", error_log(&t));
    // b3 stops: its checks fail and it is taken out.
    b3.kill();
    assert!(
        wait_until(Duration::from_secs(10), || error_log(&t)
            .contains("is down")),
        "{}",
        error_log(&t)
    );
    let before = refused(&t);

    // A reload of the same configuration: new workers.
    let old = proton.workers();
    proton.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(20), || {
            let now = proton.workers();
            !now.is_empty() && now.iter().all(|w| !old.contains(w))
        }),
        "no new workers: {}",
        proton.logs()
    );
    assert!(
        error_log(&t).contains("upstream state of"),
        "{}",
        error_log(&t)
    );
    // Every request is answered by b1 at once: neither the failed server nor the one the
    // checks found down is tried first.
    for _ in 0..8 {
        assert_eq!(
            get(proton.port, None, "/passive/id"),
            (200, "b1".to_string())
        );
        assert_eq!(
            get(proton.port, None, "/active/id"),
            (200, "b1".to_string())
        );
    }
    let failed_after = refused(&t) - before;
    // (The health checker of the new worker probes b3 and fails; those lines say
    // "while checking", not "while connecting to upstream".)
    let log = error_log(&t);
    let proxied_failures = log
        .lines()
        .filter(|l| l.contains("connect() failed") && l.contains("while connecting to upstream"))
        .count();
    assert_eq!(proxied_failures, 1, "{failed_after} new refusals:\n{log}");

    // Without health checks in the next configuration, b3's old verdict is not carried (no
    // checker would ever revise it): once b3 is back, it serves again.
    let b3_port = b3.port;
    let _b3 = Backend::start_on("b3", b3_port);
    let unchecked = conf.replace(
        "health_check interval=100ms uri=/id fails=1 passes=1 timeout=500ms;",
        "",
    );
    assert_ne!(unchecked, conf);
    proton.compile(&unchecked);
    let old = proton.workers();
    proton.signal("HUP");
    assert!(wait_until(Duration::from_secs(20), || {
        let now = proton.workers();
        !now.is_empty() && now.iter().all(|w| !old.contains(w))
    }));
    assert!(
        wait_until(Duration::from_secs(10), || get(
            proton.port,
            None,
            "/active/id"
        )
        .1 == "b3"),
        "b3 stays out after a reload without health checks:\n{}",
        error_log(&t)
    );
}
