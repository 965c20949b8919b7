//! The content cache: `proxy_cache_path` (and the `fastcgi_`, `scgi_`, `uwsgi_` ones: the
//! zones, at the http level) and `proxy_cache`, `proxy_cache_key`, `proxy_cache_valid`, …
//! (inherited settings of each upstream module), checked with nginx's messages.

use super::{arg, nearest, Level, Lower};
use crate::ast::{Directive, MAX_BLOCK_DEPTH};
use crate::diagnostics::{Code, Diagnostic};
use crate::directives::{parse_number, parse_size, parse_time_ms, parse_time_secs};
use crate::source::Span;
use proton_ir::*;

/// The upstream modules that have a content cache, each with directives of its own
/// (`proxy_cache*`, `fastcgi_cache*`, …); their zones share one name space, as nginx's
/// shared memory zones.
pub(super) const CACHE_FAMILIES: [&str; 4] = ["proxy", "fastcgi", "scgi", "uwsgi"];

/// Cache knobs the runtime does not implement yet: the directive (after its module's
/// `proxy_`, `fastcgi_`, `scgi_` or `uwsgi_`) and the only value accepted (its default). A
/// directive of this table written with anything else is refused where it is written; the
/// IR is filled fully either way, so that a knob is enabled by taking its line out of here.
pub(crate) const CACHE_NOT_YET: &[(&str, &str)] = &[];

/// The smallest `keys_zone` nginx takes: two pages of 4 KiB
/// (`ngx_http_file_cache_set_slot`).
const MIN_KEYS_ZONE: u64 = 2 * 4096;

/// Where a cache zone was declared, and by which module.
#[derive(Clone, Copy)]
pub(super) struct ZoneDecl {
    pub(super) span: Span,
    pub(super) family: &'static str,
}

