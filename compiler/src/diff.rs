//! `protonc diff`: every change in meaning between two compiled configs, for a person reading
//! a pull request (text, Markdown) or a tool (JSON).
//!
//! What is compared is what the runtime would do, never where it is written: servers are
//! known by their names, locations by how they are written (`^~ /images/`), upstream peers by
//! address, and values are shown in the config's own units (`expires 7d -> 30d`). Then a
//! corpus of requests (given, or made from both configs' locations) is routed in both with the
//! runtime's engine, and every request whose answer changes is listed.
//!
//! Nothing here reads files or prints.

use crate::compile::{content_handler_of, handler_of, Matchers};
use crate::expect::{self, Key, Request};
use crate::units;
use proton_ir::{Ir, Location, LocationKind, ScriptOp, ServerId, Template};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Whether something appeared, went away or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

impl ChangeKind {
    fn mark(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Changed => '~',
        }
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// What kind of thing: `listen`, `server`, `server_name`, `location`, `directive`,
    /// `upstream`, `peer`, `request`.
    pub what: &'static str,
    pub change: ChangeKind,
    /// The section it belongs to: `http`, `listen 127.0.0.1:80`, `upstream backend`,
    /// `server "example.com"`, `requests`.
    pub scope: String,
    /// The location inside a server section (as written: `^~ /images/`), if any.
    pub location: Option<String>,
    /// The directive name, peer address, location or request line.
    pub subject: String,
    /// The value before (`None`: added) and after (`None`: removed).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// All differences between two configs, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigDiff {
    pub different: bool,
    /// How many requests were routed in both configs.
    pub requests_checked: usize,
    pub changes: Vec<Change>,
}

/// Compares `a` and `b`. `requests`: the corpus to route in both; `None`: one made from both
/// configs' server names and locations ([`sample_requests`]).
pub fn diff(a: &Ir, b: &Ir, requests: Option<Vec<Request>>) -> ConfigDiff {
    let (ma, mb) = (Matchers::new(a), Matchers::new(b));
    let mut changes = Vec::new();
    compare_maps(
        &mut changes,
        "directive",
        "http",
        None,
        &http_level(a),
        &http_level(b),
    );
    listeners(&mut changes, a, b);
    upstreams(&mut changes, a, b);
    servers(&mut changes, a, b);
    let corpus = requests.unwrap_or_else(|| {
        let mut r = sample_requests(a, &ma);
        for x in sample_requests(b, &mb) {
            if !r.contains(&x) {
                r.push(x);
            }
        }
        r
    });
    for req in &corpus {
        let (x, y) = (
            expect::answer(a, &ma, req, false),
            expect::answer(b, &mb, req, false),
        );
        if x == y {
            continue;
        }
        let differing = |ans: &expect::Answer, other: &expect::Answer| -> String {
            // A request only one config can route: its error, and the other's answer in short.
            if let Some(e) = ans.error() {
                return format!("error {e}");
            }
            if other.error().is_some() {
                return [Key::Server, Key::Location, Key::Handler]
                    .iter()
                    .map(|k| format!("{} {}", k.name(), ans.values(*k).join(" ")))
                    .collect::<Vec<_>>()
                    .join("; ");
            }
            let mut parts = Vec::new();
            for key in Key::ALL {
                let (v, w) = (ans.values(key), other.values(key));
                if v == w {
                    continue;
                }
                if key != Key::Header {
                    if v.is_empty() {
                        parts.push(format!("no {}", key.name()));
                    }
                    parts.extend(v.iter().map(|v| format!("{} {v}", key.name())));
                    continue;
                }
                // Headers: only those that differ; a header only the other side has is
                // `no header NAME` here.
                let name = |h: &str| h.split(':').next().unwrap_or(h).trim().to_ascii_lowercase();
                let mine: Vec<&&str> = v.iter().filter(|h| !w.contains(h)).collect();
                parts.extend(mine.iter().map(|h| format!("header {h}")));
                for h in w.iter().filter(|h| !v.contains(h)) {
                    if !mine.iter().any(|m| name(m) == name(h)) {
                        parts.push(format!("no header {}", h.split(':').next().unwrap_or(h)));
                    }
                }
            }
            parts.join("; ")
        };
        changes.push(Change {
            what: "request",
            change: ChangeKind::Changed,
            scope: "requests".into(),
            location: None,
            subject: req.line(),
            before: Some(differing(&x, &y)),
            after: Some(differing(&y, &x)),
        });
    }
    ConfigDiff {
        different: !changes.is_empty(),
        requests_checked: corpus.len(),
        changes,
    }
}

/// Adds a change per key that differs between two flattened maps.
fn compare_maps(
    out: &mut Vec<Change>,
    what: &'static str,
    scope: &str,
    location: Option<&str>,
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
) {
    for (k, v) in a {
        let w = b.get(k);
        if w == Some(v) {
            continue;
        }
        out.push(Change {
            what,
            change: if w.is_some() {
                ChangeKind::Changed
            } else {
                ChangeKind::Removed
            },
            scope: scope.to_string(),
            location: location.map(str::to_string),
            subject: k.clone(),
            before: Some(v.clone()),
            after: w.cloned(),
        });
    }
    for (k, w) in b {
        if !a.contains_key(k) {
            out.push(Change {
                what,
                change: ChangeKind::Added,
                scope: scope.to_string(),
                location: location.map(str::to_string),
                subject: k.clone(),
                before: None,
                after: Some(w.clone()),
            });
        }
    }
}

/// Renders IR values as the config writes them.
struct Render<'a> {
    ir: &'a Ir,
}

