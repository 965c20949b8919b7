//! The `resolver`: asynchronous DNS on the worker's event loop, as nginx's `ngx_resolver.c`.
//!
//! Each `resolver` directive of the IR is one [`One`] with a cache of its own. A name asked
//! for becomes a node: its A and AAAA queries (same id) go to one server over UDP (TCP after
//! a truncated answer), again to the next server every [`RESEND`] while requests wait, and
//! the answer is kept for its TTL (or `valid=`). Requests waiting for a name are
//! [`Waiter`]s; when the answer comes, each gets an outcome in [`Resolvers::done`], which the
//! worker hands to the request. Errors are not cached (the next request asks again), as
//! nginx. A waiter's own timeout is the request's deadline (`resolver_timeout`); a node
//! whose waiters all went away is dropped at its next resend.

pub(crate) mod wire;

use crate::elog;
use crate::log::ErrorLog;
use crate::upstream::XorShift64;
use mio::net::{TcpStream, UdpSocket};
use mio::{Interest, Registry, Token};
use rustc_hash::FxHashMap as HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use wire::{Head, TYPE_A, TYPE_AAAA};

/// Tokens of resolver sockets: `RES_BASE + 2 * server` (UDP) and `+ 1` (TCP).
pub(crate) const RES_BASE: usize = 1 << 36;
/// nginx's resend interval, and how long a TCP connection to a server may stay quiet.
const RESEND: Duration = Duration::from_secs(5);
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// A cached answer unused this long is dropped (nginx's `r->expire`).
const EXPIRE: Duration = Duration::from_secs(30);
/// Most CNAME links followed for one name (nginx's `NGX_RESOLVER_MAX_RECURSION`).
const MAX_RECURSION: u8 = 50;
/// Most names a resolver keeps (answers and questions in flight).
const MAX_NODES: usize = 10_000;
/// Most requests waiting for one name (those whose time is up are dropped first).
const MAX_WAITERS: usize = 65_536;
/// Largest answer over UDP (nginx's `NGX_RESOLVER_UDP_SIZE`), and over TCP.
const UDP_SIZE: usize = 4096;
const TCP_SIZE: usize = 2 + 65_535;

/// What a request gets: the addresses (IPv4 first), or nginx's error code (1–5 from the
/// server, 110 for a timeout).
pub(crate) type Outcome = Result<Vec<IpAddr>, u16>;

/// A request waiting for a name: the connection (slab key and serial number) and how many
/// CNAME links led here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub key: usize,
    pub number: u32,
    /// Which request of the connection (its count of requests served then).
    pub request: u64,
    /// Which lookup of that request ([`Resolvers::next_serial`]): an answer for an earlier
    /// one (that timed out, say, before an error_page asked for another name) is not this
    /// one's.
    pub serial: u32,
    pub deadline: Instant,
    pub recursion: u8,
}

/// An outcome for a waiting request.
pub(crate) struct Done {
    pub key: usize,
    pub number: u32,
    pub request: u64,
    pub serial: u32,
    pub outcome: Outcome,
}

/// One family's part of a node: not asked, asked and waiting, or answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part<T> {
    Off,
    Pending { tcp: bool },
    Got(Vec<T>),
}

impl<T> Part<T> {
    fn pending(&self) -> bool {
        matches!(self, Part::Pending { .. })
    }
    fn len(&self) -> usize {
        match self {
            Part::Got(v) => v.len(),
            _ => 0,
        }
    }
}

struct Node {
    ident: u16,
    v4: Part<std::net::Ipv4Addr>,
    v6: Part<std::net::Ipv6Addr>,
    /// An error code from the first family's answer, kept until the other's comes.
    code: u8,
    cname: Option<Vec<u8>>,
    ttl: u32,
    /// Answered and usable until then.
    valid: Option<Instant>,
    expire: Instant,
    resend_at: Instant,
    server: usize,
    waiting: Vec<Waiter>,
}

impl Node {
    fn pending(&self) -> bool {
        self.v4.pending() || self.v6.pending()
    }
}

struct Tcp {
    sock: TcpStream,
    wbuf: Vec<u8>,
    rbuf: Vec<u8>,
    last: Instant,
}

struct Server {
    addr: SocketAddr,
    udp: Option<UdpSocket>,
    tcp: Option<Tcp>,
}

