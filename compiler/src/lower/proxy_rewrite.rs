//! Lowering of the proxy module's rewriting of response headers: `proxy_redirect`
//! (`Location`, `Refresh`), `proxy_cookie_domain`, `proxy_cookie_path` and
//! `proxy_cookie_flags` (`Set-Cookie`), into ordered rules the runtime applies.
//!
//! `proxy_redirect default`, written or implied, is resolved here into a plain prefix rule
//! from the proxy_pass URL of the level that defines it, as nginx resolves it when it merges
//! the configuration; the runtime never derives it.

use super::values::strip_unix;
use super::{arg, nearest, Level, Lower};
use crate::ast::Directive;
use crate::diagnostics::{Code, Diagnostic};
use proton_ir::{CookieFlags, CookieRewrites, ProxyPattern, ProxyRewrite, Template};

/// The `proxy_cookie_flags` flags nginx knows (compared ignoring ASCII case).
pub(crate) const COOKIE_FLAGS: [&str; 8] = [
    "secure",
    "nosecure",
    "httponly",
    "nohttponly",
    "samesite=strict",
    "samesite=lax",
    "samesite=none",
    "nosamesite",
];

/// Which directive a rule belongs to: it decides how `~` and a leading `.` are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RuleOf {
    /// `proxy_redirect`, `proxy_cookie_path`: `~` case-sensitive, `~*` caseless.
    Prefix,
    /// `proxy_cookie_domain`: `~` is caseless; a leading `.` of a text pattern or of its
    /// replacement is dropped.
    Domain,
}

/// The regex of a `proxy_redirect` / `proxy_cookie_*` line and whether it is caseless, for
/// collecting named capture groups (`None`: the line has no regex).
pub(crate) fn regex_of(d: &Directive) -> Option<(&str, bool)> {
    let first = d.args.first()?.value.as_str();
    // A single argument is `off` / `default` (or an error), never a regex.
    if d.args.len() < 2 {
        return None;
    }
    let re = first.strip_prefix('~')?;
    Some(match d.name.as_str() {
        "proxy_cookie_domain" | "proxy_cookie_flags" => (re, true),
        _ => match re.strip_prefix('*') {
            Some(r) => (r, true),
            None => (re, false),
        },
    })
}

