//! `listen … proxy_protocol`: the PROXY protocol header (versions 1 and 2) before HTTP and
//! before TLS, `$proxy_protocol_*`, `real_ip_header proxy_protocol` (with `allow`/`deny`
//! and the access log seeing the client it names), and broken or late headers. The plain
//! cases run against proton-run and, where Debian's nginx is installed, against nginx.

use proton_tests::{
    assert_same_as_nginx, nginx_binary, parse_response, raw_exchange, wait_until, Nginx, Proton,
    TempDir,
};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// `{listen}` is the address line's `ip:port`; `{root}` a directory made by [`html`].
fn server(listen: &str, root: &str) -> String {
    format!(
        r#"
    add_header X-IP "$remote_addr!$remote_port" always;
    add_header X-PP "$proxy_protocol_addr!$proxy_protocol_port" always;
    add_header X-PPS "$proxy_protocol_server_addr!$proxy_protocol_server_port" always;
    server {{
        listen {listen} proxy_protocol;
        root {root};
        set_real_ip_from 127.0.0.1/32;
        location / {{ }}
        location /real {{ real_ip_header proxy_protocol; }}
        location /deny {{
            real_ip_header proxy_protocol;
            deny 192.0.2.1;
        }}
    }}
"#
    )
}

/// The files of [`server`]'s root.
fn html(t: &TempDir) -> String {
    let root = t.path().join("html");
    std::fs::create_dir_all(&root).expect("root");
    for f in ["index.html", "real", "deny"] {
        std::fs::write(root.join(f), "hello\n").expect("file");
    }
    root.display().to_string()
}

fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x20 | cmd);
    h.push(fam);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(body);
    h
}

fn v2_inet(tlv: bool) -> Vec<u8> {
    let mut body = vec![192, 0, 2, 1, 192, 0, 2, 2, 0, 123, 0x16, 0x2e];
    if tlv {
        body.extend_from_slice(&[0x02, 0x00, 0x04, b'h', b'o', b's', b't']);
    }
    v2(1, 0x11, &body)
}

fn v2_inet6() -> Vec<u8> {
    let mut body = Vec::new();
    for a in ["2001:db8::1", "2001:db8::2"] {
        body.extend_from_slice(&a.parse::<std::net::Ipv6Addr>().expect("v6").octets());
    }
    body.extend_from_slice(&[0, 123, 0x16, 0x2e]);
    v2(1, 0x21, &body)
}

/// Status and the three address headers of one exchange, or "closed" when the server
/// closed without answering.
fn summary(port: u16, header: &[u8], path: &str) -> String {
    let mut req = header.to_vec();
    req.extend_from_slice(
        format!("GET {path} HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let (raw, _) = raw_exchange(port, &req, Duration::from_secs(10));
    if raw.is_empty() {
        return "closed".into();
    }
    match parse_response(&raw) {
        Ok(r) => {
            // The socket's own client port changes with every connection.
            let ip = r.header("x-ip").unwrap_or("-");
            let ip = match ip.strip_prefix("127.0.0.1!") {
                Some(_) => "127.0.0.1!EPHEMERAL",
                None => ip,
            };
            format!(
                "{} ip={ip} pp={} pps={}",
                r.status,
                r.header("x-pp").unwrap_or("-"),
                r.header("x-pps").unwrap_or("-")
            )
        }
        Err(e) => format!("bad response: {e}"),
    }
}

#[test]
fn headers_variables_and_realip_as_nginx() {
    let t = TempDir::new("pp-nginx");
    let r = html(&t);
    let d = t.path().display();
    let conf = format!(
        "error_log {d}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        server("127.0.0.1:{port}", &r)
    );
    let p = Proton::start(t.path(), &conf, 1);
    let v1_4 = b"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n".to_vec();
    let v1_6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 123 5678\r\n".to_vec();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("v1 tcp4", v1_4.clone(), "/"),
        ("v1 tcp6", v1_6.clone(), "/"),
        ("v1 unknown", b"PROXY UNKNOWN\r\n".to_vec(), "/"),
        ("v1 tcp4 realip", v1_4.clone(), "/real"),
        ("v1 tcp6 realip", v1_6, "/real"),
        ("v1 tcp4 denied", v1_4, "/deny"),
        ("v2 inet", v2_inet(false), "/"),
        ("v2 inet with a TLV", v2_inet(true), "/real"),
        ("v2 inet6 realip", v2_inet6(), "/real"),
        ("v2 local", v2(0, 0x11, &[0; 12]), "/real"),
        ("v2 unix", v2(1, 0x31, &[0; 216]), "/"),
        ("no header", Vec::new(), "/"),
        ("v1 broken", b"PROXY TCP4 192.0.2.1 x 1 2\r\n".to_vec(), "/"),
        ("v2 addresses cut short", v2(1, 0x11, &[0; 6]), "/"),
    ];
    let ask = |port: u16| -> Vec<String> {
        cases
            .iter()
            .map(|(_, h, path)| summary(port, h, path))
            .collect()
    };
    let ours = ask(p.port);
    // What Proton must answer even where nginx is not installed.
    assert_eq!(
        ours[0],
        "200 ip=127.0.0.1!EPHEMERAL pp=192.0.2.1!123 pps=192.0.2.2!5678",
        "{}",
        p.logs()
    );
    assert!(ours[3].starts_with("200 ip=192.0.2.1!123 "), "{}", ours[3]);
    assert!(ours[5].starts_with("403 "), "{}", ours[5]);
    assert_eq!(ours[11], "closed");
    assert!(
        p.logs().contains("while reading PROXY protocol"),
        "{}",
        p.logs()
    );
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| server(&format!("127.0.0.1:{port}"), &r));
    let theirs = ask(n.port());
    let labels: Vec<&str> = cases.iter().map(|c| c.0).collect();
    assert_same_as_nginx(&labels, &ours, &theirs, &p.logs());
}