impl Lower<'_> {
    /// The `*_cache_path` lines of the http level, in config order (all four modules in
    /// one list): each zone name once, as nginx's shared memory zones.
    pub(super) fn cache_zones(&mut self, http: &[Directive]) {
        for d in http {
            let Some(family) = CACHE_FAMILIES
                .iter()
                .find(|m| d.name.strip_prefix(**m) == Some("_cache_path"))
            else {
                continue;
            };
            if let Some(z) = self.cache_zone(d, family) {
                self.cache_zone_decls.push(ZoneDecl {
                    span: d.name_span,
                    family,
                });
                self.ir.cache_zones.push(z);
            }
        }
        self.cache_not_yet(http, 0);
    }

    fn cache_zone(&mut self, d: &Directive, family: &'static str) -> Option<CacheZone> {
        let help = format!(
            "{} /var/cache/proton/{family} levels=1:2 keys_zone={family}_cache:10m inactive=60m;",
            d.name
        );
        let mut path = arg(d, 0).to_string();
        if path.len() > 1 && path.ends_with('/') {
            path.pop();
        }
        let mut zone = CacheZone {
            name: String::new(),
            size: 0,
            path,
            levels: Vec::new(),
            use_temp_path: true,
            inactive_secs: 600,
            max_size: None,
            min_free: None,
            manager_files: 100,
            manager_sleep_ms: 50,
            manager_threshold_ms: 200,
            loader_files: 100,
            loader_sleep_ms: 50,
            loader_threshold_ms: 200,
            memory: 4 << 20,
        };
        for i in 1..d.args.len() {
            let v = arg(d, i);
            // Every parameter is `name=value` (a bare word is not one, as in nginx).
            let (key, value) = v.split_once('=').unwrap_or(("", v));
            let bad = |what: &str| format!("invalid {what} value \"{v}\"");
            let problem: Option<(String, &str)> = match key {
                "levels" => match parse_levels(value) {
                    Some(l) => {
                        zone.levels = l;
                        None
                    }
                    None => Some((
                        format!("invalid \"levels\" \"{v}\""),
                        "at most 3 levels, each 1 or 2, separated by \":\" (levels=1:2)",
                    )),
                },
                "use_temp_path" => match value {
                    "on" => {
                        zone.use_temp_path = true;
                        None
                    }
                    "off" => {
                        zone.use_temp_path = false;
                        None
                    }
                    _ => Some((
                        format!(
                            "invalid use_temp_path value \"{v}\", it must be \"on\" or \"off\""
                        ),
                        "on or off",
                    )),
                },
                "keys_zone" => match value.split_once(':') {
                    None => Some((
                        format!("invalid keys zone size \"{v}\""),
                        "expected keys_zone=NAME:SIZE",
                    )),
                    Some((name, size)) => match parse_size(size) {
                        None => Some((format!("invalid keys zone size \"{v}\""), "not a size")),
                        Some(s) if s < MIN_KEYS_ZONE => Some((
                            format!("keys zone \"{v}\" is too small"),
                            "at least 8k (two pages)",
                        )),
                        Some(s) => {
                            zone.name = name.to_string();
                            zone.size = s;
                            None
                        }
                    },
                },
                "memory" => match parse_size(value) {
                    Some(s) => {
                        zone.memory = s;
                        None
                    }
                    None => Some((bad("memory"), "a size (memory=4m), 0 for none")),
                },
                "inactive" => match parse_time_secs(value) {
                    Some(t) => {
                        zone.inactive_secs = t;
                        None
                    }
                    None => Some((bad("inactive"), "a time in seconds or more: 10m, 1h, 1d")),
                },
                "max_size" | "min_free" => match parse_size(value) {
                    Some(s) => {
                        if key == "max_size" {
                            zone.max_size = Some(s);
                        } else {
                            zone.min_free = Some(s);
                        }
                        None
                    }
                    None => Some((bad(key), "a size: 10g, 500m")),
                },
                "loader_files" | "manager_files" => match parse_number::<u32>(value) {
                    Some(n) => {
                        if key == "loader_files" {
                            zone.loader_files = n;
                        } else {
                            zone.manager_files = n;
                        }
                        None
                    }
                    None => Some((bad(key), "a number of files")),
                },
                "loader_sleep" | "loader_threshold" | "manager_sleep" | "manager_threshold" => {
                    match parse_time_ms(value) {
                        Some(t) => {
                            *match key {
                                "loader_sleep" => &mut zone.loader_sleep_ms,
                                "loader_threshold" => &mut zone.loader_threshold_ms,
                                "manager_sleep" => &mut zone.manager_sleep_ms,
                                _ => &mut zone.manager_threshold_ms,
                            } = t;
                            None
                        }
                        None => Some((bad(key), "a time: 50ms, 1s")),
                    }
                }
                "purger" | "purger_files" | "purger_sleep" | "purger_threshold" => {
                    self.err(
                        Diagnostic::error(
                            Code::Unsupported,
                            d.arg_span(i),
                            format!("the \"{key}\" parameter of \"{}\" is not supported", d.name),
                        )
                        .label("an NGINX Plus parameter (the cache purger process)")
                        .help("remove it: Proton removes what a `proxy_cache_purge` with a wildcard key matches while it answers the purge request"),
                    );
                    return None;
                }
                _ => Some((
                    format!("invalid parameter \"{v}\""),
                    "not a parameter of this directive",
                )),
            };
            if let Some((msg, label)) = problem {
                self.err(
                    Diagnostic::error(Code::BadValue, d.arg_span(i), msg)
                        .label(label)
                        .help(help.clone()),
                );
                return None;
            }
        }
        if zone.name.is_empty() {
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.name_span,
                    format!("\"{}\" must have \"keys_zone\" parameter", d.name),
                )
                .label("no keys_zone=NAME:SIZE")
                .help(help),
            );
            return None;
        }
        let name = zone.name.as_str();
        if let Some(i) = self.ir.cache_zones.iter().position(|z| z.name == name) {
            let prev = &self.ir.cache_zones[i];
            let first = self.cache_zone_decls[i];
            let msg = if first.family != family {
                format!("the shared memory zone \"{name}\" is already declared for a different use")
            } else if prev.size != zone.size {
                format!(
                    "the size {} of shared memory zone \"{name}\" conflicts with already declared size {}",
                    zone.size, prev.size
                )
            } else {
                format!("duplicate zone \"{name}\"")
            };
            self.err(
                Diagnostic::error(Code::Duplicate, d.arg_span(0), msg)
                    .label("declared again here")
                    .also(first.span, "first declared here")
                    .help("give each cache its own keys_zone name"),
            );
            return None;
        }
        if let Some(i) = self.ir.limit_zones.iter().position(|z| z.name == name) {
            let first = self.limit_zone_spans[i];
            self.err(
                Diagnostic::error(
                    Code::Duplicate,
                    d.name_span,
                    format!(
                        "the shared memory zone \"{name}\" is already declared for a different use"
                    ),
                )
                .label("a cache zone")
                .also(first, "declared here for a request or connection limit")
                .help("give the cache's keys_zone a name of its own"),
            );
            return None;
        }
        if let Some(i) = self.ir.cache_zones.iter().position(|z| z.path == zone.path) {
            let first = self.cache_zone_decls[i];
            self.err(
                Diagnostic::error(
                    Code::Duplicate,
                    d.arg_span(0),
                    format!("the same path name \"{}\" is used by two caches", zone.path),
                )
                .label("used again here")
                .also(first.span, "first used here")
                .help("give each cache a directory of its own"),
            );
            return None;
        }
        Some(zone)
    }

    /// Refuses, where they are written, the knobs of [`CACHE_NOT_YET`] set to anything but
    /// their default.
    fn cache_not_yet(&mut self, level: &[Directive], depth: usize) {
        if depth > MAX_BLOCK_DEPTH {
            return;
        }
        for d in level {
            if d.block.is_some() {
                // The blocks of settings (not `map`, `geo`, `types`… whose lines are data).
                if matches!(
                    d.name.as_str(),
                    "server" | "location" | "if" | "limit_except"
                ) {
                    self.cache_not_yet(d.children(), depth + 1);
                }
                continue;
            }
            let Some(rest) = CACHE_FAMILIES
                .iter()
                .find_map(|m| d.name.strip_prefix(m)?.strip_prefix('_'))
            else {
                continue;
            };
            let Some((_, default)) = CACHE_NOT_YET.iter().find(|(n, _)| *n == rest) else {
                continue;
            };
            if d.args.len() == 1 && arg(d, 0) == *default {
                continue;
            }
            let span = d
                .args
                .last()
                .map_or(d.name_span, |a| d.name_span.to(a.span));
            self.err(
                Diagnostic::error(
                    Code::Unsupported,
                    span,
                    format!(
                        "\"{}\" directive is not supported yet (only \"{} {default}\")",
                        d.name, d.name
                    ),
                )
                .label("Proton's cache does not do this yet")
                .help("remove it; the cache works without it"),
            );
        }
    }

    /// The cache settings of module `m` (`proxy`, `fastcgi`, `scgi`, `uwsgi`) for a level,
    /// merged as nginx merges them: each directive from the nearest level that has it (the
    /// list directives: all lines of that level).
    pub(super) fn cache_settings(&mut self, chain: &[&Level<'_>], m: &str) -> CacheSettings {
        let n = |suffix: &str| format!("{m}_{suffix}");
        let one = |suffix: &str| nearest(chain, &n(suffix)).first().copied();
        let flag = |suffix: &str, def: bool| one(suffix).map_or(def, |d| arg(d, 0) == "on");
        let time = |suffix: &str, def: u64| {
            one(suffix)
                .and_then(|d| parse_time_ms(arg(d, 0)))
                .unwrap_or(def)
        };
        let mut s = CacheSettings::default();
        let cache = one("cache");
        s.zone = cache.and_then(|d| self.cache_ref(d, m));
        match one("cache_key") {
            Some(d) => s.key = self.template(d, 0),
            None if m == "proxy" => {
                s.key = super::vars::template(
                    "$scheme$proxy_host$request_uri",
                    Span::default(),
                    super::vars::Scope::default(),
                )
                .unwrap_or_default();
            }
            None => {
                if let (Some(d), Some(_)) = (cache, &s.zone) {
                    self.err(
                        Diagnostic::error(
                            Code::Conflict,
                            d.name_span,
                            format!("no \"{m}_cache_key\" for \"{m}_cache\""),
                        )
                        .label(format!("{m} responses need a cache key"))
                        .help(format!(
                            "add {m}_cache_key \"$scheme$request_method$host$request_uri\"; at this level or above ({m}_cache_key has no default)"
                        )),
                    );
                }
            }
        }
        for d in nearest(chain, &n("cache_valid")) {
            if let Some(v) = self.cache_valid(d) {
                s.valid.push(v);
            }
        }
        if let Some(d) = one("cache_methods") {
            let mut post = false;
            for (i, a) in d.args.iter().enumerate() {
                match a.value.to_ascii_uppercase().as_str() {
                    "GET" | "HEAD" => {}
                    "POST" => post = true,
                    _ => self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            d.arg_span(i),
                            format!("invalid value \"{}\"", a.value),
                        )
                        .label("a cached method is GET, HEAD or POST")
                        .help(format!("{} GET HEAD POST;", d.name)),
                    ),
                }
            }
            if post {
                s.methods.push("POST".into());
            }
        }
        s.min_uses = one("cache_min_uses")
            .and_then(|d| parse_number(arg(d, 0)))
            .unwrap_or(1);
        for d in nearest(chain, &n("cache_bypass")) {
            for i in 0..d.args.len() {
                let t = self.template(d, i);
                s.bypass.push(t);
            }
        }
        for d in nearest(chain, &n("no_cache")) {
            for i in 0..d.args.len() {
                let t = self.template(d, i);
                s.no_cache.push(t);
            }
        }
        for d in nearest(chain, &n("cache_purge")) {
            self.third_party_purge(d);
            for i in 0..d.args.len() {
                let t = self.template(d, i);
                s.purge.push(t);
            }
        }
        if let Some(d) = one("cache_use_stale") {
            s.use_stale = self.cache_use_stale(d);
        }
        s.background_update = flag("cache_background_update", false);
        s.lock = flag("cache_lock", false);
        s.lock_timeout_ms = time("cache_lock_timeout", 5000);
        s.lock_age_ms = time("cache_lock_age", 5000);
        s.revalidate = flag("cache_revalidate", false);
        // Only the proxy module converts a cached HEAD into a GET (the others have no
        // such directive and send the HEAD as it is).
        s.convert_head = m == "proxy" && flag("cache_convert_head", true);
        s.max_range_offset = one("cache_max_range_offset").and_then(|d| parse_size(arg(d, 0)));
        s
    }

    /// `proxy_cache zone | off`: a literal zone of this module, or a name with variables.
    fn cache_ref(&mut self, d: &Directive, m: &str) -> Option<CacheRef> {
        let name = arg(d, 0);
        if name == "off" {
            return None;
        }
        let t = self.template(d, 0);
        if t.as_literal().is_none() {
            return Some(CacheRef::Var(t));
        }
        let found = self.ir.cache_zones.iter().position(|z| z.name == name);
        match found {
            Some(i) if self.cache_zone_decls[i].family == m => Some(CacheRef::Zone(i as u32)),
            Some(i) => {
                let first = self.cache_zone_decls[i];
                self.err(
                    Diagnostic::error(
                        Code::Conflict,
                        d.arg_span(0),
                        format!("the shared memory zone \"{name}\" is already declared for a different use"),
                    )
                    .label(format!("not a {m}_cache_path zone"))
                    .also(first.span, format!("declared here by {}_cache_path", first.family))
                    .help(format!("name a zone of a {m}_cache_path line")),
                );
                None
            }
            None => {
                self.err(
                    Diagnostic::error(
                        Code::UnknownName,
                        d.arg_span(0),
                        format!("\"{m}_cache\" zone \"{name}\" is unknown"),
                    )
                    .label(format!("no {m}_cache_path declares this zone"))
                    .help(format!(
                        "declare it at the http level: {m}_cache_path /var/cache/proton/{name} keys_zone={name}:10m;"
                    )),
                );
                None
            }
        }
    }

    /// `proxy_cache_valid [code ...] time`.
    fn cache_valid(&mut self, d: &Directive) -> Option<CacheValid> {
        let last = d.args.len().checked_sub(1)?;
        let Some(secs) = parse_time_secs(arg(d, last)) else {
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.arg_span(last),
                    format!("invalid time value \"{}\"", arg(d, last)),
                )
                .label("the last argument is how long responses stay fresh")
                .help(format!("{} 200 302 10m;", d.name)),
            );
            return None;
        };
        if last == 0 {
            return Some(CacheValid {
                codes: vec![200, 301, 302],
                any: false,
                secs,
            });
        }
        let mut v = CacheValid {
            codes: Vec::new(),
            any: false,
            secs,
        };
        for i in 0..last {
            let a = arg(d, i);
            if a == "any" {
                v.any = true;
                continue;
            }
            match parse_number::<u16>(a).filter(|c| (100..=599).contains(c)) {
                Some(c) => {
                    if !v.codes.contains(&c) {
                        v.codes.push(c);
                    }
                }
                None => {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            d.arg_span(i),
                            format!("invalid status \"{a}\""),
                        )
                        .label("a status from 100 to 599, or any")
                        .help(format!("{} 200 302 10m; {} 404 1m;", d.name, d.name)),
                    );
                    return None;
                }
            }
        }
        Some(v)
    }

    /// `proxy_cache_use_stale error | timeout | … | off` (the words were checked against
    /// the module's list by the directive table).
    /// `proxy_cache_purge` in the third-party ngx_cache_purge module's form (`on`, `off`, a
    /// method name, `from …`, `purge_all`, or a zone and a key) would purge every request
    /// read as NGINX Plus's: a literal value that is not a number is refused with the form
    /// to write instead.
    fn third_party_purge(&mut self, d: &Directive) {
        // (A literal value other than a number is that module's syntax: `on`, `PURGE`,
        // `from`, `purge_all`, a zone's name.)
        let third_party = d.args.iter().enumerate().find(|(_, a)| {
            let v = a.value.as_str();
            !v.contains('$') && !v.bytes().all(|b| b.is_ascii_digit())
        });
        if let Some((i, a)) = third_party {
            let msg = format!(
                "\"{}\" takes NGINX Plus's form (conditions), not the third-party ngx_cache_purge module's: \"{}\" would purge every request",
                d.name, a.value
            );
            self.err(
                Diagnostic::error(Code::BadValue, d.arg_span(i), msg)
                    .label("ngx_cache_purge syntax")
                    .help(format!(
                        "map $request_method $purge {{ PURGE 1; default 0; }} (with an access rule in the map or a geo), then: {} $purge;",
                        d.name
                    )),
            );
        }
    }

    fn cache_use_stale(&mut self, d: &Directive) -> CacheStale {
        let mut s = CacheStale::default();
        for a in &d.args {
            match a.value.as_str() {
                "error" => s.error = true,
                "timeout" => s.timeout = true,
                "invalid_header" => s.invalid_header = true,
                "updating" => s.updating = true,
                "http_500" => s.http_500 = true,
                "http_502" => s.http_502 = true,
                "http_503" => s.http_503 = true,
                "http_504" => s.http_504 = true,
                "http_403" => s.http_403 = true,
                "http_404" => s.http_404 = true,
                "http_429" => s.http_429 = true,
                "off" if d.args.len() > 1 => self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        "\"off\" cannot be combined with other conditions",
                    )
                    .label("here")
                    .help(format!("{} off; or a list of conditions", d.name)),
                ),
                // `off`, and `non_idempotent` (in nginx's list, without effect here).
                _ => {}
            }
        }
        if d.args.iter().any(|a| a.value == "off") {
            return CacheStale::default();
        }
        s
    }
}

