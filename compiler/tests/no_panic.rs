//! Property tests: no input makes the parser, the checks or the lowering panic, and whatever
//! compiles encodes to an IR that decodes and verifies. The reader (the one parser of the
//! NGINX-style language) accepts exactly what reads without syntax errors, points its errors
//! inside the text, and reads back what `protonc fmt` and `protonc convert` write.

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

/// What the reader must guarantee on any text, accepted or not:
/// * it accepts exactly the texts `parse_text` reports no syntax error for (a directive
///   that swallowed the next line, its `;` missing, is the one error of a text it accepts);
/// * where it stops is inside the text, on a char boundary;
/// * every diagnostic's spans lie inside the text, on char boundaries;
/// * recovery ends: at most `MAX_SYNTAX_ERRORS` (20) errors of its own.
fn reader_properties(text: &str) {
    use proton_compiler::source::FileId;
    use proton_compiler::syntax::{parse_text, reader};
    let read = reader::parse(FileId(0), text);
    let mut diags = Diagnostics::default();
    parse_text(FileId(0), text, &mut diags);
    let own: Vec<_> = diags
        .list
        .iter()
        .filter(|d| !d.message.starts_with("missing \";\""))
        .collect();
    match &read {
        Ok(_) => assert!(own.is_empty(), "read, yet {own:?} for {text:?}"),
        Err(f) => {
            assert!(
                !own.is_empty(),
                "refused at {f:?}, yet no error for {text:?}"
            );
            assert!(
                text.is_char_boundary(f.pos),
                "stopped at {f:?}, not a char boundary of {text:?}"
            );
        }
    }
    assert!(own.len() <= 20, "{} errors for {text:?}", own.len());
    for d in &diags.list {
        for span in std::iter::once(&d.span).chain(d.secondary.iter().map(|(s, _)| s)) {
            let r = span.range();
            assert!(
                r.start <= r.end && text.is_char_boundary(r.start) && text.is_char_boundary(r.end),
                "span {r:?} of {:?} outside {text:?}",
                d.message
            );
        }
    }
}

