//! How every regular expression of a config is compiled, by protonc (to check it and for
//! `protonc route`) and by proton-run (to match): one function, so the two cannot differ.
//!
//! nginx hands its patterns to PCRE without the UTF option, so a pattern works on bytes:
//! `\d`, `\w`, `\s` and `\b` are ASCII classes, `.` and `[^…]` match any byte, case-blind
//! matching folds ASCII letters only, and `\xE9` is the byte 0xE9. The regex crate's
//! non-Unicode mode is exactly that, and it also compiles about three times faster (a
//! large config's load time is mostly its regexes). A pattern that needs Unicode to be
//! written at all (`\p{L}`, a class holding a non-ASCII character such as `[é]`) is
//! compiled in Unicode mode instead, where it means what it says.

/// The size limit of a compiled pattern from a config (the regex crate's default).
const CONFIG_SIZE_LIMIT: usize = 10 << 20;

/// Compiles a pattern of the config (already in the regex crate's spelling).
pub fn compile(pattern: &str, case_insensitive: bool) -> Result<regex::bytes::Regex, regex::Error> {
    compile_limited(pattern, case_insensitive, CONFIG_SIZE_LIMIT)
}

/// [`compile`] with a smaller bound on the compiled program, for patterns that come from
/// content rather than from the config (an SSI `if` expression).
pub fn compile_limited(
    pattern: &str,
    case_insensitive: bool,
    size_limit: usize,
) -> Result<regex::bytes::Regex, regex::Error> {
    let build = |unicode: bool| {
        regex::bytes::RegexBuilder::new(pattern)
            .case_insensitive(case_insensitive)
            .unicode(unicode)
            .size_limit(size_limit)
            .build()
    };
    build(false).or_else(|_| build(true))
}

#[cfg(test)]
mod tests {
    use super::compile;

    fn matches(p: &str, ci: bool, s: &[u8]) -> bool {
        compile(p, ci).is_ok_and(|r| r.is_match(s))
    }

    #[test]
    fn classes_are_ascii_as_in_pcre_without_utf() {
        // U+0663 ARABIC-INDIC DIGIT THREE is a digit to Unicode, not to PCRE's \d.
        assert!(!matches(r"^\d$", false, "\u{663}".as_bytes()));
        assert!(matches(r"^\d$", false, b"3"));
        assert!(!matches(r"^\w+$", false, "é".as_bytes()));
        assert!(matches(r"^\w+$", false, b"a_9"));
    }

    #[test]
    fn patterns_work_on_bytes() {
        // `.` matches one byte, so "é" (two bytes) takes two dots, as in nginx.
        assert!(matches(r"^/..$", false, "/é".as_bytes()));
        assert!(!matches(r"^/.$", false, "/é".as_bytes()));
        // A byte escape is a byte; invalid UTF-8 in a URI can still match.
        assert!(matches(r"^\xE9$", false, b"\xE9"));
        assert!(matches(r"^/[^/]+$", false, b"/\xff\xfe"));
        // A non-ASCII literal matches its UTF-8 bytes.
        assert!(matches(r"^/café$", false, "/café".as_bytes()));
    }

    #[test]
    fn case_blind_matching_folds_ascii() {
        assert!(matches(r"^/IMG\.PNG$", true, b"/img.png"));
        assert!(!matches(r"^/É$", true, "/é".as_bytes()));
    }

    #[test]
    fn a_pattern_that_needs_unicode_still_compiles() {
        assert!(matches(r"^\p{L}+$", false, "héllo".as_bytes()));
        assert!(matches(r"^[é]$", false, "é".as_bytes()));
        assert!(compile(r"(", false).is_err());
        assert!(compile(r"a{99999999}", false).is_err());
    }
}
