//! nginx's process globals and logging directives, end to end.
//!
//! * Logging as nginx writes it (the same http block runs in nginx 1.22 and in proton-run
//!   and the files are compared): `access_log … if=`, `escape=none|json`,
//!   `open_log_file_cache` (max, min_uses; a cached file keeps being written after its
//!   directory is renamed, an uncached one is lost), `error_log` per location and
//!   `log_not_found off`, `access_log … gzip`.
//! * The process globals: `master_process off` (one process serves), `daemon on` (the
//!   started process exits, a session leader in the background serves and writes the pid
//!   file), `worker_cpu_affinity`, `env`, `working_directory`, `worker_rlimit_core`, and
//!   `user` (as root, workers run as that user; the master stays root).

use proton_tests::{
    bin, get, nginx_binary, port_accepts, run_refused, wait_until, Nginx, Proton, TempDir,
};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The logging part of the http block both servers run; log paths are relative to the
/// prefix (nginx's `-p`, proton-run's IR directory). The server's `listen` is added by the
/// caller. First the http level:
const LOG_FORMATS: &str = r#"
    log_format test "$uri:$status";
    log_format none escape=none $uri$arg_b$arg_c;
    log_format json escape=json $uri$arg_b$arg_c;
    log_format default escape=default $uri$arg_b$arg_c;
"#;

/// The server part of it.
const LOGGING: &str = r#"
    location /filtered {
        access_log filtered.log test if=$arg_logme;
        return 200 OK;
    }
    location /complex {
        access_log complex.log test if=$arg_logme$arg_logmetoo;
        return 200 OK;
    }
    location /escape {
        access_log none.log none;
        access_log json.log json;
        access_log default.log default;
        return 200 OK;
    }
    location /cache {
        open_log_file_cache max=3 inactive=20s valid=1m min_uses=2;
        access_log dir/cache_${arg_logname} test;
        return 200 OK;
    }
    location /nf/ {
        error_log nf.log;
        location /nf/off/ {
            error_log nf_off.log;
            log_not_found off;
        }
    }
"#;

/// Requests sent to both servers, in order; `None` renames `dir` to `dir_moved` (and
/// back at the end).
const REQUESTS: &[Option<&str>] = &[
    Some("/filtered"),
    Some("/filtered/empty?logme="),
    Some("/filtered/zero?logme=0"),
    Some("/filtered/good?logme=1"),
    Some("/filtered/work?logme=yes"),
    Some("/complex/none"),
    Some("/complex/one?logme=1"),
    Some("/complex/two?logmetoo=1"),
    Some("/complex/both0?logme=0&logmetoo=0"),
    Some("/complex/neither?logme=&logmetoo="),
    Some("/escape/%221%20%1B%1C%20%22?c=2"),
    Some("/cache?logname=lru"),
    Some("/cache?logname=lru"),
    Some("/cache?logname=once"),
    Some("/cache?logname=first"),
    Some("/cache?logname=first"),
    Some("/cache?logname=second"),
    Some("/cache?logname=second"),
    None,
    Some("/cache?logname=lru"),
    Some("/cache?logname=once"),
    Some("/cache?logname=first"),
    Some("/cache?logname=second"),
    Some("/nf/missing.html"),
    Some("/nf/off/missing.html"),
];

/// The files compared, and for the error logs only whether a missing-file line is there.
const LOG_FILES: &[&str] = &[
    "filtered.log",
    "complex.log",
    "none.log",
    "json.log",
    "default.log",
    "dir/cache_lru",
    "dir/cache_once",
    "dir/cache_first",
    "dir/cache_second",
];

