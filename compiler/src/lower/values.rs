//! Lowering of the directives whose arguments have their own grammar: listen, return,
//! rewrite, upstream server, proxy_pass and the proxy settings, and the per-address
//! server-name tables.

use super::{arg, nearest, Level, Lower};
use crate::ast::Directive;
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::directives::{parse_number, parse_size, parse_time_ms, parse_time_secs};
use crate::source::Span;
use proton_ir::*;
use rustc_hash::FxHashMap as HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Options of a `listen` line beyond the address.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ListenOpts {
    pub default_server: bool,
    pub reuseport: bool,
    pub backlog: Option<i32>,
    /// Span of the default_server flag, for duplicate reports.
    pub default_span: Option<Span>,
    /// A socket option was given (nginx's `lsopt.set`): at most one listen line of an
    /// address may do so.
    pub set: bool,
    /// `deferred` (the time is the default server's client_header_timeout).
    pub deferred: bool,
    /// The other socket options (`deferred_secs` filled in per address).
    pub sock: SocketOptions,
    /// `ssl`: the address speaks TLS (any listen line of it may say so, as nginx).
    pub ssl: bool,
    /// `proxy_protocol`: connections start with a PROXY protocol header (as `ssl`, any
    /// listen line of the address may say so).
    pub proxy_protocol: bool,
    /// `http2`: the address speaks HTTP/2 (as `ssl`, any listen line may say so).
    pub http2: bool,
}
/// Status codes whose `return` argument is a URL.
fn is_redirect(code: u16) -> bool {
    matches!(code, 301 | 302 | 303 | 307 | 308)
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("$scheme")
}

/// Parses `host[:port]` or `host:port-port` (a range: one address per port, as nginx).
/// Returns the canonical `ip:port` of each.
fn parse_listen_addrs(s: &str) -> Result<Vec<String>, String> {
    let range = s
        .rsplit_once(':')
        .map_or(Some(s), |(_, p)| Some(p))
        .and_then(|p| p.split_once('-'))
        .filter(|(lo, hi)| {
            [lo, hi]
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
    let Some((lo, hi)) = range else {
        return parse_listen_addr(s).map(|a| vec![a]);
    };
    let head = &s[..s.len() - lo.len() - hi.len() - 1];
    let (lo, hi) = (parse_port(lo)?, parse_port(hi)?);
    if lo > hi {
        return Err(format!("invalid port range \"{lo}-{hi}\""));
    }
    (lo..=hi)
        .map(|p| parse_listen_addr(&format!("{head}{p}")))
        .collect()
}

/// Parses `host[:port]` where host may be `*`, an IPv4 address, `[v6]` or `localhost`.
/// Returns the canonical `ip:port`.
fn parse_listen_addr(s: &str) -> Result<String, String> {
    if let Some(rest) = s.strip_prefix('[') {
        return bracketed_v6(rest, 80);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(format!("0.0.0.0:{}", parse_port(s)?));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, parse_port(p)?),
        None => (s, 80),
    };
    let ip = match host {
        "*" => Ipv4Addr::UNSPECIFIED,
        "localhost" => Ipv4Addr::LOCALHOST,
        h => match h.parse::<Ipv4Addr>() {
            Ok(ip) => ip,
            // A host name: resolved by proton-run when it loads the configuration (nginx
            // resolves it when it reads its configuration, also at start and reload).
            Err(_) if is_host_name(h) => return Ok(format!("{}:{port}", h.to_ascii_lowercase())),
            Err(_) => return Err(format!("invalid host \"{h}\"")),
        },
    };
    Ok(format!("{ip}:{port}"))
}

/// `v6]` or `v6]:port` (after the `[`): the canonical `[v6]:port`, `default_port` when none.
fn bracketed_v6(rest: &str, default_port: u16) -> Result<String, String> {
    let (ip, port) = rest
        .split_once(']')
        .ok_or("missing \"]\" after the IPv6 address")?;
    let ip: Ipv6Addr = ip
        .parse()
        .map_err(|_| format!("invalid IPv6 address \"{ip}\""))?;
    let port = match port.strip_prefix(':') {
        Some(p) => parse_port(p)?,
        None if port.is_empty() => default_port,
        None => return Err(format!("unexpected \"{port}\" after the address")),
    };
    Ok(format!("[{ip}]:{port}"))
}

/// A `resolver` server: `ip[:port]`, `[v6][:port]` or `name[:port]` (port 53 by default).
/// Returns the canonical `ip:port` (`[v6]:port`) or the lowercase `name:port`.
pub(crate) fn resolver_server(s: &str) -> Result<String, String> {
    if let Ok(ip) = s.parse::<Ipv6Addr>() {
        // A bare IPv6 address (nginx accepts it without brackets).
        return Ok(format!("[{ip}]:53"));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        return bracketed_v6(rest, 53);
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, parse_port(p)?),
            None => (s, 53),
        }
    };
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(format!("{ip}:{port}"));
    }
    if is_host_name(host) {
        return Ok(format!("{}:{port}", host.to_ascii_lowercase()));
    }
    Err(format!("invalid resolver address \"{s}\""))
}

/// A DNS name: letters, digits, `-` and `.`, with at least one letter, not starting or ending
/// with `.` or `-`.
fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && h.bytes().any(|b| b.is_ascii_alphabetic())
        && !h.starts_with(['.', '-'])
        && !h.ends_with(['.', '-'])
}

/// `on`, `off` or `[keepidle]:[keepintvl]:[keepcnt]` (times in seconds, with units), as
/// nginx parses `so_keepalive=`.
fn parse_so_keepalive(v: &str) -> Option<SoKeepalive> {
    match v {
        "on" => {
            return Some(SoKeepalive::On {
                idle: 0,
                intvl: 0,
                cnt: 0,
            })
        }
        "off" => return Some(SoKeepalive::Off),
        _ => {}
    }
    let mut parts = v.splitn(3, ':');
    let time = |p: Option<&str>| -> Option<u32> {
        match p {
            None | Some("") => Some(0),
            Some(t) => parse_time_secs(t).and_then(|n| u32::try_from(n).ok()),
        }
    };
    let idle = time(parts.next())?;
    let intvl = time(parts.next())?;
    let cnt = match parts.next() {
        None | Some("") => 0,
        Some(c) => parse_number::<u32>(c)?,
    };
    if idle == 0 && intvl == 0 && cnt == 0 {
        return None;
    }
    Some(SoKeepalive::On { idle, intvl, cnt })
}

fn parse_port(p: &str) -> Result<u16, String> {
    match parse_number::<u16>(p) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!("invalid port \"{p}\"")),
    }
}

