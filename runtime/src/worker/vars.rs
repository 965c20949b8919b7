//! Variable values for templates (`return` text, rewrite replacements, `set`, add_header,
//! log formats). Everything is read from the request bytes already in the connection's
//! buffer; expansion appends to a caller-owned `Vec<u8>`.

use crate::http::request::RequestHead;
use crate::http::response::push_decimal;
use proton_ir::uri::{arg_value, cookie_value, pair_value, same_name};
use proton_ir::{Builtin, Ir, LocationId, Map, Part, Template, Var, MAX_MAP_NESTING};
use std::cell::RefCell;
use std::hash::BuildHasher;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Regex captures: `$0`…`$9` of the last match and the named groups of every match so far,
/// as ranges into `text` (the matched subjects, back to back). The buffers are reused from
/// request to request, so a match allocates nothing once they have grown.
#[derive(Default)]
pub(crate) struct Captures {
    text: Vec<u8>,
    numbered: Vec<Option<Range<usize>>>,
    /// (regex, group index, range): the group's name is the regex's.
    named: Vec<(usize, usize, Range<usize>)>,
}

/// Matched subjects kept between requests at most (a larger buffer is dropped).
const CAPTURE_TEXT_KEEP: usize = 64 * 1024;

impl Captures {
    /// Forgets every capture (a new request).
    pub(crate) fn clear(&mut self) {
        if self.text.capacity() > CAPTURE_TEXT_KEEP {
            self.text = Vec::new();
        }
        self.text.clear();
        self.numbered.clear();
        self.named.clear();
    }

    /// Runs regex `id` (`re`) on `subject`; on a match its groups become `$0`…`$9` and its
    /// named groups are added (a later match's group of the same name wins). `locs` is a
    /// reusable location buffer of `re`.
    pub(crate) fn capture(
        &mut self,
        id: usize,
        re: &proton_ir::pattern::Regex,
        locs: &mut proton_ir::pattern::Locations,
        subject: &[u8],
    ) -> bool {
        if re.read(locs, subject).is_none() {
            return false;
        }
        let base = self.text.len();
        self.text.extend_from_slice(subject);
        self.numbered.clear();
        for i in 0..locs.len().min(10) {
            self.numbered
                .push(locs.get(i).map(|r| base + r.start..base + r.end));
        }
        for (i, name) in re.capture_names().enumerate() {
            if let (Some(_), Some(r)) = (name, locs.get(i)) {
                self.named.push((id, i, base + r.start..base + r.end));
            }
        }
        true
    }

    /// Copies the named groups visible in `outer` (a map's regex match sees the request's).
    pub(crate) fn inherit_named(&mut self, outer: &Captures) {
        for (id, i, r) in &outer.named {
            let Some(v) = outer.text.get(r.clone()) else {
                continue;
            };
            let base = self.text.len();
            self.text.extend_from_slice(v);
            self.named.push((*id, *i, base..base + v.len()));
        }
    }

    /// `$n`.
    pub(crate) fn group(&self, n: usize) -> Option<&[u8]> {
        let r = self.numbered.get(n)?.clone()?;
        self.text.get(r)
    }

    /// The named group `name` (ASCII case-insensitive, as nginx's variable names) of the
    /// latest match that has it.
    fn named(&self, regexes: &[proton_ir::pattern::Regex], name: &str) -> Option<&[u8]> {
        let (_, _, r) = self.named.iter().rev().find(|(id, i, _)| {
            regexes
                .get(*id)
                .and_then(|re| re.capture_names().nth(*i).flatten())
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })?;
        self.text.get(r.clone())
    }

    #[cfg(test)]
    pub(crate) fn with_groups(groups: &[&[u8]]) -> Captures {
        let mut c = Captures::default();
        for g in groups {
            let base = c.text.len();
            c.text.extend_from_slice(g);
            c.numbered.push(Some(base..base + g.len()));
        }
        c
    }
}

/// Per-worker buffers that `set` values, rewrites, try_files and map evaluation borrow (the
/// variable context is shared while maps are evaluated, so the pool sits behind a
/// `RefCell`): byte buffers, capture sets, and one location buffer per regex. What is taken
/// is given back, so after the first requests nothing is allocated.
#[derive(Default)]
pub(crate) struct VarPool {
    bufs: Vec<Vec<u8>>,
    caps: Vec<Captures>,
    locs: Vec<Option<proton_ir::pattern::Locations>>,
}

/// Buffers of each kind a pool keeps at most (more are dropped when given back); enough for
/// the `set` values of a request plus what maps and rewrites borrow meanwhile.
const POOL_KEEP: usize = 64;

impl VarPool {
    pub(crate) fn buf(&mut self) -> Vec<u8> {
        let mut b = self.bufs.pop().unwrap_or_default();
        b.clear();
        b
    }

    pub(crate) fn give_buf(&mut self, b: Vec<u8>) {
        if self.bufs.len() < POOL_KEEP && b.capacity() <= CAPTURE_TEXT_KEEP {
            self.bufs.push(b);
        }
    }

    pub(crate) fn caps(&mut self) -> Captures {
        let mut c = self.caps.pop().unwrap_or_default();
        c.clear();
        c
    }

    pub(crate) fn give_caps(&mut self, c: Captures) {
        if self.caps.len() < POOL_KEEP {
            self.caps.push(c);
        }
    }

    /// [`Captures::capture`] of regex `id` (`re`) on `subject` into `caps`, with the
    /// regex's location buffer (made on its first use in this worker, then kept).
    pub(crate) fn capture(
        &mut self,
        caps: &mut Captures,
        id: usize,
        re: &proton_ir::pattern::Regex,
        subject: &[u8],
    ) -> bool {
        if self.locs.len() <= id {
            self.locs.resize_with(id + 1, || None);
        }
        let locs = self.locs[id].get_or_insert_with(|| re.locations());
        caps.capture(id, re, locs, subject)
    }

    /// Groups 1 and 2 of regex `id` (`re`) searched in `subject`, with the regex's kept
    /// location buffer (no allocation per match); `None` when it does not match.
    pub(crate) fn two_groups(
        &mut self,
        id: usize,
        re: &proton_ir::pattern::Regex,
        subject: &[u8],
    ) -> Option<[Option<std::ops::Range<usize>>; 2]> {
        if self.locs.len() <= id {
            self.locs.resize_with(id + 1, || None);
        }
        let locs = self.locs[id].get_or_insert_with(|| re.locations());
        re.read(locs, subject)?;
        Some([locs.get(1), locs.get(2)])
    }
}

/// The request as variables see it.
pub(crate) struct Ctx<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) head: &'a RequestHead,
    /// The current (normalised, possibly rewritten) URI.
    pub(crate) uri: &'a [u8],
    pub(crate) args: &'a [u8],
    pub(crate) host: &'a [u8],
    pub(crate) server_name: &'a str,
    /// The client: the connection's peer, or the address realip took from a header.
    pub(crate) peer: SocketAddr,
    /// The connection's own peer (`$realip_remote_addr`, `$realip_remote_port`).
    pub(crate) conn_peer: SocketAddr,
    pub(crate) local: SocketAddr,
    /// The connection's TLS (`None`: plain HTTP, or TLS before its handshake completed).
    pub(crate) tls: Option<&'a super::tls::TlsConn>,
    /// What the connection's PROXY protocol header said (`listen … proxy_protocol`).
    pub(crate) proxy_protocol: Option<&'a super::conn::ProxyInfo>,
    /// `unix:PATH` for a connection to a unix-domain listener (then `peer` and `local`
    /// mean nothing: `$remote_addr` is `unix:` and the ports are empty, as nginx).
    pub(crate) unix: Option<&'a str>,
    pub(crate) user: &'a [Option<Vec<u8>>],
    /// `$1`… and the named groups of the regex matches so far.
    pub(crate) captures: &'a Captures,
    /// Buffers for evaluating maps.
    pub(crate) pool: &'a RefCell<VarPool>,
    pub(crate) status: u16,
    pub(crate) body_bytes: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) request_time_ms: u64,
    /// `$time_local`, formatted once a second by the worker.
    pub(crate) time_local: &'a [u8],
    /// `$proxy_host` (`host[:port]` of proxy_pass) while proxy headers are made.
    pub(crate) proxy_host: &'a [u8],
    /// The proxy_pass address is a unix socket: `$proxy_host` is `localhost` and
    /// `$proxy_port` empty (nginx's).
    pub(crate) proxy_unix: bool,
    /// Every upstream attempt of the request (`$upstream_addr`, `$upstream_status`, the
    /// times and byte counts: lists as nginx prints them).
    pub(crate) upstreams: &'a [super::context::UpState],
    /// The compiled regexes of the IR, by `RegexId` (map keys).
    pub(crate) regexes: &'a [proton_ir::pattern::Regex],
    /// The IR's `map` blocks, by [`Var::Map`] index.
    pub(crate) maps: &'a [Map],
    /// The IR, for the location's `root`/`alias` (`$document_root`, `$request_filename`).
    pub(crate) ir: &'a Ir,
    /// The location whose settings apply (`None`: none, e.g. while its own root is expanded).
    pub(crate) location: Option<LocationId>,
    /// The directory relative paths are resolved against.
    pub(crate) prefix: &'a Path,
    /// The connection's serial number (`$connection`).
    pub(crate) connection: u32,
    /// Requests on this connection, the current one included (`$connection_requests`).
    pub(crate) connection_requests: u32,
    /// Milliseconds since the connection was accepted (`$connection_time`).
    pub(crate) connection_time_ms: u64,
    /// The response head as sent (status line to blank line), once it is written: for
    /// `$sent_http_*` in access logs. Empty before, and for proxied responses.
    pub(crate) sent_head: &'a [u8],
    /// The trailer lines added so far (`$sent_trailer_*` while `add_trailer` values are made).
    pub(crate) sent_trailers: &'a [u8],
    /// `$limit_rate`: the request's response rate limit (0: none or not yet known).
    pub(crate) limit_rate: u64,
    /// `$limit_req_status` and `$limit_conn_status` (see `worker::limits`; 0: unset).
    pub(crate) limit_status: [u8; 2],
    /// `$upstream_cache_status` (see `crate::cache::Status`; 0: no cache).
    pub(crate) cache_status: u8,
    /// Where `uninitialized_variable_warn` lines go (`None`: nowhere).
    pub(crate) elog: Option<&'a crate::log::ErrorLog>,
    /// The head of the upstream's response (status line and header lines as received) of a
    /// proxied request, kept by its request context: `$upstream_http_*`, `$upstream_cookie_*`.
    pub(crate) upstream_head: &'a [u8],
    /// The trailer section of the upstream's chunked response (`$upstream_trailer_*`).
    pub(crate) upstream_trailers: &'a [u8],
    /// The method became GET (an upstream's X-Accel-Redirect of a request other than HEAD).
    pub(crate) method_get: bool,
    /// A subrequest's: the main request's request line (`$request`, `$request_uri` and
    /// `$request_method` are the main request's, as nginx's).
    pub(crate) main_line: Option<&'a [u8]>,
    /// The request's validated JWT (`$jwt_claim_*`, `$jwt_header_*`, `$jwt_payload`).
    pub(crate) jwt: Option<&'a proton_jwt::Jwt>,
    /// The request came on an HTTP/2 stream: `$server_protocol` and `$request` say
    /// `HTTP/2.0`, as nginx's (the head the stream's connection parsed is HTTP/1.1).
    pub(crate) http2: bool,
    /// The request's values of non-`volatile` maps, computed at their first use and kept
    /// for the rest of the request, as nginx keeps them (`None`: computed at every use).
    pub(crate) map_cache: Option<&'a RefCell<MapCache>>,
    /// The request body as read so far (`$request_body`, `$request_body_file`, and
    /// `$content_length` of a chunked body read whole).
    pub(crate) body: Option<&'a super::body::RequestBody>,
    /// `$request_length`: the head as received (HTTP/2: its header block) and the body
    /// bytes read.
    pub(crate) request_length: u64,
    /// Body bytes in and out of the response's compression, and its coding
    /// (`$gzip_ratio`, `$brotli_ratio`, `$zstd_ratio`).
    pub(crate) gzip_ratio: Option<(crate::http::coding::Coding, (u64, u64))>,
    /// The slice being fetched, (start, size) (`$slice_range`).
    pub(crate) slice: Option<(u64, u64)>,
}

