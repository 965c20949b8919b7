//! `map SOURCE $variable { … }` (http context): the variable names are registered before
//! anything else is lowered (a map variable may be used anywhere, before or after its map,
//! as in nginx), then each block becomes a [`proton_ir::Map`]: exact keys (lowercase, nginx
//! compares them ignoring case), `hostnames` wildcards, regex keys and the default, with
//! nginx's messages for conflicting keys. Maps that use each other must not form a cycle
//! and may nest at most [`MAX_MAP_NESTING`] deep.

use super::{all, arg, vars, Lower};
use crate::ast::Directive;
use crate::diagnostics::{Code, Diagnostic};
use crate::source::Span;
use proton_ir::{ClientAddr, Map, Part, Template, Var, MAX_MAP_NESTING};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// How a key of a `hostnames` map is read (nginx's `ngx_hash_add_key` with wildcards).
enum HostKey {
    Exact(String),
    /// `.example.com` (`also_exact`: it claims `example.com` too) or `*.example.com`, as the
    /// suffix `.example.com`.
    Leading {
        suffix: String,
        also_exact: bool,
    },
    /// `www.example.*` as the prefix `www.example.`.
    Trailing(String),
    Invalid,
}

fn host_key(k: &str) -> HostKey {
    if k.matches('*').count() > 1 || k.contains("..") || k.contains('\0') {
        return HostKey::Invalid;
    }
    if k.len() > 1 && k.starts_with('.') {
        return HostKey::Leading {
            suffix: k.to_string(),
            also_exact: true,
        };
    }
    if k.len() > 2 && k.starts_with("*.") {
        return HostKey::Leading {
            suffix: k[1..].to_string(),
            also_exact: false,
        };
    }
    if k.len() > 2 && k.ends_with(".*") {
        return HostKey::Trailing(k[..k.len() - 1].to_string());
    }
    if k.contains('*') {
        return HostKey::Invalid;
    }
    HostKey::Exact(k.to_string())
}

/// A key looks like a wildcard (read as an exact string when `hostnames` comes later).
fn looks_wild(k: &str) -> bool {
    k.contains('*') || (k.len() > 1 && k.starts_with('.'))
}

/// The keys of one map being built, with where each was written (for conflicts).
#[derive(Default)]
struct Keys {
    exact: HashMap<String, (Template, Span)>,
    leading: HashMap<String, (Template, Span)>,
    trailing: HashMap<String, (Template, Span)>,
}

