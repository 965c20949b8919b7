//! `proton-testbackend`: a small HTTP/1.1 origin server that stands behind Proton's proxy in
//! the integration tests. One thread per connection, keep-alive and pipelining honoured.
//!
//! ```text
//! proton-testbackend --listen 127.0.0.1:0 [--name NAME]
//! ```
//!
//! Prints `listening on ADDR` once bound, then serves until killed. Every ordinary response
//! carries `X-Backend: NAME` and `Content-Length`. The routes (query parameters in brackets):
//!
//! * `/echo`: `text/plain` dump of the request: `METHOD TARGET HTTP/1.x`, every header as
//!   received (`Name: value`, one per line), an empty line, then the body (de-chunked when
//!   it came chunked). With `raw=1` the body is dumped as it arrived: chunk size lines,
//!   extensions and trailer lines included.
//! * `/count`: reads the body without keeping it, answers `bytes=N` (for huge uploads);
//!   with `sum=1`, `bytes=N fnv=H`, H the body's FNV-1a (64 bits, hexadecimal).
//! * `/id`: NAME (after `--id-delay-ms` milliseconds, 0 by default). With `close=1` the
//!   response still says `Connection: keep-alive`, but the connection is closed right
//!   after it (a server that drops kept-alive connections early).
//! * `/status?code=N`: status N, body `status N` (no body for 1xx, 204 and 304).
//! * `/delay?ms=N`: answers `delayed` after N ms.
//! * `/headdelay?ms=N`: the head (`Content-Length: 5`) at once, `hello` N ms later.
//! * `/close-mid`: the head with `Content-Length: 1000`, 10 body bytes, then close.
//! * `/close-now`: closes without answering; `/reset`: the same with an RST (SO_LINGER 0).
//! * `/chunked?n=N&size=S[&trailer=1]`: N chunks of S bytes, chunk k filled with the letter
//!   `'a' + k % 26`; with `trailer=1` a trailer `X-Trailer: yes` (announced by `Trailer:`).
//! * `/big?bytes=N`: N bytes where byte i is `(i % 251) as u8`, streamed in 64 KiB writes.
//! * `/until-close?bytes=N`: the same bytes, framed by closing the connection.
//! * `/bad-cl`, `/bad-te`, `/both-cl-te`, `/bad-status`: broken or ambiguous framing (then
//!   close): two different Content-Lengths; `Transfer-Encoding: identity`; Content-Length
//!   with chunked; the status line `HTTP/1.1 2000 OK`.
//! * `/bad-chunked`: a chunked 200 whose body is one good chunk (`hello`) then the size line
//!   `zz`; the connection is then held open until the client closes it.
//! * `/redirect?to=URL`: 302 with `Location: URL` (percent-decoded).
//! * `/headers?name=value&...`: 200 `ok` carrying each pair as a response header; with an
//!   `ETag` pair and that ETag in If-None-Match, a 304 whose `304-name=value` pairs replace
//!   `name`'s value.
//! * `/ws`: WebSocket echo of text and binary messages (up to 16 MiB).
//! * `/stats`: `connections=C requests=R` since start (this request included).
//! * anything else: 404 `not found`.
//!
//! A malformed request gets 400 and the connection is closed.
//!
//! `--requests-per-connection N`: after answering N requests on a connection, the next
//! request is read and the connection closed without an answer (a keep-alive connection
//! that a server drops just as a request arrives on it: a proxy's "stale" connection).

#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
/// `--id-delay-ms`: how long `/id` waits before answering (a slow server for the
/// latency-aware balancing tests).
static ID_DELAY_MS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// `--requests-per-connection`: requests answered per connection (0 = no limit).
static PER_CONNECTION: AtomicU64 = AtomicU64::new(0);

const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
const MAX_WS_MESSAGE: usize = 16 * 1024 * 1024;
const PIECE: usize = 64 * 1024;
/// A connection idle this long is dropped, so a vanished peer cannot pin a thread forever.
const IDLE: Duration = Duration::from_secs(300);
/// How long a closing connection drains what the client still sends (see `Conn::close`).
const LINGER: Duration = Duration::from_secs(2);

