//! The content cache (issue 20), compiler side: `*_cache_path` lowered into
//! `Ir::cache_zones`, the `*_cache*` settings into `ProxySettings::cache` with nginx's merge
//! rules and defaults, nginx's refusals (with their positions and hints), and the knobs of
//! `CACHE_NOT_YET` refused only when set to something else than their default.

use proton_compiler::compile::compile_tree;
use proton_compiler::diagnostics::{Diagnostic, Diagnostics, Severity};
use proton_compiler::source::SourceMap;
use proton_ir::*;
use std::path::PathBuf;

/// An error as the tests look at it: message, `line:col` of its span, its help, and the
/// `line:col` of its secondary spans.
#[derive(Debug)]
struct Error {
    message: String,
    at: String,
    help: String,
    also: Vec<String>,
}

fn compile(text: &str) -> Result<Ir, Vec<Error>> {
    let mut map = SourceMap::new();
    let id = map.add(PathBuf::from("t.conf"), text.to_string());
    let mut diags = Diagnostics::default();
    let src = map.text(id).to_string();
    let tree = proton_compiler::syntax::parse_text(id, &src, &mut diags);
    let ir = compile_tree(&tree, &map, &mut diags);
    let pos = |d: &proton_compiler::source::Span| {
        let (l, c) = map.line_col(*d);
        format!("{l}:{c}")
    };
    let errors: Vec<Error> = diags
        .list
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d: &Diagnostic| Error {
            message: d.message.clone(),
            at: pos(&d.span),
            help: d.help.clone().unwrap_or_default(),
            also: d.secondary.iter().map(|(s, _)| pos(s)).collect(),
        })
        .collect();
    match ir {
        Some(ir) if errors.is_empty() => Ok(ir),
        _ => Err(errors),
    }
}

fn ok(text: &str) -> Ir {
    match compile(text) {
        Ok(ir) => ir,
        Err(e) => panic!("does not compile: {e:#?}\n{text}"),
    }
}

/// The one error of a config that must not compile.
fn error(text: &str) -> Error {
    match compile(text) {
        Ok(_) => panic!("compiles, but nginx refuses it:\n{text}"),
        Err(mut e) => {
            assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
            e.remove(0)
        }
    }
}

/// Asserts an error of `text`: its message contains `want`, it is at `at`, and it has a
/// help line.
fn assert_error(text: &str, want: &str, at: &str) -> Error {
    let all = match compile(text) {
        Ok(_) => panic!("compiles, but nginx refuses it:\n{text}"),
        Err(e) => e,
    };
    let Some(e) = all.into_iter().find(|e| e.message.contains(want)) else {
        panic!("expected {want:?} for:\n{text}");
    };
    assert_eq!(e.at, at, "position of {want:?}: {e:#?}");
    assert!(!e.help.is_empty(), "no help: {e:#?}");
    e
}

/// `http_lines` at the http level (line 3 on), then one server (`listen 8080;`) holding
/// `server_lines`.
fn conf(http_lines: &str, server_lines: &str) -> String {
    format!("events {{}}\nhttp {{\n{http_lines}\nserver {{\nlisten 8080;\n{server_lines}\n}}\n}}\n")
}

fn loc<'a>(ir: &'a Ir, name: &str) -> &'a Location {
    ir.locations
        .iter()
        .find(|l| ir.text_of(l.name) == name && l.kind != LocationKind::Server)
        .unwrap_or_else(|| panic!("no location {name}"))
}

fn settings<'a>(ir: &'a Ir, name: &str) -> &'a Settings {
    &ir.settings[loc(ir, name).conf.settings.0 as usize]
}

fn src(ir: &Ir, t: &Template) -> String {
    t.to_source(&ir.user_vars)
}