/// One `resolver` directive.
struct One {
    servers: std::ops::Range<usize>,
    valid: Option<u32>,
    ipv4: bool,
    ipv6: bool,
    next: usize,
    nodes: HashMap<Vec<u8>, Node>,
}

/// Every resolver of the configuration, in one worker.
pub(crate) struct Resolvers {
    list: Vec<One>,
    servers: Vec<Server>,
    rng: XorShift64,
    /// Outcomes for waiting requests, taken by the worker after each event.
    pub(crate) done: Vec<Done>,
    buf: Vec<u8>,
    query: Vec<u8>,
    serial: u32,
}

impl Resolvers {
    /// The resolvers of `ir`, with the addresses of their servers as
    /// [`crate::config::resolve_resolvers`] found them when the configuration was loaded.
    pub(crate) fn new(ir: &proton_ir::Ir, addrs: &[Vec<SocketAddr>], seed: u64) -> Resolvers {
        let mut servers = Vec::new();
        let mut list = Vec::new();
        for (i, r) in ir.resolvers.iter().enumerate() {
            let start = servers.len();
            if let Some(addrs) = addrs.get(i) {
                servers.extend(addrs.iter().map(|&addr| Server {
                    addr,
                    udp: None,
                    tcp: None,
                }));
            }
            list.push(One {
                servers: start..servers.len(),
                valid: r.valid_secs,
                ipv4: r.ipv4,
                ipv6: r.ipv6,
                next: 0,
                nodes: HashMap::default(),
            });
        }
        Resolvers {
            list,
            servers,
            rng: XorShift64::new(seed),
            done: Vec::new(),
            buf: Vec::new(),
            query: Vec::new(),
            serial: 0,
        }
    }

    /// A new lookup's serial number (for [`Waiter::serial`]).
    pub(crate) fn next_serial(&mut self) -> u32 {
        self.serial = self.serial.wrapping_add(1);
        self.serial
    }

    /// The request with lookup `serial` no longer waits (it timed out or went away).
    pub(crate) fn cancel(&mut self, r: usize, serial: u32) {
        if let Some(one) = self.list.get_mut(r) {
            for node in one.nodes.values_mut() {
                node.waiting.retain(|w| w.serial != serial);
            }
        }
    }

    /// Looks `name` up for `w` with resolver `r`: the answer at once if cached (or an error
    /// known at once), else `None` and `w` gets its outcome in [`Resolvers::done`] later.
    pub(crate) fn resolve(
        &mut self,
        r: usize,
        name: &[u8],
        w: Waiter,
        now: Instant,
        registry: &Registry,
        elog: &ErrorLog,
    ) -> Option<Outcome> {
        // nginx asks for `name.` as `name`.
        let name = name.strip_suffix(b".").unwrap_or(name);
        let mut name = name.to_ascii_lowercase();
        let mut w = w;
        loop {
            let one = self.list.get_mut(r)?;
            if one.servers.is_empty() {
                return Some(Err(2));
            }
            if let Some(node) = one.nodes.get_mut(&name) {
                if node.valid.is_some_and(|v| v >= now) {
                    node.expire = now + EXPIRE;
                    let n = node.v4.len() + node.v6.len();
                    if n > 0 {
                        return Some(Ok(export(node, true, &mut self.rng)));
                    }
                    match &node.cname {
                        Some(c) if w.recursion < MAX_RECURSION => {
                            name = c.clone();
                            w.recursion += 1;
                            continue;
                        }
                        _ => return Some(Err(u16::from(wire::NXDOMAIN))),
                    }
                }
                if node.pending() {
                    if node.waiting.len() >= MAX_WAITERS {
                        node.waiting.retain(|x| x.deadline > now);
                    }
                    if node.waiting.len() >= MAX_WAITERS {
                        elog!(
                            elog,
                            Error,
                            "too many requests wait for \"{}\" to be resolved",
                            String::from_utf8_lossy(&name)
                        );
                        return Some(Err(2));
                    }
                    node.waiting.push(w);
                    return None;
                }
                // Expired: asked again below.
                one.nodes.remove(&name);
            }
            if one.nodes.len() >= MAX_NODES {
                one.nodes.retain(|_, n| n.pending() || n.expire > now);
            }
            if one.nodes.len() >= MAX_NODES {
                // Room for more: the eighth of the answers used least recently go.
                let mut old: Vec<(Instant, Vec<u8>)> = one
                    .nodes
                    .iter()
                    .filter(|(_, n)| !n.pending())
                    .map(|(k, n)| (n.expire, k.clone()))
                    .collect();
                let n = (old.len() / 8).max(1).min(old.len());
                if n > 0 {
                    old.select_nth_unstable(n - 1);
                    for (_, k) in old.iter().take(n) {
                        one.nodes.remove(k);
                    }
                }
                if one.nodes.len() >= MAX_NODES {
                    elog!(elog, Error, "resolver cache is full of questions in flight");
                    return Some(Err(2));
                }
            }
            let server = one.next;
            one.next = (one.next + 1) % one.servers.len().max(1);
            let node = Node {
                ident: self.rng.next_u64() as u16,
                v4: if one.ipv4 {
                    Part::Pending { tcp: false }
                } else {
                    Part::Off
                },
                v6: if one.ipv6 {
                    Part::Pending { tcp: false }
                } else {
                    Part::Off
                },
                code: 0,
                cname: None,
                ttl: u32::MAX,
                valid: None,
                expire: now + EXPIRE,
                resend_at: now + RESEND,
                server,
                waiting: vec![w],
            };
            if !wire::write_query(&mut self.query, 0, &name, TYPE_A) {
                // Not a name that can be asked for (nginx: "could not be resolved (3: …)").
                return Some(Err(u16::from(wire::NXDOMAIN)));
            }
            one.nodes.insert(name.clone(), node);
            self.send(r, &name, None, now, registry, elog);
            return None;
        }
    }

