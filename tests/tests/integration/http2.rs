//! HTTP/2 over cleartext with prior knowledge (issue 16): `http2 on` (or `listen … http2`)
//! lets a connection that starts with the HTTP/2 preface speak HTTP/2 on the same address
//! as HTTP/1.1. Real `proton-run`, real clients (curl, h2load) and a hand-made frame client
//! for what well-behaved clients never send.

use proton_tests::{get, wait_until, Backend, Proton, TempDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// The 300 KB file the tests serve.
fn big_bytes() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

/// [`big_bytes`] written as `dir/www/big.bin`.
fn big_file(dir: &std::path::Path) -> Vec<u8> {
    let big = big_bytes();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/big.bin"), &big).unwrap();
    big
}

fn setup(label: &str, backend: u16) -> (TempDir, Proton) {
    let t = TempDir::new(label);
    big_file(t.path());
    std::fs::write(t.path().join("www/small.txt"), "static file\n").unwrap();
    let conf = format!(
        "worker_processes 1;\n\
         error_log {{dir}}/logs/error.log info;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         access_log {{dir}}/logs/access.log;\n\
         add_header X-Proto \"$server_protocol $http2\";\n\
         server {{\n\
         listen 127.0.0.1:{{port}};\n\
         http2 on;\n\
         root {{dir}}/www;\n\
         location / {{ }}\n\
         location = /r {{ return 200 \"hello\\n\"; }}\n\
         location = /moved {{ return 301 /r; }}\n\
         location = /conn {{ return 200 \"$connection $connection_requests\\n\"; }}\n\
         location /b/ {{ proxy_pass http://127.0.0.1:{backend}/; }}\n\
         }}\n\
         }}\n"
    );
    let p = Proton::start(t.path(), &conf, 1);
    (t, p)
}

/// curl with prior knowledge: (HTTP version, status, body).
fn curl(port: u16, path: &str, extra: &[&str]) -> (String, u16, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .args(extra)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    let text = out.stdout;
    let cut = text.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let tail = String::from_utf8_lossy(&text[cut + 1..]).to_string();
    let mut parts = tail.split(' ');
    let version = parts.next().unwrap_or("").to_string();
    let code = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    (version, code, text[..cut].to_vec())
}

#[test]
fn every_handler_over_h2c_and_http1_on_the_same_address() {
    assert!(have("curl"), "curl is installed by .ci/run");
    let b = Backend::start("h2");
    let (_t, p) = setup("h2-handlers", b.port);
    let port = p.port;
    assert_eq!(
        curl(port, "/r", &[]),
        ("2".into(), 200, b"hello\n".to_vec())
    );
    assert_eq!(
        curl(port, "/small.txt", &[]),
        ("2".into(), 200, b"static file\n".to_vec())
    );
    let (v, code, body) = curl(port, "/big.bin", &[]);
    assert_eq!((v.as_str(), code), ("2", 200));
    let want = big_bytes();
    assert!(body == want, "300 KB file intact ({} bytes)", body.len());
    assert_eq!(curl(port, "/none", &[]).1, 404);
    assert_eq!(curl(port, "/moved", &[]).1, 301);
    // HEAD: the head only.
    let (_, code, body) = curl(port, "/small.txt", &["-I"]);
    assert_eq!(code, 200);
    let head = String::from_utf8_lossy(&body).to_string();
    assert!(head.contains("content-length: 12"), "{head}");
    assert!(head.contains("x-proto: HTTP/2.0 h2c"), "{head}");
    // Proxied, with a body of known length and one without (sent chunked upstream of
    // nothing: the body is read whole and sent with its length).
    let (_, code, body) = curl(port, "/b/id", &[]);
    assert_eq!((code, body), (200, b"h2".to_vec()));
    let upload: Vec<u8> = (0..100_000u32).map(|i| (i % 7) as u8 + b'a').collect();
    std::fs::write(_t.path().join("up.bin"), &upload).unwrap();
    let file = format!("@{}", _t.path().join("up.bin").display());
    let (_, code, body) = curl(port, "/b/count", &["--data-binary", &file]);
    assert_eq!(
        (code, String::from_utf8_lossy(&body).to_string()),
        (200, "bytes=100000".into())
    );
    let (_, code, body) = curl(
        port,
        "/b/echo",
        &[
            "--data-binary",
            "abc",
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Content-Length:",
        ],
    );
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(code, 200, "{text}");
    // curl sends no length: the body came in DATA frames, was read whole and went on with
    // its length.
    assert!(
        text.contains("Content-Length: 3") && text.ends_with("\n\nabc"),
        "{text}"
    );
    // HTTP/1.1 on the same address.
    assert_eq!(get(port, None, "/r"), (200, "hello\n".to_string()));
    // The access log has the requests, as nginx writes HTTP/2 ones.
    let log = || std::fs::read_to_string(_t.path().join("logs/access.log")).unwrap_or_default();
    let both = wait_until(Duration::from_secs(5), || {
        let l = log();
        l.contains("\"GET /big.bin HTTP/2.0\" 200 300000")
            && l.contains("\"GET /r HTTP/1.0\" 200 6")
    });
    assert!(both, "{}", log());
}

/// `$connection` and `$connection_requests` as nginx's: the streams of one HTTP/2
/// connection share its number and count its requests, and use no numbers up (the next
/// connection's is the next one). Python's httpx with prior knowledge (curl 7.88 fails to
/// reuse a prior-knowledge connection for a second URL, against nginx as well).
#[test]
fn streams_share_their_connections_number() {
    let b = Backend::start("h2n");
    let (_t, p) = setup("h2-connection", b.port);
    let py = "import httpx, sys\n\
        c = httpx.Client(http1=False, http2=True)\n\
        for q in 'abc':\n    print(c.get(sys.argv[1] + '/conn?' + q).text.strip())\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", py])
        .arg(format!("http://127.0.0.1:{}", p.port))
        .output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).to_string(),
        other => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI installs python3-httpx and python3-h2: {other:?}"
            );
            return;
        }
    };
    let lines: Vec<(u32, u32)> = text
        .lines()
        .map(|l| {
            let mut f = l.split(' ').map(|n| n.parse::<u32>().expect("numbers"));
            (f.next().unwrap_or(0), f.next().unwrap_or(0))
        })
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    let n = lines[0].0;
    assert_eq!(lines, [(n, 1), (n, 2), (n, 3)], "{text}");
    let (status, body) = get(p.port, None, "/conn");
    assert_eq!((status, body), (200, format!("{} 1\n", n + 1)));
}

