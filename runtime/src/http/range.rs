//! The Range request header (RFC 9110 §14.2), read exactly as nginx 1.22's range filter
//! (`ngx_http_range_parse`) reads it — checked against the Debian package:
//!
//! * a value that does not start with `bytes=` (any case), or is just `bytes=`, is ignored:
//!   the whole representation is sent with 200 ([`RangeResult::Full`]);
//! * a `bytes=` value with a syntax error (`bytes=x`, `bytes=5-1`, a trailing comma) is 416,
//!   not ignored — nginx answers 416 ([`RangeResult::Unsatisfiable`]);
//! * ranges are kept in request order and not merged; ranges starting at or past the end are
//!   dropped, and 416 only if none is left;
//! * if the ranges add up to more bytes than the representation (overlaps), or there are more
//!   than [`MAX_RANGES`] (nginx's `max_ranges 16`; unset, nginx has no limit), the whole
//!   representation is sent instead;
//! * an empty representation: `bytes=0-` and suffix ranges are ignored (200), others are 416.
//!
//! Only spaces (not tabs) are skipped around numbers and commas, as nginx.

/// The most ranges served from one request; more and the whole representation is sent.
pub const MAX_RANGES: usize = 16;

/// One satisfiable byte range, `start..end` (end exclusive), within the representation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range is empty (never, for one [`parse_range`] wrote).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What to send for a Range header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeResult {
    /// Ignore the header: send the whole representation (200).
    Full,
    /// `n` ranges were written to the start of `out`, in request order: 206 (one part, or
    /// multipart/byteranges for several).
    Satisfiable(usize),
    /// 416, with `Content-Range: bytes */<len>`.
    Unsatisfiable,
}

