//! The figures of `proton_metrics`, Prometheus' text format: a table of counters in shared
//! memory, one row per worker slot of a config generation, laid out from the config when it
//! is loaded (servers, locations, upstream groups and servers, limit zones), and the page
//! that sums the rows.
//!
//! The table is made by the master when it loads an IR in which some location has
//! `proton_metrics` (none is made otherwise, and nothing is counted), before it forks the
//! generation's workers. Worker slot `n` adds to row `n` only, with relaxed atomic adds on
//! its own cache lines; a scrape sums the rows. A reload makes a new table for the new
//! generation: figures labelled by config objects start from zero (a counter reset for
//! Prometheus), and the draining old workers count into the old table, which nobody reads.
//!
//! What this module must never do: allocate, lock or read client input while counting
//! (label values come from the config only, so the series are fixed when it is loaded).

use proton_ir::{Ir, LocationId, LocationKind, ScriptOp, ServerId};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histograms' buckets, in milliseconds (Prometheus' default
/// buckets); a last bucket, `+Inf`, takes the rest.
pub const BUCKETS_MS: [u64; 11] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];
/// Cells of one histogram: its buckets (not cumulative), `+Inf`, and the sum in ms.
const HIST: usize = BUCKETS_MS.len() + 2;
/// Cells of a server: bytes received, bytes sent, then its request-latency histogram.
const SERVER_CELLS: usize = 2 + HIST;
/// Cells of a location: requests by status class 1xx..5xx.
const CLASSES: usize = 5;
/// Cells of a peer: attempts, failures.
const PEER_CELLS: usize = 2;
/// Cells of a limit zone: one per [`LimitResult`].
const ZONE_CELLS: usize = 5;
/// Rows are padded to a multiple of this many cells (64 bytes), so that no two workers
/// write the same cache line.
const LINE: usize = 8;

/// How a request passed a `limit_req` or `limit_conn` zone (nginx's `$limit_req_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitResult {
    Passed = 0,
    Delayed = 1,
    Rejected = 2,
    DelayedDryRun = 3,
    RejectedDryRun = 4,
}

impl LimitResult {
    const ALL: [LimitResult; ZONE_CELLS] = [
        LimitResult::Passed,
        LimitResult::Delayed,
        LimitResult::Rejected,
        LimitResult::DelayedDryRun,
        LimitResult::RejectedDryRun,
    ];

    fn label(self) -> &'static str {
        match self {
            LimitResult::Passed => "passed",
            LimitResult::Delayed => "delayed",
            LimitResult::Rejected => "rejected",
            LimitResult::DelayedDryRun => "delayed_dry_run",
            LimitResult::RejectedDryRun => "rejected_dry_run",
        }
    }
}

/// Where each config object's cells are in a row, and the label values of every series.
/// Built once per loaded config.
#[derive(Debug, Default)]
pub struct Layout {
    /// Label of each server row: the first `server_name`, else the first listen address.
    servers: Vec<String>,
    /// The row of each server of the IR (servers with the same label share one).
    server_of: Vec<u32>,
    /// Each location row: its server row and its label (the match as written).
    locations: Vec<(u32, String)>,
    /// The row of each location of the IR (`if` and `limit_except` blocks: their
    /// location's).
    location_of: Vec<u32>,
    /// Label of each upstream row: the group's name.
    upstreams: Vec<String>,
    upstream_of: Vec<u32>,
    /// Each peer row: its upstream row and the `server` address as written.
    peers: Vec<(u32, String)>,
    /// The row of each peer, by upstream group then peer (as the balancers number them).
    peer_of: Vec<Vec<u32>>,
    /// Each limit zone: its name and whether it is a `limit_req_zone`.
    zones: Vec<(String, bool)>,
    off_server: usize,
    off_upstream: usize,
    off_peer: usize,
    off_zone: usize,
    /// Cells in a row (a multiple of [`LINE`]).
    row_len: usize,
}

/// Index of `key` in `list`, added when new.
fn intern<K: std::hash::Hash + Eq + Clone>(
    seen: &mut HashMap<K, u32>,
    list: &mut Vec<K>,
    key: K,
) -> u32 {
    if let Some(&i) = seen.get(&key) {
        return i;
    }
    let i = list.len() as u32;
    seen.insert(key.clone(), i);
    list.push(key);
    i
}

