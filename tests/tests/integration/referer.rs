//! `valid_referers` and `$invalid_referer`, as nginx 1.22's referer module: schemes, host
//! names and wildcards with URI prefixes, regexes, `none`, `blocked`, `server_names` and
//! inheritance. One table of requests against proton-run and, where Debian's nginx is
//! installed, against nginx.

use proton_tests::{
    assert_same_as_nginx, nginx_binary, parse_response, raw_exchange, Nginx, Proton, TempDir,
};
use std::time::Duration;

fn server(port: u16) -> String {
    format!(
        r#"
    server {{
        listen 127.0.0.1:{port};
        server_name ref.test *.ref.test ~^re(\d+)\.test$;
        valid_referers none server_names;
        location / {{ return 200 "[$invalid_referer]"; }}
        location /img/ {{
            valid_referers blocked example.org/img/ *.example.com www.example.* ~\.example\.net/ok;
            return 200 "[$invalid_referer]";
        }}
        location /deny/ {{
            valid_referers example.org;
            if ($invalid_referer) {{ return 403; }}
            return 200 "ok";
        }}
    }}
"#
    )
}

const CASES: &[(&str, Option<&str>)] = &[
    ("/", None),
    ("/", Some("http://ref.test/")),
    ("/", Some("http://REF.test:8080/a")),
    ("/", Some("http://a.ref.test/")),
    ("/", Some("http://re12.test/x")),
    ("/", Some("http://re.test/x")),
    ("/", Some("ref.test")),
    ("/", Some("")),
    ("/img/", None),
    ("/img/", Some("example.org")),
    ("/img/", Some("http://example.org/img/a.png")),
    ("/img/", Some("http://example.org/images/a.png")),
    ("/img/", Some("http://example.org:81/img/")),
    ("/img/", Some("http://cdn.example.com/")),
    ("/img/", Some("http://example.com/")),
    ("/img/", Some("https://www.example.de/")),
    ("/img/", Some("http://www.EXAMPLE.net/ok")),
    ("/img/", Some("http://www.example.net/no")),
    ("/img/", Some("http://su")),
    ("/deny/", Some("http://example.org/")),
    ("/deny/", Some("http://evil.test/")),
    ("/deny/", None),
];

fn ask(port: u16, uri: &str, referer: Option<&str>) -> String {
    let mut raw = format!("GET {uri} HTTP/1.0\r\nHost: ref.test\r\n");
    if let Some(r) = referer {
        raw.push_str(&format!("Referer: {r}\r\n"));
    }
    raw.push_str("\r\n");
    let (bytes, _) = raw_exchange(port, raw.as_bytes(), Duration::from_secs(10));
    match parse_response(&bytes) {
        Ok(r) if r.status == 200 => format!("200 {}", r.body_text()),
        Ok(r) => r.status.to_string(),
        Err(e) => format!("unparsable ({e})"),
    }
}

#[test]
fn valid_referers_as_nginx() {
    let t = TempDir::new("referer");
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\n{}}}\n",
        server(0).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);
    let ours: Vec<String> = CASES.iter().map(|(u, r)| ask(p.port, u, *r)).collect();
    // What Proton must answer even where nginx is not installed.
    for (i, want) in [
        (0, "200 []"),
        (4, "200 []"),
        (5, "200 [1]"),
        (9, "200 []"),
        (11, "200 [1]"),
        (16, "200 []"),
        (20, "403"),
    ] {
        assert_eq!(ours[i], want, "{:?}", CASES[i]);
    }
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, server);
    let theirs: Vec<String> = CASES.iter().map(|(u, r)| ask(n.port(), u, *r)).collect();
    assert_same_as_nginx(CASES, &ours, &theirs, &p.logs());
}
