//! The client side of HTTP/2 towards a gRPC server (`grpc_pass`), sans-IO: one stream at a
//! time on a connection (as nginx's grpc module), the next one on a kept connection.
//!
//! The proxy's steps stay those of an HTTP/1.1 upstream. What they write is the request as
//! frames ([`request_head`], [`data_frames`]); [`H2Up::write`] passes them on with the
//! connection's stream id, cutting DATA to the server's flow-control windows. What they
//! read is the answer as an HTTP/1.1 response ([`H2Up::read`]): a status line and the
//! fields of the first header block, the DATA payloads as chunks, the trailers as the
//! chunked trailer section. Control frames (SETTINGS, PING, WINDOW_UPDATE, GOAWAY,
//! RST_STREAM) are handled underneath, acknowledged as the protocol requires.

use super::frame::{self, Head, HEAD};
use super::hpack::{self, HeaderList, Limits};
use std::io::{Error, ErrorKind};

/// The frame size this side allows and sends (the protocol's default; not raised).
const FRAME: usize = frame::MIN_FRAME as usize;

/// The connection's start: the preface, SETTINGS (no dynamic table for answers, no push,
/// the largest stream window) and a WINDOW_UPDATE raising the connection window to the
/// largest, as nginx's grpc module sends.
const START: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\
\x00\x00\x12\x04\x00\x00\x00\x00\x00\
\x00\x01\x00\x00\x00\x00\
\x00\x02\x00\x00\x00\x00\
\x00\x04\x7f\xff\xff\xff\
\x00\x00\x04\x08\x00\x00\x00\x00\x00\
\x7f\xff\x00\x00";

/// The most of the answer kept decoded but not yet taken by the proxy before the socket is
/// left unread (the server's flow control, then TCP, hold the rest).
const SYNTH_MAX: usize = 256 * 1024;

/// The most request bytes framed into `wire` by one write (the rest waits for the next).
const FRAME_BATCH: usize = 256 * 1024;

/// The most of this side's frames (acknowledgements, window updates, the request) kept
/// unsent before the server counts as broken.
const WIRE_MAX: usize = 1 << 20;

/// The socket under an [`H2Up`]: plaintext in and out (TLS records underneath).
pub(crate) trait Wire {
    /// Reads at most `want` bytes onto the end of `buf`; `Ok(0)`: the server closed.
    fn recv(&mut self, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize>;
    /// Writes from `data`; how much was taken.
    fn send(&mut self, data: &[u8]) -> std::io::Result<usize>;
}

/// Where the request's frames (as the proxy wrote them) are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// At a frame header.
    Head,
    /// In the payload of a frame passed as it is (HEADERS, CONTINUATION): bytes left.
    Pass(usize),
    /// In a DATA payload: bytes left, and whether its frame ends the stream.
    Data(usize, bool),
}

/// One HTTP/2 connection to a gRPC server, and its current stream.
pub(crate) struct H2Up {
    /// The preface and settings are not sent yet.
    fresh: bool,
    /// The current stream (0: none yet) and the next one's id.
    id: u32,
    next_id: u32,
    hpack: hpack::Decoder,
    /// The server's windows for what this side sends (connection, stream), and its
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    send_conn: i64,
    send_stream: i64,
    initial: i64,
    /// This side's windows for what the server sends.
    recv_conn: i64,
    recv_stream: i64,
    /// The server sent GOAWAY: no stream after this one.
    goaway: bool,
    /// Bytes read from the socket, not taken apart yet.
    raw: Vec<u8>,
    /// Frames for the socket (the request's, acknowledgements), not written yet.
    wire: Vec<u8>,
    wire_pos: usize,
    /// Request bytes already framed into `wire` but not reported to the caller (reported
    /// once `wire` is out, so that the caller keeps writing until the socket has them).
    credit: usize,
    out: Out,
    /// The request's END_STREAM went out.
    pub(crate) sent_all: bool,
    /// The header block being received (HEADERS and its CONTINUATIONs).
    block: Vec<u8>,
    /// A header block is open (a CONTINUATION must follow), and whether its HEADERS frame
    /// ended the stream.
    in_block: Option<bool>,
    fields: HeaderList,
    /// The answer's head was passed on.
    head_done: bool,
    /// The answer is over (END_STREAM), and a RST_STREAM(NO_ERROR) after it was seen.
    pub(crate) ended: bool,
    rst_after_end: bool,
    /// `content-length` of the answer, and the DATA bytes so far.
    length: Option<u64>,
    data_len: u64,
    /// The answer as HTTP/1.1 bytes, from `synth_pos` on not yet read by the proxy.
    synth: Vec<u8>,
    synth_pos: usize,
    /// Where the answer's head ends in `synth` (0 once it is read): a head taken apart goes
    /// to the client even when a later frame of the same read breaks the stream, as nginx
    /// parses the head apart from the body.
    head_mark: usize,
    /// Why the exchange broke (for the log line); the answer stops there.
    pub(crate) error: Option<&'static str>,
    /// The most the answer's head may hold (`grpc_buffer_size`).
    max_head: usize,
}

impl Default for H2Up {
    fn default() -> Self {
        H2Up::new()
    }
}

