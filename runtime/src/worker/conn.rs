//! One client connection: its buffers and its state machine.
//!
//! `Head` reads until a request head is complete (pipelined requests are parsed straight
//! from the buffer), the request is routed and answered into the write buffer (plus an open
//! file for static bodies), `Write` flushes it with `write`/`sendfile`, `Discard` drops the
//! request body the handler did not need, and the connection goes back to `Head` or closes.

use super::context::RequestCtx;
use super::{respond, Worker};
use crate::elog;
use crate::http::chunked::ChunkedDecoder;
use crate::http::request::{parse_head, Limits, Parsed};
use crate::shared::{ConnStat, Stat};
use mio::net::TcpStream;
use mio::{Interest, Poll, Token};
use std::io::{ErrorKind, Read};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Head,
    Write,
    Discard,
    /// A proxied request in flight (`Conn::proxy`).
    Proxy,
    /// Lingering close: the response is out and the write side shut; what the client
    /// still sends is read and dropped until it stops (see [`Conn::close_or_linger`]).
    Linger,
    /// An HTTP/2 connection (see `worker::h2`): frames are read into `rbuf` here and
    /// taken by the session.
    H2,
    /// `limit_req` delays the request: it waits for its wake-up (`RequestCtx::wake_at`
    /// in the worker's `delayed` heap), then routing goes on (`Conn::resume_delayed`).
    Delay,
}

/// How much of the request body is still to be dropped.
pub(crate) enum Discard {
    None,
    Length(u64),
    /// Boxed: rare, and it would double an idle connection's size.
    Chunked(Box<ChunkedDecoder>),
}

/// A file body being sent with sendfile.
pub(crate) struct FileBody {
    pub(crate) file: std::fs::File,
    pub(crate) offset: i64,
    pub(crate) end: i64,
    /// `sendfile on`: the kernel copies; off: read into a pool buffer, then write.
    pub(crate) sendfile: bool,
    /// `tcp_nopush on` (with sendfile): TCP_CORK around head + file, as nginx.
    pub(crate) nopush: bool,
}

/// What the access log needs once the response is sent.
#[derive(Default, Clone, Copy)]
pub(crate) struct Finished {
    pub(crate) status: u16,
    pub(crate) header_bytes: u64,
    pub(crate) body_bytes: u64,
    /// Index + 1 of the location that answered (for access_log), if any (kept in 4
    /// bytes; use [`Finished::location`]).
    loc: Option<std::num::NonZeroU32>,
}

impl Finished {
    /// Index of the location that answered, if any.
    pub(crate) fn location(&self) -> Option<u32> {
        self.loc.map(|n| n.get() - 1)
    }

    pub(crate) fn set_location(&mut self, l: Option<u32>) {
        self.loc = l.and_then(|l| std::num::NonZeroU32::new(l.wrapping_add(1)));
    }
}

pub(crate) struct Conn {
    pub(crate) sock: Sock,
    /// What only some connections have (TLS, a local address of their own), boxed so that
    /// an idle plain connection stays small.
    pub(crate) ext: Option<Box<ConnExt>>,
    pub(crate) peer: SocketAddr,
    /// Index into `ir.listeners` (2 bytes, so that an idle connection stays small; the IR
    /// verifier refuses more listeners).
    pub(crate) listener: u16,
    pub(crate) rbuf: Vec<u8>,
    pub(crate) wbuf: Vec<u8>,
    pub(crate) wpos: usize,
    pub(crate) file: Option<FileBody>,
    pub(crate) phase: Phase,
    pub(crate) deadline: Instant,
    /// Requests served on this connection.
    pub(crate) served: u32,
    /// What the connection counts as in `stub_status` now (see [`Conn::restat`]). A client
    /// connection (one with a socket, not a stream's or a subrequest's) also counts in its
    /// active connections.
    pub(crate) stat: std::cell::Cell<crate::shared::ConnStat>,
    /// Close once the current response is written.
    pub(crate) close_after: bool,
    pub(crate) discard: Discard,
    /// Length of the current request's head in `rbuf` (4 bytes: heads are limited to far
    /// less; see [`Conn::head_len`]).
    head_len32: u32,
    pub(crate) finished: Finished,
    pub(crate) body_sent: u64,
    /// Keep-alive timeout to apply once the response is written. In [`Phase::Linger`]
    /// (where there is no keep-alive), when lingering ends at the latest, in [`clock_ms`]:
    /// an idle connection's size is what bench (f) measures, so no field is added for it.
    pub(crate) keepalive_ms: u32,
    pub(crate) send_timeout_ms: u32,
    pub(crate) body_timeout_ms: u32,
    pub(crate) interest: Interest,
    /// This connection's key in the worker's slab (upstream sockets point back to it).
    pub(crate) key: u32,
    /// The proxied request in flight, in [`Phase::Proxy`].
    pub(crate) proxy: Option<Box<super::proxy::Proxy>>,
    /// The context of the request being answered, from its parsed head to its access-log
    /// line (`None` between requests: an idle connection holds none).
    pub(crate) req: Option<Box<RequestCtx>>,
    /// The client socket may have bytes to read (see [`read_ready`]).
    pub(crate) rd_ready: bool,
    /// The client's FIN or an error was reported.
    pub(crate) rd_hup: bool,
    /// The connection's serial number in this worker (`$connection`; wraps after 2^32,
    /// 4 bytes so that an idle connection stays small).
    pub(crate) number: u32,
    /// The client matches `debug_connection`: its lines are logged at debug level.
    pub(crate) debug: bool,
    /// When the connection was accepted, in [`clock_ms`] units.
    pub(crate) started_ms: u32,
}

/// A connection's socket: a TCP (or unix) stream, or none for an HTTP/2 stream's
/// connection (nginx's "fake connection"), whose bytes go through its HTTP/2 connection
/// ([`super::h2`]).
pub(crate) enum Sock {
    Tcp(TcpStream),
    /// No socket: an HTTP/2 stream's connection (its `ConnExt::stream` link), or a
    /// subrequest's (its `ConnExt::sub` link: see `worker::sub`). (One variant for both:
    /// a third would grow every connection by a word.)
    Stream,
}

impl Sock {
    /// The socket, unless this is an HTTP/2 stream's connection.
    pub(crate) fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Sock::Tcp(s) => Some(s),
            Sock::Stream => None,
        }
    }
}

/// The parts of a connection only some connections have.
#[derive(Default)]
pub(crate) struct ConnExt {
    /// The local address when it differs from the listener's own (a wildcard listener). See
    /// `Worker::local_of`.
    pub(crate) local: Option<SocketAddr>,
    /// TLS between the socket and HTTP, on an address with `listen … ssl` (see
    /// `worker::tls`; every read and write of the client goes through it).
    pub(crate) tls: Option<super::tls::TlsConn>,
    /// `listen … proxy_protocol`: the PROXY protocol header, awaited before anything
    /// else, then what it named.
    pub(crate) proxy_protocol: Option<ProxyHeader>,
    /// An HTTP/2 connection: its frames and streams.
    pub(crate) h2: Option<Box<super::h2::Session>>,
    /// An HTTP/2 stream's connection: its link to the HTTP/2 connection.
    pub(crate) stream: Option<Box<super::h2::StreamLink>>,
    /// A subrequest's connection: its link to its parent.
    pub(crate) sub: Option<Box<super::sub::SubLink>>,
}

/// The PROXY protocol header of a connection to a `listen … proxy_protocol` address.
pub(crate) enum ProxyHeader {
    Awaited,
    Read(ProxyInfo),
}

/// What a PROXY protocol header said.
pub(crate) struct ProxyInfo {
    /// `None` when it named nobody (`UNKNOWN`, `LOCAL`, another address family).
    pub(crate) addrs: Option<crate::http::proxy_protocol::Addrs>,
    /// Version 2's TLVs (`$proxy_protocol_tlv_*`), as received.
    pub(crate) tlvs: Box<[u8]>,
}

/// The connection's TLS, from its [`ConnExt`] (a function of the field, so that callers can
/// borrow the socket and buffers beside it).
pub(crate) fn tls_mut(ext: &mut Option<Box<ConnExt>>) -> Option<&mut super::tls::TlsConn> {
    ext.as_deref_mut().and_then(|e| e.tls.as_mut())
}

/// A write into a socketless connection's link (`out`, with `room` left): what fits, or
/// `WouldBlock` (noting that the writer waits) as a full socket would.
pub(crate) fn link_write(
    out: &mut Vec<u8>,
    room: usize,
    blocked: &mut bool,
    data: &[u8],
) -> std::io::Result<usize> {
    if room == 0 {
        *blocked = true;
        return Err(ErrorKind::WouldBlock.into());
    }
    let n = room.min(data.len());
    out.extend_from_slice(&data[..n]);
    Ok(n)
}

/// A write of the handlers of a connection without a socket: to its subrequest link or
/// its HTTP/2 stream's.
fn virtual_write(ext: &mut Option<Box<ConnExt>>, data: &[u8]) -> std::io::Result<usize> {
    if ext.as_deref().is_some_and(|e| e.sub.is_some()) {
        super::sub::sub_write(ext, data)
    } else {
        super::h2::stream_write(ext, data)
    }
}

/// Reads at most `want` bytes from `sock` into the spare capacity of `buf` (growing it if
/// needed) and extends `buf` by what was read, without zero-filling the buffer first (which
/// cost more than the rest of a request).
/// Milliseconds of `now` since the process's first call, wrapping after 49 days (differences of
/// two readings with `wrapping_sub` stay right across the wrap).
pub(crate) fn clock_ms(now: Instant) -> u32 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    now.saturating_duration_since(*EPOCH.get_or_init(Instant::now))
        .as_millis() as u32
}

