//! Upstream load balancing as pure structures: a [`Balancer`] is built from an upstream's
//! servers and method, picks a peer for a request, and is told how the attempt went. It never
//! opens a socket and never reads a clock: callers pass `now` and measured latencies, so every
//! method is unit-tested in memory (the shape of pingora's `pingora-load-balancing/selection`).
//!
//! Methods ([`Method`]): smooth weighted round-robin, `least_conn`, `ip_hash`, `hash KEY`,
//! `hash KEY consistent` (ketama), `random`, `random two`, and peak-EWMA (latency-aware; what
//! the config calls nginx Plus's `least_time`). Each module documents how closely it follows
//! nginx. (The parts of this module that open sockets are [`health`], the active health
//! checks a worker's event loop drives, and the connects of [`PeerAddr`], the address of a
//! server.)
//!
//! Passive health follows nginx: `max_fails` failures (counted until a success after the
//! peer's `fail_timeout` has passed) make a peer unavailable for `fail_timeout`; `max_fails=0`
//! disables this; `down` peers are never picked; `max_conns` caps [`Balancer::acquire`]d
//! connections; `backup` peers are used only when no primary peer is usable (by least_conn
//! under `least_conn`, else round-robin); peers already tried for the request are skipped.
//!
//! Active health checks ([`health`], `health_check` in the IR) mark peers down and up again; a
//! peer that is down by them is never picked, like a `down` one, until it passes again.
//!
//! State. [`Balancer::new`] and [`Balancer::from_upstream`] keep all peer state in the
//! balancer (unit tests, one process). [`Balancer::from_upstream_shared`] keeps the state that
//! must agree across worker processes — active connections, passive-health failures, the
//! active-health verdict — in a [`SharedUpstreams`] mapping made by the master before fork,
//! and only the per-worker parts (round-robin weights, the latency estimate, random
//! generator) in the balancer; see [`shared`] for the split and its consistency.

mod addr;
mod hash;
pub mod health;
mod ip_hash;
mod least_conn;
mod peak_ewma;
mod peer;
mod random;
mod round_robin;
pub mod shared;

use std::time::{Duration, Instant};

use proton_ir::{Balance, Upstream};

pub use addr::{ConnectError, PeerAddr};
pub use hash::{crc32, Ring, POINTS_PER_WEIGHT};
pub use health::HealthChecks;
pub use peak_ewma::DEFAULT_HALF_LIFE;
pub use peer::{Health, Peer, PeerState, DEFAULT_FAIL_TIMEOUT};
pub use random::XorShift64;
pub use shared::SharedUpstreams;

use peer::{Pool, Tier};
use shared::SharedPeers;

/// A balancing method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Smooth weighted round-robin (nginx's default).
    RoundRobin,
    /// Fewest active connections per weight; ties by round-robin.
    LeastConn,
    /// Client address (first three IPv4 octets / whole IPv6 address) hashed onto the peers.
    IpHash,
    /// `hash KEY`: the caller evaluates KEY and passes its bytes.
    Hash,
    /// `hash KEY consistent` (ketama ring).
    HashConsistent,
    /// `random`: weighted random.
    Random,
    /// `random two`: the less loaded of two weighted random draws.
    RandomTwo,
    /// Lowest latency estimate × (active + 1); the estimate decays with `half_life`.
    PeakEwma { half_life: Duration },
}

impl From<&Balance> for Method {
    fn from(b: &Balance) -> Method {
        match b {
            Balance::RoundRobin => Method::RoundRobin,
            Balance::LeastConn => Method::LeastConn,
            Balance::IpHash => Method::IpHash,
            Balance::Hash {
                consistent: false, ..
            } => Method::Hash,
            Balance::Hash {
                consistent: true, ..
            } => Method::HashConsistent,
            Balance::Random { two: false } => Method::Random,
            Balance::Random { two: true } => Method::RandomTwo,
            // nginx Plus's least_time: the latency the caller reports is measured to the
            // response head (`header`) or its last byte (`last_byte`); the method is the same.
            Balance::LeastTime { .. } => Method::PeakEwma {
                half_life: DEFAULT_HALF_LIFE,
            },
        }
    }
}

