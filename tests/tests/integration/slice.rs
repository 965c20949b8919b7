//! The slice module over real sockets: a proxied file fetched in ranges (Proton serving
//! the file as its own upstream, with ranges), the client's own range across slices,
//! with sub_filter on every part, and parts that do not fit (the response cut short).

use proton_tests::{raw_exchange, Proton, Response, TempDir};
use std::time::Duration;

fn exchange(port: u16, req: &str) -> (Vec<u8>, bool) {
    raw_exchange(port, req.as_bytes(), Duration::from_secs(20))
}

fn get(port: u16, path: &str, extra: &str) -> Response {
    let req = format!("GET {path} HTTP/1.1\r\nHost: s\r\n{extra}Connection: close\r\n\r\n");
    proton_tests::exchange_one(port, &req)
}

fn site() -> (TempDir, Proton) {
    let t = TempDir::new("slice");
    let root = t.path().join("www");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("t"), "0123456789abcdefghij").expect("write");
    let conf = format!(
        r#"
worker_processes 1;
error_log {{dir}}/logs/error.log info;
events {{}}
http {{
    access_log {{dir}}/logs/access.log;
    server {{
        listen 127.0.0.1:{{port}};
        server_name s;
        location /s/ {{
            slice 3;
            proxy_pass http://127.0.0.1:{{port}}/files/;
            proxy_set_header Range $slice_range;
        }}
        location /sf/ {{
            slice 3;
            sub_filter 5 X;
            sub_filter_types *;
            proxy_pass http://127.0.0.1:{{port}}/files/;
            proxy_set_header Range $slice_range;
        }}
        location /bad/ {{
            slice 2;
            proxy_pass http://127.0.0.1:{{port}}/fake/;
            proxy_set_header Range $slice_range;
        }}
        location /c/ {{
            slice 3;
            proxy_pass http://127.0.0.1:{{port}}/files/;
            proxy_cache one;
            proxy_cache_key $uri$is_args$args$slice_range;
            proxy_cache_valid 200 206 1h;
            proxy_set_header Range $slice_range;
        }}
        location /files/ {{ alias {root}/; }}
        location /fake/status {{
            add_header Content-Range "bytes 0-1/100";
            if ($http_range = "bytes=2-3") {{ return 200 "xx"; }}
            return 206 fo;
        }}
        location /fake/etag {{
            add_header Content-Range "bytes $range/100";
            add_header ETag $http_range;
            return 206 fo;
        }}
        location /fake/range {{
            add_header Content-Range "bytes 1-2/100";
            return 206 fo;
        }}
        location /fake/plain {{ return 200 "whole"; }}
    }}
    map $http_range $range {{ ~bytes=(.+) $1; }}
    proxy_cache_path {{dir}}/cache keys_zone=one:1m;
}}
"#,
        root = root.display()
    );
    let p = Proton::start(t.path(), &conf, 1);
    (t, p)
}

#[test]
fn a_file_comes_whole_or_in_the_client_s_range_across_slices() {
    let (t, p) = site();
    let port = p.port;
    let r = get(port, "/s/t", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("20"));
    assert_eq!(r.header("content-range"), None);
    assert_eq!(r.body_text(), "0123456789abcdefghij");
    for (range, status, content_range, body) in [
        ("bytes=4-12", 206, Some("bytes 4-12/20"), "456789abc"),
        ("bytes=0-0", 206, Some("bytes 0-0/20"), "0"),
        ("bytes=18-", 206, Some("bytes 18-19/20"), "ij"),
        ("bytes=-3", 206, Some("bytes 17-19/20"), "hij"),
        // Several ranges: the whole (one range at most, as nginx's slice).
        ("bytes=2-3,5-6", 200, None, "0123456789abcdefghij"),
    ] {
        let r = get(port, "/s/t", &format!("Range: {range}\r\n"));
        assert_eq!(r.status, status, "{range}");
        assert_eq!(r.header("content-range"), content_range, "{range}");
        assert_eq!(r.body_text(), body, "{range}");
    }
    assert_eq!(
        get(port, "/s/t", "Range: bytes=30-\r\n").status,
        416,
        "beyond the end"
    );
    // Each part asked for its own range of the upstream (seven for the whole).
    let log = std::fs::read_to_string(t.path().join("logs/access.log")).unwrap_or_default();
    assert!(log.matches("GET /files/t").count() >= 7, "{log}");
    // sub_filter on each part (as nginx: a match across two parts is not seen).
    let r = get(port, "/sf/t", "");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body_text(), "01234X6789abcdefghij");
    let r = get(port, "/sf/t", "Range: bytes=2-4\r\n");
    assert_eq!((r.status, r.body_text().as_str()), (206, "234"));
    // An upstream that ignores the range: its answer goes on as it is.
    let r = get(port, "/bad/plain", "");
    assert_eq!((r.status, r.body_text().as_str()), (200, "whole"));
}

#[test]
fn parts_that_do_not_fit_cut_the_response_short() {
    let (t, p) = site();
    let port = p.port;
    // The first part is fine; the second is a 200 (status), another ETag (etag): what
    // was sent stays, the connection closes before the length the head announced.
    for path in ["/bad/status", "/bad/etag"] {
        let (raw, closed) = exchange(port, &format!("GET {path} HTTP/1.1\r\nHost: s\r\n\r\n"));
        assert!(closed, "{path}");
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Content-Length: 100"), "{path}: {text}");
        assert!(text.ends_with("\r\n\r\nfo"), "{path}: {text}");
    }
    // A first part that is not the range asked for: nothing is sent.
    let (raw, closed) = exchange(port, "GET /bad/range HTTP/1.1\r\nHost: s\r\n\r\n");
    assert!(
        closed && raw.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    let errors = std::fs::read_to_string(t.path().join("logs/error.log")).unwrap_or_default();
    assert!(
        errors.contains("unexpected status code 200 in slice response"),
        "{errors}"
    );
    assert!(
        errors.contains("etag mismatch in slice response"),
        "{errors}"
    );
    assert!(
        errors.contains("unexpected range in slice response: 1-3, expected: 0-2"),
        "{errors}"
    );
}

#[test]
fn a_cached_sliced_answer_honours_the_client_s_conditions() {
    let (_t, p) = site();
    let port = p.port;
    let whole = get(port, "/c/t", "");
    assert_eq!(
        (whole.status, whole.body_text().as_str()),
        (200, "0123456789abcdefghij")
    );
    let etag = whole.header("etag").unwrap_or_default().to_string();
    assert!(!etag.is_empty());
    // nginx's not_modified filter on the 200 the slices make (slice.t's inm, im bad).
    let r = get(port, "/c/t", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((r.status, r.body.len()), (304, 0), "{}", p.logs());
    assert_eq!(get(port, "/c/t", "If-None-Match: \"bad\"\r\n").status, 200);
    assert_eq!(
        get(port, "/c/t", &format!("If-Match: {etag}\r\n")).status,
        200
    );
    assert_eq!(get(port, "/c/t", "If-Match: \"bad\"\r\n").status, 412);
    // The connection goes on after a 304 (no slice is left hanging).
    let r = get(port, "/c/t", "Range: bytes=4-12\r\n");
    assert_eq!((r.status, r.body_text().as_str()), (206, "456789abc"));
}
