//! nginx's rewrite phase and its cycle with location selection, written once for the runtime
//! and for `protonc route`.
//!
//! A request goes: the server's rewrite script → find the location → the location's rewrite
//! script → if that script changed the URI (a `rewrite` without flag, or `last`), find the
//! location again, at most [`UriBudget`] times (then nginx answers 500 "rewrite or internal
//! redirection cycle").
//!
//! The engine owns the order of things and nginx's rules for arguments and redirects; the
//! caller (a [`ScriptHost`]) owns the request: its URI, its captures, its variables. The
//! runtime's host expands variables from the request bytes; `protonc route`'s host fills in
//! captures and leaves other variables as `$name`. Neither can disagree with the other on what
//! a script does. Nothing here allocates once the host's buffers have grown.

use crate::{
    Builtin, Condition, FileTest, Ir, LocationId, LocationMatch, Part, RegexId, RewriteFlag,
};
use crate::{ScriptOp, ServerId, SourceRef, Template, Var};

/// URI changes a request may make (rewrites that re-select the location, internal redirects
/// of try_files, error_page and named locations): nginx's `NGX_HTTP_MAX_URI_CHANGES`; the
/// next one is answered 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UriBudget(u8);

impl Default for UriBudget {
    fn default() -> Self {
        UriBudget(10)
    }
}

impl UriBudget {
    /// Spends one change; false when none was left (the request loops: 500).
    pub fn spend(&mut self) -> bool {
        match self.0.checked_sub(1) {
            Some(n) => {
                self.0 = n;
                true
            }
            None => false,
        }
    }
}

/// What a script needs from the request it runs on.
pub trait ScriptHost {
    /// The current URI (normalised path, as rewritten so far; no arguments).
    fn uri(&self) -> &[u8];
    /// The current arguments (after `?`, as rewritten so far).
    fn args(&self) -> &[u8];
    /// Whether regex `id` matches `subject` (location selection: no captures kept).
    fn is_match(&self, id: RegexId, subject: &[u8]) -> bool;
    /// Runs regex `id` on the current URI; on a match its groups become `$1`… and its named
    /// groups variables, as after any nginx regex match. Returns whether it matched.
    fn capture(&mut self, id: RegexId) -> bool;
    /// Appends the value of one template part (never a literal: the engine copies those).
    fn expand_part(&mut self, part: &Part, out: &mut Vec<u8>);
    /// `set $var value`.
    fn set(&mut self, var: u32, value: &Template);
    /// `set` of a changeable built-in variable (`$limit_rate`).
    fn set_builtin(&mut self, var: Builtin, value: &Template) {
        let _ = (var, value);
    }
    /// A `rewrite` at `source` changed the URI to `path` and, when `args` is `Some`, the
    /// arguments to it (`None`: they stay).
    fn rewrite_uri(&mut self, path: &[u8], args: Option<&[u8]>, source: SourceRef);
    /// A buffer for the engine to build a URI or URL in (given back with `give_back`).
    fn buffer(&mut self) -> Vec<u8>;
    fn give_back(&mut self, buf: Vec<u8>);
    /// Runs regex `id` on `subject` (an `if` condition); on a match its groups become the
    /// captures, as after any regex match. Returns whether it matched.
    fn capture_on(&mut self, id: RegexId, subject: &[u8]) -> bool;
    /// Whether `path` passes an `if` file test (`-f`, `-d`, `-e`, `-x`).
    fn file_test(&mut self, test: FileTest, path: &[u8]) -> bool;
    /// The request takes the configuration of block location `loc` (an `if` or a
    /// `limit_except`).
    fn enter(&mut self, loc: LocationId);
    /// The `if` at `source` was evaluated to `result` (for `protonc route`'s account).
    fn tested(&mut self, source: SourceRef, result: bool) {
        let _ = (source, result);
    }
    /// Whether the request's URI had a `%` escape or a `+` (nginx's `quoted_uri`,
    /// `plus_in_uri`): a capture copied into the arguments or into a redirect is then
    /// escaped again, since it was taken from the decoded URI.
    fn uri_quoted(&self) -> bool {
        false
    }
}

