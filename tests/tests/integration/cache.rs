//! The content cache end to end (`proxy_cache_path`, `proxy_cache`): a real `proton-run` in
//! front of a real `proton-testbackend`. Each test checks what the client gets, what
//! `$upstream_cache_status` said (in an `X-Cache` header), how many requests reached the
//! backend (its `/stats`) and what the cache's directory holds.

use proton_tests::{raw_exchange, request, wait_until, Backend, Proton, Response, TempDir};
use std::time::Duration;

fn conf(http: &str) -> String {
    format!(
        "worker_processes 1;\n\
         error_log {{dir}}/logs/error.log info;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         access_log off;\n\
         {http}\n\
         }}\n"
    )
}

/// A cache in `{dir}/cache` (levels 1:2) in front of backend `@A@`; `extra` goes in the
/// location.
fn cached(port: u16, extra: &str) -> String {
    conf(&format!(
        "proxy_cache_path {{dir}}/cache levels=1:2 keys_zone=one:1m;\n\
         server {{\n\
             listen 127.0.0.1:{{port}};\n\
             location / {{\n\
                 proxy_pass http://127.0.0.1:{port};\n\
                 proxy_cache one;\n\
                 proxy_cache_valid 200 10m;\n\
                 add_header X-Cache $upstream_cache_status always;\n\
                 {extra}\n\
             }}\n\
         }}\n"
    ))
}

fn get(p: &Proton, path: &str) -> Response {
    request(p.port, Some("cache.test"), path)
        .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", p.logs()))
}

fn send(p: &Proton, raw: &str) -> Response {
    let (bytes, _) = raw_exchange(p.port, raw.as_bytes(), Duration::from_secs(10));
    proton_tests::parse_response(&bytes).unwrap_or_else(|e| panic!("{raw:?}: {e}\n{}", p.logs()))
}

fn cache_status(r: &Response) -> &str {
    r.header("X-Cache").unwrap_or("")
}

/// Requests the backend served (its `/stats` probes left out).
fn served(b: &Backend, probes: &mut u64) -> u64 {
    *probes += 1;
    b.stats().1 - *probes
}

#[test]
fn a_response_is_stored_once_and_then_served_from_the_cache() {
    let t = TempDir::new("cache-hit");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, ""), 1);
    let mut probes = 0;
    let before = served(&b, &mut probes);
    let first = get(&p, "/big?bytes=100000");
    assert_eq!(first.status, 200, "{}", p.logs());
    assert_eq!(cache_status(&first), "MISS");
    assert_eq!(first.body.len(), 100_000);
    let second = get(&p, "/big?bytes=100000");
    assert_eq!(cache_status(&second), "HIT", "{}", p.logs());
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("Content-Length"), Some("100000"));
    assert_eq!(
        served(&b, &mut probes) - before,
        1,
        "the backend saw one request"
    );
    // One object, under the levels' directories: c/29/<32 hex digits> style.
    let objects = proton_tests::files_under(&t.path().join("cache"));
    assert_eq!(objects.len(), 1, "{objects:?}");
    let rel = objects[0].strip_prefix(t.path().join("cache")).unwrap();
    let parts: Vec<_> = rel
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    assert_eq!(parts.len(), 3, "{rel:?}");
    assert_eq!((parts[0].len(), parts[1].len(), parts[2].len()), (1, 2, 32));
    assert!(parts[2].ends_with(&format!("{}{}", parts[1], parts[0])));
}

#[test]
fn a_chunked_response_is_stored_decoded_and_served_with_its_length() {
    let t = TempDir::new("cache-chunked");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, ""), 1);
    let first = get(&p, "/chunked?n=3&size=10");
    assert_eq!(cache_status(&first), "MISS");
    assert_eq!(first.header("Transfer-Encoding"), Some("chunked"));
    let second = get(&p, "/chunked?n=3&size=10");
    assert_eq!(cache_status(&second), "HIT", "{}", p.logs());
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("Content-Length"), Some("30"));
    assert_eq!(second.header("Transfer-Encoding"), None);
}

#[test]
fn what_the_rules_refuse_is_not_stored() {
    let t = TempDir::new("cache-refuse");
    let b = Backend::start("b1");
    let p = Proton::start(
        t.path(),
        &cached(
            b.port,
            "proxy_no_cache $arg_nostore; proxy_cache_bypass $arg_fresh;",
        ),
        1,
    );
    // Set-Cookie, Cache-Control: private / no-store / max-age=0, X-Accel-Expires: 0, a
    // status proxy_cache_valid does not name: never stored.
    for path in [
        "/headers?Set-Cookie=a%3Db",
        "/headers?Cache-Control=private",
        "/headers?Cache-Control=no-store",
        "/headers?Cache-Control=max-age%3D0",
        "/headers?X-Accel-Expires=0",
        "/status?code=404",
        "/headers?x=1&nostore=1",
    ] {
        for round in 0..2 {
            let r = get(&p, path);
            assert_eq!(
                cache_status(&r),
                "MISS",
                "{path} round {round}\n{}",
                p.logs()
            );
        }
    }
    // Bypass: fetched anew (and stored), the next plain request is a hit.
    assert_eq!(cache_status(&get(&p, "/headers?y=1")), "MISS");
    assert_eq!(cache_status(&get(&p, "/headers?y=1")), "HIT");
    let bypass = get(&p, "/headers?y=1&fresh=1");
    assert_eq!(cache_status(&bypass), "BYPASS");
    // Nothing half-written is left behind.
    let objects = proton_tests::files_under(&t.path().join("cache"));
    assert_eq!(objects.len(), 2, "{objects:?}");
}

