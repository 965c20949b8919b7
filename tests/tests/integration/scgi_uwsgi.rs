//! `scgi_pass` and `uwsgi_pass`: requests to SCGI and uwsgi applications, as nginx's scgi and
//! uwsgi modules send them. The applications are [`App`] in this file (written here from the
//! two protocols' specifications: it answers with the parameters and body it got) and, for
//! uwsgi, uWSGI itself with its Python plugin running a WSGI application.

use proton_tests::{raw_exchange, wait_until, Proton, Response, TempDir};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::fastcgi::params_of as vars;
use super::request_body::{conf, send};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Scgi,
    Uwsgi,
}

/// An SCGI or uwsgi application on a loopback port: one request per connection. It answers
/// `200` (with an HTTP status line for SCGI, a CGI `Status:` head for uwsgi, so that both
/// forms are read) and a body listing `NAME=VALUE` for every parameter, then `modifiers=A,B`
/// (uwsgi) and `body=LEN:TEXT`. A QUERY_STRING of `status=N` answers that status instead
/// (as a CGI `Status:` field), `close-early` closes before any answer.
struct App {
    port: u16,
}

impl App {
    fn start(kind: Kind) -> App {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { return };
                std::thread::spawn(move || serve(kind, s));
            }
        });
        App { port }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn serve(kind: Kind, mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut params = Vec::new();
    let mut modifiers = (0u8, 0u8);
    match kind {
        Kind::Scgi => {
            // A netstring: "LEN:" + pairs + ",".
            let mut len = Vec::new();
            let mut b = [0u8; 1];
            loop {
                if s.read_exact(&mut b).is_err() {
                    return;
                }
                if b[0] == b':' {
                    break;
                }
                len.push(b[0]);
            }
            let n: usize = String::from_utf8_lossy(&len)
                .parse()
                .expect("netstring length");
            let mut block = vec![0u8; n + 1];
            s.read_exact(&mut block).expect("netstring");
            assert_eq!(block[n], b',', "netstring end");
            let mut parts = block[..n].split(|&b| b == 0);
            while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
                if k.is_empty() {
                    break;
                }
                params.push((
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                ));
            }
        }
        Kind::Uwsgi => {
            let mut h = [0u8; 4];
            if s.read_exact(&mut h).is_err() {
                return;
            }
            modifiers = (h[0], h[3]);
            let n = usize::from(u16::from_le_bytes([h[1], h[2]]));
            let mut block = vec![0u8; n];
            s.read_exact(&mut block).expect("uwsgi vars");
            let mut b = &block[..];
            let take = |b: &mut &[u8]| {
                let l = usize::from(u16::from_le_bytes([b[0], b[1]]));
                let v = String::from_utf8_lossy(&b[2..2 + l]).into_owned();
                *b = &b[2 + l..];
                v
            };
            while !b.is_empty() {
                let k = take(&mut b);
                let v = take(&mut b);
                params.push((k, v));
            }
        }
    }
    let p: HashMap<&str, &str> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let length: usize = p
        .get("CONTENT_LENGTH")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if s.read_exact(&mut body).is_err() {
        return;
    }
    let query = p.get("QUERY_STRING").copied().unwrap_or("");
    if query == "close-early" {
        return;
    }
    let mut text = String::new();
    for (k, v) in &params {
        text += &format!("{k}={v}\n");
    }
    if kind == Kind::Uwsgi {
        text += &format!("modifiers={},{}\n", modifiers.0, modifiers.1);
    }
    text += &format!("body={}:{}\n", body.len(), String::from_utf8_lossy(&body));
    let head = match (query.strip_prefix("status="), kind) {
        (Some(code), _) => format!("Status: {code} Odd\r\nContent-Type: text/plain\r\n\r\n"),
        (None, Kind::Scgi) => {
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nX-App: scgi\r\n\r\n".into()
        }
        (None, Kind::Uwsgi) => {
            "Status: 200 OK\r\nContent-Type: text/plain\r\nX-App: uwsgi\r\n\r\n".into()
        }
    };
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(text.as_bytes());
}

