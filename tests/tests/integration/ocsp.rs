//! OCSP stapling with responses fetched from a responder (`ssl_stapling` without a file):
//! a certificate chain and responses made by `openssl`, a responder on loopback that
//! records what it is asked, and `openssl s_client -status` reading the staple.

use proton_tests::{bin, wait_until, Proton, TempDir};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `openssl` with `args` in `dir`: its output; panics with its errors when it fails.
pub(super) fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A CA, and leaves `good` (serial 1001, its responder named in the certificate) and
/// `revoked` (serial 1002, no responder in it), `bare` (1003, neither); the OCSP
/// responses for good and revoked, signed by the CA.
fn pki(dir: &Path, responder: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=ocsp-ca"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
    ]);
    openssl(dir, &ca);
    std::fs::write(
        dir.join("aia.ext"),
        format!("authorityInfoAccess=OCSP;URI:{responder}/good\n"),
    )
    .expect("ext");
    std::fs::write(dir.join("none.ext"), "basicConstraints=CA:FALSE\n").expect("ext");
    for (name, serial, ext) in [
        ("good", "0x1001", "aia.ext"),
        ("revoked", "0x1002", "none.ext"),
        ("bare", "0x1003", "none.ext"),
    ] {
        let mut csr = vec!["req", "-subj", "/CN=localhost"];
        csr.extend(ec);
        let key = format!("{name}.key");
        let csr_file = format!("{name}.csr");
        csr.extend(["-keyout", &key, "-out", &csr_file]);
        openssl(dir, &csr);
        let crt = format!("{name}.crt");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr_file,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &crt,
            ],
        );
    }
    std::fs::write(
        dir.join("index.txt"),
        "V\t301231000000Z\t\t1001\tunknown\t/CN=localhost\n\
         R\t301231000000Z\t260101000000Z\t1002\tunknown\t/CN=localhost\n",
    )
    .expect("index");
    for name in ["good", "revoked"] {
        let crt = format!("{name}.crt");
        let req = format!("{name}.req");
        let resp = format!("{name}.resp");
        openssl(
            dir,
            &[
                "ocsp",
                "-issuer",
                "ca.crt",
                "-cert",
                &crt,
                "-reqout",
                &req,
                "-no_nonce",
            ],
        );
        openssl(
            dir,
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
                &req,
                "-respout",
                &resp,
                "-ndays",
                "1",
            ],
        );
    }
}

/// A responder on loopback: answers `/good/…` and `/revoked/…` with those responses and
/// keeps every request it got.
fn responder(l: TcpListener, dir: &Path) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let good = std::fs::read(dir.join("good.resp")).expect("good.resp");
    let revoked = std::fs::read(dir.join("revoked.resp")).expect("revoked.resp");
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req).to_string();
            let body = if text.starts_with("GET /revoked/") {
                &revoked
            } else {
                &good
            };
            log.lock().expect("log").push(text);
            let _ =
                s.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n\r\n");
            let _ = s.write_all(body);
        }
    });
    seen
}