impl Lower<'_> {
    /// `proxy_redirect` over `chain` (innermost level first), merged as nginx merges it,
    /// from the outside in: a level with proxy_redirect lines replaces what it inherits
    /// (`off`: no rules, and none implied below it until a level writes rules again); a
    /// level without inherits; a level with a proxy_pass that inherits no rules and is not
    /// under `off` gets the implied `default` of its own proxy_pass.
    pub(crate) fn proxy_redirects(&mut self, chain: &[&Level<'_>]) -> Vec<ProxyRewrite> {
        let mut on = true;
        let mut rules: Option<Vec<ProxyRewrite>> = None;
        for level in chain.iter().rev() {
            let lines = level.get("proxy_redirect");
            if !lines.is_empty() {
                rules = self.redirect_lines(level, lines);
                on = rules.is_some();
            }
            if on && rules.is_none() {
                if let Some(r) = level
                    .first("proxy_pass")
                    .and_then(|pp| default_redirect(level, pp))
                {
                    rules = Some(vec![r]);
                }
            }
        }
        rules.filter(|_| on).unwrap_or_default()
    }

    /// The `proxy_redirect` lines of one level; `None` for `off`.
    fn redirect_lines(
        &mut self,
        level: &Level<'_>,
        lines: &[&Directive],
    ) -> Option<Vec<ProxyRewrite>> {
        if let [d] = lines {
            if d.args.len() == 1 && arg(d, 0) == "off" {
                return None;
            }
        }
        let mut rules = Vec::new();
        for d in lines.iter().copied() {
            if d.args.len() >= 2 {
                rules.push(self.rewrite_rule(d, RuleOf::Prefix));
                continue;
            }
            match arg(d, 0) {
                "off" => self.off_not_alone(d, "proxy_redirect"),
                "default" => {
                    if let Some(r) = self.explicit_default(level, d) {
                        rules.push(r);
                    }
                }
                other => self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid parameter \"{other}\""),
                    )
                    .label("expected default, off, or a redirect and its replacement")
                    .help("proxy_redirect default; | proxy_redirect off; | proxy_redirect http://upstream/path/ /path/;"),
                ),
            }
        }
        Some(rules)
    }

    /// `proxy_redirect default;` written at `level`: nginx wants the level's proxy_pass
    /// before it, and one without variables.
    fn explicit_default(&mut self, level: &Level<'_>, d: &Directive) -> Option<ProxyRewrite> {
        let pp = level
            .first("proxy_pass")
            .filter(|pp| level.position(pp) < level.position(d));
        let Some(pp) = pp else {
            self.err(
                Diagnostic::error(
                    Code::Conflict,
                    d.arg_span(0),
                    "\"proxy_redirect default\" should be placed after the \"proxy_pass\" directive",
                )
                .label("no proxy_pass before this line in its block")
                .help("write proxy_pass first in this location, then proxy_redirect default;"),
            );
            return None;
        };
        if arg(pp, 0).contains('$') {
            self.err(
                Diagnostic::error(
                    Code::Conflict,
                    d.arg_span(0),
                    "\"proxy_redirect default\" cannot be used with \"proxy_pass\" directive with variables",
                )
                .label("nothing fixed to map back")
                .also(pp.arg_span(0), "proxy_pass with variables")
                .help("write the rule out: proxy_redirect http://upstream/path/ /path/;"),
            );
            return None;
        }
        default_redirect(level, pp)
    }

    /// `redirect replacement` of proxy_redirect / proxy_cookie_domain / proxy_cookie_path.
    fn rewrite_rule(&mut self, d: &Directive, of: RuleOf) -> ProxyRewrite {
        let from = arg(d, 0);
        let to = arg(d, 1);
        if let Some(re) = from.strip_prefix('~') {
            let (re, caseless) = match (of, re.strip_prefix('*')) {
                (RuleOf::Domain, _) => (re, true),
                (RuleOf::Prefix, Some(r)) => (r, true),
                (RuleOf::Prefix, None) => (re, false),
            };
            let id = self.regex(re, caseless, d.arg_span(0));
            return ProxyRewrite {
                pattern: ProxyPattern::Regex(id),
                replacement: self.template(d, 1),
            };
        }
        let (from, to) = match of {
            RuleOf::Domain => (
                from.strip_prefix('.').unwrap_or(from),
                to.strip_prefix('.').unwrap_or(to),
            ),
            RuleOf::Prefix => (from, to),
        };
        ProxyRewrite {
            pattern: ProxyPattern::Text(self.template_with_value(d, 0, from)),
            replacement: self.template_with_value(d, 1, to),
        }
    }

    /// `proxy_cookie_domain`, `proxy_cookie_path` and `proxy_cookie_flags` over `chain`: each
    /// from the innermost level that has it (`off` there: none).
    pub(crate) fn cookie_rewrites(&mut self, chain: &[&Level<'_>]) -> CookieRewrites {
        CookieRewrites {
            domain: self.cookie_rules(chain, "proxy_cookie_domain", RuleOf::Domain),
            path: self.cookie_rules(chain, "proxy_cookie_path", RuleOf::Prefix),
            flags: self.cookie_flags(chain),
        }
    }

    fn cookie_rules(&mut self, chain: &[&Level<'_>], name: &str, of: RuleOf) -> Vec<ProxyRewrite> {
        let lines = nearest(chain, name);
        if is_off(lines) {
            return Vec::new();
        }
        let mut rules = Vec::new();
        for d in lines.iter().copied() {
            if d.args.len() >= 2 {
                rules.push(self.rewrite_rule(d, of));
            } else if arg(d, 0) == "off" {
                self.off_not_alone(d, name);
            } else {
                let help = if of == RuleOf::Domain {
                    "proxy_cookie_domain off; | proxy_cookie_domain backend.internal example.com;"
                } else {
                    "proxy_cookie_path off; | proxy_cookie_path /backend/ /;"
                };
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid parameter \"{}\"", arg(d, 0)),
                    )
                    .label("expected off, or a value and its replacement")
                    .help(help),
                );
            }
        }
        rules
    }

    fn cookie_flags(&mut self, chain: &[&Level<'_>]) -> Vec<CookieFlags> {
        let lines = nearest(chain, "proxy_cookie_flags");
        if is_off(lines) {
            return Vec::new();
        }
        let mut rules = Vec::new();
        for d in lines.iter().copied() {
            if d.args.len() < 2 {
                if arg(d, 0) == "off" {
                    self.off_not_alone(d, "proxy_cookie_flags");
                } else {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            d.arg_span(0),
                            format!("invalid parameter \"{}\"", arg(d, 0)),
                        )
                        .label("expected off, or a cookie and its flags")
                        .help("proxy_cookie_flags off; | proxy_cookie_flags session secure httponly samesite=lax;"),
                    );
                }
                continue;
            }
            let cookie = match arg(d, 0).strip_prefix('~') {
                Some(re) => ProxyPattern::Regex(self.regex(re, true, d.arg_span(0))),
                None => ProxyPattern::Text(self.template(d, 0)),
            };
            let mut flags = Vec::with_capacity(d.args.len() - 1);
            for i in 1..d.args.len() {
                let t = self.template(d, i);
                // nginx ignores a flag it does not know when the response comes; written
                // out, such a flag can only be a mistake.
                if let Some(v) = t.as_literal() {
                    if !v.is_empty() && !COOKIE_FLAGS.iter().any(|f| f.eq_ignore_ascii_case(v)) {
                        self.err(
                            Diagnostic::error(
                                Code::BadValue,
                                d.arg_span(i),
                                format!("unknown proxy_cookie_flags flag \"{v}\""),
                            )
                            .label("nginx would ignore it")
                            .help("flags: secure, httponly, samesite=strict, samesite=lax, samesite=none, nosecure, nohttponly, nosamesite"),
                        );
                    }
                }
                flags.push(t);
            }
            rules.push(CookieFlags { cookie, flags });
        }
        rules
    }

    /// nginx's "is duplicate" for an `off` among other lines of the same directive.
    fn off_not_alone(&mut self, d: &Directive, name: &str) {
        self.err(
            Diagnostic::error(
                Code::Duplicate,
                d.arg_span(0),
                format!(
                    "\"{name} off\" cannot be combined with other {name} lines in the same block"
                ),
            )
            .label("off here")
            .help(format!("keep either `{name} off;` or the rules")),
        );
    }
}

