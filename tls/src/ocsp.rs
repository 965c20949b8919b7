//! OCSP stapling with responses fetched from the responder (RFC 6960), as nginx's
//! `ngx_event_openssl_stapling.c` does it with OpenSSL: for each certificate of a server
//! with `ssl_stapling on`, the issuer is found (the certificate file's chain, else the
//! trusted certificates), the responder is the `ssl_stapling_responder` URL or the one in
//! the certificate's Authority Information Access extension, and a response is asked for
//! when a handshake uses the certificate and the last one is due for refresh. A response is
//! stapled only when it is signed by its responder, says `good` for this certificate and is
//! current; with `ssl_stapling_verify on` the signer must also chain to the trusted
//! certificates and be the issuer or a responder the issuer delegated to.
//!
//! This module is sans-IO: it builds the request and checks the response. The runtime
//! moves the bytes ([`FetchOcsp`]) and logs what [`Staple::finish`] reports.

use crate::client::{parse, verify_chain, Purpose};
use crate::der::next;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use x509_parser::certificate::X509Certificate;

/// DER of the `id-pkix-ocsp-basic` object identifier (1.3.6.1.5.5.7.48.1.1).
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// DER of SHA-1's object identifier (1.3.14.3.2.26), the hash OpenSSL's CertIDs use.
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// DER of SHA-256's object identifier (2.16.840.1.101.3.4.2.1).
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

/// The longest response read from a responder (nginx reads at most 16 KiB).
pub const MAX_RESPONSE: usize = 16 * 1024;

/// Where responses are asked for: an `http://` URL taken apart, its host resolved when the
/// configuration is loaded (as nginx does without a `resolver`).
#[derive(Debug, Clone)]
pub struct Responder {
    /// The URL as written (for log lines).
    pub url: String,
    /// The host as written, for the `Host` header.
    pub host: String,
    pub addrs: Vec<SocketAddr>,
    /// The path the request's base64 form is appended to (ends with `/`).
    pub path: String,
}

impl Responder {
    /// Takes `url` apart: `http://host[:port][/path]`. The error says what is wrong, in
    /// nginx's words.
    pub fn parse(url: &str) -> Result<Responder, String> {
        let rest = match url.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("http://") => &url[7..],
            _ => return Err(format!("invalid URL prefix in OCSP responder \"{url}\"")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| format!("invalid host in OCSP responder \"{url}\""))?;
            let port = v6[end + 1..].strip_prefix(':');
            (&authority[..end + 2], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("no host in OCSP responder \"{url}\""));
        }
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid port in OCSP responder \"{url}\""))?,
        };
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (name, port)
            .to_socket_addrs()
            .map_err(|e| format!("host not found in OCSP responder \"{url}\": {e}"))?
            .collect();
        let mut path = path.to_string();
        if !path.ends_with('/') {
            path.push('/');
        }
        Ok(Responder {
            url: url.to_string(),
            host: host.to_string(),
            addrs,
            path,
        })
    }
}

/// The first OCSP responder URL of a certificate's Authority Information Access extension.
pub fn aia_responder(cert: &[u8]) -> Option<String> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let c = parse(cert)?;
    for ext in c.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for d in &aia.accessdescs {
                if d.access_method == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP {
                    if let GeneralName::URI(u) = d.access_location {
                        return Some(u.to_string());
                    }
                }
            }
        }
    }
    None
}

/// Whether `issuer` issued `cert`, as OpenSSL's `X509_check_issued` (names, and key
/// identifiers when both certificates have them); signatures are not checked.
fn issued(issuer: &X509Certificate<'_>, cert: &X509Certificate<'_>) -> bool {
    use x509_parser::extensions::ParsedExtension;
    if issuer.subject().as_raw() != cert.issuer().as_raw() {
        return false;
    }
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0),
            _ => None,
        });
    let ski = issuer
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        });
    match (aki, ski) {
        (Some(a), Some(s)) => a == s,
        _ => true,
    }
}

