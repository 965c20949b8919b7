//! TLS to upstreams: `proxy_pass https://…` towards a second proton-run that serves TLS
//! (`listen … ssl`) and answers with what it saw of the handshake (`$ssl_server_name`,
//! `$ssl_session_reused`, `$ssl_protocol`, `$connection`), or towards nginx where a client
//! certificate must be checked. Covers SNI and `proxy_ssl_name`, `proxy_ssl_verify` (right
//! CA, wrong CA, wrong name), session reuse on and off, keep-alive over TLS, the next server
//! after a failed handshake, a request body, a large response, a WebSocket tunnel, and
//! protonc's refusals.

use proton_tests::{
    bin, nginx_binary, parse_response, raw_exchange, ws_close_cleanly, Backend, Nginx, Proton,
    Response, TempDir,
};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tungstenite::Message;

/// A CA, and certificates it signs, written as PEM files in a directory.
struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} CA"));
        let cert = params.clone().self_signed(&key).expect("CA cert");
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).expect("write CA");
        Ca { params, key }
    }

    /// A certificate for `hosts` signed by this CA: `NAME.crt` and `NAME.key`.
    fn issue(&self, dir: &Path, name: &str, hosts: &[&str]) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params =
            rcgen::CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
                .expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name.to_string());
        let issuer = self.params.clone().self_signed(&self.key).expect("issuer");
        let cert = params
            .signed_by(&key, &issuer, &self.key)
            .expect("signed cert");
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).expect("write cert");
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write key");
    }
}

const VARS: &str = r#""$ssl_server_name|$ssl_session_reused|$ssl_protocol|$connection""#;

/// The TLS backend: a proton-run serving `backend.test`'s certificate (signed by `ca`),
/// `/vars`, a 3 MB static file, and `/echo` and `/ws` passed (plain) to a test backend;
/// it closes idle connections after a second.
struct Upstream {
    _t: TempDir,
    dir: std::path::PathBuf,
    p: Proton,
    _tb: Backend,
}

