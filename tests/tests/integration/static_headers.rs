//! Static files and response headers as nginx writes them: charset, autoindex formats,
//! expires, redirects (absolute_redirect, port_in_redirect, server_name_in_redirect,
//! auto_redirect, msie_refresh), conditional requests (If-Match, If-Unmodified-Since,
//! If-Range), max_ranges, merge_slashes, ignore_invalid_headers, add_header ETag, and
//! `$sent_http_*`. One table of raw requests runs against proton-run and, where Debian's
//! nginx is installed, against nginx with the same configuration; the answers must agree.

use proton_tests::{nginx_binary, parse_response, raw_exchange, Nginx, Proton, TempDir};
use std::time::Duration;

/// The servers of the comparison (inside `http {}`); `{port}` and `{root}` are filled in.
const SERVERS: &str = r#"
charset_map b a { 58 59; }
map $sent_http_content_type $exp { default off; text/html epoch; ~^image/ max; }
server {
    listen 127.0.0.1:{port};
    server_name on.test;
    root {root};
    location /cs/ { charset utf-8; default_type application/octet-stream; }
    location /cs/t.foo { charset utf-8; charset_types text/foo; types { text/foo foo; } }
    location /cs/any/ { charset utf-8; charset_types *; default_type application/octet-stream; }
    location /cs/var/ { charset $arg_c; }
    location /rc/ { charset a; source_charset b; }
    location /rc/few/ { charset a; source_charset b; max_ranges 1; }
    location /ai/ { autoindex on; autoindex_exact_size off; }
    location /aix/ { alias {root}/ai/; autoindex on; autoindex_format xml; }
    location /aij/ { alias {root}/ai/; autoindex on; autoindex_format jsonp; }
    location /exp/daily { expires @15h30m; return 200 ok; }
    location /exp/var { expires $arg_e; return 200 ok; }
    location /exp/epoch { expires epoch; return 200 ok; }
    location /r/rel { absolute_redirect off; return 301 /x; }
    location /r/noport { port_in_redirect off; return 301 /x; }
    location /r/name { server_name_in_redirect on; return 301 /x; }
    location /r/msie { msie_refresh on; return 302 "/x y"; }
    location /auto/ { proxy_pass http://127.0.0.1:9; }
    location /etag/ { add_header ETag foo; add_header ETag ''; }
    location /h/ { add_header X-Foo "[$http_x_foo]"; return 200 ok; }
    location /e302 { error_page 302 /r/rel; return 302 first; }
    location /e302t { error_page 302 /t200; return 302 text; }
    location /e302b { error_page 302 /b200; return 302 /somewhere; }
    location /t200 { return 200 "text"; }
    location /b200 { return 200; }
    location /r302 { return 302; }
    location /r301e { return 301; error_page 301 text; }
    location /r301m { msie_refresh on; return 301; error_page 301 text; }
    location /sym/ { disable_symlinks on; }
    location /symo/ { disable_symlinks if_not_owner; }
    location /symt/ { disable_symlinks on; try_files $uri $uri.html =404; }
    location /symf/ { root {root}/rootlink; disable_symlinks on from=$document_root; }
    location /symn/ { root {root}/rootlink; disable_symlinks on; }
    location /symi/ { disable_symlinks on; }
    location /symif/ { disable_symlinks on; if (-f $request_filename) { return 204; } }
    location /symifo/ { disable_symlinks if_not_owner; if (-f $request_filename) { return 204; } }
    location ~ ^/tfre/.+\.html$ { alias {root}/tfre-dir; try_files $uri =404; }
    location ~ ^/symx/(.+)$ { disable_symlinks on from=$document_root; alias {root}/sym/$1; }
    location /ix/ { index $arg_i; }
    location /pcs/ { charset b; override_charset on; proxy_pass http://127.0.0.1:{port}/rc/; }
    location /pco/ { charset b; proxy_pass http://127.0.0.1:{port}/rc/; }
    location /pcl/ { charset utf-8; proxy_pass http://127.0.0.1:{port}/lm/; }
    location /pm/ { proxy_pass http://127.0.0.1:{port}/lm/; expires modified 2048; }
    location /xac/ { alias {root}/rc/; charset b; add_header X-Accel-Charset a; }
    location /xau/ { alias {root}/rc/; charset b; add_header X-Accel-Charset nosuch; }
    location /xas/ { alias {root}/rc/; add_header X-Accel-Charset a; }
    location /pxa/ { proxy_pass http://127.0.0.1:{port}/xac/; }
    location /pxu/ { proxy_pass http://127.0.0.1:{port}/xau/; }
    location /pxi/ { proxy_ignore_headers X-Accel-Charset; proxy_pass http://127.0.0.1:{port}/xac/; }
    location /pxs/ { source_charset b; proxy_pass http://127.0.0.1:{port}/xas/; }
    location /pxn/ { proxy_pass http://127.0.0.1:{port}/xas/; }
    location /xacc/ { alias {root}/rc/; charset b; add_header X-Accel-Charset a; add_trailer X-T 1; }
    location /pxc/ { proxy_http_version 1.1; proxy_pass http://127.0.0.1:{port}/xacc/; }
    location /xag/ { alias {root}/rc/; charset b; add_header X-Accel-Charset a; add_header Content-Encoding gzip; }
    location /pxg/ { proxy_pass http://127.0.0.1:{port}/xag/; }
    location /xa2/ { alias {root}/rc/; charset b; add_header X-Accel-Charset nosuch; add_header X-Accel-Charset a; }
    location /px2/ { proxy_pass http://127.0.0.1:{port}/xa2/; }
    location /tr/ {
        add_trailer X-T "[$host]";
        add_trailer X-Always a always;
        add_trailer X-Empty "";
        add_trailer X-S "$sent_http_content_type";
        add_trailer X-ST "$sent_trailer_x_t";
    }
    location /trnc/ { add_trailer X-T 1; chunked_transfer_encoding off; }
    location /lm/ { add_header Last-Modified "Mon, 28 Sep 1970 06:00:00 GMT"; }
    location /mapexp/ { expires $exp; add_header X-Foo "[$sent_http_content_type]"; }
}
server {
    listen 127.0.0.1:{port};
    server_name ms.test;
    merge_slashes off;
    ignore_invalid_headers off;
    location / { add_header X-URI "$uri"; add_header X-Foo "[$http_x_foo]"; return 200 ok; }
}
"#;

/// Requests (raw, HTTP/1.0 with a Host so both servers close after answering).
fn cases() -> Vec<(&'static str, String)> {
    let req = |host: &str, path: &str, extra: &str| {
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n{extra}\r\n")
    };
    let on = |path: &str, extra: &str| req("on.test", path, extra);
    let on11 =
        |path: &str| format!("GET {path} HTTP/1.1\r\nHost: on.test\r\nConnection: close\r\n\r\n");
    vec![
        ("charset", on("/cs/t.html", "")),
        ("charset wrong type", on("/cs/u.foo2", "")),
        ("charset on an error page", on("/cs/nope", "")),
        ("charset on a redirect page", on("/cs", "")),
        ("charset_types", on("/cs/t.foo", "")),
        ("charset_types *", on("/cs/any/t.bin", "")),
        ("charset variable", on("/cs/var/t.html?c=koi8-r", "")),
        ("recode", on("/rc/t.html", "")),
        ("recode range", on("/rc/t.html", "Range: bytes=1-3\r\n")),
        (
            "recode ranges",
            on("/rc/t.html", "Range: bytes=0-1,4-5\r\n"),
        ),
        (
            "max_ranges",
            on("/rc/few/t.html", "Range: bytes=0-1,4-5\r\n"),
        ),
        ("autoindex html", on("/ai/", "")),
        ("autoindex xml", on("/aix/", "")),
        ("autoindex jsonp", on("/aij/?callback=cb_1", "")),
        ("autoindex jsonp plain", on("/aij/", "")),
        ("autoindex jsonp bad", on("/aij/?callback=a(b", "")),
        ("expires daily", on("/exp/daily", "")),
        ("expires variable", on("/exp/var?e=epoch", "")),
        ("expires variable max", on("/exp/var?e=max", "")),
        ("expires variable off", on("/exp/var?e=off", "")),
        ("expires epoch", on("/exp/epoch", "")),
        ("absolute_redirect off", on("/r/rel", "")),
        ("port_in_redirect off", on("/r/noport", "")),
        ("server_name_in_redirect", req("other.test", "/r/name", "")),
        ("directory redirect escaped", on("/dir%20sp?a=b", "")),
        ("auto redirect", on("/auto?a=1", "")),
        (
            "msie_refresh",
            on("/r/msie", "User-Agent: Mozilla (MSIE 6.0; x)\r\n"),
        ),
        ("msie_refresh other", on("/r/msie", "User-Agent: curl\r\n")),
        ("if-match", on("/t.html", "If-Match: \"nope\"\r\n")),
        ("if-match any", on("/t.html", "If-Match: *\r\n")),
        (
            "if-unmodified-since old",
            on(
                "/t.html",
                "If-Unmodified-Since: Mon, 28 Sep 1970 06:00:00 GMT\r\n",
            ),
        ),
        (
            "if-unmodified-since new",
            on(
                "/t.html",
                "If-Unmodified-Since: Tue, 01 Jan 2999 00:00:00 GMT\r\n",
            ),
        ),
        (
            "if-range date",
            on(
                "/t.html",
                "Range: bytes=0-1\r\nIf-Range: Thu, 01 Jan 2009 00:00:00 GMT\r\n",
            ),
        ),
        (
            "if-range wrong date",
            on(
                "/t.html",
                "Range: bytes=0-1\r\nIf-Range: Fri, 02 Jan 2009 00:00:00 GMT\r\n",
            ),
        ),
        ("add_header etag empty", on("/etag/t.html", "")),
        ("error_page on a redirect", on("/e302", "")),
        ("error_page on a redirect, return text", on("/e302t", "")),
        ("error_page on a redirect, bare return", on("/e302b", "")),
        ("bare return 200", on("/b200", "")),
        ("redirect without a URL", on("/r302", "")),
        ("redirect without a URL, error_page", on("/r301e", "")),
        (
            "redirect without a URL, error_page, msie_refresh",
            on("/r301m", "User-Agent: Mozilla (MSIE 6.0; x)\r\n"),
        ),
        ("underscore dropped", on("/h/", "X_Foo: 1\r\n")),
        (
            "merge_slashes of the default server",
            req("ms.test", "/a//../b", ""),
        ),
        (
            "ignore_invalid_headers off",
            req("ms.test", "/", "X_Foo: 2\r\n"),
        ),
        (
            "error page padding",
            on("/nx", "User-Agent: Chrome/100\r\n"),
        ),
        ("disable_symlinks on", on("/sym/link", "")),
        ("disable_symlinks on, no link", on("/sym/real.html", "")),
        ("disable_symlinks if_not_owner", on("/symo/link", "")),
        ("disable_symlinks try_files", on("/symt/t", "")),
        ("disable_symlinks from", on("/symf/real.html", "")),
        ("disable_symlinks not from", on("/symn/real.html", "")),
        ("disable_symlinks index", on("/symi/", "")),
        ("disable_symlinks, if -f on a link", on("/symif/link", "")),
        (
            "disable_symlinks, if -f on a file",
            on("/symif/real.html", ""),
        ),
        (
            "disable_symlinks if_not_owner, if -f",
            on("/symifo/link", ""),
        ),
        (
            "disable_symlinks from= the whole path",
            on("/symx/link", ""),
        ),
        ("disable_symlinks off", on("/link", "")),
        ("index from a variable", on("/ix/?i=b.html", "")),
        ("proxied, override_charset", on("/pcs/t.html", "")),
        ("proxied, charset kept", on("/pco/t.html", "")),
        ("proxied, charset added", on("/pcl/t.html", "")),
        ("expires modified, proxied", on("/pm/t.html", "")),
        ("X-Accel-Charset recodes", on("/pxa/t.html", "")),
        ("X-Accel-Charset unknown", on("/pxu/t.html", "")),
        ("X-Accel-Charset ignored", on("/pxi/t.html", "")),
        ("X-Accel-Charset from source_charset", on("/pxs/t.html", "")),
        ("X-Accel-Charset, no source", on("/pxn/t.html", "")),
        ("X-Accel-Charset, chunked", on11("/pxc/t.html")),
        ("X-Accel-Charset, gzip", on("/pxg/t.html", "")),
        ("X-Accel-Charset, the last one", on("/px2/t.html", "")),
        ("trailers", on11("/tr/t.html")),
        ("trailers on an error page", on11("/tr/nx")),
        ("trailers, HTTP/1.0", on("/tr/t.html", "")),
        ("trailers off", on11("/trnc/t.html")),
        (
            "if-range against add_header Last-Modified",
            on(
                "/lm/t.html",
                "Range: bytes=0-1\r\nIf-Range: Mon, 28 Sep 1970 06:00:00 GMT\r\n",
            ),
        ),
        ("expires by content type", on("/mapexp/a.html", "")),
        ("expires by content type off", on("/mapexp/b.txt", "")),
    ]
}

/// `max-age=N` in `cache_control` written as `max-age=(Expires - Date)` when N is what the
/// two dates say (within a second); `None` when there is nothing to rewrite.
fn max_age_as_dates(
    cache_control: &str,
    date: Option<&str>,
    expires: Option<&str>,
) -> Option<String> {
    let n: i64 = cache_control.strip_prefix("max-age=")?.parse().ok()?;
    let (date, expires) = (http_date(date?)?, http_date(expires?)?);
    ((expires - date - n).abs() <= 1).then(|| "max-age=(Expires - Date)".to_string())
}

/// Seconds since the epoch of an HTTP date (`Mon, 07 Dec 2026 15:30:00 GMT`), by the
/// runtime's own parser.
fn http_date(s: &str) -> Option<i64> {
    let t = proton_runtime::http::date::parse_http_date(s.as_bytes())?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_secs()).ok()
}

/// What is compared: the status, the headers that matter here, and the body (but not the
/// body of built-in error and redirect pages, which name the server).
fn seen(raw: &[u8], port: u16) -> String {
    let Ok(r) = parse_response(raw) else {
        return format!("unparsable: {:?}", String::from_utf8_lossy(raw));
    };
    let mut out = format!("{}", r.status);
    for h in [
        "content-type",
        "location",
        "expires",
        "cache-control",
        "etag",
        "content-range",
        "x-uri",
        "x-foo",
        "accept-ranges",
        "transfer-encoding",
    ] {
        if let Some(v) = r.header(h) {
            let v = v.replace(&format!(":{port}"), ":PORT");
            // max-age counts from the moment of the request (`expires @15h30m`, `expires
            // 1h`): what is compared is that it says the same as Expires minus Date.
            let v = match (
                h,
                max_age_as_dates(&v, r.header("date"), r.header("expires")),
            ) {
                ("cache-control", Some(v)) => v,
                _ => v,
            };
            // A multipart boundary is the server's own.
            let v = match v.split_once("boundary=") {
                Some((a, _)) => format!("{a}boundary=…"),
                None => v,
            };
            if h == "content-length" && v.is_empty() {
                continue;
            }
            out.push_str(&format!(" | {h}: {v}"));
        }
    }
    if r.header("transfer-encoding").is_some() {
        // The chunks and the trailer section as sent.
        let at = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |i| i + 4);
        let tail = String::from_utf8_lossy(&raw[at..]);
        // A built-in page names the server: keep only what follows the last chunk.
        let tail = if r.status >= 300 {
            tail.rsplit_once("\r\n0\r\n")
                .map_or(tail.to_string(), |(_, t)| t.to_string())
        } else {
            tail.to_string()
        };
        out.push_str(&format!(" | raw: {tail:?}"));
    }
    let body = r.body_text();
    let multipart = r
        .header("content-type")
        .is_some_and(|c| c.starts_with("multipart/"));
    if multipart {
        // Parts without their boundary lines.
        let parts: Vec<&str> = body.lines().filter(|l| !l.starts_with("--")).collect();
        out.push_str(&format!(" | body: {parts:?}"));
    } else if r.status == 200 || r.status == 206 {
        out.push_str(&format!(" | body: {body:?}"));
    } else {
        // Built-in pages name the server; their padding does not.
        out.push_str(&format!(
            " | padded: {}",
            body.contains("a padding to disable MSIE and Chrome friendly error page")
        ));
    }
    // The content length of a page that names the server is the server's own.
    if r.status >= 300 && r.status != 304 {
        out = out
            .split(" | ")
            .filter(|p| !p.starts_with("content-length"))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    out
}

fn files(root: &std::path::Path) {
    let w = |p: &str, body: &[u8]| {
        let path = root.join(p);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).expect("dir");
        }
        std::fs::write(&path, body).expect("file");
        // A fixed time, so that validators and listings are the same for both servers.
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_230_768_000); // 2009-01-01
        let f = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_modified(t).expect("mtime");
    };
    w("t.html", b"XXXXXXXX");
    w("cs/t.html", b"a");
    w("cs/t.foo", b"a");
    w("cs/u.foo2", b"a");
    w("cs/any/t.bin", b"a");
    w("cs/var/t.html", b"a");
    w("rc/t.html", b"XaXbXcXd");
    w("rc/few/t.html", b"XaXbXcXd");
    w("etag/t.html", b"e");
    w("ai/small.txt", b"12");
    w("ai/big.bin", &vec![b'x'; 20_000]);
    w("ai/esc <&>\".txt", b"");
    w(&format!("ai/long-{}", "0".repeat(60)), b"");
    w("mapexp/a.html", b"a");
    w("lm/t.html", b"lm");
    w("ix/b.html", b"ix-b");
    w("tr/t.html", b"tr");
    w("trnc/t.html", b"tr");
    w("mapexp/b.txt", b"b");
    w("sym/real.html", b"r");
    w("symo/real.html", b"r");
    w("symt/t.html", b"tried");
    w("symf/real.html", b"r");
    w("symn/real.html", b"r");
    w("symi/real.html", b"r");
    w("symif/real.html", b"r");
    w("tfre-dir/tfre/a.html", b"under the alias");
    w("symifo/real.html", b"r");
    let link = |to: &str, at: &str| {
        std::os::unix::fs::symlink(to, root.join(at)).expect("symlink");
    };
    link("real.html", "sym/link");
    link("real.html", "symo/link");
    link("real.html", "symi/index.html");
    link("real.html", "symif/link");
    link("real.html", "symifo/link");
    link("/etc/hostname", "symt/t");
    link("t.html", "link");
    link(".", "rootlink");
    std::fs::create_dir_all(root.join("ai/sub")).expect("dir");
    std::fs::create_dir_all(root.join("dir sp")).expect("dir");
    for d in ["ai/sub", "ai", "dir sp"] {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_230_768_000);
        if let Ok(f) = std::fs::File::open(root.join(d)) {
            let _ = f.set_modified(t);
        }
    }
}

fn run(port: u16) -> Vec<(&'static str, String)> {
    cases()
        .into_iter()
        .map(|(name, raw)| {
            let (bytes, _) = raw_exchange(port, raw.as_bytes(), Duration::from_secs(10));
            (name, seen(&bytes, port))
        })
        .collect()
}

#[test]
fn static_files_and_headers_as_nginx() {
    // The date arithmetic that keeps max-age comparable between the two servers' runs.
    assert_eq!(http_date("Thu, 01 Jan 1970 00:01:00 GMT"), Some(60));
    assert_eq!(
        http_date("Mon, 07 Dec 2026 15:30:00 GMT"),
        Some(1_796_657_400)
    );
    assert_eq!(
        max_age_as_dates(
            "max-age=46652",
            Some("Mon, 07 Dec 2026 02:32:28 GMT"),
            Some("Mon, 07 Dec 2026 15:30:00 GMT")
        )
        .as_deref(),
        Some("max-age=(Expires - Date)")
    );
    let t = TempDir::new("static-headers");
    let root = t.path().join("html");
    files(&root);
    let root = root.display().to_string();
    let servers = |port: u16| {
        SERVERS
            .replace("{port}", &port.to_string())
            .replace("{root}", &root)
    };
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        SERVERS.replace("{root}", &root)
    );
    let p = Proton::start(t.path(), &conf, 1);
    let ours = run(p.port);

    // What Proton must answer whether or not nginx is here to compare with.
    let get = |name: &str| {
        ours.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    };
    for (name, want) in [
        ("charset", "content-type: text/html; charset=utf-8"),
        (
            "charset wrong type",
            "content-type: application/octet-stream |",
        ),
        ("charset_types", "content-type: text/foo; charset=utf-8"),
        (
            "charset on an error page",
            "404 | content-type: text/html; charset=utf-8",
        ),
        (
            "charset_types *",
            "content-type: application/octet-stream; charset=utf-8",
        ),
        ("charset variable", "charset=koi8-r"),
        ("recode", "body: \"YaYbYcYd\""),
        ("recode range", "body: \"aYb\""),
        ("autoindex xml", "content-type: text/xml; charset=utf-8"),
        ("autoindex jsonp", "body: \"/* callback */\\r\\ncb_1(["),
        ("autoindex jsonp plain", "content-type: application/json"),
        ("autoindex jsonp bad", "400"),
        ("expires daily", "expires: "),
        (
            "expires variable off",
            "200 | content-type: text/plain | body",
        ),
        ("absolute_redirect off", "location: /x |"),
        ("port_in_redirect off", "location: http://on.test/x"),
        ("server_name_in_redirect", "location: http://on.test:PORT/x"),
        (
            "directory redirect escaped",
            "location: http://on.test:PORT/dir%20sp/?a=b",
        ),
        ("auto redirect", "location: http://on.test:PORT/auto/?a=1"),
        ("msie_refresh", "URL=/x%20y\\\""),
        ("if-match", "412"),
        ("if-unmodified-since old", "412"),
        ("if-unmodified-since new", "200"),
        ("if-range date", "206"),
        ("if-range wrong date", "200"),
        ("error_page on a redirect", "location: /x"),
        ("underscore dropped", "x-foo: [] |"),
        ("merge_slashes of the default server", "x-uri: /b |"),
        ("ignore_invalid_headers off", "x-foo: [2]"),
        ("error page padding", "padded: true"),
        ("disable_symlinks on", "403"),
        ("disable_symlinks on, no link", "200"),
        ("disable_symlinks if_not_owner", "200"),
        ("disable_symlinks try_files", "body: \"tried\""),
        ("disable_symlinks from", "200"),
        ("disable_symlinks not from", "404"),
        ("disable_symlinks index", "403"),
        ("disable_symlinks off", "200"),
        ("index from a variable", "body: \"ix-b\""),
        (
            "proxied, override_charset",
            "content-type: text/html; charset=b | etag: \"495c0780-8\" | accept-ranges: bytes | body: \"XaXbXcXd\"",
        ),
        ("proxied, charset kept", "charset=a | etag"),
        ("proxied, charset added", "content-type: text/html; charset=utf-8"),
        (
            "expires modified, proxied",
            "expires: Mon, 28 Sep 1970 06:34:08 GMT | cache-control: no-cache",
        ),
        (
            "trailers",
            "raw: \"2\\r\\ntr\\r\\n0\\r\\nX-T: [on.test]\\r\\nX-Always: a\\r\\nX-S: text/html\\r\\nX-ST: [on.test]\\r\\n\\r\\n\"",
        ),
        ("trailers on an error page", "X-Always: a\\r\\n\\r\\n\""),
        ("trailers, HTTP/1.0", "body: \"tr\""),
        ("trailers off", "body: \"tr\""),
        ("if-range against add_header Last-Modified", "206"),
        ("expires by content type", "cache-control: no-cache"),
        ("expires by content type off", "x-foo: [text/plain] |"),
    ] {
        let got = get(name);
        assert!(
            got.contains(want),
            "{name}: {got:?} lacks {want:?}\n{}",
            p.logs()
        );
    }
    assert!(!get("add_header etag empty").contains("etag:"));
    assert!(!get("max_ranges").contains("206"));
    assert!(!get("trailers, HTTP/1.0").contains("transfer-encoding"));
    assert!(!get("trailers off").contains("transfer-encoding"));

    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, servers);
    let theirs = run(n.port());
    let diffs: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .filter(|(a, b)| a.1 != b.1)
        .map(|((name, a), (_, b))| format!("{name}\n  proton: {a}\n  nginx:  {b}"))
        .collect();
    assert!(
        diffs.is_empty(),
        "differences with nginx:\n{}",
        diffs.join("\n")
    );
}

/// With `merge_slashes off` in the default server, an empty segment is a segment: `..`
/// removes it (nginx's merge_slashes.t: `/foo//../bar` is `/foo/bar`).
#[test]
fn merge_slashes_off_keeps_empty_segments() {
    let t = TempDir::new("merge-slashes");
    let conf = "worker_processes 1;\nerror_log {dir}/logs/error.log info;\nevents {}\nhttp {\naccess_log off;\n\
        server { listen 127.0.0.1:{port}; merge_slashes off;\n\
        location / { add_header X-URI \"x $uri x\"; return 204; } }\n}\n";
    let p = Proton::start(t.path(), conf, 1);
    for (path, want) in [
        ("/foo//../bar", "x /foo/bar x"),
        ("/foo///../bar", "x /foo//bar x"),
    ] {
        let raw = format!("GET {path} HTTP/1.0\r\n\r\n");
        let (bytes, _) = raw_exchange(p.port, raw.as_bytes(), Duration::from_secs(10));
        // nginx answers HTTP/1.1 to an HTTP/1.0 request.
        assert!(bytes.starts_with(b"HTTP/1.1 204 "), "{path}");
        let r = parse_response(&bytes).unwrap_or_else(|e| panic!("{path}: {e}\n{}", p.logs()));
        assert_eq!(r.header("x-uri"), Some(want), "{path}");
    }
}

/// `$sent_http_NAME` in an access log: the headers of the response as sent (before, a
/// compile error: "not supported yet").
#[test]
fn access_log_has_sent_headers() {
    let t = TempDir::new("sent-http");
    std::fs::create_dir_all(t.path().join("html")).expect("html");
    std::fs::write(t.path().join("html/a.html"), "a").expect("file");
    let conf = "worker_processes 1;\nerror_log {dir}/logs/error.log info;\nevents {}\nhttp {\n\
        log_format s '$uri ct=$sent_http_content_type loc=$sent_http_location x=$sent_http_x_test';\n\
        access_log {dir}/logs/sent.log s;\n\
        server { listen 127.0.0.1:{port}; root {dir}/html;\n\
        location /r { return 302 /a.html; }\n\
        location / { add_header X-Test yes; } }\n}\n";
    let p = Proton::start(t.path(), conf, 1);
    for path in ["/a.html", "/r"] {
        let raw = format!("GET {path} HTTP/1.0\r\n\r\n");
        let _ = raw_exchange(p.port, raw.as_bytes(), Duration::from_secs(10));
    }
    let log = t.path().join("logs/sent.log");
    let mut text = String::new();
    let complete = proton_tests::wait_until(Duration::from_secs(10), || {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().count() >= 2
    });
    assert!(complete, "{text}\n{}", p.logs());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "/a.html ct=text/html loc=- x=yes", "{text}");
    assert!(
        lines[1].starts_with("/r ct=text/html loc=http://"),
        "{text}"
    );
    assert!(lines[1].ends_with("/a.html x=-"), "{text}");
}
