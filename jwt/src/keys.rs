//! JSON Web Keys (RFC 7517) read once into ready verifier keys.
//!
//! A key file is a JWK set (`{"keys": [...]}`) or, as NGINX Plus also takes, one JWK. Each
//! key becomes a [`Key`] holding one prepared verifier per algorithm it may verify: an RSA
//! key the RS* and PS* it allows, an EC key the one ES* of its curve, an Ed25519 key EdDSA,
//! an `oct` key the HS* its length allows. A key's `alg`, when set, narrows that to one
//! algorithm; a key whose `use` is not `sig` or whose `key_ops` lack `verify` is left out.
//! Nothing here is parsed again per request.
//!
//! Keys of a kind Proton cannot verify with (`Ed448`, `secp256k1`, encryption keys, unknown
//! `kty`) are skipped with a [`KeyWarning`]; a key Proton could use but whose members are
//! wrong (bad base64url, a point not on its curve, an RSA modulus under 2048 bits, an HMAC
//! secret shorter than its hash) is a [`KeyFileError`], as is a file with no usable key.

use crate::alg::Alg;
use crate::b64;
use crate::json::{self, printable, JsonError};
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

/// Largest key file read (a JWKS of a few hundred RSA keys fits easily).
pub const MAX_KEY_FILE: usize = 1024 * 1024;

/// RSA moduli Proton accepts: RFC 7518 §3.3 asks for at least 2048 bits; aws-lc verifies up
/// to 8192.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// A set of verifier keys, read from a key file or a fetched JWKS.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<Key>,
    warnings: Vec<KeyWarning>,
}

/// One JWK, ready to verify.
pub struct Key {
    kid: Option<String>,
    kty: &'static str,
    verifiers: Vec<(Alg, Verifier)>,
}

/// A prepared verifier for one algorithm.
pub(crate) enum Verifier {
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

impl Verifier {
    /// Whether `signature` is `alg`'s signature of `message` under this key; HMAC tags are
    /// compared in constant time.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Verifier::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

impl Key {
    /// The key's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's `kty`.
    pub fn kty(&self) -> &'static str {
        self.kty
    }

    /// The algorithms this key verifies.
    pub fn algs(&self) -> impl Iterator<Item = Alg> + '_ {
        self.verifiers.iter().map(|(a, _)| *a)
    }