/// A location's label: its match as written (`/a/`, `^~ /a/`, `= /a`, `~ re`, `~* re`,
/// `@name`); empty for the server level.
fn location_label(kind: LocationKind, name: &str) -> String {
    match kind {
        LocationKind::Server => String::new(),
        LocationKind::Prefix | LocationKind::Named => name.to_string(),
        LocationKind::PrefixNoRegex => format!("^~ {name}"),
        LocationKind::Exact => format!("= {name}"),
        LocationKind::Regex => format!("~ {name}"),
        LocationKind::RegexCaseless => format!("~* {name}"),
        // (Resolved to their location by the caller; this is a fallback.)
        LocationKind::If | LocationKind::LimitExcept => name.to_string(),
    }
}

/// The location each `if` and `limit_except` block belongs to.
fn block_parents(ir: &Ir) -> Vec<Option<u32>> {
    fn walk(ops: &[ScriptOp], parent: u32, out: &mut [Option<u32>]) {
        for op in ops {
            if let ScriptOp::If { then, location, .. } = op {
                if let Some(slot) = location.and_then(|c| out.get_mut(c.0 as usize)) {
                    *slot = Some(parent);
                }
                walk(then, parent, out);
            }
        }
    }
    let mut parent = vec![None; ir.locations.len()];
    for (i, l) in ir.locations.iter().enumerate() {
        walk(&l.conf.script, i as u32, &mut parent);
        if let Some(le) = &l.conf.limit_except {
            if let Some(slot) = parent.get_mut(le.location.0 as usize) {
                *slot = Some(i as u32);
            }
        }
    }
    parent
}

impl Layout {
    /// The layout of `ir`, whose upstream groups are expanded to one server per peer (as
    /// [`crate::config::Loaded`] holds them).
    pub fn new(ir: &Ir) -> Layout {
        let mut l = Layout::default();
        // Servers: the first name, else the first address it listens on.
        let mut seen = HashMap::new();
        for (i, s) in ir.servers.iter().enumerate() {
            let sid = ServerId(i as u32);
            let name = s.primary_name();
            let label = if name.is_empty() {
                ir.listeners
                    .iter()
                    .find(|li| {
                        li.names.default == sid
                            || li.names.exact.iter().any(|(_, x)| *x == sid)
                            || li.names.leading.iter().any(|w| w.server == sid)
                            || li.names.trailing.iter().any(|(_, x)| *x == sid)
                            || li.names.regex.iter().any(|(_, x)| *x == sid)
                    })
                    .map_or_else(|| format!("#{i}"), |li| li.addr.clone())
            } else {
                name.to_string()
            };
            let row = intern(&mut seen, &mut l.servers, label);
            l.server_of.push(row);
        }
        // Locations: blocks count as the location they are written in.
        let parents = block_parents(ir);
        let mut seen = HashMap::new();
        let mut locs: Vec<(u32, String)> = Vec::new();
        for (i, loc) in ir.locations.iter().enumerate() {
            // Follow block parents to the location itself (bounded: blocks nest shallowly).
            let mut at = i;
            for _ in 0..8 {
                let here = &ir.locations[at];
                if !matches!(here.kind, LocationKind::If | LocationKind::LimitExcept) {
                    break;
                }
                match parents.get(at).copied().flatten() {
                    Some(p) if (p as usize) < ir.locations.len() => at = p as usize,
                    _ => break,
                }
            }
            let top = &ir.locations[at];
            let server = l.server_of.get(loc.server.0 as usize).copied().unwrap_or(0);
            let label = location_label(top.kind, ir.text_of(top.name));
            let row = intern(&mut seen, &mut locs, (server, label));
            l.location_of.push(row);
        }
        l.locations = locs;
        // Upstream groups and their servers (an address as written, shared by the peers a
        // name resolved to).
        let mut seen = HashMap::new();
        let mut seen_peers = HashMap::new();
        let mut peers: Vec<(u32, String)> = Vec::new();
        for u in &ir.upstreams {
            let row = intern(&mut seen, &mut l.upstreams, u.name.clone());
            l.upstream_of.push(row);
            let of = u
                .servers
                .iter()
                .map(|s| intern(&mut seen_peers, &mut peers, (row, s.address.clone())))
                .collect();
            l.peer_of.push(of);
        }
        l.peers = peers;
        l.zones = ir
            .limit_zones
            .iter()
            .map(|z| {
                (
                    z.name.clone(),
                    matches!(z.kind, proton_ir::LimitZoneKind::Req { .. }),
                )
            })
            .collect();
        l.off_server = l.locations.len() * CLASSES;
        l.off_upstream = l.off_server + l.servers.len() * SERVER_CELLS;
        l.off_peer = l.off_upstream + l.upstreams.len() * HIST;
        l.off_zone = l.off_peer + l.peers.len() * PEER_CELLS;
        let cells = l.off_zone + l.zones.len() * ZONE_CELLS;
        l.row_len = cells.div_ceil(LINE).max(1) * LINE;
        l
    }

