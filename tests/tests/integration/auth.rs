//! nginx's access phase beyond `allow`/`deny`: `auth_basic` with htpasswd files in every
//! hash format nginx reads, `satisfy any|all`, `auth_request` (a subrequest to an auth
//! service, here the server itself through proxy_pass) with `auth_request_set`, and
//! `auth_delay`. One table of requests against proton-run and, where Debian's nginx is
//! installed, against nginx; then what nginx's answers cannot show (waiting without
//! blocking the worker, a client that leaves, the log lines).

use proton_tests::{
    assert_same_as_nginx, nginx_binary, parse_response, raw_exchange, wait_until, Nginx, Proton,
    TempDir,
};
use std::time::{Duration, Instant};

/// `password` in each format (made with perl's crypt, `openssl passwd -1/-5/-6/-apr1`,
/// htpasswd's bcrypt and libxcrypt's yescrypt), and nginx's own schemes.
const HTPASSWD: &str = "# users\n\
des:sa3tHJ3/KuYvI\n\
md5:$1$salt$qJH7.N4xYta3aEG/dfqo/0\n\
sha256:$5$salt$Gcm6FsVtF/Qa77ZKD.iwsJlCVPY0XSMgLJL0Hnww/c1\n\
sha512:$6$salt$IxDD3jeSOb5eB1CX5LBsqZFVkJdido3OUILO5Ifz5iwMuTS4XMS130MTSuDDl3aCI6WouIL9AjRbLCelDCy.g.\n\
bcrypt:$2y$05$bvIG6Nmid91Mu9RcmmWZfO5HJIMCT8riNW0hEp8f6/FuA2/mHZFpe\n\
yescrypt:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$tnSYvahCwPBHKZUspmcxMfb0.WiB9W.zEaKlOBL35rC\n\
apr1:$apr1$salt$Xxd1irWT9ycqoYxGFn4cb.\n\
plain:{PLAIN}password:comment field\n\
sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n\
ssha:{SSHA}yI6cZwQadOA1e+/f+T+H3eCQQhRzYWx0\n\
broken:$1$\n\
last:{PLAIN}password";

