//! The file of expected answers that `protonc test` checks a config against (an "EXPECT"
//! file), and the request lists of `protonc route --batch` and `protonc diff --requests`.
//!
//! An EXPECT file is a list of requests, each followed by the answers a team expects:
//!
//! ```text
//! # comments and blank lines are ignored
//! GET http://www.example.com/images/a.png
//! H: Cookie: beta=yes
//! server example.com
//! location ^~ /images/
//! handler static root html
//! header Cache-Control: max-age=604800
//! ```
//!
//! Only the keys written are checked. Answers come from [`compile::route`], the runtime's own
//! engine; they never contain a position in the config (unless asked for with `at`), so
//! comments, moved lines and renamed files change nothing.
//!
//! This module never reads files and never prints: it parses text and returns text.

use crate::compile::{self, Matchers, RouteAnswer, RouteRequest};
use proton_ir::{Ir, LocationKind};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// A request: what a request line (`GET http://host:port/path?args`) and its `H:` lines say.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    pub method: String,
    /// The Host header (from the URL, or an `H: Host:` line); `None`: none.
    pub host: Option<String>,
    /// The port of the URL; `None`: the config's first listening port.
    pub port: Option<u16>,
    /// `https://` was written (informational: the listener is chosen by port).
    #[serde(skip)]
    pub https: bool,
    /// The request target, `/path?args`.
    pub target: String,
    /// Other request headers, `(name, value)`.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// A GET of `target` with this Host (no headers).
    pub fn get(host: Option<&str>, port: Option<u16>, target: &str) -> Request {
        Request {
            method: "GET".into(),
            host: host.map(str::to_string),
            port,
            https: false,
            target: target.to_string(),
            headers: Vec::new(),
        }
    }

    /// The request line as an EXPECT file writes it: `GET http://host[:port]/target`, or
    /// `GET /target` without a Host.
    pub fn line(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match (&self.host, self.port) {
            (Some(h), Some(p)) => format!("{} {scheme}://{h}:{p}{}", self.method, self.target),
            (Some(h), None) => format!("{} {scheme}://{h}{}", self.method, self.target),
            (None, Some(p)) => format!("{} {scheme}://:{p}{}", self.method, self.target),
            (None, None) => format!("{} {}", self.method, self.target),
        }
    }

    /// Reads a request line; `Ok(None)` when the line is not one (its first word is not an
    /// uppercase method token).
    pub fn parse_line(line: &str) -> Result<Option<Request>, String> {
        let mut words = line.split_whitespace();
        let (Some(method), url) = (words.next(), words.next()) else {
            return Ok(None);
        };
        if !method.bytes().all(|b| b.is_ascii_uppercase()) || method.len() > 32 {
            return Ok(None);
        }
        let Some(url) = url else {
            return Err(format!(
                "request line \"{line}\" has no URL: write `{method} http://host/path` or `{method} /path`"
            ));
        };
        if let Some(extra) = words.next() {
            return Err(format!(
                "unexpected \"{extra}\" after the URL (write a request as `METHOD URL`, headers on `H: Name: value` lines)"
            ));
        }
        let (https, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if url.starts_with('/') {
            return Ok(Some(Request {
                method: method.to_string(),
                host: None,
                port: None,
                https: false,
                target: url.to_string(),
                headers: Vec::new(),
            }));
        } else {
            return Err(format!(
                "URL \"{url}\" does not start with http://, https:// or /"
            ));
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes().get(i) == Some(&b'/') => (&rest[..i], &rest[i..]),
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_string()
        };
        // host, host:port, [v6]:port, :port (no Host).
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => {
                let port = p.parse::<u16>().map_err(|_| {
                    format!("port \"{p}\" of \"{url}\" is not a number up to 65535")
                })?;
                (h, Some(port))
            }
            _ => (authority, None),
        };
        Ok(Some(Request {
            method: method.to_string(),
            host: (!host.is_empty()).then(|| host.to_string()),
            port,
            https,
            target,
            headers: Vec::new(),
        }))
    }

    /// Adds the header of an `H: Name: value` line (the part after `H:`); a `Host` header
    /// replaces the URL's host.
    fn add_header(&mut self, text: &str) -> Result<(), String> {
        let (name, value) = header_pair(text)
            .ok_or_else(|| format!("header \"{}\" is not `Name: value`", text.trim()))?;
        if name.eq_ignore_ascii_case("host") {
            self.host = Some(value);
        } else {
            self.headers.push((name, value));
        }
        Ok(())
    }
}