#[test]
fn a_full_cache_config_is_lowered() {
    let ir = ok(&conf(
        "proxy_cache_path /var/cache/one/ levels=1:2 keys_zone=one:10m inactive=1h max_size=1g \
         min_free=100m use_temp_path=off manager_files=10 manager_sleep=1s manager_threshold=2s \
         loader_files=20 loader_sleep=100ms loader_threshold=300ms memory=1m;\n\
         fastcgi_cache_path /var/cache/php keys_zone=php:1m levels=2;\n\
         proxy_cache_valid 5m;\n\
         proxy_cache_methods post;\n\
         proxy_no_cache $arg_nocache;",
        "proxy_cache one;\n\
         location / {\n\
           proxy_pass http://127.0.0.1:9000;\n\
           proxy_cache_valid 200 302 10m;\n\
           proxy_cache_valid 404 any 1m;\n\
           proxy_cache_valid 0;\n\
           proxy_cache_bypass $cookie_nocache $arg_nocache;\n\
           proxy_cache_bypass $http_pragma;\n\
           proxy_cache_min_uses 3;\n\
           proxy_cache_lock_timeout 2s;\n\
           proxy_cache_lock_age 10s;\n\
           proxy_cache_convert_head off;\n\
           proxy_cache_max_range_offset 1m;\n\
           proxy_cache_key $host$uri;\n\
           add_header X-Cache $upstream_cache_status;\n\
         }\n\
         location /inherits { proxy_pass http://127.0.0.1:9000; }\n\
         location /off { proxy_pass http://127.0.0.1:9000; proxy_cache off; }\n\
         location /var { proxy_pass http://127.0.0.1:9000; proxy_cache $host; }\n\
         location /php {\n\
           fastcgi_pass 127.0.0.1:9001;\n\
           fastcgi_cache php;\n\
           fastcgi_cache_key $scheme$request_method$host$request_uri;\n\
           fastcgi_cache_methods GET HEAD;\n\
         }",
    ));
    assert_eq!(
        ir.cache_zones,
        vec![
            CacheZone {
                name: "one".into(),
                size: 10 << 20,
                path: "/var/cache/one".into(),
                levels: vec![1, 2],
                use_temp_path: false,
                inactive_secs: 3600,
                max_size: Some(1 << 30),
                min_free: Some(100 << 20),
                manager_files: 10,
                manager_sleep_ms: 1000,
                manager_threshold_ms: 2000,
                loader_files: 20,
                loader_sleep_ms: 100,
                loader_threshold_ms: 300,
                memory: 1 << 20,
            },
            CacheZone {
                name: "php".into(),
                size: 1 << 20,
                path: "/var/cache/php".into(),
                levels: vec![2],
                use_temp_path: true,
                inactive_secs: 600,
                max_size: None,
                min_free: None,
                manager_files: 100,
                manager_sleep_ms: 50,
                manager_threshold_ms: 200,
                loader_files: 100,
                loader_sleep_ms: 50,
                loader_threshold_ms: 200,
                memory: 4 << 20,
            },
        ]
    );

    let c = &settings(&ir, "/").proxy.cache;
    assert_eq!(c.zone, Some(CacheRef::Zone(0)));
    assert_eq!(src(&ir, &c.key), "$host$uri");
    // The location's own lines replace the http level's time-only line.
    assert_eq!(
        c.valid,
        vec![
            CacheValid {
                codes: vec![200, 302],
                any: false,
                secs: 600
            },
            CacheValid {
                codes: vec![404],
                any: true,
                secs: 60
            },
            CacheValid {
                codes: vec![200, 301, 302],
                any: false,
                secs: 0
            },
        ]
    );
    assert_eq!(c.methods, ["GET", "HEAD", "POST"]);
    assert_eq!(c.min_uses, 3);
    let bypass: Vec<String> = c.bypass.iter().map(|t| src(&ir, t)).collect();
    assert_eq!(bypass, ["$cookie_nocache", "$arg_nocache", "$http_pragma"]);
    let no_cache: Vec<String> = c.no_cache.iter().map(|t| src(&ir, t)).collect();
    assert_eq!(no_cache, ["$arg_nocache"]);
    assert_eq!((c.lock_timeout_ms, c.lock_age_ms), (2000, 10_000));
    assert!(!c.convert_head);
    assert_eq!(c.max_range_offset, Some(1 << 20));

    // Every setting comes from the nearest level that has it.
    let c = &settings(&ir, "/inherits").proxy.cache;
    assert_eq!(c.zone, Some(CacheRef::Zone(0)));
    assert_eq!(src(&ir, &c.key), "$scheme$proxy_host$request_uri");
    assert_eq!(
        c.valid,
        vec![CacheValid {
            codes: vec![200, 301, 302],
            any: false,
            secs: 300
        }]
    );
    assert_eq!(c.methods, ["GET", "HEAD", "POST"]);
    assert!(c.bypass.is_empty());
    assert_eq!(c.no_cache.len(), 1);
    assert!(c.convert_head);

    assert_eq!(settings(&ir, "/off").proxy.cache.zone, None);
    match &settings(&ir, "/var").proxy.cache.zone {
        Some(CacheRef::Var(t)) => assert_eq!(src(&ir, t), "$host"),
        other => panic!("proxy_cache $host: {other:?}"),
    }

    // Each module has its own settings: the FastCGI cache, and no proxy cache inherited
    // into it or the other way round.
    let php = settings(&ir, "/php");
    assert_eq!(php.fastcgi.cache.zone, Some(CacheRef::Zone(1)));
    assert_eq!(
        src(&ir, &php.fastcgi.cache.key),
        "$scheme$request_method$host$request_uri"
    );
    assert_eq!(php.fastcgi.cache.methods, ["GET", "HEAD"]);
    assert!(php.fastcgi.cache.valid.is_empty());
    assert!(
        !php.fastcgi.cache.convert_head,
        "no convert_head for FastCGI"
    );
    assert_eq!(settings(&ir, "/").fastcgi.cache.zone, None);
    assert_eq!(php.proxy.cache.zone, Some(CacheRef::Zone(0)));
}

