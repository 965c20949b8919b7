//! Routing one request through the IR: server by Host, URI normalisation, the rewrite-phase
//! scripts (`rewrite`, `return`, `set`), location selection, internal redirects (bounded),
//! `error_page`, and the handler (return, static files).

use super::conn::Conn;
use super::context::RequestCtx;
use super::limits::Preaccess;
use super::respond::{begin_head, end_head, error_response, Head};
use super::vars::Ctx;
use super::{static_files, Worker};
use crate::elog;
use crate::http::response::write_status_line;
use proton_ir::rewrite::{
    run_script, select_location, Refusal, RouteHost, ScriptEnd, ScriptHost, Selected,
};
use proton_ir::{
    Builtin, FileTest, LocationId, Part, RegexId, ServerId, Settings, SourceRef, Template,
};
use std::io::Write;

/// Mirror subrequests one request may run at most (a bound nginx does not have: there, a
/// request's internal redirects and its locations' `mirror` lines bound them).
pub(crate) const MAX_MIRRORS: usize = 256;

/// Lowercases into `out` the host part that `validate_host` cut from a Host value or an
/// absolute-form target (no port, no blank, at most one trailing dot, already removed in
/// the usual case): an IPv6 literal keeps its brackets, as nginx's `$host` does
/// (`[::1]`), other names lose any trailing dot (as `proton_ir::uri::normalize_host`,
/// without allocating).
fn normalize_host_into(host: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut host = host;
    let literal_end = (host.first() == Some(&b'['))
        .then(|| host.iter().position(|&b| b == b']'))
        .flatten();
    if let Some(end) = literal_end {
        host = &host[..=end];
    } else {
        while let [rest @ .., b'.'] = host {
            host = rest;
        }
    }
    // Copied whole and lowercased in place (vectorised), not pushed byte by byte.
    out.extend_from_slice(host);
    out.make_ascii_lowercase();
}

/// Per-worker buffers lent to one call and given back before it returns. Nothing of a
/// request lives here across calls: that is the request's [`RequestCtx`].
#[derive(Default)]
pub(crate) struct Scratch {
    /// Buffers that `set`, rewrite, try_files and variable expansion (maps) borrow and
    /// give back.
    pub(crate) var_pool: std::cell::RefCell<super::vars::VarPool>,
    /// A filesystem path being built.
    pub(crate) path: Vec<u8>,
    /// The body of a built-in error or redirect page being written.
    pub(crate) page: Vec<u8>,
    /// A `Content-Type` value with the charset added (`charset`).
    pub(crate) ctype: Vec<u8>,
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
    /// An internal redirect to the URI in `RequestCtx::uri` (try_files fallback, index).
    Redirect,
    /// To a named location (`None`: no such location, 500).
    Named(Option<LocationId>),
    /// Proxied: the answer comes from the upstream, later.
    Proxy,
}

/// Why routing stopped at a location before its rewrite phase.
#[derive(Clone, Copy)]
enum Stop {
    /// An `internal` location reached from outside: 404.
    Internal,
    /// The announced body is over client_max_body_size: 413.
    TooLarge(u64),
    /// The location only returns a constant text, prepared once per worker.
    Const,
    /// The URI plus `/` names a proxied location: 301 there (nginx's auto_redirect).
    AutoRedirect,
}

/// The request as the rewrite engine (`proton_ir::rewrite`) sees it: the worker lends its
/// regexes and buffer pool, the request its URI, captures and variables.
struct Rewriter<'a, 'w> {
    w: &'a Worker<'w>,
    conn: &'a Conn,
    req: &'a mut RequestCtx,
    /// In error_page handling (no prepared constant answers: the status is the error's).
    in_error: bool,
    stop: Option<Stop>,
}

impl ScriptHost for Rewriter<'_, '_> {
    fn uri(&self) -> &[u8] {
        &self.req.uri
    }

    fn args(&self) -> &[u8] {
        &self.req.args
    }

    fn is_match(&self, id: RegexId, subject: &[u8]) -> bool {
        self.w.loaded.is_match(id, subject)
    }

    fn capture(&mut self, id: RegexId) -> bool {
        let hit = capture(self.w, self.req, id, Subject::Uri);
        if self.rewrite_log() {
            self.log_match(id, &self.req.uri, hit);
        }
        hit
    }

    fn expand_part(&mut self, part: &Part, out: &mut Vec<u8>) {
        self.w.ctx(self.conn, self.req, 0).expand_part(part, out);
    }

    fn set(&mut self, var: u32, value: &Template) {
        let mut out = self.w.scratch.var_pool.borrow_mut().buf();
        self.w.ctx(self.conn, self.req, 0).expand(value, &mut out);
        let old = match self.req.user.get_mut(var as usize) {
            Some(slot) => slot.replace(out),
            None => Some(out),
        };
        if let Some(old) = old {
            self.w.scratch.var_pool.borrow_mut().give_buf(old);
        }
    }

    fn set_builtin(&mut self, var: Builtin, value: &Template) {
        let mut out = self.w.scratch.var_pool.borrow_mut().buf();
        self.w.ctx(self.conn, self.req, 0).expand(value, &mut out);
        set_builtin(self.w, self.conn, self.req, var, &out);
        self.w.scratch.var_pool.borrow_mut().give_buf(out);
    }

    fn rewrite_uri(&mut self, path: &[u8], args: Option<&[u8]>, _source: SourceRef) {
        let r = &mut *self.req;
        r.uri.clear();
        r.uri.extend_from_slice(path);
        if let Some(a) = args {
            r.args.clear();
            r.args.extend_from_slice(a);
        }
        r.uri_changed = true;
        r.rewritten_here = true;
        r.internal = true;
        if self.rewrite_log() {
            elog!(
                self.w.elog,
                Notice,
                "rewritten data: \"{}\", args: \"{}\", client: {}",
                String::from_utf8_lossy(&self.req.uri),
                String::from_utf8_lossy(&self.req.args),
                self.conn.peer.ip()
            );
        }
    }

    fn buffer(&mut self) -> Vec<u8> {
        self.w.scratch.var_pool.borrow_mut().buf()
    }

    fn give_back(&mut self, buf: Vec<u8>) {
        self.w.scratch.var_pool.borrow_mut().give_buf(buf);
    }

    fn capture_on(&mut self, id: RegexId, subject: &[u8]) -> bool {
        let hit = capture_text(self.w, &mut self.req.captures, id, subject);
        if self.rewrite_log() {
            self.log_match(id, subject, hit);
        }
        hit
    }

    fn file_test(&mut self, test: FileTest, path: &[u8]) -> bool {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::PermissionsExt;
        if path.is_empty() || path.contains(&0) {
            return false;
        }
        // As nginx's open_cached_file: the location's disable_symlinks applies (a refused
        // link is a file that cannot be opened).
        if let Some(loc) = self.req.location {
            if super::static_files::symlink_check(self.w, self.conn, self.req, loc, path).is_err() {
                return false;
            }
        }
        let p = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        let meta = if p.is_absolute() {
            std::fs::metadata(p)
        } else {
            std::fs::metadata(self.w.loaded.prefix.join(p))
        };
        let Ok(m) = meta else {
            return false;
        };
        match test {
            FileTest::File => m.is_file(),
            FileTest::Dir => m.is_dir(),
            FileTest::Exists => true,
            // nginx's ngx_is_exec: the owner's execute bit, directories included.
            FileTest::Exec => m.permissions().mode() & 0o100 != 0,
        }
    }

    fn enter(&mut self, loc: LocationId) {
        self.req.location = Some(loc);
        // nginx's content handler stays that of the last block that had one: an `if` with
        // its own proxy_pass keeps it for a later `if` without (which then has no upstream).
        if self
            .w
            .loaded
            .ir
            .locations
            .get(loc.0 as usize)
            .is_some_and(|l| l.conf.proxy.is_some())
        {
            self.req.if_proxy = true;
        }
    }

    fn uri_quoted(&self) -> bool {
        let target = self
            .conn
            .rbuf
            .get(self.req.head.target.clone())
            .unwrap_or_default();
        let path = target.split(|&b| b == b'?').next().unwrap_or_default();
        memchr::memchr2(b'%', b'+', path).is_some()
    }
}

impl Rewriter<'_, '_> {
    /// `rewrite_log` of the level the script runs in.
    fn rewrite_log(&self) -> bool {
        self.req
            .location
            .is_some_and(|l| self.w.settings_for(l).rewrite_log)
    }

    /// nginx's rewrite_log line for regex `id` tested on `subject`.
    fn log_match(&self, id: RegexId, subject: &[u8], hit: bool) {
        let pattern = self
            .w
            .loaded
            .ir
            .regexes
            .get(id.0 as usize)
            .map_or("", |r| r.pattern.as_str());
        elog!(
            self.w.elog,
            Notice,
            "\"{pattern}\" {} \"{}\", client: {}",
            if hit { "matches" } else { "does not match" },
            String::from_utf8_lossy(subject),
            self.conn.peer.ip()
        );
    }
}

impl RouteHost for Rewriter<'_, '_> {
    fn found(
        &mut self,
        loc_id: LocationId,
        _m: &proton_ir::LocationMatch,
        refused: Option<Refusal>,
    ) -> bool {
        let ir = &self.w.loaded.ir;
        self.req.location = Some(loc_id);
        self.req.rewritten_here = false;
        // A new location: no content handler yet (nginx's find_config_phase).
        self.req.if_proxy = false;
        if refused == Some(Refusal::SlashRedirect) {
            self.stop = Some(Stop::AutoRedirect);
            return false;
        }
        let Some(loc) = ir.locations.get(loc_id.0 as usize) else {
            return true;
        };
        self.w.elog.select(Some(loc.conf.settings));
        if refused == Some(Refusal::Internal) {
            self.stop = Some(Stop::Internal);
            return false;
        }
        let settings = &ir.settings[loc.conf.settings.0 as usize];
        if let Some(n) = self.req.head.content_length {
            if settings.client_max_body_size > 0 && n > settings.client_max_body_size {
                self.stop = Some(Stop::TooLarge(n));
                return false;
            }
        }
        if !self.in_error
            && loc.conf.limit_except.is_none()
            && matches!(self.w.loaded.returns.get(loc_id.0 as usize), Some(Some(_)))
        {
            self.stop = Some(Stop::Const);
            return false;
        }
        true
    }

    fn method(&self) -> &[u8] {
        self.conn
            .rbuf
            .get(self.req.head.method_range.clone())
            .unwrap_or_default()
    }

