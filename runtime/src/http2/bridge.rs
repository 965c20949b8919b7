//! The bridge between an HTTP/2 stream and the worker's HTTP/1.1 handlers, sans-IO.
//!
//! A stream is served as nginx serves it, by a connection of its own that has no socket
//! (nginx's "fake connection"): its request is written as an HTTP/1.1 head
//! ([`request_head`]) and parsed by the same parser as every other request, so routing,
//! limits and every handler apply unchanged; what the handlers write is an HTTP/1.1
//! response, which [`ResponseBridge`] turns into HEADERS and DATA frames: the head parsed
//! by the proxy's own response parser, connection-specific fields dropped, the body taken
//! through the proxy's body relay (chunks decoded, the end found, trailers kept) and sent
//! as the stream's flow-control window allows.

use super::conn::{connection_specific, H2Conn};
use super::hpack::HeaderList;
use crate::http::chunked::ChunkedDecoder;
use crate::http::relay::{BodyRelay, Framing};
use crate::http::upstream::{parse_response_head, BodyKind, Parsed, ResponseHead};

/// How the request body reaches the handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body (END_STREAM came with the head).
    None,
    /// `Content-Length`: DATA payloads go through as they are.
    Length(u64),
    /// No length: each DATA payload becomes a chunk ([`chunk`]), END_STREAM the last chunk.
    Chunked,
}

/// Why a request cannot be written as HTTP/1.1 (the caller answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `:method` is not a token.
    Method,
    /// `:path` is not origin-form (or `*` for OPTIONS), or holds bytes a request line cannot.
    Path,
    /// CONNECT (not proxied: nginx answers it 405).
    Connect,
}

fn is_token(b: &[u8]) -> bool {
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(c))
}

