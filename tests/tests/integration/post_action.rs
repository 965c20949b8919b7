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
         log_format pa \"$request $status $body_bytes_sent\";\n\
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

/// Waits until the backend has served `n` requests (its `/stats` calls included).
fn wait_served(b: &Backend, n: u64) -> u64 {
    let mut now = 0;
    wait_until(Duration::from_secs(20), || {
        now = served(b);
        now >= n
    });
    now
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
    // Two post actions, and this /stats and the one before counted once each.
    assert_eq!(wait_served(&backend, before + 3), before + 3);

    // Keep-alive: the connection stays usable, and each request runs its post action.
    let before = served(&backend);
    let req: &[u8] = b"GET /remote HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let rs = keep_alive_exchange(p.port, &[req, req, req]).expect("keep-alive");
    assert_eq!(rs.len(), 3);
    for r in &rs {
        assert_eq!((r.status, r.body_text().as_str()), (200, "SEE-THIS\n"));
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    assert_eq!(wait_served(&backend, before + 4), before + 4);

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

    // A request with a body does not run it (Proton keeps no body to send again).
    let before = served(&backend);
    let (raw, _) = proton_tests::raw_exchange(
        p.port,
        b"POST /remote HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        Duration::from_secs(20),
    );
    assert!(String::from_utf8_lossy(&raw).ends_with("SEE-THIS\n"));
    assert_eq!(served(&backend), before + 1, "only the /stats request");

    // One access-log line per request, for the response the client got.
    let mut lines = Vec::new();
    let done = wait_until(Duration::from_secs(20), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        lines = text.lines().map(str::to_string).collect();
        lines.len() >= 10
    });
    assert!(done, "{lines:?}\n{}", p.logs());
    assert_eq!(lines[0], "GET / HTTP/1.0 200 9");
    assert_eq!(lines[1], "GET /remote HTTP/1.0 200 9");
    assert!(lines.iter().all(|l| l.ends_with(" 200 9")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("post")), "{lines:?}");
}
