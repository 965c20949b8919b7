//! Active health checks (`health_check` in an upstream), run on the event loop of worker
//! slot 0 of each config generation: no thread, no blocking call. Every checked server gets
//! `GET uri HTTP/1.0` every `interval` over a non-blocking socket registered in the worker's
//! `mio::Poll` (token [`TOKEN_BASE`] + the server's index here); connect, send and read must
//! all happen within `timeout`. The answer is judged by [`probe::Answer`] (sans-IO): without
//! `match=`, a 2xx or 3xx status passes; with it, the `match` block's tests. Anything else —
//! a refused or reset connection, an answer that is not HTTP, the timeout — fails.
//!
//! `fails` failures in a row mark the server down in the generation's [`SharedUpstreams`]
//! (every worker's balancer then skips it), `passes` passes in a row mark it up. A server
//! starts "unknown", which is usable, and follows the checks from there. Servers marked
//! `down` in the config are never picked, so they are not checked; neither are servers
//! without an address (a `proxy_pass` with variables). A unix-socket server is checked on
//! its socket (`port=` does not apply) with `Host: localhost`, as nginx's proxy sends.
//!
//! Timing ([`schedule`]): the servers of an upstream start spread over its interval, each at
//! a random point of its own slot, and each is probed again one interval after its previous
//! probe was due (or when that probe ended, if later): never two probes of one server at once,
//! and 1,000 servers cost about 200 short-lived sockets a second at `interval=5s`, not a burst.
//! The worker's loop sleeps until [`HealthChecks::next_deadline`] at the latest; a wake-up
//! starts every probe due within a small slack ([`schedule::start_slack`]: 1% of the
//! interval, at most 10 ms) so that probes share wake-ups. A probe writes its request as soon
//! as its socket exists: a connect to a local server is often decided by then (refused or
//! established), and a refused probe ends without ever being registered in the poll.
//!
//! Transitions are logged through the caller's callback: `warn` when a server goes down
//! (with the reason of the last failure), `notice` when a down server comes back, `info`
//! when an unknown server is first confirmed up. Single failed checks are logged at `debug`.
//! A probe that cannot get a socket (out of file descriptors) is not a verdict on the server:
//! it is logged at `alert` (once until a socket is had again) and tried again a second later.

pub mod probe;
pub mod schedule;

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use proton_ir::{HealthCheck, LogLevel, Upstream};

use super::addr::PeerAddr;
use super::peer::Health;
use super::shared::SharedUpstreams;
use super::XorShift64;
use probe::{Answer, Expect, Failure, Verdict};
use schedule::{first_start, next_start, start_slack, Schedule, MAX_SLACK};

/// Tokens of probe sockets are `TOKEN_BASE + index` (the worker's dispatch sends the range
/// from here to the upstream sockets' range to [`HealthChecks::on_ready`]).
pub const TOKEN_BASE: usize = 1 << 38;

