//! Client certificates: `ssl_verify_client on | optional | optional_no_ca`,
//! `ssl_client_certificate` and `ssl_trusted_certificate` (which CA names are announced),
//! `ssl_verify_depth`, `ssl_crl`, the 495/496 answers and `error_page` for them, nginx's 421
//! when the SNI name and the Host differ, the `$ssl_client_*` variables, protonc's refusals,
//! and the same requests against nginx where it is installed.

use proton_tests::{
    assert_same_as_nginx, bin, nginx_binary, parse_response, Nginx, Proton, Response, TempDir,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SerialNumber,
};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, SignatureScheme};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A certificate with its key (kept to sign others and to authenticate with).
struct Id {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn params(cn: &str, ca: bool, serial: &[u8]) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::OrganizationName, "Org");
    p.distinguished_name
        .push(DnType::OrganizationalUnitName, "Unit");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.serial_number = Some(SerialNumber::from(serial.to_vec()));
    p.not_before = rcgen::date_time_ymd(2020, 1, 2);
    p.not_after = rcgen::date_time_ymd(2040, 3, 4);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
    } else {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    p
}

fn key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key")
}

fn self_signed(cn: &str, ca: bool, serial: &[u8]) -> Id {
    let key = key();
    let cert = params(cn, ca, serial).self_signed(&key).expect("sign");
    Id { cert, key }
}

fn signed(cn: &str, ca: bool, serial: &[u8], by: &Id) -> Id {
    let key = key();
    let cert = params(cn, ca, serial)
        .signed_by(&key, &by.cert, &by.key)
        .expect("sign");
    Id { cert, key }
}

/// The files and identities of one test.
struct Pki {
    ca: Id,
    client: Id,
    other_client: Id,
    self_client: Id,
    int1: Id,
    int: Id,
    leaf: Id,
    revoked: Id,
}

/// Writes `NAME.crt` files (and the server's key, the CRL, a file with the CA twice).
fn pki(dir: &Path) -> Pki {
    let w = |name: &str, text: String| std::fs::write(dir.join(name), text).expect("write");
    let server = self_signed("localhost", false, &[1]);
    w("server.crt", server.cert.pem());
    w("server.key", server.key.serialize_pem());
    let ca = self_signed("Test CA", true, &[0x10]);
    let other_ca = self_signed("Other CA", true, &[0x11]);
    let root = self_signed("Root CA", true, &[0x12]);
    let int1 = signed("Intermediate CA 1", true, &[0x17], &root);
    let int = signed("Intermediate CA", true, &[0x13], &int1);
    let leaf = signed("leaf", false, &[0x14], &int);
    let client = signed("client", false, &[0x0a, 0xbc, 0xde], &ca);
    let other_client = signed("other", false, &[0x15], &other_ca);
    let self_client = self_signed("myself", false, &[0x16]);
    let revoked = signed("revoked", false, &[0x66, 0x77], &ca);
    w("ca.crt", ca.cert.pem());
    w("ca-twice.crt", ca.cert.pem() + &ca.cert.pem());
    w("other-ca.crt", other_ca.cert.pem());
    w("root.crt", root.cert.pem());
    let crl = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2020, 1, 1),
        next_update: rcgen::date_time_ymd(2090, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(vec![0x66, 0x77]),
            revocation_time: rcgen::date_time_ymd(2021, 1, 1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca.cert, &ca.key)
    .expect("CRL");
    w("ca.crl", crl.pem().expect("CRL PEM"));
    // The root revokes the first intermediate (serial 17).
    let root_crl = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2020, 1, 1),
        next_update: rcgen::date_time_ymd(2090, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(vec![0x17]),
            revocation_time: rcgen::date_time_ymd(2021, 1, 1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&root.cert, &root.key)
    .expect("CRL");
    w("root.crl", root_crl.pem().expect("CRL PEM"));
    Pki {
        ca,
        client,
        other_client,
        self_client,
        int1,
        int,
        leaf,
        revoked,
    }
}

