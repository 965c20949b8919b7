//! Accepting connections in a worker: its own listening sockets, the sockets of dead sibling
//! slots it covers until their respawn, the pause after "Too many open files", and the
//! `worker_connections` limit (idle keep-alive connections make room for new clients).
//!
//! Every accept error is logged at most once per episode (or once a second), never once per
//! connection: a flood must not turn into a flood of log lines.

use super::conn::Conn;
use super::{close, Worker, CONN_BASE};
use crate::elog;
use crate::listen::Bound;
use crate::log::OsError;
use crate::shared::Counters;
use mio::net::{TcpListener, TcpStream, UnixListener};
use mio::{Interest, Poll, Token};
use slab::Slab;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// After accept() fails for want of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM), accepting
/// pauses this long and is then tried again on every socket, as nginx does
/// (`accept_mutex_delay`): descriptors freed meanwhile let the queued connections in, even
/// when no new connection arrives to wake the socket.
const ACCEPT_PAUSE: Duration = Duration::from_millis(500);

/// At most one line a second about a full `worker_connections` (nginx's rate).
const FULL_LOG_EVERY: Duration = Duration::from_secs(1);

/// At most one line a minute about accept() failing for want of descriptors (it is retried
/// twice a second while it lasts).
const STARVED_LOG_EVERY: Duration = Duration::from_secs(60);

/// A worker's listening socket: TCP, or unix-domain (`listen unix:…`).
enum ListenSock {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl ListenSock {
    fn deregister(&mut self, poll: &Poll) {
        let _ = match self {
            ListenSock::Tcp(s) => poll.registry().deregister(s),
            ListenSock::Unix(s) => poll.registry().deregister(s),
        };
    }

    /// Accepts one connection. A unix-domain connection is carried as a `TcpStream` over its
    /// descriptor: the connection code only reads, writes, sendfiles, peeks and shuts down,
    /// which are the same calls on both kinds of stream socket (TCP-only options such as
    /// TCP_NODELAY fail there and are ignored). Its peer is [`UNIX_PLACEHOLDER`]; the
    /// listener tells that it is a unix client (`$remote_addr` is `unix:`, as nginx).
    fn accept(&self) -> std::io::Result<(TcpStream, SocketAddr)> {
        match self {
            ListenSock::Tcp(s) => s.accept(),
            ListenSock::Unix(s) => {
                let (stream, _) = s.accept()?;
                let fd: std::os::fd::OwnedFd = stream.into();
                Ok((TcpStream::from(fd), crate::listen::UNIX_PLACEHOLDER))
            }
        }
    }
}

/// A listening socket in this worker and how to map its connections to IR listeners.
pub(super) struct Listener {
    sock: ListenSock,
    bound_addr: SocketAddr,
    /// The IR listener of every connection on this socket, when the socket is bound to a
    /// specific address (no getsockname needed per connection).
    fixed: Option<usize>,
}

/// Where a worker stands among its siblings: what it needs to accept for its own slot and
/// to cover dead ones.
pub struct Place<'a> {
    /// This worker's slot (its SO_REUSEPORT socket of every listener).
    pub slot: usize,
    /// Its generation's id.
    pub generation: u64,
    /// Its shared count of open connections (for the master's status file).
    pub active: &'a std::sync::atomic::AtomicU64,
    /// Per slot, the generation whose worker in that slot is dead (0: none); set by the
    /// master, which then sends USR2.
    pub orphans: &'a Counters,
    /// `master_process off`: this is the only process (no master above it).
    pub single: bool,
}

