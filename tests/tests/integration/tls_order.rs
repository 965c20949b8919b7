//! Which cipher suite a handshake gets: the server's order by default (Proton's default
//! `ssl_prefer_server_ciphers on`), except that a client that puts ChaCha20 first gets it;
//! the client's order with `off` (nginx's default).

use super::ocsp::openssl;
use proton_tests::{Proton, TempDir};
use std::path::Path;
use std::process::{Command, Stdio};

/// The suite `openssl s_client` negotiates offering `suites` in that order (TLS 1.3 names
/// with `-ciphersuites`, TLS 1.2 OpenSSL names with `-cipher -tls1_2`).
fn negotiated(port: u16, tls13: bool, suites: &str) -> String {
    let mut args = vec![
        "s_client".to_string(),
        "-connect".into(),
        format!("127.0.0.1:{port}"),
        "-servername".into(),
        "localhost".into(),
    ];
    if tls13 {
        args.extend(["-tls1_3".into(), "-ciphersuites".into(), suites.into()]);
    } else {
        args.extend(["-tls1_2".into(), "-cipher".into(), suites.into()]);
    }
    let out = Command::new("openssl")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.split_once(", Cipher is ")
                .map(|(_, c)| c.trim().to_string())
        })
        .unwrap_or_else(|| format!("no cipher in: {text}"))
}

fn start(dir: &Path, extra: &str) -> Proton {
    let d = dir.display();
    let conf = format!(
        "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:{{port}} ssl;\n  ssl_certificate {d}/c.crt;\n  ssl_certificate_key {d}/c.key;\n  {extra}\n  return 200 ok;\n }}\n}}\n"
    );
    Proton::start(dir, &conf, 1)
}

#[test]
fn server_order_by_default_with_chacha_for_clients_that_prefer_it() {
    let t = TempDir::new("tls-order");
    let dir = t.path().to_path_buf();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "c.key",
            "-out",
            "c.crt",
        ],
    );
    const AES128: &str = "TLS_AES_128_GCM_SHA256";
    const AES256: &str = "TLS_AES_256_GCM_SHA384";
    const CHACHA: &str = "TLS_CHACHA20_POLY1305_SHA256";
    const E_AES128: &str = "ECDHE-ECDSA-AES128-GCM-SHA256";
    const E_AES256: &str = "ECDHE-ECDSA-AES256-GCM-SHA384";
    const E_CHACHA: &str = "ECDHE-ECDSA-CHACHA20-POLY1305";
    let p = start(&dir, "");
    // The server's order (AES-256-GCM first), whatever the client lists first...
    assert_eq!(
        negotiated(p.port, true, &format!("{AES128}:{AES256}")),
        AES256
    );
    assert_eq!(
        negotiated(p.port, false, &format!("{E_AES128}:{E_AES256}")),
        E_AES256
    );
    // ...but a client that puts ChaCha20 first gets it, in TLS 1.3 and 1.2.
    assert_eq!(
        negotiated(p.port, true, &format!("{CHACHA}:{AES256}:{AES128}")),
        CHACHA
    );
    assert_eq!(
        negotiated(p.port, false, &format!("{E_CHACHA}:{E_AES256}")),
        E_CHACHA
    );
    // ChaCha20 listed after AES is not chosen.
    assert_eq!(
        negotiated(p.port, true, &format!("{AES128}:{CHACHA}")),
        AES128
    );
    drop(p);
    // A certificate named by variables: the config made for one kind of client is not
    // handed to the other (each is kept apart).
    let p = start(
        &dir,
        "ssl_certificate $ssl_server_name.crt;\n  ssl_certificate_key $ssl_server_name.key;",
    );
    std::fs::copy(dir.join("c.crt"), dir.join("localhost.crt")).expect("copy");
    std::fs::copy(dir.join("c.key"), dir.join("localhost.key")).expect("copy");
    for _ in 0..2 {
        assert_eq!(
            negotiated(p.port, true, &format!("{AES128}:{AES256}")),
            AES256
        );
        assert_eq!(
            negotiated(p.port, true, &format!("{CHACHA}:{AES256}")),
            CHACHA
        );
    }
    drop(p);
    // nginx's default: the client's order.
    let p = start(&dir, "ssl_prefer_server_ciphers off;");
    assert_eq!(
        negotiated(p.port, true, &format!("{AES128}:{AES256}")),
        AES128
    );
    assert_eq!(
        negotiated(p.port, false, &format!("{E_AES128}:{E_AES256}")),
        E_AES128
    );
}