fn main() {
    let (listen, name) = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("proton-testbackend: {msg}");
            eprintln!(
                "usage: proton-testbackend --listen ADDR [--name NAME] [--id-delay-ms N] \
                 [--requests-per-connection N]"
            );
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("proton-testbackend: binding {listen}: {e}");
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().unwrap_or(listen);
    let mut out = io::stdout().lock();
    if writeln!(out, "listening on {addr}")
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(1);
    }
    drop(out);

    let name: Arc<str> = name.into();
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors or similar: back off instead of spinning.
                eprintln!("proton-testbackend: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let name = Arc::clone(&name);
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || serve(Conn::new(stream, name)));
        if let Err(e) = spawned {
            eprintln!("proton-testbackend: spawning a connection thread: {e}");
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(SocketAddr, String), String> {
    let mut listen = None;
    let mut name = "backend".to_string();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let v = args.next().ok_or("--listen needs an address")?;
                listen = Some(v.parse().map_err(|e| format!("--listen {v}: {e}"))?);
            }
            "--name" => name = args.next().ok_or("--name needs a value")?,
            "--id-delay-ms" => {
                let v = args.next().ok_or("--id-delay-ms needs a number")?;
                let ms = v.parse().map_err(|e| format!("--id-delay-ms {v}: {e}"))?;
                ID_DELAY_MS.store(ms, Ordering::Relaxed);
            }
            "--requests-per-connection" => {
                let v = args
                    .next()
                    .ok_or("--requests-per-connection needs a number")?;
                let n = v
                    .parse()
                    .map_err(|e| format!("--requests-per-connection {v}: {e}"))?;
                PER_CONNECTION.store(n, Ordering::Relaxed);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((listen.ok_or("--listen is required")?, name))
}

/// A client connection: the socket and the bytes read but not yet consumed.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    name: Arc<str>,
    /// The request being answered is a HEAD: responses carry no body.
    head_only: bool,
    /// Close with an RST (`/reset`).
    reset: bool,
}

/// What was parsed from a request head.
struct Request {
    method: String,
    target: String,
    minor: u8,
    /// Names as received, values as raw bytes.
    headers: Vec<(String, Vec<u8>)>,
    body: Framing,
    keep_alive: bool,
}

enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// Why a request could not be served: a malformed request (400) or a dead connection.
enum Fail {
    Bad(&'static str),
    Io,
}

impl From<io::Error> for Fail {
    fn from(_: io::Error) -> Fail {
        Fail::Io
    }
}

impl Request {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether a comma-separated header (all its occurrences) lists `token`.
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }

    fn path(&self) -> &str {
        let mut t = self.target.as_str();
        // Absolute form (`http://host/path`): drop the scheme and authority.
        if let Some(rest) = t.strip_prefix("http://").or(t.strip_prefix("https://")) {
            t = rest.find('/').map_or("/", |i| &rest[i..]);
        }
        t.split('?').next().unwrap_or(t)
    }

