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

/// A config with one server holding `body`.
fn server(body: &str) -> String {
    format!("events {{}}\nhttp {{\n  server {{\n    listen 8080;\n    {body}\n  }}\n}}\n")
}

/// The location of the first server named `name` (its path or regex as written).
fn loc<'a>(ir: &'a Ir, name: &str) -> &'a Location {
    ir.locations
        .iter()
        .find(|l| l.name == name && l.kind != LocationKind::Server)
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
