//! The request context and the rewrite cycle, end to end.
//!
//! * Every request keeps its own state (URI after rewrites, arguments, host, captures, `set`
//!   values, upstream attempt) from its head to its access-log line, however many other
//!   requests the same worker answers meanwhile.
//! * nginx's rewrite cycle (server script → find location → location script → find again
//!   while the URI changes, 10 changes at most) as a table of cases run through nginx 1.22,
//!   `proton-run` and `protonc route`, which must all agree.

use proton_tests::{bin, nginx_binary, request, Backend, Nginx, Proton, Response, TempDir};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;
use std::time::Duration;

/// Proxied requests of different speeds interleave on one worker; each access-log line must
/// carry its own request's values. Before requests owned their context, a response that
/// arrived later was logged with the URI, arguments and host of whichever request the worker
/// had parsed last.
#[test]
fn every_log_line_carries_its_own_request() {
    let t = TempDir::new("ctx-log");
    let b = Backend::start("b1");
    let conf = format!(
        "worker_processes 1;\n\
         error_log {{dir}}/logs/error.log info;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         log_format t '$request_uri|$uri|$args|$host|$x|$sub|$upstream_status|$status';\n\
         server {{\n\
         listen 127.0.0.1:{{port}};\n\
         server_name ~^(?<sub>[a-z0-9]+)\\.ctx\\.test$;\n\
         access_log {{dir}}/logs/ctx.log t;\n\
         location /p/ {{\n\
         set $x $arg_id;\n\
         rewrite ^/p/(.*)$ /delay break;\n\
         proxy_pass http://127.0.0.1:{};\n\
         }}\n\
         }}\n\
         }}\n",
        b.port
    );
    let p = Proton::start(t.path(), &conf, 1);
    const N: usize = 24;
    let answers: Vec<(usize, std::io::Result<Response>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let port = p.port;
                s.spawn(move || {
                    // Slow and fast requests alternate, so fast ones are parsed and answered
                    // while slow ones wait on the backend.
                    let ms = if i.is_multiple_of(2) { 400 } else { 0 };
                    let host = format!("h{i}.ctx.test");
                    let path = format!("/p/{i}?ms={ms}&id={i}");
                    (i, request(port, Some(&host), &path))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    for (i, r) in &answers {
        let r = r
            .as_ref()
            .unwrap_or_else(|e| panic!("request {i}: {e}\n{}", p.logs()));
        assert_eq!(
            r.status,
            200,
            "request {i}: {}\n{}",
            r.body_text(),
            p.logs()
        );
    }
    let log_path = t.path().join("logs/ctx.log");
    let mut lines = Vec::new();
    let complete = proton_tests::wait_until(Duration::from_secs(20), || {
        lines = std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.len() >= N
    });
    assert!(
        complete,
        "{} log lines of {N}:\n{}",
        lines.len(),
        lines.join("\n")
    );
    let mut seen = BTreeMap::new();
    for line in &lines {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 8, "{line}");
        let id: usize = f[0]
            .rsplit("id=")
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no id in {line}"));
        let ms = if id.is_multiple_of(2) { 400 } else { 0 };
        let want = format!(
            "/p/{id}?ms={ms}&id={id}|/delay|ms={ms}&id={id}|h{id}.ctx.test|{id}|h{id}|200|200"
        );
        assert_eq!(
            line, &want,
            "the log line of request {id} has another request's values"
        );
        *seen.entry(id).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), N, "{seen:?}");
}

/// A proxied request that fails goes to its location's error_page with the state the
/// request had: the URI as rewritten, `set` values, captures (nginx keeps them; Proton used
/// to route the request again from its head and lost them).
#[test]
fn a_failed_proxy_keeps_its_rewrites_and_variables() {
    let t = TempDir::new("ctx-fail");
    let dead_port = proton_tests::dead_port();
    let dead = dead_port.port;
    let conf = format!(
        "worker_processes 1;\n\
         error_log {{dir}}/logs/error.log info;\n\
         events {{}}\n\
         http {{\n\
         access_log off;\n\
         server {{\n\
         listen 127.0.0.1:{{port}};\n\
         location ~ ^/f/(?<tail>.*)$ {{\n\
         set $v kept;\n\
         rewrite ^/f/(.*)$ /g/$1 break;\n\
         proxy_pass http://127.0.0.1:{dead};\n\
         error_page 502 = @fallback;\n\
         }}\n\
         location @fallback {{ return 200 \"$v $uri $tail $args\"; }}\n\
         }}\n\
         }}\n"
    );
    let p = Proton::start(t.path(), &conf, 1);
    let r = request(p.port, Some("x"), "/f/abc?q=1").expect("request");
    assert_eq!(
        (r.status, r.body_text().as_str()),
        (200, "kept /g/abc abc q=1"),
        "{}",
        p.logs()
    );
}

/// The rewrite cases, in one server block. Every answer names the location and the values
/// it saw, so a wrong location or a lost value shows in the body.
const REWRITE_SERVER: &str = r#"
    rewrite ^/s1/(.*)$ /t/$1;
    rewrite ^/s2/(.*)$ /t/$1 last;
    rewrite ^/s3/(.*)$ /t/$1?s=3;
    location /t/ { return 200 "t uri=$uri args=$args v=$v"; }
    location /r1/ { rewrite ^/r1/(.*)$ /t/$1; }
    location /r2/ { rewrite ^/r2/(.*)$ /t/$1 last; return 200 "never"; }
    location /r3/ { rewrite ^/r3/(.*)$ /t/$1 break; return 200 "never"; }
    location /r4/ { rewrite ^/r4/(.*)$ /t/$1?a=1; }
    location /r5/ { rewrite ^/r5/(.*)$ /t/$1?; }
    location /r6/ { rewrite ^/r6/(.*)$ /t/$1 redirect; }
    location /r7/ { rewrite ^/r7/(.*)$ /t/$1?b=2 permanent; }
    location /r8/ { set $v one; rewrite ^ /t/x; set $v two; }
    location /r9/ { set $v one; return 200 "r9 v=$v"; set $v two; }
    location /r10/ { rewrite ^/r10/(.*)$ /r10b/$1; rewrite ^/r10b/(.*)$ /t/$1; }
    location /r11/ { rewrite ^/r11/(.*)$ /t/$1; return 200 "r11 uri=$uri"; }
    location /r12/ { rewrite ^/r12/(.*)$ http://example.com/$1; }
    location /r13/ { rewrite ^/r13/(.*)$ /t/$1?c=3 break; }
    location ~ ^/cap/(?<word>[a-z]+)$ { rewrite ^ /t/$word; }
    location /n/ { try_files /nothing @named; }
    location /tf/ { try_files /nothing /t/tf; }
    location /tfa/ { try_files /nothing /t/tfa?z=$arg_q; }
    location /srv404/ { return 404; }
    error_page 404 /t/e404;
    location @named { rewrite ^ /t/named; }
    location /e/ { error_page 404 = /t/err; return 404; }
    location /ret/ { return 302 /t/ret; }
    location /loop/ { rewrite ^/loop/(.*)$ /loop/x$1; }
    location /c10/ { rewrite "^/c10/(x{0,9})$" /c10/x$1; }
    location ~ "^/c10/x{10}$" { return 200 "c10 uri=$uri"; }
    location /c11/ { rewrite "^/c11/(x{0,10})$" /c11/x$1; }
    location ~ "^/c11/x{11}$" { return 200 "c11 uri=$uri"; }
    location /i/ { internal; return 200 "internal"; }
    location /capture { rewrite ^(.*) $1?c=d; return 200 "uri:$uri args:$args"; }
    location /capturedup { rewrite ^(.*) $1?c=$1; return 200 "uri:$uri args:$args"; }
    location /capredir { rewrite ^(.*)$ http://example.com$1 redirect; }
    location /ret204 { return 204; }
    location /ret200 { return 200; }
    location /e405to204 { error_page 405 /ret204; return 405; }
    location /e405to200 { error_page 405 /ret200; return 405; }
    location /toi/ { rewrite ^ /i/x; }
"#;

const REWRITE_REQUESTS: &[&str] = &[
    "/s1/a?q=1",
    "/s2/a?q=1",
    "/s3/a?q=1",
    "/s3/a",
    "/r1/a?q=1",
    "/r2/a",
    "/r3/a",
    "/r4/a?q=1",
    "/r4/a",
    "/r5/a?q=1",
    "/r6/a?q=1",
    "/r6/a",
    "/r7/a?q=1",
    "/r8/a",
    "/r9/a",
    "/r10/a?q=1",
    "/r11/a",
    "/r12/a?q=1",
    "/r13/a?q=1",
    "/cap/word",
    "/n/a",
    "/n/a?q=1",
    "/tf/a?q=1",
    "/tfa/a?q=1",
    "/srv404/a",
    "/nothing-here?q=2",
    "/e/a?q=1",
    "/ret/a",
    "/loop/a",
    "/c10/",
    "/c11/",
    "/i/a",
    "/toi/a",
    "/e405to204",
    "/capture/%25?a=b",
    "/capturedup/%25?a=b",
    "/capturedup/x+y?a=b",
    "/capturedup/plain?a=b",
    "/capredir/a%20b?q=1",
    "/e405to200",
];

/// What a client sees, with the listening port taken out of redirects (the two servers
/// listen on different ports).
fn seen(r: &Response, port: u16) -> String {
    let location = r
        .header("location")
        .map(|l| l.replace(&format!(":{port}"), ":PORT"))
        .unwrap_or_default();
    let body = if r.status == 200 {
        r.body_text()
    } else {
        String::new()
    };
    format!("{} {body} {location}", r.status)
}

#[test]
fn rewrite_cycle_as_nginx() {
    let t = TempDir::new("ctx-rewrite");
    std::fs::create_dir_all(t.path().join("html")).expect("html dir");
    let server = |port: u16, root: &str| {
        format!(
            "server {{ listen 127.0.0.1:{port}; server_name rw.test; root {root};\n{REWRITE_SERVER}\n}}\n"
        )
    };
    let root = t.path().join("html").display().to_string();
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        server(0, &root).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    let ours: Vec<String> = REWRITE_REQUESTS
        .iter()
        .map(|u| {
            let r = request(p.port, Some("rw.test"), u)
                .unwrap_or_else(|e| panic!("{u}: {e}\n{}", p.logs()));
            seen(&r, p.port)
        })
        .collect();

    // protonc route answers the same questions from the config alone: the status a
    // `return` or redirect gives, or the static handler (404 here: no files).
    let conf_path = t.path().join("proton.conf");
    for (u, ours) in REWRITE_REQUESTS.iter().zip(&ours) {
        let out = Command::new(bin("protonc"))
            .arg("route")
            .arg(&conf_path)
            .args(["--host", "rw.test", "--json", "GET", u])
            .output()
            .expect("protonc route");
        assert!(
            out.status.success(),
            "{u}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("route JSON");
        // try_files and error_page act after the rewrite phase (route names them as the
        // handler), so those two requests are checked against nginx only.
        if v["handler"]
            .as_str()
            .is_some_and(|h| h.starts_with("try_files"))
            || v["location"] == "/e/"
        {
            continue;
        }
        let code = v["return"]["code"].as_u64().unwrap_or(404);
        let served: u64 = ours[..3].parse().unwrap_or(0);
        // An `internal` location answers 404 to a request from outside; route names it.
        let code = if v["location"] == "/i/" && u.starts_with("/i/") {
            404
        } else {
            code
        };
        assert_eq!(code, served, "protonc route {u}: {v}\nproton-run: {ours}");
    }

    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| server(port, &root));
    let theirs: Vec<String> = REWRITE_REQUESTS
        .iter()
        .map(|u| {
            let r = request(n.port(), Some("rw.test"), u)
                .unwrap_or_else(|e| panic!("{u}: {e}\n{}", n.logs()));
            seen(&r, n.port())
        })
        .collect();
    let diffs: Vec<String> = REWRITE_REQUESTS
        .iter()
        .zip(ours.iter().zip(&theirs))
        .filter(|(_, (a, b))| a != b)
        .map(|(u, (a, b))| format!("{u}\n  proton: {a}\n  nginx:  {b}"))
        .collect();
    assert!(
        diffs.is_empty(),
        "differences with nginx:\n{}",
        diffs.join("\n")
    );
}

/// `if` in server and location blocks, as nginx's rewrite_if.t exercises it, plus the
/// block's configuration (add_header, root and try_files "is evil" semantics), `break`, and
/// captures of a regex condition; proton-run and nginx 1.22 must answer alike.
#[test]
fn if_conditions_as_nginx() {
    let t = TempDir::new("ctx-if");
    let d = t.path().join("files");
    std::fs::create_dir_all(d.join("dir")).expect("dir");
    std::fs::write(d.join("file"), "f\n").expect("file");
    std::fs::write(d.join("exe"), "x\n").expect("exe");
    let made = Command::new("chmod")
        .arg("755")
        .arg(d.join("exe"))
        .status()
        .expect("chmod");
    assert!(made.success());
    let files = d.display().to_string();
    let body = format!(
        r#"
    if ($arg_srv = go) {{ return 200 "server if"; }}
    if ($http_x_stop) {{ break; }}
    location / {{ if ($arg_c) {{ return 204; }} }}
    location /sp {{ if ( $arg_c ) {{ return 204; }} }}
    location /eq {{ if ($arg_c = 1) {{ return 204; }} }}
    location /not {{ if ($arg_c != 2) {{ return 204; }} }}
    location /pos {{ if ($arg_c ~ foo) {{ return 204; }} }}
    location /cpos {{ if ($arg_c ~* foo) {{ return 204; }} }}
    location /neg {{ if ($arg_c !~ foo) {{ return 204; }} }}
    location /cneg {{ if ($arg_c !~* foo) {{ return 204; }} }}
    location /plain {{ if (-f {files}/$arg_c) {{ return 204; }} }}
    location /dir {{ if (-d {files}/$arg_c) {{ return 204; }} }}
    location /exist {{ if (-e {files}/$arg_c) {{ return 204; }} }}
    location /exec {{ if (-x {files}/$arg_c) {{ return 204; }} }}
    location /not_exec_dir {{ if (!-x {files}/$arg_c) {{ return 204; }} }}
    location /not_plain {{ if (!-f {files}/$arg_c) {{ return 204; }} }}
    location /not_exec {{ if (!-x {files}/$arg_c) {{ return 204; }} }}
    location /cap {{ if ($arg_c ~ "^(?<word>[a-z]+)-(\d+)$") {{ return 200 "$word $2"; }} return 200 "none"; }}
    location /order {{ set $v a; if ($arg_c) {{ set $v b; }} set $v "${{v}}c"; return 200 $v; }}
    location /brk {{ if ($arg_c) {{ break; }} return 200 "after"; }}
    location /hdr {{ add_header X-Outer outer; if ($arg_c) {{ add_header X-Inner inner; }} return 200 "hdr"; }}
    location /rw {{ if ($arg_c) {{ rewrite ^ /t/from-if; }} return 200 "not rewritten"; }}
    location /rwlast {{ if ($arg_c) {{ rewrite ^ /t/from-if last; }} return 200 "not rewritten"; }}
    location /t/ {{ return 200 "t uri=$uri"; }}
    location /root/ {{ root {files}/dir; if ($arg_c) {{ root {files}; }} }}
    location /tf/ {{ try_files /nothing /t/tf; if ($arg_c) {{ set $x 1; }} }}
"#
    );
    let server = |port: u16| {
        format!("server {{ listen 127.0.0.1:{port}; server_name if.test;\n{body}\n}}\n")
    };
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        server(0).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let requests: &[(&str, &[(&str, &str)])] = &[
        ("/?c=1", &[]),
        ("/?c=0", &[]),
        ("/?c=", &[]),
        ("/sp?c=1", &[]),
        ("/eq?c=1", &[]),
        ("/eq?c=2", &[]),
        ("/not?c=1", &[]),
        ("/not?c=2", &[]),
        ("/pos?c=foo", &[]),
        ("/pos?c=FOO", &[]),
        ("/cpos?c=FOO", &[]),
        ("/neg?c=foo", &[]),
        ("/neg?c=bar", &[]),
        ("/cneg?c=FOO", &[]),
        ("/plain?c=file", &[]),
        ("/plain?c=dir", &[]),
        ("/dir?c=dir", &[]),
        ("/dir?c=file", &[]),
        ("/exist?c=file", &[]),
        ("/exist?c=none", &[]),
        ("/exec?c=exe", &[]),
        ("/exec?c=file", &[]),
        ("/exec?c=dir", &[]),
        ("/not_exec_dir?c=dir", &[]),
        ("/not_plain?c=none", &[]),
        ("/not_exec?c=file", &[]),
        ("/cap?c=abc-42", &[]),
        ("/cap?c=ABC-42", &[]),
        ("/order?c=1", &[]),
        ("/order", &[]),
        ("/brk?c=1", &[]),
        ("/brk", &[]),
        ("/hdr?c=1", &[]),
        ("/hdr", &[]),
        ("/rw?c=1", &[]),
        ("/rwlast?c=1", &[]),
        ("/rw", &[]),
        ("/root/file?c=1", &[]),
        ("/root/file", &[]),
        ("/tf/a", &[]),
        ("/tf/a?c=1", &[]),
        ("/eq?c=1&srv=go", &[]),
        ("/eq?c=1", &[("X-Stop", "1")]),
    ];
    let ask = |port: u16, uri: &str, extra: &[(&str, &str)]| -> String {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).ok();
        let mut head = format!("GET {uri} HTTP/1.1\r\nHost: if.test\r\nConnection: close\r\n");
        for (n, v) in extra {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("write");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let r = proton_tests::parse_response(&raw).unwrap_or_else(|e| panic!("{uri}: {e}"));
        let mut seen = format!(
            "{} {}",
            r.status,
            if r.status == 200 {
                r.body_text()
            } else {
                String::new()
            }
        );
        for h in ["x-outer", "x-inner"] {
            if let Some(v) = r.header(h) {
                seen.push_str(&format!(" {h}={v}"));
            }
        }
        seen
    };
    let p = Proton::start(t.path(), &conf, 1);
    let ours: Vec<String> = requests.iter().map(|(u, h)| ask(p.port, u, h)).collect();
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, server);
    let theirs: Vec<String> = requests.iter().map(|(u, h)| ask(n.port(), u, h)).collect();
    let diffs: Vec<String> = requests
        .iter()
        .zip(ours.iter().zip(&theirs))
        .filter(|(_, (a, b))| a != b)
        .map(|((u, h), (a, b))| format!("{u} {h:?}\n  proton: {a}\n  nginx:  {b}"))
        .collect();
    assert!(
        diffs.is_empty(),
        "differences with nginx:\n{}\n{}",
        diffs.join("\n"),
        p.logs()
    );
}

/// A map's value is computed once per request and kept through internal redirects, unless
/// the map is `volatile` (nginx-tests' map_volatile.t); proton-run and nginx 1.22 alike.
#[test]
fn map_values_are_kept_for_the_request_as_nginx() {
    let t = TempDir::new("ctx-map");
    let root = t.path().join("html");
    std::fs::create_dir_all(&root).expect("root");
    let body = format!(
        r#"
    map $uri $uri_cached {{ /1/ /1/redirect; /1/redirect uncached; }}
    map $uri $uri_uncached {{ volatile; /2/ /2/redirect; /2/redirect uncached; }}
    server {{ listen 127.0.0.1:PORT; server_name map.test; root {root};
        location /1 {{ index $uri_cached; }}
        location /1/redirect {{ add_header X-URI $uri_cached always; }}
        location /2 {{ index $uri_uncached; }}
        location /2/redirect {{ add_header X-URI $uri_uncached always; }}
    }}
"#,
        root = root.display()
    );
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        body.replace("PORT", "{port}")
    );
    let ask = |port: u16, uri: &str| -> String {
        let r = request(port, Some("map.test"), uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
        format!("{} {}", r.status, r.header("x-uri").unwrap_or("-"))
    };
    let p = Proton::start(t.path(), &conf, 1);
    let ours: Vec<String> = ["/1/", "/2/"].iter().map(|u| ask(p.port, u)).collect();
    assert_eq!(ours[0], "404 /1/redirect", "{}", p.logs());
    assert_eq!(ours[1], "404 uncached", "{}", p.logs());
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| body.replace("PORT", &port.to_string()));
    let theirs: Vec<String> = ["/1/", "/2/"].iter().map(|u| ask(n.port(), u)).collect();
    assert_eq!(ours, theirs);
}

/// `$host` keeps the brackets of an IPv6 literal (and IPvFuture), lowercased, without the
/// port, as nginx (nginx-tests' http_host.t); a redirect to a path names it the same way.
#[test]
fn host_of_ip_literals_as_nginx() {
    let t = TempDir::new("ctx-host");
    let body = "server { listen 127.0.0.1:PORT; server_name localhost;\n\
                location / { return 200 \"$host\"; }\n\
                location /r { return 302 /to; } }\n";
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        body.replace("PORT", "{port}")
    );
    let hosts = [
        "[ABCD::EF98:0:7654:321]",
        "[abcd::ef98:0:7654:321]:8080",
        "[::ffff:127.0.0.1]",
        "[v0123456789abcdef.!$&'()*+,;=-._~abcdefghijklmnopqrstuvwxyz0123456789:]",
        "example.com.",
        "Example.COM:80",
    ];
    let ask = |port: u16, host: &str, path: &str| -> String {
        match request(port, Some(host), path) {
            Ok(r) => format!(
                "{} {} {}",
                r.status,
                if r.status == 200 {
                    r.body_text()
                } else {
                    String::new()
                },
                r.header("location")
                    .map(|l| l.replace(&format!(":{port}"), ":PORT"))
                    .unwrap_or_default()
            ),
            Err(e) => format!("error {e}"),
        }
    };
    let p = Proton::start(t.path(), &conf, 1);
    let ours: Vec<String> = hosts
        .iter()
        .flat_map(|h| [ask(p.port, h, "/"), ask(p.port, h, "/r")])
        .collect();
    assert!(
        ours[0].starts_with("200 [abcd::ef98:0:7654:321]"),
        "{ours:?}"
    );
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| body.replace("PORT", &port.to_string()));
    let theirs: Vec<String> = hosts
        .iter()
        .flat_map(|h| [ask(n.port(), h, "/"), ask(n.port(), h, "/r")])
        .collect();
    assert_eq!(ours, theirs);
}
