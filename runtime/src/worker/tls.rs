//! The client connection's transport: plain TCP, or TLS (rustls) between the socket and the
//! HTTP codec. Everything above this module sees only plaintext through [`client_read`],
//! [`client_write`] and [`client_flush`].
//!
//! rustls runs through its unbuffered API: ciphertext read from the socket and ciphertext
//! waiting for it live in [`Records`] buffers that are taken from a per-thread pool when a
//! connection has bytes in flight and given back as soon as it has none. An idle keep-alive
//! connection therefore holds no TLS buffer at all, only rustls's session state (the
//! buffered API keeps a 4 KiB receive buffer per connection for its whole life).
//!
//! A TLS address first waits for the ClientHello ([`TlsState::Accepting`]): its SNI name
//! chooses the server whose certificate and settings answer the handshake, as nginx's
//! servername callback does. The ClientHello's bytes are kept and handed, unchanged, to the
//! session made with that server's config. Bytes that are not a TLS record make the
//! connection plain, so that its request can be answered with nginx's 497.

use super::conn::{read_ready, Conn};
use super::Worker;
use crate::elog;
use crate::tls_session_id::{self, SessionId};
use mio::net::TcpStream;
use proton_tls::{ClientAuth, Verdict};
use rustls::client::UnbufferedClientConnection;
use rustls::server::{Acceptor, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;

/// Size of the pooled buffers of received bytes: a whole record of the largest size rustls
/// accepts (16 KiB of plaintext plus TLS 1.2's allowance for expansion, 18,437 bytes) and
/// the next read (at least [`READ_MIN`]), so that a buffer grows only to reassemble a long
/// handshake message.
const IN_BUF: usize = 24 * 1024;
/// Size of the pooled buffers of records on the way out: those of [`WRITE_MAX`] bytes of
/// plaintext beside the few still waiting ([`PENDING_MAX`]).
const OUT_BUF: usize = 88 * 1024;
/// Most ciphertext held for one connection: a handshake message rustls reassembles from
/// several records (a long certificate chain) stays in the receive buffer until complete,
/// and may be up to 64 KiB.
const REC_MAX: usize = 96 * 1024;
/// The least room a read from the socket is given.
const READ_MIN: usize = 4096;
/// Most plaintext taken in one write.
const WRITE_MAX: usize = 64 * 1024;
/// Most ciphertext waiting for the socket for a write to take more plaintext: what waits
/// for a slow peer is bounded, and the records still waiting are few enough to be moved to
/// the front of the buffer cheaply, so that the pooled buffer never has to grow.
const PENDING_MAX: usize = 16 * 1024;
/// TLS configs kept per worker for `ssl_certificate` with variables (one per set of names).
const NAMED_MAX: usize = 32;
/// Buffers of each size kept by the pool (a worker is one thread).
const POOL_MAX: usize = 256;

thread_local! {
    /// Buffers of this worker's connections that have no bytes in flight: those of
    /// [`IN_BUF`] bytes, then those of [`OUT_BUF`].
    static POOL: RefCell<[Vec<Vec<u8>>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// A ciphertext buffer: bytes `start..end` of `data` are held; `data` is empty (no
/// allocation) while nothing is, and otherwise initialised to its full length, so rustls
/// can write into its tail without zero-filling it each time. Its buffers come from the
/// pool of size `base` ([`IN_BUF`] or [`OUT_BUF`]).
struct RecBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
    base: usize,
}

impl Default for RecBuf {
    fn default() -> RecBuf {
        RecBuf::new(IN_BUF)
    }
}

impl RecBuf {
    fn new(base: usize) -> RecBuf {
        RecBuf {
            data: Vec::new(),
            start: 0,
            end: 0,
            base,
        }
    }

    fn pool(&self) -> usize {
        usize::from(self.base == OUT_BUF)
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    fn filled(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.end]
    }

    /// Room for at least `need` more bytes after the held ones: a buffer from the pool,
    /// the held bytes moved to the front, or a larger buffer (up to [`REC_MAX`]).
    fn room(&mut self, need: usize) -> std::io::Result<&mut [u8]> {
        if self.data.is_empty() {
            let i = self.pool();
            self.data = POOL
                .try_with(|p| p.borrow_mut()[i].pop())
                .ok()
                .flatten()
                .unwrap_or_default();
            if self.data.len() < self.base {
                self.data = vec![0; self.base];
            }
            self.start = 0;
            self.end = 0;
        }
        if self.data.len() - self.end < need && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.data.len() - self.end < need {
            if self.end + need > REC_MAX {
                return Err(std::io::Error::new(
                    ErrorKind::InvalidData,
                    "TLS record or handshake message too large",
                ));
            }
            let want = (self.end + need).max((self.data.len() * 2).min(REC_MAX));
            self.data.resize(want, 0);
        }
        Ok(&mut self.data[self.end..])
    }

    /// `n` bytes were written at the end.
    fn filled_by(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
    }

    /// The first `n` held bytes are done with; an emptied buffer goes back to the pool.
    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.release();
        }
    }

    fn release(&mut self) {
        let data = std::mem::take(&mut self.data);
        self.start = 0;
        self.end = 0;
        if data.len() == self.base {
            let i = self.pool();
            // `try_with`: a buffer dropped while the thread ends is simply freed.
            let _ = POOL.try_with(|p| {
                let mut p = p.borrow_mut();
                if p[i].len() < POOL_MAX {
                    p[i].push(data);
                }
            });
        }
    }
}

