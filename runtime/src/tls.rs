//! TLS state a generation of workers shares: each server's rustls config (built by
//! `proton_tls` from the IR, in the master, before the workers are forked), the session
//! ticket keys, and the session cache.
//!
//! Ticket keys without `ssl_session_ticket_key`: the master makes one random secret when it
//! first loads a config and keeps it for its whole life (workers inherit it at fork, so every
//! worker of every generation shares it). The key that encrypts a ticket is derived from the
//! secret and the current period of `ssl_session_timeout` (HMAC-SHA256), and the previous
//! period's key still decrypts: keys rotate without any message between processes, and a
//! ticket issued by one worker resumes on another, and after a reload.

use crate::tls_session_id::{self, Tracked};
use proton_ir::{ServerTls, SessionCache};
use rustls::server::{ProducesTickets, StoresServerSessions};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};

/// The master's ticket secret (made once per master process, inherited by workers).
static SECRET: OnceLock<[u8; 32]> = OnceLock::new();

/// Marks a ticket sealed with a key derived from [`SECRET`] (the rest of its 16-byte name is
/// the period number).
const DERIVED: &[u8; 8] = b"proton-t";

fn secret() -> &'static [u8; 32] {
    SECRET.get_or_init(|| {
        let mut s = [0u8; 32];
        if aws_lc_rs::rand::fill(&mut s).is_err() {
            // The system's random source failed: tickets then cannot be trusted; a key
            // from the clock is still unique per master, and `ssl_session_ticket_key`
            // files remain available.
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            s[..16].copy_from_slice(&t.to_le_bytes());
        }
        s
    })
}

/// Makes the master's ticket secret now (called by the master before it forks workers).
pub fn init_secret() {
    let _ = secret();
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Length of a session context.
pub const CTX_LEN: usize = 16;

/// nginx's session id context (`ngx_ssl_session_id_context`): a digest of what a session
/// was made with (the certificates, as written, variables included, and the client
/// certificate checks). A session, by ticket or id, resumes only on a server whose context
/// is the same: another port with the same certificate resumes it, one with another
/// certificate makes a new one (ssl_certificate.t).
pub fn session_context(t: &ServerTls) -> [u8; CTX_LEN] {
    let mut d = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    d.update(b"HTTP");
    let mut field = |b: &[u8]| {
        d.update(&(b.len() as u64).to_be_bytes());
        d.update(b);
    };
    for c in &t.certificates {
        field(c.certificate.as_bytes());
        field(c.key.as_bytes());
    }
    for c in &t.certificate_vars {
        field(format!("{:?}", c.certificate).as_bytes());
        field(format!("{:?}", c.key).as_bytes());
    }
    field(format!("{:?} {}", t.verify_client, t.verify_depth).as_bytes());
    for path in [&t.client_certificate, &t.trusted_certificate, &t.crl] {
        field(path.as_deref().unwrap_or("").as_bytes());
    }
    let digest = d.finish();
    let mut ctx = [0u8; CTX_LEN];
    ctx.copy_from_slice(&digest.as_ref()[..CTX_LEN]);
    ctx
}

/// Seals and opens session tickets: `name (16) | nonce (12) | AES-GCM(expiry (8) | id (32) | state) | tag
/// (16)`, where `id` is the session's id (`$ssl_session_id`, kept by every ticket issued on a
/// connection that resumed it).
pub struct Tickets {
    /// `ssl_session_ticket_key` files: the first seals, all open.
    files: Vec<(Vec<u8>, LessSafeKey)>,
    /// Seconds a ticket lives (`ssl_session_timeout`), and the rotation period.
    lifetime: u32,
    /// The server's session context ([`session_context`]): part of every ticket's
    /// authenticated data, so a ticket opens only where it was issued (or where the
    /// certificates and client checks are the same).
    ctx: [u8; CTX_LEN],
}

impl std::fmt::Debug for Tickets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tickets")
            .field("files", &self.files.len())
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl Tickets {
    pub fn new(t: &ServerTls) -> Result<Tickets, String> {
        let mut files = Vec::new();
        for path in &t.ticket_key_files {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("cannot read ssl_session_ticket_key \"{path}\": {e}"))?;
            let k = proton_ir::tls::ticket_key_file(&bytes)
                .map_err(|e| format!("ssl_session_ticket_key \"{path}\": {e}"))?;
            let alg = if k.aead_key.len() == 16 {
                &AES_128_GCM
            } else {
                &AES_256_GCM
            };
            let key = UnboundKey::new(alg, &k.aead_key)
                .map_err(|_| format!("ssl_session_ticket_key \"{path}\": unusable key"))?;
            files.push((k.name.to_vec(), LessSafeKey::new(key)));
        }
        Ok(Tickets {
            files,
            lifetime: u32::try_from(t.session_timeout_secs.max(1)).unwrap_or(u32::MAX),
            ctx: session_context(t),
        })
    }

    /// A ticket's authenticated data: its key name and the server's session context.
    fn aad(&self, name: &[u8]) -> [u8; 16 + CTX_LEN] {
        let mut a = [0u8; 16 + CTX_LEN];
        let n = name.len().min(16);
        a[..n].copy_from_slice(&name[..n]);
        a[16..].copy_from_slice(&self.ctx);
        a
    }

    fn period(&self) -> u64 {
        unix_now() / u64::from(self.lifetime.max(60))
    }

    /// The key of rotation period `p`, derived from the master's secret.
    fn derived(p: u64) -> Option<LessSafeKey> {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret());
        let tag = aws_lc_rs::hmac::sign(&k, &p.to_be_bytes());
        let key = UnboundKey::new(&AES_256_GCM, tag.as_ref()).ok()?;
        Some(LessSafeKey::new(key))
    }
}

