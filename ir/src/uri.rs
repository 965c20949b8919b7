//! Request-URI normalisation before routing, as nginx does it (ngx_http_parse_complex_uri):
//! the query is split off, `%XX` is decoded, `//` is merged, `.` and `..` segments are
//! resolved. A path that climbs above the root is refused (nginx answers 400).
//! Shared by the runtime and `protonc route`, so both route the same bytes.

/// Normalises the path part of a request target into `out` (cleared first). Returns false
/// for a path that is invalid: not starting with `/`, a bad `%` escape, a decoded NUL, or
/// `..` above the root.
pub fn normalize_path(target: &[u8], out: &mut Vec<u8>) -> bool {
    normalize_path_merging(target, true, out)
}

/// [`normalize_path`] with nginx's `merge_slashes` setting: with `merge` false, runs of `/`
/// are kept (an empty segment is a segment: `/a//../b` is `/a/b`).
pub fn normalize_path_merging(target: &[u8], merge: bool, out: &mut Vec<u8>) -> bool {
    // One pass finds where the path ends and whether it has anything to resolve: no `%`,
    // no `//`, no `/.` (the usual path) is copied as it is.
    let mut end = target.len();
    let mut plain = true;
    let mut prev = 0u8;
    for (i, &b) in target.iter().enumerate() {
        match b {
            b'?' | b'#' => {
                end = i;
                break;
            }
            b'%' => plain = false,
            b'/' | b'.' if prev == b'/' => plain = false,
            _ => {}
        }
        prev = b;
    }
    let path = target.get(..end).unwrap_or(target);
    if plain && path.first() == Some(&b'/') {
        out.clear();
        out.extend_from_slice(path);
        return true;
    }
    normalize_path_resolving(path, merge, out)
}

/// [`normalize_path`] for a path with `%`, `//` or dot segments (query already cut off);
/// also the reference the fast path is tested against.
fn normalize_path_resolving(path: &[u8], merge: bool, out: &mut Vec<u8>) -> bool {
    out.clear();
    if path.first() != Some(&b'/') {
        return false;
    }
    let mut i = 0;
    while i < path.len() {
        let mut b = path[i];
        if b == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                path.get(i + 1).and_then(|&c| hex(c)),
                path.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(h), Some(l)) => {
                    b = (h * 16 + l) as u8;
                    i += 2;
                }
                _ => return false,
            }
            if b == 0 {
                return false;
            }
        }
        i += 1;
        if b == b'/' {
            // Resolve the segment just finished.
            if merge && out.ends_with(b"/") {
                continue; // merge slashes
            }
            if out.ends_with(b"/.") {
                out.pop();
                continue;
            }
            if out.ends_with(b"/..") {
                if !pop_segment(out) {
                    return false;
                }
                continue;
            }
        }
        out.push(b);
    }
    if out.ends_with(b"/.") {
        out.pop();
    } else if out.ends_with(b"/..") && !pop_segment(out) {
        return false;
    }
    true
}

/// Removes a trailing `/..` and the segment before it, leaving the trailing `/`.
fn pop_segment(out: &mut Vec<u8>) -> bool {
    out.truncate(out.len() - 3); // drop "/.."
    if out.is_empty() {
        return false;
    }
    while let Some(&c) = out.last() {
        if c == b'/' {
            break;
        }
        out.pop();
    }
    if out.is_empty() {
        return false;
    }
    // `out` now ends with '/', the parent directory.
    true
}

