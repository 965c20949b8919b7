//! The two Proton programs protonctl drives: `protonc` and `proton-run`.

use crate::{Fail, Res};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Tools {
    pub protonc: PathBuf,
    pub proton_run: PathBuf,
}

impl Tools {
    /// Finds `protonc` and `proton-run` in `PROTON_BIN_DIR`, else next to this executable.
    pub fn locate() -> Res<Tools> {
        let (dir, from) = match std::env::var_os("PROTON_BIN_DIR") {
            Some(d) if !d.is_empty() => (PathBuf::from(d), "PROTON_BIN_DIR"),
            _ => {
                let exe = std::env::current_exe()
                    .map_err(|e| Fail::new(format!("cannot find my own executable: {e}")))?;
                let dir = exe
                    .parent()
                    .map(Path::to_path_buf)
                    .ok_or_else(|| Fail::new("my own executable has no directory"))?;
                (dir, "protonctl's directory")
            }
        };
        let find = |name: &str| -> Res<PathBuf> {
            let p = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            if p.is_file() {
                Ok(p)
            } else {
                Err(Fail::new(format!(
                    "{name} not found in {from} ({}); install it next to protonctl or set PROTON_BIN_DIR",
                    dir.display()
                )))
            }
        };
        Ok(Tools {
            protonc: find("protonc")?,
            proton_run: find("proton-run")?,
        })
    }

    /// `protonc check CONF` with the terminal passed through; returns its exit code.
    pub fn protonc_check(&self, conf: &Path) -> Res<u8> {
        let status = Command::new(&self.protonc)
            .arg("check")
            .arg(conf)
            .status()
            .map_err(|e| Fail::new(format!("cannot run {}: {e}", self.protonc.display())))?;
        Ok(exit_code(status))
    }

    /// `protonc compile CONF -o IR`, its diagnostics passed through. protonc writes the IR
    /// through a temporary file and a rename, and writes nothing when the config has errors.
    pub fn protonc_compile(&self, conf: &Path, ir: &Path) -> Res<()> {
        let status = Command::new(&self.protonc)
            .arg("compile")
            .arg(conf)
            .arg("-o")
            .arg(ir)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| Fail::new(format!("cannot run {}: {e}", self.protonc.display())))?;
        if status.success() {
            Ok(())
        } else {
            Err(Fail::new(format!(
                "{} does not compile (protonc {})",
                conf.display(),
                describe(status)
            )))
        }
    }

    /// `protonc inspect IR`, parsed.
    pub fn protonc_inspect(&self, ir: &Path) -> Res<serde_json::Value> {
        let out = Command::new(&self.protonc)
            .arg("inspect")
            .arg(ir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Fail::new(format!("cannot run {}: {e}", self.protonc.display())))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Fail::new(format!(
                "protonc inspect {} failed ({}): {}",
                ir.display(),
                describe(out.status),
                err.trim()
            )));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            Fail::new(format!(
                "protonc inspect {} printed something that is not JSON: {e}",
                ir.display()
            ))
        })
    }
}

/// A child's exit status as an exit code for protonctl (a signal death is a failure).
fn exit_code(status: std::process::ExitStatus) -> u8 {
    match status.code() {
        Some(c) => u8::try_from(c).unwrap_or(crate::FAILURE),
        None => crate::FAILURE,
    }
}

/// "exit code 1", "killed by signal 9".
pub fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}
