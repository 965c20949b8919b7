//! SSI (`ssi on`) and the addition module (`add_before_body`, `add_after_body`): the
//! body filters that put other responses' bodies into a response, through subrequests
//! (`worker::sub`).
//!
//! Both are stages of the request's body coder (`filter::BodyCoder`): SSI parses the body
//! as it passes ([`SsiState`], the parser of `http::ssi`) and stops at each command;
//! addition stops before the first byte and after the last. While the coder waits, its
//! input is held, in order. After every event of the connection the worker runs
//! [`service`]: it runs the command (`echo`, `set`, `if`…), or starts the subrequest and
//! moves its body into the coder, which compresses and frames it as the body's own
//! (nginx's postpone filter puts subrequest output after SSI, before gzip); when the
//! subrequest is over, the body goes on. Subrequests run one at a time, in the order of
//! the body (as nginx outputs them; `wait="yes"` changes nothing here).

use super::conn::Conn;
use super::filter::Wait;
use super::sub;
use super::Worker;
use crate::elog;
use crate::http::ssi::{self, Parsed, Parser};
use slab::Slab;

/// nginx's default `errmsg`.
const ERRMSG: &[u8] = b"[an error occurred while processing the directive]";
/// nginx's default `timefmt`.
const TIMEFMT: &[u8] = b"%A, %d-%b-%Y %H:%M:%S %Z";
/// The most SSI variables (`set`, `include … set`, named captures) one response keeps.
const MAX_VARS: usize = 256;
/// What a response's body may hold unsent before a subrequest's body waits.
const OUT_HIGH: usize = 64 * 1024;

/// How `echo` writes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Entity,
    Url,
    None,
}

/// Where the body of the subrequest being run goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Into {
    /// Into the response, in the command's place.
    #[default]
    Out,
    /// Into an SSI variable (`include … set="name"`): index into the variables.
    Var(usize),
    /// Into the response, or the block `stub` names if the subrequest wrote nothing or
    /// ended in an error page of its own (nginx's stub replaces the special response).
    Stub(usize),
}

/// One response's SSI: the parser, the input held while a command or subrequest runs,
/// and the commands' state (nginx's `ngx_http_ssi_ctx_t`).
pub(crate) struct SsiState {
    parser: Parser,
    held: Vec<u8>,
    held_at: usize,
    /// Text is written (not in a false `if` branch or a `block`).
    output: bool,
    /// A branch of the current `if` was taken.
    output_chosen: bool,
    /// 0: outside `if`; 1: in `if`/`elif`; 2: in `else`.
    conditional: u8,
    /// Text goes into the last block.
    block: bool,
    /// `block name=…`: (name, its text).
    blocks: Vec<(Vec<u8>, Vec<u8>)>,
    /// SSI variables: (lowercase name, value).
    vars: Vec<(Vec<u8>, Vec<u8>)>,
    errmsg: Vec<u8>,
    timefmt: Vec<u8>,
    encoding: Encoding,
    silent: bool,
    /// The running subrequest: where its body goes, its status, whether it wrote any.
    pub(crate) into: Into,
    status: u16,
    wrote: bool,
    /// The running subrequest ends in an error page the server makes (a status of 300 or
    /// more, not an upstream's answer): a `stub` takes its place.
    special: bool,
    /// `echo`'s output, written in the command's place once it has run.
    echo: Vec<u8>,
}

impl SsiState {
    pub(crate) fn new(value_len: u32, silent: bool) -> SsiState {
        SsiState {
            parser: Parser::new(value_len as usize),
            held: Vec::new(),
            held_at: 0,
            output: true,
            output_chosen: false,
            conditional: 0,
            block: false,
            blocks: Vec::new(),
            vars: Vec::new(),
            errmsg: ERRMSG.to_vec(),
            timefmt: TIMEFMT.to_vec(),
            encoding: Encoding::Entity,
            silent,
            into: Into::Out,
            status: 0,
            wrote: false,
            special: false,
            echo: Vec::new(),
        }
    }

    /// Parses `data`: text to `txt` (or into the current block, or nowhere), up to a
    /// command, where `wait` is set and the rest of `data` is held.
    pub(crate) fn feed(&mut self, data: &[u8], txt: &mut Vec<u8>, wait: &mut Wait) {
        let n = self.parse(data, txt, wait);
        if n < data.len() {
            if self.held_at == self.held.len() {
                self.held.clear();
                self.held_at = 0;
            }
            self.held.extend_from_slice(&data[n..]);
        }
    }

    /// Parses what was held, as [`SsiState::feed`].
    pub(crate) fn feed_held(&mut self, txt: &mut Vec<u8>, wait: &mut Wait) {
        let held = std::mem::take(&mut self.held);
        let n = self.parse(&held[self.held_at..], txt, wait);
        self.held = held;
        self.held_at += n;
        if self.held_at == self.held.len() {
            self.held.clear();
            self.held_at = 0;
        }
    }

    pub(crate) fn has_held(&self) -> bool {
        self.held_at < self.held.len()
    }

    /// The body ended: a command start it ended in is text.
    pub(crate) fn end_text(&mut self, txt: &mut Vec<u8>) {
        let held = self.parser.take_held();
        self.route(held, txt);
    }

    fn parse(&mut self, data: &[u8], txt: &mut Vec<u8>, wait: &mut Wait) -> usize {
        let mark = txt.len();
        let (n, what) = self.parser.feed(data, txt);
        if !self.output {
            if self.block {
                if let Some((_, b)) = self.blocks.last_mut() {
                    b.extend_from_slice(&txt[mark..]);
                }
            }
            txt.truncate(mark);
        }
        match what {
            Parsed::More => {}
            Parsed::Command => *wait = Wait::Command,
            Parsed::Error => *wait = Wait::Broken,
        }
        n
    }

