//! Eight bytes at a time ("SIMD within a register"): the word tests the parsers' fast paths
//! use. Each fast path keeps a byte-by-byte reference it is tested against.

pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// Eight bytes as a little-endian word (`chunk` is eight bytes long; `None` otherwise).
pub(crate) fn load_word(chunk: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(chunk).ok().map(u64::from_le_bytes)
}

/// The high bit of each byte of `w` that equals `b`, and no other bit (exact: no carries
/// between bytes).
pub(crate) fn bytes_equal(w: u64, b: u8) -> u64 {
    let x = w ^ (u64::from(b) * ONES);
    !(((x & LOW7) + LOW7) | x) & HIGH
}

/// The high bit of each byte of `w` below `n` (`n` ≤ 0x80), and no other bit.
pub(crate) fn bytes_below(w: u64, n: u8) -> u64 {
    !(((w & LOW7) + u64::from(0x80 - n) * ONES) | w) & HIGH
}