fn sorted(m: HashMap<String, (Template, Span)>) -> Vec<(String, Template)> {
    let mut v: Vec<(String, Template)> = m.into_iter().map(|(k, (t, _))| (k, t)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

impl Lower<'_> {
    /// Registers the variable of every `map` of the (first) http block, reporting names that
    /// cannot be map variables and variables defined by two maps.
    pub(super) fn collect_maps(&mut self, tree: &[Directive]) {
        let Some(http) = tree.iter().find(|d| d.name == "http") else {
            return;
        };
        let blocks = all(http.children(), "map")
            .chain(all(http.children(), "geo"))
            .chain(all(http.children(), "split_clients"));
        for d in blocks {
            // `map SOURCE $var`, `geo [$address] $var`: the variable is the last argument.
            let last = d.args.len().saturating_sub(1);
            let (raw, span) = (arg(d, last), d.arg_span(last));
            let Some(name) = raw.strip_prefix('$') else {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        span,
                        format!("invalid variable name \"{raw}\""),
                    )
                    .label("expected $name")
                    .help("write `map SOURCE $name { … }`: the second argument is the variable the map defines"),
                );
                continue;
            };
            // nginx compares variable names case-insensitively.
            let name = name.to_ascii_lowercase();
            if let Some(why) = vars::reserved(&name) {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        span,
                        format!("\"${name}\" cannot be defined by a map"),
                    )
                    .label(why)
                    .help("choose another name for the map's variable"),
                );
                continue;
            }
            if let Some(&id) = self.map_ids.get(&name) {
                let first = self.map_defs[id as usize].1;
                self.err(
                    Diagnostic::error(
                        Code::Duplicate,
                        span,
                        format!("duplicate map variable \"${name}\""),
                    )
                    .label("defined again here")
                    .also(first, "first defined here (names are case-insensitive)")
                    .help("define each variable with one map (nginx would silently use the last one); merge the two blocks"),
                );
                continue;
            }
            let id = self.ir.maps.len() as u32;
            self.map_ids.insert(name.clone(), id);
            self.map_defs.push((d as *const Directive, span));
            self.ir.maps.push(Map {
                name,
                ..bare_map(Template::default())
            });
        }
    }

    /// Lowers every registered map of the http block `h`, then checks that maps do not use
    /// each other in a cycle or too deep a chain.
    pub(super) fn maps(&mut self, h: &[Directive]) {
        let ids: HashMap<*const Directive, usize> = self
            .map_defs
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (*p, i))
            .collect();
        for d in all(h, "map")
            .chain(all(h, "geo"))
            .chain(all(h, "split_clients"))
        {
            let Some(&id) = ids.get(&(d as *const Directive)) else {
                continue;
            };
            let m = match d.name.as_str() {
                "geo" => self.geo_block(d),
                "split_clients" => self.split_block(d),
                _ => self.map_block(d),
            };
            if let Some(slot) = self.ir.maps.get_mut(id) {
                slot.source = m.source;
                slot.hostnames = m.hostnames;
                slot.volatile = m.volatile;
                slot.exact = m.exact;
                slot.leading = m.leading;
                slot.trailing = m.trailing;
                slot.regex = m.regex;
                slot.default = m.default;
                slot.geo = m.geo;
                slot.split = m.split;
            }
        }
        self.check_map_graph();
    }

    fn map_block(&mut self, d: &Directive) -> Map {
        let source = self.template(d, 0);
        let mut hostnames = false;
        let mut volatile = false;
        let mut wild_before: Option<Span> = None;
        let mut default: Option<(Template, Span)> = None;
        let mut keys = Keys::default();
        let mut regex = Vec::new();
        for e in d.children() {
            if e.block.is_some() {
                self.err(
                    Diagnostic::error(
                        Code::Arity,
                        e.name_span,
                        format!("map entry \"{}\" takes no block", e.name),
                    )
                    .label("a map holds `key value;` lines")
                    .help("write `key value;`, `default value;`, `hostnames;` or `volatile;`"),
                );
                continue;
            }
            match (e.name.as_str(), e.args.len()) {
                ("hostnames", 0) => {
                    if let Some(w) = wild_before.filter(|_| !hostnames) {
                        self.err(
                            Diagnostic::warning(
                                Code::NginxWarning,
                                e.name_span,
                                "\"hostnames\" after a wildcard key",
                            )
                            .label("only the keys after this line are read as wildcards")
                            .also(w, "read as an exact string, as nginx does")
                            .help("move `hostnames;` to the top of the map"),
                        );
                    }
                    hostnames = true;
                }
                ("volatile", 0) => volatile = true,
                ("include", 1) => self.err(
                    Diagnostic::error(
                        Code::Include,
                        e.name_span,
                        "\"include\" in a map of a JSON or YAML document",
                    )
                    .label("documents have no include")
                    .help("write the entries in the map itself, or `\\\\include` for a key that is the word include"),
                ),
                (_, 1) => self.map_entry(
                    e,
                    hostnames,
                    &mut wild_before,
                    &mut default,
                    &mut keys,
                    &mut regex,
                ),
                _ => self.err(
                    Diagnostic::error(
                        Code::Arity,
                        e.arg_span(1),
                        "invalid number of the map parameters",
                    )
                    .label(format!(
                        "\"{}\" with {} value{}",
                        e.name,
                        e.args.len(),
                        if e.args.len() == 1 { "" } else { "s" }
                    ))
                    .help("a map entry is `key value;` (quote a key or value with spaces), or `hostnames;` or `volatile;`"),
                ),
            }
        }
        Map {
            hostnames,
            volatile,
            exact: sorted(keys.exact),
            leading: sorted(keys.leading),
            trailing: sorted(keys.trailing),
            regex,
            default: default.map(|(t, _)| t).unwrap_or_default(),
            ..bare_map(source)
        }
    }

    /// `geo [$address] $variable { … }`: networks (or with `ranges;`, IPv4 ranges) with
    /// literal values, `default`, `delete`, `proxy`, `proxy_recursive`; a network given
    /// twice keeps the later value (nginx warns, as here).
    fn geo_block(&mut self, d: &Directive) -> Map {
        let source = if d.args.len() == 2 {
            self.template(d, 0)
        } else {
            Template {
                parts: vec![Part::Var(Var::Builtin(proton_ir::Builtin::RemoteAddr))],
            }
        };
        let literal = |s: &str| Template {
            parts: if s.is_empty() {
                Vec::new()
            } else {
                vec![Part::Literal(s.to_string())]
            },
        };
        let ranges_mode = d
            .children()
            .iter()
            .any(|e| e.name == "ranges" && e.args.is_empty());
        let mut default: Option<Template> = None;
        let mut nets: Vec<(ClientAddr, Template, Span)> = Vec::new();
        let mut ranges = GeoRanges::default();
        let mut proxies: Vec<ClientAddr> = Vec::new();
        let mut recursive = false;
        for e in d.children() {
            let bad = |msg: String, label: &str, help: &str| {
                Diagnostic::error(Code::BadValue, e.name_span, msg)
                    .label(label)
                    .help(help)
            };
            match (e.name.as_str(), e.args.len()) {
                ("ranges", 0) => {}
                ("proxy_recursive", 0) => recursive = true,
                ("default", 1) => default = Some(literal(arg(e, 0))),
                ("proxy", 1) => match super::parse_cidr(arg(e, 0)) {
                    Some(c) => proxies.push(c),
                    None => self.err(bad(
                        format!("invalid parameter \"{}\"", arg(e, 0)),
                        "not an address or CIDR",
                        "proxy 192.0.2.1; or proxy 10.0.0.0/8;",
                    )),
                },
                ("delete", 1) if ranges_mode => match parse_range(arg(e, 0)) {
                    Some((a, b)) => {
                        if ranges.delete(a, b) {
                            self.err(
                                Diagnostic::warning(
                                    Code::NginxWarning,
                                    e.name_span,
                                    format!("no address range \"{}\" to delete", arg(e, 0)),
                                )
                                .label("no range of the block is exactly this one")
                                .help("delete removes ranges given as they were added"),
                            );
                        }
                    }
                    None => self.err(bad(
                        format!("invalid range \"{}\"", arg(e, 0)),
                        "not a range of IPv4 addresses",
                        "delete 10.0.0.0-10.0.0.255;",
                    )),
                },
                ("delete", 1) => match super::parse_cidr(arg(e, 0)) {
                    Some(c) => nets.retain(|(n, _, _)| *n != c),
                    None => self.err(bad(
                        format!("invalid network \"{}\"", arg(e, 0)),
                        "not an address or CIDR",
                        "delete 10.0.0.0/8;",
                    )),
                },
                ("include", 1) => self.err(
                    Diagnostic::error(
                        Code::Include,
                        e.name_span,
                        "\"include\" in a geo block of a JSON or YAML document",
                    )
                    .label("documents have no include")
                    .help("write the networks in the block itself"),
                ),
                (net, 1) if ranges_mode => match parse_range(net) {
                    Some((a, b)) => match ranges.add(a, b, literal(arg(e, 0))) {
                        Ok(false) => {}
                        Ok(true) => self.err(
                            Diagnostic::warning(
                                Code::NginxWarning,
                                e.name_span,
                                format!("duplicate range \"{net}\""),
                            )
                            .label("this value is kept")
                            .help("remove one of the two lines"),
                        ),
                        Err(other) => self.err(bad(
                            format!("range \"{net}\" overlaps \"{other}\""),
                            "overlaps a range given before",
                            "ranges may nest (a later range inside an earlier one) but not cross",
                        )),
                    },
                    None => self.err(bad(
                        format!("invalid range \"{net}\""),
                        "not a range of IPv4 addresses",
                        "with `ranges;` an entry is `192.0.2.0-192.0.2.255 value;`",
                    )),
                },
                // nginx reads 255.255.255.255 only alone (inet_addr's error value).
                (net, 1) => match super::parse_cidr(net).filter(|_| {
                    !net.starts_with("255.255.255.255/")
                }) {
                    Some(c) => {
                        if let Some(i) = nets.iter().position(|(n, _, _)| *n == c) {
                            let first = nets[i].2;
                            self.err(
                                Diagnostic::warning(
                                    Code::NginxWarning,
                                    e.name_span,
                                    format!("duplicate network \"{net}\""),
                                )
                                .label("this value is kept")
                                .also(first, "first given here")
                                .help("remove one of the two lines"),
                            );
                            nets.remove(i);
                        }
                        nets.push((c, literal(arg(e, 0)), e.name_span));
                    }
                    None => self.err(bad(
                        format!("invalid network \"{net}\""),
                        "not an address or CIDR",
                        "a geo entry is `192.0.2.0/24 value;`, `2001:db8::/32 value;`, `default value;` or `delete network;`",
                    )),
                },
                _ => self.err(
                    Diagnostic::error(
                        Code::Arity,
                        e.name_span,
                        "invalid number of the geo parameters",
                    )
                    .label(format!("\"{}\" with {} values", e.name, e.args.len()))
                    .help("a geo entry is `network value;` (quote a value with spaces)"),
                ),
            }
        }
        // The longest prefix first: the first network that holds the address wins.
        let prefix = |c: &ClientAddr| match c {
            ClientAddr::Cidr { prefix, .. } => *prefix,
            ClientAddr::Unix => 0,
        };
        nets.sort_by_key(|(c, _, _)| std::cmp::Reverse(prefix(c)));
        let proxy = (!proxies.is_empty()).then(|| proton_ir::RealIp {
            from: proxies,
            header: "x-forwarded-for".into(),
            recursive,
        });
        Map {
            default: default.unwrap_or_default(),
            geo: Some(Box::new(proton_ir::Geo {
                networks: nets.into_iter().map(|(c, t, _)| (c, t)).collect(),
                ranges: ranges_mode.then(|| ranges.flatten()),
                proxy,
            })),
            ..bare_map(source)
        }
    }

    /// `split_clients string $variable { N% value; … * value; }`: the parts' bounds as
    /// nginx computes them (running sums of the percentages, with two decimals, scaled to
    /// 32 bits; the part that reaches 100 %, and `*`, take the rest). Values are literal.
    fn split_block(&mut self, d: &Directive) -> Map {
        let source = self.template(d, 0);
        let mut parts: Vec<(u32, Template)> = Vec::new();
        let (mut sum, mut last) = (0u32, 0u32);
        for e in d.children() {
            let bad = |msg: String, span: Span, label: &str, help: &str| {
                Diagnostic::error(Code::BadValue, span, msg)
                    .label(label)
                    .help(help)
            };
            if e.block.is_some() || e.args.len() != 1 {
                self.err(bad(
                    "invalid number of the split_clients parameters".into(),
                    e.name_span,
                    "a part is `percent value;`",
                    "write `12.5% value;`, and `* value;` for the rest",
                ));
                continue;
            }
            let percent = if e.name == "*" {
                0
            } else {
                match e.name.strip_suffix('%').and_then(hundredths) {
                    Some(n) if n > 0 => n,
                    _ => {
                        self.err(bad(
                            format!("invalid percent value \"{}\"", e.name),
                            e.name_span,
                            "expected a percentage such as 10% or 0.5%",
                            "write the share with at most two decimals and a % sign, or * for the rest",
                        ));
                        continue;
                    }
                }
            };
            sum = if percent == 0 { 10_000 } else { sum + percent };
            if sum > 10_000 {
                self.err(bad(
                    "percent total is greater than 100%".into(),
                    e.name_span,
                    "the parts add up to more than 100% here",
                    "lower the percentages so that they add up to 100% at most",
                ));
                break;
            }
            let bound = if sum == 10_000 || percent == 0 {
                0
            } else {
                last = last.wrapping_add((u64::from(percent) * 0xffff_ffff / 10_000) as u32);
                last
            };
            let value = arg(e, 0);
            let value = Template {
                parts: if value.is_empty() {
                    Vec::new()
                } else {
                    vec![Part::Literal(value.to_string())]
                },
            };
            parts.push((bound, value));
        }
        Map {
            split: Some(parts),
            ..bare_map(source)
        }
    }

    fn map_entry(
        &mut self,
        e: &Directive,
        hostnames: bool,
        wild_before: &mut Option<Span>,
        default: &mut Option<(Template, Span)>,
        keys: &mut Keys,
        regex: &mut Vec<(proton_ir::RegexId, Template)>,
    ) {
        let key = e.name.as_str();
        if key == "default" {
            if let Some((_, first)) = default {
                let first = *first;
                self.err(
                    Diagnostic::error(
                        Code::Duplicate,
                        e.name_span,
                        "duplicate default map parameter",
                    )
                    .label("second default")
                    .also(first, "first default")
                    .help("keep one `default` line; write `\\\\default` for a key that is the word default"),
                );
            } else {
                *default = Some((self.template(e, 0), e.name_span));
            }
            return;
        }
        if let Some(re) = key.strip_prefix('~') {
            let (pattern, caseless) = match re.strip_prefix('*') {
                Some(p) => (p, true),
                None => (re, false),
            };
            let id = self.regex(pattern, caseless, e.name_span);
            let groups: HashSet<String> = self
                .regex_captures(pattern, caseless)
                .map(|g| g.iter().cloned().collect())
                .unwrap_or_default();
            let value = self.template_with(e, 0, Some(&groups));
            regex.push((id, value));
            return;
        }
        let key = key.strip_prefix('\\').unwrap_or(key);
        let lower = key.to_ascii_lowercase();
        if !hostnames && wild_before.is_none() && looks_wild(key) {
            *wild_before = Some(e.name_span);
        }
        let value = self.template(e, 0);
        let at = e.name_span;
        let read = if hostnames {
            host_key(&lower)
        } else {
            HostKey::Exact(lower)
        };
        let first = match read {
            HostKey::Invalid => {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        at,
                        format!("invalid hostname or wildcard \"{key}\""),
                    )
                    .label("not a host name or wildcard")
                    .help("with `hostnames`, a key is a name, `*.example.com`, `.example.com` or `www.example.*` (one `*`, no `..`); use `~regex` for anything else"),
                );
                return;
            }
            HostKey::Exact(k) => insert(&mut keys.exact, k, value, at),
            HostKey::Leading { suffix, also_exact } => {
                let bare = suffix[1..].to_string();
                if also_exact && keys.exact.contains_key(&bare) {
                    keys.exact.get(&bare).map(|(_, s)| *s)
                } else {
                    let first = insert(&mut keys.leading, suffix, value.clone(), at);
                    if also_exact && first.is_none() {
                        keys.exact.insert(bare, (value, at));
                    }
                    first
                }
            }
            HostKey::Trailing(prefix) => insert(&mut keys.trailing, prefix, value, at),
        };
        if let Some(first) = first {
            self.err(
                Diagnostic::error(
                    Code::Duplicate,
                    at,
                    format!("conflicting parameter \"{key}\""),
                )
                .label("this key is already in the map")
                .also(first, "first here")
                .help(if hostnames {
                    "keys are compared ignoring case, and `.example.com` stands for both `example.com` and `*.example.com`; remove one of them"
                } else {
                    "keys are compared ignoring case; remove one of them"
                }),
            );
        }
    }

    /// Reports maps that use themselves (directly or through other maps) and chains of maps
    /// deeper than [`MAX_MAP_NESTING`]. Iterative: no config can exhaust the stack.
    fn check_map_graph(&mut self) {
        let n = self.ir.maps.len();
        let deps: Vec<Vec<usize>> = self
            .ir
            .maps
            .iter()
            .map(|m| {
                let mut d: Vec<usize> = m
                    .templates()
                    .flat_map(|t| &t.parts)
                    .filter_map(|p| match p {
                        Part::Var(Var::Map(i)) => Some(*i as usize),
                        _ => None,
                    })
                    .filter(|&i| i < n)
                    .collect();
                d.sort_unstable();
                d.dedup();
                d
            })
            .collect();
        // 0: not seen; 1: on the stack; 2: done.
        let mut state = vec![0u8; n];
        let mut height = vec![0usize; n];
        let mut cycles = Vec::new();
        let mut too_deep = Vec::new();
        for root in 0..n {
            if state[root] != 0 {
                continue;
            }
            state[root] = 1;
            let mut stack = vec![(root, 0usize)];
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&d) = deps[node].get(*next) {
                    *next += 1;
                    match state[d] {
                        0 => {
                            state[d] = 1;
                            stack.push((d, 0));
                        }
                        1 => {
                            let from = stack.iter().position(|(m, _)| *m == d).unwrap_or(0);
                            let path: Vec<usize> = stack[from..].iter().map(|(m, _)| *m).collect();
                            cycles.push(path);
                        }
                        _ => {}
                    }
                    continue;
                }
                let h = deps[node]
                    .iter()
                    .filter(|&&d| state[d] == 2)
                    .map(|&d| height[d] + 1)
                    .max()
                    .unwrap_or(0);
                if h >= MAX_MAP_NESTING && deps[node].iter().all(|&d| height[d] < MAX_MAP_NESTING) {
                    too_deep.push(node);
                }
                height[node] = h;
                state[node] = 2;
                stack.pop();
            }
        }
        let name = |i: usize, maps: &[Map]| format!("${}", maps[i].name);
        for path in cycles {
            let Some(&start) = path.first() else {
                continue;
            };
            let mut chain: Vec<String> = path.iter().map(|&i| name(i, &self.ir.maps)).collect();
            chain.push(name(start, &self.ir.maps));
            let mut diag = Diagnostic::error(
                Code::Conflict,
                self.map_defs[start].1,
                format!(
                    "map variable \"{}\" depends on itself",
                    name(start, &self.ir.maps)
                ),
            )
            .label(if path.len() == 1 {
                "its source or a value uses it".to_string()
            } else {
                chain.join(" → ")
            });
            for &i in &path[1..] {
                diag = diag.also(self.map_defs[i].1, "part of the cycle");
            }
            self.err(diag.help(
                "a map's source and values cannot use its own variable, directly or through other maps",
            ));
        }
        for node in too_deep {
            self.err(
                Diagnostic::error(
                    Code::Conflict,
                    self.map_defs[node].1,
                    format!(
                        "map variable \"{}\" uses a chain of more than {MAX_MAP_NESTING} maps",
                        name(node, &self.ir.maps)
                    ),
                )
                .label("maps nested too deeply")
                .help(format!(
                    "at most {MAX_MAP_NESTING} maps may use one another in a chain; flatten some of them"
                )),
            );
        }
    }
}