/// Normalises a `Host` value for server selection: lowercase, port and trailing dot removed.
pub fn normalize_host(host: &str) -> String {
    let h = host.trim();
    // An IPv6 literal keeps its brackets, as nginx's `$host` (`[::1]`).
    if h.starts_with('[') {
        return match h.find(']') {
            Some(end) => h[..=end].to_ascii_lowercase(),
            // An unclosed literal has no port to cut (as the runtime's Host check reads it).
            None => h.trim_end_matches('.').to_ascii_lowercase(),
        };
    }
    let h = h.split_once(':').map_or(h, |(a, _)| a);
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// nginx's unescaping of a rewritten redirect (`ngx_unescape_uri` with
/// `NGX_UNESCAPE_REDIRECT`), in place from `from`: `%XX` becomes its byte when that is
/// printable and above `%` (so `%20`, `%0D%0A`, `%25`, `%22` stay escaped: no header
/// splitting), and everything from the first `?` (literal or `%3F`) on is left as it is.
/// nginx's handling of broken escapes is kept: `%` before a non-hex character is dropped,
/// an escape with a bad second digit or cut short by the end is dropped whole.
pub fn unescape_redirect(out: &mut Vec<u8>, from: usize) {
    let hex = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        _ => match c | 0x20 {
            c @ b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        },
    };
    let (mut r, mut w) = (from, from);
    while r < out.len() {
        let c = out[r];
        if c == b'?' {
            break;
        }
        if c != b'%' {
            out[w] = c;
            (r, w) = (r + 1, w + 1);
            continue;
        }
        let Some(&c1) = out.get(r + 1) else {
            // `%` at the end: dropped.
            r += 1;
            break;
        };
        let Some(d1) = hex(c1) else {
            // The `%` goes; the character after it stays.
            out[w] = c1;
            (r, w) = (r + 2, w + 1);
            continue;
        };
        let Some(d2) = out.get(r + 2).copied().and_then(hex) else {
            // A bad or missing second digit: the three characters go (two at the end).
            r = (r + 3).min(out.len());
            continue;
        };
        let ch = (d1 << 4) | d2;
        if ch == b'?' {
            out[w] = b'?';
            (r, w) = (r + 3, w + 1);
            break;
        }
        if ch > b'%' && ch < 0x7f {
            out[w] = ch;
            w += 1;
        } else {
            out.copy_within(r..r + 3, w);
            w += 3;
        }
        r += 3;
    }
    // The rest (after a `?`) as it is.
    out.copy_within(r.., w);
    let len = w + (out.len() - r);
    out.truncate(len);
}

/// Percent-escapes (`%XX`, uppercase hex, as nginx writes escapes) every byte of
/// `out[from..]` for which `escape` holds, in place: the bytes are moved back from the end,
/// so nothing is allocated beyond growing `out`, and a clean value is only scanned.
pub fn percent_encode_in_place(out: &mut Vec<u8>, from: usize, escape: impl Fn(u8) -> bool) {
    let n = out
        .get(from..)
        .map_or(0, |t| t.iter().filter(|&&b| escape(b)).count());
    if n == 0 {
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let old = out.len();
    out.resize(old + 2 * n, 0);
    let (mut src, mut dst) = (old, old + 2 * n);
    while src > from {
        src -= 1;
        let b = out[src];
        if escape(b) {
            dst -= 3;
            out[dst] = b'%';
            out[dst + 1] = HEX[usize::from(b >> 4)];
            out[dst + 2] = HEX[usize::from(b & 15)];
        } else {
            dst -= 1;
            out[dst] = b;
        }
    }
}

// Request fields as nginx reads them for variables, shared by the runtime and `protonc
// route`.

/// Whether header name `n` is the variable suffix `name` (lowercase, `_` for `-`), as
/// nginx compares them.
pub fn same_name(n: &[u8], name: &[u8]) -> bool {
    n.len() == name.len()
        && n.iter().zip(name).all(|(a, b)| {
            let a = a.to_ascii_lowercase();
            a == *b || (a == b'-' && *b == b'_')
        })
}

/// The value of argument `name` (compared ignoring case) in `args` (`a=1&b=2`); a name
/// without `=` has an empty value.
pub fn arg_value<'b>(args: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    args.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// The cookie `name` in one `Cookie` header value, as nginx's
/// `ngx_http_parse_multi_header_lines` finds it: pairs separated by `;`, the name compared
/// case-insensitively, spaces allowed around `=`; the value runs to the next `;`.
pub fn cookie_value<'b>(value: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    let mut rest = value;
    while !rest.is_empty() {
        let (pair, next) = match rest.iter().position(|&b| b == b';') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if let Some(v) = pair_value(pair, name) {
            return Some(v);
        }
        rest = &next[next.iter().take_while(|&&b| b == b' ').count()..];
    }
    None
}

