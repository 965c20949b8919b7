//! gzip, gzip_static and gunzip over real sockets: static files (in memory and read in
//! pieces, sendfile on and off), `return` text, error pages, proxied responses (with a
//! length, chunked, unbuffered), HTTP/1.0 (close framing), HEAD, ranges, `gzip_vary`,
//! `gzip_proxied`, `gzip_disable`, `gzip_min_length`, `gzip_types`, `$gzip_ratio`, and
//! HTTP/2 through curl's own decoder. Every compressed body is decoded with flate2 and
//! compared with the original bytes.

use flate2::read::MultiGzDecoder;
use proton_tests::{parse_response, raw_exchange, Proton, Response, TempDir};
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let r = MultiGzDecoder::new(data).read_to_end(&mut out);
    assert!(
        r.is_ok(),
        "not a valid gzip stream ({r:?}): {} bytes",
        data.len()
    );
    out
}

/// `from the br file` compressed with brotli (for `brotli_static`).
fn unbrotli_input() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 20);
        let _ = w.write_all(b"from the br file\n");
    }
    out
}

fn unbrotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let r = brotli::Decompressor::new(data, 4096).read_to_end(&mut out);
    assert!(
        r.is_ok(),
        "not a valid brotli stream ({r:?}): {} bytes",
        data.len()
    );
    out
}

fn unzstd(data: &[u8]) -> Vec<u8> {
    let r = zstd::stream::decode_all(data);
    assert!(
        r.is_ok(),
        "not a valid zstd stream ({r:?}): {} bytes",
        data.len()
    );
    r.unwrap_or_default()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = z.write_all(data);
    z.finish().unwrap_or_default()
}

/// Text that compresses (lines with a counter).
fn text(n: usize) -> String {
    let mut s = String::with_capacity(n + 32);
    let mut i = 0;
    while s.len() < n {
        s.push_str(&format!("line {i} of a page that compresses well\n"));
        i += 1;
    }
    s.truncate(n);
    s
}

fn exchange(port: u16, req: &str) -> (Response, Vec<u8>) {
    let (raw, _) = raw_exchange(port, req.as_bytes(), Duration::from_secs(20));
    let r = parse_response(&raw)
        .unwrap_or_else(|e| panic!("{req:?}: {e}: {:?}", String::from_utf8_lossy(&raw)));
    (r, raw)
}

fn get_gz(port: u16, path: &str) -> Response {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: gz\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n"),
    )
    .0
}

fn get_plain(port: u16, path: &str) -> Response {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: gz\r\nConnection: close\r\n\r\n"),
    )
    .0
}

/// A compressed answer as nginx sends one: gzip, chunked, no length, no ranges.
fn assert_gzipped(r: &Response, what: &str) {
    assert_eq!(r.header("content-encoding"), Some("gzip"), "{what}: {r:?}");
    assert_gzipped_framing(r, what);
}

struct Site {
    _t: TempDir,
    p: Proton,
    small: String,
    large: String,
}

