//! What the codec knows about responses: nginx's reason phrases, the status line, the default
//! error pages, and HTTP dates (re-exported from [`super::date`]). Writers append to a `Vec`
//! the caller reuses; nothing here allocates on its own.

pub use super::date::{http_date, parse_http_date, DateCache};

/// The `Server` value with `server_tokens off`.
pub const SERVER: &str = "proton";

/// The `Server` value with `server_tokens on`.
pub const SERVER_WITH_VERSION: &str = concat!("proton/", env!("CARGO_PKG_VERSION"));

/// The reason phrase nginx 1.22 sends for `status` (its `ngx_http_status_lines` table, e.g.
/// "Moved Temporarily" for 302, "Not Allowed" for 405), or "" for a code it has none for
/// (nginx then sends `HTTP/1.1 418 ` with an empty reason). 494–497, nginx's internal codes,
/// are sent as 400.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 | 494..=497 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Time-out",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        421 => "Misdirected Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "",
    }
}

/// The status sent on the wire for `status`: nginx's internal 494–497 are sent as 400.
pub const fn wire_status(status: u16) -> u16 {
    match status {
        494..=497 => 400,
        s => s,
    }
}

/// Appends `HTTP/1.<minor> <status> <reason>\r\n` to `out`. `minor` 0 writes HTTP/1.0, any
/// other value HTTP/1.1 (nginx always answers HTTP/1.1, even to 1.0 requests: pass 1 to match
/// it). 494–497 are written as `400 Bad Request`.
pub fn write_status_line(out: &mut Vec<u8>, minor: u8, status: u16) {
    if minor != 0 {
        // The lines of nearly every response, as one copy each.
        let line: &[u8] = match status {
            200 => b"HTTP/1.1 200 OK\r\n",
            204 => b"HTTP/1.1 204 No Content\r\n",
            206 => b"HTTP/1.1 206 Partial Content\r\n",
            304 => b"HTTP/1.1 304 Not Modified\r\n",
            404 => b"HTTP/1.1 404 Not Found\r\n",
            _ => b"",
        };
        if !line.is_empty() {
            out.extend_from_slice(line);
            return;
        }
    }
    let status = wire_status(status);
    out.extend_from_slice(if minor == 0 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    write_decimal(out, status);
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `name`, `n` in decimal and CRLF (`Content-Length: 13\r\n`) without going through
/// `core::fmt` (a response head is built per request).
pub fn write_num_header(out: &mut Vec<u8>, name: &[u8], n: u64) {
    out.extend_from_slice(name);
    push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal without going through `core::fmt` (heads and variables are made
/// per request).
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    // Digits filled from the end of a small array, appended in one copy.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `n` in decimal, at least three digits (`099`), as nginx's `%03ui`.
fn write_decimal(out: &mut Vec<u8>, n: u16) {
    let digits = [
        (n / 10000 % 10) as u8,
        (n / 1000 % 10) as u8,
        (n / 100 % 10) as u8,
        (n / 10 % 10) as u8,
        (n % 10) as u8,
    ];
    let first = digits.iter().position(|&d| d != 0).unwrap_or(4).min(2);
    for d in digits.iter().skip(first) {
        out.push(b'0' + d);
    }
}

/// The title of nginx's default page for `code`, and for 494–497 the line under the heading.
fn page_text(code: u16) -> Option<(&'static str, Option<&'static str>)> {
    let title = match code {
        301 => "301 Moved Permanently",
        302 => "302 Found",
        303 => "303 See Other",
        307 => "307 Temporary Redirect",
        308 => "308 Permanent Redirect",
        400 => "400 Bad Request",
        401 => "401 Authorization Required",
        402 => "402 Payment Required",
        403 => "403 Forbidden",
        404 => "404 Not Found",
        405 => "405 Not Allowed",
        406 => "406 Not Acceptable",
        408 => "408 Request Time-out",
        409 => "409 Conflict",
        410 => "410 Gone",
        411 => "411 Length Required",
        412 => "412 Precondition Failed",
        413 => "413 Request Entity Too Large",
        414 => "414 Request-URI Too Large",
        415 => "415 Unsupported Media Type",
        416 => "416 Requested Range Not Satisfiable",
        421 => "421 Misdirected Request",
        429 => "429 Too Many Requests",
        494 => {
            return Some((
                "400 Bad Request",
                Some("Request Header Or Cookie Too Large"),
            ))
        }
        495 => return Some(("400 Bad Request", Some("The SSL certificate error"))),
        496 => {
            return Some((
                "400 Bad Request",
                Some("No required SSL certificate was sent"),
            ))
        }
        497 => {
            return Some((
                "400 Bad Request",
                Some("The plain HTTP request was sent to HTTPS port"),
            ))
        }
        500 => "500 Internal Server Error",
        501 => "501 Not Implemented",
        502 => "502 Bad Gateway",
        503 => "503 Service Temporarily Unavailable",
        504 => "504 Gateway Time-out",
        505 => "505 HTTP Version Not Supported",
        507 => "507 Insufficient Storage",
        _ => return None,
    };
    Some((title, None))
}

/// Appends the default error page for `code` to `out`, in the shape of nginx's built-in pages
/// with Proton's name (and version, with `server_tokens`) in the footer, and returns true;
/// returns false and writes nothing for a code nginx has no page for (2xx, 304, 418, …).
/// Pass [`HttpError::page_code`](super::HttpError::page_code) for a parse error, so that a
/// too-large head gets the "Request Header Or Cookie Too Large" page (494).
pub fn error_page(code: u16, server_tokens: bool, out: &mut Vec<u8>) -> bool {
    let Some((heading, detail)) = page_text(code) else {
        return false;
    };
    out.extend_from_slice(b"<html>\r\n<head><title>");
    match detail {
        // nginx titles these pages "400 <detail>".
        Some(d) => {
            out.extend_from_slice(b"400 ");
            out.extend_from_slice(d.as_bytes());
        }
        None => out.extend_from_slice(heading.as_bytes()),
    }
    out.extend_from_slice(b"</title></head>\r\n<body>\r\n<center><h1>");
    out.extend_from_slice(heading.as_bytes());
    out.extend_from_slice(b"</h1></center>\r\n");
    if let Some(d) = detail {
        out.extend_from_slice(b"<center>");
        out.extend_from_slice(d.as_bytes());
        out.extend_from_slice(b"</center>\r\n");
    }
    out.extend_from_slice(b"<hr><center>");
    out.extend_from_slice(if server_tokens {
        SERVER_WITH_VERSION.as_bytes()
    } else {
        SERVER.as_bytes()
    });
    out.extend_from_slice(b"</center>\r\n</body>\r\n</html>\r\n");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_line(minor: u8, status: u16) -> String {
        let mut out = Vec::new();
        write_status_line(&mut out, minor, status);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn common_status_lines_match_the_general_path() {
        for status in [200u16, 204, 206, 304, 404] {
            let mut general = Vec::new();
            general.extend_from_slice(b"HTTP/1.1 ");
            write_decimal(&mut general, status);
            general.push(b' ');
            general.extend_from_slice(reason_phrase(status).as_bytes());
            general.extend_from_slice(b"\r\n");
            assert_eq!(status_line(1, status).into_bytes(), general, "{status}");
        }
    }

    #[test]
    fn numeric_headers() {
        for n in [0u64, 7, 10, 13, 99, 100, 65_535, 1 << 32, u64::MAX] {
            let mut out = b"x".to_vec();
            write_num_header(&mut out, b"Content-Length: ", n);
            assert_eq!(out, format!("xContent-Length: {n}\r\n").into_bytes());
        }
    }

    #[test]
    fn status_lines_as_nginx() {
        assert_eq!(status_line(1, 200), "HTTP/1.1 200 OK\r\n");
        assert_eq!(status_line(0, 404), "HTTP/1.0 404 Not Found\r\n");
        assert_eq!(status_line(1, 302), "HTTP/1.1 302 Moved Temporarily\r\n");
        assert_eq!(status_line(1, 405), "HTTP/1.1 405 Not Allowed\r\n");
        assert_eq!(status_line(1, 418), "HTTP/1.1 418 \r\n");
        assert_eq!(status_line(1, 494), "HTTP/1.1 400 Bad Request\r\n");
        assert_eq!(
            status_line(1, 503),
            "HTTP/1.1 503 Service Temporarily Unavailable\r\n"
        );
        assert_eq!(status_line(1, 99), "HTTP/1.1 099 \r\n");
        assert_eq!(status_line(1, 1000), "HTTP/1.1 1000 \r\n");
        assert_eq!(status_line(1, 0), "HTTP/1.1 000 \r\n");
    }

    #[test]
    fn reuses_the_callers_vec() {
        let mut out = Vec::with_capacity(64);
        let cap = out.capacity();
        for _ in 0..100 {
            out.clear();
            write_status_line(&mut out, 1, 200);
        }
        assert_eq!(out.capacity(), cap);
    }

    #[test]
    fn error_pages_in_nginx_shape() {
        let mut out = Vec::new();
        assert!(error_page(404, false, &mut out));
        assert_eq!(
            out,
            b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n\
              <center><h1>404 Not Found</h1></center>\r\n<hr><center>proton</center>\r\n\
              </body>\r\n</html>\r\n"
        );
        out.clear();
        assert!(error_page(494, true, &mut out));
        let page = String::from_utf8(out.clone()).unwrap();
        assert!(page.starts_with(
            "<html>\r\n<head><title>400 Request Header Or Cookie Too Large</title></head>\r\n\
             <body>\r\n<center><h1>400 Bad Request</h1></center>\r\n\
             <center>Request Header Or Cookie Too Large</center>\r\n<hr><center>proton/"
        ));
        out.clear();
        assert!(error_page(302, false, &mut out));
        assert!(out.starts_with(b"<html>\r\n<head><title>302 Found</title>"));
        let before = out.len();
        for code in [200, 204, 304, 407, 418, 431, 444, 499, 506] {
            assert!(!error_page(code, true, &mut out), "{code}");
        }
        assert_eq!(out.len(), before);
        for code in [
            301, 400, 401, 403, 405, 408, 413, 414, 416, 429, 495, 500, 502, 504, 507,
        ] {
            let mut out = Vec::new();
            assert!(error_page(code, false, &mut out), "{code}");
            assert!(out.ends_with(b"<hr><center>proton</center>\r\n</body>\r\n</html>\r\n"));
        }
    }
}

/// Percent-encodes (nginx's escaping style: `%0D`, `%0A`, `%00`) every CR, LF and NUL in
/// `out[from..]`: a header value made from variables (`$uri` decodes `%0d%0a` from the
/// request) must never end its line early and start another header, or another request
/// towards an upstream. In place, without allocating (the value is usually clean, and then
/// only scanned).
pub(crate) fn encode_line_breaks(out: &mut Vec<u8>, from: usize) {
    proton_ir::uri::percent_encode_in_place(out, from, |b| matches!(b, b'\r' | b'\n' | 0));
}

/// Appends the header line `name: value\r\n`, the value's line breaks encoded
/// ([`encode_line_breaks`]).
pub(crate) fn push_header_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    let at = out.len();
    out.extend_from_slice(value);
    encode_line_breaks(out, at);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod line_break_tests {
    use super::encode_line_breaks;

    #[test]
    fn only_the_value_is_encoded() {
        for (before, value, want) in [
            ("X: ", "clean", "X: clean"),
            ("X: ", "a\r\nSet-Cookie: x", "X: a%0D%0ASet-Cookie: x"),
            ("\r\nX: ", "\n\0\r", "\r\nX: %0A%00%0D"),
            ("", "", ""),
            ("X: ", "\r", "X: %0D"),
        ] {
            let mut out = format!("{before}{value}").into_bytes();
            encode_line_breaks(&mut out, before.len());
            assert_eq!(String::from_utf8_lossy(&out), want);
        }
        let mut out = b"abc".to_vec();
        encode_line_breaks(&mut out, 10);
        assert_eq!(out, b"abc");
    }

    /// Every value of up to 5 bytes over the bytes that matter: no CR, LF or NUL is left,
    /// and decoding the escapes gives the value back.
    #[test]
    fn exhaustive_small_values() {
        crate::testutil::each_string(b"a\r\n\0%", 5, |value| {
            let mut out = b"H: ".to_vec();
            out.extend_from_slice(value);
            encode_line_breaks(&mut out, 3);
            let enc = &out[3..];
            assert!(
                !enc.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
                "{value:?}"
            );
            let mut back = Vec::new();
            let mut i = 0;
            while i < enc.len() {
                match enc.get(i..i + 3) {
                    Some(b"%0D") => (back.push(b'\r'), i += 3),
                    Some(b"%0A") => (back.push(b'\n'), i += 3),
                    Some(b"%00") => (back.push(0), i += 3),
                    _ => (back.push(enc[i]), i += 1),
                };
            }
            // A literal "%0D" in the value would decode to CR here; values with `%` followed
            // by such text are rare enough that the check skips them.
            if !value.contains(&b'%') {
                assert_eq!(back, value, "{value:?}");
            }
        });
    }
}

/// nginx's padding after an error page (status ≥ 400) for MSIE and Chrome, whose "friendly"
/// error pages would otherwise replace a short one (`msie_padding`).
pub const MSIE_PADDING: &[u8] =
    b"<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n\
<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n\
<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n\
<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n\
<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n\
<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n";

/// The browser families nginx tells apart by `User-Agent` (`ngx_http_process_user_agent`)
/// where it changes an answer: MSIE (not Opera), MSIE 4 to 6, Chrome and Safari on Mac OS X
/// (neither MSIE, Opera nor Gecko).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Browser {
    pub msie: bool,
    /// MSIE 4 or 5, or 6 without `SV1` (`keepalive_disable msie6`).
    pub msie6: bool,
    pub chrome: bool,
    /// `Safari/` on `Mac OS X`, not Chrome (`keepalive_disable safari`).
    pub safari: bool,
}

impl Browser {
    /// Classifies a `User-Agent` value as nginx does.
    pub fn of(ua: &[u8]) -> Browser {
        let find = |needle: &[u8]| memchr::memmem::find(ua, needle);
        let at = find(b"MSIE ").filter(|&i| i + 7 < ua.len());
        let mut msie = at.is_some();
        // "MSIE 4." and "MSIE 5." are msie6; "MSIE 6." too unless "SV1" follows.
        let mut msie6 = at.is_some_and(|i| {
            ua.get(i + 6) == Some(&b'.')
                && match ua.get(i + 5) {
                    Some(b'4' | b'5') => true,
                    Some(b'6') => ua
                        .get(i + 8..)
                        .is_none_or(|rest| memchr::memmem::find(rest, b"SV1").is_none()),
                    _ => false,
                }
        });
        let opera = find(b"Opera").is_some();
        if opera {
            msie = false;
            msie6 = false;
        }
        let other = !msie && !opera && find(b"Gecko/").is_none();
        let chrome = other && find(b"Chrome/").is_some();
        let safari = other && !chrome && find(b"Safari/").is_some() && find(b"Mac OS X").is_some();
        Browser {
            msie,
            msie6,
            chrome,
            safari,
        }
    }
}

/// nginx's `ngx_escape_uri` tables this crate needs: which bytes become `%XX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// `NGX_ESCAPE_URI`: space, `"`, `#`, `%`, `<`, `>`, `?`, `\`, `^`, `` ` ``, `{`, `|`,
    /// `}`, controls and bytes ≥ 0x7f.
    Uri,
    /// `NGX_ESCAPE_REFRESH`: space, `"`, `'`, `%`, controls and bytes ≥ 0x7f.
    Refresh,
    /// `NGX_ESCAPE_URI_COMPONENT`: everything but letters, digits, `-`, `.`, `_`, `~`.
    UriComponent,
    /// `NGX_ESCAPE_HTML`: space, `"`, `#`, `%`, `'`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`,
    /// `}`, controls and bytes ≥ 0x7f.
    Html,
}

/// Appends `s` to `out` escaped with `table`.
pub fn escape_uri(s: &[u8], table: Escape, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s {
        let esc = !(0x20..0x7f).contains(&b)
            || match table {
                Escape::Uri => b" \"#%<>?\\^`{|}".contains(&b),
                Escape::Refresh => b" \"'%".contains(&b),
                Escape::UriComponent => !(b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
                Escape::Html => b" \"#%'<>\\^`{|}".contains(&b),
            };
        if esc {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.push(b);
        }
    }
}

/// nginx's `ngx_escape_html`: `<`, `>`, `&` and `"` as entities.
pub fn escape_html(s: &[u8], out: &mut Vec<u8>) {
    for &b in s {
        match b {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod browser_tests {
    use super::Browser;

    #[test]
    fn user_agents_are_told_apart_as_nginx() {
        // (user agent, msie, msie6, chrome, safari)
        for (ua, msie, msie6, chrome, safari) in [
            ("", false, false, false, false),
            ("MSIE 5.0", true, true, false, false),
            (
                "Mozilla/4.0 (compatible; MSIE 4.01; Windows 98)",
                true,
                true,
                false,
                false,
            ),
            (
                "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)",
                true,
                true,
                false,
                false,
            ),
            (
                "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
                true,
                false,
                false,
                false,
            ),
            (
                "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)",
                true,
                false,
                false,
                false,
            ),
            // Too short after "MSIE ": not MSIE at all.
            ("MSIE 5.0", true, true, false, false),
            ("MSIE 5.", false, false, false, false),
            ("MSIE 5.0 Opera", false, false, false, false),
            ("Mac OS X Safari/7534.48.3", false, false, false, true),
            ("Windows Safari/7534.48.3", false, false, false, false),
            (
                "Mac OS X Chrome/100 Safari/537.36",
                false,
                false,
                true,
                false,
            ),
            (
                "Mac OS X Gecko/20100101 Safari/1",
                false,
                false,
                false,
                false,
            ),
        ] {
            let b = Browser::of(ua.as_bytes());
            assert_eq!(
                (b.msie, b.msie6, b.chrome, b.safari),
                (msie, msie6, chrome, safari),
                "{ua:?}"
            );
        }
    }
}