/// A log line allowed once per period; the lines held back in between are counted.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    /// `Some(lines held back since the last one)` when a line may be written now.
    fn allow(&mut self, now: Instant, every: Duration) -> Option<u64> {
        if self.last.is_some_and(|t| now.duration_since(t) < every) {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// Everything a worker needs to accept connections.
pub(super) struct Acceptor<'a> {
    bound: &'a [Bound],
    place: Place<'a>,
    /// This worker's own sockets; socket `i` has token `i`.
    own: Vec<Listener>,
    /// Sockets of orphaned sibling slots this worker accepts from until the slot has a
    /// worker again: entry `slot * bound.len() + i` (listener `i`) has token
    /// `own.len() + entry`.
    covered: Vec<Option<Listener>>,
    /// Accepting is paused until then (after EMFILE and friends).
    paused_until: Option<Instant>,
    starved_log: Throttle,
    max_conns: usize,
    full_log: Throttle,
    reuse_log: Throttle,
    error_log: Throttle,
    /// Scratch list of idle connections `(deadline, key)` when making room.
    idle: Vec<(Instant, usize)>,
    /// Graceful stop: no socket is watched any more.
    stopped: bool,
}

impl<'a> Acceptor<'a> {
    /// Watches this worker's own socket of every listener.
    pub(super) fn new(
        loaded: &crate::config::Loaded,
        bound: &'a [Bound],
        place: Place<'a>,
        poll: &Poll,
        max_conns: usize,
    ) -> Result<Acceptor<'a>, String> {
        let mut own = Vec::with_capacity(bound.len());
        for (i, b) in bound.iter().enumerate() {
            let fixed = if let Some(path) = &b.unix {
                loaded
                    .ir
                    .listeners
                    .iter()
                    .position(|l| crate::listen::unix_path(&l.addr) == Some(path.as_path()))
            } else if b.addr.ip().is_unspecified() {
                None
            } else {
                loaded
                    .ir
                    .listeners
                    .iter()
                    .position(|l| crate::listen::parse_addr(&l.addr) == Some(b.addr))
            };
            // Each worker has its own SO_REUSEPORT socket per listener (listen.rs), so an
            // ordinary registration wakes only this worker.
            let l = watch(b, b.for_worker(place.slot), fixed, poll, Token(i))?;
            own.push(l);
        }
        let slots = bound.iter().map(|b| b.per_worker.len()).max().unwrap_or(0);
        let mut covered = Vec::new();
        // Tokens of covered sockets must stay below the connections' tokens.
        if bound.len() + slots * bound.len() < CONN_BASE {
            covered.resize_with(slots * bound.len(), || None);
        }
        Ok(Acceptor {
            bound,
            place,
            own,
            covered,
            paused_until: None,
            starved_log: Throttle::default(),
            max_conns,
            full_log: Throttle::default(),
            reuse_log: Throttle::default(),
            error_log: Throttle::default(),
            idle: Vec::new(),
            stopped: false,
        })
    }

    pub(super) fn active(&self) -> &std::sync::atomic::AtomicU64 {
        self.place.active
    }

    /// Starts or stops covering sibling slots as the master's orphan marks say: a slot
    /// whose worker died (in this generation) is covered until it has a worker again.
    /// Cheap (one atomic load per slot); called on USR2 and on every timeout sweep.
    pub(super) fn refresh_cover(&mut self, poll: &Poll, w: &mut Worker<'_>) {
        let n = self.bound.len();
        if n == 0 {
            return;
        }
        for entry in 0..self.covered.len() {
            let (slot, i) = (entry / n, entry % n);
            let want = !self.stopped
                && slot != self.place.slot
                && self.place.orphans.slot(slot).load(Ordering::Relaxed) == self.place.generation;
            match (&mut self.covered[entry], want) {
                (None, true) => {
                    let Some(b) = self.bound.get(i) else { continue };
                    let Some(sock) = b.per_worker.get(slot) else {
                        continue;
                    };
                    let fixed = self.own.get(i).and_then(|l| l.fixed);
                    match watch(b, sock, fixed, poll, Token(self.own.len() + entry)) {
                        Ok(l) => {
                            if i == 0 {
                                elog!(
                                    w.elog,
                                    Info,
                                    "accepting for worker slot {slot} until it is respawned"
                                );
                            }
                            self.covered[entry] = Some(l);
                        }
                        Err(e) => elog!(w.elog, Alert, "{e}"),
                    }
                }
                (cell @ Some(_), false) => {
                    if let Some(mut l) = cell.take() {
                        l.sock.deregister(poll);
                    }
                }
                _ => {}
            }
        }
    }

    /// A readiness event on listener token `t`.
    pub(super) fn on_ready(
        &mut self,
        t: usize,
        conns: &mut Slab<Conn>,
        poll: &Poll,
        w: &mut Worker<'_>,
    ) {
        if self.paused_until.is_none() {
            self.accept_from(t, conns, poll, w);
        }
    }

    /// How long the event loop may sleep: less than `default` while a pause ends sooner.
    pub(super) fn poll_timeout(&self, now: Instant, default: Duration) -> Duration {
        match self.paused_until {
            Some(t) => t.saturating_duration_since(now).min(default),
            None => default,
        }
    }

    /// Ends a pause that is due: every socket is tried again (their edge-triggered events
    /// may have fired, and been ignored, during the pause).
    pub(super) fn resume_if_due(
        &mut self,
        conns: &mut Slab<Conn>,
        poll: &Poll,
        w: &mut Worker<'_>,
    ) {
        if self.paused_until.is_none_or(|t| t > w.now) {
            return;
        }
        self.paused_until = None;
        for t in 0..self.own.len() + self.covered.len() {
            if self.paused_until.is_some() {
                break;
            }
            self.accept_from(t, conns, poll, w);
        }
    }

    /// Graceful stop: no more connections are accepted.
    pub(super) fn stop(&mut self, poll: &Poll) {
        self.stopped = true;
        for mut l in self.own.drain(..) {
            l.sock.deregister(poll);
        }
        for mut l in self.covered.iter_mut().filter_map(Option::take) {
            l.sock.deregister(poll);
        }
        self.covered.clear();
    }

    fn listener(&self, t: usize) -> Option<&Listener> {
        match t.checked_sub(self.own.len()) {
            None => self.own.get(t),
            Some(entry) => self.covered.get(entry).and_then(Option::as_ref),
        }
    }

    /// Accepts every queued connection of listener token `t`.
    fn accept_from(&mut self, t: usize, conns: &mut Slab<Conn>, poll: &Poll, w: &mut Worker<'_>) {
        loop {
            let Some(l) = self.listener(t) else { return };
            let (bound_addr, fixed) = (l.bound_addr, l.fixed);
            let (stream, peer) = match l.sock.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    let starved = matches!(
                        e.raw_os_error(),
                        Some(libc_errno::EMFILE | libc_errno::ENFILE)
                            | Some(libc_errno::ENOBUFS | libc_errno::ENOMEM)
                    );
                    if starved {
                        // The connection stays queued; try again after a pause (no event
                        // would wake this socket again for the connections already queued).
                        self.paused_until = Some(w.now + ACCEPT_PAUSE);
                        if let Some(held) = self.starved_log.allow(w.now, STARVED_LOG_EVERY) {
                            elog!(
                                w.elog,
                                Alert,
                                "accept() on {bound_addr} failed ({}); retrying every {} ms{}",
                                OsError(&e),
                                ACCEPT_PAUSE.as_millis(),
                                Held(held)
                            );
                        }
                    } else if let Some(held) = self.error_log.allow(w.now, FULL_LOG_EVERY) {
                        elog!(
                            w.elog,
                            Alert,
                            "accept() on {bound_addr} failed ({}){}",
                            OsError(&e),
                            Held(held)
                        );
                    }
                    return;
                }
            };
            if conns.len() >= self.max_conns && !self.make_room(conns, w) {
                // Full of connections that are all busy: refuse cleanly (the socket is
                // closed on drop).
                let max = self.max_conns;
                if let Some(held) = self.full_log.allow(w.now, FULL_LOG_EVERY) {
                    elog!(
                        w.elog,
                        Alert,
                        "{max} worker_connections are not enough; closing connection from {peer}{}",
                        Held(held)
                    );
                }
                drop(stream);
                continue;
            }
            let (local, listener) = match fixed {
                Some(i) => (bound_addr, Some(i)),
                None => {
                    let local = stream.local_addr().unwrap_or(bound_addr);
                    (local, w.ir_listener_for(local, bound_addr))
                }
            };
            let Some(listener) = listener else {
                drop(stream);
                continue;
            };
            let entry = conns.vacant_entry();
            let key = entry.key();
            // (A unix connection's local address is its listener's path: nothing to keep.)
            let local = (local != crate::listen::UNIX_PLACEHOLDER
                && w.listener_addrs.get(listener).copied().flatten() != Some(local))
            .then_some(local);
            let token = Token(CONN_BASE + key);
            let mut stream = stream;
            if let Err(e) = poll
                .registry()
                .register(&mut stream, token, Interest::READABLE)
            {
                elog!(w.elog, Alert, "cannot watch connection from {peer}: {e}");
                continue;
            }
            let conn = Conn::new(stream, peer, local, listener, key, w);
            if conn.debug {
                w.elog.set_debug(true);
                elog!(w.elog, Debug, "*{} accept: {peer}", conn.number);
                w.deselect_log();
            }
            // A new connection in this slot: whatever entry the slot's last one had is stale.
            if let Some(a) = w.armed.get_mut(key) {
                *a = None;
            }
            w.arm(key, &conn);
            entry.insert(conn);
        }
    }

    /// `worker_connections` is reached: closes the oldest idle connections (waiting for a
    /// first or a next request, nothing read), as nginx's `ngx_drain_connections`: one
    /// eighth of them, at least 1 and at most 32. Returns whether there is room now.
    fn make_room(&mut self, conns: &mut Slab<Conn>, w: &mut Worker<'_>) -> bool {
        self.idle.clear();
        self.idle.extend(
            conns
                .iter()
                .filter(|(_, c)| c.is_idle())
                .map(|(k, c)| (c.deadline, k)),
        );
        if self.idle.is_empty() {
            return false;
        }
        let n = (self.idle.len() / 8).clamp(1, 32);
        if n < self.idle.len() {
            self.idle.select_nth_unstable(n - 1);
        }
        if self.reuse_log.allow(w.now, FULL_LOG_EVERY).is_some() {
            elog!(
                w.elog,
                Warn,
                "{} worker_connections are not enough, reusing connections",
                self.max_conns
            );
        }
        for &(_, key) in &self.idle[..n] {
            close(conns, key, w);
        }
        conns.len() < self.max_conns
    }
}

