//! Values of the IR written back in the config's own units (`7d`, `65s`, `1m` for a size), for
//! `protonc diff`. The inverse of the compiler's time and size parsing: what is written here
//! reads back as the same value. Never used on the runtime's path.

/// A time in milliseconds, in the largest nginx unit that divides it exactly
/// (`604800000` → `7d`, `65000` → `65s`, `1500` → `1500ms`).
pub fn time_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    time_secs(i64::try_from(ms / 1000).unwrap_or(i64::MAX))
}

/// A time in seconds (may be negative: `expires -1h`), in the largest unit that divides it.
pub fn time_secs(secs: i64) -> String {
    const UNITS: [(i64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    if secs == 0 {
        return "0s".into();
    }
    let sign = if secs < 0 { "-" } else { "" };
    let n = secs.unsigned_abs();
    for (u, name) in UNITS {
        let u = u.unsigned_abs();
        if n.is_multiple_of(u) {
            return format!("{sign}{}{name}", n / u);
        }
    }
    format!("{sign}{n}s")
}

/// A time of day in seconds after midnight, as `expires @15h30m` writes it.
pub fn time_of_day(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::from("@");
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.len() == 1 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// A size in bytes, in the largest of `g`, `m`, `k` that divides it exactly (`1048576` →
/// `1m`, `8192` → `8k`, `1000` → `1000`).
pub fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")];
    if bytes == 0 {
        return "0".into();
    }
    for (u, name) in UNITS {
        if bytes.is_multiple_of(u) {
            return format!("{}{name}", bytes / u);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_sizes() {
        assert_eq!(time_secs(604_800), "7d");
        assert_eq!(time_secs(30 * 86_400), "30d");
        assert_eq!(time_secs(-3600), "-1h");
        assert_eq!(time_secs(90), "90s");
        assert_eq!(time_ms(65_000), "65s");
        assert_eq!(time_ms(60_000), "1m");
        assert_eq!(time_ms(1_500), "1500ms");
        assert_eq!(time_ms(0), "0s");
        assert_eq!(time_of_day(15 * 3600 + 30 * 60), "@15h30m");
        assert_eq!(time_of_day(0), "@0s");
        assert_eq!(size(1 << 20), "1m");
        assert_eq!(size(8192), "8k");
        assert_eq!(size(1000), "1000");
        assert_eq!(size(1 << 30), "1g");
        assert_eq!(size(0), "0");
    }
}
