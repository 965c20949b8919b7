//! The response body on its way to the client (framing, proxy_buffering with a temporary
//! file, proxy_limit_rate, trailers) and the tunnel after a 101.

use super::*;

impl Worker<'_> {
    /// Accounts for response body bytes appended to `conn.wbuf` from `from` on: frames
    /// them, drops what the upstream sent past the end.
    /// How many response bytes `limit_rate` lets go to the client now; 0 while the rate
    /// holds them back (the request is woken by its timer, and that wait is not the
    /// client's: its send timeout counts from now).
    fn client_allowance(&mut self, conn: &mut Conn, p: &mut Proxy) -> usize {
        let id = (conn.key, conn.number);
        match crate::worker::conn::rate_allowance(conn.req.as_deref_mut(), p.written, id, self) {
            Ok(n) => n,
            Err(_) => {
                p.client_progress = self.now;
                0
            }
        }
    }

    pub(super) fn take_body(&mut self, p: &mut Proxy, conn: &mut Conn, from: usize) {
        let mut none = Vec::new();
        let trailers = match conn.req.as_deref_mut() {
            Some(req) => &mut req.upstream_trailers,
            None => &mut none,
        };
        let t = absorb(p, &mut conn.wbuf, from, trailers);
        self.taken(p, conn, from, t);
    }

    /// After [`absorb`]: what it found is logged, and the body bytes from `from` on are
    /// recoded and framed as chunks where the head said so.
    fn taken(&mut self, p: &mut Proxy, conn: &mut Conn, from: usize, t: Taken) {
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
        }
        // The body bytes just taken, recoded (never chunk framing: see the head).
        if let Some(r) = p.recode {
            if let Some(body) = conn.wbuf.get_mut(from..) {
                r.apply(&self.loaded.ir, body);
            }
        }
        if p.cache.no_client_body {
            // A HEAD sent upstream as a GET for the cache: the client gets no body.
            conn.wbuf.truncate(from);
            return;
        }
        if conn.wbuf.len() == from && !matches!(p.relay.framing, Framing::None) {
            // Nothing yet (a head without body bytes): the coder starts with the first.
            return;
        }
        self.code_body(p, conn, from);
        if p.rechunk {
            self.frame_chunk(p, conn, from);
        }
    }

    /// The body bytes `conn.wbuf[from..]` through the response's coder (gzip, gunzip) when
    /// it has one; once the body is complete, the coder's last bytes too. Unbuffered
    /// responses are flushed as they come (nginx's gzip follows the upstream's flushes).
    fn code_body(&mut self, p: &mut Proxy, conn: &mut Conn, from: usize) {
        let Some(c) = conn.req.as_deref_mut().and_then(|r| r.coder.as_deref_mut()) else {
            return;
        };
        let end = matches!(p.relay.framing, Framing::None) && !p.broken;
        let r = c.code_tail(&mut conn.wbuf, from, !p.buffering, end);
        self.coder_failed(p, conn, r);
    }

    /// Once what went before is sent: more of the input the coder holds (gunzip stopped at
    /// its output bound), framed as the body is. False: it holds none.
    fn code_held(&mut self, p: &mut Proxy, conn: &mut Conn) -> bool {
        let Some(c) = conn.req.as_deref_mut().and_then(|r| r.coder.as_deref_mut()) else {
            return false;
        };
        if !c.holds_input() {
            return false;
        }
        let from = conn.wbuf.len();
        let r = c.resume(&mut conn.wbuf);
        self.coder_failed(p, conn, r);
        if p.rechunk {
            self.frame_chunk(p, conn, from);
        }
        true
    }

    /// A coder's failure is logged (the coding's own words); what was valid goes out, then
    /// the connection closes.
    fn coder_failed(
        &mut self,
        p: &mut Proxy,
        conn: &Conn,
        r: Result<(), crate::http::coding::CodingError>,
    ) {
        let Err(e) = r else {
            return;
        };
        let what = conn
            .req
            .as_deref()
            .and_then(|r| r.coder.as_deref())
            .map_or("deflate()", |c| c.what());
        elog!(
            self.elog,
            Error,
            "{what} failed ({}) while sending to client, client: {}, upstream: {}",
            e.0,
            conn.peer.ip(),
            self.peer_name(p.upstream, p.peer)
        );
        p.broken = true;
    }

    /// With trailers: frames the body bytes from `from` on as one chunk and, once the body
    /// is complete (and the coder, if any, has made all of it), adds the last chunk with the
    /// trailers.
    pub(super) fn frame_chunk(&mut self, p: &mut Proxy, conn: &mut Conn, from: usize) {
        let len = conn.wbuf.len().saturating_sub(from);
        if len > 0 {
            let mut size = [0u8; 18];
            let mut cur = std::io::Cursor::new(&mut size[..]);
            let _ = write!(cur, "{len:x}\r\n");
            let n = cur.position() as usize;
            conn.wbuf.splice(from..from, size[..n].iter().copied());
            conn.wbuf.extend_from_slice(b"\r\n");
        }
        let coded = conn
            .req
            .as_deref()
            .and_then(|r| r.coder.as_deref())
            .is_none_or(|c| c.ended || c.failed);
        let done = matches!(p.relay.framing, Framing::None) && !p.broken && coded;
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

    pub(super) fn step_body(&mut self, conn: &mut Conn, p: &mut Proxy) -> Drive {
        let ps = self.proxy_settings(p.loc);
        let window = if p.buffering {
            (ps.buffers.0 as usize * ps.buffers.1 as usize).max(ps.buffer_size as usize)
        } else {
            ps.buffer_size as usize
        }
        .max(4096);
        // (SSI and addition write their subrequests' bodies behind what is in memory: no
        // temporary file then, whose bytes would come after them.)
        let includes = conn
            .req
            .as_deref()
            .and_then(|r| r.coder.as_deref())
            .is_some_and(|c| c.has_includes());
        let spill_max = if p.buffering && !includes {
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
            // The whole body is in (or the response broke): the cache's copy is put in
            // place (or dropped) before anything else.
            if (p.cache.write.is_some() || p.cache.store.is_some())
                && (p.broken || p.upstream_eof || matches!(p.relay.framing, Framing::None))
            {
                self.cache_commit(conn, p);
                self.store_commit(conn, p);
            }
            if p.request_streaming() && !p.upstream_eof {
                // gRPC: the request stream goes on beside the answer.
                match self.send_more(conn, p) {
                    Ok(wrote) => progressed |= wrote,
                    Err(_) => {
                        elog!(
                            self.elog,
                            Error,
                            "the request stream to upstream {} broke while its answer was being sent, client: {}",
                            self.peer_name(p.upstream, p.peer),
                            conn.peer.ip()
                        );
                        p.upstream_eof = true;
                        p.broken = true;
                        p.spoiled = true;
                    }
                }
            }
            if p.discard {
                // A post action: the response goes nowhere.
                conn.wbuf.clear();
                conn.wpos = 0;
            }
            // To the client, as fast as `limit_rate` lets it go. (A FastCGI answer whose
            // end already came with its data is read to that end first, so that its last
            // chunk leaves in the same write: one send per answer, as nginx's writev.)
            // (Only while the window has room: the read that finds the end must happen.)
            let end_pending = p.fcgi()
                && !p.upstream_eof
                && conn.wbuf.len() - conn.wpos < window
                && self.fcgi_ended(p);
            let allowance = if conn.wpos < conn.wbuf.len() && !end_pending {
                self.client_allowance(conn, p)
            } else {
                0
            };
            if allowance > 0 {
                let end = conn.wpos.saturating_add(allowance).min(conn.wbuf.len());
                match conn.write_client(end) {
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
            if pending == 0 && p.spill_sent < p.spill_written && use_sendfile && conn.can_sendfile()
            {
                let allowance = self.client_allowance(conn, p);
                let unsent = usize::try_from(p.spill_written - p.spill_sent).unwrap_or(usize::MAX);
                let count = unsent.min(allowance).min(1 << 30);
                if let (true, Some((f, _))) = (count > 0, p.spill.as_ref()) {
                    let mut off = i64::try_from(p.spill_sent).unwrap_or(i64::MAX);
                    match conn.sendfile_from(f, &mut off, count) {
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
            if all_out && !p.broken && self.code_held(p, conn) {
                continue;
            }
            if all_out && p.broken {
                // The response was cut short (the upstream closed, failed or sent bad
                // framing): what was valid is out, so the client connection is closed now,
                // as nginx does, rather than left waiting for a body that cannot come.
                self.log_access_proxy(conn, p);
                return Drive::Close;
            }
            // The body's coder may still wait for SSI or addition (see `worker::ssi`).
            let coder_waits = conn
                .req
                .as_deref()
                .and_then(|r| r.coder.as_deref())
                .is_some_and(|c| !c.ended && !c.failed);
            if all_out
                && !coder_waits
                && (p.upstream_eof || matches!(p.relay.framing, Framing::None))
            {
                return Drive::Finished;
            }
            if p.broken {
                if progressed {
                    continue;
                }
                p.deadline = p.client_progress + send_timeout;
                return Drive::Blocked;
            }
            let (mut want, to_file) = p.read_plan(pending, window, spill_max, write_size);
            // A body that waits (SSI, addition) takes no more from the upstream until it
            // goes on.
            if conn
                .req
                .as_deref()
                .and_then(|r| r.coder.as_deref())
                .is_some_and(|c| !c.accepting())
            {
                want = 0;
            }
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
                            crate::worker::conn::wake_at(req, id, at, self);
                        }
                        want = 0;
                    }
                }
            }
            if want > 0 {
                let old = conn.wbuf.len();
                let mut none = Vec::new();
                let trailers = match conn.req.as_deref_mut() {
                    Some(req) => &mut req.upstream_trailers,
                    None => &mut none,
                };
                let r = if let Some((file, meta)) = p.cache.hit.take() {
                    // A hit's body, from the object's file (a copy from the memory tier
                    // came whole with its head: nothing is read).
                    let r = match &file {
                        Some(f) => {
                            let mut pos = p.hit_pos.max(meta.body_start());
                            let mut rd = cache::HitReader {
                                file: f,
                                pos: &mut pos,
                                end: meta.file_len(),
                            };
                            let r =
                                read_body(&mut rd, p, &mut conn.wbuf, want, trailers, 0, self.now);
                            p.hit_pos = pos;
                            r
                        }
                        None => {
                            p.broken = true;
                            BodyRead::Cut("a cached object's copy in memory ended early")
                        }
                    };
                    p.cache.hit = Some((file, meta));
                    r
                } else {
                    let Some(c) = p.up.and_then(|k| self.ups.conns.get_mut(k)) else {
                        p.broken = true;
                        continue;
                    };
                    read_body(c, p, &mut conn.wbuf, want, trailers, rate, self.now)
                };
                if p.fcgi() {
                    // (Past the head: catch_stderr no longer applies, as nginx.)
                    let _ = self.fcgi_notes(p, "upstream", false);
                }
                match r {
                    BodyRead::Got(n, t) => {
                        self.taken(p, conn, old, t);
                        progressed = true;
                        p.upstream_progress = self.now;
                        taken += n;
                    }
                    BodyRead::Ended => {
                        let end = conn.wbuf.len();
                        self.code_body(p, conn, end);
                        if p.rechunk {
                            // (The coder's last bytes, if any, are the last chunk's data.)
                            self.frame_chunk(p, conn, end);
                        }
                        progressed = true;
                    }
                    BodyRead::Cut(what) => {
                        // (gRPC: what the HTTP/2 layer saw.)
                        let what =
                            p.up.and_then(|k| self.ups.conns.get(k))
                                .and_then(|c| c.h2.as_deref())
                                .and_then(|h| h.error)
                                .unwrap_or(what);
                        elog!(
                            self.elog,
                            Error,
                            "{what} while reading upstream {}, client: {}",
                            self.peer_name(p.upstream, p.peer),
                            conn.peer.ip()
                        );
                        progressed = true;
                    }
                    BodyRead::Blocked => {}
                    BodyRead::Interrupted => progressed = true,
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
                    crate::worker::conn::wake_at(req, id, next_round, self);
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
                if coder_waits && !client_waits && !upstream_waits {
                    // Waiting for a subrequest, whose own timeouts apply (the worker
                    // drives this request again as it moves).
                    p.deadline = self.now + Duration::from_secs(3600);
                    return Drive::Blocked;
                }
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
    pub(super) fn spill(&mut self, conn: &mut Conn, p: &mut Proxy, from: usize) {
        if p.spill.is_none() {
            let loaded = self.loaded;
            let temp = &loaded.ir.settings
                [loaded.ir.locations[p.loc.0 as usize].conf.settings.0 as usize]
                .proxy
                .temp_path;
            let dir = loaded.prefix.join(&temp.path);
            match self.upstream_temp(conn, &dir, &temp.levels, false) {
                Some(x) => p.spill = Some(x),
                None => {
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
    /// A temporary file for a response read from an upstream (a buffered body's spill,
    /// unlinked at once; `keep`: a cache object or `proxy_store` file, renamed into place
    /// later); a failure is logged at `crit`, as nginx.
    pub(super) fn upstream_temp(
        &mut self,
        conn: &Conn,
        dir: &std::path::Path,
        levels: &[u8],
        keep: bool,
    ) -> Option<(std::fs::File, std::path::PathBuf)> {
        match crate::worker::body::create_temp(dir, levels, &mut self.ups.temp_seq, keep) {
            Ok(x) => Some(x),
            Err((path, e)) => {
                elog!(
                    self.elog,
                    Crit,
                    "open() \"{}\" failed ({}) while reading upstream, client: {}",
                    path.display(),
                    crate::log::OsError(&e),
                    conn.peer.ip()
                );
                None
            }
        }
    }

    pub(super) fn release_upstream(&mut self, p: &mut Proxy) {
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
    pub(super) fn step_tunnel(&mut self, conn: &mut Conn, p: &mut Proxy) -> Drive {
        const WINDOW: usize = 64 * 1024;
        let idle = Duration::from_millis(self.proxy_settings(p.loc).read_timeout_ms);
        let Some(key) = p.up else {
            return Drive::Close;
        };
        let Some(c) = self.ups.conns.get_mut(key) else {
            return Drive::Close;
        };
        if !c.writable {
            // Bytes go to the upstream whenever the client sends some: the tunnel waits
            // for writability too (see `UpConn::writable`).
            let all = Interest::READABLE | Interest::WRITABLE;
            if self
                .registry
                .reregister(&mut c.sock, Token(UP_BASE + key), all)
                .is_err()
            {
                self.log_access_proxy(conn, p);
                return Drive::Close;
            }
            c.writable = true;
        }
        // (An HTTP/2 stream never tunnels: its request cannot ask for an upgrade.)
        let crate::worker::conn::Sock::Tcp(client) = &conn.sock else {
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
                client,
                crate::worker::conn::tls_mut(&mut conn.ext),
                &mut conn.wbuf,
                &mut conn.wpos,
                WINDOW,
            );
            let up = pump(
                client,
                crate::worker::conn::tls_mut(&mut conn.ext),
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
    pub(super) fn note_upstream(&self, p: &mut Proxy, status: u16) {
        let ms = p.attempt_ms(self.now);
        let len = p.relay.received;
        if let Some(st) = p.states.last_mut() {
            st.status = status;
            st.response_ms = Some(ms);
            st.response_length = len;
        }
    }

    /// Logs a proxied exchange that ends by closing the client connection.
    pub(super) fn log_access_proxy(&mut self, conn: &mut Conn, p: &mut Proxy) {
        if let Some(req) = conn.req.as_deref_mut() {
            self.end_coding(req);
        }
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

/// nginx's pipe arithmetic for `proxy_limit_rate` (`ngx_event_pipe_read_upstream`): at most
/// `rate × (whole seconds since the response began + 1) − bytes read` may be read now, and
/// nothing while the delay of the last read runs (`delayed`). `Err`: how long to wait, to the
/// end of the delay or to the second whose allowance exceeds what was read (nginx polls
/// every millisecond there; waiting for that second is the same, without the wake-ups).
pub(super) fn read_allowance(
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
pub(super) fn read_delay(rate: u64, n: u64) -> Duration {
    Duration::from_millis((n.saturating_mul(1000) / rate.max(1)).min(u64::from(u32::MAX)))
}

/// Takes the next part of a buffered response's temporary file (at most `window` bytes,
/// from where the client is) into the empty output buffer.
pub(super) fn refill_from_spill(
    conn: &mut Conn,
    p: &mut Proxy,
    window: usize,
) -> std::io::Result<()> {
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

/// One direction of a tunnel: writes what `buf` holds (from `*pos`) to `to`, then reads
/// more from `from` while `buf` is under `cap`; a read of 0 or an error sets `*eof`.
/// Returns the bytes written, whether anything happened and whether everything written has
/// left (TLS records included), or `None` when a write failed
/// (`to` is gone).
#[allow(clippy::too_many_arguments)]
pub(super) fn pump<F: Transport, T: Transport>(
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

/// Works on the response bytes `out[from..]` just read from the upstream
/// ([`BodyRelay::take`]) and notes on `p` what that means: a body complete, a connection that
/// cannot be reused (bytes past the end), a response cut short (broken chunked framing).
pub(super) fn absorb(
    p: &mut Proxy,
    out: &mut Vec<u8>,
    from: usize,
    trailers: &mut Vec<u8>,
) -> Taken {
    let t = p.relay.take_framed(out, from, trailers);
    if let Some(body) = out.get(from..) {
        p.cache_tap(body);
    }
    p.relay.cut_range(out, from);
    if t.invalid {
        p.broken = true;
    }
    if t.excess || t.invalid {
        p.spoiled = true;
    }
    if t.done {
        p.upstream_eof = true;
    }
    t
}

impl Proxy {
    /// How much to read from the upstream now, and whether it goes to the temporary file:
    /// into memory while the `window` (proxy_buffers) has room beyond the `pending` bytes
    /// and nothing waits in the file; beyond that, with buffering (`spill_max`, nginx's
    /// proxy_max_temp_file_size, else 0), into the file `write_size` bytes at a time
    /// (proxy_temp_file_write_size) up to `spill_max`, so that the upstream is read at its
    /// own speed; else nothing until the client takes some.
    pub(super) fn read_plan(
        &self,
        pending: usize,
        window: usize,
        spill_max: u64,
        write_size: usize,
    ) -> (usize, bool) {
        let to_file = pending >= window || self.spill_written > self.spill_sent;
        let want = if self.upstream_eof || self.released {
            0
        } else if !to_file {
            window - pending
        } else if !self.spill_failed && self.spill_written < spill_max {
            let room = spill_max - self.spill_written;
            write_size.min(usize::try_from(room).unwrap_or(usize::MAX))
        } else {
            0
        };
        (want, to_file)
    }
}

/// What one read of the response body gave.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum BodyRead {
    /// This many bytes came and were taken ([`absorb`]; what it found).
    Got(usize, Taken),
    /// The upstream closed a body that ends with the connection: it is complete.
    Ended,
    /// The upstream closed before the body's end, or the read failed: the response is cut
    /// short (the log's words).
    Cut(&'static str),
    /// Nothing to read now.
    Blocked,
    /// Interrupted: read again.
    Interrupted,
}

/// Reads at most `want` bytes of the response body from `up` onto `out` and takes them
/// ([`absorb`]); `proxy_limit_rate` (`rate`, bytes per second, 0: none) delays the next read
/// after what came, from `now`.
pub(super) fn read_body<U: UpstreamIo>(
    up: &mut U,
    p: &mut Proxy,
    out: &mut Vec<u8>,
    want: usize,
    trailers: &mut Vec<u8>,
    rate: u64,
    now: Instant,
) -> BodyRead {
    let old = out.len();
    match up.read(&mut p.up_ready, p.up_hup, out, want) {
        Ok(0) => {
            p.upstream_eof = true;
            if matches!(p.relay.framing, Framing::UntilClose) {
                p.relay.framing = Framing::None;
                BodyRead::Ended
            } else {
                p.broken = true;
                p.spoiled = true;
                BodyRead::Cut("upstream prematurely closed connection")
            }
        }
        Ok(n) => {
            if let Some(st) = p.states.last_mut() {
                st.bytes_received += n as u64;
            }
            if rate > 0 {
                p.rate_read += n as u64;
                let d = read_delay(rate, n as u64);
                if !d.is_zero() {
                    p.rate_until = Some(now + d);
                }
            }
            BodyRead::Got(n, absorb(p, out, old, trailers))
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => BodyRead::Blocked,
        Err(e) if e.kind() == ErrorKind::Interrupted => BodyRead::Interrupted,
        Err(e) => {
            p.upstream_eof = true;
            p.broken = true;
            p.spoiled = true;
            BodyRead::Cut(match e.kind() {
                // (FastCGI: the connection closed before the answer's end; a record that
                // broke the protocol, logged with its details.)
                ErrorKind::UnexpectedEof => "upstream prematurely closed FastCGI request",
                ErrorKind::InvalidData => "upstream sent an invalid FastCGI record",
                _ => "recv() failed (104: Connection reset by peer)",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{FakeUpstream, Reply};
    use super::*;

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

    fn body_attempt(framing: Framing) -> Proxy {
        let mut p = Proxy::new();
        p.begin_attempt(UpPeer::Mark);
        p.relay.reset(framing);
        p.up_ready = true;
        p
    }

    /// Reads the body as step_body does (again after each stall) until it ends or the
    /// fake has nothing more; what reached the client and the last read's verdict.
    fn relay_all(
        up: &mut FakeUpstream,
        p: &mut Proxy,
        want: usize,
    ) -> (Vec<u8>, Vec<u8>, BodyRead) {
        let mut out = Vec::new();
        let mut trailers = Vec::new();
        loop {
            let r = read_body(up, p, &mut out, want, &mut trailers, 0, Instant::now());
            match r {
                BodyRead::Got(..) if !p.upstream_eof && !p.broken => {}
                BodyRead::Blocked if !up.replies.is_empty() => p.up_ready = true,
                BodyRead::Interrupted => {}
                r => return (out, trailers, r),
            }
        }
    }

    #[test]
    fn chunked_body_at_every_split_point() {
        let wire: &[u8] = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-T: 1\r\n\r\n";
        for piece in 1..=wire.len() {
            // Passed through to an HTTP/1.1 client, and decoded for an HTTP/1.0 one.
            for dechunk in [false, true] {
                let framing = Framing::Chunked {
                    dec: ChunkedDecoder::default(),
                    dechunk,
                };
                let mut p = body_attempt(framing);
                p.relay.pass_trailers = true;
                let mut up = FakeUpstream::answering(wire, piece, false);
                let (out, trailers, last) = relay_all(&mut up, &mut p, 1 << 16);
                assert!(
                    matches!(last, BodyRead::Got(_, t) if t.done),
                    "piece {piece}: {last:?}"
                );
                if dechunk {
                    assert_eq!(out, b"hello, world", "piece {piece}");
                } else {
                    assert_eq!(out, wire, "piece {piece}");
                }
                assert_eq!(trailers, b"X-T: 1\r\n\r\n");
                assert!(p.upstream_eof && !p.broken && !p.spoiled, "piece {piece}");
                assert!(matches!(p.relay.framing, Framing::None));
                assert_eq!(p.relay.received, wire.len() as u64);
                assert_eq!(p.states[0].bytes_received, wire.len() as u64);
            }
        }
    }

    #[test]
    fn length_body_reads_at_most_what_is_wanted() {
        let wire = b"0123456789abcdef";
        let mut p = body_attempt(Framing::Length(16));
        let mut up = FakeUpstream::answering(wire, 16, false);
        let (out, _, last) = relay_all(&mut up, &mut p, 3);
        assert!(matches!(last, BodyRead::Got(1, t) if t.done), "{last:?}");
        assert_eq!(out, wire);
        assert_eq!(up.reads, 6);
        assert!(!p.spoiled);
    }

    #[test]
    fn bytes_past_the_length_spoil_the_connection() {
        let mut p = body_attempt(Framing::Length(5));
        let mut up = FakeUpstream::answering(b"helloHTTP/1.1 200 OK\r\n", 100, false);
        let (out, _, last) = relay_all(&mut up, &mut p, 1 << 16);
        assert!(matches!(last, BodyRead::Got(_, t) if t.done && t.excess && t.over_length));
        assert_eq!(out, b"hello");
        assert!(p.spoiled && !p.broken);
    }

    #[test]
    fn body_until_close_ends_with_the_close() {
        let mut p = body_attempt(Framing::UntilClose);
        let mut up = FakeUpstream::answering(b"all of it", 2, true);
        let (out, _, last) = relay_all(&mut up, &mut p, 1 << 16);
        assert_eq!(last, BodyRead::Ended);
        assert_eq!(out, b"all of it");
        assert!(p.upstream_eof && !p.broken);
        assert!(matches!(p.relay.framing, Framing::None));
    }

    #[test]
    fn body_cut_short_is_broken() {
        // Closed before the length: premature close.
        let mut p = body_attempt(Framing::Length(100));
        let mut up = FakeUpstream::answering(b"part", 2, true);
        let (out, _, last) = relay_all(&mut up, &mut p, 1 << 16);
        assert_eq!(
            last,
            BodyRead::Cut("upstream prematurely closed connection")
        );
        assert_eq!(out, b"part");
        assert!(p.broken && p.spoiled && p.upstream_eof);
        // Reset in a chunked body.
        let framing = Framing::Chunked {
            dec: ChunkedDecoder::default(),
            dechunk: false,
        };
        let mut p = body_attempt(framing);
        let mut up = FakeUpstream::answering(b"5\r\nhel", 100, false);
        up.replies.push_back(Reply::Reset);
        let (_, _, last) = relay_all(&mut up, &mut p, 1 << 16);
        assert!(matches!(last, BodyRead::Cut(w) if w.starts_with("recv() failed")));
        assert!(p.broken && p.spoiled);
        // Broken chunk framing: cut short where it breaks.
        let framing = Framing::Chunked {
            dec: ChunkedDecoder::default(),
            dechunk: false,
        };
        let mut p = body_attempt(framing);
        let mut up = FakeUpstream::answering(b"5\r\nhello\r\nzz\r\n", 100, false);
        let (_, _, last) = relay_all(&mut up, &mut p, 1 << 16);
        assert!(matches!(last, BodyRead::Got(_, t) if t.invalid), "{last:?}");
        assert!(p.broken && p.spoiled);
    }

    #[test]
    fn limit_rate_delays_the_next_read() {
        let mut p = body_attempt(Framing::Length(2000));
        let mut up = FakeUpstream::answering(&[b'x'; 1000], 1000, false);
        let now = Instant::now();
        let (mut out, mut t) = (Vec::new(), Vec::new());
        let r = read_body(&mut up, &mut p, &mut out, 1 << 16, &mut t, 1000, now);
        assert!(matches!(r, BodyRead::Got(1000, _)));
        assert_eq!(p.rate_read, 1000);
        // 1000 bytes at 1000 bytes/s: the next read waits about a second.
        let until = p.rate_until.expect("a delay");
        assert!(
            until >= now + Duration::from_millis(900),
            "{:?}",
            until - now
        );
    }

    #[test]
    fn read_plan_memory_then_file_then_wait() {
        let mut p = Proxy::new();
        // Room in memory: read what fits.
        assert_eq!(p.read_plan(1000, 4096, 1 << 20, 8192), (3096, false));
        // Memory full: to the file, a write size at a time, up to the file's limit.
        assert_eq!(p.read_plan(4096, 4096, 1 << 20, 8192), (8192, true));
        p.spill_written = (1 << 20) - 100;
        assert_eq!(p.read_plan(4096, 4096, 1 << 20, 8192), (100, true));
        // While the file holds unsent bytes, everything goes after them, even with room in
        // memory (the order of the body).
        assert_eq!(p.read_plan(0, 4096, 1 << 20, 8192), (100, true));
        // The file full, or none allowed (proxy_buffering off / max_temp_file_size 0), or
        // it failed: wait for the client.
        p.spill_written = 1 << 20;
        assert_eq!(p.read_plan(4096, 4096, 1 << 20, 8192), (0, true));
        let mut q = Proxy::new();
        assert_eq!(q.read_plan(4096, 4096, 0, 8192), (0, true));
        q.spill_failed = true;
        assert_eq!(q.read_plan(4096, 4096, 1 << 20, 8192), (0, true));
        // Nothing more once the upstream is done with.
        q.upstream_eof = true;
        assert_eq!(q.read_plan(0, 4096, 1 << 20, 8192), (0, false));
    }
}