impl Lower<'_> {
    /// One `listen` line: its addresses (several for a port range) and options.
    pub(crate) fn listen(&mut self, d: &Directive) -> Vec<(String, ListenOpts, Span)> {
        let Some(a0) = d.args.first() else {
            return Vec::new();
        };
        let unix = a0.value.starts_with("unix:");
        let addrs = if unix {
            // `unix:PATH`, used as written (nginx does not resolve it against the prefix).
            if a0.value.len() == "unix:".len() {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a0.span,
                        format!("invalid listen address \"{}\"", a0.value),
                    )
                    .label("no path in the unix domain socket")
                    .help("listen unix:/run/proton.sock;"),
                );
                return Vec::new();
            }
            Ok(vec![a0.value.clone()])
        } else {
            parse_listen_addrs(&a0.value)
        };
        let addrs = match addrs {
            Ok(a) => a,
            Err(e) => {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a0.span,
                        format!("invalid listen address \"{}\"", a0.value),
                    )
                    .label(e)
                    .help("listen 8080; | listen 127.0.0.1:8080; | listen [::]:8080; | listen 127.0.0.1:8000-8003;"),
                );
                return Vec::new();
            }
        };
        let mut o = ListenOpts::default();
        for a in &d.args[1..] {
            let v = a.value.as_str();
            let bad = |what: &str, help: &str| {
                Diagnostic::error(Code::BadValue, a.span, format!("invalid {what} \"{v}\""))
                    .label(format!("not a valid {what}"))
                    .help(help.to_string())
            };
            // Every socket option also implies `bind`, as in nginx.
            // (As nginx: ssl, http2 and proxy_protocol may be repeated on every listen of
            // an address; the socket's own options only once.)
            let socket_option = !matches!(
                v,
                "default_server" | "default" | "ssl" | "http2" | "proxy_protocol"
            );
            match v {
                "default_server" | "default" => {
                    o.default_server = true;
                    o.default_span = Some(a.span);
                }
                "reuseport" => o.reuseport = true,
                "ssl" => o.ssl = true,
                "proxy_protocol" => o.proxy_protocol = true,
                "bind" => {}
                "deferred" => o.deferred = true,
                _ if v.starts_with("backlog=") => match parse_number::<i32>(&v["backlog=".len()..])
                {
                    Some(n) if n > 0 => o.backlog = Some(n),
                    _ => self.err(bad("backlog", "backlog=511")),
                },
                _ if v.starts_with("rcvbuf=") || v.starts_with("sndbuf=") => {
                    match parse_size(&v[7..]).and_then(|n| u32::try_from(n).ok()) {
                        Some(n) if v.starts_with('r') => o.sock.rcvbuf = Some(n),
                        Some(n) => o.sock.sndbuf = Some(n),
                        None => self.err(bad(&v[..6], "rcvbuf=64k | sndbuf=1m")),
                    }
                }
                "ipv6only=on" => o.sock.ipv6only_off = false,
                "ipv6only=off" => o.sock.ipv6only_off = true,
                _ if v.starts_with("ipv6only=") => {
                    self.err(bad("ipv6only flags", "ipv6only=on | ipv6only=off"))
                }
                _ if v.starts_with("so_keepalive=") => match parse_so_keepalive(&v[13..]) {
                    Some(k) => o.sock.keepalive = k,
                    None => self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            format!("invalid so_keepalive value: \"{}\"", &v[13..]),
                        )
                        .label("expected on, off or [keepidle]:[keepintvl]:[keepcnt]")
                        .help("so_keepalive=on | so_keepalive=30m::10"),
                    ),
                },
                "http2" => o.http2 = true,
                "quic" | "setfib" | "accept_filter" | "multipath" => self.err(
                    Diagnostic::error(
                        Code::Unsupported,
                        a.span,
                        format!("listen parameter \"{v}\" is not supported yet"),
                    )
                    .label("not implemented by Proton yet")
                    .help("remove it; see docs/configuration.md for listen parameters"),
                ),
                _ if ["fastopen=", "setfib=", "accept_filter="]
                    .iter()
                    .any(|p| v.starts_with(p)) =>
                {
                    self.err(
                        Diagnostic::error(
                            Code::Unsupported,
                            a.span,
                            format!("listen parameter \"{v}\" is not supported yet"),
                        )
                        .label("not implemented by Proton yet")
                        .help("remove it; see docs/configuration.md for listen parameters"),
                    )
                }
                _ => {
                    let cands = [
                        "default_server",
                        "ssl",
                        "reuseport",
                        "backlog=",
                        "bind",
                        "deferred",
                        "rcvbuf=",
                        "sndbuf=",
                        "ipv6only=",
                        "so_keepalive=",
                    ];
                    let mut e = Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("invalid parameter \"{v}\" in listen"),
                    )
                    .label("unknown parameter");
                    e = e.help(match did_you_mean(v, cands) {
                        Some(c) => format!("did you mean \"{c}\"?"),
                        None => "listen parameters: default_server, ssl, bind, reuseport, backlog=N, rcvbuf=, sndbuf=, deferred, ipv6only=, so_keepalive=".into(),
                    });
                    self.err(e);
                }
            }
            if socket_option {
                o.set = true;
                o.sock.bind = true;
            }
            let tcp_only =
                v == "deferred" || v.starts_with("so_keepalive=") || v.starts_with("ipv6only=");
            if unix && tcp_only {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("listen parameter \"{v}\" does not apply to a unix socket"),
                    )
                    .label("a TCP option")
                    .help("remove it from this listen line"),
                );
            }
        }
        addrs.into_iter().map(|a| (a, o, a0.span)).collect()
    }

    pub(crate) fn return_op(&mut self, d: &Directive) -> Option<ScriptOp> {
        let a0 = d.args.first()?;
        match parse_number::<u16>(&a0.value) {
            Some(code @ 0..=999) => {
                let text = (d.args.len() > 1).then(|| self.template(d, 1));
                if is_redirect(code) && text.is_none() {
                    // nginx accepts it and answers with an empty Location (an error_page for
                    // the code can give the real target).
                    self.err(
                        Diagnostic::warning(
                            Code::RedirectWithoutUrl,
                            a0.span,
                            format!("return {code} without a URL sends an empty Location"),
                        )
                        .label("redirect without a target")
                        .help(format!("return {code} https://example.com$request_uri;")),
                    );
                }
                Some(ScriptOp::Return { code, text })
            }
            _ if d.args.len() == 1 && is_url(&a0.value) => Some(ScriptOp::Return {
                code: 302,
                text: Some(self.template(d, 0)),
            }),
            _ => {
                self.err(
                    Diagnostic::error(Code::BadValue, a0.span, format!("invalid return code \"{}\"", a0.value))
                        .label("expected a status code (0-999) or a URL")
                        .help("return 200 \"text\"; | return 301 https://example.com$request_uri; | return https://…;"),
                );
                None
            }
        }
    }

    pub(crate) fn rewrite_op(&mut self, d: &Directive) -> Option<ScriptOp> {
        let re = d.args.first()?;
        let regex = self.regex(&re.value, false, re.span);
        let flag = match d.args.get(2).map(|a| a.value.as_str()) {
            None => RewriteFlag::None,
            Some("last") => RewriteFlag::Last,
            Some("break") => RewriteFlag::Break,
            Some("redirect") => RewriteFlag::Redirect,
            Some("permanent") => RewriteFlag::Permanent,
            Some(o) => {
                let mut e = Diagnostic::error(
                    Code::BadValue,
                    d.arg_span(2),
                    format!("invalid rewrite flag \"{o}\""),
                )
                .label("unknown flag");
                e = e.help(
                    match did_you_mean(o, ["last", "break", "redirect", "permanent"]) {
                        Some(c) => format!("did you mean \"{c}\"?"),
                        None => "flags: last, break, redirect, permanent".into(),
                    },
                );
                self.err(e);
                return None;
            }
        };
        Some(ScriptOp::Rewrite {
            regex,
            replacement: self.template(d, 1),
            flag,
            source: self.source_ref(d.name_span),
        })
    }

    pub(crate) fn upstream_server(&mut self, d: &Directive) -> Option<UpstreamServer> {
        let a0 = d.args.first()?;
        let address = if let Some(path) = strip_unix(&a0.value) {
            // `unix:PATH`: the whole rest is the path (no URI part here), used as written.
            if let Err(e) = check_unix_path(path) {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a0.span,
                        format!("invalid upstream server address \"{}\"", a0.value),
                    )
                    .label(e)
                    .help("server unix:/run/app.sock;"),
                );
                return None;
            }
            format!("unix:{path}")
        } else {
            if let Err(e) = check_host_port(&a0.value) {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a0.span,
                        format!("invalid upstream server address \"{}\"", a0.value),
                    )
                    .label(e)
                    .help("server 127.0.0.1:8080; or server backend.internal:80; or server unix:/run/app.sock;"),
                );
                return None;
            }
            if has_port(&a0.value) {
                a0.value.clone()
            } else {
                format!("{}:80", a0.value)
            }
        };
        let mut s = UpstreamServer::new(address);
        for a in &d.args[1..] {
            let v = a.value.as_str();
            let (k, val) = v.split_once('=').unwrap_or((v, ""));
            let bad = |this: &mut Self, what: &str| {
                this.err(
                    Diagnostic::error(Code::BadValue, a.span, format!("invalid value in \"{v}\""))
                        .label(format!("expected {what}"))
                        .help("server 127.0.0.1:8080 weight=2 max_fails=3 fail_timeout=30s;"),
                );
            };
            match k {
                "weight" => match parse_number::<u32>(val) {
                    Some(n) if n > 0 => s.weight = n,
                    _ => bad(self, "a positive number"),
                },
                "max_fails" => match parse_number(val) {
                    Some(n) => s.max_fails = n,
                    _ => bad(self, "a number"),
                },
                "max_conns" => match parse_number(val) {
                    Some(n) => s.max_conns = n,
                    _ => bad(self, "a number"),
                },
                // nginx reads fail_timeout in seconds (no ms).
                "fail_timeout" => match parse_time_secs(val) {
                    Some(t) => s.fail_timeout_ms = t * 1000,
                    None => bad(self, "a time"),
                },
                "backup" if val.is_empty() => s.backup = true,
                "down" if val.is_empty() => s.down = true,
                "resolve" if val.is_empty() => s.resolve = true,
                "service" | "route" | "slow_start" | "drain" => self.err(
                    Diagnostic::error(
                        Code::Unsupported,
                        a.span,
                        format!("upstream server parameter \"{k}\" is not supported yet"),
                    )
                    .label("not implemented by Proton yet")
                    .help("remove it"),
                ),
                _ => {
                    let mut e = Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("invalid parameter \"{v}\""),
                    )
                    .label("unknown parameter");
                    e = e.help(match did_you_mean(k, ["weight", "max_fails", "fail_timeout", "backup", "down", "max_conns", "resolve"]) {
                        Some(c) if !val.is_empty() => format!("did you mean \"{c}={val}\"?"),
                        Some(c) => format!("did you mean \"{c}\"?"),
                        None => "parameters: weight=, max_fails=, fail_timeout=, backup, down, max_conns=, resolve".into(),
                    });
                    self.err(e);
                }
            }
        }
        Some(s)
    }

    /// `random [two [least_conn]]`.
    pub(crate) fn random(&mut self, d: &Directive) -> Balance {
        let words: Vec<&str> = d.args.iter().map(|a| a.value.as_str()).collect();
        match words.as_slice() {
            [] => Balance::Random { two: false },
            ["two"] | ["two", "least_conn"] => Balance::Random { two: true },
            [first, ..] if *first != "two" => {
                let help = match *first {
                    "least_conn" => {
                        "the method goes after `two`: write `random two least_conn;`".to_string()
                    }
                    o => match did_you_mean(o, ["two"]) {
                        Some(_) => "did you mean \"two\"?".to_string(),
                        None => "write `random;` or `random two;`".to_string(),
                    },
                };
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid parameter \"{first}\""),
                    )
                    .label("here")
                    .help(help),
                );
                Balance::Random { two: false }
            }
            _ => {
                let method = words.get(1).copied().unwrap_or_default();
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(1),
                        format!("invalid parameter \"{method}\""),
                    )
                    .label("not a method of `random two`")
                    .help(match did_you_mean(method, ["least_conn"]) {
                        Some(_) => "did you mean \"least_conn\"?",
                        None => "the only method after `two` is `least_conn` (also the default): write `random two;`",
                    }),
                );
                Balance::Random { two: true }
            }
        }
    }

    /// `least_time header | last_byte [inflight]`.
    pub(crate) fn least_time(&mut self, d: &Directive) -> Balance {
        let last_byte = match arg(d, 0) {
            "header" => false,
            "last_byte" => true,
            o => {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid parameter \"{o}\""),
                    )
                    .label("expected `header` or `last_byte`")
                    .help(match did_you_mean(o, ["header", "last_byte"]) {
                        Some(c) => format!("did you mean \"{c}\"?"),
                        None => "write `least_time header;` or `least_time last_byte;`".into(),
                    }),
                );
                false
            }
        };
        if let Some(a) = d.args.get(1).filter(|a| a.value != "inflight") {
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    a.span,
                    format!("invalid parameter \"{}\"", a.value),
                )
                .label("expected `inflight`")
                .help("in-flight requests always count in Proton: remove it, or write `inflight`"),
            );
        }
        Balance::LeastTime { last_byte }
    }

    /// `health_check [interval=time] [uri=uri] [fails=n] [passes=n] [timeout=time] [port=n]
    /// [match=name]`. Returns `None` when a parameter is wrong (after reporting it).
    pub(crate) fn health_check(&mut self, d: &Directive) -> Option<HealthCheck> {
        const PARAMS: [&str; 7] = [
            "interval", "uri", "fails", "passes", "timeout", "port", "match",
        ];
        /// The default timeout is the interval, but no longer than this.
        const MAX_DEFAULT_TIMEOUT_MS: u64 = 10_000;
        const EXAMPLE: &str = "health_check interval=5s uri=/health fails=2 passes=1 timeout=2s;";
        let mut h = HealthCheck {
            interval_ms: 5_000,
            uri: "/".into(),
            fails: 1,
            passes: 1,
            timeout_ms: 0,
            port: None,
            expect: None,
        };
        let mut timeout = None;
        let errors_before = self.diags.error_count();
        let mut seen: Vec<(&str, Span)> = Vec::new();
        for a in &d.args {
            let v = a.value.as_str();
            let (k, val) = v.split_once('=').unwrap_or((v, ""));
            let bad = |this: &mut Self, what: &str| {
                this.err(
                    Diagnostic::error(Code::BadValue, a.span, format!("invalid value in \"{v}\""))
                        .label(format!("expected {what}"))
                        .help(EXAMPLE),
                );
            };
            if PARAMS.contains(&k) {
                if let Some((_, first)) = seen.iter().find(|(n, _)| *n == k) {
                    self.err(
                        Diagnostic::error(
                            Code::Duplicate,
                            a.span,
                            format!("health_check parameter \"{k}\" is duplicate"),
                        )
                        .label("second occurrence")
                        .also(*first, "first set here")
                        .help("give each parameter once"),
                    );
                    continue;
                }
                seen.push((k, a.span));
            }
            match k {
                "interval" => match parse_time_ms(val) {
                    Some(t) if t > 0 => h.interval_ms = t,
                    _ => bad(self, "a time above 0 (`5s`, `500ms`)"),
                },
                "timeout" => match parse_time_ms(val) {
                    Some(t) if t > 0 => timeout = Some(t),
                    _ => bad(self, "a time above 0 (`2s`, `500ms`)"),
                },
                "fails" => match parse_number::<u32>(val) {
                    Some(n) if n > 0 => h.fails = n,
                    _ => bad(self, "a number of at least 1"),
                },
                "passes" => match parse_number::<u32>(val) {
                    Some(n) if n > 0 => h.passes = n,
                    _ => bad(self, "a number of at least 1"),
                },
                "port" => match parse_number::<u16>(val) {
                    Some(n) if n > 0 => h.port = Some(n),
                    _ => bad(self, "a port from 1 to 65535"),
                },
                "uri" => {
                    if val.starts_with('/') && val.bytes().all(|b| b.is_ascii_graphic()) {
                        h.uri = val.to_string();
                    } else {
                        bad(self, "a path starting with `/`, without spaces");
                    }
                }
                "match" if val.is_empty() => bad(self, "the name of a `match` block"),
                "match" => h.expect = self.health_match_ref(val, a.span),
                "jitter" | "mandatory" | "persistent" | "type" | "keepalive_time"
                | "grpc_service" | "grpc_status" => {
                    self.err(
                        Diagnostic::error(
                            Code::Unsupported,
                            a.span,
                            format!("health_check parameter \"{k}\" is not supported yet"),
                        )
                        .label("not implemented by Proton yet")
                        .help("remove it (`match=` tests the answer's status, headers and body)"),
                    );
                }
                _ => {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            format!("invalid parameter \"{v}\""),
                        )
                        .label("unknown parameter")
                        .help(match did_you_mean(k, PARAMS) {
                            Some(c) if !val.is_empty() => format!("did you mean \"{c}={val}\"?"),
                            Some(c) => format!("did you mean \"{c}=\"?"),
                            None => "parameters: interval=, uri=, fails=, passes=, timeout=, port=, match="
                                .into(),
                        }),
                    );
                }
            }
        }
        h.timeout_ms = timeout.unwrap_or(h.interval_ms.min(MAX_DEFAULT_TIMEOUT_MS));
        (self.diags.error_count() == errors_before).then_some(h)
    }

    fn implicit_upstream(&mut self, address: String) -> UpstreamId {
        if let Some(&id) = self.implicit_upstreams.get(&address) {
            return id;
        }
        self.implicit_upstreams
            .insert(address.clone(), UpstreamId(self.ir.upstreams.len() as u32));
        self.ir.upstreams.push(Upstream {
            name: address.clone(),
            explicit: false,
            servers: if address.starts_with('$') {
                vec![]
            } else {
                vec![UpstreamServer::new(address)]
            },
            balance: Balance::RoundRobin,
            keepalive: 0,
            keepalive_timeout_ms: 60_000,
            keepalive_requests: 1000,
            keepalive_time_ms: 3_600_000,
            health_check: None,
            resolver: None,
            resolver_timeout_ms: 30_000,
        });
        UpstreamId(self.ir.upstreams.len() as u32 - 1)
    }

    pub(crate) fn proxy_pass(&mut self, d: &Directive, kind: LocationKind) -> Option<Proxy> {
        let a = d.args.first()?;
        let v = a.value.as_str();
        let (scheme, rest) = if let Some(r) = v.strip_prefix("http://") {
            ("http", r)
        } else if let Some(r) = v.strip_prefix("https://") {
            ("https", r)
        } else if v.contains('$') {
            // With variables the prefix is checked once the URL is made (nginx: 500 and
            // "invalid URL prefix" then), as in `proxy_pass http:/$uri`.
            ("http", v)
        } else {
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    a.span,
                    format!("invalid URL prefix in \"{v}\""),
                )
                .label("expected http:// or https://")
                .help("proxy_pass http://backend; or proxy_pass http://127.0.0.1:8080/;"),
            );
            return None;
        };
        let scheme = if scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        self.pass_target(d, kind, rest, scheme, Protocol::Http)
    }

    /// `fastcgi_pass`, `scgi_pass`, `uwsgi_pass address`: `host:port`, `unix:PATH`, an
    /// upstream group, or variables (nginx's: no URI part, a port needed); uwsgi_pass may
    /// start with `uwsgi://`, or `suwsgi://` for TLS.
    pub(crate) fn cgi_pass(&mut self, d: &Directive, kind: LocationKind) -> Option<Proxy> {
        let a = d.args.first()?;
        let protocol = match d.name.as_str() {
            "scgi_pass" => Protocol::Scgi,
            "uwsgi_pass" => Protocol::Uwsgi,
            "grpc_pass" => Protocol::Grpc,
            _ => Protocol::FastCgi,
        };
        let mut v = a.value.as_str();
        let mut scheme = Scheme::Http;
        if protocol == Protocol::Grpc {
            if v.len() >= 8 && v[..8].eq_ignore_ascii_case("grpcs://") {
                // gRPC over TLS (ALPN h2), with the grpc_ssl_* settings.
                v = &v[8..];
                scheme = Scheme::Https;
            } else if v.len() >= 7 && v[..7].eq_ignore_ascii_case("grpc://") {
                v = &v[7..];
            }
        }
        if protocol == Protocol::Uwsgi {
            if v.len() >= 9 && v[..9].eq_ignore_ascii_case("suwsgi://") {
                // uwsgi over TLS, with the uwsgi_ssl_* settings.
                v = &v[9..];
                scheme = Scheme::Https;
            } else if v.len() >= 8 && v[..8].eq_ignore_ascii_case("uwsgi://") {
                v = &v[8..];
            }
        }
        let v = v.to_string();
        self.pass_target(d, kind, &v, scheme, protocol)
    }

    /// Where a `proxy_pass` (after its scheme) or `fastcgi_pass` sends requests.
    fn pass_target(
        &mut self,
        d: &Directive,
        kind: LocationKind,
        rest: &str,
        scheme: Scheme,
        protocol: Protocol,
    ) -> Option<Proxy> {
        let a = d.args.first()?;
        let v = a.value.as_str();
        let http = protocol == Protocol::Http;
        let name = d.name.as_str();
        if v.contains('$') {
            let t = self.template(d, 0);
            let upstream = self.implicit_upstream("$dynamic".to_string());
            return Some(Proxy {
                upstream,
                scheme,
                proxy_host: TextRef::default(),
                uri: None,
                dynamic: Some(t),
                prefix: None,
                protocol,
            });
        }
        // `unix:PATH[:URI]`: the URI part, if any, follows the path's first colon (nginx's
        // `ngx_parse_unix_domain_url` with `uri_part`).
        let unix = strip_unix(rest).map(|path| match path.split_once(':') {
            Some((path, uri)) if http => (path, (!uri.is_empty()).then_some(uri)),
            _ => (path, None),
        });
        let (hostport, uri) = match unix {
            Some((path, uri)) => (&rest[..5 + path.len()], uri),
            None => match rest.find('/') {
                Some(i) => (&rest[..i], Some(&rest[i..])),
                None => (rest, None),
            },
        };
        if let (Some(u), false) = (uri, http) {
            // nginx: a fastcgi_pass address has no URI part.
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    a.span,
                    format!("invalid host in upstream \"{v}\""),
                )
                .label(format!("\"{u}\" is not part of an address"))
                .help(format!(
                    "{name} 127.0.0.1:9000; or {name} unix:/run/php/php-fpm.sock;"
                )),
            );
            return None;
        }
        if uri.is_some()
            && matches!(
                kind,
                LocationKind::Regex
                    | LocationKind::RegexCaseless
                    | LocationKind::Named
                    | LocationKind::If
                    | LocationKind::LimitExcept
            )
        {
            self.err(
                Diagnostic::error(Code::Conflict, a.span, "\"proxy_pass\" cannot have URI part in a location given by regular expression, inside a named location, inside an \"if\" block or inside a \"limit_except\" block")
                    .label("URI part here")
                    .help("drop the URI part (and rewrite the URI with `rewrite … break;` if needed)"),
            );
            return None;
        }
        if hostport.is_empty() {
            self.err(
                Diagnostic::error(Code::BadValue, a.span, "no host in proxy_pass URL")
                    .label("here")
                    .help("proxy_pass http://backend;"),
            );
            return None;
        }
        if let Some((path, uri)) = unix {
            let bad = check_unix_path(path).err().or_else(|| {
                uri.filter(|u| !u.starts_with('/'))
                    .map(|_| "the URI after the socket path does not start with \"/\"")
            });
            if let Some(e) = bad {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("invalid {name} address \"{rest}\""),
                    )
                    .label(e)
                    .help("proxy_pass http://unix:/run/app.sock; or proxy_pass http://unix:/run/app.sock:/prefix/;"),
                );
                return None;
            }
            // The socket path is used as written (nginx does not resolve it against the
            // prefix). `$proxy_host` (and so `Host`) is `localhost`, as nginx; the IR keeps
            // `unix:PATH` as written, for `proxy_redirect default` and the logs.
            return Some(Proxy {
                upstream: self.implicit_upstream(format!("unix:{path}")),
                scheme,
                proxy_host: self.ir.push_text(&format!("unix:{path}")),
                uri: uri.map(Template::literal),
                dynamic: None,
                prefix: None,
                protocol,
            });
        }
        let lower_host = hostport.to_ascii_lowercase();
        let upstream = if let Some((id, _)) = self.upstream_names.get(&lower_host).copied() {
            let checked = self
                .ir
                .upstreams
                .get(id.0 as usize)
                .is_some_and(|u| u.health_check.is_some());
            if scheme == Scheme::Https && checked {
                // The checks speak plain HTTP: against a TLS server every one would fail
                // and mark the servers down.
                self.err(
                    Diagnostic::error(
                        Code::Unsupported,
                        a.span,
                        format!("health checks of upstream \"{hostport}\" over https:// are not supported yet"),
                    )
                    .label("this upstream has health_check, whose requests are plain HTTP")
                    .help("remove health_check from the upstream, or proxy to it with http://"),
                );
                return None;
            }
            id
        } else if let Some((name, _)) = hostport
            .rsplit_once(':')
            .filter(|(n, _)| self.upstream_names.contains_key(&n.to_ascii_lowercase()))
        {
            self.err(
                Diagnostic::error(
                    Code::Conflict,
                    a.span,
                    format!("upstream \"{name}\" may not have port"),
                )
                .label("an upstream group has no port")
                .help(format!("proxy_pass http://{name};")),
            );
            return None;
        } else {
            let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
            let looks_like_host = has_port(hostport)
                || host.contains('.')
                || host == "localhost"
                || host.starts_with('[');
            if !looks_like_host {
                let names: Vec<&str> = self
                    .ir
                    .upstreams
                    .iter()
                    .filter(|u| u.explicit)
                    .map(|u| u.name.as_str())
                    .collect();
                let mut e = Diagnostic::error(
                    Code::UnknownName,
                    a.span,
                    format!("unknown upstream \"{hostport}\""),
                )
                .label("no upstream block with this name, and not a host:port");
                e = e.help(match did_you_mean(hostport, names) {
                    Some(c) => format!("did you mean \"{c}\"?"),
                    None => format!("define `upstream {hostport} {{ server 127.0.0.1:8080; }}` or write host:port"),
                });
                self.err(e);
                return None;
            }
            if let Err(e) = check_host_port(hostport) {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("invalid {} address \"{hostport}\"", d.name),
                    )
                    .label(e)
                    .help("proxy_pass http://127.0.0.1:8080;"),
                );
                return None;
            }
            if !http && !has_port(hostport) {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("no port in upstream \"{hostport}\""),
                    )
                    .label("an address needs its port here")
                    .help(format!("{name} {hostport}:9000;")),
                );
                return None;
            }
            let addr = if has_port(hostport) {
                hostport.to_string()
            } else if scheme == Scheme::Https {
                format!("{hostport}:443")
            } else {
                format!("{hostport}:80")
            };
            self.implicit_upstream(addr)
        };
        Some(Proxy {
            upstream,
            scheme,
            proxy_host: self.ir.push_text(hostport),
            uri: uri.map(Template::literal),
            dynamic: None,
            prefix: None,
            protocol,
        })
    }

    /// The settings of the upstream module whose directives start with `m` (`proxy`,
    /// `fastcgi`): each module inherits its own, as nginx's. What only the proxy module has
    /// (proxy_set_header, proxy_redirect, …) is empty for the others, and what only the CGI
    /// modules have ([`CgiSettings`]) is empty for the proxy.
    pub(crate) fn upstream_settings(&mut self, chain: &[&Level<'_>], m: &str) -> ProxySettings {
        let http = m == "proxy";
        let n = |suffix: &str| format!("{m}_{suffix}");
        let mut set_headers: Vec<(String, Template)> = Vec::new();
        let grpc = m == "grpc";
        for d in nearest(chain, &n("set_header"))
            .iter()
            .filter(|_| http || grpc)
        {
            set_headers.push((arg(d, 0).to_string(), self.template(d, 1)));
        }
        let defaults: &[(&str, &str)] = if http {
            &[("Host", "$proxy_host"), ("Connection", "close")]
        } else {
            &[]
        };
        for &(name, value) in defaults {
            if !set_headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                let t =
                    super::vars::template(value, Span::default(), super::vars::Scope::default())
                        .unwrap_or_default();
                set_headers.push((name.to_string(), t));
            }
        }
        let one = |suffix: &str| nearest(chain, &n(suffix)).first().copied();
        let time = |suffix: &str, def: u64| {
            one(suffix)
                .and_then(|d| parse_time_ms(arg(d, 0)))
                .unwrap_or(def)
        };
        let mut next_upstream = NextUpstream {
            error: true,
            timeout: true,
            ..NextUpstream::default()
        };
        if let Some(d) = one("next_upstream") {
            next_upstream = NextUpstream::default();
            for a in &d.args {
                match a.value.as_str() {
                    "error" => next_upstream.error = true,
                    "timeout" => next_upstream.timeout = true,
                    "invalid_header" => next_upstream.invalid_header = true,
                    "http_500" => next_upstream.http_500 = true,
                    "http_502" => next_upstream.http_502 = true,
                    "http_503" => next_upstream.http_503 = true,
                    "http_504" => next_upstream.http_504 = true,
                    "http_403" => next_upstream.http_403 = true,
                    "http_404" => next_upstream.http_404 = true,
                    "http_429" => next_upstream.http_429 = true,
                    "non_idempotent" => next_upstream.non_idempotent = true,
                    "off" if d.args.len() > 1 => self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            "\"off\" cannot be combined with other conditions",
                        )
                        .label("here")
                        .help(format!("{m}_next_upstream off; or a list of conditions")),
                    ),
                    _ => {}
                }
            }
        }
        let redirect = if http {
            self.proxy_redirects(chain)
        } else {
            Vec::new()
        };
        let buffers = match one("buffers") {
            Some(d) => {
                let n = parse_number::<u32>(arg(d, 0)).filter(|n| *n >= 2);
                let s = parse_size(arg(d, 1)).filter(|s| *s > 0);
                match (n, s) {
                    (Some(n), Some(s)) => (n, s),
                    _ => {
                        self.err(
                            Diagnostic::error(
                                Code::BadValue,
                                d.arg_span(0),
                                format!("invalid {m}_buffers"),
                            )
                            .label("expected a count ≥ 2 and a size")
                            .help(format!("{m}_buffers 8 4k;")),
                        );
                        (8, 4096)
                    }
                }
            }
            None => (8, 4096),
        };
        let list = |suffix: &str| -> Vec<String> {
            nearest(chain, &n(suffix))
                .iter()
                .map(|d| arg(d, 0).to_ascii_lowercase())
                .collect()
        };
        let buffer_size = one("buffer_size")
            .and_then(|d| parse_size(arg(d, 0)))
            .unwrap_or(4096);
        // nginx's checks of the buffer sizes against each other (its merge of the proxy
        // location settings), made where a directive is written.
        let unit = buffer_size.max(buffers.1);
        let at_least_unit = format!("must be equal to or greater than the maximum of the value of \"{m}_buffer_size\" and one of the \"{m}_buffers\"");
        // A default that fails (nginx checks those too) is reported at the directive that
        // made it fail.
        let sizes_span = one("buffer_size").or(one("buffers")).map(|d| d.name_span);
        let mut sized = |name: &str, default: u64, check: &dyn Fn(u64) -> Option<String>| {
            let written = one(name);
            let v = written
                .and_then(|d| parse_size(arg(d, 0)))
                .unwrap_or(default);
            let span = written.map(|d| d.arg_span(0)).or(sizes_span);
            // (gRPC has no buffers to check these against: its answer streams.)
            if let (Some(why), Some(span), false) = (check(v), span, grpc) {
                self.err(
                    Diagnostic::error(Code::BadValue, span, format!("\"{m}_{name}\" {why}"))
                        .label(if written.is_some() {
                            "here"
                        } else {
                            "its default (twice the larger buffer size) does not fit these buffers"
                        })
                        .help(format!(
                            "with {m}_buffer_size {buffer_size} and {m}_buffers {} {}: {m}_busy_buffers_size from {unit} to {}, {m}_temp_file_write_size from {unit}, {m}_max_temp_file_size 0 or from {unit}; or more or larger {m}_buffers",
                            buffers.0,
                            buffers.1,
                            u64::from(buffers.0.saturating_sub(1)) * buffers.1
                        )),
                );
            }
            v
        };
        let below_unit = |v: u64| (v < unit).then(|| at_least_unit.clone());
        sized("busy_buffers_size", 2 * unit, &|v| {
            below_unit(v).or_else(|| {
                (v > u64::from(buffers.0.saturating_sub(1)) * buffers.1).then(|| {
                    format!("must be less than the size of all \"{m}_buffers\" minus one buffer")
                })
            })
        });
        let temp_file_write_size = sized("temp_file_write_size", 2 * unit, &below_unit);
        let max_temp_file_size = sized("max_temp_file_size", 1024 << 20, &|v| {
            (v != 0 && v < unit).then(|| {
                format!("must be equal to zero to disable temporary files usage or {at_least_unit}")
            })
        });
        let (store, store_access) = if super::cache::CACHE_FAMILIES.contains(&m) {
            self.store_settings(chain, m)
        } else {
            (None, 0o600)
        };
        ProxySettings {
            set_headers,
            http_version: match one("http_version").map(|d| arg(d, 0)) {
                Some("1.1") => ProxyHttpVersion::Http11,
                _ => ProxyHttpVersion::Http10,
            },
            connect_timeout_ms: time("connect_timeout", 60_000),
            read_timeout_ms: time("read_timeout", 60_000),
            send_timeout_ms: time("send_timeout", 60_000),
            next_upstream,
            next_upstream_tries: one("next_upstream_tries")
                .and_then(|d| parse_number(arg(d, 0)))
                .unwrap_or(0),
            next_upstream_timeout_ms: time("next_upstream_timeout", 0),
            // gRPC: the answer streams (nginx's grpc module never buffers it).
            buffering: !grpc && one("buffering").is_none_or(|d| arg(d, 0) == "on"),
            buffer_size,
            buffers,
            max_temp_file_size,
            temp_file_write_size,
            temp_path: super::temp_path(one("temp_path").as_ref(), &n("temp")),
            hide_headers: list("hide_header"),
            pass_headers: list("pass_header"),
            redirect,
            cookies: if http {
                self.cookie_rewrites(chain)
            } else {
                CookieRewrites::default()
            },
            intercept_errors: one("intercept_errors").is_some_and(|d| arg(d, 0) == "on"),
            // gRPC: the body streams as it arrives (nginx's request_body_no_buffering).
            request_buffering: !grpc && one("request_buffering").is_none_or(|d| arg(d, 0) == "on"),
            method: one("method").map(|d| self.template(d, 0)),
            set_body: one("set_body").map(|d| self.template(d, 0)),
            pass_request_body: one("pass_request_body").is_none_or(|d| arg(d, 0) == "on"),
            pass_request_headers: one("pass_request_headers").is_none_or(|d| arg(d, 0) == "on"),
            socket_keepalive: one("socket_keepalive").is_some_and(|d| arg(d, 0) == "on"),
            proxy_protocol: one("protocol").is_some_and(|d| arg(d, 0) == "on"),
            // gRPC's status is in the trailers: always passed.
            pass_trailers: grpc || one("pass_trailers").is_some_and(|d| arg(d, 0) == "on"),
            limit_rate: one("limit_rate")
                .and_then(|d| parse_size(arg(d, 0)))
                .unwrap_or(0),
            bind: one("bind").and_then(|d| self.proxy_bind(d)),
            ignore_client_abort: one("ignore_client_abort").is_some_and(|d| arg(d, 0) == "on"),
            // (Every line of the nearest level that has any, as nginx's bitmask.)
            ignore_headers: nearest(chain, &n("ignore_headers"))
                .iter()
                .fold(IgnoreHeaders::default(), |h, d| self.ignore_headers(h, d)),
            force_ranges: one("force_ranges").is_some_and(|d| arg(d, 0) == "on"),
            tls: if http || m == "uwsgi" || m == "grpc" {
                self.upstream_tls(chain, m)
            } else {
                UpstreamTls::default()
            },
            cache: if super::cache::CACHE_FAMILIES.contains(&m) {
                self.cache_settings(chain, m)
            } else {
                CacheSettings::default()
            },
            store,
            store_access,
            cgi: if http || grpc {
                CgiSettings::default()
            } else {
                self.cgi_settings(chain, m)
            },
        }
    }

    /// `fastcgi_param`, `fastcgi_index`, `fastcgi_split_path_info`, `fastcgi_keep_conn`,
    /// `uwsgi_modifier1`… of module `m`. The params are inherited as one list from the nearest level that has
    /// any (nginx's array merge).
    fn cgi_settings(&mut self, chain: &[&Level<'_>], m: &str) -> CgiSettings {
        let n = |suffix: &str| format!("{m}_{suffix}");
        let mut params = Vec::new();
        for d in nearest(chain, &n("param")) {
            let if_not_empty = match d.args.get(2) {
                None => false,
                Some(a) if a.value == "if_not_empty" => true,
                Some(a) => {
                    self.err(
                        Diagnostic::error(
                            Code::BadValue,
                            a.span,
                            format!("invalid parameter \"{}\"", a.value),
                        )
                        .label("the only third argument is if_not_empty")
                        .help(format!("{} HTTPS $https if_not_empty;", d.name)),
                    );
                    false
                }
            };
            params.push(Param {
                name: arg(d, 0).to_string(),
                value: self.template(d, 1),
                if_not_empty,
            });
        }
        let one = |suffix: &str| nearest(chain, &n(suffix)).first().copied();
        let split_path_info = one("split_path_info").map(|d| {
            let span = d.arg_span(0);
            self.regex(arg(d, 0), false, span)
        });
        CgiSettings {
            params,
            index: one("index").map(|d| arg(d, 0).to_string()),
            split_path_info,
            keep_conn: one("keep_conn").is_some_and(|d| arg(d, 0) == "on"),
            modifiers: (
                one("modifier1")
                    .and_then(|d| parse_number(arg(d, 0)))
                    .unwrap_or(0),
                one("modifier2")
                    .and_then(|d| parse_number(arg(d, 0)))
                    .unwrap_or(0),
            ),
            catch_stderr: nearest(chain, &n("catch_stderr"))
                .iter()
                .map(|d| arg(d, 0).to_string())
                .collect(),
        }
    }

    /// `proxy_bind address [transparent] | off` (nginx's `ngx_http_upstream_bind_set_slot`):
    /// a literal address must read as one; with variables it is read per request.
    fn proxy_bind(&mut self, d: &Directive) -> Option<ProxyBind> {
        if d.args.len() == 1 && arg(d, 0) == "off" {
            return None;
        }
        let address = self.template(d, 0);
        if let Some(lit) = address.as_literal() {
            if ProxyBind::parse_address(lit.as_bytes()).is_none() {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.arg_span(0),
                        format!("invalid address \"{lit}\" in \"{}\" directive", d.name),
                    )
                    .label("not an IP address, or an address with a port from 1 to 65535")
                    .help("write an address such as 127.0.0.2, 10.0.0.1:8000 or [::1]:8000, a value with variables, or off"),
                );
            }
        }
        let transparent = match d.args.get(1) {
            None => false,
            Some(a) if a.value == "transparent" => true,
            Some(a) => {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!(
                            "invalid parameter \"{}\" in \"{}\" directive",
                            a.value, d.name
                        ),
                    )
                    .label("the only parameter is transparent")
                    .help("proxy_bind 192.0.2.1 transparent;"),
                );
                false
            }
        };
        Some(ProxyBind {
            address,
            transparent,
        })
    }

    /// `proxy_ignore_headers field …`: nginx's names, in any case.
    fn ignore_headers(&mut self, mut h: IgnoreHeaders, d: &Directive) -> IgnoreHeaders {
        const NAMES: [&str; 9] = [
            "X-Accel-Redirect",
            "X-Accel-Expires",
            "X-Accel-Limit-Rate",
            "X-Accel-Buffering",
            "X-Accel-Charset",
            "Expires",
            "Cache-Control",
            "Set-Cookie",
            "Vary",
        ];
        for a in &d.args {
            if !h.add(&a.value) {
                let help = match did_you_mean(&a.value, NAMES.iter().copied()) {
                    Some(n) => format!("did you mean \"{n}\"?"),
                    None => format!("expected some of: {}", NAMES.join(", ")),
                };
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        a.span,
                        format!("invalid value \"{}\" in \"{}\" directive", a.value, d.name),
                    )
                    .label("not a header whose effect can be ignored")
                    .help(help),
                );
            }
        }
        h
    }

    /// Groups servers by listen address and builds each address's server-name table.
    pub(crate) fn listeners(&mut self, listens: Vec<(String, ServerId, ListenOpts, Span)>) {
        // Listen lines by address (sorted), each group in config order.
        let mut by_addr: std::collections::BTreeMap<
            &str,
            Vec<&(String, ServerId, ListenOpts, Span)>,
        > = std::collections::BTreeMap::new();
        for l in &listens {
            by_addr.entry(l.0.as_str()).or_default().push(l);
        }
        for (addr, here) in by_addr {
            let addr = addr.to_string();
            let mut servers: Vec<ServerId> = Vec::new();
            let mut seen: rustc_hash::FxHashSet<ServerId> = Default::default();
            let mut default: Option<(ServerId, Span)> = None;
            let mut reuseport = false;
            let mut backlog = None;
            let mut sock = SocketOptions::default();
            let mut deferred = false;
            let mut ssl = false;
            let mut proxy_protocol = false;
            let mut http2 = false;
            let mut opts_span: Option<Span> = None;
            for (_, sid, o, span) in here.iter().copied() {
                if !seen.insert(*sid) {
                    let first = here
                        .iter()
                        .find(|(_, s2, _, _)| s2 == sid)
                        .map_or(*span, |(_, _, _, sp)| *sp);
                    self.err(
                        Diagnostic::error(
                            Code::Duplicate,
                            *span,
                            format!("a duplicate listen {addr}"),
                        )
                        .label("this server already listens here")
                        .also(first, "first listen on this address")
                        .help("remove one of the listen lines"),
                    );
                    continue;
                }
                servers.push(*sid);
                ssl |= o.ssl;
                proxy_protocol |= o.proxy_protocol;
                http2 |= o.http2;
                if o.default_server {
                    if let Some((_, first)) = default {
                        self.err(
                            Diagnostic::error(
                                Code::Conflict,
                                o.default_span.unwrap_or(*span),
                                format!("a duplicate default server for {addr}"),
                            )
                            .label("second default_server")
                            .also(first, "first default_server")
                            .help("only one server per address may be default_server"),
                        );
                    } else {
                        default = Some((*sid, o.default_span.unwrap_or(*span)));
                    }
                }
                if o.set {
                    if let Some(first) = opts_span {
                        self.err(
                            Diagnostic::error(
                                Code::Conflict,
                                *span,
                                format!("duplicate listen options for {addr}"),
                            )
                            .label("options given again")
                            .also(first, "first given here")
                            .help("give socket options (bind, reuseport, backlog=, rcvbuf=, sndbuf=, deferred, ipv6only=, so_keepalive=) on one listen line of this address"),
                        );
                    }
                    opts_span = Some(*span);
                    reuseport |= o.reuseport;
                    backlog = o.backlog.or(backlog);
                    sock = o.sock;
                    deferred = o.deferred;
                }
            }
            let default = default.map_or(servers[0], |(s, _)| s);
            if deferred {
                // nginx: TCP_DEFER_ACCEPT for the default server's client_header_timeout.
                let ms = self
                    .ir
                    .servers
                    .get(default.0 as usize)
                    .and_then(|s| self.ir.server_settings(s))
                    .map_or(60_000, |s| s.client_header_timeout_ms);
                sock.deferred_secs = u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX).max(1);
            }
            let names = self.name_table(&addr, &servers, default);
            self.ir.listeners.push(Listener {
                addr,
                reuseport,
                backlog: backlog.unwrap_or(511),
                names,
                sock,
                ssl,
                proxy_protocol,
                http2,
            });
        }
    }

    /// The server-name table of one address, built as nginx's `ngx_hash_add_key` builds its
    /// hashes, so that the same names conflict: exact names; `*.x` and `.x` share the
    /// wildcard key `x`, and `.x` also claims the exact name `x` (before its wildcard part:
    /// a `.x` refused for its wildcard part still holds `x`); `www.x.*` has its own keys.
    /// The first claim wins, later ones get W0002 and are left out. Regex names never
    /// conflict (an identical later regex can never match first, so it is warned about).
    fn name_table(&mut self, addr: &str, servers: &[ServerId], default: ServerId) -> ServerNames {
        let mut t = ServerNames {
            exact: vec![],
            leading: vec![],
            trailing: vec![],
            regex: vec![],
            default,
        };
        // nginx's conflict keys: exact (`keys_hash`), head wildcard (`dns_wc_head_hash`),
        // tail wildcard (`dns_wc_tail_hash`), each with the span of the name that took it.
        let mut exact: HashMap<String, (Span, String)> = HashMap::default();
        let mut head: HashMap<String, (Span, String)> = HashMap::default();
        let mut tail: HashMap<String, (Span, String)> = HashMap::default();
        let mut regexes: HashMap<String, (Span, String)> = HashMap::default();
        for &sid in servers {
            let (names, spans) = self
                .server_names
                .get(sid.0 as usize)
                .cloned()
                .unwrap_or_default();
            for (name, span) in names.iter().zip(spans) {
                let taken =
                    |keys: &HashMap<String, (Span, String)>, key: &str| keys.get(key).cloned();
                let conflict = if let Some(re) = name.strip_prefix('~') {
                    if re.is_empty() {
                        self.err(
                            Diagnostic::error(
                                Code::BadValue,
                                span,
                                format!("empty regex in server name \"{name}\""),
                            )
                            .label("nothing after \"~\"")
                            .help("write a regex after ~, e.g. ~^www\\d+\\.example\\.com$"),
                        );
                        continue;
                    }
                    match taken(&regexes, name) {
                        Some(first) => Some(first),
                        None => {
                            regexes.insert(name.clone(), (span, name.clone()));
                            // nginx: caseless when the pattern has an uppercase letter (the
                            // Host is lowercased before matching).
                            let caseless = re.bytes().any(|b| b.is_ascii_uppercase());
                            let id = self.regex(re, caseless, span);
                            t.regex.push((id, sid));
                            None
                        }
                    }
                } else if let Some(suffix) = name.strip_prefix('*') {
                    if !suffix.starts_with('.') || suffix.len() < 2 || suffix.contains('*') {
                        self.bad_wildcard(name, span);
                        continue;
                    }
                    match taken(&head, &suffix[1..]) {
                        Some(first) => Some(first),
                        None => {
                            head.insert(suffix[1..].to_string(), (span, name.clone()));
                            t.leading.push(LeadingWildcard {
                                suffix: suffix.to_string(),
                                also_bare: false,
                                server: sid,
                            });
                            None
                        }
                    }
                } else if let Some(domain) = name.strip_prefix('.') {
                    if domain.is_empty() || name.contains('*') {
                        self.bad_wildcard(name, span);
                        continue;
                    }
                    match taken(&exact, domain).or_else(|| {
                        exact.insert(domain.to_string(), (span, name.clone()));
                        taken(&head, domain)
                    }) {
                        Some(first) => Some(first),
                        None => {
                            head.insert(domain.to_string(), (span, name.clone()));
                            t.leading.push(LeadingWildcard {
                                suffix: name.clone(),
                                also_bare: true,
                                server: sid,
                            });
                            None
                        }
                    }
                } else if let Some(prefix) = name.strip_suffix('*') {
                    if !prefix.ends_with('.') || prefix.len() < 2 || prefix.contains('*') {
                        self.bad_wildcard(name, span);
                        continue;
                    }
                    match taken(&tail, prefix) {
                        Some(first) => Some(first),
                        None => {
                            tail.insert(prefix.to_string(), (span, name.clone()));
                            t.trailing.push((prefix.to_string(), sid));
                            None
                        }
                    }
                } else if name.contains('*') {
                    self.bad_wildcard(name, span);
                    continue;
                } else {
                    match taken(&exact, name) {
                        Some(first) => Some(first),
                        None => {
                            exact.insert(name.clone(), (span, name.clone()));
                            t.exact.push((name.clone(), sid));
                            None
                        }
                    }
                };
                // A server without server_name has the name "": not worth a warning.
                if let Some((first, first_name)) = conflict.filter(|_| !name.is_empty()) {
                    self.err(
                        Diagnostic::warning(
                            Code::ConflictingServerName,
                            span,
                            format!("conflicting server name \"{name}\" on {addr}, ignored"),
                        )
                        .label("this server will never be chosen by this name")
                        .also(first, "first claimed here")
                        .help(conflict_help(name, &first_name)),
                    );
                }
            }
        }
        t.exact.sort();
        t
    }

    fn bad_wildcard(&mut self, name: &str, span: Span) {
        self.err(
            Diagnostic::error(
                Code::BadValue,
                span,
                format!("invalid server name or wildcard \"{name}\""),
            )
            .label("a wildcard may only be a leading \"*.\" or a trailing \".*\"")
            .help("use *.example.com, www.example.*, .example.com, or a ~regex"),
        );
    }
}

