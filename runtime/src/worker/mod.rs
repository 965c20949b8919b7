//! A worker process: one thread, one `mio::Poll`, a slab of connections. Each connection is
//! a small state machine (read head → route → write → keep-alive or close); timeouts are
//! deadlines wait in a heap and fire on time; buffers come from a per-worker pool and go back to it.
//!
//! The worker never parses config text; it reads the IR the master loaded before fork.

mod accept;
mod auth;
mod autoindex;
mod body;
mod conn;
mod context;
mod file_cache;
mod filter;
mod h2;
mod limits;
mod proxy;
mod proxy_rewrite;
mod request;
pub(crate) mod respond;
mod ssi;
mod static_files;
mod sub;
mod tls;
mod upstream_resolve;
mod vars;

use crate::config::Loaded;
use crate::elog;
use crate::listen::Bound;
use crate::log::ErrorLog;
pub use accept::Place;
use conn::Conn;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use slab::Slab;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const SIGNAL: Token = Token(usize::MAX - 1);
/// On graceful stop, how long an idle keep-alive connection may still send a request.
const IDLE_GRACE: Duration = Duration::from_millis(1000);

/// What [`run`] returns in `master_process off` mode when HUP asked for a reload: the
/// loop has drained and the process should load the IR again and serve on.
pub const RELOAD: i32 = 100;
/// Tokens below this are listeners; connections are `CONN_BASE + slab key`.
const CONN_BASE: usize = 1 << 20;
/// Tokens of health-check probe sockets start here. The token ranges, in the order the
/// dispatch in [`run`] tests them: listeners `..CONN_BASE`, client connections
/// `CONN_BASE..RES_BASE`, resolver sockets `RES_BASE..HEALTH_BASE`, health probes
/// `HEALTH_BASE..UP_BASE`, upstream connections `UP_BASE..` (the signal fd's token, near
/// `usize::MAX`, is matched first).
const HEALTH_BASE: usize = crate::upstream::health::TOKEN_BASE;
const _: () = assert!(
    CONN_BASE < crate::resolver::RES_BASE
        && crate::resolver::RES_BASE < HEALTH_BASE
        && HEALTH_BASE < proxy::UP_BASE
);

/// Buffers handed out to connections and returned on close, so steady-state serving does
/// not allocate.
pub(crate) struct BufPool {
    free: Vec<Vec<u8>>,
    size: usize,
}

impl BufPool {
    pub(crate) fn get(&mut self) -> Vec<u8> {
        self.free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.size))
    }
    pub(crate) fn put(&mut self, mut b: Vec<u8>) {
        // Keep ordinary buffers; let unusually large ones go.
        if b.capacity() > 0 && b.capacity() <= self.size * 64 && self.free.len() < 4096 {
            b.clear();
            self.free.push(b);
        }
    }
}