    /// Cells in a row.
    pub fn row_len(&self) -> usize {
        self.row_len
    }
}

/// The bucket of a latency of `ms` milliseconds.
fn bucket(ms: u64) -> usize {
    BUCKETS_MS
        .iter()
        .position(|&b| ms <= b)
        .unwrap_or(BUCKETS_MS.len())
}

/// The counters of one config generation in shared memory: `rows` rows of
/// [`Layout::row_len`] atomics.
pub struct Table {
    base: NonNull<AtomicU64>,
    len: NonZeroUsize,
    rows: usize,
    layout: Layout,
}

// SAFETY: the memory is only ever accessed through atomics.
unsafe impl Send for Table {}
// SAFETY: as above.
unsafe impl Sync for Table {}

impl Table {
    /// The table of `ir` for `workers` worker slots, or `None` when no location of the
    /// config has `proton_metrics` (then nothing is counted).
    pub fn new(ir: &Ir, workers: usize) -> Result<Option<Table>, String> {
        if !ir.locations.iter().any(|l| l.conf.proton_metrics) {
            return Ok(None);
        }
        let layout = Layout::new(ir);
        let rows = workers.max(1);
        let cells = rows
            .checked_mul(layout.row_len)
            .ok_or("metrics table too large")?;
        let len = cells
            .checked_mul(std::mem::size_of::<AtomicU64>())
            .and_then(NonZeroUsize::new)
            .ok_or("metrics table too large")?;
        let ptr = crate::shared::map_shared_zeroed(len)
            .map_err(|e| format!("mmap of the metrics table ({len} bytes) failed: {e}"))?;
        Ok(Some(Table {
            base: ptr.cast::<AtomicU64>(),
            len,
            rows,
            layout,
        }))
    }

    fn cells(&self) -> &[AtomicU64] {
        // SAFETY: the mapping holds `rows * row_len` zero-initialised (valid) atomics,
        // page-aligned, and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.rows * self.layout.row_len) }
    }