    pub(crate) fn verifier(&self, alg: Alg) -> Option<&Verifier> {
        self.verifiers
            .iter()
            .find_map(|(a, v)| (*a == alg).then_some(v))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("kty", &self.kty)
            .field("algs", &self.algs().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.keys)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// A key file Proton refuses, with where in the file (1-based line and column) when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// A key left out of a set, and why (for protonc's warnings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWarning {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{l}:{c}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for KeyFileError {}

impl fmt::Display for KeyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl KeySet {
    /// Reads the key file at `path` (a JWK set or one JWK).
    pub fn load(path: &Path) -> Result<KeySet, KeyFileError> {
        let bytes = std::fs::read(path).map_err(|e| KeyFileError {
            message: format!("cannot read {}: {e}", path.display()),
            line: None,
            column: None,
        })?;
        KeySet::from_json(&bytes)
    }

    /// Reads a JWK set (`{"keys":[…]}`) or one JWK from `text` (a file's or a fetched
    /// JWKS's bytes).
    pub fn from_json(text: &[u8]) -> Result<KeySet, KeyFileError> {
        if text.len() > MAX_KEY_FILE {
            return Err(KeyFileError {
                message: format!(
                    "a key file of {} bytes is over the limit of {MAX_KEY_FILE}",
                    text.len()
                ),
                line: None,
                column: None,
            });
        }
        let top = json::parse_object(text).map_err(|e| {
            let (line, column) = match e {
                JsonError::Syntax { line, column } => (line, column),
                _ => (1, 1),
            };
            KeyFileError {
                message: format!("the key file is {e} (a JWK set or a JWK is a JSON object)"),
                line: Some(line),
                column: Some(column),
            }
        })?;
        let mut set = KeySet::default();
        let members: Vec<(usize, &Map<String, Value>)> = match top.get("keys") {
            Some(Value::Array(items)) => {
                let offsets = element_offsets(text);
                let mut members = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let at = offsets.get(i).copied().unwrap_or(0);
                    match item {
                        Value::Object(m) => members.push((at, m)),
                        _ => {
                            return Err(error_at(
                                text,
                                at,
                                format!("key {} of \"keys\" is not a JSON object", i + 1),
                            ))
                        }
                    }
                }
                members
            }
            Some(_) => {
                return Err(error_at(text, 0, "\"keys\" is not an array".into()));
            }
            None if top.contains_key("kty") => vec![(first_brace(text), &top)],
            None => {
                return Err(error_at(
                    text,
                    0,
                    "neither a JWK set (no \"keys\") nor a JWK (no \"kty\")".into(),
                ))
            }
        };
        let single = !top.contains_key("keys");
        for (i, (at, jwk)) in members.into_iter().enumerate() {
            let name = if single {
                "the key".to_owned()
            } else {
                match jwk.get("kid").and_then(Value::as_str) {
                    Some(kid) => format!("key {} (kid \"{}\")", i + 1, printable(kid, 64)),
                    None => format!("key {}", i + 1),
                }
            };
            match read_key(jwk) {
                Ok(Some(key)) => set.keys.push(key),
                Ok(None) => {}
                Err(Problem::Skip(why)) => {
                    let (line, column) = line_column(text, at);
                    set.warnings.push(KeyWarning {
                        message: format!("{name} is skipped: {why}"),
                        line,
                        column,
                    });
                }
                Err(Problem::Bad(why)) => return Err(error_at(text, at, format!("{name}: {why}"))),
            }
            // A private key in a verification file deserves a word, whatever came of it.
            if let Some(m) = ["d", "p", "q", "dp", "dq", "qi"]
                .iter()
                .find(|m| jwk.contains_key(**m))
            {
                if jwk.get("kty").and_then(Value::as_str) != Some("oct") {
                    let (line, column) = line_column(text, at);
                    set.warnings.push(KeyWarning {
                        message: format!(
                            "{name} holds private key material (\"{m}\"); only its public part is used, and the file need not hold the rest"
                        ),
                        line,
                        column,
                    });
                }
            }
        }
        if set.keys.is_empty() {
            return Err(error_at(
                text,
                0,
                if set.warnings.is_empty() {
                    "no key in the file".into()
                } else {
                    format!(
                        "no key in the file can verify a JWS signature ({})",
                        set.warnings
                            .iter()
                            .map(|w| w.message.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                },
            ));
        }
        Ok(set)
    }

    /// Adds `other`'s keys after this set's (several `auth_jwt_key_file`s).
    pub fn extend(&mut self, other: KeySet) {
        self.keys.extend(other.keys);
        self.warnings.extend(other.warnings);
    }

    /// The keys, in file order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The keys left out, and why.
    pub fn warnings(&self) -> &[KeyWarning] {
        &self.warnings
    }
}

/// What is wrong with one key.
enum Problem {
    /// Proton cannot use it (not a signing key, or a kind it does not verify): skipped.
    Skip(String),
    /// Should be usable but is broken: the file is refused.
    Bad(String),
}

fn bad<T>(text: impl Into<String>) -> Result<T, Problem> {
    Err(Problem::Bad(text.into()))
}

/// A string member, `None` when absent; a member of another type is an error.
fn string_member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Problem> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => bad(format!("\"{name}\" is not a string")),
    }
}

/// A base64url member, required.
fn bytes_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Problem> {
    match string_member(jwk, name)? {
        None => bad(format!("\"{name}\" is missing")),
        Some(s) => match b64::decode(&b64::KEY_FILE, s.as_bytes()) {
            Some(v) => Ok(v),
            None => bad(format!("\"{name}\" is not base64url")),
        },
    }
}

fn read_key(jwk: &Map<String, Value>) -> Result<Option<Key>, Problem> {
    let kty = match string_member(jwk, "kty")? {
        Some(k) => k,
        None => return bad("\"kty\" is missing"),
    };
    let kid = string_member(jwk, "kid")?.map(str::to_owned);
    match string_member(jwk, "use")? {
        None | Some("sig") => {}
        Some(other) => {
            return Err(Problem::Skip(format!(
                "its \"use\" is \"{}\", not \"sig\"",
                printable(other, 32)
            )))
        }
    }
    match jwk.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) if !ops.iter().any(|o| o.as_str() == Some("verify")) => {
            return Err(Problem::Skip(
                "its \"key_ops\" do not include \"verify\"".into(),
            ));
        }
        Some(Value::Array(_)) => {}
        Some(_) => return bad("\"key_ops\" is not an array"),
    }
    let alg = match string_member(jwk, "alg")? {
        None => None,
        Some(name) => match Alg::from_name(name) {
            Some(a) => Some(a),
            None => {
                return Err(Problem::Skip(format!(
                    "its \"alg\" \"{}\" is not a JWS algorithm Proton verifies",
                    printable(name, 32)
                )))
            }
        },
    };
    if let Some(a) = alg {
        if a.kty() != kty && matches!(kty, "RSA" | "EC" | "OKP" | "oct") {
            return bad(format!(
                "\"alg\" \"{a}\" needs a key of \"kty\" \"{}\", not \"{kty}\"",
                a.kty()
            ));
        }
    }
    let allowed = |a: Alg| alg.is_none_or(|only| only == a);
    let (kty, verifiers) = match kty {
        "RSA" => ("RSA", rsa_verifiers(jwk, &allowed)?),
        "EC" => ("EC", ec_verifiers(jwk, alg)?),
        "OKP" => ("OKP", okp_verifiers(jwk)?),
        "oct" => ("oct", oct_verifiers(jwk, alg)?),
        other => {
            return Err(Problem::Skip(format!(
                "\"kty\" \"{}\" is not a key type Proton verifies with",
                printable(other, 32)
            )))
        }
    };
    if verifiers.is_empty() {
        return Ok(None);
    }
    Ok(Some(Key {
        kid,
        kty,
        verifiers,
    }))
}