/// How an attempt on a peer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The peer answered; `latency` feeds peak-EWMA.
    Success { latency: Duration },
    /// An error or timeout that counts against `max_fails` (the caller decides which, as
    /// nginx's `proxy_next_upstream`).
    Failure,
}

/// The method-specific part of a balancer.
#[derive(Debug, Clone)]
enum Kind {
    RoundRobin,
    LeastConn,
    IpHash,
    Hash,
    Consistent(Ring),
    Random { two: bool, rng: XorShift64 },
    PeakEwma { half_life: Duration, cursor: usize },
}

/// The peers of one upstream group, their state, and a balancing method.
#[derive(Debug, Clone)]
pub struct Balancer {
    pool: Pool,
    kind: Kind,
    /// The shared part of the peers' state, when the balancer is built over shared memory;
    /// `pool.state` then holds a copy of it taken at the last pick or report.
    shared: Option<SharedPeers>,
    /// Each peer's configured `max_fails`, kept once [`Balancer::readdress`] changes which
    /// peers are usable (empty until then).
    max_fails: Vec<u32>,
    /// [`Balancer::readdress`] left one peer: its failures are not counted at all
    /// (nginx's `single`).
    single: bool,
}

impl Balancer {
    /// A balancer over `peers` (index = position in the slice). `seed` seeds the random
    /// methods and is ignored by the others.
    pub fn new(method: Method, mut peers: Vec<Peer>, seed: u64) -> Balancer {
        // A group of one server never marks it failed (nginx's `single` peer list): with
        // no other server to go to, refusing requests for fail_timeout helps nobody.
        if let [only] = peers.as_mut_slice() {
            only.max_fails = 0;
        }
        let pool = Pool::new(peers);
        let kind = match method {
            Method::RoundRobin => Kind::RoundRobin,
            Method::LeastConn => Kind::LeastConn,
            Method::IpHash => Kind::IpHash,
            Method::Hash => Kind::Hash,
            Method::HashConsistent => Kind::Consistent(Ring::new(&pool)),
            Method::Random | Method::RandomTwo => Kind::Random {
                two: method == Method::RandomTwo,
                rng: XorShift64::new(seed),
            },
            Method::PeakEwma { half_life } => Kind::PeakEwma {
                half_life,
                cursor: 0,
            },
        };
        Balancer {
            pool,
            kind,
            shared: None,
            max_fails: Vec::new(),
            single: false,
        }
    }

    /// The balancer of an IR upstream group; peer `i` is `upstream.servers[i]`.
    pub fn from_upstream(upstream: &Upstream, seed: u64) -> Balancer {
        Balancer::new(
            Method::from(&upstream.balance),
            upstream.servers.iter().map(Peer::from).collect(),
            seed,
        )
    }

    /// The balancer of IR upstream `upstream_index`, with its peers' active connections,
    /// passive and active health in `shared` (the generation's [`SharedUpstreams`]), so that
    /// every worker's balancer sees the same. The balancer keeps the mapping alive. When
    /// `shared` has no such upstream or a different number of servers (an upstream of
    /// another IR), the balancer keeps private state instead.
    pub fn from_upstream_shared(
        upstream: &Upstream,
        shared: &SharedUpstreams,
        upstream_index: usize,
        seed: u64,
    ) -> Balancer {
        let mut b = Balancer::from_upstream(upstream, seed);
        b.shared = shared
            .group(upstream_index)
            .filter(|g| g.len() == b.pool.peers.len());
        if let Some(sh) = &b.shared {
            sh.load_all(&mut b.pool.state);
        }
        b
    }

