//! PCRE syntax the `regex` crate spells differently, rewritten into its spelling. Every regex
//! of a config (server_name, location, rewrite, if, map) passes through [`to_rust`] once, in
//! `Lower::regex`, before it is checked and stored in the IR; the runtime only ever sees the
//! rewritten pattern.
//!
//! What is rewritten: `\Q…\E` (the text between is literal; `\E` alone is ignored and a `\Q`
//! without `\E` quotes to the end, as PCRE). What needs nothing: `(?<name>…)`,
//! `(?P<name>…)`, `\p{N}`, `\d`, `\w`, `\s`, `(?i)`. What the regex crate refuses
//! (look-around, back-references) is reported by the caller.

use std::borrow::Cow;

/// `pattern` in the regex crate's syntax.
pub(crate) fn to_rust(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains("\\Q") && !pattern.contains("\\E") {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    let mut quoting = false;
    while let Some(c) = chars.next() {
        if quoting {
            if c == '\\' && chars.as_str().starts_with('E') {
                chars.next();
                quoting = false;
            } else {
                push_literal(&mut out, c);
            }
            continue;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Q') => quoting = true,
            // `\E` outside a quote: nothing, as PCRE.
            Some('E') => {}
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Appends `c` so that it matches itself, in or out of a character class (the characters
/// `regex::escape` escapes).
fn push_literal(out: &mut String, c: char) {
    if r"\.+*?()|[]{}^$#&-~".contains(c) {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::to_rust;

    #[test]
    fn quoted_text_becomes_literal() {
        for (pcre, rust) in [
            (
                r"^(?P<name>[a-z]+)\Q.example.com\E$",
                r"^(?P<name>[a-z]+)\.example\.com$",
            ),
            (r"\Qa+b*c?\E", r"a\+b\*c\?"),
            (r"\Q(x)[y]{1}|^$\E", r"\(x\)\[y\]\{1\}\|\^\$"),
            // A backslash inside a quote is literal too.
            (r"\Qa\b\E", r"a\\b"),
            (r"\Q\\E", r"\\"),
            // No \E: to the end.
            (r"^/a\Q.b", r"^/a\.b"),
            // \E alone is dropped.
            (r"a\Eb", r"ab"),
            // Inside a class.
            (r"[\Q]-\E]", r"[\]\-]"),
            // Other escapes are kept, an escaped backslash is not a \Q.
            (r"\\Q\d\.", r"\\Q\d\."),
            (r"\p{N}+\Q.\E", r"\p{N}+\."),
            ("\\Q\u{e9} \\E", "\u{e9} "),
            ("trailing\\", "trailing\\"),
        ] {
            assert_eq!(to_rust(pcre), rust, "{pcre}");
        }
    }

    #[test]
    fn patterns_without_quotes_are_untouched() {
        for p in [r"^/a\.b$", r"(?<n>\w+)", r"\\", "", r"\p{N}"] {
            assert!(matches!(to_rust(p), std::borrow::Cow::Borrowed(_)), "{p}");
            assert_eq!(to_rust(p), p);
        }
    }

    #[test]
    fn rewritten_patterns_compile_and_match_as_pcre() {
        for (pcre, hit, miss) in [
            (r"^\Q.example.com\E$", ".example.com", "xexample.com"),
            (r"^[\Q]-\E]+$", "]-]", "a"),
            (r"^\Qa b\E$", "a b", "ab"),
            (r"^(?P<name>[a-z]+)\Q.x\E$", "blah.x", "blahxx"),
        ] {
            let re = regex::Regex::new(&to_rust(pcre)).expect("compiles");
            assert!(re.is_match(hit) && !re.is_match(miss), "{pcre}");
        }
    }
}
