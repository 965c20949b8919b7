//! Compact JWS tokens (RFC 7515 §7.1) checked against a [`KeySet`], and the JWT claims
//! (RFC 7519) of one that passed.
//!
//! The order of the checks is fixed and each refusal is its own [`Refusal`]: size, alphabet
//! and shape; the header (JSON object, no duplicate member, `alg` one of the thirteen, no
//! `crit`, not JWE, not nested); the key (by `kid`, else every key that fits `alg`); the
//! signature; then the claims (a JSON object) and their `exp`/`nbf`. The claims are not
//! decoded before the signature holds. Header members that name keys (`jwk`, `jku`, `x5u`,
//! `x5c`) are never used: keys come from the configuration only.

use crate::alg::Alg;
use crate::b64;
use crate::json::{self, printable, JsonError};
use crate::keys::KeySet;
use serde_json::{Map, Value};
use std::fmt;
use std::io::Write;

/// Longest token taken (bytes): far above what an IdP issues, small enough that a header full
/// of junk costs little.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Longest signature (bytes): an RSA-8192 signature.
const MAX_SIGNATURE: usize = 1024;

/// Why a token is refused. Every kind answers 401; [`Refusal::code`] names the kind for
/// counters and [`fmt::Display`] gives the error log's text.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// No token (an empty `Authorization: Bearer`, cookie or argument).
    Missing,
    /// Longer than [`MAX_TOKEN_LEN`].
    TooLong { len: usize },
    /// Not a well-formed compact JWS with JSON object header and claims.
    Malformed(Malformed),
    /// A JWE (five segments, or an `enc` header): `auth_jwt_type encrypted` is a later step.
    Encrypted,
    /// A nested JWT (`cty: JWT`): `auth_jwt_type nested` is a later step.
    Nested,
    /// `alg: none` (in any case): an unsecured JWT is never accepted.
    AlgNone,
    /// An `alg` that is not one of the thirteen JWS algorithms Proton verifies.
    AlgUnsupported(String),
    /// A `crit` header: Proton understands no JWS extension (RFC 7515 §4.1.11).
    CritUnsupported(String),
    /// The token's `kid` names no key of the set.
    UnknownKid(String),
    /// No key (of the token's `kid`, or in the whole set) may verify `alg`: a wrong
    /// algorithm or a key-confusion attempt (an HS256 token against RSA keys).
    AlgNotAllowed(Alg),
    /// The signature does not verify under any key that may.
    BadSignature,
    /// `exp` is past (with the leeway).
    Expired { exp: f64, now: u64, leeway: u64 },
    /// `nbf` is still ahead (with the leeway).
    NotYetValid { nbf: f64, now: u64, leeway: u64 },
}

/// What is malformed in a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    /// Not three dot-separated segments.
    Segments(usize),
    /// `=` padding (RFC 7515 §2 forbids it).
    Padding,
    /// A byte outside base64url and `.`, and where.
    Alphabet { byte: u8, at: usize },
    /// A segment that is not base64url (a length of 4n+1, stray low bits).
    Base64(Part),
    /// A header or claims set that is not a JSON object, or has a member twice.
    Json(Part, JsonError),
    /// No `alg` in the header.
    AlgMissing,
    /// A member of the wrong JSON type (`alg`, `kid`, `typ`, `cty` not strings; `exp`, `nbf`
    /// not numbers).
    MemberType(Part, &'static str),
    /// A signature longer than any key makes.
    SignatureTooLong,
}

/// A segment of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Header,
    Payload,
    Signature,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Header => "header",
            Part::Payload => "payload",
            Part::Signature => "signature",
        }
    }
}

