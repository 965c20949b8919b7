//! `protonctl`: the ops CLI for Proton.
//!
//! It drives the two Proton programs as processes and never links them: `protonc` (check,
//! compile, inspect) and `proton-run` (the foreground master, which `start` detaches). Both are
//! found next to protonctl's own executable, or in `PROTON_BIN_DIR`.
//!
//! Everything is addressed by the config file (`-c CONF`): its IR is CONF with extension `.ir`
//! (or the file `--ir` names),
//! and the pid, status and log files are the IR's `pid`, `pid` with extension `.status`, and
//! `error_log`, resolved against the prefix (default: the IR's directory), exactly as
//! `proton-run` resolves them.
//!
//! Exit codes: 0 ok, 1 failure, 2 usage, 3 not running (`status`).

#[path = "../../compiler/src/cli_docs.rs"]
mod cli_docs;
mod layout;
mod logs;
mod metrics;
mod proc;
mod status;
mod tools;

use clap::{Args, CommandFactory, Parser, Subcommand};
use layout::Layout;
use proc::PidState;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tools::Tools;

/// Prints a line on stdout; a closed stdout (`protonctl status | head -1`) is not an error
/// worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Exit code: failure.
const FAILURE: u8 = 1;
/// Exit code: the server is not running (`status`, as LSB init scripts).
const NOT_RUNNING: u8 = 3;

/// How long `start` and `reload` wait for the master; `stop` waits for it to exit.
const START_DEADLINE: Duration = Duration::from_secs(10);
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);
const STOP_GRACEFUL_DEADLINE: Duration = Duration::from_secs(30);
const STOP_FAST_DEADLINE: Duration = Duration::from_secs(10);
/// How long `start` gives the master to publish its first status after the pid file.
const STATUS_GRACE: Duration = Duration::from_secs(2);
/// A status this many seconds newer than the HUP, still on the old generation, is a failed
/// reload (the master rewrites its status every second and handles signals first).
const RELOAD_SETTLED_SECS: u64 = 3;
const POLL: Duration = Duration::from_millis(25);

/// A command that did not succeed: the exit code and what to tell the user (may be empty when
/// the reason was printed already, e.g. by protonc).
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub msg: String,
}

impl Fail {
    pub fn new(msg: impl Into<String>) -> Fail {
        Fail {
            code: FAILURE,
            msg: msg.into(),
        }
    }

    pub fn code(code: u8, msg: impl Into<String>) -> Fail {
        Fail {
            code,
            msg: msg.into(),
        }
    }
}

pub type Res<T> = Result<T, Fail>;

#[derive(Parser)]
#[command(
    name = "protonctl",
    version,
    about = "Start, stop, reload and inspect a Proton server",
    after_help = "Exit codes: 0 ok, 1 failure, 2 usage, 3 not running (status).\n\
                  protonc and proton-run are found next to protonctl, or in PROTON_BIN_DIR."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// The server a command is about.
#[derive(Args)]
struct Target {
    /// The config (NGINX-style, JSON or YAML); its IR is CONF with extension .ir unless
    /// --ir names it
    #[arg(short = 'c', long = "conf", value_name = "CONF")]
    conf: PathBuf,
    /// Where CONF is compiled to and the server runs from (default: CONF with extension
    /// .ir), e.g. /var/lib/proton/proton.ir for a config in /etc/proton; give every
    /// command the one given to `start`
    #[arg(long, value_name = "FILE.ir")]
    ir: Option<PathBuf>,
    /// The prefix relative paths are resolved against (default: the IR's directory); give
    /// every command the one given to `start`
    #[arg(short = 'p', long, value_name = "DIR")]
    prefix: Option<PathBuf>,
}

impl Target {
    /// The layout of the server this target names, as it is on disk.
    fn layout(&self, tools: &Tools) -> Res<Layout> {
        Layout::of_existing(
            tools,
            &self.conf,
            self.ir.as_deref(),
            self.prefix.as_deref(),
        )
    }

    /// The layout this target would have, before anything exists.
    fn defaults(&self) -> Layout {
        Layout::defaults(&self.conf, self.ir.as_deref(), self.prefix.as_deref())
    }
}