/// Proton in front of an SCGI app (`/s/`) and a uwsgi app (`/u/`).
fn start(t: &TempDir, scgi: &App, uwsgi: &App) -> Proton {
    let c = conf(&format!(
        "server {{ listen 127.0.0.1:{{port}};
           location /s/ {{ scgi_pass {s}; scgi_param QUERY_STRING $args; scgi_param REQUEST_METHOD $request_method;
                          scgi_param EMPTY $arg_none if_not_empty; }}
           location /s/buffered/ {{ scgi_pass {s}; scgi_param QUERY_STRING $args; }}
           location /s/streamed/ {{ scgi_pass {s}; scgi_request_buffering off; scgi_param QUERY_STRING $args; }}
           location /u/ {{ uwsgi_pass uwsgi://{u}; uwsgi_param QUERY_STRING $args;
                          uwsgi_param CONTENT_LENGTH $content_length; uwsgi_modifier1 5; uwsgi_modifier2 9; }}
           location /u/intercept/ {{ uwsgi_pass {u}; uwsgi_param QUERY_STRING $args;
                          uwsgi_intercept_errors on; error_page 418 = @teapot; }}
           location @teapot {{ return 200 'intercepted\\n'; }}
         }}",
        s = scgi.addr(),
        u = uwsgi.addr()
    ));
    Proton::start(t.path(), &c, 1)
}

