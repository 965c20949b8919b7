//! `grpc_pass`: a real gRPC client and server (Python's grpcio, Debian's python3-grpcio) with
//! Proton between them. The client speaks HTTP/2 with prior knowledge to a plain listener
//! with `http2 on`; Proton passes each call as an HTTP/2 stream to the server, over
//! cleartext (`grpc://`) or TLS (`grpcs://`). The server is [`PEER`] below: generic handlers
//! on raw bytes (no protobuf stubs) for unary, server-streaming, client-streaming and
//! bidirectional calls, errors, large messages and the peer address of each call. Both run
//! as child processes; the tests assert on what the client prints.

use proton_tests::{wait_until, Proton, TempDir};
use std::collections::HashSet;
use std::fs::File;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Debian's Python, where python3-grpcio installs `grpc`.
const PYTHON: &str = "/usr/bin/python3";

/// The gRPC server (`server [TLS_DIR]`: prints `listening on PORT` once bound to
/// 127.0.0.1:0; with TLS_DIR, TLS with `grpc.crt` and `grpc.key` from it) and the client
/// (`client ADDR MODE [ARG]`: one line per result, `error CODE details` for a failed call).
///
/// Methods of `echo.Echo`: `Say` answers `echo:` + the request; `Peer` the call's peer
/// address as the server sees it; `Count` five messages `partN:` + the request; `Gate`
/// `first`, then `second` once `Open` was called; `Concat` the client's messages joined
/// with `|`; `Fail` aborts with NOT_FOUND; `Partial` sends two messages, then aborts with
/// NOT_FOUND; `Big` checks the request against its SHA-256 in the `x-sha256` metadata and
/// answers it reversed; `Chat` answers each message with `pong:` + the message as it comes.
const PEER: &str = r#"
import hashlib, os, queue, sys, threading
from concurrent import futures
import grpc

LIMIT = 8 * 1024 * 1024
OPTIONS = [('grpc.max_receive_message_length', LIMIT), ('grpc.max_send_message_length', LIMIT),
           ('grpc.enable_http_proxy', 0)]  # loopback only, whatever http_proxy says
gate = threading.Event()

def serve(tls_dir):
    def say(req, ctx):
        return b'echo:' + req
    def peer(req, ctx):
        return ctx.peer().encode()
    def count(req, ctx):
        for i in range(5):
            yield b'part%d:' % i + req
    def gated(req, ctx):
        yield b'first'
        if not gate.wait(20):
            ctx.abort(grpc.StatusCode.DEADLINE_EXCEEDED, 'never opened')
        yield b'second'
    def open_gate(req, ctx):
        gate.set()
        return b'opened'
    def concat(reqs, ctx):
        return b'|'.join(reqs)
    def fail(req, ctx):
        ctx.abort(grpc.StatusCode.NOT_FOUND, 'no such thing')
    def partial(req, ctx):
        yield b'one'
        yield b'two'
        ctx.abort(grpc.StatusCode.NOT_FOUND, 'gone after two')
    def big(req, ctx):
        got = hashlib.sha256(req).hexdigest()
        if dict(ctx.invocation_metadata()).get('x-sha256') != got:
            ctx.abort(grpc.StatusCode.DATA_LOSS, 'request of %d bytes, sha256 %s' % (len(req), got))
        return req[::-1]
    def chat(reqs, ctx):
        for r in reqs:
            yield b'pong:' + r
    u, us = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler
    su, ss = grpc.stream_unary_rpc_method_handler, grpc.stream_stream_rpc_method_handler
    handler = grpc.method_handlers_generic_handler('echo.Echo', {
        'Say': u(say), 'Peer': u(peer), 'Count': us(count), 'Gate': us(gated),
        'Open': u(open_gate), 'Concat': su(concat), 'Fail': u(fail), 'Partial': us(partial),
        'Big': u(big), 'Chat': ss(chat)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), handlers=[handler],
                         options=OPTIONS)
    if tls_dir:
        with open(os.path.join(tls_dir, 'grpc.key'), 'rb') as f:
            key = f.read()
        with open(os.path.join(tls_dir, 'grpc.crt'), 'rb') as f:
            crt = f.read()
        port = server.add_secure_port('127.0.0.1:0', grpc.ssl_server_credentials([(key, crt)]))
    else:
        port = server.add_insecure_port('127.0.0.1:0')
    server.start()
    print('listening on %d' % port, flush=True)
    server.wait_for_termination()