/// ", N similar lines held back" when N > 0.
struct Held(u64);

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 > 0 {
            write!(f, " ({} similar lines held back)", self.0)
        } else {
            Ok(())
        }
    }
}

/// The errno values that mean "out of descriptors or buffers" (std has no names for them).
mod libc_errno {
    pub const EMFILE: i32 = nix::errno::Errno::EMFILE as i32;
    pub const ENFILE: i32 = nix::errno::Errno::ENFILE as i32;
    pub const ENOBUFS: i32 = nix::errno::Errno::ENOBUFS as i32;
    pub const ENOMEM: i32 = nix::errno::Errno::ENOMEM as i32;
}

/// A worker's copy of listening socket `sock` (of `b`), watched for readiness as `token`.
/// (The sockets were made non-blocking by the master; the copy shares that.)
fn watch(
    b: &Bound,
    sock: &std::os::fd::OwnedFd,
    fixed: Option<usize>,
    poll: &Poll,
    token: Token,
) -> Result<Listener, String> {
    let fd = sock
        .try_clone()
        .map_err(|e| format!("cannot use listening socket {}: {e}", b.name()))?;
    let registered = if b.unix.is_some() {
        let mut s = UnixListener::from(fd);
        poll.registry()
            .register(&mut s, token, Interest::READABLE)
            .map(|()| ListenSock::Unix(s))
    } else {
        let mut s = TcpListener::from(fd);
        poll.registry()
            .register(&mut s, token, Interest::READABLE)
            .map(|()| ListenSock::Tcp(s))
    };
    let sock = registered.map_err(|e| format!("cannot watch {}: {e}", b.name()))?;
    Ok(Listener {
        sock,
        bound_addr: b.addr,
        fixed,
    })
}