    /// True when the peer state is shared with other workers.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The configured peers.
    pub fn peers(&self) -> &[Peer] {
        &self.pool.peers
    }

    /// The run-time state of peer `i` (the shared values read now).
    pub fn state(&self, i: usize) -> Option<PeerState> {
        let mut st = self.pool.state.get(i)?.clone();
        if let Some(sh) = &self.shared {
            sh.load(i, &mut st);
        }
        Some(st)
    }

    /// A `server … resolve` peer got address `addr` (`None`: it has none and is not part
    /// of the group): from now on it is a new server with fresh state. Call
    /// [`Balancer::settle`] once the peers of a change are all readdressed.
    pub fn readdress(&mut self, i: usize, addr: Option<String>) {
        let Some(p) = self.pool.peers.get_mut(i) else {
            return;
        };
        p.absent = addr.is_none();
        if let Some(a) = addr {
            p.address = a;
        }
        if let Some(st) = self.pool.state.get_mut(i) {
            // (Connections still open to the former address stay counted until released.)
            *st = PeerState {
                effective_weight: i64::from(p.weight),
                active: st.active,
                ..PeerState::default()
            };
        }
    }

    /// After [`Balancer::readdress`]: a consistent-hash ring gets the peers' points anew, and,
    /// as nginx recounts its peers after a name is resolved again, when one peer is left
    /// (counting `down` ones) and no backup peer, it is the group's `single` one, never
    /// marked failed (see [`Balancer::new`]).
    pub fn settle(&mut self) {
        let peers = &mut self.pool.peers;
        if self.max_fails.is_empty() {
            self.max_fails = peers.iter().map(|p| p.max_fails).collect();
        }
        for (p, &m) in peers.iter_mut().zip(&self.max_fails) {
            p.max_fails = m;
        }
        let present = peers.iter().filter(|p| !p.absent).count();
        self.single = present == 1 && !peers.iter().any(|p| p.backup && !p.absent);
        if self.single {
            if let Some(only) = peers.iter_mut().find(|p| !p.absent) {
                only.max_fails = 0;
            }
        }
        if let Kind::Consistent(ring) = &mut self.kind {
            *ring = Ring::new(&self.pool);
        }
    }

    /// Sets the active-health verdict of peer `i` (what the checker does; for tests and
    /// tools). A `Down` peer is not picked until it is set `Up` or `Unknown`.
    pub fn set_health(&mut self, i: usize, health: Health) {
        if let Some(st) = self.pool.state.get_mut(i) {
            st.health = health;
            if let Some(sh) = &self.shared {
                sh.set_health(i, health);
            }
        }
    }

    /// Chooses a peer for a request, or `None` when no peer is usable. `key` is the evaluated
    /// hash key (`hash`), the client address bytes (`ip_hash`: 4 or 16 bytes), or ignored.
    /// `tried` lists the peers this request already tried. Does not count a connection: call
    /// [`Balancer::acquire`] when connecting.
    pub fn pick(&mut self, key: &[u8], now: Instant, tried: &[usize]) -> Option<usize> {
        if let Some(sh) = &self.shared {
            sh.load_all(&mut self.pool.state);
        }
        // Each round that loses a re-admission race leaves that peer failed in the state
        // read, so the next round chooses another: at most one round per peer, plus one.
        for _ in 0..=self.pool.peers.len() {
            let chosen = self.select(key, now, tried)?;
            if self.admit(chosen, now) {
                return Some(chosen);
            }
        }
        None
    }

