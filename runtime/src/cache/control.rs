//! The caching fields of a response, sans-IO (RFC 9111): `Cache-Control` and
//! `Surrogate-Control` read as lists of directives (quoted strings kept whole, so a
//! `max-age=` inside an extension's quoted value is not one), `Age`, and the freshness a
//! response has left when it is stored (section 4.2).

/// One directive: its name and its argument (a quoted string without its quotes, the
/// backslash escapes left in: no argument of interest has any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directive<'a> {
    pub name: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// The directives of one field line, in order. A comma inside a quoted string does not end
/// a directive; empty list members are skipped (RFC 9110 5.6.1).
pub fn directives(line: &[u8]) -> impl Iterator<Item = Directive<'_>> {
    let mut rest = line;
    std::iter::from_fn(move || loop {
        // The member up to the next comma outside quotes.
        let mut quoted = false;
        let mut escaped = false;
        let mut end = rest.len();
        for (i, &b) in rest.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == b',' && !quoted {
                end = i;
                break;
            }
        }
        if rest.is_empty() {
            return None;
        }
        let member = rest[..end].trim_ascii();
        rest = rest.get(end + 1..).unwrap_or_default();
        if member.is_empty() {
            continue;
        }
        let (name, value) = match member.iter().position(|&b| b == b'=') {
            Some(i) => {
                let v = &member[i + 1..];
                let v = v
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(v);
                (&member[..i], Some(v))
            }
            None => (member, None),
        };
        return Some(Directive { name, value });
    })
}

/// A delta-seconds argument: digits (a larger number than 2^31 counts as 2^31, as RFC 9111
/// 1.2.2 says); `None` when it does not start with one (nginx reads the digits up to the
/// first other byte, and so does this).
pub fn delta_seconds(v: &[u8]) -> Option<u64> {
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in &v[..digits] {
        n = n.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Some(n.min(1 << 31))
}

/// What a response's `Cache-Control` lines say to a shared cache (the first of a repeated
/// directive counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control {
    /// `no-store`.
    pub no_store: bool,
    /// `no-cache` without field names: stored, but revalidated before every use.
    pub no_cache: bool,
    /// `private` without field names: not for a shared cache.
    pub private: bool,
    /// `no-cache="…"` or `private="…"`: the fields named are not sent from the cache.
    pub omits: bool,
    pub public: bool,
    /// `must-revalidate` or `proxy-revalidate`.
    pub must_revalidate: bool,
    pub must_understand: bool,
    /// `max-age` and `s-maxage`: `Some(None)` when the argument is not a number.
    pub max_age: Option<Option<u64>>,
    pub s_maxage: Option<Option<u64>>,
    pub stale_while_revalidate: Option<Option<u64>>,
    pub stale_if_error: Option<Option<u64>>,
}

impl Control {
    /// Adds the directives of one `Cache-Control` line.
    pub fn add(&mut self, line: &[u8]) {
        for d in directives(line) {
            let is = |n: &[u8]| d.name.eq_ignore_ascii_case(n);
            let qualified = d.value.is_some_and(|v| !v.trim_ascii().is_empty());
            let delta = d.value.and_then(delta_seconds);
            if is(b"no-store") {
                self.no_store = true;
            } else if is(b"no-cache") {
                if qualified {
                    self.omits = true;
                } else {
                    self.no_cache = true;
                }
            } else if is(b"private") {
                if qualified {
                    self.omits = true;
                } else {
                    self.private = true;
                }
            } else if is(b"public") {
                self.public = true;
            } else if is(b"must-revalidate") || is(b"proxy-revalidate") {
                self.must_revalidate = true;
            } else if is(b"must-understand") {
                self.must_understand = true;
            } else if is(b"max-age") {
                self.max_age.get_or_insert(delta);
            } else if is(b"s-maxage") {
                self.s_maxage.get_or_insert(delta);
            } else if is(b"stale-while-revalidate") {
                self.stale_while_revalidate.get_or_insert(delta);
            } else if is(b"stale-if-error") {
                self.stale_if_error.get_or_insert(delta);
            }
        }
    }

    /// The freshness lifetime the directives give a shared cache (`s-maxage`, else
    /// `max-age`); `Some(None)`: one is there but is not a number.
    pub fn lifetime(&self) -> Option<Option<u64>> {
        self.s_maxage.or(self.max_age)
    }
}

