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
    /// `pid#worker` prefix part.
    who: String,
    /// The line being written, reused (no allocation per line once grown).
    line: Vec<u8>,
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
        let level = std::env::var("PROTON_LOG_LEVEL")
            .ok()
            .and_then(|v| parse_level(&v))
            .unwrap_or(level);
        let path = path.filter(|p| p.as_os_str() != "stderr");
        let mut log = ErrorLog {
            path,
            file: None,
            level,
            who: format!("{}#0", std::process::id()),
            line: Vec::new(),
        };
        log.reopen();
        log
    }

    /// Stderr only (before a config is loaded).
    pub fn stderr() -> ErrorLog {
        ErrorLog::open(None, LogLevel::Notice)
    }

    /// Sets the `pid#n` tag (workers call it after fork).
    pub fn set_worker(&mut self, n: usize) {
        self.who = format!("{}#{n}", std::process::id());
    }

    /// Reopens the file (USR1, logrotate). Failure keeps writing to stderr.
    pub fn reopen(&mut self) {
        self.file = self.path.as_ref().and_then(|p| {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            OpenOptions::new().create(true).append(true).open(p).ok()
        });
    }

    pub fn enabled(&self, level: LogLevel) -> bool {
        level >= self.level
    }

    /// Writes one line if `level` is enabled.
    pub fn log(&mut self, level: LogLevel, msg: std::fmt::Arguments<'_>) {
        if !self.enabled(level) {
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        write_local_time(&mut line);
        let _ = writeln!(line, " [{}] {}: {}", level.name(), self.who, msg);
        match self.file.as_mut() {
            Some(f) => {
                let _ = f.write_all(&line);
            }
            None => {
                let _ = std::io::stderr().write_all(&line);
            }
        }
        if line.capacity() <= LINE_KEEP {
            self.line = line;
        }
    }
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

/// Logs through an [`ErrorLog`] with format arguments.
#[macro_export]
macro_rules! elog {
    ($log:expr, $level:ident, $($arg:tt)*) => {
        $log.log(proton_ir::LogLevel::$level, format_args!($($arg)*))
    };
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
