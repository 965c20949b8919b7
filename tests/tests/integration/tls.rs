//! HTTPS: `listen … ssl`, certificates chosen by SNI and by the client's signature
//! algorithms, the `$ssl_*` variables, resumption with tickets across workers and reloads and
//! with a session cache, plain HTTP on a TLS port (497), `ssl_reject_handshake`, protonc's
//! refusals of bad files and settings, hostile handshakes, and real clients (a rustls client,
//! curl, `openssl s_client`, Python's ssl module).

use super::ocsp::openssl;
use proton_tests::{bin, parse_response, raw_exchange, wait_until, Proton, Response, TempDir};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A certificate and its key, written as PEM files `NAME.crt` and `NAME.key` in `dir`.
struct Cert {
    der: Vec<u8>,
}

fn make_cert(dir: &Path, name: &str, hosts: &[&str], rsa: bool) -> Cert {
    let key = if rsa {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .or_else(|_| {
                // aws-lc generates RSA keys; fall back to openssl only if it cannot.
                let out = Command::new("openssl")
                    .args([
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:2048",
                    ])
                    .output()
                    .expect("openssl genpkey");
                rcgen::KeyPair::from_pem(&String::from_utf8_lossy(&out.stdout))
            })
            .expect("RSA key")
    } else {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ECDSA key")
    };
    let names: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let cert = rcgen::CertificateParams::new(names)
        .expect("params")
        .self_signed(&key)
        .expect("self-signed");
    std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).expect("write cert");
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write key");
    Cert {
        der: cert.der().to_vec(),
    }
}

/// Accepts any server certificate (the tests check which one was sent), but checks the
/// handshake signatures with the provider, so a server signing with the wrong key fails.
#[derive(Debug)]
pub(super) struct AnyCert(pub(super) Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client config: `tls12_only` limits it to TLS 1.2, `suites` (if not empty) to those
/// cipher suites; its session store (tickets, ids) is its own.
fn client(tls12_only: bool, suites: &[rustls::SupportedCipherSuite]) -> Arc<ClientConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if !suites.is_empty() {
        provider.cipher_suites = suites.to_vec();
    }
    let provider = Arc::new(provider);
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut c = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

/// What one HTTPS exchange gave.
struct Exchange {
    response: Response,
    cert: Vec<u8>,
    resumed: bool,
}

/// One GET over a new TLS connection (`sni`: the name sent, `None` for none), with the
/// config's session store (so a second call may resume).
fn https_get(
    port: u16,
    config: &Arc<ClientConfig>,
    sni: Option<&str>,
    host: &str,
    path: &str,
) -> std::io::Result<Exchange> {
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_string()).expect("name"),
        None => ServerName::IpAddress(std::net::IpAddr::from(Ipv4Addr::LOCALHOST).into()),
    };
    let conn =
        rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let cert = s
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let resumed = s.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    Ok(Exchange {
        response: parse_response(&raw)?,
        cert,
        resumed,
    })
}

const VARS: &str = r#""$scheme|$https|$ssl_protocol|$ssl_cipher|$ssl_server_name|$ssl_session_reused|$ssl_alpn_protocol|$server_name|$pid""#;

/// Two name-based servers with their own certificates (ECDSA for a.test, RSA for b.test),
/// a default server with both kinds, and `{extra}` in http.
fn conf(dir: &Path, extra: &str) -> String {
    let d = dir.display();
    format!(
        r#"
error_log {d}/logs/error.log info;
events {{}}
http {{
    access_log off;
    {extra}
    server {{
        listen 127.0.0.1:{{port}} ssl default_server;
        server_name default.test;
        ssl_certificate {d}/both-ec.crt;
        ssl_certificate_key {d}/both-ec.key;
        ssl_certificate {d}/both-rsa.crt;
        ssl_certificate_key {d}/both-rsa.key;
        root {d}/html;
        location / {{ }}
        location /vars {{ return 200 {VARS}; }}
        location /go {{ return 302 /there; }}
    }}
    server {{
        listen 127.0.0.1:{{port}} ssl;
        server_name a.test;
        ssl_certificate {d}/a.crt;
        ssl_certificate_key {d}/a.key;
        location / {{ return 200 {VARS}; }}
    }}
    server {{
        listen 127.0.0.1:{{port}} ssl;
        server_name b.test *.b.test;
        ssl_certificate {d}/b.crt;
        ssl_certificate_key {d}/b.key;
        error_page 497 =301 https://$host:$server_port$request_uri;
        location / {{ return 200 {VARS}; }}
    }}
}}
"#
    )
}

struct Setup {
    _t: TempDir,
    p: Proton,
    a: Cert,
    b: Cert,
    both_ec: Cert,
    both_rsa: Cert,
}

fn setup(label: &str, extra: &str, workers: usize) -> Setup {
    let t = TempDir::new(label);
    let dir = t.path().to_path_buf();
    let a = make_cert(&dir, "a", &["a.test"], false);
    let b = make_cert(&dir, "b", &["b.test", "*.b.test"], true);
    let both_ec = make_cert(&dir, "both-ec", &["default.test"], false);
    let both_rsa = make_cert(&dir, "both-rsa", &["default.test"], true);
    std::fs::create_dir_all(dir.join("html")).expect("html");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(dir.join("html/big"), &big).expect("big");
    let p = Proton::start(&dir, &conf(&dir, extra), workers);
    Setup {
        _t: t,
        p,
        a,
        b,
        both_ec,
        both_rsa,
    }
}

fn fields(e: &Exchange) -> Vec<String> {
    e.response
        .body_text()
        .split('|')
        .map(str::to_string)
        .collect()
}

