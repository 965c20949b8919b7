//! Upstream response heads: [`parse_response_head`] reads the status line and header fields
//! an upstream (backend) server sent to the proxy into a caller-owned [`ResponseHead`] of
//! byte ranges into that buffer.
//!
//! It is as strict as the request parser ([`super::request`]): a response whose body framing
//! could be read two ways (response smuggling / desync) is refused, and the proxy then closes
//! the upstream connection and answers 502 as nginx does. It is hand-written (no httparse) so
//! that every rule is checked in one pass, in arrival order, on exactly the bytes of the head.
//!
//! Like [`super::request::parse_head`] it keeps no state between calls: call it again with the
//! longer buffer after every read until it answers [`Parsed::Complete`]; the body starts at
//! [`ResponseHead::head_len`]. Each call re-reads the head from its start, at most `max_head`
//! bytes, so call it once per read. It never panics and never indexes out of bounds on what an
//! upstream sends, and allocates only to grow [`ResponseHead::headers`] beyond the capacity
//! it already has (a reused `ResponseHead` allocates nothing).
//!
//! Rules (nginx 1.22+ where nginx has one):
//! * status line `HTTP/1.0` or `HTTP/1.1`, one SP, three digits 100..=999, then either the
//!   line end (`HTTP/1.1 200\r\n`, as nginx) or SP and a reason phrase, possibly empty.
//!   Anything else before the code (`HTTP/2`, `HTTP/1.2`, `http/1.1`, an HTTP/0.9 body, a
//!   leading empty line) is "upstream sent no valid HTTP/1.0 header"; a bad code is "upstream
//!   sent invalid status";
//! * the head must end within `max_head` bytes and have at most `max_headers` header lines,
//!   else [`UpstreamError::TooBig`] ("upstream sent too big header");
//! * header names are RFC 9110 tokens; whitespace before the colon, obs-fold (a line starting
//!   with SP or HT), a line without a colon, NUL, a bare CR, and control bytes other than HT
//!   (DEL included) in a header line are "upstream sent invalid header: …" (the suffix names
//!   the rule); the same bytes in the reason phrase, or a second SP before the code, are
//!   "upstream sent invalid status";
//! * lines end in CRLF, **or in a bare LF** (as nginx's `ngx_http_parse_status_line` and
//!   `ngx_http_parse_header_line` accept): the head ends at the first empty line, `\r\n` or
//!   `\n`. The proxy re-serialises the head it forwards, so this cannot desync the client;
//!   a CR not followed by LF is always refused;
//! * Content-Length is 1*DIGIT (leading zeros allowed) of at most 2^63-1, nginx's off_t;
//!   empty, signed, spaced, hexadecimal or a list (`5, 5`) is "upstream sent invalid
//!   \"Content-Length\" header". A second Content-Length header is "upstream sent duplicate
//!   header line" **even when the values are equal** (nginx 1.23+ does the same; RFC 9110
//!   would allow equal copies, but refusing them costs nothing and removes a desync class);
//! * Transfer-Encoding must be exactly `chunked` (case-insensitive, OWS trimmed); anything else
//!   (`gzip, chunked`, `identity`, `chunked, chunked`, empty) is "upstream sent unknown
//!   \"Transfer-Encoding\"", a second Transfer-Encoding header a duplicate, Transfer-Encoding in
//!   an HTTP/1.0 response an error (stricter than nginx), and Transfer-Encoding together with
//!   Content-Length "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the
//!   same time".
//!
//! Stricter than nginx besides: exactly one SP between version and code (nginx skips several),
//! no IIS-style `403.1` codes, no codes below 100, control bytes refused in the reason phrase
//! and in values, non-token header names refused (nginx ignores some), Transfer-Encoding in
//! HTTP/1.0. Header values are trimmed of SP and HT on both sides (RFC 9110 OWS).
//!
//! ```
//! use proton_runtime::http::upstream::{parse_response_head, BodyKind, Parsed, ResponseHead};
//! let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
//! let mut head = ResponseHead::default();
//! assert_eq!(parse_response_head(buf, 4096, 100, &mut head), Ok(Parsed::Complete));
//! assert_eq!(head.status, 200);
//! assert_eq!(head.body_kind(false), BodyKind::Length(5));
//! assert_eq!(&buf[head.head_len..], b"hello");
//! ```

use super::request::{bytes_at, is_tchar, parse_content_length, token_eq, trim_ows};
use std::fmt;
use std::ops::Range;

