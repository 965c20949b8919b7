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
//!
//! What the regex crate cannot express — look-ahead and look-behind, back-references,
//! atomic groups, possessive quantifiers, `\K`, recursion — is compiled by PCRE2 itself
//! (nginx's own engine, through the `pcre2` crate, with its JIT where the machine has one),
//! without the UTF option as nginx: such a pattern matches exactly as in nginx. The fast
//! engine stays for every pattern that needs nothing more ([`Regex`] says which one a
//! pattern got).

use std::ops::Range;

/// The size limit of a compiled pattern from a config (the regex crate's default).
const CONFIG_SIZE_LIMIT: usize = 10 << 20;

/// A compiled pattern: the regex crate's automata, or PCRE2 for what they cannot express.
#[derive(Clone, Debug)]
pub enum Regex {
    Fast(regex::bytes::Regex),
    Pcre(Box<pcre2::bytes::Regex>),
}

/// Why a pattern did not compile: the regex crate's complaint and PCRE2's.
#[derive(Clone, Debug)]
pub struct Error {
    /// The regex crate's error.
    pub fast: regex::Error,
    /// PCRE2's error, when it refused the pattern too (nginx would refuse it the same way).
    pub pcre: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.pcre)
    }
}

impl std::error::Error for Error {}

/// Where the groups of one match are, reusable from match to match ([`Regex::locations`]).
#[derive(Clone, Debug)]
pub enum Locations {
    Fast(regex::bytes::CaptureLocations),
    Pcre(pcre2::bytes::CaptureLocations),
}

impl Locations {
    /// Group `i` of the last match (0: the whole match), as a range of the subject.
    pub fn get(&self, i: usize) -> Option<Range<usize>> {
        match self {
            Locations::Fast(l) => l.get(i).map(|(a, b)| a..b),
            Locations::Pcre(l) => l.get(i).map(|(a, b)| a..b),
        }
    }

    /// The number of groups, the whole match included.
    pub fn len(&self) -> usize {
        match self {
            Locations::Fast(l) => l.len(),
            Locations::Pcre(l) => l.len(),
        }
    }

    /// Whether there are no groups (never: group 0 is the whole match).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The names of a pattern's groups ([`Regex::capture_names`]).
pub enum Names<'a> {
    Fast(regex::bytes::CaptureNames<'a>),
    Pcre(std::slice::Iter<'a, Option<String>>),
}

impl<'a> Iterator for Names<'a> {
    type Item = Option<&'a str>;

    fn next(&mut self) -> Option<Option<&'a str>> {
        match self {
            Names::Fast(n) => n.next(),
            Names::Pcre(n) => n.next().map(Option::as_deref),
        }
    }
}

impl Regex {
    /// Whether the pattern matches somewhere in `subject`. (A PCRE2 match that fails on a
    /// resource limit counts as no match, as nginx treats its errors for locations.)
    pub fn is_match(&self, subject: &[u8]) -> bool {
        match self {
            Regex::Fast(r) => r.is_match(subject),
            Regex::Pcre(r) => r.is_match(subject).unwrap_or(false),
        }
    }

    /// Fresh [`Locations`] for this pattern.
    pub fn locations(&self) -> Locations {
        match self {
            Regex::Fast(r) => Locations::Fast(r.capture_locations()),
            Regex::Pcre(r) => Locations::Pcre(r.capture_locations()),
        }
    }

    /// Searches `subject`, filling `locs` (made by this pattern's [`Regex::locations`]);
    /// the whole match, if any.
    pub fn read(&self, locs: &mut Locations, subject: &[u8]) -> Option<Range<usize>> {
        match (self, locs) {
            (Regex::Fast(r), Locations::Fast(l)) => r.captures_read(l, subject).map(|m| m.range()),
            (Regex::Pcre(r), Locations::Pcre(l)) => r
                .captures_read(l, subject)
                .ok()
                .flatten()
                .map(|m| m.start()..m.end()),
            // Locations of another pattern: made anew (never in Proton's own use).
            (r, l) => {
                *l = r.locations();
                r.read(l, subject)
            }
        }
    }

    /// The groups of the first match in `subject` (0: the whole match), or `None`.
    pub fn captures(&self, subject: &[u8]) -> Option<Locations> {
        let mut l = self.locations();
        self.read(&mut l, subject).map(|_| l)
    }

    /// The number of groups, the whole match included.
    pub fn captures_len(&self) -> usize {
        match self {
            Regex::Fast(r) => r.captures_len(),
            Regex::Pcre(r) => r.captures_len(),
        }
    }

    /// The names of the groups, in order (`None` for an unnamed one; group 0 first).
    pub fn capture_names(&self) -> Names<'_> {
        match self {
            Regex::Fast(r) => Names::Fast(r.capture_names()),
            Regex::Pcre(r) => Names::Pcre(r.capture_names().iter()),
        }
    }