/// The issuer of `cert`: from `chain` (the certificate file's other certificates), else from
/// `store` (the trusted certificates), as nginx looks for it.
pub fn find_issuer(
    cert: &[u8],
    chain: &[CertificateDer<'static>],
    store: &[CertificateDer<'static>],
) -> Option<CertificateDer<'static>> {
    let c = parse(cert)?;
    chain
        .iter()
        .chain(store)
        .find(|i| parse(i).is_some_and(|i| issued(&i, &c)))
        .cloned()
}

/// The hash a CertID is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    fn of(oid: &[u8]) -> Option<Hash> {
        match oid {
            OID_SHA1 => Some(Hash::Sha1),
            OID_SHA256 => Some(Hash::Sha256),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        use aws_lc_rs::digest;
        let alg = match self {
            Hash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => &digest::SHA256,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }

    fn oid(self) -> &'static [u8] {
        match self {
            Hash::Sha1 => OID_SHA1,
            Hash::Sha256 => OID_SHA256,
        }
    }
}

/// A certificate's identity in OCSP: hashes of its issuer's name and key, and its serial.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CertId {
    hash: Hash,
    name: Vec<u8>,
    key: Vec<u8>,
    serial: Vec<u8>,
}

impl CertId {
    fn new(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>, hash: Hash) -> CertId {
        CertId {
            hash,
            name: hash.digest(issuer.subject().as_raw()),
            key: hash.digest(&issuer.public_key().subject_public_key.data),
            // As the certificate has it (DER content, sign octet included), as OpenSSL sends it.
            serial: cert.raw_serial().to_vec(),
        }
    }

    /// DER.
    fn der(&self) -> Vec<u8> {
        let mut alg = element(0x06, self.hash.oid());
        alg.extend_from_slice(&[0x05, 0x00]);
        let mut body = element(0x30, &alg);
        body.extend(element(0x04, &self.name));
        body.extend(element(0x04, &self.key));
        body.extend(element(0x02, &self.serial));
        element(0x30, &body)
    }
}

/// An INTEGER's content without redundant leading octets (a `00` before a byte below
/// 0x80, an `FF` before one from 0x80), so that two encodings of one value compare equal.
fn trim_integer(s: &[u8]) -> &[u8] {
    let mut s = s;
    while let [a, b, ..] = s {
        if (*a == 0 && *b < 0x80) || (*a == 0xff && *b >= 0x80) {
            s = &s[1..];
        } else {
            break;
        }
    }
    s
}

/// A DER element of `tag` around `content`.
fn element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The DER OCSPRequest asking for the status of `cert` (one CertID with SHA-1, no
/// extensions: what nginx sends).
fn request(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Vec<u8> {
    let id = CertId::new(cert, issuer, Hash::Sha1).der();
    let one = element(0x30, &id);
    let list = element(0x30, &one);
    let tbs = element(0x30, &list);
    element(0x30, &tbs)
}

/// A certificate's status in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked,
    Unknown,
}

impl CertStatus {
    /// OpenSSL's word for it (`OCSP_cert_status_str`).
    pub fn name(self) -> &'static str {
        match self {
            CertStatus::Good => "good",
            CertStatus::Revoked => "revoked",
            CertStatus::Unknown => "unknown",
        }
    }
}

/// What a checked response says of the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub status: CertStatus,
    /// `nextUpdate` (Unix seconds), if the response has one.
    pub next_update: Option<i64>,
}

/// `YYYYMMDDHHMMSS[.f*]Z` (GeneralizedTime, as DER requires it) → Unix seconds.
fn generalized_time(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    let s = s.strip_suffix('Z')?;
    let s = s.split('.').next()?;
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The parts of a BasicOCSPResponse a check needs.
struct Basic<'a> {
    /// tbsResponseData, whole (what the signature covers).
    tbs: &'a [u8],
    /// responderID: `Ok(name DER)` by name, `Err(key hash)` by key.
    responder: Result<&'a [u8], &'a [u8]>,
    /// The SingleResponses.
    responses: &'a [u8],
    algorithm: &'a [u8],
    signature: &'a [u8],
    certs: Vec<&'a [u8]>,
}