/// Everything a worker owns.
pub(crate) struct Worker<'a> {
    pub(crate) loaded: &'a Loaded,
    pub(crate) elog: ErrorLog,
    pub(crate) pool: BufPool,
    pub(crate) date: respond::DateHeader,
    pub(crate) access: respond::AccessLogs,
    pub(crate) scratch: request::Scratch,
    /// Request contexts waiting for a request (a connection takes one per request).
    pub(crate) contexts: context::ContextPool,
    /// Graceful stop in progress: answer with `Connection: close`.
    pub(crate) draining: bool,
    /// Bounce buffer for file bodies with `sendfile off`.
    pub(crate) copy_buf: Vec<u8>,
    /// The TLS configs of servers whose `ssl_certificate` has variables, by the files a
    /// handshake named: (server, the twin it was made from (see `named_certificates`),
    /// the names, config),
    /// least recently used first.
    pub(crate) tls_named: Vec<(u32, u8, Vec<u8>, std::sync::Arc<rustls::ServerConfig>)>,
    /// Connections whose writes `limit_rate` holds back, by when to resume (earliest
    /// first). A stale entry (the connection moved on or closed) only costs a spurious
    /// wakeup.
    /// Entries are (when, slab key, connection serial number); one per throttled request
    /// (its `RequestCtx::wake_at`), and an entry whose connection or wake-up changed is
    /// dropped unused.
    pub(crate) delayed: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, usize, u32)>>,
    /// HTTP/2 connections whose streams produced output in this round: their frames go to
    /// the socket together at the round's end (one write for many responses).
    pub(crate) h2_flush: Vec<usize>,
    /// Finished HTTP/2 streams' links and connection extensions, for the next streams.
    /// (Boxed on purpose: the boxes are what the streams' connections hold, and what is
    /// spared is their allocation.)
    #[allow(clippy::vec_box)]
    pub(crate) spare_links: Vec<Box<h2::StreamLink>>,
    #[allow(clippy::vec_box)]
    pub(crate) spare_exts: Vec<Box<conn::ConnExt>>,
    /// Key sets `auth_jwt_key_request` fetched, kept for `auth_jwt_key_cache`: (settings
    /// index, set, until when). At most one per settings entry of the IR.
    pub(crate) jwt_fetched: Vec<(u32, std::sync::Arc<proton_jwt::KeySet>, std::time::Instant)>,
    /// Finished responses' gzip coders (their deflate state), for the next ones.
    #[allow(clippy::vec_box)]
    pub(crate) spare_coders: Vec<Box<filter::BodyCoder>>,
    /// Connection deadlines, earliest first: (when, slab key, connection serial number).
    /// Each connection has at most one live entry (`armed`); stale ones are skipped.
    pub(crate) timers: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, usize, u32)>>,
    /// By slab key: the time of the connection's live entry in `timers` (`None`: none).
    /// Kept here, not in `Conn`, so that an idle connection stays small. An entry is added
    /// only when the deadline moves earlier than it; one that fires early (the deadline
    /// moved later) is put back at the deadline.
    pub(crate) armed: Vec<Option<Instant>>,
    /// `open_file_cache`: this worker's caches of open static files.
    pub(crate) file_caches: file_cache::FileCaches,
    /// Upstream connections, keep-alive caches and balancers.
    pub(crate) ups: proxy::Upstreams,
    /// For registering upstream sockets.
    pub(crate) registry: mio::Registry,
    /// `resolver`: names of proxy_pass with variables, asked without blocking.
    pub(crate) resolvers: crate::resolver::Resolvers,
    /// `server … resolve`: the lookups of upstream server names (see `upstream_resolve`).
    pub(crate) dyn_ups: upstream_resolve::UpstreamResolve,
    /// The time after the last `epoll_wait` (one clock read per loop, as nginx's
    /// `ngx_current_msec`): deadlines and request times use it.
    pub(crate) now: Instant,
    /// `now` as [`conn::clock_ms`] gives it, computed once per loop round.
    pub(crate) now_ms: u32,
    /// The address of each IR listener (the local address of its connections unless the
    /// listener is a wildcard).
    pub(crate) listener_addrs: Vec<Option<SocketAddr>>,
    /// Connections this worker has accepted: the serial number of the last one.
    pub(crate) connections: u32,
    /// Which requests need their `User-Agent` classified for `keepalive_disable`: POSTs
    /// when some location has `msie6`, all when some location has `safari`.
    pub(crate) ua_for_keepalive: (bool, bool),
    /// This worker's row of the `proton_metrics` counters (`None`: the config has no
    /// `proton_metrics`, nothing is counted).
    pub(crate) metrics: Option<crate::metrics::Row<'a>>,
}

impl Worker<'_> {
    /// The serial number of a new connection (`$connection`): 1, 2, 3… in this worker.
    pub(crate) fn next_connection_number(&mut self) -> u32 {
        self.connections = self.connections.wrapping_add(1);
        self.connections
    }
}

