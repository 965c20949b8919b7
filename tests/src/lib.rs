//! The harness for Proton's integration tests: find the workspace binaries, give each test a
//! private temp dir, pick free loopback ports, start nginx as an oracle, and speak just enough
//! HTTP/1.1 to ask a server which location answered.
//!
//! It must never use a fixed port, never synchronise with a bare sleep (poll a condition with
//! a deadline instead), and never leave a process running after the test that started it.
//! Only std is used, so the harness builds even when the crates under test do not.

#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The path of a workspace binary (`protonc`, `proton-run`) in the cargo target dir.
///
/// A test binary lives in `target/<profile>/deps/`, the workspace binaries one level up.
/// `PROTON_BIN_DIR`, when set, is searched instead (to test another build).
/// Panics with instructions when the binary has not been built.
pub fn bin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("PROTON_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("current_exe");
            let mut dir = exe
                .parent()
                .expect("test binary has a parent dir")
                .to_path_buf();
            if dir.ends_with("deps") {
                dir.pop();
            }
            dir
        }
    };
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        panic!(
            "binary `{name}` not found at {}: build it first: cargo build --workspace --bins",
            path.display()
        );
    }
    path
}

/// A private directory for one test, removed on drop unless `PROTON_KEEP_TMP` is set.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/proton-<label>-<pid>-<n>-<nanos>`.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("proton-{label}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the dir and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dir");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("PROTON_KEEP_TMP").is_some() {
            eprintln!("PROTON_KEEP_TMP: keeping {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A loopback port that was free a moment ago (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// A loopback port where nothing listens, held for as long as the value lives: bound but
/// not listening, so connections to it are refused and no other test's server can take it
/// meanwhile (a port from [`free_port`] may be taken by then, and a "dead" upstream would
/// answer).
pub struct DeadPort {
    _sock: socket2::Socket,
    pub port: u16,
}

/// A [`DeadPort`].
pub fn dead_port() -> DeadPort {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.bind(&std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .expect("binding 127.0.0.1:0");
    let port = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .expect("bound address");
    DeadPort { _sock: sock, port }
}

/// Polls `cond` until it holds or `deadline` has passed; returns whether it held.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    let mut pause = Duration::from_millis(1);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
pub fn port_accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Whether process `pid` holds a socket listening on loopback or wildcard port `port`
/// (from `/proc/net/tcp{,6}` and `/proc/PID/fd`): tells a server's own socket from one that
/// another process bound to the same port.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let local_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if *state == "0A" && local_port == Some(port) {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}

const NGINX: &str = "/usr/sbin/nginx";

/// The nginx binary used as an oracle (`PROTON_NGINX` overrides `/usr/sbin/nginx`).
///
/// Returns `None` only when nginx is missing and `PROTON_SKIP_NGINX=1`; a missing nginx
/// otherwise fails the test, since CI installs it.
pub fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PROTON_NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(NGINX));
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("PROTON_SKIP_NGINX").as_deref() == Ok("1") {
        eprintln!(
            "nginx not found at {}; skipped (PROTON_SKIP_NGINX=1)",
            path.display()
        );
        return None;
    }
    panic!(
        "nginx not found at {}: the differential tests need it as the oracle \
         (apt-get install nginx), or set PROTON_SKIP_NGINX=1 to skip them",
        path.display()
    );
}

/// A running nginx in a private prefix dir, serving a given `http { }` body; killed on drop.
pub struct Nginx {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Nginx {
    /// Starts `binary` with the http block built by `http_body(port)` on a free port and waits
    /// (10 s at most) until the port accepts connections. Retries on another port when the
    /// one picked was taken in the meantime. Panics with nginx's logs when it does not start.
    pub fn start(binary: &Path, http_body: impl Fn(u16) -> String) -> Nginx {
        let mut last_error = String::new();
        for _attempt in 0..3 {
            match Nginx::try_start(binary, &http_body) {
                Ok(nginx) => return nginx,
                Err(StartError::PortTaken(log)) => last_error = log,
                Err(StartError::Failed(msg)) => panic!("{msg}"),
            }
        }
        panic!("nginx could not bind a free port three times:\n{last_error}");
    }