    fn internal(&self) -> bool {
        self.req.internal
    }
}

/// Runs regex `id` on the request's URI or host; on a match, its groups become `$1`… and
/// its named groups `$name`, as after an nginx regex match. Returns whether it matched.
pub(crate) fn capture(w: &Worker<'_>, req: &mut RequestCtx, id: RegexId, on: Subject) -> bool {
    let text: &[u8] = match on {
        Subject::Uri => &req.uri,
        Subject::Host => &req.host,
    };
    capture_text(w, &mut req.captures, id, text)
}

/// Runs regex `id` on `text`; on a match its groups go to `caps`.
fn capture_text(
    w: &Worker<'_>,
    caps: &mut super::vars::Captures,
    id: RegexId,
    text: &[u8],
) -> bool {
    let Some(re) = w.loaded.regexes.get(id.0 as usize) else {
        return false;
    };
    w.scratch
        .var_pool
        .borrow_mut()
        .capture(caps, id.0 as usize, re, text)
}

impl<'a> Worker<'a> {
    /// Settings of the default server of IR listener `l` (used before Host is known).
    pub(crate) fn default_settings(&self, l: usize) -> Option<&Settings> {
        let ir = &self.loaded.ir;
        let sid = ir.listeners.get(l)?.names.default;
        ir.server_settings(ir.servers.get(sid.0 as usize)?)
    }

    /// Whether a plain connection is to be looked at for the HTTP/2 preface (h2c with prior
    /// knowledge): `listen … http2`, or `http2 on` in the address's default server.
    pub(crate) fn http2_plain(&self, c: &super::conn::Conn) -> bool {
        let l = c.listener as usize;
        c.tls().is_none()
            && (self.loaded.ir.listeners.get(l).is_some_and(|l| l.http2)
                || self.default_settings(l).is_some_and(|s| s.http2.enabled))
    }

    /// Whether HTTP/2 may serve server `sid` on address `listener`: `http2 on` in the server,
    /// or `listen … http2`.
    pub(crate) fn http2_allowed(&self, listener: usize, sid: ServerId) -> bool {
        let ir = &self.loaded.ir;
        ir.listeners.get(listener).is_some_and(|l| l.http2)
            || ir
                .servers
                .get(sid.0 as usize)
                .and_then(|s| ir.server_settings(s))
                .is_some_and(|s| s.http2.enabled)
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

    /// Answers the request whose context (head parsed) is `req`, writing into `conn`.
    /// With `error`, the parser refused the request with that status: it is answered (the
    /// default server's error_page applies, as in nginx) without routing.
    pub(crate) fn handle_request(
        &mut self,
        conn: &mut Conn,
        req: &mut RequestCtx,
        error: Option<u16>,
    ) -> Outcome {
        let ok = self.prepare(conn, req);
        let server_default = self.loaded.ir.servers[req.server.0 as usize].default_location;
        if let Some(code) = error {
            return self.route(conn, req, Some((server_default, code)), None);
        }
        if ok {
            if let Some(sni_server) = self.misdirected(conn, req) {
                elog!(
                    self.elog,
                    Info,
                    "client attempted to request the server name different from the one that was negotiated while reading client request headers, client: {}",
                    conn.peer.ip()
                );
                // Answered by the server the SNI name chose (its error_page).
                req.server = sni_server;
                let default = self.loaded.ir.servers[sni_server.0 as usize].default_location;
                req.location = Some(default);
                return self.route(conn, req, Some((default, 421)), None);
            }
        }
        if ok
            && super::h2::is_stream(conn)
            && !self.http2_allowed(conn.listener as usize, req.server)
        {
            // As nginx: an HTTP/2 request for a server with HTTP/2 off (reached by Host on
            // a connection another server's settings made HTTP/2).
            elog!(
                self.elog,
                Info,
                "client attempted to request the server name for which the negotiated protocol is disabled while reading client request headers, client: {}",
                conn.peer.ip()
            );
            let default = self.loaded.ir.servers[req.server.0 as usize].default_location;
            req.location = Some(default);
            return self.route(conn, req, Some((default, 421)), None);
        }
        if ok && conn.tls().is_some_and(super::tls::TlsConn::is_plain) {
            // nginx: the server is chosen by Host, then the request is refused with the
            // 497 page (a 400 on the wire) through that server's error_page.
            elog!(
                self.elog,
                Info,
                "client sent plain HTTP request to HTTPS port, client: {}",
                conn.peer.ip()
            );
            req.head.refuse_body_and_keepalive();
            req.location = Some(server_default);
            return self.route(conn, req, Some((server_default, 497)), None);
        }
        if !ok {
            elog!(
                self.elog,
                Info,
                "client sent invalid request URI, client: {}",
                conn.peer.ip()
            );
            req.head.refuse_body_and_keepalive();
            // nginx refuses it with the request line, before any header was read: no
            // host, the default server.
            req.host.clear();
            let ir = &self.loaded.ir;
            if let Some(l) = ir.listeners.get(conn.listener as usize) {
                req.server = l.names.default;
            }
            let server_default = ir.servers[req.server.0 as usize].default_location;
            req.location = Some(server_default);
            return self.route(conn, req, Some((server_default, 400)), None);
        }
        if let Some(code) = self.client_certificate_refused(conn, req) {
            req.head.refuse_body_and_keepalive();
            return self.route(conn, req, Some((server_default, code)), None);
        }
        // nginx's post-read phase: realip with the server's settings.
        if let Some(l) = req.location {
            self.realip(conn, req, l);
        }
        self.route(conn, req, None, None)
    }

    /// nginx's check of a TLS connection whose SNI name differs from the request's Host:
    /// when the server the Host chooses verifies client certificates, the request is
    /// misdirected (421), since the certificate was checked with the SNI server's settings.
    /// Returns the server the SNI name chose.
    fn misdirected(&self, conn: &Conn, req: &RequestCtx) -> Option<ServerId> {
        conn.tls_session()?;
        let sni = conn.tls()?.server_name.as_deref()?;
        if sni.as_bytes().eq_ignore_ascii_case(&req.host) {
            return None;
        }
        let ir = &self.loaded.ir;
        let verifies = ir
            .servers
            .get(req.server.0 as usize)
            .and_then(|s| s.tls.as_deref())
            .is_some_and(|t| t.verify_client != proton_ir::VerifyClient::Off);
        if !verifies {
            return None;
        }
        let l = ir.listeners.get(conn.listener as usize)?;
        let loaded = self.loaded;
        let sni = sni.to_ascii_lowercase();
        Some(
            ir.find_server(l, sni.as_bytes(), &mut |id, s| loaded.is_match(id, s))
                .0,
        )
    }

    /// nginx's check of the client's certificate once the request head is read, with the
    /// settings of the server the Host chose: 495 when it does not verify (unless
    /// `optional_no_ca` tolerates the error), 496 when `ssl_verify_client on` and none was
    /// sent.
    fn client_certificate_refused(&mut self, conn: &Conn, req: &RequestCtx) -> Option<u16> {
        use proton_ir::VerifyClient;
        let mode = self
            .loaded
            .ir
            .servers
            .get(req.server.0 as usize)?
            .tls
            .as_deref()?
            .verify_client;
        if mode == VerifyClient::Off {
            return None;
        }
        let t = conn.tls()?;
        t.session()?;
        match t.client_verify() {
            proton_tls::Verdict::Failed(e)
                if mode != VerifyClient::OptionalNoCa || !e.is_no_ca() =>
            {
                elog!(
                    self.elog,
                    Info,
                    "client SSL certificate verify error: ({}:{}) while reading client request headers, client: {}",
                    e.code(),
                    e.reason(),
                    conn.peer.ip()
                );
                Some(495)
            }
            proton_tls::Verdict::None if mode == VerifyClient::On => {
                elog!(
                    self.elog,
                    Info,
                    "client sent no required SSL certificate while reading client request headers, client: {}",
                    conn.peer.ip()
                );
                Some(496)
            }
            _ => None,
        }
    }

    /// The `post_action` the request just answered may run: its location's, unless the
    /// request is running one already.
    pub(crate) fn post_action_of(&self, req: &RequestCtx) -> Option<&'a str> {
        if req.post_action {
            return None;
        }
        let loaded = self.loaded;
        let loc = loaded.ir.locations.get(req.location?.0 as usize)?;
        loaded
            .ir
            .settings
            .get(loc.conf.settings.0 as usize)?
            .post_action
            .as_deref()
    }

    /// The `post_action` of the location that answered `req`, if it has one and the request
    /// may run it: the response is out; the request is redirected internally to the URI
    /// (without arguments, as nginx) or the named location, with `req.post_action` set so
    /// that its output is thrown away (the caller drops what was written; a proxied post
    /// action discards the upstream's answer itself). Returns `None` when there is none.
    pub(crate) fn post_action(&mut self, conn: &mut Conn, req: &mut RequestCtx) -> Option<Outcome> {
        let loaded = self.loaded;
        let target = self.post_action_of(req)?;
        elog!(
            self.elog,
            Debug,
            "*{} post action: \"{target}\"",
            conn.number
        );
        req.post_action = true;
        req.internal = true;
        if !req.budget.spend() {
            return None;
        }
        let server = loaded.ir.servers.get(req.server.0 as usize)?;
        if target.starts_with('@') {
            let Some(&(_, named)) = server.named.iter().find(|(n, _)| n == target) else {
                elog!(
                    self.elog,
                    Error,
                    "could not find named location \"{target}\", client: {}",
                    conn.peer.ip()
                );
                return None;
            };
            return Some(self.route(conn, req, None, Some(named)));
        }
        req.uri.clear();
        req.uri.extend_from_slice(target.as_bytes());
        req.args.clear();
        req.uri_changed = true;
        Some(self.route(conn, req, None, None))
    }