    /// The query's `name=value` pairs, percent-decoded.
    fn query(&self) -> Vec<(String, String)> {
        let Some((_, q)) = self.target.split_once('?') else {
            return Vec::new();
        };
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (n, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(n), percent_decode(v))
            })
            .collect()
    }

    fn param(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// A numeric query parameter: `default` when absent, an error when not a number.
    fn num(&self, name: &str, default: u64) -> Result<u64, Fail> {
        match self.param(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| Fail::Bad("bad number in query")),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// Byte `i` of the `/big` and `/until-close` bodies.
fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

fn serve(mut conn: Conn) {
    let _ = conn.stream.set_nodelay(true);
    let _ = conn.stream.set_read_timeout(Some(IDLE));
    let limit = PER_CONNECTION.load(Ordering::Relaxed);
    let mut answered = 0u64;
    loop {
        let req = match conn.read_head() {
            Ok(Some(req)) => req,
            Ok(None) | Err(Fail::Io) => break,
            Err(Fail::Bad(why)) => {
                conn.bad_request(why);
                break;
            }
        };
        if limit > 0 && answered == limit {
            // Dropped unanswered, request bytes unread: the peer sees a close or a reset.
            return;
        }
        answered += 1;
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        match conn.route(&req) {
            Ok(true) if req.keep_alive => {}
            Ok(_) | Err(Fail::Io) => break,
            Err(Fail::Bad(why)) => {
                conn.bad_request(why);
                break;
            }
        }
    }
    conn.close();
}

impl Conn {
    fn new(stream: TcpStream, name: Arc<str>) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            name,
            head_only: false,
            reset: false,
        }
    }

    /// Reads more bytes into `buf`; an error at the end of the stream.
    fn fill(&mut self) -> Result<(), Fail> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(Fail::Io);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// The next request head, or `None` when the client closed between requests.
    fn read_head(&mut self) -> Result<Option<Request>, Fail> {
        loop {
            // Tolerate empty lines before a request (RFC 9112 §2.2).
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Request::new(&mut headers);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let req = request_from(&parsed)?;
                    self.buf.drain(..len);
                    return Ok(Some(req));
                }
                Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => return Err(Fail::Bad("request head too large")),
                Err(_) => return Err(Fail::Bad("malformed request head")),
            }
            let was_empty = self.buf.is_empty();
            match self.fill() {
                Ok(()) => {}
                Err(_) if was_empty => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the request body, handing it to `sink` piece by piece; with `raw`, a chunked
    /// body's framing lines (size lines, extensions, trailers, with their CRLF) go to `sink`
    /// too, as they arrived.
    fn read_body(
        &mut self,
        req: &Request,
        raw: bool,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Fail> {
        match req.body {
            Framing::None => Ok(()),
            Framing::Length(n) => self.read_exact_into(n, sink),
            Framing::Chunked => {
                let framing = |line: &[u8], sink: &mut dyn FnMut(&[u8])| {
                    if raw {
                        sink(line);
                        sink(b"\r\n");
                    }
                };
                loop {
                    let line = self.read_line()?;
                    framing(&line, sink);
                    let size = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(size.trim_ascii())
                        .ok()
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or(Fail::Bad("bad chunk size"))?;
                    if size == 0 {
                        break;
                    }
                    self.read_exact_into(size, sink)?;
                    if !self.read_line()?.is_empty() {
                        return Err(Fail::Bad("chunk not followed by CRLF"));
                    }
                    framing(b"", sink);
                }
                // Trailer fields, up to the empty line.
                loop {
                    let line = self.read_line()?;
                    framing(&line, sink);
                    if line.is_empty() {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    fn read_exact_into(&mut self, mut n: u64, sink: &mut dyn FnMut(&[u8])) -> Result<(), Fail> {
        while n > 0 {
            if self.buf.is_empty() {
                self.fill()?;
            }
            let take = self.buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            sink(&self.buf[..take]);
            self.buf.drain(..take);
            n -= take as u64;
        }
        Ok(())
    }

    /// A line ending in CRLF (or LF), without its ending.
    fn read_line(&mut self) -> Result<Vec<u8>, Fail> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Fail::Bad("line too long"));
            }
            self.fill()?;
        }
    }

    /// Answers 400 and closes.
    /// Answers 400 (the caller closes the connection).
    fn bad_request(&mut self, why: &str) {
        let body = format!("bad request: {why}\n");
        let _ = self.send(
            400,
            &[("Content-Type", "text/plain".into())],
            body.as_bytes(),
            false,
        );
    }

    /// Closes the connection: with an RST after `/reset`, otherwise a lingering close (send
    /// FIN, then drain what the client still sends for a moment) so that unread request
    /// bytes do not turn the close into an RST that could destroy the response in flight.
    fn close(mut self) {
        if self.reset {
            return;
        }
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut sink = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut sink) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Writes a complete response with `X-Backend`, `Connection` and `Content-Length`
    /// (omitted, with the body, for 1xx, 204 and 304; a HEAD response has no body).
    fn send(
        &mut self,
        status: u16,
        headers: &[(&str, String)],
        body: &[u8],
        keep_alive: bool,
    ) -> io::Result<()> {
        let bodiless = status < 200 || status == 204 || status == 304;
        let mut out = self.head(status, headers, keep_alive);
        if !bodiless {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if !bodiless && !self.head_only {
            out.extend_from_slice(body);
        }
        self.stream.write_all(&out)
    }

    /// The status line and headers, without the final empty line.
    fn head(&self, status: u16, headers: &[(&str, String)], keep_alive: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        out.push_str(&format!("X-Backend: {}\r\n", self.name));
        for (n, v) in headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str(if keep_alive {
            "Connection: keep-alive\r\n"
        } else {
            "Connection: close\r\n"
        });
        out.into_bytes()
    }

    /// Serves one request; `Ok(true)` when the connection may carry another one.
    fn route(&mut self, req: &Request) -> Result<bool, Fail> {
        let ka = req.keep_alive;
        let head_only = req.method == "HEAD";
        self.head_only = head_only;
        if req.path() == "/ws" {
            return self.websocket(req).map(|()| false);
        }
        if req
            .header("Expect")
            .is_some_and(|e| e.eq_ignore_ascii_case(b"100-continue"))
            && !matches!(req.body, Framing::None)
        {
            self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let mut echo = Vec::new();
        let mut received = 0u64;
        let keep_body = req.path() == "/echo";
        let raw = keep_body && req.param("raw").as_deref() == Some("1");
        // `/count?sum=1`: FNV-1a (64 bits) of the body too.
        let sum = req.path() == "/count" && req.param("sum").as_deref() == Some("1");
        let mut fnv = 0xcbf2_9ce4_8422_2325u64;
        self.read_body(req, raw, &mut |piece| {
            received += piece.len() as u64;
            if keep_body {
                echo.extend_from_slice(piece);
            }
            if sum {
                for &b in piece {
                    fnv = (fnv ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        })?;
        let text = || ("Content-Type", "text/plain".to_string());
        let reply = |conn: &mut Conn, status: u16, headers: &[(&str, String)], body: &[u8]| {
            conn.send(status, headers, body, ka).map(|()| ka)
        };
        match req.path() {
            "/echo" => {
                let mut dump =
                    format!("{} {} HTTP/1.{}\n", req.method, req.target, req.minor).into_bytes();
                for (n, v) in &req.headers {
                    dump.extend_from_slice(n.as_bytes());
                    dump.extend_from_slice(b": ");
                    dump.extend_from_slice(v);
                    dump.push(b'\n');
                }
                dump.push(b'\n');
                dump.extend_from_slice(&echo);
                Ok(reply(self, 200, &[text()], &dump)?)
            }
            "/count" if sum => Ok(reply(
                self,
                200,
                &[text()],
                format!("bytes={received} fnv={fnv:016x}").as_bytes(),
            )?),
            "/count" => Ok(reply(
                self,
                200,
                &[text()],
                format!("bytes={received}").as_bytes(),
            )?),
            "/id" => {
                let delay = ID_DELAY_MS.load(Ordering::Relaxed);
                if delay > 0 {
                    std::thread::sleep(Duration::from_millis(delay));
                }
                let name = self.name.clone();
                if req.param("close").as_deref() == Some("1") {
                    // Says keep-alive, closes at once.
                    self.send(200, &[text()], name.as_bytes(), true)?;
                    return Ok(false);
                }
                Ok(reply(self, 200, &[text()], name.as_bytes())?)
            }
            "/stats" => {
                let body = format!(
                    "connections={} requests={}",
                    CONNECTIONS.load(Ordering::Relaxed),
                    REQUESTS.load(Ordering::Relaxed)
                );
                Ok(reply(self, 200, &[text()], body.as_bytes())?)
            }
            "/status" => {
                let code = req.num("code", 200)?;
                let code = u16::try_from(code)
                    .ok()
                    .filter(|c| (100..=999).contains(c))
                    .ok_or(Fail::Bad("status code out of range"))?;
                Ok(reply(
                    self,
                    code,
                    &[text()],
                    format!("status {code}").as_bytes(),
                )?)
            }
            "/delay" => {
                std::thread::sleep(Duration::from_millis(req.num("ms", 0)?));
                Ok(reply(self, 200, &[text()], b"delayed")?)
            }
            "/headdelay" => {
                let ms = req.num("ms", 0)?;
                let mut head = self.head(200, &[text()], ka);
                head.extend_from_slice(b"Content-Length: 5\r\n\r\n");
                self.stream.write_all(&head)?;
                std::thread::sleep(Duration::from_millis(ms));
                if !head_only {
                    self.stream.write_all(b"hello")?;
                }
                Ok(ka)
            }
            "/close-mid" => {
                let mut head = self.head(200, &[], false);
                head.extend_from_slice(b"Content-Length: 1000\r\n\r\n0123456789");
                self.stream.write_all(&head)?;
                Ok(false)
            }
            "/close-now" => Ok(false),
            "/reset" => {
                socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO))?;
                self.reset = true;
                Ok(false)
            }
            "/chunked" => self.chunked(req, head_only),
            "/big" => {
                let n = req.num("bytes", 0)?;
                let mut head = self.head(
                    200,
                    &[("Content-Type", "application/octet-stream".into())],
                    ka,
                );
                head.extend_from_slice(format!("Content-Length: {n}\r\n\r\n").as_bytes());
                self.stream.write_all(&head)?;
                if !head_only {
                    self.write_pattern(n)?;
                }
                Ok(ka)
            }
            "/until-close" => {
                let n = req.num("bytes", 0)?;
                let head = self.head(
                    200,
                    &[("Content-Type", "application/octet-stream".into())],
                    false,
                );
                self.stream.write_all(&head)?;
                self.stream.write_all(b"\r\n")?;
                if !head_only {
                    self.write_pattern(n)?;
                }
                Ok(false)
            }
            "/bad-cl" => {
                self.raw_then_close("Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
            }
            "/bad-te" => {
                self.raw_then_close("Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello")
            }
            "/both-cl-te" => self.raw_then_close(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ),
            "/bad-chunked" => {
                let mut head = self.head(200, &[text()], true);
                head.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n");
                self.stream.write_all(&head)?;
                // Held open: a proxy must end the client's response by itself.
                let mut sink = [0u8; 4096];
                while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
                Ok(false)
            }
            "/bad-status" => {
                self.stream.write_all(b"HTTP/1.1 2000 OK\r\n\r\n")?;
                Ok(false)
            }
            "/redirect" => {
                let to = req.param("to").ok_or(Fail::Bad("/redirect needs ?to="))?;
                check_value(&to)?;
                Ok(reply(self, 302, &[("Location", to)], b"")?)
            }
            "/headers" => {
                let mut headers = Vec::new();
                for (n, v) in req.query() {
                    if !is_token(&n) {
                        return Err(Fail::Bad("bad header name in query"));
                    }
                    check_value(&v)?;
                    headers.push((n, v));
                }
                // A request whose If-None-Match is the ETag asked for gets a 304, its
                // `304-Name` pairs replacing `Name`'s value (others sent as they are).
                let etag = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("etag"));
                let not_modified =
                    etag.is_some_and(|(_, e)| req.header("If-None-Match") == Some(e.as_bytes()));
                let status = if not_modified { 304 } else { 200 };
                let replaced = |name: &str| {
                    headers.iter().any(|(o, _)| {
                        o.strip_prefix("304-")
                            .is_some_and(|o| o.eq_ignore_ascii_case(name))
                    })
                };
                let mut out: Vec<(&str, String)> = Vec::new();
                for (n, v) in &headers {
                    match n.strip_prefix("304-") {
                        Some(name) if not_modified => out.push((name, v.clone())),
                        Some(_) => {}
                        None if not_modified && replaced(n) => {}
                        None => out.push((n.as_str(), v.clone())),
                    }
                }
                Ok(reply(self, status, &out, b"ok")?)
            }
            _ => Ok(reply(self, 404, &[text()], b"not found")?),
        }
    }

    /// Writes `n` bytes of [`pattern`] in 64 KiB pieces from one reusable buffer.
    fn write_pattern(&mut self, n: u64) -> io::Result<()> {
        // 251 extra bytes so that a piece can start at any phase of the pattern.
        let buf: Vec<u8> = (0..(PIECE + 251) as u64).map(pattern).collect();
        let mut sent = 0u64;
        while sent < n {
            let phase = (sent % 251) as usize;
            let len = usize::try_from(n - sent).unwrap_or(PIECE).min(PIECE);
            self.stream.write_all(&buf[phase..phase + len])?;
            sent += len as u64;
        }
        Ok(())
    }

    fn chunked(&mut self, req: &Request, head_only: bool) -> Result<bool, Fail> {
        let n = req.num("n", 1)?;
        let size = usize::try_from(req.num("size", 16)?)
            .ok()
            .filter(|&s| s <= 16 * 1024 * 1024)
            .ok_or(Fail::Bad("chunk size too large"))?;
        let trailer = req.param("trailer").as_deref() == Some("1");
        let mut headers = vec![
            ("Content-Type", "text/plain".to_string()),
            ("Transfer-Encoding", "chunked".to_string()),
        ];
        if trailer {
            headers.push(("Trailer", "X-Trailer".to_string()));
        }
        let mut head = self.head(200, &headers, req.keep_alive);
        head.extend_from_slice(b"\r\n");
        self.stream.write_all(&head)?;
        if head_only {
            return Ok(req.keep_alive);
        }
        let mut chunk = Vec::with_capacity(size + 32);
        for k in 0..n {
            chunk.clear();
            chunk.extend_from_slice(format!("{size:x}\r\n").as_bytes());
            chunk.resize(chunk.len() + size, b'a' + (k % 26) as u8);
            chunk.extend_from_slice(b"\r\n");
            self.stream.write_all(&chunk)?;
        }
        let last: &[u8] = if trailer {
            b"0\r\nX-Trailer: yes\r\n\r\n"
        } else {
            b"0\r\n\r\n"
        };
        self.stream.write_all(last)?;
        Ok(req.keep_alive)
    }

    /// Status line, `X-Backend`, then `rest` verbatim; the connection is closed after.
    fn raw_then_close(&mut self, rest: &str) -> Result<bool, Fail> {
        let mut out = self.head(200, &[], false);
        out.extend_from_slice(rest.as_bytes());
        self.stream.write_all(&out)?;
        Ok(false)
    }

    /// Completes the WebSocket handshake, then echoes messages until the client closes.
    fn websocket(&mut self, req: &Request) -> Result<(), Fail> {
        let version_ok = req.header("Sec-WebSocket-Version") == Some(b"13".as_slice());
        let key = req.header("Sec-WebSocket-Key").filter(|k| !k.is_empty());
        let (true, Some(key), true, true, Framing::None) = (
            req.method == "GET",
            key,
            req.has_token("Upgrade", "websocket"),
            req.has_token("Connection", "upgrade"),
            &req.body,
        ) else {
            return Err(Fail::Bad("not a WebSocket handshake"));
        };
        if !version_ok {
            return Err(Fail::Bad("Sec-WebSocket-Version must be 13"));
        }
        let accept = tungstenite::handshake::derive_accept_key(key);
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nX-Backend: {}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n",
            self.name
        );
        self.stream.write_all(head.as_bytes())?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_WS_MESSAGE))
            .max_frame_size(Some(MAX_WS_MESSAGE));
        let stream = self.stream.try_clone()?;
        let early = std::mem::take(&mut self.buf);
        let mut ws = WebSocket::from_partially_read(stream, early, Role::Server, Some(config));
        // Errors end the session: ConnectionClosed after a clean close, anything else abrupt.
        while let Ok(msg) = ws.read() {
            if matches!(msg, Message::Text(_) | Message::Binary(_)) && ws.send(msg).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Rejects a header value that would break the response head.
fn check_value(v: &str) -> Result<(), Fail> {
    if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(Fail::Bad("CR, LF or NUL in a header value"));
    }
    Ok(())
}

/// Builds a [`Request`] from a parsed head, deciding body framing and keep-alive.
fn request_from(parsed: &httparse::Request) -> Result<Request, Fail> {
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(Fail::Bad("incomplete request line"));
    };
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        minor,
        headers: parsed
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect(),
        body: Framing::None,
        keep_alive: false,
    };
    let mut length: Option<u64> = None;
    for (_, v) in req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
    {
        let n = std::str::from_utf8(v)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or(Fail::Bad("bad Content-Length"))?;
        if length.is_some_and(|l| l != n) {
            return Err(Fail::Bad("conflicting Content-Length headers"));
        }
        length = Some(n);
    }
    let te: Vec<&[u8]> = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Transfer-Encoding"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    req.body = match (te.last(), length) {
        (None, None) => Framing::None,
        (None, Some(n)) => Framing::Length(n),
        (Some(_), Some(_)) => return Err(Fail::Bad("both Content-Length and Transfer-Encoding")),
        (Some(last), None) if last.eq_ignore_ascii_case(b"chunked") && minor == 1 => {
            Framing::Chunked
        }
        (Some(_), None) => return Err(Fail::Bad("unsupported Transfer-Encoding")),
    };
    req.keep_alive = if minor == 1 {
        !req.has_token("Connection", "close")
    } else {
        req.has_token("Connection", "keep-alive") && !req.has_token("Connection", "close")
    };
    Ok(req)
}
