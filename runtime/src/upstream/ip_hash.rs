//! `ip_hash`, as nginx's `ngx_http_upstream_get_ip_hash_peer`: the key is the client address
//! (the first three octets of an IPv4 address, all sixteen bytes of an IPv6 one), hashed with
//! `h = (h * 113 + byte) % 6271` from 89, mapped onto the primary peers by weight. An unusable
//! peer makes it hash the address again (continuing from the last value); after 20 attempts,
//! or for a key that is not a 4- or 16-byte address (unix sockets), it falls back to
//! round-robin.

use std::time::Instant;

use super::peer::{Pool, Tier};
use super::round_robin;

/// nginx gives up rehashing after this many attempts.
pub(super) const MAX_TRIES: u32 = 20;

/// Picks the peer for client address bytes `addr` (4 bytes IPv4 or 16 bytes IPv6).
pub(super) fn pick(pool: &mut Pool, addr: &[u8], now: Instant, tried: &[usize]) -> Option<usize> {
    let bytes = match addr.len() {
        4 => addr.get(..3).unwrap_or_default(),
        16 => addr,
        _ => &[],
    };
    let total = pool.total_weight(Tier::Primary);
    if !bytes.is_empty() && total > 0 {
        let mut hash: u64 = 89;
        for _ in 0..=MAX_TRIES {
            for b in bytes {
                hash = (hash * 113 + u64::from(*b)) % 6271;
            }
            if let Some(i) = pool.weighted_index(Tier::Primary, hash % total) {
                if pool.eligible(i, Tier::Primary, now, tried) {
                    return Some(i);
                }
            }
        }
    }
    round_robin::pick(pool, Tier::Primary, now, tried)
}

#[cfg(test)]
mod tests {
    use super::super::peer::Peer;
    use super::*;

    fn pool() -> Pool {
        Pool::new((0..4).map(|i| Peer::new(format!("b{i}:80"), 1)).collect())
    }

    #[test]
    fn stable_within_a_slash_24() {
        let mut p = pool();
        let now = Instant::now();
        let first = pick(&mut p, &[192, 168, 7, 1], now, &[]);
        assert!(first.is_some());
        for last in [2u8, 50, 200, 255] {
            assert_eq!(pick(&mut p, &[192, 168, 7, last], now, &[]), first);
        }
        // Different /24s spread over several peers.
        let mut seen = std::collections::BTreeSet::new();
        for third in 0..=255u8 {
            seen.extend(pick(&mut p, &[10, 1, third, 9], now, &[]));
        }
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn ipv6_uses_the_whole_address() {
        let mut p = pool();
        let now = Instant::now();
        let a = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let first = pick(&mut p, &a, now, &[]);
        assert!(first.is_some());
        assert_eq!(pick(&mut p, &a, now, &[]), first);
    }

    #[test]
    fn skips_unusable_and_stays_stable() {
        let mut p = pool();
        let now = Instant::now();
        let addr = [172, 16, 3, 4];
        let first = pick(&mut p, &addr, now, &[]).unwrap_or(usize::MAX);
        p.peers[first].down = true;
        let second = pick(&mut p, &addr, now, &[]);
        assert!(second.is_some() && second != Some(first));
        assert_eq!(pick(&mut p, &addr, now, &[]), second);
        // Tried peers are skipped too.
        let third = pick(&mut p, &addr, now, &[second.unwrap_or(usize::MAX)]);
        assert!(third.is_some() && third != second && third != Some(first));
    }

    #[test]
    fn non_ip_key_falls_back_to_round_robin() {
        let mut p = pool();
        let now = Instant::now();
        let picks: Vec<_> = (0..4).filter_map(|_| pick(&mut p, b"", now, &[])).collect();
        assert_eq!(picks, vec![0, 1, 2, 3]);
    }
}