/// The values of non-`volatile` maps one request has computed (see [`Ctx::map_cache`]):
/// ranges into one reused buffer, so a request allocates nothing once it has grown.
#[derive(Default)]
pub(crate) struct MapCache {
    text: Vec<u8>,
    slots: Vec<Option<Range<usize>>>,
}

impl MapCache {
    /// Forgets every value (a new request).
    pub(crate) fn clear(&mut self) {
        if self.text.capacity() > CAPTURE_TEXT_KEEP {
            self.text = Vec::new();
        }
        self.text.clear();
        self.slots.clear();
    }

    fn get(&self, i: u32) -> Option<&[u8]> {
        let r = self.slots.get(i as usize)?.clone()?;
        self.text.get(r)
    }

    fn put(&mut self, i: u32, value: &[u8]) {
        let i = i as usize;
        if self.slots.len() <= i {
            self.slots.resize(i + 1, None);
        }
        let start = self.text.len();
        self.text.extend_from_slice(value);
        self.slots[i] = Some(start..self.text.len());
    }
}

/// The value of the first header `name` (lowercase, `_` for `-`) of a response head.
#[cfg(test)]
pub(crate) fn sent_header<'h>(head: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    head_fields(head).find_map(|(n, v)| same_name(n, name).then_some(v))
}

/// The `Name: value` fields of a response head as written (status line to blank line), or
/// of trailer lines: the status line and lines without a colon are skipped, values trimmed.
pub(crate) fn head_fields(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = memchr::memchr(b':', line)?;
        let (n, v) = (&line[..colon], &line[colon + 1..]);
        // A status line (`HTTP/1.1 200 OK`) has a space before any colon.
        (!n.is_empty() && !n.contains(&b' ')).then(|| (n, crate::http::request::trim_ows(v)))
    })
}

/// Appends the values of every field called `name` (lowercase, `_` for `-`), joined by
/// `sep` and a space, as nginx (1.23 and later) joins repeated headers for `$http_*`,
/// `$sent_http_*`, `$sent_trailer_*` and `$upstream_http_*`. Nothing when there is none.
pub(crate) fn join_fields<'h>(
    fields: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    name: &[u8],
    sep: u8,
    out: &mut Vec<u8>,
) {
    let mut first = true;
    for (_, v) in fields.filter(|(n, _)| same_name(n, name)) {
        if !first {
            out.push(sep);
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(v);
    }
}

/// The request's header fields as (name, value) slices of `buf`.
fn request_fields<'b>(
    head: &'b RequestHead,
    buf: &'b [u8],
) -> impl Iterator<Item = (&'b [u8], &'b [u8])> + 'b {
    head.headers()
        .filter_map(move |(n, v)| Some((buf.get(n)?, buf.get(v)?)))
}

/// `$http_NAME`: every request header `name` (lowercase, as the compiler writes variable
/// names; `_` matches `-`), joined by `"; "` for `Cookie` and `", "` for the others, as nginx.
pub(crate) fn request_header_joined(
    head: &RequestHead,
    buf: &[u8],
    name: &[u8],
    out: &mut Vec<u8>,
) {
    let sep = if name == b"cookie" { b';' } else { b',' };
    join_fields(request_fields(head, buf), name, sep, out);
}

/// The value of header `name` (ASCII case-insensitive; `_` in `name` matches `-`).
pub(crate) fn header<'b>(head: &RequestHead, buf: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    head.headers().find_map(|(n, v)| {
        let n = buf.get(n)?;
        let same = n.len() == name.len()
            && n.iter().zip(name).all(|(a, b)| {
                let a = a.to_ascii_lowercase();
                let b = b.to_ascii_lowercase();
                a == b || (a == b'-' && b == b'_')
            });
        if same {
            buf.get(v)
        } else {
            None
        }
    })
}

/// `$upstream_cookie_NAME`: the first `Set-Cookie` of the upstream's head that sets `name`
/// (nginx's `ngx_http_parse_set_cookie_lines`: its first pair only, up to `;`).
fn set_cookie_value<'h>(head: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    head_fields(head)
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"set-cookie"))
        .find_map(|(_, v)| {
            let first = v.split(|&b| b == b';').next().unwrap_or_default();
            // nginx needs a value longer than the name.
            (v.len() > name.len())
                .then(|| pair_value(first, name))
                .flatten()
        })
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &s[start..end]
}

