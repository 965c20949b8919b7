//! Choosing an upstream server and connecting to it: the balancer's pick, the
//! non-blocking connect (PROXY line, TLS handshake), the resolver for proxy_pass with
//! variables.

use super::*;

impl Worker<'_> {
    /// Picks a server (skipping those tried) and starts connecting, from the keep-alive
    /// cache when it has a live connection to that server. `Err(status)`: no server left.
    pub(super) fn connect(&mut self, owner: usize, p: &mut Proxy) -> Result<(), u16> {
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
            let one_shot = matches!(
                p.protocol,
                proton_ir::Protocol::Scgi | proton_ir::Protocol::Uwsgi
            );
            let idle = if p.pp.is_empty() && !one_shot {
                self.ups
                    .take_idle(u, peer, owner, !p.idempotent, p.https, p.protocol)
            } else {
                // A connection that started with another client's PROXY line is not this
                // client's.
                None
            };
            if let Some(key) = idle {
                let max_head = self.proxy_settings(p.loc).buffer_size as usize;
                if let Some(c) = self.ups.conns.get_mut(key) {
                    if let Some(f) = c.fcgi.as_deref_mut() {
                        f.reset();
                    }
                    if let Some(h) = c.h2.as_deref_mut() {
                        // The next stream of the kept connection.
                        h.start_stream(max_head);
                    }
                }
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
                    self.count_attempt(p, true);
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
    pub(super) fn open(
        &mut self,
        owner: usize,
        p: &mut Proxy,
        addr: &PeerAddr,
    ) -> Result<(), Open> {
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
        let fcgi = p.fcgi().then(|| self.ups.fcgi_in());
        let max_head = self.proxy_settings(p.loc).buffer_size as usize;
        let h2 = (p.protocol == proton_ir::Protocol::Grpc).then(|| self.ups.h2_up(max_head));
        let entry = self.ups.conns.vacant_entry();
        let key = entry.key();
        // A plain connection waits for writability only once a write would block (see
        // `UpConn::writable`); TLS, gRPC and a PROXY line manage their writes themselves.
        let writable = tls.is_some() || p.protocol == proton_ir::Protocol::Grpc || !p.pp.is_empty();
        let interest = if writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        self.registry
            .register(&mut sock, Token(UP_BASE + key), interest)
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
            fcgi,
            h2,
            gen,
            writable,
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
    pub(super) fn upstream_tls(&self, p: &Proxy, addr: &PeerAddr) -> std::io::Result<UpTls> {
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
                .get(crate::tls::upstream_tls_slot(settings, p.protocol))
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
    pub(super) fn tls_with_certificate(
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

    /// nginx's line for a failed connect (`crit` for errors other than a refusal or an
    /// unreachable network, such as a unix socket file that is not there).
    pub(super) fn log_connect_error(&self, p: &Proxy, e: &std::io::Error) {
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
    pub(super) fn log_local_error(&self, p: &Proxy, what: &str, e: &std::io::Error) {
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

    /// Connects to an upstream; for the name of a proxy_pass with variables, first asks the
    /// location's resolver (the request then waits in `St::Resolve`, at most
    /// `resolver_timeout`).
    pub(super) fn connect_or_resolve(&mut self, conn: &Conn, p: &mut Proxy) -> Result<(), u16> {
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
    pub(super) fn use_resolved(
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
    pub(super) fn step_resolve(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        let Some(outcome) = p.resolved.take() else {
            return Step::Blocked;
        };
        match self.use_resolved(conn.key as usize, p, outcome) {
            Ok(()) => Step::Progress,
            Err(code) => Step::Done(Drive::Failed(code)),
        }
    }

    /// The connection is in progress: the first write of the request tells how it went
    /// (`EAGAIN` while the handshake is on, the connect error if it failed), without a
    /// `getsockopt`/`getpeername` round. Over loopback the handshake is usually done by the
    /// time `connect` returns, so the request goes out at once.
    pub(super) fn step_connect(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
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
    pub(super) fn step_handshake(&mut self, p: &mut Proxy) -> Step {
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

    pub(super) fn connected(&mut self, p: &mut Proxy) -> Step {
        let ms = p.attempt_ms(self.now);
        if let Some(st) = p.states.last_mut() {
            st.connect_ms.get_or_insert(ms);
        }
        p.st = St::Send;
        p.deadline = self.now + Duration::from_millis(self.proxy_settings(p.loc).send_timeout_ms);
        Step::Progress
    }
}

/// Why a connection to an upstream could not be opened.
pub(super) enum Open {
    /// The connect failed (the server's fault: the next one may be tried).
    Connect(std::io::Error),
    /// The local end could not be set up (`proxy_bind`): what was tried, and why.
    Local(String, std::io::Error),
}

/// The error log's words for a failed handshake with an upstream, as nginx's.
pub(super) fn handshake_error(e: &rustls::Error, name: &[u8]) -> String {
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