    /// Sends the node's pending queries to its current server.
    fn send(
        &mut self,
        r: usize,
        name: &[u8],
        only: Option<u16>,
        now: Instant,
        registry: &Registry,
        elog: &ErrorLog,
    ) {
        let Some(one) = self.list.get(r) else {
            return;
        };
        let Some(node) = one.nodes.get(name) else {
            return;
        };
        let s = one.servers.start + node.server % one.servers.len().max(1);
        let (ident, v4, v6) = (node.ident, node.v4.clone(), node.v6.clone());
        let parts = [
            (
                TYPE_A,
                matches!(v4, Part::Pending { tcp: true }),
                v4.pending(),
            ),
            (
                TYPE_AAAA,
                matches!(v6, Part::Pending { tcp: true }),
                v6.pending(),
            ),
        ];
        for (qtype, tcp, pending) in parts {
            if !pending
                || only.is_some_and(|o| o != qtype)
                || !wire::write_query(&mut self.query, ident, name, qtype)
            {
                continue;
            }
            let Some(server) = self.servers.get_mut(s) else {
                return;
            };
            let sent = if tcp {
                send_tcp(server, s, &self.query, now, registry)
            } else {
                send_udp(server, s, &self.query, registry)
            };
            if let Err(e) = sent {
                elog!(
                    elog,
                    Error,
                    "send() to resolver {} failed ({}) while resolving",
                    server.addr,
                    crate::log::OsError(&e)
                );
            }
        }
    }

    /// Readiness of a resolver socket (`token` minus [`RES_BASE`]).
    pub(crate) fn on_ready(
        &mut self,
        t: usize,
        now: Instant,
        registry: &Registry,
        elog: &ErrorLog,
    ) {
        let s = t / 2;
        if t.is_multiple_of(2) {
            let mut buf = std::mem::take(&mut self.buf);
            buf.resize(UDP_SIZE, 0);
            while let Some(udp) = self.servers.get(s).and_then(|x| x.udp.as_ref()) {
                match udp.recv(&mut buf) {
                    Ok(n) => {
                        let msg = buf.get(..n).unwrap_or_default().to_vec();
                        self.on_message(s, &msg, false, now, registry, elog);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // ICMP port unreachable and the like: the query is sent again later.
                        elog!(
                            elog,
                            Error,
                            "recv() from resolver {} failed ({}) while resolving",
                            self.servers[s].addr,
                            crate::log::OsError(&e)
                        );
                    }
                }
            }
            self.buf = buf;
        } else {
            self.tcp_ready(s, now, registry, elog);
        }
    }

