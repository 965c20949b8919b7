//! Structural verification of a decoded IR: every id in range (servers, locations,
//! upstreams, regexes, settings, MIME tables, log formats, user variables, source files),
//! every template's variables valid (error_page targets, add_header values, proxy URIs and
//! redirects, upstream hash keys, …), every trie well formed, MIME tables sorted, and every
//! upstream usable (an explicit group has servers, weights are positive, a static
//! `proxy_pass` reaches a group with servers, a health check has positive times and counts
//! and a URI that is a plain path). After [`Ir::verify`] succeeds the runtime can
//! index the IR's vectors and pick upstream servers without further checks.

use crate::types::*;
use std::fmt;

/// What is inconsistent in an IR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError(pub String);

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VerifyError {}

struct Checker<'a> {
    ir: &'a Ir,
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), VerifyError> {
    if ok {
        Ok(())
    } else {
        Err(VerifyError(what()))
    }
}

impl Checker<'_> {
    fn server(&self, id: ServerId) -> Result<(), VerifyError> {
        check((id.0 as usize) < self.ir.servers.len(), || {
            format!("server id {} out of range", id.0)
        })
    }
    fn location(&self, id: LocationId) -> Result<(), VerifyError> {
        check((id.0 as usize) < self.ir.locations.len(), || {
            format!("location id {} out of range", id.0)
        })
    }
    fn pattern(&self, p: &ProxyPattern) -> Result<(), VerifyError> {
        match p {
            ProxyPattern::Text(t) => self.template(t),
            ProxyPattern::Regex(id) => self.regex(*id),
        }
    }

    fn regex(&self, id: RegexId) -> Result<(), VerifyError> {
        check((id.0 as usize) < self.ir.regexes.len(), || {
            format!("regex id {} out of range", id.0)
        })
    }
    fn template(&self, t: &Template) -> Result<(), VerifyError> {
        for p in &t.parts {
            match p {
                Part::Var(Var::User(i)) => check((*i as usize) < self.ir.user_vars.len(), || {
                    format!("user variable {i} out of range")
                })?,
                Part::Capture(n) => check(*n <= 9, || format!("capture ${n} out of range"))?,
                Part::Var(Var::NamedCapture(n)) => {
                    check(!n.is_empty(), || "empty named capture".to_string())?
                }
                Part::Var(Var::Map(i)) => check((*i as usize) < self.ir.maps.len(), || {
                    format!("map variable {i} out of range")
                })?,
                _ => {}
            }
        }
        Ok(())
    }
    fn tree(&self, t: &LocationTree) -> Result<(), VerifyError> {
        if t.nodes.is_empty() {
            return self.regexes(t);
        }
        for (i, n) in t.nodes.iter().enumerate() {
            let label_ok = (n.label.0 as usize)
                .checked_add(n.label.1 as usize)
                .is_some_and(|end| end <= t.labels.len());
            let edges_ok = (n.children.0 as usize)
                .checked_add(n.children.1 as usize)
                .is_some_and(|end| end <= t.edges.len());
            check(label_ok && edges_ok, || {
                format!("trie node {i} points outside its arenas")
            })?;
            check(i == 0 || n.label.1 > 0, || {
                format!("trie node {i} has an empty label")
            })?;
            for &c in t.children(n) {
                check((c as usize) < t.nodes.len() && c != 0, || {
                    format!("trie child {c} out of range")
                })?;
            }
            if let Some(e) = n.exact {
                self.location(e)?;
            }
            if let Some(p) = n.prefix {
                self.location(p.location)?;
            }
        }
        self.regexes(t)
    }
    fn regexes(&self, t: &LocationTree) -> Result<(), VerifyError> {
        for r in &t.regex {
            self.regex(r.regex)?;
            self.location(r.location)?;
        }
        Ok(())
    }
    fn script(&self, s: &[ScriptOp]) -> Result<(), VerifyError> {
        for op in s {
            match op {
                ScriptOp::Rewrite {
                    regex,
                    replacement,
                    source,
                    ..
                } => {
                    self.regex(*regex)?;
                    self.template(replacement)?;
                    self.source(*source)?;
                }
                ScriptOp::Return { text, .. } => {
                    if let Some(t) = text {
                        self.template(t)?;
                    }
                }
                ScriptOp::SetBuiltin { value, .. } => self.template(value)?,
                ScriptOp::Set { var, value } => {
                    check((*var as usize) < self.ir.user_vars.len(), || {
                        format!("set variable {var} out of range")
                    })?;
                    self.template(value)?;
                }
                ScriptOp::If {
                    cond,
                    then,
                    location,
                    source,
                } => {
                    match cond {
                        Condition::Value(t) => self.template(t)?,
                        Condition::Equals { left, right, .. } => {
                            self.template(left)?;
                            self.template(right)?;
                        }
                        Condition::Matches { left, regex, .. } => {
                            self.template(left)?;
                            self.regex(*regex)?;
                        }
                        Condition::File { path, .. } => self.template(path)?,
                    }
                    if let Some(l) = location {
                        self.location(*l)?;
                    }
                    self.source(*source)?;
                    // An `if` block holds no `if` (nginx refuses nested ones): one level.
                    check(
                        !then.iter().any(|op| matches!(op, ScriptOp::If { .. })),
                        || "an if block holds another if".to_string(),
                    )?;
                    self.script(then)?;
                }
                ScriptOp::Break => {}
            }
        }
        Ok(())
    }
    fn conf(&self, c: &LocationConf) -> Result<(), VerifyError> {
        self.script(&c.script)?;
        if let Some(le) = &c.limit_except {
            self.location(le.location)?;
            // Its block is a leaf: a limit_except location has none of its own.
            let inner = self.ir.locations.get(le.location.0 as usize);
            check(
                inner.is_some_and(|l| {
                    l.kind == LocationKind::LimitExcept && l.conf.limit_except.is_none()
                }),
                || "limit_except points to a location that is not its block".to_string(),
            )?;
        }
        check((c.settings.0 as usize) < self.ir.settings.len(), || {
            format!("settings {} out of range", c.settings.0)
        })?;
        for t in c
            .root
            .iter()
            .chain(c.alias.iter().map(|a| &a.path))
            .chain(&c.try_files)
        {
            self.template(t)?;
        }
        if let Some(p) = &c.proxy {
            let up = self.ir.upstreams.get(p.upstream.0 as usize);
            check(up.is_some(), || {
                format!("upstream {} out of range", p.upstream.0)
            })?;
            for t in p.uri.iter().chain(&p.dynamic) {
                self.template(t)?;
            }
            // A static proxy_pass picks a server of its group at once.
            check(
                p.dynamic.is_some() || up.is_some_and(|u| !u.servers.is_empty()),
                || {
                    format!(
                        "proxy_pass to upstream {} which has no servers",
                        p.upstream.0
                    )
                },
            )?;
        }
        Ok(())
    }

    fn source(&self, at: SourceRef) -> Result<(), VerifyError> {
        check((at.file as usize) < self.ir.source_files.len(), || {
            format!("source file {} out of range", at.file)
        })
    }

    fn upstream(&self, u: &Upstream) -> Result<(), VerifyError> {
        check(!u.explicit || !u.servers.is_empty(), || {
            format!("upstream \"{}\" has no servers", u.name)
        })?;
        for s in &u.servers {
            check(s.weight > 0, || {
                format!("upstream \"{}\": server {} has weight 0", u.name, s.address)
            })?;
            check(s.address != "unix:", || {
                format!(
                    "upstream \"{}\": a unix socket server without a path",
                    u.name
                )
            })?;
        }
        if let Some(r) = u.resolver {
            check(
                self.ir
                    .resolvers
                    .get(r as usize)
                    .is_some_and(|r| !r.servers.is_empty() && (r.ipv4 || r.ipv6)),
                || {
                    format!(
                        "upstream \"{}\": resolver {r} out of range or without servers",
                        u.name
                    )
                },
            )?;
        }
        check(
            u.resolver.is_some() || !u.servers.iter().any(|s| s.resolve),
            || {
                format!(
                    "upstream \"{}\": a resolve server without a resolver",
                    u.name
                )
            },
        )?;
        if let Balance::Hash { key, .. } = &u.balance {
            self.template(key)?;
        }
        if let Some(h) = &u.health_check {
            check(
                h.interval_ms > 0 && h.timeout_ms > 0 && h.fails > 0 && h.passes > 0,
                || {
                    format!(
                        "upstream \"{}\": health_check interval, timeout, fails and passes must be positive",
                        u.name
                    )
                },
            )?;
            // The URI goes into a request line as is: no way to smuggle a header in.
            check(
                h.uri.starts_with('/') && h.uri.bytes().all(|b| b.is_ascii_graphic()),
                || {
                    format!(
                        "upstream \"{}\": health_check uri {:?} is not a path",
                        u.name, h.uri
                    )
                },
            )?;
            check(h.port != Some(0), || {
                format!("upstream \"{}\": health_check port 0", u.name)
            })?;
            if let Some(m) = &h.expect {
                self.health_match(m)?;
            }
        }
        Ok(())
    }

    /// A `match` block: regexes in range, status ranges of three-digit codes in order,
    /// header names that are tokens in lowercase.
    fn health_match(&self, m: &HealthMatch) -> Result<(), VerifyError> {
        for t in &m.tests {
            match t {
                MatchTest::Status { ranges, .. } => {
                    check(
                        !ranges.is_empty()
                            && ranges.iter().all(|&(lo, hi)| {
                                (100..=999).contains(&lo) && lo <= hi && hi <= 999
                            }),
                        || format!("match \"{}\": bad status ranges {ranges:?}", m.name),
                    )?;
                }
                MatchTest::Header { name, test } => {
                    check(
                        !name.is_empty()
                            && name.bytes().all(|b| {
                                b.is_ascii_graphic() && b != b':' && !b.is_ascii_uppercase()
                            }),
                        || format!("match \"{}\": bad header name {name:?}", m.name),
                    )?;
                    if let HeaderTest::Matches(r) | HeaderTest::NotMatches(r) = test {
                        self.regex(*r)?;
                    }
                }
                MatchTest::Body { regex, .. } => self.regex(*regex)?,
            }
        }
        Ok(())
    }

    fn map(&self, m: &Map) -> Result<(), VerifyError> {
        check(!m.name.is_empty(), || {
            "map without a variable name".to_string()
        })?;
        for t in m.templates() {
            self.template(t)?;
        }
        for (r, _) in &m.regex {
            self.regex(*r)?;
        }
        let sorted = |list: &[(String, Template)]| list.windows(2).all(|w| w[0].0 < w[1].0);
        check(sorted(&m.exact), || {
            format!("exact keys of map ${} are not sorted and distinct", m.name)
        })?;
        check(m.leading.iter().all(|(s, _)| s.starts_with('.')), || {
            format!(
                "a leading wildcard of map ${} does not start with a dot",
                m.name
            )
        })?;
        check(m.trailing.iter().all(|(p, _)| p.ends_with('.')), || {
            format!(
                "a trailing wildcard of map ${} does not end with a dot",
                m.name
            )
        })?;
        if let Some(parts) = &m.split {
            let bounds: Vec<u32> = parts.iter().map(|p| p.0).filter(|b| *b != 0).collect();
            check(bounds.windows(2).all(|w| w[0] < w[1]), || {
                format!("the parts of split_clients ${} do not grow", m.name)
            })?;
        }
        Ok(())
    }

    /// Map variables used by map `m`'s templates.
    fn map_deps(&self, m: &Map) -> Vec<usize> {
        let mut deps: Vec<usize> = m
            .templates()
            .flat_map(|t| &t.parts)
            .filter_map(|p| match p {
                Part::Var(Var::Map(i)) => Some(*i as usize),
                _ => None,
            })
            .collect();
        deps.sort_unstable();
        deps.dedup();
        deps
    }

    /// Maps form no cycle, and no chain of maps using maps is deeper than
    /// [`MAX_MAP_NESTING`]. Iterative, so no IR can exhaust the stack.
    fn map_graph(&self) -> Result<(), VerifyError> {
        let maps = &self.ir.maps;
        let deps: Vec<Vec<usize>> = maps.iter().map(|m| self.map_deps(m)).collect();
        // 0: not seen; 1: on the stack; 2: done. `height`: longest chain below a map.
        let mut state = vec![0u8; maps.len()];
        let mut height = vec![0usize; maps.len()];
        for root in 0..maps.len() {
            if state[root] != 0 {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            state[root] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let edges = deps.get(node).map_or(&[][..], Vec::as_slice);
                if let Some(&d) = edges.get(*next) {
                    *next += 1;
                    match state.get(d) {
                        Some(0) => {
                            state[d] = 1;
                            stack.push((d, 0));
                        }
                        Some(1) => {
                            return Err(VerifyError(format!(
                                "map ${} depends on itself",
                                maps[d].name
                            )))
                        }
                        _ => {}
                    }
                    continue;
                }
                let h = edges
                    .iter()
                    .filter_map(|&d| height.get(d))
                    .map(|h| h + 1)
                    .max()
                    .unwrap_or(0);
                check(h < MAX_MAP_NESTING, || {
                    format!(
                        "map ${} nests maps deeper than {MAX_MAP_NESTING}",
                        maps[node].name
                    )
                })?;
                height[node] = h;
                state[node] = 2;
                stack.pop();
            }
        }
        Ok(())
    }

    fn settings(&self, s: &Settings) -> Result<(), VerifyError> {
        if let Some(z) = s.open_file_cache.cache {
            check(
                (z.id as usize) < self.ir.settings.len() && z.max > 0,
                || format!("open_file_cache {} out of range or empty", z.id),
            )?;
        }
        if let Some(r) = s.resolver {
            check(
                self.ir
                    .resolvers
                    .get(r as usize)
                    .is_some_and(|r| !r.servers.is_empty() && (r.ipv4 || r.ipv6)),
                || format!("resolver {r} out of range or without servers"),
            )?;
        }
        check((s.types.0 as usize) < self.ir.mime_types.len(), || {
            format!("mime table {} out of range", s.types.0)
        })?;
        for (name, t) in [
            ("client_body_temp_path", &s.client_body_temp_path),
            ("proxy_temp_path", &s.proxy.temp_path),
            ("fastcgi_temp_path", &s.fastcgi.temp_path),
            ("scgi_temp_path", &s.scgi.temp_path),
            ("uwsgi_temp_path", &s.uwsgi.temp_path),
            ("grpc_temp_path", &s.grpc.temp_path),
        ] {
            let levels = &t.levels;
            check(
                levels.len() <= 3
                    && levels.iter().all(|l| *l >= 1)
                    && levels.iter().map(|l| u32::from(*l)).sum::<u32>() <= 10
                    && !t.path.is_empty(),
                || {
                    format!(
                        "{name} {:?} levels {levels:?}: at most 3 levels of 1 or more digits, 10 in all",
                        t.path
                    )
                },
            )?;
        }
        for t in &s.index {
            self.template(t)?;
        }
        if let Some(r) = &s.referers {
            for id in r.regex.iter().chain(&r.server_name_regex) {
                self.regex(*id)?;
            }
        }
        for r in &s.limit_req.limits {
            let z = self.ir.limit_zones.get(r.zone as usize);
            check(
                z.is_some_and(|z| matches!(z.kind, LimitZoneKind::Req { .. })),
                || format!("limit_req zone {} is not a limit_req zone", r.zone),
            )?;
        }
        for r in &s.limit_conn.limits {
            let z = self.ir.limit_zones.get(r.zone as usize);
            check(z.is_some_and(|z| z.kind == LimitZoneKind::Conn), || {
                format!("limit_conn zone {} is not a limit_conn zone", r.zone)
            })?;
        }
        for v in [&s.limit_rate, &s.limit_rate_after] {
            if let SizeValue::Var(t) = v {
                self.template(t)?;
            }
        }
        for l in &s.access_log {
            if let AccessLog::File {
                path,
                format,
                condition,
                ..
            } = l
            {
                self.template(path)?;
                if let Some(c) = condition {
                    self.template(c)?;
                }
                check((format.0 as usize) < self.ir.log_formats.len(), || {
                    format!("log format {} out of range", format.0)
                })?;
            }
        }
        for e in &s.error_pages {
            self.template(&e.target)?;
        }
        for h in s.add_headers.iter().chain(&s.add_trailers) {
            self.template(&h.value)?;
        }
        for ps in [&s.proxy, &*s.fastcgi, &*s.scgi, &*s.uwsgi, &*s.grpc] {
            for (_, t) in &ps.set_headers {
                self.template(t)?;
            }
            if let Some(t) = &ps.tls.name {
                self.template(t)?;
            }
            if let Some(b) = &ps.bind {
                self.template(&b.address)?;
            }
            let cookies = &ps.cookies;
            for r in ps
                .redirect
                .iter()
                .chain(&cookies.domain)
                .chain(&cookies.path)
            {
                self.pattern(&r.pattern)?;
                self.template(&r.replacement)?;
            }
            for f in &cookies.flags {
                self.pattern(&f.cookie)?;
                for t in &f.flags {
                    self.template(t)?;
                }
            }
            for p in &ps.cgi.params {
                self.template(&p.value)?;
            }
            if let Some(id) = ps.cgi.split_path_info {
                self.regex(id)?;
            }
            let c = &ps.cache;
            match &c.zone {
                Some(CacheRef::Zone(z)) => {
                    check((*z as usize) < self.ir.cache_zones.len(), || {
                        format!("proxy_cache zone {z} does not exist")
                    })?
                }
                Some(CacheRef::Var(t)) => self.template(t)?,
                None => {}
            }
            for t in std::iter::once(&c.key)
                .chain(&c.bypass)
                .chain(&c.no_cache)
                .chain(&c.purge)
            {
                self.template(t)?;
            }
            if let Some(StoreTarget::Path(t)) = &ps.store {
                self.template(t)?;
            }
        }
        if let Expires::Variable { value, .. } = &s.expires {
            self.template(value)?;
        }
        if let Some(t) = &s.charset.charset {
            self.template(t)?;
        }
        if let DisableSymlinks::On { from: Some(t) }
        | DisableSymlinks::IfNotOwner { from: Some(t) } = &s.disable_symlinks
        {
            self.template(t)?;
        }
        self.gzip(&s.gzip)?;
        compression("brotli", &s.brotli, 0..=11)?;
        compression("zstd", &s.zstd, 1..=22)?;
        self.sub_filter(&s.sub_filter)?;
        check(
            (1..=SSI_MAX_VALUE_LENGTH).contains(&s.ssi.value_length),
            || {
                format!(
                    "ssi_value_length {} (1 to {SSI_MAX_VALUE_LENGTH})",
                    s.ssi.value_length
                )
            },
        )?;
        types("ssi", &s.ssi.types)?;
        types("addition", &s.addition.types)
    }

    /// `sub_filter`: at most 255 lines (nginx's limit per level), each match string not
    /// empty and its literal text lowercase (the compiler lowercases it), the types as for
    /// gzip.
    fn sub_filter(&self, f: &SubFilter) -> Result<(), VerifyError> {
        check(f.pairs.len() <= 255, || {
            format!("{} sub_filter lines (at most 255)", f.pairs.len())
        })?;
        for (i, (m, r)) in f.pairs.iter().enumerate() {
            check(
                !m.parts.is_empty()
                    && m.parts.iter().all(|p| match p {
                        Part::Literal(t) => {
                            !t.is_empty() && !t.bytes().any(|b| b.is_ascii_uppercase())
                        }
                        _ => true,
                    }),
                || format!("sub_filter {i}: match {m:?} empty or not lowercase"),
            )?;
            self.template(m)?;
            self.template(r)?;
        }
        types("sub_filter", &f.types)
    }

    fn gzip(&self, g: &Gzip) -> Result<(), VerifyError> {
        for id in &g.disable {
            self.regex(*id)?;
        }
        check((1..=9).contains(&g.comp_level), || {
            format!("gzip_comp_level {} (1 to 9)", g.comp_level)
        })?;
        check(g.http_version_minor <= 1, || {
            format!("gzip_http_version 1.{}", g.http_version_minor)
        })?;
        types("gzip", &g.types)
    }
}

