//! `resolver` and `resolver_timeout`: the names of a `proxy_pass` with variables are asked of
//! a DNS server without blocking the worker. The server is [`Dns`], a small authoritative
//! server in this file on a loopback UDP port (and TCP on the same port number), which counts
//! the queries it gets; the origin is `proton-testbackend`.

use proton_tests::{request, Backend, Proton, Response, TempDir};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::request_body::{conf, error_log};

/// Queries received: (name, qtype, over TCP) → count.
type Counts = Arc<Mutex<HashMap<(String, u16, bool), usize>>>;

/// The test's DNS server. Names (in the `test.` zone):
/// - `a.test`: A 127.0.0.1 (TTL 3600), no AAAA;
/// - `two.test`: A 127.0.0.2 then 127.0.0.1 (nothing listens on the first);
/// - `alias.test`: CNAME to `a.test`;
/// - `nx.test`: NXDOMAIN;
/// - `silent.test`: never answered;
/// - `tc.test`: truncated over UDP, A 127.0.0.1 over TCP.
struct Dns {
    port: u16,
    counts: Counts,
    /// What `dyn.test` answers (TTL 1 s): its A records, or an error code.
    dynamic: Dynamic,
}

/// The answer of `dyn.test`.
type Dynamic = Arc<Mutex<Result<Vec<[u8; 4]>, u16>>>;

impl Dns {
    fn start() -> Dns {
        // UDP and TCP on the same port number.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind udp");
            let port = udp.local_addr().expect("udp addr").port();
            if let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                break (udp, tcp);
            }
        };
        let port = udp.local_addr().expect("udp addr").port();
        let counts: Counts = Arc::default();
        let dynamic: Dynamic = Arc::new(Mutex::new(Ok(Vec::new())));
        let c = counts.clone();
        let dy = dynamic.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                if let Some(reply) = answer(&buf[..n], false, &c, &dy) {
                    let _ = udp.send_to(&reply, from);
                }
            }
        });
        let c = counts.clone();
        let dy = dynamic.clone();
        std::thread::spawn(move || {
            for s in tcp.incoming() {
                let Ok(mut s) = s else { continue };
                let c = c.clone();
                let dy = dy.clone();
                std::thread::spawn(move || loop {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut q).is_err() {
                        return;
                    }
                    if let Some(reply) = answer(&q, true, &c, &dy) {
                        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&reply);
                        let _ = s.write_all(&framed);
                    }
                });
            }
        });
        Dns {
            port,
            counts,
            dynamic,
        }
    }

    /// Makes `dyn.test` answer `to` from now on.
    fn set_dynamic(&self, to: Result<Vec<[u8; 4]>, u16>) {
        *self.dynamic.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    fn count(&self, name: &str, qtype: u16, tcp: bool) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .get(&(name.to_string(), qtype, tcp))
            .copied()
            .unwrap_or(0)
    }
}

const A: u16 = 1;
const CNAME: u16 = 5;

/// The reply to query `q` (`None`: no reply).
fn answer(q: &[u8], tcp: bool, counts: &Counts, dynamic: &Dynamic) -> Option<Vec<u8>> {
    // The question: labels from byte 12, then type and class.
    let mut i = 12;
    let mut labels = Vec::new();
    while let Some(&len) = q.get(i) {
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + len as usize)?).to_string());
        i += 1 + len as usize;
    }
    let question_end = i + 5;
    let name = labels.join(".").to_ascii_lowercase();
    let qtype = u16::from_be_bytes([*q.get(i + 1)?, *q.get(i + 2)?]);
    *counts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((name.clone(), qtype, tcp))
        .or_default() += 1;
    let mut rcode = 0u16;
    let mut trunc = false;
    let mut records: Vec<Vec<u8>> = Vec::new();
    let a = |ip: [u8; 4]| {
        let mut r = vec![0xc0, 12];
        r.extend_from_slice(&A.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
        r.extend_from_slice(&ip);
        r
    };
    match name.as_str() {
        "a.test" if qtype == A => records.push(a([127, 0, 0, 1])),
        "two.test" if qtype == A => {
            records.push(a([127, 0, 0, 2]));
            records.push(a([127, 0, 0, 1]));
        }
        "alias.test" => {
            let mut r = vec![0xc0, 12];
            r.extend_from_slice(&CNAME.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10, 0, 8]);
            r.extend_from_slice(b"\x01a\x04test\x00");
            records.push(r);
        }
        "nx.test" => rcode = 3,
        "dyn.test" if qtype == A => {
            match &*dynamic.lock().unwrap_or_else(|e| e.into_inner()) {
                Ok(ips) => {
                    for &ip in ips {
                        let mut r = a(ip);
                        // TTL 1 s.
                        r[6..10].copy_from_slice(&1u32.to_be_bytes());
                        records.push(r);
                    }
                }
                Err(code) => rcode = *code,
            }
        }
        "silent.test" => return None,
        "tc.test" if !tcp => trunc = true,
        "tc.test" if qtype == A => records.push(a([127, 0, 0, 1])),
        _ => {}
    }
    let mut reply = q.get(..question_end)?.to_vec();
    let flags: u16 = 0x8180 | rcode | if trunc { 0x0200 } else { 0 };
    reply[2..4].copy_from_slice(&flags.to_be_bytes());
    reply[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
    for r in records {
        reply.extend_from_slice(&r);
    }
    Some(reply)
}

