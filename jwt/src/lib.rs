//! Proton's JWT validation core (`auth_jwt`), shared by `protonc` and `proton-run`.
//!
//! * [`KeySet`]: a JWK set (RFC 7517) or one JWK, read once — at compile time by protonc to
//!   refuse a bad `auth_jwt_key_file`, at load time by proton-run, or when a JWKS arrives by
//!   `auth_jwt_key_request` — into verifier keys prepared for aws-lc (RSA, EC P-256/384/521,
//!   Ed25519, HMAC). Nothing about a key is parsed again per request.
//! * [`verify`]: one compact JWS token checked against a key set and a clock: shape, header,
//!   key choice, signature, claims, `exp`/`nbf` with a leeway. Each refusal is a distinct
//!   [`Refusal`] with its log text.
//! * [`Jwt`]: the header and claims of a token that passed, read by name or path for
//!   `$jwt_header_*`, `$jwt_claim_*` and `auth_jwt_require`, appended to a caller's buffer.
//!
//! This crate is sans-IO apart from [`KeySet::load`] reading a file: it never touches a
//! socket, a clock or the event loop, and never panics on anything a token or a key file
//! holds. Encrypted (JWE) and nested tokens are refused as such, a documented later step.

#![forbid(unsafe_code)]

mod alg;
mod b64;
mod json;
mod keys;
mod token;

pub use alg::Alg;
pub use json::JsonError;
pub use keys::{Key, KeyFileError, KeySet, KeyWarning, MAX_KEY_FILE};
pub use token::{
    append_value, requirement_met, verify, Compact, Jwt, Malformed, Part, Refusal, MAX_TOKEN_LEN,
};

/// The token of an `Authorization` header value: `Bearer` (any case) and one or more spaces
/// or tabs, then the token up to trailing blanks. `None` for another scheme or no token.
pub fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"Bearer") {
        return None;
    }
    let rest = &value[6..];
    let start = rest.iter().position(|&c| c != b' ' && c != b'\t')?;
    if start == 0 {
        return None;
    }
    let end = rest.iter().rposition(|&c| c != b' ' && c != b'\t')? + 1;
    Some(&rest[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer \t abc.d  "), Some(&b"abc.d"[..]));
        assert_eq!(bearer_token(b"Bearerabc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b""), None);
    }
}
