//! HTTP dates (RFC 9110 §5.6.7): formatting the IMF-fixdate the server sends in `Date` and
//! `Last-Modified`, a once-a-second cache of the current one, and parsing the three formats a
//! recipient must accept in `If-Modified-Since`. No allocation, no panics on any input.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WEEKDAYS: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const WEEKDAYS_LONG: [&[u8]; 7] = [
    b"Sunday",
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Seconds from the epoch to 0000-01-01 and to 9999-12-31T23:59:59: the range a 4-digit
/// year can show.
const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;

/// Writes `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), to the second, rounding
/// down. Times outside years 0000–9999 are clamped.
pub fn http_date(t: SystemTime, out: &mut [u8; 29]) {
    format_secs(unix_secs(t), out);
}

/// Seconds since the epoch, negative before it, rounded down, clamped to 4-digit years.
fn unix_secs(t: SystemTime) -> i64 {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            let round_down = i64::from(d.subsec_nanos() > 0);
            whole.saturating_add(round_down).saturating_neg()
        }
    };
    secs.clamp(MIN_SECS, MAX_SECS)
}

fn format_secs(secs: i64, out: &mut [u8; 29]) {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize;
    let two = |n: i64| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    let year = year.clamp(0, 9999);
    let month_name = MONTHS.get((month - 1) as usize).copied().unwrap_or(b"Jan");
    let weekday_name = WEEKDAYS.get(weekday).copied().unwrap_or(b"Sun");
    let [d0, d1] = two(day);
    let [y0, y1] = two(year / 100);
    let [y2, y3] = two(year % 100);
    let [h0, h1] = two(sod / 3600);
    let [m0, m1] = two(sod / 60 % 60);
    let [s0, s1] = two(sod % 60);
    let [w0, w1, w2] = *weekday_name;
    let [n0, n1, n2] = *month_name;
    *out = [
        w0, w1, w2, b',', b' ', d0, d1, b' ', n0, n1, n2, b' ', y0, y1, y2, y3, b' ', h0, h1, b':',
        m0, m1, b':', s0, s1, b' ', b'G', b'M', b'T',
    ];
}

/// Howard Hinnant's `civil_from_days`: (year, month 1–12, day 1–31) of a day number.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The current `Date` value, formatted at most once per second.
#[derive(Clone, Debug)]
pub struct DateCache {
    secs: Option<i64>,
    buf: [u8; 29],
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache::new()
    }
}

impl DateCache {
    /// An empty cache; the first [`get`](Self::get) formats.
    pub const fn new() -> DateCache {
        DateCache {
            secs: None,
            buf: [0; 29],
        }
    }

    /// The IMF-fixdate of `now`, reformatted only when the second changed.
    pub fn get(&mut self, now: SystemTime) -> &[u8] {
        self.get_secs(unix_secs(now))
    }

    /// The IMF-fixdate of Unix second `secs`, reformatted only when it changed.
    pub fn get_secs(&mut self, secs: i64) -> &[u8] {
        if self.secs != Some(secs) {
            format_secs(secs, &mut self.buf);
            self.secs = Some(secs);
        }
        &self.buf
    }
}