    /// The row worker slot `slot` counts into.
    pub fn row(&self, slot: usize) -> Row<'_> {
        let n = self.layout.row_len;
        let at = (slot % self.rows) * n;
        Row {
            cells: self.cells().get(at..at + n).unwrap_or(&[]),
            layout: &self.layout,
        }
    }

    /// Every cell summed over the rows.
    fn sums(&self) -> Vec<u64> {
        let n = self.layout.row_len;
        let mut out = vec![0u64; n];
        for row in self.cells().chunks_exact(n) {
            for (s, c) in out.iter_mut().zip(row) {
                *s = s.wrapping_add(c.load(Ordering::Relaxed));
            }
        }
        out
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`; no reference into it outlives `self`
        // (rows borrow it). Other processes keep their own copies of the mapping.
        let _ = unsafe { nix::sys::mman::munmap(self.base.cast(), self.len.get()) };
    }
}

/// One worker's row: what it counts.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    cells: &'a [AtomicU64],
    layout: &'a Layout,
}

impl Row<'_> {
    #[inline]
    fn add(&self, i: usize, n: u64) {
        if let Some(c) = self.cells.get(i) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    #[inline]
    fn observe(&self, at: usize, ms: u64) {
        self.add(at + bucket(ms), 1);
        self.add(at + HIST - 1, ms);
    }

    /// A request answered by `loc` (its server is the location's) with `status`, in `ms`,
    /// having received `bytes_in` and sent `bytes_out`.
    #[inline]
    pub fn request(&self, loc: LocationId, status: u16, ms: u64, bytes_in: u64, bytes_out: u64) {
        let l = self.layout;
        let Some(&row) = l.location_of.get(loc.0 as usize) else {
            return;
        };
        let class = usize::from(status / 100).clamp(1, CLASSES) - 1;
        self.add(row as usize * CLASSES + class, 1);
        let Some(&(server, _)) = l.locations.get(row as usize) else {
            return;
        };
        let at = l.off_server + server as usize * SERVER_CELLS;
        self.add(at, bytes_in);
        self.add(at + 1, bytes_out);
        self.observe(at + 2, ms);
    }

    /// An attempt on peer `peer` of upstream group `upstream` ended after `ms` (`peer` out
    /// of range: an address a `proxy_pass` with variables found per request, not counted).
    #[inline]
    pub fn upstream(&self, upstream: usize, peer: usize, failed: bool, ms: u64) {
        let l = self.layout;
        let (Some(&row), Some(&p)) = (
            l.upstream_of.get(upstream),
            l.peer_of.get(upstream).and_then(|v| v.get(peer)),
        ) else {
            return;
        };
        self.observe(l.off_upstream + row as usize * HIST, ms);
        let at = l.off_peer + p as usize * PEER_CELLS;
        self.add(at, 1);
        if failed {
            self.add(at + 1, 1);
        }
    }

    /// A request went through limit zone `zone` with `result`.
    #[inline]
    pub fn limit(&self, zone: u32, result: LimitResult) {
        let l = self.layout;
        if (zone as usize) < l.zones.len() {
            self.add(l.off_zone + zone as usize * ZONE_CELLS + result as usize, 1);
        }
    }
}

/// The figures that are not laid out per config: totals since the master started
/// (connections and requests as `stub_status`, TLS handshakes, reloads).
#[derive(Debug, Default, Clone, Copy)]
pub struct Globals {
    pub accepted: u64,
    pub handled: u64,
    pub requests: u64,
    pub active: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
    pub tls_full: u64,
    pub tls_resumed: u64,
    pub generation: u64,
    pub reloads: u64,
    pub reload_failures: u64,
}

impl Globals {
    /// The figures as they are now in shared memory. The generation is 1 + the successful
    /// reloads (as the master numbers its generations).
    pub fn read() -> Globals {
        let reloads = crate::shared::master_figure(crate::shared::MasterFigure::Reloads);
        use crate::shared::{master_figure, total, MasterFigure, Stat};
        Globals {
            accepted: total(Stat::Accepted),
            handled: total(Stat::Handled),
            requests: total(Stat::Requests),
            active: total(Stat::Active),
            reading: total(Stat::Reading),
            writing: total(Stat::Writing),
            waiting: total(Stat::Waiting),
            tls_full: total(Stat::TlsFull),
            tls_resumed: total(Stat::TlsResumed),
            generation: reloads + 1,
            reloads,
            reload_failures: master_figure(MasterFigure::ReloadFailures),
        }
    }
}

/// Appends `v` as a label value (`\`, `"` and line feeds escaped).
fn label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn ms_as_secs(out: &mut String, ms: u64) {
    let _ = write!(out, "{}.{:03}", ms / 1000, ms % 1000);
}

/// Writes one histogram's series: `name_bucket{labels,le}`, `name_sum`, `name_count`.
/// `labels` is the `k="v",` text before `le`, `cells` the histogram's cells.
fn histogram(out: &mut String, name: &str, labels: &str, cells: &[u64]) {
    let mut cumulative = 0u64;
    for (i, b) in BUCKETS_MS.iter().enumerate() {
        cumulative += cells.get(i).copied().unwrap_or(0);
        let le = *b as f64 / 1000.0;
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
    }
    cumulative += cells.get(BUCKETS_MS.len()).copied().unwrap_or(0);
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}");
    let plain = labels.trim_end_matches(',');
    let _ = write!(out, "{name}_sum{{{plain}}} ");
    ms_as_secs(out, cells.get(HIST - 1).copied().unwrap_or(0));
    let _ = writeln!(out, "\n{name}_count{{{plain}}} {cumulative}");
}

