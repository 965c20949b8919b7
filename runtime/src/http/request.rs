//! Request heads: [`parse_head`] reads the request line and header fields at the start of a
//! read buffer into a caller-owned [`RequestHead`] of byte ranges into that buffer.
//!
//! httparse does the grammar; this module then applies the rules that keep a request from
//! being read two ways (request smuggling) and nginx's sanity checks, so that the worker only
//! ever sees a head whose body framing is unambiguous. It never allocates, never copies the
//! buffer and never panics on what a client sends. It keeps no state between calls: call it
//! again with the longer buffer after every read until it answers [`Parsed::Complete`], then
//! advance by [`RequestHead::head_len`] (plus the body) to the next pipelined request. Each
//! call re-reads the head from its start (as hyper does with httparse), so call it once per
//! read, not per byte; the limits bound the work.
//!
//! Behaviour, as nginx 1.22 (each checked against the Debian package):
//! * request line (with its line ending) longer than [`Limits::max_uri`] → 414;
//! * head not complete within [`Limits::max_head`] bytes, a header line longer than
//!   [`Limits::max_uri`], or more than [`Limits::max_headers`] fields → 400 "Request Header
//!   Or Cookie Too Large" (page 494);
//! * several Content-Length headers, a list (`42, 42`), or a value that is not 1*DIGIT
//!   within 0..=2^63-1 (nginx's off_t) → 400;
//! * several Transfer-Encoding headers → 400; Transfer-Encoding in HTTP/1.0 → 400;
//!   Transfer-Encoding other than exactly `chunked` (case-insensitive) → 501;
//!   `chunked` together with Content-Length → 400;
//! * obs-fold, whitespace before the colon, a bare CR, NUL, or a header name outside the
//!   token set → 400;
//! * HTTP/1.1 without Host, several Host headers, or a Host nginx's `ngx_http_validate_host`
//!   refuses (empty, `..`, `/`, control bytes, space) → 400;
//! * HTTP/2.0 and above → 505; HTTP/0.x → 400;
//! * methods must be `[A-Z_-]+` (nginx answers 400 to `get`); unknown ones are
//!   [`Method::Other`] and left to the server (405/501); `TRACE` and `CONNECT` are answered
//!   405 once the head is complete and valid (checked last, as nginx);
//! * absolute-form targets (`GET http://host:port/path`) give [`RequestHead::absolute_host`],
//!   which nginx uses instead of the Host header; the Host header is still required on 1.1.
//!
//! Where this is stricter than nginx (400 here unless said):
//! * control bytes other than HTAB, and DEL, in header values (nginx lets them through);
//! * header lines nginx would ignore (`ignore_invalid_headers`): names with bytes outside
//!   the token set such as non-ASCII, or lines without a colon;
//! * more than [`Limits::max_headers`] fields (nginx has no count limit, only sizes);
//! * a space after the version (`HTTP/1.1 \r\n`), a target that is not UTF-8, HTTP/0.9
//!   simple requests (`GET /\r\n`), and HTTP/1.2+ (nginx serves 1.x as 1.1; 505 here).
//!
//! * a lone CR before the request line (nginx skips any CR or LF there; only CRLF and LF
//!   are skipped here).
//!
//! And more lenient: `OPTIONS * HTTP/1.1` is accepted (nginx answers 400 to any `*` target);
//! `CONNECT` with an origin-form target parses (and is then refused with 405, as nginx does);
//! header values are trimmed of spaces and tabs (RFC 9110 OWS), where nginx keeps a trailing
//! tab (`Content-Length: 5<TAB>` is 400 and `Transfer-Encoding: chunked<TAB>` 501 there).

use super::swar::{bytes_below, bytes_equal, load_word};
use std::mem::MaybeUninit;
use std::ops::Range;

use super::HttpError;

/// The most header fields a [`RequestHead`] can hold (nginx's default `max_headers`, and
/// the largest Proton takes).
pub const MAX_HEADERS: usize = 1000;

/// Size limits for a request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest head (request line, header fields and the empty line). The default,
    /// 1 KiB + 4 × 8 KiB, is what nginx's `client_header_buffer_size 1k` plus
    /// `large_client_header_buffers 4 8k` can hold. Capped at `u32::MAX`.
    pub max_head: usize,
    /// Longest request line, line ending included (nginx: one large header buffer, 8 KiB):
    /// longer is 414. Also the longest header line: longer is 400 "Request Header Or Cookie
    /// Too Large", as nginx.
    pub max_uri: usize,
    /// Most header fields; at most [`MAX_HEADERS`] (three more for an HTTP/2 stream's head).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 1024 + 4 * 8192,
            max_uri: 8192,
            max_headers: MAX_HEADERS,
        }
    }
}

/// The request method. Matching is case-sensitive, as in nginx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `PATCH`
    Patch,
    /// `TRACE` (nginx answers 405)
    Trace,
    /// `CONNECT` (nginx answers 405)
    Connect,
    /// Any other `[A-Z_-]+` token; its bytes are at [`RequestHead::method_range`].
    Other,
}

impl Method {
    /// The method a token names.
    pub fn from_token(token: &[u8]) -> Method {
        match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// The method's name, `None` for [`Method::Other`].
    pub const fn as_str(self) -> Option<&'static str> {
        Some(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
            Method::Connect => "CONNECT",
            Method::Other => return None,
        })
    }
}

