//! TLS load client for bench/run's TLS scenarios (issue 14). Loopback benchmarking only:
//! it accepts ANY server certificate and does not check the handshake signature.
//!
//! usage: tls_load MODE HOST:PORT [options]
//!
//! modes:
//!   full       a new connection per request, no resumption (full TLS 1.3 handshakes);
//!              `Connection: close`, the client reads to the server's close
//!   resume     the same, but every timed connection resumes with a session ticket from an
//!              earlier one (each thread primes its own session cache with one untimed
//!              connection first); the resumed share is reported and must be ~100 %
//!   keepalive  -c N connections, pipelining off (one request in flight per connection),
//!              GET PATH repeatedly
//!   idle       open -c N connections (--threads T open them), one request each, then keep
//!              them open; prints `READY ok=N failed=N secs=T`, then answers `check` on stdin
//!              with `OPEN n CLOSED m` and exits on `quit`, EOF or after --duration seconds
//!
//! options:
//!   --path P         request path (default /)
//!   -c, --conns N    connections (= threads for full/resume/keepalive; default 1)
//!   --threads T      keepalive: threads sharing the connections, each sends a request on
//!                    all of its connections, then reads the answers (default: one thread per
//!                    connection); idle: threads opening the connections (default 8)
//!   -d, --duration S seconds to run (idle: hold time; default 5)
//!   --sni NAME       server name for SNI and the Host header (default localhost)
//!   --timeout S      socket read/write timeout (default 5)
//!
//! Output (full/resume/keepalive): one line `TLSLOAD {json}` with requests, seconds, bytes
//! (plaintext response bytes, head + body), errors, resumed, connections, p50_us, p99_us,
//! max_us, version, suite, group and the first error seen.
//!
//! Key exchange is pinned to X25519 (no post-quantum hybrid: nginx 1.22 + OpenSSL 3.0 does
//! not have it, and both servers must do the same work); TLS 1.3 only.

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, SignatureScheme,
             StreamOwned};

#[derive(Debug)]
struct AcceptAll(Vec<SignatureScheme>);

impl ServerCertVerifier for AcceptAll {
    fn verify_server_cert(&self, _: &CertificateDer<'_>, _: &[CertificateDer<'_>],
                          _: &ServerName<'_>, _: &[u8], _: UnixTime)
                          -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct)
                              -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(&self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct)
                              -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Full,
    Resume,
    KeepAlive,
    Idle,
}

struct Opts {
    mode: Mode,
    addr: SocketAddr,
    path: String,
    conns: usize,
    threads: Option<usize>,
    duration: f64,
    sni: String,
    timeout: Duration,
}

fn usage() -> ! {
    eprintln!("usage: tls_load full|resume|keepalive|idle HOST:PORT [--path P] [-c N] \
               [--threads T] [-d SECS] [--sni NAME] [--timeout SECS]");
    std::process::exit(2)
}