/// OCSPResponse → its BasicOCSPResponse. Errors are nginx's log words.
fn basic(der: &[u8]) -> Result<Basic<'_>, String> {
    let bad = || "d2i_OCSP_RESPONSE() failed".to_string();
    let Some((0x30, _, resp, _)) = next(der) else {
        return Err(bad());
    };
    let Some((0x0a, _, status, rest)) = next(resp) else {
        return Err(bad());
    };
    let status = match status {
        [n] => *n,
        _ => return Err(bad()),
    };
    if status != 0 {
        let word = match status {
            1 => "malformedrequest",
            2 => "internalerror",
            3 => "trylater",
            5 => "sigrequired",
            6 => "unauthorized",
            _ => "(UNKNOWN)",
        };
        return Err(format!("OCSP response not successful ({status}: {word})"));
    }
    let bad_basic = || "OCSP_response_get1_basic() failed".to_string();
    let Some((0xa0, _, bytes, _)) = next(rest) else {
        return Err(bad_basic());
    };
    let Some((0x30, _, bytes, _)) = next(bytes) else {
        return Err(bad_basic());
    };
    let Some((0x06, _, oid, rest)) = next(bytes) else {
        return Err(bad_basic());
    };
    if oid != OID_OCSP_BASIC {
        return Err(bad_basic());
    }
    let Some((0x04, _, basic, _)) = next(rest) else {
        return Err(bad_basic());
    };
    let parts = || -> Option<Basic<'_>> {
        let (0x30, _, b, _) = next(basic)? else {
            return None;
        };
        let (0x30, tbs, data, rest) = next(b)? else {
            return None;
        };
        let (0x30, algorithm, _, rest) = next(rest)? else {
            return None;
        };
        let (0x03, signature, _, rest) = next(rest)? else {
            return None;
        };
        let mut certs = Vec::new();
        if let Some((0xa0, _, c, _)) = next(rest) {
            let (0x30, _, mut list, _) = next(c)? else {
                return None;
            };
            while !list.is_empty() {
                let (_, whole, _, after) = next(list)?;
                certs.push(whole);
                list = after;
            }
        }
        let mut data = data;
        if data.first() == Some(&0xa0) {
            data = next(data)?.3;
        }
        let (tag, _, id, rest) = next(data)?;
        let responder = match tag {
            0xa1 => Ok(id),
            0xa2 => match next(id)? {
                (0x04, _, hash, _) => Err(hash),
                _ => return None,
            },
            _ => return None,
        };
        let (0x18, _, _, rest) = next(rest)? else {
            return None;
        };
        let (0x30, _, responses, _) = next(rest)? else {
            return None;
        };
        Some(Basic {
            tbs,
            responder,
            responses,
            algorithm,
            signature,
            certs,
        })
    };
    parts().ok_or_else(bad_basic)
}

/// Whether `signer` made `b`'s signature.
fn signed_by(b: &Basic<'_>, signer: &X509Certificate<'_>) -> bool {
    use x509_parser::der_parser::asn1_rs::{BitString, FromDer};
    use x509_parser::x509::AlgorithmIdentifier;
    let (Ok((_, alg)), Ok((_, sig))) = (
        AlgorithmIdentifier::from_der(b.algorithm),
        BitString::from_der(b.signature),
    ) else {
        return false;
    };
    x509_parser::verify::verify_signature(signer.public_key(), &alg, &sig, b.tbs).is_ok()
}

/// Whether `c` is the responder `b` names.
fn is_responder(b: &Basic<'_>, c: &X509Certificate<'_>) -> bool {
    match b.responder {
        Ok(name) => c.subject().as_raw() == name,
        Err(hash) => Hash::Sha1.digest(&c.public_key().subject_public_key.data) == hash,
    }
}

/// Whether `issuer` is the issuer `id` names (its name and key hash to the CertID's).
fn matches_issuer(id: &CertId, issuer: &X509Certificate<'_>) -> bool {
    id.hash.digest(issuer.subject().as_raw()) == id.name
        && id.hash.digest(&issuer.public_key().subject_public_key.data) == id.key
}

