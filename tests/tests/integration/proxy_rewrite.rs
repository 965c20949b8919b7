//! The proxy module's rewriting of upstream response headers end to end: `proxy_redirect`
//! (`Location`, `Refresh`), `proxy_cookie_domain`, `proxy_cookie_path` and
//! `proxy_cookie_flags` (`Set-Cookie`). A `proton-testbackend` origin answers with whatever
//! `Location` (`/redirect?to=`) or headers (`/headers?Name=value`) a request asks for; the
//! test reads them as the client gets them from Proton, checks each against the value nginx
//! 1.22 gives, and, where nginx is installed, runs the same config in nginx and compares.

use proton_tests::{nginx_binary, request, Backend, Nginx, Proton, Response, TempDir};

/// The `http {}` body; `@PORT@` is the listening port, `@B@` the backend's.
const HTTP: &str = r#"
server {
    listen 127.0.0.1:@PORT@;
    server_name rw.test;
    proxy_redirect http://srv.test/ /from-server/;
    proxy_cookie_path /srv/ /s/;

    location / {
        set $tenant acme;
        proxy_pass http://127.0.0.1:@B@;
        proxy_redirect http://up.test/$tenant/ /t/;
        proxy_redirect http://up.test/fixed/ /$tenant/;
        proxy_redirect ~^http://up\.test/re/(?<rest>.*)$ /regex/$rest;
        proxy_redirect ~*^HTTP://CI\.TEST/(.*)$ /ci/$1;
        proxy_redirect http://up.test/ /first/;
        proxy_redirect http://up.test/ /never/;

        proxy_cookie_domain .up.test $tenant.example;
        proxy_cookie_domain ~^(.+)\.internal$ $1.example;
        proxy_cookie_path /app/ /;
        proxy_cookie_path ~*^/USERS/(\d+)$ /u/$1;
        proxy_cookie_flags session secure httponly samesite=strict;
        proxy_cookie_flags ~^tr nosecure nohttponly nosamesite;
        proxy_cookie_flags $arg_c $arg_f;
    }
    location /inherit/ {
        proxy_pass http://127.0.0.1:@B@/;
    }
    location /off/ {
        proxy_pass http://127.0.0.1:@B@/;
        proxy_redirect off;
        proxy_cookie_path off;
        location /off/nested/ {
            proxy_pass http://127.0.0.1:@B@/;
        }
    }
}
server {
    listen 127.0.0.1:@PORT@;
    server_name def.test;
    location /p/ {
        rewrite ^ /redirect break;
        proxy_pass http://127.0.0.1:@B@/x/;
        location /p/c/ {
            rewrite ^ /redirect break;
            proxy_pass http://127.0.0.1:@B@/y/;
        }
    }
    location /q/ {
        proxy_pass http://127.0.0.1:@B@/;
        proxy_redirect http://other.test/ /o/;
        proxy_redirect default;
    }
    location /abs/ {
        proxy_pass http://127.0.0.1:@B@/;
        absolute_redirect off;
    }
}
"#;

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One request and the header it reads: (host, path, header).
type Ask = (&'static str, String, &'static str);

