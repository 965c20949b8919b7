//! The master process: loads the IR, binds the listeners, forks the workers, and then only
//! handles signals, as nginx's master does:
//!
//! * HUP — reload: load the IR again; if it verifies, start a new generation of workers on
//!   the same listening sockets (new addresses bound, removed ones closed) and tell the old
//!   workers to finish gracefully. A bad IR leaves the running generation untouched.
//! * QUIT — graceful stop; TERM, INT — fast stop; USR1 — reopen log files.
//! * CHLD — a worker of the current generation that dies is respawned: at once the first
//!   time, then with a growing delay while it keeps dying right after start. Until its
//!   replacement runs, the living workers of the generation accept from its listening
//!   sockets (the master marks the slot orphaned in shared memory and sends them USR2),
//!   and the upstream connections it held are given back to the `max_conns` counts.
//!
//! With `NOTIFY_SOCKET` set it also tells systemd when it is ready, reloading and stopping
//! (`notify.rs`).
//!
//! The master never touches a client connection.

use crate::config::Loaded;
use crate::elog;
use crate::listen::{rebind, Bound};
use crate::log::ErrorLog;
use crate::notify::Notifier;
use crate::shared::{Counters, SLOTS};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Command-line options of `proton-run`.
pub struct Options {
    pub ir_path: PathBuf,
    pub prefix: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
}

/// Signals the master and workers handle (blocked, read through a signalfd).
pub fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
        // Master → workers: a sibling slot was orphaned (or taken over again).
        Signal::SIGUSR2,
        Signal::SIGCHLD,
        Signal::SIGPIPE,
    ] {
        set.add(s);
    }
    set
}

/// The longest respawn delay of a slot whose sockets no living worker covers (all workers
/// of the generation are dead): a worker that dies at start is forked at most ten times a
/// second, and the sockets are never unserved for longer.
const UNCOVERED_RESPAWN_DELAY: Duration = Duration::from_millis(100);

struct WorkerProc {
    pid: Pid,
    slot: usize,
    /// Index of this worker's counters in shared memory.
    counter: usize,
    started: Instant,
}

struct Generation {
    id: u64,
    loaded: Loaded,
    workers: Vec<WorkerProc>,
    /// When this generation was told to stop gracefully, and whether it was then told to
    /// stop at once because worker_shutdown_timeout passed.
    quit_at: Option<Instant>,
    forced: bool,
}

/// A worker slot waiting to be respawned.
struct Respawn {
    slot: usize,
    at: Instant,
}

struct Master {
    elog: ErrorLog,
    opts: Options,
    bound: Vec<Bound>,
    current: Generation,
    draining: Vec<Generation>,
    respawns: Vec<Respawn>,
    /// Delay before the next respawn of a slot that keeps dying.
    backoff: Vec<Duration>,
    pid_file: PathBuf,
    stopping: Option<(Signal, Instant)>,
    counters: Counters,
    /// Per worker slot: the id of the generation whose worker in that slot is dead and not
    /// yet replaced (0: none). The generation's living workers accept from the listening
    /// sockets of such a slot, so that nothing waits for the respawn.
    orphans: Counters,
    /// Counter slots not held by a live worker.
    free_counters: Vec<usize>,
    started_unix: u64,
    last_status: Instant,
    /// systemd's readiness messages (nothing without `NOTIFY_SOCKET`).
    notify: Notifier,
}

/// Opens the error log of `loaded` and writes the warnings its loading found.
fn open_error_log_warned(loaded: &Loaded) -> ErrorLog {
    let elog = open_error_log(loaded);
    for w in &loaded.warnings {
        elog.log(proton_ir::LogLevel::Warn, format_args!("{w}"));
    }
    elog
}

/// The main context's error log: the first `error_log` line, and the others beside it.
pub(crate) fn open_error_log(loaded: &Loaded) -> ErrorLog {
    let logs = &loaded.ir.main.error_log;
    let mut elog = match logs.first() {
        Some(l) if l.path == "stderr" => ErrorLog::open(None, l.level),
        Some(l) => ErrorLog::open(Some(loaded.resolve(&l.path)), l.level),
        None => ErrorLog::open(None, proton_ir::LogLevel::Error),
    };
    elog.add_main_logs(logs.get(1..).unwrap_or(&[]), |p| loaded.resolve(p));
    elog
}