impl Render<'_> {
    fn template(&self, t: &Template) -> String {
        self.ir.source_of(t)
    }

    fn regex(&self, id: u64) -> String {
        match self.ir.regexes.get(id as usize) {
            Some(r) if r.case_insensitive => format!("~*{}", r.pattern),
            Some(r) => format!("~{}", r.pattern),
            None => format!("~(regex #{id})"),
        }
    }

    /// A leaf value; `name` is the field (or enum variant) it is the value of.
    fn value(&self, name: &str, v: &Value) -> String {
        match v {
            Value::Null => "(none)".into(),
            Value::Bool(true) => "on".into(),
            Value::Bool(false) => "off".into(),
            Value::Number(n) => match n.as_u64() {
                Some(u) if name.ends_with("_ms") => units::time_ms(u),
                Some(u) if name.ends_with("_secs") => {
                    units::time_secs(i64::try_from(u).unwrap_or(i64::MAX))
                }
                Some(u) if is_size(name) => units::size(u),
                Some(u) if is_regex(name) => self.regex(u),
                Some(u) => u.to_string(),
                None => match n.as_i64() {
                    Some(i) if name.ends_with("_secs") => units::time_secs(i),
                    _ => n.to_string(),
                },
            },
            Value::String(s) => variant_name(s),
            Value::Array(items) => {
                // `(count, size)` pairs: `large_client_header_buffers 4 8k`.
                if let [Value::Number(n), Value::Number(size)] = items.as_slice() {
                    if name.ends_with("buffers") {
                        return format!(
                            "{n} {}",
                            size.as_u64().map_or_else(|| size.to_string(), units::size)
                        );
                    }
                }
                let parts: Vec<String> = items.iter().map(|x| self.value(name, x)).collect();
                let sep = if items.iter().any(|x| x.is_object() && !is_template(x)) {
                    "; "
                } else {
                    " "
                };
                listed(&parts, sep)
            }
            Value::Object(o) => {
                if is_template(v) {
                    return serde_json::from_value::<Template>(v.clone())
                        .map(|t| self.template(&t))
                        .unwrap_or_else(|_| v.to_string());
                }
                // An enum variant with data: `{"Const": 8192}`, `{"File": {…}}`.
                if o.len() == 1 {
                    if let Some((k, x)) = o.iter().next() {
                        if k.starts_with(|c: char| c.is_ascii_uppercase()) {
                            let inner = self.value(&format!("{name}.{k}"), x);
                            return match k.as_str() {
                                "Const" | "Var" | "Text" | "Literal" => self.value(name, x),
                                "Regex" | "Matches" | "NotMatches" => match x.as_u64() {
                                    Some(id) => self.regex(id),
                                    None => inner,
                                },
                                _ => format!("{} {inner}", variant_name(k)),
                            };
                        }
                    }
                }
                // A struct inside a list: its fields that are set, `name=value`.
                let parts: Vec<String> = o
                    .iter()
                    .filter(|(_, x)| !matches!(x, Value::Null | Value::Bool(false)))
                    .map(|(k, x)| match x {
                        Value::Bool(true) => k.clone(),
                        _ => format!("{}={}", directive_leaf(k), self.value(k, x)),
                    })
                    .collect();
                parts.join(" ")
            }
        }
    }

    /// Flattens a struct into `directive → value` (nested structs joined with `_`).
    fn flatten(&self, prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(o) if !is_template(v) && !is_variant(v) => {
                for (k, x) in o {
                    let name = join_name(prefix, k);
                    self.flatten(&name, x, out);
                }
            }
            _ => {
                out.insert(directive_name(prefix), self.value(prefix, v));
            }
        }
    }
}

fn is_template(v: &Value) -> bool {
    matches!(v, Value::Object(o) if o.len() == 1 && o.contains_key("parts"))
}

fn is_variant(v: &Value) -> bool {
    matches!(v, Value::Object(o) if o.len() == 1
        && o.keys().all(|k| k.starts_with(|c: char| c.is_ascii_uppercase())))
}

fn is_size(name: &str) -> bool {
    let leaf = name.rsplit(['.', '_']).next().unwrap_or(name);
    name.contains("size")
        || matches!(leaf, "slice" | "preread")
        || name.ends_with("limit_rate")
        || name.ends_with("limit_rate_after")
        || name.ends_with("min_length")
        || name.ends_with("buffer")
}

fn is_regex(name: &str) -> bool {
    name.ends_with("regex") || name.ends_with("gzip_disable") || name == "disable"
}

/// `Off` → `off`, `Http10` → `http10`: enum variants as the config writes them; other
/// strings as they are.
fn variant_name(s: &str) -> String {
    if s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
    {
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        }
        return match out.as_str() {
            "http10" => "1.0".into(),
            "http11" => "1.1".into(),
            _ => out,
        };
    }
    s.to_string()
}

fn join_name(prefix: &str, k: &str) -> String {
    if prefix.is_empty() {
        k.to_string()
    } else {
        format!("{prefix}_{k}")
    }
}

/// A field name without its unit suffix.
fn directive_leaf(k: &str) -> &str {
    k.strip_suffix("_ms")
        .or_else(|| k.strip_suffix("_secs"))
        .unwrap_or(k)
}

/// The nginx directive a flattened field path stands for, where it differs from the path.
fn directive_name(path: &str) -> String {
    let base = directive_leaf(path);
    let base = base
        .strip_suffix("_enable")
        .or_else(|| base.strip_suffix("_enabled"))
        .unwrap_or(base);
    let renamed = match base {
        "add_headers" => "add_header",
        "add_trailers" => "add_trailer",
        "error_pages" => "error_page",
        "access" => "allow/deny",
        "index" => "index",
        "proxy_set_headers" => "proxy_set_header",
        "proxy_hide_headers" => "proxy_hide_header",
        "proxy_pass_headers" => "proxy_pass_header",
        "gzip_static_mode" => "gzip_static",
        "brotli_static_mode" => "brotli_static",
        "zstd_static_mode" => "zstd_static",
        "client_body_temp_path_path" => "client_body_temp_path",
        "proxy_temp_path_path" => "proxy_temp_path",
        "open_file_cache_cache" => "open_file_cache",
        "sub_filter_pairs" => "sub_filter",
        "keepalive_header" => "keepalive_timeout (header)",
        other => other,
    };
    match renamed.strip_prefix("proxy_tls_") {
        Some(rest) => format!("proxy_ssl_{rest}"),
        None => renamed.to_string(),
    }
}

/// `main`/`events` settings, log formats and maps: `directive → value`.
fn http_level(ir: &Ir) -> BTreeMap<String, String> {
    let r = Render { ir };
    let mut out = BTreeMap::new();
    if let Ok(v) = serde_json::to_value(&ir.main) {
        r.flatten("", &v, &mut out);
    }
    for f in &ir.log_formats {
        out.insert(
            format!("log_format {}", f.name),
            format!(
                "escape={} {}",
                variant_name(&format!("{:?}", f.escape)),
                r.template(&f.template)
            ),
        );
    }
    for m in &ir.maps {
        let value = match (&m.geo, &m.split) {
            (Some(g), _) => {
                let v = serde_json::to_value(g).unwrap_or_default();
                format!("geo {}: {}", r.template(&m.source), r.value("geo", &v))
            }
            (None, Some(parts)) => split_text(&r, m, parts),
            (None, None) => map_text(&r, m),
        };
        out.insert(format!("map ${}", m.name), value);
    }
    out
}