/// The cases, with the value nginx 1.22 gives (`PORT`: the server's port, `B`: the
/// backend's; `-` for no such header).
fn cases() -> Vec<(Ask, &'static str)> {
    let loc = |host: &'static str, path: &str, to: &str| -> Ask {
        (host, format!("{path}?to={}", enc(to)), "location")
    };
    let hdr = |path: &str, name: &'static str, value: &str| -> Ask {
        (
            "rw.test",
            format!("{path}headers?{name}={}", enc(value)),
            name,
        )
    };
    let cookie = |path: &str, value: &str| hdr(path, "set-cookie", value);
    vec![
        // Text rules with variables, in order, the first match wins; a rewritten path is
        // made absolute.
        (
            loc("rw.test", "/redirect", "http://up.test/acme/x"),
            "http://rw.test:PORT/t/x",
        ),
        (
            loc("rw.test", "/redirect", "http://up.test/fixed/y"),
            "http://rw.test:PORT/acme/y",
        ),
        (
            loc("rw.test", "/redirect", "http://up.test/other?a=1"),
            "http://rw.test:PORT/first/other?a=1",
        ),
        // Regexes: captures and named groups, `~*` caseless; the whole value is replaced.
        (
            loc("rw.test", "/redirect", "http://up.test/re/a/b?c=d"),
            "http://rw.test:PORT/regex/a/b?c=d",
        ),
        (
            loc("rw.test", "/redirect", "http://Ci.Test/q"),
            "http://rw.test:PORT/ci/q",
        ),
        // Text prefixes compare bytes exactly.
        (
            loc("rw.test", "/redirect", "http://UP.test/acme/x"),
            "http://UP.test/acme/x",
        ),
        // A path no rule matched stays relative.
        (loc("rw.test", "/redirect", "/keep/path"), "/keep/path"),
        // The location's own rules replace the server's; no default among them.
        (
            loc("rw.test", "/redirect", "http://srv.test/a"),
            "http://srv.test/a",
        ),
        (
            loc("rw.test", "/redirect", "http://127.0.0.1:B/z"),
            "http://127.0.0.1:B/z",
        ),
        // Refresh: only the URL after `url=` (any case), never made absolute.
        (
            hdr("/", "refresh", "3; URL=http://up.test/acme/r"),
            "3; URL=/t/r",
        ),
        (hdr("/", "refresh", "3;url=http://ci.test/z"), "3;url=/ci/z"),
        (
            hdr("/", "refresh", "http://up.test/acme/r"),
            "http://up.test/acme/r",
        ),
        // Inherited from the server: its rule, and no implied default.
        (
            loc("rw.test", "/inherit/redirect", "http://srv.test/a"),
            "http://rw.test:PORT/from-server/a",
        ),
        (
            loc("rw.test", "/inherit/redirect", "http://127.0.0.1:B/z"),
            "http://127.0.0.1:B/z",
        ),
        // `off`, and below it no implied default either.
        (
            loc("rw.test", "/off/redirect", "http://127.0.0.1:B/z"),
            "http://127.0.0.1:B/z",
        ),
        (
            loc("rw.test", "/off/nested/redirect", "http://127.0.0.1:B/z"),
            "http://127.0.0.1:B/z",
        ),
        // The implied default; a nested location inherits its parent's, not its own.
        (
            loc("def.test", "/p/a", "http://127.0.0.1:B/x/foo"),
            "http://def.test:PORT/p/foo",
        ),
        (
            loc("def.test", "/p/c/a", "http://127.0.0.1:B/x/foo"),
            "http://def.test:PORT/p/foo",
        ),
        (
            loc("def.test", "/p/c/a", "http://127.0.0.1:B/y/foo"),
            "http://127.0.0.1:B/y/foo",
        ),
        // `default` among explicit rules.
        (
            loc("def.test", "/q/redirect", "http://other.test/a"),
            "http://def.test:PORT/o/a",
        ),
        (
            loc("def.test", "/q/redirect", "http://127.0.0.1:B/b"),
            "http://def.test:PORT/q/b",
        ),
        (
            loc("def.test", "/abs/redirect", "http://127.0.0.1:B/b"),
            "/abs/b",
        ),
        // proxy_cookie_domain: the whole domain, caseless, its leading dot kept; a regex.
        (
            cookie("/", "a=1; Domain=.UP.test; Path=/app/x"),
            "a=1; Domain=.acme.example; Path=/x",
        ),
        (
            cookie("/", "a=1;domain=svc.internal"),
            "a=1; domain=svc.example",
        ),
        (
            cookie("/", "a=1; Domain=sub.up.test"),
            "a=1; Domain=sub.up.test",
        ),
        // proxy_cookie_path: a prefix, or a regex (`~*` caseless).
        (cookie("/", "a=1;path=/users/42"), "a=1; path=/u/42"),
        (cookie("/", "a=1;  path=/srv/x"), "a=1;  path=/srv/x"),
        // proxy_cookie_flags: set in place or added (Secure, HttpOnly, SameSite), removed;
        // a regex on the name; names and flags from variables.
        (
            cookie("/", "session=abc; Path=/; SameSite=Lax"),
            "session=abc; Path=/; SameSite=Strict; Secure; HttpOnly",
        ),
        (
            cookie("/", "SESSION=abc;secure"),
            "SESSION=abc; secure; HttpOnly; SameSite=Strict",
        ),
        (
            cookie("/", "track=1; Secure; HttpOnly; SameSite=None; Max-Age=5"),
            "track=1; Max-Age=5",
        ),
        (
            (
                "rw.test",
                format!("/headers?Set-Cookie={}&c=T&f=HttpOnly", enc("t=1")),
                "set-cookie",
            ),
            "t=1; HttpOnly",
        ),
        (cookie("/", "other=1 ;secure"), "other=1 ;secure"),
        // Inherited server-level proxy_cookie_path; `off` below.
        (cookie("/inherit/", "a=1; Path=/srv/x"), "a=1; Path=/s/x"),
        (cookie("/off/", "a=1; Path=/srv/x"), "a=1; Path=/srv/x"),
    ]
}