/// Sends [`REQUESTS`] to `port` with `dir` as the prefix, and returns what the logs hold:
/// each file of [`LOG_FILES`], then whether each error log has a "No such file" line.
fn run_requests(port: u16, dir: &Path) -> Vec<(String, String)> {
    std::fs::create_dir_all(dir.join("dir")).expect("mkdir dir");
    for r in REQUESTS {
        match r {
            Some(uri) => {
                let (status, _) = get(port, Some("localhost"), uri);
                assert!(status == 200 || status == 404, "{uri}: {status}");
            }
            None => std::fs::rename(dir.join("dir"), dir.join("dir_moved")).expect("rename"),
        }
    }
    std::fs::rename(dir.join("dir_moved"), dir.join("dir")).expect("rename back");
    // The last request's lines are written after its response: wait for them.
    let missing = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_default()
            .contains("No such file or directory")
    };
    wait_until(Duration::from_secs(10), || missing("nf.log"));
    let mut out: Vec<(String, String)> = LOG_FILES
        .iter()
        .map(|f| {
            let text =
                std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| format!("<{}>", e.kind()));
            (f.to_string(), text)
        })
        .collect();
    for f in ["nf.log", "nf_off.log"] {
        out.push((
            format!("{f} has a missing-file line"),
            missing(f).to_string(),
        ));
    }
    out
}

/// `access_log if=`, the escapes, `open_log_file_cache` and per-location `error_log` with
/// `log_not_found`, as nginx 1.22 writes them.
#[test]
fn logs_as_nginx() {
    let t = TempDir::new("globals-logs");
    // nginx writes a log whose path has variables only when the root exists.
    std::fs::create_dir_all(t.path().join("html")).expect("mkdir html");
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\nroot {{dir}}/html;\n{LOG_FORMATS}\nserver {{ listen 127.0.0.1:{{port}}; server_name localhost;\n{LOGGING}\n}}\n}}\n"
    );
    let p = Proton::start(t.path(), &conf, 1);
    let ours = run_requests(p.port, t.path());
    let main_log = std::fs::read_to_string(t.path().join("logs/error.log")).unwrap_or_default();
    assert!(
        !main_log.contains("missing.html"),
        "a request's error lines go to its location's error_log only:\n{main_log}"
    );

    // What nginx-tests' access_log.t expects of the same requests.
    let expect = |f: &str| {
        ours.iter()
            .find(|(n, _)| n == f)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    assert_eq!(
        expect("filtered.log"),
        "/filtered/good:200\n/filtered/work:200\n"
    );
    assert_eq!(
        expect("complex.log"),
        "/complex/one:200\n/complex/two:200\n/complex/both0:200\n"
    );
    assert_eq!(expect("json.log"), "/escape/\\\"1 \\u001B\\u001C \\\"2\n");
    assert_eq!(expect("none.log"), "/escape/\"1 \u{1b}\u{1c} \"2\n");
    assert_eq!(expect("dir/cache_lru").lines().count(), 2, "{ours:?}");
    assert_eq!(expect("dir/cache_once").lines().count(), 1, "{ours:?}");
    assert_eq!(expect("dir/cache_first").lines().count(), 3, "{ours:?}");
    assert_eq!(expect("dir/cache_second").lines().count(), 3, "{ours:?}");

    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| {
        format!(
            "root {}/html;\n{LOG_FORMATS}\nserver {{ listen 127.0.0.1:{port}; server_name localhost;\n{LOGGING}\n}}\n",
            t.path().display()
        )
    });
    let theirs = run_requests(n.port(), n.dir());
    for ((name, a), (_, b)) in ours.iter().zip(&theirs) {
        assert_eq!(a, b, "{name}: proton-run vs nginx\n{}", n.logs());
    }
}

/// `access_log … gzip flush=`: the file is a gzip stream (one member per flush) that holds
/// the lines.
#[test]
fn gzip_access_log() {
    let t = TempDir::new("globals-gzip");
    let conf = "events {}\nhttp {\nlog_format test \"$uri:$status\";\nserver { listen 127.0.0.1:{port};\naccess_log {dir}/c.log.gz test gzip buffer=1m flush=100ms;\nreturn 200 OK;\n}\n}\n";
    let p = Proton::start(t.path(), conf, 1);
    for _ in 0..3 {
        assert_eq!(get(p.port, None, "/compressed").0, 200);
    }
    let path = t.path().join("c.log.gz");
    let mut text = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        let out = Command::new("gzip").arg("-dc").arg(&path).output();
        text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        text.lines().count() == 3
    });
    assert!(ok, "gzip -dc gave {text:?}\n{}", p.logs());
    assert!(text.lines().all(|l| l == "/compressed:200"), "{text:?}");
}