impl Refusal {
    /// A short, stable name of the kind (for counters and tests).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::TooLong { .. } => "too_long",
            Refusal::Malformed(_) => "malformed",
            Refusal::Encrypted => "encrypted",
            Refusal::Nested => "nested",
            Refusal::AlgNone => "alg_none",
            Refusal::AlgUnsupported(_) => "alg_unsupported",
            Refusal::CritUnsupported(_) => "crit",
            Refusal::UnknownKid(_) => "unknown_kid",
            Refusal::AlgNotAllowed(_) => "alg_not_allowed",
            Refusal::BadSignature => "bad_signature",
            Refusal::Expired { .. } => "expired",
            Refusal::NotYetValid { .. } => "not_yet_valid",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Missing => f.write_str("no JWT in the request"),
            Refusal::TooLong { len } => {
                write!(f, "JWT of {len} bytes is over the limit of {MAX_TOKEN_LEN}")
            }
            Refusal::Malformed(m) => write!(f, "malformed JWT: {m}"),
            Refusal::Encrypted => f.write_str("JWT is encrypted (JWE), which is not supported"),
            Refusal::Nested => f.write_str("JWT is nested (cty \"JWT\"), which is not supported"),
            Refusal::AlgNone => f.write_str("JWT with alg \"none\" is refused"),
            Refusal::AlgUnsupported(a) => write!(f, "JWT alg \"{a}\" is not supported"),
            Refusal::CritUnsupported(c) => {
                write!(
                    f,
                    "JWT crit names extension \"{c}\", which is not supported"
                )
            }
            Refusal::UnknownKid(k) => write!(f, "no JWT key with kid \"{k}\""),
            Refusal::AlgNotAllowed(a) => write!(f, "no JWT key may verify alg \"{a}\""),
            Refusal::BadSignature => f.write_str("JWT signature is invalid"),
            Refusal::Expired { exp, now, leeway } => {
                write!(f, "JWT expired at {exp} (now {now}, leeway {leeway}s)")
            }
            Refusal::NotYetValid { nbf, now, leeway } => {
                write!(
                    f,
                    "JWT is not valid before {nbf} (now {now}, leeway {leeway}s)"
                )
            }
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Segments(n) => write!(f, "{n} segments, not 3"),
            Malformed::Padding => f.write_str("base64url padding \"=\""),
            Malformed::Alphabet { byte, at } => {
                write!(f, "byte 0x{byte:02X} at {at} is not base64url")
            }
            Malformed::Base64(p) => write!(f, "the {} is not base64url", p.name()),
            Malformed::Json(Part::Payload, e) => write!(f, "the claims are {e}"),
            Malformed::Json(p, e) => write!(f, "the {} is {e}", p.name()),
            Malformed::AlgMissing => f.write_str("no \"alg\" in the header"),
            Malformed::MemberType(p, name) => {
                let what = if matches!(*name, "exp" | "nbf") {
                    "a number"
                } else {
                    "a string"
                };
                let part = if *p == Part::Payload {
                    "claims"
                } else {
                    p.name()
                };
                write!(f, "\"{name}\" in the {part} is not {what}")
            }
            Malformed::SignatureTooLong => {
                write!(f, "the signature is over {MAX_SIGNATURE} bytes")
            }
        }
    }
}

impl std::error::Error for Refusal {}

/// A compact JWS whose header has been read: the step before its signature is checked.
#[derive(Debug)]
pub struct Compact<'t> {
    signing_input: &'t [u8],
    payload: &'t [u8],
    signature: &'t [u8],
    alg: Alg,
    header: Map<String, Value>,
}

