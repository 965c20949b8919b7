//! nginx semantics the IR must carry, each checked against what nginx 1.22 does with the same
//! config (the expected values were taken from a real nginx): inheritance rules, server-name
//! tables, variables, and which configs nginx refuses.

use proton_compiler::compile::compile_tree;
use proton_compiler::diagnostics::{Diagnostics, Severity};
use proton_compiler::source::SourceMap;
use proton_ir::*;
use std::path::PathBuf;

/// Compiles NGINX-style text. `Ok(ir, warnings)` or `Err(errors)`, messages only.
fn compile(text: &str) -> Result<(Ir, Vec<String>), Vec<String>> {
    let mut map = SourceMap::new();
    let id = map.add(PathBuf::from("t.conf"), text.to_string());
    let mut diags = Diagnostics::default();
    let src = map.text(id).to_string();
    let tree = proton_compiler::syntax::parse_text(id, &src, &mut diags);
    let ir = compile_tree(&tree, &map, &mut diags);
    let (errors, warnings): (Vec<_>, Vec<_>) = diags
        .list
        .iter()
        .partition(|d| d.severity == Severity::Error);
    match ir {
        Some(ir) if errors.is_empty() => {
            Ok((ir, warnings.iter().map(|d| d.message.clone()).collect()))
        }
        _ => Err(errors.iter().map(|d| d.message.clone()).collect()),
    }
}

fn ok(text: &str) -> Ir {
    match compile(text) {
        Ok((ir, _)) => ir,
        Err(e) => panic!("does not compile: {e:#?}\n{text}"),
    }
}

/// The errors of a config that must not compile.
fn errors(text: &str) -> Vec<String> {
    match compile(text) {
        Ok(_) => panic!("compiles, but nginx refuses it:\n{text}"),
        Err(e) => e,
    }
}

fn assert_error(text: &str, want: &str) {
    let e = errors(text);
    assert!(
        e.iter().any(|m| m.contains(want)),
        "expected an error containing {want:?}, got {e:#?}"
    );
}

/// A config with one server holding `body`.
fn server(body: &str) -> String {
    format!("events {{}}\nhttp {{\n  server {{\n    listen 8080;\n    {body}\n  }}\n}}\n")
}

/// The location of the first server named `name` (its path or regex as written).
fn loc<'a>(ir: &'a Ir, name: &str) -> &'a Location {
    ir.locations
        .iter()
        .find(|l| ir.text_of(l.name) == name && l.kind != LocationKind::Server)
        .unwrap_or_else(|| panic!("no location {name}"))
}

fn server_default(ir: &Ir) -> &Location {
    &ir.locations[ir.servers[0].default_location.0 as usize]
}

fn lit(t: &Template) -> String {
    t.to_source(&[])
}

#[test]
fn try_files_is_not_inherited() {
    // nginx: the server-level try_files applies only when no location matches.
    let ir = ok(&server(
        "try_files $uri /srv.html;\n location /a/ { location /a/b/ { } }\n location /c/ { try_files $uri =404; }",
    ));
    let srv: Vec<String> = server_default(&ir).conf.try_files.iter().map(lit).collect();
    assert_eq!(srv, ["$uri", "/srv.html"]);
    assert!(loc(&ir, "/a/").conf.try_files.is_empty());
    assert!(loc(&ir, "/a/b/").conf.try_files.is_empty());
    let c: Vec<String> = loc(&ir, "/c/").conf.try_files.iter().map(lit).collect();
    assert_eq!(c, ["$uri", "=404"]);
}

#[test]
fn internal_is_inherited_by_nested_locations() {
    // nginx: GET /int/b is 404.
    let ir = ok(&server(
        "location /int { internal; location /int/b { return 200; } }\n location /pub { }",
    ));
    assert!(loc(&ir, "/int").conf.internal);
    assert!(loc(&ir, "/int/b").conf.internal);
    assert!(!loc(&ir, "/pub").conf.internal);
    assert!(!server_default(&ir).conf.internal);
}

