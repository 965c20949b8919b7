//! Proton's TLS set-up, shared by `protonc` and `proton-run` so that both read certificates
//! and keys the same way: protonc builds every server's rustls config once to refuse a bad
//! file, a key that does not match its certificate or an empty cipher list at compile time,
//! and proton-run builds the same config from the same IR when it loads it (before forking
//! workers, so a reload with a broken file keeps the old workers serving).
//!
//! This crate never touches a socket and never depends on the event loop (mio) nor on the
//! compiler's parser. Session resumption state (the session cache in shared memory and the
//! ticket keys the master makes) belongs to the runtime and is handed in as [`Resumption`].

use proton_ir::{CertificatePair, ServerTls, UpstreamTls};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert, StoresServerSessions};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::path::Path;
use std::sync::Arc;

pub use rustls;

pub mod client;
pub mod ocsp;
pub use client::{CertInfo, ClientAuth, Verdict, VerifyError};

/// The ALPN protocols Proton offers where HTTP/2 is off.
pub const ALPN: &[&[u8]] = &[b"http/1.1"];

/// The ALPN protocols Proton offers where HTTP/2 is on: `h2` first (the server's order
/// decides, as OpenSSL's `SSL_select_next_proto` in nginx).
pub const ALPN_H2: &[&[u8]] = &[b"h2", b"http/1.1"];

/// `base` offering HTTP/2 by ALPN (its session cache, tickets and certificates shared).
pub fn with_h2(base: &ServerConfig) -> ServerConfig {
    let mut config = base.clone();
    config.alpn_protocols = ALPN_H2.iter().map(|p| p.to_vec()).collect();
    config
}

/// Where resumed sessions come from: the runtime's shared session cache and ticketer; protonc
/// passes [`Resumption::none`].
pub struct Resumption {
    pub storage: Arc<dyn StoresServerSessions>,
    pub ticketer: Arc<dyn ProducesTickets>,
}

impl Resumption {
    /// No session cache and no tickets.
    pub fn none() -> Resumption {
        Resumption {
            storage: Arc::new(rustls::server::NoServerSessionStorage {}),
            ticketer: Arc::new(NoTickets),
        }
    }
}

/// A ticketer that issues nothing (`ssl_session_tickets off`).
#[derive(Debug)]
pub struct NoTickets;

impl ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// The crypto provider (aws-lc-rs, chosen by bench/tls_provider: faster full and resumed
/// handshakes and less memory per connection than ring here) restricted to the server's
/// `ssl_ciphers` (TLS 1.2 only, as OpenSSL) and `ssl_ecdh_curve`.
pub fn provider(t: &ServerTls) -> Result<CryptoProvider, String> {
    provider_with(&t.ciphers, &t.curves)
}

/// The crypto provider restricted to TLS 1.2 `ciphers` (rustls names; empty: the default
/// TLS 1.2 suites) and key-exchange `curves` (empty: OpenSSL's `auto` order).
fn provider_with(ciphers: &[String], curves: &[String]) -> Result<CryptoProvider, String> {
    use rustls::crypto::aws_lc_rs as p;
    let mut suites: Vec<_> = p::ALL_CIPHER_SUITES
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    if ciphers.is_empty() {
        suites.extend(
            p::DEFAULT_CIPHER_SUITES
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS12),
        );
    }
    for name in ciphers {
        let s = p::ALL_CIPHER_SUITES
            .iter()
            .find(|s| s.suite().as_str() == Some(name.as_str()))
            .ok_or_else(|| format!("cipher suite {name} is not available"))?;
        suites.push(*s);
    }
    let groups = if curves.is_empty() {
        // OpenSSL's `auto` order (what nginx users get), then the post-quantum hybrid for
        // clients that offer only that.
        ["X25519", "secp256r1", "secp384r1", "X25519MLKEM768"]
            .iter()
            .filter_map(|n| kx_group(n))
            .collect()
    } else {
        let mut g = Vec::new();
        for n in curves {
            g.push(kx_group(n).ok_or_else(|| format!("curve {n} is not available"))?);
        }
        g
    };
    Ok(CryptoProvider {
        cipher_suites: suites,
        kx_groups: groups,
        ..p::default_provider()
    })
}