/// How live figures are read and refreshed.
#[derive(Args)]
struct Live {
    /// Seconds between two refreshes (0.1 to 3600)
    #[arg(long, value_name = "SECS", default_value_t = 2.0, value_parser = parse_interval)]
    interval: f64,
    /// Stop after this many refreshes (default: until Ctrl-C)
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// The `proton_metrics` page to read, e.g. http://127.0.0.1:8080/metrics (default: the
    /// first one of the config reachable over plain HTTP)
    #[arg(long, value_name = "URL")]
    metrics: Option<String>,
}

fn parse_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.1..=3600.0).contains(&v) {
        Ok(v)
    } else {
        Err("between 0.1 and 3600 seconds".into())
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a config with `protonc check` (its diagnostics and exit code are passed through).
    Check {
        /// The config to check
        #[arg(short = 'c', long = "conf", value_name = "CONF")]
        conf: PathBuf,
    },
    /// Compile CONF into CONF.ir and start proton-run on it, detached; waits until it runs.
    Start {
        #[command(flatten)]
        target: Target,
    },
    /// Stop the running server: gracefully (QUIT, in-flight requests finish) or --fast (TERM).
    Stop {
        #[command(flatten)]
        target: Target,
        /// Fast shutdown (TERM) instead of a graceful one (QUIT)
        #[arg(long)]
        fast: bool,
    },
    /// Recompile CONF and tell the running master to load it (HUP); waits for the new generation.
    Reload {
        #[command(flatten)]
        target: Target,
    },
    /// Show the master pid, workers, generation, IR, uptime and connections, and the live
    /// figures of the server's `proton_metrics` page when it has one (exit 3: not running).
    Status {
        #[command(flatten)]
        target: Target,
        /// Print the master's status file (JSON) as it is
        #[arg(long)]
        json: bool,
        /// Print the status again every --interval seconds (with rates) until Ctrl-C, or
        /// --count times
        #[arg(short = 'w', long, conflicts_with = "json")]
        watch: bool,
        #[command(flatten)]
        live: Live,
    },
    /// List the busiest locations and upstream servers (requests per second over each
    /// --interval), from the server's `proton_metrics` page, until Ctrl-C or --count times.
    Top {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        live: Live,
        /// Rows per list
        #[arg(short = 'n', long, value_name = "N", default_value_t = 10)]
        rows: usize,
    },
    /// Print the last lines of the error log (or the access log), optionally following it.
    Logs {
        #[command(flatten)]
        target: Target,
        /// How many lines to print from the end
        #[arg(short = 'n', long, value_name = "N", default_value_t = 20)]
        tail: usize,
        /// Keep printing lines as they are appended (follows rotation and truncation)
        #[arg(short = 'f', long)]
        follow: bool,
        /// The access log instead of the error log
        #[arg(long)]
        access: bool,
    },
}

fn main() -> ExitCode {
    // `protonctl generate man|completions DIR` (for install.sh), outside the clap definition.
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if let Some(code) = cli_docs::run_if_asked(&args, Cli::command, "8") {
        return code;
    }
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.msg.is_empty() {
                eprintln!("protonctl: {}", f.msg);
            }
            ExitCode::from(f.code)
        }
    }
}

fn run(cmd: Cmd) -> Res<()> {
    let tools = Tools::locate()?;
    match cmd {
        Cmd::Check { conf } => match tools.protonc_check(&conf)? {
            0 => Ok(()),
            code => Err(Fail::code(code, "")),
        },
        Cmd::Start { target } => start(&tools, &target),
        Cmd::Stop { target, fast } => stop(&tools, &target, fast),
        Cmd::Reload { target } => reload(&tools, &target),
        Cmd::Status {
            target,
            json,
            watch,
            live,
        } => status(&tools, &target, json, watch, &live),
        Cmd::Top { target, live, rows } => top(&tools, &target, &live, rows),
        Cmd::Logs {
            target,
            tail,
            follow,
            access,
        } => {
            let layout = target.layout(&tools)?;
            let path = if access {
                &layout.access_log
            } else {
                &layout.error_log
            };
            logs::print(path, tail, follow)
        }
    }
}

