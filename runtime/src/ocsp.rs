//! Fetches OCSP responses for `ssl_stapling` (the DER and the checks are
//! `proton_tls::ocsp`'s). Each worker starts one helper thread when it starts (only when a
//! certificate of the configuration staples from a responder); a handshake that finds a
//! certificate's response due hands the staple to it and goes on without waiting. The
//! thread asks the responder as nginx does (`GET /<base64 request> HTTP/1.0`, each
//! address in turn, 60 s for the whole exchange, at most 16 KiB read) and gives the body to
//! the staple, which checks and keeps it. Blocking sockets in a thread of their own keep
//! the event loop free of this rare, slow work.

use proton_ir::LogLevel;
use proton_tls::ocsp::{FetchOcsp, Staple, MAX_RESPONSE};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one exchange with a responder may take (nginx's 60 s).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Where the fetch thread's log lines go (the worker's error log, opened for the thread).
pub type Log = Arc<dyn Fn(LogLevel, String) + Send + Sync>;

/// The fetcher a generation's TLS configs share; each worker [`Fetcher::start`]s its own
/// thread (the master, which forks them, never does).
#[derive(Default)]
pub struct Fetcher {
    queue: Mutex<Option<Sender<Arc<Staple>>>>,
}

impl FetchOcsp for Fetcher {
    fn fetch(&self, staple: Arc<Staple>) {
        let sent = match self.queue.lock() {
            Ok(q) => match q.as_ref() {
                Some(tx) => tx.send(staple).map_err(|e| e.0),
                None => Err(staple),
            },
            Err(_) => Err(staple),
        };
        // No thread (a process that does not serve): the staple waits for its next turn.
        if let Err(staple) = sent {
            let _ = staple.finish(None, unix_now());
        }
    }
}

impl Fetcher {
    /// Starts this process's fetch thread, which logs with `log`. The thread ends with
    /// the process (or when the fetcher is dropped with the generation's configs).
    pub fn start(&self, log: Log) -> std::io::Result<()> {
        let (tx, rx) = channel::<Arc<Staple>>();
        std::thread::Builder::new()
            .name("ocsp".to_string())
            .spawn(move || {
                while let Ok(staple) = rx.recv() {
                    let body = fetch(&staple, &log);
                    let peer = body.as_ref().map(|(_, p)| *p);
                    match staple.finish(body.as_ref().map(|(b, _)| b.as_slice()), unix_now()) {
                        Ok(status) => log(
                            LogLevel::Info,
                            format!(
                                "OCSP response \"{}\" stapled{}",
                                status.name(),
                                context(&staple, peer)
                            ),
                        ),
                        Err(e) if e.is_empty() => {}
                        Err(e) => log(LogLevel::Error, format!("{e}{}", context(&staple, peer))),
                    }
                }
            })?;
        if let Ok(mut q) = self.queue.lock() {
            *q = Some(tx);
        }
        Ok(())
    }
}

/// nginx's context for OCSP log lines.
fn context(staple: &Staple, peer: Option<SocketAddr>) -> String {
    let peer = peer.map(|p| format!(", peer: {p}")).unwrap_or_default();
    format!(
        " while requesting certificate status, responder: {}{peer}, certificate: \"{}\"",
        staple.responder.host, staple.certificate
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The GET request for `staple`: its DER request in base64, escaped as a URI component,
/// after the responder's path.
fn request(staple: &Staple) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&staple.request);
    let mut out = Vec::with_capacity(b64.len() * 2 + 64);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(staple.responder.path.as_bytes());
    crate::http::response::escape_uri(
        b64.as_bytes(),
        crate::http::response::Escape::UriComponent,
        &mut out,
    );
    out.extend_from_slice(b" HTTP/1.0\r\nHost: ");
    out.extend_from_slice(staple.responder.host.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

/// Asks each of the responder's addresses in turn until one answers with a response;
/// failures are logged as nginx does. The body and the peer that sent it.
fn fetch(staple: &Staple, log: &Log) -> Option<(Vec<u8>, SocketAddr)> {
    let req = request(staple);
    for addr in &staple.responder.addrs {
        match exchange(*addr, &req) {
            Ok(raw) => match body(&raw) {
                Ok(b) => return Some((b.to_vec(), *addr)),
                Err(e) => {
                    log(
                        LogLevel::Error,
                        format!("{e}{}", context(staple, Some(*addr))),
                    );
                    // A responder that answered is not asked again at another address.
                    return None;
                }
            },
            Err(e) => log(
                LogLevel::Error,
                format!("{e}{}", context(staple, Some(*addr))),
            ),
        }
    }
    None
}

/// Sends `req` to `addr` and reads the answer to its end (HTTP/1.0: the responder closes),
/// within [`TIMEOUT`] and [`MAX_RESPONSE`].
fn exchange(addr: SocketAddr, req: &[u8]) -> Result<Vec<u8>, String> {
    let os = |what: &str, e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            "OCSP responder timed out (110: Connection timed out)".to_string()
        } else {
            format!("{what} failed ({})", crate::log::OsError(&e))
        }
    };
    let deadline = Instant::now() + TIMEOUT;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| os("connect()", e))?;
    s.set_write_timeout(Some(left()))
        .and_then(|_| s.write_all(req))
        .map_err(|e| os("send()", e))?;
    let mut raw = Vec::with_capacity(4096);
    let mut buf = [0u8; 4096];
    loop {
        s.set_read_timeout(Some(left()))
            .map_err(|e| os("recv()", e))?;
        let n = match s.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(os("recv()", e)),
        };
        if n == 0 {
            return Ok(raw);
        }
        if raw.len() + n > MAX_RESPONSE {
            return Err(format!(
                "OCSP responder sent a response longer than {MAX_RESPONSE} bytes"
            ));
        }
        raw.extend_from_slice(&buf[..n]);
        if Instant::now() >= deadline {
            return Err("OCSP responder timed out (110: Connection timed out)".to_string());
        }
    }
}

