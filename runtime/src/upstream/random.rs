//! `random` and `random two`, as nginx's `ngx_http_upstream_random_module`: a peer is drawn with
//! probability proportional to its weight (unusable draws are retried, up to 20, then
//! round-robin); `two` draws two distinct usable peers and keeps the one with fewer active
//! connections per unit of weight (the power of two choices; the first drawn on a tie).
//!
//! The generator is xorshift64* (Vigna), seeded by the caller so tests are reproducible; a
//! draw is `next % total_weight`, whose bias is negligible for realistic weights.

use std::time::Instant;

use super::ip_hash::MAX_TRIES;
use super::peer::{Pool, Tier};
use super::round_robin;

/// xorshift64*: small, fast, seedable; not cryptographic.
#[derive(Debug, Clone)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    /// A generator from `seed` (0 is replaced by a fixed non-zero constant).
    pub fn new(seed: u64) -> XorShift64 {
        XorShift64 {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// One weighted draw among all primary peers (usable or not).
fn draw(pool: &Pool, rng: &mut XorShift64) -> Option<usize> {
    let total = pool.total_weight(Tier::Primary);
    pool.weighted_index(Tier::Primary, rng.below(total))
}

/// A usable primary peer other than `not`, within the remaining attempts.
fn draw_usable(
    pool: &Pool,
    rng: &mut XorShift64,
    tries: &mut u32,
    not: Option<usize>,
    now: Instant,
    tried: &[usize],
) -> Option<usize> {
    while *tries <= MAX_TRIES {
        *tries += 1;
        if let Some(i) = draw(pool, rng) {
            if Some(i) != not && pool.eligible(i, Tier::Primary, now, tried) {
                return Some(i);
            }
        }
    }
    None
}

/// `random` (`two == false`) or `random two` (least connections of two draws).
pub(super) fn pick(
    pool: &mut Pool,
    rng: &mut XorShift64,
    two: bool,
    now: Instant,
    tried: &[usize],
) -> Option<usize> {
    let mut tries = 0;
    let chosen = if two && pool.count(Tier::Primary) >= 2 {
        draw_usable(pool, rng, &mut tries, None, now, tried).and_then(|a| {
            let b = draw_usable(pool, rng, &mut tries, Some(a), now, tried)?;
            let load = |i: usize| {
                let active = pool.state.get(i).map_or(0, |s| u64::from(s.active));
                let weight = pool.peers.get(i).map_or(1, |p| u64::from(p.weight.max(1)));
                (active, weight)
            };
            let ((aa, aw), (ba, bw)) = (load(a), load(b));
            Some(if ba * aw < aa * bw { b } else { a })
        })
    } else {
        draw_usable(pool, rng, &mut tries, None, now, tried)
    };
    chosen.or_else(|| round_robin::pick(pool, Tier::Primary, now, tried))
}

#[cfg(test)]
mod tests {
    use super::super::peer::Peer;
    use super::*;

    #[test]
    fn weighted_distribution() {
        let mut p = Pool::new(vec![
            Peer::new("a:1", 3),
            Peer::new("b:1", 2),
            Peer::new("c:1", 1),
        ]);
        let mut rng = XorShift64::new(7);
        let now = Instant::now();
        let mut counts = [0u32; 3];
        for _ in 0..60_000 {
            if let Some(i) = pick(&mut p, &mut rng, false, now, &[]) {
                counts[i] += 1;
            }
        }
        for (c, w) in counts.iter().zip([3.0, 2.0, 1.0]) {
            let share = f64::from(*c) / 60_000.0;
            assert!((share - w / 6.0).abs() < 0.01, "{counts:?}");
        }
    }

    #[test]
    fn two_choices_pick_the_less_loaded() {
        let mut p = Pool::new(vec![Peer::new("a:1", 1), Peer::new("b:1", 1)]);
        p.state[0].active = 5;
        let mut rng = XorShift64::new(42);
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(pick(&mut p, &mut rng, true, now, &[]), Some(1));
        }
        // With three peers, the most loaded one is never chosen.
        let mut p = Pool::new((0..3).map(|i| Peer::new(format!("h{i}:1"), 1)).collect());
        p.state[0].active = 9;
        p.state[1].active = 1;
        for _ in 0..300 {
            assert_ne!(pick(&mut p, &mut rng, true, now, &[]), Some(0));
        }
    }

    #[test]
    fn unusable_and_tried_are_skipped() {
        let mut p = Pool::new((0..3).map(|i| Peer::new(format!("h{i}:1"), 1)).collect());
        p.peers[0].down = true;
        let mut rng = XorShift64::new(1);
        let now = Instant::now();
        for two in [false, true] {
            for _ in 0..100 {
                assert_eq!(pick(&mut p, &mut rng, two, now, &[1]), Some(2));
            }
        }
    }

    #[test]
    fn seeded_generators_repeat() {
        let (mut a, mut b) = (XorShift64::new(9), XorShift64::new(9));
        assert!((0..10).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(XorShift64::new(0).next_u64(), 0);
    }
}