/// What [`parse_head`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet and no rule is broken so far: read more and call again.
    Partial,
    /// The head is complete; `out` describes it and `out.head_len` bytes belong to it.
    Complete,
}

/// A byte range stored compactly: heads are capped well below 4 GiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const EMPTY: Span = Span { start: 0, end: 0 };

    fn new(range: Range<usize>) -> Span {
        match (u32::try_from(range.start), u32::try_from(range.end)) {
            (Ok(start), Ok(end)) => Span { start, end },
            _ => Span::EMPTY,
        }
    }

    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FieldSpan {
    name: Span,
    value: Span,
}

/// A parsed request head: byte ranges into the buffer given to [`parse_head`], plus the
/// fields the server acts on. Reusable: every call to [`parse_head`] resets it. Holds no
/// heap memory (about 1.7 KiB, most of it the header table).
#[derive(Clone, Debug)]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// The method token.
    pub method_range: Range<usize>,
    /// The request target as routed: the whole target in origin-form (`/path?query`); in
    /// absolute-form the part after the authority (see [`empty_path`](Self::empty_path));
    /// `*` for `OPTIONS *`.
    pub target: Range<usize>,
    /// Absolute-form target with a query but no path (`http://h?q`): `target` is `?q` and the
    /// path is `/`. (For `http://h` alone, `target` is the `/` of `://`, as nginx does.)
    pub empty_path: bool,
    /// The host of an absolute-form target, validated as nginx validates Host, without the
    /// port and a trailing dot. nginx selects the server by it, not by the Host header.
    pub absolute_host: Option<Range<usize>>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The Host header's host name, validated, without port and trailing dot (nginx's
    /// `$host` before lower-casing). The raw value is in the header table.
    pub host: Option<Range<usize>>,
    /// The Content-Length, if the request has one.
    pub content_length: Option<u64>,
    /// The body is chunked (`Transfer-Encoding: chunked`; never together with Content-Length).
    pub chunked: bool,
    /// The connection may be reused after this request: HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// HTTP/1.1 with `Expect: 100-continue`.
    pub expect_continue: bool,
    /// The value of the first Upgrade header.
    pub upgrade: Option<Range<usize>>,
    /// Bytes of the head, leading empty lines and the final empty line included: the body
    /// (or the next pipelined request) starts here.
    pub head_len: usize,
    /// The fields in arrival order (the capacity stays with the pooled head: no allocation
    /// once a worker has seen its largest head).
    headers: Vec<FieldSpan>,
}

impl Default for RequestHead {
    fn default() -> Self {
        RequestHead::new()
    }
}

impl RequestHead {
    /// An empty head, ready for [`parse_head`].
    pub const fn new() -> RequestHead {
        RequestHead {
            method: Method::Other,
            method_range: 0..0,
            target: 0..0,
            empty_path: false,
            absolute_host: None,
            minor_version: 1,
            host: None,
            content_length: None,
            chunked: false,
            keep_alive: false,
            expect_continue: false,
            upgrade: None,
            head_len: 0,
            headers: Vec::new(),
        }
    }

    fn reset(&mut self) {
        self.method = Method::Other;
        self.method_range = 0..0;
        self.target = 0..0;
        self.empty_path = false;
        self.absolute_host = None;
        self.minor_version = 1;
        self.host = None;
        self.content_length = None;
        self.chunked = false;
        self.keep_alive = false;
        self.expect_continue = false;
        self.upgrade = None;
        self.head_len = 0;
        self.headers.clear();
    }

    /// Drops the header fields whose names nginx calls invalid (`ignore_invalid_headers
    /// on`): a name of anything but letters, digits and `-`, and `_` unless `underscores`
    /// (`underscores_in_headers on`). Returns how many were dropped.
    pub fn drop_invalid_headers(&mut self, buf: &[u8], underscores: bool) -> usize {
        let n = self.headers.len();
        self.headers.retain(|f| {
            bytes_at(buf, &f.name.range())
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || (underscores && b == b'_'))
        });
        n - self.headers.len()
    }

    /// How many header fields the head has.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The name and value ranges of header field `i` (in arrival order). Values have
    /// surrounding whitespace trimmed.
    pub fn header(&self, i: usize) -> Option<(Range<usize>, Range<usize>)> {
        self.headers
            .get(i)
            .map(|f| (f.name.range(), f.value.range()))
    }

    /// The header fields as (name, value) ranges into the parsed buffer, in arrival order.
    pub fn headers(&self) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
        self.headers
            .iter()
            .map(|f| (f.name.range(), f.value.range()))
    }

    /// The header fields as (name, value) byte slices of `buf`, the buffer that was parsed.
    pub fn fields<'a>(&'a self, buf: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.headers()
            .map(move |(n, v)| (bytes_at(buf, &n), bytes_at(buf, &v)))
    }

    /// The value of the first header field called `name` (ASCII case-insensitive).
    pub fn get<'a>(&self, buf: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| bytes_at(buf, n).eq_ignore_ascii_case(name))
            .map(|(_, v)| bytes_at(buf, &v))
    }

    /// Marks a refused request: no body is read and the connection closes after the
    /// answer (nginx's keepalive off for 400, 413, 414, 494…).
    pub fn refuse_body_and_keepalive(&mut self) {
        self.keep_alive = false;
        self.content_length = None;
        self.chunked = false;
        self.expect_continue = false;
    }

    /// Whether the method is HEAD (the response has no body).
    pub fn is_head(&self) -> bool {
        self.method == Method::Head
    }

    /// The host nginx selects the server by: the absolute-form host, else the Host header's.
    pub fn server_name(&self) -> Option<Range<usize>> {
        self.absolute_host.clone().or_else(|| self.host.clone())
    }

    /// Whether a body follows the head (chunked, or a non-zero Content-Length).
    pub fn has_body(&self) -> bool {
        self.chunked || self.content_length.is_some_and(|n| n > 0)
    }
}

