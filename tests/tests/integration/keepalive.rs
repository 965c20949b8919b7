//! Client keep-alive as nginx decides it: `keepalive_requests`, `keepalive_timeout` (and its
//! `Keep-Alive: timeout=` header) and `keepalive_disable` taken from the location that
//! answers, `keepalive_time`, `$connection_time`, and `$sent_http_connection` /
//! `$sent_http_keep_alive` in access logs. The table runs against proton-run and, where
//! Debian's nginx is installed, against nginx with the same server block.

use proton_tests::{keep_alive_exchange, nginx_binary, wait_until, Nginx, Proton, TempDir};
use std::time::Duration;

/// The server block of the comparison (`{port}` and `{root}` are filled in).
const SERVER: &str = r#"
server {
    listen 127.0.0.1:{port};
    server_name localhost;
    keepalive_requests 2;
    keepalive_timeout 30 9;
    add_header X-Conn "$connection_requests:$connection_time";
    location / { return 200 "root\n"; }
    location /r { keepalive_requests 4; keepalive_timeout 30s; return 200 "r\n"; }
    location /safari { keepalive_disable safari; return 200 "s\n"; }
    location /none { keepalive_disable none; return 200 "n\n"; }
    location /both { keepalive_disable msie6 safari; return 200 "b\n"; }
    location /zero { keepalive_timeout 0; return 200 "z\n"; }
    location /time { keepalive_requests 100; keepalive_time 1s; return 200 "t\n"; }
    location /f/ { root {root}; }
}
"#;

/// (what, method, path, user agent, requests sent one after another).
const CASES: &[(&str, &str, &str, &str, usize)] = &[
    ("server limit", "GET", "/", "", 3),
    ("location limit", "GET", "/r", "", 5),
    (
        "msie6 POST",
        "POST",
        "/",
        "Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)",
        2,
    ),
    (
        "msie6 GET",
        "GET",
        "/",
        "Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)",
        2,
    ),
    (
        "msie 6 SV1 POST",
        "POST",
        "/",
        "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
        2,
    ),
    (
        "msie 6 POST",
        "POST",
        "/",
        "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)",
        2,
    ),
    (
        "msie 7 POST",
        "POST",
        "/",
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)",
        2,
    ),
    (
        "opera as msie POST",
        "POST",
        "/",
        "Mozilla/4.0 (compatible; MSIE 5.0; Windows 98) Opera 7.0",
        2,
    ),
    (
        "safari default",
        "GET",
        "/",
        "Mozilla/5.0 (Macintosh; Mac OS X) Safari/7534.48.3",
        2,
    ),
    (
        "safari disabled",
        "GET",
        "/safari",
        "Mozilla/5.0 (Macintosh; Mac OS X) Safari/7534.48.3",
        2,
    ),
    (
        "safari on windows",
        "GET",
        "/safari",
        "Mozilla/5.0 (Windows NT 10.0) Safari/7534.48.3",
        2,
    ),
    (
        "chrome on mac",
        "GET",
        "/safari",
        "Mozilla/5.0 (Macintosh; Mac OS X) Chrome/100.0 Safari/537.36",
        2,
    ),
    (
        "none",
        "POST",
        "/none",
        "Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)",
        2,
    ),
    (
        "all words",
        "POST",
        "/both",
        "Mozilla/4.0 (compatible; MSIE 5.0; Windows 98)",
        2,
    ),
    ("timeout 0", "GET", "/zero", "", 2),
    ("static file", "GET", "/f/a.txt", "", 3),
];