    /// Records that `chosen` was picked at `now` (nginx's `checked` update, which re-admits
    /// a failed peer once its fail_timeout has run out). False when, with shared state,
    /// another worker re-admitted or failed the peer since its state was read: that
    /// worker's request is the one probe of a failed peer, and this pick must choose again.
    fn admit(&mut self, chosen: usize, now: Instant) -> bool {
        let (Some(p), Some(st)) = (self.pool.peers.get(chosen), self.pool.state.get_mut(chosen))
        else {
            return true;
        };
        match &self.shared {
            // The `checked` update matters only to a peer with failures (a failure sets it
            // too), so a healthy peer costs no shared write here.
            Some(_) if st.fails == 0 => true,
            Some(sh) => {
                if sh.mark_picked(chosen, now, p.fail_timeout) {
                    return true;
                }
                sh.load(chosen, st);
                !peer::failed(p, st, now)
            }
            None => {
                self.pool.mark_picked(chosen, now);
                true
            }
        }
    }

    /// The balancing method's choice over the current state (primary peers, then backup
    /// ones), without re-admitting it.
    fn select(&mut self, key: &[u8], now: Instant, tried: &[usize]) -> Option<usize> {
        let pool = &mut self.pool;
        let primary = match &mut self.kind {
            Kind::RoundRobin => round_robin::pick(pool, Tier::Primary, now, tried),
            Kind::LeastConn => least_conn::pick(pool, Tier::Primary, now, tried),
            Kind::IpHash => ip_hash::pick(pool, key, now, tried),
            Kind::Hash => hash::pick(pool, key, now, tried),
            Kind::Consistent(ring) => ring.pick(pool, key, now, tried),
            Kind::Random { two, rng } => random::pick(pool, rng, *two, now, tried),
            Kind::PeakEwma { half_life, cursor } => {
                peak_ewma::pick(pool, cursor, *half_life, Tier::Primary, now, tried)
            }
        };
        primary.or_else(|| match &mut self.kind {
            Kind::LeastConn => least_conn::pick(pool, Tier::Backup, now, tried),
            Kind::PeakEwma { half_life, cursor } => {
                peak_ewma::pick(pool, cursor, *half_life, Tier::Backup, now, tried)
            }
            _ => round_robin::pick(pool, Tier::Backup, now, tried),
        })
    }

    /// Records how an attempt on `peer` ended (nginx's `free_peer`): a failure counts towards
    /// `max_fails` and lowers the peer's round-robin weight by `weight / max_fails`; a success
    /// after the peer was re-admitted clears its failures, and feeds the latency estimate.
    pub fn report(&mut self, peer: usize, outcome: Outcome, now: Instant) {
        // Only peak-EWMA reads the latency estimate: the other methods skip keeping it.
        let ewma_half_life = match self.kind {
            Kind::PeakEwma { half_life, .. } => Some(half_life),
            _ => None,
        };
        let (Some(p), Some(st)) = (self.pool.peers.get(peer), self.pool.state.get_mut(peer)) else {
            return;
        };
        if let Some(sh) = &self.shared {
            sh.load(peer, st);
        }
        match outcome {
            Outcome::Success { latency } => {
                let readmitted = match (st.failed_at, st.checked) {
                    (None, _) => true,
                    (Some(f), Some(c)) => f < c,
                    (Some(_), None) => false,
                };
                if readmitted && st.fails > 0 {
                    st.fails = 0;
                    if let Some(sh) = &self.shared {
                        sh.clear_fails(peer);
                    }
                }
                if let Some(half_life) = ewma_half_life {
                    peak_ewma::observe(st, latency, now, half_life);
                }
            }
            Outcome::Failure if self.single => {}
            Outcome::Failure => {
                match &self.shared {
                    Some(sh) => {
                        sh.fail(peer, now);
                        sh.load(peer, st);
                    }
                    None => {
                        st.fails = st.fails.saturating_add(1);
                        st.failed_at = Some(now);
                        st.checked = Some(now);
                    }
                }
                if let Some(drop) = p.weight.checked_div(p.max_fails) {
                    st.effective_weight = (st.effective_weight - i64::from(drop)).max(0);
                }
            }
        }
    }