    fn try_start(binary: &Path, http_body: &impl Fn(u16) -> String) -> Result<Nginx, StartError> {
        let dir = TempDir::new("nginx");
        let port = free_port();
        let d = dir.path().display();
        let http = http_body(port);
        let conf = format!(
            "pid {d}/nginx.pid;\n\
             error_log {d}/error.log;\n\
             events {{}}\n\
             http {{\n\
             access_log off;\n\
             client_body_temp_path {d}/tmp/client_body;\n\
             proxy_temp_path {d}/tmp/proxy;\n\
             fastcgi_temp_path {d}/tmp/fastcgi;\n\
             uwsgi_temp_path {d}/tmp/uwsgi;\n\
             scgi_temp_path {d}/tmp/scgi;\n\
             {http}\n\
             }}\n"
        );
        fs::create_dir_all(dir.path().join("tmp")).expect("create nginx tmp dir");
        let conf_path = dir.write("nginx.conf", &conf);
        let stderr = fs::File::create(dir.path().join("stderr.log")).expect("create stderr.log");
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| StartError::Failed(format!("spawning {}: {e}", binary.display())))?;
        let mut nginx = Nginx { child, port, dir };

        let mut exited = None;
        let ready = wait_until(Duration::from_secs(20), || {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                exited = Some(status);
                return true;
            }
            port_accepts(port)
        });
        let logs = || nginx.logs();
        match (ready, exited) {
            (true, None) => Ok(nginx),
            (true, Some(status)) => {
                let logs = logs();
                if logs.contains("Address already in use") {
                    Err(StartError::PortTaken(logs))
                } else {
                    Err(StartError::Failed(format!(
                        "nginx exited early ({status}) with config:\n{conf}\n{logs}"
                    )))
                }
            }
            (false, _) => Err(StartError::Failed(format!(
                "nginx did not accept connections on port {port} within 20 s:\n{}",
                logs()
            ))),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The prefix dir nginx runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// nginx's stderr and error.log, for failure messages.
    pub fn logs(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- nginx stderr ---\n{}--- nginx error.log ---\n{}",
            read("stderr.log"),
            read("error.log")
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum StartError {
    PortTaken(String),
    Failed(String),
}

/// A response as read off the wire by [`request`].
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `GET path` to `127.0.0.1:port` on a new connection and reads the whole response.
///
/// With `Some(host)` the request is HTTP/1.1 with that `Host` and `Connection: close`; with
/// `None` it is HTTP/1.0 without a `Host` header (HTTP/1.1 requires one).
pub fn request(port: u16, host: Option<&str>, path: &str) -> io::Result<Response> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let head = match host {
        Some(host) => format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        None => format!("GET {path} HTTP/1.0\r\n\r\n"),
    };
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// [`request`] reduced to `(status, body)`; panics when the exchange fails.
pub fn get(port: u16, host: Option<&str>, path: &str) -> (u16, String) {
    let resp = request(port, host, path)
        .unwrap_or_else(|e| panic!("GET {path} (Host: {host:?}) on port {port}: {e}"));
    (resp.status, resp.body_text())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Parses a complete HTTP/1.x response: status line, headers, and a body delimited by
/// `Content-Length`, chunked encoding, or the end of the connection.
pub fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            invalid(format!(
                "no end of head in {:?}",
                String::from_utf8_lossy(raw)
            ))
        })?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|e| invalid(format!("head: {e}")))?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    resp.body = if resp
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        decode_chunked(rest)?
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
        if rest.len() < len {
            return Err(invalid(format!(
                "body cut short: {} of {len} bytes",
                rest.len()
            )));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(resp)
}

fn decode_chunked(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("chunk size line not terminated".into()))?;
        let line = String::from_utf8_lossy(&rest[..eol]);
        let size_hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err(invalid("chunk cut short".into()));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A running `proton-run` master (with its workers) on a config compiled by `protonc`.
/// Stopped with SIGQUIT (then SIGKILL after a deadline) on drop.
pub struct Proton {
    child: Option<Child>,
    dir: PathBuf,
    conf: PathBuf,
    ir: PathBuf,
    pub port: u16,
}

impl Proton {
    /// Compiles `conf` (where `{port}` is replaced by a free port and `{dir}` by `dir`) into
    /// `dir/proton.ir` and starts `proton-run` with `workers` workers; waits until its master
    /// listens on the port and it accepts connections (20 s), failing with the error log if
    /// it exits early.
    pub fn start(dir: &Path, conf: &str, workers: usize) -> Proton {
        Proton::start_with_env(dir, conf, workers, &[])
    }

