//! The reverse proxy: `proxy_pass` to an upstream group, inside the worker's event loop.
//!
//! A proxied request is a second state machine hung off the client connection
//! ([`Proxy`], in `Conn::proxy`): `Connect` (non-blocking connect, bounded by
//! proxy_connect_timeout) → `Send` (the request head, then the body streamed from the
//! client) → `Head` (the response head, parsed as strictly as a client's request) → `Body`
//! (streamed to the client with backpressure: the upstream is read only while the client
//! buffer has room) or `Tunnel` (after a `101`, bytes both ways until either side closes).
//!
//! Upstream sockets live in the worker's own slab ([`Upstreams`]) with tokens above
//! [`UP_BASE`]; each knows the client connection that owns it, or none while it waits in the
//! keep-alive cache. A cached connection is not re-registered when it changes hands.
//!
//! Failures follow nginx: connect errors, resets and malformed heads are `error` /
//! `invalid_header`, deadlines are `timeout`; `proxy_next_upstream` decides whether the
//! request moves to the next server (never once the client has seen a byte, never for a
//! non-idempotent request already sent unless `non_idempotent`, never when the request
//! body was larger than what is kept for a replay). Otherwise 502 (504 for timeouts)
//! through error_page.

use super::conn::Conn;
use super::context::{RequestCtx, UpPeer, UpState};
use super::request::Handled;
use super::tls::{client_flush, client_read, client_write, Handshake, Transport, UpTls};
use super::Worker;
use crate::elog;
use crate::http::chunked::ChunkedDecoder;
use crate::http::relay::{BodyRelay, Framing};
use crate::http::request::token_eq;
use crate::http::response::write_num_header;
use crate::http::upstream::{parse_response_head, BodyKind, Parsed, ResponseHead};
use crate::upstream::{Balancer, ConnectError, Outcome as Report, PeerAddr};
use mio::net::TcpStream;
use mio::{Interest, Token};
use proton_ir::{LocationId, ProxyHttpVersion, ServerId};
use slab::Slab;
use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

/// Tokens of upstream sockets are `UP_BASE + key` in [`Upstreams::conns`].
pub(crate) const UP_BASE: usize = 1 << 40;
/// A request body up to this size is kept so the request can be sent again to the next
/// server; a larger one streams through and cannot be retried once sent.
const REPLAY_MAX: usize = 64 * 1024;
/// Most request bytes buffered towards the upstream (the client is not read beyond it).
const REQ_WINDOW: usize = 64 * 1024;
/// Largest piece of a request body in a temporary file read and sent in one step.
const FILE_CHUNK: usize = 64 * 1024;
/// Recycled proxy states kept per worker.
const FREE_MAX: usize = 1024;
/// TLS configs kept per worker for `proxy_ssl_certificate` with variables (one per pair of
/// file names, the most recently used).
const CERT_CONFIGS: usize = 32;

/// One connection to an upstream server.
pub(crate) struct UpConn {
    sock: TcpStream,
    /// The TLS session of a connection to an `https://` upstream.
    tls: Option<Box<UpTls>>,
    upstream: usize,
    peer: usize,
    /// The client connection (slab key) using it; `None` while cached.
    owner: Option<usize>,
    /// Requests sent on it.
    requests: u32,
    /// When a cached connection is closed.
    idle_until: Instant,
    /// When it was opened (`keepalive_time`).
    opened: Instant,
    /// The peer's address generation it was opened to (see `Upstreams::addr_gen`): a
    /// `server … resolve` peer whose address changed since is another server.
    gen: u32,
}

/// A worker's upstream connections, keep-alive caches and balancers.
pub(crate) struct Upstreams {
    conns: Slab<UpConn>,
    /// Per IR upstream: cached idle connections (keys into `conns`), oldest first.
    idle: Vec<Vec<usize>>,
    balancers: Vec<Balancer>,
    /// Proxy states for reuse, boxed as `Conn::proxy` holds them (no allocation per request).
    #[allow(clippy::vec_box)]
    free: Vec<Box<Proxy>>,
    /// Some idle list is longer than its upstream's `keepalive` (trimmed by `trim`).
    overfull: bool,
    /// TLS configs with the client certificates `proxy_ssl_certificate` with variables
    /// named: (settings, certificate name, key name, config), least recently used first.
    cert_configs: Vec<CertConfig>,
    /// The number of this worker's last temporary file (nginx's `ngx_temp_number`).
    pub(crate) temp_seq: u32,
    /// Decoded pieces of a request body (ranges of the client's buffer), reused.
    pieces: Vec<std::ops::Range<usize>>,
    /// The last unix socket a proxy_pass with variables named, kept so that requests to the
    /// same socket share its path instead of allocating one each.
    last_unix: Option<PeerAddr>,
    /// The address of every upstream peer, by upstream then peer: the configuration's, with
    /// those of `server … resolve` peers as this worker last took them from the shared state
    /// (`None`: none).
    addrs: Vec<Vec<Option<PeerAddr>>>,
    /// By upstream then peer: how many times the peer's address changed (see `UpConn::gen`).
    addr_gen: Vec<Vec<u32>>,
}

type CertConfig = (
    usize,
    Vec<u8>,
    Vec<u8>,
    std::sync::Arc<rustls::ClientConfig>,
);

impl Upstreams {
    pub(crate) fn new(loaded: &crate::config::Loaded, seed: u64) -> Upstreams {
        let ir = &loaded.ir;
        let mut ups = Upstreams {
            conns: Slab::new(),
            idle: vec![Vec::new(); ir.upstreams.len()],
            balancers: ir
                .upstreams
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    Balancer::from_upstream_shared(
                        u,
                        &loaded.upstream_shared,
                        i,
                        seed ^ (i as u64) << 17,
                    )
                })
                .collect(),
            free: Vec::new(),
            overfull: false,
            cert_configs: Vec::new(),
            temp_seq: super::body::first_seq(),
            pieces: Vec::new(),
            last_unix: None,
            addrs: loaded.upstream_addrs.clone(),
            addr_gen: loaded
                .upstream_addrs
                .iter()
                .map(|a| vec![0; a.len()])
                .collect(),
        };
        // `server … resolve` peers are not servers until their name is resolved.
        for rs in &loaded.resolve_servers {
            if let Some(b) = ups.balancers.get_mut(rs.upstream) {
                for p in rs.slots.clone() {
                    b.readdress(p, None);
                }
                b.settle();
            }
        }
        ups
    }

    /// After [`Upstreams::readdress`]: the group's balancer settles (see `Balancer::settle`).
    pub(crate) fn settle(&mut self, u: usize) {
        if let Some(b) = self.balancers.get_mut(u) {
            b.settle();
        }
    }

    /// How many times the address of peer `peer` of upstream `u` changed.
    fn generation(&self, u: usize, peer: usize) -> u32 {
        self.addr_gen
            .get(u)
            .and_then(|g| g.get(peer))
            .copied()
            .unwrap_or(0)
    }

    /// Whether connection `c` still goes to its peer's current address.
    fn current(&self, c: &UpConn) -> bool {
        c.gen == self.generation(c.upstream, c.peer)
    }

    /// The address of peer `peer` of upstream `u` in this worker (`None`: it has none).
    pub(crate) fn peer_address(&self, u: usize, peer: usize) -> Option<&PeerAddr> {
        self.addrs.get(u)?.get(peer)?.as_ref()
    }

    /// A `server … resolve` peer's address changed: the balancer takes the peer as a new
    /// server (`None`: it has no address and is never picked), its idle keep-alive
    /// connections (to the old address) are closed, and those in use are not kept after
    /// their request (their generation is past).
    /// Call [`Upstreams::settle`] for the group once its changed peers are readdressed.
    pub(crate) fn readdress(&mut self, u: usize, peer: usize, addr: Option<PeerAddr>) {
        let Some(slot) = self.addrs.get_mut(u).and_then(|a| a.get_mut(peer)) else {
            return;
        };
        if let Some(b) = self.balancers.get_mut(u) {
            b.readdress(peer, addr.as_ref().map(PeerAddr::to_string));
        }
        *slot = addr;
        if let Some(g) = self.addr_gen.get_mut(u).and_then(|g| g.get_mut(peer)) {
            *g = g.wrapping_add(1);
        }
        let stale: Vec<usize> = self
            .idle
            .get(u)
            .map(|l| {
                l.iter()
                    .copied()
                    .filter(|&k| self.conns.get(k).is_some_and(|c| c.peer == peer))
                    .collect()
            })
            .unwrap_or_default();
        for k in stale {
            self.close(k);
        }
    }

    /// Closes the least recently used idle connections of every upstream whose cache
    /// holds more than `keepalive` (nginx's limit, applied once per event-loop round).
    pub(crate) fn trim(&mut self, ir: &proton_ir::Ir) {
        if !std::mem::take(&mut self.overfull) {
            return;
        }
        for (list, up) in self.idle.iter_mut().zip(&ir.upstreams) {
            let keep = up.keepalive as usize;
            if list.len() > keep {
                for key in list.drain(..list.len() - keep) {
                    self.conns.try_remove(key);
                }
            }
        }
    }

    /// The address of unix socket `path` named by a proxy_pass with variables: the last one
    /// again when it is the same socket (no allocation), else a new one that is kept.
    fn unix_peer(&mut self, path: &str) -> PeerAddr {
        match &self.last_unix {
            Some(a @ PeerAddr::Unix(p)) if p.as_os_str() == std::ffi::OsStr::new(path) => a.clone(),
            _ => {
                let a = PeerAddr::unix(path);
                self.last_unix = Some(a.clone());
                a
            }
        }
    }

    /// The owner of upstream socket `key`: `Some(Some(client))`, `Some(None)` when cached.
    pub(crate) fn owner(&self, key: usize) -> Option<Option<usize>> {
        self.conns.get(key).map(|u| u.owner)
    }

    /// An event on a cached connection: the upstream closed it (or sent something it
    /// should not have); either way it cannot be used any more.
    pub(crate) fn idle_event(&mut self, key: usize) {
        let Some(u) = self.conns.get_mut(key) else {
            return;
        };
        if !u.alive() {
            self.close(key);
        }
    }

    /// Closes cached connections past their keepalive_timeout.
    pub(crate) fn sweep(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for list in &self.idle {
            for &k in list {
                if self.conns.get(k).is_some_and(|u| u.idle_until <= now) {
                    expired.push(k);
                }
            }
        }
        for k in expired {
            self.close(k);
        }
    }

    /// Closes upstream connection `key` (the kernel drops it from epoll on close).
    fn close(&mut self, key: usize) {
        if let Some(u) = self.conns.try_remove(key) {
            if u.owner.is_none() {
                if let Some(list) = self.idle.get_mut(u.upstream) {
                    list.retain(|&k| k != key);
                }
            }
        }
    }

    /// A cached connection to `peer` of upstream `u` that still looks alive.
    /// `probe`: check first that the upstream has not closed it meanwhile (one `recv`
    /// with MSG_PEEK). Worth it only for requests that cannot simply be sent again on a
    /// fresh connection when the cached one turns out closed (POST and friends): the close
    /// event of a cached connection normally arrives, and drops it, before it is reused.
    fn take_idle(
        &mut self,
        u: usize,
        peer: usize,
        owner: usize,
        probe: bool,
        https: bool,
    ) -> Option<usize> {
        loop {
            let list = self.idle.get_mut(u)?;
            let pos = list
                .iter()
                .rposition(|&k| self.conns.get(k).is_some_and(|c| c.peer == peer))?;
            let key = list.remove(pos);
            let stale = self.conns.get(key).is_some_and(|c| !self.current(c));
            let Some(c) = self.conns.get_mut(key) else {
                continue;
            };
            if stale {
                // Opened to the peer's former address.
                self.conns.remove(key);
                continue;
            }
            if c.tls.is_some() != https {
                // Made for the other scheme (one upstream group proxied to as http:// and
                // as https://): not for this request.
                self.conns.remove(key);
                continue;
            }
            // A connection the upstream closed while cached reads EOF (or data it should
            // not have sent): drop it and look for another.
            if !probe {
                c.owner = Some(owner);
                return Some(key);
            }
            if c.alive() {
                c.owner = Some(owner);
                return Some(key);
            }
            self.conns.remove(key);
        }
    }
}

