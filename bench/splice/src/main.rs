//! splice() vs read()/write() copying for proxied bodies.
//!
//! A source thread writes N bytes as fast as it can into loopback TCP connection A (the
//! "upstream"); a sink thread reads and discards from loopback TCP connection B (the
//! "client"). The main thread (the "mover", standing in for a proxy worker) moves the bytes
//! from A to B, either by read() into a user-space buffer and write() (copy), or by
//! splice() socket A -> pipe -> socket B. Reported per mode: median MB/s over several runs
//! (with min/max), and the mover thread's CPU time (user + sys, getrusage(RUSAGE_THREAD))
//! per GiB moved. The whole process's CPU per GiB is reported too (source and sink do the
//! same work in every mode).
//!
//! Two fixed-cost measurements complete it: pipe2() + close per connection, and the
//! mover's cost per small body (read+write vs two splices, with and without a fresh pipe).
//!
//! Loopback only. Every run is bounded: socket timeouts, and a total time budget after
//! which remaining runs are skipped (and the report says so).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::resource::{getrusage, UsageWho};

const IO_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Copy,
    Splice,
}

#[derive(Clone, Copy, Debug)]
struct Mode {
    kind: Kind,
    /// Buffer size (copy) or pipe size (splice), bytes.
    size: usize,
    /// Non-blocking sockets + poll(), like the event loop.
    nonblocking: bool,
}

impl Mode {
    fn name(&self) -> String {
        let k = match self.kind {
            Kind::Copy => "copy",
            Kind::Splice => "splice",
        };
        let nb = if self.nonblocking { "nb-" } else { "" };
        format!("{nb}{k}:{}", human(self.size as u64))
    }
}

fn human(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{}G", n >> 30)
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}M", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{}K", n >> 10)
    } else {
        format!("{n}")
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1u64 << 20),
        Some('G') => (&s[..s.len() - 1], 1u64 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("bad size {s:?} (use e.g. 512K, 64M, 2G)"))
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    let (k, size) = s.split_once(':').ok_or_else(|| {
        format!("bad mode {s:?} (use copy:32K, splice:64K, nb-copy:32K, nb-splice:1M)")
    })?;
    let (nonblocking, k) = match k.strip_prefix("nb-") {
        Some(rest) => (true, rest),
        None => (false, k),
    };
    let kind = match k {
        "copy" => Kind::Copy,
        "splice" => Kind::Splice,
        _ => return Err(format!("bad mode kind {k:?}")),
    };
    let size = parse_size(size)? as usize;
    if size < 4096 {
        return Err(format!("size in mode {s:?} must be at least 4K"));
    }
    Ok(Mode {
        kind,
        size,
        nonblocking,
    })
}

struct Args {
    bytes: u64,
    runs: usize,
    modes: Vec<Mode>,
    pin: bool,
    budget: Duration,
    pipe_iters: u64,
    small_iters: u64,
    small_sizes: Vec<usize>,
}

const DEFAULT_MODES: &str =
    "copy:16K,copy:32K,copy:64K,copy:256K,splice:64K,splice:256K,splice:1M,\
nb-copy:32K,nb-copy:256K,nb-splice:64K,nb-splice:1M";

fn usage() -> ! {
    eprintln!(
        "usage: proton-bench-splice [--bytes 2G] [--runs 5] [--modes LIST] [--pin]\n\
         \x20                          [--budget SECS] [--pipe-iters 100000] [--small-iters 50000]\n\
         \x20                          [--small-sizes 1K,16K] [--skip-large] [--skip-fixed]\n\
         modes (comma list): copy:SIZE, splice:PIPESIZE, nb-copy:SIZE, nb-splice:PIPESIZE\n\
         default modes: {DEFAULT_MODES}\n\
         --pin: mover thread on CPU 0, source and sink threads on CPU 1\n\
         --budget: stop starting new large-body runs after this many seconds (default 300)"
    );
    std::process::exit(2)
}

