//! Variable values for templates (`return` text, rewrite replacements, `set`, add_header,
//! log formats). Everything is read from the request bytes already in the connection's
//! buffer; expansion appends to a caller-owned `Vec<u8>`.

use crate::http::request::RequestHead;
use proton_ir::{Map, Part, Template, Var, MAX_MAP_NESTING};
use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::ops::Range;

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
        re: &regex::bytes::Regex,
        locs: &mut regex::bytes::CaptureLocations,
        subject: &[u8],
    ) -> bool {
        if re.captures_read(locs, subject).is_none() {
            return false;
        }
        let base = self.text.len();
        self.text.extend_from_slice(subject);
        self.numbered.clear();
        for i in 0..locs.len().min(10) {
            self.numbered
                .push(locs.get(i).map(|(s, e)| base + s..base + e));
        }
        for (i, name) in re.capture_names().enumerate() {
            if let (Some(_), Some((s, e))) = (name, locs.get(i)) {
                self.named.push((id, i, base + s..base + e));
            }
        }
        true
    }

    /// Copies the named groups visible in `outer` (a map's regex match sees the request's).
    fn inherit_named(&mut self, outer: &Captures) {
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
    fn named(&self, regexes: &[regex::bytes::Regex], name: &str) -> Option<&[u8]> {
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
    locs: Vec<Option<regex::bytes::CaptureLocations>>,
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

    fn caps(&mut self) -> Captures {
        let mut c = self.caps.pop().unwrap_or_default();
        c.clear();
        c
    }

    fn give_caps(&mut self, c: Captures) {
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
        re: &regex::bytes::Regex,
        subject: &[u8],
    ) -> bool {
        if self.locs.len() <= id {
            self.locs.resize_with(id + 1, || None);
        }
        let locs = self.locs[id].get_or_insert_with(|| re.capture_locations());
        caps.capture(id, re, locs, subject)
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
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) user: &'a [Option<Vec<u8>>],
    /// `$1`… and the named groups of the regex matches so far.
    pub(crate) captures: &'a Captures,
    /// Buffers for evaluating maps.
    pub(crate) pool: &'a RefCell<VarPool>,
    pub(crate) status: u16,
    pub(crate) body_bytes: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) request_time_ms: u64,
    pub(crate) document_root: &'a [u8],
    /// `$time_local`, formatted once a second by the worker.
    pub(crate) time_local: &'a [u8],
    /// `$proxy_host` (`host[:port]` of proxy_pass) while proxy headers are made.
    pub(crate) proxy_host: &'a [u8],
    /// The last upstream attempt of a proxied request: address, status, response time in
    /// ms (`$upstream_addr`, `$upstream_status`, `$upstream_response_time`).
    pub(crate) upstream: Option<(SocketAddr, u16, u32)>,
    /// The compiled regexes of the IR, by `RegexId` (map keys).
    pub(crate) regexes: &'a [regex::bytes::Regex],
    /// The IR's `map` blocks, by [`Var::Map`] index.
    pub(crate) maps: &'a [Map],
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

fn arg_value<'b>(args: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    args.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

fn cookie_value<'b>(cookies: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    cookies.split(|&b| b == b';').find_map(|c| {
        let c = trim(c);
        let i = c.iter().position(|&b| b == b'=')?;
        c[..i].eq_ignore_ascii_case(name).then_some(&c[i + 1..])
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
            Var::Http(name) => {
                if let Some(h) = header(self.head, self.buf, name.as_bytes()) {
                    out.extend_from_slice(h);
                }
            }
            Var::Arg(name) => {
                if let Some(a) = arg_value(self.args, name.as_bytes()) {
                    out.extend_from_slice(a);
                }
            }
            Var::Cookie(name) => {
                if let Some(c) = header(self.head, self.buf, b"cookie")
                    .and_then(|c| cookie_value(c, name.as_bytes()))
                {
                    out.extend_from_slice(c);
                }
            }
            Var::SentHttp(_) => {}
            Var::NamedCapture(name) => {
                if let Some(v) = self.captures.named(self.regexes, name) {
                    out.extend_from_slice(v);
                }
            }
            Var::User(i) => {
                if let Some(Some(val)) = self.user.get(*i as usize) {
                    out.extend_from_slice(val);
                }
            }
            Var::Builtin(name) => self.builtin(name, out),
            // Evaluated by `part_at`, which knows the nesting depth.
            Var::Map(_) => {}
        }
    }

    fn builtin(&self, name: &str, out: &mut Vec<u8>) {
        let head = self.head;
        let target = self.buf.get(head.target.clone()).unwrap_or(b"");
        match name {
            "host" => out.extend_from_slice(self.host),
            "uri" | "document_uri" => out.extend_from_slice(self.uri),
            "args" | "query_string" => out.extend_from_slice(self.args),
            "is_args" if !self.args.is_empty() => out.push(b'?'),
            "request_uri" => out.extend_from_slice(target),
            "request_method" => {
                out.extend_from_slice(self.buf.get(head.method_range.clone()).unwrap_or(b""))
            }
            "request" => {
                out.extend_from_slice(self.buf.get(head.method_range.clone()).unwrap_or(b""));
                out.push(b' ');
                out.extend_from_slice(target);
                let _ = write!(out, " HTTP/1.{}", head.minor_version);
            }
            "server_protocol" => {
                let _ = write!(out, "HTTP/1.{}", head.minor_version);
            }
            "scheme" => out.extend_from_slice(b"http"),
            "https" => {}
            "remote_addr" | "binary_remote_addr" => {
                let _ = write!(out, "{}", self.peer.ip());
            }
            "remote_port" => {
                let _ = write!(out, "{}", self.peer.port());
            }
            "server_addr" => {
                let _ = write!(out, "{}", self.local.ip());
            }
            "server_port" => {
                let _ = write!(out, "{}", self.local.port());
            }
            "server_name" => out.extend_from_slice(self.server_name.as_bytes()),
            "status" => {
                let _ = write!(out, "{:03}", self.status);
            }
            "body_bytes_sent" => {
                let _ = write!(out, "{}", self.body_bytes);
            }
            "bytes_sent" => {
                let _ = write!(out, "{}", self.bytes_sent);
            }
            "request_time" => {
                let _ = write!(
                    out,
                    "{}.{:03}",
                    self.request_time_ms / 1000,
                    self.request_time_ms % 1000
                );
            }
            "request_length" => {
                let _ = write!(out, "{}", head.head_len);
            }
            "content_length" => {
                if let Some(v) = header(head, self.buf, b"content-length") {
                    out.extend_from_slice(v);
                }
            }
            "content_type" => {
                if let Some(v) = header(head, self.buf, b"content-type") {
                    out.extend_from_slice(v);
                }
            }
            "cookie" => {
                if let Some(v) = header(head, self.buf, b"cookie") {
                    out.extend_from_slice(v);
                }
            }
            "remote_user" => out.push(b'-'),
            "time_local" => out.extend_from_slice(self.time_local),
            "time_iso8601" => out.extend_from_slice(time_iso8601().as_bytes()),
            "msec" => {
                let d = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let _ = write!(out, "{}.{:03}", d.as_secs(), d.subsec_millis());
            }
            "pid" => {
                let _ = write!(out, "{}", std::process::id());
            }
            "hostname" => out.extend_from_slice(hostname().as_bytes()),
            "nginx_version" | "proton_version" => {
                out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes())
            }
            "document_root" | "realpath_root" => out.extend_from_slice(self.document_root),
            "request_filename" => {
                out.extend_from_slice(self.document_root);
                out.extend_from_slice(self.uri);
            }
            "proxy_add_x_forwarded_for" => {
                if let Some(v) = header(head, self.buf, b"x-forwarded-for") {
                    out.extend_from_slice(v);
                    out.extend_from_slice(b", ");
                }
                let _ = write!(out, "{}", self.peer.ip());
            }
            "proxy_host" => out.extend_from_slice(self.proxy_host),
            "upstream_addr" => {
                if let Some((a, _, _)) = self.upstream {
                    let _ = write!(out, "{a}");
                }
            }
            "upstream_status" => {
                if let Some((_, s, _)) = self.upstream {
                    let _ = write!(out, "{s}");
                }
            }
            "upstream_response_time" => {
                if let Some((_, _, ms)) = self.upstream {
                    let _ = write!(out, "{}.{:03}", ms / 1000, ms % 1000);
                }
            }
            "proxy_port" => {
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
            _ => {}
        }
    }
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