fn get(p: &Proton, target: &str) -> Response {
    send(
        p,
        format!("GET {target} HTTP/1.1\r\nHost: app.test\r\nX-Two: a\r\nX-Two: b\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn scgi_and_uwsgi_requests_carry_params_headers_and_bodies() {
    let (scgi, uwsgi) = (App::start(Kind::Scgi), App::start(Kind::Uwsgi));
    let t = TempDir::new("scgi-uwsgi");
    let p = start(&t, &scgi, &uwsgi);
    // SCGI: CONTENT_LENGTH first, params, headers; an HTTP status line read as such.
    let r = get(&p, "/s/x?a=1");
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(r.header("X-App"), Some("scgi"));
    let text = r.body_text();
    assert!(text.starts_with("CONTENT_LENGTH=0\n"), "{text}");
    let v = vars(&r);
    assert_eq!(v["QUERY_STRING"], "a=1");
    assert_eq!(v["REQUEST_METHOD"], "GET");
    assert_eq!(v["HTTP_HOST"], "app.test");
    assert_eq!(v["HTTP_X_TWO"], "a, b");
    assert!(!v.contains_key("EMPTY"));
    // uwsgi: the modifiers, a CGI head.
    let r = get(&p, "/u/y?b=2");
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(r.header("X-App"), Some("uwsgi"));
    assert_eq!(r.header("Status"), None);
    let v = vars(&r);
    assert_eq!(v["QUERY_STRING"], "b=2");
    assert_eq!(v["modifiers"], "5,9");
    assert_eq!(v["HTTP_X_TWO"], "a, b");
    // Bodies: with a length, chunked (read whole first for its length), streamed.
    for path in ["/s/buffered/", "/s/streamed/", "/u/"] {
        let r = send(
            &p,
            format!("POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world").as_bytes(),
        );
        assert_eq!(vars(&r)["body"], "11:hello world", "{path}\n{}", p.logs());
        let r = send(
            &p,
            format!("POST {path} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").as_bytes(),
        );
        let v = vars(&r);
        assert_eq!(v["body"], "11:hello world", "{path}\n{}", p.logs());
        assert_eq!(v["CONTENT_LENGTH"], "11", "{path}");
    }
}

#[test]
fn scgi_and_uwsgi_statuses_errors_and_logs() {
    let (scgi, uwsgi) = (App::start(Kind::Scgi), App::start(Kind::Uwsgi));
    let t = TempDir::new("scgi-uwsgi-errors");
    let p = start(&t, &scgi, &uwsgi);
    let r = get(&p, "/s/?status=404");
    assert_eq!(r.status, 404);
    let r = get(&p, "/u/?status=503");
    assert_eq!(r.status, 503);
    let r = get(&p, "/u/intercept/?status=418");
    assert_eq!((r.status, r.body_text().as_str()), (200, "intercepted\n"));
    let r = get(&p, "/s/?close-early");
    assert_eq!(r.status, 502);
    let r = get(&p, "/u/?close-early");
    assert_eq!(r.status, 502);
    let log = std::fs::read_to_string(t.path().join("logs/error.log")).unwrap_or_default();
    assert!(
        log.contains(&format!("upstream: \"scgi://{}\"", scgi.addr())),
        "{log}"
    );
    assert!(
        log.contains(&format!("upstream: \"uwsgi://{}\"", uwsgi.addr())),
        "{log}"
    );
}

#[test]
fn scgi_and_uwsgi_bad_configs_are_refused() {
    let t = TempDir::new("scgi-uwsgi-conf");
    for (line, want) in [
        (
            "uwsgi_ssl_conf_command Options -SessionTicket;",
            "not supported yet",
        ),
        ("scgi_pass 127.0.0.1;", "no port in upstream \"127.0.0.1\""),
        ("uwsgi_pass 127.0.0.1:3031/x;", "invalid host in upstream"),
        ("scgi_socket_rcvbuf 64k;", "not supported yet"),
    ] {
        let conf = t.write(
            "bad.conf",
            &format!("events {{}} http {{ server {{ location / {{ {line} }} }} }}"),
        );
        let out = Command::new(proton_tests::bin("protonc"))
            .arg("check")
            .arg(&conf)
            .output()
            .expect("protonc runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{line}: {err}");
    }
}

/// Debian's uWSGI (`PROTON_UWSGI` overrides). `None` only with `PROTON_SKIP_UWSGI=1`: CI
/// installs it with its Python 3 plugin.
fn uwsgi_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PROTON_UWSGI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/uwsgi"));
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("PROTON_SKIP_UWSGI").as_deref() == Ok("1") {
        eprintln!("uwsgi not found; skipped (PROTON_SKIP_UWSGI=1)");
        return None;
    }
    panic!(
        "uwsgi not found at {}: apt-get install uwsgi uwsgi-plugin-python3, or set PROTON_SKIP_UWSGI=1",
        path.display()
    );
}

struct Uwsgi(Child);

impl Drop for Uwsgi {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// uWSGI on a unix socket in `dir` (`tls`: uwsgi over TLS, `--ssl-socket`, with a
/// self-signed certificate for `uwsgi.test` made by openssl).
fn start_uwsgi(bin: &Path, dir: &Path, tls: bool) -> (Uwsgi, PathBuf) {
    let app = dir.join("app.py");
    std::fs::write(
        &app,
        "def application(env, start_response):\n\
         \x20   body = env['wsgi.input'].read()\n\
         \x20   out = 'method=%s path=%s query=%s host=%s body=%d:%s\\n' % (\n\
         \x20       env['REQUEST_METHOD'], env.get('PATH_INFO', ''), env.get('QUERY_STRING', ''),\n\
         \x20       env.get('HTTP_HOST', ''), len(body), body.decode('latin-1'))\n\
         \x20   status = '404 Not Here' if env.get('PATH_INFO') == '/missing' else '200 OK'\n\
         \x20   start_response(status, [('Content-Type', 'text/plain'), ('X-Wsgi', 'yes')])\n\
         \x20   return [out.encode('latin-1')]\n",
    )
    .expect("app.py");
    let sock = dir.join("uwsgi.sock");
    let mut cmd = Command::new(bin);
    cmd.args(["--plugin", "python3"]);
    if tls {
        let ok = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=uwsgi.test",
                "-addext",
                "subjectAltName=DNS:uwsgi.test",
            ])
            .arg("-keyout")
            .arg(dir.join("uwsgi.key"))
            .arg("-out")
            .arg(dir.join("uwsgi.crt"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl made no certificate");
        cmd.arg("--ssl-socket").arg(format!(
            "{},{},{}",
            sock.display(),
            dir.join("uwsgi.crt").display(),
            dir.join("uwsgi.key").display()
        ));
    } else {
        cmd.arg("--socket").arg(&sock);
    }
    let child = cmd
        .arg("--wsgi-file")
        .arg(&app)
        .args(["--processes", "1", "--need-app", "--disable-logging"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("uwsgi.log")).expect("uwsgi log"),
        ))
        .spawn()
        .expect("uwsgi starts");
    let u = Uwsgi(child);
    let up = wait_until(Duration::from_secs(20), || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    });
    assert!(
        up,
        "uwsgi did not listen within 20 s:\n{}",
        std::fs::read_to_string(dir.join("uwsgi.log")).unwrap_or_default()
    );
    (u, sock)
}

