//! Subrequests (nginx's `ngx_http_subrequest`), for SSI's `include` and the addition
//! module: a request the server makes to itself whose response body takes a place in
//! another response's body.
//!
//! A subrequest is served, like an HTTP/2 stream, by a connection of its own in the
//! worker's slab that has no socket ([`Sock::Stream`] with a [`SubLink`]): a GET for its URI, with its parent
//! request's header fields, is written into its `rbuf`, so the router and every handler
//! (static files, `return`, proxying, error pages) serve it unchanged, with its own request
//! context, timers and upstream connections. What its handlers write goes into its
//! [`SubLink::out`] (bounded: a full one makes the handler wait as a full socket would),
//! where the parent's [`SubReader`] takes the head off and the body bytes out, for the
//! parent's body coder (see `worker::ssi`). A subrequest's response is never compressed or
//! chunked on its way (nginx's gzip and chunked filters skip subrequests) and it is not
//! logged unless `log_subrequest on`.

use super::conn::{Conn, ConnExt, Sock};
use super::Worker;
use crate::http::chunked::ChunkedDecoder;
use slab::Slab;
use std::io::ErrorKind;

/// The most response bytes a subrequest's connection holds for its parent; its writes
/// wait beyond that.
const SUB_OUT_MAX: usize = 64 * 1024;
/// The deepest subrequests nest (nginx's `NGX_HTTP_MAX_SUBREQUESTS` is 50; nginx then logs
/// "subrequests cycle").
pub(crate) const MAX_DEPTH: u8 = 50;

/// A subrequest's connection's link to its parent, in its [`ConnExt`].
pub(crate) struct SubLink {
    /// The parent's slab key and connection number (a parent gone, or a key reused by
    /// another connection, ends the subrequest).
    pub(crate) parent: usize,
    pub(crate) parent_number: u32,
    /// How deep it nests (1: a subrequest of a client's request).
    pub(crate) depth: u8,
    /// The handlers' HTTP/1.1 response bytes not yet taken by the parent.
    pub(crate) out: Vec<u8>,
    /// A write found `out` full: the connection waits to be driven again.
    pub(crate) blocked: bool,
    /// The subrequest's response is complete (its connection has finished).
    pub(crate) done: bool,
    /// It failed in a way that cuts its parent's response short (a slice part that does
    /// not fit).
    pub(crate) failed: bool,
    pub(crate) reader: SubReader,
    /// A slice subrequest's state, given to its request when it starts.
    pub(crate) slice: Option<Box<super::context::SliceState>>,
    /// An `auth_request` subrequest's part (its response cut to the head).
    pub(crate) auth: Option<Box<super::auth::AuthLink>>,
    /// The main request's request line (`$request`, `$request_uri`, `$request_method`).
    pub(crate) main_line: Vec<u8>,
}

/// Where a subrequest's response stands, as its parent reads it.
#[derive(Default)]
pub(crate) enum SubReader {
    /// The head is not whole yet.
    #[default]
    Head,
    /// Body bytes left (`Content-Length`).
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    /// Until the subrequest's connection finishes.
    Close,
    /// The body is over (or there is none).
    Ended,
}

/// The most a subrequest's response head may be.
const HEAD_MAX: usize = 64 * 1024;