    /// Text produced outside the parser: to `txt` or the current block.
    fn route(&mut self, text: &[u8], txt: &mut Vec<u8>) {
        if self.output {
            txt.extend_from_slice(text);
        } else if self.block {
            if let Some((_, b)) = self.blocks.last_mut() {
                b.extend_from_slice(text);
            }
        }
    }

    fn var(&self, name: &[u8]) -> Option<&[u8]> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The variable `name`'s slot (made empty if new); `None` when there are too many.
    fn var_slot(&mut self, name: &[u8]) -> Option<usize> {
        if let Some(i) = self.vars.iter().position(|(n, _)| n == name) {
            return Some(i);
        }
        if self.vars.len() >= MAX_VARS {
            return None;
        }
        self.vars.push((name.to_vec(), Vec::new()));
        Some(self.vars.len() - 1)
    }

    fn set_var(&mut self, name: &[u8], value: &[u8]) {
        if let Some(i) = self.var_slot(name) {
            let v = &mut self.vars[i].1;
            v.clear();
            v.extend_from_slice(value);
        }
    }
}

/// What follows a command.
enum Action {
    /// Nothing more: the body goes on.
    Done,
    /// It failed (logged): its `errmsg`, then the body goes on.
    Failed,
    /// Start a subrequest for this target (path and arguments, as on a request line).
    Include(Vec<u8>),
}

/// An SSI command: its name, the parameters it takes, the mandatory ones, and the `if`
/// context it needs (0 none, 1 inside `if`/`elif`, 2 inside any part of one).
type Command = (
    &'static [u8],
    &'static [&'static [u8]],
    &'static [&'static [u8]],
    u8,
);

/// The commands nginx's SSI module has.
const COMMANDS: &[Command] = &[
    (
        b"include",
        &[b"virtual", b"file", b"wait", b"set", b"stub"],
        &[],
        0,
    ),
    (b"echo", &[b"var", b"default", b"encoding"], &[b"var"], 0),
    (b"config", &[b"errmsg", b"timefmt"], &[], 0),
    (b"set", &[b"var", b"value"], &[b"var", b"value"], 0),
    (b"if", &[b"expr"], &[b"expr"], 0),
    (b"elif", &[b"expr"], &[b"expr"], 1),
    (b"else", &[], &[], 1),
    (b"endif", &[], &[], 2),
    (b"block", &[b"name"], &[b"name"], 0),
    (b"endblock", &[], &[], 0),
];

/// Whether the response of connection `c` waits for the worker (see [`service`]).
pub(crate) fn waits(c: &Conn) -> bool {
    c.req
        .as_deref()
        .and_then(|r| r.coder.as_deref())
        .is_some_and(|cd| cd.paused())
}

/// Runs what the response of connection `key` waits for, and the connection with it,
/// until it waits on something else: SSI commands, addition's and SSI's subrequests (their
/// bodies moved into the response as the client takes it). True: the connection is done
/// (close it).
pub(crate) fn service(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) -> bool {
    // (Bounded: a body of many commands yields to the other connections now and then.)
    for _ in 0..4096 {
        let Some(c) = conns.get_mut(key) else {
            return true;
        };
        let Some(wait) = c
            .req
            .as_deref()
            .and_then(|r| r.coder.as_deref())
            .map(|cd| cd.wait)
        else {
            return false;
        };
        let progressed = match wait {
            Wait::Nothing => return false,
            Wait::Command | Wait::Broken => {
                match w.ssi_command(c) {
                    Action::Done => resume(conns, key, w, false),
                    Action::Failed => resume(conns, key, w, true),
                    Action::Include(target) => start_include(conns, key, &target, None, w),
                }
                true
            }
            Wait::Before | Wait::After => {
                let target = addition_target(c, w, wait == Wait::Before);
                start_include(conns, key, &target, None, w);
                true
            }
            Wait::Slice => {
                next_slice(conns, key, w);
                true
            }
            Wait::Sub(skey, number) => pull(conns, key, skey, number, w),
        };
        if !progressed {
            return false;
        }
        // The connection moves on: writes what was coded, reads more of its body.
        let done = super::h2::with_parent(conns, key, |c| {
            w.select_log(c);
            let d = c.on_event(w, true, true);
            w.deselect_log();
            d
        })
        .unwrap_or(true);
        if done {
            return true;
        }
    }
    false
}

/// The URI of the addition subrequest to run for connection `c`'s response.
fn addition_target(c: &Conn, w: &Worker<'_>, before: bool) -> Vec<u8> {
    let a = c
        .req
        .as_deref()
        .and_then(|r| r.location)
        .map(|l| &w.settings_for(l).addition);
    let uri = a.map_or("", |a| if before { &a.before } else { &a.after });
    // (A path: nginx gives the subrequest no arguments, so a `?` is part of it.)
    let mut target = Vec::with_capacity(uri.len());
    crate::http::response::escape_uri(
        uri.as_bytes(),
        crate::http::response::Escape::Uri,
        &mut target,
    );
    target
}