impl UpConn {
    /// Whether an idle connection is still open: the upstream has sent nothing since its
    /// last response (one `recv` with MSG_PEEK), or over TLS only records that keep the
    /// session going (session tickets); a FIN, a close_notify, an error or data means
    /// closed.
    fn alive(&mut self) -> bool {
        match &mut self.tls {
            Some(t) => t.idle_alive(&self.sock),
            None => {
                let mut byte = [0u8; 1];
                matches!(self.sock.peek(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Reading the whole request body (`proxy_request_buffering on`) before an upstream
    /// is chosen.
    ReadBody,
    /// Waiting for the resolver to answer for the name of a proxy_pass with variables.
    Resolve,
    Connect,
    Send,
    Head,
    Body,
    Tunnel,
}

/// What is still to be read of the client's request body.
type ReqBody = crate::http::relay::RequestBody;

/// Why an attempt failed, in `proxy_next_upstream` terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Error,
    Timeout,
    InvalidHeader,
    Status(u16),
}

/// What the connection does next.
pub(crate) enum Drive {
    /// Waiting for a socket.
    Blocked,
    /// The response is out (the connection logs it and goes on).
    Finished,
    /// Close the client connection now (already logged if anything was answered).
    Close,
    /// Nothing was sent to the client: answer this status (error_page applies).
    Failed(u16),
    /// The upstream's `X-Accel-Redirect` names where the request goes now (nothing was sent
    /// to the client; the head is the request's `upstream_head`).
    Redirect,
}

/// The most of an upstream response one drive of a request reads before it lets the
/// worker's other connections run (it is woken on the next event-loop round).
const READ_BUDGET: usize = 256 << 10;

/// A proxied request in flight.
pub(crate) struct Proxy {
    pub(crate) sid: ServerId,
    pub(crate) loc: LocationId,
    upstream: usize,
    st: St,
    up: Option<usize>,
    peer: usize,
    /// The current attempt uses a cached connection.
    cached: bool,
    tried: Vec<usize>,
    tries: u32,
    first_try: Instant,
    attempt_start: Instant,
    /// The request towards the upstream: head, then body as it streams.
    req: Vec<u8>,
    req_pos: usize,
    /// `req` still holds the whole request from its first byte.
    replayable: bool,
    /// The body is read whole into the request context (`ReqBody` then tells what is
    /// still to be read) before an upstream is chosen.
    read_whole: bool,
    /// A body read whole stays in memory whatever its size (a streamed chunked body that
    /// came whole with the head: small, and already in memory).
    memory_only: bool,
    /// The request's body was read whole and goes from the request context: `req` keeps
    /// the head and the in-memory body for every attempt.
    buffered: bool,
    /// A body in a temporary file: its length, and how far it was read into `req`, after
    /// the `head_len` bytes of the head (the rest of `req` is the piece being sent).
    file_len: u64,
    file_read: u64,
    head_len: usize,
    /// Bytes of this request were written to the current upstream connection.
    sent_any: bool,
    body: ReqBody,
    /// The upstream head as it arrives; a chunked request body being buffered.
    hold: Vec<u8>,
    resp: ResponseHead,
    /// The response body on its way (framing, bytes received, forced range).
    relay: BodyRelay,
    /// Hash key for `hash`/`ip_hash`.
    key: Vec<u8>,
    /// `proxy_pass` with variables: the URL made for this request (host and URI are ranges
    /// of it), kept with the state so that no buffer is allocated per request.
    dyn_url: Vec<u8>,
    /// The address of the current attempt when there is no balancer (a proxy_pass with
    /// variables naming an address, or a name that was resolved).
    direct: Option<PeerAddr>,
    /// The addresses of a proxy_pass with variables: the literal one, or those its name
    /// resolved to; each is one try, in order (nginx's round-robin over them).
    addrs: Vec<PeerAddr>,
    /// A name to resolve first with this location's resolver: (resolver, port), the name
    /// being `resolve_name` of `dyn_url`.
    resolve: Option<(usize, u16)>,
    resolve_name: std::ops::Range<usize>,
    /// The serial number of the lookup this request waits for.
    resolve_serial: u32,
    /// The resolver's answer, handed over by the worker while in `St::Resolve`.
    pub(crate) resolved: Option<crate::resolver::Outcome>,
    /// `proxy_protocol on`: the PROXY line that starts each new upstream connection, and how
    /// much of it the current connection got (empty: off).
    pp: Vec<u8>,
    pp_pos: usize,
    /// The client's address, for log lines.
    client: std::net::IpAddr,
    /// Where the URI sent upstream is in `req` (valid while `replayable`), for log lines.
    uri_at: std::ops::Range<usize>,
    /// The upstream speaks TLS (`proxy_pass https://…`).
    https: bool,
    /// The name the TLS session is made for (`proxy_ssl_name`, else the proxy_pass host),
    /// kept with the state so that no buffer is allocated per request.
    ssl_name: Vec<u8>,
    /// `proxy_ssl_certificate`/`_key` with variables: the files this request names.
    ssl_cert: Vec<u8>,
    ssl_key: Vec<u8>,
    /// The TLS config with that certificate (`None`: the location's own).
    tls_config: Option<std::sync::Arc<rustls::ClientConfig>>,
    head_only: bool,
    idempotent: bool,
    client_minor: u8,
    keep_client: bool,
    /// The request asks for a protocol upgrade that may be tunnelled.
    upgrade: bool,
    /// The upstream connection cannot be reused (framing trouble, early close, tunnel).
    spoiled: bool,
    /// The client response is cut short: close the client once what is buffered is out.
    broken: bool,
    pub(crate) deadline: Instant,
    /// Bytes written to the client (head included).
    written: u64,
    header_bytes: u64,
    client_eof: bool,
    upstream_eof: bool,
    /// Time from the attempt's start to the response head (`least_time header`).
    head_latency: Duration,
    /// The upstream socket may have bytes to read: set by its readiness events, cleared
    /// when a read finds nothing (saves a read that would fail right after sending).
    up_ready: bool,
    /// The upstream's FIN or an error was reported for the current connection.
    up_hup: bool,
    /// Last bytes written to the client / read from the upstream (body deadlines).
    client_progress: Instant,
    upstream_progress: Instant,
    /// The last attempt's address, status and time, for the request's variables.
    /// The attempts of this proxied response (`$upstream_*`), the last one current.
    states: Vec<UpState>,
    /// Where they start in the request's list (`None`: not handed over yet).
    req_base: Option<usize>,
    /// `charset`/`override_charset`: the recoding of the response body, if any.
    recode: Option<super::static_files::Recode>,
    /// `add_trailer` applies: the body goes to the client in chunks Proton frames, and the
    /// last chunk carries the trailers. Cleared once the last chunk is written.
    rechunk: bool,
    /// A `post_action` request: the response is read and thrown away, nothing goes to the
    /// client, and the client's keep-alive stays as its own response decided.
    discard: bool,
    /// The status sent to the client: the upstream's, or that of the error_page that led
    /// here (nginx's `err_status`).
    client_status: u16,
    /// `proxy_buffering` for this response (the upstream's `X-Accel-Buffering` may switch
    /// it).
    buffering: bool,
    /// A buffered response's part beyond `proxy_buffers`: its temporary file (unlinked when
    /// made; its former name for log lines), the bytes written to it and those of them
    /// sent on to the client.
    spill: Option<(std::fs::File, std::path::PathBuf)>,
    spill_written: u64,
    spill_sent: u64,
    /// A temporary file could not be made or written for this response (logged): none is
    /// tried again, the upstream is read as the client takes the response.
    spill_failed: bool,
    /// The buffered response was read whole and the upstream connection released: the rest
    /// goes to the client from memory and the temporary file.
    released: bool,
    /// The request body sent is the proxy's own (`proxy_set_body`, `proxy_pass_request_body
    /// off`): the client's stays with the connection, which drops it.
    own_body: bool,
    /// `proxy_bind`: the local address of this request's upstream connections, and whether
    /// it may be a non-local one (`transparent`).
    bind: Option<std::net::SocketAddr>,
    bind_transparent: bool,
    /// `proxy_limit_rate`: when reading the response began, the body bytes read since (those
    /// that came with the head included), and until when reading waits after the last read.
    rate_start: Instant,
    rate_read: u64,
    rate_until: Option<Instant>,
}

impl Proxy {
    /// A new attempt, at `peer`.
    fn begin_attempt(&mut self, peer: UpPeer) {
        self.states.push(UpState {
            peer,
            ..UpState::default()
        });
    }

    /// Milliseconds since the current attempt started, at `now`.
    fn attempt_ms(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.attempt_start)
            .as_millis()
            .min(u128::from(u32::MAX)) as u32
    }

    /// The current attempt ends at `now` unless it has ended already: its response time.
    fn end_attempt_time(&mut self, now: Instant) {
        let ms = self.attempt_ms(now);
        if let Some(st) = self.states.last_mut() {
            st.response_ms.get_or_insert(ms);
        }
    }

    /// The status the client got: the one written in its head, else the upstream's.
    fn sent_status(&self) -> u16 {
        if self.client_status != 0 {
            self.client_status
        } else {
            self.resp.status
        }
    }

    fn new() -> Proxy {
        let now = Instant::now();
        Proxy {
            sid: ServerId(0),
            loc: LocationId(0),
            upstream: 0,
            st: St::Connect,
            up: None,
            peer: 0,
            cached: false,
            tried: Vec::new(),
            tries: 0,
            first_try: now,
            attempt_start: now,
            req: Vec::new(),
            req_pos: 0,
            replayable: true,
            read_whole: false,
            memory_only: false,
            buffered: false,
            file_len: 0,
            file_read: 0,
            head_len: 0,
            sent_any: false,
            body: ReqBody::None,
            hold: Vec::new(),
            resp: ResponseHead::default(),
            relay: BodyRelay::default(),
            key: Vec::new(),
            dyn_url: Vec::new(),
            direct: None,
            addrs: Vec::new(),
            resolve: None,
            resolve_name: 0..0,
            resolve_serial: 0,
            resolved: None,
            pp: Vec::new(),
            pp_pos: 0,
            client: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            uri_at: 0..0,
            https: false,
            ssl_name: Vec::new(),
            ssl_cert: Vec::new(),
            ssl_key: Vec::new(),
            tls_config: None,
            head_only: false,
            idempotent: true,
            client_minor: 1,
            keep_client: true,
            upgrade: false,
            spoiled: false,
            broken: false,
            deadline: now,
            written: 0,
            header_bytes: 0,
            client_eof: false,
            upstream_eof: false,
            head_latency: Duration::ZERO,
            up_ready: false,
            up_hup: false,
            client_progress: now,
            upstream_progress: now,
            states: Vec::new(),
            req_base: None,
            recode: None,
            rechunk: false,
            discard: false,
            client_status: 0,
            buffering: true,
            spill: None,
            spill_written: 0,
            spill_sent: 0,
            spill_failed: false,
            released: false,
            own_body: false,
            bind: None,
            bind_transparent: false,
            rate_start: now,
            rate_read: 0,
            rate_until: None,
        }
    }

    /// The upstream socket reported readiness for reading (`hup`: its FIN or an error).
    pub(crate) fn mark_upstream_readable(&mut self, hup: bool) {
        self.up_ready = true;
        self.up_hup |= hup;
    }

    fn reset(&mut self, now: Instant) {
        self.st = St::Connect;
        self.up = None;
        self.cached = false;
        self.tried.clear();
        self.tries = 0;
        self.first_try = now;
        self.attempt_start = now;
        self.req.clear();
        self.req_pos = 0;
        self.replayable = true;
        self.read_whole = false;
        self.memory_only = false;
        self.buffered = false;
        self.file_len = 0;
        self.file_read = 0;
        self.head_len = 0;
        self.sent_any = false;
        self.body = ReqBody::None;
        self.hold.clear();
        self.relay.reset(Framing::None);
        self.key.clear();
        self.dyn_url.clear();
        self.direct = None;
        self.addrs.clear();
        self.resolve = None;
        self.resolve_name = 0..0;
        self.resolved = None;
        self.pp.clear();
        self.pp_pos = 0;
        self.uri_at = 0..0;
        self.https = false;
        self.ssl_name.clear();
        self.ssl_cert.clear();
        self.ssl_key.clear();
        self.tls_config = None;
        self.upgrade = false;
        self.spoiled = false;
        self.broken = false;
        self.written = 0;
        self.header_bytes = 0;
        self.client_eof = false;
        self.upstream_eof = false;
        self.states.clear();
        self.req_base = None;
        self.recode = None;
        self.rechunk = false;
        self.discard = false;
        self.client_status = 0;
        self.buffering = true;
        self.spill = None;
        self.spill_written = 0;
        self.spill_sent = 0;
        self.spill_failed = false;
        self.released = false;
        self.own_body = false;
        self.bind = None;
        self.bind_transparent = false;
        self.rate_start = now;
        self.rate_read = 0;
        self.rate_until = None;
    }
}

/// A new attempt sends a body in a temporary file from its start.
fn rewind_body(p: &mut Proxy) {
    if p.file_len > 0 {
        p.req.truncate(p.head_len);
        p.file_read = 0;
    }
}

/// Ends the request head with the framing of a body kept by the request context and puts
/// the body (in memory) after it; a body in a temporary file is read into `req` piece by
/// piece as it is sent.
fn frame_kept_body(req: &mut Vec<u8>, body: &super::body::RequestBody, p: &mut Proxy) {
    let _ = write!(req, "Content-Length: {}\r\n\r\n", body.len());
    p.head_len = req.len();
    p.buffered = true;
    p.body = ReqBody::None;
    if body.in_file() {
        p.file_len = body.len();
        p.file_read = 0;
    } else {
        req.extend_from_slice(body.bytes());
    }
}

/// Bytes that nginx's `ngx_escape_uri(NGX_ESCAPE_URI)` escapes when a changed URI is sent.
fn needs_escape(b: u8) -> bool {
    b <= 0x20 || b >= 0x7f || matches!(b, b'#' | b'%' | b'?')
}

fn escape_into(src: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in src {
        if needs_escape(b) {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.push(b);
        }
    }
}

/// The value of an `X-Accel-Limit-Rate` header: a number of bytes per second.
fn accel_limit_rate(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value.trim_ascii())
        .ok()
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok())
}

/// `host[:port]` → (host, port); an IPv6 literal keeps its brackets. A port that is not a
/// number counts as none.
fn split_port(hostport: &str) -> (&str, Option<u16>) {
    if hostport.ends_with(']') {
        return (hostport, None);
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.ends_with(':') => (h, p.parse().ok()),
        _ => (hostport, None),
    }
}

/// Headers never passed on in either direction: hop-by-hop, or framing the proxy writes
/// itself.
const HOP_BY_HOP: [&[u8]; 8] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    b"content-length",
];

/// Whether the upstream's header line `name` goes on to the client, as nginx's proxy
/// decides: not a hop-by-hop field (but `Upgrade` in a `tunnel`), not one nginx hides by
/// default (`Server`, `Date`, `X-Accel-*`) unless `proxy_pass_header` names it, not one
/// `proxy_hide_header` names.
fn passed_on(name: &[u8], pass: &[String], hide: &[String], tunnel: bool) -> bool {
    let listed = |list: &[String]| list.iter().any(|h| h.as_bytes().eq_ignore_ascii_case(name));
    let hidden_default = token_eq(name, b"server")
        || token_eq(name, b"date")
        || name.len() > 8 && token_eq(&name[..8], b"x-accel-");
    !((hop_by_hop_response(name) && !(tunnel && token_eq(name, b"upgrade")))
        || (hidden_default && !listed(pass))
        || listed(hide))
}

/// Response headers never passed to the client.
fn hop_by_hop_response(name: &[u8]) -> bool {
    HOP_BY_HOP.iter().any(|n| token_eq(name, n))
}

/// Request headers never passed on: the hop-by-hop ones and `Expect` (answered here).
fn hop_by_hop_request(name: &[u8]) -> bool {
    hop_by_hop_response(name) || token_eq(name, b"expect")
}

