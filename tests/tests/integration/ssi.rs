//! SSI and the addition module over real sockets: commands in static files and `return`
//! text, includes of files, of proxied bodies (large, slow, chunked) and of other SSI
//! pages, proxied pages with SSI, addition around static, returned and proxied bodies,
//! gzip around the result, HTTP/2, and hostile pages (an include loop, a subrequest whose
//! upstream dies mid-body, a client that leaves while a subrequest runs).

use flate2::read::MultiGzDecoder;
use proton_tests::{raw_exchange, wait_until, Backend, Proton, Response, TempDir};
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

fn exchange(port: u16, req: &str) -> Response {
    proton_tests::exchange_one(port, req)
}

fn get(port: u16, path: &str) -> Response {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: ssi\r\nConnection: close\r\n\r\n"),
    )
}

fn body(port: u16, path: &str) -> String {
    let r = get(port, path);
    assert_eq!(r.status, 200, "{path}: {r:?}");
    r.body_text()
}

struct Site {
    t: TempDir,
    p: Proton,
    b: Backend,
}

fn site() -> Site {
    let t = TempDir::new("ssi");
    let b = Backend::start("ssi");
    let root = t.path().join("www");
    std::fs::create_dir_all(root.join("d")).expect("mkdir");
    let files: &[(&str, &str)] = &[
        ("echo.html", "X<!--#echo var=\"arg_v\" -->X"),
        ("inc.html", "[<!--#include virtual=\"/echo.html?v=sub\" -->]"),
        (
            "enc.html",
            "<!--#set var=\"s\" value=\"<a b>&\" --><!--#echo var=\"s\" -->|<!--#echo var=\"s\" encoding=\"url\" -->|<!--#echo var=\"s\" encoding=\"none\" -->|<!--#echo var=\"nope\" -->|<!--#echo var=\"nope\" default=\"dflt\" -->",
        ),
        (
            "if.html",
            "<!--#if expr=\"$arg_x = one\" -->1<!--#elif expr=\"$arg_x = /^t(w)o/\" -->2$1=<!--#echo var=\"1\" --><!--#elif expr=\"$arg_x\" -->any<!--#else -->none<!--#endif -->.",
        ),
        (
            "err.html",
            "a<!--#nosuch -->b<!--#config errmsg=\"E!\" --><!--#echo -->c<!--#include -->d",
        ),
        (
            "stub.html",
            "<!--#block name=\"s\" -->STUB<!--#endblock --><!--#block name=\"e\" -->[<!--#echo var=\"arg_x\" -->]<!--#endblock -->(<!--#include virtual=\"/empty\" stub=\"s\" -->)(<!--#include virtual=\"/echo.html?v=1\" stub=\"s\" -->)(<!--#include virtual=\"/missing.html\" stub=\"e\" -->)(<!--#include virtual=\"/p/status?code=404\" stub=\"s\" -->)",
        ),
        (
            "set.html",
            "<!--#include virtual=\"/echo.html?v=val\" set=\"got\" -->got=<!--#echo var=\"got\" encoding=\"none\" -->",
        ),
        ("rel.html", "<!--#include virtual=\"d/leaf.html\" -->"),
        ("d/leaf.html", "<!--#include file=\"leaf2.html\" -->"),
        ("d/leaf2.html", "LEAF"),
        ("loop.html", "<!--#include virtual=\"/loop.html\" -->"),
        ("big.html", "<<!--#include virtual=\"/p/big?bytes=300000\" -->>"),
        ("slow.html", "1<!--#include virtual=\"/p/delay?ms=300\" -->2<!--#include virtual=\"/p/chunked?n=3&size=2\" -->3"),
        ("cut.html", "head<!--#include virtual=\"/p/close-mid\" -->tail"),
        ("sleep.html", "<!--#include virtual=\"/p/delay?ms=2000\" -->"),
        ("plain.html", "body"),
        (
            "setbig.html",
            "<!--#include virtual=\"/p/big?bytes=70000\" set=\"x\" -->[<!--#echo var=\"x\" encoding=\"none\" default=\"none\" -->]after",
        ),
        (
            "setsized.html",
            "<!--#include virtual=\"/pbig/big?bytes=70000\" set=\"x\" -->[<!--#echo var=\"x\" encoding=\"none\" default=\"none\" -->]|<!--#include virtual=\"/psmall/big?bytes=100\" set=\"y\" -->[<!--#echo var=\"y\" encoding=\"none\" default=\"none\" -->]",
        ),
        (
            "bigre.html",
            "<!--#if expr=\"$arg_x = /((a{1000}){1000}){1000}/\" -->y<!--#else -->n<!--#endif -->after",
        ),
    ];
    for (name, text) in files {
        std::fs::write(root.join(name), text).expect("write");
    }
    let conf = format!(
        r#"
worker_processes 1;
error_log {{dir}}/logs/error.log info;
events {{}}
http {{
    access_log {{dir}}/logs/access.log;
    types {{ text/html html; text/plain txt; }}
    server {{
        listen 127.0.0.1:{{port}};
        server_name ssi;
        http2 on;
        root {root};
        ssi on;
        location / {{ }}
        location /quiet/ {{ alias {root}/; ssi_silent_errors on; }}
        location /lm/ {{ alias {root}/; ssi_last_modified on; }}
        location /gz/ {{ alias {root}/; gzip on; gzip_min_length 1; }}
        location = /empty {{ return 204; }}
        location /ret {{ return 200 'r<!--#echo var="arg_a" -->r<!--#include virtual="/plain.html" -->'; }}
        location /p/ {{ proxy_pass http://127.0.0.1:{bport}/; }}
        location /pbig/ {{ proxy_pass http://127.0.0.1:{bport}/; subrequest_output_buffer_size 100k; }}
        location /psmall/ {{ proxy_pass http://127.0.0.1:{bport}/; subrequest_output_buffer_size 42; }}
        location /self/ {{ proxy_pass http://127.0.0.1:{{port}}/local/; ssi_types text/html; }}
        location /local/ {{ alias {root}/; ssi off; }}
        location /add/ {{
            alias {root}/;
            ssi off;
            add_before_body /before;
            add_after_body /after;
        }}
        location /addp/ {{
            ssi off;
            add_before_body /p/id;
            add_after_body /after;
            proxy_pass http://127.0.0.1:{{port}}/local/;
        }}
        location = /before {{ return 200 "<"; }}
        location = /after {{ return 200 ">"; }}
    }}
}}
"#,
        root = root.display(),
        bport = b.port
    );
    let p = Proton::start(t.path(), &conf, 1);
    Site { t, p, b }
}

#[test]
fn commands_run_as_nginx_runs_them() {
    let s = site();
    let port = s.p.port;
    assert_eq!(body(port, "/echo.html?v=a%20b"), "Xa%20bX");
    // Includes with arguments, nested SSI, relative URIs (virtual and file).
    assert_eq!(body(port, "/inc.html"), "[XsubX]");
    assert_eq!(body(port, "/rel.html"), "LEAF");
    // echo's encodings (entity by default; the last one given stays), defaults.
    assert_eq!(
        body(port, "/enc.html"),
        "&lt;a b&gt;&amp;|%3Ca%20b%3E&|<a b>&|(none)|dflt"
    );
    // if / elif (a string, a regex with a capture) / else.
    assert_eq!(body(port, "/if.html?x=one"), "1.");
    assert_eq!(body(port, "/if.html?x=two"), "2$1=w.");
    assert_eq!(body(port, "/if.html?x=3"), "any.");
    assert_eq!(body(port, "/if.html"), "none.");
    // Errors: nginx's errmsg, a configured one, or nothing with ssi_silent_errors.
    assert_eq!(
        body(port, "/err.html"),
        "a[an error occurred while processing the directive]bE!cE!d"
    );
    assert_eq!(body(port, "/quiet/err.html"), "abcd");
    // A stub for a subrequest that wrote nothing or ended in an error page of the
    // server's own (its commands run), not for an upstream's error answer; include … set.
    assert_eq!(
        body(port, "/stub.html?x=arg"),
        "(STUB)(X1X)([arg])(status 404)"
    );
    assert_eq!(body(port, "/set.html"), "got=XvalX");
    // `return` text is SSI'd too (its type from the URI's extension, else default_type).
    assert_eq!(body(port, "/ret.html?a=A"), "rArbody");
    // Headers as nginx's SSI leaves them.
    let r = get(port, "/echo.html?v=1");
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("last-modified"), None);
    assert_eq!(r.header("etag"), None);
    let r = get(port, "/lm/echo.html?v=1");
    assert!(r.header("last-modified").is_some(), "{r:?}");
    assert!(
        r.header("etag").is_some_and(|e| e.starts_with("W/")),
        "{r:?}"
    );
    // HTTP/1.0: delimited by the close; HEAD: no body, no subrequest.
    let r = exchange(port, "GET /inc.html HTTP/1.0\r\nHost: ssi\r\n\r\n");
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body_text(), "[XsubX]");
    let r = exchange(
        port,
        "HEAD /inc.html HTTP/1.1\r\nHost: ssi\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((r.status, r.body.len()), (200, 0));
    // Subrequests are not logged (log_subrequest off); the main request is, once.
    let log = std::fs::read_to_string(s.t.path().join("logs/access.log")).unwrap_or_default();
    assert!(!log.contains("/echo.html?v=sub"), "{log}");
    assert!(log.contains("GET /inc.html HTTP/1.1"), "{log}");
}

#[test]
fn includes_of_proxied_bodies_and_proxied_pages() {
    let s = site();
    let port = s.p.port;
    // 300 000 bytes from the backend between two characters, exact.
    let r = get(port, "/big.html");
    assert_eq!(r.status, 200);
    let want: Vec<u8> = std::iter::once(b'<')
        .chain((0..300_000u32).map(|i| (i % 251) as u8))
        .chain(std::iter::once(b'>'))
        .collect();
    assert!(r.body == want, "{} bytes", r.body.len());
    // A slow one and a chunked one, in order.
    assert_eq!(body(port, "/slow.html"), "1delayed2aabbcc3");
    // A proxied page whose body is SSI'd.
    assert_eq!(body(port, "/self/inc.html"), "[XsubX]");
    // gzip after SSI: the whole page compressed.
    let r = exchange(
        port,
        "GET /gz/slow.html HTTP/1.1\r\nHost: ssi\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut plain = String::new();
    let ok = MultiGzDecoder::new(&r.body[..]).read_to_string(&mut plain);
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(plain, "1delayed2aabbcc3");
    // HTTP/2 (curl, prior knowledge).
    let out = Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-H", "Host: ssi"])
        .arg(format!("http://127.0.0.1:{port}/slow.html"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1delayed2aabbcc3");
}

#[test]
fn addition_wraps_static_and_proxied_bodies() {
    let s = site();
    let port = s.p.port;
    assert_eq!(body(port, "/add/plain.html"), "<body>");
    // Only text/html by default, only 200s.
    std::fs::write(s.t.path().join("www/plain.txt"), "text").expect("write");
    assert_eq!(body(port, "/add/plain.txt"), "text");
    assert_eq!(get(port, "/add/missing.html").status, 404);
    let r = get(port, "/add/missing.html");
    assert!(r.header("content-length").is_some(), "{r:?}");
    // Around a proxied body, with a proxied addition (the backend's name).
    let r = get(port, "/addp/plain.html");
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.body_text(), "ssibody>");
}

#[test]
fn hostile_pages_end_cleanly() {
    let s = site();
    let port = s.p.port;
    // An include of itself: refused at nginx's depth with errmsg, the page complete.
    let r = get(port, "/loop.html");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body_text(),
        "[an error occurred while processing the directive]"
    );
    // An included body cut short by its upstream cuts the page short: no last chunk, the
    // connection closed.
    let (raw, closed) = raw_exchange(
        port,
        b"GET /cut.html HTTP/1.1\r\nHost: ssi\r\n\r\n",
        Duration::from_secs(20),
    );
    assert!(closed, "the connection is closed");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("head"), "{text}");
    assert!(!text.ends_with("0\r\n\r\n"), "{text}");
    assert!(!text.contains("tail"), "{text}");
    // Clients that leave while a slow subrequest runs: the subrequests still reach the
    // backend and end, and the worker goes on serving.
    let before = s.b.stats();
    for _ in 0..5 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.write_all(b"GET /sleep.html HTTP/1.1\r\nHost: ssi\r\n\r\n")
            .expect("write");
        drop(c);
    }
    assert_eq!(body(port, "/inc.html"), "[XsubX]");
    let mut probes = 0;
    assert!(wait_until(Duration::from_secs(10), || {
        probes += 1;
        s.b.stats().1 >= before.1 + 5 + probes
    }));
    assert_eq!(body(port, "/slow.html"), "1delayed2aabbcc3");
    let errors = std::fs::read_to_string(s.t.path().join("logs/error.log")).unwrap_or_default();
    assert!(
        !errors.contains("[alert]") && !errors.contains("panic"),
        "{errors}"
    );
}

#[test]
fn limits_bound_what_a_page_keeps() {
    let s = site();
    let port = s.p.port;
    // `include … set` keeps at most 64 KiB of the subrequest's body: a 70,000-byte one
    // fails the include (logged), the variable stays empty, the page goes on.
    let r = get(port, "/setbig.html");
    assert_eq!(r.status, 200);
    let text = r.body_text();
    assert!(text.ends_with("]after"), "{}", &text[..text.len().min(300)]);
    assert!(
        text.len() < 1000,
        "the big body was not kept: {} bytes",
        text.len()
    );
    // subrequest_output_buffer_size of the subrequest's location sets how much is kept.
    let kept = get(port, "/setsized.html").body;
    assert_eq!(kept.len(), 1 + 70_000 + b"]|[]".len());
    assert!(kept.starts_with(b"[") && kept.ends_with(b"]|[]"));
    // More than 256 variables: the ones beyond are not kept (echo gives its default).
    let mut page = String::new();
    for i in 0..300 {
        page.push_str(&format!("<!--#set var=\"v{i}\" value=\"{i}\" -->"));
    }
    page.push_str(
        "<!--#echo var=\"v0\" -->,<!--#echo var=\"v255\" -->,<!--#echo var=\"v256\" default=\"gone\" -->,<!--#echo var=\"v299\" default=\"gone\" -->",
    );
    std::fs::write(s.t.path().join("www/vars.html"), page).expect("write");
    assert_eq!(body(port, "/vars.html"), "0,255,gone,gone");
    // A regex in an `if` whose program would pass 1 MiB is refused: the `if` fails with
    // errmsg and a log line. As in nginx, a failed `if` opens no condition, so both
    // branches are output and `else` and `endif`, out of context, fail too.
    let r = get(port, "/bigre.html?x=a");
    assert_eq!(r.status, 200);
    let e = "[an error occurred while processing the directive]";
    assert_eq!(r.body_text(), format!("{e}y{e}n{e}after"));
    let errors = std::fs::read_to_string(s.t.path().join("logs/error.log")).unwrap_or_default();
    assert!(errors.contains("too big subrequest response"), "{errors}");
    assert!(errors.contains("size limit"), "{errors}");
    assert!(!errors.contains("[alert]"), "{errors}");
}
