//! Lowering: the checked directive tree → the flattened IR. Inheritance is resolved here
//! (each location gets its effective settings), server-name tables and location tries are
//! built, variables become templates, regexes are compiled once to prove they are valid,
//! and the cross-reference checks and warnings run (upstream names, named locations,
//! default_server, duplicate and unreachable locations, the add_header trap).

mod cache;
mod cond;
mod health;
mod limits;
mod maps;
mod pcre;
mod proxy_rewrite;
mod tls;
mod values;
pub mod vars;

use crate::ast::Directive;
use crate::diagnostics::{did_you_mean, Code, Diagnostic, Diagnostics};
use crate::directives::{parse_number, parse_size, parse_time_ms, parse_time_secs};
use crate::source::{SourceMap, Span};
use proton_ir::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeMap;
use values::*;

/// Deepest location nesting accepted.
const MAX_NESTING: usize = 16;

/// Lowers a checked tree. Returns `None` when errors were reported.
pub fn lower(tree: &[Directive], map: &SourceMap, diags: &mut Diagnostics) -> Option<Ir> {
    let mut cx = Lower {
        map,
        diags,
        ir: Ir {
            main: MainConf::default(),
            listeners: vec![],
            servers: vec![],
            locations: vec![],
            upstreams: vec![],
            regexes: vec![],
            log_formats: vec![combined()],
            user_vars: vec![],
            maps: vec![],
            mime_types: vec![],
            settings: vec![],
            source_files: vec![],
            text: String::new(),
            charset_maps: vec![],
            resolvers: vec![],
            limit_zones: vec![],
            cache_zones: vec![],
        },
        resolver_ids: HashMap::default(),
        upstream_names: HashMap::default(),
        named_refs: Vec::new(),
        named_defs: Vec::new(),
        server_names: Vec::new(),
        regex_ids: HashMap::default(),
        bad_regexes: Vec::new(),
        misplaced_named: Vec::new(),
        tls_checked: Default::default(),
        ssl_zones: Default::default(),
        ssl_on: Vec::new(),
        ssl_warned: Default::default(),
        upstream_tls_checked: Default::default(),
        log_format_spans: Vec::new(),
        server_root: Template::default(),
        settings_ids: HashMap::default(),
        types_ids: HashMap::default(),
        file_caches: HashMap::default(),
        user_var_ids: HashMap::default(),
        map_ids: HashMap::default(),
        map_defs: Vec::new(),
        loc_stack: Vec::new(),
        server_captures: Vec::new(),
        all_captures: HashSet::default(),
        current_server: None,
        http_levels: Vec::new(),
        regex_info: HashMap::default(),
        implicit_upstreams: HashMap::default(),
        health_match_defs: HashMap::default(),
        limit_zone_spans: Vec::new(),
        cache_zone_decls: Vec::new(),
    };
    cx.collect_maps(tree);
    cx.collect_user_vars(tree, 0);
    cx.main(tree);
    if !tree.iter().any(|d| d.name == "events") && !cx.diags.has_errors() {
        let span = tree.first().map_or(Span::default(), |d| d.name_span);
        cx.diags.push(
            Diagnostic::error(
                Code::Conflict,
                Span {
                    end: span.start,
                    ..span
                },
                "no \"events\" section in configuration",
            )
            .label("the configuration needs an events block")
            .help("add `events {}` (nginx requires it too)"),
        );
    }
    let https: Vec<&Directive> = tree.iter().filter(|d| d.name == "http").collect();
    match https.first() {
        Some(http) => cx.http(http),
        None => {
            let span = tree.first().map_or(Span::default(), |d| d.name_span);
            cx.diags.push(
                Diagnostic::error(Code::Conflict, span, "no http block: nothing to serve")
                    .label("the configuration has no `http { server { … } }`")
                    .help("add an http block with at least one server"),
            );
        }
    }
    if cx.diags.has_errors() {
        return None;
    }
    cx.ir.source_files = (0..map.len())
        .map(|i| {
            map.path(crate::source::FileId(i as u32))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    if let Err(e) = cx.ir.verify() {
        cx.diags.push(Diagnostic::error(
            Code::Conflict,
            tree.first().map_or(Span::default(), |d| d.name_span),
            format!("internal error: the IR does not verify: {e}"),
        ));
        return None;
    }
    Some(cx.ir)
}

fn combined() -> LogFormat {
    let text = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";
    LogFormat {
        name: "combined".into(),
        escape: LogEscape::Default,
        template: vars::template(text, Span::default(), vars::Scope::default()).unwrap_or_default(),
    }
}

pub(crate) struct Lower<'a> {
    pub(crate) map: &'a SourceMap,
    /// TLS settings records already built by `check_tls` (each is checked once).
    tls_checked: rustc_hash::FxHashSet<ServerTls>,
    /// Per server: `ssl on` (nginx's deprecated form) is in effect.
    ssl_on: Vec<bool>,
    /// `ssl` directives already warned about.
    ssl_warned: rustc_hash::FxHashSet<Span>,
    /// `ssl_session_cache shared:` zones: name → (size, where first declared).
    ssl_zones: HashMap<String, (u64, Span)>,
    /// `proxy_ssl_*` records already built by `check_upstream_tls`.
    upstream_tls_checked: rustc_hash::FxHashSet<UpstreamTls>,
    pub(crate) diags: &'a mut Diagnostics,
    pub(crate) ir: Ir,
    /// Explicit upstreams by lowercase name, with the span of their name.
    upstream_names: HashMap<String, (UpstreamId, Span)>,
    /// (server, @name, span) of every reference to a named location.
    named_refs: Vec<(ServerId, String, Span)>,
    /// (server, @name, span) of every named location.
    named_defs: Vec<(ServerId, String, Span)>,
    /// Per server: its names (lowercase, regexes as written) and their spans.
    server_names: Vec<(Vec<String>, Vec<Span>)>,
    regex_ids: HashMap<(String, bool), RegexId>,
    bad_regexes: Vec<RegexId>,
    /// The root of the server being lowered.
    server_root: Template,
    /// log_format names with the span of their definition.
    log_format_spans: Vec<(String, Span)>,
    /// Named locations reported as misplaced (nested).
    misplaced_named: Vec<(ServerId, String)>,
    settings_ids: HashMap<Settings, SettingsId>,
    /// `types` tables by the span of their block (`None`: nginx's built-in table).
    types_ids: HashMap<Option<Span>, MimeTableId>,
    /// `open_file_cache` directives by span: the cache each one defines (`None`: `off` or
    /// invalid), so that each is checked and numbered once.
    file_caches: HashMap<Span, Option<FileCacheZone>>,
    /// `resolver` directives by span: the index of the resolver each defines (`None`:
    /// invalid), so that locations inheriting one share its cache.
    resolver_ids: HashMap<Span, Option<u32>>,
    /// `set` variables by name → index into [`Ir::user_vars`].
    user_var_ids: HashMap<String, u32>,
    /// `map` variables by name → index into [`Ir::maps`].
    map_ids: HashMap<String, u32>,
    /// Per map id: the `map` directive (in the http block) and the span of its variable.
    map_defs: Vec<(*const Directive, Span)>,
    /// The locations enclosing the one being lowered (outermost first, itself last).
    loc_stack: Vec<LocFrame>,
    /// Per server: the named captures of its regexes (server names, locations, rewrites),
    /// lowercase. A request's captures come from regexes of its own server only.
    server_captures: Vec<HashSet<String>>,
    /// The named captures of every regex of the config.
    all_captures: HashSet<String>,
    /// The server being lowered, if any.
    current_server: Option<usize>,
    /// Where the http level's own directives are, to tell a directive written at the http
    /// level from one inside a server.
    http_levels: Vec<std::ops::Range<*const Directive>>,
    /// Implicit upstreams (a literal `proxy_pass host:port`) by address.
    implicit_upstreams: HashMap<String, UpstreamId>,
    /// Capture-group names of each regex compiled so far (`None`: invalid regex).
    regex_info: HashMap<(String, bool), Option<Vec<String>>>,
    /// `match` blocks by name, with the span of the name.
    health_match_defs: HashMap<String, health::MatchDef>,
    /// Where each of `ir.limit_zones` is declared.
    limit_zone_spans: Vec<Span>,
    /// Where each of `ir.cache_zones` is declared, and by which module.
    cache_zone_decls: Vec<cache::ZoneDecl>,
}

/// A location on [`Lower::loc_stack`].
struct LocFrame {
    kind: LocationKind,
    path: String,
    /// `internal` written in this location.
    internal: bool,
}

/// All directives called `name` in `level`.
fn all<'d>(level: &'d [Directive], name: &'d str) -> impl Iterator<Item = &'d Directive> + 'd {
    level.iter().filter(move |d| d.name == name)
}

fn first<'d>(level: &'d [Directive], name: &str) -> Option<&'d Directive> {
    level.iter().find(|d| d.name == name)
}

/// One level of the inheritance chain (http, server or a location): its own directives,
/// without the blocks of inner levels (locations, servers, upstreams), in order and indexed
/// by name. Lookups cost the same however many locations a level holds.
pub(crate) struct Level<'d> {
    list: Vec<&'d Directive>,
    by_name: HashMap<&'d str, Vec<&'d Directive>>,
    /// One bit per name present ([`name_bit`]): most lookups are of names a level does not
    /// have (every setting is looked up at every level of every location), and this answers
    /// them without hashing the name.
    names: u64,
    /// For a location's level, its name as written (the path, or the regex's source):
    /// what `proxy_redirect default` maps a proxy_pass URI back to.
    pub(crate) location: Option<String>,
}

impl<'d> Level<'d> {
    pub(crate) fn new(block: &'d [Directive]) -> Level<'d> {
        let mut list = Vec::new();
        let mut by_name: HashMap<&'d str, Vec<&'d Directive>> = HashMap::default();
        for d in block {
            if d.block.is_some() && matches!(d.name.as_str(), "location" | "server" | "upstream") {
                continue;
            }
            list.push(d);
            by_name.entry(d.name.as_str()).or_default().push(d);
        }
        let names = by_name.keys().fold(0, |m, n| m | name_bit(n));
        Level {
            list,
            by_name,
            names,
            location: None,
        }
    }

    /// Where `d` is among this level's own directives (`None`: not one of them).
    pub(crate) fn position(&self, d: &Directive) -> Option<usize> {
        self.list.iter().position(|x| std::ptr::eq(*x, d))
    }

    /// The directives `name` of this level, in order.
    pub(crate) fn get(&self, name: &str) -> &[&'d Directive] {
        if self.names & name_bit(name) == 0 {
            return &[];
        }
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn first(&self, name: &str) -> Option<&'d Directive> {
        self.get(name).first().copied()
    }
}

/// A directive name's bit in [`Level::names`]: from its length and two of its bytes, which
/// is cheap and spreads nginx's directive names well enough.
fn name_bit(name: &str) -> u64 {
    let b = name.as_bytes();
    let mix = b
        .len()
        .wrapping_mul(31)
        .wrapping_add(usize::from(b.get(1).copied().unwrap_or(0)))
        .wrapping_add(usize::from(b.last().copied().unwrap_or(0)).wrapping_mul(7));
    1 << (mix % 64)
}

/// `address` or `address/prefix`, as nginx's `ngx_ptocidr` reads it (address bits below the
/// prefix are ignored, as nginx masks them).
fn parse_cidr(v: &str) -> Option<ClientAddr> {
    use std::net::IpAddr;
    let (a, p) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let addr = a.parse::<IpAddr>().ok()?;
    let max = if addr.is_ipv6() { 128 } else { 32 };
    let prefix = match p {
        None => max,
        Some(p) => parse_number::<u8>(p).filter(|p| *p <= max)?,
    };
    Some(ClientAddr::Cidr { addr, prefix })
}

/// nginx inheritance: the directives `name` of the innermost level that has any.
/// The content handlers that pass a request to an upstream: the last one written in a
/// location answers there.
const PASS_DIRECTIVES: [&str; 5] = [
    "proxy_pass",
    "fastcgi_pass",
    "scgi_pass",
    "uwsgi_pass",
    "grpc_pass",
];

fn nearest<'a, 'd>(chain: &'a [&'a Level<'d>], name: &str) -> &'a [&'d Directive] {
    let bit = name_bit(name);
    for level in chain {
        if level.names & bit == 0 {
            continue;
        }
        let v = level.get(name);
        if !v.is_empty() {
            return v;
        }
    }
    &[]
}

fn arg(d: &Directive, i: usize) -> &str {
    d.args.get(i).map_or("", |a| a.value.as_str())
}

impl Lower<'_> {
    pub(crate) fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Registers every `set` variable of the config (a variable may be used before, or in
    /// another block than, the `set` that creates it, as in nginx).
    fn collect_user_vars(&mut self, tree: &[Directive], depth: usize) {
        if depth > crate::ast::MAX_BLOCK_DEPTH {
            return;
        }
        for d in tree {
            if d.name == "set" || d.name == "auth_request_set" {
                if let Some(name) = d.args.first().and_then(|a| a.value.strip_prefix('$')) {
                    // nginx compares variable names case-insensitively.
                    let name = name.to_ascii_lowercase();
                    let name = name.as_str();
                    let valid = !name.is_empty()
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        && !vars::is_builtin_name(name)
                        && !self.map_ids.contains_key(name);
                    if valid && !self.user_var_ids.contains_key(name) {
                        self.user_var_ids
                            .insert(name.to_string(), self.ir.user_vars.len() as u32);
                        self.ir.user_vars.push(name.to_string());
                    }
                }
            }
            self.collect_user_vars(d.children(), depth + 1);
        }
    }

    /// The named capture groups of every regex in a server block: `server_name ~…`,
    /// `location ~ / ~*` at any depth, and `rewrite`, `if` and the proxy module's
    /// rewriting of response headers (`proxy_redirect ~…`, `proxy_cookie_* ~…`) anywhere
    /// in it.
    fn collect_captures(&mut self, level: &[Directive], depth: usize, out: &mut HashSet<String>) {
        if depth > crate::ast::MAX_BLOCK_DEPTH {
            return;
        }
        for d in level {
            let (pattern, caseless) = match d.name.as_str() {
                "server_name" => {
                    for a in &d.args {
                        if let Some(re) = a.value.strip_prefix('~').filter(|r| !r.is_empty()) {
                            let caseless = re.bytes().any(|b| b.is_ascii_uppercase());
                            if let Some(names) = self.regex_captures(re, caseless) {
                                out.extend(names.iter().cloned());
                            }
                        }
                    }
                    continue;
                }
                "rewrite" => match d.args.first() {
                    Some(a) => (a.value.as_str(), false),
                    None => continue,
                },
                "proxy_redirect"
                | "proxy_cookie_domain"
                | "proxy_cookie_path"
                | "proxy_cookie_flags" => match proxy_rewrite::regex_of(d) {
                    Some(r) => r,
                    None => continue,
                },
                "if" => {
                    self.collect_captures(d.children(), depth + 1, out);
                    match cond::regex_of(&d.args) {
                        Some(r) => r,
                        None => continue,
                    }
                }
                "location" => {
                    self.collect_captures(d.children(), depth + 1, out);
                    match location_head_of(&d.args) {
                        Some((LocationKind::Regex, p)) => (p, false),
                        Some((LocationKind::RegexCaseless, p)) => (p, true),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            if let Some(names) = self.regex_captures(pattern, caseless) {
                out.extend(names.iter().cloned());
            }
        }
    }

    pub(crate) fn template(&mut self, d: &Directive, i: usize) -> Template {
        self.template_with(d, i, None)
    }

    /// [`Lower::template`], with the named groups in `extra` as variables too (the
    /// captures of a map's regex key, in its value).
    pub(crate) fn template_with(
        &mut self,
        d: &Directive,
        i: usize,
        extra: Option<&HashSet<String>>,
    ) -> Template {
        self.template_text(d, i, extra, None)
    }

    /// A template of `text` (part of argument `i` of `d`, such as the value of a `key=`
    /// parameter), in the scope of `d`.
    pub(crate) fn template_with_value(&mut self, d: &Directive, i: usize, text: &str) -> Template {
        self.template_text(d, i, None, Some(text))
    }

    fn template_text(
        &mut self,
        d: &Directive,
        i: usize,
        extra: Option<&HashSet<String>>,
        text: Option<&str>,
    ) -> Template {
        let Some(a) = d.args.get(i) else {
            return Template::default();
        };
        self.template_of(d, text.unwrap_or(&a.value), a.span, extra)
    }

    /// A template of `text`, written in an argument of `d` at `span` (part of an argument,
    /// as the operands of an `if` condition).
    pub(crate) fn template_of(
        &mut self,
        d: &Directive,
        text: &str,
        span: Span,
        extra: Option<&HashSet<String>>,
    ) -> Template {
        // Named captures: those of the server being lowered, or of any server for a
        // directive written at the http level (it applies to every server).
        let at = d as *const Directive;
        let http_level = self.http_levels.iter().any(|r| r.contains(&at));
        let captures = match self.current_server {
            Some(s) if !http_level => self.server_captures.get(s),
            _ => Some(&self.all_captures),
        };
        let union: HashSet<String>;
        let captures = match extra {
            Some(e) if !e.is_empty() => {
                union = captures.into_iter().flatten().chain(e).cloned().collect();
                Some(&union)
            }
            _ => captures,
        };
        let scope = vars::Scope {
            user: Some(&self.user_var_ids),
            maps: Some(&self.map_ids),
            captures,
            all_captures: Some(&self.all_captures),
        };
        match vars::template(text, span, scope) {
            // The response's headers are known once it is sent: in access logs.
            Ok(t)
                if !matches!(
                    d.name.as_str(),
                    "log_format" | "map" | "add_header" | "expires" | "add_trailer"
                ) && t
                    .parts
                    .iter()
                    .any(|p| matches!(p, Part::Var(Var::SentHttp(_)))) =>
            {
                self.err(
                    Diagnostic::error(
                        Code::Unsupported,
                        span,
                        format!("$sent_http_* in \"{}\" is not supported yet", d.name),
                    )
                    .label("Proton knows the response's headers only once they are sent")
                    .help(
                        "$sent_http_NAME is available in log_format, add_header, add_trailer, expires and map",
                    ),
                );
                Template::default()
            }
            // Trailers exist only while add_trailer values are made.
            Ok(t)
                if d.name != "add_trailer"
                    && t.parts
                        .iter()
                        .any(|p| matches!(p, Part::Var(Var::SentTrailer(_)))) =>
            {
                self.err(
                    Diagnostic::error(
                        Code::Unsupported,
                        span,
                        format!("$sent_trailer_* in \"{}\" is not supported yet", d.name),
                    )
                    .label("Proton keeps the trailers only while it adds them")
                    .help("$sent_trailer_NAME is available in add_trailer"),
                );
                Template::default()
            }
            Ok(t) => t,
            Err(errors) => {
                for e in errors {
                    self.err(e);
                }
                Template::default()
            }
        }
    }

    /// Interns a regex; each distinct pattern is compiled once, to prove it valid.
    /// The pattern is PCRE as nginx reads it; the IR keeps it in the regex crate's spelling
    /// ([`pcre::to_rust`]).
    pub(crate) fn regex(&mut self, pattern: &str, caseless: bool, span: Span) -> RegexId {
        let pattern = &*pcre::to_rust(pattern);
        if let Some(&id) = self.regex_ids.get(&(pattern.to_string(), caseless)) {
            if self.bad_regexes.contains(&id) {
                self.report_regex(pattern, caseless, span);
            }
            return id;
        }
        let id = RegexId(self.ir.regexes.len() as u32);
        self.ir.regexes.push(Regex {
            pattern: pattern.to_string(),
            case_insensitive: caseless,
        });
        self.regex_ids.insert((pattern.to_string(), caseless), id);
        if self.report_regex(pattern, caseless, span) {
            self.bad_regexes.push(id);
        }
        id
    }

    /// Compiles `pattern` once and returns the names of its capture groups (lowercase), or
    /// `None` when it is invalid.
    fn regex_captures(&mut self, pattern: &str, caseless: bool) -> Option<&Vec<String>> {
        let pattern = &*pcre::to_rust(pattern);
        let key = (pattern.to_string(), caseless);
        if !self.regex_info.contains_key(&key) {
            let info = proton_ir::pattern::compile(pattern, caseless)
                .ok()
                .map(|re| {
                    re.capture_names()
                        .flatten()
                        .map(str::to_ascii_lowercase)
                        .collect()
                });
            self.regex_info.insert(key.clone(), info);
        }
        self.regex_info.get(&key).and_then(Option::as_ref)
    }

    /// Compiles `pattern`; reports and returns true when it is invalid.
    fn report_regex(&mut self, pattern: &str, caseless: bool, span: Span) -> bool {
        if self.regex_captures(pattern, caseless).is_some() {
            return false;
        }
        let Err(e) = proton_ir::pattern::compile(pattern, caseless) else {
            return false;
        };
        let msg = e.to_string();
        let detail = msg.lines().last().unwrap_or("").trim().to_string();
        let help = if matches!(e.fast, regex::Error::CompiledTooBig(_)) {
            "the regex is too large once compiled; simplify its repetitions"
        } else {
            "the pattern is PCRE's syntax, as nginx's (PCRE2 says what is wrong above)"
        };
        self.err(
            Diagnostic::error(
                Code::BadRegex,
                span,
                format!("invalid regular expression \"{pattern}\""),
            )
            .label(detail)
            .help(help),
        );
        true
    }

    fn main(&mut self, tree: &[Directive]) {
        self.ir.main.pcre_jit = first(tree, "pcre_jit").is_some_and(|d| arg(d, 0) == "on");
        if let Some(d) = first(tree, "worker_processes") {
            let v = arg(d, 0);
            self.ir.main.worker_processes = if v == "auto" {
                WorkerProcesses::Auto
            } else if let Some(n @ 1..) = parse_number::<u32>(v) {
                WorkerProcesses::Count(n)
            } else {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid value \"{v}\" in \"worker_processes\""),
                    )
                    .label("expected a positive number or auto")
                    .help("write `worker_processes auto;` or a count such as 4"),
                );
                WorkerProcesses::Count(1)
            };
        }
        if let Some(d) = first(tree, "worker_shutdown_timeout") {
            self.ir.main.worker_shutdown_timeout_ms = parse_time_ms(arg(d, 0));
        }
        if let Some(d) = first(tree, "worker_rlimit_nofile") {
            self.ir.main.worker_rlimit_nofile = parse_number(arg(d, 0));
        }
        if let Some(d) = first(tree, "pid") {
            self.ir.main.pid = arg(d, 0).to_string();
        }
        self.globals(tree);
        self.knobs(tree, 0);
        let logs: Vec<ErrorLog> = all(tree, "error_log")
            .filter_map(|d| self.error_log(d))
            .collect();
        if !logs.is_empty() {
            self.ir.main.error_log = logs;
        }
        for ev in all(tree, "events") {
            if let Some(d) = first(ev.children(), "worker_connections") {
                match parse_number::<u32>(arg(d, 0)) {
                    Some(n) if n >= 2 => self.ir.main.worker_connections = n,
                    _ => self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            d.arg_span(0),
                            "worker_connections must be at least 2",
                        )
                        .label("too small")
                        .help("each proxied request needs two connections; 512 is the default"),
                    ),
                }
            }
            if let Some(d) = first(ev.children(), "use") {
                self.ir.main.event_method = Some(arg(d, 0).to_string());
            }
            for d in all(ev.children(), "debug_connection") {
                self.debug_connection(d);
            }
        }
    }

