//! HTTP/2 connections in the worker.
//!
//! An HTTP/2 connection is a [`Conn`] in [`Phase::H2`] holding a [`Session`]: the sans-IO
//! connection ([`H2Conn`]) and its streams. Each stream is served, as nginx serves it, by a
//! connection of its own in the worker's slab that has no socket ([`Sock::Stream`], nginx's
//! "fake connection"): its request is written into its `rbuf` as an HTTP/1.1 head
//! ([`bridge::request_head`]) and its body as DATA frames arrive, so the parser, the router
//! and every handler serve it unchanged, with its own request context, timers and upstream
//! connections; what its handlers write goes into its [`StreamLink::out`] (bounded: a full
//! one makes the handler wait as a full socket would) and from there through the
//! [`ResponseBridge`] into HEADERS and DATA frames as the flow-control windows allow.
//!
//! The slab holds both, so the functions here take the slab: the session is taken out of
//! its connection while its streams are driven, and put back.

use super::conn::{Conn, ConnExt, Phase, Sock};
use super::Worker;
use crate::elog;
use crate::http2::bridge::{self, BodyFraming, Bridged, ResponseBridge};
use crate::http2::conn::{Config, Event, H2Conn};
use crate::http2::frame::ErrorCode;
use crate::http2::hpack::Limits;
use mio::Poll;
use slab::Slab;
use std::io::ErrorKind;
use std::time::Duration;

/// The most response bytes a stream's connection holds for the session; its writes wait
/// beyond that.
const STREAM_OUT_MAX: usize = 64 * 1024;
/// Frames queued for the socket beyond which no more response bytes are taken from the
/// streams (a slow reader holds this much, not the whole of its window).
const OUT_SOFT: usize = 256 * 1024;
/// The most of the client's frames read ahead of processing.
pub(crate) const READ_AHEAD: usize = 256 * 1024;

/// An HTTP/2 connection's state, in its [`ConnExt`].
pub(crate) struct Session {
    pub(crate) conn: H2Conn,
    /// Open streams: (stream id, slab key of its connection).
    streams: Vec<(u32, usize)>,
    /// Responses whose connection has finished but whose bytes wait for the window:
    /// (stream id, HTTP/1.1 bytes not yet taken, bridge).
    /// (The `limit_conn` counts of the request go with its tail: nginx holds them until
    /// the request is over, its last byte sent.)
    tails: Vec<(u32, Vec<u8>, ResponseBridge, super::limits::LimitHold)>,
    events: Vec<Event>,
    /// Slab keys of streams to drive, reused from event to event (no allocation per
    /// event): those with new input, and those whose writes may go on.
    drive: Vec<usize>,
    keys: Vec<usize>,
    /// A connection error, or the client closed: close once the output is written.
    pub(crate) closing: bool,
    /// Requests (streams) the connection has had.
    requests: u32,
    /// `client_header_timeout`: how long the connection may wait for its first request.
    first_ms: u64,
    /// `keepalive_time` (the connection's other keep-alive limits are its `H2Conn`'s).
    keep_time_ms: u64,
    /// In the worker's `h2_flush`: a stream's output waits for the round's end.
    flush_queued: bool,
    /// A request's HEADERS frame partly here: its stream and since when (`clock_ms`), for
    /// `client_header_timeout`.
    partial: Option<(u32, u32)>,
}

/// A stream's connection's link to its HTTP/2 connection, in its [`ConnExt`].
pub(crate) struct StreamLink {
    pub(crate) parent: usize,
    pub(crate) id: u32,
    /// The handlers' HTTP/1.1 response bytes not yet taken by `bridge`.
    pub(crate) out: Vec<u8>,
    pub(crate) bridge: ResponseBridge,
    framing: BodyFraming,
    /// Request body bytes handed to the connection and not yet given back to the client's
    /// window.
    unreleased: usize,
    /// A write found `out` full: the connection waits to be driven again.
    blocked: bool,
    /// The request was malformed: it is answered with this status (as nginx answers it).
    refused: Option<u16>,
    /// The request was malformed (RFC 9113 §8.1.1): its answer is followed by
    /// RST_STREAM(PROTOCOL_ERROR), as the RFC allows (nginx sends the answer alone).
    malformed: bool,
    /// The size of the request's header block as received (`$request_length`).
    block_len: usize,
    /// The stream's connection ended on a timeout: an unfinished answer is reset with
    /// PROTOCOL_ERROR rather than INTERNAL_ERROR (nginx's `c->timedout`).
    timed_out: bool,
    /// The `limit_conn` counts of the stream's request once its handler is done: held until
    /// the response's last byte is sent (it goes with the tail) or the stream ends.
    pub(crate) hold: super::limits::LimitHold,
}