/// A rustls session of either side driven through the unbuffered API: the server side of
/// a client connection, or the client side of a connection to an upstream.
pub(crate) trait Unbuffered {
    type Data;
    /// The server side (a client connection): its handshakes count in `proton_metrics`.
    const SERVER: bool;
    fn records<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
    fn common(&self) -> &rustls::CommonState;
}

impl Unbuffered for UnbufferedServerConnection {
    type Data = rustls::server::ServerConnectionData;
    const SERVER: bool = true;
    fn records<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
    fn common(&self) -> &rustls::CommonState {
        self
    }
}

impl Unbuffered for UnbufferedClientConnection {
    type Data = rustls::client::ClientConnectionData;
    const SERVER: bool = false;
    fn records<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
    fn common(&self) -> &rustls::CommonState {
        self
    }
}

/// Lets rustls process `incoming` for `conn`, with the connection's session id lent to
/// the session stores and the ticketer that rustls calls meanwhile (see
/// [`tls_session_id`]); `id` is what they leave. An id offered by the client (a ticket that
/// opened, a cached session) that rustls did not resume after all is dropped first.
fn records<'c, 'i, C: Unbuffered>(
    conn: &'c mut C,
    id: &mut Option<SessionId>,
    incoming: &'i mut [u8],
) -> UnbufferedStatus<'c, 'i, C::Data> {
    *id = id.filter(|i| stands(conn.common(), i));
    // The thread-local cell only carries the id into this one call and back out: it is set
    // right before and emptied right after; the id itself lives in the connection.
    tls_session_id::lend(*id);
    let status = conn.records(incoming);
    *id = tls_session_id::reclaim();
    status
}

/// Whether `id` is the session's: one from a session the client offered stands only if the
/// handshake resumed it (rustls may open a ticket, then find it unfit and make a new session).
fn stands(common: &rustls::CommonState, id: &SessionId) -> bool {
    !id.resumed
        || common
            .handshake_kind()
            .is_none_or(|k| k == rustls::HandshakeKind::Resumed)
}

/// What [`Records::process`] does once rustls can take application data.
enum Out<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

/// A session with its ciphertext: received and not yet processed (`input`: a record's
/// beginning, or a handshake message still being reassembled), decrypted and not yet read
/// (`plain`), and records waiting for the socket (`output`).
pub(crate) struct Records<C> {
    conn: C,
    input: RecBuf,
    plain: RecBuf,
    output: RecBuf,
    /// The handshake is over: application data can be sent.
    established: bool,
    /// The peer sent close_notify.
    peer_closed: bool,
    /// A protocol error: nothing more goes through the session (its alert was queued).
    failed: bool,
    /// The id of the session (`$ssl_session_id`): set by rustls's calls to the ticketer and
    /// the session stores while it processes records.
    session_id: Option<SessionId>,
}

impl<C: Unbuffered> Records<C> {
    fn new(conn: C) -> Self {
        Records {
            conn,
            input: RecBuf::new(IN_BUF),
            plain: RecBuf::new(IN_BUF),
            output: RecBuf::new(OUT_BUF),
            established: false,
            peer_closed: false,
            failed: false,
            session_id: None,
        }
    }