#[test]
fn sni_chooses_the_server_and_its_certificate() {
    let s = setup("tls-sni", "", 1);
    let c = client(false, &[]);
    let a = https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("a.test");
    assert_eq!(a.response.status, 200);
    assert_eq!(a.cert, s.a.der, "a.test's certificate");
    let f = fields(&a);
    assert_eq!(f[..3], ["https", "on", "TLSv1.3"], "{f:?}");
    assert!(
        f[3].starts_with("TLS_"),
        "an OpenSSL TLS 1.3 cipher name: {f:?}"
    );
    assert_eq!(f[4], "a.test");
    assert_eq!(f[5], ".");
    assert_eq!(f[6], "http/1.1");
    assert_eq!(f[7], "a.test");

    // A wildcard name, and a case and trailing-dot variant of it.
    let b = https_get(s.p.port, &c, Some("www.B.test"), "www.b.test", "/").expect("b");
    assert_eq!(b.cert, s.b.der, "the wildcard server's certificate");
    assert_eq!(fields(&b)[7], "b.test");

    // No SNI, or a name no server has: the default server's certificate (ECDSA first).
    let d = https_get(s.p.port, &c, None, "default.test", "/vars").expect("no SNI");
    assert_eq!(d.cert, s.both_ec.der);
    assert_eq!(fields(&d)[4], "", "no SNI name");
    let u = https_get(s.p.port, &c, Some("unknown.test"), "a.test", "/").expect("unknown");
    assert_eq!(
        u.cert, s.both_ec.der,
        "an unknown name gets the default server's"
    );
    // ... while the Host still chooses the server of the request (as nginx).
    assert_eq!(fields(&u)[7], "a.test");

    // TLS 1.2 with RSA suites only: the default server's RSA certificate.
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    let rsa = client(
        true,
        &[
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
    );
    let r = https_get(s.p.port, &rsa, None, "default.test", "/vars").expect("RSA client");
    assert_eq!(
        r.cert, s.both_rsa.der,
        "an RSA-only client gets the RSA certificate"
    );
    let f = fields(&r);
    assert_eq!(f[2], "TLSv1.2");
    assert!(f[3].starts_with("ECDHE-RSA-AES"), "{f:?}");
    // An ECDSA-capable TLS 1.2 client gets the ECDSA one.
    let e = https_get(s.p.port, &client(true, &[]), None, "x", "/vars").expect("TLS 1.2");
    assert_eq!(e.cert, s.both_ec.der);
}

#[test]
fn redirects_and_files_over_tls() {
    let s = setup("tls-files", "", 1);
    let c = client(false, &[]);
    let r = https_get(s.p.port, &c, None, "default.test", "/go").expect("redirect");
    assert_eq!(r.response.status, 302);
    assert_eq!(
        r.response.header("location"),
        Some(format!("https://default.test:{}/there", s.p.port).as_str()),
        "an https URL with the port, as nginx builds it"
    );
    let big = https_get(s.p.port, &c, None, "default.test", "/big").expect("big file");
    assert_eq!(big.response.status, 200);
    let want: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    assert!(
        big.response.body == want,
        "3 MB file arrives intact over TLS"
    );
}

#[test]
fn plain_http_to_a_tls_port_gets_497() {
    let s = setup("tls-497", "", 1);
    let (raw, closed) = raw_exchange(
        s.p.port,
        b"GET /x HTTP/1.1\r\nHost: default.test\r\n\r\n",
        Duration::from_secs(10),
    );
    let r = parse_response(&raw).expect("a response");
    assert_eq!(r.status, 400);
    assert!(
        r.body_text()
            .contains("The plain HTTP request was sent to HTTPS port"),
        "{}",
        r.body_text()
    );
    assert!(closed, "the connection is closed after a 497");
    // error_page 497 redirects to https (the Host chose b.test's server).
    let (raw, _) = raw_exchange(
        s.p.port,
        b"GET /y?z=1 HTTP/1.1\r\nHost: b.test\r\n\r\n",
        Duration::from_secs(10),
    );
    let r = parse_response(&raw).expect("a response");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("https://b.test:{}/y?z=1", s.p.port).as_str())
    );
    assert!(s
        .p
        .logs()
        .contains("client sent plain HTTP request to HTTPS port"));
}

#[test]
fn tickets_resume_on_every_worker_and_across_a_reload() {
    let s = setup("tls-tickets", "", 2);
    let c = client(false, &[]);
    let first = https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("first");
    assert!(!first.resumed);
    let issuer = fields(&first)[8].clone();
    // Until a resumed handshake lands on the other worker (connections are spread between
    // the two workers by the kernel).
    let mut other_worker_resumed = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !other_worker_resumed && Instant::now() < deadline {
        let e = https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("again");
        let f = fields(&e);
        assert!(e.resumed, "every later connection resumes: {f:?}");
        assert_eq!(f[5], "r", "$ssl_session_reused");
        other_worker_resumed = f[8] != issuer;
    }
    assert!(
        other_worker_resumed,
        "a ticket from one worker resumes on the other"
    );

    // A reload: new workers, same ticket keys.
    let old = s.p.workers();
    s.p.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(20), || {
            let w = s.p.workers();
            w.len() == 2 && w.iter().all(|p| !old.contains(p))
        }),
        "new workers after HUP: {:?} -> {:?}",
        old,
        s.p.workers()
    );
    let e = https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("after reload");
    assert!(
        e.resumed,
        "a ticket issued before the reload resumes after it"
    );
    assert!(!old.contains(&fields(&e)[8].parse().unwrap_or(0)));

    // ssl_session_tickets off, without a cache: nothing resumes.
    drop(s);
    let s = setup("tls-noresume", "ssl_session_tickets off;", 1);
    let c = client(false, &[]);
    https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("first");
    let e = https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("second");
    assert!(!e.resumed, "no tickets and no cache: a full handshake");
}

#[test]
fn a_shared_session_cache_resumes_by_id_on_every_worker() {
    let s = setup(
        "tls-cache",
        "ssl_session_tickets off; ssl_session_cache shared:SSL:1m; ssl_session_timeout 10m;",
        2,
    );
    for tls12 in [true, false] {
        let c = client(tls12, &[]);
        let first = https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("first");
        assert!(!first.resumed);
        // TLS 1.2 resumes the first session's id every time; TLS 1.3 uses each session
        // (a single-use ticket naming a cache entry) once, and gets the next one.
        let mut maker = fields(&first)[8].clone();
        let mut crossed = false;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !crossed && Instant::now() < deadline {
            let e = https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("again");
            assert!(
                e.resumed,
                "resumed from the shared cache (TLS 1.2: {tls12})"
            );
            let pid = fields(&e)[8].clone();
            crossed = pid != maker;
            if !tls12 {
                maker = pid;
            }
        }
        assert!(
            crossed,
            "a session cached by one worker resumes on the other (TLS 1.2: {tls12})"
        );
    }
}