/// Appends the client's header lines that go on to the upstream, in order: all but the
/// hop-by-hop ones, those the client's `Connection` header names, and those `set` says
/// `proxy_set_header` sets.
fn copy_client_fields<'a>(
    fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    connection: &[u8],
    set: impl Fn(&[u8]) -> bool,
    out: &mut Vec<u8>,
) {
    for (n, v) in fields {
        if hop_by_hop_request(n) || set(n) || has_token(connection, n) {
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
}

/// Whether a comma-separated header value has `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

impl Proxy {
    /// Part of the response waits in the temporary file for the client.
    pub(crate) fn file_unsent(&self) -> bool {
        self.spill_sent < self.spill_written
    }

    /// Waiting for the resolver's answer to lookup `serial`.
    pub(crate) fn awaits(&self, serial: u32) -> bool {
        self.st == St::Resolve && self.resolved.is_none() && self.resolve_serial == serial
    }
}

impl Worker<'_> {
    /// Starts proxying the request in `head` for location `loc`: builds the upstream
    /// request, picks a server and connects. The answer comes later, from [`drive`].
    pub(crate) fn proxy_start(
        &mut self,
        conn: &mut Conn,
        request: &mut RequestCtx,
        loc: LocationId,
    ) -> Handled {
        let head = &request.head;
        let sid = request.server;
        let ir = &self.loaded.ir;
        let Some(l) = ir.locations.get(loc.0 as usize) else {
            return Handled::Status(500);
        };
        let Some(proxy) = l.conf.proxy.as_deref() else {
            return Handled::Status(500);
        };
        let mut p = self
            .ups
            .free
            .pop()
            .unwrap_or_else(|| Box::new(Proxy::new()));
        p.reset(self.now);
        let mut upstream = proxy.upstream.0 as usize;
        // proxy_pass with variables: the URL is made per request; its host names an
        // upstream group or is an IP address (nginx would need a `resolver` for other names).
        // Host and URI are ranges of `p.dyn_url`.
        let mut direct = None;
        let mut dyn_host = 0..0;
        let mut dyn_uri: Option<std::ops::Range<usize>> = None;
        if let Some(t) = &proxy.dynamic {
            let mut url = std::mem::take(&mut p.dyn_url);
            self.ctx(conn, request, 0).expand(t, &mut url);
            let start = if url.starts_with(b"http://") {
                7
            } else if url.starts_with(b"https://") {
                p.https = true;
                8
            } else {
                elog!(
                    self.elog,
                    Error,
                    "invalid URL prefix in \"{}\", client: {}",
                    String::from_utf8_lossy(&url),
                    conn.peer.ip()
                );
                p.dyn_url = url;
                self.recycle(p);
                return Handled::Status(500);
            };
            let rest = url.get(start..).unwrap_or_default();
            let unix = is_unix_host(rest);
            dyn_host = if unix {
                // `unix:PATH[:URI]`: the URI follows the path's first colon (nginx's
                // `ngx_parse_unix_domain_url`); an empty one is none.
                match rest.iter().skip(5).position(|&b| b == b':') {
                    Some(i) => {
                        let colon = start + 5 + i;
                        if colon + 1 < url.len() {
                            dyn_uri = Some(colon + 1..url.len());
                        }
                        start..colon
                    }
                    None => start..url.len(),
                }
            } else {
                match rest.iter().position(|&b| b == b'/') {
                    Some(i) => {
                        dyn_uri = Some(start + i..url.len());
                        start..start + i
                    }
                    None => start..url.len(),
                }
            };
            let host =
                std::str::from_utf8(url.get(dyn_host.clone()).unwrap_or_default()).unwrap_or("");
            if unix {
                match PeerAddr::unix_path(host).filter(|p| !p.is_empty() && !p.contains('\0')) {
                    Some(path) => direct = Some(self.ups.unix_peer(path)),
                    None => {
                        // nginx: the URL does not parse, 500.
                        elog!(
                            self.elog,
                            Error,
                            "no path in the unix domain socket in upstream \"{}\", client: {}",
                            String::from_utf8_lossy(url.get(start..).unwrap_or_default()),
                            conn.peer.ip()
                        );
                        p.dyn_url = url;
                        self.recycle(p);
                        return Handled::Status(500);
                    }
                }
            } else if let Some(i) = {
                // nginx's match of a URL's host to a group: an `upstream {}` by name when
                // the URL has no port, a group made by a literal proxy_pass by host and port
                // (the scheme's port when none is written).
                let default_port = if p.https { 443 } else { 80 };
                let (hname, hport) = split_port(host);
                ir.upstreams.iter().position(|u| {
                    if u.explicit {
                        hport.is_none() && u.name.eq_ignore_ascii_case(host)
                    } else {
                        split_port(&u.name).0.eq_ignore_ascii_case(hname)
                            && split_port(&u.name).1 == Some(hport.unwrap_or(default_port))
                    }
                })
            } {
                upstream = i;
            } else if let Some(a) = crate::config::resolve_literal(host) {
                direct = Some(PeerAddr::Inet(a));
            } else if let Some(rid) = ir
                .settings
                .get(l.conf.settings.0 as usize)
                .and_then(|s| s.resolver)
            {
                // A name: resolved by the location's resolver once the body is in.
                let default_port = if p.https { 443 } else { 80 };
                let (name_len, port) = match host.rsplit_once(':') {
                    Some((n, port)) => (n.len(), port.parse::<u16>().ok().filter(|p| *p > 0)),
                    None => (host.len(), Some(default_port)),
                };
                let Some(port) = port else {
                    elog!(
                        self.elog,
                        Error,
                        "invalid port in upstream \"{host}\", client: {}",
                        conn.peer.ip()
                    );
                    p.dyn_url = url;
                    self.recycle(p);
                    return Handled::Status(500);
                };
                p.resolve = Some((rid as usize, port));
                p.resolve_name = dyn_host.start..dyn_host.start + name_len;
            } else {
                elog!(
                    self.elog,
                    Error,
                    "no resolver defined to resolve {host}, client: {}",
                    conn.peer.ip()
                );
                p.dyn_url = url;
                self.recycle(p);
                return Handled::Status(502);
            }
            p.dyn_url = url;
        }
        if proxy.dynamic.is_none() {
            p.https = proxy.scheme == proton_ir::Scheme::Https;
        }
        let has_body = head.chunked || head.content_length.is_some_and(|n| n > 0);
        let body = &request.body;
        let s = &ir.settings[l.conf.settings.0 as usize];
        let ps = &s.proxy;
        // The request body sent is the proxy's own (`proxy_set_body`, `proxy_pass_request_body
        // off`), or none for a mirror with `mirror_request_body off`: the client's stays with
        // the connection, which reads and drops it.
        let mirror_no_body = request.mirror_sub && !request.mirrors.first().is_some_and(|m| m.body);
        let own_body = ps.set_body.is_some() || !ps.pass_request_body || mirror_no_body;
        if has_body
            && !own_body
            && !body.resendable()
            && (request.post_action || body.state != super::body::BodyState::Unread)
        {
            // A post action or an error page after a body streamed to an upstream that
            // did not fit client_body_buffer_size: nothing to send again (nginx has it).
            elog!(
                self.elog,
                Error,
                "the request body was streamed and not kept, the request cannot be proxied again, client: {}",
                conn.peer.ip()
            );
            self.recycle(p);
            return Handled::Status(500);
        }
        let http11 = ps.http_version == ProxyHttpVersion::Http11;
        p.sid = sid;
        p.loc = loc;
        p.upstream = upstream;
        if let Some(a) = direct {
            p.addrs.push(a);
        }
        p.client = request.client.unwrap_or(conn.peer).ip();
        if ps.proxy_protocol {
            // The line a new upstream connection starts with (nginx's
            // `ngx_proxy_protocol_write`): the client and the address it connected to.
            let src = request.client.unwrap_or(conn.peer);
            let dst = self.local_of(conn);
            let unix = ir
                .listeners
                .get(conn.listener as usize)
                .is_some_and(|l| l.addr.starts_with("unix:"));
            let _ = match (src, dst) {
                (std::net::SocketAddr::V4(s), std::net::SocketAddr::V4(d)) if !unix => write!(
                    p.pp,
                    "PROXY TCP4 {} {} {} {}\r\n",
                    s.ip(),
                    d.ip(),
                    s.port(),
                    d.port()
                ),
                (std::net::SocketAddr::V6(s), std::net::SocketAddr::V6(d)) if !unix => write!(
                    p.pp,
                    "PROXY TCP6 {} {} {} {}\r\n",
                    s.ip(),
                    d.ip(),
                    s.port(),
                    d.port()
                ),
                _ => write!(p.pp, "PROXY UNKNOWN\r\n"),
            };
        }
        // nginx's error_page makes the request a GET (a HEAD stays a HEAD); a request the
        // parser refused has no method of its own.
        let method: &[u8] = match conn.rbuf.get(head.method_range.clone()) {
            Some(m)
                if !m.is_empty()
                    && ((request.error_status.is_none() && !request.xar) || head.is_head()) =>
            {
                m
            }
            _ => b"GET",
        };
        p.client_minor = head.minor_version;
        p.keep_client = self.keep_alive(request, loc);
        p.discard = request.post_action || request.mirror_sub;
        p.deadline = self.now + Duration::from_millis(ps.connect_timeout_ms);
        // proxy_bind: the local address, read per request when it has variables (an empty
        // value binds nothing; one that is not an address is logged and binds nothing, as
        // nginx's ngx_http_upstream_set_local).
        if let Some(b) = &ps.bind {
            p.bind_transparent = b.transparent;
            match b.address.as_literal() {
                Some(lit) => p.bind = proton_ir::ProxyBind::parse_address(lit.as_bytes()),
                None => {
                    let mut v = self.scratch.var_pool.borrow_mut().buf();
                    self.ctx(conn, request, 0).expand(&b.address, &mut v);
                    if !v.is_empty() {
                        p.bind = proton_ir::ProxyBind::parse_address(&v);
                        if p.bind.is_none() {
                            elog!(
                                self.elog,
                                Error,
                                "invalid local address \"{}\", client: {}",
                                String::from_utf8_lossy(&v).escape_debug(),
                                conn.peer.ip()
                            );
                        }
                    }
                    self.scratch.var_pool.borrow_mut().give_buf(v);
                }
            }
        }

        // The request line; the method is the client's, or `proxy_method`'s (not for a
        // HEAD: its answer must stay without a body).
        let mut req = std::mem::take(&mut p.req);
        match &ps.method {
            Some(t) if !head.is_head() => {
                self.ctx(conn, request, 0).expand(t, &mut req);
                // A method from variables must be a token: nothing else may reach the
                // request line.
                let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
                if req.is_empty() || !req.iter().all(token) {
                    elog!(
                        self.elog,
                        Error,
                        "invalid proxy_method \"{}\", client: {}",
                        String::from_utf8_lossy(&req).escape_debug(),
                        conn.peer.ip()
                    );
                    req.clear();
                    p.req = req;
                    self.recycle(p);
                    return Handled::Status(500);
                }
            }
            _ => req.extend_from_slice(method),
        }
        let sent_method = req.as_slice();
        p.idempotent = !matches!(sent_method, b"LOCK" | b"POST" | b"PATCH");
        // The upstream's answer has a body unless the method sent is HEAD.
        p.head_only = sent_method == b"HEAD";
        req.push(b' ');
        let uri_at = req.len();
        match dyn_uri {
            // With variables and a URI, the URI goes as made (nginx).
            Some(u) => req.extend_from_slice(p.dyn_url.get(u).unwrap_or_default()),
            None => self.upstream_uri(conn, request, proxy.prefix, proxy.uri.as_ref(), &mut req),
        }
        if req.len() == uri_at {
            req.push(b'/');
        }
        p.uri_at = uri_at..req.len();
        req.extend_from_slice(if http11 {
            b" HTTP/1.1\r\n"
        } else {
            b" HTTP/1.0\r\n"
        });

        // An upgrade is tunnelled only over HTTP/1.1 and never for h2c (a tunnel to an
        // HTTP/2 upstream would carry requests past every rule here).
        let client_upgrade = head.upgrade.clone().and_then(|r| conn.rbuf.get(r));
        let h2c = client_upgrade.is_some_and(|v| has_token(v, b"h2c"));
        if h2c {
            elog!(
                self.elog,
                Info,
                "refusing \"Upgrade: h2c\" towards the upstream, client: {}",
                conn.peer.ip()
            );
        }

        // proxy_set_header, with nginx's defaults merged in by the compiler.
        let proxy_host = if proxy.dynamic.is_some() {
            p.dyn_url.get(dyn_host).unwrap_or_default()
        } else {
            ir.text_of(proxy.proxy_host).as_bytes()
        };
        // A unix socket's `$proxy_host` (so `Host` and the TLS name) is `localhost`, and
        // its `$proxy_port` empty, as nginx's `ngx_http_proxy_set_vars`.
        let proxy_unix = is_unix_host(proxy_host);
        let proxy_host = if proxy_unix {
            &b"localhost"[..]
        } else {
            proxy_host
        };
        if p.https {
            let mut name = std::mem::take(&mut p.ssl_name);
            match &ps.tls.name {
                Some(t) => {
                    let mut ctx = self.ctx(conn, request, 0);
                    ctx.proxy_host = proxy_host;
                    ctx.proxy_unix = proxy_unix;
                    ctx.expand(t, &mut name);
                }
                None => name.extend_from_slice(proxy_host),
            }
            // A port (from `$proxy_host`, `$http_host`, or written) is not part of the
            // name, nor are an IPv6 address's brackets (nginx strips them too).
            let host = host_of(&name);
            let start = host.as_ptr() as usize - name.as_ptr() as usize;
            let end = start + host.len();
            name.truncate(end);
            name.drain(..start);
            p.ssl_name = name;
            if let Some(v) = &ps.tls.certificate_vars {
                let (mut cert, mut key) = (
                    std::mem::take(&mut p.ssl_cert),
                    std::mem::take(&mut p.ssl_key),
                );
                {
                    let mut ctx = self.ctx(conn, request, 0);
                    ctx.proxy_host = proxy_host;
                    ctx.proxy_unix = proxy_unix;
                    ctx.expand(&v.certificate, &mut cert);
                    ctx.expand(&v.key, &mut key);
                }
                (p.ssl_cert, p.ssl_key) = (cert, key);
                // An empty name: no client certificate (the location's config).
                if !p.ssl_cert.is_empty() {
                    match self.tls_with_certificate(l.conf.settings.0 as usize, &ps.tls, &p) {
                        Ok(c) => p.tls_config = Some(c),
                        Err(e) => {
                            elog!(
                                self.elog,
                                Error,
                                "{e} while SSL handshaking to upstream, client: {}",
                                conn.peer.ip()
                            );
                            req.clear();
                            p.req = req;
                            self.recycle(p);
                            return Handled::Status(500);
                        }
                    }
                }
            }
        }
        let mut sent_upgrade = false;
        {
            let mut ctx = self.ctx(conn, request, 0);
            ctx.proxy_host = proxy_host;
            ctx.proxy_unix = proxy_unix;
            for (name, value) in &ps.set_headers {
                let is_upgrade = name.eq_ignore_ascii_case("upgrade");
                let is_conn = name.eq_ignore_ascii_case("connection");
                if h2c && (is_upgrade || is_conn) {
                    if is_conn {
                        req.extend_from_slice(b"Connection: close\r\n");
                    }
                    continue;
                }
                let mark = req.len();
                req.extend_from_slice(name.as_bytes());
                req.extend_from_slice(b": ");
                let value_at = req.len();
                ctx.expand(value, &mut req);
                if req.len() == value_at {
                    // An empty value means "do not send" (nginx).
                    req.truncate(mark);
                    continue;
                }
                // A value from variables never ends the header early (nor starts a second
                // request towards the upstream).
                crate::http::response::encode_line_breaks(&mut req, value_at);
                if is_upgrade {
                    sent_upgrade = true;
                }
                req.extend_from_slice(b"\r\n");
            }
        }
        p.upgrade = sent_upgrade && http11 && client_upgrade.is_some() && !h2c && !p.discard;

        // The client's own headers, minus hop-by-hop ones and those set above (none with
        // `proxy_pass_request_headers off`).
        if ps.pass_request_headers {
            copy_client_fields(
                head.fields(&conn.rbuf),
                head.get(&conn.rbuf, b"connection").unwrap_or(b""),
                |n| {
                    ps.set_headers
                        .iter()
                        .any(|(s, _)| s.as_bytes().eq_ignore_ascii_case(n))
                },
                &mut req,
            );
        }

        // Body framing.
        let max_body = s.client_max_body_size;
        let decoder = || {
            if max_body > 0 {
                ChunkedDecoder::with_limit(max_body)
            } else {
                ChunkedDecoder::default()
            }
        };
        // Mirrors still to run want the body: it is read whole and kept (nginx's mirror
        // handler reads it before the content handler), whatever proxy_request_buffering.
        let keep_whole = request.mirror_body_wanted();
        p.own_body = own_body;
        // A `proxy_set_header Content-Length` replaces the length Proton would announce
        // (nginx's default `$proxy_internal_body_length`).
        let length_set = ps
            .set_headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        if let Some(t) = &ps.set_body {
            let body_at = req.len();
            self.ctx(conn, request, 0).expand(t, &mut req);
            let mut line = [0u8; 40];
            let mut cur = std::io::Cursor::new(&mut line[..]);
            if length_set {
                let _ = write!(cur, "\r\n");
            } else {
                let _ = write!(cur, "Content-Length: {}\r\n\r\n", req.len() - body_at);
            }
            let n = cur.position() as usize;
            req.splice(body_at..body_at, line[..n].iter().copied());
        } else if !ps.pass_request_body || mirror_no_body {
            // As nginx ($proxy_internal_body_length): the client's length is announced
            // unless a proxy_set_header says otherwise.
            let set = length_set;
            match head.content_length {
                Some(n) if !set && !head.chunked && n > 0 => {
                    let _ = write!(req, "Content-Length: {n}\r\n\r\n");
                }
                _ => req.extend_from_slice(b"\r\n"),
            }
        } else if has_body && body.resendable() {
            // Read before (by an attempt that ended in an error page, or by the request a
            // post action follows): sent again from where it is kept.
            frame_kept_body(&mut req, body, &mut p);
        } else if has_body
            && (ps.request_buffering
                || keep_whole
                || (head.chunked && !http11)
                || (head.chunked && preread_whole(conn, s)))
        {
            // Read whole first (a chunked body for an HTTP/1.0 upstream too, as nginx);
            // the framing is written once its length is known. Without buffering, a chunked
            // body that came whole with the head goes the same way, kept in memory (nginx
            // has it in the head's buffer, and sends it with a Content-Length too).
            p.read_whole = true;
            p.memory_only = !ps.request_buffering && !keep_whole && http11;
            p.st = St::ReadBody;
            p.body = match head.content_length {
                Some(n) if !head.chunked => ReqBody::Length(n),
                _ => ReqBody::Chunked(decoder()),
            };
        } else if head.chunked {
            req.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            p.body = ReqBody::Chunked(decoder());
        } else {
            match head.content_length {
                Some(n) => {
                    let _ = write!(req, "Content-Length: {n}\r\n\r\n");
                    p.body = if n > 0 {
                        ReqBody::Length(n)
                    } else {
                        ReqBody::None
                    };
                }
                None => req.extend_from_slice(b"\r\n"),
            }
        }
        p.req = req;
        if head.expect_continue && conn.rbuf.len() == conn.head_len() && !p.discard {
            // The client waits for a go-ahead before sending the body. As nginx, the proxy
            // (a handler that reads the body) sends it even for an empty body.
            let v: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
            let _ = client_write(&conn.sock, super::conn::tls_mut(&mut conn.ext), v);
        }

        // The balancing key.
        match &self.loaded.ir.upstreams[upstream].balance {
            // The client realip found, if any (nginx's ip_hash reads the connection's
            // address, which realip replaces). A unix-socket client's placeholder 0.0.0.0
            // hashes as nginx's pseudo address for it (0.0.0).
            proton_ir::Balance::IpHash => match request.client.unwrap_or(conn.peer).ip() {
                std::net::IpAddr::V4(a) => p.key.extend_from_slice(&a.octets()),
                std::net::IpAddr::V6(a) => p.key.extend_from_slice(&a.octets()),
            },
            proton_ir::Balance::Hash { key, .. } => {
                let mut k = std::mem::take(&mut p.key);
                self.ctx(conn, request, 0).expand(key, &mut k);
                p.key = k;
            }
            _ => {}
        }
        // The proxy consumes the body itself (unless it sends its own).
        if !own_body {
            conn.discard = super::conn::Discard::None;
        }
        if p.st == St::ReadBody {
            // No upstream before the body is in (nginx's ngx_http_read_client_request_body).
            p.deadline = self.now + Duration::from_millis(s.client_body_timeout_ms);
            conn.proxy = Some(p);
            return Handled::Proxy;
        }
        match self.connect_or_resolve(conn, &mut p) {
            Ok(()) => {
                conn.proxy = Some(p);
                Handled::Proxy
            }
            Err(code) => {
                // The attempts (none reachable) go with the request to its error page.
                hand_over_to(request, &mut p);
                conn.proxy = Some(p);
                self.proxy_abort(conn);
                Handled::Status(code)
            }
        }
    }

    /// The URI sent upstream (nginx's rules): with a URI part in proxy_pass, the matched
    /// location prefix is replaced by it (unless `rewrite … break` changed the URI in this
    /// location: then the changed URI goes whole); without, the client's URI goes
    /// unchanged, or a changed URI (rewrite, internal redirect) escaped; with the arguments.
    fn upstream_uri(
        &self,
        conn: &Conn,
        request: &RequestCtx,
        prefix: Option<proton_ir::TextRef>,
        part: Option<&proton_ir::Template>,
        out: &mut Vec<u8>,
    ) {
        let head = &request.head;
        let changed = request.uri_changed;
        match part {
            None if !changed => {
                let target = conn.rbuf.get(head.target.clone()).unwrap_or(b"/");
                if head.empty_path {
                    out.push(b'/');
                }
                out.extend_from_slice(target);
                return;
            }
            // The location prefix is replaced unless a `rewrite … break` in this location
            // changed the URI (nginx's `valid_location`): after `last`, an internal
            // redirect (error_page, try_files, index, post_action) it is replaced too.
            Some(t) if !request.rewritten_here => {
                let uri = &request.uri;
                let rest = match prefix.map(|n| self.loaded.ir.text_of(n).as_bytes()) {
                    Some(prefix) if uri.starts_with(prefix) => &uri[prefix.len()..],
                    _ => &uri[..],
                };
                // The URI part is a template (no variables allowed with a URI part in a
                // location prefix, as nginx; literal text here).
                for p in &t.parts {
                    if let proton_ir::Part::Literal(s) = p {
                        out.extend_from_slice(s.as_bytes());
                    }
                }
                escape_into(rest, out);
            }
            _ => escape_into(&request.uri, out),
        }
        if !request.args.is_empty() {
            out.push(b'?');
            out.extend_from_slice(&request.args);
        }
    }

    /// Picks a server (skipping those tried) and starts connecting, from the keep-alive
    /// cache when it has a live connection to that server. `Err(status)`: no server left.
    fn connect(&mut self, owner: usize, p: &mut Proxy) -> Result<(), u16> {
        let u = p.upstream;
        while !p.addrs.is_empty() {
            // The addresses of a proxy_pass with variables: each one try, in order.
            let Some(a) = p.addrs.get(p.tries as usize).cloned() else {
                return Err(502);
            };
            p.peer = usize::MAX;
            p.tries += 1;
            p.attempt_start = self.now;
            p.begin_attempt(UpPeer::Addr(a.clone()));
            p.sent_any = false;
            p.req_pos = 0;
            rewind_body(p);
            p.cached = false;
            p.direct = Some(a.clone());
            match self.open(owner, p, &a) {
                Ok(()) => return Ok(()),
                Err(Open::Connect(e)) => {
                    self.log_connect_error(p, &e);
                    self.note_upstream(p, 502);
                    if !self.may_retry(p, Fail::Error) {
                        return Err(502);
                    }
                }
                Err(Open::Local(what, e)) => {
                    self.log_local_error(p, &what, &e);
                    return Err(500);
                }
            }
        }
        loop {
            let now = self.now;
            let Some(bal) = self.ups.balancers.get_mut(u) else {
                return Err(502);
            };
            let Some(peer) = bal.pick(&p.key, now, &p.tried) else {
                let name = &self.loaded.ir.upstreams[u].name;
                elog!(
                    self.elog,
                    Error,
                    "no live upstreams while connecting to upstream \"{name}\""
                );
                // nginx's state names the group.
                p.attempt_start = now;
                p.begin_attempt(UpPeer::Group(u as u32));
                self.note_upstream(p, 502);
                return Err(502);
            };
            if !bal.try_acquire(peer) {
                // max_conns reached meanwhile by another worker: another server.
                p.tried.push(peer);
                continue;
            }
            p.peer = peer;
            p.tries += 1;
            p.attempt_start = now;
            let tried = self
                .peer_addr(p)
                .cloned()
                .map_or(UpPeer::Group(u as u32), UpPeer::Addr);
            p.begin_attempt(tried);
            p.sent_any = false;
            p.req_pos = 0;
            rewind_body(p);
            let idle = if p.pp.is_empty() {
                self.ups.take_idle(u, peer, owner, !p.idempotent, p.https)
            } else {
                // A connection that started with another client's PROXY line is not this
                // client's.
                None
            };
            if let Some(key) = idle {
                p.up = Some(key);
                p.up_ready = false;
                p.up_hup = false;
                p.cached = true;
                if let Some(st) = p.states.last_mut() {
                    st.connect_ms = Some(0);
                }
                p.st = St::Send;
                p.deadline =
                    now + Duration::from_millis(self.proxy_settings(p.loc).send_timeout_ms);
                return Ok(());
            }
            p.cached = false;
            let addr = self.ups.peer_address(u, peer).cloned();
            let result = match &addr {
                Some(a) => self.open(owner, p, a),
                None => Err(Open::Connect(std::io::Error::new(
                    ErrorKind::NotFound,
                    "no address",
                ))),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(Open::Local(what, e)) => {
                    // The local end could not be set up (proxy_bind): nginx answers 500 and
                    // tries no other server; the server is not to blame.
                    self.log_local_error(p, &what, &e);
                    if let Some(bal) = self.ups.balancers.get_mut(u) {
                        bal.release(peer);
                    }
                    return Err(500);
                }
                Err(Open::Connect(e)) => {
                    self.log_connect_error(p, &e);
                    self.note_upstream(p, 502);
                    let bal = &mut self.ups.balancers[u];
                    bal.release(peer);
                    bal.report(peer, Report::Failure, now);
                    p.tried.push(peer);
                    if !self.may_retry(p, Fail::Error) {
                        return Err(502);
                    }
                }
            }
        }
    }

    /// Starts a non-blocking connect to `addr` for the current attempt (a unix socket is
    /// carried as a `TcpStream` over its descriptor: see [`PeerAddr`]).
    fn open(&mut self, owner: usize, p: &mut Proxy, addr: &PeerAddr) -> Result<(), Open> {
        let tls = if p.https {
            Some(Box::new(self.upstream_tls(p, addr).map_err(Open::Connect)?))
        } else {
            None
        };
        let mut sock: TcpStream = match p.bind {
            Some(local) => match addr.connect_bound(local, p.bind_transparent) {
                Ok(s) => s,
                Err(ConnectError::Connect(e)) => return Err(Open::Connect(e)),
                Err(ConnectError::Local(what, e)) => return Err(Open::Local(what, e)),
            },
            None => addr.connect().map_err(Open::Connect)?,
        };
        if self.proxy_settings(p.loc).socket_keepalive && matches!(addr, PeerAddr::Inet(_)) {
            // Best effort, as nginx (a failure is not worth failing the request for).
            let _ = socket2::SockRef::from(&sock).set_keepalive(true);
        }
        let gen = self.ups.generation(p.upstream, p.peer);
        let entry = self.ups.conns.vacant_entry();
        let key = entry.key();
        self.registry
            .register(
                &mut sock,
                Token(UP_BASE + key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(Open::Connect)?;
        let now = self.now;
        entry.insert(UpConn {
            sock,
            tls,
            upstream: p.upstream,
            peer: p.peer,
            owner: Some(owner),
            requests: 0,
            idle_until: now,
            opened: now,
            gen,
        });
        p.up = Some(key);
        p.pp_pos = 0;
        p.up_ready = false;
        p.up_hup = false;
        p.st = St::Connect;
        p.deadline = now + Duration::from_millis(self.proxy_settings(p.loc).connect_timeout_ms);
        Ok(())
    }

    /// A TLS session for a new connection to `addr`: the location's `proxy_ssl_*` config,
    /// made for the request's `proxy_ssl_name` (an IP address, or a name that is not a
    /// valid DNS name, goes without SNI, as nginx; verification then checks the address).
    fn upstream_tls(&self, p: &Proxy, addr: &PeerAddr) -> std::io::Result<UpTls> {
        use rustls::pki_types::ServerName;
        let ir = &self.loaded.ir;
        let settings = ir
            .locations
            .get(p.loc.0 as usize)
            .map_or(0, |l| l.conf.settings.0 as usize);
        let config = match &p.tls_config {
            Some(c) => c,
            None => self
                .loaded
                .upstream_tls
                .get(settings)
                .and_then(Option::as_ref)
                .ok_or_else(|| {
                    std::io::Error::other("no usable proxy_ssl_* settings for an https upstream")
                })?,
        };
        // A unix socket has no address to check a certificate against: `localhost`.
        let fallback = || match addr {
            PeerAddr::Inet(a) => ServerName::IpAddress(a.ip().into()),
            PeerAddr::Unix(_) => ServerName::try_from("localhost")
                .unwrap_or(ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())),
        };
        let name = std::str::from_utf8(&p.ssl_name)
            .ok()
            .and_then(|n| ServerName::try_from(n.to_string()).ok())
            .unwrap_or_else(fallback);
        UpTls::new(config.clone(), name).map_err(std::io::Error::other)
    }

    /// The TLS config of settings `settings` (`tls`) with the client certificate and key
    /// that `p` names (`proxy_ssl_certificate` with variables): built when a pair of names
    /// is first used, then kept (the most recent [`CERT_CONFIGS`] pairs). Relative names are
    /// relative to the prefix, as the other TLS files. The error names the file.
    fn tls_with_certificate(
        &mut self,
        settings: usize,
        tls: &proton_ir::UpstreamTls,
        p: &Proxy,
    ) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
        let cache = &mut self.ups.cert_configs;
        if let Some(i) = cache
            .iter()
            .position(|c| c.0 == settings && c.1 == p.ssl_cert && c.2 == p.ssl_key)
        {
            let hit = cache.remove(i);
            let config = hit.3.clone();
            cache.push(hit);
            return Ok(config);
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut t = tls.clone();
        t.certificate_vars = None;
        t.certificate = Some(proton_ir::CertificatePair {
            certificate: text(&p.ssl_cert),
            key: text(&p.ssl_key),
        });
        let t = proton_tls::resolve_upstream_paths(&t, &self.loaded.prefix);
        let config = std::sync::Arc::new(proton_tls::client_config(&t)?);
        if cache.len() >= CERT_CONFIGS {
            cache.remove(0);
        }
        cache.push((
            settings,
            p.ssl_cert.clone(),
            p.ssl_key.clone(),
            config.clone(),
        ));
        Ok(config)
    }

    /// The access-log line of a request closed without an answer, with the status nginx
    /// logs for it (400 client gone during its body, 408 body timeout, 499 client gone).
    fn log_unanswered(&mut self, conn: &mut Conn, status: u16) {
        conn.finished.status = status;
        conn.finished.header_bytes = 0;
        conn.finished.body_bytes = 0;
        self.log_access(conn);
    }

    fn proxy_settings(&self, loc: LocationId) -> &proton_ir::ProxySettings {
        &self.settings_for(loc).proxy
    }

    fn peer_name(&self, u: usize, peer: usize) -> String {
        if peer == usize::MAX {
            return "the proxy_pass address".to_string();
        }
        self.ups
            .peer_address(u, peer)
            .map_or_else(|| "?".to_string(), PeerAddr::to_string)
    }

    /// The address of the current attempt's server (the literal one of a proxy_pass with
    /// variables, else the group's).
    fn peer_addr<'p>(&'p self, p: &'p Proxy) -> Option<&'p PeerAddr> {
        match &p.direct {
            Some(a) => Some(a),
            None => self.ups.peer_address(p.upstream, p.peer),
        }
    }

    /// The upstream's URL as nginx's error log names it: scheme, peer address (a unix
    /// socket's followed by `:`) and the URI sent, `http://127.0.0.1:8080/a?b`,
    /// `http://unix:/run/app.sock:/a?b`.
    fn upstream_url<'p>(&'p self, p: &'p Proxy) -> UpstreamUrl<'p> {
        UpstreamUrl {
            https: p.https,
            peer: self.peer_addr(p),
            // The head is still at the start of `req` while the request can be sent again.
            uri: p
                .replayable
                .then(|| p.req.get(p.uri_at.clone()))
                .flatten()
                .unwrap_or_default(),
        }
    }

    /// nginx's line for a failed connect (`crit` for errors other than a refusal or an
    /// unreachable network, such as a unix socket file that is not there).
    fn log_connect_error(&self, p: &Proxy, e: &std::io::Error) {
        use nix::errno::Errno;
        let refused = matches!(
            e.raw_os_error().map(Errno::from_raw),
            Some(
                Errno::ECONNREFUSED
                    | Errno::EAGAIN
                    | Errno::ECONNRESET
                    | Errno::ENETDOWN
                    | Errno::ENETUNREACH
                    | Errno::EHOSTDOWN
                    | Errno::EHOSTUNREACH
            )
        );
        let level = if refused {
            proton_ir::LogLevel::Error
        } else {
            proton_ir::LogLevel::Crit
        };
        let url = self.upstream_url(p);
        self.elog.log(
            level,
            format_args!(
                "connect() to {} failed ({}) while connecting to upstream, client: {}, upstream: \"{url}\"",
                PeerName(url.peer),
                crate::log::OsError(e),
                p.client
            ),
        );
    }

    /// nginx's line for a local end that could not be set up (`proxy_bind`): `crit` for a
    /// failed `bind`, `alert` for a failed `setsockopt` (IP_TRANSPARENT without
    /// CAP_NET_ADMIN).
    fn log_local_error(&self, p: &Proxy, what: &str, e: &std::io::Error) {
        let level = if what.starts_with("bind(") {
            proton_ir::LogLevel::Crit
        } else {
            proton_ir::LogLevel::Alert
        };
        let hint = if p.bind_transparent && e.raw_os_error() == Some(nix::libc::EPERM) {
            " (proxy_bind transparent needs CAP_NET_ADMIN)"
        } else {
            ""
        };
        self.elog.log(
            level,
            format_args!(
                "{what} failed ({}){hint} while connecting to upstream, client: {}, upstream: \"{}\"",
                crate::log::OsError(e),
                p.client,
                self.upstream_url(p)
            ),
        );
    }

    /// Whether a failed attempt may move to the next server (nginx's proxy_next_upstream).
    fn may_retry(&self, p: &Proxy, fail: Fail) -> bool {
        let ps = self.proxy_settings(p.loc);
        let nu = &ps.next_upstream;
        let allowed = match fail {
            Fail::Error => nu.error,
            Fail::Timeout => nu.timeout,
            Fail::InvalidHeader => nu.invalid_header,
            Fail::Status(500) => nu.http_500,
            Fail::Status(502) => nu.http_502,
            Fail::Status(503) => nu.http_503,
            Fail::Status(504) => nu.http_504,
            Fail::Status(403) => nu.http_403,
            Fail::Status(404) => nu.http_404,
            Fail::Status(429) => nu.http_429,
            Fail::Status(_) => false,
        };
        let servers = if p.addrs.is_empty() {
            self.loaded
                .ir
                .upstreams
                .get(p.upstream)
                .map_or(1, |u| u.servers.len().max(1)) as u32
        } else {
            p.addrs.len() as u32
        };
        allowed
            && p.tries < servers
            && p.replayable
            && p.written == 0
            && (ps.next_upstream_tries == 0 || p.tries < ps.next_upstream_tries)
            && (ps.next_upstream_timeout_ms == 0
                || self.now.saturating_duration_since(p.first_try)
                    < Duration::from_millis(ps.next_upstream_timeout_ms))
            && (p.idempotent || !p.sent_any || nu.non_idempotent)
    }

    /// Ends the current attempt: the upstream connection is closed (or cached when
    /// `reuse`), and the balancer is told.
    fn end_attempt(&mut self, p: &mut Proxy, reuse: bool, report: Option<Report>) {
        let u = p.upstream;
        if let Some(key) = p.up.take() {
            let up = &self.loaded.ir.upstreams[u];
            // An attempt on a `server … resolve` peer's former address says nothing of the
            // peer now, and its connection is not kept.
            let current = self.ups.conns.get(key).is_none_or(|c| self.ups.current(c));
            let cache = reuse
                && current
                && p.pp.is_empty()
                && up.keepalive > 0
                && !self.draining
                && self.ups.conns.get(key).is_some_and(|c| {
                    (up.keepalive_requests == 0 || c.requests < up.keepalive_requests)
                        && self.now.saturating_duration_since(c.opened)
                            <= Duration::from_millis(up.keepalive_time_ms)
                });
            if cache {
                let now = self.now;
                if let Some(c) = self.ups.conns.get_mut(key) {
                    c.owner = None;
                    c.idle_until = now + Duration::from_millis(up.keepalive_timeout_ms);
                }
                // The cache may go past `keepalive` until the end of this event-loop
                // round (`Upstreams::trim`): a request handled later in the same round
                // takes the connection instead of opening a new one.
                let list = &mut self.ups.idle[u];
                list.push(key);
                if list.len() > up.keepalive as usize {
                    self.ups.overfull = true;
                }
            } else {
                self.ups.conns.try_remove(key);
            }
            if let Some(bal) = self.ups.balancers.get_mut(u) {
                bal.release(p.peer);
                if let Some(r) = report.filter(|_| current) {
                    bal.report(p.peer, r, self.now);
                }
            }
        }
    }

    /// A failed attempt: the next server if allowed, else the status to answer.
    fn fail(&mut self, conn_key: usize, p: &mut Proxy, fail: Fail, what: &str) -> Result<(), u16> {
        let stale = p.cached && fail == Fail::Error && p.hold.is_empty();
        if !matches!(fail, Fail::Status(_)) {
            elog!(
                self.elog,
                Error,
                "{what}, client: {}, upstream: \"{}\"",
                p.client,
                self.upstream_url(p)
            );
        }
        // Every failure but a 403/404 counts toward max_fails, also on a cached connection
        // that turns out closed (nginx's ngx_http_upstream_next frees the peer as FAILED
        // either way): a server that drops kept-alive connections early loses its share
        // for fail_timeout instead of failing request after request.
        let counts = !matches!(fail, Fail::Status(403 | 404));
        self.end_attempt(p, false, counts.then_some(Report::Failure));
        let status = match fail {
            Fail::Timeout => 504,
            Fail::Status(s) => s,
            _ => 502,
        };
        self.note_upstream(p, status);
        // As nginx, a closed cached connection does not use up a try: the request is sent
        // again on a fresh connection when it can be (for POST, PATCH and LOCK only if
        // none of it was written).
        // (A local end that cannot be set up answers 500 whatever failed before.)
        let or_status = |code: u16| if code == 500 { 500 } else { status };
        if stale && p.replayable && p.written == 0 && (p.idempotent || !p.sent_any) {
            p.hold.clear();
            p.tries = p.tries.saturating_sub(1);
            return self.connect(conn_key, p).map_err(or_status);
        }
        p.tried.push(p.peer);
        if self.may_retry(p, fail) {
            p.hold.clear();
            return self.connect(conn_key, p).map_err(or_status);
        }
        Err(status)
    }

    /// Drops the proxy state of `conn` (upstream connection closed, body left to discard).
    pub(crate) fn proxy_abort(&mut self, conn: &mut Conn) {
        if let Some(mut p) = conn.proxy.take() {
            if let (St::Resolve, Some((rid, _))) = (p.st, p.resolve) {
                // No longer waiting (nginx's ngx_resolve_name_done).
                self.resolvers.cancel(rid, p.resolve_serial);
            }
            p.end_attempt_time(self.now);
            hand_over_upstream(conn, &mut p);
            self.end_attempt(&mut p, false, None);
            // With a body of the proxy's own, the client's is the connection's already.
            if !p.own_body {
                conn.discard = match std::mem::replace(&mut p.body, ReqBody::None) {
                    ReqBody::None => super::conn::Discard::None,
                    ReqBody::Length(n) => super::conn::Discard::Length(n),
                    ReqBody::Chunked(d) => super::conn::Discard::Chunked(Box::new(d)),
                };
            }
            self.recycle(p);
        }
    }

    fn recycle(&mut self, mut p: Box<Proxy>) {
        if self.ups.free.len() < FREE_MAX && p.req.capacity() <= 4 * REQ_WINDOW {
            p.reset(self.now);
            self.ups.free.push(p);
        }
    }

    /// The request's upstream deadline passed.
    pub(crate) fn proxy_timeout(&mut self, conn: &mut Conn) -> Drive {
        let Some(mut p) = conn.proxy.take() else {
            return Drive::Close;
        };
        let what = match p.st {
            St::ReadBody => {
                // As nginx (ngx_http_terminate_request with 408): no answer, the request is
                // logged with 408 and the connection closed. (nginx writes no error-log
                // line for it; Proton says what happened at `info`.)
                elog!(
                    self.elog,
                    Info,
                    "client timed out (110: Connection timed out) while reading client request body, client: {}",
                    conn.peer.ip()
                );
                self.log_unanswered(conn, 408);
                conn.proxy = Some(p);
                self.proxy_abort(conn);
                return Drive::Close;
            }
            St::Resolve => {
                p.resolved = Some(Err(crate::resolver::wire::TIMEDOUT));
                let r = self.step_resolve(conn, &mut p);
                conn.proxy = Some(p);
                return match r {
                    Step::Done(Drive::Failed(code)) => {
                        self.proxy_abort(conn);
                        Drive::Failed(code)
                    }
                    _ => self.drive(conn),
                };
            }
            St::Connect => "upstream timed out (110: Connection timed out) while connecting",
            St::Send => "upstream timed out (110: Connection timed out) while sending request",
            St::Head => {
                "upstream timed out (110: Connection timed out) while reading response header"
            }
            St::Body | St::Tunnel => {
                // The head went out: the response can only be cut short. Say which side
                // stalled, log the request, close.
                let url = self.upstream_url(&p);
                // The upstream stalled if it is still being read and its own deadline
                // passed; otherwise the client did.
                let read_timeout =
                    Duration::from_millis(self.proxy_settings(p.loc).read_timeout_ms);
                let upstream_stalled = p.st == St::Tunnel
                    || (!p.released
                        && !p.upstream_eof
                        && self.now >= p.upstream_progress + read_timeout);
                if !upstream_stalled {
                    elog!(
                        self.elog,
                        Info,
                        "client timed out (110: send_timeout) while sending response to client, client: {}, upstream: \"{url}\"",
                        conn.peer.ip()
                    );
                } else {
                    elog!(
                        self.elog,
                        Error,
                        "upstream timed out (110: Connection timed out) while reading upstream, client: {}, upstream: \"{url}\"",
                        conn.peer.ip()
                    );
                }
                self.log_access_proxy(conn, &mut p);
                conn.proxy = Some(p);
                self.proxy_abort(conn);
                return Drive::Close;
            }
        };
        let r = self.fail(conn.key as usize, &mut p, Fail::Timeout, what);
        conn.proxy = Some(p);
        match r {
            Ok(()) => self.drive(conn),
            Err(code) => {
                self.proxy_abort(conn);
                Drive::Failed(code)
            }
        }
    }

    /// Connects to an upstream; for the name of a proxy_pass with variables, first asks the
    /// location's resolver (the request then waits in `St::Resolve`, at most
    /// `resolver_timeout`).
    fn connect_or_resolve(&mut self, conn: &Conn, p: &mut Proxy) -> Result<(), u16> {
        if let (Some((rid, _)), true) = (p.resolve, p.addrs.is_empty()) {
            let timeout = self.settings_for(p.loc).resolver_timeout_ms;
            let w = crate::resolver::Waiter {
                key: conn.key as usize,
                number: conn.number,
                request: conn.served as u64,
                serial: self.resolvers.next_serial(),
                deadline: self.now + Duration::from_millis(timeout),
                recursion: 0,
            };
            let name = p.dyn_url.get(p.resolve_name.clone()).unwrap_or_default();
            match self
                .resolvers
                .resolve(rid, name, w, self.now, &self.registry, &self.elog)
            {
                Some(outcome) => return self.use_resolved(conn.key as usize, p, outcome),
                None => {
                    p.st = St::Resolve;
                    p.resolve_serial = w.serial;
                    p.deadline = w.deadline;
                    return Ok(());
                }
            }
        }
        self.connect(conn.key as usize, p)
    }

    /// The resolver's answer: the addresses become the servers to try, or the request
    /// fails with 502 (nginx's `ngx_http_upstream_resolve_handler`).
    fn use_resolved(
        &mut self,
        owner: usize,
        p: &mut Proxy,
        outcome: crate::resolver::Outcome,
    ) -> Result<(), u16> {
        let port = p.resolve.map_or(80, |(_, port)| port);
        match outcome {
            Ok(ips) if !ips.is_empty() => {
                p.addrs.clear();
                p.addrs.extend(
                    ips.into_iter()
                        .map(|ip| PeerAddr::Inet(std::net::SocketAddr::new(ip, port))),
                );
                let tries = self.proxy_settings(p.loc).next_upstream_tries as usize;
                if tries > 0 {
                    p.addrs.truncate(tries);
                }
                p.first_try = self.now;
                p.deadline =
                    self.now + Duration::from_millis(self.proxy_settings(p.loc).connect_timeout_ms);
                self.connect(owner, p)
            }
            Ok(_) | Err(_) => {
                let code = outcome.err().unwrap_or(2);
                let name = p.dyn_url.get(p.resolve_name.clone()).unwrap_or_default();
                elog!(
                    self.elog,
                    Error,
                    "{} could not be resolved ({code}: {}), client: {}",
                    String::from_utf8_lossy(name),
                    crate::resolver::wire::strerror(code),
                    p.client
                );
                Err(502)
            }
        }
    }

    /// `St::Resolve`: goes on once the worker handed the resolver's answer over.
    fn step_resolve(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        let Some(outcome) = p.resolved.take() else {
            return Step::Blocked;
        };
        match self.use_resolved(conn.key as usize, p, outcome) {
            Ok(()) => Step::Progress,
            Err(code) => Step::Done(Drive::Failed(code)),
        }
    }

    /// Advances the proxied request of `conn` as far as the sockets allow.
    pub(crate) fn drive(&mut self, conn: &mut Conn) -> Drive {
        let Some(mut p) = conn.proxy.take() else {
            return Drive::Close;
        };
        // (A post action ignores the client, as nginx blocks reading for it.)
        if conn.rd_hup
            && !p.discard
            && matches!(p.st, St::Resolve | St::Connect | St::Send | St::Head)
            && matches!(p.body, ReqBody::None)
            && !self.proxy_settings(p.loc).ignore_client_abort
        {
            // The client went away (FIN or error) while the upstream works on its request:
            // stop, as nginx does without proxy_ignore_client_abort.
            elog!(
                self.elog,
                Info,
                "client prematurely closed connection, so upstream connection is closed too, client: {}",
                conn.peer.ip()
            );
            // The attempt ends here (nginx's finalize).
            p.end_attempt_time(self.now);
            hand_over_upstream(conn, &mut p);
            self.log_unanswered(conn, 499);
            conn.proxy = Some(p);
            self.proxy_abort(conn);
            return Drive::Close;
        }
        let r = self.drive_inner(conn, &mut p);
        match r {
            Drive::Blocked => {
                conn.deadline = p.deadline;
                conn.proxy = Some(p);
            }
            Drive::Finished => {
                self.release_upstream(&mut p);
                hand_over_upstream(conn, &mut p);
                conn.finished.status = p.sent_status();
                // A post action sent nothing: the bytes are those of the response sent.
                if !p.discard {
                    conn.finished.header_bytes = p.header_bytes;
                    conn.body_sent = p.written.saturating_sub(p.header_bytes);
                    conn.close_after |= !p.keep_client;
                }
                conn.wbuf.clear();
                conn.wpos = 0;
                self.recycle(p);
            }
            Drive::Close | Drive::Failed(_) | Drive::Redirect => {
                conn.proxy = Some(p);
                self.proxy_abort(conn);
            }
        }
        r
    }

    fn response_reusable(&self, p: &Proxy) -> bool {
        let http11 = self.proxy_settings(p.loc).http_version == ProxyHttpVersion::Http11;
        http11
            && p.resp.keep_alive_for(p.head_only)
            && p.req_pos == p.req.len()
            && p.file_read == p.file_len
            && matches!(p.body, ReqBody::None)
            && !matches!(p.relay.framing, Framing::UntilClose)
    }

    fn drive_inner(&mut self, conn: &mut Conn, p: &mut Proxy) -> Drive {
        loop {
            let step = match p.st {
                St::ReadBody => self.step_read_body(conn, p),
                St::Resolve => self.step_resolve(conn, p),
                St::Connect => self.step_connect(conn, p),
                St::Send => self.step_send(conn, p),
                St::Head => self.step_head(conn, p),
                St::Body => return self.step_body(conn, p),
                St::Tunnel => return self.step_tunnel(conn, p),
            };
            match step {
                Step::Progress => continue,
                Step::Blocked => return Drive::Blocked,
                Step::Done(d) => return d,
                Step::Fail(f, what) => {
                    if let Err(code) = self.fail(conn.key as usize, p, f, what) {
                        return Drive::Failed(code);
                    }
                }
                Step::FailWith(f, what) => {
                    if let Err(code) = self.fail(conn.key as usize, p, f, &what) {
                        return Drive::Failed(code);
                    }
                }
            }
        }
    }

    /// The connection is in progress: the first write of the request tells how it went
    /// (`EAGAIN` while the handshake is on, the connect error if it failed), without a
    /// `getsockopt`/`getpeername` round. Over loopback the handshake is usually done by the
    /// time `connect` returns, so the request goes out at once.
    fn step_connect(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        // `proxy_protocol`: the PROXY line goes first, before a TLS handshake too.
        while p.pp_pos < p.pp.len() {
            let Some(c) = p.up.and_then(|k| self.ups.conns.get_mut(k)) else {
                return Step::Fail(Fail::Error, "lost upstream connection");
            };
            match (&c.sock).write(&p.pp[p.pp_pos..]) {
                Ok(0) => return Step::Blocked,
                Ok(n) => p.pp_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Blocked,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    return Step::Fail(
                        Fail::Error,
                        "connect() failed (111: Connection refused) while connecting to upstream",
                    )
                }
                Err(_) => {
                    return Step::Fail(Fail::Error, "connect() failed while connecting to upstream")
                }
            }
        }
        if p.https {
            return self.step_handshake(p);
        }
        // A streamed body's bytes that came with the head go in the first write, with the
        // head (as nginx's preread): an upstream reading once gets both.
        if p.req_pos == 0
            && !matches!(p.body, ReqBody::None)
            && conn.rbuf.len() > conn.head_len()
            && p.req.len() < REQ_WINDOW
        {
            if let Pull::Fail(d) = self.pull_body(conn, p) {
                return Step::Done(d);
            }
        }
        match self.write_req(p) {
            Ok(_) => self.connected(p),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Step::Blocked,
            Err(e) if e.kind() == ErrorKind::Interrupted => Step::Progress,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Step::Fail(
                Fail::Error,
                "connect() failed (111: Connection refused) while connecting to upstream",
            ),
            Err(_) => Step::Fail(Fail::Error, "connect() failed while connecting to upstream"),
        }
    }

    /// The TLS handshake with an `https://` upstream, after the connect and before the
    /// request, within proxy_connect_timeout (as nginx). Its failure is an upstream error.
    fn step_handshake(&mut self, p: &mut Proxy) -> Step {
        let Some(c) = p.up.and_then(|k| self.ups.conns.get_mut(k)) else {
            return Step::Fail(Fail::Error, "lost upstream connection");
        };
        let Some(t) = c.tls.as_deref_mut() else {
            return self.connected(p);
        };
        match t.handshake(&c.sock, &mut p.up_ready, p.up_hup) {
            Handshake::Done => self.connected(p),
            Handshake::Blocked => Step::Blocked,
            Handshake::Connect(e) if e.kind() == ErrorKind::ConnectionRefused => Step::Fail(
                Fail::Error,
                "connect() failed (111: Connection refused) while connecting to upstream",
            ),
            Handshake::Connect(_) => {
                Step::Fail(Fail::Error, "connect() failed while connecting to upstream")
            }
            Handshake::Closed => Step::Fail(
                Fail::Error,
                "peer closed connection in SSL handshake while SSL handshaking to upstream",
            ),
            Handshake::Tls(e) => Step::FailWith(Fail::Error, handshake_error(&e, &p.ssl_name)),
        }
    }

    fn connected(&mut self, p: &mut Proxy) -> Step {
        let ms = p.attempt_ms(self.now);
        if let Some(st) = p.states.last_mut() {
            st.connect_ms.get_or_insert(ms);
        }
        p.st = St::Send;
        p.deadline = self.now + Duration::from_millis(self.proxy_settings(p.loc).send_timeout_ms);
        Step::Progress
    }

    /// Writes the next bytes of `p.req` to the upstream; `Ok(0)` is the upstream closing.
    fn write_req(&mut self, p: &mut Proxy) -> std::io::Result<usize> {
        let c =
            p.up.and_then(|k| self.ups.conns.get_mut(k))
                .ok_or_else(|| std::io::Error::from(ErrorKind::NotConnected))?;
        let n = client_write(&c.sock, c.tls.as_deref_mut(), &p.req[p.req_pos..])?;
        if n > 0 {
            p.req_pos += n;
            p.sent_any = true;
            let ms = p.attempt_ms(self.now);
            if let Some(st) = p.states.last_mut() {
                st.connect_ms.get_or_insert(ms);
                st.bytes_sent += n as u64;
            }
            if p.req_pos == p.req.len() && p.req.len() > REPLAY_MAX && !p.buffered {
                // Too large to keep for a retry: the window slides.
                p.req.clear();
                p.req_pos = 0;
                p.replayable = false;
            }
        }
        Ok(n)
    }

    fn step_send(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        loop {
            // Take body bytes from the client while there is room.
            let mut progressed = false;
            if !matches!(p.body, ReqBody::None) && p.req.len() - p.req_pos < REQ_WINDOW {
                match self.pull_body(conn, p) {
                    Pull::Got => progressed = true,
                    Pull::Wait => {}
                    Pull::Fail(d) => return Step::Done(d),
                }
            }
            if p.req_pos >= p.req.len() && p.file_read < p.file_len {
                // The next piece of a body in a temporary file, after the head.
                match self.next_file_piece(conn, p) {
                    Ok(()) => continue,
                    Err(()) => return Step::Done(Drive::Failed(500)),
                }
            }
            if p.req_pos >= p.req.len() {
                if matches!(p.body, ReqBody::None) {
                    p.st = St::Head;
                    p.deadline = self.now
                        + Duration::from_millis(self.proxy_settings(p.loc).read_timeout_ms);
                    if let Some(c) = p.up.and_then(|k| self.ups.conns.get_mut(k)) {
                        c.requests += 1;
                    }
                    return Step::Progress;
                }
                return if progressed { continue } else { Step::Blocked };
            }
            match self.write_req(p) {
                Ok(0) => {
                    return Step::Fail(
                        Fail::Error,
                        "upstream closed the connection while sending request",
                    )
                }
                Ok(_) => {
                    p.deadline = self.now
                        + Duration::from_millis(self.proxy_settings(p.loc).send_timeout_ms);
                }
                Err(e) if e.kind() == ErrorKind::NotConnected => {
                    return Step::Fail(Fail::Error, "lost upstream connection")
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Step::Blocked;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Step::Fail(
                    Fail::Error,
                    "writev() failed (Connection reset by peer) while sending request to upstream",
                ),
            }
        }
    }

    /// Reads the request body whole into the request context (memory, then a temporary
    /// file), then frames it, picks an upstream and connects.
    fn step_read_body(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        let limit = if p.memory_only {
            u64::MAX
        } else {
            self.settings_for(p.loc).client_body_buffer_size
        };
        let Some(req) = conn.req.as_deref_mut() else {
            return Step::Done(Drive::Failed(500));
        };
        if req.body.state == super::body::BodyState::Unread {
            req.body.start(limit, false);
        }
        loop {
            if matches!(p.body, ReqBody::None) {
                return self.body_read(conn, p);
            }
            match self.pull_body(conn, p) {
                Pull::Got => {
                    let timeout = self.settings_for(p.loc).client_body_timeout_ms;
                    p.deadline = self.now + Duration::from_millis(timeout);
                }
                Pull::Wait => return Step::Blocked,
                Pull::Fail(Drive::Close) => {
                    // The client went away (or its socket failed) before its body was in:
                    // nothing is answered, and the log line says 400, as nginx's.
                    self.log_unanswered(conn, 400);
                    return Step::Done(Drive::Close);
                }
                Pull::Fail(d) => return Step::Done(d),
            }
        }
    }

    /// The body is in: what is buffered goes to its file, the head gets its framing, and
    /// the request goes to an upstream.
    fn body_read(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        let only_memory = p.memory_only;
        if let Err(d) = self.with_spill(conn, p.loc, only_memory, |body, spill| body.finish(spill))
        {
            return Step::Done(d);
        }
        let Some(req) = conn.req.as_deref() else {
            return Step::Done(Drive::Failed(500));
        };
        let mut head = std::mem::take(&mut p.req);
        frame_kept_body(&mut head, &req.body, p);
        p.req = head;
        p.read_whole = false;
        p.first_try = self.now;
        match self.connect_or_resolve(conn, p) {
            Ok(()) => Step::Progress,
            Err(code) => Step::Done(Drive::Failed(code)),
        }
    }

    /// Runs `f` on the request's body with where it may spill to; an I/O error is logged
    /// (as nginx, at `crit`) and becomes a 500. A temporary file just created is logged
    /// as nginx does (`warn`; `notice` with client_body_in_file_only).
    fn with_spill(
        &mut self,
        conn: &mut Conn,
        loc: LocationId,
        memory_only: bool,
        f: impl FnOnce(
            &mut super::body::RequestBody,
            &mut super::body::Spill<'_>,
        ) -> Result<bool, super::body::BodyError>,
    ) -> Result<(), Drive> {
        // The settings borrow the IR (not the worker), so the counter can be lent too.
        let loaded = self.loaded;
        let ir = &loaded.ir;
        let si = ir
            .locations
            .get(loc.0 as usize)
            .map_or(0, |l| l.conf.settings.0 as usize);
        let Some(s) = ir.settings.get(si).or(ir.settings.first()) else {
            return Err(Drive::Failed(500));
        };
        let Some(req) = conn.req.as_deref_mut() else {
            return Err(Drive::Failed(500));
        };
        let mut spill = super::body::Spill {
            temp: &s.client_body_temp_path,
            prefix: &loaded.prefix,
            in_file_only: if memory_only {
                proton_ir::BodyInFileOnly::Off
            } else {
                s.client_body_in_file_only
            },
            seq: &mut self.ups.temp_seq,
        };
        let only = spill.in_file_only != proton_ir::BodyInFileOnly::Off;
        match f(&mut req.body, &mut spill) {
            Ok(false) => Ok(()),
            Ok(true) => {
                let name = req
                    .body
                    .file_name()
                    .map(|n| n.display().to_string())
                    .unwrap_or_default();
                let msg = format_args!(
                    "a client request body is buffered to a temporary file {name}, client: {}",
                    conn.peer.ip()
                );
                if only {
                    self.elog.log(proton_ir::LogLevel::Notice, msg);
                } else {
                    self.elog.log(proton_ir::LogLevel::Warn, msg);
                }
                Ok(())
            }
            Err(e) => {
                elog!(self.elog, Crit, "{e}, client: {}", conn.peer.ip());
                Err(Drive::Failed(500))
            }
        }
    }

    /// Reads the next piece of a body in a temporary file into `p.req`, after the head
    /// (the piece before it was sent). `Err`: the file could not be read (logged).
    fn next_file_piece(&mut self, conn: &Conn, p: &mut Proxy) -> Result<(), ()> {
        let Some(req) = conn.req.as_deref() else {
            return Err(());
        };
        p.req.truncate(p.head_len);
        p.req_pos = p.head_len;
        let want = (p.file_len - p.file_read).min(FILE_CHUNK as u64) as usize;
        let at = p.req.len();
        p.req.resize(at + want, 0);
        let r = req.body.read_at(&mut p.req[at..], p.file_read);
        match r {
            Ok(n) if n > 0 => {
                p.req.truncate(at + n);
                p.file_read += n as u64;
                Ok(())
            }
            other => {
                p.req.truncate(at);
                let e = match other {
                    Err(e) => e,
                    Ok(_) => std::io::Error::from(ErrorKind::UnexpectedEof),
                };
                let name = req
                    .body
                    .file_name()
                    .map(|n| n.display().to_string())
                    .unwrap_or_default();
                elog!(
                    self.elog,
                    Crit,
                    "pread() \"{name}\" failed ({}), client: {}",
                    crate::log::OsError(&e),
                    conn.peer.ip()
                );
                Err(())
            }
        }
    }

    /// Moves request body bytes from the client: into `p.req` as they stream to the
    /// upstream (a copy of a body that fits client_body_buffer_size is kept for
    /// `$request_body`), or into the request context when the body is read whole.
    fn pull_body(&mut self, conn: &mut Conn, p: &mut Proxy) -> Pull {
        let start = conn.head_len().min(conn.rbuf.len());
        if conn.rbuf.len() == start {
            if p.client_eof {
                return Pull::Wait;
            }
            // Read more from the client.
            match client_read(
                &conn.sock,
                super::conn::tls_mut(&mut conn.ext),
                &mut conn.rd_ready,
                conn.rd_hup,
                &mut conn.rbuf,
                16 * 1024,
            ) {
                Ok(0) => {
                    elog!(
                        self.elog,
                        Info,
                        "client prematurely closed connection while sending request body, client: {}",
                        conn.peer.ip()
                    );
                    p.client_eof = true;
                    return Pull::Fail(Drive::Close);
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Pull::Wait,
                Err(e) if e.kind() == ErrorKind::Interrupted => return Pull::Got,
                Err(_) => return Pull::Fail(Drive::Close),
            }
        }
        if !p.read_whole {
            // A streamed body: its copy for `$request_body` starts with its first bytes.
            let limit = self.settings_for(p.loc).client_body_buffer_size;
            if let Some(req) = conn.req.as_deref_mut() {
                if req.body.state == super::body::BodyState::Unread {
                    req.body.start(limit, true);
                }
            }
        }
        // Streamed: no more than the window; read whole: all there is.
        let avail_len = conn.rbuf.len() - start;
        let room = if p.read_whole {
            avail_len
        } else {
            REQ_WINDOW.saturating_sub(p.req.len() - p.req_pos).max(1)
        };
        let end = start + avail_len.min(room);
        // The decoded pieces of this step, as ranges of `conn.rbuf`.
        let mut pieces = std::mem::take(&mut self.ups.pieces);
        pieces.clear();
        if matches!(p.body, ReqBody::None) {
            self.ups.pieces = pieces;
            return Pull::Wait;
        }
        let chunked = matches!(p.body, ReqBody::Chunked(_));
        // Re-framed (or read whole), as nginx: the client's chunk extensions and trailer
        // section are checked and dropped, never passed to the upstream.
        let (used, done) = match p.body.decode(&conn.rbuf[start..end], &mut pieces) {
            Ok(r) => r,
            Err(e) => {
                self.ups.pieces = pieces;
                return self.bad_body(conn, e);
            }
        };
        for r in pieces.iter_mut() {
            *r = r.start + start..r.end + start;
        }
        let mut result = Ok(());
        if p.read_whole {
            let rbuf = std::mem::take(&mut conn.rbuf);
            for r in &pieces {
                result = self.with_spill(conn, p.loc, p.memory_only, |body, spill| {
                    body.push(&rbuf[r.clone()], spill)
                });
                if result.is_err() {
                    break;
                }
            }
            conn.rbuf = rbuf;
        } else {
            let mut body = conn.req.as_deref_mut().map(|r| &mut r.body);
            crate::http::relay::frame_streamed(&conn.rbuf, &pieces, chunked, done, &mut p.req);
            for r in &pieces {
                if let Some(b) = body.as_deref_mut() {
                    b.push_streamed(&conn.rbuf[r.clone()]);
                }
            }
            if done {
                if let Some(b) = body {
                    b.finish_streamed();
                }
            }
        }
        self.ups.pieces = pieces;
        if let Err(d) = result {
            return Pull::Fail(d);
        }
        conn.rbuf.drain(start..start + used);
        if used == 0 && !done {
            return Pull::Wait;
        }
        Pull::Got
    }

    fn bad_body(&mut self, conn: &Conn, e: crate::http::HttpError) -> Pull {
        elog!(
            self.elog,
            Info,
            "client sent invalid chunked body ({}), client: {}",
            e.reason(),
            conn.peer.ip()
        );
        Pull::Fail(Drive::Failed(e.status()))
    }

    fn step_head(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        let ps = self.proxy_settings(p.loc);
        let limit = (ps.buffer_size as usize).max(1024);
        let Some(key) = p.up else {
            return Step::Fail(Fail::Error, "lost upstream connection");
        };
        let Some(c) = self.ups.conns.get_mut(key) else {
            return Step::Fail(Fail::Error, "lost upstream connection");
        };
        loop {
            match parse_response_head(&p.hold, limit, 100, &mut p.resp) {
                Ok(Parsed::Complete) => break,
                Ok(Parsed::Partial) => {}
                Err(e) => {
                    let reason = e.reason();
                    return Step::Fail(Fail::InvalidHeader, reason);
                }
            }
            let want = limit.saturating_sub(p.hold.len()).max(1);
            match client_read(
                &c.sock,
                c.tls.as_deref_mut(),
                &mut p.up_ready,
                p.up_hup,
                &mut p.hold,
                want,
            ) {
                Ok(0) => {
                    return Step::Fail(
                        Fail::Error,
                        "upstream prematurely closed connection while reading response header from upstream",
                    )
                }
                Ok(n) => {
                    if let Some(st) = p.states.last_mut() {
                        st.bytes_received += n as u64;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Blocked,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    return Step::Fail(
                        Fail::Error,
                        "recv() failed (104: Connection reset by peer) while reading response header from upstream",
                    )
                }
            }
        }
        let status = p.resp.status;
        p.head_latency = self.now.saturating_duration_since(p.attempt_start);
        if (100..200).contains(&status) && status != 101 {
            // An interim response: drop it and read the real one.
            let n = p.resp.head_len.min(p.hold.len());
            p.hold.drain(..n);
            p.resp.head_len = 0;
            return Step::Progress;
        }
        let ms = p.attempt_ms(self.now);
        if let Some(st) = p.states.last_mut() {
            st.header_ms = Some(ms);
            st.status = status;
        }
        // The head of the response that counts, for `$upstream_http_*` and
        // `$upstream_cookie_*` (kept by the request, in its own reused buffer).
        if let Some(req) = conn.req.as_deref_mut() {
            req.upstream_trailers.clear();
            req.upstream_head.clear();
            let n = p.resp.head_len.min(p.hold.len());
            req.upstream_head.extend_from_slice(&p.hold[..n]);
        }
        p.relay.received = 0;
        if status == 101 && !(p.upgrade && p.resp.upgrade.is_some()) {
            return Step::Fail(
                Fail::InvalidHeader,
                "upstream sent an unexpected 101 Switching Protocols",
            );
        }
        if matches!(status, 500 | 502 | 503 | 504 | 403 | 404 | 429)
            && self.may_retry(p, Fail::Status(status))
        {
            elog!(
                self.elog,
                Warn,
                "upstream {} answered {status}, trying the next one",
                self.peer_name(p.upstream, p.peer)
            );
            return Step::Fail(Fail::Status(status), "");
        }
        let ps = self.proxy_settings(p.loc);
        if ps.intercept_errors && status >= 300 {
            let s = self.settings_for(p.loc);
            if s.error_pages.iter().any(|e| e.codes.contains(&status)) {
                // The upstream's WWW-Authenticate lines go with a 401's error page.
                if let (401, Some(req)) = (status, conn.req.as_deref_mut()) {
                    let mut carried = std::mem::take(&mut req.carried);
                    super::request::carry_lines(
                        &req.upstream_head,
                        &[b"www-authenticate"],
                        &mut carried,
                    );
                    req.carried = carried;
                }
                p.spoiled = true;
                self.note_upstream(p, status);
                return Step::Done(Drive::Failed(status));
            }
        }
        // X-Accel-Redirect (after intercept_errors, as nginx): the request goes on elsewhere, the upstream's answer unread
        // (nginx's ngx_http_upstream_process_headers).
        if !ps.ignore_headers.x_accel_redirect
            && !p.discard
            && conn.req.as_deref().is_some_and(|r| {
                super::vars::head_fields(&r.upstream_head)
                    .any(|(n, _)| n.eq_ignore_ascii_case(b"x-accel-redirect"))
            })
        {
            // The rate the upstream asks for stays with the request (nginx reads the header
            // while parsing the head, before it redirects).
            if let Some(req) = conn.req.as_deref_mut() {
                let rate = super::vars::head_fields(&req.upstream_head)
                    .find(|(n, _)| n.eq_ignore_ascii_case(b"x-accel-limit-rate"))
                    .and_then(|(_, v)| accel_limit_rate(v));
                if let Some(rate) = rate.filter(|_| !ps.ignore_headers.x_accel_limit_rate) {
                    req.limit_rate = Some(rate);
                }
                // nginx's redirect headers go with the answer the redirect leads to.
                let mut carried = std::mem::take(&mut req.carried);
                super::request::carry_lines(
                    &req.upstream_head,
                    &super::request::XAR_CARRIED,
                    &mut carried,
                );
                req.carried = carried;
            }
            p.spoiled = true;
            self.note_upstream(p, status);
            return Step::Done(Drive::Redirect);
        }
        if p.discard {
            // A mirror or a post action is over with the answer's head (nginx makes both
            // `header_only`): its body is not read, so a slow or endless one holds up
            // nothing, and the upstream connection, its body unread, is not kept.
            p.spoiled = true;
            p.hold.clear();
            self.note_upstream(p, status);
            return Step::Done(Drive::Finished);
        }
        self.write_client_head(conn, p);
        let now = self.now;
        p.client_progress = now;
        p.upstream_progress = now;
        p.deadline = now + Duration::from_millis(self.proxy_settings(p.loc).read_timeout_ms);
        // Body bytes that came with the head.
        let head_len = p.resp.head_len.min(p.hold.len());
        let old = conn.wbuf.len();
        conn.wbuf.extend_from_slice(&p.hold[head_len..]);
        // proxy_limit_rate counts from here, those bytes included, and they delay the next
        // read as any read does (nginx's pipe and its preread buffer).
        p.rate_start = now;
        p.rate_read = (p.hold.len() - head_len) as u64;
        p.rate_until = None;
        let rate = self.proxy_settings(p.loc).limit_rate;
        if p.buffering && rate > 0 {
            let d = read_delay(rate, p.rate_read);
            if !d.is_zero() {
                p.rate_until = Some(now + d);
            }
        }
        p.hold.clear();
        if p.st == St::Tunnel {
            // Whatever the client sent after its request head is tunnel data.
            let start = conn.head_len().min(conn.rbuf.len());
            p.req.clear();
            p.req_pos = 0;
            p.req.extend_from_slice(&conn.rbuf[start..]);
            conn.rbuf.truncate(start);
            return Step::Progress;
        }
        self.take_body(p, conn, old);
        Step::Progress
    }

    /// The client response head, from the upstream's.
    fn write_client_head(&mut self, conn: &mut Conn, p: &mut Proxy) {
        let status = p.resp.status;
        let body = p.resp.body_kind(p.head_only);
        let tunnel = status == 101;
        let loaded = self.loaded;
        let s = loaded
            .ir
            .locations
            .get(p.loc.0 as usize)
            .and_then(|l| loaded.ir.settings.get(l.conf.settings.0 as usize))
            .unwrap_or(&loaded.ir.settings[0]);
        let ps = &s.proxy;
        p.buffering = ps.buffering && !p.discard;
        let passes = |name: &[u8]| {
            ps.pass_headers
                .iter()
                .any(|h| h.as_bytes().eq_ignore_ascii_case(name))
        };
        let tokens = s.server_tokens != proton_ir::ServerTokens::Off;
        let keepalive_header = s.keepalive_header_secs;
        // `chunked_transfer_encoding off`: a chunked upstream body reaches the client
        // decoded, delimited by the close (as for an HTTP/1.0 client).
        let chunked_on = s.chunked_transfer_encoding;
        let mut out = std::mem::take(&mut conn.wbuf);
        out.clear();
        conn.wpos = 0;
        let client_status = match conn.req.as_deref().and_then(|r| r.error_status) {
            Some((_, Some(code))) if code != 0 => code,
            Some((orig, None)) => orig,
            _ => status,
        };
        p.client_status = client_status;
        // proxy_force_ranges: nginx's range filter on a 200 of known length (one range).
        let length = match body {
            BodyKind::Length(n) => Some(n),
            BodyKind::None => p.resp.content_length,
            _ => None,
        };
        let forced = match length {
            Some(len) if ps.force_ranges && client_status == 200 && s.max_ranges != Some(0) => {
                let header = |name: &[u8]| {
                    conn.req
                        .as_deref()
                        .and_then(|r| r.head.get(&conn.rbuf, name))
                };
                let upstream = |name: &[u8]| {
                    p.resp.headers.iter().find_map(|(n, v)| {
                        p.hold
                            .get(n.clone())
                            .filter(|n| n.eq_ignore_ascii_case(name))
                            .and_then(|_| p.hold.get(v.clone()))
                    })
                };
                Some(forced_range(
                    header(b"range"),
                    header(b"if-range"),
                    upstream(b"etag"),
                    upstream(b"last-modified"),
                    len,
                ))
            }
            _ => None,
        };
        p.relay.range = None;
        p.relay.range_pos = 0;
        let mut content_range = None;
        match (forced, length) {
            (Some(ForcedRange::Unsatisfiable), Some(len)) => {
                conn.wbuf = out;
                self.proxy_range_not_satisfiable(conn, p, len);
                return;
            }
            (Some(ForcedRange::Part(a, b)), Some(len)) => {
                p.relay.range = Some((a, b));
                p.client_status = 206;
                content_range = Some((a, b, len));
            }
            _ => {}
        }
        crate::http::response::write_status_line(&mut out, 1, p.client_status);
        let up = &p.hold;
        let upstream_has = |name: &[u8]| {
            p.resp.headers.iter().any(|(n, _)| {
                up.get(n.clone())
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        };
        // Our own Server and Date lines unless the upstream's pass (both hidden by default).
        let own_server = !(passes(b"server") && upstream_has(b"server"));
        let own_date = !(passes(b"date") && upstream_has(b"date"));
        let (server, date) = self
            .date
            .server_and_date(tokens)
            .split_at(super::respond::server_line(tokens).len());
        if own_server {
            out.extend_from_slice(server);
        }
        if own_date {
            out.extend_from_slice(date);
        }
        let ir = &self.loaded.ir;
        let loc = &ir.locations[p.loc.0 as usize];
        let s = &ir.settings[loc.conf.settings.0 as usize];
        let ps = &s.proxy;
        // nginx's X-Accel-Charset: the charset the answer is sent in, whatever `charset`
        // says (the charset filter's override).
        // (The last such line counts, as nginx.)
        let accel_charset = p
            .resp
            .headers
            .iter()
            .rev()
            .filter(|_| !ps.ignore_headers.x_accel_charset)
            .find(|(n, _)| {
                up.get(n.clone())
                    .is_some_and(|n| n.eq_ignore_ascii_case(b"x-accel-charset"))
            })
            .and_then(|(_, v)| up.get(v.clone()))
            .map(<[u8]>::trim_ascii)
            .filter(|v| !v.is_empty());
        // An encoded body (gzip…) is never recoded, and then not relabelled (nginx's charset
        // filter leaves such an answer alone).
        let encoded = upstream_has(b"content-encoding");
        for (n, v) in &p.resp.headers {
            let (Some(name), Some(value)) = (up.get(n.clone()), up.get(v.clone())) else {
                continue;
            };
            // nginx's X-Accel-Buffering: the upstream switches buffering for its response.
            if token_eq(name, b"x-accel-buffering")
                && !p.discard
                && !ps.ignore_headers.x_accel_buffering
            {
                if token_eq(value, b"yes") {
                    p.buffering = true;
                } else if token_eq(value, b"no") {
                    p.buffering = false;
                }
            }
            // nginx's X-Accel-Limit-Rate: the upstream sets the response's rate.
            if token_eq(name, b"x-accel-limit-rate") && !ps.ignore_headers.x_accel_limit_rate {
                if let (Some(rate), Some(req)) = (accel_limit_rate(value), conn.req.as_deref_mut())
                {
                    req.limit_rate = Some(rate);
                }
            }
            // With proxy_force_ranges the range filter says whether ranges are served.
            if !passed_on(name, &ps.pass_headers, &ps.hide_headers, tunnel)
                || (ps.force_ranges && token_eq(name, b"accept-ranges"))
            {
                continue;
            }
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            if self.write_rewritten_header(conn, p.loc, client_status, name, value, &mut out) {
                // Location, Refresh, Set-Cookie under proxy_redirect / proxy_cookie_*.
            } else if let (Some(dst), true) = (accel_charset, token_eq(name, b"content-type")) {
                let mut ct = self.scratch.var_pool.borrow_mut().buf();
                let (changed, recode) = match super::static_files::accel_charset_type(
                    ir, &s.charset, value, dst, &mut ct,
                ) {
                    Ok((_, Some(_))) if encoded => (false, None),
                    Ok(r) => r,
                    Err(msg) => {
                        elog!(self.elog, Error, "{msg}, client: {}", conn.peer.ip());
                        (false, None)
                    }
                };
                out.extend_from_slice(if changed { &ct } else { value });
                p.recode = recode;
                self.scratch.var_pool.borrow_mut().give_buf(ct);
            } else if token_eq(name, b"content-type") && s.charset.charset.is_some() {
                // nginx's charset filter: a label, and a recoding with override_charset.
                let mut ct = self.scratch.var_pool.borrow_mut().buf();
                let (changed, recode) = match conn.req.as_deref() {
                    Some(req) => super::static_files::proxied_charset_type(
                        self, conn, req, p.loc, value, &mut ct,
                    ),
                    None => (false, None),
                };
                let (changed, recode) = match recode {
                    Some(_) if encoded => (false, None),
                    _ => (changed, recode),
                };
                out.extend_from_slice(if changed { &ct } else { value });
                p.recode = recode;
                self.scratch.var_pool.borrow_mut().give_buf(ct);
            } else {
                out.extend_from_slice(value);
            }
            out.extend_from_slice(b"\r\n");
        }
        match (content_range, forced) {
            (Some((a, b, len)), _) => {
                let _ = write!(out, "Content-Range: bytes {a}-{}/{len}\r\n", b - 1);
            }
            (None, Some(ForcedRange::Whole)) => out.extend_from_slice(b"Accept-Ranges: bytes\r\n"),
            _ => {}
        }
        // Framing towards the client. With trailers (`add_trailer`), the body is sent in
        // chunks Proton frames whatever the upstream's framing, as nginx's chunked filter
        // does when trailers are expected.
        let mut keep = p.keep_client;
        // So is a chunked body to be recoded (`charset`, X-Accel-Charset): decoded, recoded,
        // and framed anew.
        p.rechunk = !tunnel
            && !p.head_only
            && chunked_on
            && p.client_minor >= 1
            && !matches!(status, 204 | 304)
            && status >= 200
            && (super::request::trailers_apply(s, status)
                || (p.recode.is_some() && matches!(body, BodyKind::Chunked)));
        p.relay.framing = match body {
            BodyKind::None => Framing::None,
            BodyKind::Length(n) => Framing::Length(n),
            BodyKind::Chunked => Framing::Chunked {
                dec: ChunkedDecoder::default(),
                dechunk: p.client_minor == 0 || !chunked_on || p.rechunk,
            },
            BodyKind::UntilClose => Framing::UntilClose,
        };
        if matches!(p.relay.framing, Framing::Chunked { dechunk: false, .. }) {
            // Chunks passed through keep their framing: not recoded (not yet).
            p.recode = None;
        }
        let range_len = p.relay.range.map(|(a, b)| b - a);
        match (&p.relay.framing, body) {
            _ if p.rechunk => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            (_, BodyKind::Length(n)) => {
                write_num_header(&mut out, b"Content-Length: ", range_len.unwrap_or(n));
            }
            (Framing::None, _) => {
                if let Some(n) = range_len.or(p.resp.content_length) {
                    write_num_header(&mut out, b"Content-Length: ", n);
                }
            }
            (Framing::Chunked { dechunk: false, .. }, _) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            }
            _ => keep = false,
        }
        if tunnel {
            out.extend_from_slice(b"Connection: upgrade\r\n");
            p.st = St::Tunnel;
            p.spoiled = true;
            keep = false;
        } else {
            if keep {
                out.extend_from_slice(b"Connection: keep-alive\r\n");
                if let Some(t) = keepalive_header {
                    write_num_header(&mut out, b"Keep-Alive: timeout=", t);
                }
            } else {
                out.extend_from_slice(b"Connection: close\r\n");
            }
            p.st = St::Body;
        }
        p.keep_client = keep;
        conn.wbuf = out;
        if !s.add_headers.is_empty() || !matches!(s.expires, proton_ir::Expires::Off) {
            // `add_header … $upstream_addr` sees the attempts so far, this one without
            // its response time yet (nginx: the header filter runs with the upstream
            // states as they are).
            hand_over_upstream(conn, p);
            // `expires modified` counts from the upstream's Last-Modified, as nginx.
            let lm = p.resp.headers.iter().find_map(|(n, v)| {
                let name = p.hold.get(n.clone())?;
                if !name.eq_ignore_ascii_case(b"last-modified") {
                    return None;
                }
                let t = crate::http::response::parse_http_date(p.hold.get(v.clone())?)?;
                let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
                i64::try_from(d.as_secs()).ok()
            });
            if let Some(req) = conn.req.as_deref_mut() {
                req.mtime = lm;
            }
            let mut out = std::mem::take(&mut conn.wbuf);
            if let Some(req) = conn.req.as_deref() {
                self.add_headers(conn, req, p.loc, p.client_status, &mut out);
            }
            conn.wbuf = out;
        }
        conn.wbuf.extend_from_slice(b"\r\n");
        p.header_bytes = conn.wbuf.len() as u64;
        if let Some(mut req) = conn.req.take() {
            self.resolve_limit_rate(conn, &mut req, p.loc);
            conn.req = Some(req);
        }
        // nginx 1.22 sends an unbuffered response at the upstream's pace: no `limit_rate`
        // (nor X-Accel-Limit-Rate) applies to it, once its head is made (so `add_header`
        // still sees the rate in `$limit_rate`; ngx_http_upstream_send_response).
        if !p.buffering && !p.discard {
            if let Some(req) = conn.req.as_deref_mut() {
                req.limit_rate = Some(0);
            }
        }
        // The head as sent, for `$sent_http_*` in trailers and the access log.
        if let Some(req) = conn.req.as_deref_mut() {
            req.sent_head.clear();
            req.sent_head.extend_from_slice(&conn.wbuf);
        }
    }

    /// proxy_force_ranges with a Range nothing of the response satisfies: 416 with the
    /// built-in page and `Content-Range: bytes */len` (as for files); the upstream's body is
    /// not read (its connection is closed).
    fn proxy_range_not_satisfiable(&mut self, conn: &mut Conn, p: &mut Proxy, len: u64) {
        let tokens = self.settings_for(p.loc).server_tokens != proton_ir::ServerTokens::Off;
        let mut page = std::mem::take(&mut self.scratch.page);
        page.clear();
        crate::http::response::error_page(416, tokens, &mut page);
        let mut out = std::mem::take(&mut conn.wbuf);
        out.clear();
        conn.wpos = 0;
        let mut head_request = false;
        if let Some(req) = conn.req.as_deref() {
            self.start_head(
                &mut out,
                req,
                p.loc,
                416,
                Some(b"text/html"),
                Some(page.len() as u64),
            );
            p.keep_client = self.keep_alive_for(req, p.loc, 416);
            head_request = req.head.is_head();
        }
        // As nginx's special response: the upstream's header lines stay (those the proxy
        // passes), but for those of its body: type, length, ranges, validators.
        let ps = self.proxy_settings(p.loc);
        for (n, v) in &p.resp.headers {
            let (Some(name), Some(value)) = (p.hold.get(n.clone()), p.hold.get(v.clone())) else {
                continue;
            };
            let of_the_body = [
                &b"content-type"[..],
                b"content-length",
                b"accept-ranges",
                b"last-modified",
                b"etag",
            ]
            .iter()
            .any(|f| token_eq(name, f));
            if of_the_body || !passed_on(name, &ps.pass_headers, &ps.hide_headers, false) {
                continue;
            }
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            if !self.write_rewritten_header(conn, p.loc, 416, name, value, &mut out) {
                out.extend_from_slice(value);
            }
            out.extend_from_slice(b"\r\n");
        }
        let _ = write!(out, "Content-Range: bytes */{len}\r\n");
        out.extend_from_slice(b"\r\n");
        p.header_bytes = out.len() as u64;
        if let Some(req) = conn.req.as_deref_mut() {
            req.sent_head.clear();
            req.sent_head.extend_from_slice(&out);
        }
        if !head_request {
            out.extend_from_slice(&page);
        }
        self.scratch.page = page;
        conn.wbuf = out;
        p.client_status = 416;
        p.relay.framing = Framing::None;
        p.rechunk = false;
        p.recode = None;
        p.spoiled = true;
        p.st = St::Body;
    }

    /// Accounts for response body bytes appended to `conn.wbuf` from `from` on: frames
    /// them, drops what the upstream sent past the end.
    fn take_body(&mut self, p: &mut Proxy, conn: &mut Conn, from: usize) {
        p.relay.pass_trailers = self.proxy_settings(p.loc).pass_trailers;
        let mut none = Vec::new();
        let trailers = match conn.req.as_deref_mut() {
            Some(req) => &mut req.upstream_trailers,
            None => &mut none,
        };
        let t = p.relay.take(&mut conn.wbuf, from, trailers);
        if t.over_length {
            elog!(
                self.elog,
                Warn,
                "upstream sent more data than specified in \"Content-Length\" header, upstream: {}",
                self.peer_name(p.upstream, p.peer)
            );
        }
        if t.invalid {
            // The decoder's reasons are worded for clients; this is the upstream's fault
            // (nginx's message).
            elog!(
                self.elog,
                Error,
                "upstream sent invalid chunked response while reading upstream, client: {}, upstream: {}",
                conn.peer.ip(),
                self.peer_name(p.upstream, p.peer)
            );
            p.broken = true;
        }
        if t.excess || t.invalid {
            p.spoiled = true;
        }
        if t.done {
            p.upstream_eof = true;
        }
        // The body bytes just taken, recoded (never chunk framing: see the head).
        if let Some(r) = p.recode {
            if let Some(body) = conn.wbuf.get_mut(from..) {
                r.apply(&self.loaded.ir, body);
            }
        }
        if p.rechunk {
            self.frame_chunk(p, conn, from);
        }
    }

    /// With trailers: frames the body bytes from `from` on as one chunk and, once the body
    /// is complete, adds the last chunk with the trailers.
    fn frame_chunk(&mut self, p: &mut Proxy, conn: &mut Conn, from: usize) {
        let len = conn.wbuf.len().saturating_sub(from);
        if len > 0 {
            let mut size = [0u8; 18];
            let mut cur = std::io::Cursor::new(&mut size[..]);
            let _ = write!(cur, "{len:x}\r\n");
            let n = cur.position() as usize;
            conn.wbuf.splice(from..from, size[..n].iter().copied());
            conn.wbuf.extend_from_slice(b"\r\n");
        }
        let done = matches!(p.relay.framing, Framing::None) && !p.broken;
        if !done {
            return;
        }
        p.rechunk = false;
        // The trailers see the upstream's variables of this attempt.
        let status = p.resp.status;
        self.note_upstream(p, status);
        hand_over_upstream(conn, p);
        let mut out = std::mem::take(&mut conn.wbuf);
        out.extend_from_slice(b"0\r\n");
        if let Some(req) = conn.req.as_deref() {
            // proxy_pass_trailers: the upstream's trailer fields (as received, without the
            // section's final empty line), then add_trailer's.
            if p.relay.pass_trailers {
                let t = &req.upstream_trailers;
                out.extend_from_slice(t.strip_suffix(b"\r\n").unwrap_or(t));
            }
            self.write_trailers(conn, req, p.loc, status, &req.sent_head, &mut out);
        }
        out.extend_from_slice(b"\r\n");
        conn.wbuf = out;
    }

    fn step_body(&mut self, conn: &mut Conn, p: &mut Proxy) -> Drive {
        let ps = self.proxy_settings(p.loc);
        let window = if p.buffering {
            (ps.buffers.0 as usize * ps.buffers.1 as usize).max(ps.buffer_size as usize)
        } else {
            ps.buffer_size as usize
        }
        .max(4096);
        let spill_max = if p.buffering {
            ps.max_temp_file_size
        } else {
            0
        };
        let write_size = (ps.temp_file_write_size as usize).max(4096);
        // proxy_limit_rate: nginx 1.22 applies it to buffered responses only.
        let rate = if p.buffering { ps.limit_rate } else { 0 };
        let read_timeout = Duration::from_millis(ps.read_timeout_ms);
        let send_timeout = Duration::from_millis(self.settings_for(p.loc).send_timeout_ms);
        let use_sendfile = self.settings_for(p.loc).sendfile;
        // Upstream bytes taken in this call: past READ_BUDGET the request yields to the
        // other connections of the worker and is woken on the next loop round (a fast
        // upstream spilling to a file never has to wait for the socket).
        let mut taken = 0usize;
        loop {
            let mut progressed = false;
            if p.discard {
                // A post action: the response goes nowhere.
                conn.wbuf.clear();
                conn.wpos = 0;
            }
            // To the client, as fast as `limit_rate` lets it go.
            let allowance = if conn.wpos < conn.wbuf.len() {
                let id = (conn.key, conn.number);
                match super::conn::rate_allowance(conn.req.as_deref_mut(), p.written, id, self) {
                    Ok(n) => n,
                    Err(_) => {
                        // Held back by the rate (woken by its timer), not by the client.
                        p.client_progress = self.now;
                        0
                    }
                }
            } else {
                0
            };
            if allowance > 0 {
                let end = conn.wpos.saturating_add(allowance).min(conn.wbuf.len());
                match client_write(
                    &conn.sock,
                    super::conn::tls_mut(&mut conn.ext),
                    &conn.wbuf[conn.wpos..end],
                ) {
                    Ok(0) => return Drive::Close,
                    Ok(n) => {
                        conn.wpos += n;
                        p.written += n as u64;
                        progressed = true;
                        p.client_progress = self.now;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return Drive::Close,
                }
                if conn.wpos == conn.wbuf.len() {
                    conn.wbuf.clear();
                    conn.wpos = 0;
                } else if conn.wpos >= window / 2 {
                    conn.wbuf.drain(..conn.wpos);
                    conn.wpos = 0;
                }
            }
            let pending = conn.wbuf.len() - conn.wpos;
            // What the temporary file holds comes after what is in memory: with `sendfile
            // on` and a plain client, straight from the file (nginx sends temporary files
            // with sendfile too); else read back into the buffer.
            if pending == 0
                && p.spill_sent < p.spill_written
                && use_sendfile
                && conn.tls().is_none()
            {
                let id = (conn.key, conn.number);
                let allowance =
                    match super::conn::rate_allowance(conn.req.as_deref_mut(), p.written, id, self)
                    {
                        Ok(n) => n,
                        Err(_) => {
                            p.client_progress = self.now;
                            0
                        }
                    };
                let unsent = usize::try_from(p.spill_written - p.spill_sent).unwrap_or(usize::MAX);
                let count = unsent.min(allowance).min(1 << 30);
                if let (true, Some((f, _))) = (count > 0, p.spill.as_ref()) {
                    let mut off = i64::try_from(p.spill_sent).unwrap_or(i64::MAX);
                    match nix::sys::sendfile::sendfile64(
                        std::os::fd::AsFd::as_fd(&conn.sock),
                        std::os::fd::AsFd::as_fd(f),
                        Some(&mut off),
                        count,
                    ) {
                        Ok(0) => {
                            elog!(
                                self.elog,
                                Crit,
                                "sendfile() reached the end of a temporary file early while sending response to client, client: {}",
                                conn.peer.ip()
                            );
                            p.spill_written = p.spill_sent;
                            p.broken = true;
                            p.spoiled = true;
                        }
                        Ok(n) => {
                            p.spill_sent += n as u64;
                            p.written += n as u64;
                            p.client_progress = self.now;
                            continue;
                        }
                        Err(nix::errno::Errno::EAGAIN) => {}
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(_) => return Drive::Close,
                    }
                }
            } else if pending == 0 && p.spill_sent < p.spill_written {
                match refill_from_spill(conn, p, window) {
                    Ok(()) => continue,
                    Err(e) => {
                        elog!(
                            self.elog,
                            Crit,
                            "pread() of a temporary file failed ({}) while sending response to client, client: {}",
                            crate::log::OsError(&e),
                            conn.peer.ip()
                        );
                        p.spill_written = p.spill_sent;
                        p.broken = true;
                        p.spoiled = true;
                    }
                }
            }
            let unsent_file = p.spill_written - p.spill_sent;
            // TLS records of what was written may still wait for the socket.
            let tls_waiting = pending == 0
                && match conn.flush_tls() {
                    Some(done) => !done,
                    None => return Drive::Close,
                };
            let all_out = pending == 0 && unsent_file == 0 && !tls_waiting;
            if all_out && p.broken {
                // The response was cut short (the upstream closed, failed or sent bad
                // framing): what was valid is out, so the client connection is closed now,
                // as nginx does, rather than left waiting for a body that cannot come.
                self.log_access_proxy(conn, p);
                return Drive::Close;
            }
            if all_out && (p.upstream_eof || matches!(p.relay.framing, Framing::None)) {
                return Drive::Finished;
            }
            if p.broken {
                if progressed {
                    continue;
                }
                p.deadline = p.client_progress + send_timeout;
                return Drive::Blocked;
            }
            // From the upstream: into memory while it has room and nothing waits in the
            // file; beyond that, with buffering, into the temporary file (at most
            // proxy_max_temp_file_size), so that the upstream is read at its own speed.
            let to_file = pending >= window || unsent_file > 0;
            let mut want = if p.upstream_eof || p.released {
                0
            } else if !to_file {
                window - pending
            } else if !p.spill_failed && p.spill_written < spill_max {
                write_size.min(usize::try_from(spill_max - p.spill_written).unwrap_or(usize::MAX))
            } else {
                0
            };
            if want > 0 && rate > 0 {
                let now = self.now;
                let delayed = p
                    .rate_until
                    .map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
                let elapsed = now.saturating_duration_since(p.rate_start);
                match read_allowance(rate, elapsed, p.rate_read, delayed) {
                    Ok(n) => want = want.min(usize::try_from(n).unwrap_or(usize::MAX)),
                    Err(wait) => {
                        // Held back by the rate, woken by the worker's timer; the upstream
                        // is not waited for meanwhile, so its read timeout counts from then
                        // (nginx re-arms it after the delay).
                        let at = now + wait;
                        p.upstream_progress = p.upstream_progress.max(at);
                        let id = (conn.key, conn.number);
                        if let Some(req) = conn.req.as_deref_mut() {
                            super::conn::wake_at(req, id, at, self);
                        }
                        want = 0;
                    }
                }
            }
            if want > 0 {
                let Some(c) = p.up.and_then(|k| self.ups.conns.get_mut(k)) else {
                    p.broken = true;
                    continue;
                };
                let old = conn.wbuf.len();
                match client_read(
                    &c.sock,
                    c.tls.as_deref_mut(),
                    &mut p.up_ready,
                    p.up_hup,
                    &mut conn.wbuf,
                    want,
                ) {
                    Ok(0) => {
                        p.upstream_eof = true;
                        if matches!(p.relay.framing, Framing::UntilClose) {
                            p.relay.framing = Framing::None;
                            if p.rechunk {
                                let end = conn.wbuf.len();
                                self.frame_chunk(p, conn, end);
                            }
                        } else {
                            elog!(
                                self.elog,
                                Error,
                                "upstream prematurely closed connection while reading upstream {}, client: {}",
                                self.peer_name(p.upstream, p.peer),
                                conn.peer.ip()
                            );
                            p.broken = true;
                            p.spoiled = true;
                        }
                        progressed = true;
                    }
                    Ok(n) => {
                        if let Some(st) = p.states.last_mut() {
                            st.bytes_received += n as u64;
                        }
                        if rate > 0 {
                            p.rate_read += n as u64;
                            let d = read_delay(rate, n as u64);
                            if !d.is_zero() {
                                p.rate_until = Some(self.now + d);
                            }
                        }
                        self.take_body(p, conn, old);
                        progressed = true;
                        p.upstream_progress = self.now;
                        taken += n;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => progressed = true,
                    Err(_) => {
                        elog!(
                            self.elog,
                            Error,
                            "recv() failed (104: Connection reset by peer) while reading upstream {}, client: {}",
                            self.peer_name(p.upstream, p.peer),
                            conn.peer.ip()
                        );
                        p.upstream_eof = true;
                        p.broken = true;
                        p.spoiled = true;
                        progressed = true;
                    }
                }
                if to_file && conn.wbuf.len() > old {
                    self.spill(conn, p, old);
                }
            }
            if taken >= READ_BUDGET && !p.upstream_eof && !p.released {
                let id = (conn.key, conn.number);
                if let Some(req) = conn.req.as_deref_mut() {
                    // Just after this round's clock: due on the next round, not this one
                    // (the loop runs what is due now until nothing is).
                    let next_round = self.now + Duration::from_nanos(1);
                    super::conn::wake_at(req, id, next_round, self);
                    p.deadline = p.upstream_progress + read_timeout;
                    return Drive::Blocked;
                }
            }
            // A response cut short: the upstream is done with at once (closed), not when
            // the client has taken what was valid.
            if p.broken && !p.released && p.up.is_some() {
                p.released = true;
                let status = p.resp.status;
                self.note_upstream(p, status);
                self.end_attempt(p, false, None);
            }
            // The response read whole: with buffering the upstream connection goes back
            // (to the keep-alive cache, or closed) now, however slowly the client reads.
            if p.buffering
                && !p.released
                && !p.broken
                && (p.upstream_eof || matches!(p.relay.framing, Framing::None))
            {
                self.release_upstream(p);
            }
            if !progressed {
                // Waiting for the client to take output (send_timeout) and/or for the
                // upstream to send more (proxy_read_timeout): the earlier deadline.
                let client_waits = conn.wpos < conn.wbuf.len() || tls_waiting;
                let upstream_waits = want > 0;
                p.deadline = match (client_waits, upstream_waits) {
                    (true, true) => {
                        (p.client_progress + send_timeout).min(p.upstream_progress + read_timeout)
                    }
                    (true, false) => p.client_progress + send_timeout,
                    (false, _) => p.upstream_progress + read_timeout,
                };
                return Drive::Blocked;
            }
        }
    }

    /// Moves the response bytes `conn.wbuf[from..]` (taken from the upstream after what
    /// waits in memory) to the end of the response's temporary file, made on first need.
    /// A file that cannot be made keeps the bytes in memory and stops further spilling; a
    /// write that fails cuts the response short (logged at `crit`, as nginx).
    fn spill(&mut self, conn: &mut Conn, p: &mut Proxy, from: usize) {
        if p.spill.is_none() {
            let loaded = self.loaded;
            let temp = &loaded.ir.settings
                [loaded.ir.locations[p.loc.0 as usize].conf.settings.0 as usize]
                .proxy
                .temp_path;
            let dir = loaded.prefix.join(&temp.path);
            match super::body::create_temp(&dir, &temp.levels, &mut self.ups.temp_seq, false) {
                Ok((f, path)) => p.spill = Some((f, path)),
                Err((path, e)) => {
                    elog!(
                        self.elog,
                        Crit,
                        "open() \"{}\" failed ({}) while reading upstream, client: {}",
                        path.display(),
                        crate::log::OsError(&e),
                        conn.peer.ip()
                    );
                    p.spill_failed = true;
                    return;
                }
            }
        }
        let Some((f, path)) = p.spill.as_mut() else {
            return;
        };
        let mut at = from;
        while at < conn.wbuf.len() {
            match f.write(&conn.wbuf[at..]) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    elog!(
                        self.elog,
                        Crit,
                        "write() \"{}\" failed ({}) while reading upstream, client: {}",
                        path.display(),
                        crate::log::OsError(&e),
                        conn.peer.ip()
                    );
                    break;
                }
            }
        }
        p.spill_written += (at - from) as u64;
        if at < conn.wbuf.len() {
            // What could not be written cannot go out in order: the response ends here.
            p.spill_failed = true;
            p.broken = true;
            p.spoiled = true;
        }
        conn.wbuf.truncate(from);
    }

    /// The upstream's part of a response is over: the attempt's variables are noted (its
    /// time ends here) and its connection goes back to the keep-alive cache or is closed.
    fn release_upstream(&mut self, p: &mut Proxy) {
        if p.released {
            return;
        }
        p.released = true;
        let status = p.resp.status;
        self.note_upstream(p, status);
        // Not cached when the upstream's FIN (or an error) was already reported:
        // edge-triggered, no further event would tell that it is closed, and the next
        // request would meet a dead connection (nginx checks `read->eof`).
        let reuse = !p.spoiled && !p.up_hup && self.response_reusable(p);
        let latency = match self.loaded.ir.upstreams.get(p.upstream).map(|u| &u.balance) {
            Some(proton_ir::Balance::LeastTime { last_byte: false }) => p.head_latency,
            _ => self.now.saturating_duration_since(p.attempt_start),
        };
        self.end_attempt(p, reuse, Some(Report::Success { latency }));
    }

    /// A WebSocket (or other upgraded) connection: bytes both ways until either side
    /// closes, idle for at most proxy_read_timeout.
    fn step_tunnel(&mut self, conn: &mut Conn, p: &mut Proxy) -> Drive {
        const WINDOW: usize = 64 * 1024;
        let idle = Duration::from_millis(self.proxy_settings(p.loc).read_timeout_ms);
        let Some(c) = p.up.and_then(|k| self.ups.conns.get_mut(k)) else {
            return Drive::Close;
        };
        loop {
            // Upstream → client through conn.wbuf, client → upstream through p.req.
            let down = pump(
                &c.sock,
                c.tls.as_deref_mut(),
                &mut p.up_ready,
                p.up_hup,
                &mut p.upstream_eof,
                &conn.sock,
                super::conn::tls_mut(&mut conn.ext),
                &mut conn.wbuf,
                &mut conn.wpos,
                WINDOW,
            );
            let up = pump(
                &conn.sock,
                super::conn::tls_mut(&mut conn.ext),
                &mut conn.rd_ready,
                conn.rd_hup,
                &mut p.client_eof,
                &c.sock,
                c.tls.as_deref_mut(),
                &mut p.req,
                &mut p.req_pos,
                WINDOW,
            );
            let (Some(down), Some(up)) = (down, up) else {
                // A write failed: that side is gone, nothing more can be delivered.
                self.log_access_proxy(conn, p);
                return Drive::Close;
            };
            p.written += down.0 as u64;
            // The tunnel's bytes count as the upstream's (as they are passed on).
            if let Some(st) = p.states.last_mut() {
                st.bytes_received += down.0 as u64;
                st.bytes_sent += up.0 as u64;
            }
            // Either side gone and what it said delivered: the tunnel is over.
            let up_done = p.upstream_eof && down.2;
            let client_done = p.client_eof && up.2;
            if up_done || client_done {
                self.log_access_proxy(conn, p);
                return Drive::Close;
            }
            if !down.1 && !up.1 {
                return Drive::Blocked;
            }
            p.deadline = self.now + idle;
        }
    }

    /// The current attempt is over with `status`: its response time (the loop round's
    /// clock, as nginx's cached time) and body length are kept (`$upstream_*`).
    fn note_upstream(&self, p: &mut Proxy, status: u16) {
        let ms = p.attempt_ms(self.now);
        let len = p.relay.received;
        if let Some(st) = p.states.last_mut() {
            st.status = status;
            st.response_ms = Some(ms);
            st.response_length = len;
        }
    }

    /// Logs a proxied exchange that ends by closing the client connection.
    fn log_access_proxy(&mut self, conn: &mut Conn, p: &mut Proxy) {
        if !p.released {
            let status = p.resp.status;
            self.note_upstream(p, status);
        }
        hand_over_upstream(conn, p);
        conn.finished.status = p.sent_status();
        if !p.discard {
            conn.finished.header_bytes = p.header_bytes;
            conn.finished.body_bytes = p.written.saturating_sub(p.header_bytes);
        }
        self.log_access(conn);
    }
}

/// What `proxy_force_ranges` makes of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForcedRange {
    /// The whole response, with `Accept-Ranges: bytes`.
    Whole,
    /// 206 with this part (start, end exclusive).
    Part(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// nginx's range header filter with one range allowed (`r->single_range`), for a response
/// of `len` bytes: the client's `Range` and `If-Range`, the upstream's `ETag` and
/// `Last-Modified`. An If-Range entity tag (it ends with `"`) must equal the ETag, a date
/// the Last-Modified time; otherwise, as with several ranges, the whole response.
fn forced_range(
    range: Option<&[u8]>,
    if_range: Option<&[u8]>,
    etag: Option<&[u8]>,
    last_modified: Option<&[u8]>,
    len: u64,
) -> ForcedRange {
    use crate::http::range::{parse_range, ByteRange, RangeResult};
    let Some(range) = range else {
        return ForcedRange::Whole;
    };
    if let Some(v) = if_range {
        let same = if v.len() >= 2 && v.ends_with(b"\"") {
            etag == Some(v)
        } else {
            let date = crate::http::response::parse_http_date;
            last_modified
                .and_then(date)
                .is_some_and(|lm| date(v) == Some(lm))
        };
        if !same {
            return ForcedRange::Whole;
        }
    }
    let mut one = [ByteRange::default(); 1];
    match parse_range(range, len, &mut one) {
        RangeResult::Satisfiable(1) => ForcedRange::Part(one[0].start, one[0].end),
        RangeResult::Unsatisfiable => ForcedRange::Unsatisfiable,
        _ => ForcedRange::Whole,
    }
}

/// nginx's pipe arithmetic for `proxy_limit_rate` (`ngx_event_pipe_read_upstream`): at most
/// `rate × (whole seconds since the response began + 1) − bytes read` may be read now, and
/// nothing while the delay of the last read runs (`delayed`). `Err`: how long to wait, to the
/// end of the delay or to the second whose allowance exceeds what was read (nginx polls
/// every millisecond there; waiting for that second is the same, without the wake-ups).
fn read_allowance(
    rate: u64,
    elapsed: Duration,
    read: u64,
    delayed: Duration,
) -> Result<u64, Duration> {
    if !delayed.is_zero() {
        return Err(delayed);
    }
    let allowed = rate.saturating_mul(elapsed.as_secs().saturating_add(1));
    if allowed > read {
        return Ok(allowed - read);
    }
    // The first second `s` with rate × (s + 1) > read.
    let second = Duration::from_secs(read / rate.max(1));
    Err(second.saturating_sub(elapsed).max(Duration::from_millis(1)))
}

/// How long reading waits after `n` bytes were read at `rate` (nginx's `n × 1000 / rate`
/// milliseconds).
fn read_delay(rate: u64, n: u64) -> Duration {
    Duration::from_millis((n.saturating_mul(1000) / rate.max(1)).min(u64::from(u32::MAX)))
}

/// Takes the next part of a buffered response's temporary file (at most `window` bytes,
/// from where the client is) into the empty output buffer.
fn refill_from_spill(conn: &mut Conn, p: &mut Proxy, window: usize) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let Some((f, _)) = p.spill.as_ref() else {
        return Err(std::io::Error::from(ErrorKind::NotFound));
    };
    let want = usize::try_from(p.spill_written - p.spill_sent)
        .unwrap_or(usize::MAX)
        .min(window);
    conn.wbuf.clear();
    conn.wpos = 0;
    conn.wbuf.resize(want, 0);
    let n = loop {
        match f.read_at(&mut conn.wbuf, p.spill_sent) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            r => break r,
        }
    };
    let n = match n {
        Ok(0) => Err(std::io::Error::from(ErrorKind::UnexpectedEof)),
        r => r,
    };
    match n {
        Ok(n) => {
            conn.wbuf.truncate(n);
            p.spill_sent += n as u64;
            Ok(())
        }
        Err(e) => {
            conn.wbuf.clear();
            Err(e)
        }
    }
}

/// The attempts of this proxied response go to the request's list (`$upstream_addr`, …),
/// after those of earlier proxied responses of the request and a mark.
fn hand_over_upstream(conn: &mut Conn, p: &mut Proxy) {
    if let Some(r) = conn.req.as_deref_mut() {
        hand_over_to(r, p);
    }
}

/// [`hand_over_upstream`] to request `r` (held apart from its connection).
fn hand_over_to(r: &mut RequestCtx, p: &mut Proxy) {
    let base = *p.req_base.get_or_insert_with(|| {
        if !r.upstreams.is_empty() {
            r.upstreams.push(UpState::default());
        }
        r.upstreams.len()
    });
    r.upstreams.truncate(base);
    r.upstreams.extend(p.states.iter().cloned());
}

/// Whether part of the request body of `conn` that a failed proxied request left behind
/// has not arrived yet. A body that is already whole in the read buffer is dropped before
/// the next request and the connection can stay open after the error answer (nginx keeps
/// it after a 502 or 504); a body still on its way is not waited for: the answer closes.
pub(crate) fn body_still_arriving(conn: &Conn) -> bool {
    let buffered = conn.rbuf.get(conn.head_len()..).unwrap_or_default();
    match &conn.discard {
        super::conn::Discard::None => false,
        super::conn::Discard::Length(n) => (buffered.len() as u64) < *n,
        super::conn::Discard::Chunked(d) => {
            // Decoded on a copy of the decoder: the connection drops the body itself.
            let mut d = (**d).clone();
            let mut at = 0;
            loop {
                match d.decode(buffered.get(at..).unwrap_or_default()) {
                    Ok(step) if step.done => return false,
                    Ok(step) if step.consumed > 0 => at += step.consumed,
                    // Needs more bytes, or the body is malformed: nothing to keep open for.
                    Ok(_) | Err(_) => return true,
                }
            }
        }
    }
}

/// Whether the chunked body bytes that arrived with the head are already malformed (nginx
/// parses them at once, reading or discarding the body, and answers 400 instead of what
/// the location would have). A body only cut short is not.
pub(crate) fn chunked_prefix_invalid(buffered: &[u8]) -> bool {
    chunked_prefix(buffered) == Prefix::Invalid
}

/// Whether a chunked body came whole with the head, within what nginx reads before it
/// makes the upstream request without buffering: the rest of the buffer it read the head
/// into (`client_header_buffer_size`, or a `large_client_header_buffers` one for a longer
/// head) and one `client_body_buffer_size` read. nginx then sends it with a length.
fn preread_whole(conn: &Conn, s: &proton_ir::Settings) -> bool {
    let head = conn.head_len();
    let buffer = if head as u64 <= s.client_header_buffer_size {
        s.client_header_buffer_size
    } else {
        s.large_client_header_buffers.1
    };
    let room = buffer
        .saturating_sub(head as u64)
        .saturating_add(s.client_body_buffer_size);
    match chunked_prefix(conn.rbuf.get(head..).unwrap_or_default()) {
        Prefix::Complete(n) => n as u64 <= room,
        _ => false,
    }
}

/// What the bytes of a chunked body that arrived so far are.
#[derive(Debug, PartialEq, Eq)]
enum Prefix {
    /// The whole body (its last chunk and trailer section) is there, in this many bytes.
    Complete(usize),
    /// More is to come.
    Partial,
    /// Malformed (400).
    Invalid,
}

fn chunked_prefix(buffered: &[u8]) -> Prefix {
    let mut d = ChunkedDecoder::default();
    let mut at = 0;
    loop {
        match d.decode(buffered.get(at..).unwrap_or_default()) {
            Ok(step) if step.done => return Prefix::Complete(at + step.consumed),
            Ok(step) if step.consumed > 0 => at += step.consumed,
            Ok(_) => return Prefix::Partial,
            Err(e) if e.status() == 400 => return Prefix::Invalid,
            Err(_) => return Prefix::Partial,
        }
    }
}

/// One direction of a tunnel: writes what `buf` holds (from `*pos`) to `to`, then reads
/// more from `from` while `buf` is under `cap`; a read of 0 or an error sets `*eof`.
/// Returns the bytes written, whether anything happened and whether everything written has
/// left (TLS records included), or `None` when a write failed
/// (`to` is gone).
#[allow(clippy::too_many_arguments)]
fn pump<F: Transport, T: Transport>(
    from: &TcpStream,
    from_tls: Option<&mut F>,
    ready: &mut bool,
    hup: bool,
    eof: &mut bool,
    to: &TcpStream,
    mut to_tls: Option<&mut T>,
    buf: &mut Vec<u8>,
    pos: &mut usize,
    cap: usize,
) -> Option<(usize, bool, bool)> {
    let mut written = 0;
    while *pos < buf.len() {
        match client_write(to, to_tls.as_deref_mut(), &buf[*pos..]) {
            Ok(0) => return None,
            Ok(n) => {
                *pos += n;
                written += n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    // Everything given to `to` has left: over TLS, its records too (those that still wait
    // go with the next writable event).
    let mut drained = false;
    if *pos == buf.len() {
        buf.clear();
        *pos = 0;
        drained = client_flush(to, to_tls).ok()?;
    }
    let mut progressed = written > 0;
    if !*eof && buf.len() < cap {
        let room = cap - buf.len();
        match client_read(from, from_tls, ready, hup, buf, room) {
            Ok(n) => {
                *eof |= n == 0;
                progressed = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => progressed = true,
            Err(_) => {
                *eof = true;
                progressed = true;
            }
        }
    }
    Some((written, progressed, drained))
}

/// Why a connection to an upstream could not be opened.
enum Open {
    /// The connect failed (the server's fault: the next one may be tried).
    Connect(std::io::Error),
    /// The local end could not be set up (`proxy_bind`): what was tried, and why.
    Local(String, std::io::Error),
}

enum Step {
    Progress,
    Blocked,
    Done(Drive),
    Fail(Fail, &'static str),
    /// A failure whose log line says more than a fixed text (TLS errors).
    FailWith(Fail, String),
}

/// Whether a proxy_pass host (or what follows the scheme of a URL) is a unix socket,
/// `unix:PATH` (any case, as nginx).
pub(crate) fn is_unix_host(host: &[u8]) -> bool {
    host.get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"unix:"))
}

/// An upstream URL for a log line, written when formatted (see `Worker::upstream_url`).
struct UpstreamUrl<'a> {
    https: bool,
    peer: Option<&'a PeerAddr>,
    uri: &'a [u8],
}

impl std::fmt::Display for UpstreamUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        let sep = if self.peer.is_some_and(PeerAddr::is_unix) {
            ":"
        } else {
            ""
        };
        write!(
            f,
            "{scheme}://{}{sep}{}",
            PeerName(self.peer),
            String::from_utf8_lossy(self.uri)
        )
    }
}

/// A peer's address in a log line (`?` when there is none).
struct PeerName<'a>(Option<&'a PeerAddr>);

impl std::fmt::Display for PeerName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("?"),
        }
    }
}