#[test]
fn an_object_expires_after_its_valid_time() {
    let t = TempDir::new("cache-expire");
    let b = Backend::start("b1");
    let p = Proton::start(
        t.path(),
        &cached(b.port, "proxy_cache_valid 200 1s;").replace("proxy_cache_valid 200 10m;", ""),
        1,
    );
    assert_eq!(cache_status(&get(&p, "/id")), "MISS");
    assert_eq!(cache_status(&get(&p, "/id")), "HIT");
    // Fetched again once a second has passed, then fresh again.
    assert!(
        wait_until(Duration::from_secs(10), || cache_status(&get(&p, "/id"))
            == "EXPIRED"),
        "{}",
        p.logs()
    );
    assert_eq!(cache_status(&get(&p, "/id")), "HIT");
}

#[test]
fn x_accel_expires_and_max_age_set_the_valid_time() {
    let t = TempDir::new("cache-accel");
    let b = Backend::start("b1");
    // No proxy_cache_valid at all: only the upstream's headers make things cacheable.
    let p = Proton::start(
        t.path(),
        &cached(b.port, "").replace("proxy_cache_valid 200 10m;", ""),
        1,
    );
    assert_eq!(cache_status(&get(&p, "/headers?a=1")), "MISS");
    assert_eq!(cache_status(&get(&p, "/headers?a=1")), "MISS");
    let path = "/headers?Cache-Control=max-age%3D100";
    assert_eq!(cache_status(&get(&p, path)), "MISS");
    assert_eq!(cache_status(&get(&p, path)), "HIT");
    let path = "/headers?X-Accel-Expires=100";
    assert_eq!(cache_status(&get(&p, path)), "MISS");
    let hit = get(&p, path);
    assert_eq!(cache_status(&hit), "HIT");
    // X-Accel-* is not passed on, as nginx.
    assert_eq!(hit.header("X-Accel-Expires"), None);
}

#[test]
fn a_head_request_is_fetched_as_get_and_stored() {
    let t = TempDir::new("cache-head");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, ""), 1);
    // Two requests on one connection: the HEAD's answer has no body, and the GET after it
    // on the same connection gets its own answer.
    let raw = "HEAD /big?bytes=5000 HTTP/1.1\r\nHost: c\r\n\r\nGET /big?bytes=5000 HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n";
    let (bytes, _) = raw_exchange(p.port, raw.as_bytes(), Duration::from_secs(10));
    // (The HEAD's answer ends with its head: the GET's starts right after.)
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or_else(|| panic!("{}\n{}", String::from_utf8_lossy(&bytes), p.logs()));
    let head = String::from_utf8_lossy(&bytes[..end]).to_string();
    assert!(head.contains("X-Cache: MISS"), "{head}");
    assert!(head.contains("Content-Length: 5000"), "{head}");
    let second = proton_tests::parse_response(&bytes[end..]).unwrap();
    assert_eq!(cache_status(&second), "HIT", "{}", p.logs());
    assert_eq!(second.body.len(), 5000);
    // A HEAD on a hit: the head only.
    let (bytes, _) = raw_exchange(
        p.port,
        b"HEAD /big?bytes=5000 HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("X-Cache: HIT"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
}

#[test]
fn a_range_of_a_cached_response_is_cut_from_the_file() {
    let t = TempDir::new("cache-range");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, ""), 1);
    // (Ranges are cut from responses that say they allow them, as nginx.)
    let path = "/headers?Accept-Ranges=bytes&ETag=%22abc%22";
    let whole = get(&p, path);
    assert_eq!(whole.body, b"ok");
    // The upstream is asked for the whole (no Range, no conditions go to it).
    let r = send(
        &p,
        "GET /echo HTTP/1.1\r\nHost: c\r\nRange: bytes=0-1\r\nIf-None-Match: \"x\"\r\nConnection: close\r\n\r\n",
    );
    let echo = r.body_text();
    assert!(!echo.to_ascii_lowercase().contains("range:"), "{echo}");
    assert!(
        !echo.to_ascii_lowercase().contains("if-none-match"),
        "{echo}"
    );
    let r = send(
        &p,
        &format!("GET {path} HTTP/1.1\r\nHost: c\r\nRange: bytes=1-1\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(r.status, 206, "{}", p.logs());
    assert_eq!(cache_status(&r), "HIT");
    assert_eq!(r.header("Content-Range"), Some("bytes 1-1/2"));
    assert_eq!(r.body, b"k");
}

#[test]
fn objects_survive_a_restart_and_broken_responses_are_never_stored() {
    let t = TempDir::new("cache-restart");
    let b = Backend::start("b1");
    let config = cached(b.port, "proxy_cache_min_uses 1;");
    {
        let p = Proton::start(t.path(), &config, 1);
        assert_eq!(cache_status(&get(&p, "/big?bytes=3000")), "MISS");
        // Cut short by the upstream: the client's response is cut, nothing is stored.
        let _ = request(p.port, Some("c"), "/close-mid");
        assert!(wait_until(
            Duration::from_secs(5),
            || proton_tests::files_under(&t.path().join("cache")).len() == 1
        ));
    }
    let p = Proton::start(t.path(), &config, 1);
    let r = get(&p, "/big?bytes=3000");
    assert_eq!(cache_status(&r), "HIT", "{}", p.logs());
    assert_eq!(r.body.len(), 3000);
    let _ = request(p.port, Some("c"), "/close-mid");
    assert_eq!(proton_tests::files_under(&t.path().join("cache")).len(), 1);
    // A damaged object is not served (logged, removed, fetched again).
    for f in proton_tests::files_under(&t.path().join("cache")) {
        let mut bytes = std::fs::read(&f).unwrap();
        bytes[20] ^= 0xff;
        std::fs::write(&f, bytes).unwrap();
    }
    // (A new process, so that the index does not know the file.)
    drop(p);
    let p = Proton::start(t.path(), &config, 1);
    let r = get(&p, "/big?bytes=3000");
    assert_eq!(cache_status(&r), "MISS");
    assert_eq!(r.body.len(), 3000);
    assert!(p.logs().contains("has incorrect header"), "{}", p.logs());
    assert_eq!(cache_status(&get(&p, "/big?bytes=3000")), "HIT");
}

#[test]
fn min_uses_waits_for_the_nth_request() {
    let t = TempDir::new("cache-min-uses");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, "proxy_cache_min_uses 3;"), 1);
    assert_eq!(cache_status(&get(&p, "/id")), "MISS");
    assert_eq!(cache_status(&get(&p, "/id")), "MISS");
    assert_eq!(cache_status(&get(&p, "/id")), "MISS");
    assert_eq!(cache_status(&get(&p, "/id")), "HIT");
}