#[test]
fn many_streams_on_few_connections() {
    if !have("h2load") {
        assert!(
            std::env::var("CI").is_err(),
            "h2load is installed by .ci/run"
        );
        return;
    }
    let b = Backend::start("h2load");
    let (_t, p) = setup("h2-load", b.port);
    for path in ["/r", "/small.txt", "/b/id"] {
        let text = h2load(
            &["-n", "2000", "-c", "4", "-m", "20"],
            &format!("http://127.0.0.1:{}{path}", p.port),
        );
        assert!(
            text.contains("2000 succeeded, 0 failed, 0 errored"),
            "{path}: {text}\n{}",
            p.logs()
        );
        assert!(text.contains("status codes: 2000 2xx"), "{path}: {text}");
    }
    // Uploads in one burst on one connection (more than the connection reads ahead at a
    // time): every one is read and answered.
    let body: Vec<u8> = (0..65_536u32).map(|i| i as u8).collect();
    let file = _t.path().join("64k.bin");
    std::fs::write(&file, &body).unwrap();
    let text = h2load(
        &[
            "-n",
            "48",
            "-c",
            "1",
            "-m",
            "24",
            "-d",
            &file.display().to_string(),
        ],
        &format!("http://127.0.0.1:{}/b/count", p.port),
    );
    assert!(
        text.contains("48 succeeded, 0 failed"),
        "{text}\n{}",
        p.logs()
    );
}

