//! Routing one request through the IR: server by Host, URI normalisation, the rewrite-phase
//! scripts (`rewrite`, `return`, `set`), location selection, internal redirects (bounded),
//! `error_page`, and the handler (return, static files).

use super::conn::Conn;
use super::respond::{begin_head, end_head, error_response, Head};
use super::vars::Ctx;
use super::{static_files, Worker};
use crate::elog;
use crate::http::request::RequestHead;
use crate::http::response::write_status_line;
use proton_ir::{LocationId, RewriteFlag, ScriptOp, ServerId, Settings};
use std::io::Write;

/// Lowercases into `out` the host part that `validate_host` cut from a Host value or an
/// absolute-form target (no port, no blank, at most one trailing dot, already removed in
/// the usual case), without the brackets of an IPv6 literal and any trailing dot (as
/// `proton_ir::uri::normalize_host`, without allocating).
fn normalize_host_into(host: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut host = host;
    if host.first() == Some(&b'[') {
        host = host.split(|&b| b == b']').next().unwrap_or(host);
        while let [b'[', rest @ ..] = host {
            host = rest;
        }
    }
    while let [rest @ .., b'.'] = host {
        host = rest;
    }
    // Copied whole and lowercased in place (vectorised), not pushed byte by byte.
    out.extend_from_slice(host);
    out.make_ascii_lowercase();
}

/// Internal redirects allowed per request (nginx: 10).
const MAX_REDIRECTS: u32 = 10;

/// Per-worker buffers reused by every request.
#[derive(Default)]
pub(crate) struct Scratch {
    /// The request head being answered, boxed so handing it around moves a pointer, not
    /// a 1.6 KB table (taken out while the request is routed, put back after).
    pub(crate) head: Option<Box<RequestHead>>,
    /// Which connection's request (`Conn::key`, `Conn::served`) `head` holds, so the
    /// access log can use it instead of parsing the head again.
    pub(crate) head_owner: Option<(u32, u32)>,
    pub(crate) uri: Vec<u8>,
    pub(crate) args: Vec<u8>,
    pub(crate) host: Vec<u8>,
    pub(crate) user: Vec<Option<Vec<u8>>>,
    /// `$1`… and named groups of the request's regex matches.
    pub(crate) captures: super::vars::Captures,
    /// Buffers that `set`, rewrite, try_files and variable expansion (maps) borrow and
    /// give back.
    pub(crate) var_pool: std::cell::RefCell<super::vars::VarPool>,
    /// Requests already served on the current connection.
    pub(crate) served: u32,
    /// Modification time of the file being answered (for `expires modified`).
    pub(crate) mtime: Option<i64>,
    pub(crate) tmp: Vec<u8>,
    pub(crate) path: Vec<u8>,
    /// The body of a built-in error or redirect page being answered.
    pub(crate) page: Vec<u8>,
    /// The URI was changed by rewrite, try_files or error_page (the proxy then sends it
    /// escaped instead of the client's own).
    pub(crate) uri_changed: bool,
    /// The request announced a body with `Expect: 100-continue` that no handler reads, or
    /// the body of a proxied request that failed has not all arrived (see
    /// [`Worker::keep_alive_for`]).
    pub(crate) expect_unread: bool,
    /// The last upstream attempt of the request being logged (see `vars::Ctx::upstream`).
    pub(crate) upstream: Option<(std::net::SocketAddr, u16, u32)>,
}

/// What the connection needs to know about the answer.
pub(crate) struct Outcome {
    pub(crate) status: u16,
    pub(crate) close: bool,
    pub(crate) location: Option<u32>,
    pub(crate) header_bytes: usize,
    pub(crate) keepalive_ms: u64,
    pub(crate) send_timeout_ms: u64,
    pub(crate) body_timeout_ms: u64,
    /// The request went to the proxy, which answers later (`Conn::proxy`).
    pub(crate) proxy: bool,
}

/// The result of running a script.
enum Script {
    Continue,
    /// `return code [text]`: text expanded into `Scratch::tmp`.
    Return(u16, bool),
    /// rewrite … last: search locations again.
    Restart,
    /// rewrite … break: stay in this location.
    Break,
    /// A redirect; URL in `Scratch::tmp`.
    Redirect(u16),
}

/// What a regex capture runs on.
pub(crate) enum Subject {
    Uri,
    Host,
}

/// Why the handler stopped without a response.
pub(crate) enum Handled {
    /// A response is in the connection's buffers.
    Done { status: u16, header_bytes: usize },
    /// An error status to answer (error_page may apply).
    Status(u16),
    /// An internal redirect to the URI in `Scratch::uri` (try_files fallback).
    Redirect,
    /// To a named location (`None`: no such location, 500).
    Named(Option<LocationId>),
    /// Proxied: the answer comes from the upstream, later.
    Proxy,
}

