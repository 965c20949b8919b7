//! The upstream's response head: read and parsed, judged (interim answers, retries,
//! intercepted errors, X-Accel-Redirect) and turned into the client's head.

use super::*;

impl Worker<'_> {
    /// The upstream's response head: read whole (interim answers dropped), then judged.
    pub(super) fn step_head(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        if p.cache.hit.is_some() {
            // From the cache: the head is read and parsed already.
            return self.head_judged(conn, p);
        }
        if p.request_streaming() {
            if let Err(step) = self.send_more(conn, p) {
                return step;
            }
        }
        let limit = (self.proxy_settings(p.loc).buffer_size as usize).max(1024);
        let Some(c) = p.up.and_then(|k| self.ups.conns.get_mut(k)) else {
            return Step::Fail(Fail::Error, "lost upstream connection");
        };
        let read = read_head(c, p, limit);
        let protocol_error = c.fcgi.as_deref().is_some_and(|f| f.error.is_some());
        let h2_error = c.h2.as_deref().and_then(|h| h.error);
        if p.fcgi() && self.fcgi_notes(p, "response header from upstream", true) {
            return Step::Fail(
                Fail::InvalidHeader,
                "upstream sent a text fastcgi_catch_stderr names in its error stream",
            );
        }
        match read {
            HeadRead::Final => {}
            HeadRead::Blocked => return Step::Blocked,
            // (Logged with its details.)
            HeadRead::Fail(f, _) if protocol_error => {
                return Step::Fail(f, "upstream sent an invalid FastCGI record")
            }
            // gRPC: the server broke HTTP/2, refused the stream (RST_STREAM, GOAWAY) or sent
            // a field HTTP/2 forbids: an invalid header, as nginx's grpc module counts it.
            HeadRead::Fail(_, _) if h2_error.is_some() => {
                return Step::Fail(Fail::InvalidHeader, h2_error.unwrap_or_default());
            }
            HeadRead::Fail(f, what) => return Step::Fail(f, what),
        }
        self.head_judged(conn, p)
    }

    /// The response head is in `p` (the upstream's, or a cached object's): judged, and
    /// the client's made.
    fn head_judged(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        let cached = p.cache.hit.is_some();
        let status = p.resp.status;
        p.head_latency = self.now.saturating_duration_since(p.attempt_start);
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
            // A 101 to a request that did not ask to switch (or a switch the proxy did not
            // pass on): as nginx, the head goes to the client as an answer without a body,
            // no tunnel, and both connections close.
            elog!(
                self.elog,
                Info,
                "upstream sent \"101 Switching Protocols\" without an upgrade requested, not switching, client: {}",
                conn.peer.ip()
            );
            p.spoiled = true;
            p.keep_client = false;
        }
        if !cached
            && matches!(status, 500 | 502 | 503 | 504 | 403 | 404 | 429)
            && p.cache.stale.is_some()
            && !self.may_retry(p, Fail::Status(status))
            && self.proxy_settings(p.loc).cache.zone.is_some()
        {
            // proxy_cache_use_stale http_*: the expired object instead of this answer (its
            // connection closed, as nginx finalizes the upstream).
            p.spoiled = true;
            self.note_upstream(p, status);
            let latency = self.now.saturating_duration_since(p.attempt_start);
            self.end_attempt(p, false, Some(Report::Success { latency }));
            if self.cache_stale(p, Fail::Status(status)) {
                return Step::Progress;
            }
            return Step::Done(Drive::Failed(status));
        }
        if !cached && self.cache_revalidated(p) {
            // The expired object, fresh again (a background update is over with that).
            if p.cache.updater {
                return Step::Done(Drive::Finished);
            }
            return Step::Progress;
        }
        if let (Some(req), true) = (conn.req.as_deref_mut(), p.cache.status != 0) {
            req.cache_status = p.cache.status;
        }
        if !cached
            && matches!(status, 500 | 502 | 503 | 504 | 403 | 404 | 429)
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
        if ps.intercept_errors && status >= 300 && !cached {
            let s = self.settings_for(p.loc);
            if s.error_pages.iter().any(|e| e.codes.contains(&status)) {
                // The upstream's WWW-Authenticate lines go with a 401's error page.
                if let (401, Some(req)) = (status, conn.req.as_deref_mut()) {
                    let mut carried = std::mem::take(&mut req.carried);
                    crate::worker::request::carry_lines(
                        &req.upstream_head,
                        &[b"www-authenticate"],
                        &mut carried,
                    );
                    req.carried = carried;
                }
                p.spoiled = true;
                self.note_upstream(p, status);
                self.cache_error(conn, p, status);
                return Step::Done(Drive::Failed(status));
            }
        }
        // X-Accel-Redirect (after intercept_errors, as nginx): the request goes on elsewhere, the upstream's answer unread
        // (nginx's ngx_http_upstream_process_headers).
        if !ps.ignore_headers.x_accel_redirect
            && !p.discard
            && conn.req.as_deref().is_some_and(|r| {
                crate::worker::vars::head_fields(&r.upstream_head)
                    .any(|(n, _)| n.eq_ignore_ascii_case(b"x-accel-redirect"))
            })
        {
            // The rate the upstream asks for stays with the request (nginx reads the header
            // while parsing the head, before it redirects).
            if let Some(req) = conn.req.as_deref_mut() {
                let rate = crate::worker::vars::head_fields(&req.upstream_head)
                    .find(|(n, _)| n.eq_ignore_ascii_case(b"x-accel-limit-rate"))
                    .and_then(|(_, v)| accel_limit_rate(v));
                if let Some(rate) = rate.filter(|_| !ps.ignore_headers.x_accel_limit_rate) {
                    req.limit_rate = Some(rate);
                }
                // nginx's redirect headers go with the answer the redirect leads to.
                let mut carried = std::mem::take(&mut req.carried);
                crate::worker::request::carry_lines(
                    &req.upstream_head,
                    &crate::worker::request::XAR_CARRIED,
                    &mut carried,
                );
                req.carried = carried;
            }
            p.spoiled = true;
            self.note_upstream(p, status);
            return Step::Done(Drive::Redirect);
        }
        if p.discard && !p.cache.updater {
            // A mirror or a post action is over with the answer's head (nginx makes both
            // `header_only`): its body is not read, so a slow or endless one holds up
            // nothing, and the upstream connection, its body unread, is not kept.
            p.spoiled = true;
            p.hold.clear();
            self.note_upstream(p, status);
            return Step::Done(Drive::Finished);
        }
        // `slice`: the part must be the range asked for, else the response is cut short
        // (nginx's slice header filter fails the request).
        p.slice = match slice_check(conn, p) {
            Ok(part) => part,
            Err(why) => {
                elog!(
                    self.elog,
                    Error,
                    "{why} while reading response header from upstream, client: {}, upstream: \"{}\"",
                    conn.peer.ip(),
                    self.upstream_url(p)
                );
                if let Some(l) = crate::worker::sub::link_of(conn) {
                    l.failed = true;
                }
                p.spoiled = true;
                self.note_upstream(p, status);
                return Step::Done(Drive::Close);
            }
        };
        if !cached {
            self.cache_invalidate(conn, p);
            self.cache_decide(conn, p);
            self.store_decide(conn, p);
        }
        // Several ranges of a cached answer: multipart/byteranges (nginx's range filter).
        if cached {
            self.cache_multipart(conn, p);
        }
        // nginx's not_modified filter, which looks at cached and cacheable responses only
        // (a slice's first part is the 200 of the whole for the client).
        if (cached || p.cache.cacheable) && (status == 200 || p.slice.is_some()) {
            match self.cache_conditions(conn, p) {
                Some(412) => {
                    p.cache.write = None;
                    p.spoiled = true;
                    self.note_upstream(p, status);
                    return Step::Done(Drive::Failed(412));
                }
                Some(_) => {
                    p.not_modified = true;
                    if cached {
                        p.head_only = true;
                    } else {
                        p.cache.no_client_body = true;
                    }
                }
                None => {}
            }
        }
        self.write_client_head(conn, p);
        if cached {
            self.hit_from_file(conn, p);
        }
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
    pub(super) fn write_client_head(&mut self, conn: &mut Conn, p: &mut Proxy) {
        let status = p.resp.status;
        let body = p.resp.body_kind(p.head_only);
        let tunnel = status == 101 && p.upgrade && p.resp.upgrade.is_some();
        let loaded = self.loaded;
        let s = loaded
            .ir
            .locations
            .get(p.loc.0 as usize)
            .and_then(|l| loaded.ir.settings.get(l.conf.settings.0 as usize))
            .unwrap_or(&loaded.ir.settings[0]);
        let ps = self.proxy_settings(p.loc);
        p.buffering = ps.buffering && !p.discard;
        let cgi = p.protocol.cgi();
        let passes = |name: &[u8]| {
            cgi || ps
                .pass_headers
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
        let client_status = if p.not_modified { 304 } else { client_status };
        p.client_status = client_status;
        // proxy_force_ranges: nginx's range filter on a 200 of known length (one range).
        let length = match body {
            BodyKind::Length(n) => Some(n),
            BodyKind::None => p.resp.content_length,
            _ => None,
        };
        // A slice's first part: a 200 of the whole length (nginx's slice header filter),
        // to which the client's Range applies.
        let slice_total = p.slice.map(|(_, total)| total);
        let length = slice_total.or(length);
        // A cached or cacheable response with Accept-Ranges may be cut too (nginx's
        // allow_ranges; one range only for what is not read from the cache yet).
        let ranged = ps.force_ranges
            || p.slice.is_some()
            || (p.cache.cacheable
                && p.resp.headers.iter().any(|(n, _)| {
                    p.hold
                        .get(n.clone())
                        .is_some_and(|n| n.eq_ignore_ascii_case(b"accept-ranges"))
                }));
        if p.slice.is_some() && client_status == 206 {
            p.client_status = 200;
        }
        let client_status = p.client_status;
        let forced = match length {
            Some(len) if ranged && client_status == 200 && s.max_ranges != Some(0) => {
                let header = |name: &[u8]| {
                    conn.req
                        .as_deref()
                        .and_then(|r| r.head.get(&conn.rbuf, name))
                };
                let upstream = |name: &'static [u8]| p.upstream_field(name);
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
        // The client's part of the whole, for the slices that follow.
        let mut want = length.map(|len| (0, len));
        match (forced, length) {
            (Some(ForcedRange::Unsatisfiable), Some(len)) => {
                conn.wbuf = out;
                self.proxy_range_not_satisfiable(conn, p, len);
                return;
            }
            (Some(ForcedRange::Part(a, b)), Some(len)) => {
                // (A slice's part is cut relative to where it starts.)
                let first = p.slice.map_or(0, |(start, _)| start);
                let (ra, rb) = (a.saturating_sub(first), b.saturating_sub(first));
                p.relay.range = Some((ra, rb));
                p.client_status = 206;
                content_range = Some((a, b, len));
                want = Some((a, b));
            }
            _ => {}
        }
        let slice_len = match (p.slice, want) {
            (Some(_), Some((a, b))) => {
                if let Some(st) = conn.req.as_deref_mut().and_then(|r| r.slice.as_deref_mut()) {
                    // nginx: the next slice is the one holding the client's start when
                    // the first did not.
                    if st.start + st.size <= a {
                        st.start = st.size * (a / st.size);
                    }
                    st.end = b;
                    st.want = (a, b);
                }
                Some(b - a)
            }
            _ => None,
        };
        crate::http::response::write_status_line(&mut out, 1, p.client_status);
        let up = &p.hold;
        let upstream_has = |name: &'static [u8]| p.upstream_field(name).is_some();
        // Our own Server and Date lines unless the upstream's pass (both hidden by default).
        // A `proxy_pass_header Date` (or Server) passes the upstream's line or none: nginx
        // adds its own only where the proxy hides the upstream's. (A CGI application's pass
        // unless it sends none.)
        let (own_server, own_date) = if cgi {
            (!upstream_has(b"server"), !upstream_has(b"date"))
        } else {
            (!passes(b"server"), !passes(b"date"))
        };
        let (server, date) = self
            .date
            .server_and_date(tokens)
            .split_at(crate::worker::respond::server_line(tokens).len());
        if own_server {
            out.extend_from_slice(server);
        }
        // A response from the cache keeps the Date it was stored with (the upstream's, else
        // the time it was stored) and says its Age (RFC 9111 4.2.3, 5.1; nginx dates it
        // anew and sends no Age).
        let from_cache = p.cache.hit.as_ref().map(|(_, m)| *m);
        match (own_date, from_cache) {
            (false, _) => {}
            (true, None) => out.extend_from_slice(date),
            (true, Some(m)) => {
                out.extend_from_slice(b"Date: ");
                match p.upstream_field(b"date") {
                    Some(v) => out.extend_from_slice(v),
                    None => {
                        let mut d = [0u8; 29];
                        let t = std::time::UNIX_EPOCH
                            + Duration::from_secs(u64::try_from(m.date).unwrap_or(0));
                        crate::http::date::http_date(t, &mut d);
                        out.extend_from_slice(&d);
                    }
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        if let Some(m) = from_cache {
            let born = m.date.saturating_sub(i64::from(m.age));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            write_num_header(&mut out, b"Age: ", now.saturating_sub(born).max(0) as u64);
        }
        // Fields the upstream's Connection names are that connection's (RFC 9110 7.6.1);
        // a stored response's `no-cache="…"` and `private="…"` fields are not sent from
        // the cache.
        let fields = &p.resp.headers;
        // (Looked at per field only when a Connection line names something else than the
        // usual close, keep-alive or upgrade: one pass in the common case.)
        let names_fields = super::lines_named(up, fields, b"connection").any(|v| {
            v.split(|&b| b == b',').map(<[u8]>::trim_ascii).any(|t| {
                !(t.is_empty()
                    || t.eq_ignore_ascii_case(b"close")
                    || t.eq_ignore_ascii_case(b"keep-alive")
                    || t.eq_ignore_ascii_case(b"upgrade"))
            })
        });
        let connection_lists = |name: &[u8]| {
            names_fields
                && !token_eq(name, b"upgrade")
                && super::lines_named(up, fields, b"connection")
                    .any(|v| super::cache::listed_in(v, name))
        };
        let omitting = from_cache.is_some()
            && super::lines_named(up, fields, b"cache-control").any(|v| v.contains(&b'"'));
        let omitted = |name: &[u8]| {
            omitting
                && super::lines_named(up, fields, b"cache-control")
                    .any(|v| crate::cache::control::omits(v, name))
        };
        let ir = &self.loaded.ir;
        let loc = &ir.locations[p.loc.0 as usize];
        let s = &ir.settings[loc.conf.settings.0 as usize];
        let ps = s.upstream(
            loc.conf
                .proxy
                .as_deref()
                .map_or_else(Default::default, |p| p.protocol),
        );
        for (i, (n, v)) in p.resp.headers.iter().enumerate() {
            let (Some(name), Some(value)) = (up.get(n.clone()), up.get(v.clone())) else {
                continue;
            };
            // A second line of a field that has one value: ignored, with a warning, as
            // nginx's (`Expires: foo`, then `Expires: bar`: the client sees foo).
            if SINGLE.iter().any(|s| token_eq(name, s)) {
                let earlier = p.resp.headers[..i].iter().find_map(|(n0, v0)| {
                    let n0 = up.get(n0.clone())?;
                    n0.eq_ignore_ascii_case(name).then(|| up.get(v0.clone()))?
                });
                if let Some(first) = earlier {
                    elog!(
                        self.elog,
                        Warn,
                        "upstream sent duplicate header line: \"{}: {}\", previous value: \"{}: {}\", ignored while reading response header from upstream, client: {}, upstream: \"{}\"",
                        String::from_utf8_lossy(name),
                        String::from_utf8_lossy(value),
                        String::from_utf8_lossy(name),
                        String::from_utf8_lossy(first),
                        p.client,
                        self.upstream_url(p)
                    );
                    continue;
                }
            }
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
            // With proxy_force_ranges the range filter says whether ranges are served; a
            // slice's part has its range replaced by the whole's.
            if !passed_on(name, &ps.pass_headers, &ps.hide_headers, cgi)
                || connection_lists(name)
                || (from_cache.is_some() && (token_eq(name, b"age") || omitted(name)))
                || (ranged && token_eq(name, b"accept-ranges"))
                // A 304 of the not_modified filter has no body to describe.
                || (p.not_modified
                    && [&b"content-type"[..], b"content-encoding", b"accept-ranges"]
                        .iter()
                        .any(|f| token_eq(name, f)))
                || (p.slice.is_some() && token_eq(name, b"content-range"))
            {
                continue;
            }
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            if self.write_rewritten_header(conn, p.loc, client_status, name, value, &mut out) {
                // Location, Refresh, Set-Cookie under proxy_redirect / proxy_cookie_*.
            } else if token_eq(name, b"content-type") && !p.cache.multipart {
                let mut ct = self.scratch.var_pool.borrow_mut().buf();
                let (changed, recode) = self.proxied_type(conn, p, value, &mut ct);
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
        // The body filters (gunzip, sub_filter, compression): decided on the upstream's
        // fields, before the framing; the coder made now (sub_filter's patterns expanded).
        let mut coder = None;
        let plan = match conn.req.take() {
            Some(mut req) if !tunnel && !p.discard => {
                let (up, fields) = (&p.hold, &p.resp.headers);
                let resp = crate::worker::filter::fields(|name: &[u8]| {
                    fields.iter().find_map(|(n, v)| {
                        let n = up.get(n.clone())?;
                        n.eq_ignore_ascii_case(name).then(|| up.get(v.clone()))?
                    })
                });
                let header_only = matches!(p.client_status, 204 | 304);
                let mut plan = self.plan(conn, &mut req, s, p.client_status, header_only, &resp);
                let vary = (plan.vary || req.gzip_vary) && s.gzip.vary;
                let mut sub = crate::worker::filter::substitutes(s, &resp);
                // SSI and addition (not with trailers, which frame the body themselves).
                let mut inc = if crate::worker::request::trailers_apply(s, p.client_status) {
                    crate::worker::filter::Includes::default()
                } else {
                    crate::worker::filter::Includes::of(s, &req, p.client_status, &resp)
                };
                inc.slice = p.slice.is_some();
                let has_body = !p.head_only
                    && !p.cache.no_client_body
                    && !p.not_modified
                    && !matches!(status, 204 | 304);
                if has_body && (plan.coding.is_some() || sub || inc.any() || inc.slice) {
                    // With SSI, addition or slices (whose body changes) the coder frames
                    // the body itself: what its subrequests write goes through it too.
                    let changes = plan.coding.is_some() || sub;
                    let frames = (inc.any() || (inc.slice && changes))
                        && chunked_on
                        && p.client_minor >= 1
                        && !req.subrequest;
                    match self.start_coder(conn, &req, s, plan.coding, (sub, inc), frames) {
                        Ok(c) => {
                            sub = c.as_ref().is_some_and(|c| c.sub_on);
                            coder = c;
                        }
                        Err(e) => {
                            // Sent as it came.
                            elog!(
                                self.elog,
                                Alert,
                                "compression failed to start ({}), client: {}",
                                e.0,
                                conn.peer.ip()
                            );
                            plan.coding = None;
                            sub = false;
                            inc = Default::default();
                        }
                    }
                }
                conn.req = Some(req);
                Some((plan.coding, vary, sub, inc))
            }
            req => {
                conn.req = req;
                None
            }
        };
        // A coded body changes length: framed anew (chunks, or the close); a coder that
        // only fetches slices does not change it.
        let coded_body =
            coder.is_some() && plan.is_some_and(|(c, _, sub, inc)| c.is_some() || sub || inc.any());
        let coder_frames = coder.as_ref().is_some_and(|c| c.chunked);
        // Framing towards the client. With trailers (`add_trailer`), the body is sent in
        // chunks Proton frames whatever the upstream's framing, as nginx's chunked filter
        // does when trailers are expected.
        let mut keep = p.keep_client;
        // So is a chunked body to be recoded (`charset`, X-Accel-Charset): decoded, recoded,
        // and framed anew.
        p.rechunk = !tunnel
            && !p.head_only
            && !p.cache.no_client_body
            && chunked_on
            && p.client_minor >= 1
            && !matches!(status, 204 | 304)
            && status >= 200
            && (crate::worker::request::trailers_apply(s, status)
                || (p.recode.is_some() && matches!(body, BodyKind::Chunked))
                // A chunked body being stored is decoded (the cache keeps the data).
                || (p.cache.write.is_some() && matches!(body, BodyKind::Chunked))
                || coded_body
                // A body that ends with the upstream's end (an HTTP/1.0 one without a
                // length, a FastCGI answer) goes chunked, the client's connection kept,
                // as nginx's chunked filter does; a slice's length is known.
                || (matches!(body, BodyKind::UntilClose) && slice_len.is_none()))
            && !coder_frames;
        p.relay.pass_trailers = ps.pass_trailers;
        p.relay.framing = match body {
            BodyKind::None => Framing::None,
            BodyKind::Length(n) => Framing::Length(n),
            BodyKind::Chunked => Framing::Chunked {
                dec: ChunkedDecoder::default(),
                dechunk: p.client_minor == 0
                    || !chunked_on
                    || p.rechunk
                    || coded_body
                    || p.cache.write.is_some(),
            },
            BodyKind::UntilClose => Framing::UntilClose,
        };
        if matches!(p.relay.framing, Framing::Chunked { dechunk: false, .. }) {
            // Chunks passed through keep their framing: not recoded (not yet).
            p.recode = None;
        }
        let range_len = p.relay.range.map(|(a, b)| b - a);
        match (&p.relay.framing, body) {
            _ if p.not_modified => {}
            _ if slice_len.is_some() && !coded_body && !p.rechunk => {
                write_num_header(&mut out, b"Content-Length: ", slice_len.unwrap_or(0));
            }
            _ if p.rechunk || coder_frames => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n")
            }
            _ if coded_body => keep = false,
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
        if let Some((coding, vary, sub, inc)) =
            plan.filter(|&(c, v, sub, inc)| c.is_some() || v || sub || inc.any())
        {
            let edit = crate::worker::filter::Edit {
                coding,
                vary,
                framing: crate::worker::filter::Framing::Keep,
                body_changes: coding.is_some() || sub || inc.any(),
                drop_validators: (sub && !s.sub_filter.last_modified)
                    || (inc.ssi && !s.ssi.last_modified),
            };
            let mut edited = self.pool.get();
            crate::worker::filter::edit_head(&conn.wbuf, &edit, &mut edited);
            self.pool.put(std::mem::replace(&mut conn.wbuf, edited));
        }
        // (A coder that only fetches slices leaves the head as it is.)
        if let (Some(req), Some(c)) = (conn.req.as_deref_mut(), coder) {
            req.coder = Some(c);
        }
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

    /// The charset filter on a proxied answer's `Content-Type` `ct`: nginx's
    /// X-Accel-Charset (the charset the answer is sent in, whatever `charset` says; the
    /// last such line counts), else `charset`. Writes the value to send into `out` and says
    /// whether it changed and how the body is recoded; an encoded body (gzip…) is neither
    /// recoded nor relabelled (nginx's charset filter leaves such an answer alone).
    pub(super) fn proxied_type(
        &self,
        conn: &Conn,
        p: &Proxy,
        ct: &[u8],
        out: &mut Vec<u8>,
    ) -> (bool, Option<crate::worker::static_files::Recode>) {
        let ir = &self.loaded.ir;
        let s = self.settings_for(p.loc);
        let ps = self.proxy_settings(p.loc);
        let encoded = p.upstream_field(b"content-encoding").is_some();
        let accel_charset = p
            .upstream_lines(b"x-accel-charset")
            .last()
            .filter(|_| !ps.ignore_headers.x_accel_charset)
            .map(<[u8]>::trim_ascii)
            .filter(|v| !v.is_empty());
        let (changed, recode) = if let Some(dst) = accel_charset {
            match crate::worker::static_files::accel_charset_type(ir, &s.charset, ct, dst, out) {
                Ok(r) => r,
                Err(msg) => {
                    elog!(self.elog, Error, "{msg}, client: {}", conn.peer.ip());
                    (false, None)
                }
            }
        } else if s.charset.charset.is_some() {
            match conn.req.as_deref() {
                Some(req) => crate::worker::static_files::proxied_charset_type(
                    self, conn, req, p.loc, ct, out,
                ),
                None => (false, None),
            }
        } else {
            (false, None)
        };
        match recode {
            Some(_) if encoded => (false, None),
            r => (changed, r),
        }
    }

    /// proxy_force_ranges with a Range nothing of the response satisfies: 416 with the
    /// built-in page and `Content-Range: bytes */len` (as for files); the upstream's body is
    /// not read (its connection is closed).
    pub(super) fn proxy_range_not_satisfiable(&mut self, conn: &mut Conn, p: &mut Proxy, len: u64) {
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
            let cgi = p.protocol.cgi();
            if of_the_body || !passed_on(name, &ps.pass_headers, &ps.hide_headers, cgi) {
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
}

/// The value of an `X-Accel-Limit-Rate` header: a number of bytes per second.
pub(super) fn accel_limit_rate(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value.trim_ascii())
        .ok()
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok())
}

/// Response fields nginx takes once from an upstream (a later line is ignored).
const SINGLE: [&[u8]; 10] = [
    b"content-type",
    b"date",
    b"last-modified",
    b"etag",
    b"server",
    b"location",
    b"refresh",
    b"expires",
    b"x-accel-redirect",
    b"x-accel-expires",
];

/// Whether the upstream's header line `name` goes on to the client, as nginx's proxy
/// decides: not a hop-by-hop field (but `Upgrade`, which nginx passes to HTTP/1.x clients
/// in any response: a 101's, a 426's, an `h2c` offer in a 200; an HTTP/2 stream's bridge
/// drops it), not one nginx hides by default (`Server`, `Date`, `X-Pad`, `X-Accel-*`) unless
/// `proxy_pass_header` names it, not one `proxy_hide_header` names.
/// A FastCGI application's (`cgi`) `Server` and `Date` pass, its `Status` does not (nginx's
/// fastcgi module hides `Status` and the `X-Accel-*` ones).
pub(super) fn passed_on(name: &[u8], pass: &[String], hide: &[String], cgi: bool) -> bool {
    let listed = |list: &[String]| list.iter().any(|h| h.as_bytes().eq_ignore_ascii_case(name));
    let hidden_default = if cgi {
        token_eq(name, b"status")
    } else {
        token_eq(name, b"server") || token_eq(name, b"date") || token_eq(name, b"x-pad")
    } || name.len() > 8 && token_eq(&name[..8], b"x-accel-");
    !((hop_by_hop_response(name) && !token_eq(name, b"upgrade"))
        || (hidden_default && !listed(pass))
        || listed(hide))
}

/// nginx's slice header filter, for a request that fetches a slice (`RequestCtx::slice`):
/// the answer must be a 206 for the range asked, with the first part's ETag.
/// `Ok(Some((start, total)))`: the main request's first part; `Ok(None)`: nothing to
/// slice (a main request answered otherwise goes on as it is); `Err`: why it fails.
fn slice_check(conn: &mut Conn, p: &Proxy) -> Result<Option<(u64, u64)>, String> {
    let Some(req) = conn.req.as_deref_mut() else {
        return Ok(None);
    };
    let main = !req.subrequest;
    let Some(st) = req.slice.as_deref_mut() else {
        return Ok(None);
    };
    let status = p.resp.status;
    if status != 206 {
        if main {
            req.slice = None;
            return Ok(None);
        }
        return Err(format!("unexpected status code {status} in slice response"));
    }
    let field = |name: &'static [u8]| p.upstream_field(name);
    let etag = field(b"etag");
    if !st.etag.is_empty() && etag != Some(&st.etag[..]) {
        return Err("etag mismatch in slice response".into());
    }
    if let Some(e) = etag {
        st.etag.clear();
        st.etag.extend_from_slice(e);
    }
    let (start, end, total) = field(b"content-range")
        .and_then(parse_content_range)
        .ok_or("invalid range in slice response")?;
    let total = total.ok_or("no complete length in slice response")?;
    let expected = st.start.saturating_add(st.size).min(total);
    if start != st.start || end != expected {
        return Err(format!(
            "unexpected range in slice response: {start}-{end}, expected: {}-{expected}",
            st.start
        ));
    }
    st.start = expected;
    Ok(main.then_some((start, total)))
}

/// A `Content-Range` value as nginx's slice module reads it: `bytes START-END/TOTAL` (or
/// `/*`), spaces allowed around each part; the end exclusive (`None` total: `*`).
pub(super) fn parse_content_range(v: &[u8]) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.strip_prefix(b"bytes ")?;
    fn number(s: &[u8]) -> Option<(u64, &[u8])> {
        let s = s.trim_ascii_start();
        let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let v = std::str::from_utf8(&s[..n]).ok()?.parse::<u64>().ok()?;
        (v <= i64::MAX as u64).then_some((v, &s[n..]))
    }
    let (start, rest) = number(rest)?;
    let rest = rest.trim_ascii_start().strip_prefix(b"-")?;
    let (end, rest) = number(rest)?;
    let rest = rest
        .trim_ascii_start()
        .strip_prefix(b"/")?
        .trim_ascii_start();
    let (total, rest) = match rest.strip_prefix(b"*") {
        Some(r) => (None, r),
        None => {
            let (t, r) = number(rest)?;
            (Some(t), r)
        }
    };
    rest.trim_ascii()
        .is_empty()
        .then_some((start, end + 1, total))
}

/// What `proxy_force_ranges` makes of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ForcedRange {
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
pub(super) fn forced_range(
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

/// How reading the upstream's response head went.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum HeadRead {
    /// `p.resp` is the final head (not a 1xx other than 101), which starts `p.hold`; the
    /// bytes after it are the body's.
    Final,
    /// The upstream has sent no more yet.
    Blocked,
    /// The attempt failed: why, in `proxy_next_upstream` terms, and the log's words.
    Fail(Fail, &'static str),
}

/// Reads the upstream's response head into `p.hold` (at most `limit` bytes, nginx's
/// `proxy_buffer_size`) and parses it as strictly as a client's request; interim 1xx
/// answers (other than 101) are dropped and the next head read.
pub(super) fn read_head<U: UpstreamIo>(up: &mut U, p: &mut Proxy, limit: usize) -> HeadRead {
    loop {
        if p.cgi_pending && !p.fcgi() && p.hold.len() < 5 && b"HTTP/".starts_with(&p.hold) {
            // SCGI, uwsgi: a status line or a CGI head; not known yet.
        } else if p.cgi_pending && !p.fcgi() && p.hold.starts_with(b"HTTP/") {
            // SCGI, uwsgi: an HTTP head, read as one (nginx's status line first).
            p.cgi_pending = false;
            continue;
        } else if p.cgi_pending {
            // A CGI head (FastCGI; SCGI, uwsgi without a status line): made an HTTP/1.1 one
            // once whole, the body's first bytes after it.
            let mut http = std::mem::take(&mut p.cgi_head);
            http.clear();
            let r = crate::http::cgi::to_http(&p.hold, limit, &mut http);
            if let Ok(Some(n)) = r {
                http.extend_from_slice(&p.hold[n..]);
                std::mem::swap(&mut p.hold, &mut http);
                p.cgi_pending = false;
            }
            p.cgi_head = http;
            match r {
                Err(e) => return HeadRead::Fail(Fail::InvalidHeader, e.reason()),
                Ok(None) => {}
                Ok(Some(_)) => continue,
            }
        } else {
            // (A CGI head made an HTTP one gained a status line.)
            let max = if p.protocol == proton_ir::Protocol::Http {
                limit
            } else {
                limit + 64
            };
            match parse_response_head(&p.hold, max, 100, &mut p.resp) {
                Ok(Parsed::Complete) => {
                    let status = p.resp.status;
                    if (100..200).contains(&status) && status != 101 {
                        // An interim response: drop it and read the real one.
                        let n = p.resp.head_len.min(p.hold.len());
                        p.hold.drain(..n);
                        p.resp.head_len = 0;
                        continue;
                    }
                    return HeadRead::Final;
                }
                Ok(Parsed::Partial) => {}
                Err(e) => return HeadRead::Fail(Fail::InvalidHeader, e.reason()),
            }
        }
        let want = limit.saturating_sub(p.hold.len()).max(1);
        match up.read(&mut p.up_ready, p.up_hup, &mut p.hold, want) {
            // (nginx: an invalid header, for fastcgi_next_upstream.)
            Ok(0) if p.fcgi() => {
                return HeadRead::Fail(
                    Fail::InvalidHeader,
                    "upstream prematurely closed FastCGI stdout while reading response header from upstream",
                )
            }
            Ok(0) => {
                return HeadRead::Fail(
                    Fail::Error,
                    "upstream prematurely closed connection while reading response header from upstream",
                )
            }
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return HeadRead::Fail(
                    Fail::Error,
                    "upstream prematurely closed connection while reading response header from upstream",
                )
            }
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                return HeadRead::Fail(Fail::Error, "upstream sent an invalid FastCGI record")
            }
            Ok(n) => {
                if let Some(st) = p.states.last_mut() {
                    st.bytes_received += n as u64;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return HeadRead::Blocked,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                return HeadRead::Fail(
                    Fail::Error,
                    "recv() failed (104: Connection reset by peer) while reading response header from upstream",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{FakeUpstream, Reply};
    use super::*;

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
    fn upstream_fields_passed_on_as_nginx() {
        let none: &[String] = &[];
        let pass = ["X-Accel-Expires".to_string(), "Date".to_string()];
        let hide = ["X-Powered-By".to_string()];
        for (name, pass, hide, want) in [
            (&b"Set-Cookie"[..], none, none, true),
            (b"Server", none, none, false),
            (b"date", none, none, false),
            (b"Date", &pass[..], none, true),
            (b"X-Accel-Redirect", none, none, false),
            (b"x-accel-expires", &pass[..], none, true),
            (b"X-Accelerated", none, none, true),
            (b"X-Powered-By", none, &hide[..], false),
            (b"Transfer-Encoding", none, none, false),
            (b"Upgrade", none, none, true),
            (b"upgrade", none, none, true),
        ] {
            assert_eq!(
                passed_on(name, pass, hide, false),
                want,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    /// A proxy state in the middle of an attempt (as after `begin_attempt`).
    fn attempt() -> Proxy {
        let mut p = Proxy::new();
        p.begin_attempt(UpPeer::Mark);
        p.up_ready = true;
        p
    }

    /// Reads a head from `up` as the event loop would: again after each stall.
    fn read_until_done(up: &mut FakeUpstream, p: &mut Proxy, limit: usize) -> (HeadRead, usize) {
        let mut stalls = 0;
        loop {
            match read_head(up, p, limit) {
                HeadRead::Blocked if !up.replies.is_empty() => {
                    stalls += 1;
                    p.up_ready = true;
                }
                r => return (r, stalls),
            }
        }
    }

    #[test]
    fn head_read_at_every_split_point() {
        let wire: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
        let head_len = wire.len() - 5;
        for split in 1..wire.len() {
            let mut up = FakeUpstream::default();
            up.replies.push_back(Reply::Data(wire[..split].to_vec()));
            up.replies.push_back(Reply::Stall);
            up.replies.push_back(Reply::Data(wire[split..].to_vec()));
            let mut p = attempt();
            let (r, stalls) = read_until_done(&mut up, &mut p, 4096);
            assert_eq!(r, HeadRead::Final, "split {split}");
            // A head complete in the first piece is not waited on.
            assert_eq!(stalls, usize::from(split < head_len), "split {split}");
            assert_eq!(p.resp.status, 200);
            assert_eq!(p.resp.head_len, head_len);
            // Bytes after the head stay for the body.
            assert!(wire.starts_with(&p.hold), "split {split}");
            assert_eq!(p.states[0].bytes_received, p.hold.len() as u64);
        }
    }

    #[test]
    fn interim_answers_are_dropped() {
        let wire: &[u8] =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        for piece in [1, 7, wire.len()] {
            let mut up = FakeUpstream::answering(wire, piece, false);
            let mut p = attempt();
            let (r, _) = read_until_done(&mut up, &mut p, 4096);
            assert_eq!(r, HeadRead::Final);
            assert_eq!(p.resp.status, 404);
            assert!(p.hold.starts_with(b"HTTP/1.1 404"));
        }
        // 101 is final (the tunnel's head).
        let mut up = FakeUpstream::answering(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            1000,
            false,
        );
        let mut p = attempt();
        assert_eq!(read_until_done(&mut up, &mut p, 4096).0, HeadRead::Final);
        assert_eq!(p.resp.status, 101);
    }

    #[test]
    fn head_failures_in_next_upstream_terms() {
        // Closed in the middle of the head: `error`, as nginx words it.
        let mut up = FakeUpstream::answering(b"HTTP/1.1 200 OK\r\nContent-Le", 5, true);
        let mut p = attempt();
        match read_until_done(&mut up, &mut p, 4096).0 {
            HeadRead::Fail(Fail::Error, what) => assert!(what.contains("prematurely closed")),
            r => panic!("{r:?}"),
        }
        // Closed before any byte.
        let mut up = FakeUpstream::answering(b"", 1, true);
        let mut p = attempt();
        assert!(matches!(
            read_until_done(&mut up, &mut p, 4096).0,
            HeadRead::Fail(Fail::Error, _)
        ));
        // Reset: `error`, recv() failed.
        let mut up = FakeUpstream::answering(b"HTTP/1.1 2", 100, false);
        up.replies.push_back(Reply::Reset);
        let mut p = attempt();
        match read_until_done(&mut up, &mut p, 4096).0 {
            HeadRead::Fail(Fail::Error, what) => assert!(what.starts_with("recv() failed")),
            r => panic!("{r:?}"),
        }
        // An interrupted read is read again.
        let mut up = FakeUpstream::default();
        up.replies.push_back(Reply::Interrupt);
        up.replies
            .push_back(Reply::Data(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()));
        let mut p = attempt();
        assert_eq!(read_head(&mut up, &mut p, 4096), HeadRead::Final);
        // Garbage, and a head larger than proxy_buffer_size: `invalid_header`.
        let mut up = FakeUpstream::answering(b"SSH-2.0-OpenSSH\r\n\r\n", 100, false);
        let mut p = attempt();
        assert!(matches!(
            read_until_done(&mut up, &mut p, 4096).0,
            HeadRead::Fail(Fail::InvalidHeader, _)
        ));
        let mut big = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        big.resize(3000, b'a');
        big.extend_from_slice(b"\r\n\r\n");
        let mut up = FakeUpstream::answering(&big, 512, false);
        let mut p = attempt();
        assert!(matches!(
            read_until_done(&mut up, &mut p, 1024).0,
            HeadRead::Fail(Fail::InvalidHeader, _)
        ));
        // Never more than the limit was read.
        assert!(p.hold.len() <= 1024);
    }
}