/// Runs a worker until it is told to stop. Returns the process exit code.
pub fn run(loaded: &Loaded, bound: &[Bound], place: Place<'_>) -> i32 {
    let (slot, generation, single) = (place.slot, place.generation, place.single);
    if !single {
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
        crate::process::set_environment(&loaded.ir.main);
    }
    let mut elog = crate::master::open_error_log(loaded);
    elog.set_worker(slot);
    elog.add_location_logs(&loaded.ir.settings, |p| loaded.resolve(p));
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            elog!(elog, Emerg, "epoll_create failed: {e}");
            return 2;
        }
    };
    let signals = crate::master::handled_signals();
    let sfd = match SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
        Ok(s) => s,
        Err(e) => {
            elog!(elog, Emerg, "signalfd failed: {e}");
            return 2;
        }
    };
    let sfd_raw = sfd.as_raw_fd();
    if let Err(e) = poll
        .registry()
        .register(&mut SourceFd(&sfd_raw), SIGNAL, Interest::READABLE)
    {
        elog!(elog, Emerg, "cannot watch signals: {e}");
        return 2;
    }
    let max_conns = loaded.ir.main.worker_connections.max(2) as usize;
    let mut acceptor = match accept::Acceptor::new(loaded, bound, place, &poll, max_conns) {
        Ok(a) => a,
        Err(e) => {
            elog!(elog, Emerg, "{e}");
            return 2;
        }
    };
    // This worker's connections to upstream peers count in its slot's share, which the
    // master gives back if it dies.
    loaded.upstream_shared.set_worker(slot);
    let registry = match poll.registry().try_clone() {
        Ok(r) => r,
        Err(e) => {
            elog!(elog, Emerg, "epoll registry: {e}");
            return 2;
        }
    };
    // The HTTP/2 Huffman decoder's table, built once before any request needs it.
    crate::http2::huffman::prepare();
    let seed = u64::from(std::process::id()) ^ generation.rotate_left(32) ^ slot as u64;
    let resolvers =
        crate::resolver::Resolvers::new(&loaded.ir, &loaded.resolver_addrs, seed ^ 0x5eed);
    let mut w = Worker {
        loaded,
        elog,
        pool: BufPool {
            free: Vec::new(),
            size: 4096,
        },
        date: respond::DateHeader::new(),
        access: respond::AccessLogs::new(loaded),
        scratch: request::Scratch::default(),
        contexts: context::ContextPool::default(),
        draining: false,
        copy_buf: Vec::new(),
        tls_named: Vec::new(),
        delayed: Default::default(),
        h2_flush: Vec::new(),
        spare_links: Vec::new(),
        spare_exts: Vec::new(),
        jwt_fetched: Vec::new(),
        spare_coders: Vec::new(),
        timers: Default::default(),
        armed: Vec::new(),
        file_caches: file_cache::FileCaches::default(),
        ups: proxy::Upstreams::new(loaded, seed),
        resolvers,
        dyn_ups: upstream_resolve::UpstreamResolve::new(loaded, slot == 0),
        registry,
        now: Instant::now(),
        now_ms: conn::clock_ms(Instant::now()),
        listener_addrs: loaded
            .ir
            .listeners
            .iter()
            .map(|l| crate::listen::parse_addr(&l.addr))
            .collect(),
        ua_for_keepalive: (
            loaded.ir.settings.iter().any(|s| s.keepalive_disable.msie6),
            loaded
                .ir
                .settings
                .iter()
                .any(|s| s.keepalive_disable.safari),
        ),
        connections: 0,
        metrics: loaded.metrics.as_ref().map(|t| t.row(slot)),
    };
    // The error log of the OCSP thread, opened while the worker may still open files its
    // user could not.
    let ocsp_log = loaded.ocsp.as_ref().map(|_| {
        let mut log = crate::master::open_error_log(loaded);
        log.set_worker(slot);
        log
    });
    // env, RLIMIT_CORE, user, CPU affinity, working directory: after the listening
    // sockets and log files are open (a worker that drops root cannot open them).
    if !single {
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        match crate::process::init_worker(&loaded.ir.main, slot, ncpu) {
            Ok(None) => {}
            Ok(Some(alert)) => elog!(w.elog, Alert, "{alert}"),
            Err(e) => {
                elog!(w.elog, Emerg, "{e}");
                return 2;
            }
        }
    }
    elog!(
        w.elog,
        Info,
        "worker {slot} of generation {generation} started"
    );
    // Active health checks run in the first worker of each generation, on this loop: probe
    // sockets in their own token range, probe times and timeouts in the poll timeout.
    let mut health = (slot == 0)
        .then(|| {
            crate::upstream::HealthChecks::new(
                &loaded.ir.upstreams,
                &loaded.upstream_addrs,
                std::sync::Arc::clone(&loaded.upstream_shared),
                Instant::now(),
                seed ^ 0x4ea1_7c4e,
            )
        })
        .filter(|h| !h.is_empty());
    // The cache loader and manager run there too (`crate::cache::keeper`).
    let mut keeper = (slot == 0)
        .then(|| {
            crate::cache::keeper::Keeper::new(
                &loaded.ir.cache_zones,
                &loaded.cache_zones,
                &loaded.prefix,
                Instant::now(),
            )
        })
        .filter(|k| !k.is_empty());
    // OCSP responses for ssl_stapling are fetched by a thread of each worker (its error log
    // is reopened on USR1 with the worker's).
    let ocsp_log = ocsp_log.map(|l| std::sync::Arc::new(std::sync::Mutex::new(l)));
    if let (Some(f), Some(log)) = (&loaded.ocsp, ocsp_log.clone()) {
        let started = f.start(std::sync::Arc::new(move |level, msg: String| {
            if let Ok(l) = log.lock() {
                l.log(level, format_args!("{msg}"));
            }
        }));
        if let Err(e) = started {
            elog!(w.elog, Alert, "cannot start the OCSP thread: {e}");
        }
    }
    let mut conns: Slab<Conn> = Slab::with_capacity(max_conns.min(65_536));
    let mut events = Events::with_capacity(1024);
    let mut quitting = false;
    let mut reload = false;
    let mut quit_since: Option<Instant> = None;
    // A slot that died before this worker started may be waiting for its respawn.
    acceptor.refresh_cover(&poll, &mut w);
    let mut last_sweep = Instant::now();
    // `server … resolve`: the addresses a previous generation knew, and the first lookups.
    w.upstream_resolve_tick();
    loop {
        let timeout = if quitting {
            Duration::from_millis(100)
        } else {
            acceptor.poll_timeout(Instant::now(), Duration::from_millis(500))
        };
        // A rate-limited write resumes on time, a deadline fires on time, and a health
        // probe starts (or times out) on time.
        let timeout = [w.delayed.peek(), w.timers.peek()]
            .into_iter()
            .flatten()
            .map(|std::cmp::Reverse((at, _, _))| *at)
            .chain(health.as_mut().and_then(|h| h.next_deadline()))
            .chain(keeper.as_ref().and_then(|k| k.next_deadline()))
            .fold(timeout, |t, at| {
                t.min(at.saturating_duration_since(Instant::now()))
            });
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                elog!(w.elog, Alert, "epoll_wait failed: {e}");
                return 2;
            }
        }
        w.now = Instant::now();
        w.now_ms = conn::clock_ms(w.now);
        w.date.refresh(w.now);
        acceptor.resume_if_due(&mut conns, &poll, &mut w);
        // Upstream events first: a response finished in this round puts its connection
        // back in the keep-alive cache before the round's new requests look for one.
        let ups_first = events.iter().filter(|e| e.token().0 >= proxy::UP_BASE);
        let rest = events.iter().filter(|e| e.token().0 < proxy::UP_BASE);
        for ev in ups_first.chain(rest) {
            match ev.token() {
                SIGNAL => {
                    while let Ok(Some(info)) = sfd.read_signal() {
                        match Signal::try_from(info.ssi_signo as i32) {
                            Ok(sig @ (Signal::SIGQUIT | Signal::SIGHUP))
                                if !quitting && (sig == Signal::SIGQUIT || single) =>
                            {
                                // Graceful stop: no new connections; every response from now
                                // on says `Connection: close`; idle keep-alive connections
                                // get a short grace to send what may already be on the way.
                                // With master_process off, HUP does the same and then the
                                // process reloads (there is no master to start new workers).
                                reload = sig == Signal::SIGHUP;
                                quit_since = Some(Instant::now());
                                quitting = true;
                                w.draining = true;
                                // The next generation's first worker checks from now on.
                                health = None;
                                keeper = None;
                                acceptor.stop(&poll);
                                let grace = Instant::now() + IDLE_GRACE;
                                // HTTP/2 connections say GOAWAY; their streams finish.
                                h2::quit(&mut conns, &poll, &mut w);
                                for (k, c) in conns.iter_mut() {
                                    if c.is_idle() && c.deadline > grace {
                                        c.deadline = grace;
                                        w.arm(k, c);
                                    }
                                }
                            }
                            Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                                w.access.flush_all();
                                return 0;
                            }
                            Ok(Signal::SIGUSR1) => {
                                w.elog.reopen();
                                w.access.reopen();
                                if let Some(Ok(mut l)) = ocsp_log.as_ref().map(|l| l.lock()) {
                                    l.reopen();
                                }
                            }
                            Ok(Signal::SIGUSR2) => acceptor.refresh_cover(&poll, &mut w),
                            _ => {}
                        }
                    }
                }
                Token(t) if t < CONN_BASE => acceptor.on_ready(t, &mut conns, &poll, &mut w),
                Token(t) if (crate::resolver::RES_BASE..HEALTH_BASE).contains(&t) => {
                    let (now, t) = (w.now, t - crate::resolver::RES_BASE);
                    w.resolvers.on_ready(t, now, &w.registry, &w.elog);
                }
                Token(t) if (HEALTH_BASE..proxy::UP_BASE).contains(&t) => {
                    if let Some(h) = health.as_mut() {
                        let elog = &w.elog;
                        h.on_ready(t, w.now, &loaded.regexes, &mut |l, a| elog.log(l, a));
                    }
                }
                Token(t) if t >= proxy::UP_BASE => match w.ups.owner(t - proxy::UP_BASE) {
                    Some(Some(key)) => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            let hup = ev.is_read_closed() || ev.is_error();
                            if let Some(p) = conns.get_mut(key).and_then(|c| c.proxy.as_mut()) {
                                p.mark_upstream_readable(hup);
                            }
                        }
                        conn_event(&mut conns, key, &poll, &mut w, quitting)
                    }
                    Some(None) => w.ups.idle_event(t - proxy::UP_BASE),
                    None => {}
                },
                Token(t) => {
                    let key = t - CONN_BASE;
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        if let Some(c) = conns.get_mut(key) {
                            c.rd_ready = true;
                            c.rd_hup |= ev.is_read_closed() || ev.is_error();
                        }
                    }
                    conn_event(&mut conns, key, &poll, &mut w, quitting)
                }
            }
        }
        resolved(&mut conns, &poll, &mut w, quitting);
        if let Some(h) = health.as_mut() {
            let elog = &w.elog;
            h.run_timers(w.now, &w.registry, &loaded.regexes, &mut |l, a| {
                elog.log(l, a)
            });
        }
        if let Some(k) = keeper.as_mut() {
            let elog = &w.elog;
            k.run(w.now, &mut |l, a| elog.log(l, a));
        }
        while let Some(&std::cmp::Reverse((at, key, number))) = w.delayed.peek() {
            if at > w.now {
                break;
            }
            w.delayed.pop();
            // Only the wake-up the connection's request is still waiting for.
            let due = conns.get_mut(key).is_some_and(|c| {
                c.number == number
                    && c.req
                        .as_deref_mut()
                        .is_some_and(|r| r.wake_at.take_if(|q| *q == at).is_some())
            });
            if due {
                conn_event(&mut conns, key, &poll, &mut w, quitting);
            }
        }
        expire(&mut conns, &poll, &mut w);
        h2::flush_deferred(&mut conns, &poll, &mut w);
        w.ups.trim(&w.loaded.ir);
        w.access.report_errors(&mut w.elog);
        acceptor
            .active()
            .store(conns.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let now = w.now;
        if now.duration_since(last_sweep) >= Duration::from_millis(250) {
            last_sweep = now;
            w.access.tick(now);
            w.ups.sweep(now);
            w.resolvers.tick(now, &w.registry, &w.elog);
            if !quitting {
                w.upstream_resolve_tick();
            }
            resolved(&mut conns, &poll, &mut w, quitting);
            acceptor.refresh_cover(&poll, &mut w);
        }
        // With master_process off there is no master to enforce worker_shutdown_timeout.
        let timed_out = single
            && quit_since
                .zip(loaded.ir.main.worker_shutdown_timeout_ms)
                .is_some_and(|(t, ms)| t.elapsed() >= Duration::from_millis(ms));
        if quitting && (conns.is_empty() || timed_out) {
            w.access.flush_all();
            w.access.report_errors(&mut w.elog);
            elog!(w.elog, Info, "worker {slot} gracefully stopped");
            return if reload { RELOAD } else { 0 };
        }
    }
}