/// The body of a responder's whole HTTP answer: status 200 and, when it says, the
/// `application/ocsp-response` type (as nginx checks).
fn body(raw: &[u8]) -> Result<&[u8], String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let end = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err("OCSP responder prematurely closed connection".to_string())
        }
        Err(_) => return Err("OCSP responder sent invalid response".to_string()),
    };
    if let Some(h) = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
    {
        if !h.value.eq_ignore_ascii_case(b"application/ocsp-response") {
            return Err(format!(
                "OCSP responder sent invalid \"Content-Type\" header: \"{}\"",
                String::from_utf8_lossy(h.value)
            ));
        }
    }
    match resp.code {
        Some(200) => Ok(&raw[end..]),
        Some(c) => Err(format!("OCSP responder sent status {c}")),
        None => Err("OCSP responder sent invalid response".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::body;

    #[test]
    fn answers_are_read_as_nginx_reads_them() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n\r\n\x30\x03";
        assert_eq!(body(ok), Ok(&b"\x30\x03"[..]));
        let untyped = b"HTTP/1.1 200 OK\r\n\r\nDER";
        assert_eq!(body(untyped), Ok(&b"DER"[..]));
        let html = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>";
        assert_eq!(
            body(html).unwrap_err(),
            "OCSP responder sent invalid \"Content-Type\" header: \"text/html\""
        );
        let missing = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n\r\n";
        assert!(body(missing).is_err());
        assert_eq!(
            body(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap_err(),
            "OCSP responder sent status 404"
        );
        assert_eq!(
            body(b"HTTP/1.1 200 OK\r\nContent-Ty").unwrap_err(),
            "OCSP responder prematurely closed connection"
        );
        assert_eq!(
            body(b"garbage\r\n\r\n").unwrap_err(),
            "OCSP responder sent invalid response"
        );
    }
}
