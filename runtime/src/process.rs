//! The process's identity and surroundings, set as nginx sets them: `daemon` (detach),
//! and in each worker `env`, `worker_rlimit_core`, `user` (dropping root after the
//! listening sockets and log files are open), `worker_cpu_affinity` and
//! `working_directory`.
//!
//! Everything here runs once at start (master) or once right after fork (worker), never on
//! a request's path.

use nix::unistd::{Gid, Group, Uid, User};
use proton_ir::{CpuAffinity, MainConf};
use std::ffi::CString;

/// The user and group workers switch to.
pub struct Identity {
    pub uid: Uid,
    pub gid: Gid,
    /// For initgroups.
    pub name: CString,
}

/// The identity `user` names, when there is one and the process runs as root; nginx's
/// messages when a name is unknown (`getpwnam("x") failed`).
pub fn resolve_user(main: &MainConf) -> Result<Option<Identity>, String> {
    let Some(u) = &main.user else {
        return Ok(None);
    };
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let user = match User::from_name(&u.user) {
        Ok(Some(user)) => user,
        Ok(None) => return Err(format!("getpwnam(\"{}\") failed", u.user)),
        Err(e) => return Err(format!("getpwnam(\"{}\") failed ({e})", u.user)),
    };
    // nginx: without a group, the group named like the user.
    let gname = u.group.as_deref().unwrap_or(&u.user);
    let gid = match Group::from_name(gname) {
        Ok(Some(g)) => g.gid,
        Ok(None) => return Err(format!("getgrnam(\"{gname}\") failed")),
        Err(e) => return Err(format!("getgrnam(\"{gname}\") failed ({e})")),
    };
    let name =
        CString::new(u.user.as_bytes()).map_err(|_| format!("invalid user name \"{}\"", u.user))?;
    Ok(Some(Identity {
        uid: user.uid,
        gid,
        name,
    }))
}

/// With `user` in effect (root master), makes sure every log file of a fixed path exists
/// and belongs to the workers' user, as nginx's master does when it reopens logs: after a
/// rotation (USR1), workers that are no longer root reopen the new files, which they could
/// neither create in a root-owned directory nor open if root owned them. Failures are
/// returned for the error log, one line each.
pub fn prepare_logs_for_user(loaded: &crate::config::Loaded) -> Vec<String> {
    let Ok(Some(id)) = resolve_user(&loaded.ir.main) else {
        return Vec::new();
    };
    let ir = &loaded.ir;
    let mut paths: Vec<std::path::PathBuf> = Vec::new();
    let error_logs = ir
        .main
        .error_log
        .iter()
        .chain(ir.settings.iter().flat_map(|s| s.error_log.iter()))
        .filter(|l| l.path != "stderr")
        .map(|l| l.path.as_str());
    let access_logs = ir
        .settings
        .iter()
        .flat_map(|s| s.access_log.iter())
        .filter_map(|l| match l {
            proton_ir::AccessLog::File { path, .. } => path.as_literal(),
            proton_ir::AccessLog::Off => None,
        });
    for p in error_logs.chain(access_logs) {
        let path = loaded.resolve(p);
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    let mut failures = Vec::new();
    for path in paths {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let opened = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        let result = opened.map_err(|e| e.to_string()).and_then(|f| {
            use std::os::fd::AsRawFd;
            nix::unistd::fchown(f.as_raw_fd(), Some(id.uid), None).map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            failures.push(format!(
                "chown(\"{}\", {}) failed ({e})",
                path.display(),
                id.uid
            ));
        }
    }
    failures
}

/// The warning nginx gives for `user` when it does not run as root.
pub fn user_ignored(main: &MainConf) -> Option<&'static str> {
    (main.user.is_some() && !Uid::effective().is_root()).then_some(
        "the \"user\" directive makes sense only if the master process runs with super-user privileges, ignored",
    )
}

/// `daemon on`: forks; the parent exits at once, the child starts a new session and gets
/// /dev/null as standard input and output (standard error then goes to the error log, see
/// `ErrorLog::redirect_stderr`), as nginx's `ngx_daemon`.
pub fn daemonize() -> Result<(), String> {
    // SAFETY: called before any thread is started; the child continues as the only copy
    // of the program and the parent only exits.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            // SAFETY: _exit ends the parent without running destructors the child owns
            // copies of (sockets, files).
            unsafe { nix::libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Child) => crate::limits::forget_pid(),
        Err(e) => return Err(format!("fork() failed: {e}")),
    }
    nix::unistd::setsid().map_err(|e| format!("setsid() failed: {e}"))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("open(\"/dev/null\") failed: {e}"))?;
    use std::os::fd::AsRawFd;
    for fd in [0, 1] {
        nix::unistd::dup2(null.as_raw_fd(), fd).map_err(|e| format!("dup2() failed: {e}"))?;
    }
    Ok(())
}

/// The worker's environment, as nginx's `ngx_set_environment`: only the variables named by
/// `env` (with the master's value, or the value written as `NAME=value`) and TZ; Proton's
/// own `PROTON_*` variables are kept too. Called in the worker right after fork, before it
/// starts any thread.
pub fn set_environment(main: &MainConf) {
    let (drop, set) = environment_changes(main, std::env::vars_os().map(|(k, _)| k));
    for k in drop {
        std::env::remove_var(k);
    }
    for (k, v) in set {
        std::env::set_var(k, v);
    }
}

