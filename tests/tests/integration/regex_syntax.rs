//! PCRE syntax in every place a config has regexes — `server_name`, `location`, `rewrite`,
//! `if` and `map` — as nginx reads it: `\Q…\E` quoting, `\p{N}`, `(?P<name>…)` and
//! `(?<name>…)` as variables, look-ahead, look-behind and back-references (PCRE2); and
//! `$server_name` of a `.example.com` name. The same config
//! runs in proton-run and, where Debian's nginx is installed, in nginx; the answers must agree.

use proton_tests::{nginx_binary, request, Nginx, Proton, TempDir};

/// The servers (inside `http {}`; `{port}` is filled in).
const SERVERS: &str = r#"
map $arg_k $m { ~^\Q[x]\E$ bracket; "~^(?<first>\p{N})" "digit $first"; default none; }
server {
    listen 127.0.0.1:{port};
    server_name localhost;
    location / { return 200 "default\n"; }
    location ~ ^/lit\Q.+*\E(?<rest>.*)$ { return 200 "lit rest=$rest\n"; }
    location /rw/ { rewrite ^/rw/\Q(a)\E/(.*)$ /done/$1 last; return 200 "no rewrite\n"; }
    location /done/ { return 200 "done $uri\n"; }
    location /if { if ($arg_x ~ ^\Qa.b\E$) { return 200 "if hit\n"; } return 200 "if miss\n"; }
    location /map { return 200 "map $m\n"; }
    location ~ ^/d/\d+$ { return 200 "digits\n"; }
    location ~ ^/w/\w+$ { return 200 "word\n"; }
    location ~ ^/one/.$ { return 200 "one byte\n"; }
    location ~ ^/two/..$ { return 200 "two bytes\n"; }
    # What needs PCRE itself (compiled by PCRE2, as nginx): look-ahead, look-behind,
    # back-references, with captures and named groups.
    location ~ ^/la/(?!admin|secret)(?<page>[a-z]+)$ { return 200 "la page=$page 1=$1\n"; }
    location ~ (?<=/lb)/v(\d+)$ { return 200 "lb v$1\n"; }
    location ~* ^/br/(\w+)/\1$ { return 200 "br twice $1\n"; }
    location /rwl/ { rewrite "^/rwl/(?=.*\.php$)(.+)$" /done/php-$1 last; return 200 "rwl no\n"; }
    location /ifl { if ($arg_v ~ "^(?![0-9]+$)") { return 200 "ifl not a number\n"; } return 200 "ifl number\n"; }
}
server {
    listen 127.0.0.1:{port};
    server_name .dot.test;
    location / { return 200 "sn=$server_name\n"; }
}
server {
    listen 127.0.0.1:{port};
    server_name ~^(?P<name>[a-z]+)\Q.q.test\E$;
    location / { return 200 "sn=$server_name name=$name\n"; }
}
server {
    listen 127.0.0.1:{port};
    server_name "~^(?<n>w\p{N}+)\.num\.test$";
    location / { return 200 "n=$n\n"; }
}
"#;

/// (host, path, the body nginx answers).
const CASES: &[(&str, &str, &str)] = &[
    ("localhost", "/", "default\n"),
    ("localhost", "/lit.+*abc", "lit rest=abc\n"),
    ("localhost", "/litx+*abc", "default\n"),
    ("localhost", "/lit..*abc", "default\n"),
    ("localhost", "/rw/(a)/zz", "done /done/zz\n"),
    ("localhost", "/rw/a/zz", "no rewrite\n"),
    ("localhost", "/if?x=a.b", "if hit\n"),
    ("localhost", "/if?x=axb", "if miss\n"),
    ("localhost", "/map?k=[x]", "map bracket\n"),
    ("localhost", "/map?k=x", "map none\n"),
    ("localhost", "/map?k=7z", "map digit 7\n"),
    // PCRE without UTF, as nginx compiles: classes are ASCII and `.` is one byte, so an
    // Arabic-Indic digit (U+0663) is no `\d`, "é" no `\w`, and "é" is two `.`.
    ("localhost", "/d/123", "digits\n"),
    ("localhost", "/d/%D9%A3", "default\n"),
    ("localhost", "/w/%C3%A9", "default\n"),
    ("localhost", "/one/%C3%A9", "default\n"),
    ("localhost", "/two/%C3%A9", "two bytes\n"),
    ("localhost", "/la/page", "la page=page 1=page\n"),
    ("localhost", "/la/admin", "default\n"),
    ("localhost", "/lb/v12", "lb v12\n"),
    ("localhost", "/lc/v12", "default\n"),
    ("localhost", "/br/ab/ab", "br twice ab\n"),
    ("localhost", "/BR/ab/AB", "br twice ab\n"),
    ("localhost", "/br/ab/cd", "default\n"),
    ("localhost", "/rwl/x.php", "done /done/php-x.php\n"),
    ("localhost", "/rwl/x.html", "rwl no\n"),
    ("localhost", "/ifl?v=abc", "ifl not a number\n"),
    ("localhost", "/ifl?v=123", "ifl number\n"),
    ("www.dot.test", "/", "sn=dot.test\n"),
    ("dot.test", "/", "sn=dot.test\n"),
    (
        "blah.q.test",
        "/",
        "sn=~^(?P<name>[a-z]+)\\Q.q.test\\E$ name=blah\n",
    ),
    ("blahxq.test", "/", "default\n"),
    (
        "BLAH.Q.TEST",
        "/",
        "sn=~^(?P<name>[a-z]+)\\Q.q.test\\E$ name=blah\n",
    ),
    ("w01.num.test", "/", "n=w01\n"),
    ("wx.num.test", "/", "default\n"),
];

fn body(port: u16, host: &str, path: &str) -> String {
    let r = request(port, Some(host), path).unwrap_or_else(|e| panic!("{host}{path}: {e}"));
    r.body_text()
}

#[test]
fn pcre_syntax_in_every_regex_as_nginx() {
    let t = TempDir::new("regex-syntax");
    let conf = format!("events {{}}\nhttp {{\n{SERVERS}\n}}\n");
    let proton = Proton::start(t.path(), &conf, 1);
    let nginx = nginx_binary()
        .map(|bin| Nginx::start(&bin, |port| SERVERS.replace("{port}", &port.to_string())));
    for &(host, path, want) in CASES {
        let got = body(proton.port, host, path);
        if let Some(nginx) = &nginx {
            let theirs = body(nginx.port(), host, path);
            assert_eq!(
                got, theirs,
                "{host}{path}: Proton (left) and nginx (right) differ"
            );
        }
        assert_eq!(got, want, "{host}{path}");
    }
}