fn kx_group(name: &str) -> Option<&'static dyn rustls::crypto::SupportedKxGroup> {
    rustls::crypto::aws_lc_rs::ALL_KX_GROUPS
        .iter()
        .find(|g| g.name().as_str() == Some(name))
        .copied()
}

/// Reads `pair`'s certificate chain and private key (PEM) and checks that they belong
/// together. Errors name the file and what is wrong with it.
pub fn certified_key(
    pair: &CertificatePair,
    passwords: &[String],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = certificates(Path::new(&pair.certificate))?;
    let key = private_key(&pair.key, passwords)?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("cannot use certificate key \"{}\": {e}", pair.key))?;
    let spki = chain
        .first()
        .and_then(|c| der::spki(c))
        .map(|(whole, _, _)| whole);
    let key_spki = signer.public_key();
    if let (Some(cert), Some(key)) = (spki, key_spki.as_ref()) {
        if cert != key.as_ref() {
            return Err(format!(
                "certificate \"{}\" and key \"{}\" do not match (the key is not the certificate's)",
                pair.certificate, pair.key
            ));
        }
    }
    Ok(CertifiedKey::new(chain, signer))
}

/// An OCSP response file (`ssl_stapling_file`): DER, one structure, read whole.
pub fn ocsp_response(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read ssl_stapling_file \"{}\": {e}", path.display()))?;
    match der::next(&bytes) {
        Some((0x30, _, _, [])) => Ok(bytes),
        _ => Err(format!(
            "ssl_stapling_file \"{}\" is not a DER OCSP response",
            path.display()
        )),
    }
}

/// Just enough DER to find a certificate's public key (and check an OCSP file's shape)
/// without webpki (which refuses X.509
/// v1 certificates: OpenSSL 3.0's `openssl req -x509` makes them, and nginx accepts them).
mod der {
    /// An element: (tag, the whole element, its content, what follows it).
    type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

    /// The next element of `input`.
    pub(crate) fn next(input: &[u8]) -> Option<Element<'_>> {
        let tag = *input.first()?;
        let first = *input.get(1)? as usize;
        let (len, at) = if first < 0x80 {
            (first, 2)
        } else {
            let n = first & 0x7f;
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for b in input.get(2..2 + n)? {
                len = (len << 8) | *b as usize;
            }
            (len, 2 + n)
        };
        let end = at.checked_add(len)?;
        Some((
            tag,
            input.get(..end)?,
            input.get(at..end)?,
            input.get(end..)?,
        ))
    }

    /// The fields of a certificate's TBSCertificate from its serial number on, and whether
    /// it has a version field (absent: X.509 v1).
    fn tbs(cert: &[u8]) -> Option<(&[u8], bool)> {
        let (0x30, _, cert, _) = next(cert)? else {
            return None;
        };
        let (0x30, _, tbs, _) = next(cert)? else {
            return None;
        };
        if tbs.first() == Some(&0xa0) {
            return Some((next(tbs)?.3, true));
        }
        Some((tbs, false))
    }

    /// A certificate's SubjectPublicKeyInfo: (the whole element, the content of its
    /// AlgorithmIdentifier, the public key's bytes).
    pub(crate) fn spki(cert: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
        let mut rest = tbs(cert)?.0;
        // serial, signature algorithm, issuer, validity, subject.
        for _ in 0..5 {
            rest = next(rest)?.3;
        }
        let (0x30, whole, info, _) = next(rest)? else {
            return None;
        };
        let (0x30, _, alg, after) = next(info)? else {
            return None;
        };
        let (0x03, _, bits, _) = next(after)? else {
            return None;
        };
        // The BIT STRING's first byte counts unused bits (0 for a key).
        Some((whole, alg, bits.get(1..)?))
    }
}

/// Every certificate of a PEM file, in order (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let read = |e: rustls::pki_types::pem::Error| {
        format!(
            "cannot load certificate \"{}\": {}",
            path.display(),
            pem_error(&e, "certificate")
        )
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if chain.is_empty() {
        return Err(format!(
            "cannot load certificate \"{}\": no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    Ok(chain)
}

pub(crate) fn pem_error(e: &rustls::pki_types::pem::Error, what: &str) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(e) => e.to_string(),
        E::NoItemsFound => format!("no PEM {what} in it"),
        e => format!("not a valid PEM file ({e:?})"),
    }
}

