//! The error log: nginx's line format (`2026/11/25 22:58:00 [error] 123#0: message`), a
//! minimum level from the IR (env `PROTON_LOG_LEVEL` overrides), reopened on USR1.
//!
//! One `ErrorLog` per process; writes are whole lines with one `write` call, so lines from
//! several processes appending to the same file do not interleave.

use proton_ir::LogLevel;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

/// Where error lines go.
pub struct ErrorLog {
    path: Option<PathBuf>,
    file: Option<File>,
    level: LogLevel,
    /// The main context's other `error_log` files (nginx writes to all of them), and the
    /// lowest level any main file takes.
    main_more: Vec<Target>,
    main_min: LogLevel,
    /// The error_log sets of http, server and location levels (a worker's; see
    /// [`ErrorLog::add_location_logs`]), each with the lowest level it writes.
    sets: Vec<(Vec<Target>, LogLevel)>,
    /// Per settings record of the IR, its set (`None`: the main log).
    by_settings: Vec<Option<u32>>,
    /// The set lines go to now: that of the request being handled (`None`: the main log).
    /// A `Cell`, so that code holding the worker shared (the rewrite engine's host, which
    /// finds the location) can switch it.
    current: std::cell::Cell<Option<u32>>,
    /// PROTON_LOG_LEVEL was set: its level applies to every set too.
    level_override: bool,
    /// The connection being handled matches `debug_connection`: every line is written,
    /// to every file of the set, whatever the levels.
    debug: std::cell::Cell<bool>,
    /// `pid#worker` prefix part.
    who: String,
    /// The line being written, reused (no allocation per line once grown). A `RefCell`,
    /// so that code holding the worker shared (the rewrite engine's host) can log.
    line: std::cell::RefCell<Vec<u8>>,
}

/// One file of a location's error_log set.
struct Target {
    /// `None`: standard error.
    path: Option<PathBuf>,
    file: Option<File>,
    level: LogLevel,
}

/// Longest line buffer kept between lines.
const LINE_KEEP: usize = 16 * 1024;

/// An I/O error as nginx writes it in the error log: `2: No such file or directory` for
/// an OS error (without allocating, unlike `io::Error`'s own `Display`), else the error.
pub struct OsError<'e>(pub &'e std::io::Error);

impl std::fmt::Display for OsError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.raw_os_error() {
            Some(code) => write!(f, "{code}: {}", nix::errno::Errno::from_raw(code).desc()),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Parses a level name (for `PROTON_LOG_LEVEL`; any case, spaces ignored).
pub fn parse_level(s: &str) -> Option<LogLevel> {
    LogLevel::from_name(&s.trim().to_ascii_lowercase())
}

impl ErrorLog {
    /// A log writing to `path` (`None` or "stderr": standard error).
    pub fn open(path: Option<PathBuf>, level: LogLevel) -> ErrorLog {
        let forced = std::env::var("PROTON_LOG_LEVEL")
            .ok()
            .and_then(|v| parse_level(&v));
        let level = forced.unwrap_or(level);
        let path = path.filter(|p| p.as_os_str() != "stderr");
        let mut log = ErrorLog {
            path,
            file: None,
            level,
            main_more: Vec::new(),
            main_min: level,
            sets: Vec::new(),
            by_settings: Vec::new(),
            current: std::cell::Cell::new(None),
            level_override: forced.is_some(),
            debug: std::cell::Cell::new(false),
            who: format!("{}#0", std::process::id()),
            line: Default::default(),
        };
        log.reopen();
        log
    }

    /// Stderr only (before a config is loaded).
    pub fn stderr() -> ErrorLog {
        ErrorLog::open(None, LogLevel::Notice)
    }

    /// Points standard error at the log file (a daemon has no terminal; nginx does the same
    /// with `ngx_log_redirect_stderr`). Nothing changes when the log is standard error.
    pub fn redirect_stderr(&self) {
        use std::os::fd::AsRawFd;
        if let Some(f) = &self.file {
            let _ = nix::unistd::dup2(f.as_raw_fd(), 2);
        }
    }

    /// Sets the `pid#n` tag (workers call it after fork).
    pub fn set_worker(&mut self, n: usize) {
        self.who = format!("{}#{n}", std::process::id());
    }

    /// Reopens the files (USR1, logrotate). Failure keeps writing to stderr.
    pub fn reopen(&mut self) {
        self.file = self.path.as_deref().and_then(open_append);
        for t in &mut self.main_more {
            t.file = t.path.as_deref().and_then(open_append);
        }
        for (set, _) in &mut self.sets {
            for t in set {
                t.file = t.path.as_deref().and_then(open_append);
            }
        }
    }

    /// Adds the main context's other `error_log` lines (after the first, which [`open`]
    /// took): every line goes to each file whose level allows it.
    ///
    /// [`open`]: ErrorLog::open
    pub fn add_main_logs(
        &mut self,
        logs: &[proton_ir::ErrorLog],
        resolve: impl Fn(&str) -> PathBuf,
    ) {
        for l in logs {
            let path = (l.path != "stderr").then(|| resolve(&l.path));
            let level = if self.level_override {
                self.level
            } else {
                l.level
            };
            self.main_min = self.main_min.min(level);
            self.main_more.push(Target {
                file: path.as_deref().and_then(open_append),
                path,
                level,
            });
        }
    }