    fn tcp_ready(&mut self, s: usize, now: Instant, registry: &Registry, elog: &ErrorLog) {
        let mut msgs = Vec::new();
        let mut failed: Option<std::io::Error> = None;
        {
            let Some(server) = self.servers.get_mut(s) else {
                return;
            };
            let Some(tcp) = server.tcp.as_mut() else {
                return;
            };
            // Write what is queued.
            while !tcp.wbuf.is_empty() {
                match tcp.sock.write(&tcp.wbuf) {
                    Ok(0) => break,
                    Ok(n) => {
                        tcp.wbuf.drain(..n);
                        tcp.last = now;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotConnected => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            // Read answers, each framed by its length.
            if failed.is_none() {
                let mut chunk = [0u8; 4096];
                loop {
                    match tcp.sock.read(&mut chunk) {
                        Ok(0) => {
                            failed = Some(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                            break;
                        }
                        Ok(n) => {
                            tcp.last = now;
                            tcp.rbuf.extend_from_slice(&chunk[..n]);
                            while tcp.rbuf.len() >= 2 {
                                let len =
                                    usize::from(u16::from_be_bytes([tcp.rbuf[0], tcp.rbuf[1]]));
                                if tcp.rbuf.len() < 2 + len {
                                    break;
                                }
                                msgs.push(tcp.rbuf[2..2 + len].to_vec());
                                tcp.rbuf.drain(..2 + len);
                            }
                            // What is left is part of one answer: at most its length prefix
                            // and 65,535 bytes.
                            if tcp.rbuf.len() > TCP_SIZE {
                                failed = Some(std::io::Error::other("answer too large"));
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == std::io::ErrorKind::NotConnected => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
            if let Some(e) = &failed {
                if e.kind() != std::io::ErrorKind::UnexpectedEof || !tcp.wbuf.is_empty() {
                    elog!(
                        elog,
                        Error,
                        "resolver TCP connection to {} failed ({}) while resolving",
                        server.addr,
                        crate::log::OsError(e)
                    );
                }
                server.tcp = None;
            } else {
                let interest = if tcp.wbuf.is_empty() {
                    Interest::READABLE
                } else {
                    Interest::READABLE | Interest::WRITABLE
                };
                let _ = registry.reregister(&mut tcp.sock, Token(RES_BASE + 2 * s + 1), interest);
            }
        }
        for m in msgs {
            self.on_message(s, &m, true, now, registry, elog);
        }
    }

    /// An answer from server `s`.
    fn on_message(
        &mut self,
        s: usize,
        msg: &[u8],
        tcp: bool,
        now: Instant,
        registry: &Registry,
        elog: &ErrorLog,
    ) {
        let Some(r) = self.list.iter().position(|o| o.servers.contains(&s)) else {
            return;
        };
        let (header, name, qtype, at) = match wire::head(msg, tcp) {
            Head::Answer {
                header,
                name,
                qtype,
                records,
            } => (header, name, qtype, records),
            Head::Invalid(e) => {
                elog!(elog, Error, "{e}");
                return;
            }
            Head::FormatError(ident) => {
                let one = &self.list[r];
                match one
                    .nodes
                    .iter()
                    .find(|(_, n)| n.pending() && n.ident == ident)
                {
                    Some((name, _)) => elog!(
                        elog,
                        Error,
                        "DNS error (1: Format error), query id:{ident}, name:\"{}\"",
                        String::from_utf8_lossy(name)
                    ),
                    None => elog!(elog, Error, "DNS error (1: Format error), query id:{ident}"),
                }
                return;
            }
            Head::OtherError(ident, code) => {
                elog!(
                    elog,
                    Error,
                    "DNS error ({code}: {}), query id:{ident}",
                    wire::strerror(u16::from(code))
                );
                return;
            }
        };
        let shown = String::from_utf8_lossy(&name).into_owned();
        let valid_secs = self.list[r].valid;
        let server_idx = s - self.list[r].servers.start;
        let Some(node) = self.list[r].nodes.get_mut(&name) else {
            elog!(elog, Error, "unexpected DNS response for {shown}");
            return;
        };
        let part_tcp = match qtype {
            TYPE_A => match node.v4 {
                Part::Pending { tcp } => tcp,
                _ => {
                    elog!(elog, Error, "unexpected DNS response for {shown}");
                    return;
                }
            },
            _ => match node.v6 {
                Part::Pending { tcp } => tcp,
                _ => {
                    elog!(elog, Error, "unexpected DNS response for {shown}");
                    return;
                }
            },
        };
        if header.trunc && part_tcp {
            return;
        }
        if header.ident != node.ident {
            elog!(
                elog,
                Error,
                "wrong ident {} in DNS response for {shown}, expect {}",
                header.ident,
                node.ident
            );
            return;
        }
        if header.trunc {
            // Asked again over TCP, from the server that answered.
            if qtype == TYPE_A {
                node.v4 = Part::Pending { tcp: true };
            } else {
                node.v6 = Part::Pending { tcp: true };
            }
            node.server = server_idx;
            node.resend_at = now + RESEND;
            self.send(r, &name, Some(qtype), now, registry, elog);
            return;
        }
        let mut code = header.code;
        if code == 0 && node.code != 0 {
            code = node.code;
        }
        let other_pending = if qtype == TYPE_A {
            node.v6.pending()
        } else {
            node.v4.pending()
        };
        if code == 0 && header.answers == 0 {
            set_part(node, qtype, Vec::new(), Vec::new());
            if other_pending {
                return;
            }
            if node.v4.len() + node.v6.len() > 0 {
                self.answered(r, &name, valid_secs, now);
                return;
            }
            code = wire::NXDOMAIN;
        }
        if code != 0 {
            set_part(node, qtype, Vec::new(), Vec::new());
            if other_pending {
                node.code = code;
                return;
            }
            // Errors are not cached.
            if let Some(node) = self.list[r].nodes.remove(&name) {
                for w in node.waiting {
                    self.done.push(Done {
                        key: w.key,
                        number: w.number,
                        request: w.request,
                        serial: w.serial,
                        outcome: Err(u16::from(code)),
                    });
                }
            }
            return;
        }
        let recs = match wire::records(msg, at, header.answers, qtype) {
            Ok(recs) => recs,
            Err(e) => {
                elog!(elog, Error, "{e}");
                return;
            }
        };
        for t in &recs.unexpected {
            elog!(elog, Error, "unexpected RR type {t} in DNS response");
        }
        node.ttl = node.ttl.min(recs.ttl);
        let got = recs.v4.len() + recs.v6.len();
        set_part(node, qtype, recs.v4, recs.v6);
        if other_pending {
            return;
        }
        if node.v4.len() + node.v6.len() > 0 {
            self.answered(r, &name, valid_secs, now);
            return;
        }
        if got == 0 {
            if let Some(c) = recs.cname {
                node.cname = Some(c.clone());
                node.valid =
                    Some(now + Duration::from_secs(u64::from(valid_secs.unwrap_or(node.ttl))));
                node.expire = now + EXPIRE;
                let waiting = std::mem::take(&mut node.waiting);
                for mut w in waiting {
                    if w.recursion >= MAX_RECURSION {
                        self.done.push(Done {
                            key: w.key,
                            number: w.number,
                            request: w.request,
                            serial: w.serial,
                            outcome: Err(u16::from(wire::NXDOMAIN)),
                        });
                        continue;
                    }
                    w.recursion += 1;
                    if let Some(outcome) = self.resolve(r, &c, w, now, registry, elog) {
                        self.done.push(Done {
                            key: w.key,
                            number: w.number,
                            request: w.request,
                            serial: w.serial,
                            outcome,
                        });
                    }
                }
                return;
            }
        }
        elog!(elog, Error, "no A or CNAME types in DNS response");
    }

    /// Both families are in and there are addresses: the waiters get them.
    fn answered(&mut self, r: usize, name: &[u8], valid_secs: Option<u32>, now: Instant) {
        let Some(node) = self.list[r].nodes.get_mut(name) else {
            return;
        };
        let ttl = if node.ttl == u32::MAX { 0 } else { node.ttl };
        node.valid = Some(now + Duration::from_secs(u64::from(valid_secs.unwrap_or(ttl))));
        node.expire = now + EXPIRE;
        let addrs = export(node, false, &mut self.rng);
        for w in std::mem::take(&mut node.waiting) {
            self.done.push(Done {
                key: w.key,
                number: w.number,
                request: w.request,
                serial: w.serial,
                outcome: Ok(addrs.clone()),
            });
        }
    }

    /// Every 250 ms or so: queries still unanswered go again to the next server, names no
    /// request waits for any more are dropped, old answers and quiet TCP connections go.
    pub(crate) fn tick(&mut self, now: Instant, registry: &Registry, elog: &ErrorLog) {
        let mut resend = Vec::new();
        for (r, one) in self.list.iter_mut().enumerate() {
            let n = one.servers.len().max(1);
            one.nodes.retain(|name, node| {
                if !node.pending() {
                    return node.expire > now || node.valid.is_some_and(|v| v >= now);
                }
                if node.resend_at > now {
                    return true;
                }
                node.waiting.retain(|w| w.deadline > now);
                if node.waiting.is_empty() {
                    return false;
                }
                node.server = (node.server + 1) % n;
                node.resend_at = now + RESEND;
                resend.push((r, name.clone()));
                true
            });
        }
        for (r, name) in resend {
            self.send(r, &name, None, now, registry, elog);
        }
        for s in &mut self.servers {
            if s.tcp.as_ref().is_some_and(|t| t.last + TCP_TIMEOUT <= now) {
                s.tcp = None;
            }
        }
    }
}

fn set_part(node: &mut Node, qtype: u16, v4: Vec<std::net::Ipv4Addr>, v6: Vec<std::net::Ipv6Addr>) {
    if qtype == TYPE_A {
        node.v4 = Part::Got(v4);
    } else {
        node.v6 = Part::Got(v6);
    }
}

/// The node's addresses, IPv4 first; `rotate` (a cached answer) starts each family at a
/// random place and the list at a random place, as nginx's `ngx_resolver_export`.
fn export(node: &Node, rotate: bool, rng: &mut XorShift64) -> Vec<IpAddr> {
    let v4: &[std::net::Ipv4Addr] = match &node.v4 {
        Part::Got(v) => v,
        _ => &[],
    };
    let v6: &[std::net::Ipv6Addr] = match &node.v6 {
        Part::Got(v) => v,
        _ => &[],
    };
    let n = v4.len() + v6.len();
    let mut out = vec![IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED); n];
    if n == 0 {
        return out;
    }
    let mut d = if rotate {
        (rng.next_u64() % n as u64) as usize
    } else {
        0
    };
    if !v4.is_empty() {
        let mut j = if rotate {
            (rng.next_u64() % v4.len() as u64) as usize
        } else {
            0
        };
        for _ in 0..v4.len() {
            out[d] = IpAddr::V4(v4[j]);
            d = (d + 1) % n;
            j = (j + 1) % v4.len();
        }
    }
    if !v6.is_empty() {
        let mut j = if rotate {
            (rng.next_u64() % v6.len() as u64) as usize
        } else {
            0
        };
        for _ in 0..v6.len() {
            out[d] = IpAddr::V6(v6[j]);
            d = (d + 1) % n;
            j = (j + 1) % v6.len();
        }
    }
    out
}

fn send_udp(server: &mut Server, s: usize, q: &[u8], registry: &Registry) -> std::io::Result<()> {
    if server.udp.is_none() {
        let local: SocketAddr = if server.addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let mut sock = UdpSocket::bind(local)?;
        sock.connect(server.addr)?;
        registry.register(&mut sock, Token(RES_BASE + 2 * s), Interest::READABLE)?;
        server.udp = Some(sock);
    }
    let Some(udp) = server.udp.as_ref() else {
        return Ok(());
    };
    match udp.send(q) {
        Ok(n) if n == q.len() => Ok(()),
        Ok(_) => Err(std::io::Error::other("send() incomplete")),
        Err(e) => {
            server.udp = None;
            Err(e)
        }
    }
}

fn send_tcp(
    server: &mut Server,
    s: usize,
    q: &[u8],
    now: Instant,
    registry: &Registry,
) -> std::io::Result<()> {
    if server.tcp.is_none() {
        let mut sock = TcpStream::connect(server.addr)?;
        registry.register(
            &mut sock,
            Token(RES_BASE + 2 * s + 1),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        server.tcp = Some(Tcp {
            sock,
            wbuf: Vec::new(),
            rbuf: Vec::new(),
            last: now,
        });
    }
    let Some(tcp) = server.tcp.as_mut() else {
        return Ok(());
    };
    if tcp.wbuf.len() + 2 + q.len() > 8192 {
        return Err(std::io::Error::other("buffer overflow"));
    }
    tcp.wbuf.extend_from_slice(&(q.len() as u16).to_be_bytes());
    tcp.wbuf.extend_from_slice(q);
    tcp.last = now;
    registry.reregister(
        &mut tcp.sock,
        Token(RES_BASE + 2 * s + 1),
        Interest::READABLE | Interest::WRITABLE,
    )
}