/// A timeout in milliseconds as kept on a connection (u32: 49 days is plenty).
fn ms32(ms: u64) -> u32 {
    ms.min(u64::from(u32::MAX)) as u32
}

pub(crate) fn read_into_spare(
    sock: &TcpStream,
    buf: &mut Vec<u8>,
    want: usize,
) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    buf.reserve(want);
    let spare = buf.spare_capacity_mut();
    let n = want.min(spare.len());
    // SAFETY: read(2) writes at most `n` bytes into the spare capacity starting at the pointer
    // we pass, which is valid for `n` bytes; the fd is the open socket we own.
    let r = unsafe { nix::libc::read(sock.as_raw_fd(), spare.as_mut_ptr().cast(), n) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let r = r as usize;
    // SAFETY: the kernel initialised exactly `r` (≤ n ≤ spare capacity) bytes past len.
    unsafe { buf.set_len(buf.len() + r) };
    Ok(r)
}

/// [`read_into_spare`] for a socket watched edge-triggered, with `ready` remembering
/// whether it may have bytes: a read shorter than asked (or EAGAIN) means the socket is
/// drained, so the next read waits for a readiness event instead of costing a failing
/// syscall (nginx's `rev->ready`).
///
/// `hup`: the peer's FIN (or an error) was reported; a short read then does not mean
/// drained, since the end of the stream is still to be read (nginx's `pending_eof`).
pub(crate) fn read_ready(
    sock: &TcpStream,
    ready: &mut bool,
    hup: bool,
    buf: &mut Vec<u8>,
    want: usize,
) -> std::io::Result<usize> {
    if !*ready {
        return Err(ErrorKind::WouldBlock.into());
    }
    match read_into_spare(sock, buf, want) {
        Ok(n) => {
            if n > 0 && n < want && !hup {
                *ready = false;
            }
            Ok(n)
        }
        Err(e) => {
            if e.kind() == ErrorKind::WouldBlock {
                *ready = false;
            }
            Err(e)
        }
    }
}

enum Fill {
    Data,
    WouldBlock,
    Closed,
}

/// The interim response that asks a client waiting on `Expect: 100-continue` for its body.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

impl Drop for Conn {
    fn drop(&mut self) {
        self.stat.get().moved(ConnStat::None);
        if matches!(self.sock, Sock::Tcp(_)) {
            crate::shared::count(Stat::Active, -1);
        }
    }
}

impl Conn {
    /// The connection's TLS (`None` on a plain address).
    pub(crate) fn tls(&self) -> Option<&super::tls::TlsConn> {
        self.ext.as_deref().and_then(|e| e.tls.as_ref())
    }

    /// The TLS handshake is done and chose HTTP/2 by ALPN.
    pub(crate) fn alpn_h2(&self) -> bool {
        matches!(self.sock, Sock::Tcp(_))
            && !self.tls_handshaking()
            && self
                .tls_session()
                .and_then(|s| s.alpn_protocol())
                .is_some_and(|p| p == b"h2")
    }

    /// Length of the current request's head in `rbuf`.
    pub(crate) fn head_len(&self) -> usize {
        self.head_len32 as usize
    }

    fn set_head_len(&mut self, n: usize) {
        self.head_len32 = u32::try_from(n).unwrap_or(u32::MAX);
    }

    pub(crate) fn new(
        sock: TcpStream,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        listener: usize,
        key: usize,
        w: &mut Worker<'_>,
    ) -> Conn {
        let l = w.loaded.ir.listeners.get(listener);
        let tls = l.is_some_and(|l| l.ssl).then(super::tls::TlsConn::new);
        let proxy_protocol = l
            .is_some_and(|l| l.proxy_protocol)
            .then_some(ProxyHeader::Awaited);
        let ext = (tls.is_some() || local.is_some() || proxy_protocol.is_some()).then(|| {
            Box::new(ConnExt {
                local,
                tls,
                proxy_protocol,
                ..ConnExt::default()
            })
        });
        let debug = !w.loaded.ir.main.debug_connection.is_empty()
            && w.loaded
                .ir
                .main
                .debug_connection
                .iter()
                .any(|d| d.matches(peer.ip()));
        let listener = u16::try_from(listener).unwrap_or(u16::MAX);
        let c = Conn::with(Sock::Tcp(sock), ext, peer, listener, key, debug, w);
        for f in [Stat::Accepted, Stat::Handled, Stat::Active] {
            crate::shared::count(f, 1);
        }
        c.restat();
        c
    }

    /// Moves the connection to what it counts as now in `stub_status` (nginx's reading,
    /// writing, waiting): a stream's connection is a request being answered; an HTTP/2
    /// connection waits (its streams are its requests); an HTTP/1 one waits while no byte
    /// of a request has come, reads while a head comes in, and writes from then until the
    /// response is out; a subrequest's is not counted.
    pub(crate) fn restat(&self) {
        let now = if super::sub::is_sub(self) {
            ConnStat::None
        } else if super::h2::is_stream(self) {
            ConnStat::Writing
        } else {
            match self.phase {
                Phase::H2 => ConnStat::Waiting,
                Phase::Head if self.rbuf.is_empty() || self.tls_handshaking() => ConnStat::Waiting,
                Phase::Head => ConnStat::Reading,
                Phase::Write | Phase::Discard | Phase::Proxy | Phase::Linger | Phase::Delay => {
                    ConnStat::Writing
                }
            }
        };
        self.stat.replace(now).moved(now);
    }

    /// A connection in its first state (waiting for a request head within the default
    /// server's client_header_timeout), for [`Conn::new`] and [`Conn::stream`].
    fn with(
        sock: Sock,
        ext: Option<Box<ConnExt>>,
        peer: SocketAddr,
        listener: u16,
        key: usize,
        debug: bool,
        w: &mut Worker<'_>,
    ) -> Conn {
        let header_timeout = w
            .default_settings(listener as usize)
            .map_or(60_000, |s| s.client_header_timeout_ms);
        // A stream's connection takes its HTTP/2 connection's number (set by
        // `h2::open_stream`) and uses none up: `$connection` counts connections, as nginx's.
        let number = if matches!(sock, Sock::Stream) {
            0
        } else {
            w.next_connection_number()
        };
        Conn {
            sock,
            ext,
            peer,
            listener,
            // Buffers are taken from the pool when bytes arrive and given back when the
            // connection goes idle, so an idle keep-alive connection holds none.
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            file: None,
            phase: Phase::Head,
            deadline: w.now + Duration::from_millis(header_timeout),
            served: 0,
            stat: std::cell::Cell::new(ConnStat::None),
            close_after: false,
            discard: Discard::None,
            head_len32: 0,
            finished: Finished::default(),
            body_sent: 0,
            keepalive_ms: 75_000,
            send_timeout_ms: 60_000,
            body_timeout_ms: 60_000,
            interest: Interest::READABLE,
            key: key as u32,
            proxy: None,
            req: None,
            // Nothing is read until epoll reports the socket readable (at once if the
            // request is already there: an edge-triggered registration reports the current
            // state), which saves a failing read per connection whose request is on the way.
            rd_ready: false,
            rd_hup: false,
            number,
            started_ms: w.now_ms,
            debug,
        }
    }

    /// The connection of an HTTP/2 stream: no socket, the client's addresses, its request
    /// to come in `rbuf`.
    pub(crate) fn stream(
        peer: SocketAddr,
        local: SocketAddr,
        listener: u16,
        debug: bool,
        key: usize,
        link: Box<super::h2::StreamLink>,
        w: &mut Worker<'_>,
    ) -> Conn {
        Conn::socketless((peer, local, listener, debug, key), w, |e| {
            e.stream = Some(link)
        })
    }

    /// The connection of a subrequest: no socket, its client's addresses, its request
    /// to come in `rbuf` (see `worker::sub`).
    pub(crate) fn sub(
        peer: SocketAddr,
        local: SocketAddr,
        listener: u16,
        debug: bool,
        key: usize,
        link: Box<super::sub::SubLink>,
        w: &mut Worker<'_>,
    ) -> Conn {
        Conn::socketless((peer, local, listener, debug, key), w, |e| {
            e.sub = Some(link)
        })
    }

    /// A connection without a socket for one request (a stream's, a subrequest's): its
    /// extension from the worker's spares, given its link by `link`.
    fn socketless(
        (peer, local, listener, debug, key): (SocketAddr, SocketAddr, u16, bool, usize),
        w: &mut Worker<'_>,
        link: impl FnOnce(&mut ConnExt),
    ) -> Conn {
        let mut ext = w.spare_exts.pop().unwrap_or_default();
        ext.local = Some(local);
        link(&mut ext);
        let mut c = Conn::with(Sock::Stream, Some(ext), peer, listener, key, debug, w);
        // One request, whose head is put into `rbuf` by whoever made it.
        c.close_after = true;
        c.keepalive_ms = 0;
        c.rd_ready = true;
        c.restat();
        c
    }

    /// Whether the connection ends with its response: asked to close, or an HTTP/2
    /// stream's or a subrequest's (one request each).
    fn ends_here(&self) -> bool {
        self.close_after || matches!(self.sock, Sock::Stream)
    }

