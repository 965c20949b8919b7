//! Where a server's files are: the IR (next to the config unless `--ir` names it), and the
//! pid, status and log files resolved against the prefix as `proton-run` resolves them.

use crate::tools::Tools;
use crate::Res;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// nginx's (and proton-run's) defaults, used when no IR has been compiled yet.
const DEFAULT_PID: &str = "logs/proton.pid";
const DEFAULT_ERROR_LOG: &str = "logs/error.log";
const DEFAULT_ACCESS_LOG: &str = "logs/access.log";

#[derive(Debug)]
pub struct Layout {
    /// `--ir`, or CONF with extension `.ir`.
    pub ir: PathBuf,
    /// Absolute when it can be made so.
    pub prefix: PathBuf,
    /// Whether `--prefix` was given (then it is passed on to proton-run as `-p`).
    pub prefix_given: bool,
    pub pid_file: PathBuf,
    /// The pid file with extension `.status`, as the master writes it.
    pub status_file: PathBuf,
    pub error_log: PathBuf,
    pub access_log: PathBuf,
}

impl Layout {
    /// The layout described by the IR compiled from `conf` (into `ir`, default CONF with
    /// extension `.ir`) as it is on disk now (no recompiling). When there is no IR yet, the
    /// defaults (`logs/proton.pid`, …).
    pub fn of_existing(
        tools: &Tools,
        conf: &Path,
        ir: Option<&Path>,
        prefix: Option<&Path>,
    ) -> Res<Layout> {
        let ir_path = ir_of(conf, ir);
        if !ir_path.is_file() {
            return Ok(Layout::defaults(conf, ir, prefix));
        }
        let v = tools.protonc_inspect(&ir_path)?;
        Ok(Layout::build(
            conf,
            ir,
            prefix,
            &pid_path(&v).unwrap_or_else(|| DEFAULT_PID.to_string()),
            &error_log_path(&v).unwrap_or_else(|| DEFAULT_ERROR_LOG.to_string()),
            &access_log_path(&v).unwrap_or_else(|| DEFAULT_ACCESS_LOG.to_string()),
        ))
    }

    /// The layout with proton-run's default paths, whatever the IR says.
    pub fn defaults(conf: &Path, ir: Option<&Path>, prefix: Option<&Path>) -> Layout {
        Layout::build(
            conf,
            ir,
            prefix,
            DEFAULT_PID,
            DEFAULT_ERROR_LOG,
            DEFAULT_ACCESS_LOG,
        )
    }

    fn build(
        conf: &Path,
        ir: Option<&Path>,
        prefix: Option<&Path>,
        pid: &str,
        error_log: &str,
        access_log: &str,
    ) -> Layout {
        let ir = ir_of(conf, ir);
        let prefix_given = prefix.is_some();
        let prefix = match prefix {
            Some(p) => absolute(p),
            None => absolute(
                ir.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
            ),
        };
        let resolve = |p: &str| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                prefix.join(p)
            }
        };
        let pid_file = resolve(pid);
        // An error log on stderr ends up in the file `start` gives proton-run's stderr.
        let error_log = if error_log == "stderr" {
            prefix.join("logs").join("proton-run.stderr")
        } else {
            resolve(error_log)
        };
        Layout {
            status_file: pid_file.with_extension("status"),
            pid_file,
            error_log,
            access_log: resolve(access_log),
            ir,
            prefix,
            prefix_given,
        }
    }
}

/// The IR named by `--ir`, else CONF with extension `.ir`.
fn ir_of(conf: &Path, ir: Option<&Path>) -> PathBuf {
    ir.map_or_else(|| conf.with_extension("ir"), Path::to_path_buf)
}

/// `p` made absolute (canonical when it exists), as proton-run canonicalises its prefix.
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    if p.is_absolute() {
        return p.to_path_buf();
    }
    std::env::current_dir().map_or_else(|_| p.to_path_buf(), |d| d.join(p))
}

/// `.ir.main.pid`
fn pid_path(v: &Value) -> Option<String> {
    v.pointer("/ir/main/pid")?.as_str().map(str::to_string)
}

/// `.ir.main.error_log[0].path`
fn error_log_path(v: &Value) -> Option<String> {
    v.pointer("/ir/main/error_log/0/path")?
        .as_str()
        .map(str::to_string)
}

/// The first `access_log` to a file with a literal path (no variables) in `.ir.settings`.
fn access_log_path(v: &Value) -> Option<String> {
    v.pointer("/ir/settings")?
        .as_array()?
        .iter()
        .filter_map(|s| s.get("access_log")?.as_array())
        .flatten()
        .find_map(|log| {
            let parts = log.get("File")?.pointer("/path/parts")?.as_array()?;
            parts
                .iter()
                .map(|p| p.get("Literal")?.as_str())
                .collect::<Option<String>>()
                .filter(|s| !s.is_empty())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_inspect_json() {
        let v: Value = serde_json::json!({
            "ir": {
                "main": {"pid": "run/p.pid", "error_log": [{"level": "Error", "path": "/var/log/e.log"}]},
                "settings": [
                    {"access_log": []},
                    {"access_log": [{"File": {"path": {"parts": [{"Var": {"Builtin": "host"}}]}}}]},
                    {"access_log": ["Off", {"File": {"path": {"parts": [{"Literal": "logs/"}, {"Literal": "a.log"}]}}}]}
                ]
            }
        });
        assert_eq!(pid_path(&v).as_deref(), Some("run/p.pid"));
        assert_eq!(error_log_path(&v).as_deref(), Some("/var/log/e.log"));
        assert_eq!(access_log_path(&v).as_deref(), Some("logs/a.log"));
        let empty = serde_json::json!({});
        assert_eq!(pid_path(&empty), None);
        assert_eq!(access_log_path(&empty), None);
    }
}
