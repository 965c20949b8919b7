//! `limit_rate`, `limit_rate_after` and `$limit_rate`, as nginx: a response never gets ahead
//! of `rate × (seconds since the request + 1) + limit_rate_after` bytes, arrives whole, and
//! `set $limit_rate` changes the rate of its request (nginx-tests' http_variables.t).
//!
//! The transfer checks assert only an upper bound on what has arrived at each moment (a slow
//! machine can only make it smaller), never how long anything took.

use proton_tests::{get, nginx_binary, request, wait_until, Nginx, Proton, TempDir};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

const FILE: usize = 48 * 1024;

fn server(port: u16, root: &str) -> String {
    format!(
        r#"
    server {{
        listen 127.0.0.1:{port};
        server_name rate.test;
        root {root};
        location /slow/ {{ limit_rate 16k; }}
        location /after/ {{ alias {root}/slow/; limit_rate 8k; limit_rate_after 40k; }}
        location /nosendfile/ {{ alias {root}/slow/; sendfile off; limit_rate $arg_r; }}
        location /var {{ set $limit_rate $arg_r; add_header X-Rate $limit_rate; return 200 "r"; }}
        location /src/ {{ alias {root}/slow/; }}
        location /proxied/ {{ limit_rate 16k; proxy_pass http://127.0.0.1:{port}/src/; }}
        location /accel/ {{ proxy_pass http://127.0.0.1:{port}/xa/; }}
        location /xa/ {{ alias {root}/slow/; add_header X-Accel-Limit-Rate 16384; }}
        location /unset {{ add_header X-Rate $limit_rate; return 200 "u"; }}
    }}
"#
    )
}

/// Fetches `path`, sampling (seconds since the request was sent, bytes received so far).
fn fetch(port: u16, path: &str) -> (Vec<u8>, Vec<(f64, usize)>) {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let start = Instant::now();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: rate.test\r\n\r\n").as_bytes())
        .expect("write");
    let mut got = Vec::new();
    let mut samples = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                samples.push((start.elapsed().as_secs_f64(), got.len()));
            }
        }
    }
    (got, samples)
}

fn body(raw: &[u8]) -> &[u8] {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |i| i + 4);
    &raw[at..]
}

/// Every sample stays within what the rate allows (`head` bytes of slack for the head).
fn within(samples: &[(f64, usize)], rate: f64, after: f64, what: &str) {
    const HEAD: f64 = 512.0;
    for &(t, n) in samples {
        let allowed = rate * (t + 1.0) + after + HEAD;
        assert!(
            n as f64 <= allowed,
            "{what}: {n} bytes after {t:.3} s, more than {allowed} allowed (samples {samples:?})"
        );
    }
}