#[test]
fn defaults_are_nginx_s() {
    let ir = ok(&conf(
        "",
        "location / { proxy_pass http://127.0.0.1:9000; }",
    ));
    assert!(ir.cache_zones.is_empty());
    let s = settings(&ir, "/");
    let c = &s.proxy.cache;
    assert_eq!(c.zone, None);
    assert_eq!(src(&ir, &c.key), "$scheme$proxy_host$request_uri");
    assert!(c.valid.is_empty());
    assert_eq!(c.methods, ["GET", "HEAD"]);
    assert_eq!(c.min_uses, 1);
    assert!(c.bypass.is_empty() && c.no_cache.is_empty());
    assert_eq!(c.use_stale, CacheStale::default());
    assert!(!c.background_update && !c.lock && !c.revalidate);
    assert_eq!((c.lock_timeout_ms, c.lock_age_ms), (5000, 5000));
    assert!(c.convert_head);
    assert_eq!(c.max_range_offset, None);
    for m in [&s.fastcgi, &s.scgi, &s.uwsgi] {
        assert_eq!(m.cache.zone, None);
        assert!(m.cache.key.parts.is_empty(), "no default key");
        assert!(!m.cache.convert_head);
        assert_eq!(m.cache.methods, ["GET", "HEAD"]);
    }
}

#[test]
fn a_zone_may_be_declared_after_its_use() {
    let ir = ok(&conf(
        "proxy_cache late;",
        "location / { proxy_pass http://127.0.0.1:9000; }\n}\n\
         proxy_cache_path /tmp/a keys_zone=early:1m;\n\
         proxy_cache_path /tmp/b keys_zone=late:1m;\n\
         server { listen 8081;",
    ));
    assert_eq!(settings(&ir, "/").proxy.cache.zone, Some(CacheRef::Zone(1)));
}

