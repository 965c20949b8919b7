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

/// Starts proton-run on a free port. The master writes its pid file only once it has bound
/// the port, and it refuses a port another process serves (then another port is tried), so
/// the test never talks to a server it did not start.
fn start() -> Server {
    let mut last = String::new();
    for _attempt in 0..5 {
        match try_start() {
            Ok(server) => return server,
            Err(why) => last = why,
        }
    }
    panic!("proton-run did not start: {last}");
}

fn try_start() -> Result<Server, String> {
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
    let pid_file = dir.join("p.pid");
    let child = Command::new(env!("CARGO_BIN_EXE_proton-run"))
        .arg("--pid")
        .arg(&pid_file)
        .arg(&ir)
        .env("PROTON_WORKERS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("proton-run");
    let mut server = Server { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("exited early ({status}) on port {port}"));
        }
        if pid_file.exists() && TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(server);
        }
        if Instant::now() >= deadline {
            let _ = server.child.kill();
            return Err(format!("not listening on port {port} after 20 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `raw`, then a second, valid request on the same connection; returns the status of
/// the first response, whether a second response came, and whether the server closed.
/// Reads until the server closes or a second whole response ("ok") has come; the 30 s read
/// timeout only bounds a server that does neither.
fn exchange(port: u16, raw: &[u8]) -> (Option<u16>, bool, bool) {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let _ = s.write_all(raw);
    let _ = s.write_all(b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Closing with the smuggled request still unread makes the kernel send a
            // reset (until lingering close exists): closed all the same.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
        let text = String::from_utf8_lossy(&got);
        if text.matches("HTTP/1.").count() >= 2 && text.ends_with("\r\n\r\nok") {
            break false;
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