impl ProducesTickets for Tickets {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    /// Called by rustls inside the call that processes a connection's records: the ticket
    /// carries the connection's session id (see `tls_session_id`).
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let (id, resumed) = tls_session_id::for_ticket()?;
        let expires =
            resumed.unwrap_or_else(|| unix_now().saturating_add(u64::from(self.lifetime)));
        self.seal(&id, plain, self.period(), expires)
    }

    /// As `encrypt`: the id sealed in the ticket becomes the connection's.
    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let (id, expires, plain) = self.open(cipher)?;
        tls_session_id::resumed(id, Some(expires));
        Some(plain)
    }
}

impl Tickets {
    /// Seals the session's expiry (Unix seconds: when made, plus `ssl_session_timeout`), its
    /// `id` and its state `plain` with the first key file's key, else the key of rotation
    /// period `p`.
    fn seal(
        &self,
        id: &[u8; tls_session_id::LEN],
        plain: &[u8],
        p: u64,
        expires: u64,
    ) -> Option<Vec<u8>> {
        let mut name = [0u8; 16];
        let derived;
        let key = match self.files.first() {
            Some((n, k)) => {
                name.copy_from_slice(n);
                k
            }
            None => {
                name[..8].copy_from_slice(DERIVED);
                name[8..].copy_from_slice(&p.to_be_bytes());
                derived = Tickets::derived(p)?;
                &derived
            }
        };
        let mut nonce = [0u8; 12];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(16 + 12 + 8 + id.len() + plain.len() + 16);
        out.extend_from_slice(&name);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&expires.to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(plain);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.aad(&name)),
                &mut out[16 + 12..],
            )
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        Some(out)
    }

    /// The session id and state sealed in `cipher`, if one of the keys opens it and the
    /// session has not expired (rustls does not check a ticket's age; OpenSSL refuses a
    /// session older than `ssl_session_timeout`).
    fn open(&self, cipher: &[u8]) -> Option<([u8; tls_session_id::LEN], u64, Vec<u8>)> {
        if cipher.len() < 16 + 12 + 8 + tls_session_id::LEN + 16 {
            return None;
        }
        let (name, rest) = cipher.split_at(16);
        let (nonce, sealed) = rest.split_at(12);
        let derived;
        let key = if self.files.is_empty() && name.starts_with(DERIVED) {
            let p = u64::from_be_bytes(name[8..].try_into().ok()?);
            let now = self.period();
            if p > now || now - p > 1 {
                return None;
            }
            derived = Tickets::derived(p)?;
            &derived
        } else {
            &self.files.iter().find(|(n, _)| n == name)?.1
        };
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(self.aad(name)), &mut body)
            .ok()?;
        let expires = u64::from_be_bytes(plain.get(..8)?.try_into().ok()?);
        if unix_now() > expires {
            return None;
        }
        let id =
            <[u8; tls_session_id::LEN]>::try_from(plain.get(8..8 + tls_session_id::LEN)?).ok()?;
        let n = plain.len();
        body.truncate(n);
        body.drain(..8 + tls_session_id::LEN);
        Some((id, expires, body))
    }
}