/// The request line at the start of `buf`, without its line ending, for error logs (nginx
/// logs it with every client error): whatever has arrived of it, at most `max` bytes. Works
/// on any bytes, also those [`parse_head`] rejected.
pub fn request_line(buf: &[u8], max: usize) -> &[u8] {
    let rest = tail(buf, skip_empty_lines(buf));
    let end = memchr::memchr2(b'\r', b'\n', rest)
        .unwrap_or(rest.len())
        .min(max);
    rest.get(..end).unwrap_or(&[])
}

/// `buf[range]`, or an empty slice if the range does not lie in `buf`.
pub fn bytes_at<'a>(buf: &'a [u8], range: &Range<usize>) -> &'a [u8] {
    buf.get(range.clone()).unwrap_or(&[])
}

/// Parses the request head at the start of `buf` into `out`.
///
/// `Ok(Parsed::Partial)`: nothing wrong yet, read more and call again with the whole buffer.
/// `Ok(Parsed::Complete)`: `out` holds the head; the body starts at `out.head_len`.
/// `Err(e)`: answer `e.status()` and close the connection.
pub fn parse_head(buf: &[u8], limits: &Limits, out: &mut RequestHead) -> Result<Parsed, HttpError> {
    out.reset();
    let max_head = limits.max_head.min(u32::MAX as usize);
    let line_start = skip_empty_lines(buf);
    let line = tail(buf, line_start);
    let line_end = memchr::memchr(b'\n', line);

    // Three more than MAX_HEADERS: an HTTP/2 stream's head adds `Host`, `Cookie` and
    // `Transfer-Encoding`.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS + 3];
    let slots = &mut slots[..limits.max_headers.min(MAX_HEADERS + 3)];
    let mut req = httparse::Request::new(&mut []);
    let mut config = httparse::ParserConfig::default();
    config.allow_multiple_spaces_in_request_line_delimiters(true);

    let parsed = match config.parse_request_with_uninit_headers(&mut req, buf, slots) {
        Ok(httparse::Status::Complete(n)) => Some(n),
        Ok(httparse::Status::Partial) => None,
        Err(e) => {
            let headers_start = line_end.map(|i| line_start + i + 1);
            match classify_error(buf, line_start, headers_start, e) {
                Some(e) => return Err(e),
                None => None,
            }
        }
    };

    let Some(head_len) = parsed else {
        // nginx's parser judges each byte of the method as it arrives: `xxxx…` is a 400
        // at once, not when its line ends (nginx-tests' h2.t "invalid preface").
        let method = line
            .iter()
            .position(|&b| matches!(b, b' ' | b'\r' | b'\n'))
            .map_or(line, |i| &line[..i]);
        if !method
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
        {
            return Err(HttpError::InvalidMethod);
        }
        // Not complete: enforce the limits on what has arrived so far.
        match line_end {
            Some(i) if i + 1 > limits.max_uri => return Err(HttpError::RequestLineTooLong),
            None if line.len() >= limits.max_uri => return Err(HttpError::RequestLineTooLong),
            // The header line being received must fit too (nginx: one large buffer).
            Some(_)
                if buf.len() - memchr::memrchr(b'\n', buf).map_or(0, |i| i + 1)
                    >= limits.max_uri =>
            {
                return Err(HttpError::HeaderTooLarge)
            }
            _ => {}
        }
        if buf.len() >= max_head {
            return Err(HttpError::HeaderTooLarge);
        }
        return Ok(Parsed::Partial);
    };

    if line_end.is_none_or(|i| i + 1 > limits.max_uri) {
        return Err(HttpError::RequestLineTooLong);
    }
    if head_len > max_head {
        return Err(HttpError::HeaderTooLarge);
    }
    let header_lines = buf.get(line_start..head_len).unwrap_or(&[]);
    // No line can be longer than the limit when the whole head is not (the usual case).
    if header_lines.len() > limits.max_uri {
        let mut line_begin = 0;
        for lf in memchr::memchr_iter(b'\n', header_lines) {
            if lf + 1 - line_begin > limits.max_uri {
                return Err(HttpError::HeaderTooLarge);
            }
            line_begin = lf + 1;
        }
    }
    out.head_len = head_len;

    let method = req.method.unwrap_or("").as_bytes();
    if method.is_empty()
        || !method
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
    {
        return Err(HttpError::InvalidMethod);
    }
    out.method = Method::from_token(method);
    out.method_range = range_in(buf, method);
    out.minor_version = req.version.unwrap_or(1).min(1);

    let target = req.path.unwrap_or("").as_bytes();
    let target_range = range_in(buf, target);
    interpret_target(target, target_range.start, out)?;

    let mut host_seen = false;
    let mut te: Option<&[u8]> = None;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;
    // The other headers nginx refuses to see twice (ngx_http_process_unique_header_line).
    const UNIQUE: [&[u8]; 8] = [
        b"if-modified-since",
        b"if-unmodified-since",
        b"if-match",
        b"if-none-match",
        b"if-range",
        b"content-range",
        b"expect",
        b"authorization",
    ];
    let mut unique_seen = 0u8;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = h.value;
        let value_range = range_in(buf, value);
        out.headers.push(FieldSpan {
            name: Span::new(range_in(buf, name)),
            value: Span::new(value_range.clone()),
        });

        if token_eq(name, b"host") {
            if host_seen {
                return Err(HttpError::DuplicateHost);
            }
            host_seen = true;
            let host = validate_host(value).ok_or(HttpError::InvalidHost)?;
            out.host = Some(value_range.start + host.start..value_range.start + host.end);
        } else if token_eq(name, b"content-length") {
            if out.content_length.is_some() {
                return Err(HttpError::DuplicateContentLength);
            }
            out.content_length = Some(parse_content_length(value)?);
        } else if token_eq(name, b"transfer-encoding") {
            if te.is_some() {
                return Err(HttpError::DuplicateTransferEncoding);
            }
            te = Some(value);
        } else if token_eq(name, b"connection") {
            for token in value.split(|&b| b == b',') {
                let token = trim_ows(token);
                if token.eq_ignore_ascii_case(b"close") {
                    conn_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    conn_keep_alive = true;
                }
            }
        } else if token_eq(name, b"expect") {
            expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
        } else if token_eq(name, b"upgrade") && out.upgrade.is_none() {
            out.upgrade = Some(value_range);
        }
        if let Some(i) = UNIQUE.iter().position(|u| token_eq(name, u)) {
            if unique_seen & (1 << i) != 0 {
                return Err(HttpError::DuplicateHeader);
            }
            unique_seen |= 1 << i;
        }
    }

    // The order of nginx's ngx_http_process_request_header: Host, then Content-Length (already
    // parsed above), then Transfer-Encoding.
    if !host_seen && out.minor_version >= 1 {
        return Err(HttpError::MissingHost);
    }
    if let Some(te) = te {
        if out.minor_version == 0 {
            return Err(HttpError::TransferEncodingHttp10);
        }
        if !te.eq_ignore_ascii_case(b"chunked") {
            return Err(HttpError::UnsupportedTransferEncoding);
        }
        if out.content_length.is_some() {
            return Err(HttpError::ContentLengthWithTransferEncoding);
        }
        out.chunked = true;
    }
    out.keep_alive = !conn_close && (out.minor_version >= 1 || conn_keep_alive);
    out.expect_continue = expect_continue && out.minor_version >= 1;
    // Last, as in nginx's ngx_http_process_request_header: a well-formed CONNECT or TRACE
    // is refused with 405 (and the connection closed) before any server sees it.
    match out.method {
        Method::Connect => return Err(HttpError::ConnectMethod),
        Method::Trace => return Err(HttpError::TraceMethod),
        _ => {}
    }
    Ok(Parsed::Complete)
}