impl H2Up {
    pub(crate) fn new() -> H2Up {
        H2Up {
            fresh: true,
            id: 0,
            next_id: 1,
            // nginx announces a table of 0 but reads any the server uses; so does this.
            hpack: hpack::Decoder::new(4096),
            send_conn: frame::DEFAULT_WINDOW,
            send_stream: frame::DEFAULT_WINDOW,
            initial: frame::DEFAULT_WINDOW,
            recv_conn: frame::MAX_WINDOW,
            recv_stream: frame::MAX_WINDOW,
            goaway: false,
            raw: Vec::new(),
            wire: Vec::new(),
            wire_pos: 0,
            credit: 0,
            out: Out::Head,
            sent_all: false,
            block: Vec::new(),
            in_block: None,
            fields: HeaderList::default(),
            head_done: false,
            ended: false,
            rst_after_end: false,
            length: None,
            data_len: 0,
            synth: Vec::new(),
            synth_pos: 0,
            head_mark: 0,
            error: None,
            max_head: 4096,
        }
    }

    /// Opens the next stream (the first on a new connection), for an answer whose head may
    /// hold `max_head` bytes.
    pub(crate) fn start_stream(&mut self, max_head: usize) {
        self.id = self.next_id;
        self.next_id = self.next_id.saturating_add(2);
        self.send_stream = self.initial;
        self.recv_stream = frame::MAX_WINDOW;
        self.credit = 0;
        self.out = Out::Head;
        self.sent_all = false;
        self.block.clear();
        self.in_block = None;
        self.head_done = false;
        self.ended = false;
        self.rst_after_end = false;
        self.length = None;
        self.data_len = 0;
        self.synth.clear();
        self.synth_pos = 0;
        self.head_mark = 0;
        self.error = None;
        self.max_head = max_head;
    }

    /// Ready for a new connection, its buffers kept (a worker reuses the states of closed
    /// connections: no allocation per connection), its first stream opened.
    pub(crate) fn restart(&mut self, max_head: usize) {
        self.fresh = true;
        self.next_id = 1;
        self.hpack.reset(4096);
        self.send_conn = frame::DEFAULT_WINDOW;
        self.initial = frame::DEFAULT_WINDOW;
        self.recv_conn = frame::MAX_WINDOW;
        self.goaway = false;
        self.raw.clear();
        self.wire.clear();
        self.wire_pos = 0;
        self.start_stream(max_head);
    }

    /// Whether its buffers are small enough to keep for another connection.
    pub(crate) fn recyclable(&self) -> bool {
        const KEEP: usize = 64 * 1024;
        self.raw.capacity() <= KEEP
            && self.wire.capacity() <= KEEP
            && self.synth.capacity() <= KEEP
            && self.block.capacity() <= KEEP
    }

    /// Whether the connection may carry another stream: this one ended cleanly, the whole
    /// request went out, nothing is half read or unsent, and no GOAWAY came.
    pub(crate) fn clean_end(&self) -> bool {
        self.ended
            && self.sent_all
            && self.error.is_none()
            && !self.goaway
            && self.in_block.is_none()
            && self.wire_pos == self.wire.len()
            && self.next_id < 0x7fff_0000
    }