/// Inserts `key` unless present; returns where the existing one was written.
fn insert(
    m: &mut HashMap<String, (Template, Span)>,
    key: String,
    value: Template,
    at: Span,
) -> Option<Span> {
    if let Some((_, first)) = m.get(&key) {
        return Some(*first);
    }
    m.insert(key, (value, at));
    None
}

/// `a.b.c.d-e.f.g.h` (IPv4, first ≤ last).
fn parse_range(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let a: std::net::Ipv4Addr = a.parse().ok()?;
    let b: std::net::Ipv4Addr = b.parse().ok()?;
    let (a, b) = (u32::from(a), u32::from(b));
    (a <= b).then_some((a, b))
}

/// A geo block's ranges as nginx keeps them: per `/16` of the address, disjoint sorted
/// pieces; a new range may be equal to a piece (its value replaced), nest in one (splitting
/// it) or share its start or end, but not cross one.
#[derive(Default)]
struct GeoRanges {
    buckets: std::collections::BTreeMap<u16, Vec<(u16, u16, Template)>>,
}

impl GeoRanges {
    /// The `/16` pieces of `a..=b`: (bucket, first, last).
    fn pieces(a: u32, b: u32) -> Vec<(u16, u16, u16)> {
        let mut out = Vec::new();
        let mut n = a;
        loop {
            let h = (n >> 16) as u16;
            let s = if n == a { (n & 0xffff) as u16 } else { 0 };
            let e = if (n | 0xffff) > b {
                (b & 0xffff) as u16
            } else {
                0xffff
            };
            out.push((h, s, e));
            if h == 0xffff {
                break;
            }
            let next = (n & 0xffff_0000).wrapping_add(0x1_0000);
            if next > b || next == 0 {
                break;
            }
            n = next;
        }
        out
    }