/// The page: the table's sums (when there is a table) and the global figures, in
/// Prometheus' text exposition format 0.0.4.
pub fn render(
    out: &mut String,
    table: Option<&Table>,
    g: &Globals,
    shared: Option<&crate::upstream::SharedUpstreams>,
) {
    let simple: [(&str, &str, &str, u64); 12] = [
        ("proton_config_generation", "gauge", "The configuration generation serving (1 at start, one more at each successful reload).", g.generation),
        ("proton_config_reloads_total", "counter", "Successful reloads since the master started.", g.reloads),
        ("proton_config_reload_failures_total", "counter", "Reloads refused (the IR did not load or its listeners could not be bound) since the master started.", g.reload_failures),
        ("proton_connections_accepted_total", "counter", "Client connections accepted since the master started.", g.accepted),
        ("proton_connections_handled_total", "counter", "Client connections handled since the master started.", g.handled),
        ("proton_requests_total", "counter", "Client requests (HTTP/2 streams included) since the master started.", g.requests),
        ("proton_connections_active", "gauge", "Open client connections.", g.active),
        ("proton_connections_reading", "gauge", "Connections reading a request head.", g.reading),
        ("proton_connections_writing", "gauge", "Requests being answered.", g.writing),
        ("proton_connections_idle", "gauge", "Idle connections (keep-alive, or no request yet).", g.waiting),
        ("proton_tls_handshakes_total", "counter", "TLS handshakes with clients completed since the master started (resumed ones included).", g.tls_full + g.tls_resumed),
        ("proton_tls_handshakes_resumed_total", "counter", "TLS handshakes with clients that resumed a session, since the master started.", g.tls_resumed),
    ];
    for (name, kind, help, v) in simple {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {v}");
    }
    let Some(t) = table else {
        return;
    };
    let l = &t.layout;
    let sums = t.sums();
    let cell = |i: usize| sums.get(i).copied().unwrap_or(0);
    let mut labels = String::new();
    let server_labels = |labels: &mut String, s: u32| {
        labels.clear();
        labels.push_str("server=\"");
        label(labels, l.servers.get(s as usize).map_or("", String::as_str));
        labels.push_str("\",");
    };
    family(
        out,
        "proton_http_requests_total",
        "counter",
        "Requests answered, by server, location (as written in the config) and status class; since the last reload.",
    );
    const CLASS: [&str; CLASSES] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    for (i, (server, loc)) in l.locations.iter().enumerate() {
        server_labels(&mut labels, *server);
        labels.push_str("location=\"");
        label(&mut labels, loc);
        labels.push('"');
        for (c, class) in CLASS.iter().enumerate() {
            let v = cell(i * CLASSES + c);
            let _ = writeln!(
                out,
                "proton_http_requests_total{{{labels},status=\"{class}\"}} {v}"
            );
        }
    }
    for (name, help, k) in [
        (
            "proton_http_received_bytes_total",
            "Bytes of requests received (heads and bodies), by server; since the last reload.",
            0,
        ),
        (
            "proton_http_sent_bytes_total",
            "Bytes of responses sent (heads and bodies), by server; since the last reload.",
            1,
        ),
    ] {
        family(out, name, "counter", help);
        for s in 0..l.servers.len() {
            server_labels(&mut labels, s as u32);
            let v = cell(l.off_server + s * SERVER_CELLS + k);
            let _ = writeln!(out, "{name}{{{}}} {v}", labels.trim_end_matches(','));
        }
    }
    let name = "proton_http_request_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "Time from a request's first byte to its log line, by server; since the last reload.",
    );
    for s in 0..l.servers.len() {
        server_labels(&mut labels, s as u32);
        let at = l.off_server + s * SERVER_CELLS + 2;
        histogram(out, name, &labels, sums.get(at..at + HIST).unwrap_or(&[]));
    }
    let name = "proton_upstream_response_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "Time of each attempt on an upstream server (connect to end of its response, or to its failure), by upstream group; since the last reload.",
    );
    for (u, up) in l.upstreams.iter().enumerate() {
        labels.clear();
        labels.push_str("upstream=\"");
        label(&mut labels, up);
        labels.push_str("\",");
        let at = l.off_upstream + u * HIST;
        histogram(out, name, &labels, sums.get(at..at + HIST).unwrap_or(&[]));
    }
    for (name, help, k) in [
        (
            "proton_upstream_peer_requests_total",
            "Attempts on each upstream server (its address as written), retries included; since the last reload.",
            0,
        ),
        (
            "proton_upstream_peer_failures_total",
            "Attempts on each upstream server that failed (counted towards max_fails); since the last reload.",
            1,
        ),
    ] {
        family(out, name, "counter", help);
        for (p, (up, addr)) in l.peers.iter().enumerate() {
            labels.clear();
            labels.push_str("upstream=\"");
            label(&mut labels, l.upstreams.get(*up as usize).map_or("", String::as_str));
            labels.push_str("\",peer=\"");
            label(&mut labels, addr);
            labels.push('"');
            let v = cell(l.off_peer + p * PEER_CELLS + k);
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
    // Their state now, read from the upstreams' shared state (not counted: no reset at a
    // reload beyond what the reload itself carries over).
    if let Some(shared) = shared {
        use crate::upstream::Health;
        let gauges: [(&str, &str); 4] = [
            ("proton_upstream_peer_healthy", "1 unless the active health check (health_check) found the upstream server down."),
            ("proton_upstream_peer_checked", "1 when the active health check has a verdict on the upstream server (up or down), 0 before it has one or without health_check."),
            ("proton_upstream_peer_fails", "Failed attempts on the upstream server counted towards max_fails in the current fail_timeout window (passive health)."),
            ("proton_upstream_peer_active_connections", "Connections open to the upstream server, all workers together."),
        ];
        for (k, (name, help)) in gauges.iter().enumerate() {
            family(out, name, "gauge", help);
            let mut at: Option<(u32, usize)> = None;
            for (up, addr) in &l.peers {
                // The peer's index within its group (the layout lists them in order).
                let i = match at {
                    Some((u, i)) if u == *up => i + 1,
                    _ => 0,
                };
                at = Some((*up, i));
                let (u, p) = (*up as usize, i);
                let v = match k {
                    0 => u32::from(shared.peer_health(u, p) != Health::Down),
                    1 => u32::from(shared.peer_health(u, p) != Health::Unknown),
                    2 => shared.peer_fails(u, p),
                    _ => shared.peer_active(u, p),
                };
                labels.clear();
                labels.push_str("upstream=\"");
                label(&mut labels, l.upstreams.get(u).map_or("", String::as_str));
                labels.push_str("\",peer=\"");
                label(&mut labels, addr);
                labels.push('"');
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
    }
    for (name, help, req) in [
        (
            "proton_limit_req_requests_total",
            "Requests looked up in each limit_req zone, by result ($limit_req_status); since the last reload.",
            true,
        ),
        (
            "proton_limit_conn_requests_total",
            "Requests looked up in each limit_conn zone, by result ($limit_conn_status); since the last reload.",
            false,
        ),
    ] {
        family(out, name, "counter", help);
        for (z, (zone, is_req)) in l.zones.iter().enumerate() {
            if *is_req != req {
                continue;
            }
            for r in LimitResult::ALL {
                if !req && matches!(r, LimitResult::Delayed | LimitResult::DelayedDryRun) {
                    continue;
                }
                labels.clear();
                labels.push_str("zone=\"");
                label(&mut labels, zone);
                let v = cell(l.off_zone + z * ZONE_CELLS + r as usize);
                let _ = writeln!(out, "{name}{{{labels}\",result=\"{}\"}} {v}", r.label());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(5), 0);
        assert_eq!(bucket(6), 1);
        assert_eq!(bucket(10_000), 10);
        assert_eq!(bucket(10_001), 11);
        assert_eq!(bucket(u64::MAX), 11);
    }

    #[test]
    fn labels_are_escaped() {
        let mut s = String::new();
        label(&mut s, "~ ^/a\\d\"x\n");
        assert_eq!(s, "~ ^/a\\\\d\\\"x\\n");
    }

    #[test]
    fn histogram_is_cumulative() {
        let mut cells = [0u64; HIST];
        cells[0] = 2;
        cells[3] = 1;
        cells[BUCKETS_MS.len()] = 4;
        cells[HIST - 1] = 123_456;
        let mut out = String::new();
        histogram(&mut out, "h", "server=\"a\",", &cells);
        assert!(
            out.contains("h_bucket{server=\"a\",le=\"0.005\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("h_bucket{server=\"a\",le=\"0.05\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("h_bucket{server=\"a\",le=\"10\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("h_bucket{server=\"a\",le=\"+Inf\"} 7\n"),
            "{out}"
        );
        assert!(out.contains("h_sum{server=\"a\"} 123.456\n"), "{out}");
        assert!(out.contains("h_count{server=\"a\"} 7\n"), "{out}");
    }
}
