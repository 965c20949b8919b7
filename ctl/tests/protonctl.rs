//! `protonctl` against the real `protonc` and `proton-run`: each test gets its own temp dir
//! and a free loopback port, and stops whatever it started even when an assertion fails.
//! No fixed sleeps: conditions are polled with deadlines.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PROTONCTL: &str = env!("CARGO_BIN_EXE_protonctl");

/// protonc and proton-run must sit next to protonctl (protonctl finds them there).
fn check_siblings() {
    let dir = Path::new(PROTONCTL)
        .parent()
        .expect("protonctl has a directory");
    for name in ["protonc", "proton-run"] {
        assert!(
            dir.join(name).is_file(),
            "{name} not found in {}: build the workspace binaries first: cargo build --workspace --bins",
            dir.display()
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

fn config(port: u16, body: &str) -> String {
    format!(
        "error_log logs/error.log notice;\n\
         events {{}}\n\
         http {{ access_log logs/access.log; server {{ listen 127.0.0.1:{port}; \
         location / {{ return 200 \"{body}\\n\"; }} }} }}\n"
    )
}

const BROKEN: &str =
    "events {}\nhttp { server { listen 127.0.0.1:1; location / { retrun 200 \"x\"; } } }\n";

/// Polls `cond` until it holds or `deadline` passes.
fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    // A zombie waiting for its reaper counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_none_or(|c| c != 'Z' && c != 'X')
    })
}

/// One server under test: a temp dir with `proton.conf`, a port, and a guard that sends TERM to
/// the master named by the pid file when the test ends, however it ends.
struct Site {
    dir: tempfile::TempDir,
    port: u16,
}

impl Site {
    fn new(body: &str) -> Site {
        check_siblings();
        let dir = tempfile::Builder::new()
            .prefix("protonctl-")
            .tempdir()
            .expect("temp dir");
        let site = Site {
            dir,
            port: free_port(),
        };
        site.write_conf(&config(site.port, body));
        site
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("proton.conf")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("logs/proton.pid")
    }

    fn write_conf(&self, text: &str) {
        std::fs::write(self.conf(), text).expect("write proton.conf");
    }

    /// `protonctl <cmd> -c proton.conf <args>`
    fn ctl(&self, cmd: &str, args: &[&str]) -> Output {
        Command::new(PROTONCTL)
            .arg(cmd)
            .arg("-c")
            .arg(self.conf())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run protonctl")
    }

    fn master_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn status_json(&self) -> Value {
        let out = self.ctl("status", &["--json"]);
        assert_eq!(out.status.code(), Some(0), "status --json: {}", show(&out));
        serde_json::from_slice(&out.stdout).expect("status --json prints JSON")
    }

    fn start(&self) -> i32 {
        let out = self.ctl("start", &[]);
        assert_eq!(out.status.code(), Some(0), "start: {}", show(&out));
        let pid = self.master_pid().expect("a pid file after start");
        assert!(
            stdout(&out).contains(&format!("proton started: master pid {pid}")),
            "start: {}",
            show(&out)
        );
        assert!(alive(pid));
        pid
    }

    fn get(&self, path: &str) -> String {
        http_get(self.port, path)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(pid) = self.master_pid().filter(|&p| p > 1) {
            if alive(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                wait_until(Duration::from_secs(10), || !alive(pid));
            }
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        stdout(o),
        stderr(o)
    )
}

/// The body of `GET path` (asserting a 200).
fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "response: {resp}");
    body.to_string()
}