impl Ctx<'_> {
    /// Appends the expansion of `t`.
    pub(crate) fn expand(&self, t: &Template, out: &mut Vec<u8>) {
        let mut budget = MAP_BUDGET;
        self.expand_at(t, out, 0, &mut budget);
    }

    /// Appends the value of one template part.
    pub(crate) fn expand_part(&self, p: &Part, out: &mut Vec<u8>) {
        let mut budget = MAP_BUDGET;
        self.part_at(p, out, 0, &mut budget);
    }

    /// `depth`: how many maps are being evaluated around this expansion; `budget`: how many
    /// more maps this whole expansion may evaluate.
    fn expand_at(&self, t: &Template, out: &mut Vec<u8>, depth: usize, budget: &mut u32) {
        for p in &t.parts {
            self.part_at(p, out, depth, budget);
        }
    }

    fn part_at(&self, p: &Part, out: &mut Vec<u8>, depth: usize, budget: &mut u32) {
        match p {
            Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
            Part::Capture(n) => {
                if let Some(c) = self.captures.group(*n as usize) {
                    out.extend_from_slice(c);
                }
            }
            Part::Var(Var::Map(i)) => self.map(*i, out, depth, budget),
            Part::Var(v) => self.var(v, out),
        }
    }

    /// The value of map `i`, nginx's order: exact key (ignoring case), then with `hostnames`
    /// the wildcards, then the regexes in order (not for an empty source), then the default.
    /// The compiler and the IR verifier refuse cycles and chains deeper than
    /// [`MAX_MAP_NESTING`]; the bounds here only guarantee that no IR can recurse without
    /// end, nor (maps using other maps several times each) take exponential time.
    fn map(&self, i: u32, out: &mut Vec<u8>, depth: usize, budget: &mut u32) {
        let Some(map) = self.maps.get(i as usize) else {
            return;
        };
        if depth >= MAX_MAP_NESTING || *budget == 0 {
            return;
        }
        let cache = self.map_cache.filter(|_| !map.volatile);
        if let Some(c) = cache {
            if let Some(v) = c.borrow().get(i) {
                out.extend_from_slice(v);
                return;
            }
        }
        let start = out.len();
        self.map_uncached(map, out, depth, budget);
        if let Some(c) = cache {
            if let Some(v) = out.get(start..) {
                c.borrow_mut().put(i, v);
            }
        }
    }

    fn map_uncached(&self, map: &Map, out: &mut Vec<u8>, depth: usize, budget: &mut u32) {
        *budget -= 1;
        let depth = depth + 1;
        let mut subject = self.pool.borrow_mut().buf();
        self.expand_at(&map.source, &mut subject, depth, budget);
        if map.hostnames && subject.last() == Some(&b'.') {
            subject.pop();
        }
        let value = self.map_value(map, &subject);
        self.pool.borrow_mut().give_buf(subject);
        match value {
            Some((value, Some(caps))) => {
                // The value sees this match's captures (nginx also keeps them for the rest
                // of the request; Proton does not).
                let inner = Ctx {
                    captures: &caps,
                    ..*self
                };
                inner.expand_at(value, out, depth, budget);
                self.pool.borrow_mut().give_caps(caps);
            }
            Some((value, None)) => self.expand_at(value, out, depth, budget),
            None => self.expand_at(&map.default, out, depth, budget),
        }
    }

    /// The value `map` gives `subject` (`None`: its default), and, when a regex that the
    /// value reads captures from matched, those captures.
    fn map_value<'m>(
        &self,
        map: &'m Map,
        subject: &[u8],
    ) -> Option<(&'m Template, Option<Captures>)> {
        if let Some(parts) = &map.split {
            let hash = murmur_hash2(subject);
            return parts
                .iter()
                .find(|(bound, _)| hash < *bound || *bound == 0)
                .map(|(_, value)| (value, None));
        }
        if let Some(geo) = &map.geo {
            // nginx: a value that is not an address looks up 255.255.255.255.
            let mut ip = std::str::from_utf8(subject)
                .ok()
                .and_then(|s| s.trim().parse::<std::net::IpAddr>().ok())
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::BROADCAST));
            if let Some(px) = &geo.proxy {
                // `proxy`: from one of these, the client X-Forwarded-For names (every line,
                // in order, as one list), as realip reads it.
                let mut list = self.pool.borrow_mut().buf();
                for (n, v) in request_fields(self.head, self.buf) {
                    if n.eq_ignore_ascii_case(b"x-forwarded-for") {
                        if !list.is_empty() {
                            list.push(b',');
                        }
                        list.extend_from_slice(v);
                    }
                }
                if !list.is_empty() {
                    if let Some(found) = px.client(Some(ip), &list, true) {
                        ip = found;
                    }
                }
                self.pool.borrow_mut().give_buf(list);
            }
            if let Some(ranges) = &geo.ranges {
                // As nginx: an IPv6 client (not IPv4-mapped) looks up 255.255.255.255.
                let n = match ip {
                    std::net::IpAddr::V4(v4) => u32::from(v4),
                    std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(u32::MAX, u32::from),
                };
                let i = ranges.partition_point(|r| r.1 < n);
                return ranges
                    .get(i)
                    .filter(|r| r.0 <= n)
                    .map(|(_, _, value)| (value, None));
            }
            return geo
                .networks
                .iter()
                .find(|(net, _)| net.matches(ip))
                .map(|(_, value)| (value, None));
        }
        if !map.exact.is_empty() || map.hostnames {
            let mut key = self.pool.borrow_mut().buf();
            key.extend_from_slice(subject);
            key.make_ascii_lowercase();
            let found = map.find_static(&key);
            self.pool.borrow_mut().give_buf(key);
            if let Some(t) = found {
                return Some((t, None));
            }
        }
        if subject.is_empty() {
            return None;
        }
        for (id, value) in &map.regex {
            let id = id.0 as usize;
            let Some(re) = self.regexes.get(id) else {
                continue;
            };
            if !uses_captures(value) {
                if re.is_match(subject) {
                    return Some((value, None));
                }
                continue;
            }
            let mut pool = self.pool.borrow_mut();
            let mut caps = pool.caps();
            caps.inherit_named(self.captures);
            if pool.capture(&mut caps, id, re, subject) {
                return Some((value, Some(caps)));
            }
            pool.give_caps(caps);
        }
        None
    }

    fn var(&self, v: &Var, out: &mut Vec<u8>) {
        match v {
            Var::Http(name) => request_header_joined(self.head, self.buf, name.as_bytes(), out),
            Var::SentHttp(name) => {
                join_fields(head_fields(self.sent_head), name.as_bytes(), b',', out)
            }
            Var::SentTrailer(name) => {
                join_fields(head_fields(self.sent_trailers), name.as_bytes(), b',', out)
            }
            Var::UpstreamHttp(name) => {
                join_fields(head_fields(self.upstream_head), name.as_bytes(), b',', out)
            }
            Var::UpstreamTrailer(name) => join_fields(
                head_fields(self.upstream_trailers),
                name.as_bytes(),
                b',',
                out,
            ),
            Var::UpstreamCookie(name) => {
                if let Some(c) = set_cookie_value(self.upstream_head, name.as_bytes()) {
                    out.extend_from_slice(c);
                }
            }
            Var::Arg(name) => {
                if let Some(a) = arg_value(self.args, name.as_bytes()) {
                    out.extend_from_slice(a);
                }
            }
            Var::JwtHeader(name) => {
                if let Some(v) = self.jwt.and_then(|j| member(j.header_map(), name)) {
                    proton_jwt::append_value(v, out);
                }
            }
            Var::JwtClaim(name) => {
                if let Some(v) = self.jwt.and_then(|j| member(j.claims_map(), name)) {
                    proton_jwt::append_value(v, out);
                }
            }
            Var::Cookie(name) => {
                let found = request_fields(self.head, self.buf)
                    .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
                    .find_map(|(_, v)| cookie_value(v, name.as_bytes()));
                if let Some(c) = found {
                    out.extend_from_slice(c);
                }
            }
            Var::NamedCapture(name) => {
                if let Some(v) = self.captures.named(self.regexes, name) {
                    out.extend_from_slice(v);
                }
            }
            Var::User(i) => match self.user.get(*i as usize) {
                Some(Some(val)) => out.extend_from_slice(val),
                // `set $http_x` not run in this request: the header's value (nginx gives
                // such a variable its prefix family's handler).
                _ => match self.ir.user_vars.get(*i as usize).and_then(|n| family(n)) {
                    Some(v) => self.var(&v, out),
                    None => self.uninitialized(*i),
                },
            },
            Var::Builtin(b) => self.builtin(*b, out),
            Var::ProxyProtocolTlv(t) => {
                if let Some(p) = self.proxy_protocol {
                    proxy_tlv(&p.tlvs, *t, out);
                }
            }
            // Evaluated by `part_at`, which knows the nesting depth.
            Var::Map(_) => {}
        }
    }

    /// nginx's `uninitialized_variable_warn`: a `set` variable read before any value.
    fn uninitialized(&self, i: u32) {
        let Some(log) = self.elog else {
            return;
        };
        let warn = self.location.is_some_and(|l| {
            self.ir
                .locations
                .get(l.0 as usize)
                .and_then(|l| self.ir.settings.get(l.conf.settings.0 as usize))
                .is_some_and(|s| s.uninitialized_variable_warn)
        });
        if warn && log.enabled(proton_ir::LogLevel::Warn) {
            let name = self.ir.user_vars.get(i as usize).map_or("", String::as_str);
            let client = match self.unix {
                Some(_) => "unix:".to_string(),
                None => self.peer.ip().to_string(),
            };
            crate::elog!(
                log,
                Warn,
                "using uninitialized \"{name}\" variable, client: {client}"
            );
        }
    }

    /// For a part whose value came out empty: whether the variable exists with an empty
    /// value (nginx logs nothing) rather than not at all (nginx logs `-`).
    pub(crate) fn found_empty(&self, p: &Part) -> bool {
        let Part::Var(v) = p else {
            return false;
        };
        let parsed = !self.head.target.is_empty();
        match v {
            Var::Http(name) => header(self.head, self.buf, name.as_bytes()).is_some(),
            Var::Arg(name) => arg_value(self.args, name.as_bytes()).is_some(),
            Var::Cookie(name) => header(self.head, self.buf, b"cookie")
                .and_then(|c| cookie_value(c, name.as_bytes()))
                .is_some(),
            Var::SentHttp(name) => {
                head_fields(self.sent_head).any(|(n, _)| same_name(n, name.as_bytes()))
            }
            Var::User(i) => matches!(self.user.get(*i as usize), Some(Some(_))),
            Var::Builtin(Builtin::Host | Builtin::IsArgs) => true,
            // nginx's URI exists once the request line was parsed, even when it did not
            // normalise (a 400). Empty arguments (`/x?`) are missing there.
            Var::Builtin(Builtin::Uri | Builtin::DocumentUri | Builtin::RequestUri) => parsed,
            _ => false,
        }
    }

    /// The location's CGI settings (`fastcgi_param`, `fastcgi_split_path_info`, …).
    fn cgi(&self) -> Option<&proton_ir::CgiSettings> {
        let ir = self.ir;
        let l = ir.locations.get(self.location?.0 as usize)?;
        Some(&ir.settings.get(l.conf.settings.0 as usize)?.fastcgi.cgi)
    }

    /// `$fastcgi_script_name` (before `fastcgi_index`) and `$fastcgi_path_info`: the first
    /// two captures of `fastcgi_split_path_info` searched in the URI, or the whole URI and
    /// nothing when there is no such regex or it does not match (nginx's
    /// `ngx_http_fastcgi_split`).
    pub(crate) fn fastcgi_split(&self) -> (&[u8], &[u8]) {
        let uri = self.uri;
        let found = self.cgi().and_then(|c| c.split_path_info).and_then(|id| {
            let re = self.regexes.get(id.0 as usize)?;
            self.pool.borrow_mut().two_groups(id.0 as usize, re, uri)
        });
        match found {
            Some([script, info]) => {
                let part = |r: Option<std::ops::Range<usize>>| r.map_or(&uri[..0], |r| &uri[r]);
                (part(script), part(info))
            }
            None => (uri, &uri[..0]),
        }
    }

    /// The value of a built-in variable, as nginx computes it. The match is exhaustive: a new
    /// [`Builtin`] does not compile until it has a value here.
    fn builtin(&self, b: Builtin, out: &mut Vec<u8>) {
        let head = self.head;
        let (method, target) = match self.main_line {
            Some(line) => {
                let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
                (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                )
            }
            None => (
                self.buf.get(head.method_range.clone()).unwrap_or(b""),
                self.buf.get(head.target.clone()).unwrap_or(b""),
            ),
        };
        let header = |name: &[u8]| header(head, self.buf, name).unwrap_or(b"");
        match b {
            // Without a host in the request, the server's first name (nginx's
            // `cscf->server_name`).
            Builtin::Host if self.host.is_empty() => {
                out.extend_from_slice(self.server_name.as_bytes())
            }
            Builtin::Host => out.extend_from_slice(self.host),
            Builtin::Uri | Builtin::DocumentUri => out.extend_from_slice(self.uri),
            Builtin::RealipRemoteAddr if self.unix.is_some() => out.extend_from_slice(b"unix:"),
            Builtin::RealipRemotePort if self.unix.is_some() => {}
            Builtin::RealipRemoteAddr => push_ip(out, self.conn_peer.ip()),
            Builtin::RealipRemotePort => push_decimal(out, self.conn_peer.port().into()),
            Builtin::InvalidReferer => {
                let referers = self.location.and_then(|l| {
                    let loc = self.ir.locations.get(l.0 as usize)?;
                    self.ir
                        .settings
                        .get(loc.conf.settings.0 as usize)?
                        .referers
                        .as_deref()
                });
                if let Some(r) = referers {
                    let referer = self::header(head, self.buf, b"referer");
                    let regexes = self.regexes;
                    let mut is_match = |id: proton_ir::RegexId, s: &[u8]| {
                        regexes.get(id.0 as usize).is_some_and(|re| re.is_match(s))
                    };
                    if r.invalid(referer, &mut is_match) {
                        out.push(b'1');
                    }
                }
            }
            Builtin::LimitRate => {
                let _ = write!(out, "{}", self.limit_rate);
            }
            Builtin::JwtPayload => {
                if let Some(j) = self.jwt {
                    let _ = serde_json::to_writer(&mut *out, j.claims_map());
                }
            }
            Builtin::LimitReqStatus => out
                .extend_from_slice(super::limits::req_status_name(self.limit_status[0]).as_bytes()),
            Builtin::UpstreamCacheStatus => {
                out.extend_from_slice(crate::cache::status_name(self.cache_status).as_bytes())
            }
            Builtin::LimitConnStatus => out.extend_from_slice(
                super::limits::conn_status_name(self.limit_status[1]).as_bytes(),
            ),
            Builtin::Args | Builtin::QueryString => out.extend_from_slice(self.args),
            Builtin::IsArgs => {
                if !self.args.is_empty() {
                    out.push(b'?');
                }
            }
            Builtin::RequestUri => out.extend_from_slice(target),
            Builtin::RequestMethod if self.method_get => out.extend_from_slice(b"GET"),
            Builtin::RequestMethod => out.extend_from_slice(method),
            // As nginx: the request line as the client sent it (absolute-form, extra spaces,
            // or a line the parser refused), without its line ending.
            Builtin::Request => {
                let line = self.main_line.unwrap_or_else(|| {
                    crate::http::request::request_line(self.buf, self.buf.len())
                });
                match line.strip_suffix(b" HTTP/1.1").filter(|_| self.http2) {
                    Some(start) => {
                        out.extend_from_slice(start);
                        out.extend_from_slice(b" HTTP/2.0");
                    }
                    None => out.extend_from_slice(line),
                }
            }
            Builtin::ServerProtocol if self.http2 => out.extend_from_slice(b"HTTP/2.0"),
            // "h2" over TLS (ALPN), "h2c" over plain TCP.
            Builtin::Http2 if self.http2 && self.tls.is_some() => out.extend_from_slice(b"h2"),
            Builtin::Http2 if self.http2 => out.extend_from_slice(b"h2c"),
            Builtin::Http2 => {}
            Builtin::ServerProtocol => {
                let _ = write!(out, "HTTP/1.{}", head.minor_version);
            }
            Builtin::Scheme if self.tls.is_some() => out.extend_from_slice(b"https"),
            Builtin::Scheme => out.extend_from_slice(b"http"),
            Builtin::Https if self.tls.is_some() => out.extend_from_slice(b"on"),
            Builtin::Https => {}
            // No 0-RTT data is ever accepted: never "1".
            Builtin::SslEarlyData => {}
            Builtin::SslProtocol
            | Builtin::SslCipher
            | Builtin::SslServerName
            | Builtin::SslSessionReused
            | Builtin::SslSessionId
            | Builtin::SslAlpnProtocol
            | Builtin::SslCurve
            | Builtin::SslCurves
            | Builtin::SslCiphers => {
                if let Some(t) = self.tls {
                    ssl_var(b, t, out);
                }
            }
            Builtin::SslClientVerify => {
                if let Some(t) = self.tls {
                    out.extend_from_slice(t.client_verify().as_variable().as_bytes());
                }
            }
            Builtin::SslClientSDn
            | Builtin::SslClientIDn
            | Builtin::SslClientSDnLegacy
            | Builtin::SslClientIDnLegacy
            | Builtin::SslClientSerial
            | Builtin::SslClientFingerprint
            | Builtin::SslClientCert
            | Builtin::SslClientRawCert
            | Builtin::SslClientEscapedCert
            | Builtin::SslClientVStart
            | Builtin::SslClientVEnd
            | Builtin::SslClientVRemain => {
                if let Some(der) = self.tls.and_then(super::tls::TlsConn::client_certificate) {
                    client_cert_var(b, der, out);
                }
            }
            // A unix-socket client is `unix:`, unless realip named another (`peer` is then
            // that one, `conn_peer` the connection's placeholder).
            Builtin::RemoteAddr | Builtin::BinaryRemoteAddr
                if self.unix.is_some() && self.peer == self.conn_peer =>
            {
                out.extend_from_slice(b"unix:")
            }
            Builtin::RemotePort | Builtin::ServerPort if self.unix.is_some() => {}
            Builtin::ServerAddr if self.unix.is_some() => {
                out.extend_from_slice(self.unix.unwrap_or_default().as_bytes())
            }
            Builtin::RemoteAddr => push_ip(out, self.peer.ip()),
            Builtin::BinaryRemoteAddr => match self.peer.ip() {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            },
            Builtin::ProxyProtocolAddr => {
                if let Some(a) = self.proxy_protocol.and_then(|p| p.addrs) {
                    let _ = write!(out, "{}", a.src.ip());
                }
            }
            Builtin::ProxyProtocolPort => {
                if let Some(a) = self.proxy_protocol.and_then(|p| p.addrs) {
                    let _ = write!(out, "{}", a.src.port());
                }
            }
            Builtin::ProxyProtocolServerAddr => {
                if let Some(a) = self.proxy_protocol.and_then(|p| p.addrs) {
                    let _ = write!(out, "{}", a.dst.ip());
                }
            }
            Builtin::ProxyProtocolServerPort => {
                if let Some(a) = self.proxy_protocol.and_then(|p| p.addrs) {
                    let _ = write!(out, "{}", a.dst.port());
                }
            }
            Builtin::RemotePort => push_decimal(out, self.peer.port().into()),
            Builtin::ServerAddr => push_ip(out, self.local.ip()),
            Builtin::ServerPort => push_decimal(out, self.local.port().into()),
            Builtin::ServerName => out.extend_from_slice(self.server_name.as_bytes()),
            Builtin::Status => {
                let _ = write!(out, "{:03}", self.status);
            }
            Builtin::BodyBytesSent => {
                let _ = write!(out, "{}", self.body_bytes);
            }
            Builtin::GzipRatio | Builtin::BrotliRatio | Builtin::ZstdRatio => {
                use crate::http::coding::Coding;
                let want = match b {
                    Builtin::BrotliRatio => Coding::Br,
                    Builtin::ZstdRatio => Coding::Zstd,
                    _ => Coding::Gzip,
                };
                if let Some((_, t)) = self.gzip_ratio.filter(|(c, _)| *c == want) {
                    super::filter::write_ratio(t, out);
                }
            }
            Builtin::SliceRange => {
                if let Some((start, size)) = self.slice {
                    let last = start.saturating_add(size).saturating_sub(1);
                    let _ = write!(out, "bytes={start}-{last}");
                }
            }
            Builtin::BytesSent => {
                let _ = write!(out, "{}", self.bytes_sent);
            }
            Builtin::RequestTime => write_ms(out, self.request_time_ms),
            Builtin::RequestLength => {
                let _ = write!(out, "{}", self.request_length);
            }
            Builtin::ContentLength if head.chunked && head.content_length.is_none() => {
                if let Some(n) = self.body.and_then(|b| b.chunked_length()) {
                    let _ = write!(out, "{n}");
                }
            }
            Builtin::ContentLength => out.extend_from_slice(header(b"content-length")),
            Builtin::RequestBody => {
                if let Some(b) = self.body.and_then(|b| b.memory()) {
                    out.extend_from_slice(b);
                }
            }
            Builtin::RequestBodyFile => {
                if let Some(p) = self.body.and_then(|b| b.file_name()) {
                    use std::os::unix::ffi::OsStrExt;
                    out.extend_from_slice(p.as_os_str().as_bytes());
                }
            }
            Builtin::ContentType => request_header_joined(head, self.buf, b"content-type", out),
            Builtin::Cookie => request_header_joined(head, self.buf, b"cookie", out),
            Builtin::RemoteUser => basic_auth_user(header(b"authorization"), out),
            Builtin::TimeLocal => out.extend_from_slice(self.time_local),
            Builtin::TimeIso8601 => {
                let (y, mo, d, h, mi, s) = crate::log::civil(unix_now().as_secs() as i64);
                let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+00:00");
            }
            Builtin::DateGmt => write_date(out, "GMT"),
            // The runtime keeps no time zone: local time is UTC, named as strftime's %Z does.
            Builtin::DateLocal => write_date(out, "UTC"),
            Builtin::Msec => {
                let d = unix_now();
                let _ = write!(out, "{}.{:03}", d.as_secs(), d.subsec_millis());
            }
            Builtin::Pid => {
                let _ = write!(out, "{}", std::process::id());
            }
            Builtin::Hostname => out.extend_from_slice(hostname().as_bytes()),
            Builtin::NginxVersion | Builtin::ProtonVersion => {
                out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes())
            }
            Builtin::DocumentRoot => {
                if let Some(l) = self.location() {
                    let start = out.len();
                    self.root_of(l, out);
                    self.make_absolute(out, start);
                }
            }
            // As nginx: realpath() of the root, per request (a lookup of each path part the
            // kernel's dentry cache answers); nothing when it fails.
            Builtin::RealpathRoot => {
                if let Some(l) = self.location() {
                    use std::os::unix::ffi::{OsStrExt, OsStringExt};
                    let start = out.len();
                    self.root_of(l, out);
                    self.make_absolute(out, start);
                    let root = std::path::Path::new(std::ffi::OsStr::from_bytes(&out[start..]));
                    let real = std::fs::canonicalize(root);
                    out.truncate(start);
                    if let Ok(p) = real {
                        out.extend_from_slice(&p.into_os_string().into_vec());
                    }
                }
            }
            Builtin::RequestFilename => {
                if let Some(l) = self.location() {
                    let start = out.len();
                    self.root_of(l, out);
                    match &l.conf.alias {
                        // The alias replaces the prefix of the location that declared it; in
                        // a regex location (no prefix) it is the whole path.
                        Some(alias) if alias.prefix.is_empty() => {}
                        Some(alias) => out.extend_from_slice(
                            self.uri
                                .strip_prefix(alias.prefix.as_bytes())
                                .unwrap_or(self.uri),
                        ),
                        None => out.extend_from_slice(self.uri),
                    }
                    self.make_absolute(out, start);
                }
            }
            Builtin::RequestId => {
                // nginx: 16 random bytes per request. Here: a keyed hash (random keys per
                // process) of what identifies the request, so that every use in one request
                // gives the same value without storing it.
                let (k1, k2) = request_id_keys();
                let id = (
                    std::process::id(),
                    self.connection,
                    self.connection_requests,
                );
                let _ = write!(out, "{:016x}{:016x}", k1.hash_one(id), k2.hash_one(id));
            }
            Builtin::Connection => {
                let _ = write!(out, "{}", self.connection);
            }
            Builtin::ConnectionRequests => {
                let _ = write!(out, "{}", self.connection_requests);
            }
            Builtin::ConnectionTime => write_ms(out, self.connection_time_ms),
            Builtin::ConnectionsActive
            | Builtin::ConnectionsReading
            | Builtin::ConnectionsWriting
            | Builtin::ConnectionsWaiting => {
                use crate::shared::{total, Stat};
                let f = match b {
                    Builtin::ConnectionsActive => Stat::Active,
                    Builtin::ConnectionsReading => Stat::Reading,
                    Builtin::ConnectionsWriting => Stat::Writing,
                    _ => Stat::Waiting,
                };
                let _ = write!(out, "{}", total(f));
            }
            Builtin::ProxyAddXForwardedFor => {
                let start = out.len();
                request_header_joined(head, self.buf, b"x-forwarded-for", out);
                if out.len() > start {
                    out.extend_from_slice(b", ");
                }
                let _ = write!(out, "{}", self.peer.ip());
            }
            Builtin::FastcgiScriptName | Builtin::FastcgiPathInfo => {
                let (script, info) = self.fastcgi_split();
                if b == Builtin::FastcgiPathInfo {
                    out.extend_from_slice(info);
                    return;
                }
                out.extend_from_slice(script);
                if script.ends_with(b"/") {
                    if let Some(index) = self.cgi().and_then(|c| c.index.as_deref()) {
                        out.extend_from_slice(index.as_bytes());
                    }
                }
            }
            Builtin::ProxyHost => out.extend_from_slice(self.proxy_host),
            Builtin::ProxyPort if self.proxy_unix || self.proxy_host.is_empty() => {}
            Builtin::ProxyPort => {
                let port = self
                    .proxy_host
                    .rsplit(|&b| b == b':')
                    .next()
                    .filter(|p| {
                        !p.is_empty()
                            && p.iter().all(u8::is_ascii_digit)
                            && self.proxy_host.contains(&b':')
                    })
                    .unwrap_or(b"80");
                out.extend_from_slice(port);
            }
            Builtin::UpstreamAddr
            | Builtin::UpstreamStatus
            | Builtin::UpstreamResponseLength
            | Builtin::UpstreamResponseTime
            | Builtin::UpstreamConnectTime
            | Builtin::UpstreamHeaderTime
            | Builtin::UpstreamBytesReceived
            | Builtin::UpstreamBytesSent => self.upstream_list(b, out),
        }
    }

    /// An `$upstream_*` list as nginx prints it: one value per attempt, `, ` between the
    /// attempts of one proxied response and ` : ` before those of the next.
    fn upstream_list(&self, b: Builtin, out: &mut Vec<u8>) {
        use super::context::UpPeer;
        let ms = |out: &mut Vec<u8>, v: Option<u32>| match v {
            Some(v) => write_ms(out, u64::from(v)),
            None => out.push(b'-'),
        };
        let mut first = true;
        for st in self.upstreams {
            if st.peer == UpPeer::Mark {
                out.extend_from_slice(b" : ");
                first = true;
                continue;
            }
            if !first {
                out.extend_from_slice(b", ");
            }
            first = false;
            match b {
                Builtin::UpstreamAddr => match &st.peer {
                    UpPeer::Addr(a) => {
                        let _ = write!(out, "{a}");
                    }
                    UpPeer::Group(g) => {
                        if let Some(u) = self.ir.upstreams.get(*g as usize) {
                            out.extend_from_slice(u.name.as_bytes());
                        }
                    }
                    UpPeer::Mark => {}
                },
                Builtin::UpstreamStatus => match st.status {
                    0 => out.push(b'-'),
                    s => {
                        let _ = write!(out, "{s}");
                    }
                },
                Builtin::UpstreamResponseTime => ms(out, st.response_ms),
                Builtin::UpstreamConnectTime => ms(out, st.connect_ms),
                Builtin::UpstreamHeaderTime => ms(out, st.header_ms),
                Builtin::UpstreamResponseLength => {
                    let _ = write!(out, "{}", st.response_length);
                }
                Builtin::UpstreamBytesReceived => {
                    let _ = write!(out, "{}", st.bytes_received);
                }
                _ => {
                    let _ = write!(out, "{}", st.bytes_sent);
                }
            }
        }
    }

    /// The location whose settings apply.
    fn location(&self) -> Option<&proton_ir::Location> {
        self.ir.locations.get(self.location?.0 as usize)
    }

    /// Appends the location's `alias` as written, or its `root` without a final `/` (nginx
    /// drops it when reading the config), expanded. Variables in them see no location, so
    /// a root made of `$document_root` cannot recurse.
    fn root_of(&self, l: &proton_ir::Location, out: &mut Vec<u8>) {
        let inner = Ctx {
            location: None,
            ..*self
        };
        match &l.conf.alias {
            Some(alias) => inner.expand(&alias.path, out),
            None => {
                let root = self.ir.root_of(l);
                let start = out.len();
                inner.expand(root, out);
                let written_slash = matches!(
                    root.parts.last(),
                    Some(Part::Literal(s)) if s.ends_with('/')
                );
                if written_slash && out.len() > start + 1 {
                    out.pop();
                }
            }
        }
    }

    /// Makes the path written from `start` on absolute: a relative one is resolved against
    /// the prefix, as the runtime resolves it to open files.
    pub(crate) fn make_absolute(&self, out: &mut Vec<u8>, start: usize) {
        if out.get(start) == Some(&b'/') {
            return;
        }
        let prefix = self.prefix.as_os_str().as_bytes();
        out.splice(
            start..start,
            prefix.iter().copied().chain(std::iter::once(b'/')),
        );
    }
}

