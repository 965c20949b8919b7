//! nginx's access phase: `allow`/`deny`, then `auth_basic`, then `auth_request`, their
//! answers combined by `satisfy`, and `auth_delay` for a 401.
//!
//! Each handler answers as an nginx access handler does: declined (it has nothing to say),
//! ok, a status, or "again" (`auth_request` waits for its subrequest). Under `satisfy all`
//! the first status answers; under `satisfy any` the first ok lets the request in and the
//! statuses are kept (a 401 is not overridden by a 403) for the end of the phase. The
//! phase can stop and resume: a request waiting for its auth subrequest or for its
//! `auth_delay` waits as a `limit_req` delay does (`Phase::Delay`, `LimitState::resume`),
//! and routing comes back to this phase with the state kept here.
//!
//! The auth subrequest is a subrequest connection (`worker::sub`) whose response is cut to
//! its head ([`AuthLink`]); when it finishes, its `auth_request_set` values are evaluated in
//! it (its `$upstream_http_*`, `$upstream_status`…), and its status and `WWW-Authenticate`
//! lines go to the request ([`AuthAnswer`]).

use super::conn::Conn;
use super::context::RequestCtx;
use super::{sub, Worker};
use crate::elog;
use proton_ir::{LocationId, SetTarget};
use slab::Slab;

/// The access phase's state of a request (nginx's `r->access_code` and the auth_request
/// module's context), kept while it waits. Forgotten when a location is chosen afresh
/// (after an internal redirect the phase runs again, as in nginx).
#[derive(Default)]
pub(crate) struct AuthState {
    /// The handler to run next: 0 `allow`/`deny`, 1 `auth_basic`, 2 `auth_jwt`,
    /// 3 `auth_request`; 4 done.
    step: u8,
    /// `satisfy any`: the refusal kept so far (401 or 403; 0: none).
    code: u16,
    /// The auth subrequest.
    pub(crate) sub: AuthSub,
    /// `auth_delay` is over: the status to answer.
    delayed: Option<u16>,
    /// The token `auth_jwt` validated (its claims are variables for the rest of the
    /// request, through internal redirects).
    pub(crate) jwt: Option<Box<proton_jwt::Jwt>>,
}

/// Where a request's auth subrequest stands.
#[derive(Default)]
pub(crate) enum AuthSub {
    #[default]
    None,
    /// To be started (by [`service`], which has the worker's connections).
    Wanted,
    /// Running on subrequest connection (key, number).
    Running(usize, u32),
    /// Finished.
    Done(Box<AuthAnswer>),
}

/// What a finished auth subrequest answered.
pub(crate) struct AuthAnswer {
    /// A key-set fetch (`auth_jwt_key_request`): the set, when it came.
    keys: Option<std::sync::Arc<proton_jwt::KeySet>>,
    status: u16,
    /// Its `WWW-Authenticate` lines (`Name: value\r\n` each).
    lines: Vec<u8>,
    /// The `auth_request_set` values, in order.
    values: Vec<Vec<u8>>,
}

/// The auth part of a subrequest connection's link.
pub(crate) struct AuthLink {
    /// The settings of the location whose `auth_request` started it (its
    /// `auth_request_set` lines).
    settings: u32,
    /// The `auth_request_set` values, evaluated when the subrequest finishes.
    values: Vec<Vec<u8>>,
    /// The response head is whole: what follows (the body) is dropped (nginx's
    /// `header_only`).
    head_done: bool,
    /// It fetches `auth_jwt_key_request`'s key set: the body is kept (up to [`KEYS_MAX`]).
    keys: bool,
    /// The response was longer than [`KEYS_MAX`].
    too_big: bool,
}

/// The most response bytes a key-set fetch keeps.
const KEYS_MAX: usize = 1024 * 1024;

/// [`AuthState::step`] once every handler ran.
const DONE: u8 = 4;

/// The most a subrequest's response head may be before the rest is dropped.
const HEAD_MAX: usize = 64 * 1024;

impl AuthState {
    /// Forgets the phase's progress: a location is being chosen afresh (a validated JWT
    /// stays with the request, as nginx's variables do).
    pub(crate) fn restart(&mut self) {
        let jwt = self.jwt.take();
        *self = AuthState::default();
        self.jwt = jwt;
    }

