//! Response buffering (`proxy_buffering`, `proxy_max_temp_file_size`, `proxy_temp_path`,
//! `X-Accel-Buffering`): a backend that writes a large response and reports how far it got,
//! a client that does not read (a small receive buffer, so the kernel cannot hide the
//! stall), and what reaches the client once it reads.

use proton_tests::{wait_until, Proton, TempDir};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The response body: 24 MB of a pattern (more than the kernel's socket buffers hold).
const TOTAL: usize = 24 << 20;

fn byte(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

#[derive(Default, Debug, Clone)]
struct Progress {
    /// Body bytes written to the proxy.
    written: usize,
    /// A write made no progress for a whole second at this many bytes (a proxy that reads
    /// at all would have taken something in that time).
    stalled_at: Option<usize>,
    /// The proxy closed the connection after the whole response was written.
    closed_after_all: bool,
}

/// A backend answering one request at a time with `TOTAL` bytes (and `extra` header
/// lines), recording its progress.
fn backend(extra: &'static str) -> (u16, Arc<Mutex<Progress>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let state = Arc::new(Mutex::new(Progress::default()));
    let st = state.clone();
    std::thread::spawn(move || {
        let body: Vec<u8> = (0..TOTAL).map(byte).collect();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            *st.lock().expect("state") = Progress::default();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
            let h = format!("HTTP/1.1 200 OK\r\nContent-Length: {TOTAL}\r\n{extra}\r\n");
            if s.write_all(h.as_bytes()).is_err() {
                continue;
            }
            let mut at = 0;
            while at < TOTAL {
                match s.write(&body[at..(at + 65536).min(TOTAL)]) {
                    Ok(0) => break,
                    Ok(n) => {
                        at += n;
                        st.lock().expect("state").written = at;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        let mut g = st.lock().expect("state");
                        if g.stalled_at.is_none() {
                            g.stalled_at = Some(at);
                        }
                    }
                    Err(_) => break,
                }
            }
            if at < TOTAL {
                continue;
            }
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            if let Ok(0) = s.read(&mut buf) {
                st.lock().expect("state").closed_after_all = true;
            }
        }
    });
    (port, state)
}

/// A client with a small receive buffer that sends `GET /` and reads nothing yet.
fn stalled_client(port: u16) -> TcpStream {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(16 * 1024).expect("rcvbuf");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    sock.connect(&addr.into()).expect("connect");
    let mut s: TcpStream = sock.into();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");
    s
}

/// Reads the whole response of `s`: its body, checked byte by byte against the pattern.
fn read_all(mut s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut all = Vec::with_capacity(TOTAL + 1024);
    s.read_to_end(&mut all).expect("read");
    let at = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&all[..at]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("x-accel"), "{head}");
    let body = &all[at + 4..];
    assert_eq!(body.len(), TOTAL, "body length");
    if let Some(i) = (0..TOTAL).find(|&i| body[i] != byte(i)) {
        panic!("body differs at byte {i}");
    }
}

fn start(dir: &std::path::Path, bport: u16, extra: &str) -> Proton {
    let conf = format!(
        "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:{{port}};\n  location / {{\n   proxy_pass http://127.0.0.1:{bport};\n   proxy_temp_path {}/spill 1 2;\n   {extra}\n  }}\n }}\n}}\n",
        dir.display()
    );
    Proton::start(dir, &conf, 1)
}

/// The worker's open files under `dir`, as /proc shows them.
fn open_files_under(pid: u32, dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.display().to_string();
                if t.starts_with(&dir.display().to_string()) {
                    out.push(t);
                }
            }
        }
    }
    out
}

/// With `sendfile on` the part in the temporary file goes out with sendfile(2), else read
/// back through the buffer: the same bytes either way.
#[test]
fn a_buffered_response_frees_the_upstream_while_the_client_is_slow() {
    for extra in ["", "sendfile on;"] {
        buffered_response_with(extra);
    }
}