/// Whether nginx's `NGX_ESCAPE_ARGS` escapes byte `b`: controls, space, `"`, `#`, `%`,
/// `&`, `+`, `;`, `<`, `>`, `?`, `\`, `^`, `` ` ``, `{`, `|`, `}`, DEL and every byte from 0x80.
fn escapes_in_args(b: u8) -> bool {
    const TABLE: [u32; 4] = [0xffff_ffff, 0xd800_086d, 0x5000_0000, 0xb800_0001];
    match TABLE.get(usize::from(b >> 5)) {
        Some(word) => word & (1 << (b & 31)) != 0,
        None => true,
    }
}

/// Percent-escapes `out[from..]` in place as nginx's `ngx_escape_uri(…, NGX_ESCAPE_ARGS)`.
fn escape_args(out: &mut Vec<u8>, from: usize) {
    crate::uri::percent_encode_in_place(out, from, escapes_in_args);
}

/// How a rewrite script ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ScriptEnd<'ir> {
    /// Ran to its end, or stopped at `rewrite … break`: the request stays where it is.
    Done,
    /// `rewrite … last`, or (in a location) a URI changed by a `rewrite` without flag: find
    /// the location again.
    Reroute,
    /// `return code [text]`.
    Return {
        code: u16,
        text: Option<&'ir Template>,
    },
    /// A redirecting `rewrite` (flag `redirect`/`permanent`, or a replacement that starts with
    /// `http://`, `https://` or `$scheme`): `url` is complete, arguments included. The
    /// buffer came from [`ScriptHost::buffer`]; give it back when done.
    Redirect { code: u16, url: Vec<u8> },
    /// The rewritten URI is empty: nginx answers 500.
    EmptyUri,
}

/// A replacement that makes `rewrite` redirect by itself, as nginx decides it from the
/// directive's text.
fn redirects_by_itself(t: &Template) -> bool {
    match t.parts.first() {
        Some(Part::Literal(s)) => s.starts_with("http://") || s.starts_with("https://"),
        Some(Part::Var(v)) => is_scheme(v),
        _ => false,
    }
}

fn is_scheme(v: &Var) -> bool {
    matches!(v, Var::Builtin(crate::Builtin::Scheme))
}

/// Runs a rewrite-module script in order. `in_location`: a URI changed by a `rewrite`
/// without flag makes the request find its location again (in a server block the location
/// is found afterwards anyway). `entered`: set to the `if` block location whose
/// configuration the request took, if any (the request is answered with that configuration).
pub fn run_script<'ir, H: ScriptHost + ?Sized>(
    h: &mut H,
    ops: &'ir [ScriptOp],
    in_location: bool,
    entered: &mut Option<LocationId>,
) -> ScriptEnd<'ir> {
    let mut changed = false;
    if let Some(end) = run_ops(h, ops, &mut changed, entered) {
        return end;
    }
    if changed && in_location {
        ScriptEnd::Reroute
    } else {
        ScriptEnd::Done
    }
}

/// Evaluates an `if` condition as nginx does: a value is false when empty or `0`; `=` and
/// `!=` compare whole values; a regex condition that matches sets the captures.
fn test<H: ScriptHost + ?Sized>(h: &mut H, cond: &Condition) -> bool {
    let value = |h: &mut H, t: &Template| {
        let mut out = h.buffer();
        for p in &t.parts {
            match p {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                other => h.expand_part(other, &mut out),
            }
        }
        out
    };
    match cond {
        Condition::Value(t) => {
            let v = value(h, t);
            let hit = !(v.is_empty() || v == b"0");
            h.give_back(v);
            hit
        }
        Condition::Equals {
            left,
            right,
            negate,
        } => {
            let (a, b) = (value(h, left), value(h, right));
            let hit = (a == b) != *negate;
            h.give_back(a);
            h.give_back(b);
            hit
        }
        Condition::Matches {
            left,
            regex,
            negate,
        } => {
            let a = value(h, left);
            let hit = h.capture_on(*regex, &a) != *negate;
            h.give_back(a);
            hit
        }
        Condition::File { test, path, negate } => {
            let p = value(h, path);
            let hit = h.file_test(*test, &p) != *negate;
            h.give_back(p);
            hit
        }
    }
}