#[test]
fn conditional_requests_get_304_from_cached_and_cacheable_responses() {
    let t = TempDir::new("cache-304");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, ""), 1);
    let path = "/headers?ETag=%22v1%22&Last-Modified=Tue,%2001%20Dec%202026%2000:00:00%20GMT";
    let ask = |cond: &str| {
        let (bytes, _) = raw_exchange(
            p.port,
            format!("GET {path} HTTP/1.1\r\nHost: c\r\n{cond}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            Duration::from_secs(10),
        );
        String::from_utf8_lossy(&bytes).into_owned()
    };
    // On the miss that stores it already (the body is stored, not sent).
    let first = ask("If-None-Match: \"v1\"");
    assert!(first.starts_with("HTTP/1.1 304"), "{first}");
    assert!(first.contains("X-Cache: MISS"), "{first}");
    assert!(first.ends_with("\r\n\r\n"), "{first}");
    assert!(!first.contains("Content-Length"), "{first}");
    let hit = ask("If-Modified-Since: Tue, 01 Dec 2026 00:00:00 GMT");
    assert!(hit.starts_with("HTTP/1.1 304"), "{hit}");
    assert!(hit.contains("X-Cache: HIT"), "{hit}");
    assert!(hit.contains("ETag: \"v1\""), "{hit}");
    // Another version, or a later change: the whole answer.
    let other = ask("If-None-Match: \"v0\"");
    assert!(
        other.starts_with("HTTP/1.1 200") && other.ends_with("ok"),
        "{other}"
    );
    let earlier = ask("If-Modified-Since: Mon, 30 Nov 2026 00:00:00 GMT");
    assert!(earlier.starts_with("HTTP/1.1 200"), "{earlier}");
    let failed = ask("If-Match: \"v0\"");
    assert!(failed.starts_with("HTTP/1.1 412"), "{failed}");
}

#[test]
fn an_intercepted_error_is_remembered_for_its_valid_time() {
    let t = TempDir::new("cache-error");
    let b = Backend::start("b1");
    let http = conf(&format!(
        "proxy_cache_path {{dir}}/cache keys_zone=one:1m;\n\
         server {{\n\
             listen 127.0.0.1:{{port}};\n\
             add_header X-Cache $upstream_cache_status always;\n\
             location / {{\n\
                 proxy_pass http://127.0.0.1:{};\n\
                 proxy_cache one;\n\
                 proxy_cache_valid any 1h;\n\
                 proxy_cache_bypass $arg_bypass;\n\
                 proxy_intercept_errors on;\n\
                 error_page 404 = @fallback;\n\
             }}\n\
             location @fallback {{ return 403; }}\n\
         }}\n",
        b.port
    ));
    let p = Proton::start(t.path(), &http, 1);
    let mut probes = 0;
    let before = served(&b, &mut probes);
    assert_eq!(get(&p, "/status?code=404").status, 403);
    let again = get(&p, "/status?code=404");
    assert_eq!(again.status, 403);
    assert_eq!(cache_status(&again), "HIT");
    assert_eq!(served(&b, &mut probes) - before, 1, "{}", p.logs());
    // Bypassed: asked again.
    assert_eq!(get(&p, "/status?code=404&bypass=1").status, 403);
    assert_eq!(served(&b, &mut probes) - before, 2);
}

#[test]
fn stale_objects_answer_errors_and_are_updated_in_the_background() {
    let t = TempDir::new("cache-stale");
    let mut b = Backend::start("b1");
    let p = Proton::start(
        t.path(),
        &cached(
            b.port,
            "proxy_cache_use_stale error timeout http_500; proxy_cache_background_update on;",
        )
        .replace("proxy_cache_valid 200 10m;", ""),
        1,
    );
    let mut probes = 0;
    // Fresh for a second, then stale-while-revalidate for an hour.
    let swr = "/headers?Cache-Control=max-age%3D1,%20stale-while-revalidate%3D3600";
    assert_eq!(cache_status(&get(&p, swr)), "MISS");
    let before = served(&b, &mut probes);
    // Once expired: the stale object at once, the update after it; then fresh again.
    assert!(
        wait_until(Duration::from_secs(10), || cache_status(&get(&p, swr))
            == "STALE"),
        "{}",
        p.logs()
    );
    assert!(
        wait_until(Duration::from_secs(10), || served(&b, &mut probes) > before),
        "the background update reached the backend"
    );
    assert!(wait_until(Duration::from_secs(10), || cache_status(&get(
        &p, swr
    )) == "HIT"));
    // An object of one second, then the backend gone: the stale one instead of 502.
    let short = "/headers?Cache-Control=max-age%3D1&k=2";
    assert_eq!(cache_status(&get(&p, short)), "MISS");
    b.kill();
    assert!(
        wait_until(Duration::from_secs(10), || {
            let r = get(&p, short);
            r.status == 200 && cache_status(&r) == "STALE"
        }),
        "{}",
        p.logs()
    );
}