/// h2load with `args` against `url`, bounded to 30 s: what it printed.
fn h2load(args: &[&str], url: &str) -> String {
    let out = Command::new("timeout")
        .args(["30", "h2load"])
        .args(args)
        .arg(url)
        .output()
        .expect("h2load");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A frame: 9-byte head and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A GET / header block: literal fields without indexing.
fn get_block() -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/r"),
        (":authority", "x"),
    ] {
        b.push(0);
        b.push(n.len() as u8);
        b.extend_from_slice(n.as_bytes());
        b.push(v.len() as u8);
        b.extend_from_slice(v.as_bytes());
    }
    b
}

/// Reads frames until a GOAWAY or the close; returns the GOAWAY's error code.
fn goaway_code(s: &mut TcpStream) -> Option<u32> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let mut at = 0;
        while buf.len() >= at + 9 {
            let len = u32::from_be_bytes([0, buf[at], buf[at + 1], buf[at + 2]]) as usize;
            if buf.len() < at + 9 + len {
                break;
            }
            if buf[at + 3] == 7 && len >= 8 {
                let p = &buf[at + 9..];
                return Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
            }
            at += 9 + len;
        }
        buf.drain(..at);
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn hostile_clients_get_goaway_and_others_are_served() {
    let b = Backend::start("h2h");
    let (_t, p) = setup("h2-hostile", b.port);
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(4, 0, 0, &[]));
    // Rapid reset: streams opened and cancelled at once, in a loop.
    let mut s = connect();
    let mut flood = hello.clone();
    for i in 0..2000u32 {
        let id = 2 * i + 1;
        flood.extend(frame(1, 0x4, id, &get_block()));
        flood.extend(frame(3, 0, id, &8u32.to_be_bytes()));
    }
    let _ = s.write_all(&flood);
    assert_eq!(
        goaway_code(&mut s),
        Some(0xb),
        "ENHANCE_YOUR_CALM\n{}",
        p.logs()
    );
    // A PING flood.
    let mut s = connect();
    let mut flood = hello.clone();
    for _ in 0..20_000 {
        flood.extend(frame(6, 0, 0, &[0; 8]));
    }
    let _ = s.write_all(&flood);
    assert_eq!(goaway_code(&mut s), Some(0xb));
    // Not quite the preface: an HTTP/1.x request whose target is `*`, 400 (as nginx, whose
    // parser refuses the target before it reads the version).
    let mut s = connect();
    let _ = s.write_all(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    // The preface, then a frame the protocol forbids (DATA on stream 0): PROTOCOL_ERROR.
    let mut s = connect();
    let mut bad = hello.clone();
    bad.extend(frame(0, 0, 0, b"x"));
    let _ = s.write_all(&bad);
    assert_eq!(goaway_code(&mut s), Some(0x1));
    // Meanwhile, others are served.
    assert_eq!(curl(p.port, "/r", &[]).1, 200);
    assert_eq!(get(p.port, None, "/r").0, 200);
}