/// Starts the subrequest for `target` that connection `key`'s body waits on, and runs it
/// as far as it goes now. A subrequest nested too deep is refused (nginx's "subrequests
/// cycle"), as a failed command.
fn start_include(
    conns: &mut Slab<Conn>,
    key: usize,
    target: &[u8],
    slice: Option<Box<super::context::SliceState>>,
    w: &mut Worker<'_>,
) {
    let too_deep = conns
        .get_mut(key)
        .is_some_and(|c| sub::depth(c) >= sub::MAX_DEPTH);
    let skey = if too_deep {
        if let Some(c) = conns.get(key) {
            elog!(
                w.elog,
                Error,
                "subrequests cycle while processing \"{}\", client: {}",
                String::from_utf8_lossy(target),
                c.peer.ip()
            );
        }
        None
    } else {
        sub::start(conns, key, target, slice, w)
    };
    let Some(skey) = skey else {
        resume(conns, key, w, true);
        return;
    };
    let number = conns.get(skey).map_or(0, |c| c.number);
    if let Some(cd) = conns
        .get_mut(key)
        .and_then(|c| c.req.as_deref_mut())
        .and_then(|r| r.coder.as_deref_mut())
    {
        cd.wait = Wait::Sub(skey, number);
        if let Some(s) = cd.ssi.as_deref_mut() {
            s.status = 0;
            s.wrote = false;
            s.special = false;
        }
    }
    drive(conns, skey, w);
}

/// `slice`: the next part of the whole is fetched by a subrequest to the same URI (nginx's
/// slice body filter), or, when none is left, the body goes on to its end.
fn next_slice(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) {
    let Some(c) = conns.get_mut(key) else {
        return;
    };
    let Some(req) = c.req.as_deref_mut() else {
        return;
    };
    let next = req
        .slice
        .as_deref_mut()
        .filter(|st| st.start < st.end)
        .map(|st| {
            // The part of this slice the client wants: bytes to skip, then to keep.
            let from = st.want.0.max(st.start);
            let to = st.want.1.min(st.start.saturating_add(st.size));
            st.cut = (from - st.start, to.saturating_sub(from));
            Box::new(super::context::SliceState {
                size: st.size,
                start: st.start,
                end: st.start.saturating_add(st.size),
                want: (0, 0),
                etag: st.etag.clone(),
                cut: (0, 0),
            })
        });
    let Some(part) = next else {
        if let Some(cd) = req.coder.as_deref_mut() {
            cd.slice = false;
        }
        resume(conns, key, w, false);
        return;
    };
    let mut target = Vec::with_capacity(req.uri.len() + req.args.len() + 1);
    crate::http::response::escape_uri(&req.uri, crate::http::response::Escape::Uri, &mut target);
    if !req.args.is_empty() {
        target.push(b'?');
        target.extend_from_slice(&req.args);
    }
    start_include(conns, key, &target, Some(part), w);
}

/// Runs subrequest connection `skey` (its request, its handlers) as far as it goes now.
pub(crate) fn drive(conns: &mut Slab<Conn>, skey: usize, w: &mut Worker<'_>) {
    let Some(sc) = conns.get_mut(skey) else {
        return;
    };
    if let Some(l) = sub::link_of(sc) {
        l.blocked = false;
    }
    w.select_log(sc);
    let mut done = sc.on_event(w, true, true);
    w.deselect_log();
    // Its own body may wait too (SSI in the subrequest's location).
    if !done && conns.get(skey).is_some_and(waits) {
        done = service(conns, skey, w);
    }
    mark(conns, skey, done, w);
}

/// After subrequest connection `skey` ran: done, or waiting (with its timers armed).
pub(crate) fn mark(conns: &mut Slab<Conn>, skey: usize, done: bool, w: &mut Worker<'_>) {
    let Some(sc) = conns.get_mut(skey) else {
        return;
    };
    if done {
        if let Some(l) = sub::link_of(sc) {
            l.done = true;
        }
    } else {
        w.arm(skey, sc);
    }
}

/// The body goes on after a command or a subrequest: what the command wrote first
/// (`echo`'s value; with `failed`, the `errmsg`, unless `ssi_silent_errors`).
fn resume(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>, failed: bool) {
    let Some(c) = conns.get_mut(key) else {
        return;
    };
    let Some(mut req) = c.req.take() else {
        return;
    };
    if let Some(cd) = req.coder.as_deref_mut() {
        let text = cd.ssi.as_deref_mut().map(|s| {
            if failed && !s.silent {
                s.echo.extend_from_slice(&s.errmsg);
            }
            std::mem::take(&mut s.echo)
        });
        let mut r = Ok(());
        if let Some(mut t) = text {
            r = cd.pass(&t, &mut c.wbuf);
            t.clear();
            if let Some(s) = cd.ssi.as_deref_mut() {
                s.echo = t;
            }
        }
        if r.is_ok() {
            r = cd.resume(&mut c.wbuf);
        }
        if let Err(e) = r {
            elog!(
                w.elog,
                Error,
                "{} failed ({}), client: {}",
                cd.what(),
                e.0,
                c.peer.ip()
            );
            c.close_after = true;
        }
    }
    c.req = Some(req);
}

