//! nginx's stub_status over real sockets with two workers: the figures are the sum of all
//! workers (idle, reading and writing connections wherever they were accepted), totals
//! survive a reload, and `$connections_*` give the same figures.

use proton_tests::{get, request, wait_until, Proton, TempDir};
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

const CONF: &str = r#"
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{port};
        location / { return 200 "active=$connections_active waiting=$connections_waiting\n"; }
        location /stub { stub_status; }
        location /gen { return 200 "GEN"; }
    }
}
"#;

#[derive(Debug, PartialEq, Eq, Default, Clone, Copy)]
struct Figures {
    active: u64,
    accepts: u64,
    handled: u64,
    requests: u64,
    reading: u64,
    writing: u64,
    waiting: u64,
}

/// Reads the page as a tool would (nginx's exact layout, spaces included).
fn figures(port: u16) -> Figures {
    let (status, body) = get(port, Some("localhost"), "/stub");
    assert_eq!(status, 200, "{body}");
    let lines: Vec<&str> = body.split('\n').collect();
    assert_eq!(lines.len(), 5, "{body:?}");
    assert_eq!(lines[1], "server accepts handled requests", "{body:?}");
    assert_eq!(lines[4], "", "{body:?}");
    let nums = |l: &str| -> Vec<u64> { l.split(' ').filter_map(|w| w.parse().ok()).collect() };
    let active = lines[0]
        .strip_prefix("Active connections: ")
        .and_then(|r| r.strip_suffix(' '))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{body:?}"));
    let t = nums(lines[2]);
    assert!(
        lines[2].starts_with(' ') && lines[2].ends_with(' '),
        "{body:?}"
    );
    let s = nums(lines[3]);
    assert!(
        lines[3].starts_with("Reading: ") && lines[3].ends_with(' '),
        "{body:?}"
    );
    assert_eq!((t.len(), s.len()), (3, 3), "{body:?}");
    Figures {
        active,
        accepts: t[0],
        handled: t[1],
        requests: t[2],
        reading: s[0],
        writing: s[1],
        waiting: s[2],
    }
}

#[test]
fn stub_status_sums_every_worker_and_keeps_totals_over_a_reload() {
    let t = TempDir::new("stub");
    let p = Proton::start(t.path(), CONF, 2);
    let port = p.port;
    // Alone (once the harness's readiness probe is seen closed by its worker): the page's
    // own connection, reading nothing, writing itself.
    let mut f = Figures::default();
    let alone = wait_until(Duration::from_secs(10), || {
        f = figures(port);
        (f.active, f.reading, f.writing, f.waiting) == (1, 0, 1, 0)
    });
    assert!(alone, "{f:?}");
    // (The harness's readiness probe connected without a request: accepts may be ahead.)
    assert!(
        f.accepts == f.handled && f.requests >= 1 && f.accepts >= f.requests,
        "{f:?}"
    );
    // Four idle connections and one that has sent half a request head, spread over the
    // workers by the kernel: every worker's connections are in the sum.
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect"))
        .collect();
    let mut half = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let mut last = Figures::default();
    let seen = wait_until(Duration::from_secs(10), || {
        last = figures(port);
        (last.active, last.reading, last.writing, last.waiting) == (6, 1, 1, 4)
    });
    assert!(
        seen,
        "6 active, 1 reading, 1 writing, 4 waiting expected: {last:?}"
    );
    // The same figures as variables.
    let r = request(port, Some("localhost"), "/").expect("request");
    assert_eq!(r.body_text(), "active=6 waiting=4\n");
    drop(idle);
    drop(half);
    let seen = wait_until(Duration::from_secs(10), || {
        last = figures(port);
        (last.active, last.reading, last.waiting) == (1, 0, 0)
    });
    assert!(seen, "back to the page's own connection: {last:?}");
    let before = last;
    // A reload: new workers, the same totals going on.
    p.compile(&CONF.replace("GEN", "GEN2"));
    p.signal("HUP");
    assert!(wait_until(Duration::from_secs(20), || {
        get(port, Some("localhost"), "/gen").1 == "GEN2"
    }));
    let seen = wait_until(Duration::from_secs(10), || {
        last = figures(port);
        last.active == 1
    });
    assert!(seen, "the old workers' connections are gone: {last:?}");
    assert!(
        last.accepts > before.accepts && last.requests > before.requests,
        "totals went on: {before:?} then {last:?}"
    );
    // Only GET and HEAD.
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.write_all(b"POST /stub HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        .expect("write");
    let r = proton_tests::split_responses(&read_all(s));
    assert_eq!(r.first().map(|r| r.status), Some(405));
}

fn read_all(mut s: TcpStream) -> Vec<u8> {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}