/// Normalises the path of the request target of `head` (parsed from `buf`) into `out`, as
/// [`proton_ir::uri::normalize_path`] does: `%XX` decoded, `//`, `.` and `..` resolved, the
/// query left out. An absolute-form target without a path (`http://h?x=1`) has the path `/`
/// (nginx's `empty_path_in_uri`). False for a path that does not normalise (400).
/// `merge`: nginx's `merge_slashes` of the server.
pub fn normalize_target(head: &RequestHead, buf: &[u8], merge: bool, out: &mut Vec<u8>) -> bool {
    if head.empty_path {
        out.clear();
        out.push(b'/');
        return true;
    }
    proton_ir::uri::normalize_path_merging(bytes_at(buf, &head.target), merge, out)
}

/// `buf[from..]`, or empty.
fn tail(buf: &[u8], from: usize) -> &[u8] {
    buf.get(from..).unwrap_or(&[])
}

/// Where `part`, a sub-slice of `buf`, lies in it.
fn range_in(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    let end = start.wrapping_add(part.len());
    if start <= end && end <= buf.len() {
        start..end
    } else {
        0..0
    }
}

/// The index after the empty lines (CRLF or LF) that may precede a request line.
fn skip_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match (buf.get(i), buf.get(i + 1)) {
            (Some(b'\n'), _) => i += 1,
            (Some(b'\r'), Some(b'\n')) => i += 2,
            _ => return i,
        }
    }
}

/// RFC 9110 `tchar`, as a table: header names are scanned byte by byte on every head.
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

#[inline]
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// Whether the header name `name` (a token: every byte passed [`is_tchar`]) is `lower`, a
/// lowercase constant of letters, digits and `-`, ignoring ASCII case. Setting bit 0x20
/// lowercases a letter and leaves every other token byte that could match unchanged, so
/// one OR per byte replaces `eq_ignore_ascii_case`'s two case conversions.
#[inline]
pub(crate) fn token_eq(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len()
        && name
            .iter()
            .zip(lower)
            .fold(0u8, |acc, (&a, &b)| acc | ((a | 0x20) ^ b))
            == 0
}

pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Content-Length = 1*DIGIT, at most 2^63-1 as nginx's off_t.
pub(crate) fn parse_content_length(value: &[u8]) -> Result<u64, HttpError> {
    // The usual value: 1 to 18 digits, which cannot pass 2^63-1.
    if !value.is_empty() && value.len() <= 18 {
        let mut n: u64 = 0;
        for &b in value {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return Err(if value.contains(&b',') {
                    HttpError::DuplicateContentLength
                } else {
                    HttpError::InvalidContentLength
                });
            }
            n = n * 10 + u64::from(d);
        }
        return Ok(n);
    }
    if value.contains(&b',') {
        return Err(HttpError::DuplicateContentLength);
    }
    if value.is_empty() {
        return Err(HttpError::InvalidContentLength);
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return Err(HttpError::InvalidContentLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or(HttpError::InvalidContentLength)?;
    }
    Ok(n)
}

/// The bytes [`validate_host`] acts on: `.`, `:`, `[`, `]`, `/`, controls, space and DEL.
static HOST_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b < 0x21 || b == 0x7f || matches!(b, b'.' | b':' | b'[' | b']' | b'/');
        i += 1;
    }
    t
};

/// nginx's `ngx_http_validate_host`: the host part (without port and one trailing dot) of a
/// Host value, or `None` if nginx would answer 400.
///
/// Unless the value starts with `[` (an IPv6 literal, checked byte by byte), the checks
/// reduce to: no control byte, space, DEL or `/`; no two dots in a row; the host ends at the
/// first `:`; the last dot of the whole value, if it ends the host, is cut. Those are
/// found eight bytes at a time.
pub fn validate_host(value: &[u8]) -> Option<Range<usize>> {
    if value.first() == Some(&b'[') {
        return validate_host_bytewise(value);
    }
    let mut colon: Option<usize> = None;
    let mut last_dot: Option<usize> = None;
    let mut prev_dots = 0u64;
    let len = value.len();
    let mut at = 0;
    while at < len {
        // Whole words, then the last eight bytes (overlapping what was seen: every byte pair
        // of the overlap is inside this word, so the check across words is not needed); a
        // value shorter than a word is padded with a plain host byte.
        let (w, base) = match (
            value.get(at..at + 8).and_then(load_word),
            len.checked_sub(8),
        ) {
            (Some(w), _) => (w, at),
            (None, Some(last)) => {
                prev_dots = 0;
                // Eight bytes, so always a word (0, all control bytes, would refuse).
                (value.get(last..).and_then(load_word).unwrap_or(0), last)
            }
            (None, None) => {
                let mut word = [b'a'; 8];
                for (d, &b) in word.iter_mut().zip(value) {
                    *d = b;
                }
                (u64::from_le_bytes(word), 0)
            }
        };
        let dots = bytes_equal(w, b'.');
        let bad = bytes_below(w, 0x21) | bytes_equal(w, 0x7f) | bytes_equal(w, b'/');
        // A dot right after a dot: in this word, or the first byte after the last one of
        // the word before.
        let double = (dots & (dots << 8)) | (dots & (prev_dots >> 56));
        if bad | double != 0 {
            return None;
        }
        if dots != 0 {
            last_dot = Some(base + (63 - dots.leading_zeros() as usize) / 8);
        }
        if colon.is_none() {
            let colons = bytes_equal(w, b':');
            if colons != 0 {
                colon = Some(base + colons.trailing_zeros() as usize / 8);
            }
        }
        prev_dots = dots;
        at = base + 8;
    }
    let mut host_len = colon.unwrap_or(value.len());
    if host_len > 0 && last_dot == Some(host_len - 1) {
        host_len -= 1;
    }
    (host_len > 0).then_some(0..host_len)
}

/// [`validate_host`] one byte at a time: the IPv6-literal case, and the reference the
/// word-at-a-time path is tested against.
fn validate_host_bytewise(value: &[u8]) -> Option<Range<usize>> {
    #[derive(PartialEq)]
    enum State {
        Usual,
        Literal,
        Rest,
    }
    let mut state = State::Usual;
    let mut dot_pos: Option<usize> = None;
    let mut host_len = value.len();
    for (i, &ch) in value.iter().enumerate() {
        // Most bytes of a host name are none of the ones below: one table lookup each.
        if !HOST_SPECIAL[usize::from(ch)] {
            continue;
        }
        match ch {
            b'.' => {
                if i > 0 && dot_pos == Some(i - 1) {
                    return None;
                }
                dot_pos = Some(i);
            }
            b':' if state == State::Usual => {
                host_len = i;
                state = State::Rest;
            }
            b'[' if i == 0 => state = State::Literal,
            b']' if state == State::Literal => {
                host_len = i + 1;
                state = State::Rest;
            }
            b'/' => return None,
            _ if ch < 0x21 || ch == 0x7f => return None,
            _ => {}
        }
    }
    if host_len > 0 && dot_pos == Some(host_len - 1) {
        host_len -= 1;
    }
    if host_len == 0 {
        return None;
    }
    Some(0..host_len)
}

/// Checks the form of the request target and fills `target`, `absolute_host`, `empty_path`.
/// `at` is the target's offset in the buffer.
fn interpret_target(target: &[u8], at: usize, out: &mut RequestHead) -> Result<(), HttpError> {
    match target.first() {
        Some(b'/') => {
            out.target = at..at + target.len();
            Ok(())
        }
        Some(b'*') if target.len() == 1 && out.method == Method::Options => {
            out.target = at..at + 1;
            Ok(())
        }
        Some(b) if b.is_ascii_alphabetic() => {
            let abs = parse_absolute_form(target).ok_or(HttpError::InvalidTarget)?;
            let host = validate_host(
                tail(target, abs.authority.start)
                    .get(..abs.authority.len())
                    .unwrap_or(&[]),
            )
            .ok_or(HttpError::InvalidHost)?;
            let host_at = at + abs.authority.start;
            out.absolute_host = Some(host_at + host.start..host_at + host.end);
            out.target = at + abs.path.start..at + abs.path.end;
            out.empty_path = abs.empty_path;
            Ok(())
        }
        _ => Err(HttpError::InvalidTarget),
    }
}

