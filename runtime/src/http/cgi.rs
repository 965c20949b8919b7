//! CGI response heads (RFC 3875, section 6), as FastCGI applications send them: header lines
//! without a status line, the status in a `Status:` field (else 302 when there is a
//! `Location`, else 200, as nginx's fastcgi module decides). [`to_http`] rewrites such a head
//! as an HTTP/1.1 one, so that the proxy's strict response parser, its header rules and its
//! variables (`$upstream_http_*`) serve both protocols unchanged.

use super::request::is_tchar;
use super::response::reason_phrase;

/// Why a CGI head was refused (nginx's log words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgiError {
    /// No end of the head within the limit (`fastcgi_buffer_size`).
    TooBig,
    /// A line that is not `name: value`.
    InvalidHeader,
    /// A `Status` whose value does not start with a status code.
    InvalidStatus,
}

impl CgiError {
    pub fn reason(self) -> &'static str {
        match self {
            CgiError::TooBig => "upstream sent too big header",
            CgiError::InvalidHeader => "upstream sent invalid header",
            CgiError::InvalidStatus => "upstream sent invalid status",
        }
    }
}

/// Reads the CGI head at the start of `input` (at most `max` bytes of it) and appends the
/// same head in HTTP/1.1 form to `out`: a status line, then every field but `Status` and
/// `Transfer-Encoding` (the body's end is the application's end of output, never a chunked
/// coding), then the empty line. `Ok(Some(n))`: the head was the first `n` bytes of `input`;
/// `Ok(None)`: not whole yet (nothing appended).
pub fn to_http(input: &[u8], max: usize, out: &mut Vec<u8>) -> Result<Option<usize>, CgiError> {
    let window = input.get(..max).unwrap_or(input);
    // Find the end first: nothing is written for a partial head.
    let mut at = 0;
    let end = loop {
        let Some(nl) = memchr::memchr(b'\n', &window[at..]) else {
            return if input.len() >= max {
                Err(CgiError::TooBig)
            } else {
                Ok(None)
            };
        };
        let line = &window[at..at + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        at += nl + 1;
        if line.is_empty() {
            break at;
        }
    };
    let mut status = None;
    let mut reason: &[u8] = b"";
    let mut location = false;
    let mark = out.len();
    out.extend_from_slice(b"HTTP/1.1 000 ");
    let reason_at = out.len();
    out.extend_from_slice(b"\r\n");
    let fields_at = out.len();
    for line in window[..end].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let colon = memchr::memchr(b':', line);
        let Some(colon) = colon.filter(|&c| c > 0 && line[..c].iter().all(|&b| is_tchar(b))) else {
            out.truncate(mark);
            return Err(CgiError::InvalidHeader);
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"status") {
            let code = value
                .get(..3)
                .filter(|d| d.iter().all(u8::is_ascii_digit))
                .map(|d| d.iter().fold(0u16, |n, &b| n * 10 + u16::from(b - b'0')))
                .filter(|c| (100..=999).contains(c));
            let Some(code) = code else {
                out.truncate(mark);
                return Err(CgiError::InvalidStatus);
            };
            status = Some(code);
            reason = value[3..].trim_ascii();
            continue;
        }
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            continue;
        }
        location |= name.eq_ignore_ascii_case(b"location");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let code = status.unwrap_or(if location { 302 } else { 200 });
    let digits = [
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ];
    out[mark + 9..mark + 12].copy_from_slice(&digits);
    let phrase: &[u8] = if reason.is_empty() {
        reason_phrase(code).as_bytes()
    } else {
        reason
    };
    out.splice(reason_at..reason_at, phrase.iter().copied());
    debug_assert!(fields_at <= out.len());
    Ok(Some(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(input: &[u8]) -> Result<Option<(String, usize)>, CgiError> {
        let mut out = Vec::new();
        Ok(to_http(input, 4096, &mut out)?.map(|n| (String::from_utf8(out).unwrap(), n)))
    }

    #[test]
    fn status_from_the_status_field_else_location_else_200() {
        assert_eq!(
            http(b"Status: 404 Not Found\r\nX-A: b\r\n\r\nbody").unwrap(),
            Some(("HTTP/1.1 404 Not Found\r\nX-A: b\r\n\r\n".into(), 33))
        );
        assert_eq!(
            http(b"Status: 503\nContent-Type: text/plain\n\n").unwrap(),
            Some((
                "HTTP/1.1 503 Service Temporarily Unavailable\r\nContent-Type: text/plain\r\n\r\n"
                    .into(),
                38
            ))
        );
        assert_eq!(
            http(b"Location: /x\r\n\r\n").unwrap().unwrap().0,
            "HTTP/1.1 302 Moved Temporarily\r\nLocation: /x\r\n\r\n"
        );
        assert_eq!(
            http(b"Status: 201\r\nLocation: /x\r\n\r\n")
                .unwrap()
                .unwrap()
                .0,
            "HTTP/1.1 201 Created\r\nLocation: /x\r\n\r\n"
        );
        assert_eq!(
            http(b"Content-Type: text/html\r\n\r\n").unwrap().unwrap().0,
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
        );
        assert_eq!(http(b"\r\n").unwrap().unwrap().0, "HTTP/1.1 200 OK\r\n\r\n");
    }

    #[test]
    fn transfer_encoding_is_dropped() {
        assert_eq!(
            http(b"Transfer-Encoding: chunked\r\nX: y\r\n\r\n")
                .unwrap()
                .unwrap()
                .0,
            "HTTP/1.1 200 OK\r\nX: y\r\n\r\n"
        );
    }

    #[test]
    fn partial_heads_need_more_at_every_split_point() {
        let whole = b"Status: 404 Not Found\r\nX-A: b\r\n\r\nbody";
        let head_len = 33;
        for i in 0..head_len {
            assert_eq!(http(&whole[..i]).unwrap(), None, "at {i}");
        }
        for i in head_len..=whole.len() {
            assert_eq!(http(&whole[..i]).unwrap().unwrap().1, head_len, "at {i}");
        }
    }

    #[test]
    fn bad_heads_are_refused() {
        assert_eq!(http(b"no colon\r\n\r\n"), Err(CgiError::InvalidHeader));
        assert_eq!(http(b": v\r\n\r\n"), Err(CgiError::InvalidHeader));
        assert_eq!(http(b"Bad Name: v\r\n\r\n"), Err(CgiError::InvalidHeader));
        assert_eq!(http(b"Status: abc\r\n\r\n"), Err(CgiError::InvalidStatus));
        assert_eq!(http(b"Status: 42\r\n\r\n"), Err(CgiError::InvalidStatus));
        assert_eq!(http(b"Status: 099\r\n\r\n"), Err(CgiError::InvalidStatus));
        let mut out = Vec::new();
        assert_eq!(
            to_http(&[b'a'; 100], 64, &mut out),
            Err(CgiError::TooBig),
            "no end within the limit"
        );
        assert!(out.is_empty());
    }
}