/// A header that arrives in pieces is waited for (nginx refuses it); one that never ends
/// is refused at the specification's limit; a client that sends nothing is closed after
/// client_header_timeout.
#[test]
fn a_header_in_pieces_is_waited_for_and_a_silent_client_times_out() {
    let t = TempDir::new("pp-pieces");
    let root = html(&t);
    let d = t.path().display();
    let conf = format!(
        "error_log {d}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\nclient_header_timeout 1s;\n{}}}\n",
        server("127.0.0.1:{port}", &root)
    );
    let p = Proton::start(t.path(), &conf, 1);
    for header in [
        b"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n".to_vec(),
        v2_inet(true),
    ] {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        for b in &header {
            s.write_all(&[*b]).expect("write");
            s.flush().expect("flush");
        }
        s.write_all(b"GET /real HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let r = parse_response(&raw).expect("a response");
        assert_eq!(r.status, 200, "{}", p.logs());
        assert_eq!(r.header("x-ip"), Some("192.0.2.1!123"));
    }
    // No CRLF within 107 bytes: refused.
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(300, b'x');
    assert_eq!(summary(p.port, &long, "/"), "closed");
    // Nothing at all: closed after client_header_timeout, with nginx's log line.
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).expect("closed by the server"), 0);
    assert!(wait_until(Duration::from_secs(5), || p.logs().contains(
        "timed out (110: Connection timed out) while reading PROXY protocol"
    )));
}

/// A TLS client behind a PROXY protocol header: the header comes first, then the
/// handshake, and the variables name the client it gave.
#[test]
fn tls_after_the_header() {
    let t = TempDir::new("pp-tls");
    let dir = t.path().to_path_buf();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = rcgen::CertificateParams::new(vec!["pp.test".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    std::fs::write(dir.join("pp.crt"), cert.pem()).expect("crt");
    std::fs::write(dir.join("pp.key"), key.serialize_pem()).expect("key");
    let d = dir.display();
    let conf = format!(
        r#"error_log {d}/logs/error.log info;
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{{port}} ssl proxy_protocol;
        ssl_certificate {d}/pp.crt;
        ssl_certificate_key {d}/pp.key;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        return 200 "$remote_addr|$proxy_protocol_addr|$proxy_protocol_server_port|$ssl_protocol";
    }}
}}
"#
    );
    let p = Proton::start(&dir, &conf, 1);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).expect("root");
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    for header in [
        b"PROXY TCP6 2001:db8::7 2001:db8::2 123 8443\r\n".to_vec(),
        v2_inet(false),
    ] {
        let mut tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        tcp.write_all(&header).expect("header");
        let name = rustls::pki_types::ServerName::try_from("pp.test").expect("name");
        let conn = rustls::ClientConnection::new(config.clone(), name).expect("client");
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(b"GET / HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n")
            .expect("request over TLS");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let r = parse_response(&raw).expect("a response");
        let want = if header.starts_with(b"PROXY") {
            "2001:db8::7|2001:db8::7|8443|TLSv1.3"
        } else {
            "192.0.2.1|192.0.2.1|5678|TLSv1.3"
        };
        assert_eq!(r.body_text(), want, "{}", p.logs());
    }
}