/// A `*_types` list: `["*"]`, or sorted, distinct, lowercase types with text/html.
fn types(name: &str, t: &[String]) -> Result<(), VerifyError> {
    check(
        t == ["*"]
            || (t.iter().any(|t| t == "text/html")
                && t.windows(2).all(|w| w[0] < w[1])
                && t.iter().all(|t| {
                    !t.is_empty() && t != "*" && !t.bytes().any(|b| b.is_ascii_uppercase())
                })),
        || format!("{name}_types {t:?}: sorted, distinct, lowercase, with text/html, or [\"*\"]"),
    )
}

/// The settings of brotli or zstd (`name`): a level the encoder takes, a window of 1k to
/// 16m as a power of two (0: the encoder's own), the types as for gzip.
fn compression(
    name: &str,
    c: &Compression,
    levels: std::ops::RangeInclusive<u8>,
) -> Result<(), VerifyError> {
    check(levels.contains(&c.comp_level), || {
        format!(
            "{name}_comp_level {} ({} to {})",
            c.comp_level,
            levels.start(),
            levels.end()
        )
    })?;
    check(
        c.window_log == 0 || (10..=24).contains(&c.window_log),
        || format!("{name} window_log {} (0, or 10 to 24)", c.window_log),
    )?;
    types(name, &c.types)
}

