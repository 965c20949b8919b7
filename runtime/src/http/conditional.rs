//! Conditional requests on a representation Proton answers itself (a file, or a cached or
//! storable response), sans-IO: nginx's not_modified filter, in its order, with RFC 9110
//! 13.2.2's precedence where nginx differs (an `If-None-Match` decides alone; nginx wants
//! `If-Modified-Since` to agree too).

use proton_ir::IfModifiedSince;

/// The request's condition fields (`None`: absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    pub if_unmodified_since: Option<&'a [u8]>,
    pub if_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub if_none_match: Option<&'a [u8]>,
}

/// What the conditions say of a representation last modified at `mtime` (seconds since
/// the epoch) with entity tag `etag` (`None`: the representation has none, or `etag off`):
/// `Some(412)`, `Some(304)`, or `None` (answer as usual). `ims` is `if_modified_since`.
pub fn evaluate(
    c: &Conditions<'_>,
    mtime: Option<i64>,
    etag: Option<&[u8]>,
    ims: IfModifiedSince,
) -> Option<u16> {
    let secs = |v: &[u8]| {
        super::date::parse_http_date(v)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
    };
    if let Some(v) = c.if_unmodified_since {
        if mtime.is_none_or(|m| secs(v).is_none_or(|t| m > t)) {
            return Some(412);
        }
    }
    if let Some(v) = c.if_match {
        let ok = v.trim_ascii() == b"*" || etag.is_some_and(|e| super::etag::if_match(v, e));
        if !ok {
            return Some(412);
        }
    }
    if let Some(v) = c.if_none_match {
        let current =
            v.trim_ascii() == b"*" || etag.is_some_and(|e| super::etag::if_none_match(v, e));
        return current.then_some(304);
    }
    let v = c
        .if_modified_since
        .filter(|_| ims != IfModifiedSince::Off)?;
    let modified = match (mtime, secs(v)) {
        (Some(m), Some(t)) if ims == IfModifiedSince::Exact => m != t,
        (Some(m), Some(t)) => m > t,
        _ => true,
    };
    (!modified).then_some(304)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &[u8] = b"Sat, 01 Jan 2000 00:00:00 GMT";
    const T_SECS: i64 = 946_684_800;
    const LATER: &[u8] = b"Sun, 02 Jan 2000 00:00:00 GMT";

    fn eval(c: Conditions<'_>, ims: IfModifiedSince) -> Option<u16> {
        evaluate(&c, Some(T_SECS), Some(b"\"e\""), ims)
    }

    #[test]
    fn not_modified_as_nginx_with_if_none_match_first() {
        let exact = IfModifiedSince::Exact;
        let none = Conditions::default();
        assert_eq!(eval(none, exact), None);
        let ims = |v| Conditions {
            if_modified_since: Some(v),
            ..none
        };
        assert_eq!(eval(ims(T), exact), Some(304));
        assert_eq!(eval(ims(LATER), exact), None);
        assert_eq!(eval(ims(LATER), IfModifiedSince::Before), Some(304));
        assert_eq!(eval(ims(b"junk"), IfModifiedSince::Before), None);
        assert_eq!(eval(ims(T), IfModifiedSince::Off), None);
        let inm = |v| Conditions {
            if_none_match: Some(v),
            if_modified_since: Some(LATER),
            ..none
        };
        // If-None-Match decides alone (RFC 9110 13.2.2).
        assert_eq!(eval(inm(b"\"e\""), exact), Some(304));
        assert_eq!(eval(inm(b"W/\"e\""), exact), Some(304));
        assert_eq!(eval(inm(b"*"), exact), Some(304));
        assert_eq!(eval(inm(b"\"x\""), exact), None);
        assert_eq!(
            evaluate(&inm(b"\"e\""), Some(T_SECS), None, exact),
            None,
            "no ETag to match"
        );
    }

    #[test]
    fn preconditions_fail_with_412() {
        let none = Conditions::default();
        let ius = |v| Conditions {
            if_unmodified_since: Some(v),
            ..none
        };
        assert_eq!(eval(ius(T), IfModifiedSince::Exact), None);
        assert_eq!(
            eval(
                ius(b"Fri, 31 Dec 1999 00:00:00 GMT"),
                IfModifiedSince::Exact
            ),
            Some(412)
        );
        assert_eq!(eval(ius(b"junk"), IfModifiedSince::Exact), Some(412));
        assert_eq!(
            evaluate(&ius(T), None, None, IfModifiedSince::Exact),
            Some(412)
        );
        let im = |v| Conditions {
            if_match: Some(v),
            ..none
        };
        assert_eq!(eval(im(b"\"e\""), IfModifiedSince::Exact), None);
        assert_eq!(eval(im(b" * "), IfModifiedSince::Exact), None);
        assert_eq!(eval(im(b"W/\"e\""), IfModifiedSince::Exact), Some(412));
        assert_eq!(eval(im(b"\"x\""), IfModifiedSince::Exact), Some(412));
    }
}