/// Runs `ops`; `Some` when the script ends there.
fn run_ops<'ir, H: ScriptHost + ?Sized>(
    h: &mut H,
    ops: &'ir [ScriptOp],
    changed: &mut bool,
    entered: &mut Option<LocationId>,
) -> Option<ScriptEnd<'ir>> {
    for op in ops {
        match op {
            ScriptOp::Return { code, text } => {
                return Some(ScriptEnd::Return {
                    code: *code,
                    text: text.as_ref(),
                })
            }
            ScriptOp::Set { var, value } => h.set(*var, value),
            ScriptOp::SetBuiltin { var, value } => h.set_builtin(*var, value),
            // nginx's break also forgets a URI change: the request stays here.
            ScriptOp::Break => return Some(ScriptEnd::Done),
            ScriptOp::If {
                cond,
                then,
                location,
                source,
            } => {
                let hit = test(h, cond);
                h.tested(*source, hit);
                if !hit {
                    continue;
                }
                if let Some(l) = location {
                    h.enter(*l);
                    *entered = Some(*l);
                }
                // The block's directives run in line; then the enclosing script goes on.
                if let Some(end) = run_ops(h, then, changed, entered) {
                    return Some(end);
                }
            }
            ScriptOp::Rewrite {
                regex,
                replacement,
                flag,
                source,
            } => {
                if !h.capture(*regex) {
                    continue;
                }
                match rewrite(h, replacement, *flag, *source) {
                    Rewritten::Uri => {}
                    Rewritten::End(end) => return Some(end),
                }
                *changed = true;
                match flag {
                    RewriteFlag::Last => return Some(ScriptEnd::Reroute),
                    RewriteFlag::Break => return Some(ScriptEnd::Done),
                    _ => {}
                }
            }
        }
    }
    None
}

enum Rewritten<'ir> {
    Uri,
    End(ScriptEnd<'ir>),
}

/// Applies a matched `rewrite`, with nginx's rules (`ngx_http_script_regex_end_code`): a
/// replacement ending in `?` drops the request's arguments (the `?` itself is not part of
/// it); otherwise they follow the replacement's own (after `&`) or become the arguments; a
/// `?` written in the replacement (not one inside a variable's value) splits path from
/// arguments.
fn rewrite<'ir, H: ScriptHost + ?Sized>(
    h: &mut H,
    t: &Template,
    flag: RewriteFlag,
    source: SourceRef,
) -> Rewritten<'ir> {
    let redirect =
        matches!(flag, RewriteFlag::Redirect | RewriteFlag::Permanent) || redirects_by_itself(t);
    let n = t.parts.len();
    // The replacement's last `?`, when it ends the text, only says "drop the arguments".
    let drops_args = matches!(t.parts.last(), Some(Part::Literal(s)) if s.ends_with('?'));
    let mut out = h.buffer();
    // Where the written `?` split path and arguments (URI rewrites only).
    let mut split: Option<usize> = None;
    let mut literal_q = false;
    for (i, p) in t.parts.iter().enumerate() {
        match p {
            Part::Literal(s) => {
                let s = if drops_args && i + 1 == n {
                    &s[..s.len() - 1]
                } else {
                    s.as_str()
                };
                if s.contains('?') {
                    literal_q = true;
                }
                match (redirect, split, s.find('?')) {
                    (false, None, Some(q)) => {
                        out.extend_from_slice(&s.as_bytes()[..q]);
                        split = Some(out.len());
                        out.extend_from_slice(&s.as_bytes()[q + 1..]);
                    }
                    _ => out.extend_from_slice(s.as_bytes()),
                }
            }
            other => {
                let at = out.len();
                h.expand_part(other, &mut out);
                // A capture of the decoded URI copied into arguments or a redirect is
                // escaped again when the request's URI was escaped (nginx's capture code).
                if matches!(other, Part::Capture(_))
                    && (redirect || split.is_some())
                    && h.uri_quoted()
                {
                    escape_args(&mut out, at);
                }
            }
        }
    }
    let add_args = !drops_args && !h.args().is_empty();
    if redirect {
        // As nginx: the redirect is unescaped (printable characters only) before the
        // request's arguments are added.
        crate::uri::unescape_redirect(&mut out, 0);
        if add_args {
            out.push(if literal_q { b'&' } else { b'?' });
            out.extend_from_slice(h.args());
        }
        let code = if flag == RewriteFlag::Permanent {
            301
        } else {
            302
        };
        return Rewritten::End(ScriptEnd::Redirect { code, url: out });
    }
    let path_len = split.unwrap_or(out.len());
    if path_len == 0 {
        h.give_back(out);
        return Rewritten::End(ScriptEnd::EmptyUri);
    }
    match split {
        Some(at) => {
            if add_args {
                out.push(b'&');
                let args = h.args();
                out.extend_from_slice(args);
            }
            let mut args = h.buffer();
            args.extend_from_slice(&out[at..]);
            h.rewrite_uri(&out[..at], Some(&args), source);
            h.give_back(args);
        }
        None if drops_args => h.rewrite_uri(&out, Some(b""), source),
        None => h.rewrite_uri(&out, None, source),
    }
    h.give_back(out);
    Rewritten::Uri
}

