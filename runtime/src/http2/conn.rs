//! One HTTP/2 connection, server side, sans-IO: bytes in ([`H2Conn::recv`]), events out
//! ([`Event`]: requests, body bytes, trailers, resets), frames to send in [`H2Conn::out`].
//!
//! It keeps the connection's rules (RFC 9113): the preface and the first SETTINGS, stream
//! states and identifiers, header blocks with their CONTINUATION frames, HPACK, flow
//! control both ways, SETTINGS/PING answers, GOAWAY. A connection error queues GOAWAY and
//! is returned (the caller writes what is queued and closes); a stream error queues
//! RST_STREAM and, for a stream the caller knows, reports it as [`Event::Reset`].
//!
//! Hostile peers meet limits: a header block larger than the header list allowed, more
//! cheap frames (PING, SETTINGS, WINDOW_UPDATE, PRIORITY, RST_STREAM, empty DATA or
//! CONTINUATION) than the work they come with (the rapid-reset and control-frame floods)
//! and more cancelled streams than served ones end the connection with ENHANCE_YOUR_CALM.
//! Memory per connection is bounded by the stream count and the per-stream window.

use super::frame::{self, ErrorCode, Head};
use super::hpack::{Decoder, Encoder, HeaderList, HpackError, Limits};
use std::ops::Range;

/// This side's settings (nginx's `http2_*` directives).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// `http2_max_concurrent_streams`: streams open at once (more are refused).
    pub(crate) max_concurrent_streams: u32,
    /// `http2_body_preread_size`: each stream's receive window (SETTINGS_INITIAL_WINDOW_SIZE).
    pub(crate) initial_window: u32,
    /// The longest header string and the largest header list (`large_client_header_buffers`:
    /// one buffer, all of them, as nginx).
    pub(crate) headers: Limits,
    /// `http2_chunk_size`: the largest DATA frame sent.
    pub(crate) chunk_size: usize,
    /// `max_headers`: a request with more fields (but cookies) is answered 400.
    pub(crate) max_headers: usize,
    /// `keepalive_requests`: the stream that reaches it is the last (GOAWAY names it).
    pub(crate) max_requests: u32,
    /// `keepalive_timeout 0`: the first stream is the last.
    pub(crate) keepalive_off: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_concurrent_streams: 128,
            initial_window: 65_536,
            headers: Limits {
                field: 8 * 1024,
                list: 32 * 1024,
            },
            chunk_size: 8 * 1024,
            max_headers: 1000,
            max_requests: 1000,
            keepalive_off: false,
        }
    }
}

/// A connection error: GOAWAY with `code` is queued in `out`; the connection ends once it
/// is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnError {
    pub(crate) code: ErrorCode,
    /// What happened, for the error log.
    pub(crate) reason: &'static str,
}

/// Puts `id` in a ring of at most [`MEMORY`] ids (`at`: where the next goes once full).
fn remember(ring: &mut Vec<u32>, at: &mut usize, id: u32) {
    if ring.len() < MEMORY {
        ring.push(id);
    } else {
        ring[*at % MEMORY] = id;
        *at += 1;
    }
}

/// A header block that does not decode: past the limits (nginx's ENHANCE_YOUR_CALM), or
/// broken.
/// The header block bytes of a HEADERS frame's payload not all here yet (`part`): after
/// the pad length and priority fields, short of the padding (`None`: not that far yet).
fn partial_fragment<'p>(h: &Head, part: &'p [u8]) -> Option<&'p [u8]> {
    let extra = if h.has(frame::PRIORITY_FLAG) { 5 } else { 0 };
    let (start, pad) = layout(h, part.first(), extra)?;
    let end = (h.len as usize).checked_sub(pad)?;
    part.get(start..end.min(part.len()))
}

/// Where a frame's content lies in its payload: it starts after the pad length (when
/// PADDED) and `extra` more bytes, and `pad` bytes of padding end it. `None`: the pad
/// length (the payload's `first` byte) is not there.
fn layout(h: &Head, first: Option<&u8>, extra: usize) -> Option<(usize, usize)> {
    if !h.has(frame::PADDED) {
        return Some((extra, 0));
    }
    Some((1 + extra, usize::from(*first?)))
}

fn decode_error(e: HpackError) -> ConnError {
    match e {
        HpackError::FieldTooLarge => conn_err(
            ErrorCode::EnhanceYourCalm,
            "client sent too large header field",
        ),
        HpackError::ListTooLarge => {
            conn_err(ErrorCode::EnhanceYourCalm, "client sent too large header")
        }
        // A block that ends inside a field: nginx's "incorrect length", FRAME_SIZE_ERROR.
        HpackError::Truncated => conn_err(
            ErrorCode::FrameSize,
            "client sent header block with incorrect length",
        ),
        _ => conn_err(ErrorCode::Compression, "header block does not decode"),
    }
}

/// What the peer did, for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A request: its header list, checked, is [`H2Conn::headers`]; `end_stream`: no body.
    /// `refused`: the request is malformed (why), to be answered 400.
    Request {
        stream: u32,
        end_stream: bool,
        refused: Option<&'static str>,
        /// The size of its header block as received (HEADERS and CONTINUATION payloads
        /// without padding): the head's part of `$request_length`, as nginx counts it.
        block_len: usize,
    },
    /// Request body bytes, `input[at]` of the bytes given to `recv`.
    Data {
        stream: u32,
        at: Range<usize>,
        end_stream: bool,
    },
    /// The request's trailer section ([`H2Conn::trailers`]); the request is complete.
    Trailers { stream: u32 },
    /// The stream ended before its response was sent: reset by the peer, or by this side
    /// for a stream error. The caller drops the request.
    Reset { stream: u32, code: ErrorCode },
    /// The request body's length is not its `content-length` (more came, or it ended
    /// short): the body ends there, and the request is to be answered 400 (as nginx).
    BadBody { stream: u32 },
}

#[derive(Debug, Default)]
struct Stream {
    id: u32,
    /// The peer ended its side (END_STREAM).
    remote_done: bool,
    /// This side sent END_STREAM.
    local_done: bool,
    send_window: i64,
    recv_window: i64,
    /// Body bytes the caller took and that are not yet given back (WINDOW_UPDATE).
    released: u32,
    headers: HeaderList,
    trailers: HeaderList,
    /// The request's Content-Length, checked against the DATA frames.
    content_length: Option<u64>,
    received: u64,
    /// The body broke its Content-Length: what else comes of it is dropped (its bytes
    /// given back to the windows), as nginx skips it.
    skip: bool,
    /// `http2_chunk_size` of the location answering (0: the connection's).
    chunk_size: u32,
}

/// Priorities remembered (RFC 7540 §5.3: a stream's dependency and weight), those of the
/// newest streams: enough for the streams a connection has open.
const PRIO_MAX: usize = 128;
/// The weight byte of a stream with none given (weight 16).
const DEFAULT_WEIGHT: u8 = 15;

/// Streams remembered as reset by this side (frames the peer had in flight for them are
/// ignored) and as closed otherwise (a HEADERS for one is STREAM_CLOSED, for a stream never
/// opened PROTOCOL_ERROR).
const MEMORY: usize = 128;
/// Past this many bytes queued for the peer, `recv` stops taking frames until the caller
/// has written some (a peer that sends without reading cannot make the queue grow).
const OUT_HIGH: usize = 1 << 20;

/// The largest frame taken from the peer (this side's SETTINGS_MAX_FRAME_SIZE): above the
/// protocol's 16 KiB as nginx's (which announces 16 MiB: its clients may send a long header
/// list, or a body of more than 64 KiB, in one frame), half the read-ahead, since a frame is
/// taken whole.
pub(crate) const RECV_MAX_FRAME: u32 = 128 * 1024;
/// The cheap frames a connection may send before it has earned more (see `budget`).
const BUDGET_START: i64 = 10_000;
const BUDGET_MAX: i64 = 1_000_000;

/// The connection.
#[derive(Debug)]
pub(crate) struct H2Conn {
    cfg: Config,
    /// Preface bytes seen (24 when complete).
    preface: usize,
    decoder: Decoder,
    encoder: Encoder,
    peer_initial_window: i64,
    peer_max_frame: u32,
    send_window: i64,
    recv_window: i64,
    streams: Vec<Stream>,
    free: Vec<Stream>,
    /// The highest stream identifier the peer used.
    last_stream: u32,
    /// A header block being received: its stream (0: none), the HEADERS flags, the
    /// fragments so far, a priority error found in the HEADERS frame.
    block: Vec<u8>,
    block_stream: u32,
    block_flags: u8,
    /// Rings of at most [`MEMORY`] ids, grown as they fill (an idle connection has none).
    reset_ids: Vec<u32>,
    reset_at: usize,
    closed_ids: Vec<u32>,
    closed_at: usize,
    /// The peer acknowledged this side's SETTINGS (until then it may fill the protocol's
    /// default window, 65,535, whatever this side announced).
    acked: bool,
    /// A list decoded for a stream that is not kept (refused, ignored).
    scratch: HeaderList,
    /// Frames to send.
    pub(crate) out: Vec<u8>,
    hbuf: Vec<u8>,
    /// GOAWAY sent: the last stream that will be served.
    goaway: Option<u32>,
    /// The peer sent GOAWAY: no new streams will come.
    pub(crate) peer_goaway: bool,
    /// Cheap frames still allowed: each costs one; requests and DATA sent earn more.
    budget: i64,
    /// Streams the peer reset before their response was complete, and those completed.
    cancelled: u32,
    completed: u32,
    /// A window grew (WINDOW_UPDATE, SETTINGS): stalled streams may send again.
    pub(crate) window_opened: bool,
    /// Priorities from PRIORITY frames and HEADERS (stream, dependency, weight byte) by
    /// stream id, at most [`PRIO_MAX`]; empty for clients that send none.
    prio: Vec<(u32, u32, u8)>,
    /// The rank of every stream in `prio`, by id, made again when `prio` changes.
    ranks: Vec<(u32, u16)>,
    ranks_stale: bool,
    /// Streams opened, and whether the connection has lived past `keepalive_time` (the
    /// caller's clock says so): the stream that reaches a limit is the last.
    opened: u32,
    pub(crate) aged: bool,
}

type Res = Result<(), ConnError>;

fn conn_err(code: ErrorCode, reason: &'static str) -> ConnError {
    ConnError { code, reason }
}

impl H2Conn {
    /// A connection whose preface is still to come; this side's SETTINGS (and a larger
    /// connection window) are queued.
    pub(crate) fn new(cfg: Config) -> H2Conn {
        let mut c = H2Conn {
            decoder: Decoder::new(4096),
            encoder: Encoder::default(),
            preface: 0,

            peer_initial_window: frame::DEFAULT_WINDOW,
            peer_max_frame: frame::MIN_FRAME,
            send_window: frame::DEFAULT_WINDOW,
            recv_window: frame::MAX_WINDOW,
            streams: Vec::new(),
            free: Vec::new(),
            last_stream: 0,
            block: Vec::new(),
            block_stream: 0,
            block_flags: 0,
            reset_ids: Vec::new(),
            reset_at: 0,
            closed_ids: Vec::new(),
            closed_at: 0,
            acked: false,
            scratch: HeaderList::default(),
            out: Vec::new(),
            hbuf: Vec::new(),
            goaway: None,
            peer_goaway: false,
            budget: BUDGET_START,
            cancelled: 0,
            completed: 0,
            window_opened: false,
            prio: Vec::new(),
            ranks: Vec::new(),
            ranks_stale: false,
            opened: 0,
            aged: false,
            cfg,
        };
        let max_list = u32::try_from(c.cfg.headers.list).unwrap_or(u32::MAX);
        frame::write_settings(
            &mut c.out,
            &[
                (
                    frame::SETTINGS_MAX_CONCURRENT_STREAMS,
                    c.cfg.max_concurrent_streams,
                ),
                (frame::SETTINGS_MAX_FRAME_SIZE, RECV_MAX_FRAME),
                (frame::SETTINGS_INITIAL_WINDOW_SIZE, c.cfg.initial_window),
                (frame::SETTINGS_MAX_HEADER_LIST_SIZE, max_list),
            ],
        );
        frame::write_window_update(
            &mut c.out,
            0,
            (frame::MAX_WINDOW - frame::DEFAULT_WINDOW) as u32,
        );
        c
    }