impl<'t> Compact<'t> {
    /// Splits `token` and reads its header; refuses what no key could make acceptable.
    pub fn parse(token: &'t [u8]) -> Result<Compact<'t>, Refusal> {
        if token.is_empty() {
            return Err(Refusal::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refusal::TooLong { len: token.len() });
        }
        let mut dots = [0usize; 4];
        let mut ndots = 0;
        for (at, &c) in token.iter().enumerate() {
            if c == b'.' {
                if ndots < dots.len() {
                    dots[ndots] = at;
                }
                ndots += 1;
            } else if !b64::is_url_safe(c) {
                return Err(Refusal::Malformed(if c == b'=' {
                    Malformed::Padding
                } else {
                    Malformed::Alphabet { byte: c, at }
                }));
            }
        }
        if ndots == 4 {
            return Err(Refusal::Encrypted);
        }
        if ndots != 2 {
            return Err(Refusal::Malformed(Malformed::Segments(ndots + 1)));
        }
        let (d1, d2) = (dots[0], dots[1]);
        let header_b64 = &token[..d1];
        let mut header_bytes = Vec::new();
        if !b64::decode_into(&b64::STRICT, header_b64, &mut header_bytes) {
            return Err(Refusal::Malformed(Malformed::Base64(Part::Header)));
        }
        let header = json::parse_object(&header_bytes)
            .map_err(|e| Refusal::Malformed(Malformed::Json(Part::Header, e)))?;
        if header.contains_key("enc") {
            return Err(Refusal::Encrypted);
        }
        let alg = match header.get("alg") {
            None => return Err(Refusal::Malformed(Malformed::AlgMissing)),
            Some(Value::String(name)) => match Alg::from_name(name) {
                Some(a) => a,
                None if name.eq_ignore_ascii_case("none") => return Err(Refusal::AlgNone),
                None => return Err(Refusal::AlgUnsupported(printable(name, 32))),
            },
            Some(_) => {
                return Err(Refusal::Malformed(Malformed::MemberType(
                    Part::Header,
                    "alg",
                )))
            }
        };
        for name in ["kid", "typ", "cty"] {
            if header.get(name).is_some_and(|v| !v.is_string()) {
                return Err(Refusal::Malformed(Malformed::MemberType(
                    Part::Header,
                    name,
                )));
            }
        }
        if let Some(crit) = header.get("crit") {
            let first = crit
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(Refusal::CritUnsupported(printable(first, 32)));
        }
        if header
            .get("cty")
            .and_then(Value::as_str)
            .is_some_and(|c| c.eq_ignore_ascii_case("JWT"))
        {
            return Err(Refusal::Nested);
        }
        Ok(Compact {
            signing_input: &token[..d2],
            payload: &token[d1 + 1..d2],
            signature: &token[d2 + 1..],
            alg,
            header,
        })
    }

    /// The header's `alg`.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The header's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// The header.
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// Checks the signature. With a `kid`, the keys of that `kid` are tried (and, when no key
    /// has it, the keys that have no `kid`); without one, every key. Only a key that may
    /// verify `alg` is ever used.
    pub fn verify_signature(&self, keys: &KeySet) -> Result<(), Refusal> {
        if self.signature.len() > MAX_SIGNATURE.div_ceil(3) * 4 {
            return Err(Refusal::Malformed(Malformed::SignatureTooLong));
        }
        let mut buf = [0u8; MAX_SIGNATURE + 8];
        let len = b64::decode_slice(self.signature, &mut buf)
            .ok_or(Refusal::Malformed(Malformed::Base64(Part::Signature)))?;
        let signature = &buf[..len];
        let kid = self.kid();
        let by_kid = kid.is_some_and(|k| keys.keys().iter().any(|key| key.kid() == Some(k)));
        let (mut matched, mut tried) = (false, false);
        for key in keys.keys() {
            let fits = match kid {
                Some(k) if by_kid => key.kid() == Some(k),
                Some(_) => key.kid().is_none(),
                None => true,
            };
            if !fits {
                continue;
            }
            matched = true;
            if let Some(v) = key.verifier(self.alg) {
                tried = true;
                if v.verify(self.signing_input, signature) {
                    return Ok(());
                }
            }
        }
        match kid {
            _ if tried => Err(Refusal::BadSignature),
            Some(k) if !matched => Err(Refusal::UnknownKid(printable(k, 64))),
            _ => Err(Refusal::AlgNotAllowed(self.alg)),
        }
    }

    /// Decodes the claims (after [`Compact::verify_signature`]).
    pub fn into_jwt(self) -> Result<Jwt, Refusal> {
        let mut bytes = Vec::new();
        if !b64::decode_into(&b64::STRICT, self.payload, &mut bytes) {
            return Err(Refusal::Malformed(Malformed::Base64(Part::Payload)));
        }
        let claims = json::parse_object(&bytes)
            .map_err(|e| Refusal::Malformed(Malformed::Json(Part::Payload, e)))?;
        for name in ["exp", "nbf"] {
            if claims.get(name).is_some_and(|v| !v.is_number()) {
                return Err(Refusal::Malformed(Malformed::MemberType(
                    Part::Payload,
                    name,
                )));
            }
        }
        Ok(Jwt {
            alg: self.alg,
            header: self.header,
            claims,
        })
    }
}

/// Checks `token` completely: shape, header, key, signature, claims, and `exp`/`nbf` against
/// `now` (seconds since the epoch) with `leeway` seconds either way (`auth_jwt_leeway`).
pub fn verify(token: &[u8], keys: &KeySet, now: u64, leeway: u64) -> Result<Jwt, Refusal> {
    let compact = Compact::parse(token)?;
    compact.verify_signature(keys)?;
    let jwt = compact.into_jwt()?;
    jwt.check_times(now, leeway)?;
    Ok(jwt)
}

/// A token that passed: its header and claims, for `$jwt_header_*`, `$jwt_claim_*`,
/// `auth_jwt_claim_set` and `auth_jwt_header_set`.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwt {
    alg: Alg,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl Jwt {
    /// The algorithm that verified it.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The header member `name`.
    pub fn header(&self, name: &str) -> Option<&Value> {
        self.header.get(name)
    }

    /// The claim `name`.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }

    /// The header member at `path` from the top (`auth_jwt_header_set $v a b`).
    pub fn header_path<'a>(&self, path: impl IntoIterator<Item = &'a str>) -> Option<&Value> {
        walk(&self.header, path)
    }