fn raise_nofile(loaded: &Loaded, elog: &mut ErrorLog) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Some(want) = loaded.ir.main.worker_rlimit_nofile else {
        return;
    };
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((want, want));
    let hard = hard.max(want);
    if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, want, hard) {
        elog!(elog, Alert, "setrlimit(RLIMIT_NOFILE, {want}) failed: {e}");
    }
}

/// The one line proton-run prints on stderr when it starts serving (also in the error log
/// at `notice` when that is a file): the IR, the addresses it listens on and the workers.
fn announce_start(loaded: &Loaded, bound: &[Bound], workers: usize, elog: &mut ErrorLog) {
    let addrs = bound
        .iter()
        .map(|b| b.name())
        .collect::<Vec<_>>()
        .join(", ");
    let line = format!(
        "proton-run {}: serving {} ({} server{}, config digest {}) on {addrs} with {workers} worker{}, master pid {}",
        env!("CARGO_PKG_VERSION"),
        loaded.path.display(),
        loaded.ir.servers.len(),
        plural(loaded.ir.servers.len()),
        &loaded.header.digest_hex()[..16],
        plural(workers),
        std::process::id()
    );
    eprintln!("{line}");
    if loaded
        .ir
        .main
        .error_log
        .first()
        .is_some_and(|l| l.path != "stderr")
    {
        elog!(elog, Notice, "{line}");
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The files and shared counters the single-process mode uses.
struct Files<'a> {
    pid_file: &'a std::path::Path,
    counters: &'a Counters,
    orphans: &'a Counters,
}

/// Runs the master in the foreground until it is told to stop.
pub fn run(opts: Options) -> ExitCode {
    let loaded = match Loaded::load(&opts.ir_path, opts.prefix.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("proton-run: {e}");
            return ExitCode::from(1);
        }
    };
    let mut elog = open_error_log_warned(&loaded);
    if let Some(w) = crate::process::user_ignored(&loaded.ir.main) {
        elog!(elog, Warn, "{w}");
    }
    if let Err(e) = crate::process::resolve_user(&loaded.ir.main) {
        eprintln!("proton-run: {e}");
        elog!(elog, Emerg, "{e}");
        return ExitCode::from(1);
    }
    raise_nofile(&loaded, &mut elog);
    let bound = match rebind(&loaded.ir, Vec::new(), loaded.worker_count()) {
        Ok((b, _)) => b,
        Err((e, _)) => {
            eprintln!("proton-run: {e}");
            elog!(elog, Emerg, "{e}");
            return ExitCode::from(1);
        }
    };
    if loaded.ir.main.daemon {
        if let Err(e) = crate::process::daemonize() {
            eprintln!("proton-run: {e}");
            elog!(elog, Emerg, "{e}");
            return ExitCode::from(1);
        }
        elog.redirect_stderr();
    }
    let signals = handled_signals();
    if let Err(e) = signals.thread_block() {
        eprintln!("proton-run: cannot block signals: {e}");
        return ExitCode::from(1);
    }
    let sfd = match SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("proton-run: signalfd failed: {e}");
            return ExitCode::from(1);
        }
    };
    let pid_file = opts
        .pid_file
        .clone()
        .unwrap_or_else(|| loaded.resolve(&loaded.ir.main.pid));
    if let Some(dir) = pid_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&pid_file, format!("{}\n", std::process::id())) {
        eprintln!(
            "proton-run: cannot write pid file {}: {e}",
            pid_file.display()
        );
        return ExitCode::from(1);
    }
    let counters = match Counters::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("proton-run: {e}");
            return ExitCode::from(1);
        }
    };
    let orphans = match Counters::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("proton-run: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = crate::shared::init_stats() {
        eprintln!("proton-run: {e}");
        return ExitCode::from(1);
    }
    let notify = Notifier::from_env();
    if !loaded.ir.main.master_process {
        let files = Files {
            pid_file: &pid_file,
            counters: &counters,
            orphans: &orphans,
        };
        return single_process(&opts, loaded, bound, files, notify, elog);
    }
    let count = loaded.worker_count();
    announce_start(&loaded, &bound, count, &mut elog);
    let mut m = Master {
        elog,
        opts,
        bound,
        current: Generation {
            id: 1,
            loaded,
            workers: Vec::new(),
            quit_at: None,
            forced: false,
        },
        draining: Vec::new(),
        respawns: Vec::new(),
        backoff: vec![Duration::ZERO; count],
        pid_file,
        stopping: None,
        counters,
        orphans,
        free_counters: (0..SLOTS).rev().collect(),
        started_unix: unix_now(),
        last_status: Instant::now(),
        notify,
    };
    for slot in 0..count {
        if !m.spawn(slot, &sfd) {
            m.signal_all(Signal::SIGTERM);
            let _ = std::fs::remove_file(&m.pid_file);
            return ExitCode::from(1);
        }
    }
    // The listeners were bound before the fork: connections are taken from here on.
    let status = m.serving_status();
    m.notify.ready(&status, &mut m.elog);
    m.main_loop(&sfd)
}

