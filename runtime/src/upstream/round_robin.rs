//! Smooth weighted round-robin, exactly nginx's `ngx_http_upstream_get_peer`: every candidate's
//! `current_weight` grows by its `effective_weight`, the largest wins (first in config order on
//! a tie) and loses the total. Weights 5,1,1 give `a a b a c a a`.
//!
//! Also the tie-breaker of least_conn and the fallback of the hash and random methods.

use std::time::Instant;

use super::peer::{Peer, PeerState, Pool, Tier};

/// One smooth-WRR step over the peers `accept` lets through; `None` when it accepts none.
pub(super) fn smooth_wrr(
    pool: &mut Pool,
    mut accept: impl FnMut(usize, &Peer, &PeerState) -> bool,
) -> Option<usize> {
    let mut best: Option<(usize, i64)> = None;
    let mut total: i64 = 0;
    for (i, (peer, st)) in pool.peers.iter().zip(pool.state.iter_mut()).enumerate() {
        if !accept(i, peer, st) {
            continue;
        }
        st.current_weight += st.effective_weight;
        total += st.effective_weight;
        if st.effective_weight < i64::from(peer.weight) {
            st.effective_weight += 1;
        }
        if best.is_none_or(|(_, cw)| st.current_weight > cw) {
            best = Some((i, st.current_weight));
        }
    }
    let (i, _) = best?;
    if let Some(st) = pool.state.get_mut(i) {
        st.current_weight -= total;
    }
    Some(i)
}

/// Round-robin over the usable peers of `tier`.
pub(super) fn pick(pool: &mut Pool, tier: Tier, now: Instant, tried: &[usize]) -> Option<usize> {
    smooth_wrr(pool, |i, p, st| {
        tier.holds(p) && super::peer::usable(i, p, st, now, tried)
    })
}

#[cfg(test)]
mod tests {
    use super::super::peer::Peer;
    use super::*;

    fn pool(weights: &[u32]) -> Pool {
        Pool::new(
            weights
                .iter()
                .enumerate()
                .map(|(i, w)| Peer::new(format!("10.0.0.{i}:80"), *w))
                .collect(),
        )
    }

    #[test]
    fn nginx_documented_sequence_for_5_1_1() {
        let mut p = pool(&[5, 1, 1]);
        let now = Instant::now();
        let seq: String = (0..14)
            .map(|_| match pick(&mut p, Tier::Primary, now, &[]) {
                Some(0) => 'a',
                Some(1) => 'b',
                Some(2) => 'c',
                _ => '?',
            })
            .collect();
        assert_eq!(seq, "aabacaaaabacaa");
    }

    #[test]
    fn distribution_follows_weights() {
        let mut p = pool(&[3, 2, 1]);
        let now = Instant::now();
        let mut counts = [0u32; 3];
        for _ in 0..10_000 {
            if let Some(i) = pick(&mut p, Tier::Primary, now, &[]) {
                counts[i] += 1;
            }
        }
        for (c, w) in counts.iter().zip([3.0, 2.0, 1.0]) {
            let share = f64::from(*c) / 10_000.0;
            assert!((share - w / 6.0).abs() < 0.01, "{counts:?}");
        }
    }

    #[test]
    fn tried_peers_are_skipped() {
        let mut p = pool(&[5, 1, 1]);
        let now = Instant::now();
        for _ in 0..20 {
            let i = pick(&mut p, Tier::Primary, now, &[0, 2]);
            assert_eq!(i, Some(1));
        }
        assert_eq!(pick(&mut p, Tier::Primary, now, &[0, 1, 2]), None);
    }
}