    /// Processes the complete frames at the start of `input` (after the preface), adding
    /// what happened to `events`; returns how many bytes were used (the rest is a frame
    /// still arriving). `Data` events point into `input`.
    pub(crate) fn recv(
        &mut self,
        input: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<usize, ConnError> {
        let mut at = 0usize;
        if self.preface < frame::PREFACE.len() {
            let want = &frame::PREFACE[self.preface..];
            let n = want.len().min(input.len());
            if input[..n] != want[..n] {
                return Err(self.fail(ErrorCode::Protocol, "invalid connection preface"));
            }
            self.preface += n;
            at = n;
            if self.preface < frame::PREFACE.len() {
                return Ok(at);
            }
        }
        while let Some(h) = input.get(at..).and_then(Head::parse) {
            if self.out.len() > OUT_HIGH {
                break;
            }
            if h.len > RECV_MAX_FRAME {
                return Err(self.fail(
                    ErrorCode::FrameSize,
                    "frame larger than SETTINGS_MAX_FRAME_SIZE",
                ));
            }
            // A client never sends PUSH_PROMISE: the frame's head is enough (nginx does not
            // wait for its payload either).
            if h.kind == frame::PUSH_PROMISE {
                return Err(self.fail(ErrorCode::Protocol, "PUSH_PROMISE from a client"));
            }
            let start = at + frame::HEAD;
            let end = start + h.len as usize;
            let Some(payload) = input.get(start..end) else {
                // A HEADERS frame still arriving: an integer already too long in its block
                // ends the connection now, as nginx's.
                if h.kind == frame::HEADERS && self.block_stream == 0 {
                    let part = input.get(start..).unwrap_or_default();
                    if let Some(fragment) = partial_fragment(&h, part) {
                        if let Err(e) = super::hpack::check_partial(fragment) {
                            let e = decode_error(e);
                            return Err(self.fail(e.code, e.reason));
                        }
                    }
                }
                break;
            };
            let r = self
                .frame(h, payload, start, events)
                .and_then(|()| self.limits());
            if let Err(e) = r {
                return Err(self.fail(e.code, e.reason));
            }
            at = end;
        }
        Ok(at)
    }

    /// Queues GOAWAY for a connection error.
    fn fail(&mut self, code: ErrorCode, reason: &'static str) -> ConnError {
        if self.goaway.is_none() || code != ErrorCode::NoError {
            frame::write_goaway(&mut self.out, self.last_stream, code);
        }
        self.goaway = Some(self.last_stream);
        conn_err(code, reason)
    }

    /// Sends GOAWAY (NO_ERROR): the streams open now are finished, no new one is taken.
    pub(crate) fn shutdown(&mut self) {
        if self.goaway.is_none() {
            frame::write_goaway(&mut self.out, self.last_stream, ErrorCode::NoError);
            self.goaway = Some(self.last_stream);
        }
    }

    /// Remembers the priority a PRIORITY frame or a HEADERS frame (its 5 bytes) gives
    /// stream `id` (the table is kept by id; when full, the oldest stream's goes).
    fn set_priority(&mut self, id: u32, p: &[u8]) {
        let (Some(d), Some(&weight)) = (p.get(..4), p.get(4)) else {
            return;
        };
        let dep = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & 0x7fff_ffff;
        match self.prio.binary_search_by_key(&id, |e| e.0) {
            Ok(i) => self.prio[i] = (id, dep, weight),
            Err(i) => {
                self.prio.insert(i, (id, dep, weight));
                if self.prio.len() > PRIO_MAX {
                    self.prio.remove(0);
                }
            }
        }
        self.ranks_stale = true;
    }

    /// Whether the peer gave any priority (else output keeps the streams' own order).
    pub(crate) fn prioritized(&self) -> bool {
        !self.prio.is_empty()
    }

    /// Where stream `id` stands in the peer's priorities, lowest first: its depth in the
    /// dependency tree (a stream that depends on another comes after it), then the
    /// heavier weight first (nginx's order of output). Ranks are worked out once per
    /// change of the table.
    pub(crate) fn rank(&mut self, id: u32) -> u16 {
        if self.ranks_stale {
            self.ranks_stale = false;
            let mut ranks = std::mem::take(&mut self.ranks);
            ranks.clear();
            ranks.extend(self.prio.iter().map(|e| (e.0, self.rank_of(e.0))));
            self.ranks = ranks;
        }
        match self.ranks.binary_search_by_key(&id, |e| e.0) {
            Ok(i) => self.ranks[i].1,
            Err(_) => u16::from(255 - DEFAULT_WEIGHT),
        }
    }

    fn rank_of(&self, id: u32) -> u16 {
        let find = |id: u32| {
            self.prio
                .binary_search_by_key(&id, |e| e.0)
                .ok()
                .map(|i| self.prio[i])
        };
        let weight = find(id).map_or(DEFAULT_WEIGHT, |e| e.2);
        let mut depth = 0u16;
        let mut at = id;
        while let Some((_, dep, _)) = find(at) {
            if dep == 0 || depth >= 16 {
                break;
            }
            depth += 1;
            at = dep;
        }
        (depth << 8) | u16::from(255 - weight)
    }

    /// Whether GOAWAY was sent.
    pub(crate) fn going_away(&self) -> bool {
        self.goaway.is_some()
    }

    /// Streams open (a request being received or answered).
    #[cfg(test)]
    pub(crate) fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// The flood limits, after each frame: cheap frames beyond what the work earned, and
    /// more streams cancelled (by the peer's RST_STREAM, or by this side for the peer's
    /// fault: "MadeYouReset") than served.
    fn limits(&self) -> Res {
        if self.budget < 0 {
            return Err(conn_err(
                ErrorCode::EnhanceYourCalm,
                "too many control frames (flood)",
            ));
        }
        if self.cancelled > 100 && self.cancelled / 2 > self.completed {
            return Err(conn_err(
                ErrorCode::EnhanceYourCalm,
                "too many streams reset before their response (rapid reset)",
            ));
        }
        Ok(())
    }

    fn cheap(&mut self) -> Res {
        self.budget -= 1;
        if self.budget < 0 {
            return Err(conn_err(
                ErrorCode::EnhanceYourCalm,
                "too many control frames (flood)",
            ));
        }
        Ok(())
    }

    fn earn(&mut self, n: i64) {
        self.budget = (self.budget + n).min(BUDGET_MAX);
    }

    fn find(&self, id: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }

    fn was_reset(&self, id: u32) -> bool {
        id != 0 && self.reset_ids.contains(&id)
    }

    fn was_closed(&self, id: u32) -> bool {
        id != 0 && self.closed_ids.contains(&id)
    }

    /// A stream the peer never opened: above the last one, or even (this side pushes none).
    fn idle(&self, id: u32) -> bool {
        id > self.last_stream || id.is_multiple_of(2)
    }

    fn frame(&mut self, h: Head, p: &[u8], base: usize, ev: &mut Vec<Event>) -> Res {
        // RFC 9113 §3.4 has the preface followed by SETTINGS; nginx takes any frame (its
        // own test client answers the server's SETTINGS first), and so does Proton.
        if self.block_stream != 0
            && (h.kind != frame::CONTINUATION || h.stream != self.block_stream)
        {
            return Err(conn_err(
                ErrorCode::Protocol,
                "a header block was interrupted",
            ));
        }
        match h.kind {
            frame::DATA => self.on_data(h, p, base, ev),
            frame::HEADERS => self.on_headers(h, p, ev),
            frame::CONTINUATION => self.on_continuation(h, p, ev),
            frame::PRIORITY => {
                if h.stream == 0 {
                    return Err(conn_err(ErrorCode::Protocol, "PRIORITY on stream 0"));
                }
                self.cheap()?;
                if h.len != 5 {
                    self.stream_error(h.stream, ErrorCode::FrameSize, ev);
                } else if u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff == h.stream {
                    // RFC 9113 makes this a stream error; nginx ends the connection.
                    return Err(conn_err(
                        ErrorCode::Protocol,
                        "a stream that depends on itself",
                    ));
                } else {
                    self.set_priority(h.stream, p);
                }
                Ok(())
            }
            frame::RST_STREAM => {
                if h.stream == 0 {
                    return Err(conn_err(ErrorCode::Protocol, "RST_STREAM on stream 0"));
                }
                if h.len != 4 {
                    return Err(conn_err(ErrorCode::FrameSize, "RST_STREAM of a wrong size"));
                }
                if self.idle(h.stream) {
                    return Err(conn_err(
                        ErrorCode::Protocol,
                        "RST_STREAM on an idle stream",
                    ));
                }
                self.cheap()?;
                if let Some(i) = self.find(h.stream) {
                    let s = self.streams.swap_remove(i);
                    if !s.local_done {
                        self.cancelled += 1;
                    }
                    self.free.push(s);
                    self.remember_closed(h.stream);
                    let code = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                    ev.push(Event::Reset {
                        stream: h.stream,
                        code: if code == ErrorCode::NoError as u32 {
                            ErrorCode::NoError
                        } else {
                            ErrorCode::Cancel
                        },
                    });
                }
                Ok(())
            }
            frame::SETTINGS => self.settings(h, p),
            frame::PUSH_PROMISE => Err(conn_err(ErrorCode::Protocol, "PUSH_PROMISE from a client")),
            frame::PING => {
                if h.stream != 0 {
                    return Err(conn_err(ErrorCode::Protocol, "PING on a stream"));
                }
                if h.len != 8 {
                    return Err(conn_err(ErrorCode::FrameSize, "PING of a wrong size"));
                }
                self.cheap()?;
                if !h.has(frame::ACK) {
                    frame::write_head(&mut self.out, 8, frame::PING, frame::ACK, 0);
                    self.out.extend_from_slice(p);
                }
                Ok(())
            }
            frame::GOAWAY => {
                if h.stream != 0 {
                    return Err(conn_err(ErrorCode::Protocol, "GOAWAY on a stream"));
                }
                if h.len < 8 {
                    return Err(conn_err(ErrorCode::FrameSize, "GOAWAY too short"));
                }
                self.peer_goaway = true;
                self.cheap()
            }
            frame::WINDOW_UPDATE => self.window_update(h, p, ev),
            // Unknown frame types are ignored (RFC 9113 §4.1).
            _ => self.cheap(),
        }
    }

    fn settings(&mut self, h: Head, p: &[u8]) -> Res {
        if h.stream != 0 {
            return Err(conn_err(ErrorCode::Protocol, "SETTINGS on a stream"));
        }
        if h.has(frame::ACK) {
            if h.len != 0 {
                return Err(conn_err(
                    ErrorCode::FrameSize,
                    "SETTINGS ACK with a payload",
                ));
            }
            if !self.acked {
                // The window announced applies from now on to the streams already open.
                self.acked = true;
                let cut = frame::DEFAULT_WINDOW - i64::from(self.cfg.initial_window);
                if cut > 0 {
                    for s in &mut self.streams {
                        s.recv_window -= cut;
                    }
                }
            }
            return self.cheap();
        }
        if !h.len.is_multiple_of(6) {
            return Err(conn_err(ErrorCode::FrameSize, "SETTINGS of a wrong size"));
        }
        self.cheap()?;
        for s in p.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            match id {
                frame::SETTINGS_ENABLE_PUSH if v > 1 => {
                    return Err(conn_err(
                        ErrorCode::Protocol,
                        "SETTINGS_ENABLE_PUSH not 0 or 1",
                    ));
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let v = i64::from(v);
                    if v > frame::MAX_WINDOW {
                        return Err(conn_err(
                            ErrorCode::FlowControl,
                            "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
                        ));
                    }
                    let delta = v - self.peer_initial_window;
                    self.peer_initial_window = v;
                    for s in &mut self.streams {
                        s.send_window += delta;
                        if s.send_window > frame::MAX_WINDOW {
                            return Err(conn_err(
                                ErrorCode::FlowControl,
                                "a stream window above 2^31-1",
                            ));
                        }
                    }
                    self.window_opened |= delta > 0;
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !(frame::MIN_FRAME..=frame::MAX_FRAME).contains(&v) {
                        return Err(conn_err(
                            ErrorCode::Protocol,
                            "SETTINGS_MAX_FRAME_SIZE out of range",
                        ));
                    }
                    self.peer_max_frame = v;
                }
                frame::SETTINGS_HEADER_TABLE_SIZE => {
                    self.encoder.peer_table_size(v as usize);
                }
                // The peer's stream limit (no push) and header list size do not matter.
                _ => {}
            }
        }
        frame::write_head(&mut self.out, 0, frame::SETTINGS, frame::ACK, 0);
        Ok(())
    }

