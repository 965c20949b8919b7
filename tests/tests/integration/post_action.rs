//! `post_action`: once the response is out, the request goes on internally to another URI
//! or named location whose output is thrown away (a proxied one still reaches its upstream);
//! the client sees only its own response, the access log has one line for it, and the
//! connection's keep-alive is unchanged.

use proton_tests::{keep_alive_exchange, wait_until, Backend, Proton, TempDir};
use std::time::Duration;

fn conf(backend: u16, log: &str) -> String {
    format!(
        "events {{}}\n\
         http {{\n\
         log_format pa \"$request $status $body_bytes_sent $uri\";\n\
         access_log {log} pa;\n\
         server {{\n\
             listen 127.0.0.1:{{port}};\n\
             location / {{ post_action /post.static; return 200 \"SEE-THIS\\n\"; }}\n\
             location /post.static {{ return 200 \"HIDDEN\\n\"; }}\n\
             location /remote {{ post_action /post.remote; return 200 \"SEE-THIS\\n\"; }}\n\
             location /post.remote {{ proxy_pass http://127.0.0.1:{backend}/id; }}\n\
             location /named {{ post_action @post; return 200 \"SEE-THIS\\n\"; }}\n\
             location @post {{ proxy_pass http://127.0.0.1:{backend}; }}\n\
             location /dead {{ post_action /post.dead; return 200 \"SEE-THIS\\n\"; }}\n\
             location /post.dead {{ proxy_pass http://127.0.0.1:9; }}\n\
             location /off {{ post_action off; return 200 \"SEE-THIS\\n\"; }}\n\
         }}\n\
         }}\n"
    )
}

/// Requests the backend served so far, the `/stats` asking included.
fn served(b: &Backend) -> u64 {
    b.stats().1
}

/// Waits until the backend has served `posts` requests besides the `/stats` ones since
/// `before` (a [`served`] reading); returns how many it served.
fn wait_posts(b: &Backend, before: u64, posts: u64) -> u64 {
    let mut polls = 0;
    let mut seen = 0;
    wait_until(Duration::from_secs(20), || {
        polls += 1;
        seen = served(b) - before - polls;
        seen >= posts
    });
    seen
}

#[test]
fn post_action_runs_after_the_response_and_is_not_seen() {
    let t = TempDir::new("post-action");
    let backend = Backend::start("post");
    let log = t.path().join("pa.log");
    let p = Proton::start(t.path(), &conf(backend.port, &log.display().to_string()), 1);
    let get = |path: &str| -> Vec<u8> {
        let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
        proton_tests::raw_exchange(p.port, req.as_bytes(), Duration::from_secs(20)).0
    };

    // A static post action: the client gets its own answer only.
    let r = get("/");
    let text = String::from_utf8_lossy(&r);
    assert!(
        text.contains("SEE-THIS") && !text.contains("HIDDEN"),
        "{text}"
    );

    // A proxied post action reaches the backend; its answer does not reach the client.
    let before = served(&backend);
    for path in ["/remote", "/named"] {
        let r = get(path);
        let text = String::from_utf8_lossy(&r);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with("SEE-THIS\n"),
            "{path}: {text}"
        );
        assert!(!text.contains("X-Backend"), "{path}: {text}");
    }
    assert_eq!(wait_posts(&backend, before, 2), 2);

    // Keep-alive: the connection stays usable, and each request runs its post action.
    let before = served(&backend);
    let req: &[u8] = b"GET /remote HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let rs = keep_alive_exchange(p.port, &[req, req, req]).expect("keep-alive");
    assert_eq!(rs.len(), 3);
    for r in &rs {
        assert_eq!((r.status, r.body_text().as_str()), (200, "SEE-THIS\n"));
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    assert_eq!(wait_posts(&backend, before, 3), 3);

    // An upstream that refuses: nothing is answered for the post action, the client has
    // its response, and the server goes on.
    let r = get("/dead");
    assert!(String::from_utf8_lossy(&r).ends_with("SEE-THIS\n"));
    let rs = keep_alive_exchange(
        p.port,
        &[
            b"GET /dead HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /off HTTP/1.1\r\nHost: x\r\n\r\n",
        ],
    )
    .expect("keep-alive after a failed post action");
    assert_eq!(rs.len(), 2);
    assert!(rs
        .iter()
        .all(|r| r.status == 200 && r.body_text() == "SEE-THIS\n"));

    // A request with a body: a proxied post action cannot send it again (refused, 500 in
    // the log); the backend is not asked.
    let before = served(&backend);
    let (raw, _) = proton_tests::raw_exchange(
        p.port,
        b"POST /remote HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        Duration::from_secs(20),
    );
    assert!(String::from_utf8_lossy(&raw).ends_with("SEE-THIS\n"));
    assert_eq!(served(&backend), before + 1, "only the /stats request");

    // One access-log line per request, written after the post action, as nginx: its
    // status and `$uri`, with the bytes of the response the client got.
    let mut lines = Vec::new();
    let done = wait_until(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        lines = text.lines().map(str::to_string).collect();
        lines.len() >= 10
    });
    assert!(done, "{lines:?}\n{}", p.logs());
    assert_eq!(lines.len(), 10, "{lines:?}");
    assert_eq!(lines[0], "GET / HTTP/1.0 200 9 /post.static");
    // (The backend answers 200 for /id, which the location's prefix became.)
    assert_eq!(lines[1], "GET /remote HTTP/1.0 200 9 /post.remote");
    assert!(
        lines[2].starts_with("GET /named HTTP/1.0 ") && lines[2].ends_with(" 9 /named"),
        "{lines:?}"
    );
    assert_eq!(lines[3], "GET /remote HTTP/1.1 200 9 /post.remote");
    assert_eq!(lines[6], "GET /dead HTTP/1.0 502 9 /post.dead");
    assert_eq!(lines[8], "GET /off HTTP/1.1 200 9 /off");
    assert_eq!(lines[9], "POST /remote HTTP/1.0 500 9 /post.remote");
}