/// Checks a DER OCSP response for `cert` (issued by `issuer`), as nginx does with
/// `OCSP_basic_verify` (flags `OCSP_NOVERIFY`, or `OCSP_TRUSTOTHER` with `verify`),
/// `OCSP_resp_find_status` and `OCSP_check_validity(…, 300, -1)`. `chain`: the
/// certificate file's other certificates (trusted as signers with `verify`); `store`: the
/// trusted certificates. The error is nginx's log line for it.
pub fn check(
    response: &[u8],
    cert: &[u8],
    issuer: &[u8],
    chain: &[CertificateDer<'_>],
    store: &[CertificateDer<'_>],
    verify: bool,
    now: i64,
) -> Result<Checked, String> {
    let b = basic(response)?;
    let (Some(cert), Some(issuer_cert)) = (parse(cert), parse(issuer)) else {
        return Err("OCSP_cert_to_id() failed".to_string());
    };
    // The signer: in the certificate file's chain first (trusted as it is, with
    // OCSP_TRUSTOTHER), then among the response's certificates.
    let in_chain = chain
        .iter()
        .filter_map(|c| parse(c))
        .find(|c| is_responder(&b, c));
    let in_response = || {
        b.certs
            .iter()
            .filter_map(|c| parse(c))
            .find(|c| is_responder(&b, c))
    };
    let (signer, trusted_signer) = match in_chain {
        Some(c) => (c, true),
        None => match in_response() {
            Some(c) => (c, false),
            None => {
                return Err("OCSP_basic_verify() failed (signer certificate not found)".to_string())
            }
        },
    };
    if !signed_by(&b, &signer) {
        return Err("OCSP_basic_verify() failed (signature failure)".to_string());
    }
    let our = |hash| CertId::new(&cert, &issuer_cert, hash);
    if verify && !trusted_signer {
        // The signer's chain to the trusted certificates (untrusted helpers: the
        // response's certificates and the file's chain).
        let mut sent: Vec<CertificateDer<'_>> =
            b.certs.iter().map(|c| CertificateDer::from(*c)).collect();
        sent.extend(chain.iter().cloned());
        let signer_der = CertificateDer::from(signer.as_raw());
        if let Err(e) = verify_chain(
            store,
            &[],
            100,
            Purpose::OcspHelper,
            &signer_der,
            &sent,
            now,
        ) {
            return Err(format!(
                "OCSP_basic_verify() failed (signer certificate verify error:num={}:{})",
                e.code(),
                e.reason()
            ));
        }
        // The signer answers for the issuer: it is the issuer, or the issuer signed it
        // for OCSP signing (id-kp-OCSPSigning). A root trusted for OCSP explicitly is an
        // OpenSSL-only notion that PEM files cannot carry.
        let id = our(Hash::Sha1);
        let delegated = signer.issuer().as_raw() == issuer_cert.subject().as_raw()
            && signer
                .verify_signature(Some(issuer_cert.public_key()))
                .is_ok()
            && signer
                .extended_key_usage()
                .ok()
                .flatten()
                .is_some_and(|e| e.value.ocsp_signing);
        if !delegated && !matches_issuer(&id, &signer) {
            return Err("OCSP_basic_verify() failed (root ca not trusted)".to_string());
        }
    }
    // The status of this certificate.
    let mut list = b.responses;
    while let Some((0x30, _, single, after)) = next(list) {
        list = after;
        match single_response(single, &our, now) {
            Single::Other => continue,
            Single::Bad => break,
            Single::Expired => return Err("OCSP_check_validity() failed".to_string()),
            Single::Ours(c) => {
                return Ok(c);
            }
        }
    }
    Err("certificate status not found in the OCSP response".to_string())
}

/// What one SingleResponse says.
enum Single {
    /// Of another certificate (or a hash Proton does not know).
    Other,
    /// Not a SingleResponse.
    Bad,
    /// Of this certificate, but not current.
    Expired,
    Ours(Checked),
}

/// Reads a SingleResponse, against `our` CertID (made with the hash it names), checking
/// its dates as `OCSP_check_validity(…, 300, -1)` at `now`.
fn single_response(single: &[u8], our: &dyn Fn(Hash) -> CertId, now: i64) -> Single {
    let read = || -> Option<Single> {
        let (0x30, _, id, rest) = next(single)? else {
            return None;
        };
        let (0x30, _, alg, id) = next(id)? else {
            return None;
        };
        let (0x06, _, oid, _) = next(alg)? else {
            return None;
        };
        let (0x04, _, name, id) = next(id)? else {
            return None;
        };
        let (0x04, _, key, id) = next(id)? else {
            return None;
        };
        let (0x02, _, serial, _) = next(id)? else {
            return None;
        };
        let Some(hash) = Hash::of(oid) else {
            return Some(Single::Other);
        };
        let ours = our(hash);
        if ours.name != name
            || ours.key != key
            || trim_integer(&ours.serial) != trim_integer(serial)
        {
            return Some(Single::Other);
        }
        let (tag, _, _, rest) = next(rest)?;
        let status = match tag {
            0x80 => CertStatus::Good,
            0xa1 => CertStatus::Revoked,
            0x82 => CertStatus::Unknown,
            _ => return None,
        };
        let (0x18, _, this, rest) = next(rest)? else {
            return None;
        };
        let this = generalized_time(this)?;
        let next_update = match next(rest) {
            Some((0xa0, _, t, _)) => match next(t)? {
                (0x18, _, t, _) => Some(generalized_time(t)?),
                _ => return None,
            },
            _ => None,
        };
        if this > now + 300 || next_update.is_some_and(|n| n < now - 300 || n < this) {
            return Some(Single::Expired);
        }
        Some(Single::Ours(Checked {
            status,
            next_update,
        }))
    };
    read().unwrap_or(Single::Bad)
}

/// Moves a staple's request to its responder and back (the runtime's part: a socket, a
/// thread, the error log). Called with the staple when a handshake finds it due; the
/// fetcher calls [`Staple::finish`] when done, whatever happened.
pub trait FetchOcsp: Send + Sync {
    fn fetch(&self, staple: Arc<Staple>);
}

/// One certificate's stapling state, shared by the handshakes of a worker.
pub struct Staple {
    /// The certificate file (for log lines).
    pub certificate: String,
    pub responder: Responder,
    /// The DER OCSPRequest.
    pub request: Vec<u8>,
    /// The certificate and key without a staple.
    plain: Arc<CertifiedKey>,
    issuer: CertificateDer<'static>,
    store: Arc<[CertificateDer<'static>]>,
    verify: bool,
    fetcher: Arc<dyn FetchOcsp>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Staple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staple")
            .field("certificate", &self.certificate)
            .field("responder", &self.responder.url)
            .finish()
    }
}

#[derive(Default)]
struct State {
    /// The certificate with the last good response, and until when it is valid.
    stapled: Option<(Arc<CertifiedKey>, i64)>,
    /// When to ask again.
    refresh: i64,
    /// A request is under way.
    loading: bool,
}

/// What [`plan`] made of one certificate: a staple, or why stapling is ignored for it
/// (nginx's warning, logged when the configuration loads).
pub type Planned = Result<Arc<Staple>, String>;

/// Sets up stapling for `key` (whose chain is the certificate file's, leaf first): the
/// issuer from the chain or `store`, the responder from `responder` or the certificate.
pub fn plan(
    certificate: &str,
    key: Arc<CertifiedKey>,
    responder: Option<&str>,
    store: Arc<[CertificateDer<'static>]>,
    verify: bool,
    fetcher: Arc<dyn FetchOcsp>,
) -> Planned {
    let ignored = |why: String| format!("\"ssl_stapling\" ignored, {why}");
    let Some(leaf) = key.cert.first() else {
        return Err(ignored(format!("no certificate in \"{certificate}\"")));
    };
    let Some(issuer) = find_issuer(leaf, &key.cert[1..], &store) else {
        return Err(ignored(format!(
            "issuer certificate not found for certificate \"{certificate}\""
        )));
    };
    let url = match responder {
        Some(u) => u.to_string(),
        None => aia_responder(leaf).ok_or_else(|| {
            ignored(format!(
                "no OCSP responder URL in the certificate \"{certificate}\""
            ))
        })?,
    };
    let responder = Responder::parse(&url)
        .map_err(|e| ignored(format!("{e} in the certificate \"{certificate}\"")))?;
    let (Some(c), Some(i)) = (parse(leaf), parse(&issuer)) else {
        return Err(ignored(format!(
            "certificate \"{certificate}\" cannot be read"
        )));
    };
    let request = request(&c, &i);
    Ok(Arc::new(Staple {
        certificate: certificate.to_string(),
        responder,
        request,
        plain: key,
        issuer,
        store,
        verify,
        fetcher,
        state: Mutex::new(State::default()),
    }))
}

impl Staple {
    /// The certificate to answer a handshake with at `now`: with the last good response
    /// while it is valid. Asks the fetcher for a new response when one is due (at most one
    /// request at a time).
    pub fn select(self: &Arc<Self>, now: i64) -> Arc<CertifiedKey> {
        let Ok(mut s) = self.state.lock() else {
            return self.plain.clone();
        };
        let key = match &s.stapled {
            Some((k, valid)) if *valid >= now => k.clone(),
            _ => self.plain.clone(),
        };
        if !s.loading && s.refresh <= now {
            s.loading = true;
            drop(s);
            self.fetcher.fetch(self.clone());
        }
        key
    }

    /// The fetcher's result: the response's body, or why there is none (already logged
    /// by the fetcher). Checks the response and keeps it when it is good; returns what to
    /// log (`Ok`: the status stapled; `Err`: why the response is not used).
    pub fn finish(&self, body: Option<&[u8]>, now: i64) -> Result<CertStatus, String> {
        let checked = match body {
            None => Err(None),
            Some(b) => {
                let chain = self.plain.cert.get(1..).unwrap_or_default();
                match self.plain.cert.first() {
                    Some(leaf) => {
                        check(b, leaf, &self.issuer, chain, &self.store, self.verify, now)
                            .map_err(Some)
                    }
                    None => Err(None),
                }
            }
        };
        let result = match &checked {
            Ok(c) if c.status != CertStatus::Good => Err(Some(format!(
                "certificate status \"{}\" in the OCSP response",
                c.status.name()
            ))),
            Ok(c) => Ok(*c),
            Err(e) => Err(e.clone()),
        };
        let Ok(mut s) = self.state.lock() else {
            return Err("OCSP state unusable".to_string());
        };
        s.loading = false;
        match result {
            Ok(c) => {
                let valid = c.next_update.unwrap_or(i64::MAX);
                let mut key = (*self.plain).clone();
                if let Some(b) = body {
                    key.ocsp = Some(b.to_vec());
                }
                s.stapled = Some((Arc::new(key), valid));
                // Refresh before it expires, but not before 5 minutes nor after an hour.
                s.refresh = valid.saturating_sub(300).min(now + 3600).max(now + 300);
                Ok(c.status)
            }
            Err(e) => {
                s.refresh = now + 300;
                Err(e.unwrap_or_default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_times_convert_to_unix_seconds() {
        assert_eq!(generalized_time(b"19700101000000Z"), Some(0));
        assert_eq!(generalized_time(b"20261206133000Z"), Some(1_796_563_800));
        assert_eq!(generalized_time(b"20000229235959.5Z"), Some(951_868_799));
        assert_eq!(generalized_time(b"20261206133000"), None);
        assert_eq!(generalized_time(b"2026120613300Z"), None);
        assert_eq!(generalized_time(b"20261306133000Z"), None);
    }

    #[test]
    fn serials_compare_by_value_not_by_encoding() {
        assert_eq!(trim_integer(&[0x00, 0x90]), &[0x00, 0x90]);
        assert_eq!(trim_integer(&[0x00, 0x00, 0x10]), &[0x10]);
        assert_eq!(trim_integer(&[0xff, 0x80]), &[0x80]);
        assert_eq!(trim_integer(&[0xff, 0x7f]), &[0xff, 0x7f]);
        assert_eq!(trim_integer(&[0x00]), &[0x00]);
        assert_eq!(trim_integer(&[]), &[] as &[u8]);
    }

    #[test]
    fn der_lengths_use_the_short_and_long_forms() {
        assert_eq!(element(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = element(0x04, &[0; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = element(0x04, &[0; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 1, 44]);
    }

    #[test]
    fn responder_urls_are_taken_apart_as_nginx() {
        let r = Responder::parse("http://127.0.0.1:8081").expect("url");
        assert_eq!((r.host.as_str(), r.path.as_str()), ("127.0.0.1", "/"));
        assert_eq!(r.addrs, vec!["127.0.0.1:8081".parse().expect("addr")]);
        let r = Responder::parse("HTTP://[::1]/ocsp").expect("url");
        assert_eq!((r.host.as_str(), r.path.as_str()), ("[::1]", "/ocsp/"));
        assert_eq!(r.addrs, vec!["[::1]:80".parse().expect("addr")]);
        assert!(Responder::parse("https://127.0.0.1/")
            .unwrap_err()
            .contains("invalid URL prefix"));
        assert!(Responder::parse("http://127.0.0.1:0/").is_err());
        assert!(Responder::parse("http://:80/").is_err());
    }

    #[test]
    fn responses_that_are_not_successful_say_why() {
        // OCSPResponse { responseStatus tryLater }
        let e = check(
            &[0x30, 0x03, 0x0a, 0x01, 0x03],
            b"",
            b"",
            &[],
            &[],
            false,
            0,
        );
        assert_eq!(e.unwrap_err(), "OCSP response not successful (3: trylater)");
        let e = check(b"<html>", b"", b"", &[], &[], false, 0);
        assert_eq!(e.unwrap_err(), "d2i_OCSP_RESPONSE() failed");
    }
}