/// `Name: value` → `(Name, value)`, both trimmed; `None` without a colon or a name.
fn header_pair(text: &str) -> Option<(String, String)> {
    let (n, v) = text.split_once(':')?;
    let n = n.trim();
    if n.is_empty() || n.contains(char::is_whitespace) {
        return None;
    }
    Some((n.to_string(), v.trim().to_string()))
}

/// What an expectation line checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Key {
    /// The first `server_name` of the server chosen (`""` for a server without one).
    Server,
    /// The location the search found, as written in the config (`= /x`, `^~ /x`, `~* re`…),
    /// `(none)` when no location matched.
    Location,
    /// What answers: `return CODE "text"`, `static root PATH`, `try_files …`,
    /// `proxy_pass URL`. A value that is the first words of the answer matches it
    /// (`handler static`, `handler return 301`).
    Handler,
    /// The status when the config decides it (`return`, an internal location: 404), `-` when
    /// only the running server knows it (files, proxies).
    Status,
    /// The upstream group of a `proxy_pass`; `-`: not proxied.
    Upstream,
    /// The URI after every rewrite (with its arguments).
    Uri,
    /// `Name: value`, one line each, as `add_header` (or `expires`, as `Cache-Control`)
    /// adds them. Checked name by name: the names written must have exactly these values.
    Header,
    /// Where the location is written, `file:line`: checked only with `--with-lines`.
    At,
    /// The request cannot be routed (a bad URI, no listener on the port): the reason.
    Error,
}

impl Key {
    pub const ALL: [Key; 9] = [
        Key::Server,
        Key::Location,
        Key::Handler,
        Key::Status,
        Key::Upstream,
        Key::Uri,
        Key::Header,
        Key::At,
        Key::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Key::Server => "server",
            Key::Location => "location",
            Key::Handler => "handler",
            Key::Status => "status",
            Key::Upstream => "upstream",
            Key::Uri => "uri",
            Key::Header => "header",
            Key::At => "at",
            Key::Error => "error",
        }
    }

    fn from_name(s: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One expectation line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub key: Key,
    pub value: String,
    /// 1-based line in the file.
    pub line: usize,
}

/// A request and what is expected of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub request: Request,
    /// 1-based line of the request line.
    pub line: usize,
    pub expect: Vec<Expectation>,
    /// 0-based index of its last request or `H:` line (where `--update` writes answers when
    /// the case has none).
    head_end: usize,
}

/// A parsed EXPECT file, with its lines kept for `--update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectFile {
    pub cases: Vec<Case>,
    lines: Vec<String>,
}