/// Connections whose deadline passed: each is told (it logs what nginx logs and closes, or
/// moves on). An entry that fired before its connection's deadline is put back.
fn expire(conns: &mut Slab<Conn>, poll: &Poll, w: &mut Worker<'_>) {
    let now = w.now;
    // Entries of closed connections stay until their time: when they outnumber the live
    // ones, they go at once (so the heap stays proportional to the connections).
    if w.timers.len() > 2 * conns.len() + 1024 {
        let armed = &w.armed;
        w.timers.retain(|std::cmp::Reverse((at, key, number))| {
            conns.get(*key).is_some_and(|c| c.number == *number)
                && armed.get(*key) == Some(&Some(*at))
        });
        w.timers.shrink_to(4 * conns.len() + 1024);
    }
    while let Some(&std::cmp::Reverse((at, key, number))) = w.timers.peek() {
        if at > now {
            break;
        }
        w.timers.pop();
        let Some(c) = conns.get_mut(key) else {
            continue;
        };
        if c.number != number || w.armed.get(key) != Some(&Some(at)) {
            continue;
        }
        w.armed[key] = None;
        if c.deadline > now {
            w.arm(key, c);
            continue;
        }
        if h2::is_session(c) {
            // (Its own timers: a request's headers arriving too slowly, the idle ones.)
            if h2::session_timeout(conns, key, w) {
                close(conns, key, w);
            } else if let Some(c) = conns.get_mut(key) {
                c.update_interest(poll, Token(CONN_BASE + key));
                w.arm(key, c);
            }
            continue;
        }
        let close_it = h2::with_parent(conns, key, |c| {
            w.select_log(c);
            let close_it = c.on_timeout(w);
            w.deselect_log();
            if close_it {
                h2::mark_timed_out(c);
            }
            close_it
        })
        .unwrap_or(true);
        after_event(conns, key, close_it, poll, w, false);
    }
}

