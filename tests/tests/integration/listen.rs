//! `listen` parameters over a real proton-run: port ranges, socket options the kernel
//! reports (so_keepalive, rcvbuf/sndbuf, deferred), `ipv6only=off`, unix sockets, host
//! names; and a differential case against nginx.

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

/// One HTTP/1.0 exchange over a unix-domain socket.
fn unix_get(path: &std::path::Path, uri: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect to the unix socket");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {uri} HTTP/1.0\r\nHost: u\r\n\r\n").expect("write");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out).expect("read");
    out
}

#[test]
fn a_unix_socket_is_served_by_every_worker_and_removed_at_exit() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("listen-unix");
    let sock = t.path().join("proton.sock");
    let conf = format!(
        r#"
events {{}}
http {{
    access_log {{dir}}/logs/access.log;
    server {{
        listen 127.0.0.1:{{port}};
        listen unix:{sock} backlog=64;
        location / {{ return 200 "[$remote_addr|$remote_port|$server_addr|$server_port|$pid]"; }}
    }}
}}
"#,
        sock = sock.display()
    );
    let mut p = Proton::start(t.path(), &conf, 2);
    let workers = p.workers();
    assert_eq!(workers.len(), 2, "{}", p.logs());
    // nginx makes the socket rw-rw-rw- whatever the umask.
    let mode = std::fs::metadata(&sock)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666);
    let want = format!("[unix:||unix:{}|", sock.display());
    let mut pids = std::collections::BTreeSet::new();
    // One socket shared by both workers: each takes connections from it.
    let both = wait_until(Duration::from_secs(20), || {
        let r = unix_get(&sock, "/");
        assert!(r.contains(" 200 OK\r\n"), "{r}");
        let body = &r[r.find("\r\n\r\n").map_or(0, |i| i + 4)..];
        assert!(body.starts_with(&want), "{body}");
        pids.insert(body[want.len()..].trim_end_matches(']').to_string());
        pids.len() == 2
    });
    assert!(both, "only {pids:?} answered\n{}", p.logs());
    // TCP still works beside it.
    assert_eq!(get(p.port, None, "/").0, 200);
    p.signal("TERM");
    assert!(p.wait_exit(Duration::from_secs(20)), "{}", p.logs());
    assert!(!sock.exists(), "the socket file is left behind");
}

#[test]
fn a_unix_socket_path_that_exists_is_refused_as_nginx_does() {
    let t = TempDir::new("listen-unix-stale");
    let sock = t.path().join("stale.sock");
    std::fs::write(&sock, "").expect("stale file");
    let conf = t.write(
        "proton.conf",
        &format!(
            "events {{}}\nhttp {{ access_log off; server {{ listen unix:{}; return 200; }} }}\n",
            sock.display()
        ),
    );
    let (code, err) = run_refused(&conf, &t.path().join("proton.ir"));
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!(
            "bind() to unix:{} failed (98: Address already in use)",
            sock.display()
        )),
        "{err}"
    );
    // The file that was there stays.
    assert!(sock.exists());
}

/// A name that resolves to 127.0.0.1 only here (from /etc/hosts: the machine's own name on
/// most systems); `localhost` if none does (protonc maps that one itself).
fn loopback_name() -> String {
    let own = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    for name in [own.trim(), "vm", "localhost.localdomain"] {
        if name.is_empty() || name.contains('_') {
            continue;
        }
        let addrs: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(&(name, 1))
            .map(|it| it.collect())
            .unwrap_or_default();
        if !addrs.is_empty() && addrs.iter().all(|a| a.ip() == Ipv4Addr::LOCALHOST) {
            return name.to_string();
        }
    }
    "localhost".to_string()
}