#[test]
fn uwsgi_python_plugin_serves_a_wsgi_application() {
    let Some(bin) = uwsgi_binary() else {
        return;
    };
    let t = TempDir::new("uwsgi-python");
    let (_u, sock) = start_uwsgi(&bin, t.path(), false);
    let c = conf(&format!(
        "server {{ listen 127.0.0.1:{{port}};
           location / {{ include {{dir}}/uwsgi_params; uwsgi_pass unix:{sock}; }}
         }}",
        sock = sock.display()
    ));
    // Debian's uwsgi_params, unchanged.
    std::fs::copy("/etc/nginx/uwsgi_params", t.path().join("uwsgi_params"))
        .expect("/etc/nginx/uwsgi_params (Debian's nginx-common)");
    let p = Proton::start(t.path(), &c, 1);
    let r = send(
        &p,
        b"POST /hello?x=1 HTTP/1.1\r\nHost: wsgi.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde",
    );
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(r.header("X-Wsgi"), Some("yes"));
    assert_eq!(
        r.body_text(),
        "method=POST path=/hello query=x=1 host=wsgi.test body=5:abcde\n"
    );
    let r = send(
        &p,
        b"GET /missing HTTP/1.1\r\nHost: wsgi.test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 404);
    // Many in a row on one client connection (a new uwsgi connection each).
    let mut raw = Vec::new();
    for i in 0..20 {
        raw.extend_from_slice(format!("GET /n{i} HTTP/1.1\r\nHost: wsgi.test\r\n\r\n").as_bytes());
    }
    raw.extend_from_slice(b"GET /last HTTP/1.1\r\nHost: wsgi.test\r\nConnection: close\r\n\r\n");
    let (out, _) = raw_exchange(p.port, &raw, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out);
    assert_eq!(
        text.matches("\r\nX-Wsgi: yes\r\n").count(),
        21,
        "{}",
        p.logs()
    );
    assert!(text.contains("path=/last "));
}

#[test]
fn uwsgi_over_tls_with_a_verified_certificate() {
    let Some(bin) = uwsgi_binary() else {
        return;
    };
    let t = TempDir::new("uwsgi-tls");
    let (_u, sock) = start_uwsgi(&bin, t.path(), true);
    let c = conf(&format!(
        "server {{ listen 127.0.0.1:{{port}};
           location / {{ uwsgi_param REQUEST_METHOD $request_method; uwsgi_param PATH_INFO $uri;
                        uwsgi_param HTTP_HOST $host;
                        uwsgi_pass suwsgi://unix:{sock};
                        uwsgi_ssl_verify on; uwsgi_ssl_name uwsgi.test;
                        uwsgi_ssl_trusted_certificate {{dir}}/uwsgi.crt; }}
           location /wrong {{ uwsgi_param PATH_INFO $uri;
                        uwsgi_pass suwsgi://unix:{sock};
                        uwsgi_ssl_verify on; uwsgi_ssl_name other.test;
                        uwsgi_ssl_trusted_certificate {{dir}}/uwsgi.crt; }}
         }}",
        sock = sock.display()
    ));
    let p = Proton::start(t.path(), &c, 1);
    let r = send(
        &p,
        b"GET /over-tls HTTP/1.1\r\nHost: wsgi.test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", p.logs());
    assert!(
        r.body_text().starts_with("method=GET path=/over-tls "),
        "{}",
        r.body_text()
    );
    // A name the certificate does not have: the handshake fails, 502.
    let r = send(
        &p,
        b"GET /wrong HTTP/1.1\r\nHost: wsgi.test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 502);
}