/// curl over TLS to `host:port` (resolved to loopback) with ALPN offering HTTP/2:
/// (HTTP version, status, head and body).
fn curl_tls(port: u16, host: &str, path: &str, extra: &[&str]) -> (String, u16, String) {
    let out = Command::new("curl")
        .args(["-sik", "--http2", "-w", "\n%{http_version} %{http_code}"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .arg(format!("https://{host}:{port}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (all, tail) = text.rsplit_once('\n').unwrap_or(("", ""));
    let (version, code) = tail.split_once(' ').unwrap_or(("", ""));
    (
        version.into(),
        code.parse().unwrap_or(0),
        all.trim_end().into(),
    )
}

#[test]
fn http2_over_tls_by_alpn() {
    let b = Backend::start("h2tls");
    let t = TempDir::new("h2-tls");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "off.test".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(t.path().join("c.pem"), cert.pem()).unwrap();
    std::fs::write(t.path().join("k.pem"), key.serialize_pem()).unwrap();
    let big = big_file(t.path());
    let h1_only = proton_tests::free_port();
    let conf = format!(
        "worker_processes 1;\n\
         error_log {{dir}}/logs/error.log info;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         access_log {{dir}}/logs/access.log;\n\
         ssl_certificate {{dir}}/c.pem; ssl_certificate_key {{dir}}/k.pem;\n\
         add_header X-Proto \"$server_protocol $http2 $scheme $https\";\n\
         server {{\n\
         listen 127.0.0.1:{{port}} ssl; server_name localhost; http2 on;\n\
         root {{dir}}/www;\n\
         location = /r {{ return 200 \"hello $ssl_server_name $ssl_alpn_protocol\\n\"; }}\n\
         location /b/ {{ proxy_pass http://127.0.0.1:{backend}/; }}\n\
         }}\n\
         server {{\n\
         listen 127.0.0.1:{{port}} ssl; server_name off.test; http2 off;\n\
         location / {{ return 200 \"off\\n\"; }}\n\
         }}\n\
         server {{\n\
         listen 127.0.0.1:{h1_only} ssl; server_name localhost;\n\
         location / {{ return 200 \"h1 only\\n\"; }}\n\
         }}\n\
         }}\n",
        backend = b.port
    );
    let p = Proton::start(t.path(), &conf, 1);
    let port = p.port;
    // ALPN chose h2: the variables say so.
    let (v, code, text) = curl_tls(port, "localhost", "/r", &[]);
    assert_eq!((v.as_str(), code), ("2", 200), "{text}\n{}", p.logs());
    assert!(text.ends_with("hello localhost h2"), "{text}");
    assert!(text.contains("x-proto: HTTP/2.0 h2 https on"), "{text}");
    // A file (encrypted, framed) and an upload through the proxy.
    let out = Command::new("curl")
        .args(["-sk", "--http2", "--resolve"])
        .arg(format!("localhost:{port}:127.0.0.1"))
        .arg(format!("https://localhost:{port}/big.bin"))
        .output()
        .expect("curl");
    assert!(
        out.stdout == big,
        "300 KB file intact ({} bytes)",
        out.stdout.len()
    );
    let upload = t.path().join("up.bin");
    std::fs::write(&upload, vec![b'u'; 100_000]).unwrap();
    let file = format!("@{}", upload.display());
    let (v, code, text) = curl_tls(port, "localhost", "/b/count", &["--data-binary", &file]);
    assert_eq!((v.as_str(), code), ("2", 200), "{text}");
    assert!(text.ends_with("bytes=100000"), "{text}");
    // The server the SNI name chooses has HTTP/2 off: no h2 by ALPN.
    let (v, code, text) = curl_tls(port, "off.test", "/", &[]);
    assert_eq!((v.as_str(), code), ("1.1", 200), "{text}");
    assert!(text.ends_with("off"), "{text}");
    // An HTTP/2 connection that asks (by Host) for that server: 421, as nginx.
    let (v, code, _) = curl_tls(port, "localhost", "/", &["-H", "Host: off.test"]);
    assert_eq!((v.as_str(), code), ("2", 421));
    // An address without HTTP/2 offers HTTP/1.1 only.
    let (v, code, text) = curl_tls(h1_only, "localhost", "/", &[]);
    assert_eq!((v.as_str(), code), ("1.1", 200), "{text}");
    // Many streams on few TLS connections.
    if have("h2load") {
        let text = h2load(
            &["-n", "1000", "-c", "2", "-m", "10"],
            &format!("https://127.0.0.1:{port}/r"),
        );
        assert!(text.contains("Application protocol: h2"), "{text}");
        assert!(
            text.contains("1000 succeeded, 0 failed, 0 errored"),
            "{text}\n{}",
            p.logs()
        );
    }
    // Python's httpx (hyper's h2 underneath), over TLS with ALPN.
    let py = "import httpx, sys\n\
        c = httpx.Client(http2=True, verify=False)\n\
        r = c.get(sys.argv[1] + '/r')\n\
        p = c.post(sys.argv[1] + '/b/count', content=b'x' * 70000)\n\
        print(r.http_version, r.status_code, r.text.strip(), p.http_version, p.text)\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", py])
        .arg(format!("https://localhost:{port}"))
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert_eq!(
                text.trim(),
                "HTTP/2 200 hello localhost h2 HTTP/2 bytes=70000",
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        other => assert!(
            std::env::var_os("CI").is_none(),
            "CI installs python3-httpx and python3-h2: {other:?}"
        ),
    }
    // A browser: a page and its script over HTTP/2.
    if let Some(browser) = super::tls::chromium() {
        let dom = super::tls::load_page(
            browser,
            &t.path().join("www"),
            &t.path().join("chromium-profile"),
            &format!("https://localhost:{port}/"),
            &[],
        );
        assert!(dom.contains("<title>loaded by https:</title>"), "{dom}");
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs chromium-headless-shell"
        );
    }
    let log = || std::fs::read_to_string(t.path().join("logs/access.log")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), || {
            let l = log();
            l.contains("\"GET /big.bin HTTP/2.0\" 200 300000")
                && l.contains("\"POST /b/count HTTP/2.0\" 200")
                && (super::tls::chromium().is_none() || l.contains("\"GET /app.js HTTP/2.0\" 200"))
        }),
        "{}",
        log()
    );
}