    /// nginx's mirror handler (precontent phase, main request only): the request reached
    /// the content handler of `loc`; each of its `mirror` URIs becomes a subrequest to run
    /// once the response is out, with the request's arguments as they are now. At most
    /// [`MAX_MIRRORS`] per request, beyond that an error line.
    pub(crate) fn note_mirrors(&mut self, conn: &Conn, req: &mut RequestCtx, loc: LocationId) {
        if req.mirror_sub || req.post_action || req.subrequest {
            return;
        }
        let ir = &self.loaded.ir;
        let Some(l) = ir.locations.get(loc.0 as usize) else {
            return;
        };
        let sid = l.conf.settings.0;
        let Some(s) = ir.settings.get(sid as usize) else {
            return;
        };
        if s.mirror.is_empty() {
            return;
        }
        let room = MAX_MIRRORS.saturating_sub(req.mirrors.len());
        if s.mirror.len() > room {
            elog!(
                self.elog,
                Error,
                "too many mirror subrequests while processing \"{}\", client: {}",
                s.mirror[room.min(s.mirror.len() - 1)],
                conn.peer.ip()
            );
        }
        if room == 0 {
            return;
        }
        let start = req.mirror_args.len() as u32;
        req.mirror_args.extend_from_slice(&req.args);
        let end = req.mirror_args.len() as u32;
        for index in 0..s.mirror.len().min(room) {
            req.mirrors.push(super::context::PendingMirror {
                settings: sid,
                index: index as u16,
                body: s.mirror_request_body,
                get: req.error_status.is_some() || req.xar,
                args: start..end,
            });
        }
    }

    /// Runs the first pending mirror of `req` as a subrequest (nginx's
    /// `ngx_http_subrequest`): the request, with its method, headers, `set` variables and
    /// body, goes to the mirror URI with the arguments noted, as an internal request whose
    /// output the caller throws away. `None` when the mirror is gone from the IR.
    pub(crate) fn start_mirror(
        &mut self,
        conn: &mut Conn,
        req: &mut RequestCtx,
    ) -> Option<Outcome> {
        let m = req.mirrors.first()?.clone();
        let uri = self
            .loaded
            .ir
            .settings
            .get(m.settings as usize)?
            .mirror
            .get(m.index as usize)?;
        let args = req
            .mirror_args
            .get(m.args.start as usize..m.args.end as usize)
            .unwrap_or_default();
        elog!(
            self.elog,
            Debug,
            "*{} http subrequest \"{uri}?{}\"",
            conn.number,
            String::from_utf8_lossy(args)
        );
        req.args.clear();
        req.args.extend_from_slice(args);
        req.uri.clear();
        req.uri.extend_from_slice(uri.as_bytes());
        req.start_subrequest(m.get);
        Some(self.route(conn, req, None, None))
    }

    /// `proxy_cache_background_update`: the request goes on as the subrequest that fetches
    /// the stale object it was sent again, in location `loc` with the URI and arguments it
    /// had there (nginx's cloned subrequest); `None` when it does not go upstream.
    pub(crate) fn start_cache_update(
        &mut self,
        conn: &mut Conn,
        req: &mut RequestCtx,
        loc: LocationId,
    ) -> Option<Outcome> {
        let uri = std::mem::take(&mut req.update_uri);
        let args = std::mem::take(&mut req.update_args);
        req.uri.clear();
        req.uri.extend_from_slice(&uri);
        req.args.clear();
        req.args.extend_from_slice(&args);
        req.update_uri = uri;
        req.update_args = args;
        req.start_subrequest(false);
        req.cache_updater = true;
        req.location = Some(loc);
        match self.proxy_start(conn, req, loc) {
            Handled::Proxy => Some(Outcome {
                proxy: true,
                ..self.outcome(0, false, loc, 0)
            }),
            _ => None,
        }
    }

    /// A proxied request failed before anything was sent to the client: answers `status`
    /// for the location that proxied it, through its error_page, with the request's own
    /// state (URI after rewrites, `set` values, captures) as the proxy left it.
    pub(crate) fn proxy_error(&mut self, conn: &mut Conn, status: u16) -> Outcome {
        let Some(mut req) = conn.req.take() else {
            let loc = LocationId(conn.finished.location().unwrap_or(0));
            return self.finish_status(conn, &RequestCtx::default(), status, loc, true);
        };
        let loc = req
            .location
            .unwrap_or(LocationId(conn.finished.location().unwrap_or(0)));
        // A request body that has not all arrived is not waited for: the error answer
        // closes the connection (as for an unread `Expect: 100-continue` body).
        req.expect_unread = super::proxy::body_still_arriving(conn);
        let out = self.route(conn, &mut req, Some((loc, status)), None);
        req.expect_unread = false;
        conn.req = Some(req);
        out
    }

    /// `X-Accel-Redirect` in the upstream's answer (`upstream_head` of the request): an
    /// internal redirect to the URI it names (checked as nginx's `ngx_http_parse_unsafe_uri`:
    /// 404 for `..` segments or a NUL), a GET unless the request is a HEAD, or to a named
    /// location (`@name`); the upstream's Content-Type, Set-Cookie, Content-Disposition,
    /// Cache-Control, Expires and Accept-Ranges go with the answer (see `add_headers`).
    pub(crate) fn proxy_xar(&mut self, conn: &mut Conn) -> Outcome {
        let Some(mut req) = conn.req.take() else {
            let loc = LocationId(conn.finished.location().unwrap_or(0));
            return self.finish_status(conn, &RequestCtx::default(), 500, loc, true);
        };
        let loc = req
            .location
            .unwrap_or(LocationId(conn.finished.location().unwrap_or(0)));
        req.expect_unread = super::proxy::body_still_arriving(conn);
        req.xar = true;
        req.internal = true;
        let mut target = self.scratch.var_pool.borrow_mut().buf();
        if let Some((_, v)) = super::vars::head_fields(&req.upstream_head)
            .find(|(n, _)| n.eq_ignore_ascii_case(b"x-accel-redirect"))
        {
            target.extend_from_slice(v.trim_ascii());
        }
        let out = if !req.budget.spend() {
            self.redirect_cycle(conn, &req)
        } else if target.starts_with(b"@") {
            let ir = &self.loaded.ir;
            let named = std::str::from_utf8(&target)
                .ok()
                .and_then(|n| ir.find_named(req.server, n));
            match named {
                Some(l) => self.route(conn, &mut req, None, Some(l)),
                None => {
                    elog!(
                        self.elog,
                        Error,
                        "could not find named location \"{}\", client: {}",
                        String::from_utf8_lossy(&target),
                        conn.peer.ip()
                    );
                    self.finish_status(conn, &req, 500, loc, false)
                }
            }
        } else {
            let (mut uri, mut args) = (std::mem::take(&mut req.uri), std::mem::take(&mut req.args));
            if proton_ir::uri::parse_unsafe_uri(&target, &mut uri, &mut args) {
                req.uri = uri;
                req.args = args;
                req.uri_changed = true;
                self.route(conn, &mut req, None, None)
            } else {
                elog!(
                    self.elog,
                    Error,
                    "unsafe URI \"{}\" was detected, client: {}",
                    String::from_utf8_lossy(&target),
                    conn.peer.ip()
                );
                req.uri = uri;
                req.args = args;
                self.finish_status(conn, &req, 404, loc, false)
            }
        };
        self.scratch.var_pool.borrow_mut().give_buf(target);
        req.expect_unread = false;
        conn.req = Some(req);
        out
    }

    /// Host, server, URI and arguments of the request; false when the URI does not
    /// normalise (400).
    fn prepare(&mut self, conn: &Conn, req: &mut RequestCtx) -> bool {
        let ir = &self.loaded.ir;
        let head = &req.head;
        // Host: the absolute-form authority, else the Host header (lowercased, no port).
        let host_raw = head
            .absolute_host
            .clone()
            .or_else(|| head.host.clone())
            .and_then(|r| conn.rbuf.get(r))
            .unwrap_or(b"");
        normalize_host_into(host_raw, &mut req.host);
        let listener = ir.listeners.get(conn.listener as usize);
        let (sid, how) = match listener {
            Some(l) => {
                let loaded = &self.loaded;
                ir.find_server(l, &req.host, &mut |id, s| loaded.is_match(id, s))
            }
            None => (ServerId(0), proton_ir::ServerMatch::Default),
        };
        req.server = sid;
        // The server's own level applies until a location is found (`$document_root` in
        // the server's rewrite phase).
        req.location = ir.servers.get(sid.0 as usize).map(|s| s.default_location);
        if let Some(l) = req.location.and_then(|l| ir.locations.get(l.0 as usize)) {
            self.elog.select(Some(l.conf.settings));
        }
        // Once the server is known, so that the line goes to its error_log.
        elog!(
            self.elog,
            Debug,
            "*{} http request line: \"{}\"",
            conn.number,
            String::from_utf8_lossy(crate::http::request::request_line(&conn.rbuf, 8192))
        );
        let target = conn.rbuf.get(req.head.target.clone()).unwrap_or(b"/");
        let args_start = target.iter().position(|&b| b == b'?');
        req.args.clear();
        if let Some(i) = args_start {
            let a = &target[i + 1..];
            let end = a.iter().position(|&b| b == b'#').unwrap_or(a.len());
            req.args.extend_from_slice(&a[..end]);
        }
        if let Some(l) = req.location {
            let s = self.settings_for(l);
            if s.ignore_invalid_headers {
                let underscores = s.underscores_in_headers;
                if req.head.drop_invalid_headers(&conn.rbuf, underscores) > 0 {
                    elog!(
                        self.elog,
                        Info,
                        "client sent invalid header line, client: {}",
                        conn.peer.ip()
                    );
                }
            }
        }
        // nginx normalises the URI with the request line, before Host is known: the
        // default server of the address decides merge_slashes.
        let merge = listener
            .and_then(|l| ir.servers.get(l.names.default.0 as usize))
            .is_none_or(|s| self.settings_for(s.default_location).merge_slashes);
        let ok = crate::http::request::normalize_target(&req.head, &conn.rbuf, merge, &mut req.uri);
        // Every user variable starts unset (a pooled context comes back with none set).
        req.user.resize(ir.user_vars.len(), None);
        // A regex server name's groups are variables for the whole request.
        if let (Some(l), proton_ir::ServerMatch::Regex(i)) = (listener, how) {
            if let Some((re, _)) = l.names.regex.get(i) {
                capture(self, req, *re, Subject::Host);
            }
        }
        ok
    }

