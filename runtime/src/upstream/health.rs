//! Active health checks (`health_check` in an upstream): one thread per checked server sends
//! `GET uri HTTP/1.0` every `interval` and reads the status line within `timeout`. A 2xx or 3xx
//! status passes; any other status, a connection error, a malformed answer or the timeout
//! fails. `fails` failures in a row mark the server down in the generation's
//! [`SharedUpstreams`] (every worker's balancer then skips it), `passes` passes in a row mark it
//! up. A server starts "unknown", which is usable, and follows the checks from there.
//!
//! Who runs them: worker slot 0 of each config generation calls [`spawn_checkers`] once; the
//! threads run until that process exits (or [`Checkers::stop`]). They touch nothing but their
//! own socket, the shared mapping (kept alive by the `Arc`) and the log callback. Servers
//! marked `down` in the config are never picked, so they are not checked.
//!
//! Transitions are logged through the caller's callback: `warn` when a server goes down (with
//! the reason of the last failure), `notice` when a down server comes back, `info` when an
//! unknown server is first confirmed up. Single failed checks are logged at `debug`.

use std::io::{ErrorKind, Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proton_ir::{HealthCheck, Ir, LogLevel, Upstream};

use super::addr::PeerAddr;
use super::peer::Health;
use super::shared::SharedUpstreams;

/// The logging callback: level and message.
pub type LogFn = Arc<dyn Fn(LogLevel, String) + Send + Sync>;

/// Most bytes read while looking for the end of the status line.
const MAX_STATUS_LINE: usize = 512;

/// Tells checker threads to stop, waking them from their wait.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Waits until `deadline` or a stop; true when stopped.
    fn wait_until(&self, deadline: Instant) -> bool {
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if *stopped {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            stopped = match self.wake.wait_timeout(stopped, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }
}

/// The checker threads of one generation. Dropping this leaves them running (they live as
/// long as the process); [`Checkers::stop`] ends them.
pub struct Checkers {
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
}

impl Checkers {
    /// Number of servers being checked (one thread each).
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// Stops every checker and waits for them (at most one check's `timeout`).
    pub fn stop(self) {
        self.stop.stop();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// What one checker thread checks.
struct Target {
    upstream: usize,
    peer: usize,
    /// The upstream's name, for log lines.
    group: String,
    /// The server's address as written (log lines and the `Host` header).
    address: String,
    /// Where to connect (the resolved address, with `port=` applied; a unix socket has
    /// no port, and is checked on itself).
    addr: PeerAddr,
    check: HealthCheck,
}

/// Starts one checker thread per server with a resolved address (`addrs[upstream][server]`)
/// of every upstream of `ir` that has `health_check`. See the module docs.
pub fn spawn_checkers(
    ir: &Ir,
    addrs: &[Vec<Option<PeerAddr>>],
    shared: Arc<SharedUpstreams>,
    log: LogFn,
) -> Checkers {
    spawn_for(&ir.upstreams, addrs, shared, log)
}

/// [`spawn_checkers`] over a list of upstreams (index-aligned with `addrs` and `shared`).
pub fn spawn_for(
    upstreams: &[Upstream],
    addrs: &[Vec<Option<PeerAddr>>],
    shared: Arc<SharedUpstreams>,
    log: LogFn,
) -> Checkers {
    let stop = Arc::new(Stop::default());
    let mut threads = Vec::new();
    for (ui, u) in upstreams.iter().enumerate() {
        let Some(check) = &u.health_check else {
            continue;
        };
        for (si, server) in u.servers.iter().enumerate() {
            if server.down {
                continue;
            }
            let Some(mut addr) = addrs.get(ui).and_then(|a| a.get(si)).cloned().flatten() else {
                continue;
            };
            if let (Some(port), PeerAddr::Inet(a)) = (check.port, &mut addr) {
                a.set_port(port);
            }
            let target = Target {
                upstream: ui,
                peer: si,
                group: u.name.clone(),
                address: server.address.clone(),
                addr,
                check: check.clone(),
            };
            let (sh, lg, st) = (Arc::clone(&shared), Arc::clone(&log), Arc::clone(&stop));
            let spawned = std::thread::Builder::new()
                .name(format!("health {}", server.address))
                .spawn(move || run(&target, &sh, &lg, &st));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => log(
                    LogLevel::Error,
                    format!(
                        "cannot start the health checker of upstream \"{}\" server {}: {e}",
                        u.name, server.address
                    ),
                ),
            }
        }
    }
    Checkers { stop, threads }
}

/// A checker thread: check, record, log a transition, wait for the next interval.
fn run(t: &Target, shared: &SharedUpstreams, log: &LogFn, stop: &Stop) {
    let interval = Duration::from_millis(t.check.interval_ms.max(1));
    let timeout = Duration::from_millis(t.check.timeout_ms.max(1));
    // A unix socket's `Host` is `localhost`, as nginx's proxy sends.
    let host = if t.addr.is_unix() {
        "localhost"
    } else {
        t.address.as_str()
    };
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: proton-health\r\n\r\n",
        t.check.uri
    );
    loop {
        let started = Instant::now();
        let result = probe(&t.addr, request.as_bytes(), timeout);
        let passed = matches!(result, Ok(code) if (200..400).contains(&code));
        let transition =
            shared.record_check(t.upstream, t.peer, passed, t.check.fails, t.check.passes);
        let what = || format!("upstream \"{}\" server {} ({})", t.group, t.address, t.addr);
        let reason = || match &result {
            Ok(code) => format!("status {code}"),
            Err(e) => e.clone(),
        };
        match transition {
            Some((_, Health::Down)) => log(
                LogLevel::Warn,
                format!(
                    "{} is down: {} failed health check(s) of {}, last: {}",
                    what(),
                    t.check.fails,
                    t.check.uri,
                    reason()
                ),
            ),
            Some((Health::Down, Health::Up)) => log(
                LogLevel::Notice,
                format!(
                    "{} is up again: {} passed health check(s) of {}",
                    what(),
                    t.check.passes,
                    t.check.uri
                ),
            ),
            Some((_, Health::Up)) => log(
                LogLevel::Info,
                format!("{} is up: health checks of {} pass", what(), t.check.uri),
            ),
            _ if !passed => log(
                LogLevel::Debug,
                format!(
                    "{}: health check of {} failed: {}",
                    what(),
                    t.check.uri,
                    reason()
                ),
            ),
            _ => {}
        }
        if stop.wait_until(started + interval) {
            return;
        }
    }
}

/// One check: connects, sends `request`, and returns the status code of the answer; all
/// within `timeout`. Errors are the reason, for the log.
fn probe(addr: &PeerAddr, request: &[u8], timeout: Duration) -> Result<u16, String> {
    let deadline = Instant::now() + timeout;
    let io = |what: &str, e: std::io::Error| match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => format!("{what} timed out"),
        _ => format!("{what} failed: {e}"),
    };
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        (!d.is_zero())
            .then_some(d)
            .ok_or_else(|| "timed out".to_string())
    };
    let mut s = addr
        .connect_timeout(timeout)
        .map_err(|e| io("connect", e))?;
    s.set_write_timeout(Some(left()?))
        .map_err(|e| io("send", e))?;
    s.write_all(request).map_err(|e| io("send", e))?;
    let mut buf = [0u8; MAX_STATUS_LINE];
    let mut n = 0;
    while !buf[..n].contains(&b'\n') && n < buf.len() {
        s.set_read_timeout(Some(left()?))
            .map_err(|e| io("read", e))?;
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io("read", e)),
        }
    }
    if n == 0 {
        return Err("connection closed without an answer".into());
    }
    status_code(&buf[..n]).ok_or_else(|| {
        let line = buf[..n].split(|&b| b == b'\n').next().unwrap_or_default();
        format!(
            "not an HTTP status line: {:?}",
            String::from_utf8_lossy(&line[..line.len().min(64)])
        )
    })
}