fn site() -> Site {
    let t = TempDir::new("gzip");
    let small = text(3000);
    let large = text(700_000);
    for dir in ["www", "www/st", "www/nosf"] {
        std::fs::create_dir_all(t.path().join(dir)).expect("mkdir");
    }
    let root = t.path().join("www");
    std::fs::write(root.join("small.html"), &small).expect("write");
    std::fs::write(root.join("large.html"), &large).expect("write");
    std::fs::write(root.join("tiny.html"), "tiny").expect("write");
    std::fs::write(root.join("data.bin"), &small).expect("write");
    std::fs::write(root.join("nosf/large.html"), &large).expect("write");
    // gzip_static: the .gz differs from the file, to tell which one was sent.
    std::fs::write(root.join("st/page.html"), "plain page\n").expect("write");
    std::fs::write(root.join("st/page.html.gz"), gzip(b"from the gz file\n")).expect("write");
    std::fs::write(root.join("st/only.txt.gz"), gzip(large.as_bytes())).expect("write");
    std::fs::write(root.join("st/page.html.br"), unbrotli_input()).expect("write");
    std::fs::write(root.join("st/bomb.txt.gz"), gzip(&vec![b'a'; BOMB])).expect("write");
    std::fs::write(root.join("st/both.html"), "plain both\n").expect("write");
    std::fs::write(root.join("st/both.html.gz"), gzip(b"gz both\n")).expect("write");
    std::fs::write(
        root.join("st/both.html.zst"),
        zstd::bulk::compress(b"zst both\n", 3).unwrap_or_default(),
    )
    .expect("write");
    let conf = format!(
        r#"
worker_processes 1;
error_log {{dir}}/logs/error.log info;
events {{}}
http {{
    log_format ratio "$uri $gzip_ratio $sent_http_content_encoding";
    access_log {{dir}}/logs/ratio.log ratio;
    log_format ratios "$uri $http_accept_encoding|$gzip_ratio|$brotli_ratio|$zstd_ratio";
    access_log {{dir}}/logs/ratios.log ratios;
    sendfile on;
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:{{port}};
        server_name gz;
        root {root};
        http2 on;
        gzip on;
        gzip_vary on;
        location / {{ }}
        location /nosf/ {{ sendfile off; }}
        location /v10/ {{ alias {root}/; gzip_http_version 1.0; }}
        location /text {{ default_type text/plain; gzip_types text/plain; return 200 "{small}"; }}
        location /short {{ return 200 "short"; }}
        location /any/ {{ alias {root}/; gzip_types *; }}
        location /min/ {{ alias {root}/; gzip_min_length 5000; }}
        location /level9/ {{ alias {root}/; gzip_comp_level 9; }}
        location /off/ {{ alias {root}/; gzip off; }}
        location /proxied/ {{ alias {root}/; gzip_proxied any; }}
        location /expired/ {{ alias {root}/; gzip_proxied expired; expires -1; }}
        location /disable/ {{ alias {root}/; gzip_disable "curl/7\.\d+" msie6; }}
        location /st/ {{ gzip_static on; }}
        location /sta/ {{ alias {root}/st/; gzip_static always; gunzip on; }}
        location /p/ {{ proxy_pass http://127.0.0.1:{{port}}/local/; }}
        location /pu/ {{ proxy_pass http://127.0.0.1:{{port}}/local/; proxy_buffering off; }}
        location /p10/ {{ gzip_http_version 1.0; proxy_pass http://127.0.0.1:{{port}}/local/; }}
        location /local/ {{ alias {root}/; gzip off; }}
        location /gun/ {{ gunzip on; proxy_pass http://127.0.0.1:{{port}}/gzs/; proxy_set_header Accept-Encoding gzip; }}
        location /gzs/ {{ alias {root}/st/; gzip off; gzip_static always; }}
        location /all/ {{ alias {root}/; brotli on; zstd on; brotli_comp_level 5; zstd_comp_level 3; }}
        location /bronly/ {{ alias {root}/; gzip off; brotli on; brotli_types text/plain; }}
        location /pall/ {{ brotli on; zstd on; proxy_pass http://127.0.0.1:{{port}}/local/; }}
        location /pre/ {{ alias {root}/st/; gzip_static on; brotli_static on; zstd_static on; }}
    }}
}}
"#,
        root = root.display()
    );
    let p = Proton::start(t.path(), &conf, 1);
    Site {
        _t: t,
        p,
        small,
        large,
    }
}

#[test]
fn static_files_in_memory_and_in_pieces_are_gzipped_as_nginx() {
    let s = site();
    let port = s.p.port;
    for (path, body) in [
        ("/small.html", &s.small),
        ("/large.html", &s.large),
        ("/nosf/large.html", &s.large),
        ("/level9/large.html", &s.large),
    ] {
        let r = get_gz(port, path);
        assert_eq!(r.status, 200, "{path}");
        assert_gzipped(&r, path);
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{path}");
        assert!(
            r.header("etag").is_some_and(|e| e.starts_with("W/\"")),
            "{path}: a weak ETag: {r:?}"
        );
        assert_eq!(gunzip(&r.body), body.as_bytes(), "{path}");
        assert!(
            r.body.len() < body.len() / 3,
            "{path}: {} bytes",
            r.body.len()
        );
    }
    // Without Accept-Encoding: the file as it is, with its length (and the Vary).
    let r = get_plain(port, "/large.html");
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("content-length"), Some("700000"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert_eq!(r.body, s.large.as_bytes());
    // `gzip;q=0` refuses it.
    let (r, _) = exchange(
        port,
        "GET /small.html HTTP/1.1\r\nHost: gz\r\nAccept-Encoding: gzip;q=0, br\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.header("content-encoding"), None);
    // Level 9 compresses at least as well as level 1.
    let l1 = get_gz(port, "/large.html").body.len();
    let l9 = get_gz(port, "/level9/large.html").body.len();
    assert!(l9 <= l1, "level 9 {l9} bytes, level 1 {l1}");
}

#[test]
fn what_is_not_compressed() {
    let s = site();
    let port = s.p.port;
    // Type not in gzip_types, too short, gzip off, a Via without gzip_proxied, a disabled
    // browser.
    for (path, extra) in [
        ("/data.bin", ""),
        ("/tiny.html", ""),
        ("/min/small.html", ""),
        ("/off/small.html", ""),
        ("/small.html", "Via: 1.1 cache\r\n"),
        ("/disable/small.html", "User-Agent: curl/7.88.1\r\n"),
        (
            "/disable/small.html",
            "User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)\r\n",
        ),
    ] {
        let (r, _) = exchange(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: gz\r\nAccept-Encoding: gzip\r\n{extra}Connection: close\r\n\r\n"),
        );
        assert_eq!(r.status, 200, "{path} {extra}");
        assert_eq!(r.header("content-encoding"), None, "{path} {extra}: {r:?}");
        assert!(r.header("content-length").is_some(), "{path} {extra}");
    }
    // gzip_types * and a large enough length; gzip_proxied any with Via; an expired
    // response with `gzip_proxied expired`; a browser gzip_disable does not name.
    for (path, extra) in [
        ("/any/data.bin", ""),
        ("/min/large.html", ""),
        ("/proxied/small.html", "Via: 1.1 cache\r\n"),
        ("/expired/small.html", "Via: 1.1 cache\r\n"),
        ("/disable/small.html", "User-Agent: Mozilla/5.0\r\n"),
    ] {
        let (r, _) = exchange(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: gz\r\nAccept-Encoding: gzip\r\n{extra}Connection: close\r\n\r\n"),
        );
        assert_gzipped(&r, path);
        assert!(!gunzip(&r.body).is_empty(), "{path}");
    }
}

#[test]
fn http10_head_ranges_text_and_error_pages() {
    let s = site();
    let port = s.p.port;
    // HTTP/1.0 is not compressed by default (gzip_http_version 1.1)...
    let (r, _) = exchange(
        port,
        "GET /small.html HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n",
    );
    assert_eq!(r.header("content-encoding"), None);
    // ... and with 1.0 it is, delimited by the close (no chunks for HTTP/1.0).
    for path in ["/v10/small.html", "/v10/large.html"] {
        let (r, raw) = exchange(
            port,
            &format!(
                "GET {path} HTTP/1.0\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n"
            ),
        );
        assert_eq!(r.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(r.header("transfer-encoding"), None, "{path}");
        assert_eq!(r.header("content-length"), None, "{path}");
        assert_eq!(r.header("connection"), Some("close"), "{path}: {r:?}");
        let body = &raw[raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4..];
        let want = if path.contains("small") {
            &s.small
        } else {
            &s.large
        };
        assert_eq!(gunzip(body), want.as_bytes(), "{path}");
    }
    // HEAD: the gzip head (as nginx), no body.
    let (r, raw) = exchange(
        port,
        "HEAD /small.html HTTP/1.1\r\nHost: gz\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("content-length"), None);
    assert!(raw.ends_with(b"\r\n\r\n"), "no body after a HEAD's head");
    // A range of a compressed response: the whole body, 200 (nginx's gzip turns ranges off).
    let (r, _) = exchange(
        port,
        "GET /large.html HTTP/1.1\r\nHost: gz\r\nAccept-Encoding: gzip\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(gunzip(&r.body), s.large.as_bytes());
    // Without gzip the range is served.
    let (r, _) = exchange(
        port,
        "GET /large.html HTTP/1.1\r\nHost: gz\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &s.large.as_bytes()[..10]);
    // `return` text (gzip_types text/plain) and a 404 page (text/html).
    let r = get_gz(port, "/text");
    assert_gzipped(&r, "/text");
    assert_eq!(gunzip(&r.body), s.small.as_bytes());
    let r = get_gz(port, "/missing.html");
    assert_eq!(r.status, 404);
    assert_gzipped(&r, "404");
    assert!(String::from_utf8_lossy(&gunzip(&r.body)).contains("404 Not Found"));
    // A short text under gzip_min_length's default of 20 bytes stays as it is.
    let r = get_gz(port, "/short");
    assert_eq!(r.header("content-encoding"), None);
    // Two compressed answers on one kept-alive connection, then a plain one.
    let (raw, _) = raw_exchange(
        port,
        b"GET /small.html HTTP/1.1\r\nHost: gz\r\nAccept-Encoding: gzip\r\n\r\nGET /large.html HTTP/1.1\r\nHost: gz\r\nAccept-Encoding: gzip\r\n\r\nGET /tiny.html HTTP/1.1\r\nHost: gz\r\nConnection: close\r\n\r\n",
        Duration::from_secs(20),
    );
    let mut rest = &raw[..];
    for want in [s.small.as_bytes(), s.large.as_bytes()] {
        let end = chunked_end(rest);
        let r = parse_response(&rest[..end]).expect("a chunked response");
        assert_eq!(gunzip(&r.body), want);
        rest = &rest[end..];
    }
    let r = parse_response(rest).expect("the last response");
    assert_eq!(r.body, b"tiny");
}

/// Where a response with a chunked body ends in `raw`.
fn chunked_end(raw: &[u8]) -> usize {
    let find = |hay: &[u8], from: usize| {
        hay[from..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| from + i)
    };
    let mut at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
    loop {
        let Some(eol) = find(raw, at) else {
            return raw.len();
        };
        let size = usize::from_str_radix(&String::from_utf8_lossy(&raw[at..eol]), 16).unwrap_or(0);
        at = eol + 2;
        if size == 0 {
            return (at + 2).min(raw.len());
        }
        at += size + 2;
    }
}

#[test]
fn proxied_responses_are_gzipped_and_gunzipped() {
    let s = site();
    let port = s.p.port;
    for (path, want) in [
        ("/p/small.html", &s.small),
        ("/p/large.html", &s.large),
        ("/pu/large.html", &s.large),
    ] {
        let r = get_gz(port, path);
        assert_eq!(r.status, 200, "{path}");
        assert_gzipped(&r, path);
        assert_eq!(gunzip(&r.body), want.as_bytes(), "{path}");
    }
    // HTTP/1.0 through the proxy: the close delimits it.
    let (r, raw) = exchange(
        port,
        "GET /p10/large.html HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n",
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("content-length"), None);
    let body = &raw[raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4..];
    assert_eq!(gunzip(body), s.large.as_bytes());
    // gunzip: the upstream sends the .gz (gzip_static always); a client without gzip gets
    // it decoded, one with gzip gets it as it is.
    let r = get_plain(port, "/gun/only.txt");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), None, "{r:?}");
    assert_eq!(r.body, s.large.as_bytes());
    let r = get_gz(port, "/gun/only.txt");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&r.body), s.large.as_bytes());
}

/// What the gzip bomb of [`site`] decodes to: 32 MiB of one byte (its .gz is ~32 KiB).
const BOMB: usize = 32 << 20;

/// gunzip of a gzip bomb, from a file and from an upstream: the whole body comes out, while
/// the worker decodes a bounded piece at a time and sends it before the next (as nginx's
/// gunzip_buffers bound it), so its memory stays far below what the bomb decodes to; each
/// input read at once (32 KiB of the file, or of the upstream's body) would otherwise
/// become 32 MiB in memory.
#[test]
fn gunzip_of_a_bomb_goes_out_in_bounded_steps() {
    let s = site();
    let port = s.p.port;
    for path in ["/sta/bomb.txt", "/gun/bomb.txt"] {
        let r = get_plain(port, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-encoding"), None, "{path}");
        assert_eq!(r.body.len(), BOMB, "{path}");
        assert!(r.body.iter().all(|&b| b == b'a'), "{path}");
    }
    let w = s.p.the_worker();
    let hwm: u64 = std::fs::read_to_string(format!("/proc/{w}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM for worker {w}\n{}", s.p.logs()));
    assert!(
        hwm < 24 * 1024,
        "the worker's peak memory {hwm} KiB: the bomb was decoded whole"
    );
}

#[test]
fn gzip_static_and_gunzip_of_files() {
    let s = site();
    let port = s.p.port;
    // on: the .gz for a client that takes gzip, the file for one that does not (with Vary).
    let r = get_gz(port, "/st/page.html");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(
        r.header("content-length").is_some(),
        "the .gz is sent with its length"
    );
    assert_eq!(gunzip(&r.body), b"from the gz file\n");
    let r = get_plain(port, "/st/page.html");
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, b"plain page\n");
    // always + gunzip: the .gz for everyone, decoded for a client without gzip.
    let r = get_gz(port, "/sta/only.txt");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&r.body), s.large.as_bytes());
    let r = get_plain(port, "/sta/only.txt");
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.body, s.large.as_bytes());
    // $gzip_ratio: written for compressed answers, empty ("-") otherwise.
    let _ = get_gz(port, "/large.html");
    let log = s._t.path().join("logs/ratio.log");
    let ok = proton_tests::wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("/large.html "))
    });
    assert!(ok, "the access log line");
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    let ratio: f64 = lines
        .lines()
        .filter(|l| l.starts_with("/large.html "))
        .find_map(|l| l.split(' ').nth(1)?.parse().ok())
        .unwrap_or(0.0);
    assert!(ratio > 3.0, "$gzip_ratio of a compressible page: {lines}");
    // `$sent_http_content_encoding` of a file compressed in pieces (its head left the
    // write buffer long before the log line) and of a precompressed one.
    assert!(
        lines
            .lines()
            .any(|l| l.starts_with("/large.html ") && l.ends_with(" gzip")),
        "{lines}"
    );
    assert!(
        lines.lines().any(|l| l == "/st/page.html - gzip"),
        "{lines}"
    );
}

#[test]
fn http2_clients_get_gzip_too() {
    let s = site();
    let port = s.p.port;
    // curl decodes (`--compressed`), over HTTP/1.1 and over h2c, for a file read in
    // pieces, one in memory and a proxied one.
    for (path, want, coding) in [
        ("/large.html", &s.large, "gzip"),
        ("/small.html", &s.small, "gzip"),
        ("/p/large.html", &s.large, "gzip"),
        // curl offers `deflate, gzip, br, zstd`: brotli is the server's first choice.
        ("/all/large.html", &s.large, "br"),
        ("/pall/small.html", &s.small, "br"),
    ] {
        for h2 in [false, true] {
            let out = Command::new("curl")
                .args(["-s", "--compressed", "-D", "-", "-H", "Host: gz"])
                .args(if h2 {
                    &["--http2-prior-knowledge"][..]
                } else {
                    &[]
                })
                .arg(format!("http://127.0.0.1:{port}{path}"))
                .output()
                .expect("curl");
            let text = String::from_utf8_lossy(&out.stdout);
            let cut = text.find("\r\n\r\n").map_or(0, |i| i + 4);
            let head = text[..cut].to_ascii_lowercase();
            assert!(
                head.contains(&format!("content-encoding: {coding}")),
                "{path} h2={h2}: {head}"
            );
            assert!(
                head.starts_with(if h2 { "http/2 200" } else { "http/1.1 200" }),
                "{head}"
            );
            assert_eq!(&text[cut..], want.as_str(), "{path} h2={h2}");
        }
    }
}

fn get_with(port: u16, path: &str, ae: &str) -> Response {
    exchange(
        port,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: gz\r\nAccept-Encoding: {ae}\r\nConnection: close\r\n\r\n"
        ),
    )
    .0
}

/// Decodes a body by its `Content-Encoding`.
fn decode(r: &Response) -> Vec<u8> {
    match r.header("content-encoding") {
        Some("gzip") => gunzip(&r.body),
        Some("br") => unbrotli(&r.body),
        Some("zstd") => unzstd(&r.body),
        None => r.body.clone(),
        Some(other) => panic!("unexpected coding {other}"),
    }
}

#[test]
fn brotli_and_zstd_as_the_client_prefers() {
    let s = site();
    let port = s.p.port;
    // (Accept-Encoding, the coding expected) for a location with all three on.
    for (ae, want) in [
        ("br", Some("br")),
        ("zstd", Some("zstd")),
        ("gzip", Some("gzip")),
        // Equal q-values: the server's order (br, zstd, gzip).
        ("gzip, deflate, br, zstd", Some("br")),
        ("gzip, zstd", Some("zstd")),
        // The client's q-values first.
        ("br;q=0.5, gzip", Some("gzip")),
        ("br;q=0.2, zstd;q=0.9, gzip;q=0.5", Some("zstd")),
        ("br;q=0, zstd;q=0, gzip;q=0", None),
        ("identity", None),
    ] {
        for (path, body) in [
            ("/all/large.html", &s.large),
            ("/all/small.html", &s.small),
            ("/pall/large.html", &s.large),
        ] {
            let r = get_with(port, path, ae);
            assert_eq!(r.status, 200, "{path} {ae}");
            assert_eq!(r.header("content-encoding"), want, "{path} {ae}: {r:?}");
            if want.is_some() {
                assert_gzipped_framing(&r, path);
            }
            assert_eq!(decode(&r), body.as_bytes(), "{path} {ae}");
        }
    }
    // brotli's own types: text/plain only there (and text/html, always).
    let r = get_with(port, "/bronly/small.html", "br");
    assert_eq!(r.header("content-encoding"), Some("br"));
    // Precompressed files: the client's choice among those that exist.
    for (ae, want, body) in [
        ("br, gzip", Some("br"), &b"from the br file\n"[..]),
        ("gzip", Some("gzip"), b"from the gz file\n"),
        ("zstd", None, b"plain page\n"),
    ] {
        let r = get_with(port, "/pre/page.html", ae);
        assert_eq!(r.header("content-encoding"), want, "{ae}: {r:?}");
        assert!(
            r.header("content-length").is_some(),
            "{ae}: sent with its length"
        );
        assert_eq!(decode(&r), body, "{ae}");
    }
    // The preferred file missing, the next one the client takes.
    let r = get_with(port, "/pre/both.html", "br, zstd;q=0.8, gzip;q=0.5");
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    assert_eq!(decode(&r), b"zst both\n");
    // $gzip_ratio, $brotli_ratio, $zstd_ratio: each only for its own coding.
    let log = s._t.path().join("logs/ratios.log");
    let ok = proton_tests::wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("/bronly/small.html"))
    });
    assert!(ok, "the access log lines");
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    for (ae, slot) in [("br", 2), ("zstd", 3), ("gzip", 1)] {
        let line = lines
            .lines()
            .find(|l| l.starts_with(&format!("/all/large.html {ae}|")))
            .unwrap_or_default();
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 4, "{line:?}\n{lines}");
        for (i, p) in parts.iter().enumerate().skip(1) {
            if i == slot {
                let ratio: f64 = p.parse().unwrap_or(0.0);
                assert!(ratio > 3.0, "{ae}: {line}");
            } else {
                assert_eq!(*p, "-", "{ae}: {line}");
            }
        }
    }
}