/// `openssl s_client -status` to `port` with server name `name`: what it prints.
fn status(port: u16, name: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            name,
            "-status",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `%XX` escapes undone.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(Ok(v)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[test]
fn responses_are_fetched_checked_and_stapled() {
    let t = TempDir::new("ocsp-fetch");
    let dir = t.path().to_path_buf();
    // The responder listens before the certificate names it.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let rport = l.local_addr().expect("addr").port();
    pki(&dir, &format!("http://127.0.0.1:{rport}"));
    let seen = responder(l, &dir);
    let d = dir.display();
    let conf = format!(
        "error_log logs/error.log info;\nevents {{}}\nhttp {{\n\
         ssl_stapling on;\n\
         ssl_trusted_certificate {d}/ca.crt;\n\
         server {{\n  listen 127.0.0.1:{{port}} ssl;\n  server_name good.test;\n  ssl_certificate {d}/good.crt;\n  ssl_certificate_key {d}/good.key;\n  ssl_stapling_verify on;\n  return 200 ok;\n }}\n\
         server {{\n  listen 127.0.0.1:{{port}} ssl;\n  server_name revoked.test;\n  ssl_certificate {d}/revoked.crt;\n  ssl_certificate_key {d}/revoked.key;\n  ssl_stapling_responder http://127.0.0.1:{rport}/revoked;\n  return 200 ok;\n }}\n\
         server {{\n  listen 127.0.0.1:{{port}} ssl;\n  server_name bare.test;\n  ssl_certificate {d}/bare.crt;\n  ssl_certificate_key {d}/bare.key;\n  return 200 ok;\n }}\n\
         }}\n"
    );
    // protonc warns about the certificate that names no responder (nginx's warning).
    std::fs::write(dir.join("check.conf"), conf.replace("{port}", "8443")).expect("conf");
    let out = Command::new(bin("protonc"))
        .arg("compile")
        .arg(dir.join("check.conf"))
        .arg("-o")
        .arg(dir.join("check.ir"))
        .output()
        .expect("protonc");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("W0010")
            && err.contains("no OCSP responder URL in the certificate")
            && err.contains("bare.crt"),
        "{err}"
    );

    let p = Proton::start(&dir, &conf, 1);
    let logs = || p.logs();
    assert!(
        logs().contains("[warn]")
            && logs()
                .contains("\"ssl_stapling\" ignored, no OCSP responder URL in the certificate"),
        "{}",
        logs()
    );
    // The first handshake goes without a staple and sets off the request; a later one
    // carries the response, verified against the trusted CA.
    let first = status(p.port, "good.test");
    assert!(first.contains("OCSP response: no response sent"), "{first}");
    let mut last = String::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            last = status(p.port, "good.test");
            last.contains("OCSP Response Status: successful")
        }),
        "no staple: {last}\n{}",
        logs()
    );
    assert!(last.contains("Cert Status: good"), "{last}");
    // One request per due refresh, not one per handshake.
    let _ = status(p.port, "good.test");
    let asked: Vec<String> = seen.lock().expect("seen").clone();
    let good: Vec<&String> = asked
        .iter()
        .filter(|r| r.starts_with("GET /good/"))
        .collect();
    assert_eq!(good.len(), 1, "{asked:?}");
    // The request is nginx's: GET <path>/<base64 DER, escaped> HTTP/1.0 with the host.
    let line = good[0].lines().next().unwrap_or_default();
    assert!(line.ends_with(" HTTP/1.0"), "{line}");
    assert!(good[0].contains("\r\nHost: 127.0.0.1\r\n"), "{}", good[0]);
    let b64 = &line["GET /good/".len()..line.len() - " HTTP/1.0".len()];
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(unescape(b64))
        .expect("base64");
    std::fs::write(dir.join("asked.der"), der).expect("write");
    let text = openssl(&dir, &["ocsp", "-reqin", "asked.der", "-req_text"]);
    assert!(text.contains("Serial Number: 1001"), "{text}");
    assert!(text.contains("Hash Algorithm: sha1"), "{text}");

    // The revoked certificate's responder is asked (ssl_stapling_responder), the answer
    // is refused with nginx's error line, and nothing is stapled.
    let _ = status(p.port, "revoked.test");
    assert!(
        wait_until(Duration::from_secs(20), || logs()
            .contains("certificate status \"revoked\" in the OCSP response")),
        "{}",
        logs()
    );
    let l = logs();
    assert!(
        l.contains(&format!(
            "while requesting certificate status, responder: 127.0.0.1, peer: 127.0.0.1:{rport}, certificate: \"{d}/revoked.crt\""
        )),
        "{l}"
    );
    let after = status(p.port, "revoked.test");
    assert!(after.contains("OCSP response: no response sent"), "{after}");
}