/// The session resumption state of a server's settings (the stores keyed by session id, so
/// that `$ssl_session_id` knows the session).
pub fn resumption(t: &ServerTls) -> Result<proton_tls::Resumption, String> {
    let mut r = proton_tls::Resumption::none();
    if t.session_tickets {
        r.ticketer = Arc::new(Tickets::new(t)?);
    }
    match &t.session_cache {
        SessionCache::Cache {
            shared: Some((name, size)),
            ..
        } => {
            let zone = crate::tls_cache::SharedSessions::zone(name, *size)?;
            r.storage = Arc::new(Tracked(
                zone.with_timeout(t.session_timeout_secs),
                session_context(t),
            ));
        }
        SessionCache::Cache { builtin, .. } => {
            let storage: Arc<dyn StoresServerSessions> =
                rustls::server::ServerSessionMemoryCache::new((*builtin as usize).max(1));
            r.storage = Arc::new(Tracked(storage, session_context(t)));
        }
        SessionCache::Off | SessionCache::None => {}
    }
    Ok(r)
}

/// The TLS state of a generation's servers, by server index.
#[derive(Default)]
pub struct ServerConfigs {
    /// The rustls config of every server with a certificate.
    pub configs: Vec<Option<Arc<rustls::ServerConfig>>>,
    /// Its twin with the ChaCha20 suites first (servers that choose by their own order),
    /// for clients that put ChaCha20 first.
    pub chacha: Vec<Option<Arc<rustls::ServerConfig>>>,
    /// The twins of `configs` and `chacha` that offer HTTP/2 by ALPN (for servers that
    /// may speak it: `http2 on`, or some address with `listen … http2`).
    pub h2: Vec<Option<Arc<rustls::ServerConfig>>>,
    pub h2_chacha: Vec<Option<Arc<rustls::ServerConfig>>>,
    /// The client-certificate verifier of every server with `ssl_verify_client` (the one
    /// of the server whose config answered a handshake checks that connection's chain).
    pub client_auth: Vec<Option<Arc<proton_tls::ClientAuth>>>,
    /// The `ssl_password_file` passphrases of every server whose certificates have
    /// variables (read once per load, as nginx keeps them, for the keys read per
    /// handshake).
    pub passwords: Vec<Arc<[String]>>,
    /// Where `ssl_stapling` responses are fetched, when some certificate needs it (each
    /// worker starts its thread).
    pub ocsp: Option<Arc<crate::ocsp::Fetcher>>,
    /// nginx's warnings about the settings, for the error log.
    pub warnings: Vec<String>,
}

