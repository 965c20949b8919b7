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
//!
//! The parts, in the order a request meets them: [`start`] (the request head towards the
//! upstream), [`connect`] (server choice, connect, TLS, resolver), [`send`] (head and
//! body out), [`response`] (the upstream's head judged and the client's made), [`deliver`]
//! (the body to the client, buffering, tunnel); [`pool`] holds the connections. This file
//! has the state ([`Proxy`]), the loop that steps it ([`Worker::drive`]), failures and
//! retries.

use super::conn::Conn;
use super::context::{RequestCtx, UpPeer, UpState};
use super::request::Handled;
use super::tls::{client_flush, client_read, client_write, Handshake, Transport, UpTls};
use super::Worker;
use crate::elog;
use crate::http::chunked::ChunkedDecoder;
use crate::http::relay::{BodyRelay, Framing, Taken};
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

mod cache;
mod connect;
mod deliver;
#[cfg(test)]
mod fake;
mod fcgi;
mod grpc;
mod pool;
mod response;
mod send;
mod start;

use deliver::*;
pub(crate) use pool::Upstreams;
use pool::*;
use send::*;
pub(crate) use send::{body_still_arriving, chunked_prefix_invalid};
pub(crate) use start::is_unix_host;
use start::*;

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
    /// `proxy_cache_lock`: waiting for another request to store the object.
    CacheLock,
    /// `proxy_cache_purge` walking the cache's files (see `cache::step_cache_purge`).
    CachePurge,
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
    /// `slice`: the first part of the whole arrived, (where it starts, the whole length).
    slice: Option<(u64, u64)>,
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
    /// What the upstream speaks (`proxy_pass`, `fastcgi_pass`, `scgi_pass`, `uwsgi_pass`).
    protocol: proton_ir::Protocol,
    /// `fastcgi_keep_conn on`.
    keep_conn: bool,
    /// The CGI head is not read yet (then `cgi_head` is where its HTTP form is made).
    cgi_pending: bool,
    cgi_head: Vec<u8>,
    /// The head for a CGI-style application waits for the body (read whole first): it is
    /// made once the body's length is known.
    head_pending: bool,
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
    /// The content cache's part (`proxy_cache`).
    cache: cache::CacheReq,
    /// A hit's body: how far it was read from the file.
    hit_pos: u64,
    /// The client's conditions say its copy is current (nginx's not_modified filter on a
    /// cached or cacheable response): 304, the head only.
    not_modified: bool,
}

/// What bounds the retries of a request (see [`Proxy::may_retry`]).
#[derive(Debug, Clone, Copy)]
struct RetryLimits {
    /// `proxy_next_upstream_tries` (0: no limit).
    tries: u32,
    /// `proxy_next_upstream_timeout` (zero: no limit).
    timeout: Duration,
    /// Servers (or addresses) there are to try.
    servers: u32,
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

    /// Whether a failed attempt moves on to the next server (nginx's
    /// `ngx_http_upstream_next`): `proxy_next_upstream` lists the failure; servers and
    /// `proxy_next_upstream_tries` are left, `proxy_next_upstream_timeout` (from the first
    /// try, at `now`) has not passed; the client has seen nothing; the request can be sent
    /// again whole; and it was not sent yet unless it is idempotent or `non_idempotent`.
    fn may_retry(
        &self,
        nu: &proton_ir::NextUpstream,
        limits: RetryLimits,
        fail: Fail,
        now: Instant,
    ) -> bool {
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
        allowed
            && self.tries < limits.servers
            && self.replayable
            && self.written == 0
            && (limits.tries == 0 || self.tries < limits.tries)
            && (limits.timeout.is_zero()
                || now.saturating_duration_since(self.first_try) < limits.timeout)
            && (self.idempotent || !self.sent_any || nu.non_idempotent)
    }

    /// The status the client got: the one written in its head, else the upstream's.
    fn sent_status(&self) -> u16 {
        if self.client_status != 0 {
            self.client_status
        } else {
            self.resp.status
        }
    }