/// Whether a `Cache-Control` line's `no-cache="…"` or `private="…"` names `field`: such a
/// field is not sent from the cache (RFC 9111 5.2.2.4, 5.2.2.7).
pub fn omits(line: &[u8], field: &[u8]) -> bool {
    directives(line).any(|d| {
        (d.name.eq_ignore_ascii_case(b"no-cache") || d.name.eq_ignore_ascii_case(b"private"))
            && d.value.is_some_and(|v| {
                v.split(|&b| b == b',')
                    .any(|f| f.trim_ascii().eq_ignore_ascii_case(field))
            })
    })
}

/// The device name this cache gives itself in `Surrogate-Capability` (sent upstream by a
/// location that caches) and answers to in `Surrogate-Control`'s targeted directives.
pub const DEVICE: &str = "proton";

/// The `Surrogate-Capability` line a caching location sends upstream (Edge Architecture
/// Specification 1.0).
pub const CAPABILITY: &[u8] = b"Surrogate-Capability: proton=\"Surrogate/1.0\"\r\n";

/// What a `Surrogate-Control` line says to this cache (the Edge Architecture note): its
/// `max-age` and `no-store`, untargeted or targeted at [`DEVICE`] (`max-age=60;proton`; one
/// targeted at another device is for another cache and ignored). Its `max-age` is taken
/// only as `max-age=DIGITS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Surrogate {
    pub no_store: bool,
    pub max_age: Option<Option<u64>>,
}

impl Surrogate {
    pub fn add(&mut self, line: &[u8]) {
        for d in directives(line) {
            // `directive;device`: for that device only (this one is [`DEVICE`]).
            let split = |b: &'_ [u8]| -> (usize, bool) {
                match b.iter().position(|&c| c == b';') {
                    Some(i) => (i, b[i + 1..].trim_ascii() == DEVICE.as_bytes()),
                    None => (b.len(), true),
                }
            };
            let (name, value) = match d.value {
                Some(v) => {
                    let (end, mine) = split(v);
                    if !mine {
                        continue;
                    }
                    (d.name, Some(&v[..end]))
                }
                None => {
                    let (end, mine) = split(d.name);
                    if !mine {
                        continue;
                    }
                    (&d.name[..end], None)
                }
            };
            if name.eq_ignore_ascii_case(b"no-store") {
                self.no_store = true;
            } else if name.eq_ignore_ascii_case(b"max-age") {
                let v = value.filter(|v| !v.is_empty() && v.iter().all(u8::is_ascii_digit));
                self.max_age.get_or_insert(v.and_then(delta_seconds));
            }
        }
    }
}

/// The `Age` of a response from its lines' values: `Some(Ok(n))` for one line of digits,
/// `Some(Err(()))` for anything else (a list, a sign, a fraction, two lines), which makes
/// the response stale (RFC 9111 5.1); `None` without one.
pub fn age<'a>(mut lines: impl Iterator<Item = &'a [u8]>) -> Option<Result<u64, ()>> {
    let first = lines.next()?.trim_ascii();
    if lines.next().is_some() || first.is_empty() || !first.iter().all(u8::is_ascii_digit) {
        return Some(Err(()));
    }
    Some(delta_seconds(first).ok_or(()))
}

/// The age a response has when it arrives (RFC 9111 4.2.3, with the request's own time
/// taken as nil): the larger of the `Age` it says and the time since its `Date`.
pub fn initial_age(now: i64, date: Option<i64>, age: u64) -> u64 {
    let apparent = date.map_or(0, |d| now.saturating_sub(d).max(0) as u64);
    apparent.max(age)
}

/// Status codes whose meaning this cache knows (`must-understand` lets such a response be
/// stored whatever `no-store` says; any other is not stored): RFC 9110's.
pub fn understood(status: u16) -> bool {
    matches!(
        status,
        200..=206 | 300..=305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505
    )
}

/// The request `Cache-Control` directives this cache honours (RFC 9111 5.2.1): those that
/// never send more requests to the upstream than it would without them. `max-age`,
/// `min-fresh` and `no-cache` (which would let any client make the origin fetch) are left
/// to the configuration (`proxy_cache_bypass` with a `map` of `$http_cache_control`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestControl {
    /// `only-if-cached`: answered from the cache or 504, never from the upstream.
    pub only_if_cached: bool,
    /// `no-store`: the answer to this request is not stored.
    pub no_store: bool,
    /// `max-stale` (`Some(None)`: any staleness), for an object that may be sent stale.
    pub max_stale: Option<Option<u64>>,
}