impl StreamLink {
    /// How many more response bytes the stream's connection may write: up to
    /// [`STREAM_OUT_MAX`] of body held (a head not taken yet does not count, so the first
    /// DATA frames can fill the window as nginx's do), more only while a head longer than
    /// that is not whole yet (it is taken whole, up to its own limit, before anything goes
    /// out).
    fn room(&self) -> usize {
        if !self.bridge.head_pending() {
            return STREAM_OUT_MAX.saturating_sub(self.out.len());
        }
        match memchr::memmem::find(&self.out, b"\r\n\r\n") {
            Some(end) => STREAM_OUT_MAX.saturating_sub(self.out.len() - (end + 4)),
            None if self.out.len() >= STREAM_OUT_MAX => {
                bridge::HEAD_MAX.saturating_sub(self.out.len())
            }
            None => STREAM_OUT_MAX.saturating_sub(self.out.len()),
        }
    }
}

impl Session {
    pub(crate) fn wants_write(&self) -> bool {
        !self.conn.out.is_empty()
    }
}

/// The client's preface starts (or is) `bytes`.
pub(crate) fn preface_prefix(bytes: &[u8]) -> bool {
    let p = crate::http2::frame::PREFACE;
    let n = bytes.len().min(p.len());
    bytes[..n] == p[..n]
}

/// Turns connection `c` (its first bytes are the HTTP/2 preface) into an HTTP/2 connection.
pub(crate) fn start(c: &mut Conn, w: &Worker<'_>) {
    // Over TLS the server the SNI name chose sets the connection's HTTP/2 settings (as
    // nginx's); else the address's default server.
    let ir = &w.loaded.ir;
    let s = match c.tls().and_then(|t| t.server) {
        Some(sid) => ir
            .servers
            .get(sid.0 as usize)
            .and_then(|s| ir.server_settings(s)),
        None => w.default_settings(c.listener as usize),
    };
    let cfg = Config {
        max_concurrent_streams: s.map_or(128, |s| s.http2.max_concurrent_streams),
        initial_window: s.map_or(65_536, |s| {
            u32::try_from(
                s.http2
                    .body_preread_size
                    .min(crate::http2::frame::MAX_WINDOW as u64),
            )
            .unwrap_or(65_536)
        }),
        // One buffer for a string, all of them for the list (nginx's limits).
        headers: s.map_or(
            Limits {
                field: 8 * 1024,
                list: 32 * 1024,
            },
            |s| {
                let (n, size) = s.large_client_header_buffers;
                Limits {
                    field: size as usize,
                    list: n as usize * size as usize,
                }
            },
        ),
        chunk_size: s.map_or(8192, |s| s.http2.chunk_size.clamp(1, 1 << 24) as usize),
        max_headers: s.map_or(1000, |s| s.max_headers as usize),
        max_requests: s.map_or(1000, |s| s.keepalive_requests),
        keepalive_off: s.is_some_and(|s| s.keepalive_timeout_ms == 0),
    };
    let session = Box::new(Session {
        conn: H2Conn::new(cfg),
        streams: Vec::new(),
        tails: Vec::new(),
        events: Vec::new(),
        drive: Vec::new(),
        keys: Vec::new(),
        closing: false,
        requests: 0,
        first_ms: s.map_or(60_000, |s| s.client_header_timeout_ms),
        keep_time_ms: s.map_or(3_600_000, |s| s.keepalive_time_ms),
        flush_queued: false,
        partial: None,
    });
    let ext = c.ext.get_or_insert_with(Box::default);
    ext.h2 = Some(session);
    c.phase = Phase::H2;
    let ms = |v: u64| v.min(u64::from(u32::MAX)) as u32;
    c.keepalive_ms = s.map_or(75_000, |s| ms(s.keepalive_timeout_ms));
    c.send_timeout_ms = s.map_or(60_000, |s| ms(s.send_timeout_ms));
    // Frames go out as soon as they are written (as nginx's HTTP/2 connections).
    if let (true, Some(sock)) = (s.is_none_or(|s| s.tcp_nodelay), c.sock.tcp()) {
        let _ = sock.set_nodelay(true);
    }
}

/// A write by the handlers of a stream's connection: into its link's `out`, up to
/// [`STREAM_OUT_MAX`] (then `WouldBlock`, as a full socket).
pub(crate) fn stream_write(ext: &mut Option<Box<ConnExt>>, data: &[u8]) -> std::io::Result<usize> {
    let Some(link) = ext.as_deref_mut().and_then(|e| e.stream.as_deref_mut()) else {
        return Err(ErrorKind::NotConnected.into());
    };
    let room = link.room();
    super::conn::link_write(&mut link.out, room, &mut link.blocked, data)
}

fn session_of(conns: &mut Slab<Conn>, key: usize) -> Option<Box<Session>> {
    conns.get_mut(key)?.ext.as_deref_mut()?.h2.take()
}

fn put_back(conns: &mut Slab<Conn>, key: usize, s: Box<Session>) {
    if let Some(e) = conns.get_mut(key).and_then(|c| c.ext.as_deref_mut()) {
        e.h2 = Some(s);
    }
}

