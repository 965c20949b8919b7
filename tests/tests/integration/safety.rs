//! Defects found by attacking Proton from outside, each pinned by a test over real sockets:
//! a FIFO in the document root, lingering close after an error with unread input, the
//! alias off-by-slash traversal, and CR/LF from variables in header values.

use proton_tests::{parse_response, request, Backend, Proton, Response, TempDir};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

fn conf(http: &str) -> String {
    format!(
        "worker_processes 1;\n\
         error_log {{dir}}/logs/error.log info;\n\
         events {{}}\n\
         http {{\n\
         access_log off;\n\
         {http}\n\
         }}\n"
    )
}

fn error_log(t: &TempDir) -> String {
    std::fs::read_to_string(t.path().join("logs/error.log")).unwrap_or_default()
}

/// A FIFO in the document root used to block the whole worker in `open()` until a writer
/// came. It is refused as nginx does (404, only regular files are served) and the worker
/// goes on serving.
#[test]
fn a_fifo_in_the_root_does_not_block_the_worker() {
    let t = TempDir::new("fifo");
    let root = t.path().join("www");
    std::fs::create_dir_all(&root).expect("root");
    std::fs::write(root.join("ok.txt"), "fine\n").expect("file");
    let made = std::process::Command::new("mkfifo")
        .arg(root.join("pipe"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let p = Proton::start(
        t.path(),
        &conf(&format!(
            "server {{ listen 127.0.0.1:{{port}}; root {}; }}",
            root.display()
        )),
        1,
    );
    let r = request(p.port, Some("x"), "/pipe").unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    assert_eq!(r.status, 404, "{}", p.logs());
    let r = request(p.port, Some("x"), "/ok.txt").expect("the worker still serves");
    assert_eq!((r.status, r.body_text().as_str()), (200, "fine\n"));
    assert!(
        error_log(&t).contains("is not a regular file"),
        "{}",
        p.logs()
    );
}

/// Writes `head` and then `body_len` bytes of body, and only then reads the answer, as a
/// client that sends its whole request before reading (Python's http.client). A server that
/// closes with input unread makes the kernel reset the connection: the write or the read
/// then fails (the error returned), instead of the client reading the error response.
fn send_whole_then_read(port: u16, head: &[u8], body_len: usize) -> std::io::Result<Response> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(head)?;
    let chunk = vec![b'x'; 64 * 1024];
    let mut left = body_len;
    while left > 0 {
        let n = left.min(chunk.len());
        s.write_all(&chunk[..n])?;
        left -= n;
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// After 413, 414 or 400 with request bytes still coming, the connection lingers (write
/// side shut, input read and dropped) so the client reads the error instead of a reset
/// (before: ConnectionResetError in 15 tries of 15 with Python's http.client).
#[test]
fn errors_with_unread_input_linger_instead_of_resetting() {
    let t = TempDir::new("linger");
    let p = Proton::start(
        t.path(),
        &conf(
            "server { listen 127.0.0.1:{port}; client_max_body_size 1k; \
             large_client_header_buffers 4 1k; location / { return 200 \"ok\\n\"; } }",
        ),
        1,
    );
    let long_uri = format!("/{}", "a".repeat(4000));
    let cases: Vec<(Vec<u8>, usize, u16)> = vec![
        (
            b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n".to_vec(),
            2_000_000,
            413,
        ),
        (
            format!("POST {long_uri} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
                .into_bytes(),
            1_000_000,
            414,
        ),
        (
            b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
                .to_vec(),
            1_000_000,
            400,
        ),
    ];
    for round in 0..5 {
        for (head, body_len, want) in &cases {
            let r = send_whole_then_read(p.port, head, *body_len)
                .unwrap_or_else(|e| panic!("round {round}, expecting {want}: {e}\n{}", p.logs()));
            assert_eq!(r.status, *want, "round {round}\n{}", p.logs());
        }
    }
    // The server is still there for everyone else.
    let r = request(p.port, Some("x"), "/").expect("served");
    assert_eq!(r.status, 200);
}

/// `lingering_close off` closes at once (nginx's directive, for those who want the reset).
#[test]
fn lingering_close_off_is_accepted_and_closes() {
    let t = TempDir::new("linger-off");
    let p = Proton::start(
        t.path(),
        &conf(
            "server { listen 127.0.0.1:{port}; client_max_body_size 1k; lingering_close off; \
             lingering_time 10s; lingering_timeout 1s; location / { return 200; } }",
        ),
        1,
    );
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .expect("write");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    // Nothing more was sent, so the close is clean: the 413 is there.
    let r = parse_response(&raw).expect("a response");
    assert_eq!(r.status, 413);
}

/// `location /img { alias /data/; }` must not serve `/img../secret.txt` (nginx's
/// off-by-slash traversal serves `/data/../secret.txt`).
#[test]
fn alias_never_serves_outside_its_directory() {
    let t = TempDir::new("alias");
    let data = t.path().join("base/data");
    std::fs::create_dir_all(&data).expect("dirs");
    std::fs::write(data.join("pic.txt"), "picture\n").expect("file");
    std::fs::write(t.path().join("base/secret.txt"), "secret\n").expect("secret");
    let p = Proton::start(
        t.path(),
        &conf(&format!(
            "server {{ listen 127.0.0.1:{{port}};\n\
             location /img {{ alias {d}/; }}\n\
             location ~ ^/re(.*)$ {{ alias {d}/$1; }}\n\
             }}",
            d = data.display()
        )),
        1,
    );
    let r = request(p.port, Some("x"), "/img/pic.txt").expect("request");
    assert_eq!((r.status, r.body_text().as_str()), (200, "picture\n"));
    for uri in [
        "/img../secret.txt",
        "/re../secret.txt",
        "/img..%2fsecret.txt",
    ] {
        let r = request(p.port, Some("x"), uri).expect("request");
        assert_eq!(r.status, 404, "{uri}: {}", r.body_text());
        assert!(!r.body_text().contains("secret"), "{uri}");
    }
    assert!(
        error_log(&t).contains("leaves the alias directory"),
        "{}",
        p.logs()
    );
}

/// A `%0d%0a` in the request becomes CR LF in `$uri`; no header value made from variables
/// may carry it: Location, add_header and proxy_set_header get it percent-encoded (and the
/// backend sees one request with no injected header); the access log escapes it.
#[test]
fn line_breaks_from_variables_never_split_a_header() {
    let t = TempDir::new("crlf");
    let b = Backend::start("b1");
    let p = Proton::start(
        t.path(),
        &format!(
            "worker_processes 1;\n\
             error_log {{dir}}/logs/error.log info;\n\
             events {{}}\n\
             http {{\n\
             log_format u '$uri';\n\
             access_log {{dir}}/logs/access.log u;\n\
             server {{ listen 127.0.0.1:{{port}};\n\
             location /r/ {{ return 302 http://h$uri; }}\n\
             location /h/ {{ add_header X-Uri $uri; return 200 \"h\\n\"; }}\n\
             location /p/ {{ set $orig $uri; rewrite ^ /echo break;\n\
               proxy_set_header X-Uri $orig; proxy_pass http://127.0.0.1:{}; }}\n\
             }}\n\
             }}\n",
            b.port
        ),
        1,
    );
    let evil = "%0d%0aX-Injected:%20yes%0d%0a";
    let r = request(p.port, Some("x"), &format!("/r/{evil}")).expect("redirect");
    assert_eq!(r.status, 302);
    assert!(r.header("x-injected").is_none(), "{:?}", r.headers);
    assert_eq!(
        r.header("location"),
        Some("http://h/r/%0D%0AX-Injected: yes%0D%0A")
    );
    let r = request(p.port, Some("x"), &format!("/h/{evil}")).expect("add_header");
    assert_eq!(r.status, 200);
    assert!(r.header("x-injected").is_none(), "{:?}", r.headers);
    assert_eq!(r.header("x-uri"), Some("/h/%0D%0AX-Injected: yes%0D%0A"));
    let r = request(p.port, Some("x"), &format!("/p/{evil}")).expect("proxy");
    assert_eq!(r.status, 200, "{}", p.logs());
    let echoed = r.body_text().to_ascii_lowercase();
    assert!(!echoed.contains("\r\nx-injected"), "{echoed}");
    assert!(
        echoed.contains("x-uri: /p/%0d%0ax-injected: yes%0d%0a"),
        "{echoed}"
    );
    let log = proton_tests::wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(t.path().join("logs/access.log"))
            .is_ok_and(|l| l.lines().count() >= 3)
    });
    assert!(log, "access log");
    let log = std::fs::read_to_string(t.path().join("logs/access.log")).unwrap_or_default();
    assert_eq!(log.lines().count(), 3, "one line per request:\n{log}");
    assert!(log.contains("\\x0D\\x0AX-Injected"), "{log}");
}

/// Lingering is bounded by `lingering_time`: a client that keeps sending into a closing
/// connection is cut off once it has passed (2 s here). The server's FIN comes at once
/// (after the 413); its close shows as a failing write. Without the bound the writes would
/// go on succeeding until the 20 s deadline.
#[test]
fn lingering_ends_after_lingering_time() {
    let t = TempDir::new("linger-time");
    let p = Proton::start(
        t.path(),
        &conf(
            "server { listen 127.0.0.1:{port}; client_max_body_size 1k; \
             lingering_timeout 1s; lingering_time 2s; location / { return 200; } }",
        ),
        1,
    );
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, p.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s.write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        .expect("head");
    s.write_all(&[b'x'; 4096]).expect("some body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .expect("the response, then the server's FIN");
    assert_eq!(parse_response(&raw).expect("a response").status, 413);
    // Keep sending, a little at a time, until a write fails (the server closed).
    let cut = proton_tests::wait_until(Duration::from_secs(20), || {
        s.write_all(&[b'x'; 512]).is_err()
    });
    assert!(cut, "the server lingered past lingering_time\n{}", p.logs());
}