    /// nginx's core-module globals: daemon, master_process, user, worker_cpu_affinity,
    /// worker_rlimit_core, working_directory, env.
    fn globals(&mut self, tree: &[Directive]) {
        let on = |name: &str| first(tree, name).map(|d| arg(d, 0) == "on");
        self.ir.main.daemon = on("daemon").unwrap_or(false);
        self.ir.main.master_process = on("master_process").unwrap_or(true);
        if let Some(d) = first(tree, "user") {
            self.ir.main.user = Some(UserGroup {
                user: arg(d, 0).to_string(),
                group: d.args.get(1).map(|a| a.value.clone()),
            });
        }
        if let Some(d) = first(tree, "worker_cpu_affinity") {
            self.ir.main.worker_cpu_affinity = self.cpu_affinity(d);
        }
        if let Some(d) = first(tree, "worker_priority") {
            // nginx: an optional sign and digits.
            let v = arg(d, 0);
            let (neg, digits) = match v.as_bytes().first() {
                Some(b'-') => (true, &v[1..]),
                Some(b'+') => (false, &v[1..]),
                _ => (false, v),
            };
            match parse_number::<i32>(digits) {
                Some(n) => self.ir.main.worker_priority = if neg { -n } else { n },
                None => self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid number \"{v}\" in \"worker_priority\""),
                    )
                    .label("expected a nice value such as -5 or 10")
                    .help("worker_priority -5;"),
                ),
            }
        }
        if let Some(d) = first(tree, "worker_rlimit_core") {
            self.ir.main.worker_rlimit_core = parse_size(arg(d, 0));
        }
        if let Some(d) = first(tree, "working_directory") {
            self.ir.main.working_directory = Some(arg(d, 0).to_string());
        }
        for d in all(tree, "load_module") {
            let module = arg(d, 0);
            let name = module
                .rsplit('/')
                .next()
                .unwrap_or(module)
                .trim_end_matches(".so");
            self.err(
                Diagnostic::warning(
                    Code::NoDynamicModules,
                    d.arg_span(0),
                    format!("Proton loads no nginx modules: \"{name}\" is not loaded"),
                )
                .label("its directives stay unknown to protonc")
                .help("remove the line (Debian's modules-enabled/*.conf adds such lines); Proton's own features need no module"),
            );
        }
        for d in all(tree, "env") {
            let v = arg(d, 0);
            if v.is_empty() || v.starts_with('=') {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid value \"{v}\" in \"env\" directive"),
                    )
                    .label("expected a variable name")
                    .help("env NAME; or env NAME=value;"),
                );
                continue;
            }
            self.ir.main.env.push(v.to_string());
        }
    }

    /// `set_real_ip_from` (the lines of the nearest level that has any), `real_ip_header`,
    /// `real_ip_recursive`; `None` without `set_real_ip_from`.
    fn realip(&mut self, chain: &[&Level<'_>]) -> Option<Box<RealIp>> {
        let header = match nearest(chain, "real_ip_header").first() {
            Some(d) if arg(d, 0).eq_ignore_ascii_case("proxy_protocol") => {
                RealIp::PROXY_PROTOCOL.to_string()
            }
            Some(d) => arg(d, 0).to_ascii_lowercase(),
            None => "x-real-ip".to_string(),
        };
        let recursive = nearest(chain, "real_ip_recursive")
            .first()
            .is_some_and(|d| arg(d, 0) == "on");
        let mut from = Vec::new();
        for d in nearest(chain, "set_real_ip_from") {
            let v = arg(d, 0);
            if v == "unix:" {
                from.push(ClientAddr::Unix);
                continue;
            }
            if let Some(c) = parse_cidr(v) {
                from.push(c);
                continue;
            }
            // A host name: its addresses, resolved now (as nginx resolves it at start).
            let resolved: Vec<std::net::IpAddr> = if v.contains('/') || v.is_empty() {
                Vec::new()
            } else {
                use std::net::ToSocketAddrs;
                (v, 0u16)
                    .to_socket_addrs()
                    .map(|a| a.map(|a| a.ip()).collect())
                    .unwrap_or_default()
            };
            if !resolved.is_empty() {
                for ip in resolved {
                    let prefix = if ip.is_ipv6() { 128 } else { 32 };
                    let c = ClientAddr::Cidr { addr: ip, prefix };
                    if !from.contains(&c) {
                        from.push(c);
                    }
                }
                continue;
            }
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.arg_span(0),
                    format!("invalid parameter \"{v}\""),
                )
                .label("expected an address, address/prefix, unix: or a host name that resolves")
                .help("set_real_ip_from 10.0.0.0/8; set_real_ip_from ::1;"),
            );
        }
        (!from.is_empty()).then(|| {
            Box::new(RealIp {
                from,
                header,
                recursive,
            })
        })
    }

    /// `valid_referers` of the nearest level that has any, all its lines together, as
    /// nginx's referer module reads them (`server_names` takes the server's names).
    fn referers(&mut self, chain: &[&Level<'_>]) -> Option<Box<Referers>> {
        let lines = nearest(chain, "valid_referers");
        if lines.is_empty() {
            return None;
        }
        let mut r = Referers {
            none: false,
            blocked: false,
            exact: Vec::new(),
            leading: Vec::new(),
            trailing: Vec::new(),
            regex: Vec::new(),
            server_name_regex: Vec::new(),
        };
        let mut server_names = false;
        let mut seen: HashMap<String, Span> = HashMap::default();
        let add = |this: &mut Self,
                   r: &mut Referers,
                   seen: &mut HashMap<String, Span>,
                   key: &str,
                   span: Span| {
            let (host, uri) = match key.find('/') {
                Some(i) => (&key[..i], Some(key[i..].to_string())),
                None => (key, None),
            };
            let host = host.to_ascii_lowercase();
            if let Some(first) = seen.get(&host) {
                this.err(
                    Diagnostic::error(
                        Code::Duplicate,
                        span,
                        format!("conflicting parameter \"{host}\""),
                    )
                    .label("named again")
                    .also(*first, "first here")
                    .help("name each host once"),
                );
                return;
            }
            seen.insert(host.clone(), span);
            let bad = |this: &mut Self| {
                this.err(
                    Diagnostic::error(
                        Code::BadValue,
                        span,
                        format!("invalid hostname or wildcard \"{host}\""),
                    )
                    .label(
                        "a `*` may only start (`*.example.com`) or end (`www.example.*`) the name",
                    )
                    .help("valid_referers *.example.com www.example.* example.com/images/;"),
                );
            };
            if let Some(s) = host.strip_prefix('*') {
                if !s.starts_with('.') || s.len() < 2 || s.contains('*') {
                    return bad(this);
                }
                r.leading.push((s.to_string(), uri));
            } else if let Some(p) = host.strip_suffix('*') {
                if !p.ends_with('.') || p.len() < 2 || p.contains('*') {
                    return bad(this);
                }
                r.trailing.push((p.to_string(), uri));
            } else if host.contains('*') || host.is_empty() {
                bad(this);
            } else if host.starts_with('.') && host.len() > 1 {
                r.exact.push((host[1..].to_string(), uri.clone()));
                r.leading.push((host.clone(), uri));
            } else {
                r.exact.push((host, uri));
            }
        };
        for d in lines {
            for (i, a) in d.args.iter().enumerate() {
                let v = a.value.as_str();
                match v {
                    "" => self.err(
                        Diagnostic::error(Code::BadValue, d.arg_span(i), "invalid referer \"\"")
                            .label("empty")
                            .help("valid_referers none blocked server_names *.example.com;"),
                    ),
                    "none" => r.none = true,
                    "blocked" => r.blocked = true,
                    "server_names" => server_names = true,
                    _ => match v.strip_prefix('~') {
                        Some(re) => {
                            let id = self.regex(re, true, d.arg_span(i));
                            r.regex.push(id);
                        }
                        None => add(self, &mut r, &mut seen, v, d.arg_span(i)),
                    },
                }
            }
        }
        if server_names {
            // The server's own level is the one before http's, at the end of the chain.
            let server = chain.len().checked_sub(2).and_then(|i| chain.get(i));
            let names: Vec<(String, Span)> = server
                .map(|l| l.get("server_name"))
                .unwrap_or_default()
                .iter()
                .flat_map(|d| {
                    d.args
                        .iter()
                        .enumerate()
                        .map(|(i, a)| (a.value.clone(), d.arg_span(i)))
                })
                .collect();
            for (name, span) in names {
                if let Some(re) = name.strip_prefix('~') {
                    let caseless = re.bytes().any(|b| b.is_ascii_uppercase());
                    let id = self.regex(re, caseless, span);
                    r.server_name_regex.push(id);
                } else if !name.is_empty() && !seen.contains_key(&name.to_ascii_lowercase()) {
                    add(self, &mut r, &mut seen, &name, span);
                }
            }
        }
        if (r.none || r.blocked)
            && r.exact.is_empty()
            && r.leading.is_empty()
            && r.trailing.is_empty()
        {
            let d = lines[0];
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.name_span,
                    "the \"none\" or \"blocked\" referers are specified in the \"valid_referers\" directive without any valid referer",
                )
                .label("no host name here")
                .help("add the hosts whose pages may link here: valid_referers none blocked example.com;"),
            );
        }
        Some(Box::new(r))
    }

    /// A size directive whose value may have variables (`limit_rate $rate;`); 0 when unset.
    fn size_value(&mut self, chain: &[&Level<'_>], name: &str) -> SizeValue {
        let Some(d) = nearest(chain, name).first().copied() else {
            return SizeValue::Const(0);
        };
        let t = self.template(d, 0);
        if let [Part::Literal(_)] | [] = t.parts.as_slice() {
            match parse_size(arg(d, 0)) {
                Some(n) => SizeValue::Const(n),
                None => {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            d.arg_span(0),
                            format!("invalid size \"{}\" in \"{name}\"", arg(d, 0)),
                        )
                        .label("expected a size")
                        .help(format!("{name} 100k;")),
                    );
                    SizeValue::Const(0)
                }
            }
        } else {
            SizeValue::Var(t)
        }
    }

    /// `allow` and `deny` of the innermost level that has any, in order (nginx's access
    /// module keeps them in one list).
    /// The variable `set $name …` (or `auth_request_set $name …`) writes: a `set` variable,
    /// or a built-in nginx lets a script change (`$limit_rate`, `$args`); `None` (with an
    /// error) for a read-only built-in, a map's variable or a bad name.
    fn set_target(&mut self, d: &Directive) -> Option<SetTarget> {
        let name = arg(d, 0);
        let lower = name.to_ascii_lowercase();
        match lower.strip_prefix('$') {
            Some(n)
                if !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                // nginx's changeable built-ins.
                if let Some(b @ (Builtin::LimitRate | Builtin::Args)) = Builtin::from_name(n) {
                    return Some(SetTarget::Builtin(b));
                }
                if vars::is_builtin_name(n) {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            d.arg_span(0),
                            format!("the built-in variable \"${n}\" cannot be set"),
                        )
                        .label("read-only")
                        .help("choose another name"),
                    );
                    return None;
                }
                if let Some(&id) = self.map_ids.get(n) {
                    let mut e = Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("the map variable \"${n}\" cannot be set"),
                    )
                    .label("its value comes from its map")
                    .help("choose another name, or add a key to the map");
                    if let Some((_, at)) = self.map_defs.get(id as usize) {
                        e = e.also(*at, "defined by this map");
                    }
                    self.err(e);
                    return None;
                }
                Some(SetTarget::User(
                    self.user_var_ids.get(n).copied().unwrap_or(0),
                ))
            }
            _ => {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid variable name \"{name}\""),
                    )
                    .label("expected $name")
                    .help(format!("write `{} $name value;`", d.name)),
                );
                None
            }
        }
    }

    /// `satisfy`, `auth_basic`, `auth_basic_user_file`, `auth_delay`, `auth_request` and
    /// `auth_request_set` of a level chain (each inherited on its own, as nginx's).
    fn auth(&mut self, chain: &[&Level<'_>]) -> Auth {
        let first = |name: &str| nearest(chain, name).first().copied();
        let basic_realm = first("auth_basic").map(|d| self.template(d, 0));
        let basic_user_file = first("auth_basic_user_file").map(|d| self.template(d, 0));
        let request = first("auth_request")
            .map(|d| arg(d, 0))
            .filter(|u| *u != "off")
            .map(str::to_string);
        let mut request_set = Vec::new();
        for &d in nearest(chain, "auth_request_set") {
            if let Some(var) = self.set_target(d) {
                let value = self.template(d, 1);
                request_set.push(AuthSet { var, value });
            }
        }
        let jwt = self.auth_jwt(chain);
        Auth {
            jwt,
            satisfy_any: first("satisfy").is_some_and(|d| arg(d, 0) == "any"),
            basic_realm,
            basic_user_file,
            delay_ms: first("auth_delay")
                .and_then(|d| parse_time_ms(arg(d, 0)))
                .unwrap_or(0),
            request,
            request_set,
        }
    }

    /// `auth_jwt` with `auth_jwt_key_file`, `auth_jwt_type`, `auth_jwt_require` and
    /// `auth_jwt_leeway`; the key files are read and checked here (proton-run reads them
    /// again when it loads the IR).
    fn auth_jwt(&mut self, chain: &[&Level<'_>]) -> Option<Box<AuthJwt>> {
        let d = *nearest(chain, "auth_jwt").first()?;
        if d.args.len() == 1 && arg(d, 0) == "off" {
            return None;
        }
        let realm = self.template(d, 0);
        let mut token = None;
        if let Some(a) = d.args.get(1) {
            match a.value.strip_prefix("token=") {
                Some(v) if v.starts_with('$') => {
                    token = Some(self.template_with_value(d, 1, v));
                }
                _ => self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(1),
                        format!("invalid parameter \"{}\"", a.value),
                    )
                    .label("expected token=$variable")
                    .help("auth_jwt \"realm\" token=$cookie_auth;"),
                ),
            }
        }
        if let Some(t) = nearest(chain, "auth_jwt_type").first() {
            if arg(t, 0) != "signed" {
                self.err(
                    Diagnostic::error(
                        Code::Unsupported,
                        t.arg_span(0),
                        format!("auth_jwt_type {} is not supported yet", arg(t, 0)),
                    )
                    .label("Proton checks signed tokens (JWS) only")
                    .help("use auth_jwt_type signed, or leave it out"),
                );
            }
        }
        let key_files: Vec<String> = nearest(chain, "auth_jwt_key_file")
            .iter()
            .map(|k| arg(k, 0).to_string())
            .collect();
        for k in nearest(chain, "auth_jwt_key_file") {
            self.check_jwt_key_file(k);
        }
        let key_request = nearest(chain, "auth_jwt_key_request")
            .first()
            .map(|k| arg(k, 0).to_string());
        if key_files.is_empty() && key_request.is_none() {
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.span,
                    "auth_jwt has no auth_jwt_key_file or auth_jwt_key_request".to_string(),
                )
                .label("no key to verify tokens with")
                .help("add auth_jwt_key_file conf/keys.json; (a JSON Web Key set)"),
            );
        }
        let mut require = Vec::new();
        let mut require_error = 401;
        for r in nearest(chain, "auth_jwt_require") {
            for (i, a) in r.args.iter().enumerate() {
                match a.value.strip_prefix("error=") {
                    Some("401") => require_error = 401,
                    Some("403") => require_error = 403,
                    Some(_) => self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            r.arg_span(i),
                            format!("invalid parameter \"{}\"", a.value),
                        )
                        .label("expected error=401 or error=403")
                        .help("auth_jwt_require $ok error=403;"),
                    ),
                    None => require.push(self.template(r, i)),
                }
            }
        }
        let secs = |name: &str| {
            nearest(chain, name)
                .first()
                .and_then(|l| parse_time_ms(arg(l, 0)))
                .map_or(0, |ms| ms / 1000)
        };
        Some(Box::new(AuthJwt {
            realm,
            token,
            key_files,
            key_request,
            key_cache_secs: secs("auth_jwt_key_cache"),
            require,
            require_error,
            leeway_secs: secs("auth_jwt_leeway"),
        }))
    }

    /// Reads the key set of an `auth_jwt_key_file` line as proton-run will (relative to the
    /// config's directory): a broken key is an error, a key Proton cannot use a warning.
    fn check_jwt_key_file(&mut self, d: &Directive) {
        let path = arg(d, 0);
        if path.contains('$') {
            self.err(
                Diagnostic::error(
                    Code::Unsupported,
                    d.arg_span(0),
                    "auth_jwt_key_file with variables is not supported yet".to_string(),
                )
                .label("the key set is read once, when the config is loaded")
                .help("name the file without variables"),
            );
            return;
        }
        let full = self.config_dir().join(path);
        match proton_jwt::KeySet::load(&full) {
            Ok(set) => {
                for w in set.warnings() {
                    let at = format!("{path}:{}:{}: ", w.line, w.column);
                    self.err(
                        Diagnostic::warning(
                            Code::BadValue,
                            d.arg_span(0),
                            format!("{at}{}", w.message),
                        )
                        .label("this key file")
                        .help("remove the key, or give it a use Proton supports"),
                    );
                }
            }
            Err(e) => self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.arg_span(0),
                    format!("cannot use auth_jwt_key_file \"{path}\": {e}"),
                )
                .label("this key file")
                .help(
                    "give a JSON Web Key set: {\"keys\": [{\"kty\": \"RSA\", \"n\": …, \"e\": …}]}",
                ),
            ),
        }
    }

    fn access_rules(&mut self, chain: &[&Level<'_>]) -> Vec<AccessRule> {
        let Some(level) = chain
            .iter()
            .find(|l| !l.get("allow").is_empty() || !l.get("deny").is_empty())
        else {
            return Vec::new();
        };
        let mut rules = Vec::new();
        for &d in &level.list {
            if d.name != "allow" && d.name != "deny" {
                continue;
            }
            let v = arg(d, 0);
            let from = match v {
                "all" => None,
                "unix:" => Some(ClientAddr::Unix),
                _ => match parse_cidr(v) {
                    Some(c) => Some(c),
                    None => {
                        self.err(
                            Diagnostic::error(
                                Code::BadValue,
                                d.arg_span(0),
                                format!("invalid parameter \"{v}\""),
                            )
                            .label("expected an address, address/prefix, unix: or all")
                            .help(format!(
                                "{} 192.168.1.0/24; {} ::1; {} all;",
                                d.name, d.name, d.name
                            )),
                        );
                        continue;
                    }
                },
            };
            rules.push(AccessRule {
                deny: d.name == "deny",
                from,
            });
        }
        rules
    }

    /// `debug_connection address | CIDR | localhost | unix:`, read as nginx's
    /// `ngx_ptocidr` (address bits below the prefix are ignored, as nginx masks them).
    fn debug_connection(&mut self, d: &Directive) {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let v = arg(d, 0);
        let mut push = |c| self.ir.main.debug_connection.push(c);
        if v == "unix:" {
            push(ClientAddr::Unix);
            return;
        }
        if v == "localhost" {
            push(ClientAddr::Cidr {
                addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                prefix: 32,
            });
            push(ClientAddr::Cidr {
                addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                prefix: 128,
            });
            return;
        }
        match parse_cidr(v) {
            Some(c) => push(c),
            None => self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.arg_span(0),
                    format!("invalid host/address \"{v}\" in \"debug_connection\""),
                )
                .label("expected an address, address/prefix, localhost or unix:")
                .help("debug_connection 192.168.1.0/24; debug_connection ::1;"),
            ),
        }
    }

    /// `worker_cpu_affinity cpumask … | auto [cpumask]`, checked as nginx does: masks of
    /// `0` and `1` (spaces ignored), at most 1024 CPUs, `auto` with at most one mask.
    fn cpu_affinity(&mut self, d: &Directive) -> Option<CpuAffinity> {
        const MAX_CPUS: usize = 1024;
        let auto = arg(d, 0) == "auto";
        if auto && d.args.len() > 2 {
            self.err(
                Diagnostic::error(
                    Code::Arity,
                    d.arg_span(2),
                    "invalid number of arguments in \"worker_cpu_affinity\" directive",
                )
                .label("auto takes at most one mask")
                .help("worker_cpu_affinity auto; or worker_cpu_affinity auto 1010;"),
            );
            return None;
        }
        let mut masks = Vec::new();
        for (i, a) in d.args.iter().enumerate().skip(usize::from(auto)) {
            if a.value.len() > MAX_CPUS {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("\"worker_cpu_affinity\" supports up to {MAX_CPUS} CPUs only"),
                    )
                    .label("too long")
                    .help("one digit per CPU, the rightmost is CPU 0"),
                );
                return None;
            }
            let mut cpus = Vec::new();
            let mut n = 0u16;
            for c in a.value.bytes().rev() {
                match c {
                    b' ' => continue,
                    b'0' => {}
                    b'1' => cpus.push(n),
                    _ => {
                        self.err(
                            Diagnostic::error(
                                Code::BadValue,
                                d.arg_span(i),
                                format!(
                                    "invalid character \"{}\" in \"worker_cpu_affinity\"",
                                    char::from(c)
                                ),
                            )
                            .label("masks are made of 0 and 1")
                            .help("worker_cpu_affinity 01 10; (worker 1 on CPU 0, worker 2 on CPU 1) or auto"),
                        );
                        return None;
                    }
                }
                n += 1;
            }
            masks.push(cpus);
        }
        Some(if auto {
            CpuAffinity::Auto { cpus: masks.pop() }
        } else {
            CpuAffinity::Masks(masks)
        })
    }

    /// Argument checks of the directives that are accepted without effect (nginx's sizing
    /// knobs and temporary paths) and of the compression, `sub_filter` and
    /// `ssi_value_length` directives, in every block.
    fn knobs(&mut self, block: &[Directive], depth: usize) {
        if depth > crate::ast::MAX_BLOCK_DEPTH {
            return;
        }
        self.compression_checks(block);
        self.sub_filter_checks(block);
        self.ssi_checks(block);
        for d in block {
            match d.name.as_str() {
                "connection_pool_size" | "request_pool_size" => {
                    // nginx: NGX_MIN_POOL_SIZE and NGX_POOL_ALIGNMENT on 64-bit systems.
                    const MIN: u64 = 112;
                    const ALIGN: u64 = 16;
                    let msg = match parse_size(arg(d, 0)) {
                        None => Some(format!("\"{}\" directive invalid value", d.name)),
                        Some(v) if v < MIN => Some(format!("must be no less than {MIN}")),
                        Some(v) if v % ALIGN != 0 => Some(format!("must be a multiple of {ALIGN}")),
                        Some(_) => None,
                    };
                    if let Some(m) = msg {
                        self.err(
                            Diagnostic::error(
                                Code::BadValue,
                                d.arg_span(0),
                                format!("\"{}\" {m}", d.name),
                            )
                            .label("here")
                            .help("accepted for nginx compatibility, with no effect: it can be removed"),
                        );
                    }
                }
                name if name.ends_with("_temp_path") => {
                    let mut total = 0u64;
                    for i in 1..d.args.len() {
                        match parse_number::<u64>(arg(d, i)) {
                            Some(l @ 1..=10) => total += l,
                            _ => total = u64::MAX,
                        }
                        if total > 10 {
                            self.err(
                                Diagnostic::error(
                                    Code::BadValue,
                                    d.arg_span(i),
                                    format!("\"{name}\" directive invalid value"),
                                )
                                .label("levels are digit counts of at least 1, at most 10 in all")
                                .help(format!("{name} /spool/{name} 1 2;")),
                            );
                            break;
                        }
                    }
                }
                _ => {}
            }
            if let Some(b) = &d.block {
                if matches!(d.name.as_str(), "http" | "server" | "location") {
                    self.knobs(b, depth + 1);
                }
            }
        }
    }

    /// `resolver address ... [valid=time] [ipv4=on|off] [ipv6=on|off] [status_zone=name]`:
    /// the index of its [`Resolver`] (each directive one, numbered once).
    fn resolver(&mut self, d: &Directive) -> Option<u32> {
        if let Some(id) = self.resolver_ids.get(&d.name_span) {
            return *id;
        }
        let id = self.resolver_new(d);
        self.resolver_ids.insert(d.name_span, id);
        id
    }

    fn resolver_new(&mut self, d: &Directive) -> Option<u32> {
        let mut r = Resolver {
            servers: Vec::new(),
            valid_secs: None,
            ipv4: true,
            ipv6: true,
        };
        let mut ok = true;
        for a in &d.args {
            let v = a.value.as_str();
            let flag = |v: &str| match v {
                "on" => Some(true),
                "off" => Some(false),
                _ => None,
            };
            let bad = if let Some(t) = v.strip_prefix("valid=") {
                match parse_time_secs(t).and_then(|s| u32::try_from(s).ok()) {
                    Some(s) => {
                        r.valid_secs = Some(s);
                        None
                    }
                    None => Some(format!("invalid parameter \"{v}\"")),
                }
            } else if let Some(f) = v.strip_prefix("ipv4=") {
                flag(f)
                    .map(|b| r.ipv4 = b)
                    .map_or_else(|| Some(format!("invalid parameter \"{v}\"")), |_| None)
            } else if let Some(f) = v.strip_prefix("ipv6=") {
                flag(f)
                    .map(|b| r.ipv6 = b)
                    .map_or_else(|| Some(format!("invalid parameter \"{v}\"")), |_| None)
            } else if v.starts_with("status_zone=") {
                // NGINX Plus's statistics zone: accepted, no statistics kept.
                None
            } else {
                match values::resolver_server(v) {
                    Ok(s) => {
                        r.servers.push(s);
                        None
                    }
                    Err(e) => Some(e),
                }
            };
            if let Some(msg) = bad {
                ok = false;
                self.err(
                    Diagnostic::error(Code::BadValue, a.span, msg)
                        .label("here")
                        .help("resolver 127.0.0.53 [::1]:5353 valid=30s ipv6=off;"),
                );
            }
        }
        if ok && !r.ipv4 && !r.ipv6 {
            ok = false;
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.name_span,
                    "\"ipv4\" and \"ipv6\" cannot both be \"off\"",
                )
                .label("here")
                .help("keep one address family: ipv6=off or ipv4=off"),
            );
        }
        if ok && r.servers.is_empty() {
            ok = false;
            self.err(
                Diagnostic::error(Code::Arity, d.name_span, "no name servers in \"resolver\"")
                    .label("here")
                    .help("resolver 127.0.0.53;"),
            );
        }
        if !ok {
            return None;
        }
        self.ir.resolvers.push(r);
        Some(self.ir.resolvers.len() as u32 - 1)
    }

    /// `open_log_file_cache max=N [inactive=time] [min_uses=N] [valid=time] | off`, checked
    /// as nginx does (max= is required).
    fn open_log_file_cache(&mut self, d: &Directive) -> Option<LogFileCache> {
        if arg(d, 0) == "off" && d.args.len() == 1 {
            return Some(LogFileCache::Off);
        }
        let (mut max, mut inactive_ms, mut min_uses, mut valid_ms) = (None, 10_000, 1, 60_000);
        for a in &d.args {
            let v = a.value.as_str();
            let ok = if let Some(n) = v.strip_prefix("max=") {
                max = parse_number::<u32>(n).filter(|n| *n > 0);
                max.is_some()
            } else if let Some(t) = v.strip_prefix("inactive=") {
                parse_time_secs(t).map(|s| inactive_ms = s * 1000).is_some()
            } else if let Some(n) = v.strip_prefix("min_uses=") {
                parse_number::<u32>(n).map(|n| min_uses = n).is_some()
            } else if let Some(t) = v.strip_prefix("valid=") {
                parse_time_secs(t).map(|s| valid_ms = s * 1000).is_some()
            } else {
                false
            };
            if !ok {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("invalid \"open_log_file_cache\" parameter \"{v}\""),
                    )
                    .label("here")
                    .help("open_log_file_cache max=1000 inactive=20s valid=1m min_uses=2; or off"),
                );
                return None;
            }
        }
        let Some(max) = max else {
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.name_span,
                    "\"max\" parameter is required in \"open_log_file_cache\"",
                )
                .label("no max=")
                .help("open_log_file_cache max=1000;"),
            );
            return None;
        };
        Some(LogFileCache::On {
            max,
            inactive_ms,
            min_uses,
            valid_ms,
        })
    }

    /// nginx's log destinations other than files: not supported yet (an error, never a file
    /// of that name).
    fn log_destination_unsupported(&mut self, d: &Directive) -> bool {
        let v = arg(d, 0);
        let Some(kind) = ["syslog:", "memory:"]
            .into_iter()
            .find(|p| v.starts_with(p))
        else {
            return false;
        };
        self.err(
            Diagnostic::error(
                Code::Unsupported,
                d.arg_span(0),
                format!("\"{kind}\" log destinations are not supported yet"),
            )
            .label("not a file")
            .help("log to a file (or `stderr` for error_log)"),
        );
        true
    }

    fn error_log(&mut self, d: &Directive) -> Option<ErrorLog> {
        if self.log_destination_unsupported(d) {
            return None;
        }
        let level = match d.args.get(1).map(|a| a.value.as_str()) {
            None => LogLevel::Error,
            Some(l) => match LogLevel::from_name(l) {
                Some(l) => l,
                None => {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            d.arg_span(1),
                            format!("invalid log level \"{l}\""),
                        )
                        .label("unknown level")
                        .help("levels: debug, info, notice, warn, error, crit, alert, emerg"),
                    );
                    return None;
                }
            },
        };
        Some(ErrorLog {
            path: arg(d, 0).to_string(),
            level,
        })
    }

    fn http(&mut self, http: &Directive) {
        let h = http.children();
        self.http_levels.push(h.as_ptr_range());
        for s in all(h, "server") {
            let mut names = HashSet::default();
            self.collect_captures(s.children(), 0, &mut names);
            self.all_captures.extend(names.iter().cloned());
            self.server_captures.push(names);
        }
        // The http level's own regexes (proxy_redirect …): their groups are seen by the
        // templates of the http level, which are compiled with every server's names.
        let mut names = HashSet::default();
        self.collect_captures(h, 0, &mut names);
        self.all_captures.extend(names);
        self.maps(h);
        for d in all(h, "log_format") {
            self.log_format(d);
        }
        for d in all(h, "charset_map") {
            self.charset_map(d);
        }
        self.health_matches(h);
        for d in all(h, "upstream") {
            // nginx compares upstream names case-insensitively.
            let name = arg(d, 0).to_ascii_lowercase();
            if let Some((prev, first)) = self.upstream_names.get(&name) {
                let prev_name = self.ir.upstreams[prev.0 as usize].name.clone();
                self.err(
                    Diagnostic::error(
                        Code::Duplicate,
                        d.arg_span(0),
                        format!("duplicate upstream \"{}\"", arg(d, 0)),
                    )
                    .label("defined again here")
                    .also(
                        *first,
                        format!("\"{prev_name}\" first defined here (names are case-insensitive)"),
                    )
                    .help("give each upstream block its own name"),
                );
                continue;
            }
            let u = self.upstream(d, h);
            self.ir.upstreams.push(u);
            self.upstream_names.insert(
                name,
                (
                    UpstreamId(self.ir.upstreams.len() as u32 - 1),
                    d.arg_span(0),
                ),
            );
        }
        self.upstream_zones(h);
        self.limit_zones(h);
        self.cache_zones(h);
        let servers: Vec<&Directive> = all(h, "server").collect();
        // The http level as seen by inheritance: its settings without the server and
        // upstream blocks, so lookups do not walk thousands of blocks per location.
        let http_level = Level::new(h);
        if servers.is_empty() && !self.diags.has_errors() {
            self.err(
                Diagnostic::error(Code::Conflict, http.name_span, "http block has no server")
                    .label("nothing listens")
                    .help("add `server { listen 8080; … }`"),
            );
        }
        let mut listens: Vec<(String, ServerId, ListenOpts, Span)> = Vec::new();
        for s in servers {
            let id = ServerId(self.ir.servers.len() as u32);
            self.current_server = Some(id.0 as usize);
            let opts = self.server(s, &http_level, id);
            self.current_server = None;
            listens.extend(opts.into_iter().map(|(addr, o, sp)| (addr, id, o, sp)));
        }
        let spans: Vec<(String, ServerId, Span)> = listens
            .iter()
            .map(|(a, s, _, sp)| (a.clone(), *s, *sp))
            .collect();
        self.listeners(listens);
        // `ssl on` in an address's default server makes the address TLS (nginx 1.22).
        for l in &mut self.ir.listeners {
            l.ssl |= self.ssl_on.get(l.names.default.0 as usize) == Some(&true);
        }
        self.check_tls_listeners(&spans);
        self.check_named_refs();
    }

    fn log_format(&mut self, d: &Directive) {
        let name = arg(d, 0).to_string();
        let mut rest = 1;
        let mut escape = LogEscape::Default;
        if let Some(e) = arg(d, 1).strip_prefix("escape=") {
            rest = 2;
            escape = match e {
                "default" => LogEscape::Default,
                "json" => LogEscape::Json,
                "none" => LogEscape::None,
                _ => {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            d.arg_span(1),
                            format!("unknown escape \"{e}\""),
                        )
                        .label("here")
                        .help("escape=default, escape=json or escape=none"),
                    );
                    LogEscape::Default
                }
            };
        }
        if name == "combined" || self.ir.log_formats.iter().any(|f| f.name == name) {
            let mut e = Diagnostic::error(
                Code::Duplicate,
                d.arg_span(0),
                format!("duplicate log_format name \"{name}\""),
            )
            .label("already defined");
            e = match self.log_format_spans.iter().find(|(n, _)| *n == name) {
                Some((_, first)) => e
                    .also(*first, "first defined here")
                    .help("give each log_format its own name"),
                None => e.help("\"combined\" is predefined; choose another name"),
            };
            self.err(e);
            return;
        }
        self.log_format_spans.push((name.clone(), d.arg_span(0)));
        let mut template = Template::default();
        for i in rest..d.args.len() {
            template.parts.extend(self.template(d, i).parts);
        }
        if rest >= d.args.len() {
            self.err(
                Diagnostic::error(Code::Arity, d.name_span, "log_format needs a format string")
                    .label("missing format")
                    .help("log_format name '$remote_addr $request $status';"),
            );
        }
        self.ir.log_formats.push(LogFormat {
            name,
            escape,
            template,
        });
    }

    /// `zone NAME [SIZE]` in upstream blocks, checked as nginx checks it: a size of at least
    /// 32k, one size per name, and every zone named somewhere with a size. Proton keeps
    /// every group's run-time state (connections, failures, health) in memory shared by all
    /// workers whether or not it has a zone, so the zone changes nothing else.
    fn upstream_zones(&mut self, http: &[Directive]) {
        let mut sized: HashMap<String, (u64, Span)> = HashMap::default();
        let mut unsized_refs: Vec<(String, Span)> = Vec::new();
        for u in all(http, "upstream") {
            for z in all(u.children(), "zone") {
                let name = arg(z, 0).to_string();
                if z.args.len() < 2 {
                    unsized_refs.push((name, z.arg_span(0)));
                    continue;
                }
                match crate::directives::parse_size(arg(z, 1)) {
                    Some(n) if n >= 32768 => match sized.get(&name) {
                        Some(&(had, first)) if had != n => self.err(
                            Diagnostic::error(
                                Code::Conflict,
                                z.arg_span(1),
                                format!("the size {n} of shared memory zone \"{name}\" conflicts with already declared size {had}"),
                            )
                            .label("another size")
                            .also(first, "declared here")
                            .help("give the zone one size, or name another zone"),
                        ),
                        Some(_) => {}
                        None => {
                            sized.insert(name, (n, z.arg_span(1)));
                        }
                    },
                    Some(_) => self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            z.arg_span(1),
                            format!("zone \"{name}\" is too small"),
                        )
                        .label("at least 32k")
                        .help("zone backend 64k;"),
                    ),
                    None => self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            z.arg_span(1),
                            format!("invalid zone size \"{}\"", arg(z, 1)),
                        )
                        .label("not a size")
                        .help("zone backend 64k;"),
                    ),
                }
            }
        }
        for (name, span) in unsized_refs {
            if !sized.contains_key(&name) {
                self.err(
                    Diagnostic::error(
                        Code::Conflict,
                        span,
                        format!("zero size shared memory zone \"{name}\""),
                    )
                    .label("no upstream gives this zone a size")
                    .help("give the size where the zone is first named: zone NAME 64k;"),
                );
            }
        }
    }

    fn upstream(&mut self, d: &Directive, http: &[Directive]) -> Upstream {
        let b = d.children();
        let mut u = Upstream {
            name: arg(d, 0).to_string(),
            explicit: true,
            servers: vec![],
            balance: Balance::RoundRobin,
            keepalive: 0,
            keepalive_timeout_ms: 60_000,
            keepalive_requests: 1000,
            keepalive_time_ms: 3_600_000,
            health_check: None,
            resolver: None,
            resolver_timeout_ms: 30_000,
        };
        for s in all(b, "server") {
            if let Some(srv) = self.upstream_server(s) {
                u.servers.push(srv);
            }
        }
        if u.servers.is_empty() && all(b, "server").next().is_none() {
            self.err(
                Diagnostic::error(
                    Code::Conflict,
                    d.arg_span(0),
                    format!("no servers are inside upstream \"{}\"", u.name),
                )
                .label("empty upstream")
                .help("add `server 127.0.0.1:8080;` lines"),
            );
        }
        self.upstream_resolve(d, http, &mut u);
        if let Some(k) = first(b, "keepalive") {
            u.keepalive = parse_number(arg(k, 0)).unwrap_or(0);
            if u.keepalive == 0 {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        k.arg_span(0),
                        "invalid value \"0\" in \"keepalive\" directive",
                    )
                    .label("must be at least 1")
                    .help(
                        "remove `keepalive` to disable the pool, or cache at least one connection",
                    ),
                );
            }
        }
        if let Some(k) = first(b, "keepalive_timeout") {
            u.keepalive_timeout_ms = parse_time_ms(arg(k, 0)).unwrap_or(60_000);
        }
        if let Some(k) = first(b, "keepalive_requests") {
            u.keepalive_requests = parse_number(arg(k, 0)).unwrap_or(1000);
        }
        if let Some(k) = first(b, "keepalive_time") {
            u.keepalive_time_ms = parse_time_ms(arg(k, 0)).unwrap_or(3_600_000);
        }
        if let Some(h) = first(b, "health_check") {
            u.health_check = self.health_check(h);
        }
        let methods: Vec<&Directive> = b
            .iter()
            .filter(|x| {
                matches!(
                    x.name.as_str(),
                    "least_conn" | "ip_hash" | "hash" | "random" | "least_time"
                )
            })
            .collect();
        if let [a, b2, ..] = methods.as_slice() {
            self.err(
                Diagnostic::error(
                    Code::Duplicate,
                    b2.name_span,
                    format!("load balancing method redefined by \"{}\"", b2.name),
                )
                .label("second method")
                .also(a.name_span, "first method")
                .help("an upstream uses one balancing method"),
            );
        }
        if let Some(m) = methods
            .first()
            .filter(|m| matches!(m.name.as_str(), "ip_hash" | "hash" | "random"))
        {
            for srv in all(b, "server") {
                if let Some(a) = srv.args.iter().find(|a| a.value == "backup") {
                    self.err(
                        Diagnostic::error(
                            Code::Conflict,
                            a.span,
                            format!(
                                "balancing method \"{}\" does not support parameter \"backup\"",
                                m.name
                            ),
                        )
                        .label("backup not allowed here")
                        .also(m.name_span, "balancing method set here")
                        .help("remove `backup`, or use round-robin or least_conn"),
                    );
                }
            }
        }
        if let Some(m) = methods.first() {
            u.balance = match m.name.as_str() {
                "least_conn" => Balance::LeastConn,
                "ip_hash" => Balance::IpHash,
                "hash" => {
                    let consistent = match m.args.get(1).map(|a| a.value.as_str()) {
                        None => false,
                        Some("consistent") => true,
                        Some(o) => {
                            self.err(
                                Diagnostic::error(
                                    Code::BadValue,
                                    m.arg_span(1),
                                    format!("invalid parameter \"{o}\""),
                                )
                                .label("here")
                                .help(
                                    match did_you_mean(o, ["consistent"]) {
                                        Some(_) => "did you mean \"consistent\"?".to_string(),
                                        None => "write `hash $key consistent;` or `hash $key;`"
                                            .to_string(),
                                    },
                                ),
                            );
                            false
                        }
                    };
                    Balance::Hash {
                        key: self.template(m, 0),
                        consistent,
                    }
                }
                "least_time" => self.least_time(m),
                _ => self.random(m),
            };
        }
        u
    }

    /// `server … resolve` in upstream `d`: as nginx, the group must be in a shared zone and
    /// have a `resolver` (its own, else the http level's); `resolver_timeout` likewise. A
    /// `resolve` on an address literal or a unix socket changes nothing.
    fn upstream_resolve(&mut self, d: &Directive, http: &[Directive], u: &mut Upstream) {
        let b = d.children();
        let resolving =
            all(b, "server").find(|s| s.args.iter().skip(1).any(|a| a.value == "resolve"));
        if let Some(t) = first(b, "resolver_timeout").or_else(|| first(http, "resolver_timeout")) {
            u.resolver_timeout_ms = parse_time_ms(arg(t, 0)).unwrap_or(30_000);
        }
        let Some(srv) = resolving else {
            if let Some(r) = first(b, "resolver") {
                // Checked (and numbered) all the same.
                let _ = self.resolver(r);
            }
            return;
        };
        if first(b, "zone").is_none() {
            self.err(
                Diagnostic::error(
                    Code::Conflict,
                    srv.name_span,
                    format!(
                        "resolving names at run time requires upstream \"{}\" to be in shared memory",
                        u.name
                    ),
                )
                .label("a `resolve` server")
                .help("add `zone NAME 64k;` to the upstream block"),
            );
        }
        match first(b, "resolver").or_else(|| first(http, "resolver")) {
            Some(r) => u.resolver = self.resolver(r),
            None => self.err(
                Diagnostic::error(
                    Code::Conflict,
                    srv.name_span,
                    format!(
                        "no resolver defined to resolve names at run time in upstream \"{}\"",
                        u.name
                    ),
                )
                .label("a `resolve` server")
                .help("add `resolver 127.0.0.53;` to the upstream block or the http block"),
            ),
        }
    }

    /// Lowers one server block. Returns its listen addresses.
    fn server(
        &mut self,
        s: &Directive,
        http: &Level<'_>,
        id: ServerId,
    ) -> Vec<(String, ListenOpts, Span)> {
        let body = s.children();
        let mut names = Vec::new();
        let mut name_spans = Vec::new();
        for d in all(body, "server_name") {
            for a in &d.args {
                // Names are case-insensitive; a `~regex` is kept as written (nginx decides
                // from its letters whether it matches caselessly).
                names.push(if a.value.starts_with('~') {
                    a.value.clone()
                } else {
                    a.value.to_ascii_lowercase()
                });
                name_spans.push(a.span);
            }
        }
        if names.is_empty() {
            names.push(String::new());
            name_spans.push(s.name_span);
        }
        let mut listens = Vec::new();
        for d in all(body, "listen") {
            listens.extend(self.listen(d));
        }
        if listens.is_empty() {
            listens.push(("0.0.0.0:80".to_string(), ListenOpts::default(), s.name_span));
        }
        let source = self.source_ref(s.name_span);
        self.ir.servers.push(Server {
            names: names.clone(),
            source,
            script: vec![],
            default_location: LocationId(0),
            tree: LocationTree::default(),
            named: vec![],
            tls: None,
        });
        self.server_names.push((names, name_spans));
        let server_level = Level::new(body);
        let chain: Vec<&Level<'_>> = vec![&server_level, http];
        let script = self.script(&chain, id, LocationKind::Server, "", &mut Vec::new());
        let conf = self.conf(&chain, id, LocationKind::Server, "", None, None);
        let server_settings = conf.settings;
        let default_location = self.push_location(Location {
            kind: LocationKind::Server,
            name: TextRef::default(),
            server: id,
            source,
            nested: None,
            conf,
        });
        let (tree, named) = self.location_level(body, &chain, id, None, server_settings, 0);
        let srv = &mut self.ir.servers[id.0 as usize];
        srv.script = script;
        srv.default_location = default_location;
        srv.tree = tree;
        srv.named = named;
        let tls = self.server_tls(&chain);
        self.ir.servers[id.0 as usize].tls = tls;
        let ssl_on = self.ssl_directive(&chain);
        self.ssl_on.push(ssl_on);
        listens
    }

    fn push_location(&mut self, l: Location) -> LocationId {
        self.ir.locations.push(l);
        LocationId(self.ir.locations.len() as u32 - 1)
    }

    /// Lowers the `location` blocks of one level. `parent` is the enclosing location's
    /// (kind, path, span) when nested.
    fn location_level(
        &mut self,
        level: &[Directive],
        chain: &[&Level<'_>],
        server: ServerId,
        parent: Option<(LocationKind, &str, Span)>,
        parent_settings: SettingsId,
        depth: usize,
    ) -> (LocationTree, Vec<(String, LocationId)>) {
        let mut trie = TrieBuilder::new();
        let mut named = Vec::new();
        let mut seen_exact: HashMap<String, Span> = HashMap::default();
        let mut seen_prefix: HashMap<String, Span> = HashMap::default();
        let mut seen_regex: HashMap<(String, bool), Span> = HashMap::default();
        let mut seen_named: HashSet<String> = HashSet::default();
        for d in all(level, "location") {
            let Some((kind, path)) = self.location_head(d) else {
                continue;
            };
            let path_span = d.arg_span(d.args.len().saturating_sub(1));
            if let Some((pk, ppath, pspan)) = parent {
                let msg = match pk {
                    LocationKind::Exact => Some((
                        format!("location \"{path}\" cannot be inside the exact location \"{ppath}\""),
                        "an exact location cannot contain locations; move this one to the server level",
                    )),
                    LocationKind::Named => Some((
                        format!("location \"{path}\" cannot be inside the named location \"{ppath}\""),
                        "a named location cannot contain locations; move this one to the server level",
                    )),
                    _ if kind == LocationKind::Named => Some((
                        format!("named location \"{path}\" can be on the server level only"),
                        "move the named location out to the server block",
                    )),
                    // nginx compares the nested path with the enclosing location's name as
                    // written, a regex's source included: a prefix or exact location inside
                    // `location ~ ^/a` is "outside" it.
                    _ if matches!(
                        kind,
                        LocationKind::Prefix | LocationKind::PrefixNoRegex | LocationKind::Exact
                    ) && !path.starts_with(ppath) =>
                    {
                        Some((
                            format!("location \"{path}\" is outside location \"{ppath}\""),
                            if matches!(pk, LocationKind::Regex | LocationKind::RegexCaseless) {
                                "inside a regex location nest regex locations only (nginx compares the path with the regex text)"
                            } else {
                                "a nested prefix location must start with the enclosing location's path"
                            },
                        ))
                    }
                    _ => None,
                };
                if let Some((msg, help)) = msg {
                    self.err(
                        Diagnostic::error(Code::Conflict, path_span, msg)
                            .label("not allowed here")
                            .also(pspan, "enclosing location")
                            .help(help),
                    );
                    if kind == LocationKind::Named {
                        // Known, though misplaced: references to it are not reported again.
                        self.misplaced_named.push((server, path.clone()));
                    }
                    continue;
                }
            }
            if depth >= MAX_NESTING {
                self.err(
                    Diagnostic::error(
                        Code::Conflict,
                        d.name_span,
                        format!("locations nested too deeply (more than {MAX_NESTING} levels)"),
                    )
                    .label("this location is too deep")
                    .help("flatten the nesting; deep nesting is rarely needed, prefer sibling locations"),
                );
                continue;
            }
            let mut own_level = Level::new(d.children());
            own_level.location = Some(path.clone());
            let mut inner_chain = Vec::with_capacity(chain.len() + 1);
            inner_chain.push(&own_level);
            inner_chain.extend_from_slice(chain);
            self.loc_stack.push(LocFrame {
                kind,
                path: path.clone(),
                internal: first(d.children(), "internal").is_some(),
            });
            let conf = self.conf(
                &inner_chain,
                server,
                kind,
                &path,
                Some(d),
                Some(parent_settings),
            );
            let own_settings = conf.settings;
            let name = self.ir.push_text(&path);
            let id = self.push_location(Location {
                kind,
                name,
                server,
                source: self.source_ref(d.name_span),
                nested: None,
                conf,
            });
            self.add_header_trap(&inner_chain, d);
            let static_kind = matches!(
                kind,
                LocationKind::Exact | LocationKind::Prefix | LocationKind::PrefixNoRegex
            );
            // nginx accepts a prefix or exact location inside a regex location when its path
            // starts with the regex text, but never builds the prefix tree of a regex
            // location: such a location is never selected.
            let in_regex = static_kind
                && parent.is_some_and(|(pk, _, _)| {
                    matches!(pk, LocationKind::Regex | LocationKind::RegexCaseless)
                });
            if in_regex {
                self.err(
                    Diagnostic::warning(
                        Code::UnreachableLocation,
                        path_span,
                        format!(
                            "location \"{}\" can never be selected",
                            location_label(kind, &path)
                        ),
                    )
                    .label(
                        "nginx never looks up prefix or exact locations nested in a regex location",
                    )
                    .also(
                        parent.map_or(path_span, |(_, _, sp)| sp),
                        "the enclosing regex location",
                    )
                    .help("move it out of the regex location, or make it a regex location"),
                );
            } else if static_kind {
                if let Some(why) = never_matches(&path) {
                    self.err(
                        Diagnostic::warning(
                            Code::UnreachableLocation,
                            path_span,
                            format!("location \"{}\" can never be selected", location_label(kind, &path)),
                        )
                        .label(why)
                        .help("request URIs are normalised before matching (they start with \"/\", have no \"//\", \".\" or \"..\" segments); fix the path"),
                    );
                }
            }
            let dup_err = |this: &mut Self, first: Span| {
                this.err(
                    Diagnostic::error(
                        Code::Duplicate,
                        path_span,
                        format!("duplicate location \"{}\"", location_label(kind, &path)),
                    )
                    .label("defined again here")
                    .also(first, "first defined here")
                    .help("merge the two blocks; nginx refuses duplicate locations"),
                );
            };
            match kind {
                LocationKind::Exact | LocationKind::Prefix | LocationKind::PrefixNoRegex
                    if in_regex => {}
                LocationKind::Exact => {
                    if let Some(first) = seen_exact.get(&path) {
                        dup_err(self, *first);
                    } else {
                        seen_exact.insert(path.clone(), path_span);
                        trie.add_exact(&path, id);
                    }
                }
                LocationKind::Prefix | LocationKind::PrefixNoRegex => {
                    if let Some(first) = seen_prefix.get(&path) {
                        dup_err(self, *first);
                    } else {
                        seen_prefix.insert(path.clone(), path_span);
                        trie.add_prefix(&path, id, kind == LocationKind::PrefixNoRegex);
                    }
                }
                LocationKind::Regex | LocationKind::RegexCaseless => {
                    let caseless = kind == LocationKind::RegexCaseless;
                    let re = self.regex(&path, caseless, path_span);
                    if let Some(first) = seen_regex.get(&(path.clone(), caseless)) {
                        self.err(
                            Diagnostic::warning(
                                Code::UnreachableLocation,
                                path_span,
                                format!("location \"{path}\" can never be selected"),
                            )
                            .label("an identical regex location comes first")
                            .also(*first, "this one always matches first")
                            .help("remove one of them or merge their settings"),
                        );
                    } else {
                        seen_regex.insert((path.clone(), caseless), path_span);
                    }
                    trie.add_regex(re, id);
                }
                // `if` blocks are not `location` blocks: never in a tree.
                LocationKind::If | LocationKind::LimitExcept => {}
                LocationKind::Named => {
                    if !seen_named.insert(path.clone()) {
                        self.err(
                            Diagnostic::error(
                                Code::Duplicate,
                                path_span,
                                format!("duplicate location \"{}\"", location_label(kind, &path)),
                            )
                            .label("defined again here")
                            .help("give each named location its own name"),
                        );
                    } else {
                        named.push((path.clone(), id));
                    }
                    self.named_defs.push((server, path.clone(), path_span));
                }
                LocationKind::Server => {}
            }
            let (sub, sub_named) = self.location_level(
                d.children(),
                &inner_chain,
                server,
                Some((kind, &path, path_span)),
                own_settings,
                depth + 1,
            );
            named.extend(sub_named);
            self.ir.locations[id.0 as usize].nested =
                (!sub.nodes.is_empty() || !sub.regex.is_empty()).then(|| Box::new(sub));
            self.loc_stack.pop();
        }
        // A prefix location with the same path as an exact one, and nothing nested, still
        // matches longer URIs, so it is reachable; only identical regexes are flagged above.
        (trie.finish(), named)
    }

    /// Parses `location [modifier] path` / `location @name`.
    fn location_head(&mut self, d: &Directive) -> Option<(LocationKind, String)> {
        match location_head_of(&d.args) {
            Some((LocationKind::Named, "@")) => {
                self.err(
                    Diagnostic::error(Code::BadValue, d.arg_span(0), "empty named location")
                        .label("here")
                        .help("write location @name { … }"),
                );
                None
            }
            Some((kind, path)) => Some((kind, path.to_string())),
            None => {
                if let [m, _] = d.args.as_slice() {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            m.span,
                            format!("invalid location modifier \"{}\"", m.value),
                        )
                        .label("unknown modifier")
                        .help("modifiers are =, ^~, ~ and ~*"),
                    );
                }
                None
            }
        }
    }

    /// The rewrite-phase script of the innermost level of `chain` (not inherited). An `if`
    /// in a location gets an anonymous location of kind `If` (the enclosing location's
    /// settings plus the block's own, as nginx's); its id goes to `if_ids`.
    fn script(
        &mut self,
        chain: &[&Level<'_>],
        server: ServerId,
        kind: LocationKind,
        path: &str,
        if_ids: &mut Vec<LocationId>,
    ) -> Vec<ScriptOp> {
        let mut ops = Vec::new();
        let Some(level) = chain.first() else {
            return ops;
        };
        for &d in &level.list {
            match d.name.as_str() {
                "break" => ops.push(ScriptOp::Break),
                "if" => {
                    if let Some(op) = self.if_op(d, chain, server, kind, path, if_ids) {
                        ops.push(op);
                    }
                }
                "return" => {
                    if let Some(op) = self.return_op(d) {
                        ops.push(op);
                    }
                }
                "rewrite" => {
                    if let Some(op) = self.rewrite_op(d) {
                        ops.push(op);
                    }
                }
                "set" => match self.set_target(d) {
                    Some(SetTarget::User(var)) => {
                        let value = self.template(d, 1);
                        ops.push(ScriptOp::Set { var, value });
                    }
                    Some(SetTarget::Builtin(var)) => {
                        let value = self.template(d, 1);
                        ops.push(ScriptOp::SetBuiltin { var, value });
                    }
                    None => {}
                },
                _ => {}
            }
        }
        ops
    }

    /// `if (condition) { … }` at the innermost level of `chain`.
    fn if_op(
        &mut self,
        d: &Directive,
        chain: &[&Level<'_>],
        server: ServerId,
        kind: LocationKind,
        path: &str,
        if_ids: &mut Vec<LocationId>,
    ) -> Option<ScriptOp> {
        let cond = match cond::parse(&d.args) {
            Ok(c) => c,
            Err(e) => {
                self.err(
                    Diagnostic::error(Code::BadValue, d.arg_span(e.arg), e.message)
                        .label("here")
                        .help("conditions: ($var), ($var = text), ($var != text), ($var ~ regex) with ~, ~*, !~, !~*, (-f path) with -f, -d, -e, -x and !-f…"),
                );
                return None;
            }
        };
        let span = |this: &Self, o: &cond::Operand<'_>| {
            let _ = this;
            d.args.get(o.arg).map_or(d.name_span, |a| a.span)
        };
        let cond = match cond {
            cond::Cond::Value(v) => {
                let at = span(self, &v);
                Condition::Value(self.template_of(d, v.text, at, None))
            }
            cond::Cond::Equals {
                left,
                right,
                negate,
            } => {
                let (la, ra) = (span(self, &left), span(self, &right));
                Condition::Equals {
                    left: self.template_of(d, left.text, la, None),
                    right: self.template_of(d, right.text, ra, None),
                    negate,
                }
            }
            cond::Cond::Matches {
                left,
                regex,
                caseless,
                negate,
            } => {
                let (la, ra) = (span(self, &left), span(self, &regex));
                Condition::Matches {
                    left: self.template_of(d, left.text, la, None),
                    regex: self.regex(regex.text, caseless, ra),
                    negate,
                }
            }
            cond::Cond::File { test, path, negate } => {
                let at = span(self, &path);
                Condition::File {
                    test,
                    path: self.template_of(d, path.text, at, None),
                    negate,
                }
            }
        };
        if kind != LocationKind::Server {
            if let Some(tf) = chain.first().and_then(|l| l.first("try_files")) {
                self.err(
                    Diagnostic::warning(
                        Code::IfDropsTryFiles,
                        d.name_span,
                        "when this condition holds, the location's try_files does not apply",
                    )
                    .label("the request takes this block's configuration, which has no try_files")
                    .also(tf.name_span, "not used then")
                    .help("test with `if` in the server block, or use a map and try_files alone (nginx's \"if is evil\")"),
                );
            }
        }
        let if_level = Level::new(d.children());
        let (then, location) = if kind == LocationKind::Server {
            // In a server block only rewrite-module directives may be written in `if`, and
            // the location is chosen afterwards anyway: no configuration of its own.
            let then = self.script(&[&if_level], server, kind, path, if_ids);
            (then, None)
        } else {
            let mut conf = self.block_conf(d, &if_level, chain, server, LocationKind::If, path);
            let then = std::mem::take(&mut conf.script);
            let name = self.ir.push_text(path);
            let id = self.push_location(Location {
                kind: LocationKind::If,
                name,
                server,
                source: self.source_ref(d.name_span),
                nested: None,
                conf,
            });
            if_ids.push(id);
            (then, Some(id))
        };
        Some(ScriptOp::If {
            cond,
            then,
            location,
            source: self.source_ref(d.name_span),
        })
    }

    /// The effective settings of one location, nginx inheritance over `chain`
    /// (innermost level first).
    fn conf(
        &mut self,
        chain: &[&Level<'_>],
        server: ServerId,
        kind: LocationKind,
        path: &str,
        loc: Option<&Directive>,
        inherited: Option<SettingsId>,
    ) -> LocationConf {
        let own = chain[0];
        let mut if_ids = Vec::new();
        let script = if kind == LocationKind::Server {
            Vec::new()
        } else {
            self.script(chain, server, kind, path, &mut if_ids)
        };
        // root and alias are one setting: the nearest level with either wins. An inherited
        // alias keeps the prefix of the location that declared it, as in nginx.
        let mut root = Template::literal("html");
        let mut alias = None;
        for (k, level) in chain.iter().enumerate() {
            // Both in one level is an error reported below; either may then be used.
            if let Some(d) = level
                .get("alias")
                .last()
                .or_else(|| level.get("root").last())
                .copied()
            {
                let t = self.template(d, 0);
                if d.name == "root" {
                    root = t;
                } else {
                    let declared_in = self
                        .loc_stack
                        .len()
                        .checked_sub(k + 1)
                        .and_then(|i| self.loc_stack.get(i));
                    let prefix = match declared_in {
                        Some(f)
                            if !matches!(
                                f.kind,
                                LocationKind::Regex | LocationKind::RegexCaseless
                            ) =>
                        {
                            f.path.clone()
                        }
                        _ => String::new(),
                    };
                    alias = Some(Alias { path: t, prefix });
                }
                break;
            }
        }
        if let Some(loc) = loc {
            let own_root = first(loc.children(), "root");
            let own_alias = first(loc.children(), "alias");
            if let (Some(r), Some(a)) = (own_root, own_alias) {
                self.err(
                    Diagnostic::error(Code::Duplicate, a.name_span, "\"alias\" directive is duplicate, \"root\" directive was specified earlier")
                        .label("alias here")
                        .also(r.name_span, "root here")
                        .help("a location uses either root or alias"),
                );
            }
            // nginx's off-by-slash traversal: `location /img { alias /data/; }` maps
            // `/img../secret` to `/data/../secret`.
            if let Some(a) = own_alias.filter(|a| {
                matches!(kind, LocationKind::Prefix | LocationKind::PrefixNoRegex)
                    && !path.ends_with('/')
                    && arg(a, 0).ends_with('/')
            }) {
                let uri_span = loc.arg_span(loc.args.len().saturating_sub(1));
                self.err(
                    Diagnostic::warning(
                        Code::AliasTraversal,
                        a.arg_span(0),
                        format!(
                            "alias \"{}\" ends with a slash but location \"{path}\" does not: \"{path}../\" reaches the parent of the alias directory",
                            arg(a, 0)
                        ),
                    )
                    .label("ends with \"/\"")
                    .also(uri_span, "no \"/\" at the end")
                    .help("add a trailing slash to the location or remove it from the alias"),
                );
            }
            if own_alias.is_some() && matches!(kind, LocationKind::Named) {
                self.err(
                    Diagnostic::error(
                        Code::Conflict,
                        loc.name_span,
                        "\"alias\" directive cannot be used inside the named location",
                    )
                    .label("here"),
                );
            }
        }
        // proxy_pass or fastcgi_pass (the content handler: the last one written wins, as
        // in nginx, with a warning).
        let passes: Vec<&Directive> = PASS_DIRECTIVES
            .iter()
            .filter_map(|n| own.first(n))
            .collect();
        let pass = passes.iter().copied().max_by_key(|d| d.name_span.start);
        if let (Some(first), Some(last)) = (
            passes.iter().copied().min_by_key(|d| d.name_span.start),
            pass.filter(|_| passes.len() > 1),
        ) {
            self.err(
                Diagnostic::warning(
                    Code::NginxWarning,
                    last.name_span,
                    format!(
                        "\"{}\" replaces \"{}\" in this location",
                        last.name, first.name
                    ),
                )
                .label("this handler answers")
                .also(first.name_span, "this handler is not used")
                .help("keep one of them"),
            );
        }
        let mut proxy = match (loc, pass) {
            (Some(_), Some(d)) if d.name == "proxy_pass" => self.proxy_pass(d, kind),
            (Some(_), Some(d)) => self.cgi_pass(d, kind),
            _ => None,
        };
        if let Some(p) = proxy.as_mut() {
            p.prefix = matches!(
                kind,
                LocationKind::Prefix | LocationKind::PrefixNoRegex | LocationKind::Exact
            )
            .then(|| self.ir.push_text(path));
        }
        // An `if` block without its own proxy_pass proxies as its location does (nginx
        // merges the proxy module's settings into the block).
        for id in if_ids {
            if let Some(l) = self.ir.locations.get_mut(id.0 as usize) {
                if l.conf.proxy.is_none() {
                    l.conf.proxy = proxy.clone().map(Box::new);
                }
            }
        }
        if let Some(d) = own.first("internal") {
            if kind == LocationKind::Server {
                self.err(
                    Diagnostic::error(
                        Code::WrongContext,
                        d.name_span,
                        "internal is only allowed in location",
                    )
                    .label("here"),
                );
            }
        }
        // A location that sets none of the inherited settings shares its parent's record.
        // A proxy_pass counts: it may imply this level's `proxy_redirect default`.
        let own_settings = own
            .list
            .iter()
            .any(|d| is_inherited_setting(&d.name) || PASS_DIRECTIVES.contains(&d.name.as_str()));
        let settings = match inherited.filter(|_| !own_settings) {
            Some(id) => id,
            None => {
                let s = self.settings(chain, server);
                self.intern_settings(s)
            }
        };
        if let (Some(p), Some(d)) = (&proxy, pass) {
            if p.scheme == Scheme::Https {
                let tls = self.ir.settings[settings.0 as usize]
                    .upstream(p.protocol)
                    .tls
                    .clone();
                self.check_upstream_tls(&tls, d.arg_span(0));
            }
        }
        // The server-level root is stored once, in the server's default location.
        let root = if kind == LocationKind::Server {
            self.server_root = root.clone();
            Some(root)
        } else if root == self.server_root {
            None
        } else {
            Some(root)
        };
        // try_files is not inherited: a location has its own or none, and the server-level
        // one is only used when no location matches.
        let try_files = match own.first("try_files") {
            Some(d) => {
                let ts: Vec<Template> = (0..d.args.len()).map(|i| self.template(d, i)).collect();
                self.try_files_check(d, server);
                ts
            }
            None => Vec::new(),
        };
        let limit_except = match own.first("limit_except") {
            Some(d) if !matches!(kind, LocationKind::If | LocationKind::LimitExcept) => {
                self.limit_except(d, chain, server, path)
            }
            _ => None,
        };
        // Likewise a limit_except block without its own proxy_pass proxies as its location.
        if let Some(le) = &limit_except {
            if let Some(l) = self.ir.locations.get_mut(le.location.0 as usize) {
                if l.conf.proxy.is_none() {
                    l.conf.proxy = proxy.clone().map(Box::new);
                }
            }
        }
        LocationConf {
            script,
            // nginx inherits `internal` into nested locations.
            internal: kind == LocationKind::Named || self.loc_stack.iter().any(|f| f.internal),
            root,
            alias: alias.map(Box::new),
            try_files,
            proxy: proxy.map(Box::new),
            settings,
            limit_except,
            stub_status: own.first("stub_status").is_some(),
            proton_metrics: own.first("proton_metrics").is_some(),
        }
    }

    /// The configuration of a block that takes the place of its location for some requests
    /// (an `if`'s, a `limit_except`'s): the block's own directives over the location's
    /// chain, the block being a level of its own for root/alias bookkeeping.
    fn block_conf<'d>(
        &mut self,
        d: &Directive,
        block: &Level<'d>,
        chain: &[&Level<'d>],
        server: ServerId,
        kind: LocationKind,
        path: &str,
    ) -> LocationConf {
        let mut block_chain = Vec::with_capacity(chain.len() + 1);
        block_chain.push(block);
        block_chain.extend_from_slice(chain);
        let frame = self.loc_stack.last().map(|f| LocFrame {
            kind: f.kind,
            path: f.path.clone(),
            internal: false,
        });
        let pushed = frame.is_some();
        if let Some(f) = frame {
            self.loc_stack.push(f);
        }
        let conf = self.conf(&block_chain, server, kind, path, Some(d), None);
        if pushed {
            self.loc_stack.pop();
        }
        conf
    }

    /// `limit_except METHOD … { … }`: the configuration every other method takes, a level
    /// of its own under the location (as nginx's unnamed location). `GET` brings `HEAD`.
    fn limit_except(
        &mut self,
        d: &Directive,
        chain: &[&Level<'_>],
        server: ServerId,
        path: &str,
    ) -> Option<Box<LimitExcept>> {
        const METHODS: [&str; 14] = [
            "GET",
            "HEAD",
            "POST",
            "PUT",
            "DELETE",
            "MKCOL",
            "COPY",
            "MOVE",
            "OPTIONS",
            "PROPFIND",
            "PROPPATCH",
            "LOCK",
            "UNLOCK",
            "PATCH",
        ];
        let mut methods = Vec::new();
        for (i, a) in d.args.iter().enumerate() {
            let m = a.value.to_ascii_uppercase();
            if !METHODS.contains(&m.as_str()) {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(i),
                        format!("invalid method \"{}\"", a.value),
                    )
                    .label("not a method limit_except knows")
                    .help(format!("one of {}", METHODS.join(", "))),
                );
                return None;
            }
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
            methods.push("HEAD".to_string());
        }
        let level = Level::new(d.children());
        let conf = self.block_conf(d, &level, chain, server, LocationKind::LimitExcept, path);
        let name = self.ir.push_text(path);
        let location = self.push_location(Location {
            kind: LocationKind::LimitExcept,
            name,
            server,
            source: self.source_ref(d.name_span),
            nested: None,
            conf,
        });
        Some(Box::new(LimitExcept { methods, location }))
    }

    /// The inherited settings in effect for `chain` (innermost level first).
    fn settings(&mut self, chain: &[&Level<'_>], server: ServerId) -> Settings {
        let flag = |name: &str, default: bool| -> bool {
            nearest(chain, name)
                .first()
                .map_or(default, |d| arg(d, 0) == "on")
        };
        let time = |name: &str, default: u64| -> u64 {
            nearest(chain, name)
                .first()
                .and_then(|d| parse_time_ms(arg(d, 0)))
                .unwrap_or(default)
        };
        let size = |name: &str, default: u64| -> u64 {
            nearest(chain, name)
                .first()
                .and_then(|d| parse_size(arg(d, 0)))
                .unwrap_or(default)
        };
        let num = |name: &str, default: u32| -> u32 {
            nearest(chain, name)
                .first()
                .and_then(|d| parse_number(arg(d, 0)))
                .unwrap_or(default)
        };
        let index = match nearest(chain, "index").first() {
            Some(d) => {
                let n = d.args.len();
                if let Some(a) = d.args[..n.saturating_sub(1)]
                    .iter()
                    .find(|a| a.value.starts_with('/'))
                {
                    self.err(
                        Diagnostic::warning(
                            Code::NginxWarning,
                            a.span,
                            "only the last index in \"index\" directive should be absolute",
                        )
                        .label(
                            "an absolute index ends the search: the files after it are never tried",
                        )
                        .help("move the absolute file to the end, or make it relative"),
                    );
                }
                (0..n).map(|i| self.template(d, i)).collect()
            }
            None => vec![Template::literal("index.html")],
        };
        let types = self.types(chain);
        let default_type = nearest(chain, "default_type")
            .first()
            .map_or("text/plain".to_string(), |d| arg(d, 0).to_string());
        let error_pages = nearest(chain, "error_page")
            .iter()
            .filter_map(|d| self.error_page(d, server))
            .collect();
        let add_headers = nearest(chain, "add_header")
            .iter()
            .filter_map(|d| self.add_header(d))
            .collect();
        let expires = nearest(chain, "expires")
            .first()
            .map_or(Expires::Off, |d| self.expires(d));
        let charset = self.charset(chain);
        let autoindex_format = match nearest(chain, "autoindex_format")
            .first()
            .map(|d| arg(d, 0))
        {
            Some("xml") => AutoindexFormat::Xml,
            Some("json") => AutoindexFormat::Json,
            Some("jsonp") => AutoindexFormat::Jsonp,
            _ => AutoindexFormat::Html,
        };
        let if_modified_since = match nearest(chain, "if_modified_since")
            .first()
            .map(|d| arg(d, 0))
        {
            Some("off") => IfModifiedSince::Off,
            Some("before") => IfModifiedSince::Before,
            _ => IfModifiedSince::Exact,
        };
        let keepalive_timeout_ms = match nearest(chain, "keepalive_timeout").first() {
            Some(d) => match parse_time_ms(arg(d, 0)) {
                Some(ms) => ms,
                None => {
                    self.bad_time(d, 0, crate::check::table::TIME_HELP);
                    75_000
                }
            },
            None => 75_000,
        };
        // The header time is a setting of its own in nginx (keepalive_header): it comes from
        // the nearest level whose keepalive_timeout has a second argument, in whole seconds.
        let keepalive_header_secs = chain
            .iter()
            .find_map(|l| l.first("keepalive_timeout").filter(|d| d.args.len() == 2))
            .and_then(|d| match parse_time_secs(arg(d, 1)) {
                Some(0) => None,
                Some(secs) => Some(secs),
                None => {
                    self.bad_time(
                        d,
                        1,
                        "the header timeout is whole seconds: units y M w d h m s, largest first (no ms)",
                    );
                    None
                }
            });
        let access_log = {
            let ds = nearest(chain, "access_log");
            if ds.is_empty() {
                vec![AccessLog::File {
                    path: Template::literal("logs/access.log"),
                    format: LogFormatId(0),
                    buffer: None,
                    flush_ms: None,
                    condition: None,
                    gzip: None,
                }]
            } else {
                ds.iter().filter_map(|d| self.access_log(d)).collect()
            }
        };
        let error_log: Vec<ErrorLog> = nearest(chain, "error_log")
            .iter()
            .filter_map(|d| self.error_log(d))
            .collect();
        let open_log_file_cache = nearest(chain, "open_log_file_cache")
            .first()
            .and_then(|d| self.open_log_file_cache(d));
        let proxy_settings = self.upstream_settings(chain, "proxy");
        let fastcgi = Box::new(self.upstream_settings(chain, "fastcgi"));
        let scgi = Box::new(self.upstream_settings(chain, "scgi"));
        let uwsgi = Box::new(self.upstream_settings(chain, "uwsgi"));
        let grpc = Box::new(self.upstream_settings(chain, "grpc"));
        let resolver = nearest(chain, "resolver")
            .first()
            .and_then(|d| self.resolver(d));
        let open_file_cache = OpenFileCache {
            cache: nearest(chain, "open_file_cache")
                .first()
                .and_then(|d| self.open_file_cache(d)),
            valid_ms: time("open_file_cache_valid", 60_000),
            min_uses: num("open_file_cache_min_uses", 1).max(1),
            errors: flag("open_file_cache_errors", false),
        };
        let large_client_header_buffers =
            match nearest(chain, "large_client_header_buffers").first() {
                Some(d) => {
                    let n = parse_number::<u32>(arg(d, 0)).filter(|n| *n >= 1);
                    let sz = parse_size(arg(d, 1)).filter(|s| *s >= 64);
                    match (n, sz) {
                        (Some(n), Some(sz)) => (n, sz),
                        _ => {
                            self.err(
                                Diagnostic::error(
                                    Code::BadValue,
                                    d.arg_span(0),
                                    "invalid large_client_header_buffers",
                                )
                                .label("expected a count ≥ 1 and a size ≥ 64")
                                .help("large_client_header_buffers 4 8k;"),
                            );
                            (4, 8192)
                        }
                    }
                }
                None => (4, 8192),
            };
        Settings {
            index,
            autoindex: flag("autoindex", false),
            default_type,
            types,
            error_pages,
            add_headers,
            expires,
            etag: flag("etag", true),
            if_modified_since,
            sendfile: flag("sendfile", false),
            sendfile_max_chunk: size("sendfile_max_chunk", 2 << 20),
            subrequest_output_buffer_size: size("subrequest_output_buffer_size", 4096),
            tcp_nopush: flag("tcp_nopush", false),
            tcp_nodelay: flag("tcp_nodelay", true),
            server_tokens: match nearest(chain, "server_tokens").first().map(|d| arg(d, 0)) {
                Some("off") => ServerTokens::Off,
                Some("build") => ServerTokens::Build,
                _ => ServerTokens::On,
            },
            keepalive_timeout_ms,
            keepalive_header_secs,
            keepalive_requests: num("keepalive_requests", 1000),
            keepalive_time_ms: time("keepalive_time", 3_600_000),
            keepalive_disable: keepalive_disable(nearest(chain, "keepalive_disable").first()),
            post_action: self.post_action(chain, server),
            mirror: self.mirror(chain),
            mirror_request_body: flag("mirror_request_body", true),
            log_subrequest: flag("log_subrequest", false),
            client_max_body_size: size("client_max_body_size", 1 << 20),
            client_header_timeout_ms: time("client_header_timeout", 60_000),
            client_header_buffer_size: size("client_header_buffer_size", 1024),
            large_client_header_buffers,
            client_body_timeout_ms: time("client_body_timeout", 60_000),
            client_body_buffer_size: size("client_body_buffer_size", 8 * 1024),
            client_body_temp_path: temp_path(
                nearest(chain, "client_body_temp_path").first(),
                "client_body_temp",
            ),
            client_body_in_file_only: match nearest(chain, "client_body_in_file_only")
                .first()
                .map(|d| arg(d, 0))
            {
                Some("on") => BodyInFileOnly::On,
                Some("clean") => BodyInFileOnly::Clean,
                _ => BodyInFileOnly::Off,
            },
            client_body_in_single_buffer: flag("client_body_in_single_buffer", false),
            send_timeout_ms: time("send_timeout", 60_000),
            lingering_close: match nearest(chain, "lingering_close").first().map(|d| arg(d, 0)) {
                Some("off") => LingeringClose::Off,
                Some("always") => LingeringClose::Always,
                _ => LingeringClose::On,
            },
            lingering_time_ms: time("lingering_time", 30_000),
            lingering_timeout_ms: time("lingering_timeout", 5_000),
            open_file_cache,
            access_log,
            error_log,
            log_not_found: flag("log_not_found", true),
            open_log_file_cache,
            resolver,
            resolver_timeout_ms: time("resolver_timeout", 30_000),
            proxy: proxy_settings,
            fastcgi,
            scgi,
            uwsgi,
            grpc,
            charset,
            autoindex_format,
            autoindex_exact_size: flag("autoindex_exact_size", true),
            autoindex_localtime: flag("autoindex_localtime", false),
            absolute_redirect: flag("absolute_redirect", true),
            port_in_redirect: flag("port_in_redirect", true),
            server_name_in_redirect: flag("server_name_in_redirect", false),
            msie_refresh: flag("msie_refresh", false),
            msie_padding: flag("msie_padding", true),
            merge_slashes: flag("merge_slashes", true),
            http2: proton_ir::Http2Settings {
                enabled: flag("http2", false),
                max_concurrent_streams: num("http2_max_concurrent_streams", 128),
                body_preread_size: size("http2_body_preread_size", 64 * 1024),
                chunk_size: size("http2_chunk_size", 8 * 1024),
            },
            disable_symlinks: self.disable_symlinks(chain),
            rewrite_log: flag("rewrite_log", false),
            uninitialized_variable_warn: flag("uninitialized_variable_warn", true),
            limit_rate: self.size_value(chain, "limit_rate"),
            limit_rate_after: self.size_value(chain, "limit_rate_after"),
            access: self.access_rules(chain),
            auth: self.auth(chain),
            referers: self.referers(chain),
            realip: self.realip(chain),
            add_trailers: nearest(chain, "add_trailer")
                .iter()
                .filter_map(|d| self.add_header(d))
                .collect(),
            chunked_transfer_encoding: flag("chunked_transfer_encoding", true),
            ignore_invalid_headers: flag("ignore_invalid_headers", true),
            underscores_in_headers: flag("underscores_in_headers", false),
            max_headers: num("max_headers", 1000),
            max_ranges: nearest(chain, "max_ranges")
                .first()
                .and_then(|d| parse_number(arg(d, 0))),
            gzip: self.gzip(chain),
            brotli: compression(chain, &BROTLI),
            zstd: compression(chain, &ZSTD),
            sub_filter: self.sub_filter(chain),
            ssi: ssi(chain),
            addition: addition(chain),
            // nginx's size slot, inherited from the nearest level that sets it; 0 is off.
            slice: size("slice", 0),
            limit_req: self.limit_req(chain),
            limit_conn: self.limit_conn(chain),
        }
    }

    /// `sub_filter` and its companions in effect: the `sub_filter` lines of the nearest
    /// level with any (nginx's array, inherited as a whole), each match string lowercased
    /// where it is literal text as nginx's `ngx_strlow` (the value of a variable in it is
    /// lowercased per response by the runtime). Lines refused by
    /// [`Lower::sub_filter_checks`] (an empty match string, a 256th line) are left out.
    fn sub_filter(&mut self, chain: &[&Level<'_>]) -> SubFilter {
        let flag = |name: &str, default: bool| {
            nearest(chain, name)
                .first()
                .map_or(default, |d| arg(d, 0) == "on")
        };
        let pairs = nearest(chain, "sub_filter")
            .iter()
            .filter(|d| !arg(d, 0).is_empty())
            .take(SUB_FILTER_MAX_PAIRS)
            .map(|d| {
                let mut m = self.template(d, 0);
                for p in &mut m.parts {
                    if let Part::Literal(t) = p {
                        t.make_ascii_lowercase();
                    }
                }
                (m, self.template(d, 1))
            })
            .collect();
        SubFilter {
            pairs,
            types: compressed_types(chain, "sub_filter_types"),
            once: flag("sub_filter_once", true),
            last_modified: flag("sub_filter_last_modified", false),
        }
    }

    /// Proton's bounds of `ssi_value_length` on the lines of one block (its form, a size,
    /// was checked by the table): 1 to [`SSI_MAX_VALUE_LENGTH`]. nginx takes any size,
    /// 0 included (then every non-empty parameter value is too long).
    fn ssi_checks(&mut self, block: &[Directive]) {
        for d in all(block, "ssi_value_length") {
            let Some(n) = parse_size(arg(d, 0)) else {
                continue;
            };
            let help = "ssi_value_length 256; (the longest parameter value of an SSI command, \
                        1 to 64k)";
            if n == 0 {
                self.bad_value(
                    d,
                    0,
                    "at least 1: with 0 every parameter value is too long",
                    help,
                );
            } else if n > u64::from(SSI_MAX_VALUE_LENGTH) {
                self.bad_value(d, 0, "Proton takes at most 64k", help);
            }
        }
    }

    /// nginx's checks of the `sub_filter` lines of one block (each line where it is
    /// written, whether or not a location inherits it): an empty match string is "empty
    /// search pattern", and a block takes at most 255 lines ("number of search patterns
    /// exceeds 255", at the first line past them).
    fn sub_filter_checks(&mut self, block: &[Directive]) {
        let mut n = 0;
        for d in all(block, "sub_filter") {
            if arg(d, 0).is_empty() {
                self.err(
                    Diagnostic::error(Code::BadValue, d.arg_span(0), "empty search pattern")
                        .label("an empty string matches nothing")
                        .help("sub_filter '<a href=\"http://' '<a href=\"https://';"),
                );
                continue;
            }
            n += 1;
            if n == SUB_FILTER_MAX_PAIRS + 1 {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.name_span,
                        format!("number of search patterns exceeds {SUB_FILTER_MAX_PAIRS}"),
                    )
                    .label(format!("sub_filter line {n} of this block"))
                    .help(format!(
                        "nginx takes at most {SUB_FILTER_MAX_PAIRS} sub_filter lines per block"
                    )),
                );
            }
        }
    }

    /// `gzip`, `gzip_static`, `gunzip` and the core module's `gzip_*` settings in effect.
    /// Their arguments were checked by [`Lower::compression_checks`] (every line, inherited
    /// or not).
    fn gzip(&mut self, chain: &[&Level<'_>]) -> Gzip {
        let word = |name: &str| nearest(chain, name).first().map(|d| arg(d, 0));
        let default = Gzip::default();
        let types = compressed_types(chain, "gzip_types");
        let proxied = match nearest(chain, "gzip_proxied") {
            [] => default.proxied,
            lines => {
                let mut p = GzipProxied::NONE;
                for a in lines.iter().flat_map(|d| &d.args) {
                    if let Some(flag) = gzip_proxied_flag(&mut p, &a.value) {
                        *flag = true;
                    }
                }
                p
            }
        };
        // The regexes come from the nearest level with a gzip_disable line (nginx creates
        // the level's list at its first line, even one with `msie6` only); `msie6` is a
        // flag of its own that inner levels inherit until one sets it.
        let mut disable = Vec::new();
        for a in nearest(chain, "gzip_disable").iter().flat_map(|d| &d.args) {
            if a.value != "msie6" {
                disable.push(self.regex(&a.value, true, a.span));
            }
        }
        let disable_msie6 = chain.iter().any(|l| {
            l.get("gzip_disable")
                .iter()
                .any(|d| d.args.iter().any(|a| a.value == "msie6"))
        });
        Gzip {
            enable: word("gzip") == Some("on"),
            types,
            comp_level: word("gzip_comp_level")
                .and_then(parse_number)
                .filter(|l| (1..=9).contains(l))
                .unwrap_or(default.comp_level),
            min_length: word("gzip_min_length")
                .and_then(parse_size)
                .unwrap_or(default.min_length),
            vary: word("gzip_vary") == Some("on"),
            http_version_minor: match word("gzip_http_version") {
                Some("1.0") => 0,
                _ => 1,
            },
            proxied,
            disable_msie6,
            disable,
            static_mode: match word("gzip_static") {
                Some("on") => GzipStatic::On,
                Some("always") => GzipStatic::Always,
                _ => GzipStatic::Off,
            },
            gunzip: word("gunzip") == Some("on"),
        }
    }

    /// nginx's checks of the arguments of the compression directives (gzip's, and brotli's
    /// and zstd's as their modules check them; the `*_types` of sub_filter, ssi and
    /// addition; `output_buffers`), on the lines of one block: each line is checked where
    /// it is written, whether or not a location inherits it.
    fn compression_checks(&mut self, block: &[Directive]) {
        // Duplicates within a block's `*_types` lines (text/html is always there) and
        // gzip_proxied lines are warnings in nginx.
        for name in [
            "gzip_types",
            "brotli_types",
            "zstd_types",
            "sub_filter_types",
            "ssi_types",
            "addition_types",
        ] {
            let mut seen_types = vec!["text/html".to_string()];
            'types: for d in all(block, name) {
                for a in &d.args {
                    if a.value == "*" {
                        break 'types;
                    }
                    let t = a.value.to_ascii_lowercase();
                    if seen_types.contains(&t) {
                        self.err(
                            Diagnostic::warning(
                                Code::NginxWarning,
                                a.span,
                                format!("duplicate MIME type \"{t}\""),
                            )
                            .label(if t != "text/html" {
                                "already listed"
                            } else if matches!(name, "gzip_types" | "brotli_types" | "zstd_types") {
                                "text/html is always compressed"
                            } else {
                                "text/html is always included"
                            })
                            .help("list each type once; text/html need not be listed"),
                        );
                    } else {
                        seen_types.push(t);
                    }
                }
            }
        }
        let mut proxied = GzipProxied::NONE;
        for d in all(block, "gzip_proxied") {
            for a in &d.args {
                match gzip_proxied_flag(&mut proxied, &a.value) {
                    Some(flag) if *flag => self.err(
                        Diagnostic::warning(
                            Code::NginxWarning,
                            a.span,
                            format!("duplicate value \"{}\"", a.value),
                        )
                        .label("already given")
                        .help("give each word once"),
                    ),
                    Some(flag) => *flag = true,
                    None => {
                        let words = GZIP_PROXIED_WORDS.join(", ");
                        let help = match did_you_mean(&a.value, GZIP_PROXIED_WORDS.iter().copied())
                        {
                            Some(w) => format!("did you mean \"{w}\"? the words are: {words}"),
                            None => format!("the words are: {words}"),
                        };
                        self.err(
                            Diagnostic::error(
                                Code::BadValue,
                                a.span,
                                format!(
                                    "invalid value \"{}\" in \"gzip_proxied\" directive",
                                    a.value
                                ),
                            )
                            .label("not a gzip_proxied word")
                            .help(help),
                        );
                    }
                }
            }
        }
        for d in block {
            match d.name.as_str() {
                "gzip_comp_level" | "brotli_comp_level" | "zstd_comp_level" => {
                    let (low, high) = match d.name.as_str() {
                        "gzip_comp_level" => (1, 9),
                        "brotli_comp_level" => BROTLI.levels,
                        _ => ZSTD.levels,
                    };
                    if !parse_number::<u8>(arg(d, 0)).is_some_and(|l| (low..=high).contains(&l)) {
                        self.err(
                            Diagnostic::error(
                                Code::BadValue,
                                d.arg_span(0),
                                format!("value \"{}\" must be between {low} and {high}", arg(d, 0)),
                            )
                            .label("not a compression level")
                            .help(format!(
                                "{0} {low}; (fastest) … {0} {high}; (smallest)",
                                d.name
                            )),
                        );
                    }
                }
                "brotli_window" if brotli_window_log(arg(d, 0)).is_none() => {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            d.arg_span(0),
                            "\"brotli_window\" must be 1k, 2k, 4k, 8k, 16k, 32k, 64k, 128k, 256k, \
                             512k, 1m, 2m, 4m, 8m, or 16m",
                        )
                        .label("not one of ngx_brotli's sizes")
                        .help("brotli_window 512k; (a power of two from 1k to 16m)"),
                    );
                }
                "gzip_buffers" | "gunzip_buffers" | "brotli_buffers" | "zstd_buffers"
                | "output_buffers" => {
                    let count = parse_number::<u64>(arg(d, 0)).filter(|n| *n > 0);
                    let size = parse_size(arg(d, 1)).filter(|s| *s > 0);
                    let help = format!(
                        "{} {}; (accepted for nginx compatibility, with no effect)",
                        d.name,
                        if d.name == "output_buffers" {
                            "2 32k"
                        } else {
                            "32 4k"
                        }
                    );
                    if count.is_none() {
                        self.bad_value(d, 0, "expected a number of buffers above 0", &help);
                    }
                    if size.is_none() {
                        self.bad_value(d, 1, "expected a buffer size above 0", &help);
                    }
                }
                "gzip_window" | "gzip_hash" => {
                    let (max, allowed) = if d.name == "gzip_window" {
                        (32 * 1024, "512, 1k, 2k, 4k, 8k, 16k, or 32k")
                    } else {
                        (128 * 1024, "512, 1k, 2k, 4k, 8k, 16k, 32k, 64k, or 128k")
                    };
                    let ok = parse_size(arg(d, 0))
                        .is_some_and(|v| v.is_power_of_two() && (512..=max).contains(&v));
                    if !ok {
                        self.err(
                            Diagnostic::error(
                                Code::BadValue,
                                d.arg_span(0),
                                format!("\"{}\" must be {allowed}", d.name),
                            )
                            .label("not one of nginx's sizes")
                            .help(format!(
                                "{} {}; (accepted for nginx compatibility, with no effect)",
                                d.name,
                                if d.name == "gzip_window" {
                                    "32k"
                                } else {
                                    "64k"
                                }
                            )),
                        );
                    }
                }
                "gzip_disable" => {
                    for a in &d.args {
                        if a.value != "msie6" {
                            self.regex(&a.value, true, a.span);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// `charset`, `source_charset`, `charset_types`, `override_charset` in effect.
    fn charset(&mut self, chain: &[&Level<'_>]) -> Charset {
        let charset = nearest(chain, "charset").first().and_then(|d| {
            if arg(d, 0) == "off" {
                None
            } else {
                Some(self.template(d, 0))
            }
        });
        let source = nearest(chain, "source_charset")
            .first()
            .map(|d| arg(d, 0).to_ascii_lowercase());
        let mut types: Vec<String> = match nearest(chain, "charset_types").first() {
            Some(d) => d
                .args
                .iter()
                .map(|a| a.value.to_ascii_lowercase())
                .collect(),
            None => [
                "text/html",
                "text/xml",
                "text/plain",
                "text/vnd.wap.wml",
                "application/javascript",
                "application/rss+xml",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        };
        if types.iter().any(|t| t == "*") {
            types = vec!["*".to_string()];
        }
        types.sort();
        types.dedup();
        Charset {
            charset,
            source,
            types,
            override_charset: nearest(chain, "override_charset")
                .first()
                .is_some_and(|d| arg(d, 0) == "on"),
        }
    }

    /// `disable_symlinks off | on | if_not_owner [from=part]` in effect.
    fn disable_symlinks(&mut self, chain: &[&Level<'_>]) -> DisableSymlinks {
        let Some(d) = nearest(chain, "disable_symlinks").first().copied() else {
            return DisableSymlinks::Off;
        };
        let mut from = None;
        if let Some(a) = d.args.get(1) {
            match a.value.strip_prefix("from=") {
                Some(v) if arg(d, 0) != "off" => {
                    let t = self.template_with_value(d, 1, v);
                    from = Some(t);
                }
                _ => {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            format!("invalid parameter \"{}\"", a.value),
                        )
                        .label("expected from=part, after on or if_not_owner")
                        .help("disable_symlinks on from=$document_root;"),
                    );
                }
            }
        }
        match arg(d, 0) {
            "on" => DisableSymlinks::On { from },
            "if_not_owner" => DisableSymlinks::IfNotOwner { from },
            "off" => DisableSymlinks::Off,
            other => {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid value \"{other}\" in \"disable_symlinks\" directive"),
                    )
                    .label("expected off, on or if_not_owner")
                    .help("disable_symlinks on;"),
                );
                DisableSymlinks::Off
            }
        }
    }

    /// `charset_map FROM TO { XX YY; … }`: single-byte tables only.
    fn charset_map(&mut self, d: &Directive) {
        let hex = |s: &str| -> Option<u8> {
            (s.len() == 2)
                .then(|| u8::from_str_radix(s, 16).ok())
                .flatten()
        };
        let mut forward: Vec<u8> = (0..=255).collect();
        let mut backward: Vec<u8> = (0..=255).collect();
        for line in d.children() {
            let (Some(a), [b]) = (hex(&line.name), line.args.as_slice()) else {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        line.name_span,
                        "invalid charset_map line",
                    )
                    .label("expected two hexadecimal bytes: `C0 FE;`")
                    .help("Proton recodes single-byte charsets only; UTF-8 sequences are not supported yet"),
                );
                continue;
            };
            let Some(b) = hex(&b.value) else {
                self.err(
                    Diagnostic::error(
                        Code::Unsupported,
                        b.span,
                        "charset_map values other than one byte are not supported yet",
                    )
                    .label("Proton recodes single-byte charsets only")
                    .help("recoding to or from utf-8 is not implemented by Proton yet"),
                );
                continue;
            };
            forward[usize::from(a)] = b;
            backward[usize::from(b)] = a;
        }
        self.ir.charset_maps.push(CharsetMap {
            from: arg(d, 0).to_ascii_lowercase(),
            to: arg(d, 1).to_ascii_lowercase(),
            forward,
            backward,
        });
    }

    /// The cache an `open_file_cache` directive defines, checked and numbered the first time
    /// it is met (`None` for `off`).
    fn open_file_cache(&mut self, d: &Directive) -> Option<FileCacheZone> {
        if let Some(z) = self.file_caches.get(&d.span) {
            return *z;
        }
        let (mut max, mut inactive_ms, mut off) = (0u32, 60_000u64, false);
        for a in &d.args {
            let v = a.value.as_str();
            let ok = if let Some(n) = v.strip_prefix("max=") {
                parse_number::<u32>(n).filter(|n| *n > 0).map(|n| max = n)
            } else if let Some(t) = v.strip_prefix("inactive=") {
                parse_time_secs(t).map(|t| inactive_ms = t.saturating_mul(1000))
            } else if v == "off" {
                off = true;
                Some(())
            } else {
                None
            };
            if ok.is_none() {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("invalid \"open_file_cache\" parameter \"{v}\""),
                    )
                    .label("expected max=N, inactive=time or off")
                    .help("open_file_cache max=1000 inactive=20s;"),
                );
                self.file_caches.insert(d.span, None);
                return None;
            }
        }
        let zone = if off {
            None
        } else if max == 0 {
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.name_span,
                    "\"open_file_cache\" must have the \"max\" parameter",
                )
                .label("no max=")
                .help("open_file_cache max=1000 inactive=20s;"),
            );
            None
        } else {
            let id = self.file_caches.values().filter(|z| z.is_some()).count() as u32;
            Some(FileCacheZone {
                id,
                max,
                inactive_ms,
            })
        };
        self.file_caches.insert(d.span, zone);
        zone
    }

    /// Reports argument `i` of `d` as a bad time.
    fn bad_time(&mut self, d: &Directive, i: usize, help: &str) {
        self.bad_value(d, i, &format!("argument {} must be a time", i + 1), help);
    }

    /// Reports argument `i` of `d` as nginx's "invalid value", with `label` and `help`.
    fn bad_value(&mut self, d: &Directive, i: usize, label: &str, help: &str) {
        self.err(
            Diagnostic::error(
                Code::BadValue,
                d.arg_span(i),
                format!(
                    "invalid value \"{}\" in \"{}\" directive",
                    arg(d, i),
                    d.name
                ),
            )
            .label(label)
            .help(help),
        );
    }

    /// Where a span is, as an IR source reference.
    pub(crate) fn source_ref(&self, span: Span) -> SourceRef {
        SourceRef {
            file: span.file.0,
            line: self.map.line(span) as u32,
        }
    }

    /// Interns a settings record in [`Ir::settings`].
    fn intern_settings(&mut self, s: Settings) -> SettingsId {
        if let Some(id) = self.settings_ids.get(&s) {
            return *id;
        }
        let id = SettingsId(self.ir.settings.len() as u32);
        self.ir.settings.push(s.clone());
        self.settings_ids.insert(s, id);
        id
    }

    /// The `types` table in effect, interned in [`Ir::mime_types`].
    fn types(&mut self, chain: &[&Level<'_>]) -> MimeTableId {
        let key = nearest(chain, "types").first().map(|d| d.span);
        if let Some(id) = self.types_ids.get(&key) {
            return *id;
        }
        let table = self.types_table(chain);
        let id = self.intern_types(table);
        self.types_ids.insert(key, id);
        id
    }

    fn intern_types(&mut self, table: Vec<(String, String)>) -> MimeTableId {
        if let Some(i) = self.ir.mime_types.iter().position(|t| *t == table) {
            return MimeTableId(i as u32);
        }
        self.ir.mime_types.push(table);
        MimeTableId(self.ir.mime_types.len() as u32 - 1)
    }

    fn types_table(&mut self, chain: &[&Level<'_>]) -> Vec<(String, String)> {
        // Several `types` blocks of one level make one table, in order (as nginx).
        let blocks: Vec<&Directive> = nearest(chain, "types").to_vec();
        if blocks.is_empty() {
            // nginx's built-in table when no `types` block is in effect.
            return [
                ("gif", "image/gif"),
                ("html", "text/html"),
                ("jpg", "image/jpeg"),
            ]
            .iter()
            .map(|(e, t)| (e.to_string(), t.to_string()))
            .collect();
        }
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        for t in blocks.iter().flat_map(|b| b.children()) {
            if t.block.is_some() || t.args.is_empty() {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        t.name_span,
                        format!("invalid types entry \"{}\"", t.name),
                    )
                    .label("expected `mime/type ext …;`")
                    .help("for example: text/html html htm;"),
                );
                continue;
            }
            for a in &t.args {
                let ext = a.value.to_ascii_lowercase();
                // nginx: the later type wins, with a warning.
                if let Some(prev) = m.insert(ext.clone(), t.name.clone()) {
                    self.err(
                        Diagnostic::warning(
                            Code::NginxWarning,
                            a.span,
                            format!(
                                "duplicate extension \"{ext}\", content type: \"{}\", previous content type: \"{prev}\"",
                                t.name
                            ),
                        )
                        .label("this extension is already mapped")
                        .help("list each extension once; the last mapping is used"),
                    );
                }
            }
        }
        m.into_iter().collect()
    }

    /// `post_action` in effect (`off`: none); a `@name` target is checked like error_page's.
    fn post_action(&mut self, chain: &[&Level<'_>], server: ServerId) -> Option<String> {
        let d = nearest(chain, "post_action").first().copied()?;
        let a = d.args.first()?;
        if a.value == "off" {
            return None;
        }
        if a.value.starts_with('@') {
            self.named_refs.push((server, a.value.clone(), a.span));
        }
        Some(a.value.clone())
    }

    /// `mirror` in effect: the URIs of the nearest level that has the directive (`off`:
    /// none). As nginx, `off` beside a URI at one level is a duplicate.
    fn mirror(&mut self, chain: &[&Level<'_>]) -> Vec<String> {
        let lines = nearest(chain, "mirror");
        let off = lines
            .iter()
            .find(|d| d.args.first().is_some_and(|a| a.value == "off"));
        if let Some(off) = off {
            if lines.len() > 1 {
                let other = lines.iter().find(|d| !std::ptr::eq(**d, *off)).copied();
                let at = other.map_or(off.name_span, |d| d.name_span);
                self.err(
                    Diagnostic::error(Code::Duplicate, at, "\"mirror\" directive is duplicate")
                        .label("`mirror off` and a mirror URI at the same level")
                        .help("keep either `mirror off;` or the `mirror uri;` lines"),
                );
            }
            return Vec::new();
        }
        lines
            .iter()
            .filter_map(|d| d.args.first().map(|a| a.value.clone()))
            .collect()
    }

    fn try_files_check(&mut self, d: &Directive, server: ServerId) {
        if let Some(last) = d.args.last() {
            if last.value.starts_with('@') {
                self.named_refs
                    .push((server, last.value.clone(), last.span));
            } else if let Some(code) = last.value.strip_prefix('=') {
                // nginx: any code up to 999.
                if !matches!(parse_number::<u16>(code), Some(0..=999)) {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            last.span,
                            format!("invalid code \"={code}\" in try_files"),
                        )
                        .label("expected =0…999")
                        .help("for example: try_files $uri $uri/ =404;"),
                    );
                }
            }
        }
    }

    fn error_page(&mut self, d: &Directive, server: ServerId) -> Option<ErrorPage> {
        let n = d.args.len();
        let target_arg = d.args.last()?;
        let mut codes = Vec::new();
        let mut response = None;
        for (i, a) in d.args[..n - 1].iter().enumerate() {
            if let Some(r) = a.value.strip_prefix('=') {
                if i != n - 2 {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            "\"=response\" must come just before the URI",
                        )
                        .label("here")
                        .help("error_page 404 =200 /empty.gif;"),
                    );
                    return None;
                }
                response = Some(if r.is_empty() {
                    0
                } else {
                    // nginx takes any number here (`=0` is `=`); Proton keeps it to
                    // three digits, which is what a status line can carry.
                    match parse_number::<u16>(r) {
                        Some(c @ 0..=999) => c,
                        _ => {
                            self.err(
                                Diagnostic::error(
                                    Code::BadValue,
                                    a.span,
                                    format!("invalid response code \"{r}\""),
                                )
                                .label("expected a status code (0…999)")
                                .help("error_page 404 =200 /x;"),
                            );
                            return None;
                        }
                    }
                });
                continue;
            }
            // nginx: 300…599 except 499 (its internal "client closed the connection").
            match parse_number::<u16>(&a.value) {
                Some(c @ 300..=599) if c != 499 => codes.push(c),
                Some(c) if c != 499 => {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            format!("value \"{}\" must be between 300 and 599", a.value),
                        )
                        .label("not an error code")
                        .help("error_page 404 500 502 /50x.html;"),
                    );
                    return None;
                }
                _ => {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            format!("invalid value \"{}\"", a.value),
                        )
                        .label(if a.value == "499" {
                            "499 is nginx's code for a closed connection, not a response"
                        } else {
                            "not a status code"
                        })
                        .help("error_page 404 500 502 /50x.html;"),
                    );
                    return None;
                }
            }
        }
        if codes.is_empty() {
            self.err(
                Diagnostic::error(
                    Code::Arity,
                    d.name_span,
                    "error_page needs at least one code",
                )
                .label("here")
                .help("error_page 404 /404.html;"),
            );
            return None;
        }
        if target_arg.value.starts_with('@') {
            self.named_refs
                .push((server, target_arg.value.clone(), target_arg.span));
        }
        Some(ErrorPage {
            codes,
            response,
            target: self.template(d, n - 1),
        })
    }

    fn add_header(&mut self, d: &Directive) -> Option<AddHeader> {
        let always = match d.args.get(2).map(|a| a.value.as_str()) {
            None => false,
            Some("always") => true,
            Some(o) => {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(2),
                        format!("invalid parameter \"{o}\""),
                    )
                    .label("expected always")
                    .help(if did_you_mean(o, ["always"]).is_some() {
                        "did you mean \"always\"?"
                    } else {
                        "add_header Name value always;"
                    }),
                );
                return None;
            }
        };
        let name = arg(d, 0);
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.arg_span(0),
                    format!("invalid header name \"{name}\""),
                )
                .label("here")
                .help("header names are letters, digits, - and _"),
            );
            return None;
        }
        Some(AddHeader {
            name: name.to_string(),
            value: self.template(d, 1),
            always,
        })
    }

    fn expires(&mut self, d: &Directive) -> Expires {
        let (modified, v) = match d.args.as_slice() {
            [m, v] if m.value == "modified" => (true, v),
            [v] => (false, v),
            _ => {
                self.err(
                    Diagnostic::error(Code::BadValue, d.arg_span(0), "invalid expires")
                        .label("here")
                        .help("expires 30d; | expires modified +1h; | expires epoch|max|off;"),
                );
                return Expires::Off;
            }
        };
        if v.value.contains('$') {
            let i = d.args.len() - 1;
            return Expires::Variable {
                modified,
                value: self.template(d, i),
            };
        }
        match Expires::parse(&v.value, modified) {
            Ok(e) => e,
            Err(why) => {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        v.span,
                        if why == "invalid value" {
                            format!("invalid expires time \"{}\"", v.value)
                        } else {
                            format!("\"{}\" in \"expires\" directive: {why}", v.value)
                        },
                    )
                    .label("not an expires time")
                    .help("for example 30d, 1h, -1, @15h30m, epoch, max, off (units y M w d h m s, largest first; no ms)"),
                );
                Expires::Off
            }
        }
    }

    fn access_log(&mut self, d: &Directive) -> Option<AccessLog> {
        if self.log_destination_unsupported(d) {
            return None;
        }
        if arg(d, 0) == "off" {
            if d.args.len() > 1 {
                self.err(
                    Diagnostic::error(
                        Code::Arity,
                        d.arg_span(1),
                        "\"access_log off\" takes no other arguments",
                    )
                    .label("extra")
                    .help("access_log off;"),
                );
            }
            return Some(AccessLog::Off);
        }
        let path = self.template(d, 0);
        let mut format = LogFormatId(0);
        let mut buffer = None;
        let mut flush_ms = None;
        let mut condition = None;
        let mut gzip = None;
        for (i, a) in d.args.iter().enumerate().skip(1) {
            if a.value == "gzip" || a.value.starts_with("gzip=") {
                // nginx: level 1 (Z_BEST_SPEED) by default, 1–9, and a 64k buffer unless
                // buffer= says otherwise.
                let level = match a.value.strip_prefix("gzip=") {
                    None => Some(1),
                    Some(l) => parse_number::<u8>(l).filter(|l| (1..=9).contains(l)),
                };
                if level.is_none() {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            format!("invalid compression level \"{}\"", &a.value[5..]),
                        )
                        .label("expected 1 to 9")
                        .help("gzip or gzip=1 … gzip=9"),
                    );
                }
                gzip = level;
            } else if let Some(v) = a.value.strip_prefix("if=") {
                let span = Span {
                    start: a.span.start + 3,
                    ..a.span
                };
                condition = Some(self.template_of(d, v, span, None));
            } else if let Some(v) = a.value.strip_prefix("buffer=") {
                buffer = parse_size(v).or_else(|| {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            format!("invalid buffer size \"{v}\""),
                        )
                        .label("here")
                        .help("buffer=32k"),
                    );
                    None
                });
            } else if let Some(v) = a.value.strip_prefix("flush=") {
                flush_ms = parse_time_ms(v).or_else(|| {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            format!("invalid flush time \"{v}\""),
                        )
                        .label("here")
                        .help("flush=5s"),
                    );
                    None
                });
            } else if i == 1 {
                match self.ir.log_formats.iter().position(|f| f.name == a.value) {
                    Some(p) => format = LogFormatId(p as u32),
                    None => {
                        let mut e = Diagnostic::error(
                            Code::UnknownName,
                            a.span,
                            format!("unknown log format \"{}\"", a.value),
                        )
                        .label("no log_format with this name");
                        let names: Vec<&str> = self
                            .ir
                            .log_formats
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect();
                        e = e.help(match did_you_mean(&a.value, names) {
                            Some(c) => format!("did you mean \"{c}\"?"),
                            None => "define it with log_format in the http block".to_string(),
                        });
                        self.err(e);
                    }
                }
            } else {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("invalid parameter \"{}\"", a.value),
                    )
                    .label("here")
                    .help("access_log path [format [buffer=size] [flush=time] [if=condition]];"),
                );
            }
        }
        if gzip.is_some() && buffer.is_none() {
            buffer = Some(64 * 1024);
        }
        if flush_ms.is_some() && buffer.is_none() {
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.arg_span(0),
                    format!("no buffer is defined for access_log \"{}\"", arg(d, 0)),
                )
                .label("flush= given without buffer=")
                .help("add buffer=size (flush= only bounds how long a buffer is kept), e.g. buffer=32k flush=5s"),
            );
        }
        Some(AccessLog::File {
            path,
            format,
            buffer,
            flush_ms,
            condition,
            gzip,
        })
    }

    fn check_named_refs(&mut self) {
        let refs = std::mem::take(&mut self.named_refs);
        let misplaced: HashSet<(ServerId, &str)> = self
            .misplaced_named
            .iter()
            .map(|(s, n)| (*s, n.as_str()))
            .collect();
        let mut suggested: HashSet<(ServerId, String)> = HashSet::default();
        let mut unknown = Vec::new();
        {
            let defined: HashSet<(ServerId, &str)> = self
                .ir
                .servers
                .iter()
                .enumerate()
                .flat_map(|(i, s)| {
                    s.named
                        .iter()
                        .map(move |(n, _)| (ServerId(i as u32), n.as_str()))
                })
                .collect();
            for (server, name, span) in &refs {
                if misplaced.contains(&(*server, name.as_str()))
                    || defined.contains(&(*server, name.as_str()))
                {
                    continue;
                }
                let names = self.ir.servers[server.0 as usize]
                    .named
                    .iter()
                    .map(|(n, _)| n.as_str());
                let suggestion = did_you_mean(name, names).map(str::to_string);
                if let Some(c) = &suggestion {
                    suggested.insert((*server, c.clone()));
                }
                unknown.push((*span, name.clone(), suggestion));
            }
        }
        for (span, name, suggestion) in unknown {
            let e = Diagnostic::error(
                Code::UnknownName,
                span,
                format!("unknown named location \"{name}\""),
            )
            .label("no such location in this server")
            .help(match suggestion {
                Some(c) => format!("did you mean \"{c}\"?"),
                None => format!("define `location {name} {{ … }}` in this server"),
            });
            self.err(e);
        }
        let used: HashSet<(ServerId, &str)> =
            refs.iter().map(|(s, n, _)| (*s, n.as_str())).collect();
        let defs = std::mem::take(&mut self.named_defs);
        for (server, name, span) in defs {
            // A misspelt reference already got a "did you mean" pointing here.
            let hinted = suggested.contains(&(server, name.clone()));
            if !used.contains(&(server, name.as_str())) && !hinted {
                self.err(
                    Diagnostic::warning(
                        Code::UnusedNamedLocation,
                        span,
                        format!("named location \"{name}\" is never used"),
                    )
                    .label("nothing refers to it")
                    .help("refer to it from try_files or error_page, or remove it"),
                );
            }
        }
    }

    /// Warns when a level's add_header (or proxy_set_header) lines hide the lines of an
    /// outer level: nginx inherits these arrays only when the inner level has none.
    fn add_header_trap(&mut self, chain: &[&Level<'_>], loc: &Directive) {
        for name in ["add_header", "proxy_set_header"] {
            let Some(own) = chain.first().and_then(|l| l.first(name)) else {
                continue;
            };
            let outer = nearest(&chain[1..], name);
            if outer.is_empty() {
                continue;
            }
            let lost: Vec<String> = outer
                .iter()
                .map(|d| arg(d, 0).to_string())
                .filter(|h| {
                    !chain[0]
                        .get(name)
                        .iter()
                        .any(|x| arg(x, 0).eq_ignore_ascii_case(h))
                })
                .collect();
            if lost.is_empty() {
                continue;
            }
            let mut w = Diagnostic::warning(
                Code::AddHeaderDropsInherited,
                own.name_span,
                format!(
                    "{name} here drops the inherited {name} lines: {}",
                    lost.join(", ")
                ),
            )
            .label(format!("{name} in this location replaces all outer ones"))
            .help(format!(
                "repeat the outer {name} lines in this location if they should still apply"
            ));
            for d in outer {
                w = w.also(d.name_span, "not applied in this location");
            }
            let _ = loc;
            self.err(w);
        }
    }
}