/// What [`set_environment`] does to an environment holding `names`: the variables to
/// remove, then those to set.
pub fn environment_changes(
    main: &MainConf,
    names: impl Iterator<Item = std::ffi::OsString>,
) -> (Vec<std::ffi::OsString>, Vec<(&str, &str)>) {
    let keep = |name: &str| {
        name == "TZ"
            || name.starts_with("PROTON_")
            || main
                .env
                .iter()
                .any(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == name)
    };
    let drop = names.filter(|k| !k.to_str().is_some_and(keep)).collect();
    let set = main.env.iter().filter_map(|e| e.split_once('=')).collect();
    (drop, set)
}

/// Everything a worker sets up after fork, in nginx's order (`ngx_worker_process_init`):
/// the priority, RLIMIT_CORE, then the user (when root), then CPU affinity and the working
/// directory.
/// An error here stops the worker (nginx exits with status 2); `Ok(Some(line))` is an
/// alert to log (a failed sched_setaffinity, which nginx logs and goes on).
pub fn init_worker(main: &MainConf, slot: usize, ncpu: usize) -> Result<Option<String>, String> {
    use nix::sys::resource::{setrlimit, Resource};
    let mut alert = None;
    if main.worker_priority != 0 {
        // SAFETY: setpriority only reads its integer arguments; PRIO_PROCESS with who 0 is
        // this process.
        let rc =
            unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, main.worker_priority) };
        if rc == -1 {
            alert = Some(format!(
                "setpriority({}) failed ({})",
                main.worker_priority,
                std::io::Error::last_os_error()
            ));
        }
    }
    if let Some(core) = main.worker_rlimit_core {
        setrlimit(Resource::RLIMIT_CORE, core, core)
            .map_err(|e| format!("setrlimit(RLIMIT_CORE, {core}) failed ({e})"))?;
    }
    if let Some(id) = resolve_user(main)? {
        nix::unistd::setgid(id.gid).map_err(|e| format!("setgid({}) failed ({e})", id.gid))?;
        nix::unistd::initgroups(&id.name, id.gid).map_err(|e| {
            format!(
                "initgroups({}, {}) failed ({e})",
                id.name.to_string_lossy(),
                id.gid
            )
        })?;
        nix::unistd::setuid(id.uid).map_err(|e| format!("setuid({}) failed ({e})", id.uid))?;
    }
    if let Some(cpus) = main
        .worker_cpu_affinity
        .as_ref()
        .and_then(|a| worker_cpus(a, slot, ncpu))
    {
        let mut set = nix::sched::CpuSet::new();
        for c in &cpus {
            set.set(*c as usize)
                .map_err(|e| format!("CPU {c} in worker_cpu_affinity: {e}"))?;
        }
        // nginx logs a failure at alert and goes on.
        if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
            alert = Some(format!("sched_setaffinity() failed ({e})"));
        }
    }
    if let Some(dir) = &main.working_directory {
        std::env::set_current_dir(dir).map_err(|e| format!("chdir(\"{dir}\") failed ({e})"))?;
    }
    Ok(alert)
}

/// The CPUs of worker `slot`, as nginx's `ngx_get_cpu_affinity`: with masks, the slot's
/// mask (the last one for slots beyond); with `auto`, the slot-th CPU (round robin) of the
/// mask, or of the `ncpu` CPUs when there is none. `None`: leave the worker unpinned.
pub fn worker_cpus(a: &CpuAffinity, slot: usize, ncpu: usize) -> Option<Vec<u16>> {
    match a {
        CpuAffinity::Masks(m) => m.get(slot).or(m.last()).cloned().filter(|c| !c.is_empty()),
        CpuAffinity::Auto { cpus } => {
            let all: Vec<u16>;
            let set = match cpus {
                Some(c) => c,
                None => {
                    all = (0..ncpu.clamp(1, 1024) as u16).collect();
                    &all
                }
            };
            (!set.is_empty()).then(|| vec![set[slot % set.len()]])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment() {
        let main = MainConf {
            env: vec!["KEEP_ME".into(), "SET_ME=set".into()],
            ..MainConf::default()
        };
        let names = [
            "PATH",
            "KEEP_ME",
            "TZ",
            "PROTON_WORKERS",
            "DROP_ME",
            "SET_ME",
        ]
        .into_iter()
        .map(std::ffi::OsString::from);
        let (drop, set) = environment_changes(&main, names);
        assert_eq!(drop, ["PATH", "DROP_ME"]);
        assert_eq!(set, [("SET_ME", "set")]);
    }

    #[test]
    fn cpus_per_worker() {
        let m = CpuAffinity::Masks(vec![vec![0], vec![1, 2]]);
        assert_eq!(worker_cpus(&m, 0, 4), Some(vec![0]));
        assert_eq!(worker_cpus(&m, 1, 4), Some(vec![1, 2]));
        assert_eq!(worker_cpus(&m, 5, 4), Some(vec![1, 2]));
        let a = CpuAffinity::Auto { cpus: None };
        assert_eq!(worker_cpus(&a, 0, 2), Some(vec![0]));
        assert_eq!(worker_cpus(&a, 3, 2), Some(vec![1]));
        let a = CpuAffinity::Auto {
            cpus: Some(vec![1, 3]),
        };
        assert_eq!(worker_cpus(&a, 2, 4), Some(vec![1]));
        assert_eq!(worker_cpus(&a, 1, 4), Some(vec![3]));
    }
}
