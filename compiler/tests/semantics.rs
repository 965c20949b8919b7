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
    let req = proton_compiler::compile::RouteRequest {
        method: "GET",
        host: Some(host),
        uri,
        headers: &[],
    };
    let a = proton_compiler::compile::route(ir, &m, None, None, &req).expect("routes");
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
        (
            "expires @25h;",
            "daily time value must be less than 24 hours",
        ),
        (
            "expires modified @1h;",
            "daily time cannot be used with \"modified\" parameter",
        ),
        ("disable_symlinks maybe;", "invalid value \"maybe\""),
        (
            "disable_symlinks off from=/x;",
            "invalid parameter \"from=/x\"",
        ),
        ("expires 500ms;", "invalid expires time \"500ms\""),
    ] {
        assert_error(&server(body), want);
    }
    // charset_map tables of UTF-8 sequences: recoding to or from UTF-8 is not done yet.
    assert_error(
        "events {}\nhttp {\n  charset_map a utf-8 { 58 E280A2; }\n  server { listen 8080; }\n}\n",
        "not supported yet",
    );
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

/// A config with `maps` at the http level and one server returning `ret`.
fn with_maps(maps: &str, ret: &str) -> String {
    format!(
        "events {{}}\nhttp {{\n{maps}\n  server {{\n    listen 8080;\n    location / {{ return 200 \"{ret}\"; }}\n  }}\n}}\n"
    )
}

#[test]
fn maps_as_nginx_reads_them() {
    // Checked against nginx 1.22: exact keys ignore case; `\default` is the key "default";
    // '' is the empty key; with hostnames, `.example.org` is both example.org and
    // *.example.org; regexes keep config order; a map may be used before it is written.
    let ir = ok(&with_maps(
        "  map $arg_a $x {\n    default def;\n    Foo exact;\n    ~^re(.*)$ \"re:$1\";\n    ~*^ABC ci;\n    \\default lit;\n    '' empty;\n    volatile;\n  }\n  map $host $h {\n    hostnames;\n    example.com exact;\n    *.example.com star;\n    .example.org dot;\n    www.example.* tail;\n    ~^www\\.(?<mid>.+)\\.net$ \"re-$mid\";\n  }\n  map \"$x-$h\" $both { default \"[$x][$h]\"; }",
        "$both",
    ));
    assert_eq!(ir.maps.len(), 3);
    let x = &ir.maps[0];
    assert_eq!(x.name, "x");
    assert!(!x.hostnames);
    let keys: Vec<&str> = x.exact.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["", "default", "foo"]);
    assert_eq!(x.regex.len(), 2);
    assert_eq!(lit(&x.default), "def");
    assert!(ir.regexes[x.regex[1].0 .0 as usize].case_insensitive);
    let h = &ir.maps[1];
    assert!(h.hostnames);
    let keys: Vec<&str> = h.exact.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["example.com", "example.org"]);
    let leading: Vec<&str> = h.leading.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(leading, [".example.com", ".example.org"]);
    assert_eq!(h.trailing[0].0, "www.example.");
    assert_eq!(
        h.regex[0].1.parts[1],
        Part::Var(Var::NamedCapture("mid".into()))
    );
    // No default: the empty string.
    assert_eq!(h.default, Template::default());
    let both = &ir.maps[2];
    assert_eq!(ir.source_of(&both.source), "$x-$h");
    assert_eq!(ir.source_of(&both.default), "[$x][$h]");
    let l = loc(&ir, "/");
    assert_eq!(
        l.conf.script,
        vec![ScriptOp::Return {
            code: 200,
            text: Some(Template {
                parts: vec![Part::Var(Var::Map(2))]
            })
        }]
    );
    // Lookup order on the IR: exact, wildcards (leading before trailing), else None.
    let find = |k: &str| h.find_static(k.as_bytes()).map(lit);
    assert_eq!(find("example.com"), Some("exact".into()));
    assert_eq!(find("a.b.example.org"), Some("dot".into()));
    assert_eq!(find("www.example.com"), Some("star".into()));
    assert_eq!(find("www.example.net"), Some("tail".into()));
    assert_eq!(find("www.other.net"), None);
}

#[test]
fn map_variables_are_variables_everywhere() {
    // Used in add_header, proxy_set_header, log_format, set and rewrite; the map is written
    // after its first use; names are case-insensitive.
    let ir = ok(
        "events {}\nhttp {\n  log_format m \"$Connection_Upgrade\";\n  proxy_set_header Connection $connection_upgrade;\n  server {\n    listen 8080;\n    add_header X-C $connection_upgrade;\n    location / { set $v \"<$connection_upgrade>\"; rewrite ^ /$connection_upgrade break; proxy_pass http://127.0.0.1:9; }\n  }\n  map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n}\n",
    );
    assert_eq!(ir.maps[0].name, "connection_upgrade");
    let m = Part::Var(Var::Map(0));
    assert!(ir
        .log_formats
        .iter()
        .any(|f| f.template.parts == [m.clone()]));
    let l = loc(&ir, "/");
    let s = settings_of(&ir, l);
    assert!(s
        .proxy
        .set_headers
        .iter()
        .any(|(_, t)| t.parts == [m.clone()]));
    assert!(s.add_headers.iter().any(|h| h.value.parts == [m.clone()]));
    assert_eq!(ir.user_vars, ["v"]);
}

#[test]
fn map_mistakes_refused_like_nginx() {
    let m = |body: &str| with_maps(body, "x");
    assert_error(
        &m("map $a $x { foo 1; FOO 2; }"),
        "conflicting parameter \"FOO\"",
    );
    assert_error(
        &m("map $arg_a $x { default 1; default 2; }"),
        "duplicate default map parameter",
    );
    assert_error(
        &m("map $arg_a $x { a 1 2; }"),
        "invalid number of the map parameters",
    );
    assert_error(
        &m("map $arg_a $x { a; }"),
        "invalid number of the map parameters",
    );
    assert_error(&m("map $arg_a x { a 1; }"), "invalid variable name \"x\"");
    assert_error(
        &m("map $arg_a $host { a 1; }"),
        "\"$host\" cannot be defined by a map",
    );
    assert_error(
        &m("map $arg_a $x { ~(a 1; }"),
        "invalid regular expression \"(a\"",
    );
    assert_error(
        &m("map $arg_a $x { a $nonexistent; }"),
        "unknown variable \"$nonexistent\"",
    );
    assert_error(
        &m("map $arg_a $x { hostnames; .a.com 1; *.a.com 2; }"),
        "conflicting parameter \"*.a.com\"",
    );
    assert_error(
        &m("map $arg_a $x { hostnames; a*b.com 2; }"),
        "invalid hostname or wildcard",
    );
    // Without hostnames a `*` is just a character of an exact key.
    assert_eq!(
        ok(&m("map $arg_a $x { a*b.com 2; }")).maps[0].exact[0].0,
        "a*b.com"
    );
    // nginx accepts these and fails (or picks the last map) at run time; protonc refuses.
    assert_error(&m("map $x $y { default $y; }"), "\"$y\" depends on itself");
    assert_error(
        &m("map $arg_a $x { a 1; } map $arg_b $X { b 2; }"),
        "duplicate map variable",
    );
    assert_error(
        "events {}\nhttp { map $arg_a $x { a 1; }\n server { listen 80; location / { set $x 2; return 200 $x; } } }",
        "the map variable \"$x\" cannot be set",
    );
    assert_error(
        &server("map $uri $x { default 1; }"),
        "\"map\" directive is not allowed here",
    );
}

#[test]
fn map_chains_are_bounded() {
    // 16 maps in a chain compile; 17 do not.
    let chain = |n: usize| {
        let mut maps = String::new();
        for i in 0..n {
            let next = if i + 1 < n {
                format!("$m{}", i + 1)
            } else {
                "end".into()
            };
            maps.push_str(&format!("  map $uri $m{i} {{ default {next}; }}\n"));
        }
        with_maps(&maps, "$m0")
    };
    assert_eq!(ok(&chain(MAX_MAP_NESTING)).maps.len(), MAX_MAP_NESTING);
    assert_error(
        &chain(MAX_MAP_NESTING + 1),
        "uses a chain of more than 16 maps",
    );
}

/// A proxy rule as `pattern -> replacement`; a regex pattern as `~source` (`~*` caseless).
fn rule_text(ir: &Ir, p: &ProxyPattern, to: Option<&Template>) -> String {
    let lit = |t: &Template| t.to_source(&ir.user_vars);
    let from = match p {
        ProxyPattern::Text(t) => lit(t),
        ProxyPattern::Regex(id) => {
            let r = &ir.regexes[id.0 as usize];
            format!(
                "~{}{}",
                if r.case_insensitive { "*" } else { "" },
                r.pattern
            )
        }
    };
    match to {
        Some(to) => format!("{from} -> {}", lit(to)),
        None => from,
    }
}

fn rules(ir: &Ir, list: &[ProxyRewrite]) -> Vec<String> {
    list.iter()
        .map(|r| rule_text(ir, &r.pattern, Some(&r.replacement)))
        .collect()
}

/// `proxy_redirect` of location `name`.
fn redirects(ir: &Ir, name: &str) -> Vec<String> {
    rules(ir, &settings_of(ir, loc(ir, name)).proxy.redirect)
}

/// proxy_redirect as nginx merges it: a level with lines replaces what it inherits; `default`
/// (written, or implied where no rules are inherited) is the proxy_pass URL of the level
/// that defines it; `off` cancels the implied default below it.
#[test]
fn proxy_redirect_rules_default_and_inheritance() {
    let ir = ok("events {}\nhttp {\n upstream up { server 127.0.0.1:9; }\n server {\n  listen 80;\n  location /p/ {\n   proxy_pass http://127.0.0.1:9/x/;\n   location /p/c/ { proxy_pass http://127.0.0.1:9/y/; }\n  }\n  location /n { proxy_pass http://up; }\n  location = /e { proxy_pass http://up/e/; }\n  location /u/ { proxy_pass http://unix:/tmp/s.sock:/v/; }\n  location /w/ { proxy_pass http://unix:/tmp/s.sock; }\n  location /v/ { proxy_pass http://$host; }\n  location /r/ {\n   set $t acme;\n   proxy_pass http://127.0.0.1:9/;\n   proxy_redirect http://a/$t/ /$t/;\n   proxy_redirect default;\n   proxy_redirect ~^http://b/(?<rest>.*)$ /b/$rest;\n   proxy_redirect ~*^HTTP://C/ /c/;\n   proxy_redirect default /d/;\n  }\n  location /off/ {\n   proxy_pass http://127.0.0.1:9/;\n   proxy_redirect off;\n   location /off/in/ { proxy_pass http://127.0.0.1:9/; }\n   location /off/on/ { proxy_pass http://127.0.0.1:9/; proxy_redirect http://z/ /;\n    location /off/on/in/ { proxy_pass http://127.0.0.1:9/q/; } }\n  }\n }\n server {\n  listen 81;\n  proxy_redirect http://srv/ /s/;\n  location /i/ { proxy_pass http://127.0.0.1:9/; }\n }\n}\n");
    assert_eq!(redirects(&ir, "/p/"), ["http://127.0.0.1:9/x/ -> /p/"]);
    // A nested location inherits its parent's default, not one of its own proxy_pass.
    assert_eq!(redirects(&ir, "/p/c/"), ["http://127.0.0.1:9/x/ -> /p/"]);
    assert_eq!(redirects(&ir, "/n"), ["http://up/ -> /"]);
    assert_eq!(redirects(&ir, "/e"), ["http://up/e/ -> /e"]);
    assert_eq!(
        redirects(&ir, "/u/"),
        ["http://unix:/tmp/s.sock:/v/ -> /u/"]
    );
    assert_eq!(redirects(&ir, "/w/"), ["http://unix:/tmp/s.sock/ -> /"]);
    // Nothing fixed to map back.
    assert!(redirects(&ir, "/v/").is_empty());
    assert_eq!(
        redirects(&ir, "/r/"),
        [
            "http://a/$t/ -> /$t/",
            "http://127.0.0.1:9/ -> /r/",
            "~^http://b/(?<rest>.*)$ -> /b/$rest",
            "~*^HTTP://C/ -> /c/",
            // Two arguments: `default` is only text.
            "default -> /d/",
        ]
    );
    assert!(redirects(&ir, "/off/").is_empty());
    assert!(redirects(&ir, "/off/in/").is_empty());
    assert_eq!(redirects(&ir, "/off/on/"), ["http://z/ -> /"]);
    assert_eq!(redirects(&ir, "/off/on/in/"), ["http://z/ -> /"]);
    // The server's rules, inherited: no implied default under them.
    assert_eq!(redirects(&ir, "/i/"), ["http://srv/ -> /s/"]);
}

