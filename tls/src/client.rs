//! Client certificates (`ssl_verify_client`), as nginx with OpenSSL treats them.
//!
//! nginx never fails a handshake because of the client's certificate: OpenSSL records the
//! verification result and nginx answers the request with 495/496 (or only reports the
//! result in `$ssl_client_verify`). So [`ClientAuth`], the rustls verifier, accepts any
//! certificate chain at the TLS level; it still checks the client's CertificateVerify
//! signature (the proof that the client holds the key), which fails the handshake as in
//! OpenSSL. [`ClientAuth::verify`] then checks the chain the way OpenSSL's `X509_verify_cert`
//! does for nginx — built up to a trusted self-signed CA (a trusted certificate presented
//! as is also passes), with at most `ssl_verify_depth` intermediate CAs, every certificate checked against a
//! CRL of its issuer when `ssl_crl` is given — and reports OpenSSL's error strings.
//!
//! The CA names sent in the CertificateRequest are those of `ssl_client_certificate` only
//! (each once); `ssl_trusted_certificate` CAs verify but are not announced, as in nginx.
//!
//! The `$ssl_client_*` values ([`CertInfo`]) are computed from the DER when read.

use proton_ir::{ServerTls, VerifyClient};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::path::Path;
use x509_parser::certificate::X509Certificate;
use x509_parser::revocation_list::CertificateRevocationList;

/// The outcome of verifying a client's certificate chain (`$ssl_client_verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The client sent no certificate (`NONE`).
    None,
    /// `SUCCESS`.
    Success,
    /// `FAILED:reason`: OpenSSL's error code and string.
    Failed(VerifyError),
}

impl Verdict {
    /// The value of `$ssl_client_verify`.
    pub fn as_variable(&self) -> String {
        match self {
            Verdict::None => "NONE".into(),
            Verdict::Success => "SUCCESS".into(),
            Verdict::Failed(e) => format!("FAILED:{}", e.reason()),
        }
    }
}

/// The OpenSSL verification errors Proton reports (`X509_V_ERR_*`, with their numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    UnableToGetIssuerCert = 2,
    UnableToGetCrl = 3,
    CertSignatureFailure = 7,
    CrlSignatureFailure = 8,
    CertNotYetValid = 9,
    CertHasExpired = 10,
    CrlNotYetValid = 11,
    CrlHasExpired = 12,
    DepthZeroSelfSigned = 18,
    SelfSignedInChain = 19,
    UnableToGetIssuerCertLocally = 20,
    UnableToVerifyLeafSignature = 21,
    ChainTooLong = 22,
    CertRevoked = 23,
    InvalidCa = 24,
    InvalidPurpose = 26,
    /// The certificate could not be parsed.
    Unparsable = 1,
}

impl VerifyError {
    /// OpenSSL 3's `X509_verify_cert_error_string`.
    pub fn reason(self) -> &'static str {
        match self {
            VerifyError::Unparsable => "unspecified certificate verification error",
            VerifyError::UnableToGetIssuerCert => "unable to get issuer certificate",
            VerifyError::UnableToGetCrl => "unable to get certificate CRL",
            VerifyError::CertSignatureFailure => "certificate signature failure",
            VerifyError::CrlSignatureFailure => "CRL signature failure",
            VerifyError::CertNotYetValid => "certificate is not yet valid",
            VerifyError::CertHasExpired => "certificate has expired",
            VerifyError::CrlNotYetValid => "CRL is not yet valid",
            VerifyError::CrlHasExpired => "CRL has expired",
            VerifyError::DepthZeroSelfSigned => "self-signed certificate",
            VerifyError::SelfSignedInChain => "self-signed certificate in certificate chain",
            VerifyError::UnableToGetIssuerCertLocally => "unable to get local issuer certificate",
            VerifyError::UnableToVerifyLeafSignature => "unable to verify the first certificate",
            VerifyError::ChainTooLong => "certificate chain too long",
            VerifyError::CertRevoked => "certificate revoked",
            VerifyError::InvalidCa => "invalid CA certificate",
            VerifyError::InvalidPurpose => "unsupported certificate purpose",
        }
    }

    /// OpenSSL's number of the error (as nginx logs it).
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The errors `ssl_verify_client optional_no_ca` tolerates (nginx's
    /// `ngx_ssl_verify_error_optional`): the chain does not reach a trusted CA.
    pub fn is_no_ca(self) -> bool {
        matches!(
            self,
            VerifyError::DepthZeroSelfSigned
                | VerifyError::SelfSignedInChain
                | VerifyError::UnableToGetIssuerCertLocally
                | VerifyError::UnableToVerifyLeafSignature
        )
    }
}