/// The `host` of a proxy_pass `host[:port]` (an IPv6 address without its brackets): the
/// default TLS name of an upstream, as nginx.
fn host_of(hostport: &[u8]) -> &[u8] {
    if let Some(rest) = hostport.strip_prefix(b"[") {
        let end = rest.iter().position(|&b| b == b']').unwrap_or(rest.len());
        return &rest[..end];
    }
    match hostport.iter().rposition(|&b| b == b':') {
        Some(i) if hostport[i + 1..].iter().all(u8::is_ascii_digit) => &hostport[..i],
        _ => hostport,
    }
}

/// The error log's words for a failed handshake with an upstream, as nginx's.
fn handshake_error(e: &rustls::Error, name: &[u8]) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            format!(
                "upstream SSL certificate does not match \"{}\" while SSL handshaking to upstream",
                String::from_utf8_lossy(name)
            )
        }
        rustls::Error::InvalidCertificate(c) => {
            // OpenSSL's code and text, as nginx logs them, where one corresponds.
            let openssl = match c {
                C::Revoked => Some("23:certificate revoked"),
                C::UnknownRevocationStatus => Some("3:unable to get certificate CRL"),
                C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => {
                    Some("12:CRL has expired")
                }
                C::UnknownIssuer => Some("20:unable to get local issuer certificate"),
                C::Expired | C::ExpiredContext { .. } => Some("10:certificate has expired"),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    Some("9:certificate is not yet valid")
                }
                C::BadSignature => Some("7:certificate signature failure"),
                _ => None,
            };
            if let C::Other(o) = c {
                return format!(
                    "upstream SSL certificate verify error: ({o}) while SSL handshaking to upstream"
                );
            }
            match openssl {
                Some(t) => format!(
                    "upstream SSL certificate verify error: ({t}) while SSL handshaking to upstream"
                ),
                None => format!(
                    "upstream SSL certificate verify error: ({c:?}) while SSL handshaking to upstream"
                ),
            }
        }
        e => format!("SSL_do_handshake() failed (SSL: {e}) while SSL handshaking to upstream"),
    }
}