#[test]
fn proxy_redirect_errors_as_nginx() {
    let with = |lines: &str| server(&format!("location / {{ {lines} }}"));
    assert_error(
        &with("proxy_pass http://127.0.0.1:9/; proxy_redirect off; proxy_redirect http://a/ /;"),
        "\"proxy_redirect off\" cannot be combined",
    );
    assert_error(
        &with("proxy_pass http://127.0.0.1:9/; proxy_redirect off; proxy_redirect off;"),
        "\"proxy_redirect off\" cannot be combined",
    );
    assert_error(
        &with("proxy_redirect default; proxy_pass http://127.0.0.1:9/;"),
        "should be placed after the \"proxy_pass\" directive",
    );
    assert_error(
        &server("proxy_redirect default; location / { proxy_pass http://127.0.0.1:9/; }"),
        "should be placed after the \"proxy_pass\" directive",
    );
    assert_error(
        &with("proxy_pass http://$host; proxy_redirect default;"),
        "cannot be used with \"proxy_pass\" directive with variables",
    );
    assert_error(
        &with("proxy_pass http://127.0.0.1:9/; proxy_redirect on;"),
        "invalid parameter \"on\"",
    );
    assert_error(
        &with("proxy_pass http://127.0.0.1:9/; proxy_redirect ~(a /b;"),
        "invalid regular expression",
    );
    assert_error(
        &with("proxy_pass http://127.0.0.1:9/; proxy_redirect http://a/ /$nosuch;"),
        "unknown variable",
    );
    assert_error(
        &with("proxy_pass http://127.0.0.1:9/; if ($arg_a) { proxy_redirect off; }"),
        "\"proxy_redirect\" directive is not allowed here",
    );
}

/// proxy_cookie_domain / _path / _flags: each from the innermost level that has it (`off`:
/// none); a domain's leading dots are dropped, `~` is caseless for domains and cookie names.
#[test]
fn proxy_cookie_rules_and_inheritance() {
    let ir = ok(&server(
        "proxy_cookie_domain .up.test .$host;\n\
         proxy_cookie_domain ~^(.+)\\.internal$ $1.example;\n\
         proxy_cookie_path /app/ /;\n\
         proxy_cookie_path ~*^/U/(\\d+)$ /u/$1;\n\
         proxy_cookie_path ~^/v/ /;\n\
         proxy_cookie_flags session secure HttpOnly samesite=strict;\n\
         proxy_cookie_flags ~^tr nosecure;\n\
         proxy_cookie_flags $arg_c $arg_f \"\";\n\
         location / { proxy_pass http://127.0.0.1:9; }\n\
         location /off/ { proxy_pass http://127.0.0.1:9; proxy_cookie_domain off; proxy_cookie_path off; proxy_cookie_flags off; }\n\
         location /own/ { proxy_pass http://127.0.0.1:9; proxy_cookie_path /a/ /b/; }",
    ));
    let c = &settings_of(&ir, loc(&ir, "/")).proxy.cookies;
    assert_eq!(
        rules(&ir, &c.domain),
        ["up.test -> $host", "~*^(.+)\\.internal$ -> $1.example"]
    );
    assert_eq!(
        rules(&ir, &c.path),
        ["/app/ -> /", "~*^/U/(\\d+)$ -> /u/$1", "~^/v/ -> /"]
    );
    let flags: Vec<String> = c
        .flags
        .iter()
        .map(|f| {
            let words: Vec<String> = f.flags.iter().map(lit).collect();
            format!("{} {}", rule_text(&ir, &f.cookie, None), words.join(" "))
        })
        .collect();
    assert_eq!(
        flags,
        [
            "session secure HttpOnly samesite=strict",
            "~*^tr nosecure",
            "$arg_c $arg_f ",
        ]
    );
    assert!(settings_of(&ir, loc(&ir, "/off/")).proxy.cookies.is_empty());
    let own = &settings_of(&ir, loc(&ir, "/own/")).proxy.cookies;
    assert_eq!(rules(&ir, &own.path), ["/a/ -> /b/"]);
    assert_eq!(rules(&ir, &own.domain), rules(&ir, &c.domain));
    assert_eq!(own.flags, c.flags);
}

#[test]
fn proxy_cookie_errors_as_nginx() {
    let with = |lines: &str| {
        server(&format!(
            "location / {{ proxy_pass http://127.0.0.1:9; {lines} }}"
        ))
    };
    for name in [
        "proxy_cookie_domain",
        "proxy_cookie_path",
        "proxy_cookie_flags",
    ] {
        assert_error(
            &with(&format!("{name} off; {name} off;")),
            &format!("\"{name} off\" cannot be combined"),
        );
        assert_error(&with(&format!("{name} on;")), "invalid parameter \"on\"");
    }
    assert_error(
        &with("proxy_cookie_path /a/ /b/; proxy_cookie_path off;"),
        "\"proxy_cookie_path off\" cannot be combined",
    );
    assert_error(
        &with("proxy_cookie_flags a secure bogus;"),
        "unknown proxy_cookie_flags flag \"bogus\"",
    );
    assert_error(
        &with("proxy_cookie_flags a secure httponly samesite=lax nosecure;"),
        "invalid number of arguments in \"proxy_cookie_flags\" directive",
    );
    assert_error(
        &with("proxy_cookie_domain ~(x y;"),
        "invalid regular expression",
    );
    // Flags with variables are checked when the response comes (unknown ones are ignored).
    ok(&with("proxy_cookie_flags a $arg_f SameSite=None;"));
}

#[test]
fn keepalive_time_and_disable_are_inherited_as_nginx() {
    let ir = ok("events {}\nhttp {\n keepalive_time 10m;\n keepalive_disable safari;\n server {\n  listen 80;\n  location / { keepalive_disable none; }\n  location /b { keepalive_time 1s; keepalive_disable msie6 safari; }\n  location /c { }\n }\n}\n");
    let s = settings_of(&ir, loc(&ir, "/"));
    assert_eq!(s.keepalive_time_ms, 600_000);
    assert_eq!(
        s.keepalive_disable,
        KeepaliveDisable {
            msie6: false,
            safari: false
        }
    );
    let s = settings_of(&ir, loc(&ir, "/b"));
    assert_eq!(s.keepalive_time_ms, 1_000);
    assert_eq!(
        s.keepalive_disable,
        KeepaliveDisable {
            msie6: true,
            safari: true
        }
    );
    let s = settings_of(&ir, loc(&ir, "/c"));
    assert_eq!(
        s.keepalive_disable,
        KeepaliveDisable {
            msie6: false,
            safari: true
        }
    );
    // The defaults: 1h, msie6.
    let ir = ok(&server("location / { }"));
    let s = settings_of(&ir, loc(&ir, "/"));
    assert_eq!(s.keepalive_time_ms, 3_600_000);
    assert_eq!(s.keepalive_disable, KeepaliveDisable::default());
    // nginx: TAKE12, and only its words.
    assert_error(
        &server("keepalive_disable msie6 safari none;"),
        "keepalive_disable",
    );
    assert_error(&server("keepalive_disable opera;"), "keepalive_disable");
    // In an upstream too.
    let ir = ok("events {}\nhttp {\n upstream u { server 127.0.0.1:81; keepalive 2; keepalive_time 5s; }\n server { listen 80; location / { proxy_pass http://u; } }\n}\n");
    assert_eq!(ir.upstreams[0].keepalive_time_ms, 5_000);
}

#[test]
fn post_action_is_inherited_and_off_stops_it() {
    let ir = ok(&server(
        "post_action /p;\n location / { }\n location /off { post_action off; }\n location /n { post_action @n; }\n location @n { return 204; }\n location /p { }",
    ));
    assert_eq!(
        settings_of(&ir, loc(&ir, "/")).post_action.as_deref(),
        Some("/p")
    );
    assert_eq!(settings_of(&ir, loc(&ir, "/off")).post_action, None);
    assert_eq!(
        settings_of(&ir, loc(&ir, "/n")).post_action.as_deref(),
        Some("@n")
    );
    // A named location that is not there: Proton refuses it at compile time, as for
    // error_page (nginx finds it missing at run time and logs an error).
    assert_error(
        &server("location / { post_action @nope; }"),
        "unknown named location \"@nope\"",
    );
}

#[test]
fn mirror_lines_accumulate_inherit_and_off_stops_them() {
    let ir = ok(&server(
        "mirror /m1;\n mirror /m2;\n location / { }\n location /own { mirror /m3; mirror_request_body off; log_subrequest on; }\n location /off { mirror off; }",
    ));
    let s = settings_of(&ir, loc(&ir, "/"));
    assert_eq!(s.mirror, vec!["/m1".to_string(), "/m2".to_string()]);
    assert!(s.mirror_request_body && !s.log_subrequest);
    let s = settings_of(&ir, loc(&ir, "/own"));
    assert_eq!(s.mirror, vec!["/m3".to_string()]);
    assert!(!s.mirror_request_body && s.log_subrequest);
    assert!(settings_of(&ir, loc(&ir, "/off")).mirror.is_empty());
    // As nginx: `off` beside a URI at one level is a duplicate.
    assert_error(
        &server("location / { mirror /a; mirror off; }"),
        "\"mirror\" directive is duplicate",
    );
    assert_error(
        &server("location / { mirror_request_body maybe; }"),
        "mirror_request_body",
    );
}