    /// [`Proton::start`] with extra environment variables for proton-run.
    ///
    /// proton-run refuses an address another process serves (`bind() … failed (98: Address
    /// already in use)`), so a port that another test took after [`free_port`] picked it
    /// makes it exit; it is then started again on another port (five attempts). It counts
    /// as started only once the master itself holds a listening socket on the port, so a
    /// test never talks to a server it did not start.
    pub fn start_with_env(dir: &Path, conf: &str, workers: usize, env: &[(&str, &str)]) -> Proton {
        let mut last = String::new();
        for _attempt in 0..5 {
            match Proton::try_start(dir, conf, workers, env) {
                Ok(p) => return p,
                Err(StartError::PortTaken(logs)) => {
                    last = logs;
                    // The next attempt starts with fresh logs.
                    let _ = fs::remove_file(dir.join("logs/error.log"));
                }
                Err(StartError::Failed(msg)) => panic!("{msg}"),
            }
        }
        panic!("proton-run found its port taken five times:\n{last}");
    }

    fn try_start(
        dir: &Path,
        conf: &str,
        workers: usize,
        env: &[(&str, &str)],
    ) -> Result<Proton, StartError> {
        let port = free_port();
        let conf_path = dir.join("proton.conf");
        let ir = dir.join("proton.ir");
        let mut p = Proton {
            child: None,
            dir: dir.to_path_buf(),
            conf: conf_path,
            ir,
            port,
        };
        p.compile(conf);
        let child = Command::new(bin("proton-run"))
            .arg(&p.ir)
            .env("PROTON_WORKERS", workers.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                fs::File::create(dir.join("stderr.log")).expect("stderr log"),
            ))
            .spawn()
            .expect("proton-run starts");
        let pid = child.id();
        p.child = Some(child);
        let mut exited = None;
        let ready = wait_until(Duration::from_secs(20), || {
            if let Some(Ok(Some(status))) = p.child.as_mut().map(Child::try_wait) {
                exited = Some(status);
                return true;
            }
            listens_on(pid, port) && port_accepts(port)
        });
        match (ready, exited) {
            (true, None) => Ok(p),
            (true, Some(status)) => {
                let logs = p.logs();
                p.child = None;
                if !status.success() && logs.contains("Address already in use") {
                    Err(StartError::PortTaken(logs))
                } else {
                    Err(StartError::Failed(format!(
                        "proton-run exited early ({status}) on port {port}:\n{logs}"
                    )))
                }
            }
            (false, _) => Err(StartError::Failed(format!(
                "proton-run did not start on port {port} within 20 s:\n{}",
                p.logs()
            ))),
        }
    }

    /// Writes `conf` (placeholders replaced) and compiles it to the IR path.
    pub fn compile(&self, conf: &str) {
        let text = conf
            .replace("{port}", &self.port.to_string())
            .replace("{dir}", &self.dir.display().to_string());
        fs::write(&self.conf, text).expect("write conf");
        let out = Command::new(bin("protonc"))
            .arg("compile")
            .arg(&self.conf)
            .arg("-o")
            .arg(&self.ir)
            .output()
            .expect("protonc runs");
        assert!(
            out.status.success(),
            "protonc failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal to the master with `kill`.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .stderr(Stdio::null())
            .status();
    }

    /// The master's worker pids (children of the master process).
    pub fn workers(&self) -> Vec<u32> {
        let path = format!("/proc/{}/task/{}/children", self.pid(), self.pid());
        fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// The pid of the single worker, once it runs (the master binds before it forks, so a
    /// test can reach the port before the worker exists); panics after 20 s without one.
    pub fn the_worker(&self) -> u32 {
        assert!(
            wait_until(Duration::from_secs(20), || self.workers().len() == 1),
            "expected one worker, got {:?}\n{}",
            self.workers(),
            self.logs()
        );
        self.workers()[0]
    }

    /// The error log and stderr, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for name in ["stderr.log", "logs/error.log"] {
            if let Ok(t) = fs::read_to_string(self.dir.join(name)) {
                s.push_str(&format!("--- {name}\n{t}"));
            }
        }
        s
    }

    /// Waits for the master to exit; returns whether it did within `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> bool {
        let Some(c) = self.child.as_mut() else {
            return true;
        };
        wait_until(deadline, || matches!(c.try_wait(), Ok(Some(_))))
    }
}

