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
