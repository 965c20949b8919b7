//! A worker's upstream connections: the slab of sockets, the keep-alive caches, the
//! balancers and the addresses of `server … resolve` peers.

use super::*;

/// One connection to an upstream server.
pub(crate) struct UpConn {
    pub(super) sock: TcpStream,
    /// The TLS session of a connection to an `https://` upstream.
    pub(super) tls: Option<Box<UpTls>>,
    pub(super) upstream: usize,
    pub(super) peer: usize,
    /// The client connection (slab key) using it; `None` while cached.
    pub(super) owner: Option<usize>,
    /// Requests sent on it.
    pub(super) requests: u32,
    /// When a cached connection is closed.
    pub(super) idle_until: Instant,
    /// When it was opened (`keepalive_time`).
    pub(super) opened: Instant,
    /// A connection to a FastCGI application (`fastcgi_pass`): the records of the answer
    /// being read. `None`: an HTTP upstream.
    pub(super) fcgi: Option<Box<super::fcgi::FcgiIn>>,
    /// A connection to a gRPC server (`grpc_pass`): its HTTP/2 state. `None`: not HTTP/2.
    pub(super) h2: Option<Box<crate::http2::upstream::H2Up>>,
    /// The peer's address generation it was opened to (see `Upstreams::addr_gen`): a
    /// `server … resolve` peer whose address changed since is another server.
    pub(super) gen: u32,
    /// Whether the socket is registered for writability too. A plain connection (no TLS,
    /// no HTTP/2, no PROXY line) starts registered for reading only: its request usually
    /// goes out whole in the first write, and an EPOLLOUT registration would only bring a
    /// wake-up per request (the upstream reading the request frees its send buffer) that
    /// nothing waits for. A write that would block adds it (`Worker::write_req`), and so
    /// does a tunnel (`Worker::step_tunnel`).
    pub(super) writable: bool,
}

/// A worker's upstream connections, keep-alive caches and balancers.
pub(crate) struct Upstreams {
    pub(super) conns: Slab<UpConn>,
    /// Per IR upstream: cached idle connections (keys into `conns`), oldest first.
    pub(super) idle: Vec<Vec<usize>>,
    pub(super) balancers: Vec<Balancer>,
    /// Proxy states for reuse, boxed as `Conn::proxy` holds them (no allocation per request).
    #[allow(clippy::vec_box)]
    pub(super) free: Vec<Box<Proxy>>,
    /// Some idle list is longer than its upstream's `keepalive` (trimmed by `trim`).
    pub(super) overfull: bool,
    /// TLS configs with the client certificates `proxy_ssl_certificate` with variables
    /// named: (settings, certificate name, key name, config), least recently used first.
    pub(super) cert_configs: Vec<CertConfig>,
    /// The number of this worker's last temporary file (nginx's `ngx_temp_number`).
    pub(crate) temp_seq: u32,
    /// The memory tier of each cache zone (`crate::cache::hot`), by zone index.
    pub(super) hot: Vec<crate::cache::hot::Hot>,
    /// Decoded pieces of a request body (ranges of the client's buffer), reused.
    pub(super) pieces: Vec<std::ops::Range<usize>>,
    /// The last unix socket a proxy_pass with variables named, kept so that requests to the
    /// same socket share its path instead of allocating one each.
    pub(super) last_unix: Option<PeerAddr>,
    /// The address of every upstream peer, by upstream then peer: the configuration's, with
    /// those of `server … resolve` peers as this worker last took them from the shared state
    /// (`None`: none).
    pub(super) addrs: Vec<Vec<Option<PeerAddr>>>,
    /// By upstream then peer: how many times the peer's address changed (see `UpConn::gen`).
    pub(super) addr_gen: Vec<Vec<u32>>,
    /// FastCGI readers of closed connections, for the next ones (`fastcgi_pass` without
    /// keep-alive opens a connection per request: no allocation for its reader and buffer).
    #[allow(clippy::vec_box)]
    fcgi_free: Vec<Box<super::fcgi::FcgiIn>>,
    /// The HTTP/2 states of closed gRPC connections, for new ones (as `fcgi_free`).
    #[allow(clippy::vec_box)]
    h2_free: Vec<Box<crate::http2::upstream::H2Up>>,
}

