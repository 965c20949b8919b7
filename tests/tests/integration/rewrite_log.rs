//! `rewrite_log` and `uninitialized_variable_warn`: the error-log lines nginx writes for the
//! rewrite module (regex tests, rewritten URIs and redirects at `notice`) and for a `set`
//! variable read before it has a value (`warn`), with the same wording as nginx 1.22.

use proton_tests::{get, nginx_binary, wait_until, Nginx, Proton, TempDir};
use std::time::Duration;

fn server(port: u16) -> String {
    format!(
        r#"
    server {{
        listen 127.0.0.1:{port};
        server_name log.test;
        rewrite_log on;
        location /a {{ rewrite ^/a(.*)$ /b$1?k=v; }}
        location /b {{ return 200 "b"; }}
        location /r {{ rewrite ^/r/(.*)$ /target/$1 redirect; }}
        location /i {{ if ($arg_x ~ ^y(\d)$) {{ return 200 "y"; }} return 200 "n"; }}
        location /quiet {{ rewrite_log off; rewrite ^/quiet$ /b; }}
        location /u {{ if ($arg_set) {{ set $late 1; }} return 200 "[$late]"; }}
        location /nowarn {{ uninitialized_variable_warn off; return 200 "[$late]"; }}
    }}
"#
    )
}

/// The lines `want` must all be in the log and `unwanted` none of them.
const WANT: &[&str] = &[
    "[notice]",
    "\"^/a(.*)$\" matches \"/a1\"",
    "rewritten data: \"/b1\", args: \"k=v\"",
    "\"^/r/(.*)$\" matches \"/r/x\"",
    "rewritten redirect: \"/target/x\"",
    "\"^y(\\d)$\" matches \"y1\"",
    "\"^y(\\d)$\" does not match \"z\"",
    "[warn]",
    "using uninitialized \"late\" variable",
];
const UNWANTED: &[&str] = &["\"^/quiet$\" matches", "\"/nowarn\""];

fn ask_all(port: u16) {
    for path in [
        "/a1", "/r/x", "/i?x=y1", "/i?x=z", "/quiet", "/u", "/nowarn",
    ] {
        get(port, Some("log.test"), path);
    }
}

fn check(logs: &str, who: &str) {
    for w in WANT {
        assert!(logs.contains(w), "{who}: no {w:?} in\n{logs}");
    }
    for u in UNWANTED {
        assert!(!logs.contains(u), "{who}: {u:?} in\n{logs}");
    }
    // Exactly one warning: /nowarn has it off.
    assert_eq!(
        logs.matches("using uninitialized").count(),
        1,
        "{who}: {logs}"
    );
}

#[test]
fn rewrite_log_and_uninitialized_variables_as_nginx() {
    let t = TempDir::new("rewrite-log");
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log notice;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        server(0).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    ask_all(p.port);
    assert!(
        wait_until(Duration::from_secs(10), || p
            .logs()
            .contains("using uninitialized")),
        "{}",
        p.logs()
    );
    check(&p.logs(), "proton");

    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| {
        format!("error_log error.log notice;\n{}", server(port))
    });
    ask_all(n.port());
    assert!(wait_until(Duration::from_secs(10), || n
        .logs()
        .contains("using uninitialized")));
    check(&n.logs(), "nginx");
}
