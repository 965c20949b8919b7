//! Helpers shared by the unit tests.

/// Calls `f` with every byte string of length 0 to `max_len` over `alphabet`, shortest
/// first (the exhaustive inputs of the differential tests of the fast paths).
pub(crate) fn each_string(alphabet: &[u8], max_len: u32, mut f: impl FnMut(&[u8])) {
    let mut s = Vec::new();
    for len in 0..=max_len {
        for mut n in 0..alphabet.len().pow(len) {
            s.clear();
            for _ in 0..len {
                s.push(alphabet[n % alphabet.len()]);
                n /= alphabet.len();
            }
            f(&s);
        }
    }
}