/// `master_process off`: the started process serves by itself, forks no worker, reloads
/// on HUP in the same process, and stops on QUIT.
#[test]
fn master_process_off_serves_in_one_process() {
    let t = TempDir::new("globals-single");
    let conf = "master_process off;\ndaemon off;\nworker_processes 4;\nworker_shutdown_timeout 10ms;\nerror_log {dir}/logs/error.log info;\nevents {}\nhttp {\nserver { listen 127.0.0.1:{port}; return 200 one; }\n}\n";
    let mut p = Proton::start(t.path(), conf, 4);
    for _ in 0..20 {
        assert_eq!(get(p.port, None, "/").0, 200, "{}", p.logs());
    }
    assert!(p.workers().is_empty(), "forked {:?}", p.workers());

    // HUP reloads in the same process: a connection waiting for its first request is
    // closed once worker_shutdown_timeout passes (nginx-tests' worker_shutdown_timeout.t),
    // and the new configuration answers on the same port.
    use std::io::Read;
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", p.port)).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    p.compile(&conf.replace("return 200 one;", "return 200 two;"));
    p.signal("HUP");
    let mut buf = [0u8; 16];
    assert_eq!(
        idle.read(&mut buf).unwrap_or(0),
        0,
        "the idle connection is closed"
    );
    assert!(
        wait_until(Duration::from_secs(10), || get(p.port, None, "/").1
            == "two"),
        "{}",
        p.logs()
    );
    assert!(p.workers().is_empty(), "forked {:?}", p.workers());
    p.signal("QUIT");
    assert!(p.wait_exit(Duration::from_secs(10)), "{}", p.logs());
}

/// `daemon on`: proton-run returns at once; a background process that leads its own
/// session serves and writes the pid file, and stops on QUIT.
#[test]
fn daemon_on_detaches() {
    let t = TempDir::new("globals-daemon");
    let port = proton_tests::free_port();
    let conf = format!(
        "daemon on;\nerror_log {dir}/logs/error.log info;\nevents {{}}\nhttp {{\nserver {{ listen 127.0.0.1:{port}; return 200 bg; }}\n}}\n",
        dir = t.path().display()
    );
    let conf_path = t.write("proton.conf", &conf);
    let ir = t.path().join("proton.ir");
    let out = Command::new(bin("protonc"))
        .arg("compile")
        .arg(&conf_path)
        .arg("-o")
        .arg(&ir)
        .output()
        .expect("protonc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid_file = t.path().join("run.pid");
    let status = Command::new(bin("proton-run"))
        .arg("--pid")
        .arg(&pid_file)
        .arg(&ir)
        .env("PROTON_WORKERS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("proton-run");
    assert!(
        status.success(),
        "the started process exits with 0: {status}"
    );
    let mut pid = 0u32;
    assert!(
        wait_until(Duration::from_secs(20), || {
            pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            pid != 0 && port_accepts(port)
        }),
        "no pid file or not serving"
    );
    // Whatever happens below, the daemon (which no harness tracks) is stopped.
    struct Stop(u32);
    impl Drop for Stop {
        fn drop(&mut self) {
            // Only while that pid is still our proton-run (not a reused pid).
            let ours = std::fs::read(format!("/proc/{}/cmdline", self.0))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("proton-run"));
            if !ours {
                return;
            }
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
    let _stop = Stop(pid);
    // The daemon leads its own session (setsid) and stays alive after its parent exited.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    assert_eq!(
        fields.get(3),
        Some(&pid.to_string().as_str()),
        "session id: {stat}"
    );
    assert_eq!(get(port, None, "/"), (200, "bg".to_string()));
    // Its standard error is the error log file (it has no terminal).
    let fd2 = std::fs::read_link(format!("/proc/{pid}/fd/2")).unwrap_or_default();
    assert_eq!(fd2, t.path().join("logs/error.log"), "stderr of the daemon");
    let _ = Command::new("kill")
        .args(["-QUIT", &pid.to_string()])
        .status();
    assert!(
        wait_until(Duration::from_secs(10), || !Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))),
        "the daemon did not stop on QUIT"
    );
}