    /// Adds `a..=b`: Ok(true) when a piece was there already (its value replaced); the
    /// error names the piece it crosses.
    fn add(&mut self, a: u32, b: u32, value: Template) -> Result<bool, String> {
        let mut dup = false;
        for (h, s, e) in Self::pieces(a, b) {
            let list = self.buckets.entry(h).or_default();
            // The last piece that does not lie wholly after the new one.
            match list.iter().rposition(|r| e >= r.0) {
                None => list.insert(0, (s, e, value.clone())),
                Some(i) => {
                    let (rs, re) = (list[i].0, list[i].1);
                    if s > re {
                        list.insert(i + 1, (s, e, value.clone()));
                    } else if s == rs && e == re {
                        list[i].2 = value.clone();
                        dup = true;
                    } else if s > rs && e < re {
                        let old = list[i].2.clone();
                        list[i].1 = s - 1;
                        list.insert(i + 1, (s, e, value.clone()));
                        list.insert(i + 2, (e + 1, re, old));
                    } else if s == rs && e < re {
                        list[i].0 = e + 1;
                        list.insert(i, (s, e, value.clone()));
                    } else if s > rs && e == re {
                        list[i].1 = s - 1;
                        list.insert(i + 1, (s, e, value.clone()));
                    } else {
                        let ip =
                            |x: u16| format!("{}.{}.{}.{}", h >> 8, h & 0xff, x >> 8, x & 0xff);
                        return Err(format!("{}-{}", ip(rs), ip(re)));
                    }
                }
            }
        }
        Ok(dup)
    }

