//! `mirror`: a request that reaches a location's content handler is copied to each mirror
//! URI as a subrequest whose answer is thrown away. The copies carry the method, headers,
//! arguments and (with `mirror_request_body on`) the body; the client sees only its own
//! answer and its connection goes on as that answer said.

use proton_tests::{keep_alive_exchange, wait_until, Proton, TempDir};
use std::time::Duration;

/// One server: `/b/…` is the "backend" (it logs what it got, body included, and answers
/// with the body in `X-Body`); the other locations mirror to it.
fn conf(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        "events {{}}\n\
         http {{\n\
         log_format got \"$request_method $request_uri:$request_body\";\n\
         log_format sub \"$uri $status $args\";\n\
         access_log off;\n\
         server {{\n\
             listen 127.0.0.1:{{port}};\n\
             root {d};\n\
             location / {{ mirror /mirror; proxy_pass http://127.0.0.1:{{port}}/b/; }}\n\
             location /stream {{ mirror /mirror; proxy_request_buffering off; proxy_pass http://127.0.0.1:{{port}}/b/; }}\n\
             location /nobody {{ mirror /mirror/nobody; mirror_request_body off; proxy_pass http://127.0.0.1:{{port}}/b/; }}\n\
             location /static {{ mirror /mirror; mirror /mirror2; }}\n\
             location = /dead.html {{ mirror /mirror/dead; }}\n\
             location /tried {{ mirror /mirror2; try_files $uri =404; }}\n\
             location /mirror {{ internal; log_subrequest on; access_log {d}/sub.log sub; proxy_pass http://127.0.0.1:{{port}}/b/mirror; }}\n\
             location /mirror/nobody {{ internal; proxy_pass http://127.0.0.1:{{port}}/b/nobody; proxy_set_header Content-Length \"\"; }}\n\
             location /mirror/dead {{ internal; proxy_pass http://127.0.0.1:9; }}\n\
             location /mirror2 {{ internal; log_subrequest on; access_log {d}/sub.log sub; return 204; }}\n\
             location /b/ {{ access_log {d}/got.log got; proxy_pass http://127.0.0.1:{{port}}/r/; add_header X-Body $request_body; }}\n\
             location /r/ {{ return 204; }}\n\
         }}\n\
         }}\n"
    )
}

fn exchange(port: u16, req: &str) -> String {
    let (raw, _) = proton_tests::raw_exchange(port, req.as_bytes(), Duration::from_secs(20));
    String::from_utf8_lossy(&raw).into_owned()
}

fn post(port: u16, path: &str) -> String {
    exchange(
        port,
        &format!("POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n1234567890"),
    )
}

/// Waits until `file` has a line equal to each of `want` (failing the test when it does
/// not within 20 s); returns its lines.
fn wait_lines(file: &std::path::Path, want: &[&str]) -> Vec<String> {
    let mut lines = Vec::new();
    let found = wait_until(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        lines = text.lines().map(str::to_string).collect();
        want.iter().all(|w| lines.iter().any(|l| l == w))
    });
    assert!(found, "{} lacks one of {want:?}: {lines:?}", file.display());
    lines
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

/// Waits until `file` has `n` lines equal to `line` (failing the test when it does not
/// within 20 s); returns its lines.
fn wait_count(file: &std::path::Path, line: &str, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let found = wait_until(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        lines = text.lines().map(str::to_string).collect();
        count(&lines, line) >= n
    });
    assert!(
        found,
        "{} has not {n} of {line:?}: {lines:?}",
        file.display()
    );
    lines
}