/// The logging callback: level and message (formatted only if the level is enabled).
pub type LogFn<'a> = &'a mut dyn FnMut(LogLevel, std::fmt::Arguments<'_>);

/// How long a probe that found no free descriptor waits (at most) before it tries again.
const RETRY_STARVED: Duration = Duration::from_secs(1);
/// Bytes read from a probe socket at a time.
const READ_CHUNK: usize = 4096;
/// Answers kept for reuse.
const SPARE_ANSWERS: usize = 64;

/// The checks of one upstream.
struct Group {
    /// The upstream's name, for log lines.
    name: String,
    check: HealthCheck,
}

/// One checked server.
struct Target {
    group: usize,
    /// Indices into the IR (and the shared verdicts).
    upstream: usize,
    peer: usize,
    /// The server's address as written (log lines).
    address: String,
    /// Where to connect (`port=` applied).
    addr: PeerAddr,
    /// `GET uri HTTP/1.0` with this server's `Host`.
    request: Box<[u8]>,
    /// When the current (or last) probe was due.
    due: Instant,
    probe: Option<Probe>,
}

/// A probe in flight.
struct Probe {
    sock: mio::net::TcpStream,
    /// Bytes of the request written.
    sent: usize,
    answer: Answer,
}

/// The health checks of one worker: every checked server, its probe in flight if any, and
/// the schedule. See the module docs.
pub struct HealthChecks {
    groups: Vec<Group>,
    targets: Vec<Target>,
    schedule: Schedule,
    shared: Arc<SharedUpstreams>,
    /// Answers of finished probes, for the next ones.
    spare: Vec<Answer>,
    read_buf: Box<[u8]>,
    /// A descriptor shortage was logged and has not ended yet.
    starved: bool,
    /// How early a probe may start to share a wake-up ([`start_slack`] of the shortest
    /// interval).
    slack: Duration,
    /// Timeouts popped ahead of time by the slack, to put back.
    not_yet: Vec<(usize, Instant)>,
}

impl HealthChecks {
    /// The checks of every upstream with `health_check`; `addrs[upstream][server]` are the
    /// servers' resolved addresses (index-aligned with `upstreams` and `shared`). The first
    /// probes are spread over each upstream's interval from `now`; `seed` places them.
    pub fn new(
        upstreams: &[Upstream],
        addrs: &[Vec<Option<PeerAddr>>],
        shared: Arc<SharedUpstreams>,
        now: Instant,
        seed: u64,
    ) -> HealthChecks {
        let mut rng = XorShift64::new(seed);
        let mut groups = Vec::new();
        let mut targets = Vec::new();
        for (ui, u) in upstreams.iter().enumerate() {
            let Some(check) = &u.health_check else {
                continue;
            };
            let group = groups.len();
            groups.push(Group {
                name: u.name.clone(),
                check: check.clone(),
            });
            let first = targets.len();
            for (si, server) in u.servers.iter().enumerate() {
                if server.down {
                    continue;
                }
                let Some(mut addr) = addrs.get(ui).and_then(|a| a.get(si)).cloned().flatten()
                else {
                    continue;
                };
                if let (Some(port), PeerAddr::Inet(a)) = (check.port, &mut addr) {
                    a.set_port(port);
                }
                // A unix socket's `Host` is `localhost`, as nginx's proxy sends.
                let host = if addr.is_unix() {
                    "localhost"
                } else {
                    server.address.as_str()
                };
                let request = format!(
                    "GET {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: proton-health\r\n\r\n",
                    check.uri
                );
                targets.push(Target {
                    group,
                    upstream: ui,
                    peer: si,
                    address: server.address.clone(),
                    addr,
                    request: request.into_bytes().into_boxed_slice(),
                    due: now,
                    probe: None,
                });
            }
            let interval = Duration::from_millis(check.interval_ms.max(1));
            let n = targets.len() - first;
            for (k, t) in targets[first..].iter_mut().enumerate() {
                let jitter = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                t.due = first_start(now, interval, k, n, jitter);
            }
        }
        let mut schedule = Schedule::new(targets.len());
        for (i, t) in targets.iter().enumerate() {
            schedule.arm(i, t.due);
        }
        let slack = groups.iter().fold(MAX_SLACK, |s, g| {
            s.min(start_slack(Duration::from_millis(
                g.check.interval_ms.max(1),
            )))
        });
        HealthChecks {
            groups,
            targets,
            schedule,
            shared,
            spare: Vec::new(),
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            starved: false,
            slack,
            not_yet: Vec::new(),
        }
    }

    /// Number of servers checked.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// When [`HealthChecks::run_timers`] has something to do next: a probe to start or one
    /// whose timeout runs out.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.schedule.next_deadline()
    }

    /// Readiness of probe socket `token` (the poll token): sends the request, reads the
    /// answer, and records the verdict once there is one. `regexes` are the IR's compiled
    /// regexes (the `match` blocks').
    pub fn on_ready(
        &mut self,
        token: usize,
        now: Instant,
        regexes: &[proton_ir::pattern::Regex],
        log: LogFn<'_>,
    ) {
        let Some(i) = token.checked_sub(TOKEN_BASE) else {
            return;
        };
        if let Some(verdict) = self.advance(i, regexes) {
            self.finish(i, verdict, now, regexes, log);
        }
    }

    /// Starts the probes that are due (or due within the slack, so that probes share the
    /// loop's wake-ups) and fails those whose timeout ran out.
    pub fn run_timers(
        &mut self,
        now: Instant,
        registry: &Registry,
        regexes: &[proton_ir::pattern::Regex],
        log: LogFn<'_>,
    ) {
        while let Some((i, at)) = self.schedule.pop_due(now + self.slack) {
            let Some(t) = self.targets.get(i) else {
                continue;
            };
            match &t.probe {
                // A timeout is never early.
                Some(_) if at > now => self.not_yet.push((i, at)),
                Some(p) => {
                    let phase = match p.sent {
                        0 => "connect",
                        n if n < t.request.len() => "send",
                        _ => "read",
                    };
                    self.finish(
                        i,
                        Verdict::Fail(Failure::TimedOut(phase)),
                        now,
                        regexes,
                        log,
                    );
                }
                None => self.start(i, now, registry, regexes, log),
            }
        }
        for (i, at) in self.not_yet.drain(..) {
            self.schedule.arm(i, at);
        }
    }

    /// Opens the socket of a probe of server `i` and arms its timeout.
    fn start(
        &mut self,
        i: usize,
        now: Instant,
        registry: &Registry,
        regexes: &[proton_ir::pattern::Regex],
        log: LogFn<'_>,
    ) {
        let Some(t) = self.targets.get_mut(i) else {
            return;
        };
        let Some(g) = self.groups.get(t.group) else {
            return;
        };
        // Late by a whole interval (the loop was held up): start the cadence afresh from
        // now rather than catch up with probes back to back.
        let interval = Duration::from_millis(g.check.interval_ms.max(1));
        if now >= t.due + interval {
            t.due = now;
        }
        let sock = match t.addr.connect() {
            Ok(sock) => sock,
            Err(e) if is_starved(&e) => {
                // Not the server's fault: try again soon, and say so once.
                if !self.starved {
                    self.starved = true;
                    log(
                        LogLevel::Alert,
                        format_args!(
                            "health check of upstream \"{}\" server {} not run: socket failed: {e}",
                            g.name, t.address
                        ),
                    );
                }
                t.due = now + interval.min(RETRY_STARVED);
                self.schedule.arm(i, t.due);
                return;
            }
            Err(e) => {
                let v = Verdict::Fail(Failure::Io(format!("connect failed: {e}")));
                return self.finish(i, v, now, regexes, log);
            }
        };
        self.starved = false;
        let timeout = Duration::from_millis(g.check.timeout_ms.max(1));
        let answer = self.spare.pop().unwrap_or_default();
        t.probe = Some(Probe {
            sock,
            sent: 0,
            answer,
        });
        // A connect to a local server is often decided when it returns (refused, or
        // established): the first write tells, and the probe may end here, without a
        // registration and a wake-up of its own.
        if let Some(v) = self.advance(i, regexes) {
            return self.finish(i, v, now, regexes, log);
        }
        // Registering reports the readiness the socket already has (edge-triggered too), so
        // nothing that happened since the write is missed.
        let registered = self
            .targets
            .get_mut(i)
            .and_then(|t| t.probe.as_mut())
            .map(|p| {
                registry.register(
                    &mut p.sock,
                    Token(TOKEN_BASE + i),
                    Interest::READABLE | Interest::WRITABLE,
                )
            });
        match registered {
            Some(Ok(())) => self.schedule.arm(i, now + timeout),
            Some(Err(e)) => {
                let v = Verdict::Fail(Failure::Io(format!("epoll_ctl failed: {e}")));
                self.finish(i, v, now, regexes, log);
            }
            None => {}
        }
    }

    /// Moves probe `i` on as far as its socket allows: the request out, the answer in. The
    /// verdict once there is one.
    fn advance(&mut self, i: usize, regexes: &[proton_ir::pattern::Regex]) -> Option<Verdict> {
        let t = self.targets.get_mut(i)?;
        let p = t.probe.as_mut()?;
        let g = self.groups.get(t.group)?;
        let expect = Expect {
            tests: g.check.expect.as_ref(),
            regexes,
        };
        while p.sent < t.request.len() {
            match (&p.sock).write(&t.request[p.sent..]) {
                Ok(0) => {
                    return Some(Verdict::Fail(Failure::Io(
                        "send failed: connection closed".into(),
                    )))
                }
                Ok(n) => p.sent += n,
                // Still connecting, or the send buffer is full: wait for writability.
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if p.sent == 0 => {
                    return Some(Verdict::Fail(Failure::Io(format!("connect failed: {e}"))))
                }
                Err(e) => return Some(Verdict::Fail(Failure::Io(format!("send failed: {e}")))),
            }
        }
        loop {
            match (&p.sock).read(&mut self.read_buf) {
                Ok(0) => return p.answer.eof(&expect),
                Ok(n) => {
                    let got = self.read_buf.get(..n).unwrap_or_default();
                    if let Some(v) = p.answer.feed(got, &expect) {
                        return Some(v);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Some(Verdict::Fail(Failure::Io(format!("read failed: {e}")))),
            }
        }
    }

    /// Ends probe `i` (closing its socket), records the verdict in the shared state, logs a
    /// transition, and schedules the next probe.
    fn finish(
        &mut self,
        i: usize,
        verdict: Verdict,
        now: Instant,
        regexes: &[proton_ir::pattern::Regex],
        log: LogFn<'_>,
    ) {
        let Some(t) = self.targets.get_mut(i) else {
            return;
        };
        let Some(g) = self.groups.get(t.group) else {
            return;
        };
        if let Some(mut p) = t.probe.take() {
            // Dropping the socket closes it, which also takes it out of epoll.
            if self.spare.len() < SPARE_ANSWERS {
                p.answer.reset();
                self.spare.push(p.answer);
            }
        }
        let c = &g.check;
        let passed = matches!(verdict, Verdict::Pass(_));
        let transition = self
            .shared
            .record_check(t.upstream, t.peer, passed, c.fails, c.passes);
        let what = format_args!("upstream \"{}\" server {} ({})", g.name, t.address, t.addr);
        let reason = |v: &Verdict| match v {
            Verdict::Pass(s) => format!("status {s}"),
            Verdict::Fail(f) => f.describe(&Expect {
                tests: c.expect.as_ref(),
                regexes,
            }),
        };
        match transition {
            Some((_, Health::Down)) => log(
                LogLevel::Warn,
                format_args!(
                    "{what} is down: {} failed health check(s) of {}, last: {}",
                    c.fails,
                    c.uri,
                    reason(&verdict)
                ),
            ),
            Some((Health::Down, Health::Up)) => log(
                LogLevel::Notice,
                format_args!(
                    "{what} is up again: {} passed health check(s) of {}",
                    c.passes, c.uri
                ),
            ),
            Some((_, Health::Up)) => log(
                LogLevel::Info,
                format_args!("{what} is up: health checks of {} pass", c.uri),
            ),
            _ if !passed => log(
                LogLevel::Debug,
                format_args!(
                    "{what}: health check of {} failed: {}",
                    c.uri,
                    Lazy(|| reason(&verdict))
                ),
            ),
            _ => {}
        }
        let interval = Duration::from_millis(c.interval_ms.max(1));
        t.due = next_start(t.due, interval, now);
        self.schedule.arm(i, t.due);
    }
}

/// Formats the text a closure makes only when it is written (a debug line whose level is
/// off costs nothing).
struct Lazy<F>(F);

impl<F: Fn() -> String> std::fmt::Display for Lazy<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&(self.0)())
    }
}