    /// Forgets everything: the request is over.
    pub(crate) fn reset(&mut self) {
        *self = AuthState::default();
    }

    /// The request waits for its auth subrequest.
    pub(crate) fn waits(&self) -> bool {
        matches!(self.sub, AuthSub::Wanted | AuthSub::Running(..))
    }
}

/// What one access handler said (nginx's return codes of an access handler).
enum Rc {
    Declined,
    Ok,
    Status(u16),
    Again,
}

/// How the access phase ended for the request.
pub(crate) enum AccessEnd {
    /// In: the content phase goes on.
    Go,
    /// Answered with this status.
    Status(u16),
    /// It waits (its auth subrequest, or `auth_delay`); routing resumes here.
    Wait,
}

impl Worker<'_> {
    /// nginx's access phase for location `loc`, from where it stopped. Subrequests skip it
    /// (nginx runs it for the main request only).
    pub(crate) fn access_phase(
        &mut self,
        conn: &Conn,
        req: &mut RequestCtx,
        loc: LocationId,
    ) -> AccessEnd {
        if req.subrequest || req.mirror_sub {
            return AccessEnd::Go;
        }
        if let Some(code) = req.auth.delayed.take() {
            return AccessEnd::Status(code);
        }
        let any = self.settings_for(loc).auth.satisfy_any;
        while req.auth.step < DONE {
            let rc = match req.auth.step {
                0 => self.access_rules(conn, req, loc, any),
                1 => self.auth_basic(conn, req, loc),
                2 => self.auth_jwt(conn, req, loc),
                _ => self.auth_request(conn, req, loc),
            };
            match rc {
                Rc::Again => return AccessEnd::Wait,
                Rc::Declined => req.auth.step += 1,
                Rc::Ok if !any => req.auth.step += 1,
                Rc::Ok => {
                    // One is enough; the credentials others asked for are not.
                    req.auth.step = DONE;
                    req.auth.code = 0;
                    super::request::remove_fields(
                        &mut req.carried,
                        usize::MAX,
                        &[b"www-authenticate"],
                    );
                    return AccessEnd::Go;
                }
                Rc::Status(c) if any && matches!(c, 401 | 403) => {
                    if req.auth.code != 401 {
                        req.auth.code = c;
                    }
                    req.auth.step += 1;
                }
                Rc::Status(c) => {
                    req.auth.step = DONE;
                    return self.refuse(conn, req, loc, c);
                }
            }
        }
        match std::mem::take(&mut req.auth.code) {
            0 => AccessEnd::Go,
            code => {
                if code == 403 {
                    self.forbidden_log(conn, req);
                }
                self.refuse(conn, req, loc, code)
            }
        }
    }

    /// Answers `code`; a 401 waits `auth_delay` first (where the request can wait).
    fn refuse(
        &mut self,
        conn: &Conn,
        req: &mut RequestCtx,
        loc: LocationId,
        code: u16,
    ) -> AccessEnd {
        let delay = self.settings_for(loc).auth.delay_ms;
        if code != 401 || delay == 0 || !req.limits.can_delay {
            return AccessEnd::Status(code);
        }
        self.request_log(
            conn,
            req,
            proton_ir::LogLevel::Info,
            format_args!("delaying unauthorized request"),
        );
        req.auth.delayed = Some(code);
        let at = self.now + std::time::Duration::from_millis(delay);
        super::conn::wake_at(req, (conn.key, conn.number), at, self);
        AccessEnd::Wait
    }

    /// `allow`/`deny`: the first line that matches the client decides (ok or 403); none
    /// matching says nothing.
    fn access_rules(&mut self, conn: &Conn, req: &RequestCtx, loc: LocationId, any: bool) -> Rc {
        let rules = &self.settings_for(loc).access;
        if rules.is_empty() {
            return Rc::Declined;
        }
        let unix = self.on_unix(conn);
        let ip = req.client.unwrap_or(conn.peer).ip();
        let Some(rule) = rules.iter().find(|r| match r.from {
            None => true,
            Some(proton_ir::ClientAddr::Unix) => unix,
            Some(c) => !unix && c.matches(ip),
        }) else {
            return Rc::Declined;
        };
        if !rule.deny {
            return Rc::Ok;
        }
        // (Under `satisfy any` the line is written at the end of the phase, if the
        // request stays refused.)
        if !any {
            self.forbidden_log(conn, req);
        }
        Rc::Status(403)
    }

    fn on_unix(&self, conn: &Conn) -> bool {
        self.loaded
            .ir
            .listeners
            .get(conn.listener as usize)
            .is_some_and(|l| l.addr.starts_with("unix:"))
    }

    fn forbidden_log(&self, conn: &Conn, req: &RequestCtx) {
        elog!(
            self.elog,
            Error,
            "access forbidden by rule, client: {}",
            if self.on_unix(conn) {
                "unix:".to_string()
            } else {
                req.client.unwrap_or(conn.peer).ip().to_string()
            }
        );
    }

    /// `auth_basic`: the user and password of `Authorization: Basic` checked against the
    /// user file, read now (as nginx reads it on each request).
    fn auth_basic(&mut self, conn: &Conn, req: &mut RequestCtx, loc: LocationId) -> Rc {
        let loaded = self.loaded;
        let auth = &loaded.ir.settings[self.settings_index(loc)].auth;
        let (Some(realm_t), Some(file_t)) = (&auth.basic_realm, &auth.basic_user_file) else {
            return Rc::Declined;
        };
        let mut realm = self.scratch.var_pool.borrow_mut().buf();
        self.ctx(conn, req, 0).expand(realm_t, &mut realm);
        if realm == b"off" {
            self.scratch.var_pool.borrow_mut().give_buf(realm);
            return Rc::Declined;
        }
        let mut cred = self.scratch.var_pool.borrow_mut().buf();
        let colon = super::vars::header(&req.head, &conn.rbuf, b"authorization")
            .and_then(|v| super::vars::basic_credentials(v, &mut cred));
        let rc = match colon {
            None => {
                self.request_log(
                    conn,
                    req,
                    proton_ir::LogLevel::Info,
                    format_args!("no user/password was provided for basic authentication"),
                );
                set_realm(req, &realm)
            }
            Some(colon) => {
                let (user, password) = (&cred[..colon], &cred[colon + 1..]);
                let mut path = self.scratch.var_pool.borrow_mut().buf();
                {
                    let ctx = self.ctx(conn, req, 0);
                    ctx.expand(file_t, &mut path);
                    ctx.make_absolute(&mut path, 0);
                }
                let rc = self.check_user_file((conn, &*req), user, password, &path);
                self.scratch.var_pool.borrow_mut().give_buf(path);
                match rc {
                    Some(rc) => rc,
                    None => set_realm(req, &realm),
                }
            }
        };
        let mut pool = self.scratch.var_pool.borrow_mut();
        pool.give_buf(cred);
        pool.give_buf(realm);
        rc
    }

    /// Looks `user` up in the user file at `path` and checks `password`: `Some(Ok)`, an
    /// error status (`Some(Status)`: a missing file is 403, an unreadable one 500), or
    /// `None` to ask for credentials again (unknown user, wrong password).
    fn check_user_file(
        &self,
        (conn, req): (&Conn, &RequestCtx),
        user: &[u8],
        password: &[u8],
        path: &[u8],
    ) -> Option<Rc> {
        use std::io::Read;
        use std::os::unix::ffi::OsStrExt;
        let name = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        let shown = String::from_utf8_lossy(path);
        let mut file = match std::fs::File::open(name) {
            Ok(f) => f,
            Err(e) => {
                let missing = e.kind() == std::io::ErrorKind::NotFound;
                let (level, code) = if missing {
                    (proton_ir::LogLevel::Error, 403)
                } else {
                    (proton_ir::LogLevel::Crit, 500)
                };
                self.request_log(
                    conn,
                    req,
                    level,
                    format_args!("open() \"{shown}\" failed ({})", crate::log::OsError(&e)),
                );
                return Some(Rc::Status(code));
            }
        };
        let mut scan = crate::htpasswd::Scan::default();
        let mut chunk = [0u8; 4096];
        loop {
            match file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    if scan.feed(user, &chunk[..n]) {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.request_log(
                        conn,
                        req,
                        proton_ir::LogLevel::Crit,
                        format_args!("read() \"{shown}\" failed ({})", crate::log::OsError(&e)),
                    );
                    return Some(Rc::Status(500));
                }
            }
        }
        // (The file's bytes are not kept: nginx wipes its buffer too.)
        chunk.fill(0);
        let user_shown = String::from_utf8_lossy(user);
        let Some(stored) = scan.field() else {
            self.request_log(
                conn,
                req,
                proton_ir::LogLevel::Error,
                format_args!("user \"{user_shown}\" was not found in \"{shown}\""),
            );
            return None;
        };
        match crate::htpasswd::verify(password, stored) {
            crate::htpasswd::Verdict::Match => Some(Rc::Ok),
            crate::htpasswd::Verdict::Mismatch => {
                self.request_log(
                    conn,
                    req,
                    proton_ir::LogLevel::Error,
                    format_args!("user \"{user_shown}\": password mismatch"),
                );
                None
            }
            crate::htpasswd::Verdict::Unsupported => {
                self.request_log(conn, req, proton_ir::LogLevel::Error, format_args!("user \"{user_shown}\": the password hash in \"{shown}\" is in a format Proton does not support (gost-yescrypt or scrypt)"));
                None
            }
        }
    }

    /// `auth_jwt`: the token (from `Authorization: Bearer` or the `token=` variable)
    /// verified with the location's key set, then `auth_jwt_require`.
    fn auth_jwt(&mut self, conn: &Conn, req: &mut RequestCtx, loc: LocationId) -> Rc {
        let loaded = self.loaded;
        let index = self.settings_index(loc);
        let Some(j) = loaded.ir.settings[index].auth.jwt.as_deref() else {
            return Rc::Declined;
        };
        let mut realm = self.scratch.var_pool.borrow_mut().buf();
        self.ctx(conn, req, 0).expand(&j.realm, &mut realm);
        if realm == b"off" {
            self.scratch.var_pool.borrow_mut().give_buf(realm);
            return Rc::Declined;
        }
        let Some(keys) = loaded.jwt_keys.get(index).and_then(Option::as_deref) else {
            elog!(self.elog, Alert, "auth_jwt has no key set");
            self.scratch.var_pool.borrow_mut().give_buf(realm);
            return Rc::Status(500);
        };
        // `auth_jwt_key_request`: the fetched set (kept by the worker, or fetched now).
        let mut fetched = None;
        if j.key_request.is_some() {
            let found = self
                .jwt_fetched
                .iter()
                .find(|(s, _, until)| *s as usize == index && *until > self.now)
                .map(|(_, set, _)| set.clone());
            match std::mem::take(&mut req.auth.sub) {
                AuthSub::Done(answer) => match answer.keys {
                    Some(set) => fetched = Some(set),
                    None => {
                        self.scratch.var_pool.borrow_mut().give_buf(realm);
                        return Rc::Status(500);
                    }
                },
                waiting @ (AuthSub::Wanted | AuthSub::Running(..)) => {
                    req.auth.sub = waiting;
                    self.scratch.var_pool.borrow_mut().give_buf(realm);
                    return Rc::Again;
                }
                AuthSub::None => match found {
                    Some(set) => fetched = Some(set),
                    None if req.limits.can_delay => {
                        req.auth.sub = AuthSub::Wanted;
                        self.scratch.var_pool.borrow_mut().give_buf(realm);
                        return Rc::Again;
                    }
                    None => {
                        self.request_log(
                            conn,
                            req,
                            proton_ir::LogLevel::Error,
                            format_args!("auth_jwt_key_request cannot wait in a post action"),
                        );
                        self.scratch.var_pool.borrow_mut().give_buf(realm);
                        return Rc::Status(500);
                    }
                },
            }
        }
        let mut token = self.scratch.var_pool.borrow_mut().buf();
        match &j.token {
            Some(t) => self.ctx(conn, req, 0).expand(t, &mut token),
            None => {
                if let Some(t) = super::vars::header(&req.head, &conn.rbuf, b"authorization")
                    .and_then(proton_jwt::bearer_token)
                {
                    token.extend_from_slice(t);
                }
            }
        }
        let now = self.date.unix_secs().max(0) as u64;
        // The fetched set first; the key files' keys when it has none for the token.
        let verdict = match fetched.as_deref() {
            Some(f) => match proton_jwt::verify(&token, f, now, j.leeway_secs) {
                Err(proton_jwt::Refusal::UnknownKid(_) | proton_jwt::Refusal::AlgNotAllowed(_))
                    if !keys.keys().is_empty() =>
                {
                    proton_jwt::verify(&token, keys, now, j.leeway_secs)
                }
                v => v,
            },
            None => proton_jwt::verify(&token, keys, now, j.leeway_secs),
        };
        self.scratch.var_pool.borrow_mut().give_buf(token);
        let rc = match verdict {
            Ok(jwt) => {
                req.auth.jwt = Some(Box::new(jwt));
                // Each requirement (variables may read the claims now).
                let mut v = self.scratch.var_pool.borrow_mut().buf();
                let failed = j.require.iter().position(|t| {
                    v.clear();
                    self.ctx(conn, req, 0).expand(t, &mut v);
                    !proton_jwt::requirement_met(&v)
                });
                self.scratch.var_pool.borrow_mut().give_buf(v);
                match failed {
                    None => Rc::Ok,
                    Some(i) => {
                        self.request_log(
                            conn,
                            req,
                            proton_ir::LogLevel::Error,
                            format_args!(
                                "JWT requirement {} of auth_jwt_require is not met",
                                i + 1
                            ),
                        );
                        if j.require_error == 401 {
                            bearer_realm(req, &realm, true)
                        } else {
                            Rc::Status(j.require_error)
                        }
                    }
                }
            }
            Err(refusal) => {
                let given = refusal != proton_jwt::Refusal::Missing;
                if given {
                    self.request_log(
                        conn,
                        req,
                        proton_ir::LogLevel::Error,
                        format_args!("{refusal}"),
                    );
                } else {
                    self.request_log(
                        conn,
                        req,
                        proton_ir::LogLevel::Info,
                        format_args!("{refusal}"),
                    );
                }
                bearer_realm(req, &realm, given)
            }
        };
        self.scratch.var_pool.borrow_mut().give_buf(realm);
        rc
    }

    /// `auth_request`: starts the subrequest, waits for it, then answers by its status.
    fn auth_request(&mut self, conn: &Conn, req: &mut RequestCtx, loc: LocationId) -> Rc {
        let loaded = self.loaded;
        let auth = &loaded.ir.settings[self.settings_index(loc)].auth;
        if auth.request.is_none() {
            return Rc::Declined;
        }
        match std::mem::take(&mut req.auth.sub) {
            AuthSub::None => {
                if !req.limits.can_delay {
                    // (A post action runs after the response, where the request cannot
                    // stop to wait.)
                    self.request_log(
                        conn,
                        req,
                        proton_ir::LogLevel::Error,
                        format_args!("auth_request cannot wait in a post action"),
                    );
                    return Rc::Status(500);
                }
                req.auth.sub = AuthSub::Wanted;
                Rc::Again
            }
            waiting @ (AuthSub::Wanted | AuthSub::Running(..)) => {
                req.auth.sub = waiting;
                Rc::Again
            }
            AuthSub::Done(answer) => {
                // The variables first, as nginx (they stay through internal redirects).
                for (set, value) in auth.request_set.iter().zip(&answer.values) {
                    match set.var {
                        SetTarget::User(i) => {
                            if let Some(slot) = req.user.get_mut(i as usize) {
                                let mut v = slot.take().unwrap_or_default();
                                v.clear();
                                v.extend_from_slice(value);
                                *slot = Some(v);
                            }
                        }
                        SetTarget::Builtin(b) => {
                            super::request::set_builtin(self, conn, req, b, value);
                        }
                    }
                }
                match answer.status {
                    403 => Rc::Status(403),
                    401 => {
                        req.carried.extend_from_slice(&answer.lines);
                        Rc::Status(401)
                    }
                    200..=299 => Rc::Ok,
                    s => {
                        self.request_log(
                            conn,
                            req,
                            proton_ir::LogLevel::Error,
                            format_args!("auth request unexpected status: {s}"),
                        );
                        Rc::Status(500)
                    }
                }
            }
        }
    }

    /// The index of `loc`'s settings in the IR.
    fn settings_index(&self, loc: LocationId) -> usize {
        let ir = &self.loaded.ir;
        ir.locations
            .get(loc.0 as usize)
            .map_or(0, |l| l.conf.settings.0 as usize)
            .min(ir.settings.len().saturating_sub(1))
    }

    /// A subrequest connection made for `auth_request` finishes its request: the
    /// `auth_request_set` values are evaluated in it, for its parent.
    pub(crate) fn auth_sub_finishing(&self, conn: &mut Conn) {
        let Some(settings) = sub::link_of(conn)
            .and_then(|l| l.auth.as_deref())
            .map(|a| a.settings as usize)
        else {
            return;
        };
        let Some(sets) = self
            .loaded
            .ir
            .settings
            .get(settings)
            .map(|s| &s.auth.request_set)
        else {
            return;
        };
        let Some(req) = conn.req.take() else {
            return;
        };
        let status = conn.finished.status;
        let mut values = Vec::with_capacity(sets.len());
        for set in sets {
            let mut v = Vec::new();
            self.ctx(conn, &req, status).expand(&set.value, &mut v);
            values.push(v);
        }
        conn.req = Some(req);
        if let Some(a) = sub::link_of(conn).and_then(|l| l.auth.as_deref_mut()) {
            a.values = values;
        }
    }
}