/// `25/Nov/2026:22:58:00 +0000`
pub(crate) fn time_local() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
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

fn time_iso8601() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, mo, d, h, mi, s) = crate::log::civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+00:00")
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{parse_head, Limits};
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
            exact: vec![],
            leading: vec![],
            trailing: vec![],
            regex: vec![],
            default: Template::default(),
        }
    }

    /// The maps of the tests, with their regexes (as `Loaded` compiles them).
    fn maps() -> (Vec<Map>, Vec<regex::bytes::Regex>) {
        let regexes = vec![
            regex::bytes::Regex::new("^re(?<rest>.*)$").unwrap(),
            regex::bytes::RegexBuilder::new("^abc")
                .case_insensitive(true)
                .build()
                .unwrap(),
            regex::bytes::Regex::new("^www\\.(.+)\\.net$").unwrap(),
            regex::bytes::Regex::new("").unwrap(),
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

    /// Expands `$map[i]` for a request to `target`.
    fn eval(i: u32, target: &str) -> String {
        let req = format!("GET {target} HTTP/1.1\r\nHost: example.com\r\n\r\n");
        let buf = req.as_bytes();
        let mut head = RequestHead::new();
        parse_head(buf, &Limits::default(), &mut head).expect("a request head");
        let args = target.split_once('?').map_or("", |(_, a)| a);
        let (maps, regexes) = maps();
        let captures = Captures::with_groups(&[b"whole", b"req1"]);
        let pool = RefCell::new(VarPool::default());
        let addr: SocketAddr = "127.0.0.1:80".parse().expect("an address");
        let ctx = Ctx {
            buf,
            head: &head,
            uri: b"/",
            args: args.as_bytes(),
            host: b"example.com",
            server_name: "",
            peer: addr,
            local: addr,
            user: &[],
            captures: &captures,
            pool: &pool,
            status: 200,
            body_bytes: 0,
            bytes_sent: 0,
            request_time_ms: 0,
            document_root: b"",
            time_local: b"",
            proxy_host: b"",
            upstream: None,
            regexes: &regexes,
            maps: &maps,
        };
        let mut out = Vec::new();
        ctx.expand(&var(Var::Map(i)), &mut out);
        String::from_utf8(out).expect("UTF-8")
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