/// 64 lowercase hex digits: a 32-byte session id as nginx prints it.
fn is_session_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `$ssl_session_id`, with tickets (the default) and with a shared cache, over TLS 1.2 and
/// TLS 1.3: a resumed connection shows the id of the session it resumed, which its full
/// handshake showed; other sessions have other ids; plain HTTP has none.
#[test]
fn the_session_id_of_a_full_handshake_is_the_one_its_resumption_shows() {
    let modes = [
        ("tickets", ""),
        (
            "cache",
            "ssl_session_tickets off; ssl_session_cache shared:S:1m;",
        ),
    ];
    for (mode, extra) in modes {
        let t = TempDir::new(&format!("tls-session-id-{mode}"));
        let dir = t.path().to_path_buf();
        make_cert(&dir, "a", &["a.test"], false);
        let plain = proton_tests::free_port();
        let d = dir.display();
        let conf = format!(
            r#"
error_log {d}/logs/error.log info;
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{{port}} ssl;
        listen 127.0.0.1:{plain};
        server_name a.test;
        ssl_certificate {d}/a.crt;
        ssl_certificate_key {d}/a.key;
        {extra}
        location /id {{ return 200 "$ssl_session_id|$ssl_session_reused|$ssl_protocol"; }}
    }}
}}
"#
        );
        let p = Proton::start(&dir, &conf, 1);
        let id = |e: &Exchange| {
            let f = fields(e);
            assert_eq!(f.len(), 3, "{f:?}");
            f
        };
        for tls12 in [true, false] {
            let what = format!("{mode}, TLS 1.{}", if tls12 { 2 } else { 3 });
            let c = client(tls12, &[]);
            let get = |c: &Arc<ClientConfig>| {
                https_get(p.port, c, Some("a.test"), "a.test", "/id").expect(&what)
            };
            // A full handshake. Observed: the id is there when the request is read, in all
            // four cases, because rustls issues the tickets (TLS 1.3, and TLS 1.2 tickets) or
            // caches the session (TLS 1.2 id, TLS 1.3 single-use tickets) when the client's
            // Finished arrives, which always precedes the request.
            let full = get(&c);
            let f = id(&full);
            assert!(!full.resumed, "{what}: {f:?}");
            assert_eq!(f[1..], [".", if tls12 { "TLSv1.2" } else { "TLSv1.3" }]);
            assert!(is_session_id(&f[0]), "{what}: a full handshake's id: {f:?}");
            let first = f[0].clone();

            // Its resumption: the same id.
            let again = get(&c);
            let f = id(&again);
            assert!(again.resumed, "{what}: {f:?}");
            assert_eq!(f[1], "r");
            assert_eq!(f[0], first, "{what}: the resumed session's id");

            // Resumed again: tickets issued on a resumed connection carry the session's id,
            // and a TLS 1.2 client offers the same session id again. TLS 1.3 with a cache
            // stores each ticket as a session of its own (as OpenSSL): the client now
            // resumes with a ticket from the second connection, another id.
            let third = get(&c);
            let f = id(&third);
            assert!(third.resumed, "{what}: {f:?}");
            if mode == "cache" && !tls12 {
                assert!(is_session_id(&f[0]), "{what}: {f:?}");
                assert_ne!(
                    f[0], first,
                    "{what}: a TLS 1.3 cached session is per ticket"
                );
            } else {
                assert_eq!(f[0], first, "{what}: still the first session's id");
            }

            // Another client, another session, another id.
            let other = get(&client(tls12, &[]));
            let f = id(&other);
            assert!(!other.resumed, "{what}: {f:?}");
            assert!(is_session_id(&f[0]), "{what}: {f:?}");
            assert_ne!(f[0], first, "{what}: another session's id");
        }
        // Plain HTTP: empty, as nginx (the variable is not found).
        let (status, body) = proton_tests::get(plain, Some("a.test"), "/id");
        assert_eq!((status, body.as_str()), (200, "||"), "{mode}: plain HTTP");
    }
}

#[test]
fn reject_handshake_refuses_unknown_names() {
    let t = TempDir::new("tls-reject");
    let dir = t.path().to_path_buf();
    let a = make_cert(&dir, "a", &["a.test"], false);
    let d = dir.display();
    let conf = format!(
        r#"
error_log {d}/logs/error.log info;
events {{}}
http {{
    server {{
        listen 127.0.0.1:{{port}} ssl default_server;
        ssl_reject_handshake on;
    }}
    server {{
        listen 127.0.0.1:{{port}} ssl;
        server_name a.test;
        ssl_certificate {d}/a.crt;
        ssl_certificate_key {d}/a.key;
        return 200 "a";
    }}
}}
"#
    );
    let p = Proton::start(&dir, &conf, 1);
    let c = client(false, &[]);
    let ok = https_get(p.port, &c, Some("a.test"), "a.test", "/").expect("a.test");
    assert_eq!(ok.cert, a.der);
    assert_eq!(ok.response.body_text(), "a");
    for sni in [None, Some("other.test")] {
        let e = https_get(p.port, &c, sni, "a.test", "/");
        let msg = format!("{:?}", e.as_ref().err());
        assert!(e.is_err(), "the handshake for {sni:?} is refused");
        assert!(
            msg.contains("UnrecognisedName") || msg.contains("unrecognised"),
            "{msg}"
        );
    }
}

pub(super) fn protonc_error(dir: &Path, conf: &str) -> String {
    let path = dir.join("bad.conf");
    std::fs::write(&path, conf).expect("write");
    let out = Command::new(bin("protonc"))
        .arg("compile")
        .arg(&path)
        .arg("-o")
        .arg(dir.join("bad.ir"))
        .output()
        .expect("protonc");
    assert!(!out.status.success(), "protonc must refuse:\n{conf}");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn protonc_refuses_bad_tls_settings_with_the_file_named() {
    let t = TempDir::new("tls-bad");
    let dir = t.path().to_path_buf();
    make_cert(&dir, "a", &["a.test"], false);
    make_cert(&dir, "b", &["b.test"], false);
    std::fs::write(dir.join("empty.crt"), "not a certificate\n").expect("write");
    let d = dir.display();
    let server = |lines: &str| {
        format!(
            "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:8443 ssl;\n  {lines}\n }}\n}}\n"
        )
    };
    let cases: &[(String, &str)] = &[
        (server(""), "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive"),
        (
            server(&format!("ssl_certificate {d}/missing.crt; ssl_certificate_key {d}/a.key;")),
            "missing.crt",
        ),
        (
            server(&format!("ssl_certificate {d}/empty.crt; ssl_certificate_key {d}/a.key;")),
            "empty.crt",
        ),
        (
            server(&format!("ssl_certificate {d}/a.crt; ssl_certificate_key {d}/b.key;")),
            "do not match",
        ),
        (
            server(&format!("ssl_certificate {d}/a.crt;")),
            "no \"ssl_certificate_key\" is defined for certificate",
        ),
        (
            server(&format!(
                "ssl_certificate {d}/a.crt; ssl_certificate_key {d}/a.key; ssl_protocols TLSv1 TLSv1.2;"
            )),
            "protocol \"TLSv1\" is not supported",
        ),
        (
            server(&format!(
                "ssl_certificate {d}/a.crt; ssl_certificate_key {d}/a.key; ssl_ciphers HIGH:NOPE;"
            )),
            "NOPE",
        ),
        (
            server(&format!(
                "ssl_certificate {d}/a.crt; ssl_certificate_key {d}/a.key; ssl_ecdh_curve X448;"
            )),
            "X448",
        ),
        (server("ssl on;"), "no \"ssl_certificate\" is defined"),
    ];
    for (conf, want) in cases {
        let err = protonc_error(&dir, conf);
        assert!(
            err.contains(want),
            "expected {want:?} in:\n{err}\nfor:\n{conf}"
        );
        assert!(
            err.contains("bad.conf:"),
            "a file:line:col position:\n{err}"
        );
    }
    // ssl_dhparam: accepted with a warning (rustls has no DHE suites to use it for).
    let path = dir.join("dh.conf");
    std::fs::write(
        &path,
        server(&format!(
            "ssl_certificate {d}/a.crt; ssl_certificate_key {d}/a.key; ssl_dhparam {d}/dh.pem;"
        )),
    )
    .expect("write");
    let out = Command::new(bin("protonc"))
        .arg("check")
        .arg(&path)
        .output()
        .expect("protonc");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("\"ssl_dhparam\" has no effect"),
        "{err}"
    );
}