/// The kind and path of a `location` line, without reporting anything (see
/// `Lower::location_head` for the checked version).
fn location_head_of(args: &[crate::ast::Arg]) -> Option<(LocationKind, &str)> {
    match args {
        [one] => {
            let v = one.value.as_str();
            Some(if v.starts_with('@') {
                (LocationKind::Named, v)
            } else if let Some(p) = v.strip_prefix("^~").filter(|p| !p.is_empty()) {
                (LocationKind::PrefixNoRegex, p)
            } else if let Some(p) = v.strip_prefix("~*").filter(|p| !p.is_empty()) {
                (LocationKind::RegexCaseless, p)
            } else if let Some(p) = v.strip_prefix('~').filter(|p| !p.is_empty()) {
                (LocationKind::Regex, p)
            } else if let Some(p) = v.strip_prefix('=').filter(|p| !p.is_empty()) {
                (LocationKind::Exact, p)
            } else {
                (LocationKind::Prefix, v)
            })
        }
        [m, p] => Some((
            match m.value.as_str() {
                "=" => LocationKind::Exact,
                "^~" => LocationKind::PrefixNoRegex,
                "~" => LocationKind::Regex,
                "~*" => LocationKind::RegexCaseless,
                _ => return None,
            },
            p.value.as_str(),
        )),
        _ => None,
    }
}

