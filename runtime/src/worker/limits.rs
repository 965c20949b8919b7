//! nginx's preaccess phase: `limit_req` (a leaky bucket per key: pass, delay or refuse)
//! and `limit_conn` (requests in progress per key), over the shared zones of
//! [`crate::limits`]. Runs once per request, when the rewrite phase has found the location,
//! before `allow`/`deny` and the content handler; the state it leaves (statuses, the counts
//! a request holds) belongs to the request's context.

use super::conn::Conn;
use super::context::RequestCtx;
use super::Worker;
use crate::elog;
use crate::limits::{delay_ms, hash, ConnAcquire, ReqLookup, Zone};
use crate::metrics::LimitResult;
use proton_ir::{LimitZoneKind, LocationId, LogLevel};
use std::sync::Arc;

/// `$limit_req_status` values (0: not checked).
pub(crate) const REQ_PASSED: u8 = 1;
pub(crate) const REQ_DELAYED: u8 = 2;
pub(crate) const REQ_REJECTED: u8 = 3;
pub(crate) const REQ_DELAYED_DRY_RUN: u8 = 4;
pub(crate) const REQ_REJECTED_DRY_RUN: u8 = 5;
/// `$limit_conn_status` values (0: not checked).
pub(crate) const CONN_PASSED: u8 = 1;
pub(crate) const CONN_REJECTED: u8 = 2;
pub(crate) const CONN_REJECTED_DRY_RUN: u8 = 3;

/// The text of a `$limit_req_status` value.
pub(crate) fn req_status_name(s: u8) -> &'static str {
    match s {
        REQ_PASSED => "PASSED",
        REQ_DELAYED => "DELAYED",
        REQ_REJECTED => "REJECTED",
        REQ_DELAYED_DRY_RUN => "DELAYED_DRY_RUN",
        REQ_REJECTED_DRY_RUN => "REJECTED_DRY_RUN",
        _ => "",
    }
}

/// The text of a `$limit_conn_status` value.
pub(crate) fn conn_status_name(s: u8) -> &'static str {
    match s {
        CONN_PASSED => "PASSED",
        CONN_REJECTED => "REJECTED",
        CONN_REJECTED_DRY_RUN => "REJECTED_DRY_RUN",
        _ => "",
    }
}

/// The error_page state of a request (`RequestCtx::error_status`).
pub(crate) type ErrorStatus = Option<(u16, Option<u16>)>;

/// A request's limit state (nginx keeps it in the main request).
#[derive(Default)]
pub(crate) struct LimitState {
    /// `$limit_req_status` (0: limit_req did not look at the request).
    pub(crate) req_status: u8,
    /// `$limit_conn_status` (0: limit_conn did not look at the request).
    pub(crate) conn_status: u8,
    /// The counts of `limit_conn` this request holds: (zone, node, key hash); given back
    /// when the request ends, whatever the way (its context is reset or dropped).
    held: Vec<(Arc<Zone>, u32, u64)>,
    /// `limit_req` nodes held while the limits are looked up: (zone index, node).
    pending: Vec<(u32, u32)>,
    /// The key being evaluated (reused).
    key: Vec<u8>,
    /// A delayed request: routing resumes at this location's access phase (with the
    /// request's error_page state then).
    pub(crate) resume: Option<(LocationId, ErrorStatus)>,
    /// The caller can wait for a delay (the first routing of a request); elsewhere a delay
    /// is not waited for.
    pub(crate) can_delay: bool,
}

impl LimitState {
    /// Gives back every count held and forgets the request.
    pub(crate) fn reset(&mut self) {
        self.release();
        self.req_status = 0;
        self.conn_status = 0;
        self.pending.clear();
        self.resume = None;
        self.can_delay = false;
        if self.key.capacity() > 64 * 1024 {
            self.key = Vec::new();
        }
    }

    fn release(&mut self) {
        give_back(&mut self.held);
    }
}

impl Drop for LimitState {
    fn drop(&mut self) {
        self.release();
    }
}

