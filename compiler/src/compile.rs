//! The whole pipeline as one call, and the routing queries (`route`, `diff`) built on it.

use crate::ast::Directive;
use crate::diagnostics::Diagnostics;
use crate::source::SourceMap;
use proton_ir::rewrite::{run_script, select_location, RouteHost, ScriptEnd, ScriptHost, Selected};
use proton_ir::{
    Ir, LocationKind, MatchReason, Part, RegexId, ScriptOp, ServerId, ServerMatch, Var,
};
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
    res: Vec<Option<regex::bytes::Regex>>,
}

impl Matchers {
    pub fn new(ir: &Ir) -> Matchers {
        Matchers {
            res: ir
                .regexes
                .iter()
                .map(|r| {
                    regex::bytes::RegexBuilder::new(&r.pattern)
                        .case_insensitive(r.case_insensitive)
                        .build()
                        .ok()
                })
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
        let text = |m: Option<regex::bytes::Match<'_>>| {
            m.map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
        };
        Some(Captures {
            numbered: (0..c.len()).map(|i| text(c.get(i))).collect(),
            named: re
                .capture_names()
                .flatten()
                .filter_map(|n| Some((n.to_ascii_lowercase(), text(c.name(n))?)))
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
    fn found(&mut self, _loc: proton_ir::LocationId, m: &proton_ir::LocationMatch) -> bool {
        self.reason = Some(m.reason);
        true
    }

    fn method(&self) -> &[u8] {
        self.req.method.as_bytes()
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
    };
    if let (ServerMatch::Regex(_), Some(id)) = (how, last_regex) {
        if let Some(c) = m.captures(id, host.as_bytes()) {
            st.remember(c);
        }
    }
    let server = &ir.servers[sid.0 as usize];
    let answer = |st: RewriteState<'_>,
                  loc: &proton_ir::Location,
                  reason: String,
                  handler: String,
                  ret: Option<ReturnAnswer>| RouteAnswer {
        server: sid.0,
        server_names: server.names.clone(),
        server_match: match how {
            ServerMatch::Exact => "exact".into(),
            ServerMatch::LeadingWildcard => "leading_wildcard".into(),
            ServerMatch::TrailingWildcard => "trailing_wildcard".into(),
            ServerMatch::Regex(i) => format!("regex#{i}"),
            ServerMatch::Default => "default".into(),
        },
        location: ir.text_of(loc.name).to_string(),
        location_kind: kind_name(loc.kind),
        reason,
        source: ir.describe(loc.source),
        handler,
        ret,
        rewritten: st.changed.then(|| st.full_uri()),
        steps: st.steps,
    };
    let default_loc = &ir.locations[server.default_location.0 as usize];
    match run_script(&mut st, &server.script, false, &mut None) {
        ScriptEnd::Done | ScriptEnd::Reroute => {}
        end => {
            let r = script_return(ir, end);
            let handler = return_handler(r.code, r.text.clone());
            return Ok(answer(
                st,
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
    match selected {
        Selected::Content(l) | Selected::Stopped(l) => {
            let loc = &ir.locations[l.0 as usize];
            let handler = content_handler_of(ir, loc);
            Ok(answer(st, loc, reason, handler, None))
        }
        Selected::Answered(l, end) => {
            let loc = &ir.locations[l.0 as usize];
            let r = script_return(ir, end);
            let handler = return_handler(r.code, r.text.clone());
            Ok(answer(st, loc, reason, handler, Some(r)))
        }
        Selected::Cycle => {
            let r = ReturnAnswer {
                code: 500,
                text: None,
            };
            Ok(answer(
                st,
                default_loc,
                "rewrite or internal redirection cycle".into(),
                "return 500 (rewrite or internal redirection cycle)".into(),
                Some(r),
            ))
        }
    }
}

/// A stable key for a server in diffs: its addresses and first name.
fn server_key(ir: &Ir, sid: ServerId) -> String {
    let addrs: Vec<&str> = ir
        .listeners
        .iter()
        .filter(|l| {
            l.names.default == sid
                || l.names.exact.iter().any(|(_, s)| *s == sid)
                || l.names.leading.iter().any(|w| w.server == sid)
                || l.names.trailing.iter().any(|(_, s)| *s == sid)
                || l.names.regex.iter().any(|(_, s)| *s == sid)
        })
        .map(|l| l.addr.as_str())
        .collect();
    let name = ir.servers[sid.0 as usize]
        .names
        .first()
        .cloned()
        .unwrap_or_default();
    format!("server \"{name}\" on {}", addrs.join(","))
}

fn location_map(ir: &Ir) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut out = std::collections::BTreeMap::new();
    for l in &ir.locations {
        let key = format!(
            "{} / location {} {}",
            server_key(ir, l.server),
            kind_name(l.kind),
            ir.text_of(l.name)
        );
        let mut v = serde_json::to_value(&l.conf).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "handler".into(),
                serde_json::Value::String(handler_of(ir, l)),
            );
            // Ids are positional; compare upstreams by name instead.
            if let Some(p) = &l.conf.proxy {
                let up = ir
                    .upstreams
                    .get(p.upstream.0 as usize)
                    .map(|u| serde_json::to_value(u).unwrap_or_default());
                o.insert("proxy_upstream".into(), up.unwrap_or_default());
            }
            o.remove("proxy");
            // Settings ids are positional too; compare the settings themselves, field by field.
            o.remove("settings");
            if let Some(st) = ir.settings.get(l.conf.settings.0 as usize) {
                if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(st) {
                    o.extend(fields);
                }
            }
            o.remove("script");
            o.insert(
                "script".into(),
                serde_json::Value::String(format!("{:?}", script_source(ir, &l.conf.script))),
            );
        }
        out.insert(key, v);
    }
    out
}

fn script_source(ir: &Ir, s: &[ScriptOp]) -> Vec<String> {
    s.iter()
        .map(|op| match op {
            ScriptOp::Return { code, text } => format!(
                "return {code} {}",
                text.as_ref().map(|t| ir.source_of(t)).unwrap_or_default()
            ),
            ScriptOp::Rewrite {
                regex,
                replacement,
                flag,
                ..
            } => format!(
                "rewrite {} {} {flag:?}",
                ir.regexes
                    .get(regex.0 as usize)
                    .map_or("", |r| r.pattern.as_str()),
                ir.source_of(replacement)
            ),
            ScriptOp::Set { var, value } => format!(
                "set ${} {}",
                ir.user_vars.get(*var as usize).map_or("", String::as_str),
                ir.source_of(value)
            ),
            ScriptOp::SetBuiltin { var, value } => {
                format!("set ${} {}", var.name(), ir.source_of(value))
            }
            ScriptOp::If { source, then, .. } => format!(
                "if at {} {{ {} }}",
                ir.describe(*source),
                script_source(ir, then).join("; ")
            ),
            ScriptOp::Break => "break".to_string(),
        })
        .collect()
}

/// The semantic routing differences between two IRs, one line each (empty: identical).
pub fn diff(a: &Ir, b: &Ir) -> Vec<String> {
    let mut out = Vec::new();
    let la: Vec<&str> = a.listeners.iter().map(|l| l.addr.as_str()).collect();
    let lb: Vec<&str> = b.listeners.iter().map(|l| l.addr.as_str()).collect();
    for l in &la {
        if !lb.contains(l) {
            out.push(format!("- listen {l}"));
        }
    }
    for l in &lb {
        if !la.contains(l) {
            out.push(format!("+ listen {l}"));
        }
    }
    for (l1, l2) in a
        .listeners
        .iter()
        .zip(&b.listeners)
        .filter(|(x, y)| x.addr == y.addr)
    {
        let d1 = server_key(a, l1.names.default);
        let d2 = server_key(b, l2.names.default);
        if d1 != d2 {
            out.push(format!("~ default server of {}: {d1} -> {d2}", l1.addr));
        }
        let names =
            |ir: &Ir, l: &proton_ir::Listener| -> std::collections::BTreeMap<String, String> {
                let mut m = std::collections::BTreeMap::new();
                for (n, s) in &l.names.exact {
                    m.insert(n.clone(), server_key(ir, *s));
                }
                for w in &l.names.leading {
                    m.insert(format!("*{}", w.suffix), server_key(ir, w.server));
                }
                for (p, s) in &l.names.trailing {
                    m.insert(format!("{p}*"), server_key(ir, *s));
                }
                for (r, s) in &l.names.regex {
                    m.insert(
                        format!("~{}", ir.regexes[r.0 as usize].pattern),
                        server_key(ir, *s),
                    );
                }
                m
            };
        let (n1, n2) = (names(a, l1), names(b, l2));
        for (k, v) in &n1 {
            match n2.get(k) {
                None => out.push(format!("- server_name {k} on {} ({v})", l1.addr)),
                Some(v2) if v2 != v => {
                    out.push(format!("~ server_name {k} on {}: {v} -> {v2}", l1.addr))
                }
                _ => {}
            }
        }
        for (k, v) in &n2 {
            if !n1.contains_key(k) {
                out.push(format!("+ server_name {k} on {} ({v})", l1.addr));
            }
        }
    }
    let (ma, mb) = (location_map(a), location_map(b));
    for (k, v) in &ma {
        match mb.get(k) {
            None => out.push(format!("- {k}")),
            Some(v2) if v2 != v => {
                let mut fields = Vec::new();
                if let (Some(o1), Some(o2)) = (v.as_object(), v2.as_object()) {
                    for (f, x) in o1 {
                        if o2.get(f) != Some(x) {
                            fields.push(format!(
                                "{f}: {} -> {}",
                                short(x),
                                short(o2.get(f).unwrap_or(&serde_json::Value::Null))
                            ));
                        }
                    }
                }
                out.push(format!("~ {k}: {}", fields.join("; ")));
            }
            _ => {}
        }
    }
    for k in mb.keys() {
        if !ma.contains_key(k) {
            out.push(format!("+ {k}"));
        }
    }
    out
}

fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(77).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}
