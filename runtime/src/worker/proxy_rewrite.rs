//! The proxy module's rewriting of upstream response headers, as nginx 1.22 does it:
//! `proxy_redirect` on `Location` and on the URL after `url=` in `Refresh`;
//! `proxy_cookie_domain`, `proxy_cookie_path` and `proxy_cookie_flags` on `Set-Cookie`.
//!
//! The rules work on byte slices and append to the caller's buffer. What they need from
//! the request (variable values, the regexes and their captures) comes through [`Env`], so
//! they are tested without a connection. Nothing here allocates once the pooled buffers it
//! borrows have grown, and nothing here may panic on what an upstream sends.

use super::conn::Conn;
use super::vars::{Captures, Ctx};
use super::Worker;
use crate::http::request::token_eq;
use proton_ir::{CookieFlags, CookieRewrites, LocationId, ProxyPattern, ProxyRewrite, RegexId};

/// What the rules need from the request.
pub(crate) trait Env {
    /// Appends the value of `t`. `$1`… and named groups are those of the latest successful
    /// [`Env::matches`] (before any, the request's own).
    fn expand(&mut self, t: &proton_ir::Template, out: &mut Vec<u8>);
    /// Searches regex `id` in `subject`; on a match its captures are what `expand` reads
    /// from then on (a miss leaves them as they were).
    fn matches(&mut self, id: RegexId, subject: &[u8]) -> bool;
}

/// How a [`ProxyPattern::Text`] is compared with a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TextMatch {
    /// nginx's complex handler: a prefix, bytes compared exactly; the replacement takes the
    /// prefix's place.
    Prefix,
    /// nginx's domain handler: the whole value after an optional leading dot (kept),
    /// ASCII case ignored.
    Domain,
}

/// Appends `rule`'s rewriting of `value` and returns true, or appends nothing and returns
/// false when the rule does not match. `scratch` holds a pattern with variables.
fn apply(
    env: &mut impl Env,
    rule: &ProxyRewrite,
    how: TextMatch,
    value: &[u8],
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> bool {
    let t = match &rule.pattern {
        ProxyPattern::Regex(id) => {
            // nginx: the regex is searched in the value and the replacement, with the
            // match's captures, becomes the whole value.
            if !env.matches(*id, value) {
                return false;
            }
            env.expand(&rule.replacement, out);
            return true;
        }
        ProxyPattern::Text(t) => t,
    };
    let pattern: &[u8] = match t.as_literal() {
        Some(l) => l.as_bytes(),
        None => {
            scratch.clear();
            env.expand(t, scratch);
            scratch
        }
    };
    match how {
        TextMatch::Prefix => {
            let Some(rest) = value.strip_prefix(pattern) else {
                return false;
            };
            env.expand(&rule.replacement, out);
            out.extend_from_slice(rest);
        }
        TextMatch::Domain => {
            let (dot, domain) = match value.split_first() {
                Some((b'.', d)) => (&b"."[..], d),
                _ => (&b""[..], value),
            };
            if !domain.eq_ignore_ascii_case(pattern) {
                return false;
            }
            out.extend_from_slice(dot);
            env.expand(&rule.replacement, out);
        }
    }
    true
}

/// `proxy_redirect`: appends `value` with the first matching rule applied to its part from
/// `from` on (0 for `Location`; after `url=` for `Refresh`). True when a rule applied.
pub(crate) fn rewrite_redirect(
    env: &mut impl Env,
    rules: &[ProxyRewrite],
    value: &[u8],
    from: usize,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> bool {
    let start = out.len();
    let (head, rest) = value.split_at(from.min(value.len()));
    out.extend_from_slice(head);
    for r in rules {
        if apply(env, r, TextMatch::Prefix, rest, out, scratch) {
            return true;
        }
    }
    out.truncate(start);
    out.extend_from_slice(value);
    false
}

/// Where the URL of a `Refresh` value starts: after its first `url=` (ASCII case ignored);
/// `None` without one (the header is then left alone, as nginx).
pub(crate) fn refresh_url_at(value: &[u8]) -> Option<usize> {
    value
        .windows(4)
        .position(|w| w.eq_ignore_ascii_case(b"url="))
        .map(|i| i + 4)
}

/// The attributes of a `Set-Cookie` value as nginx's proxy module splits it: at every `;`,
/// each `key[=value]` with spaces (only spaces) around the key and the value trimmed. The
/// first is the cookie's `name=value`.
pub(crate) struct CookieAttrs<'a> {
    value: &'a [u8],
    at: Option<usize>,
}

impl<'a> CookieAttrs<'a> {
    pub(crate) fn new(value: &'a [u8]) -> CookieAttrs<'a> {
        CookieAttrs { value, at: Some(0) }
    }
}

fn trim_spaces_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' '] = s {
        s = rest;
    }
    s
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ').count();
    &s[n..]
}