#[test]
fn every_module_has_its_cache() {
    for (m, pass) in [
        ("fastcgi", "fastcgi_pass 127.0.0.1:9001"),
        ("scgi", "scgi_pass 127.0.0.1:9001"),
        ("uwsgi", "uwsgi_pass 127.0.0.1:9001"),
    ] {
        let ir = ok(&conf(
            &format!("{m}_cache_path /tmp/{m} keys_zone={m}z:1m;"),
            &format!(
                "location / {{ {pass}; {m}_cache {m}z; {m}_cache_key $request_uri; \
                 {m}_cache_valid any 1m; {m}_no_cache $arg_x; {m}_cache_bypass $arg_y; \
                 {m}_cache_min_uses 2; {m}_cache_use_stale off; {m}_cache_lock off; }}"
            ),
        ));
        let s = settings(&ir, "/");
        let c = &s
            .upstream(match m {
                "fastcgi" => Protocol::FastCgi,
                "scgi" => Protocol::Scgi,
                _ => Protocol::Uwsgi,
            })
            .cache;
        assert_eq!(c.zone, Some(CacheRef::Zone(0)), "{m}");
        assert_eq!(src(&ir, &c.key), "$request_uri", "{m}");
        assert_eq!(c.valid.len(), 1, "{m}");
        assert!(c.valid[0].any, "{m}");
        assert_eq!((c.no_cache.len(), c.bypass.len(), c.min_uses), (1, 1, 2));
        assert_eq!(s.proxy.cache.zone, None, "{m}");
    }
}

#[test]
fn cache_path_refusals() {
    let path = |line: &str| conf(line, "");
    // Line 3 is the http level's first line.
    assert_error(
        &path("proxy_cache_path /c levels=1:2:3 keys_zone=z:1m;"),
        "invalid \"levels\" \"levels=1:2:3\"",
        "3:21",
    );
    assert_error(
        &path("proxy_cache_path /c levels=1:2:1:2 keys_zone=z:1m;"),
        "invalid \"levels\"",
        "3:21",
    );
    assert_error(
        &path("proxy_cache_path /c keys_zone=z:4k;"),
        "keys zone \"keys_zone=z:4k\" is too small",
        "3:21",
    );
    // 8k, two pages, is nginx's smallest.
    assert_eq!(
        ok(&path("proxy_cache_path /c keys_zone=z:8k;")).cache_zones[0].size,
        8192
    );
    assert_error(
        &path("proxy_cache_path /c keys_zone=z;"),
        "invalid keys zone size \"keys_zone=z\"",
        "3:21",
    );
    assert_error(
        &path("proxy_cache_path /c keys_zone=z:lots;"),
        "invalid keys zone size",
        "3:21",
    );
    assert_error(
        &path("proxy_cache_path /c inactive=1h;"),
        "\"proxy_cache_path\" must have \"keys_zone\" parameter",
        "3:1",
    );
    assert_error(
        &path("proxy_cache_path /c keys_zone=:1m;"),
        "must have \"keys_zone\" parameter",
        "3:1",
    );
    assert_error(
        &path("uwsgi_cache_path /c keys_zone=z:1m levels;"),
        "invalid parameter \"levels\"",
        "3:36",
    );
    assert_error(
        &path("scgi_cache_path /c keys_zone=z:1m size=1m;"),
        "invalid parameter \"size=1m\"",
        "3:35",
    );
    assert_error(
        &path("proxy_cache_path /c keys_zone=z:1m use_temp_path=yes;"),
        "it must be \"on\" or \"off\"",
        "3:36",
    );
    for (p, want) in [
        ("inactive=1ms", "invalid inactive value"),
        ("max_size=big", "invalid max_size value"),
        ("min_free=-1", "invalid min_free value"),
        ("loader_files=x", "invalid loader_files value"),
        ("manager_sleep=x", "invalid manager_sleep value"),
        ("loader_threshold=1y", "invalid loader_threshold value"),
    ] {
        assert_error(
            &path(&format!("proxy_cache_path /c keys_zone=z:1m {p};")),
            want,
            "3:36",
        );
    }
    let e = assert_error(
        &path("proxy_cache_path /c keys_zone=z:1m purger=on;"),
        "the \"purger\" parameter of \"proxy_cache_path\" is not supported",
        "3:36",
    );
    assert!(e.help.contains("remove it"));
    // The http level only.
    let e = error(&conf("", "proxy_cache_path /c keys_zone=z:1m;"));
    assert!(e.message.contains("not allowed here"), "{e:#?}");
}