/// A `split_clients` as written: `split_clients SOURCE { 51.20% a; 10.00% b; * c; }`, each
/// part's share taken back from its bound.
fn split_text(r: &Render<'_>, m: &proton_ir::Map, parts: &[(u32, proton_ir::Template)]) -> String {
    let mut prev = 0u64;
    let lines: Vec<String> = parts
        .iter()
        .map(|(bound, value)| {
            let share = if *bound == 0 {
                "*".to_string()
            } else {
                let b = u64::from(*bound);
                let hundredths = ((b - prev.min(b)) * 10_000 + 0x7fff_ffff) / 0xffff_ffff;
                prev = b;
                format!("{}.{:02}%", hundredths / 100, hundredths % 100)
            };
            format!("{share} {};", quote(&r.template(value)))
        })
        .collect();
    format!(
        "split_clients {} {{ {} }}",
        r.template(&m.source),
        lines.join(" ")
    )
}

/// A `map` as written: `$source { key value; … default value; }` (keys in the IR's order).
fn map_text(r: &Render<'_>, m: &proton_ir::Map) -> String {
    let key = |k: &str| quote(k);
    let mut entries: Vec<String> = Vec::new();
    if m.hostnames {
        entries.push("hostnames".into());
    }
    if m.volatile {
        entries.push("volatile".into());
    }
    for (k, v) in &m.exact {
        entries.push(format!("{} {}", key(k), quote(&r.template(v))));
    }
    for (k, v) in &m.leading {
        entries.push(format!("*{k} {}", quote(&r.template(v))));
    }
    for (k, v) in &m.trailing {
        entries.push(format!("{k}* {}", quote(&r.template(v))));
    }
    for (id, v) in &m.regex {
        entries.push(format!(
            "{} {}",
            r.regex(u64::from(id.0)),
            quote(&r.template(v))
        ));
    }
    entries.push(format!("default {}", quote(&r.template(&m.default))));
    format!("{} {{ {}; }}", r.template(&m.source), entries.join("; "))
}

/// Listen addresses, their flags, default servers and server-name tables.
fn listeners(out: &mut Vec<Change>, a: &Ir, b: &Ir) {
    let flags = |ir: &Ir, l: &proton_ir::Listener| -> BTreeMap<String, String> {
        let r = Render { ir };
        let mut m = BTreeMap::new();
        let mut v = serde_json::to_value(l).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("names");
            o.remove("addr");
        }
        r.flatten("", &v, &mut m);
        m.insert("default_server".into(), server_key(ir, l.names.default));
        for (n, s) in &l.names.exact {
            m.insert(format!("server_name {n}"), server_key(ir, *s));
        }
        for w in &l.names.leading {
            let name = if w.also_bare {
                w.suffix.clone()
            } else {
                format!("*{}", w.suffix)
            };
            m.insert(format!("server_name {name}"), server_key(ir, w.server));
        }
        for (p, s) in &l.names.trailing {
            m.insert(format!("server_name {p}*"), server_key(ir, *s));
        }
        for (re, s) in &l.names.regex {
            m.insert(
                format!("server_name {}", r.regex(u64::from(re.0))),
                server_key(ir, *s),
            );
        }
        m
    };
    for l in &a.listeners {
        match b.listeners.iter().find(|x| x.addr == l.addr) {
            None => out.push(Change {
                what: "listen",
                change: ChangeKind::Removed,
                scope: "listen".into(),
                location: None,
                subject: l.addr.clone(),
                before: Some(server_key(a, l.names.default)),
                after: None,
            }),
            Some(m) => compare_maps(
                out,
                "listen",
                &format!("listen {}", l.addr),
                None,
                &flags(a, l),
                &flags(b, m),
            ),
        }
    }
    for l in &b.listeners {
        if !a.listeners.iter().any(|x| x.addr == l.addr) {
            out.push(Change {
                what: "listen",
                change: ChangeKind::Added,
                scope: "listen".into(),
                location: None,
                subject: l.addr.clone(),
                before: None,
                after: Some(server_key(b, l.names.default)),
            });
        }
    }
}

/// A server as diffs name it: `server "first name"`, with its addresses when another server
/// of the config has the same first name.
pub fn server_key(ir: &Ir, sid: ServerId) -> String {
    let first = |s: &proton_ir::Server| s.names.first().cloned().unwrap_or_default();
    let Some(server) = ir.servers.get(sid.0 as usize) else {
        return format!("server #{}", sid.0);
    };
    let name = first(server);
    let shared = ir.servers.iter().filter(|s| first(s) == name).count() > 1;
    if !shared {
        return format!("server \"{name}\"");
    }
    format!("server \"{name}\" on {}", addresses(ir, sid).join(","))
}

/// The listen addresses server `sid` is on.
fn addresses(ir: &Ir, sid: ServerId) -> Vec<&str> {
    ir.listeners
        .iter()
        .filter(|l| serves(l, sid))
        .map(|l| l.addr.as_str())
        .collect()
}

/// Whether `sid` can be chosen on listener `l`.
fn serves(l: &proton_ir::Listener, sid: ServerId) -> bool {
    l.names.default == sid
        || l.names.exact.iter().any(|(_, s)| *s == sid)
        || l.names.leading.iter().any(|w| w.server == sid)
        || l.names.trailing.iter().any(|(_, s)| *s == sid)
        || l.names.regex.iter().any(|(_, s)| *s == sid)
}

/// A peer's parameters: `weight=N` always, the others when not nginx's defaults.
fn peer_params(p: &proton_ir::UpstreamServer) -> String {
    let mut s = format!("weight={}", p.weight);
    if p.max_fails != 1 {
        let _ = write!(s, " max_fails={}", p.max_fails);
    }
    if p.fail_timeout_ms != 10_000 {
        let _ = write!(s, " fail_timeout={}", units::time_ms(p.fail_timeout_ms));
    }
    if p.max_conns != 0 {
        let _ = write!(s, " max_conns={}", p.max_conns);
    }
    for (on, word) in [
        (p.backup, "backup"),
        (p.down, "down"),
        (p.resolve, "resolve"),
    ] {
        if on {
            s.push(' ');
            s.push_str(word);
        }
    }
    s
}