/// The client certificate `proxy_ssl_certificate` sends to upstreams that ask for one.
#[derive(Debug)]
struct ClientCertificate(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for ClientCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0
            .key
            .choose_scheme(schemes)
            .is_some()
            .then(|| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Chooses the certificate for a handshake: the first whose key can sign with a scheme the
/// client offered (an ECDSA certificate for clients that take ECDSA, else the RSA one), as
/// OpenSSL does with several `ssl_certificate`s.
#[derive(Debug)]
struct Certificates(Vec<Served>);

/// A certificate a server answers with, and its OCSP stapling state when responses are
/// fetched from a responder.
#[derive(Debug)]
struct Served {
    key: Arc<CertifiedKey>,
    staple: Option<Arc<ocsp::Staple>>,
}

impl Served {
    fn answer(&self) -> Arc<CertifiedKey> {
        match &self.staple {
            None => self.key.clone(),
            Some(s) => s.select(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64),
            ),
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let [one] = self.0.as_slice() {
            return Some(one.answer());
        }
        let schemes = hello.signature_schemes();
        self.0
            .iter()
            .find(|k| k.key.key.choose_scheme(schemes).is_some())
            .or(self.0.first())
            .map(Served::answer)
    }
}

/// `base` (a server's config, made by [`server_config_with_auth`] for settings whose
/// certificates have variables) answering with `pairs`, the files this handshake named
/// (made absolute against `prefix`): read and checked as at load, with the settings'
/// `passwords` and stapling file. Sessions and tickets stay those of `base`. The error
/// names the file.
pub fn with_certificates(
    base: &ServerConfig,
    t: &ServerTls,
    pairs: &[CertificatePair],
    passwords: &[String],
    prefix: &Path,
) -> Result<ServerConfig, String> {
    let staple = match t.stapling.as_ref().and_then(|s| s.file.as_ref()) {
        Some(f) => Some(ocsp_response(Path::new(&absolute(prefix, f)))?),
        None => None,
    };
    let mut keys = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let pair = CertificatePair {
            certificate: absolute(prefix, &pair.certificate),
            key: absolute(prefix, &pair.key),
        };
        let mut key = certified_key(&pair, passwords, base.crypto_provider())?;
        key.ocsp = staple.clone();
        keys.push(Served {
            key: Arc::new(key),
            staple: None,
        });
    }
    let mut config = base.clone();
    config.cert_resolver = Arc::new(Certificates(keys));
    Ok(config)
}

/// `t` with its relative file paths (certificates, keys, ticket keys, stapling file) made
/// absolute against `base`: proton-run's prefix, or for protonc's check the main config
/// file's directory.
pub fn resolve_paths(t: &ServerTls, base: &Path) -> ServerTls {
    let abs = |p: &String| absolute(base, p);
    let mut t = t.clone();
    for c in &mut t.certificates {
        c.certificate = abs(&c.certificate);
        c.key = abs(&c.key);
    }
    t.ticket_key_files = t.ticket_key_files.iter().map(abs).collect();
    if let Some(f) = t.stapling.as_mut().and_then(|s| s.file.as_mut()) {
        *f = abs(f);
    }
    t.client_certificate = t.client_certificate.as_ref().map(abs);
    t.trusted_certificate = t.trusted_certificate.as_ref().map(abs);
    t.crl = t.crl.as_ref().map(abs);
    t.password_file = t.password_file.as_ref().map(abs);
    t
}

/// `t` (`proxy_ssl_*`) with its relative file paths made absolute against `base`, as
/// [`resolve_paths`].
pub fn resolve_upstream_paths(t: &proton_ir::UpstreamTls, base: &Path) -> proton_ir::UpstreamTls {
    let abs = |p: &String| absolute(base, p);
    let mut t = t.clone();
    t.trusted_certificate = t.trusted_certificate.as_ref().map(abs);
    t.crl = t.crl.as_ref().map(abs);
    t.password_file = t.password_file.as_ref().map(abs);
    if let Some(c) = t.certificate.as_mut() {
        c.certificate = abs(&c.certificate);
        c.key = abs(&c.key);
    }
    t
}

/// `p` if absolute, else `base/p`.
fn absolute(base: &Path, p: &str) -> String {
    if Path::new(p).is_absolute() {
        p.to_string()
    } else {
        base.join(p).display().to_string()
    }
}

/// The passphrases of an `ssl_password_file`: one per line (CR LF or LF), as nginx.
pub fn passwords(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read ssl_password_file \"{}\": {e}", path.display()))?;
    let list: Vec<String> = String::from_utf8_lossy(&text)
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if list.is_empty() {
        return Err(format!(
            "ssl_password_file \"{}\" has no password",
            path.display()
        ));
    }
    Ok(list)
}