#[test]
fn upstream_resolve_needs_a_zone_and_a_resolver() {
    let http = |up: &str, extra: &str| {
        format!("events {{}}\nhttp {{\n{extra}\n upstream u {{ {up} }}\n server {{ listen 80; location / {{ proxy_pass http://u; }} }}\n}}\n")
    };
    // The upstream's own resolver, else the http level's.
    let ir = ok(&http(
        "zone z 64k; server app.test:81 resolve; resolver 127.0.0.2; resolver_timeout 3s;",
        "resolver 127.0.0.1;",
    ));
    let u = &ir.upstreams[0];
    assert!(u.servers[0].resolve);
    assert_eq!(u.resolver_timeout_ms, 3_000);
    assert_eq!(
        ir.resolvers[u.resolver.expect("resolver") as usize].servers,
        ["127.0.0.2:53"]
    );
    let ir = ok(&http(
        "zone z 64k; server app.test resolve;",
        "resolver 127.0.0.1;",
    ));
    assert_eq!(
        ir.resolvers[ir.upstreams[0].resolver.expect("resolver") as usize].servers,
        ["127.0.0.1:53"]
    );
    assert_error(
        &http("server app.test resolve;", "resolver 127.0.0.1;"),
        "resolving names at run time requires upstream \"u\" to be in shared memory",
    );
    assert_error(
        &http("zone z 64k; server app.test resolve;", ""),
        "no resolver defined to resolve names at run time in upstream \"u\"",
    );
    assert_error(
        &http(
            "zone z 64k; server app.test service=_http;",
            "resolver 127.0.0.1;",
        ),
        "\"service\" is not supported",
    );
}

#[test]
fn pcre_quoting_is_stored_in_regex_crate_spelling() {
    let ir = ok(&server(
        r"server_name ~^(?P<name>[a-z]+)\Q.example.com\E$;
 location ~ ^/a\Q.b\E$ { }",
    ));
    let patterns: Vec<&str> = ir.regexes.iter().map(|r| r.pattern.as_str()).collect();
    assert!(
        patterns.contains(&r"^(?P<name>[a-z]+)\.example\.com$"),
        "{patterns:?}"
    );
    assert!(patterns.contains(&r"^/a\.b$"), "{patterns:?}");
}

#[test]
fn unix_socket_upstreams_as_nginx() {
    let ir = ok("events {}\nhttp {\n upstream u { server unix:/run/a.sock weight=2 max_fails=3; server UNIX:/run/b.sock backup; server unix:relative:colon.sock down; }\n server { listen 80;\n  location / { proxy_pass http://unix:/run/b.sock; }\n  location /x/ { proxy_pass http://unix:/run/b.sock:/uri/; }\n  location /e/ { proxy_pass https://unix:/run/b.sock:; }\n  location /u { proxy_pass http://u; }\n  location ~ ^/r { proxy_pass http://unix:run/c.sock; }\n }\n}\n");
    let u = &ir.upstreams[0];
    let addrs: Vec<&str> = u.servers.iter().map(|s| s.address.as_str()).collect();
    // Paths as written (nginx does not resolve them against the prefix); everything after
    // `unix:` in an upstream server is the path, colons included.
    assert_eq!(
        addrs,
        [
            "unix:/run/a.sock",
            "unix:/run/b.sock",
            "unix:relative:colon.sock"
        ]
    );
    assert_eq!((u.servers[0].weight, u.servers[0].max_fails), (2, 3));
    assert!(u.servers[1].backup && u.servers[2].down);
    // proxy_pass: one implicit upstream per socket, the URI part after the second colon
    // (an empty one is none), the proxy host kept as written.
    let p = |name: &str| loc(&ir, name).conf.proxy.as_deref().expect("proxy");
    let (a, x, e) = (p("/"), p("/x/"), p("/e/"));
    assert_eq!(a.upstream, x.upstream);
    assert_eq!(a.upstream, e.upstream);
    let implicit = &ir.upstreams[a.upstream.0 as usize];
    assert!(!implicit.explicit);
    assert_eq!(implicit.servers[0].address, "unix:/run/b.sock");
    assert_eq!(ir.text_of(a.proxy_host), "unix:/run/b.sock");
    assert!(a.uri.is_none() && e.uri.is_none());
    assert_eq!(x.uri.as_ref().map(lit).as_deref(), Some("/uri/"));
    // `protonc route` shows the URL as written.
    assert_eq!(
        proton_compiler::compile::content_handler_of(&ir, loc(&ir, "/x/")),
        "proxy_pass http://unix:/run/b.sock:/uri/"
    );
    assert_eq!(e.scheme, Scheme::Https);
    let r = p("^/r");
    assert_eq!(
        ir.upstreams[r.upstream.0 as usize].servers[0].address,
        "unix:run/c.sock"
    );

    // nginx's refusals.
    let up = |s: &str| {
        format!("events {{}}\nhttp {{\n upstream u {{ server {s}; }}\n server {{ listen 80; location / {{ proxy_pass http://u; }} }}\n}}\n")
    };
    assert_error(&up("unix:"), "invalid upstream server address");
    assert_error(
        &server("location / { proxy_pass http://unix:; }"),
        "invalid proxy_pass address",
    );
    assert_error(
        &server("location / { proxy_pass http://unix::/x; }"),
        "invalid proxy_pass address",
    );
    let long = format!(
        "location / {{ proxy_pass http://unix:/{}; }}",
        "a".repeat(107)
    );
    assert_error(&server(&long), "invalid proxy_pass address");
    assert_error(
        &server("location ~ ^/r { proxy_pass http://unix:/run/b.sock:/u; }"),
        "cannot have URI part",
    );
}

/// The diagnostics of `text` one per line (`t.conf:line:col: severity[code]: message …`).
fn short_diagnostics(text: &str) -> String {
    use proton_compiler::diagnostics::{render, MessageFormat};
    let mut map = SourceMap::new();
    let id = map.add(PathBuf::from("t.conf"), text.to_string());
    let mut diags = Diagnostics::default();
    let src = map.text(id).to_string();
    let tree = proton_compiler::syntax::parse_text(id, &src, &mut diags);
    let _ = compile_tree(&tree, &map, &mut diags);
    render(&map, &diags, MessageFormat::Short)
}

fn gzip_of<'a>(ir: &'a Ir, l: &Location) -> &'a Gzip {
    &settings_of(ir, l).gzip
}

#[test]
fn gzip_defaults_are_nginx_ones() {
    let ir = ok(&server("location / { }"));
    let g = gzip_of(&ir, loc(&ir, "/"));
    assert_eq!(*g, Gzip::default());
    assert!(!g.enable);
    assert_eq!(g.types, ["text/html"]);
    assert_eq!((g.comp_level, g.min_length), (1, 20));
    assert!(!g.vary && !g.disable_msie6 && !g.gunzip);
    assert_eq!(g.http_version_minor, 1);
    assert!(g.proxied.off && !g.proxied.any && !g.proxied.expired);
    assert!(g.disable.is_empty());
    assert_eq!(g.static_mode, GzipStatic::Off);
    // Written out as nginx's defaults, the same record.
    let ir = ok(&server(
        "gzip off; gzip_types text/html; gzip_comp_level 1; gzip_min_length 20; gzip_vary off;\n\
         gzip_http_version 1.1; gzip_proxied off; gzip_static off; gunzip off; gzip_buffers 32 4k;\n\
         gunzip_buffers 32 4k; gzip_window 32k; gzip_hash 64k;",
    ));
    assert_eq!(*gzip_of(&ir, server_default(&ir)), Gzip::default());
}

#[test]
fn gzip_settings_are_read_and_inherited() {
    let ir = ok("events {}\nhttp {\n gzip on;\n gzip_types text/CSS application/json text/css;\n \
         gzip_comp_level 6;\n gzip_min_length 1k;\n gzip_vary on;\n gzip_http_version 1.0;\n \
         gzip_static always;\n gunzip on;\n server {\n  listen 80;\n  location /a { }\n  \
         location /b { gzip_types image/svg+xml; gzip_comp_level 9; gzip_static on; location /b/c { gzip off; } }\n  \
         location /d { gzip_types text/plain *; }\n }\n}\n");
    let a = gzip_of(&ir, loc(&ir, "/a"));
    assert!(a.enable && a.vary && a.gunzip);
    // Lowercase, sorted, deduplicated, text/html always there.
    assert_eq!(a.types, ["application/json", "text/css", "text/html"]);
    assert_eq!(
        (a.comp_level, a.min_length, a.http_version_minor),
        (6, 1024, 0)
    );
    assert_eq!(a.static_mode, GzipStatic::Always);
    // A level with gzip_types replaces its parent's list (text/html stays).
    let b = gzip_of(&ir, loc(&ir, "/b"));
    assert_eq!(b.types, ["image/svg+xml", "text/html"]);
    assert_eq!((b.comp_level, b.static_mode), (9, GzipStatic::On));
    assert!(b.enable);
    let c = gzip_of(&ir, loc(&ir, "/b/c"));
    assert!(!c.enable);
    assert_eq!(c.types, ["image/svg+xml", "text/html"]);
    assert_eq!(c.comp_level, 9);
    assert_eq!(gzip_of(&ir, loc(&ir, "/d")).types, ["*"]);
    // The lines of one level add up, as nginx's types slot.
    let ir = ok(&server("gzip_types text/css; gzip_types text/xml;"));
    assert_eq!(
        gzip_of(&ir, server_default(&ir)).types,
        ["text/css", "text/html", "text/xml"]
    );
}

#[test]
fn gzip_in_an_if_of_a_location() {
    let ir = ok(&server(
        "gzip on; location / { if ($arg_raw) { gzip off; } } location /z { gzip off; if ($arg_z) { gzip on; } }",
    ));
    let ifs: Vec<&Location> = ir
        .locations
        .iter()
        .filter(|l| l.kind == LocationKind::If)
        .collect();
    // (An `if` block carries its location's name: find the locations by kind.)
    let prefix = |name: &str| {
        ir.locations
            .iter()
            .find(|l| l.kind == LocationKind::Prefix && ir.text_of(l.name) == name)
            .unwrap_or_else(|| panic!("no location {name}"))
    };
    assert_eq!(ifs.len(), 2);
    assert!(!gzip_of(&ir, ifs[0]).enable);
    assert!(gzip_of(&ir, prefix("/")).enable);
    assert!(gzip_of(&ir, ifs[1]).enable);
    assert!(!gzip_of(&ir, prefix("/z")).enable);
    // nginx takes gzip in an `if` of a location only.
    assert_error(
        &server("if ($arg_z) { gzip on; }"),
        "\"gzip\" directive is not allowed here",
    );
    // The other gzip directives are not "if in location" ones.
    assert_error(
        &server("location / { if ($arg_z) { gzip_comp_level 5; } }"),
        "\"gzip_comp_level\" directive is not allowed here",
    );
}