#[test]
fn mirrors_get_a_copy_and_the_client_only_its_answer() {
    let t = TempDir::new("mirror");
    t.write("static.html", "STATIC\n");
    t.write("tried.html", "TRIED\n");
    t.write("dead.html", "main\n");
    let p = Proton::start(t.path(), &conf(t.path()), 1);
    let got = t.path().join("got.log");
    let sub = t.path().join("sub.log");

    // A proxied request: the backend sees it and its mirror, both with the body; the client
    // gets one answer, its own.
    let r = post(p.port, "/");
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    assert_eq!(r.matches("X-Body: 1234567890").count(), 1, "{r}");
    let lines = wait_lines(&got, &["POST /b/:1234567890", "POST /b/mirror:1234567890"]);
    assert!(
        lines.contains(&"POST /b/mirror:1234567890".to_string()),
        "{lines:?}\n{}",
        p.logs()
    );

    // proxy_request_buffering off: the body is still kept whole for the mirror.
    post(p.port, "/stream");
    let lines = wait_count(&got, "POST /b/mirror:1234567890", 2);
    assert_eq!(count(&lines, "POST /b/:1234567890"), 2, "{lines:?}");

    // mirror_request_body off: the mirror goes without the body, the request with it.
    let r = post(p.port, "/nobody");
    assert!(r.contains("X-Body: 1234567890"), "{r}");
    let lines = wait_count(&got, "POST /b/nobody:-", 1);
    assert_eq!(
        count(&lines, "POST /b/:1234567890"),
        3,
        "{lines:?}\n{}",
        p.logs()
    );

    // A POST to a static file: 405 for the client, and its mirror still gets the body (nginx's
    // mirror handler runs before the content handler).
    let r = post(p.port, "/static.html?x=1");
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    wait_lines(&got, &["POST /b/mirror?x=1:1234567890"]);

    // Keep-alive: two mirrors per request, in order, each logged with the request's
    // arguments (log_subrequest on); the client gets its two answers and nothing else.
    let req: &[u8] = b"GET /static.html?k=2 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let rs = keep_alive_exchange(p.port, &[req, req]).expect("keep-alive");
    assert_eq!(rs.len(), 2);
    for r in &rs {
        assert_eq!((r.status, r.body_text().as_str()), (200, "STATIC\n"));
        assert_eq!(r.header("connection"), Some("keep-alive"));
        assert_eq!(r.header("x-body"), None);
    }
    let lines = wait_count(&sub, "/mirror2 204 k=2", 2);
    let k2: Vec<&String> = lines.iter().filter(|l| l.ends_with(" k=2")).collect();
    assert_eq!(
        k2,
        [
            "/mirror 204 k=2",
            "/mirror2 204 k=2",
            "/mirror 204 k=2",
            "/mirror2 204 k=2"
        ],
        "{lines:?}"
    );

    // try_files: a mirror only once a file was found.
    let (status, body) = proton_tests::get(p.port, None, "/tried.html?t=1");
    assert_eq!((status, body.as_str()), (200, "TRIED\n"));
    let (status, _) = proton_tests::get(p.port, None, "/tried-missing?t=2");
    assert_eq!(status, 404);
    let lines = wait_lines(&sub, &["/mirror2 204 t=1"]);
    assert!(!lines.iter().any(|l| l.ends_with("t=2")), "{lines:?}");

    // A mirror whose upstream refuses: the client has its answer, the connection goes on.
    let rs = keep_alive_exchange(
        p.port,
        &[
            b"GET /dead.html HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /static.html HTTP/1.1\r\nHost: x\r\n\r\n",
        ],
    )
    .expect("keep-alive after a failed mirror");
    let got: Vec<(u16, String)> = rs.iter().map(|r| (r.status, r.body_text())).collect();
    assert_eq!(
        got,
        [(200, "main\n".to_string()), (200, "STATIC\n".to_string())]
    );
    assert!(p.logs().contains("connect() failed"), "{}", p.logs());
}