/// Moves what subrequest `skey` wrote into connection `key`'s response; once it is over,
/// the body goes on. Returns whether anything moved.
fn pull(conns: &mut Slab<Conn>, key: usize, skey: usize, number: u32, w: &mut Worker<'_>) -> bool {
    let alive = conns
        .get(skey)
        .is_some_and(|s| s.number == number && sub::is_sub(s));
    if !alive {
        // (Gone with an error already logged.)
        resume(conns, key, w, false);
        return true;
    }
    // A subrequest that waits for room runs again once there is.
    let blocked = conns
        .get_mut(skey)
        .and_then(sub::link_of)
        .is_some_and(|l| l.blocked && !l.done);
    let Some((c, sc)) = conns.get2_mut(key, skey) else {
        return false;
    };
    if c.wbuf.len().saturating_sub(c.wpos) >= OUT_HIGH {
        return false;
    }
    let Some(link) = sub::link_of(sc) else {
        return false;
    };
    let Some(mut req) = c.req.take() else {
        return false;
    };
    let mut moved = false;
    let mut body = w.pool.get();
    body.clear();
    let read = link.reader.read(&mut link.out, &mut body);
    let done = link.done && link.out.is_empty();
    // A body cut short (its upstream failed in the middle) cuts the response short, as
    // nginx ends the main request when a subrequest fails.
    let cut = link.failed
        || (done
            && matches!(
                link.reader,
                sub::SubReader::Length(_) | sub::SubReader::Chunked(_)
            ));
    let mut failed = false;
    // (Whether the subrequest's location proxies: its error is then the upstream's answer.)
    let sub_loc = sc
        .finished
        .location()
        .and_then(|l| w.loaded.ir.locations.get(l as usize));
    let proxied = sub_loc.is_some_and(|l| l.conf.proxy.is_some());
    // `include … set`: the most of the answer kept (`subrequest_output_buffer_size` of the
    // subrequest's location).
    let set_max = sub_loc
        .and_then(|l| w.loaded.ir.settings.get(l.conf.settings.0 as usize))
        .map_or(4096, |s| s.subrequest_output_buffer_size);
    let set_max = usize::try_from(set_max).unwrap_or(usize::MAX);
    match read {
        Ok(status) => {
            if let (Some(st), Some(s)) = (
                status,
                req.coder
                    .as_deref_mut()
                    .and_then(|cd| cd.ssi.as_deref_mut()),
            ) {
                s.status = st;
                s.special = st >= 300 && !proxied;
            }
            moved |= status.is_some();
        }
        Err(why) => {
            elog!(w.elog, Error, "{why}, client: {}", c.peer.ip());
            failed = true;
        }
    }
    // A slice's part: what the client's range wants of it.
    let mut keep = 0..body.len();
    if let (Some(st), Some(cd)) = (req.slice.as_deref_mut(), req.coder.as_deref()) {
        if cd.slice {
            let skip = usize::try_from(st.cut.0)
                .unwrap_or(usize::MAX)
                .min(body.len());
            st.cut.0 -= skip as u64;
            let take = usize::try_from(st.cut.1)
                .unwrap_or(usize::MAX)
                .min(body.len() - skip);
            st.cut.1 -= take as u64;
            keep = skip..skip + take;
        }
    }
    if !body.is_empty() {
        moved = true;
    }
    let body_kept = &body[keep];
    if !body_kept.is_empty() {
        if let Some(cd) = req.coder.as_deref_mut() {
            let into = cd.ssi.as_deref().map_or(Into::Out, |s| s.into.clone());
            match into {
                Into::Var(i) => {
                    if let Some((_, v)) = cd.ssi.as_deref_mut().and_then(|s| s.vars.get_mut(i)) {
                        if v.len() + body_kept.len() > set_max {
                            elog!(
                                w.elog,
                                Error,
                                "too big subrequest response while sending to client, client: {}",
                                c.peer.ip()
                            );
                            v.clear();
                            failed = true;
                        } else {
                            v.extend_from_slice(body_kept);
                        }
                    }
                }
                Into::Stub(_) if cd.ssi.as_deref().is_some_and(|s| s.special) => {
                    // (The error page the stub replaces.)
                }
                Into::Out | Into::Stub(_) => {
                    if let Some(s) = cd.ssi.as_deref_mut() {
                        s.wrote = true;
                    }
                    if cd.pass(body_kept, &mut c.wbuf).is_err() {
                        c.close_after = true;
                    }
                }
            }
        }
    }
    w.pool.put(body);
    if moved {
        // The client's send timeout counts from what it was last given.
        c.deadline = w.now + std::time::Duration::from_millis(c.send_timeout_ms.into());
    }
    let finished = done || failed;
    if finished {
        if let Some(s) = req
            .coder
            .as_deref_mut()
            .and_then(|cd| cd.ssi.as_deref_mut())
        {
            match std::mem::take(&mut s.into) {
                // nginx keeps the body of a successful subrequest only.
                Into::Var(i) if s.status >= 300 || failed => {
                    if let Some((_, v)) = s.vars.get_mut(i) {
                        v.clear();
                    }
                }
                Into::Stub(b) if !s.wrote || s.special => {
                    // The block's text, commands included, is read next (nginx outputs it
                    // through the subrequest's SSI).
                    let text = s.blocks.get(b).map(|(_, t)| t.clone()).unwrap_or_default();
                    s.held.splice(s.held_at..s.held_at, text);
                }
                _ => {}
            }
        }
    }
    if cut {
        elog!(
            w.elog,
            Error,
            "subrequest's response was cut short, client: {}",
            c.peer.ip()
        );
        if let Some(cd) = req.coder.as_deref_mut() {
            cd.failed = true;
        }
        c.close_after = true;
        if let Some(p) = c.proxy.as_deref_mut() {
            p.cut_short();
        }
    }
    // A slice fetched: the next starts after it.
    if finished && !cut {
        if let (Some(st), true) = (
            req.slice.as_deref_mut(),
            req.coder.as_deref().is_some_and(|cd| cd.slice),
        ) {
            st.start = st.start.saturating_add(st.size);
        }
    }
    c.req = Some(req);
    if finished {
        sub::remove(conns, skey, w);
        if !cut {
            resume(conns, key, w, false);
        }
        return true;
    }
    if blocked {
        drive(conns, skey, w);
        return true;
    }
    moved
}