#[test]
fn zone_names_are_global() {
    let path = |lines: &str| conf(lines, "");
    let e = assert_error(
        &path("proxy_cache_path /a keys_zone=z:1m;\nproxy_cache_path /b keys_zone=z:1m;"),
        "duplicate zone \"z\"",
        "4:18",
    );
    assert_eq!(e.also, ["3:1"]);
    assert_error(
        &path("proxy_cache_path /a keys_zone=z:1m;\nproxy_cache_path /b keys_zone=z:2m;"),
        "the size 2097152 of shared memory zone \"z\" conflicts with already declared size 1048576",
        "4:18",
    );
    let e = assert_error(
        &path("proxy_cache_path /a keys_zone=z:1m;\nfastcgi_cache_path /b keys_zone=z:1m;"),
        "the shared memory zone \"z\" is already declared for a different use",
        "4:20",
    );
    assert_eq!(e.also, ["3:1"]);
    assert_error(
        &path("limit_req_zone $uri zone=z:1m rate=1r/s;\nproxy_cache_path /b keys_zone=z:1m;"),
        "already declared for a different use",
        "4:1",
    );
    let e = assert_error(
        &path("proxy_cache_path /a keys_zone=y:1m;\nscgi_cache_path /a/ keys_zone=z:1m;"),
        "the same path name \"/a\"",
        "4:17",
    );
    assert_eq!(e.also, ["3:1"]);
}

#[test]
fn cache_refusals() {
    let at = |server: &str| {
        conf(
            "proxy_cache_path /p keys_zone=p:1m;\nfastcgi_cache_path /f keys_zone=f:1m;",
            server,
        )
    };
    // Line 7 is the server's first line after listen.
    let e = assert_error(
        &at("location / { proxy_pass http://127.0.0.1:9000; proxy_cache nope; }"),
        "\"proxy_cache\" zone \"nope\" is unknown",
        "7:60",
    );
    assert!(e.help.contains("proxy_cache_path"), "{e:#?}");
    let e = assert_error(
        &at("location / { proxy_pass http://127.0.0.1:9000; proxy_cache f; }"),
        "the shared memory zone \"f\" is already declared for a different use",
        "7:60",
    );
    assert_eq!(e.also, ["4:1"]);
    // FastCGI, SCGI and uwsgi have no default key: nginx refuses a cache without one, at
    // every level where it is in effect (here the server level, which inherits it).
    let e = assert_error(
        &conf(
            "fastcgi_cache_path /f keys_zone=f:1m;\nfastcgi_cache f;",
            "location / { fastcgi_pass 127.0.0.1:9001; fastcgi_cache_key $uri; }",
        ),
        "no \"fastcgi_cache_key\" for \"fastcgi_cache\"",
        "4:1",
    );
    assert!(e.help.contains("fastcgi_cache_key"), "{e:#?}");
    assert_error(
        &at("location / { fastcgi_pass 127.0.0.1:9001; fastcgi_cache $host; }"),
        "no \"fastcgi_cache_key\" for \"fastcgi_cache\"",
        "7:43",
    );
    // With the key at the http level, or the cache off, it compiles.
    ok(&conf(
        "fastcgi_cache_path /f keys_zone=f:1m;\nfastcgi_cache f;\nfastcgi_cache_key $uri;",
        "location / { fastcgi_pass 127.0.0.1:9001; }",
    ));
    ok(&at(
        "location / { fastcgi_pass 127.0.0.1:9001; fastcgi_cache off; }",
    ));

    assert_error(
        &at("proxy_cache_valid 200 600 1m;"),
        "invalid status \"600\"",
        "7:23",
    );
    assert_error(
        &at("proxy_cache_valid 99 1m;"),
        "invalid status \"99\"",
        "7:19",
    );
    assert_error(
        &at("proxy_cache_valid 200 soon;"),
        "invalid time value \"soon\"",
        "7:23",
    );
    assert_error(
        &at("proxy_cache_valid 200 500ms;"),
        "invalid time value \"500ms\"",
        "7:23",
    );
    assert_error(
        &at("proxy_cache_methods GET PUT;"),
        "invalid value \"PUT\"",
        "7:25",
    );
    assert_error(
        &at("proxy_cache_use_stale error off;"),
        "\"off\" cannot be combined with other conditions",
        "7:29",
    );
    assert_error(
        &at("fastcgi_cache_use_stale http_502;"),
        "invalid value \"http_502\"",
        "7:25",
    );
    assert_error(
        &at("proxy_cache p; proxy_cache off;"),
        "\"proxy_cache\" directive is duplicate",
        "7:16",
    );
    assert_error(
        &at("proxy_cache_min_uses many;"),
        "invalid value \"many\"",
        "7:22",
    );
    // proxy_cache is not an "if in location" directive.
    let e = error(&at(
        "location / { proxy_pass http://127.0.0.1:9000; if ($arg_x) { proxy_cache p; } }",
    ));
    assert!(e.message.contains("not allowed here"), "{e:#?}");
    // No convert_head outside the proxy module, as nginx.
    let e = error(&at("fastcgi_cache_convert_head on;"));
    assert!(e.message.contains("unknown directive"), "{e:#?}");
}

