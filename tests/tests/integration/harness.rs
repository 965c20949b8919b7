//! Checks of the harness itself: the nginx oracle starts, answers, stops, and explains a
//! failure to start; temp dirs clean up after themselves.

use proton_tests::{get, nginx_binary, port_accepts, wait_until, Nginx, TempDir};
use std::time::Duration;

#[test]
fn nginx_answers_and_is_stopped_on_drop() {
    let Some(binary) = nginx_binary() else { return };
    let nginx = Nginx::start(&binary, |port| {
        format!(
            "server {{ listen 127.0.0.1:{port}; server_name one.test; \
             location / {{ return 200 \"root\"; }} }}\n\
             server {{ listen 127.0.0.1:{port}; server_name \"\"; return 200 \"no host\"; }}"
        )
    });
    let port = nginx.port();
    assert_eq!(get(port, Some("one.test"), "/x"), (200, "root".to_string()));
    assert_eq!(get(port, None, "/x"), (200, "no host".to_string()));
    drop(nginx);
    assert!(
        wait_until(Duration::from_secs(20), || !port_accepts(port)),
        "nginx still listening on {port} after drop"
    );
}

#[test]
#[should_panic(expected = "unknown directive \"no_such_directive\"")]
fn nginx_that_cannot_start_shows_its_log() {
    let Some(binary) = nginx_binary() else {
        panic!("unknown directive \"no_such_directive\" (nginx skipped)");
    };
    let _nginx = Nginx::start(&binary, |_| "no_such_directive on;".to_string());
}

#[test]
fn temp_dir_is_removed_on_drop() {
    let dir = TempDir::new("harness");
    let file = dir.write("a/b.txt", "x");
    assert!(file.is_file());
    let path = dir.path().to_path_buf();
    drop(dir);
    if std::env::var_os("PROTON_KEEP_TMP").is_none() {
        assert!(!path.exists());
    }
}
