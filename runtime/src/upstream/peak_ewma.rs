//! Peak-EWMA, a latency-aware method (what nginx Plus sells as `least_time`), after Finagle's
//! `PeakEwma` and Linkerd's `tower::load::PeakEwma`:
//!
//! * Each peer keeps a latency estimate. A new observation `rtt` taken `td` after the previous
//!   one becomes the estimate at once if it is larger (the "peak": a slowdown is believed at
//!   once), and otherwise is blended in: `cost = cost·w + rtt·(1−w)` with `w = 2^(−td/half_life)`.
//! * When read, the estimate decays towards zero with the same half-life since it was stored,
//!   so a peer that was slow once gets probed again after a quiet while.
//! * The load of a peer is `cost × (active + 1) / weight`; a peer never observed costs 0 when
//!   idle and a large penalty while it has a request in flight (Finagle's rule: new peers get
//!   one probe at a time). The usable peer with the lowest load wins; ties go to the next peer
//!   in a rotation, so identical peers share the load.
//! * Failures do not change the estimate; passive health (`max_fails`) handles them.

use std::time::{Duration, Instant};

use super::peer::{usable, PeerState, Pool, Tier};

/// Default half-life of the latency estimate (Finagle's and Linkerd's decay time, 10 s).
pub const DEFAULT_HALF_LIFE: Duration = Duration::from_secs(10);

/// Load of an unobserved peer with requests in flight (Finagle: `Long.MaxValue >> 16` ns).
const PENALTY_NS: f64 = (i64::MAX >> 16) as f64;

/// The weight of the old estimate after `elapsed`.
fn decay(elapsed: Duration, half_life: Duration) -> f64 {
    if half_life.is_zero() {
        return 0.0;
    }
    0.5f64.powf(elapsed.as_secs_f64() / half_life.as_secs_f64())
}

/// The latency estimate of a peer at `now`, in nanoseconds (0 if never observed).
pub fn cost_ns(st: &PeerState, now: Instant, half_life: Duration) -> f64 {
    match st.ewma_at {
        None => 0.0,
        Some(at) => st.ewma_ns * decay(now.saturating_duration_since(at), half_life),
    }
}

/// Folds a measured latency into the peer's estimate.
pub fn observe(st: &mut PeerState, rtt: Duration, now: Instant, half_life: Duration) {
    let rtt = rtt.as_nanos() as f64;
    st.ewma_ns = match st.ewma_at {
        Some(at) if rtt <= st.ewma_ns => {
            let w = decay(now.saturating_duration_since(at), half_life);
            st.ewma_ns * w + rtt * (1.0 - w)
        }
        _ => rtt,
    };
    st.ewma_at = Some(now);
}

/// The usable peer of `tier` with the lowest load; `cursor` rotates the tie order.
pub(super) fn pick(
    pool: &Pool,
    cursor: &mut usize,
    half_life: Duration,
    tier: Tier,
    now: Instant,
    tried: &[usize],
) -> Option<usize> {
    let n = pool.peers.len();
    if n == 0 {
        return None;
    }
    let start = *cursor % n;
    *cursor = start + 1;
    let mut best: Option<(usize, f64)> = None;
    for k in 0..n {
        let i = (start + k) % n;
        let (Some(p), Some(st)) = (pool.peers.get(i), pool.state.get(i)) else {
            continue;
        };
        if !tier.holds(p) || !usable(i, p, st, now, tried) {
            continue;
        }
        let cost = cost_ns(st, now, half_life);
        let load = if cost == 0.0 && st.active > 0 {
            PENALTY_NS
        } else {
            cost * f64::from(st.active.saturating_add(1)) / f64::from(p.weight.max(1))
        };
        if best.is_none_or(|(_, b)| load < b) {
            best = Some((i, load));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::peer::Peer;
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn peak_then_decay() {
        let t0 = Instant::now();
        let mut st = PeerState::default();
        observe(&mut st, 10 * MS, t0, DEFAULT_HALF_LIFE);
        assert_eq!(st.ewma_ns, 10e6);
        observe(&mut st, 100 * MS, t0, DEFAULT_HALF_LIFE);
        assert_eq!(st.ewma_ns, 100e6, "a slower sample is taken at once");
        // One half-life later a fast sample moves the estimate halfway.
        let t1 = t0 + DEFAULT_HALF_LIFE;
        observe(&mut st, 10 * MS, t1, DEFAULT_HALF_LIFE);
        assert!((st.ewma_ns - 55e6).abs() < 1.0, "{}", st.ewma_ns);
        // Read one half-life later, it has halved.
        let c = cost_ns(&st, t1 + DEFAULT_HALF_LIFE, DEFAULT_HALF_LIFE);
        assert!((c - 27.5e6).abs() < 1.0, "{c}");
    }

    #[test]
    fn steers_away_from_the_slow_peer() {
        let t0 = Instant::now();
        let mut p = Pool::new(vec![Peer::new("fast:1", 1), Peer::new("slow:1", 1)]);
        let mut cursor = 0;
        for k in 0..20u32 {
            let now = t0 + k * MS;
            observe(&mut p.state[0], 5 * MS, now, DEFAULT_HALF_LIFE);
            observe(&mut p.state[1], 80 * MS, now, DEFAULT_HALF_LIFE);
        }
        let now = t0 + 25 * MS;
        let mut fast = 0;
        for _ in 0..100 {
            let i = pick(&p, &mut cursor, DEFAULT_HALF_LIFE, Tier::Primary, now, &[]);
            fast += usize::from(i == Some(0));
        }
        assert_eq!(fast, 100);
        // Enough requests in flight on the fast peer make the slow one cheaper.
        p.state[0].active = 20;
        let i = pick(&p, &mut cursor, DEFAULT_HALF_LIFE, Tier::Primary, now, &[]);
        assert_eq!(i, Some(1));
    }

    #[test]
    fn unobserved_peers_get_one_probe_and_ties_rotate() {
        let now = Instant::now();
        let mut p = Pool::new(vec![Peer::new("a:1", 1), Peer::new("b:1", 1)]);
        let mut cursor = 0;
        let a = pick(&p, &mut cursor, DEFAULT_HALF_LIFE, Tier::Primary, now, &[]);
        let b = pick(&p, &mut cursor, DEFAULT_HALF_LIFE, Tier::Primary, now, &[]);
        assert_ne!(a, b);
        p.state[0].active = 1;
        observe(&mut p.state[1], 50 * MS, now, DEFAULT_HALF_LIFE);
        // a has a request in flight and no estimate yet: b is preferred even though slow.
        let i = pick(&p, &mut cursor, DEFAULT_HALF_LIFE, Tier::Primary, now, &[]);
        assert_eq!(i, Some(1));
    }
}