/// The value of `key:` in /proc/PID/status.
fn proc_status(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// `worker_cpu_affinity` masks pin each worker to its CPU; `auto` spreads them.
#[test]
fn worker_cpu_affinity_pins_workers() {
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    if ncpu < 2 {
        eprintln!("one CPU: worker_cpu_affinity not testable here");
        return;
    }
    for (directive, want) in [
        ("01 10", ["0", "1"]),
        ("auto", ["0", "1"]),
        ("10", ["1", "1"]),
    ] {
        let t = TempDir::new("globals-affinity");
        let conf = format!(
            "worker_cpu_affinity {directive};\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\nserver {{ listen 127.0.0.1:{{port}}; return 200; }}\n}}\n"
        );
        let p = Proton::start(t.path(), &conf, 2);
        assert!(
            wait_until(Duration::from_secs(20), || p.workers().len() == 2),
            "{}",
            p.logs()
        );
        let mut got: Vec<String> = p
            .workers()
            .iter()
            .map(|w| proc_status(*w, "Cpus_allowed_list:"))
            .collect();
        got.sort();
        assert_eq!(got, want, "worker_cpu_affinity {directive}\n{}", p.logs());
    }
}

/// `working_directory`, `worker_rlimit_core` and `worker_priority` shape the workers (with `env` lines, which
/// /proc cannot show: a process's environ there is the one it was started with; the
/// runtime's unit test `process::tests::environment` checks them).
#[test]
fn worker_directory_and_core_limit() {
    let t = TempDir::new("globals-env");
    let wd = t.path().join("wd");
    std::fs::create_dir_all(&wd).expect("mkdir");
    let conf = format!(
        "env KEEP_ME;\nenv SET_ME=set;\nworking_directory {};\nworker_rlimit_core 10m;\nworker_priority +5;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\nserver {{ listen 127.0.0.1:{{port}}; return 200; }}\n}}\n",
        wd.display()
    );
    let p = Proton::start_with_env(t.path(), &conf, 1, &[("KEEP_ME", "kept"), ("DROP_ME", "x")]);
    let w = p.the_worker();
    let cwd = std::fs::read_link(format!("/proc/{w}/cwd")).expect("cwd");
    assert_eq!(cwd, wd.canonicalize().expect("canonical"));
    let limits = std::fs::read_to_string(format!("/proc/{w}/limits")).unwrap_or_default();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_default();
    assert!(core.contains("10485760"), "{core}");
    // /proc/PID/stat: the nice value is the 19th field (the 17th after the command).
    let stat = std::fs::read_to_string(format!("/proc/{w}/stat")).unwrap_or_default();
    let nice = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(16))
        .unwrap_or_default()
        .to_string();
    assert_eq!(nice, "5", "{stat}");
    assert_eq!(get(p.port, None, "/").0, 200);
}