impl SubReader {
    /// Takes from the front of `out` what can be read: the head (its status returned the
    /// time it is read), then body bytes appended to `body`. `Err`: a malformed response.
    pub(crate) fn read(
        &mut self,
        out: &mut Vec<u8>,
        body: &mut Vec<u8>,
    ) -> Result<Option<u16>, &'static str> {
        let mut status = None;
        let mut used = 0;
        loop {
            let rest = &out[used..];
            match self {
                SubReader::Head => {
                    let Some(end) = memchr::memmem::find(rest, b"\r\n\r\n") else {
                        if rest.len() > HEAD_MAX {
                            return Err("too big subrequest response head");
                        }
                        break;
                    };
                    let head = &rest[..end + 4];
                    let code = head
                        .get(9..12)
                        .and_then(|d| std::str::from_utf8(d).ok())
                        .and_then(|d| d.parse::<u16>().ok())
                        .ok_or("invalid subrequest response status")?;
                    status = Some(code);
                    let field = |name: &[u8]| super::filter::head_field(head, name);
                    *self = if matches!(code, 204 | 304) || (100..200).contains(&code) {
                        SubReader::Ended
                    } else if field(b"transfer-encoding")
                        .is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"))
                    {
                        SubReader::Chunked(Box::default())
                    } else if let Some(v) = field(b"content-length") {
                        let n = std::str::from_utf8(v)
                            .ok()
                            .and_then(|v| v.parse::<u64>().ok())
                            .ok_or("invalid subrequest response length")?;
                        SubReader::Length(n)
                    } else {
                        SubReader::Close
                    };
                    used += end + 4;
                }
                SubReader::Length(left) => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(rest.len());
                    body.extend_from_slice(&rest[..n]);
                    *left -= n as u64;
                    used += n;
                    if *left == 0 {
                        *self = SubReader::Ended;
                    }
                    break;
                }
                SubReader::Chunked(d) => {
                    if rest.is_empty() {
                        break;
                    }
                    let step = d
                        .decode(rest)
                        .map_err(|_| "invalid chunked subrequest response")?;
                    body.extend_from_slice(&rest[step.data.clone()]);
                    used += step.consumed;
                    if step.done {
                        *self = SubReader::Ended;
                    }
                }
                SubReader::Close => {
                    body.extend_from_slice(rest);
                    used += rest.len();
                    break;
                }
                SubReader::Ended => {
                    // (Anything after the body is not the parent's.)
                    used = out.len();
                    break;
                }
            }
        }
        out.drain(..used);
        Ok(status)
    }
}

impl SubLink {
    #[cfg(test)]
    pub(crate) fn for_test() -> SubLink {
        SubLink {
            parent: 0,
            parent_number: 0,
            depth: 1,
            out: Vec::new(),
            blocked: false,
            done: false,
            failed: false,
            reader: SubReader::Head,
            slice: None,
            auth: None,
            main_line: Vec::new(),
        }
    }

    fn room(&self) -> usize {
        SUB_OUT_MAX.saturating_sub(self.out.len())
    }
}

/// A write by the handlers of a subrequest's connection: into its link's `out`, up to
/// [`SUB_OUT_MAX`] (then `WouldBlock`, as a full socket).
pub(crate) fn sub_write(ext: &mut Option<Box<ConnExt>>, data: &[u8]) -> std::io::Result<usize> {
    let Some(link) = ext.as_deref_mut().and_then(|e| e.sub.as_deref_mut()) else {
        return Err(ErrorKind::NotConnected.into());
    };
    if let Some(n) = super::auth::sub_write(link, data) {
        return Ok(n);
    }
    let room = link.room();
    super::conn::link_write(&mut link.out, room, &mut link.blocked, data)
}

/// The link of a subrequest's connection.
pub(crate) fn link_of(c: &mut Conn) -> Option<&mut SubLink> {
    c.ext.as_deref_mut()?.sub.as_deref_mut()
}

/// Whether a connection is a subrequest's.
pub(crate) fn is_sub(c: &Conn) -> bool {
    matches!(c.sock, Sock::Stream) && c.ext.as_deref().is_some_and(|e| e.sub.is_some())
}

/// The parent of subrequest connection `key`, if it is still there.
pub(crate) fn parent_of(conns: &mut Slab<Conn>, key: usize) -> Option<usize> {
    let (p, n) = conns
        .get_mut(key)
        .and_then(link_of)
        .map(|l| (l.parent, l.parent_number))?;
    conns.get(p).is_some_and(|c| c.number == n).then_some(p)
}

/// How deep connection `c`'s request nests (0: a client's).
pub(crate) fn depth(c: &mut Conn) -> u8 {
    link_of(c).map_or(0, |l| l.depth)
}