impl Worker<'_> {
    /// Runs the SSI command the response of `c` waits on (or notes a broken one); what it
    /// writes waits in the SSI state for [`resume`].
    fn ssi_command(&mut self, c: &mut Conn) -> Action {
        let Some(mut req) = c.req.take() else {
            return Action::Done;
        };
        let Some(mut cd) = req.coder.take() else {
            c.req = Some(req);
            return Action::Done;
        };
        let action = match cd.ssi.as_deref_mut() {
            Some(s) if cd.wait == Wait::Broken => {
                // (Only where text is written, as nginx's error goes to the output.)
                if s.output {
                    elog!(
                        self.elog,
                        Error,
                        "{}, client: {}",
                        s.parser.error,
                        c.peer.ip()
                    );
                    Err(())
                } else {
                    Ok(Action::Done)
                }
            }
            Some(s) => self.run_command(c, &req, s),
            None => Ok(Action::Done),
        };
        req.coder = Some(cd);
        c.req = Some(req);
        action.unwrap_or(Action::Failed)
    }

    /// A command failed: nginx's error log line (`errmsg` follows).
    fn ssi_error<T>(&self, c: &Conn, msg: std::fmt::Arguments<'_>) -> Result<T, ()> {
        elog!(self.elog, Error, "{msg}, client: {}", c.peer.ip());
        Err(())
    }

    /// One parsed command (nginx's checks of its context and parameters, then its
    /// handler). `Err`: it failed (logged; `errmsg` follows).
    fn run_command(
        &mut self,
        c: &Conn,
        req: &super::context::RequestCtx,
        s: &mut SsiState,
    ) -> Result<Action, ()> {
        let name = s.parser.command().to_vec();
        let Some(&(_, takes, mandatory, cond)) = COMMANDS.iter().find(|(n, ..)| *n == name) else {
            if s.output {
                return self.ssi_error(
                    c,
                    format_args!(
                        "invalid SSI command: \"{}\"",
                        String::from_utf8_lossy(&name)
                    ),
                );
            }
            return Ok(Action::Done);
        };
        let is_block_end = name == b"endblock";
        if !s.output && !is_block_end {
            if s.block {
                // Commands inside a block are kept as text, for when it is used.
                let mut t = b"<!--#".to_vec();
                t.extend_from_slice(&name);
                for (k, v) in s.parser.params() {
                    t.push(b' ');
                    t.extend_from_slice(k);
                    t.extend_from_slice(b"=\"");
                    t.extend_from_slice(v);
                    t.push(b'"');
                }
                t.extend_from_slice(b" -->");
                if let Some((_, b)) = s.blocks.last_mut() {
                    b.extend_from_slice(&t);
                }
                return Ok(Action::Done);
            }
            if cond == 0 {
                return Ok(Action::Done);
            }
        }
        if cond != 0 && (s.conditional == 0 || s.conditional > cond) {
            return self.ssi_error(
                c,
                format_args!(
                    "invalid context of SSI command: \"{}\"",
                    String::from_utf8_lossy(&name)
                ),
            );
        }
        // The parameters, checked against the command's.
        let mut got: [Option<Vec<u8>>; 5] = Default::default();
        for (k, v) in s.parser.params() {
            let Some(i) = takes.iter().position(|t| *t == k) else {
                return self.ssi_error(
                    c,
                    format_args!(
                        "invalid parameter name: \"{}\" in \"{}\" SSI command",
                        String::from_utf8_lossy(k),
                        String::from_utf8_lossy(&name)
                    ),
                );
            };
            if got[i].is_some() {
                return self.ssi_error(
                    c,
                    format_args!(
                        "duplicate \"{}\" parameter in \"{}\" SSI command",
                        String::from_utf8_lossy(k),
                        String::from_utf8_lossy(&name)
                    ),
                );
            }
            got[i] = Some(v.to_vec());
        }
        for m in mandatory {
            let i = takes.iter().position(|t| t == m).unwrap_or(0);
            if got[i].is_none() {
                return self.ssi_error(
                    c,
                    format_args!(
                        "mandatory \"{}\" parameter is absent in \"{}\" SSI command",
                        String::from_utf8_lossy(m),
                        String::from_utf8_lossy(&name)
                    ),
                );
            }
        }
        let [p0, p1, p2, p3, p4] = got;
        match name.as_slice() {
            b"include" => self.ssi_include(c, req, s, [p0, p1, p2, p3, p4]),
            b"echo" => {
                self.ssi_echo(c, req, s, p0.unwrap_or_default(), p1, p2);
                Ok(Action::Done)
            }
            b"config" => {
                if let Some(e) = p0 {
                    s.errmsg = e;
                }
                if let Some(t) = p1 {
                    s.timefmt = t;
                }
                Ok(Action::Done)
            }
            b"set" => {
                let mut v = Vec::new();
                self.ssi_eval(c, req, s, &p1.unwrap_or_default(), None, &mut v)?;
                let var = p0.unwrap_or_default().to_ascii_lowercase();
                s.set_var(&var, &v);
                Ok(Action::Done)
            }
            b"if" | b"elif" => {
                if name == b"if" && s.conditional != 0 {
                    return self.ssi_error(
                        c,
                        format_args!("the \"if\" command inside the \"if\" command"),
                    );
                }
                if s.output_chosen {
                    s.output = false;
                } else {
                    let yes = self.ssi_if(c, req, s, &p0.unwrap_or_default())?;
                    s.output = yes;
                    s.output_chosen = yes;
                }
                s.conditional = 1;
                Ok(Action::Done)
            }
            b"else" => {
                s.output = !s.output_chosen;
                s.conditional = 2;
                Ok(Action::Done)
            }
            b"endif" => {
                s.output = true;
                s.output_chosen = false;
                s.conditional = 0;
                Ok(Action::Done)
            }
            b"block" => {
                s.blocks.push((p0.unwrap_or_default(), Vec::new()));
                s.output = false;
                s.block = true;
                Ok(Action::Done)
            }
            _ => {
                // endblock
                s.output = true;
                s.block = false;
                Ok(Action::Done)
            }
        }
    }

    /// `include virtual|file="…" [wait] [set] [stub]`.
    fn ssi_include(
        &mut self,
        c: &Conn,
        req: &super::context::RequestCtx,
        s: &mut SsiState,
        [virt, file, wait, set, stub]: [Option<Vec<u8>>; 5],
    ) -> Result<Action, ()> {
        let fail = |w: &Self, msg: String| w.ssi_error(c, format_args!("{msg}"));
        let uri = match (virt, file) {
            (Some(v), Some(f)) => {
                return fail(
                    self,
                    format!(
                        "inclusion may be either virtual=\"{}\" or file=\"{}\"",
                        String::from_utf8_lossy(&v),
                        String::from_utf8_lossy(&f)
                    ),
                )
            }
            (None, None) => return fail(self, "no parameter in \"include\" SSI command".into()),
            (Some(v), None) => v,
            (None, Some(f)) => {
                if wait.is_some() {
                    return fail(
                        self,
                        format!(
                            "\"wait\" cannot be used with file=\"{}\"",
                            String::from_utf8_lossy(&f)
                        ),
                    );
                }
                f
            }
        };
        if set.is_some() && stub.is_some() {
            return fail(
                self,
                "\"set\" and \"stub\" cannot be used together in \"include\" SSI command".into(),
            );
        }
        if let Some(wv) = &wait {
            if !wv.eq_ignore_ascii_case(b"yes") && !wv.eq_ignore_ascii_case(b"no") {
                return fail(
                    self,
                    format!(
                        "invalid value \"{}\" in the \"wait\" parameter",
                        String::from_utf8_lossy(wv)
                    ),
                );
            }
        }
        let mut target = Vec::new();
        self.ssi_eval(c, req, s, &uri, Some(&req.uri), &mut target)?;
        let (mut path, mut args) = (Vec::new(), Vec::new());
        if !proton_ir::uri::parse_unsafe_uri(&target, &mut path, &mut args) {
            return fail(
                self,
                format!(
                    "unsafe URI \"{}\" was detected",
                    String::from_utf8_lossy(&target)
                ),
            );
        }
        s.into = Into::Out;
        if let Some(name) = stub {
            let Some(b) = s.blocks.iter().position(|(n, _)| *n == name) else {
                return fail(
                    self,
                    format!(
                        "\"stub\"=\"{}\" for \"include\" not found",
                        String::from_utf8_lossy(&name)
                    ),
                );
            };
            s.into = Into::Stub(b);
        }
        if let Some(name) = set {
            let Some(i) = s.var_slot(&name.to_ascii_lowercase()) else {
                return fail(self, "too many SSI variables".into());
            };
            s.vars[i].1.clear();
            s.into = Into::Var(i);
        }
        // The request line's target: the path escaped again (the subrequest's parser
        // decodes it), then the arguments as they are.
        target.clear();
        crate::http::response::escape_uri(&path, crate::http::response::Escape::Uri, &mut target);
        if !args.is_empty() {
            target.push(b'?');
            target.extend(args.iter().map(|&b| if b <= b' ' { b'+' } else { b }));
        }
        Ok(Action::Include(target))
    }

    /// `echo var="…" [default="…"] [encoding="entity|url|none"]`.
    fn ssi_echo(
        &mut self,
        c: &Conn,
        req: &super::context::RequestCtx,
        s: &mut SsiState,
        var: Vec<u8>,
        default: Option<Vec<u8>>,
        encoding: Option<Vec<u8>>,
    ) {
        let name = var.to_ascii_lowercase();
        let mut value = Vec::new();
        let found = self.ssi_lookup(c, req, s, &name, &mut value);
        let value = if found {
            value
        } else {
            match default {
                Some(d) => d,
                None => b"(none)".to_vec(),
            }
        };
        if let Some(e) = encoding {
            s.encoding = match e.as_slice() {
                b"none" => Encoding::None,
                b"url" => Encoding::Url,
                b"entity" => Encoding::Entity,
                _ => {
                    elog!(
                        self.elog,
                        Error,
                        "unknown encoding \"{}\" in the \"echo\" command, client: {}",
                        String::from_utf8_lossy(&e),
                        c.peer.ip()
                    );
                    s.encoding
                }
            };
        }
        if value.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(value.len());
        match s.encoding {
            Encoding::None => out.extend_from_slice(&value),
            Encoding::Url => crate::http::response::escape_uri(
                &value,
                crate::http::response::Escape::Html,
                &mut out,
            ),
            Encoding::Entity => crate::http::response::escape_html(&value, &mut out),
        }
        s.echo.extend_from_slice(&out);
    }

    /// `if expr="…"`: whether the branch is taken.
    fn ssi_if(
        &mut self,
        c: &Conn,
        req: &super::context::RequestCtx,
        s: &mut SsiState,
        expr: &[u8],
    ) -> Result<bool, ()> {
        let Some(e) = ssi::split_expr(expr) else {
            return self.ssi_error(
                c,
                format_args!(
                    "invalid expression in \"{}\"",
                    String::from_utf8_lossy(expr)
                ),
            );
        };
        let mut left = Vec::new();
        self.ssi_eval(c, req, s, &e.left, None, &mut left)?;
        let Some(t) = e.test else {
            return Ok(!left.is_empty());
        };
        let mut right = Vec::new();
        self.ssi_eval(c, req, s, t.right, None, &mut right)?;
        let equal = if t.regex {
            let pattern = String::from_utf8_lossy(&right);
            let re = match proton_ir::pattern::compile_limited(&pattern, false, 1 << 20) {
                Ok(re) => re,
                Err(err) => {
                    elog!(self.elog, Error, "{err}, client: {}", c.peer.ip());
                    return Err(());
                }
            };
            match re.captures(&left) {
                Some(caps) => {
                    // `$1`… and named groups, for the commands that follow.
                    let group = |i: usize| caps.get(i).and_then(|r| left.get(r)).unwrap_or(b"");
                    for i in 1..caps.len().min(10) {
                        s.set_var(&[b'0' + i as u8], group(i));
                    }
                    for (i, n) in re.capture_names().enumerate() {
                        if let Some(n) = n {
                            s.set_var(n.to_ascii_lowercase().as_bytes(), group(i));
                        }
                    }
                    true
                }
                None => false,
            }
        } else {
            left == right
        };
        Ok(equal != t.negative)
    }

    /// A parameter's value with its variables (see `http::ssi::evaluate`); `prefix`: an
    /// include's URI, made absolute from this one.
    fn ssi_eval(
        &self,
        c: &Conn,
        req: &super::context::RequestCtx,
        s: &SsiState,
        value: &[u8],
        prefix: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> Result<(), ()> {
        let mut lookup = |name: &[u8], out: &mut Vec<u8>| self.ssi_lookup(c, req, s, name, out);
        ssi::evaluate(value, prefix, &mut lookup, out).map_err(|e| {
            elog!(self.elog, Error, "{}, client: {}", e.0, c.peer.ip());
        })
    }

    /// The value of variable `name` (lowercase) as SSI sees it: its own variables first,
    /// then `$date_local`/`$date_gmt` in its `timefmt`, then the server's variables. False:
    /// no such variable (or one not set).
    fn ssi_lookup(
        &self,
        c: &Conn,
        req: &super::context::RequestCtx,
        s: &SsiState,
        name: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        if let Some(v) = s.var(name) {
            out.extend_from_slice(v);
            return true;
        }
        if name == b"date_local" || name == b"date_gmt" {
            let now = self.date.unix_secs();
            format_time(&s.timefmt, now, name == b"date_gmt", out);
            return true;
        }
        self.var_by_name(c, req, name, out)
    }

    /// A variable named at run time (an SSI command's): its value appended to `out`;
    /// false when there is no such variable or it has no value.
    pub(crate) fn var_by_name(
        &self,
        c: &Conn,
        req: &super::context::RequestCtx,
        name: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        use proton_ir::{Builtin, Part, Var};
        let Ok(n) = std::str::from_utf8(name) else {
            return false;
        };
        let ir = &self.loaded.ir;
        // A `set` variable set in this request.
        if let Some(i) = ir.user_vars.iter().position(|u| u == n) {
            if let Some(Some(v)) = req.user.get(i) {
                out.extend_from_slice(v);
                return true;
            }
        }
        let part = if let Some(b) = Builtin::from_name(n) {
            Part::Var(Var::Builtin(b))
        } else if let Some(d) = n.strip_prefix("http_") {
            Part::Var(Var::Http(d.to_string()))
        } else if let Some(d) = n.strip_prefix("arg_") {
            Part::Var(Var::Arg(d.to_string()))
        } else if let Some(d) = n.strip_prefix("cookie_") {
            Part::Var(Var::Cookie(d.to_string()))
        } else if let Some(d) = n.strip_prefix("sent_http_") {
            Part::Var(Var::SentHttp(d.to_string()))
        } else if let Some(d) = n.strip_prefix("upstream_http_") {
            Part::Var(Var::UpstreamHttp(d.to_string()))
        } else if let Some(i) = ir.maps.iter().position(|m| m.name == n) {
            Part::Var(Var::Map(i as u32))
        } else if n.len() == 1 && (b'1'..=b'9').contains(&name[0]) {
            Part::Capture(name[0] - b'0')
        } else {
            return false;
        };
        let ctx = self.ctx(c, req, 0);
        let mark = out.len();
        ctx.expand_part(&part, out);
        out.len() > mark || ctx.found_empty(&part)
    }
}

