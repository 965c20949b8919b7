//! Upstreams on unix-domain sockets, as nginx: `proxy_pass http://unix:/path;`, with a URI part
//! after a second colon (`http://unix:/path:/uri/`), from variables, `server unix:/path` in an
//! `upstream` (balancing, `down`, the next server after a refused or missing socket, keep-alive,
//! health checks), `https://unix:`. The origins are a small HTTP/1.1 server on a unix socket in
//! this file ([`UnixBackend`]: it says which connection and request it serves, and what it
//! received) and Proton itself on `listen unix:` (static files, TLS). What Proton prints where
//! nginx prints something (`$upstream_addr`, the `connect()` error line) is checked against
//! nginx 1.22 too.

use proton_tests::{
    nginx_binary, parse_response, raw_exchange, request, wait_until, Nginx, Proton, Response,
    TempDir,
};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

// Configs and the error log as the request-body tests make them (one worker, `info` log).
use super::request_body::{conf, error_log};

/// `GET path` (HTTP/1.1, `Connection: close`); panics with the logs when the exchange fails.
fn get(p: &Proton, path: &str) -> Response {
    request(p.port, Some("front.test"), path)
        .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", p.logs()))
}

/// FNV-1a over `bytes`: what [`UnixBackend`] reports of a request body.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A small HTTP/1.1 origin on a unix socket. Every answer is 200 with a body
/// `name=N conn=C req=R uri=U len=L sum=S` and then the request head as received (`conn`: the
/// connection's number, from 1; `req`: the request's number on it; `len`/`sum`: the body's
/// length and [`fnv`]). It keeps connections alive as HTTP/1.1 allows. A URI starting with
/// `/other/redir` gets a 302 to `http://unix:PATH:/other/target` (nginx's default
/// `proxy_redirect` pattern for a unix socket). Stopped, and its socket file removed, on drop.
struct UnixBackend {
    path: PathBuf,
    conns: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl UnixBackend {
    fn start(path: PathBuf, name: &'static str) -> UnixBackend {
        let listener =
            UnixListener::bind(&path).unwrap_or_else(|e| panic!("binding {}: {e}", path.display()));
        let conns = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped, own) = (conns.clone(), stop.clone(), path.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                let own = own.clone();
                std::thread::spawn(move || serve(stream, name, n, &own));
            }
        });
        UnixBackend { path, conns, stop }
    }

    /// Connections accepted so far.
    fn connections(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }
}

impl Drop for UnixBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees `stop`.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(mut s: UnixStream, name: &str, conn: usize, own: &Path) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let mut served = 0;
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut words = head.split_whitespace();
        let (_method, uri, version) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default().to_string(),
            words.next().unwrap_or_default().to_string(),
        );
        let header = |want: &str| {
            head.split("\r\n").skip(1).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(want)
                    .then(|| v.trim().to_string())
            })
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        served += 1;
        let sum = fnv(&buf[head_end..head_end + len]);
        let keep = version == "HTTP/1.1"
            && !header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let text = format!(
            "name={name} conn={conn} req={served} uri={uri} len={len} sum={sum:016x}\n{head}"
        );
        let (status, location) = if uri.starts_with("/other/redir") {
            (
                "302 Found",
                format!("Location: http://unix:{}:/other/target\r\n", own.display()),
            )
        } else {
            ("200 OK", String::new())
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: {}\r\n{location}\r\n{text}",
            text.len(),
            if keep { "keep-alive" } else { "close" }
        );
        if s.write_all(resp.as_bytes()).is_err() || !keep {
            return;
        }
        buf.drain(..head_end + len);
    }
}

/// A socket file nobody listens on (bound, then closed): connects are refused.
fn dead_socket(path: &Path) {
    drop(UnixListener::bind(path).unwrap_or_else(|e| panic!("binding {}: {e}", path.display())));
}