impl Ir {
    /// Checks internal consistency; see the module docs.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let c = Checker { ir: self };
        check(!self.servers.is_empty(), || "no servers".into())?;
        // A connection keeps its listener's index in 2 bytes.
        check(self.listeners.len() <= usize::from(u16::MAX), || {
            format!("{} listeners (at most {})", self.listeners.len(), u16::MAX)
        })?;
        for l in &self.listeners {
            let n = &l.names;
            c.server(n.default)?;
            for (_, s) in n.exact.iter().chain(n.trailing.iter()) {
                c.server(*s)?;
            }
            for w in &n.leading {
                c.server(w.server)?;
                check(w.suffix.starts_with('.'), || {
                    format!("wildcard suffix {:?} must start with a dot", w.suffix)
                })?;
            }
            for (r, s) in &n.regex {
                c.regex(*r)?;
                c.server(*s)?;
            }
            check(n.exact.windows(2).all(|w| w[0].0 < w[1].0), || {
                format!("exact names of {} are not sorted", l.addr)
            })?;
        }
        for s in &self.servers {
            c.location(s.default_location)?;
            c.source(s.source)?;
            c.tree(&s.tree)?;
            c.script(&s.script)?;
            for (_, l) in &s.named {
                c.location(*l)?;
            }
        }
        for l in &self.locations {
            let start = l.name.start as usize;
            check(
                self.text
                    .get(start..start.saturating_add(l.name.len as usize))
                    .is_some(),
                || "location name outside the text arena".to_string(),
            )?;
            if let Some(p) = &l.conf.proxy {
                let start = p.proxy_host.start as usize;
                check(
                    self.text
                        .get(start..start.saturating_add(p.proxy_host.len as usize))
                        .is_some(),
                    || "proxy host outside the text arena".to_string(),
                )?;
            }
            c.server(l.server)?;
            c.source(l.source)?;
            c.tree(l.tree())?;
            c.conf(&l.conf)?;
        }
        for u in &self.upstreams {
            c.upstream(u)?;
        }
        for (i, t) in self.mime_types.iter().enumerate() {
            check(t.windows(2).all(|w| w[0].0 < w[1].0), || {
                format!("mime table {i} is not sorted by extension")
            })?;
        }
        for f in &self.log_formats {
            c.template(&f.template)?;
        }
        for m in &self.maps {
            c.map(m)?;
        }
        c.map_graph()?;
        for z in &self.limit_zones {
            c.template(&z.key)?;
            if let LimitZoneKind::Req { rate, .. } = z.kind {
                check(rate > 0, || {
                    format!("limit_req zone {:?} has rate 0", z.name)
                })?;
            }
        }
        for s in &self.settings {
            c.settings(s)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::types::*;

    pub(crate) fn conf() -> LocationConf {
        LocationConf {
            script: vec![],
            internal: false,
            root: Some(Template::literal("html")),
            alias: None,
            try_files: vec![],
            proxy: None,
            settings: SettingsId(0),
            limit_except: None,
            stub_status: false,
            proton_metrics: false,
        }
    }

    pub(crate) fn settings() -> Settings {
        let proxy = ProxySettings {
            set_headers: vec![],
            http_version: ProxyHttpVersion::Http10,
            connect_timeout_ms: 60_000,
            read_timeout_ms: 60_000,
            send_timeout_ms: 60_000,
            next_upstream: NextUpstream::default(),
            next_upstream_tries: 0,
            next_upstream_timeout_ms: 0,
            buffering: true,
            buffer_size: 4096,
            buffers: (8, 4096),
            max_temp_file_size: 1 << 30,
            temp_file_write_size: 8192,
            temp_path: TempPath {
                path: "proxy_temp".into(),
                levels: vec![1, 2],
            },
            hide_headers: vec![],
            pass_headers: vec![],
            redirect: vec![],
            cookies: CookieRewrites::default(),
            intercept_errors: false,
            request_buffering: true,
            method: None,
            set_body: None,
            pass_request_body: true,
            pass_request_headers: true,
            socket_keepalive: false,
            proxy_protocol: false,
            pass_trailers: false,
            limit_rate: 0,
            bind: None,
            ignore_client_abort: false,
            ignore_headers: IgnoreHeaders::default(),
            force_ranges: false,
            tls: UpstreamTls::default(),
            cgi: CgiSettings::default(),
            cache: Default::default(),
            store: None,
            store_access: 0o600,
        };
        Settings {
            index: vec![Template::literal("index.html")],
            autoindex: false,
            default_type: "text/plain".into(),
            types: MimeTableId(0),
            error_pages: vec![],
            add_headers: vec![],
            expires: Expires::Off,
            etag: true,
            if_modified_since: IfModifiedSince::Exact,
            sendfile: false,
            sendfile_max_chunk: 2 << 20,
            subrequest_output_buffer_size: 4096,
            tcp_nopush: false,
            tcp_nodelay: true,
            server_tokens: ServerTokens::On,
            keepalive_timeout_ms: 75_000,
            keepalive_header_secs: None,
            keepalive_requests: 1000,
            keepalive_time_ms: 3_600_000,
            keepalive_disable: Default::default(),
            post_action: None,
            mirror: Vec::new(),
            mirror_request_body: true,
            log_subrequest: false,
            gzip: Default::default(),
            brotli: crate::Compression::off(6, 19),
            zstd: crate::Compression::off(1, 0),
            sub_filter: crate::SubFilter {
                pairs: Vec::new(),
                types: vec!["text/html".into()],
                once: true,
                last_modified: false,
            },
            ssi: crate::Ssi {
                enable: false,
                types: vec!["text/html".into()],
                silent_errors: false,
                value_length: 255,
                last_modified: false,
            },
            addition: crate::Addition {
                before: String::new(),
                after: String::new(),
                types: vec!["text/html".into()],
            },
            slice: 0,
            limit_req: LimitReq::default(),
            limit_conn: LimitConn::default(),
            client_max_body_size: 1 << 20,
            client_header_timeout_ms: 60_000,
            client_header_buffer_size: 1024,
            large_client_header_buffers: (4, 8192),
            client_body_timeout_ms: 60_000,
            client_body_buffer_size: 8 * 1024,
            client_body_temp_path: TempPath {
                path: "client_body_temp".into(),
                levels: vec![],
            },
            client_body_in_file_only: BodyInFileOnly::Off,
            client_body_in_single_buffer: false,
            send_timeout_ms: 60_000,
            lingering_close: LingeringClose::On,
            lingering_time_ms: 30_000,
            lingering_timeout_ms: 5_000,
            open_file_cache: OpenFileCache::default(),
            access_log: vec![],
            error_log: vec![],
            log_not_found: true,
            open_log_file_cache: None,
            resolver: None,
            resolver_timeout_ms: 30_000,
            proxy: proxy.clone(),
            fastcgi: Box::new(proxy.clone()),
            scgi: Box::new(proxy.clone()),
            uwsgi: Box::new(proxy.clone()),
            grpc: Box::new(proxy),
            charset: Charset {
                charset: None,
                source: None,
                types: vec![],
                override_charset: false,
            },
            autoindex_format: AutoindexFormat::Html,
            autoindex_exact_size: true,
            autoindex_localtime: false,
            absolute_redirect: true,
            port_in_redirect: true,
            server_name_in_redirect: false,
            msie_refresh: false,
            msie_padding: true,
            merge_slashes: true,
            http2: Http2Settings {
                enabled: false,
                max_concurrent_streams: 128,
                body_preread_size: 65536,
                chunk_size: 8192,
            },
            max_ranges: None,
            ignore_invalid_headers: true,
            underscores_in_headers: false,
            max_headers: 1000,
            disable_symlinks: DisableSymlinks::Off,
            add_trailers: vec![],
            chunked_transfer_encoding: true,
            rewrite_log: false,
            referers: None,
            realip: None,
            uninitialized_variable_warn: true,
            limit_rate: SizeValue::Const(0),
            limit_rate_after: SizeValue::Const(0),
            access: vec![],
            auth: Auth::default(),
        }
    }

    /// `tiny()` with something of everything verify looks into: a user variable, an
    /// explicit upstream with a hash key and a health check, a proxying location, a regex, error pages,
    /// headers, redirect rules and a rewrite.
    pub(crate) fn rich() -> Ir {
        let mut ir = crate::codec::tests::tiny();
        let var = |i: u32| Template {
            parts: vec![Part::Var(Var::User(i))],
        };
        ir.user_vars = vec!["v".into()];
        ir.listeners[0].ssl = true;
        ir.servers[0].tls = Some(Box::new(ServerTls {
            certificates: vec![CertificatePair {
                certificate: "/c.pem".into(),
                key: "/k.pem".into(),
            }],
            certificate_vars: Vec::new(),
            tls12: true,
            tls13: true,
            ciphers: vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into()],
            prefer_server_ciphers: true,
            curves: vec!["X25519".into()],
            session_cache: SessionCache::Cache {
                builtin: 100,
                shared: Some(("SSL".into(), 1 << 20)),
            },
            session_timeout_secs: 300,
            session_tickets: true,
            ticket_key_files: vec!["/t.key".into()],
            reject_handshake: false,
            verify_client: VerifyClient::Optional,
            verify_depth: 2,
            client_certificate: Some("/ca.pem".into()),
            trusted_certificate: None,
            crl: None,
            buffer_size: 4096,
            stapling: Some(crate::Stapling {
                file: Some("/ocsp.der".into()),
                responder: None,
                verify: false,
            }),
            password_file: Some("/pass".into()),
        }));
        ir.regexes = vec![Regex {
            pattern: "^/(?<x>.*)$".into(),
            case_insensitive: false,
        }];
        ir.upstreams = vec![Upstream {
            name: "app".into(),
            explicit: true,
            servers: vec![UpstreamServer::new("127.0.0.1:9000")],
            balance: Balance::Hash {
                key: var(0),
                consistent: false,
            },
            keepalive: 0,
            keepalive_timeout_ms: 60_000,
            keepalive_requests: 1000,
            keepalive_time_ms: 3_600_000,
            resolver: None,
            resolver_timeout_ms: 30_000,
            health_check: Some(HealthCheck {
                interval_ms: 5000,
                uri: "/health".into(),
                fails: 2,
                passes: 1,
                timeout_ms: 1000,
                port: Some(9001),
                expect: Some(HealthMatch {
                    name: "ok".into(),
                    tests: vec![
                        MatchTest::Status {
                            negate: false,
                            ranges: vec![(200, 200), (300, 399)],
                        },
                        MatchTest::Header {
                            name: "content-type".into(),
                            test: HeaderTest::Matches(RegexId(0)),
                        },
                        MatchTest::Header {
                            name: "x-bad".into(),
                            test: HeaderTest::Absent,
                        },
                        MatchTest::Body {
                            negate: true,
                            regex: RegexId(0),
                        },
                    ],
                }),
            }),
        }];
        let mut conf = conf();
        conf.proxy = Some(Box::new(Proxy {
            upstream: UpstreamId(0),
            scheme: Scheme::Http,
            proxy_host: TextRef::default(),
            uri: Some(var(0)),
            dynamic: None,
            prefix: None,
            protocol: Protocol::Http,
        }));
        conf.alias = Some(Box::new(Alias {
            path: var(0),
            prefix: "/a/".into(),
        }));
        conf.try_files = vec![var(0)];
        conf.script = vec![ScriptOp::Rewrite {
            regex: RegexId(0),
            replacement: Template {
                parts: vec![Part::Capture(1), Part::Var(Var::NamedCapture("x".into()))],
            },
            flag: RewriteFlag::Last,
            source: SourceRef::default(),
        }];
        let name = ir.push_text("/a/");
        ir.locations.push(Location {
            kind: LocationKind::Prefix,
            name,
            server: ServerId(0),
            source: SourceRef::default(),
            nested: None,
            conf,
        });
        let s = &mut ir.settings[0];
        s.gzip = Gzip {
            enable: true,
            types: vec!["text/css".into(), "text/html".into()],
            comp_level: 6,
            min_length: 1024,
            vary: true,
            http_version_minor: 0,
            proxied: GzipProxied {
                off: false,
                any: true,
                ..GzipProxied::default()
            },
            disable_msie6: true,
            disable: vec![RegexId(0)],
            static_mode: GzipStatic::Always,
            gunzip: true,
        };
        s.brotli = Compression {
            enable: true,
            types: vec!["application/json".into(), "text/html".into()],
            comp_level: 11,
            min_length: 256,
            static_mode: GzipStatic::On,
            window_log: 24,
        };
        s.zstd = Compression {
            enable: true,
            types: vec!["*".into()],
            comp_level: 22,
            min_length: 0,
            static_mode: GzipStatic::Always,
            window_log: 0,
        };
        s.sub_filter = SubFilter {
            pairs: vec![
                (Template::literal("<a href=\"http://"), var(0)),
                (
                    Template {
                        parts: vec![Part::Literal("x-".into()), var(0).parts[0].clone()],
                    },
                    Template::literal("Y"),
                ),
            ],
            types: vec!["text/css".into(), "text/html".into()],
            once: false,
            last_modified: true,
        };
        s.ssi = Ssi {
            enable: true,
            types: vec!["text/html".into(), "text/x-shtml".into()],
            silent_errors: true,
            value_length: SSI_MAX_VALUE_LENGTH,
            last_modified: true,
        };
        s.addition = Addition {
            before: "/header.html".into(),
            after: "/footer?x=$y".into(),
            types: vec!["*".into()],
        };
        s.slice = 1 << 20;
        s.error_pages = vec![ErrorPage {
            codes: vec![404],
            response: None,
            target: var(0),
        }];
        s.add_headers = vec![AddHeader {
            name: "X".into(),
            value: var(0),
            always: false,
        }];
        s.proxy.redirect = vec![
            ProxyRewrite {
                pattern: ProxyPattern::Text(var(0)),
                replacement: var(0),
            },
            ProxyRewrite {
                pattern: ProxyPattern::Regex(RegexId(0)),
                replacement: var(0),
            },
        ];
        s.proxy.cookies = CookieRewrites {
            domain: vec![ProxyRewrite {
                pattern: ProxyPattern::Text(var(0)),
                replacement: var(0),
            }],
            path: vec![ProxyRewrite {
                pattern: ProxyPattern::Regex(RegexId(0)),
                replacement: var(0),
            }],
            flags: vec![CookieFlags {
                cookie: ProxyPattern::Text(var(0)),
                flags: vec![var(0)],
            }],
        };
        ir.maps = vec![Map {
            name: "m".into(),
            source: var(0),
            hostnames: true,
            volatile: false,
            exact: vec![
                ("a".into(), Template::literal("1")),
                ("b.example.com".into(), var(0)),
            ],
            leading: vec![(".example.com".into(), Template::literal("2"))],
            trailing: vec![("www.example.".into(), Template::literal("3"))],
            regex: vec![(
                RegexId(0),
                Template {
                    parts: vec![Part::Capture(1), Part::Var(Var::NamedCapture("x".into()))],
                },
            )],
            default: Template::literal("0"),
            geo: None,
            split: None,
        }];
        ir.log_formats = vec![LogFormat {
            name: "mapped".into(),
            escape: LogEscape::Json,
            template: Template {
                parts: vec![Part::Var(Var::Map(0))],
            },
        }];
        ir.mime_types = vec![vec![
            ("gif".into(), "image/gif".into()),
            ("html".into(), "text/html".into()),
        ]];
        ir.limit_zones = vec![
            LimitZone {
                name: "req".into(),
                size: 1 << 20,
                key: Template {
                    parts: vec![Part::Var(Var::Builtin(Builtin::BinaryRemoteAddr))],
                },
                kind: LimitZoneKind::Req {
                    rate: 500,
                    sync: false,
                },
            },
            LimitZone {
                name: "conn".into(),
                size: 1 << 20,
                key: var(0),
                kind: LimitZoneKind::Conn,
            },
        ];
        ir.settings[0].limit_req.limits = vec![LimitReqRule {
            zone: 0,
            burst: 5000,
            delay: u64::MAX,
        }];
        ir.settings[0].limit_conn.limits = vec![LimitConnRule { zone: 1, conn: 10 }];
        ir
    }