/// A parsed response head: the status, byte ranges into the buffer given to
/// [`parse_response_head`], and the fields the proxy acts on. Reusable: every call resets it
/// (keeping the capacity of `headers`). Only meaningful after [`Parsed::Complete`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseHead {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// The status code, 100..=999.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: Range<usize>,
    /// Bytes of the head, final empty line included: the body starts here.
    pub head_len: usize,
    /// (name, value) ranges into the buffer, in arrival order; values trimmed of SP and HT.
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    /// The Content-Length, if there is one (never together with `chunked`).
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked` (HTTP/1.1 only, never with Content-Length).
    pub chunked: bool,
    /// A `close` token in a Connection header.
    pub conn_close: bool,
    /// A `keep-alive` token in a Connection header.
    pub conn_keep_alive: bool,
    /// An `upgrade` token in a Connection header.
    pub conn_upgrade: bool,
    /// The value of the first Upgrade header.
    pub upgrade: Option<Range<usize>>,
}

/// What [`parse_response_head`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete and no rule is broken so far: read more and call again.
    Partial,
    /// The head is complete; `out.head_len` bytes belong to it.
    Complete,
}

/// Why an upstream response head was refused. Either way the upstream connection must be
/// closed (its framing is unknown) and the client answered 502, as nginx does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpstreamError {
    /// The head did not end within `max_head` bytes, or had more than `max_headers` lines.
    TooBig,
    /// A rule was broken; the text is the nginx-like error log message.
    Invalid(&'static str),
}

impl UpstreamError {
    /// The error log text, as nginx words it (without the offending line).
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::TooBig => "upstream sent too big header",
            UpstreamError::Invalid(reason) => reason,
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for UpstreamError {}

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: 1xx, 204, 304, or a response to HEAD.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// A chunked body.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

const NO_VALID: &str = "upstream sent no valid HTTP/1.0 header";
const INVALID_STATUS: &str = "upstream sent invalid status";
const INVALID_NAME: &str = "upstream sent invalid header: invalid name";
const NO_COLON: &str = "upstream sent invalid header: no colon";
const WS_BEFORE_COLON: &str = "upstream sent invalid header: whitespace before colon";
const OBS_FOLD: &str = "upstream sent invalid header: obs-fold";
const CONTROL: &str = "upstream sent invalid header: control character";
const BARE_CR: &str = "upstream sent invalid header: bare CR";
const INVALID_CL: &str = "upstream sent invalid \"Content-Length\" header";
const DUP_CL: &str = "upstream sent duplicate header line: \"Content-Length\"";
const DUP_TE: &str = "upstream sent duplicate header line: \"Transfer-Encoding\"";
const UNKNOWN_TE: &str = "upstream sent unknown \"Transfer-Encoding\"";
const TE_HTTP10: &str = "upstream sent \"Transfer-Encoding\" in HTTP/1.0 response";
const CL_AND_TE: &str =
    "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time";

impl ResponseHead {
    pub fn reset(&mut self) {
        self.minor = 0;
        self.status = 0;
        self.reason = 0..0;
        self.head_len = 0;
        self.headers.clear();
        self.content_length = None;
        self.chunked = false;
        self.conn_close = false;
        self.conn_keep_alive = false;
        self.conn_upgrade = false;
        self.upgrade = None;
    }

    /// How the body that follows the head is delimited. `request_was_head`: the request was
    /// HEAD, so there is no body whatever the headers say.
    pub fn body_kind(&self, request_was_head: bool) -> BodyKind {
        if request_was_head
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
        {
            BodyKind::None
        } else if self.chunked {
            BodyKind::Chunked
        } else if let Some(n) = self.content_length {
            BodyKind::Length(n)
        } else {
            BodyKind::UntilClose
        }
    }

    /// Whether the upstream connection may be reused after this response (the body read to
    /// its end): HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection:
    /// keep-alive`; never when the body runs until close (counted as for a non-HEAD request,
    /// see [`keep_alive_for`](Self::keep_alive_for)) and never after 101 Switching Protocols.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive_for(false)
    }

    /// [`keep_alive`](Self::keep_alive) knowing whether the request was HEAD (a response to
    /// HEAD has no body, so it never runs until close).
    pub fn keep_alive_for(&self, request_was_head: bool) -> bool {
        if self.status == 101 || self.body_kind(request_was_head) == BodyKind::UntilClose {
            return false;
        }
        !self.conn_close && (self.minor >= 1 || self.conn_keep_alive)
    }

    /// The value of the first header called `name` (ASCII case-insensitive); `buf` is the
    /// buffer that was parsed.
    pub fn header<'b>(&self, buf: &'b [u8], name: &str) -> Option<&'b [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| bytes_at(buf, n).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| bytes_at(buf, v))
    }
}

/// Why scanning stopped early.
enum Stop {
    /// Ran out of bytes (within the `max_head` window) before the head ended.
    More,
    /// A rule is broken.
    Err(UpstreamError),
}

impl From<UpstreamError> for Stop {
    fn from(e: UpstreamError) -> Stop {
        Stop::Err(e)
    }
}

fn invalid(reason: &'static str) -> Stop {
    Stop::Err(UpstreamError::Invalid(reason))
}

type Scan<T> = Result<T, Stop>;

/// Parses the response head at the start of `buf` into `out`.
///
/// `Ok(Parsed::Partial)`: nothing wrong yet, read more and call again with the whole buffer.
/// `Ok(Parsed::Complete)`: `out` holds the head; the body starts at `out.head_len`.
/// `Err(e)`: log `e.reason()`, close the upstream connection, answer 502.
pub fn parse_response_head(
    buf: &[u8],
    max_head: usize,
    max_headers: usize,
    out: &mut ResponseHead,
) -> Result<Parsed, UpstreamError> {
    out.reset();
    let window = buf.get(..max_head).unwrap_or(buf);
    match scan_head(window, max_headers, out) {
        Ok(()) => Ok(Parsed::Complete),
        Err(Stop::Err(e)) => Err(e),
        // The head would end past `max_head`.
        Err(Stop::More) if buf.len() >= max_head => Err(UpstreamError::TooBig),
        Err(Stop::More) => Ok(Parsed::Partial),
    }
}