/// Every value of header `name` in `r`, joined with ` | ` (`-` for none).
fn values(r: &Response, name: &str) -> String {
    let v: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect();
    if v.is_empty() {
        "-".to_string()
    } else {
        v.join(" | ")
    }
}

/// Asks every case of server `port` (backend `b`); values with the ports as `PORT`, `B`.
fn answers(port: u16, b: u16) -> Vec<String> {
    cases()
        .iter()
        .map(|((host, path, name), _)| {
            let path = path.replace("127.0.0.1%3AB", &format!("127.0.0.1%3A{b}"));
            match request(port, Some(host), &path) {
                Ok(r) => values(&r, name)
                    .replace(&format!(":{port}/"), ":PORT/")
                    .replace(&format!(":{b}/"), ":B/"),
                Err(e) => format!("error {e}"),
            }
        })
        .collect()
}

#[test]
fn redirects_and_cookies_are_rewritten_as_nginx() {
    let t = TempDir::new("px-rewrite");
    let b = Backend::start("b1");
    let body = |port: &str| {
        HTTP.replace("@PORT@", port)
            .replace("@B@", &b.port.to_string())
    };
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        body("{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    let ours = answers(p.port, b.port);
    let want: Vec<&str> = cases().iter().map(|(_, w)| *w).collect();
    let diff: Vec<String> = cases()
        .iter()
        .zip(ours.iter().zip(&want))
        .filter(|(_, (o, w))| o != w)
        .map(|(((h, p, n), _), (o, w))| format!("{h}{p} {n}: got {o:?}, want {w:?}"))
        .collect();
    assert!(diff.is_empty(), "{}\n{}", diff.join("\n"), p.logs());

    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| body(&port.to_string()));
    let theirs = answers(n.port(), b.port);
    let diff: Vec<String> = cases()
        .iter()
        .zip(ours.iter().zip(&theirs))
        .filter(|(_, (o, t))| o != t)
        .map(|(((h, p, n), _), (o, t))| format!("{h}{p} {n}: Proton {o:?}, nginx {t:?}"))
        .collect();
    assert!(diff.is_empty(), "{}\n{}", diff.join("\n"), n.logs());
}

/// A replacement made from variables cannot end the header line early: a line break that
/// `%0D%0A` in the request URI puts into `$uri` is written `%0D%0A` (nginx would write it
/// as is, and the client would see an extra header).
#[test]
fn rewritten_values_never_break_the_header_line() {
    let t = TempDir::new("px-rewrite-crlf");
    let b = Backend::start("b1");
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n\
         server {{ listen 127.0.0.1:{{port}};\n\
           location /crlf/ {{\n\
             set $orig $uri;\n\
             rewrite ^ /headers break;\n\
             proxy_pass http://127.0.0.1:{b}/;\n\
             proxy_redirect http://up.test/ $orig/;\n\
             proxy_cookie_path / $orig/;\n\
           }}\n\
         }}\n}}\n",
        b = b.port
    );
    let p = Proton::start(t.path(), &conf, 1);
    let path = format!(
        "/crlf/a%0D%0AX-Evil:%201?Location={}&Set-Cookie={}",
        enc("http://up.test/z"),
        enc("c=1; Path=/p")
    );
    let r = request(p.port, Some("h.test"), &path).unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    assert_eq!(r.status, 200, "{}", p.logs());
    assert_eq!(r.header("x-evil"), None, "{:?}", r.headers);
    assert_eq!(
        r.header("location"),
        Some(format!("http://h.test:{}/crlf/a%0D%0AX-Evil: 1/z", p.port).as_str()),
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.header("set-cookie"),
        Some("c=1; Path=/crlf/a%0D%0AX-Evil: 1/p"),
        "{:?}",
        r.headers
    );
}