/// Asks for credentials: `WWW-Authenticate: Basic realm="…"` goes with the answer.
fn set_realm(req: &mut RequestCtx, realm: &[u8]) -> Rc {
    req.carried
        .extend_from_slice(b"WWW-Authenticate: Basic realm=\"");
    req.carried.extend_from_slice(realm);
    req.carried.extend_from_slice(b"\"\r\n");
    Rc::Status(401)
}

/// Asks for a token: `WWW-Authenticate: Bearer realm="…"`, with `error="invalid_token"`
/// when one was given (RFC 6750).
fn bearer_realm(req: &mut RequestCtx, realm: &[u8], invalid: bool) -> Rc {
    req.carried
        .extend_from_slice(b"WWW-Authenticate: Bearer realm=\"");
    req.carried.extend_from_slice(realm);
    req.carried.push(b'"');
    if invalid {
        req.carried.extend_from_slice(b", error=\"invalid_token\"");
    }
    req.carried.extend_from_slice(b"\r\n");
    Rc::Status(401)
}

/// A write by the handlers of an auth subrequest: the head is kept (up to [`HEAD_MAX`]),
/// the body dropped. `None`: not an auth subrequest.
pub(crate) fn sub_write(link: &mut sub::SubLink, data: &[u8]) -> Option<usize> {
    let a = link.auth.as_deref_mut()?;
    if a.keys {
        let room = KEYS_MAX.saturating_sub(link.out.len());
        if data.len() > room {
            a.too_big = true;
        }
        link.out.extend_from_slice(&data[..data.len().min(room)]);
        return Some(data.len());
    }
    if a.head_done {
        return Some(data.len());
    }
    let from = link.out.len().saturating_sub(3);
    let room = HEAD_MAX.saturating_sub(link.out.len());
    link.out.extend_from_slice(&data[..data.len().min(room)]);
    if let Some(i) = memchr::memmem::find(&link.out[from..], b"\r\n\r\n") {
        link.out.truncate(from + i + 4);
        a.head_done = true;
    } else if link.out.len() >= HEAD_MAX {
        a.head_done = true;
    }
    Some(data.len())
}