/// Reads a Range header value for a representation of `len` bytes.
/// At most `out.len()` ranges are served (nginx's `max_ranges`); more and the whole
/// representation is sent.
pub fn parse_range(value: &[u8], len: u64, out: &mut [ByteRange]) -> RangeResult {
    const MAX: u64 = i64::MAX as u64;
    if value.len() < 7
        || !value
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"bytes="))
    {
        return RangeResult::Full;
    }
    let at = |i: usize| value.get(i).copied();
    let skip_spaces = |mut i: usize| {
        while at(i) == Some(b' ') {
            i += 1;
        }
        i
    };
    // Reads 1*DIGIT at `i`; None on overflow or no digit.
    let number = |mut i: usize| -> Option<(u64, usize)> {
        if !at(i)?.is_ascii_digit() {
            return None;
        }
        let mut n: u64 = 0;
        while let Some(d) = at(i).filter(u8::is_ascii_digit) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .filter(|&n| n <= MAX)?;
            i += 1;
        }
        Some((n, i))
    };

    let mut count = 0;
    let mut size: u64 = 0;
    let mut i = 6;
    loop {
        i = skip_spaces(i);
        let (start, end);
        if at(i) != Some(b'-') {
            let Some((first, j)) = number(i) else {
                return RangeResult::Unsatisfiable;
            };
            i = skip_spaces(j);
            if at(i) != Some(b'-') {
                return RangeResult::Unsatisfiable;
            }
            i = skip_spaces(i + 1);
            if matches!(at(i), None | Some(b',')) {
                // `first-`: to the end.
                (start, end) = (first, len);
            } else {
                let Some((last, j)) = number(i) else {
                    return RangeResult::Unsatisfiable;
                };
                i = skip_spaces(j);
                if !matches!(at(i), None | Some(b',')) {
                    return RangeResult::Unsatisfiable;
                }
                (start, end) = (first, if last >= len { len } else { last + 1 });
            }
        } else {
            // `-suffix`: the last `suffix` bytes.
            let Some((suffix, j)) = number(i + 1) else {
                return RangeResult::Unsatisfiable;
            };
            i = skip_spaces(j);
            if !matches!(at(i), None | Some(b',')) {
                return RangeResult::Unsatisfiable;
            }
            (start, end) = (len.saturating_sub(suffix), len);
        }

        if start < end {
            let Some(slot) = out.get_mut(count) else {
                // nginx's max_ranges exceeded: serve the whole representation.
                return RangeResult::Full;
            };
            *slot = ByteRange { start, end };
            count += 1;
            size = match size.checked_add(end - start).filter(|&s| s <= MAX) {
                Some(s) => s,
                None => return RangeResult::Unsatisfiable,
            };
        } else if start == 0 {
            // Only on an empty representation (`bytes=0-`, `bytes=-5`): nginx ignores it.
            return RangeResult::Full;
        }

        if at(i) != Some(b',') {
            break;
        }
        i += 1;
    }
    if count == 0 {
        return RangeResult::Unsatisfiable;
    }
    if size > len {
        return RangeResult::Full;
    }
    RangeResult::Satisfiable(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str, len: u64) -> (RangeResult, Vec<(u64, u64)>) {
        let mut out = [ByteRange::default(); MAX_RANGES];
        let r = parse_range(value.as_bytes(), len, &mut out);
        let n = match r {
            RangeResult::Satisfiable(n) => n,
            _ => 0,
        };
        (r, out[..n].iter().map(|r| (r.start, r.end)).collect())
    }

    /// Every case was sent to nginx 1.22.1 serving a 100-byte file; the comment is its answer.
    #[test]
    fn matches_nginx_on_a_100_byte_file() {
        use RangeResult::*;
        type Case = (&'static str, RangeResult, &'static [(u64, u64)]);
        let cases: &[Case] = &[
            ("bytes=0-9", Satisfiable(1), &[(0, 10)]),   // 206 0-9/100
            ("bytes=-10", Satisfiable(1), &[(90, 100)]), // 206 90-99/100
            ("bytes=90-", Satisfiable(1), &[(90, 100)]), // 206 90-99/100
            ("bytes=100-", Unsatisfiable, &[]),          // 416
            ("bytes=0-0,5-5", Satisfiable(2), &[(0, 1), (5, 6)]), // 206 multipart
            ("bytes=5-5,0-0", Satisfiable(2), &[(5, 6), (0, 1)]), // 206 multipart
            ("bytes=x", Unsatisfiable, &[]),             // 416
            ("bytes=5-1", Unsatisfiable, &[]),           // 416
            ("bytes=1-2,x", Unsatisfiable, &[]),         // 416
            ("BYTES=0-1", Satisfiable(1), &[(0, 2)]),    // 206 0-1/100
            ("bytes = 0-1", Full, &[]),                  // 200
            ("bytes=0-1 ,  3-4", Satisfiable(2), &[(0, 2), (3, 5)]), // 206 multipart
            ("items=0-1", Full, &[]),                    // 200
            ("bytes=-0", Unsatisfiable, &[]),            // 416
            ("bytes=0-200", Satisfiable(1), &[(0, 100)]), // 206 0-99/100
            ("bytes=150-200", Unsatisfiable, &[]),       // 416
            ("bytes=150-200,0-1", Satisfiable(1), &[(0, 2)]), // 206 0-1/100
            ("bytes=0-99,0-99", Full, &[]),              // 200
            ("bytes=0-50,40-99", Full, &[]),             // 200
            ("bytes=", Full, &[]),                       // 200
            ("bytes=,", Unsatisfiable, &[]),             // 416
            ("bytes=0-1,", Unsatisfiable, &[]),          // 416
            ("bytes=,0-1", Unsatisfiable, &[]),          // 416
            ("bytes=-", Unsatisfiable, &[]),             // 416
            ("bytes=99999999999999999999-", Unsatisfiable, &[]), // 416
            ("bytes=-200", Satisfiable(1), &[(0, 100)]), // 206 0-99/100
            ("bytes=0-1,-1", Satisfiable(2), &[(0, 2), (99, 100)]), // 206 multipart
            ("bytes=01-02", Satisfiable(1), &[(1, 3)]),  // 206 1-2/100
            ("bytes= 0-1", Satisfiable(1), &[(0, 2)]),   // 206 0-1/100
            ("bytes=0 -1", Satisfiable(1), &[(0, 2)]),   // 206 0-1/100
            ("bytes=0-1\\t", Unsatisfiable, &[]),        // 416
        ];
        for &(value, want, ranges) in cases {
            let (got, got_ranges) = parse(value, 100);
            assert_eq!(got, want, "{value}");
            assert_eq!(got_ranges, ranges, "{value}");
        }
    }

    #[test]
    fn empty_representation_as_nginx() {
        assert_eq!(parse("bytes=0-", 0).0, RangeResult::Full);
        assert_eq!(parse("bytes=-1", 0).0, RangeResult::Full);
        assert_eq!(parse("bytes=0-0", 0).0, RangeResult::Full);
        assert_eq!(parse("bytes=1-", 0).0, RangeResult::Unsatisfiable);
    }

    #[test]
    fn caps_the_number_of_ranges() {
        let sixteen: Vec<String> = (0..16).map(|i| format!("{i}-{i}")).collect();
        let (r, ranges) = parse(&format!("bytes={}", sixteen.join(",")), 100);
        assert_eq!(r, RangeResult::Satisfiable(16));
        assert_eq!(ranges[15], (15, 16));
        let seventeen: Vec<String> = (0..17).map(|i| format!("{i}-{i}")).collect();
        assert_eq!(
            parse(&format!("bytes={}", seventeen.join(",")), 100).0,
            RangeResult::Full
        );
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let big = i64::MAX as u64;
        assert_eq!(parse("bytes=-1", big).1, vec![(big - 1, big)]);
        assert_eq!(parse("bytes=0-", big).1, vec![(0, big)]);
        assert_eq!(
            parse("bytes=9223372036854775807-", big).0,
            RangeResult::Unsatisfiable
        );
        assert_eq!(
            parse("bytes=9223372036854775808-", big).0,
            RangeResult::Unsatisfiable
        );
        assert_eq!(parse("bytes=0-9223372036854775806", big).1, vec![(0, big)]);
        assert_eq!(
            parse("bytes=0-18446744073709551615", 10).0,
            RangeResult::Unsatisfiable
        );
    }
}