fn buffered_response_with(extra: &str) {
    let t = TempDir::new("proxy-buffering-on");
    let dir = t.path().to_path_buf();
    let (bport, progress) = backend("");
    let p = start(&dir, bport, extra);
    let client = stalled_client(p.port);
    // The whole response is read from the backend (and its connection closed: HTTP/1.0
    // towards it) although the client has taken almost nothing.
    assert!(
        wait_until(Duration::from_secs(30), || progress
            .lock()
            .expect("state")
            .closed_after_all),
        "the backend was not let go: {:?}\n{}",
        progress.lock().expect("state"),
        p.logs()
    );
    // The part beyond proxy_buffers waits in a temporary file under proxy_temp_path that
    // is already unlinked: open in the worker, absent from the directory.
    let spill = dir.join("spill");
    let open = open_files_under(p.the_worker(), &spill);
    assert!(
        open.iter().any(|f| f.ends_with(" (deleted)")),
        "no unlinked temporary file open: {open:?}"
    );
    assert_eq!(
        proton_tests::files_under(&spill),
        Vec::<std::path::PathBuf>::new()
    );
    read_all(client);
    assert!(open_files_under(p.the_worker(), &spill).is_empty());
}

#[test]
fn unbuffered_and_bounded_responses_hold_the_upstream() {
    let t = TempDir::new("proxy-buffering-off");
    let dir = t.path().to_path_buf();
    for (extra, header) in [
        ("proxy_buffering off;", ""),
        ("proxy_max_temp_file_size 1m;", ""),
        ("proxy_max_temp_file_size 0;", ""),
        ("", "X-Accel-Buffering: no\r\n"),
    ] {
        let (bport, progress) = backend(header);
        let p = start(&dir, bport, extra);
        let client = stalled_client(p.port);
        // The backend stalls: the proxy reads only as the client takes the response
        // (with a bounded file, once the file is full).
        assert!(
            wait_until(Duration::from_secs(30), || progress
                .lock()
                .expect("state")
                .stalled_at
                .is_some()),
            "{extra}{header}: the backend never stalled: {:?}",
            progress.lock().expect("state")
        );
        let g = progress.lock().expect("state").clone();
        assert!(
            g.written < TOTAL && !g.closed_after_all,
            "{extra}{header}: {g:?}"
        );
        if extra.contains("1m") {
            // The file was used, up to its limit: the backend got past 1 MB.
            assert!(g.written > 1 << 20, "{extra}: {g:?}");
            let spill = dir.join("spill");
            assert!(
                open_files_under(p.the_worker(), &spill)
                    .iter()
                    .any(|f| f.ends_with(" (deleted)")),
                "{extra}: no temporary file"
            );
        } else {
            assert!(
                open_files_under(p.the_worker(), &dir.join("spill")).is_empty(),
                "{extra}{header}: a temporary file without buffering"
            );
        }
        read_all(client);
        assert!(
            wait_until(Duration::from_secs(10), || progress
                .lock()
                .expect("state")
                .closed_after_all),
            "{extra}{header}"
        );
    }
}

#[test]
fn protonc_checks_the_buffer_sizes_as_nginx() {
    let t = TempDir::new("proxy-buffering-check");
    let dir = t.path().to_path_buf();
    for (line, says) in [
        (
            "proxy_busy_buffers_size 2k;",
            "\"proxy_busy_buffers_size\" must be equal to or greater than the maximum of the value of \"proxy_buffer_size\" and one of the \"proxy_buffers\"",
        ),
        (
            "proxy_busy_buffers_size 64k;",
            "\"proxy_busy_buffers_size\" must be less than the size of all \"proxy_buffers\" minus one buffer",
        ),
        // nginx checks the defaults too: twice a 16k buffer_size is more than 7 × 4k.
        (
            "proxy_buffer_size 16k;",
            "\"proxy_busy_buffers_size\" must be less than the size of all \"proxy_buffers\" minus one buffer",
        ),
        (
            "proxy_temp_file_write_size 1k;",
            "\"proxy_temp_file_write_size\" must be equal to or greater than",
        ),
        (
            "proxy_max_temp_file_size 1k;",
            "\"proxy_max_temp_file_size\" must be equal to zero to disable temporary files usage",
        ),
    ] {
        let conf = format!(
            "events {{}}\nhttp {{\n server {{\n  listen 127.0.0.1:8080;\n  location / {{\n   proxy_pass http://127.0.0.1:9;\n   {line}\n  }}\n }}\n}}\n"
        );
        std::fs::write(dir.join("bad.conf"), conf).expect("write");
        let out = std::process::Command::new(proton_tests::bin("protonc"))
            .arg("compile")
            .arg(dir.join("bad.conf"))
            .arg("-o")
            .arg(dir.join("bad.ir"))
            .output()
            .expect("protonc");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{line}: {err}");
    }
}

