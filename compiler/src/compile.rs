//! The whole pipeline as one call, and the routing query (`route`) that `protonc route`,
//! `protonc test` and `protonc diff` are built on.

use crate::ast::Directive;
use crate::diagnostics::Diagnostics;
use crate::source::SourceMap;
use proton_ir::rewrite::{
    run_script, select_location, Refusal, RouteHost, ScriptEnd, ScriptHost, Selected,
};
use proton_ir::{Ir, LocationKind, MatchReason, Part, RegexId, ScriptOp, ServerMatch, Var};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// The result of reading a config in any format: its directive tree.
pub fn load_tree(
    path: &Path,
    map: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Option<Vec<Directive>> {
    if let Some(format) = crate::frontend::format_of(path) {
        let text = match std::fs::read(path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return None;
            }
        };
        let id = map.add(path.to_path_buf(), text);
        let src = map.text(id).to_string();
        return Some(crate::frontend::parse_document(id, &src, format, diags));
    }
    crate::syntax::load(path, map, diags)
}

/// Checks and lowers a tree.
pub fn compile_tree(tree: &[Directive], map: &SourceMap, diags: &mut Diagnostics) -> Option<Ir> {
    let syntax_errors = diags.has_errors();
    let pruned = crate::check::table::check_in_place(tree, diags);
    if syntax_errors {
        diags.sort();
        // Lowering a tree with blanked statements would only add noise.
        return None;
    }
    let ir = crate::lower::lower(pruned.as_deref().unwrap_or(tree), map, diags);
    diags.sort();
    if diags.has_errors() {
        return None;
    }
    ir
}

/// Compiles the config at `path`: returns the IR and the digest of every source read.
pub fn compile_path(
    path: &Path,
    map: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Option<(Ir, [u8; 32])> {
    let tree = load_tree(path, map, diags)?;
    let ir = compile_tree(&tree, map, diags)?;
    Some((ir, source_digest(map)))
}

/// SHA-256 over every source file, in the order read.
pub fn source_digest(map: &SourceMap) -> [u8; 32] {
    let mut h = Sha256::new();
    for i in 0..map.len() {
        let id = crate::source::FileId(i as u32);
        let text = map.text(id);
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().into()
}

/// Regexes of an IR compiled for matching (the same engine as the runtime).
pub struct Matchers {
    res: Vec<Option<proton_ir::pattern::Regex>>,
}

impl Matchers {
    pub fn new(ir: &Ir) -> Matchers {
        Matchers {
            res: ir
                .regexes
                .iter()
                .map(|r| proton_ir::pattern::compile(&r.pattern, r.case_insensitive).ok())
                .collect(),
        }
    }
    pub fn is_match(&self, id: RegexId, s: &[u8]) -> bool {
        self.res
            .get(id.0 as usize)
            .and_then(Option::as_ref)
            .is_some_and(|r| r.is_match(s))
    }

    /// The captures of regex `id` on `s`: numbered groups (0 = the whole match) and named
    /// groups (lowercase names), or `None` when it does not match.
    pub fn captures(&self, id: RegexId, s: &[u8]) -> Option<Captures> {
        let re = self.res.get(id.0 as usize)?.as_ref()?;
        let c = re.captures(s)?;
        let text = |m: Option<std::ops::Range<usize>>| {
            m.and_then(|r| s.get(r))
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        Some(Captures {
            numbered: (0..c.len()).map(|i| text(c.get(i))).collect(),
            named: re
                .capture_names()
                .enumerate()
                .filter_map(|(i, n)| Some((n?.to_ascii_lowercase(), text(c.get(i))?)))
                .collect(),
        })
    }
}

/// What a regex match captured.
#[derive(Debug, Clone, Default)]
pub struct Captures {
    pub numbered: Vec<Option<String>>,
    pub named: Vec<(String, String)>,
}

/// The answer of `protonc route`.
#[derive(Debug, serde::Serialize)]
pub struct RouteAnswer {
    pub server: u32,
    pub server_names: Vec<String>,
    pub server_match: String,
    pub location: String,
    pub location_kind: &'static str,
    pub reason: String,
    pub source: String,
    pub handler: String,
    #[serde(rename = "return")]
    pub ret: Option<ReturnAnswer>,
    /// The URI after the rewrite phase when a `rewrite` changed it (the location was then
    /// chosen for this URI).
    pub rewritten: Option<String>,
    /// One line per URI change: `rewritten to /new by file:line`.
    #[serde(skip)]
    pub steps: Vec<String>,
    /// The headers `add_header` (and `expires`, as `Cache-Control`) put on the answer, with
    /// the request's own variables filled in (see [`route`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// The location the search found (the server's default location when none matched),
    /// before an `if` or `limit_except` block took over.
    #[serde(skip)]
    pub matched: proton_ir::LocationId,
    /// The location whose configuration answers (an `if` or `limit_except` block, or
    /// `matched`).
    #[serde(skip)]
    pub answering: proton_ir::LocationId,
    /// The URI (with its arguments) the answer is for, after every rewrite.
    #[serde(skip)]
    pub final_uri: String,
}

/// A `return` of the chosen location.
#[derive(Debug, serde::Serialize)]
pub struct ReturnAnswer {
    pub code: u16,
    pub text: Option<String>,
}

/// Picks the listener for `port` / `addr`: the exact address, else the wildcard of that port,
/// else the first listener of that port.
pub fn pick_listener<'a>(
    ir: &'a Ir,
    port: Option<u16>,
    addr: Option<&str>,
) -> Option<&'a proton_ir::Listener> {
    let port_of = |a: &str| a.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
    let port = port.or_else(|| ir.listeners.first().and_then(|l| port_of(&l.addr)))?;
    let on_port: Vec<&proton_ir::Listener> = ir
        .listeners
        .iter()
        .filter(|l| port_of(&l.addr) == Some(port))
        .collect();
    if let Some(a) = addr {
        let want = if a.contains(':') && !a.starts_with('[') {
            format!("[{a}]:{port}")
        } else {
            format!("{a}:{port}")
        };
        if let Some(l) = on_port.iter().find(|l| l.addr == want) {
            return Some(l);
        }
    }
    on_port
        .iter()
        .find(|l| l.addr.starts_with("0.0.0.0:") || l.addr.starts_with("[::]:"))
        .or(on_port.first())
        .copied()
}

pub fn kind_name(k: LocationKind) -> &'static str {
    match k {
        LocationKind::Server => "server",
        LocationKind::Prefix => "prefix",
        LocationKind::PrefixNoRegex => "prefix_no_regex",
        LocationKind::Exact => "exact",
        LocationKind::Regex => "regex",
        LocationKind::RegexCaseless => "regex_caseless",
        LocationKind::Named => "named",
        LocationKind::If => "if",
        LocationKind::LimitExcept => "limit_except",
    }
}

