//! `open_file_cache` and its companions, over a real proton-run: a replaced file is served
//! once `open_file_cache_valid` has passed, a worker keeps at most `max` descriptors, and
//! with `open_file_cache_errors` a missing file stays missing for the validity time.

use proton_tests::*;
use std::time::Duration;

const CONF: &str = r#"
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:{port};
        root {dir}/www;
        open_file_cache max=3 inactive=60s;
        open_file_cache_valid 2s;
        location /errors/ { open_file_cache_errors on; open_file_cache_valid 60s; }
    }
}
"#;

/// Descriptors of worker `pid` open on files under `dir`.
fn open_files_under(pid: u32, dir: &std::path::Path) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(dir)))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_replaced_file_is_served_after_open_file_cache_valid() {
    let t = TempDir::new("ofc-valid");
    t.write("www/f.txt", "one");
    let p = Proton::start(t.path(), CONF, 1);
    assert_eq!(get(p.port, None, "/f.txt"), (200, "one".into()));
    // Replaced by a rename (a new inode), as deployments do.
    t.write("www/f.txt.new", "two!");
    std::fs::rename(t.path().join("www/f.txt.new"), t.path().join("www/f.txt")).expect("mv");
    // The cached descriptor still serves the old file (as nginx's does)…
    assert_eq!(get(p.port, None, "/f.txt"), (200, "one".into()));
    // …until the validity time has passed.
    let seen = wait_until(Duration::from_secs(20), || {
        get(p.port, None, "/f.txt") == (200, "two!".into())
    });
    assert!(seen, "the new file was never served\n{}", p.logs());
}

#[test]
fn a_worker_keeps_at_most_max_descriptors() {
    let t = TempDir::new("ofc-max");
    for i in 0..10 {
        t.write(&format!("www/f{i}.txt"), &format!("file {i}"));
    }
    let p = Proton::start(t.path(), CONF, 1);
    let w = p.the_worker();
    let www = std::fs::canonicalize(t.path().join("www")).expect("www");
    for round in 0..2 {
        for i in 0..10 {
            assert_eq!(
                get(p.port, None, &format!("/f{i}.txt")),
                (200, format!("file {i}")),
                "round {round}"
            );
        }
        let n = open_files_under(w, &www);
        assert!(
            (1..=3).contains(&n),
            "{n} descriptors open under www (max=3)"
        );
    }
}

#[test]
fn open_file_cache_errors_keeps_a_missing_file_missing() {
    let t = TempDir::new("ofc-errors");
    t.write("www/errors/.keep", "");
    t.write("www/plain.txt.keep", "");
    let p = Proton::start(t.path(), CONF, 1);
    assert_eq!(get(p.port, None, "/errors/late.txt").0, 404);
    assert_eq!(get(p.port, None, "/late.txt").0, 404);
    t.write("www/errors/late.txt", "here");
    t.write("www/late.txt", "here");
    // Without open_file_cache_errors a failure is not remembered.
    assert_eq!(get(p.port, None, "/late.txt"), (200, "here".into()));
    // With it, the failure holds for open_file_cache_valid (60s here).
    assert_eq!(get(p.port, None, "/errors/late.txt").0, 404);
}

#[test]
fn a_large_file_is_sent_whole_from_the_cache() {
    let t = TempDir::new("ofc-large");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::create_dir_all(t.path().join("www")).expect("www");
    std::fs::write(t.path().join("www/big.bin"), &data).expect("write");
    let p = Proton::start(
        t.path(),
        &CONF.replace("root {dir}/www;", "root {dir}/www; sendfile on;"),
        1,
    );
    // The second and third requests are cache hits (a duplicated descriptor each).
    for _ in 0..3 {
        let r = request(p.port, None, "/big.bin").expect("GET");
        assert_eq!(r.status, 200);
        assert!(r.body == data, "body differs ({} bytes)", r.body.len());
    }
}