    /// The index of the group called `name`.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.capture_names().position(|n| n == Some(name))
    }

    /// Whether PCRE2 (rather than the regex crate) compiled it.
    pub fn is_pcre(&self) -> bool {
        matches!(self, Regex::Pcre(_))
    }

    /// The pattern as compiled.
    pub fn as_str(&self) -> &str {
        match self {
            Regex::Fast(r) => r.as_str(),
            Regex::Pcre(r) => r.as_str(),
        }
    }
}

/// Compiles a pattern of the config (already in the regex crate's spelling).
pub fn compile(pattern: &str, case_insensitive: bool) -> Result<Regex, Error> {
    compile_limited(pattern, case_insensitive, CONFIG_SIZE_LIMIT)
}

/// [`compile`] for proton-run, with the config's `pcre_jit`.
pub fn compile_jit(pattern: &str, case_insensitive: bool, jit: bool) -> Result<Regex, Error> {
    build(pattern, case_insensitive, CONFIG_SIZE_LIMIT, jit)
}

/// [`compile`] with a smaller bound on the compiled program, for patterns that come from
/// content rather than from the config (an SSI `if` expression).
pub fn compile_limited(
    pattern: &str,
    case_insensitive: bool,
    size_limit: usize,
) -> Result<Regex, Error> {
    build(pattern, case_insensitive, size_limit, false)
}

fn build(
    pattern: &str,
    case_insensitive: bool,
    size_limit: usize,
    jit: bool,
) -> Result<Regex, Error> {
    let build = |unicode: bool| {
        regex::bytes::RegexBuilder::new(pattern)
            .case_insensitive(case_insensitive)
            .unicode(unicode)
            .size_limit(size_limit)
            .build()
    };
    let fast = match build(false).or_else(|_| build(true)) {
        Ok(r) => return Ok(Regex::Fast(r)),
        Err(e) => e,
    };
    // (A pattern too big for the fast engine is not handed to PCRE2: the bound holds.)
    if matches!(fast, regex::Error::CompiledTooBig(_)) {
        return Err(Error {
            pcre: fast.to_string(),
            fast,
        });
    }
    pcre2::bytes::RegexBuilder::new()
        .caseless(case_insensitive)
        .jit_if_available(jit)
        .build(pattern)
        .map(|r| Regex::Pcre(Box::new(r)))
        .map_err(|e| Error {
            fast,
            pcre: e.to_string(),
        })
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

    #[test]
    fn what_the_fast_engine_cannot_express_goes_to_pcre() {
        // Nextcloud's and Magento's look-aheads, a look-behind, a back-reference.
        let re = compile(
            r"^/(?!index|remote|public|cron|core/ajax/update|status|ocs/v[12])",
            false,
        )
        .expect("look-ahead");
        assert!(re.is_pcre());
        assert!(re.is_match(b"/data/x"));
        assert!(!re.is_match(b"/index.php"));
        assert!(matches(r"(?<=/api)/v\d+", false, b"/api/v2"));
        assert!(!matches(r"(?<=/api)/v\d+", false, b"/web/v2"));
        assert!(matches(r"^/(\w+)/\1$", false, b"/ab/ab"));
        assert!(!matches(r"^/(\w+)/\1$", false, b"/ab/cd"));
        // Everything else keeps the fast engine.
        assert!(!compile(r"^/(?<app>\w+)/(.*)$", false).unwrap().is_pcre());
    }

    #[test]
    fn pcre_patterns_capture_and_fold_as_nginx() {
        let re = compile(r"^/(?<name>[a-z]+)(?=\.php)(.*)$", true).expect("pcre");
        assert!(re.is_pcre());
        let c = re.captures(b"/INDEX.php/x").expect("a match");
        assert_eq!(c.get(1), Some(1..6));
        assert_eq!(c.get(2), Some(6..12));
        assert_eq!(re.group_index("name"), Some(1));
        assert_eq!(re.captures_len(), 3);
        // Bytes, as nginx without UTF: `.` is one byte, \w is ASCII.
        assert!(matches(r"^/..(?!x)$", false, "/é".as_bytes()));
        assert!(!matches(r"^\w+(?=!)", false, "é!".as_bytes()));
        // Reused locations.
        let mut l = re.locations();
        assert_eq!(re.read(&mut l, b"/a.php"), Some(0..6));
        assert_eq!(re.read(&mut l, b"/nope"), None);
    }

    #[test]
    fn both_engines_refuse_what_pcre_refuses() {
        let e = compile(r"(?<=a+)b", false).expect_err("variable-length look-behind");
        assert!(!e.pcre.is_empty());
        assert!(compile(r"(?!", false).is_err());
    }
}