/// The member `name` (lowercase) of a JWT's header or claims: the one spelt so, else the
/// first whose name differs only in ASCII case (nginx's variable names are lowercase).
fn member<'j>(
    map: &'j serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Option<&'j serde_json::Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// `$remote_user`: the user name of `Authorization: Basic …` (nginx's
/// `ngx_http_auth_basic_user`): the decoded credentials up to their first `:`; nothing when
/// the header is absent, not Basic, not valid base64 or has no `:`.
fn basic_auth_user(auth: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    match basic_credentials(auth, out) {
        Some(colon) => out.truncate(start + colon),
        None => out.truncate(start),
    }
}

/// Decodes the credentials of an `Authorization: Basic …` value onto `out` (nginx's
/// `ngx_http_auth_basic_user`): `Some(i)` with the user name `out[start..start + i]` and the
/// password after the `:` that follows; `None` (and `out` as it was, or longer: the caller
/// truncates) when the value is not Basic, not valid base64, or has no user name and `:`.
pub(crate) fn basic_credentials(auth: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let scheme = auth.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let encoded = trim(&auth[6..]);
    let start = out.len();
    if encoded.is_empty() || !base64_decode(encoded, out) {
        return None;
    }
    memchr::memchr(b':', &out[start..]).filter(|&i| i > 0)
}