fn parse_args() -> (Args, bool, bool) {
    let mut a = Args {
        bytes: 2 << 30,
        runs: 5,
        modes: DEFAULT_MODES
            .split(',')
            .map(|m| parse_mode(m).expect("default mode"))
            .collect(),
        pin: false,
        budget: Duration::from_secs(300),
        pipe_iters: 100_000,
        small_iters: 50_000,
        small_sizes: vec![1 << 10, 16 << 10],
    };
    let mut skip_large = false;
    let mut skip_fixed = false;
    let mut it = std::env::args().skip(1);
    let die = |m: String| -> ! {
        eprintln!("error: {m}");
        usage()
    };
    while let Some(arg) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .unwrap_or_else(|| die(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--bytes" => a.bytes = parse_size(&val("--bytes")).unwrap_or_else(|e| die(e)),
            "--runs" => {
                a.runs = val("--runs")
                    .parse()
                    .unwrap_or_else(|_| die("bad --runs".into()))
            }
            "--modes" => {
                a.modes = val("--modes")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|m| parse_mode(m).unwrap_or_else(|e| die(e)))
                    .collect()
            }
            "--pin" => a.pin = true,
            "--budget" => {
                a.budget = Duration::from_secs(
                    val("--budget")
                        .parse()
                        .unwrap_or_else(|_| die("bad --budget".into())),
                )
            }
            "--pipe-iters" => {
                a.pipe_iters = val("--pipe-iters")
                    .parse()
                    .unwrap_or_else(|_| die("bad --pipe-iters".into()))
            }
            "--small-iters" => {
                a.small_iters = val("--small-iters")
                    .parse()
                    .unwrap_or_else(|_| die("bad --small-iters".into()))
            }
            "--small-sizes" => {
                a.small_sizes = val("--small-sizes")
                    .split(',')
                    .map(|s| parse_size(s).unwrap_or_else(|e| die(e)) as usize)
                    .collect()
            }
            "--skip-large" => skip_large = true,
            "--skip-fixed" => skip_fixed = true,
            "-h" | "--help" => usage(),
            other => die(format!("unknown argument {other:?}")),
        }
    }
    if a.runs == 0 || a.bytes == 0 {
        die("--runs and --bytes must be > 0".into());
    }
    (a, skip_large, skip_fixed)
}

// ---------------------------------------------------------------------------------------
// CPU accounting

/// CPU seconds (user + sys) of the calling thread: clock_gettime(CLOCK_THREAD_CPUTIME_ID),
/// the same counter as getrusage(RUSAGE_THREAD) user + sys, in ns instead of µs.
fn thread_cpu() -> f64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("clock_gettime");
    t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9
}

/// CPU seconds (user + sys) of the whole process (all threads).
fn process_cpu() -> f64 {
    cpu(UsageWho::RUSAGE_SELF)
}