/// Whether connection `c`'s request wants its auth subrequest started.
pub(crate) fn wants_sub(c: &Conn) -> bool {
    c.req
        .as_deref()
        .is_some_and(|r| matches!(r.auth.sub, AuthSub::Wanted))
}

/// The auth subrequest connection `key`'s request waits on, if any.
pub(crate) fn child_of(c: &Conn) -> Option<(usize, u32)> {
    match c.req.as_deref()?.auth.sub {
        AuthSub::Running(k, n) => Some((k, n)),
        _ => None,
    }
}

/// Starts the auth subrequest connection `key`'s request wants, and runs it as far as it
/// goes now. When it is already done, the request goes on (and may want another one, after
/// an internal redirect): `Some(done)` says whether its connection is then done (close
/// it); `None`: it waits.
pub(crate) fn service(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) -> Option<bool> {
    let mut done = None;
    // (Each round is an internal redirect of the request, which its budget bounds.)
    while conns.get(key).is_some_and(wants_sub) {
        match start(conns, key, w) {
            Some(d) => done = Some(d),
            None => return done,
        }
        if done == Some(true) {
            break;
        }
    }
    done
}

/// One auth subrequest of [`service`].
fn start(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) -> Option<bool> {
    let c = conns.get_mut(key)?;
    let req = c.req.as_deref_mut()?;
    let (loc, _) = req.limits.resume?;
    let settings = w.settings_index(loc);
    let auth = &w.loaded.ir.settings[settings].auth;
    // The auth_jwt step fetches its key set; the auth_request step asks its service.
    let keys = req.auth.step == 2;
    let uri = if keys {
        auth.jwt.as_deref()?.key_request.as_deref()?
    } else {
        auth.request.as_deref()?
    };
    // (A path: nginx gives the subrequest no arguments, so a `?` is part of it.)
    let mut target = Vec::with_capacity(uri.len());
    crate::http::response::escape_uri(
        uri.as_bytes(),
        crate::http::response::Escape::Uri,
        &mut target,
    );
    elog!(
        w.elog,
        Debug,
        "*{} auth request subrequest \"{uri}\"",
        c.number
    );
    let Some(skey) = sub::start(conns, key, &target, None, w) else {
        if let Some(r) = conns.get_mut(key).and_then(|c| c.req.as_deref_mut()) {
            r.auth.sub = AuthSub::Done(Box::new(AuthAnswer {
                keys: None,
                status: 500,
                lines: Vec::new(),
                values: Vec::new(),
            }));
        }
        return resume(conns, key, w);
    };
    let number = conns.get(skey).map_or(0, |c| c.number);
    if let Some(l) = conns.get_mut(skey).and_then(sub::link_of) {
        l.auth = Some(Box::new(AuthLink {
            settings: settings as u32,
            values: Vec::new(),
            head_done: false,
            keys,
            too_big: false,
        }));
    }
    if let Some(r) = conns.get_mut(key).and_then(|c| c.req.as_deref_mut()) {
        r.auth.sub = AuthSub::Running(skey, number);
    }
    super::ssi::drive(conns, skey, w);
    if conns
        .get_mut(skey)
        .and_then(sub::link_of)
        .is_some_and(|l| l.done)
    {
        collect(conns, key, skey, w);
        return resume(conns, key, w);
    }
    None
}