/// A compressed answer's framing: chunked, no length, no ranges.
fn assert_gzipped_framing(r: &Response, what: &str) {
    assert_eq!(r.header("content-length"), None, "{what}");
    assert_eq!(r.header("accept-ranges"), None, "{what}");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{what}");
}

/// Python's `requests` (Debian's, with its `brotli` module: CI installs both) decodes what
/// Proton compresses: gzip and brotli, static and proxied. (Debian's urllib3 1.26 has no
/// zstd decoder: zstd is checked with the zstd crate above and with curl.)
#[test]
fn python_requests_decodes_gzip_and_brotli() {
    let python = "/usr/bin/python3";
    let ready = Command::new(python)
        .args(["-c", "import requests, brotli"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs python3-requests and python3-brotli"
        );
        eprintln!("skipped: no Python requests with brotli here");
        return;
    }
    let s = site();
    let port = s.p.port;
    let script = r#"
import sys, requests
port, path, coding = sys.argv[1], sys.argv[2], sys.argv[3]
r = requests.get(f"http://127.0.0.1:{port}{path}", headers={"Host": "gz", "Accept-Encoding": coding}, timeout=20)
sys.stdout.write(r.headers.get("Content-Encoding", "") + "\n")
sys.stdout.write(r.text)
"#;
    for (path, want) in [
        ("/all/large.html", &s.large),
        ("/pall/large.html", &s.large),
        ("/all/small.html", &s.small),
    ] {
        for coding in ["gzip", "br"] {
            let out = Command::new(python)
                .args(["-c", script, &port.to_string(), path, coding])
                .output()
                .expect("python3");
            let text = String::from_utf8_lossy(&out.stdout);
            let (enc, body) = text.split_once('\n').unwrap_or(("", ""));
            assert_eq!(
                enc,
                coding,
                "{path} {coding}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                body == want.as_str(),
                "{path} {coding}: {} bytes",
                body.len()
            );
        }
    }
}