#[test]
fn hostile_handshakes_cost_nothing_and_time_out() {
    let s = setup("tls-hostile", "client_header_timeout 1s;", 1);
    let c = client(false, &[]);
    // A handshake that stalls after a record header: the connection is closed by
    // client_header_timeout while other clients are served.
    let mut stalled = TcpStream::connect((Ipv4Addr::LOCALHOST, s.p.port)).expect("connect");
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .expect("partial hello");
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let ok = https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("served meanwhile");
    assert_eq!(ok.response.status, 200);
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = stalled.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the stalled handshake is closed, not answered");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "closed by the handshake timeout"
    );

    // Garbage after a handshake record type, oversized and truncated records: closed,
    // the worker lives on.
    let cases: Vec<Vec<u8>> = vec![
        [0x16, 0x03, 0x03, 0xff, 0xff]
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0x41, 70_000))
            .collect(),
        vec![0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 9, 9],
        vec![0x16; 4096],
        (0..=255u8).cycle().take(10_000).map(|b| b | 0x80).collect(),
    ];
    for case in &cases {
        let (_, closed) = raw_exchange(s.p.port, case, Duration::from_secs(5));
        assert!(closed, "closed after {} bytes of garbage", case.len());
    }
    let worker = s.p.the_worker();
    let ok = https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("still serving");
    assert_eq!(ok.response.status, 200);
    assert_eq!(s.p.the_worker(), worker, "the same worker: nothing crashed");
    assert!(!s.p.logs().contains("panicked"), "{}", s.p.logs());
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[test]
fn curl_openssl_and_python_clients() {
    let s = setup("tls-clients", "", 1);
    let port = s.p.port;
    let url = format!("https://a.test:{port}/");
    let resolve = format!("a.test:{port}:127.0.0.1");
    // curl (OpenSSL), two requests on one kept-alive connection.
    assert!(have("curl"), "curl is installed by .ci/run");
    let out = Command::new("curl")
        .args([
            "-sk",
            "--resolve",
            &resolve,
            &url,
            &url,
            "-w",
            "|%{num_connects}\n",
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("https|on|TLSv1.3").count(), 2, "{text}");
    assert!(
        text.contains("|1\n") && text.contains("|0\n"),
        "one connection reused: {text}"
    );

    // openssl s_client: TLS 1.2 and 1.3, a session saved and resumed.
    for version in ["-tls1_2", "-tls1_3"] {
        let sess = s.p.logs().len(); // any unique number
        let sess = std::env::temp_dir().join(format!(
            "proton-sess-{}-{sess}{version}",
            std::process::id()
        ));
        let run = |extra: &[&str]| {
            let mut c = Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &format!("127.0.0.1:{port}"),
                    "-servername",
                    "a.test",
                    version,
                    "-ign_eof",
                ])
                .args(extra)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("openssl");
            c.stdin
                .take()
                .expect("stdin")
                .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                .expect("write");
            String::from_utf8_lossy(&c.wait_with_output().expect("output").stdout).to_string()
        };
        let sess_s = sess.display().to_string();
        let first = run(&["-sess_out", &sess_s]);
        assert!(first.contains("New, TLSv1."), "{first}");
        assert!(first.contains("https|on|TLSv1."), "{first}");
        let second = run(&["-sess_in", &sess_s]);
        assert!(
            second.contains("Reused, TLSv1."),
            "resumed with {version}: {second}"
        );
        assert!(second.contains("|r|"), "$ssl_session_reused: {second}");
        let _ = std::fs::remove_file(&sess);
    }

    // Python's ssl module.
    if have("python3") {
        let script = format!(
            "import ssl, http.client\n\
             ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
             c = http.client.HTTPSConnection('127.0.0.1', {port}, context=ctx)\n\
             c.request('GET', '/', headers={{'Host': 'a.test'}}); r = c.getresponse()\n\
             print(r.status, r.read().decode())\n"
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("200 https|on|TLSv1.3"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn an_ocsp_response_file_is_stapled() {
    let t = TempDir::new("tls-stapling");
    let dir = t.path().to_path_buf();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=stapling-ca"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
    ]);
    openssl(&dir, &ca);
    let mut csr = vec![
        "req",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
    ];
    csr.extend(ec);
    openssl(&dir, &csr);
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "leaf.crt",
        ],
    );
    std::fs::write(dir.join("index.txt"), "").expect("index");
    openssl(
        &dir,
        &[
            "ocsp",
            "-issuer",
            "ca.crt",
            "-cert",
            "leaf.crt",
            "-reqout",
            "req.der",
            "-no_nonce",
        ],
    );
    openssl(
        &dir,
        &[
            "ocsp",
            "-index",
            "index.txt",
            "-rsigner",
            "ca.crt",
            "-rkey",
            "ca.key",
            "-CA",
            "ca.crt",
            "-reqin",
            "req.der",
            "-respout",
            "resp.der",
        ],
    );
    let d = dir.display();
    let conf = format!(
        "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:{{port}} ssl;\n  ssl_certificate {d}/leaf.crt;\n  ssl_certificate_key {d}/leaf.key;\n  ssl_stapling on;\n  ssl_stapling_file {d}/resp.der;\n  return 200 ok;\n }}\n}}\n"
    );
    let p = Proton::start(&dir, &conf, 1);
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", p.port),
            "-status",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OCSP Response Status: successful"), "{text}");
    // A file that is not an OCSP response is refused by protonc.
    std::fs::write(dir.join("bad.der"), "not DER").expect("write");
    let err = protonc_error(
        &dir,
        &conf
            .replace("resp.der", "bad.der")
            .replace("{port}", "8443"),
    );
    assert!(err.contains("is not a DER OCSP response"), "{err}");
}