impl Drop for Proton {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if matches!(c.try_wait(), Ok(Some(_))) {
                return;
            }
            let _ = Command::new("kill")
                .arg("-QUIT")
                .arg(c.id().to_string())
                .status();
            let done = wait_until(Duration::from_secs(5), || {
                matches!(c.try_wait(), Ok(Some(_)))
            });
            if !done {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Sends raw bytes on a new connection and reads until the server closes it (or `timeout`).
/// Returns what was read and whether the server closed the connection.
pub fn raw_exchange(port: u16, bytes: &[u8], timeout: Duration) -> (Vec<u8>, bool) {
    let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return (Vec::new(), true);
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A signal (or a stop and continue of the test process) interrupted the read.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return (out, false)
            }
            Err(_) => return (out, true),
        }
    }
}

/// Sends `req` (raw bytes) and parses the one response that comes back before the server
/// closes or 20 s pass (panics with the request and what came when it does not parse).
pub fn exchange_one(port: u16, req: &str) -> Response {
    let (raw, _) = raw_exchange(port, req.as_bytes(), Duration::from_secs(20));
    parse_response(&raw)
        .unwrap_or_else(|e| panic!("{req:?}: {e}: {:?}", String::from_utf8_lossy(&raw)))
}

/// Splits a buffer holding several HTTP responses (bodies framed by Content-Length).
pub fn split_responses(mut raw: &[u8]) -> Vec<Response> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let total = (end + 4 + len).min(raw.len());
        if let Ok(r) = parse_response(&raw[..total]) {
            out.push(r);
        }
        raw = &raw[total..];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Test backend: `proton-testbackend`, the origin server behind the proxy in the proxy tests.
// ---------------------------------------------------------------------------------------------

/// A running `proton-testbackend` on a free loopback port; killed (and reaped) on drop.
///
/// Its routes are listed in `tests/src/bin/proton-testbackend.rs` (`/echo`, `/id`,
/// `/status?code=N`, `/delay?ms=N`, `/chunked`, `/big`, `/ws`, `/stats`, …). Every
/// response carries `X-Backend: NAME`.
pub struct Backend {
    pub addr: SocketAddr,
    pub port: u16,
    child: Child,
}

impl Backend {
    /// Starts a backend called `name` on `127.0.0.1:0` and waits (10 s at most) for the
    /// `listening on ADDR` line it prints once bound. Panics when it does not start.
    pub fn start(name: &str) -> Backend {
        Backend::start_on(name, 0)
    }

    /// [`Backend::start`] on a given loopback port (0: any free one), e.g. to bring a
    /// killed backend back at the same address.
    pub fn start_on(name: &str, port: u16) -> Backend {
        Backend::start_with(name, port, &[])
    }

    /// [`Backend::start_on`] with extra arguments (e.g. `--id-delay-ms 20`).
    pub fn start_with(name: &str, port: u16, extra: &[&str]) -> Backend {
        use std::io::BufRead;

        let path = bin("proton-testbackend");
        let listen = format!("127.0.0.1:{port}");
        let mut child = Command::new(&path)
            .args(["--listen", listen.as_str(), "--name", name])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", path.display()));
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("proton-testbackend: no stdout pipe");
        };
        // The first line is read on a thread so that the wait has a deadline; the thread then
        // drains stdout until the backend exits, so the pipe never closes under it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = io::BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(Ok(line))) => line,
            outcome => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "proton-testbackend {name:?} did not report its address within 20 s \
                     (got {outcome:?}; exit status {status:?})"
                );
            }
        };
        let addr: Option<SocketAddr> = line
            .strip_prefix("listening on ")
            .and_then(|a| a.trim().parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("proton-testbackend {name:?}: unexpected first line {line:?}");
        };
        Backend {
            addr,
            port: addr.port(),
            child,
        }
    }

    /// `(connections, requests)` the backend has accepted and served so far, from `/stats`
    /// (the `/stats` request itself counts as one connection and one request).
    pub fn stats(&self) -> (u64, u64) {
        let (status, body) = get(self.port, Some("backend"), "/stats");
        assert_eq!(status, 200, "/stats answered {status}: {body}");
        let field = |key: &str| {
            body.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
                .unwrap_or_else(|| panic!("no {key}= in /stats body {body:?}"))
        };
        (field("connections"), field("requests"))
    }

    /// Waits (up to `deadline`) until the backend has accepted a connection since `before`
    /// (a `stats()` taken earlier) other than the `/stats` probes themselves, each of which
    /// is a connection too.
    pub fn wait_new_connection(&self, before: (u64, u64), deadline: Duration) -> bool {
        let mut probes = 0;
        wait_until(deadline, || {
            probes += 1;
            self.stats().0.saturating_sub(before.0) > probes
        })
    }

    /// Kills the backend and waits for it; does nothing when it has already exited.
    pub fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends several raw requests on one connection, one at a time, and reads each response