    /// Runs nginx's phases for the request: the server's rewrite script, then location
    /// selection with each location's rewrite script (again while the URI changes), then
    /// the content handler, with error_page and internal redirects. With `pending`, starts at
    /// that location's error_page handling of that status instead (a failed proxy); with
    /// `named_start`, at that named location (the server's script does not run again).
    fn route(
        &mut self,
        conn: &mut Conn,
        req: &mut RequestCtx,
        mut pending: Option<(LocationId, u16)>,
        named_start: Option<LocationId>,
    ) -> Outcome {
        let loaded = self.loaded;
        let ir = &loaded.ir;
        let sid = req.server;
        let server = &ir.servers[sid.0 as usize];
        let server_default = server.default_location;
        if pending.is_none() && named_start.is_none() && req.limits.resume.is_none() {
            let mut h = Rewriter {
                w: &*self,
                conn: &*conn,
                req: &mut *req,
                in_error: false,
                stop: None,
            };
            match run_script(&mut h, &server.script, false, &mut None) {
                ScriptEnd::Done | ScriptEnd::Reroute => {}
                // `return CODE` of an error without text goes through error_page.
                ScriptEnd::Return { code, text: None } if code >= 400 && code != 444 => {
                    pending = Some((server_default, code));
                }
                end => return self.script_answer(conn, req, end, server_default, None),
            }
        }
        if pending.is_some() {
            req.internal = true;
        }
        let mut error_status: Option<(u16, Option<u16>)> = None;
        let mut named: Option<LocationId> = named_start;
        loop {
            let (loc_id, handled) = match pending.take() {
                // A failed proxy starts at its location's error_page handling.
                Some((loc_id, code)) => (loc_id, Handled::Status(code)),
                None => {
                    // A request limit_req delayed goes on at its location's access phase.
                    let resumed = req.limits.resume.take();
                    let (selected, stop) = match resumed {
                        Some((l, es)) => {
                            error_status = es;
                            (Selected::Content(l), None)
                        }
                        None => {
                            // A location chosen afresh runs the access phase afresh.
                            req.auth.restart();
                            let mut h = Rewriter {
                                w: &*self,
                                conn: &*conn,
                                req: &mut *req,
                                in_error: error_status.is_some(),
                                stop: None,
                            };
                            let mut budget = h.req.budget;
                            let selected =
                                select_location(ir, &mut h, sid, named.take(), &mut budget);
                            let stop = h.stop;
                            req.budget = budget;
                            (selected, stop)
                        }
                    };
                    match selected {
                        Selected::Content(l) => {
                            let loc = &ir.locations[l.0 as usize];
                            // (After a delay, limit_req is done and limit_conn runs.)
                            if resumed.is_none() {
                                self.realip(conn, req, l);
                            }
                            let pre = self.preaccess(conn, req, l);
                            let handled = if let Preaccess::Status(code) = pre {
                                Handled::Status(code)
                            } else if let Preaccess::Delay(ms) = pre {
                                // Waits on the worker's timers; the connection resumes
                                // routing here (`Worker::resume_delayed`).
                                req.limits.resume = Some((l, error_status));
                                let at = self.now + std::time::Duration::from_millis(ms);
                                super::conn::wake_at(req, (conn.key, conn.number), at, self);
                                return self.outcome(0, false, l, 0);
                            } else if let Some(h) = match self.access_phase(conn, req, l) {
                                super::auth::AccessEnd::Go => None,
                                super::auth::AccessEnd::Status(code) => Some(Handled::Status(code)),
                                super::auth::AccessEnd::Wait => {
                                    // The auth subrequest or auth_delay: routing resumes
                                    // here once it is over.
                                    req.limits.resume = Some((l, error_status));
                                    return self.outcome(0, false, l, 0);
                                }
                            } {
                                h
                            } else if loc.conf.proxy.is_some() {
                                // try_files first (nginx's precontent phase): a candidate
                                // found becomes the URI the upstream gets.
                                if loc.conf.try_files.is_empty() {
                                    self.note_mirrors(conn, req, l);
                                }
                                match static_files::try_files(
                                    self,
                                    conn,
                                    req,
                                    l,
                                    error_status,
                                    false,
                                ) {
                                    Some(h) => h,
                                    None => self.proxy_start(conn, req, l),
                                }
                            } else if loc.conf.stub_status {
                                self.stub_status(conn, req, l)
                            } else if loc.conf.proton_metrics {
                                self.proton_metrics(conn, req, l)
                            } else if req.if_proxy && loc.kind == proton_ir::LocationKind::If {
                                // The proxy handler of an earlier `if`, with this block's
                                // configuration, which has no proxy_pass (nginx: 500).
                                elog!(self.elog, Alert, "no upstream configuration");
                                Handled::Status(500)
                            } else {
                                // With try_files, mirrors are noted once it found a file
                                // (nginx runs try_files first in the precontent phase).
                                if loc.conf.try_files.is_empty() {
                                    self.note_mirrors(conn, req, l);
                                }
                                static_files::serve(self, conn, req, l, error_status)
                            };
                            (l, handled)
                        }
                        Selected::Stopped(l) => match stop {
                            Some(Stop::Internal) | None => {
                                return self.finish_status(conn, req, 404, l, false)
                            }
                            Some(Stop::TooLarge(n)) => {
                                elog!(
                                    self.elog,
                                    Error,
                                    "client intended to send too large body: {n} bytes, client: {}",
                                    conn.peer.ip()
                                );
                                return self.finish_status(conn, req, 413, l, true);
                            }
                            Some(Stop::AutoRedirect) => {
                                req.set_slash_redirect();
                                return self.answer_redirect(conn, req, 301, l);
                            }
                            Some(Stop::Const) => match self.answer_const(conn, req, l) {
                                Some(out) => return out,
                                None => return self.finish_status(conn, req, 500, l, false),
                            },
                        },
                        // `return CODE` of an error without text goes through error_page.
                        Selected::Answered(l, ScriptEnd::Return { code, text: None })
                            if code >= 400 && code != 444 =>
                        {
                            (l, Handled::Status(code))
                        }
                        // A redirect `return` goes through an error_page for its code, as in
                        // nginx (whose error_page then drops the first Location).
                        Selected::Answered(l, ScriptEnd::Return { code, text })
                            if matches!(code, 301 | 302 | 303 | 307 | 308)
                                && error_status.is_none()
                                && self
                                    .settings_for(l)
                                    .error_pages
                                    .iter()
                                    .any(|e| e.codes.contains(&code)) =>
                        {
                            if let Some(t) = text {
                                let mut url = std::mem::take(&mut req.redirected);
                                url.clear();
                                self.ctx(conn, req, code).expand(t, &mut url);
                                req.redirected = url;
                            }
                            (l, Handled::Status(code))
                        }
                        Selected::Answered(l, end) => {
                            return self.script_answer(conn, req, end, l, error_status)
                        }
                        Selected::Cycle => return self.redirect_cycle(conn, req),
                    }
                }
            };
            match handled {
                Handled::Done {
                    status,
                    header_bytes,
                } => {
                    // The head said whether the connection stays; the connection does what
                    // it said (the same decision: `now_ms` is fixed for this event).
                    let keep = self.keep_alive_for(req, loc_id, status);
                    return self.outcome(status, !keep, loc_id, header_bytes);
                }
                Handled::Redirect => {
                    req.uri_changed = true;
                }
                Handled::Named(found) => match found {
                    Some(l) => named = Some(l),
                    None => return self.finish_status(conn, req, 500, loc_id, false),
                },
                Handled::Proxy => {
                    return Outcome {
                        proxy: true,
                        ..self.outcome(0, false, loc_id, 0)
                    };
                }
                Handled::Status(code) => {
                    if let Some(out) =
                        self.error_page(conn, req, loc_id, code, &mut error_status, &mut named)
                    {
                        return out;
                    }
                }
            }
            // An internal redirect (try_files, index, a named location, error_page).
            req.internal = true;
            if !req.budget.spend() {
                return self.redirect_cycle(conn, req);
            }
        }
    }

    /// Routing of a request `limit_req` delayed goes on, once its delay is over.
    pub(crate) fn resume_delayed(&mut self, conn: &mut Conn, req: &mut RequestCtx) -> Outcome {
        self.route(conn, req, None, None)
    }

    /// nginx's realip module with the settings of `loc`: once per request, when the peer
    /// is trusted and the header names a client, that address becomes the request's client.
    pub(crate) fn realip(&self, conn: &Conn, req: &mut RequestCtx, loc: LocationId) {
        if req.client.is_some() {
            return;
        }
        let Some(r) = self.settings_for(loc).realip.as_deref() else {
            return;
        };
        let unix = self
            .loaded
            .ir
            .listeners
            .get(conn.listener as usize)
            .is_some_and(|l| l.addr.starts_with("unix:"));
        let peer = (!unix).then(|| conn.peer.ip());
        let name = r.header.as_bytes();
        if name == proton_ir::RealIp::PROXY_PROTOCOL.as_bytes() {
            // The client the PROXY protocol header named, port included, when the
            // connection comes from a trusted address.
            if let Some(a) = conn.proxy_addrs().filter(|_| r.trusts(peer)) {
                req.client = Some(a.src);
            }
            return;
        }
        let found = if name == b"x-forwarded-for" {
            // Every X-Forwarded-For line, in order, as one list.
            let mut list = self.scratch.var_pool.borrow_mut().buf();
            for (n, v) in req.head.headers() {
                let (Some(n), Some(v)) = (conn.rbuf.get(n), conn.rbuf.get(v)) else {
                    continue;
                };
                if n.eq_ignore_ascii_case(name) {
                    if !list.is_empty() {
                        list.push(b',');
                    }
                    list.extend_from_slice(v);
                }
            }
            let found = (!list.is_empty())
                .then(|| r.client(peer, &list, true))
                .flatten();
            self.scratch.var_pool.borrow_mut().give_buf(list);
            found
        } else {
            super::vars::header(&req.head, &conn.rbuf, name).and_then(|v| r.client(peer, v, false))
        };
        if let Some(ip) = found {
            req.client = Some(std::net::SocketAddr::new(ip, 0));
        }
    }

    /// nginx's answer to a request that changed its URI too often.
    fn redirect_cycle(&mut self, conn: &mut Conn, req: &RequestCtx) -> Outcome {
        elog!(
            self.elog,
            Error,
            "rewrite or internal redirection cycle while processing \"{}\", client: {}",
            String::from_utf8_lossy(&req.uri),
            conn.peer.ip()
        );
        let d = self.loaded.ir.servers[req.server.0 as usize].default_location;
        self.finish_status(conn, req, 500, d, false)
    }