enum Pull {
    Got,
    Wait,
    Fail(Drive),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_nginx() {
        let mut out = Vec::new();
        escape_into(b"/a b/%?#\x01\xff/ok-~", &mut out);
        assert_eq!(out, b"/a%20b/%25%3F%23%01%FF/ok-~");
    }

    #[test]
    fn tls_names_lose_their_port() {
        assert_eq!(host_of(b"backend"), b"backend");
        assert_eq!(host_of(b"backend:8443"), b"backend");
        assert_eq!(host_of(b"127.0.0.1:443"), b"127.0.0.1");
        assert_eq!(host_of(b"[::1]:443"), b"::1");
        assert_eq!(host_of(b"[::1]"), b"::1");
        assert_eq!(host_of(b"odd:name"), b"odd:name");
    }

    #[test]
    fn proxy_limit_rate_arithmetic() {
        let ms = Duration::from_millis;
        // The first second's allowance, less what was read.
        assert_eq!(read_allowance(20_000, ms(0), 0, ms(0)), Ok(20_000));
        assert_eq!(read_allowance(20_000, ms(999), 3_000, ms(0)), Ok(17_000));
        // Used up: wait for the next whole second, then its allowance.
        assert_eq!(read_allowance(20_000, ms(400), 20_000, ms(0)), Err(ms(600)));
        assert_eq!(read_allowance(20_000, ms(1_000), 20_000, ms(0)), Ok(20_000));
        // Read ahead by more than a second's worth (a large preread): the wait spans it.
        assert_eq!(read_allowance(1_000, ms(100), 3_500, ms(0)), Err(ms(2_900)));
        assert_eq!(read_allowance(1_000, ms(3_000), 3_500, ms(0)), Ok(500));
        // A read's own delay comes first.
        assert_eq!(read_allowance(20_000, ms(0), 0, ms(5)), Err(ms(5)));
        // Never a zero wait (no busy loop).
        assert_eq!(read_allowance(20_000, ms(2_000), 40_000, ms(0)), Ok(20_000));
        assert_eq!(read_allowance(20_000, ms(1_999), 40_000, ms(0)), Err(ms(1)));
        assert_eq!(read_delay(20_000, 16_384), ms(819));
        assert_eq!(read_delay(20_000, 19), ms(0));
        assert_eq!(read_delay(1, u64::MAX), ms(u64::from(u32::MAX)));
    }