/// `master_process off`: this process runs the worker loop itself, as nginx's single
/// process mode (no fork, no respawn; `env`, `user`, `worker_cpu_affinity`,
/// `worker_rlimit_core` and `working_directory` are worker settings nginx does not apply in
/// this mode either). QUIT, TERM and INT stop it; USR1 reopens the logs; HUP drains the
/// connections in flight (bounded by worker_shutdown_timeout), loads the IR again and
/// serves on the same sockets (a bad IR keeps the running configuration).
fn single_process(
    opts: &Options,
    mut loaded: Loaded,
    mut bound: Vec<Bound>,
    files: Files,
    mut notify: Notifier,
    mut elog: ErrorLog,
) -> ExitCode {
    let Files {
        pid_file,
        counters,
        orphans,
    } = files;
    announce_start(&loaded, &bound, 1, &mut elog);
    elog!(elog, Notice, "master_process off: serving in this process");
    let mut generation = 1;
    notify.ready("serving in one process (master_process off)", &mut elog);
    let code = loop {
        if generation > 1 {
            // The end of the reload below, taken or not.
            notify.ready("serving in one process (master_process off)", &mut elog);
        }
        let code = crate::worker::run(
            &loaded,
            &bound,
            crate::worker::Place {
                slot: 0,
                generation,
                active: counters.slot(0),
                orphans,
                single: true,
            },
        );
        if code != crate::worker::RELOAD {
            notify.stopping("single-process", &mut elog);
            break code;
        }
        notify.reloading(&mut elog);
        elog!(
            elog,
            Notice,
            "signal SIGHUP received, reloading {}",
            opts.ir_path.display()
        );
        generation += 1;
        let next = match Loaded::load(&opts.ir_path, opts.prefix.as_deref()) {
            Ok(l) => l,
            Err(e) => {
                elog!(
                    elog,
                    Alert,
                    "reload failed, the running configuration stays: {e}"
                );
                crate::shared::count_master(crate::shared::MasterFigure::ReloadFailures);
                continue;
            }
        };
        match rebind(&next.ir, std::mem::take(&mut bound), 1) {
            Ok((b, removed)) => {
                drop(removed);
                bound = b;
                next.carry_upstream_state(&loaded);
                loaded = next;
                elog = open_error_log_warned(&loaded);
                crate::shared::count_master(crate::shared::MasterFigure::Reloads);
            }
            Err((e, old)) => {
                bound = old;
                elog!(
                    elog,
                    Alert,
                    "reload failed, the running configuration stays: {e}"
                );
                crate::shared::count_master(crate::shared::MasterFigure::ReloadFailures);
            }
        }
    };
    let _ = std::fs::remove_file(pid_file);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

impl Master {
    /// Forks one worker of the current generation into `slot`.
    fn spawn(&mut self, slot: usize, sfd: &SignalFd) -> bool {
        let Some(counter) = self.free_counters.pop() else {
            elog!(
                self.elog,
                Alert,
                "no free worker counter slot; not starting a worker"
            );
            return false;
        };
        self.counters.slot(counter).store(0, Ordering::Relaxed);
        // SAFETY: the master is single-threaded, so the child is a consistent copy; it only
        // runs the worker loop and then exits without returning into the master's code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                crate::limits::forget_pid();
                let _ = sfd;
                crate::shared::take_stat_row(counter);
                let code = crate::worker::run(
                    &self.current.loaded,
                    &self.bound,
                    crate::worker::Place {
                        slot,
                        generation: self.current.id,
                        active: self.counters.slot(counter),
                        orphans: &self.orphans,
                        single: false,
                    },
                );
                std::process::exit(code);
            }
            Ok(ForkResult::Parent { child }) => {
                // The slot has its own worker again; the others stop covering it when they
                // next look (at the latest in their next timeout sweep).
                self.orphans.slot(slot).store(0, Ordering::Relaxed);
                self.current.workers.push(WorkerProc {
                    pid: child,
                    slot,
                    counter,
                    started: Instant::now(),
                });
                self.write_status();
                true
            }
            Err(e) => {
                self.free_counters.push(counter);
                elog!(self.elog, Alert, "fork() failed: {e}");
                false
            }
        }
    }

    fn signal_all(&mut self, sig: Signal) {
        let gens = std::iter::once(&self.current).chain(self.draining.iter());
        for g in gens {
            for w in &g.workers {
                let _ = kill(w.pid, sig);
            }
        }
    }

    fn worker_total(&self) -> usize {
        self.current.workers.len() + self.draining.iter().map(|g| g.workers.len()).sum::<usize>()
    }

    fn main_loop(&mut self, sfd: &SignalFd) -> ExitCode {
        loop {
            if let Some((sig, since)) = self.stopping {
                if self.worker_total() == 0 {
                    elog!(self.elog, Notice, "exit");
                    let _ = std::fs::remove_file(&self.pid_file);
                    let _ = std::fs::remove_file(self.status_path());
                    return ExitCode::SUCCESS;
                }
                // A graceful stop waits for worker_shutdown_timeout (nginx: without it, as
                // long as it takes), then stops the workers at once; a fast stop that is not
                // done in 5 s kills them.
                let shutdown = self.current.loaded.ir.main.worker_shutdown_timeout_ms;
                let elapsed = since.elapsed();
                if sig == Signal::SIGQUIT {
                    if let Some(ms) = shutdown {
                        if elapsed > Duration::from_millis(ms) {
                            elog!(
                                self.elog,
                                Notice,
                                "worker_shutdown_timeout passed, stopping workers now"
                            );
                            self.stopping = Some((Signal::SIGTERM, Instant::now()));
                            self.signal_all(Signal::SIGTERM);
                        }
                    }
                } else if elapsed > Duration::from_secs(5) {
                    elog!(self.elog, Warn, "workers did not exit in 5 s, killing them");
                    self.signal_all(Signal::SIGKILL);
                }
            }
            self.force_old_generations();
            let timeout = PollTimeout::from(200u16);
            let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, timeout);
            while let Ok(Some(info)) = sfd.read_signal() {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                self.on_signal(sig, sfd);
            }
            self.run_respawns(sfd);
            if self.last_status.elapsed() >= Duration::from_secs(1) {
                self.write_status();
            }
        }
    }

    /// Old generations still draining after worker_shutdown_timeout are told to stop now.
    fn force_old_generations(&mut self) {
        let Some(ms) = self.current.loaded.ir.main.worker_shutdown_timeout_ms else {
            return;
        };
        let limit = Duration::from_millis(ms);
        for g in &mut self.draining {
            if !g.forced && g.quit_at.is_some_and(|t| t.elapsed() > limit) {
                g.forced = true;
                for w in &g.workers {
                    let _ = kill(w.pid, Signal::SIGTERM);
                }
                elog!(
                    self.elog,
                    Notice,
                    "generation {}: worker_shutdown_timeout passed, closing its {} workers",
                    g.id,
                    g.workers.len()
                );
            }
        }
    }

    fn release_counter(&mut self, c: usize) {
        self.counters.slot(c).store(0, Ordering::Relaxed);
        self.free_counters.push(c);
    }

    /// The status file next to the pid file (`logs/proton.status`), for `protonctl status`:
    /// one JSON object, replaced atomically.
    fn status_path(&self) -> PathBuf {
        self.pid_file.with_extension("status")
    }

    fn write_status(&mut self) {
        self.last_status = Instant::now();
        let ir = std::fs::canonicalize(&self.current.loaded.path)
            .unwrap_or_else(|_| self.current.loaded.path.clone());
        let workers: Vec<String> = self
            .current
            .workers
            .iter()
            .map(|w| w.pid.to_string())
            .collect();
        let json = format!(
            "{{\"pid\":{},\"generation\":{},\"ir\":{},\"digest\":\"{}\",\"started_unix\":{},\"updated_unix\":{},\"workers\":[{}],\"draining_workers\":{},\"active_connections\":{}}}\n",
            std::process::id(),
            self.current.id,
            json_string(&ir.display().to_string()),
            self.current.loaded.header.digest_hex(),
            self.started_unix,
            unix_now(),
            workers.join(","),
            self.draining.iter().map(|g| g.workers.len()).sum::<usize>(),
            self.counters.sum()
        );
        let path = self.status_path();
        let tmp = path.with_extension("status.tmp");
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }

    fn on_signal(&mut self, sig: Signal, sfd: &SignalFd) {
        match sig {
            Signal::SIGCHLD => self.reap(),
            Signal::SIGHUP if self.stopping.is_none() => self.reload(sfd),
            Signal::SIGQUIT | Signal::SIGTERM | Signal::SIGINT => {
                let how = if sig == Signal::SIGQUIT {
                    "graceful"
                } else {
                    "fast"
                };
                elog!(self.elog, Notice, "signal {sig} received, {how} shutdown");
                if self.stopping.is_none() {
                    self.notify.stopping(how, &mut self.elog);
                }
                self.stopping = Some((sig, Instant::now()));
                self.respawns.clear();
                let forward = if sig == Signal::SIGQUIT {
                    Signal::SIGQUIT
                } else {
                    Signal::SIGTERM
                };
                self.signal_all(forward);
            }
            Signal::SIGUSR1 => {
                elog!(self.elog, Notice, "reopening logs");
                self.elog.reopen();
                for e in crate::process::prepare_logs_for_user(&self.current.loaded) {
                    elog!(self.elog, Alert, "{e}");
                }
                self.signal_all(Signal::SIGUSR1);
            }
            _ => {}
        }
    }

    /// Collects exited workers; schedules respawns for the current generation.
    fn reap(&mut self) {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(s) => s,
            };
            let (pid, how) = match status {
                WaitStatus::Exited(pid, code) => (pid, format!("exited with code {code}")),
                WaitStatus::Signaled(pid, sig, _) => (pid, format!("exited on signal {sig}")),
                _ => continue,
            };
            if let Some(i) = self.current.workers.iter().position(|w| w.pid == pid) {
                let w = self.current.workers.swap_remove(i);
                self.release_counter(w.counter);
                let reclaimed = self.current.loaded.upstream_shared.reclaim_worker(w.slot);
                let clean = how == "exited with code 0";
                if self.stopping.is_some() {
                    elog!(self.elog, Notice, "worker process {pid} {how}");
                    continue;
                }
                let slot = w.slot;
                // The living workers take over the slot's sockets until it is respawned.
                self.orphans
                    .slot(slot)
                    .store(self.current.id, Ordering::Relaxed);
                for other in &self.current.workers {
                    let _ = kill(other.pid, Signal::SIGUSR2);
                }
                let covered = !self.current.workers.is_empty();
                let delay = if w.started.elapsed() < Duration::from_secs(2) && !clean {
                    // Dying again right after start: the first respawn is immediate, then
                    // the delay doubles (100 ms … 10 s) while the others serve the slot's
                    // sockets. With no living worker to cover them, the delay stays short.
                    let d = self.backoff.get(slot).copied().unwrap_or_default();
                    let next = (d * 2).clamp(Duration::from_millis(100), Duration::from_secs(10));
                    if let Some(b) = self.backoff.get_mut(slot) {
                        *b = next;
                    }
                    if covered {
                        d
                    } else {
                        d.min(UNCOVERED_RESPAWN_DELAY)
                    }
                } else {
                    if let Some(b) = self.backoff.get_mut(slot) {
                        *b = Duration::ZERO;
                    }
                    Duration::ZERO
                };
                // As nginx: a worker that exited by itself (code 0, such as after a TERM sent
                // to it alone) is a notice; a crash or a failure is an alert.
                let level = if clean {
                    proton_ir::LogLevel::Notice
                } else {
                    proton_ir::LogLevel::Alert
                };
                self.elog.log(
                    level,
                    format_args!(
                        "worker process {pid} {how}; respawning in {} ms{}",
                        delay.as_millis(),
                        if covered {
                            "; the other workers accept its connections meanwhile"
                        } else {
                            ""
                        }
                    ),
                );
                if reclaimed > 0 {
                    elog!(
                        self.elog,
                        Notice,
                        "{reclaimed} upstream connections of worker process {pid} no longer count"
                    );
                }
                self.respawns.push(Respawn {
                    slot,
                    at: Instant::now() + delay,
                });
                continue;
            }
            for g in &mut self.draining {
                if let Some(i) = g.workers.iter().position(|w| w.pid == pid) {
                    let w = g.workers.swap_remove(i);
                    g.loaded.upstream_shared.reclaim_worker(w.slot);
                    self.counters.slot(w.counter).store(0, Ordering::Relaxed);
                    self.free_counters.push(w.counter);
                    elog!(
                        self.elog,
                        Info,
                        "old worker process {pid} (generation {}) {how}",
                        g.id
                    );
                }
            }
            self.draining.retain(|g| !g.workers.is_empty());
        }
    }

    fn run_respawns(&mut self, sfd: &SignalFd) {
        let now = Instant::now();
        let due: Vec<usize> = self
            .respawns
            .iter()
            .filter(|r| r.at <= now)
            .map(|r| r.slot)
            .collect();
        self.respawns.retain(|r| r.at > now);
        for slot in due {
            if !self.spawn(slot, sfd) {
                self.respawns.push(Respawn {
                    slot,
                    at: now + Duration::from_secs(1),
                });
            }
        }
    }

    /// A HUP: the reload between systemd's `RELOADING=1` and `READY=1` (sent whether the new
    /// configuration was taken or the running one stays).
    fn reload(&mut self, sfd: &SignalFd) {
        self.notify.reloading(&mut self.elog);
        let status = if self.start_next_generation(sfd) {
            crate::shared::count_master(crate::shared::MasterFigure::Reloads);
            self.serving_status()
        } else {
            crate::shared::count_master(crate::shared::MasterFigure::ReloadFailures);
            format!(
                "reload failed, generation {} still serving",
                self.current.id
            )
        };
        self.notify.ready(&status, &mut self.elog);
    }

    /// What `STATUS=` says while the current generation serves.
    fn serving_status(&self) -> String {
        format!(
            "serving, generation {} with {} workers",
            self.current.id,
            self.current.workers.len()
        )
    }

    /// Loads the IR again and starts a generation on it; false when it does not load or its
    /// listeners cannot be bound (the running generation stays).
    fn start_next_generation(&mut self, sfd: &SignalFd) -> bool {
        elog!(
            self.elog,
            Notice,
            "signal SIGHUP received, reloading {}",
            self.opts.ir_path.display()
        );
        let loaded = match Loaded::load(&self.opts.ir_path, self.opts.prefix.as_deref()) {
            Ok(l) => l,
            Err(e) => {
                elog!(
                    self.elog,
                    Alert,
                    "reload failed, the running configuration stays: {e}"
                );
                return false;
            }
        };
        let old_bound = std::mem::take(&mut self.bound);
        let (bound, removed) = match rebind(&loaded.ir, old_bound, loaded.worker_count()) {
            Ok(x) => x,
            Err((e, old)) => {
                self.bound = old;
                elog!(
                    self.elog,
                    Alert,
                    "reload failed, the running configuration stays: {e}"
                );
                return false;
            }
        };
        self.bound = bound;
        drop(removed);
        // Servers both configurations have keep what the old workers learnt of them.
        let carried = loaded.carry_upstream_state(&self.current.loaded);
        self.elog = open_error_log_warned(&loaded);
        if carried > 0 {
            elog!(
                self.elog,
                Info,
                "upstream state of {carried} servers carried over to the new configuration"
            );
        }
        let count = loaded.worker_count();
        let next_id = self.current.id + 1;
        let old = std::mem::replace(
            &mut self.current,
            Generation {
                id: next_id,
                loaded,
                workers: Vec::new(),
                quit_at: None,
                forced: false,
            },
        );
        self.respawns.clear();
        self.backoff = vec![Duration::ZERO; count];
        for slot in 0..count {
            self.spawn(slot, sfd);
        }
        for w in &old.workers {
            let _ = kill(w.pid, Signal::SIGQUIT);
        }
        elog!(
            self.elog,
            Notice,
            "reloaded: generation {} with {} workers; {} old workers draining",
            self.current.id,
            count,
            old.workers.len()
        );
        if !old.workers.is_empty() {
            let mut old = old;
            old.quit_at = Some(Instant::now());
            self.draining.push(old);
        }
        self.write_status();
        true
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
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

/// Unblocks the handled signals (used by tests that fork).
pub fn unblock_signals() {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&handled_signals()), None);
}