/// The server of the comparison with nginx (`{port}` and `{root}` filled in).
const SERVER: &str = r#"
log_format sub "$request_method $uri $status $args";
log_format got "$request_method $request_uri:$request_body";
access_log off;
server_tokens off;
server {
    listen 127.0.0.1:{port};
    root {root};
    location / { mirror /m; }
    location /off { mirror off; }
    location /many { mirror /m/1; mirror /m/2; }
    location /px { mirror /mp; proxy_pass http://127.0.0.1:{port}/b/; }
    location /m { internal; log_subrequest on; access_log {root}/sub.log sub; }
    location /mp { internal; log_subrequest on; access_log {root}/sub.log sub; proxy_pass http://127.0.0.1:{port}/b/mp; }
    location /b/ { access_log {root}/got.log got; proxy_pass http://127.0.0.1:{port}/r/; }
    location /r/ { return 204; }
    location /ep/ { error_page 404 /epage.html; }
    location = /epage.html { mirror /m; }
}
"#;

/// What one server shows: the answers (status, body) and the sorted lines of its logs.
fn observe(port: u16, root: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let mut answers = Vec::new();
    let reqs = [
        "GET /index.html?1 HTTP/1.0\r\nHost: localhost\r\n\r\n",
        "GET /?2 HTTP/1.0\r\nHost: localhost\r\n\r\n",
        "GET /off/?3 HTTP/1.0\r\nHost: localhost\r\n\r\n",
        "GET /many?4 HTTP/1.0\r\nHost: localhost\r\n\r\n",
        "HEAD /many?5 HTTP/1.0\r\nHost: localhost\r\n\r\n",
        "POST /px?6 HTTP/1.0\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nbody",
        "POST /index.html?7 HTTP/1.0\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nbody",
        // An error_page made the request a GET: its mirror is a GET too.
        "POST /ep/missing?8 HTTP/1.0\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nbody",
    ];
    for req in reqs {
        let (raw, _) = proton_tests::raw_exchange(port, req.as_bytes(), Duration::from_secs(20));
        let text = String::from_utf8_lossy(&raw);
        let status = text.lines().next().unwrap_or_default().to_string();
        // (A HEAD's answer has no body to parse.)
        let body = if req.starts_with("HEAD") {
            String::new()
        } else {
            proton_tests::parse_response(&raw)
                .expect("a response")
                .body_text()
        };
        // (Error pages name their server.)
        let body = body.replace("nginx", "SERVER").replace("proton", "SERVER");
        answers.push(format!("{status} {body}"));
    }
    let mut lines = Vec::new();
    wait_until(Duration::from_secs(20), || {
        lines.clear();
        for f in ["sub.log", "got.log"] {
            let text = std::fs::read_to_string(root.join(f)).unwrap_or_default();
            lines.extend(text.lines().map(|l| format!("{f}: {l}")));
        }
        lines.len() >= 12
    });
    lines.sort();
    (answers, lines)
}

#[test]
fn mirrors_answer_and_log_as_nginx() {
    let Some(bin) = proton_tests::nginx_binary() else {
        return;
    };
    let setup = |dir: &std::path::Path| {
        std::fs::write(dir.join("index.html"), "INDEX\n").expect("write");
        std::fs::write(dir.join("many"), "MANY\n").expect("write");
        std::fs::write(dir.join("epage.html"), "EPAGE\n").expect("write");
        std::fs::create_dir_all(dir.join("off")).expect("mkdir");
        std::fs::write(dir.join("off/index.html"), "OFF\n").expect("write");
    };
    let ngx_root = TempDir::new("mirror-nginx");
    setup(ngx_root.path());
    let root = ngx_root.path().display().to_string();
    let nginx = proton_tests::Nginx::start(&bin, |port| {
        SERVER
            .replace("{port}", &port.to_string())
            .replace("{root}", &root)
    });
    let t = TempDir::new("mirror-proton");
    setup(t.path());
    let conf = format!(
        "events {{}}\nhttp {{\n{}\n}}\n",
        SERVER.replace("{root}", &t.path().display().to_string())
    );
    let proton = Proton::start(t.path(), &conf, 1);
    let want = observe(nginx.port(), ngx_root.path());
    let got = observe(proton.port, t.path());
    assert_eq!(
        got,
        want,
        "Proton (left) and nginx (right) differ\n{}",
        proton.logs()
    );
}

/// An upstream that answers every request with a head announcing a long body, sends a few
/// bytes of it, and then holds the connection (until the other side closes it).
fn stalling_upstream() -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial");
                // Hold it: read (and drop) until the proxy closes.
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

/// What nginx's `header_only` subrequests imply, and the cases a review found: a mirror is
/// over with its answer's head (a stalling mirror backend holds up nothing); a mirror
/// without the body is sent even when the body streamed past the buffer; a mirror after a
/// post action still carries the body; `Expect: 100-continue` gets its go-ahead when only
/// the mirrors read the body.
#[test]
fn mirrors_end_with_the_head_and_get_their_bodies() {
    let t = TempDir::new("mirror-more");
    t.write("static.html", "STATIC\n");
    let stall = stalling_upstream();
    let d = t.path().display();
    let conf = format!(
        "events {{}}\n\
         http {{\n\
         log_format got \"$request_method $request_uri:$request_body\";\n\
         access_log off;\n\
         client_body_buffer_size 1k;\n\
         server {{\n\
             listen 127.0.0.1:{{port}};\n\
             root {d};\n\
             location = /slow.html {{ alias {d}/static.html; mirror /slowm; }}\n\
             location /slowm {{ internal; proxy_pass http://127.0.0.1:{stall}; proxy_read_timeout 60s; }}\n\
             location /big {{ mirror /m/nobody; mirror_request_body off; proxy_request_buffering off; proxy_pass http://127.0.0.1:{{port}}/b/; }}\n\
             location = /pa.html {{ alias {d}/static.html; mirror /m/body; post_action /r/pa; }}\n\
             location = /ex.html {{ alias {d}/static.html; mirror /m/body; }}\n\
             location /m/ {{ internal; proxy_pass http://127.0.0.1:{{port}}/b/; proxy_set_header Content-Length \"\"; }}\n\
             location /m/body {{ internal; proxy_pass http://127.0.0.1:{{port}}/b/body; }}\n\
             location /b/ {{ access_log {d}/got.log got; proxy_pass http://127.0.0.1:{{port}}/r/; }}\n\
             location /r/ {{ return 204; }}\n\
         }}\n\
         }}\n"
    );
    let p = Proton::start(t.path(), &conf, 1);
    let got = t.path().join("got.log");

    // A mirror backend that sends its head and stalls: both keep-alive requests are
    // answered (the second one waits for nothing).
    let req: &[u8] = b"GET /slow.html HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let rs = keep_alive_exchange(p.port, &[req, req]).expect("keep-alive past a stalling mirror");
    assert_eq!(rs.len(), 2);
    assert!(rs
        .iter()
        .all(|r| r.status == 200 && r.body_text() == "STATIC\n"));

    // A body streamed past client_body_buffer_size (not kept): the mirror without the body
    // still goes.
    let big = "x".repeat(20_000);
    let r = exchange(
        p.port,
        &format!(
            "POST /big HTTP/1.0\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{big}",
            big.len()
        ),
    );
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    wait_lines(&got, &["POST /b/nobody:-"]);

    // A mirror after a post action: sent, with the body.
    let r = post(p.port, "/pa.html");
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    wait_lines(&got, &["POST /b/body:1234567890"]);

    // Expect: 100-continue to a static file whose mirror wants the body: the go-ahead comes
    // before the answer, the client sends the body, and the mirror gets it.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(
        b"POST /ex.html?e=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .expect("write");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    s.write_all(b"abcde").expect("body");
    let _ = s.read_to_end(&mut seen);
    assert!(
        String::from_utf8_lossy(&seen).contains("405 Not Allowed"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    wait_lines(&got, &["POST /b/body?e=1:abcde"]);
}