#[test]
fn gzip_proxied_flags_are_the_words_written() {
    let p = |body: &str| {
        let ir = ok(&server(body));
        gzip_of(&ir, server_default(&ir)).proxied
    };
    let none = GzipProxied {
        off: false,
        ..GzipProxied::default()
    };
    assert_eq!(p(""), GzipProxied::default());
    assert_eq!(p("gzip_proxied any;"), GzipProxied { any: true, ..none });
    assert_eq!(
        p("gzip_proxied expired no-cache no-store private no_last_modified no_etag auth;"),
        GzipProxied {
            expired: true,
            no_cache: true,
            no_store: true,
            private: true,
            no_last_modified: true,
            no_etag: true,
            auth: true,
            ..none
        }
    );
    // nginx ORs the bits: `off` with others keeps the off bit; case does not matter; the
    // lines of one level add up.
    assert_eq!(
        p("gzip_proxied off ANY;"),
        GzipProxied {
            off: true,
            any: true,
            ..none
        }
    );
    assert_eq!(
        p("gzip_proxied auth; gzip_proxied expired;"),
        GzipProxied {
            auth: true,
            expired: true,
            ..none
        }
    );
    // A location's gzip_proxied replaces the inherited one.
    let ir = ok(&server(
        "gzip_proxied any; location / { gzip_proxied auth; } location /i { }",
    ));
    assert_eq!(
        gzip_of(&ir, loc(&ir, "/")).proxied,
        GzipProxied { auth: true, ..none }
    );
    assert_eq!(
        gzip_of(&ir, loc(&ir, "/i")).proxied,
        GzipProxied { any: true, ..none }
    );
    // An unknown word names the allowed ones; a repeated one is nginx's warning.
    let d = short_diagnostics(&server("gzip_proxied expired nocache;"));
    assert!(
        d.contains(
            "t.conf:5:26: error[E0006]: invalid value \"nocache\" in \"gzip_proxied\" directive"
        ),
        "{d}"
    );
    assert!(d.contains("did you mean \"no-cache\"?"), "{d}");
    assert!(
        d.contains(
            "off, expired, no-cache, no-store, private, no_last_modified, no_etag, auth, any"
        ),
        "{d}"
    );
    let (_, warnings) = compile(&server("gzip_proxied any expired Any;")).expect("compiles");
    assert_eq!(warnings, ["duplicate value \"Any\""]);
}

#[test]
fn gzip_disable_msie6_and_regexes() {
    let ir = ok("events {}\nhttp {\n gzip_disable msie6 \"^Mozilla/4\";\n server {\n  listen 80;\n  \
         location /a { }\n  location /b { gzip_disable \"curl\" \"Wget\"; }\n  location /c { gzip_disable msie6; }\n }\n}\n");
    let a = gzip_of(&ir, loc(&ir, "/a"));
    assert!(a.disable_msie6);
    let re = |g: &Gzip| -> Vec<(String, bool)> {
        g.disable
            .iter()
            .map(|id| {
                let r = &ir.regexes[id.0 as usize];
                (r.pattern.clone(), r.case_insensitive)
            })
            .collect()
    };
    assert_eq!(re(a), [("^Mozilla/4".to_string(), true)]);
    // A level with gzip_disable has its own regexes; msie6 from outside stays (nginx merges
    // the two apart).
    let b = gzip_of(&ir, loc(&ir, "/b"));
    assert!(b.disable_msie6);
    assert_eq!(
        re(b),
        [("curl".to_string(), true), ("Wget".to_string(), true)]
    );
    // `gzip_disable msie6;` alone starts an empty list of regexes, as nginx.
    let c = gzip_of(&ir, loc(&ir, "/c"));
    assert!(c.disable_msie6 && c.disable.is_empty());
    // A bad regex is reported like the others, at its argument.
    let d = short_diagnostics(&server("location / { gzip_disable msie6 \"(x\"; }"));
    assert!(
        d.contains("t.conf:5:37: error[E0011]: invalid regular expression \"(x\""),
        "{d}"
    );
}

#[test]
fn gzip_comp_level_outside_one_to_nine_is_refused() {
    for (level, col) in [("0", 21), ("10", 21)] {
        let text = server(&format!("gzip_comp_level {level};"));
        assert_error(&text, &format!("value \"{level}\" must be between 1 and 9"));
        let d = short_diagnostics(&text);
        assert!(
            d.contains(&format!(
                "t.conf:5:{col}: error[E0006]: value \"{level}\" must be between 1 and 9"
            )),
            "{d}"
        );
        assert!(d.contains("help: gzip_comp_level 1;"), "{d}");
    }
    // Also where no location inherits it (a server that sets its own).
    assert_error(
        "events {}\nhttp {\n gzip_comp_level 10;\n server { listen 80; gzip_comp_level 5; }\n}\n",
        "value \"10\" must be between 1 and 9",
    );
    assert_error(&server("gzip_comp_level -1;"), "invalid value \"-1\"");
    for level in 1..=9 {
        let ir = ok(&server(&format!("gzip_comp_level {level};")));
        assert_eq!(gzip_of(&ir, server_default(&ir)).comp_level, level);
    }
}

#[test]
fn gzip_no_effect_directives_have_nginx_checks() {
    ok(&server(
        "gzip_buffers 16 8k; gunzip_buffers 4 1m; gzip_window 512; gzip_hash 1k;",
    ));
    for w in ["512", "1k", "2k", "4k", "8k", "16k", "32k"] {
        ok(&server(&format!("gzip_window {w};")));
    }
    for h in ["512", "1k", "8k", "64k", "128k"] {
        ok(&server(&format!("gzip_hash {h};")));
    }
    assert_error(
        &server("gzip_window 64k;"),
        "\"gzip_window\" must be 512, 1k, 2k, 4k, 8k, 16k, or 32k",
    );
    assert_error(
        &server("gzip_window 1000;"),
        "\"gzip_window\" must be 512, 1k, 2k, 4k, 8k, 16k, or 32k",
    );
    assert_error(
        &server("gzip_hash 256;"),
        "\"gzip_hash\" must be 512, 1k, 2k, 4k, 8k, 16k, 32k, 64k, or 128k",
    );
    assert_error(
        &server("gzip_buffers 0 4k;"),
        "invalid value \"0\" in \"gzip_buffers\" directive",
    );
    assert_error(
        &server("gunzip_buffers 4 0;"),
        "invalid value \"0\" in \"gunzip_buffers\" directive",
    );
    assert_error(&server("gzip_buffers 4;"), "invalid number of arguments");
    assert_error(&server("gzip_min_length big;"), "invalid value \"big\"");
    assert_error(&server("gzip_http_version 2.0;"), "invalid value \"2.0\"");
    assert_error(&server("gzip_static maybe;"), "invalid value \"maybe\"");
}

#[test]
fn gzip_types_duplicates_warn_as_nginx() {
    let (ir, warnings) =
        compile(&server("gzip_types text/css text/html TEXT/CSS;")).expect("compiles");
    assert_eq!(
        warnings,
        [
            "duplicate MIME type \"text/html\"",
            "duplicate MIME type \"text/css\""
        ]
    );
    assert_eq!(
        gzip_of(&ir, server_default(&ir)).types,
        ["text/css", "text/html"]
    );
}

#[test]
fn gzip_family_directives_without_a_row_stay_unsupported() {
    for d in ["postpone_gzipping 1k;", "gzip_no_buffer on;"] {
        let name = d.split(' ').next().unwrap_or_default();
        let text = server(d);
        assert_error(&text, &format!("\"{name}\" directive is not supported yet"));
        assert!(
            short_diagnostics(&text).contains("error[E0003]"),
            "{d} is not E0003"
        );
    }
}

#[test]
fn gzip_ratio_is_a_variable_and_access_log_gzip_still_works() {
    let ir = ok(
        "events {}\nhttp {\n log_format z '$request $gzip_ratio';\n server {\n  listen 80;\n  \
         access_log logs/z.log z gzip=4 buffer=8k;\n  add_header X-Ratio $gzip_ratio;\n }\n}\n",
    );
    let f = ir
        .log_formats
        .iter()
        .find(|f| f.name == "z")
        .expect("log_format z");
    assert!(f
        .template
        .parts
        .contains(&Part::Var(Var::Builtin(Builtin::GzipRatio))));
    match &settings_of(&ir, server_default(&ir)).access_log[..] {
        [AccessLog::File { gzip, buffer, .. }] => {
            assert_eq!((*gzip, *buffer), (Some(4), Some(8192)));
        }
        other => panic!("{other:?}"),
    }
}

/// An argument on a line of its own that is also a directive's name is still an argument
/// when it cannot start that directive (nginx-tests' access_log.t: `gzip` then
/// `buffer=1m flush=100ms` on the next line); a real missing `;` is still reported.
#[test]
fn a_parameter_named_like_a_directive_on_the_next_line_is_a_parameter() {
    let ir = ok(
        "events {}\nhttp {\n log_format t '$uri';\n server {\n  listen 80;\n  \
         access_log logs/c.log t\n             gzip buffer=1m flush=100ms;\n }\n}\n",
    );
    match &settings_of(&ir, server_default(&ir)).access_log[..] {
        [AccessLog::File { gzip, buffer, .. }] => {
            assert_eq!((*gzip, *buffer), (Some(1), Some(1 << 20)));
        }
        other => panic!("{other:?}"),
    }
    let e = errors("events {}\nhttp {\n server {\n  listen 80;\n  root /srv\n  gzip on;\n }\n}\n");
    assert!(
        e.iter()
            .any(|m| m.contains("missing \";\" after the \"root\" directive")),
        "{e:?}"
    );
}

fn brotli_of<'a>(ir: &'a Ir, l: &Location) -> &'a Compression {
    &settings_of(ir, l).brotli
}

fn zstd_of<'a>(ir: &'a Ir, l: &Location) -> &'a Compression {
    &settings_of(ir, l).zstd
}

#[test]
fn brotli_and_zstd_defaults_are_the_modules_ones() {
    let ir = ok(&server("location / { }"));
    let b = brotli_of(&ir, loc(&ir, "/"));
    assert_eq!(*b, Compression::off(6, 19));
    assert!(!b.enable);
    assert_eq!(b.types, ["text/html"]);
    assert_eq!((b.comp_level, b.min_length, b.window_log), (6, 20, 19));
    assert_eq!(b.static_mode, GzipStatic::Off);
    let z = zstd_of(&ir, loc(&ir, "/"));
    assert_eq!(*z, Compression::off(1, 0));
    assert_eq!((z.comp_level, z.min_length, z.window_log), (1, 20, 0));
    // Written out as the modules' defaults, the same records.
    let ir = ok(&server(
        "brotli off; brotli_types text/html; brotli_comp_level 6; brotli_min_length 20;\n\
         brotli_window 512k; brotli_static off; brotli_buffers 32 4k;\n\
         zstd off; zstd_types text/html; zstd_comp_level 1; zstd_min_length 20; zstd_static off;\n\
         zstd_buffers 32 4k;",
    ));
    let l = server_default(&ir);
    assert_eq!(*brotli_of(&ir, l), Compression::off(6, 19));
    assert_eq!(*zstd_of(&ir, l), Compression::off(1, 0));
    // …with nginx's duplicate warnings for the text/html written out.
    let (_, warnings) =
        compile(&server("brotli_types text/html; zstd_types text/html;")).expect("compiles");
    assert_eq!(warnings, ["duplicate MIME type \"text/html\""; 2]);
}

