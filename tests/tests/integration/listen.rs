//! `listen` parameters over a real proton-run: port ranges, socket options the kernel
//! reports (so_keepalive, rcvbuf/sndbuf, deferred), and `ipv6only=off`.

use proton_tests::*;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

/// `ss` output for sockets on local port `port` in `state` (e.g. `listening`).
fn ss(args: &[&str], port: u16) -> String {
    let out = Command::new("ss")
        .args(args)
        .arg(format!("sport = :{port}"))
        .output()
        .expect("ss runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two consecutive free ports on loopback.
fn free_pair() -> u16 {
    for _ in 0..50 {
        let p = free_port();
        if p < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports");
}

#[test]
fn a_port_range_listens_on_every_port() {
    let t = TempDir::new("listen-range");
    let r = free_pair();
    let conf = format!(
        r#"
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{{port}};
        listen 127.0.0.1:{r}-{r2};
        location / {{ return 200 "$server_port"; }}
    }}
}}
"#,
        r2 = r + 1
    );
    let p = Proton::start(t.path(), &conf, 1);
    for port in [p.port, r, r + 1] {
        let ok = wait_until(Duration::from_secs(10), || {
            request(port, None, "/").is_ok_and(|x| x.body_text() == port.to_string())
        });
        assert!(ok, "port {port} not served\n{}", p.logs());
    }
}

#[test]
fn socket_options_reach_the_sockets() {
    let t = TempDir::new("listen-opts");
    let conf = r#"
events {}
http {
    access_log off;
    client_header_timeout 5s;
    server {
        listen 127.0.0.1:{port} rcvbuf=64k sndbuf=96k so_keepalive=17m:9s:4 deferred;
        location / { return 200 "ok"; }
    }
}
"#;
    let p = Proton::start(t.path(), conf, 1);
    // Buffer sizes of the listening socket (the kernel doubles what was set).
    let listening = ss(&["-ltnmH"], p.port);
    assert!(
        listening.contains("rb131072") && listening.contains("tb196608"),
        "{listening}"
    );
    // TCP_DEFER_ACCEPT: a connection that sends nothing is not accepted (it stays in
    // SYN-RECV on the server side) …
    let mut idle = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    let deferred = wait_until(Duration::from_secs(5), || {
        !ss(&["-tnH", "state", "syn-recv"], p.port).trim().is_empty()
    });
    assert!(deferred, "{}", ss(&["-tanH"], p.port));
    // … until it sends its request.
    idle.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut idle, &mut body).expect("read");
    assert!(body.ends_with(b"ok"), "{}", String::from_utf8_lossy(&body));
    // so_keepalive: an accepted connection runs the keep-alive timer with 17 minutes.
    let _conn = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    let mut c2 = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    c2.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let seen = wait_until(Duration::from_secs(5), || {
        let s = ss(&["-tnoH", "state", "established"], p.port);
        s.contains("timer:(keepalive,16min") || s.contains("timer:(keepalive,17min")
    });
    assert!(seen, "{}", ss(&["-tnoH", "state", "established"], p.port));
}

#[test]
fn ipv6only_off_takes_ipv4_connections() {
    let t = TempDir::new("listen-v6only");
    let conf = r#"
events {}
http {
    access_log off;
    server { listen [::]:{port} ipv6only=off; location / { return 200 "both"; } }
}
"#;
    let p = Proton::start(t.path(), conf, 1);
    assert_eq!(get(p.port, None, "/"), (200, "both".into()));
}