/// (framed by `Content-Length` or chunked encoding) before sending the next one.
/// Returns the responses read; stops early when the server closes the connection.
pub fn keep_alive_exchange(port: u16, requests: &[&[u8]]) -> io::Result<Vec<Response>> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for req in requests {
        s.write_all(req)?;
        loop {
            if let Some(len) = complete_response_len(&buf) {
                out.push(parse_response(&buf[..len])?);
                buf.drain(..len);
                break;
            }
            let mut chunk = [0u8; 65536];
            let n = match s.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => other?,
            };
            if n == 0 {
                return Ok(out);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(out)
}

/// The length of the first complete response in `raw` (body framed by `Content-Length`,
/// chunked encoding, or absent), or `None` when more bytes are needed.
fn complete_response_len(raw: &[u8]) -> Option<usize> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let value = |name: &str| {
        head.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_string())
    };
    if value("transfer-encoding").is_some_and(|te| te == "chunked") {
        let mut pos = end;
        loop {
            let eol = raw[pos..].windows(2).position(|w| w == b"\r\n")? + pos;
            let line = String::from_utf8_lossy(&raw[pos..eol]);
            let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
            pos = eol + 2;
            if size == 0 {
                // Trailer fields, up to the empty line.
                loop {
                    let eol = raw[pos..].windows(2).position(|w| w == b"\r\n")? + pos;
                    let empty = eol == pos;
                    pos = eol + 2;
                    if empty {
                        return Some(pos);
                    }
                }
            }
            pos += size + 2;
            if pos > raw.len() {
                return None;
            }
        }
    }
    let len: usize = value("content-length").map_or(Some(0), |v| v.parse().ok())?;
    (raw.len() >= end + len).then_some(end + len)
}

/// Closes a WebSocket and reads until the peer's close completes; panics on an unclean end.
pub fn ws_close_cleanly<S: Read + Write>(ws: &mut tungstenite::WebSocket<S>) {
    ws.close(None).expect("close");
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
}

/// Compiles `conf` (it must compile) into `ir`, starts proton-run on it with one worker and
/// returns its exit code and standard error: for configurations the runtime must refuse.
pub fn run_refused(conf: &Path, ir: &Path) -> (Option<i32>, String) {
    let compiled = Command::new(bin("protonc"))
        .arg("compile")
        .arg(conf)
        .arg("-o")
        .arg(ir)
        .output()
        .expect("protonc runs");
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let out = Command::new(bin("proton-run"))
        .arg(ir)
        .env("PROTON_WORKERS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("proton-run runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fails, listing each one, when any case got a different answer from Proton (`ours`) than
/// from nginx (`theirs`); `logs` (Proton's) go in the message.
pub fn assert_same_as_nginx<C: std::fmt::Debug>(
    cases: &[C],
    ours: &[String],
    theirs: &[String],
    logs: &str,
) {
    let diffs: Vec<String> = cases
        .iter()
        .zip(ours.iter().zip(theirs))
        .filter(|(_, (a, b))| a != b)
        .map(|(c, (a, b))| format!("{c:?}\n  proton: {a}\n  nginx:  {b}"))
        .collect();
    assert!(
        diffs.is_empty(),
        "differences with nginx:\n{}\n{logs}",
        diffs.join("\n")
    );
}

/// Every regular file under `dir`, at any depth, sorted (none when `dir` is missing).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_body() {
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\ns1-L7").unwrap();
        assert_eq!((r.status, r.body_text().as_str()), (200, "s1-L7"));
        assert_eq!(r.header("x-a"), Some("b"));
    }

    #[test]
    fn parses_chunked_body() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
    }

    #[test]
    fn reads_body_to_end_without_length() {
        let r = parse_response(b"HTTP/1.0 404 Not Found\r\n\r\nnope").unwrap();
        assert_eq!((r.status, r.body), (404, b"nope".to_vec()));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_response(b"hello\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab").is_err());
    }
}