const VARS: &str = r#""$ssl_client_verify|$ssl_client_s_dn|$ssl_client_i_dn|$ssl_client_serial|$ssl_client_fingerprint|$ssl_client_v_start|$ssl_client_v_end|$ssl_client_v_remain|$ssl_client_s_dn_legacy|$ssl_client_i_dn_legacy""#;

/// The servers (one per verification mode, chosen by SNI) of the http block; `listen` is
/// the listen line's address.
fn servers(dir: &Path, listen: &str) -> String {
    let d = dir.display();
    format!(
        r#"
    ssl_certificate {d}/server.crt;
    ssl_certificate_key {d}/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {{
        listen {listen} ssl default_server;
        server_name on.test;
        ssl_verify_client on;
        ssl_client_certificate {d}/ca.crt;
        location / {{ return 200 {VARS}; }}
        location /raw {{ return 200 $ssl_client_raw_cert; }}
        location /cert {{ return 200 $ssl_client_cert; }}
        location /escaped {{ return 200 $ssl_client_escaped_cert; }}
    }}
    server {{
        listen {listen} ssl;
        server_name optional.test;
        ssl_verify_client optional;
        ssl_client_certificate {d}/ca-twice.crt;
        ssl_trusted_certificate {d}/other-ca.crt;
        location / {{ return 200 {VARS}; }}
    }}
    server {{
        listen {listen} ssl;
        server_name noca.test;
        ssl_verify_client optional_no_ca;
        location / {{ return 200 {VARS}; }}
    }}
    server {{
        listen {listen} ssl;
        server_name plain.test;
        location / {{ return 200 {VARS}; }}
    }}
    server {{
        listen {listen} ssl;
        server_name depth1.test;
        ssl_verify_client on;
        ssl_client_certificate {d}/root.crt;
        location / {{ return 200 {VARS}; }}
    }}
    server {{
        listen {listen} ssl;
        server_name depth2.test;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_client_certificate {d}/root.crt;
        location / {{ return 200 {VARS}; }}
    }}
    server {{
        listen {listen} ssl;
        server_name crl.test;
        ssl_verify_client on;
        ssl_client_certificate {d}/ca.crt;
        ssl_crl {d}/ca.crl;
        location / {{ return 200 {VARS}; }}
    }}
    server {{
        listen {listen} ssl;
        server_name crlchain.test;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_client_certificate {d}/root.crt;
        ssl_crl {d}/root.crl;
        location / {{ return 200 {VARS}; }}
    }}
    server {{
        listen {listen} ssl;
        server_name pages.test;
        ssl_verify_client on;
        ssl_client_certificate {d}/ca.crt;
        error_page 495 496 https://example.test/cert-error;
        location / {{ return 200 {VARS}; }}
    }}
"#
    )
}

/// Presents a chain (or none) and records the CA names the server announced.
#[derive(Debug)]
struct Present {
    key: Option<Arc<CertifiedKey>>,
    hints: Mutex<Vec<Vec<u8>>>,
}

impl ResolvesClientCert for Present {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        *self.hints.lock().expect("lock") = root_hint_subjects.iter().map(|h| h.to_vec()).collect();
        self.key.clone()
    }
    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// A client presenting `chain` (leaf first, `key` the leaf's), or no certificate.
fn client(chain: &[&Id], tls12: bool) -> (Arc<ClientConfig>, Arc<Present>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key = chain.first().map(|leaf| {
        let der = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()));
        let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der).expect("key");
        let certs = chain.iter().map(|i| i.cert.der().clone()).collect();
        Arc::new(CertifiedKey::new(certs, signer))
    });
    let present = Arc::new(Present {
        key,
        hints: Mutex::new(Vec::new()),
    });
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let c = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(super::tls::AnyCert(provider)))
        .with_client_cert_resolver(present.clone());
    (Arc::new(c), present)
}