/// A private key from a PEM file, decrypted with the first of `passwords` that opens it
/// when it is an encrypted PKCS#8 key.
fn private_key(path: &str, passwords: &[String]) -> Result<PrivateKeyDer<'static>, String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("cannot load certificate key \"{path}\": {e}"))?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(format!(
            "cannot load certificate key \"{path}\": the old OpenSSL encrypted PEM form is not supported; convert it with: openssl pkcs8 -topk8 -in KEY -out KEY.p8 (it asks for the passwords)"
        ));
    }
    if !text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
            format!(
                "cannot load certificate key \"{path}\": {}",
                pem_error(&e, "private key")
            )
        });
    }
    use pkcs8::der::Decode;
    let (_, doc) = pkcs8::SecretDocument::from_pem(&text)
        .map_err(|e| format!("cannot load certificate key \"{path}\": {e}"))?;
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(doc.as_bytes())
        .map_err(|e| format!("cannot load certificate key \"{path}\": {e}"))?;
    if passwords.is_empty() {
        return Err(format!(
            "cannot load certificate key \"{path}\": it is encrypted and no ssl_password_file is given"
        ));
    }
    for p in passwords {
        if let Ok(plain) = info.decrypt(p.as_bytes()) {
            return Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()));
        }
    }
    Err(format!(
        "cannot load certificate key \"{path}\": none of the passwords in ssl_password_file decrypts it"
    ))
}

/// The rustls config of a server's TLS settings. Fails with a message naming the file for a
/// certificate or key that cannot be used, or when nothing is left to offer.
pub fn server_config(t: &ServerTls, resumption: Resumption) -> Result<Built, String> {
    let passwords = match &t.password_file {
        Some(f) => passwords(Path::new(f))?,
        None => Vec::new(),
    };
    server_config_with_auth(t, resumption, &passwords, None)
}

/// A server's rustls config as [`server_config_with_auth`] makes it.
pub struct Built {
    pub config: ServerConfig,
    /// With `ssl_prefer_server_ciphers on`: the same config with the ChaCha20 suites first,
    /// for clients that prefer them (`None` when that changes nothing).
    pub chacha: Option<ServerConfig>,
    /// The client-certificate verifier (`None` with `ssl_verify_client off`), which checks
    /// the chain after the handshake.
    pub auth: Option<Arc<ClientAuth>>,
    /// nginx's warnings about the settings (`"ssl_stapling" ignored, …`), to log when the
    /// configuration loads.
    pub warnings: Vec<String>,
    /// Some certificate staples responses fetched with the fetcher.
    pub fetches: bool,
}