/// Hands the resolver's answers to the requests waiting for them (a request that went away
/// or moved on is skipped).
fn resolved(conns: &mut Slab<Conn>, poll: &Poll, w: &mut Worker<'_>, quitting: bool) {
    while !w.resolvers.done.is_empty() {
        let done = std::mem::take(&mut w.resolvers.done);
        for d in done {
            if d.key >= upstream_resolve::KEY_BASE {
                w.upstream_name_resolved(d.key, d.serial, d.outcome);
                continue;
            }
            let waiting = conns.get_mut(d.key).is_some_and(|c| {
                let this = c.number == d.number && c.served as u64 == d.request;
                match c.proxy.as_mut() {
                    Some(p) if this && p.awaits(d.serial) => {
                        p.resolved = Some(d.outcome);
                        true
                    }
                    _ => false,
                }
            });
            if waiting {
                conn_event(conns, d.key, poll, w, quitting);
            }
        }
    }
}

/// Readiness on client connection `key` (or on the upstream socket it owns).
fn conn_event(conns: &mut Slab<Conn>, key: usize, poll: &Poll, w: &mut Worker<'_>, quitting: bool) {
    let done = h2::with_parent(conns, key, |c| {
        w.select_log(c);
        let done = c.on_event(w, true, true);
        w.deselect_log();
        done
    })
    .unwrap_or(false);
    after_event(conns, key, done, poll, w, quitting);
}