    #[test]
    fn every_promised_index_and_template_is_checked() {
        assert_eq!(rich().verify(), Ok(()));
        let bad = || Template {
            parts: vec![Part::Var(Var::User(7))],
        };
        type Damage = fn(&mut Ir, Template);
        let damages: Vec<(&str, Damage)> = vec![
            ("error_page target", |ir, t| {
                ir.settings[0].error_pages[0].target = t
            }),
            ("add_header value", |ir, t| {
                ir.settings[0].add_headers[0].value = t
            }),
            ("proxy_redirect from", |ir, t| {
                ir.settings[0].proxy.redirect[0].pattern = ProxyPattern::Text(t)
            }),
            ("proxy_redirect to", |ir, t| {
                ir.settings[0].proxy.redirect[1].replacement = t
            }),
            ("proxy_redirect regex id", |ir, _| {
                ir.settings[0].proxy.redirect[1].pattern = ProxyPattern::Regex(RegexId(9))
            }),
            ("proxy_cookie_domain from", |ir, t| {
                ir.settings[0].proxy.cookies.domain[0].pattern = ProxyPattern::Text(t)
            }),
            ("proxy_cookie_path to", |ir, t| {
                ir.settings[0].proxy.cookies.path[0].replacement = t
            }),
            ("proxy_cookie_path regex id", |ir, _| {
                ir.settings[0].proxy.cookies.path[0].pattern = ProxyPattern::Regex(RegexId(9))
            }),
            ("proxy_cookie_flags cookie", |ir, t| {
                ir.settings[0].proxy.cookies.flags[0].cookie = ProxyPattern::Text(t)
            }),
            ("proxy_cookie_flags flag", |ir, t| {
                ir.settings[0].proxy.cookies.flags[0].flags = vec![t]
            }),
            ("index", |ir, t| ir.settings[0].index = vec![t]),
            ("proxy_cache_key", |ir, t| {
                ir.settings[0].proxy.cache.key = t
            }),
            ("proxy_no_cache", |ir, t| {
                ir.settings[0].fastcgi.cache.no_cache = vec![t]
            }),
            ("proxy_cache with variables", |ir, t| {
                ir.settings[0].proxy.cache.zone = Some(CacheRef::Var(t))
            }),
            ("proxy_cache zone out of range", |ir, _| {
                ir.settings[0].proxy.cache.zone = Some(CacheRef::Zone(3))
            }),
            ("proxy uri", |ir, t| {
                ir.locations[1].conf.proxy.as_mut().expect("proxy").uri = Some(t)
            }),
            ("proxy dynamic", |ir, t| {
                ir.locations[1].conf.proxy.as_mut().expect("proxy").dynamic = Some(t)
            }),
            ("hash key", |ir, t| {
                ir.upstreams[0].balance = Balance::Hash {
                    key: t,
                    consistent: true,
                }
            }),
            ("try_files", |ir, t| {
                ir.locations[1].conf.try_files = vec![t]
            }),
            ("alias", |ir, t| {
                ir.locations[1].conf.alias.as_mut().expect("alias").path = t
            }),
            ("rewrite replacement", |ir, t| {
                if let ScriptOp::Rewrite { replacement, .. } = &mut ir.locations[1].conf.script[0] {
                    *replacement = t;
                }
            }),
            ("capture number", |ir, _| {
                ir.settings[0].index = vec![Template {
                    parts: vec![Part::Capture(10)],
                }]
            }),
            ("empty named capture", |ir, _| {
                ir.settings[0].index = vec![Template {
                    parts: vec![Part::Var(Var::NamedCapture(String::new()))],
                }]
            }),
            ("limit zone key", |ir, t| ir.limit_zones[1].key = t),
            ("limit_req zone out of range", |ir, _| {
                ir.settings[0].limit_req.limits[0].zone = 9
            }),
            ("limit_req zone of limit_conn", |ir, _| {
                ir.settings[0].limit_req.limits[0].zone = 1
            }),
            ("limit_conn zone of limit_req", |ir, _| {
                ir.settings[0].limit_conn.limits[0].zone = 0
            }),
            ("limit_req rate 0", |ir, _| {
                ir.limit_zones[0].kind = LimitZoneKind::Req {
                    rate: 0,
                    sync: false,
                }
            }),
            ("explicit upstream without servers", |ir, _| {
                ir.upstreams[0].servers.clear()
            }),
            ("weight 0", |ir, _| ir.upstreams[0].servers[0].weight = 0),
            ("upstream resolver out of range", |ir, _| {
                ir.upstreams[0].resolver = Some(99)
            }),
            ("resolve server without a resolver", |ir, _| {
                ir.upstreams[0].servers[0].resolve = true
            }),
            ("health_check interval 0", |ir, _| {
                if let Some(h) = &mut ir.upstreams[0].health_check {
                    h.interval_ms = 0;
                }
            }),
            ("health_check match with a regex out of range", |ir, _| {
                if let Some(m) = ir.upstreams[0]
                    .health_check
                    .as_mut()
                    .and_then(|h| h.expect.as_mut())
                {
                    m.tests.push(MatchTest::Body {
                        negate: false,
                        regex: RegexId(9),
                    });
                }
            }),
            (
                "health_check match with a reversed status range",
                |ir, _| {
                    if let Some(m) = ir.upstreams[0]
                        .health_check
                        .as_mut()
                        .and_then(|h| h.expect.as_mut())
                    {
                        m.tests[0] = MatchTest::Status {
                            negate: false,
                            ranges: vec![(399, 200)],
                        };
                    }
                },
            ),
            (
                "health_check match with an uppercase header name",
                |ir, _| {
                    if let Some(m) = ir.upstreams[0]
                        .health_check
                        .as_mut()
                        .and_then(|h| h.expect.as_mut())
                    {
                        m.tests[1] = MatchTest::Header {
                            name: "Content-Type".into(),
                            test: HeaderTest::Present,
                        };
                    }
                },
            ),
            ("health_check fails 0", |ir, _| {
                if let Some(h) = &mut ir.upstreams[0].health_check {
                    h.fails = 0;
                }
            }),
            ("health_check uri with a line break", |ir, _| {
                if let Some(h) = &mut ir.upstreams[0].health_check {
                    h.uri = "/x HTTP/1.0\r\nX: y".into();
                }
            }),
            ("health_check port 0", |ir, _| {
                if let Some(h) = &mut ir.upstreams[0].health_check {
                    h.port = Some(0);
                }
            }),
            ("static proxy_pass to an empty group", |ir, _| {
                ir.upstreams[0].explicit = false;
                ir.upstreams[0].servers.clear();
            }),
            ("proxy upstream id", |ir, _| {
                ir.locations[1].conf.proxy.as_mut().expect("proxy").upstream = UpstreamId(5)
            }),
            ("rewrite regex id", |ir, _| {
                if let ScriptOp::Rewrite { regex, .. } = &mut ir.locations[1].conf.script[0] {
                    *regex = RegexId(3);
                }
            }),
            ("rewrite source file", |ir, _| {
                if let ScriptOp::Rewrite { source, .. } = &mut ir.locations[1].conf.script[0] {
                    source.file = 4;
                }
            }),
            ("location source file", |ir, _| {
                ir.locations[1].source.file = 2
            }),
            ("server source file", |ir, _| ir.servers[0].source.file = 2),
            ("settings id", |ir, _| {
                ir.locations[1].conf.settings = SettingsId(9)
            }),
            ("mime table id", |ir, _| {
                ir.settings[0].types = MimeTableId(3)
            }),
            ("mime table order", |ir, _| ir.mime_types[0].reverse()),
            ("gzip_disable regex id", |ir, _| {
                ir.settings[0].gzip.disable = vec![RegexId(7)]
            }),
            ("gzip_comp_level", |ir, _| {
                ir.settings[0].gzip.comp_level = 0
            }),
            ("gzip_http_version", |ir, _| {
                ir.settings[0].gzip.http_version_minor = 2
            }),
            ("gzip_types order", |ir, _| {
                ir.settings[0].gzip.types.reverse()
            }),
            ("gzip_types without text/html", |ir, _| {
                ir.settings[0].gzip.types = vec!["text/css".into()]
            }),
            ("gzip_types uppercase", |ir, _| {
                ir.settings[0].gzip.types = vec!["text/CSS".into(), "text/html".into()]
            }),
            ("gzip_types star among others", |ir, _| {
                ir.settings[0].gzip.types = vec!["*".into(), "text/html".into()]
            }),
            ("brotli_comp_level", |ir, _| {
                ir.settings[0].brotli.comp_level = 12
            }),
            ("zstd_comp_level 0", |ir, _| {
                ir.settings[0].zstd.comp_level = 0
            }),
            ("zstd_comp_level 23", |ir, _| {
                ir.settings[0].zstd.comp_level = 23
            }),
            ("brotli window below 1k", |ir, _| {
                ir.settings[0].brotli.window_log = 9
            }),
            ("brotli window above 16m", |ir, _| {
                ir.settings[0].brotli.window_log = 25
            }),
            ("zstd window", |ir, _| ir.settings[0].zstd.window_log = 31),
            ("brotli_types order", |ir, _| {
                ir.settings[0].brotli.types.reverse()
            }),
            ("brotli_types uppercase", |ir, _| {
                ir.settings[0].brotli.types = vec!["Text/html".into()]
            }),
            ("zstd_types without text/html", |ir, _| {
                ir.settings[0].zstd.types = vec!["text/css".into()]
            }),
            ("zstd_types star among others", |ir, _| {
                ir.settings[0].zstd.types = vec!["*".into(), "text/html".into()]
            }),
            ("zstd_types duplicates", |ir, _| {
                ir.settings[0].zstd.types = vec!["text/html".into(), "text/html".into()]
            }),
            ("sub_filter match", |ir, t| {
                ir.settings[0].sub_filter.pairs[1].0 = t
            }),
            ("sub_filter replacement", |ir, t| {
                ir.settings[0].sub_filter.pairs[0].1 = t
            }),
            ("sub_filter empty match", |ir, _| {
                ir.settings[0].sub_filter.pairs[0].0 = Template::default()
            }),
            ("sub_filter empty literal", |ir, _| {
                ir.settings[0].sub_filter.pairs[0].0 = Template {
                    parts: vec![Part::Literal(String::new())],
                }
            }),
            ("sub_filter uppercase match", |ir, _| {
                ir.settings[0].sub_filter.pairs[0].0 = Template::literal("<A href")
            }),
            ("sub_filter uppercase around a variable", |ir, _| {
                ir.settings[0].sub_filter.pairs[1].0.parts[0] = Part::Literal("X-".into())
            }),
            ("sub_filter 256 lines", |ir, _| {
                let f = &mut ir.settings[0].sub_filter;
                f.pairs = vec![f.pairs[0].clone(); 256]
            }),
            ("sub_filter_types order", |ir, _| {
                ir.settings[0].sub_filter.types.reverse()
            }),
            ("sub_filter_types without text/html", |ir, _| {
                ir.settings[0].sub_filter.types = vec!["text/plain".into()]
            }),
            ("sub_filter_types uppercase", |ir, _| {
                ir.settings[0].sub_filter.types = vec!["text/HTML".into()]
            }),
            ("sub_filter_types star among others", |ir, _| {
                ir.settings[0].sub_filter.types = vec!["*".into(), "text/html".into()]
            }),
            ("ssi_value_length 0", |ir, _| {
                ir.settings[0].ssi.value_length = 0
            }),
            ("ssi_value_length above 64k", |ir, _| {
                ir.settings[0].ssi.value_length = SSI_MAX_VALUE_LENGTH + 1
            }),
            ("ssi_types order", |ir, _| {
                ir.settings[0].ssi.types.reverse()
            }),
            ("ssi_types without text/html", |ir, _| {
                ir.settings[0].ssi.types = vec!["text/x-shtml".into()]
            }),
            ("addition_types star among others", |ir, _| {
                ir.settings[0].addition.types = vec!["*".into(), "text/html".into()]
            }),
            ("addition_types uppercase", |ir, _| {
                ir.settings[0].addition.types = vec!["Text/HTML".into()]
            }),
            ("map source", |ir, t| ir.maps[0].source = t),
            ("map exact value", |ir, t| ir.maps[0].exact[0].1 = t),
            ("map leading value", |ir, t| ir.maps[0].leading[0].1 = t),
            ("map trailing value", |ir, t| ir.maps[0].trailing[0].1 = t),
            ("map regex value", |ir, t| ir.maps[0].regex[0].1 = t),
            ("map default", |ir, t| ir.maps[0].default = t),
            ("map regex id", |ir, _| ir.maps[0].regex[0].0 = RegexId(4)),
            ("map variable id", |ir, _| {
                ir.log_formats[0].template = Template {
                    parts: vec![Part::Var(Var::Map(1))],
                }
            }),
            ("map exact keys order", |ir, _| ir.maps[0].exact.reverse()),
            ("map exact keys distinct", |ir, _| {
                ir.maps[0].exact[1].0 = "a".into();
            }),
            ("map leading wildcard", |ir, _| {
                ir.maps[0].leading[0].0 = "example.com".into()
            }),
            ("map trailing wildcard", |ir, _| {
                ir.maps[0].trailing[0].0 = "www.example".into()
            }),
            ("map using itself", |ir, _| {
                ir.maps[0].default = Template {
                    parts: vec![Part::Var(Var::Map(0))],
                }
            }),
            ("map without a name", |ir, _| ir.maps[0].name.clear()),
            ("log format id", |ir, _| {
                ir.settings[0].access_log = vec![AccessLog::File {
                    path: Template::default(),
                    format: LogFormatId(4),
                    buffer: None,
                    flush_ms: None,
                    condition: None,
                    gzip: None,
                }]
            }),
        ];
        for (what, damage) in damages {
            let mut ir = rich();
            damage(&mut ir, bad());
            assert!(ir.verify().is_err(), "{what}: damage not caught");
        }
        // A dynamic proxy_pass may use the implicit group without servers.
        let mut ir = rich();
        ir.upstreams[0].explicit = false;
        ir.upstreams[0].servers.clear();
        let p = ir.locations[1].conf.proxy.as_mut().expect("proxy");
        p.dynamic = Some(Template::literal("http://$host"));
        assert_eq!(ir.verify(), Ok(()));
    }