/// One-line description of what a location does (its first `return`, else its content
/// handler).
pub fn handler_of(ir: &Ir, loc: &proton_ir::Location) -> String {
    for op in &loc.conf.script {
        if let ScriptOp::Return { code, text } = op {
            return return_handler(*code, text.as_ref().map(|t| ir.source_of(t)));
        }
    }
    content_handler_of(ir, loc)
}

fn return_handler(code: u16, text: Option<String>) -> String {
    match text {
        Some(t) => format!("return {code} {t:?}"),
        None => format!("return {code}"),
    }
}

/// What serves a request in `loc` when its rewrite phase did not return.
pub fn content_handler_of(ir: &Ir, loc: &proton_ir::Location) -> String {
    let conf = &loc.conf;
    if let Some(p) = &conf.proxy {
        if let Some(t) = &p.dynamic {
            return format!("proxy_pass {}", ir.source_of(t));
        }
        let up = ir
            .upstreams
            .get(p.upstream.0 as usize)
            .map_or("?", |u| u.name.as_str());
        let uri = p.uri.as_ref().map(|u| ir.source_of(u)).unwrap_or_default();
        // A unix socket's URI part follows a colon (`http://unix:/path:/uri/`).
        let sep = if up.starts_with("unix:") && !uri.is_empty() {
            ":"
        } else {
            ""
        };
        return format!("proxy_pass {}://{up}{sep}{uri}", p.scheme.as_str());
    }
    if !conf.try_files.is_empty() {
        let parts: Vec<String> = conf.try_files.iter().map(|t| ir.source_of(t)).collect();
        return format!("try_files {}", parts.join(" "));
    }
    match &conf.alias {
        Some(a) if a.prefix.is_empty() => {
            format!("static alias {}", ir.source_of(&a.path))
        }
        Some(a) => format!("static alias {} (for {})", ir.source_of(&a.path), a.prefix),
        None => format!("static root {}", ir.source_of(ir.root_of(loc))),
    }
}