fn parse() -> Opts {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 2 {
        usage();
    }
    let mode = match a[0].as_str() {
        "full" => Mode::Full,
        "resume" => Mode::Resume,
        "keepalive" => Mode::KeepAlive,
        "idle" => Mode::Idle,
        _ => usage(),
    };
    let addr = a[1].to_socket_addrs().ok().and_then(|mut i| i.next()).unwrap_or_else(|| usage());
    let mut o = Opts { mode, addr, path: "/".into(), conns: 1, threads: None, duration: 5.0,
                       sni: "localhost".into(), timeout: Duration::from_secs(5) };
    let mut i = 2;
    while i < a.len() {
        let v = a.get(i + 1).cloned().unwrap_or_else(|| usage());
        match a[i].as_str() {
            "--path" => o.path = v,
            "-c" | "--conns" => o.conns = v.parse().unwrap_or_else(|_| usage()),
            "--threads" => o.threads = Some(v.parse().unwrap_or_else(|_| usage())),
            "-d" | "--duration" => o.duration = v.parse().unwrap_or_else(|_| usage()),
            "--sni" => o.sni = v,
            "--timeout" => o.timeout = Duration::from_secs_f64(v.parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
        i += 2;
    }
    o.conns = o.conns.max(1);
    o.threads = o.threads.map(|t| t.max(1));
    o
}

fn config(resume: bool) -> Arc<ClientConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    let schemes = provider.signature_verification_algorithms.supported_schemes();
    let mut c = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3 with aws-lc-rs")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAll(schemes)))
        .with_no_client_auth();
    c.resumption = if resume { Resumption::in_memory_sessions(64) } else { Resumption::disabled() };
    c.enable_early_data = false;
    Arc::new(c)
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn connect(o: &Opts, cfg: &Arc<ClientConfig>) -> io::Result<Tls> {
    let sock = TcpStream::connect_timeout(&o.addr, o.timeout)?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(o.timeout))?;
    sock.set_write_timeout(Some(o.timeout))?;
    let name = ServerName::try_from(o.sni.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let conn = ClientConnection::new(cfg.clone(), name)
        .map_err(|e| io::Error::new(io::ErrorKind::Other, e))?;
    let mut s = StreamOwned::new(conn, sock);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

fn find(h: &[u8], pat: &[u8]) -> Option<usize> {
    h.windows(pat.len()).position(|w| w == pat)
}

/// Reads one response: (status, bytes read (head + body), server said Connection: close).
fn read_response(s: &mut Tls, buf: &mut [u8]) -> io::Result<(u16, u64, bool)> {
    let mut head: Vec<u8> = Vec::with_capacity(512);
    let mut total: u64 = 0;
    let (end, status, length, close) = loop {
        let n = s.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a response"));
        }
        total += n as u64;
        head.extend_from_slice(&buf[..n]);
        if let Some(e) = find(&head, b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&head[..e]);
            let mut lines = text.split("\r\n");
            let status = lines.next().and_then(|l| l.split(' ').nth(1))
                .and_then(|c| c.parse::<u16>().ok()).unwrap_or(0);
            let mut length = None;
            let mut close = false;
            for l in lines {
                let (k, v) = l.split_once(':').unwrap_or((l, ""));
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<u64>().ok();
                } else if k.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
            break (e + 4, status, length, close);
        }
        if head.len() > 65536 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "response head over 64 KiB"));
        }
    };
    let Some(length) = length else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "no Content-Length"));
    };
    let have = (head.len() - end) as u64;
    if have > length {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "more bytes than Content-Length"));
    }
    let mut left = length - have;
    while left > 0 {
        let want = (left as usize).min(buf.len());
        let n = s.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed mid-body"));
        }
        total += n as u64;
        left -= n as u64;
    }
    Ok((status, total, close))
}

