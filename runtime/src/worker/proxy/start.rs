//! The start of a proxied request: the URL of a proxy_pass with variables, the request
//! head towards the upstream (request line, proxy_set_header, the client's fields, the
//! body's framing) and how its body will go.

use super::*;

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
        // `slice`: the request fetches the range that holds the start of the client's
        // (nginx makes it when `$slice_range` is first asked for: this is before any
        // variable of the upstream request is).
        let settings = &ir.settings[l.conf.settings.0 as usize];
        let size = settings.slice;
        // (Only when the upstream request asks for `$slice_range` (a header, a FastCGI,
        // SCGI or uwsgi parameter, the cache key), as nginx slices only a request whose
        // variable was used.)
        let ups = settings.upstream(proxy.protocol);
        let uses = |t: &proton_ir::Template| {
            t.parts.iter().any(|p| {
                matches!(
                    p,
                    proton_ir::Part::Var(proton_ir::Var::Builtin(proton_ir::Builtin::SliceRange))
                )
            })
        };
        let asks = || {
            ups.set_headers.iter().any(|(_, t)| uses(t))
                || ups.cgi.params.iter().any(|p| uses(&p.value))
                || uses(&ups.cache.key)
        };
        if size > 0 && request.slice.is_none() && !request.subrequest && asks() {
            let start = slice_start(head, &conn.rbuf);
            request.slice = Some(Box::new(crate::worker::context::SliceState {
                size,
                start: size * (start / size),
                ..Default::default()
            }));
        }
        let head = &request.head;
        let mut p = self
            .ups
            .free
            .pop()
            .unwrap_or_else(|| Box::new(Proxy::new()));
        p.reset(self.now);
        let mut upstream = proxy.upstream.0 as usize;
        let fcgi = proxy.protocol == proton_ir::Protocol::FastCgi;
        let grpc = proxy.protocol == proton_ir::Protocol::Grpc;
        // FastCGI, SCGI, uwsgi, gRPC: an address or a group's name, no scheme (gRPC's may
        // start with grpc:// or grpcs://); no request line.
        let cgi = proxy.protocol != proton_ir::Protocol::Http;
        // proxy_pass with variables: the URL is made per request; its host names an
        // upstream group or is an IP address (nginx would need a `resolver` for other names).
        // Host and URI are ranges of `p.dyn_url`.
        let mut direct = None;
        let mut dyn_host = 0..0;
        let mut dyn_uri: Option<std::ops::Range<usize>> = None;
        if let Some(t) = &proxy.dynamic {
            let mut url = std::mem::take(&mut p.dyn_url);
            self.ctx(conn, request, 0).expand(t, &mut url);
            let start = if grpc && url.len() > 8 && url[..8].eq_ignore_ascii_case(b"grpcs://") {
                p.https = true;
                8
            } else if grpc && url.len() > 7 && url[..7].eq_ignore_ascii_case(b"grpc://") {
                7
            } else if cgi {
                // fastcgi_pass: an address or a group's name, no scheme.
                0
            } else if url.starts_with(b"http://") {
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
            dyn_host = if cgi {
                start..url.len()
            } else if unix {
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
            } else if cgi && split_port(host).1.is_none() {
                elog!(
                    self.elog,
                    Error,
                    "no port in upstream \"{host}\", client: {}",
                    conn.peer.ip()
                );
                p.dyn_url = url;
                self.recycle(p);
                return Handled::Status(500);
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
        let ps = s.upstream(proxy.protocol);
        p.protocol = proxy.protocol;
        p.keep_conn = fcgi && ps.cgi.keep_conn;
        p.cgi_pending = proxy.protocol.cgi();
        // The request body sent is the proxy's own (`proxy_set_body`, `proxy_pass_request_body
        // off`), or none for a mirror with `mirror_request_body off`: the client's stays with
        // the connection, which reads and drops it.
        let mirror_no_body = request.mirror_sub && !request.mirrors.first().is_some_and(|m| m.body);
        let own_body = ps.set_body.is_some() || !ps.pass_request_body || mirror_no_body;
        if has_body
            && !own_body
            && !body.resendable()
            && (request.post_action || body.state != crate::worker::body::BodyState::Unread)
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

        // The upstream's host (`$proxy_host`) and, over TLS, the name its certificate must
        // have.
        let proxy_host = if proxy.dynamic.is_some() {
            p.dyn_url.get(dyn_host.clone()).unwrap_or_default()
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
        // The content cache: a fresh object answers now (its head is parsed into `p`);
        // otherwise the request goes upstream, as a GET for a HEAD the cache converts.
        let mut method = method;
        if ps.cache.zone.is_some() {
            // (`$proxy_host` may be a part of `p`'s URL: a copy, from the pool.)
            let mut host = self.scratch.var_pool.borrow_mut().buf();
            host.extend_from_slice(proxy_host);
            let (convert, hit) =
                self.cache_lookup(conn, request, &mut p, ps, method, (&host, proxy_unix));
            self.scratch.var_pool.borrow_mut().give_buf(host);
            if hit {
                p.head_only = request.head.is_head();
                p.idempotent = true;
                p.st = St::Head;
                p.deadline = self.now + Duration::from_millis(ps.read_timeout_ms);
                // Driven on the next round of the event loop (no socket will wake it).
                let next_round = self.now + Duration::from_nanos(1);
                crate::worker::conn::wake_at(request, (conn.key, conn.number), next_round, self);
                conn.proxy = Some(p);
                return Handled::Proxy;
            }
            if p.cache.error_answer != 0 {
                let code = p.cache.error_answer;
                self.recycle(p);
                return Handled::Status(code);
            }
            if p.cache.purge.is_some() {
                // proxy_cache_purge through the files, in steps (no upstream).
                p.st = St::CachePurge;
                p.deadline = self.now;
                conn.proxy = Some(p);
                return Handled::Proxy;
            }
            if p.cache.request_cc.only_if_cached {
                // Not in the cache (fresh, or stale as the client allows): 504, the
                // upstream not asked (RFC 9111 5.2.1.7).
                self.cache_release(&mut p);
                self.recycle(p);
                return Handled::Status(504);
            }
            self.cache_check_range(conn, request, &mut p);
            if convert {
                method = b"GET";
            }
        }
        let head = &request.head;
        let body = &request.body;
        let proxy_host = if proxy.dynamic.is_some() {
            p.dyn_url.get(dyn_host).unwrap_or_default()
        } else {
            ir.text_of(proxy.proxy_host).as_bytes()
        };
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
                    match self.tls_with_certificate(
                        crate::tls::upstream_tls_slot(l.conf.settings.0 as usize, proxy.protocol),
                        &ps.tls,
                        &p,
                    ) {
                        Ok(c) => p.tls_config = Some(c),
                        Err(e) => {
                            elog!(
                                self.elog,
                                Error,
                                "{e} while SSL handshaking to upstream, client: {}",
                                conn.peer.ip()
                            );
                            self.recycle(p);
                            return Handled::Status(500);
                        }
                    }
                }
            }
        }
        let mut req = std::mem::take(&mut p.req);
        if cgi {
            // FastCGI: the client's method decides retries; the records carry no method
            // line of their own (REQUEST_METHOD is a param).
            p.idempotent = !matches!(method, b"LOCK" | b"POST" | b"PATCH");
            // (A HEAD the cache reads whole: see `cache_lookup`.)
            p.head_only = head.is_head() && !p.cache.no_client_body;
            let keep_whole = request.mirror_body_wanted();
            p.own_body = own_body;
            let whole = has_body
                && !own_body
                && !body.resendable()
                && (ps.request_buffering
                    || keep_whole
                    // (SCGI and uwsgi need the length first: a chunked body is read whole;
                    // gRPC's DATA frames need none.)
                    || (head.chunked && !grpc && (!fcgi || preread_whole(conn, s))));
            if whole {
                // The params wait for the body (CONTENT_LENGTH of a chunked one).
                let max_body = s.client_max_body_size;
                p.read_whole = true;
                p.memory_only = !ps.request_buffering && !keep_whole;
                p.st = St::ReadBody;
                // The params wait for the body's length; gRPC's head needs none.
                p.head_pending = !grpc;
                if grpc {
                    let https = p.https;
                    self.grpc_request_head(
                        conn, request, ps, method, proxy_host, https, false, &mut req,
                    );
                }
                p.body = match head.content_length {
                    Some(n) if !head.chunked => ReqBody::Length(n),
                    _ if max_body > 0 => ReqBody::Chunked(ChunkedDecoder::with_limit(max_body)),
                    _ => ReqBody::Chunked(ChunkedDecoder::default()),
                };
            } else {
                let length = if body.resendable() {
                    body.len()
                } else {
                    head.content_length.unwrap_or(0)
                };
                let no_body = own_body || !has_body;
                if grpc {
                    let https = p.https;
                    self.grpc_request_head(
                        conn, request, ps, method, proxy_host, https, no_body, &mut req,
                    );
                } else if self
                    .cgi_request_head(
                        conn,
                        request,
                        ps,
                        proxy.protocol,
                        length,
                        p.cache.zone.is_some() && !p.cache.no_store,
                        &mut req,
                    )
                    .is_err()
                {
                    req.clear();
                    p.req = req;
                    self.recycle(p);
                    return Handled::Status(500);
                }
                if no_body {
                    if fcgi {
                        fcgi::stdin_records(&[], true, &mut req);
                    }
                } else if body.resendable() {
                    frame_kept_body(&mut req, body, &mut p);
                } else {
                    let max_body = s.client_max_body_size;
                    p.body = match head.content_length {
                        Some(n) if !head.chunked => ReqBody::Length(n),
                        _ if max_body > 0 => ReqBody::Chunked(ChunkedDecoder::with_limit(max_body)),
                        _ => ReqBody::Chunked(ChunkedDecoder::default()),
                    };
                }
            }
        } else {
            // The request line; the method is the client's, or `proxy_method`'s (not for a
            // HEAD: its answer must stay without a body).
            match &ps.method {
                Some(t) if !head.is_head() => {
                    self.ctx(conn, request, 0).expand(t, &mut req);
                    // A method from variables must be a token: nothing else may reach the
                    // request line.
                    let token =
                        |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
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
                None => {
                    self.upstream_uri(conn, request, proxy.prefix, proxy.uri.as_ref(), &mut req)
                }
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
            // proxy_cache_revalidate: the expired object's validators (nginx's
            // `$upstream_cache_last_modified` and `$upstream_cache_etag`).
            // (Only for a 200 or 206 stored, as nginx.)
            let revalidate = ps.cache.revalidate && matches!(p.cache.stale_status, 200 | 206);
            if let (true, Some((_, meta))) = (revalidate, p.cache.stale.as_ref()) {
                if meta.last_modified >= 0 {
                    let mut date = [0u8; 29];
                    let t = std::time::UNIX_EPOCH
                        + Duration::from_secs(meta.last_modified.unsigned_abs());
                    crate::http::date::http_date(t, &mut date);
                    req.extend_from_slice(b"If-Modified-Since: ");
                    req.extend_from_slice(&date);
                    req.extend_from_slice(b"\r\n");
                }
                if !p.cache.etag.is_empty() {
                    req.extend_from_slice(b"If-None-Match: ");
                    req.extend_from_slice(&p.cache.etag);
                    req.extend_from_slice(b"\r\n");
                }
            }
            // A location that caches says so (Edge Architecture): the upstream may then
            // send a Surrogate-Control for this cache (unless proxy_set_header sets the field).
            if p.cache.zone.is_some()
                && !ps
                    .set_headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("surrogate-capability"))
            {
                req.extend_from_slice(crate::cache::control::CAPABILITY);
            }
            p.upgrade = sent_upgrade && http11 && client_upgrade.is_some() && !h2c && !p.discard;

            // The client's own headers, minus hop-by-hop ones and those set above (none with
            // `proxy_pass_request_headers off`).
            // (With a cache, not the client's conditions and ranges: see
            // `cache::NOT_FORWARDED`.)
            let cache_on = p.cache.zone.is_some() && !p.cache.no_store;
            if ps.pass_request_headers {
                copy_client_fields(
                    head.fields(&conn.rbuf),
                    head.get(&conn.rbuf, b"connection").unwrap_or(b""),
                    |n| {
                        ps.set_headers
                            .iter()
                            .any(|(s, _)| s.as_bytes().eq_ignore_ascii_case(n))
                            || (cache_on
                                && cache::NOT_FORWARDED
                                    .iter()
                                    .any(|f| f.eq_ignore_ascii_case(n)))
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
        }
        p.req = req;
        if head.expect_continue && conn.rbuf.len() == conn.head_len() && !p.discard {
            // The client waits for a go-ahead before sending the body. As nginx, the proxy
            // (a handler that reads the body) sends it even for an empty body.
            let v: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
            let _ = conn.write_bytes(v);
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
            conn.discard = crate::worker::conn::Discard::None;
        }
        if p.st == St::ReadBody {
            // No upstream before the body is in (nginx's ngx_http_read_client_request_body).
            p.deadline = self.now + Duration::from_millis(s.client_body_timeout_ms);
            conn.proxy = Some(p);
            return Handled::Proxy;
        }
        if p.cache.lock_wait {
            // proxy_cache_lock: another request fetches the object; this one looks again
            // shortly (see `cache::step_cache_lock`).
            p.st = St::CacheLock;
            p.deadline = self.now;
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
    pub(super) fn upstream_uri(
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
}

/// Ends the request head with the framing of a body kept by the request context and puts
/// the body (in memory) after it; a body in a temporary file is read into `req` piece by
/// piece as it is sent.
pub(super) fn frame_kept_body(
    req: &mut Vec<u8>,
    body: &crate::worker::body::RequestBody,
    p: &mut Proxy,
) {
    if p.protocol == proton_ir::Protocol::Http {
        let _ = write!(req, "Content-Length: {}\r\n\r\n", body.len());
    }
    p.head_len = req.len();
    p.buffered = true;
    p.body = ReqBody::None;
    if body.in_file() && body.len() > 0 {
        p.file_len = body.len();
        p.file_read = 0;
    } else if p.fcgi() {
        fcgi::stdin_records(body.bytes(), true, req);
    } else if p.protocol == proton_ir::Protocol::Grpc {
        crate::http2::upstream::data_frames(body.bytes(), true, req);
    } else {
        req.extend_from_slice(body.bytes());
    }
}

/// Bytes that nginx's `ngx_escape_uri(NGX_ESCAPE_URI)` escapes when a changed URI is sent.
/// Where the client's `Range` starts (nginx's `ngx_http_slice_get_start`): 0 with an
/// `If-Range`, several ranges, a suffix range or none.
fn slice_start(head: &crate::http::request::RequestHead, buf: &[u8]) -> u64 {
    if head.get(buf, b"if-range").is_some() {
        return 0;
    }
    let Some(v) = head.get(buf, b"range") else {
        return 0;
    };
    if v.len() < 7 || !v[..6].eq_ignore_ascii_case(b"bytes=") || v.contains(&b',') {
        return 0;
    }
    let digits = v[6..].trim_ascii_start();
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&digits[..n])
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

pub(super) fn needs_escape(b: u8) -> bool {
    b <= 0x20 || b >= 0x7f || matches!(b, b'#' | b'%' | b'?')
}

pub(super) fn escape_into(src: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in src {
        if needs_escape(b) {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.push(b);
        }
    }
}

/// `host[:port]` → (host, port); an IPv6 literal keeps its brackets. A port that is not a
/// number counts as none.
pub(super) fn split_port(hostport: &str) -> (&str, Option<u16>) {
    if hostport.ends_with(']') {
        return (hostport, None);
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.ends_with(':') => (h, p.parse().ok()),
        _ => (hostport, None),
    }
}

/// Appends the client's header lines that go on to the upstream, in order: all but the
/// hop-by-hop ones, those the client's `Connection` header names, and those `set` says
/// `proxy_set_header` sets.
pub(super) fn copy_client_fields<'a>(
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
pub(super) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Whether a chunked body came whole with the head, within what nginx reads before it
/// makes the upstream request without buffering: the rest of the buffer it read the head
/// into (`client_header_buffer_size`, or a `large_client_header_buffers` one for a longer
/// head) and one `client_body_buffer_size` read. nginx then sends it with a length.
pub(super) fn preread_whole(conn: &Conn, s: &proton_ir::Settings) -> bool {
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

/// Whether a proxy_pass host (or what follows the scheme of a URL) is a unix socket,
/// `unix:PATH` (any case, as nginx).
pub(crate) fn is_unix_host(host: &[u8]) -> bool {
    host.get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"unix:"))
}

/// The `host` of a proxy_pass `host[:port]` (an IPv6 address without its brackets): the
/// default TLS name of an upstream, as nginx.
pub(super) fn host_of(hostport: &[u8]) -> &[u8] {
    if let Some(rest) = hostport.strip_prefix(b"[") {
        let end = rest.iter().position(|&b| b == b']').unwrap_or(rest.len());
        return &rest[..end];
    }
    match hostport.iter().rposition(|&b| b == b':') {
        Some(i) if hostport[i + 1..].iter().all(u8::is_ascii_digit) => &hostport[..i],
        _ => hostport,
    }
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
    fn tokens() {
        assert!(has_token(b"keep-alive, Upgrade", b"upgrade"));
        assert!(!has_token(b"keep-alive", b"upgrade"));
        assert!(has_token(b" h2c ", b"h2c"));
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
}
