//! Entity tags as nginx makes and compares them: `"<hex mtime>-<hex length>"` for static
//! files, weak comparison for If-None-Match and nginx's (non-RFC) comparison for If-Match.
//! No allocation; any header value is safe to pass.

/// Writes nginx's ETag for a file, `"<mtime in lowercase hex>-<length in lowercase hex>"`
/// (`"5f5e1000-1a"`; a negative mtime is written `-<hex>` as nginx's `%xT`), into `out` and
/// returns how many bytes it used (at most 36).
pub fn etag(mtime_secs: i64, len: u64, out: &mut [u8; 40]) -> usize {
    let mut n = 0;
    let mut put = |b: u8, n: &mut usize| {
        if let Some(slot) = out.get_mut(*n) {
            *slot = b;
            *n += 1;
        }
    };
    put(b'"', &mut n);
    if mtime_secs < 0 {
        put(b'-', &mut n);
    }
    for b in hex(mtime_secs.unsigned_abs()).iter().flatten() {
        put(*b, &mut n);
    }
    put(b'-', &mut n);
    for b in hex(len).iter().flatten() {
        put(*b, &mut n);
    }
    put(b'"', &mut n);
    n
}

/// The lowercase hex digits of `v`, most significant first, without leading zeros.
fn hex(v: u64) -> [Option<u8>; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [None; 16];
    let significant = (16 - v.leading_zeros() as usize / 4).max(1);
    for (i, slot) in out.iter_mut().take(significant).enumerate() {
        let shift = 4 * (significant - 1 - i);
        *slot = DIGITS.get(((v >> shift) & 0xf) as usize).copied();
    }
    out
}

/// Whether an If-None-Match value matches `etag` (the response would be 304): `*`, or a
/// comma-separated list with an entry equal to `etag` under weak comparison (a `W/` prefix on
/// either side is ignored). As nginx's `ngx_http_test_if_match(r, h, 1)`.
pub fn if_none_match(header: &[u8], etag: &[u8]) -> bool {
    list_matches(header, etag, true)
}

/// Whether an If-Match value matches `etag` (otherwise the answer is 412): `*`, or a list
/// entry byte-equal to `etag`. As nginx's `ngx_http_test_if_match(r, h, 0)`: `W/` prefixes
/// are compared as written, not rejected as RFC 9110's strong comparison would.
pub fn if_match(header: &[u8], etag: &[u8]) -> bool {
    list_matches(header, etag, false)
}

fn list_matches(header: &[u8], etag: &[u8], weak: bool) -> bool {
    if header == b"*" {
        return true;
    }
    let etag = match etag {
        [b'W', b'/', rest @ ..] if weak && !rest.is_empty() => rest,
        _ => etag,
    };
    let mut rest = header;
    while !rest.is_empty() {
        if let [b'W', b'/', tail @ ..] = rest {
            if weak && !tail.is_empty() {
                rest = tail;
            }
        }
        if let Some(after) = rest.strip_prefix(etag) {
            if matches!(trim_start(after, b" \t"), [] | [b',', ..]) {
                return true;
            }
        }
        // Skip to the next entry.
        let next = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        rest = trim_start(rest.get(next..).unwrap_or(&[]), b" \t,");
    }
    false
}

fn trim_start<'a>(mut s: &'a [u8], set: &[u8]) -> &'a [u8] {
    while let [first, tail @ ..] = s {
        if !set.contains(first) {
            break;
        }
        s = tail;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(mtime: i64, len: u64) -> String {
        let mut out = [0u8; 40];
        let n = etag(mtime, len, &mut out);
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn formats_as_nginx() {
        // nginx: ETag: "6b0767af-64" for a 100-byte file with mtime 0x6b0767af.
        assert_eq!(tag(0x6b07_67af, 100), "\"6b0767af-64\"");
        assert_eq!(tag(0, 0), "\"0-0\"");
        assert_eq!(tag(-255, 1), "\"-ff-1\"");
        assert_eq!(
            tag(i64::MIN, u64::MAX),
            "\"-8000000000000000-ffffffffffffffff\""
        );
        assert_eq!(tag(i64::MAX, 16), "\"7fffffffffffffff-10\"");
    }

    #[test]
    fn if_none_match_is_weak_and_list_aware() {
        let e = b"\"5f-1a\"";
        assert!(if_none_match(b"*", e));
        assert!(if_none_match(b"\"5f-1a\"", e));
        assert!(if_none_match(b"W/\"5f-1a\"", e));
        assert!(if_none_match(b"\"x\", \"5f-1a\"", e));
        assert!(if_none_match(b"\"x\",W/\"5f-1a\" , \"y\"", e));
        assert!(if_none_match(b"\"5f-1a\"\t", e));
        assert!(if_none_match(b"\"5f-1a\"", b"W/\"5f-1a\""));
        assert!(!if_none_match(b"\"5f-1a", e));
        assert!(!if_none_match(b"\"5f-1a\"x", e));
        assert!(!if_none_match(b"\"5f-1b\"", e));
        assert!(!if_none_match(b"", e));
        assert!(!if_none_match(b", , ,", e));
        assert!(!if_none_match(b" *", e));
        assert!(!if_none_match(b"W/", e));
    }

    #[test]
    fn if_match_compares_as_written() {
        let e = b"\"5f-1a\"";
        assert!(if_match(b"*", e));
        assert!(if_match(b"\"a\", \"5f-1a\"", e));
        assert!(!if_match(b"W/\"5f-1a\"", e));
    }
}
