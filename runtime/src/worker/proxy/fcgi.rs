//! FastCGI, SCGI and uwsgi on the proxy's machinery (`fastcgi_pass`, `scgi_pass`,
//! `uwsgi_pass`): the request's parameters (`*_param` values and the client's headers) in
//! each protocol's framing, FastCGI's body as `STDIN` records, and FastCGI's answer taken
//! apart under the proxy's reads ([`FcgiIn`]), so that the steps after them (head, body,
//! buffering, retries, keep-alive) see a plain CGI byte stream, as for an HTTP upstream.

use super::*;
use crate::http::fastcgi::{self, Decoder, Event, FcgiError};
use proton_ir::Protocol;

/// The request id of every request (one request per connection at a time, as nginx).
const ID: u16 = 1;

/// The most of the application's error stream kept between two log lines.
const STDERR_MAX: usize = 4096;

/// The largest record buffer a reader keeps when its connection closes.
const RECYCLE_MAX: usize = 16 * 1024;

/// The answer's records on one upstream connection, for the request being answered: what
/// has been read but not decoded yet, and what the records said besides the output.
pub(crate) struct FcgiIn {
    dec: Decoder,
    raw: Vec<u8>,
    pos: usize,
    /// The answer is over.
    pub(super) end: bool,
    /// The application closed its output (an empty `STDOUT` record): a connection closed
    /// after it, before `END_REQUEST`, still ends the answer whole.
    stdout_closed: bool,
    /// Error-stream bytes not logged yet.
    pub(super) stderr: Vec<u8>,
    /// The record that broke the protocol, for the log.
    pub(super) error: Option<FcgiError>,
}

impl FcgiIn {
    pub(super) fn new() -> FcgiIn {
        FcgiIn {
            dec: Decoder::new(ID),
            raw: Vec::new(),
            pos: 0,
            end: false,
            stdout_closed: false,
            stderr: Vec::new(),
            error: None,
        }
    }

    /// Ready for the next request on the connection (buffers kept).
    pub(super) fn reset(&mut self) {
        self.dec = Decoder::new(ID);
        self.raw.clear();
        self.pos = 0;
        self.end = false;
        self.stdout_closed = false;
        self.stderr.clear();
        self.error = None;
    }

    /// Whether its buffers are small enough to keep for another connection (see
    /// `Upstreams::fcgi_in`): an answer read in large pieces leaves a large buffer.
    pub(super) fn recyclable(&self) -> bool {
        self.raw.capacity() <= RECYCLE_MAX && self.stderr.capacity() <= STDERR_MAX
    }

    /// Whether the answer ended exactly with its `END_REQUEST` record (padding included),
    /// nothing after it: the connection may carry another request.
    pub(super) fn clean_end(&self) -> bool {
        self.end && self.dec.done() && self.pos == self.raw.len()
    }

    /// Reads at most `want` bytes of the application's output onto `buf`, reading records
    /// from the connection with `inner` as needed. `Ok(0)`: the output is complete; an
    /// `UnexpectedEof` error: the connection closed before it was; `InvalidData`: a record
    /// broke the protocol (`error` says how).
    pub(super) fn read(
        &mut self,
        mut inner: impl FnMut(&mut Vec<u8>, usize) -> std::io::Result<usize>,
        buf: &mut Vec<u8>,
        want: usize,
    ) -> std::io::Result<usize> {
        let want = want.max(1);
        let mut got = 0;
        loop {
            while got < want && self.pos < self.raw.len() && !(self.end && self.dec.done()) {
                // No more input than output wanted: content bytes never exceed it.
                let room = if self.end { usize::MAX } else { want - got };
                let end = self.raw.len().min(self.pos.saturating_add(room));
                let input = &self.raw[self.pos..end];
                let step = match self.dec.decode(input) {
                    Ok(s) => s,
                    Err(e) => {
                        self.error = Some(e);
                        return Err(std::io::Error::new(
                            ErrorKind::InvalidData,
                            "invalid FastCGI record",
                        ));
                    }
                };
                let idle = step.consumed == 0 && step.event.is_none();
                match step.event {
                    Some(Event::Stdout(r)) if !self.end => {
                        got += r.len();
                        buf.extend_from_slice(&input[r]);
                    }
                    Some(Event::Stderr(r)) => {
                        let room = STDERR_MAX.saturating_sub(self.stderr.len());
                        let r = r.start..r.end.min(r.start + room);
                        self.stderr.extend_from_slice(&input[r]);
                    }
                    Some(Event::End { .. }) => self.end = true,
                    // (As nginx, the answer still ends with END_REQUEST: the application
                    // is not cut off while it writes it.)
                    Some(Event::StdoutEnd) => self.stdout_closed = true,
                    _ => {}
                }
                self.pos += step.consumed;
                if idle {
                    break;
                }
            }
            if got > 0 {
                return Ok(got);
            }
            if self.end {
                return Ok(0);
            }
            if self.pos > 0 {
                self.raw.drain(..self.pos);
                self.pos = 0;
            }
            let n = inner(&mut self.raw, (want + 64).max(4096))?;
            if n == 0 && self.stdout_closed {
                self.end = true;
                return Ok(0);
            }
            if n == 0 {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "upstream prematurely closed FastCGI stdout",
                ));
            }
        }
    }
}