fn cpu(who: UsageWho) -> f64 {
    let u = getrusage(who).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

fn pin_to(cpu_id: usize) {
    use nix::sched::{sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let mut set = CpuSet::new();
    if set.set(cpu_id).is_err() {
        eprintln!("warning: cannot pin to CPU {cpu_id}");
        return;
    }
    if let Err(e) = sched_setaffinity(Pid::from_raw(0), &set) {
        eprintln!("warning: sched_setaffinity({cpu_id}): {e}");
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ---------------------------------------------------------------------------------------
// One large-body run

struct RunResult {
    wall: f64,
    mover_cpu: f64,
    process_cpu: f64,
    source_cpu: f64,
    sink_cpu: f64,
    /// CPU seconds that other processes used on the machine during the run (busy time
    /// from /proc/stat minus this process's CPU), a noise indicator.
    foreign_cpu: f64,
    mover_syscalls: u64,
}

/// Busy CPU seconds of the whole machine so far (/proc/stat, all CPUs; USER_HZ = 100).
fn machine_busy() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = s.lines().next().unwrap_or("");
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| v.get(i))
        .sum::<u64>();
    busy as f64 / 100.0
}

/// Sets up A (source -> mover) and B (mover -> sink), moves `bytes` with `mode`, returns
/// the timings. Panics (with a message) only on setup failures or I/O errors, which for a
/// measurement tool means the run is meaningless anyway.
fn run_once(mode: Mode, bytes: u64, pin: bool) -> Result<RunResult, String> {
    let la = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind A: {e}"))?;
    let lb = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind B: {e}"))?;
    let addr_a = la.local_addr().map_err(|e| e.to_string())?;
    let addr_b = lb.local_addr().map_err(|e| e.to_string())?;

    let (go_tx, go_rx) = mpsc::channel::<()>();
    let source = thread::Builder::new()
        .name("source".into())
        .spawn(move || -> Result<(u64, f64), String> {
            if pin {
                pin_to(1);
            }
            let mut s = TcpStream::connect(addr_a).map_err(|e| format!("source connect: {e}"))?;
            s.set_write_timeout(Some(IO_TIMEOUT))
                .map_err(|e| e.to_string())?;
            let buf = vec![0x5au8; 256 << 10];
            // Wait until the mover is ready to start the clock.
            go_rx
                .recv_timeout(IO_TIMEOUT)
                .map_err(|_| "source: no start signal".to_string())?;
            let c0 = thread_cpu();
            let mut left = bytes;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                match s.write(&buf[..n]) {
                    Ok(0) => return Err("source: write returned 0".into()),
                    Ok(m) => left -= m as u64,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("source write: {e}")),
                }
            }
            // Close: the mover sees EOF after the last byte.
            drop(s);
            Ok((bytes, thread_cpu() - c0))
        })
        .map_err(|e| e.to_string())?;
    let sink = thread::Builder::new()
        .name("sink".into())
        .spawn(move || -> Result<(u64, Instant, f64), String> {
            if pin {
                pin_to(1);
            }
            let mut s = TcpStream::connect(addr_b).map_err(|e| format!("sink connect: {e}"))?;
            s.set_read_timeout(Some(IO_TIMEOUT))
                .map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 256 << 10];
            let mut got = 0u64;
            // Includes the idle wait before the first byte (blocked in read: no CPU).
            let c0 = thread_cpu();
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return Ok((got, Instant::now(), thread_cpu() - c0)),
                    Ok(n) => got += n as u64,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("sink read after {got} bytes: {e}")),
                }
            }
        })
        .map_err(|e| e.to_string())?;

    let (a, _) = la.accept().map_err(|e| format!("accept A: {e}"))?;
    let (b, _) = lb.accept().map_err(|e| format!("accept B: {e}"))?;
    a.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    b.set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    if mode.nonblocking {
        a.set_nonblocking(true).map_err(|e| e.to_string())?;
        b.set_nonblocking(true).map_err(|e| e.to_string())?;
    }

    // Pipe (splice modes) created before the clock starts; its cost is measured apart.
    let pipe = if mode.kind == Kind::Splice {
        Some(make_pipe(mode.size, mode.nonblocking)?)
    } else {
        None
    };
    let mut buf = if mode.kind == Kind::Copy {
        vec![0u8; mode.size]
    } else {
        Vec::new()
    };

    let cpu0 = thread_cpu();
    let pcpu0 = process_cpu();
    let busy0 = machine_busy();
    let t0 = Instant::now();
    go_tx
        .send(())
        .map_err(|_| "source thread gone".to_string())?;

    let moved = match (mode.kind, mode.nonblocking, &pipe) {
        (Kind::Copy, false, _) => copy_blocking(&a, &b, &mut buf),
        (Kind::Copy, true, _) => copy_nonblocking(&a, &b, &mut buf),
        (Kind::Splice, false, Some((r, w, cap))) => splice_blocking(&a, &b, r, w, *cap),
        (Kind::Splice, true, Some((r, w, cap))) => splice_nonblocking(&a, &b, r, w, *cap),
        _ => unreachable!(),
    };
    let mover_cpu = thread_cpu() - cpu0;
    // EOF to the sink.
    let _ = b.shutdown(Shutdown::Write);
    let (moved, syscalls) = moved?;
    let (sent, source_cpu) = source.join().map_err(|_| "source panicked".to_string())??;
    let (got, t_end, sink_cpu) = sink.join().map_err(|_| "sink panicked".to_string())??;
    let process_cpu = process_cpu() - pcpu0;
    let foreign_cpu = (machine_busy() - busy0 - process_cpu).max(0.0);
    drop((a, b, pipe));
    if moved != bytes || sent != bytes || got != bytes {
        return Err(format!(
            "byte count mismatch: sent {sent}, moved {moved}, received {got}, expected {bytes}"
        ));
    }
    Ok(RunResult {
        wall: (t_end - t0).as_secs_f64(),
        mover_cpu,
        process_cpu,
        source_cpu,
        sink_cpu,
        foreign_cpu,
        mover_syscalls: syscalls,
    })
}