#[test]
fn every_cache_knob_is_accepted() {
    let at = |lines: &str| conf("proxy_cache_path /p keys_zone=p:1m;", lines);
    // The knobs the runtime does are accepted with any value (the table of those it does
    // not do yet is empty).
    let ir = ok(&at(
        "location / { proxy_pass http://127.0.0.1:9000; proxy_cache p; \
         proxy_cache_lock on; proxy_cache_revalidate on; proxy_cache_background_update on; \
         proxy_cache_use_stale error timeout updating http_500; }",
    ));
    let c = &settings(&ir, "/").proxy.cache;
    assert!(c.lock && c.revalidate && c.background_update);
    assert!(c.use_stale.updating && c.use_stale.http_500 && c.use_stale.error);
    let ir = ok(&at(
        "location / { proxy_pass http://127.0.0.1:9000; proxy_cache p; \
         proxy_cache_lock off; proxy_cache_revalidate off; proxy_cache_background_update off; \
         proxy_cache_use_stale off; fastcgi_cache_lock off; }",
    ));
    let c = &settings(&ir, "/").proxy.cache;
    assert_eq!(c.use_stale, CacheStale::default());
    assert!(!c.lock && !c.revalidate && !c.background_update);
    // A map entry is data, not a directive.
    ok(&conf(
        "map $uri $m { proxy_cache_background_update on; default 0; }",
        "return 200 $m;",
    ));
}

#[test]
fn cache_variables() {
    // $upstream_cache_status is known; the revalidation ones are not supported yet.
    let ir = ok(&conf(
        "log_format c '$upstream_cache_status';",
        "add_header X-Cache $upstream_cache_status;",
    ));
    assert!(!ir.log_formats.is_empty());
    for v in ["upstream_cache_last_modified", "upstream_cache_etag"] {
        let e = error(&conf("", &format!("add_header X ${v};")));
        assert!(e.message.contains("not supported yet"), "{e:#?}");
    }
}