/// Where location selection and its rewrite phase left a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Selected<'ir> {
    /// The location's script ran to its end: its content handler answers.
    Content(LocationId),
    /// The host stopped the request when the location was found (see
    /// [`RouteHost::found`]).
    Stopped(LocationId),
    /// The location's script answered.
    Answered(LocationId, ScriptEnd<'ir>),
    /// The URI changed more often than [`UriBudget`] allows: 500.
    Cycle,
}

/// Why a location that was found does not serve the request (nginx's find-config phase
/// refuses it before any handler runs). The engine decides; the host answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The URI lacks the trailing slash of a proxied location written with one
    /// (`location /app/ { proxy_pass …; }` and a request for `/app`): 301 to the URI with
    /// the slash (nginx's `auto_redirect`).
    SlashRedirect,
    /// An `internal` location reached by a URI the client sent: 404.
    Internal,
}

/// A [`ScriptHost`] that also hears which location was found.
pub trait RouteHost: ScriptHost {
    /// Location `loc` was found for the current URI (`m` says why), before its rewrite
    /// phase runs; `refused` is set when the location does not serve the request (the host
    /// answers it). False stops the request there ([`Selected::Stopped`]); a host returns
    /// false when `refused` is set.
    fn found(&mut self, loc: LocationId, m: &LocationMatch, refused: Option<Refusal>) -> bool;

    /// The request's method token (`limit_except` chooses by it).
    fn method(&self) -> &[u8];

    /// Whether the current URI is an internal redirect's (a rewrite, `error_page`,
    /// `try_files`, a named location…), which may enter an `internal` location.
    fn internal(&self) -> bool;
}

/// Whether location `loc`, found in server `sid` for the host's URI, refuses the request:
/// the checks nginx makes when it has found a location, before its handlers.
fn refusal<H: RouteHost + ?Sized>(
    ir: &Ir,
    h: &mut H,
    sid: ServerId,
    loc: &crate::Location,
    m: &LocationMatch,
) -> Option<Refusal> {
    if m.reason != crate::MatchReason::Exact && !h.uri().ends_with(b"/") {
        let mut with_slash = h.buffer();
        with_slash.clear();
        with_slash.extend_from_slice(h.uri());
        with_slash.push(b'/');
        let auto = ir.auto_redirect(sid, &with_slash);
        h.give_back(with_slash);
        if auto.is_some() {
            return Some(Refusal::SlashRedirect);
        }
    }
    (loc.conf.internal && !h.internal()).then_some(Refusal::Internal)
}