/// Rejects a CONF that is itself an IR: compiling it would overwrite the input.
fn compilable(conf: &Path) -> Res<()> {
    if conf.extension().is_some_and(|e| e == "ir") {
        return Err(Fail::code(
            2,
            format!(
                "{} looks like an IR file; -c takes the config it is compiled from",
                conf.display()
            ),
        ));
    }
    Ok(())
}

/// Fails with "already running" when the layout's pid file names a live master.
fn refuse_if_running(layout: &Layout) -> Res<()> {
    if let PidState::Running(pid) = proc::pid_state(&layout.pid_file) {
        return Err(Fail::new(format!(
            "already running: master pid {pid} (pid file {})",
            layout.pid_file.display()
        )));
    }
    Ok(())
}

fn start(tools: &Tools, target: &Target) -> Res<()> {
    compilable(&target.conf)?;
    // A master already running on the current IR is refused before anything is rewritten.
    // An IR this protonc cannot read (an older format) is about to be replaced: its master,
    // if any, is looked for at the default paths.
    let old = target.layout(tools).unwrap_or_else(|_| target.defaults());
    refuse_if_running(&old)?;
    tools.protonc_compile(&target.conf, &old.ir)?;
    let layout = target.layout(tools)?;
    refuse_if_running(&layout)?;

    let stderr_path = layout.prefix.join("logs").join("proton-run.stderr");
    let mut child = proc::spawn_detached(&tools.proton_run, &layout, &stderr_path)?;
    let deadline = Instant::now() + START_DEADLINE;
    let child_pid = child.pid();
    loop {
        if let Some(how) = child.exited() {
            let out = child.new_stderr();
            if !out.is_empty() {
                eprint!("{out}");
                if !out.ends_with('\n') {
                    eprintln!();
                }
            }
            return Err(Fail::new(format!(
                "proton-run {how} before it was ready (its stderr: {})",
                stderr_path.display()
            )));
        }
        if proc::read_pid(&layout.pid_file).ok().flatten() == Some(child_pid) {
            break;
        }
        if Instant::now() >= deadline {
            child.terminate();
            let out = child.new_stderr();
            if !out.is_empty() {
                eprint!("{out}");
            }
            return Err(Fail::new(format!(
                "proton-run (pid {child_pid}) did not write its pid file {} within {}s; stopped it",
                layout.pid_file.display(),
                START_DEADLINE.as_secs()
            )));
        }
        std::thread::sleep(POLL);
    }
    // The master publishes its status right after forking its first worker; waiting for it
    // (briefly) makes `start` followed by `status` or `reload` deterministic.
    let grace = Instant::now() + STATUS_GRACE;
    while Instant::now() < grace
        && !status::read(&layout.status_file).is_ok_and(|s| s.pid == i64::from(child_pid))
        && child.exited().is_none()
    {
        std::thread::sleep(POLL);
    }
    if let Some(how) = child.exited() {
        eprint!("{}", child.new_stderr());
        return Err(Fail::new(format!(
            "proton-run {how} right after writing its pid file (its stderr: {})",
            stderr_path.display()
        )));
    }
    say!("proton started: master pid {child_pid}");
    Ok(())
}

/// The pid of the running master, or a failure saying why there is none.
fn running_master(layout: &Layout) -> Res<i32> {
    match proc::pid_state(&layout.pid_file) {
        PidState::Running(pid) => Ok(pid),
        other => Err(Fail::new(format!("not running: {}", other.describe()))),
    }
}

fn stop(tools: &Tools, target: &Target, fast: bool) -> Res<()> {
    let layout = target.layout(tools)?;
    let pid = running_master(&layout)?;
    let (sig, deadline) = if fast {
        (nix::sys::signal::Signal::SIGTERM, STOP_FAST_DEADLINE)
    } else {
        (nix::sys::signal::Signal::SIGQUIT, STOP_GRACEFUL_DEADLINE)
    };
    proc::signal(pid, sig)?;
    if !proc::wait_gone(pid, deadline, POLL) {
        let hint = if fast {
            ""
        } else {
            "; in-flight requests may still be finishing (stop --fast does not wait for them)"
        };
        return Err(Fail::new(format!(
            "master pid {pid} is still running {}s after {sig}{hint}",
            deadline.as_secs()
        )));
    }
    say!("stopped");
    Ok(())
}

