//! The JSON and YAML front ends, the converters and the JSON Schema: documents read into the
//! same directive tree as NGINX-style text, every document error points at the right
//! line:col, conf → json/yaml/conf → tree round-trips, and schemas/proton.schema.json is
//! current (`UPDATE_SCHEMA=1 cargo test -p proton-compiler --test frontend` rewrites it).

mod support;

use proptest::prelude::*;
use proton_compiler::ast::Directive;
use proton_compiler::diagnostics::{Code, Diagnostics};
use proton_compiler::frontend::{
    format_of, parse_document, schema, schema_string, to_conf_string, to_json, to_json_string,
    to_yaml_string, DocFormat,
};
use proton_compiler::source::{SourceMap, Span};
use proton_compiler::syntax::parse_text;
use serde_json::Value;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// helpers

/// A tree without spans or quote styles: `name <arg>… { … }`.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    Line(String, Vec<String>),
    Block(String, Vec<String>, Vec<Shape>),
}

fn shape(tree: &[Directive]) -> Vec<Shape> {
    tree.iter()
        .map(|d| {
            let args = d.values().map(str::to_string).collect();
            match &d.block {
                Some(b) => Shape::Block(d.name.clone(), args, shape(b)),
                None => Shape::Line(d.name.clone(), args),
            }
        })
        .collect()
}

struct Read {
    map: SourceMap,
    tree: Vec<Directive>,
    diags: Diagnostics,
}

impl Read {
    fn at(&self, span: Span) -> (usize, usize) {
        self.map.line_col(span)
    }

    fn assert_clean(&self) {
        assert!(
            self.diags.list.is_empty(),
            "unexpected diagnostics: {:#?}",
            self.diags
                .list
                .iter()
                .map(|d| (d.message.clone(), self.at(d.span)))
                .collect::<Vec<_>>()
        );
    }

    /// (line, col, code, message) of every diagnostic.
    fn found(&self) -> Vec<(usize, usize, Code, String)> {
        self.diags
            .list
            .iter()
            .map(|d| {
                let (l, c) = self.at(d.span);
                (l, c, d.code, d.message.clone())
            })
            .collect()
    }
}

fn read(format: DocFormat, text: &str) -> Read {
    let mut map = SourceMap::new();
    let name = match format {
        DocFormat::Json => "proton.json",
        DocFormat::Yaml => "proton.yaml",
    };
    let file = map.add(PathBuf::from(name), text.to_string());
    let mut diags = Diagnostics::default();
    let tree = parse_document(file, map.text(file), format, &mut diags);
    Read { map, tree, diags }
}

fn conf(text: &str) -> Vec<Directive> {
    let mut map = SourceMap::new();
    let file = map.add(PathBuf::from("proton.conf"), text.to_string());
    let mut diags = Diagnostics::default();
    let tree = parse_text(file, map.text(file), &mut diags);
    assert!(
        !diags.has_errors(),
        "conf does not parse: {:#?}",
        diags.list
    );
    tree
}

// ---------------------------------------------------------------------------------------------
// reading documents

const EXAMPLE_JSON: &str = r#"{
  "worker_processes": "auto",
  "error_log": [["logs/error.log", "warn"]],
  "events": { "worker_connections": 1024, "use": "epoll" },
  "http": {
    "types": { "text/html": ["html", "htm"], "image/png": "png" },
    "default_type": "application/octet-stream",
    "log_format": [["main", "$remote_addr - $request"]],
    "sendfile": true,
    "upstreams": { "backend": { "server": ["127.0.0.1:3000", ["127.0.0.1:3001", "weight=2", "backup"]], "keepalive": 16, "least_conn": true } },
    "servers": [
      { "listen": ["8080", ["127.0.0.1:8081", "default_server"]], "server_name": ["example.com", "*.example.com"],
        "root": "html",
        "locations": [
          { "match": "/", "try_files": ["$uri", "$uri/", "=404"] },
          { "match": "= /exact", "return": [200, "hi"] },
          { "match": "~* \\.(gif|jpg)$", "expires": "30d", "locations": [ { "match": "~ ^/img/(\\d+)\\.gif$", "internal": true } ] },
          { "match": "@fallback", "proxy_pass": "http://backend" }
        ] }
    ],
    "maps": { "$connection_upgrade": { "source": "$http_upgrade", "entries": { "default": "upgrade", "": "close", "hostnames": true } } }
  }
}
"#;

const EXAMPLE_YAML: &str = r#"# the same configuration as EXAMPLE_JSON
worker_processes: auto
error_log:
  - [logs/error.log, warn]
events:
  worker_connections: 1024
  use: epoll
http:
  types:
    text/html: [html, htm]
    image/png: png
  default_type: application/octet-stream
  log_format:
    - [main, "$remote_addr - $request"]
  sendfile: true
  upstreams:
    backend:
      server:
        - 127.0.0.1:3000
        - [127.0.0.1:3001, weight=2, backup]
      keepalive: 16
      least_conn: true
  servers:
    - listen: ["8080", ["127.0.0.1:8081", default_server]]
      server_name: [example.com, "*.example.com"]
      root: html
      locations:
        - match: /
          try_files: [$uri, $uri/, "=404"]
        - match: = /exact
          return: [200, hi]
        - match: '~* \.(gif|jpg)$'
          expires: 30d
          locations:
            - match: ~ ^/img/(\d+)\.gif$
              internal: true
        - match: "@fallback"
          proxy_pass: http://backend
  maps:
    $connection_upgrade:
      source: $http_upgrade
      entries: { default: upgrade, "": close, hostnames: true }
"#;

const EXAMPLE_CONF: &str = r#"
worker_processes auto;
error_log logs/error.log warn;
events {
    worker_connections 1024;
    use epoll;
}
http {
    types {
        text/html html htm;
        image/png png;
    }
    default_type application/octet-stream;
    log_format main "$remote_addr - $request";
    sendfile on;
    upstream backend {
        server 127.0.0.1:3000;
        server 127.0.0.1:3001 weight=2 backup;
        keepalive 16;
        least_conn;
    }
    server {
        listen 8080;
        listen 127.0.0.1:8081 default_server;
        server_name example.com;
        server_name *.example.com;
        root html;
        location / {
            try_files $uri $uri/ =404;
        }
        location = /exact {
            return 200 hi;
        }
        location ~* \.(gif|jpg)$ {
            expires 30d;
            location ~ ^/img/(\d+)\.gif$ {
                internal;
            }
        }
        location @fallback {
            proxy_pass http://backend;
        }
    }
    map $http_upgrade $connection_upgrade {
        default upgrade;
        "" close;
        hostnames;
    }
}
"#;

#[test]
fn json_example_reads_as_the_conf() {
    let r = read(DocFormat::Json, EXAMPLE_JSON);
    r.assert_clean();
    assert_eq!(shape(&r.tree), shape(&conf(EXAMPLE_CONF)));
}

#[test]
fn yaml_example_reads_as_the_conf() {
    let r = read(DocFormat::Yaml, EXAMPLE_YAML);
    r.assert_clean();
    assert_eq!(shape(&r.tree), shape(&conf(EXAMPLE_CONF)));
}

#[test]
fn documents_pass_the_table_check() {
    for (format, text) in [
        (DocFormat::Json, EXAMPLE_JSON),
        (DocFormat::Yaml, EXAMPLE_YAML),
    ] {
        let r = read(format, text);
        let mut diags = Diagnostics::default();
        proton_compiler::check::table::check(&r.tree, &mut diags);
        assert!(diags.list.is_empty(), "{format:?}: {:#?}", diags.list);
    }
}

#[test]
fn json_spans_point_at_keys_and_values() {
    let r = read(DocFormat::Json, EXAMPLE_JSON);
    let http = &r.tree[3];
    assert_eq!(http.name, "http");
    assert_eq!(r.at(http.name_span), (5, 3));
    let server = http
        .children()
        .iter()
        .find(|d| d.name == "server")
        .expect("a server");
    assert_eq!(
        r.at(server.name_span),
        (12, 7),
        "a server points at its object's '{{'"
    );
    let listen = &server.children()[0];
    assert_eq!(
        (listen.name.as_str(), r.at(listen.name_span)),
        ("listen", (12, 9))
    );
    assert_eq!(r.at(listen.args[0].span), (12, 20));
    let second = &server.children()[1];
    assert_eq!(r.at(second.args[1].span), (12, 47));
    let regex = server
        .children()
        .iter()
        .filter(|d| d.name == "location")
        .nth(2)
        .expect("3rd location");
    assert_eq!(regex.values().collect::<Vec<_>>(), ["~*", "\\.(gif|jpg)$"]);
    // The match has an escape, so both arguments point at the whole string.
    assert_eq!(r.at(regex.args[0].span), (17, 22));
    let exact = server
        .children()
        .iter()
        .filter(|d| d.name == "location")
        .nth(1)
        .expect("2nd location");
    // Without escapes, the modifier and the URI get their own spans.
    assert_eq!(r.at(exact.args[0].span), (16, 23));
    assert_eq!(r.at(exact.args[1].span), (16, 25));
    assert_eq!(
        exact.args[1].span.end - exact.args[1].span.start,
        "/exact".len() as u32
    );
    let ret = &exact.children()[0];
    assert_eq!(
        r.map.text(ret.span.file)[ret.span.range()].to_string(),
        "\"return\": [200, \"hi\"]"
    );
}