#[test]
fn proxy_store_keeps_whole_200_bodies_as_files() {
    let t = TempDir::new("store");
    let b = Backend::start("b1");
    let http = conf(&format!(
        "server {{\n\
             listen 127.0.0.1:{{port}};\n\
             root {{dir}}/mirror;\n\
             location / {{\n\
                 proxy_pass http://127.0.0.1:{};\n\
                 proxy_store on;\n\
                 proxy_store_access user:rw group:r all:r;\n\
                 proxy_temp_path {{dir}}/temp;\n\
             }}\n\
             location /named/ {{\n\
                 proxy_pass http://127.0.0.1:{}/;\n\
                 proxy_store {{dir}}/named$uri.copy;\n\
             }}\n\
         }}\n",
        b.port, b.port
    ));
    let p = Proton::start(t.path(), &http, 1);
    let r = get(&p, "/big?bytes=70000");
    assert_eq!(r.body.len(), 70_000);
    let stored = t.path().join("mirror/big");
    assert!(
        wait_until(Duration::from_secs(5), || stored.exists()),
        "{}",
        p.logs()
    );
    assert_eq!(std::fs::read(&stored).unwrap(), r.body);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // A path with variables; a 404 and a response cut short are not kept; no temporary
    // file is left.
    get(&p, "/named/headers?x=1");
    // ($uri is the request's: /named/headers.)
    assert!(
        t.path().join("named/named/headers.copy").exists(),
        "{:?}",
        proton_tests::files_under(t.path())
    );
    assert_eq!(get(&p, "/status?code=404").status, 404);
    assert!(!t.path().join("mirror/status").exists());
    let _ = request(p.port, Some("c"), "/close-mid");
    assert!(!t.path().join("mirror/close-mid").exists());
    assert!(
        proton_tests::files_under(&t.path().join("temp")).is_empty(),
        "{:?}",
        proton_tests::files_under(&t.path().join("temp"))
    );
}

#[test]
fn an_unsafe_method_invalidates_the_stored_answer() {
    let t = TempDir::new("cache-invalidate");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, ""), 1);
    assert_eq!(cache_status(&get(&p, "/echo")), "MISS");
    assert_eq!(cache_status(&get(&p, "/echo")), "HIT");
    // A POST to another URI leaves it; one to its URI that succeeds removes it (RFC 9111
    // 4.4).
    let post = |path: &str| {
        send(
            &p,
            &format!("POST {path} HTTP/1.1\r\nHost: c\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"),
        )
    };
    assert_eq!(post("/status?code=500").status, 500);
    assert_eq!(cache_status(&get(&p, "/echo")), "HIT");
    assert_eq!(post("/echo").status, 200);
    assert_eq!(cache_status(&get(&p, "/echo")), "MISS", "{}", p.logs());
    assert_eq!(cache_status(&get(&p, "/echo")), "HIT");
}

#[test]
fn several_ranges_of_a_cached_answer_are_multipart() {
    let t = TempDir::new("cache-multipart");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, ""), 1);
    let path = "/headers?Accept-Ranges=bytes&Content-Type=text/x-a";
    assert_eq!(get(&p, path).body, b"ok");
    let r = send(
        &p,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: c\r\nRange: bytes=0-0,1-1\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(r.status, 206, "{}", p.logs());
    assert_eq!(cache_status(&r), "HIT");
    let ct = r.header("Content-Type").unwrap_or_default().to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("{ct}"));
    let body = r.body_text();
    assert_eq!(
        body,
        format!(
            "\r\n--{boundary}\r\nContent-Type: text/x-a\r\nContent-Range: bytes 0-0/2\r\n\r\no\
             \r\n--{boundary}\r\nContent-Type: text/x-a\r\nContent-Range: bytes 1-1/2\r\n\r\nk\
             \r\n--{boundary}--\r\n"
        )
    );
    assert_eq!(
        r.header("Content-Length"),
        Some(body.len().to_string().as_str())
    );
}

#[test]
fn small_objects_are_served_from_memory_while_current() {
    let t = TempDir::new("cache-memory");
    let b = Backend::start("b1");
    let mem = |memory: &str| {
        cached(b.port, "proxy_cache_bypass $arg_fresh;")
            .replace("keys_zone=one:1m;", &format!("keys_zone=one:1m {memory};"))
    };
    let p = Proton::start(t.path(), &mem(""), 1);
    let path = "/headers?x=1";
    assert_eq!(cache_status(&get(&p, path)), "MISS");
    // The first hit reads the file and keeps a copy; with the file gone, the copy answers.
    assert_eq!(get(&p, path).body, b"ok");
    for f in proton_tests::files_under(&t.path().join("cache")) {
        std::fs::remove_file(f).unwrap();
    }
    let r = get(&p, path);
    assert_eq!((cache_status(&r), r.body.as_slice()), ("HIT", &b"ok"[..]));
    // Stored again (a bypass): the copy is no longer the object; the new file answers.
    assert_eq!(cache_status(&get(&p, &format!("{path}&fresh=1"))), "BYPASS");
    drop(p);
    // Without the memory tier, a hit always reads the file.
    let t2 = TempDir::new("cache-memory-off");
    let p = Proton::start(t2.path(), &mem("memory=0"), 1);
    assert_eq!(cache_status(&get(&p, path)), "MISS");
    assert_eq!(cache_status(&get(&p, path)), "HIT");
    for f in proton_tests::files_under(&t2.path().join("cache")) {
        std::fs::remove_file(f).unwrap();
    }
    assert_eq!(cache_status(&get(&p, path)), "MISS", "{}", p.logs());
}

#[test]
fn x_pad_is_hidden_unless_passed_as_nginx() {
    let t = TempDir::new("x-pad");
    let b = Backend::start("b1");
    let http = conf(&format!(
        "server {{\n\
             listen 127.0.0.1:{{port}};\n\
             location / {{ proxy_pass http://127.0.0.1:{}; }}\n\
             location /pass/ {{ proxy_pass http://127.0.0.1:{}/; proxy_pass_header X-Pad; }}\n\
         }}\n",
        b.port, b.port
    ));
    let p = Proton::start(t.path(), &http, 1);
    assert_eq!(get(&p, "/headers?X-Pad=1&X-Other=2").header("X-Pad"), None);
    assert_eq!(
        get(&p, "/headers?X-Pad=1&X-Other=2").header("X-Other"),
        Some("2")
    );
    assert_eq!(get(&p, "/pass/headers?X-Pad=1").header("X-Pad"), Some("1"));
}