#[test]
fn brotli_and_zstd_settings_are_read_and_inherited() {
    let ir = ok("events {}\nhttp {\n brotli on;\n brotli_types text/CSS application/json text/css;\n \
         brotli_comp_level 11;\n brotli_min_length 1k;\n brotli_window 4m;\n brotli_static always;\n \
         zstd on;\n zstd_types image/SVG+xml;\n zstd_comp_level 19;\n zstd_min_length 256;\n \
         zstd_static on;\n server {\n  listen 80;\n  location /a { }\n  \
         location /b { brotli_types text/plain; brotli_comp_level 0; brotli_static on; zstd_comp_level 22;\n   \
         location /b/c { brotli off; zstd off; brotli_window 1k; } }\n  \
         location /d { brotli_types text/plain *; zstd_types *; zstd_static always; }\n }\n}\n");
    let a = brotli_of(&ir, loc(&ir, "/a"));
    assert_eq!(
        *a,
        Compression {
            enable: true,
            // Lowercase, sorted, deduplicated, text/html always there.
            types: vec![
                "application/json".into(),
                "text/css".into(),
                "text/html".into()
            ],
            comp_level: 11,
            min_length: 1024,
            static_mode: GzipStatic::Always,
            window_log: 22,
        }
    );
    let az = zstd_of(&ir, loc(&ir, "/a"));
    assert_eq!(
        *az,
        Compression {
            enable: true,
            types: vec!["image/svg+xml".into(), "text/html".into()],
            comp_level: 19,
            min_length: 256,
            static_mode: GzipStatic::On,
            window_log: 0,
        }
    );
    // A level with brotli_types replaces its parent's list (text/html stays); the rest is
    // inherited directive by directive.
    let b = brotli_of(&ir, loc(&ir, "/b"));
    assert_eq!(b.types, ["text/html", "text/plain"]);
    assert_eq!(
        (
            b.enable,
            b.comp_level,
            b.static_mode,
            b.window_log,
            b.min_length
        ),
        (true, 0, GzipStatic::On, 22, 1024)
    );
    assert_eq!(zstd_of(&ir, loc(&ir, "/b")).comp_level, 22);
    let c = brotli_of(&ir, loc(&ir, "/b/c"));
    assert!(!c.enable);
    assert_eq!((c.comp_level, c.window_log), (0, 10));
    assert_eq!(c.types, ["text/html", "text/plain"]);
    let cz = zstd_of(&ir, loc(&ir, "/b/c"));
    assert!(!cz.enable);
    assert_eq!((cz.comp_level, cz.static_mode), (22, GzipStatic::On));
    assert_eq!(brotli_of(&ir, loc(&ir, "/d")).types, ["*"]);
    let dz = zstd_of(&ir, loc(&ir, "/d"));
    assert_eq!(
        (&dz.types[..], dz.static_mode),
        (&["*".to_string()][..], GzipStatic::Always)
    );
    // The three codings are apart: gzip is untouched by brotli and zstd.
    assert_eq!(*gzip_of(&ir, loc(&ir, "/a")), Gzip::default());
    // The lines of one level add up, as nginx's types slot.
    let ir = ok(&server("zstd_types text/css; zstd_types text/xml;"));
    assert_eq!(
        zstd_of(&ir, server_default(&ir)).types,
        ["text/css", "text/html", "text/xml"]
    );
}

#[test]
fn brotli_and_zstd_in_an_if_of_a_location() {
    let ir = ok(&server(
        "brotli on; location / { if ($arg_raw) { brotli off; zstd on; } } \
         location /z { brotli off; if ($arg_z) { brotli on; } }",
    ));
    let ifs: Vec<&Location> = ir
        .locations
        .iter()
        .filter(|l| l.kind == LocationKind::If)
        .collect();
    let prefix = |name: &str| {
        ir.locations
            .iter()
            .find(|l| l.kind == LocationKind::Prefix && ir.text_of(l.name) == name)
            .unwrap_or_else(|| panic!("no location {name}"))
    };
    assert_eq!(ifs.len(), 2);
    assert!(!brotli_of(&ir, ifs[0]).enable);
    assert!(zstd_of(&ir, ifs[0]).enable);
    assert!(brotli_of(&ir, prefix("/")).enable);
    assert!(!zstd_of(&ir, prefix("/")).enable);
    assert!(brotli_of(&ir, ifs[1]).enable);
    assert!(!brotli_of(&ir, prefix("/z")).enable);
    // As gzip: in an `if` of a location only, and only the on/off directive.
    for d in ["brotli on;", "zstd on;"] {
        let name = d.split(' ').next().unwrap_or_default();
        assert_error(
            &server(&format!("if ($arg_z) {{ {d} }}")),
            &format!("\"{name}\" directive is not allowed here"),
        );
    }
    for d in [
        "brotli_comp_level 5;",
        "zstd_types text/css;",
        "brotli_static on;",
    ] {
        let name = d.split(' ').next().unwrap_or_default();
        assert_error(
            &server(&format!("location / {{ if ($arg_z) {{ {d} }} }}")),
            &format!("\"{name}\" directive is not allowed here"),
        );
    }
}

#[test]
fn brotli_and_zstd_comp_levels_outside_their_ranges_are_refused() {
    for (d, level, col, range) in [
        ("brotli_comp_level", "12", 23, "0 and 11"),
        ("zstd_comp_level", "0", 21, "1 and 22"),
        ("zstd_comp_level", "23", 21, "1 and 22"),
    ] {
        let text = server(&format!("{d} {level};"));
        let d_text = short_diagnostics(&text);
        assert!(
            d_text.contains(&format!(
                "t.conf:5:{col}: error[E0006]: value \"{level}\" must be between {range}"
            )),
            "{d_text}"
        );
        assert!(d_text.contains(&format!("help: {d} ")), "{d_text}");
    }
    // Also where no location inherits it (a server that sets its own).
    assert_error(
        "events {}\nhttp {\n brotli_comp_level 99;\n server { listen 80; brotli_comp_level 5; }\n}\n",
        "value \"99\" must be between 0 and 11",
    );
    // zstd-nginx-module's negative (fast) levels are not taken.
    assert_error(&server("zstd_comp_level -5;"), "invalid value \"-5\"");
    assert_error(&server("brotli_comp_level high;"), "invalid value \"high\"");
    for level in 0..=11 {
        let ir = ok(&server(&format!("brotli_comp_level {level};")));
        assert_eq!(brotli_of(&ir, server_default(&ir)).comp_level, level);
    }
    for level in 1..=22 {
        let ir = ok(&server(&format!("zstd_comp_level {level};")));
        assert_eq!(zstd_of(&ir, server_default(&ir)).comp_level, level);
    }
}

#[test]
fn brotli_window_is_lowered_into_its_power_of_two() {
    for (w, log) in [
        ("1k", 10),
        ("1024", 10),
        ("2k", 11),
        ("64k", 16),
        ("512k", 19),
        ("1m", 20),
        ("2048k", 21),
        ("16m", 24),
    ] {
        let ir = ok(&server(&format!("brotli_window {w};")));
        assert_eq!(
            brotli_of(&ir, server_default(&ir)).window_log,
            log,
            "brotli_window {w}"
        );
    }
    for w in ["512", "3k", "1000", "32m", "0"] {
        let text = server(&format!("brotli_window {w};"));
        let d = short_diagnostics(&text);
        assert!(
            d.contains(
                "t.conf:5:19: error[E0006]: \"brotli_window\" must be 1k, 2k, 4k, 8k, 16k, \
                 32k, 64k, 128k, 256k, 512k, 1m, 2m, 4m, 8m, or 16m"
            ),
            "brotli_window {w}: {d}"
        );
    }
    assert_error(&server("brotli_window big;"), "invalid value \"big\"");
    // zstd has no window directive: its window is the level's own.
    assert_error(
        &server("zstd_window 1m;"),
        "\"zstd_window\" directive is not supported yet",
    );
}

#[test]
fn brotli_and_zstd_no_effect_and_value_checks() {
    ok(&server("brotli_buffers 16 8k; zstd_buffers 4 1m;"));
    for d in ["brotli_buffers", "zstd_buffers"] {
        assert_error(
            &server(&format!("{d} 0 4k;")),
            &format!("invalid value \"0\" in \"{d}\" directive"),
        );
        assert_error(
            &server(&format!("{d} 4 0;")),
            &format!("invalid value \"0\" in \"{d}\" directive"),
        );
        assert_error(&server(&format!("{d} 4;")), "invalid number of arguments");
    }
    for d in ["brotli", "zstd"] {
        assert_error(&server(&format!("{d} yes;")), "invalid value \"yes\"");
        assert_error(
            &server(&format!("{d}_min_length big;")),
            "invalid value \"big\"",
        );
        assert_error(
            &server(&format!("{d}_static maybe;")),
            "invalid value \"maybe\"",
        );
    }
    let (ir, warnings) =
        compile(&server("zstd_types text/css text/html TEXT/CSS;")).expect("compiles");
    assert_eq!(
        warnings,
        [
            "duplicate MIME type \"text/html\"",
            "duplicate MIME type \"text/css\""
        ]
    );
    assert_eq!(
        zstd_of(&ir, server_default(&ir)).types,
        ["text/css", "text/html"]
    );
}

#[test]
fn brotli_and_zstd_directives_without_a_row_stay_unsupported() {
    for d in [
        "zstd_dict_file /etc/nginx/dict;",
        "brotli_dictionary x;",
        "zstd_bogus on;",
    ] {
        let name = d.split(' ').next().unwrap_or_default();
        let text = if name == "zstd_dict_file" {
            // The zstd module's only http-level (main) directive.
            format!("events {{}}\nhttp {{\n {d}\n server {{ listen 80; }}\n}}\n")
        } else {
            server(d)
        };
        assert_error(&text, &format!("\"{name}\" directive is not supported yet"));
        let diags = short_diagnostics(&text);
        assert!(diags.contains("error[E0003]"), "{d} is not E0003: {diags}");
        if name == "zstd_dict_file" {
            assert!(
                diags.contains("zstd dictionaries are not supported"),
                "{diags}"
            );
        }
    }
}

fn sub_filter_of<'a>(ir: &'a Ir, l: &Location) -> &'a SubFilter {
    &settings_of(ir, l).sub_filter
}

/// `(match, replacement)` of each `sub_filter` line in effect, in nginx source form.
fn sub_pairs(f: &SubFilter) -> Vec<(String, String)> {
    f.pairs.iter().map(|(m, r)| (lit(m), lit(r))).collect()
}