impl Worker<'_> {
    /// Settings of the default server of IR listener `l` (used before Host is known).
    pub(crate) fn default_settings(&self, l: usize) -> Option<&Settings> {
        let ir = &self.loaded.ir;
        let sid = ir.listeners.get(l)?.names.default;
        let srv = ir.servers.get(sid.0 as usize)?;
        let loc = ir.locations.get(srv.default_location.0 as usize)?;
        ir.settings.get(loc.conf.settings.0 as usize)
    }

    /// Largest request head accepted on listener `l`.
    pub(crate) fn head_limit(&self, l: usize) -> usize {
        self.default_settings(l).map_or(33 * 1024, |s| {
            let (n, sz) = s.large_client_header_buffers;
            (s.client_header_buffer_size as usize).max(n as usize * sz as usize)
        })
    }

    /// Longest request line accepted on listener `l` (one large buffer, as nginx).
    pub(crate) fn uri_limit(&self, l: usize) -> usize {
        self.default_settings(l)
            .map_or(8 * 1024, |s| s.large_client_header_buffers.1 as usize)
    }

    /// Answers the request whose head is in `scratch.head`, writing into `conn`.
    pub(crate) fn handle_request(&mut self, conn: &mut Conn) -> Outcome {
        let head = self.scratch.head.take().unwrap_or_default();
        let (sid, ok) = self.prepare(conn, &head);
        let server_default = self.loaded.ir.servers[sid.0 as usize].default_location;
        let outcome = if !ok {
            elog!(
                self.elog,
                Info,
                "client sent invalid request URI, client: {}",
                conn.peer.ip()
            );
            self.finish_status(conn, &head, 400, server_default, true)
        } else {
            self.route(conn, &head, sid, None)
        };
        self.scratch.head = Some(head);
        outcome
    }

    /// A proxied request failed before anything was sent to the client: answers `status`
    /// for the location that proxied it, through its error_page.
    pub(crate) fn proxy_error(&mut self, conn: &mut Conn, status: u16) -> Outcome {
        let ir = &self.loaded.ir;
        let loc = LocationId(conn.finished.location().unwrap_or(0));
        let Some(sid) = ir.locations.get(loc.0 as usize).map(|l| l.server) else {
            let head = RequestHead::default();
            return self.finish_status(conn, &head, status, loc, true);
        };
        let head = self.reparse_head(conn).unwrap_or_default();
        let _ = self.prepare(conn, &head);
        self.scratch.served = conn.served;
        // A request body that has not all arrived is not waited for: the error answer
        // closes the connection (as for an unread `Expect: 100-continue` body).
        self.scratch.expect_unread = super::proxy::body_still_arriving(conn);
        let out = self.route(conn, &head, sid, Some((loc, status)));
        self.scratch.expect_unread = false;
        out
    }

    /// The head of the current request, parsed again from `conn.rbuf`.
    pub(crate) fn reparse_head(&self, conn: &Conn) -> Option<RequestHead> {
        self.reparse(conn, &RequestHead::default())
    }

    /// Host, server, URI and arguments of the request in `head`; false when the URI does
    /// not normalise (400).
    fn prepare(&mut self, conn: &Conn, head: &RequestHead) -> (ServerId, bool) {
        let ir = &self.loaded.ir;
        self.scratch.uri_changed = false;
        // Host: the absolute-form authority, else the Host header (lowercased, no port).
        let host_raw = head
            .absolute_host
            .clone()
            .or_else(|| head.host.clone())
            .and_then(|r| conn.rbuf.get(r))
            .unwrap_or(b"");
        normalize_host_into(host_raw, &mut self.scratch.host);
        let listener = ir.listeners.get(conn.listener as usize);
        let (sid, how) = match listener {
            Some(l) => {
                let loaded = &self.loaded;
                ir.find_server(l, &self.scratch.host, &mut |id, s| loaded.is_match(id, s))
            }
            None => (ServerId(0), proton_ir::ServerMatch::Default),
        };
        let target = conn.rbuf.get(head.target.clone()).unwrap_or(b"/");
        let args_start = target.iter().position(|&b| b == b'?');
        self.scratch.args.clear();
        if let Some(i) = args_start {
            let a = &target[i + 1..];
            let end = a.iter().position(|&b| b == b'#').unwrap_or(a.len());
            self.scratch.args.extend_from_slice(&a[..end]);
        }
        let mut uri = std::mem::take(&mut self.scratch.uri);
        let ok = crate::http::request::normalize_target(head, &conn.rbuf, &mut uri);
        self.scratch.uri = uri;
        // Every user variable starts unset; the buffers of the last request's values go back
        // to the pool for the next `set`.
        let pool = self.scratch.var_pool.get_mut();
        for slot in self.scratch.user.iter_mut() {
            if let Some(old) = slot.take() {
                pool.give_buf(old);
            }
        }
        self.scratch.user.resize(ir.user_vars.len(), None);
        self.scratch.captures.clear();
        // A regex server name's groups are variables for the whole request.
        if let (Some(l), proton_ir::ServerMatch::Regex(i)) = (listener, how) {
            if let Some((re, _)) = l.names.regex.get(i) {
                self.capture(*re, Subject::Host);
            }
        }
        (sid, ok)
    }

    /// Runs the rewrite phase, picks the location and answers. With `pending`, starts at
    /// that location's error_page handling of that status instead (a failed proxy).
    fn route(
        &mut self,
        conn: &mut Conn,
        head: &RequestHead,
        sid: ServerId,
        mut pending: Option<(LocationId, u16)>,
    ) -> Outcome {
        let ir = &self.loaded.ir;
        let server = &ir.servers[sid.0 as usize];
        // Server-level rewrite phase.
        if pending.is_none() {
            match self.run_script(conn, head, sid, &server.script, server.default_location) {
                Script::Return(code, has_text) => {
                    return self.answer_return(conn, head, code, has_text, server.default_location)
                }
                Script::Redirect(code) => {
                    return self.answer_redirect(conn, head, code, server.default_location)
                }
                Script::Continue | Script::Restart | Script::Break => {}
            }
        }
        let mut internal = pending.is_some();
        let mut error_status: Option<(u16, Option<u16>)> = None;
        let mut named: Option<LocationId> = None;
        for _ in 0..=MAX_REDIRECTS {
            // A failed proxy starts at its location's error_page handling.
            let (loc_id, handled) = match pending.take() {
                Some((loc_id, code)) => (loc_id, Handled::Status(code)),
                None => {
                    let loc_id = match named.take() {
                        Some(l) => l,
                        None => {
                            let uri = std::mem::take(&mut self.scratch.uri);
                            let m = ir
                                .find_location(sid, &uri, &mut |id, s| self.loaded.is_match(id, s));
                            self.scratch.uri = uri;
                            m.location
                        }
                    };
                    let loc = &ir.locations[loc_id.0 as usize];
                    // The matching location regex sets $1… and named captures.
                    if let Some(Some(re)) = self.loaded.loc_regex.get(loc_id.0 as usize) {
                        self.capture(*re, Subject::Uri);
                    }
                    if loc.conf.internal && !internal {
                        return self.finish_status(conn, head, 404, loc_id, false);
                    }
                    let settings = &ir.settings[loc.conf.settings.0 as usize];
                    if settings.client_max_body_size > 0
                        && head
                            .content_length
                            .is_some_and(|n| n > settings.client_max_body_size)
                    {
                        elog!(
                            self.elog,
                            Error,
                            "client intended to send too large body: {} bytes, client: {}",
                            head.content_length.unwrap_or(0),
                            conn.peer.ip()
                        );
                        return self.finish_status(conn, head, 413, loc_id, true);
                    }
                    if error_status.is_none() {
                        if let Some(out) = self.answer_const(conn, head, loc_id) {
                            return out;
                        }
                    }
                    match self.run_script(conn, head, sid, &loc.conf.script, loc_id) {
                        Script::Return(code, has_text) => {
                            // In a location reached through error_page, the response keeps the
                            // error's status (nginx's err_status), unless error_page set one.
                            let code = match error_status {
                                Some((orig, response)) if has_text && code < 300 => {
                                    response.unwrap_or(orig)
                                }
                                _ => code,
                            };
                            return self.answer_return(conn, head, code, has_text, loc_id);
                        }
                        Script::Redirect(code) => {
                            return self.answer_redirect(conn, head, code, loc_id)
                        }
                        Script::Restart => {
                            internal = true;
                            continue;
                        }
                        Script::Continue | Script::Break => {}
                    }
                    let handled = if loc.conf.proxy.is_some() {
                        self.proxy_start(conn, head, sid, loc_id)
                    } else {
                        static_files::serve(self, conn, head, loc_id, error_status)
                    };
                    (loc_id, handled)
                }
            };
            match handled {
                Handled::Done {
                    status,
                    header_bytes,
                } => {
                    return self.outcome(status, false, loc_id, header_bytes);
                }
                Handled::Redirect => {
                    self.scratch.uri_changed = true;
                    internal = true;
                    continue;
                }
                Handled::Named(found) => {
                    match found {
                        Some(l) => named = Some(l),
                        None => return self.finish_status(conn, head, 500, loc_id, false),
                    }
                    internal = true;
                    continue;
                }
                Handled::Proxy => {
                    return Outcome {
                        proxy: true,
                        ..self.outcome(0, false, loc_id, 0)
                    };
                }
                Handled::Status(code) => {
                    match self.error_page(
                        conn,
                        head,
                        sid,
                        loc_id,
                        code,
                        &mut error_status,
                        &mut named,
                        &mut internal,
                    ) {
                        Some(out) => return out,
                        None => continue,
                    }
                }
            }
        }
        elog!(
            self.elog,
            Error,
            "rewrite or internal redirection cycle while processing \"{}\", client: {}",
            String::from_utf8_lossy(&self.scratch.uri),
            conn.peer.ip()
        );
        let d = ir.servers[sid.0 as usize].default_location;
        self.finish_status(conn, head, 500, d, false)
    }

    /// error_page for `code` answered by location `loc_id`: once per request (nginx's
    /// recursive_error_pages off). `None`: go round the routing loop again (to the URI now in
    /// `scratch.uri`, or to `named`); `Some`: the answer.
    #[allow(clippy::too_many_arguments)]
    fn error_page(
        &mut self,
        conn: &mut Conn,
        head: &RequestHead,
        sid: ServerId,
        loc_id: LocationId,
        code: u16,
        error_status: &mut Option<(u16, Option<u16>)>,
        named: &mut Option<LocationId>,
        internal: &mut bool,
    ) -> Option<Outcome> {
        let loaded = self.loaded;
        let ir = &loaded.ir;
        let settings = ir
            .locations
            .get(loc_id.0 as usize)
            .and_then(|l| ir.settings.get(l.conf.settings.0 as usize));
        if error_status.is_none() {
            if let Some(ep) =
                settings.and_then(|s| s.error_pages.iter().find(|e| e.codes.contains(&code)))
            {
                self.scratch.tmp.clear();
                let ctx = self.ctx(conn, head, sid, code);
                let mut t = Vec::new();
                ctx.expand(&ep.target, &mut t);
                *error_status = Some((code, ep.response));
                *internal = true;
                if let Some(n) = t.strip_prefix(b"@") {
                    let name = format!("@{}", String::from_utf8_lossy(n));
                    match ir.find_named(sid, &name) {
                        Some(l) => *named = Some(l),
                        None => return Some(self.finish_status(conn, head, code, loc_id, false)),
                    }
                    return None;
                }
                if t.starts_with(b"http://") || t.starts_with(b"https://") {
                    self.scratch.tmp = t;
                    let redirect = match ep.response {
                        Some(c) if (300..400).contains(&c) => c,
                        _ => 302,
                    };
                    return Some(self.answer_redirect(conn, head, redirect, loc_id));
                }
                let (path, args) = match t.iter().position(|&b| b == b'?') {
                    Some(i) => (t[..i].to_vec(), t[i + 1..].to_vec()),
                    None => (t, Vec::new()),
                };
                self.scratch.uri = path;
                self.scratch.uri_changed = true;
                if !args.is_empty() {
                    self.scratch.args = args;
                }
                return None;
            }
        }
        let status = error_status.map_or(code, |(orig, _)| orig.max(code));
        Some(self.finish_status(conn, head, status, loc_id, false))
    }

    /// Runs regex `id` on the URI or the host; on a match, its groups become `$1`… and its
    /// named groups `$name`, as after an nginx regex match. Returns whether it matched.
    pub(crate) fn capture(&mut self, id: proton_ir::RegexId, subject: Subject) -> bool {
        let Some(re) = self.loaded.regexes.get(id.0 as usize) else {
            return false;
        };
        let s = &mut self.scratch;
        let text: &[u8] = match subject {
            Subject::Uri => &s.uri,
            Subject::Host => &s.host,
        };
        s.var_pool
            .get_mut()
            .capture(&mut s.captures, id.0 as usize, re, text)
    }

    /// Applies a rewrite whose replacement expanded to `out`: a redirect (`Some`), or the new
    /// URI and arguments, then `last` / `break` (`Some`) or on to the next instruction.
    fn apply_rewrite(&mut self, out: &[u8], flag: RewriteFlag) -> Option<Script> {
        let is_url = out.starts_with(b"http://") || out.starts_with(b"https://");
        // Arguments: the replacement's own, then the original ones unless it ends in `?`.
        let q = if is_url {
            None
        } else {
            out.iter().position(|&b| b == b'?')
        };
        let (path, new_args, keep_old) = match q {
            Some(i) => (&out[..i], &out[i + 1..], i + 1 != out.len()),
            None => (out, &out[out.len()..], true),
        };
        let s = &mut self.scratch;
        if matches!(flag, RewriteFlag::Redirect | RewriteFlag::Permanent) || is_url {
            s.tmp.clear();
            s.tmp.extend_from_slice(out);
            if !is_url && keep_old && !s.args.is_empty() && !out.contains(&b'?') {
                s.tmp.push(b'?');
                s.tmp.extend_from_slice(&s.args);
            }
            let code = if flag == RewriteFlag::Permanent {
                301
            } else {
                302
            };
            return Some(Script::Redirect(code));
        }
        if !new_args.is_empty() || !keep_old {
            let pool = s.var_pool.get_mut();
            let mut args = pool.buf();
            args.extend_from_slice(new_args);
            if keep_old && !new_args.is_empty() && !s.args.is_empty() {
                args.push(b'&');
                args.extend_from_slice(&s.args);
            }
            pool.give_buf(std::mem::replace(&mut s.args, args));
        }
        s.uri.clear();
        s.uri.extend_from_slice(path);
        s.uri_changed = true;
        match flag {
            RewriteFlag::Last => Some(Script::Restart),
            RewriteFlag::Break => Some(Script::Break),
            _ => None,
        }
    }

    /// The variable context of the current request.
    pub(crate) fn ctx<'s>(
        &'s self,
        conn: &'s Conn,
        head: &'s RequestHead,
        sid: ServerId,
        status: u16,
    ) -> Ctx<'s> {
        let ir = &self.loaded.ir;
        Ctx {
            buf: &conn.rbuf,
            head,
            uri: &self.scratch.uri,
            args: &self.scratch.args,
            host: &self.scratch.host,
            server_name: ir
                .servers
                .get(sid.0 as usize)
                .and_then(|s| s.names.first())
                .map_or("", String::as_str),
            peer: conn.peer,
            local: self.local_of(conn),
            user: &self.scratch.user,
            captures: &self.scratch.captures,
            pool: &self.scratch.var_pool,
            status,
            body_bytes: conn.finished.body_bytes,
            bytes_sent: conn.finished.body_bytes + conn.finished.header_bytes,
            request_time_ms: u64::from(self.now_ms.wrapping_sub(conn.started)),
            document_root: b"",
            time_local: self.date.time_local(),
            proxy_host: b"",
            upstream: self.scratch.upstream,
            regexes: &self.loaded.regexes,
            maps: &ir.maps,
        }
    }

    /// Runs rewrite-phase instructions in order.
    fn run_script(
        &mut self,
        conn: &Conn,
        head: &RequestHead,
        sid: ServerId,
        ops: &[ScriptOp],
        _loc: LocationId,
    ) -> Script {
        for op in ops {
            match op {
                ScriptOp::Return { code, text } => {
                    let mut out = std::mem::take(&mut self.scratch.tmp);
                    out.clear();
                    if let Some(t) = text {
                        match t.parts.as_slice() {
                            // A constant text (the usual case) needs no variable context.
                            [proton_ir::Part::Literal(lit)] => {
                                out.extend_from_slice(lit.as_bytes())
                            }
                            _ => self.ctx(conn, head, sid, *code).expand(t, &mut out),
                        }
                    }
                    self.scratch.tmp = out;
                    return Script::Return(*code, text.is_some());
                }
                ScriptOp::Set { var, value } => {
                    let mut out = self.scratch.var_pool.get_mut().buf();
                    self.ctx(conn, head, sid, 0).expand(value, &mut out);
                    let old = match self.scratch.user.get_mut(*var as usize) {
                        Some(slot) => slot.replace(out),
                        None => Some(out),
                    };
                    if let Some(old) = old {
                        self.scratch.var_pool.get_mut().give_buf(old);
                    }
                }
                ScriptOp::Rewrite {
                    regex,
                    replacement,
                    flag,
                    ..
                } => {
                    if !self.capture(*regex, Subject::Uri) {
                        continue;
                    }
                    let mut out = self.scratch.var_pool.get_mut().buf();
                    self.ctx(conn, head, sid, 0).expand(replacement, &mut out);
                    let done = self.apply_rewrite(&out, *flag);
                    self.scratch.var_pool.get_mut().give_buf(out);
                    if let Some(done) = done {
                        return done;
                    }
                }
            }
        }
        Script::Continue
    }

    pub(crate) fn settings_for(&self, loc: LocationId) -> &Settings {
        let ir = &self.loaded.ir;
        let s = ir
            .locations
            .get(loc.0 as usize)
            .map_or(0, |l| l.conf.settings.0 as usize);
        &ir.settings[s.min(ir.settings.len().saturating_sub(1))]
    }

    pub(crate) fn outcome(
        &self,
        status: u16,
        close: bool,
        loc: LocationId,
        header_bytes: usize,
    ) -> Outcome {
        let s = self.settings_for(loc);
        Outcome {
            status,
            close,
            location: Some(loc.0),
            header_bytes,
            keepalive_ms: s.keepalive_timeout_ms,
            send_timeout_ms: s.send_timeout_ms,
            body_timeout_ms: s.client_body_timeout_ms,
            proxy: false,
        }
    }

    /// Whether this response keeps the connection: the client wants it, the worker is not
    /// stopping, keep-alive is on, and keepalive_requests is not reached with this request.
    pub(crate) fn keep_alive(&self, head: &RequestHead, loc: LocationId) -> bool {
        let s = self.settings_for(loc);
        head.keep_alive
            && !self.draining
            && s.keepalive_timeout_ms > 0
            && (s.keepalive_requests == 0 || self.scratch.served + 1 < s.keepalive_requests)
    }

    /// [`Worker::keep_alive`] for a response with `status`: a body announced with
    /// `Expect: 100-continue` and not asked for is not waited for after an error or a
    /// redirect (nginx sends no 100 Continue before those), so such a response closes the
    /// connection and says so.
    pub(crate) fn keep_alive_for(&self, head: &RequestHead, loc: LocationId, status: u16) -> bool {
        self.keep_alive(head, loc) && !(self.scratch.expect_unread && status >= 300)
    }

    /// The prepared answer of a location that only returns a constant text (see
    /// [`respond::ConstReturn`]); `None` for other locations.
    fn answer_const(
        &mut self,
        conn: &mut Conn,
        head: &RequestHead,
        loc: LocationId,
    ) -> Option<Outcome> {
        let c = self.returns.get(loc.0 as usize)?.as_ref()?;
        let keep = self.keep_alive_for(head, loc, c.code);
        let tokens = self.settings_for(loc).server_tokens != proton_ir::ServerTokens::Off;
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        write_status_line(&mut wbuf, head.minor_version, c.code);
        wbuf.extend_from_slice(self.date.server_and_date(tokens));
        wbuf.extend_from_slice(if keep { &c.keep_tail } else { &c.close_tail });
        let n = wbuf.len();
        if !head.is_head() {
            wbuf.extend_from_slice(&c.body);
        }
        let code = c.code;
        conn.wbuf = wbuf;
        self.scratch.mtime = None;
        Some(self.outcome(code, !keep, loc, n))
    }

    /// `return code [text]`.
    fn answer_return(
        &mut self,
        conn: &mut Conn,
        head: &RequestHead,
        code: u16,
        has_text: bool,
        loc: LocationId,
    ) -> Outcome {
        if code == 444 {
            // nginx closes the connection without a response.
            return Outcome {
                status: 444,
                close: true,
                ..self.outcome(444, true, loc, 0)
            };
        }
        if matches!(code, 301 | 302 | 303 | 307 | 308) && has_text {
            return self.answer_redirect(conn, head, code, loc);
        }
        if !has_text {
            if code >= 400 {
                return self.finish_status(conn, head, code, loc, false);
            }
            return self.simple(conn, head, code, loc, &[], None);
        }
        let body = std::mem::take(&mut self.scratch.tmp);
        let loaded = self.loaded;
        let ct = loaded
            .ir
            .locations
            .get(loc.0 as usize)
            .and_then(|l| loaded.ir.settings.get(l.conf.settings.0 as usize))
            .map_or("text/plain", |s| s.default_type.as_str());
        let out = self.simple(conn, head, code, loc, &body, Some(ct.as_bytes()));
        self.scratch.tmp = body;
        out
    }

    /// A response with a small in-memory body.
    fn simple(
        &mut self,
        conn: &mut Conn,
        head: &RequestHead,
        code: u16,
        loc: LocationId,
        body: &[u8],
        ct: Option<&[u8]>,
    ) -> Outcome {
        let keep = self.keep_alive_for(head, loc, code);
        let s = self.settings_for(loc);
        let (tokens, ka_hdr) = (
            (s.server_tokens != proton_ir::ServerTokens::Off),
            s.keepalive_header_secs,
        );
        let no_body = code == 204 || code == 304 || (100..200).contains(&code);
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        begin_head(
            self,
            &mut wbuf,
            &Head {
                minor: head.minor_version,
                status: code,
                content_type: if no_body { None } else { ct },
                content_length: if no_body {
                    None
                } else {
                    Some(body.len() as u64)
                },
                keep_alive: keep,
                keepalive_header_secs: ka_hdr,
                server_tokens: tokens,
            },
        );
        self.add_headers(conn, head, loc, code, &mut wbuf);
        let n = end_head(&mut wbuf);
        if !no_body && !head.is_head() {
            wbuf.extend_from_slice(body);
        }
        conn.wbuf = wbuf;
        self.outcome(code, !keep, loc, n)
    }

    /// Writes the status line and common headers of a response from location `loc`, with
    /// its keep-alive and server_tokens settings.
    pub(crate) fn start_head(
        &mut self,
        out: &mut Vec<u8>,
        head: &RequestHead,
        loc: LocationId,
        status: u16,
        content_type: Option<&[u8]>,
        content_length: Option<u64>,
    ) {
        let keep_alive = self.keep_alive_for(head, loc, status);
        let s = self.settings_for(loc);
        let h = Head {
            minor: head.minor_version,
            status,
            content_type,
            content_length,
            keep_alive,
            keepalive_header_secs: s.keepalive_header_secs,
            server_tokens: s.server_tokens != proton_ir::ServerTokens::Off,
        };
        begin_head(self, out, &h);
    }

    /// Appends the location's add_header lines that apply to `status`.
    pub(crate) fn add_headers(
        &mut self,
        conn: &Conn,
        head: &RequestHead,
        loc: LocationId,
        status: u16,
        out: &mut Vec<u8>,
    ) {
        let ir = &self.loaded.ir;
        let Some(l) = ir.locations.get(loc.0 as usize) else {
            return;
        };
        let s = &ir.settings[l.conf.settings.0 as usize];
        let ok_status = matches!(
            status,
            200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
        );
        if ok_status {
            let mtime = self.scratch.mtime.take();
            let now = self.date.unix_secs();
            super::static_files::expires_headers(s.expires, mtime, now, out);
        }
        for h in &s.add_headers {
            if !(h.always || ok_status) {
                continue;
            }
            // Expand straight into the head; drop the line again if the value is empty.
            let mark = out.len();
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            let value_at = out.len();
            self.ctx(conn, head, l.server, status).expand(&h.value, out);
            if out.len() == value_at {
                out.truncate(mark);
                continue;
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    /// A redirect to the URL in `scratch.tmp` (made absolute as nginx does).
    fn answer_redirect(
        &mut self,
        conn: &mut Conn,
        head: &RequestHead,
        code: u16,
        loc: LocationId,
    ) -> Outcome {
        let n = self.redirect_to_tmp(conn, head, code, loc);
        let keep = self.keep_alive_for(head, loc, code);
        self.outcome(code, !keep, loc, n)
    }

    /// Writes a redirect response to `scratch.tmp`; returns the head length.
    pub(crate) fn redirect_to_tmp(
        &mut self,
        conn: &mut Conn,
        head: &RequestHead,
        code: u16,
        loc: LocationId,
    ) -> usize {
        let target = std::mem::take(&mut self.scratch.tmp);
        let tokens = self.settings_for(loc).server_tokens != proton_ir::ServerTokens::Off;
        let mut body = std::mem::take(&mut self.scratch.page);
        body.clear();
        crate::http::response::error_page(code, tokens, &mut body);
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        self.start_head(
            &mut wbuf,
            head,
            loc,
            code,
            Some(b"text/html"),
            Some(body.len() as u64),
        );
        // A path is made absolute as nginx does by default (`server_name_in_redirect off`,
        // `port_in_redirect on`): the request's host, else the local address, and the local
        // port when it is not 80; written straight into the head.
        wbuf.extend_from_slice(b"Location: ");
        if target.starts_with(b"/") {
            wbuf.extend_from_slice(b"http://");
            let local = self.local_of(conn);
            if !self.scratch.host.is_empty() {
                wbuf.extend_from_slice(&self.scratch.host);
            } else if local.is_ipv6() {
                let _ = write!(wbuf, "[{}]", local.ip());
            } else {
                let _ = write!(wbuf, "{}", local.ip());
            }
            if local.port() != 80 {
                let _ = write!(wbuf, ":{}", local.port());
            }
        }
        wbuf.extend_from_slice(&target);
        wbuf.extend_from_slice(b"\r\n");
        self.scratch.tmp = target;
        self.add_headers(conn, head, loc, code, &mut wbuf);
        let n = end_head(&mut wbuf);
        if !head.is_head() {
            wbuf.extend_from_slice(&body);
        }
        conn.wbuf = wbuf;
        self.scratch.page = body;
        n
    }

    /// An error status with nginx's page (after error_page was considered).
    pub(crate) fn finish_status(
        &mut self,
        conn: &mut Conn,
        head: &RequestHead,
        status: u16,
        loc: LocationId,
        close: bool,
    ) -> Outcome {
        // nginx keeps the connection after an error page except for these
        // (ngx_http_special_response_handler): a 502 or 504 from a proxy keeps it.
        let keep = !close
            && self.keep_alive_for(head, loc, status)
            && !matches!(status, 400 | 413 | 414 | 500 | 501);
        let tokens = self.settings_for(loc).server_tokens != proton_ir::ServerTokens::Off;
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        wbuf.clear();
        let n = error_response(self, &mut wbuf, status, head.minor_version, keep, tokens);
        if head.is_head() {
            wbuf.truncate(n);
        }
        conn.wbuf = wbuf;
        self.outcome(status, !keep, loc, n)
    }

    /// Writes the access log entry of a finished response.
    pub(crate) fn log_access(&mut self, conn: &Conn) {
        let ir = &self.loaded.ir;
        let Some(loc_idx) = conn.finished.location() else {
            // Malformed requests are logged with the default server's logs.
            return self.log_access_default(conn);
        };
        let Some(loc) = ir.locations.get(loc_idx as usize) else {
            return;
        };
        let logs = &ir.settings[loc.conf.settings.0 as usize].access_log;
        if logs.iter().all(|l| matches!(l, proton_ir::AccessLog::Off)) {
            return;
        }
        let head = self.scratch.head.take().unwrap_or_default();
        // The worker's head is this request's unless another connection's request was
        // parsed meanwhile (a response that took more than one event loop round).
        let reparsed = if self.scratch.head_owner == Some((conn.key, conn.served)) {
            None
        } else {
            self.reparse(conn, &head)
        };
        let h: &RequestHead = reparsed.as_ref().unwrap_or(&head);
        let mut access = std::mem::take(&mut self.access);
        let ctx = self.ctx(conn, h, loc.server, conn.finished.status);
        let written = access.write(self.loaded, logs, &ctx);
        self.access = access;
        self.scratch.head = Some(head);
        if !written {
            self.log_path_refused(conn);
        }
    }

    fn log_path_refused(&mut self, conn: &Conn) {
        elog!(
            self.elog,
            Error,
            "access_log path not used: a variable in it has \"/\", a NUL byte, or is \".\" or \"..\", client: {}",
            conn.peer.ip()
        );
    }

    fn log_access_default(&mut self, conn: &Conn) {
        let Some(l) = self.loaded.ir.listeners.get(conn.listener as usize) else {
            return;
        };
        let Some(srv) = self.loaded.ir.servers.get(l.names.default.0 as usize) else {
            return;
        };
        let Some(loc) = self
            .loaded
            .ir
            .locations
            .get(srv.default_location.0 as usize)
        else {
            return;
        };
        let logs = &self.loaded.ir.settings[loc.conf.settings.0 as usize].access_log;
        let head = RequestHead::default();
        let mut access = std::mem::take(&mut self.access);
        let ctx = self.ctx(conn, &head, l.names.default, conn.finished.status);
        let written = access.write(self.loaded, logs, &ctx);
        self.access = access;
        if !written {
            self.log_path_refused(conn);
        }
    }

    /// The head of the request still in `conn.rbuf`, parsed again for logging.
    fn reparse(&self, conn: &Conn, head: &RequestHead) -> Option<RequestHead> {
        let mut h = RequestHead::default();
        let limits = crate::http::request::Limits {
            max_head: usize::MAX,
            max_uri: usize::MAX,
            max_headers: 100,
        };
        let _ = head;
        match crate::http::request::parse_head(
            &conn.rbuf[..conn.head_len.min(conn.rbuf.len())],
            &limits,
            &mut h,
        ) {
            Ok(crate::http::request::Parsed::Complete) => Some(h),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_host_into;
    use crate::http::request::validate_host;

    /// For every Host value the parser accepts, the key made from the part it cut out is
    /// what the full normalisation of the whole value gives: every value of up to 6 bytes
    /// over the bytes that matter.
    #[test]
    fn host_key_from_the_validated_part() {
        let mut out = Vec::new();
        let mut checked = 0;
        crate::testutil::each_string(b"aB.:[]1", 6, |value| {
            let Some(host) = validate_host(value) else {
                return;
            };
            normalize_host_into(&value[host], &mut out);
            let text = std::str::from_utf8(value).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&out),
                proton_ir::uri::normalize_host(text),
                "{text:?}"
            );
            checked += 1;
        });
        assert!(checked > 10_000, "{checked}");
    }
}