/// Runs `f` on connection `key`; a stream's connection sees its HTTP/2 connection's TLS
/// and PROXY protocol header while it runs (`$https`, `$ssl_*`, the SNI checks,
/// `$proxy_protocol_*`, `real_ip_header proxy_protocol`), lent for the call and given
/// back after it. `None`: there is no connection `key`.
pub(crate) fn with_parent<R>(
    conns: &mut Slab<Conn>,
    key: usize,
    f: impl FnOnce(&mut Conn) -> R,
) -> Option<R> {
    let parent = conns.get_mut(key).and_then(link_of).map(|l| l.parent);
    let lent = parent
        .and_then(|p| conns.get_mut(p))
        .and_then(|c| c.ext.as_deref_mut())
        .map(|e| (e.tls.take(), e.proxy_protocol.take()));
    let c = conns.get_mut(key)?;
    let lent = match (lent, c.ext.as_deref_mut()) {
        (Some((tls, pp)), Some(e)) => {
            e.tls = tls;
            e.proxy_protocol = pp;
            true
        }
        _ => false,
    };
    let r = f(c);
    if lent {
        let back = c
            .ext
            .as_deref_mut()
            .map(|e| (e.tls.take(), e.proxy_protocol.take()));
        if let (Some((tls, pp)), Some(e)) = (
            back,
            parent
                .and_then(|p| conns.get_mut(p))
                .and_then(|c| c.ext.as_deref_mut()),
        ) {
            e.tls = tls;
            e.proxy_protocol = pp;
        }
    }
    Some(r)
}

fn link_of(c: &mut Conn) -> Option<&mut StreamLink> {
    c.ext.as_deref_mut()?.stream.as_deref_mut()
}