/// Appends the `HTTP_*` name of a client's header `name` (uppercase, `-` as `_`).
fn http_param_name(name: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP_");
    out.extend(name.iter().map(|&b| match b {
        b'-' => b'_',
        b => b.to_ascii_uppercase(),
    }));
}

/// Whether a `fastcgi_param` named `param` stands for the client's header `name` (nginx
/// skips such a header: the param replaces it).
fn param_is_header(param: &[u8], name: &[u8]) -> bool {
    param.len() == name.len() + 5
        && param[..5].eq_ignore_ascii_case(b"HTTP_")
        && param[5..].iter().zip(name).all(|(&p, &n)| {
            let n = if n == b'-' { b'_' } else { n };
            p.eq_ignore_ascii_case(&n)
        })
}

/// Appends one parameter to the parameter block of `protocol`: FastCGI's name-value pair,
/// SCGI's `NAME\0VALUE\0`, uwsgi's two little-endian 16-bit lengths. `false` (nothing
/// written) for one the encoding cannot carry.
fn push_param(protocol: Protocol, name: &[u8], value: &[u8], out: &mut Vec<u8>) -> bool {
    match protocol {
        Protocol::Scgi => {
            out.extend_from_slice(name);
            out.push(0);
            out.extend_from_slice(value);
            out.push(0);
            true
        }
        Protocol::Uwsgi => {
            let (Ok(n), Ok(v)) = (u16::try_from(name.len()), u16::try_from(value.len())) else {
                return false;
            };
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(name);
            out.extend_from_slice(&v.to_le_bytes());
            out.extend_from_slice(value);
            true
        }
        _ => fastcgi::param(name, value, out),
    }
}