#[test]
fn an_x509_v1_certificate_is_served_as_openssl_makes_it() {
    // `openssl req -x509` with a config that has no extensions makes a version 1
    // certificate (nginx's own tests make them so); webpki cannot parse those, but a server
    // only sends its certificate, and the key check reads the public key from any version.
    let t = TempDir::new("tls-v1");
    let dir = t.path().to_path_buf();
    std::fs::write(
        dir.join("openssl.conf"),
        "[ req ]\ndefault_bits = 2048\nencrypt_key = no\ndistinguished_name = dn\n[ dn ]\n",
    )
    .expect("conf");
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-new",
            "-config",
            "openssl.conf",
            "-subj",
            "/CN=localhost/",
            "-out",
            "v1.crt",
            "-keyout",
            "v1.key",
        ],
    );
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", "v1.crt"])
        .current_dir(&dir)
        .output()
        .expect("openssl x509");
    assert!(String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"));
    let d = dir.display();
    let conf = format!(
        "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:{{port}} ssl;\n  ssl_certificate {d}/v1.crt;\n  ssl_certificate_key {d}/v1.key;\n  return 200 v1;\n }}\n}}\n"
    );
    let p = Proton::start(&dir, &conf, 1);
    // (rustls's client, like webpki, refuses version 1 certificates; curl's OpenSSL takes them.)
    let out = Command::new("curl")
        .args(["-sk", &format!("https://127.0.0.1:{}/", p.port)])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v1");
    // A key of another certificate is still refused.
    make_cert(&dir, "other", &["x"], true);
    let err = protonc_error(
        &dir,
        &conf
            .replace("v1.key", "other.key")
            .replace("{port}", "8443"),
    );
    assert!(err.contains("do not match"), "{err}");
}

#[test]
fn a_reload_picks_up_renewed_certificates_and_a_broken_one_keeps_the_old() {
    let s = setup("tls-renew", "", 1);
    let dir = s._t.path().to_path_buf();
    let c = client(false, &[]);
    let before = https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("before");
    assert_eq!(before.cert, s.a.der);
    // Renewed in place (same names), then HUP: the new certificate is served.
    let renewed = make_cert(&dir, "a", &["a.test"], false);
    assert_ne!(renewed.der, s.a.der);
    let old = s.p.workers();
    s.p.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(20), || {
            https_get(s.p.port, &client(false, &[]), Some("a.test"), "a.test", "/")
                .is_ok_and(|e| e.cert == renewed.der)
        }),
        "the renewed certificate is served after HUP:\n{}",
        s.p.logs()
    );
    assert!(wait_until(Duration::from_secs(20), || s
        .p
        .workers()
        .iter()
        .all(|w| !old.contains(w))));
    // A broken key at the next reload: the reload fails, the workers keep serving.
    std::fs::write(dir.join("a.key"), "garbage\n").expect("break the key");
    let serving = s.p.workers();
    s.p.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(20), || s.p.logs().contains("a.key")),
        "the failed reload names the file:\n{}",
        s.p.logs()
    );
    let still = https_get(s.p.port, &client(false, &[]), Some("a.test"), "a.test", "/")
        .expect("still serving");
    assert_eq!(still.cert, renewed.der);
    assert_eq!(s.p.workers(), serving, "the same workers go on");
}

/// The headless Chromium Debian packages (`chromium-headless-shell`, installed by .ci/run).
pub(super) fn chromium() -> Option<&'static str> {
    ["chromium-headless-shell", "chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// [`chromium`], or `None` with a note that the test is skipped (never in CI, which
/// installs it).
fn chromium_or_skip() -> Option<&'static str> {
    let b = chromium();
    if b.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs chromium-headless-shell"
        );
        eprintln!("skipped: no headless Chromium here");
    }
    b
}

#[test]
fn a_browser_loads_a_page_and_its_script_over_https() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let s = setup("tls-browser", "", 1);
    let dom = load_page(
        browser,
        &s._t.path().join("html"),
        &s._t.path().join("chromium-profile"),
        &format!("https://default.test:{}/", s.p.port),
        &["--host-resolver-rules=MAP default.test 127.0.0.1"],
    );
    assert!(
        dom.contains("<title>loaded by https:</title>") && dom.contains("page"),
        "the page and its script came over TLS:\n{dom}"
    );
}

/// Writes a page and its script into `root` and has headless Chromium load `url` (which
/// serves `root`): the DOM it ends with (the script sets the title), then its stderr.
pub(super) fn load_page(
    browser: &str,
    root: &Path,
    profile: &Path,
    url: &str,
    extra: &[&str],
) -> String {
    std::fs::write(
        root.join("index.html"),
        "<!doctype html><html><head><title>waiting</title><script src=\"/app.js\"></script></head><body>page</body></html>\n",
    )
    .expect("page");
    std::fs::write(
        root.join("app.js"),
        "document.title = 'loaded by ' + location.protocol;\n",
    )
    .expect("script");
    load_url(browser, profile, url, extra)
}