/// The most FastCGI readers (and, apart, gRPC connection states) kept for reuse
/// ([`Upstreams::fcgi_in`], [`Upstreams::h2_up`]).
const FCGI_FREE_MAX: usize = 64;

pub(super) type CertConfig = (
    usize,
    Vec<u8>,
    Vec<u8>,
    std::sync::Arc<rustls::ClientConfig>,
);

impl Upstreams {
    /// The memory tier of cache zone `zone` in this worker.
    pub(super) fn hot(&mut self, zone: usize) -> &mut crate::cache::hot::Hot {
        if self.hot.len() <= zone {
            self.hot.resize_with(zone + 1, Default::default);
        }
        &mut self.hot[zone]
    }

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
            temp_seq: crate::worker::body::first_seq(),
            hot: Vec::new(),
            pieces: Vec::new(),
            last_unix: None,
            addrs: loaded.upstream_addrs.clone(),
            addr_gen: loaded
                .upstream_addrs
                .iter()
                .map(|a| vec![0; a.len()])
                .collect(),
            fcgi_free: Vec::new(),
            h2_free: Vec::new(),
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
    pub(super) fn generation(&self, u: usize, peer: usize) -> u32 {
        self.addr_gen
            .get(u)
            .and_then(|g| g.get(peer))
            .copied()
            .unwrap_or(0)
    }

    /// Whether connection `c` still goes to its peer's current address.
    pub(super) fn current(&self, c: &UpConn) -> bool {
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
                    if let Some(c) = self.conns.try_remove(key) {
                        recycle(&mut self.fcgi_free, &mut self.h2_free, c);
                    }
                }
            }
        }
    }

    /// The address of unix socket `path` named by a proxy_pass with variables: the last one
    /// again when it is the same socket (no allocation), else a new one that is kept.
    pub(super) fn unix_peer(&mut self, path: &str) -> PeerAddr {
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
    pub(super) fn close(&mut self, key: usize) {
        if let Some(u) = self.conns.try_remove(key) {
            if u.owner.is_none() {
                if let Some(list) = self.idle.get_mut(u.upstream) {
                    list.retain(|&k| k != key);
                }
            }
            recycle(&mut self.fcgi_free, &mut self.h2_free, u);
        }
    }

    /// Removes (closes) connection `key`, not cached, keeping its FastCGI reader.
    pub(super) fn discard(&mut self, key: usize) {
        if let Some(c) = self.conns.try_remove(key) {
            recycle(&mut self.fcgi_free, &mut self.h2_free, c);
        }
    }

    /// A FastCGI reader for a new connection: a closed connection's, else a new one.
    pub(super) fn fcgi_in(&mut self) -> Box<super::fcgi::FcgiIn> {
        self.fcgi_free
            .pop()
            .unwrap_or_else(|| Box::new(super::fcgi::FcgiIn::new()))
    }

    /// The HTTP/2 state of a new gRPC connection (its first stream open): a closed
    /// connection's, else a new one.
    pub(super) fn h2_up(&mut self, max_head: usize) -> Box<crate::http2::upstream::H2Up> {
        let mut h = self
            .h2_free
            .pop()
            .unwrap_or_else(|| Box::new(crate::http2::upstream::H2Up::new()));
        h.restart(max_head);
        h
    }

    /// A cached connection to `peer` of upstream `u` that still looks alive.
    /// `probe`: check first that the upstream has not closed it meanwhile (one `recv`
    /// with MSG_PEEK). Worth it only for requests that cannot simply be sent again on a
    /// fresh connection when the cached one turns out closed (POST and friends): the close
    /// event of a cached connection normally arrives, and drops it, before it is reused.
    pub(super) fn take_idle(
        &mut self,
        u: usize,
        peer: usize,
        owner: usize,
        probe: bool,
        https: bool,
        protocol: proton_ir::Protocol,
    ) -> Option<usize> {
        let fcgi = protocol == proton_ir::Protocol::FastCgi;
        let h2 = protocol == proton_ir::Protocol::Grpc;
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
                self.discard(key);
                continue;
            }
            if c.tls.is_some() != https || c.fcgi.is_some() != fcgi || c.h2.is_some() != h2 {
                // Made for the other scheme or protocol (one upstream group proxied to as
                // http:// and as https://, or by fastcgi_pass): not for this request.
                self.discard(key);
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
            self.discard(key);
        }
    }
}