/// The rustls config of a server's TLS settings, its client-certificate verifier and
/// warnings. `passwords`: those of the settings' `ssl_password_file`, read by the caller
/// (once per file and load, as nginx: the file may be a pipe). `fetcher`: where OCSP
/// responses are fetched for `ssl_stapling` without a file (`None`: protonc's check,
/// which only reports the warnings).
pub fn server_config_with_auth(
    t: &ServerTls,
    resumption: Resumption,
    passwords: &[String],
    fetcher: Option<Arc<dyn ocsp::FetchOcsp>>,
) -> Result<Built, String> {
    let provider = Arc::new(provider(t)?);
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if t.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if t.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    let file_staple = match t.stapling.as_ref().and_then(|s| s.file.as_ref()) {
        Some(f) => Some(ocsp_response(Path::new(f))?),
        None => None,
    };
    let fetch = t.stapling.as_ref().filter(|s| s.file.is_none());
    let store = match fetch {
        Some(_) => stapling_store(t)?,
        None => Arc::from(Vec::new()),
    };
    let mut warnings = Vec::new();
    let mut keys = Vec::with_capacity(t.certificates.len());
    for pair in &t.certificates {
        let mut key = certified_key(pair, passwords, &provider)?;
        key.ocsp = file_staple.clone();
        let key = Arc::new(key);
        let mut staple = None;
        if let Some(s) = fetch {
            let to: Arc<dyn ocsp::FetchOcsp> = match &fetcher {
                Some(f) => f.clone(),
                None => Arc::new(NoFetch),
            };
            let responder = s.responder.as_deref();
            match ocsp::plan(
                &pair.certificate,
                key.clone(),
                responder,
                store.clone(),
                s.verify,
                to,
            ) {
                Ok(p) => staple = fetcher.is_some().then_some(p),
                Err(w) => warnings.push(w),
            }
        }
        keys.push(Served { key, staple });
    }
    let auth = ClientAuth::new(t, &provider)?.map(Arc::new);
    let fetches = keys.iter().any(|k| k.staple.is_some());
    let resolver: Arc<dyn ResolvesServerCert> = Arc::new(Certificates(keys));
    let build = |provider: Arc<CryptoProvider>| -> Result<ServerConfig, String> {
        let builder = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| format!("no usable TLS settings: {e}"))?;
        let builder = match &auth {
            Some(a) => builder.with_client_cert_verifier(a.clone()),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(resolver.clone());
        config.ignore_client_order = t.prefer_server_ciphers;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        config.session_storage = resumption.storage.clone();
        config.ticketer = resumption.ticketer.clone();
        if !config.ticketer.enabled() {
            config.send_tls13_tickets = match t.session_cache {
                proton_ir::SessionCache::Cache { .. } => 2,
                _ => 0,
            };
        }
        if t.buffer_size < 16384 {
            config.max_fragment_size = Some((t.buffer_size as usize).max(512) + 5);
        }
        Ok(config)
    };
    // With the server's order, clients that put ChaCha20 first (those without AES
    // hardware) are answered by a twin whose order starts with the ChaCha20 suites, as
    // OpenSSL's SSL_OP_PRIORITIZE_CHACHA.
    let chacha = match t.prefer_server_ciphers {
        true => {
            let mut p = (*provider).clone();
            p.cipher_suites.sort_by_key(|s| !is_chacha(s.suite()));
            let differs = p
                .cipher_suites
                .iter()
                .map(|s| s.suite())
                .ne(provider.cipher_suites.iter().map(|s| s.suite()));
            match differs {
                true => Some(build(Arc::new(p))?),
                false => None,
            }
        }
        false => None,
    };
    let config = build(provider)?;
    Ok(Built {
        config,
        chacha,
        auth,
        warnings,
        fetches,
    })
}

/// Whether `suite` is one of the ChaCha20-Poly1305 suites.
pub fn is_chacha(suite: rustls::CipherSuite) -> bool {
    use rustls::CipherSuite as S;
    matches!(
        suite,
        S::TLS13_CHACHA20_POLY1305_SHA256
            | S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    )
}

/// The certificates an OCSP responder's signer and a certificate's issuer are looked for
/// in: `ssl_trusted_certificate` and `ssl_client_certificate` (nginx's certificate store).
fn stapling_store(t: &ServerTls) -> Result<Arc<[CertificateDer<'static>]>, String> {
    let mut store = Vec::new();
    for f in [&t.trusted_certificate, &t.client_certificate]
        .into_iter()
        .flatten()
    {
        store.extend(client::ca_file(f)?);
    }
    Ok(Arc::from(store))
}

/// protonc's stand-in fetcher: its staples are never used.
struct NoFetch;

impl ocsp::FetchOcsp for NoFetch {
    fn fetch(&self, _staple: Arc<ocsp::Staple>) {}
}