/// Has headless Chromium load `url`: the DOM it ends with, then its stderr. A browser that
/// crashes (killed by a signal, or gone without dumping a DOM: headless Chromium segfaults
/// now and then on a loaded machine) is started again, at most three times; what it loads
/// is judged by the caller.
pub(super) fn load_url(browser: &str, profile: &Path, url: &str, extra: &[&str]) -> String {
    use std::os::unix::process::ExitStatusExt;
    let run = || {
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--ignore-certificate-errors",
                "--virtual-time-budget=5000",
                "--dump-dom",
            ])
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .expect("chromium runs")
    };
    let mut out = run();
    for _ in 0..2 {
        // (A browser that dumped a DOM ran; one killed by a signal, or that died without
        // a DOM, is the browser's failure, not the page's.)
        let dumped = out
            .stdout
            .windows(5)
            .any(|w| w.eq_ignore_ascii_case(b"<html"));
        if out.status.signal().is_none() && dumped {
            break;
        }
        out = run();
    }
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn an_encrypted_key_opens_with_ssl_password_file() {
    let t = TempDir::new("tls-password");
    let dir = t.path().to_path_buf();
    std::fs::write(
        dir.join("openssl.conf"),
        "[ req ]\ndistinguished_name = dn\n[ dn ]\n",
    )
    .expect("conf");
    // OpenSSL 3 writes an encrypted PKCS#8 key (PBES2, AES-128-CBC).
    openssl(
        &dir,
        &[
            "genrsa",
            "-out",
            "enc.key",
            "-passout",
            "pass:secret",
            "-aes128",
            "2048",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-new",
            "-config",
            "openssl.conf",
            "-subj",
            "/CN=enc/",
            "-out",
            "enc.crt",
            "-key",
            "enc.key",
            "-passin",
            "pass:secret",
        ],
    );
    std::fs::write(dir.join("passwords"), "wrong\r\nsecret\r\n").expect("passwords");
    std::fs::write(dir.join("bad-passwords"), "wrong\n").expect("passwords");
    let d = dir.display();
    let conf = format!(
        "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:{{port}} ssl;\n  ssl_certificate {d}/enc.crt;\n  ssl_certificate_key {d}/enc.key;\n  ssl_password_file {d}/passwords;\n  return 200 opened;\n }}\n}}\n"
    );
    let p = Proton::start(&dir, &conf, 1);
    let out = Command::new("curl")
        .args(["-sk", &format!("https://127.0.0.1:{}/", p.port)])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "opened");
    let refused = |conf: &str, want: &str| {
        let err = protonc_error(&dir, &conf.replace("{port}", "8443"));
        assert!(err.contains(want), "{want:?} in:\n{err}");
    };
    refused(
        &conf.replace("/passwords;", "/bad-passwords;"),
        "none of the passwords",
    );
    refused(
        &conf.replace(&format!("  ssl_password_file {d}/passwords;\n"), ""),
        "no ssl_password_file",
    );
    // The same key as a client certificate to upstreams, with proxy_ssl_password_file.
    let upstream = |extra: &str| {
        format!(
            "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:8080;\n  location / {{\n   proxy_pass https://127.0.0.1:8443;\n   proxy_ssl_certificate {d}/enc.crt;\n   proxy_ssl_certificate_key {d}/enc.key;\n   {extra}\n  }}\n }}\n}}\n"
        )
    };
    let ok = upstream(&format!("proxy_ssl_password_file {d}/passwords;"));
    std::fs::write(dir.join("up.conf"), &ok).expect("write");
    let out = Command::new(bin("protonc"))
        .arg("compile")
        .arg(dir.join("up.conf"))
        .arg("-o")
        .arg(dir.join("up.ir"))
        .output()
        .expect("protonc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    refused(&upstream(""), "no ssl_password_file");
}

/// A real ClientHello, as the rustls client writes it.
fn client_hello(sni: &str) -> Vec<u8> {
    let name = ServerName::try_from(sni.to_string()).expect("name");
    let mut c = rustls::ClientConnection::new(client(false, &[]), name).expect("client");
    let mut out = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut out).expect("hello");
    }
    out
}

#[test]
fn mutated_and_truncated_client_hellos_never_hurt_the_worker() {
    let s = setup("tls-fuzz", "client_header_timeout 2s;", 1);
    let worker = s.p.the_worker();
    let hello = client_hello("a.test");
    // A small deterministic generator (xorshift), so that a failure can be replayed.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // Every prefix length class of the hello, then the peer closes.
    for cut in [1, 3, 5, 6, 9, 40, hello.len() / 2, hello.len() - 1] {
        cases.push(hello[..cut].to_vec());
    }
    // Bit flips and byte changes anywhere in the hello, one to eight at a time.
    for _ in 0..150 {
        let mut m = hello.clone();
        for _ in 0..(next() % 8 + 1) {
            let i = (next() as usize) % m.len();
            m[i] ^= 1 << (next() % 8);
        }
        cases.push(m);
    }
    // Random records: a plausible header with a random length and body.
    for _ in 0..50 {
        let len = (next() % 20_000) as usize;
        let mut m = vec![0x16, 0x03, (next() % 4) as u8, (len >> 8) as u8, len as u8];
        m.extend((0..len.min(5000)).map(|_| next() as u8));
        cases.push(m);
    }
    // Each case is sent and the client's side shut, as a client that gives up does; the
    // server must close too. Eight at a time.
    let port = s.p.port;
    let per = cases.len().div_ceil(8);
    let hanging: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .chunks(per)
            .enumerate()
            .map(|(k, chunk)| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .enumerate()
                        .filter(|(_, case)| !sent_then_closed(port, case))
                        .map(|(i, _)| k * per + i)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("sender"))
            .collect()
    });
    assert!(hanging.is_empty(), "cases left hanging: {hanging:?}");
    let c = client(false, &[]);
    let ok = https_get(s.p.port, &c, Some("a.test"), "a.test", "/").expect("still serving");
    assert_eq!(ok.response.status, 200);
    assert_eq!(s.p.the_worker(), worker, "the same worker: nothing crashed");
    assert!(!s.p.logs().contains("panicked"), "{}", s.p.logs());
}

/// Sends `bytes`, shuts the sending side, and reads until the server closes (true) or five
/// seconds pass (false).
fn sent_then_closed(port: u16, bytes: &[u8]) -> bool {
    let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn a_handshake_flight_larger_than_the_socket_buffer_completes() {
    // A certificate file with a long chain (150 certificates, ~60 KB sent in the server's
    // first flight) on a listener with an 8 KB send buffer: the flight goes out in pieces,
    // each when the socket is writable, before the client has anything more to say.
    let t = TempDir::new("tls-bigflight");
    let dir = t.path().to_path_buf();
    let leaf = make_cert(&dir, "leaf", &["big.test"], false);
    let mut chain = std::fs::read_to_string(dir.join("leaf.crt")).expect("leaf");
    for i in 0..150 {
        make_cert(&dir, "filler", &[&format!("filler{i}.test")], false);
        chain.push_str(&std::fs::read_to_string(dir.join("filler.crt")).expect("filler"));
    }
    std::fs::write(dir.join("chain.crt"), chain).expect("chain");
    let d = dir.display();
    let conf = format!(
        "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:{{port}} ssl sndbuf=8k;\n  ssl_certificate {d}/chain.crt;\n  ssl_certificate_key {d}/leaf.key;\n  return 200 big;\n }}\n}}\n"
    );
    let p = Proton::start(&dir, &conf, 1);
    for tls12 in [false, true] {
        // A client with a 4 KB receive buffer: the server's writes block after a few KB.
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        sock.set_recv_buffer_size(4096).expect("rcvbuf");
        sock.connect(&std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, p.port)).into())
            .expect("connect");
        let tcp: TcpStream = sock.into();
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let name = ServerName::try_from("big.test").expect("name");
        let conn = rustls::ClientConnection::new(client(tls12, &[]), name).expect("client");
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(b"GET / HTTP/1.1\r\nHost: big.test\r\nConnection: close\r\n\r\n")
            .expect("the handshake completes");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let r = parse_response(&raw).expect("a response");
        assert_eq!(r.body_text(), "big", "TLS 1.2: {tls12}");
        let cert = s
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec());
        assert_eq!(cert, Some(leaf.der.clone()));
    }
}