/// A request for [`route`]: what a client sends.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    pub method: &'a str,
    /// The Host header (`None`: none).
    pub host: Option<&'a str>,
    /// The request target (`/path?args`).
    pub uri: &'a str,
    /// Other request headers, `(name, value)`.
    pub headers: &'a [(String, String)],
}

/// The request as `route` follows it through the IR's rewrite engine
/// (`proton_ir::rewrite`, the runtime's own): captures, the request's own variables
/// (method, URI, arguments, host, headers, cookies) and `set` values are filled in; other
/// variables, whose values exist only at run time, stay `$name` and are reported.
struct RewriteState<'a> {
    ir: &'a Ir,
    m: &'a Matchers,
    req: RouteRequest<'a>,
    /// The host as the server saw it (lowercase, no port).
    host: String,
    /// `set` values so far, by variable index.
    user: HashMap<u32, Vec<u8>>,
    /// Variables used since the last `if` test whose value is unknown before run time.
    unknown: Vec<String>,
    /// A file test ran since the last `if` test (taken as false).
    file_tested: bool,
    uri: Vec<u8>,
    args: Vec<u8>,
    /// `$0`… of the last regex match.
    numbered: Vec<Option<String>>,
    /// Named captures of the regexes matched so far (a later match of a group wins).
    named: HashMap<String, String>,
    steps: Vec<String>,
    changed: bool,
    reason: Option<MatchReason>,
    /// The last location found, and why the runtime would stop there (`internal`, or a
    /// slash to add), as `RouteHost::found` of the runtime does.
    found: Option<proton_ir::LocationId>,
    stop: Option<ReturnAnswer>,
}

impl RewriteState<'_> {
    fn remember(&mut self, c: Captures) {
        for (n, v) in c.named {
            self.named.insert(n, v);
        }
        self.numbered = c.numbered;
    }

    /// The URI with its arguments, as `route` reports it.
    fn full_uri(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.uri).into_owned();
        if !self.args.is_empty() {
            s.push('?');
            s.push_str(&String::from_utf8_lossy(&self.args));
        }
        s
    }
}

impl ScriptHost for RewriteState<'_> {
    fn uri(&self) -> &[u8] {
        &self.uri
    }

    fn args(&self) -> &[u8] {
        &self.args
    }

    fn is_match(&self, id: RegexId, subject: &[u8]) -> bool {
        self.m.is_match(id, subject)
    }

    fn capture(&mut self, id: RegexId) -> bool {
        match self.m.captures(id, &self.uri) {
            Some(c) => {
                self.remember(c);
                true
            }
            None => false,
        }
    }

    fn expand_part(&mut self, part: &Part, out: &mut Vec<u8>) {
        match part {
            Part::Literal(l) => out.extend_from_slice(l.as_bytes()),
            Part::Capture(n) => {
                if let Some(Some(v)) = self.numbered.get(*n as usize) {
                    out.extend_from_slice(v.as_bytes());
                }
            }
            Part::Var(Var::NamedCapture(n)) => {
                out.extend_from_slice(self.named.get(n).map_or("", String::as_str).as_bytes());
            }
            Part::Var(v) => {
                if !self.request_var(v, out) {
                    let name = self.ir.var_name(v);
                    out.push(b'$');
                    out.extend_from_slice(name.as_bytes());
                    if !self.unknown.contains(&name) {
                        self.unknown.push(name.to_string());
                    }
                }
            }
        }
    }

    fn set(&mut self, var: u32, value: &proton_ir::Template) {
        let mut out = Vec::new();
        for p in &value.parts {
            self.expand_part(p, &mut out);
        }
        self.user.insert(var, out);
    }

    /// `set $args` changes the arguments, as in the server (`$limit_rate` changes nothing
    /// route shows).
    fn set_builtin(&mut self, var: proton_ir::Builtin, value: &proton_ir::Template) {
        if var == proton_ir::Builtin::Args {
            let mut out = Vec::new();
            for p in &value.parts {
                self.expand_part(p, &mut out);
            }
            self.args = out;
        }
    }

    fn rewrite_uri(&mut self, path: &[u8], args: Option<&[u8]>, source: proton_ir::SourceRef) {
        self.uri = path.to_vec();
        if let Some(a) = args {
            self.args = a.to_vec();
        }
        self.changed = true;
        self.steps.push(format!(
            "rewritten to {} by {}",
            self.full_uri(),
            self.ir.describe(source)
        ));
    }

    fn buffer(&mut self) -> Vec<u8> {
        Vec::new()
    }

    fn give_back(&mut self, _buf: Vec<u8>) {}

    fn capture_on(&mut self, id: RegexId, subject: &[u8]) -> bool {
        match self.m.captures(id, subject) {
            Some(c) => {
                self.remember(c);
                true
            }
            None => false,
        }
    }

    /// Files are not looked at: a file test is taken as false (and said so).
    fn file_test(&mut self, _test: proton_ir::FileTest, _path: &[u8]) -> bool {
        self.file_tested = true;
        false
    }

    fn enter(&mut self, _loc: proton_ir::LocationId) {}

    fn tested(&mut self, source: proton_ir::SourceRef, result: bool) {
        let mut why = Vec::new();
        if !self.unknown.is_empty() {
            let names: Vec<String> = self.unknown.drain(..).map(|n| format!("${n}")).collect();
            why.push(format!(
                "{} unknown before run time, taken as {}",
                names.join(", "),
                if names.len() == 1 {
                    "its name"
                } else {
                    "their names"
                }
            ));
        }
        if std::mem::take(&mut self.file_tested) {
            why.push("files are not looked at: a file test is false".to_string());
        }
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join("; "))
        };
        self.steps.push(format!(
            "if at {} is {result}{why}",
            self.ir.describe(source)
        ));
    }
}