/// One GET over a new connection with SNI `sni` and `Host: host`.
fn get(port: u16, config: &Arc<ClientConfig>, sni: &str, host: &str, path: &str) -> Response {
    let name = ServerName::try_from(sni.to_string()).expect("name");
    let conn = rustls::ClientConnection::new(config.clone(), name).expect("client");
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut s = rustls::StreamOwned::new(conn, tcp);
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("request");
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => panic!("reading the response from {sni}: {e}"),
    }
    parse_response(&raw).expect("a response")
}

fn sha1_hex(der: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A response in one line: status and body, the error pages told by their text.
fn summary(r: &Response) -> String {
    let body = r.body_text();
    if body.contains("No required SSL certificate was sent") {
        return format!("{} [496 page]", r.status);
    }
    if body.contains("The SSL certificate error") {
        return format!("{} [495 page]", r.status);
    }
    if r.status == 421 {
        return "421".into();
    }
    if let Some(l) = r.header("location") {
        return format!("{} {l}", r.status);
    }
    format!("{} {body}", r.status)
}

struct Setup {
    t: TempDir,
    p: Proton,
    pki: Pki,
}

fn setup(label: &str) -> Setup {
    let t = TempDir::new(label);
    let pki = pki(t.path());
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        servers(t.path(), "127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    Setup { t, p, pki }
}

#[test]
fn verify_on_answers_495_and_496_and_passes_a_good_certificate() {
    let s = setup("tlsc-on");
    let port = s.p.port;
    let (none, _) = client(&[], false);
    let r = get(port, &none, "on.test", "on.test", "/");
    assert_eq!(summary(&r), "400 [496 page]", "{}", s.p.logs());
    assert!(s
        .p
        .logs()
        .contains("client sent no required SSL certificate while reading client request headers"));

    let (other, _) = client(&[&s.pki.other_client], false);
    let r = get(port, &other, "on.test", "on.test", "/");
    assert_eq!(summary(&r), "400 [495 page]");
    assert!(
        s.p.logs().contains("client SSL certificate verify error: (21:unable to verify the first certificate) while reading client request headers"),
        "{}",
        s.p.logs()
    );

    for tls12 in [false, true] {
        let (good, hints) = client(&[&s.pki.client], tls12);
        let r = get(port, &good, "on.test", "on.test", "/");
        assert_eq!(r.status, 200, "{}", s.p.logs());
        let f: Vec<String> = r.body_text().split('|').map(str::to_string).collect();
        assert_eq!(f[0], "SUCCESS");
        assert_eq!(f[1], "CN=client,OU=Unit,O=Org");
        assert_eq!(f[2], "CN=Test CA,OU=Unit,O=Org");
        assert_eq!(f[3], "0ABCDE");
        assert_eq!(f[4], sha1_hex(s.pki.client.cert.der()));
        assert_eq!(f[5], "Jan  2 00:00:00 2020 GMT");
        assert_eq!(f[6], "Mar  4 00:00:00 2040 GMT");
        let days: u64 = f[7].parse().expect("days");
        assert!((4000..8000).contains(&days), "{days}");
        // The CA of ssl_client_certificate is announced.
        let hints = hints.hints.lock().expect("lock").clone();
        assert_eq!(hints.len(), 1);
    }

    // The certificate itself, three ways.
    let (good, _) = client(&[&s.pki.client], false);
    let pem = s.pki.client.cert.pem().replace("\r\n", "\n");
    let raw = get(port, &good, "on.test", "on.test", "/raw").body_text();
    assert_eq!(raw, pem);
    let tabbed = get(port, &good, "on.test", "on.test", "/cert").body_text();
    assert_eq!(tabbed, pem.trim_end().replace('\n', "\n\t"));
    let escaped = get(port, &good, "on.test", "on.test", "/escaped").body_text();
    assert!(
        !escaped.contains(' ') && !escaped.contains('\n'),
        "{escaped}"
    );
    assert_eq!(unescape(&escaped), pem);
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn optional_and_optional_no_ca() {
    let s = setup("tlsc-opt");
    let port = s.p.port;
    let (none, _) = client(&[], false);
    let (good, hints) = client(&[&s.pki.client], false);
    let (other, _) = client(&[&s.pki.other_client], false);
    let (myself, _) = client(&[&s.pki.self_client], false);

    let r = get(port, &none, "optional.test", "optional.test", "/");
    assert_eq!(summary(&r), "200 NONE|||||||||");
    assert!(get(port, &good, "optional.test", "optional.test", "/")
        .body_text()
        .starts_with("SUCCESS|CN=client"));
    // Only ssl_client_certificate's CA is announced (once, though the file has it twice);
    // ssl_trusted_certificate's verifies without being named.
    let h = hints.hints.lock().expect("lock").clone();
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(String::from_utf8_lossy(&h[0]).contains("Test CA"));
    assert!(get(port, &other, "optional.test", "optional.test", "/")
        .body_text()
        .starts_with("SUCCESS|CN=other"));
    let r = get(port, &myself, "optional.test", "optional.test", "/");
    assert_eq!(summary(&r), "400 [495 page]");

    // optional_no_ca: an unknown CA or a self-signed certificate goes through, reported.
    let r = get(port, &other, "noca.test", "noca.test", "/");
    assert_eq!(r.status, 200);
    assert!(
        r.body_text().starts_with(
            "FAILED:unable to verify the first certificate|CN=other,OU=Unit,O=Org|CN=Other CA"
        ),
        "{}",
        r.body_text()
    );
    let r = get(port, &myself, "noca.test", "noca.test", "/");
    assert!(
        r.body_text().starts_with("FAILED:self-signed certificate|"),
        "{}",
        r.body_text()
    );
    let r = get(port, &none, "noca.test", "noca.test", "/");
    assert_eq!(summary(&r), "200 NONE|||||||||");
    // No verification: no certificate is asked for.
    let r = get(port, &good, "plain.test", "plain.test", "/");
    assert_eq!(summary(&r), "200 NONE|||||||||");
}

#[test]
fn depth_crl_error_page_and_misdirected_requests() {
    let s = setup("tlsc-depth");
    let port = s.p.port;
    // leaf → Intermediate CA → Intermediate CA 1 → Root CA: two intermediates.
    let (chain, _) = client(&[&s.pki.leaf, &s.pki.int, &s.pki.int1], false);
    let r = get(port, &chain, "depth1.test", "depth1.test", "/");
    assert_eq!(summary(&r), "400 [495 page]");
    assert!(s.p.logs().contains("(22:certificate chain too long)"));
    let r = get(port, &chain, "depth2.test", "depth2.test", "/");
    assert!(
        r.body_text()
            .starts_with("SUCCESS|CN=leaf,OU=Unit,O=Org|CN=Intermediate CA,OU=Unit,O=Org|14|"),
        "{}",
        r.body_text()
    );
    // Without the intermediate, the chain does not reach the root.
    let (alone, _) = client(&[&s.pki.leaf], false);
    assert_eq!(
        summary(&get(port, &alone, "depth2.test", "depth2.test", "/")),
        "400 [495 page]"
    );

    let (revoked, _) = client(&[&s.pki.revoked], false);
    let r = get(port, &revoked, "crl.test", "crl.test", "/");
    assert_eq!(summary(&r), "400 [495 page]");
    assert!(s.p.logs().contains("(23:certificate revoked)"));
    let (good, _) = client(&[&s.pki.client], false);
    assert!(get(port, &good, "crl.test", "crl.test", "/")
        .body_text()
        .starts_with("SUCCESS|"));
    // Several faults: the last one OpenSSL meets is reported (here the root's CRL revoking
    // an intermediate, after the two missing CRLs of the lower certificates).
    let r = get(port, &chain, "crlchain.test", "crlchain.test", "/");
    assert_eq!(summary(&r), "400 [495 page]");
    assert!(s.p.logs().contains("(23:certificate revoked)"));

    // error_page 495 496.
    let (none, _) = client(&[], false);
    let (other, _) = client(&[&s.pki.other_client], false);
    for c in [&none, &other] {
        let r = get(port, c, "pages.test", "pages.test", "/");
        assert_eq!(summary(&r), "302 https://example.test/cert-error");
    }

    // A Host other than the SNI name, for a server that verifies: 421 (also when the Host
    // falls to the verifying default server); to a server that does not, served (with the
    // certificate the SNI server asked for).
    let r = get(port, &good, "optional.test", "on.test", "/");
    assert_eq!(summary(&r), "421");
    assert!(s.p.logs().contains(
        "client attempted to request the server name different from the one that was negotiated"
    ));
    assert_eq!(
        summary(&get(port, &good, "plain.test", "unknown.test", "/")),
        "421"
    );
    assert!(get(port, &good, "on.test", "plain.test", "/")
        .body_text()
        .starts_with("SUCCESS|CN=client"));
    assert_eq!(
        get(port, &good, "on.test", "ON.test", "/").status,
        200,
        "the Host compared without case"
    );
    let _ = &s.pki.ca;
}

#[test]
fn protonc_refuses_client_verification_without_usable_files() {
    let t = TempDir::new("tlsc-protonc");
    let dir = t.path();
    pki(dir);
    std::fs::write(dir.join("empty.pem"), "").expect("empty");
    let d = dir.display();
    let conf = |extra: &str| {
        format!(
            "events {{}}\nhttp {{\nserver {{\nlisten 127.0.0.1:8443 ssl;\nssl_certificate {d}/server.crt;\nssl_certificate_key {d}/server.key;\n{extra}\n}}\n}}\n"
        )
    };
    let cases: &[(&str, &str)] = &[
        (
            "ssl_verify_client on;",
            "no ssl_client_certificate for ssl_verify_client",
        ),
        (
            "ssl_verify_client optional;",
            "no ssl_client_certificate for ssl_verify_client",
        ),
        (
            "ssl_verify_client on; ssl_client_certificate missing.crt;",
            "missing.crt",
        ),
        (
            "ssl_verify_client on; ssl_client_certificate empty.pem;",
            "empty.pem\": no PEM certificate",
        ),
        ("ssl_trusted_certificate server.key;", "server.key"),
        ("ssl_crl ca.crt;", "ca.crt\": no PEM CRL"),
        ("ssl_verify_client maybe;", "maybe"),
        ("ssl_verify_depth -1;", "ssl_verify_depth"),
    ];
    for (extra, want) in cases {
        let err = super::tls::protonc_error(dir, &conf(extra));
        assert!(err.contains(want), "{extra}: {err}");
    }
    // optional_no_ca needs no CA, and the files of a working set compile.
    for ok in [
        "ssl_verify_client optional_no_ca;",
        "ssl_verify_client on; ssl_trusted_certificate ca.crt; ssl_crl ca.crl;",
    ] {
        let path = dir.join("ok.conf");
        std::fs::write(&path, conf(ok)).expect("write");
        let out = Command::new(bin("protonc"))
            .arg("compile")
            .arg(&path)
            .arg("-o")
            .arg(dir.join("ok.ir"))
            .current_dir(dir)
            .output()
            .expect("protonc");
        assert!(
            out.status.success(),
            "{ok}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn client_certificates_as_nginx() {
    let s = setup("tlsc-nginx");
    let pki = &s.pki;
    let (none, _) = client(&[], false);
    let (good, _) = client(&[&pki.client], false);
    let (other, _) = client(&[&pki.other_client], false);
    let (myself, _) = client(&[&pki.self_client], false);
    let (chain, _) = client(&[&pki.leaf, &pki.int, &pki.int1], false);
    let (short, _) = client(&[&pki.int, &pki.int1], false);
    let (revoked, _) = client(&[&pki.revoked], false);
    let cases: Vec<(&str, &Arc<ClientConfig>, &str, &str)> = vec![
        ("none", &none, "on.test", "on.test"),
        ("good", &good, "on.test", "on.test"),
        ("other CA", &other, "on.test", "on.test"),
        ("none", &none, "optional.test", "optional.test"),
        (
            "other CA, trusted",
            &other,
            "optional.test",
            "optional.test",
        ),
        ("self-signed", &myself, "optional.test", "optional.test"),
        ("other CA", &other, "noca.test", "noca.test"),
        ("self-signed", &myself, "noca.test", "noca.test"),
        ("good", &good, "plain.test", "plain.test"),
        ("chain", &chain, "depth1.test", "depth1.test"),
        ("chain", &chain, "depth2.test", "depth2.test"),
        ("one intermediate", &short, "depth1.test", "depth1.test"),
        ("revoked", &revoked, "crl.test", "crl.test"),
        ("good", &good, "crl.test", "crl.test"),
        (
            "chain, CA revoked",
            &chain,
            "crlchain.test",
            "crlchain.test",
        ),
        ("none", &none, "pages.test", "pages.test"),
        ("good", &good, "optional.test", "on.test"),
        ("good", &good, "on.test", "plain.test"),
    ];
    let ask = |port: u16| -> Vec<String> {
        cases
            .iter()
            .map(|(_, c, sni, host)| summary(&get(port, c, sni, host, "/")))
            .collect()
    };
    let ours = ask(s.p.port);
    let Some(nginx) = nginx_binary() else { return };
    let dir = s.t.path().to_path_buf();
    let n = Nginx::start(&nginx, |port| servers(&dir, &format!("127.0.0.1:{port}")));
    let theirs = ask(n.port());
    let labels: Vec<String> = cases
        .iter()
        .map(|(l, _, sni, host)| format!("{l} sni={sni} host={host}"))
        .collect();
    assert_same_as_nginx(&labels, &ours, &theirs, &s.p.logs());
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// X.509 v1 certificates (what `openssl req -x509` makes without extensions): served, and
/// accepted from clients, as OpenSSL does (webpki alone refuses them).
#[test]
fn version_1_certificates_from_openssl() {
    if !have("openssl") || !have("curl") {
        eprintln!("openssl or curl missing; skipped");
        return;
    }
    let t = TempDir::new("tlsc-v1");
    let dir = t.path();
    std::fs::write(
        dir.join("openssl.conf"),
        "[ req ]\ndefault_bits = 2048\nencrypt_key = no\ndistinguished_name = dn\n[ dn ]\n",
    )
    .expect("conf");
    for name in ["server", "v1client"] {
        let ok = Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-x509", "-new", "-config", "openssl.conf"])
            .args(["-subj", &format!("/CN={name}/")])
            .args([
                "-out",
                &format!("{name}.crt"),
                "-keyout",
                &format!("{name}.key"),
            ])
            .output()
            .expect("openssl");
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\nserver {{\nlisten 127.0.0.1:{{port}} ssl;\nssl_certificate {d}/server.crt;\nssl_certificate_key {d}/server.key;\nssl_verify_client on;\nssl_client_certificate {d}/v1client.crt;\nlocation / {{ return 200 \"$ssl_client_verify|$ssl_client_s_dn\"; }}\n}}\n}}\n"
    );
    let p = Proton::start(dir, &conf, 1);
    for tls in ["--tlsv1.2", "--tlsv1.3"] {
        let out = Command::new("curl")
            .current_dir(dir)
            .args([
                "-sk",
                tls,
                "--cert",
                "v1client.crt",
                "--key",
                "v1client.key",
            ])
            .arg(format!("https://127.0.0.1:{}/", p.port))
            .output()
            .expect("curl");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "SUCCESS|CN=v1client",
            "{tls}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            p.logs()
        );
    }
}