def client(addr, mode, arg):
    m = '/echo.Echo/'
    with grpc.insecure_channel(addr, options=OPTIONS) as ch:
        try:
            if mode == 'say':
                print(ch.unary_unary(m + 'Say')(arg.encode(), timeout=10).decode())
            elif mode == 'peers':
                call = ch.unary_unary(m + 'Peer')
                for _ in range(int(arg)):
                    print(call(b'', timeout=10).decode(), flush=True)
            elif mode == 'count':
                for r in ch.unary_stream(m + 'Count')(b'x', timeout=10):
                    print(r.decode(), flush=True)
            elif mode == 'gate':
                answers = ch.unary_stream(m + 'Gate')(b'', timeout=10)
                print(next(answers).decode(), flush=True)
                # Opened on the server directly: only then does it send the second.
                with grpc.insecure_channel(arg, options=OPTIONS) as direct:
                    print(direct.unary_unary(m + 'Open')(b'', timeout=10).decode(), flush=True)
                for r in answers:
                    print(r.decode(), flush=True)
            elif mode == 'concat':
                msgs = iter([b'm%d' % i for i in range(5)])
                print(ch.stream_unary(m + 'Concat')(msgs, timeout=10).decode())
            elif mode == 'fail':
                ch.unary_unary(m + 'Fail')(b'', timeout=10)
                print('no error')
            elif mode == 'partial':
                for r in ch.unary_stream(m + 'Partial')(b'', timeout=10):
                    print(r.decode(), flush=True)
                print('no error')
            elif mode == 'big':
                req = os.urandom(1024 * 1024)
                resp = ch.unary_unary(m + 'Big')(
                    req, timeout=60, metadata=[('x-sha256', hashlib.sha256(req).hexdigest())])
                want = hashlib.sha256(req[::-1]).hexdigest()
                got = hashlib.sha256(resp).hexdigest()
                print('answer of %d bytes, %s' % (len(resp), 'intact' if got == want else 'changed'))
            elif mode == 'chat':
                q = queue.Queue()
                def requests():
                    while True:
                        item = q.get()
                        if item is None:
                            return
                        yield item
                answers = ch.stream_stream(m + 'Chat')(requests(), timeout=float(arg))
                try:
                    for i in range(3):
                        q.put(b'ping%d' % i)
                        print(next(answers).decode(), flush=True)
                finally:
                    q.put(None)
                for r in answers:
                    print('more', r.decode(), flush=True)
                print('done')
            elif mode == 'bulk':
                n, size = (int(v) for v in arg.split(','))
                msgs = (bytes([i % 256]) * size for i in range(n))
                answers = ch.stream_stream(m + 'Chat')(msgs, timeout=20)
                intact = 0
                for i, r in enumerate(answers):
                    intact += r == b'pong:' + bytes([i % 256]) * size
                print('%d answers intact' % intact)
            else:
                sys.exit('unknown mode ' + mode)
        except grpc.RpcError as e:
            print('error', e.code().name, e.details(), flush=True)

if __name__ == '__main__':
    if sys.argv[1] == 'server':
        serve(sys.argv[2] if len(sys.argv) > 2 else None)
    else:
        client(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else '')
"#;

/// Whether Debian's grpcio can be imported. Without it the tests are skipped with a note,
/// except on CI (`CI` set), whose `.ci/run` installs python3-grpcio: there it is a failure.
fn have_grpcio() -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import grpc"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{PYTHON} cannot import grpc: .ci/run installs python3-grpcio"
        );
        eprintln!("skipped: {PYTHON} has no grpc module (apt-get install python3-grpcio)");
    }
    ok
}

/// [`PEER`] written into `dir`.
fn peer_script(dir: &Path) -> PathBuf {
    let path = dir.join("grpc_peer.py");
    if !path.is_file() {
        std::fs::write(&path, PEER).expect("write grpc_peer.py");
    }
    path
}

/// The gRPC server ([`PEER`]) on a free loopback port; killed (and reaped) on drop.
struct GrpcServer {
    child: Child,
    port: u16,
}