    /// The client gave up on the request in progress (an HTTP/2 stream reset, or its
    /// connection gone): it is logged as nginx logs it, 499 when no response had begun,
    /// else its status and the body bytes sent so far.
    pub(crate) fn log_abort(&mut self, w: &mut Worker<'_>) {
        if self.req.is_none() {
            return;
        }
        if self.finished.status == 0 {
            self.finished.status = 499;
            self.finished.header_bytes = 0;
            self.finished.body_bytes = 0;
        } else {
            let body_in_wbuf = (self.wpos as u64).saturating_sub(self.finished.header_bytes);
            self.finished.body_bytes = body_in_wbuf + self.body_sent;
        }
        w.log_access(self);
        w.release_context(self.req.take());
    }

    /// Gives the buffers back to the pool.
    pub(crate) fn release(mut self, w: &mut Worker<'_>) {
        // (The figures of `stub_status` are given back by `Drop`, whichever way a
        // connection goes.)
        if let (Some(t), Some(sock)) = (
            self.ext.as_deref_mut().and_then(|e| e.tls.as_mut()),
            self.sock.tcp(),
        ) {
            t.close_notify(sock);
        }
        if self.proxy.is_some() {
            w.proxy_abort(&mut self);
        }
        w.release_context(self.req.take());
        w.pool.put(std::mem::take(&mut self.rbuf));
        w.pool.put(std::mem::take(&mut self.wbuf));
        // A stream's connection: its extension (and link) serve the next stream.
        if let (Sock::Stream, Some(ext)) = (&self.sock, self.ext.take()) {
            super::h2::recycle_ext(ext, w);
        }
    }

    /// Idle: waiting for the next request with nothing buffered (closed first on shutdown).
    pub(crate) fn is_idle(&self) -> bool {
        self.phase == Phase::Head && self.rbuf.is_empty() && matches!(self.sock, Sock::Tcp(_))
    }

    pub(crate) fn update_interest(&mut self, poll: &Poll, token: Token) {
        let want = match self.phase {
            Phase::Write => Interest::WRITABLE,
            // Proxying: the client is watched for writing only while output waits for it
            // (usually the proxy waits on the upstream socket, which has its own token).
            Phase::Proxy
                if self.wpos < self.wbuf.len()
                    || self.proxy.as_deref().is_some_and(|p| p.file_unsent()) =>
            {
                Interest::READABLE | Interest::WRITABLE
            }
            Phase::Proxy => Interest::READABLE,
            Phase::H2
                if self
                    .ext
                    .as_deref()
                    .and_then(|e| e.h2.as_deref())
                    .is_some_and(|s| s.wants_write()) =>
            {
                Interest::READABLE | Interest::WRITABLE
            }
            _ => Interest::READABLE,
        };
        // TLS records (a handshake's, or a response's tail) waiting for the socket.
        let want = if self.tls().is_some_and(|t| t.wants_write()) {
            want | Interest::WRITABLE
        } else {
            want
        };
        if want != self.interest {
            self.interest = want;
            if let Sock::Tcp(sock) = &mut self.sock {
                let _ = poll.registry().reregister(sock, token, want);
            }
        }
    }

    /// A deadline passed: log what nginx logs. Returns true when the caller must close the
    /// connection (a proxied request may instead move on to the next upstream or answer 504).
    pub(crate) fn on_timeout(&mut self, w: &mut Worker<'_>) -> bool {
        if self.phase == Phase::Proxy {
            let d = w.proxy_timeout(self);
            return self.after_drive(w, d);
        }
        let awaiting_proxy_header = matches!(
            self.ext.as_deref().and_then(|e| e.proxy_protocol.as_ref()),
            Some(ProxyHeader::Awaited)
        );
        match self.phase {
            Phase::Head if awaiting_proxy_header => {
                elog!(w.elog, Info, "client timed out (110: Connection timed out) while reading PROXY protocol, client: {}", self.peer.ip());
            }
            Phase::Head if self.rbuf.is_empty() && self.tls_handshaking() => {
                elog!(w.elog, Info, "client timed out (110: Connection timed out) while SSL handshaking, client: {}", self.peer.ip());
            }
            Phase::Head if !self.rbuf.is_empty() => {
                elog!(w.elog, Info, "client timed out (110: client_header_timeout) while reading client request headers, client: {}", self.peer.ip());
                // nginx answers 408 only in its logs; the connection is just closed.
            }
            Phase::Write => {
                elog!(w.elog, Info, "client timed out (110: send_timeout) while sending response to client, client: {}", self.peer.ip());
            }
            Phase::Discard => {
                elog!(w.elog, Info, "client timed out (110: client_body_timeout) while reading client request body, client: {}", self.peer.ip());
            }
            Phase::Head | Phase::Proxy | Phase::Linger | Phase::H2 | Phase::Delay => {}
        }
        true
    }

    /// Acts on what the proxy reported; true = close now.
    fn after_drive(&mut self, w: &mut Worker<'_>, d: super::proxy::Drive) -> bool {
        use super::proxy::Drive;
        match d {
            Drive::Blocked => false,
            Drive::Close => true,
            Drive::Finished => {
                if self.finish(w) && self.ends_here() {
                    return self.close_or_linger(w);
                }
                self.on_event(w, true, true)
            }
            Drive::Failed(code) => {
                self.answer_proxy_error(w, code);
                self.on_event(w, true, true)
            }
            Drive::Redirect => {
                self.answer_proxy_redirect(w);
                self.on_event(w, true, true)
            }
        }
    }

    /// Handles readiness. Returns true when the connection must be closed.
    pub(crate) fn on_event(
        &mut self,
        w: &mut Worker<'_>,
        _readable: bool,
        _writable: bool,
    ) -> bool {
        loop {
            match self.phase {
                Phase::Head => {
                    if let Some(status) = super::h2::take_refused(self) {
                        // A malformed HTTP/2 request (logged by its connection): 400, with
                        // error_page as for a head the parser refused.
                        let mut req = w.contexts.get();
                        req.head.refuse_body_and_keepalive();
                        self.answer(w, req, Some(status));
                        continue;
                    }
                    if self.served == 0 && self.alpn_h2() {
                        // The client chose HTTP/2 by ALPN: its preface is checked by the
                        // session (a wrong one is a connection error).
                        super::h2::start(self, w);
                        continue;
                    }
                    if self.served == 0
                        && !self.rbuf.is_empty()
                        && w.http2_plain(self)
                        && super::h2::preface_prefix(&self.rbuf)
                    {
                        {
                            if self.rbuf.len() >= crate::http2::frame::PREFACE.len() {
                                super::h2::start(self, w);
                                continue;
                            }
                            match self.fill(w) {
                                Fill::Data => continue,
                                Fill::WouldBlock => return false,
                                Fill::Closed => return true,
                            }
                        }
                    }
                    if !self.rbuf.is_empty() {
                        match self.try_request(w) {
                            Some(true) => continue,
                            Some(false) => return true,
                            None if self.rbuf.len()
                                >= w.head_limit(self.listener as usize).max(1024) =>
                            {
                                // Never wait for more than the limit allows (the parser
                                // reports an over-long head itself; this is a backstop).
                                self.set_head_len(self.rbuf.len());
                                self.answer_error(w, 400);
                                continue;
                            }
                            None => {}
                        }
                    }
                    match self.fill(w) {
                        Fill::Data => continue,
                        Fill::WouldBlock => return false,
                        Fill::Closed => return true,
                    }
                }
                Phase::Proxy => {
                    use super::proxy::Drive;
                    match w.drive(self) {
                        Drive::Blocked => return false,
                        Drive::Close => return true,
                        Drive::Finished => {
                            if self.finish(w) && self.ends_here() {
                                return self.close_or_linger(w);
                            }
                            continue;
                        }
                        Drive::Failed(code) => {
                            self.answer_proxy_error(w, code);
                            continue;
                        }
                        Drive::Redirect => {
                            self.answer_proxy_redirect(w);
                            continue;
                        }
                    }
                }
                Phase::Write => match self.flush(w) {
                    Some(true) => {
                        if self.finish(w) && self.ends_here() {
                            return self.close_or_linger(w);
                        }
                        continue;
                    }
                    Some(false) => return false,
                    None => return true,
                },
                Phase::Linger => return self.linger(w),
                Phase::Delay => {
                    if self
                        .req
                        .as_deref()
                        .is_some_and(|r| r.wake_at.is_some() || r.auth.waits())
                    {
                        // Still waiting; a client that went away ends the request (499).
                        if self.rd_hup {
                            self.log_abort(w);
                            return true;
                        }
                        return false;
                    }
                    self.resume_delayed(w);
                    continue;
                }
                Phase::H2 => {
                    // Frames are read here and taken by the session (`h2::session_event`).
                    if self.rbuf.len() >= super::h2::READ_AHEAD {
                        return false;
                    }
                    match self.fill(w) {
                        Fill::Data => continue,
                        Fill::WouldBlock => return false,
                        Fill::Closed => return true,
                    }
                }
                Phase::Discard => {
                    if let Some(close) = self.discard_body(w) {
                        if close {
                            return true;
                        }
                        continue;
                    }
                    match self.fill(w) {
                        Fill::Data => continue,
                        Fill::WouldBlock => return false,
                        Fill::Closed => return true,
                    }
                }
            }
        }
    }

    /// What the connection's PROXY protocol header said.
    pub(crate) fn proxy_info(&self) -> Option<&ProxyInfo> {
        match self.ext.as_deref()?.proxy_protocol.as_ref()? {
            ProxyHeader::Read(p) => Some(p),
            ProxyHeader::Awaited => None,
        }
    }

    /// The addresses the connection's PROXY protocol header named.
    pub(crate) fn proxy_addrs(&self) -> Option<crate::http::proxy_protocol::Addrs> {
        self.proxy_info()?.addrs
    }