impl LimitState {
    /// The `limit_conn` counts the request holds, taken out to be given back later: an
    /// HTTP/2 stream whose handler is done while its response still waits for the window
    /// keeps them until the last byte is sent (or the stream is reset), as nginx does.
    pub(crate) fn take_held(&mut self) -> LimitHold {
        LimitHold(std::mem::take(&mut self.held))
    }
}

/// `limit_conn` counts held apart from their request, given back when dropped.
#[derive(Default)]
pub(crate) struct LimitHold(Vec<(Arc<Zone>, u32, u64)>);

impl Drop for LimitHold {
    fn drop(&mut self) {
        give_back(&mut self.0);
    }
}

/// Gives `held`'s counts back to their zones (the list keeps its room).
fn give_back(held: &mut Vec<(Arc<Zone>, u32, u64)>) {
    for (zone, node, h) in held.drain(..) {
        zone.conn_release(node, h);
    }
}

/// What the preaccess phase decided.
pub(crate) enum Preaccess {
    /// Go on to the access phase.
    Go,
    /// Answer with this status (error_page applies).
    Status(u16),
    /// Wait this many milliseconds, then go on.
    Delay(u64),
}

/// The level delays are logged at: one lower than refusals, `info` staying `info`.
fn delay_level(l: LogLevel) -> LogLevel {
    match l {
        LogLevel::Info | LogLevel::Notice => LogLevel::Info,
        LogLevel::Warn => LogLevel::Notice,
        LogLevel::Error => LogLevel::Warn,
        LogLevel::Crit => LogLevel::Error,
        LogLevel::Alert => LogLevel::Crit,
        LogLevel::Emerg => LogLevel::Alert,
        LogLevel::Debug => LogLevel::Debug,
    }
}

