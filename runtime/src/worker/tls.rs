//! The client connection's transport: plain TCP, or TLS (rustls) between the socket and the
//! HTTP codec. rustls never touches the socket itself: ciphertext is moved with
//! `read_tls`/`write_tls`, plaintext with `reader()`/`writer()`, and everything above this
//! module sees only plaintext through [`client_read`], [`client_write`] and
//! [`client_flush`].
//!
//! A TLS address first waits for the ClientHello ([`TlsState::Accepting`]): its SNI name
//! chooses the server whose certificate and settings answer the handshake, as nginx's
//! servername callback does. Bytes that are not a TLS record make the connection plain, so
//! that its request can be answered with nginx's 497.

use super::conn::{read_ready, Conn};
use super::Worker;
use crate::elog;
use mio::net::TcpStream;
use proton_tls::{ClientAuth, Verdict};
use rustls::server::{Acceptor, ServerConnection};
use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;

/// The TLS side of a client connection.
pub(crate) struct TlsConn {
    pub(crate) state: TlsState,
    /// Plaintext rustls holds that has not been read yet.
    plain: usize,
    /// The acceptor has read the connection's first bytes (a TLS record).
    started: bool,
    /// The key-exchange groups the ClientHello offered (`$ssl_curves`).
    pub(crate) client_groups: Vec<rustls::NamedGroup>,
    /// The client-certificate verifier of the server whose config answered the handshake
    /// (`None`: no certificate was asked for).
    client_auth: Option<Arc<ClientAuth>>,
    /// `$ssl_client_verify`, computed when first needed.
    verdict: Cell<Option<Verdict>>,
}

pub(crate) enum TlsState {
    /// Waiting for the ClientHello.
    Accepting(Box<Acceptor>),
    Ready(Box<ServerConnection>),
    /// The client spoke plain HTTP to a TLS address (its request gets 497).
    Plain,
    /// The handshake failed; nothing more is read or written through TLS.
    Failed,
}

impl TlsConn {
    pub(crate) fn new() -> TlsConn {
        TlsConn {
            state: TlsState::Accepting(Box::default()),
            plain: 0,
            started: false,
            client_groups: Vec::new(),
            client_auth: None,
            verdict: Cell::new(None),
        }
    }

    /// The established session (`None` before the handshake, and for plain HTTP).
    pub(crate) fn session(&self) -> Option<&ServerConnection> {
        match &self.state {
            TlsState::Ready(c) => Some(c),
            _ => None,
        }
    }

    /// The verification of the client's certificate chain (checked once, when first
    /// asked): `None` without a certificate.
    pub(crate) fn client_verify(&self) -> Verdict {
        if let Some(v) = self.verdict.get() {
            return v;
        }
        let chain = self.session().and_then(|c| c.peer_certificates());
        let v = match (chain, &self.client_auth) {
            (Some(chain), Some(auth)) if !chain.is_empty() => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                auth.verify(chain, now)
            }
            _ => Verdict::None,
        };
        self.verdict.set(Some(v));
        v
    }

    /// The client's certificate (DER), when it sent one.
    pub(crate) fn client_certificate(&self) -> Option<&[u8]> {
        self.session()?
            .peer_certificates()?
            .first()
            .map(|c| c.as_ref())
    }

    /// The client spoke plain HTTP to this TLS address.
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self.state, TlsState::Plain)
    }

    /// TLS output is waiting for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        matches!(&self.state, TlsState::Ready(c) if c.wants_write())
    }

    /// Plaintext can be read without the socket.
    pub(crate) fn has_plaintext(&self) -> bool {
        self.plain > 0
    }

    /// Queues close_notify and sends what the socket takes (before a close).
    pub(crate) fn close_notify(&mut self, sock: &TcpStream) {
        if let TlsState::Ready(c) = &mut self.state {
            c.send_close_notify();
            let _ = flush(&mut **c, sock);
        }
    }
}