impl Worker<'_> {
    /// The request towards a CGI-style application, up to its body. The parameters: every
    /// `*_param` (in order; an empty `if_not_empty` one left out) and, with
    /// `*_pass_request_headers on`, one `HTTP_*` parameter per client header (repeated
    /// headers joined with `, `, cookies with `; `, as nginx ≥ 1.23; a param of that name
    /// replaces the header). Framed as the protocol wants: FastCGI's `BEGIN_REQUEST` and
    /// `PARAMS` records (all in one record, nginx's limit); SCGI's netstring, starting with
    /// `CONTENT_LENGTH` (`length`); uwsgi's packet (64 KiB at most). `Err`: too big (logged
    /// with nginx's words). `cache_on`: the answer may be stored, so the client's conditions
    /// and range are not passed (nginx's `ngx_http_fastcgi_cache_headers`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cgi_request_head(
        &self,
        conn: &Conn,
        request: &RequestCtx,
        ps: &proton_ir::ProxySettings,
        protocol: Protocol,
        length: u64,
        cache_on: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), ()> {
        let cgi = &ps.cgi;
        let mut params = self.scratch.var_pool.borrow_mut().buf();
        let mut value = self.scratch.var_pool.borrow_mut().buf();
        let mut ok = true;
        if protocol == Protocol::Scgi {
            value.clear();
            let _ = write!(value, "{length}");
            push_param(protocol, b"CONTENT_LENGTH", &value, &mut params);
        }
        {
            let ctx = self.ctx(conn, request, 0);
            for p in &cgi.params {
                value.clear();
                ctx.expand(&p.value, &mut value);
                if p.if_not_empty && value.is_empty() {
                    continue;
                }
                ok &= push_param(protocol, p.name.as_bytes(), &value, &mut params);
            }
        }
        if ps.pass_request_headers {
            let head = &request.head;
            let fields = || head.fields(&conn.rbuf);
            for (i, (name, v)) in fields().enumerate() {
                if cgi
                    .params
                    .iter()
                    .any(|p| param_is_header(p.name.as_bytes(), name))
                    || fields().take(i).any(|(n, _)| n.eq_ignore_ascii_case(name))
                    || (cache_on
                        && super::cache::NOT_FORWARDED
                            .iter()
                            .any(|f| f.eq_ignore_ascii_case(name)))
                {
                    continue;
                }
                value.clear();
                http_param_name(name, &mut value);
                let name_len = value.len();
                value.extend_from_slice(v);
                let sep: &[u8] = if name.eq_ignore_ascii_case(b"cookie") {
                    b"; "
                } else {
                    b", "
                };
                for (_, more) in fields()
                    .skip(i + 1)
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    value.extend_from_slice(sep);
                    value.extend_from_slice(more);
                }
                let (n, v) = value.split_at(name_len);
                ok &= push_param(protocol, n, v, &mut params);
            }
        }
        let limit = match protocol {
            Protocol::Scgi => usize::MAX,
            _ => fastcgi::MAX_CONTENT,
        };
        if !ok || params.len() > limit {
            let what = match protocol {
                Protocol::Uwsgi => "uwsgi request is too big",
                _ => "fastcgi request record is too big",
            };
            elog!(
                self.elog,
                Alert,
                "{what}: {}, client: {}",
                params.len(),
                conn.peer.ip()
            );
            ok = false;
        } else {
            match protocol {
                Protocol::Scgi => {
                    let _ = write!(out, "{}:", params.len());
                    out.extend_from_slice(&params);
                    out.push(b',');
                }
                Protocol::Uwsgi => {
                    let (m1, m2) = cgi.modifiers;
                    let [lo, hi] = (params.len() as u16).to_le_bytes();
                    out.extend_from_slice(&[m1, lo, hi, m2]);
                    out.extend_from_slice(&params);
                }
                _ => {
                    fastcgi::begin_request(ID, cgi.keep_conn, out);
                    // (No params at all: only the empty record that ends them.)
                    if !params.is_empty() {
                        fastcgi::records(fastcgi::PARAMS, ID, &params, out);
                    }
                    fastcgi::records(fastcgi::PARAMS, ID, &[], out);
                }
            }
        }
        let mut pool = self.scratch.var_pool.borrow_mut();
        pool.give_buf(params);
        pool.give_buf(value);
        if ok {
            Ok(())
        } else {
            Err(())
        }
    }
}

impl Worker<'_> {
    /// Whether the current FastCGI answer's end has been read (what is left of it is in
    /// memory).
    pub(super) fn fcgi_ended(&self, p: &Proxy) -> bool {
        p.up.and_then(|k| self.ups.conns.get(k))
            .and_then(|c| c.fcgi.as_deref())
            .is_some_and(|f| f.end)
    }

    /// Logs what the application wrote to its error stream since the last call (nginx's
    /// "FastCGI sent in stderr" line, trailing newlines, dots and spaces trimmed) and a
    /// record that broke the protocol; `reading`: what was being read. True when the
    /// error stream had a `fastcgi_catch_stderr` text and `head` (it came while the head
    /// was being read).
    pub(super) fn fcgi_notes(&mut self, p: &Proxy, reading: &str, head: bool) -> bool {
        let Some(f) =
            p.up.and_then(|k| self.ups.conns.get_mut(k))
                .and_then(|c| c.fcgi.as_deref_mut())
        else {
            return false;
        };
        let msg = std::mem::take(&mut f.stderr);
        let error = f.error.take();
        if let Some(e) = error {
            elog!(
                self.elog,
                Error,
                "{e} while reading {reading}, client: {}, upstream: \"{}\"",
                p.client,
                self.upstream_url(p)
            );
        }
        if !msg.is_empty() {
            let end = msg
                .iter()
                .rposition(|b| !matches!(b, b'\n' | b'\r' | b'.' | b' '))
                .map_or(0, |i| i + 1);
            elog!(
                self.elog,
                Error,
                "FastCGI sent in stderr: \"{}\" while reading {reading}, client: {}, upstream: \"{}\"",
                String::from_utf8_lossy(&msg[..end]),
                p.client,
                self.upstream_url(p)
            );
        }
        // fastcgi_catch_stderr, while the head is read (nginx looks there only).
        let caught = !msg.is_empty()
            && head
            && self
                .proxy_settings(p.loc)
                .cgi
                .catch_stderr
                .iter()
                .any(|t| !t.is_empty() && msg.windows(t.len()).any(|w| w == t.as_bytes()));
        if let Some(f) =
            p.up.and_then(|k| self.ups.conns.get_mut(k))
                .and_then(|c| c.fcgi.as_deref_mut())
        {
            let mut msg = msg;
            msg.clear();
            f.stderr = msg;
        }
        caught
    }
}

