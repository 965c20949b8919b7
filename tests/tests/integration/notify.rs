//! systemd's readiness protocol: with `NOTIFY_SOCKET` naming a datagram socket, the master
//! says READY=1 (and its pid) once it serves, RELOADING=1 with the monotonic clock and then
//! READY=1 around a HUP reload, and STOPPING=1 on QUIT — what a `Type=notify` (or
//! `notify-reload`) unit waits for.

use proton_tests::{get, Proton, TempDir};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

const CONF: &str = "events {}\nhttp { access_log off; server { listen 127.0.0.1:{port}; location / { return 200 \"up\"; } } }\n";

/// Reads datagrams until one satisfies `want` (returned) or `deadline` passes (panics with
/// everything read so far).
fn wait_message(sock: &UnixDatagram, deadline: Duration, want: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + deadline;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no matching notification within {deadline:?}; got {seen:?}"
        );
        sock.set_read_timeout(Some(left)).expect("read timeout");
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if want(&msg) {
                    return msg;
                }
                seen.push(msg);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("recv on the notify socket: {e}"),
        }
    }
}

fn field<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

#[test]
fn master_tells_systemd_ready_reloading_and_stopping() {
    let t = TempDir::new("notify");
    let sock_path = t.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
    let path = sock_path.display().to_string();
    let mut p = Proton::start_with_env(t.path(), CONF, 2, &[("NOTIFY_SOCKET", &path)]);
    let limit = Duration::from_secs(20);

    let ready = wait_message(&sock, limit, |m| field(m, "READY") == Some("1"));
    assert_eq!(
        field(&ready, "MAINPID"),
        Some(p.pid().to_string().as_str()),
        "{ready}"
    );
    assert_eq!(get(p.port, None, "/"), (200, "up".to_string()));

    p.signal("HUP");
    let reloading = wait_message(&sock, limit, |m| field(m, "RELOADING") == Some("1"));
    let usec: u64 = field(&reloading, "MONOTONIC_USEC")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec > 0);
    let ready = wait_message(&sock, limit, |m| field(m, "READY") == Some("1"));
    assert!(
        field(&ready, "STATUS").is_some_and(|s| s.contains("generation 2")),
        "{ready}\n{}",
        p.logs()
    );
    assert_eq!(get(p.port, None, "/"), (200, "up".to_string()));

    p.signal("QUIT");
    wait_message(&sock, limit, |m| field(m, "STOPPING") == Some("1"));
    assert!(p.wait_exit(limit), "the master did not exit\n{}", p.logs());
}

/// A NOTIFY_SOCKET nobody listens on costs one warning in the error log, nothing more.
#[test]
fn unreachable_notify_socket_is_reported_once() {
    let t = TempDir::new("notify-gone");
    let path = t.path().join("nobody.sock").display().to_string();
    let conf = format!("error_log logs/error.log notice;\n{CONF}");
    let p = Proton::start_with_env(t.path(), &conf, 1, &[("NOTIFY_SOCKET", &path)]);
    assert_eq!(get(p.port, None, "/"), (200, "up".to_string()));
    p.signal("HUP");
    let log = t.path().join("logs/error.log");
    let reloaded = proton_tests::wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains("reloaded: generation 2"))
    });
    assert!(reloaded, "{}", p.logs());
    assert_eq!(get(p.port, None, "/"), (200, "up".to_string()));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        text.matches("cannot notify the service manager").count(),
        1,
        "{text}"
    );
}