/// A line of an EXPECT (or request) file that is not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// Reads an EXPECT file; every malformed line is reported.
pub fn parse(text: &str) -> Result<ExpectFile, Vec<FormatError>> {
    let mut cases: Vec<Case> = Vec::new();
    let mut errors = Vec::new();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        let mut fail = |message: String| errors.push(FormatError { line: n, message });
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match Request::parse_line(line) {
            Ok(Some(request)) => {
                cases.push(Case {
                    request,
                    line: n,
                    expect: Vec::new(),
                    head_end: i,
                });
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                fail(e);
                continue;
            }
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let Some(case) = cases.last_mut() else {
            fail(format!(
                "\"{word}\" before the first request: start with a request line such as `GET http://localhost/`"
            ));
            continue;
        };
        if word == "H:" {
            if !case.expect.is_empty() {
                fail("an `H:` header line belongs right after its request line, before the expected answers".into());
            } else if let Err(e) = case.request.add_header(rest) {
                fail(e);
            } else {
                case.head_end = i;
            }
            continue;
        }
        let Some(key) = Key::from_name(word) else {
            let close = Key::ALL
                .iter()
                .map(|k| k.name())
                .find(|k| strsim::levenshtein(k, word) <= 2);
            let help = match close {
                Some(k) => format!(" (did you mean \"{k}\"?)"),
                None => String::new(),
            };
            fail(format!(
                "unknown key \"{word}\"{help}: a line is a request (`GET http://host/path`), `H: Name: value`, or one of {}",
                Key::ALL.map(Key::name).join(", ")
            ));
            continue;
        };
        if rest.is_empty() {
            fail(format!("`{word}` needs a value"));
            continue;
        }
        match key {
            Key::Status if rest != "-" && !matches!(rest.parse::<u16>(), Ok(100..=999)) => {
                fail(format!(
                    "status \"{rest}\" is not a three-digit code (or `-`: decided at run time)"
                ));
                continue;
            }
            Key::Header if header_pair(rest).is_none() => {
                fail(format!("header \"{rest}\" is not `Name: value`"));
                continue;
            }
            Key::Header => {}
            _ => {
                if let Some(e) = case.expect.iter().find(|e| e.key == key) {
                    fail(format!(
                        "a second `{word}` for the request of line {} (the first is on line {})",
                        case.line, e.line
                    ));
                    continue;
                }
            }
        }
        case.expect.push(Expectation {
            key,
            value: rest.to_string(),
            line: n,
        });
    }
    if errors.is_empty() {
        Ok(ExpectFile { cases, lines })
    } else {
        Err(errors)
    }
}

/// Reads a request list: the request lines (and their `H:` lines) of the EXPECT format, whose
/// expectation lines are skipped, and `HOST URI` lines (`-` for no Host; the request is a
/// GET), the older form of `protonc route --batch`. Returns each request with the line that
/// introduced it, as written.
pub fn parse_requests(text: &str) -> Result<Vec<(String, Request)>, Vec<FormatError>> {
    let mut out: Vec<(String, Request)> = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match Request::parse_line(line) {
            Ok(Some(r)) => {
                out.push((line.to_string(), r));
                continue;
            }
            Ok(None) => {}
            Err(message) => {
                errors.push(FormatError { line: n, message });
                continue;
            }
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        if word == "H:" {
            match out.last_mut() {
                Some((_, r)) => {
                    if let Err(message) = r.add_header(rest) {
                        errors.push(FormatError { line: n, message });
                    }
                }
                None => errors.push(FormatError {
                    line: n,
                    message: "an `H:` line before the first request".into(),
                }),
            }
            continue;
        }
        if Key::from_name(word).is_some() {
            continue;
        }
        if rest.is_empty() || rest.contains(char::is_whitespace) || !rest.starts_with('/') {
            errors.push(FormatError {
                line: n,
                message: format!(
                    "\"{line}\" is neither `HOST URI` nor a request line such as `GET http://host/path`"
                ),
            });
            continue;
        }
        let host = (word != "-").then_some(word);
        out.push((line.to_string(), Request::get(host, None, rest)));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// What the config answers to one request, key by key (several `header` entries).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Answer {
    pub entries: Vec<(Key, String)>,
    /// A `rewrite` changed the URI (then `uri` is worth writing down).
    #[serde(skip)]
    pub rewritten: bool,
}

impl Answer {
    /// The values of `key` (`-` when the answer has none: not routed, not proxied…).
    pub fn values(&self, key: Key) -> Vec<&str> {
        let v: Vec<&str> = self
            .entries
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        if v.is_empty() && key != Key::Header && key != Key::Error {
            return vec!["-"];
        }
        v
    }

    /// The error of a request that could not be routed.
    pub fn error(&self) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| *k == Key::Error)
            .map(|(_, v)| v.as_str())
    }
}

/// A location as written in the config: `= /x`, `/x`, `^~ /x`, `~ re`, `~* re`, `@name`;
/// `(none)` for the server level (no location matched).
pub fn location_text(ir: &Ir, loc: &proton_ir::Location) -> String {
    let name = ir.text_of(loc.name);
    match loc.kind {
        LocationKind::Server => "(none)".to_string(),
        LocationKind::Prefix => name.to_string(),
        LocationKind::PrefixNoRegex => format!("^~ {name}"),
        LocationKind::Exact => format!("= {name}"),
        LocationKind::Regex => format!("~ {name}"),
        LocationKind::RegexCaseless => format!("~* {name}"),
        LocationKind::Named | LocationKind::If | LocationKind::LimitExcept => name.to_string(),
    }
}