fn reload(tools: &Tools, target: &Target) -> Res<()> {
    compilable(&target.conf)?;
    // The running master's files are those of the IR it runs now, not of the new config.
    let layout = target.layout(tools)?;
    let pid = running_master(&layout)?;
    let before = wait_for_status(&layout.status_file, pid)?;
    if let Ok(ours) = std::fs::canonicalize(&layout.ir) {
        if Path::new(&before.ir) != ours {
            return Err(Fail::new(format!(
                "master pid {pid} runs {}, not {}; not reloading",
                before.ir,
                ours.display()
            )));
        }
    }
    tools
        .protonc_compile(&target.conf, &layout.ir)
        .map_err(|f| Fail::new(format!("{}; nothing was reloaded", f.msg)))?;

    let log_offset = std::fs::metadata(&layout.error_log).map_or(0, |m| m.len());
    let hup_unix = status::unix_now();
    proc::signal(pid, nix::sys::signal::Signal::SIGHUP)?;
    let deadline = Instant::now() + RELOAD_DEADLINE;
    loop {
        // The master handles a signal before anything else in its loop and rewrites its status
        // every second, so a status written seconds after the HUP with the old generation
        // means the reload was handled and failed: no need to wait for the deadline.
        let mut settled = false;
        if let Ok(now) = status::read(&layout.status_file) {
            if now.pid == i64::from(pid) && now.generation > before.generation {
                say!(
                    "reloaded: generation {} (master pid {pid}, digest {})",
                    now.generation,
                    now.short_digest()
                );
                return Ok(());
            }
            settled = now.pid == i64::from(pid)
                && now
                    .updated_unix
                    .is_some_and(|t| t >= hup_unix + RELOAD_SETTLED_SECS);
        }
        let gone = !matches!(proc::pid_state(&layout.pid_file), PidState::Running(p) if p == pid);
        if gone || settled || Instant::now() >= deadline {
            let why = if gone {
                format!("the master (pid {pid}) exited")
            } else {
                format!(
                    "the master still runs generation {} ({}s after the HUP)",
                    before.generation,
                    hup_unix.abs_diff(status::unix_now())
                )
            };
            let lines = logs::lines_since(&layout.error_log, log_offset, 20);
            if !lines.is_empty() {
                eprintln!("error log ({}):", layout.error_log.display());
                eprint!("{lines}");
            }
            return Err(Fail::new(format!("reload failed: {why}")));
        }
        std::thread::sleep(POLL);
    }
}