    fn window_update(&mut self, h: Head, p: &[u8], ev: &mut Vec<Event>) -> Res {
        if h.len != 4 {
            return Err(conn_err(
                ErrorCode::FrameSize,
                "WINDOW_UPDATE of a wrong size",
            ));
        }
        let inc = i64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff);
        if h.stream == 0 {
            if inc == 0 {
                return Err(conn_err(ErrorCode::Protocol, "WINDOW_UPDATE of 0"));
            }
            self.cheap()?;
            self.send_window += inc;
            if self.send_window > frame::MAX_WINDOW {
                return Err(conn_err(
                    ErrorCode::FlowControl,
                    "connection window above 2^31-1",
                ));
            }
            self.window_opened = true;
            return Ok(());
        }
        if self.idle(h.stream) {
            return Err(conn_err(
                ErrorCode::Protocol,
                "WINDOW_UPDATE on an idle stream",
            ));
        }
        self.cheap()?;
        if inc == 0 {
            self.stream_error(h.stream, ErrorCode::Protocol, ev);
            return Ok(());
        }
        let Some(i) = self.find(h.stream) else {
            // A stream closed: the update came late.
            return Ok(());
        };
        let s = &mut self.streams[i];
        s.send_window += inc;
        if s.send_window > frame::MAX_WINDOW {
            self.stream_error(h.stream, ErrorCode::FlowControl, ev);
            return Ok(());
        }
        self.window_opened = true;
        Ok(())
    }

    /// The body of a padded frame: `p` without the pad length and the padding.
    fn unpad<'p>(h: &Head, p: &'p [u8], extra: usize) -> Result<(usize, &'p [u8]), ConnError> {
        let too_short = || conn_err(ErrorCode::FrameSize, "frame too short");
        let (start, pad) = layout(h, p.first(), extra).ok_or_else(too_short)?;
        if !h.has(frame::PADDED) {
            return p.get(start..).map(|b| (start, b)).ok_or_else(too_short);
        }
        match p.len().checked_sub(pad).and_then(|end| p.get(start..end)) {
            Some(b) => Ok((start, b)),
            None => Err(conn_err(
                ErrorCode::Protocol,
                "padding longer than the frame",
            )),
        }
    }

    fn on_data(&mut self, h: Head, p: &[u8], base: usize, ev: &mut Vec<Event>) -> Res {
        if h.stream == 0 {
            return Err(conn_err(ErrorCode::Protocol, "DATA on stream 0"));
        }
        if self.idle(h.stream) {
            return Err(conn_err(ErrorCode::Protocol, "DATA on an idle stream"));
        }
        let (off, body) = Self::unpad(&h, p, 0)?;
        let len = i64::from(h.len);
        self.recv_window -= len;
        if self.recv_window < 0 {
            return Err(conn_err(
                ErrorCode::FlowControl,
                "DATA beyond the connection window",
            ));
        }
        // The connection's window is given back at once: each stream's own window bounds
        // what is buffered.
        if self.recv_window < frame::MAX_WINDOW / 2 {
            frame::write_window_update(
                &mut self.out,
                0,
                (frame::MAX_WINDOW - self.recv_window) as u32,
            );
            self.recv_window = frame::MAX_WINDOW;
        }
        let end = h.has(frame::END_STREAM);
        if body.is_empty() && !end {
            self.cheap()?;
        }
        let Some(i) = self.find(h.stream) else {
            // Not a stream being received: the frame is the peer's waste of both sides.
            self.cheap()?;
            if !self.was_reset(h.stream) {
                self.stream_error(h.stream, ErrorCode::StreamClosed, ev);
            }
            return Ok(());
        };
        let s = &mut self.streams[i];
        if s.remote_done {
            self.stream_error(h.stream, ErrorCode::StreamClosed, ev);
            return Ok(());
        }
        s.recv_window -= len;
        if s.recv_window < 0 {
            self.stream_error(h.stream, ErrorCode::FlowControl, ev);
            return Ok(());
        }
        // Padding is given back at once; the body when the caller has taken it (a
        // skipped body's at once).
        let skipped = s.skip;
        s.released += if skipped {
            len as u32
        } else {
            (len as usize - body.len()) as u32
        };
        self.give_back(i);
        let s = &mut self.streams[i];
        if skipped {
            if end {
                s.remote_done = true;
                self.maybe_close(i);
            }
            return Ok(());
        }
        s.received += body.len() as u64;
        let bad_length = match s.content_length {
            Some(cl) => s.received > cl || (end && s.received != cl),
            None => false,
        };
        if bad_length {
            // nginx answers such a request 400: the body ends here (what came, and what
            // comes after, is given back to the window, not delivered).
            s.skip = true;
            s.remote_done = end;
            s.released += body.len() as u32;
            self.give_back(i);
            ev.push(Event::BadBody { stream: h.stream });
            return Ok(());
        }
        if end {
            s.remote_done = true;
        }
        let at = base + off;
        ev.push(Event::Data {
            stream: h.stream,
            at: at..at + body.len(),
            end_stream: end,
        });
        self.maybe_close(i);
        Ok(())
    }

    fn on_headers(&mut self, h: Head, p: &[u8], ev: &mut Vec<Event>) -> Res {
        if h.stream == 0 {
            return Err(conn_err(ErrorCode::Protocol, "HEADERS on stream 0"));
        }
        if h.stream.is_multiple_of(2) {
            return Err(conn_err(ErrorCode::Protocol, "HEADERS on an even stream"));
        }
        let extra = if h.has(frame::PRIORITY_FLAG) { 5 } else { 0 };
        let (off, fragment) = Self::unpad(&h, p, extra)?;
        // A stream that depends on itself: a connection error, as nginx's (RFC 9113 would
        // reset the stream).
        if extra > 0 {
            let d = &p[off - 5..off];
            if u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & 0x7fff_ffff == h.stream {
                return Err(conn_err(
                    ErrorCode::Protocol,
                    "a stream that depends on itself",
                ));
            }
            self.set_priority(h.stream, d);
        }
        if self.find(h.stream).is_none()
            && h.stream <= self.last_stream
            && !self.was_reset(h.stream)
        {
            return Err(if self.was_closed(h.stream) {
                conn_err(ErrorCode::StreamClosed, "HEADERS on a closed stream")
            } else {
                conn_err(
                    ErrorCode::Protocol,
                    "HEADERS on a stream below the last one",
                )
            });
        }
        self.block.clear();
        self.block.extend_from_slice(fragment);
        self.block_stream = h.stream;
        self.block_flags = h.flags;
        if h.has(frame::END_HEADERS) {
            return self.end_block(ev);
        }
        self.check_block()
    }

    fn on_continuation(&mut self, h: Head, p: &[u8], ev: &mut Vec<Event>) -> Res {
        if self.block_stream == 0 {
            return Err(conn_err(
                ErrorCode::Protocol,
                "CONTINUATION without HEADERS",
            ));
        }
        if p.is_empty() && !h.has(frame::END_HEADERS) {
            self.cheap()?;
        }
        self.block.extend_from_slice(p);
        if h.has(frame::END_HEADERS) {
            return self.end_block(ev);
        }
        self.check_block()
    }

    /// A header block may not grow past twice the header list's limit (it is decoded only
    /// once whole: a CONTINUATION flood is bounded here); a list past the limit itself is
    /// found when the block is decoded (both connection errors, as nginx's).
    fn check_block(&self) -> Res {
        if self.block.len() > 2 * self.cfg.headers.list + 16 * 1024 {
            return Err(conn_err(
                ErrorCode::EnhanceYourCalm,
                "a header block larger than the header list allowed",
            ));
        }
        Ok(())
    }

    fn end_block(&mut self, ev: &mut Vec<Event>) -> Res {
        self.check_block()?;
        let id = self.block_stream;
        self.block_stream = 0;
        let end = self.block_flags & frame::END_STREAM != 0;
        let limit = self.cfg.headers;
        if let Some(i) = self.find(id) {
            // Trailers.
            let mut list = std::mem::take(&mut self.streams[i].trailers);
            let r = self.decoder.decode(&self.block, &mut list, limit);
            self.streams[i].trailers = list;
            r.map_err(decode_error)?;
            let s = &self.streams[i];
            let bad = !end || check_trailers(&s.trailers).is_err();
            if s.remote_done {
                self.stream_error(id, ErrorCode::StreamClosed, ev);
            } else if bad {
                self.stream_error(id, ErrorCode::Protocol, ev);
            } else if s.skip || s.content_length.is_some_and(|cl| cl != s.received) {
                let bad = !s.skip;
                self.streams[i].remote_done = true;
                self.streams[i].skip = true;
                if bad {
                    ev.push(Event::BadBody { stream: id });
                }
                self.maybe_close(i);
            } else {
                self.streams[i].remote_done = true;
                ev.push(Event::Trailers { stream: id });
                self.maybe_close(i);
            }
            return Ok(());
        }
        if id <= self.last_stream {
            // A stream reset here: its block is decoded for the table's sake only.
            let mut list = std::mem::take(&mut self.scratch);
            let r = self.decoder.decode(&self.block, &mut list, limit);
            self.scratch = list;
            return r.map_err(decode_error);
        }
        self.last_stream = id;
        let mut s = self.free.pop().unwrap_or_default();
        let r = self.decoder.decode(&self.block, &mut s.headers, limit);
        if let Err(e) = r {
            self.free.push(s);
            return Err(decode_error(e));
        }
        if self.goaway.is_some_and(|last| id > last) {
            // After GOAWAY: not served (the peer may retry it elsewhere).
            self.free.push(s);
            return Ok(());
        }
        if self.streams.len() >= self.cfg.max_concurrent_streams as usize {
            self.free.push(s);
            frame::write_rst(&mut self.out, id, ErrorCode::RefusedStream);
            self.remember_reset(id);
            return Ok(());
        }
        // A malformed request is answered 400 on its stream, as nginx answers it (RFC 9113
        // would reset the stream).
        let (content_length, refused) = match check_request(&s.headers, self.cfg.max_headers) {
            Ok(cl) => (cl, None),
            Err(reason) => (None, Some(reason)),
        };
        if end && content_length.is_some_and(|cl| cl > 0) {
            self.free.push(s);
            frame::write_rst(&mut self.out, id, ErrorCode::Protocol);
            self.remember_reset(id);
            return Ok(());
        }
        s.id = id;
        s.remote_done = end;
        s.local_done = false;
        s.send_window = self.peer_initial_window;
        s.recv_window = i64::from(self.cfg.initial_window);
        s.released = 0;
        s.content_length = content_length;
        s.received = 0;
        s.skip = false;
        s.chunk_size = 0;
        s.trailers.clear();
        if !self.acked {
            s.recv_window = s.recv_window.max(frame::DEFAULT_WINDOW);
        }
        self.streams.push(s);
        self.earn(100);
        // A keep-alive limit reached: this stream is served, later ones are not (as nginx,
        // GOAWAY names this one the last).
        self.opened = self.opened.saturating_add(1);
        if self.cfg.keepalive_off || self.opened >= self.cfg.max_requests || self.aged {
            self.shutdown();
        }
        ev.push(Event::Request {
            stream: id,
            end_stream: end,
            refused,
            block_len: self.block.len(),
        });
        Ok(())
    }

    fn remember_reset(&mut self, id: u32) {
        remember(&mut self.reset_ids, &mut self.reset_at, id);
    }

    fn remember_closed(&mut self, id: u32) {
        remember(&mut self.closed_ids, &mut self.closed_at, id);
    }

    /// A stream error: RST_STREAM is queued; a stream the caller knows is reported.
    /// It costs the peer from its budget, and a stream whose request was delivered and
    /// not yet answered counts as cancelled.
    fn stream_error(&mut self, id: u32, code: ErrorCode, ev: &mut Vec<Event>) {
        frame::write_rst(&mut self.out, id, code);
        self.remember_reset(id);
        self.budget -= 1;
        if let Some(i) = self.find(id) {
            let s = self.streams.swap_remove(i);
            if !s.local_done {
                self.cancelled += 1;
            }
            self.free.push(s);
            ev.push(Event::Reset { stream: id, code });
        }
    }

    /// The stream whose request's HEADERS frame `input` (what `recv` left: a frame still
    /// arriving) begins, if it is one that has not opened a stream yet (nginx times such a
    /// request out with `client_header_timeout`).
    pub(crate) fn partial_request(&self, input: &[u8]) -> Option<u32> {
        if self.preface < frame::PREFACE.len() || self.block_stream != 0 {
            return None;
        }
        let h = Head::parse(input)?;
        let opens = h.kind == frame::HEADERS
            && h.stream > self.last_stream
            && !h.stream.is_multiple_of(2)
            && input.len() < frame::HEAD + h.len as usize;
        opens.then_some(h.stream)
    }

    /// A request whose HEADERS frame did not all arrive within `client_header_timeout`:
    /// its stream is reset (PROTOCOL_ERROR, as nginx's), and its block, when it comes, is
    /// decoded for the table's sake only. The connection goes on.
    pub(crate) fn header_timeout(&mut self, id: u32) {
        if id <= self.last_stream || id.is_multiple_of(2) {
            return;
        }
        self.last_stream = id;
        frame::write_rst(&mut self.out, id, ErrorCode::Protocol);
        self.remember_reset(id);
    }

    /// Resets a stream from this side (the caller drops its request).
    pub(crate) fn reset(&mut self, id: u32, code: ErrorCode) {
        frame::write_rst(&mut self.out, id, code);
        self.remember_reset(id);
        if let Some(i) = self.find(id) {
            let s = self.streams.swap_remove(i);
            self.free.push(s);
        }
    }

    /// A stream both sides ended is closed.
    fn maybe_close(&mut self, i: usize) {
        if let Some(s) = self.streams.get(i) {
            if s.remote_done && s.local_done {
                let s = self.streams.swap_remove(i);
                let id = s.id;
                self.free.push(s);
                self.remember_closed(id);
            }
        }
    }

    /// Whether a stream is open (its request being received or answered).
    pub(crate) fn is_open(&self, id: u32) -> bool {
        self.find(id).is_some()
    }

    /// Lets the client send up to `n` more body bytes on a stream now (a WINDOW_UPDATE), as
    /// nginx does when it starts reading a body whose preread window is small.
    pub(crate) fn open_window(&mut self, id: u32, n: u32) {
        let Some(i) = self.find(id) else {
            return;
        };
        let s = &mut self.streams[i];
        if s.remote_done || n == 0 || s.recv_window + i64::from(n) > frame::MAX_WINDOW {
            return;
        }
        frame::write_window_update(&mut self.out, id, n);
        s.recv_window += i64::from(n);
    }

    /// The request's header list (while the stream is open).
    pub(crate) fn headers(&self, id: u32) -> Option<&HeaderList> {
        self.find(id).map(|i| &self.streams[i].headers)
    }

    /// The request's trailers.
    pub(crate) fn trailers(&self, id: u32) -> Option<&HeaderList> {
        self.find(id).map(|i| &self.streams[i].trailers)
    }

    /// The caller took `n` body bytes of a stream: its window opens again (WINDOW_UPDATE
    /// once half of it is taken).
    pub(crate) fn release(&mut self, id: u32, n: usize) {
        let Some(i) = self.find(id) else {
            return;
        };
        let s = &mut self.streams[i];
        s.released = s.released.saturating_add(n as u32);
        self.give_back(i);
    }

    /// Sends a stream's WINDOW_UPDATE once half its window was taken.
    fn give_back(&mut self, i: usize) {
        let half = (self.cfg.initial_window / 2).max(1);
        let Some(s) = self.streams.get_mut(i) else {
            return;
        };
        if !s.remote_done && s.released >= half {
            frame::write_window_update(&mut self.out, s.id, s.released);
            s.recv_window += i64::from(s.released);
            s.released = 0;
        }
    }

    /// How many body bytes a stream may send now (both windows).
    pub(crate) fn send_room(&self, id: u32) -> usize {
        match self.find(id) {
            Some(i) => self.streams[i].send_window.min(self.send_window).max(0) as usize,
            None => 0,
        }
    }

    /// Queues the response head: HEADERS (and CONTINUATION frames past the peer's frame
    /// size) with `:status` and the fields; `end_stream`: no body follows.
    pub(crate) fn send_headers<'f>(
        &mut self,
        id: u32,
        status: u16,
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
        end_stream: bool,
    ) {
        let Some(i) = self.find(id) else {
            return;
        };
        let mut block = std::mem::take(&mut self.hbuf);
        block.clear();
        self.encoder.begin(&mut block);
        self.encoder.status(status, &mut block);
        for (n, v) in fields {
            self.encoder.field(n, v, &mut block);
        }
        self.write_block(id, &block, end_stream);
        self.hbuf = block;
        if end_stream {
            self.streams[i].local_done = true;
            self.completed += 1;
            self.maybe_close(i);
        }
    }

    /// Queues trailers, ending the stream.
    pub(crate) fn send_trailers<'f>(
        &mut self,
        id: u32,
        fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
    ) {
        let Some(i) = self.find(id) else {
            return;
        };
        let mut block = std::mem::take(&mut self.hbuf);
        block.clear();
        self.encoder.begin(&mut block);
        for (n, v) in fields {
            self.encoder.field(n, v, &mut block);
        }
        self.write_block(id, &block, true);
        self.hbuf = block;
        self.streams[i].local_done = true;
        self.completed += 1;
        self.maybe_close(i);
    }

    fn write_block(&mut self, id: u32, block: &[u8], end_stream: bool) {
        let max = self.peer_max_frame as usize;
        let mut chunks = block.chunks(max).peekable();
        let first = chunks.next().unwrap_or_default();
        let mut flags = if end_stream { frame::END_STREAM } else { 0 };
        if chunks.peek().is_none() {
            flags |= frame::END_HEADERS;
        }
        frame::write_head(&mut self.out, first.len(), frame::HEADERS, flags, id);
        self.out.extend_from_slice(first);
        while let Some(c) = chunks.next() {
            let flags = if chunks.peek().is_none() {
                frame::END_HEADERS
            } else {
                0
            };
            frame::write_head(&mut self.out, c.len(), frame::CONTINUATION, flags, id);
            self.out.extend_from_slice(c);
        }
    }

    /// The `http2_chunk_size` of stream `id`'s response (the location that answers it; the
    /// connection's own is the default server's).
    pub(crate) fn set_chunk_size(&mut self, id: u32, size: u64) {
        if let Some(i) = self.find(id) {
            self.streams[i].chunk_size = u32::try_from(size.clamp(1, 1 << 24)).unwrap_or(1 << 24);
        }
    }

    /// Queues as much of `data` as both windows allow, in DATA frames of at most
    /// `http2_chunk_size` (and the peer's frame size); `end_stream` ends the stream with
    /// the last of it. Returns the bytes taken; the rest waits for a WINDOW_UPDATE.
    pub(crate) fn send_data(&mut self, id: u32, data: &[u8], end_stream: bool) -> usize {
        let Some(i) = self.find(id) else {
            return 0;
        };
        let room = self.send_room(id).min(data.len());
        let chunk = match self.streams[i].chunk_size {
            0 => self.cfg.chunk_size,
            n => n as usize,
        };
        let max = chunk.min(self.peer_max_frame as usize).max(1);
        let mut sent = 0;
        while sent < room {
            let n = (room - sent).min(max);
            let last = sent + n == data.len();
            let flags = if last && end_stream {
                frame::END_STREAM
            } else {
                0
            };
            frame::write_head(&mut self.out, n, frame::DATA, flags, id);
            self.out.extend_from_slice(&data[sent..sent + n]);
            sent += n;
            // Work done for the peer earns it room for control frames: two per KiB sent.
            self.earn((n / 512) as i64);
        }
        if data.is_empty() && end_stream {
            frame::write_head(&mut self.out, 0, frame::DATA, frame::END_STREAM, id);
        }
        self.send_window -= sent as i64;
        let s = &mut self.streams[i];
        s.send_window -= sent as i64;
        if end_stream && sent == data.len() {
            s.local_done = true;
            self.completed += 1;
            self.maybe_close(i);
        }
        sent
    }
}

