//! What proton-run says when it starts: one line on stderr with the IR, the addresses it
//! listens on and the worker count.

use proton_tests::{wait_until, Proton, TempDir};
use std::time::Duration;

#[test]
fn start_line_names_the_ir_addresses_and_workers() {
    let t = TempDir::new("start-line");
    let p = Proton::start(
        t.path(),
        r#"
events {}
http {
    server { listen 127.0.0.1:{port}; return 200 "a"; }
    server { listen 127.0.0.1:{port}; server_name b; return 200 "b"; }
}
"#,
        2,
    );
    let stderr = || std::fs::read_to_string(t.path().join("stderr.log")).unwrap_or_default();
    // The line is printed before the workers are forked, so it is there once the port answers;
    // wait anyway rather than rely on that order.
    assert!(
        wait_until(Duration::from_secs(10), || stderr().contains("serving")),
        "no start line:\n{}",
        p.logs()
    );
    let text = stderr();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("serving")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = lines[0];
    let ir = t.path().join("proton.ir");
    for want in [
        format!("proton-run {}", env!("CARGO_PKG_VERSION")),
        format!("serving {}", ir.display()),
        "(2 servers,".to_string(),
        format!(" on 127.0.0.1:{} ", p.port),
        "with 2 workers".to_string(),
        format!("master pid {}", p.pid()),
    ] {
        assert!(line.contains(&want), "{want:?} missing from {line:?}");
    }
}