/// `user nobody nogroup` as root: workers run as nobody:nogroup with no other groups, the
/// master stays root, and they still write the logs opened before. `user nobody` alone
/// needs a group called nobody, which Debian does not have: an error at start, as nginx's
/// `getgrnam("nobody") failed`. Not root: ignored with nginx's warning.
#[test]
fn user_drops_privileges() {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let t = TempDir::new("globals-user");
    let conf = "user nobody nogroup;\nerror_log {dir}/logs/error.log info;\nevents {}\nhttp {\naccess_log {dir}/logs/access.log;\nserver { listen 127.0.0.1:{port}; return 200 ok; }\n}\n";
    let p = Proton::start(t.path(), conf, 1);
    let w = p.the_worker();
    assert_eq!(get(p.port, None, "/").0, 200);
    if !root {
        assert!(
            wait_until(Duration::from_secs(5), || p.logs().contains(
                "makes sense only if the master process runs with super-user"
            )),
            "{}",
            p.logs()
        );
        return;
    }
    let uid = proc_status(w, "Uid:");
    let gid = proc_status(w, "Gid:");
    let nobody = uid.split_whitespace().all(|u| u == "65534");
    assert!(nobody, "worker Uid: {uid}");
    assert!(
        gid.split_whitespace().all(|g| g == "65534"),
        "worker Gid: {gid}"
    );
    assert_eq!(proc_status(w, "Groups:"), "65534", "supplementary groups");
    assert!(
        proc_status(p.pid(), "Uid:").starts_with('0'),
        "the master stays root"
    );
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(
            t.path().join("logs/access.log")
        )
        .is_ok_and(|s| s.contains("GET / "))),
        "the worker still writes its access log"
    );
    // A rotation: the file is moved away and USR1 makes everyone reopen. The master (root)
    // creates the new files and gives them to the workers' user, as nginx's does; a worker
    // could not create them in a root-owned directory itself.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let logs = t.path().join("logs");
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::rename(logs.join("access.log"), logs.join("access.log.1")).expect("rotate");
    p.signal("USR1");
    assert!(
        wait_until(Duration::from_secs(10), || {
            let _ = get(p.port, None, "/after-rotation");
            std::fs::read_to_string(logs.join("access.log"))
                .is_ok_and(|s| s.contains("GET /after-rotation "))
        }),
        "no line in the new access.log after USR1\n{}",
        p.logs()
    );
    drop(p);

    let t = TempDir::new("globals-user-group");
    t.write(
        "proton.conf",
        "user nobody;\nevents {}\nhttp {\nserver { listen 127.0.0.1:1; return 200; }\n}\n",
    );
    let ir = t.path().join("proton.ir");
    let (code, err) = run_refused(&t.path().join("proton.conf"), &ir);
    assert_ne!(code, Some(0));
    assert!(err.contains("getgrnam(\"nobody\") failed"), "{err}");
}