const RSA_ALGS: [(Alg, &RsaParameters); 6] = [
    (Alg::RS256, &signature::RSA_PKCS1_2048_8192_SHA256),
    (Alg::RS384, &signature::RSA_PKCS1_2048_8192_SHA384),
    (Alg::RS512, &signature::RSA_PKCS1_2048_8192_SHA512),
    (Alg::PS256, &signature::RSA_PSS_2048_8192_SHA256),
    (Alg::PS384, &signature::RSA_PSS_2048_8192_SHA384),
    (Alg::PS512, &signature::RSA_PSS_2048_8192_SHA512),
];

fn rsa_verifiers(
    jwk: &Map<String, Value>,
    allowed: &dyn Fn(Alg) -> bool,
) -> Result<Vec<(Alg, Verifier)>, Problem> {
    let n = bytes_member(jwk, "n")?;
    let e = bytes_member(jwk, "e")?;
    let n = strip_zeros(&n);
    let e = strip_zeros(&e);
    let bits = bit_length(n);
    if !RSA_BITS.contains(&bits) {
        return bad(format!(
            "an RSA modulus of {bits} bits (JWS needs {} to {} bits)",
            RSA_BITS.start(),
            RSA_BITS.end()
        ));
    }
    if e.is_empty() || e.len() > 8 {
        return bad("the RSA exponent \"e\" is out of range");
    }
    let components = RsaPublicKeyComponents { n, e };
    let mut out = Vec::new();
    for (alg, params) in RSA_ALGS {
        if !allowed(alg) {
            continue;
        }
        match components.to_parsed_public_key(params) {
            Ok(k) => out.push((alg, Verifier::Public(k))),
            Err(e) => return bad(format!("the RSA key is rejected ({e})")),
        }
    }
    Ok(out)
}