    /// A chain of `n` maps, each using the next; the last uses the first when `cycle`.
    fn map_chain(n: usize, cycle: bool) -> Ir {
        let mut ir = rich();
        ir.maps = (0..n)
            .map(|i| {
                let next = if i + 1 < n {
                    Some(i + 1)
                } else {
                    cycle.then_some(0)
                };
                Map {
                    name: format!("m{i}"),
                    source: Template::literal("x"),
                    hostnames: false,
                    volatile: false,
                    exact: vec![],
                    leading: vec![],
                    trailing: vec![],
                    regex: vec![],
                    default: Template {
                        parts: next
                            .map(|j| Part::Var(Var::Map(j as u32)))
                            .into_iter()
                            .collect(),
                    },
                    geo: None,
                    split: None,
                }
            })
            .collect();
        ir
    }

    #[test]
    fn map_chains_are_bounded_and_acyclic() {
        assert_eq!(map_chain(MAX_MAP_NESTING, false).verify(), Ok(()));
        let deep = map_chain(MAX_MAP_NESTING + 1, false).verify();
        assert!(
            deep.as_ref().is_err_and(|e| e.0.contains("deeper than")),
            "{deep:?}"
        );
        let cycle = map_chain(5, true).verify();
        assert!(
            cycle.as_ref().is_err_and(|e| e.0.contains("itself")),
            "{cycle:?}"
        );
        // Thousands of maps in a chain: refused without deep recursion.
        assert!(map_chain(100_000, false).verify().is_err());
        // Diamonds are fine: two maps using the same one.
        let mut ir = map_chain(3, false);
        ir.maps[0].source = Template {
            parts: vec![Part::Var(Var::Map(2))],
        };
        assert_eq!(ir.verify(), Ok(()));
    }