impl GrpcServer {
    /// Starts it (`tls`: with `dir/grpc.crt` and `dir/grpc.key`) and waits (20 s at most)
    /// for the `listening on PORT` line it prints once bound; its stderr goes to
    /// `dir/grpc-server.log`.
    fn start(dir: &Path, tls: bool) -> GrpcServer {
        let mut cmd = Command::new(PYTHON);
        cmd.arg(peer_script(dir)).arg("server");
        if tls {
            cmd.arg(dir);
        }
        let log = dir.join("grpc-server.log");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("grpc-server.log"))
            .spawn()
            .expect("python3 starts");
        let stdout = child.stdout.take().expect("stdout pipe");
        // The first line on a thread, for a deadline; the thread then drains the pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let line = rx.recv_timeout(Duration::from_secs(20));
        let port = match &line {
            Ok(Some(Ok(l))) => l
                .strip_prefix("listening on ")
                .and_then(|p| p.trim().parse().ok()),
            _ => None,
        };
        let mut server = GrpcServer { child, port: 0 };
        match port {
            Some(port) => server.port = port,
            None => {
                let _ = server.child.kill();
                let status = server.child.wait();
                panic!(
                    "the gRPC server did not report its port within 20 s (got {line:?}, \
                     exit {status:?}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
        server
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the client (`client ADDR MODE ARG`) and returns what it printed; panics when it
/// fails or is still running after 90 s (every call in it has a shorter deadline).
fn client(dir: &Path, addr: &str, mode: &str, arg: &str) -> String {
    let out = dir.join(format!("client-{mode}.out"));
    let err = dir.join(format!("client-{mode}.err"));
    let mut child = Command::new(PYTHON)
        .arg(peer_script(dir))
        .args(["client", addr, mode, arg])
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("client out"))
        .stderr(File::create(&err).expect("client err"))
        .spawn()
        .expect("python3 starts");
    let mut status = None;
    let done = wait_until(Duration::from_secs(90), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
    }
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        done && status.is_some_and(|s| s.success()),
        "client {mode} {arg}: {status:?}, finished: {done}\n--- stdout\n{}--- stderr\n{}",
        read(&out),
        read(&err)
    );
    read(&out)
}

/// A gRPC server, Proton in front of it, and their directory (dropped in that order).
struct Site {
    p: Proton,
    server: GrpcServer,
    t: TempDir,
}

impl Site {
    /// The server (`tls`: over TLS, with a self-signed certificate for `localhost` made
    /// here) and Proton with one worker, `http2 on` and the `http { }` body that
    /// `http(server address)` makes (`{port}` and `{dir}` as [`Proton::start`] replaces them).
    fn start(label: &str, tls: bool, http: impl Fn(&str) -> String) -> Site {
        let t = TempDir::new(label);
        if tls {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
            let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
                .expect("params")
                .self_signed(&key)
                .expect("self-signed");
            std::fs::write(t.path().join("grpc.crt"), cert.pem()).expect("write cert");
            std::fs::write(t.path().join("grpc.key"), key.serialize_pem()).expect("write key");
        }
        let server = GrpcServer::start(t.path(), tls);
        let conf = format!(
            "worker_processes 1;\n\
             error_log {{dir}}/logs/error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             access_log {{dir}}/logs/access.log;\n\
             {}\n\
             }}\n",
            http(&server.addr())
        );
        let p = Proton::start(t.path(), &conf, 1);
        Site { p, server, t }
    }

    /// The usual site: `location / { grpc_pass grpc://SERVER; }` on an h2c listener.
    fn plain(label: &str) -> Site {
        Site::start(label, false, |addr| {
            format!(
                "server {{ listen 127.0.0.1:{{port}}; http2 on;\n\
                 location / {{ grpc_pass grpc://{addr}; }} }}"
            )
        })
    }

    /// The client's output for `mode` through Proton.
    fn call(&self, mode: &str, arg: &str) -> String {
        client(
            self.t.path(),
            &format!("127.0.0.1:{}", self.p.port),
            mode,
            arg,
        )
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.t.path().join("logs/access.log")).unwrap_or_default()
    }

    /// Proton's logs and the server's stderr, for failure messages.
    fn logs(&self) -> String {
        format!(
            "{}--- grpc-server.log\n{}",
            self.p.logs(),
            std::fs::read_to_string(self.t.path().join("grpc-server.log")).unwrap_or_default()
        )
    }
}

#[test]
fn unary_call_is_answered_and_logged() {
    if !have_grpcio() {
        return;
    }
    let s = Site::plain("grpc-unary");
    assert_eq!(s.call("say", "hi"), "echo:hi\n", "{}", s.logs());
    assert_eq!(s.call("say", "again"), "echo:again\n", "{}", s.logs());
    // nginx's combined format: an HTTP/2 POST to the method's path, answered 200.
    let logged = wait_until(Duration::from_secs(10), || {
        s.access_log()
            .matches("\"POST /echo.Echo/Say HTTP/2.0\" 200 ")
            .count()
            == 2
    });
    assert!(logged, "{}\n{}", s.access_log(), s.logs());
}

#[test]
fn server_streaming_answers_arrive_whole_in_order() {
    if !have_grpcio() {
        return;
    }
    let s = Site::plain("grpc-server-stream");
    assert_eq!(
        s.call("count", ""),
        "part0:x\npart1:x\npart2:x\npart3:x\npart4:x\n",
        "{}",
        s.logs()
    );
}

/// The answer is relayed as it comes, not when the stream ends: the server sends its
/// second message only once the client, having got the first through Proton, asks it to.
#[test]
fn server_streaming_messages_are_relayed_as_they_come() {
    if !have_grpcio() {
        return;
    }
    let s = Site::plain("grpc-server-stream-gate");
    assert_eq!(
        s.call("gate", &s.server.addr()),
        "first\nopened\nsecond\n",
        "{}",
        s.logs()
    );
}

#[test]
fn client_streaming_messages_reach_the_server_whole_in_order() {
    if !have_grpcio() {
        return;
    }
    let s = Site::plain("grpc-client-stream");
    assert_eq!(s.call("concat", ""), "m0|m1|m2|m3|m4\n", "{}", s.logs());
}

/// grpc-status and grpc-message come through: in a trailers-only answer (an error before
/// any message) and in the trailers after messages.
#[test]
fn grpc_errors_reach_the_client_with_code_and_details() {
    if !have_grpcio() {
        return;
    }
    let s = Site::plain("grpc-errors");
    assert_eq!(
        s.call("fail", ""),
        "error NOT_FOUND no such thing\n",
        "{}",
        s.logs()
    );
    assert_eq!(
        s.call("partial", ""),
        "one\ntwo\nerror NOT_FOUND gone after two\n",
        "{}",
        s.logs()
    );
    // A call after the errors still works (on the same upstream address).
    assert_eq!(s.call("say", "after"), "echo:after\n", "{}", s.logs());
}

/// 1 MiB up and 1 MiB down: larger than every HTTP/2 window's default (64 KiB), so both
/// legs wait for WINDOW_UPDATEs; the server checks the request's hash, the client the
/// answer's. (The gRPC message, 1 MiB plus its 5-byte prefix, is more than the default
/// `client_max_body_size` of 1m: raised, as with nginx.)
#[test]
fn one_mebibyte_each_way_round_trips_exactly() {
    if !have_grpcio() {
        return;
    }
    let s = Site::start("grpc-large", false, |addr| {
        format!(
            "client_max_body_size 8m;\n\
             server {{ listen 127.0.0.1:{{port}}; http2 on;\n\
             location / {{ grpc_pass grpc://{addr}; }} }}"
        )
    });
    for _ in 0..2 {
        assert_eq!(
            s.call("big", ""),
            "answer of 1048576 bytes, intact\n",
            "{}",
            s.logs()
        );
    }
}

/// The distinct peers (as the server saw them) of `calls` sequential calls through `s`.
fn peers(s: &Site, calls: usize) -> HashSet<String> {
    let out = s.call("peers", &calls.to_string());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), calls, "{out}\n{}", s.logs());
    for l in &lines {
        assert!(l.starts_with("ipv4:127.0.0.1:"), "{out}\n{}", s.logs());
    }
    lines.into_iter().map(str::to_string).collect()
}