struct AbsoluteForm {
    /// host[:port], relative to the target.
    authority: Range<usize>,
    /// What `target` becomes, relative to the target.
    path: Range<usize>,
    empty_path: bool,
}

/// `scheme "://" host [":" port] [path-abempty] ["?" query]`, with nginx's host grammar:
/// letters, digits, `.`, `-`, or an IP literal in brackets; no userinfo.
fn parse_absolute_form(t: &[u8]) -> Option<AbsoluteForm> {
    let at = |i: usize| t.get(i).copied();
    let mut i = 0;
    while at(i).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.') {
        i += 1;
    }
    if t.get(i..i + 3)? != b"://" {
        return None;
    }
    i += 3;
    let host_start = i;
    if at(i) == Some(b'[') {
        i += 1;
        // nginx's IP-literal grammar: unreserved characters, sub-delims and `:`.
        while at(i).is_some_and(|b| b.is_ascii_alphanumeric() || b":-._~!$&'()*+,;=".contains(&b)) {
            i += 1;
        }
        if at(i) != Some(b']') {
            return None;
        }
        i += 1;
    } else {
        while at(i).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
            i += 1;
        }
        if i == host_start {
            return None;
        }
    }
    if at(i) == Some(b':') {
        i += 1;
        while at(i).is_some_and(|b| b.is_ascii_digit()) {
            i += 1;
        }
    }
    let authority = host_start..i;
    match at(i) {
        None => Some(AbsoluteForm {
            authority,
            // The second slash of "://": the path is "/".
            path: host_start - 1..host_start,
            empty_path: false,
        }),
        Some(b'/') => Some(AbsoluteForm {
            authority,
            path: i..t.len(),
            empty_path: false,
        }),
        Some(b'?') => Some(AbsoluteForm {
            authority,
            path: i..t.len(),
            empty_path: true,
        }),
        Some(_) => None,
    }
}

/// Turns an httparse error into ours, looking at the bytes to say which rule was broken.
/// `None` means the request line is unfinished and could still become valid: httparse
/// rejects an unfinished `HTTP/2` early, while we wait to answer 505 or 400.
fn classify_error(
    buf: &[u8],
    line_start: usize,
    headers_start: Option<usize>,
    err: httparse::Error,
) -> Option<HttpError> {
    if err == httparse::Error::TooManyHeaders {
        return Some(HttpError::TooManyHeaders);
    }
    match classify_request_line(tail(buf, line_start)) {
        Line::Wait => None,
        Line::Bad(e) => Some(e),
        Line::Fine => Some(classify_header_lines(tail(
            buf,
            headers_start.unwrap_or(buf.len()),
        ))),
    }
}

/// What is wrong with a request line.
enum Line {
    /// Unfinished, and could still become valid.
    Wait,
    /// Breaks a rule.
    Bad(HttpError),
    /// Complete and valid: the error is in the header fields.
    Fine,
}

/// Splits at the first space: (before, Some(after)) or (all, None).
fn split_at_space(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr::memchr(b' ', s) {
        Some(i) => (s.get(..i).unwrap_or(&[]), s.get(i + 1..)),
        None => (s, None),
    }
}

fn skip_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    s
}

fn classify_request_line(rest: &[u8]) -> Line {
    let (line, terminated) = match memchr::memchr(b'\n', rest) {
        Some(i) => (rest.get(..i).unwrap_or(&[]), true),
        None => (rest, false),
    };
    // A line may end in the CR of its CRLF (or, unfinished, in the CR that starts it).
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let wait_or = |e: HttpError| if terminated { Line::Bad(e) } else { Line::Wait };
    if line.contains(&0) {
        return Line::Bad(HttpError::NulByte);
    }
    let (method, after) = split_at_space(line);
    if !method.iter().all(|&b| is_tchar(b)) {
        return Line::Bad(HttpError::InvalidMethod);
    }
    let Some(after) = after else {
        return wait_or(HttpError::InvalidTarget);
    };
    if method.is_empty() {
        return Line::Bad(HttpError::InvalidMethod);
    }
    let (target, after) = split_at_space(skip_spaces(after));
    if target.iter().any(|&b| b < 0x21 || b == 0x7f) || std::str::from_utf8(target).is_err() {
        return Line::Bad(HttpError::InvalidTarget);
    }
    // As nginx, the target is read before the version: one that starts with neither `/`
    // nor a scheme is 400 whatever follows (`PRI * HTTP/2.0`, the HTTP/2 preface sent
    // where HTTP/2 is off, is a bad request, not a version to refuse).
    let asterisk = target == b"*" && method == b"OPTIONS";
    if target
        .first()
        .is_some_and(|&b| b != b'/' && !b.is_ascii_alphabetic() && !asterisk)
    {
        return Line::Bad(HttpError::InvalidTarget);
    }
    let Some(after) = after else {
        // `GET /` alone is an HTTP/0.9 simple request, which is not served.
        return wait_or(if target.is_empty() {
            HttpError::InvalidTarget
        } else {
            HttpError::InvalidVersion
        });
    };
    if target.is_empty() {
        return Line::Bad(HttpError::InvalidTarget);
    }
    if after.contains(&b'\r') {
        return Line::Bad(HttpError::InvalidLineEnding);
    }
    let (version, trailing) = split_at_space(skip_spaces(after));
    if trailing.is_some() {
        return Line::Bad(HttpError::InvalidVersion);
    }
    classify_version(version, terminated)
}