/// Whether connection `pkey`'s request waits on auth subrequest `skey`.
pub(crate) fn waits_for(conns: &Slab<Conn>, pkey: usize, skey: usize) -> bool {
    let number = conns.get(skey).map(|c| c.number);
    conns
        .get(pkey)
        .and_then(child_of)
        .is_some_and(|(k, n)| k == skey && Some(n) == number)
}

/// The auth subrequest `skey` of connection `pkey` is done: its status, `WWW-Authenticate`
/// lines and `auth_request_set` values go to the request, and it goes.
pub(crate) fn collect(conns: &mut Slab<Conn>, pkey: usize, skey: usize, w: &mut Worker<'_>) {
    let fetch = conns
        .get_mut(skey)
        .and_then(sub::link_of)
        .and_then(|l| l.auth.as_deref())
        .filter(|a| a.keys)
        .map(|a| (a.settings, a.too_big));
    if let Some((settings, too_big)) = fetch {
        let answer = fetched_keys(conns, skey, settings, too_big, w);
        sub::remove(conns, skey, w);
        if let Some(r) = conns.get_mut(pkey).and_then(|c| c.req.as_deref_mut()) {
            r.auth.sub = AuthSub::Done(Box::new(answer));
        }
        return;
    }
    let answer = conns.get_mut(skey).and_then(sub::link_of).map(|l| {
        let head = &l.out;
        let status = head
            .get(9..12)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u16>().ok())
            .unwrap_or(0);
        let mut lines = Vec::new();
        if status == 401 {
            super::request::carry_lines(head, &[b"www-authenticate"], &mut lines);
        }
        let values = l
            .auth
            .as_deref_mut()
            .map(|a| std::mem::take(&mut a.values))
            .unwrap_or_default();
        AuthAnswer {
            keys: None,
            status,
            lines,
            values,
        }
    });
    sub::remove(conns, skey, w);
    if let Some(r) = conns.get_mut(pkey).and_then(|c| c.req.as_deref_mut()) {
        r.auth.sub = AuthSub::Done(Box::new(answer.unwrap_or(AuthAnswer {
            keys: None,
            status: 0,
            lines: Vec::new(),
            values: Vec::new(),
        })));
    }
}