/// `keepalive` in the upstream group: sequential calls share connections to the server;
/// without it, each call has a connection of its own.
#[test]
fn keepalive_reuses_connections_to_the_server() {
    if !have_grpcio() {
        return;
    }
    let calls = 20;
    let kept = Site::start("grpc-keepalive", false, |addr| {
        format!(
            "upstream g {{ server {addr}; keepalive 4; }}\n\
             server {{ listen 127.0.0.1:{{port}}; http2 on;\n\
             location / {{ grpc_pass grpc://g; }} }}"
        )
    });
    let distinct = peers(&kept, calls);
    assert!(
        distinct.len() < calls,
        "{calls} calls used {} connections: {distinct:?}\n{}",
        distinct.len(),
        kept.logs()
    );
    let plain = Site::start("grpc-no-keepalive", false, |addr| {
        format!(
            "upstream g {{ server {addr}; }}\n\
             server {{ listen 127.0.0.1:{{port}}; http2 on;\n\
             location / {{ grpc_pass grpc://g; }} }}"
        )
    });
    let distinct = peers(&plain, calls);
    assert_eq!(distinct.len(), calls, "{distinct:?}\n{}", plain.logs());
}

/// `grpcs://`: TLS to the server, its certificate unchecked by default
/// (`grpc_ssl_verify off`), checked against the trusted certificate and name when asked.
#[test]
fn grpcs_upstream_over_tls() {
    if !have_grpcio() {
        return;
    }
    let s = Site::start("grpc-tls", true, |addr| {
        format!(
            "server {{ listen 127.0.0.1:{{port}}; http2 on;\n\
             location / {{ grpc_pass grpcs://{addr}; }}\n\
             location /echo.Echo/Count {{ grpc_pass grpcs://{addr};\n\
                 grpc_ssl_verify on; grpc_ssl_name localhost;\n\
                 grpc_ssl_trusted_certificate {{dir}}/grpc.crt; }}\n\
             location /echo.Echo/Concat {{ grpc_pass grpcs://{addr};\n\
                 grpc_ssl_verify on; grpc_ssl_name other.test;\n\
                 grpc_ssl_trusted_certificate {{dir}}/grpc.crt; }} }}"
        )
    });
    assert_eq!(s.call("say", "tls"), "echo:tls\n", "{}", s.logs());
    assert_eq!(
        s.call("count", ""),
        "part0:x\npart1:x\npart2:x\npart3:x\npart4:x\n",
        "{}",
        s.logs()
    );
    // A name the certificate does not have: no call reaches the server; Proton answers
    // 502, which a gRPC client reads as UNAVAILABLE.
    let out = s.call("concat", "");
    assert!(out.starts_with("error UNAVAILABLE "), "{out}\n{}", s.logs());
    let logged = wait_until(Duration::from_secs(10), || {
        s.access_log()
            .contains("\"POST /echo.Echo/Concat HTTP/2.0\" 502 ")
    });
    assert!(logged, "{}\n{}", s.access_log(), s.logs());
    let log = std::fs::read_to_string(s.t.path().join("logs/error.log")).unwrap_or_default();
    assert!(
        log.contains("upstream SSL certificate does not match \"other.test\""),
        "{}",
        s.logs()
    );
}