/// Whether a connect failed for want of a descriptor or memory here, not because of the
/// server.
fn is_starved(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_errno::EMFILE | libc_errno::ENFILE | libc_errno::ENOBUFS | libc_errno::ENOMEM)
    )
}

/// The errno values [`is_starved`] looks for (Linux).
mod libc_errno {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proton_ir::{Balance, HealthMatch, MatchTest, RegexId, UpstreamServer};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    /// A tiny HTTP server on loopback answering every request with the current `answer`
    /// (empty = accept, read, and never answer), recording the last request.
    struct TestServer {
        addr: SocketAddr,
        answer: Arc<Mutex<Vec<u8>>>,
        last_request: Arc<Mutex<Vec<u8>>>,
        done: Arc<AtomicBool>,
    }

    fn status_answer(code: u16) -> Vec<u8> {
        format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").into_bytes()
    }

    impl TestServer {
        fn start(answer: Vec<u8>) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let answer = Arc::new(Mutex::new(answer));
            let last_request = Arc::new(Mutex::new(Vec::new()));
            let done = Arc::new(AtomicBool::new(false));
            let (ans, last, dn) = (answer.clone(), last_request.clone(), done.clone());
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
                    let a = ans.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    if a.is_empty() {
                        silent.push(c);
                    } else {
                        let _ = c.write_all(&a);
                    }
                }
            });
            TestServer {
                addr,
                answer,
                last_request,
                done,
            }
        }

        fn answer(&self, a: Vec<u8>) {
            *self.answer.lock().unwrap_or_else(|e| e.into_inner()) = a;
        }

        fn last_request(&self) -> String {
            let r = self.last_request.lock().unwrap_or_else(|e| e.into_inner());
            String::from_utf8_lossy(&r).into_owned()
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
            resolver: None,
            resolver_timeout_ms: 30_000,
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
            expect: None,
        }
    }

    /// The checks with a poll of their own, driven as a worker drives them.
    struct Loop {
        poll: mio::Poll,
        events: mio::Events,
        checks: HealthChecks,
        regexes: Vec<proton_ir::pattern::Regex>,
        lines: Vec<(LogLevel, String)>,
        shared: Arc<SharedUpstreams>,
    }

    impl Loop {
        fn new(ups: &[Upstream], addrs: &[Vec<Option<PeerAddr>>], patterns: &[&str]) -> Loop {
            let shared = Arc::new(SharedUpstreams::from_upstreams(ups).expect("mmap"));
            Loop {
                poll: mio::Poll::new().expect("poll"),
                events: mio::Events::with_capacity(256),
                checks: HealthChecks::new(ups, addrs, shared.clone(), Instant::now(), 1),
                regexes: patterns
                    .iter()
                    .map(|p| proton_ir::pattern::compile(p, false).expect("regex"))
                    .collect(),
                lines: Vec::new(),
                shared,
            }
        }

        /// One round of the loop: wait for events or the next deadline (50 ms at most).
        fn round(&mut self) {
            let now = Instant::now();
            let wait = self
                .checks
                .next_deadline()
                .map_or(Duration::from_millis(50), |d| {
                    d.saturating_duration_since(now)
                        .min(Duration::from_millis(50))
                });
            self.poll.poll(&mut self.events, Some(wait)).expect("poll");
            let now = Instant::now();
            let lines = &mut self.lines;
            let mut log = |l: LogLevel, a: std::fmt::Arguments<'_>| lines.push((l, a.to_string()));
            for ev in self.events.iter() {
                self.checks
                    .on_ready(ev.token().0, now, &self.regexes, &mut log);
            }
            self.checks
                .run_timers(now, self.poll.registry(), &self.regexes, &mut log);
        }

        /// Runs the loop until `cond` holds (10 s at most).
        fn until(&mut self, what: &str, cond: impl Fn(&Loop) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !cond(self) {
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}; log: {:#?}",
                    self.lines
                );
                self.round();
            }
        }

        fn health(&self, u: usize, s: usize) -> Health {
            self.shared.peer_health(u, s)
        }
    }

    fn logged(l: &Loop, level: LogLevel, needle: &str) -> bool {
        l.lines
            .iter()
            .any(|(lv, m)| *lv == level && m.contains(needle))
    }

    #[test]
    fn down_on_errors_and_up_again() {
        let server = TestServer::start(status_answer(200));
        let up = upstream(&[server.addr.to_string()], check(2, 2, 1000));
        let mut l = Loop::new(&[up], &[vec![Some(server.addr.into())]], &[]);
        assert_eq!(l.checks.len(), 1);
        l.until("up", |l| l.health(0, 0) == Health::Up);
        assert!(logged(
            &l,
            LogLevel::Info,
            "is up: health checks of /health pass"
        ));
        assert_eq!(
            server.last_request(),
            format!(
                "GET /health HTTP/1.0\r\nHost: {}\r\nUser-Agent: proton-health\r\n\r\n",
                server.addr
            )
        );
        server.answer(status_answer(500));
        l.until("down", |l| l.health(0, 0) == Health::Down);
        // The first of the two failures is only a debug line.
        assert!(logged(
            &l,
            LogLevel::Debug,
            "health check of /health failed: status 500"
        ));
        assert!(logged(
            &l,
            LogLevel::Warn,
            &format!(
                "upstream \"app\" server {0} ({0}) is down: 2 failed health check(s) of /health, last: status 500",
                server.addr
            )
        ));
        server.answer(status_answer(302));
        l.until("up again", |l| l.health(0, 0) == Health::Up);
        assert!(logged(
            &l,
            LogLevel::Notice,
            "is up again: 2 passed health check(s)"
        ));
    }

    #[test]
    fn refused_silent_and_garbage_servers_fail() {
        // A port with nothing listening: connect is refused.
        let closed = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind");
        // A server that accepts and never answers: the read times out.
        let silent = TestServer::start(Vec::new());
        // A server that is not HTTP.
        let ssh = TestServer::start(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec());
        let up = upstream(
            &[
                closed.to_string(),
                silent.addr.to_string(),
                ssh.addr.to_string(),
            ],
            check(1, 1, 100),
        );
        let addrs = [vec![
            Some(closed.into()),
            Some(silent.addr.into()),
            Some(ssh.addr.into()),
        ]];
        let mut l = Loop::new(&[up], &addrs, &[]);
        l.until("all down", |l| {
            (0..3).all(|s| l.health(0, s) == Health::Down)
        });
        assert!(logged(
            &l,
            LogLevel::Warn,
            "last: connect failed: Connection refused"
        ));
        assert!(logged(&l, LogLevel::Warn, "last: read timed out"));
        assert!(logged(
            &l,
            LogLevel::Warn,
            "last: the server sent no valid HTTP/1.0 header"
        ));
    }

    #[test]
    fn port_override_and_what_is_skipped() {
        let server = TestServer::start(status_answer(204));
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
            resolver: None,
            resolver_timeout_ms: 30_000,
            ..up.clone()
        };
        let d = || Some(PeerAddr::from(dead));
        let addrs = vec![vec![d(), d(), d()], vec![d(), d(), None]];
        let mut l = Loop::new(&[plain, up], &addrs, &[]);
        assert_eq!(l.checks.len(), 1, "only server 0 of the checked upstream");
        l.until("up via port=", |l| l.health(1, 0) == Health::Up);
        assert!(server.last_request().contains(&format!("Host: {dead}\r\n")));
        assert_eq!(l.health(0, 0), Health::Unknown);
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
        let addrs = [vec![
            crate::config::resolve_upstream(&ok).ok(),
            crate::config::resolve_upstream(&gone).ok(),
        ]];
        let mut l = Loop::new(&[up], &addrs, &[]);
        l.until("unix peer up", |l| l.health(0, 0) == Health::Up);
        l.until("missing socket down", |l| l.health(0, 1) == Health::Down);
        assert!(logged(&l, LogLevel::Warn, &format!("({gone}) is down")));
        let req = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(String::from_utf8_lossy(&req).contains("Host: localhost\r\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `match=`: the block's body test takes the server down, with the test in the log line;
    /// a good body brings it back.
    #[test]
    fn a_match_block_decides() {
        let page = |body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        };
        let server = TestServer::start(page("<h1>Welcome</h1>"));
        let mut c = check(1, 1, 1000);
        c.expect = Some(HealthMatch {
            name: "welcome".into(),
            tests: vec![
                MatchTest::Status {
                    negate: false,
                    ranges: vec![(200, 200)],
                },
                MatchTest::Body {
                    negate: false,
                    regex: RegexId(0),
                },
                MatchTest::Body {
                    negate: true,
                    regex: RegexId(1),
                },
            ],
        });
        let up = upstream(&[server.addr.to_string()], c);
        let mut l = Loop::new(
            &[up],
            &[vec![Some(server.addr.into())]],
            &["Welcome", "maintenance"],
        );
        l.until("up", |l| l.health(0, 0) == Health::Up);
        server.answer(page("<h1>Welcome</h1> (maintenance mode)"));
        l.until("down", |l| l.health(0, 0) == Health::Down);
        assert!(logged(
            &l,
            LogLevel::Warn,
            "last: status 200, match \"welcome\" failed: body !~ \"maintenance\""
        ));
        server.answer(page("<h1>Welcome</h1>"));
        l.until("up again", |l| l.health(0, 0) == Health::Up);
        // A status the block refuses.
        server.answer(status_answer(204));
        l.until("down on the status", |l| l.health(0, 0) == Health::Down);
        assert!(logged(&l, LogLevel::Warn, "failed: status 200"));
    }

    /// A server slower than the interval is never probed twice at once, and the probes of
    /// many refused servers all finish.
    #[test]
    fn one_probe_per_server_at_a_time() {
        let silent = TestServer::start(Vec::new());
        let dead: Vec<SocketAddr> = (0..50)
            .map(|_| {
                TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("bind")
            })
            .collect();
        let mut names: Vec<String> = dead.iter().map(|a| a.to_string()).collect();
        names.push(silent.addr.to_string());
        let mut addrs: Vec<Option<PeerAddr>> = dead.iter().map(|&a| Some(a.into())).collect();
        addrs.push(Some(silent.addr.into()));
        let mut c = check(1, 1, 300);
        c.interval_ms = 20;
        let up = upstream(&names, c);
        let mut l = Loop::new(&[up], &[addrs], &[]);
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(400) {
            l.round();
        }
        l.until("all down", |l| {
            (0..51).all(|s| l.health(0, s) == Health::Down)
        });
        // The silent server's probes end by timeout only: one at a time, so at most
        // (elapsed / timeout) + 1 failures were logged for it.
        let silent_fails = l
            .lines
            .iter()
            .filter(|(_, m)| m.contains(&silent.addr.to_string()) && m.contains("timed out"))
            .count();
        assert!(silent_fails <= 3, "{silent_fails}");
    }
}