/// Whether a header name is a lowercase token (RFC 9113 §8.2.1: uppercase is malformed).
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// Whether a value is one HTTP/2 allows (§8.2.1): no NUL, CR or LF, no whitespace at
/// either end.
fn valid_value(v: &[u8]) -> bool {
    !v.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n')
        && !v.first().is_some_and(|&b| b == b' ' || b == b'\t')
        && !v.last().is_some_and(|&b| b == b' ' || b == b'\t')
}

/// Fields that are HTTP/1.1 connection-specific: malformed in an HTTP/2 request, never sent
/// in an HTTP/2 response (RFC 9113 §8.2.2).
pub(crate) fn connection_specific(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    ]
    .iter()
    .any(|c| c.eq_ignore_ascii_case(name))
}

/// Checks a request's header list as RFC 9113 §8.2–8.3 define a well-formed one: the
/// four request pseudo-headers, once each, before the other fields; `:method`,
/// `:scheme` and a non-empty `:path` (CONNECT: `:authority`, then answered 405);
/// lowercase names, no connection-specific field, `te` only `trailers`, values without
/// NUL/CR/LF and outer whitespace, one Content-Length, `host` (if any) the same as
/// `:authority`. Returns the Content-Length.
pub(crate) fn check_request(
    list: &HeaderList,
    max_headers: usize,
) -> Result<Option<u64>, &'static str> {
    let mut count = 0usize;
    let (mut method, mut scheme, mut path, mut authority) = (None, false, None, None);
    let mut host: Option<&[u8]> = None;
    let mut regular = false;
    let mut length: Option<u64> = None;
    for (n, v) in list.iter() {
        if let Some(pseudo) = n.strip_prefix(b":") {
            if regular {
                return Err("a pseudo-header after a regular field");
            }
            let seen = match pseudo {
                b"method" => method.replace(v).is_some(),
                b"scheme" => std::mem::replace(&mut scheme, true),
                b"path" => path.replace(v).is_some(),
                b"authority" => authority.replace(v).is_some(),
                _ => return Err("an unknown pseudo-header"),
            };
            if seen {
                return Err("a pseudo-header twice");
            }
            if !valid_value(v) {
                return Err("a pseudo-header value with forbidden bytes");
            }
            continue;
        }
        regular = true;
        // nginx's max_headers counts the fields but cookies.
        if n != b"cookie" {
            count += 1;
            if count > max_headers {
                return Err("too many header lines");
            }
        }
        if !valid_name(n) {
            return Err("a field name that is not a lowercase token");
        }
        if connection_specific(n) {
            return Err("a connection-specific field");
        }
        if n == b"te" && v != b"trailers" {
            return Err("te other than trailers");
        }
        if !valid_value(v) {
            return Err("a field value with forbidden bytes");
        }
        if n == b"host" {
            host = Some(v);
        }
        if n == b"content-length" {
            let cl = std::str::from_utf8(v)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or("an invalid content-length")?;
            if length.replace(cl).is_some_and(|old| old != cl) {
                return Err("two different content-length values");
            }
        }
    }
    // Both: they must name the same host (as nginx 1.29.1 checks).
    if let (Some(a), Some(h)) = (authority, host) {
        if !a.eq_ignore_ascii_case(h) {
            return Err(":authority and host differ");
        }
    }
    match method {
        None => Err("no :method"),
        // (With `:scheme` and `:path` too, as nginx-tests' client sends it, nginx answers
        // CONNECT 405 like any other: it is refused as a method, not as malformed.)
        Some(b"CONNECT") => {
            if authority.is_none() {
                Err("a CONNECT request without :authority")
            } else {
                Ok(length)
            }
        }
        Some(_) => match path {
            Some(p) if scheme && !p.is_empty() => Ok(length),
            _ => Err("no :scheme or :path"),
        },
    }
}