/// pipe2() (optionally non-blocking), enlarged with F_SETPIPE_SZ when `size` > 64 KiB.
/// Returns (read end, write end, actual capacity).
fn make_pipe(size: usize, nonblocking: bool) -> Result<(OwnedFd, OwnedFd, usize), String> {
    let mut flags = OFlag::O_CLOEXEC;
    if nonblocking {
        flags |= OFlag::O_NONBLOCK;
    }
    let (r, w) = nix::unistd::pipe2(flags).map_err(|e| format!("pipe2: {e}"))?;
    let mut cap = fcntl(w.as_raw_fd(), FcntlArg::F_GETPIPE_SZ)
        .map_err(|e| format!("F_GETPIPE_SZ: {e}"))? as usize;
    if size != cap {
        cap = fcntl(w.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(size as i32))
            .map_err(|e| format!("F_SETPIPE_SZ({size}): {e} (see /proc/sys/fs/pipe-max-size)"))?
            as usize;
    }
    Ok((r, w, cap))
}

fn io_err(what: &str, e: std::io::Error) -> String {
    format!("{what}: {e}")
}

/// read() into `buf`, write() all of it, until EOF on `a`. Returns (bytes, syscalls).
fn copy_blocking(
    mut a: &TcpStream,
    mut b: &TcpStream,
    buf: &mut [u8],
) -> Result<(u64, u64), String> {
    let mut moved = 0u64;
    let mut calls = 0u64;
    loop {
        calls += 1;
        let n = match a.read(buf) {
            Ok(0) => return Ok((moved, calls)),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("copy read", e)),
        };
        let mut off = 0;
        while off < n {
            calls += 1;
            match b.write(&buf[off..n]) {
                Ok(0) => return Err("copy write returned 0".into()),
                Ok(m) => off += m,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("copy write", e)),
            }
        }
        moved += n as u64;
    }
}

/// socket a -> pipe -> socket b with blocking splice() calls.
fn splice_blocking(
    a: &TcpStream,
    b: &TcpStream,
    r: &OwnedFd,
    w: &OwnedFd,
    cap: usize,
) -> Result<(u64, u64), String> {
    let mut moved = 0u64;
    let mut calls = 0u64;
    loop {
        calls += 1;
        let n = match splice(
            a.as_fd(),
            None,
            w.as_fd(),
            None,
            cap,
            SpliceFFlags::SPLICE_F_MOVE,
        ) {
            Ok(0) => return Ok((moved, calls)),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("splice in: {e}")),
        };
        let mut left = n;
        while left > 0 {
            calls += 1;
            match splice(
                r.as_fd(),
                None,
                b.as_fd(),
                None,
                left,
                SpliceFFlags::SPLICE_F_MOVE,
            ) {
                Ok(0) => return Err("splice out returned 0".into()),
                Ok(m) => left -= m,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(format!("splice out: {e}")),
            }
        }
        moved += n as u64;
    }
}

/// Waits (poll) for `a` readable and/or `b` writable.
fn wait(a: &TcpStream, b: &TcpStream, want_in: bool, want_out: bool) -> Result<(), String> {
    let mut fds = Vec::with_capacity(2);
    if want_in {
        fds.push(PollFd::new(a.as_fd(), PollFlags::POLLIN));
    }
    if want_out {
        fds.push(PollFd::new(b.as_fd(), PollFlags::POLLOUT));
    }
    match poll(
        &mut fds,
        PollTimeout::try_from(IO_TIMEOUT.as_millis() as i32).expect("timeout"),
    ) {
        Ok(0) => Err("poll timed out".into()),
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(format!("poll: {e}")),
    }
}

/// Non-blocking sockets, like the proxy's step_body: write what is pending, read while the
/// window has room, poll when neither made progress.
fn copy_nonblocking(
    mut a: &TcpStream,
    mut b: &TcpStream,
    buf: &mut [u8],
) -> Result<(u64, u64), String> {
    let (mut start, mut end) = (0usize, 0usize);
    let mut eof = false;
    let mut moved = 0u64;
    let mut calls = 0u64;
    loop {
        let mut progressed = false;
        if start < end {
            calls += 1;
            match b.write(&buf[start..end]) {
                Ok(0) => return Err("copy write returned 0".into()),
                Ok(m) => {
                    start += m;
                    moved += m as u64;
                    progressed = true;
                    if start == end {
                        start = 0;
                        end = 0;
                    }
                }
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("copy write", e)),
            }
        }
        if eof && start == end {
            return Ok((moved, calls));
        }
        if !eof && end - start < buf.len() {
            if end == buf.len() {
                // Compact (the proxy drains its Vec the same way).
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            }
            calls += 1;
            match a.read(&mut buf[end..]) {
                Ok(0) => {
                    eof = true;
                    progressed = true;
                }
                Ok(n) => {
                    end += n;
                    progressed = true;
                }
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("copy read", e)),
            }
        }
        if eof && start == end {
            return Ok((moved, calls));
        }
        if !progressed {
            calls += 1;
            // Data pending means the write would block; otherwise the read would.
            wait(a, b, start == end, start < end)?;
        }
    }
}

