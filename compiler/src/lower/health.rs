//! `match NAME { … }` blocks (http context): the tests an answer to
//! `health_check … match=NAME` must pass, lowered into [`HealthMatch`]. Every block is checked,
//! used or not; `health_check` looks the name up with [`Lower::health_match_ref`].
//!
//! The lines are nginx Plus's: `status [!] CODE|FROM-TO …`, `header NAME`, `header ! NAME`,
//! `header NAME (= | != | ~ | !~) VALUE`, `body (~ | !~) REGEX`. Regexes go through
//! [`Lower::regex`] like every other regex of the config (one engine, one syntax).

use super::Lower;
use crate::ast::Directive;
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::source::Span;
use proton_ir::{HeaderTest, HealthMatch, MatchTest};

/// A `match` block as lowered: `None` when it had a mistake (already reported), so that a
/// `match=` naming it does not report it as unknown too.
pub(crate) type MatchDef = (Option<HealthMatch>, Span);

impl Lower<'_> {
    /// Lowers the `match` blocks of the http level (`http` is its directives).
    pub(crate) fn health_matches(&mut self, http: &[Directive]) {
        for d in http.iter().filter(|d| d.name == "match") {
            let name = d.args.first().map_or("", |a| a.value.as_str()).to_string();
            if let Some((_, first)) = self.health_match_defs.get(&name) {
                let first = *first;
                self.err(
                    Diagnostic::error(
                        Code::Duplicate,
                        d.arg_span(0),
                        format!("duplicate match \"{name}\""),
                    )
                    .label("defined again here")
                    .also(first, "first defined here")
                    .help("give each match block its own name"),
                );
                continue;
            }
            let lowered = self.health_match(&name, d);
            self.health_match_defs
                .insert(name, (lowered, d.arg_span(0)));
        }
    }

    /// The block `match=NAME` names (at `span`), or an error naming the blocks there are.
    pub(crate) fn health_match_ref(&mut self, name: &str, span: Span) -> Option<HealthMatch> {
        if let Some((def, _)) = self.health_match_defs.get(name) {
            return def.clone();
        }
        let names: Vec<&str> = self.health_match_defs.keys().map(String::as_str).collect();
        let help = match did_you_mean(name, names) {
            Some(c) => format!("did you mean \"{c}\"?"),
            None => format!(
                "define it in the http block: match {} {{ status 200; }}",
                if name.is_empty() { "NAME" } else { name }
            ),
        };
        self.err(
            Diagnostic::error(Code::UnknownName, span, format!("unknown match \"{name}\""))
                .label("no match block with this name")
                .help(help),
        );
        None
    }

    fn health_match(&mut self, name: &str, d: &Directive) -> Option<HealthMatch> {
        let errors_before = self.diags.error_count();
        let mut tests = Vec::new();
        for line in d.children() {
            let test = match line.name.as_str() {
                "status" => self.match_status(line),
                "header" => self.match_header(line),
                "body" => self.match_body(line),
                // The table check reports anything else.
                _ => None,
            };
            tests.extend(test);
        }
        (self.diags.error_count() == errors_before).then(|| HealthMatch {
            name: name.to_string(),
            tests,
        })
    }

    /// `status [!] CODE|FROM-TO …`.
    fn match_status(&mut self, d: &Directive) -> Option<MatchTest> {
        const HELP: &str =
            "write codes and ranges: `status 200 204;`, `status 200-399;`, `status ! 500;`";
        let negate = d.args.first().is_some_and(|a| a.value == "!");
        let codes = &d.args[usize::from(negate)..];
        if codes.is_empty() {
            self.err(
                Diagnostic::error(
                    Code::Arity,
                    d.arg_span(0),
                    "\"status\" needs a code after \"!\"",
                )
                .label("no code")
                .help(HELP),
            );
            return None;
        }
        let mut ranges = Vec::with_capacity(codes.len());
        for a in codes {
            let v = a.value.as_str();
            let (lo, hi) = v.split_once('-').unwrap_or((v, v));
            match (status_code(lo), status_code(hi)) {
                (Some(lo), Some(hi)) if lo <= hi => ranges.push((lo, hi)),
                (Some(_), Some(_)) => self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("invalid status range \"{v}\""),
                    )
                    .label("the first code is above the last")
                    .help(HELP),
                ),
                _ => {
                    let help = if v.starts_with('!') {
                        "put a space after \"!\": `status ! 500;`".to_string()
                    } else {
                        HELP.to_string()
                    };
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            format!("invalid status \"{v}\""),
                        )
                        .label("expected a code from 100 to 999, or a range `200-399`")
                        .help(help),
                    );
                }
            }
        }
        Some(MatchTest::Status { negate, ranges })
    }

    /// `header NAME`, `header ! NAME`, `header NAME OP VALUE`.
    fn match_header(&mut self, d: &Directive) -> Option<MatchTest> {
        const HELP: &str =
            "write `header NAME;`, `header ! NAME;` or `header NAME = | != | ~ | !~ VALUE;`";
        let arg = |i: usize| d.args.get(i).map_or("", |a| a.value.as_str());
        let (name_at, test) = match d.args.len() {
            1 => (0, HeaderTest::Present),
            2 if arg(0) == "!" => (1, HeaderTest::Absent),
            3 => {
                let value = arg(2);
                let test = match arg(1) {
                    "=" => HeaderTest::Equal(value.to_string()),
                    "!=" => HeaderTest::NotEqual(value.to_string()),
                    "~" => HeaderTest::Matches(self.regex(value, false, d.arg_span(2))),
                    "!~" => HeaderTest::NotMatches(self.regex(value, false, d.arg_span(2))),
                    op => {
                        self.err(
                            Diagnostic::error(
                                Code::BadValue,
                                d.arg_span(1),
                                format!("invalid header test \"{op}\""),
                            )
                            .label("expected `=`, `!=`, `~` or `!~`")
                            .help(HELP),
                        );
                        return None;
                    }
                };
                (0, test)
            }
            _ => {
                self.err(
                    Diagnostic::error(Code::BadValue, d.arg_span(0), "invalid \"header\" test")
                        .label("expected a name, `! name`, or a name, a test and a value")
                        .help(HELP),
                );
                return None;
            }
        };
        let name = arg(name_at);
        if name.is_empty() || name == "!" || !name.bytes().all(is_token_byte) {
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.arg_span(name_at),
                    format!("invalid header name \"{name}\""),
                )
                .label("not a header field name")
                .help(HELP),
            );
            return None;
        }
        Some(MatchTest::Header {
            name: name.to_ascii_lowercase(),
            test,
        })
    }

    /// `body ~ REGEX` / `body !~ REGEX`.
    fn match_body(&mut self, d: &Directive) -> Option<MatchTest> {
        let negate = match d.args.first().map(|a| a.value.as_str()) {
            Some("~") => false,
            Some("!~") => true,
            other => {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid body test \"{}\"", other.unwrap_or("")),
                    )
                    .label("expected `~` or `!~`")
                    .help("write `body ~ \"regex\";` or `body !~ \"regex\";`"),
                );
                return None;
            }
        };
        let pattern = d.args.get(1).map_or("", |a| a.value.as_str());
        let regex = self.regex(pattern, false, d.arg_span(1));
        Some(MatchTest::Body { negate, regex })
    }
}

/// A three-digit status code from 100 to 999.
fn status_code(s: &str) -> Option<u16> {
    if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|c| (100..=999).contains(c))
}

/// A byte of an HTTP token (a header field name).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::{is_token_byte, status_code};

    #[test]
    fn codes_and_tokens() {
        assert_eq!(status_code("200"), Some(200));
        assert_eq!(status_code("999"), Some(999));
        assert_eq!(status_code("099"), None);
        assert_eq!(status_code("20"), None);
        assert_eq!(status_code("2000"), None);
        assert_eq!(status_code("+20"), None);
        assert!(b"X-Foo_1".iter().all(|&b| is_token_byte(b)));
        assert!(!is_token_byte(b':') && !is_token_byte(b' ') && !is_token_byte(0x80));
    }
}