/// The master's status, waiting briefly for a master that has just started to publish it.
fn wait_for_status(path: &Path, pid: i32) -> Res<status::Status> {
    let deadline = Instant::now() + STATUS_GRACE;
    loop {
        let err = match status::read(path) {
            Ok(s) if s.pid == i64::from(pid) => return Ok(s),
            Ok(s) => format!("it names pid {}, not the master's {pid}", s.pid),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(Fail::new(format!(
                "cannot read the master's status file {}: {err}",
                path.display()
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// The `proton_metrics` page of the target: `--metrics`, else the first one the IR has
/// (`None`: the config has none reachable over plain HTTP).
fn metrics_endpoint(tools: &Tools, target: &Target, live: &Live) -> Res<Option<metrics::Endpoint>> {
    if let Some(url) = &live.metrics {
        return metrics::parse_url(url)
            .map(Some)
            .map_err(|e| Fail::code(2, e));
    }
    let ir = target.layout(tools)?.ir;
    if !ir.is_file() {
        return Ok(None);
    }
    Ok(metrics::discover(&tools.protonc_inspect(&ir)?))
}

/// The figures of the page, or a failure saying why not.
fn read_figures(ep: &metrics::Endpoint) -> Res<metrics::Figures> {
    let page = metrics::fetch(ep).map_err(Fail::new)?;
    let samples = metrics::parse(&page);
    if !samples.iter().any(|s| s.name == "proton_requests_total") {
        return Err(Fail::new(format!("{ep}: not a proton_metrics page")));
    }
    Ok(metrics::Figures::from_samples(&samples))
}

/// Runs `frame` every `live.interval` seconds, `live.count` times (default: until the
/// process is interrupted). Frames after the first are preceded by a screen clear on a
/// terminal and by a blank line otherwise.
fn refresh(live: &Live, mut frame: impl FnMut(usize) -> Res<()>) -> Res<()> {
    use std::io::IsTerminal;
    let tty = std::io::stdout().is_terminal();
    let mut n = 0usize;
    loop {
        if n > 0 {
            if tty {
                print!("\x1b[H\x1b[2J");
            } else {
                say!();
            }
        }
        frame(n)?;
        let _ = std::io::stdout().flush();
        n += 1;
        if live.count.is_some_and(|c| n as u64 >= c) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs_f64(live.interval));
    }
}

fn top(tools: &Tools, target: &Target, live: &Live, rows: usize) -> Res<()> {
    let ep = metrics_endpoint(tools, target, live)?.ok_or_else(|| {
        Fail::new("the config has no proton_metrics location reachable over plain HTTP; name one with --metrics URL")
    })?;
    let mut prev = read_figures(&ep)?;
    let mut at = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(live.interval));
    refresh(live, |_| {
        let now = read_figures(&ep)?;
        let secs = at.elapsed().as_secs_f64();
        say!("{}", metrics::render_top(&now, Some((&prev, secs)), rows));
        prev = now;
        at = Instant::now();
        Ok(())
    })
}

fn status(tools: &Tools, target: &Target, json: bool, watch: bool, live: &Live) -> Res<()> {
    if json {
        return status_once(tools, target, true);
    }
    let ep = metrics_endpoint(tools, target, live)?;
    if !watch {
        status_once(tools, target, false)?;
        if let Some(ep) = &ep {
            match read_figures(ep) {
                Ok(f) => say!("{}", metrics::render_status(&f, None)),
                Err(f) => eprintln!("protonctl: cannot read the figures: {}", f.msg),
            }
        }
        return Ok(());
    }
    if ep.is_none() {
        eprintln!("protonctl: the config has no proton_metrics location reachable over plain HTTP (--metrics URL names one): showing the status file only");
    }
    let mut prev: Option<(metrics::Figures, Instant)> = None;
    refresh(live, |_| {
        status_once(tools, target, false)?;
        if let Some(ep) = &ep {
            match read_figures(ep) {
                Ok(f) => {
                    let before = prev.as_ref().map(|(p, t)| (p, t.elapsed().as_secs_f64()));
                    say!("{}", metrics::render_status(&f, before));
                    prev = Some((f, Instant::now()));
                }
                Err(f) => eprintln!("protonctl: cannot read the figures: {}", f.msg),
            }
        }
        Ok(())
    })
}

fn status_once(tools: &Tools, target: &Target, json: bool) -> Res<()> {
    let layout = target.layout(tools)?;
    let pid = match proc::pid_state(&layout.pid_file) {
        PidState::Running(pid) => pid,
        other => {
            say!("proton is not running ({})", other.describe());
            return Err(Fail::code(NOT_RUNNING, ""));
        }
    };
    let st = match status::read(&layout.status_file) {
        Ok(st) => st,
        Err(e) => {
            if json {
                return Err(Fail::new(format!(
                    "master pid {pid} is running, but its status file {} is unreadable: {e}",
                    layout.status_file.display()
                )));
            }
            say!("proton is running");
            say!("master pid   {pid}");
            eprintln!(
                "protonctl: status file {} is unreadable: {e}",
                layout.status_file.display()
            );
            return Ok(());
        }
    };
    if json {
        let mut out = std::io::stdout();
        let _ = out.write_all(st.raw.as_bytes());
        if !st.raw.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        return Ok(());
    }
    if st.pid != i64::from(pid) {
        eprintln!(
            "protonctl: warning: the status file names pid {}, the pid file {pid}; it may be stale",
            st.pid
        );
    }
    let now = status::unix_now();
    if let Some(updated) = st.updated_unix {
        if now.saturating_sub(updated) > 10 {
            eprintln!(
                "protonctl: warning: the status file was last updated {} ago",
                status::human_duration(now.saturating_sub(updated))
            );
        }
    }
    say!("{}", st.render(pid, now));
    Ok(())
}