/// `timefmt` (strftime's common conversions) applied to `secs` (Unix time). Local time
/// is UTC here, as for `$time_local`.
fn format_time(fmt: &[u8], secs: i64, gmt: bool, out: &mut Vec<u8>) {
    use std::io::Write;
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    if fmt == b"%s" {
        let _ = write!(out, "{secs}");
        return;
    }
    let (y, mo, d, h, mi, s) = crate::log::civil(secs);
    let wday = (secs.div_euclid(86_400) + 4).rem_euclid(7) as usize;
    let month = MONTHS[(mo.clamp(1, 12) - 1) as usize];
    let day = DAYS[wday];
    let mut i = 0;
    while i < fmt.len() {
        if fmt[i] != b'%' || i + 1 == fmt.len() {
            out.push(fmt[i]);
            i += 1;
            continue;
        }
        i += 1;
        let _ = match fmt[i] {
            b'a' => write!(out, "{}", &day[..3]),
            b'A' => write!(out, "{day}"),
            b'b' | b'h' => write!(out, "{}", &month[..3]),
            b'B' => write!(out, "{month}"),
            b'd' => write!(out, "{d:02}"),
            b'e' => write!(out, "{d:2}"),
            b'H' => write!(out, "{h:02}"),
            b'I' => write!(out, "{:02}", if h % 12 == 0 { 12 } else { h % 12 }),
            b'M' => write!(out, "{mi:02}"),
            b'S' => write!(out, "{s:02}"),
            b'm' => write!(out, "{mo:02}"),
            b'y' => write!(out, "{:02}", y % 100),
            b'Y' => write!(out, "{y}"),
            b'p' => write!(out, "{}", if h < 12 { "AM" } else { "PM" }),
            b'Z' => write!(out, "{}", if gmt { "GMT" } else { "UTC" }),
            b'z' => write!(out, "+0000"),
            b's' => write!(out, "{secs}"),
            b'T' => write!(out, "{h:02}:{mi:02}:{s:02}"),
            b'D' => write!(out, "{mo:02}/{d:02}/{:02}", y % 100),
            b'F' => write!(out, "{y}-{mo:02}-{d:02}"),
            b'%' => write!(out, "%"),
            other => write!(out, "%{}", char::from(other)),
        };
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_strftime() {
        let mut out = Vec::new();
        // 2009-02-13 23:31:30 UTC, a Friday.
        format_time(TIMEFMT, 1_234_567_890, true, &mut out);
        assert_eq!(out, b"Friday, 13-Feb-2009 23:31:30 GMT");
        out.clear();
        format_time(
            b"%s|%a %b %e %T %F %y %I%p %%",
            1_234_567_890,
            false,
            &mut out,
        );
        assert_eq!(out, b"1234567890|Fri Feb 13 23:31:30 2009-02-13 09 11PM %");
    }

    /// A body through a coder with SSI and addition, its pieces `step` bytes long, fed as
    /// the coder accepts them (`eager`: all at once, held while it waits), with a host that
    /// answers each wait: what comes out.
    fn run_coder(body: &[u8], step: usize, eager: bool, chunked: bool) -> Vec<u8> {
        use super::super::filter::BodyCoder;
        let mut spares = Vec::new();
        let mut c = BodyCoder::take(&mut spares, None, (0, 0), chunked).expect("coder");
        c.ssi = Some(Box::new(SsiState::new(256, false)));
        c.before = true;
        c.after = true;
        c.slice = true;
        let mut out = Vec::new();
        let mut pieces = body.chunks(step.max(1));
        let mut ended = false;
        if eager {
            for p in pieces.by_ref() {
                c.code(p, false, &mut out).expect("code");
            }
            c.end(true, &mut out).expect("end");
            ended = true;
        }
        for _ in 0..10_000 {
            let host: &[u8] = match c.wait {
                Wait::Nothing if c.ended => break,
                Wait::Nothing => {
                    assert!(c.accepting());
                    match pieces.next() {
                        Some(p) => c.code(p, false, &mut out).expect("code"),
                        None if !ended => {
                            ended = true;
                            c.end(true, &mut out).expect("end");
                        }
                        None => panic!("stuck"),
                    }
                    continue;
                }
                Wait::Command => {
                    let s = c.ssi.as_deref().expect("ssi");
                    if s.parser.command() == b"echo" {
                        b"[echo]"
                    } else {
                        b"[inc]"
                    }
                }
                Wait::Broken => b"[err]",
                Wait::Before => b"<B>",
                Wait::After => b"<A>",
                Wait::Slice => {
                    // One more part, then none.
                    if out.ends_with(b"<S>") || out.windows(3).any(|w| w == b"<S>") {
                        c.slice = false;
                        b""
                    } else {
                        b"<S>"
                    }
                }
                Wait::Sub(..) => unreachable!(),
            };
            assert!(!c.accepting());
            c.pass(host, &mut out).expect("pass");
            c.resume(&mut out).expect("resume");
        }
        assert!(c.ended);
        if !chunked {
            return out;
        }
        // Unframed, to compare.
        let mut d = crate::http::chunked::ChunkedDecoder::default();
        let mut plain = Vec::new();
        let mut at = 0;
        loop {
            let step = d.decode(&out[at..]).expect("chunked");
            plain.extend_from_slice(&out[at..][step.data.clone()]);
            at += step.consumed;
            if step.done {
                assert_eq!(at, out.len(), "nothing after the last chunk");
                return plain;
            }
            assert!(
                step.consumed > 0,
                "unterminated: {:?}",
                String::from_utf8_lossy(&out)
            );
        }
    }

    #[test]
    fn a_body_waits_at_each_command_in_order_at_every_split_point() {
        let body = b"a<!--#echo var=\"x\" -->b<!--#include virtual=\"/i\" --><!--#x y -->c<!--#bad x=y-->d<!-";
        // (`<!--#x y -->`: a parameter without a value is an error, as nginx's.)
        let want = b"<B>a[echo]b[inc][err]c[err]d<!-<S><A>";
        for step in 1..=body.len() {
            for eager in [false, true] {
                for chunked in [false, true] {
                    assert_eq!(
                        String::from_utf8_lossy(&run_coder(body, step, eager, chunked)),
                        String::from_utf8_lossy(want),
                        "step {step} eager {eager} chunked {chunked}"
                    );
                }
            }
        }
        // An empty body still gets both additions.
        assert_eq!(run_coder(b"", 1, false, true), b"<B><S><A>");
    }

    #[test]
    fn text_goes_to_the_output_or_the_block_and_waits_at_commands() {
        let mut s = SsiState::new(256, false);
        let mut txt = Vec::new();
        let mut wait = Wait::Nothing;
        s.feed(b"a<!--#x -->b", &mut txt, &mut wait);
        assert_eq!((txt.as_slice(), wait), (&b"a"[..], Wait::Command));
        assert!(s.has_held());
        wait = Wait::Nothing;
        s.output = false;
        s.block = true;
        s.blocks.push((b"n".to_vec(), Vec::new()));
        s.feed_held(&mut txt, &mut wait);
        assert_eq!(txt, b"a");
        assert_eq!(s.blocks[0].1, b"b");
        assert!(!s.has_held());
    }
}
