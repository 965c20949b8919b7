//! The servers of an upstream group as configured ([`Peer`]), the state a balancer keeps for
//! each ([`PeerState`]), and nginx's passive-health rules over both.
//!
//! Nothing here reads a clock: every function that needs the time takes `now`.

use std::time::{Duration, Instant};

use proton_ir::UpstreamServer;

/// nginx's default `fail_timeout`.
pub const DEFAULT_FAIL_TIMEOUT: Duration = Duration::from_secs(10);

/// One `server` of an `upstream` group, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// `host:port` or `unix:/path` as written; the consistent-hash ring is built from it.
    pub address: String,
    /// At least 1 (nginx rejects `weight=0`; a 0 read from an IR is treated as 1).
    pub weight: u32,
    /// Failures that make the peer unavailable; 0 disables passive health for it.
    pub max_fails: u32,
    /// How long a failed peer stays unavailable (and nginx's failure-counting window).
    pub fail_timeout: Duration,
    /// Used only when no primary peer is available.
    pub backup: bool,
    /// Never picked.
    pub down: bool,
    /// Not a server at the moment: a `server … resolve` peer without an address. Unlike a
    /// `down` one it is not part of the group at all (no weight, no ring points).
    pub absent: bool,
    /// Cap on active connections; 0 = unlimited.
    pub max_conns: u32,
}

impl Peer {
    /// A primary peer with nginx's defaults: `max_fails=1 fail_timeout=10s`, no cap.
    pub fn new(address: impl Into<String>, weight: u32) -> Peer {
        Peer {
            address: address.into(),
            weight: weight.max(1),
            max_fails: 1,
            fail_timeout: DEFAULT_FAIL_TIMEOUT,
            backup: false,
            down: false,
            absent: false,
            max_conns: 0,
        }
    }
}

impl From<&UpstreamServer> for Peer {
    fn from(s: &UpstreamServer) -> Peer {
        Peer {
            address: s.address.clone(),
            weight: s.weight.max(1),
            max_fails: s.max_fails,
            fail_timeout: Duration::from_millis(s.fail_timeout_ms),
            backup: s.backup,
            down: s.down,
            absent: false,
            max_conns: s.max_conns,
        }
    }
}

/// What active health checks (`health_check`) say about a peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Health {
    /// Not checked, or not enough checks yet to decide: usable.
    #[default]
    Unknown,
    /// Passed `passes` checks in a row: usable.
    Up,
    /// Failed `fails` checks in a row: never picked until it is up again.
    Down,
}

/// What a balancer knows about one peer at run time. With a balancer over
/// [`super::SharedUpstreams`], `active`, `fails`, `checked`, `failed_at` and `health` are a
/// copy of the shared values taken at the last pick or report; the rest is per balancer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerState {
    /// Connections currently open to the peer ([`super::Balancer::acquire`]/`release`).
    pub active: u32,
    /// Failures counted since the last reset (nginx's `fails`).
    pub fails: u32,
    /// When the peer was last (re)admitted: set by a failure, and by a pick once
    /// `fail_timeout` has passed since the previous value (nginx's `checked`).
    pub checked: Option<Instant>,
    /// When the last failure happened (nginx's `accessed`).
    pub failed_at: Option<Instant>,
    /// Peak-EWMA latency estimate in nanoseconds, as stored at `ewma_at`.
    pub ewma_ns: f64,
    /// When `ewma_ns` was last updated; `None` = no latency observed yet.
    pub ewma_at: Option<Instant>,
    /// Smooth weighted round-robin: nginx's `current_weight`.
    pub current_weight: i64,
    /// Smooth weighted round-robin: nginx's `effective_weight` (lowered by failures, raised
    /// by one per pick back to `weight`).
    pub effective_weight: i64,
    /// The verdict of active health checks.
    pub health: Health,
}

/// Primary peers, or the backup peers used when no primary is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Primary,
    Backup,
}

impl Tier {
    /// Whether `peer` belongs to this tier.
    pub fn holds(self, peer: &Peer) -> bool {
        peer.backup == (self == Tier::Backup) && !peer.absent
    }
}