    /// Answers how a rewrite script ended (`return`, a redirecting `rewrite`, an empty
    /// rewritten URI) in location `loc`. In a location reached through error_page, a
    /// `return` with text keeps the error's status (nginx's err_status), unless error_page
    /// set one.
    fn script_answer(
        &mut self,
        conn: &mut Conn,
        req: &mut RequestCtx,
        end: ScriptEnd<'_>,
        loc: LocationId,
        error_status: Option<(u16, Option<u16>)>,
    ) -> Outcome {
        match end {
            ScriptEnd::Return { code, text } => {
                req.text.clear();
                if let Some(t) = text {
                    match t.parts.as_slice() {
                        // A constant text (the usual case) needs no variable context.
                        [Part::Literal(lit)] => req.text.extend_from_slice(lit.as_bytes()),
                        _ => {
                            let mut out = std::mem::take(&mut req.text);
                            self.ctx(conn, req, code).expand(t, &mut out);
                            req.text = out;
                        }
                    }
                }
                let code = match error_status {
                    // `error_page … =` alone: the code the target answers.
                    Some((_, Some(0))) => code,
                    Some((orig, response)) if text.is_some() && code < 300 => {
                        let status = response.unwrap_or(orig);
                        if matches!(status, 301 | 302 | 303 | 307 | 308) {
                            // The text is the body, not a URL: nginx sends it with the
                            // error's redirect status (and the first redirect's Location).
                            return self.answer_text(conn, req, status, loc);
                        }
                        status
                    }
                    // A bare `return 2xx` in the error's target sends the error's status
                    // with an empty body (nginx: the response header takes err_status).
                    Some((orig, response)) if text.is_none() && code < 300 => {
                        let status = response.unwrap_or(orig);
                        return self.answer_text(conn, req, status, loc);
                    }
                    _ => code,
                };
                self.answer_return(conn, req, code, text.is_some(), loc)
            }
            ScriptEnd::Redirect { code, url } => {
                if self.settings_for(loc).rewrite_log {
                    elog!(
                        self.elog,
                        Notice,
                        "rewritten redirect: \"{}\", client: {}",
                        String::from_utf8_lossy(&url),
                        conn.peer.ip()
                    );
                }
                let old = std::mem::replace(&mut req.text, url);
                self.scratch.var_pool.get_mut().give_buf(old);
                self.answer_redirect(conn, req, code, loc)
            }
            ScriptEnd::EmptyUri => {
                elog!(
                    self.elog,
                    Error,
                    "the rewritten URI has a zero length, client: {}",
                    conn.peer.ip()
                );
                self.finish_status(conn, req, 500, loc, false)
            }
            ScriptEnd::Done | ScriptEnd::Reroute => self.finish_status(conn, req, 500, loc, false),
        }
    }

    /// error_page for `code` answered by location `loc_id`: once per request (nginx's
    /// recursive_error_pages off). `None`: go round the routing loop again (to the URI now in
    /// `req.uri`, or to `named`); `Some`: the answer.
    fn error_page(
        &mut self,
        conn: &mut Conn,
        req: &mut RequestCtx,
        loc_id: LocationId,
        code: u16,
        error_status: &mut Option<(u16, Option<u16>)>,
        named: &mut Option<LocationId>,
    ) -> Option<Outcome> {
        let loaded = self.loaded;
        let ir = &loaded.ir;
        let sid = req.server;
        let settings = ir
            .locations
            .get(loc_id.0 as usize)
            .and_then(|l| ir.settings.get(l.conf.settings.0 as usize));
        if error_status.is_none() {
            if let Some(ep) =
                settings.and_then(|s| s.error_pages.iter().find(|e| e.codes.contains(&code)))
            {
                let mut t = self.scratch.var_pool.get_mut().buf();
                self.ctx(conn, req, code).expand(&ep.target, &mut t);
                *error_status = Some((code, ep.response));
                req.error_status = *error_status;
                let answer = if let Some(n) = t.strip_prefix(b"@") {
                    let _ = n;
                    let name = std::str::from_utf8(&t).unwrap_or("");
                    match ir.find_named(sid, name) {
                        Some(l) => {
                            *named = Some(l);
                            None
                        }
                        None => Some(self.finish_status(conn, req, code, loc_id, false)),
                    }
                } else if !t.starts_with(b"/") {
                    // As nginx: a target that is neither a URI nor a named location is
                    // where the client is redirected.
                    req.text.clear();
                    req.text.extend_from_slice(&t);
                    let redirect = match ep.response {
                        Some(c) if (300..400).contains(&c) => c,
                        _ => 302,
                    };
                    Some(self.answer_redirect(conn, req, redirect, loc_id))
                } else {
                    let (path, args) = match t.iter().position(|&b| b == b'?') {
                        Some(i) => (&t[..i], &t[i + 1..]),
                        None => (&t[..], &t[t.len()..]),
                    };
                    // As nginx's internal redirect: the target's arguments replace the
                    // request's (none when it has none).
                    req.uri.clear();
                    req.uri.extend_from_slice(path);
                    req.uri_changed = true;
                    req.args.clear();
                    req.args.extend_from_slice(args);
                    None
                };
                self.scratch.var_pool.get_mut().give_buf(t);
                return answer;
            }
        }
        // An error after error_page (no second one, as nginx without recursive_error_pages)
        // is answered with its own status (a missing error page file: 404).
        Some(self.finish_status(conn, req, code, loc_id, false))
    }

    /// Writes a line about `req` with nginx's context: `, client: …, server: …, request:
    /// "…", host: "…"` after it.
    pub(crate) fn request_log(
        &self,
        conn: &Conn,
        req: &RequestCtx,
        level: proton_ir::LogLevel,
        msg: std::fmt::Arguments<'_>,
    ) {
        if !self.elog.enabled(level) {
            return;
        }
        let server = self
            .loaded
            .ir
            .servers
            .get(req.server.0 as usize)
            .map_or("", proton_ir::Server::primary_name);
        let line = crate::http::request::request_line(&conn.rbuf, 8192);
        let host = super::vars::header(&req.head, &conn.rbuf, b"host");
        // (The connection's peer, as in Proton's other request lines.)
        let client = conn.peer.ip();
        match host {
            Some(h) => self.elog.log(
                level,
                format_args!(
                    "{msg}, client: {client}, server: {server}, request: \"{}\", host: \"{}\"",
                    String::from_utf8_lossy(line),
                    String::from_utf8_lossy(h)
                ),
            ),
            None => self.elog.log(
                level,
                format_args!(
                    "{msg}, client: {client}, server: {server}, request: \"{}\"",
                    String::from_utf8_lossy(line)
                ),
            ),
        }
    }