/// Parses an HTTP date in any of the three formats RFC 9110 §5.6.7 requires recipients to
/// accept: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`; years 00–69 are 20xx, 70–99 are 19xx, as nginx) and
/// asctime (`Sun Nov  6 08:49:37 1994`). Names are case-sensitive; the weekday must be a
/// weekday name but is not checked against the date (as nginx, which skips it). `None` for
/// anything else, including impossible dates (Feb 30) and hours past 23.
pub fn parse_http_date(s: &[u8]) -> Option<SystemTime> {
    let (year, month, day, time) = imf_fixdate(s)
        .or_else(|| rfc850_date(s))
        .or_else(|| asctime_date(s))?;
    let (hour, minute, second) = match time {
        [h0, h1, b':', m0, m1, b':', s0, s1] => (
            number(&[*h0, *h1])?,
            number(&[*m0, *m1])?,
            number(&[*s0, *s1])?,
        ),
        _ => return None,
    };
    // A leap second (60) is read as 59.
    if hour > 23 || minute > 59 || second > 60 || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59);
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// Year, month, day and the `HH:MM:SS` bytes of a date.
type DateParts<'a> = (i64, i64, i64, &'a [u8]);

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn imf_fixdate(s: &[u8]) -> Option<DateParts<'_>> {
    let rest = strip_weekday(s, b", ")?;
    let [d0, d1, b' ', m0, m1, m2, b' ', y0, y1, y2, y3, b' ', t @ .., b' ', b'G', b'M', b'T'] =
        rest
    else {
        return None;
    };
    Some((
        number(&[*y0, *y1, *y2, *y3])?,
        month_number(&[*m0, *m1, *m2])?,
        number(&[*d0, *d1])?,
        t,
    ))
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`
fn rfc850_date(s: &[u8]) -> Option<DateParts<'_>> {
    let rest = strip_long_weekday(s)?;
    let [d0, d1, b'-', m0, m1, m2, b'-', y0, y1, b' ', t @ .., b' ', b'G', b'M', b'T'] = rest
    else {
        return None;
    };
    let yy = number(&[*y0, *y1])?;
    Some((
        if yy < 70 { 2000 + yy } else { 1900 + yy },
        month_number(&[*m0, *m1, *m2])?,
        number(&[*d0, *d1])?,
        t,
    ))
}

/// `Sun Nov  6 08:49:37 1994`
fn asctime_date(s: &[u8]) -> Option<DateParts<'_>> {
    let rest = strip_weekday(s, b" ")?;
    let [m0, m1, m2, b' ', d0, d1, b' ', t @ .., b' ', y0, y1, y2, y3] = rest else {
        return None;
    };
    let day = if *d0 == b' ' {
        number(&[*d1])?
    } else {
        number(&[*d0, *d1])?
    };
    Some((
        number(&[*y0, *y1, *y2, *y3])?,
        month_number(&[*m0, *m1, *m2])?,
        day,
        t,
    ))
}

fn strip_weekday<'a>(s: &'a [u8], sep: &[u8]) -> Option<&'a [u8]> {
    let (name, rest) = s.split_at_checked(3)?;
    if !WEEKDAYS.iter().any(|w| w[..] == *name) {
        return None;
    }
    rest.strip_prefix(sep)
}

fn strip_long_weekday(s: &[u8]) -> Option<&[u8]> {
    WEEKDAYS_LONG
        .iter()
        .find_map(|w| s.strip_prefix(*w))?
        .strip_prefix(b", ")
}

fn number(digits: &[u8]) -> Option<i64> {
    digits.iter().try_fold(0i64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
    })
}

fn month_number(name: &[u8; 3]) -> Option<i64> {
    MONTHS.iter().position(|m| *m == name).map(|i| i as i64 + 1)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
    }

    fn fmt(t: SystemTime) -> String {
        let mut out = [0u8; 29];
        http_date(t, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn formats_imf_fixdate() {
        assert_eq!(fmt(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(fmt(at(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(fmt(at(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(fmt(at(1_700_000_000)), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(fmt(at(-1)), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(fmt(at(MAX_SECS + 100)), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(
            fmt(UNIX_EPOCH + Duration::from_millis(1999)),
            "Thu, 01 Jan 1970 00:00:01 GMT"
        );
        assert_eq!(
            fmt(UNIX_EPOCH - Duration::from_millis(1)),
            "Wed, 31 Dec 1969 23:59:59 GMT"
        );
    }

    #[test]
    fn parses_the_three_formats() {
        let want = Some(at(784_111_777));
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(parse_http_date(b"Sun Nov 06 08:49:37 1994"), want);
        assert_eq!(
            parse_http_date(b"Thursday, 01-Jan-30 00:00:00 GMT"),
            parse_http_date(b"Tue, 01 Jan 2030 00:00:00 GMT")
        );
        assert_eq!(
            parse_http_date(b"Wed, 31 Dec 1969 23:59:59 GMT"),
            Some(at(-1))
        );
        assert_eq!(
            parse_http_date(b"Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(at(951_782_400))
        );
    }

    #[test]
    fn rejects_malformed_dates() {
        for bad in [
            &b""[..],
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 6 Nov 1994 08:49:37 GMT",
            b"sun, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 06 nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 24:00:00 GMT",
            b"Sun, 06 Nov 1994 08:60:00 GMT",
            b"Sun, 30 Feb 1994 08:49:37 GMT",
            b"Sun, 29 Feb 1900 08:49:37 GMT",
            b"Sun, 00 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GMT ",
            b"Sun, 06 Nov 1994 8:49:37 GMT",
            b"Sun, 06 Nov +994 08:49:37 GMT",
            b"Sunday, 06-Nov-1994 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 94",
            b"Sun, 06 Nov 1994 08:49:37 GMT; length=3",
            b"\xff\xff\xff, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(
                parse_http_date(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn round_trips_over_centuries() {
        let mut secs = MIN_SECS;
        while secs < MAX_SECS {
            let mut out = [0u8; 29];
            format_secs(secs, &mut out);
            assert_eq!(
                parse_http_date(&out),
                Some(at(secs)),
                "{}",
                String::from_utf8_lossy(&out)
            );
            secs += 7_777_777;
        }
    }

    #[test]
    fn cache_reformats_once_per_second() {
        let mut cache = DateCache::default();
        let t = at(784_111_777);
        assert_eq!(cache.get(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            cache.get(t + Duration::from_millis(999)),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            cache.get(t + Duration::from_secs(1)),
            b"Sun, 06 Nov 1994 08:49:38 GMT"
        );
    }
}