/// `cached` without proxy_cache_valid: only the upstream's headers make things cacheable.
fn by_headers(port: u16, extra: &str) -> String {
    cached(port, extra).replace("proxy_cache_valid 200 10m;", "")
}

/// Two GETs of `path`: the cache statuses they got.
fn twice(p: &Proton, path: &str) -> (String, String) {
    let a = cache_status(&get(p, path)).to_string();
    let b = cache_status(&get(p, path)).to_string();
    (a, b)
}

#[test]
fn freshness_counts_the_age_a_response_arrives_with() {
    let t = TempDir::new("cache-age");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &by_headers(b.port, ""), 1);
    // Age past max-age: stale on arrival, never served from the cache.
    let path = "/headers?Cache-Control=max-age%3D60&Age=120";
    assert_eq!(twice(&p, path), ("MISS".into(), "MISS".into()));
    // An Age that is not one number makes it stale too.
    let path = "/headers?Cache-Control=max-age%3D60&Age=0%2C%200";
    assert_eq!(twice(&p, path), ("MISS".into(), "MISS".into()));
    // Expires counts from the response's Date: an Expires before its Date is stale
    // (nginx compares Expires with its own clock and stores it).
    let path = "/headers?Date=Sat%2C%2002%20Jan%202100%2000%3A00%3A00%20GMT&Expires=Fri%2C%2001%20Jan%202100%2000%3A00%3A00%20GMT";
    assert_eq!(twice(&p, path), ("MISS".into(), "MISS".into()));
    // A hit says its age (the upstream's Age plus the time stored) and keeps the Date it
    // was stored with.
    let path = "/headers?Cache-Control=max-age%3D3600&Age=100&Date=Sat%2C%2002%20Jan%202100%2000%3A00%3A00%20GMT";
    let first = get(&p, path);
    assert_eq!(cache_status(&first), "MISS");
    assert_eq!(first.header("Age"), Some("100"));
    let hit = get(&p, path);
    assert_eq!(cache_status(&hit), "HIT", "{}", p.logs());
    let age: u64 = hit.header("Age").unwrap_or("").parse().unwrap_or(0);
    assert!((100..200).contains(&age), "Age {:?}", hit.header("Age"));
    assert_eq!(hit.header("Date"), Some("Sat, 02 Jan 2100 00:00:00 GMT"));
    assert_eq!(
        hit.headers.iter().filter(|(n, _)| n == "age").count(),
        1,
        "one Age line"
    );
}

#[test]
fn cache_control_is_read_as_a_list_of_directives() {
    let t = TempDir::new("cache-cc");
    let b = Backend::start("b1");
    let p = Proton::start(
        t.path(),
        &by_headers(b.port, "proxy_cache_revalidate on;"),
        1,
    );
    // A max-age inside an extension's quoted string is not one: max-age=0 decides.
    let path = "/headers?Cache-Control=ext%3D%22max-age%3D3600%22%2C%20max-age%3D0";
    assert_eq!(twice(&p, path), ("MISS".into(), "MISS".into()));
    // Vary with * among other names: never served from the cache.
    let path = "/headers?Cache-Control=max-age%3D60&Vary=Accept%2C%20*";
    assert_eq!(twice(&p, path), ("MISS".into(), "MISS".into()));
    // must-understand: a status this cache knows is stored whatever no-store says.
    let path = "/headers?Cache-Control=max-age%3D60%2C%20must-understand%2C%20no-store";
    assert_eq!(twice(&p, path), ("MISS".into(), "HIT".into()));
    // no-cache="field": stored, the field left out of what the cache sends.
    let path =
        "/headers?Cache-Control=max-age%3D60%2C%20no-cache%3D%22X-Secret%22&X-Secret=1&X-Other=2";
    let first = get(&p, path);
    assert_eq!(first.header("X-Secret"), Some("1"));
    let hit = get(&p, path);
    assert_eq!(cache_status(&hit), "HIT", "{}", p.logs());
    assert_eq!(hit.header("X-Secret"), None);
    assert_eq!(hit.header("X-Other"), Some("2"));
    // Plain no-cache with a validator and proxy_cache_revalidate: stored, and asked about
    // before every use (a 304 answers).
    let path = "/headers?Cache-Control=no-cache&ETag=%22v1%22";
    assert_eq!(twice(&p, path), ("MISS".into(), "REVALIDATED".into()));
    // Surrogate-Control (for this cache) comes before Cache-Control.
    let path = "/headers?Cache-Control=no-store&Surrogate-Control=max-age%3D60%3Bproton";
    assert_eq!(twice(&p, path), ("MISS".into(), "HIT".into()));
    let path = "/headers?Cache-Control=max-age%3D60&Surrogate-Control=no-store";
    assert_eq!(twice(&p, path), ("MISS".into(), "MISS".into()));
    let path = "/headers?Cache-Control=max-age%3D60&Surrogate-Control=max-age%3D60%3Bother-cache";
    assert_eq!(twice(&p, path), ("MISS".into(), "HIT".into()));
}

