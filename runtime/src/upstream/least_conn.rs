//! `least_conn`, as nginx: the usable peer with the fewest active connections per unit of
//! weight (`active_a * weight_b < active_b * weight_a`); several such peers share the load by
//! smooth weighted round-robin.

use std::time::Instant;

use super::peer::{usable, Pool, Tier};
use super::round_robin::smooth_wrr;

/// Picks the least-loaded usable peer of `tier`.
pub(super) fn pick(pool: &mut Pool, tier: Tier, now: Instant, tried: &[usize]) -> Option<usize> {
    let mut best: Option<(u64, u64)> = None;
    for (i, (p, st)) in pool.peers.iter().zip(&pool.state).enumerate() {
        if !tier.holds(p) || !usable(i, p, st, now, tried) {
            continue;
        }
        let (a, w) = (u64::from(st.active), u64::from(p.weight.max(1)));
        if best.is_none_or(|(ba, bw)| a * bw < ba * w) {
            best = Some((a, w));
        }
    }
    let (ba, bw) = best?;
    smooth_wrr(pool, |i, p, st| {
        tier.holds(p)
            && usable(i, p, st, now, tried)
            && u64::from(st.active) * bw == ba * u64::from(p.weight.max(1))
    })
}

#[cfg(test)]
mod tests {
    use super::super::peer::Peer;
    use super::*;

    #[test]
    fn prefers_least_loaded_per_weight() {
        let mut pool = Pool::new(vec![
            Peer::new("a:80", 1),
            Peer::new("b:80", 2),
            Peer::new("c:80", 1),
        ]);
        let now = Instant::now();
        pool.state[0].active = 1;
        pool.state[1].active = 1; // 1/2 per weight: less loaded than a
        pool.state[2].active = 2;
        for _ in 0..5 {
            assert_eq!(pick(&mut pool, Tier::Primary, now, &[]), Some(1));
        }
        pool.state[1].active = 3; // 3/2 now: a (1/1) wins
        assert_eq!(pick(&mut pool, Tier::Primary, now, &[]), Some(0));
        // Skipping a tried peer falls to the next least loaded.
        assert_eq!(pick(&mut pool, Tier::Primary, now, &[0]), Some(1));
    }

    #[test]
    fn ties_rotate_by_weight() {
        let mut pool = Pool::new(vec![Peer::new("a:80", 1), Peer::new("b:80", 1)]);
        let now = Instant::now();
        let picks: Vec<_> = (0..4)
            .filter_map(|_| pick(&mut pool, Tier::Primary, now, &[]))
            .collect();
        assert_eq!(picks, vec![0, 1, 0, 1]);
    }
}