impl RequestControl {
    pub fn add(&mut self, line: &[u8]) {
        for d in directives(line) {
            if d.name.eq_ignore_ascii_case(b"only-if-cached") {
                self.only_if_cached = true;
            } else if d.name.eq_ignore_ascii_case(b"no-store") {
                self.no_store = true;
            } else if d.name.eq_ignore_ascii_case(b"max-stale") {
                // (An argument that is not a number allows no staleness.)
                let v = d.value.map(|v| delta_seconds(v).unwrap_or(0));
                self.max_stale.get_or_insert(v);
            }
        }
    }

    /// Whether an object stale since `valid_sec` may answer at `now`.
    pub fn stale_ok(&self, valid_sec: i64, now: i64) -> bool {
        match self.max_stale {
            None => false,
            Some(None) => true,
            Some(Some(n)) => valid_sec.saturating_add(i64::try_from(n).unwrap_or(i64::MAX)) >= now,
        }
    }
}

/// The request target (`/path?query`) a response's `Location` or `Content-Location` names,
/// when it is on the request's own origin: a path, a relative reference (resolved against
/// the directory of `base`, the request's path), or an absolute URL whose authority is
/// `host` (the request's Host, with or without a port). False for another origin.
pub fn same_origin_target(value: &[u8], host: &[u8], base: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let v = value.trim_ascii();
    if v.is_empty() || v.starts_with(b"//") {
        return false;
    }
    let starts = |p: &[u8]| v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p);
    let rest = if starts(b"http://") {
        Some(&v[7..])
    } else if starts(b"https://") {
        Some(&v[8..])
    } else {
        None
    };
    match rest {
        Some(r) => {
            let end = r
                .iter()
                .position(|&b| b == b'/' || b == b'?')
                .unwrap_or(r.len());
            let authority = &r[..end];
            let name = |a: &[u8]| -> usize {
                // (A port is left out of the comparison; IPv6 literals keep their colons.)
                match a.iter().rposition(|&b| b == b':') {
                    Some(i) if !a[i..].contains(&b']') => i,
                    _ => a.len(),
                }
            };
            if !authority[..name(authority)].eq_ignore_ascii_case(&host[..name(host)]) {
                return false;
            }
            if end == r.len() || r[end] == b'?' {
                out.push(b'/');
            }
            out.extend_from_slice(&r[end..]);
        }
        None if v.starts_with(b"/") => out.extend_from_slice(v),
        None => {
            // A scheme of another kind (`mailto:`…) names no URI of this origin.
            let colon = v.iter().position(|&b| b == b':');
            let slash = v.iter().position(|&b| b == b'/' || b == b'?');
            if colon.is_some_and(|c| slash.is_none_or(|s| c < s)) {
                return false;
            }
            let path = base.split(|&b| b == b'?').next().unwrap_or_default();
            let dir = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
            if dir == 0 {
                out.push(b'/');
            }
            out.extend_from_slice(&path[..dir]);
            out.extend_from_slice(v);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> Vec<(String, Option<String>)> {
        directives(s.as_bytes())
            .map(|d| {
                (
                    String::from_utf8_lossy(d.name).into_owned(),
                    d.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn directives_split_outside_quotes() {
        assert_eq!(
            list(r#"extension="max-age=3600, x", max-age=1"#),
            vec![
                ("extension".into(), Some("max-age=3600, x".into())),
                ("max-age".into(), Some("1".into()))
            ]
        );
        assert_eq!(list(" , no-cache ,,"), vec![("no-cache".into(), None)]);
        assert_eq!(list(r#"a="x\",y", b"#).len(), 2);
        assert!(list("").is_empty());
    }

    #[test]
    fn control_reads_a_shared_caches_directives() {
        let mut c = Control::default();
        c.add(br#"extension="max-age=3600", max-age=1"#);
        assert_eq!(c.max_age, Some(Some(1)));
        let mut c = Control::default();
        c.add(b"max-age=60, s-maxage=10");
        c.add(b"max-age=5");
        assert_eq!(c.lifetime(), Some(Some(10)));
        assert_eq!(c.max_age, Some(Some(60)));
        let mut c = Control::default();
        c.add(br#"no-cache="a", private="b, c""#);
        assert!(c.omits && !c.no_cache && !c.private);
        let mut c = Control::default();
        c.add(b"No-Cache, PRIVATE, must-understand, proxy-revalidate, max-age=abc");
        assert!(c.no_cache && c.private && c.must_understand && c.must_revalidate);
        assert_eq!(c.max_age, Some(None));
        let mut c = Control::default();
        c.add(br#"max-age="30""#);
        assert_eq!(c.max_age, Some(Some(30)));
        let mut c = Control::default();
        c.add(b"max-age=99999999999");
        assert_eq!(c.max_age, Some(Some(1 << 31)));
    }

    #[test]
    fn omitted_fields() {
        assert!(omits(br#"no-cache="a""#, b"A"));
        assert!(omits(br#"max-age=1, private="x, a""#, b"a"));
        assert!(!omits(b"no-cache", b"a"));
        assert!(!omits(br#"ext="no-cache=a""#, b"a"));
    }

    #[test]
    fn surrogate_control() {
        let mut s = Surrogate::default();
        s.add(b"foobar, MaX-aGe=3600");
        assert_eq!(s.max_age, Some(Some(3600)));
        let mut s = Surrogate::default();
        s.add(b"max-age=3600;other");
        assert_eq!(s.max_age, None);
        let mut s = Surrogate::default();
        s.add(b"max-age=60;proton, no-store;proton");
        assert_eq!(s.max_age, Some(Some(60)));
        assert!(s.no_store);
        let mut s = Surrogate::default();
        s.add(b"max-age =100");
        assert_eq!(s.max_age, None);
        let mut s = Surrogate::default();
        s.add(b"max-age= 100");
        assert_eq!(s.max_age, Some(None));
        let mut s = Surrogate::default();
        s.add(b"no-store");
        assert!(s.no_store);
    }

    #[test]
    fn age_values() {
        let one = |v: &'static str| age(std::iter::once(v.as_bytes()));
        assert_eq!(one("7200"), Some(Ok(7200)));
        assert_eq!(one(" 0 "), Some(Ok(0)));
        for bad in [
            "abc",
            "-7200",
            "7200.0",
            "7200,0",
            "0, 0",
            "7200;foo=bar",
            "",
        ] {
            assert_eq!(one(bad), Some(Err(())), "{bad}");
        }
        let two: [&[u8]; 2] = [b"0", b"0"];
        assert_eq!(age(two.into_iter()), Some(Err(())));
        assert_eq!(age(std::iter::empty()), None);
        assert_eq!(initial_age(100, Some(90), 5), 10);
        assert_eq!(initial_age(100, Some(120), 5), 5);
        assert_eq!(initial_age(100, None, 0), 0);
    }

    #[test]
    fn request_directives() {
        let mut r = RequestControl::default();
        r.add(b"max-stale=100, only-if-cached, no-cache, max-age=0");
        assert!(r.only_if_cached && !r.no_store);
        assert!(r.stale_ok(1000, 1100) && !r.stale_ok(1000, 1101));
        let mut r = RequestControl::default();
        r.add(b"MAX-STALE, no-store");
        assert!(r.no_store && r.stale_ok(0, i64::MAX));
        assert!(!RequestControl::default().stale_ok(10, 11));
    }

    #[test]
    fn locations_on_the_same_origin() {
        let mut out = Vec::new();
        let mut t = |v: &str, host: &str, base: &str| {
            same_origin_target(v.as_bytes(), host.as_bytes(), base.as_bytes(), &mut out)
                .then(|| String::from_utf8_lossy(&out).into_owned())
        };
        assert_eq!(t("/a/b?x=1", "h", "/c").as_deref(), Some("/a/b?x=1"));
        assert_eq!(t("http://H:8080/x", "h", "/").as_deref(), Some("/x"));
        assert_eq!(t("https://h", "h:443", "/").as_deref(), Some("/"));
        assert_eq!(t("http://other/x", "h", "/").as_deref(), None);
        assert_eq!(t("//other/x", "h", "/").as_deref(), None);
        assert_eq!(
            t("target", "h", "/test/id?q").as_deref(),
            Some("/test/target")
        );
        assert_eq!(t("target", "h", "").as_deref(), Some("/target"));
        assert_eq!(t("mailto:x@y", "h", "/").as_deref(), None);
        assert_eq!(t("http://[::1]:80/v", "[::1]", "/").as_deref(), Some("/v"));
    }

    #[test]
    fn understood_statuses() {
        assert!(understood(200) && understood(404) && understood(308));
        assert!(!understood(599) && !understood(299) && !understood(104));
    }
}