/// Whole milliseconds from `since` to `now` (0 when `now` is earlier). Every fail_timeout
/// check counts time in these, because the state shared by the workers stores times as
/// whole milliseconds ([`super::shared`]): the "is it failed" check and the re-admission
/// must agree to the millisecond, or every request of the millisecond in which they
/// disagree goes to a server that is still dead.
pub fn elapsed_ms(since: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX)
}

/// Whether `fail_timeout` has run out `elapsed_ms` after `checked`: nginx's
/// `now - checked > fail_timeout`, in whole milliseconds.
pub fn fail_timeout_passed(elapsed_ms: u64, fail_timeout: Duration) -> bool {
    elapsed_ms > u64::try_from(fail_timeout.as_millis()).unwrap_or(u64::MAX)
}

/// True when the peer has failed `max_fails` times and its `fail_timeout` has not passed.
pub fn failed(peer: &Peer, st: &PeerState, now: Instant) -> bool {
    peer.max_fails > 0
        && st.fails >= peer.max_fails
        && st
            .checked
            .is_some_and(|c| !fail_timeout_passed(elapsed_ms(c, now), peer.fail_timeout))
}

/// True when the peer may take this request: not `down`, not down by active health checks,
/// not failed, under `max_conns`, and not already tried for this request.
pub fn usable(i: usize, peer: &Peer, st: &PeerState, now: Instant, tried: &[usize]) -> bool {
    !peer.down
        && st.health != Health::Down
        && !failed(peer, st, now)
        && (peer.max_conns == 0 || st.active < peer.max_conns)
        && !tried.contains(&i)
}

/// The peers of a group with their state, index-aligned.
#[derive(Debug, Clone)]
pub struct Pool {
    pub peers: Vec<Peer>,
    pub state: Vec<PeerState>,
}

impl Pool {
    /// Fresh state for `peers`.
    pub fn new(peers: Vec<Peer>) -> Pool {
        let state = peers
            .iter()
            .map(|p| PeerState {
                effective_weight: i64::from(p.weight),
                ..PeerState::default()
            })
            .collect();
        Pool { peers, state }
    }

    /// Whether peer `i` is in `tier` and usable for this request.
    pub fn eligible(&self, i: usize, tier: Tier, now: Instant, tried: &[usize]) -> bool {
        match (self.peers.get(i), self.state.get(i)) {
            (Some(p), Some(st)) => tier.holds(p) && usable(i, p, st, now, tried),
            _ => false,
        }
    }

    /// Sum of the configured weights of every peer in `tier` (usable or not), as nginx's
    /// `total_weight` used by the hash methods.
    pub fn total_weight(&self, tier: Tier) -> u64 {
        self.peers
            .iter()
            .filter(|p| tier.holds(p))
            .map(|p| u64::from(p.weight))
            .sum()
    }

    /// Number of peers in `tier`.
    pub fn count(&self, tier: Tier) -> usize {
        self.peers.iter().filter(|p| tier.holds(p)).count()
    }

    /// The peer of `tier` that weight point `w` (< `total_weight`) falls on, walking the
    /// peers in config order as nginx does.
    pub fn weighted_index(&self, tier: Tier, mut w: u64) -> Option<usize> {
        for (i, p) in self.peers.iter().enumerate() {
            if !tier.holds(p) {
                continue;
            }
            let pw = u64::from(p.weight);
            if w < pw {
                return Some(i);
            }
            w -= pw;
        }
        None
    }

    /// Called when peer `i` is chosen: re-admits a peer whose `fail_timeout` has passed, so
    /// that a success of this request resets its failure count (nginx's `checked` update).
    /// (A balancer over shared memory does this on the shared value instead.)
    pub fn mark_picked(&mut self, i: usize, now: Instant) {
        if let (Some(p), Some(st)) = (self.peers.get(i), self.state.get_mut(i)) {
            let expired = st
                .checked
                .is_none_or(|c| fail_timeout_passed(elapsed_ms(c, now), p.fail_timeout));
            if expired {
                st.checked = Some(now);
            }
        }
    }
}