/// The help of a conflicting-name warning: `name` conflicts with `first`, claimed earlier.
fn conflict_help(name: &str, first: &str) -> String {
    let fix = "remove the name from one of the servers";
    if let Some(domain) = first.strip_prefix('.').filter(|_| first != name) {
        format!("\"{first}\" already claims both \"{domain}\" and \"*.{domain}\" (nginx files it under both); {fix}")
    } else if let Some(domain) = name.strip_prefix('.').filter(|_| first != name) {
        format!("\"{name}\" stands for both \"{domain}\" and \"*.{domain}\" (nginx files it under both), and \"{first}\" has one of them; {fix}")
    } else {
        fix.to_string()
    }
}

/// The path of a `unix:PATH` address (the prefix in any case, as nginx's `ngx_parse_url`).
pub(crate) fn strip_unix(s: &str) -> Option<&str> {
    s.get(..5)
        .filter(|p| p.eq_ignore_ascii_case("unix:"))
        .and_then(|_| s.get(5..))
}

/// nginx's checks of a unix-domain socket path (`ngx_parse_unix_domain_url`): not empty, and
/// short enough for `sun_path` with its terminating NUL.
fn check_unix_path(path: &str) -> Result<(), &'static str> {
    /// `sizeof(sockaddr_un.sun_path)` on Linux.
    const SUN_PATH: usize = 108;
    if path.is_empty() {
        return Err("no path in the unix domain socket");
    }
    if path.len() + 1 > SUN_PATH {
        return Err("too long path in the unix domain socket");
    }
    if path.contains('\0') {
        return Err("a NUL byte in the unix domain socket path");
    }
    Ok(())
}

