//! `hash KEY` and `hash KEY consistent`, following nginx's `ngx_http_upstream_hash_module`
//! with the same CRC-32 (IEEE 802.3, as zlib and nginx's `ngx_crc32_long`), so a key lands on
//! the same server as under nginx given the same server list:
//!
//! * `hash KEY`: Cache::Memcached-compatible. Attempt `n` hashes `crc32([n] KEY)` (the decimal
//!   attempt number is prepended from the second attempt on), keeps bits 16..31
//!   (`(crc >> 16) & 0x7fff`), adds it to the running sum, and maps the sum modulo the total
//!   weight of the primary peers onto them by weight. Unusable peers cause another attempt; after
//!   20, round-robin. Each pick starts the sequence afresh (nginx keeps it across a request's
//!   retries; with `tried` skipped the result is the same peer set, maybe in another order).
//! * `hash KEY consistent`: ketama. Each primary peer puts `160 × weight` points on a ring:
//!   point `j` is `crc32(host "\0" port prev)`, `prev` being point `j-1` as 4 little-endian bytes
//!   (0 for the first), where `host`/`port` split the address at its last `:` (`unix:` paths
//!   have no port). The key's `crc32` finds the first point at or after it (binary search,
//!   wrapping); unusable peers move on to the next point, up to 20, then round-robin. Points
//!   depend only on each server's own address and weight, so removing one of N servers remaps
//!   only its ≈1/N share of keys.

use std::time::Instant;

use super::ip_hash::MAX_TRIES;
use super::peer::{Pool, Tier};
use super::round_robin;

/// Points per unit of weight on the consistent-hash ring (nginx and ketama).
pub const POINTS_PER_WEIGHT: u32 = 160;

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// Incremental CRC-32 (IEEE), nginx's `ngx_crc32_init/update/final`.
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

impl Crc32 {
    pub fn new() -> Crc32 {
        Crc32(0xFFFF_FFFF)
    }

    pub fn update(mut self, bytes: &[u8]) -> Crc32 {
        for b in bytes {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(*b)) & 0xFF) as usize] ^ (self.0 >> 8);
        }
        self
    }

    pub fn finish(self) -> u32 {
        !self.0
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Crc32::new()
    }
}

/// CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    Crc32::new().update(bytes).finish()
}

/// `n` in decimal, without allocating.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        if let Some(slot) = buf.get_mut(at) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    buf.get(at..).unwrap_or_default()
}

/// `hash KEY` (not consistent).
pub(super) fn pick(pool: &mut Pool, key: &[u8], now: Instant, tried: &[usize]) -> Option<usize> {
    let total = pool.total_weight(Tier::Primary);
    if !key.is_empty() && total > 0 {
        let mut sum: u64 = 0;
        for attempt in 0..=MAX_TRIES {
            let mut crc = Crc32::new();
            if attempt > 0 {
                let mut buf = [0u8; 10];
                crc = crc.update(decimal(attempt, &mut buf));
            }
            let h = (crc.update(key).finish() >> 16) & 0x7FFF;
            sum += u64::from(h);
            if let Some(i) = pool.weighted_index(Tier::Primary, sum % total) {
                if pool.eligible(i, Tier::Primary, now, tried) {
                    return Some(i);
                }
            }
        }
    }
    round_robin::pick(pool, Tier::Primary, now, tried)
}

/// The ketama ring of `hash KEY consistent`: points sorted by hash, each naming a peer.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    points: Vec<(u32, usize)>,
}

/// Splits `host:port` at the last `:`; `unix:/path` is all host.
fn host_port(address: &str) -> (&str, &str) {
    if address.len() >= 5
        && address
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("unix:"))
    {
        return (address.get(5..).unwrap_or_default(), "");
    }
    match address.rfind(':') {
        Some(at) => (
            address.get(..at).unwrap_or_default(),
            address.get(at + 1..).unwrap_or_default(),
        ),
        None => (address, ""),
    }
}