/// Keeps the FastCGI reader (or gRPC state) of closed connection `c` for the next
/// connection (its buffers kept unless large), at most [`FCGI_FREE_MAX`] of each; `c`'s
/// socket closes.
#[allow(clippy::vec_box)]
fn recycle(
    free: &mut Vec<Box<super::fcgi::FcgiIn>>,
    h2_free: &mut Vec<Box<crate::http2::upstream::H2Up>>,
    mut c: UpConn,
) {
    if let Some(mut f) = c.fcgi.take() {
        if free.len() < FCGI_FREE_MAX && f.recyclable() {
            f.reset();
            free.push(f);
        }
    }
    if let Some(h) = c.h2.take() {
        if h2_free.len() < FCGI_FREE_MAX && h.recyclable() {
            h2_free.push(h);
        }
    }
}

/// The upstream side of a proxied exchange as the proxy's steps see it: plaintext bytes in
/// and out (TLS records underneath for an `https://` upstream). [`UpConn`] is the real one;
/// the unit tests script a fake one (`fake::FakeUpstream`) to drive the steps through every
/// split, stall, close and reset an upstream can produce.
pub(super) trait UpstreamIo {
    /// Reads at most `want` bytes onto the end of `buf`. `ready` is the readiness the
    /// event loop reported (cleared once a read finds the socket drained), `hup` its FIN or
    /// error. `Ok(0)`: the upstream closed.
    fn read(
        &mut self,
        ready: &mut bool,
        hup: bool,
        buf: &mut Vec<u8>,
        want: usize,
    ) -> std::io::Result<usize>;
    /// Writes from `data`; how much was taken.
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize>;
}

impl UpstreamIo for UpConn {
    fn read(
        &mut self,
        ready: &mut bool,
        hup: bool,
        buf: &mut Vec<u8>,
        want: usize,
    ) -> std::io::Result<usize> {
        if let Some(r) = self.h2_io(ready, hup, |h, wire| h.read(buf, want, wire)) {
            return r;
        }
        let (sock, mut tls) = (&self.sock, self.tls.as_deref_mut());
        match self.fcgi.as_deref_mut() {
            Some(f) => f.read(
                |raw, n| client_read(sock, tls.as_deref_mut(), ready, hup, raw, n),
                buf,
                want,
            ),
            None => client_read(sock, tls, ready, hup, buf, want),
        }
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // (Readiness is not tracked for writes: a read that finds nothing says so.)
        if let Some(r) = self.h2_io(&mut true, false, |h, wire| h.write(data, wire)) {
            return r;
        }
        client_write(&self.sock, self.tls.as_deref_mut(), data)
    }
}

/// The socket (and TLS session) of an upstream connection as the HTTP/2 layer sees it.
struct UpWire<'a> {
    sock: &'a TcpStream,
    tls: Option<&'a mut UpTls>,
    ready: &'a mut bool,
    hup: bool,
}

impl crate::http2::upstream::Wire for UpWire<'_> {
    fn recv(&mut self, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
        client_read(
            self.sock,
            self.tls.as_deref_mut(),
            self.ready,
            self.hup,
            buf,
            want,
        )
    }

    fn send(&mut self, data: &[u8]) -> std::io::Result<usize> {
        client_write(self.sock, self.tls.as_deref_mut(), data)
    }
}

impl UpConn {
    /// gRPC: whether the server's answer has begun while the request is still being sent
    /// (see `H2Up::answer_begun`). False for other protocols.
    pub(super) fn answer_begun(&mut self) -> bool {
        self.h2_io(&mut true, false, |h, wire| h.answer_begun(wire))
            .unwrap_or(false)
    }

    /// Runs `f` on the connection's HTTP/2 state with its socket; `None`: not HTTP/2.
    fn h2_io<R>(
        &mut self,
        ready: &mut bool,
        hup: bool,
        f: impl FnOnce(&mut crate::http2::upstream::H2Up, &mut UpWire<'_>) -> R,
    ) -> Option<R> {
        let h = self.h2.as_deref_mut()?;
        let mut wire = UpWire {
            sock: &self.sock,
            tls: self.tls.as_deref_mut(),
            ready,
            hup,
        };
        Some(f(h, &mut wire))
    }

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