    /// Counts a connection opened to `peer` (least_conn, random two, peak-EWMA, max_conns).
    pub fn acquire(&mut self, peer: usize) {
        if let Some(st) = self.pool.state.get_mut(peer) {
            st.active = match &self.shared {
                Some(sh) => sh.acquire(peer),
                None => st.active.saturating_add(1),
            };
        }
    }

    /// Counts a connection opened to `peer` only if that keeps it within `max_conns`, as one
    /// atomic step: with shared state another worker may have filled the peer since
    /// [`Balancer::pick`]. On `false` nothing is counted; add the peer to `tried` and pick
    /// again.
    pub fn try_acquire(&mut self, peer: usize) -> bool {
        let (Some(p), Some(st)) = (self.pool.peers.get(peer), self.pool.state.get_mut(peer)) else {
            return false;
        };
        let next = match &self.shared {
            Some(sh) => sh.try_acquire(peer, p.max_conns),
            None => {
                (p.max_conns == 0 || st.active < p.max_conns).then(|| st.active.saturating_add(1))
            }
        };
        match next {
            Some(n) => {
                st.active = n;
                true
            }
            None => false,
        }
    }

    /// Counts a connection to `peer` closed.
    pub fn release(&mut self, peer: usize) {
        if let Some(st) = self.pool.state.get_mut(peer) {
            st.active = match &self.shared {
                Some(sh) => sh.release(peer),
                None => st.active.saturating_sub(1),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_server_is_never_marked_failed() {
        let mut b = Balancer::new(Method::RoundRobin, vec![Peer::new("a:1", 1)], 1);
        let now = Instant::now();
        for _ in 0..5 {
            b.report(0, Outcome::Failure, now);
        }
        assert_eq!(b.pick(b"", now, &[]), Some(0));
        // …but a tried server is still skipped, and `down` still holds.
        assert_eq!(b.pick(b"", now, &[0]), None);
    }

    const ALL: [Method; 8] = [
        Method::RoundRobin,
        Method::LeastConn,
        Method::IpHash,
        Method::Hash,
        Method::HashConsistent,
        Method::Random,
        Method::RandomTwo,
        Method::PeakEwma {
            half_life: DEFAULT_HALF_LIFE,
        },
    ];
    const KEY: &[u8] = &[10, 0, 0, 1];

    fn peers(n: usize) -> Vec<Peer> {
        (0..n)
            .map(|i| Peer::new(format!("10.0.0.{i}:80"), 1))
            .collect()
    }

    #[test]
    fn max_fails_then_back_after_fail_timeout() {
        for m in ALL {
            let mut ps = peers(2);
            ps[0].max_fails = 2;
            let mut b = Balancer::new(m, ps, 3);
            let t0 = Instant::now();
            b.report(0, Outcome::Failure, t0);
            assert!(
                (0..10).any(|_| b.pick(KEY, t0, &[1]) == Some(0)),
                "{m:?}: one failure of two"
            );
            b.report(0, Outcome::Failure, t0);
            let t1 = t0 + Duration::from_secs(5);
            for _ in 0..20 {
                assert_eq!(b.pick(KEY, t1, &[]), Some(1), "{m:?}");
            }
            assert_eq!(b.pick(KEY, t1, &[1]), None, "{m:?}");
            let t2 = t0 + Duration::from_secs(11);
            assert_eq!(
                b.pick(KEY, t2, &[1]),
                Some(0),
                "{m:?}: back after fail_timeout"
            );
            b.report(
                0,
                Outcome::Success {
                    latency: Duration::from_millis(1),
                },
                t2,
            );
            assert_eq!(b.state(0).map(|s| s.fails), Some(0), "{m:?}");
            // The success cleared the count: one new failure (1 < max_fails=2) keeps it usable.
            b.report(0, Outcome::Failure, t2);
            assert_eq!(b.pick(KEY, t2, &[1]), Some(0), "{m:?}");
        }
    }

    /// When fail_timeout runs out, one request probes the failed peer; the others go
    /// elsewhere until it answers (every method, picks every 50 µs for 20 ms).
    #[test]
    fn one_probe_after_fail_timeout() {
        for m in ALL {
            let mut ps = peers(2);
            ps[0].max_fails = 1;
            let mut b = Balancer::new(m, ps, 23);
            let t0 = Instant::now();
            b.report(0, Outcome::Failure, t0);
            let probes = (0..400u64)
                .filter(|k| {
                    let now = t0 + DEFAULT_FAIL_TIMEOUT + Duration::from_micros(50 * k);
                    b.pick(KEY, now, &[]) == Some(0)
                })
                .count();
            assert!(probes <= 1, "{m:?}: {probes} probes");
            // The hash methods may not map KEY to the failed peer; with it the only choice
            // left, it is probed exactly once.
            let mut ps = peers(2);
            ps[0].max_fails = 1;
            let mut b = Balancer::new(m, ps, 29);
            b.report(0, Outcome::Failure, t0);
            let probes = (0..400u64)
                .filter(|k| {
                    let now = t0 + DEFAULT_FAIL_TIMEOUT + Duration::from_micros(50 * k);
                    b.pick(KEY, now, &[1]) == Some(0)
                })
                .count();
            assert_eq!(probes, 1, "{m:?}");
        }
    }

    #[test]
    fn failure_right_after_readmission_blocks_again() {
        let mut ps = peers(2);
        ps[0].max_fails = 1;
        let mut b = Balancer::new(Method::RoundRobin, ps, 0);
        let t0 = Instant::now();
        b.report(0, Outcome::Failure, t0);
        assert_eq!(b.pick(KEY, t0, &[1]), None);
        let t1 = t0 + DEFAULT_FAIL_TIMEOUT + Duration::from_secs(1);
        assert_eq!(b.pick(KEY, t1, &[1]), Some(0));
        b.report(0, Outcome::Failure, t1);
        assert_eq!(b.pick(KEY, t1, &[1]), None);
    }

    #[test]
    fn max_fails_zero_disables() {
        let mut ps = peers(1);
        ps[0].max_fails = 0;
        let mut b = Balancer::new(Method::RoundRobin, ps, 0);
        let t0 = Instant::now();
        for _ in 0..10 {
            b.report(0, Outcome::Failure, t0);
        }
        assert_eq!(b.pick(KEY, t0, &[]), Some(0));
    }

    #[test]
    fn down_peers_never_picked() {
        for m in ALL {
            let mut ps = peers(3);
            ps[1].down = true;
            let mut b = Balancer::new(m, ps, 5);
            let now = Instant::now();
            for k in 0..200u32 {
                let key = k.to_be_bytes();
                assert_ne!(b.pick(&key, now, &[]), Some(1), "{m:?}");
            }
        }
    }

    #[test]
    fn backup_only_when_primaries_unavailable() {
        for m in ALL {
            let mut ps = peers(3);
            ps[2].backup = true;
            let mut b = Balancer::new(m, ps, 11);
            let now = Instant::now();
            for k in 0..200u32 {
                let key = k.to_be_bytes();
                assert_ne!(b.pick(&key, now, &[]), Some(2), "{m:?}");
            }
            assert_eq!(b.pick(KEY, now, &[0, 1]), Some(2), "{m:?}");
            b.report(0, Outcome::Failure, now);
            b.report(1, Outcome::Failure, now);
            assert_eq!(b.pick(KEY, now, &[]), Some(2), "{m:?}");
            assert_eq!(b.pick(KEY, now, &[2]), None, "{m:?}");
        }
    }

    #[test]
    fn max_conns_respected() {
        for m in ALL {
            let mut ps = peers(2);
            ps[0].max_conns = 2;
            ps[1].max_conns = 1;
            let mut b = Balancer::new(m, ps, 13);
            let now = Instant::now();
            let mut got = Vec::new();
            while let Some(i) = b.pick(KEY, now, &[]) {
                b.acquire(i);
                got.push(i);
                assert!(got.len() <= 3, "{m:?}: {got:?}");
            }
            got.sort_unstable();
            assert_eq!(got, vec![0, 0, 1], "{m:?}");
            b.release(1);
            assert_eq!(b.pick(KEY, now, &[]), Some(1), "{m:?}");
        }
    }

    #[test]
    fn tried_peers_skipped_by_every_method() {
        for m in ALL {
            let mut b = Balancer::new(m, peers(4), 17);
            let now = Instant::now();
            for k in 0..50u32 {
                let key = k.to_be_bytes();
                assert_eq!(b.pick(&key, now, &[0, 1, 3]), Some(2), "{m:?}");
            }
        }
    }

    #[test]
    fn all_unavailable_returns_none() {
        for m in ALL {
            let mut ps = peers(3);
            ps[0].down = true;
            ps[1].max_conns = 1;
            let mut b = Balancer::new(m, ps, 19);
            let now = Instant::now();
            b.acquire(1);
            b.report(2, Outcome::Failure, now);
            assert_eq!(b.pick(KEY, now, &[]), None, "{m:?}");
            let mut empty = Balancer::new(m, Vec::new(), 0);
            assert_eq!(empty.pick(KEY, now, &[]), None, "{m:?}");
        }
    }

    #[test]
    fn out_of_range_indices_are_ignored() {
        let mut b = Balancer::new(Method::LeastConn, peers(1), 0);
        let now = Instant::now();
        b.acquire(9);
        b.release(9);
        b.report(9, Outcome::Failure, now);
        assert_eq!(b.pick(KEY, now, &[]), Some(0));
        assert!(b.state(9).is_none());
    }

    #[test]
    fn one_usable_peer_left_is_never_failed() {
        let peers = vec![
            Peer::new("a:80", 1),
            Peer::new("b:80", 1),
            Peer::new("c:80", 1),
        ];
        let mut b = Balancer::new(Method::RoundRobin, peers, 1);
        let now = Instant::now();
        b.readdress(1, None);
        b.readdress(2, None);
        b.settle();
        // One peer left: its failures do not take it out.
        for _ in 0..3 {
            assert_eq!(b.pick(KEY, now, &[]), Some(0));
            b.report(0, Outcome::Failure, now);
        }
        assert_eq!(b.pick(KEY, now, &[]), Some(0));
        // Two again: max_fails=1 applies as configured.
        b.readdress(2, Some("10.0.0.3:80".into()));
        b.settle();
        b.report(2, Outcome::Failure, now);
        assert_eq!(b.pick(KEY, now, &[]), Some(0));
        assert_eq!(b.pick(KEY, now, &[]), Some(0));
    }

    #[test]
    fn builds_from_ir() {
        let server = |address: &str, backup| proton_ir::UpstreamServer {
            address: address.to_string(),
            weight: 0,
            max_fails: 3,
            fail_timeout_ms: 30_000,
            backup,
            down: false,
            max_conns: 0,
            resolve: false,
        };
        let up = Upstream {
            name: "app".into(),
            explicit: true,
            servers: vec![server("a:80", false), server("b:80", true)],
            balance: Balance::Random { two: true },
            keepalive: 0,
            keepalive_timeout_ms: 60_000,
            keepalive_requests: 1000,
            keepalive_time_ms: 3_600_000,
            health_check: None,
            resolver: None,
            resolver_timeout_ms: 30_000,
        };
        let b = Balancer::from_upstream(&up, 1);
        assert_eq!(b.peers().len(), 2);
        assert_eq!(b.peers()[0].weight, 1);
        assert_eq!(b.peers()[0].fail_timeout, Duration::from_secs(30));
        assert!(b.peers()[1].backup);
        assert!(matches!(b.kind, Kind::Random { two: true, .. }));
    }
}
