//! `limit_req_zone`, `limit_conn_zone` (http level: the zones) and `limit_req`, `limit_conn`
//! with their companions (inherited settings), checked with nginx's messages.

use super::{all, arg, nearest, Level, Lower};
use crate::ast::Directive;
use crate::diagnostics::{Code, Diagnostic};
use crate::directives::{parse_number, parse_size};
use proton_ir::*;

/// nginx's smallest zone: 8 pages of 4 KiB.
const MIN_ZONE: u64 = 8 * 4096;

impl Lower<'_> {
    /// The zones of the http level, in order: each name once, with nginx's checks of its
    /// arguments.
    pub(super) fn limit_zones(&mut self, http: &[Directive]) {
        let zones = all(http, "limit_req_zone").chain(all(http, "limit_conn_zone"));
        let mut zones: Vec<&Directive> = zones.collect();
        // Config order, whichever the kind (indices are stable for the IR either way).
        zones.sort_by_key(|d| (d.name_span.file, d.name_span.start));
        for d in zones {
            if let Some(z) = self.limit_zone(d) {
                self.limit_zone_spans.push(d.name_span);
                self.ir.limit_zones.push(z);
            }
        }
    }

    fn limit_zone(&mut self, d: &Directive) -> Option<LimitZone> {
        let req = d.name == "limit_req_zone";
        let key = self.template(d, 0);
        let mut zone: Option<(String, u64)> = None;
        let mut rate: Option<u64> = None;
        let mut sync = false;
        let help = if req {
            "limit_req_zone $binary_remote_addr zone=one:10m rate=1r/s;"
        } else {
            "limit_conn_zone $binary_remote_addr zone=addr:10m;"
        };
        for i in 1..d.args.len() {
            let v = arg(d, i);
            if let Some(z) = v.strip_prefix("zone=") {
                let Some((name, size)) = z.split_once(':') else {
                    self.limit_err(
                        d,
                        i,
                        format!("invalid zone size \"{v}\""),
                        "expected zone=NAME:SIZE",
                        help,
                    );
                    return None;
                };
                let Some(size) = parse_size(size) else {
                    self.limit_err(
                        d,
                        i,
                        format!("invalid zone size \"{v}\""),
                        "not a size",
                        help,
                    );
                    return None;
                };
                if size < MIN_ZONE {
                    self.limit_err(
                        d,
                        i,
                        format!("zone \"{v}\" is too small"),
                        "at least 32k (8 pages)",
                        help,
                    );
                    return None;
                }
                zone = Some((name.to_string(), size));
                continue;
            }
            if req {
                if let Some(r) = v.strip_prefix("rate=") {
                    let (num, scale) = if let Some(n) = r.strip_suffix("r/s") {
                        (n, 1)
                    } else if let Some(n) = r.strip_suffix("r/m") {
                        (n, 60)
                    } else {
                        (r, 1)
                    };
                    match parse_number::<u64>(num).filter(|&n| n > 0 && n <= u64::MAX / 1000) {
                        Some(n) if n * 1000 / scale > 0 => rate = Some(n * 1000 / scale),
                        _ => {
                            self.limit_err(d, i, format!("invalid rate \"{v}\""), "expected a positive number of requests per second (r/s) or minute (r/m)", help);
                            return None;
                        }
                    }
                    continue;
                }
                if v == "sync" {
                    sync = true;
                    continue;
                }
            }
            self.limit_err(
                d,
                i,
                format!("invalid parameter \"{v}\""),
                "not a parameter of this directive",
                help,
            );
            return None;
        }
        let Some((name, size)) = zone else {
            self.err(
                Diagnostic::error(
                    Code::BadValue,
                    d.name_span,
                    format!("\"{}\" must have \"zone\" parameter", d.name),
                )
                .label("no zone=NAME:SIZE")
                .help(help),
            );
            return None;
        };
        if let Some(i) = self.ir.limit_zones.iter().position(|z| z.name == name) {
            let prev = &self.ir.limit_zones[i];
            let first = self.limit_zone_spans[i];
            let same_kind = matches!(prev.kind, LimitZoneKind::Req { .. }) == req;
            let msg = if !same_kind {
                format!("the shared memory zone \"{name}\" is already declared for a different use")
            } else if prev.size != size {
                format!("the size {size} of shared memory zone \"{name}\" conflicts with already declared size {}", prev.size)
            } else {
                format!(
                    "{} \"{name}\" is already bound to key \"{}\"",
                    d.name,
                    arg(d, 0)
                )
            };
            self.err(
                Diagnostic::error(Code::Duplicate, d.name_span, msg)
                    .label("declared again here")
                    .also(first, "first declared here")
                    .help("give each zone its own name"),
            );
            return None;
        }
        let kind = match rate {
            Some(rate) => LimitZoneKind::Req { rate, sync },
            None if req => LimitZoneKind::Req { rate: 1000, sync },
            None => LimitZoneKind::Conn,
        };
        Some(LimitZone {
            name,
            size,
            key,
            kind,
        })
    }

    fn limit_err(&mut self, d: &Directive, i: usize, msg: String, label: &str, help: &str) {
        self.err(
            Diagnostic::error(Code::BadValue, d.arg_span(i), msg)
                .label(label)
                .help(help),
        );
    }

    /// The zone `name` of the wanted kind, or nginx's complaint about it.
    fn limit_zone_ref(&mut self, d: &Directive, i: usize, name: &str, req: bool) -> Option<u32> {
        let found = self.ir.limit_zones.iter().position(|z| z.name == name);
        match found {
            Some(z) if matches!(self.ir.limit_zones[z].kind, LimitZoneKind::Req { .. }) == req => {
                Some(z as u32)
            }
            Some(z) => {
                let first = self.limit_zone_spans[z];
                self.err(
                    Diagnostic::error(
                        Code::Conflict,
                        d.arg_span(i),
                        format!("the shared memory zone \"{name}\" is already declared for a different use"),
                    )
                    .label(if req { "not a limit_req_zone" } else { "not a limit_conn_zone" })
                    .also(first, "declared here")
                    .help(if req { "name a zone of a limit_req_zone line" } else { "name a zone of a limit_conn_zone line" }),
                );
                None
            }
            None => {
                let zone_directive = if req {
                    "limit_req_zone"
                } else {
                    "limit_conn_zone"
                };
                self.err(
                    Diagnostic::error(
                        Code::UnknownName,
                        d.arg_span(i),
                        format!("zero size shared memory zone \"{name}\""),
                    )
                    .label(format!("no {zone_directive} defines this zone"))
                    .help(if req {
                        format!("define it at the http level: limit_req_zone $binary_remote_addr zone={name}:10m rate=1r/s;")
                    } else {
                        format!("define it at the http level: limit_conn_zone $binary_remote_addr zone={name}:10m;")
                    }),
                );
                None
            }
        }
    }

    fn limit_status(&mut self, chain: &[&Level<'_>], name: &str) -> u16 {
        let Some(d) = nearest(chain, name).first().copied() else {
            return 503;
        };
        match parse_number::<u16>(arg(d, 0)).filter(|c| (400..=599).contains(c)) {
            Some(c) => c,
            None => {
                let v = arg(d, 0);
                let msg = if parse_number::<u64>(v).is_some() {
                    "value must be between 400 and 599".to_string()
                } else {
                    format!("invalid value \"{v}\" in \"{name}\" directive")
                };
                self.err(
                    Diagnostic::error(Code::BadValue, d.arg_span(0), msg)
                        .label("a status from 400 to 599")
                        .help(format!("{name} 429;")),
                );
                503
            }
        }
    }

    fn limit_level(chain: &[&Level<'_>], name: &str) -> LogLevel {
        nearest(chain, name)
            .first()
            .and_then(|d| LogLevel::from_name(arg(d, 0)))
            .unwrap_or(LogLevel::Error)
    }

    fn limit_flag(chain: &[&Level<'_>], name: &str) -> bool {
        nearest(chain, name)
            .first()
            .is_some_and(|d| arg(d, 0) == "on")
    }

    /// nginx's error for a second `limit_req`/`limit_conn` line of one zone at one level.
    fn limit_duplicate(&mut self, d: &Directive) {
        self.err(
            Diagnostic::error(
                Code::Duplicate,
                d.name_span,
                format!("\"{}\" directive is duplicate", d.name),
            )
            .label("this zone is already limited at this level")
            .help(format!("one {} line per zone", d.name)),
        );
    }

    /// `limit_req` lines of the nearest level with any, and the companions.
    pub(super) fn limit_req(&mut self, chain: &[&Level<'_>]) -> LimitReq {
        let mut limits: Vec<LimitReqRule> = Vec::new();
        for &d in nearest(chain, "limit_req") {
            let mut zone = None;
            let mut burst = 0u64;
            let mut delay = 0u64;
            let mut ok = true;
            let help = "limit_req zone=one burst=5 nodelay;";
            for i in 0..d.args.len() {
                let v = arg(d, i);
                if let Some(z) = v.strip_prefix("zone=") {
                    zone = Some((z, i));
                } else if let Some((what, n)) = v
                    .strip_prefix("burst=")
                    .map(|n| ("burst", n))
                    .or_else(|| v.strip_prefix("delay=").map(|n| ("delay", n)))
                {
                    // Counted in thousandths of a request, as nginx keeps them.
                    match parse_number::<u64>(n).filter(|&n| n > 0 && n <= i64::MAX as u64 / 1000) {
                        Some(n) if what == "burst" => burst = n * 1000,
                        Some(n) => delay = n * 1000,
                        None => {
                            self.limit_err(
                                d,
                                i,
                                format!("invalid {what} value \"{v}\""),
                                "a positive number of requests",
                                help,
                            );
                            ok = false;
                        }
                    }
                } else if v == "nodelay" {
                    delay = u64::MAX;
                } else {
                    self.limit_err(
                        d,
                        i,
                        format!("invalid parameter \"{v}\""),
                        "expected zone=, burst=, delay= or nodelay",
                        help,
                    );
                    ok = false;
                }
            }
            let Some((name, i)) = zone else {
                self.err(
                    Diagnostic::error(
                        Code::BadValue,
                        d.name_span,
                        "\"limit_req\" must have \"zone\" parameter",
                    )
                    .label("no zone=NAME")
                    .help(help),
                );
                continue;
            };
            let Some(z) = self.limit_zone_ref(d, i, name, true) else {
                continue;
            };
            if limits.iter().any(|l| l.zone == z) {
                self.limit_duplicate(d);
                continue;
            }
            if ok {
                limits.push(LimitReqRule {
                    zone: z,
                    burst,
                    delay,
                });
            }
        }
        LimitReq {
            limits,
            status: self.limit_status(chain, "limit_req_status"),
            log_level: Self::limit_level(chain, "limit_req_log_level"),
            dry_run: Self::limit_flag(chain, "limit_req_dry_run"),
        }
    }

    /// `limit_conn` lines of the nearest level with any, and the companions.
    pub(super) fn limit_conn(&mut self, chain: &[&Level<'_>]) -> LimitConn {
        let mut limits: Vec<LimitConnRule> = Vec::new();
        for &d in nearest(chain, "limit_conn") {
            let Some(z) = self.limit_zone_ref(d, 0, arg(d, 0), false) else {
                continue;
            };
            if limits.iter().any(|l| l.zone == z) {
                self.limit_duplicate(d);
                continue;
            }
            let v = arg(d, 1);
            let conn = match parse_number::<u64>(v).filter(|&n| n > 0) {
                Some(n) if n <= 65535 => n as u32,
                Some(_) => {
                    self.limit_err(
                        d,
                        1,
                        "connection limit must be less 65536".into(),
                        "at most 65535",
                        "limit_conn addr 10;",
                    );
                    continue;
                }
                None => {
                    self.limit_err(
                        d,
                        1,
                        format!("invalid number of connections \"{v}\""),
                        "a positive number",
                        "limit_conn addr 10;",
                    );
                    continue;
                }
            };
            limits.push(LimitConnRule { zone: z, conn });
        }
        LimitConn {
            limits,
            status: self.limit_status(chain, "limit_conn_status"),
            log_level: Self::limit_level(chain, "limit_conn_log_level"),
            dry_run: Self::limit_flag(chain, "limit_conn_dry_run"),
        }
    }
}