    /// The variable context of request `req` on `conn`.
    pub(crate) fn ctx<'s>(&'s self, conn: &'s Conn, req: &'s RequestCtx, status: u16) -> Ctx<'s> {
        let ir = &self.loaded.ir;
        Ctx {
            buf: &conn.rbuf,
            head: &req.head,
            uri: &req.uri,
            args: &req.args,
            host: &req.host,
            server_name: ir
                .servers
                .get(req.server.0 as usize)
                .map_or("", proton_ir::Server::primary_name),
            peer: req.client.unwrap_or(conn.peer),
            conn_peer: conn.peer,
            local: self.local_of(conn),
            tls: conn.tls().filter(|t| t.session().is_some()),
            proxy_protocol: conn.proxy_info(),
            unix: ir
                .listeners
                .get(conn.listener as usize)
                .map(|l| l.addr.as_str())
                .filter(|a| a.starts_with("unix:")),
            user: &req.user,
            captures: &req.captures,
            pool: &self.scratch.var_pool,
            status,
            body_bytes: conn.finished.body_bytes,
            bytes_sent: conn.finished.body_bytes + conn.finished.header_bytes,
            request_time_ms: u64::from(self.now_ms.wrapping_sub(req.started)),
            time_local: self.date.time_local(),
            // `$proxy_host`/`$proxy_port` of the location's proxy_pass (without variables),
            // for use outside the proxy's own headers (add_header, logs), as nginx.
            proxy_host: match static_proxy_host(ir, req) {
                Some(h) if super::proxy::is_unix_host(h) => b"localhost",
                Some(h) => h,
                None => b"",
            },
            proxy_unix: static_proxy_host(ir, req).is_some_and(super::proxy::is_unix_host),
            upstreams: &req.upstreams,
            regexes: &self.loaded.regexes,
            maps: &ir.maps,
            map_cache: Some(&req.maps),
            ir,
            location: req.location,
            prefix: &self.loaded.prefix,
            connection: conn.number,
            connection_requests: conn.served.saturating_add(1),
            connection_time_ms: u64::from(self.now_ms.wrapping_sub(conn.started_ms)),
            sent_head: &[],
            sent_trailers: &[],
            limit_rate: req.limit_rate.unwrap_or(0),
            limit_status: [req.limits.req_status, req.limits.conn_status],
            cache_status: req.cache_status,
            elog: Some(&self.elog),
            upstream_head: &req.upstream_head,
            upstream_trailers: &req.upstream_trailers,
            method_get: req.xar && !req.head.is_head(),
            jwt: req.auth.jwt.as_deref(),
            main_line: conn
                .ext
                .as_deref()
                .and_then(|e| e.sub.as_deref())
                .map(|l| &l.main_line[..]),
            http2: super::h2::is_stream(conn),
            body: Some(&req.body),
            request_length: super::h2::block_len(conn).unwrap_or(req.head.head_len) as u64
                + req.body_read,
            gzip_ratio: req.gzip_ratio,
            slice: req.slice.as_deref().map(|s| (s.start, s.size)),
        }
    }

    /// The response rate limit of `req` answered by `loc` (nginx's write filter reads it once):
    /// a `set $limit_rate` value, else the location's `limit_rate`; and `limit_rate_after`.
    pub(crate) fn resolve_limit_rate(&self, conn: &Conn, req: &mut RequestCtx, loc: LocationId) {
        let s = self.settings_for(loc);
        let size = |req: &RequestCtx, v: &proton_ir::SizeValue| match v {
            proton_ir::SizeValue::Const(n) => *n,
            proton_ir::SizeValue::Var(t) => {
                let mut b = self.scratch.var_pool.borrow_mut().buf();
                self.ctx(conn, req, 0).expand(t, &mut b);
                let n = proton_ir::time::parse_size(&b).unwrap_or(0);
                self.scratch.var_pool.borrow_mut().give_buf(b);
                n
            }
        };
        if req.limit_rate.is_none() {
            req.limit_rate = Some(size(req, &s.limit_rate));
        }
        if req.limit_rate != Some(0) && req.limit_rate_after.is_none() {
            req.limit_rate_after = Some(size(req, &s.limit_rate_after));
        }
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
    /// stopping, and, with the settings of the location answering (as nginx): keep-alive is
    /// on, keepalive_requests is not reached with this request, the connection is not older
    /// than keepalive_time, and keepalive_disable does not name the client's browser.
    pub(crate) fn keep_alive(&self, req: &RequestCtx, loc: LocationId) -> bool {
        let s = self.settings_for(loc);
        let off = s.keepalive_disable;
        req.head.keep_alive
            && !self.draining
            && s.keepalive_timeout_ms > 0
            && (s.keepalive_requests == 0 || req.served + 1 < s.keepalive_requests)
            && u64::from(self.now_ms.wrapping_sub(req.conn_started)) <= s.keepalive_time_ms
            && !(off.msie6
                && req.browser.msie6
                && req.head.method == crate::http::request::Method::Post)
            && !(off.safari && req.browser.safari)
    }

    /// [`Worker::keep_alive`] for a response with `status`: a body announced with
    /// `Expect: 100-continue` and not asked for is not waited for after an error or a
    /// redirect (nginx sends no 100 Continue before those), so such a response closes the
    /// connection and says so.
    pub(crate) fn keep_alive_for(&self, req: &RequestCtx, loc: LocationId, status: u16) -> bool {
        // (Mirrors that want the body read it: it is not left unread.)
        self.keep_alive(req, loc)
            && !(req.expect_unread && status >= 300 && !req.mirror_body_wanted())
    }

    /// The prepared answer of a location that only returns a constant text (see
    /// [`respond::ConstReturn`]); `None` for other locations.
    fn answer_const(
        &mut self,
        conn: &mut Conn,
        req: &RequestCtx,
        loc: LocationId,
    ) -> Option<Outcome> {
        let c = self.loaded.returns.get(loc.0 as usize)?.as_ref()?;
        // (A URI whose extension has a type of its own is answered with it, by the
        // general path.)
        let loaded = self.loaded;
        if super::static_files::type_by_ext(loaded, self.settings_for(loc), &req.uri).is_some() {
            return None;
        }
        let keep = self.keep_alive_for(req, loc, c.code);
        let tokens = self.settings_for(loc).server_tokens != proton_ir::ServerTokens::Off;
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        write_status_line(&mut wbuf, 1, c.code);
        wbuf.extend_from_slice(self.date.server_and_date(tokens));
        wbuf.extend_from_slice(if keep { &c.keep_tail } else { &c.close_tail });
        let n = wbuf.len();
        if !req.head.is_head() {
            wbuf.extend_from_slice(&c.body);
        }
        let code = c.code;
        conn.wbuf = wbuf;
        Some(self.outcome(code, !keep, loc, n))
    }

    /// `return code [text]`.
    fn answer_return(
        &mut self,
        conn: &mut Conn,
        req: &RequestCtx,
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
            return self.answer_redirect(conn, req, code, loc);
        }
        if !has_text {
            if code >= 400 {
                return self.finish_status(conn, req, code, loc, false);
            }
            if matches!(code, 301 | 302 | 303 | 307 | 308) {
                // `return 302;`: nginx's redirect page with an empty Location.
                return self.answer_redirect(conn, req, code, loc);
            }
        }
        // `return 200;` sends an empty body with the location's default_type, as nginx.
        self.answer_text(conn, req, code, loc)
    }

    /// `return CODE TEXT` answered with the text as the body (the location's default_type).
    fn answer_text(
        &mut self,
        conn: &mut Conn,
        req: &RequestCtx,
        code: u16,
        loc: LocationId,
    ) -> Outcome {
        let loaded = self.loaded;
        // As nginx (`ngx_http_set_content_type`): by the URI's extension, else the
        // location's default_type.
        let ct = loaded
            .ir
            .locations
            .get(loc.0 as usize)
            .and_then(|l| loaded.ir.settings.get(l.conf.settings.0 as usize))
            .map_or(&b"text/plain"[..], |s| {
                super::static_files::content_type(loaded, s, &req.uri)
            });
        let mut ctype = std::mem::take(&mut self.scratch.ctype);
        let (relabelled, _) =
            super::static_files::charset_type(self, conn, req, loc, ct, &mut ctype);
        let out = self.simple(
            conn,
            req,
            code,
            loc,
            &req.text,
            Some(if relabelled { &ctype } else { ct }),
        );
        self.scratch.ctype = ctype;
        out
    }

    /// nginx's `stub_status` page: the figures of all workers, in its exact text (tools
    /// parse it). GET and HEAD only.
    fn stub_status(&mut self, conn: &mut Conn, req: &RequestCtx, loc: LocationId) -> Handled {
        use crate::shared::{total, Stat};
        if !get_or_head(conn, req) {
            return Handled::Status(405);
        }
        let mut body = std::mem::take(&mut self.scratch.ctype);
        body.clear();
        let _ = write!(
            body,
            "Active connections: {} \nserver accepts handled requests\n {} {} {} \nReading: {} Writing: {} Waiting: {} \n",
            total(Stat::Active),
            total(Stat::Accepted),
            total(Stat::Handled),
            total(Stat::Requests),
            total(Stat::Reading),
            total(Stat::Writing),
            total(Stat::Waiting),
        );
        let out = self.simple(conn, req, 200, loc, &body, Some(b"text/plain"));
        self.scratch.ctype = body;
        Handled::Done {
            status: out.status,
            header_bytes: out.header_bytes,
        }
    }

    /// `proton_metrics`: the figures of all workers in Prometheus' text format. GET and
    /// HEAD only.
    fn proton_metrics(&mut self, conn: &mut Conn, req: &RequestCtx, loc: LocationId) -> Handled {
        if !get_or_head(conn, req) {
            return Handled::Status(405);
        }
        let mut page = String::new();
        crate::metrics::render(
            &mut page,
            self.loaded.metrics.as_ref(),
            &crate::metrics::Globals::read(),
            Some(&self.loaded.upstream_shared),
        );
        let out = self.simple(
            conn,
            req,
            200,
            loc,
            page.as_bytes(),
            Some(b"text/plain; version=0.0.4; charset=utf-8"),
        );
        Handled::Done {
            status: out.status,
            header_bytes: out.header_bytes,
        }
    }

    /// A response with a small in-memory body.
    fn simple(
        &mut self,
        conn: &mut Conn,
        req: &RequestCtx,
        code: u16,
        loc: LocationId,
        body: &[u8],
        ct: Option<&[u8]>,
    ) -> Outcome {
        let keep = self.keep_alive_for(req, loc, code);
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
        if (300..400).contains(&code) && !req.redirected.is_empty() {
            self.write_location(conn, req, loc, &req.redirected, &mut wbuf);
        }
        self.add_headers(conn, req, loc, code, &mut wbuf);
        let n = end_head(&mut wbuf);
        if !no_body && !req.head.is_head() {
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
        req: &RequestCtx,
        loc: LocationId,
        status: u16,
        content_type: Option<&[u8]>,
        content_length: Option<u64>,
    ) {
        let keep_alive = self.keep_alive_for(req, loc, status);
        let s = self.settings_for(loc);
        let h = Head {
            status,
            content_type,
            content_length,
            keep_alive,
            keepalive_header_secs: s.keepalive_header_secs,
            server_tokens: s.server_tokens != proton_ir::ServerTokens::Off,
        };
        begin_head(self, out, &h);
    }

    /// Appends the location's `expires` and add_header lines that apply to `status`. As
    /// nginx's expires, the lines it adds replace the response's own Expires and
    /// Cache-Control (a proxied response's).
    pub(crate) fn add_headers(
        &mut self,
        conn: &Conn,
        req: &RequestCtx,
        loc: LocationId,
        status: u16,
        out: &mut Vec<u8>,
    ) {
        if !req.carried.is_empty() {
            put_carried(&req.carried, out);
        }
        let ir = &self.loaded.ir;
        let Some(l) = ir.locations.get(loc.0 as usize) else {
            return;
        };
        let expires_at = out.len();
        let s = &ir.settings[l.conf.settings.0 as usize];
        let ok_status = matches!(
            status,
            200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
        );
        if ok_status {
            let mtime = req.mtime;
            let now = self.date.unix_secs();
            if let proton_ir::Expires::Variable { modified, value } = &s.expires {
                // Parsed at request time, as nginx: an invalid value sends nothing.
                let pool = self.scratch.var_pool.get_mut();
                let mut v = pool.buf();
                let mut ctx = self.ctx(conn, req, status);
                // `$sent_http_*` (often through a map): the head written so far.
                ctx.sent_head = out;
                ctx.expand(value, &mut v);
                let parsed = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|t| proton_ir::Expires::parse(t, *modified).ok());
                self.scratch.var_pool.get_mut().give_buf(v);
                if let Some(e) = parsed {
                    super::static_files::expires_headers(&e, mtime, now, out);
                }
            } else {
                super::static_files::expires_headers(&s.expires, mtime, now, out);
            }
        }
        if out.len() > expires_at {
            remove_fields(out, expires_at, &[b"expires", b"cache-control"]);
        }
        for h in &s.add_headers {
            if !(h.always || ok_status) {
                continue;
            }
            // As nginx's add_header, ETag and Last-Modified replace the response's own
            // (an empty value removes it).
            if h.name.eq_ignore_ascii_case("etag") {
                remove_line(out, b"\r\nETag: ");
            } else if h.name.eq_ignore_ascii_case("last-modified") {
                remove_line(out, b"\r\nLast-Modified: ");
            }
            // The value sees the head written so far (`$sent_http_*`); an empty value adds
            // no line.
            let mut v = self.scratch.var_pool.borrow_mut().buf();
            let mut ctx = self.ctx(conn, req, status);
            ctx.sent_head = out;
            ctx.expand(&h.value, &mut v);
            if !v.is_empty() {
                crate::http::response::push_header_line(out, h.name.as_bytes(), &v);
            }
            self.scratch.var_pool.borrow_mut().give_buf(v);
        }
    }

    /// A redirect to the URL in `req.text` (made absolute as nginx does).
    fn answer_redirect(
        &mut self,
        conn: &mut Conn,
        req: &RequestCtx,
        code: u16,
        loc: LocationId,
    ) -> Outcome {
        let n = self.redirect_to_tmp(conn, req, code, loc);
        let keep = self.keep_alive_for(req, loc, code);
        self.outcome(code, !keep, loc, n)
    }

    /// Writes a redirect response to the URL in `req.text`; returns the head length.
    pub(crate) fn redirect_to_tmp(
        &mut self,
        conn: &mut Conn,
        req: &RequestCtx,
        code: u16,
        loc: LocationId,
    ) -> usize {
        let target = &req.text;
        let s = self.settings_for(loc);
        let tokens = s.server_tokens != proton_ir::ServerTokens::Off;
        if s.msie_refresh && matches!(code, 301 | 302) && browser(req, &conn.rbuf).msie {
            return self.msie_refresh(conn, req, loc);
        }
        let mut body = std::mem::take(&mut self.scratch.page);
        body.clear();
        crate::http::response::error_page(code, tokens, &mut body);
        let mut ctype = self.scratch.var_pool.borrow_mut().buf();
        let (relabelled, _) =
            super::static_files::charset_type(self, conn, req, loc, b"text/html", &mut ctype);
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        self.start_head(
            &mut wbuf,
            req,
            loc,
            code,
            Some(if relabelled { &ctype } else { b"text/html" }),
            Some(body.len() as u64),
        );
        self.scratch.var_pool.borrow_mut().give_buf(ctype);
        self.write_location(conn, req, loc, target, &mut wbuf);
        self.add_headers(conn, req, loc, code, &mut wbuf);
        let n = end_head(&mut wbuf);
        if !req.head.is_head() {
            wbuf.extend_from_slice(&body);
        }
        conn.wbuf = wbuf;
        self.scratch.page = body;
        n
    }

    /// Writes the `Location` line for `target`, a path made absolute as nginx does.
    fn write_location(
        &self,
        conn: &Conn,
        req: &RequestCtx,
        loc: LocationId,
        target: &[u8],
        wbuf: &mut Vec<u8>,
    ) {
        let s = self.settings_for(loc);
        wbuf.extend_from_slice(b"Location: ");
        if s.absolute_redirect && target.starts_with(b"/") {
            self.write_redirect_origin(conn, req, loc, wbuf);
        }
        let target_at = wbuf.len();
        wbuf.extend_from_slice(target);
        crate::http::response::encode_line_breaks(wbuf, target_at);
        wbuf.extend_from_slice(b"\r\n");
    }

    /// Writes `scheme://host[:port]`, what makes a redirect to a path absolute as nginx's
    /// header filter does (`absolute_redirect on`): the server's first name with
    /// `server_name_in_redirect on`, else the request's host, else the local address; the
    /// local port when it is not the scheme's and `port_in_redirect` is on.
    pub(crate) fn write_redirect_origin(
        &self,
        conn: &Conn,
        req: &RequestCtx,
        loc: LocationId,
        wbuf: &mut Vec<u8>,
    ) {
        let s = self.settings_for(loc);
        let (with_port, by_name) = (s.port_in_redirect, s.server_name_in_redirect);
        let tls = conn.tls_session().is_some();
        wbuf.extend_from_slice(if tls { b"https://" } else { b"http://" });
        let local = self.local_of(conn);
        let name = by_name
            .then(|| {
                self.loaded
                    .ir
                    .servers
                    .get(req.server.0 as usize)
                    .filter(|s| !s.names.is_empty())
                    .map(proton_ir::Server::primary_name)
            })
            .flatten();
        if let Some(name) = name {
            wbuf.extend_from_slice(name.as_bytes());
        } else if !req.host.is_empty() {
            wbuf.extend_from_slice(&req.host);
        } else if local.is_ipv6() {
            let _ = write!(wbuf, "[{}]", local.ip());
        } else {
            let _ = write!(wbuf, "{}", local.ip());
        }
        if with_port && local.port() != if tls { 443 } else { 80 } {
            let _ = write!(wbuf, ":{}", local.port());
        }
    }

    /// `msie_refresh`: a redirect to MSIE is a 200 page that refreshes to the URL in
    /// `req.text` (nginx's `ngx_http_send_refresh`), without `Location`.
    fn msie_refresh(&mut self, conn: &mut Conn, req: &RequestCtx, loc: LocationId) -> usize {
        const HEAD: &[u8] = b"<html><head><meta http-equiv=\"Refresh\" content=\"0; URL=";
        const TAIL: &[u8] = b"\"></head><body></body></html>\r\n";
        let mut body = std::mem::take(&mut self.scratch.page);
        body.clear();
        body.extend_from_slice(HEAD);
        crate::http::response::escape_uri(
            &req.text,
            crate::http::response::Escape::Refresh,
            &mut body,
        );
        body.extend_from_slice(TAIL);
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        self.start_head(
            &mut wbuf,
            req,
            loc,
            200,
            Some(b"text/html"),
            Some(body.len() as u64),
        );
        self.add_headers(conn, req, loc, 200, &mut wbuf);
        let n = end_head(&mut wbuf);
        if !req.head.is_head() {
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
        req: &RequestCtx,
        status: u16,
        loc: LocationId,
        close: bool,
    ) -> Outcome {
        // nginx keeps the connection after an error page except for these
        // (ngx_http_special_response_handler): a 502 or 504 from a proxy keeps it.
        let keep = !close
            && self.keep_alive_for(req, loc, status)
            && !matches!(status, 400 | 413 | 414 | 500 | 501);
        let s = self.settings_for(loc);
        let tokens = s.server_tokens != proton_ir::ServerTokens::Off;
        let padding = s.msie_padding && {
            let b = browser(req, &conn.rbuf);
            b.msie || b.chrome
        };
        // `add_header … always` lines go on error pages too.
        let mut extra = std::mem::take(&mut self.scratch.ctype);
        extra.clear();
        self.add_headers(conn, req, loc, status, &mut extra);
        // `charset` labels the page as nginx's charset filter does.
        let mut ctype = self.scratch.var_pool.borrow_mut().buf();
        let (relabelled, _) =
            super::static_files::charset_type(self, conn, req, loc, b"text/html", &mut ctype);
        if !relabelled {
            ctype.clear();
        }
        let mut wbuf = std::mem::take(&mut conn.wbuf);
        wbuf.clear();
        let extras = super::respond::PageExtras {
            content_type: &ctype,
            headers: &extra,
            padding,
        };
        let n = error_response(self, &mut wbuf, status, keep, tokens, &extras);
        self.scratch.ctype = extra;
        self.scratch.var_pool.borrow_mut().give_buf(ctype);
        if req.head.is_head() {
            wbuf.truncate(n);
        }
        conn.wbuf = wbuf;
        self.outcome(status, !keep, loc, n)
    }

    /// Counts a finished request in this worker's row of the `proton_metrics` figures
    /// (subrequests are not counted).
    fn count_request(&self, conn: &Conn) {
        let Some(m) = &self.metrics else {
            return;
        };
        let req = conn.req.as_deref();
        if req.is_some_and(|r| r.mirror_sub || r.subrequest) {
            return;
        }
        let ir = &self.loaded.ir;
        // A request that could not be parsed counts at its address's default server.
        let loc = conn.finished.location().map(LocationId).or_else(|| {
            let l = ir.listeners.get(conn.listener as usize)?;
            Some(ir.servers.get(l.names.default.0 as usize)?.default_location)
        });
        let Some(loc) = loc else {
            return;
        };
        let (ms, bytes_in) = req.map_or((0, 0), |r| {
            (
                u64::from(self.now_ms.wrapping_sub(r.started)),
                super::h2::block_len(conn).unwrap_or(r.head.head_len) as u64 + r.body_read,
            )
        });
        let f = &conn.finished;
        m.request(loc, f.status, ms, bytes_in, f.header_bytes + f.body_bytes);
    }

    /// Writes the access log entry of a finished response.
    pub(crate) fn log_access(&mut self, conn: &Conn) {
        elog!(
            self.elog,
            Debug,
            "*{} http finalize request: {}",
            conn.number,
            conn.finished.status
        );
        self.count_request(conn);
        let ir = &self.loaded.ir;
        let Some(loc_idx) = conn.finished.location() else {
            // Malformed requests are logged with the default server's logs.
            return self.log_access_default(conn);
        };
        let Some(loc) = ir.locations.get(loc_idx as usize) else {
            return;
        };
        let settings = &ir.settings[loc.conf.settings.0 as usize];
        if conn
            .req
            .as_deref()
            .is_some_and(|r| r.mirror_sub || r.subrequest)
            && !settings.log_subrequest
        {
            return;
        }
        let logs = &settings.access_log;
        if logs.iter().all(|l| matches!(l, proton_ir::AccessLog::Off)) {
            return;
        }
        let empty;
        let req = match conn.req.as_deref() {
            Some(r) => r,
            None => {
                empty = RequestCtx::default();
                &empty
            }
        };
        let mut access = std::mem::take(&mut self.access);
        let mut ctx = self.ctx(conn, req, conn.finished.status);
        // The head Proton wrote itself is still at the start of the write buffer.
        let n = usize::try_from(conn.finished.header_bytes).unwrap_or(0);
        if n >= 4
            && conn.wbuf.starts_with(b"HTTP/1.1 ")
            && conn.wbuf.get(n - 4..n) == Some(&b"\r\n\r\n"[..])
            && loc.conf.proxy.is_none()
        {
            ctx.sent_head = &conn.wbuf[..n];
        } else if !req.sent_head.is_empty() {
            // A proxied response's head, kept by its context.
            ctx.sent_head = &req.sent_head;
        }
        let written = access.write(self.loaded, settings, &ctx);
        self.access = access;
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
        let settings = &self.loaded.ir.settings[loc.conf.settings.0 as usize];
        // The request could not be parsed: only its timing is known (its head may be
        // partial), so the log line has the default server and no request values.
        let req = RequestCtx {
            server: l.names.default,
            started: conn.req.as_deref().map_or(self.now_ms, |r| r.started),
            ..RequestCtx::default()
        };
        let mut access = std::mem::take(&mut self.access);
        let ctx = self.ctx(conn, &req, conn.finished.status);
        let written = access.write(self.loaded, settings, &ctx);
        self.access = access;
        if !written {
            self.log_path_refused(conn);
        }
    }
}