/// The lines are exactly one `off`.
fn is_off(lines: &[&Directive]) -> bool {
    matches!(lines, [d] if d.args.len() == 1 && arg(d, 0) == "off")
}

/// nginx's `proxy_redirect default` for proxy_pass `pp` at `level`: the URL as written
/// becomes the location's name when it has a URI part; without one the URL plus `/`
/// becomes `/`. `None` for a proxy_pass with variables (nothing fixed to map back) or one
/// that is not a URL (reported by proxy_pass's own checks).
fn default_redirect(level: &Level<'_>, pp: &Directive) -> Option<ProxyRewrite> {
    let url = arg(pp, 0);
    if url.contains('$') {
        return None;
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    // As proxy_pass reads it: `unix:PATH:URI` has its URI after the path's first colon.
    let has_uri = match strip_unix(rest) {
        Some(path) => path.split_once(':').is_some_and(|(_, uri)| !uri.is_empty()),
        None => rest.contains('/'),
    };
    let (pattern, replacement) = if has_uri {
        (url.to_string(), level.location.clone().unwrap_or_default())
    } else {
        (format!("{url}/"), "/".to_string())
    };
    Some(ProxyRewrite {
        pattern: ProxyPattern::Text(Template::literal(&pattern)),
        replacement: Template::literal(&replacement),
    })
}
