//! The request towards the upstream: its head, then the client's body (streamed, or read
//! whole first into memory and a temporary file, and sent again on a retry).

use super::*;

impl Worker<'_> {
    /// Writes the next bytes of `p.req` to the upstream; `Ok(0)` is the upstream closing.
    /// A write that would block on a connection registered for reading only (see
    /// `UpConn::writable`) adds writability to its registration, so that the event loop
    /// comes back when the upstream takes more (the re-registration reports a socket that is
    /// writable meanwhile: no wake-up is lost).
    pub(super) fn write_req(&mut self, p: &mut Proxy) -> std::io::Result<usize> {
        let key =
            p.up.ok_or_else(|| std::io::Error::from(ErrorKind::NotConnected))?;
        let c = self
            .ups
            .conns
            .get_mut(key)
            .ok_or_else(|| std::io::Error::from(ErrorKind::NotConnected))?;
        let r = send_request(c, p, self.now);
        if !c.writable && matches!(&r, Err(e) if e.kind() == ErrorKind::WouldBlock) {
            self.registry.reregister(
                &mut c.sock,
                Token(UP_BASE + key),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            c.writable = true;
        }
        r
    }

    pub(super) fn step_send(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        let wrote = match self.send_more(conn, p) {
            Ok(w) => w,
            Err(step) => return step,
        };
        if wrote {
            p.deadline =
                self.now + Duration::from_millis(self.proxy_settings(p.loc).send_timeout_ms);
        }
        if p.req_pos < p.req.len() || p.file_read < p.file_len {
            return Step::Blocked;
        }
        // All of the request is out, or all that came so far. gRPC: the server may answer
        // before the request stream ends (a streaming call); the answer is read from then
        // on while the request goes on (`send_more`).
        if !matches!(p.body, ReqBody::None) {
            let answered = p.protocol == proton_ir::Protocol::Grpc
                && p.up
                    .and_then(|k| self.ups.conns.get_mut(k))
                    .is_some_and(UpConn::answer_begun);
            if !answered {
                return Step::Blocked;
            }
        }
        p.st = St::Head;
        p.deadline = self.now + Duration::from_millis(self.proxy_settings(p.loc).read_timeout_ms);
        if let Some(c) = p.up.and_then(|k| self.ups.conns.get_mut(k)) {
            c.requests += 1;
        }
        Step::Progress
    }

    /// Moves the request on as far as the sockets allow: the client's body bytes into
    /// `p.req` while there is room (and the pieces of a body in a temporary file), and
    /// `p.req` to the upstream. Also called while the answer is read, for gRPC's full
    /// duplex. Whether any bytes went to the upstream; `Err`: the step that ends the
    /// attempt.
    pub(super) fn send_more(&mut self, conn: &mut Conn, p: &mut Proxy) -> Result<bool, Step> {
        let mut wrote = false;
        loop {
            let mut moved = false;
            if !matches!(p.body, ReqBody::None) && p.req.len() - p.req_pos < REQ_WINDOW {
                match self.pull_body(conn, p) {
                    Pull::Got => moved = true,
                    Pull::Wait => {}
                    Pull::Fail(d) => return Err(Step::Done(d)),
                }
            }
            if p.req_pos >= p.req.len() && p.file_read < p.file_len {
                // The next piece of a body in a temporary file, after the head.
                if self.next_file_piece(conn, p).is_err() {
                    return Err(Step::Done(Drive::Failed(500)));
                }
                moved = true;
            }
            if p.req_pos < p.req.len() {
                match self.write_req(p) {
                    Ok(0) => {
                        return Err(Step::Fail(
                            Fail::Error,
                            "upstream closed the connection while sending request",
                        ))
                    }
                    Ok(_) => {
                        moved = true;
                        wrote = true;
                    }
                    Err(e) if e.kind() == ErrorKind::NotConnected => {
                        return Err(Step::Fail(Fail::Error, "lost upstream connection"))
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => moved = true,
                    Err(_) => return Err(Step::Fail(
                        Fail::Error,
                        "writev() failed (Connection reset by peer) while sending request to upstream",
                    )),
                }
            }
            if !moved {
                return Ok(wrote);
            }
        }
    }

    /// Reads the request body whole into the request context (memory, then a temporary
    /// file), then frames it, picks an upstream and connects.
    pub(super) fn step_read_body(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        let limit = if p.memory_only {
            u64::MAX
        } else {
            self.settings_for(p.loc).client_body_buffer_size
        };
        let Some(req) = conn.req.as_deref_mut() else {
            return Step::Done(Drive::Failed(500));
        };
        if req.body.state == crate::worker::body::BodyState::Unread {
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
    pub(super) fn body_read(&mut self, conn: &mut Conn, p: &mut Proxy) -> Step {
        let only_memory = p.memory_only;
        if let Err(d) = self.with_spill(conn, p.loc, only_memory, |body, spill| body.finish(spill))
        {
            return Step::Done(d);
        }
        let Some(req) = conn.req.as_deref() else {
            return Step::Done(Drive::Failed(500));
        };
        let mut head = std::mem::take(&mut p.req);
        if p.head_pending {
            // The params now that the body's length is known.
            p.head_pending = false;
            head.clear();
            let ps = self.proxy_settings(p.loc);
            let cache_on = p.cache.zone.is_some() && !p.cache.no_store;
            if self
                .cgi_request_head(
                    conn,
                    req,
                    ps,
                    p.protocol,
                    req.body.len(),
                    cache_on,
                    &mut head,
                )
                .is_err()
            {
                p.req = head;
                return Step::Done(Drive::Failed(500));
            }
        }
        frame_kept_body(&mut head, &req.body, p);
        p.req = head;
        p.read_whole = false;
        p.first_try = self.now;
        if p.cache.lock_wait {
            // proxy_cache_lock: see `cache::step_cache_lock`.
            p.st = St::CacheLock;
            p.deadline = self.now;
            return Step::Blocked;
        }
        match self.connect_or_resolve(conn, p) {
            Ok(()) => Step::Progress,
            Err(code) => Step::Done(Drive::Failed(code)),
        }
    }

    /// Runs `f` on the request's body with where it may spill to; an I/O error is logged
    /// (as nginx, at `crit`) and becomes a 500. A temporary file just created is logged
    /// as nginx does (`warn`; `notice` with client_body_in_file_only).
    pub(super) fn with_spill(
        &mut self,
        conn: &mut Conn,
        loc: LocationId,
        memory_only: bool,
        f: impl FnOnce(
            &mut crate::worker::body::RequestBody,
            &mut crate::worker::body::Spill<'_>,
        ) -> Result<bool, crate::worker::body::BodyError>,
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
        let mut spill = crate::worker::body::Spill {
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
    pub(super) fn next_file_piece(&mut self, conn: &Conn, p: &mut Proxy) -> Result<(), ()> {
        let Some(req) = conn.req.as_deref() else {
            return Err(());
        };
        p.req.truncate(p.head_len);
        p.req_pos = p.head_len;
        // FastCGI: each piece is one STDIN record (nginx's 32k pieces), its header first;
        // gRPC: one DATA frame of 16 KiB.
        let grpc = p.protocol == proton_ir::Protocol::Grpc;
        let (chunk, header) = if p.fcgi() {
            (32 * 1024, 8)
        } else if grpc {
            (16 * 1024, 9)
        } else {
            (FILE_CHUNK, 0)
        };
        let want = (p.file_len - p.file_read).min(chunk as u64) as usize;
        let at = p.req.len() + header;
        p.req.resize(at + want, 0);
        let r = req.body.read_at(&mut p.req[at..], p.file_read);
        match r {
            Ok(n) if n > 0 => {
                p.req.truncate(at + n);
                p.file_read += n as u64;
                if p.fcgi() {
                    crate::http::fastcgi::frame_in_place(
                        crate::http::fastcgi::STDIN,
                        1,
                        &mut p.req,
                        at - header,
                    );
                    if p.file_read == p.file_len {
                        fcgi::stdin_records(&[], true, &mut p.req);
                    }
                } else if grpc {
                    let end = p.file_read == p.file_len;
                    let flags = if end {
                        crate::http2::frame::END_STREAM
                    } else {
                        0
                    };
                    let l = (n as u32).to_be_bytes();
                    let h = [
                        l[1],
                        l[2],
                        l[3],
                        crate::http2::frame::DATA,
                        flags,
                        0,
                        0,
                        0,
                        0,
                    ];
                    p.req[at - header..at].copy_from_slice(&h);
                }
                Ok(())
            }
            other => {
                p.req.truncate(at - header);
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
    pub(super) fn pull_body(&mut self, conn: &mut Conn, p: &mut Proxy) -> Pull {
        let start = conn.head_len().min(conn.rbuf.len());
        if conn.rbuf.len() == start {
            if p.client_eof {
                return Pull::Wait;
            }
            // Read more from the client.
            match conn.read_client(16 * 1024) {
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
                if req.body.state == crate::worker::body::BodyState::Unread {
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
        let pieces_len: usize = pieces.iter().map(|r| r.len()).sum();
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
            if p.fcgi() {
                for r in &pieces {
                    fcgi::stdin_records(&conn.rbuf[r.clone()], false, &mut p.req);
                }
                if done {
                    fcgi::stdin_records(&[], true, &mut p.req);
                }
            } else if p.protocol == proton_ir::Protocol::Grpc {
                // The last piece ends the stream (an empty DATA frame when none is left).
                for (i, r) in pieces.iter().enumerate() {
                    let end = done && i + 1 == pieces.len();
                    crate::http2::upstream::data_frames(&conn.rbuf[r.clone()], end, &mut p.req);
                }
                if done && pieces.is_empty() {
                    crate::http2::upstream::data_frames(&[], true, &mut p.req);
                }
            } else {
                crate::http::relay::frame_streamed(&conn.rbuf, &pieces, chunked, done, &mut p.req);
            }
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
        let stream = crate::worker::h2::is_stream(conn);
        if let Some(req) = conn.req.as_deref_mut() {
            // HTTP/2: the DATA payloads (the stream's connection frames them as chunks
            // when the request has no length).
            req.body_read += if stream {
                pieces_len as u64
            } else {
                used as u64
            };
        }
        if used == 0 && !done {
            return Pull::Wait;
        }
        Pull::Got
    }

    pub(super) fn bad_body(&mut self, conn: &Conn, e: crate::http::HttpError) -> Pull {
        elog!(
            self.elog,
            Info,
            "client sent invalid chunked body ({}), client: {}",
            e.reason(),
            conn.peer.ip()
        );
        Pull::Fail(Drive::Failed(e.status()))
    }
}

/// Whether part of the request body of `conn` that a failed proxied request left behind
/// has not arrived yet. A body that is already whole in the read buffer is dropped before
/// the next request and the connection can stay open after the error answer (nginx keeps
/// it after a 502 or 504); a body still on its way is not waited for: the answer closes.
pub(crate) fn body_still_arriving(conn: &Conn) -> bool {
    let buffered = conn.rbuf.get(conn.head_len()..).unwrap_or_default();
    match &conn.discard {
        crate::worker::conn::Discard::None => false,
        crate::worker::conn::Discard::Length(n) => (buffered.len() as u64) < *n,
        crate::worker::conn::Discard::Chunked(d) => {
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

/// What the bytes of a chunked body that arrived so far are.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Prefix {
    /// The whole body (its last chunk and trailer section) is there, in this many bytes.
    Complete(usize),
    /// More is to come.
    Partial,
    /// Malformed (400).
    Invalid,
}

pub(super) fn chunked_prefix(buffered: &[u8]) -> Prefix {
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

pub(super) enum Pull {
    Got,
    Wait,
    Fail(Drive),
}

/// Writes the next bytes of the request (`p.req` from `p.req_pos`) to `up` at `now`; `Ok(0)`
/// is the upstream closing. What went out counts for `$upstream_bytes_sent` and ends the
/// attempt's connect time; a request too large to keep for a retry ([`REPLAY_MAX`]) is
/// dropped once written, and the window slides (no replay after that).
pub(super) fn send_request<U: UpstreamIo>(
    up: &mut U,
    p: &mut Proxy,
    now: Instant,
) -> std::io::Result<usize> {
    let n = up.write(p.req.get(p.req_pos..).unwrap_or_default())?;
    if n > 0 {
        p.req_pos += n;
        p.sent_any = true;
        let ms = p.attempt_ms(now);
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

#[cfg(test)]
mod tests {
    use super::super::fake::FakeUpstream;
    use super::*;

    fn request(len: usize) -> Proxy {
        let mut p = Proxy::new();
        p.begin_attempt(UpPeer::Mark);
        p.req = (0..len).map(|i| (i % 251) as u8).collect();
        p
    }

    #[test]
    fn request_goes_out_in_order_through_partial_writes() {
        let now = Instant::now();
        for len in [10, REPLAY_MAX, REPLAY_MAX + 1, 3 * REPLAY_MAX] {
            let mut p = request(len);
            let want = p.req.clone();
            let mut up = FakeUpstream::default();
            // 1000 bytes, a stall, 1 byte, a stall… (a slow upstream).
            for i in 0..2 * len {
                up.takes.push_back(if i % 2 == 1 {
                    None
                } else {
                    Some(1 + 999 * ((i / 2) % 2))
                });
            }
            let mut writes = 0;
            while p.req_pos < p.req.len() {
                match send_request(&mut up, &mut p, now) {
                    Ok(n) => assert!(n > 0),
                    Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock),
                }
                writes += 1;
                assert!(writes < 4 * len, "no progress");
            }
            assert_eq!(up.written, want, "len {len}");
            assert!(p.sent_any);
            assert_eq!(p.states[0].bytes_sent, len as u64);
            assert!(p.states[0].connect_ms.is_some());
            // Kept for a retry only when small enough; otherwise the window slid.
            assert_eq!(p.replayable, len <= REPLAY_MAX, "len {len}");
            assert_eq!(p.req.is_empty(), len > REPLAY_MAX, "len {len}");
        }
    }

    #[test]
    fn a_body_kept_whole_stays_for_a_retry() {
        let mut p = request(3 * REPLAY_MAX);
        p.buffered = true;
        let mut up = FakeUpstream::default();
        while p.req_pos < p.req.len() {
            send_request(&mut up, &mut p, Instant::now()).ok();
        }
        assert!(p.replayable);
        assert_eq!(p.req.len(), 3 * REPLAY_MAX);
        assert_eq!(up.written, p.req);
    }
}