/// After readiness on an HTTP/2 connection (its socket read into `rbuf` by
/// `Conn::on_event`): frames are taken, streams opened, fed and driven, output written.
/// Returns true when the connection must be closed.
pub(crate) fn session_event(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) -> bool {
    let Some(mut s) = session_of(conns, key) else {
        return true;
    };
    if w.draining && !s.conn.going_away() {
        s.conn.shutdown();
    }
    let mut drive = std::mem::take(&mut s.drive);
    drive.clear();
    if let Some(c) = conns.get_mut(key) {
        let input = std::mem::take(&mut c.rbuf);
        let origin = Origin {
            peer: c.peer,
            local: w.local_of(c),
            listener: c.listener,
            debug: c.debug,
            key,
            number: c.number,
            started_ms: c.started_ms,
        };
        let peer = origin.peer;
        // keepalive_time: the stream that finds the connection older is its last.
        s.conn.aged = u64::from(w.now_ms.wrapping_sub(origin.started_ms)) > s.keep_time_ms;
        let mut events = std::mem::take(&mut s.events);
        events.clear();
        let used = match s.conn.recv(&input, &mut events) {
            Ok(n) => n,
            Err(e) => {
                elog!(
                    w.elog,
                    Info,
                    "client sent invalid HTTP/2 ({}) while processing HTTP/2 connection, client: {}",
                    e.reason,
                    peer.ip()
                );
                s.closing = true;
                input.len()
            }
        };
        for ev in events.drain(..) {
            match ev {
                Event::Request {
                    stream,
                    end_stream,
                    refused,
                    block_len,
                } => {
                    s.requests = s.requests.saturating_add(1);
                    if !end_stream && refused.is_none() {
                        // A body on its way: a window of at least 64 KiB from the start,
                        // whatever http2_body_preread_size (nginx opens it when the body is
                        // read; here the connection reads it as it comes).
                        s.conn.open_window(stream, 64 * 1024);
                    }
                    let mut rbuf = w.pool.get();
                    rbuf.clear();
                    let bridged = match (refused, s.conn.headers(stream)) {
                        (None, Some(h)) => {
                            bridge::request_head(h, end_stream, &mut rbuf).map_err(|e| match e {
                                bridge::Refused::Method => ("an invalid :method", 400),
                                bridge::Refused::Path => ("an invalid :path", 400),
                                bridge::Refused::Connect => ("CONNECT method", 405),
                            })
                        }
                        (Some(why), _) => Err((why, 400)),
                        (None, None) => Err(("no header list", 400)),
                    };
                    // A malformed request has no head to bridge: its connection answers
                    // 400 (405 for CONNECT, as nginx; its body, if any, is not read).
                    let (framing, refused) = match bridged {
                        Ok(f) => (f, None),
                        Err((why, status)) => {
                            elog!(
                                w.elog,
                                Info,
                                "client sent invalid request ({why}) while processing HTTP/2 connection, client: {}",
                                peer.ip()
                            );
                            rbuf.clear();
                            (BodyFraming::None, Some(status))
                        }
                    };
                    let head_only = rbuf.starts_with(b"HEAD ");
                    let skey = open_stream(
                        conns, &origin, &mut s, w, stream, rbuf, framing, refused, head_only,
                        block_len,
                    );
                    drive.push(skey);
                }
                Event::Data {
                    stream,
                    at,
                    end_stream,
                } => {
                    let Some(&(_, skey)) = s.streams.iter().find(|(id, _)| *id == stream) else {
                        s.conn.release(stream, at.len());
                        continue;
                    };
                    let data = input.get(at).unwrap_or_default();
                    if let Some(sc) = conns.get_mut(skey) {
                        let framing = link_of(sc).map(|l| l.framing);
                        match framing {
                            Some(BodyFraming::Chunked) => {
                                bridge::chunk(data, &mut sc.rbuf);
                                if end_stream {
                                    bridge::last_chunk(None, &mut sc.rbuf);
                                }
                            }
                            _ => sc.rbuf.extend_from_slice(data),
                        }
                        sc.rd_ready = true;
                        if let Some(l) = link_of(sc) {
                            l.unreleased += data.len();
                        }
                    }
                    drive.push(skey);
                }
                Event::Trailers { stream } => {
                    let Some(&(_, skey)) = s.streams.iter().find(|(id, _)| *id == stream) else {
                        continue;
                    };
                    if let Some(sc) = conns.get_mut(skey) {
                        if link_of(sc).is_some_and(|l| l.framing == BodyFraming::Chunked) {
                            bridge::last_chunk(s.conn.trailers(stream), &mut sc.rbuf);
                        }
                        sc.rd_ready = true;
                    }
                    drive.push(skey);
                }
                Event::BadBody { stream } => {
                    elog!(
                        w.elog,
                        Info,
                        "client sent a request body whose length is not its Content-Length while processing HTTP/2 connection, client: {}",
                        peer.ip()
                    );
                    let Some(i) = s.streams.iter().position(|(id, _)| *id == stream) else {
                        continue;
                    };
                    let skey = s.streams[i].1;
                    // Nothing of the response went out yet: the request is answered 400
                    // instead, by a fresh connection (its handler, and any upstream, let go).
                    let fresh = conns.get_mut(skey).is_some_and(|sc| {
                        sc.wpos >= sc.wbuf.len()
                            && link_of(sc)
                                .is_some_and(|l| l.out.is_empty() && l.bridge.head_pending())
                    });
                    s.streams.swap_remove(i);
                    // Body bytes the old connection held go back to the window.
                    if let Some(l) = conns.get_mut(skey).and_then(link_of) {
                        s.conn.release(stream, std::mem::take(&mut l.unreleased));
                    }
                    if fresh {
                        if let Some(sc) = conns.try_remove(skey) {
                            sc.release(w);
                        }
                    } else {
                        abort_stream(conns, skey, w);
                    }
                    if fresh {
                        let mut rbuf = w.pool.get();
                        rbuf.clear();
                        let k = open_stream(
                            conns,
                            &origin,
                            &mut s,
                            w,
                            stream,
                            rbuf,
                            BodyFraming::None,
                            Some(400),
                            false,
                            0,
                        );
                        drive.push(k);
                    } else {
                        s.conn.reset(stream, ErrorCode::Protocol);
                    }
                }
                Event::Reset { stream, .. } => {
                    s.tails.retain(|(id, _, _, _)| *id != stream);
                    if let Some(i) = s.streams.iter().position(|(id, _)| *id == stream) {
                        let (_, skey) = s.streams.swap_remove(i);
                        abort_stream(conns, skey, w);
                    }
                }
            }
        }
        s.events = events;
        let mut input = input;
        input.drain(..used.min(input.len()));
        // Everything taken: the buffer goes back to the pool while the connection idles
        // (reading takes one again).
        match conns.get_mut(key) {
            Some(c) if !input.is_empty() => c.rbuf = input,
            _ => w.pool.put(input),
        }
    }
    drive.sort_unstable();
    drive.dedup();
    for &skey in &drive {
        drive_stream(conns, skey, &mut s, w);
    }
    s.drive = drive;
    let close = pump(conns, key, &mut s, w);
    put_back(conns, key, s);
    close
}

/// Runs a stream's connection (its request, its handlers), then takes its output.
fn drive_stream(conns: &mut Slab<Conn>, skey: usize, s: &mut Session, w: &mut Worker<'_>) {
    let done = with_parent(conns, skey, |sc| {
        if let Some(l) = link_of(sc) {
            l.blocked = false;
        }
        w.select_log(sc);
        let d = sc.on_event(w, true, true);
        w.deselect_log();
        d
    });
    let Some(mut done) = done else {
        return;
    };
    // Its auth subrequest, what its response body waits for (SSI, subrequests) run now.
    if !done && conns.get(skey).is_some_and(super::auth::wants_sub) {
        if let Some(d) = super::auth::service(conns, skey, w) {
            done = d;
        }
    }
    if !done && conns.get(skey).is_some_and(super::ssi::waits) {
        done = super::ssi::service(conns, skey, w);
    }
    // DATA frames as large as the answering location's `http2_chunk_size`.
    let chunk = conns
        .get(skey)
        .and_then(|sc| {
            let id = sc.ext.as_deref()?.stream.as_deref()?.id;
            Some((id, sc.finished.location()?))
        })
        .map(|(id, l)| {
            (
                id,
                w.settings_for(proton_ir::LocationId(l)).http2.chunk_size,
            )
        });
    if let Some((id, size)) = chunk {
        s.conn.set_chunk_size(id, size);
    }
    take_output(conns, skey, s);
    if done {
        finish_stream(conns, skey, s, w);
    } else if let Some(sc) = conns.get_mut(skey) {
        w.arm(skey, sc);
    }
}