#[test]
fn yaml_spans_point_at_keys_and_values() {
    let r = read(DocFormat::Yaml, EXAMPLE_YAML);
    let http = &r.tree[3];
    assert_eq!(r.at(http.name_span), (8, 1));
    let upstream = http
        .children()
        .iter()
        .find(|d| d.name == "upstream")
        .expect("upstream");
    assert_eq!(r.at(upstream.name_span), (17, 5));
    assert_eq!(r.at(upstream.args[0].span), (17, 5));
    let members: Vec<_> = upstream
        .children()
        .iter()
        .filter(|d| d.name == "server")
        .collect();
    assert_eq!(r.at(members[1].args[2].span), (20, 38));
    let server = http
        .children()
        .iter()
        .find(|d| d.name == "server")
        .expect("server");
    assert_eq!(
        r.at(server.name_span),
        (24, 7),
        "a block-style server points at its first key"
    );
    let exact = server
        .children()
        .iter()
        .filter(|d| d.name == "location")
        .nth(1)
        .expect("2nd location");
    assert_eq!(r.at(exact.args[0].span), (30, 18));
    assert_eq!(r.at(exact.args[1].span), (30, 20));
    let text = r.map.text(exact.span.file);
    assert_eq!(&text[exact.args[1].span.range()], "/exact");
    let regex = server
        .children()
        .iter()
        .filter(|d| d.name == "location")
        .nth(2)
        .expect("3rd location");
    assert_eq!(&text[regex.args[1].span.range()], "\\.(gif|jpg)$");
    let sn = server
        .children()
        .iter()
        .find(|d| d.name == "server_name")
        .expect("server_name");
    assert_eq!(&text[sn.args[0].span.range()], "example.com");
}

#[test]
fn json_that_yaml_readers_reject_is_read() {
    // No spaces, escapes, unicode, surrogate pairs, a byte-order mark, tabs, numbers as written.
    let text = "\u{feff}{\"http\":{\"default_type\":\"t\\u00e9xt/\\ud83d\\ude00\",\"servers\":[{\"root\":\"a\\\\.b\\\"c\\/\",\t\"listen\":[8080,-1.5e3]}]}}";
    let r = read(DocFormat::Json, text);
    r.assert_clean();
    let http = &r.tree[0];
    assert_eq!(http.children()[0].args[0].value, "t\u{e9}xt/\u{1f600}");
    let server = &http.children()[1];
    assert_eq!(server.children()[0].args[0].value, "a\\.b\"c/");
    assert_eq!(server.children()[1].args[0].value, "8080");
    assert_eq!(server.children()[2].args[0].value, "-1.5e3");
    // Spans are byte ranges even after multi-byte text.
    assert_eq!(
        &r.map.text(server.span.file)[server.children()[2].args[0].span.range()],
        "-1.5e3"
    );
}

#[test]
fn yaml_with_multibyte_text_has_byte_spans() {
    let text = "http:\n  default_type: \"täxt/ü\"\n  root: /wö\n";
    let r = read(DocFormat::Yaml, text);
    r.assert_clean();
    let root = &r.tree[0].children()[1];
    assert_eq!(root.args[0].value, "/wö");
    assert_eq!(&text[root.args[0].span.range()], "/wö");
    assert_eq!(r.at(root.args[0].span), (3, 9));
}

#[test]
fn empty_documents() {
    let r = read(DocFormat::Yaml, "# nothing yet\n");
    r.assert_clean();
    assert!(r.tree.is_empty());
    let r = read(DocFormat::Json, "{}");
    r.assert_clean();
    assert!(r.tree.is_empty());
    let r = read(DocFormat::Json, "  ");
    assert_eq!(r.diags.error_count(), 1);
}

#[test]
fn flags_numbers_and_no_argument_directives() {
    let r = read(
        DocFormat::Yaml,
        "http:\n  sendfile: false\n  tcp_nodelay: on\n  servers:\n    - locations:\n        - match: /a\n          internal: false\n        - match: /b\n          internal: true\n          return: 204\n",
    );
    r.assert_clean();
    assert_eq!(
        shape(&r.tree),
        shape(&conf("http { sendfile off; tcp_nodelay on; server { location /a { } location /b { internal; return 204; } } }"))
    );
}

#[test]
fn directives_the_table_rejects_are_passed_through() {
    // Wrong context and unsupported directives reach the table check, which reports them as for
    // a .conf file, at the key.
    let text = "{\n  \"http\": {\n    \"keepalive\": 4,\n    \"gzip_no_buffer\": true\n  }\n}\n";
    let r = read(DocFormat::Json, text);
    r.assert_clean();
    let mut diags = Diagnostics::default();
    proton_compiler::check::table::check(&r.tree, &mut diags);
    let got: Vec<_> = diags.list.iter().map(|d| (d.code, r.at(d.span))).collect();
    assert_eq!(
        got,
        [(Code::WrongContext, (3, 5)), (Code::Unsupported, (4, 5))]
    );
}

// ---------------------------------------------------------------------------------------------
// document errors: every one reported, each at the right line:col

fn assert_errors(format: DocFormat, text: &str, want: &[(usize, usize, &str)]) {
    let r = read(format, text);
    let mut got = r.found();
    got.sort_by_key(|(l, c, _, _)| (*l, *c));
    assert_eq!(
        got.len(),
        want.len(),
        "{format:?} {text:?}\n got: {got:#?}\nwant: {want:#?}"
    );
    for ((l, c, code, msg), (wl, wc, wmsg)) in got.iter().zip(want) {
        assert_eq!((*l, *c), (*wl, *wc), "{msg}");
        assert!(msg.contains(wmsg), "{msg:?} does not contain {wmsg:?}");
        assert!(matches!(code, Code::Document | Code::Syntax), "{code:?}");
    }
    for d in &r.diags.list {
        assert!(d.help.is_some(), "{} has no help", d.message);
        assert!(!d.label.is_empty(), "{} has no label", d.message);
    }
}

#[test]
fn json_document_errors() {
    let text = r#"{
  "worker_procesess": 2,
  "events": [1],
  "http": {
    "root": true,
    "sendfile": "on",
    "index": ["a", ["b"]],
    "server": {},
    "locations": [],
    "servers": [
      { "locations": [ { "root": "x" }, { "match": true, "internal": true }, { "match": ["/"] } ] },
      "nope",
      { "listen": [80, [81, [82]]], "root": null, "return": {"code": 200} }
    ],
    "upstreams": { "b": [] },
    "types": { "text/html": [1, true] },
    "root": "twice"
  }
}"#;
    assert_errors(
        DocFormat::Json,
        text,
        &[
            (
                2,
                3,
                "unknown key \"worker_procesess\" in the top-level object",
            ),
            (3, 13, "\"events\" must be an object"),
            (5, 13, "\"root\" needs arguments, not true"),
            (7, 20, "arrays nested too deeply in \"index\""),
            (8, 5, "\"server\" blocks are written as \"servers\""),
            (9, 5, "\"locations\" is not allowed in the http object"),
            (11, 24, "location without \"match\""),
            (11, 52, "\"match\" must be a string"),
            (11, 89, "\"match\" must be a string"),
            (12, 7, "each entry of \"servers\" must be an object"),
            (13, 29, "arrays nested too deeply in \"listen\""),
            (13, 45, "missing value for \"root\""),
            (13, 61, "\"return\" takes a value, not an object"),
            (15, 25, "\"b\" in \"upstreams\" must be an object"),
            (16, 33, "a file name extension must be a string"),
            (17, 5, "duplicate key \"root\""),
        ],
    );
}

#[test]
fn unknown_keys_suggest_close_names() {
    let r = read(
        DocFormat::Json,
        "{\"http\": {\"servers\": [{\"lisen\": 80, \"location\": []}]}}",
    );
    let helps: Vec<_> = r
        .diags
        .list
        .iter()
        .map(|d| d.help.clone().unwrap_or_default())
        .collect();
    assert!(helps[0].contains("did you mean \"listen\""), "{helps:?}");
    assert!(helps[1].contains("\"locations\": ["), "{helps:?}");
    let r = read(DocFormat::Yaml, "include: a.conf\n");
    assert!(r.diags.list[0]
        .help
        .as_deref()
        .unwrap_or("")
        .contains("no include"));
}

