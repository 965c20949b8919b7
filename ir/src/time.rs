//! nginx's time and size syntax (`ngx_parse_time`, `ngx_parse_size`), shared by the compiler
//! (directive arguments) and the runtime (`expires $variable`, `$limit_rate`, parsed at
//! request time).

use crate::Expires;

/// Parses an nginx time: in seconds with `is_sec` (`ngx_parse_time(…, 1)`: units `y`, `M`,
/// `w`, `d`, `h`, `m`, `s`; `ms` refused), else in milliseconds (`w` … `s`, `ms`; `y`, `M`
/// refused). Units come from the largest to the smallest, once each; a trailing number
/// without unit is seconds.
pub fn parse_time(s: &str, is_sec: bool) -> Option<u64> {
    // Steps in nginx's order; a unit must come after every unit already seen.
    const YEAR: u8 = 1;
    const MONTH: u8 = 2;
    const WEEK: u8 = 3;
    const DAY: u8 = 4;
    const HOUR: u8 = 5;
    const MIN: u8 = 6;
    const SEC: u8 = 7;
    const MSEC: u8 = 8;
    const LAST: u8 = 9;
    let max = i64::MAX as u64;
    let b = s.as_bytes();
    let mut step = if is_sec { 0 } else { MONTH };
    let (mut value, mut total, mut valid) = (0u64, 0u64, false);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c.is_ascii_digit() {
            value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            if value > max {
                return None;
            }
            valid = true;
            continue;
        }
        let (next, secs) = match c {
            b'y' if step < YEAR => (YEAR, 365 * 86_400),
            b'M' if step < MONTH => (MONTH, 30 * 86_400),
            b'w' if step < WEEK => (WEEK, 7 * 86_400),
            b'd' if step < DAY => (DAY, 86_400),
            b'h' if step < HOUR => (HOUR, 3_600),
            b'm' if b.get(i) == Some(&b's') => {
                if is_sec || step >= MSEC {
                    return None;
                }
                i += 1;
                (MSEC, 0)
            }
            b'm' if step < MIN => (MIN, 60),
            b's' if step < SEC => (SEC, 1),
            b' ' if step < SEC => (LAST, 1),
            _ => return None,
        };
        step = next;
        let scale: u64 = match (next, is_sec) {
            (MSEC, _) => 1,
            (_, true) => secs,
            (_, false) => secs * 1000,
        };
        value = value.checked_mul(scale).filter(|v| *v <= max)?;
        total = total.checked_add(value).filter(|t| *t <= max)?;
        value = 0;
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
    }
    if !valid {
        return None;
    }
    if !is_sec {
        value = value.checked_mul(1000)?;
    }
    total.checked_add(value).filter(|t| *t <= max)
}

impl Expires {
    /// nginx's `ngx_http_parse_expires`: `epoch`, `max`, `off`, `@time` (a time of day, less
    /// than 24 hours, not with `modified`), `[+|-]time`.
    pub fn parse(v: &str, modified: bool) -> Result<Expires, &'static str> {
        match v {
            "off" if !modified => return Ok(Expires::Off),
            "epoch" if !modified => return Ok(Expires::Epoch),
            "max" if !modified => return Ok(Expires::Max),
            _ => {}
        }
        if let Some(t) = v.strip_prefix('@') {
            if modified {
                return Err("daily time cannot be used with \"modified\" parameter");
            }
            let secs = crate::time::parse_time(t, true).ok_or("invalid value")?;
            if secs > 24 * 60 * 60 {
                return Err("daily time value must be less than 24 hours");
            }
            return Ok(Expires::Daily(secs as i64));
        }
        let (neg, t) = match v.strip_prefix('-') {
            Some(t) => (true, t),
            None => (false, v.strip_prefix('+').unwrap_or(v)),
        };
        let secs = crate::time::parse_time(t, true).ok_or("invalid value")? as i64;
        let secs = if neg { -secs } else { secs };
        Ok(if modified {
            Expires::Modified(secs)
        } else {
            Expires::After(secs)
        })
    }
}

/// Parses an nginx size as `ngx_parse_size`: `1024`, `8k`, `1m`, `1g` (either case); at
/// most 2^63 − 1 bytes, as nginx's `off_t`.
pub fn parse_size(s: &[u8]) -> Option<u64> {
    let (num, mult) = match s.last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024u64),
        b'm' | b'M' => (&s[..s.len() - 1], 1024 * 1024),
        b'g' | b'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    if num.is_empty() || !num.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(num)
        .ok()?
        .parse::<u64>()
        .ok()?
        .checked_mul(mult)
        .filter(|n| i64::try_from(*n).is_ok())
}