/// A rustls session of either side: the server side of a client connection, or the client
/// side of a connection to an upstream. The functions below are written once for both.
trait Session: std::ops::DerefMut<Target = rustls::ConnectionCommon<Self::Data>> {
    type Data;
}

impl Session for ServerConnection {
    type Data = rustls::server::ServerConnectionData;
}

impl Session for rustls::ClientConnection {
    type Data = rustls::client::ClientConnectionData;
}

/// Writes rustls's pending records; Ok(true) when none are left.
fn flush<C: Session>(c: &mut C, mut sock: &TcpStream) -> std::io::Result<bool> {
    while c.wants_write() {
        match c.write_tls(&mut sock) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Reads at most `want` bytes of plaintext of session `c` into `buf`: what rustls already
/// holds (`*plain` bytes) first, then records from the socket. Ok(0): the peer closed
/// (close_notify, or a FIN). An `InvalidData` error: the peer broke the protocol (the alert
/// rustls queued is sent; the session cannot be used any more).
fn session_read<C: Session>(
    c: &mut C,
    plain: &mut usize,
    sock: &TcpStream,
    ready: &mut bool,
    buf: &mut Vec<u8>,
    want: usize,
) -> std::io::Result<usize> {
    // Handshake records or an alert may still wait for the socket.
    flush(c, sock)?;
    loop {
        if *plain > 0 {
            buf.reserve(want);
            let spare = buf.spare_capacity_mut();
            let n = want.min(spare.len()).min(*plain);
            // Plaintext is copied into a zeroed window; the buffer's spare capacity is
            // never read uninitialised.
            let start = buf.len();
            buf.resize(start + n, 0);
            match c.reader().read(&mut buf[start..]) {
                Ok(k) => {
                    buf.truncate(start + k);
                    *plain = plain.saturating_sub(k);
                    if k > 0 {
                        return Ok(k);
                    }
                    *plain = 0;
                }
                Err(e) => {
                    buf.truncate(start);
                    *plain = 0;
                    if e.kind() != ErrorKind::WouldBlock {
                        return Err(e);
                    }
                }
            }
        }
        if !*ready {
            return Err(ErrorKind::WouldBlock.into());
        }
        let mut s = sock;
        match c.read_tls(&mut s) {
            Ok(0) => {
                *ready = false;
                return Ok(0);
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                *ready = false;
                return Err(e);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        match c.process_new_packets() {
            Ok(io) => {
                *plain = io.plaintext_bytes_to_read();
                let _ = flush(c, sock);
                if io.peer_has_closed() && *plain == 0 {
                    return Ok(0);
                }
            }
            Err(e) => {
                // The alert rustls queued goes out before the close.
                let _ = flush(c, sock);
                return Err(std::io::Error::new(ErrorKind::InvalidData, e));
            }
        }
    }
}

/// Writes plaintext through session `c` (the part of `data` rustls took is reported; its
/// records may still wait for the socket, see [`flush`]).
fn session_write<C: Session>(c: &mut C, sock: &TcpStream, data: &[u8]) -> std::io::Result<usize> {
    let drained = flush(c, sock)?;
    // rustls takes plaintext while the records waiting for the socket stay under its
    // buffer limit (64 KiB): what waits for a slow peer is bounded, and a peer that is slow
    // but taking bytes keeps taking data, so the send timeout counts from its last bytes.
    let n = c.writer().write(&data[..data.len().min(64 * 1024)])?;
    if n == 0 && !data.is_empty() {
        return Err(ErrorKind::WouldBlock.into());
    }
    if drained {
        flush(c, sock)?;
    }
    Ok(n)
}

/// A connection's transport above the socket: what [`client_read`], [`client_write`] and
/// [`client_flush`] go through when the connection has TLS (client connections' TLS, and
/// upstream connections' [`UpTls`]).
pub(crate) trait Transport {
    fn read(
        &mut self,
        sock: &TcpStream,
        ready: &mut bool,
        hup: bool,
        buf: &mut Vec<u8>,
        want: usize,
    ) -> std::io::Result<usize>;
    fn write(&mut self, sock: &TcpStream, data: &[u8]) -> std::io::Result<usize>;
    fn flush(&mut self, sock: &TcpStream) -> std::io::Result<bool>;
}

impl Transport for TlsConn {
    fn read(
        &mut self,
        sock: &TcpStream,
        ready: &mut bool,
        hup: bool,
        buf: &mut Vec<u8>,
        want: usize,
    ) -> std::io::Result<usize> {
        let c = match &mut self.state {
            TlsState::Ready(c) => c,
            TlsState::Plain => return read_ready(sock, ready, hup, buf, want),
            TlsState::Accepting(_) => return Err(ErrorKind::WouldBlock.into()),
            TlsState::Failed => return Ok(0),
        };
        let r = session_read(&mut **c, &mut self.plain, sock, ready, buf, want);
        if matches!(&r, Err(e) if e.kind() == ErrorKind::InvalidData) {
            self.state = TlsState::Failed;
        }
        r
    }

    fn write(&mut self, sock: &TcpStream, data: &[u8]) -> std::io::Result<usize> {
        match &mut self.state {
            TlsState::Plain => (&mut &*sock).write(data),
            TlsState::Ready(c) => session_write(&mut **c, sock, data),
            _ => Err(ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self, sock: &TcpStream) -> std::io::Result<bool> {
        match &mut self.state {
            TlsState::Ready(c) => flush(&mut **c, sock),
            _ => Ok(true),
        }
    }
}

/// Sends pending TLS output. Ok(true): nothing waits (always, for plain connections).
pub(crate) fn client_flush<T: Transport>(
    sock: &TcpStream,
    tls: Option<&mut T>,
) -> std::io::Result<bool> {
    match tls {
        Some(t) => t.flush(sock),
        None => Ok(true),
    }
}

/// Reads at most `want` bytes of plaintext into `buf` (see [`read_ready`] for `ready` and
/// `hup`). Over TLS: plaintext rustls already holds first, then records from the socket.
/// Ok(0): the peer closed (close_notify, or a FIN).
pub(crate) fn client_read<T: Transport>(
    sock: &TcpStream,
    tls: Option<&mut T>,
    ready: &mut bool,
    hup: bool,
    buf: &mut Vec<u8>,
    want: usize,
) -> std::io::Result<usize> {
    match tls {
        Some(t) => t.read(sock, ready, hup, buf, want),
        None => read_ready(sock, ready, hup, buf, want),
    }
}

/// Writes plaintext: over TLS, as records (the part of `data` rustls took is reported; its
/// records may still wait for the socket, see [`client_flush`]).
pub(crate) fn client_write<T: Transport>(
    sock: &TcpStream,
    tls: Option<&mut T>,
    data: &[u8],
) -> std::io::Result<usize> {
    match tls {
        Some(t) => t.write(sock, data),
        None => (&mut &*sock).write(data),
    }
}

/// The TLS side of a connection to an `https://` upstream.
pub(crate) struct UpTls {
    conn: rustls::ClientConnection,
    /// Plaintext rustls holds that has not been read yet.
    plain: usize,
    /// The session failed (a protocol error): nothing more goes through it.
    failed: bool,
}

/// How a handshake with an upstream goes.
pub(crate) enum Handshake {
    Done,
    /// Waiting for the socket.
    Blocked,
    /// The connect itself failed (the first write of the ClientHello tells).
    Connect(std::io::Error),
    /// The upstream closed the connection during the handshake.
    Closed,
    /// A TLS error (the upstream's certificate did not verify, no common protocol, …).
    Tls(rustls::Error),
}

impl UpTls {
    pub(crate) fn new(
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<UpTls, rustls::Error> {
        Ok(UpTls {
            conn: rustls::ClientConnection::new(config, name)?,
            plain: 0,
            failed: false,
        })
    }

    /// Advances the handshake: the ClientHello goes out with the first write (which also
    /// tells whether the non-blocking connect succeeded), the server's flight is read as it
    /// arrives.
    pub(crate) fn handshake(&mut self, sock: &TcpStream, ready: &mut bool) -> Handshake {
        loop {
            match flush(&mut self.conn, sock) {
                Ok(true) => {}
                Ok(false) => return Handshake::Blocked,
                Err(e) if e.kind() == ErrorKind::NotConnected => return Handshake::Blocked,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Handshake::Connect(e),
            }
            if !self.conn.is_handshaking() {
                return Handshake::Done;
            }
            if !*ready {
                return Handshake::Blocked;
            }
            let mut s = sock;
            match self.conn.read_tls(&mut s) {
                Ok(0) => return Handshake::Closed,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    *ready = false;
                    return Handshake::Blocked;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Handshake::Closed,
            }
            match self.conn.process_new_packets() {
                Ok(io) => self.plain = io.plaintext_bytes_to_read(),
                Err(e) => {
                    let _ = flush(&mut self.conn, sock);
                    self.failed = true;
                    return Handshake::Tls(e);
                }
            }
        }
    }

    /// Whether an idle (cached) connection is still usable after its socket became
    /// readable: records that arrive while idle (session tickets, say) are taken in; a
    /// close_notify, a FIN, an error or application data means it cannot be reused.
    pub(crate) fn idle_alive(&mut self, sock: &TcpStream) -> bool {
        loop {
            let mut s = sock;
            match self.conn.read_tls(&mut s) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return !self.failed,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
            match self.conn.process_new_packets() {
                Ok(io) if !io.peer_has_closed() && io.plaintext_bytes_to_read() == 0 => {}
                _ => return false,
            }
        }
    }
}

impl Transport for UpTls {
    fn read(
        &mut self,
        sock: &TcpStream,
        ready: &mut bool,
        _hup: bool,
        buf: &mut Vec<u8>,
        want: usize,
    ) -> std::io::Result<usize> {
        if self.failed {
            return Err(ErrorKind::InvalidData.into());
        }
        let r = session_read(&mut self.conn, &mut self.plain, sock, ready, buf, want);
        if matches!(&r, Err(e) if e.kind() == ErrorKind::InvalidData) {
            self.failed = true;
        }
        r
    }

    fn write(&mut self, sock: &TcpStream, data: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(ErrorKind::BrokenPipe.into());
        }
        session_write(&mut self.conn, sock, data)
    }

    fn flush(&mut self, sock: &TcpStream) -> std::io::Result<bool> {
        flush(&mut self.conn, sock)
    }
}

/// What the first read of a TLS address found.
pub(crate) enum Accept {
    /// The handshake goes on (or the connection turned plain): read again.
    Progress,
    WouldBlock,
    /// Close the connection.
    Close,
}

impl Worker<'_> {
    /// The rustls config for a handshake on `listener` whose SNI name is `sni`: the server
    /// that name chooses, as for a Host (exact, wildcard, regex, else the default server);
    /// a server without certificates answers with the default server's. `None`: the
    /// handshake is refused (`ssl_reject_handshake`).
    pub(crate) fn tls_config(
        &self,
        listener: usize,
        sni: Option<&str>,
    ) -> Option<(Arc<rustls::ServerConfig>, Option<Arc<ClientAuth>>)> {
        let ir = &self.loaded.ir;
        let l = ir.listeners.get(listener)?;
        let sid = match sni {
            Some(name) => {
                let loaded = &self.loaded;
                ir.find_server(l, name.as_bytes(), &mut |id, s| loaded.is_match(id, s))
                    .0
            }
            None => l.names.default,
        };
        let pick = |sid: proton_ir::ServerId| {
            let tls = ir.servers.get(sid.0 as usize)?.tls.as_deref()?;
            if tls.reject_handshake {
                return Some(None);
            }
            let config = self.loaded.tls.get(sid.0 as usize)?.clone()?;
            let auth = self
                .loaded
                .client_auth
                .get(sid.0 as usize)
                .cloned()
                .flatten();
            Some(Some((config, auth)))
        };
        match pick(sid) {
            Some(c) => c,
            None => pick(l.names.default).flatten(),
        }
    }
}

impl Conn {
    /// The TLS handshake has not finished (the ClientHello is still awaited, or the rest).
    pub(crate) fn tls_handshaking(&self) -> bool {
        match self.tls().map(|t| &t.state) {
            Some(TlsState::Accepting(_)) => true,
            Some(TlsState::Ready(c)) => c.is_handshaking(),
            _ => false,
        }
    }

    /// The connection's established TLS session (`None` for plain HTTP).
    pub(crate) fn tls_session(&self) -> Option<&ServerConnection> {
        self.tls().and_then(TlsConn::session)
    }

    /// A ClientHello rustls refused: its alert goes out, the reason to the error log.
    fn refuse_hello(
        &self,
        w: &Worker<'_>,
        e: &rustls::Error,
        mut alert: rustls::server::AcceptedAlert,
    ) -> Accept {
        let mut s = &self.sock;
        let _ = alert.write_all(&mut s);
        elog!(
            w.elog,
            Info,
            "SSL_do_handshake() failed ({e}) while SSL handshaking, client: {}",
            self.peer.ip()
        );
        Accept::Close
    }

    /// Reads the ClientHello and chooses the server by its SNI name. Called while the
    /// connection's TLS is [`TlsState::Accepting`].
    pub(crate) fn tls_accept(&mut self, w: &mut Worker<'_>) -> Accept {
        if !self.rd_ready {
            return Accept::WouldBlock;
        }
        let Some(t) = super::conn::tls_mut(&mut self.ext) else {
            return Accept::Progress;
        };
        let TlsState::Accepting(acceptor) = &mut t.state else {
            return Accept::Progress;
        };
        loop {
            let mut first = [0u8; 1];
            match self.sock.peek(&mut first) {
                Ok(0) => return Accept::Close,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.rd_ready = false;
                    return Accept::WouldBlock;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Accept::Close,
            }
            // nginx's test: a TLS handshake record (0x16) or an SSLv2 hello (high bit).
            if !t.started && first[0] != 0x16 && first[0] & 0x80 == 0 {
                t.state = TlsState::Plain;
                return Accept::Progress;
            }
            t.started = true;
            let mut s = &self.sock;
            match acceptor.read_tls(&mut s) {
                Ok(0) => return Accept::Close,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.rd_ready = false;
                    return Accept::WouldBlock;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Accept::Close,
            }
            match acceptor.accept() {
                Ok(None) => continue,
                Ok(Some(accepted)) => {
                    if let Some(groups) = accepted.client_hello().named_groups() {
                        t.client_groups.extend_from_slice(groups);
                    }
                    let sni = accepted
                        .client_hello()
                        .server_name()
                        .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
                    let config = w.tls_config(self.listener as usize, sni.as_deref());
                    let Some((config, auth)) = config else {
                        elog!(
                            w.elog,
                            Info,
                            "SSL_do_handshake() failed (SSL: rejected handshake{}), client: {}",
                            sni.as_deref()
                                .map(|n| format!(" for \"{n}\""))
                                .unwrap_or_default(),
                            self.peer.ip()
                        );
                        // nginx's ssl_reject_handshake: an unrecognized_name alert.
                        let mut s = &self.sock;
                        let _ = s.write(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]);
                        return Accept::Close;
                    };
                    match accepted.into_connection(config) {
                        Ok(mut c) => {
                            let _ = flush(&mut c, &self.sock);
                            t.state = TlsState::Ready(Box::new(c));
                            t.client_auth = auth;
                            return Accept::Progress;
                        }
                        Err((e, alert)) => return self.refuse_hello(w, &e, alert),
                    }
                }
                Err((e, alert)) => return self.refuse_hello(w, &e, alert),
            }
        }
    }
}