impl Worker<'_> {
    /// The preaccess phase of `req` in location `loc`: limit_req, then limit_conn (as
    /// nginx orders the two modules; after a delay, limit_req has its status and only
    /// limit_conn runs, so a delayed request is not counted while it waits).
    pub(crate) fn preaccess(
        &mut self,
        conn: &Conn,
        req: &mut RequestCtx,
        loc: LocationId,
    ) -> Preaccess {
        if req.subrequest {
            return Preaccess::Go;
        }
        if req.limits.req_status == 0 {
            match self.limit_req(conn, req, loc) {
                Preaccess::Go => {}
                other => return other,
            }
        }
        if req.limits.conn_status == 0 {
            return self.limit_conn(conn, req, loc);
        }
        Preaccess::Go
    }

    /// Counts an outcome of zone `zone` in `proton_metrics`: `result` as given when `dry`,
    /// else its real counterpart (`RejectedDryRun` → `Rejected`, `DelayedDryRun` →
    /// `Delayed`).
    fn count_limit(&self, zone: u32, dry: bool, result: LimitResult) {
        if let Some(m) = &self.metrics {
            let r = match (dry, result) {
                (false, LimitResult::RejectedDryRun) => LimitResult::Rejected,
                (false, LimitResult::DelayedDryRun) => LimitResult::Delayed,
                (_, r) => r,
            };
            m.limit(zone, r);
        }
    }

    /// Evaluates zone `z`'s key for `req` into `req.limits.key`.
    /// Evaluates zone `z`'s key into `req.limits.key`; false when the request is not
    /// limited by it: an empty key, or one longer than `max` bytes (logged, as nginx).
    fn limit_key(&self, conn: &Conn, req: &mut RequestCtx, z: usize, max: usize) -> bool {
        let Some(zone) = self.loaded.ir.limit_zones.get(z) else {
            return false;
        };
        let mut key = std::mem::take(&mut req.limits.key);
        key.clear();
        self.ctx(conn, req, 0).expand(&zone.key, &mut key);
        let usable = !key.is_empty() && key.len() <= max;
        if key.len() > max {
            elog!(
                self.elog,
                Error,
                "the value of the \"{}\" key is more than {max} bytes: \"{}\"",
                zone.key.text(&self.loaded.ir.user_vars),
                String::from_utf8_lossy(&key)
            );
        }
        req.limits.key = key;
        usable
    }

    fn limit_req(&mut self, conn: &Conn, req: &mut RequestCtx, loc: LocationId) -> Preaccess {
        let loaded = self.loaded;
        let conf = &self.settings_for(loc).limit_req;
        if conf.limits.is_empty() {
            return Preaccess::Go;
        }
        let now = crate::limits::now_ms();
        let last = conf.limits.len() - 1;
        req.limits.pending.clear();
        // nginx's rc: DECLINED (no limit looked), AGAIN, OK, BUSY, ERROR.
        let mut outcome: Option<ReqLookup> = None;
        let mut at = 0;
        for (n, limit) in conf.limits.iter().enumerate() {
            let z = limit.zone as usize;
            let (Some(zone), Some(ir_zone)) =
                (loaded.limit_zones.get(z), loaded.ir.limit_zones.get(z))
            else {
                continue;
            };
            let LimitZoneKind::Req { rate, .. } = ir_zone.kind else {
                continue;
            };
            if !self.limit_key(conn, req, z, 65535) {
                continue;
            }
            let key = &req.limits.key;
            let r = zone.req_lookup(hash(key), key, now, rate, limit.burst, n == last);
            at = n;
            outcome = Some(r);
            match r {
                ReqLookup::Again { node, .. } => req.limits.pending.push((limit.zone, node)),
                _ => break,
            }
        }
        let Some(outcome) = outcome else {
            return Preaccess::Go;
        };
        let dry = conf.dry_run;
        let dry_text = if dry { ", dry run" } else { "" };
        let excess = match outcome {
            ReqLookup::Busy(_) | ReqLookup::NoMemory => {
                let name = zone_name(loaded, conf.limits.get(at).map_or(u32::MAX, |l| l.zone));
                if let ReqLookup::Busy(e) = outcome {
                    self.request_log(
                        conn,
                        req,
                        conf.log_level,
                        format_args!(
                            "limiting requests{dry_text}, excess: {}.{:03} by zone \"{name}\"",
                            e / 1000,
                            e % 1000
                        ),
                    );
                } else {
                    elog!(
                        self.elog,
                        Alert,
                        "could not allocate node in limit_req zone \"{name}\""
                    );
                }
                for (z, node) in req.limits.pending.drain(..) {
                    if let Some(zone) = loaded.limit_zones.get(z as usize) {
                        zone.req_release(node);
                    }
                }
                if let Some(l) = conf.limits.get(at) {
                    self.count_limit(l.zone, dry, LimitResult::RejectedDryRun);
                }
                if dry {
                    req.limits.req_status = REQ_REJECTED_DRY_RUN;
                    return Preaccess::Go;
                }
                req.limits.req_status = REQ_REJECTED;
                return Preaccess::Status(conf.status);
            }
            ReqLookup::Ok(e) => e,
            ReqLookup::Again { .. } => 0,
        };
        // nginx's account: the last limit looked at decides first, then each held one,
        // the longest delay winning.
        let rate_of = |z: usize| match loaded.ir.limit_zones.get(z).map(|z| z.kind) {
            Some(LimitZoneKind::Req { rate, .. }) => rate,
            _ => 1000,
        };
        let Some(mut limit) = conf.limits.get(at) else {
            return Preaccess::Go;
        };
        let mut excess = excess;
        let mut max_delay = delay_ms(excess, limit.delay, rate_of(limit.zone as usize));
        // (The held nodes are those before `at`; nginx walks them from the last.)
        let pending = std::mem::take(&mut req.limits.pending);
        for &(z, node) in pending.iter().rev() {
            let Some(zone) = loaded.limit_zones.get(z as usize) else {
                continue;
            };
            let rate = rate_of(z as usize);
            let e = zone.req_account(node, now, rate);
            let Some(l) = conf.limits.iter().find(|l| l.zone == z) else {
                continue;
            };
            let d = delay_ms(e, l.delay, rate);
            if d > max_delay {
                max_delay = d;
                excess = e;
                limit = l;
            }
        }
        req.limits.pending = pending;
        req.limits.pending.clear();
        if max_delay == 0 {
            self.count_limit(limit.zone, false, LimitResult::Passed);
            req.limits.req_status = REQ_PASSED;
            return Preaccess::Go;
        }
        let name = zone_name(loaded, limit.zone);
        self.request_log(
            conn,
            req,
            delay_level(conf.log_level),
            format_args!(
                "delaying request{dry_text}, excess: {}.{:03}, by zone \"{name}\"",
                excess / 1000,
                excess % 1000
            ),
        );
        self.count_limit(limit.zone, dry, LimitResult::DelayedDryRun);
        if dry {
            req.limits.req_status = REQ_DELAYED_DRY_RUN;
            return Preaccess::Go;
        }
        req.limits.req_status = REQ_DELAYED;
        if !req.limits.can_delay {
            return Preaccess::Go;
        }
        Preaccess::Delay(max_delay)
    }

    fn limit_conn(&mut self, conn: &Conn, req: &mut RequestCtx, loc: LocationId) -> Preaccess {
        let loaded = self.loaded;
        let conf = &self.settings_for(loc).limit_conn;
        for limit in &conf.limits {
            let z = limit.zone as usize;
            let (Some(zone), Some(ir_zone)) =
                (loaded.limit_zones.get(z), loaded.ir.limit_zones.get(z))
            else {
                continue;
            };
            if !self.limit_key(conn, req, z, 255) {
                continue;
            }
            let key = &req.limits.key;
            req.limits.conn_status = CONN_PASSED;
            let h = hash(key);
            let refused = match zone.conn_acquire(h, key, limit.conn) {
                ConnAcquire::Held(node) => {
                    self.count_limit(limit.zone, false, LimitResult::Passed);
                    req.limits.held.push((zone.clone(), node, h));
                    continue;
                }
                ConnAcquire::NoMemory => {
                    elog!(
                        self.elog,
                        Alert,
                        "could not allocate node in limit_conn zone \"{}\"",
                        ir_zone.name
                    );
                    true
                }
                ConnAcquire::Busy => false,
            };
            if !refused {
                let dry_text = if conf.dry_run { ", dry run," } else { "" };
                self.request_log(
                    conn,
                    req,
                    conf.log_level,
                    format_args!(
                        "limiting connections{dry_text} by zone \"{}\"",
                        ir_zone.name
                    ),
                );
            }
            req.limits.release();
            self.count_limit(limit.zone, conf.dry_run, LimitResult::RejectedDryRun);
            if conf.dry_run {
                req.limits.conn_status = CONN_REJECTED_DRY_RUN;
                return Preaccess::Go;
            }
            req.limits.conn_status = CONN_REJECTED;
            return Preaccess::Status(conf.status);
        }
        Preaccess::Go
    }
}

/// Zone `z`'s name (empty when out of range, which the IR's verification excludes).
fn zone_name(loaded: &crate::config::Loaded, z: u32) -> &str {
    loaded
        .ir
        .limit_zones
        .get(z as usize)
        .map_or("", |z| z.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_logged_one_level_lower() {
        assert_eq!(delay_level(LogLevel::Info), LogLevel::Info);
        assert_eq!(delay_level(LogLevel::Notice), LogLevel::Info);
        assert_eq!(delay_level(LogLevel::Warn), LogLevel::Notice);
        assert_eq!(delay_level(LogLevel::Error), LogLevel::Warn);
    }

    #[test]
    fn status_names() {
        assert_eq!(req_status_name(REQ_DELAYED_DRY_RUN), "DELAYED_DRY_RUN");
        assert_eq!(req_status_name(0), "");
        assert_eq!(conn_status_name(CONN_REJECTED_DRY_RUN), "REJECTED_DRY_RUN");
    }
}