    /// Deletes the pieces of `a..=b` given exactly so; true when one was missing.
    fn delete(&mut self, a: u32, b: u32) -> bool {
        let mut warn = false;
        for (h, s, e) in Self::pieces(a, b) {
            let list = self.buckets.entry(h).or_default();
            match list.iter().position(|r| r.0 == s && r.1 == e) {
                Some(i) => {
                    list.remove(i);
                }
                None => warn = true,
            }
        }
        warn
    }

    /// All pieces as whole addresses, sorted.
    fn flatten(self) -> Vec<(u32, u32, Template)> {
        let mut out = Vec::new();
        for (h, list) in self.buckets {
            let base = u32::from(h) << 16;
            for (s, e, v) in list {
                out.push((base | u32::from(s), base | u32::from(e), v));
            }
        }
        out
    }
}

/// A map of `source` with no keys, no default, and no geo or split table: what each kind
/// of block fills in.
fn bare_map(source: Template) -> Map {
    Map {
        name: String::new(),
        source,
        hostnames: false,
        volatile: false,
        exact: Vec::new(),
        leading: Vec::new(),
        trailing: Vec::new(),
        regex: Vec::new(),
        default: Template::default(),
        geo: None,
        split: None,
    }
}

/// A percentage with at most two decimals, in hundredths (nginx's `ngx_atofp(…, 2)`):
/// "51.2" is 5120, "10" is 1000; anything else is `None`.
fn hundredths(s: &str) -> Option<u32> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 2
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u32 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u32 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}