/// Moves what a stream's handlers wrote through its bridge; gives back the client's
/// window for the body bytes its request has taken.
fn take_output(conns: &mut Slab<Conn>, skey: usize, s: &mut Session) {
    let Some(sc) = conns.get_mut(skey) else {
        return;
    };
    let unread = sc.rbuf.len().saturating_sub(sc.head_len());
    let Some(l) = link_of(sc) else {
        return;
    };
    if l.unreleased > 0 && unread < 64 * 1024 {
        s.conn.release(l.id, l.unreleased);
        l.unreleased = 0;
    }
    let id = l.id;
    if s.conn.out.len() >= OUT_SOFT {
        return;
    }
    if l.out.is_empty() {
        // Body bytes held for the window go on when it opens.
        if l.bridge.flush(&mut s.conn, id) == Bridged::Broken {
            s.conn.reset(id, ErrorCode::Internal);
        }
        return;
    }
    if l.bridge.feed(&mut l.out, &mut s.conn, id) == Bridged::Broken {
        s.conn.reset(id, ErrorCode::Internal);
        l.out.clear();
    }
}

/// A stream's connection is done (its response written, or it failed): its output is
/// finished on the stream (or left as a tail waiting for the window), and it goes.
fn finish_stream(conns: &mut Slab<Conn>, skey: usize, s: &mut Session, w: &mut Worker<'_>) {
    super::sub::close_children(conns, skey, w);
    let Some(mut sc) = conns.try_remove(skey) else {
        return;
    };
    if let Some(i) = s.streams.iter().position(|(_, k)| *k == skey) {
        s.streams.swap_remove(i);
    }
    if let Some(mut link) = sc.ext.as_deref_mut().and_then(|e| e.stream.take()) {
        let id = link.id;
        // Body bytes the handler took go back to the client's window now.
        s.conn.release(id, std::mem::take(&mut link.unreleased));
        let mut r = link.bridge.feed(&mut link.out, &mut s.conn, id);
        if r == Bridged::Going && link.out.is_empty() {
            r = link.bridge.close(&mut s.conn, id);
        }
        match r {
            Bridged::Broken if link.timed_out => s.conn.reset(id, ErrorCode::Protocol),
            Bridged::Broken => s.conn.reset(id, ErrorCode::Internal),
            Bridged::Done if link.malformed => s.conn.reset(id, ErrorCode::Protocol),
            Bridged::Going => s.tails.push((
                id,
                std::mem::take(&mut link.out),
                std::mem::take(&mut link.bridge),
                std::mem::take(&mut link.hold),
            )),
            Bridged::Done => {}
        }
        // A request body the handler did not read: the client may stop sending it.
        if r != Bridged::Going && s.conn.headers(id).is_some() {
            s.conn.reset(id, ErrorCode::NoError);
        }
        recycle_link(link, w);
    }
    sc.release(w);
}

/// Writes the session's frames and moves the streams' output on while the socket takes
/// it; true when the connection must close.
fn pump(conns: &mut Slab<Conn>, key: usize, s: &mut Session, w: &mut Worker<'_>) -> bool {
    loop {
        if write_out(conns, key, s, w) {
            return true;
        }
        if !s.conn.out.is_empty() {
            // The socket is full: its writable event brings the connection back.
            return false;
        }
        if !service(conns, s, w) {
            return false;
        }
    }
}