fn get(p: &Proton, path: &str) -> Response {
    request(p.port, Some("front.test"), path)
        .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", p.logs()))
}

fn start(t: &TempDir, dns: &Dns, backend: &Backend) -> Proton {
    let (d, b) = (dns.port, backend.port);
    let http = format!(
        "server {{\n\
           listen 127.0.0.1:{{port}};\n\
           location / {{\n\
             resolver 127.0.0.1:{d} ipv6=off;\n\
             resolver_timeout 1s;\n\
             proxy_pass http://$arg_h:{b}/id;\n\
             add_header X-Up $upstream_addr always;\n\
           }}\n\
           location /aaaa {{\n\
             resolver 127.0.0.1:{d};\n\
             proxy_pass http://$arg_h:{b}/id;\n\
           }}\n\
           location /none {{\n\
             proxy_pass http://$arg_h:{b}/id;\n\
           }}\n\
         }}"
    );
    Proton::start(t.path(), &conf(&http), 1)
}

#[test]
fn names_are_resolved_cached_and_retried() {
    let t = TempDir::new("resolver");
    let dns = Dns::start();
    let backend = Backend::start("origin");
    let p = start(&t, &dns, &backend);
    let b = backend.port;

    // Resolved, then served from the cache (one question asked).
    for _ in 0..3 {
        let r = get(&p, "/?h=a.test");
        assert_eq!(r.status, 200, "{}", p.logs());
        assert_eq!(r.header("x-backend"), Some("origin"));
        assert_eq!(r.header("x-up"), Some(format!("127.0.0.1:{b}").as_str()));
    }
    assert_eq!(dns.count("a.test", A, false), 1);
    // The resolver's cache is its own: a name in another case, or with the root's dot, is
    // the same name.
    assert_eq!(get(&p, "/?h=A.Test").status, 200);
    assert_eq!(get(&p, "/?h=a.test.").status, 200, "{}", p.logs());
    assert_eq!(dns.count("a.test", A, false), 1);
    // ipv6=off: no AAAA question; without it both are asked.
    assert_eq!(dns.count("a.test", 28, false), 0);
    assert_eq!(get(&p, "/aaaa?h=a.test").status, 200);
    assert_eq!(dns.count("a.test", 28, false), 1);

    // Every address is a server: the first refuses, the second answers.
    let r = get(&p, "/?h=two.test");
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(
        r.header("x-up"),
        Some(format!("127.0.0.2:{b}, 127.0.0.1:{b}").as_str())
    );

    // A CNAME is followed.
    assert_eq!(get(&p, "/?h=alias.test").status, 200, "{}", p.logs());

    // A truncated answer is asked again over TCP.
    assert_eq!(get(&p, "/?h=tc.test").status, 200, "{}", p.logs());
    assert_eq!(dns.count("tc.test", A, true), 1);
}