impl RouteHost for RewriteState<'_> {
    fn found(
        &mut self,
        loc: proton_ir::LocationId,
        m: &proton_ir::LocationMatch,
        refused: Option<Refusal>,
    ) -> bool {
        self.reason = Some(m.reason);
        self.found = Some(loc);
        self.stop = match refused {
            None => return true,
            Some(Refusal::SlashRedirect) => Some(ReturnAnswer {
                code: 301,
                text: Some(format!("{}/", String::from_utf8_lossy(&self.uri))),
            }),
            Some(Refusal::Internal) => Some(ReturnAnswer {
                code: 404,
                text: None,
            }),
        };
        false
    }

    fn method(&self) -> &[u8] {
        self.req.method.as_bytes()
    }

    fn internal(&self) -> bool {
        // A URI a rewrite made is an internal redirect's (the runtime's `internal` flag,
        // set by the same rewrite).
        self.changed
    }
}

impl RewriteState<'_> {
    /// Appends the value of `v` when the request alone gives it; false when only the
    /// running server knows it.
    fn request_var(&self, v: &Var, out: &mut Vec<u8>) -> bool {
        use proton_ir::uri::{arg_value, cookie_value, same_name};
        use proton_ir::Builtin as B;
        let header = |name: &str| {
            self.req
                .headers
                .iter()
                .find_map(|(n, v)| same_name(n.as_bytes(), name.as_bytes()).then_some(v.as_bytes()))
        };
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        let value: String = match v {
            Var::Http(name) if name == "host" => self.req.host.unwrap_or("").to_string(),
            Var::Http(name) => text(header(name)),
            Var::Arg(name) => text(arg_value(&self.args, name.as_bytes())),
            Var::Cookie(name) => {
                text(header("cookie").and_then(|c| cookie_value(c, name.as_bytes())))
            }
            Var::User(i) => match self.user.get(i) {
                Some(v) => String::from_utf8_lossy(v).into_owned(),
                None => String::new(),
            },
            Var::Builtin(b) => match b {
                B::RequestMethod => self.req.method.to_string(),
                B::Uri | B::DocumentUri => String::from_utf8_lossy(&self.uri).into_owned(),
                B::Args | B::QueryString => String::from_utf8_lossy(&self.args).into_owned(),
                B::IsArgs => if self.args.is_empty() { "" } else { "?" }.to_string(),
                B::RequestUri => self.req.uri.to_string(),
                // Without a Host, nginx's value is the server's name: left to run time.
                B::Host if self.req.host.is_some() => self.host.clone(),
                B::Scheme => "http".to_string(),
                B::ServerProtocol => "HTTP/1.1".to_string(),
                _ => return false,
            },
            _ => return false,
        };
        out.extend_from_slice(value.as_bytes());
        true
    }
}