/// Finds the location of the host's URI in server `sid` (or enters `start`, a named
/// location, without a search), takes the captures of a regex location, and runs the
/// location's rewrite script; while that script changes the URI, finds the location again
/// (each time spending one of `budget`).
pub fn select_location<'ir, H: RouteHost + ?Sized>(
    ir: &'ir Ir,
    h: &mut H,
    sid: ServerId,
    mut start: Option<LocationId>,
    budget: &mut UriBudget,
) -> Selected<'ir> {
    loop {
        let mut winner = None;
        let m = if let Some(location) = start.take() {
            LocationMatch {
                location,
                reason: crate::MatchReason::Exact,
            }
        } else {
            let host = &*h;
            ir.find_location(sid, host.uri(), &mut |id, s| {
                let hit = host.is_match(id, s);
                if hit {
                    winner = Some(id);
                }
                hit
            })
        };
        // The regex that chose the location sets `$1`… (the last regex that matched is the
        // winner: regexes are tried in order and the first match ends the search).
        if let (crate::MatchReason::Regex(_), Some(id)) = (m.reason, winner) {
            h.capture(id);
        }
        let Some(loc) = ir.locations.get(m.location.0 as usize) else {
            return Selected::Stopped(m.location);
        };
        let refused = refusal(ir, h, sid, loc, &m);
        if !h.found(m.location, &m, refused) || refused.is_some() {
            return Selected::Stopped(m.location);
        }
        // nginx's limit_except: a method it does not list takes the block's configuration
        // at once, whose rewrite phase is empty (rewrite directives are not inherited).
        let (mut at, mut loc) = (m.location, loc);
        if let Some(le) = &loc.conf.limit_except {
            let method = h.method();
            if !le.methods.iter().any(|x| x.as_bytes() == method) {
                if let Some(l) = ir.locations.get(le.location.0 as usize) {
                    h.enter(le.location);
                    (at, loc) = (le.location, l);
                }
            }
        }
        // An `if` whose condition held answers with its block's configuration.
        let mut entered = None;
        let end = run_script(h, &loc.conf.script, true, &mut entered);
        let at = entered.unwrap_or(at);
        match end {
            ScriptEnd::Done => return Selected::Content(at),
            ScriptEnd::Reroute => {
                if !budget.spend() {
                    return Selected::Cycle;
                }
            }
            end => return Selected::Answered(at, end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host over plain strings: regexes are "prefix" matchers named by their id's text.
    struct Host {
        uri: Vec<u8>,
        args: Vec<u8>,
        /// Regex id → the prefix it matches, and what `$1` becomes.
        prefixes: Vec<(&'static str, &'static str)>,
        cap: Vec<u8>,
        log: Vec<String>,
    }

    impl ScriptHost for Host {
        fn uri(&self) -> &[u8] {
            &self.uri
        }
        fn args(&self) -> &[u8] {
            &self.args
        }
        fn is_match(&self, id: RegexId, s: &[u8]) -> bool {
            self.prefixes
                .get(id.0 as usize)
                .is_some_and(|(p, _)| s.starts_with(p.as_bytes()))
        }
        fn capture(&mut self, id: RegexId) -> bool {
            let hit = self.is_match(id, &self.uri);
            if hit {
                self.cap = self.prefixes[id.0 as usize].1.as_bytes().to_vec();
            }
            hit
        }
        fn expand_part(&mut self, part: &Part, out: &mut Vec<u8>) {
            match part {
                Part::Capture(1) => out.extend_from_slice(&self.cap),
                Part::Var(v) if is_scheme(v) => out.extend_from_slice(b"http"),
                _ => out.extend_from_slice(b"V?x"),
            }
        }
        fn set(&mut self, var: u32, _value: &Template) {
            self.log.push(format!("set {var}"));
        }
        fn rewrite_uri(&mut self, path: &[u8], args: Option<&[u8]>, _source: SourceRef) {
            self.uri = path.to_vec();
            if let Some(a) = args {
                self.args = a.to_vec();
            }
        }
        fn buffer(&mut self) -> Vec<u8> {
            Vec::new()
        }
        fn give_back(&mut self, _buf: Vec<u8>) {}
        fn capture_on(&mut self, _id: RegexId, subject: &[u8]) -> bool {
            subject.starts_with(b"f")
        }
        fn file_test(&mut self, test: FileTest, path: &[u8]) -> bool {
            test == FileTest::File && path == b"/exists"
        }
        fn enter(&mut self, loc: LocationId) {
            self.log.push(format!("enter {}", loc.0));
        }
    }

    fn host(uri: &str, args: &str) -> Host {
        Host {
            uri: uri.into(),
            args: args.into(),
            prefixes: vec![("/a", "A")],
            cap: Vec::new(),
            log: Vec::new(),
        }
    }

    fn lit(s: &str) -> Part {
        Part::Literal(s.into())
    }

    fn rw(parts: Vec<Part>, flag: RewriteFlag) -> ScriptOp {
        ScriptOp::Rewrite {
            regex: RegexId(0),
            replacement: Template { parts },
            flag,
            source: SourceRef { file: 0, line: 1 },
        }
    }

    fn run(h: &mut Host, op: ScriptOp, in_location: bool) -> String {
        let ops = [op];
        match run_script(h, &ops, in_location, &mut None) {
            ScriptEnd::Redirect { code, url } => {
                format!("{code} {}", String::from_utf8_lossy(&url))
            }
            ScriptEnd::Done => format!(
                "done {}?{}",
                String::from_utf8_lossy(&h.uri),
                String::from_utf8_lossy(&h.args)
            ),
            ScriptEnd::Reroute => format!(
                "reroute {}?{}",
                String::from_utf8_lossy(&h.uri),
                String::from_utf8_lossy(&h.args)
            ),
            other => format!("{other:?}"),
        }
    }

    /// nginx's argument rules, as nginx 1.22 applies them (`rewrite ^/a REPL [flag]` on
    /// `/a?x=1`).
    #[test]
    fn arguments_and_redirects_as_nginx() {
        use RewriteFlag::*;
        let cases: Vec<(Vec<Part>, RewriteFlag, bool, &str)> = vec![
            (vec![lit("/b")], None, true, "reroute /b?x=1"),
            (vec![lit("/b")], None, false, "done /b?x=1"),
            (vec![lit("/b")], Last, false, "reroute /b?x=1"),
            (vec![lit("/b")], Break, true, "done /b?x=1"),
            (vec![lit("/b?")], Break, true, "done /b?"),
            (vec![lit("/b?y=2")], Break, true, "done /b?y=2&x=1"),
            (vec![lit("/b?y=2?")], Break, true, "done /b?y=2"),
            (
                vec![lit("/b/"), Part::Capture(1), lit("?c=")],
                Break,
                true,
                "done /b/A?c=&x=1",
            ),
            // A `?` inside a variable's value stays in the path.
            (
                vec![lit("/b"), Part::Var(Var::Builtin(crate::Builtin::Host))],
                Break,
                true,
                "done /bV?x?x=1",
            ),
            (vec![lit("/b")], Redirect, true, "302 /b?x=1"),
            (vec![lit("/b?y=2")], Permanent, true, "301 /b?y=2&x=1"),
            (vec![lit("/b?")], Redirect, true, "302 /b"),
            (vec![lit("http://h/b")], None, true, "302 http://h/b?x=1"),
            (
                vec![lit("https://h/b?q")],
                Last,
                true,
                "302 https://h/b?q&x=1",
            ),
            (
                vec![
                    Part::Var(Var::Builtin(crate::Builtin::Scheme)),
                    lit("://h/"),
                ],
                None,
                true,
                "302 http://h/?x=1",
            ),
        ];
        for (parts, flag, in_location, want) in cases {
            let mut h = host("/a", "x=1");
            let got = run(&mut h, rw(parts.clone(), flag), in_location);
            assert_eq!(got, want, "{parts:?} {flag:?}");
        }
        let mut h = host("/a", "");
        assert_eq!(run(&mut h, rw(vec![lit("/b")], Redirect), true), "302 /b");
        let mut h = host("/a", "");
        assert_eq!(run(&mut h, rw(vec![lit("?x")], None), true), "EmptyUri");
        let mut h = host("/z", "x=1");
        assert_eq!(run(&mut h, rw(vec![lit("/b")], Last), true), "done /z?x=1");
    }

    #[test]
    fn return_and_set_in_order() {
        let mut h = host("/a", "");
        let ops = vec![
            ScriptOp::Set {
                var: 0,
                value: Template::default(),
            },
            rw(vec![lit("/b")], RewriteFlag::None),
            ScriptOp::Set {
                var: 1,
                value: Template::default(),
            },
            ScriptOp::Return {
                code: 204,
                text: None,
            },
            ScriptOp::Set {
                var: 2,
                value: Template::default(),
            },
        ];
        assert_eq!(
            run_script(&mut h, &ops, true, &mut None),
            ScriptEnd::Return {
                code: 204,
                text: None
            }
        );
        assert_eq!(h.log, ["set 0", "set 1"]);
        assert_eq!(h.uri, b"/b");
    }

    fn if_op(cond: Condition, then: Vec<ScriptOp>, location: Option<LocationId>) -> ScriptOp {
        ScriptOp::If {
            cond,
            then,
            location,
            source: SourceRef { file: 0, line: 1 },
        }
    }

    fn t(s: &str) -> Template {
        Template {
            parts: vec![lit(s)],
        }
    }

    /// nginx's conditions: a value is false when empty or "0"; `=`/`!=` compare whole
    /// values; regex and file tests with their negations.
    #[test]
    fn conditions_as_nginx() {
        use Condition::*;
        let cases = [
            (Value(t("")), false),
            (Value(t("0")), false),
            (Value(t("00")), true),
            (Value(t("x")), true),
            (
                Equals {
                    left: t("a"),
                    right: t("a"),
                    negate: false,
                },
                true,
            ),
            (
                Equals {
                    left: t("a"),
                    right: t("ab"),
                    negate: true,
                },
                true,
            ),
            (
                Matches {
                    left: t("foo"),
                    regex: RegexId(0),
                    negate: false,
                },
                true,
            ),
            (
                Matches {
                    left: t("bar"),
                    regex: RegexId(0),
                    negate: true,
                },
                true,
            ),
            (
                File {
                    test: FileTest::File,
                    path: t("/exists"),
                    negate: false,
                },
                true,
            ),
            (
                File {
                    test: FileTest::File,
                    path: t("/exists"),
                    negate: true,
                },
                false,
            ),
        ];
        for (cond, want) in cases {
            let mut h = host("/a", "");
            let ops = vec![if_op(
                cond.clone(),
                vec![ScriptOp::Return {
                    code: 204,
                    text: None,
                }],
                None,
            )];
            let hit = matches!(
                run_script(&mut h, &ops, true, &mut None),
                ScriptEnd::Return { code: 204, .. }
            );
            assert_eq!(hit, want, "{cond:?}");
        }
    }

    /// A true `if` switches the request to its block's location and runs the block in line;
    /// the enclosing script then goes on; `break` stops everything.
    #[test]
    fn if_blocks_run_in_line() {
        let set = |var| ScriptOp::Set {
            var,
            value: Template::default(),
        };
        let ops = vec![
            set(0),
            if_op(Condition::Value(t("1")), vec![set(1)], Some(LocationId(7))),
            set(2),
            if_op(Condition::Value(t("")), vec![set(3)], Some(LocationId(8))),
            if_op(
                Condition::Value(t("1")),
                vec![ScriptOp::Break, set(4)],
                Some(LocationId(9)),
            ),
            set(5),
        ];
        let mut h = host("/a", "");
        let mut entered = None;
        assert_eq!(
            run_script(&mut h, &ops, true, &mut entered),
            ScriptEnd::Done
        );
        assert_eq!(entered, Some(LocationId(9)));
        assert_eq!(h.log, ["set 0", "enter 7", "set 1", "set 2", "enter 9"]);
        // A rewrite without flag inside an if still sends the request to find its location.
        let ops = vec![if_op(
            Condition::Value(t("1")),
            vec![rw(vec![lit("/b")], RewriteFlag::None)],
            Some(LocationId(3)),
        )];
        let mut h = host("/a", "");
        assert_eq!(
            run_script(&mut h, &ops, true, &mut None),
            ScriptEnd::Reroute
        );
    }

    #[test]
    fn args_escaping_as_nginx() {
        let mut out = b"x=".to_vec();
        escape_args(&mut out, 2);
        assert_eq!(out, b"x=");
        let mut out = b"c=/a%b c&d+e?f~g".to_vec();
        escape_args(&mut out, 2);
        assert_eq!(String::from_utf8_lossy(&out), "c=/a%25b%20c%26d%2Be%3Ff~g");
        for b in [
            b'a', b'Z', b'0', b'-', b'.', b'_', b'~', b'/', b'=', b':', b'@', b'!',
        ] {
            assert!(!escapes_in_args(b), "{}", b as char);
        }
        for b in [
            0u8, b'\n', b' ', b'"', b'#', b'%', b'&', b'+', b';', b'<', b'>', b'?', 0x7f, 0x80,
            0xff,
        ] {
            assert!(escapes_in_args(b), "{b:#x}");
        }
    }

    #[test]
    fn the_budget_allows_ten_changes() {
        let mut b = UriBudget::default();
        for _ in 0..10 {
            assert!(b.spend());
        }
        assert!(!b.spend());
        assert!(!b.spend());
    }
}
