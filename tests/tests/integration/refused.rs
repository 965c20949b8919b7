//! Requests the parser refuses, as nginx answers and logs them: the request exists with
//! what of its head was understood, the default server's `error_page` applies (nginx-tests'
//! http_absolute_redirect.t "invalid host"), `$request` is the line as sent, and a variable
//! that exists with an empty value is logged empty while a missing one is logged `-`
//! (http_variables.t "no uri"). proton-run and nginx 1.22 must answer and log alike.

use std::path::Path;
use std::time::Duration;

use proton_tests::{
    assert_same_as_nginx, nginx_binary, raw_exchange, wait_until, Nginx, Proton, TempDir,
};

const FORMAT: &str = "$status|$request|$uri|$args|$http_x_empty|$http_x_missing|$arg_a";

fn server(port: u16, log: &Path, pages: bool) -> String {
    let pages = if pages {
        "error_page 400 /r; error_page 405 /e;"
    } else {
        ""
    };
    format!(
        r#"
    log_format refused "{FORMAT}";
    server {{
        listen 127.0.0.1:{port};
        server_name refused.test;
        access_log {log} refused;
        absolute_redirect on;
        {pages}
        location / {{ return 200 "ok\n"; }}
        location /r {{ return 301 /redirect; }}
        location /e {{ return 200 "error page\n"; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name plain.test;
        access_log {log} refused;
        location / {{ return 200 "plain\n"; }}
    }}
"#,
        log = log.display()
    )
}

/// What a client and the access log see, with the port (which differs) taken out.
fn exchange(port: u16, log: &Path, raw: &str) -> String {
    let before = std::fs::read_to_string(log).map_or(0, |s| s.lines().count());
    let (bytes, _) = raw_exchange(port, raw.as_bytes(), Duration::from_secs(10));
    let text = String::from_utf8_lossy(&bytes);
    let status = text.lines().next().unwrap_or("").to_string();
    let location = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("location:"))
        .unwrap_or("")
        .replace(&format!(":{port}"), ":PORT");
    let closed = text
        .lines()
        .any(|l| l.eq_ignore_ascii_case("connection: close"));
    let mut line = String::new();
    wait_until(Duration::from_secs(10), || {
        let all = std::fs::read_to_string(log).unwrap_or_default();
        match all.lines().nth(before) {
            Some(l) => {
                line = l.to_string();
                true
            }
            None => false,
        }
    });
    format!("{status} [{location}] close={closed} log: {line}")
}

const REQUESTS: &[&str] = &[
    // Invalid Host: the default server's error_page 400, a redirect built on the local
    // address since the request has no usable host.
    "GET /x?a=1 HTTP/1.0\r\nHost: .\r\n\r\n",
    // A URI that climbs above the root: 400 with an empty (not missing) $uri, in the
    // default server whatever the Host (nginx refuses it with the request line).
    "GET /../bad_uri HTTP/1.0\r\n\r\n",
    "GET /../bad_uri HTTP/1.0\r\nHost: plain.test\r\n\r\n",
    // HTTP/1.1 without Host.
    "GET /x HTTP/1.1\r\n\r\n",
    // TRACE: 405.
    "TRACE /x HTTP/1.1\r\nHost: refused.test\r\n\r\n",
    // Well-formed: an empty header and an empty argument exist, empty arguments do not;
    // absolute-form is logged as sent.
    "GET /x?a= HTTP/1.0\r\nX-Empty:\r\n\r\n",
    "GET /x? HTTP/1.0\r\n\r\n",
    "GET http://refused.test/x?b=2 HTTP/1.0\r\n\r\n",
];

/// Proton's answers (and nginx's, when it is installed) to [`REQUESTS`].
fn run(pages: bool) -> (Vec<String>, Option<Vec<String>>, String) {
    let t = TempDir::new("refused");
    let log = t.path().join("refused.log");
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\n{}}}\n",
        server(0, &log, pages).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    let ours = REQUESTS.iter().map(|r| exchange(p.port, &log, r)).collect();
    let theirs = nginx_binary().map(|nginx| {
        let nt = TempDir::new("refused-nginx");
        let nlog = nt.path().join("refused.log");
        let n = Nginx::start(&nginx, |port| server(port, &nlog, pages));
        REQUESTS
            .iter()
            .map(|r| exchange(n.port(), &nlog, r))
            .collect()
    });
    (ours, theirs, p.logs())
}