/// The first `server_name` of a server, `""` when it has none.
pub fn server_text(ir: &Ir, sid: u32) -> String {
    match ir
        .servers
        .get(sid as usize)
        .and_then(|s| s.names.first())
        .filter(|n| !n.is_empty())
    {
        Some(n) => n.clone(),
        None => "\"\"".to_string(),
    }
}

/// Routes `req` with the runtime's engine and writes the answer key by key. `at` entries
/// (the location's `file:line`) only `with_lines`.
pub fn answer(ir: &Ir, m: &Matchers, req: &Request, with_lines: bool) -> Answer {
    let r = RouteRequest {
        method: &req.method,
        host: req.host.as_deref(),
        uri: &req.target,
        headers: &req.headers,
    };
    match compile::route(ir, m, req.port, None, &r) {
        Ok(a) => answer_of(ir, &a, with_lines),
        Err(e) => Answer {
            entries: vec![(Key::Error, e)],
            rewritten: false,
        },
    }
}

/// [`answer`] from a route answer.
pub fn answer_of(ir: &Ir, a: &RouteAnswer, with_lines: bool) -> Answer {
    let mut entries = vec![(Key::Server, server_text(ir, a.server))];
    let matched = ir.locations.get(a.matched.0 as usize);
    entries.push((
        Key::Location,
        matched.map_or_else(|| "(none)".to_string(), |l| location_text(ir, l)),
    ));
    entries.push((Key::Handler, a.handler.clone()));
    if let Some(r) = &a.ret {
        entries.push((Key::Status, r.code.to_string()));
    }
    let proxy = ir
        .locations
        .get(a.answering.0 as usize)
        .and_then(|l| l.conf.proxy.as_deref());
    if let (None, Some(p)) = (&a.ret, proxy) {
        if p.dynamic.is_none() {
            if let Some(u) = ir.upstreams.get(p.upstream.0 as usize) {
                entries.push((Key::Upstream, u.name.clone()));
            }
        }
    }
    entries.push((Key::Uri, a.final_uri.clone()));
    for (n, v) in &a.headers {
        entries.push((Key::Header, format!("{n}: {v}")));
    }
    if with_lines {
        entries.push((Key::At, a.source.clone()));
    }
    Answer {
        entries,
        rewritten: a.rewritten.is_some(),
    }
}

/// Whether the `handler` written matches the handler found: the same, or its first words.
fn handler_matches(expected: &str, got: &str) -> bool {
    let expected = expected.trim();
    got == expected
        || got
            .strip_prefix(expected)
            .is_some_and(|rest| rest.starts_with(' '))
}

/// Header values of `name` (any case) among `Name: value` strings.
fn header_values<'a>(all: &[&'a str], name: &str) -> Vec<&'a str> {
    all.iter()
        .filter(|h| header_pair(h).is_some_and(|(n, _)| n.eq_ignore_ascii_case(name)))
        .copied()
        .collect()
}

/// `Name: value` normalised (trimmed around the colon, the name as written).
fn header_norm(h: &str) -> String {
    match header_pair(h) {
        Some((n, v)) => format!("{n}: {v}").to_ascii_lowercase(),
        None => h.to_ascii_lowercase(),
    }
}

/// One line of a case's report: unchanged (` `), expected (`-`) or found (`+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportLine {
    Same(Key, String),
    Expected(Key, String),
    Got(Key, String),
}

/// The comparison of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub lines: Vec<ReportLine>,
    pub passed: bool,
}