/// The code of `HTTP/1.x NNN …` at the start of `head`.
fn status_code(head: &[u8]) -> Option<u16> {
    let rest = head.strip_prefix(b"HTTP/1.")?;
    let (&minor, rest) = rest.split_first()?;
    if !minor.is_ascii_digit() {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .iter()
        .try_fold(0u16, |acc, &d| Some(acc * 10 + u16::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proton_ir::{Balance, UpstreamServer};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

    /// A tiny HTTP server on loopback answering every request with the current `status`
    /// (0 = accept, read, and never answer), recording the last request.
    struct TestServer {
        addr: SocketAddr,
        status: Arc<AtomicU16>,
        last_request: Arc<Mutex<Vec<u8>>>,
        done: Arc<AtomicBool>,
    }

    impl TestServer {
        fn start(status: u16) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let status = Arc::new(AtomicU16::new(status));
            let last_request = Arc::new(Mutex::new(Vec::new()));
            let done = Arc::new(AtomicBool::new(false));
            let (st, last, dn) = (status.clone(), last_request.clone(), done.clone());
            std::thread::spawn(move || {
                let mut silent = Vec::new();
                for conn in listener.incoming() {
                    if dn.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(mut c) = conn else { continue };
                    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut req = Vec::new();
                    let mut buf = [0u8; 512];
                    while !req.ends_with(b"\r\n\r\n") {
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => req.extend_from_slice(&buf[..k]),
                        }
                    }
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = req;
                    match st.load(Ordering::Relaxed) {
                        0 => silent.push(c),
                        code => {
                            let _ = write!(c, "HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
                        }
                    }
                }
            });
            TestServer {
                addr,
                status,
                last_request,
                done,
            }
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.done.store(true, Ordering::Relaxed);
            // Wake the accept loop so it sees `done`.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        }
    }

    fn upstream(addresses: &[String], check: HealthCheck) -> Upstream {
        Upstream {
            name: "app".into(),
            explicit: true,
            servers: addresses
                .iter()
                .map(|a| UpstreamServer::new(a.as_str()))
                .collect(),
            balance: Balance::RoundRobin,
            keepalive: 0,
            keepalive_timeout_ms: 60_000,
            keepalive_requests: 1000,
            keepalive_time_ms: 3_600_000,
            health_check: Some(check),
        }
    }

    fn check(fails: u32, passes: u32, timeout_ms: u64) -> HealthCheck {
        HealthCheck {
            interval_ms: 50,
            uri: "/health".into(),
            fails,
            passes,
            timeout_ms,
            port: None,
        }
    }

    type Lines = Arc<Mutex<Vec<(LogLevel, String)>>>;

    fn logger() -> (LogFn, Lines) {
        let lines: Lines = Arc::default();
        let l = lines.clone();
        let f: LogFn = Arc::new(move |level, msg| {
            l.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((level, msg));
        });
        (f, lines)
    }

    /// Polls `cond` every 10 ms for up to 10 s.
    /// Waits (10 s at most) for `cond`. Log lines are waited for too: a checker publishes
    /// its verdict before it logs the transition.
    fn eventually(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn logged(lines: &Lines, level: LogLevel, needle: &str) -> bool {
        lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(l, m)| *l == level && m.contains(needle))
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 503 Busy"), Some(503));
        assert_eq!(status_code(b"HTTP/1.1 204\r\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.1 2000 OK"), None);
        assert_eq!(status_code(b"HTTP/2 200 OK"), None);
        assert_eq!(status_code(b"HTTP/1.1 20"), None);
        assert_eq!(status_code(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(status_code(b""), None);
    }

    #[test]
    fn down_on_errors_and_up_again() {
        let server = TestServer::start(200);
        let up = upstream(&[server.addr.to_string()], check(2, 2, 1000));
        let shared =
            Arc::new(SharedUpstreams::from_upstreams(std::slice::from_ref(&up)).expect("mmap"));
        let (log, lines) = logger();
        let checkers = spawn_for(
            &[up],
            &[vec![Some(server.addr.into())]],
            shared.clone(),
            log,
        );
        assert_eq!(checkers.len(), 1);
        eventually("up", || shared.peer_health(0, 0) == Health::Up);
        eventually("the log line is up", || {
            logged(&lines, LogLevel::Info, "is up")
        });
        let req = server
            .last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        assert_eq!(
            String::from_utf8_lossy(&req),
            format!(
                "GET /health HTTP/1.0\r\nHost: {}\r\nUser-Agent: proton-health\r\n\r\n",
                server.addr
            )
        );
        server.status.store(500, Ordering::Relaxed);
        eventually("down", || shared.peer_health(0, 0) == Health::Down);
        eventually("the log line status 500", || {
            logged(&lines, LogLevel::Warn, "status 500")
        });
        server.status.store(302, Ordering::Relaxed);
        eventually("up again", || shared.peer_health(0, 0) == Health::Up);
        eventually("the log line is up again", || {
            logged(&lines, LogLevel::Notice, "is up again")
        });
        checkers.stop();
    }

    #[test]
    fn refused_and_silent_servers_fail() {
        // A port with nothing listening: connect is refused.
        let closed = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind");
        // A server that accepts and never answers: the read times out.
        let silent = TestServer::start(0);
        let up = upstream(
            &[closed.to_string(), silent.addr.to_string()],
            check(1, 1, 100),
        );
        let shared =
            Arc::new(SharedUpstreams::from_upstreams(std::slice::from_ref(&up)).expect("mmap"));
        let (log, lines) = logger();
        let checkers = spawn_for(
            &[up],
            &[vec![Some(closed.into()), Some(silent.addr.into())]],
            shared.clone(),
            log,
        );
        eventually("refused server down", || {
            shared.peer_health(0, 0) == Health::Down
        });
        eventually("silent server down", || {
            shared.peer_health(0, 1) == Health::Down
        });
        eventually("the log line connect failed", || {
            logged(&lines, LogLevel::Warn, "connect failed")
        });
        eventually("the log line timed out", || {
            logged(&lines, LogLevel::Warn, "timed out")
        });
        checkers.stop();
    }

    #[test]
    fn port_override_and_what_is_skipped() {
        let server = TestServer::start(204);
        let dead = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind");
        let mut c = check(1, 1, 1000);
        c.port = Some(server.addr.port());
        // Server 0 is written with a dead port but checked on `port=`; server 1 is `down`
        // (never checked); server 2 has no address.
        let mut up = upstream(
            &[
                dead.to_string(),
                "10.0.0.1:80".to_string(),
                "x.invalid:80".to_string(),
            ],
            c,
        );
        up.servers[1].down = true;
        let plain = Upstream {
            health_check: None,
            ..up.clone()
        };
        let shared =
            Arc::new(SharedUpstreams::from_upstreams(&[plain.clone(), up.clone()]).expect("mmap"));
        let (log, _lines) = logger();
        let d = || Some(PeerAddr::from(dead));
        let addrs = vec![vec![d(), d(), d()], vec![d(), d(), None]];
        let checkers = spawn_for(&[plain, up], &addrs, shared.clone(), log);
        assert_eq!(checkers.len(), 1, "only server 0 of the checked upstream");
        eventually("up via port=", || shared.peer_health(1, 0) == Health::Up);
        let req = server
            .last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        assert!(String::from_utf8_lossy(&req).contains(&format!("Host: {dead}\r\n")));
        assert_eq!(shared.peer_health(0, 0), Health::Unknown);
        checkers.stop();
    }

    /// Unix-socket peers are checked on their socket (`port=` does not apply), with
    /// `Host: localhost`; a missing socket file fails the check.
    #[test]
    fn unix_socket_peers() {
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("proton-health-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("ok.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let last = seen.clone();
        std::thread::spawn(move || {
            for c in listener.incoming() {
                let Ok(mut c) = c else { return };
                let mut req = Vec::new();
                let mut buf = [0u8; 512];
                while !req.ends_with(b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => req.extend_from_slice(&buf[..k]),
                    }
                }
                *last.lock().unwrap_or_else(|e| e.into_inner()) = req;
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let ok = format!("unix:{}", path.display());
        let gone = format!("unix:{}", dir.join("gone.sock").display());
        let mut c = check(1, 1, 1000);
        c.port = Some(1);
        let up = upstream(&[ok.clone(), gone.clone()], c);
        let shared =
            Arc::new(SharedUpstreams::from_upstreams(std::slice::from_ref(&up)).expect("mmap"));
        let (log, lines) = logger();
        let addrs = [vec![
            crate::config::resolve_upstream(&ok).ok(),
            crate::config::resolve_upstream(&gone).ok(),
        ]];
        let checkers = spawn_for(&[up], &addrs, shared.clone(), log);
        eventually("unix peer up", || shared.peer_health(0, 0) == Health::Up);
        eventually("missing socket down", || {
            shared.peer_health(0, 1) == Health::Down
        });
        eventually("the log line names the socket", || {
            logged(&lines, LogLevel::Warn, &format!("({gone}) is down"))
        });
        let req = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(String::from_utf8_lossy(&req).contains("Host: localhost\r\n"));
        checkers.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stop_ends_a_long_wait() {
        let server = TestServer::start(200);
        let mut c = check(1, 1, 1000);
        c.interval_ms = 3_600_000;
        let up = upstream(&[server.addr.to_string()], c);
        let shared =
            Arc::new(SharedUpstreams::from_upstreams(std::slice::from_ref(&up)).expect("mmap"));
        let (log, _lines) = logger();
        let checkers = spawn_for(
            &[up],
            &[vec![Some(server.addr.into())]],
            shared.clone(),
            log,
        );
        eventually("first check", || shared.peer_health(0, 0) == Health::Up);
        // The checker now waits an hour; stop must wake it (a hang guard, not a timing test).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            checkers.stop();
            let _ = tx.send(());
        });
        assert!(rx.recv_timeout(Duration::from_secs(10)).is_ok());
    }
}