#[test]
fn sub_filter_defaults_are_nginx_ones() {
    let default = SubFilter {
        pairs: Vec::new(),
        types: vec!["text/html".into()],
        once: true,
        last_modified: false,
    };
    let ir = ok(&server("location / { }"));
    assert_eq!(*sub_filter_of(&ir, loc(&ir, "/")), default);
    assert_eq!(*sub_filter_of(&ir, server_default(&ir)), default);
    let ir = ok(&server(
        "sub_filter_once on; sub_filter_last_modified off; location / { }",
    ));
    assert_eq!(*sub_filter_of(&ir, loc(&ir, "/")), default);
    // Listing text/html is nginx's duplicate warning: it is always there.
    let (ir, warnings) = compile(&server("sub_filter_types text/html;")).expect("compiles");
    assert_eq!(warnings, ["duplicate MIME type \"text/html\""]);
    assert_eq!(*sub_filter_of(&ir, server_default(&ir)), default);
}

#[test]
fn sub_filter_lines_are_inherited_as_a_whole() {
    let ir = ok(
        "events {}\nhttp {\n sub_filter http-level H;\n sub_filter_once off;\n \
         server {\n  listen 80;\n  sub_filter one 1;\n  sub_filter two 2;\n  \
         sub_filter_types text/CSS;\n  location /a { }\n  \
         location /b { sub_filter three 3; sub_filter_last_modified on;\n   \
         location /b/c { sub_filter_once on; } }\n  \
         location /d { sub_filter_types application/JSON; sub_filter_types *; }\n }\n \
         server {\n  listen 81;\n  location /e { }\n }\n}\n",
    );
    // The server's lines reach a location without its own, in their order.
    let a = sub_filter_of(&ir, loc(&ir, "/a"));
    assert_eq!(
        sub_pairs(a),
        [("one".into(), "1".into()), ("two".into(), "2".into())]
    );
    assert_eq!(a.types, ["text/css", "text/html"]);
    assert!(!a.once);
    assert!(!a.last_modified);
    // A location with one line of its own replaces the list (not added to it); the other
    // settings are inherited one by one.
    let b = sub_filter_of(&ir, loc(&ir, "/b"));
    assert_eq!(sub_pairs(b), [("three".into(), "3".into())]);
    assert_eq!(b.types, ["text/css", "text/html"]);
    assert!(!b.once);
    assert!(b.last_modified);
    let c = sub_filter_of(&ir, loc(&ir, "/b/c"));
    assert_eq!(sub_pairs(c), [("three".into(), "3".into())]);
    assert!(c.once);
    assert!(c.last_modified);
    // The lines of one `sub_filter_types` level add up; `*` is every type.
    let d = sub_filter_of(&ir, loc(&ir, "/d"));
    assert_eq!(sub_pairs(d), sub_pairs(a));
    assert_eq!(d.types, ["*"]);
    // A server without lines of its own takes the http level's.
    let e = sub_filter_of(&ir, loc(&ir, "/e"));
    assert_eq!(sub_pairs(e), [("http-level".into(), "H".into())]);
    assert_eq!(e.types, ["text/html"]);
    assert!(!e.once);
}

#[test]
fn sub_filter_takes_variables_in_both_arguments() {
    let ir = ok(&server(
        "location ~ ^/(?<name>.*)$ {\n      \
         sub_filter 'Host:$Host/$1' \"<b>$host</b> $arg_X $name\";\n      \
         sub_filter ${http_x_Word}s '';\n    }",
    ));
    let l = ir
        .locations
        .iter()
        .find(|l| l.kind == LocationKind::Regex)
        .expect("the regex location");
    let f = sub_filter_of(&ir, l);
    // The match's literal text is lowercased (nginx's ngx_strlow on the argument); what a
    // variable gives is lowercased per response. The replacement is kept as written.
    assert_eq!(
        f.pairs[0].0.parts,
        [
            Part::Literal("host:".into()),
            Part::Var(Var::Builtin(Builtin::Host)),
            Part::Literal("/".into()),
            Part::Capture(1),
        ]
    );
    assert_eq!(lit(&f.pairs[0].1), "<b>$host</b> $arg_x $name");
    assert_eq!(
        f.pairs[1].0.parts,
        [
            Part::Var(Var::Http("x_word".into())),
            Part::Literal("s".into()),
        ]
    );
    // An empty replacement removes the match.
    assert!(f.pairs[1].1.parts.is_empty());
    // Unknown variables are errors, in either argument.
    assert_error(
        &server("sub_filter $nosuch x;"),
        "unknown variable \"$nosuch\"",
    );
    assert_error(
        &server("sub_filter x $nosuch;"),
        "unknown variable \"$nosuch\"",
    );
}

#[test]
fn sub_filter_literal_match_strings_are_lowercased() {
    let ir = ok(&server(
        "sub_filter '<A HREF=\"HTTP://Example.COM/' '<A HREF=\"HTTPS://Example.COM/';\n    \
         sub_filter ÄBC-Ünicode X;",
    ));
    assert_eq!(
        sub_pairs(sub_filter_of(&ir, server_default(&ir))),
        [
            (
                "<a href=\"http://example.com/".into(),
                "<A HREF=\"HTTPS://Example.COM/".into()
            ),
            // ASCII letters only, as nginx's ngx_strlow.
            ("Äbc-Ünicode".into(), "X".into()),
        ]
    );
}

#[test]
fn sub_filter_types_once_and_last_modified() {
    let (ir, warnings) = compile(&server(
        "sub_filter a b;\n    sub_filter_types text/CSS text/plain;\n    \
         sub_filter_types TEXT/css application/javascript;\n    sub_filter_once off;\n    \
         sub_filter_last_modified on;",
    ))
    .expect("compiles");
    assert_eq!(warnings, ["duplicate MIME type \"text/css\""]);
    let f = sub_filter_of(&ir, server_default(&ir));
    assert_eq!(
        f.types,
        [
            "application/javascript",
            "text/css",
            "text/html",
            "text/plain"
        ]
    );
    assert!(!f.once);
    assert!(f.last_modified);
    // `*` anywhere is every type; what follows it is not read (nginx stops there).
    let ir = ok(&server("sub_filter_types text/css * text/css;"));
    assert_eq!(sub_filter_of(&ir, server_default(&ir)).types, ["*"]);
    // The companions are independent of gzip's types.
    let ir = ok(&server("sub_filter_types text/css; gzip_types text/xml;"));
    let s = settings_of(&ir, server_default(&ir));
    assert_eq!(s.sub_filter.types, ["text/css", "text/html"]);
    assert_eq!(s.gzip.types, ["text/html", "text/xml"]);
    // Flags as nginx's: on or off, once per block.
    for d in ["sub_filter_once", "sub_filter_last_modified"] {
        assert_error(&server(&format!("{d} yes;")), "invalid value \"yes\"");
        assert_error(
            &server(&format!("{d} on; {d} off;")),
            &format!("\"{d}\" directive is duplicate"),
        );
    }
    assert_error(&server("sub_filter_types;"), "invalid number of arguments");
    assert_error(&server("sub_filter a;"), "invalid number of arguments");
    assert_error(&server("sub_filter a b c;"), "invalid number of arguments");
}

#[test]
fn sub_filter_contexts_are_http_server_and_location() {
    let ir = ok("events {}\nhttp {\n sub_filter a b;\n server { listen 80; }\n}\n");
    assert_eq!(
        sub_pairs(sub_filter_of(&ir, server_default(&ir))),
        [("a".into(), "b".into())]
    );
    for d in [
        "sub_filter a b;",
        "sub_filter_types text/css;",
        "sub_filter_once off;",
        "sub_filter_last_modified on;",
    ] {
        let name = d.split(' ').next().unwrap_or_default();
        assert_error(
            &server(&format!("location / {{ if ($arg_z) {{ {d} }} }}")),
            &format!("\"{name}\" directive is not allowed here"),
        );
    }
    // A location's `if` block takes the location's lines.
    let ir = ok(&server(
        "location / { sub_filter a b; if ($arg_z) { set $x 1; } }",
    ));
    let i = ir
        .locations
        .iter()
        .find(|l| l.kind == LocationKind::If)
        .expect("the if");
    assert_eq!(sub_pairs(sub_filter_of(&ir, i)), [("a".into(), "b".into())]);
    // nginx has these four directives; any other sub_filter_* name is unknown.
    let d = short_diagnostics(&server("sub_filter_bogus on;"));
    assert!(d.contains("error[E0002]"), "{d}");
}

#[test]
fn sub_filter_refuses_an_empty_match_string() {
    for (line, col) in [("sub_filter \"\" x;", 16), ("sub_filter '' '';", 16)] {
        let d = short_diagnostics(&server(line));
        assert!(
            d.contains(&format!(
                "t.conf:5:{col}: error[E0006]: empty search pattern"
            )),
            "{line}: {d}"
        );
    }
    // Checked where it is written, also when no location inherits it.
    assert_error(
        "events {}\nhttp {\n sub_filter '' x;\n server { listen 80; sub_filter a b; }\n}\n",
        "empty search pattern",
    );
    // A match string that only a variable makes empty is taken (nginx skips it per
    // response).
    let ir = ok(&server("sub_filter $arg_m x;"));
    assert_eq!(sub_filter_of(&ir, server_default(&ir)).pairs.len(), 1);
}

#[test]
fn sub_filter_takes_at_most_255_lines_per_level() {
    let lines = |n: usize| {
        (0..n)
            .map(|i| format!("sub_filter m{i} r{i};"))
            .collect::<Vec<_>>()
            .join("\n    ")
    };
    let ir = ok(&server(&lines(255)));
    let f = sub_filter_of(&ir, server_default(&ir));
    assert_eq!(f.pairs.len(), 255);
    assert_eq!(lit(&f.pairs[254].0), "m254");
    // The 256th line is nginx's error, at its place (line 5 + 255), once.
    let d = short_diagnostics(&server(&lines(300)));
    assert!(
        d.contains("t.conf:260:5: error[E0006]: number of search patterns exceeds 255"),
        "{d}"
    );
    assert_eq!(d.matches("number of search patterns").count(), 1, "{d}");
    // The limit is per level: 255 at http and 255 in a server are fine.
    let text = format!(
        "events {{}}\nhttp {{\n    {}\n  server {{\n    listen 80;\n    {}\n  }}\n}}\n",
        lines(255),
        lines(255)
    );
    ok(&text);
}

/// `output_buffers` sizes nginx's file read buffers: accepted with nginx's checks, no
/// effect (nginx-tests' h2.t writes it).
#[test]
fn output_buffers_is_accepted_and_checked() {
    ok(&server("  location / { output_buffers 2 1m; }\n"));
    let e = errors(&server("  location / { output_buffers 0 1m; }\n"));
    assert!(
        e.iter()
            .any(|m| m.contains("invalid value \"0\" in \"output_buffers\" directive")),
        "{e:?}"
    );
}

fn ssi_of<'a>(ir: &'a Ir, l: &Location) -> &'a Ssi {
    &settings_of(ir, l).ssi
}

fn addition_of<'a>(ir: &'a Ir, l: &Location) -> &'a Addition {
    &settings_of(ir, l).addition
}