#[test]
fn json_syntax_errors() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "{\n  \"a\": 1\n  \"b\": 2\n}",
            (3, 3),
            "expected `,` or `}`",
        ),
        ("{\"é\": 1,}", (1, 9), "key must be a string"),
        ("[1, 2,]", (1, 7), "expected value"),
        ("{\"http\": {\n", (2, 1), "EOF"),
        ("{\"a\": tru}", (1, 10), "expected ident"),
        ("{} x", (1, 4), "trailing characters"),
    ];
    for (text, at, msg) in cases {
        let r = read(DocFormat::Json, text);
        let got = r.found();
        assert_eq!(got.len(), 1, "{text:?}: {got:?}");
        assert_eq!((got[0].0, got[0].1), *at, "{text:?}: {got:?}");
        assert_eq!(got[0].2, Code::Syntax);
        assert!(
            got[0].3.starts_with("JSON syntax error: ") && got[0].3.contains(msg),
            "{got:?}"
        );
        if text.contains(",}") || text.contains(",]") {
            let help = r.diags.list[0].help.clone().unwrap_or_default();
            assert!(help.contains("comma"), "{help}");
        }
    }
}

#[test]
fn yaml_document_errors() {
    let text = "\
worker_processes: 2
base: &b
  root: html
http:
  servers:
    - root: *b
      index: !custom x
      listen: 80
      listen: 81
      internal:
  sendfile: !!str on
---
second: doc
";
    assert_errors(
        DocFormat::Yaml,
        text,
        &[
            (2, 1, "unknown key \"base\""),
            (2, 7, "YAML anchors are not supported"),
            (6, 13, "YAML aliases are not supported"),
            (7, 14, "YAML tag \"!custom\" is not supported"),
            (9, 7, "duplicate key \"listen\""),
            (10, 7, "missing value for \"internal\""),
            (12, 1, "more than one YAML document"),
        ],
    );
}

#[test]
fn yaml_null_values_point_at_their_key() {
    assert_errors(
        DocFormat::Yaml,
        "http:\n  root:\n  index: x\n",
        &[(2, 3, "missing value for \"root\"")],
    );
}

#[test]
fn yaml_syntax_errors() {
    let cases: &[(&str, (usize, usize))] = &[
        ("http:\n  root: \"unterminated\n  index: x\n", (2, 9)),
        ("http: [a, b\n", (2, 1)),
        ("a: b\n c: d\n", (2, 3)),
    ];
    for (text, at) in cases {
        let r = read(DocFormat::Yaml, text);
        let got = r.found();
        assert_eq!(got.len(), 1, "{text:?}: {got:?}");
        assert_eq!((got[0].0, got[0].1), *at, "{text:?}: {got:?}");
        assert!(got[0].3.starts_with("YAML syntax error"), "{got:?}");
    }
}