    /// Opens the error_log sets of the http, server and location levels (`resolve` makes
    /// a path absolute), so that [`ErrorLog::select`] can send a request's lines there.
    /// Sets with the same files share one entry.
    pub fn add_location_logs(
        &mut self,
        settings: &[proton_ir::Settings],
        resolve: impl Fn(&str) -> PathBuf,
    ) {
        let level = self.level;
        let mut seen: Vec<&[proton_ir::ErrorLog]> = Vec::new();
        self.by_settings = settings
            .iter()
            .map(|s| {
                if s.error_log.is_empty() {
                    return None;
                }
                if let Some(i) = seen.iter().position(|e| *e == s.error_log.as_slice()) {
                    return Some(i as u32);
                }
                seen.push(&s.error_log);
                let set: Vec<Target> = s
                    .error_log
                    .iter()
                    .map(|l| {
                        let path = (l.path != "stderr").then(|| resolve(&l.path));
                        Target {
                            file: path.as_deref().and_then(open_append),
                            path,
                            level: l.level,
                        }
                    })
                    .collect();
                // PROTON_LOG_LEVEL (which set the main level) overrides these too.
                let min = if self.level_override {
                    level
                } else {
                    set.iter().map(|t| t.level).min().unwrap_or(level)
                };
                self.sets.push((set, min));
                Some((self.sets.len() - 1) as u32)
            })
            .collect();
    }

    /// Sends the following lines to the error_log of settings record `settings` (the
    /// request's location), or to the main log with `None`.
    pub fn select(&self, settings: Option<proton_ir::SettingsId>) {
        self.current
            .set(settings.and_then(|s| self.by_settings.get(s.0 as usize).copied().flatten()));
    }

    /// `debug_connection`: the lines that follow are of a connection logged at debug level.
    pub fn set_debug(&self, on: bool) {
        self.debug.set(on);
    }

    pub fn enabled(&self, level: LogLevel) -> bool {
        if self.debug.get() {
            return true;
        }
        match self.current.get().and_then(|i| self.sets.get(i as usize)) {
            Some((_, min)) => level >= *min,
            None => level >= self.main_min,
        }
    }

    /// Writes one line if `level` is enabled.
    pub fn log(&self, level: LogLevel, msg: std::fmt::Arguments<'_>) {
        if !self.enabled(level) {
            return;
        }
        // A line being written already (a log call while formatting one) is not possible:
        // the arguments are formatted into the buffer here.
        let Ok(mut line) = self.line.try_borrow_mut() else {
            return;
        };
        line.clear();
        write_local_time(&mut line);
        let _ = writeln!(line, " [{}] {}: {}", level.name(), self.who, msg);
        match self.current.get().and_then(|i| self.sets.get(i as usize)) {
            Some((set, _)) => {
                let all = self.level_override || self.debug.get();
                for t in set.iter().filter(|t| all || level >= t.level) {
                    write_to(t.file.as_ref(), &line);
                }
            }
            None => {
                let all = self.debug.get();
                if all || level >= self.level {
                    write_to(self.file.as_ref(), &line);
                }
                for t in self.main_more.iter().filter(|t| all || level >= t.level) {
                    write_to(t.file.as_ref(), &line);
                }
            }
        }
        if line.capacity() > LINE_KEEP {
            *line = Vec::new();
        }
    }
}

/// Opens a log file for appending, making its directory first.
fn open_append(p: &std::path::Path) -> Option<File> {
    if let Some(dir) = p.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    OpenOptions::new().create(true).append(true).open(p).ok()
}

/// Writes a line to `file`, or to standard error without one.
fn write_to(file: Option<&File>, line: &[u8]) {
    let _ = match file {
        Some(mut f) => f.write_all(line),
        None => std::io::stderr().write_all(line),
    };
}

/// Appends `YYYY/MM/DD HH:MM:SS` in UTC (the runtime does not read time zones) to `out`.
pub fn write_local_time(out: &mut Vec<u8>) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, mo, d, h, mi, s) = civil(secs);
    let _ = write!(out, "{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02}");
}

/// Splits Unix seconds into UTC calendar fields (Howard Hinnant's days-from-civil inverse).
pub fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// Logs through an [`ErrorLog`] with format arguments. The arguments are evaluated only
/// when the level is enabled (a debug line's `String::from_utf8_lossy` of the request line,
/// say, costs nothing on every request otherwise).
#[macro_export]
macro_rules! elog {
    ($log:expr, $level:ident, $($arg:tt)*) => {{
        let log = &$log;
        if log.enabled(proton_ir::LogLevel::$level) {
            log.log(proton_ir::LogLevel::$level, format_args!($($arg)*))
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(1_795_647_600), (2026, 11, 25, 23, 0, 0));
    }
}