/// Decodes standard base64 (padding optional) onto `out`; false on a byte outside the
/// alphabet or a bad length.
fn base64_decode(s: &[u8], out: &mut Vec<u8>) -> bool {
    let s = s
        .strip_suffix(b"==")
        .or_else(|| s.strip_suffix(b"="))
        .unwrap_or(s);
    if s.len() % 4 == 1 {
        return false;
    }
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return false,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    true
}

/// Appends `ip` as `Display` writes it (`127.0.0.1`, `::1`); IPv4 without the formatting
/// machinery.
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_decimal(out, o.into());
            }
        }
        IpAddr::V6(a) => {
            let _ = write!(out, "{a}");
        }
    }
}

/// `12.345` from milliseconds.
fn write_ms(out: &mut Vec<u8>, ms: u64) {
    let _ = write!(out, "{}.{:03}", ms / 1000, ms % 1000);
}

fn unix_now() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// nginx's `$date_gmt` / `$date_local` without an SSI `timefmt`: strftime's
/// `%A, %d-%b-%Y %H:%M:%S %Z`, e.g. `Saturday, 25-Nov-2026 22:58:00 GMT`.
fn write_date(out: &mut Vec<u8>, zone: &str) {
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let secs = unix_now().as_secs() as i64;
    let (y, mo, d, h, mi, s) = crate::log::civil(secs);
    let day = DAYS[(secs.div_euclid(86_400).rem_euclid(7)) as usize];
    let month = MONTHS
        .get(mo.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    let _ = write!(
        out,
        "{day}, {d:02}-{month}-{y:04} {h:02}:{mi:02}:{s:02} {zone}"
    );
}

/// The two random keys of `$request_id`'s hash, made on first use in each process (a worker
/// makes its own after the fork).
fn request_id_keys() -> &'static (
    std::collections::hash_map::RandomState,
    std::collections::hash_map::RandomState,
) {
    static KEYS: std::sync::OnceLock<(
        std::collections::hash_map::RandomState,
        std::collections::hash_map::RandomState,
    )> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        (
            std::collections::hash_map::RandomState::new(),
            std::collections::hash_map::RandomState::new(),
        )
    })
}