/// Bodies up to this size get trailers (`add_trailer`): a file is read into memory for it.
const TRAILER_BODY_MAX: usize = 16 << 20;

impl Worker<'_> {
    /// `add_trailer`: sends a finished in-memory (or file) response chunked, with the
    /// trailer section after the last chunk, as nginx's chunked filter does for an HTTP/1.1
    /// request when a trailer applies to the status. `out.header_bytes` follows the head.
    pub(crate) fn apply_trailers(&mut self, conn: &mut Conn, req: &RequestCtx, out: &mut Outcome) {
        let Some(loc) = out.location.map(LocationId) else {
            return;
        };
        let s = self.settings_for(loc);
        let status = out.status;
        if !trailers_apply(s, status)
            || !s.chunked_transfer_encoding
            || req.head.minor_version == 0
            || req.head.is_head()
            || status < 200
            || matches!(status, 204 | 304)
            || conn.wbuf.len() < out.header_bytes
            || !conn.wbuf[..out.header_bytes].ends_with(b"\r\n\r\n")
        {
            return;
        }
        if let Some(f) = conn.file.take() {
            use std::os::unix::fs::FileExt;
            let len = usize::try_from(f.end - f.offset).unwrap_or(usize::MAX);
            let at = conn.wbuf.len();
            if len > TRAILER_BODY_MAX {
                elog!(
                    self.elog,
                    Warn,
                    "trailers not sent: the file is larger than 16 MiB, client: {}",
                    conn.peer.ip()
                );
                conn.file = Some(f);
                return;
            }
            conn.wbuf.resize(at + len, 0);
            if f.file
                .read_exact_at(&mut conn.wbuf[at..], f.offset as u64)
                .is_err()
            {
                conn.wbuf.truncate(at);
                conn.file = Some(f);
                return;
            }
        }
        let mut body = self.scratch.var_pool.borrow_mut().buf();
        body.extend_from_slice(&conn.wbuf[out.header_bytes..]);
        conn.wbuf.truncate(out.header_bytes);
        remove_line(&mut conn.wbuf, b"\r\nContent-Length: ");
        conn.wbuf.truncate(conn.wbuf.len() - 2);
        conn.wbuf
            .extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        let hb = conn.wbuf.len();
        // The trailers see the head as sent and the trailers before them.
        let mut trailers = self.scratch.var_pool.borrow_mut().buf();
        self.write_trailers(conn, req, loc, status, &conn.wbuf[..hb], &mut trailers);
        if !body.is_empty() {
            let _ = write!(conn.wbuf, "{:x}\r\n", body.len());
            conn.wbuf.extend_from_slice(&body);
            conn.wbuf.extend_from_slice(b"\r\n");
        }
        conn.wbuf.extend_from_slice(b"0\r\n");
        conn.wbuf.extend_from_slice(&trailers);
        conn.wbuf.extend_from_slice(b"\r\n");
        let mut pool = self.scratch.var_pool.borrow_mut();
        pool.give_buf(body);
        pool.give_buf(trailers);
        out.header_bytes = hb;
    }

    /// Appends the trailer lines of location `loc` that apply to `status` (`Name: value`
    /// CRLF each; an empty value adds none). Each value sees `sent_head` (the response head
    /// as sent) and the trailers before it.
    pub(crate) fn write_trailers(
        &self,
        conn: &Conn,
        req: &RequestCtx,
        loc: LocationId,
        status: u16,
        sent_head: &[u8],
        out: &mut Vec<u8>,
    ) {
        let s = self.settings_for(loc);
        let safe = safe_trailer_status(status);
        let start = out.len();
        let mut v = self.scratch.var_pool.borrow_mut().buf();
        for t in &s.add_trailers {
            if !(t.always || safe) {
                continue;
            }
            v.clear();
            let mut ctx = self.ctx(conn, req, status);
            ctx.sent_head = sent_head;
            ctx.sent_trailers = out.get(start..).unwrap_or_default();
            ctx.expand(&t.value, &mut v);
            if !v.is_empty() {
                crate::http::response::push_header_line(out, t.name.as_bytes(), &v);
            }
        }
        self.scratch.var_pool.borrow_mut().give_buf(v);
    }
}

