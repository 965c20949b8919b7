//! What several compiler test files share.

use std::path::Path;

/// Makes the default config's certificate (`conf/make-cert.sh`, which does nothing when it
/// is there), so that the configs of `conf/` compile: protonc reads the files they name.
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