/// `levels=1:2` as nginx reads it: up to three levels, each 1 or 2, separated by `:`
/// (`levels=` alone: none).
fn parse_levels(v: &str) -> Option<Vec<u8>> {
    if v.is_empty() {
        return Some(Vec::new());
    }
    let levels: Vec<u8> = v
        .split(':')
        .map(|l| match l {
            "1" => Some(1),
            "2" => Some(2),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (levels.len() <= 3).then_some(levels)
}

impl Lower<'_> {
    /// `proxy_store on | off | string` and `proxy_store_access users:permissions ...` of
    /// module `m` (each from the nearest level that has it), as nginx's
    /// `ngx_http_proxy_store` and `ngx_conf_set_access_slot`.
    pub(super) fn store_settings(
        &mut self,
        chain: &[&Level<'_>],
        m: &str,
    ) -> (Option<StoreTarget>, u32) {
        let n = |suffix: &str| format!("{m}_{suffix}");
        let store = nearest(chain, &n("store")).first().copied();
        let target = store.and_then(|d| match arg(d, 0) {
            "off" => None,
            "on" => Some(StoreTarget::Root),
            _ => Some(StoreTarget::Path(self.template(d, 0))),
        });
        // nginx: a level may not both store and cache.
        if let (Some(d), Some(level)) = (store.filter(|_| target.is_some()), chain.first()) {
            let here = level.get(&n("store")).iter().any(|x| std::ptr::eq(*x, d));
            let cache_here = level
                .get(&n("cache"))
                .iter()
                .find(|x| arg(x, 0) != "off")
                .copied();
            if let (true, Some(c)) = (here, cache_here) {
                self.err(
                    Diagnostic::error(
                        Code::Conflict,
                        c.name_span,
                        format!("\"{m}_cache\" is incompatible with \"{m}_store\""),
                    )
                    .label("both at this level")
                    .help(format!("keep one of \"{m}_cache\" and \"{m}_store\"")),
                );
            }
        }
        let access = match nearest(chain, &n("store_access")).first() {
            None => 0o600,
            Some(d) => {
                let mut mode = 0u32;
                for a in &d.args {
                    let Some((who, what)) = a.value.split_once(':') else {
                        self.bad_access(d, a);
                        continue;
                    };
                    let shift = match who {
                        "user" => 6,
                        "group" => 3,
                        "all" => 0,
                        _ => {
                            self.bad_access(d, a);
                            continue;
                        }
                    };
                    let bits = match what {
                        "r" => 4,
                        "w" => 2,
                        "rw" => 6,
                        _ => {
                            self.bad_access(d, a);
                            continue;
                        }
                    };
                    mode |= bits << shift;
                }
                // nginx: rights given to group or all give the user read and write too.
                if mode & 0o066 != 0 {
                    mode |= 0o600;
                }
                mode
            }
        };
        (target, access)
    }

    fn bad_access(&mut self, d: &Directive, a: &crate::ast::Arg) {
        self.err(
            Diagnostic::error(
                Code::BadValue,
                a.span,
                format!("invalid value \"{}\" in \"{}\" directive", a.value, d.name),
            )
            .label("expected user:, group: or all: with r, w or rw")
            .help(format!("{} user:rw group:rw all:r;", d.name)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_levels;

    #[test]
    fn levels_as_nginx_reads_them() {
        assert_eq!(parse_levels("1:2"), Some(vec![1, 2]));
        assert_eq!(parse_levels("2"), Some(vec![2]));
        assert_eq!(parse_levels("1:2:2"), Some(vec![1, 2, 2]));
        assert_eq!(parse_levels(""), Some(vec![]));
        for bad in ["1:2:2:1", "3", "0", "1:", ":1", "1::2", "12", "a"] {
            assert_eq!(parse_levels(bad), None, "{bad}");
        }
    }
}