/// The key set a finished `auth_jwt_key_request` subrequest brought (its response read
/// in whatever framing it has), kept by the worker for `auth_jwt_key_cache`.
fn fetched_keys(
    conns: &mut Slab<Conn>,
    skey: usize,
    settings: u32,
    too_big: bool,
    w: &mut Worker<'_>,
) -> AuthAnswer {
    let mut answer = AuthAnswer {
        keys: None,
        status: 0,
        lines: Vec::new(),
        values: Vec::new(),
    };
    let Some(l) = conns.get_mut(skey).and_then(sub::link_of) else {
        return answer;
    };
    let mut reader = sub::SubReader::Head;
    let mut body = Vec::new();
    let read = reader.read(&mut l.out, &mut body);
    answer.status = match read {
        Ok(Some(s)) => s,
        _ => 0,
    };
    let why = if read.is_err() {
        "an invalid response".to_string()
    } else if too_big {
        format!("a response over {KEYS_MAX} bytes")
    } else if answer.status != 200 {
        format!("status {}", answer.status)
    } else {
        match proton_jwt::KeySet::from_json(&body) {
            Ok(set) => {
                let set = std::sync::Arc::new(set);
                let secs = w
                    .loaded
                    .ir
                    .settings
                    .get(settings as usize)
                    .and_then(|s| s.auth.jwt.as_deref())
                    .map_or(0, |j| j.key_cache_secs);
                w.jwt_fetched.retain(|(s, _, _)| *s != settings);
                if secs > 0 {
                    let until = w.now + std::time::Duration::from_secs(secs);
                    w.jwt_fetched.push((settings, set.clone(), until));
                }
                answer.keys = Some(set);
                return answer;
            }
            Err(e) => format!("no key set in its body: {e}"),
        }
    };
    elog!(w.elog, Error, "auth_jwt_key_request got {why}");
    answer
}