fn same_as_nginx(ours: &[String], theirs: Option<Vec<String>>, logs: &str) {
    if let Some(theirs) = theirs {
        assert_same_as_nginx(REQUESTS, ours, &theirs, logs);
    }
}

#[test]
fn refused_requests_go_through_the_default_servers_error_page_as_nginx() {
    let (ours, theirs, logs) = run(true);
    // What Proton must get right even where nginx is not installed.
    assert!(
        ours[0].starts_with("HTTP/1.1 301")
            && ours[0].contains("[Location: http://127.0.0.1:PORT/redirect]")
            && ours[0].contains("log: 301|GET /x?a=1 HTTP/1.0|/r|-|-|-|-"),
        "{}\n{logs}",
        ours[0]
    );
    assert!(ours[2].starts_with("HTTP/1.1 301"), "{}", ours[2]);
    assert!(
        ours[4].starts_with("HTTP/1.1 405") && ours[4].contains("|/e|"),
        "{}",
        ours[4]
    );
    same_as_nginx(&ours, theirs, &logs);
}

#[test]
fn refused_requests_are_logged_as_nginx() {
    let (ours, theirs, logs) = run(false);
    assert!(
        ours[1].contains("log: 400|GET /../bad_uri HTTP/1.0||-|-|-|-"),
        "{}\n{logs}",
        ours[1]
    );
    assert!(
        ours[5].contains("log: 200|GET /x?a= HTTP/1.0|/x|a=||-|"),
        "{}",
        ours[5]
    );
    assert!(
        ours[6].contains("log: 200|GET /x? HTTP/1.0|/x|-|"),
        "{}",
        ours[6]
    );
    assert!(
        ours[7].contains("log: 200|GET http://refused.test/x?b=2 HTTP/1.0|"),
        "{}",
        ours[7]
    );
    same_as_nginx(&ours, theirs, &logs);
}

/// error_page makes the request a GET, also towards an upstream (nginx's
/// ngx_http_send_error_page); a request the parser refused has no method of its own.
#[test]
fn error_pages_proxy_as_get_as_nginx() {
    let server = |port: u16| {
        format!(
            r#"
    server {{
        listen 127.0.0.1:{port};
        server_name refused.test;
        root /nonexistent;
        error_page 400 404 405 /ep;
        location = /ep {{ proxy_pass http://127.0.0.1:{port}/echo; }}
        location / {{ }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name 127.0.0.1;
        location /echo {{ return 200 "$request_method $uri\n"; }}
    }}
"#
        )
    };
    let requests = [
        "G@T / HTTP/1.1\r\nHost: refused.test\r\nConnection: close\r\n\r\n",
        "TRACE / HTTP/1.1\r\nHost: refused.test\r\nConnection: close\r\n\r\n",
        "POST /missing HTTP/1.1\r\nHost: refused.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab",
        "HEAD /missing HTTP/1.1\r\nHost: refused.test\r\nConnection: close\r\n\r\n",
    ];
    let ask = |port: u16, raw: &str| {
        let (bytes, _) = raw_exchange(port, raw.as_bytes(), Duration::from_secs(10));
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let status = text.lines().next().unwrap_or("").to_string();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        format!("{status} | {body:?}")
    };
    let t = TempDir::new("refused-proxy");
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        server(0).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    let ours: Vec<String> = requests.iter().map(|r| ask(p.port, r)).collect();
    assert!(ours[0].contains("GET /echo"), "{}\n{}", ours[0], p.logs());
    assert!(ours[2].contains("GET /echo"), "{}\n{}", ours[2], p.logs());
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, server);
    let theirs: Vec<String> = requests.iter().map(|r| ask(n.port(), r)).collect();
    assert_same_as_nginx(&requests, &ours, &theirs, &p.logs());
}