#[test]
fn store_and_purge_are_lowered() {
    // proxy_cache_purge (NGINX Plus's form): conditions, inherited as proxy_no_cache's.
    let ir = ok(&conf(
        "proxy_cache_path /c keys_zone=z:1m; map $request_method $purge { PURGE 1; default 0; } \
         proxy_cache_purge $purge 1;",
        "location / { proxy_pass http://127.0.0.1:9000; proxy_cache z; } \
         location /f { fastcgi_pass 127.0.0.1:9000; fastcgi_cache_purge $purge; }",
    ));
    assert_eq!(settings(&ir, "/").proxy.cache.purge.len(), 2);
    assert_eq!(settings(&ir, "/f").fastcgi.cache.purge.len(), 1);
    // The third-party ngx_cache_purge forms would purge every request: refused with a hint.
    for (line, word) in [
        ("proxy_cache_purge PURGE from 127.0.0.1;", "PURGE"),
        ("proxy_cache_purge on;", "on"),
        ("proxy_cache_purge z $uri;", "z"),
        ("fastcgi_cache_purge $uri purge_all;", "purge_all"),
    ] {
        let e = error(&conf("", line));
        assert!(
            e.message.contains("third-party ngx_cache_purge") && e.message.contains(word),
            "{line}: {e:#?}"
        );
        assert!(e.help.contains("map $request_method $purge"), "{e:#?}");
    }
    let ir = ok(&conf(
        "proxy_store on; proxy_store_access group:r all:r;",
        "location / { proxy_pass http://127.0.0.1:9000; } \
         location /p { proxy_pass http://127.0.0.1:9000; proxy_store /data$uri; } \
         location /f { fastcgi_pass 127.0.0.1:9000; fastcgi_store off; }",
    ));
    let top = &settings(&ir, "/").proxy;
    assert_eq!(top.store, Some(StoreTarget::Root));
    // Rights for group or all give the user read and write (nginx).
    assert_eq!(top.store_access, 0o644);
    assert!(matches!(
        settings(&ir, "/p").proxy.store,
        Some(StoreTarget::Path(_))
    ));
    assert_eq!(settings(&ir, "/f").fastcgi.store, None);
    assert_eq!(settings(&ir, "/f").proxy.store_access, 0o644);
    // Not with a cache at the same level; a bad access right.
    let e = error(&conf(
        "proxy_cache_path /c keys_zone=z:1m;",
        "location /x { proxy_pass http://127.0.0.1:9000; proxy_store on; proxy_cache z; }",
    ));
    assert!(e.message.contains("incompatible"), "{e:#?}");
    let e = error(&conf("proxy_store_access user:x;", ""));
    assert!(e.message.contains("invalid value \"user:x\""), "{e:#?}");
}

#[test]
fn yaml_documents_have_the_cache_too() {
    let text = "events: {}\nhttp:\n  proxy_cache_path: [[/tmp/c, \"levels=1:2\", \"keys_zone=one:1m\"]]\n  \
                servers:\n    - listen: [8080]\n      locations:\n        - match: /\n          \
                proxy_pass: \"http://127.0.0.1:9000\"\n          proxy_cache: one\n          \
                proxy_cache_valid: [[200, 10m], [any, 1m]]\n          proxy_no_cache: [[$arg_a, $arg_b]]\n";
    let mut map = SourceMap::new();
    let id = map.add(PathBuf::from("t.yaml"), text.to_string());
    let mut diags = Diagnostics::default();
    let tree = proton_compiler::frontend::parse_document(
        id,
        text,
        proton_compiler::frontend::DocFormat::Yaml,
        &mut diags,
    );
    let ir = compile_tree(&tree, &map, &mut diags);
    assert!(!diags.has_errors(), "{:#?}", diags.list);
    let Some(ir) = ir else {
        panic!("no IR");
    };
    assert_eq!(ir.cache_zones[0].levels, [1, 2]);
    let c = &settings(&ir, "/").proxy.cache;
    assert_eq!(c.zone, Some(CacheRef::Zone(0)));
    assert_eq!(c.valid.len(), 2);
    assert_eq!(c.no_cache.len(), 2);
}