/// Writes the HTTP/1.1 head of an HTTP/2 request (whose list [`super::conn::check_request`]
/// accepted) into `out`: the request line from `:method` and `:path`, `Host` from
/// `:authority` (a `host` field then is dropped, RFC 9113 §8.3.1), the `cookie` fields joined
/// into one (§8.2.3), the other fields as they came, and the body's framing.
pub(crate) fn request_head(
    list: &HeaderList,
    end_stream: bool,
    out: &mut Vec<u8>,
) -> Result<BodyFraming, Refused> {
    let (mut method, mut path, mut authority, mut length) = (&b""[..], &b""[..], None, None);
    for (n, v) in list.iter() {
        match n {
            b":method" => method = v,
            b":path" => path = v,
            b":authority" => authority = Some(v),
            b"content-length" => length = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()),
            _ => {}
        }
    }
    if method == b"CONNECT" {
        return Err(Refused::Connect);
    }
    if !is_token(method) {
        return Err(Refused::Method);
    }
    let origin = path.first() == Some(&b'/') || (path == b"*" && method == b"OPTIONS");
    if !origin || path.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(Refused::Path);
    }
    out.clear();
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(path);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(a) = authority {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    for (n, v) in list.iter() {
        if n.starts_with(b":") || n == b"cookie" || (n == b"host" && authority.is_some()) {
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    // The crumbs of the cookie, joined in order into one field.
    let mut cookies = list.iter().filter(|(n, _)| *n == b"cookie").peekable();
    if cookies.peek().is_some() {
        out.extend_from_slice(b"cookie: ");
        for (i, (_, v)) in cookies.enumerate() {
            if i > 0 {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(v);
        }
        out.extend_from_slice(b"\r\n");
    }
    let framing = match (end_stream, length) {
        (true, _) => BodyFraming::None,
        (false, Some(n)) => BodyFraming::Length(n),
        (false, None) => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            BodyFraming::Chunked
        }
    };
    out.extend_from_slice(b"\r\n");
    Ok(framing)
}

/// Appends a DATA payload of a request without a length as one chunk.
pub(crate) fn chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    crate::http::chunked::write_chunk_size(out, data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk of such a request, with its trailers.
pub(crate) fn last_chunk(trailers: Option<&HeaderList>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n");
    for (n, v) in trailers.into_iter().flat_map(HeaderList::iter) {
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The most of a response's body held decoded while the stream's window is closed; the
/// rest stays with the handler, which is then told to wait.
pub(crate) const PENDING_MAX: usize = 64 * 1024;

/// What [`ResponseBridge`] made of the bytes so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bridged {
    /// More of the response is awaited (or waits for the window).
    Going,
    /// The stream is ended (END_STREAM sent).
    Done,
    /// The handler's output is not a response this bridge can carry (a 101, a broken
    /// head or chunk): the caller resets the stream.
    Broken,
}

/// The largest response head a handler may write (its fields are whatever the config adds:
/// `add_header` of long variables).
pub(crate) const HEAD_MAX: usize = 1 << 20;

/// One stream's response on its way from HTTP/1.1 bytes to frames.
#[derive(Debug, Default)]
pub(crate) struct ResponseBridge {
    resp: ResponseHead,
    relay: BodyRelay,
    head_done: bool,
    /// The request was HEAD: the response has no body whatever its head says.
    head_only: bool,
    /// Body bytes decoded and waiting for the window.
    pending: Vec<u8>,
    /// The body is complete; END_STREAM goes with its last bytes (or the trailers).
    ended: bool,
    trailers: Vec<u8>,
    done: bool,
}

impl ResponseBridge {
    /// Ready for a new response (`head_only`: to a HEAD request).
    pub(crate) fn reset(&mut self, head_only: bool) {
        self.head_done = false;
        self.head_only = head_only;
        self.relay.reset(Framing::None);
        self.pending.clear();
        self.ended = false;
        self.trailers.clear();
        self.done = false;
    }

    /// Gives back buffers grown past `max` (a bridge kept for another response).
    pub(crate) fn shrink(&mut self, max: usize) {
        for b in [&mut self.pending, &mut self.trailers] {
            if b.capacity() > max {
                *b = Vec::new();
            }
            b.clear();
        }
    }

    /// The response head is still to come whole.
    pub(crate) fn head_pending(&self) -> bool {
        !self.head_done
    }

    /// Whether decoded body bytes wait for the window (the handler's output then waits).
    #[cfg(test)]
    pub(crate) fn full(&self) -> bool {
        self.pending.len() >= PENDING_MAX
    }

    /// Takes response bytes from the front of `input` (what it used is removed; while the
    /// window is closed and [`PENDING_MAX`] bytes wait, the rest stays) and queues frames
    /// on `conn` for `stream`.
    pub(crate) fn feed(&mut self, input: &mut Vec<u8>, conn: &mut H2Conn, stream: u32) -> Bridged {
        if self.done {
            input.clear();
            return Bridged::Done;
        }
        while !self.head_done {
            match parse_response_head(input, HEAD_MAX, 1000, &mut self.resp) {
                Ok(Parsed::Complete) => {}
                Ok(Parsed::Partial) => return Bridged::Going,
                Err(_) => return Bridged::Broken,
            }
            let status = self.resp.status;
            let n = self.resp.head_len.min(input.len());
            if status == 101 {
                return Bridged::Broken;
            }
            if status < 200 {
                // Interim answers (100 Continue) have no place here.
                input.drain(..n);
                continue;
            }
            let kind = self.resp.body_kind(self.head_only);
            // No body, or an empty one: END_STREAM on the HEADERS frame.
            let end = matches!(kind, BodyKind::None | BodyKind::Length(0));
            let fields = self.resp.headers.iter().filter_map(|(n, v)| {
                let (name, value) = (input.get(n.clone())?, input.get(v.clone())?);
                (!connection_specific(name)).then_some((name, value))
            });
            conn.send_headers(stream, status, fields, end);
            self.relay.framing = match kind {
                BodyKind::None => Framing::None,
                BodyKind::Length(n) => Framing::Length(n),
                BodyKind::Chunked => Framing::Chunked {
                    // The handler's own trailers (add_trailer), bounded as heads are.
                    dec: ChunkedDecoder::new().with_trailer_limit(HEAD_MAX),
                    dechunk: true,
                },
                BodyKind::UntilClose => Framing::UntilClose,
            };
            self.relay.pass_trailers = false;
            input.drain(..n);
            self.head_done = true;
            if end {
                self.done = true;
                input.clear();
                return Bridged::Done;
            }
        }
        // Body bytes of a known length go from `input` straight into DATA frames as far
        // as the window takes them (none held in `pending` on the way).
        if let (true, false, &Framing::Length(left)) =
            (self.pending.is_empty(), self.ended, &self.relay.framing)
        {
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
            if n > 0 {
                let sent = conn.send_data(stream, &input[..n], n as u64 == left);
                self.relay.received += sent as u64;
                input.drain(..sent);
                let left = left - sent as u64;
                if left == 0 {
                    // END_STREAM went with the last bytes; any bytes past the length are
                    // dropped.
                    self.relay.framing = Framing::None;
                    self.ended = true;
                    self.done = true;
                    input.clear();
                    return Bridged::Done;
                }
                self.relay.framing = Framing::Length(left);
            }
        }
        // Body bytes as the window takes them, a bounded amount held beyond it.
        loop {
            let room = PENDING_MAX.saturating_sub(self.pending.len());
            if self.ended || input.is_empty() || room == 0 {
                return self.flush(conn, stream);
            }
            let n = room.min(input.len());
            let old = self.pending.len();
            self.pending.extend(input.drain(..n));
            let t = self.relay.take(&mut self.pending, old, &mut self.trailers);
            if t.invalid {
                return Bridged::Broken;
            }
            if t.done {
                self.ended = true;
                input.clear();
            }
            let r = self.flush(conn, stream);
            if r != Bridged::Going {
                return r;
            }
        }
    }

    /// The handler's connection ended: a body that runs until the close is complete; any
    /// other that is not is cut short ([`Bridged::Broken`]).
    pub(crate) fn close(&mut self, conn: &mut H2Conn, stream: u32) -> Bridged {
        if self.done {
            return Bridged::Done;
        }
        if !self.head_done {
            return Bridged::Broken;
        }
        match self.relay.framing {
            Framing::UntilClose => {
                self.relay.framing = Framing::None;
                self.ended = true;
            }
            Framing::None => self.ended = true,
            _ if self.ended => {}
            _ => return Bridged::Broken,
        }
        self.flush(conn, stream)
    }

    /// Sends what the window allows of the decoded body, and the end.
    pub(crate) fn flush(&mut self, conn: &mut H2Conn, stream: u32) -> Bridged {
        if self.done {
            return Bridged::Done;
        }
        let with_end = self.ended && self.trailers.is_empty();
        if !self.pending.is_empty() || with_end {
            let n = conn.send_data(stream, &self.pending, with_end);
            self.pending.drain(..n);
            if with_end && self.pending.is_empty() {
                self.done = true;
                return Bridged::Done;
            }
        }
        if self.ended && self.pending.is_empty() && !self.trailers.is_empty() {
            let t = std::mem::take(&mut self.trailers);
            let fields = t.split(|&b| b == b'\n').filter_map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let colon = line.iter().position(|&b| b == b':')?;
                let (n, v) = line.split_at(colon);
                let name = n.trim_ascii();
                (!name.is_empty() && !connection_specific(name))
                    .then_some((name, v[1..].trim_ascii()))
            });
            conn.send_trailers(stream, fields);
            self.trailers = t;
            self.trailers.clear();
            self.done = true;
            return Bridged::Done;
        }
        Bridged::Going
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::conn::{Config, Event};
    use crate::http2::frame::{self, Head};
    use crate::http2::hpack::{write_int, Decoder};

    fn list(fields: &[(&str, &str)]) -> HeaderList {
        let mut l = HeaderList::default();
        for (n, v) in fields {
            l.push(n.as_bytes(), v.as_bytes());
        }
        l
    }

    fn head_of(fields: &[(&str, &str)], end: bool) -> (Result<BodyFraming, Refused>, String) {
        let mut out = Vec::new();
        let r = request_head(&list(fields), end, &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn request_heads_as_http_1_1() {
        let (r, h) = head_of(
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/a?b=c"),
                (":authority", "example.com"),
                ("host", "other"),
                ("cookie", "a=1"),
                ("accept", "*/*"),
                ("cookie", "b=2"),
            ],
            true,
        );
        assert_eq!(r, Ok(BodyFraming::None));
        assert_eq!(
            h,
            "GET /a?b=c HTTP/1.1\r\nhost: example.com\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n"
        );
        // A body of known length, and one without.
        let post = [(":method", "POST"), (":scheme", "http"), (":path", "/")];
        let (r, h) = head_of(&[&post[..], &[("content-length", "5")]].concat(), false);
        assert_eq!(r, Ok(BodyFraming::Length(5)));
        assert!(h.ends_with("content-length: 5\r\n\r\n"), "{h}");
        let (r, h) = head_of(&post, false);
        assert_eq!(r, Ok(BodyFraming::Chunked));
        assert_eq!(h, "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
        // Without :authority the host field stays.
        let (_, h) = head_of(
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("host", "h"),
            ],
            true,
        );
        assert_eq!(h, "GET / HTTP/1.1\r\nhost: h\r\n\r\n");
        // OPTIONS *.
        let (r, _) = head_of(
            &[(":method", "OPTIONS"), (":scheme", "http"), (":path", "*")],
            true,
        );
        assert!(r.is_ok());
    }

    #[test]
    fn requests_that_cannot_be_written_as_http_1_1() {
        let with = |m: &str, p: &str| {
            head_of(&[(":method", m), (":scheme", "http"), (":path", p)], true).0
        };
        assert_eq!(with("GET", "http://example.com/"), Err(Refused::Path));
        assert_eq!(with("GET", "*"), Err(Refused::Path));
        assert_eq!(with("GET", "/a b"), Err(Refused::Path));
        assert_eq!(with("GET", "/a\u{7f}"), Err(Refused::Path));
        assert_eq!(with("G T", "/"), Err(Refused::Method));
        assert_eq!(with("", "/"), Err(Refused::Method));
        assert_eq!(with("CONNECT", "/"), Err(Refused::Connect));
    }

    #[test]
    fn request_body_chunks() {
        let mut out = Vec::new();
        chunk(b"hello", &mut out);
        chunk(b"", &mut out);
        chunk(&[b'x'; 26], &mut out);
        last_chunk(Some(&list(&[("x-sum", "1")])), &mut out);
        let mut want = b"5\r\nhello\r\n1a\r\n".to_vec();
        want.extend_from_slice(&[b'x'; 26]);
        want.extend_from_slice(b"\r\n0\r\nx-sum: 1\r\n\r\n");
        assert_eq!(out, want);
    }

    /// A connection with one request open on stream 1 (`head_only`: a HEAD).
    fn stream(head_only: bool) -> H2Conn {
        let mut c = H2Conn::new(Config::default());
        let mut b = frame::PREFACE.to_vec();
        frame::write_settings(&mut b, &[]);
        let mut block = Vec::new();
        for (n, v) in [
            (":method", if head_only { "HEAD" } else { "GET" }),
            (":scheme", "http"),
            (":path", "/"),
        ] {
            block.push(0);
            write_int(&mut block, 0, 7, n.len());
            block.extend_from_slice(n.as_bytes());
            write_int(&mut block, 0, 7, v.len());
            block.extend_from_slice(v.as_bytes());
        }
        frame::write_head(
            &mut b,
            block.len(),
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            1,
        );
        b.extend_from_slice(&block);
        let mut ev = Vec::new();
        c.recv(&b, &mut ev).unwrap();
        assert!(matches!(ev[..], [Event::Request { stream: 1, .. }]));
        c.out.clear();
        c
    }

    /// The frames queued, decoded: ("H", fields, end) for HEADERS, ("D", bytes, end).
    /// A frame read back: 'H' or 'D', a HEADERS frame's fields, a DATA frame's bytes, END_STREAM.
    type Frame = (char, Vec<(String, String)>, Vec<u8>, bool);

    fn frames(c: &mut H2Conn) -> Vec<Frame> {
        let out = std::mem::take(&mut c.out);
        let mut d = Decoder::new(4096);
        let mut at = 0;
        let mut v = Vec::new();
        while let Some(h) = Head::parse(&out[at..]) {
            let p = &out[at + 9..at + 9 + h.len as usize];
            at += 9 + h.len as usize;
            let end = h.has(frame::END_STREAM);
            match h.kind {
                frame::HEADERS => {
                    let mut l = HeaderList::default();
                    d.decode(p, &mut l, crate::http2::hpack::Limits::NONE)
                        .unwrap();
                    let f = l
                        .iter()
                        .map(|(n, v)| {
                            (
                                String::from_utf8_lossy(n).into(),
                                String::from_utf8_lossy(v).into(),
                            )
                        })
                        .collect();
                    v.push(('H', f, Vec::new(), end));
                }
                frame::DATA => v.push(('D', Vec::new(), p.to_vec(), end)),
                k => panic!("frame type {k}"),
            }
        }
        v
    }

    fn body_of(f: &[Frame]) -> Vec<u8> {
        f.iter()
            .filter(|x| x.0 == 'D')
            .flat_map(|x| x.2.clone())
            .collect()
    }

    #[test]
    fn response_with_length_at_every_split_point() {
        let wire: &[u8] = b"HTTP/1.1 200 OK\r\nServer: proton\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello";
        for split in 0..=wire.len() {
            let mut c = stream(false);
            let mut b = ResponseBridge::default();
            b.reset(false);
            let mut input = wire[..split].to_vec();
            let mut r = b.feed(&mut input, &mut c, 1);
            input.extend_from_slice(&wire[split..]);
            if r != Bridged::Done {
                r = b.feed(&mut input, &mut c, 1);
            }
            assert_eq!(r, Bridged::Done, "split {split}");
            let f = frames(&mut c);
            assert_eq!(f[0].0, 'H');
            assert_eq!(
                f[0].1,
                [
                    (":status".into(), "200".into()),
                    ("server".into(), "proton".into()),
                    ("content-length".into(), "5".into()),
                ]
            );
            assert_eq!(body_of(&f), b"hello", "split {split}");
            assert!(f.last().unwrap().3, "END_STREAM on the last frame");
            assert_eq!(c.open_streams(), 0);
        }
    }

    #[test]
    fn chunked_response_with_trailers() {
        let wire: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 7\r\n\r\n";
        for piece in [1, 3, wire.len()] {
            let mut c = stream(false);
            let mut b = ResponseBridge::default();
            b.reset(false);
            let mut input = Vec::new();
            let mut r = Bridged::Going;
            for p in wire.chunks(piece) {
                input.extend_from_slice(p);
                r = b.feed(&mut input, &mut c, 1);
            }
            assert_eq!(r, Bridged::Done, "piece {piece}");
            let f = frames(&mut c);
            assert_eq!(f[0].1, [(":status".to_string(), "200".to_string())]);
            assert_eq!(body_of(&f), b"hello world");
            let last = f.last().unwrap();
            assert_eq!((last.0, last.3), ('H', true));
            assert_eq!(last.1, [("x-sum".to_string(), "7".to_string())]);
        }
    }

    #[test]
    fn trailers_longer_than_a_frame_go_on_in_continuation() {
        // Five 4000-byte trailers (nginx's h2_trailers.t): more than the chunked decoder
        // takes from a peer, but this is the handler's own output.
        let v = "x".repeat(4000);
        let mut wire =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nSEE-THIS\r\n0\r\n".to_vec();
        for _ in 0..5 {
            wire.extend_from_slice(format!("X-LongHeader: {v}\r\n").as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        let mut c = stream(false);
        let mut b = ResponseBridge::default();
        b.reset(false);
        let mut input = wire;
        assert_eq!(b.feed(&mut input, &mut c, 1), Bridged::Done);
        let out = std::mem::take(&mut c.out);
        let mut at = 0;
        let mut kinds = Vec::new();
        while let Some(h) = Head::parse(&out[at..]) {
            kinds.push((h.kind, h.has(frame::END_STREAM), h.has(frame::END_HEADERS)));
            at += 9 + h.len as usize;
        }
        assert_eq!(at, out.len());
        assert_eq!(
            kinds,
            [
                (frame::HEADERS, false, true),
                (frame::DATA, false, false),
                (frame::HEADERS, true, false),
                (frame::CONTINUATION, false, true),
            ]
        );
    }

    #[test]
    fn interim_head_and_bodiless_answers() {
        let mut c = stream(false);
        let mut b = ResponseBridge::default();
        b.reset(false);
        let mut input =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nServer: p\r\n\r\n".to_vec();
        assert_eq!(b.feed(&mut input, &mut c, 1), Bridged::Done);
        let f = frames(&mut c);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].1[0].1.as_str(), f[0].3), ("204", true));
        // A HEAD: the head says 5 bytes, none follow.
        let mut c = stream(true);
        let mut b = ResponseBridge::default();
        b.reset(true);
        let mut input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec();
        assert_eq!(b.feed(&mut input, &mut c, 1), Bridged::Done);
        let f = frames(&mut c);
        assert_eq!((f.len(), f[0].3), (1, true));
        // A 101 cannot be carried.
        let mut c = stream(false);
        let mut b = ResponseBridge::default();
        b.reset(false);
        let mut input = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n".to_vec();
        assert_eq!(b.feed(&mut input, &mut c, 1), Bridged::Broken);
    }

    #[test]
    fn an_empty_body_ends_the_stream_with_its_headers() {
        let mut c = stream(false);
        let mut b = ResponseBridge::default();
        b.reset(false);
        let mut input = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
        assert_eq!(b.feed(&mut input, &mut c, 1), Bridged::Done);
        let f = frames(&mut c);
        assert_eq!((f.len(), f[0].1[0].1.as_str(), f[0].3), (1, "200", true));
    }

    #[test]
    fn body_until_close_and_cut_short() {
        let mut c = stream(false);
        let mut b = ResponseBridge::default();
        b.reset(false);
        let mut input = b"HTTP/1.1 200 OK\r\n\r\nall of it".to_vec();
        assert_eq!(b.feed(&mut input, &mut c, 1), Bridged::Going);
        assert_eq!(b.close(&mut c, 1), Bridged::Done);
        let f = frames(&mut c);
        assert_eq!(body_of(&f), b"all of it");
        assert!(f.last().unwrap().3);
        // A length not reached when the handler closes: cut short.
        let mut c = stream(false);
        let mut b = ResponseBridge::default();
        b.reset(false);
        let mut input = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart".to_vec();
        assert_eq!(b.feed(&mut input, &mut c, 1), Bridged::Going);
        assert_eq!(b.close(&mut c, 1), Bridged::Broken);
    }

    #[test]
    fn a_closed_window_holds_the_body_back() {
        let mut c = stream(false);
        let mut b = ResponseBridge::default();
        b.reset(false);
        let body = vec![b'z'; 200_000];
        let mut input =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        input.extend_from_slice(&body);
        assert_eq!(b.feed(&mut input, &mut c, 1), Bridged::Going);
        // 65,535 bytes went (the windows); PENDING_MAX are held; the rest stays with the
        // handler.
        assert_eq!(body_of(&frames(&mut c)).len(), 65_535);
        assert!(b.full());
        assert_eq!(input.len(), 200_000 - 65_535 - PENDING_MAX);
        let mut sent = 65_535;
        let mut rounds = 0;
        while sent < body.len() {
            let mut wu = Vec::new();
            frame::write_window_update(&mut wu, 0, 100_000);
            frame::write_window_update(&mut wu, 1, 100_000);
            c.recv(&wu, &mut Vec::new()).unwrap();
            let r = b.feed(&mut input, &mut c, 1);
            sent += body_of(&frames(&mut c)).len();
            rounds += 1;
            assert!(rounds < 10);
            if sent == body.len() {
                assert_eq!(r, Bridged::Done);
            }
        }
        assert_eq!(c.open_streams(), 0);
    }
}
