//! Checks of the harness itself: the nginx oracle starts, answers, stops, and explains a
//! failure to start; temp dirs clean up after themselves.

use proton_tests::{get, nginx_binary, port_accepts, wait_until, Nginx, Proton, TempDir};
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

/// A proton-run whose port is taken fails to start (it refuses an address another process
/// serves) and the harness notices and tries other ports, instead of taking the other
/// server's answers for its own. Here every attempt also asks for a port held by a running
/// server, so all five fail.
#[test]
#[should_panic(expected = "proton-run found its port taken five times")]
fn proton_on_a_taken_port_is_noticed() {
    let t = TempDir::new("harness-taken");
    let conf = "events {}\nhttp { access_log off; server { listen 127.0.0.1:{port}; return 200 \"mine\"; } }\n";
    let first = Proton::start(t.path(), conf, 1);
    let t2 = TempDir::new("harness-taken-2");
    let both = format!(
        "events {{}}\nhttp {{ access_log off; server {{ listen 127.0.0.1:{{port}}; listen 127.0.0.1:{}; return 200 \"other\"; }} }}\n",
        first.port
    );
    let _second = Proton::start(t2.path(), &both, 1);
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