/// Sends `GET /` from the local address `from` to 127.0.0.1:`port` and reads the answer.
fn get_from(from: std::net::Ipv4Addr, port: u16) -> String {
    use socket2::{Domain, Socket, Type};
    use std::io::{Read, Write};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.bind(&std::net::SocketAddr::from((from, 0)).into())
        .expect("bind client address");
    s.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect");
    let mut s: std::net::TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// `debug_connection`: connections from the named client log at debug level in every
/// error_log of their request, whatever its level (nginx-tests' debug_connection.t, with
/// 127.0.0.2 as the debugged client instead of ::1); others do not.
#[test]
fn debug_connection_logs_one_client() {
    let t = TempDir::new("globals-debug");
    let conf = "error_log {dir}/logs/error.log error;\nevents { debug_connection 127.0.0.2; }\nhttp {\nerror_log {dir}/debug1.log alert;\nerror_log {dir}/debug2.log alert;\nserver { listen 127.0.0.1:{port}; return 200 ok; }\n}\n";
    let p = Proton::start(t.path(), conf, 1);
    let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
    let r = get_from([127, 0, 0, 1].into(), p.port);
    assert!(
        r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"),
        "{r:?}\n{}",
        p.logs()
    );
    // The line of the next request shows when the first one's would have been written.
    assert!(get_from([127, 0, 0, 2].into(), p.port).contains(" 200 OK"));
    assert!(
        wait_until(Duration::from_secs(10), || read("debug1.log")
            .contains("http finalize request: 200")
            && read("debug2.log").contains("http finalize request: 200")),
        "debug lines missing:\n{}\n{}",
        read("debug1.log"),
        read("debug2.log")
    );
    for f in ["debug1.log", "debug2.log"] {
        let text = read(f);
        assert!(
            text.contains("[debug]"),
            "{f}: {text}\nmain: {}",
            read("logs/error.log")
        );
        assert!(
            text.contains("http request line: \"GET / HTTP/1.0\""),
            "{f}: {text}\nmain: {}",
            read("logs/error.log")
        );
        assert_eq!(
            text.matches("http request line").count(),
            1,
            "only the debugged client's request: {f}: {text}"
        );
    }
    assert!(
        !read("logs/error.log").contains("request line"),
        "{}",
        read("logs/error.log")
    );

    // nginx 1.22 (built --with-debug, as Debian's is) with the same events and http
    // blocks: debug lines for the same client only, in both http-level logs.
    let Some(nginx) = nginx_binary() else { return };
    let n = TempDir::new("globals-debug-nginx");
    let port = proton_tests::free_port();
    let conf = format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log error;\nevents {{ debug_connection 127.0.0.2; }}\nhttp {{\naccess_log off;\nclient_body_temp_path {d}/tmp;\nproxy_temp_path {d}/tmp;\nfastcgi_temp_path {d}/tmp;\nuwsgi_temp_path {d}/tmp;\nscgi_temp_path {d}/tmp;\nerror_log {d}/debug1.log alert;\nerror_log {d}/debug2.log alert;\nserver {{ listen 127.0.0.1:{port}; return 200 ok; }}\n}}\n",
        d = n.path().display()
    );
    let conf_path = n.write("nginx.conf", &conf);
    let mut child = Command::new(&nginx)
        .arg("-p")
        .arg(n.path())
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "daemon off; master_process off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let up = wait_until(Duration::from_secs(20), || port_accepts(port));
    let nread = |f: &str| std::fs::read_to_string(n.path().join(f)).unwrap_or_default();
    let logged = up && {
        let _ = get_from([127, 0, 0, 1].into(), port);
        // The debugged client's lines show when the other's would have been written.
        let _ = get_from([127, 0, 0, 2].into(), port);
        wait_until(Duration::from_secs(10), || {
            nread("debug1.log").contains("http finalize request")
                && nread("debug2.log").contains("http finalize request")
        })
    };
    let (d1, d2) = (nread("debug1.log"), nread("debug2.log"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(logged, "nginx: {}\n{d1}", nread("error.log"));
    for (f, text) in [("debug1.log", &d1), ("debug2.log", &d2)] {
        assert!(text.contains("[debug]"), "nginx {f}: {text}");
        assert_eq!(
            text.matches("http request line: \"GET / HTTP/1.0\"")
                .count(),
            1,
            "nginx {f}: only the debugged client's request: {text}"
        );
    }
}

/// Several `error_log` lines in the main context: each file gets the lines its level
/// allows (nginx writes to all of them; only the first was used before).
#[test]
fn every_main_error_log_is_written() {
    let t = TempDir::new("globals-main-logs");
    let conf = "error_log {dir}/logs/error.log error;\nerror_log {dir}/logs/info.log info;\nevents {}\nhttp {\nserver { listen 127.0.0.1:{port}; root {dir}/html; }\n}\n";
    let p = Proton::start(t.path(), conf, 1);
    assert_eq!(get(p.port, None, "/missing.html").0, 404);
    let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(10), || read("logs/error.log")
            .contains("missing.html")
            && read("logs/info.log").contains("missing.html")),
        "{}\n--- info.log\n{}",
        p.logs(),
        read("logs/info.log")
    );
    assert!(
        read("logs/info.log").contains("started"),
        "{}",
        read("logs/info.log")
    );
    assert!(
        !read("logs/error.log").contains("started"),
        "{}",
        read("logs/error.log")
    );
}