/// Non-blocking splice: socket a -> pipe while the pipe has room, pipe -> socket b while it
/// holds data, poll when neither made progress.
fn splice_nonblocking(
    a: &TcpStream,
    b: &TcpStream,
    r: &OwnedFd,
    w: &OwnedFd,
    cap: usize,
) -> Result<(u64, u64), String> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut in_pipe = 0usize;
    let mut eof = false;
    let mut moved = 0u64;
    let mut calls = 0u64;
    loop {
        let mut progressed = false;
        if !eof && in_pipe < cap {
            calls += 1;
            match splice(a.as_fd(), None, w.as_fd(), None, cap - in_pipe, flags) {
                Ok(0) => {
                    eof = true;
                    progressed = true;
                }
                Ok(n) => {
                    in_pipe += n;
                    progressed = true;
                }
                // EAGAIN: socket empty, or pipe out of slots.
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(e) => return Err(format!("splice in: {e}")),
            }
        }
        if in_pipe > 0 {
            calls += 1;
            match splice(r.as_fd(), None, b.as_fd(), None, in_pipe, flags) {
                Ok(0) => return Err("splice out returned 0".into()),
                Ok(m) => {
                    in_pipe -= m;
                    moved += m as u64;
                    progressed = true;
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(e) => return Err(format!("splice out: {e}")),
            }
        }
        if eof && in_pipe == 0 {
            return Ok((moved, calls));
        }
        if !progressed {
            calls += 1;
            // Data in the pipe: waiting for the client; otherwise for the upstream.
            wait(a, b, in_pipe == 0, in_pipe > 0)?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fixed costs

/// pipe2() + close of both ends, `iters` times; optionally with F_SETPIPE_SZ. Returns ns
/// per iteration (wall) and CPU ns per iteration.
fn bench_pipe_create(iters: u64, setsz: Option<usize>) -> Result<(f64, f64), String> {
    let c0 = thread_cpu();
    let t0 = Instant::now();
    for _ in 0..iters {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| format!("pipe2: {e}"))?;
        if let Some(sz) = setsz {
            fcntl(w.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(sz as i32))
                .map_err(|e| format!("F_SETPIPE_SZ: {e}"))?;
        }
        drop(r);
        drop(w);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = thread_cpu() - c0;
    Ok((wall * 1e9 / iters as f64, cpu * 1e9 / iters as f64))
}

#[derive(Clone, Copy)]
enum Small {
    Copy,
    SpliceKeptPipe,
    SpliceNewPipe,
}

/// One thread, connected loopback pairs (up -> a) and (b -> client). Per iteration: `size`
/// bytes are written to `up` and are readable on `a`; the mover part moves them from `a`
/// to `b` (timed, by CPU of this thread around the mover part only); the client end is
/// drained. Returns mover CPU ns per body.
fn bench_small(kind: Small, size: usize, iters: u64) -> Result<f64, String> {
    let la = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let lb = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let mut up = TcpStream::connect(la.local_addr().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let (a, _) = la.accept().map_err(|e| e.to_string())?;
    let mut client = TcpStream::connect(lb.local_addr().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let (b, _) = lb.accept().map_err(|e| e.to_string())?;
    for s in [&up, &a, &b, &client] {
        s.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
    }
    let body = vec![0x33u8; size];
    let mut buf = vec![0u8; 32 << 10];
    let mut drain = vec![0u8; 64 << 10];
    let kept = make_pipe(64 << 10, true)?;
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut mover_cpu = 0.0;
    for _ in 0..iters {
        up.write_all(&body)
            .map_err(|e| io_err("small: up write", e))?;
        let c0 = thread_cpu();
        let mut left = size;
        // Loopback delivers synchronously, so the body is in a's receive queue; the loops
        // cover a partial read all the same.
        match kind {
            Small::Copy => {
                while left > 0 {
                    let n = (&a)
                        .read(&mut buf[..left.min(32 << 10)])
                        .map_err(|e| io_err("small: read", e))?;
                    if n == 0 {
                        return Err("small: EOF".into());
                    }
                    (&b).write_all(&buf[..n])
                        .map_err(|e| io_err("small: write", e))?;
                    left -= n;
                }
            }
            Small::SpliceKeptPipe | Small::SpliceNewPipe => {
                let fresh = if matches!(kind, Small::SpliceNewPipe) {
                    Some(make_pipe(64 << 10, true)?)
                } else {
                    None
                };
                let (r, w, _) = fresh.as_ref().unwrap_or(&kept);
                while left > 0 {
                    let n = splice(a.as_fd(), None, w.as_fd(), None, left, flags)
                        .map_err(|e| format!("small: splice in: {e}"))?;
                    if n == 0 {
                        return Err("small: EOF".into());
                    }
                    let mut m = n;
                    while m > 0 {
                        m -= splice(r.as_fd(), None, b.as_fd(), None, m, flags)
                            .map_err(|e| format!("small: splice out: {e}"))?;
                    }
                    left -= n;
                }
                drop(fresh);
            }
        }
        mover_cpu += thread_cpu() - c0;
        let mut got = 0;
        while got < size {
            let n = client
                .read(&mut drain)
                .map_err(|e| io_err("small: client read", e))?;
            if n == 0 {
                return Err("small: client EOF".into());
            }
            got += n;
        }
    }
    Ok(mover_cpu * 1e9 / iters as f64 - clock_overhead_ns())
}

/// CPU ns of an empty pair of thread_cpu() reads (subtracted from the per-body figures).
fn clock_overhead_ns() -> f64 {
    let n = 20_000;
    let mut total = 0.0;
    for _ in 0..n {
        let c0 = thread_cpu();
        total += thread_cpu() - c0;
    }
    total * 1e9 / n as f64
}

// ---------------------------------------------------------------------------------------

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|x, y| x.partial_cmp(y).expect("NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let (args, skip_large, skip_fixed) = parse_args();
    let started = Instant::now();
    println!(
        "# splice() vs copy — loopback, {}",
        if args.pin {
            "pinned (mover CPU 0, source+sink CPU 1)"
        } else {
            "unpinned"
        }
    );
    println!();
    println!(
        "bytes per run: {} ({} MiB), runs per mode: {}, load average at start: {}",
        args.bytes,
        args.bytes >> 20,
        args.runs,
        loadavg()
    );
    if let Ok(s) = std::fs::read_to_string("/proc/sys/fs/pipe-max-size") {
        println!("pipe-max-size: {}", s.trim());
    }
    println!();

    if !skip_large && !args.modes.is_empty() {
        let gib = args.bytes as f64 / (1u64 << 30) as f64;
        let mut results: Vec<Vec<RunResult>> = args.modes.iter().map(|_| Vec::new()).collect();
        let mut skipped = false;
        // Warm-up: one short run per kind (page cache, TCP autotuning, thread start).
        for m in [
            parse_mode("copy:64K").expect("mode"),
            parse_mode("splice:64K").expect("mode"),
        ] {
            if let Err(e) = run_once(m, args.bytes.min(256 << 20), args.pin) {
                eprintln!("warm-up {}: {e}", m.name());
            }
        }
        // Round-robin over modes so that load drift hits every mode alike.
        'runs: for run in 0..args.runs {
            for (i, m) in args.modes.iter().enumerate() {
                if started.elapsed() > args.budget {
                    skipped = true;
                    break 'runs;
                }
                match run_once(*m, args.bytes, args.pin) {
                    Ok(r) => {
                        eprintln!(
                            "run {} {:<14} {:>8.0} MB/s  mover {:.3} s CPU  source {:.3}  sink {:.3}  process {:.3} s CPU  others {:.2} s CPU  load {}",
                            run + 1,
                            m.name(),
                            args.bytes as f64 / r.wall / 1e6,
                            r.mover_cpu,
                            r.source_cpu,
                            r.sink_cpu,
                            r.process_cpu,
                            r.foreign_cpu,
                            loadavg()
                        );
                        results[i].push(r);
                    }
                    Err(e) => eprintln!("run {} {}: FAILED: {e}", run + 1, m.name()),
                }
            }
        }
        println!("| mode | runs | MB/s median | MB/s min–max | spread | mover CPU s/GiB (median) | source / sink CPU s/GiB (median) | process CPU s/GiB (median) | mover syscalls per MiB | other processes' CPU during runs |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for (m, rs) in args.modes.iter().zip(results.iter()) {
            if rs.is_empty() {
                println!("| {} | 0 | — | — | — | — | — | — | — | — |", m.name());
                continue;
            }
            let mut mbs: Vec<f64> = rs
                .iter()
                .map(|r| args.bytes as f64 / r.wall / 1e6)
                .collect();
            let mut mc: Vec<f64> = rs.iter().map(|r| r.mover_cpu / gib).collect();
            let mut pc: Vec<f64> = rs.iter().map(|r| r.process_cpu / gib).collect();
            let mut so: Vec<f64> = rs.iter().map(|r| r.source_cpu / gib).collect();
            let mut si: Vec<f64> = rs.iter().map(|r| r.sink_cpu / gib).collect();
            let mut sc: Vec<f64> = rs
                .iter()
                .map(|r| r.mover_syscalls as f64 / (args.bytes as f64 / (1 << 20) as f64))
                .collect();
            let ncpu = thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1) as f64;
            let foreign: f64 = rs.iter().map(|r| r.foreign_cpu).sum::<f64>()
                / rs.iter().map(|r| r.wall * ncpu).sum::<f64>()
                * 100.0;
            let lo = mbs.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = mbs.iter().cloned().fold(0.0, f64::max);
            let med = median(&mut mbs);
            let spread = (hi - lo) / med * 100.0;
            let flag = if spread > 15.0 { " (noisy)" } else { "" };
            println!(
                "| {} | {} | {:.0} | {:.0}–{:.0} | {:.0} %{} | {:.3} | {:.3} / {:.3} | {:.3} | {:.1} | {:.0} % |",
                m.name(),
                rs.len(),
                med,
                lo,
                hi,
                spread,
                flag,
                median(&mut mc),
                median(&mut so),
                median(&mut si),
                median(&mut pc),
                median(&mut sc),
                foreign
            );
        }
        if skipped {
            println!();
            println!(
                "**Budget of {} s reached: later runs were skipped.**",
                args.budget.as_secs()
            );
        }
        println!();
        println!("load average at end of large-body runs: {}", loadavg());
        println!();
    }

    if !skip_fixed {
        println!("## Fixed costs (single thread)");
        println!();
        println!("| what | wall ns/op | CPU ns/op |");
        println!("|---|---|---|");
        for (label, sz) in [
            ("pipe2() + 2 × close", None),
            (
                "pipe2() + F_SETPIPE_SZ(256K) + 2 × close",
                Some(256usize << 10),
            ),
            ("pipe2() + F_SETPIPE_SZ(1M) + 2 × close", Some(1usize << 20)),
        ] {
            match bench_pipe_create(args.pipe_iters, sz) {
                Ok((w, c)) => println!(
                    "| {label} ({} iterations) | {w:.0} | {c:.0} |",
                    args.pipe_iters
                ),
                Err(e) => println!("| {label} | failed: {e} | |"),
            }
        }
        println!();
        println!("Mover CPU per small body (data already queued on the upstream socket; {} bodies each):", args.small_iters);
        println!();
        println!("| body | read+write ns | splice, kept pipe ns | splice, new pipe per body ns |");
        println!("|---|---|---|---|");
        for &size in &args.small_sizes {
            let mut cells = Vec::new();
            for k in [Small::Copy, Small::SpliceKeptPipe, Small::SpliceNewPipe] {
                cells.push(match bench_small(k, size, args.small_iters) {
                    Ok(ns) => format!("{ns:.0}"),
                    Err(e) => format!("failed: {e}"),
                });
            }
            println!(
                "| {} | {} | {} | {} |",
                human(size as u64),
                cells[0],
                cells[1],
                cells[2]
            );
        }
        println!();
    }
    println!(
        "total time: {:.1} s, load average at end: {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
}