/// The value of `name=value` (`pair` up to its separator), spaces after the name and the
/// `=` skipped; `None` when `pair` is not `name`.
pub fn pair_value<'b>(pair: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    let after = pair
        .get(..name.len())
        .filter(|n| n.eq_ignore_ascii_case(name))
        .map(|_| &pair[name.len()..])?;
    let after = &after[after.iter().take_while(|&&b| b == b' ').count()..];
    let v = after.strip_prefix(b"=")?;
    Some(&v[v.iter().take_while(|&&b| b == b' ').count()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Option<String> {
        let mut out = Vec::new();
        normalize_path(s.as_bytes(), &mut out).then(|| String::from_utf8_lossy(&out).into_owned())
    }

    /// The plain-path shortcut gives the full algorithm's answer for every target of up to
    /// 6 bytes over the bytes that matter.
    #[test]
    fn shortcut_matches_the_full_normalisation() {
        let alphabet = b"/.a%2e?#";
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        let mut cases = 0;
        for len in 0..=6u32 {
            for mut code in 0..alphabet.len().pow(len) {
                let mut t = Vec::new();
                for _ in 0..len {
                    t.push(alphabet[code % alphabet.len()]);
                    code /= alphabet.len();
                }
                let path_end = t
                    .iter()
                    .position(|&b| b == b'?' || b == b'#')
                    .unwrap_or(t.len());
                let a = normalize_path(&t, &mut fast);
                let b = normalize_path_resolving(&t[..path_end], true, &mut slow);
                assert_eq!(a, b, "{:?}", String::from_utf8_lossy(&t));
                if a {
                    assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(&t));
                }
                cases += 1;
            }
        }
        assert!(cases > 100_000);
    }

    #[test]
    fn nginx_normalisation() {
        assert_eq!(n("/").as_deref(), Some("/"));
        assert_eq!(n("/a/../b").as_deref(), Some("/b"));
        assert_eq!(n("/a/%2e%2e/b").as_deref(), Some("/b"));
        assert_eq!(n("//a///b").as_deref(), Some("/a/b"));
        assert_eq!(n("/a/./b/.").as_deref(), Some("/a/b/"));
        assert_eq!(n("/a/b/..").as_deref(), Some("/a/"));
        assert_eq!(n("/a?x=/../..").as_deref(), Some("/a"));
        assert_eq!(n("/%41%42").as_deref(), Some("/AB"));
        assert_eq!(n("/.."), None);
        assert_eq!(n("/a/../.."), None);
        assert_eq!(n("/%zz"), None);
        assert_eq!(n("/%00"), None);
        assert_eq!(n("a"), None);
    }

    #[test]
    fn hosts() {
        assert_eq!(normalize_host("WWW.Example.COM."), "www.example.com");
        assert_eq!(normalize_host("example.com:8080"), "example.com");
        assert_eq!(normalize_host("[::1]:80"), "[::1]");
        assert_eq!(normalize_host("[ABCD::1]"), "[abcd::1]");
    }
}

/// nginx's `ngx_http_parse_unsafe_uri`, for a URI an upstream names (`X-Accel-Redirect`):
/// splits off the arguments at the first `?` into `args`, decodes `%XX` escapes of the path
/// into `path`, and refuses (false) an empty URI, a NUL, and `..` as a whole segment at the
/// start or after a `/` (before and after decoding).
pub fn parse_unsafe_uri(uri: &[u8], path: &mut Vec<u8>, args: &mut Vec<u8>) -> bool {
    path.clear();
    args.clear();
    fn dotdot(p: &[u8]) -> bool {
        p.starts_with(b"..") && (p.len() == 2 || p[2] == b'/')
    }
    fn safe(p: &[u8]) -> bool {
        !dotdot(p)
            && p.iter()
                .enumerate()
                .all(|(i, &c)| c != 0 && !(c == b'/' && p.len() - i > 2 && dotdot(&p[i + 1..])))
    }
    if uri.is_empty() || uri[0] == b'?' {
        return false;
    }
    let (raw, rest) = match memchr_q(uri) {
        Some(i) => (&uri[..i], Some(&uri[i + 1..])),
        None => (uri, None),
    };
    if !safe(raw) {
        return false;
    }
    if let Some(a) = rest {
        args.extend_from_slice(a);
    }
    if !raw.contains(&b'%') {
        path.extend_from_slice(raw);
        return true;
    }
    // nginx's ngx_unescape_uri (type 0): `%` and a non-hex byte keeps the byte only; `%`, a
    // hex digit and a non-hex byte keeps nothing; a `%` at the end is dropped.
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        i += 1;
        if c != b'%' {
            path.push(c);
            continue;
        }
        let Some(&first) = raw.get(i) else { break };
        i += 1;
        let Some(h) = hex(first) else {
            path.push(first);
            continue;
        };
        let Some(&second) = raw.get(i) else { break };
        i += 1;
        if let Some(l) = hex(second) {
            path.push(h << 4 | l);
        }
    }
    !path.is_empty() && safe(path)
}