    /// Runs rustls over the ciphertext held until it needs more: handshake messages are
    /// answered (their records queued in `output`), application data is decrypted (into
    /// `dst` while it has room below `limit`, the rest into `plain`), and, once application
    /// data may be sent, `out` is encrypted. Returns the plaintext bytes of `out` taken.
    fn process(
        &mut self,
        mut dst: Option<(&mut Vec<u8>, usize)>,
        out: Out<'_>,
    ) -> Result<usize, rustls::Error> {
        if self.failed {
            return Err(rustls::Error::General("the TLS session failed".into()));
        }
        let Records {
            conn,
            input,
            plain,
            output,
            established,
            peer_closed,
            session_id,
            ..
        } = self;
        let mut was_established = *established;
        loop {
            let incoming: &mut [u8] = if input.is_empty() {
                &mut []
            } else {
                input.filled()
            };
            let UnbufferedStatus { discard, state } = records(conn, session_id, incoming);
            // Each state's work, as a result: the discarded input is consumed before an
            // error is returned too (rustls expects it gone whatever happens next).
            let step: Result<Option<usize>, rustls::Error> = match state {
                Err(e) => Err(e),
                Ok(ConnectionState::ReadTraffic(mut r)) => (|| {
                    while let Some(rec) = r.next_record() {
                        let payload = rec?.payload;
                        match &mut dst {
                            Some((buf, limit))
                                if plain.is_empty() && buf.len() + payload.len() <= *limit =>
                            {
                                buf.extend_from_slice(payload);
                            }
                            _ => {
                                let room = plain.room(payload.len()).map_err(|_| {
                                    rustls::Error::General("plaintext buffer full".into())
                                })?;
                                room[..payload.len()].copy_from_slice(payload);
                                plain.filled_by(payload.len());
                            }
                        }
                    }
                    Ok(None)
                })(),
                Ok(ConnectionState::EncodeTlsData(mut e)) => (|| {
                    let mut need = 1024;
                    loop {
                        let room = output
                            .room(need)
                            .map_err(|_| rustls::Error::General("TLS output buffer full".into()))?;
                        match e.encode(room) {
                            Ok(n) => {
                                output.filled_by(n);
                                return Ok(None);
                            }
                            Err(EncodeError::InsufficientSize(s)) if s.required_size > need => {
                                need = s.required_size;
                            }
                            Err(_) => {
                                return Err(rustls::Error::General("TLS encoding failed".into()))
                            }
                        }
                    }
                })(),
                // The records are in `output`; the caller sends them.
                Ok(ConnectionState::TransmitTlsData(t)) => {
                    t.done();
                    Ok(None)
                }
                Ok(ConnectionState::BlockedHandshake) => Ok(Some(0)),
                Ok(ConnectionState::PeerClosed) => {
                    *peer_closed = true;
                    Ok(None)
                }
                Ok(ConnectionState::Closed) => {
                    *peer_closed = true;
                    Ok(Some(0))
                }
                Ok(ConnectionState::WriteTraffic(mut w)) => {
                    *established = true;
                    match out {
                        Out::Nothing => Ok(Some(0)),
                        Out::Data(data) => encrypt(&mut w, output, data).map(Some),
                        Out::CloseNotify => (|| {
                            let room = output.room(256).map_err(|_| {
                                rustls::Error::General("TLS output buffer full".into())
                            })?;
                            let n = w.queue_close_notify(room).map_err(encrypt_error)?;
                            output.filled_by(n);
                            Ok(Some(0))
                        })(),
                    }
                }
                // Early data (never accepted: max_early_data_size is 0).
                Ok(_) => Ok(Some(0)),
            };
            input.consume(discard);
            if *established && !was_established {
                was_established = true;
                if C::SERVER {
                    let kind = conn.common().handshake_kind();
                    crate::shared::count_handshake(kind == Some(rustls::HandshakeKind::Resumed));
                }
            }
            if let Some(n) = step? {
                return Ok(n);
            }
        }
    }

    /// After an error, the alert rustls queued is put in `output`: rustls hands out queued
    /// records before it looks at its input again (which would report, and alert, the same
    /// error once more), so one call does it.
    fn queue_alert(&mut self) {
        self.failed = true;
        let incoming: &mut [u8] = if self.input.is_empty() {
            &mut []
        } else {
            self.input.filled()
        };
        let status = records(&mut self.conn, &mut self.session_id, incoming);
        if let Ok(ConnectionState::EncodeTlsData(mut e)) = status.state {
            if let Ok(room) = self.output.room(1024) {
                if let Ok(n) = e.encode(room) {
                    self.output.filled_by(n);
                }
            }
        }
        self.input.release();
    }