/// The server of the comparison with nginx (`{port}` and `{root}` filled in): post actions
/// to a static file, to a `return`, to a proxy that fails and to a proxy back to itself.
const SERVER: &str = r#"
log_format pa "$request $status $body_bytes_sent $uri";
server {
    listen 127.0.0.1:{port};
    root {root};
    access_log {root}/pa.log pa;
    location / { post_action /post.html; }
    location = /r { post_action /ret; return 200 "SEE-THIS\n"; }
    location = /ret { return 204; }
    location /post.html { }
    location = /dead { post_action /post.dead; return 200 "SEE-THIS\n"; }
    location = /post.dead { proxy_pass http://127.0.0.1:9; }
    location = /self { post_action /post.self; return 200 "SEE-THIS\n"; }
    location = /post.self { proxy_pass http://127.0.0.1:{port}/post.html; }
    location = /ka { keepalive_requests 2; post_action /post.html; return 200 "SEE-THIS\n"; }
}
"#;

/// What one server shows: the answers (status, Connection, body) and its sorted log lines.
fn observe(port: u16, root: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let mut answers = Vec::new();
    for path in ["/", "/r", "/dead", "/self"] {
        let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
        let (raw, closed) =
            proton_tests::raw_exchange(port, req.as_bytes(), Duration::from_secs(20));
        let r = proton_tests::parse_response(&raw).expect("a response");
        answers.push(format!("{path} {} {} {closed}", r.status, r.body_text()));
    }
    let req: &[u8] = b"GET /ka HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let rs = keep_alive_exchange(port, &[req, req]).expect("keep-alive");
    for r in rs {
        answers.push(format!(
            "/ka {} {:?} {}",
            r.status,
            r.header("connection"),
            r.body_text()
        ));
    }
    // The request a post action proxies to the server itself is logged too.
    let log = root.join("pa.log");
    let mut lines = Vec::new();
    wait_until(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        lines = text.lines().map(str::to_string).collect();
        lines.len() >= 7
    });
    lines.sort();
    (answers, lines)
}

#[test]
fn post_action_answers_and_logs_as_nginx() {
    let Some(bin) = proton_tests::nginx_binary() else {
        return;
    };
    let ngx_root = TempDir::new("post-action-nginx");
    std::fs::write(ngx_root.path().join("index.html"), "SEE-THIS\n").expect("write");
    std::fs::write(ngx_root.path().join("post.html"), "HIDDEN\n").expect("write");
    let root = ngx_root.path().display().to_string();
    let nginx = proton_tests::Nginx::start(&bin, |port| {
        SERVER
            .replace("{port}", &port.to_string())
            .replace("{root}", &root)
    });
    let t = TempDir::new("post-action-proton");
    std::fs::write(t.path().join("index.html"), "SEE-THIS\n").expect("write");
    std::fs::write(t.path().join("post.html"), "HIDDEN\n").expect("write");
    let conf = format!(
        "events {{}}\nhttp {{\n{}\n}}\n",
        SERVER.replace("{root}", &t.path().display().to_string())
    );
    let proton = Proton::start(t.path(), &conf, 1);
    let want = observe(nginx.port(), ngx_root.path());
    let got = observe(proton.port, t.path());
    assert_eq!(got, want, "Proton (left) and nginx (right) differ");
}