/// The answer of a script that ended the request.
fn script_return(ir: &Ir, end: ScriptEnd<'_>) -> ReturnAnswer {
    match end {
        ScriptEnd::Return { code, text } => ReturnAnswer {
            code,
            text: text.map(|t| ir.source_of(t)),
        },
        ScriptEnd::Redirect { code, url } => ReturnAnswer {
            code,
            text: Some(String::from_utf8_lossy(&url).into_owned()),
        },
        ScriptEnd::EmptyUri | ScriptEnd::Done | ScriptEnd::Reroute => ReturnAnswer {
            code: 500,
            text: None,
        },
    }
}

/// Routes one request the way the runtime does, with the same engine: server selection,
/// the server's rewrite phase, location selection and the location's rewrite phase (again
/// while it changes the URI), then the handler.
pub fn route(
    ir: &Ir,
    m: &Matchers,
    port: Option<u16>,
    addr: Option<&str>,
    req: &RouteRequest<'_>,
) -> Result<RouteAnswer, String> {
    let (host, uri) = (req.host, req.uri);
    let listener = pick_listener(ir, port, addr).ok_or_else(|| match port {
        Some(p) => format!("no server listens on port {p}"),
        None => "the configuration has no listeners".to_string(),
    })?;
    let host = proton_ir::uri::normalize_host(host.unwrap_or(""));
    let mut last_regex = None;
    let (sid, how) = ir.find_server(listener, host.as_bytes(), &mut |id, s| {
        let hit = m.is_match(id, s);
        if hit {
            last_regex = Some(id);
        }
        hit
    });
    let mut path = Vec::new();
    if !proton_ir::uri::normalize_path(uri.as_bytes(), &mut path) {
        return Err(format!(
            "invalid request URI {uri:?} (the server answers 400)"
        ));
    }
    let args = uri
        .split_once('?')
        .map(|(_, a)| a.split('#').next().unwrap_or(""))
        .unwrap_or("");
    let mut st = RewriteState {
        ir,
        m,
        req: *req,
        host: host.clone(),
        user: HashMap::new(),
        unknown: Vec::new(),
        file_tested: false,
        uri: path,
        args: args.as_bytes().to_vec(),
        numbered: Vec::new(),
        named: HashMap::new(),
        steps: Vec::new(),
        changed: false,
        reason: None,
        found: None,
        stop: None,
    };
    if let (ServerMatch::Regex(_), Some(id)) = (how, last_regex) {
        if let Some(c) = m.captures(id, host.as_bytes()) {
            st.remember(c);
        }
    }
    let server = &ir.servers[sid.0 as usize];
    let server_match = match how {
        ServerMatch::Exact => "exact".into(),
        ServerMatch::LeadingWildcard => "leading_wildcard".into(),
        ServerMatch::TrailingWildcard => "trailing_wildcard".into(),
        ServerMatch::Regex(i) => format!("regex#{i}"),
        ServerMatch::Default => "default".into(),
    };
    // The answer from the location whose configuration answers (`at`), found as `matched`.
    let answer = |mut st: RewriteState<'_>,
                  matched: proton_ir::LocationId,
                  at: proton_ir::LocationId,
                  reason: String,
                  handler: String,
                  ret: Option<ReturnAnswer>| {
        let loc = ir.locations.get(at.0 as usize);
        let headers = loc
            .map(|l| response_headers(&mut st, l, ret.as_ref().map(|r| r.code)))
            .unwrap_or_default();
        RouteAnswer {
            server: sid.0,
            server_names: server.names.clone(),
            server_match: server_match.clone(),
            location: loc.map_or("", |l| ir.text_of(l.name)).to_string(),
            location_kind: loc.map_or("server", |l| kind_name(l.kind)),
            reason,
            source: loc.map_or_else(String::new, |l| ir.describe(l.source)),
            handler,
            ret,
            rewritten: st.changed.then(|| st.full_uri()),
            final_uri: st.full_uri(),
            steps: st.steps,
            headers,
            matched,
            answering: at,
        }
    };
    let default_loc = server.default_location;
    match run_script(&mut st, &server.script, false, &mut None) {
        ScriptEnd::Done | ScriptEnd::Reroute => {}
        end => {
            let r = script_return(ir, end);
            let handler = return_handler(r.code, r.text.clone());
            return Ok(answer(
                st,
                default_loc,
                default_loc,
                "server rewrite phase".into(),
                handler,
                Some(r),
            ));
        }
    }
    let mut budget = proton_ir::rewrite::UriBudget::default();
    let selected = select_location(ir, &mut st, sid, None, &mut budget);
    let reason = match st.reason {
        Some(MatchReason::Exact) => "exact".into(),
        Some(MatchReason::PrefixNoRegex) => "prefix ^~".into(),
        Some(MatchReason::Regex(i)) => format!("regex #{i}"),
        Some(MatchReason::LongestPrefix) => "longest prefix".into(),
        Some(MatchReason::ServerDefault) | None => "server default".into(),
    };
    let matched = st.found.unwrap_or(default_loc);
    match selected {
        Selected::Stopped(l) => match st.stop.take() {
            Some(r) => {
                let handler = match r.code {
                    404 => "return 404 (internal location)".to_string(),
                    _ => format!(
                        "return 301 {} (the location is written with a slash)",
                        r.text.as_deref().unwrap_or("")
                    ),
                };
                Ok(answer(st, matched, l, reason, handler, Some(r)))
            }
            None => {
                let handler = ir
                    .locations
                    .get(l.0 as usize)
                    .map_or_else(String::new, |loc| content_handler_of(ir, loc));
                Ok(answer(st, matched, l, reason, handler, None))
            }
        },
        Selected::Content(l) => {
            let handler = ir
                .locations
                .get(l.0 as usize)
                .map_or_else(String::new, |loc| content_handler_of(ir, loc));
            Ok(answer(st, matched, l, reason, handler, None))
        }
        Selected::Answered(l, end) => {
            let r = script_return(ir, end);
            let handler = return_handler(r.code, r.text.clone());
            Ok(answer(st, matched, l, reason, handler, Some(r)))
        }
        Selected::Cycle => {
            let r = ReturnAnswer {
                code: 500,
                text: None,
            };
            Ok(answer(
                st,
                default_loc,
                default_loc,
                "rewrite or internal redirection cycle".into(),
                "return 500 (rewrite or internal redirection cycle)".into(),
                Some(r),
            ))
        }
    }
}