/// The version, read as nginx reads it: a major version from 2 up is 505 as soon as its
/// digit arrives (`HTTP/2`, `HTTP/10.1`); `HTTP/0.x`, a leading zero, or a minor version of
/// more than three digits is 400. `HTTP/1.<minor>` other than 1.0 and 1.1 (which nginx serves
/// as 1.1) is 505 here. `Wait` for an unfinished prefix.
fn classify_version(v: &[u8], terminated: bool) -> Line {
    let unfinished = if terminated {
        Line::Bad(HttpError::InvalidVersion)
    } else {
        Line::Wait
    };
    let (head, rest) = v.split_at(v.len().min(5));
    if !b"HTTP/".starts_with(head) {
        return Line::Bad(HttpError::InvalidVersion);
    }
    let minor = match rest {
        [] => return unfinished,
        [b'2'..=b'9', ..] | [b'1', b'0'..=b'9', ..] => {
            return Line::Bad(HttpError::VersionNotSupported)
        }
        [b'1'] | [b'1', b'.'] => return unfinished,
        [b'1', b'.', minor @ ..] => minor,
        _ => return Line::Bad(HttpError::InvalidVersion),
    };
    if minor.len() > 3 || !minor.iter().all(u8::is_ascii_digit) {
        return Line::Bad(HttpError::InvalidVersion);
    }
    if !terminated {
        return Line::Wait;
    }
    if minor == b"0" || minor == b"1" {
        return Line::Fine;
    }
    Line::Bad(HttpError::VersionNotSupported)
}