#[test]
fn a_304_updates_the_stored_head() {
    let t = TempDir::new("cache-304");
    let b = Backend::start("b1");
    let p = Proton::start(
        t.path(),
        &by_headers(b.port, "proxy_cache_revalidate on;"),
        1,
    );
    // Fresh for one second; the 304 that revalidates it brings new values and an hour.
    let path = "/headers?ETag=%22e1%22&Cache-Control=max-age%3D1&X-V=old&Content-Type=text%2Fplain&304-X-V=new&304-Cache-Control=max-age%3D3600&304-Content-Type=text%2Fhtml&304-ETag=%22other%22&304-Content-Length=9";
    let first = get(&p, path);
    assert_eq!(cache_status(&first), "MISS");
    assert_eq!(first.header("X-V"), Some("old"));
    let mut revalidated = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let r = get(&p, path);
            let done = cache_status(&r) == "REVALIDATED";
            revalidated = Some(r);
            done
        }),
        "{}",
        p.logs()
    );
    let r = revalidated.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok");
    assert_eq!(r.header("X-V"), Some("new"));
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    // Not the validator, nor the body's length.
    assert_eq!(r.header("ETag"), Some("\"e1\""));
    assert_eq!(r.header("Content-Length"), Some("2"));
    // The updated head is the one stored, fresh for the 304's hour.
    let hit = get(&p, path);
    assert_eq!(cache_status(&hit), "HIT", "{}", p.logs());
    assert_eq!(hit.header("X-V"), Some("new"));
    assert_eq!(hit.header("Cache-Control"), Some("max-age=3600"));
    assert_eq!(hit.body, b"ok");
}

#[test]
fn credentials_unsafe_methods_and_connection_fields() {
    let t = TempDir::new("cache-auth");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &by_headers(b.port, ""), 1);
    let with_auth = |path: &str| {
        send(
            &p,
            &format!("GET {path} HTTP/1.1\r\nHost: c\r\nAuthorization: Basic eDp5\r\nConnection: close\r\n\r\n"),
        )
    };
    // An answer to a request with credentials is not stored, nor does a stored answer
    // reach such a request, unless it says public (RFC 9111 3.5).
    let path = "/headers?Cache-Control=max-age%3D60&k=1";
    assert_eq!(cache_status(&with_auth(path)), "MISS");
    assert_eq!(cache_status(&get(&p, path)), "MISS");
    assert_eq!(cache_status(&get(&p, path)), "HIT");
    assert_eq!(cache_status(&with_auth(path)), "MISS");
    let path = "/headers?Cache-Control=max-age%3D60%2C%20public&k=2";
    assert_eq!(cache_status(&with_auth(path)), "MISS");
    assert_eq!(cache_status(&with_auth(path)), "HIT");
    assert_eq!(cache_status(&get(&p, path)), "HIT");
    // X-Accel-Expires (the application's word to its proxy, as proxy_cache_valid is the
    // configuration's) shares the answer as nginx does.
    let path = "/headers?X-Accel-Expires=60&k=4";
    assert_eq!(cache_status(&with_auth(path)), "MISS");
    assert_eq!(cache_status(&get(&p, path)), "HIT");
    // A POST answered with a Location (or Content-Location) on this origin removes what
    // is stored for that URI too.
    let target = "/headers?Cache-Control=max-age%3D60&k=3";
    assert_eq!(twice(&p, target), ("MISS".into(), "HIT".into()));
    let post = send(
        &p,
        "POST /headers?Location=%2Fheaders%3FCache-Control%3Dmax-age%253D60%26k%3D3 HTTP/1.1\r\nHost: c\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(post.status, 200);
    assert_eq!(cache_status(&get(&p, target)), "MISS", "{}", p.logs());
    // Fields the upstream's Connection lists are that connection's: never sent on.
    let path = "/headers?Cache-Control=max-age%3D60&Connection=X-Hop&X-Hop=1&X-End=2";
    for round in 0..2 {
        let r = get(&p, path);
        assert_eq!(r.header("X-Hop"), None, "round {round}");
        assert_eq!(r.header("X-End"), Some("2"), "round {round}");
    }
}

#[test]
fn if_none_match_decides_alone_on_a_cached_answer() {
    let t = TempDir::new("cache-inm");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &by_headers(b.port, ""), 1);
    let path = "/headers?Cache-Control=max-age%3D60&ETag=%22x%22&Last-Modified=Sat%2C%2002%20Jan%202000%2000%3A00%3A00%20GMT";
    assert_eq!(twice(&p, path), ("MISS".into(), "HIT".into()));
    // If-Modified-Since says modified, If-None-Match says current: 304 (RFC 9110 13.2.2).
    let r = send(
        &p,
        &format!("GET {path} HTTP/1.1\r\nHost: c\r\nIf-None-Match: \"x\"\r\nIf-Modified-Since: Sat, 01 Jan 1990 00:00:00 GMT\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(r.status, 304, "{}", p.logs());
}

/// The objects (32-hex-digit names) under `dir` and the bytes they take.
fn objects(dir: &std::path::Path) -> (usize, u64) {
    let files: Vec<_> = proton_tests::files_under(dir)
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n.len() == 32))
        .collect();
    let bytes = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    (files.len(), bytes)
}

#[test]
fn the_loader_and_manager_keep_max_size_and_inactive_without_requests() {
    let t = TempDir::new("cache-keeper");
    let b = Backend::start("b1");
    let cache = t.path().join("cache");
    let mut p = Proton::start(t.path(), &cached(b.port, ""), 1);
    for i in 0..4 {
        let r = get(&p, &format!("/big?bytes=100000&n={i}"));
        assert_eq!(cache_status(&r), "MISS");
    }
    assert_eq!(objects(&cache).0, 4);
    p.signal("TERM");
    assert!(p.wait_exit(Duration::from_secs(10)));
    drop(p);
    // What a crash leaves: a damaged object, and a temporary file no one writes to.
    let damaged = cache.join("f/ff/ffffffffffffffffffffffffffffffff");
    std::fs::create_dir_all(damaged.parent().unwrap()).unwrap();
    std::fs::write(&damaged, b"not an object").unwrap();
    let temp = cache.join("0000000042");
    std::fs::write(&temp, b"half").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&temp)
        .and_then(|f| f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000)))
        .unwrap();
    // Started again with max_size=250k: the loader learns the four objects (400 KB), the
    // manager removes the least recently used until they fit, with no request at all.
    let conf = cached(b.port, "").replace("keys_zone=one:1m;", "keys_zone=one:1m max_size=250k;");
    let p = Proton::start(t.path(), &conf, 1);
    assert!(
        wait_until(Duration::from_secs(10), || {
            let (n, bytes) = objects(&cache);
            n >= 1 && bytes <= 250 * 1024 && !damaged.exists() && !temp.exists()
        }),
        "{:?}\n{}",
        objects(&cache),
        p.logs()
    );
    assert!(p.logs().contains("loaded"), "{}", p.logs());
    drop(p);
    // With inactive=1s, every object goes once unused for a second.
    let conf = cached(b.port, "").replace("keys_zone=one:1m;", "keys_zone=one:1m inactive=1s;");
    let p = Proton::start(t.path(), &conf, 1);
    assert!(
        wait_until(Duration::from_secs(10), || objects(&cache).0 == 0),
        "{:?}\n{}",
        objects(&cache),
        p.logs()
    );
}