#[test]
fn a_host_name_is_resolved_when_proton_run_loads_the_config() {
    let t = TempDir::new("listen-host");
    let name = loopback_name();
    let other = free_port();
    let conf = format!(
        r#"
events {{}}
http {{
    access_log off;
    server {{ listen 127.0.0.1:{{port}}; location / {{ return 200 "main"; }} }}
    server {{ listen {name}:{other}; location / {{ return 200 "by name $server_addr"; }} }}
}}
"#
    );
    let p = Proton::start(t.path(), &conf, 1);
    let ok = wait_until(Duration::from_secs(10), || {
        request(other, None, "/").is_ok_and(|r| r.body_text() == "by name 127.0.0.1")
    });
    assert!(ok, "{name}:{other} not served\n{}", p.logs());

    // A name that does not resolve stops proton-run with nginx's words.
    let conf = t.write(
        "bad.conf",
        "events {}\nhttp { access_log off; server { listen no-such-host.invalid:8080; return 200; } }\n",
    );
    let (code, err) = run_refused(&conf, &t.path().join("bad.ir"));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("host not found in \"no-such-host.invalid:8080\" of the \"listen\" directive"),
        "{err}"
    );
}

/// The lessons of http_listen.t and of the unix-socket and open_file_cache files, against
/// nginx: a port range serves every port with `$server_port` its own; a unix-socket client
/// has nginx's `$remote_addr`, `$remote_port`, `$server_addr`, `$server_port`; a file
/// replaced under `open_file_cache` is served from the cached descriptor until
/// `open_file_cache_valid` has passed, and try_files sees a cached failure.
#[test]
fn listen_and_open_file_cache_as_nginx() {
    let Some(nginx_bin) = nginx_binary() else {
        return;
    };
    let t = TempDir::new("listen-diff");
    let server = |port: u16, range: u16, name: &str, www: &str| {
        format!(
            r#"
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{range}-{range2};
        listen unix:{dir}/{name}.sock;
        root {www};
        open_file_cache max=8 inactive=60s;
        open_file_cache_valid 60s;
        location = /vars {{ return 200 "[$remote_addr|$remote_port|$server_addr|$server_port]"; }}
        location /t/ {{ open_file_cache_errors on; try_files $uri =410; }}
    }}
"#,
            range2 = range + 1,
            dir = t.path().display(),
        )
    };
    for name in ["ngx", "pro"] {
        t.write(&format!("{name}/f.txt"), "old");
    }
    let ngx_range = free_pair();
    let ngx_www = t.path().join("ngx").display().to_string();
    let nginx = Nginx::start(&nginx_bin, |port| server(port, ngx_range, "ngx", &ngx_www));
    let pro_range = free_pair();
    let pro_www = t.path().join("pro").display().to_string();
    let conf = format!(
        "events {{}}\nhttp {{\n    access_log off;\n{}}}\n",
        server(0, pro_range, "pro", &pro_www).replace("127.0.0.1:0;", "127.0.0.1:{port};")
    );
    let proton = Proton::start(t.path(), &conf, 1);

    for (port, range, name) in [
        (nginx.port(), ngx_range, "ngx"),
        (proton.port, pro_range, "pro"),
    ] {
        for p in [range, range + 1] {
            let served = wait_until(Duration::from_secs(10), || {
                request(p, None, "/vars").is_ok_and(|r| r.status == 200)
            });
            assert!(served, "{name}: port {p} of the range not served");
            let body = request(p, None, "/vars").expect("GET").body_text();
            assert!(
                body.ends_with(&format!("|127.0.0.1|{p}]")),
                "{name}: {body}"
            );
        }
        let sock = t.path().join(format!("{name}.sock"));
        let r = unix_get(&sock, "/vars");
        let body = &r[r.find("\r\n\r\n").map_or(0, |i| i + 4)..];
        assert_eq!(
            body.replace(&sock.display().to_string(), "SOCK"),
            "[unix:||unix:SOCK|]",
            "{name}"
        );
        assert_eq!(get(port, None, "/f.txt"), (200, "old".into()), "{name}");
        let dir = t.path().join(name);
        std::fs::write(dir.join("f.new"), "new!").expect("write");
        std::fs::rename(dir.join("f.new"), dir.join("f.txt")).expect("mv");
        assert_eq!(
            get(port, None, "/f.txt"),
            (200, "old".into()),
            "{name}: cached"
        );
        // try_files' existence test goes through the cache too: with
        // open_file_cache_errors, a file created after a miss stays missing.
        assert_eq!(get(port, None, "/t/late.txt").0, 410, "{name}");
        std::fs::create_dir_all(dir.join("t")).expect("mkdir");
        std::fs::write(dir.join("t/late.txt"), "here").expect("write");
        assert_eq!(
            get(port, None, "/t/late.txt").0,
            410,
            "{name}: cached failure"
        );
    }
}