/// Shape of a tree: names, argument values and blocks (not spans, nor how values were
/// quoted).
fn shape(tree: &[proton_compiler::ast::Directive]) -> String {
    tree.iter()
        .map(|d| {
            let args: Vec<String> = d.args.iter().map(|a| format!("{:?}", a.value)).collect();
            match &d.block {
                Some(b) => format!("{:?} [{}] {{{}}}", d.name, args.join(" "), shape(b)),
                None => format!("{:?} [{}];", d.name, args.join(" ")),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A text the reader accepts without errors is laid out by `protonc fmt` to a text that
/// reads to the same tree, with the same comments, and that `protonc fmt` leaves alone.
fn layout_round_trip(text: &str) {
    use proton_compiler::frontend::format_conf;
    use proton_compiler::source::FileId;
    use proton_compiler::syntax::{parse_text, reader};
    let mut diags = Diagnostics::default();
    let tree = parse_text(FileId(0), text, &mut diags);
    if diags.has_errors() {
        return;
    }
    let mut d = Diagnostics::default();
    let Some(out) = format_conf(FileId(0), text, &mut d) else {
        panic!("fmt refused what reads: {text:?}: {:?}", d.list);
    };
    let back = parse_text(FileId(0), &out, &mut d);
    assert!(
        !d.has_errors(),
        "fmt output does not read: {text:?} -> {out:?}: {:?}",
        d.list
    );
    assert_eq!(
        shape(&back),
        shape(&tree),
        "fmt changed the tree: {text:?} -> {out:?}"
    );
    let comments = |t: &str| {
        reader::parse_with_comments(FileId(0), t)
            .map(|(_, c)| {
                c.into_iter()
                    .map(|r| t[r].trim_end().to_string())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        comments(&out),
        comments(text),
        "fmt lost a comment: {text:?} -> {out:?}"
    );
    let again = format_conf(FileId(0), &out, &mut d);
    assert_eq!(
        again.as_deref(),
        Some(out.as_str()),
        "fmt is not stable on {text:?}"
    );
}

/// A tree written by `to_conf_string` (the writer of `protonc convert`) reads back to the
/// same names and values, whatever characters they hold.
fn writer_round_trip(tree: &[proton_compiler::ast::Directive]) {
    use proton_compiler::source::FileId;
    use proton_compiler::syntax::parse_text;
    let text = proton_compiler::frontend::to_conf_string(tree);
    let mut diags = Diagnostics::default();
    let back = parse_text(FileId(0), &text, &mut diags);
    assert!(!diags.has_errors(), "{text:?}: {:?}", diags.list);
    assert_eq!(shape(&back), shape(tree), "{text:?}");
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

/// A token of a text that mostly reads: bare words (with escapes, `${var}`, quantifiers, a
/// `#` inside), quoted strings.
fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,8}",
        "[a-z$/^~*.:=@-]{1,6}",
        Just("${x}y".to_string()),
        Just("^/a\\d{2,3}$".to_string()),
        Just("a#b".to_string()),
        Just("a\\;b".to_string()),
        Just("a\\ b".to_string()),
        Just("é\u{b}".to_string()),
        Just("\"q w\"".to_string()),
        Just("\"a\\\"b;{}\"".to_string()),
        Just("'s\"t'".to_string()),
        Just("\"\"".to_string()),
        Just("\"${x\"".to_string()),
        Just("listen".to_string()),
        Just("server_name".to_string()),
    ]
}

/// What separates tokens: whitespace, comments, line breaks.
fn gap() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(" ".to_string()),
        2 => Just("\n".to_string()),
        1 => Just("\t".to_string()),
        1 => Just("\r\n  ".to_string()),
        1 => Just(" # a comment\n".to_string()),
        1 => Just("\n#c;{\n".to_string()),
        1 => Just("\u{feff}".to_string()),
        1 => Just(String::new()),
    ]
}

/// A directive, simple or with a block of directives, with arbitrary gaps between tokens.
fn directive_text() -> impl Strategy<Value = String> {
    let head = (
        atom(),
        proptest::collection::vec((gap(), atom()), 0..4),
        gap(),
    )
        .prop_map(|(name, args, g)| {
            let args: String = args.into_iter().map(|(g, a)| format!("{g} {a}")).collect();
            format!("{name}{args}{g}")
        })
        .boxed();
    let simple = head.clone().prop_map(|h| format!("{h};"));
    simple.prop_recursive(4, 40, 6, move |inner| {
        (
            head.clone(),
            proptest::collection::vec((gap(), inner), 0..6),
            gap(),
        )
            .prop_map(|(h, body, g)| {
                let body: String = body.into_iter().map(|(g, d)| format!("{g}{d}")).collect();
                format!("{h}{{{body}{g}}}")
            })
    })
}

/// A directive tree with names and values made of any characters.
fn tree() -> impl Strategy<Value = Vec<proton_compiler::ast::Directive>> {
    use proton_compiler::ast::{Arg, Directive, Quote};
    use proton_compiler::source::{FileId, Span};
    let value = prop_oneof!["[a-z]{1,6}", "\\PC{0,8}", "[ -~\t\n\r\u{b}\u{feff}é]{0,8}"].boxed();
    let quote = prop_oneof![Just(Quote::Bare), Just(Quote::Double)];
    let args = proptest::collection::vec((value.clone(), quote), 0..4).boxed();
    let span = Span::new(FileId(0), 0..0);
    let make = move |name: String, args: Vec<(String, Quote)>, block| Directive {
        name,
        name_span: span,
        args: args
            .into_iter()
            .map(|(value, quote)| Arg { value, quote, span })
            .collect(),
        block,
        span,
    };
    let leaf = (value.clone(), args.clone()).prop_map(move |(n, a)| make(n, a, None));
    let node = leaf.prop_recursive(3, 24, 5, move |inner| {
        (
            value.clone(),
            args.clone(),
            proptest::collection::vec(inner, 0..5),
        )
            .prop_map(move |(n, a, b)| make(n, a, Some(b)))
    });
    proptest::collection::vec(node, 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn reader_on_lexeme_soup(parts in proptest::collection::vec(lexeme(), 0..40)) {
        reader_properties(&parts.concat());
    }

    #[test]
    fn reader_on_token_soup(toks in proptest::collection::vec(token(), 0..40)) {
        reader_properties(&toks.join(" "));
    }

    #[test]
    fn reader_on_arbitrary_text(s in "\\PC{0,120}") {
        reader_properties(&s);
    }

    #[test]
    fn reader_on_directives(ds in proptest::collection::vec((gap(), directive_text()), 0..6)) {
        let text: String = ds.into_iter().map(|(g, d)| format!("{g}{d}")).collect();
        reader_properties(&text);
        layout_round_trip(&text);
    }

    #[test]
    fn layout_on_lexeme_soup(parts in proptest::collection::vec(lexeme(), 0..40)) {
        layout_round_trip(&parts.concat());
    }

    #[test]
    fn written_trees_read_back(t in tree()) {
        writer_round_trip(&t);
    }
}

/// The configs of the repository and the broken ones: the reader's properties, and the
/// layout round trip of those that read.
#[test]
fn reader_on_examples() {
    for dir in ["../conf", "../conf/examples", "tests/broken"] {
        for entry in std::fs::read_dir(dir).expect("dir").flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "conf") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                reader_properties(&text);
                layout_round_trip(&text);
            }
        }
    }
}

/// Inputs found by the properties or by hand, where the reader's lexical rules meet.
#[test]
fn reader_on_edge_cases() {
    for text in [
        "{2}${x};",
        "a{2}{ }",
        "a ${ b; }",
        "a \"b\"c;",
        "a \"b\\",
        "\"a\"{}",
        "a \"b\")x;",
        "a\u{b}b\u{b};",
        "\u{feff}a \u{feff}b;",
        "a #{\n;",
        "a;#}\n}",
        "}",
        "a {",
        "a \\",
    ] {
        reader_properties(text);
        layout_round_trip(text);
    }
}