#[test]
fn inherited_alias_keeps_the_declaring_prefix() {
    // nginx: GET /al/sub/x opens /etc/sub/x.
    let ir = ok(&server(
        "location /al/ { alias /etc/; location /al/sub/ { } location /al/own/ { alias /own/; } }\n\
         location ~ ^/re/(.*)$ { alias /data/$1; location ~ \\.txt$ { } }\n\
         location /r/ { root /srv; location /r/x/ { } }",
    ));
    let a = |name: &str| {
        let a = loc(&ir, name).conf.alias.clone().expect("alias");
        (lit(&a.path), a.prefix)
    };
    assert_eq!(a("/al/"), ("/etc/".into(), "/al/".into()));
    assert_eq!(a("/al/sub/"), ("/etc/".into(), "/al/".into()));
    assert_eq!(a("/al/own/"), ("/own/".into(), "/al/own/".into()));
    assert_eq!(a("^/re/(.*)$"), ("/data/$1".into(), String::new()));
    assert_eq!(a("\\.txt$"), ("/data/$1".into(), String::new()));
    assert!(loc(&ir, "/r/x/").conf.alias.is_none());
    assert_eq!(lit(ir.root_of(loc(&ir, "/r/x/"))), "/srv");
}

/// `protonc route`'s answer for `host` on the config's first port: (server, return text).
fn route(ir: &Ir, host: &str, uri: &str) -> (u32, Option<String>) {
    let m = proton_compiler::compile::Matchers::new(ir);
    let a = proton_compiler::compile::route(ir, &m, None, None, Some(host), uri).expect("routes");
    (a.server, a.ret.and_then(|r| r.text))
}

#[test]
fn regex_server_names_keep_their_case() {
    // nginx compiles a regex server name caselessly when it has an uppercase letter, and
    // matches it against the lowercased Host: FOO.TEST and foo.test both reach "upper".
    let ir = ok("events {}\nhttp {\n\
        server { listen 80 default_server; }\n\
        server { listen 80; server_name ~^FOO\\.test$; }\n\
        server { listen 80; server_name ~^x\\D\\.test$ \"~^(?<Sub>[a-z]+)\\.cap\\.test$\"; }\n\
        server { listen 80; server_name ~^[a-z]+\\.low\\.test$; }\n}\n");
    let re: Vec<(String, bool)> = ir
        .regexes
        .iter()
        .map(|r| (r.pattern.clone(), r.case_insensitive))
        .collect();
    assert_eq!(
        re,
        [
            ("^FOO\\.test$".to_string(), true),
            ("^x\\D\\.test$".to_string(), true),
            ("^(?<Sub>[a-z]+)\\.cap\\.test$".to_string(), true),
            ("^[a-z]+\\.low\\.test$".to_string(), false),
        ]
    );
    assert_eq!(ir.servers[1].names, ["~^FOO\\.test$"]);
    for (host, server) in [
        ("foo.test", 1),
        ("FOO.TEST", 1),
        ("xa.test", 2),
        ("x1.test", 0),
        ("abc.cap.test", 2),
        ("abc.low.test", 3),
    ] {
        assert_eq!(route(&ir, host, "/").0, server, "{host}");
    }
    assert_error(
        "events {}\nhttp { server { listen 80; server_name ~; } }\n",
        "empty regex in server name \"~\"",
    );
}

#[test]
fn conflicting_server_names_as_nginx_sees_them() {
    // nginx warns "conflicting server name ... ignored" for example.com, .wc.test and
    // wc.test here, and answers example.com from s0 and wc.test from the default server.
    let (ir, warnings) = compile(
        "events {}\nhttp {\n\
        server { listen 80; server_name .example.com; }\n\
        server { listen 80; server_name example.com; }\n\
        server { listen 80; server_name *.wc.test; }\n\
        server { listen 80; server_name .wc.test; }\n\
        server { listen 80; server_name wc.test; }\n\
        server { listen 80 default_server; server_name dflt; }\n\
        server { listen 80; server_name .dot.test; }\n\
        server { listen 80; server_name *.dot.test dot.test; }\n}\n",
    )
    .expect("compiles with warnings");
    assert_eq!(
        warnings,
        [
            "conflicting server name \"example.com\" on 0.0.0.0:80, ignored",
            "conflicting server name \".wc.test\" on 0.0.0.0:80, ignored",
            "conflicting server name \"wc.test\" on 0.0.0.0:80, ignored",
            "conflicting server name \"*.dot.test\" on 0.0.0.0:80, ignored",
            "conflicting server name \"dot.test\" on 0.0.0.0:80, ignored",
        ]
    );
    for (host, server) in [
        ("example.com", 0),
        ("a.example.com", 0),
        ("wc.test", 5),
        ("a.wc.test", 2),
        ("dot.test", 6),
        ("a.dot.test", 6),
    ] {
        assert_eq!(route(&ir, host, "/").0, server, "{host}");
    }
}