    /// Writes pending frames (the connection's start first); `Ok(true)`: none left.
    fn flush(&mut self, io: &mut impl Wire) -> std::io::Result<bool> {
        if self.fresh {
            self.fresh = false;
            self.wire.splice(..0, START.iter().copied());
        }
        while self.wire_pos < self.wire.len() {
            match io.send(&self.wire[self.wire_pos..]) {
                Ok(0) => return Err(Error::from(ErrorKind::WriteZero)),
                Ok(n) => self.wire_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wire.clear();
        self.wire_pos = 0;
        Ok(true)
    }

    /// Takes request frames from `data` (see the module's text); how many bytes of it were
    /// taken. `WouldBlock`: the socket, or the server's window, holds the rest back.
    pub(crate) fn write(&mut self, data: &[u8], io: &mut impl Wire) -> std::io::Result<usize> {
        if !self.flush(io)? {
            return Err(Error::from(ErrorKind::WouldBlock));
        }
        if self.credit > 0 {
            return Ok(std::mem::take(&mut self.credit));
        }
        // What the server sent meanwhile: its SETTINGS (acknowledged, a new initial
        // window), WINDOW_UPDATEs, a GOAWAY or RST_STREAM.
        match self.pump(io) {
            Ok(0) => return Err(Error::from(ErrorKind::ConnectionReset)),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if self.error.is_some() {
            return Err(Error::new(ErrorKind::InvalidData, "invalid HTTP/2 answer"));
        }
        let taken = self.frame(data);
        if taken == 0 && !data.is_empty() {
            return Err(Error::from(ErrorKind::WouldBlock));
        }
        if self.flush(io)? {
            Ok(taken)
        } else {
            self.credit = taken;
            Err(Error::from(ErrorKind::WouldBlock))
        }
    }

    fn window(&self) -> i64 {
        self.send_conn.min(self.send_stream)
    }

    /// Frames what `data` allows into `wire` (at most [`FRAME_BATCH`] bytes a call); the
    /// bytes of `data` taken.
    fn frame(&mut self, data: &[u8]) -> usize {
        let mut at = 0;
        while at < data.len() && self.wire.len() < FRAME_BATCH {
            match self.out {
                Out::Head => {
                    let Some(h) = Head::parse(&data[at..]) else {
                        break;
                    };
                    at += HEAD;
                    let len = h.len as usize;
                    if h.kind == frame::DATA {
                        let end = h.has(frame::END_STREAM);
                        self.out = Out::Data(len, end);
                        if len == 0 {
                            frame::write_head(&mut self.wire, 0, frame::DATA, h.flags, self.id);
                            self.sent_all |= end;
                            self.out = Out::Head;
                        }
                    } else {
                        frame::write_head(&mut self.wire, len, h.kind, h.flags, self.id);
                        self.sent_all |= h.kind == frame::HEADERS && h.has(frame::END_STREAM);
                        self.out = if len == 0 { Out::Head } else { Out::Pass(len) };
                    }
                }
                Out::Pass(left) => {
                    let n = left.min(data.len() - at);
                    self.wire.extend_from_slice(&data[at..at + n]);
                    at += n;
                    self.out = if n == left {
                        Out::Head
                    } else {
                        Out::Pass(left - n)
                    };
                }
                Out::Data(left, end) => {
                    let room = usize::try_from(self.window().max(0)).unwrap_or(0);
                    let n = left.min(data.len() - at).min(room).min(FRAME);
                    if n == 0 {
                        break;
                    }
                    let last = n == left && end;
                    let flags = if last { frame::END_STREAM } else { 0 };
                    frame::write_head(&mut self.wire, n, frame::DATA, flags, self.id);
                    self.wire.extend_from_slice(&data[at..at + n]);
                    at += n;
                    self.send_conn -= n as i64;
                    self.send_stream -= n as i64;
                    self.sent_all |= last;
                    self.out = if n == left {
                        Out::Head
                    } else {
                        Out::Data(left - n, end)
                    };
                }
            }
        }
        at
    }

    /// Takes in what the server sent so far (acknowledging it as needed) and says whether
    /// its answer has begun (or the stream broke) while the request is still being sent: a
    /// gRPC server may answer before the request stream ends.
    pub(crate) fn answer_begun(&mut self, io: &mut impl Wire) -> bool {
        if self.synth_pos == self.synth.len() && !self.ended && self.error.is_none() {
            if let Ok(0) = self.pump(io) {
                // Closed: the read that follows says so.
                return true;
            }
            let _ = self.flush(io);
        }
        self.synth_pos < self.synth.len() || self.ended || self.error.is_some()
    }

    /// Reads at most `want` bytes of the answer (as HTTP/1.1) onto `buf`. `Ok(0)`: it is
    /// complete; `UnexpectedEof`: the connection closed before; `InvalidData`: the server
    /// broke the protocol or the stream (`error` says how).
    pub(crate) fn read(
        &mut self,
        buf: &mut Vec<u8>,
        want: usize,
        io: &mut impl Wire,
    ) -> std::io::Result<usize> {
        loop {
            // (A broken stream still gives its head if that was whole before the break.)
            let end = if self.error.is_some() {
                self.head_mark
            } else {
                self.synth.len()
            };
            if self.error.is_some() && self.synth_pos >= end {
                return Err(Error::new(ErrorKind::InvalidData, "invalid HTTP/2 answer"));
            }
            if self.synth_pos < end {
                let n = want.max(1).min(end - self.synth_pos);
                buf.extend_from_slice(&self.synth[self.synth_pos..self.synth_pos + n]);
                self.synth_pos += n;
                if self.synth_pos >= self.head_mark {
                    self.head_mark = 0;
                }
                if self.synth_pos == self.synth.len() {
                    self.synth.clear();
                    self.synth_pos = 0;
                }
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            // Acknowledgements owed go out before waiting for more.
            self.flush(io)?;
            if self.pump(io)? == 0 && self.error.is_none() && self.synth.is_empty() && !self.ended {
                return Err(Error::new(
                    ErrorKind::UnexpectedEof,
                    "upstream prematurely closed connection",
                ));
            }
            self.flush(io)?;
        }
    }

    /// Reads what the socket has and takes the complete frames apart. The bytes read
    /// (`Ok(0)`: the server closed); `WouldBlock` when nothing was there.
    fn pump(&mut self, io: &mut impl Wire) -> std::io::Result<usize> {
        // (Acknowledgements never go out before the connection's start.)
        if self.fresh {
            self.flush(io)?;
        }
        if self.synth.len() - self.synth_pos >= SYNTH_MAX {
            return Err(Error::from(ErrorKind::WouldBlock));
        }
        let n = io.recv(&mut self.raw, FRAME + HEAD)?;
        self.frames();
        Ok(n)
    }

    /// Takes the complete frames in `raw` apart.
    fn frames(&mut self) {
        let mut at = 0;
        while self.error.is_none() {
            let Some(h) = Head::parse(&self.raw[at..]) else {
                break;
            };
            let len = h.len as usize;
            if len > FRAME {
                self.error = Some("upstream sent frame with too long length");
                break;
            }
            if self.raw.len() - at < HEAD + len {
                break;
            }
            let payload = std::mem::take(&mut self.raw);
            self.frame_in(h, &payload[at + HEAD..at + HEAD + len]);
            self.raw = payload;
            at += HEAD + len;
        }
        self.raw.drain(..at);
    }

    fn fail(&mut self, why: &'static str) {
        if self.error.is_none() {
            self.error = Some(why);
        }
    }

    /// One complete frame from the server.
    fn frame_in(&mut self, h: Head, p: &[u8]) {
        if self.wire.len() - self.wire_pos > WIRE_MAX {
            // A server that sends control frames but does not read the answers to them.
            return self.fail("upstream sent too many control frames");
        }
        if self.in_block.is_some() && (h.kind != frame::CONTINUATION || h.stream != self.id) {
            return self.fail("upstream sent unexpected frame instead of CONTINUATION");
        }
        match h.kind {
            frame::DATA => self.data_in(h, p),
            frame::HEADERS => {
                if h.stream != self.id || self.ended {
                    return self.fail("upstream sent HEADERS for unknown or closed stream");
                }
                let Some(p) = unpad(h, p) else {
                    return self.fail("upstream sent HEADERS with invalid padding");
                };
                let p = if h.has(frame::PRIORITY_FLAG) {
                    match p.get(5..) {
                        Some(p) => p,
                        None => return self.fail("upstream sent HEADERS too short"),
                    }
                } else {
                    p
                };
                self.block.clear();
                self.block.extend_from_slice(p);
                self.in_block = Some(h.has(frame::END_STREAM));
                if h.has(frame::END_HEADERS) {
                    self.block_in();
                }
            }
            frame::CONTINUATION => {
                let Some(end) = self.in_block else {
                    return self.fail("upstream sent unexpected CONTINUATION frame");
                };
                if self.block.len() + p.len() > self.max_head.max(FRAME) {
                    return self.fail("upstream sent too large http2 header");
                }
                self.block.extend_from_slice(p);
                if h.has(frame::END_HEADERS) {
                    self.in_block = Some(end);
                    self.block_in();
                }
            }
            frame::RST_STREAM => {
                if h.stream != self.id || h.stream == 0 {
                    return;
                }
                let code = p
                    .get(..4)
                    .map_or(u32::MAX, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                if self.ended && code == 0 && !self.rst_after_end {
                    // The server does not want the rest of the request (RFC 9113 §8.1).
                    self.rst_after_end = true;
                    self.sent_all = true;
                    return;
                }
                self.fail("upstream rejected request with error");
            }
            frame::SETTINGS => {
                if h.has(frame::ACK) {
                    return;
                }
                if h.stream != 0 || !p.len().is_multiple_of(6) {
                    return self.fail("upstream sent invalid SETTINGS frame");
                }
                for s in p.chunks_exact(6) {
                    let id = u16::from_be_bytes([s[0], s[1]]);
                    let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                    if id == frame::SETTINGS_INITIAL_WINDOW_SIZE {
                        if i64::from(v) > frame::MAX_WINDOW {
                            return self.fail("upstream sent invalid initial window size");
                        }
                        let delta = i64::from(v) - self.initial;
                        self.initial = i64::from(v);
                        self.send_stream += delta;
                    }
                }
                frame::write_head(&mut self.wire, 0, frame::SETTINGS, frame::ACK, 0);
            }
            frame::PING => {
                if h.has(frame::ACK) {
                    return;
                }
                if p.len() != 8 {
                    return self.fail("upstream sent invalid PING frame");
                }
                frame::write_head(&mut self.wire, 8, frame::PING, frame::ACK, 0);
                self.wire.extend_from_slice(p);
            }
            frame::WINDOW_UPDATE => {
                let Some(c) = p.get(..4) else {
                    return self.fail("upstream sent invalid WINDOW_UPDATE frame");
                };
                let inc = i64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff);
                if h.stream == 0 {
                    self.send_conn += inc;
                    if self.send_conn > frame::MAX_WINDOW {
                        self.fail("upstream sent too large window update");
                    }
                } else if h.stream == self.id {
                    self.send_stream += inc;
                    if self.send_stream > frame::MAX_WINDOW {
                        self.fail("upstream sent too large window update");
                    }
                }
            }
            frame::GOAWAY => {
                let Some(c) = p.get(..4) else {
                    return self.fail("upstream sent invalid GOAWAY frame");
                };
                let last = u32::from_be_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff;
                self.goaway = true;
                if last < self.id && !self.ended {
                    self.fail("upstream sent goaway with error");
                }
            }
            frame::PUSH_PROMISE => self.fail("upstream sent unexpected push promise frame"),
            // PRIORITY and frame types this side does not know are ignored.
            _ => {}
        }
    }

    fn data_in(&mut self, h: Head, p: &[u8]) {
        let len = p.len() as i64;
        self.recv_conn -= len;
        if self.recv_conn < frame::MAX_WINDOW / 4 {
            let inc = frame::MAX_WINDOW - self.recv_conn;
            frame::write_window_update(&mut self.wire, 0, inc as u32);
            self.recv_conn = frame::MAX_WINDOW;
        }
        if h.stream != self.id {
            // A stream of an earlier request on this connection: dropped.
            return;
        }
        if !self.head_done || self.ended {
            return self.fail("upstream sent unexpected DATA frame");
        }
        self.recv_stream -= len;
        if self.recv_stream < frame::MAX_WINDOW / 4 {
            let inc = frame::MAX_WINDOW - self.recv_stream;
            frame::write_window_update(&mut self.wire, self.id, inc as u32);
            self.recv_stream = frame::MAX_WINDOW;
        }
        let Some(d) = unpad(h, p) else {
            return self.fail("upstream sent DATA with invalid padding");
        };
        self.data_len += d.len() as u64;
        if self.length.is_some_and(|l| self.data_len > l) {
            return self.fail("upstream sent response body larger than indicated content length");
        }
        if !d.is_empty() {
            let _ = std::io::Write::write_fmt(&mut self.synth, format_args!("{:x}\r\n", d.len()));
            self.synth.extend_from_slice(d);
            self.synth.extend_from_slice(b"\r\n");
        }
        if h.has(frame::END_STREAM) {
            self.end_body();
            self.synth.extend_from_slice(b"0\r\n\r\n");
        }
    }

    /// The answer's body ends: its length must be the one announced.
    fn end_body(&mut self) {
        if self.length.is_some_and(|l| self.data_len != l) {
            self.fail("upstream prematurely closed stream");
        }
        self.ended = true;
    }

    /// A complete header block: the answer's head, or its trailers.
    fn block_in(&mut self) {
        let end = self.in_block.take().unwrap_or(false);
        let limits = Limits {
            field: self.max_head,
            list: self.max_head,
        };
        let block = std::mem::take(&mut self.block);
        let r = self.hpack.decode(&block, &mut self.fields, limits);
        self.block = block;
        if r.is_err() {
            return self.fail("upstream sent invalid http2 table index or header");
        }
        let fields = std::mem::take(&mut self.fields);
        if self.head_done {
            self.trailers_in(&fields, end);
        } else {
            self.head_in(&fields, end);
        }
        self.fields = fields;
    }

    fn head_in(&mut self, fields: &HeaderList, end: bool) {
        let mut status = None;
        let mark = self.synth.len();
        self.synth.extend_from_slice(b"HTTP/1.1 000 \r\n");
        let mut regular = false;
        for (name, value) in fields.iter() {
            if let Some(pseudo) = name.strip_prefix(b":") {
                if regular || pseudo != b"status" || status.is_some() {
                    self.synth.truncate(mark);
                    return self.fail("upstream sent invalid header");
                }
                let code = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| v.len() == 3)
                    .and_then(|v| v.parse::<u16>().ok())
                    .filter(|c| (100..1000).contains(c));
                let Some(code) = code else {
                    self.synth.truncate(mark);
                    return self.fail("upstream sent invalid status");
                };
                status = Some(code);
                continue;
            }
            regular = true;
            if !valid_name(name) || !valid_value(value) {
                self.synth.truncate(mark);
                return self.fail("upstream sent invalid header");
            }
            if name == b"content-length" {
                match std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
                    Some(l) => self.length = Some(l),
                    None => {
                        self.synth.truncate(mark);
                        return self.fail("upstream sent invalid content-length");
                    }
                }
                // The length is checked here; the answer goes on chunked.
                continue;
            }
            if matches!(
                name,
                b"connection" | b"keep-alive" | b"transfer-encoding" | b"upgrade"
            ) {
                continue;
            }
            self.synth.extend_from_slice(name);
            self.synth.extend_from_slice(b": ");
            self.synth.extend_from_slice(value);
            self.synth.extend_from_slice(b"\r\n");
        }
        let Some(status) = status else {
            self.synth.truncate(mark);
            return self.fail("upstream sent no :status");
        };
        if (100..200).contains(&status) {
            // An interim answer (103 Early Hints…): not passed on, as nginx's grpc module.
            self.synth.truncate(mark);
            if end {
                self.fail("upstream sent interim response with END_STREAM");
            }
            return;
        }
        let digits = [
            b'0' + (status / 100) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ];
        self.synth[mark + 9..mark + 12].copy_from_slice(&digits);
        let reason = crate::http::response::reason_phrase(status);
        self.synth
            .splice(mark + 13..mark + 13, reason.bytes())
            .for_each(drop);
        self.head_done = true;
        if end {
            if self.length.is_some_and(|l| l != 0) {
                self.synth.truncate(mark);
                return self.fail("upstream prematurely closed stream");
            }
            self.synth.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            self.ended = true;
        } else {
            self.synth
                .extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        }
        self.head_mark = self.synth.len();
    }

    fn trailers_in(&mut self, fields: &HeaderList, end: bool) {
        if !end {
            return self.fail("upstream sent trailer without END_STREAM");
        }
        self.end_body();
        let mark = self.synth.len();
        self.synth.extend_from_slice(b"0\r\n");
        for (name, value) in fields.iter() {
            if name.first() == Some(&b':') || !valid_name(name) || !valid_value(value) {
                self.synth.truncate(mark);
                return self.fail("upstream sent invalid trailer");
            }
            self.synth.extend_from_slice(name);
            self.synth.extend_from_slice(b": ");
            self.synth.extend_from_slice(value);
            self.synth.extend_from_slice(b"\r\n");
        }
        self.synth.extend_from_slice(b"\r\n");
    }
}

/// The payload of a DATA or HEADERS frame without its padding (`None`: the padding is
/// longer than the frame).
fn unpad(h: Head, p: &[u8]) -> Option<&[u8]> {
    if !h.has(frame::PADDED) {
        return Some(p);
    }
    let (&pad, rest) = p.split_first()?;
    rest.len().checked_sub(pad as usize).map(|end| &rest[..end])
}

/// A field name as HTTP/2 allows it: lowercase token characters (nginx's
/// `ngx_http_grpc_validate_header_name`).
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// A field value without NUL, CR or LF (nginx's `ngx_http_grpc_validate_header_value`).
fn valid_value(value: &[u8]) -> bool {
    !value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n'))
}

/// Appends a request header block as HEADERS and CONTINUATION frames of at most 16 KiB
/// (stream id 0: [`H2Up::write`] puts the stream's). `end`: no body follows.
pub(crate) fn frame_block(block: &[u8], end: bool, out: &mut Vec<u8>) {
    let mut chunks = block.chunks(FRAME).peekable();
    let mut first = true;
    if block.is_empty() {
        let flags = frame::END_HEADERS | if end { frame::END_STREAM } else { 0 };
        frame::write_head(out, 0, frame::HEADERS, flags, 0);
        return;
    }
    while let Some(c) = chunks.next() {
        let mut flags = 0;
        if chunks.peek().is_none() {
            flags |= frame::END_HEADERS;
        }
        let kind = if first {
            if end {
                flags |= frame::END_STREAM;
            }
            frame::HEADERS
        } else {
            frame::CONTINUATION
        };
        frame::write_head(out, c.len(), kind, flags, 0);
        out.extend_from_slice(c);
        first = false;
    }
}

/// Appends one field of a request header block: a literal not indexed (no table state is
/// kept for requests), with the name from the static table when it is there.
pub(crate) fn field(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let index = hpack::STATIC
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|i| i + 1);
    match index {
        Some(i) => hpack::write_int(out, 0x00, 4, i),
        None => {
            out.push(0);
            hpack::write_int(out, 0x00, 7, name.len());
            out.extend(name.iter().map(u8::to_ascii_lowercase));
        }
    }
    hpack::write_int(out, 0x00, 7, value.len());
    out.extend_from_slice(value);
}

/// Appends request body bytes as DATA frames of at most 16 KiB (`end`: the last, with
/// END_STREAM; an empty one when `bytes` is empty).
pub(crate) fn data_frames(bytes: &[u8], end: bool, out: &mut Vec<u8>) {
    let mut chunks = bytes.chunks(FRAME).peekable();
    if bytes.is_empty() {
        if end {
            frame::write_head(out, 0, frame::DATA, frame::END_STREAM, 0);
        }
        return;
    }
    while let Some(c) = chunks.next() {
        let flags = if end && chunks.peek().is_none() {
            frame::END_STREAM
        } else {
            0
        };
        frame::write_head(out, c.len(), frame::DATA, flags, 0);
        out.extend_from_slice(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A scripted server: what it sends, what it takes per write.
    #[derive(Default)]
    struct Peer {
        inbound: VecDeque<u8>,
        written: Vec<u8>,
        takes: Option<usize>,
        closed: bool,
    }

    impl Wire for Peer {
        fn recv(&mut self, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
            if self.inbound.is_empty() {
                return if self.closed {
                    Ok(0)
                } else {
                    Err(Error::from(ErrorKind::WouldBlock))
                };
            }
            let n = want.min(self.inbound.len());
            buf.extend(self.inbound.drain(..n));
            Ok(n)
        }
        fn send(&mut self, data: &[u8]) -> std::io::Result<usize> {
            let n = self.takes.map_or(data.len(), |t| t.min(data.len()));
            if n == 0 {
                return Err(Error::from(ErrorKind::WouldBlock));
            }
            self.written.extend_from_slice(&data[..n]);
            Ok(n)
        }
    }

    fn frames(mut b: &[u8]) -> Vec<(Head, Vec<u8>)> {
        let mut v = Vec::new();
        while let Some(h) = Head::parse(b) {
            let len = h.len as usize;
            v.push((h, b[HEAD..HEAD + len].to_vec()));
            b = &b[HEAD + len..];
        }
        v
    }

    fn block(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (n, v) in fields {
            field(n, v, &mut b);
        }
        b
    }

    fn server_frame(peer: &mut Peer, kind: u8, flags: u8, stream: u32, p: &[u8]) {
        let mut f = Vec::new();
        frame::write_head(&mut f, p.len(), kind, flags, stream);
        f.extend_from_slice(p);
        peer.inbound.extend(f);
    }

    fn read_all(h: &mut H2Up, peer: &mut Peer) -> Result<Vec<u8>, ErrorKind> {
        let mut out = Vec::new();
        loop {
            match h.read(&mut out, 7, peer) {
                Ok(0) => return Ok(out),
                Ok(_) => {}
                Err(e) => return Err(e.kind()),
            }
        }
    }

    #[test]
    fn a_request_goes_out_framed_and_cut_to_the_window() {
        let mut h = H2Up::new();
        h.start_stream(4096);
        let mut req = Vec::new();
        frame_block(
            &block(&[(b":method", b"POST"), (b":path", b"/x")]),
            false,
            &mut req,
        );
        let body = vec![b'a'; 70_000];
        data_frames(&body, true, &mut req);
        let mut peer = Peer::default();
        let mut at = 0;
        let mut stalls = 0;
        while at < req.len() {
            match h.write(&req[at..], &mut peer) {
                Ok(n) => at += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    stalls += 1;
                    assert!(stalls < 5, "no progress at {at}");
                    // The server opens its windows.
                    let mut wu = Vec::new();
                    frame::write_window_update(&mut wu, 0, 10_000);
                    frame::write_window_update(&mut wu, 1, 10_000);
                    peer.inbound.extend(wu);
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(peer.written.starts_with(frame::PREFACE));
        let fs = frames(&peer.written[frame::PREFACE.len()..]);
        let data: usize = fs
            .iter()
            .filter(|(h, _)| h.kind == frame::DATA)
            .map(|(h, _)| h.len as usize)
            .sum();
        assert_eq!(data, 70_000);
        assert!(fs
            .iter()
            .all(|(f, _)| f.kind != frame::DATA || f.stream == 1));
        let last = fs
            .iter()
            .rev()
            .find(|(f, _)| f.kind == frame::DATA)
            .unwrap()
            .0;
        assert!(last.has(frame::END_STREAM));
        assert!(h.sent_all);
        // The default window (65,535) was respected before the updates.
        assert_eq!(stalls, 1);
    }

    #[test]
    fn an_answer_reads_as_http11_with_trailers() {
        let mut h = H2Up::new();
        h.start_stream(4096);
        let mut peer = Peer::default();
        server_frame(&mut peer, frame::SETTINGS, 0, 0, &[0, 4, 0, 0, 0x10, 0]);
        server_frame(&mut peer, frame::PING, 0, 0, b"12345678");
        let head = block(&[(b":status", b"200"), (b"content-type", b"application/grpc")]);
        // The head split over HEADERS and CONTINUATION, padded and with a priority.
        let mut p = vec![3u8, 0, 0, 0, 0, 7];
        p.extend_from_slice(&head[..4]);
        p.extend_from_slice(&[0, 0, 0]);
        server_frame(
            &mut peer,
            frame::HEADERS,
            frame::PADDED | frame::PRIORITY_FLAG,
            1,
            &p,
        );
        server_frame(
            &mut peer,
            frame::CONTINUATION,
            frame::END_HEADERS,
            1,
            &head[4..],
        );
        server_frame(
            &mut peer,
            frame::DATA,
            frame::PADDED,
            1,
            b"\x02Hello world\0\0",
        );
        let t = block(&[(b"grpc-status", b"0"), (b"grpc-message", b"")]);
        server_frame(
            &mut peer,
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            1,
            &t,
        );
        let out = read_all(&mut h, &mut peer).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\nTransfer-Encoding: chunked\r\n\r\n\
             b\r\nHello world\r\n0\r\ngrpc-status: 0\r\ngrpc-message: \r\n\r\n"
        );
        let acks = frames(&peer.written[START.len()..]);
        assert_eq!(acks[0].0.kind, frame::SETTINGS);
        assert!(acks[0].0.has(frame::ACK));
        assert_eq!(acks[1].0.kind, frame::PING);
        assert_eq!(acks[1].1, b"12345678");
        h.sent_all = true;
        assert!(h.clean_end());
        // The next stream on the connection: id 3, the server's initial window of 4,096.
        h.start_stream(4096);
        assert_eq!(h.id, 3);
        assert_eq!(h.send_stream, 4096);
    }

    #[test]
    fn a_trailers_only_answer_has_no_body() {
        let mut h = H2Up::new();
        h.start_stream(4096);
        let mut peer = Peer::default();
        let b = block(&[(b":status", b"200"), (b"grpc-status", b"12")]);
        server_frame(
            &mut peer,
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            1,
            &b,
        );
        let out = read_all(&mut h, &mut peer).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\ngrpc-status: 12\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn broken_answers_are_errors() {
        let bad: [&[(&[u8], &[u8])]; 5] = [
            &[(b":status", b"200"), (b"n:n", b"v")],
            &[(b":status", b"200"), (b"NN", b"v")],
            &[(b":status", b"200"), (b"n n", b"v")],
            &[(b":status", b"200"), (b"n", b"v\nv")],
            &[(b"x", b"y"), (b":status", b"200")],
        ];
        for fields in bad {
            let mut h = H2Up::new();
            h.start_stream(4096);
            let mut peer = Peer::default();
            // Literal names as sent (not lowercased as the request encoder does).
            let mut b = Vec::new();
            for (n, v) in fields {
                b.push(0);
                hpack::write_int(&mut b, 0, 7, n.len());
                b.extend_from_slice(n);
                hpack::write_int(&mut b, 0, 7, v.len());
                b.extend_from_slice(v);
            }
            server_frame(&mut peer, frame::HEADERS, frame::END_HEADERS, 1, &b);
            assert_eq!(
                read_all(&mut h, &mut peer),
                Err(ErrorKind::InvalidData),
                "{fields:?}"
            );
        }
        // A body longer than its content-length; a GOAWAY that leaves the stream out; a
        // close before the end.
        let mut h = H2Up::new();
        h.start_stream(4096);
        let mut peer = Peer::default();
        let b = block(&[(b":status", b"200"), (b"content-length", b"3")]);
        server_frame(&mut peer, frame::HEADERS, frame::END_HEADERS, 1, &b);
        server_frame(&mut peer, frame::DATA, 0, 1, b"abcd");
        assert_eq!(read_all(&mut h, &mut peer), Err(ErrorKind::InvalidData));
        let mut h = H2Up::new();
        h.start_stream(4096);
        let mut peer = Peer::default();
        server_frame(&mut peer, frame::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(read_all(&mut h, &mut peer), Err(ErrorKind::InvalidData));
        let mut h = H2Up::new();
        h.start_stream(4096);
        let mut peer = Peer {
            closed: true,
            ..Peer::default()
        };
        assert_eq!(read_all(&mut h, &mut peer), Err(ErrorKind::UnexpectedEof));
    }

    #[test]
    fn after_the_end_one_rst_no_error_is_fine_and_more_break_the_stream() {
        for (rsts, ok) in [(0, true), (1, true), (3, false)] {
            let mut h = H2Up::new();
            h.start_stream(4096);
            let mut peer = Peer::default();
            let b = block(&[(b":status", b"200"), (b"grpc-status", b"0")]);
            server_frame(
                &mut peer,
                frame::HEADERS,
                frame::END_HEADERS | frame::END_STREAM,
                1,
                &b,
            );
            for _ in 0..rsts {
                server_frame(&mut peer, frame::RST_STREAM, 0, 1, &[0, 0, 0, 0]);
            }
            // A WINDOW_UPDATE for the ended stream is harmless.
            server_frame(&mut peer, frame::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 42]);
            assert!(h.answer_begun(&mut peer));
            assert_eq!(read_all(&mut h, &mut peer).is_ok(), ok, "{rsts} RST_STREAM");
        }
        // Nothing from the server yet: no answer; its head: the answer has begun.
        let mut h = H2Up::new();
        h.start_stream(4096);
        let mut peer = Peer::default();
        assert!(!h.answer_begun(&mut peer));
        let b = block(&[(b":status", b"200")]);
        server_frame(&mut peer, frame::HEADERS, frame::END_HEADERS, 1, &b);
        assert!(h.answer_begun(&mut peer));
        assert!(peer.written.starts_with(frame::PREFACE));
    }

    #[test]
    fn a_head_read_before_a_break_in_the_same_read_still_goes_out() {
        let mut h = H2Up::new();
        h.start_stream(4096);
        let mut peer = Peer::default();
        let b = block(&[(b":status", b"200")]);
        server_frame(&mut peer, frame::HEADERS, frame::END_HEADERS, 1, &b);
        server_frame(&mut peer, frame::DATA, 0, 1, b"dropped");
        server_frame(&mut peer, frame::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 5]);
        let mut out = Vec::new();
        let mut got = Ok(1);
        while matches!(got, Ok(n) if n > 0) {
            got = h.read(&mut out, 4096, &mut peer).map_err(|e| e.kind());
        }
        assert_eq!(got, Err(ErrorKind::InvalidData));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn a_restarted_state_is_a_new_connection() {
        let mut h = H2Up::new();
        h.start_stream(4096);
        let mut peer = Peer::default();
        server_frame(&mut peer, frame::SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 2]);
        server_frame(&mut peer, frame::GOAWAY, 0, 0, &[0, 0, 0, 9, 0, 0, 0, 0]);
        let b = block(&[(b":status", b"200"), (b"x-kept", b"in the table")]);
        let mut indexed = vec![0x40];
        hpack::write_int(&mut indexed, 0, 7, 6);
        indexed.extend_from_slice(b"x-kept");
        hpack::write_int(&mut indexed, 0, 7, 1);
        indexed.push(b'v');
        let mut head = b.clone();
        head.extend_from_slice(&indexed);
        server_frame(
            &mut peer,
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            1,
            &head,
        );
        read_all(&mut h, &mut peer).unwrap();
        assert!(h.goaway);
        h.start_stream(4096);
        assert_eq!(h.id, 3);
        // Recycled for another connection: stream 1, default windows, no GOAWAY, an empty
        // table (index 62 is gone), the preface first again.
        h.restart(4096);
        assert_eq!(
            (h.id, h.send_stream, h.goaway),
            (1, frame::DEFAULT_WINDOW, false)
        );
        let mut peer = Peer::default();
        let mut b = block(&[(b":status", b"200")]);
        b.push(0x80 | 62);
        server_frame(
            &mut peer,
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            1,
            &b,
        );
        assert_eq!(read_all(&mut h, &mut peer), Err(ErrorKind::InvalidData));
        assert!(peer.written.starts_with(frame::PREFACE));
    }

    #[test]
    fn a_ping_flood_that_is_never_read_breaks_the_stream() {
        let mut h = H2Up::new();
        h.start_stream(4096);
        // A server that reads nothing.
        let mut peer = Peer {
            takes: Some(0),
            ..Peer::default()
        };
        for _ in 0..70_000 {
            server_frame(&mut peer, frame::PING, 0, 0, b"12345678");
        }
        assert_eq!(read_all(&mut h, &mut peer), Err(ErrorKind::InvalidData));
        assert_eq!(h.error, Some("upstream sent too many control frames"));
        assert!(h.wire.len() <= WIRE_MAX + 64 * 1024);
    }

    #[test]
    fn a_slow_socket_gets_every_frame_byte() {
        let mut h = H2Up::new();
        h.start_stream(4096);
        let mut req = Vec::new();
        frame_block(&block(&[(b":path", b"/a")]), false, &mut req);
        data_frames(b"hello", false, &mut req);
        data_frames(b"", true, &mut req);
        let mut peer = Peer {
            takes: Some(3),
            ..Peer::default()
        };
        let mut at = 0;
        for _ in 0..1000 {
            if at == req.len() {
                break;
            }
            if let Ok(n) = h.write(&req[at..], &mut peer) {
                at += n;
            }
        }
        assert_eq!(at, req.len());
        let fs = frames(&peer.written[START.len()..]);
        let kinds: Vec<(u8, u8, usize)> = fs
            .iter()
            .map(|(h, _)| (h.kind, h.flags, h.len as usize))
            .collect();
        assert_eq!(
            kinds,
            [
                (frame::HEADERS, frame::END_HEADERS, 4),
                (frame::DATA, 0, 5),
                (frame::DATA, frame::END_STREAM, 0)
            ]
        );
    }
}