#[test]
fn a_worker_killed_while_storing_leaves_no_object() {
    let t = TempDir::new("cache-kill");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, ""), 1);
    let cache = t.path().join("cache");
    let worker = p.the_worker();
    // The head comes at once, the body three seconds later: the object is being written.
    let port = p.port;
    let client = std::thread::spawn(move || request(port, Some("c"), "/headdelay?ms=3000"));
    assert!(
        wait_until(Duration::from_secs(10), || !proton_tests::files_under(
            &cache
        )
        .is_empty()),
        "{}",
        p.logs()
    );
    assert_eq!(objects(&cache).0, 0, "only a temporary file while writing");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &worker.to_string()])
        .status();
    // The client's connection died with the worker.
    assert!(client.join().unwrap().is_err());
    // A new worker: the object is fetched whole, never served half.
    assert!(
        wait_until(Duration::from_secs(20), || p
            .workers()
            .iter()
            .any(|&w| w != worker)),
        "{}",
        p.logs()
    );
    let r = get(&p, "/headdelay?ms=3000");
    assert_eq!(
        (cache_status(&r), r.body_text().as_str()),
        ("MISS", "hello")
    );
    let r = get(&p, "/headdelay?ms=3000");
    assert_eq!((cache_status(&r), r.body_text().as_str()), ("HIT", "hello"));
    assert_eq!(objects(&cache).0, 1);
}

/// A small file system mounted for a test (tmpfs), unmounted when dropped.
struct SmallFs(std::path::PathBuf);

impl SmallFs {
    /// `None` where this machine does not let the test mount one (not root).
    fn mount(at: &std::path::Path, size: &str) -> Option<SmallFs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallFs(at.to_path_buf()))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_stops_storing_and_keeps_serving() {
    let t = TempDir::new("cache-full");
    let Some(_fs) = SmallFs::mount(&t.path().join("cache"), "1m") else {
        eprintln!("skipped: this machine does not let the test mount a tmpfs (needs root)");
        return;
    };
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, ""), 1);
    // 2 MB does not fit in the cache's 1 MiB: the client gets all of it, nothing is stored,
    // the failed write is logged.
    for round in 0..2 {
        let r = get(&p, "/big?bytes=2000000");
        assert_eq!((r.status, r.body.len()), (200, 2_000_000), "round {round}");
        assert_eq!(cache_status(&r), "MISS", "round {round}");
        assert!(r
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8));
    }
    assert!(
        wait_until(Duration::from_secs(5), || p
            .logs()
            .contains("No space left on device")),
        "{}",
        p.logs()
    );
    assert!(proton_tests::files_under(&t.path().join("cache")).is_empty());
    // What fits is still stored.
    assert_eq!(twice(&p, "/big?bytes=1000"), ("MISS".into(), "HIT".into()));
}

#[test]
fn proxy_cache_purge_removes_a_key_or_every_key_a_wildcard_starts() {
    let t = TempDir::new("cache-purge");
    let b = Backend::start("b1");
    let conf = cached(b.port, "proxy_cache_purge $purge;").replace(
        "server {",
        "map $request_method $purge { PURGE 1; default 0; }\nserver {",
    );
    let p = Proton::start(t.path(), &conf, 1);
    let purge = |path: &str| {
        send(
            &p,
            &format!("PURGE {path} HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n"),
        )
        .status
    };
    let mut probes = 0;
    assert_eq!(twice(&p, "/id?k=a"), ("MISS".into(), "HIT".into()));
    let before = served(&b, &mut probes);
    assert_eq!(purge("/id?k=a"), 204, "{}", p.logs());
    assert_eq!(purge("/id?k=a"), 404, "nothing left to purge");
    assert_eq!(served(&b, &mut probes), before, "a purge asks no upstream");
    assert_eq!(twice(&p, "/id?k=a"), ("MISS".into(), "HIT".into()));
    // A key that ends in `*`: every key it starts goes, the others stay.
    for path in ["/id?w=1", "/id?w=2", "/id?v=1"] {
        assert_eq!(cache_status(&get(&p, path)), "MISS");
    }
    assert_eq!(purge("/id?w*"), 204, "{}", p.logs());
    assert_eq!(cache_status(&get(&p, "/id?w=1")), "MISS");
    assert_eq!(cache_status(&get(&p, "/id?w=2")), "MISS");
    assert_eq!(cache_status(&get(&p, "/id?v=1")), "HIT");
    assert_eq!(cache_status(&get(&p, "/id?k=a")), "HIT");
    assert_eq!(purge("/nothing*"), 404);
    // Variants of an answer with Vary are files of their own: all go.
    let path = "/headers?Vary=X-Lang&x=1";
    for lang in ["en", "fr"] {
        let r = send(
            &p,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: c\r\nX-Lang: {lang}\r\nConnection: close\r\n\r\n"
            ),
        );
        assert_eq!(cache_status(&r), "MISS", "{lang}");
    }
    let files = objects(&t.path().join("cache")).0;
    assert_eq!(purge(path), 204);
    assert_eq!(
        objects(&t.path().join("cache")).0,
        files - 2,
        "{}",
        p.logs()
    );
}