/// Output moves on as the windows and the socket take it: tails first, then each stream's
/// bytes; a stream whose writes were waiting for room is driven again. Returns whether
/// anything was queued.
fn service(conns: &mut Slab<Conn>, s: &mut Session, w: &mut Worker<'_>) -> bool {
    s.conn.window_opened = false;
    if s.conn.out.len() >= OUT_SOFT {
        return false;
    }
    let before = s.conn.out.len();
    let mut tails = std::mem::take(&mut s.tails);
    // Output in the peer's priority order (parents first, heavier weights first), when it
    // gave priorities.
    let ranked = s.conn.prioritized();
    if ranked {
        // (Unstable, so as not to allocate; ties go by stream id, the older first.)
        tails.sort_unstable_by_key(|t| (s.conn.rank(t.0), t.0));
    }
    tails.retain_mut(|(id, out, b, _)| {
        if !s.conn.is_open(*id) {
            // Reset by the client (or by a connection error): nothing more to send.
            return false;
        }
        let mut r = b.feed(out, &mut s.conn, *id);
        if r == Bridged::Going && out.is_empty() {
            r = b.close(&mut s.conn, *id);
        }
        match r {
            Bridged::Broken => s.conn.reset(*id, ErrorCode::Internal),
            // Done while the request's body is still coming (its handler never read it):
            // the client may stop sending it, as when the stream's connection finishes.
            Bridged::Done if s.conn.headers(*id).is_some() => {
                s.conn.reset(*id, ErrorCode::NoError);
            }
            _ => {}
        }
        r == Bridged::Going
    });
    s.tails = tails;
    let mut keys = std::mem::take(&mut s.keys);
    keys.clear();
    if ranked {
        let conn = &mut s.conn;
        s.streams
            .sort_unstable_by_key(|&(id, _)| (conn.rank(id), id));
    }
    keys.extend(s.streams.iter().map(|&(_, k)| k));
    for &skey in &keys {
        take_output(conns, skey, s);
        let blocked = conns
            .get_mut(skey)
            .and_then(link_of)
            .is_some_and(|l| l.blocked && l.room() > 0);
        if blocked {
            drive_stream(conns, skey, s, w);
        }
    }
    s.keys = keys;
    s.conn.out.len() > before
}