    /// The upstream is a FastCGI application (`fastcgi_pass`): the request goes as records,
    /// the answer's records are taken apart ([`fcgi::FcgiIn`]).
    fn fcgi(&self) -> bool {
        self.protocol == proton_ir::Protocol::FastCgi
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
            protocol: proton_ir::Protocol::Http,
            keep_conn: false,
            cgi_pending: false,
            cgi_head: Vec::new(),
            head_pending: false,
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
            slice: None,
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
            cache: Default::default(),
            hit_pos: 0,
            not_modified: false,
        }
    }

    /// The upstream socket reported readiness for reading (`hup`: its FIN or an error).
    pub(crate) fn mark_upstream_readable(&mut self, hup: bool) {
        self.up_ready = true;
        self.up_hup |= hup;
    }

    fn reset(&mut self, now: Instant) {
        self.slice = None;
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
        self.protocol = proton_ir::Protocol::Http;
        self.keep_conn = false;
        self.cgi_pending = false;
        self.cgi_head.clear();
        self.head_pending = false;
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
        self.cache.reset();
        self.hit_pos = 0;
        self.not_modified = false;
    }
}

/// A new attempt sends a body in a temporary file from its start.
fn rewind_body(p: &mut Proxy) {
    if p.file_len > 0 {
        p.req.truncate(p.head_len);
        p.file_read = 0;
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

/// Response headers never passed to the client.
pub(super) fn hop_by_hop_response(name: &[u8]) -> bool {
    HOP_BY_HOP.iter().any(|n| token_eq(name, n))
}

/// Request headers never passed on: the hop-by-hop ones and `Expect` (answered here).
fn hop_by_hop_request(name: &[u8]) -> bool {
    hop_by_hop_response(name) || token_eq(name, b"expect")
}

/// The values of the lines named `name` of a head in `buf` whose fields `fields` gives (as
/// a parsed upstream head's: name and value ranges), in order.
pub(super) fn lines_named<'a>(
    buf: &'a [u8],
    fields: &'a [(std::ops::Range<usize>, std::ops::Range<usize>)],
    name: &'a [u8],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    fields.iter().filter_map(move |(n, v)| {
        buf.get(n.clone())
            .filter(|n| n.eq_ignore_ascii_case(name))
            .and_then(|_| buf.get(v.clone()))
    })
}