/// The statuses nginx's headers filter adds `add_header` (without `always`) and `expires`
/// headers to.
const HEADER_STATUSES: [u16; 10] = [200, 201, 204, 206, 301, 302, 303, 304, 307, 308];

/// The headers `loc`'s `add_header` and `expires` put on an answer with `status` (`None`:
/// decided at run time, taken as 200), values expanded with what the request gives.
/// `Expires` itself (a date) is left out: it depends on the clock.
fn response_headers(
    st: &mut RewriteState<'_>,
    loc: &proton_ir::Location,
    status: Option<u16>,
) -> Vec<(String, String)> {
    let ir = st.ir;
    let Some(settings) = ir.settings.get(loc.conf.settings.0 as usize) else {
        return Vec::new();
    };
    let safe = HEADER_STATUSES.contains(&status.unwrap_or(200));
    let mut out = Vec::new();
    if safe {
        let cache_control = match settings.expires {
            proton_ir::Expires::Epoch => Some("no-cache".to_string()),
            proton_ir::Expires::Max => Some("max-age=315360000".to_string()),
            proton_ir::Expires::After(s) if s < 0 => Some("no-cache".to_string()),
            proton_ir::Expires::After(s) => Some(format!("max-age={s}")),
            _ => None,
        };
        if let Some(v) = cache_control {
            out.push(("Cache-Control".to_string(), v));
        }
    }
    for h in &settings.add_headers {
        if !(safe || h.always) {
            continue;
        }
        let mut value = Vec::new();
        for p in &h.value.parts {
            st.expand_part(p, &mut value);
        }
        out.push((h.name.clone(), String::from_utf8_lossy(&value).into_owned()));
    }
    out
}