/// Writes the session's frames to the socket; true when the connection must close now.
fn write_out(conns: &mut Slab<Conn>, key: usize, s: &mut Session, w: &mut Worker<'_>) -> bool {
    let Some(c) = conns.get_mut(key) else {
        return true;
    };
    while !s.conn.out.is_empty() {
        match c.write_bytes(&s.conn.out) {
            Ok(0) => return true,
            Ok(n) => {
                s.conn.out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    if c.flush_tls().is_none() {
        return true;
    }
    let idle = s.streams.is_empty() && s.tails.is_empty();
    if s.closing || (s.conn.going_away() && idle) || (s.conn.peer_goaway && idle) {
        c.deadline = w.now + Duration::from_millis(c.send_timeout_ms.into());
        return s.conn.out.is_empty();
    }
    // A request's HEADERS frame still arriving: client_header_timeout from its start.
    let partial = s.conn.partial_request(&c.rbuf);
    s.partial = match (partial, s.partial) {
        (Some(id), Some((was, since))) if id == was => Some((id, since)),
        (Some(id), _) => Some((id, w.now_ms)),
        (None, _) => None,
    };
    let header_due = s.partial.map(|(_, since)| {
        let waited = w.now_ms.wrapping_sub(since);
        w.now + Duration::from_millis(s.first_ms.saturating_sub(u64::from(waited)))
    });
    c.deadline = if let Some(due) = header_due.filter(|_| s.conn.out.is_empty()) {
        due
    } else if !s.conn.out.is_empty() {
        w.now + Duration::from_millis(c.send_timeout_ms.into())
    } else if idle && s.requests == 0 {
        // No request yet: client_header_timeout, as nginx's.
        w.now + Duration::from_millis(s.first_ms)
    } else if idle {
        w.now + Duration::from_millis(c.keepalive_ms.into())
    } else {
        // The streams keep their own deadlines.
        w.now + Duration::from_secs(3600)
    };
    false
}

/// After a stream's connection had an event of its own (its upstream, a timer): its
/// output goes on to the session (and to the socket at the round's end); `done`: the
/// stream's connection is finished.
pub(crate) fn stream_event(conns: &mut Slab<Conn>, skey: usize, done: bool, w: &mut Worker<'_>) {
    let Some(parent) = conns.get_mut(skey).and_then(link_of).map(|l| l.parent) else {
        return;
    };
    let Some(mut s) = session_of(conns, parent) else {
        // The HTTP/2 connection is gone (or busy): the stream goes with it.
        if let Some(sc) = conns.try_remove(skey) {
            sc.release(w);
        }
        return;
    };
    take_output(conns, skey, &mut s);
    if done {
        finish_stream(conns, skey, &mut s, w);
    } else if let Some(sc) = conns.get_mut(skey) {
        w.arm(skey, sc);
    }
    // The frames go out at the round's end, with those of the connection's other streams
    // whose upstreams answered in the same round (one TLS record and one write for many).
    if !s.flush_queued {
        s.flush_queued = true;
        w.h2_flush.push(parent);
    }
    put_back(conns, parent, s);
}

/// The round's end: the HTTP/2 connections whose streams had output write it.
pub(crate) fn flush_deferred(conns: &mut Slab<Conn>, poll: &Poll, w: &mut Worker<'_>) {
    let mut keys = std::mem::take(&mut w.h2_flush);
    for &key in &keys {
        let Some(mut s) = session_of(conns, key) else {
            continue;
        };
        s.flush_queued = false;
        let close = pump(conns, key, &mut s, w);
        put_back(conns, key, s);
        if close {
            close_session(conns, key, w);
        } else if let Some(c) = conns.get_mut(key) {
            c.update_interest(poll, mio::Token(super::CONN_BASE + key));
            w.arm(key, c);
        }
    }
    keys.clear();
    w.h2_flush = keys;
}

/// A deadline of HTTP/2 connection `key` passed: a request whose HEADERS frame is still
/// arriving after `client_header_timeout` has its stream reset and the connection goes on
/// (nginx's); otherwise the connection is done (true: close it).
pub(crate) fn session_timeout(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) -> bool {
    let Some(mut s) = session_of(conns, key) else {
        return true;
    };
    let due = s
        .partial
        .filter(|&(_, since)| u64::from(w.now_ms.wrapping_sub(since)) >= s.first_ms);
    let Some((id, _)) = due else {
        put_back(conns, key, s);
        return true;
    };
    if let Some(c) = conns.get(key) {
        elog!(
            w.elog,
            Info,
            "client timed out (110: client_header_timeout) while reading client request headers, client: {}",
            c.peer.ip()
        );
    }
    s.conn.header_timeout(id);
    s.partial = None;
    // (A request came, even if it did not make it: the connection is now kept alive as
    // after one, not timed out as one that never sent any.)
    s.requests = s.requests.max(1);
    let close = pump(conns, key, &mut s, w);
    put_back(conns, key, s);
    close
}

/// Ends an HTTP/2 connection whose last frames are written: its streams' connections go,
/// and the connection closes the way an HTTP/1.1 one does (lingering while the client may
/// still be sending). True: close it now.
pub(crate) fn end_session(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) -> bool {
    let Some(s) = session_of(conns, key) else {
        return true;
    };
    for &(_, skey) in &s.streams {
        abort_stream(conns, skey, w);
    }
    let Some(c) = conns.get_mut(key) else {
        return true;
    };
    // A client whose connection ends in an error may still be sending (frames not read yet
    // are on their way): the close lingers for them, so that its unread input does not
    // turn the close into a reset that destroys the GOAWAY before it is read (nginx's
    // lingering close of HTTP/2 connections).
    c.rd_ready = true;
    c.close_or_linger(w)
}

/// Closes an HTTP/2 connection and every stream's connection it has.
pub(crate) fn close_session(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) {
    // The streams go first, while the connection (its TLS, for their log lines) is there.
    if let Some(s) = session_of(conns, key) {
        for &(_, skey) in &s.streams {
            abort_stream(conns, skey, w);
        }
    }
    if let Some(c) = conns.try_remove(key) {
        c.release(w);
    }
}

/// Graceful stop: every HTTP/2 connection sends GOAWAY (its streams finish, no new ones
/// start) and closes once idle; an idle one at once.
pub(crate) fn quit(conns: &mut Slab<Conn>, poll: &Poll, w: &mut Worker<'_>) {
    let keys: Vec<usize> = conns
        .iter()
        .filter(|(_, c)| is_session(c))
        .map(|(k, _)| k)
        .collect();
    for key in keys {
        let Some(mut s) = session_of(conns, key) else {
            continue;
        };
        s.conn.shutdown();
        let close = pump(conns, key, &mut s, w);
        put_back(conns, key, s);
        if close {
            if end_session(conns, key, w) {
                super::close(conns, key, w);
            }
        } else if let Some(c) = conns.get_mut(key) {
            c.update_interest(poll, mio::Token(super::CONN_BASE + key));
            w.arm(key, c);
        }
    }
}

/// Reads and takes frames while the client's bytes are there: a connection stops reading
/// at READ_AHEAD and its frames are taken in rounds until the socket is drained (an
/// edge-triggered socket says nothing more about bytes already waiting). True: close.
pub(crate) fn session_rounds(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) -> bool {
    loop {
        let before = conns.get(key).map_or(0, |c| c.rbuf.len());
        if session_event(conns, key, w) {
            return true;
        }
        let Some(c) = conns.get_mut(key) else {
            return true;
        };
        // More to read (reading stopped at READ_AHEAD), or frames left while answers were
        // queued past OUT_HIGH and have since gone out.
        let more_to_read = c.rd_ready && c.rbuf.len() < READ_AHEAD;
        let frames_left = c.rbuf.len() >= crate::http2::frame::HEAD
            && c.rbuf.len() < before
            && !c
                .ext
                .as_deref()
                .and_then(|e| e.h2.as_deref())
                .is_some_and(Session::wants_write);
        if more_to_read {
            w.select_log(c);
            let done = c.on_event(w, true, true);
            w.deselect_log();
            if done {
                return true;
            }
        } else if !frames_left {
            return false;
        }
    }
}

/// The status that answers a stream's malformed request, once (`None`: not a stream's,
/// well formed, or already answered).
pub(crate) fn take_refused(c: &mut Conn) -> Option<u16> {
    c.ext.as_deref_mut()?.stream.as_deref_mut()?.refused.take()
}

/// The HTTP/2 connection a stream's connection is made for.
struct Origin {
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    listener: u16,
    debug: bool,
    /// Its slab key.
    key: usize,
    number: u32,
    started_ms: u32,
}

/// Makes the connection that serves stream `id` (its request head bridged into `rbuf`, or
/// `refused` with that status) and puts it in the session's streams; returns its key.
#[allow(clippy::too_many_arguments)]
fn open_stream(
    conns: &mut Slab<Conn>,
    o: &Origin,
    s: &mut Session,
    w: &mut Worker<'_>,
    id: u32,
    rbuf: Vec<u8>,
    framing: BodyFraming,
    refused: Option<u16>,
    head_only: bool,
    block_len: usize,
) -> usize {
    let entry = conns.vacant_entry();
    let skey = entry.key();
    // A link (and below, its connection's extension) from the worker's spares, with the
    // buffers it kept: a stream allocates nothing once the worker has served a few.
    let fresh = |out, bridge| StreamLink {
        parent: o.key,
        id,
        out,
        bridge,
        framing,
        unreleased: 0,
        blocked: false,
        refused,
        malformed: refused.is_some(),
        block_len,
        timed_out: false,
        hold: Default::default(),
    };
    let mut link = match w.spare_links.pop() {
        Some(mut l) => {
            let (out, bridge) = (std::mem::take(&mut l.out), std::mem::take(&mut l.bridge));
            *l = fresh(out, bridge);
            l
        }
        None => Box::new(fresh(Vec::new(), ResponseBridge::default())),
    };
    link.bridge.reset(head_only);
    let mut sc = Conn::stream(o.peer, o.local, o.listener, o.debug, skey, link, w);
    sc.rbuf = rbuf;
    // `$connection`, `$connection_requests`, `$connection_time` are the HTTP/2
    // connection's (as nginx's).
    (sc.number, sc.started_ms) = (o.number, o.started_ms);
    sc.served = s.requests.saturating_sub(1);
    if let Some(a) = w.armed.get_mut(skey) {
        *a = None;
    }
    entry.insert(sc);
    s.streams.push((id, skey));
    skey
}

/// A stream's connection whose request the client gave up (a reset, or its connection
/// gone): the request is logged (499 if unanswered) and the connection goes.
fn abort_stream(conns: &mut Slab<Conn>, skey: usize, w: &mut Worker<'_>) {
    with_parent(conns, skey, |sc| {
        w.select_log(sc);
        sc.log_abort(w);
        w.deselect_log();
    });
    super::sub::close_children(conns, skey, w);
    if let Some(sc) = conns.try_remove(skey) {
        sc.release(w);
    }
}

/// Spare stream links and connection extensions a worker keeps (a link holds at most
/// [`SPARE_OUT`] of output room).
const SPARES: usize = 256;
const SPARE_OUT: usize = 16 * 1024;

/// Keeps a finished stream's connection extension, and its link, for the next stream. (Its
/// HTTP/2 connection's TLS and PROXY header are only lent while it runs: an extension that
/// holds either is not kept.)
pub(crate) fn recycle_ext(mut ext: Box<ConnExt>, w: &mut Worker<'_>) {
    if let Some(link) = ext.stream.take() {
        recycle_link(link, w);
    }
    ext.sub = None;
    let bare = ext.tls.is_none() && ext.proxy_protocol.is_none() && ext.h2.is_none();
    if bare && w.spare_exts.len() < SPARES {
        ext.local = None;
        w.spare_exts.push(ext);
    }
}

/// Keeps a finished stream's link for the next stream (bounded in number and size).
fn recycle_link(mut link: Box<StreamLink>, w: &mut Worker<'_>) {
    if w.spare_links.len() >= SPARES {
        return;
    }
    if link.out.capacity() > SPARE_OUT {
        link.out = Vec::new();
    }
    link.out.clear();
    link.bridge.shrink(SPARE_OUT);
    // (A stream that ended without a tail gives its counts back here.)
    link.hold = Default::default();
    w.spare_links.push(link);
}

/// The head's part of `$request_length` for a stream's connection: its request's header
/// block as received (`None`: not a stream's).
pub(crate) fn block_len(c: &Conn) -> Option<usize> {
    c.ext.as_deref()?.stream.as_deref().map(|l| l.block_len)
}

/// A stream's connection is ending on a timeout (see [`StreamLink::timed_out`]).
pub(crate) fn mark_timed_out(c: &mut Conn) {
    if let Some(l) = link_of(c) {
        l.timed_out = true;
    }
}

/// Whether a connection is one stream's.
pub(crate) fn is_stream(c: &Conn) -> bool {
    matches!(c.sock, Sock::Stream) && c.ext.as_deref().is_some_and(|e| e.stream.is_some())
}

/// Whether a connection is an HTTP/2 connection.
pub(crate) fn is_session(c: &Conn) -> bool {
    c.phase == Phase::H2
}