/// A header block of literal fields without indexing.
fn block_of(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in fields {
        b.push(0);
        b.push(n.len() as u8);
        b.extend_from_slice(n.as_bytes());
        b.push(v.len() as u8);
        b.extend_from_slice(v.as_bytes());
    }
    b
}

/// Frames read until `stop` says so of one (kind, flags, stream), a GOAWAY, or the close:
/// (kind, flags, stream, payload) each.
fn frames_until(
    s: &mut TcpStream,
    stop: impl Fn(u8, u8, u32) -> bool,
) -> Vec<(u8, u8, u32, Vec<u8>)> {
    let (mut buf, mut out) = (Vec::new(), Vec::new());
    let mut chunk = [0u8; 65536];
    loop {
        while buf.len() >= 9 {
            let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let id = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            out.push((kind, flags, id, buf[9..9 + len].to_vec()));
            buf.drain(..9 + len);
            if kind == 7 || stop(kind, flags, id) {
                return out;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return out,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The first byte of the response HEADERS block of `stream` (an indexed `:status`: 0x88
/// is 200, 0x8c is 400) and the code of its RST_STREAM, reading until the reset (`stop`:
/// or until the stream's END_STREAM).
fn answer(s: &mut TcpStream, stream: u32, to_end: bool) -> (Option<u8>, Option<u32>) {
    let frames = frames_until(s, |kind, flags, id| {
        id == stream && (kind == 3 || (to_end && flags & 1 != 0))
    });
    let status = frames
        .iter()
        .find(|f| f.0 == 1 && f.2 == stream)
        .and_then(|f| f.3.first().copied());
    let rst = frames
        .iter()
        .find(|f| f.0 == 3 && f.2 == stream && f.3.len() == 4)
        .map(|f| u32::from_be_bytes([f.3[0], f.3[1], f.3[2], f.3[3]]));
    (status, rst)
}

#[test]
fn malformed_requests_are_answered_400_as_nginx() {
    let b = Backend::start("h2bad");
    let (_t, p) = setup("h2-bad", b.port);
    let connect = || {
        let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend(frame(4, 0, 0, &[]));
        s.write_all(&hello).unwrap();
        s
    };
    let post = |path: &str, extra: &[(&str, &str)]| {
        let mut f = vec![
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "x"),
        ];
        f.extend_from_slice(extra);
        // HEADERS with END_HEADERS, a body to follow.
        frame(1, 4, 1, &block_of(&f))
    };
    // A body shorter than its content-length, to the proxy (which sends nothing on before
    // the whole body, as request buffering is on): 400, since nothing went out yet, then
    // RST_STREAM(PROTOCOL_ERROR).
    let mut s = connect();
    let mut req = post("/b/count", &[("content-length", "5")]);
    req.extend(frame(0, 1, 1, b"abc"));
    s.write_all(&req).unwrap();
    assert_eq!(
        answer(&mut s, 1, false),
        (Some(0x8c), Some(1)),
        "{}",
        p.logs()
    );
    // Longer than announced: the same.
    let mut s = connect();
    let mut req = post("/b/count", &[("content-length", "2")]);
    req.extend(frame(0, 1, 1, b"abc"));
    s.write_all(&req).unwrap();
    assert_eq!(answer(&mut s, 1, false), (Some(0x8c), Some(1)));
    // Fields HTTP/2 forbids, and a bad header name: 400 on the stream, then
    // RST_STREAM(PROTOCOL_ERROR) (RFC 9113 §8.1.1 allows the answer before the reset).
    for bad in [("connection", "close"), ("Upper", "x"), ("x", "a\nb")] {
        let mut s = connect();
        s.write_all(&post("/r", &[bad])).unwrap();
        assert_eq!(answer(&mut s, 1, false), (Some(0x8c), Some(1)), "{bad:?}");
    }
    // A request the client cancels while the upstream works on it: logged 499, as nginx.
    let mut s = connect();
    let get = block_of(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/b/delay?ms=3000"),
        (":authority", "x"),
    ]);
    let before_get = b.stats().0;
    s.write_all(&frame(1, 5, 1, &get)).unwrap();
    let log = || std::fs::read_to_string(_t.path().join("logs/access.log")).unwrap_or_default();
    // Once the backend has the request (its connections: each /stats asks on one more).
    let before = before_get;
    let mut polls = 0;
    assert!(wait_until(Duration::from_secs(5), || {
        polls += 1;
        b.stats().0 > before + polls
    }));
    s.write_all(&frame(3, 0, 1, &8u32.to_be_bytes())).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || log()
            .contains("\"GET /b/delay?ms=3000 HTTP/2.0\" 499 0")),
        "{}",
        log()
    );
    // The connection goes on serving after those.
    let mut s = connect();
    let mut req = post("/b/count", &[("content-length", "3")]);
    req.extend(frame(0, 1, 1, b"abc"));
    s.write_all(&req).unwrap();
    assert_eq!(answer(&mut s, 1, true), (Some(0x88), None));
}

/// A request whose HEADERS frame stops arriving half-way: after `client_header_timeout`
/// its stream is reset with PROTOCOL_ERROR (as nginx), and the connection goes on: the rest
/// of the frame is taken (its block kept for the HPACK table), a PING is answered, and the
/// next stream is served.
#[test]
fn a_request_whose_headers_stop_half_way_is_reset_on_its_timeout() {
    let t = TempDir::new("h2-slow-headers");
    let conf = "worker_processes 1;\n\
         error_log {dir}/logs/error.log info;\n\
         events { }\n\
         http {\n\
         access_log off;\n\
         server {\n\
         listen 127.0.0.1:{port};\n\
         http2 on;\n\
         client_header_timeout 1s;\n\
         location = /r { return 200 \"hello\\n\"; }\n\
         }\n\
         }\n";
    let p = Proton::start(t.path(), conf, 1);
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(4, 0, 0, &[]));
    let headers = frame(1, 0x5, 1, &get_block());
    let (first, rest) = headers.split_at(20);
    hello.extend_from_slice(first);
    s.write_all(&hello).unwrap();
    let frames = frames_until(&mut s, |kind, _, id| kind == 3 && id == 1);
    let rst = frames.iter().find(|f| f.0 == 3 && f.2 == 1);
    assert_eq!(
        rst.map(|f| f.3.clone()),
        Some(1u32.to_be_bytes().to_vec()),
        "RST_STREAM(PROTOCOL_ERROR): {frames:?}\n{}",
        p.logs()
    );
    // The rest of the frame, then a PING, then the next request.
    let mut more = rest.to_vec();
    more.extend(frame(6, 0, 0, b"SEE-THIS"));
    more.extend(frame(1, 0x5, 3, &get_block()));
    s.write_all(&more).unwrap();
    let frames = frames_until(&mut s, |kind, flags, id| {
        id == 3 && flags & 1 != 0 && kind == 0
    });
    assert!(
        frames
            .iter()
            .any(|f| f.0 == 6 && f.1 & 1 != 0 && f.3 == b"SEE-THIS"),
        "PING ACK: {frames:?}"
    );
    let status = frames.iter().find(|f| f.0 == 1 && f.2 == 3).map(|f| f.3[0]);
    assert_eq!(status, Some(0x88), "200 on stream 3: {frames:?}");
    assert!(!frames.iter().any(|f| f.0 == 7), "no GOAWAY: {frames:?}");
}