    /// Reads the PROXY protocol header of a `listen … proxy_protocol` address: looked at
    /// without taking it from the socket until it is whole, then taken, so that what
    /// follows (a TLS handshake, a request) is read as on any connection. A broken header
    /// closes the connection, as nginx. `None`: read, go on.
    fn read_proxy_header(&mut self, w: &mut Worker<'_>) -> Option<Fill> {
        use crate::http::proxy_protocol::{parse, Parsed, MAX};
        if !self.rd_ready {
            return Some(Fill::WouldBlock);
        }
        let mut buf = [0u8; MAX];
        let Some(sock) = self.sock.tcp() else {
            return Some(Fill::Closed);
        };
        let n = loop {
            match sock.peek(&mut buf) {
                Ok(0) => return Some(Fill::Closed),
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.rd_ready = false;
                    return Some(Fill::WouldBlock);
                }
                Err(_) => return Some(Fill::Closed),
            }
        };
        let (len, addrs, tlvs) = match parse(&buf[..n]) {
            Parsed::Done { len, addrs, tlvs } => (len, addrs, tlvs),
            Parsed::Incomplete if !self.rd_hup => {
                // The rest arrives with the next readable event.
                self.rd_ready = false;
                return Some(Fill::WouldBlock);
            }
            // Cut short by the client's FIN, or not a header.
            bad => {
                let why = match bad {
                    Parsed::Invalid(why) => why,
                    _ => "broken header",
                };
                let shown: String = buf[..n.min(64)]
                    .iter()
                    .flat_map(|b| std::ascii::escape_default(*b))
                    .map(char::from)
                    .collect();
                elog!(
                    w.elog,
                    Error,
                    "{why}: \"{shown}\" while reading PROXY protocol, client: {}",
                    self.peer.ip()
                );
                return Some(Fill::Closed);
            }
        };
        // Take the header (the bytes are there: they were just looked at).
        let mut taken = 0;
        while taken < len {
            match (&mut &*sock).read(&mut buf[taken..len]) {
                Ok(0) => return Some(Fill::Closed),
                Ok(k) => taken += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Some(Fill::Closed),
            }
        }
        if let Some(e) = self.ext.as_deref_mut() {
            e.proxy_protocol = Some(ProxyHeader::Read(ProxyInfo {
                addrs,
                tlvs: buf.get(tlvs).unwrap_or_default().into(),
            }));
        }
        None
    }

    /// Reads what the socket has into `rbuf`, within the head limit.
    fn fill(&mut self, w: &mut Worker<'_>) -> Fill {
        if matches!(
            self.ext.as_deref().and_then(|e| e.proxy_protocol.as_ref()),
            Some(ProxyHeader::Awaited)
        ) {
            if let Some(f) = self.read_proxy_header(w) {
                return f;
            }
        }
        if let Some(super::tls::TlsState::Accepting(_)) = self.tls().map(|t| &t.state) {
            match self.tls_accept(w) {
                super::tls::Accept::Progress => {}
                super::tls::Accept::WouldBlock => return Fill::WouldBlock,
                super::tls::Accept::Close => return Fill::Closed,
            }
        }
        // TLS records waiting for the socket (a handshake flight larger than the socket's
        // buffer): a writable event brings the connection here, and they go first, since
        // the client may be waiting for them before it sends anything.
        if self.tls().is_some_and(|t| t.wants_write()) && self.flush_tls().is_none() {
            return Fill::Closed;
        }
        if !self.rd_ready && !self.tls().is_some_and(|t| t.has_plaintext()) {
            if self.rbuf.is_empty() && self.phase == Phase::Head {
                // Idle between requests: the buffers go back to the pool.
                w.pool.put(std::mem::take(&mut self.rbuf));
                w.pool.put(std::mem::take(&mut self.wbuf));
            }
            return Fill::WouldBlock;
        }
        if self.rbuf.capacity() == 0 {
            self.rbuf = w.pool.get();
        }
        let limit = w.head_limit(self.listener as usize).max(1024);
        if self.rbuf.len() >= limit && self.phase == Phase::Head {
            // The parser will report the over-long head; nothing more to read for it.
            return Fill::Data;
        }
        let old = self.rbuf.len();
        let want = if matches!(self.phase, Phase::Discard | Phase::H2) {
            16 * 1024
        } else {
            (limit - old).min(16 * 1024)
        };
        let handshaking = self.tls_handshaking();
        match self.read_client(want.max(1)) {
            Ok(0) => Fill::Closed,
            // A TLS protocol error (its alert is already sent), named as nginx names it.
            Err(e) if e.kind() == ErrorKind::InvalidData && self.tls().is_some() => {
                if handshaking {
                    elog!(
                        w.elog,
                        Info,
                        "SSL_do_handshake() failed ({e}) while SSL handshaking, client: {}",
                        self.peer.ip()
                    );
                } else {
                    elog!(
                        w.elog,
                        Info,
                        "SSL_read() failed ({e}) while reading client request, client: {}",
                        self.peer.ip()
                    );
                }
                Fill::Closed
            }
            Ok(_) => Fill::Data,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if self.rbuf.is_empty() && self.phase == Phase::Head {
                    // Idle between requests: the buffers go back to the pool.
                    w.pool.put(std::mem::take(&mut self.rbuf));
                    w.pool.put(std::mem::take(&mut self.wbuf));
                }
                Fill::WouldBlock
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Fill::Data,
            Err(e) => {
                if e.kind() != ErrorKind::ConnectionReset {
                    elog!(
                        w.elog,
                        Info,
                        "recv() failed ({e}) while reading client request, client: {}",
                        self.peer.ip(),
                        e = crate::log::OsError(&e)
                    );
                }
                Fill::Closed
            }
        }
    }

    /// Parses a head from `rbuf` and answers it. `Some(true)`: answered, go on;
    /// `Some(false)`: close now; `None`: need more bytes.
    fn try_request(&mut self, w: &mut Worker<'_>) -> Option<bool> {
        let limits = Limits {
            max_head: w.head_limit(self.listener as usize),
            max_uri: w.uri_limit(self.listener as usize),
            // A stream's head has the `Host`, `Cookie` and `Transfer-Encoding` lines made
            // from `:authority`, the cookie fields and a body without a length on top of
            // what its HTTP/2 connection counted.
            max_headers: w
                .default_settings(self.listener as usize)
                .map_or(1000, |s| {
                    s.max_headers as usize
                        + if matches!(self.sock, Sock::Stream) {
                            3
                        } else {
                            0
                        }
                }),
        };
        let mut req = self.req.take().unwrap_or_else(|| w.contexts.get());
        let parsed = parse_head(&self.rbuf, &limits, &mut req.head);
        match parsed {
            Ok(Parsed::Partial) => {
                w.release_context(Some(req));
                None
            }
            Ok(Parsed::Complete) => {
                self.set_head_len(req.head.head_len);
                self.answer(w, req, None);
                Some(true)
            }
            Err(e) => {
                elog!(
                    w.elog,
                    Info,
                    "client sent invalid request ({}), client: {}",
                    e.reason(),
                    self.peer.ip()
                );
                self.set_head_len(self.rbuf.len());
                // The client may still be sending what followed the refused head (its
                // body, the rest of a long line), whether or not it has arrived yet: the
                // close lingers for it, so that the answer is read instead of a reset.
                self.rd_ready = true;
                // As nginx: the request exists (with what of its head was understood), the
                // default server's error_page applies, and the connection closes after.
                req.head.refuse_body_and_keepalive();
                self.answer(w, req, Some(e.page_code()));
                Some(true)
            }
        }
    }

    /// Routes and answers the request whose head was parsed into `req`; with `error`, a
    /// request the parser refused, answered with that status through error_page.
    fn answer(&mut self, w: &mut Worker<'_>, mut req: Box<RequestCtx>, error: Option<u16>) {
        req.started = w.now_ms;
        if !super::sub::is_sub(self) {
            crate::shared::count(Stat::Requests, 1);
            // The request is being answered from here (what `stub_status` shows if the
            // answer is its own); `restat` takes over when the connection waits again.
            self.stat
                .replace(ConnStat::Writing)
                .moved(ConnStat::Writing);
        }
        // As nginx, a chunked body already malformed in what came with the head is a 400,
        // whatever the location would have answered (see `proxy::chunked_prefix_invalid`).
        let error = match error {
            None if req.head.chunked
                && super::proxy::chunked_prefix_invalid(
                    self.rbuf.get(self.head_len()..).unwrap_or_default(),
                ) =>
            {
                req.head.refuse_body_and_keepalive();
                Some(400)
            }
            e => e,
        };
        if self.wbuf.capacity() == 0 {
            self.wbuf = w.pool.get();
        }
        self.wbuf.clear();
        self.wpos = 0;
        self.body_sent = 0;
        let h = &req.head;
        let (chunked, content_length, keep_alive, expect_continue) =
            (h.chunked, h.content_length, h.keep_alive, h.expect_continue);
        // Body framing decides whether the connection can be reused.
        let max_body = w
            .default_settings(self.listener as usize)
            .map_or(0, |s| s.client_max_body_size);
        self.discard = if chunked {
            // A chunked body is read (and dropped) only up to client_max_body_size.
            Discard::Chunked(Box::new(if max_body > 0 {
                ChunkedDecoder::with_limit(max_body)
            } else {
                ChunkedDecoder::default()
            }))
        } else {
            match content_length {
                Some(n) if n > 0 => Discard::Length(n),
                _ => Discard::None,
            }
        };
        req.served = self.served;
        req.conn_started = self.started_ms;
        if super::sub::is_sub(self) {
            // A subrequest reaches internal locations (nginx's `r->internal`).
            req.subrequest = true;
            req.internal = true;
            req.slice = super::sub::link_of(self).and_then(|l| l.slice.take());
        }
        // The browser family only where keepalive_disable may ask for it.
        let (msie6, safari) = w.ua_for_keepalive;
        if safari || (msie6 && req.head.method == crate::http::request::Method::Post) {
            req.browser = crate::http::response::Browser::of(
                super::vars::header(&req.head, &self.rbuf, b"user-agent").unwrap_or_default(),
            );
        }
        let expect_unread = expect_continue && !matches!(self.discard, Discard::None);
        req.expect_unread = expect_unread;
        req.limits.can_delay = true;
        let out = w.handle_request(self, &mut req, error);
        req.limits.can_delay = false;
        let Some(req) = self.waits(w, req, &out) else {
            return;
        };
        self.answered(w, req, out, keep_alive, expect_unread);
    }

    /// Routing stopped to wait (a limit_req delay, the auth subrequest, auth_delay): the
    /// request waits for its wake-up (`resume_delayed`). Its location is recorded (a client
    /// that leaves meanwhile is logged there). `Some`: it did not stop.
    fn waits(
        &mut self,
        w: &Worker<'_>,
        req: Box<RequestCtx>,
        out: &super::request::Outcome,
    ) -> Option<Box<RequestCtx>> {
        if req.limits.resume.is_none() {
            return Some(req);
        }
        self.record(out);
        self.deadline = req.wake_at.unwrap_or(w.now) + Duration::from_secs(3600);
        self.req = Some(req);
        self.phase = Phase::Delay;
        None
    }

    /// A delayed request's wait is over: routing goes on (and may wait again), and the
    /// answer as in [`Self::answer`].
    fn resume_delayed(&mut self, w: &mut Worker<'_>) {
        let Some(mut req) = self.req.take() else {
            return;
        };
        let (keep_alive, expect_unread) = (req.head.keep_alive, req.expect_unread);
        req.limits.can_delay = true;
        let out = w.resume_delayed(self, &mut req);
        req.limits.can_delay = false;
        let Some(req) = self.waits(w, req, &out) else {
            return;
        };
        self.answered(w, req, out, keep_alive, expect_unread);
    }

    /// The rest of [`Self::answer`], once the handler gave its outcome.
    fn answered(
        &mut self,
        w: &mut Worker<'_>,
        mut req: Box<RequestCtx>,
        mut out: super::request::Outcome,
        keep_alive: bool,
        expect_unread: bool,
    ) {
        if !out.proxy {
            self.req = Some(req);
            w.filter_answer(self, &mut out);
            let Some(r) = self.req.take() else {
                return;
            };
            req = r;
            w.apply_trailers(self, &req, &mut out);
            if let Some(l) = out.location {
                w.resolve_limit_rate(self, &mut req, proton_ir::LocationId(l));
            }
        }
        // Only the head written now had to know (a proxy reads the body itself).
        req.expect_unread = false;
        let mirrors_read_body = req.mirror_body_wanted();
        self.req = Some(req);
        self.close_after = !keep_alive || out.close;
        if expect_unread && !out.proxy && mirrors_read_body {
            // Mirrors will read the body (nginx's mirror handler reads it before the content
            // handler): the go-ahead comes first, whatever the answer.
            self.wbuf.splice(0..0, CONTINUE.iter().copied());
        } else if expect_unread && !out.proxy {
            if out.status >= 300 {
                // As nginx: no 100 Continue before an error or a redirect; the body is not
                // waited for (the head said `Connection: close`).
                self.close_after = true;
            } else if !self.close_after {
                // As nginx: the go-ahead, then the answer; the body that follows is read
                // and dropped and the connection stays open.
                self.wbuf.splice(0..0, CONTINUE.iter().copied());
            }
        }
        self.record(&out);
        self.keepalive_ms = ms32(out.keepalive_ms);
        self.send_timeout_ms = ms32(out.send_timeout_ms);
        self.body_timeout_ms = ms32(out.body_timeout_ms);
        if let Some(p) = self.proxy.as_ref().filter(|_| out.proxy) {
            self.deadline = p.deadline;
            self.phase = Phase::Proxy;
            return;
        }
        self.phase = Phase::Write;
        self.deadline = w.now + Duration::from_millis(self.send_timeout_ms.into());
    }

    /// Records what answered the request, for its log line: status, location, the head's
    /// bytes (the body's are counted as they go).
    fn record(&mut self, out: &super::request::Outcome) {
        self.finished.status = out.status;
        self.finished.set_location(out.location);
        self.finished.header_bytes = out.header_bytes as u64;
        self.finished.body_bytes = 0;
    }

    /// A proxied request failed before the client saw anything: answer `status` (through
    /// error_page) as if the location had answered it.
    fn answer_proxy_error(&mut self, w: &mut Worker<'_>, status: u16) {
        self.wbuf.clear();
        self.wpos = 0;
        self.body_sent = 0;
        if self
            .req
            .as_deref()
            .is_some_and(|r| r.post_action || r.mirror_sub)
        {
            // A proxied post action or mirror failed: nothing to answer; the request is
            // over (and logged with that status, as nginx).
            self.finished.status = status;
            self.phase = Phase::Write;
            return;
        }
        let mut out = self.route_may_wait(w, |c, w| w.proxy_error(c, status));
        if self.phase == Phase::Delay {
            return;
        }
        if !out.proxy {
            w.filter_answer(self, &mut out);
        }
        if let (Some(l), false) = (out.location, out.proxy) {
            if let Some(mut req) = self.req.take() {
                // The error page goes out at the location's rate too, as any response.
                req.wake_at = None;
                w.resolve_limit_rate(self, &mut req, proton_ir::LocationId(l));
                self.req = Some(req);
            }
        }
        self.close_after |= out.close;
        self.record(&out);
        // `error_page 502 = /fallback;` whose location proxies: that proxy answers.
        if let Some(p) = self.proxy.as_ref().filter(|_| out.proxy) {
            self.deadline = p.deadline;
            self.phase = Phase::Proxy;
            return;
        }
        self.phase = Phase::Write;
        self.deadline = w.now + Duration::from_millis(self.send_timeout_ms.into());
    }

    /// Routes the request again after its upstream answered (`route`: an error_page, an
    /// `X-Accel-Redirect`), where it may stop to wait as on its first routing (the auth
    /// subrequest, `auth_delay`, a `limit_req` delay): then the connection is left in
    /// `Phase::Delay` and routing resumes there (`resume_delayed`).
    fn route_may_wait(
        &mut self,
        w: &mut Worker<'_>,
        route: impl FnOnce(&mut Conn, &mut Worker<'_>) -> super::request::Outcome,
    ) -> super::request::Outcome {
        if let Some(r) = self.req.as_deref_mut() {
            r.limits.can_delay = true;
        }
        let out = route(self, w);
        let Some(mut req) = self.req.take() else {
            return out;
        };
        req.limits.can_delay = false;
        if let Some(req) = self.waits(w, req, &out) {
            self.req = Some(req);
        }
        out
    }

    /// The upstream answered with `X-Accel-Redirect`: the request goes to the URI or named
    /// location it names (see `Worker::proxy_xar`), which answers as for any request (and
    /// may proxy again).
    fn answer_proxy_redirect(&mut self, w: &mut Worker<'_>) {
        self.wbuf.clear();
        self.wpos = 0;
        self.body_sent = 0;
        let mut out = self.route_may_wait(w, |c, w| w.proxy_xar(c));
        if self.phase == Phase::Delay {
            return;
        }
        if !out.proxy {
            w.filter_answer(self, &mut out);
        }
        if let Some(mut req) = self.req.take() {
            if !out.proxy {
                w.apply_trailers(self, &req, &mut out);
                if let Some(l) = out.location {
                    req.wake_at = None;
                    w.resolve_limit_rate(self, &mut req, proton_ir::LocationId(l));
                }
            }
            self.req = Some(req);
        }
        self.close_after |= out.close;
        self.record(&out);
        if let Some(p) = self.proxy.as_ref().filter(|_| out.proxy) {
            self.deadline = p.deadline;
            self.phase = Phase::Proxy;
            return;
        }
        self.phase = Phase::Write;
        self.deadline = w.now + Duration::from_millis(self.send_timeout_ms.into());
    }

    /// Runs the `post_action` of the request just answered (see `Worker::post_action`):
    /// whatever it writes is dropped, and the connection's keep-alive stays as the response
    /// said. As nginx, the request's log line then has the post action's status, location
    /// and `$uri`, with the bytes of the response sent. True when it is proxied and now in
    /// flight.
    fn post_action(&mut self, w: &mut Worker<'_>) -> bool {
        let Some(mut req) = self.req.take_if(|r| w.post_action_of(r).is_some()) else {
            return false;
        };
        // The response as sent stays in `wbuf` for the log line (`$sent_http_*`); the post
        // action writes into a buffer of the pool, thrown away.
        let sent = std::mem::replace(&mut self.wbuf, w.pool.get());
        let sent_pos = std::mem::replace(&mut self.wpos, 0);
        let close_after = self.close_after;
        let out = w.post_action(self, &mut req);
        self.req = Some(req);
        self.close_after = close_after;
        // Output of a static file, a `return` or an error page goes nowhere.
        self.file = None;
        let proxied = matches!(&out, Some(o) if o.proxy) && self.proxy.is_some();
        if !proxied {
            let mut scratch = std::mem::replace(&mut self.wbuf, sent);
            self.wpos = sent_pos;
            scratch.clear();
            w.pool.put(scratch);
        } else {
            // The proxy reads the answer into `wbuf` and drops it there.
            self.wbuf.clear();
            w.pool.put(sent);
        }
        let Some(out) = out else {
            return false;
        };
        self.finished.set_location(out.location);
        match self.proxy.as_ref() {
            Some(p) if out.proxy => {
                self.deadline = p.deadline;
                self.phase = Phase::Proxy;
                true
            }
            _ => {
                self.finished.status = out.status;
                false
            }
        }
    }

    /// Runs the request's pending mirror subrequests, one after another, once its response
    /// is out and logged (see `Worker::start_mirror`): each one's output is thrown away and
    /// the connection then goes on as the main response said. True when a proxied mirror
    /// is now in flight ([`Phase::Proxy`]): `finish` comes back here when it ends.
    fn mirror(&mut self, w: &mut Worker<'_>) -> bool {
        let Some(mut req) = self
            .req
            .take_if(|r| !r.mirrors.is_empty() || r.cache_update.is_some() || r.cache_updater)
        else {
            return false;
        };
        if req.cache_updater {
            // The cache's background update just ended: nothing more runs.
            req.cache_updater = false;
        } else if req.mirror_sub {
            // The one that just ended.
            if !req.mirrors.is_empty() {
                req.mirrors.remove(0);
            }
        } else {
            req.main_finished = Some(self.finished);
        }
        let close_after = self.close_after;
        while !req.mirrors.is_empty() {
            self.wbuf.clear();
            self.wpos = 0;
            self.body_sent = 0;
            let out = w.start_mirror(self, &mut req);
            self.close_after = close_after;
            // Output of a static file, a `return` or an error page goes nowhere.
            self.file = None;
            self.wbuf.clear();
            self.wpos = 0;
            let Some(out) = out else {
                req.mirrors.remove(0);
                continue;
            };
            self.finished = Finished::default();
            self.finished.status = out.status;
            self.finished.set_location(out.location);
            if let Some(p) = self.proxy.as_ref().filter(|_| out.proxy) {
                self.deadline = p.deadline;
                self.phase = Phase::Proxy;
                self.req = Some(req);
                return true;
            }
            self.req = Some(req);
            w.log_access(self);
            let Some(r) = self.req.take() else {
                return false;
            };
            req = r;
            req.mirrors.remove(0);
        }
        // The cache's background update, last (proxy_cache_background_update).
        if let Some(loc) = req.cache_update.take() {
            self.wbuf.clear();
            self.wpos = 0;
            self.body_sent = 0;
            let out = w.start_cache_update(self, &mut req, loc);
            self.close_after = close_after;
            self.file = None;
            self.wbuf.clear();
            self.wpos = 0;
            let proxied = out.as_ref().is_some_and(|o| o.proxy);
            if let Some(p) = self.proxy.as_ref().filter(|_| proxied) {
                if let Some(out) = out {
                    self.finished = Finished::default();
                    self.finished.status = out.status;
                    self.finished.set_location(out.location);
                }
                self.deadline = p.deadline;
                self.phase = Phase::Proxy;
                self.req = Some(req);
                return true;
            }
            req.cache_updater = false;
        }
        if let Some(f) = req.main_finished.take() {
            self.finished = f;
        }
        self.req = Some(req);
        false
    }

    /// Answers a malformed request: nginx's error page, then close.
    fn answer_error(&mut self, w: &mut Worker<'_>, status: u16) {
        // Even a request that could not be parsed has a context, for its log line.
        let mut req = self.req.take().unwrap_or_else(|| w.contexts.get());
        req.started = w.now_ms;
        self.req = Some(req);
        if self.wbuf.capacity() == 0 {
            self.wbuf = w.pool.get();
        }
        self.wbuf.clear();
        self.wpos = 0;
        self.body_sent = 0;
        self.discard = Discard::None;
        let hb = respond::error_response(
            w,
            &mut self.wbuf,
            status,
            false,
            true,
            &respond::PageExtras::default(),
        );
        self.finished = Finished {
            status,
            header_bytes: hb as u64,
            body_bytes: 0,
            loc: None,
        };
        self.close_after = true;
        self.phase = Phase::Write;
        self.deadline = w.now + Duration::from_secs(10);
    }

    /// `limit_rate`: how many bytes may go out now (`usize::MAX`: no limit). `None`: none
    /// yet; the connection is then woken when some may, and its send timeout counts from
    /// then.
    fn rate_allowance(&mut self, w: &mut Worker<'_>) -> Option<usize> {
        let sent = self.wpos as u64 + self.body_sent;
        match rate_allowance(self.req.as_deref_mut(), sent, (self.key, self.number), w) {
            Ok(n) => Some(n),
            Err(at) => {
                self.deadline = at + Duration::from_millis(self.send_timeout_ms.into());
                None
            }
        }
    }

    /// Writes `wbuf`, then the file. `Some(true)` done, `Some(false)` would block,
    /// `None` error.
    fn flush(&mut self, w: &mut Worker<'_>) -> Option<bool> {
        let Some(mut allowance) = self.rate_allowance(w) else {
            return Some(false);
        };
        // (Not over TLS: the file is copied through rustls, never sent with sendfile, so
        // nothing would take the cork off.)
        if self.wpos == 0
            && self.tls().is_none()
            && self.file.as_ref().is_some_and(|f| f.nopush && f.sendfile)
        {
            if let Some(sock) = self.sock.tcp() {
                let _ = socket2::SockRef::from(sock).set_cork(true);
            }
        }
        // The last bytes before a close: MSG_MORE holds them until close() so the response
        // and the FIN leave in one segment. Only for a well-formed request after which the
        // socket was drained (the client asked to close and sent nothing more), since a
        // close with unread input resets the connection and would drop queued output.
        let last = self.close_after
            && self.file.is_none()
            && matches!(self.discard, Discard::None)
            && self.rbuf.len() <= self.head_len()
            && !self.rd_ready
            && self.finished.status < 400;
        // A head followed by a sendfile body: MSG_MORE lets the head share the first
        // segment with the file's first bytes (the sendfile call right after pushes it).
        // (Not under limit_rate: held bytes would wait for the next, delayed, write.)
        let more = allowance == usize::MAX
            && self.can_sendfile()
            && (last
                || self
                    .file
                    .as_ref()
                    .is_some_and(|f| f.sendfile && !f.nopush && f.offset < f.end));
        // A coded file (gzip) is read and coded into `wbuf` a piece at a time.
        while self.wpos < self.wbuf.len() || self.refill_coded(w)? {
            if allowance == 0 {
                match self.rate_allowance(w) {
                    Some(n) => allowance = n,
                    None => return Some(false),
                }
            }
            let end = self.wpos.saturating_add(allowance).min(self.wbuf.len());
            let sent = if let (true, Some(sock)) = (more, self.sock.tcp()) {
                socket2::SockRef::from(sock)
                    .send_with_flags(&self.wbuf[self.wpos..end], nix::libc::MSG_MORE)
            } else {
                self.write_client(end)
            };
            match sent {
                Ok(0) => return None,
                Ok(n) => {
                    self.wpos += n;
                    allowance = allowance.saturating_sub(n);
                    self.deadline = w.now + Duration::from_millis(self.send_timeout_ms.into());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Some(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    if !matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) {
                        elog!(
                            w.elog,
                            Info,
                            "writev() failed ({e}) while sending response to client, client: {}",
                            self.peer.ip(),
                            e = crate::log::OsError(&e)
                        );
                    }
                    return None;
                }
            }
        }
        // A body that waits (SSI, addition: see `worker::ssi`) goes on when what it waits
        // for is done; the connection is woken then.
        if self
            .req
            .as_deref()
            .and_then(|r| r.coder.as_deref())
            .is_some_and(|c| !c.ended && !c.failed)
        {
            return Some(false);
        }
        // Over TLS the file is encrypted in user space (on an HTTP/2 stream framed), so it
        // is read and written.
        if self.file.as_ref().is_some_and(|f| !f.sendfile) || !self.can_sendfile() {
            return match self.copy_file(w, allowance) {
                Some(true) => self.flush_tls(),
                other => other,
            };
        }
        // sendfile_max_chunk: what this call may send before the worker's other connections
        // go first (this one is woken in the next round of the event loop).
        let mut chunk_left = match self.req.as_deref().map_or(0, |r| r.sendfile_max_chunk) {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        while self.file.as_ref().is_some_and(|f| f.offset < f.end) {
            if allowance == 0 {
                match self.rate_allowance(w) {
                    Some(n) => allowance = n,
                    None => return Some(false),
                }
            }
            if chunk_left == 0 {
                if let Some(req) = self.req.as_deref_mut() {
                    // Just after this round's clock: due in the next round.
                    let next_round = w.now + Duration::from_nanos(1);
                    wake_at(req, (self.key, self.number), next_round, w);
                    return Some(false);
                }
                chunk_left = usize::MAX;
            }
            if let Some(f) = self.file.as_mut() {
                let count = ((f.end - f.offset) as usize)
                    .min(1 << 30)
                    .min(allowance)
                    .min(chunk_left);
                let mut off = f.offset;
                let sock = self.sock.tcp()?;
                match nix::sys::sendfile::sendfile64(
                    sock.as_fd(),
                    f.file.as_fd(),
                    Some(&mut off),
                    count,
                ) {
                    Ok(0) => return self.file_truncated(w),
                    Ok(n) => {
                        f.offset = off;
                        self.body_sent += n as u64;
                        allowance = allowance.saturating_sub(n);
                        chunk_left = chunk_left.saturating_sub(n);
                        self.deadline = w.now + Duration::from_millis(self.send_timeout_ms.into());
                    }
                    Err(nix::errno::Errno::EAGAIN) => return Some(false),
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => {
                        if !matches!(e, nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET) {
                            elog!(w.elog, Info, "sendfile() failed ({e}) while sending response to client, client: {}", self.peer.ip(), e = crate::log::OsError(&std::io::Error::from(e)));
                        }
                        return None;
                    }
                }
            }
        }
        if let Some(f) = self.file.take() {
            if let (true, Some(sock)) = (f.nopush, self.sock.tcp()) {
                let _ = socket2::SockRef::from(sock).set_cork(false);
            }
        }
        self.flush_tls()
    }

    /// Once `wbuf` is out: the next piece of a file whose body is coded (gzip), read,
    /// coded and framed into `wbuf`. `Some(true)`: there is more to write; `Some(false)`:
    /// nothing is coded here (or all is out); `None`: the file failed (the response is cut
    /// short).
    fn refill_coded(&mut self, w: &mut Worker<'_>) -> Option<bool> {
        let Some(req) = self.req.as_deref_mut() else {
            return Some(false);
        };
        let Some(coder) = req.coder.as_deref_mut() else {
            return Some(false);
        };
        if coder.ended || self.wpos < self.wbuf.len() {
            return Some(false);
        }
        // The head leaves the buffer now: kept for the log line's `$sent_http_*`.
        if self.body_sent == 0 {
            let n = usize::try_from(self.finished.header_bytes).unwrap_or(0);
            if let Some(head) = self.wbuf.get(..n) {
                req.sent_head.clear();
                req.sent_head.extend_from_slice(head);
            }
        }
        // What went out is counted (the head among it: see `finish`).
        self.body_sent += self.wbuf.len() as u64;
        self.wbuf.clear();
        self.wpos = 0;
        let mut buf = std::mem::take(&mut w.copy_buf);
        if buf.len() < 32 * 1024 {
            buf.resize(32 * 1024, 0);
        }
        let mut failed = false;
        // Until the coder gives something out (deflate may hold small pieces back), or
        // waits (SSI, addition).
        while self.wbuf.is_empty() && !coder.ended && !coder.paused() {
            if coder.holds_input() {
                // gunzip stopped at its output bound: more of what it holds, now that
                // the client took the last.
                if coder.resume(&mut self.wbuf).is_err() {
                    failed = true;
                    break;
                }
                continue;
            }
            let Some(f) = self.file.as_mut() else {
                let _ = coder.end(true, &mut self.wbuf);
                break;
            };
            if f.offset >= f.end {
                self.file = None;
                continue;
            }
            let want = ((f.end - f.offset) as usize).min(buf.len());
            match read_piece(&w.elog, self.peer, f, &mut buf[..want]) {
                Some(0) => {
                    log_truncated(&w.elog, self.peer);
                    failed = true;
                    break;
                }
                Some(n) => {
                    f.offset += n as i64;
                    if coder.code(&buf[..n], false, &mut self.wbuf).is_err() {
                        failed = true;
                        break;
                    }
                }
                None => {
                    failed = true;
                    break;
                }
            }
        }
        w.copy_buf = buf;
        if failed {
            self.file = None;
            // What is coded so far goes out; the connection then closes (a short body).
            self.close_after = true;
            if self.wbuf.is_empty() {
                return None;
            }
        }
        Some(!self.wbuf.is_empty())
    }

    /// Writes `wbuf[wpos..end]` to the client (as TLS records on a TLS address): how much
    /// was taken. Handlers that write outside [`Conn::flush`] (the proxy) go through here
    /// and the three methods below, never to the socket itself.
    pub(crate) fn write_client(&mut self, end: usize) -> std::io::Result<usize> {
        let end = end.min(self.wbuf.len());
        let data = &self.wbuf[self.wpos.min(end)..end];
        match &self.sock {
            Sock::Tcp(sock) => super::tls::client_write(sock, tls_mut(&mut self.ext), data),
            Sock::Stream => virtual_write(&mut self.ext, data),
        }
    }

    /// Writes `data` to the client: an interim head (`100 Continue`) ahead of the
    /// response, a piece of a file read here.
    pub(crate) fn write_bytes(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match &self.sock {
            Sock::Tcp(sock) => super::tls::client_write(sock, tls_mut(&mut self.ext), data),
            Sock::Stream => virtual_write(&mut self.ext, data),
        }
    }

    /// Reads at most `want` bytes of the client's request onto `rbuf`; `Ok(0)`: the client
    /// closed.
    pub(crate) fn read_client(&mut self, want: usize) -> std::io::Result<usize> {
        match &self.sock {
            Sock::Tcp(sock) => super::tls::client_read(
                sock,
                tls_mut(&mut self.ext),
                &mut self.rd_ready,
                self.rd_hup,
                &mut self.rbuf,
                want,
            ),
            // A stream's request bytes are put into `rbuf` by its HTTP/2 connection (a
            // subrequest's by its parent).
            Sock::Stream => {
                self.rd_ready = false;
                Err(ErrorKind::WouldBlock.into())
            }
        }
    }

    /// Whether file bytes can go to the client straight from the kernel (a plain socket:
    /// over TLS they are encrypted here).
    pub(crate) fn can_sendfile(&self) -> bool {
        self.tls().is_none() && matches!(self.sock, Sock::Tcp(_))
    }

    /// Sends `count` bytes of `file` from `*off` with sendfile (see [`Conn::can_sendfile`]).
    pub(crate) fn sendfile_from(
        &self,
        file: &std::fs::File,
        off: &mut i64,
        count: usize,
    ) -> nix::Result<usize> {
        match &self.sock {
            Sock::Tcp(sock) => {
                nix::sys::sendfile::sendfile64(sock.as_fd(), file.as_fd(), Some(off), count)
            }
            Sock::Stream => Err(nix::errno::Errno::EINVAL),
        }
    }

    /// Sends the TLS records still waiting: `Some(true)` none left, `Some(false)` would
    /// block, `None` error.
    pub(crate) fn flush_tls(&mut self) -> Option<bool> {
        match &self.sock {
            Sock::Tcp(sock) => super::tls::client_flush(sock, tls_mut(&mut self.ext)).ok(),
            Sock::Stream => Some(true),
        }
    }

    /// The file shrank under a transfer: nothing more can be sent and the response is
    /// short, so the connection cannot be reused (the caller closes it).
    fn file_truncated(&mut self, w: &mut Worker<'_>) -> Option<bool> {
        log_truncated(&w.elog, self.peer);
        self.file = None;
        None
    }

    /// `sendfile off`: the file body through the worker's bounce buffer (pread + write).
    fn copy_file(&mut self, w: &mut Worker<'_>, mut allowance: usize) -> Option<bool> {
        // The worker's copy buffer: zeroed once, reused for every file.
        let mut buf = std::mem::take(&mut w.copy_buf);
        if buf.len() < 32 * 1024 {
            buf.resize(32 * 1024, 0);
        }
        let result = loop {
            let Some(f) = self.file.as_mut() else {
                break Some(true);
            };
            if f.offset >= f.end {
                self.file = None;
                break Some(true);
            }
            if allowance == 0 {
                match self.rate_allowance(w) {
                    Some(n) => allowance = n,
                    None => break Some(false),
                }
            }
            let Some(f) = self.file.as_mut() else {
                break Some(true);
            };
            let want = ((f.end - f.offset) as usize).min(buf.len()).min(allowance);
            let n = match read_piece(&w.elog, self.peer, f, &mut buf[..want]) {
                Some(0) => break self.file_truncated(w),
                Some(n) => n,
                None => {
                    self.file = None;
                    break None;
                }
            };
            match self.write_bytes(&buf[..n]) {
                Ok(0) => break None,
                Ok(k) => {
                    if let Some(f) = self.file.as_mut() {
                        f.offset += k as i64;
                    }
                    self.body_sent += k as u64;
                    allowance = allowance.saturating_sub(k);
                    self.deadline = w.now + Duration::from_millis(self.send_timeout_ms.into());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Some(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break None,
            }
        };
        w.copy_buf = buf;
        result
    }

    /// The response is out: run the location's `post_action` if it has one, log the
    /// request, drop the head from `rbuf`, move on. Returns false when a proxied post action
    /// is now in flight ([`Phase::Proxy`]): the request is over once it finishes.
    fn finish(&mut self, w: &mut Worker<'_>) -> bool {
        if let Some(req) = self.req.as_deref_mut() {
            w.end_coding(req);
        }
        if !self
            .req
            .as_deref()
            .is_some_and(|r| r.post_action || r.mirror_sub)
        {
            // (A coded file's earlier buffers, the head among them, are in `body_sent`.)
            self.finished.body_bytes = (self.wbuf.len() as u64 + self.body_sent)
                .saturating_sub(self.finished.header_bytes);
            if self.post_action(w) {
                return false;
            }
        }
        // An auth subrequest's `auth_request_set` values are taken from it now.
        w.auth_sub_finishing(self);
        w.log_access(self);
        if self.mirror(w) {
            return false;
        }
        // An HTTP/2 stream's response may still wait for the window: its limit_conn
        // counts stay held with the stream until the last byte is sent.
        if let (Some(req), Some(link)) = (
            self.req.as_deref_mut(),
            self.ext
                .as_deref_mut()
                .and_then(|e| e.stream.as_deref_mut()),
        ) {
            link.hold = req.limits.take_held();
        }
        w.release_context(self.req.take());
        self.served += 1;
        // TCP_NODELAY is set when the connection is first kept alive, by the `tcp_nodelay`
        // of the location that answered, as nginx does: a connection that closes after one
        // response never needs it.
        if self.served == 1 && !self.close_after {
            let nodelay = match self.finished.location() {
                Some(l) => w.settings_for(proton_ir::LocationId(l)).tcp_nodelay,
                None => w
                    .default_settings(self.listener as usize)
                    .is_none_or(|s| s.tcp_nodelay),
            };
            if let (true, Some(sock)) = (nodelay, self.sock.tcp()) {
                let _ = sock.set_nodelay(true);
            }
        }
        let consumed = self.head_len().min(self.rbuf.len());
        self.rbuf.drain(..consumed);
        self.set_head_len(0);
        self.wbuf.clear();
        self.wpos = 0;
        self.phase = if matches!(self.discard, Discard::None) {
            self.deadline = w.now + Duration::from_millis(self.keepalive_ms.into());
            Phase::Head
        } else {
            self.deadline = w.now + Duration::from_millis(self.body_timeout_ms.into());
            Phase::Discard
        };
        true
    }

    /// The response is out and the connection must close. If the client may still be
    /// sending (unread input, a body not read, a socket with bytes), closing now would make
    /// the kernel answer with a reset that can destroy the response before the client read
    /// it; so, as nginx's `lingering_close on`, shut the write side and read and drop input
    /// for up to `lingering_time`, waiting at most `lingering_timeout` for each piece.
    /// Returns true to close now, false when lingering started.
    pub(crate) fn close_or_linger(&mut self, w: &mut Worker<'_>) -> bool {
        let Sock::Tcp(sock) = &self.sock else {
            // An HTTP/2 stream ends with its response.
            return true;
        };
        let loc = self.finished.location().map(proton_ir::LocationId);
        let s = match loc {
            Some(l) => w.settings_for(l),
            None => match w.default_settings(self.listener as usize) {
                Some(s) => s,
                None => return true,
            },
        };
        let pending =
            !self.rbuf.is_empty() || !matches!(self.discard, Discard::None) || self.rd_ready;
        let linger = match s.lingering_close {
            proton_ir::LingeringClose::Off => false,
            proton_ir::LingeringClose::On => pending && !self.rd_hup,
            proton_ir::LingeringClose::Always => !self.rd_hup,
        };
        if !linger || s.lingering_time_ms == 0 {
            return true;
        }
        if let Some(e) = self.ext.as_deref_mut() {
            if let Some(t) = e.tls.as_mut() {
                t.close_notify(sock);
            }
            e.tls = None;
        }
        if sock.shutdown(std::net::Shutdown::Write).is_err() {
            return true;
        }
        self.keepalive_ms = w
            .now_ms
            .wrapping_add(ms32(s.lingering_time_ms).min(u32::MAX / 2));
        self.discard = Discard::None;
        self.rbuf.clear();
        self.phase = Phase::Linger;
        self.linger(w)
    }

    /// Reads and drops what the client sends while lingering; true = close now.
    fn linger(&mut self, w: &mut Worker<'_>) -> bool {
        let left = self.keepalive_ms.wrapping_sub(w.now_ms);
        if left == 0 || left > u32::MAX / 2 {
            return true;
        }
        if self.rbuf.capacity() == 0 {
            self.rbuf = w.pool.get();
        }
        // Bounded, so a client that never stops sending cannot hold the loop: past 4 MB in
        // one round the connection is closed.
        for _ in 0..256 {
            self.rbuf.clear();
            let Some(sock) = self.sock.tcp() else {
                return true;
            };
            match read_ready(
                sock,
                &mut self.rd_ready,
                self.rd_hup,
                &mut self.rbuf,
                16 * 1024,
            ) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.rbuf.clear();
                    let timeout = match self.finished.location() {
                        Some(l) => {
                            w.settings_for(proton_ir::LocationId(l))
                                .lingering_timeout_ms
                        }
                        None => w
                            .default_settings(self.listener as usize)
                            .map_or(5_000, |s| s.lingering_timeout_ms),
                    };
                    let wait = left.min(ms32(timeout).max(1));
                    self.deadline = w.now + Duration::from_millis(wait.into());
                    return false;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
        true
    }

    /// Drops body bytes from `rbuf`. `Some(false)`: body done; `Some(true)`: close (bad
    /// framing); `None`: need more bytes.
    fn discard_body(&mut self, w: &mut Worker<'_>) -> Option<bool> {
        match &mut self.discard {
            Discard::None => {
                self.phase = Phase::Head;
                Some(false)
            }
            Discard::Length(left) => {
                let take = (*left).min(self.rbuf.len() as u64) as usize;
                self.rbuf.drain(..take);
                *left -= take as u64;
                if *left == 0 {
                    self.discard = Discard::None;
                    self.phase = Phase::Head;
                    self.deadline = w.now + Duration::from_millis(self.keepalive_ms.into());
                    return Some(false);
                }
                None
            }
            Discard::Chunked(dec) => {
                if self.rbuf.is_empty() {
                    return None;
                }
                match dec.decode(&self.rbuf) {
                    Ok(step) => {
                        self.rbuf.drain(..step.consumed.min(self.rbuf.len()));
                        if step.done {
                            self.discard = Discard::None;
                            self.phase = Phase::Head;
                            self.deadline = w.now + Duration::from_millis(self.keepalive_ms.into());
                            return Some(false);
                        }
                        if step.consumed == 0 {
                            return None;
                        }
                        Some(false)
                    }
                    Err(e) => {
                        elog!(
                            w.elog,
                            Info,
                            "client sent invalid chunked body ({}), client: {}",
                            e.reason(),
                            self.peer.ip()
                        );
                        Some(true)
                    }
                }
            }
        }
    }
}
/// nginx's write-filter arithmetic for `limit_rate`: `rate × (seconds since the request
/// started + 1) + limit_rate_after − bytes sent` may go out now (`Ok`, `usize::MAX` when there
/// is no limit); when nothing may, the connection (`conn`: its slab key and serial number) is
/// queued to be woken when something
/// may (`Err`: then).
/// Reads the next piece of a file body into `buf` (pread at its offset): how many bytes
/// (0: the file ended early); `None`: the read failed (logged at `crit`, as nginx).
fn read_piece(
    elog: &crate::log::ErrorLog,
    peer: SocketAddr,
    f: &FileBody,
    buf: &mut [u8],
) -> Option<usize> {
    use std::os::unix::fs::FileExt;
    loop {
        match f.file.read_at(buf, f.offset as u64) {
            Ok(n) => return Some(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                elog!(
                    elog,
                    Crit,
                    "pread() failed ({e}) while sending a file, client: {}",
                    peer.ip(),
                    e = crate::log::OsError(&e)
                );
                return None;
            }
        }
    }
}

/// The file shrank under a transfer (logged at `crit`, as nginx).
fn log_truncated(elog: &crate::log::ErrorLog, peer: SocketAddr) {
    elog!(
        elog,
        Crit,
        "file was truncated while being sent, client: {}",
        peer.ip()
    );
}

pub(crate) fn rate_allowance(
    req: Option<&mut RequestCtx>,
    sent: u64,
    conn: (u32, u32),
    w: &mut Worker<'_>,
) -> Result<usize, Instant> {
    let rate = req.as_ref().and_then(|r| r.limit_rate).unwrap_or(0);
    let Some(req) = req.filter(|_| rate > 0) else {
        return Ok(usize::MAX);
    };
    let after = req.limit_rate_after.unwrap_or(0);
    let elapsed = u64::from(w.now_ms.wrapping_sub(req.started));
    let allowed = (rate.saturating_mul(elapsed.saturating_add(1000)) / 1000).saturating_add(after);
    if sent < allowed {
        return Ok(usize::try_from(allowed - sent).unwrap_or(usize::MAX));
    }
    // Woken when a useful amount may go (a tenth of a second's worth, at most 64 KiB),
    // not for every few bytes.
    let chunk = (rate / 10).clamp(1, 64 * 1024);
    let wait = (sent - allowed).saturating_add(chunk).saturating_mul(1000) / rate + 1;
    let at = w.now + Duration::from_millis(wait);
    wake_at(req, conn, at, w);
    Err(at)
}

/// Queues a wake-up of connection `conn` (slab key and serial number) for its request `req`
/// at `at` (the event loop drives it then, with no socket event needed). One wake-up is
/// queued per request: an earlier one already queued will do.
pub(crate) fn wake_at(req: &mut RequestCtx, conn: (u32, u32), at: Instant, w: &mut Worker<'_>) {
    if req.wake_at.is_none_or(|q| at < q) {
        req.wake_at = Some(at);
        let (key, number) = conn;
        w.delayed
            .push(std::cmp::Reverse((at, key as usize, number)));
    }
}

#[cfg(test)]
mod tests {
    /// An idle keep-alive connection costs its slab entry and nothing else (no buffers), so
    /// this size is most of bench (f)'s bytes per idle connection (goal: half of nginx's
    /// 526 B). Box rare state rather than growing it.
    #[test]
    fn an_idle_connection_stays_small() {
        // mio's sockets carry a selector id in debug builds only (`IoSource::selector_id`,
        // one word): the bound is on the release layout.
        let debug_only = if cfg!(debug_assertions) {
            std::mem::size_of::<usize>()
        } else {
            0
        };
        let size = std::mem::size_of::<super::Conn>() - debug_only;
        assert!(size <= 256, "Conn is {size} bytes (release layout)");
    }
}
