//! `X-Accel-Redirect` from an upstream, as nginx: the request goes on to the URI or named
//! location the header names, as a GET (unless HEAD), with some of the upstream's headers; an
//! unsafe URI is a 404; `proxy_ignore_headers X-Accel-Redirect` passes the answer through.
//! The upstream is Proton itself (a location that answers with the header).

use proton_tests::{parse_response, raw_exchange, Proton, Response, TempDir};
use std::time::Duration;

use super::request_body::{conf, error_log};

const HTTP: &str = "server {
    listen 127.0.0.1:{port};
    location /proxy {
        proxy_pass http://127.0.0.1:{port}/upstream;
    }
    location /ignored {
        proxy_pass http://127.0.0.1:{port}/upstream;
        proxy_ignore_headers X-Accel-Redirect;
    }
    location /upstream {
        add_header X-Accel-Redirect $arg_xar;
        add_header Set-Cookie a=b;
        add_header Content-Disposition attachment;
        add_header Cache-Control no-cache;
        add_header Cache-Control private;
        add_header Something other;
        default_type text/blah;
        return 200 \"from upstream\";
    }
    location /target {
        return 200 \"target uri=$uri args=$args method=$request_method xar=$upstream_http_x_accel_redirect\";
    }
    location @named {
        return 200 \"named uri=$uri\";
    }
}";

fn send(p: &Proton, raw: &str) -> Response {
    let (out, _) = raw_exchange(p.port, raw.as_bytes(), Duration::from_secs(20));
    parse_response(&out).unwrap_or_else(|e| panic!("{raw}: {e}\n{}", p.logs()))
}

fn get(p: &Proton, target: &str) -> Response {
    send(p, &format!("GET {target} HTTP/1.0\r\nHost: x\r\n\r\n"))
}

#[test]
fn x_accel_redirect_sends_the_request_on() {
    let t = TempDir::new("xar");
    let p = Proton::start(t.path(), &conf(HTTP), 1);

    let r = get(&p, "/proxy?xar=/target%3Fq");
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(
        r.body_text(),
        "target uri=/target?q args= method=GET xar=/target%3Fq"
    );
    // The upstream's redirect headers go with the answer; others do not.
    assert_eq!(r.header("content-type"), Some("text/blah"));
    assert_eq!(r.header("set-cookie"), Some("a=b"));
    assert_eq!(r.header("content-disposition"), Some("attachment"));
    assert_eq!(r.header("something"), None);
    assert_eq!(r.header("x-accel-redirect"), None);
    // Several lines of a carried header all go (nginx copies multi-line headers).
    let cc: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cache-control"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cc, ["no-cache", "private"]);

    // Arguments after `?`; a POST goes on as a GET.
    let r = send(
        &p,
        "POST /proxy?xar=/target?a=1 HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(
        r.body_text(),
        "target uri=/target args=a=1 method=GET xar=/target?a=1"
    );

    // Escapes are decoded; `..` segments are refused (before or after decoding).
    assert_eq!(
        get(&p, "/proxy?xar=/target%20x").body_text(),
        "target uri=/target x args= method=GET xar=/target%20x"
    );
    for bad in ["..", "../target", "/target/..", "/target/.%2e"] {
        let r = get(&p, &format!("/proxy?xar={bad}"));
        assert_eq!(r.status, 404, "{bad}: {}", r.body_text());
    }
    assert!(error_log(&t).contains("unsafe URI \"../target\" was detected"));

    // A named location keeps the URI.
    let r = get(&p, "/proxy?xar=@named");
    assert_eq!(r.body_text(), "named uri=/proxy");

    // proxy_ignore_headers: the upstream's answer goes out (without the header, which
    // nginx's default proxy_hide_header list hides).
    let r = get(&p, "/ignored?xar=/target");
    assert_eq!(r.body_text(), "from upstream");
    assert_eq!(r.header("x-accel-redirect"), None);
    assert_eq!(r.header("something"), Some("other"));
}