    #[test]
    fn map_lookup_order() {
        let ir = rich();
        let m = &ir.maps[0];
        let find = |k: &str| m.find_static(k.as_bytes()).map(|t| ir.source_of(t));
        assert_eq!(find("a"), Some("1".into()));
        assert_eq!(find("b.example.com"), Some("$v".into()));
        assert_eq!(find("c.example.com"), Some("2".into()));
        // A leading wildcard wins over a trailing one; the bare name is not a subdomain.
        assert_eq!(find("www.example.com"), Some("2".into()));
        assert_eq!(find("www.example.org"), Some("3".into()));
        assert_eq!(find("example.com"), None);
        assert_eq!(find("www.example."), None);
        assert_eq!(find("A"), None, "keys are lowercased by the caller");
        let mut plain = m.clone();
        plain.hostnames = false;
        assert_eq!(plain.find_static(b"c.example.com"), None);
        assert!(plain.find_static(b"a").is_some());
    }

    #[test]
    fn catches_bad_ids() {
        let mut ir = crate::codec::tests::tiny();
        assert!(ir.verify().is_ok());
        ir.servers[0].default_location = LocationId(9);
        assert!(ir.verify().is_err());
        let mut ir = crate::codec::tests::tiny();
        ir.listeners[0].names.default = ServerId(3);
        assert!(ir.verify().is_err());
    }
}
