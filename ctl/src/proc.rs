//! Processes: pid files, liveness, signals, and starting proton-run detached.

use crate::layout::Layout;
use crate::{Fail, Res};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a pid file says.
pub enum PidState {
    /// It names a live proton process.
    Running(i32),
    /// There is no pid file.
    NoPidFile(PathBuf),
    /// It names a process that is gone (or that is not proton: the pid was reused).
    Stale(PathBuf, i32),
    /// It cannot be read or does not hold a pid.
    Unreadable(PathBuf, String),
}

impl PidState {
    /// Why there is no running master, for "not running: …".
    pub fn describe(&self) -> String {
        match self {
            PidState::Running(pid) => format!("master pid {pid} is running"),
            PidState::NoPidFile(p) => format!("no pid file {}", p.display()),
            PidState::Stale(p, pid) => {
                format!("pid file {} names pid {pid}, which is gone", p.display())
            }
            PidState::Unreadable(p, e) => format!("pid file {}: {e}", p.display()),
        }
    }
}

/// The pid in a pid file: `Ok(None)` when the file is missing.
///
/// Only pids above 1 are accepted: `kill(0)` and `kill(-1)` signal whole groups, and pid 1 is
/// never ours.
pub fn read_pid(path: &Path) -> Result<Option<i32>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 1 => Ok(Some(pid)),
        _ => Err(format!("{:?} is not a pid", text.trim())),
    }
}

pub fn pid_state(path: &Path) -> PidState {
    match read_pid(path) {
        Ok(None) => PidState::NoPidFile(path.to_path_buf()),
        Err(e) => PidState::Unreadable(path.to_path_buf(), e),
        Ok(Some(pid)) if alive(pid) && is_proton(pid) => PidState::Running(pid),
        Ok(Some(pid)) => PidState::Stale(path.to_path_buf(), pid),
    }
}

/// Whether `pid` is a live process (a zombie is not).
pub fn alive(pid: i32) -> bool {
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(Errno::EPERM) => {}
        Err(_) => return false,
    }
    // "pid (comm) S ...": the state follows the last ')'.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_none_or(|state| state != 'Z' && state != 'X'),
        Err(_) => true,
    }
}

/// Whether `pid` runs a Proton program (guards against a stale pid file whose pid was reused).
/// Where /proc cannot tell, it is assumed to be.
fn is_proton(pid: i32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
            let name = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
            cmdline.is_empty() || name.windows(6).any(|w| w == b"proton")
        }
        Err(_) => true,
    }
}

pub fn signal(pid: i32, sig: Signal) -> Res<()> {
    kill(Pid::from_raw(pid), sig)
        .map_err(|e| Fail::new(format!("cannot send {sig} to master pid {pid}: {e}")))
}

/// Polls until `pid` is gone; false when it is still there after `deadline`.
pub fn wait_gone(pid: i32, deadline: Duration, poll: Duration) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if !alive(pid) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(poll);
    }
}

/// proton-run started by `start`, not yet known to be ready.
pub struct Started {
    child: Child,
    stderr_path: PathBuf,
    stderr_offset: u64,
}

impl Started {
    pub fn pid(&self) -> i32 {
        // A pid always fits in pid_t; 0 would never name our child.
        i32::try_from(self.child.id()).unwrap_or(0)
    }

    /// How it exited, once it has.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("exited ({})", crate::tools::describe(status))),
            Ok(None) => None,
            Err(e) => Some(format!("cannot be waited for ({e})")),
        }
    }

    /// What it wrote on stderr since it was started.
    pub fn new_stderr(&self) -> String {
        let mut out = Vec::new();
        if let Ok(mut f) = File::open(&self.stderr_path) {
            if f.seek(SeekFrom::Start(self.stderr_offset)).is_ok() {
                let _ = f.take(64 * 1024).read_to_end(&mut out);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// TERM, then reap it (a master that never got ready).
    pub fn terminate(&mut self) {
        let pid = self.pid();
        if pid > 1 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        if !wait_gone(pid, Duration::from_secs(5), Duration::from_millis(25)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Signals whose disposition proton-run must not inherit as "ignored" (e.g. under nohup a
/// master would never see HUP).
const RESET_SIGNALS: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCHLD,
];

/// Starts `proton-run IR [-p PREFIX]` in a new session: stdin and stdout on /dev/null, stderr
/// appended to `stderr_path`. Paths are passed absolute, so the master's reloads do not depend
/// on its working directory.
pub fn spawn_detached(proton_run: &Path, layout: &Layout, stderr_path: &Path) -> Res<Started> {
    if let Some(dir) = stderr_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Fail::new(format!("cannot create {}: {e}", dir.display())))?;
    }
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_path)
        .map_err(|e| Fail::new(format!("cannot open {}: {e}", stderr_path.display())))?;
    let stderr_offset = stderr.metadata().map_or(0, |m| m.len());
    let ir = std::fs::canonicalize(&layout.ir)
        .map_err(|e| Fail::new(format!("{}: {e}", layout.ir.display())))?;
    let mut cmd = Command::new(proton_run);
    cmd.arg(&ir);
    if layout.prefix_given {
        cmd.arg("-p").arg(&layout.prefix);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr));
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (setsid, sigaction); it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            for sig in RESET_SIGNALS {
                // SAFETY: SIG_DFL installs no handler, so no Rust code can run in a signal context.
                nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl)
                    .map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| Fail::new(format!("cannot start {}: {e}", proton_run.display())))?;
    Ok(Started {
        child,
        stderr_path: stderr_path.to_path_buf(),
        stderr_offset,
    })
}