fn memchr_q(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'?')
}

#[cfg(test)]
mod unsafe_uri_tests {
    use super::parse_unsafe_uri;

    fn parse(u: &str) -> Option<(String, String)> {
        let (mut p, mut a) = (Vec::new(), Vec::new());
        parse_unsafe_uri(u.as_bytes(), &mut p, &mut a).then(|| {
            (
                String::from_utf8_lossy(&p).into_owned(),
                String::from_utf8_lossy(&a).into_owned(),
            )
        })
    }

    #[test]
    fn as_nginx() {
        assert_eq!(
            parse("/index.html"),
            Some(("/index.html".into(), String::new()))
        );
        assert_eq!(parse("/foo?bar"), Some(("/foo".into(), "bar".into())));
        assert_eq!(
            parse("/foo%20bar"),
            Some(("/foo bar".into(), String::new()))
        );
        assert_eq!(parse("/a/..b/c"), Some(("/a/..b/c".into(), String::new())));
        // Invalid escapes as nginx's ngx_unescape_uri.
        assert_eq!(parse("/a%zz"), Some(("/azz".into(), String::new())));
        assert_eq!(parse("/a%2zb"), Some(("/ab".into(), String::new())));
        assert_eq!(parse("/a%"), Some(("/a".into(), String::new())));
        for bad in [
            "",
            "?a",
            "..",
            "../foo",
            "/foo/..",
            "/foo/../x",
            "/foo/.%2e",
            "/a%00b",
            "%2e%2e/x",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}

#[cfg(test)]
mod unescape_redirect_tests {
    use super::unescape_redirect;

    fn un(s: &str) -> String {
        let mut v = b"keep".to_vec();
        v.extend_from_slice(s.as_bytes());
        unescape_redirect(&mut v, 4);
        assert_eq!(&v[..4], b"keep");
        String::from_utf8_lossy(&v[4..]).into_owned()
    }

    /// nginx's `ngx_unescape_uri(…, NGX_UNESCAPE_REDIRECT)`, case by case.
    #[test]
    fn as_nginx() {
        // rewrite_unescape.t
        assert_eq!(
            un("http%3A%2F%2Fexample.com%2F%3Ffrom"),
            "http://example.com/?from"
        );
        assert_eq!(
            un("http%3A%2F%2Fexample.com%0D%0Asplit"),
            "http://example.com%0D%0Asplit"
        );
        assert_eq!(
            un("http%3A%2F%2Fexample.com%2F%3Ffrom%3Dblah"),
            "http://example.com/?from%3Dblah"
        );
        assert_eq!(un("/blah%20%3Fblah"), "/blah%20?blah");
        assert_eq!(un("/blah%20%2Fblah"), "/blah%20/blah");
        // At and below `%`, and DEL and above, stay escaped; hex in either case.
        assert_eq!(un("%25%22%24%7e%7E%7f%80"), "%25%22%24~~%7f%80");
        // A literal `?` ends the unescaping.
        assert_eq!(un("/a%41?b=%41"), "/aA?b=%41");
        // Broken escapes, as nginx: `%` before a non-hex goes; a bad second digit takes
        // the three characters; an escape cut short by the end goes.
        assert_eq!(un("/a%zb"), "/azb");
        assert_eq!(un("/a%4zb"), "/ab");
        assert_eq!(un("/a%4"), "/a");
        assert_eq!(un("/a%"), "/a");
        assert_eq!(un(""), "");
        assert_eq!(un("plain"), "plain");
    }
}