impl<'a> Iterator for CookieAttrs<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.at?;
        let v = self.value.get(start..).unwrap_or_default();
        let (part, more) = match memchr::memchr(b';', v) {
            Some(i) => (&v[..i], Some(start + i + 1)),
            None => (v, None),
        };
        self.at = more;
        let part = skip_spaces(part);
        Some(match memchr::memchr(b'=', part) {
            Some(i) => (
                trim_spaces_end(&part[..i]),
                Some(trim_spaces_end(skip_spaces(&part[i + 1..]))),
            ),
            None => (trim_spaces_end(part), None),
        })
    }
}

/// `proxy_cookie_flags` bits, as nginx's: a flag word sets its family's bit and its own.
const SECURE_ON: u16 = 0x0002;
const SECURE_OFF: u16 = 0x0004;
const HTTPONLY_ON: u16 = 0x0010;
const HTTPONLY_OFF: u16 = 0x0020;
const SAMESITE_STRICT: u16 = 0x0080;
const SAMESITE_LAX: u16 = 0x0100;
const SAMESITE_NONE: u16 = 0x0200;
const SAMESITE_OFF: u16 = 0x0400;
const SAMESITE_SET: u16 = SAMESITE_STRICT | SAMESITE_LAX | SAMESITE_NONE;

const FLAG_WORDS: [(&[u8], u16); 8] = [
    (b"secure", 0x0001 | SECURE_ON),
    (b"nosecure", 0x0001 | SECURE_OFF),
    (b"httponly", 0x0008 | HTTPONLY_ON),
    (b"nohttponly", 0x0008 | HTTPONLY_OFF),
    (b"samesite=strict", 0x0040 | SAMESITE_STRICT),
    (b"samesite=lax", 0x0040 | SAMESITE_LAX),
    (b"samesite=none", 0x0040 | SAMESITE_NONE),
    (b"nosamesite", 0x0040 | SAMESITE_OFF),
];

/// The flags of the first `proxy_cookie_flags` rule whose cookie matches `name` (0: no rule
/// matches, or its flags are all empty or unknown, which nginx ignores).
fn cookie_flag_bits(
    env: &mut impl Env,
    rules: &[CookieFlags],
    name: &[u8],
    scratch: &mut Vec<u8>,
) -> u16 {
    let rule = rules.iter().find(|r| match &r.cookie {
        ProxyPattern::Regex(id) => env.matches(*id, name),
        ProxyPattern::Text(t) => match t.as_literal() {
            Some(l) => l.as_bytes().eq_ignore_ascii_case(name),
            None => {
                scratch.clear();
                env.expand(t, scratch);
                scratch.eq_ignore_ascii_case(name)
            }
        },
    });
    let Some(rule) = rule else {
        return 0;
    };
    let mut bits = 0;
    for t in &rule.flags {
        let word: &[u8] = match t.as_literal() {
            Some(l) => l.as_bytes(),
            None => {
                scratch.clear();
                env.expand(t, scratch);
                scratch
            }
        };
        if let Some((_, b)) = FLAG_WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
        {
            bits |= b;
        }
    }
    bits
}