/// Makes the connection that serves a subrequest of connection `pkey` for `target` (a
/// path with its arguments, as on a request line): a GET with the parent's header fields
/// (no body: those of the parent's body are left out). Returns its slab key, or `None`
/// when the parent is gone.
pub(crate) fn start(
    conns: &mut Slab<Conn>,
    pkey: usize,
    target: &[u8],
    slice: Option<Box<super::context::SliceState>>,
    w: &mut Worker<'_>,
) -> Option<usize> {
    let p = conns.get_mut(pkey)?;
    let depth = depth(p).saturating_add(1);
    let minor = p.req.as_deref().map_or(1, |r| r.head.minor_version);
    let mut rbuf = w.pool.get();
    rbuf.clear();
    rbuf.extend_from_slice(b"GET ");
    rbuf.extend_from_slice(target);
    rbuf.extend_from_slice(if minor == 0 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    let head = &p.rbuf[..p.head_len().min(p.rbuf.len())];
    let lines = head
        .iter()
        .position(|&b| b == b'\n')
        .map_or(&head[head.len()..], |i| &head[i + 1..]);
    for line in lines.split_inclusive(|&b| b == b'\n') {
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        let body_field = name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect");
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !body_field {
            rbuf.extend_from_slice(line);
        }
    }
    rbuf.extend_from_slice(b"\r\n");
    let (peer, listener, debug, number, started_ms, served) = (
        p.peer,
        p.listener,
        p.debug,
        p.number,
        p.started_ms,
        p.served,
    );
    let local = w.local_of(p);
    let main_line = match link_of(p) {
        Some(l) => l.main_line.clone(),
        None => {
            crate::http::request::request_line(&p.rbuf, p.head_len().min(p.rbuf.len())).to_vec()
        }
    };
    let link = Box::new(SubLink {
        parent: pkey,
        parent_number: number,
        depth,
        out: Vec::new(),
        blocked: false,
        done: false,
        failed: false,
        reader: SubReader::Head,
        slice,
        auth: None,
        main_line,
    });
    let entry = conns.vacant_entry();
    let skey = entry.key();
    let mut sc = Conn::sub(peer, local, listener, debug, skey, link, w);
    sc.rbuf = rbuf;
    // `$connection`, `$connection_requests`, `$request_id` are the parent's (nginx's
    // subrequests share the main request's connection and id).
    (sc.number, sc.started_ms, sc.served) = (number, started_ms, served);
    if let Some(a) = w.armed.get_mut(skey) {
        *a = None;
    }
    entry.insert(sc);
    Some(skey)
}

/// Ends subrequest connection `key` (and its own subrequests): logged as given up if it
/// had not finished, and gone.
pub(crate) fn remove(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) {
    close_children(conns, key, w);
    let Some(mut c) = conns.try_remove(key) else {
        return;
    };
    if !link_of(&mut c).is_some_and(|l| l.done) {
        w.select_log(&c);
        c.log_abort(w);
        w.deselect_log();
    }
    c.release(w);
}

/// Ends the subrequest connection `key`'s response body waits on, if any (its parent is
/// closing).
pub(crate) fn close_children(conns: &mut Slab<Conn>, key: usize, w: &mut Worker<'_>) {
    let Some(c) = conns.get(key) else {
        return;
    };
    let body_child = c
        .req
        .as_deref()
        .and_then(|r| r.coder.as_deref())
        .and_then(|c| match c.wait {
            super::filter::Wait::Sub(k, n) => Some((k, n)),
            _ => None,
        });
    for (k, n) in [body_child, super::auth::child_of(c)].into_iter().flatten() {
        if conns.get(k).is_some_and(|c| c.number == n && is_sub(c)) {
            remove(conns, k, w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(resp: &[u8], step: usize) -> (Option<u16>, Vec<u8>, bool) {
        let mut r = SubReader::Head;
        let mut out = Vec::new();
        let mut body = Vec::new();
        let mut status = None;
        for piece in resp.chunks(step) {
            out.extend_from_slice(piece);
            if let Some(s) = r.read(&mut out, &mut body).unwrap() {
                status = Some(s);
            }
        }
        (status, body, matches!(r, SubReader::Ended))
    }

    #[test]
    fn bodies_are_read_in_every_framing_at_every_split_point() {
        let cases: [(&[u8], &[u8], bool); 4] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloXX",
                b"hello",
                true,
            ),
            (
                b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                b"abcde",
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close",
                b"until close",
                false,
            ),
            (b"HTTP/1.1 304 Not Modified\r\n\r\n", b"", true),
        ];
        for (resp, body, ended) in cases {
            for step in 1..=resp.len() {
                let (status, got, e) = read_all(resp, step);
                assert!(status.is_some());
                assert_eq!(got, body, "step {step}");
                assert_eq!(e, ended);
            }
        }
    }

    #[test]
    fn malformed_responses_are_refused() {
        let mut r = SubReader::Head;
        let mut out = b"HTTP/1.1 2x0 OK\r\n\r\n".to_vec();
        assert!(r.read(&mut out, &mut Vec::new()).is_err());
        let mut r = SubReader::Head;
        let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n".to_vec();
        assert!(r.read(&mut out, &mut Vec::new()).is_err());
    }
}