/// Why a prefix or exact location path can never match a normalised URI, if it cannot.
fn never_matches(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("a normalised request URI always starts with \"/\"");
    }
    if path.contains("//") {
        return Some("\"//\" is merged into \"/\" before matching");
    }
    if path.contains("/./")
        || path.contains("/../")
        || path.ends_with("/.")
        || path.ends_with("/..")
    {
        return Some("\".\" and \"..\" segments are resolved before matching");
    }
    None
}

/// `= /x`, `^~ /x`, `~ re`, … as written in a location line.
fn location_label(kind: LocationKind, path: &str) -> String {
    let m = match kind {
        LocationKind::Exact => "= ",
        LocationKind::PrefixNoRegex => "^~ ",
        LocationKind::Regex => "~ ",
        LocationKind::RegexCaseless => "~* ",
        _ => "",
    };
    format!("{m}{path}")
}

/// True for directives that feed [`Settings`] (inherited settings other than root, alias
/// and internal, which live in [`LocationConf`]).
fn is_inherited_setting(name: &str) -> bool {
    name != "root"
        && name != "alias"
        && name != "internal"
        && crate::directives::TABLE
            .iter()
            .any(|s| s.name == name && s.merge == crate::directives::Merge::Inherit)
}

/// The types a `*_types` directive (`name`) leaves in effect, lowercase, sorted and
/// deduplicated: nginx's types slot starts every list with text/html; the lines of one
/// level add up, and `*` anywhere means every type (`["*"]`).
fn compressed_types(chain: &[&Level<'_>], name: &str) -> Vec<String> {
    let mut types = vec!["text/html".to_string()];
    for d in nearest(chain, name) {
        types.extend(d.args.iter().map(|a| a.value.to_ascii_lowercase()));
    }
    if types.iter().any(|t| t == "*") {
        types = vec!["*".to_string()];
    }
    types.sort();
    types.dedup();
    types
}

/// `ssi` and its companions in effect, each from the nearest level that writes it (nginx
/// merges them one by one). A `ssi_value_length` that [`Lower::ssi_checks`] refused leaves
/// the default.
fn ssi(chain: &[&Level<'_>]) -> Ssi {
    let flag = |name: &str| {
        nearest(chain, name)
            .first()
            .is_some_and(|d| arg(d, 0) == "on")
    };
    let value_length = nearest(chain, "ssi_value_length")
        .first()
        .and_then(|d| parse_size(arg(d, 0)))
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=SSI_MAX_VALUE_LENGTH).contains(n))
        .unwrap_or(SSI_DEFAULT_VALUE_LENGTH);
    Ssi {
        enable: flag("ssi"),
        types: compressed_types(chain, "ssi_types"),
        silent_errors: flag("ssi_silent_errors"),
        value_length,
        last_modified: flag("ssi_last_modified"),
    }
}