/// A keep-alive backend answering every request on a connection with `TOTAL` bytes in
/// 64 KiB chunks; counts the connections it accepted and the responses it finished.
fn chunked_backend() -> (u16, Arc<Mutex<(usize, usize)>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let counts = Arc::new(Mutex::new((0usize, 0usize)));
    let c = counts.clone();
    std::thread::spawn(move || {
        let body: Vec<u8> = (0..TOTAL).map(byte).collect();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            c.lock().expect("counts").0 += 1;
            let c = c.clone();
            let body = body.clone();
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    while !pending.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&buf[..n]),
                        }
                    }
                    pending.clear();
                    let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                    for piece in body.chunks(65536) {
                        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                        out.extend_from_slice(piece);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                    if s.write_all(&out).is_err() {
                        return;
                    }
                    c.lock().expect("counts").1 += 1;
                }
            });
        }
    });
    (port, counts)
}

/// Reads a chunked response of `s` and checks the decoded body against the pattern.
fn read_chunked(mut s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read");
    let at = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&all[..at]).to_ascii_lowercase();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let mut rest = &all[at + 4..];
    let mut body = Vec::with_capacity(TOTAL);
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).expect("hex"), 16)
            .expect("size");
        rest = &rest[eol + 2..];
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    assert_eq!(body.len(), TOTAL);
    assert!((0..TOTAL).all(|i| body[i] == byte(i)), "body differs");
}

#[test]
fn a_buffered_chunked_response_lets_the_kept_alive_upstream_serve_the_next_request() {
    let t = TempDir::new("proxy-buffering-keepalive");
    let dir = t.path().to_path_buf();
    let (bport, counts) = chunked_backend();
    let conf = format!(
        "events {{}}\nhttp {{\n upstream b {{\n  server 127.0.0.1:{bport};\n  keepalive 2;\n }}\n server {{\n  listen 127.0.0.1:{{port}};\n  location / {{\n   proxy_pass http://b;\n   proxy_http_version 1.1;\n   proxy_set_header Connection \"\";\n   proxy_temp_path {}/spill;\n  }}\n }}\n}}\n",
        dir.display()
    );
    let p = Proton::start(&dir, &conf, 1);
    let first = stalled_client(p.port);
    // The first response is read whole from the backend while its client reads nothing.
    assert!(
        wait_until(Duration::from_secs(30), || counts.lock().expect("counts").1
            == 1),
        "{}",
        p.logs()
    );
    // The backend's last bytes may still be on their way: once the proxy has read them
    // all (nothing queued on either side of the connection), it is back in the keep-alive
    // cache, and the next request uses it.
    assert!(
        wait_until(Duration::from_secs(30), || queues_empty(bport)),
        "{}",
        p.logs()
    );
    let second = stalled_client(p.port);
    assert!(
        wait_until(Duration::from_secs(30), || counts.lock().expect("counts").1
            == 2),
        "{}",
        p.logs()
    );
    assert_eq!(
        counts.lock().expect("counts").0,
        1,
        "one backend connection"
    );
    read_chunked(first);
    read_chunked(second);
}

/// Whether the TCP connections with the backend on `port` have nothing queued: neither
/// bytes the backend has not sent nor bytes the proxy has not read (/proc/net/tcp).
fn queues_empty(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port_of = |a: &str| {
        a.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut seen = false;
    for l in table.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(local), Some(remote), Some(queues)) = (f.get(1), f.get(2), f.get(4)) else {
            continue;
        };
        let (tx, rx) = queues.split_once(':').unwrap_or(("0", "0"));
        let busy = u64::from_str_radix(tx, 16).unwrap_or(1) != 0
            || u64::from_str_radix(rx, 16).unwrap_or(1) != 0;
        if port_of(local) == Some(port) || port_of(remote) == Some(port) {
            if f.get(3) == Some(&"0A") {
                continue; // the listening socket
            }
            seen = true;
            if busy {
                return false;
            }
        }
    }
    seen
}
