//! Deeply nested input never exhausts the stack, in any format: the NGINX-style reader
//! refuses more than 256 levels of blocks before parsing (one error at the first `{` too
//! deep), includes cannot nest files deeper, and the JSON and YAML readers stop at their own
//! depth limit without recursing in the parser. Each case runs in a thread with a small stack.

use proton_compiler::compile::compile_path;
use proton_compiler::diagnostics::{Diagnostics, Severity};
use proton_compiler::source::SourceMap;
use std::path::{Path, PathBuf};

/// Stack of the checking thread: far less than the 8 MiB of a main thread.
const SMALL_STACK: usize = 1 << 20;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("protonc-depth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Compiles `path` in a small-stack thread; returns (message, line, column) of each error.
fn errors_of(path: &Path) -> Vec<(String, usize, usize)> {
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let mut map = SourceMap::new();
            let mut diags = Diagnostics::default();
            let _ = compile_path(&path, &mut map, &mut diags);
            diags
                .list
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| {
                    let (l, c) = map.line_col(d.span);
                    (d.message.clone(), l, c)
                })
                .collect()
        })
        .expect("thread")
        .join()
        .expect("no stack overflow")
}

const TOO_DEEP: &str = "blocks nested too deeply (more than 256 levels)";

#[test]
fn deep_conf_is_one_error_at_the_first_brace_too_deep() {
    let d = tmpdir("conf");
    // The reviewer's reproducer: 50,000 unclosed location blocks.
    let text = format!(
        "events{{}} http {{ server {{ {}\n",
        "location /a { ".repeat(50_000)
    );
    let f = d.join("so.conf");
    std::fs::write(&f, &text).expect("write");
    let errs = errors_of(&f);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, TOO_DEEP);
    // `http {` is level 1, `server {` level 2, the 255th location is level 257 (`events{}` has brace 0).
    let col = text
        .match_indices('{')
        .nth(257)
        .map(|(i, _)| i + 1)
        .expect("brace");
    assert_eq!((errs[0].1, errs[0].2), (1, col));

    // Balanced and deep, with a syntax error too: still refused as a whole.
    let deep = format!(
        "events {{}}\nhttp {{ server {{ {}oops }} {} }} }}\n",
        "location /a { ".repeat(400),
        "} ".repeat(400)
    );
    let f = d.join("balanced.conf");
    std::fs::write(&f, deep).expect("write");
    let errs = errors_of(&f);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, TOO_DEEP);

    // Exactly 256 levels is read (and then refused by lowering's own location limit);
    // a syntax error in it is explained without running out of stack.
    let levels = |n: usize, extra: &str| {
        format!(
            "events {{}}\nhttp {{ server {{ {}{extra} {} }} }}\n",
            "location /a { ".repeat(n - 2),
            "} ".repeat(n - 2)
        )
    };
    for (name, text) in [
        ("256.conf", levels(256, "")),
        ("256-syntax.conf", levels(256, "a \"b\"c;")),
    ] {
        let f = d.join(name);
        std::fs::write(&f, text).expect("write");
        let errs = errors_of(&f);
        assert!(
            errs.iter().all(|e| e.0 != TOO_DEEP) && !errs.is_empty(),
            "{name}: {errs:?}"
        );
    }
}

#[test]
fn includes_cannot_nest_deeper_than_the_limit() {
    let d = tmpdir("include");
    // Each file nests 200 levels and includes the next one inside: 600 levels in all.
    for i in 0..3 {
        let inner = if i < 2 {
            format!("include f{}.conf;", i + 1)
        } else {
            String::new()
        };
        let text = format!("{}{inner}{}", "a {".repeat(200), "}".repeat(200));
        std::fs::write(d.join(format!("f{i}.conf")), text).expect("write");
    }
    std::fs::write(d.join("main.conf"), "events {}\ninclude f0.conf;\n").expect("write");
    let errs = errors_of(&d.join("main.conf"));
    assert!(errs.iter().any(|e| e.0 == TOO_DEEP), "{errs:?}");
}

#[test]
fn deep_json_and_yaml_are_refused_without_overflow() {
    let d = tmpdir("doc");
    let cases = [
        ("arrays.json", "[".repeat(100_000)),
        ("objects.json", "{\"http\":".repeat(100_000)),
        (
            "locations.json",
            format!(
                "{{\"events\":{{}},\"http\":{{\"servers\":[{{{}}}]}}}}",
                "\"locations\":[{\"match\":\"/\",".repeat(2_000) + &"}]".repeat(2_000)
            ),
        ),
        ("seq.yaml", "- ".repeat(100_000) + "x"),
        ("flow.yaml", "[".repeat(100_000)),
        ("map.yaml", {
            let mut s = String::new();
            for i in 0..3_000 {
                s.push_str(&" ".repeat(i));
                s.push_str("k:\n");
            }
            s
        }),
        (
            "mixed.yaml",
            "- a:\n  ".to_string() + &"- ".repeat(50_000) + "x",
        ),
    ];
    for (name, text) in cases {
        let f = d.join(name);
        std::fs::write(&f, &text).expect("write");
        let errs = errors_of(&f);
        assert!(!errs.is_empty(), "{name} compiled");
    }
}