/// The rustls config of every server with TLS settings, by server index.
pub fn server_configs(
    ir: &proton_ir::Ir,
    prefix: &std::path::Path,
) -> Result<ServerConfigs, String> {
    type Built<'a> = (
        &'a ServerTls,
        Arc<rustls::ServerConfig>,
        Option<Arc<proton_tls::ClientAuth>>,
    );
    let mut built: Vec<Built<'_>> = Vec::new();
    let mut out = ServerConfigs::default();
    let fetcher = Arc::new(crate::ocsp::Fetcher::default());
    let mut passwords: Vec<(String, Vec<String>)> = Vec::new();
    for s in &ir.servers {
        out.passwords.push(Arc::from(Vec::new()));
        let Some(t) = s.tls.as_deref() else {
            out.configs.push(None);
            out.chacha.push(None);
            out.client_auth.push(None);
            continue;
        };
        if t.certificates.is_empty() && t.certificate_vars.is_empty() {
            out.configs.push(None);
            out.chacha.push(None);
            out.client_auth.push(None);
            continue;
        }
        // The master makes the ticket secret before it forks, so that every worker seals
        // tickets with the same keys. Only configs with TLS do: seeding the TLS library's
        // random generator costs tens of milliseconds of start-up.
        init_secret();
        // Servers that inherit the same settings (from http) share one config, so that its
        // session cache and tickets are one.
        if let Some((_, c, a)) = built.iter().find(|(b, _, _)| *b == t) {
            let first = ir.servers.iter().position(|o| o.tls.as_deref() == Some(t));
            let twin = first.and_then(|i| out.chacha.get(i).cloned().flatten());
            out.chacha.push(twin);
            out.configs.push(Some(c.clone()));
            out.client_auth.push(a.clone());
            if let (Some(i), Some(slot)) = (first, out.passwords.len().checked_sub(1)) {
                out.passwords[slot] = out.passwords[i].clone();
            }
            continue;
        }
        let here = proton_tls::resolve_paths(t, prefix);
        // Each password file is read once per load (it may be a pipe, as in nginx).
        let pw = match &here.password_file {
            Some(f) => match passwords.iter().find(|(p, _)| p == f) {
                Some((_, list)) => list.clone(),
                None => {
                    let list = proton_tls::passwords(std::path::Path::new(f))?;
                    passwords.push((f.clone(), list.clone()));
                    list
                }
            },
            None => Vec::new(),
        };
        if !t.certificate_vars.is_empty() {
            if let Some(slot) = out.passwords.last_mut() {
                *slot = Arc::from(pw.clone());
            }
        }
        let fetcher = fetcher.clone();
        let b = proton_tls::server_config_with_auth(
            &here,
            resumption(&here)?,
            &pw,
            Some(fetcher.clone() as Arc<dyn proton_tls::ocsp::FetchOcsp>),
        )?;
        if b.fetches {
            out.ocsp = Some(fetcher);
        }
        out.warnings.extend(b.warnings);
        out.chacha.push(b.chacha.map(Arc::new));
        let (c, a) = (Arc::new(b.config), b.auth);
        built.push((t, c.clone(), a.clone()));
        out.configs.push(Some(c));
        out.client_auth.push(a);
    }
    let any_listen_h2 = ir.listeners.iter().any(|l| l.http2);
    let twin = |c: &Option<Arc<rustls::ServerConfig>>, h2: bool| {
        c.as_ref()
            .filter(|_| h2)
            .map(|c| Arc::new(proton_tls::with_h2(c)))
    };
    for (i, s) in ir.servers.iter().enumerate() {
        let h2 = any_listen_h2 || ir.server_settings(s).is_some_and(|s| s.http2.enabled);
        out.h2.push(out.configs.get(i).and_then(|c| twin(c, h2)));
        out.h2_chacha
            .push(out.chacha.get(i).and_then(|c| twin(c, h2)));
    }
    Ok(out)
}

/// Where [`upstream_configs`] keeps the config of settings record `settings` for an
/// upstream of `protocol`: the proxy module's `proxy_ssl_*`, the uwsgi module's
/// `uwsgi_ssl_*` and the grpc module's `grpc_ssl_*` (with ALPN `h2`) of one record are
/// three configs.
pub fn upstream_tls_slot(settings: usize, protocol: proton_ir::Protocol) -> usize {
    settings * 3
        + match protocol {
            proton_ir::Protocol::Uwsgi => 1,
            proton_ir::Protocol::Grpc => 2,
            _ => 0,
        }
}