fn scan_head(w: &[u8], max_headers: usize, out: &mut ResponseHead) -> Scan<()> {
    let mut pos = scan_status_line(w, out)?;
    let mut te_seen = false;
    loop {
        match w.get(pos) {
            None => return Err(Stop::More),
            Some(b'\n') => {
                out.head_len = pos + 1;
                break;
            }
            Some(b'\r') => match w.get(pos + 1) {
                None => return Err(Stop::More),
                Some(b'\n') => {
                    out.head_len = pos + 2;
                    break;
                }
                Some(_) => return Err(invalid(BARE_CR)),
            },
            Some(b' ' | b'\t') => return Err(invalid(OBS_FOLD)),
            Some(_) => {}
        }
        if out.headers.len() >= max_headers {
            return Err(UpstreamError::TooBig.into());
        }
        let (name, value, next) = scan_header_line(w, pos)?;
        pos = next;
        interpret_header(bytes_at(w, &name), &value, w, &mut te_seen, out)?;
        out.headers.push((name, value));
    }
    if out.chunked && out.content_length.is_some() {
        return Err(invalid(CL_AND_TE));
    }
    Ok(())
}

/// `HTTP/1.x SP DDD [SP reason] EOL`; fills minor, status, reason; returns where the header
/// lines start.
fn scan_status_line(w: &[u8], out: &mut ResponseHead) -> Scan<usize> {
    if !w.starts_with(b"HTTP/1.") {
        for (i, &want) in b"HTTP/1.".iter().enumerate() {
            match w.get(i) {
                None => return Err(Stop::More),
                Some(&b) if b == want => {}
                Some(_) => return Err(invalid(NO_VALID)),
            }
        }
    }
    out.minor = match w.get(7) {
        None => return Err(Stop::More),
        Some(b'0') => 0,
        Some(b'1') => 1,
        Some(_) => return Err(invalid(NO_VALID)),
    };
    match w.get(8) {
        None => return Err(Stop::More),
        Some(b' ') => {}
        Some(_) => return Err(invalid(NO_VALID)),
    }
    let mut status: u16 = 0;
    for i in 9..12 {
        match w.get(i) {
            None => return Err(Stop::More),
            Some(b'0') if i == 9 => return Err(invalid(INVALID_STATUS)),
            Some(&b) if b.is_ascii_digit() => status = status * 10 + u16::from(b - b'0'),
            Some(_) => return Err(invalid(INVALID_STATUS)),
        }
    }
    out.status = status;
    match w.get(12) {
        None => Err(Stop::More),
        Some(b' ') => {
            let (end, next) = scan_to_eol(w, 13, INVALID_STATUS, INVALID_STATUS)?;
            out.reason = 13..end;
            Ok(next)
        }
        Some(b'\r' | b'\n') => {
            let (end, next) = scan_to_eol(w, 12, INVALID_STATUS, INVALID_STATUS)?;
            out.reason = end..end;
            Ok(next)
        }
        Some(_) => Err(invalid(INVALID_STATUS)),
    }
}

/// Scans field content from `from` to the end of the line: SP, HT, VCHAR and obs-text only.
/// Returns (where the content ends, where the next line starts).
#[inline]
fn scan_to_eol(
    w: &[u8],
    from: usize,
    control: &'static str,
    bare_cr: &'static str,
) -> Scan<(usize, usize)> {
    // Whole words of plain field content are skipped eight bytes at a time; the byte-by-byte
    // scan takes over at the first word holding a byte below 0x20 or a DEL (the line end,
    // usually), so the answer is always the byte-by-byte one.
    let mut at = from;
    while let Some(word) = w.get(at..at + 8) {
        if word_may_have_control(word) {
            break;
        }
        at += 8;
    }
    scan_to_eol_bytewise(w, at, control, bare_cr)
}

/// [`scan_to_eol`] one byte at a time: the reference, and the path for unusual lines.
fn scan_to_eol_bytewise(
    w: &[u8],
    from: usize,
    control: &'static str,
    bare_cr: &'static str,
) -> Scan<(usize, usize)> {
    let rest = w.get(from..).unwrap_or_default();
    // The first byte that is not HT, SP or visible: CR, LF or a control.
    let Some(k) = rest
        .iter()
        .position(|&b| !(b == b'\t' || (b >= 0x20 && b != 0x7f)))
    else {
        return Err(Stop::More);
    };
    let i = from + k;
    match rest.get(k) {
        Some(b'\n') => Ok((i, i + 1)),
        Some(b'\r') => match w.get(i + 1) {
            None => Err(Stop::More),
            Some(b'\n') => Ok((i, i + 2)),
            Some(_) => Err(invalid(bare_cr)),
        },
        _ => Err(invalid(control)),
    }
}

/// Whether the 8 bytes of `w` include one below 0x20 or a DEL (exact for the whole word;
/// HT counts, the caller looks closer).
#[inline]
fn word_may_have_control(w: &[u8]) -> bool {
    use super::swar::{load_word, HIGH, ONES};
    let Some(x) = load_word(w) else {
        return true;
    };
    // A byte below 0x20 (bytes of 0x80 and above never count).
    let low = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    // A byte equal to 0x7f: a zero byte of x ^ 0x7f7f…
    let y = x ^ (ONES * 0x7f);
    let del = y.wrapping_sub(ONES) & !y & HIGH;
    (low | del) != 0
}