    #[test]
    fn forced_ranges_as_nginx() {
        use ForcedRange::*;
        let lm = Some(&b"Mon, 28 Sep 1970 06:00:00 GMT"[..]);
        let etag = Some(&b"\"abc\""[..]);
        let f = |r: &str, ir: Option<&str>| {
            forced_range(Some(r.as_bytes()), ir.map(str::as_bytes), etag, lm, 10)
        };
        assert_eq!(forced_range(None, None, etag, lm, 10), Whole);
        assert_eq!(f("bytes=2-4", None), Part(2, 5));
        assert_eq!(f("bytes=-3", None), Part(7, 10));
        assert_eq!(f("bytes=5-", None), Part(5, 10));
        // One range only: several are served whole.
        assert_eq!(f("bytes=2-4,6-7", None), Whole);
        assert_eq!(f("bytes=20-", None), Unsatisfiable);
        assert_eq!(f("items=1-2", None), Whole);
        assert_eq!(f("bytes=2-4", Some("\"abc\"")), Part(2, 5));
        assert_eq!(f("bytes=2-4", Some("\"abd\"")), Whole);
        assert_eq!(
            f("bytes=2-4", Some("Mon, 28 Sep 1970 06:00:00 GMT")),
            Part(2, 5)
        );
        assert_eq!(f("bytes=2-4", Some("Mon, 28 Sep 1970 06:00:01 GMT")), Whole);
        assert_eq!(f("bytes=2-4", Some("yesterday")), Whole);
        // No validator to compare with: whole.
        assert_eq!(
            forced_range(Some(b"bytes=2-4"), Some(b"\"abc\""), None, None, 10),
            Whole
        );
    }