fn upstream(label: &str) -> Upstream {
    let t = TempDir::new(label);
    let dir = t.path().to_path_buf();
    let ca = Ca::new(&dir, "ca");
    Ca::new(&dir, "other-ca");
    ca.issue(&dir, "backend", &["backend.test"]);
    ca.issue(&dir, "client", &["client.test"]);
    std::fs::create_dir_all(dir.join("html")).expect("html");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(dir.join("html/big"), &big).expect("big");
    let tb = Backend::start("plain");
    let d = dir.display();
    let conf = format!(
        r#"
error_log {d}/logs/error.log info;
events {{}}
http {{
    access_log off;
    keepalive_timeout 1s;
    server {{
        listen 127.0.0.1:{{port}} ssl;
        ssl_certificate {d}/backend.crt;
        ssl_certificate_key {d}/backend.key;
        root {d}/html;
        location /vars {{ return 200 {VARS}; }}
        location /echo {{ proxy_pass http://127.0.0.1:{tb}; }}
        location /ws {{
            proxy_pass http://127.0.0.1:{tb};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection upgrade;
        }}
    }}
}}
"#,
        tb = tb.port
    );
    let p = Proton::start(&dir, &conf, 1);
    Upstream {
        _t: t,
        dir,
        p,
        _tb: tb,
    }
}

/// The proxy: `{body}` in its server (with `@B@` the TLS backend's port and `@D@` the
/// certificates' directory), `{upstreams}` in http.
fn proxy(label: &str, u: &Upstream, upstreams: &str, body: &str) -> (TempDir, Proton) {
    let t = TempDir::new(label);
    let d = t.path().display();
    let fill = |s: &str| {
        s.replace("@B@", &u.p.port.to_string())
            .replace("@D@", &u.dir.display().to_string())
    };
    let conf = format!(
        r#"
error_log {d}/logs/error.log info;
events {{}}
http {{
    access_log off;
    {ups}
    server {{
        listen 127.0.0.1:{{port}};
        {body}
    }}
}}
"#,
        ups = fill(upstreams),
        body = fill(body)
    );
    let p = Proton::start(t.path(), &conf, 1);
    (t, p)
}

fn send(p: &Proton, raw: &[u8]) -> Response {
    let (bytes, _) = raw_exchange(p.port, raw, Duration::from_secs(20));
    parse_response(&bytes).unwrap_or_else(|e| {
        panic!(
            "bad response ({e}): {:?}\n{}",
            String::from_utf8_lossy(&bytes),
            p.logs()
        )
    })
}

fn get(p: &Proton, path: &str) -> Response {
    send(
        p,
        format!("GET {path} HTTP/1.1\r\nHost: front.test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// `/vars` through `path`: (ssl_server_name, ssl_session_reused, ssl_protocol, connection).
fn vars(p: &Proton, path: &str) -> Vec<String> {
    let r = get(p, path);
    assert_eq!(r.status, 200, "{path}: {}\n{}", r.body_text(), p.logs());
    r.body_text().split('|').map(str::to_string).collect()
}

#[test]
fn proxy_pass_https_and_sni_as_configured() {
    let u = upstream("ptls-sni-up");
    let (_t, p) = proxy(
        "ptls-sni",
        &u,
        "upstream backend.test { server 127.0.0.1:@B@; }",
        r#"
        location /ip/ { proxy_pass https://127.0.0.1:@B@/; }
        location /off/ { proxy_pass https://backend.test/; }
        location /on/ { proxy_pass https://backend.test/; proxy_ssl_server_name on; }
        location /named/ {
            proxy_pass https://backend.test/;
            proxy_ssl_server_name on;
            proxy_ssl_name other.test;
        }
        location /var/ {
            proxy_pass https://backend.test/;
            proxy_ssl_server_name on;
            proxy_ssl_name $http_x_name;
        }
        "#,
    );
    let v = vars(&p, "/ip/vars");
    assert_eq!(v[0], "", "no SNI to an address");
    assert!(v[2].starts_with("TLSv1."), "{v:?}");
    assert_eq!(
        vars(&p, "/off/vars")[0],
        "",
        "proxy_ssl_server_name off: no SNI"
    );
    assert_eq!(vars(&p, "/on/vars")[0], "backend.test");
    assert_eq!(vars(&p, "/named/vars")[0], "other.test");
    let r = send(
        &p,
        b"GET /var/vars HTTP/1.1\r\nHost: front.test\r\nX-Name: from.header\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", p.logs());
    assert!(
        r.body_text().starts_with("from.header|"),
        "{}",
        r.body_text()
    );
}

#[test]
fn proxy_ssl_verify_checks_the_chain_and_the_name() {
    let u = upstream("ptls-verify-up");
    let (_t, p) = proxy(
        "ptls-verify",
        &u,
        "upstream backend.test { server 127.0.0.1:@B@; }",
        r#"
        proxy_ssl_verify on;
        location /ok/ {
            proxy_pass https://backend.test/;
            proxy_ssl_trusted_certificate @D@/ca.crt;
        }
        location /wrong-ca/ {
            proxy_pass https://backend.test/;
            proxy_ssl_trusted_certificate @D@/other-ca.crt;
        }
        location /wrong-name/ {
            proxy_pass https://backend.test/;
            proxy_ssl_trusted_certificate @D@/ca.crt;
            proxy_ssl_name wrong.test;
        }
        location /depth0/ {
            proxy_pass https://backend.test/;
            proxy_ssl_trusted_certificate @D@/ca.crt;
            proxy_ssl_verify_depth 0;
        }
        "#,
    );
    assert_eq!(get(&p, "/ok/vars").status, 200, "{}", p.logs());
    assert_eq!(get(&p, "/wrong-ca/vars").status, 502);
    assert!(
        p.logs()
            .contains("upstream SSL certificate verify error: (")
            && p.logs().contains("while SSL handshaking to upstream"),
        "{}",
        p.logs()
    );
    assert_eq!(get(&p, "/wrong-name/vars").status, 502);
    assert!(
        p.logs()
            .contains("upstream SSL certificate does not match \"wrong.test\""),
        "{}",
        p.logs()
    );
    // Depth 0 is as depth 1 here: the backend's certificate is signed by the CA itself.
    assert_eq!(get(&p, "/depth0/vars").status, 200, "{}", p.logs());
}

#[test]
fn sessions_are_resumed_unless_proxy_ssl_session_reuse_is_off() {
    let u = upstream("ptls-reuse-up");
    let (_t, p) = proxy(
        "ptls-reuse",
        &u,
        "",
        r#"
        location /reuse/ { proxy_pass https://127.0.0.1:@B@/; }
        location /noreuse/ { proxy_pass https://127.0.0.1:@B@/; proxy_ssl_session_reuse off; }
        "#,
    );
    let first = vars(&p, "/reuse/vars");
    assert_eq!(first[1], ".", "a first connection is a full handshake");
    let second = vars(&p, "/reuse/vars");
    assert_ne!(first[3], second[3], "no keepalive: a new connection");
    assert_eq!(second[1], "r", "the second connection resumes: {second:?}");
    for _ in 0..2 {
        assert_eq!(vars(&p, "/noreuse/vars")[1], ".", "session reuse off");
    }
}

#[test]
fn keepalive_reuses_one_tls_connection() {
    let u = upstream("ptls-ka-up");
    let (_t, p) = proxy(
        "ptls-ka",
        &u,
        "upstream ka { server 127.0.0.1:@B@; keepalive 2; }",
        r#"
        location / {
            proxy_pass https://ka;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        "#,
    );
    let a = vars(&p, "/vars");
    let b = vars(&p, "/vars");
    let c = vars(&p, "/vars");
    assert_eq!(a[3], b[3], "one upstream connection: {a:?} {b:?}");
    assert_eq!(b[3], c[3]);
    // A body and a large response on the kept connection.
    let body = "x".repeat(100_000);
    let r = send(
        &p,
        format!(
            "POST /echo HTTP/1.1\r\nHost: f\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", p.logs());
    assert!(
        r.body_text().starts_with("POST /echo HTTP/1.0"),
        "{}",
        r.body_text()
    );
    assert!(
        r.body_text().ends_with(&format!("\n\n{body}")),
        "body through TLS"
    );
    let r = get(&p, "/big");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    assert_eq!(r.status, 200);
    assert!(r.body == big, "3 MB through TLS: {} bytes", r.body.len());
    assert_eq!(vars(&p, "/vars")[3], a[3], "still the same connection");
    // The backend closes the idle connection (keepalive_timeout 1s: close_notify and FIN):
    // the proxy notices and closes its end (no socket towards the backend is left open or
    // half-closed), and the next request goes on a new connection.
    let closed = proton_tests::wait_until(Duration::from_secs(10), || sockets_to(u.p.port) == 0);
    assert!(
        closed,
        "the idle connection closed by the backend stays open\n{}",
        p.logs()
    );
    assert_ne!(vars(&p, "/vars")[3], a[3], "a new connection");
}

/// TCP sockets on this machine connected to 127.0.0.1:`port` that are established or
/// half-closed by the peer (CLOSE_WAIT), from /proc/net/tcp.
fn sockets_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let remote_port = f
                .get(2)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            remote_port == Some(port) && matches!(f.get(3), Some(&"01") | Some(&"08"))
        })
        .count()
}

#[test]
fn a_failed_handshake_moves_to_the_next_server() {
    let u = upstream("ptls-next-up");
    let plain = Backend::start("plain-http");
    let (_t, p) = proxy(
        "ptls-next",
        &u,
        &format!(
            "upstream two {{ server 127.0.0.1:{}; server 127.0.0.1:@B@; }}",
            plain.port
        ),
        "location / { proxy_pass https://two; }",
    );
    for _ in 0..4 {
        let r = get(&p, "/vars");
        assert_eq!(r.status, 200, "{}", p.logs());
    }
    assert!(
        p.logs().contains("SSL_do_handshake() failed")
            && p.logs().contains("while SSL handshaking to upstream"),
        "{}",
        p.logs()
    );
}

#[test]
fn websocket_through_a_tls_upstream() {
    let u = upstream("ptls-ws-up");
    let (_t, p) = proxy(
        "ptls-ws",
        &u,
        "",
        r#"
        location /ws {
            proxy_pass https://127.0.0.1:@B@;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection upgrade;
        }
        "#,
    );
    let stream = std::net::TcpStream::connect(("127.0.0.1", p.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let url = format!("ws://127.0.0.1:{}/ws", p.port);
    let (mut ws, resp) = tungstenite::client(url.as_str(), stream)
        .unwrap_or_else(|e| panic!("handshake through the proxy: {e}\n{}", p.logs()));
    assert_eq!(resp.status().as_u16(), 101);
    for size in [1usize, 100_000, 1_000_000] {
        let bin: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        ws.send(Message::binary(bin.clone())).expect("send");
        match ws.read() {
            Ok(Message::Binary(got)) => assert!(got[..] == bin[..], "echo of {size} bytes"),
            other => panic!("{size}: {:?}", other.map(|m| m.len())),
        }
    }
    ws_close_cleanly(&mut ws);
}

#[test]
fn client_certificate_to_the_upstream() {
    let Some(nginx) = nginx_binary() else {
        return;
    };
    let t = TempDir::new("ptls-client-certs");
    let dir = t.path().to_path_buf();
    let ca = Ca::new(&dir, "ca");
    ca.issue(&dir, "backend", &["backend.test"]);
    ca.issue(&dir, "client", &["client.test"]);
    let d = dir.display();
    let n = Nginx::start(&nginx, |port| {
        format!(
            r#"server {{
                listen 127.0.0.1:{port} ssl;
                ssl_certificate {d}/backend.crt;
                ssl_certificate_key {d}/backend.key;
                ssl_verify_client optional;
                ssl_client_certificate {d}/ca.crt;
                location / {{ return 200 "$ssl_client_verify|$ssl_client_s_dn"; }}
            }}"#
        )
    });
    let ft = TempDir::new("ptls-client-front");
    let conf = format!(
        r#"
error_log {fd}/logs/error.log info;
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{{port}};
        location /with/ {{
            proxy_pass https://127.0.0.1:{np}/;
            proxy_ssl_certificate {d}/client.crt;
            proxy_ssl_certificate_key {d}/client.key;
        }}
        location /without/ {{ proxy_pass https://127.0.0.1:{np}/; }}
    }}
}}
"#,
        fd = ft.path().display(),
        np = n.port()
    );
    let p = Proton::start(ft.path(), &conf, 1);
    let r = get(&p, "/with/");
    assert_eq!(r.status, 200, "{}\n{}", p.logs(), n.logs());
    assert!(
        r.body_text().starts_with("SUCCESS|") && r.body_text().contains("client"),
        "{}",
        r.body_text()
    );
    let r = get(&p, "/without/");
    assert_eq!(r.body_text(), "NONE|", "{}", n.logs());
}

/// protonc refuses `proxy_ssl_*` settings nginx refuses, and files it cannot use.
#[test]
fn protonc_refuses_bad_proxy_ssl_settings() {
    let t = TempDir::new("ptls-refuse");
    let dir = t.path();
    let ca = Ca::new(dir, "ca");
    ca.issue(dir, "client", &["client.test"]);
    ca.issue(dir, "other", &["other.test"]);
    let d = dir.display();
    let cases = [
        (
            "proxy_ssl_verify on;".to_string(),
            "no proxy_ssl_trusted_certificate for proxy_ssl_verify",
        ),
        (
            format!("proxy_ssl_verify on; proxy_ssl_trusted_certificate {d}/missing.crt;"),
            "missing.crt",
        ),
        (
            format!(
                "proxy_ssl_certificate {d}/client.crt; proxy_ssl_certificate_key {d}/other.key;"
            ),
            "do not match",
        ),
        ("proxy_ssl_protocols TLSv1.1;".to_string(), "TLSv1.1"),
        (
            "proxy_ssl_ciphers NOPE-NOPE;".to_string(),
            "proxy_ssl_ciphers",
        ),
        (
            format!("proxy_ssl_certificate {d}/client.crt;"),
            "proxy_ssl_certificate_key",
        ),
    ];
    for (i, (directives, expect)) in cases.iter().enumerate() {
        let conf = t.write(
            &format!("bad{i}.conf"),
            &format!(
                "events {{}}\nhttp {{ server {{ listen 127.0.0.1:8080; location / {{ proxy_pass https://127.0.0.1:8443; {directives} }} }} }}\n"
            ),
        );
        let out = Command::new(bin("protonc"))
            .arg("compile")
            .arg(&conf)
            .arg("-o")
            .arg(dir.join(format!("bad{i}.ir")))
            .output()
            .expect("protonc runs");
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{directives}: compiled\n{text}");
        assert!(text.contains(expect), "{directives}: {text}");
    }
    // Health checks speak plain HTTP: refused for an upstream proxied to over https://.
    let conf = t.write(
        "hc.conf",
        "events {}\nhttp { upstream b { server 127.0.0.1:8443; health_check; } server { listen 127.0.0.1:8080; location / { proxy_pass https://b; } } }\n",
    );
    let out = Command::new(bin("protonc"))
        .arg("compile")
        .arg(&conf)
        .arg("-o")
        .arg(dir.join("hc.ir"))
        .output()
        .expect("protonc runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("health checks of upstream \"b\" over https://"));
    // The same settings are fine where nothing is proxied to https://.
    let conf = t.write(
        "ok.conf",
        "events {}\nhttp { server { listen 127.0.0.1:8080; location / { proxy_pass http://127.0.0.1:8443; proxy_ssl_verify on; } } }\n",
    );
    let out = Command::new(bin("protonc"))
        .arg("compile")
        .arg(&conf)
        .arg("-o")
        .arg(dir.join("ok.ir"))
        .output()
        .expect("protonc runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An X.509 v1 certificate (what `openssl req -x509` makes without extensions, as nginx's
/// own tests do): served by the backend, accepted without `proxy_ssl_verify`, and with it
/// when it is itself trusted and its commonName is the name (a port in proxy_ssl_name is
/// not part of the name).
#[test]
fn x509_v1_certificates_as_openssl_req_makes_them() {
    let t = TempDir::new("ptls-v1-up");
    let dir = t.path();
    std::fs::write(
        dir.join("openssl.conf"),
        "[ req ]\nprompt = no\ndefault_bits = 2048\nencrypt_key = no\n\
         distinguished_name = dn\n[ dn ]\ncommonName = v1.example.com\n",
    )
    .expect("openssl.conf");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-new", "-config"])
        .arg(dir.join("openssl.conf"))
        .arg("-out")
        .arg(dir.join("v1.crt"))
        .arg("-keyout")
        .arg(dir.join("v1.key"))
        .output();
    if !made.is_ok_and(|o| o.status.success()) {
        eprintln!("openssl cannot make a certificate here; skipped");
        return;
    }
    let d = dir.display();
    let back = Proton::start(
        dir,
        &format!(
            r#"
error_log {d}/logs/error.log info;
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{{port}} ssl;
        ssl_certificate {d}/v1.crt;
        ssl_certificate_key {d}/v1.key;
        location / {{ return 200 {VARS}; }}
    }}
}}
"#
        ),
        1,
    );
    let u = Upstream {
        dir: dir.to_path_buf(),
        _t: t,
        p: back,
        _tb: Backend::start("unused"),
    };
    let (_f, p) = proxy(
        "ptls-v1",
        &u,
        "",
        r#"
        location /any/ { proxy_pass https://127.0.0.1:@B@/; }
        location /verify/ {
            proxy_pass https://127.0.0.1:@B@/;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate @D@/v1.crt;
            proxy_ssl_name v1.example.com:8443;
            proxy_ssl_server_name on;
        }
        location /wrong/ {
            proxy_pass https://127.0.0.1:@B@/;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate @D@/v1.crt;
            proxy_ssl_name other.example.com;
        }
        "#,
    );
    assert_eq!(vars(&p, "/any/")[0], "");
    assert_eq!(
        vars(&p, "/verify/")[0],
        "v1.example.com",
        "no port in the name"
    );
    assert_eq!(get(&p, "/wrong/").status, 502);
    assert!(
        p.logs().contains("does not match \"other.example.com\""),
        "{}",
        p.logs()
    );
}

/// `proxy_ssl_certificate` with variables (nginx ≥ 1.21): the certificate is chosen per
/// request, read when first used; an empty name sends none; a file that cannot be read is
/// a 500 with the file named in the error log.
#[test]
fn client_certificates_named_by_variables() {
    let t = TempDir::new("ptls-cert-vars-up");
    let dir = t.path().to_path_buf();
    let ca = Ca::new(&dir, "ca");
    let other = Ca::new(&dir, "other-ca");
    ca.issue(&dir, "backend", &["backend.test"]);
    ca.issue(&dir, "one", &["one.test"]);
    ca.issue(&dir, "two", &["two.test"]);
    other.issue(&dir, "stranger", &["stranger.test"]);
    let d = dir.display();
    let conf = format!(
        r#"
error_log {d}/logs/error.log info;
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{{port}} ssl;
        ssl_certificate {d}/backend.crt;
        ssl_certificate_key {d}/backend.key;
        ssl_verify_client optional_no_ca;
        ssl_client_certificate {d}/ca.crt;
        location / {{ return 200 "$ssl_client_verify|$ssl_client_s_dn"; }}
    }}
}}
"#
    );
    let up = Proton::start(&dir, &conf, 1);
    let ft = TempDir::new("ptls-cert-vars");
    let conf = format!(
        r#"
error_log {fd}/logs/error.log info;
events {{}}
http {{
    access_log off;
    proxy_ssl_session_reuse off;
    server {{
        listen 127.0.0.1:{{port}};
        location / {{
            proxy_pass https://127.0.0.1:{port}/;
            proxy_ssl_certificate {d}/$arg_c.crt;
            proxy_ssl_certificate_key {d}/$arg_c.key;
        }}
        location /none {{
            proxy_pass https://127.0.0.1:{port}/;
            proxy_ssl_certificate $arg_c;
            proxy_ssl_certificate_key $arg_c;
        }}
    }}
}}
"#,
        fd = ft.path().display(),
        port = up.port
    );
    let p = Proton::start(ft.path(), &conf, 1);
    let body = |path: &str| {
        let r = send(
            &p,
            format!("GET {path} HTTP/1.1\r\nHost: front.test\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        format!("{} {}", r.status, r.body_text())
    };
    assert_eq!(body("/?c=one"), "200 SUCCESS|CN=one", "{}", p.logs());
    assert_eq!(body("/?c=two"), "200 SUCCESS|CN=two", "{}", p.logs());
    // Read again from the worker's configs.
    assert_eq!(body("/?c=one"), "200 SUCCESS|CN=one", "{}", p.logs());
    assert!(
        body("/?c=stranger").starts_with("200 FAILED:"),
        "{}",
        p.logs()
    );
    assert_eq!(body("/none"), "200 NONE|", "{}", p.logs());
    assert!(body("/?c=missing").starts_with("500 "), "{}", p.logs());
    assert!(
        p.logs().contains("missing.crt") && p.logs().contains("while SSL handshaking to upstream"),
        "{}",
        p.logs()
    );
}

/// `proxy_ssl_verify` as OpenSSL checks for nginx, with certificates and CRLs made by
/// `openssl ca` as nginx's own tests make them: a CA certificate (no subjectAltName) used as
/// the server's, its name in the commonName, and version 1 CRLs (no extensions), one empty
/// and one that revokes the server's certificate.
#[test]
fn openssl_ca_certificates_and_version_1_crls() {
    let t = TempDir::new("ptls-crl-up");
    let dir = t.path().to_path_buf();
    let d = dir.display().to_string();
    std::fs::write(
        dir.join("openssl.conf"),
        "[ req ]\ndefault_bits = 2048\nencrypt_key = no\ndistinguished_name = dn\n\
         x509_extensions = ext\n[ dn ]\n[ ext ]\nbasicConstraints = critical,CA:TRUE\n",
    )
    .expect("openssl.conf");
    std::fs::write(
        dir.join("ca.conf"),
        format!(
            "[ ca ]\ndefault_ca = myca\n[ myca ]\nnew_certs_dir = {d}\ndatabase = {d}/certindex\n\
             default_md = sha256\npolicy = pol\nserial = {d}/certserial\ndefault_days = 1\n\
             x509_extensions = ext\n[ pol ]\ncommonName = supplied\n[ ext ]\n\
             basicConstraints = critical,CA:TRUE\nkeyUsage = critical, digitalSignature, cRLSign, keyCertSign\n"
        ),
    )
    .expect("ca.conf");
    std::fs::write(dir.join("certserial"), "1000").expect("serial");
    std::fs::write(dir.join("certindex"), "").expect("index");
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let made = run(&[
        "req",
        "-x509",
        "-new",
        "-config",
        "openssl.conf",
        "-subj",
        "/CN=root/",
        "-out",
        "root.crt",
        "-keyout",
        "root.key",
    ]) && run(&[
        "req",
        "-new",
        "-config",
        "openssl.conf",
        "-subj",
        "/CN=int/",
        "-out",
        "int.csr",
        "-keyout",
        "int.key",
    ]) && run(&[
        "ca", "-batch", "-config", "ca.conf", "-keyfile", "root.key", "-cert", "root.crt", "-subj",
        "/CN=int/", "-in", "int.csr", "-out", "int.crt",
    ]) && run(&[
        "ca",
        "-gencrl",
        "-config",
        "ca.conf",
        "-keyfile",
        "root.key",
        "-cert",
        "root.crt",
        "-out",
        "empty.crl",
        "-crldays",
        "1",
    ]) && run(&[
        "ca", "-config", "ca.conf", "-revoke", "int.crt", "-keyfile", "root.key", "-cert",
        "root.crt",
    ]) && run(&[
        "ca",
        "-gencrl",
        "-config",
        "ca.conf",
        "-keyfile",
        "root.key",
        "-cert",
        "root.crt",
        "-out",
        "revoked.crl",
        "-crldays",
        "1",
    ]);
    if !made {
        eprintln!("openssl cannot make the certificates here; skipped");
        return;
    }
    let back = Proton::start(
        &dir,
        &format!(
            "error_log {d}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\nserver {{\nlisten 127.0.0.1:{{port}} ssl;\nssl_certificate {d}/int.crt;\nssl_certificate_key {d}/int.key;\nreturn 200 fine;\n}}\n}}\n"
        ),
    1,
    );
    let ft = TempDir::new("ptls-crl");
    let b = back.port;
    let conf = format!(
        r#"
error_log {fd}/logs/error.log info;
events {{}}
http {{
    access_log off;
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate {d}/root.crt;
    proxy_ssl_session_reuse off;
    server {{
        listen 127.0.0.1:{{port}};
        location /empty {{ proxy_pass https://127.0.0.1:{b}/; proxy_ssl_name int; proxy_ssl_crl {d}/empty.crl; }}
        location /revoked {{ proxy_pass https://127.0.0.1:{b}/; proxy_ssl_name int; proxy_ssl_crl {d}/revoked.crl; }}
        location /name {{ proxy_pass https://127.0.0.1:{b}/; proxy_ssl_name other; }}
        location /nocrl {{ proxy_pass https://127.0.0.1:{b}/; proxy_ssl_name int; }}
    }}
}}
"#,
        fd = ft.path().display()
    );
    let p = Proton::start(ft.path(), &conf, 1);
    let status = |path: &str| get(&p, path).status;
    assert_eq!(status("/empty"), 200, "{}", p.logs());
    assert_eq!(status("/nocrl"), 200, "{}", p.logs());
    assert_eq!(status("/revoked"), 502, "{}", p.logs());
    assert!(
        p.logs()
            .contains("upstream SSL certificate verify error: (23:certificate revoked)"),
        "{}",
        p.logs()
    );
    assert_eq!(status("/name"), 502, "{}", p.logs());
    assert!(
        p.logs()
            .contains("upstream SSL certificate does not match \"other\""),
        "{}",
        p.logs()
    );
}