#[test]
fn ssi_and_addition_defaults_are_nginx_ones() {
    let ssi = Ssi {
        enable: false,
        types: vec!["text/html".into()],
        silent_errors: false,
        value_length: 255,
        last_modified: false,
    };
    let addition = Addition {
        before: String::new(),
        after: String::new(),
        types: vec!["text/html".into()],
    };
    let ir = ok(&server("location / { }"));
    for l in [loc(&ir, "/"), server_default(&ir)] {
        assert_eq!(*ssi_of(&ir, l), ssi);
        assert_eq!(*addition_of(&ir, l), addition);
    }
    // Writing the defaults changes nothing; listing text/html is nginx's duplicate warning.
    let (ir, warnings) = compile(&server(
        "ssi off; ssi_silent_errors off; ssi_value_length 255; ssi_last_modified off;\n    \
         ssi_types text/html; addition_types text/HTML; add_before_body ''; add_after_body '';",
    ))
    .expect("compiles");
    assert_eq!(
        warnings,
        [
            "duplicate MIME type \"text/html\"",
            "duplicate MIME type \"text/html\""
        ]
    );
    assert_eq!(*ssi_of(&ir, server_default(&ir)), ssi);
    assert_eq!(*addition_of(&ir, server_default(&ir)), addition);
}

#[test]
fn ssi_directives_lower_to_the_ir() {
    let (ir, warnings) = compile(&server(
        "ssi on;\n    ssi_types text/X-Shtml application/xhtml+xml;\n    \
         ssi_types TEXT/x-shtml text/plain;\n    ssi_silent_errors on;\n    \
         ssi_value_length 1k;\n    ssi_last_modified on;\n    ssi_min_file_chunk 4k;\n    \
         ssi_ignore_recycled_buffers on;",
    ))
    .expect("compiles");
    // The lines of one `ssi_types` level add up, as nginx's types slot.
    assert_eq!(warnings, ["duplicate MIME type \"text/x-shtml\""]);
    assert_eq!(
        *ssi_of(&ir, server_default(&ir)),
        Ssi {
            enable: true,
            types: vec![
                "application/xhtml+xml".into(),
                "text/html".into(),
                "text/plain".into(),
                "text/x-shtml".into()
            ],
            silent_errors: true,
            value_length: 1024,
            last_modified: true,
        }
    );
    // `*` is every type; the bounds of ssi_value_length are taken.
    let ir = ok(&server(
        "ssi_types text/css *; ssi_value_length 1; location /b { ssi_value_length 64k; }",
    ));
    let s = ssi_of(&ir, server_default(&ir));
    assert_eq!(
        (s.types.as_slice(), s.value_length),
        (&["*".to_string()][..], 1)
    );
    assert_eq!(ssi_of(&ir, loc(&ir, "/b")).value_length, 65536);
    // Independent of the other filters' types.
    let ir = ok(&server(
        "ssi_types text/css; addition_types text/xml; sub_filter_types text/plain;",
    ));
    let s = settings_of(&ir, server_default(&ir));
    assert_eq!(s.ssi.types, ["text/css", "text/html"]);
    assert_eq!(s.addition.types, ["text/html", "text/xml"]);
    assert_eq!(s.sub_filter.types, ["text/html", "text/plain"]);
}

#[test]
fn addition_directives_lower_to_the_ir() {
    let ir = ok(&server(
        "add_before_body /header.html;\n    add_after_body '/footer?from=$uri';\n    \
         addition_types text/plain TEXT/CSS;\n    addition_types application/json;",
    ));
    assert_eq!(
        *addition_of(&ir, server_default(&ir)),
        Addition {
            before: "/header.html".into(),
            // nginx's string slot: taken as written, variables included.
            after: "/footer?from=$uri".into(),
            types: vec![
                "application/json".into(),
                "text/css".into(),
                "text/html".into(),
                "text/plain".into()
            ],
        }
    );
    let ir = ok(&server("addition_types *;"));
    assert_eq!(addition_of(&ir, server_default(&ir)).types, ["*"]);
}

#[test]
fn ssi_and_addition_are_inherited_setting_by_setting() {
    let ir = ok(
        "events {}\nhttp {\n ssi_types text/x-shtml;\n ssi_value_length 512;\n \
         add_after_body /http-footer;\n addition_types text/plain;\n \
         server {\n  listen 80;\n  ssi on;\n  ssi_silent_errors on;\n  \
         add_before_body /header;\n  location /a { }\n  \
         location /b { ssi off; ssi_types text/css; addition_types application/json;\n   \
         location /b/c { ssi on; ssi_last_modified on; add_after_body \"\"; } }\n  \
         location /d { add_before_body ''; ssi_types *; }\n }\n \
         server {\n  listen 81;\n  location /e { }\n }\n}\n",
    );
    // A location inherits the server's `ssi on`, and the http level's types and length.
    let a = ssi_of(&ir, loc(&ir, "/a"));
    assert!(a.enable && a.silent_errors && !a.last_modified);
    assert_eq!(a.types, ["text/html", "text/x-shtml"]);
    assert_eq!(a.value_length, 512);
    assert_eq!(
        *addition_of(&ir, loc(&ir, "/a")),
        Addition {
            before: "/header".into(),
            after: "/http-footer".into(),
            types: vec!["text/html".into(), "text/plain".into()],
        }
    );
    // A level's `*_types` replaces its parent's (not added to them).
    let b = ssi_of(&ir, loc(&ir, "/b"));
    assert!(!b.enable && b.silent_errors);
    assert_eq!(b.types, ["text/css", "text/html"]);
    assert_eq!(
        addition_of(&ir, loc(&ir, "/b")).types,
        ["application/json", "text/html"]
    );
    // Nested: `ssi on` again, the types of /b; `""` turns off an inherited URI.
    let c = ssi_of(&ir, loc(&ir, "/b/c"));
    assert!(c.enable && c.last_modified);
    assert_eq!(c.types, ["text/css", "text/html"]);
    let c = addition_of(&ir, loc(&ir, "/b/c"));
    assert_eq!((c.before.as_str(), c.after.as_str()), ("/header", ""));
    let d = addition_of(&ir, loc(&ir, "/d"));
    assert_eq!((d.before.as_str(), d.after.as_str()), ("", "/http-footer"));
    assert_eq!(ssi_of(&ir, loc(&ir, "/d")).types, ["*"]);
    // Another server takes the http level's only.
    let e = ssi_of(&ir, loc(&ir, "/e"));
    assert!(!e.enable && !e.silent_errors);
    assert_eq!((e.types.len(), e.value_length), (2, 512));
    assert_eq!(addition_of(&ir, loc(&ir, "/e")).before, "");
    assert_eq!(addition_of(&ir, loc(&ir, "/e")).after, "/http-footer");
}

#[test]
fn ssi_in_an_if_of_a_location() {
    let ir = ok(&server(
        "ssi on; ssi_types text/css;\n    location / { if ($arg_raw) { ssi off; } }\n    \
         location /z { ssi off; if ($arg_z) { ssi on; } }",
    ));
    let ifs: Vec<&Location> = ir
        .locations
        .iter()
        .filter(|l| l.kind == LocationKind::If)
        .collect();
    let prefix = |name: &str| {
        ir.locations
            .iter()
            .find(|l| l.kind == LocationKind::Prefix && ir.text_of(l.name) == name)
            .unwrap_or_else(|| panic!("no location {name}"))
    };
    assert_eq!(ifs.len(), 2);
    assert!(!ssi_of(&ir, ifs[0]).enable);
    assert!(ssi_of(&ir, prefix("/")).enable);
    assert!(ssi_of(&ir, ifs[1]).enable);
    assert!(!ssi_of(&ir, prefix("/z")).enable);
    // The `if` block keeps its location's other settings.
    assert_eq!(ssi_of(&ir, ifs[1]).types, ["text/css", "text/html"]);
    // nginx takes `ssi` in an `if` of a location only, and its companions in none.
    assert_error(
        &server("if ($arg_z) { ssi on; }"),
        "\"ssi\" directive is not allowed here",
    );
    for d in [
        "ssi_types text/css;",
        "ssi_silent_errors on;",
        "ssi_value_length 1k;",
        "ssi_last_modified on;",
        "ssi_min_file_chunk 1k;",
        "add_before_body /h;",
        "add_after_body /f;",
        "addition_types text/css;",
        "postpone_output 0;",
    ] {
        let name = d.split(' ').next().unwrap_or_default();
        assert_error(
            &server(&format!("location / {{ if ($arg_z) {{ {d} }} }}")),
            &format!("\"{name}\" directive is not allowed here"),
        );
    }
}

#[test]
fn ssi_value_length_out_of_bounds_is_an_error_at_its_place() {
    for (line, col, want) in [
        (
            "ssi_value_length 0;",
            22,
            "error[E0006]: invalid value \"0\" in \"ssi_value_length\" directive",
        ),
        (
            "ssi_value_length 65537;",
            22,
            "error[E0006]: invalid value \"65537\" in \"ssi_value_length\" directive",
        ),
        (
            "ssi_value_length 1m;",
            22,
            "error[E0006]: invalid value \"1m\" in \"ssi_value_length\" directive",
        ),
        (
            "ssi_value_length long;",
            22,
            "error[E0006]: invalid value \"long\" in \"ssi_value_length\" directive",
        ),
        (
            "ssi yes;",
            9,
            "error[E0006]: invalid value \"yes\" in \"ssi\" directive",
        ),
        (
            "postpone_output 1x;",
            21,
            "error[E0006]: invalid value \"1x\" in \"postpone_output\" directive",
        ),
    ] {
        let d = short_diagnostics(&server(line));
        assert!(
            d.contains(&format!("t.conf:5:{col}: {want}")),
            "{line}: {d}"
        );
        assert_eq!(d.matches("error[").count(), 1, "{line}: {d}");
    }
    // The full message says what Proton takes.
    let d = {
        use proton_compiler::diagnostics::{render, MessageFormat};
        let text = server("ssi_value_length 0;");
        let mut map = SourceMap::new();
        let id = map.add(PathBuf::from("t.conf"), text.clone());
        let mut diags = Diagnostics::default();
        let tree = proton_compiler::syntax::parse_text(id, &text, &mut diags);
        let _ = compile_tree(&tree, &map, &mut diags);
        render(&map, &diags, MessageFormat::Human)
    };
    assert!(d.contains("1 to 64k"), "{d}");
    // Checked where it is written, also when no location inherits it.
    assert_error(
        "events {}\nhttp {\n ssi_value_length 0;\n server { listen 80; ssi_value_length 8; }\n}\n",
        "invalid value \"0\" in \"ssi_value_length\" directive",
    );
    // Arity and duplicates as nginx's slots.
    assert_error(&server("ssi;"), "invalid number of arguments");
    assert_error(&server("ssi_types;"), "invalid number of arguments");
    assert_error(&server("add_before_body;"), "invalid number of arguments");
    assert_error(
        &server("add_after_body /a /b;"),
        "invalid number of arguments",
    );
    for d in ["ssi on", "add_before_body /a", "ssi_value_length 1k"] {
        let name = d.split(' ').next().unwrap_or_default();
        assert_error(
            &server(&format!("{d}; {d};")),
            &format!("\"{name}\" directive is duplicate"),
        );
    }
}