/// As nginx logs it: OpenSSL's code and text (`23:certificate revoked`).
impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.code(), self.reason())
    }
}

impl std::error::Error for VerifyError {}

/// Client-certificate verification of one server's settings: the rustls verifier (which
/// requests a certificate, announces the CA names and checks the client's signature) and
/// the chain check run after the handshake.
#[derive(Debug)]
pub struct ClientAuth {
    /// `ssl_client_certificate` ∪ `ssl_trusted_certificate`, DER.
    trusted: Vec<CertificateDer<'static>>,
    /// The subjects of `ssl_client_certificate`, each once.
    hints: Vec<DistinguishedName>,
    /// `ssl_crl`, DER.
    crls: Vec<CertificateRevocationListDer<'static>>,
    depth: u32,
    algorithms: WebPkiSupportedAlgorithms,
}

/// Every CRL of a PEM file (at least one).
pub fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let read = |e: rustls::pki_types::pem::Error| {
        format!(
            "cannot load CRL \"{}\": {}",
            path.display(),
            super::pem_error(&e, "CRL")
        )
    };
    let list = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if list.is_empty() {
        return Err(format!(
            "cannot load CRL \"{}\": no PEM CRL (-----BEGIN X509 CRL-----) in it",
            path.display()
        ));
    }
    for c in &list {
        if x509_parser::parse_x509_crl(c).is_err() {
            return Err(format!(
                "cannot load CRL \"{}\": a CRL in it is not valid DER",
                path.display()
            ));
        }
    }
    Ok(list)
}

/// The certificates of a CA file (at least one), each checked to parse.
pub fn ca_file(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let list = super::certificates(Path::new(path))?;
    for c in &list {
        if x509_parser::parse_x509_certificate(c).is_err() {
            return Err(format!(
                "cannot load certificate \"{path}\": a certificate in it is not valid DER"
            ));
        }
    }
    Ok(list)
}

impl ClientAuth {
    /// The verifier of a server's `ssl_verify_client` settings (`None` when off). Reads
    /// `ssl_client_certificate`, `ssl_trusted_certificate` and `ssl_crl`; errors name the
    /// file.
    pub fn new(t: &ServerTls, provider: &CryptoProvider) -> Result<Option<ClientAuth>, String> {
        // As nginx: the trusted CAs and the CRLs are read even with verification off, the
        // announced CAs only when it is on.
        let mut trusted = match &t.trusted_certificate {
            Some(p) => ca_file(p)?,
            None => Vec::new(),
        };
        let crls = match &t.crl {
            Some(p) => crls(Path::new(p))?,
            None => Vec::new(),
        };
        if t.verify_client == VerifyClient::Off {
            return Ok(None);
        }
        let mut hints: Vec<DistinguishedName> = Vec::new();
        if let Some(p) = &t.client_certificate {
            for c in ca_file(p)? {
                if let Ok((_, x)) = x509_parser::parse_x509_certificate(&c) {
                    let dn = DistinguishedName::from(x.subject().as_raw().to_vec());
                    if !hints.iter().any(|h| h.as_ref() == dn.as_ref()) {
                        hints.push(dn);
                    }
                }
                trusted.push(c);
            }
        }
        Ok(Some(ClientAuth {
            trusted,
            hints,
            crls,
            depth: t.verify_depth,
            algorithms: provider.signature_verification_algorithms,
        }))
    }