fn has_port(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix('[') {
        return rest
            .split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':'));
    }
    s.contains(':')
}

fn check_host_port(s: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (ip, p) = rest.split_once(']').ok_or("missing \"]\"")?;
        ip.parse::<Ipv6Addr>()
            .map_err(|_| format!("invalid IPv6 address \"{ip}\""))?;
        ("x", p.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(p) = port {
        parse_port(p)?;
    }
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    {
        return Err(format!("invalid host \"{host}\""));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_addr("80").unwrap(), "0.0.0.0:80");
        assert_eq!(parse_listen_addr("*:8080").unwrap(), "0.0.0.0:8080");
        assert_eq!(parse_listen_addr("127.0.0.1").unwrap(), "127.0.0.1:80");
        assert_eq!(parse_listen_addr("localhost:81").unwrap(), "127.0.0.1:81");
        assert_eq!(parse_listen_addr("[::]:80").unwrap(), "[::]:80");
        assert_eq!(parse_listen_addr("[::1]").unwrap(), "[::1]:80");
        assert!(parse_listen_addr("0").is_err());
        assert_eq!(
            parse_listen_addrs("127.0.0.1:8182-8184").unwrap(),
            ["127.0.0.1:8182", "127.0.0.1:8183", "127.0.0.1:8184"]
        );
        assert_eq!(
            parse_listen_addrs("[::1]:81-82").unwrap(),
            ["[::1]:81", "[::1]:82"]
        );
        assert_eq!(
            parse_listen_addrs("81-82").unwrap(),
            ["0.0.0.0:81", "0.0.0.0:82"]
        );
        assert!(parse_listen_addrs("127.0.0.1:82-81").is_err());
        assert!(parse_listen_addrs("127.0.0.1:0-81").is_err());
        assert_eq!(
            parse_so_keepalive("on"),
            Some(SoKeepalive::On {
                idle: 0,
                intvl: 0,
                cnt: 0
            })
        );
        assert_eq!(parse_so_keepalive("off"), Some(SoKeepalive::Off));
        assert_eq!(
            parse_so_keepalive("30m::10"),
            Some(SoKeepalive::On {
                idle: 1800,
                intvl: 0,
                cnt: 10
            })
        );
        assert_eq!(
            parse_so_keepalive(":5s"),
            Some(SoKeepalive::On {
                idle: 0,
                intvl: 5,
                cnt: 0
            })
        );
        assert_eq!(parse_so_keepalive("::"), None);
        assert_eq!(parse_so_keepalive("x"), None);
        assert!(parse_listen_addr("70000").is_err());
        assert_eq!(
            parse_listen_addr("Example.com:81").unwrap(),
            "example.com:81"
        );
        assert_eq!(parse_listen_addr("example.com").unwrap(), "example.com:80");
        assert!(parse_listen_addr("ex_ample.com:80").is_err());
        assert!(parse_listen_addr("1.2.3:80").is_err());
        assert!(parse_listen_addr("[::1:80").is_err());
    }
}