#[test]
fn the_deprecated_ssl_on_still_makes_an_address_speak_tls() {
    let t = TempDir::new("tls-ssl-on");
    let dir = t.path().to_path_buf();
    let a = make_cert(&dir, "a", &["a.test"], false);
    let d = dir.display();
    let conf = format!(
        "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:{{port}};\n  ssl on;\n  ssl_certificate {d}/a.crt;\n  ssl_certificate_key {d}/a.key;\n  return 200 \"$https\";\n }}\n}}\n"
    );
    let p = Proton::start(&dir, &conf, 1);
    let e = https_get(p.port, &client(false, &[]), Some("a.test"), "a.test", "/").expect("TLS");
    assert_eq!(e.cert, a.der);
    assert_eq!(e.response.body_text(), "on");
    // protonc says it is deprecated.
    let out = Command::new(bin("protonc"))
        .arg("check")
        .arg(dir.join("proton.conf"))
        .output()
        .expect("protonc");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("W0011") && text.contains("listen ... ssl"),
        "{text}"
    );
}

/// One curl exchange, as `status|Location|body` (the body's `<title>` for an HTML page, whose
/// footer names the server).
fn curl_summary(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-k", "-w", "\n%{http_code}|%{redirect_url}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, tail) = text.rsplit_once('\n').unwrap_or((text.as_str(), ""));
    let body = match (body.find("<title>"), body.find("</title>")) {
        (Some(a), Some(b)) if a < b => body[a..b + 8].to_string(),
        _ => body.trim_end().to_string(),
    };
    format!("{tail}|{body}")
}

#[test]
fn tls_variables_redirects_and_the_497_page_as_nginx() {
    let t = TempDir::new("tls-diff");
    let dir = t.path().to_path_buf();
    make_cert(&dir, "a", &["localhost"], false);
    let d = dir.display();
    let server = |port: u16| {
        format!(
            r#"
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {d}/a.crt;
        ssl_certificate_key {d}/a.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location /v {{ return 200 "$https|$scheme|$ssl_protocol|$ssl_cipher|$ssl_server_name|$ssl_session_reused|$ssl_alpn_protocol|$ssl_curve"; }}
        location /c {{ return 200 "$ssl_ciphers"; }}
        location /r {{ return 302 /there; }}
        location /p {{ error_page 497 =307 https://$host:$server_port/from-plain; return 200; }}
    }}
"#
        )
    };
    let conf = format!(
        "events {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        server(0).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let p = Proton::start(&dir, &conf, 1);
    let cases: &[(&str, &[&str], &str)] = &[
        ("TLS 1.3 variables", &["--tlsv1.3"], "/v"),
        (
            "TLS 1.2 variables",
            &["--tlsv1.2", "--tls-max", "1.2"],
            "/v",
        ),
        ("redirect", &[], "/r"),
        ("plain HTTP to the TLS port", &["--plain"], "/v"),
        ("plain HTTP with error_page 497", &["--plain"], "/p"),
        ("the ciphers curl offers", &[], "/c"),
        (
            "the ciphers curl offers for TLS 1.2",
            &["--tlsv1.2", "--tls-max", "1.2"],
            "/c",
        ),
    ];
    let ask = |port: u16| -> Vec<String> {
        cases
            .iter()
            .map(|(_, flags, path)| {
                let resolve = format!("localhost:{port}:127.0.0.1");
                if flags.first() == Some(&"--plain") {
                    curl_summary(&[&format!("http://127.0.0.1:{port}{path}")])
                } else {
                    let url = format!("https://localhost:{port}{path}");
                    let mut args: Vec<&str> = flags.to_vec();
                    args.extend(["--resolve", &resolve, &url]);
                    curl_summary(&args)
                }
                .replace(&format!(":{port}"), ":PORT")
            })
            .collect()
    };
    let ours = ask(p.port);
    // What Proton must answer even where nginx is not installed.
    assert!(
        ours[0].starts_with("200||on|https|TLSv1.3|TLS_"),
        "{}",
        ours[0]
    );
    assert!(ours[1].contains("|TLSv1.2|ECDHE-ECDSA-"), "{}", ours[1]);
    assert!(
        ours[3].starts_with("400||<title>400 The plain HTTP request was sent to HTTPS port"),
        "{}",
        ours[3]
    );
    let Some(nginx) = proton_tests::nginx_binary() else {
        return;
    };
    let n = proton_tests::Nginx::start(&nginx, server);
    let theirs = ask(n.port());
    let labels: Vec<&str> = cases.iter().map(|c| c.0).collect();
    proton_tests::assert_same_as_nginx(&labels, &ours, &theirs, &p.logs());
}

/// A socket that writes one byte per call: every TLS record reaches the server in pieces.
struct OneByte(TcpStream);

impl Read for OneByte {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for OneByte {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(&buf[..buf.len().min(1)])
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[test]
fn records_split_anywhere_pipelined_requests_and_large_bodies() {
    let s = setup("tls-split", "", 1);
    for tls12 in [false, true] {
        // The handshake and a request, one byte per TCP segment.
        let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, s.p.port)).expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let name = ServerName::try_from("a.test").expect("name");
        let conn = rustls::ClientConnection::new(client(tls12, &[]), name).expect("client");
        let mut c = rustls::StreamOwned::new(conn, OneByte(tcp));
        c.write_all(b"GET /one HTTP/1.1\r\nHost: a.test\r\n\r\n")
            .expect("request");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // The whole response: its head, then Content-Length bytes.
        let complete = |got: &[u8]| {
            let text = String::from_utf8_lossy(got);
            let Some(end) = text.find("\r\n\r\n") else {
                return false;
            };
            let len = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            got.len() >= end + 4 + len
        };
        while !complete(&got) {
            let n = c.read(&mut buf).expect("response");
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&got)
        );

        // Two pipelined requests, then a 300 KB body spread over many records, then a
        // last request: each is answered, in order, on the same connection.
        let mut s2 = rustls::StreamOwned::new(c.conn, c.sock.0);
        let body = vec![b'x'; 300_000];
        let mut req = Vec::new();
        req.extend_from_slice(b"GET /vars HTTP/1.1\r\nHost: default.test\r\n\r\n");
        req.extend_from_slice(b"GET /go HTTP/1.1\r\nHost: default.test\r\n\r\n");
        req.extend_from_slice(
            format!(
                "POST /vars HTTP/1.1\r\nHost: default.test\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        req.extend_from_slice(&body);
        req.extend_from_slice(
            b"GET /big HTTP/1.1\r\nHost: default.test\r\nConnection: close\r\n\r\n",
        );
        s2.write_all(&req).expect("pipelined requests");
        let mut raw = Vec::new();
        match s2.read_to_end(&mut raw) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => panic!("read: {e}"),
        }
        let text = String::from_utf8_lossy(&raw);
        let statuses: Vec<&str> = text
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &text[i + 9..i + 12])
            .collect();
        assert_eq!(
            statuses[..4],
            ["200", "302", "200", "200"],
            "TLS 1.2: {tls12}"
        );
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        assert!(
            raw.ends_with(&big),
            "the 3 MB file arrives whole (TLS 1.2: {tls12})"
        );
    }
}