#[test]
fn request_cache_control_only_if_cached_max_stale_and_no_store() {
    let t = TempDir::new("cache-reqcc");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &by_headers(b.port, ""), 1);
    let with_cc = |path: &str, cc: &str| {
        send(
            &p,
            &format!("GET {path} HTTP/1.1\r\nHost: c\r\nCache-Control: {cc}\r\nConnection: close\r\n\r\n"),
        )
    };
    let mut probes = 0;
    let before = served(&b, &mut probes);
    // only-if-cached: 504 for what the cache does not hold, the upstream not asked.
    let path = "/headers?Cache-Control=max-age%3D1&q=1";
    assert_eq!(with_cc(path, "only-if-cached").status, 504, "{}", p.logs());
    assert_eq!(served(&b, &mut probes), before);
    // no-store: answered, not stored.
    assert_eq!(cache_status(&with_cc(path, "no-store")), "MISS");
    assert_eq!(cache_status(&get(&p, path)), "MISS");
    assert_eq!(cache_status(&with_cc(path, "only-if-cached")), "HIT");
    // max-stale: once the object is stale, the client that allows it gets it as it is.
    assert!(
        wait_until(Duration::from_secs(10), || with_cc(path, "only-if-cached")
            .status
            == 504),
        "{}",
        p.logs()
    );
    let r = with_cc(path, "max-stale=600");
    assert_eq!((r.status, cache_status(&r)), (200, "STALE"), "{}", p.logs());
    assert_eq!(cache_status(&get(&p, path)), "EXPIRED");
    // Request no-cache and max-age are left to the configuration (proxy_cache_bypass).
    assert_eq!(cache_status(&with_cc(path, "no-cache")), "HIT");
}

#[test]
fn an_invalidated_key_takes_its_older_variants_with_it() {
    let t = TempDir::new("cache-vary-inval");
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, ""), 1);
    let path = "/headers?Vary=X-Lang&v=1";
    let lang = |l: &str| {
        let r = send(
            &p,
            &format!("GET {path} HTTP/1.1\r\nHost: c\r\nX-Lang: {l}\r\nConnection: close\r\n\r\n"),
        );
        cache_status(&r).to_string()
    };
    // en is the main key's object, fr a variant's own.
    assert_eq!((lang("en"), lang("fr")), ("MISS".into(), "MISS".into()));
    assert_eq!((lang("en"), lang("fr")), ("HIT".into(), "HIT".into()));
    let stored = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // (Objects are dated in seconds: the next second, so that "older" shows.)
    assert!(wait_until(Duration::from_secs(3), || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            > stored
    }));
    // A successful POST invalidates the key; the next en is stored anew as the main
    // object, and fr's older object is not served any more.
    let post = send(
        &p,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: c\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(post.status, 200);
    assert_eq!(lang("en"), "MISS");
    assert_eq!(lang("fr"), "MISS", "{}", p.logs());
    assert_eq!((lang("en"), lang("fr")), ("HIT".into(), "HIT".into()));
}

#[test]
fn ranges_of_a_cached_answer_go_through_the_charset_filter() {
    let t = TempDir::new("cache-range-charset");
    let b = Backend::start("b1");
    let conf = cached(b.port, "").replace("server {", "charset_map B A { 6F 4F; }\nserver {");
    let p = Proton::start(t.path(), &conf, 1);
    // Stored as the upstream sent it (charset B); sent in A, as X-Accel-Charset says.
    let path =
        "/headers?Content-Type=text%2Fhtml%3B%20charset%3DB&X-Accel-Charset=A&Accept-Ranges=bytes";
    assert_eq!(cache_status(&get(&p, path)), "MISS");
    let r = send(
        &p,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: c\r\nRange: bytes=0-0,1-1\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(r.status, 206, "{}", p.logs());
    let ct = r.header("Content-Type").unwrap_or_default().to_string();
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    let body = r.body_text();
    assert_eq!(
        body.matches("Content-Type: text/html; charset=A\r\n")
            .count(),
        2,
        "{body}"
    );
    assert!(
        body.contains("\r\n\r\nO\r\n") && body.contains("\r\n\r\nk\r\n"),
        "{body}"
    );
}

#[test]
fn a_reload_keeps_the_cache_and_does_not_load_it_again() {
    let t = TempDir::new("cache-reload");
    // (A directory to load: the loader says so once it is through it.)
    std::fs::create_dir_all(t.path().join("cache")).unwrap();
    let b = Backend::start("b1");
    let p = Proton::start(t.path(), &cached(b.port, ""), 1);
    let mut probes = 0;
    assert_eq!(twice(&p, "/id?r=1"), ("MISS".into(), "HIT".into()));
    let loads = |p: &Proton| p.logs().matches("cache \"one\" loaded").count();
    assert!(
        wait_until(Duration::from_secs(10), || loads(&p) == 1),
        "{}",
        p.logs()
    );
    let before = served(&b, &mut probes);
    let old = p.the_worker();
    p.signal("HUP");
    // The next generation serves the stored object (the keys zone kept as it was), and its
    // first worker does not walk the directory again.
    assert!(
        wait_until(Duration::from_secs(20), || {
            let w = p.workers();
            !w.is_empty() && !w.contains(&old)
        }),
        "{}",
        p.logs()
    );
    assert_eq!(cache_status(&get(&p, "/id?r=1")), "HIT", "{}", p.logs());
    assert_eq!(served(&b, &mut probes), before, "no upstream request");
    assert_eq!(loads(&p), 1, "{}", p.logs());
}
