//! Property tests: no input makes the parser, the checks or the lowering panic, and whatever
//! compiles encodes to an IR that decodes and verifies.

use proptest::prelude::*;
use proton_compiler::diagnostics::{render, Diagnostics, MessageFormat};
use proton_compiler::source::SourceMap;
use std::path::PathBuf;

fn run(text: &str) {
    let mut map = SourceMap::new();
    let id = map.add(PathBuf::from("fuzz.conf"), text.to_string());
    let mut diags = Diagnostics::default();
    let src = map.text(id).to_string();
    let tree = proton_compiler::syntax::parse_text(id, &src, &mut diags);
    if let Some(ir) = proton_compiler::compile::compile_tree(&tree, &map, &mut diags) {
        let bytes = proton_ir::encode(&ir, [0; 32]);
        let (_, back) = proton_ir::decode(&bytes).expect("a compiled IR decodes");
        assert_eq!(back, ir);
    }
    let _ = render(&map, &diags, MessageFormat::Plain);
    let _ = render(&map, &diags, MessageFormat::Json);
}

/// Tokens that make up plausible configs, so the fuzzer gets past the lexer often.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("http".to_string()),
        Just("server".to_string()),
        Just("location".to_string()),
        Just("upstream u".to_string()),
        Just("events".to_string()),
        Just("listen 8080".to_string()),
        Just("listen [::1]:80 default_server".to_string()),
        Just("server_name *.a.com b.* ~^x".to_string()),
        Just("return 200 \"$host\"".to_string()),
        Just("rewrite ^/(.*)$ /$1 last".to_string()),
        Just("proxy_pass http://u".to_string()),
        Just("proxy_pass http://1.2.3.4:80/x".to_string()),
        Just("try_files $uri @n".to_string()),
        Just("error_page 404 =200 /e".to_string()),
        Just("add_header X y always".to_string()),
        Just("set $v 1".to_string()),
        Just("= /".to_string()),
        Just("^~ /a".to_string()),
        Just("~* \\.jpg$".to_string()),
        Just("@n".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(";".to_string()),
        Just("\"".to_string()),
        Just("'q'".to_string()),
        Just("#c\n".to_string()),
        Just("${".to_string()),
        Just("\\".to_string()),
        "[a-z_]{1,12}",
        "[ -~]{0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        run(&s);
    }

    #[test]
    fn token_soup_never_panics(toks in proptest::collection::vec(token(), 0..60)) {
        run(&toks.join(" "));
    }

    #[test]
    #[allow(clippy::needless_pass_by_value)]
    fn structured_configs_never_panic(
        locs in proptest::collection::vec((token(), token(), token()), 0..12)
    ) {
        let mut s = String::from("events {}\nhttp {\n upstream u { server 127.0.0.1:1; }\n server {\n listen 8080;\n");
        for (a, b, c) in locs {
            s.push_str(&format!(" location {a} {{ {b}; {c}; }}\n"));
        }
        s.push_str(" }\n}\n");
        run(&s);
    }
}

/// The reader and the pest parser agree: same tree, and the same diagnostics (positions,
/// messages, helps) when the text has syntax errors.
fn agree(text: &str) {
    use proton_compiler::source::FileId;
    use proton_compiler::syntax::{parse_text, parse_with_pest};
    let mut pest_diags = Diagnostics::default();
    let pest_tree = parse_with_pest(FileId(0), text, &mut pest_diags);
    let mut diags = Diagnostics::default();
    let tree = parse_text(FileId(0), text, &mut diags);
    assert_eq!(tree, pest_tree, "trees differ for {text:?}");
    assert_eq!(
        format!("{:?}", diags.list),
        format!("{:?}", pest_diags.list),
        "diagnostics differ for {text:?}"
    );
}

/// Characters that matter to the lexer, to build tricky inputs from.
fn lexeme() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,4}",
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\t".to_string()),
        Just("\u{b}".to_string()),
        Just("\u{feff}".to_string()),
        Just(";".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("{2}".to_string()),
        Just("{1,3}".to_string()),
        Just("${x}".to_string()),
        Just("${".to_string()),
        Just("$".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("\\\"".to_string()),
        Just("#".to_string()),
        Just(")".to_string()),
        Just("é".to_string()),
        Just("\"q w\"".to_string()),
        Just("'s'".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn reader_agrees_with_pest(parts in proptest::collection::vec(lexeme(), 0..40)) {
        agree(&parts.concat());
    }

    #[test]
    fn reader_agrees_with_pest_on_token_soup(toks in proptest::collection::vec(token(), 0..40)) {
        agree(&toks.join(" "));
    }
}

#[test]
fn reader_agrees_with_pest_on_examples() {
    for dir in ["../conf", "../conf/examples", "tests/broken"] {
        for entry in std::fs::read_dir(dir).expect("dir").flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "conf") {
                agree(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
}