/// A stream's first DATA frames fill the client's initial window exactly, in frames of
/// `http2_chunk_size` (8k): the response head does not take room from the body (nginx's
/// frames: 7 of 8192 and one of 8191 for the default 65535).
#[test]
fn the_first_data_frames_fill_the_initial_window() {
    let b = Backend::start("h2iws");
    let (_t, p) = setup("h2-iws", b.port);
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    req.extend(frame(4, 0, 0, &[]));
    req.extend(frame(
        1,
        0x5,
        1,
        &block_of(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/big.bin"),
            (":authority", "x"),
        ]),
    ));
    s.write_all(&req).unwrap();
    // Read until the window is used up (frames_until sees kind and stream, not lengths:
    // the count of DATA frames is kept beside it).
    let data_frames = std::cell::Cell::new(0);
    let frames = frames_until(&mut s, |kind, _, id| {
        if kind == 0 && id == 1 {
            data_frames.set(data_frames.get() + 1);
        }
        data_frames.get() == 8
    });
    let sizes: Vec<usize> = frames
        .iter()
        .filter(|f| f.0 == 0 && f.2 == 1)
        .map(|f| f.3.len())
        .collect();
    assert_eq!(sizes, [8192, 8192, 8192, 8192, 8192, 8192, 8192, 8191]);
}