#[test]
fn failures_are_502_with_nginx_lines() {
    let t = TempDir::new("resolver-fail");
    let dns = Dns::start();
    let backend = Backend::start("origin");
    let p = start(&t, &dns, &backend);

    // NXDOMAIN: not cached, each request asks again.
    for n in 1..=2 {
        assert_eq!(get(&p, "/?h=nx.test").status, 502);
        assert_eq!(dns.count("nx.test", A, false), n);
    }
    // No answer: 502 once resolver_timeout (1 s) passed; the worker serves others meanwhile.
    let slow = std::thread::spawn({
        let port = p.port;
        move || request(port, Some("front.test"), "/?h=silent.test")
    });
    assert!(proton_tests::wait_until(Duration::from_secs(10), || {
        dns.count("silent.test", A, false) > 0
    }));
    assert_eq!(
        get(&p, "/?h=a.test").status,
        200,
        "served while a name is pending"
    );
    let r = slow.join().expect("join").expect("slow request");
    assert_eq!(r.status, 502);
    // No resolver in the location: 502 at once.
    assert_eq!(get(&p, "/none?h=a.test").status, 502);

    let log = error_log(&t);
    for line in [
        "nx.test could not be resolved (3: Host not found)",
        "silent.test could not be resolved (110: Operation timed out)",
        "no resolver defined to resolve a.test",
    ] {
        assert!(log.contains(line), "no {line:?} in:\n{log}");
    }
}

/// A tiny origin on `ip:port` answering every request with `name`, keeping connections
/// open (HTTP/1.1). `/slow` is answered after `slow` is set by the test (and sets `slow_seen`
/// when it arrives).
fn origin(
    ip: Ipv4Addr,
    port: u16,
    name: &'static str,
    slow: Arc<std::sync::atomic::AtomicBool>,
    slow_seen: Arc<std::sync::atomic::AtomicBool>,
) -> Option<()> {
    use std::sync::atomic::Ordering;
    let l = TcpListener::bind((ip, port)).ok()?;
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let (slow, slow_seen) = (slow.clone(), slow_seen.clone());
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                        return;
                    };
                    if head.starts_with(b"GET /slow") {
                        slow_seen.store(true, Ordering::SeqCst);
                        proton_tests::wait_until(Duration::from_secs(20), || {
                            slow.load(Ordering::SeqCst)
                        });
                    }
                    head.drain(..end + 4);
                    let sent = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
                        name.len()
                    );
                    if sent.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Some(())
}

/// Two origins on one port, at 127.0.0.1 and 127.0.0.2; their `/slow` answers once `slow`
/// is set, and sets `slow_seen` when it arrives.
fn two_origins(
    slow: &Arc<std::sync::atomic::AtomicBool>,
    slow_seen: &Arc<std::sync::atomic::AtomicBool>,
) -> u16 {
    loop {
        let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        if origin(
            Ipv4Addr::new(127, 0, 0, 1),
            port,
            "one",
            slow.clone(),
            slow_seen.clone(),
        )
        .is_some()
            && origin(
                Ipv4Addr::new(127, 0, 0, 2),
                port,
                "two",
                slow.clone(),
                slow_seen.clone(),
            )
            .is_some()
        {
            return port;
        }
    }
}