/// Trailers: no pseudo-header, and the rules of other fields.
fn check_trailers(list: &HeaderList) -> Result<(), &'static str> {
    for (n, v) in list.iter() {
        if n.starts_with(b":") {
            return Err("a pseudo-header in trailers");
        }
        if !valid_name(n) || connection_specific(n) || !valid_value(v) {
            return Err("a malformed trailer field");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::hpack::write_int;

    /// A header block of literal fields without indexing (what a test client sends).
    fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (n, v) in fields {
            b.push(0x00);
            write_int(&mut b, 0, 7, n.len());
            b.extend_from_slice(n.as_bytes());
            write_int(&mut b, 0, 7, v.len());
            b.extend_from_slice(v.as_bytes());
        }
        b
    }

    fn get(path: &str) -> Vec<u8> {
        block(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "localhost"),
        ])
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        frame::write_head(&mut f, payload.len(), kind, flags, stream);
        f.extend_from_slice(payload);
        f
    }

    /// A HEADERS frame with a whole request head and no body.
    fn whole(stream: u32, block: &[u8]) -> Vec<u8> {
        frame(
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            stream,
            block,
        )
    }

    /// A HEADERS frame with a whole request head, a body to follow.
    fn head(stream: u32, block: &[u8]) -> Vec<u8> {
        frame(frame::HEADERS, frame::END_HEADERS, stream, block)
    }

    /// The preface and an empty SETTINGS.
    fn hello() -> Vec<u8> {
        let mut b = frame::PREFACE.to_vec();
        b.extend(frame(frame::SETTINGS, 0, 0, &[]));
        b
    }

    /// The frames in `out` (taken).
    fn frames(c: &mut H2Conn) -> Vec<(Head, Vec<u8>)> {
        let out = std::mem::take(&mut c.out);
        let mut at = 0;
        let mut v = Vec::new();
        while let Some(h) = Head::parse(&out[at..]) {
            let p = out[at + 9..at + 9 + h.len as usize].to_vec();
            at += 9 + h.len as usize;
            v.push((h, p));
        }
        assert_eq!(at, out.len());
        v
    }

    /// Feeds `bytes`, which must not be a connection error; returns the events.
    fn push(c: &mut H2Conn, bytes: &[u8]) -> Vec<Event> {
        let (r, ev) = feed(c, bytes);
        assert!(r.is_ok(), "{r:?}");
        ev
    }

    fn goaway_code(c: &mut H2Conn) -> Option<u32> {
        frames(c)
            .iter()
            .find(|(h, _)| h.kind == frame::GOAWAY)
            .map(|(_, p)| u32::from_be_bytes([p[4], p[5], p[6], p[7]]))
    }

    fn rst_codes(c: &mut H2Conn) -> Vec<(u32, u32)> {
        frames(c)
            .iter()
            .filter(|(h, _)| h.kind == frame::RST_STREAM)
            .map(|(h, p)| (h.stream, u32::from_be_bytes([p[0], p[1], p[2], p[3]])))
            .collect()
    }

    /// A connection past its handshake (what it queued so far dropped).
    fn open() -> H2Conn {
        let mut c = H2Conn::new(Config::default());
        let mut ev = Vec::new();
        let hi = hello();
        assert_eq!(c.recv(&hi, &mut ev), Ok(hi.len()));
        assert!(ev.is_empty());
        c.out.clear();
        c
    }

    /// Feeds `bytes` whole; returns the events (Data as the bytes they point at).
    fn feed(c: &mut H2Conn, bytes: &[u8]) -> (Result<usize, ConnError>, Vec<Event>) {
        let mut ev = Vec::new();
        let r = c.recv(bytes, &mut ev);
        (r, ev)
    }

    #[test]
    fn handshake_and_a_request_at_every_split_point() {
        let mut wire = hello();
        wire.extend(head(1, &get("/a")));
        wire.extend(frame(frame::DATA, 0, 1, b"hello "));
        wire.extend(frame(frame::DATA, frame::END_STREAM, 1, b"world"));
        for split in 0..=wire.len() {
            let mut c = H2Conn::new(Config::default());
            // The caller's buffer: what `recv` did not use stays for the next call.
            let mut buf = Vec::new();
            let mut body = Vec::new();
            let mut requests = 0;
            let mut ended = false;
            for piece in [&wire[..split], &wire[split..]] {
                buf.extend_from_slice(piece);
                let mut ev = Vec::new();
                let used = c.recv(&buf, &mut ev).unwrap();
                for e in ev {
                    match e {
                        Event::Request {
                            stream: 1,
                            end_stream: false,
                            refused: None,
                            ..
                        } => {
                            requests += 1;
                            let h = c.headers(1).unwrap();
                            assert_eq!(h.iter().nth(2).unwrap(), (&b":path"[..], &b"/a"[..]));
                        }
                        Event::Data {
                            stream: 1,
                            at,
                            end_stream,
                        } => {
                            body.extend_from_slice(&buf[at]);
                            ended |= end_stream;
                        }
                        e => panic!("{e:?}"),
                    }
                }
                buf.drain(..used);
            }
            assert_eq!(requests, 1, "split {split}");
            assert_eq!(body, b"hello world", "split {split}");
            assert!(ended && buf.is_empty());
            // This side's SETTINGS, the connection window, the ACK of the peer's SETTINGS.
            let f = frames(&mut c);
            assert_eq!(f[0].0.kind, frame::SETTINGS);
            assert_eq!((f[1].0.kind, f[1].0.stream), (frame::WINDOW_UPDATE, 0));
            assert_eq!((f[2].0.kind, f[2].0.flags), (frame::SETTINGS, frame::ACK));
        }
    }

    /// `$request_length`'s head part, as nginx counts it: the header block's bytes over
    /// HEADERS and CONTINUATION, without padding or frame heads.
    /// nginx's h2_headers.t "too long index" and "too long literal": a HEADERS frame whose
    /// first bytes hold an integer already too long is a COMPRESSION_ERROR before the rest
    /// of the frame comes (padded and with priority too); a frame only incomplete is not.
    #[test]
    fn too_long_integer_in_a_frame_still_arriving() {
        for (flags, prefix) in [
            (frame::END_STREAM | frame::END_HEADERS, vec![]),
            (frame::END_HEADERS | frame::PADDED, vec![2u8]),
            (
                frame::END_HEADERS | frame::PRIORITY_FLAG,
                vec![0, 0, 0, 0, 16],
            ),
        ] {
            for block in [
                &[0xffu8, 0xff, 0xff, 0xff][..],
                &[0x42, 0xff, 0xff, 0xff, 0xff],
            ] {
                let mut c = open();
                let mut wire = Vec::new();
                let len =
                    prefix.len() + block.len() + 1 + if flags & frame::PADDED != 0 { 2 } else { 0 };
                frame::write_head(&mut wire, len, frame::HEADERS, flags, 1);
                wire.extend_from_slice(&prefix);
                wire.extend_from_slice(block);
                let (r, _) = feed(&mut c, &wire);
                assert!(r.is_err(), "{flags:#x} {block:x?}");
                assert_eq!(goaway_code(&mut c), Some(ErrorCode::Compression as u32));
            }
            // Cut short, nothing wrong yet: wait for the rest.
            let mut c = open();
            let mut wire = Vec::new();
            let b = get("/");
            frame::write_head(&mut wire, b.len(), frame::HEADERS, frame::END_HEADERS, 1);
            wire.extend_from_slice(&b[..b.len() - 1]);
            assert_eq!(feed(&mut c, &wire).0, Ok(0));
        }
    }

    #[test]
    fn block_len_counts_the_header_block_alone() {
        let mut c = open();
        let b = get("/a-longer-path");
        let (one, two) = b.split_at(7);
        let mut first = vec![5u8];
        first.extend_from_slice(one);
        first.extend_from_slice(&[0; 5]);
        let mut wire = frame(frame::HEADERS, frame::PADDED | frame::END_STREAM, 3, &first);
        wire.extend(frame(frame::CONTINUATION, frame::END_HEADERS, 3, two));
        let ev = push(&mut c, &wire);
        assert!(
            matches!(ev[..], [Event::Request { stream: 3, block_len, .. }] if block_len == b.len()),
            "{ev:?}"
        );
    }

    #[test]
    fn response_frames_and_stream_close() {
        let mut c = open();
        let (r, ev) = feed(&mut c, &whole(1, &get("/")));
        assert!(r.is_ok());
        assert_eq!(
            ev,
            [Event::Request {
                stream: 1,
                end_stream: true,
                refused: None,
                block_len: get("/").len(),
            }]
        );
        c.send_headers(
            1,
            200,
            [(&b"Content-Type"[..], &b"text/plain"[..])].into_iter(),
            false,
        );
        assert_eq!(c.send_data(1, b"hi", true), 2);
        assert_eq!(c.open_streams(), 0);
        let f = frames(&mut c);
        assert_eq!(
            (f[0].0.kind, f[0].0.flags),
            (frame::HEADERS, frame::END_HEADERS)
        );
        let mut d = Decoder::new(4096);
        let mut list = HeaderList::default();
        d.decode(&f[0].1, &mut list, Limits::NONE).unwrap();
        let fields: Vec<_> = list.iter().collect();
        assert_eq!(
            fields,
            [
                (&b":status"[..], &b"200"[..]),
                (b"content-type", b"text/plain")
            ]
        );
        assert_eq!(
            (f[1].0.kind, f[1].0.flags, &f[1].1[..]),
            (frame::DATA, frame::END_STREAM, &b"hi"[..])
        );
        // Frames for the closed stream now: DATA is STREAM_CLOSED, a late WINDOW_UPDATE
        // and RST_STREAM are ignored, HEADERS is a connection error.
        let (_, ev) = feed(&mut c, &frame(frame::WINDOW_UPDATE, 0, 1, &[0, 0, 1, 0]));
        assert!(ev.is_empty());
        let (_, _) = feed(&mut c, &frame(frame::RST_STREAM, 0, 1, &[0, 0, 0, 8]));
        let mut after = c.out.len();
        let (r, _) = feed(&mut c, &head(1, &get("/")));
        assert_eq!(r.unwrap_err().code, ErrorCode::StreamClosed);
        after = c.out.len() - after;
        assert_eq!(after, 17, "GOAWAY only");
        let mut c = open();
        push(&mut c, &whole(1, &get("/")));
        c.send_headers(1, 204, std::iter::empty(), true);
        c.out.clear();
        let (_, _) = feed(&mut c, &frame(frame::DATA, 0, 1, b"x"));
        assert_eq!(rst_codes(&mut c), [(1, ErrorCode::StreamClosed as u32)]);
    }

    #[test]
    fn connection_errors() {
        let cases: Vec<(Vec<u8>, ErrorCode)> = vec![
            (frame(frame::DATA, 0, 1, b"x"), ErrorCode::Protocol),
            (head(2, &get("/")), ErrorCode::Protocol),
            (head(0, &get("/")), ErrorCode::Protocol),
            (
                frame(frame::PUSH_PROMISE, frame::END_HEADERS, 1, &[0, 0, 0, 2]),
                ErrorCode::Protocol,
            ),
            (
                frame(frame::CONTINUATION, frame::END_HEADERS, 1, &get("/")),
                ErrorCode::Protocol,
            ),
            (head(1, &[0x80]), ErrorCode::Compression),
            (
                frame(frame::SETTINGS, 0, 0, &[0, 2, 0, 0, 0, 2]),
                ErrorCode::Protocol,
            ),
            (
                frame(frame::SETTINGS, 0, 0, &[0, 4, 0x80, 0, 0, 0]),
                ErrorCode::FlowControl,
            ),
            (
                frame(frame::SETTINGS, 0, 0, &[0, 5, 0, 0, 0x10, 0]),
                ErrorCode::Protocol,
            ),
            (
                frame(frame::SETTINGS, 0, 0, &[0, 4, 0, 0, 0]),
                ErrorCode::FrameSize,
            ),
            (
                frame(frame::SETTINGS, frame::ACK, 0, &[0, 4, 0, 0, 0, 0]),
                ErrorCode::FrameSize,
            ),
            (frame(frame::SETTINGS, 0, 1, &[]), ErrorCode::Protocol),
            (frame(frame::PING, 0, 0, &[0; 7]), ErrorCode::FrameSize),
            (frame(frame::PING, 0, 1, &[0; 8]), ErrorCode::Protocol),
            (
                frame(frame::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 0]),
                ErrorCode::Protocol,
            ),
            (
                frame(frame::WINDOW_UPDATE, 0, 0, &[0x7f, 0xff, 0xff, 0xff]),
                ErrorCode::FlowControl,
            ),
            (
                frame(frame::WINDOW_UPDATE, 0, 0, &[0, 0, 1]),
                ErrorCode::FrameSize,
            ),
            (
                frame(frame::WINDOW_UPDATE, 0, 3, &[0, 0, 0, 1]),
                ErrorCode::Protocol,
            ),
            (
                frame(frame::RST_STREAM, 0, 0, &[0, 0, 0, 8]),
                ErrorCode::Protocol,
            ),
            (
                frame(frame::RST_STREAM, 0, 5, &[0, 0, 0, 8]),
                ErrorCode::Protocol,
            ),
            (frame(frame::GOAWAY, 0, 1, &[0; 8]), ErrorCode::Protocol),
            (
                frame(frame::DATA, frame::PADDED, 0, &[9]),
                ErrorCode::Protocol,
            ),
            (
                frame(frame::DATA, 0, 1, &vec![0; RECV_MAX_FRAME as usize + 1]),
                ErrorCode::FrameSize,
            ),
        ];
        for (i, (bytes, code)) in cases.into_iter().enumerate() {
            let mut c = open();
            let (r, _) = feed(&mut c, &bytes);
            assert_eq!(r.map_err(|e| e.code), Err(code), "case {i}");
            assert_eq!(goaway_code(&mut c), Some(code as u32), "case {i}");
        }
        // A bad preface; a first frame other than SETTINGS is taken, as nginx does.
        let mut c = H2Conn::new(Config::default());
        assert!(feed(&mut c, b"GET / HTTP/1.1\r\n").0.is_err());
        let mut c = H2Conn::new(Config::default());
        let mut b = frame::PREFACE.to_vec();
        b.extend(frame(frame::SETTINGS, frame::ACK, 0, &[]));
        b.extend(frame(frame::PING, 0, 0, &[0; 8]));
        assert!(feed(&mut c, &b).0.is_ok());
        // A header block interrupted by another frame.
        let mut c = open();
        let mut b = frame(frame::HEADERS, 0, 1, &get("/"));
        b.extend(frame(frame::PING, 0, 0, &[0; 8]));
        assert_eq!(
            feed(&mut c, &b).0.map_err(|e| e.code),
            Err(ErrorCode::Protocol)
        );
    }

    #[test]
    fn malformed_requests_are_refused() {
        let bad: Vec<Vec<(&str, &str)>> = vec![
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("Host", "x"),
            ],
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("connection", "close"),
            ],
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("te", "gzip"),
            ],
            vec![(":method", "GET"), (":scheme", "http")],
            vec![(":method", "GET"), (":scheme", "http"), (":path", "")],
            vec![
                (":method", "GET"),
                ("a", "b"),
                (":scheme", "http"),
                (":path", "/"),
            ],
            vec![
                (":method", "GET"),
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
            ],
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":status", "200"),
            ],
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("x", "a\r\nb: c"),
            ],
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("x", " padded"),
            ],
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                ("content-length", "1x"),
            ],
            vec![(":method", "CONNECT"), (":scheme", "http"), (":path", "/")],
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "a:1"),
                ("host", "a:2"),
            ],
        ];
        // max_headers counts the fields but cookies (as nginx).
        let list = |n: usize, cookies: usize| {
            let mut f = vec![(":method", "GET"), (":scheme", "http"), (":path", "/")];
            f.extend(std::iter::repeat_n(("x", "1"), n));
            f.extend(std::iter::repeat_n(("cookie", "a=b"), cookies));
            let mut c = open();
            push(&mut c, &head(1, &block(&f)))
        };
        let refused = |ev: Vec<Event>| match ev[..] {
            [Event::Request { refused, .. }] => refused,
            _ => panic!("{ev:?}"),
        };
        assert_eq!(refused(list(1000, 3)), None);
        assert_eq!(refused(list(1001, 0)), Some("too many header lines"));
        // Each is a request to answer 400 (as nginx), not a reset.
        for (i, fields) in bad.iter().enumerate() {
            let mut c = open();
            let (r, ev) = feed(&mut c, &head(1, &block(fields)));
            assert!(r.is_ok(), "case {i}");
            assert!(
                matches!(
                    ev[..],
                    [Event::Request {
                        stream: 1,
                        refused: Some(_),
                        ..
                    }]
                ),
                "case {i}: {ev:?}"
            );
            assert!(rst_codes(&mut c).is_empty(), "case {i}");
        }
        // te: trailers is fine, as is CONNECT with :authority only.
        let mut c = open();
        let ok = block(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            ("te", "trailers"),
        ]);
        let fine = |ev: Vec<Event>| matches!(ev[..], [Event::Request { refused: None, .. }]);
        assert!(fine(push(&mut c, &head(1, &ok))));
        let connect = block(&[(":method", "CONNECT"), (":authority", "h:443")]);
        assert!(fine(push(&mut c, &head(3, &connect))));
    }

    #[test]
    fn content_length_must_match_the_data() {
        let post = |cl: &str| {
            block(&[
                (":method", "POST"),
                (":scheme", "http"),
                (":path", "/"),
                ("content-length", cl),
            ])
        };
        // More than announced: the body ends (to be answered 400), what came is given
        // back to the window, and what comes after is dropped too (as nginx skips it),
        // its END_STREAM ending the client's side; DATA after that is a stream error.
        let mut c = open();
        let mut b = head(1, &post("3"));
        b.extend(frame(frame::DATA, 0, 1, b"abcd"));
        let (_, ev) = feed(&mut c, &b);
        assert_eq!(ev.last(), Some(&Event::BadBody { stream: 1 }));
        assert!(rst_codes(&mut c).is_empty());
        let (_, ev) = feed(&mut c, &frame(frame::DATA, 0, 1, b"x"));
        assert!(ev.is_empty(), "{ev:?}");
        let (_, ev) = feed(&mut c, &frame(frame::DATA, frame::END_STREAM, 1, b"y"));
        assert!(ev.is_empty(), "{ev:?}");
        let (_, ev) = feed(&mut c, &frame(frame::DATA, 0, 1, b"z"));
        assert!(matches!(ev[..], [Event::Reset { stream: 1, .. }]), "{ev:?}");
        // Fewer, then the end.
        let mut c = open();
        let mut b = head(1, &post("3"));
        b.extend(frame(frame::DATA, frame::END_STREAM, 1, b"ab"));
        let (_, ev) = feed(&mut c, &b);
        assert_eq!(ev.last(), Some(&Event::BadBody { stream: 1 }));
        // A length with END_STREAM on the headers.
        let mut c = open();
        let (_, ev) = feed(&mut c, &whole(1, &post("3")));
        assert!(ev.is_empty());
        assert_eq!(rst_codes(&mut c), [(1, ErrorCode::Protocol as u32)]);
        // Exactly: fine, with padding too.
        let mut c = open();
        let mut b = head(1, &post("3"));
        b.extend(frame(
            frame::DATA,
            frame::END_STREAM | frame::PADDED,
            1,
            &[2, b'a', b'b', b'c', 0, 0],
        ));
        let (_, ev) = feed(&mut c, &b);
        assert!(
            matches!(&ev[1], Event::Data { at, end_stream: true, .. } if b[at.clone()] == *b"abc")
        );
    }

    #[test]
    fn trailers_end_the_request() {
        let mut c = open();
        let mut b = head(1, &get("/"));
        b.extend(frame(frame::DATA, 0, 1, b"x"));
        b.extend(whole(1, &block(&[("x-t", "1")])));
        let (_, ev) = feed(&mut c, &b);
        assert_eq!(ev.last(), Some(&Event::Trailers { stream: 1 }));
        assert_eq!(
            c.trailers(1).unwrap().iter().next(),
            Some((&b"x-t"[..], &b"1"[..]))
        );
        // Trailers without END_STREAM, or with a pseudo-header: a stream error.
        for t in [
            head(1, &block(&[("x-t", "1")])),
            whole(1, &block(&[(":path", "/")])),
        ] {
            let mut c = open();
            let mut b = head(1, &get("/"));
            b.extend(t);
            let (_, ev) = feed(&mut c, &b);
            assert_eq!(
                ev.last(),
                Some(&Event::Reset {
                    stream: 1,
                    code: ErrorCode::Protocol
                })
            );
        }
    }

    #[test]
    fn data_after_the_end_and_streams_over_the_limit() {
        let mut c = open();
        let mut b = whole(1, &get("/"));
        b.extend(frame(frame::DATA, 0, 1, b"late"));
        let (_, ev) = feed(&mut c, &b);
        assert_eq!(
            ev.last(),
            Some(&Event::Reset {
                stream: 1,
                code: ErrorCode::StreamClosed
            })
        );
        // A lower stream identifier than one already used: closed.
        let (r, _) = feed(&mut c, &head(1, &get("/")));
        assert!(r.is_ok(), "frames for a stream reset here are ignored");
        let mut c = H2Conn::new(Config {
            max_concurrent_streams: 2,
            ..Config::default()
        });
        let mut b = hello();
        for id in [1, 3, 5] {
            b.extend(head(id, &get("/")));
        }
        let (_, ev) = feed(&mut c, &b);
        assert_eq!(ev.len(), 2);
        assert_eq!(rst_codes(&mut c), [(5, ErrorCode::RefusedStream as u32)]);
        // A HEADERS that depends on itself.
        let mut c = open();
        let mut p = vec![0, 0, 0, 1, 16];
        p.extend(get("/"));
        let (_, ev) = feed(
            &mut c,
            &frame(
                frame::HEADERS,
                frame::END_HEADERS | frame::PRIORITY_FLAG,
                1,
                &p,
            ),
        );
        assert!(ev.is_empty());
        assert_eq!(goaway_code(&mut c), Some(ErrorCode::Protocol as u32));
    }

    /// A stream's own `http2_chunk_size` (its location's) sizes its DATA frames, within
    /// the peer's frame size; other streams keep the connection's.
    #[test]
    fn a_stream_takes_its_own_chunk_size() {
        let mut c = open();
        push(&mut c, &whole(1, &get("/")));
        push(&mut c, &whole(3, &get("/")));
        c.out.clear();
        c.set_chunk_size(1, 1);
        c.set_chunk_size(3, 64 * 1024);
        assert_eq!(c.send_data(1, b"body", true), 4);
        let f = frames(&mut c);
        let sizes: Vec<usize> = f.iter().map(|(_, p)| p.len()).collect();
        assert_eq!(sizes, [1, 1, 1, 1]);
        assert_eq!(f[3].0.flags, frame::END_STREAM);
        let big = vec![1u8; 40_000];
        assert_eq!(c.send_data(3, &big, true), 40_000);
        let sizes: Vec<usize> = frames(&mut c).iter().map(|(_, p)| p.len()).collect();
        assert_eq!(
            sizes,
            [16_384, 16_384, 7_232],
            "the peer's frame size caps it"
        );
    }

    /// A client's PUSH_PROMISE ends the connection as soon as its frame head is in, its
    /// payload never waited for (nginx-tests' h2.t).
    #[test]
    fn push_promise_fails_on_its_head() {
        let mut c = open();
        let head_only = &frame(frame::PUSH_PROMISE, 0, 1, &[0, 0, 0, 0])[..frame::HEAD];
        let (r, _) = feed(&mut c, head_only);
        assert_eq!(r.map_err(|e| e.code), Err(ErrorCode::Protocol));
    }

    #[test]
    fn send_flow_control() {
        let mut c = open();
        push(&mut c, &whole(1, &get("/")));
        push(&mut c, &whole(3, &get("/")));
        c.out.clear();
        let big = vec![7u8; 100_000];
        // The connection's 65,535 go to the first stream; the second waits.
        assert_eq!(c.send_data(1, &big, true), 65_535);
        assert_eq!(c.send_data(3, b"x", true), 0);
        let f = frames(&mut c);
        assert!(f
            .iter()
            .all(|(h, p)| h.kind == frame::DATA && p.len() <= 8192));
        // The connection window opens: stream 3 may go; stream 1's own window is spent.
        push(&mut c, &frame(frame::WINDOW_UPDATE, 0, 0, &[0, 1, 0, 0]));
        assert!(c.window_opened);
        assert_eq!(c.send_data(1, &big[65_535..], true), 0);
        assert_eq!(c.send_data(3, b"x", true), 1);
        push(&mut c, &frame(frame::WINDOW_UPDATE, 0, 1, &[0, 1, 0, 0]));
        assert_eq!(c.send_data(1, &big[65_535..], true), 100_000 - 65_535);
        assert_eq!(c.open_streams(), 0);
        // SETTINGS_INITIAL_WINDOW_SIZE applies to open streams, and may make a window
        // negative (a zero window stalls that stream only).
        let mut c = open();
        push(&mut c, &whole(1, &get("/")));
        push(&mut c, &frame(frame::SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]));
        assert_eq!(c.send_room(1), 0);
        push(&mut c, &frame(frame::SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 10]));
        assert_eq!(c.send_room(1), 10);
        // A stream's window past 2^31-1: a stream error.
        let (_, ev) = feed(
            &mut c,
            &frame(frame::WINDOW_UPDATE, 0, 1, &[0x7f, 0xff, 0xff, 0xff]),
        );
        assert_eq!(
            ev,
            [Event::Reset {
                stream: 1,
                code: ErrorCode::FlowControl
            }]
        );
    }

    #[test]
    fn receive_flow_control() {
        let mut c = H2Conn::new(Config {
            initial_window: 100,
            ..Config::default()
        });
        let mut b = hello();
        b.extend(frame(frame::SETTINGS, frame::ACK, 0, &[]));
        b.extend(head(
            1,
            &block(&[(":method", "POST"), (":scheme", "http"), (":path", "/")]),
        ));
        b.extend(frame(frame::DATA, 0, 1, &[1; 60]));
        let (_, ev) = feed(&mut c, &b);
        assert_eq!(ev.len(), 2);
        c.out.clear();
        // Taken by the caller: half the window is given back.
        c.release(1, 60);
        let f = frames(&mut c);
        assert_eq!(
            (f[0].0.kind, f[0].0.stream, &f[0].1[..]),
            (frame::WINDOW_UPDATE, 1, &[0, 0, 0, 60][..])
        );
        // Beyond the window: FLOW_CONTROL_ERROR on the stream.
        let (_, ev) = feed(&mut c, &frame(frame::DATA, 0, 1, &[1; 101]));
        assert_eq!(
            ev,
            [Event::Reset {
                stream: 1,
                code: ErrorCode::FlowControl
            }]
        );
    }

    #[test]
    fn response_head_larger_than_a_frame_goes_in_continuations() {
        let mut c = open();
        push(&mut c, &whole(1, &get("/")));
        c.out.clear();
        let v = vec![b'v'; 40_000];
        c.send_headers(1, 200, [(&b"x-big"[..], &v[..])].into_iter(), true);
        let f = frames(&mut c);
        assert_eq!(
            (f[0].0.kind, f[0].0.flags),
            (frame::HEADERS, frame::END_STREAM)
        );
        assert!(f[1..].iter().all(|(h, _)| h.kind == frame::CONTINUATION));
        assert_eq!(f.last().unwrap().0.flags, frame::END_HEADERS);
        let block: Vec<u8> = f.iter().flat_map(|(_, p)| p.clone()).collect();
        let mut list = HeaderList::default();
        Decoder::new(4096)
            .decode(&block, &mut list, Limits::NONE)
            .unwrap();
        assert_eq!(list.iter().nth(1).unwrap().1.len(), 40_000);
    }

    #[test]
    fn rapid_reset_ends_the_connection() {
        let mut c = open();
        let mut closed = None;
        for i in 0..10_000u32 {
            let id = 2 * i + 1;
            let mut b = head(id, &get("/"));
            b.extend(frame(frame::RST_STREAM, 0, id, &[0, 0, 0, 8]));
            if let (Err(e), _) = feed(&mut c, &b) {
                closed = Some((i, e.code));
                break;
            }
            c.out.clear();
        }
        let (n, code) = closed.expect("a GOAWAY");
        assert_eq!(code, ErrorCode::EnhanceYourCalm);
        assert!(n <= 200, "after {n} streams");
    }

    #[test]
    fn ping_and_settings_floods_end_the_connection() {
        for f in [
            frame(frame::PING, 0, 0, &[0; 8]),
            frame(frame::SETTINGS, 0, 0, &[]),
        ] {
            let mut c = open();
            let mut n = 0;
            let err = loop {
                n += 1;
                if let (Err(e), _) = feed(&mut c, &f) {
                    break e;
                }
                assert!(n < 100_000);
            };
            assert_eq!(err.code, ErrorCode::EnhanceYourCalm);
            assert!(c.out.len() < 200 * 1024, "answers queued: {}", c.out.len());
        }
    }

    #[test]
    fn continuation_flood_and_hpack_bomb_are_bounded() {
        // Endless CONTINUATION frames.
        let mut c = open();
        let mut err = None;
        push(&mut c, &frame(frame::HEADERS, 0, 1, &get("/")));
        for _ in 0..100_000 {
            if let (Err(e), _) = feed(&mut c, &frame(frame::CONTINUATION, 0, 1, &[0x82; 1000])) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err.map(|e| e.code), Some(ErrorCode::EnhanceYourCalm));
        // Empty ones.
        let mut c = open();
        let mut err = None;
        push(&mut c, &frame(frame::HEADERS, 0, 1, &get("/")));
        for _ in 0..100_000 {
            if let (Err(e), _) = feed(&mut c, &frame(frame::CONTINUATION, 0, 1, &[])) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err.map(|e| e.code), Some(ErrorCode::EnhanceYourCalm));
        // One large entry in the table, referenced again and again: the list goes past
        // its limit, a connection error (as nginx's "client sent too large header").
        let mut c = open();
        let mut b = get("/");
        b.push(0x40);
        write_int(&mut b, 0, 7, 1);
        b.push(b'x');
        write_int(&mut b, 0, 7, 4000);
        b.extend(std::iter::repeat_n(b'v', 4000));
        b.extend(std::iter::repeat_n(0xbe, 5000));
        let (r, _) = feed(&mut c, &whole(1, &b[..9000.min(b.len())]));
        assert_eq!(r.map_err(|e| e.code), Err(ErrorCode::EnhanceYourCalm));
        // One string longer than a buffer: the same.
        let mut c = open();
        let mut b = get("/");
        b.push(0x40);
        write_int(&mut b, 0, 7, 1);
        b.push(b'x');
        write_int(&mut b, 0, 7, 8193);
        b.extend(std::iter::repeat_n(b'v', 8193));
        let (r, _) = feed(&mut c, &whole(1, &b));
        assert_eq!(r.map_err(|e| e.code), Err(ErrorCode::EnhanceYourCalm));
    }

    #[test]
    fn priorities_rank_parents_first_then_heavier() {
        let mut c = open();
        assert!(!c.prioritized());
        // 5 on the root; 1 (weight byte 255) and 3 (0) on 5: 5, 1, 3.
        let prio = |dep: u32, w: u8| {
            let mut p = dep.to_be_bytes().to_vec();
            p.push(w);
            p
        };
        push(&mut c, &frame(frame::PRIORITY, 0, 5, &prio(0, 16)));
        push(&mut c, &frame(frame::PRIORITY, 0, 1, &prio(5, 255)));
        push(&mut c, &frame(frame::PRIORITY, 0, 3, &prio(5, 0)));
        assert!(c.prioritized());
        let mut ids = [1u32, 3, 5];
        ids.sort_by_key(|&id| c.rank(id));
        assert_eq!(c.prio.len(), 3);
        assert_eq!(ids, [5, 1, 3]);
        // A HEADERS with the PRIORITY flag sets its stream's.
        let mut p = prio(0, 255);
        p.extend(get("/"));
        push(
            &mut c,
            &frame(
                frame::HEADERS,
                frame::END_HEADERS | frame::PRIORITY_FLAG,
                7,
                &p,
            ),
        );
        let mut ids = [1u32, 3, 5, 7];
        ids.sort_by_key(|&id| c.rank(id));
        assert_eq!(ids, [7, 5, 1, 3]);
        // A loop of dependencies ends (the walk is bounded).
        push(&mut c, &frame(frame::PRIORITY, 0, 9, &prio(11, 1)));
        push(&mut c, &frame(frame::PRIORITY, 0, 11, &prio(9, 1)));
        assert!(c.rank(9) > c.rank(7));
    }

    #[test]
    fn keepalive_requests_end_the_connection_after_the_stream_that_reaches_it() {
        let mut c = H2Conn::new(Config {
            max_requests: 2,
            ..Config::default()
        });
        let mut b = hello();
        for id in [1, 3, 5] {
            b.extend(whole(id, &get("/")));
        }
        let (r, ev) = feed(&mut c, &b);
        assert!(r.is_ok());
        // Streams 1 and 3 are served; GOAWAY names 3, and 5 (in the same read) is not.
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert!(c.going_away());
        let goaway = frames(&mut c)
            .into_iter()
            .find(|(h, _)| h.kind == frame::GOAWAY)
            .map(|(_, p)| u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
        assert_eq!(goaway, Some(3));
    }

    #[test]
    fn goaway_stops_new_streams() {
        let mut c = open();
        push(&mut c, &whole(1, &get("/")));
        c.shutdown();
        assert!(c.going_away());
        let f = frames(&mut c);
        assert_eq!(f[0].0.kind, frame::GOAWAY);
        assert_eq!(&f[0].1[..4], &[0, 0, 0, 1]);
        let (_, ev) = feed(&mut c, &whole(3, &get("/")));
        assert!(ev.is_empty());
        // Stream 1 is still served.
        c.send_headers(1, 204, std::iter::empty(), true);
        assert_eq!(c.open_streams(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            let mut c = open();
            let mut b = Vec::new();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let kind = (seed % 11) as u8;
                let flags = (seed >> 8) as u8;
                let stream = ((seed >> 16) % 6) as u32;
                let len = ((seed >> 24) % 24) as usize;
                let payload: Vec<u8> = (0..len).map(|i| (seed >> (i % 8 * 8)) as u8).collect();
                b.extend(frame(kind, flags, stream, &payload));
            }
            let _ = feed(&mut c, &b);
        }
    }

    /// MadeYouReset (CVE-2025-8671): the peer makes this side reset each stream right after
    /// its request was delivered. Counted as a cancel: the connection ends.
    #[test]
    fn made_you_reset_ends_the_connection() {
        for variant in 0..3 {
            let mut c = open();
            let mut closed = None;
            for i in 0..20_000u32 {
                let id = 2 * i + 1;
                let mut b = whole(id, &get("/"));
                match variant {
                    0 => b.extend(frame(frame::WINDOW_UPDATE, 0, id, &[0, 0, 0, 0])),
                    1 => b.extend(frame(frame::DATA, 0, id, b"x")),
                    _ => b.extend(frame(frame::PRIORITY, 0, id, &[0, 0, 0, 0])),
                }
                if let (Err(e), _) = feed(&mut c, &b) {
                    closed = Some((i, e.code));
                    break;
                }
                c.out.clear();
            }
            let (n, code) = closed.expect("a GOAWAY");
            assert_eq!(code, ErrorCode::EnhanceYourCalm, "variant {variant}");
            assert!(n <= 200, "variant {variant}: after {n} streams");
        }
    }

    /// Frames that make this side queue a RST_STREAM cost the peer: empty DATA frames with
    /// END_STREAM on closed streams end the connection, and the queue stays bounded.
    #[test]
    fn rst_for_empty_data_frames_is_bounded() {
        let mut c = open();
        push(&mut c, &whole(1001, &get("/")));
        c.out.clear();
        let mut err = None;
        for round in 0..3_000u32 {
            let mut b = Vec::new();
            for k in 0..34u32 {
                b.extend(frame(frame::DATA, frame::END_STREAM, 2 * k + 1, &[]));
            }
            if let (Err(e), _) = feed(&mut c, &b) {
                err = Some((round, e.code));
                break;
            }
        }
        assert_eq!(err.map(|e| e.1), Some(ErrorCode::EnhanceYourCalm));
        assert!(c.out.len() < 512 * 1024, "{}", c.out.len());
        // An even (never opened) stream: a connection error at once.
        let mut c = open();
        push(&mut c, &head(5, &get("/")));
        let (r, _) = feed(&mut c, &frame(frame::DATA, 0, 2, b"x"));
        assert_eq!(r.map_err(|e| e.code), Err(ErrorCode::Protocol));
    }

    /// Refused or malformed requests earn nothing: PINGs paid by them run out.
    #[test]
    fn rejected_requests_earn_no_budget() {
        let mut c = open();
        let mut err = None;
        for i in 0..5_000u32 {
            let mut b = whole(2 * i + 1, &[0x82]);
            for _ in 0..100 {
                b.extend(frame(frame::PING, 0, 0, &[0; 8]));
            }
            if let (Err(e), _) = feed(&mut c, &b) {
                err = Some(e.code);
                break;
            }
            c.out.clear();
        }
        assert_eq!(err, Some(ErrorCode::EnhanceYourCalm));
    }

    /// h2spec 5.1.1: a stream identifier below one already used is PROTOCOL_ERROR; a closed
    /// stream's is STREAM_CLOSED.
    #[test]
    fn lower_stream_ids() {
        let mut c = open();
        push(&mut c, &whole(5, &get("/")));
        let (r, _) = feed(&mut c, &whole(3, &get("/")));
        assert_eq!(r.unwrap_err().code, ErrorCode::Protocol);
    }

    /// A smaller stream window than the protocol's default applies once the peer has
    /// acknowledged it (RFC 9113 §6.9.3).
    #[test]
    fn small_initial_window_applies_after_the_ack() {
        let mut c = H2Conn::new(Config {
            initial_window: 16_384,
            ..Config::default()
        });
        let mut b = hello();
        b.extend(head(1, &get("/")));
        for _ in 0..3 {
            b.extend(frame(frame::DATA, 0, 1, &[0u8; 16_384]));
        }
        let ev = push(&mut c, &b);
        assert!(
            !ev.iter().any(|e| matches!(e, Event::Reset { .. })),
            "{ev:?}"
        );
        // After the ACK, the announced window counts: what was sent already uses it up.
        push(&mut c, &frame(frame::SETTINGS, frame::ACK, 0, &[]));
        let ev = push(&mut c, &frame(frame::DATA, 0, 1, &[0u8; 1]));
        assert_eq!(
            ev,
            [Event::Reset {
                stream: 1,
                code: ErrorCode::FlowControl
            }]
        );
    }

    /// Trailers for a stream refused long ago are still ignored (not a connection error).
    #[test]
    fn trailers_after_a_refusal() {
        let mut c = open();
        for i in 0..200u32 {
            push(&mut c, &head(2 * i + 1, &get("/")));
        }
        // 257 was the first refused (128 streams at most).
        push(&mut c, &whole(257, &block(&[("x-checksum", "1")])));
    }

    /// A WINDOW_UPDATE of 0 on a stream that has just closed is still a stream error.
    #[test]
    fn zero_window_update_on_a_closed_stream() {
        let mut c = open();
        push(&mut c, &whole(1, &get("/")));
        c.send_headers(1, 204, std::iter::empty(), true);
        c.out.clear();
        push(&mut c, &frame(frame::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 0]));
        assert_eq!(rst_codes(&mut c), [(1, ErrorCode::Protocol as u32)]);
    }

    /// Window updates one byte at a time do not pay for themselves.
    #[test]
    fn one_byte_window_updates_run_out() {
        let mut c = open();
        push(&mut c, &frame(frame::SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]));
        push(&mut c, &whole(1, &get("/")));
        c.send_headers(1, 200, std::iter::empty(), false);
        push(
            &mut c,
            &frame(frame::WINDOW_UPDATE, 0, 0, &[0x7f, 0xff, 0, 0]),
        );
        let body = vec![b'x'; 1 << 20];
        let mut sent = 0;
        let mut err = None;
        for _ in 0..200_000 {
            if let (Err(e), _) = feed(&mut c, &frame(frame::WINDOW_UPDATE, 0, 1, &[0, 0, 0, 1])) {
                err = Some(e.code);
                break;
            }
            sent += c.send_data(1, &body[sent..], true);
            c.out.clear();
        }
        assert_eq!(err, Some(ErrorCode::EnhanceYourCalm));
    }

    /// A client that gives the window back 4 KiB at a time (a stream and a connection
    /// WINDOW_UPDATE each) downloads 200 MiB without being taken for a flood.
    #[test]
    fn long_download_with_small_window_updates() {
        let mut c = open();
        push(&mut c, &whole(1, &get("/big")));
        c.send_headers(1, 200, std::iter::empty(), false);
        let chunk = vec![b'x'; 8192];
        let mut total = 0usize;
        while total < 200 << 20 {
            let n = c.send_data(1, &chunk, false);
            total += n;
            c.out.clear();
            let mut b = Vec::new();
            for _ in 0..n / 4096 {
                b.extend(frame(frame::WINDOW_UPDATE, 0, 1, &4096u32.to_be_bytes()));
                b.extend(frame(frame::WINDOW_UPDATE, 0, 0, &4096u32.to_be_bytes()));
            }
            push(&mut c, &b);
        }
    }

    /// A peer that sends without reading: `recv` stops taking frames while the answers
    /// queued pass the high-water mark.
    #[test]
    fn answers_queue_is_bounded() {
        let mut c = open();
        push(
            &mut c,
            &frame(frame::SETTINGS, 0, 0, &[0, 4, 0x10, 0, 0, 0]),
        );
        push(&mut c, &frame(frame::WINDOW_UPDATE, 0, 0, &[0x10, 0, 0, 0]));
        push(&mut c, &whole(1, &get("/")));
        c.send_headers(1, 200, std::iter::empty(), false);
        assert_eq!(c.send_data(1, &vec![0; OUT_HIGH + 1], false), OUT_HIGH + 1);
        // The caller has not written the response yet: nothing more is taken.
        let ping = frame(frame::PING, 0, 0, &[0; 8]);
        let mut ev = Vec::new();
        assert_eq!(c.recv(&ping, &mut ev), Ok(0));
        c.out.clear();
        assert_eq!(c.recv(&ping, &mut ev), Ok(ping.len()));
    }
}
