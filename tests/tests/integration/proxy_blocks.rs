//! proxy_pass with `if` and `limit_except` blocks and with intercepted errors, as nginx:
//! the URI part replaces the prefix of the location where proxy_pass is written (also when an
//! `if` or `limit_except` block takes the request), an `if` with its own proxy_pass keeps
//! the proxy handler for a later matching `if` without one (a 500: it has no upstream), and
//! an intercepted 401 keeps the upstream's `WWW-Authenticate` lines. The upstream is Proton.

use proton_tests::{request, Proton, TempDir};

use super::request_body::{conf, error_log};

const HTTP: &str = "server {
    listen 127.0.0.1:{port};
    location /pp {
        proxy_pass http://127.0.0.1:{port}/echo/;
        if ($arg_if) { }
        limit_except POST { }
    }
    location /sticky {
        set $t 1;
        if ($t) { proxy_pass http://127.0.0.1:{port}; }
        if ($t) { }
    }
    location /auth {
        proxy_pass http://127.0.0.1:{port}/unauth;
        proxy_intercept_errors on;
        error_page 401 /err;
    }
    location /echo/ { return 200 \"uri=$uri\"; }
    location /unauth {
        add_header WWW-Authenticate \"Basic realm=a\" always;
        add_header WWW-Authenticate \"Bearer b\" always;
        return 401;
    }
    location = /err { return 200 \"err\"; }
}";

#[test]
fn proxy_pass_in_blocks_and_intercepted_401() {
    let t = TempDir::new("proxy-blocks");
    let p = Proton::start(t.path(), &conf(HTTP), 1);
    let get = |path: &str| {
        request(p.port, Some("x"), path).unwrap_or_else(|e| panic!("{path}: {e}\n{}", p.logs()))
    };
    // The prefix `/pp` is replaced whichever block took the request (GET: the limit_except
    // block; `?if=1`: the if block).
    for path in ["/pp/x", "/pp/x?if=1"] {
        let r = get(path);
        assert_eq!(
            (r.status, r.body_text().as_str()),
            (200, "uri=/echo/x"),
            "{path}"
        );
    }
    // A later `if` without proxy_pass: 500 and nginx's alert.
    assert_eq!(get("/sticky").status, 500);
    assert!(
        error_log(&t).contains("[alert]") && error_log(&t).contains("no upstream configuration")
    );
    // The error page's answer has the upstream's WWW-Authenticate lines, in order.
    let r = get("/auth");
    assert_eq!(r.status, 401, "{}", p.logs());
    assert_eq!(r.body_text(), "err");
    let auth: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(auth, ["Basic realm=a", "Bearer b"]);
}

/// The trailer section of a chunked upstream response: dropped by default (nginx), passed
/// with `proxy_pass_trailers on`, seen by `$upstream_trailer_*` either way.
#[test]
fn upstream_trailers_dropped_or_passed() {
    let t = TempDir::new("proxy-trailers");
    let b = proton_tests::Backend::start("be");
    let log = t.path().join("trailers.log");
    let http = format!(
        "log_format tr \"$uri t=$upstream_trailer_x_trailer\";
         server {{
             listen 127.0.0.1:{{port}};
             proxy_http_version 1.1;
             access_log {} tr;
             location / {{ proxy_pass http://127.0.0.1:{}; }}
             location /pass/ {{ proxy_pass http://127.0.0.1:{}/; proxy_pass_trailers on; }}
             location /both/ {{ proxy_pass http://127.0.0.1:{}/; proxy_pass_trailers on; add_trailer X-Own 1; access_log off; }}
         }}",
        log.display(),
        b.port,
        b.port,
        b.port
    );
    let p = Proton::start(t.path(), &conf(&http), 1);
    let raw = |path: &str| {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (out, _) =
            proton_tests::raw_exchange(p.port, req.as_bytes(), std::time::Duration::from_secs(10));
        String::from_utf8_lossy(&out).into_owned()
    };
    let dropped = raw("/chunked?n=2&size=3&trailer=1");
    assert!(
        dropped.ends_with("3\r\naaa\r\n3\r\nbbb\r\n0\r\n\r\n"),
        "{dropped:?}"
    );
    let passed = raw("/pass/chunked?n=2&size=3&trailer=1");
    assert!(
        passed.ends_with("0\r\nX-Trailer: yes\r\n\r\n"),
        "{passed:?}"
    );
    // With add_trailer too (Proton frames the chunks): the upstream's, then its own.
    let both = raw("/both/chunked?n=2&size=3&trailer=1");
    assert!(
        both.ends_with("0\r\nX-Trailer: yes\r\nX-Own: 1\r\n\r\n"),
        "{both:?}"
    );
    assert!(proton_tests::wait_until(
        std::time::Duration::from_secs(10),
        || { std::fs::read_to_string(&log).is_ok_and(|l| l.lines().count() >= 2) }
    ));
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(lines, "/chunked t=yes\n/pass/chunked t=yes\n");
}
