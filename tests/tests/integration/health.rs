//! Active health checks through the real proxy: a server that stops answering is taken out
//! of rotation (no request reaches it, even with retries off) and comes back once it passes.

use proton_tests::{get, wait_until, Backend, Proton, TempDir};
use std::time::Duration;

fn conf(b1: u16, b2: u16) -> String {
    format!(
        r#"
worker_processes 2;
error_log {{dir}}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    upstream be {{
        server 127.0.0.1:{b1} max_fails=0;
        server 127.0.0.1:{b2} max_fails=0;
        health_check interval=100ms uri=/id fails=1 passes=1 timeout=500ms;
    }}
    server {{
        listen 127.0.0.1:{{port}};
        location / {{
            proxy_pass http://be;
            proxy_next_upstream off;
        }}
    }}
}}
"#
    )
}

fn error_log(t: &TempDir) -> String {
    std::fs::read_to_string(t.path().join("error.log")).unwrap_or_default()
}

#[test]
fn a_failing_server_is_evicted_and_comes_back() {
    let t = TempDir::new("health");
    let b1 = Backend::start("b1");
    let mut b2 = Backend::start("b2");
    let b2_port = b2.port;
    let proton = Proton::start(t.path(), &conf(b1.port, b2_port), 2);

    // Both serve while healthy.
    let mut seen = std::collections::HashSet::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (status, body) = get(proton.port, None, "/id");
            assert_eq!(status, 200, "{body}");
            seen.insert(body);
            seen.len() == 2
        }),
        "both backends should answer: {seen:?}"
    );

    // b2 dies: the checker marks it down; then no request goes there (retries are off, so
    // a request to it would be a 502).
    b2.kill();
    let down = format!("127.0.0.1:{b2_port} (127.0.0.1:{b2_port}) is down");
    assert!(
        wait_until(Duration::from_secs(10), || error_log(&t).contains(&down)),
        "no 'is down' line:\n{}",
        error_log(&t)
    );
    for _ in 0..60 {
        let (status, body) = get(proton.port, None, "/id");
        assert_eq!((status, body.as_str()), (200, "b1"));
    }

    // b2 returns on the same port: it passes a check and gets traffic again.
    let _b2 = Backend::start_on("b2", b2_port);
    assert!(
        wait_until(Duration::from_secs(10), || error_log(&t).contains(
            &format!("127.0.0.1:{b2_port} (127.0.0.1:{b2_port}) is up again")
        )),
        "no 'is up again' line:\n{}",
        error_log(&t)
    );
    assert!(
        wait_until(Duration::from_secs(10), || get(proton.port, None, "/id").1
            == "b2"),
        "b2 gets no traffic after coming back"
    );
}