#[test]
fn root_must_be_an_object() {
    assert_errors(
        DocFormat::Json,
        "\n [1, 2]",
        &[(2, 2, "the document must be an object")],
    );
    assert_errors(
        DocFormat::Yaml,
        "- a\n- b\n",
        &[(1, 1, "the document must be an object")],
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{{\"http\": {}{}}}", "[".repeat(100), "]".repeat(100));
    let r = read(DocFormat::Json, &deep);
    assert!(r.diags.has_errors());
    let deep = format!("http: {}{}\n", "[".repeat(5000), "]".repeat(5000));
    let r = read(DocFormat::Yaml, &deep);
    assert!(r.diags.has_errors());
    let r = read(DocFormat::Yaml, &format!("http: {}\n", "[".repeat(5000)));
    assert!(r.diags.has_errors());
}

// ---------------------------------------------------------------------------------------------
// round trips

const RICH_CONF: &str = r#"
worker_processes 4;
worker_rlimit_nofile 65535;
error_log logs/error.log warn;
error_log /var/log/proton/debug.log;
pid /run/proton.pid;

events {
    worker_connections 4096;
    use epoll;
}

http {
    types {
        text/html html htm shtml;
        text/css css;
        image/svg+xml svg svgz;
        application/x-7z-compressed 7z;
    }
    default_type application/octet-stream;
    geo $http_x_ip $ranged {
        ranges;
        default none;
        proxy 10.0.0.1;
        proxy 10.0.0.2;
        10.0.0.0-10.255.255.255 ten;
        delete 10.1.0.0-10.1.255.255;
    }
    split_clients "${remote_addr}AAA" $variant {
        50% a;
        50% "b c";
    }
    charset_map koi8-r windows-1251 {
        C0 FE;
        C1 E0;
    }
    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent';
    log_format json escape=json '{"uri":"$uri"}';
    access_log logs/access.log main;
    access_log off;
    sendfile on;
    tcp_nopush off;
    keepalive_timeout 75s 60s;
    client_max_body_size 10m;
    large_client_header_buffers 4 8k;
    proxy_next_upstream error timeout http_502;
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header Connection $connection_upgrade;

    map $http_upgrade $connection_upgrade {
        default upgrade;
        '' close;
    }

    map $host$is_args $site {
        hostnames;
        volatile;
        .example.com 1;
        www.example.* "two words";
        "~^(?<sub>[a-z]+)\.example\.org$" "sub $sub";
        ~*^WWW\d+\. $1;
        \default 3;
        "a b" 4;
        "semi;colon" 5;
        007 6;
        default "$connection_upgrade-$uri";
    }

    upstream backend {
        server 127.0.0.1:3000;
        server 127.0.0.1:3001 weight=2 max_fails=3 fail_timeout=10s;
        server 127.0.0.1:3002 backup;
        keepalive 16;
        least_conn;
    }

    upstream hashed {
        hash $request_uri consistent;
        server 127.0.0.1:4000;
    }

    upstream random_two {
        random two;
        server 10.0.0.1:80;
    }

    server {
        listen 8080;
        listen 127.0.0.1:8081 default_server reuseport;
        listen [::]:8082;
        server_name example.com *.example.com www.example.*;
        server_name ~^(?<sub>\w+)\.example\.org$;
        root html;
        index index.html index.htm;
        error_page 404 /404.html;
        error_page 500 502 503 504 =200 /50x.html;
        add_header X-Frame-Options DENY always;
        add_header X-Semi "a;b {c} #d" always;
        add_header X-Quote "say \"hi\"\tand 'bye'";

        location / {
            try_files $uri $uri/ @fallback;
        }

        location = /exact {
            return 200 "hello, world\n";
        }

        location ^~ /static/ {
            alias /var/www/static/;
            autoindex on;
            expires max;
            etag off;
            if_modified_since before;
        }

        location ~* \.(gif|jpg|png)$ {
            expires 30d;

            location ~ ^/img/(\d{2,3})/ {
                internal;
            }
        }

        location "/with space" {
            return 204;
        }

        location /rewrite {
            set $a 1;
            set $b "${a}x";
            rewrite ^/rewrite/(.*)$ /$1 break;
            rewrite ^ /other last;
            return 301 https://$host$request_uri;
        }

        location @fallback {
            proxy_pass http://backend;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_hide_header X-Powered-By;
            proxy_redirect default;
            proxy_buffers 8 16k;
            proxy_intercept_errors on;
        }
    }

    server {
        listen 80;
        server_name "";
        return 444;
    }
}
"#;

#[test]
fn conf_to_json_round_trips() {
    let tree = conf(RICH_CONF);
    let json = to_json_string(&tree);
    let r = read(DocFormat::Json, &json);
    r.assert_clean();
    assert_eq!(shape(&r.tree), shape(&tree), "\n{json}");
    // The Value form says the same as the text form.
    let parsed: Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(parsed, to_json(&tree));
}

#[test]
fn conf_to_yaml_round_trips() {
    let tree = conf(RICH_CONF);
    let yaml = to_yaml_string(&tree);
    let r = read(DocFormat::Yaml, &yaml);
    r.assert_clean();
    assert_eq!(shape(&r.tree), shape(&tree), "\n{yaml}");
}

#[test]
fn conf_to_conf_round_trips() {
    let tree = conf(RICH_CONF);
    let text = to_conf_string(&tree);
    assert_eq!(shape(&conf(&text)), shape(&tree), "\n{text}");
    // Writing is stable.
    assert_eq!(to_conf_string(&conf(&text)), text);
}

#[test]
fn documents_round_trip_through_every_format() {
    for (format, text) in [
        (DocFormat::Json, EXAMPLE_JSON),
        (DocFormat::Yaml, EXAMPLE_YAML),
    ] {
        let tree = read(format, text).tree;
        let via_conf = conf(&to_conf_string(&tree));
        assert_eq!(shape(&via_conf), shape(&tree));
        let json = to_json_string(&tree);
        assert_eq!(to_json_string(&read(DocFormat::Json, &json).tree), json);
        let yaml = to_yaml_string(&tree);
        assert_eq!(to_yaml_string(&read(DocFormat::Yaml, &yaml).tree), yaml);
    }
}

#[test]
fn written_documents_look_like_the_typed_shape() {
    let tree = conf(EXAMPLE_CONF);
    let v = to_json(&tree);
    assert_eq!(v["worker_processes"], "auto");
    assert_eq!(
        v["error_log"],
        serde_json::json!([["logs/error.log", "warn"]])
    );
    assert_eq!(v["events"]["worker_connections"], 1024);
    assert_eq!(v["http"]["sendfile"], true);
    assert_eq!(
        v["http"]["types"]["text/html"],
        serde_json::json!(["html", "htm"])
    );
    assert_eq!(v["http"]["types"]["image/png"], "png");
    assert_eq!(v["http"]["upstreams"]["backend"]["least_conn"], true);
    assert_eq!(v["http"]["upstreams"]["backend"]["keepalive"], 16);
    let server = &v["http"]["servers"][0];
    assert_eq!(
        server["listen"],
        serde_json::json!([8080, ["127.0.0.1:8081", "default_server"]])
    );
    assert_eq!(server["locations"][1]["match"], "= /exact");
    assert_eq!(
        server["locations"][1]["return"],
        serde_json::json!([200, "hi"])
    );
    assert_eq!(server["locations"][2]["locations"][0]["internal"], true);
    // Key order follows the configuration.
    let json = to_json_string(&tree);
    let pos = |k: &str| json.find(k).unwrap_or(usize::MAX);
    assert!(
        pos("\"worker_processes\"") < pos("\"error_log\"") && pos("\"events\"") < pos("\"http\"")
    );
    assert!(pos("\"upstreams\"") < pos("\"servers\""));
    let yaml = to_yaml_string(&tree);
    assert!(
        yaml.starts_with("worker_processes: auto\nerror_log:"),
        "{yaml}"
    );
    assert!(yaml.contains("        - match: \"= /exact\"\n"), "{yaml}");
}

/// (name, first argument) of the lines of the first location of the first server.
fn first_location_lines(tree: &[Directive]) -> Vec<(String, String)> {
    tree[0].children()[0].children()[0]
        .children()
        .iter()
        .map(|d| (d.name.clone(), d.args[0].value.clone()))
        .collect()
}

#[test]
fn rewrite_module_order_is_kept() {
    let tree = conf("http { server { location / { set $a 1; rewrite ^/a /b; set $c 2; rewrite ^/b /c last; return 204; } } }");
    let want = [
        ("set", "$a"),
        ("rewrite", "^/a"),
        ("set", "$c"),
        ("rewrite", "^/b"),
        ("return", "204"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    for format in [DocFormat::Json, DocFormat::Yaml] {
        let text = match format {
            DocFormat::Json => to_json_string(&tree),
            DocFormat::Yaml => to_yaml_string(&tree),
        };
        let r = read(format, &text);
        r.assert_clean();
        assert_eq!(first_location_lines(&r.tree), want, "{format:?}:\n{text}");
    }
    // Written as an ordered `script` list, one directive per entry.
    let v = to_json(&tree);
    let script = &v["http"]["servers"][0]["locations"][0]["script"];
    assert_eq!(script[0], serde_json::json!({ "set": ["$a", 1] }));
    assert_eq!(script[4], serde_json::json!({ "return": 204 }));
    assert!(v["http"]["servers"][0]["locations"][0].get("set").is_none());
    let json = to_json_string(&tree);
    assert!(
        json.contains("\n              { \"set\": [\"$a\", 1] },\n"),
        "{json}"
    );
    let yaml = to_yaml_string(&tree);
    assert!(
        yaml.contains("\n            - set: [$a, 1]\n            - rewrite: [^/a, /b]\n"),
        "{yaml}"
    );
    // One kind only keeps its own key.
    let v = to_json(&conf("http { server { location / { return 204; } location /r { rewrite ^ /a; rewrite ^ /b; } } }"));
    assert_eq!(v["http"]["servers"][0]["locations"][0]["return"], 204);
    assert!(v["http"]["servers"][0]["locations"][1]["rewrite"].is_array());
}

/// The case that lost meaning: `set` before and after a `rewrite` in the server, read by
/// `return` in the location. Through JSON or YAML, `$a` must still end as `two`.
#[test]
fn interleaved_set_keeps_its_value_through_every_format() {
    let text = "events {}\nhttp { server { listen 80; set $a one; rewrite ^/x$ /y; set $a two; location / { set $b x; return 200 \"$a$b\"; set $b y; } } }\n";
    let mut map = SourceMap::new();
    let file = map.add(PathBuf::from("order.conf"), text.to_string());
    let mut diags = Diagnostics::default();
    let tree = parse_text(file, text, &mut diags);
    assert_same_ir("interleaved", &tree, &map);
}

#[test]
fn script_errors() {
    assert_errors(
        DocFormat::Json,
        r#"{ "http": { "servers": [ { "script": { "set": ["$a", "1"] } } ] } }"#,
        &[(1, 38, "\"script\" must be an array")],
    );
    assert_errors(
        DocFormat::Json,
        r#"{ "http": { "servers": [ { "script": [ { "set": ["$a", "1"], "return": 204 }, 7 ] } ] } }"#,
        &[
            (1, 40, "an entry of \"script\" has 2 keys"),
            (1, 79, "each entry of \"script\" must be an object"),
        ],
    );
    assert_errors(
        DocFormat::Json,
        r#"{ "http": { "servers": [ { "script": [ { "sett": ["$a", "1"] }, { "root": "/x" } ] } ] } }"#,
        &[
            (1, 42, "\"sett\" does not belong in \"script\""),
            (1, 67, "\"root\" does not belong in \"script\""),
        ],
    );
    assert_errors(
        DocFormat::Yaml,
        "http:\n  servers:\n    - return: 204\n      script:\n        - set: [$a, 1]\n      set: [[$b, 2]]\n",
        &[(3, 7, "\"return\" beside \"script\": the order of the two is not defined")],
    );
    // Only servers and locations run scripts.
    assert_errors(
        DocFormat::Json,
        r#"{ "http": { "script": [] } }"#,
        &[(1, 13, "unknown key \"script\" in the http object")],
    );
}

// ---------------------------------------------------------------------------------------------
// if and limit_except

/// Every form of `if` condition nginx reads (`=`, `!=`, the regex operators, file tests, a
/// lone variable, parentheses apart from the words, quoted words), in servers and locations,
/// nested among the other rewrite-module directives, and `limit_except`.
const IF_CONF: &str = r#"
events {}
http {
    server {
        listen 8080;
        set $a 1;
        if ($http_x_block) {
            return 403;
        }
        if ( $host = "" ) {
            set $a 2;
            return 400;
        }
        rewrite ^/old/(.*)$ /new/$1;
        location / {
            if ($arg_x ~* "^(a|b) c$" ) {
                set $y $1;
                proxy_pass http://127.0.0.1:9000;
            }
            if (!-f $request_filename) {
                rewrite ^ /index.html;
            }
            if (-d $request_filename) { return 404; }
            if ($request_method !~ ^(GET|HEAD)$) { return 405; }
            if ($cookie_a != 1) { add_header X-A a; }
            if ($arg_q !~* x) { break; }
            if ($arg_r ~ (x)) { return 204; }
            if ($arg_s = "two words") { return 200 "$a$y"; }
            if ($arg_t) { access_log off; set $z 1; return 202; }
            return 200 ok;
            limit_except GET POST {
                deny all;
                proxy_pass http://127.0.0.1:9001;
            }
        }
        location /only {
            limit_except get { allow 127.0.0.1; deny all; }
        }
    }
}
"#;

#[test]
fn if_and_limit_except_round_trip_through_every_format() {
    let tree = conf(IF_CONF);
    for format in [DocFormat::Json, DocFormat::Yaml] {
        let text = match format {
            DocFormat::Json => to_json_string(&tree),
            DocFormat::Yaml => to_yaml_string(&tree),
        };
        let r = read(format, &text);
        r.assert_clean();
        // `( $host = "" )` comes back as `($host = "" )`: the same words.
        let fixed = conf(&IF_CONF.replace("if ( $host = \"\" )", "if ($host = \"\" )"));
        assert_eq!(shape(&r.tree), shape(&fixed), "{format:?}:\n{text}");
        // Writing is stable.
        let again = match format {
            DocFormat::Json => to_json_string(&r.tree),
            DocFormat::Yaml => to_yaml_string(&r.tree),
        };
        assert_eq!(again, text);
    }
    let mut map = SourceMap::new();
    let file = map.add(PathBuf::from("if.conf"), IF_CONF.to_string());
    let mut diags = Diagnostics::default();
    let tree = parse_text(file, IF_CONF, &mut diags);
    assert_same_ir("IF_CONF", &tree, &map);
}

#[test]
fn if_and_limit_except_document_shape() {
    let v = to_json(&conf(IF_CONF));
    let server = &v["http"]["servers"][0];
    assert!(server.get("if").is_none() && server.get("set").is_none());
    assert_eq!(server["script"][0], serde_json::json!({ "set": ["$a", 1] }));
    assert_eq!(
        server["script"][1],
        serde_json::json!({ "if": { "condition": ["$http_x_block"], "return": 403 } })
    );
    assert_eq!(
        server["script"][2],
        serde_json::json!({ "if": { "condition": ["$host", "=", ""], "script": [ { "set": ["$a", 2] }, { "return": 400 } ] } })
    );
    assert_eq!(
        server["script"][3],
        serde_json::json!({ "rewrite": ["^/old/(.*)$", "/new/$1"] })
    );
    let location = &server["locations"][0];
    let conditions: Vec<Value> = location["script"]
        .as_array()
        .expect("a script")
        .iter()
        .filter_map(|e| e.get("if").map(|i| i["condition"].clone()))
        .collect();
    assert_eq!(
        conditions,
        [
            serde_json::json!(["$arg_x", "~*", "^(a|b) c$"]),
            serde_json::json!(["!-f", "$request_filename"]),
            serde_json::json!(["-d", "$request_filename"]),
            serde_json::json!(["$request_method", "!~", "^(GET|HEAD)$"]),
            serde_json::json!(["$cookie_a", "!=", 1]),
            serde_json::json!(["$arg_q", "!~*", "x"]),
            serde_json::json!(["$arg_r", "~", "(x)"]),
            serde_json::json!(["$arg_s", "=", "two words"]),
            serde_json::json!(["$arg_t"]),
        ]
    );
    assert_eq!(
        location["script"][0]["if"]["proxy_pass"],
        "http://127.0.0.1:9000"
    );
    assert_eq!(
        location["limit_except"],
        serde_json::json!({ "methods": ["GET", "POST"], "deny": ["all"], "proxy_pass": "http://127.0.0.1:9001" })
    );
    assert_eq!(
        server["locations"][1]["limit_except"]["methods"],
        serde_json::json!(["get"])
    );
    // A condition may be one string when it is one word; methods too.
    let r = read(
        DocFormat::Yaml,
        "http:\n  servers:\n    - script:\n        - if: { condition: $arg_a, return: 204 }\n      locations:\n        - match: /\n          limit_except: { methods: GET, deny: all }\n",
    );
    r.assert_clean();
    assert_eq!(
        shape(&r.tree),
        shape(&conf("http { server { if ($arg_a) { return 204; } location / { limit_except GET { deny all; } } } }"))
    );
    let d = &r.tree[0].children()[0].children()[0];
    assert_eq!(r.at(d.name_span), (4, 11), "an if points at its key");
    assert_eq!(r.at(d.args[0].span), (4, 28), "and its words at theirs");
}

#[test]
fn if_and_limit_except_errors() {
    assert_errors(
        DocFormat::Json,
        r#"{ "http": { "servers": [ { "if": { "condition": "$a", "return": 204 } } ] } }"#,
        &[(1, 28, "\"if\" goes in \"script\"")],
    );
    assert_errors(
        DocFormat::Json,
        r#"{ "http": { "servers": [ { "script": [ { "if": { "return": 204 } }, { "if": [1] } ] } ] } }"#,
        &[
            (1, 48, "if without \"condition\""),
            (1, 77, "\"if\" must be an object"),
        ],
    );
    assert_errors(
        DocFormat::Yaml,
        "http:\n  servers:\n    - script:\n        - if:\n            condition: $a = 1\n            retrun: 204\n        - if: { condition: [], return: 204 }\n        - if: { condition: [[$a]], return: 204 }\n",
        &[
            (5, 24, "a condition written as one string with spaces"),
            (7, 28, "\"condition\" is empty"),
            (8, 29, "arrays nested too deeply in \"condition\""),
        ],
    );
    assert_errors(
        DocFormat::Yaml,
        "http:\n  servers:\n    - script:\n        - if:\n            condition: [$a]\n            retrun: 204\n",
        &[(6, 13, "unknown key \"retrun\" in an if object (in a server)")],
    );
    assert_errors(
        DocFormat::Json,
        r#"{ "http": { "servers": [ { "locations": [ { "match": "/", "limit_except": { "deny": "all" } }, { "match": "/b", "limit_except": ["GET"] }, { "match": "/c", "limit_except": { "methods": true, "dney": "all" } } ] } ] } }"#,
        &[
            (1, 75, "limit_except without \"methods\""),
            (1, 129, "\"limit_except\" must be an object"),
            (1, 186, "\"methods\" needs arguments, not true"),
            (1, 192, "unknown key \"dney\" in the limit_except object"),
        ],
    );
    assert_errors(
        DocFormat::Json,
        r#"{ "http": { "if": { "condition": "$a" } } }"#,
        &[(1, 13, "\"if\" is not allowed in the http object")],
    );
    // limit_except only in locations; the table check says so, as for a .conf file.
    let r = read(
        DocFormat::Json,
        r#"{ "http": { "servers": [ { "limit_except": { "methods": "GET" } } ] } }"#,
    );
    assert!(
        r.found()
            .iter()
            .any(|(_, _, _, m)| m.contains("not allowed")),
        "{:?}",
        r.found()
    );
}

#[test]
fn if_and_limit_except_validate_against_the_schema() {
    let s = schema();
    let doc = to_json(&conf(IF_CONF));
    let mut errors = Vec::new();
    validate(&s, &s, &doc, "", &mut errors);
    assert!(errors.is_empty(), "{errors:#?}");
    for bad in [
        // no condition
        serde_json::json!({ "http": { "servers": [ { "script": [ { "if": { "return": 204 } } ] } ] } }),
        // if as a key of its own
        serde_json::json!({ "http": { "servers": [ { "if": { "condition": "$a" } } ] } }),
        // a condition with spaces, too many words, an object
        serde_json::json!({ "http": { "servers": [ { "script": [ { "if": { "condition": "$a = 1" } } ] } ] } }),
        serde_json::json!({ "http": { "servers": [ { "script": [ { "if": { "condition": ["$a", "=", "1", "2"] } } ] } ] } }),
        serde_json::json!({ "http": { "servers": [ { "script": [ { "if": { "condition": { "$a": 1 } } } ] } ] } }),
        // a server's if runs rewrite-module directives only
        serde_json::json!({ "http": { "servers": [ { "script": [ { "if": { "condition": "$a", "root": "/x" } } ] } ] } }),
        // no if in an if
        serde_json::json!({ "http": { "servers": [ { "locations": [ { "match": "/", "script": [ { "if": { "condition": "$a", "script": [ { "if": { "condition": "$b" } } ] } } ] } ] } ] } }),
        // limit_except: methods required, words only, location only
        serde_json::json!({ "http": { "servers": [ { "locations": [ { "match": "/", "limit_except": { "deny": "all" } } ] } ] } }),
        serde_json::json!({ "http": { "servers": [ { "locations": [ { "match": "/", "limit_except": { "methods": [1] } } ] } ] } }),
        serde_json::json!({ "http": { "servers": [ { "locations": [ { "match": "/", "limit_except": { "methods": [] } } ] } ] } }),
        serde_json::json!({ "http": { "servers": [ { "limit_except": { "methods": "GET" } } ] } }),
        serde_json::json!({ "http": { "servers": [ { "locations": [ { "match": "/", "limit_except": { "methods": "GET", "root": "/x" } } ] } ] } }),
    ] {
        let mut errors = Vec::new();
        validate(&s, &s, &bad, "", &mut errors);
        assert!(!errors.is_empty(), "accepted: {bad}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any condition nginx reads, written with the parentheses touching the words or apart,
    /// gives the same IR from the nginx-style text, JSON and YAML.
    #[test]
    fn any_if_condition_round_trips(
        var in "[a-z]{1,6}",
        op in prop::sample::select(vec!["", "=", "!=", "~", "~*", "!~", "!~*", "-f", "!-f", "-d", "-e", "!-x"]),
        text in "[a-zA-Z0-9 ./_()\"';#-]{0,8}",
        regex in "[a-z0-9.^]{0,6}",
        apart in any::<bool>(),
        in_server in any::<bool>(),
    ) {
        let q = |t: &str| to_conf_string(&conf(&format!("x \"{}\";", t.replace('\\', "\\\\").replace('"', "\\\"")))).trim_end().trim_end_matches(';').trim_start_matches("x ").to_string();
        let words = match op {
            "" => format!("$arg_{var}"),
            "=" | "!=" => format!("$arg_{var} {op} {}", q(&text)),
            "~" | "~*" | "!~" | "!~*" => format!("$arg_{var} {op} {}", q(&regex)),
            _ => format!("{op} /tmp/{var}"),
        };
        let cond = if apart { format!("( {words} )") } else { format!("({words} )") };
        let body = format!("if {cond} {{ set $v 1; return 200 $v; }}");
        let text = if in_server {
            format!("events {{}}\nhttp {{ server {{ listen 8080; {body} location / {{ return 204; }} }} }}\n")
        } else {
            format!("events {{}}\nhttp {{ server {{ listen 8080; location / {{ set $v 0; {body} limit_except GET {{ deny all; }} }} }} }}\n")
        };
        let mut map = SourceMap::new();
        let file = map.add(PathBuf::from("if.conf"), text.clone());
        let mut diags = Diagnostics::default();
        let tree = parse_text(file, &text, &mut diags);
        prop_assert!(!diags.has_errors(), "{text}");
        assert_same_ir(&text, &tree, &map);
    }
}

// ---------------------------------------------------------------------------------------------
// quoting and escaping: any argument survives every format

fn one_arg_tree(value: &str) -> Vec<Directive> {
    let mut tree = conf("http { server { add_header X v; } }");
    let d = &mut tree[0].block.as_mut().expect("http block")[0]
        .block
        .as_mut()
        .expect("server block")[0];
    d.args[1].value = value.to_string();
    tree
}

fn arg_of(tree: &[Directive]) -> Option<String> {
    Some(
        tree.first()?
            .children()
            .first()?
            .children()
            .first()?
            .args
            .get(1)?
            .value
            .clone(),
    )
}

#[test]
fn awkward_arguments_round_trip() {
    let cases = [
        "",
        " ",
        "a b",
        "a;b",
        "{",
        "}",
        "a}",
        "#x",
        "x#y",
        "\"",
        "'",
        "a\"b",
        "\\",
        "a\\",
        "\\d",
        "\\\\d",
        "\\n",
        "\\\"",
        "line\nbreak",
        "tab\there",
        "\r",
        "${host}x",
        "~*",
        "*.a",
        "@x",
        "=404",
        "- x",
        "on",
        "true",
        "null",
        "~",
        "1.0",
        "0x10",
        "007",
        "-1",
        "9007199254740993",
        "a: b",
        "[x]",
        ".5",
        "ü",
        "\u{feff}x",
        "\u{2028}",
        "\u{7f}",
        "a,b",
    ];
    for v in cases {
        let tree = one_arg_tree(v);
        let via_conf = conf(&to_conf_string(&tree));
        assert_eq!(
            arg_of(&via_conf).as_deref(),
            Some(v),
            "conf: {:?}",
            to_conf_string(&tree)
        );
        let j = read(DocFormat::Json, &to_json_string(&tree));
        j.assert_clean();
        assert_eq!(arg_of(&j.tree).as_deref(), Some(v), "json");
        let y = read(DocFormat::Yaml, &to_yaml_string(&tree));
        y.assert_clean();
        assert_eq!(
            arg_of(&y.tree).as_deref(),
            Some(v),
            "yaml: {:?}",
            to_yaml_string(&tree)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_argument_round_trips(v in "\\PC{0,12}|[ -~\t\n\\\\]{0,12}") {
        let tree = one_arg_tree(&v);
        let mut diags = Diagnostics::default();
        let text = to_conf_string(&tree);
        let back = parse_text(proton_compiler::source::FileId(0), &text, &mut diags);
        prop_assert!(!diags.has_errors(), "{text:?}");
        prop_assert_eq!(arg_of(&back), Some(v.clone()), "conf {:?}", text);
        let j = read(DocFormat::Json, &to_json_string(&tree));
        prop_assert!(j.diags.list.is_empty());
        prop_assert_eq!(arg_of(&j.tree), Some(v.clone()));
        let yaml = to_yaml_string(&tree);
        let y = read(DocFormat::Yaml, &yaml);
        prop_assert!(y.diags.list.is_empty(), "{:?}", yaml);
        prop_assert_eq!(arg_of(&y.tree), Some(v.clone()), "yaml {:?}", yaml);
    }

    #[test]
    fn readers_never_panic(text in "[{}\\[\\]:,\"' a-z0-9\\\\\n\t&*!#-]{0,60}") {
        let _ = read(DocFormat::Json, &text);
        let _ = read(DocFormat::Yaml, &text);
    }
}

// ---------------------------------------------------------------------------------------------
// the schema

fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/proton.schema.json")
}

#[test]
fn schema_file_is_current() {
    let want = schema_string();
    let path = schema_path();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &want).expect("write schemas/proton.schema.json");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "schemas/proton.schema.json is stale (the directive table changed); regenerate it with\n    \
         UPDATE_SCHEMA=1 cargo test -p proton-compiler --test frontend schema_file_is_current"
    );
}

#[test]
fn schema_is_draft_2020_12_with_defs() {
    let s = schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    for def in ["events", "http", "server", "location", "upstream"] {
        assert_eq!(s["$defs"][def]["type"], "object", "{def}");
        assert_eq!(s["$defs"][def]["additionalProperties"], false, "{def}");
    }
    assert_eq!(
        s["$defs"]["location"]["required"],
        serde_json::json!(["match"])
    );
    assert_eq!(s["properties"]["http"]["$ref"], "#/$defs/http");
    assert_eq!(
        s["$defs"]["http"]["properties"]["servers"]["items"]["$ref"],
        "#/$defs/server"
    );
    let sendfile = &s["$defs"]["http"]["properties"]["sendfile"];
    assert_eq!(sendfile["default"], false);
    assert!(sendfile["description"]
        .as_str()
        .unwrap_or("")
        .contains("sendfile(2)"));
    assert_eq!(
        s["properties"]["error_log"]["default"],
        serde_json::json!([["logs/error.log", "error"]])
    );
    assert_eq!(
        s["$defs"]["http"]["properties"]["types"]["default"]["image/gif"],
        "gif"
    );
}

/// A small JSON Schema validator for the keywords the generated schema uses.
fn validate(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{at}: not allowed"));
        }
        return;
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        validate(root, &root["$defs"][name], v, at, errors);
    }
    if let Some(alts) = s.get("anyOf").and_then(Value::as_array) {
        let ok = alts.iter().any(|a| {
            let mut e = Vec::new();
            validate(root, a, v, at, &mut e);
            e.is_empty()
        });
        if !ok {
            errors.push(format!("{at}: matches no alternative: {v}"));
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(x) => vec![x.as_str()],
            Value::Array(xs) => xs.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_u64() || v.is_i64(),
            "boolean" => v.is_boolean(),
            _ => false,
        });
        if !ok {
            errors.push(format!("{at}: {v} is not {types:?}"));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errors.push(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let (Some(p), Some(x)) = (s.get("pattern").and_then(Value::as_str), v.as_str()) {
        if !regex::Regex::new(p).is_ok_and(|re| re.is_match(x)) {
            errors.push(format!("{at}: {x:?} does not match {p}"));
        }
    }
    if let Some(arr) = v.as_array() {
        if let Some(n) = s.get("minItems").and_then(Value::as_u64) {
            if (arr.len() as u64) < n {
                errors.push(format!("{at}: fewer than {n} items"));
            }
        }
        if let Some(n) = s.get("maxItems").and_then(Value::as_u64) {
            if (arr.len() as u64) > n {
                errors.push(format!("{at}: more than {n} items"));
            }
        }
        // Draft 2020-12: `prefixItems` for the first places, `items` for the rest.
        let prefix = s
            .get("prefixItems")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (i, x) in arr.iter().enumerate() {
            let item = prefix.get(i).or_else(|| s.get("items"));
            if let Some(item) = item {
                validate(root, item, x, &format!("{at}/{i}"), errors);
            }
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for req in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !req.as_str().is_some_and(|k| obj.contains_key(k)) {
                errors.push(format!("{at}: missing {req}"));
            }
        }
        for (k, x) in obj {
            let here = format!("{at}/{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(root, ps, x, &here, errors),
                None => {
                    if let Some(ap) = s.get("additionalProperties") {
                        validate(root, ap, x, &here, errors);
                    }
                }
            }
        }
    }
}

#[test]
fn written_documents_validate_against_the_schema() {
    let s = schema();
    let docs = [
        to_json(&conf(RICH_CONF)),
        to_json(&conf(EXAMPLE_CONF)),
        serde_json::from_str(EXAMPLE_JSON).expect("example is JSON"),
    ];
    for doc in docs {
        let mut errors = Vec::new();
        validate(&s, &s, &doc, "", &mut errors);
        assert!(errors.is_empty(), "{errors:#?}");
    }
    // And the validator does reject what the reader rejects.
    let bad = serde_json::json!({ "http": { "servers": [ { "lisen": 80, "locations": [ { "root": "x" } ] } ], "sendfile": "yes" } });
    let mut errors = Vec::new();
    validate(&s, &s, &bad, "", &mut errors);
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn formats_by_extension() {
    assert_eq!(
        format_of(Path::new("conf/proton.json")),
        Some(DocFormat::Json)
    );
    assert_eq!(format_of(Path::new("a.YAML")), Some(DocFormat::Yaml));
    assert_eq!(format_of(Path::new("a.yml")), Some(DocFormat::Yaml));
    assert_eq!(format_of(Path::new("proton.conf")), None);
    assert_eq!(format_of(Path::new("json")), None);
}

#[test]
fn yaml_flow_style_and_crlf() {
    let text = "http:\r\n  servers:\r\n    - {listen: [80, \"81\"], locations: [{match: = /x, return: 204}]}\r\n  root: /srv\r\n";
    let r = read(DocFormat::Yaml, text);
    r.assert_clean();
    assert_eq!(
        shape(&r.tree),
        shape(&conf(
            "http { server { listen 80; listen 81; location = /x { return 204; } } root /srv; }"
        ))
    );
    let server = &r.tree[0].children()[0];
    assert_eq!(
        r.at(server.name_span),
        (3, 7),
        "a flow mapping points at its '{{'"
    );
    let location = &server.children()[2];
    assert_eq!(&text[location.args[1].span.range()], "/x");
    let root = &r.tree[0].children()[1];
    assert_eq!(r.at(root.args[0].span), (4, 9));
}

#[test]
fn yaml_shape_errors() {
    assert_errors(
        DocFormat::Yaml,
        "http:\n  servers:\n  ? [a]\n  : b\n  upstreams:\n    up: [x]\n",
        &[
            (2, 3, "\"servers\" must be an array"),
            (3, 5, "object keys must be strings"),
            (6, 9, "\"up\" in \"upstreams\" must be an object"),
        ],
    );
}

#[test]
fn conf_text_layout() {
    let tree = conf("worker_processes 2; events { } http { root html; server { listen 80; location / { return 200 'a b'; } } }");
    assert_eq!(
        to_conf_string(&tree),
        "worker_processes 2;\n\nevents {\n}\n\nhttp {\n    root html;\n\n    server {\n        listen 80;\n\n        \
         location / {\n            return 200 \"a b\";\n        }\n    }\n}\n"
    );
}

#[test]
fn schema_key_is_for_editors() {
    let text = r#"{ "$schema": "../schemas/proton.schema.json", "worker_processes": 2 }"#;
    let r = read(DocFormat::Json, text);
    r.assert_clean();
    assert_eq!(shape(&r.tree), shape(&conf("worker_processes 2;")));
    let s = schema();
    let mut errors = Vec::new();
    validate(
        &s,
        &s,
        &serde_json::from_str(text).expect("JSON"),
        "",
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_errors(
        DocFormat::Json,
        r#"{ "$schema": 1 }"#,
        &[(1, 14, "\"$schema\" must be a string")],
    );
}

/// The IR as JSON without source references (lines differ between formats).
fn ir_without_sources(tree: &[Directive], map: &SourceMap) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("source");
                m.remove("source_files");
                m.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut diags = Diagnostics::default();
    let ir = proton_compiler::compile::compile_tree(tree, map, &mut diags);
    assert!(!diags.has_errors(), "{:#?}", diags.list);
    let mut v = serde_json::to_value(ir.expect("an IR")).expect("IR serializes");
    strip(&mut v);
    v
}

/// Compiles `tree` and its conversions to every format; the IRs must be the same.
fn assert_same_ir(name: &str, tree: &[Directive], map: &SourceMap) {
    let want = ir_without_sources(tree, map);
    let texts = [
        (Some(DocFormat::Json), to_json_string(tree)),
        (Some(DocFormat::Yaml), to_yaml_string(tree)),
        (None, to_conf_string(tree)),
    ];
    // Beside the original, so that files it names relative to its directory are found.
    let beside = map
        .path(proton_compiler::source::FileId(0))
        .map_or(PathBuf::from("converted"), |p| {
            p.with_file_name("converted")
        });
    for (format, text) in texts {
        let mut map = SourceMap::new();
        let file = map.add(beside.clone(), text.clone());
        let mut diags = Diagnostics::default();
        let back = match format {
            Some(f) => parse_document(file, &text, f, &mut diags),
            None => parse_text(file, &text, &mut diags),
        };
        assert!(diags.list.is_empty(), "{name}: {:#?}", diags.list);
        assert_eq!(
            ir_without_sources(&back, &map),
            want,
            "{name} via {format:?}"
        );
    }
}

/// Every config file under `dir` (recursively): NGINX-style, JSON and YAML.
fn config_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            config_files(&p, out);
        } else if p
            .extension()
            .is_some_and(|e| ["conf", "json", "yaml", "yml"].iter().any(|x| e == *x))
        {
            out.push(p);
        }
    }
}

/// Conversions keep meaning: every config of `conf/` (recursively) and every fixture of the
/// compiler's tests that compiles (the snapshots' sources among them) gives the same IR
/// after conversion to JSON, to YAML and to NGINX-style text, and after reading the JSON
/// and YAML back and writing them as text again.
#[test]
fn example_configs_compile_to_the_same_ir_from_every_format() {
    support::conf_certificate();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    config_files(&root.join("../conf"), &mut paths);
    let from_conf = paths.len();
    config_files(&root.join("tests"), &mut paths);
    assert!(from_conf >= 7, "only {from_conf} configs in conf/");
    let mut checked = Vec::new();
    for path in paths {
        let mut map = SourceMap::new();
        let mut diags = Diagnostics::default();
        let Some(tree) = proton_compiler::compile::load_tree(&path, &mut map, &mut diags) else {
            continue;
        };
        let in_conf = path.starts_with(root.join("../conf"));
        if diags.has_errors()
            || proton_compiler::compile::compile_tree(&tree, &map, &mut diags).is_none()
            || diags.has_errors()
        {
            // A broken fixture (or an include fragment such as mime.types) has no IR.
            assert!(
                !in_conf || path.ends_with("mime.types"),
                "{} does not compile",
                path.display()
            );
            continue;
        }
        let name = path.display().to_string();
        assert_same_ir(&name, &tree, &map);
        // And back: the documents read again, written as NGINX-style text.
        let want = ir_without_sources(&tree, &map);
        for (format, text) in [
            (DocFormat::Json, to_json_string(&tree)),
            (DocFormat::Yaml, to_yaml_string(&tree)),
        ] {
            let mut m = SourceMap::new();
            let f = m.add(path.with_file_name("converted"), text.clone());
            let mut d = Diagnostics::default();
            let doc = parse_document(f, &text, format, &mut d);
            let back = to_conf_string(&doc);
            let mut m = SourceMap::new();
            let f = m.add(path.with_file_name("back.conf"), back.clone());
            let tree2 = parse_text(f, &back, &mut d);
            assert!(
                !d.has_errors(),
                "{name} via {format:?} and back: {:#?}",
                d.list
            );
            assert_eq!(
                ir_without_sources(&tree2, &m),
                want,
                "{name} via {format:?} and back to text:\n{back}"
            );
        }
        checked.push(name);
    }
    // Everything in conf/ but mime.types, and the fixtures that only warn.
    assert!(
        checked.len() >= from_conf - 1 + 10,
        "only {} configs compiled: {checked:#?}",
        checked.len()
    );
    let mut map = SourceMap::new();
    let file = map.add(PathBuf::from("rich.conf"), RICH_CONF.to_string());
    let mut diags = Diagnostics::default();
    let tree = parse_text(file, RICH_CONF, &mut diags);
    assert_same_ir("RICH_CONF", &tree, &map);
}

/// Every shipped JSON/YAML example names the schema for editors: a `"$schema"` member (JSON)
/// or a yaml-language-server modeline (YAML), with a path relative to the file that leads to
/// schemas/proton.schema.json.
#[test]
fn shipped_documents_name_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    config_files(&root.join("../conf"), &mut paths);
    let want = std::fs::canonicalize(schema_path()).expect("the schema file");
    let mut seen = 0;
    for path in paths {
        let Some(format) = format_of(&path) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).expect("read");
        let named = match format {
            DocFormat::Json => serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["$schema"].as_str().map(str::to_string)),
            DocFormat::Yaml => text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# yaml-language-server: $schema="))
                .map(str::to_string),
        };
        let named = named.unwrap_or_else(|| panic!("{} names no schema", path.display()));
        let at = path.parent().map(|d| d.join(&named)).unwrap_or_default();
        assert_eq!(
            std::fs::canonicalize(&at).ok().as_ref(),
            Some(&want),
            "{}: {named}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} documents");
    assert_eq!(
        schema()["$id"],
        proton_compiler::frontend::SCHEMA_ID,
        "the schema names itself"
    );
}

/// Runs check-jsonschema (a third-party JSON Schema validator, from PyPI) on `files` against
/// schemas/proton.schema.json.
fn check_jsonschema(files: &[PathBuf]) -> std::process::Output {
    std::process::Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(schema_path())
        .args(files)
        .output()
        .expect("check-jsonschema runs")
}

/// The schema as a third-party validator reads it: every shipped JSON/YAML example (with its
/// `$schema` line) and the JSON and YAML form of every config of `conf/`, of every test
/// fixture that compiles, and of this file's sample configs, are valid; `"proxy_pass": 5`
/// and its kin are not. Skipped with a printed reason when check-jsonschema is not
/// installed, except in CI.
#[test]
fn documents_validate_with_a_third_party_validator() {
    if !support::third_party_tool("check-jsonschema", "pip install check-jsonschema") {
        return;
    }
    support::conf_certificate();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("protonc-schema-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut paths = Vec::new();
    config_files(&root.join("../conf"), &mut paths);
    let mut files: Vec<PathBuf> = paths
        .iter()
        .filter(|p| format_of(p).is_some())
        .cloned()
        .collect();
    assert!(files.len() >= 6, "shipped documents: {files:?}");
    config_files(&root.join("tests"), &mut paths);
    let mut trees = Vec::new();
    for path in &paths {
        let mut map = SourceMap::new();
        let mut diags = Diagnostics::default();
        let Some(tree) = proton_compiler::compile::load_tree(path, &mut map, &mut diags) else {
            continue;
        };
        if diags.has_errors()
            || proton_compiler::compile::compile_tree(&tree, &map, &mut diags).is_none()
            || diags.has_errors()
        {
            continue; // a broken fixture: it has no document form to check
        }
        trees.push((path.display().to_string(), tree));
    }
    for (name, text) in [
        ("RICH_CONF", RICH_CONF),
        ("EXAMPLE_CONF", EXAMPLE_CONF),
        ("IF_CONF", IF_CONF),
        ("MATCH_CONF", MATCH_CONF),
    ] {
        trees.push((name.to_string(), conf(text)));
    }
    let converted = trees.len();
    for (i, (name, tree)) in trees.iter().enumerate() {
        if proton_compiler::frontend::without_document_form(tree).is_some() {
            continue;
        }
        let stem: String = name
            .rsplit('/')
            .next()
            .unwrap_or("config")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        for (ext, text) in [
            ("json", to_json_string(tree)),
            ("yaml", to_yaml_string(tree)),
        ] {
            let p = dir.join(format!("{i:03}-{stem}.{ext}"));
            std::fs::write(&p, text).expect("write a converted config");
            files.push(p);
        }
    }
    assert!(converted >= 20, "only {converted} configs converted");
    let out = check_jsonschema(&files);
    assert!(
        out.status.success(),
        "check-jsonschema refused documents:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Numbers where nginx's syntax has a URL, a path, a name: each refused on its own.
    for (i, bad) in [
        r#"{ "http": { "servers": [ { "locations": [ { "match": "/", "proxy_pass": 5 } ] } ] } }"#,
        r#"{ "http": { "servers": [ { "root": 5 } ] } }"#,
        r#"{ "http": { "servers": [ { "server_name": ["example.com", 5] } ] } }"#,
        r#"{ "http": { "add_header": [[5, "x"]] } }"#,
        r#"{ "http": { "upstreams": { "app": { "server": 8080 } } } }"#,
    ]
    .iter()
    .enumerate()
    {
        let p = dir.join(format!("bad-{i}.json"));
        std::fs::write(&p, bad).expect("write");
        let out = check_jsonschema(std::slice::from_ref(&p));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "check-jsonschema accepted {bad}");
        assert!(text.contains("bad-"), "{text}");
    }
    // While sizes, times, codes, ports and free text may be numbers, as in nginx.
    let good = r#"{ "$schema": "../schemas/proton.schema.json", "worker_processes": 2,
        "http": { "client_max_body_size": 10, "keepalive_timeout": 65,
        "servers": [ { "listen": 8080, "locations": [ { "match": "/", "return": [200, 5],
        "add_header": [["X-Count", 5]] } ] } ] } }"#;
    let p = dir.join("good.json");
    std::fs::write(&p, good).expect("write");
    let out = check_jsonschema(std::slice::from_ref(&p));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The reader refuses what the schema refuses: a number where the syntax has a URL, a
/// path, a name; its message names the place and says how to write it.
#[test]
fn numbers_where_nginx_has_words_are_refused() {
    assert_errors(
        DocFormat::Json,
        r#"{ "http": { "servers": [ { "locations": [ { "match": "/", "proxy_pass": 5 } ] } ] } }"#,
        &[(1, 73, "\"proxy_pass\" takes a string (URL), not a number")],
    );
    assert_errors(
        DocFormat::Yaml,
        "http:\n  servers:\n    - server_name: [example.com, 5]\n",
        &[(3, 34, "\"server_name\" takes a string (name), not a number")],
    );
    assert_errors(
        DocFormat::Json,
        r#"{ "http": { "add_header": [["X-A", "1"], [5, "x"]] } }"#,
        &[(
            1,
            43,
            "argument 1 of \"add_header\" is a string (name), not a number",
        )],
    );
    // Numbers where they belong.
    let r = read(
        DocFormat::Json,
        r#"{ "http": { "keepalive_timeout": [65, 60], "servers": [ { "listen": 8080, "return": [200, 5] } ] } }"#,
    );
    r.assert_clean();
    // And the writer writes such arguments as strings.
    let v = to_json(&conf("http { server { root 5; listen 8080; set $a 1; } }"));
    let server = &v["http"]["servers"][0];
    assert_eq!(server["root"], "5");
    assert_eq!(server["listen"], serde_json::json!([8080]));
    assert_eq!(server["set"], serde_json::json!([["$a", 1]]));
}

const MATCH_CONF: &str = r#"
events {}
http {
    match ok {
        status 200-399 204;
        status ! 500;
        header Content-Type = "text/html; charset=utf-8";
        header Content-Type ~ "^text/";
        header X-Foo;
        header ! X-Bar;
        body ~ "Welcome to (nginx|proton)!";
        body !~ maintenance;
    }
    match empty {
    }
    upstream be {
        server 127.0.0.1:9001;
        health_check interval=1s match=ok;
    }
    server {
        listen 8080;
        location / {
            proxy_pass http://be;
        }
    }
}
"#;

/// `match` blocks are the `matches` object of http, their lines keyed by directive; they
/// come back the same through JSON, YAML and the NGINX-style text, and compile the same.
#[test]
fn match_blocks_round_trip_through_every_format() {
    let tree = conf(MATCH_CONF);
    let v = to_json(&tree);
    let ok = &v["http"]["matches"]["ok"];
    assert_eq!(
        ok["status"],
        serde_json::json!([["200-399", 204], ["!", 500]])
    );
    assert_eq!(ok["header"][3], serde_json::json!(["!", "X-Bar"]), "{ok:#}");
    assert_eq!(
        ok["body"],
        serde_json::json!([["~", "Welcome to (nginx|proton)!"], ["!~", "maintenance"]])
    );
    assert_eq!(v["http"]["matches"]["empty"], serde_json::json!({}));
    for format in [DocFormat::Json, DocFormat::Yaml] {
        let text = match format {
            DocFormat::Json => to_json_string(&tree),
            DocFormat::Yaml => to_yaml_string(&tree),
        };
        let r = read(format, &text);
        r.assert_clean();
        assert_eq!(shape(&r.tree), shape(&tree), "{format:?}:\n{text}");
    }
    let mut map = SourceMap::new();
    let file = map.add(PathBuf::from("match.conf"), MATCH_CONF.to_string());
    let mut diags = Diagnostics::default();
    let tree = parse_text(file, MATCH_CONF, &mut diags);
    assert_same_ir("MATCH_CONF", &tree, &map);
}
