//! Peer state shared by every worker process of a config generation: one anonymous
//! `MAP_SHARED` mapping, made by the master before it forks the generation's workers, with one
//! slot of atomics per server of every upstream of the IR.
//!
//! Shared (in the mapping), per peer:
//!
//! * `active`: connections open to the peer from any worker (least_conn, `random two`,
//!   peak-EWMA's load, `max_conns`);
//! * passive health: `fails`, `checked` and `failed_at` (nginx's `fails`, `checked` and
//!   `accessed`), so `max_fails`/`fail_timeout` count the failures of all workers;
//! * active health: the verdict (unknown / up / down) and the consecutive pass and fail counts
//!   of the checker ([`super::health`]).
//!
//! Per worker (in the [`super::Balancer`], not shared): smooth weighted round-robin's
//! `current_weight` and `effective_weight`, the peak-EWMA latency estimate, the random
//! generator and the tie-breaking cursors. They steer one worker's own sequence of picks;
//! sharing them would only add contention.
//!
//! Times are milliseconds of `CLOCK_MONOTONIC`, which is system-wide, so a time stored by one
//! process means the same to every other. A balancer works with `std::time::Instant` (also
//! `CLOCK_MONOTONIC` on Linux); [`SharedUpstreams::new`] reads an `Instant` and the clock at
//! the same moment, and that pair, copied into every worker by `fork`, converts between the
//! two in all processes alike. 0 means "never". Values are read and written with relaxed
//! atomics and no lock: a pick reads a snapshot that another worker may change a moment later,
//! which at worst lets two workers choose the same least-loaded peer. Only `max_conns` needs
//! to be exact, and [`super::Balancer::try_acquire`] enforces it with a compare-and-swap.
//!
//! Each worker also counts its own share of `active`, per peer, in a second mapping (one row
//! per worker slot, [`Shares`]); when a worker dies, the master gives its share back
//! ([`SharedUpstreams::reclaim_worker`]), so connections a killed worker held do not keep a
//! `max_conns` peer full (nginx's shared zone keeps them counted until a reload).

use std::fmt;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::mman::munmap;
use nix::time::{clock_gettime, ClockId};
use proton_ir::{Ir, Upstream};

use super::peer::{fail_timeout_passed, Health, PeerState};

/// Health verdicts as stored in a slot.
const HEALTH_UNKNOWN: u32 = 0;
const HEALTH_UP: u32 = 1;
const HEALTH_DOWN: u32 = 2;

fn health_of(v: u32) -> Health {
    match v {
        HEALTH_UP => Health::Up,
        HEALTH_DOWN => Health::Down,
        _ => Health::Unknown,
    }
}

fn health_code(h: Health) -> u32 {
    match h {
        Health::Unknown => HEALTH_UNKNOWN,
        Health::Up => HEALTH_UP,
        Health::Down => HEALTH_DOWN,
    }
}