    /// Writes the records waiting for the socket; Ok(true) when none are left.
    fn flush(&mut self, mut sock: &TcpStream) -> std::io::Result<bool> {
        while !self.output.is_empty() {
            match sock.write(self.output.filled()) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.output.consume(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads ciphertext from the socket into `input`. Ok(0): the peer closed (a FIN).
    fn fill(
        &mut self,
        mut sock: &TcpStream,
        ready: &mut bool,
        hup: bool,
    ) -> std::io::Result<usize> {
        loop {
            // What fits beside what is held, up to the limit of a handshake message.
            let need = READ_MIN.min(REC_MAX.saturating_sub(self.input.len()));
            if need == 0 {
                return Err(std::io::Error::new(
                    ErrorKind::InvalidData,
                    "TLS handshake message too large",
                ));
            }
            let room = self.input.room(need)?;
            let want = room.len();
            match sock.read(room) {
                Ok(n) => {
                    if n == 0 || (n < want && !hup) {
                        *ready = false;
                    }
                    self.input.filled_by(n);
                    if self.input.is_empty() {
                        self.input.release();
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.kind() == ErrorKind::WouldBlock {
                        *ready = false;
                    }
                    if self.input.is_empty() {
                        self.input.release();
                    }
                    return Err(e);
                }
            }
        }
    }

    /// A protocol error: its alert goes out, the session is not used any more.
    fn fail(&mut self, sock: &TcpStream, e: rustls::Error) -> std::io::Error {
        self.queue_alert();
        let _ = self.flush(sock);
        std::io::Error::new(ErrorKind::InvalidData, e)
    }

    /// Reads at most `want` bytes of plaintext into `buf`: what was decrypted already
    /// first, then records from the socket. Ok(0): the peer closed (close_notify, or a
    /// FIN). An `InvalidData` error: the peer broke the protocol (the alert is sent; the
    /// session cannot be used any more).
    fn read(
        &mut self,
        sock: &TcpStream,
        ready: &mut bool,
        hup: bool,
        buf: &mut Vec<u8>,
        want: usize,
    ) -> std::io::Result<usize> {
        if self.failed {
            return Err(ErrorKind::InvalidData.into());
        }
        // Handshake records or an alert may still wait for the socket.
        self.flush(sock)?;
        loop {
            if !self.plain.is_empty() {
                let n = want.min(self.plain.len());
                buf.extend_from_slice(&self.plain.filled()[..n]);
                self.plain.consume(n);
                return Ok(n);
            }
            if self.peer_closed {
                return Ok(0);
            }
            if !*ready {
                return Err(ErrorKind::WouldBlock.into());
            }
            if self.fill(sock, ready, hup)? == 0 {
                return Ok(0);
            }
            let before = buf.len();
            let limit = before + want;
            match self.process(Some((buf, limit)), Out::Nothing) {
                Ok(_) => {}
                Err(e) => return Err(self.fail(sock, e)),
            }
            self.flush(sock)?;
            if buf.len() > before {
                return Ok(buf.len() - before);
            }
        }
    }

    /// Writes plaintext (the part of `data` taken is reported; its records may still wait
    /// for the socket, see [`Records::flush`]).
    fn write(&mut self, sock: &TcpStream, data: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(ErrorKind::BrokenPipe.into());
        }
        self.flush(sock)?;
        if self.output.len() >= PENDING_MAX || !self.established {
            return Err(ErrorKind::WouldBlock.into());
        }
        let n = match self.process(None, Out::Data(&data[..data.len().min(WRITE_MAX)])) {
            Ok(n) => n,
            Err(e) => return Err(self.fail(sock, e)),
        };
        if n == 0 && !data.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        self.flush(sock)?;
        Ok(n)
    }

    /// Queues close_notify and sends what the socket takes (before a close).
    fn close_notify(&mut self, sock: &TcpStream) {
        if self.established && !self.failed && self.process(None, Out::CloseNotify).is_ok() {
            let _ = self.flush(sock);
        }
    }
}

/// Encrypts as much of `data` as fits in `output` as records; returns the bytes taken.
fn encrypt<D>(
    w: &mut rustls::unbuffered::WriteTraffic<'_, D>,
    output: &mut RecBuf,
    data: &[u8],
) -> Result<usize, rustls::Error> {
    if data.is_empty() {
        return Ok(0);
    }
    // Records add at most 64 bytes to every 1 KiB of plaintext (the smallest records
    // ssl_buffer_size allows are 512 bytes); rustls says when that guess is short. What
    // is taken fits beside the records already waiting, in a pooled buffer.
    let space = OUT_BUF.saturating_sub(output.len() + 256);
    let mut n = data.len().min(space - space / 16);
    if n == 0 {
        return Ok(0);
    }
    loop {
        let need = n + n / 16 + 256;
        let room = output
            .room(need)
            .map_err(|_| rustls::Error::General("TLS output buffer full".into()))?;
        match w.encrypt(&data[..n], room) {
            Ok(k) => {
                output.filled_by(k);
                return Ok(n);
            }
            Err(EncryptError::InsufficientSize(_)) if n > 1024 => n /= 2,
            Err(e) => return Err(encrypt_error(e)),
        }
    }
}

fn encrypt_error(e: EncryptError) -> rustls::Error {
    match e {
        EncryptError::EncryptExhausted => rustls::Error::EncryptError,
        EncryptError::InsufficientSize(_) => {
            rustls::Error::General("TLS output buffer full".into())
        }
    }
}

impl<C> Drop for Records<C> {
    fn drop(&mut self) {
        self.input.release();
        self.plain.release();
        self.output.release();
    }
}

/// The TLS side of a client connection.
pub(crate) struct TlsConn {
    pub(crate) state: TlsState,
    /// The key-exchange groups the ClientHello offered (`$ssl_curves`).
    pub(crate) client_groups: Box<[rustls::NamedGroup]>,
    /// The cipher suites the ClientHello offered (`$ssl_ciphers`).
    pub(crate) client_suites: Box<[rustls::CipherSuite]>,
    /// The name the client asked for by SNI (`$ssl_server_name`).
    pub(crate) server_name: Option<Box<str>>,
    /// The server the SNI name chose (its certificate answered; its HTTP/2 settings apply).
    pub(crate) server: Option<proton_ir::ServerId>,
    /// The client-certificate verifier of the server whose config answered the handshake
    /// (`None`: no certificate was asked for).
    client_auth: Option<Arc<ClientAuth>>,
    /// `$ssl_client_verify`, computed when first needed.
    verdict: Cell<Option<Verdict>>,
}

/// The ClientHello being read: the acceptor parses it, its bytes are kept for the session
/// that answers it.
pub(crate) struct Hello {
    acceptor: Acceptor,
    bytes: RecBuf,
    /// Bytes of `bytes` the acceptor has read.
    fed: usize,
    /// The connection's first bytes were a TLS record.
    started: bool,
}

pub(crate) enum TlsState {
    /// Waiting for the ClientHello.
    Accepting(Box<Hello>),
    Ready(Box<Records<UnbufferedServerConnection>>),
    /// The client spoke plain HTTP to a TLS address (its request gets 497).
    Plain,
}

impl TlsConn {
    pub(crate) fn new() -> TlsConn {
        TlsConn {
            state: TlsState::Accepting(Box::new(Hello {
                acceptor: Acceptor::default(),
                bytes: RecBuf::default(),
                fed: 0,
                started: false,
            })),
            client_groups: Box::default(),
            client_suites: Box::default(),
            server_name: None,
            server: None,
            client_auth: None,
            verdict: Cell::new(None),
        }
    }

    /// The established session (`None` before the handshake, and for plain HTTP).
    pub(crate) fn session(&self) -> Option<&UnbufferedServerConnection> {
        match &self.state {
            TlsState::Ready(r) => Some(&r.conn),
            _ => None,
        }
    }

    /// The id of the TLS session (`$ssl_session_id`): the one the handshake resumed, else
    /// the one it made (known once a ticket is issued or the session is cached).
    pub(crate) fn session_id(&self) -> Option<&[u8; tls_session_id::LEN]> {
        match &self.state {
            TlsState::Ready(r) => r
                .session_id
                .as_ref()
                .filter(|i| stands(r.conn.common(), i))
                .map(|i| &i.bytes),
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
        matches!(&self.state, TlsState::Ready(r) if !r.output.is_empty())
    }

    /// Plaintext can be read without the socket.
    pub(crate) fn has_plaintext(&self) -> bool {
        matches!(&self.state, TlsState::Ready(r) if !r.plain.is_empty())
    }

    /// Queues close_notify and sends what the socket takes (before a close).
    pub(crate) fn close_notify(&mut self, sock: &TcpStream) {
        if let TlsState::Ready(r) = &mut self.state {
            r.close_notify(sock);
        }
    }
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
        match &mut self.state {
            TlsState::Ready(r) => r.read(sock, ready, hup, buf, want),
            TlsState::Plain => read_ready(sock, ready, hup, buf, want),
            TlsState::Accepting(_) => Err(ErrorKind::WouldBlock.into()),
        }
    }

    fn write(&mut self, sock: &TcpStream, data: &[u8]) -> std::io::Result<usize> {
        match &mut self.state {
            TlsState::Plain => (&mut &*sock).write(data),
            TlsState::Ready(r) => r.write(sock, data),
            TlsState::Accepting(_) => Err(ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self, sock: &TcpStream) -> std::io::Result<bool> {
        match &mut self.state {
            TlsState::Ready(r) => r.flush(sock),
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
    rec: Records<UnbufferedClientConnection>,
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
            rec: Records::new(UnbufferedClientConnection::new(config, name)?),
        })
    }

    /// Advances the handshake: the ClientHello goes out with the first write (which also
    /// tells whether the non-blocking connect succeeded), the server's flight is read as it
    /// arrives (`hup`: the upstream's FIN was seen, so a short read is not the end of what
    /// the socket has).
    pub(crate) fn handshake(&mut self, sock: &TcpStream, ready: &mut bool, hup: bool) -> Handshake {
        loop {
            if let Err(e) = self.rec.process(None, Out::Nothing) {
                self.rec.queue_alert();
                let _ = self.rec.flush(sock);
                return Handshake::Tls(e);
            }
            match self.rec.flush(sock) {
                Ok(true) => {}
                Ok(false) => return Handshake::Blocked,
                Err(e) if e.kind() == ErrorKind::NotConnected => return Handshake::Blocked,
                Err(e) => return Handshake::Connect(e),
            }
            if self.rec.established {
                return Handshake::Done;
            }
            if !*ready {
                return Handshake::Blocked;
            }
            match self.rec.fill(sock, ready, hup) {
                Ok(0) => return Handshake::Closed,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Handshake::Blocked,
                Err(_) => return Handshake::Closed,
            }
        }
    }

    /// Whether an idle (cached) connection is still usable after its socket became
    /// readable: records that arrive while idle (session tickets, say) are taken in; a
    /// close_notify, a FIN, an error or application data means it cannot be reused.
    pub(crate) fn idle_alive(&mut self, sock: &TcpStream) -> bool {
        // Read to the end (`hup`: a short read does not stop it), so that a FIN already
        // queued is seen.
        let mut ready = true;
        while ready {
            match self.rec.fill(sock, &mut ready, true) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return false,
            }
            if self.rec.process(None, Out::Nothing).is_err()
                || !self.rec.plain.is_empty()
                || self.rec.peer_closed
            {
                return false;
            }
        }
        !self.rec.failed
    }
}

impl Transport for UpTls {
    fn read(
        &mut self,
        sock: &TcpStream,
        ready: &mut bool,
        hup: bool,
        buf: &mut Vec<u8>,
        want: usize,
    ) -> std::io::Result<usize> {
        self.rec.read(sock, ready, hup, buf, want)
    }

    fn write(&mut self, sock: &TcpStream, data: &[u8]) -> std::io::Result<usize> {
        self.rec.write(sock, data)
    }

    fn flush(&mut self, sock: &TcpStream) -> std::io::Result<bool> {
        self.rec.flush(sock)
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
    ) -> Option<(
        proton_ir::ServerId,
        Arc<rustls::ServerConfig>,
        Option<Arc<ClientAuth>>,
    )> {
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
            Some(Some((sid, config, auth)))
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
            Some(TlsState::Ready(r)) => !r.established,
            _ => false,
        }
    }

    /// The connection's established TLS session (`None` for plain HTTP).
    pub(crate) fn tls_session(&self) -> Option<&UnbufferedServerConnection> {
        self.tls().and_then(TlsConn::session)
    }

    /// The config that answers a handshake for server `sid`: `base`, or when its
    /// `ssl_certificate` has variables, `base` with the files they name now (with the
    /// connection's variables: `$ssl_server_name`, the addresses, maps of them), read the
    /// first time a worker meets those names and then kept (the [`NAMED_MAX`] most recently
    /// used). `twin`: which of the server's configs `base` is (bit 0: its ChaCha20-first
    /// twin, bit 1: its HTTP/2 twin). The error names the file.
    fn named_certificates(
        &self,
        w: &mut Worker<'_>,
        sid: proton_ir::ServerId,
        base: Arc<rustls::ServerConfig>,
        twin: u8,
    ) -> Result<Arc<rustls::ServerConfig>, String> {
        let loaded = w.loaded;
        let Some(t) = loaded
            .ir
            .servers
            .get(sid.0 as usize)
            .and_then(|s| s.tls.as_deref())
            .filter(|t| !t.certificate_vars.is_empty())
        else {
            return Ok(base);
        };
        // The names, each ended by a NUL (which no path holds).
        let mut names = Vec::new();
        let mut req = w.contexts.get();
        req.server = sid;
        {
            let mut ctx = w.ctx(self, &req, 0);
            ctx.tls = self.tls();
            for p in &t.certificate_vars {
                ctx.expand(&p.certificate, &mut names);
                names.push(0);
                ctx.expand(&p.key, &mut names);
                names.push(0);
            }
        }
        w.release_context(Some(req));
        if let Some(i) = w
            .tls_named
            .iter()
            .position(|(s, t, n, _)| *s == sid.0 && *t == twin && *n == names)
        {
            let hit = w.tls_named.remove(i);
            let config = hit.3.clone();
            w.tls_named.push(hit);
            return Ok(config);
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let parts: Vec<&[u8]> = names.split(|&b| b == 0).collect();
        let pairs: Vec<proton_ir::CertificatePair> = parts
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| proton_ir::CertificatePair {
                certificate: text(c[0]),
                key: text(c[1]),
            })
            .collect();
        let passwords = loaded
            .tls_passwords
            .get(sid.0 as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()));
        let config = Arc::new(proton_tls::with_certificates(
            &base,
            t,
            &pairs,
            &passwords,
            &loaded.prefix,
        )?);
        if w.tls_named.len() >= NAMED_MAX {
            w.tls_named.remove(0);
        }
        w.tls_named.push((sid.0, twin, names, config.clone()));
        Ok(config)
    }

    /// A ClientHello rustls refused: its alert goes out, the reason to the error log.
    fn refuse_hello(
        &self,
        w: &Worker<'_>,
        e: &rustls::Error,
        mut alert: rustls::server::AcceptedAlert,
    ) -> Accept {
        if let Some(mut s) = self.sock.tcp() {
            let _ = alert.write_all(&mut s);
        }
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
        let super::conn::Sock::Tcp(sock) = &self.sock else {
            return Accept::Close;
        };
        let Some(t) = super::conn::tls_mut(&mut self.ext) else {
            return Accept::Progress;
        };
        let TlsState::Accepting(hello) = &mut t.state else {
            return Accept::Progress;
        };
        loop {
            if !hello.started {
                let mut first = [0u8; 1];
                match sock.peek(&mut first) {
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
                if first[0] != 0x16 && first[0] & 0x80 == 0 {
                    t.state = TlsState::Plain;
                    return Accept::Progress;
                }
                hello.started = true;
            }
            let room = match hello.bytes.room(4096) {
                Ok(room) => room,
                Err(_) => return Accept::Close,
            };
            match (&mut &*sock).read(room) {
                Ok(0) => return Accept::Close,
                Ok(n) => hello.bytes.filled_by(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.rd_ready = false;
                    return Accept::WouldBlock;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Accept::Close,
            }
            // The acceptor reads the new bytes (a few KiB at a time) until it has the
            // whole ClientHello.
            let accepted = loop {
                if hello.fed == hello.bytes.len() {
                    break None;
                }
                let mut unread = &hello.bytes.filled()[hello.fed..];
                match hello.acceptor.read_tls(&mut unread) {
                    Ok(0) | Err(_) => return Accept::Close,
                    Ok(n) => hello.fed += n,
                }
                match hello.acceptor.accept() {
                    Ok(None) => {}
                    Ok(Some(accepted)) => break Some(accepted),
                    Err((e, alert)) => return self.refuse_hello(w, &e, alert),
                }
            };
            let Some(accepted) = accepted else {
                continue;
            };
            let ch = accepted.client_hello();
            if let Some(groups) = ch.named_groups() {
                t.client_groups = groups.into();
            }
            t.client_suites = ch.cipher_suites().into();
            let name = ch.server_name().map(|n| n.trim_end_matches('.'));
            t.server_name = name.map(Box::from);
            let sni = name.map(str::to_ascii_lowercase);
            let config = w.tls_config(self.listener as usize, sni.as_deref());
            let Some((sid, config, auth)) = config else {
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
                let _ = (&mut &*sock).write(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]);
                return Accept::Close;
            };
            let bytes = std::mem::take(&mut hello.bytes);
            // A client that puts ChaCha20 first (no AES hardware) gets it from a server
            // that chooses by its own order (OpenSSL's PRIORITIZE_CHACHA).
            let chacha = t
                .client_suites
                .iter()
                .find(|s| s.as_str().is_some())
                .copied()
                .is_some_and(proton_tls::is_chacha);
            // A server that may speak HTTP/2 offers it by ALPN (`listen … http2`, or
            // `http2 on` in the server the SNI name chose, as nginx).
            let h2 = w.http2_allowed(self.listener as usize, sid);
            let twins = match (chacha, h2) {
                (false, false) => None,
                (true, false) => Some(&w.loaded.tls_chacha),
                (false, true) => Some(&w.loaded.tls_h2),
                (true, true) => Some(&w.loaded.tls_h2_chacha),
            };
            let (config, twin) = match twins.and_then(|v| v.get(sid.0 as usize)) {
                Some(Some(c)) => (c.clone(), u8::from(chacha) | u8::from(h2) << 1),
                // No ChaCha20-first twin (the server does not order suites): its HTTP/2 one.
                _ if chacha && h2 => match w.loaded.tls_h2.get(sid.0 as usize) {
                    Some(Some(c)) => (c.clone(), 2),
                    _ => (config, 0),
                },
                _ => (config, 0),
            };
            t.server = Some(sid);
            let config = match self.named_certificates(w, sid, config, twin) {
                Ok(c) => c,
                Err(e) => {
                    elog!(
                        w.elog,
                        Error,
                        "{e} while SSL handshaking, client: {}",
                        self.peer.ip()
                    );
                    return Accept::Close;
                }
            };
            let Some(t) = super::conn::tls_mut(&mut self.ext) else {
                return Accept::Close;
            };
            let conn = match UnbufferedServerConnection::new(config) {
                Ok(c) => c,
                Err(e) => {
                    elog!(
                        w.elog,
                        Alert,
                        "SSL_new() failed ({e}), client: {}",
                        self.peer.ip()
                    );
                    return Accept::Close;
                }
            };
            // The session reads the ClientHello again, from the same bytes.
            let mut rec = Box::new(Records::new(conn));
            rec.input = bytes;
            t.client_auth = auth;
            let r = rec.process(None, Out::Nothing);
            if let Err(e) = r {
                let _ = rec.fail(sock, e.clone());
                elog!(
                    w.elog,
                    Info,
                    "SSL_do_handshake() failed ({e}) while SSL handshaking, client: {}",
                    self.peer.ip()
                );
                return Accept::Close;
            }
            let flushed = rec.flush(sock);
            t.state = TlsState::Ready(rec);
            return match flushed {
                Ok(_) => Accept::Progress,
                Err(_) => Accept::Close,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_buffer_holds_nothing_when_empty_and_grows_to_a_bound() {
        let mut b = RecBuf::default();
        assert!(b.is_empty() && b.data.capacity() == 0);
        let room = b.room(10).expect("room");
        room[..5].copy_from_slice(b"hello");
        b.filled_by(5);
        assert_eq!(b.filled(), b"hello");
        b.consume(2);
        assert_eq!(b.filled(), b"llo");
        // Asking for more than the tail holds moves the bytes to the front first.
        let tail = IN_BUF - 4;
        b.room(tail).expect("room");
        assert_eq!((b.start, b.end), (0, 3));
        assert_eq!(b.filled(), b"llo");
        // A handshake message being reassembled may grow the buffer, up to REC_MAX.
        b.room(IN_BUF).expect("grows");
        assert!(b.data.len() >= IN_BUF + 3 && b.data.len() <= REC_MAX);
        b.filled_by(REC_MAX - 3);
        assert!(b.room(REC_MAX - b.len() + 1).is_err());
        assert!(b.room(REC_MAX - b.len()).is_ok());
        b.filled_by(REC_MAX);
        assert_eq!(b.len(), REC_MAX);
        // Consumed to the end: the buffer is given back (a large one is not pooled).
        b.consume(b.len());
        assert!(b.is_empty() && b.data.capacity() == 0);
        let pooled = POOL.with(|p| p.borrow()[0].len());
        b.room(1).expect("room");
        b.filled_by(1);
        b.consume(1);
        assert_eq!(POOL.with(|p| p.borrow()[0].len()), pooled + 1);
        // Output buffers have a pool of their own.
        let mut o = RecBuf::new(OUT_BUF);
        o.room(1).expect("room");
        assert_eq!(o.data.len(), OUT_BUF);
        o.filled_by(1);
        o.consume(1);
        assert_eq!(POOL.with(|p| p.borrow()[1].len()), 1);
        // filled_by never claims past the end.
        b.room(1).expect("room");
        b.filled_by(usize::MAX / 2);
        assert_eq!(b.len(), IN_BUF);
    }
}