fn ec_verifiers(
    jwk: &Map<String, Value>,
    alg: Option<Alg>,
) -> Result<Vec<(Alg, Verifier)>, Problem> {
    let crv = match string_member(jwk, "crv")? {
        Some(c) => c,
        None => return bad("\"crv\" is missing"),
    };
    let (curve_alg, size, params): (Alg, usize, &'static signature::EcdsaVerificationAlgorithm) =
        match crv {
            "P-256" => (Alg::ES256, 32, &signature::ECDSA_P256_SHA256_FIXED),
            "P-384" => (Alg::ES384, 48, &signature::ECDSA_P384_SHA384_FIXED),
            "P-521" => (Alg::ES512, 66, &signature::ECDSA_P521_SHA512_FIXED),
            other => {
                return Err(Problem::Skip(format!(
                    "the curve \"{}\" is not one Proton verifies with (P-256, P-384, P-521)",
                    printable(other, 32)
                )))
            }
        };
    if let Some(a) = alg {
        if a != curve_alg {
            return bad(format!(
                "\"alg\" \"{a}\" does not go with the curve \"{crv}\" ({curve_alg} does)"
            ));
        }
    }
    let x = bytes_member(jwk, "x")?;
    let y = bytes_member(jwk, "y")?;
    if x.len() != size || y.len() != size {
        return bad(format!(
            "\"x\" and \"y\" of a {crv} key are {size} bytes each, not {} and {}",
            x.len(),
            y.len()
        ));
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    match ParsedPublicKey::new(params, &point) {
        Ok(k) => Ok(vec![(curve_alg, Verifier::Public(k))]),
        Err(e) => bad(format!("the {crv} point is rejected ({e})")),
    }
}

fn okp_verifiers(jwk: &Map<String, Value>) -> Result<Vec<(Alg, Verifier)>, Problem> {
    let crv = match string_member(jwk, "crv")? {
        Some(c) => c,
        None => return bad("\"crv\" is missing"),
    };
    if crv != "Ed25519" {
        return Err(Problem::Skip(format!(
            "the curve \"{}\" is not one Proton verifies with (Ed25519)",
            printable(crv, 32)
        )));
    }
    let x = bytes_member(jwk, "x")?;
    if x.len() != 32 {
        return bad(format!(
            "\"x\" of an Ed25519 key is 32 bytes, not {}",
            x.len()
        ));
    }
    match ParsedPublicKey::new(&signature::ED25519, &x) {
        Ok(k) => Ok(vec![(Alg::EdDSA, Verifier::Public(k))]),
        Err(e) => bad(format!("the Ed25519 key is rejected ({e})")),
    }
}

const HMAC_ALGS: [(Alg, hmac::Algorithm, usize); 3] = [
    (Alg::HS256, hmac::HMAC_SHA256, 32),
    (Alg::HS384, hmac::HMAC_SHA384, 48),
    (Alg::HS512, hmac::HMAC_SHA512, 64),
];

fn oct_verifiers(
    jwk: &Map<String, Value>,
    alg: Option<Alg>,
) -> Result<Vec<(Alg, Verifier)>, Problem> {
    let k = bytes_member(jwk, "k")?;
    let mut out = Vec::new();
    for (a, h, min) in HMAC_ALGS {
        if alg.is_some_and(|only| only != a) {
            continue;
        }
        if k.len() < min {
            // RFC 7518 §3.2: a key at least as long as the hash.
            if alg.is_some() {
                return bad(format!(
                    "an HMAC secret of {} bytes is shorter than {a} needs ({min})",
                    k.len()
                ));
            }
            continue;
        }
        out.push((a, Verifier::Hmac(Box::new(hmac::Key::new(h, &k)))));
    }
    if out.is_empty() {
        return bad(format!(
            "an HMAC secret of {} bytes is shorter than HS256 needs (32)",
            k.len()
        ));
    }
    Ok(out)
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != 0).unwrap_or(b.len());
    &b[start..]
}

fn bit_length(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

fn error_at(text: &[u8], at: usize, message: String) -> KeyFileError {
    let (line, column) = line_column(text, at);
    KeyFileError {
        message,
        line: Some(line),
        column: Some(column),
    }
}

/// 1-based line and column (in characters) of byte `at` of `text`.
fn line_column(text: &[u8], at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
    let start = before
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |p| p + 1);
    let column = 1 + String::from_utf8_lossy(&before[start..]).chars().count();
    (line, column)
}

fn first_brace(text: &[u8]) -> usize {
    text.iter().position(|&c| c == b'{').unwrap_or(0)
}

/// Byte offsets of the elements of the top-level object's `"keys"` array in `text` (already
/// known to be valid JSON), for diagnostics that point at one key.
fn element_offsets(text: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    // The last string closed at depth 1, and whether a ':' followed it.
    let mut last_string: Option<(usize, usize)> = None;
    let mut name: Option<(usize, usize)> = None;
    let mut in_keys = false;
    let mut expect_element = false;
    while i < text.len() {
        let c = text[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if expect_element && c != b']' {
            out.push(i);
            expect_element = false;
        }
        match c {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    if text[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if depth == 1 {
                    last_string = Some((start, i.min(text.len())));
                }
            }
            b':' if depth == 1 => {
                name = last_string.take();
            }
            b'{' | b'[' => {
                depth += 1;
                if c == b'[' && depth == 2 {
                    let is_keys = name
                        .and_then(|(s, e)| text.get(s..e))
                        .is_some_and(|n| n == b"keys");
                    if is_keys {
                        in_keys = true;
                        expect_element = true;
                    }
                }
            }
            b'}' | b']' => {
                if in_keys && depth == 2 && c == b']' {
                    return out;
                }
                depth = depth.saturating_sub(1);
            }
            b',' if in_keys && depth == 2 => expect_element = true,
            b',' if depth == 1 => name = None,
            _ => {}
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_point_at_each_key() {
        let text = br#"{"x":{"keys":[1]},
  "keys": [
    {"kty":"oct","k":"]"} ,
    {"kty":"RSA"}
  ]}"#;
        let offs = element_offsets(text);
        assert_eq!(offs.len(), 2);
        assert_eq!(line_column(text, offs[0]), (3, 5));
        assert_eq!(line_column(text, offs[1]), (4, 5));
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(strip_zeros(&[0, 0, 5]), &[5]);
    }
}