/// What follows an event of connection `key` (`done`: it must close): what its response
/// body waits for runs (SSI, subrequests); a subrequest's output goes to its parent, a
/// stream's to its HTTP/2 connection; the connection is closed or waits again.
fn after_event(
    conns: &mut Slab<Conn>,
    key: usize,
    mut done: bool,
    poll: &Poll,
    w: &mut Worker<'_>,
    quitting: bool,
) {
    if !done && conns.get(key).is_some_and(auth::wants_sub) {
        if let Some(d) = auth::service(conns, key, w) {
            done = d;
        }
    }
    if !done && conns.get(key).is_some_and(ssi::waits) {
        done = ssi::service(conns, key, w);
    }
    // A subrequest: its parent takes its output (and runs on).
    if conns.get(key).is_some_and(sub::is_sub) {
        let parent = sub::parent_of(conns, key);
        ssi::mark(conns, key, done, w);
        match parent {
            // An auth subrequest is over: the request it was for goes on.
            Some(p) if done && auth::waits_for(conns, p, key) => {
                auth::collect(conns, p, key, w);
                conn_event(conns, p, poll, w, quitting);
            }
            Some(p) => after_event(conns, p, false, poll, w, quitting),
            // The request it was for is gone.
            None => sub::remove(conns, key, w),
        }
        return;
    }
    // HTTP/2: a stream's connection hands its output to its HTTP/2 connection; an HTTP/2
    // connection's frames are taken by its session.
    match conns.get(key) {
        Some(c) if h2::is_stream(c) => {
            h2::stream_event(conns, key, done, w);
            return;
        }
        Some(c) if h2::is_session(c) => {
            if done {
                h2::close_session(conns, key, w);
            } else if h2::session_rounds(conns, key, w) {
                // What was written (a GOAWAY) must reach the client before the close:
                // the connection lingers as an HTTP/1.1 one does.
                if h2::end_session(conns, key, w) {
                    close(conns, key, w);
                } else if let Some(c) = conns.get_mut(key) {
                    c.update_interest(poll, Token(CONN_BASE + key));
                    w.arm(key, c);
                }
            } else if let Some(c) = conns.get_mut(key) {
                c.update_interest(poll, Token(CONN_BASE + key));
                w.arm(key, c);
            }
            return;
        }
        _ => {}
    }
    let finished_draining = quitting
        && conns
            .get(key)
            .is_some_and(|c| c.is_idle() && c.served > 0 && c.close_after);
    if done || finished_draining {
        close(conns, key, w);
    } else if let Some(c) = conns.get_mut(key) {
        c.update_interest(poll, Token(CONN_BASE + key));
        w.arm(key, c);
    }
}