/// Wraps the body bytes `body` as `STDIN` records; `done`: the body is complete, the empty
/// record that ends it follows.
pub(super) fn stdin_records(body: &[u8], done: bool, out: &mut Vec<u8>) {
    if !body.is_empty() {
        fastcgi::records(fastcgi::STDIN, ID, body, out);
    }
    if done {
        fastcgi::records(fastcgi::STDIN, ID, &[], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// STDOUT "hello", STDERR "oops", END_REQUEST: the records an application sends.
    fn answer(keep_conn_tail: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        fastcgi::records(fastcgi::STDOUT, ID, b"Status: 200\r\n\r\nhello", &mut v);
        fastcgi::records(fastcgi::STDERR, ID, b"oops", &mut v);
        fastcgi::records(fastcgi::STDOUT, ID, b"", &mut v);
        v.extend_from_slice(&[1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        v.extend_from_slice(keep_conn_tail);
        v
    }

    /// Reads the whole output through `FcgiIn`, the connection giving `piece` bytes per
    /// read and the caller wanting `want` per call.
    fn read_all(input: &[u8], piece: usize, want: usize) -> (Vec<u8>, FcgiIn, bool) {
        let mut f = FcgiIn::new();
        let mut at = 0;
        let mut out = Vec::new();
        loop {
            let r = f.read(
                |raw, n| {
                    let k = piece.min(n).min(input.len() - at);
                    raw.extend_from_slice(&input[at..at + k]);
                    at += k;
                    Ok(k)
                },
                &mut out,
                want,
            );
            match r {
                Ok(0) => return (out, f, true),
                Ok(n) => assert!(n <= want),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
                    return (out, f, false);
                }
            }
        }
    }

    #[test]
    fn output_comes_through_at_every_piece_and_want_size() {
        let input = answer(b"");
        for piece in [1, 2, 3, 7, 8, 9, 64, 4096] {
            for want in [1, 2, 5, 4096] {
                let (out, f, ended) = read_all(&input, piece, want);
                assert!(ended, "{piece} {want}");
                assert_eq!(out, b"Status: 200\r\n\r\nhello", "{piece} {want}");
                assert_eq!(f.stderr, b"oops");
                assert!(f.clean_end(), "{piece} {want}");
            }
        }
    }

    #[test]
    fn bytes_after_the_end_spoil_the_connection() {
        let (out, f, ended) = read_all(&answer(b"junk"), 4096, 4096);
        assert!(ended);
        assert_eq!(out, b"Status: 200\r\n\r\nhello");
        assert!(!f.clean_end());
    }

    #[test]
    fn a_close_before_the_end_is_premature() {
        let input = answer(b"");
        let cut = &input[..20];
        let (_, _, ended) = read_all(cut, 4096, 4096);
        assert!(!ended);
    }

    #[test]
    fn bad_records_are_refused() {
        let mut f = FcgiIn::new();
        let mut out = Vec::new();
        let r = f.read(
            |raw, _| {
                raw.extend_from_slice(&[2, 6, 0, 1, 0, 0, 0, 0]);
                Ok(8)
            },
            &mut out,
            100,
        );
        assert_eq!(r.map_err(|e| e.kind()), Err(ErrorKind::InvalidData));
        assert_eq!(f.error, Some(FcgiError::Version(2)));
    }

    #[test]
    fn header_params_as_nginx_names_them() {
        let mut v = Vec::new();
        http_param_name(b"X-Forwarded-For", &mut v);
        assert_eq!(v, b"HTTP_X_FORWARDED_FOR");
        assert!(param_is_header(b"HTTP_X_FORWARDED_FOR", b"x-forwarded-for"));
        assert!(param_is_header(b"http_host", b"Host"));
        assert!(!param_is_header(b"HTTP_HOSTS", b"Host"));
        assert!(!param_is_header(b"SERVER_NAME", b"Host"));
    }
}