/// The rustls config of a location's `proxy_ssl_*` settings, for connections to `https://`
/// upstreams: protocols and ciphers, the client certificate, the verification of the
/// upstream's certificate (`proxy_ssl_verify`: against `proxy_ssl_trusted_certificate` and
/// `proxy_ssl_crl`, at most `proxy_ssl_verify_depth` deep; off: any certificate), SNI
/// (`proxy_ssl_server_name`) and a session cache (`proxy_ssl_session_reuse`), keyed by the
/// name the connection is made with. Fails with a message naming the file that cannot be used.
pub fn client_config(t: &UpstreamTls) -> Result<rustls::ClientConfig, String> {
    use rustls::client::Resumption;
    let provider = Arc::new(provider_with(&t.ciphers, &[])?);
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if t.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if t.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    let mut trusted = Vec::new();
    if t.verify {
        let Some(path) = &t.trusted_certificate else {
            return Err("no proxy_ssl_trusted_certificate for proxy_ssl_verify".to_string());
        };
        trusted = certificates(Path::new(path))?;
        if !trusted.iter().any(|c| client::parse(c).is_some()) {
            return Err(format!(
                "cannot use trusted certificate \"{path}\": no usable certificate in it"
            ));
        }
    }
    let crls = match (&t.crl, t.verify) {
        (Some(crl), true) => client::crls(Path::new(crl))?,
        _ => Vec::new(),
    };
    let verifier = Arc::new(UpstreamVerifier {
        verify: t.verify,
        trusted,
        crls,
        depth: t.verify_depth,
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("no usable TLS settings: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match &t.certificate {
        Some(pair) => {
            let passwords = match &t.password_file {
                Some(f) => passwords(Path::new(f))?,
                None => Vec::new(),
            };
            // Matched with the certificate by `certified_key` (rustls's own check would
            // refuse X.509 v1 certificates, which OpenSSL and nginx use).
            let key = certified_key(pair, &passwords, &provider)?;
            builder.with_client_cert_resolver(Arc::new(ClientCertificate(Arc::new(key))))
        }
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = t.server_name;
    config.resumption = if t.session_reuse {
        Resumption::in_memory_sessions(256)
    } else {
        Resumption::disabled()
    };
    Ok(config)
}

/// Checks an upstream's certificate as nginx's `proxy_ssl_verify` (OpenSSL's verification):
/// the chain to a certificate of `proxy_ssl_trusted_certificate` with at most
/// `proxy_ssl_verify_depth` intermediates, `proxy_ssl_crl`, dates and purpose, by
/// [`client::verify_chain`] (the code that checks client certificates), and the name as
/// `X509_check_host` does. Without `proxy_ssl_verify` any certificate is accepted (the
/// handshake's signatures are still checked). Unlike webpki, this accepts what OpenSSL
/// accepts: X.509 v1 certificates, a CA certificate as the server's, a name in the
/// commonName of a certificate without DNS names, version 1 CRLs.
#[derive(Debug)]
struct UpstreamVerifier {
    verify: bool,
    /// `proxy_ssl_trusted_certificate`'s certificates.
    trusted: Vec<CertificateDer<'static>>,
    /// `proxy_ssl_crl`'s CRLs.
    crls: Vec<rustls::pki_types::CertificateRevocationListDer<'static>>,
    depth: u32,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl UpstreamVerifier {
    /// The handshake's signature with the certificate's public key, read here when webpki
    /// cannot read the certificate (X.509 v1). `e`: webpki's error, returned when the
    /// certificate is not the reason.
    fn unverified_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
        e: rustls::Error,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        if !matches!(e, rustls::Error::InvalidCertificate(_)) {
            return Err(e);
        }
        let Some((_, alg, key)) = der::spki(cert) else {
            return Err(e);
        };
        let Some((_, algs)) = self
            .algorithms
            .mapping
            .iter()
            .find(|(s, _)| *s == dss.scheme)
        else {
            return Err(e);
        };
        for a in algs
            .iter()
            .filter(|a| a.public_key_alg_id().as_ref() == alg)
        {
            if a.verify_signature(key, message, dss.signature()).is_ok() {
                return Ok(rustls::client::danger::HandshakeSignatureValid::assertion());
            }
        }
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadSignature,
        ))
    }
}

impl rustls::client::danger::ServerCertVerifier for UpstreamVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as C;
        if !self.verify {
            return Ok(rustls::client::danger::ServerCertVerified::assertion());
        }
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        client::verify_chain(
            &self.trusted,
            &self.crls,
            self.depth,
            client::Purpose::Server,
            end_entity,
            intermediates,
            secs,
        )
        .map_err(|e| {
            // Carried whole, so that the error log gives OpenSSL's code and text.
            rustls::Error::InvalidCertificate(C::Other(rustls::OtherError(Arc::new(e))))
        })?;
        let leaf =
            client::parse(end_entity).ok_or(rustls::Error::InvalidCertificate(C::BadEncoding))?;
        if !client::matches_name(&leaf, server_name) {
            return Err(rustls::Error::InvalidCertificate(C::NotValidForName));
        }
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
            .or_else(|e| self.unverified_signature(message, cert, dss, e))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
            .or_else(|e| self.unverified_signature(message, cert, dss, e))
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
