//! nginx's access module and `limit_except`, as nginx 1.22 answers: `allow`/`deny` in order
//! (first match decides), checked after the location's rewrite directives and before the
//! content handler; `limit_except` gives the methods it does not list the block's
//! configuration, where the location's rewrite directives do not run. One table of requests
//! against proton-run and, where Debian's nginx is installed, against nginx.

use proton_tests::{
    assert_same_as_nginx, nginx_binary, parse_response, raw_exchange, Nginx, Proton, TempDir,
};
use std::time::Duration;

fn server(port: u16, root: &str) -> String {
    format!(
        r#"
    server {{
        listen 127.0.0.1:{port};
        server_name access.test;
        root {root};
        location /open {{ return 200 "open\n"; }}
        location /rewrite-first {{ deny all; return 200 "rewrite phase first\n"; }}
        location /denied {{ deny all; }}
        location /local {{ allow 127.0.0.1; deny all; }}
        location /order {{ deny 127.0.0.0/8; allow all; }}
        location /v6only {{ allow ::1; deny all; }}
        location /wide {{ allow 10.0.0.0/8; allow 127.0.0.0/24; deny all; }}
        location /unixonly {{ allow unix:; deny all; }}
        location /inherit/ {{
            deny all;
            location /inherit/own {{ allow all; }}
            location /inherit/none {{ }}
        }}
        location /lmt {{ limit_except GET {{ deny all; }} }}
        location /lmtret {{ limit_except GET {{ deny all; }} return 200 "script ran\n"; }}
        location /lmtall {{ deny all; limit_except GET {{ allow all; }} }}
        location /lmtpost {{ limit_except POST PUT {{ deny all; }} }}
        location /lmtloc {{
            proxy_pass http://127.0.0.1:{port};
            limit_except GET {{ allow 127.0.0.1; deny all; }}
        }}
        location /lmtproxy {{
            limit_except GET {{ proxy_pass http://127.0.0.1:{port}; }}
            return 200 "own\n";
        }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name 127.0.0.1;
        location / {{ return 200 "upstream $request_method $uri\n"; }}
    }}
"#
    )
}

const URIS: &[&str] = &[
    "/open",
    "/rewrite-first",
    "/denied",
    "/local",
    "/order",
    "/v6only",
    "/wide",
    "/unixonly",
    "/inherit/own",
    "/inherit/none",
    "/lmt",
    "/lmtret",
    "/lmtall",
    "/lmtpost",
    "/lmtproxy",
    "/lmtloc",
];

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE"];

fn ask(port: u16, method: &str, uri: &str) -> String {
    let raw = format!("{method} {uri} HTTP/1.0\r\nHost: access.test\r\n\r\n");
    let (bytes, _) = raw_exchange(port, raw.as_bytes(), Duration::from_secs(10));
    if method == "HEAD" {
        // No body follows the head: the status is what there is to compare.
        let text = String::from_utf8_lossy(&bytes);
        return text.split(' ').nth(1).unwrap_or("none").to_string();
    }
    match parse_response(&bytes) {
        Ok(r) if r.status == 200 => format!("200 {:?}", r.body_text()),
        Ok(r) => r.status.to_string(),
        Err(e) => format!("unparsable ({e})"),
    }
}

#[test]
fn allow_deny_and_limit_except_as_nginx() {
    let t = TempDir::new("access");
    let root = t.path().join("html");
    for f in [
        "denied", "local", "order", "v6only", "wide", "unixonly", "lmt", "lmtall", "lmtpost",
    ] {
        std::fs::create_dir_all(&root).expect("root");
        std::fs::write(root.join(f), format!("{f}\n")).expect("file");
    }
    std::fs::create_dir_all(root.join("inherit")).expect("dir");
    std::fs::write(root.join("inherit/own"), "own\n").expect("file");
    std::fs::write(root.join("inherit/none"), "none\n").expect("file");
    let root = root.display().to_string();
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        server(0, &root).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    let cases: Vec<(String, String)> = URIS
        .iter()
        .flat_map(|u| METHODS.iter().map(move |m| (m.to_string(), u.to_string())))
        .collect();
    let ours: Vec<String> = cases.iter().map(|(m, u)| ask(p.port, m, u)).collect();
    let find = |m: &str, u: &str| {
        let i = cases
            .iter()
            .position(|(a, b)| a == m && b == u)
            .expect("case");
        ours[i].clone()
    };
    // What Proton must do even where nginx is not installed.
    assert_eq!(
        find("GET", "/rewrite-first"),
        "200 \"rewrite phase first\\n\""
    );
    assert_eq!(find("GET", "/denied"), "403");
    assert_eq!(find("GET", "/local"), "200 \"local\\n\"");
    assert_eq!(find("GET", "/order"), "403");
    assert_eq!(find("GET", "/v6only"), "403");
    assert_eq!(find("GET", "/inherit/own"), "200 \"own\\n\"");
    assert_eq!(find("GET", "/inherit/none"), "403");
    assert_eq!(find("HEAD", "/lmt"), "200");
    assert_eq!(find("POST", "/lmt"), "403");
    assert_eq!(find("GET", "/lmtret"), "200 \"script ran\\n\"");
    assert_eq!(find("POST", "/lmtret"), "403");
    assert_eq!(find("GET", "/lmtall"), "403");
    assert_eq!(
        find("POST", "/lmtproxy"),
        "200 \"upstream POST /lmtproxy\\n\""
    );
    assert!(
        p.logs()
            .contains("access forbidden by rule, client: 127.0.0.1"),
        "{}",
        p.logs()
    );
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| server(port, &root));
    let theirs: Vec<String> = cases.iter().map(|(m, u)| ask(n.port(), m, u)).collect();
    assert_same_as_nginx(&cases, &ours, &theirs, &p.logs());
}