/// The shared state of one peer; all zeros is the initial state. One cache line each, so
/// that workers busy with different peers do not contend.
#[repr(C, align(64))]
struct Slot {
    active: AtomicU32,
    fails: AtomicU32,
    /// nginx's `checked`, ms of CLOCK_MONOTONIC; 0 = never.
    checked_ms: AtomicU64,
    /// nginx's `accessed`: the last failure, ms of CLOCK_MONOTONIC; 0 = never.
    failed_at_ms: AtomicU64,
    health: AtomicU32,
    /// Consecutive passed active checks (written by the peer's checker only).
    check_passes: AtomicU32,
    /// Consecutive failed active checks (written by the peer's checker only).
    check_fails: AtomicU32,
    /// A `server … resolve` peer's address, under a sequence lock (odd while being
    /// written): the IP's 16 bytes (an IPv4 address in the first word) and
    /// `family << 16 | port` (family 0: no address, 4 or 6). One writer at a time: the
    /// first worker of the generation, or the master before it forks it.
    addr_seq: AtomicU32,
    addr: [AtomicU32; 5],
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

/// The mapping itself; unmapped when the last handle (the [`SharedUpstreams`], balancers,
/// checker threads) of this process goes.
struct Mapping {
    base: NonNull<Slot>,
    slots: usize,
    len: NonZeroUsize,
}

// SAFETY: the mapped memory is only ever accessed through atomics (`&Slot` exposes nothing
// else), so references to it may cross threads, and other processes change it the same way.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(slots: usize) -> Result<Mapping, String> {
        let slots = slots.max(1);
        let len = slots
            .checked_mul(std::mem::size_of::<Slot>())
            .and_then(NonZeroUsize::new)
            .ok_or("shared upstream state too large")?;
        // Zero-filled and page-aligned, so every `Slot` in it is aligned and valid (all its
        // fields are atomics, for which all zeros is a value).
        let ptr = crate::shared::map_shared_zeroed(len)
            .map_err(|e| format!("mmap of shared upstream state ({len} bytes) failed: {e}"))?;
        Ok(Mapping {
            base: ptr.cast::<Slot>(),
            slots,
            len,
        })
    }

    fn slot(&self, i: usize) -> Option<&Slot> {
        if i >= self.slots {
            return None;
        }
        // SAFETY: `i < slots`, so the slot lies inside the mapping, which stays mapped while
        // `self` (and so the returned reference) lives: only `Drop` unmaps it.
        Some(unsafe { &*self.base.as_ptr().add(i) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the mapping made in `new`; no reference into it
        // outlives `self` (they all borrow it), and nothing else unmaps it. Other processes
        // keep their own copies of the mapping.
        let _ = unsafe { munmap(self.base.cast(), self.len.get()) };
    }
}

/// Worker slots that can hold a share (`proton-run` runs at most 256 workers a generation).
const WORKER_SLOTS: usize = 256;

/// Per worker slot and peer: the connections that worker has open to the peer (its part of
/// the peer's `active`), so that the part of a worker that died can be given back. Row `w`
/// holds worker slot `w`'s counts, one `AtomicU32` per peer.
struct Shares {
    base: NonNull<AtomicU32>,
    peers: usize,
    len: NonZeroUsize,
    /// The worker slot of this process (`usize::MAX`: not a worker, nothing is counted).
    /// Process-local: set by the worker after fork.
    worker: AtomicUsize,
}

// SAFETY: the mapped memory is only accessed through atomics, as for `Mapping`.
unsafe impl Send for Shares {}
// SAFETY: as above.
unsafe impl Sync for Shares {}

impl Shares {
    fn new(peers: usize) -> Result<Shares, String> {
        let peers = peers.max(1);
        let len = peers
            .checked_mul(WORKER_SLOTS * std::mem::size_of::<AtomicU32>())
            .and_then(NonZeroUsize::new)
            .ok_or("shared upstream state too large")?;
        // Zero-filled and page-aligned: every element is a valid, aligned `AtomicU32`.
        let ptr = crate::shared::map_shared_zeroed(len)
            .map_err(|e| format!("mmap of upstream shares ({len} bytes) failed: {e}"))?;
        Ok(Shares {
            base: ptr.cast::<AtomicU32>(),
            peers,
            len,
            worker: AtomicUsize::new(usize::MAX),
        })
    }

    /// Worker `w`'s count for peer slot `peer`.
    fn get(&self, w: usize, peer: usize) -> Option<&AtomicU32> {
        if w >= WORKER_SLOTS || peer >= self.peers {
            return None;
        }
        // SAFETY: `w * peers + peer` < WORKER_SLOTS * peers, inside the mapping, which
        // stays mapped while `self` lives (only `Drop` unmaps it).
        Some(unsafe { &*self.base.as_ptr().add(w * self.peers + peer) })
    }

    /// This process's count for peer slot `peer`, when it is a worker.
    fn mine(&self, peer: usize) -> Option<&AtomicU32> {
        self.get(self.worker.load(Ordering::Relaxed), peer)
    }
}

impl Drop for Shares {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`; no reference into it outlives `self`.
        let _ = unsafe { munmap(self.base.cast(), self.len.get()) };
    }
}

/// Converts between `Instant` and milliseconds of CLOCK_MONOTONIC (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Clock {
    base: Instant,
    base_ms: u64,
}

impl Clock {
    fn new() -> Result<Clock, String> {
        let base = Instant::now();
        let ts = clock_gettime(ClockId::CLOCK_MONOTONIC)
            .map_err(|e| format!("clock_gettime(CLOCK_MONOTONIC) failed: {e}"))?;
        let base_ms = u64::try_from(ts.tv_sec())
            .unwrap_or(0)
            .saturating_mul(1000)
            .saturating_add(u64::try_from(ts.tv_nsec()).unwrap_or(0) / 1_000_000);
        Ok(Clock { base, base_ms })
    }

    /// `t` in ms of CLOCK_MONOTONIC; never 0 (0 means "never").
    fn ms(&self, t: Instant) -> u64 {
        let ms = match t.checked_duration_since(self.base) {
            Some(d) => self
                .base_ms
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => self.base_ms.saturating_sub(
                u64::try_from(self.base.saturating_duration_since(t).as_millis())
                    .unwrap_or(u64::MAX),
            ),
        };
        ms.max(1)
    }

    /// The `Instant` of a stored time; `None` for 0 ("never").
    fn instant(&self, ms: u64) -> Option<Instant> {
        if ms == 0 {
            None
        } else if ms >= self.base_ms {
            self.base
                .checked_add(Duration::from_millis(ms - self.base_ms))
        } else {
            self.base
                .checked_sub(Duration::from_millis(self.base_ms - ms))
        }
    }
}

/// The shared peer state of every upstream of one IR (one config generation). Made by the
/// master before it forks the workers; each worker builds its balancers over it with
/// [`super::Balancer::from_upstream_shared`].
pub struct SharedUpstreams {
    map: Arc<Mapping>,
    shares: Arc<Shares>,
    /// Per upstream: index of its first slot, number of servers.
    groups: Vec<(usize, usize)>,
    clock: Clock,
}

impl fmt::Debug for SharedUpstreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedUpstreams")
            .field("upstreams", &self.groups.len())
            .field("slots", &self.map.slots)
            .finish()
    }
}

impl SharedUpstreams {
    /// Maps zeroed state for every server of every upstream of `ir`.
    pub fn new(ir: &Ir) -> Result<SharedUpstreams, String> {
        SharedUpstreams::from_upstreams(&ir.upstreams)
    }

    /// Maps zeroed state for every server of `upstreams` (upstream `i` of the result is
    /// `upstreams[i]`).
    pub fn from_upstreams(upstreams: &[Upstream]) -> Result<SharedUpstreams, String> {
        let mut groups = Vec::with_capacity(upstreams.len());
        let mut total = 0usize;
        for u in upstreams {
            groups.push((total, u.servers.len()));
            total = total
                .checked_add(u.servers.len())
                .ok_or("too many upstream servers")?;
        }
        Ok(SharedUpstreams {
            map: Arc::new(Mapping::new(total)?),
            shares: Arc::new(Shares::new(total)?),
            groups,
            clock: Clock::new()?,
        })
    }

    /// Number of upstreams.
    pub fn upstreams(&self) -> usize {
        self.groups.len()
    }

    /// Number of servers of `upstream` (0 when out of range).
    pub fn peers(&self, upstream: usize) -> usize {
        self.groups.get(upstream).map_or(0, |g| g.1)
    }

    fn slot(&self, upstream: usize, peer: usize) -> Option<&Slot> {
        let &(first, n) = self.groups.get(upstream)?;
        if peer >= n {
            return None;
        }
        self.map.slot(first + peer)
    }

    /// The shared state of one upstream, for a balancer; `None` when out of range.
    pub(super) fn group(&self, upstream: usize) -> Option<SharedPeers> {
        let &(first, len) = self.groups.get(upstream)?;
        Some(SharedPeers {
            map: Arc::clone(&self.map),
            shares: Arc::clone(&self.shares),
            first,
            len,
            clock: self.clock,
        })
    }

    /// Connections open to the peer from every worker (0 when out of range).
    pub fn peer_active(&self, upstream: usize, peer: usize) -> u32 {
        self.slot(upstream, peer)
            .map_or(0, |s| s.active.load(Ordering::Relaxed))
    }

    /// Makes this process worker slot `slot` of the generation: from now on its connections
    /// to peers are also counted in the slot's share. Called by a worker after fork.
    pub fn set_worker(&self, slot: usize) {
        self.shares.worker.store(slot, Ordering::Relaxed);
    }

    /// Gives back the share of worker slot `slot`, whose process has exited: each peer's
    /// `active` drops by the connections that worker still had open. Returns how many.
    /// Called by the master when it reaps the worker (before the slot is respawned).
    pub fn reclaim_worker(&self, slot: usize) -> u64 {
        let mut total = 0u64;
        for peer in 0..self.map.slots {
            let (Some(share), Some(s)) = (self.shares.get(slot, peer), self.map.slot(peer)) else {
                continue;
            };
            let n = share.swap(0, Ordering::Relaxed);
            if n > 0 {
                total += u64::from(n);
                let _ = s
                    .active
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                        Some(a.saturating_sub(n))
                    });
            }
        }
        total
    }

    /// A reload: peer `to` of this generation takes over the state the previous one
    /// (`old`) kept for the same server (`from`): its passive failures and when they
    /// happened, and its active health verdict with the checker's counts, so that a server
    /// found failing or down stays so instead of being tried again by every new worker.
    /// Connections open (`active`) are not carried: they belong to the old workers, which
    /// drain them and count them down in the old mapping. Times are CLOCK_MONOTONIC
    /// milliseconds, the same in both. `health`: the health-check state too (only when the
    /// group is checked the same way in both: a verdict no checker will revise would keep a
    /// server out for good). False when either peer is out of range.
    pub fn carry_peer(
        &self,
        to: (usize, usize),
        old: &SharedUpstreams,
        from: (usize, usize),
        health: bool,
    ) -> bool {
        let (Some(new), Some(was)) = (self.slot(to.0, to.1), old.slot(from.0, from.1)) else {
            return false;
        };
        new.fails
            .store(was.fails.load(Ordering::Relaxed), Ordering::Relaxed);
        if health {
            for (a, b) in [
                (&new.health, &was.health),
                (&new.check_passes, &was.check_passes),
                (&new.check_fails, &was.check_fails),
            ] {
                a.store(b.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
        for (a, b) in [
            (&new.checked_ms, &was.checked_ms),
            (&new.failed_at_ms, &was.failed_at_ms),
        ] {
            a.store(b.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        true
    }

    /// Sets the address of a `server … resolve` peer (`None`: it has none now). See
    /// [`Slot::addr_seq`] for who may call it.
    pub fn set_peer_addr(&self, upstream: usize, peer: usize, addr: Option<std::net::SocketAddr>) {
        let Some(s) = self.slot(upstream, peer) else {
            return;
        };
        let mut words = [0u32; 5];
        match addr {
            None => {}
            Some(std::net::SocketAddr::V4(a)) => {
                words[0] = u32::from_be_bytes(a.ip().octets());
                words[4] = 4 << 16 | u32::from(a.port());
            }
            Some(std::net::SocketAddr::V6(a)) => {
                for (w, c) in words.iter_mut().zip(a.ip().octets().chunks_exact(4)) {
                    *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                }
                words[4] = 6 << 16 | u32::from(a.port());
            }
        }
        // Sequence lock, writer side: odd while the words change.
        let seq = s.addr_seq.load(Ordering::Relaxed);
        s.addr_seq.store(seq.wrapping_add(1) | 1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        for (a, w) in s.addr.iter().zip(words) {
            a.store(w, Ordering::Relaxed);
        }
        s.addr_seq
            .store((seq.wrapping_add(1) | 1).wrapping_add(1), Ordering::Release);
    }

    /// The address of a `server … resolve` peer as last set (`Some(None)`: it has none).
    /// `None` when out of range, or when it was written over and over while this read (the
    /// caller keeps what it had; the next reading settles it).
    pub fn peer_addr(&self, upstream: usize, peer: usize) -> Option<Option<std::net::SocketAddr>> {
        let s = self.slot(upstream, peer)?;
        for _ in 0..16 {
            let before = s.addr_seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let words: [u32; 5] = std::array::from_fn(|i| s.addr[i].load(Ordering::Relaxed));
            std::sync::atomic::fence(Ordering::Acquire);
            if s.addr_seq.load(Ordering::Relaxed) != before {
                continue;
            }
            let port = (words[4] & 0xffff) as u16;
            return Some(match words[4] >> 16 {
                4 => Some(std::net::SocketAddr::from((
                    std::net::Ipv4Addr::from(words[0].to_be_bytes()),
                    port,
                ))),
                6 => {
                    let mut b = [0u8; 16];
                    for (c, w) in b.chunks_exact_mut(4).zip(words) {
                        c.copy_from_slice(&w.to_be_bytes());
                    }
                    Some(std::net::SocketAddr::from((
                        std::net::Ipv6Addr::from(b),
                        port,
                    )))
                }
                _ => None,
            });
        }
        None
    }

    /// A `server … resolve` peer got another address: it is a new server, without the
    /// failures or the health verdict of the one before (its open connections, which belong
    /// to the old address, stay counted until they close).
    pub fn reset_peer(&self, upstream: usize, peer: usize) {
        let Some(s) = self.slot(upstream, peer) else {
            return;
        };
        for a in [&s.fails, &s.health, &s.check_passes, &s.check_fails] {
            a.store(0, Ordering::Relaxed);
        }
        s.checked_ms.store(0, Ordering::Relaxed);
        s.failed_at_ms.store(0, Ordering::Relaxed);
    }

    /// Passive failures counted for the peer (nginx's `fails`; 0 when out of range).
    pub fn peer_fails(&self, upstream: usize, peer: usize) -> u32 {
        self.slot(upstream, peer)
            .map_or(0, |s| s.fails.load(Ordering::Relaxed))
    }

    /// When the peer last failed, in ms of CLOCK_MONOTONIC (`None`: never).
    pub fn peer_failed_at_ms(&self, upstream: usize, peer: usize) -> Option<u64> {
        self.slot(upstream, peer)
            .map(|s| s.failed_at_ms.load(Ordering::Relaxed))
            .filter(|&ms| ms != 0)
    }

    /// The active health verdict of the peer (`Unknown` when out of range).
    pub fn peer_health(&self, upstream: usize, peer: usize) -> Health {
        self.slot(upstream, peer).map_or(Health::Unknown, |s| {
            health_of(s.health.load(Ordering::Relaxed))
        })
    }

    /// Sets the active health verdict of the peer (and restarts its pass/fail counts).
    pub fn set_peer_health(&self, upstream: usize, peer: usize, health: Health) {
        if let Some(s) = self.slot(upstream, peer) {
            s.check_passes.store(0, Ordering::Relaxed);
            s.check_fails.store(0, Ordering::Relaxed);
            s.health.store(health_code(health), Ordering::Relaxed);
        }
    }

    /// Records one active check of the peer: `fails` failures in a row make it down,
    /// `passes` passes in a row make it up. Returns `(before, after)` when the verdict
    /// changed. Each peer has one checker, the only writer of its counts.
    pub fn record_check(
        &self,
        upstream: usize,
        peer: usize,
        passed: bool,
        fails: u32,
        passes: u32,
    ) -> Option<(Health, Health)> {
        let s = self.slot(upstream, peer)?;
        let before = health_of(s.health.load(Ordering::Relaxed));
        let (count, reset, needed, verdict) = if passed {
            (&s.check_passes, &s.check_fails, passes, Health::Up)
        } else {
            (&s.check_fails, &s.check_passes, fails, Health::Down)
        };
        reset.store(0, Ordering::Relaxed);
        let n = count.load(Ordering::Relaxed).saturating_add(1);
        count.store(n, Ordering::Relaxed);
        if n >= needed.max(1) && before != verdict {
            s.health.store(health_code(verdict), Ordering::Relaxed);
            return Some((before, verdict));
        }
        None
    }
}

/// One upstream's slice of the shared state, held by a balancer (it keeps the mapping alive).
#[derive(Clone)]
pub(super) struct SharedPeers {
    map: Arc<Mapping>,
    shares: Arc<Shares>,
    first: usize,
    len: usize,
    clock: Clock,
}

impl fmt::Debug for SharedPeers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPeers")
            .field("first", &self.first)
            .field("len", &self.len)
            .finish()
    }
}

impl SharedPeers {
    /// Number of peers.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn slot(&self, i: usize) -> Option<&Slot> {
        if i >= self.len {
            return None;
        }
        self.map.slot(self.first + i)
    }

    /// Copies the shared values of peer `i` into `st`.
    pub(super) fn load(&self, i: usize, st: &mut PeerState) {
        if let Some(s) = self.slot(i) {
            st.active = s.active.load(Ordering::Relaxed);
            st.fails = s.fails.load(Ordering::Relaxed);
            // The two times matter only while the peer has failures (whether it counts as
            // failed, and whether a success re-admits it): not converted otherwise.
            if st.fails == 0 {
                st.checked = None;
                st.failed_at = None;
            } else {
                st.checked = self.clock.instant(s.checked_ms.load(Ordering::Relaxed));
                st.failed_at = self.clock.instant(s.failed_at_ms.load(Ordering::Relaxed));
            }
            st.health = health_of(s.health.load(Ordering::Relaxed));
        }
    }

    /// Copies the shared values of every peer into `states` (index-aligned).
    pub(super) fn load_all(&self, states: &mut [PeerState]) {
        for (i, st) in states.iter_mut().enumerate() {
            self.load(i, st);
        }
    }

    /// One more connection to peer `i`; returns the new count.
    pub(super) fn acquire(&self, i: usize) -> u32 {
        self.try_acquire(i, 0).unwrap_or(0)
    }

    /// One more connection to peer `i` if it has fewer than `max` (0 = no cap); returns the
    /// new count, or `None` when the peer is full.
    pub(super) fn try_acquire(&self, i: usize, max: u32) -> Option<u32> {
        let s = self.slot(i)?;
        let now = s
            .active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                (max == 0 || a < max).then(|| a.saturating_add(1))
            })
            .ok()
            .map(|prev| prev.saturating_add(1))?;
        if let Some(mine) = self.shares.mine(self.first + i) {
            mine.fetch_add(1, Ordering::Relaxed);
        }
        Some(now)
    }

    /// One connection to peer `i` fewer; returns the new count.
    pub(super) fn release(&self, i: usize) -> u32 {
        self.slot(i).map_or(0, |s| {
            if let Some(mine) = self.shares.mine(self.first + i) {
                let _ = mine.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(1))
                });
            }
            let prev = s
                .active
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |a| {
                    Some(a.saturating_sub(1))
                })
                .unwrap_or_else(|a| a);
            prev.saturating_sub(1)
        })
    }

    /// A failure of peer `i` at `now`: one more `fails`, `failed_at` and `checked` = now.
    pub(super) fn fail(&self, i: usize, now: Instant) {
        if let Some(s) = self.slot(i) {
            let now = self.clock.ms(now);
            let _ = s
                .fails
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                    Some(f.saturating_add(1))
                });
            s.failed_at_ms.store(now, Ordering::Relaxed);
            s.checked_ms.store(now, Ordering::Relaxed);
        }
    }

    /// A success of a re-admitted peer `i`: its failures are forgotten.
    pub(super) fn clear_fails(&self, i: usize) {
        if let Some(s) = self.slot(i) {
            s.fails.store(0, Ordering::Relaxed);
        }
    }

    /// Peer `i` was picked at `now`: if `fail_timeout` has passed since `checked` (or it
    /// was never set), `checked` becomes now (nginx's re-admission; see `Pool::mark_picked`),
    /// in one compare-and-swap, so that of several workers re-admitting the peer at once
    /// exactly one does. Returns whether this call moved `checked`. The test is the one
    /// [`super::peer::failed`] makes, on the same whole milliseconds.
    pub(super) fn mark_picked(&self, i: usize, now: Instant, fail_timeout: Duration) -> bool {
        let Some(s) = self.slot(i) else {
            return false;
        };
        let now = self.clock.ms(now);
        s.checked_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                (c == 0 || fail_timeout_passed(now.saturating_sub(c), fail_timeout)).then_some(now)
            })
            .is_ok()
    }

    /// Sets the active health verdict of peer `i` (as [`SharedUpstreams::set_peer_health`]).
    pub(super) fn set_health(&self, i: usize, health: Health) {
        if let Some(s) = self.slot(i) {
            s.check_passes.store(0, Ordering::Relaxed);
            s.check_fails.store(0, Ordering::Relaxed);
            s.health.store(health_code(health), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Balancer, Outcome};
    use super::*;
    use proton_ir::{Balance, UpstreamServer};

    fn server(address: &str) -> UpstreamServer {
        UpstreamServer::new(address)
    }

    fn upstream(balance: Balance, servers: Vec<UpstreamServer>) -> Upstream {
        Upstream {
            name: "app".into(),
            explicit: true,
            servers,
            balance,
            keepalive: 0,
            keepalive_timeout_ms: 60_000,
            keepalive_requests: 1000,
            keepalive_time_ms: 3_600_000,
            health_check: None,
            resolver: None,
            resolver_timeout_ms: 30_000,
        }
    }

    /// Two groups, so that slot offsets are exercised: "other" (one server) then "app".
    fn setup(balance: Balance, servers: Vec<UpstreamServer>) -> (Upstream, SharedUpstreams) {
        let other = upstream(Balance::RoundRobin, vec![server("10.9.9.9:80")]);
        let app = upstream(balance, servers);
        let shared = SharedUpstreams::from_upstreams(&[other, app.clone()]).expect("mmap");
        (app, shared)
    }

    const KEY: &[u8] = &[10, 0, 0, 1];

    #[test]
    fn clock_round_trip() {
        let c = Clock::new().expect("clock");
        let t = Instant::now() + Duration::from_millis(1500);
        let back = c.instant(c.ms(t)).expect("instant");
        assert!(t.saturating_duration_since(back) < Duration::from_millis(1));
        assert!(back <= t);
        assert_eq!(c.instant(0), None);
        let earlier = c.base.checked_sub(Duration::from_millis(20));
        if let Some(e) = earlier {
            assert_eq!(c.ms(e), c.base_ms.saturating_sub(20).max(1));
        }
        // CLOCK_MONOTONIC and Instant agree (both are the monotonic clock on Linux).
        let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("clock");
        let now_ms = ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000;
        let via_instant = c.ms(Instant::now());
        assert!(now_ms.abs_diff(via_instant) <= 5, "{now_ms} {via_instant}");
    }

    #[test]
    fn sizes_and_out_of_range() {
        let (_, shared) = setup(Balance::RoundRobin, vec![server("a:1"), server("b:1")]);
        assert_eq!(shared.upstreams(), 2);
        assert_eq!(
            (shared.peers(0), shared.peers(1), shared.peers(2)),
            (1, 2, 0)
        );
        assert_eq!(shared.peer_active(1, 2), 0);
        assert_eq!(shared.peer_active(5, 0), 0);
        assert_eq!(shared.peer_health(1, 9), Health::Unknown);
        assert_eq!(shared.record_check(1, 9, false, 1, 1), None);
        let empty = SharedUpstreams::from_upstreams(&[]).expect("mmap");
        assert_eq!(empty.upstreams(), 0);
        assert!(empty.group(0).is_none());
        assert_eq!(std::mem::size_of::<Slot>(), 64);
    }

    #[test]
    fn least_conn_sees_the_other_workers_connections() {
        let (up, shared) = setup(Balance::LeastConn, vec![server("a:1"), server("b:1")]);
        let mut w1 = Balancer::from_upstream_shared(&up, &shared, 1, 1);
        let mut w2 = Balancer::from_upstream_shared(&up, &shared, 1, 2);
        let now = Instant::now();
        let first = w1.pick(KEY, now, &[]).expect("a peer");
        w1.acquire(first);
        assert_eq!(shared.peer_active(1, first), 1);
        assert_eq!(shared.peer_active(0, 0), 0, "the other group is untouched");
        // The second worker has no connection of its own, yet picks the other peer.
        for _ in 0..10 {
            assert_eq!(w2.pick(KEY, now, &[]), Some(1 - first));
        }
        w2.acquire(1 - first);
        w2.acquire(1 - first);
        assert_eq!(w1.pick(KEY, now, &[]), Some(first));
        w1.release(first);
        w2.release(1 - first);
        assert_eq!(shared.peer_active(1, first), 0);
        assert_eq!(shared.peer_active(1, 1 - first), 1);
        assert_eq!(w1.state(1 - first).map(|s| s.active), Some(1));
    }

    #[test]
    fn max_conns_holds_across_balancers() {
        let mut servers = vec![server("a:1"), server("b:1")];
        servers[0].max_conns = 2;
        servers[1].max_conns = 1;
        let (up, shared) = setup(Balance::RoundRobin, servers);
        let mut w1 = Balancer::from_upstream_shared(&up, &shared, 1, 1);
        let mut w2 = Balancer::from_upstream_shared(&up, &shared, 1, 2);
        let now = Instant::now();
        let mut got = Vec::new();
        for k in 0..10 {
            let b = if k % 2 == 0 { &mut w1 } else { &mut w2 };
            let Some(i) = b.pick(KEY, now, &[]) else {
                break;
            };
            assert!(b.try_acquire(i));
            got.push(i);
        }
        got.sort_unstable();
        assert_eq!(got, vec![0, 0, 1]);
        assert_eq!(w1.pick(KEY, now, &[]), None);
        assert_eq!(w2.pick(KEY, now, &[]), None);
        // A pick made before another worker filled the peer is caught by try_acquire.
        w2.release(1);
        let i = w1.pick(KEY, now, &[]);
        assert_eq!(i, Some(1));
        assert!(w2.try_acquire(1));
        assert!(!w1.try_acquire(1));
        assert_eq!(shared.peer_active(1, 1), 1);
    }

    #[test]
    fn passive_failures_count_for_every_worker() {
        let mut servers = vec![server("a:1"), server("b:1")];
        servers[0].max_fails = 2;
        let (up, shared) = setup(Balance::RoundRobin, servers);
        let mut w1 = Balancer::from_upstream_shared(&up, &shared, 1, 1);
        let mut w2 = Balancer::from_upstream_shared(&up, &shared, 1, 2);
        let t0 = Instant::now();
        w1.report(0, Outcome::Failure, t0);
        assert_eq!(w2.pick(KEY, t0, &[1]), Some(0), "one failure of two");
        w2.report(0, Outcome::Failure, t0);
        assert_eq!(shared.peer_fails(1, 0), 2);
        assert!(shared.peer_failed_at_ms(1, 0).is_some());
        let t1 = t0 + Duration::from_secs(5);
        for b in [&mut w1, &mut w2] {
            for _ in 0..10 {
                assert_eq!(b.pick(KEY, t1, &[]), Some(1));
            }
            assert_eq!(b.pick(KEY, t1, &[1]), None);
        }
        // After fail_timeout one worker re-admits it; its success clears the shared count.
        let t2 = t0 + Duration::from_secs(11);
        assert_eq!(w1.pick(KEY, t2, &[1]), Some(0));
        w1.report(
            0,
            Outcome::Success {
                latency: Duration::from_millis(1),
            },
            t2,
        );
        assert_eq!(shared.peer_fails(1, 0), 0);
        assert_eq!(w2.state(0).map(|s| s.fails), Some(0));
        w2.report(0, Outcome::Failure, t2);
        assert_eq!(w1.pick(KEY, t2, &[1]), Some(0), "1 < max_fails=2 again");
    }

    /// A peer picked without failures leaves no shared `checked` time behind (no write per
    /// pick); its first failure still blocks it for fail_timeout in every worker, and a
    /// success after that re-admits it.
    #[test]
    fn quiet_peer_fails_then_comes_back() {
        let mut servers = vec![server("a:1"), server("b:1")];
        servers[0].max_fails = 1;
        let (up, shared) = setup(Balance::RoundRobin, servers);
        let mut w1 = Balancer::from_upstream_shared(&up, &shared, 1, 1);
        let mut w2 = Balancer::from_upstream_shared(&up, &shared, 1, 2);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(w1.pick(KEY, t0, &[1]), Some(0));
        }
        assert_eq!(
            w1.state(0).map(|s| (s.checked, s.failed_at)),
            Some((None, None))
        );
        w1.report(0, Outcome::Failure, t0);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(
            w2.pick(KEY, t1, &[1]),
            None,
            "failed in the other worker too"
        );
        let t2 = t0 + Duration::from_secs(11);
        assert_eq!(w2.pick(KEY, t2, &[1]), Some(0), "back after fail_timeout");
        w2.report(
            0,
            Outcome::Success {
                latency: Duration::from_millis(1),
            },
            t2,
        );
        assert_eq!(shared.peer_fails(1, 0), 0);
        assert_eq!(w1.pick(KEY, t2, &[1]), Some(0));
    }

    /// Issue 12: when fail_timeout runs out, one request probes the failed server, not every
    /// request of the millisecond in which the "failed" check and the re-arm disagreed
    /// (the shared state keeps whole milliseconds, the balancer compared `Instant`s). Two
    /// workers pick in turn every 50 µs for 20 ms after the timeout: exactly one pick of the
    /// dead peer in all, whatever the phase of the failure's time within its millisecond.
    #[test]
    fn one_probe_when_fail_timeout_runs_out() {
        for phase_us in [0u64, 1, 250, 499, 500, 501, 999] {
            let mut servers = vec![server("a:1"), server("b:1")];
            servers[0].max_fails = 1;
            servers[0].fail_timeout_ms = 10_000;
            let (up, shared) = setup(Balance::RoundRobin, servers);
            let mut w1 = Balancer::from_upstream_shared(&up, &shared, 1, 1);
            let mut w2 = Balancer::from_upstream_shared(&up, &shared, 1, 2);
            let t0 = Instant::now() + Duration::from_micros(phase_us);
            w1.report(0, Outcome::Failure, t0);
            let mut probes = Vec::new();
            for k in 0..400u64 {
                let now = t0 + Duration::from_millis(10_000) + Duration::from_micros(50 * k);
                let b = if k % 2 == 0 { &mut w1 } else { &mut w2 };
                if b.pick(KEY, now, &[]) == Some(0) {
                    probes.push(k);
                }
            }
            assert_eq!(probes.len(), 1, "phase {phase_us} µs: probes at {probes:?}");
            // The probe fails: the server is out for another fail_timeout, then probed once.
            let k = probes[0];
            let failed_again = t0 + Duration::from_millis(10_000) + Duration::from_micros(50 * k);
            w2.report(0, Outcome::Failure, failed_again);
            let mut probes = 0;
            for k in 0..400u64 {
                let now =
                    failed_again + Duration::from_millis(9_990) + Duration::from_micros(50 * k);
                let b = if k % 2 == 0 { &mut w1 } else { &mut w2 };
                probes += usize::from(b.pick(KEY, now, &[]) == Some(0));
            }
            assert_eq!(probes, 1, "phase {phase_us} µs, second round");
        }
    }

    #[test]
    fn health_down_peer_never_picked_until_up() {
        let methods = [
            Balance::RoundRobin,
            Balance::LeastConn,
            Balance::IpHash,
            Balance::Random { two: false },
            Balance::Random { two: true },
            Balance::LeastTime { last_byte: false },
        ];
        for balance in methods {
            let (up, shared) = setup(
                balance.clone(),
                vec![server("a:1"), server("b:1"), server("c:1")],
            );
            let mut w1 = Balancer::from_upstream_shared(&up, &shared, 1, 3);
            let mut w2 = Balancer::from_upstream_shared(&up, &shared, 1, 4);
            let now = Instant::now();
            assert_eq!(shared.record_check(1, 1, false, 2, 1), None);
            assert_eq!(
                shared.record_check(1, 1, false, 2, 1),
                Some((Health::Unknown, Health::Down))
            );
            for k in 0..200u32 {
                let key = k.to_be_bytes();
                assert_ne!(w1.pick(&key, now, &[]), Some(1), "{balance:?}");
                assert_ne!(w2.pick(&key, now, &[]), Some(1), "{balance:?}");
            }
            assert_eq!(w1.pick(KEY, now, &[0, 2]), None, "{balance:?}");
            assert_eq!(
                shared.record_check(1, 1, true, 2, 1),
                Some((Health::Down, Health::Up))
            );
            assert_eq!(w2.pick(KEY, now, &[0, 2]), Some(1), "{balance:?}");
            assert!(
                (0..200u32).any(|k| w1.pick(&k.to_be_bytes(), now, &[]) == Some(1)),
                "{balance:?}"
            );
        }
    }

    #[test]
    fn health_counts_need_consecutive_results() {
        let (_, shared) = setup(Balance::RoundRobin, vec![server("a:1")]);
        let check = |passed| shared.record_check(1, 0, passed, 3, 2);
        assert_eq!(check(false), None);
        assert_eq!(check(false), None);
        assert_eq!(check(true), None, "a pass restarts the fail count");
        assert_eq!(check(false), None);
        assert_eq!(check(false), None);
        assert_eq!(check(false), Some((Health::Unknown, Health::Down)));
        assert_eq!(check(false), None, "already down");
        assert_eq!(check(true), None);
        assert_eq!(check(true), Some((Health::Down, Health::Up)));
        assert_eq!(shared.peer_health(1, 0), Health::Up);
        shared.set_peer_health(1, 0, Health::Down);
        assert_eq!(shared.peer_health(1, 0), Health::Down);
    }

    #[test]
    fn balancer_of_another_shape_keeps_private_state() {
        let (up, shared) = setup(Balance::LeastConn, vec![server("a:1"), server("b:1")]);
        // Index 0 is the one-server group: the two-server upstream does not fit it.
        let mut b = Balancer::from_upstream_shared(&up, &shared, 0, 1);
        b.acquire(0);
        assert_eq!(shared.peer_active(0, 0), 0);
        assert_eq!(b.state(0).map(|s| s.active), Some(1));
        let mut c = Balancer::from_upstream_shared(&up, &shared, 7, 1);
        c.acquire(1);
        assert_eq!(shared.peer_active(1, 1), 0);
    }

    #[test]
    fn balancers_keep_the_mapping_alive() {
        let (up, shared) = setup(Balance::LeastConn, vec![server("a:1"), server("b:1")]);
        let mut b = Balancer::from_upstream_shared(&up, &shared, 1, 1);
        let mut b2 = b.clone();
        drop(shared);
        b.acquire(0);
        assert_eq!(b2.state(0).map(|s| s.active), Some(1));
        assert_eq!(b2.pick(KEY, Instant::now(), &[]), Some(1));
    }

    /// A child process changes the state; the parent sees it.
    #[test]
    fn shared_across_fork() {
        use nix::sys::signal::{raise, Signal};
        use nix::sys::wait::{waitpid, WaitStatus};
        use nix::unistd::{fork, ForkResult};
        let (up, shared) = setup(Balance::LeastConn, vec![server("a:1"), server("b:1")]);
        let mut b = Balancer::from_upstream_shared(&up, &shared, 1, 1);
        let now = Instant::now();
        // SAFETY: the child only does atomic operations on memory that is already mapped
        // (no allocation, no lock another thread of the test harness could hold) and then
        // kills itself, so it never runs the harness's code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                b.acquire(0);
                b.acquire(0);
                b.report(1, Outcome::Failure, now);
                // Leave at once, without running any exit handler of the harness.
                let _ = raise(Signal::SIGKILL);
                std::process::abort();
            }
            Ok(ForkResult::Parent { child }) => {
                let status = waitpid(child, None).expect("waitpid");
                assert!(
                    matches!(status, WaitStatus::Signaled(_, Signal::SIGKILL, _)),
                    "{status:?}"
                );
            }
            Err(e) => panic!("fork: {e}"),
        }
        assert_eq!(shared.peer_active(1, 0), 2);
        assert_eq!(shared.peer_fails(1, 1), 1);
        // The child was no worker (no slot set): nothing to give back.
        assert_eq!(shared.reclaim_worker(3), 0);
        assert_eq!(shared.peer_active(1, 0), 2);
        // Peer 1 failed (max_fails=1) and peer 0 is busy: the parent's balancer sees both.
        assert_eq!(b.pick(KEY, now, &[]), Some(0));
        assert_eq!(b.pick(KEY, now, &[0]), None);
    }

    /// A worker killed with connections open: the master gives its share back, and only
    /// its share (another worker's connections stay counted).
    #[test]
    fn dead_workers_share_is_reclaimed() {
        use nix::sys::signal::{raise, Signal};
        use nix::sys::wait::waitpid;
        use nix::unistd::{fork, ForkResult};
        let mut max1 = server("a:1");
        max1.max_conns = 2;
        let (up, shared) = setup(Balance::RoundRobin, vec![max1]);
        let mut mine = Balancer::from_upstream_shared(&up, &shared, 1, 1);
        assert!(mine.try_acquire(0), "the parent's own connection");
        // SAFETY: the child only does atomic operations on memory that is already mapped
        // and then kills itself, so it never runs the harness's code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                shared.set_worker(3);
                let mut b = Balancer::from_upstream_shared(&up, &shared, 1, 1);
                let _ = b.try_acquire(0);
                let _ = raise(Signal::SIGKILL);
                std::process::abort();
            }
            Ok(ForkResult::Parent { child }) => {
                waitpid(child, None).expect("waitpid");
            }
            Err(e) => panic!("fork: {e}"),
        }
        assert_eq!(shared.peer_active(1, 0), 2, "the peer is full");
        assert!(!mine.try_acquire(0));
        assert_eq!(shared.reclaim_worker(3), 1);
        assert_eq!(
            shared.peer_active(1, 0),
            1,
            "the parent's connection stays counted"
        );
        assert!(mine.try_acquire(0));
        assert_eq!(shared.reclaim_worker(3), 0, "given back once");
    }

    #[test]
    fn resolved_addresses_round_trip_through_the_mapping() {
        let ups = vec![upstream(
            Balance::RoundRobin,
            vec![server("a:80"), server("b:80")],
        )];
        let shared = SharedUpstreams::from_upstreams(&ups).expect("map");
        assert_eq!(shared.peer_addr(0, 1), Some(None));
        let v4: std::net::SocketAddr = "127.0.0.201:8080".parse().expect("addr");
        let v6: std::net::SocketAddr = "[fe80::1]:81".parse().expect("addr");
        shared.set_peer_addr(0, 0, Some(v4));
        shared.set_peer_addr(0, 1, Some(v6));
        assert_eq!(shared.peer_addr(0, 0), Some(Some(v4)));
        assert_eq!(shared.peer_addr(0, 1), Some(Some(v6)));
        shared.set_peer_addr(0, 0, None);
        assert_eq!(shared.peer_addr(0, 0), Some(None));
        assert_eq!(shared.peer_addr(0, 2), None);
        assert_eq!(shared.peer_addr(1, 0), None);
    }
}