    /// The claim at `path` from the top (`auth_jwt_claim_set $email info e-mail`).
    pub fn claim_path<'a>(&self, path: impl IntoIterator<Item = &'a str>) -> Option<&Value> {
        walk(&self.claims, path)
    }

    /// Appends `$jwt_header_NAME` to `out` (see [`append_value`]); `false` when there is no
    /// such member (the variable is not found).
    pub fn append_header(&self, name: &[u8], out: &mut Vec<u8>) -> bool {
        append_member(&self.header, name, out)
    }

    /// Appends `$jwt_claim_NAME` to `out` (see [`append_value`]); `false` when there is no
    /// such claim.
    pub fn append_claim(&self, name: &[u8], out: &mut Vec<u8>) -> bool {
        append_member(&self.claims, name, out)
    }

    /// All the header members.
    pub fn header_map(&self) -> &Map<String, Value> {
        &self.header
    }

    /// All the claims.
    pub fn claims_map(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Refuses a token whose `exp` is past or whose `nbf` is ahead, `leeway` seconds allowed
    /// either way: expired when `now >= exp + leeway` (RFC 7519 §4.1.4: on or after),
    /// early when `now < nbf - leeway` (§4.1.5).
    pub fn check_times(&self, now: u64, leeway: u64) -> Result<(), Refusal> {
        let (n, l) = (now as f64, leeway as f64);
        if let Some(exp) = self.claims.get("exp").and_then(Value::as_f64) {
            if n >= exp + l {
                return Err(Refusal::Expired { exp, now, leeway });
            }
        }
        if let Some(nbf) = self.claims.get("nbf").and_then(Value::as_f64) {
            if n < nbf - l {
                return Err(Refusal::NotYetValid { nbf, now, leeway });
            }
        }
        Ok(())
    }
}

fn walk<'m, 'a>(
    map: &'m Map<String, Value>,
    path: impl IntoIterator<Item = &'a str>,
) -> Option<&'m Value> {
    let mut path = path.into_iter();
    let mut v = map.get(path.next()?)?;
    for name in path {
        v = v.as_object()?.get(name)?;
    }
    Some(v)
}

fn append_member(map: &Map<String, Value>, name: &[u8], out: &mut Vec<u8>) -> bool {
    let Ok(name) = std::str::from_utf8(name) else {
        return false;
    };
    match map.get(name) {
        Some(v) => {
            append_value(v, out);
            true
        }
        None => false,
    }
}

/// Appends a claim's or header member's value as NGINX Plus's variables give it: a string
/// as it is (unescaped), a number or `true`/`false` as its JSON text, `null` as nothing, an
/// array as its elements joined by `,` (strings as they are, anything else as JSON text),
/// an object as its compact JSON text.
pub fn append_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => {}
        Value::String(s) => out.extend_from_slice(s.as_bytes()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match item {
                    Value::String(s) => out.extend_from_slice(s.as_bytes()),
                    other => write_json(other, out),
                }
            }
        }
        other => write_json(other, out),
    }
}

fn write_json(v: &Value, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail; a failure would only leave the value short.
    let _ = serde_json::to_writer(&mut *out, v);
    let _ = out.flush();
}

/// Whether one `auth_jwt_require` value passes: not empty and not `"0"`.
pub fn requirement_met(value: &[u8]) -> bool {
    !value.is_empty() && value != b"0"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(v: Value) -> String {
        let mut out = Vec::new();
        append_value(&v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_render_as_nginx_plus_does() {
        assert_eq!(text(json!("a b\"c")), "a b\"c");
        assert_eq!(text(json!(1300819380)), "1300819380");
        assert_eq!(text(json!(-2)), "-2");
        assert_eq!(text(json!(1.5)), "1.5");
        assert_eq!(text(json!(true)), "true");
        assert_eq!(text(json!(null)), "");
        assert_eq!(text(json!(["bob", "saul"])), "bob,saul");
        assert_eq!(
            text(json!(["a", 1, null, {"b": "c"}])),
            "a,1,null,{\"b\":\"c\"}"
        );
        assert_eq!(text(json!([])), "");
        assert_eq!(
            text(json!({"e-mail": "x@y", "n": [1]})),
            "{\"e-mail\":\"x@y\",\"n\":[1]}"
        );
    }

    #[test]
    fn requirements() {
        assert!(requirement_met(b"1"));
        assert!(requirement_met(b"00"));
        assert!(requirement_met(b"false"));
        assert!(!requirement_met(b"0"));
        assert!(!requirement_met(b""));
    }

    #[test]
    fn paths_walk_objects() {
        let jwt = Jwt {
            alg: Alg::HS256,
            header: Map::new(),
            claims: json!({"info": {"e-mail": "a@b", "job title": "x"}, "s": "t"})
                .as_object()
                .unwrap()
                .clone(),
        };
        assert_eq!(jwt.claim_path(["info", "e-mail"]), Some(&json!("a@b")));
        assert_eq!(jwt.claim_path(["info", "job title"]), Some(&json!("x")));
        assert_eq!(jwt.claim_path(["s", "t"]), None);
        assert_eq!(jwt.claim_path([]), None);
        let mut out = Vec::new();
        assert!(jwt.append_claim(b"s", &mut out));
        assert!(!jwt.append_claim(b"info.e-mail", &mut out));
        assert!(!jwt.append_claim(b"\xff", &mut out));
        assert_eq!(out, b"t");
    }
}