    #[test]
    fn tokens() {
        assert!(has_token(b"keep-alive, Upgrade", b"upgrade"));
        assert!(!has_token(b"keep-alive", b"upgrade"));
        assert!(has_token(b" h2c ", b"h2c"));
    }

    #[test]
    fn hop_by_hop() {
        assert!(hop_by_hop_request(b"Connection"));
        assert!(hop_by_hop_request(b"TE"));
        assert!(!hop_by_hop_request(b"Accept"));
        assert!(hop_by_hop_response(b"Transfer-Encoding"));
        assert!(!hop_by_hop_response(b"Set-Cookie"));
    }

    #[test]
    fn client_fields_copied_as_nginx() {
        let fields: Vec<(&[u8], &[u8])> = vec![
            (b"Host", b"client.test"),
            (b"Connection", b"keep-alive, X-Drop"),
            (b"X-Drop", b"1"),
            (b"Keep-Alive", b"300"),
            (b"TE", b"trailers"),
            (b"Upgrade", b"websocket"),
            (b"Accept", b"*/*"),
            (b"x-set", b"client's"),
            (b"Cookie", b"a=1"),
        ];
        let mut out = Vec::new();
        copy_client_fields(
            fields.iter().copied(),
            b"keep-alive, X-Drop",
            |n| n.eq_ignore_ascii_case(b"host") || n.eq_ignore_ascii_case(b"X-Set"),
            &mut out,
        );
        assert_eq!(out, b"Accept: */*\r\nCookie: a=1\r\n".to_vec());
    }

    #[test]
    fn upstream_fields_passed_on_as_nginx() {
        let none: &[String] = &[];
        let pass = ["X-Accel-Expires".to_string(), "Date".to_string()];
        let hide = ["X-Powered-By".to_string()];
        for (name, pass, hide, tunnel, want) in [
            (&b"Set-Cookie"[..], none, none, false, true),
            (b"Server", none, none, false, false),
            (b"date", none, none, false, false),
            (b"Date", &pass[..], none, false, true),
            (b"X-Accel-Redirect", none, none, false, false),
            (b"x-accel-expires", &pass[..], none, false, true),
            (b"X-Accelerated", none, none, false, true),
            (b"X-Powered-By", none, &hide[..], false, false),
            (b"Transfer-Encoding", none, none, false, false),
            (b"Upgrade", none, none, false, false),
            (b"Upgrade", none, none, true, true),
        ] {
            assert_eq!(
                passed_on(name, pass, hide, tunnel),
                want,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }
}