/// Compares a case's expectations with an answer. `at` lines count only `with_lines`.
pub fn check(case: &Case, got: &Answer, with_lines: bool) -> Outcome {
    let mut lines = Vec::new();
    let mut passed = true;
    for key in Key::ALL {
        if key == Key::At && !with_lines {
            continue;
        }
        let expected: Vec<&str> = case
            .expect
            .iter()
            .filter(|e| e.key == key)
            .map(|e| e.value.as_str())
            .collect();
        if key == Key::Error {
            // A request that cannot be routed always fails unless its error is expected.
            let got_err = got.error();
            match (expected.first(), got_err) {
                (None, None) => {}
                (Some(e), Some(g)) if *e == g => lines.push(ReportLine::Same(key, g.into())),
                (e, g) => {
                    passed = false;
                    if let Some(e) = e {
                        lines.push(ReportLine::Expected(key, e.to_string()));
                    }
                    if let Some(g) = g {
                        lines.push(ReportLine::Got(key, g.into()));
                    }
                }
            }
            continue;
        }
        if expected.is_empty() {
            continue;
        }
        let got_values = got.values(key);
        if key == Key::Header {
            // Name by name, in the order first written.
            let mut names: Vec<String> = Vec::new();
            for e in &expected {
                if let Some((n, _)) = header_pair(e) {
                    if !names.iter().any(|x| x.eq_ignore_ascii_case(&n)) {
                        names.push(n);
                    }
                }
            }
            for n in names {
                let e = header_values(&expected, &n);
                let g = header_values(&got_values, &n);
                let same = e.len() == g.len()
                    && e.iter()
                        .zip(&g)
                        .all(|(a, b)| header_norm(a) == header_norm(b));
                if same {
                    lines.extend(e.iter().map(|v| ReportLine::Same(key, v.to_string())));
                } else {
                    passed = false;
                    lines.extend(e.iter().map(|v| ReportLine::Expected(key, v.to_string())));
                    lines.extend(g.iter().map(|v| ReportLine::Got(key, v.to_string())));
                }
            }
            continue;
        }
        let (e, g) = (expected[0], got_values.first().copied().unwrap_or("-"));
        let same = if key == Key::Handler {
            handler_matches(e, g)
        } else {
            e == g
        };
        if same {
            lines.push(ReportLine::Same(key, e.to_string()));
        } else {
            passed = false;
            lines.push(ReportLine::Expected(key, e.to_string()));
            lines.push(ReportLine::Got(key, g.to_string()));
        }
    }
    Outcome { lines, passed }
}

/// The report of a whole run: a unified-diff-like hunk per case that changed (`-` expected,
/// `+` found), then a summary line. `name` is the EXPECT file as given.
pub fn report(name: &str, results: &[(&Case, Outcome)]) -> String {
    let mut out = String::new();
    let failed: Vec<&(&Case, Outcome)> = results.iter().filter(|(_, o)| !o.passed).collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "--- expected ({name})\n+++ answered by the config");
    }
    for (case, o) in &failed {
        let _ = writeln!(out, "@@ {} ({name}:{}) @@", case.request.line(), case.line);
        for h in &case.request.headers {
            let _ = writeln!(out, " H: {}: {}", h.0, h.1);
        }
        for l in &o.lines {
            let (mark, key, value) = match l {
                ReportLine::Same(k, v) => (' ', k, v),
                ReportLine::Expected(k, v) => ('-', k, v),
                ReportLine::Got(k, v) => ('+', k, v),
            };
            let _ = writeln!(out, "{mark}{} {value}", key.name());
        }
    }
    let n = results.len();
    let _ = if failed.is_empty() {
        writeln!(
            out,
            "{n} request{} answered as expected",
            if n == 1 { "" } else { "s" }
        )
    } else {
        writeln!(
            out,
            "{} of {n} request{} answered differently",
            failed.len(),
            if n == 1 { "" } else { "s" }
        )
    };
    out
}

/// The answer lines `--update` writes for a case: the keys the case already has (every
/// `header` found when it has one), or, for a case without any, every key the answer has
/// (`status` and `upstream` when known, `uri` when a rewrite changed it, `at` only
/// `with_lines`). An error is always written.
fn update_lines(case: &Case, got: &Answer, with_lines: bool) -> Vec<String> {
    let written: BTreeSet<Key> = case.expect.iter().map(|e| e.key).collect();
    let keep = |k: Key| -> bool {
        if !written.is_empty() {
            return written.contains(&k) || k == Key::Error;
        }
        match k {
            Key::At => with_lines,
            Key::Uri => got.rewritten,
            _ => true,
        }
    };
    let mut out = Vec::new();
    for key in Key::ALL {
        if !keep(key) {
            continue;
        }
        if key == Key::At && !with_lines {
            // Kept as written: they are not checked without --with-lines.
            out.extend(
                case.expect
                    .iter()
                    .filter(|e| e.key == Key::At)
                    .map(|e| format!("at {}", e.value)),
            );
            continue;
        }
        let mut values = got.values(key);
        if written.is_empty() && values == ["-"] {
            values.clear();
        }
        if got.error().is_some() && key != Key::Error {
            values.clear();
        }
        out.extend(values.into_iter().map(|v| format!("{} {v}", key.name())));
    }
    out
}