/// Finds the first header line that breaks a rule.
fn classify_header_lines(mut rest: &[u8]) -> HttpError {
    while !rest.is_empty() {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (
                rest.get(..i).unwrap_or(&[]),
                rest.get(i + 1..).unwrap_or(&[]),
            ),
            None => (rest, &[][..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Some(e) = header_line_error(line) {
            return e;
        }
    }
    HttpError::InvalidLineEnding
}

fn header_line_error(line: &[u8]) -> Option<HttpError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Some(HttpError::ObsFold);
    }
    if line.contains(&0) {
        return Some(HttpError::NulByte);
    }
    if line.contains(&b'\r') {
        return Some(HttpError::InvalidLineEnding);
    }
    let Some(colon) = memchr::memchr(b':', line) else {
        return Some(HttpError::InvalidHeaderName);
    };
    let name = line.get(..colon).unwrap_or(&[]);
    let value = line.get(colon + 1..).unwrap_or(&[]);
    let trimmed = trim_ows(name);
    if trimmed.len() < name.len() && !trimmed.is_empty() && trimmed.iter().all(|&b| is_tchar(b)) {
        return Some(HttpError::WhitespaceBeforeColon);
    }
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Some(HttpError::InvalidHeaderName);
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Some(HttpError::InvalidHeaderValue);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Result<(Parsed, RequestHead), HttpError> {
        let mut head = RequestHead::new();
        parse_head(buf, &Limits::default(), &mut head).map(|p| (p, head))
    }

    fn err(buf: &[u8]) -> HttpError {
        match parse(buf) {
            Err(e) => e,
            Ok((p, _)) => panic!("{:?} parsed as {p:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn simple_get() {
        let buf = b"GET /index.html?x=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nAccept: */*\r\n\r\n";
        let (p, h) = parse(buf).unwrap();
        assert_eq!(p, Parsed::Complete);
        assert_eq!(h.method, Method::Get);
        assert_eq!(bytes_at(buf, &h.method_range), b"GET");
        assert_eq!(bytes_at(buf, &h.target), b"/index.html?x=1");
        assert_eq!(bytes_at(buf, h.host.as_ref().unwrap()), b"Example.COM");
        assert_eq!(h.minor_version, 1);
        assert!(h.keep_alive);
        assert!(!h.has_body());
        assert_eq!(h.head_len, buf.len());
        assert_eq!(h.header_count(), 2);
        assert_eq!(h.get(buf, b"accept"), Some(&b"*/*"[..]));
        assert_eq!(h.get(buf, b"HOST"), Some(&b"Example.COM:8080"[..]));
    }

    #[test]
    fn head_struct_stays_small() {
        assert!(std::mem::size_of::<RequestHead>() <= 2048);
    }

    /// `token_eq` agrees with `eq_ignore_ascii_case` for every token byte at every position
    /// of the names it is used with.
    #[test]
    fn token_eq_is_case_insensitive_equality_on_tokens() {
        let names: [&[u8]; 12] = [
            b"host",
            b"content-length",
            b"transfer-encoding",
            b"connection",
            b"expect",
            b"upgrade",
            b"keep-alive",
            b"proxy-connection",
            b"te",
            b"trailer",
            b"server",
            b"x-accel-",
        ];
        for lower in names {
            assert!(token_eq(lower, lower));
            assert!(token_eq(&lower.to_ascii_uppercase(), lower));
            assert!(!token_eq(&lower[1..], lower));
            for i in 0..lower.len() {
                for b in (0..=255u8).filter(|&b| is_tchar(b)) {
                    let mut name = lower.to_vec();
                    name[i] = b;
                    assert_eq!(
                        token_eq(&name, lower),
                        name.eq_ignore_ascii_case(lower),
                        "{:?} vs {:?}",
                        String::from_utf8_lossy(&name),
                        String::from_utf8_lossy(lower)
                    );
                }
            }
        }
    }

    #[test]
    fn content_length_values() {
        use HttpError::{DuplicateContentLength as Dup, InvalidContentLength as Bad};
        for (v, want) in [
            ("0", Ok(0)),
            ("13", Ok(13)),
            ("007", Ok(7)),
            ("999999999999999999", Ok(999_999_999_999_999_999)),
            ("9223372036854775807", Ok(i64::MAX as u64)),
            ("00000000000000000000042", Ok(42)),
            ("9223372036854775808", Err(Bad)),
            ("99999999999999999999", Err(Bad)),
            ("", Err(Bad)),
            ("1 2", Err(Bad)),
            ("+1", Err(Bad)),
            ("-1", Err(Bad)),
            ("1a", Err(Bad)),
            ("42,42", Err(Dup)),
            ("x,", Err(Dup)),
            ("1111111111111111111,1", Err(Dup)),
        ] {
            assert_eq!(parse_content_length(v.as_bytes()), want, "{v:?}");
        }
    }

    /// The word-at-a-time path gives the byte-by-byte answer: every value of up to 6 bytes
    /// over the bytes that matter, and values of 7–20 bytes with one or two of them at
    /// every pair of positions (across word boundaries).
    #[test]
    fn validate_host_words_match_bytes() {
        crate::testutil::each_string(b"a.:/[] \x7f", 6, |v| {
            assert_eq!(validate_host(v), validate_host_bytewise(v), "{v:?}");
        });
        let mut v = Vec::new();
        let special = b".:/[]\x7f\x00\xffA";
        for len in 7..=20 {
            for i in 0..len {
                for j in i..len {
                    for &a in special {
                        for &b in special {
                            v.clear();
                            v.resize(len, b'x');
                            v[i] = a;
                            v[j] = b;
                            assert_eq!(validate_host(&v), validate_host_bytewise(&v), "{v:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn validate_host_as_nginx() {
        let ok = |v: &[u8], host: &[u8]| {
            let r = validate_host(v).unwrap_or_else(|| panic!("{v:?} rejected"));
            assert_eq!(&v[r], host);
        };
        ok(b"a", b"a");
        ok(b"a.", b"a");
        ok(b".a", b".a");
        ok(b"a:80", b"a");
        ok(b"a.:80", b"a");
        ok(b"[::1]:80", b"[::1]");
        ok(b"[::1", b"[::1");
        ok(b"a:80:90", b"a");
        ok(b"a\x80b", b"a\x80b");
        for bad in [
            &b""[..],
            b":80",
            b"a..b",
            b"a/b",
            b"a b",
            b"a\x00",
            b".",
            b"a\x7f",
        ] {
            assert_eq!(validate_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn version_classification() {
        assert_eq!(
            err(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        assert_eq!(
            err(b"GET / HTTP/1.2\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        assert_eq!(err(b"GET / HTTP/0.9\r\n\r\n"), HttpError::InvalidVersion);
        // The target is judged before the version, as nginx's parser reads them.
        assert_eq!(
            err(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            HttpError::InvalidTarget
        );
        assert_eq!(err(b"GET ?x HTTP/2.0\r\n\r\n"), HttpError::InvalidTarget);
        assert_eq!(err(b"GET / HTTP/1.1x\r\n\r\n"), HttpError::InvalidVersion);
        assert_eq!(err(b"GET / http/1.1\r\n\r\n"), HttpError::InvalidVersion);
        // As nginx: a major version above 1 is 505 as soon as its first digit is there.
        assert_eq!(err(b"GET / HTTP/2"), HttpError::VersionNotSupported);
        assert_eq!(err(b"GET / HTTP/10"), HttpError::VersionNotSupported);
        assert_eq!(err(b"GET / HTTP/0"), HttpError::InvalidVersion);
        // Unfinished but possibly valid: wait.
        for partial in [
            &b"GET / HTTP/"[..],
            b"GET / HTTP/1",
            b"GET / HTTP/1.",
            b"GET / HTTP/1.2",
        ] {
            assert_eq!(parse(partial).unwrap().0, Parsed::Partial, "{partial:?}");
        }
        assert_eq!(parse(b"GET / HTTP/1.1\r").unwrap().0, Parsed::Partial);
        // A method byte nginx refuses is refused before the line ends.
        assert_eq!(err(b"xxxxxxxxxxxxxxxx"), HttpError::InvalidMethod);
        assert_eq!(err(b"GEt"), HttpError::InvalidMethod);
        assert_eq!(err(b"\r\nG\x01"), HttpError::InvalidMethod);
        for partial in [&b"GE"[..], b"\r\nPOS", b"M-SEARCH", b"GET"] {
            assert_eq!(parse(partial).unwrap().0, Parsed::Partial, "{partial:?}");
        }
    }
}