/// What one case shows: per response, its status, `Connection` and `Keep-Alive` headers;
/// after a response that says `close`, whether the server then closed the connection.
fn run_case(port: u16, method: &str, path: &str, ua: &str, n: usize) -> Vec<String> {
    use std::io::Read;
    let body = if method == "POST" {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {ua}\r\n{body}\r\n");
    let mut s =
        std::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut out = Vec::new();
    for _ in 0..n {
        let r = one_response(&mut s, req.as_bytes());
        let close = r.header("connection") == Some("close");
        out.push(format!(
            "{} {} {}",
            r.status,
            r.header("connection").unwrap_or("-"),
            r.header("keep-alive").unwrap_or("-")
        ));
        if close {
            let mut rest = [0u8; 64];
            let eof = match s.read(&mut rest) {
                Ok(n) => n == 0,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            };
            out.push(if eof { "closed" } else { "left open" }.to_string());
            break;
        }
    }
    out
}

fn start_proton(t: &TempDir, extra: &str) -> Proton {
    let conf = format!(
        "events {{}}\nhttp {{\n{extra}\n{}\n}}\n",
        server(&t.path().display().to_string())
    );
    Proton::start(t.path(), &conf, 1)
}

/// [`SERVER`] with its root, where `f/a.txt` is written.
fn server(root: &str) -> String {
    let dir = std::path::Path::new(root).join("f");
    std::fs::create_dir_all(&dir).expect("create f/");
    std::fs::write(dir.join("a.txt"), "a\n").expect("write f/a.txt");
    SERVER.replace("{root}", root)
}

#[test]
fn keepalive_decisions_match_nginx() {
    let t = TempDir::new("keepalive-table");
    let proton = start_proton(&t, "");
    let root = TempDir::new("keepalive-root");
    let block = server(&root.path().display().to_string());
    let nginx = nginx_binary()
        .map(|bin| Nginx::start(&bin, |port| block.replace("{port}", &port.to_string())));
    for &(what, method, path, ua, n) in CASES {
        let got = run_case(proton.port, method, path, ua, n);
        if let Some(nginx) = &nginx {
            let want = run_case(nginx.port(), method, path, ua, n);
            assert_eq!(got, want, "{what}: Proton (left) and nginx (right) differ");
        }
        // What nginx answers, written down for machines without it.
        let expected: &[&str] = match what {
            "server limit" => &["200 keep-alive timeout=9", "200 close -", "closed"],
            // The header time is inherited on its own (a one-value keepalive_timeout).
            "location limit" => &[
                "200 keep-alive timeout=9",
                "200 keep-alive timeout=9",
                "200 keep-alive timeout=9",
                "200 close -",
                "closed",
            ],
            "msie6 POST" | "msie 6 POST" | "safari disabled" | "timeout 0" | "all words" => {
                &["200 close -", "closed"]
            }
            _ => &["200 keep-alive timeout=9", "200 close -", "closed"],
        };
        assert_eq!(got, expected, "{what}");
    }
}

#[test]
fn keepalive_time_closes_an_old_connection() {
    let t = TempDir::new("keepalive-time");
    let proton = start_proton(&t, "");
    // Requests on one connection until one answers `Connection: close` (keepalive_time 1s,
    // keepalive_requests 100): that happens once the connection is older than a second, and
    // the server closes it after that response.
    let mut s = std::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, proton.port))
        .expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let req = b"GET /time HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut answers = Vec::new();
    let closed = wait_until(Duration::from_secs(20), || {
        let r = one_response(&mut s, req);
        let close = r.header("connection") == Some("close");
        answers.push(r.header("x-conn").unwrap_or_default().to_string());
        close
    });
    assert!(closed, "never closed: {answers:?}");
    assert!(answers.len() >= 2, "{answers:?}");
    // `$connection_requests:$connection_time`, seconds with milliseconds.
    let (n, secs) = answers[answers.len() - 1]
        .split_once(':')
        .expect("X-Conn n:time");
    assert_eq!(n, answers.len().to_string());
    let (whole, ms) = secs.split_once('.').expect("seconds.millis");
    assert!(
        ms.len() == 3 && ms.bytes().all(|b| b.is_ascii_digit()),
        "{secs}"
    );
    assert!(
        whole.parse::<u64>().expect("seconds") >= 1,
        "closed before keepalive_time: {secs}"
    );
    assert!(answers[0].starts_with("1:0."), "{answers:?}");
    // The server closed the connection after the response that said so.
    let mut rest = Vec::new();
    use std::io::Read;
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

/// Sends `req` and reads one response (framed by Content-Length).
fn one_response(s: &mut std::net::TcpStream, req: &[u8]) -> proton_tests::Response {
    use std::io::{Read, Write};
    s.write_all(req).expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let rs = proton_tests::split_responses(&buf);
        if let Some(r) = rs.into_iter().next().filter(|r| {
            let len: usize = r
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            r.body.len() >= len
        }) {
            return r;
        }
        let n = s.read(&mut chunk).expect("read");
        assert!(
            n > 0,
            "closed before a response: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn sent_connection_headers_in_the_access_log() {
    let t = TempDir::new("keepalive-log");
    let log = t.path().join("ka.log");
    let extra = format!(
        "log_format ka \"$sent_http_connection|$sent_http_keep_alive\";\n\
         access_log {} ka;",
        log.display()
    );
    let proton = start_proton(&t, &extra);
    let req: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let rs = keep_alive_exchange(proton.port, &[req, req]).expect("exchange");
    assert_eq!(rs.len(), 2);
    let mut text = String::new();
    let done = wait_until(Duration::from_secs(20), || {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().count() >= 2
    });
    assert!(done, "{text:?}\n{}", proton.logs());
    assert_eq!(text, "keep-alive|timeout=9\nclose|-\n");
}