/// One header line starting at `pos` (not empty, not starting with SP/HT). Returns the name
/// range, the value range (OWS trimmed) and where the next line starts.
fn scan_header_line(w: &[u8], pos: usize) -> Scan<(Range<usize>, Range<usize>, usize)> {
    let rest = w.get(pos..).unwrap_or_default();
    let Some(k) = rest.iter().position(|&b| !is_tchar(b)) else {
        return Err(Stop::More);
    };
    let mut i = pos + k;
    match rest.get(k) {
        Some(b':') if k > 0 => {}
        Some(b' ' | b'\t') => return Err(invalid(WS_BEFORE_COLON)),
        Some(b'\r' | b'\n') => return Err(invalid(NO_COLON)),
        _ => return Err(invalid(INVALID_NAME)),
    }
    let name = pos..i;
    i += 1;
    while let Some(b' ' | b'\t') = w.get(i) {
        i += 1;
    }
    let start = i;
    let (mut end, next) = scan_to_eol(w, start, CONTROL, BARE_CR)?;
    while end > start && matches!(w.get(end - 1), Some(b' ' | b'\t')) {
        end -= 1;
    }
    Ok((name, start..end, next))
}

/// Applies the framing and connection rules of one complete header line.
fn interpret_header(
    name: &[u8],
    value: &Range<usize>,
    w: &[u8],
    te_seen: &mut bool,
    out: &mut ResponseHead,
) -> Scan<()> {
    let v = bytes_at(w, value);
    if token_eq(name, b"content-length") {
        if out.content_length.is_some() {
            return Err(invalid(DUP_CL));
        }
        out.content_length = Some(parse_content_length(v).map_err(|_| invalid(INVALID_CL))?);
    } else if token_eq(name, b"transfer-encoding") {
        if *te_seen {
            return Err(invalid(DUP_TE));
        }
        *te_seen = true;
        if !v.eq_ignore_ascii_case(b"chunked") {
            return Err(invalid(UNKNOWN_TE));
        }
        if out.minor == 0 {
            return Err(invalid(TE_HTTP10));
        }
        out.chunked = true;
    } else if token_eq(name, b"connection") {
        for token in v.split(|&b| b == b',') {
            let token = trim_ows(token);
            if token.eq_ignore_ascii_case(b"close") {
                out.conn_close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                out.conn_keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                out.conn_upgrade = true;
            }
        }
    } else if token_eq(name, b"upgrade") && out.upgrade.is_none() {
        out.upgrade = Some(value.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_HEAD: usize = 8192;
    const MAX_HEADERS: usize = 100;

    fn parse(buf: &[u8]) -> Result<(Parsed, ResponseHead), UpstreamError> {
        let mut head = ResponseHead::default();
        parse_response_head(buf, MAX_HEAD, MAX_HEADERS, &mut head).map(|p| (p, head))
    }

    /// The word-at-a-time line scan gives exactly the byte-by-byte scan's answer, for
    /// every line of up to 6 bytes over an alphabet of the interesting bytes, from every
    /// start offset.
    #[test]
    fn fast_line_scan_matches_the_bytewise_scan() {
        fn view(r: Scan<(usize, usize)>) -> Result<(usize, usize), Option<UpstreamError>> {
            r.map_err(|s| match s {
                Stop::More => None,
                Stop::Err(e) => Some(e),
            })
        }
        let alphabet = [b'a', b' ', b'\t', b'\r', b'\n', 0x00, 0x7f, 0x80];
        let mut cases = 0;
        crate::testutil::each_string(&alphabet, 6, |line| {
            for from in 0..=line.len() {
                let fast = view(scan_to_eol(line, from, "ctl", "cr"));
                let slow = view(scan_to_eol_bytewise(line, from, "ctl", "cr"));
                assert_eq!(fast, slow, "{line:?} from {from}");
                cases += 1;
            }
        });
        assert!(cases > 300_000);
    }

    /// Lines longer than a word: one or two interesting bytes at every position of a run
    /// of plain bytes, so the word-at-a-time control check sees them in every lane.
    #[test]
    fn fast_line_scan_matches_on_long_lines() {
        let special = [
            b' ', b'\t', b'\r', b'\n', 0x00, 0x08, 0x0a, 0x19, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80,
            0x9f, 0xa0, 0xff,
        ];
        let mut cases = 0;
        for len in 7..=19usize {
            for fill in [b'a', 0x80, b' ', 0xff] {
                for i in 0..len {
                    for &x in &special {
                        for j in i..len {
                            for &y in &special {
                                let mut line = vec![fill; len];
                                line[i] = x;
                                line[j] = y;
                                let from = (i + j) % 3;
                                let fast = scan_to_eol(&line, from, "ctl", "cr");
                                let slow = scan_to_eol_bytewise(&line, from, "ctl", "cr");
                                let same = match (&fast, &slow) {
                                    (Ok(a), Ok(b)) => a == b,
                                    (Err(Stop::More), Err(Stop::More)) => true,
                                    (Err(Stop::Err(a)), Err(Stop::Err(b))) => a == b,
                                    _ => false,
                                };
                                assert!(same, "{line:?} from {from}");
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(cases > 100_000);
    }

    fn complete(buf: &[u8]) -> ResponseHead {
        match parse(buf) {
            Ok((Parsed::Complete, head)) => head,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn rejects(buf: &[u8]) -> &'static str {
        match parse(buf) {
            Err(e) => e.reason(),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn text<'b>(buf: &'b [u8], r: &Range<usize>) -> &'b [u8] {
        bytes_at(buf, r)
    }

    const VALID: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nuntil close",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: \"x\"\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 404 \r\nX-Empty:\r\nX-Pad:  \t v \t \r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 3\nX: y\n\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\n\r\nabc",
        b"HTTP/1.1 999 Caf\xc3\xa9\r\nX-Bin: \xff\xfe\tok\r\nConnection: close\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
    ];

    #[test]
    fn content_length_response() {
        let buf = VALID[0];
        let h = complete(buf);
        assert_eq!((h.minor, h.status), (1, 200));
        assert_eq!(text(buf, &h.reason), b"OK");
        assert_eq!(h.content_length, Some(5));
        assert!(!h.chunked);
        assert_eq!(h.body_kind(false), BodyKind::Length(5));
        assert!(h.keep_alive());
        assert_eq!(&buf[h.head_len..], b"hello");
        assert_eq!(h.headers.len(), 2);
        assert_eq!(text(buf, &h.headers[1].0), b"Content-Type");
        assert_eq!(text(buf, &h.headers[1].1), b"text/plain");
    }

    #[test]
    fn chunked_response() {
        let buf = VALID[1];
        let h = complete(buf);
        assert!(h.chunked);
        assert_eq!(h.content_length, None);
        assert_eq!(h.body_kind(false), BodyKind::Chunked);
        assert!(h.keep_alive());
        assert_eq!(&buf[h.head_len..], b"5\r\nhello\r\n0\r\n\r\n");
        let h = complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding:  ChUnKeD \t\r\n\r\n");
        assert!(h.chunked);
    }

    #[test]
    fn until_close_response() {
        let buf = VALID[2];
        let h = complete(buf);
        assert_eq!(h.minor, 0);
        assert_eq!(h.body_kind(false), BodyKind::UntilClose);
        assert!(!h.keep_alive());
        // HTTP/1.1 without a length runs until close too, keep-alive or not.
        let h = complete(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(h.body_kind(false), BodyKind::UntilClose);
        assert!(!h.keep_alive());
        // ... unless the request was HEAD.
        assert_eq!(h.body_kind(true), BodyKind::None);
        assert!(h.keep_alive_for(true));
    }

    #[test]
    fn keep_alive_rules() {
        let h = complete(VALID[3]);
        assert!(h.conn_keep_alive && !h.conn_close);
        assert!(h.keep_alive());
        let h = complete(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(!h.keep_alive());
        let h = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        assert!(h.conn_close);
        assert!(!h.keep_alive());
        let h = complete(
            b"HTTP/1.1 200 OK\r\nConnection: foo,  Close\r\nConnection: KEEP-ALIVE\r\nContent-Length: 1\r\n\r\n",
        );
        assert!(h.conn_close && h.conn_keep_alive && !h.conn_upgrade);
        assert!(!h.keep_alive());
        // A token must match whole: "closed" is not "close".
        let h = complete(b"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n");
        assert!(!h.conn_close && h.keep_alive());
    }

    #[test]
    fn no_body_statuses() {
        let h = complete(VALID[4]);
        assert_eq!(h.status, 204);
        assert_eq!(h.body_kind(false), BodyKind::None);
        assert!(h.keep_alive());
        let h = complete(VALID[5]);
        assert_eq!(h.status, 304);
        assert_eq!(h.content_length, Some(1234));
        assert_eq!(h.body_kind(false), BodyKind::None);
        assert!(h.keep_alive());
        for status in [100u16, 103, 199] {
            let buf = format!("HTTP/1.1 {status} X\r\nContent-Length: 9\r\n\r\n");
            let h = complete(buf.as_bytes());
            assert_eq!(h.status, status);
            assert_eq!(h.body_kind(false), BodyKind::None);
        }
    }

    #[test]
    fn switching_protocols() {
        let buf = VALID[6];
        let h = complete(buf);
        assert_eq!(h.status, 101);
        assert!(h.conn_upgrade);
        assert_eq!(
            h.upgrade.as_ref().map(|r| text(buf, r)),
            Some(&b"websocket"[..])
        );
        assert_eq!(h.body_kind(false), BodyKind::None);
        assert!(
            !h.keep_alive(),
            "the connection now speaks another protocol"
        );
        assert_eq!(&buf[h.head_len..], b"\x81\x05hello");
    }

    #[test]
    fn head_request_has_no_body() {
        let h = complete(VALID[0]);
        assert_eq!(h.body_kind(true), BodyKind::None);
        let h = complete(VALID[1]);
        assert_eq!(h.body_kind(true), BodyKind::None);
        assert!(h.keep_alive_for(true));
    }

    #[test]
    fn interim_then_final() {
        let buf = VALID[7];
        let h = complete(buf);
        assert_eq!(h.status, 100);
        assert_eq!(h.body_kind(false), BodyKind::None);
        let rest = &buf[h.head_len..];
        let h = complete(rest);
        assert_eq!(h.status, 200);
        assert_eq!(&rest[h.head_len..], b"ok");
    }

    #[test]
    fn reason_phrase_forms() {
        let buf = VALID[8];
        let h = complete(buf);
        assert_eq!(h.status, 200);
        assert!(text(buf, &h.reason).is_empty());
        let buf = VALID[9];
        let h = complete(buf);
        assert_eq!(h.status, 404);
        assert!(text(buf, &h.reason).is_empty());
        let buf = b"HTTP/1.1 200 All  good\there\r\n\r\n";
        let h = complete(buf);
        assert_eq!(text(buf, &h.reason), b"All  good\there");
        let h = complete(b"HTTP/1.1 200\n\n");
        assert_eq!(h.head_len, 14);
    }

    #[test]
    fn header_values_trimmed_and_looked_up() {
        let buf = VALID[9];
        let h = complete(buf);
        assert_eq!(h.header(buf, "x-empty"), Some(&b""[..]));
        assert_eq!(h.header(buf, "X-PAD"), Some(&b"v"[..]));
        assert_eq!(h.header(buf, "missing"), None);
        let buf = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n";
        let h = complete(buf);
        assert_eq!(h.header(buf, "Set-Cookie"), Some(&b"a=1"[..]));
        assert_eq!(h.headers.len(), 2);
        let buf = b"HTTP/1.1 200 OK\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n";
        let h = complete(buf);
        assert_eq!(text(buf, &h.headers[0].0), b"!#$%&'*+-.^_`|~09azAZ");
    }

    #[test]
    fn bare_lf_line_endings_accepted() {
        let buf = VALID[10];
        let h = complete(buf);
        assert_eq!(h.content_length, Some(3));
        assert_eq!(h.header(buf, "x"), Some(&b"y"[..]));
        assert_eq!(&buf[h.head_len..], b"abc");
        // Mixed: a CRLF line then an LF line, and the reverse for the empty line.
        let buf = VALID[11];
        let h = complete(buf);
        assert_eq!(&buf[h.head_len..], b"abc");
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\nabc";
        let h = complete(buf);
        assert_eq!(&buf[h.head_len..], b"abc");
    }

    #[test]
    fn obs_text_accepted() {
        let buf = VALID[12];
        let h = complete(buf);
        assert_eq!(h.status, 999);
        assert_eq!(text(buf, &h.reason), "Café".as_bytes());
        assert_eq!(h.header(buf, "x-bin"), Some(&b"\xff\xfe\tok"[..]));
    }

    #[test]
    fn rejects_non_http_status_lines() {
        for buf in [
            &b"<html>hello</html>\r\n\r\n"[..],
            b"\r\nHTTP/1.1 200 OK\r\n\r\n",
            b" HTTP/1.1 200 OK\r\n\r\n",
            b"http/1.1 200 OK\r\n\r\n",
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/2.0 200 OK\r\n\r\n",
            b"HTTP/1.2 200 OK\r\n\r\n",
            b"HTTP/1.10 200 OK\r\n\r\n",
            b"HTTP/0.9 200 OK\r\n\r\n",
            b"HTTP/1.1\t200 OK\r\n\r\n",
            b"HTTP/1.1\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
        ] {
            assert_eq!(rejects(buf), NO_VALID, "{:?}", String::from_utf8_lossy(buf));
        }
        // Rejected as soon as the bytes cannot become a status line.
        assert_eq!(rejects(b"X"), NO_VALID);
        assert_eq!(rejects(b"HTTP/2"), NO_VALID);
    }

    #[test]
    fn rejects_bad_status_codes() {
        for buf in [
            &b"HTTP/1.1 20\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1  200 OK\r\n\r\n",
            b"HTTP/1.1 099 OK\r\n\r\n",
            b"HTTP/1.1 000\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 403.1 Forbidden\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 -20 OK\r\n\r\n",
            b"HTTP/1.1 200\tOK\r\n\r\n",
            b"HTTP/1.1 200 O\x00K\r\n\r\n",
            b"HTTP/1.1 200 O\x7fK\r\n\r\n",
            b"HTTP/1.1 200 OK\rX: y\r\n\r\n",
            b"HTTP/1.1 200\rX: y\r\n\r\n",
        ] {
            assert_eq!(
                rejects(buf),
                INVALID_STATUS,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    #[test]
    fn partial_heads() {
        for buf in [
            &b""[..],
            b"H",
            b"HTTP/1.",
            b"HTTP/1.1",
            b"HTTP/1.1 ",
            b"HTTP/1.1 20",
            b"HTTP/1.1 200",
            b"HTTP/1.1 200 OK",
            b"HTTP/1.1 200 OK\r",
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"HTTP/1.1 200 OK\r\nContent-Length:",
            b"HTTP/1.1 200 OK\r\nContent-Length: 12",
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r",
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r",
        ] {
            assert!(
                matches!(parse(buf), Ok((Parsed::Partial, _))),
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    #[test]
    fn errors_reported_before_the_head_ends() {
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\nBad Name"), WS_BEFORE_COLON);
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\nX: a\x00"), CONTROL);
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n"),
            DUP_CL
        );
    }

    #[test]
    fn too_big_head() {
        let buf = b"HTTP/1.1 200 OK\r\nX-Long: aaaaaaaaaaaaaaaaaaaa\r\n\r\nbody";
        let len = buf.len() - 4;
        let mut h = ResponseHead::default();
        assert_eq!(
            parse_response_head(buf, len, 10, &mut h),
            Ok(Parsed::Complete)
        );
        assert_eq!(h.head_len, len);
        assert_eq!(
            parse_response_head(buf, len - 1, 10, &mut h),
            Err(UpstreamError::TooBig)
        );
        // Incomplete and already at the limit.
        assert_eq!(
            parse_response_head(&buf[..20], 20, 10, &mut h),
            Err(UpstreamError::TooBig)
        );
        assert_eq!(
            parse_response_head(&buf[..19], 20, 10, &mut h),
            Ok(Parsed::Partial)
        );
        // An endless header line.
        let endless = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'a'; 10_000]].concat();
        assert_eq!(
            parse_response_head(&endless, 4096, 10, &mut h),
            Err(UpstreamError::TooBig)
        );
        assert_eq!(
            UpstreamError::TooBig.reason(),
            "upstream sent too big header"
        );
    }

    #[test]
    fn too_many_headers() {
        let buf = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        let mut h = ResponseHead::default();
        assert_eq!(
            parse_response_head(buf, MAX_HEAD, 3, &mut h),
            Ok(Parsed::Complete)
        );
        assert_eq!(h.headers.len(), 3);
        assert_eq!(
            parse_response_head(buf, MAX_HEAD, 2, &mut h),
            Err(UpstreamError::TooBig)
        );
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\n\r\n", MAX_HEAD, 0, &mut h),
            Ok(Parsed::Complete)
        );
    }

    #[test]
    fn rejects_bad_header_names() {
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nX-Foo : bar\r\n\r\n"),
            WS_BEFORE_COLON
        );
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nX-Foo\t: bar\r\n\r\n"),
            WS_BEFORE_COLON
        );
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello"),
            WS_BEFORE_COLON
        );
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\n: empty\r\n\r\n"), INVALID_NAME);
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\nX(Y): z\r\n\r\n"), INVALID_NAME);
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\nX@Y: z\r\n\r\n"), INVALID_NAME);
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nX\xc3\xa9: z\r\n\r\n"),
            INVALID_NAME
        );
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nX\x00: z\r\n\r\n"),
            INVALID_NAME
        );
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"), NO_COLON);
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\nNoColon\n\n"), NO_COLON);
        assert!(INVALID_NAME.starts_with("upstream sent invalid header"));
    }

    #[test]
    fn rejects_obs_fold() {
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n"),
            OBS_FOLD
        );
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nX-A: b\r\n\tc\r\n\r\n"),
            OBS_FOLD
        );
        // A space right after the status line is a fold too.
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\n X: y\r\n\r\n"), OBS_FOLD);
        assert_eq!(rejects(b"HTTP/1.1 200 OK\n X: y\n\n"), OBS_FOLD);
    }

    #[test]
    fn rejects_control_bytes_and_bare_cr() {
        for bad in [0u8, 1, 0x0b, 0x0c, 0x1b, 0x1f, 0x7f] {
            let buf = [b"HTTP/1.1 200 OK\r\nX: a".as_slice(), &[bad], b"b\r\n\r\n"].concat();
            assert_eq!(rejects(&buf), CONTROL, "byte {bad:#x}");
        }
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"), BARE_CR);
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n"), BARE_CR);
        // A bare CR as a line ending, and as the final empty line.
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\nX: a\rY: b\r\n\r\n"), BARE_CR);
        assert_eq!(rejects(b"HTTP/1.1 200 OK\r\nX: a\r\n\rbody"), BARE_CR);
        // HT is fine inside a value.
        let buf = b"HTTP/1.1 200 OK\r\nX: a\tb\r\n\r\n";
        assert_eq!(complete(buf).header(buf, "x"), Some(&b"a\tb"[..]));
    }

    #[test]
    fn content_length_values() {
        assert_eq!(
            complete(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").content_length,
            Some(0)
        );
        assert_eq!(
            complete(b"HTTP/1.1 200 OK\r\ncontent-length:007\r\n\r\n").content_length,
            Some(7)
        );
        assert_eq!(
            complete(b"HTTP/1.1 200 OK\r\nContent-Length: \t42 \t\r\n\r\n").content_length,
            Some(42)
        );
        let max = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", i64::MAX);
        assert_eq!(
            complete(max.as_bytes()).content_length,
            Some(i64::MAX as u64)
        );
        for v in [
            "",
            "+5",
            "-1",
            "1 2",
            "0x10",
            "5,5",
            "5, 5",
            "5;",
            "1e3",
            "9223372036854775808",
            "18446744073709551616",
            "99999999999999999999999999",
        ] {
            let buf = format!("HTTP/1.1 200 OK\r\nContent-Length: {v}\r\n\r\n");
            assert_eq!(rejects(buf.as_bytes()), INVALID_CL, "{v:?}");
        }
    }

    #[test]
    fn duplicate_content_length() {
        // Refused even when the values agree.
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
            DUP_CL
        );
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\nhello"),
            DUP_CL
        );
        assert_eq!(
            DUP_CL,
            "upstream sent duplicate header line: \"Content-Length\""
        );
    }

    #[test]
    fn transfer_encoding_values() {
        for v in [
            "gzip, chunked",
            "chunked, chunked",
            "identity",
            "gzip",
            "",
            "chunked;q=1",
            "chunked,",
            "xchunked",
            "chunk ed",
        ] {
            let buf = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {v}\r\n\r\n");
            assert_eq!(rejects(buf.as_bytes()), UNKNOWN_TE, "{v:?}");
        }
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            DUP_TE
        );
        assert_eq!(
            rejects(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            TE_HTTP10
        );
        assert_eq!(UNKNOWN_TE, "upstream sent unknown \"Transfer-Encoding\"");
    }

    #[test]
    fn content_length_with_transfer_encoding() {
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            CL_AND_TE
        );
        assert_eq!(
            rejects(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
            CL_AND_TE
        );
        // Also on a response that has no body: the head itself is inconsistent.
        assert_eq!(
            rejects(b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
            CL_AND_TE
        );
        assert_eq!(
            UpstreamError::Invalid(CL_AND_TE).to_string(),
            "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time"
        );
    }

    #[test]
    fn reasons_are_nginx_like() {
        assert_eq!(NO_VALID, "upstream sent no valid HTTP/1.0 header");
        assert_eq!(INVALID_STATUS, "upstream sent invalid status");
        for r in [
            INVALID_NAME,
            NO_COLON,
            WS_BEFORE_COLON,
            OBS_FOLD,
            CONTROL,
            BARE_CR,
        ] {
            assert!(r.starts_with("upstream sent invalid header"), "{r}");
        }
        for r in [INVALID_CL, DUP_CL, DUP_TE, UNKNOWN_TE, TE_HTTP10, CL_AND_TE] {
            assert!(r.starts_with("upstream sent "), "{r}");
            assert_eq!(UpstreamError::Invalid(r).reason(), r);
        }
    }

    #[test]
    fn every_split_offset() {
        for &buf in VALID {
            let full = complete(buf);
            let mut head = ResponseHead::default();
            for n in 0..=buf.len() {
                let r = parse_response_head(&buf[..n], MAX_HEAD, MAX_HEADERS, &mut head);
                if n < full.head_len {
                    assert_eq!(
                        r,
                        Ok(Parsed::Partial),
                        "{:?} at {n}",
                        String::from_utf8_lossy(buf)
                    );
                } else {
                    assert_eq!(
                        r,
                        Ok(Parsed::Complete),
                        "{:?} at {n}",
                        String::from_utf8_lossy(buf)
                    );
                    assert_eq!(head, full, "{:?} at {n}", String::from_utf8_lossy(buf));
                }
            }
        }
    }

    #[test]
    fn split_offsets_of_invalid_heads_never_disagree() {
        // A prefix of a bad head is either Partial or the same error as the whole head.
        for buf in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
        ] {
            let want = parse(buf).map(|(p, _)| p);
            assert!(want.is_err());
            for n in 0..buf.len() {
                let got = parse(&buf[..n]).map(|(p, _)| p);
                assert!(got == Ok(Parsed::Partial) || got == want, "{got:?} at {n}");
            }
        }
    }

    #[test]
    fn reuse_does_not_allocate() {
        let mut head = ResponseHead::default();
        let buf = VALID[0];
        assert_eq!(
            parse_response_head(buf, MAX_HEAD, MAX_HEADERS, &mut head),
            Ok(Parsed::Complete)
        );
        let (ptr, cap) = (head.headers.as_ptr(), head.headers.capacity());
        for _ in 0..10 {
            for n in 0..=buf.len() {
                let _ = parse_response_head(&buf[..n], MAX_HEAD, MAX_HEADERS, &mut head);
            }
            assert_eq!((head.headers.as_ptr(), head.headers.capacity()), (ptr, cap));
        }
        // A failed parse leaves no stale state behind.
        let _ = parse_response_head(VALID[1], MAX_HEAD, MAX_HEADERS, &mut head);
        assert!(head.chunked);
        let _ = parse_response_head(VALID[2], MAX_HEAD, MAX_HEADERS, &mut head);
        assert!(!head.chunked);
        assert_eq!(head, complete(VALID[2]));
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let interesting = b"\r\n :\t\x00\x7f,0129-chunkedHTTP/1.";
        let mut head = ResponseHead::default();
        let mut completed = 0;
        for round in 0..600 {
            let mut buf = VALID[round % VALID.len()].to_vec();
            for _ in 0..=(next() % 4) {
                let at = (next() as usize) % buf.len();
                let r = next();
                match r % 4 {
                    0 => buf[at] ^= (r >> 8) as u8 | 1,
                    1 => buf[at] = interesting[(r >> 8) as usize % interesting.len()],
                    2 => {
                        buf.remove(at);
                    }
                    _ => buf.insert(at, interesting[(r >> 8) as usize % interesting.len()]),
                }
                if buf.is_empty() {
                    buf.push(b'H');
                }
            }
            let max_head = 16 + (next() as usize) % 128;
            let max_headers = (next() as usize) % 5;
            for (mh, mx) in [(max_head, max_headers), (MAX_HEAD, MAX_HEADERS)] {
                let r = parse_response_head(&buf, mh, mx, &mut head);
                let full_len = head.head_len;
                // Every prefix agrees with the whole: Partial before the end of the head
                // (or before the error), then the same answer.
                let mut scratch = ResponseHead::default();
                for n in 0..buf.len() {
                    let p = parse_response_head(&buf[..n], mh, mx, &mut scratch);
                    match r {
                        Ok(Parsed::Complete) if n >= full_len => assert_eq!(p, r),
                        _ => assert!(p == Ok(Parsed::Partial) || p == r, "{p:?} vs {r:?}"),
                    }
                }
                if r == Ok(Parsed::Complete) {
                    completed += 1;
                    assert!(head.head_len <= buf.len() && head.head_len <= mh);
                    assert!((100..=999).contains(&head.status));
                    assert!(head.headers.len() <= mx);
                    assert!(!(head.chunked && head.content_length.is_some()));
                    for (n, v) in &head.headers {
                        assert!(n.end <= head.head_len && v.end <= head.head_len);
                        assert!(n.start < n.end && v.start <= v.end);
                    }
                    // The head alone parses the same way.
                    let again = head.clone();
                    let r2 = parse_response_head(&buf[..head.head_len], mh, mx, &mut head);
                    assert_eq!(r2, Ok(Parsed::Complete));
                    assert_eq!(head, again);
                    let _ = (head.body_kind(false), head.keep_alive());
                }
            }
        }
        assert!(completed > 0);
    }
}