/// The `key=value` field of a [`UnixBackend`] answer.
fn field(r: &Response, key: &str) -> String {
    let text = r.body_text();
    text.lines()
        .next()
        .unwrap_or_default()
        .split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {text:?}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// proxy_pass http://unix:…
// ---------------------------------------------------------------------------------------------

/// The three forms of proxy_pass: the client's URI as is, the location prefix replaced by
/// the URI part after the second colon, and a URL from variables. `Host` and `$proxy_host`
/// are `localhost`, `$proxy_port` empty, `$upstream_addr` `unix:PATH`, and `proxy_redirect
/// default` maps `http://unix:PATH:/uri/` back to the location, as nginx.
#[test]
fn proxy_pass_to_a_unix_socket_in_each_form() {
    let t = TempDir::new("proxy-unix-forms");
    let sock = t.path().join("b.sock");
    let b = UnixBackend::start(sock.clone(), "b");
    let p = Proton::start(
        t.path(),
        &conf(
            r#"
    server {
        listen 127.0.0.1:{port};
        location /plain/ {
            proxy_pass http://unix:{dir}/b.sock;
            proxy_set_header X-PH "$proxy_host|$proxy_port";
            add_header X-UA $upstream_addr;
        }
        location /part/ {
            proxy_pass http://unix:{dir}/b.sock:/other/;
        }
        location /dyn {
            proxy_pass http://$arg_b;
            add_header X-UA $upstream_addr;
        }
    }"#,
        ),
        1,
    );
    let s = sock.display();

    let r = get(&p, "/plain/a?x=1");
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(field(&r, "uri"), "/plain/a?x=1");
    let text = r.body_text();
    assert!(text.contains("\r\nHost: localhost\r\n"), "{text}");
    assert!(text.contains("\r\nX-PH: localhost|\r\n"), "{text}");
    assert_eq!(r.header("x-ua"), Some(format!("unix:{s}").as_str()));

    let r = get(&p, "/part/x/y");
    assert_eq!(field(&r, "uri"), "/other/x/y");
    assert!(r.body_text().contains("\r\nHost: localhost\r\n"));
    // proxy_redirect default: the pattern is the proxy_pass URL as written; the rewritten
    // path is then made absolute (absolute_redirect), as nginx.
    let r = get(&p, "/part/redir");
    assert_eq!(r.status, 302);
    let want = format!("http://front.test:{}/part/target", p.port);
    assert_eq!(r.header("location"), Some(want.as_str()));

    let r = get(&p, &format!("/dyn?b=unix:{s}:/from/vars"));
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(field(&r, "uri"), "/from/vars");
    assert!(r.body_text().contains("\r\nHost: localhost\r\n"));
    assert_eq!(r.header("x-ua"), Some(format!("unix:{s}").as_str()));
    // Without a URI part: the client's URI.
    let r = get(&p, &format!("/dyn?b=unix:{s}"));
    assert_eq!(field(&r, "uri"), format!("/dyn?b=unix:{s}"));
    // `unix:` without a path: nginx's 500.
    assert_eq!(get(&p, "/dyn?b=unix:").status, 500);
    assert!(b.connections() >= 5);
}

/// A socket file that is not there: 502, and nginx's `crit` line naming the socket, its
/// errno and the upstream URL (`http://unix:PATH:URI`); a socket nobody listens on: 502 with
/// `111: Connection refused` at `error`.
#[test]
fn a_missing_or_dead_socket_is_a_502_with_nginx_error_line() {
    let t = TempDir::new("proxy-unix-missing");
    dead_socket(&t.path().join("dead.sock"));
    let p = Proton::start(
        t.path(),
        &conf(
            r#"
    server {
        listen 127.0.0.1:{port};
        location /gone/ { proxy_pass http://unix:{dir}/missing.sock:/e/; }
        location /dead/ { proxy_pass http://unix:{dir}/dead.sock; }
    }"#,
        ),
        1,
    );
    let d = t.path().display();
    assert_eq!(get(&p, "/gone/zz?q").status, 502);
    assert_eq!(get(&p, "/dead/x").status, 502);
    let want_missing = format!(
        "[crit] {pid}#0: connect() to unix:{d}/missing.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, upstream: \"http://unix:{d}/missing.sock:/e/zz?q\"",
        pid = p.the_worker()
    );
    let want_dead = format!(
        "connect() to unix:{d}/dead.sock failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, upstream: \"http://unix:{d}/dead.sock:/dead/x\""
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let log = error_log(&t);
            log.contains(&want_missing) && log.contains(&want_dead)
        }),
        "expected\n{want_missing}\n{want_dead}\n{}",
        p.logs()
    );
}

// ---------------------------------------------------------------------------------------------
// upstream { server unix:…; }
// ---------------------------------------------------------------------------------------------

/// Two unix servers share requests round robin; in a group whose first servers are a dead
/// socket and a missing one (and one marked `down`), every request reaches the live one
/// through proxy_next_upstream, and the failed ones count toward max_fails.
#[test]
fn an_upstream_of_unix_servers_balances_and_fails_over() {
    let t = TempDir::new("proxy-unix-group");
    let _a = UnixBackend::start(t.path().join("a.sock"), "a");
    let _b = UnixBackend::start(t.path().join("b.sock"), "b");
    let _c = UnixBackend::start(t.path().join("c.sock"), "c");
    dead_socket(&t.path().join("dead.sock"));
    let p = Proton::start(
        t.path(),
        &conf(
            r#"
    upstream two {
        server unix:{dir}/a.sock;
        server unix:{dir}/b.sock;
    }
    upstream failover {
        server unix:{dir}/c.sock down;
        server unix:{dir}/dead.sock;
        server unix:{dir}/missing.sock;
        server unix:{dir}/a.sock;
    }
    server {
        listen 127.0.0.1:{port};
        location /two/ { proxy_pass http://two; }
        location /failover/ { proxy_pass http://failover; add_header X-UA $upstream_addr; }
    }"#,
        ),
        1,
    );
    let d = t.path().display();
    let names: Vec<String> = (0..4).map(|_| field(&get(&p, "/two/x"), "name")).collect();
    assert_eq!(names, ["a", "b", "a", "b"], "{}", p.logs());

    for i in 0..4 {
        let r = get(&p, "/failover/y");
        assert_eq!(r.status, 200, "{}", p.logs());
        assert_eq!(field(&r, "name"), "a");
        // $upstream_addr lists every server tried (nginx's "x, y, z"): the first request
        // meets the dead and the missing socket before a.sock; then they are marked failed.
        let ua = r.header("x-ua").unwrap_or_default().to_string();
        if i == 0 {
            assert_eq!(
                ua,
                format!("unix:{d}/dead.sock, unix:{d}/missing.sock, unix:{d}/a.sock")
            );
        } else {
            assert_eq!(ua, format!("unix:{d}/a.sock"));
        }
    }
    let log = error_log(&t);
    assert!(
        log.contains(&format!(
            "connect() to unix:{d}/dead.sock failed (111: Connection refused)"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "connect() to unix:{d}/missing.sock failed (2: No such file or directory)"
        )),
        "{log}"
    );
    // max_fails=1: each failed server was tried once, then left out for fail_timeout.
    assert_eq!(log.matches("dead.sock failed").count(), 1, "{log}");
    assert_eq!(log.matches("missing.sock failed").count(), 1, "{log}");
    assert!(
        !log.contains("c.sock"),
        "a down server is never tried:\n{log}"
    );
}

/// `keepalive` to a unix upstream: several requests, one after another, share one upstream
/// connection.
#[test]
fn keepalive_to_a_unix_upstream_reuses_one_connection() {
    let t = TempDir::new("proxy-unix-keepalive");
    let a = UnixBackend::start(t.path().join("a.sock"), "a");
    let p = Proton::start(
        t.path(),
        &conf(
            r#"
    upstream ka {
        server unix:{dir}/a.sock;
        keepalive 4;
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://ka;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }"#,
        ),
        1,
    );
    let reqs: Vec<String> = (0..5).map(|_| field(&get(&p, "/k"), "req")).collect();
    assert_eq!(reqs, ["1", "2", "3", "4", "5"], "{}", p.logs());
    assert_eq!(a.connections(), 1);
}

/// Request bodies reach a unix upstream whole, read first (`proxy_request_buffering on`,
/// past client_body_buffer_size: from a temporary file) and streamed (`off`).
#[test]
fn request_bodies_reach_a_unix_upstream() {
    let t = TempDir::new("proxy-unix-bodies");
    let _a = UnixBackend::start(t.path().join("a.sock"), "a");
    let p = Proton::start(
        t.path(),
        &conf(
            r#"
    server {
        listen 127.0.0.1:{port};
        client_max_body_size 8m;
        location /buffered/ { proxy_pass http://unix:{dir}/a.sock; }
        location /streamed/ {
            proxy_pass http://unix:{dir}/a.sock;
            proxy_request_buffering off;
            proxy_http_version 1.1;
        }
    }"#,
        ),
        1,
    );
    let body: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for path in ["/buffered/up", "/streamed/up", "/buffered/small"] {
        let body = if path.ends_with("small") {
            &body[..100]
        } else {
            &body[..]
        };
        let mut raw = format!(
            "POST {path} HTTP/1.1\r\nHost: front.test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        let (out, _) = raw_exchange(p.port, &raw, Duration::from_secs(30));
        let r = parse_response(&out).unwrap_or_else(|e| panic!("{path}: {e}\n{}", p.logs()));
        assert_eq!(r.status, 200, "{path}: {}", p.logs());
        assert_eq!(field(&r, "len"), body.len().to_string(), "{path}");
        assert_eq!(field(&r, "sum"), format!("{:016x}", fnv(body)), "{path}");
    }
}

/// A response of several megabytes from a unix upstream (Proton itself on `listen unix:`,
/// a static file) arrives whole, buffered (partly through a temporary file) and not.
#[test]
fn a_large_response_from_a_unix_upstream_arrives_whole() {
    let t = TempDir::new("proxy-unix-large");
    let big: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::create_dir_all(t.path().join("www")).expect("www");
    std::fs::write(t.path().join("www/big.bin"), &big).expect("big file");
    let p = Proton::start(
        t.path(),
        &conf(
            r#"
    server {
        listen unix:{dir}/files.sock;
        root {dir}/www;
    }
    server {
        listen 127.0.0.1:{port};
        location / { proxy_pass http://unix:{dir}/files.sock; }
        location /nb/ { proxy_pass http://unix:{dir}/files.sock:/; proxy_buffering off; }
    }"#,
        ),
        1,
    );
    for path in ["/big.bin", "/nb/big.bin"] {
        let r = get(&p, path);
        assert_eq!(r.status, 200, "{path}: {}", p.logs());
        assert_eq!(r.body.len(), big.len(), "{path}");
        assert_eq!(fnv(&r.body), fnv(&big), "{path}");
    }
}

/// Active health checks probe unix peers too: the missing socket is marked down (and named
/// as nginx names it), the live one up, and requests go to the live one only.
#[test]
fn health_checks_probe_unix_peers() {
    let t = TempDir::new("proxy-unix-health");
    let _a = UnixBackend::start(t.path().join("a.sock"), "a");
    let p = Proton::start(
        t.path(),
        &conf(
            r#"
    upstream checked {
        server unix:{dir}/a.sock;
        server unix:{dir}/missing.sock max_fails=0;
        health_check interval=100ms uri=/hc fails=1 passes=1 timeout=500ms;
    }
    server {
        listen 127.0.0.1:{port};
        location / { proxy_pass http://checked; proxy_next_upstream off; }
    }"#,
        ),
        1,
    );
    let d = t.path().display();
    let down = format!("server unix:{d}/missing.sock (unix:{d}/missing.sock) is down");
    let up = format!("server unix:{d}/a.sock (unix:{d}/a.sock) is up");
    assert!(
        wait_until(Duration::from_secs(10), || {
            let log = error_log(&t);
            log.contains(&down) && log.contains(&up)
        }),
        "no down/up lines:\n{}",
        p.logs()
    );
    // With the missing socket down, no request fails even without proxy_next_upstream.
    for _ in 0..4 {
        let r = get(&p, "/x");
        assert_eq!(r.status, 200, "{}", p.logs());
        assert_eq!(field(&r, "name"), "a");
    }
}

/// A request that reaches Proton's own unix listener through a unix upstream, with
/// `set_real_ip_from unix:`: the X-Real-IP address becomes `$remote_addr` and is what
/// `ip_hash` hashes (nginx's realip_hostname.t and upstream_ip_hash_ipv6.t); without realip a
/// unix client hashes as one pseudo address, so it always gets the same server.
#[test]
fn realip_behind_a_unix_upstream_feeds_remote_addr_and_ip_hash() {
    let t = TempDir::new("proxy-unix-realip");
    let _a = UnixBackend::start(t.path().join("a.sock"), "a");
    let _b = UnixBackend::start(t.path().join("b.sock"), "b");
    let p = Proton::start(
        t.path(),
        &conf(
            r#"
    upstream hashed {
        ip_hash;
        server unix:{dir}/a.sock;
        server unix:{dir}/b.sock;
    }
    server {
        listen unix:{dir}/inner.sock;
        location /hash {
            set_real_ip_from unix:;
            proxy_pass http://hashed;
            add_header X-IP $remote_addr;
        }
        location /plain { proxy_pass http://hashed; add_header X-IP $remote_addr; }
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://unix:{dir}/inner.sock;
            proxy_set_header X-Real-IP $arg_ip;
        }
    }"#,
        ),
        1,
    );
    let r = get(&p, "/hash?ip=192.0.2.1");
    assert_eq!(r.header("x-ip"), Some("192.0.2.1"), "{}", p.logs());
    assert_eq!(get(&p, "/plain?ip=192.0.2.1").header("x-ip"), Some("unix:"));
    let names = |path: &str| {
        let mut seen: Vec<String> = (1..=20)
            .map(|i| field(&get(&p, &format!("{path}?ip=127.0.{i}.2")), "name"))
            .collect();
        seen.sort();
        seen.dedup();
        seen
    };
    assert_eq!(names("/hash"), ["a", "b"]);
    assert_eq!(names("/plain").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// https://unix:…
// ---------------------------------------------------------------------------------------------

/// TLS over a unix socket: the name sent (SNI) and verified is `localhost`, nginx's
/// `$proxy_host` for a unix socket.
#[test]
fn https_over_a_unix_socket() {
    let t = TempDir::new("proxy-unix-tls");
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "unix test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    std::fs::write(t.path().join("ca.crt"), ca_cert.pem()).expect("write CA");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("leaf");
    std::fs::write(t.path().join("localhost.crt"), leaf.pem()).expect("write cert");
    std::fs::write(t.path().join("localhost.key"), key.serialize_pem()).expect("write key");
    let p = Proton::start(
        t.path(),
        &conf(
            r#"
    server {
        listen unix:{dir}/tls.sock ssl;
        ssl_certificate {dir}/localhost.crt;
        ssl_certificate_key {dir}/localhost.key;
        return 200 "sni=$ssl_server_name host=$http_host proto=$ssl_protocol\n";
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass https://unix:{dir}/tls.sock;
            proxy_ssl_server_name on;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {dir}/ca.crt;
            add_header X-UA $upstream_addr;
        }
    }"#,
        ),
        1,
    );
    let r = get(&p, "/");
    assert_eq!(r.status, 200, "{}", p.logs());
    let text = r.body_text();
    assert!(
        text.starts_with("sni=localhost host=localhost proto=TLSv1."),
        "{text}"
    );
    assert_eq!(
        r.header("x-ua"),
        Some(format!("unix:{}/tls.sock", t.path().display()).as_str())
    );
}

// ---------------------------------------------------------------------------------------------
// Against nginx
// ---------------------------------------------------------------------------------------------

/// The same http block in nginx 1.22 and Proton (each with its own sockets): the backend's
/// view of the request (URI, `Host`, `$proxy_host|$proxy_port`), `$upstream_addr`, and the
/// `connect()` line for a missing socket agree.
#[test]
fn unix_upstreams_as_nginx_does() {
    let Some(nginx) = nginx_binary() else {
        return;
    };
    // `listen` and `d` are each server's own; the unix-socket server echoes what it received.
    let http = |listen: &str, d: &str| {
        format!(
            r#"
    server {{
        listen unix:{d}/b.sock;
        location / {{ return 200 "uri=$request_uri host=$http_host ph=$http_x_ph\n"; }}
    }}
    server {{
        listen {listen};
        location /plain/ {{
            proxy_pass http://unix:{d}/b.sock;
            proxy_set_header X-PH "$proxy_host|$proxy_port";
            add_header X-UA $upstream_addr;
        }}
        location /part/ {{ proxy_pass http://unix:{d}/b.sock:/other/; add_header X-UA $upstream_addr; }}
        location /gone/ {{ proxy_pass http://unix:{d}/missing.sock:/e/; }}
    }}"#
        )
    };
    let ng_dir = TempDir::new("proxy-unix-nginx");
    let ng_d = ng_dir.path().display().to_string();
    let ng = Nginx::start(&nginx, |port| http(&format!("127.0.0.1:{port}"), &ng_d));
    let t = TempDir::new("proxy-unix-vs-nginx");
    let p = Proton::start(t.path(), &conf(&http("127.0.0.1:{port}", "{dir}")), 1);
    let strip = |s: &str, dir: &Path| s.replace(&dir.display().to_string(), "DIR");
    for path in ["/plain/a?b=1", "/part/x/y", "/gone/z"] {
        let a = request(ng.port(), Some("front.test"), path).expect("nginx answers");
        let b = get(&p, path);
        assert_eq!(a.status, b.status, "{path}");
        if a.status == 200 {
            assert_eq!(a.body_text(), b.body_text(), "{path}");
        }
        assert_eq!(
            a.header("x-ua").map(|h| strip(h, ng_dir.path())),
            b.header("x-ua").map(|h| strip(h, t.path())),
            "{path}"
        );
    }
    // nginx's line also has `server:`, `request:` and `host:`, which Proton's lines leave
    // out; the rest must be the same.
    let line = |log: &str, dir: &Path| {
        strip(log, dir)
            .lines()
            .find_map(|l| Some(l[l.find("connect() to unix:DIR/missing.sock")?..].to_string()))
            .map(|l| {
                l.replace(", server: , request: \"GET /gone/z HTTP/1.1\"", "")
                    .replace(", host: \"front.test\"", "")
            })
    };
    assert!(
        wait_until(Duration::from_secs(5), || line(&ng.logs(), ng_dir.path())
            .is_some()
            && line(&error_log(&t), t.path()).is_some()),
        "no connect() line:\n{}\n{}",
        ng.logs(),
        p.logs()
    );
    let want = line(&ng.logs(), ng_dir.path());
    assert_eq!(
        want.as_deref(),
        Some("connect() to unix:DIR/missing.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, upstream: \"http://unix:DIR/missing.sock:/e/z\"")
    );
    assert_eq!(line(&error_log(&t), t.path()), want);
}