/// The file with every case's answer lines replaced by what the config answers now (comments,
/// blank lines, requests and `H:` lines kept as they are).
pub fn update(file: &ExpectFile, answers: &[Answer], with_lines: bool) -> String {
    let mut by_line: Vec<Option<usize>> = vec![None; file.lines.len()];
    let mut insert_after: Vec<Option<usize>> = vec![None; file.lines.len()];
    for (c, case) in file.cases.iter().enumerate() {
        match case.expect.first() {
            Some(_) => {
                for e in &case.expect {
                    if let Some(slot) = by_line.get_mut(e.line - 1) {
                        *slot = Some(c);
                    }
                }
            }
            None => {
                if let Some(slot) = insert_after.get_mut(case.head_end) {
                    *slot = Some(c);
                }
            }
        }
    }
    let mut out = String::new();
    let mut done = vec![false; file.cases.len()];
    let fresh = |c: usize| -> Vec<String> {
        match (file.cases.get(c), answers.get(c)) {
            (Some(case), Some(a)) => update_lines(case, a, with_lines),
            _ => Vec::new(),
        }
    };
    for (i, line) in file.lines.iter().enumerate() {
        if let Some(c) = by_line[i] {
            if !done[c] {
                done[c] = true;
                for l in fresh(c) {
                    out.push_str(&l);
                    out.push('\n');
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if let Some(c) = insert_after[i] {
            for l in fresh(c) {
                out.push_str(&l);
                out.push('\n');
            }
            // A blank line before the next request, as a person would write it.
            if file.lines.get(i + 1).is_some_and(|l| !l.trim().is_empty()) {
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let r = Request::parse_line("GET http://www.example.com:8443/a?b=1")
            .ok()
            .flatten();
        let r = r.unwrap_or_else(|| Request::get(None, None, "?"));
        assert_eq!(r.host.as_deref(), Some("www.example.com"));
        assert_eq!(r.port, Some(8443));
        assert_eq!(r.target, "/a?b=1");
        assert_eq!(r.line(), "GET http://www.example.com:8443/a?b=1");
        let r = Request::parse_line("HEAD http://h?x").ok().flatten();
        assert_eq!(r.map(|r| r.target), Some("/?x".to_string()));
        assert_eq!(Request::parse_line("server example.com"), Ok(None));
        assert!(Request::parse_line("GET example.com/").is_err());
        assert!(Request::parse_line("GET http://h:99999/").is_err());
        assert!(Request::parse_line("GET /a b").is_err());
    }

    #[test]
    fn malformed_lines_are_all_reported() {
        let errs = parse("server x\nGET /\nlcation /\nstatus 2000\nheader nocolon\nstatus 200\nstatus 201\nH: A: b\n")
            .err()
            .unwrap_or_default();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 3, 4, 5, 7, 8], "{errs:?}");
        assert!(errs[1].message.contains("did you mean \"location\""));
    }

    #[test]
    fn handler_prefix_by_words() {
        assert!(handler_matches("static", "static root html"));
        assert!(handler_matches("return 301", "return 301 \"https://x\""));
        assert!(!handler_matches("return 30", "return 301"));
        assert!(handler_matches("return 301", "return 301"));
    }

    #[test]
    fn batch_forms() {
        let r = parse_requests("# c\nexample.com /a\n- /b\nPOST http://x/c\nH: X-A: 1\nserver x\n");
        let r = r.unwrap_or_default();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1].1.host, None);
        assert_eq!(r[2].1.method, "POST");
        assert_eq!(r[2].1.headers, vec![("X-A".to_string(), "1".to_string())]);
        assert!(parse_requests("nonsense").is_err());
    }
}
