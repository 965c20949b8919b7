//! base64url (RFC 4648 §5) as JOSE uses it: no padding, no other alphabet, no line breaks
//! (RFC 7515 §2), and no stray low bits in the last character.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// Tokens: exactly RFC 7515's form.
pub const STRICT: GeneralPurpose = URL_SAFE_NO_PAD;

/// Key files (written by people and by many tools): `=` padding is tolerated, nothing else.
pub const KEY_FILE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Whether `c` is a base64url character.
pub fn is_url_safe(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// `text` decoded into `out` (which it replaces), or `false`.
pub fn decode_into(engine: &GeneralPurpose, text: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    engine.decode_vec(text, out).is_ok()
}

/// `text` decoded, or `None`.
pub fn decode(engine: &GeneralPurpose, text: &[u8]) -> Option<Vec<u8>> {
    engine.decode(text).ok()
}

/// `text` decoded into the front of `buf`; the decoded length, or `None` when `text` is not
/// base64url or does not fit.
pub fn decode_slice(text: &[u8], buf: &mut [u8]) -> Option<usize> {
    if text.len() / 4 * 3 + 3 > buf.len() {
        return None;
    }
    STRICT.decode_slice(text, buf).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_refuses_padding_and_stray_bits() {
        assert_eq!(decode(&STRICT, b"QQ"), Some(b"A".to_vec()));
        assert_eq!(decode(&STRICT, b"QQ=="), None);
        assert_eq!(decode(&STRICT, b"QR"), None); // low bits set
        assert_eq!(decode(&STRICT, b"Q"), None);
        assert_eq!(decode(&STRICT, b"Q+"), None);
        assert_eq!(decode(&KEY_FILE, b"QQ=="), Some(b"A".to_vec()));
        assert_eq!(decode(&KEY_FILE, b"QQ"), Some(b"A".to_vec()));
        assert_eq!(decode(&KEY_FILE, b"Q/=="), None);
    }

    #[test]
    fn slices_refuse_what_does_not_fit() {
        let mut buf = [0u8; 8];
        assert_eq!(decode_slice(b"QUJD", &mut buf), Some(3));
        assert_eq!(decode_slice(b"QUJDREVGR0g", &mut buf), None);
    }
}