impl Ring {
    /// The ring of the primary peers of `pool` (down ones included, so that marking a peer
    /// down moves only its own keys).
    pub fn new(pool: &Pool) -> Ring {
        let mut points = Vec::new();
        for (i, peer) in pool.peers.iter().enumerate() {
            if !Tier::Primary.holds(peer) {
                continue;
            }
            let (host, port) = host_port(&peer.address);
            let base = Crc32::new()
                .update(host.as_bytes())
                .update(&[0])
                .update(port.as_bytes());
            let mut prev: u32 = 0;
            for _ in 0..peer.weight.saturating_mul(POINTS_PER_WEIGHT) {
                let h = base.update(&prev.to_le_bytes()).finish();
                points.push((h, i));
                prev = h;
            }
        }
        // Stable: equal hashes keep config order, and the first one wins, as in nginx.
        points.sort_by_key(|p| p.0);
        points.dedup_by_key(|p| p.0);
        Ring { points }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when no primary peer exists.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// `hash KEY consistent`.
    pub(super) fn pick(
        &self,
        pool: &mut Pool,
        key: &[u8],
        now: Instant,
        tried: &[usize],
    ) -> Option<usize> {
        let n = self.points.len();
        if !key.is_empty() && n > 0 {
            let h = crc32(key);
            let start = self.points.partition_point(|p| p.0 < h);
            for k in 0..=MAX_TRIES as usize {
                if let Some((_, i)) = self.points.get((start + k) % n) {
                    if pool.eligible(*i, Tier::Primary, now, tried) {
                        return Some(*i);
                    }
                }
            }
        }
        round_robin::pick(pool, Tier::Primary, now, tried)
    }
}

#[cfg(test)]
mod tests {
    use super::super::peer::Peer;
    use super::*;

    fn pool(n: usize) -> Pool {
        Pool::new(
            (0..n)
                .map(|i| Peer::new(format!("10.0.0.{i}:8080"), 1))
                .collect(),
        )
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let split = Crc32::new().update(b"1234").update(b"56789").finish();
        assert_eq!(split, 0xCBF4_3926);
    }

    #[test]
    fn decimal_digits() {
        let mut buf = [0u8; 10];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(20, &mut buf), b"20");
        assert_eq!(decimal(u32::MAX, &mut buf), b"4294967295");
    }

    #[test]
    fn host_port_split() {
        assert_eq!(host_port("a.example:80"), ("a.example", "80"));
        assert_eq!(host_port("[::1]:80"), ("[::1]", "80"));
        assert_eq!(host_port("unix:/tmp/s"), ("/tmp/s", ""));
        assert_eq!(host_port("backend"), ("backend", ""));
    }

    #[test]
    fn hash_is_stable_and_spreads() {
        let mut p = pool(4);
        let now = Instant::now();
        let mut counts = [0u32; 4];
        for k in 0..4000 {
            let key = format!("/item/{k}");
            let a = pick(&mut p, key.as_bytes(), now, &[]);
            assert_eq!(pick(&mut p, key.as_bytes(), now, &[]), a);
            if let Some(i) = a {
                counts[i] += 1;
            }
        }
        assert!(counts.iter().all(|c| *c > 700), "{counts:?}");
    }

    #[test]
    fn hash_skips_unusable() {
        let mut p = pool(3);
        let now = Instant::now();
        let first = pick(&mut p, b"user42", now, &[]).unwrap();
        let other = pick(&mut p, b"user42", now, &[first]).unwrap();
        assert_ne!(other, first);
        p.peers[first].down = true;
        assert_eq!(pick(&mut p, b"user42", now, &[]), Some(other));
    }

    #[test]
    fn ring_has_160_points_per_weight() {
        let mut peers: Vec<Peer> = (0..3).map(|i| Peer::new(format!("h{i}:1"), 1)).collect();
        peers[1].weight = 2;
        let ring = Ring::new(&Pool::new(peers));
        // Duplicated hashes are dropped, which is rare for 640 points.
        assert!(ring.len() <= 640 && ring.len() >= 630, "{}", ring.len());
    }

    #[test]
    fn consistent_removal_remaps_about_one_nth() {
        let now = Instant::now();
        let mut ten = pool(10);
        let ring10 = Ring::new(&ten);
        let mut nine = Pool::new(
            ten.peers
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 3)
                .map(|(_, p)| p.clone())
                .collect(),
        );
        let ring9 = Ring::new(&nine);
        let mut moved = 0;
        for k in 0..10_000 {
            let key = format!("session-{k}");
            let a = ring10.pick(&mut ten, key.as_bytes(), now, &[]).unwrap();
            let b = ring9.pick(&mut nine, key.as_bytes(), now, &[]).unwrap();
            let (a, b) = (&ten.peers[a].address, &nine.peers[b].address);
            if a != b {
                moved += 1;
                assert_eq!(a, "10.0.0.3:8080", "a key of a remaining server moved");
            }
        }
        assert!((500..=1500).contains(&moved), "moved {moved}");
    }

    #[test]
    fn consistent_skips_down_and_tried() {
        let now = Instant::now();
        let mut p = pool(5);
        let ring = Ring::new(&p);
        let first = ring.pick(&mut p, b"k", now, &[]).unwrap();
        let next = ring.pick(&mut p, b"k", now, &[first]).unwrap();
        assert_ne!(next, first);
        p.peers[first].down = true;
        assert_eq!(ring.pick(&mut p, b"k", now, &[]), Some(next));
    }
}