/// Most map evaluations one expansion may do (nginx evaluates a map once per request and
/// caches it; Proton evaluates at each use, so maps using maps several times each could
/// otherwise take exponential time).
const MAP_BUDGET: u32 = 1024;

/// True when `t` reads regex captures (`$1`…`$9` or a named group).
fn uses_captures(t: &Template) -> bool {
    t.parts
        .iter()
        .any(|p| matches!(p, Part::Capture(_) | Part::Var(Var::NamedCapture(_))))
}

/// The prefix-family variable a `set` variable named like one stands for where it is not
/// set (`http_x` → `$http_x`'s header); `None` for other names.
fn family(name: &str) -> Option<Var> {
    let f = |p: &str| {
        name.strip_prefix(p)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
    };
    // (Longer prefixes first: `upstream_http_` is not `http_`.)
    if let Some(d) = f("sent_http_") {
        Some(Var::SentHttp(d))
    } else if let Some(d) = f("sent_trailer_") {
        Some(Var::SentTrailer(d))
    } else if let Some(d) = f("upstream_http_") {
        Some(Var::UpstreamHttp(d))
    } else if let Some(d) = f("upstream_trailer_") {
        Some(Var::UpstreamTrailer(d))
    } else if let Some(d) = f("upstream_cookie_") {
        Some(Var::UpstreamCookie(d))
    } else if let Some(d) = f("http_") {
        Some(Var::Http(d))
    } else if let Some(d) = f("cookie_") {
        Some(Var::Cookie(d))
    } else {
        f("arg_").map(Var::Arg)
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `25/Nov/2026:22:58:00 +0000`
pub(crate) fn time_local() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, mo, d, h, mi, s) = crate::log::civil(secs);
    let m = MONTHS
        .get(mo.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    format!("{d:02}/{m}/{y}:{h:02}:{mi:02}:{s:02} +0000")
}

/// The machine's host name, read once per process.
fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default()
    })
}

/// OpenSSL's name of a key-exchange group, as `$ssl_curve` and `$ssl_curves` print it.
fn openssl_group_name(g: rustls::NamedGroup) -> Option<&'static str> {
    use rustls::NamedGroup as G;
    Some(match g {
        G::secp256r1 => "prime256v1",
        G::secp384r1 => "secp384r1",
        G::secp521r1 => "secp521r1",
        G::X25519 => "X25519",
        G::X448 => "X448",
        G::FFDHE2048 => "ffdhe2048",
        G::FFDHE3072 => "ffdhe3072",
        G::FFDHE4096 => "ffdhe4096",
        G::FFDHE6144 => "ffdhe6144",
        G::FFDHE8192 => "ffdhe8192",
        G::X25519MLKEM768 => "X25519MLKEM768",
        _ => return None,
    })
}

/// The value of `$proxy_protocol_tlv_*` from a PROXY protocol header's TLVs, as nginx
/// reads it: the raw value, or for `ssl_verify` the `ssl` TLV's verify field in decimal.
fn proxy_tlv(tlvs: &[u8], t: proton_ir::ProxyTlv, out: &mut Vec<u8>) {
    use crate::http::proxy_protocol::tlv;
    use proton_ir::ProxyTlv;
    // The `ssl` TLV: client flags (1 byte), verify result (4), then sub-TLVs.
    let ssl = || tlv(tlvs, 0x20).filter(|s| s.len() >= 5);
    match t {
        ProxyTlv::Type(ty) => {
            if let Some(v) = tlv(tlvs, ty) {
                out.extend_from_slice(v);
            }
        }
        ProxyTlv::Ssl(ty) => {
            if let Some(v) = ssl().and_then(|s| tlv(&s[5..], ty)) {
                out.extend_from_slice(v);
            }
        }
        ProxyTlv::SslVerify => {
            if let Some(s) = ssl() {
                let _ = write!(out, "{}", u32::from_be_bytes([s[1], s[2], s[3], s[4]]));
            }
        }
        ProxyTlv::None => {}
    }
}

/// The value of a `$ssl_*` variable of a TLS connection, as nginx prints it.
fn ssl_var(b: Builtin, tls: &super::tls::TlsConn, out: &mut Vec<u8>) {
    if b == Builtin::SslCiphers {
        for (i, c) in tls.client_suites.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            let code = u16::from(*c);
            match proton_ir::tls::openssl_cipher_name(code) {
                Some(n) => out.extend_from_slice(n.as_bytes()),
                None => {
                    let _ = write!(out, "0x{code:04x}");
                }
            }
        }
        return;
    }
    if b == Builtin::SslCurves {
        for (i, g) in tls.client_groups.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            match openssl_group_name(*g) {
                Some(n) => out.extend_from_slice(n.as_bytes()),
                None => {
                    let _ = write!(out, "0x{:04x}", u16::from(*g));
                }
            }
        }
        return;
    }
    if b == Builtin::SslServerName {
        // Known from the ClientHello on (also while `ssl_certificate` with variables is
        // chosen for the handshake).
        if let Some(n) = &tls.server_name {
            out.extend_from_slice(n.as_bytes());
        }
        return;
    }
    if b == Builtin::SslSessionId {
        if let Some(id) = tls.session_id() {
            for byte in id {
                let _ = write!(out, "{byte:02x}");
            }
        }
        return;
    }
    let Some(t) = tls.session() else {
        return;
    };
    match b {
        Builtin::SslProtocol => {
            let v = match t.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "",
            };
            out.extend_from_slice(v.as_bytes());
        }
        Builtin::SslCipher => {
            if let Some(name) = t.negotiated_cipher_suite().and_then(|s| s.suite().as_str()) {
                let name = proton_ir::tls::openssl_name_of(name).unwrap_or(name);
                out.extend_from_slice(name.as_bytes());
            }
        }
        Builtin::SslSessionReused => out.push(
            if t.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                b'r'
            } else {
                b'.'
            },
        ),
        Builtin::SslAlpnProtocol => {
            if let Some(p) = t.alpn_protocol() {
                out.extend_from_slice(p);
            }
        }
        Builtin::SslCurve => {
            if let Some(g) = t.negotiated_key_exchange_group().map(|g| g.name()) {
                match openssl_group_name(g) {
                    Some(name) => out.extend_from_slice(name.as_bytes()),
                    None => {
                        let _ = write!(out, "0x{:04x}", u16::from(g));
                    }
                }
            }
        }
        _ => {}
    }
}