/// The error log names a TLS upstream `grpcs://ADDRESS`, as nginx's grpc module does (its
/// `u->schema` is `grpcs://` when the upstream is TLS).
#[test]
fn grpcs_upstream_is_named_grpcs_in_the_error_log() {
    if !have_grpcio() {
        return;
    }
    let s = Site::start("grpc-tls-name", true, |addr| {
        format!(
            "server {{ listen 127.0.0.1:{{port}}; http2 on;\n\
             location / {{ grpc_pass grpcs://{addr};\n\
                 grpc_ssl_verify on; grpc_ssl_name other.test;\n\
                 grpc_ssl_trusted_certificate {{dir}}/grpc.crt; }} }}"
        )
    });
    let out = s.call("say", "x");
    assert!(out.starts_with("error UNAVAILABLE "), "{out}\n{}", s.logs());
    let want = format!("upstream: \"grpcs://{}\"", s.server.addr());
    let logged = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(s.t.path().join("logs/error.log")).is_ok_and(|l| l.contains(&want))
    });
    assert!(logged, "no {want} in the error log\n{}", s.logs());
}

/// Bidirectional streaming, every message sent without waiting: each answer comes back,
/// in order, when the answers are small (buffered until the request stream ends).
#[test]
fn bidirectional_stream_of_small_messages() {
    if !have_grpcio() {
        return;
    }
    let s = Site::plain("grpc-bidi-small");
    assert_eq!(
        s.call("bulk", "20,1000"),
        "20 answers intact\n",
        "{}",
        s.logs()
    );
}

/// Bidirectional streaming of 6.5 MB each way (400 messages of 16 KiB), every message sent
/// without waiting, the server answering each as it comes. Proton must read the answer
/// while it still sends the request: otherwise the answers fill the buffers, the server
/// stops reading, and neither side moves until the client's 20 s deadline (as before
/// commit 0509ac3, "grpc: full duplex"). (`client_max_body_size` counts the whole request
/// stream, as in nginx: raised.)
#[test]
fn bidirectional_stream_of_megabytes_each_way() {
    if !have_grpcio() {
        return;
    }
    let s = Site::start("grpc-bidi-large", false, |addr| {
        format!(
            "client_max_body_size 64m;\n\
             server {{ listen 127.0.0.1:{{port}}; http2 on;\n\
             location / {{ grpc_pass grpc://{addr}; }} }}"
        )
    });
    assert_eq!(
        s.call("bulk", "400,16384"),
        "400 answers intact\n",
        "{}",
        s.logs()
    );
}

/// Bidirectional streaming as a conversation: the client sends its next message only after
/// the answer to the previous one has come through Proton, within a 5 s deadline (an answer
/// relayed only once the request stream has ended would never come).
#[test]
fn bidirectional_ping_pong() {
    if !have_grpcio() {
        return;
    }
    let s = Site::plain("grpc-ping-pong");
    assert_eq!(
        s.call("chat", "5"),
        "pong:ping0\npong:ping1\npong:ping2\ndone\n",
        "{}",
        s.logs()
    );
}