/// Reads until the server's close_notify / FIN (bounded by the socket timeout), so the server
/// closes first and the client's reset does not interrupt its close.
fn drain(s: &mut Tls, buf: &mut [u8]) {
    loop {
        match s.read(buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[derive(Default)]
struct Stats {
    requests: u64,
    bytes: u64,
    errors: u64,
    resumed: u64,
    connections: u64,
    lat_us: Vec<u32>,
    first_error: Option<String>,
    info: Option<(String, String, String)>,
}

impl Stats {
    fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
    fn note(&mut self, c: &ClientConnection) {
        if self.info.is_none() {
            let v = c.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
            let s = c.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
            let g = c.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name()))
                .unwrap_or_default();
            self.info = Some((v, s, g));
        }
    }
}

fn request_bytes(o: &Opts, close: bool) -> Vec<u8> {
    format!("GET {} HTTP/1.1\r\nHost: {}\r\n{}\r\n", o.path, o.sni,
            if close { "Connection: close\r\n" } else { "" }).into_bytes()
}

/// full / resume: one connection per request, `Connection: close`.
fn conn_per_request(o: &Opts, cfg: &Arc<ClientConfig>, req: &[u8], buf: &mut [u8], st: &mut Stats,
                    timed: bool) -> io::Result<()> {
    let t = Instant::now();
    let mut s = connect(o, cfg)?;
    s.write_all(req)?;
    s.flush()?;
    let (status, bytes, _) = read_response(&mut s, buf)?;
    let resumed = s.conn.handshake_kind() == Some(HandshakeKind::Resumed);
    drain(&mut s, buf);
    if status != 200 {
        return Err(io::Error::new(io::ErrorKind::Other, format!("status {status}")));
    }
    if timed {
        st.note(&s.conn);
        st.requests += 1;
        st.connections += 1;
        st.bytes += bytes;
        st.resumed += resumed as u64;
        st.lat_us.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    Ok(())
}

fn worker(o: Arc<Opts>, start: Arc<Barrier>, slots: usize) -> Stats {
    let mut st = Stats::default();
    let mut buf = vec![0u8; 64 * 1024];
    let cfg = config(o.mode == Mode::Resume); // one per thread: its own session cache
    let close = o.mode != Mode::KeepAlive;
    let req = request_bytes(&o, close);
    // keepalive: this thread's connections, each with at most one request outstanding.
    let mut ka: Vec<Option<Tls>> = (0..slots).map(|_| None).collect();
    // Untimed preparation: resume primes the session cache, keepalive opens its connections.
    match o.mode {
        Mode::Resume => {
            for _ in 0..3 {
                if conn_per_request(&o, &cfg, &req, &mut buf, &mut st, false).is_ok() {
                    break;
                }
            }
        }
        Mode::KeepAlive => {
            for slot in ka.iter_mut() {
                match connect(&o, &cfg) {
                    Ok(s) => *slot = Some(s),
                    Err(e) => st.error(format!("connect: {e}")),
                }
            }
        }
        _ => {}
    }
    start.wait();
    let end = Instant::now() + Duration::from_secs_f64(o.duration);
    let mut sent: Vec<Option<Instant>> = vec![None; slots];
    while Instant::now() < end {
        if o.mode != Mode::KeepAlive {
            if let Err(e) = conn_per_request(&o, &cfg, &req, &mut buf, &mut st, true) {
                st.error(e);
                std::thread::sleep(Duration::from_millis(1));
            }
            continue;
        }
        // One round: a request on every connection, then every answer (no pipelining: one
        // request per connection in flight; the connections of a thread overlap).
        for (slot, t) in ka.iter_mut().zip(sent.iter_mut()) {
            if slot.is_none() {
                match connect(&o, &cfg) {
                    Ok(s) => *slot = Some(s),
                    Err(e) => {
                        st.error(format!("connect: {e}"));
                        continue;
                    }
                }
            }
            let s = slot.as_mut().unwrap();
            *t = Some(Instant::now());
            if let Err(e) = s.write_all(&req).and_then(|_| s.flush()) {
                st.error(e);
                *slot = None;
                *t = None;
            }
        }
        let mut any = false;
        for (slot, t) in ka.iter_mut().zip(sent.iter_mut()) {
            let (Some(s), Some(t0)) = (slot.as_mut(), t.take()) else { continue };
            any = true;
            match read_response(s, &mut buf) {
                Ok((status, bytes, server_close)) => {
                    if status != 200 {
                        st.error(format!("status {status}"));
                    } else {
                        st.note(&s.conn);
                        st.requests += 1;
                        st.bytes += bytes;
                        st.lat_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    if server_close {
                        *slot = None;
                    }
                }
                Err(e) => {
                    st.error(e);
                    *slot = None;
                }
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    st.connections += ka.iter().filter(|s| s.is_some()).count() as u64;
    st
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn run_load(o: Opts) {
    let o = Arc::new(o);
    // full/resume: one thread per connection in flight; keepalive: --threads threads (default
    // one per connection) sharing the connections.
    let n = if o.mode == Mode::KeepAlive { o.threads.unwrap_or(o.conns).clamp(1, o.conns) } else { o.conns };
    let start = Arc::new(Barrier::new(n + 1));
    let (tx, rx) = mpsc::channel();
    for i in 0..n {
        let (o, start, tx) = (o.clone(), start.clone(), tx.clone());
        let slots = if o.mode == Mode::KeepAlive { o.conns / n + usize::from(i < o.conns % n) } else { 1 };
        std::thread::Builder::new().stack_size(256 * 1024)
            .spawn(move || {
                let _ = tx.send(worker(o, start, slots));
            })
            .expect("spawn");
    }
    drop(tx);
    // The preparation (priming the session caches / connecting) is bounded too.
    let prep_deadline = Instant::now() + o.timeout * 3 + Duration::from_secs(5);
    let (btx, brx) = mpsc::channel();
    {
        let start = start.clone();
        std::thread::spawn(move || {
            start.wait();
            let _ = btx.send(());
        });
    }
    if brx.recv_timeout(prep_deadline.saturating_duration_since(Instant::now())).is_err() {
        println!("TLSLOAD {{\"mode\":\"{}\",\"requests\":0,\"seconds\":0,\"bytes\":0,\"errors\":1,\
                  \"resumed\":0,\"connections\":0,\"first_error\":\"workers not ready in time\"}}",
                 format!("{:?}", o.mode).to_lowercase());
        let _ = io::stdout().flush();
        std::process::exit(1);
    }
    let go = Instant::now();
    let hard = go + Duration::from_secs_f64(o.duration) + o.timeout + Duration::from_secs(5);
    let mut all = Stats::default();
    let mut got = 0;
    while got < n {
        match rx.recv_timeout(hard.saturating_duration_since(Instant::now())) {
            Ok(st) => {
                got += 1;
                all.requests += st.requests;
                all.bytes += st.bytes;
                all.errors += st.errors;
                all.resumed += st.resumed;
                all.connections += st.connections;
                all.lat_us.extend(st.lat_us);
                if all.first_error.is_none() {
                    all.first_error = st.first_error;
                }
                if all.info.is_none() {
                    all.info = st.info;
                }
            }
            Err(_) => break,
        }
    }
    // Until the last worker finished its last request (started before the end).
    let secs = go.elapsed().as_secs_f64().max(1e-3);
    all.lat_us.sort_unstable();
    let pct = |p: f64| -> u32 {
        if all.lat_us.is_empty() { 0 } else {
            all.lat_us[((all.lat_us.len() - 1) as f64 * p).round() as usize]
        }
    };
    let (v, s, g) = all.info.clone().unwrap_or_default();
    println!("TLSLOAD {{\"mode\":\"{}\",\"requests\":{},\"seconds\":{:.4},\"bytes\":{},\"errors\":{},\
              \"resumed\":{},\"connections\":{},\"p50_us\":{},\"p99_us\":{},\"max_us\":{},\
              \"stuck_threads\":{},\"version\":{},\"suite\":{},\"group\":{},\"first_error\":{}}}",
             format!("{:?}", o.mode).to_lowercase(), all.requests, secs, all.bytes, all.errors,
             all.resumed, all.connections, pct(0.5), pct(0.99), all.lat_us.last().copied().unwrap_or(0),
             n - got, json_str(&v), json_str(&s), json_str(&g),
             all.first_error.as_deref().map(json_str).unwrap_or_else(|| "null".into()));
    let _ = io::stdout().flush();
    std::process::exit(0);
}

fn run_idle(o: Opts) {
    let o = Arc::new(o);
    let n = o.conns;
    let cfg = config(false);
    let next = Arc::new(AtomicUsize::new(0));
    let open: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let failed = Arc::new(AtomicUsize::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(120);
    let req = request_bytes(&o, false);
    let mut hs = Vec::new();
    for _ in 0..o.threads.unwrap_or(8).min(n.max(1)) {
        let (o, cfg, next, open, failed, fe, req) = (o.clone(), cfg.clone(), next.clone(), open.clone(),
                                                      failed.clone(), first_error.clone(), req.clone());
        hs.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            while next.fetch_add(1, Ordering::Relaxed) < n {
                if Instant::now() > deadline {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let r = connect(&o, &cfg).and_then(|mut s| {
                    s.write_all(&req)?;
                    s.flush()?;
                    let (status, _, close) = read_response(&mut s, &mut buf)?;
                    if status != 200 || close {
                        return Err(io::Error::new(io::ErrorKind::Other,
                                                  format!("status {status}, close {close}")));
                    }
                    Ok(s)
                });
                match r {
                    // Only the socket stays: the server cannot tell, and the client keeps no
                    // TLS state per idle connection.
                    Ok(s) => open.lock().unwrap().push(s.sock),
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        fe.lock().unwrap().get_or_insert_with(|| e.to_string());
                    }
                }
            }
        }));
    }
    for h in hs {
        let _ = h.join();
    }
    let ok = open.lock().unwrap().len();
    println!("READY ok={} failed={} secs={:.2}", ok, failed.load(Ordering::Relaxed),
             t0.elapsed().as_secs_f64());
    if let Some(e) = first_error.lock().unwrap().as_ref() {
        eprintln!("tls_load idle: first error: {e}");
    }
    let _ = io::stdout().flush();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line.trim().to_string()).is_err() {
                break;
            }
        }
    });
    let until = Instant::now() + Duration::from_secs_f64(o.duration);
    loop {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(cmd) if cmd == "check" => {
                let socks = open.lock().unwrap();
                let mut closed = 0;
                let mut b = [0u8; 1];
                for s in socks.iter() {
                    let _ = s.set_nonblocking(true);
                    match s.peek(&mut b) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        _ => closed += 1, // EOF, reset, or data the server sent unasked
                    }
                }
                println!("OPEN {} CLOSED {}", socks.len() - closed, closed);
                let _ = io::stdout().flush();
            }
            Ok(cmd) if cmd == "quit" => break,
            Ok(_) => {}
            Err(_) => break, // stdin closed or hold time over
        }
    }
    std::process::exit(0);
}

fn raise_nofile() {
    #[repr(C)]
    struct Rlimit {
        cur: u64,
        max: u64,
    }
    extern "C" {
        fn getrlimit(resource: i32, rlim: *mut Rlimit) -> i32;
        fn setrlimit(resource: i32, rlim: *const Rlimit) -> i32;
    }
    const RLIMIT_NOFILE: i32 = 7;
    let mut r = Rlimit { cur: 0, max: 0 };
    // SAFETY: plain libc calls with a correctly laid out struct rlimit (64-bit Linux).
    unsafe {
        if getrlimit(RLIMIT_NOFILE, &mut r) == 0 && r.cur < r.max {
            r.cur = r.max;
            setrlimit(RLIMIT_NOFILE, &r);
        }
    }
}

fn main() {
    let o = parse();
    raise_nofile();
    match o.mode {
        Mode::Idle => run_idle(o),
        _ => run_load(o),
    }
}