/// Runs connection `key` on (its request resumes routing); `Some(done)`.
fn resume(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) -> Option<bool> {
    super::h2::with_parent(conns, key, |c| {
        w.select_log(c);
        let d = c.on_event(w, true, true);
        w.deselect_log();
        d
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_one_name_are_dropped() {
        let mut l = b"WWW-Authenticate: Basic realm=\"a\"\r\nX-A: 1\r\nwww-authenticate: b\r\nWWW-Authenticate-X: c\r\n".to_vec();
        crate::worker::request::remove_fields(&mut l, usize::MAX, &[b"www-authenticate"]);
        assert_eq!(l, b"X-A: 1\r\nWWW-Authenticate-X: c\r\n");
    }

    #[test]
    fn an_auth_subrequest_keeps_its_head_only_at_every_split_point() {
        let resp = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 9\r\n\r\nINVISIBLE";
        let head_len = resp.len() - 9;
        for step in 1..=resp.len() {
            let mut link = sub::SubLink::for_test();
            link.auth = Some(Box::new(AuthLink {
                settings: 0,
                values: Vec::new(),
                head_done: false,
                keys: false,
                too_big: false,
            }));
            for piece in resp.chunks(step) {
                assert_eq!(sub_write(&mut link, piece), Some(piece.len()));
            }
            assert_eq!(&link.out[..], &resp[..head_len], "step {step}");
        }
    }
}
