//! The http-desync-guardian corpus against a real proton-run: every Severe case is answered
//! with a 4xx/5xx and the connection is closed, so nothing smuggled behind it is read.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn protonc() -> PathBuf {
    let run = Path::new(env!("CARGO_BIN_EXE_proton-run"));
    let p = run.with_file_name(format!("protonc{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.is_file(),
        "protonc not built at {}: cargo build --workspace --bins",
        p.display()
    );
    p
}

fn start() -> Server {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let dir = std::env::temp_dir().join(format!("proton-desync-{}-{port}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let conf = dir.join("p.conf");
    std::fs::write(
        &conf,
        format!(
            "events {{}}\nhttp {{ access_log off; server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\"; }} }} }}\n"
        ),
    )
    .expect("conf");
    let ir = dir.join("p.ir");
    let out = Command::new(protonc())
        .arg("compile")
        .arg(&conf)
        .arg("-o")
        .arg(&ir)
        .output()
        .expect("protonc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child = Command::new(env!("CARGO_BIN_EXE_proton-run"))
        .arg(&ir)
        .env("PROTON_WORKERS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("proton-run");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(Instant::now() < deadline, "proton-run did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { child, port, dir }
}

/// Sends `raw`, then a second, valid request on the same connection; returns the status of
/// the first response, whether a second response came, and whether the server closed.
fn exchange(port: u16, raw: &[u8]) -> (Option<u16>, bool, bool) {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    let _ = s.write_all(raw);
    let _ = s.write_all(b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&got);
    let status = text.get(9..12).and_then(|c| c.parse().ok());
    let responses = text.matches("HTTP/1.").count();
    (status, responses > 1, closed)
}

#[test]
fn severe_cases_are_rejected_and_the_connection_closed() {
    let server = start();
    let cases = common::load_corpus();
    let severe: Vec<&common::Case> = cases.iter().filter(|c| c.tier == "Severe").collect();
    assert!(
        severe.len() >= 40,
        "corpus has only {} Severe cases",
        severe.len()
    );
    // The probe itself works: a valid request is answered and the smuggled one too.
    let (status, second, _) = exchange(server.port, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(
        (status, second),
        (Some(200), true),
        "a valid request must get two responses"
    );
    let mut bad = Vec::new();
    for c in &severe {
        let (status, second, closed) = exchange(server.port, &c.raw);
        let rejected = status.is_some_and(|s| (400..600).contains(&s));
        if !rejected || second || !closed {
            bad.push(format!(
                "{}#{} {:?}: status {status:?}, second response {second}, closed {closed}",
                c.file, c.index, c.name
            ));
        }
    }
    println!(
        "desync corpus against the server: {} Severe cases, {} not rejected+closed",
        severe.len(),
        bad.len()
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