fn balance_text(ir: &Ir, b: &proton_ir::Balance) -> String {
    use proton_ir::Balance as B;
    match b {
        B::RoundRobin => "round-robin".into(),
        B::LeastConn => "least_conn".into(),
        B::IpHash => "ip_hash".into(),
        B::Hash { key, consistent } => format!(
            "hash {}{}",
            ir.source_of(key),
            if *consistent { " consistent" } else { "" }
        ),
        B::Random { two } => format!("random{}", if *two { " two" } else { "" }),
        B::LeastTime { last_byte } => format!(
            "least_time {}",
            if *last_byte { "last_byte" } else { "header" }
        ),
    }
}

/// Explicit `upstream {}` blocks by name: peers by address, then the group's settings.
fn upstreams(out: &mut Vec<Change>, a: &Ir, b: &Ir) {
    let groups = |ir: &Ir| -> BTreeMap<String, usize> {
        ir.upstreams
            .iter()
            .enumerate()
            .filter(|(_, u)| u.explicit)
            .map(|(i, u)| (u.name.clone(), i))
            .collect()
    };
    let peers = |u: &proton_ir::Upstream| -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for p in &u.servers {
            let mut key = format!("server {}", p.address);
            let mut n = 2;
            while m.contains_key(&key) {
                key = format!("server {} #{n}", p.address);
                n += 1;
            }
            m.insert(key, peer_params(p));
        }
        m
    };
    let settings = |ir: &Ir, u: &proton_ir::Upstream| -> BTreeMap<String, String> {
        let r = Render { ir };
        let mut m = BTreeMap::new();
        let mut v = serde_json::to_value(u).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            for k in ["servers", "name", "explicit", "balance"] {
                o.remove(k);
            }
        }
        r.flatten("", &v, &mut m);
        m.insert("balance".into(), balance_text(ir, &u.balance));
        m
    };
    let (ga, gb) = (groups(a), groups(b));
    for (name, &i) in &ga {
        let scope = format!("upstream {name}");
        let Some(&j) = gb.get(name) else {
            out.push(Change {
                what: "upstream",
                change: ChangeKind::Removed,
                scope: "upstreams".into(),
                location: None,
                subject: name.clone(),
                before: Some(
                    peers(&a.upstreams[i])
                        .into_keys()
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                after: None,
            });
            continue;
        };
        let (ua, ub) = (&a.upstreams[i], &b.upstreams[j]);
        compare_maps(out, "peer", &scope, None, &peers(ua), &peers(ub));
        compare_maps(
            out,
            "directive",
            &scope,
            None,
            &settings(a, ua),
            &settings(b, ub),
        );
    }
    for (name, &j) in &gb {
        if !ga.contains_key(name) {
            let list: Vec<String> = b.upstreams[j]
                .servers
                .iter()
                .map(|p| format!("{} {}", p.address, peer_params(p)))
                .collect();
            out.push(Change {
                what: "upstream",
                change: ChangeKind::Added,
                scope: "upstreams".into(),
                location: None,
                subject: name.clone(),
                before: None,
                after: Some(list.join(", ")),
            });
        }
    }
}