fn close(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) {
    if conns.get(key).is_some_and(h2::is_session) {
        h2::close_session(conns, key, w);
        return;
    }
    sub::close_children(conns, key, w);
    if let Some(c) = conns.try_remove(key) {
        // Closing the socket removes it from epoll (Linux), so no deregister syscall.
        c.release(w);
    }
}

impl Worker<'_> {
    /// Makes sure connection `key` has a timer entry no later than its deadline.
    pub(crate) fn arm(&mut self, key: usize, c: &Conn) {
        // Every connection that waits again passes here: its `stub_status` state too.
        c.restat();
        if self.armed.len() <= key {
            self.armed.resize(key + 1, None);
        }
        let armed = &mut self.armed[key];
        if armed.is_none_or(|a| c.deadline < a) {
            self.timers
                .push(std::cmp::Reverse((c.deadline, key, c.number)));
            *armed = Some(c.deadline);
        }
    }

    /// Sends the error-log lines that follow to the error_log of the location of `c`'s
    /// request (nginx sets the connection's log when a location is found).
    pub(crate) fn select_log(&mut self, c: &Conn) {
        let settings = c
            .req
            .as_deref()
            .and_then(|r| r.location)
            .and_then(|l| self.loaded.ir.locations.get(l.0 as usize))
            .map(|l| l.conf.settings);
        self.elog.select(settings);
        self.elog.set_debug(c.debug);
    }

    /// Lines that follow are the worker's own again (the main error log, its level).
    pub(crate) fn deselect_log(&self) {
        self.elog.select(None);
        self.elog.set_debug(false);
    }

    /// The local address of a connection.
    /// Takes back a finished request's context for the next request.
    pub(crate) fn release_context(&mut self, req: Option<Box<context::RequestCtx>>) {
        if let Some(mut r) = req {
            if let Some(c) = r.coder.take() {
                c.give_back(&mut self.spare_coders);
            }
            self.contexts.put(r, self.scratch.var_pool.get_mut());
        }
    }

    pub(crate) fn local_of(&self, conn: &Conn) -> SocketAddr {
        match conn.ext.as_deref().and_then(|e| e.local) {
            Some(a) => a,
            None => self
                .listener_addrs
                .get(conn.listener as usize)
                .copied()
                .flatten()
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        }
    }

    /// The IR listener a connection to `local` belongs to: the exact address if configured,
    /// else the wildcard socket's own address.
    fn ir_listener_for(&self, local: SocketAddr, bound: SocketAddr) -> Option<usize> {
        let ls = &self.loaded.ir.listeners;
        let find = |a: SocketAddr| {
            ls.iter()
                .position(|l| crate::listen::parse_addr(&l.addr) == Some(a))
        };
        find(local).or_else(|| find(bound))
    }
}