/// `proxy_cookie_domain`, `proxy_cookie_path`, `proxy_cookie_flags`: appends the
/// `Set-Cookie` value rewritten and returns true, or appends it unchanged and returns false.
/// As nginx, a rewritten cookie is written again from its attributes (`; ` between them,
/// spaces around keys and values dropped); one no rule applies to is left byte for byte, and
/// so is a value whose first attribute has no `=`.
pub(crate) fn rewrite_set_cookie(
    env: &mut impl Env,
    rules: &CookieRewrites,
    value: &[u8],
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> bool {
    let start = out.len();
    let mut attrs = CookieAttrs::new(value);
    let (name, Some(first)) = attrs.next().unwrap_or_default() else {
        out.extend_from_slice(value);
        return false;
    };
    let mut bits = cookie_flag_bits(env, &rules.flags, name, scratch);
    let mut changed = bits != 0;
    out.extend_from_slice(name);
    out.push(b'=');
    out.extend_from_slice(first);
    for (key, val) in attrs {
        let list = match (key.len(), val) {
            (6, Some(_)) if token_eq(key, b"domain") => Some((&rules.domain, TextMatch::Domain)),
            (4, Some(_)) if token_eq(key, b"path") => Some((&rules.path, TextMatch::Prefix)),
            _ => None,
        };
        if let (Some((list, how)), Some(v)) = (list.filter(|(l, _)| !l.is_empty()), val) {
            out.extend_from_slice(b"; ");
            out.extend_from_slice(key);
            out.push(b'=');
            if list.iter().any(|r| apply(env, r, how, v, out, scratch)) {
                changed = true;
            } else {
                out.extend_from_slice(v);
            }
            continue;
        }
        let (mut key, mut val) = (key, val);
        if bits != 0 {
            if token_eq(key, b"secure") {
                if bits & SECURE_ON != 0 {
                    bits &= !SECURE_ON;
                } else if bits & SECURE_OFF != 0 {
                    continue;
                }
            } else if token_eq(key, b"httponly") {
                if bits & HTTPONLY_ON != 0 {
                    bits &= !HTTPONLY_ON;
                } else if bits & HTTPONLY_OFF != 0 {
                    continue;
                }
            } else if token_eq(key, b"samesite") {
                let v = val.unwrap_or_default();
                let want: Option<(u16, &[u8], &'static [u8])> = if bits & SAMESITE_STRICT != 0 {
                    Some((SAMESITE_STRICT, b"strict", b"Strict"))
                } else if bits & SAMESITE_LAX != 0 {
                    Some((SAMESITE_LAX, b"lax", b"Lax"))
                } else if bits & SAMESITE_NONE != 0 {
                    Some((SAMESITE_NONE, b"none", b"None"))
                } else if bits & SAMESITE_OFF != 0 {
                    continue;
                } else {
                    None
                };
                if let Some((bit, lower, written)) = want {
                    bits &= !bit;
                    if !v.eq_ignore_ascii_case(lower) {
                        key = b"SameSite";
                        val = Some(written);
                    }
                }
            }
        }
        out.extend_from_slice(b"; ");
        out.extend_from_slice(key);
        if let Some(v) = val {
            out.push(b'=');
            out.extend_from_slice(v);
        }
    }
    if bits & SECURE_ON != 0 {
        out.extend_from_slice(b"; Secure");
    }
    if bits & HTTPONLY_ON != 0 {
        out.extend_from_slice(b"; HttpOnly");
    }
    if bits & SAMESITE_SET != 0 {
        out.extend_from_slice(if bits & SAMESITE_STRICT != 0 {
            b"; SameSite=Strict"
        } else if bits & SAMESITE_LAX != 0 {
            b"; SameSite=Lax"
        } else {
            b"; SameSite=None"
        });
    }
    if !changed {
        out.truncate(start);
        out.extend_from_slice(value);
    }
    changed
}

/// [`Env`] of a request: its variables, and the captures of the rules' regex matches in a
/// capture set borrowed from the worker's pool (given back on drop).
struct RequestEnv<'c, 'a> {
    ctx: &'c Ctx<'a>,
    caps: Option<Captures>,
}

impl Env for RequestEnv<'_, '_> {
    fn expand(&mut self, t: &proton_ir::Template, out: &mut Vec<u8>) {
        match &self.caps {
            Some(caps) => Ctx {
                captures: caps,
                ..*self.ctx
            }
            .expand(t, out),
            None => self.ctx.expand(t, out),
        }
    }

    fn matches(&mut self, id: RegexId, subject: &[u8]) -> bool {
        let Some(re) = self.ctx.regexes.get(id.0 as usize) else {
            return false;
        };
        let mut pool = self.ctx.pool.borrow_mut();
        let mut caps = pool.caps();
        // Named groups of the request's earlier matches stay visible, as in nginx.
        caps.inherit_named(self.ctx.captures);
        if !pool.capture(&mut caps, id.0 as usize, re, subject) {
            pool.give_caps(caps);
            return false;
        }
        if let Some(old) = self.caps.replace(caps) {
            pool.give_caps(old);
        }
        true
    }
}

impl Drop for RequestEnv<'_, '_> {
    fn drop(&mut self) {
        if let Some(c) = self.caps.take() {
            self.ctx.pool.borrow_mut().give_caps(c);
        }
    }
}

impl Worker<'_> {
    /// Writes the value of the upstream's header `name: value` with the proxy rules of
    /// location `loc` applied, when it is one they apply to (`Location`, `Refresh`,
    /// `Set-Cookie`) and the location has such rules; otherwise writes nothing and returns
    /// false. `status` is the response's (`$status`).
    pub(crate) fn write_rewritten_header(
        &self,
        conn: &Conn,
        loc: LocationId,
        status: u16,
        name: &[u8],
        value: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        enum Which {
            Location,
            Refresh(usize),
            Cookie,
        }
        let ps = &self.settings_for(loc).proxy;
        let which = if token_eq(name, b"location") && !ps.redirect.is_empty() {
            Which::Location
        } else if token_eq(name, b"refresh") && !ps.redirect.is_empty() {
            match refresh_url_at(value) {
                Some(at) => Which::Refresh(at),
                None => return false,
            }
        } else if token_eq(name, b"set-cookie") && !ps.cookies.is_empty() {
            Which::Cookie
        } else {
            return false;
        };
        let Some(req) = conn.req.as_deref() else {
            return false;
        };
        let ctx = self.ctx(conn, req, status);
        let mut env = RequestEnv {
            ctx: &ctx,
            caps: None,
        };
        let mut scratch = self.scratch.var_pool.borrow_mut().buf();
        let at = out.len();
        match which {
            Which::Location => {
                let mut v = self.scratch.var_pool.borrow_mut().buf();
                let rewritten =
                    rewrite_redirect(&mut env, &ps.redirect, value, 0, &mut v, &mut scratch);
                // nginx's header filter makes a rewritten Location that is a path absolute
                // (one the rules left alone stays as the upstream wrote it).
                if rewritten && v.starts_with(b"/") && self.settings_for(loc).absolute_redirect {
                    self.write_redirect_origin(conn, req, loc, out);
                }
                out.extend_from_slice(&v);
                self.scratch.var_pool.borrow_mut().give_buf(v);
            }
            Which::Refresh(at) => {
                rewrite_redirect(&mut env, &ps.redirect, value, at, out, &mut scratch);
            }
            Which::Cookie => {
                rewrite_set_cookie(&mut env, &ps.cookies, value, out, &mut scratch);
            }
        }
        drop(env);
        self.scratch.var_pool.borrow_mut().give_buf(scratch);
        // Values made from variables never end the header line early (Proton's rule for
        // every header value it makes; see docs, "stricter than nginx").
        crate::http::response::encode_line_breaks(out, at);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proton_ir::{Part, Template, Var};

    /// An [`Env`] with regexes by id, `$name` variables from a table, and the captures of
    /// the last match.
    struct TestEnv {
        regexes: Vec<proton_ir::pattern::Regex>,
        vars: Vec<(&'static str, &'static str)>,
        groups: Vec<Option<Vec<u8>>>,
    }

    fn env(patterns: &[(&str, bool)]) -> TestEnv {
        TestEnv {
            regexes: patterns
                .iter()
                .map(|(p, ci)| proton_ir::pattern::compile(p, *ci).expect("test regex"))
                .collect(),
            vars: vec![("server_name", "localhost"), ("empty", "")],
            groups: Vec::new(),
        }
    }

    impl Env for TestEnv {
        fn expand(&mut self, t: &Template, out: &mut Vec<u8>) {
            for p in &t.parts {
                match p {
                    Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                    Part::Capture(n) => {
                        if let Some(Some(g)) = self.groups.get(*n as usize) {
                            out.extend_from_slice(g);
                        }
                    }
                    Part::Var(Var::Arg(name)) => {
                        let v = self.vars.iter().find(|(n, _)| n == name);
                        out.extend_from_slice(v.map_or("", |(_, v)| v).as_bytes());
                    }
                    Part::Var(_) => {}
                }
            }
        }

        fn matches(&mut self, id: RegexId, subject: &[u8]) -> bool {
            let Some(c) = self.regexes[id.0 as usize].captures(subject) else {
                return false;
            };
            self.groups = (0..c.len())
                .map(|i| c.get(i).and_then(|r| subject.get(r)).map(<[u8]>::to_vec))
                .collect();
            true
        }
    }

    /// A template of `s`: `$N` captures, `$name` a variable of [`TestEnv`].
    fn t(s: &str) -> Template {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            if i > 0 {
                parts.push(Part::Literal(rest[..i].to_string()));
            }
            let after = &rest[i + 1..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..end];
            match name.parse::<u8>() {
                Ok(n) => parts.push(Part::Capture(n)),
                Err(_) => parts.push(Part::Var(Var::Arg(name.to_string()))),
            }
            rest = &after[end..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Template { parts }
    }

    fn text(from: &str, to: &str) -> ProxyRewrite {
        ProxyRewrite {
            pattern: ProxyPattern::Text(t(from)),
            replacement: t(to),
        }
    }

    fn regex(id: u32, to: &str) -> ProxyRewrite {
        ProxyRewrite {
            pattern: ProxyPattern::Regex(RegexId(id)),
            replacement: t(to),
        }
    }

    fn redirect(e: &mut TestEnv, rules: &[ProxyRewrite], value: &str) -> (bool, String) {
        let (mut out, mut scratch) = (b"X: ".to_vec(), Vec::new());
        let from = if value.starts_with("Refresh ") {
            refresh_url_at(value.as_bytes()).expect("url=")
        } else {
            0
        };
        let hit = rewrite_redirect(e, rules, value.as_bytes(), from, &mut out, &mut scratch);
        let out = String::from_utf8(out).expect("utf-8");
        (
            hit,
            out.strip_prefix("X: ").expect("prefix kept").to_string(),
        )
    }

    #[test]
    fn redirect_rules_apply_in_order_first_match_wins() {
        let mut e = env(&[("^(.+)/regex_w_([^/]+)", false), ("re+gexp?", true)]);
        let rules = [
            text("http://b:81/var_in_second/", "/$server_name/"),
            text("http://b:81/$server_name/", "/replaced/"),
            regex(0, "$1/$2/test.html"),
            regex(1, "/replaced/test.html"),
        ];
        let cases = [
            (
                "http://b:81/var_in_second/t.html",
                true,
                "/localhost/t.html",
            ),
            ("http://b:81/localhost/t.html", true, "/replaced/t.html"),
            (
                "http://b:81/regex_w_caps/t.html",
                true,
                "http://b:81/caps/test.html",
            ),
            ("http://b:81/ReeeGEX/t.html", true, "/replaced/test.html"),
            // Prefixes compare bytes exactly: another case is no match.
            (
                "HTTP://b:81/var_in_second/t.html",
                false,
                "HTTP://b:81/var_in_second/t.html",
            ),
            ("http://other/", false, "http://other/"),
            ("", false, ""),
        ];
        for (value, hit, want) in cases {
            assert_eq!(
                redirect(&mut e, &rules, value),
                (hit, want.to_string()),
                "{value}"
            );
        }
    }

    #[test]
    fn refresh_rewrites_only_after_url() {
        let mut e = env(&[(".*", false)]);
        let rules = [text("http://b/", "/")];
        assert_eq!(refresh_url_at(b"7; URL=x"), Some(7));
        assert_eq!(refresh_url_at(b"7"), None);
        assert_eq!(refresh_url_at(b"url"), None);
        assert_eq!(
            redirect(&mut e, &rules, "Refresh 7; url=http://b/x"),
            (true, "Refresh 7; url=/x".to_string())
        );
        // The part before url= is not matched.
        let rules = [text("Refresh", "R")];
        assert_eq!(
            redirect(&mut e, &rules, "Refresh 7; url=Refresh"),
            (true, "Refresh 7; url=R".to_string())
        );
        // A regex sees, and replaces, only the URL.
        let rules = [regex(0, "[$0]")];
        assert_eq!(
            redirect(&mut e, &rules, "Refresh 0; Url=/a"),
            (true, "Refresh 0; Url=[/a]".to_string())
        );
    }

    #[test]
    fn an_empty_prefix_matches_everything() {
        let mut e = env(&[]);
        assert_eq!(
            redirect(&mut e, &[text("$empty", "/pre")], "/x"),
            (true, "/pre/x".to_string())
        );
    }

    fn cookie(e: &mut TestEnv, rules: &CookieRewrites, value: &str) -> (bool, String) {
        let (mut out, mut scratch) = (b"X: ".to_vec(), Vec::new());
        let hit = rewrite_set_cookie(e, rules, value.as_bytes(), &mut out, &mut scratch);
        let out = String::from_utf8(out).expect("utf-8");
        (
            hit,
            out.strip_prefix("X: ").expect("prefix kept").to_string(),
        )
    }

    #[test]
    fn cookie_attributes_split_as_nginx() {
        let all = |v: &str| -> Vec<(String, Option<String>)> {
            CookieAttrs::new(v.as_bytes())
                .map(|(k, v)| {
                    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                    (s(k), v.map(s))
                })
                .collect()
        };
        let kv = |k: &str, v: Option<&str>| (k.to_string(), v.map(str::to_string));
        assert_eq!(
            all(" a = b ;  Path = /x ; Secure;;x=  "),
            vec![
                kv("a", Some("b")),
                kv("Path", Some("/x")),
                kv("Secure", None),
                kv("", None),
                kv("x", Some("")),
            ]
        );
        assert_eq!(all(""), vec![kv("", None)]);
        assert_eq!(all("a=b=c;"), vec![kv("a", Some("b=c")), kv("", None)]);
        assert_eq!(all("\ta=b"), vec![kv("\ta", Some("b"))]);
    }

    #[test]
    fn cookie_domain_and_path_rules() {
        let mut e = env(&[
            (r"^(.+)\.com$", true),
            ("^/regex/(.+)$", false),
            ("^/caseless/(.+)$", true),
        ]);
        let rules = CookieRewrites {
            domain: vec![
                text("www.example.org", "example.com"),
                text("$server_name.com", "en.$server_name.org"),
                regex(0, "$1.org"),
            ],
            path: vec![
                text("/path/", "/new/"),
                text("/$server_name/", "/new/$server_name/"),
                regex(1, "/$1"),
                regex(2, "/$1"),
            ],
            flags: vec![],
        };
        let cases = [
            (
                "v=1; Domain=www.Example.org",
                true,
                "v=1; Domain=example.com",
            ),
            (
                "v=1; Domain=.LocalHost.com",
                true,
                "v=1; Domain=.en.localhost.org",
            ),
            (
                "v=1; Domain=www.example.COM",
                true,
                "v=1; Domain=www.example.org",
            ),
            ("v=1; Path=/path/t.html", true, "v=1; Path=/new/t.html"),
            (
                "v=1; Path=/localhost/t.html",
                true,
                "v=1; Path=/new/localhost/t.html",
            ),
            ("v=1; Path=/regex/t.html", true, "v=1; Path=/t.html"),
            ("v=1; Path=/CASEless/t.html", true, "v=1; Path=/t.html"),
            // Prefixes of paths compare bytes exactly.
            ("v=1; Path=/PATH/t.html", false, "v=1; Path=/PATH/t.html"),
            // Rewritten: written again with "; " and trimmed; every domain attribute.
            (
                "v=1 ;domain = www.example.org;Secure; DOMAIN=www.example.org ;path=/path/",
                true,
                "v=1; domain=example.com; Secure; DOMAIN=example.com; path=/new/",
            ),
            // Not rewritten: byte for byte.
            (
                "v=1 ;domain=other.net;  Secure",
                false,
                "v=1 ;domain=other.net;  Secure",
            ),
            // A domain without a value, a cookie without "=": left alone.
            ("v=1; Domain; Path", false, "v=1; Domain; Path"),
            (
                "v; Domain=www.example.org",
                false,
                "v; Domain=www.example.org",
            ),
            // Only whole domains: a suffix is no match.
            (
                "v=1; Domain=xwww.example.org",
                false,
                "v=1; Domain=xwww.example.org",
            ),
        ];
        for (value, hit, want) in cases {
            assert_eq!(
                cookie(&mut e, &rules, value),
                (hit, want.to_string()),
                "{value}"
            );
        }
    }

    fn flags(cookie: ProxyPattern, words: &[&str]) -> CookieFlags {
        CookieFlags {
            cookie,
            flags: words.iter().map(|w| t(w)).collect(),
        }
    }

    #[test]
    fn cookie_flags_set_replace_and_remove_in_nginx_order() {
        let mut e = env(&[("BAR", true)]);
        let name = |n: &str| ProxyPattern::Text(t(n));
        let rules = CookieRewrites {
            domain: vec![],
            path: vec![],
            flags: vec![
                flags(name("a"), &["samesite=none", "httponly", "secure"]),
                flags(name("b"), &["secure", "httponly", "samesite=lax"]),
                flags(name("c"), &["SameSite=Strict", "HttpOnly", "secure"]),
                flags(name("d"), &["nosecure", "nohttponly", "nosamesite"]),
                flags(name("$empty"), &["secure"]),
                flags(ProxyPattern::Regex(RegexId(0)), &["httponly"]),
                flags(name("e"), &["bogus", "$empty"]),
                flags(name("e"), &["secure"]),
                flags(name("twice"), &["samesite=strict", "samesite=lax"]),
            ],
        };
        let cases = [
            // Added in the order Secure, HttpOnly, SameSite whatever the line's order.
            (
                "a=1; Domain=x",
                true,
                "a=1; Domain=x; Secure; HttpOnly; SameSite=None",
            ),
            ("B=1", true, "B=1; Secure; HttpOnly; SameSite=Lax"),
            ("c=1", true, "c=1; Secure; HttpOnly; SameSite=Strict"),
            // Present flags stay where they are, as written; another SameSite is replaced.
            (
                "a=1;secure;HTTPONLY;samesite=lax",
                true,
                "a=1; secure; HTTPONLY; SameSite=None",
            ),
            (
                "c=1; samesite=STRICT",
                true,
                "c=1; samesite=STRICT; Secure; HttpOnly",
            ),
            ("d=1;secure;httponly;samesite=lax; x", true, "d=1; x"),
            ("d=1", true, "d=1"),
            // No rule for the name: byte for byte.
            ("nx=1;samesite=none", false, "nx=1;samesite=none"),
            // A regex searched in the name, caseless.
            ("foobarbaz=1", true, "foobarbaz=1; HttpOnly"),
            // The first matching line applies even when its flags are all unknown.
            ("e=1;Secure", false, "e=1;Secure"),
            // Two SameSite words: the first present attribute takes the first, the other
            // is added (nginx's bits).
            (
                "twice=1; SameSite=None",
                true,
                "twice=1; SameSite=Strict; SameSite=Lax",
            ),
        ];
        for (value, hit, want) in cases {
            assert_eq!(
                cookie(&mut e, &rules, value),
                (hit, want.to_string()),
                "{value}"
            );
        }
    }

    #[test]
    fn flags_and_values_combine() {
        let mut e = env(&[]);
        let rules = CookieRewrites {
            domain: vec![text("a.test", "b.test")],
            path: vec![],
            flags: vec![flags(ProxyPattern::Text(t("s")), &["secure"])],
        };
        assert_eq!(
            cookie(&mut e, &rules, "s=1;domain=a.test"),
            (true, "s=1; domain=b.test; Secure".to_string())
        );
        assert_eq!(
            cookie(&mut e, &rules, "other=1;domain=c.test"),
            (false, "other=1;domain=c.test".to_string())
        );
    }

    /// Whatever an upstream sends, nothing panics and an untouched value is kept whole.
    #[test]
    fn odd_values_do_not_panic() {
        let mut e = env(&[(".", false)]);
        let rules = CookieRewrites {
            domain: vec![regex(0, "d")],
            path: vec![text("", "/p")],
            flags: vec![flags(
                ProxyPattern::Regex(RegexId(0)),
                &["secure", "nosamesite"],
            )],
        };
        for v in [
            "",
            ";",
            "=",
            ";;;",
            "=;=",
            " ; = ; ",
            "a=\u{e9};domain=;path=",
            "a=b;samesite",
        ] {
            let _ = cookie(&mut e, &rules, v);
            let _ = redirect(&mut e, &[regex(0, "$9"), text("", "")], v);
        }
    }
}
