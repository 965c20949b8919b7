//! sub_filter over real sockets: static files (in memory and read in pieces), `return`
//! text with variables in both strings, proxied responses (with a length, chunked from the
//! test backend, unbuffered), with gzip after it, headers as nginx leaves them
//! (`Content-Length`, `Last-Modified`, `ETag`), and HTTP/2.

use flate2::read::MultiGzDecoder;
use proton_tests::{Backend, Proton, Response, TempDir};
use std::io::Read;
use std::process::Command;

fn exchange(port: u16, req: &str) -> Response {
    proton_tests::exchange_one(port, req)
}

fn get(port: u16, path: &str, extra: &str) -> Response {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: sub\r\n{extra}Connection: close\r\n\r\n"),
    )
}

fn text(r: &Response) -> String {
    r.body_text()
}

struct Site {
    _t: TempDir,
    p: Proton,
    _b: Backend,
    page: String,
}

fn site() -> Site {
    let t = TempDir::new("sub-filter");
    let b = Backend::start("sub");
    let root = t.path().join("www");
    std::fs::create_dir_all(&root).expect("mkdir");
    // A page larger than what goes out with its head, so it is read in pieces, with a
    // match string across every 32 KiB boundary somewhere.
    let mut page = String::new();
    let mut i = 0;
    while page.len() < 200_000 {
        page.push_str(&format!("<p>item {i}: the OLD-NAME of the thing</p>\n"));
        i += 1;
    }
    std::fs::write(root.join("page.html"), &page).expect("write");
    std::fs::write(root.join("small.html"), "hello OLD-NAME, old-name!").expect("write");
    std::fs::write(root.join("plain.txt"), "OLD-NAME in text").expect("write");
    let conf = format!(
        r#"
worker_processes 1;
error_log {{dir}}/logs/error.log info;
events {{}}
http {{
    access_log off;
    types {{ text/html html; text/plain txt; }}
    server {{
        listen 127.0.0.1:{{port}};
        server_name sub;
        http2 on;
        root {root};
        sub_filter OLD-NAME new-name;
        sub_filter_once off;
        location / {{ }}
        location /once/ {{ alias {root}/; sub_filter_once on; }}
        location /types/ {{ alias {root}/; sub_filter_types text/plain; }}
        location /lm/ {{ alias {root}/; sub_filter_last_modified on; }}
        location /gz/ {{ alias {root}/; gzip on; }}
        location /var {{
            default_type text/html;
            sub_filter $arg_from "[$arg_to]";
            return 200 "a b c $arg_body";
        }}
        location /p/ {{ proxy_pass http://127.0.0.1:{{port}}/local/; }}
        location /pu/ {{ proxy_pass http://127.0.0.1:{{port}}/local/; proxy_buffering off; }}
        location /local/ {{ alias {root}/; sub_filter_types text/nothing; }}
        location /chunked {{
            sub_filter_types text/plain;
            sub_filter abbbc X;
            proxy_pass http://127.0.0.1:{bport};
        }}
    }}
}}
"#,
        root = root.display(),
        bport = b.port
    );
    let p = Proton::start(t.path(), &conf, 1);
    Site {
        _t: t,
        p,
        _b: b,
        page,
    }
}

#[test]
fn static_files_and_text_are_substituted() {
    let s = site();
    let port = s.p.port;
    let want = s.page.replace("OLD-NAME", "new-name");
    let r = get(port, "/page.html", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        r.header("last-modified"),
        None,
        "no Last-Modified by default"
    );
    assert_eq!(r.header("etag"), None, "no ETag by default");
    assert_eq!(text(&r), want);
    // Case-insensitive, every occurrence; with once, only the first.
    assert_eq!(
        text(&get(port, "/small.html", "")),
        "hello new-name, new-name!"
    );
    assert_eq!(
        text(&get(port, "/once/small.html", "")),
        "hello new-name, old-name!"
    );
    // A type not in sub_filter_types is left alone (with its length); one that is listed
    // is changed.
    let r = get(port, "/plain.txt", "");
    assert_eq!(r.header("content-length"), Some("16"));
    assert_eq!(text(&r), "OLD-NAME in text");
    assert_eq!(text(&get(port, "/types/plain.txt", "")), "new-name in text");
    // sub_filter_last_modified on: Last-Modified stays and the ETag is weak.
    let r = get(port, "/lm/small.html", "");
    assert!(r.header("last-modified").is_some(), "{r:?}");
    assert!(
        r.header("etag").is_some_and(|e| e.starts_with("W/\"")),
        "{r:?}"
    );
    // Variables in both strings.
    let r = get(port, "/var?from=B&to=x%20y&body=abc", "");
    assert_eq!(text(&r), "a [x%20y] c a[x%20y]c");
    // HTTP/1.0: delimited by the close.
    let r = exchange(port, "GET /small.html HTTP/1.0\r\n\r\n");
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(text(&r), "hello new-name, new-name!");
    // Then gzip: the substituted text compressed.
    let r = get(port, "/gz/page.html", "Accept-Encoding: gzip\r\n");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut plain = String::new();
    let ok = MultiGzDecoder::new(&r.body[..]).read_to_string(&mut plain);
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(plain, want);
}

#[test]
fn proxied_bodies_are_substituted_as_they_come() {
    let s = site();
    let port = s.p.port;
    let want = s.page.replace("OLD-NAME", "new-name");
    for path in ["/p/page.html", "/pu/page.html"] {
        let r = get(port, path, "");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-length"), None, "{path}");
        assert_eq!(text(&r), want, "{path}");
    }
    // Chunks of the test backend: 5 chunks of 3 bytes, chunk k filled with one letter;
    // `abbbc` spans three of them.
    let r = get(port, "/chunked?n=5&size=3", "");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(text(&r), "aaXccdddeee");
    // HTTP/2 (curl, prior knowledge): the same bytes.
    let out = Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-H", "Host: sub"])
        .arg(format!("http://127.0.0.1:{port}/page.html"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}