fn server(port: u16, root: &str) -> String {
    format!(
        r#"
    server {{
        listen 127.0.0.1:{port};
        server_name auth.test;
        root {root};
        location / {{
            auth_basic "realm of $host";
            auth_basic_user_file {root}/htpasswd;
            location /open/ {{ auth_basic off; }}
            location /var/ {{ auth_basic_user_file {root}/$arg_f; }}
        }}
        location /missing/ {{ auth_basic "x"; auth_basic_user_file {root}/nope; }}
        location /any-allow/ {{ satisfy any; allow 127.0.0.1; deny all; auth_basic "r"; auth_basic_user_file {root}/htpasswd; }}
        location /any-deny/ {{ satisfy any; deny all; auth_basic "r"; auth_basic_user_file {root}/htpasswd; }}
        location /all-deny/ {{ deny all; auth_basic "r"; auth_basic_user_file {root}/htpasswd; }}
        location /ar/ {{
            auth_request /auth;
            auth_request_set $who $upstream_http_x_user;
            auth_request_set $code $upstream_status;
            add_header X-Who "$who $code" always;
            location /ar/off/ {{ auth_request off; }}
        }}
        location = /auth {{
            internal;
            proxy_pass http://127.0.0.1:{port}/check$request_uri;
            proxy_set_header Host auth.backend;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location /ar-static/ {{ auth_request /secret.txt; }}
        location /ar-any/ {{ satisfy any; deny all; auth_request /auth; }}
        location /ar-basic/ {{
            satisfy all;
            auth_basic "r";
            auth_basic_user_file {root}/htpasswd;
            auth_request /auth;
        }}
        location /ar-fallback/ {{
            auth_request /auth;
            auth_request_set $who $upstream_http_x_user;
            error_page 404 = /fallback;
        }}
        location = /fallback {{ add_header X-Fallback "$who"; return 200 "fallback\n"; }}
        location /pe/ {{
            proxy_pass http://127.0.0.1:{port}/missing/;
            proxy_set_header Host auth.backend;
            proxy_intercept_errors on;
            error_page 404 = /pe-fallback;
        }}
        location = /pe-fallback {{
            auth_request /auth;
            auth_request_set $who $upstream_http_x_user;
            add_header X-Who "$who" always;
            alias {root}/f;
        }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name auth.backend;
        location /missing/ {{ return 404; }}
        location /check/ {{
            if ($request_uri ~ "deny") {{ return 403; }}
            if ($request_uri ~ "two") {{
                add_header WWW-Authenticate "Bearer realm=one" always;
                add_header WWW-Authenticate "Basic realm=two" always;
                return 401;
            }}
            if ($request_uri ~ "who") {{
                add_header WWW-Authenticate "Bearer realm=one" always;
                return 401;
            }}
            if ($request_uri ~ "teapot") {{ return 418; }}
            if ($request_method != GET) {{ return 405; }}
            if ($http_content_length) {{ return 400; }}
            add_header X-User "alice";
            return 204;
        }}
    }}
"#
    )
}

/// (method, uri, user:password or "", body)
type Case = (&'static str, &'static str, &'static str, &'static str);

const CASES: &[Case] = &[
    ("GET", "/f", "", ""),
    ("GET", "/f", "des:password", ""),
    ("GET", "/f", "des:passwore", ""),
    ("GET", "/f", "md5:password", ""),
    ("GET", "/f", "md5:wrong", ""),
    ("GET", "/f", "sha256:password", ""),
    ("GET", "/f", "sha512:password", ""),
    ("GET", "/f", "sha512:Password", ""),
    ("GET", "/f", "bcrypt:password", ""),
    ("GET", "/f", "bcrypt:wrong", ""),
    ("GET", "/f", "yescrypt:password", ""),
    ("GET", "/f", "yescrypt:wrong", ""),
    ("GET", "/f", "apr1:password", ""),
    ("GET", "/f", "apr1:wrong", ""),
    ("GET", "/f", "plain:password", ""),
    ("GET", "/f", "sha:password", ""),
    ("GET", "/f", "ssha:password", ""),
    ("GET", "/f", "ssha:passwor", ""),
    ("GET", "/f", "broken:1", ""),
    ("GET", "/f", "last:password", ""),
    ("GET", "/f", "nobody:password", ""),
    ("GET", "/f", "users:password", ""),
    ("GET", "/f", ":password", ""),
    ("GET", "/f", "plain", ""),
    ("GET", "/open/f", "", ""),
    ("GET", "/var/f?f=htpasswd", "plain:password", ""),
    ("GET", "/var/f?f=nope", "plain:password", ""),
    ("GET", "/missing/f", "plain:password", ""),
    ("GET", "/missing/f", "", ""),
    ("GET", "/any-allow/f", "", ""),
    ("GET", "/any-deny/f", "", ""),
    ("GET", "/any-deny/f", "plain:password", ""),
    ("GET", "/any-deny/f", "plain:wrong", ""),
    ("GET", "/all-deny/f", "plain:password", ""),
    ("GET", "/ar/f", "", ""),
    ("HEAD", "/ar/f", "", ""),
    ("POST", "/ar/f", "", "a body the auth service must not get"),
    ("GET", "/ar/deny", "", ""),
    ("GET", "/ar/who", "", ""),
    ("GET", "/ar/teapot", "", ""),
    ("GET", "/ar/off/f", "", ""),
    ("GET", "/ar-static/f", "", ""),
    ("GET", "/ar-any/f", "", ""),
    ("GET", "/ar-any/deny", "", ""),
    ("GET", "/ar-any/who", "", ""),
    ("GET", "/ar-basic/f", "", ""),
    ("GET", "/ar-basic/f", "plain:password", ""),
    ("GET", "/ar-basic/deny", "plain:password", ""),
    ("GET", "/ar-fallback/none", "", ""),
    ("GET", "/pe/x", "", ""),
    ("GET", "/pe/deny", "", ""),
    ("POST", "/pe/x", "", "a body the upstream reads"),
];

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn ask(port: u16, (method, uri, cred, body): &Case) -> String {
    let mut raw = format!("{method} {uri} HTTP/1.0\r\nHost: auth.test\r\n");
    if !cred.is_empty() {
        raw.push_str(&format!("Authorization: Basic {}\r\n", b64(cred)));
    }
    if !body.is_empty() {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    let (bytes, _) = raw_exchange(port, raw.as_bytes(), Duration::from_secs(10));
    if *method == "HEAD" {
        let text = String::from_utf8_lossy(&bytes);
        return text.split(' ').nth(1).unwrap_or("none").to_string();
    }
    match parse_response(&bytes) {
        Ok(r) => {
            let mut out = r.status.to_string();
            let text = String::from_utf8_lossy(&bytes).to_string();
            for line in text.lines() {
                let lower = line.to_ascii_lowercase();
                for h in ["www-authenticate:", "x-who:", "x-fallback:"] {
                    if lower.starts_with(h) {
                        out.push_str(&format!(" [{line}]"));
                    }
                }
            }
            if r.status == 200 {
                out.push_str(&format!(" {:?}", r.body_text()));
            }
            out
        }
        Err(e) => format!("unparsable ({e})"),
    }
}

fn site(t: &TempDir) -> String {
    let root = t.path().join("html");
    for d in [
        "",
        "open",
        "var",
        "missing",
        "any-allow",
        "any-deny",
        "all-deny",
        "ar",
        "ar/off",
        "ar-static",
        "ar-any",
        "ar-basic",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("dir");
        std::fs::write(root.join(d).join("f"), format!("file in /{d}\n")).expect("file");
    }
    std::fs::write(root.join("htpasswd"), HTPASSWD).expect("htpasswd");
    std::fs::write(root.join("secret.txt"), "INVISIBLE\n").expect("file");
    // A user file only root could read is not what the test is about: keep it readable by
    // nginx's worker user too.
    root.display().to_string()
}

#[test]
fn auth_basic_satisfy_and_auth_request_as_nginx() {
    let t = TempDir::new("auth");
    let root = site(&t);
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        server(0, &root).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    let ours: Vec<String> = CASES.iter().map(|c| ask(p.port, c)).collect();
    let find = |m: &str, u: &str, c: &str| {
        let i = CASES
            .iter()
            .position(|x| x.0 == m && x.1 == u && x.2 == c)
            .expect("case");
        ours[i].clone()
    };
    // What Proton must do even where nginx is not installed.
    assert_eq!(
        find("GET", "/f", ""),
        "401 [WWW-Authenticate: Basic realm=\"realm of auth.test\"]"
    );
    for user in [
        "des", "md5", "sha256", "sha512", "bcrypt", "apr1", "plain", "sha", "ssha", "last",
    ] {
        let cred = format!("{user}:password");
        let i = CASES
            .iter()
            .position(|x| x.1 == "/f" && x.2 == cred)
            .expect("case");
        assert_eq!(ours[i], "200 \"file in /\\n\"", "{user}");
    }
    for bad in [
        "des:passwore",
        "md5:wrong",
        "bcrypt:wrong",
        "broken:1",
        "nobody:password",
    ] {
        assert!(
            find("GET", "/f", bad).starts_with("401 [WWW-Authenticate"),
            "{bad}"
        );
    }
    assert_eq!(find("GET", "/missing/f", "plain:password"), "403");
    assert_eq!(
        find("GET", "/any-allow/f", ""),
        "200 \"file in /any-allow\\n\""
    );
    assert!(find("GET", "/any-deny/f", "").starts_with("401 "));
    assert_eq!(
        find("GET", "/any-deny/f", "plain:password"),
        "200 \"file in /any-deny\\n\""
    );
    assert_eq!(find("GET", "/all-deny/f", "plain:password"), "403");
    assert_eq!(
        find("GET", "/ar/f", ""),
        "200 [X-Who: alice 204] \"file in /ar\\n\""
    );
    assert_eq!(find("POST", "/ar/f", ""), "405 [X-Who: alice 204]");
    assert_eq!(find("GET", "/ar/deny", ""), "403 [X-Who:  403]");
    assert_eq!(
        find("GET", "/ar/who", ""),
        "401 [WWW-Authenticate: Bearer realm=one] [X-Who:  401]"
    );
    // Every WWW-Authenticate line of the auth service goes with the 401, as nginx ≥ 1.23
    // (its auth_request.t, ticket #485); Debian's nginx 1.22 passes the first only, so this
    // case is Proton's alone.
    assert_eq!(
        ask(p.port, &("GET", "/ar/two", "", "")),
        "401 [WWW-Authenticate: Bearer realm=one] [WWW-Authenticate: Basic realm=two] [X-Who:  401]"
    );
    assert_eq!(find("GET", "/ar/teapot", ""), "500 [X-Who:  418]");
    assert_eq!(
        find("GET", "/ar-static/f", ""),
        "200 \"file in /ar-static\\n\""
    );
    assert_eq!(find("GET", "/ar-any/deny", ""), "403");
    assert_eq!(find("GET", "/ar-basic/deny", "plain:password"), "403");
    assert_eq!(
        find("GET", "/ar-fallback/none", ""),
        "200 [X-Fallback: alice] \"fallback\\n\""
    );
    // An error_page after the upstream answered leads to a location with auth_request:
    // the request waits for its auth subrequest there too.
    assert_eq!(
        find("GET", "/pe/x", ""),
        "200 [X-Who: alice] \"file in /\\n\""
    );
    assert_eq!(find("GET", "/pe/deny", ""), "403");
    let logs = p.logs();
    for line in [
        "no user/password was provided for basic authentication",
        "user \"des\": password mismatch",
        "user \"nobody\" was not found in",
        "open() \"",
        "auth request unexpected status: 418",
        "access forbidden by rule",
    ] {
        assert!(logs.contains(line), "no {line:?} in\n{logs}");
    }
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| server(port, &root));
    let theirs: Vec<String> = CASES.iter().map(|c| ask(n.port(), c)).collect();
    assert_same_as_nginx(CASES, &ours, &theirs, &p.logs());
}

/// A request waiting for its auth service or its auth_delay holds no worker: another
/// request is answered meanwhile; a client that leaves ends the wait (and the subrequest).
#[test]
fn auth_waits_do_not_block_the_worker() {
    let t = TempDir::new("auth-wait");
    let root = site(&t);
    // A backend that accepts and never answers: the auth service hangs.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hang_port = hang.local_addr().expect("addr").port();
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\n\
         access_log {{dir}}/logs/access.log;\n\
         server {{\n listen 127.0.0.1:{{port}};\n root {root};\n\
           location /slow/ {{ auth_request /hang; }}\n\
           location = /hang {{ proxy_pass http://127.0.0.1:{hang_port}; proxy_read_timeout 1s; }}\n\
           location /delayed/ {{ auth_delay 1s; auth_basic \"d\"; auth_basic_user_file {root}/htpasswd; }}\n\
           location /fast/ {{ return 200 \"fast\\n\"; }}\n\
         }}\n}}\n"
    );
    std::fs::create_dir_all(format!("{root}/slow")).expect("dir");
    std::fs::create_dir_all(format!("{root}/delayed")).expect("dir");
    std::fs::write(format!("{root}/delayed/f"), "delayed\n").expect("file");
    let p = Proton::start(t.path(), &conf, 1);
    let port = p.port;
    let slow = std::thread::spawn(move || {
        let start = Instant::now();
        let (bytes, _) = raw_exchange(
            port,
            b"GET /slow/f HTTP/1.0\r\nHost: a\r\n\r\n",
            Duration::from_secs(20),
        );
        (start.elapsed(), String::from_utf8_lossy(&bytes).to_string())
    });
    let delayed = std::thread::spawn(move || {
        let start = Instant::now();
        let raw = format!(
            "GET /delayed/f HTTP/1.0\r\nHost: a\r\nAuthorization: Basic {}\r\n\r\n",
            b64("plain:wrong")
        );
        let (bytes, _) = raw_exchange(port, raw.as_bytes(), Duration::from_secs(20));
        (start.elapsed(), String::from_utf8_lossy(&bytes).to_string())
    });
    // Both are waiting (the auth subrequest reached the backend; the delay was logged).
    let (mut conn, _) = hang.accept().expect("the auth subrequest connects");
    assert!(wait_until(Duration::from_secs(10), || p
        .logs()
        .contains("delaying unauthorized request")));
    // Meanwhile the worker answers.
    let (bytes, _) = raw_exchange(
        port,
        b"GET /fast/ HTTP/1.0\r\nHost: a\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(String::from_utf8_lossy(&bytes).contains("fast"));
    let (took, text) = delayed.join().expect("thread");
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(
        took >= Duration::from_millis(900),
        "answered after {took:?}"
    );
    // The auth service times out: 504 for the subrequest, 500 for the request.
    let (_, text) = slow.join().expect("thread");
    assert!(text.starts_with("HTTP/1.1 500"), "{text}");
    assert!(
        p.logs().contains("auth request unexpected status: 504"),
        "{}",
        p.logs()
    );
    // A client that leaves while its auth subrequest runs: the subrequest goes too (its
    // upstream connection is closed), and the request is logged as 499.
    {
        use std::io::Write;
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.write_all(b"GET /slow/g HTTP/1.1\r\nHost: a\r\n\r\n")
            .expect("write");
        let (mut up, _) = hang.accept().expect("the second auth subrequest connects");
        drop(c);
        up.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        let mut closed = false;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match std::io::Read::read(&mut up, &mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        assert!(
            closed,
            "the auth subrequest's upstream connection stayed open"
        );
    }
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(t.path().join("logs/access.log"))
            .unwrap_or_default()
            .contains("\"GET /slow/g HTTP/1.1\" 499")
    }));
    let _ = &mut conn;
}

/// Over HTTP/2 each stream runs the access phase on its own: streams on one connection
/// wait for their auth subrequests at the same time and resume (nghttp sends them all at
/// once).
#[test]
fn http2_streams_wait_for_their_auth_subrequests() {
    if std::process::Command::new("nghttp")
        .arg("--version")
        .output()
        .is_err()
    {
        return;
    }
    let t = TempDir::new("auth-h2");
    let root = site(&t);
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\nhttp2 on;\n{}}}\n",
        server(0, &root).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    let paths = ["/ar/f", "/ar/deny", "/ar/who", "/ar/", "/ar-basic/f", "/f"];
    let out = std::process::Command::new("nghttp")
        .args(["-nv", "-H", ":authority: auth.test"])
        .args([
            "-H",
            &format!("authorization: Basic {}", b64("plain:password")),
        ])
        .args(paths.map(|u| format!("http://127.0.0.1:{}{u}", p.port)))
        .output()
        .expect("nghttp");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // Stream 2k+1 (k from 6: nghttp opens priority streams 3…11 first) is request k.
    let field = |stream: usize, name: &str| -> Option<String> {
        let tag = format!("recv (stream_id={stream}) {name}: ");
        text.lines()
            .find_map(|l| l.split_once(&tag).map(|(_, v)| v.to_string()))
    };
    let first = (1..64)
        .step_by(2)
        .find(|&id| field(id, ":status").is_some())
        .expect("a response");
    let want = [
        ("200", Some("alice 204")),
        ("403", Some(" 403")),
        ("401", Some(" 401")),
        // (A directory without an index file: 403, after the auth subrequest let it in.)
        ("403", Some("alice 204")),
        ("200", None),
        ("200", None),
    ];
    for (k, (status, who)) in want.iter().enumerate() {
        let id = first + 2 * k;
        assert_eq!(
            field(id, ":status").as_deref(),
            Some(*status),
            "{}\n{text}\n{}",
            paths[k],
            p.logs()
        );
        if let Some(w) = who {
            // (nghttp prints a value without its leading space.)
            assert_eq!(
                field(id, "x-who").as_deref(),
                Some(w.trim()),
                "{}",
                paths[k]
            );
        }
    }
    assert_eq!(
        field(first + 4, "www-authenticate").as_deref(),
        Some("Bearer realm=one")
    );
}