/// `postpone_output` and `ssi_min_file_chunk` size nginx's buffering: accepted with
/// nginx's checks (a size), no effect; other `ssi_*` names are unknown.
#[test]
fn postpone_output_and_ssi_min_file_chunk_are_accepted() {
    let ir = ok(
        "events {}\nhttp {\n postpone_output 0;\n ssi_min_file_chunk 16k;\n \
         server { listen 80; postpone_output 1460; location / { postpone_output 8k; \
         ssi_min_file_chunk 0; } }\n}\n",
    );
    assert!(!ssi_of(&ir, loc(&ir, "/")).enable);
    let d = short_diagnostics(&server("ssi_bogus on;"));
    assert!(d.contains("error[E0002]"), "{d}");
    let d = short_diagnostics(&server("postpone_gzipping 1k;"));
    assert!(d.contains("error[E0003]"), "{d}");
}

#[test]
fn slice_lowers_to_the_ir() {
    // Off unless written.
    let ir = ok(&server("location / { }"));
    assert!(ir.settings.iter().all(|s| s.slice == 0));
    // nginx's size slot: bytes, k, m, g in either case.
    for (arg, want) in [
        ("1m", 1 << 20),
        ("1M", 1 << 20),
        ("256k", 256 * 1024),
        ("1048577", 1_048_577),
        ("2g", 2 << 30),
        ("0", 0),
    ] {
        let ir = ok(&server(&format!("slice {arg};")));
        assert_eq!(settings_of(&ir, server_default(&ir)).slice, want, "{arg}");
    }
}

#[test]
fn slice_is_inherited_from_the_nearest_level_and_0_turns_it_off() {
    let ir = ok("events {}\nhttp {\n slice 1m;\n \
         server {\n  listen 80;\n  location /a { }\n  \
         location /b { slice 256k;\n   location /b/c { }\n   location /b/d { slice 0; } }\n }\n \
         server {\n  listen 81;\n  slice 0;\n  location /e { slice 4k; }\n  location /f { }\n }\n}\n");
    let slice = |name: &str| settings_of(&ir, loc(&ir, name)).slice;
    assert_eq!(settings_of(&ir, server_default(&ir)).slice, 1 << 20);
    assert_eq!(slice("/a"), 1 << 20);
    assert_eq!(slice("/b"), 256 * 1024);
    assert_eq!(slice("/b/c"), 256 * 1024);
    assert_eq!(slice("/b/d"), 0);
    assert_eq!(slice("/e"), 4096);
    assert_eq!(slice("/f"), 0);
}

#[test]
fn slice_refuses_what_nginx_refuses_at_its_place() {
    for (line, col, want) in [
        (
            "slice 1x;",
            11,
            "error[E0006]: invalid value \"1x\" in \"slice\" directive",
        ),
        (
            "slice -1;",
            11,
            "error[E0006]: invalid value \"-1\" in \"slice\" directive",
        ),
        (
            "slice on;",
            11,
            "error[E0006]: invalid value \"on\" in \"slice\" directive",
        ),
        (
            "slice 1t;",
            11,
            "error[E0006]: invalid value \"1t\" in \"slice\" directive",
        ),
        (
            "slice 99999999999999999999;",
            11,
            "error[E0006]: invalid value \"99999999999999999999\" in \"slice\" directive",
        ),
    ] {
        let d = short_diagnostics(&server(line));
        assert!(
            d.contains(&format!("t.conf:5:{col}: {want}")),
            "{line}: {d}"
        );
        assert_eq!(d.matches("error[").count(), 1, "{line}: {d}");
    }
    // Arity, duplicates and contexts as nginx's (http, server, location; not `if`).
    assert_error(&server("slice;"), "invalid number of arguments");
    assert_error(&server("slice 1m 2m;"), "invalid number of arguments");
    assert_error(
        &server("slice 1m; slice 2m;"),
        "\"slice\" directive is duplicate",
    );
    assert_error(
        &server("location / { if ($arg_z) { slice 1m; } }"),
        "\"slice\" directive is not allowed here",
    );
    assert_error(
        "events {}\nslice 1m;\nhttp { server { listen 80; } }\n",
        "\"slice\" directive is not allowed here",
    );
}

#[test]
fn slice_range_is_a_variable() {
    let ir = ok(&server(
        "slice 1m;\n    location / {\n      proxy_pass http://127.0.0.1:9000;\n      \
         proxy_set_header Range $slice_range;\n      add_header X-Slice $SLICE_RANGE;\n    }",
    ));
    let s = settings_of(&ir, loc(&ir, "/"));
    assert_eq!(s.slice, 1 << 20);
    let range = s
        .proxy
        .set_headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("range"))
        .map(|(_, t)| t.parts.clone());
    assert_eq!(
        range,
        Some(vec![Part::Var(Var::Builtin(Builtin::SliceRange))])
    );
    // In a log format too, and it cannot be set.
    let ir = ok(
        "events {}\nhttp {\n log_format s '$request $slice_range';\n server {\n  listen 80;\n  \
         access_log logs/s.log s;\n }\n}\n",
    );
    let f = ir
        .log_formats
        .iter()
        .find(|f| f.name == "s")
        .expect("log_format s");
    assert!(f
        .template
        .parts
        .contains(&Part::Var(Var::Builtin(Builtin::SliceRange))));
    assert!(!errors(&server("set $slice_range x;")).is_empty());
}

/// `limit_req_zone`/`limit_conn_zone` and their users: nginx's numbers (rate in
/// milli-requests, burst and delay ×1000), inheritance as nginx's arrays, and nginx's
/// refusals.
#[test]
fn limit_req_and_limit_conn() {
    let http = |body: &str| {
        format!(
            "events {{}}\nhttp {{\n  limit_req_zone $binary_remote_addr zone=one:1m rate=30r/m;\n  \
             limit_req_zone $uri zone=two:32k rate=5r/s;\n  limit_conn_zone $binary_remote_addr zone=addr:1m;\n  \
             limit_req zone=one;\n  server {{\n    listen 8080;\n    {body}\n  }}\n}}\n"
        )
    };
    let ir = ok(&http(
        "location /a { limit_req zone=two burst=3 nodelay; limit_req zone=one delay=2 burst=4; limit_conn addr 5; limit_req_status 429; limit_req_log_level info; limit_conn_dry_run on; }\n    location /b { }",
    ));
    assert_eq!(ir.limit_zones.len(), 3);
    assert_eq!(
        ir.limit_zones[0].kind,
        LimitZoneKind::Req {
            rate: 500,
            sync: false
        }
    );
    assert_eq!(
        ir.limit_zones[1].kind,
        LimitZoneKind::Req {
            rate: 5000,
            sync: false
        }
    );
    assert_eq!(ir.limit_zones[2].kind, LimitZoneKind::Conn);
    assert_eq!(ir.limit_zones[1].size, 32768);
    let a = &ir.settings[loc(&ir, "/a").conf.settings.0 as usize];
    assert_eq!(
        a.limit_req.limits,
        vec![
            LimitReqRule {
                zone: 1,
                burst: 3000,
                delay: u64::MAX
            },
            LimitReqRule {
                zone: 0,
                burst: 4000,
                delay: 2000
            },
        ]
    );
    assert_eq!(
        (a.limit_req.status, a.limit_req.log_level),
        (429, LogLevel::Info)
    );
    assert_eq!(
        a.limit_conn.limits,
        vec![LimitConnRule { zone: 2, conn: 5 }]
    );
    assert!(a.limit_conn.dry_run);
    // /b inherits the http level's line.
    let b = &ir.settings[loc(&ir, "/b").conf.settings.0 as usize];
    assert_eq!(
        b.limit_req.limits,
        vec![LimitReqRule {
            zone: 0,
            burst: 0,
            delay: 0
        }]
    );
    assert_eq!(b.limit_req.status, 503);
    assert!(b.limit_conn.limits.is_empty());

    assert_error(
        &http("location / { limit_req zone=nope; }"),
        "zero size shared memory zone \"nope\"",
    );
    assert_error(
        &http("location / { limit_conn nope 1; }"),
        "zero size shared memory zone \"nope\"",
    );
    assert_error(
        &http("location / { limit_conn one 1; }"),
        "already declared for a different use",
    );
    assert_error(
        &http("location / { limit_req burst=2; }"),
        "\"limit_req\" must have \"zone\" parameter",
    );
    assert_error(
        &http("location / { limit_req zone=one burst=0; }"),
        "invalid burst value \"burst=0\"",
    );
    assert_error(
        &http("location / { limit_req zone=one delay=x; }"),
        "invalid delay value \"delay=x\"",
    );
    assert_error(
        &http("location / { limit_req zone=one fast; }"),
        "invalid parameter \"fast\"",
    );
    assert_error(
        &http("location / { limit_req zone=one; limit_req zone=one; }"),
        "\"limit_req\" directive is duplicate",
    );
    assert_error(
        &http("location / { limit_conn addr 0; }"),
        "invalid number of connections \"0\"",
    );
    assert_error(
        &http("location / { limit_conn addr 65536; }"),
        "connection limit must be less 65536",
    );
    assert_error(
        &http("location / { limit_req_status 200; }"),
        "value must be between 400 and 599",
    );
    let zone = |line: &str| {
        format!("events {{}}\nhttp {{\n  {line}\n  server {{\n    listen 8080;\n  }}\n}}\n")
    };
    assert_error(
        &zone("limit_req_zone $uri zone=z:16k rate=1r/s;"),
        "zone \"zone=z:16k\" is too small",
    );
    assert_error(
        &zone("limit_req_zone $uri zone=z rate=1r/s;"),
        "invalid zone size \"zone=z\"",
    );
    assert_error(
        &zone("limit_req_zone $uri zone=z:1m rate=0r/s;"),
        "invalid rate \"rate=0r/s\"",
    );
    assert_error(
        &zone("limit_req_zone $uri rate=1r/s x;"),
        "invalid parameter \"x\"",
    );
    assert_error(
        &zone("limit_conn_zone $uri rate=1r/s;"),
        "invalid parameter \"rate=1r/s\"",
    );
    assert_error(
        &zone("limit_req_zone $uri rate=1r/s;"),
        "invalid number of arguments in \"limit_req_zone\"",
    );
    assert_error(
        &zone("limit_req_zone $uri rate=1r/s rate=2r/s;"),
        "\"limit_req_zone\" must have \"zone\" parameter",
    );
    assert_error(
        &zone("limit_req_zone $uri zone=z:1m rate=1r/s; limit_req_zone $host zone=z:1m rate=1r/s;"),
        "limit_req_zone \"z\" is already bound to key",
    );
    assert_error(
        &zone("limit_req_zone $uri zone=z:1m rate=1r/s; limit_conn_zone $host zone=z:1m;"),
        "already declared for a different use",
    );
    // `sync` (nginx Plus) is accepted.
    let ir = ok(&zone("limit_req_zone $uri zone=z:1m rate=2r/m sync;"));
    assert_eq!(
        ir.limit_zones[0].kind,
        LimitZoneKind::Req {
            rate: 33,
            sync: true
        }
    );
}
