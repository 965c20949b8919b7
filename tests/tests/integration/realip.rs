//! nginx's realip module: `set_real_ip_from`, `real_ip_header` (X-Real-IP, X-Forwarded-For,
//! any header), `real_ip_recursive`, `$realip_remote_addr`, and `allow`/`deny` seeing the
//! real client. One table of requests against proton-run and, where Debian's nginx is
//! installed, against nginx.

use proton_tests::{
    assert_same_as_nginx, nginx_binary, parse_response, raw_exchange, Nginx, Proton, TempDir,
};
use std::time::Duration;

/// Static files (realip's location-level settings apply in nginx's preaccess phase, after
/// the rewrite phase: a `return` answers before them) and a server-level `return`.
fn server(port: u16, root: &str) -> String {
    format!(
        r#"
    set_real_ip_from 127.0.0.1;
    set_real_ip_from 10.0.1.0/24;
    add_header X-IP "$remote_addr $realip_remote_addr";
    server {{
        listen 127.0.0.1:{port};
        server_name realip.test;
        root {root};
        location / {{ }}
        location /custom {{ real_ip_header X-Client; alias {root}/f; }}
        location /xff {{ real_ip_header X-Forwarded-For; alias {root}/f; }}
        location /rec {{
            real_ip_header X-Forwarded-For;
            real_ip_recursive on;
            alias {root}/f;
        }}
        location /acl {{
            real_ip_header X-Forwarded-For;
            allow 192.0.2.1;
            deny all;
            alias {root}/f;
        }}
        location /untrusted {{ set_real_ip_from 10.9.9.9; alias {root}/f; }}
        location /ret {{ real_ip_header X-Forwarded-For; return 200 "returned"; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name early.test;
        real_ip_header X-Forwarded-For;
        return 200 "early";
    }}
"#
    )
}

const CASES: &[(&str, &str)] = &[
    ("/f", ""),
    ("/f", "X-Real-IP: 192.0.2.1\r\n"),
    ("/f", "X-Real-IP: not-an-address\r\n"),
    ("/f", "X-Real-IP: 2001:db8::1\r\n"),
    ("/custom", "X-Client: 192.0.2.7\r\n"),
    ("/custom", "X-Real-IP: 192.0.2.7\r\n"),
    ("/xff", "X-Forwarded-For: 10.0.0.1, 192.0.2.1\r\n"),
    (
        "/xff",
        "X-Forwarded-For: 192.0.2.1, 10.0.1.1, 127.0.0.1\r\n",
    ),
    (
        "/rec",
        "X-Forwarded-For: 10.0.1.1, 192.0.2.1, 127.0.0.1\r\n",
    ),
    (
        "/rec",
        "X-Forwarded-For: 192.0.2.9, 10.0.1.1, 127.0.0.1\r\n",
    ),
    (
        "/rec",
        "X-Forwarded-For: 10.0.1.1\r\nX-Forwarded-For: 192.0.2.1, 127.0.0.1\r\n",
    ),
    ("/acl", "X-Forwarded-For: 192.0.2.1\r\n"),
    ("/acl", "X-Forwarded-For: 192.0.2.2\r\n"),
    ("/acl", ""),
    ("/untrusted", "X-Real-IP: 192.0.2.1\r\n"),
    ("/ret", "X-Forwarded-For: 192.0.2.1\r\n"),
    ("early.test", "X-Forwarded-For: 192.0.2.1\r\n"),
];

/// `uri` is a path on realip.test, or another host name (its `/`).
fn ask(port: u16, uri: &str, headers: &str) -> String {
    let (host, path) = if uri.starts_with('/') {
        ("realip.test", uri)
    } else {
        (uri, "/")
    };
    let raw = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n{headers}\r\n");
    let (bytes, _) = raw_exchange(port, raw.as_bytes(), Duration::from_secs(10));
    match parse_response(&bytes) {
        Ok(r) => format!(
            "{} [{}] {}",
            r.status,
            r.header("x-ip").unwrap_or("-"),
            if r.status == 200 {
                r.body_text()
            } else {
                String::new()
            }
            .trim_end()
        ),
        Err(e) => format!("unparsable ({e})"),
    }
}

#[test]
fn realip_as_nginx() {
    let t = TempDir::new("realip");
    let root = t.path().join("html");
    std::fs::create_dir_all(&root).expect("root");
    std::fs::write(root.join("f"), "file\n").expect("file");
    let root = root.display().to_string();
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        server(0, &root).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    let ours: Vec<String> = CASES.iter().map(|(u, h)| ask(p.port, u, h)).collect();
    // What Proton must answer even where nginx is not installed.
    assert_eq!(ours[0], "200 [127.0.0.1 127.0.0.1] file");
    assert_eq!(ours[1], "200 [192.0.2.1 127.0.0.1] file");
    assert_eq!(ours[8], "200 [192.0.2.1 127.0.0.1] file");
    assert_eq!(ours[11], "200 [192.0.2.1 127.0.0.1] file");
    assert!(ours[12].starts_with("403"), "{}", ours[12]);
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| server(port, &root));
    let theirs: Vec<String> = CASES.iter().map(|(u, h)| ask(n.port(), u, h)).collect();
    assert_same_as_nginx(CASES, &ours, &theirs, &p.logs());
}