/// The value of a `$ssl_client_*` variable of the client's certificate (DER), as nginx
/// prints it; computed when read.
fn client_cert_var(b: Builtin, der: &[u8], out: &mut Vec<u8>) {
    use proton_tls::client::pem;
    match b {
        Builtin::SslClientFingerprint => {
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
            for x in d.as_ref() {
                let _ = write!(out, "{x:02x}");
            }
            return;
        }
        Builtin::SslClientRawCert => return pem(der, out),
        Builtin::SslClientCert => {
            // nginx's deprecated form: the PEM without its last line break, a tab after
            // every other one.
            let mut p = Vec::new();
            pem(der, &mut p);
            p.pop();
            for x in p {
                out.push(x);
                if x == b'\n' {
                    out.push(b'\t');
                }
            }
            return;
        }
        Builtin::SslClientEscapedCert => {
            let mut p = Vec::new();
            pem(der, &mut p);
            crate::http::response::escape_uri(&p, crate::http::response::Escape::UriComponent, out);
            return;
        }
        _ => {}
    }
    let Some(c) = proton_tls::CertInfo::new(der) else {
        return;
    };
    match b {
        Builtin::SslClientSDn => c.subject(out),
        Builtin::SslClientIDn => c.issuer(out),
        Builtin::SslClientSDnLegacy => c.subject_legacy(out),
        Builtin::SslClientIDnLegacy => c.issuer_legacy(out),
        Builtin::SslClientSerial => c.serial(out),
        Builtin::SslClientVStart => c.not_before(out),
        Builtin::SslClientVEnd => c.not_after(out),
        Builtin::SslClientVRemain => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            c.days_left(now, out);
        }
        _ => {}
    }
}