/// `limit_conn` over HTTP/2 (nginx's h2_limit_conn.t): a stream whose response waits for
/// the flow-control window still holds its count, so a second stream is refused; once the
/// client resets the first, the count is given back and the next stream is served.
#[test]
fn a_stream_holds_its_limit_conn_count_until_its_response_is_out() {
    let t = TempDir::new("h2-limit-conn");
    t.write("www/t.html", "SEE-THIS");
    let conf = "events {}\nhttp {\n    access_log off;\n    \
                limit_conn_zone $binary_remote_addr zone=conn:1m;\n    server {\n        \
                listen 127.0.0.1:{port};\n        http2 on;\n        root {dir}/www;\n        \
                location /t.html { limit_conn conn 1; }\n    }\n}\n";
    let p = Proton::start(t.path(), conf, 1);
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // SETTINGS_INITIAL_WINDOW_SIZE = 1: one byte of each response body, then a wait.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(4, 0, 0, &[0, 4, 0, 0, 0, 1]));
    s.write_all(&hello).unwrap();
    let get = |id: u32| {
        frame(
            1,
            0x5,
            id,
            &block_of(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/t.html"),
                (":authority", "x"),
            ]),
        )
    };
    let status_of = |frames: &[(u8, u8, u32, Vec<u8>)], id: u32| -> Option<Vec<u8>> {
        frames
            .iter()
            .find(|f| f.0 == 1 && f.2 == id)
            .map(|f| f.3.clone())
    };
    // The first stream: 200 and one byte of the body, the rest held by the window.
    s.write_all(&get(1)).unwrap();
    let frames = frames_until(&mut s, |kind, _, id| kind == 0 && id == 1);
    assert_eq!(
        status_of(&frames, 1).and_then(|b| b.first().copied()),
        Some(0x88)
    );
    // The second: refused, the first still holding the count.
    s.write_all(&get(3)).unwrap();
    let frames = frames_until(&mut s, |kind, _, id| kind == 1 && id == 3);
    let head = status_of(&frames, 3).unwrap_or_default();
    assert!(
        head.windows(3).any(|w| w == b"503"),
        "503 expected for the second stream: {head:?}"
    );
    // The client resets the first: its count is given back, the next stream is served.
    s.write_all(&frame(3, 0, 1, &5u32.to_be_bytes())).unwrap();
    s.write_all(&get(5)).unwrap();
    let frames = frames_until(&mut s, |kind, _, id| kind == 1 && id == 5);
    assert_eq!(
        status_of(&frames, 5).and_then(|b| b.first().copied()),
        Some(0x88)
    );
}