impl Proxy {
    /// The values of the upstream's header lines named `name` (its head is in `hold`,
    /// parsed into `resp`), in order.
    pub(super) fn upstream_lines<'a>(
        &'a self,
        name: &'a [u8],
    ) -> impl Iterator<Item = &'a [u8]> + 'a {
        lines_named(&self.hold, &self.resp.headers, name)
    }

    /// The first of them.
    pub(super) fn upstream_field<'a>(&'a self, name: &'a [u8]) -> Option<&'a [u8]> {
        self.upstream_lines(name).next()
    }

    /// gRPC: part of the request stream is still to go while the answer is read.
    fn request_streaming(&self) -> bool {
        self.protocol == proton_ir::Protocol::Grpc
            && (!matches!(self.body, ReqBody::None)
                || self.req_pos < self.req.len()
                || self.file_read < self.file_len)
    }

    /// The response is cut short (a subrequest in its body failed): what is out stays,
    /// the connection closes.
    pub(crate) fn cut_short(&mut self) {
        self.broken = true;
    }

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
    /// The access-log line of a request closed without an answer, with the status nginx
    /// logs for it (400 client gone during its body, 408 body timeout, 499 client gone).
    fn log_unanswered(&mut self, conn: &mut Conn, status: u16) {
        conn.finished.status = status;
        conn.finished.header_bytes = 0;
        conn.finished.body_bytes = 0;
        self.log_access(conn);
    }

    /// The settings of the module that answers in `loc` (`proxy_*`, `fastcgi_*`).
    fn proxy_settings(&self, loc: LocationId) -> &proton_ir::ProxySettings {
        let protocol = self
            .loaded
            .ir
            .locations
            .get(loc.0 as usize)
            .and_then(|l| l.conf.proxy.as_deref())
            .map_or(proton_ir::Protocol::Http, |p| p.protocol);
        self.settings_for(loc).upstream(protocol)
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
            protocol: p.protocol,
            peer: self.peer_addr(p),
            // The head is still at the start of `req` while the request can be sent again.
            uri: p
                .replayable
                .then(|| p.req.get(p.uri_at.clone()))
                .flatten()
                .unwrap_or_default(),
        }
    }

    /// Whether a failed attempt may move to the next server (nginx's proxy_next_upstream).
    fn may_retry(&self, p: &Proxy, fail: Fail) -> bool {
        let ps = self.proxy_settings(p.loc);
        let servers = if p.addrs.is_empty() {
            self.loaded
                .ir
                .upstreams
                .get(p.upstream)
                .map_or(1, |u| u.servers.len().max(1)) as u32
        } else {
            p.addrs.len() as u32
        };
        let limits = RetryLimits {
            tries: ps.next_upstream_tries,
            timeout: Duration::from_millis(ps.next_upstream_timeout_ms),
            servers,
        };
        p.may_retry(&ps.next_upstream, limits, fail, self.now)
    }

    /// Ends the current attempt: the upstream connection is closed (or cached when
    /// `reuse`), and the balancer is told.
    fn end_attempt(&mut self, p: &mut Proxy, reuse: bool, report: Option<Report>) {
        let u = p.upstream;
        if let Some(key) = p.up.take() {
            self.count_attempt(p, matches!(report, Some(Report::Failure)));
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
                self.ups.discard(key);
            }
            if let Some(bal) = self.ups.balancers.get_mut(u) {
                bal.release(p.peer);
                if let Some(r) = report.filter(|_| current) {
                    bal.report(p.peer, r, self.now);
                }
            }
        }
    }

    /// Counts the end of the current attempt in this worker's `proton_metrics` row.
    pub(super) fn count_attempt(&self, p: &Proxy, failed: bool) {
        if let Some(m) = &self.metrics {
            let ms = p
                .states
                .last()
                .and_then(|s| s.response_ms)
                .unwrap_or_else(|| p.attempt_ms(self.now));
            m.upstream(p.upstream, p.peer, failed, u64::from(ms));
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
        // proxy_cache_use_stale: the expired object instead of the error.
        if self.cache_stale(p, fail) {
            return Ok(());
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
        self.cache_release(&mut p);
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
            St::CacheLock | St::CachePurge => {
                // Time to look again (or for the next step).
                conn.proxy = Some(p);
                return self.drive(conn);
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

    /// Advances the proxied request of `conn` as far as the sockets allow.
    pub(crate) fn drive(&mut self, conn: &mut Conn) -> Drive {
        let Some(mut p) = conn.proxy.take() else {
            return Drive::Close;
        };
        // (A post action ignores the client, as nginx blocks reading for it.)
        if conn.rd_hup
            && !p.discard
            && matches!(
                p.st,
                St::Resolve | St::Connect | St::Send | St::Head | St::CacheLock | St::CachePurge
            )
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
                    // Everything written, head included: `finish` takes the head off for
                    // `$body_bytes_sent`.
                    conn.body_sent = p.written;
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
        let sent_whole = p.req_pos == p.req.len()
            && p.file_read == p.file_len
            && matches!(p.body, ReqBody::None);
        if matches!(
            p.protocol,
            proton_ir::Protocol::Scgi | proton_ir::Protocol::Uwsgi
        ) {
            // SCGI and uwsgi: the answer ends with the connection.
            return false;
        }
        if p.fcgi() {
            // FastCGI: kept only with fastcgi_keep_conn, once the answer's END_REQUEST
            // record was read and nothing after it.
            let clean =
                p.up.and_then(|k| self.ups.conns.get(k))
                    .and_then(|c| c.fcgi.as_deref())
                    .is_some_and(fcgi::FcgiIn::clean_end);
            return p.keep_conn && clean && sent_whole;
        }
        if p.protocol == proton_ir::Protocol::Grpc {
            // gRPC: the stream ended cleanly both ways, and no GOAWAY came.
            let clean =
                p.up.and_then(|k| self.ups.conns.get(k))
                    .and_then(|c| c.h2.as_deref())
                    .is_some_and(crate::http2::upstream::H2Up::clean_end);
            return clean && sent_whole;
        }
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
                St::CacheLock => self.step_cache_lock(conn, p),
                St::CachePurge => self.step_cache_purge(p),
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

enum Step {
    Progress,
    Blocked,
    Done(Drive),
    Fail(Fail, &'static str),
    /// A failure whose log line says more than a fixed text (TLS errors).
    FailWith(Fail, String),
}

/// An upstream URL for a log line, written when formatted (see `Worker::upstream_url`).
struct UpstreamUrl<'a> {
    https: bool,
    protocol: proton_ir::Protocol,
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
        if self.protocol != proton_ir::Protocol::Http {
            // nginx names a FastCGI (SCGI, uwsgi, gRPC) upstream without a URI, and over TLS
            // with its scheme's (`grpcs://`, `suwsgi://`).
            let scheme = match (self.protocol, self.https) {
                (proton_ir::Protocol::Grpc, true) => "grpcs",
                (proton_ir::Protocol::Uwsgi, true) => "suwsgi",
                (p, _) => p.module(),
            };
            return write!(f, "{scheme}://{}{sep}", PeerName(self.peer));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop() {
        assert!(hop_by_hop_request(b"Connection"));
        assert!(hop_by_hop_request(b"TE"));
        assert!(!hop_by_hop_request(b"Accept"));
        assert!(hop_by_hop_response(b"Transfer-Encoding"));
        assert!(!hop_by_hop_response(b"Set-Cookie"));
    }

    #[test]
    fn retries_as_nginx_next_upstream() {
        let now = Instant::now();
        let nu = proton_ir::NextUpstream {
            error: true,
            timeout: true,
            http_502: true,
            ..Default::default()
        };
        let limits = RetryLimits {
            tries: 0,
            timeout: Duration::ZERO,
            servers: 3,
        };
        let fresh = || {
            let mut p = Proxy::new();
            p.first_try = now;
            p.tries = 1;
            p
        };
        let p = fresh();
        assert!(p.may_retry(&nu, limits, Fail::Error, now));
        assert!(p.may_retry(&nu, limits, Fail::Timeout, now));
        assert!(p.may_retry(&nu, limits, Fail::Status(502), now));
        // Not listed.
        assert!(!p.may_retry(&nu, limits, Fail::InvalidHeader, now));
        assert!(!p.may_retry(&nu, limits, Fail::Status(500), now));
        // Every server tried; the tries limit; the time limit from the first try.
        let mut p = fresh();
        p.tries = 3;
        assert!(!p.may_retry(&nu, limits, Fail::Error, now));
        let p = fresh();
        let two = RetryLimits { tries: 1, ..limits };
        assert!(!p.may_retry(&nu, two, Fail::Error, now));
        let soon = RetryLimits {
            timeout: Duration::from_millis(100),
            ..limits
        };
        assert!(p.may_retry(&nu, soon, Fail::Error, now + Duration::from_millis(99)));
        assert!(!p.may_retry(&nu, soon, Fail::Error, now + Duration::from_millis(100)));
        // The client saw bytes; the body was not kept for a replay.
        let mut p = fresh();
        p.written = 1;
        assert!(!p.may_retry(&nu, limits, Fail::Error, now));
        let mut p = fresh();
        p.replayable = false;
        assert!(!p.may_retry(&nu, limits, Fail::Error, now));
        // A POST already sent goes again only with `non_idempotent`; one not sent yet does.
        let mut p = fresh();
        p.idempotent = false;
        assert!(p.may_retry(&nu, limits, Fail::Error, now));
        p.sent_any = true;
        assert!(!p.may_retry(&nu, limits, Fail::Error, now));
        let any = proton_ir::NextUpstream {
            non_idempotent: true,
            ..nu
        };
        assert!(p.may_retry(&any, limits, Fail::Error, now));
    }
}
