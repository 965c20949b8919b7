//! What several compiler test files share.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Makes the default config's certificate (`conf/make-cert.sh`, which does nothing when it
/// is there), so that the configs of `conf/` compile: protonc reads the files they name.
#[allow(dead_code)] // each test binary uses the helpers it needs
pub fn conf_certificate() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/make-cert.sh");
    let out = std::process::Command::new("sh")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed (is openssl installed?): {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A third-party command-line tool the tests drive (`check-jsonschema`, `crossplane`), if it
/// is installed: whether `name --version` runs. When it does not, the test is
/// skipped with a printed reason, except in CI (`CI=true`, set by `.ci/run`, which installs
/// the tools with pip): there a missing tool fails the test, so a check never silently stops
/// running.
#[allow(dead_code)] // each test binary uses the helpers it needs
pub fn third_party_tool(name: &str, install: &str) -> bool {
    let runs = std::process::Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if runs {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{name} is not installed, and CI must run this test: {install}"
    );
    eprintln!("skipped: {name} is not installed ({install})");
    false
}

/// Runs the `protonc` just built with `args`.
#[allow(dead_code)] // each test binary uses the helpers it needs
pub fn protonc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_protonc"))
        .args(args)
        .output()
        .expect("protonc runs")
}

/// A fresh private temp dir for one test (`name` and this test process's pid).
#[allow(dead_code)]
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("protonc-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Writes `text` to `dir/name`; its path.
#[allow(dead_code)]
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}