#[test]
fn check_passes_protonc_through() {
    let site = Site::new("v1");
    let ok = site.ctl("check", &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", show(&ok));
    site.write_conf(BROKEN);
    let bad = site.ctl("check", &[]);
    assert_eq!(bad.status.code(), Some(1), "{}", show(&bad));
    assert!(stderr(&bad).contains("retrun"), "{}", show(&bad));
    assert!(!site.conf().with_extension("ir").exists());
}

#[test]
fn start_status_reload_logs_stop() {
    let site = Site::new("v1");
    let pid = site.start();
    assert_eq!(site.get("/"), "v1\n");

    // A second start is refused and changes nothing.
    let again = site.ctl("start", &[]);
    assert_eq!(again.status.code(), Some(1), "{}", show(&again));
    assert!(
        stderr(&again).contains("already running"),
        "{}",
        show(&again)
    );
    assert_eq!(site.master_pid(), Some(pid));

    // status: human and JSON.
    let st = site.ctl("status", &[]);
    assert_eq!(st.status.code(), Some(0), "{}", show(&st));
    let text = stdout(&st);
    assert!(text.contains(&format!("master pid   {pid}")), "{text}");
    let json = site.status_json();
    assert_eq!(json["pid"].as_i64(), Some(i64::from(pid)), "{json}");
    let workers = json["workers"].as_array().expect("workers array");
    assert!(!workers.is_empty(), "{json}");
    for w in workers {
        let w = w.as_i64().expect("worker pid");
        assert!(text.contains(&w.to_string()), "{text}");
    }
    let gen1 = json["generation"].as_u64().expect("generation");
    let digest1 = json["digest"].as_str().expect("digest").to_string();
    assert!(text.contains(&digest1[..16]), "{text}");
    assert!(text.contains("uptime"), "{text}");

    // reload with a new answer.
    site.write_conf(&config(site.port, "v2"));
    let rl = site.ctl("reload", &[]);
    assert_eq!(rl.status.code(), Some(0), "{}", show(&rl));
    let json = site.status_json();
    let gen2 = json["generation"].as_u64().expect("generation");
    assert!(gen2 > gen1, "generation {gen1} -> {gen2}");
    assert!(
        stdout(&rl).contains(&format!("generation {gen2}")),
        "{}",
        show(&rl)
    );
    assert_ne!(json["digest"].as_str(), Some(digest1.as_str()));
    assert_eq!(json["pid"].as_i64(), Some(i64::from(pid)));
    // The old worker may accept a connection until it has seen QUIT.
    assert!(
        wait_until(Duration::from_secs(10), || (0..5)
            .all(|_| site.get("/") == "v2\n")),
        "v2 not served after the reload"
    );

    // reload with a broken config: the diagnostic, exit 1, and v2 still served.
    site.write_conf(BROKEN);
    let bad = site.ctl("reload", &[]);
    assert_eq!(bad.status.code(), Some(1), "{}", show(&bad));
    assert!(stderr(&bad).contains("retrun"), "{}", show(&bad));
    assert!(
        stderr(&bad).contains("nothing was reloaded"),
        "{}",
        show(&bad)
    );
    assert_eq!(site.get("/"), "v2\n");
    assert_eq!(site.status_json()["generation"].as_u64(), Some(gen2));

    // logs: the error log's last lines, the access log's.
    let logs = site.ctl("logs", &["--tail", "2"]);
    assert_eq!(logs.status.code(), Some(0), "{}", show(&logs));
    assert_eq!(stdout(&logs).lines().count(), 2, "{}", show(&logs));
    site.get("/last-one");
    let mut last = String::new();
    let found = wait_until(Duration::from_secs(10), || {
        let out = site.ctl("logs", &["--access", "--tail", "1"]);
        last = stdout(&out);
        out.status.success() && last.contains("GET /last-one ")
    });
    assert!(found, "access log tail: {last:?}");
    assert_eq!(last.lines().count(), 1, "{last:?}");

    // graceful stop: the master is gone, status says not running (exit 3).
    let stop = site.ctl("stop", &[]);
    assert_eq!(stop.status.code(), Some(0), "{}", show(&stop));
    assert!(stdout(&stop).contains("stopped"), "{}", show(&stop));
    assert!(!alive(pid));
    let st = site.ctl("status", &[]);
    assert_eq!(st.status.code(), Some(3), "{}", show(&st));
    assert!(stdout(&st).contains("not running"), "{}", show(&st));
    let stop = site.ctl("stop", &[]);
    assert_eq!(stop.status.code(), Some(1), "{}", show(&stop));
}

#[test]
fn stop_fast() {
    let site = Site::new("fast");
    let pid = site.start();
    assert_eq!(site.get("/"), "fast\n");
    let stop = site.ctl("stop", &["--fast"]);
    assert_eq!(stop.status.code(), Some(0), "{}", show(&stop));
    assert!(stdout(&stop).contains("stopped"), "{}", show(&stop));
    assert!(!alive(pid));
    assert_eq!(site.ctl("status", &[]).status.code(), Some(3));
}

#[test]
fn start_with_a_broken_config_starts_nothing() {
    let site = Site::new("v1");
    site.write_conf(BROKEN);
    let out = site.ctl("start", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(stderr(&out).contains("retrun"), "{}", show(&out));
    assert!(!site.pid_file().exists());
    assert!(!site.conf().with_extension("ir").exists());
}

#[test]
fn start_reports_a_master_that_exits_early() {
    let site = Site::new("v1");
    // The port is taken, so proton-run fails to bind and exits.
    let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, site.port)).expect("hold the port");
    let out = site.ctl("start", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains("proton-run"), "{}", show(&out));
    assert!(
        err.contains("bind") || err.contains("in use"),
        "{}",
        show(&out)
    );
    assert_eq!(site.ctl("status", &[]).status.code(), Some(3));
    drop(holder);
}