/// `ssl_certificate` with variables (nginx ≥ 1.15.9): the files are named per handshake with
/// the connection's variables; a name without files fails that handshake only, with the
/// file in the error log.
#[test]
fn certificates_named_by_the_sni_name() {
    let t = TempDir::new("tls-cert-vars");
    let dir = t.path().to_path_buf();
    let a = make_cert(&dir, "a.test", &["a.test"], false);
    let b = make_cert(&dir, "b.test", &["b.test"], true);
    let fallback = make_cert(&dir, "fallback", &["fallback.test"], false);
    let d = dir.display();
    let conf = format!(
        r#"error_log {d}/logs/error.log info;
events {{}}
http {{
    access_log off;
    map $ssl_server_name $cert {{
        default fallback;
        a.test a.test;
        b.test b.test;
        c.test c.test;
    }}
    server {{
        listen 127.0.0.1:{{port}} ssl;
        ssl_certificate {d}/$cert.crt;
        ssl_certificate_key {d}/$cert.key;
        return 200 "$ssl_server_name";
    }}
}}
"#
    );
    let p = Proton::start(&dir, &conf, 1);
    let config = client(false, &[]);
    for _ in 0..2 {
        for (sni, want) in [
            (Some("a.test"), &a),
            (Some("b.test"), &b),
            (Some("other.test"), &fallback),
            (None, &fallback),
        ] {
            let e = https_get(p.port, &config, sni, "x.test", "/")
                .unwrap_or_else(|e| panic!("{sni:?}: {e}\n{}", p.logs()));
            assert_eq!(e.cert, want.der, "{sni:?}");
            assert_eq!(e.response.body_text(), sni.unwrap_or(""));
        }
    }
    assert!(https_get(p.port, &config, Some("c.test"), "c.test", "/").is_err());
    assert!(
        p.logs().contains("c.test.crt") && p.logs().contains("while SSL handshaking"),
        "{}",
        p.logs()
    );
    // The others still work.
    let e = https_get(p.port, &config, Some("a.test"), "a.test", "/").expect("a.test");
    assert_eq!(e.cert, a.der);
}

/// nginx's session id context (ssl_certificate.t): the same name on three ports, two with
/// certificate a, one with certificate b. A session made on the first resumes on the
/// second (same certificate, another server block) and not on the third (another
/// certificate: a full handshake, its own certificate), by ticket and by session id.
#[test]
fn sessions_resume_only_where_the_certificate_is_the_same() {
    let t = TempDir::new("tls-ctx");
    let dir = t.path().to_path_buf();
    make_cert(&dir, "a", &["one.test"], false);
    let b = make_cert(&dir, "b", &["one.test"], false);
    let (same, other) = (proton_tests::free_port(), proton_tests::free_port());
    let d = dir.display();
    for (label, cache) in [
        ("tickets", ""),
        (
            "cache",
            "ssl_session_tickets off; ssl_session_cache shared:S:1m;",
        ),
    ] {
        // The same server block on three ports: certificate a, a, b.
        let servers: String = [
            ("{port}".to_string(), "a"),
            (same.to_string(), "a"),
            (other.to_string(), "b"),
        ]
        .iter()
        .map(|(port, cert)| {
            format!(
                "server {{ listen 127.0.0.1:{port} ssl; server_name one.test; \
                     ssl_certificate {d}/{cert}.crt; ssl_certificate_key {d}/{cert}.key; \
                     location / {{ return 200 \"$ssl_session_reused\"; }} }}\n"
            )
        })
        .collect();
        let conf = format!(
            "error_log {d}/logs/error.log info;\nevents {{}}\n\
             http {{\naccess_log off;\n{cache}\n{servers}}}\n"
        );
        let p = Proton::start(&dir, &conf, 1);
        // TLS 1.2 for the session cache (one session id, offered again each time).
        let c = client(!cache.is_empty(), &[]);
        let get = |port| https_get(port, &c, Some("one.test"), "one.test", "/").expect("GET");
        assert!(!get(p.port).resumed, "{label}: the first handshake is full");
        let e = get(same);
        assert!(
            e.resumed,
            "{label}: same certificate, another port: resumed"
        );
        assert_eq!(e.response.body_text(), "r");
        let e = get(other);
        assert!(!e.resumed, "{label}: another certificate: not resumed");
        assert_eq!((e.response.body_text().as_str(), &e.cert), (".", &b.der));
        drop(p);
    }
}

/// A browser decodes what Proton compresses: over HTTPS Chromium offers gzip, br (and zstd
/// in newer versions); the server picks br (its preference among equal q-values), the
/// script runs only if Chromium decoded it, and a fetch of it reports the coding.
#[test]
fn a_browser_decodes_compressed_responses() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let s = setup(
        "tls-compress",
        "types { text/html html; application/javascript js; } \
         gzip on; gzip_types application/javascript; brotli on; \
         brotli_types application/javascript; zstd on; zstd_types application/javascript;",
        1,
    );
    let html = s._t.path().join("html");
    let mut js = String::from("window.ran = true;\n");
    for i in 0..3000 {
        js.push_str(&format!(
            "// line {i}: a comment that makes the script worth compressing\n"
        ));
    }
    std::fs::write(html.join("c.js"), &js).expect("script");
    std::fs::write(
        html.join("c.html"),
        "<!doctype html><html><head><title>waiting</title><script src=\"/c.js\"></script>\
         <script>fetch('/c.js').then(r => r.text().then(t => { document.title = 'enc ' + \
         r.headers.get('content-encoding') + ' ' + (window.ran ? 'ran' : 'not run') + ' ' + \
         t.length; }));</script></head><body>page</body></html>\n",
    )
    .expect("page");
    let dom = load_url(
        browser,
        &s._t.path().join("chromium-profile"),
        &format!("https://default.test:{}/c.html", s.p.port),
        &["--host-resolver-rules=MAP default.test 127.0.0.1"],
    );
    let want = format!("<title>enc br ran {}</title>", js.len());
    assert!(dom.contains(&want), "{want} in:\n{dom}");
}