/// The rustls client config for `https://` (and `suwsgi://`) upstreams of every settings
/// record used by a location that proxies (by [`upstream_tls_slot`]; `None` where no
/// location proxies with it). Equal `proxy_ssl_*` settings share one config, and so one
/// session cache (per worker, as each worker has its own copy of the config after the fork).
pub fn upstream_configs(
    ir: &proton_ir::Ir,
    prefix: &std::path::Path,
) -> Result<Vec<Option<Arc<rustls::ClientConfig>>>, String> {
    let mut out: Vec<Option<Arc<rustls::ClientConfig>>> = vec![None; ir.settings.len() * 3];
    let mut built: Vec<(&proton_ir::UpstreamTls, bool, Arc<rustls::ClientConfig>)> = Vec::new();
    for l in &ir.locations {
        let Some(p) = l.conf.proxy.as_deref() else {
            continue;
        };
        let Some(s) = ir.settings.get(l.conf.settings.0 as usize) else {
            continue;
        };
        let i = upstream_tls_slot(l.conf.settings.0 as usize, p.protocol);
        if out[i].is_some() {
            continue;
        }
        let t = &s.upstream(p.protocol).tls;
        let h2 = p.protocol == proton_ir::Protocol::Grpc;
        if let Some((_, _, c)) = built.iter().find(|(b, a, _)| *b == t && *a == h2) {
            out[i] = Some(c.clone());
            continue;
        }
        // A proxy_pass with variables may turn out https at request time: its config is
        // built when it can be (a request that needs a config that could not be built
        // gets a 502).
        let c = match proton_tls::client_config(&proton_tls::resolve_upstream_paths(t, prefix)) {
            Ok(mut c) => {
                if h2 {
                    // gRPC speaks HTTP/2 only: ALPN says so (nginx's grpc module too).
                    c.alpn_protocols = vec![b"h2".to_vec()];
                }
                Arc::new(c)
            }
            Err(e) if p.scheme == proton_ir::Scheme::Https => return Err(e),
            Err(_) => continue,
        };
        built.push((t, h2, c.clone()));
        out[i] = Some(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls() -> ServerTls {
        ServerTls {
            certificates: vec![],
            certificate_vars: Vec::new(),
            tls12: true,
            tls13: true,
            ciphers: vec![],
            prefer_server_ciphers: false,
            curves: vec![],
            session_cache: SessionCache::None,
            session_timeout_secs: 300,
            session_tickets: true,
            ticket_key_files: vec![],
            reject_handshake: false,
            verify_client: proton_ir::VerifyClient::Off,
            verify_depth: 1,
            client_certificate: None,
            trusted_certificate: None,
            crl: None,
            buffer_size: 16384,
            stapling: None,
            password_file: None,
        }
    }

    #[test]
    fn a_ticket_opens_with_another_instance_of_the_same_master() {
        let a = Tickets::new(&tls()).unwrap();
        let b = Tickets::new(&tls()).unwrap();
        let sealed = a.encrypt(b"session state").unwrap();
        assert_eq!(b.decrypt(&sealed).unwrap(), b"session state");
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(b.decrypt(&bad).is_none(), "a changed ticket must not open");
        assert!(b.decrypt(&sealed[..20]).is_none());
    }

    /// nginx's session id context: the same certificates (another port, another server
    /// block) resume a session; other certificates do not, by ticket or by id.
    #[test]
    fn sessions_resume_only_under_the_same_context() {
        let mut other = tls();
        other.certificates = vec![proton_ir::CertificatePair {
            certificate: "/other.crt".into(),
            key: "/other.key".into(),
        }];
        assert_eq!(session_context(&tls()), session_context(&tls()));
        assert_ne!(session_context(&tls()), session_context(&other));
        let a = Tickets::new(&tls()).unwrap();
        let same = Tickets::new(&tls()).unwrap();
        let b = Tickets::new(&other).unwrap();
        let sealed = a.encrypt(b"state").unwrap();
        assert!(same.decrypt(&sealed).is_some());
        assert!(b.decrypt(&sealed).is_none());
        let store: Arc<dyn StoresServerSessions> = rustls::server::ServerSessionMemoryCache::new(8);
        let (ta, tb) = (
            Tracked(store.clone(), session_context(&tls())),
            Tracked(store, session_context(&other)),
        );
        assert!(ta.put(vec![1; 32], b"s".to_vec()));
        assert_eq!(ta.get(&[1; 32]).as_deref(), Some(&b"s"[..]));
        assert_eq!(tb.get(&[1; 32]), None);
    }

    #[test]
    fn a_ticket_carries_its_connections_session_id() {
        let t = Tickets::new(&tls()).unwrap();
        // A full handshake: the first ticket makes the connection's id, the next one reuses
        // it.
        tls_session_id::lend(None);
        let first = t.encrypt(b"state one").unwrap();
        let second = t.encrypt(b"state two").unwrap();
        let id = tls_session_id::reclaim().expect("the connection got an id");
        assert!(!id.resumed);
        let (first_id, _, state) = t.open(&first).unwrap();
        assert_eq!((first_id, state), (id.bytes, b"state one".to_vec()));
        let (second_id, second_expiry, _) = t.open(&second).unwrap();
        assert_eq!(second_id, id.bytes);
        assert!(
            !first.windows(9).any(|w| w == b"state one"),
            "the state is sealed"
        );
        // A resumption: the ticket's id becomes the connection's, and the tickets issued on
        // it carry the same id.
        tls_session_id::lend(None);
        assert_eq!(t.decrypt(&second).unwrap(), b"state two");
        let third = t.encrypt(b"state three").unwrap();
        let back = tls_session_id::reclaim().expect("the resumed id");
        assert_eq!((back.bytes, back.resumed), (id.bytes, true));
        // The ticket issued on the resumed connection keeps the session's id and expiry.
        let (third_id, third_expiry, _) = t.open(&third).unwrap();
        assert_eq!((third_id, third_expiry), (id.bytes, second_expiry));
        // Another connection, another id; a ticket that does not open gives none.
        tls_session_id::lend(None);
        let other = t.encrypt(b"x").unwrap();
        assert_ne!(t.open(&other).unwrap().0, id.bytes);
        tls_session_id::lend(None);
        let mut bad = other.clone();
        bad[40] ^= 1;
        assert!(t.decrypt(&bad).is_none());
        assert_eq!(tls_session_id::reclaim(), None);
    }

    #[test]
    fn a_ticket_older_than_the_session_timeout_does_not_open() {
        let a = Tickets::new(&tls()).unwrap();
        let p = a.period();
        let fresh = a.seal(&[2; 32], b"x", p, unix_now() + 10).unwrap();
        assert_eq!(a.decrypt(&fresh).unwrap(), b"x");
        let stale = a.seal(&[2; 32], b"x", p, unix_now() - 1).unwrap();
        assert!(a.decrypt(&stale).is_none());
    }

    #[test]
    fn a_ticket_from_an_old_period_does_not_open() {
        let a = Tickets::new(&tls()).unwrap();
        let now = a.period();
        let previous = a.seal(&[1; 32], b"x", now - 1, unix_now() + 60).unwrap();
        assert_eq!(
            a.decrypt(&previous).unwrap(),
            b"x",
            "the previous period still opens"
        );
        let old = a.seal(&[1; 32], b"x", now - 2, unix_now() + 60).unwrap();
        assert!(a.decrypt(&old).is_none(), "two periods back is too old");
        let future = a.seal(&[1; 32], b"x", now + 1, unix_now() + 60).unwrap();
        assert!(a.decrypt(&future).is_none());
    }
}