#[test]
fn status_with_a_stale_pid_file_is_not_running() {
    let site = Site::new("v1");
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = child.id();
    child.wait().expect("wait true");
    std::fs::create_dir_all(site.dir.path().join("logs")).expect("logs dir");
    std::fs::write(site.pid_file(), format!("{dead}\n")).expect("pid file");
    let out = site.ctl("status", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(stdout(&out).contains("not running"), "{}", show(&out));
    // ... and start is not refused because of it.
    site.start();
    assert_eq!(site.get("/"), "v1\n");
}

#[test]
fn logs_follow_prints_appended_lines() {
    let site = Site::new("v1");
    site.start();
    let mut follow = Command::new(PROTONCTL)
        .args(["logs", "--access", "--follow", "--tail", "0", "-c"])
        .arg(site.conf())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn protonctl logs --follow");
    let out = follow.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let end = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let mut n = 0;
    // Requests until one shows up: the follower may not have opened the file yet.
    while !seen.iter().any(|l: &String| l.contains("GET /followed-")) && Instant::now() < end {
        site.get(&format!("/followed-{n}"));
        n += 1;
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            seen.push(line);
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(
        seen.iter().any(|l| l.contains("GET /followed-")),
        "followed lines: {seen:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(PROTONCTL)
        .arg("start")
        .output()
        .expect("run protonctl");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = Command::new(PROTONCTL)
        .arg("frobnicate")
        .output()
        .expect("run protonctl");
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn reload_the_master_rejects_shows_the_error_log() {
    let site = Site::new("v1");
    let pid = site.start();
    let gen1 = site.status_json()["generation"].as_u64();
    // A config that compiles, but whose new listener the master cannot bind.
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("hold a port");
    let taken_port = taken.local_addr().expect("local addr").port();
    site.write_conf(&config(taken_port, "v2"));
    let out = site.ctl("reload", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains("reload failed"), "{}", show(&out));
    assert!(err.contains("error.log"), "{}", show(&out));
    assert!(err.contains(&taken_port.to_string()), "{}", show(&out));
    assert_eq!(site.master_pid(), Some(pid));
    assert_eq!(site.status_json()["generation"].as_u64(), gen1);
    assert_eq!(site.get("/"), "v1\n");
    drop(taken);
}

#[test]
fn every_program_answers_version() {
    check_siblings();
    let dir = Path::new(PROTONCTL)
        .parent()
        .expect("protonctl has a directory");
    for name in ["protonctl", "protonc", "proton-run"] {
        for flag in ["-V", "--version"] {
            let out = Command::new(dir.join(name))
                .arg(flag)
                .output()
                .expect("runs");
            assert!(out.status.success(), "{name} {flag}: {}", show(&out));
            let text = stdout(&out);
            assert!(
                text.starts_with(&format!("{name} {}", env!("CARGO_PKG_VERSION"))),
                "{name} {flag}: {text}"
            );
        }
    }
}

/// `--ir`: the config in one directory (/etc/proton), the IR and the relative paths of the
/// running server in another (/var/lib/proton), as the systemd unit and the container lay
/// them out; every command finds the server through the same --ir.
#[test]
fn ir_kept_apart_from_the_config() {
    let site = Site::new("apart");
    let etc = site.dir.path().join("etc");
    let var = site.dir.path().join("var");
    std::fs::create_dir_all(&etc).expect("mkdir etc");
    std::fs::create_dir_all(&var).expect("mkdir var");
    let conf = etc.join("proton.conf");
    let ir = var.join("proton.ir");
    // The pid file where the Site's guard looks for it.
    let write = |body: &str| {
        let text = format!(
            "pid {}/logs/proton.pid;\n{}",
            site.dir.path().display(),
            config(site.port, body)
        );
        std::fs::write(&conf, text).expect("write etc/proton.conf");
    };
    let ctl = |cmd: &str, extra: &[&str]| {
        Command::new(PROTONCTL)
            .arg(cmd)
            .arg("-c")
            .arg(&conf)
            .arg("--ir")
            .arg(&ir)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("run protonctl")
    };
    write("apart-1");
    let out = ctl("start", &[]);
    assert_eq!(out.status.code(), Some(0), "start: {}", show(&out));
    assert!(ir.is_file());
    assert!(!etc.join("proton.ir").exists());
    assert_eq!(site.get("/"), "apart-1\n");
    // Relative paths of the config are resolved against the IR's directory.
    assert!(var.join("logs/error.log").is_file());

    let st = ctl("status", &["--json"]);
    assert_eq!(st.status.code(), Some(0), "status: {}", show(&st));
    let json: Value = serde_json::from_slice(&st.stdout).expect("status --json prints JSON");
    let canon = std::fs::canonicalize(&ir).expect("canonical IR path");
    assert_eq!(json["ir"].as_str(), canon.to_str(), "{json}");

    write("apart-2");
    let rl = ctl("reload", &[]);
    assert_eq!(rl.status.code(), Some(0), "reload: {}", show(&rl));
    assert!(
        wait_until(Duration::from_secs(10), || site.get("/") == "apart-2\n"),
        "apart-2 not served after the reload"
    );
    let stop = ctl("stop", &[]);
    assert_eq!(stop.status.code(), Some(0), "stop: {}", show(&stop));
    assert_eq!(ctl("status", &[]).status.code(), Some(3));
}

#[test]
fn status_watch_and_top_read_the_metrics_page() {
    let site = Site::new("m");
    let port = site.port;
    site.write_conf(&format!(
        "error_log logs/error.log notice;\nevents {{}}\n\
         http {{ access_log off; server {{ listen 127.0.0.1:{port}; server_name example.com; \
         location / {{ return 200 \"m\\n\"; }} location /busy/ {{ return 200 \"b\\n\"; }} \
         location = /metrics {{ proton_metrics; }} }} }}\n"
    ));
    site.start();
    for _ in 0..5 {
        assert_eq!(site.get("/busy/x"), "b\n");
    }
    // The page is found in the IR; two refreshes, the second with rates.
    let out = site.ctl("status", &["--watch", "--interval", "0.2", "--count", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("proton is running").count(), 2, "{text}");
    assert!(text.contains("status       1xx 0  2xx "), "{text}");
    assert!(text.contains("/s"), "the second frame has rates: {text}");
    assert!(
        text.contains("reloads      0 (0 failed), generation 1"),
        "{text}"
    );
    // Plain status shows the figures once.
    let out = site.ctl("status", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).contains("conns        active "),
        "{}",
        show(&out)
    );
    // top: the busiest location first (requests made while it measures).
    let mut child = Command::new(PROTONCTL)
        .args(["top", "-c"])
        .arg(site.conf())
        .args(["--interval", "1", "--count", "1", "-n", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run protonctl top");
    let done = wait_until(Duration::from_secs(20), || {
        let _ = http_get(port, "/busy/y");
        child.try_wait().ok().flatten().is_some()
    });
    assert!(done, "top ended");
    let out = child.wait_with_output().expect("top output");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    let first = text.lines().nth(1).unwrap_or_default();
    assert!(first.ends_with("example.com /busy/"), "{text}");
    // A page that is not there.
    let out = site.ctl(
        "top",
        &[
            "--metrics",
            &format!("http://127.0.0.1:{port}/nope"),
            "--count",
            "1",
            "--interval",
            "0.1",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}