/// A rewrite-module statement as written.
fn script_text(ir: &Ir, ops: &[ScriptOp]) -> Vec<String> {
    let r = Render { ir };
    ops.iter()
        .map(|op| match op {
            ScriptOp::Return { code, text } => match text {
                Some(t) => format!("return {code} {}", quote(&ir.source_of(t))),
                None => format!("return {code}"),
            },
            ScriptOp::Rewrite {
                regex,
                replacement,
                flag,
                ..
            } => {
                let pattern = ir
                    .regexes
                    .get(regex.0 as usize)
                    .map_or("", |x| x.pattern.as_str());
                let flag = match flag {
                    proton_ir::RewriteFlag::None => "",
                    proton_ir::RewriteFlag::Last => " last",
                    proton_ir::RewriteFlag::Break => " break",
                    proton_ir::RewriteFlag::Redirect => " redirect",
                    proton_ir::RewriteFlag::Permanent => " permanent",
                };
                format!("rewrite {pattern} {}{flag}", ir.source_of(replacement))
            }
            ScriptOp::Set { var, value } => format!(
                "set ${} {}",
                ir.user_vars.get(*var as usize).map_or("?", String::as_str),
                quote(&ir.source_of(value))
            ),
            ScriptOp::SetBuiltin { var, value } => {
                format!("set ${} {}", var.name(), quote(&ir.source_of(value)))
            }
            ScriptOp::If { cond, then, .. } => format!(
                "if ({}) {{ {} }}",
                condition_text(&r, cond),
                script_text(ir, then)
                    .iter()
                    .map(|s| format!("{s};"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            ScriptOp::Break => "break".into(),
        })
        .collect()
}

fn condition_text(r: &Render<'_>, c: &proton_ir::Condition) -> String {
    use proton_ir::Condition as C;
    let not = |n: bool| if n { "!" } else { "" };
    match c {
        C::Value(t) => r.template(t),
        C::Equals {
            left,
            right,
            negate,
        } => format!(
            "{} {}= {}",
            r.template(left),
            not(*negate),
            quote(&r.template(right))
        ),
        C::Matches {
            left,
            regex,
            negate,
        } => {
            let re = r.regex(u64::from(regex.0));
            let (op, pattern) = match re.strip_prefix("~*") {
                Some(p) => ("~*", p.to_string()),
                None => ("~", re.trim_start_matches('~').to_string()),
            };
            format!("{} {}{op} {pattern}", r.template(left), not(*negate))
        }
        C::File { test, path, negate } => {
            let t = match test {
                proton_ir::FileTest::File => "-f",
                proton_ir::FileTest::Dir => "-d",
                proton_ir::FileTest::Exists => "-e",
                proton_ir::FileTest::Exec => "-x",
            };
            format!("{}{t} {}", not(*negate), r.template(path))
        }
    }
}

/// Quotes a value that has spaces or is empty, as the config would.
fn quote(s: &str) -> String {
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == ';' || c == '{') {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

/// What a location does, directive by directive.
fn location_directives(ir: &Ir, loc: &Location) -> BTreeMap<String, String> {
    let r = Render { ir };
    let mut out = BTreeMap::new();
    let conf = &loc.conf;
    if let Some(settings) = ir.settings.get(conf.settings.0 as usize) {
        let mut v = serde_json::to_value(settings).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            for k in [
                "types",
                "access_log",
                "resolver",
                "expires",
                "add_headers",
                "access",
            ] {
                o.remove(k);
            }
        }
        r.flatten("", &v, &mut out);
        out.insert("expires".into(), expires_text(ir, &settings.expires));
        let rules: Vec<String> = settings.access.iter().map(access_text).collect();
        out.insert("allow/deny".into(), listed(&rules, "; "));
        let headers: Vec<String> = settings
            .add_headers
            .iter()
            .map(|h| {
                format!(
                    "{} {}{}",
                    h.name,
                    quote(&ir.source_of(&h.value)),
                    if h.always { " always" } else { "" }
                )
            })
            .collect();
        out.insert("add_header".into(), listed(&headers, "; "));
        let logs: Vec<String> = settings
            .access_log
            .iter()
            .map(|l| match l {
                proton_ir::AccessLog::Off => "off".to_string(),
                proton_ir::AccessLog::File {
                    path,
                    format,
                    buffer,
                    flush_ms,
                    condition,
                    gzip,
                } => {
                    let mut s = format!(
                        "{} {}",
                        ir.source_of(path),
                        ir.log_formats
                            .get(format.0 as usize)
                            .map_or("?", |f| f.name.as_str())
                    );
                    if let Some(b) = buffer {
                        let _ = write!(s, " buffer={}", units::size(*b));
                    }
                    if let Some(f) = flush_ms {
                        let _ = write!(s, " flush={}", units::time_ms(*f));
                    }
                    if let Some(g) = gzip {
                        let _ = write!(s, " gzip={g}");
                    }
                    if let Some(c) = condition {
                        let _ = write!(s, " if={}", ir.source_of(c));
                    }
                    s
                }
            })
            .collect();
        out.insert("access_log".into(), listed(&logs, "; "));
        out.insert(
            "resolver".into(),
            settings
                .resolver
                .and_then(|i| ir.resolvers.get(i as usize))
                .map_or_else(|| "(none)".into(), |res| res.servers.join(" ")),
        );
        out.insert(
            "types".into(),
            ir.mime_types
                .get(settings.types.0 as usize)
                .map_or_else(String::new, |t| format!("{} types", t.len())),
        );
    }
    out.insert("handler".into(), content_handler_of(ir, loc));
    // What the location does in a few words, for a location added or removed: its rewrite
    // phase when it has one, else its handler.
    let script = script_text(ir, &conf.script);
    out.insert(
        "answer".into(),
        if script.is_empty() || conf.returns() && script.len() == 1 {
            handler_of(ir, loc)
        } else {
            script.join("; ")
        },
    );
    out.insert(
        "internal".into(),
        r.value("internal", &Value::Bool(conf.internal)),
    );
    out.insert("rewrite phase".into(), listed(&script, "; "));
    if let Some(le) = &conf.limit_except {
        out.insert("limit_except".into(), le.methods.join(" "));
    }
    out
}

/// The `types {}` entries only one of two locations has (long tables are not printed whole).
fn types_change(a: &Ir, la: &Location, b: &Ir, lb: &Location) -> Option<(String, String)> {
    let table = |ir: &Ir, l: &Location| -> Vec<(String, String)> {
        ir.settings
            .get(l.conf.settings.0 as usize)
            .and_then(|s| ir.mime_types.get(s.types.0 as usize))
            .cloned()
            .unwrap_or_default()
    };
    let (ta, tb) = (table(a, la), table(b, lb));
    if ta == tb {
        return None;
    }
    let only = |x: &[(String, String)], y: &[(String, String)]| -> String {
        let v: Vec<String> = x
            .iter()
            .filter(|e| !y.contains(e))
            .map(|(ext, t)| format!("{t} {ext}"))
            .collect();
        listed(&v, "; ")
    };
    Some((only(&ta, &tb), only(&tb, &ta)))
}

/// `allow 10.0.0.0/8`, `deny all`.
fn access_text(rule: &proton_ir::AccessRule) -> String {
    let verb = if rule.deny { "deny" } else { "allow" };
    let who = match &rule.from {
        None => "all".to_string(),
        Some(proton_ir::ClientAddr::Unix) => "unix:".to_string(),
        Some(proton_ir::ClientAddr::Cidr { addr, prefix }) => {
            let full = if addr.is_ipv4() { 32 } else { 128 };
            if *prefix == full {
                addr.to_string()
            } else {
                format!("{addr}/{prefix}")
            }
        }
    };
    format!("{verb} {who}")
}

fn expires_text(ir: &Ir, e: &proton_ir::Expires) -> String {
    use proton_ir::Expires as E;
    match e {
        E::Off => "off".into(),
        E::Epoch => "epoch".into(),
        E::Max => "max".into(),
        E::After(s) => units::time_secs(*s),
        E::Modified(s) => format!("modified {}", units::time_secs(*s)),
        E::Daily(s) => units::time_of_day(*s),
        E::Variable { modified, value } => format!(
            "{}{}",
            if *modified { "modified " } else { "" },
            ir.source_of(value)
        ),
    }
}

/// The locations of a server by how they are written, with the `if` and `limit_except` blocks
/// inside them (whose directives are listed where they differ from their location's).
fn server_locations(ir: &Ir, sid: ServerId) -> BTreeMap<String, (usize, BTreeMap<String, String>)> {
    let mut out = BTreeMap::new();
    for (i, l) in ir.locations.iter().enumerate() {
        if l.server != sid || matches!(l.kind, LocationKind::If | LocationKind::LimitExcept) {
            continue;
        }
        let name = if l.kind == LocationKind::Server {
            "(server level)".to_string()
        } else {
            expect::location_text(ir, l)
        };
        let mut dirs = location_directives(ir, l);
        let blocks = inner_blocks(ir, l);
        for (prefix, inner) in blocks {
            let inner_dirs = location_directives(ir, inner);
            for (k, v) in inner_dirs {
                if dirs.get(&k) != Some(&v) {
                    dirs.insert(format!("{prefix} {k}"), v);
                }
            }
        }
        let mut key = name.clone();
        let mut n = 2;
        while out.contains_key(&key) {
            key = format!("{name} #{n}");
            n += 1;
        }
        out.insert(key, (i, dirs));
    }
    out
}

/// The `if (…)` and `limit_except` blocks of a location, with their headings.
fn inner_blocks<'a>(ir: &'a Ir, l: &'a Location) -> Vec<(String, &'a Location)> {
    let r = Render { ir };
    let mut out = Vec::new();
    fn walk<'a>(
        ir: &'a Ir,
        r: &Render<'_>,
        ops: &'a [ScriptOp],
        out: &mut Vec<(String, &'a Location)>,
    ) {
        for op in ops {
            if let ScriptOp::If {
                cond,
                then,
                location,
                ..
            } = op
            {
                if let Some(inner) = location.and_then(|id| ir.locations.get(id.0 as usize)) {
                    out.push((format!("if ({})", condition_text(r, cond)), inner));
                }
                walk(ir, r, then, out);
            }
        }
    }
    walk(ir, &r, &l.conf.script, &mut out);
    if let Some(le) = &l.conf.limit_except {
        if let Some(inner) = ir.locations.get(le.location.0 as usize) {
            out.push((format!("limit_except {}", le.methods.join(" ")), inner));
        }
    }
    out
}

/// Server-level things that are not a location's: server names, the server's rewrite phase,
/// TLS.
fn server_directives(ir: &Ir, sid: ServerId) -> BTreeMap<String, String> {
    let r = Render { ir };
    let mut out = BTreeMap::new();
    let Some(s) = ir.servers.get(sid.0 as usize) else {
        return out;
    };
    out.insert("server_name".into(), s.names.join(" "));
    let script = script_text(ir, &s.script);
    out.insert("rewrite phase".into(), listed(&script, "; "));
    out.insert("listen".into(), addresses(ir, sid).join(" "));
    match &s.tls {
        Some(t) => {
            if let Ok(v) = serde_json::to_value(t) {
                r.flatten("ssl", &v, &mut out);
            }
        }
        None => {
            out.insert("ssl".into(), "off".into());
        }
    }
    out
}

fn servers(out: &mut Vec<Change>, a: &Ir, b: &Ir) {
    let keyed = |ir: &Ir| -> BTreeMap<String, ServerId> {
        (0..ir.servers.len())
            .map(|i| {
                let id = ServerId(i as u32);
                (server_key(ir, id), id)
            })
            .collect()
    };
    let (ka, kb) = (keyed(a), keyed(b));
    for (key, &sa) in &ka {
        let Some(&sb) = kb.get(key) else {
            out.push(Change {
                what: "server",
                change: ChangeKind::Removed,
                scope: "servers".into(),
                location: None,
                subject: key.clone(),
                before: Some(
                    server_directives(a, sa)
                        .remove("listen")
                        .unwrap_or_default(),
                ),
                after: None,
            });
            continue;
        };
        let mut changes = Vec::new();
        compare_maps(
            &mut changes,
            "directive",
            key,
            None,
            &server_directives(a, sa),
            &server_directives(b, sb),
        );
        let (la, lb) = (server_locations(a, sa), server_locations(b, sb));
        // Changes of the server level, which every location inheriting them repeats: said
        // once, at the server level.
        let level = |m: &BTreeMap<String, (usize, BTreeMap<String, String>)>| {
            m.get("(server level)")
                .map(|(_, d)| d.clone())
                .unwrap_or_default()
        };
        let (sla, slb) = (level(&la), level(&lb));
        for (name, (ia, da)) in &la {
            let Some((ib, db)) = lb.get(name) else {
                changes.push(Change {
                    what: "location",
                    change: ChangeKind::Removed,
                    scope: key.clone(),
                    location: None,
                    subject: name.clone(),
                    before: da.get("answer").cloned(),
                    after: None,
                });
                continue;
            };
            let mut per = Vec::new();
            compare_maps(&mut per, "directive", key, Some(name), da, db);
            // `answer` is for locations added or removed; `handler` and the rewrite phase
            // say the same in detail.
            per.retain(|c| c.subject != "answer" && !c.subject.ends_with(" answer"));
            if name != "(server level)" {
                per.retain(|c| {
                    !(sla.get(&c.subject) == c.before.as_ref()
                        && slb.get(&c.subject) == c.after.as_ref()
                        && c.before != c.after)
                });
            }
            if let (Some(x), Some(y)) = (a.locations.get(*ia), b.locations.get(*ib)) {
                if let Some((before, after)) = types_change(a, x, b, y) {
                    per.retain(|c| c.subject != "types");
                    per.push(Change {
                        what: "directive",
                        change: ChangeKind::Changed,
                        scope: key.clone(),
                        location: Some(name.clone()),
                        subject: "types (entries only on one side)".into(),
                        before: Some(before),
                        after: Some(after),
                    });
                }
            }
            changes.extend(per);
        }
        for (name, (_, db)) in &lb {
            if !la.contains_key(name) {
                changes.push(Change {
                    what: "location",
                    change: ChangeKind::Added,
                    scope: key.clone(),
                    location: None,
                    subject: name.clone(),
                    before: None,
                    after: db.get("answer").cloned(),
                });
            }
        }
        out.extend(changes);
    }
    for (key, &sb) in &kb {
        if !ka.contains_key(key) {
            out.push(Change {
                what: "server",
                change: ChangeKind::Added,
                scope: "servers".into(),
                location: None,
                subject: key.clone(),
                before: None,
                after: Some(
                    server_directives(b, sb)
                        .remove("listen")
                        .unwrap_or_default(),
                ),
            });
        }
    }
}

/// Requests that reach each location of `ir`: for every server, a Host per server name
/// (`*.example.com` → `www.example.com`, `mail.*` → `mail.example`; regex names are skipped)
/// and, for every location, a URI that should hit it (exact: its path; prefix: its path, with
/// `x` after a trailing slash; regex: a string made from simple patterns, kept only when the
/// regex matches it).
pub fn sample_requests(ir: &Ir, m: &Matchers) -> Vec<Request> {
    let mut out: Vec<Request> = Vec::new();
    let port_of = |a: &str| a.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
    for (i, s) in ir.servers.iter().enumerate() {
        let sid = ServerId(i as u32);
        let Some(port) = ir
            .listeners
            .iter()
            .find(|l| serves(l, sid))
            .and_then(|l| port_of(&l.addr))
        else {
            continue;
        };
        let mut hosts: Vec<Option<String>> = s
            .names
            .iter()
            .filter_map(|n| {
                if n.is_empty() {
                    None
                } else if let Some(rest) = n.strip_prefix("*.") {
                    Some(format!("www.{rest}"))
                } else if let Some(rest) = n.strip_prefix('.') {
                    Some(rest.to_string())
                } else if let Some(rest) = n.strip_suffix(".*") {
                    Some(format!("{rest}.example"))
                } else if n.starts_with('~') {
                    None
                } else {
                    Some(n.clone())
                }
            })
            .map(Some)
            .collect();
        if hosts.is_empty() {
            hosts.push(None);
        }
        let mut uris = vec!["/".to_string()];
        for (li, l) in ir.locations.iter().enumerate() {
            if l.server != sid {
                continue;
            }
            let name = ir.text_of(l.name);
            let uri = match l.kind {
                LocationKind::Exact => Some(name.to_string()),
                LocationKind::Prefix | LocationKind::PrefixNoRegex => {
                    Some(if name.ends_with('/') {
                        format!("{name}x")
                    } else {
                        name.to_string()
                    })
                }
                LocationKind::Regex | LocationKind::RegexCaseless => {
                    regex_of(ir, sid, proton_ir::LocationId(li as u32)).and_then(|id| {
                        let pattern = &ir.regexes.get(id.0 as usize)?.pattern;
                        let mut s = sample_for_regex(pattern)?;
                        if !s.starts_with('/') {
                            s.insert_str(0, "/x");
                        }
                        m.is_match(id, s.as_bytes()).then_some(s)
                    })
                }
                _ => None,
            };
            if let Some(u) = uri {
                if u.starts_with('/') && !uris.contains(&u) {
                    uris.push(u);
                }
            }
        }
        for h in &hosts {
            for u in &uris {
                let r = Request::get(h.as_deref(), Some(port), u);
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// The regex of a regex location (searched in its server's trees).
fn regex_of(ir: &Ir, sid: ServerId, target: proton_ir::LocationId) -> Option<proton_ir::RegexId> {
    let server = ir.servers.get(sid.0 as usize)?;
    let mut trees = vec![&server.tree];
    while let Some(t) = trees.pop() {
        if let Some(r) = t.regex.iter().find(|r| r.location == target) {
            return Some(r.regex);
        }
        for node in &t.nodes {
            let mut ids: Vec<proton_ir::LocationId> = node.exact.into_iter().collect();
            ids.extend(node.prefix.map(|p| p.location));
            for id in ids {
                if let Some(inner) = ir
                    .locations
                    .get(id.0 as usize)
                    .and_then(|l| l.nested.as_deref())
                {
                    trees.push(inner);
                }
            }
        }
        for r in &t.regex {
            if let Some(inner) = ir
                .locations
                .get(r.location.0 as usize)
                .and_then(|l| l.nested.as_deref())
            {
                trees.push(inner);
            }
        }
    }
    None
}

/// A string a simple regex matches: literals, escapes, `.`, classes (their first member),
/// groups (their first alternative) and quantifiers (once, or `{n}` times). `None` for what
/// it does not follow (look-arounds, negated classes, back references).
pub fn sample_for_regex(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let (s, _) = sample_seq(&chars, 0, 0)?;
    Some(s)
}

/// Samples `chars[i..]` up to an unmatched `)` or a top-level `|` (the rest of the
/// alternatives is skipped). Returns the sample and the index after the sequence.
fn sample_seq(chars: &[char], mut i: usize, depth: usize) -> Option<(String, usize)> {
    if depth > 16 {
        return None;
    }
    let mut out = String::new();
    while i < chars.len() {
        let c = chars[i];
        let atom: String;
        match c {
            ')' => return Some((out, i)),
            '|' => {
                // Skip the other alternatives of this level.
                let mut level = 0usize;
                while i < chars.len() {
                    match chars[i] {
                        '\\' => i += 1,
                        '(' => level += 1,
                        ')' if level == 0 => return Some((out, i)),
                        ')' => level -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                return Some((out, i));
            }
            '^' | '$' => {
                i += 1;
                continue;
            }
            '\\' => {
                let e = *chars.get(i + 1)?;
                atom = match e {
                    'd' => "0".into(),
                    'w' => "a".into(),
                    's' => " ".into(),
                    'b' | 'B' | 'A' | 'z' | 'Z' => String::new(),
                    c if c.is_ascii_alphanumeric() => return None,
                    c => c.to_string(),
                };
                i += 2;
            }
            '.' => {
                atom = "x".into();
                i += 1;
            }
            '[' => {
                let first = *chars.get(i + 1)?;
                if first == '^' {
                    return None;
                }
                atom = if first == '\\' {
                    match *chars.get(i + 2)? {
                        'd' => "0".into(),
                        'w' => "a".into(),
                        c if c.is_ascii_alphanumeric() => return None,
                        c => c.to_string(),
                    }
                } else {
                    first.to_string()
                };
                // Skip to the closing bracket (a `]` right after `[` is a member).
                let mut j = i + 2;
                while j < chars.len() && chars[j] != ']' {
                    if chars[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return None;
                }
                i = j + 1;
            }
            '(' => {
                let mut j = i + 1;
                if chars.get(j) == Some(&'?') {
                    match chars.get(j + 1) {
                        Some(':') => j += 2,
                        Some('<') | Some('P') => {
                            while j < chars.len() && chars[j] != '>' {
                                j += 1;
                            }
                            j += 1;
                        }
                        Some('i') => {
                            // `(?i)` and friends: flags only.
                            while j < chars.len() && chars[j] != ')' && chars[j] != ':' {
                                j += 1;
                            }
                            if chars.get(j) == Some(&')') {
                                i = j + 1;
                                continue;
                            }
                            j += 1;
                        }
                        _ => return None,
                    }
                }
                let (inner, end) = sample_seq(chars, j, depth + 1)?;
                if chars.get(end) != Some(&')') {
                    return None;
                }
                atom = inner;
                i = end + 1;
            }
            '*' | '+' | '?' | '{' => return None,
            c => {
                atom = c.to_string();
                i += 1;
            }
        }
        // A quantifier after the atom.
        let mut times = 1usize;
        match chars.get(i) {
            Some('*') | Some('?') => {
                i += 1;
                times = if atom.is_empty() { 0 } else { 1 };
            }
            Some('+') => i += 1,
            Some('{') => {
                let end = chars[i..].iter().position(|&c| c == '}')? + i;
                let body: String = chars[i + 1..end].iter().collect();
                let n = body.split(',').next()?.trim().parse::<usize>().ok()?;
                times = n.min(64);
                i = end + 1;
            }
            _ => {}
        }
        // A lazy or possessive mark.
        if matches!(chars.get(i), Some('?') | Some('+'))
            && i > 0
            && matches!(chars[i - 1], '*' | '+' | '?' | '}')
        {
            i += 1;
        }
        for _ in 0..times {
            out.push_str(&atom);
        }
    }
    Some((out, i))
}

/// The output formats of `protonc diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

/// Sections in a stable order: http, listen, upstreams, servers, requests.
fn sections(d: &ConfigDiff) -> Vec<(String, Vec<&Change>)> {
    let rank = |c: &Change| -> u8 {
        match c.scope.as_str() {
            "http" => 0,
            s if s == "listen" || s.starts_with("listen ") => 1,
            s if s == "upstreams" || s.starts_with("upstream ") => 2,
            "servers" => 3,
            "requests" => 5,
            _ => 4,
        }
    };
    let mut out: Vec<(String, Vec<&Change>)> = Vec::new();
    let mut order: Vec<&Change> = d.changes.iter().collect();
    order.sort_by_key(|c| (rank(c), c.scope.clone()));
    for c in order {
        match out.last_mut() {
            Some((s, v)) if *s == c.scope => v.push(c),
            _ => out.push((c.scope.clone(), vec![c])),
        }
    }
    out
}

fn heading(scope: &str, d: &ConfigDiff) -> String {
    match scope {
        "requests" => format!(
            "requests answered differently ({} of {} routed)",
            d.changes.iter().filter(|c| c.what == "request").count(),
            d.requests_checked
        ),
        s => s.to_string(),
    }
}

/// `protonc diff`'s output in `format`.
pub fn render(d: &ConfigDiff, format: Format) -> String {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(d).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Text => render_text(d),
        Format::Markdown => render_markdown(d),
    }
}

fn render_text(d: &ConfigDiff) -> String {
    if !d.different {
        return format!(
            "no routing differences ({} requests routed the same)\n",
            d.requests_checked
        );
    }
    let mut out = String::new();
    for (scope, changes) in sections(d) {
        let _ = writeln!(out, "{}", heading(&scope, d));
        for c in changes {
            let at = c
                .location
                .as_ref()
                .map_or_else(String::new, |l| format!("location {l}: "));
            let subject = match c.what {
                "location" => format!("location {}", c.subject),
                _ => c.subject.clone(),
            };
            let line = match (c.change, &c.before, &c.after) {
                (_, _, _) if c.what == "request" => format!(
                    "  {}\n      before: {}\n      after:  {}",
                    c.subject,
                    c.before.as_deref().unwrap_or(""),
                    c.after.as_deref().unwrap_or("")
                ),
                (ChangeKind::Added, _, Some(v)) if is_whole(c) => format!("  + {subject} ({v})"),
                (ChangeKind::Removed, Some(v), _) if is_whole(c) => {
                    format!("  - {subject} ({v})")
                }
                (ChangeKind::Added, _, Some(v)) => format!("  + {at}{subject} {v}"),
                (ChangeKind::Removed, Some(v), _) => format!("  - {at}{subject} {v}"),
                (_, Some(x), Some(y)) => format!("  ~ {at}{subject} {x} -> {y}"),
                (k, _, _) => format!("  {} {at}{subject}", k.mark()),
            };
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// A change of a whole thing (its value is a summary, not a setting).
fn is_whole(c: &Change) -> bool {
    matches!(c.what, "location" | "server" | "listen" | "upstream")
}

/// A value in a Markdown table cell: code, pipes escaped.
fn cell(s: Option<&str>) -> String {
    match s {
        None | Some("") => String::new(),
        Some(s) => format!("`{}`", s.replace('`', "'").replace('|', "\\|")),
    }
}

fn render_markdown(d: &ConfigDiff) -> String {
    let mut out = String::from("### protonc diff\n\n");
    if !d.different {
        let _ = writeln!(
            out,
            "No routing differences ({} requests routed the same).",
            d.requests_checked
        );
        return out;
    }
    let n = d.changes.iter().filter(|c| c.what != "request").count();
    let r = d.changes.len() - n;
    let _ = writeln!(
        out,
        "{n} configuration change{}, {r} of {} requests answered differently.\n",
        if n == 1 { "" } else { "s" },
        d.requests_checked
    );
    for (scope, changes) in sections(d) {
        let _ = writeln!(out, "#### {}\n", heading(&scope, d).replace('|', "\\|"));
        if scope == "requests" {
            out.push_str("| request | before | after |\n|---|---|---|\n");
            for c in changes {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    cell(Some(&c.subject)),
                    cell(c.before.as_deref()),
                    cell(c.after.as_deref())
                );
            }
        } else {
            out.push_str("| | location | what | before | after |\n|---|---|---|---|---|\n");
            for c in changes {
                let what = match c.what {
                    "location" => format!("location {}", c.subject),
                    _ => c.subject.clone(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    match c.change {
                        ChangeKind::Added => "added",
                        ChangeKind::Removed => "removed",
                        ChangeKind::Changed => "changed",
                    },
                    cell(c.location.as_deref()),
                    cell(Some(&what)),
                    cell(c.before.as_deref()),
                    cell(c.after.as_deref())
                );
            }
        }
        out.push('\n');
    }
    out
}

/// Items joined by `sep`, or `(none)`.
fn listed(items: &[String], sep: &str) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(sep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_samples() {
        assert_eq!(
            sample_for_regex(r"\.(css|js|png)$").as_deref(),
            Some(".css")
        );
        assert_eq!(
            sample_for_regex(r"^/api/v[0-9]+/").as_deref(),
            Some("/api/v0/")
        );
        assert_eq!(
            sample_for_regex(r"^/u/(?<id>\d+)$").as_deref(),
            Some("/u/0")
        );
        assert_eq!(sample_for_regex(r"a{3}").as_deref(), Some("aaa"));
        assert_eq!(sample_for_regex(r"[^a]"), None);
        assert_eq!(sample_for_regex(r"(?=x)"), None);
        assert_eq!(
            sample_for_regex(r"/img/.*\.jpe?g$").as_deref(),
            Some("/img/x.jpeg")
        );
    }

    #[test]
    fn directive_names() {
        assert_eq!(directive_name("keepalive_timeout_ms"), "keepalive_timeout");
        assert_eq!(directive_name("gzip_enable"), "gzip");
        assert_eq!(directive_name("proxy_tls_verify"), "proxy_ssl_verify");
        assert_eq!(variant_name("Off"), "off");
        assert_eq!(variant_name("Http11"), "1.1");
        assert_eq!(variant_name("text/html"), "text/html");
    }
}