/// The `return` text of a location, as source.
fn return_text(ir: &Ir, l: &Location) -> String {
    l.conf
        .script
        .iter()
        .find_map(|op| match op {
            ScriptOp::Return { text, .. } => text.as_ref().map(|t| t.to_source(&ir.user_vars)),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn named_captures_are_variables() {
    // Valid nginx; captures outlive internal redirects (try_files → @app), so every regex
    // of the server defines variables for all of its locations.
    let ir = ok("events {}\nhttp {\n\
        log_format caps '$user $sub';\n\
        server {\n\
          listen 80;\n\
          server_name ~^(?<sub>[a-z]+)\\.cap\\.test$;\n\
          rewrite ^/old/(?P<Rest>.*)$ /new/$rest;\n\
          location ~ ^/u/(?<user>\\w+) { try_files /none @app; }\n\
          location @app { return 200 \"$user $sub $rest $1\"; }\n\
          location /s { return 200 $SUB; }\n\
        }\n}\n");
    let app = return_text(&ir, loc(&ir, "@app"));
    assert_eq!(app, "$user $sub $rest $1");
    let parts = &ir
        .locations
        .iter()
        .find(|l| ir.text_of(l.name) == "/s")
        .map(|l| match &l.conf.script[0] {
            ScriptOp::Return { text, .. } => text.clone().unwrap_or_default(),
            _ => Template::default(),
        })
        .unwrap_or_default()
        .parts;
    assert_eq!(parts, &[Part::Var(Var::NamedCapture("sub".into()))]);
    let f = ir
        .log_formats
        .iter()
        .find(|f| f.name == "caps")
        .expect("format");
    assert_eq!(f.template.to_source(&[]), "$user $sub");

    // A capture of another server's regex is never set here.
    assert_error(
        "events {}\nhttp {\n\
         server { listen 80; location ~ ^/u/(?<user>\\w+) { return 200 $user; } }\n\
         server { listen 81; location / { return 200 $user; } }\n}\n",
        "unknown variable \"$user\"",
    );
    assert_error(&server("location / { return 200 $nosuch; }"), "$nosuch");
}

#[test]
fn variable_names_are_case_insensitive() {
    // nginx: `$Host`, `$REQUEST_URI` and `set $Foo` / `$foo` are the same variables.
    let ir = ok(&server(
        "set $Foo 1;\n location / { return 200 \"$Host $REQUEST_URI $foo $FOO $Arg_X\"; }",
    ));
    assert_eq!(ir.user_vars, ["foo"]);
    assert_eq!(
        return_text(&ir, loc(&ir, "/")),
        "$host $request_uri $foo $foo $arg_x"
    );
}

#[test]
fn static_locations_nested_in_regex_locations() {
    // nginx: `location "/a/b" is outside location "^/a"`.
    assert_error(
        &server("location ~ ^/a { location /a/b { } }"),
        "location \"/a/b\" is outside location \"^/a\"",
    );
    assert_error(
        &server("location ~* ^/a { location = /a/c { } }"),
        "location \"/a/c\" is outside location \"^/a\"",
    );
    // Accepted when the path starts with the regex text, but nginx never selects it:
    // GET /a/b is answered by the regex location.
    let (ir, warnings) = compile(&server(
        "location ~ /a { return 200 re; location /a/b { return 200 nested; } location ~ b$ { return 200 inner; } }",
    ))
    .expect("compiles");
    assert_eq!(warnings, ["location \"/a/b\" can never be selected"]);
    assert_eq!(route(&ir, "x", "/a/b").1.as_deref(), Some("inner"));
    assert_eq!(route(&ir, "x", "/a/c").1.as_deref(), Some("re"));
}

fn settings_of<'a>(ir: &'a Ir, l: &Location) -> &'a Settings {
    &ir.settings[l.conf.settings.0 as usize]
}

#[test]
fn keepalive_header_time_is_inherited_on_its_own() {
    // nginx: `Keep-Alive: timeout=30` with a 10 s idle timeout.
    let ir = ok("events {}\nhttp {\n keepalive_timeout 60 30;\n server {\n  listen 80;\n  keepalive_timeout 10;\n  location / { keepalive_timeout 5 0; }\n  location /b { }\n }\n}\n");
    let s = settings_of(&ir, server_default(&ir));
    assert_eq!(
        (s.keepalive_timeout_ms, s.keepalive_header_secs),
        (10_000, Some(30))
    );
    let s = settings_of(&ir, loc(&ir, "/"));
    assert_eq!(
        (s.keepalive_timeout_ms, s.keepalive_header_secs),
        (5_000, None)
    );
    let s = settings_of(&ir, loc(&ir, "/b"));
    assert_eq!(
        (s.keepalive_timeout_ms, s.keepalive_header_secs),
        (10_000, Some(30))
    );
    // nginx: the header time is whole seconds ("invalid value").
    assert_error(
        &server("keepalive_timeout 10 500ms;"),
        "invalid value \"500ms\" in \"keepalive_timeout\" directive",
    );
    assert_error(
        &server("keepalive_timeout 30s1h;"),
        "invalid value \"30s1h\" in \"keepalive_timeout\" directive",
    );
    let ir = ok(&server("keepalive_timeout 1h30 1h;"));
    let s = settings_of(&ir, server_default(&ir));
    assert_eq!(
        (s.keepalive_timeout_ms, s.keepalive_header_secs),
        (3_630_000, Some(3_600))
    );
}

#[test]
fn accepted_and_refused_like_nginx() {
    // Each case checked with `nginx -t` (1.22).
    for (body, want) in [
        (
            "access_log logs/a.log combined flush=5s;",
            "no buffer is defined for access_log \"logs/a.log\"",
        ),
        ("error_page 499 /x;", "invalid value \"499\""),
        (
            "error_page 299 /x;",
            "value \"299\" must be between 300 and 599",
        ),
        (
            "error_page 600 /x;",
            "value \"600\" must be between 300 and 599",
        ),
        ("return +200;", "invalid return code \"+200\""),
        ("return 1000;", "invalid return code \"1000\""),
        (
            "location / { try_files $uri =1000; }",
            "invalid code \"=1000\"",
        ),
        (
            "location / { try_files $uri =abc; }",
            "invalid code \"=abc\"",
        ),
        ("send_timeout 30s1h;", "invalid value \"30s1h\""),
        ("send_timeout 1M;", "invalid value \"1M\""),
        ("keepalive_requests +5;", "invalid value \"+5\""),
        ("expires @15h30m;", "not supported yet"),
        ("expires 500ms;", "invalid expires time \"500ms\""),
    ] {
        assert_error(&server(body), want);
    }
    for body in [
        "access_log logs/a.log combined buffer=4k flush=5s;",
        "error_page 404 =999 /x;",
        "error_page 404 =99 /x;",
        "error_page 300 599 /x;",
        "location / { try_files $uri =999; }",
        "location / { try_files $uri =0; }",
        "send_timeout 1h30;",
        "send_timeout 1w2d;",
        "expires 1y;",
        "expires modified -1h;",
        "server_tokens build;",
        "location / { return 200 $Host$REQUEST_URI; }",
        "index index.htm /index.html;",
    ] {
        ok(&server(body));
    }
    let ir = ok(&server(
        "server_tokens build; location /off { server_tokens off; }",
    ));
    assert_eq!(
        settings_of(&ir, server_default(&ir)).server_tokens,
        ServerTokens::Build
    );
    assert_eq!(
        settings_of(&ir, loc(&ir, "/off")).server_tokens,
        ServerTokens::Off
    );
    // Accepted with the warnings nginx gives.
    let (_, w) = compile(&server(
        "index /index.html index.htm;\n types { text/html html; text/plain html HTM htm; }",
    ))
    .expect("compiles");
    assert_eq!(
        w,
        [
            "only the last index in \"index\" directive should be absolute",
            "duplicate extension \"html\", content type: \"text/plain\", previous content type: \"text/html\"",
            "duplicate extension \"htm\", content type: \"text/plain\", previous content type: \"text/plain\"",
        ]
    );
}