/// `ssi_value_length`'s default, as nginx documents it.
const SSI_DEFAULT_VALUE_LENGTH: u32 = 255;

/// `add_before_body`, `add_after_body` and `addition_types` in effect, each from the
/// nearest level that writes it. The URIs are kept as written (nginx's string slot: no
/// variables); an empty one (`""`, also the default) adds nothing, so a level can turn off
/// an inherited one.
fn addition(chain: &[&Level<'_>]) -> Addition {
    let uri = |name: &str| {
        nearest(chain, name)
            .first()
            .map_or_else(String::new, |d| arg(d, 0).to_string())
    };
    Addition {
        before: uri("add_before_body"),
        after: uri("add_after_body"),
        types: compressed_types(chain, "addition_types"),
    }
}

/// The most `sub_filter` lines one level takes (nginx keeps a pattern's index in a byte).
const SUB_FILTER_MAX_PAIRS: usize = 255;

/// A content coding of a third-party nginx module, by the prefix of its directives.
struct Coding {
    /// `brotli` or `zstd`: the on/off directive, and the prefix of its companions.
    name: &'static str,
    /// The levels `X_comp_level` takes, lowest and highest.
    levels: (u8, u8),
    /// `X_comp_level`'s default.
    level: u8,
    /// `brotli_window`'s default as a power of two; 0: the coding has no window directive.
    window_log: u8,
}

/// ngx_brotli: quality 0-11 (BROTLI_MIN_QUALITY, BROTLI_MAX_QUALITY), 6 by default; a
/// 512k window.
const BROTLI: Coding = Coding {
    name: "brotli",
    levels: (0, 11),
    level: 6,
    window_log: 19,
};

/// zstd-nginx-module: levels 1 to ZSTD_maxCLevel() (22), 1 by default; the window is the
/// level's own.
const ZSTD: Coding = Coding {
    name: "zstd",
    levels: (1, 22),
    level: 1,
    window_log: 0,
};

/// `brotli` or `zstd` and their companions in effect (the nearest level that writes each
/// one, as nginx merges them). Their arguments were checked by
/// [`Lower::compression_checks`]; a line that failed them leaves the default.
fn compression(chain: &[&Level<'_>], c: &Coding) -> Compression {
    let word = |suffix: &str| {
        nearest(chain, &format!("{}{suffix}", c.name))
            .first()
            .map(|d| arg(d, 0))
    };
    Compression {
        enable: word("") == Some("on"),
        types: compressed_types(chain, &format!("{}_types", c.name)),
        comp_level: word("_comp_level")
            .and_then(parse_number)
            .filter(|l| (c.levels.0..=c.levels.1).contains(l))
            .unwrap_or(c.level),
        min_length: word("_min_length").and_then(parse_size).unwrap_or(20),
        static_mode: match word("_static") {
            Some("on") => GzipStatic::On,
            Some("always") => GzipStatic::Always,
            _ => GzipStatic::Off,
        },
        window_log: match c.window_log {
            0 => 0,
            default => word("_window")
                .and_then(brotli_window_log)
                .unwrap_or(default),
        },
    }
}

/// `brotli_window`'s size as ngx_brotli takes it (a power of two from 1k to 16m, written
/// as any nginx size: `512k`, `1m`, `1024`), as the power: 10 to 24.
fn brotli_window_log(v: &str) -> Option<u8> {
    parse_size(v)
        .filter(|s| s.is_power_of_two() && (1 << 10..=1 << 24).contains(s))
        .map(|s| s.trailing_zeros() as u8)
}

/// The words of `gzip_proxied`, as nginx spells them.
const GZIP_PROXIED_WORDS: [&str; 9] = [
    "off",
    "expired",
    "no-cache",
    "no-store",
    "private",
    "no_last_modified",
    "no_etag",
    "auth",
    "any",
];

/// The flag of `p` a `gzip_proxied` word sets (nginx compares them ignoring case); `None`:
/// not one of its words.
fn gzip_proxied_flag<'p>(p: &'p mut GzipProxied, word: &str) -> Option<&'p mut bool> {
    Some(match word.to_ascii_lowercase().as_str() {
        "off" => &mut p.off,
        "expired" => &mut p.expired,
        "no-cache" => &mut p.no_cache,
        "no-store" => &mut p.no_store,
        "private" => &mut p.private,
        "no_last_modified" => &mut p.no_last_modified,
        "no_etag" => &mut p.no_etag,
        "auth" => &mut p.auth,
        "any" => &mut p.any,
        _ => return None,
    })
}

/// A `*_temp_path` directive as the IR keeps it (its arguments were checked by `knobs`:
/// levels are digit counts ≥ 1, at most 10 in all); `None`: nginx's default directory.
fn temp_path(d: Option<&&Directive>, default: &str) -> TempPath {
    match d {
        Some(d) => TempPath {
            path: arg(d, 0).to_string(),
            levels: (1..d.args.len())
                .filter_map(|i| parse_number::<u8>(arg(d, i)))
                .filter(|l| (1..=10).contains(l))
                .collect(),
        },
        None => TempPath {
            path: default.to_string(),
            levels: Vec::new(),
        },
    }
}

/// `keepalive_disable`'s words as nginx's bitmask reads them (`none` sets nothing); no
/// directive: nginx's default, `msie6`.
fn keepalive_disable(d: Option<&&Directive>) -> KeepaliveDisable {
    match d {
        None => KeepaliveDisable::default(),
        Some(d) => KeepaliveDisable {
            msie6: d.args.iter().any(|a| a.value == "msie6"),
            safari: d.args.iter().any(|a| a.value == "safari"),
        },
    }
}
