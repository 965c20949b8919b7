//! The directive tables in README.md and docs/configuration.md are generated from the
//! compiler's directive table; this test fails when they drift. Regenerate them with
//! `UPDATE_DOCS=1 cargo test -p proton-compiler --test docs`.

use proton_compiler::directives::markdown_table;

fn check(path: &str, marker: &str, table: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let begin = format!("<!-- {marker}:begin -->\n");
    let end = format!("<!-- {marker}:end -->");
    let (Some(a), Some(b)) = (text.find(&begin), text.find(&end)) else {
        panic!("{path} lacks the {marker} markers");
    };
    let current = &text[a + begin.len()..b];
    if current == table {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{}{}", &text[..a + begin.len()], table, &text[b..]);
        std::fs::write(path, updated).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        return;
    }
    panic!("the directive table in {path} is stale; run `UPDATE_DOCS=1 cargo test -p proton-compiler --test docs`");
}

#[test]
fn readme_table_is_current() {
    check("../README.md", "directives-short", &markdown_table(false));
}

#[test]
fn configuration_table_is_current() {
    check(
        "../docs/configuration.md",
        "directives",
        &markdown_table(true),
    );
}

/// Every diagnostic code the compiler can emit is documented.
#[test]
fn diagnostic_codes_are_documented() {
    let text = std::fs::read_to_string("../docs/configuration.md").expect("docs/configuration.md");
    let src = std::fs::read_to_string("src/diagnostics.rs").expect("diagnostics.rs");
    let mut n = 0;
    for code in src
        .split('"')
        .filter(|s| s.len() == 5 && (s.starts_with("E0") || s.starts_with("W0")))
    {
        n += 1;
        assert!(
            text.contains(&format!("| {code} |")),
            "{code} is not in docs/configuration.md"
        );
    }
    assert!(n >= 17);
}