/// The statuses whose responses get every trailer (others only those marked `always`), as
/// nginx's headers filter.
fn safe_trailer_status(status: u16) -> bool {
    matches!(status, 200 | 201 | 204 | 206 | 301 | 302 | 303 | 307 | 308)
}

/// Whether some `add_trailer` of settings `s` applies to a response with `status`.
pub(crate) fn trailers_apply(s: &Settings, status: u16) -> bool {
    let safe = safe_trailer_status(status);
    s.add_trailers.iter().any(|t| t.always || safe)
}

/// Removes the header lines named `names` (lowercase) that end before `end` in a head being
/// written (a first line `HTTP/…` is the status line); returns how many bytes went.
pub(crate) fn remove_fields(head: &mut Vec<u8>, end: usize, names: &[&[u8]]) -> usize {
    let mut at = if head.starts_with(b"HTTP/") {
        memchr::memchr(b'\n', head).map_or(head.len(), |i| i + 1)
    } else {
        0
    };
    let mut end = end.min(head.len());
    let before = end;
    while at < end {
        let next = memchr::memchr(b'\n', &head[at..end]).map_or(end, |i| at + i + 1);
        let line = &head[at..next];
        let name = line
            .iter()
            .position(|&b| b == b':')
            .map_or(&line[..0], |c| &line[..c]);
        if names
            .iter()
            .any(|n| crate::http::request::token_eq(name, n))
        {
            head.drain(at..next);
            end -= next - at;
        } else {
            at = next;
        }
    }
    before - end
}

/// The browser family of the request's `User-Agent`, as nginx tells them apart.
fn browser(req: &RequestCtx, buf: &[u8]) -> crate::http::response::Browser {
    let ua = super::vars::header(&req.head, buf, b"user-agent").unwrap_or_default();
    crate::http::response::Browser::of(ua)
}

/// Removes the header line that starts at `needle` (`\r\nName: `, its CRLF before it
/// kept) from a head being written.
fn remove_line(out: &mut Vec<u8>, needle: &[u8]) {
    if let Some(i) = memchr::memmem::find(out, needle) {
        let start = i + 2;
        let end = memchr::memmem::find(&out[start..], b"\r\n").map_or(out.len(), |e| start + e + 2);
        out.drain(start..end);
    }
}

/// The `proxy_pass` host of the request's location, when it has one without variables.
fn static_proxy_host<'a>(ir: &'a proton_ir::Ir, req: &RequestCtx) -> Option<&'a [u8]> {
    let proxy = ir
        .locations
        .get(req.location?.0 as usize)?
        .conf
        .proxy
        .as_deref()?;
    proxy
        .dynamic
        .is_none()
        .then(|| ir.text_of(proxy.proxy_host).as_bytes())
}

/// The headers of an upstream answer with `X-Accel-Redirect` that nginx keeps for the answer
/// the redirect leads to (its `redirect` headers).
pub(crate) const XAR_CARRIED: [&[u8]; 6] = [
    b"content-type",
    b"cache-control",
    b"expires",
    b"accept-ranges",
    b"set-cookie",
    b"content-disposition",
];

/// Of these, the ones that replace the answer's own line rather than add to it.
const CARRIED_REPLACING: [&[u8]; 4] = [
    b"content-type",
    b"cache-control",
    b"expires",
    b"accept-ranges",
];

/// Appends the lines of `head` (an upstream head) named in `names` to `out`, as
/// `Name: value\r\n`.
pub(crate) fn carry_lines(head: &[u8], names: &[&[u8]], out: &mut Vec<u8>) {
    for (name, value) in super::vars::head_fields(head) {
        if names.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Gives a built-in variable that nginx lets a script change its new value (`set`,
/// `auth_request_set`): `$args` takes it as it is; `$limit_rate` must be a size (else nginx
/// keeps the rate it had, with an error line). The compiler lets no other built-in be set.
pub(crate) fn set_builtin(
    w: &Worker<'_>,
    conn: &Conn,
    req: &mut RequestCtx,
    var: Builtin,
    value: &[u8],
) {
    match var {
        Builtin::Args => {
            req.args.clear();
            req.args.extend_from_slice(value);
            // The client's request target no longer says what the request is (nginx's
            // `valid_unparsed_uri = 0`): a proxied request carries the URI and these args.
            req.uri_changed = true;
        }
        Builtin::LimitRate => match proton_ir::time::parse_size(value) {
            Some(n) => req.limit_rate = Some(n),
            None => elog!(
                w.elog,
                Error,
                "invalid $limit_rate \"{}\", client: {}",
                String::from_utf8_lossy(value),
                conn.peer.ip()
            ),
        },
        _ => {}
    }
}

/// Whether the request is a GET or a HEAD (the status pages answer nothing else).
fn get_or_head(conn: &Conn, req: &RequestCtx) -> bool {
    let method = conn
        .rbuf
        .get(req.head.method_range.clone())
        .unwrap_or_default();
    method == b"GET" || method == b"HEAD"
}

/// Adds the carried lines to the head written so far (`out`: status line and header lines):
/// for a name that replaces, the answer's own lines of that name go first.
fn put_carried(carried: &[u8], out: &mut Vec<u8>) {
    let line_name = |line: &[u8]| -> Option<usize> {
        let colon = line.iter().position(|&b| b == b':')?;
        CARRIED_REPLACING
            .iter()
            .position(|n| line[..colon].eq_ignore_ascii_case(n))
    };
    let mut replace = [false; CARRIED_REPLACING.len()];
    for line in carried.split(|&b| b == b'\n') {
        if let Some(i) = line_name(line) {
            replace[i] = true;
        }
    }
    if replace.iter().any(|&r| r) {
        // Only the answer's own lines (those before the carried ones) are dropped.
        let mut at = out
            .iter()
            .position(|&b| b == b'\n')
            .map_or(out.len(), |i| i + 1);
        while at < out.len() {
            let end = out[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(out.len(), |i| at + i + 1);
            if line_name(&out[at..end]).is_some_and(|i| replace[i]) {
                out.drain(at..end);
            } else {
                at = end;
            }
        }
    }
    out.extend_from_slice(carried);
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_removed_before_a_point_only() {
        let mut h = b"HTTP/1.1 200 OK\r\nCache-Control: a\r\nX: 1\r\nexpires: b\r\nCache-Control: c\r\nEXPIRES: new\r\n".to_vec();
        let end = h.len() - b"EXPIRES: new\r\n".len();
        let gone = super::remove_fields(&mut h, end, &[b"expires", b"cache-control"]);
        assert_eq!(h, b"HTTP/1.1 200 OK\r\nX: 1\r\nEXPIRES: new\r\n");
        assert_eq!(gone, 48);
        // Lines without a status line (an error page's extra headers).
        let mut h = b"Expires: a\r\nX: 1\r\n".to_vec();
        super::remove_fields(&mut h, 100, &[b"expires"]);
        assert_eq!(h, b"X: 1\r\n");
    }

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