/// MurmurHash2 (Austin Appleby's, 32 bits, seed 0, little-endian words) as nginx computes
/// it for `split_clients`, so that a key falls in the same part under both servers.
pub(crate) fn murmur_hash2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h = data.len() as u32;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let mut k = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_and_addresses_as_display_writes_them() {
        use std::net::IpAddr;
        for n in [0u64, 7, 10, 99, 65535, 1_000_000, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        for ip in [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.20.3.40",
            "::1",
            "::ffff:1.2.3.4",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            super::push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().into_bytes());
        }
    }

    #[test]
    fn murmur_hash2_as_nginx() {
        // Reference values of MurmurHash2 (seed 0) computed by its published C code, which
        // nginx's ngx_murmur_hash2 is.
        assert_eq!(super::murmur_hash2(b""), 0);
        assert_eq!(super::murmur_hash2(b"a"), 0x92685f5e);
        assert_eq!(super::murmur_hash2(b"abcd"), 0x26873021);
        assert_eq!(super::murmur_hash2(b"hello world"), 0x44a81419);
    }

    use super::*;
    use crate::http::request::{parse_head, Limits};

    #[test]
    fn upstream_lists_are_printed_as_nginx() {
        use crate::worker::context::{UpPeer, UpState};
        const fn st(status: u16, connect: Option<u32>, response: Option<u32>) -> UpState {
            UpState {
                peer: UpPeer::Group(9),
                status,
                connect_ms: connect,
                header_ms: None,
                response_ms: response,
                bytes_received: 0,
                bytes_sent: 7,
                response_length: 0,
            }
        }
        const MARK: UpState = UpState {
            peer: UpPeer::Mark,
            status: 0,
            connect_ms: None,
            header_ms: None,
            response_ms: None,
            bytes_received: 0,
            bytes_sent: 0,
            response_length: 0,
        };
        // Two attempts, a second proxied response (error_page), then one still going.
        static STATES: [UpState; 4] = [
            st(502, None, Some(3)),
            st(200, Some(1), Some(1250)),
            MARK,
            st(0, Some(0), None),
        ];
        let eval = |b: Builtin| expand_with("/", |c| c.upstreams = &STATES, &var(Var::Builtin(b)));
        assert_eq!(eval(Builtin::UpstreamStatus), "502, 200 : -");
        assert_eq!(eval(Builtin::UpstreamConnectTime), "-, 0.001 : 0.000");
        assert_eq!(eval(Builtin::UpstreamResponseTime), "0.003, 1.250 : -");
        assert_eq!(eval(Builtin::UpstreamBytesSent), "7, 7 : 7");
        assert_eq!(eval(Builtin::UpstreamHeaderTime), "-, - : -");
        // No attempt: empty (nginx: not found).
        assert_eq!(
            expand_with("/", |_| {}, &var(Var::Builtin(Builtin::UpstreamStatus))),
            ""
        );
    }

    #[test]
    fn sent_http_reads_the_response_head() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Multi-Word:  a b \r\nX-Multi-Word: c\r\n\r\n";
        assert_eq!(sent_header(head, b"content_type"), Some(&b"text/html"[..]));
        assert_eq!(sent_header(head, b"x_multi_word"), Some(&b"a b"[..]));
        assert_eq!(sent_header(head, b"x_multi"), None);
        // The status line is not a header.
        assert_eq!(
            sent_header(b"HTTP/1.1 200 OK\r\n\r\n", b"http/1.1 200 ok"),
            None
        );
        assert_eq!(sent_header(b"", b"content_type"), None);
    }

    #[test]
    fn repeated_fields_are_joined_as_nginx() {
        let head = b"HTTP/1.1 200 OK\r\nCache-Control: a\r\nX: 1\r\ncache-control:  b \r\n\r\n";
        let join = |name: &[u8]| {
            let mut out = Vec::new();
            join_fields(head_fields(head), name, b',', &mut out);
            String::from_utf8(out).unwrap_or_default()
        };
        assert_eq!(join(b"cache_control"), "a, b");
        assert_eq!(join(b"x"), "1");
        assert_eq!(join(b"y"), "");
        // Trailer lines have no status line.
        let mut out = Vec::new();
        join_fields(head_fields(b"Foo: a\r\nFoo: b\r\n"), b"foo", b',', &mut out);
        assert_eq!(out, b"a, b");
    }

    #[test]
    fn cookies_as_nginx_finds_them() {
        let v = b"foo=1, qux=0; bar = 2;baz=3";
        assert_eq!(cookie_value(v, b"foo"), Some(&b"1, qux=0"[..]));
        assert_eq!(cookie_value(v, b"qux"), None);
        assert_eq!(cookie_value(v, b"bar"), Some(&b"2"[..]));
        assert_eq!(cookie_value(v, b"BAZ"), Some(&b"3"[..]));
        assert_eq!(cookie_value(v, b"ba"), None);
        assert_eq!(cookie_value(b"", b"a"), None);
        assert_eq!(cookie_value(b"a", b"a"), None);
        let up = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b = 2\r\n\r\n";
        assert_eq!(set_cookie_value(up, b"a"), Some(&b"1"[..]));
        assert_eq!(set_cookie_value(up, b"b"), Some(&b"2"[..]));
        assert_eq!(set_cookie_value(up, b"path"), None);
        assert_eq!(set_cookie_value(b"", b"a"), None);
    }

    #[test]
    fn remote_user_from_basic_credentials() {
        let user = |auth: &[u8]| {
            let mut out = Vec::new();
            basic_auth_user(auth, &mut out);
            String::from_utf8(out).unwrap_or_default()
        };
        assert_eq!(user(b"Basic dXNlcjpzZWNyZXQ="), "user");
        assert_eq!(user(b"basic   dXNlcjpzZWNyZXQ="), "user");
        assert_eq!(user(b"Basic OnNlY3JldA=="), "");
        assert_eq!(user(b"Basic dXNlcg=="), "", "no colon");
        assert_eq!(user(b"Basic !!!"), "");
        assert_eq!(user(b"Bearer dXNlcjpzZWNyZXQ="), "");
        assert_eq!(user(b""), "");
        assert_eq!(user(b"Basic A"), "");
    }
    use proton_ir::RegexId;

    fn lit(s: &str) -> Template {
        Template::literal(s)
    }

    fn var(v: Var) -> Template {
        Template {
            parts: vec![Part::Var(v)],
        }
    }

    fn map(name: &str, source: Template) -> Map {
        Map {
            name: name.into(),
            source,
            hostnames: false,
            volatile: false,
            exact: vec![],
            leading: vec![],
            trailing: vec![],
            regex: vec![],
            default: Template::default(),
            geo: None,
            split: None,
        }
    }

    /// The maps of the tests, with their regexes (as `Loaded` compiles them).
    fn maps() -> (Vec<Map>, Vec<proton_ir::pattern::Regex>) {
        let regexes = vec![
            proton_ir::pattern::compile("^re(?<rest>.*)$", false).unwrap(),
            proton_ir::pattern::compile("^abc", true).unwrap(),
            proton_ir::pattern::compile("^www\\.(.+)\\.net$", false).unwrap(),
            proton_ir::pattern::compile("", false).unwrap(),
        ];
        // 0: `map $arg_a $x { default def; foo exact; ~^re(?<rest>.*)$ "re:$1:$rest";
        //     ~*^abc ci; '' empty; }`
        let mut x = map("x", var(Var::Arg("a".into())));
        x.exact = vec![("".into(), lit("empty")), ("foo".into(), lit("exact"))];
        x.regex = vec![
            (
                RegexId(0),
                Template {
                    parts: vec![
                        Part::Literal("re:".into()),
                        Part::Capture(1),
                        Part::Literal(":".into()),
                        Part::Var(Var::NamedCapture("rest".into())),
                    ],
                },
            ),
            (RegexId(1), lit("ci")),
        ];
        x.default = lit("def");
        // 1: `map $arg_h $h { hostnames; example.com exact; *.example.com star;
        //     .example.org dot; www.example.* tail; ~^www\.(.+)\.net$ "re-$1"; }`
        let mut h = map("h", var(Var::Arg("h".into())));
        h.hostnames = true;
        h.exact = vec![
            ("example.com".into(), lit("exact")),
            ("example.org".into(), lit("dot")),
        ];
        h.leading = vec![
            (".example.com".into(), lit("star")),
            (".example.org".into(), lit("dot")),
        ];
        h.trailing = vec![("www.example.".into(), lit("tail"))];
        h.regex = vec![(
            RegexId(2),
            Template {
                parts: vec![Part::Literal("re-".into()), Part::Capture(1)],
            },
        )];
        // 2: `map "$x|$h" $both { default "[$x|$h|$1]"; }`: maps of maps; $1 is the
        // request's capture, not a map's.
        let mut both = map(
            "both",
            Template {
                parts: vec![
                    Part::Var(Var::Map(0)),
                    Part::Literal("|".into()),
                    Part::Var(Var::Map(1)),
                ],
            },
        );
        both.default = Template {
            parts: vec![
                Part::Literal("[".into()),
                Part::Var(Var::Map(0)),
                Part::Literal("|".into()),
                Part::Var(Var::Map(1)),
                Part::Literal("|".into()),
                Part::Capture(1),
                Part::Literal("]".into()),
            ],
        };
        // 3: uses itself (the compiler refuses this; the runtime must still stop).
        let mut selfish = map("self", var(Var::Map(3)));
        selfish.default = Template {
            parts: vec![Part::Literal("s".into()), Part::Var(Var::Map(3))],
        };
        // 4: `map $arg_e $e { ~ any; }`: an empty regex matches anything but the empty
        // source, for which regexes are not tried.
        let mut e = map("e", var(Var::Arg("e".into())));
        e.regex = vec![(RegexId(3), lit("any"))];
        e.default = lit("none");
        (vec![x, h, both, selfish, e], regexes)
    }

    /// An IR with nothing in it (the map tests need no location).
    fn empty_ir() -> Ir {
        Ir {
            main: proton_ir::MainConf {
                worker_connections: 16,
                error_log: vec![],
                pid: String::new(),
                ..proton_ir::MainConf::default()
            },
            listeners: vec![],
            servers: vec![],
            locations: vec![],
            upstreams: vec![],
            regexes: vec![],
            log_formats: vec![],
            user_vars: vec![],
            maps: vec![],
            mime_types: vec![],
            settings: vec![],
            source_files: vec![],
            text: String::new(),
            charset_maps: vec![],
            resolvers: vec![],
            limit_zones: vec![],
            cache_zones: vec![],
        }
    }

    /// Expands `$map[i]` for a request to `target`.
    fn eval(i: u32, target: &str) -> String {
        expand_with(target, |_| {}, &var(Var::Map(i)))
    }

    /// Expands `t` for a request to `target` over connection 7 (its third request), from
    /// 127.0.0.1:80; `adjust` may change the context first.
    fn expand_with(target: &str, adjust: impl FnOnce(&mut Ctx<'_>), t: &Template) -> String {
        let req = format!("GET {target} HTTP/1.1\r\nHost: example.com\r\n\r\n");
        let buf = req.as_bytes();
        let mut head = RequestHead::new();
        parse_head(buf, &Limits::default(), &mut head).expect("a request head");
        let args = target.split_once('?').map_or("", |(_, a)| a);
        let (maps, regexes) = maps();
        let captures = Captures::with_groups(&[b"whole", b"req1"]);
        let pool = RefCell::new(VarPool::default());
        let addr: SocketAddr = "127.0.0.1:80".parse().expect("an address");
        let ir = empty_ir();
        let mut ctx = Ctx {
            buf,
            head: &head,
            uri: b"/",
            args: args.as_bytes(),
            host: b"example.com",
            server_name: "",
            peer: addr,
            conn_peer: addr,
            local: addr,
            tls: None,
            proxy_protocol: None,
            unix: None,
            user: &[],
            captures: &captures,
            pool: &pool,
            status: 200,
            body_bytes: 0,
            bytes_sent: 0,
            request_time_ms: 0,
            time_local: b"",
            proxy_host: b"",
            proxy_unix: false,
            upstreams: &[],
            regexes: &regexes,
            maps: &maps,
            ir: &ir,
            location: None,
            prefix: Path::new("/prefix"),
            connection: 7,
            connection_requests: 3,
            connection_time_ms: 1234,
            sent_head: b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Multi-Word: a b\r\n\r\n",
            sent_trailers: b"",
            upstream_head: b"",
            upstream_trailers: b"",
            method_get: false,
            main_line: None,
            jwt: None,
            http2: false,
            map_cache: None,
            limit_rate: 0,
            limit_status: [0, 0],
            cache_status: 0,
            elog: None,
            body: None,
            request_length: 0,
            gzip_ratio: None,
            slice: None,
        };
        adjust(&mut ctx);
        let mut out = Vec::new();
        ctx.expand(t, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn builtin(b: Builtin) -> Template {
        var(Var::Builtin(b))
    }

    #[test]
    fn request_id_is_32_hex_digits_fixed_for_the_request() {
        let two = Template {
            parts: vec![
                Part::Var(Var::Builtin(Builtin::RequestId)),
                Part::Literal(" ".into()),
                Part::Var(Var::Builtin(Builtin::RequestId)),
            ],
        };
        let v = expand_with("/", |_| {}, &two);
        let (a, b) = v.split_once(' ').expect("two ids");
        assert_eq!(a, b, "one value per request");
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        let next = expand_with(
            "/",
            |c| c.connection_requests = 4,
            &builtin(Builtin::RequestId),
        );
        let other = expand_with("/", |c| c.connection = 8, &builtin(Builtin::RequestId));
        assert!(next != a && other != a && next != other);
    }

    #[test]
    fn connection_values() {
        assert_eq!(expand_with("/", |_| {}, &builtin(Builtin::Connection)), "7");
        assert_eq!(
            expand_with("/", |_| {}, &builtin(Builtin::ConnectionRequests)),
            "3"
        );
        assert_eq!(
            expand_with("/", |_| {}, &builtin(Builtin::BinaryRemoteAddr)).as_bytes(),
            [127, 0, 0, 1]
        );
        let v6: SocketAddr = "[::1]:80".parse().expect("an address");
        let raw = expand_with("/", |c| c.peer = v6, &builtin(Builtin::BinaryRemoteAddr));
        assert_eq!(raw.len(), 16);
        assert_eq!(expand_with("/", |_| {}, &builtin(Builtin::RemoteUser)), "");
        // No location: no root to tell.
        assert_eq!(
            expand_with("/", |_| {}, &builtin(Builtin::DocumentRoot)),
            ""
        );
    }

    #[test]
    fn dates_as_nginx_writes_them() {
        let v = expand_with("/", |_| {}, &builtin(Builtin::DateGmt));
        // `Saturday, 25-Nov-2026 22:58:00 GMT`
        let (day, rest) = v.split_once(", ").expect("a weekday");
        assert!(day.ends_with("day"), "{v}");
        assert_eq!(rest.len(), "25-Nov-2026 22:58:00 GMT".len(), "{v}");
        assert!(rest.ends_with(" GMT"), "{v}");
        let local = expand_with("/", |_| {}, &builtin(Builtin::DateLocal));
        assert!(local.ends_with(" UTC"), "{local}");
        let iso = expand_with("/", |_| {}, &builtin(Builtin::TimeIso8601));
        assert_eq!(iso.len(), "2026-11-25T22:58:00+00:00".len(), "{iso}");
        let msec = expand_with("/", |_| {}, &builtin(Builtin::Msec));
        let (s, ms) = msec.split_once('.').expect("seconds.millis");
        assert!(s.len() >= 10 && ms.len() == 3, "{msec}");
    }

    #[test]
    fn exact_regex_and_default_as_nginx() {
        assert_eq!(eval(0, "/?a=foo"), "exact");
        assert_eq!(eval(0, "/?a=FoO"), "exact", "exact keys ignore case");
        assert_eq!(
            eval(0, "/?a=rexyz"),
            "re:xyz:xyz",
            "captures of the map's regex"
        );
        assert_eq!(eval(0, "/?a=ABCdef"), "ci");
        assert_eq!(eval(0, "/?a=zzz"), "def");
        assert_eq!(eval(0, "/?a="), "empty");
        assert_eq!(
            eval(0, "/"),
            "empty",
            "an absent argument is the empty string"
        );
        assert_eq!(eval(4, "/?e=x"), "any");
        assert_eq!(eval(4, "/?e="), "none", "no regex for an empty source");
    }

    #[test]
    fn hostnames() {
        assert_eq!(eval(1, "/?h=example.com"), "exact");
        assert_eq!(
            eval(1, "/?h=EXAMPLE.com."),
            "exact",
            "case and one trailing dot"
        );
        assert_eq!(eval(1, "/?h=a.example.com"), "star");
        assert_eq!(eval(1, "/?h=example.org"), "dot");
        assert_eq!(eval(1, "/?h=a.b.example.org"), "dot");
        assert_eq!(
            eval(1, "/?h=www.example.com"),
            "star",
            "leading beats trailing"
        );
        assert_eq!(eval(1, "/?h=www.example.net"), "tail");
        assert_eq!(eval(1, "/?h=www.abc.net"), "re-abc");
        assert_eq!(eval(1, "/?h=other"), "");
    }

    #[test]
    fn maps_of_maps_and_request_captures() {
        assert_eq!(eval(2, "/?a=foo&h=x.example.com"), "[exact|star|req1]");
        assert_eq!(
            eval(2, "/?a=rexy"),
            "[re:xy:xy|empty|req1]".replace("empty", "")
        );
    }

    #[test]
    fn a_map_using_itself_stops() {
        // Its source and its default use it: 2^16 evaluations without the budget.
        let v = eval(3, "/");
        assert!(!v.is_empty() && v.len() <= MAX_MAP_NESTING, "{v}");
    }
}