    /// Verifies the chain the client sent (leaf first) at `now` (Unix seconds).
    pub fn verify(&self, chain: &[CertificateDer<'_>], now: i64) -> Verdict {
        let Some(leaf) = chain.first() else {
            return Verdict::None;
        };
        match self.check(leaf, &chain[1..], now) {
            Ok(()) => Verdict::Success,
            Err(e) => Verdict::Failed(e),
        }
    }

    fn check(
        &self,
        leaf: &CertificateDer<'_>,
        sent: &[CertificateDer<'_>],
        now: i64,
    ) -> Result<(), VerifyError> {
        verify_chain(
            &self.trusted,
            &self.crls,
            self.depth,
            Purpose::Client,
            leaf,
            sent,
            now,
        )
    }
}

/// Whether `cert` is for `name`, as OpenSSL's `X509_check_host` and `X509_check_ip` (which
/// nginx's `proxy_ssl_verify` uses) decide: the subjectAltName's DNS names (a `*` as the
/// whole leftmost label matches one label) or IP addresses; the subject's commonName only
/// when the certificate has no DNS name (so version 1 certificates are checked by it).
pub(crate) fn matches_name(
    cert: &X509Certificate<'_>,
    name: &rustls::pki_types::ServerName<'_>,
) -> bool {
    use x509_parser::extensions::GeneralName;
    let sans: Vec<GeneralName<'_>> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|e| e.value.general_names.clone())
        .unwrap_or_default();
    match name {
        rustls::pki_types::ServerName::IpAddress(ip) => {
            let want: std::net::IpAddr = (*ip).into();
            let octets: Vec<u8> = match want {
                std::net::IpAddr::V4(a) => a.octets().to_vec(),
                std::net::IpAddr::V6(a) => a.octets().to_vec(),
            };
            sans.iter()
                .any(|g| matches!(g, GeneralName::IPAddress(b) if *b == octets.as_slice()))
        }
        rustls::pki_types::ServerName::DnsName(n) => {
            let host = n.as_ref().trim_end_matches('.');
            let dns: Vec<&str> = sans
                .iter()
                .filter_map(|g| match g {
                    GeneralName::DNSName(d) => Some(*d),
                    _ => None,
                })
                .collect();
            if !dns.is_empty() {
                return dns.iter().any(|d| dns_name_matches(d, host));
            }
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .any(|cn| dns_name_matches(cn, host))
        }
        _ => false,
    }
}

/// A certificate's name against a host name, case-insensitively, with a leftmost `*`
/// label standing for exactly one label (not for a bare domain such as `*.com`).
fn dns_name_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.');
    if let Some(rest) = pattern.strip_prefix("*.") {
        if !rest.contains('.') {
            return false;
        }
        return match host.split_once('.') {
            Some((label, domain)) => !label.is_empty() && domain.eq_ignore_ascii_case(rest),
            None => false,
        };
    }
    pattern.eq_ignore_ascii_case(host)
}

/// What a verified certificate is for (its extended key usage, when it has one).
#[derive(Clone, Copy)]
pub(crate) enum Purpose {
    Client,
    Server,
    /// An OCSP response's signer (OpenSSL's `OCSP_HELPER`: no extended key usage asked).
    OcspHelper,
}

/// OpenSSL's verification as nginx runs it: its callback lets verification go on after
/// each error, so the result is the last error met, in OpenSSL's order (building the
/// chain, extensions, revocation, then signatures and dates from the root down).
pub(crate) fn verify_chain(
    trusted: &[CertificateDer<'_>],
    crls: &[CertificateRevocationListDer<'_>],
    depth: u32,
    purpose: Purpose,
    leaf: &CertificateDer<'_>,
    sent: &[CertificateDer<'_>],
    now: i64,
) -> Result<(), VerifyError> {
    let trusted: Vec<X509Certificate<'_>> = trusted.iter().filter_map(|d| parse(d)).collect();
    let untrusted: Vec<X509Certificate<'_>> = sent.iter().filter_map(|d| parse(d)).collect();
    let leaf = parse(leaf).ok_or(VerifyError::Unparsable)?;
    let is_trusted = |c: &X509Certificate<'_>| trusted.iter().any(|t| t.as_raw() == c.as_raw());
    let self_issued = |c: &X509Certificate<'_>| c.subject().as_raw() == c.issuer().as_raw();
    let mut last: Option<VerifyError> = None;

    // Build the chain as OpenSSL: issuers from the trusted store first, then from what
    // the client sent, up to a self-signed certificate.
    let mut path: Vec<&X509Certificate<'_>> = vec![&leaf];
    loop {
        let cur = *path.last().unwrap_or(&&leaf);
        if self_issued(cur) && cur.verify_signature(None).is_ok() {
            if !is_trusted(cur) {
                last = Some(if path.len() == 1 {
                    VerifyError::DepthZeroSelfSigned
                } else {
                    VerifyError::SelfSignedInChain
                });
            }
            break;
        }
        let issuer_of = |c: &&X509Certificate<'_>| {
            c.subject().as_raw() == cur.issuer().as_raw()
                && !path.iter().any(|p| p.as_raw() == c.as_raw())
        };
        let next = trusted
            .iter()
            .find(|c| issuer_of(c))
            .or_else(|| untrusted.iter().find(|c| issuer_of(c)));
        match next {
            Some(n) if path.len() < 32 => path.push(n),
            _ => {
                last = Some(if path.iter().any(|c| is_trusted(c)) {
                    // A trusted CA whose own issuer is unknown.
                    VerifyError::UnableToGetIssuerCert
                } else if path.len() == 1 {
                    VerifyError::UnableToVerifyLeafSignature
                } else {
                    VerifyError::UnableToGetIssuerCertLocally
                });
                break;
            }
        }
    }
    // ssl_verify_depth, as OpenSSL counts it: the intermediate CAs between the client's
    // certificate and the trusted root.
    if path.len() > depth as usize + 2 {
        last = Some(VerifyError::ChainTooLong);
        path.truncate(depth as usize + 2);
    }
    // Extensions: the issuers are CAs, the leaf may serve its purpose.
    for ca in &path[1..] {
        if let Ok(Some(bc)) = ca.basic_constraints() {
            if !bc.value.ca {
                last = Some(VerifyError::InvalidCa);
            }
        }
    }
    if let Ok(Some(eku)) = leaf.extended_key_usage() {
        let allowed = match purpose {
            Purpose::Client => eku.value.client_auth,
            Purpose::Server => eku.value.server_auth,
            Purpose::OcspHelper => true,
        };
        if !allowed && !eku.value.any {
            last = Some(VerifyError::InvalidPurpose);
        }
    }
    if !crls.is_empty() {
        check_crls(crls, &path, now, &mut last);
    }
    // Signatures and validity, from the top down as OpenSSL's internal_verify (the
    // self-signature of the top is not checked).
    for i in (0..path.len()).rev() {
        let c = path[i];
        if let Some(issuer) = path.get(i + 1) {
            if c.verify_signature(Some(issuer.public_key())).is_err() {
                last = Some(VerifyError::CertSignatureFailure);
            }
        }
        let v = c.validity();
        if v.not_before.timestamp() > now {
            last = Some(VerifyError::CertNotYetValid);
        }
        if v.not_after.timestamp() < now {
            last = Some(VerifyError::CertHasExpired);
        }
    }
    match last {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `ssl_crl` and `proxy_ssl_crl` (OpenSSL's CRL_CHECK_ALL, as nginx sets): every
/// certificate of `path` (leaf first) but the self-signed CA at its top needs a valid CRL
/// of its issuer, and must not be on it. CRLs of version 1 and 2 are read (webpki reads
/// only version 2). Sets `last` to each error met, in order.
pub(crate) fn check_crls(
    crls: &[CertificateRevocationListDer<'_>],
    path: &[&X509Certificate<'_>],
    now: i64,
    last: &mut Option<VerifyError>,
) {
    let crls: Vec<CertificateRevocationList<'_>> = crls
        .iter()
        .filter_map(|d| x509_parser::parse_x509_crl(d).ok().map(|(_, c)| c))
        .collect();
    for (i, c) in path.iter().enumerate() {
        let top = i + 1 == path.len();
        if top && c.subject().as_raw() == c.issuer().as_raw() {
            break;
        }
        let Some(crl) = crls
            .iter()
            .find(|l| l.issuer().as_raw() == c.issuer().as_raw())
        else {
            *last = Some(VerifyError::UnableToGetCrl);
            continue;
        };
        if let Some(issuer) = path.get(i + 1) {
            if crl.verify_signature(issuer.public_key()).is_err() {
                *last = Some(VerifyError::CrlSignatureFailure);
            }
        }
        if crl.last_update().timestamp() > now {
            *last = Some(VerifyError::CrlNotYetValid);
        }
        if crl.next_update().is_some_and(|t| t.timestamp() < now) {
            *last = Some(VerifyError::CrlHasExpired);
        }
        let serial = trim_serial(c.raw_serial());
        if crl
            .iter_revoked_certificates()
            .any(|r| trim_serial(r.raw_serial()) == serial)
        {
            *last = Some(VerifyError::CertRevoked);
        }
    }
}

pub(crate) fn parse(d: &[u8]) -> Option<X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(d).ok().map(|(_, c)| c)
}

/// A serial number's bytes without the sign octets DER puts in front.
fn trim_serial(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| **b == 0).count();
    &s[n.min(s.len().saturating_sub(1))..]
}

impl ClientCertVerifier for ClientAuth {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // nginx answers a missing certificate with 496, after the handshake.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Verified after the handshake (ClientAuth::verify), as OpenSSL's callback in nginx
        // lets every chain through and records the result.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signed_by_certificate_key(message, cert, dss, &self.algorithms, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signed_by_certificate_key(message, cert, dss, &self.algorithms, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Checks the client's CertificateVerify signature with its certificate's public key.
/// rustls's own check parses the certificate with webpki, which refuses X.509 v1
/// certificates; OpenSSL takes them, so the key is taken out with x509-parser and the
/// signature checked with the provider's algorithms for the scheme (TLS 1.3: rustls's check
/// of a raw public key).
fn signed_by_certificate_key(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    use rustls::{CertificateError, Error, PeerMisbehaved};
    let c = parse(cert).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let spki = c.public_key();
    if tls13 {
        let der = rustls::pki_types::SubjectPublicKeyInfoDer::from(spki.raw);
        return rustls::crypto::verify_tls13_signature_with_raw_key(message, &der, dss, algorithms);
    }
    let alg_id = der_contents(spki.raw)
        .and_then(der_contents)
        .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(s, _)| *s == dss.scheme)
        .map(|(_, a)| *a)
        .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
    for alg in candidates {
        if alg.public_key_alg_id().as_ref() != alg_id {
            continue;
        }
        return alg
            .verify_signature(&spki.subject_public_key.data, message, dss.signature())
            .map(|_| HandshakeSignatureValid::assertion())
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature));
    }
    Err(Error::InvalidCertificate(CertificateError::BadSignature))
}

/// The contents of the DER element `der` starts with (its first inner element, for a
/// SEQUENCE).
fn der_contents(der: &[u8]) -> Option<&[u8]> {
    let len0 = *der.get(1)?;
    let (len, start) = if len0 < 0x80 {
        (len0 as usize, 2)
    } else {
        let n = (len0 & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut l = 0usize;
        for b in der.get(2..2 + n)? {
            l = (l << 8) | *b as usize;
        }
        (l, 2 + n)
    };
    der.get(start..start + len)
}

/// The `$ssl_client_*` values of a client certificate (DER), as nginx prints them.
pub struct CertInfo<'a> {
    der: &'a [u8],
    cert: X509Certificate<'a>,
}

impl<'a> CertInfo<'a> {
    /// `None` when the certificate does not parse.
    pub fn new(der: &'a [u8]) -> Option<CertInfo<'a>> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        Some(CertInfo { der, cert })
    }

    /// `$ssl_client_s_dn`: the subject in RFC 2253 form (`CN=client,O=Org`).
    pub fn subject(&self, out: &mut Vec<u8>) {
        rfc2253(self.cert.subject(), out);
    }

    /// `$ssl_client_i_dn`.
    pub fn issuer(&self, out: &mut Vec<u8>) {
        rfc2253(self.cert.issuer(), out);
    }

    /// `$ssl_client_s_dn_legacy`: the subject in OpenSSL's one-line form (`/O=Org/CN=client`).
    pub fn subject_legacy(&self, out: &mut Vec<u8>) {
        oneline(self.cert.subject(), out);
    }

    /// `$ssl_client_i_dn_legacy`.
    pub fn issuer_legacy(&self, out: &mut Vec<u8>) {
        oneline(self.cert.issuer(), out);
    }

    /// `$ssl_client_serial`: uppercase hex.
    pub fn serial(&self, out: &mut Vec<u8>) {
        for b in trim_serial(self.cert.raw_serial()) {
            out.extend_from_slice(format!("{b:02X}").as_bytes());
        }
    }

    /// `$ssl_client_v_start`, e.g. `Dec  6 08:15:47 2026 GMT`.
    pub fn not_before(&self, out: &mut Vec<u8>) {
        asn1_time(self.cert.validity().not_before.timestamp(), out);
    }

    /// `$ssl_client_v_end`.
    pub fn not_after(&self, out: &mut Vec<u8>) {
        asn1_time(self.cert.validity().not_after.timestamp(), out);
    }

    /// `$ssl_client_v_remain`: whole days until the certificate expires (0 when less than a
    /// day is left).
    pub fn days_left(&self, now: i64, out: &mut Vec<u8>) {
        let end = self.cert.validity().not_after.timestamp();
        let days = if end < now + 86400 {
            0
        } else {
            (end - now) / 86400
        };
        out.extend_from_slice(days.to_string().as_bytes());
    }

    /// The certificate in PEM (`$ssl_client_raw_cert`), lines of 64 characters.
    pub fn pem(&self, out: &mut Vec<u8>) {
        pem(self.der, out);
    }
}

/// A certificate in PEM, as OpenSSL's PEM_write_bio_X509 writes it.
pub fn pem(der: &[u8], out: &mut Vec<u8>) {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    let mut line = 0;
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(B64[((n >> shift) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
        line += 4;
        if line == 64 {
            out.push(b'\n');
            line = 0;
        }
    }
    if line > 0 {
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END CERTIFICATE-----\n");
}

/// OpenSSL's short names of the attribute types a DN usually has.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.13" => "description",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.41" => "name",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// A name as OpenSSL's `X509_NAME_print_ex(XN_FLAG_RFC2253)`: the last RDN first, `,`
/// between RDNs and `+` inside one, RFC 2253 escapes, bytes beyond ASCII as `\XX`, and a
/// value of an unknown type or attribute as `#` and its DER in hex.
fn rfc2253(name: &x509_parser::x509::X509Name<'_>, out: &mut Vec<u8>) {
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push(b'+');
            }
            let oid = atv.attr_type().to_id_string();
            let known = short_name(&oid);
            out.extend_from_slice(known.unwrap_or(&oid).as_bytes());
            out.push(b'=');
            let v = atv.attr_value();
            match attr_text(v) {
                Some(t) if known.is_some() => escape_2253(&t, out),
                _ => hex_der(v, out),
            }
        }
    }
}

/// A name as OpenSSL's `X509_NAME_oneline`: every attribute in the certificate's order,
/// each as `/type=value`, bytes outside printable ASCII as `\xXX`; a value that is not a
/// string as `#` and its DER in hex (as in [`rfc2253`]).
fn oneline(name: &x509_parser::x509::X509Name<'_>, out: &mut Vec<u8>) {
    for atv in name.iter_attributes() {
        out.push(b'/');
        let oid = atv.attr_type().to_id_string();
        out.extend_from_slice(short_name(&oid).unwrap_or(&oid).as_bytes());
        out.push(b'=');
        match attr_text(atv.attr_value()) {
            Some(t) => {
                for b in t {
                    if (b' '..=b'~').contains(&b) {
                        out.push(b);
                    } else {
                        out.extend_from_slice(format!("\\x{b:02X}").as_bytes());
                    }
                }
            }
            None => hex_der(atv.attr_value(), out),
        }
    }
}

/// The text of a string-typed attribute value (`None` for other types).
fn attr_text(v: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Option<Vec<u8>> {
    use x509_parser::der_parser::asn1_rs::Tag;
    match v.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::T61String
        | Tag::VisibleString => Some(v.data.to_vec()),
        Tag::BmpString => {
            let units: Vec<u16> = v
                .data
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            Some(String::from_utf16_lossy(&units).into_bytes())
        }
        _ => None,
    }
}

/// `#` and a value's DER in hex, as OpenSSL prints a value it cannot show as text.
fn hex_der(v: &x509_parser::der_parser::asn1_rs::Any<'_>, out: &mut Vec<u8>) {
    out.push(b'#');
    let header = [v.tag().0 as u8, v.data.len() as u8];
    if v.data.len() < 128 {
        for b in header.iter().chain(v.data.iter()) {
            out.extend_from_slice(format!("{b:02X}").as_bytes());
        }
    } else {
        for b in v.data.iter() {
            out.extend_from_slice(format!("{b:02X}").as_bytes());
        }
    }
}

fn escape_2253(v: &[u8], out: &mut Vec<u8>) {
    let last = v.len().saturating_sub(1);
    for (i, &b) in v.iter().enumerate() {
        match b {
            b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' => {
                out.push(b'\\');
                out.push(b);
            }
            b'#' if i == 0 => out.extend_from_slice(b"\\#"),
            b' ' if i == 0 || i == last => out.extend_from_slice(b"\\ "),
            0..=0x1f | 0x7f..=0xff => out.extend_from_slice(format!("\\{b:02X}").as_bytes()),
            _ => out.push(b),
        }
    }
}

/// A time as OpenSSL's `ASN1_TIME_print`: `Dec  6 08:15:47 2026 GMT`.
fn asn1_time(t: i64, out: &mut Vec<u8>) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    out.extend_from_slice(
        format!(
            "{} {:2} {:02}:{:02}:{:02} {} GMT",
            MONTHS[(m - 1) as usize],
            d,
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            y
        )
        .as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_openssl() {
        let mut out = Vec::new();
        asn1_time(1_796_544_947, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "Dec  6 08:15:47 2026 GMT");
        let mut out = Vec::new();
        asn1_time(0, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "Jan  1 00:00:00 1970 GMT");
    }

    #[test]
    fn dn_values_are_escaped_as_rfc2253() {
        let mut out = Vec::new();
        escape_2253(b"#a, b+c ", &mut out);
        assert_eq!(out, b"\\#a\\, b\\+c\\ ");
        let mut out = Vec::new();
        escape_2253("é".as_bytes(), &mut out);
        assert_eq!(out, b"\\C3\\A9");
    }

    #[test]
    fn serials_lose_their_sign_octet() {
        assert_eq!(trim_serial(&[0, 0x80, 1]), &[0x80, 1]);
        assert_eq!(trim_serial(&[0]), &[0]);
        assert_eq!(trim_serial(&[0x10, 0]), &[0x10, 0]);
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let der = vec![0xabu8; 100];
        let mut out = Vec::new();
        pem(&der, &mut out);
        let s = String::from_utf8(out).unwrap();
        let lines: Vec<_> = s.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 64);
        assert!(lines[3].ends_with("=="));
        assert_eq!(lines[4], "-----END CERTIFICATE-----");
    }
}