#[test]
fn responses_keep_to_limit_rate() {
    let t = TempDir::new("limit-rate");
    let root = t.path().join("html");
    std::fs::create_dir_all(root.join("slow")).expect("dir");
    let data: Vec<u8> = (0..FILE).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("slow/f"), &data).expect("file");
    let root = root.display().to_string();
    let conf = format!(
        "worker_processes 1;\nerror_log {{dir}}/logs/error.log info;\nevents {{}}\nhttp {{\naccess_log off;\nsendfile on;\n{}}}\n",
        server(0, &root).replace("127.0.0.1:0", "127.0.0.1:{port}")
    );
    let p = Proton::start(t.path(), &conf, 1);

    // 48 KiB at 16 KiB/s: whole, and never ahead of the rate (unlimited, it would all be
    // there at the first read).
    let (raw, samples) = fetch(p.port, "/slow/f");
    assert_eq!(body(&raw), &data[..], "{}", p.logs());
    within(&samples, 16384.0, 0.0, "limit_rate 16k");

    // The first 40 KiB at full speed, then 8 KiB/s.
    let (raw, samples) = fetch(p.port, "/after/f");
    assert_eq!(body(&raw), &data[..]);
    within(&samples, 8192.0, 40960.0, "limit_rate_after 40k");

    // A rate from a variable, through the copy path (sendfile off).
    let (raw, samples) = fetch(p.port, "/nosendfile/f?r=24k");
    assert_eq!(body(&raw), &data[..]);
    within(&samples, 24576.0, 0.0, "limit_rate $arg_r");

    // A proxied response, by the location's rate and by the upstream's X-Accel-Limit-Rate
    // (the backend here is the same server, unlimited).
    let (raw, samples) = fetch(p.port, "/proxied/f");
    assert_eq!(body(&raw), &data[..], "{}", p.logs());
    within(&samples, 16384.0, 0.0, "proxied, limit_rate 16k");
    let (raw, samples) = fetch(p.port, "/accel/f");
    assert_eq!(body(&raw), &data[..], "{}", p.logs());
    within(&samples, 16384.0, 0.0, "proxied, X-Accel-Limit-Rate");
    assert!(!String::from_utf8_lossy(&raw).contains("X-Accel-Limit-Rate"));

    // `set $limit_rate`: its value as a size; not a size is logged and leaves it unset.
    let r = request(p.port, Some("rate.test"), "/var?r=40k").expect("request");
    assert_eq!(r.header("x-rate"), Some("40960"));
    let r = request(p.port, Some("rate.test"), "/var?r=fast").expect("request");
    assert_eq!(r.header("x-rate"), Some("0"));
    assert!(
        wait_until(Duration::from_secs(10), || p
            .logs()
            .contains("invalid $limit_rate \"fast\"")),
        "{}",
        p.logs()
    );
    assert_eq!(get(p.port, Some("rate.test"), "/unset").0, 200);

    // nginx gives the variable the same values.
    let Some(nginx) = nginx_binary() else { return };
    let n = Nginx::start(&nginx, |port| server(port, &root));
    for path in ["/var?r=40k", "/var?r=fast", "/var?r=1m", "/unset"] {
        let ours = request(p.port, Some("rate.test"), path).expect("request");
        let theirs = request(n.port(), Some("rate.test"), path).expect("request");
        assert_eq!(
            ours.header("x-rate"),
            theirs.header("x-rate"),
            "{path}: proton and nginx differ"
        );
    }
}

/// `sendfile_max_chunk`: a file larger than the chunk leaves in many sendfile calls, the
/// connection yielding to the worker's other connections after each chunk (and woken in
/// the next round of the event loop; on loopback the socket's own write events would also
/// wake it). It arrives whole and in order, with a small chunk, nginx's default and no
/// limit (0).
#[test]
fn sendfile_max_chunk_sends_a_large_file_whole() {
    let t = TempDir::new("sendfile-chunk");
    let root = t.path().join("html");
    std::fs::create_dir_all(&root).expect("dir");
    let data: Vec<u8> = (0..(3 << 20) + 123).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(root.join("big"), &data).expect("file");
    let conf = format!(
        r#"worker_processes 1;
error_log {{dir}}/logs/error.log info;
events {{}}
http {{
    access_log off;
    sendfile on;
    server {{
        listen 127.0.0.1:{{port}};
        root {root};
        location /small/ {{ alias {root}/; sendfile_max_chunk 8k; }}
        location /default/ {{ alias {root}/; }}
        location /none/ {{ alias {root}/; sendfile_max_chunk 0; }}
    }}
}}
"#,
        root = root.display()
    );
    let p = Proton::start(t.path(), &conf, 1);
    for path in ["/small/big", "/default/big", "/none/big"] {
        let (raw, _) = fetch(p.port, path);
        assert!(raw.starts_with(b"HTTP/1.1 200"), "{path}: {}", p.logs());
        assert_eq!(body(&raw).len(), data.len(), "{path}: {}", p.logs());
        assert!(body(&raw) == &data[..], "{path}: the body differs");
    }
}