/// `$proxy_protocol_tlv_*` (nginx ≥ 1.23.2's names): top-level TLVs by name or type, the
/// `ssl` TLV's sub-TLVs and verify field; a name nginx does not know is a protonc error.
#[test]
fn tlv_variables() {
    let t = TempDir::new("pp-tlv");
    let d = t.path().display();
    let conf = format!(
        r#"error_log {d}/logs/error.log info;
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{{port}} proxy_protocol;
        return 200 "$proxy_protocol_tlv_authority|$proxy_protocol_tlv_0x02|$proxy_protocol_tlv_unique_id|$proxy_protocol_tlv_ssl_verify|$proxy_protocol_tlv_ssl_cn|$proxy_protocol_tlv_ssl_0x21|$proxy_protocol_tlv_0x0ae|$proxy_protocol_tlv_0x1ae|$proxy_protocol_tlv_alpn";
    }}
}}
"#
    );
    let p = Proton::start(t.path(), &conf, 1);
    let tlv = |ty: u8, v: &[u8]| {
        let mut o = vec![ty];
        o.extend_from_slice(&(v.len() as u16).to_be_bytes());
        o.extend_from_slice(v);
        o
    };
    let mut ssl = vec![0x01, 0, 0, 1, 2];
    ssl.extend(tlv(0x21, b"TLSv1.3"));
    ssl.extend(tlv(0x22, b"client.example"));
    let mut body = vec![192, 0, 2, 1, 192, 0, 2, 2, 0, 123, 0x16, 0x2e];
    body.extend(tlv(0x02, b"pp.example"));
    body.extend(tlv(0x05, b"id-7"));
    body.extend(tlv(0x20, &ssl));
    body.extend(tlv(0xae, b"custom"));
    let header = v2(1, 0x11, &body);
    let mut req = header.clone();
    req.extend_from_slice(b"GET / HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n");
    let (raw, _) = raw_exchange(p.port, &req, Duration::from_secs(10));
    let r = parse_response(&raw).expect("a response");
    assert_eq!(
        r.body_text(),
        "pp.example|pp.example|id-7|258|client.example|TLSv1.3|custom||",
        "{}",
        p.logs()
    );
    // Without TLVs (version 1) every one is empty.
    let mut req = b"PROXY TCP4 192.0.2.1 192.0.2.2 123 5678\r\n".to_vec();
    req.extend_from_slice(b"GET / HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n");
    let (raw, _) = raw_exchange(p.port, &req, Duration::from_secs(10));
    assert_eq!(
        parse_response(&raw).expect("a response").body_text(),
        "||||||||"
    );
    // An unknown name is refused with the names nginx knows.
    let bad = t.path().join("bad.conf");
    std::fs::write(
        &bad,
        "events {}\nhttp { server { listen 8080 proxy_protocol; return 200 $proxy_protocol_tlv_nope; } }\n",
    )
    .expect("write");
    let out = std::process::Command::new(proton_tests::bin("protonc"))
        .arg("check")
        .arg(&bad)
        .output()
        .expect("protonc");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.conf:2:") && err.contains("unknown PROXY protocol TLV \"nope\""),
        "{err}"
    );
}

/// `proxy_protocol on` towards upstreams (a Proton extension): each new upstream connection
/// starts with a PROXY v1 line naming the client and the address it connected to, and such a
/// connection is never reused for another request, even with `keepalive`.
#[test]
fn proxy_protocol_towards_upstreams() {
    let t = TempDir::new("pp-upstream");
    let back = proton_tests::free_port();
    let conf = format!(
        "worker_processes 1;
         events {{ }}
         http {{
             access_log off;
             upstream back {{ server 127.0.0.1:{back}; keepalive 8; }}
             server {{
                 listen 127.0.0.1:{{port}};
                 proxy_http_version 1.1;
                 proxy_set_header Connection \"\";
                 location / {{ proxy_pass http://back; proxy_protocol on; }}
             }}
             server {{
                 listen 127.0.0.1:{back} proxy_protocol;
                 location / {{
                     return 200 \"pp=$proxy_protocol_addr:$proxy_protocol_port to=$proxy_protocol_server_addr:$proxy_protocol_server_port conn=$connection\";
                 }}
             }}
         }}"
    );
    let p = Proton::start(t.path(), &conf, 1);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
        let me = s.local_addr().expect("local addr");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let r = parse_response(&out).unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
        assert_eq!(r.status, 200, "{}", p.logs());
        let body = r.body_text();
        let expect = format!("pp=127.0.0.1:{} to=127.0.0.1:{} conn=", me.port(), p.port);
        assert!(
            body.starts_with(&expect),
            "{body:?} does not start with {expect:?}"
        );
        seen.push(body.rsplit('=').next().unwrap_or_default().to_string());
    }
    // Three requests, three upstream connections (the front's keepalive cache was not used).
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "upstream connections reused: {seen:?}");
}