/// `server … resolve`: the name's addresses are found at run time and followed as they
/// change; an error answer keeps them; a reload keeps them until the next answer; an empty
/// answer leaves the server without peers.
#[test]
fn upstream_names_are_resolved_again_as_they_change() {
    let t = TempDir::new("upstream-resolve");
    let dns = Dns::start();
    let go: Arc<std::sync::atomic::AtomicBool> = Arc::new(true.into());
    let port = two_origins(&go, &Arc::default());
    dns.set_dynamic(Ok(vec![[127, 0, 0, 1]]));
    let d = dns.port;
    let http = format!(
        "resolver 127.0.0.1:{d} valid=1s ipv6=off;\n\
         resolver_timeout 1s;\n\
         upstream u {{ zone u 64k; server dyn.test:{port} resolve max_fails=0; }}\n\
         server {{\n\
           listen 127.0.0.1:{{port}};\n\
           location / {{ proxy_pass http://u; add_header X-Up $upstream_addr always; }}\n\
         }}"
    );
    let p = Proton::start(t.path(), &conf(&http), 2);
    let body = |p: &Proton| {
        let r = request(p.port, Some("x"), "/").unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
        (r.status, r.body_text())
    };
    // Whether six requests in a row come to exactly the `want` origins (within 15 s); when
    // not, the panic says what they came to last.
    let seen = |p: &Proton, want: &[&str]| {
        let mut last = std::collections::BTreeSet::new();
        let ok = proton_tests::wait_until(Duration::from_secs(15), || {
            last = (0..6).map(|_| body(p)).collect();
            last.iter()
                .map(|(_, b)| b.as_str())
                .eq(want.iter().copied())
        });
        assert!(
            ok,
            "wanted {want:?}, the last six answers: {last:?}\n{}",
            p.logs()
        );
        true
    };
    // The first answer (at start), in both workers.
    assert!(seen(&p, &["one"]), "{}", p.logs());
    // The record changes: the new address replaces the old one.
    dns.set_dynamic(Ok(vec![[127, 0, 0, 2]]));
    assert!(seen(&p, &["two"]), "{}", p.logs());
    // Two addresses: both serve.
    dns.set_dynamic(Ok(vec![[127, 0, 0, 1], [127, 0, 0, 2]]));
    assert!(seen(&p, &["one", "two"]), "{}", p.logs());
    // A failing DNS server: the addresses stay (after a query that got the error).
    dns.set_dynamic(Err(2));
    let asked = dns.count("dyn.test", A, false);
    assert!(proton_tests::wait_until(Duration::from_secs(10), || dns
        .count("dyn.test", A, false)
        > asked + 1));
    assert!(seen(&p, &["one", "two"]), "{}", p.logs());
    assert!(error_log(&t).contains("dyn.test could not be resolved (2: Server failure)"));
    // A reload while the DNS server fails: the new workers start with the known addresses.
    let old = p.workers();
    p.signal("HUP");
    assert!(proton_tests::wait_until(Duration::from_secs(20), || {
        let now = p.workers();
        now.len() == 2 && now.iter().all(|w| !old.contains(w))
    }));
    for _ in 0..6 {
        assert_eq!(body(&p).0, 200, "{}", p.logs());
    }
    // No records: no peer left (502, no live upstreams).
    dns.set_dynamic(Ok(Vec::new()));
    // (Each worker takes the change at its next sweep: wait until both have.)
    let no_peer = || {
        (0..6).all(|_| {
            request(p.port, Some("x"), "/")
                .is_ok_and(|r| r.status == 502 && r.header("x-up") == Some("u"))
        })
    };
    assert!(
        proton_tests::wait_until(Duration::from_secs(15), no_peer),
        "{}",
        p.logs()
    );
}

/// Keep-alive connections follow the name: one that was busy when the address changed is
/// not kept for the new address (it goes to the old server).
#[test]
fn upstream_keepalive_connections_follow_the_name() {
    use std::sync::atomic::Ordering;
    let t = TempDir::new("upstream-resolve-ka");
    let dns = Dns::start();
    let release: Arc<std::sync::atomic::AtomicBool> = Arc::default();
    let slow_seen: Arc<std::sync::atomic::AtomicBool> = Arc::default();
    let port = two_origins(&release, &slow_seen);
    dns.set_dynamic(Ok(vec![[127, 0, 0, 1]]));
    let d = dns.port;
    let http = format!(
        "resolver 127.0.0.1:{d} valid=1s ipv6=off;\n\
         upstream u {{ zone u 64k; server dyn.test:{port} resolve; keepalive 4; }}\n\
         server {{\n\
           listen 127.0.0.1:{{port}};\n\
           location / {{ proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n\
         }}"
    );
    let p = Proton::start(t.path(), &conf(&http), 1);
    let body = |p: &Proton, path: &str| {
        request(p.port, Some("x"), path)
            .map(|r| r.body_text())
            .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()))
    };
    assert!(
        proton_tests::wait_until(Duration::from_secs(15), || body(&p, "/") == "one"),
        "{}",
        p.logs()
    );
    // A request in flight to 127.0.0.1 while the name moves to 127.0.0.2.
    let port_p = p.port;
    let slow =
        std::thread::spawn(move || request(port_p, Some("x"), "/slow").map(|r| r.body_text()));
    assert!(proton_tests::wait_until(Duration::from_secs(10), || {
        slow_seen.load(Ordering::SeqCst)
    }));
    dns.set_dynamic(Ok(vec![[127, 0, 0, 2]]));
    assert!(
        proton_tests::wait_until(Duration::from_secs(15), || body(&p, "/") == "two"),
        "{}",
        p.logs()
    );
    release.store(true, Ordering::SeqCst);
    let slow = slow.join().expect("slow request").expect("answer");
    assert_eq!(slow, "one");
    // Its connection (to the old address) is not reused for the new one.
    for _ in 0..8 {
        assert_eq!(body(&p, "/"), "two", "{}", p.logs());
    }
}
