//! Every refusal, one token each, with its code and log text; and how keys are chosen.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proton_jwt::{verify, Alg, Compact, JsonError, KeySet, Malformed, Part, Refusal};

const NOW: u64 = 1_700_000_000;

/// 64 bytes of secret, base64url.
fn secret() -> Vec<u8> {
    (0u8..64).collect()
}

fn oct(kid: Option<&str>, alg: Option<&str>) -> String {
    let mut m = serde_json::Map::new();
    m.insert("kty".into(), "oct".into());
    m.insert("k".into(), URL_SAFE_NO_PAD.encode(secret()).into());
    if let Some(k) = kid {
        m.insert("kid".into(), k.into());
    }
    if let Some(a) = alg {
        m.insert("alg".into(), a.into());
    }
    serde_json::Value::Object(m).to_string()
}

fn set(keys: &[String]) -> KeySet {
    KeySet::from_json(format!("{{\"keys\":[{}]}}", keys.join(",")).as_bytes()).unwrap()
}

/// A token of `header` and `payload` (raw JSON texts), signed with the secret under `alg`.
fn hs(header: &str, payload: &str) -> String {
    hs_segments(
        &URL_SAFE_NO_PAD.encode(header),
        &URL_SAFE_NO_PAD.encode(payload),
        hmac::HMAC_SHA256,
    )
}

fn hs_segments(header: &str, payload: &str, h: hmac::Algorithm) -> String {
    let input = format!("{header}.{payload}");
    let key = hmac::Key::new(h, &secret());
    let tag = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn check(token: &str, keys: &KeySet) -> Result<(), Refusal> {
    verify(token.as_bytes(), keys, NOW, 0).map(|_| ())
}

const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
const CLAIMS: &str = r#"{"sub":"a","exp":1800000000}"#;

#[test]
fn a_good_token_passes() {
    let keys = set(&[oct(None, None)]);
    assert_eq!(check(&hs(HS256, CLAIMS), &keys), Ok(()));
    assert_eq!(check(&hs(HS256, "{}"), &keys), Ok(()));
}

#[test]
fn each_refusal_and_its_log_text() {
    let keys = set(&[oct(Some("k1"), None)]);
    let good = hs(HS256, CLAIMS);
    let (h, rest) = good.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let b = |t: &str| URL_SAFE_NO_PAD.encode(t);
    let long = "a".repeat(16 * 1024 + 1);
    let cases: Vec<(String, &str, &str)> = vec![
        ("".into(), "missing", "no JWT in the request"),
        (
            long,
            "too_long",
            "JWT of 16385 bytes is over the limit of 16384",
        ),
        (
            format!("{good}="),
            "malformed",
            "malformed JWT: base64url padding \"=\"",
        ),
        (
            format!("{h}.{p}+.{s}"),
            "malformed",
            "malformed JWT: byte 0x2B at 75 is not base64url",
        ),
        (
            format!("{h} .{p}.{s}"),
            "malformed",
            "malformed JWT: byte 0x20 at 36 is not base64url",
        ),
        (
            format!("{h}.{p}"),
            "malformed",
            "malformed JWT: 2 segments, not 3",
        ),
        (
            format!("{h}.{p}.{s}.x"),
            "malformed",
            "malformed JWT: 4 segments, not 3",
        ),
        (
            format!("{h}.{p}.{s}.x.y.z"),
            "malformed",
            "malformed JWT: 6 segments, not 3",
        ),
        (
            format!("{h}.{p}.{s}.x.y"),
            "encrypted",
            "JWT is encrypted (JWE), which is not supported",
        ),
        (
            format!("{}.{p}.{s}", b(r#"{"alg":"dir","enc":"A128GCM"}"#)),
            "encrypted",
            "JWT is encrypted (JWE), which is not supported",
        ),
        (
            format!("Q.{p}.{s}"),
            "malformed",
            "malformed JWT: the header is not base64url",
        ),
        (
            format!("{}.{p}.{s}", b("[1]")),
            "malformed",
            "malformed JWT: the header is not a JSON object",
        ),
        (
            format!("{}.{p}.{s}", b("{\"alg\":")),
            "malformed",
            "malformed JWT: the header is not valid JSON",
        ),
        (
            format!("{}.{p}.{s}", b(r#"{"alg":"HS256","alg":"none"}"#)),
            "malformed",
            "malformed JWT: the header is member \"alg\" appears twice",
        ),
        (
            format!("{}.{p}.{s}", b(r#"{"typ":"JWT"}"#)),
            "malformed",
            "malformed JWT: no \"alg\" in the header",
        ),
        (
            format!("{}.{p}.{s}", b(r#"{"alg":["HS256"]}"#)),
            "malformed",
            "malformed JWT: \"alg\" in the header is not a string",
        ),
        (
            format!("{}.{p}.{s}", b(r#"{"alg":"HS256","kid":7}"#)),
            "malformed",
            "malformed JWT: \"kid\" in the header is not a string",
        ),
        (
            format!("{}.{p}.", b(r#"{"alg":"none"}"#)),
            "alg_none",
            "JWT with alg \"none\" is refused",
        ),
        (
            format!("{}.{p}.{s}", b(r#"{"alg":"nOnE"}"#)),
            "alg_none",
            "JWT with alg \"none\" is refused",
        ),
        (
            format!("{}.{p}.{s}", b(r#"{"alg":"hs256"}"#)),
            "alg_unsupported",
            "JWT alg \"hs256\" is not supported",
        ),
        (
            format!("{}.{p}.{s}", b(r#"{"alg":"ES256K"}"#)),
            "alg_unsupported",
            "JWT alg \"ES256K\" is not supported",
        ),
        (
            format!("{}.{p}.{s}", b(r#"{"alg":"RS256\n\u0000"}"#)),
            "alg_unsupported",
            "JWT alg \"RS256\\x0A\\x00\" is not supported",
        ),
        (
            format!(
                "{}.{p}.{s}",
                b(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#)
            ),
            "crit",
            "JWT crit names extension \"b64\", which is not supported",
        ),
        (
            format!("{}.{p}.{s}", b(r#"{"alg":"HS256","cty":"JWT"}"#)),
            "nested",
            "JWT is nested (cty \"JWT\"), which is not supported",
        ),
        (
            hs(r#"{"alg":"HS256","kid":"k2"}"#, CLAIMS),
            "unknown_kid",
            "no JWT key with kid \"k2\"",
        ),
        (
            format!("{}.{p}.{s}", b(r#"{"alg":"RS256","kid":"k1"}"#)),
            "alg_not_allowed",
            "no JWT key may verify alg \"RS256\"",
        ),
        (
            format!("{h}.{p}.{}", &s[1..]),
            "malformed",
            "malformed JWT: the signature is not base64url",
        ),
        (
            format!("{h}.{p}.{}", "A".repeat(1400)),
            "malformed",
            "malformed JWT: the signature is over 1024 bytes",
        ),
        (
            format!(
                "{h}.{p}.{}{}",
                if s.starts_with('A') { 'B' } else { 'A' },
                &s[1..]
            ),
            "bad_signature",
            "JWT signature is invalid",
        ),
        (
            format!("{h}.{p}."),
            "bad_signature",
            "JWT signature is invalid",
        ),
        (
            format!("{h}.{}.{s}", b(r#"{"sub":"b","exp":1800000000}"#)),
            "bad_signature",
            "JWT signature is invalid",
        ),
        (
            hs_segments(h, "Q", hmac::HMAC_SHA256),
            "malformed",
            "malformed JWT: the payload is not base64url",
        ),
        (
            hs(HS256, "[]"),
            "malformed",
            "malformed JWT: the claims are not a JSON object",
        ),
        (
            hs(HS256, "Payload"),
            "malformed",
            "malformed JWT: the claims are not valid JSON",
        ),
        (
            hs(HS256, r#"{"a":{"b":1,"b":1}}"#),
            "malformed",
            "malformed JWT: the claims are member \"b\" appears twice",
        ),
        (
            hs(HS256, r#"{"exp":"tomorrow"}"#),
            "malformed",
            "malformed JWT: \"exp\" in the claims is not a number",
        ),
        (
            hs(HS256, r#"{"nbf":null}"#),
            "malformed",
            "malformed JWT: \"nbf\" in the claims is not a number",
        ),
        (
            hs(HS256, r#"{"exp":1600000000}"#),
            "expired",
            "JWT expired at 1600000000 (now 1700000000, leeway 0s)",
        ),
        (
            hs(HS256, r#"{"exp":1700000000}"#),
            "expired",
            "JWT expired at 1700000000 (now 1700000000, leeway 0s)",
        ),
        (
            hs(HS256, r#"{"exp":1699999999.5}"#),
            "expired",
            "JWT expired at 1699999999.5 (now 1700000000, leeway 0s)",
        ),
        (
            hs(HS256, r#"{"nbf":1700000001}"#),
            "not_yet_valid",
            "JWT is not valid before 1700000001 (now 1700000000, leeway 0s)",
        ),
    ];
    let mut failures = Vec::new();
    for (token, code, text) in &cases {
        match check(token, &keys) {
            Ok(()) => failures.push(format!("{token}: accepted, expected {code}")),
            Err(r) => {
                if r.code() != *code || r.to_string() != *text {
                    failures.push(format!(
                        "{token}: got {} \"{r}\", expected {code} \"{text}\"",
                        r.code()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn key_confusion_never_uses_a_public_key_as_a_secret() {
    // The RFC 7515 A.2 RSA key; a token "signed" with HMAC over its modulus bytes, its
    // JWK text and its base64url text, with and without the key's kid.
    let n = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
    let jwk = format!(r#"{{"kty":"RSA","kid":"r","n":"{n}","e":"AQAB"}}"#);
    let keys = KeySet::from_json(jwk.as_bytes()).unwrap();
    let modulus = URL_SAFE_NO_PAD.decode(n).unwrap();
    for secret in [modulus.as_slice(), jwk.as_bytes(), n.as_bytes()] {
        for header in [r#"{"alg":"HS256"}"#, r#"{"alg":"HS256","kid":"r"}"#] {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(CLAIMS)
            );
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
            assert_eq!(
                check(&token, &keys),
                Err(Refusal::AlgNotAllowed(Alg::HS256))
            );
        }
    }
}

#[test]
fn keys_are_chosen_by_kid_then_by_alg() {
    let other = r#"{"kty":"oct","kid":"other","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    let nokid = oct(None, None);
    let good = hs(HS256, CLAIMS);
    let with_kid = |kid: &str| hs(&format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#), CLAIMS);
    // No kid in the token: every key that fits is tried.
    assert_eq!(
        check(&good, &set(&[other.into(), oct(Some("a"), None)])),
        Ok(())
    );
    // A kid in the token: only that key, even if another would verify.
    assert_eq!(
        check(
            &with_kid("other"),
            &set(&[other.into(), oct(Some("a"), None)])
        ),
        Err(Refusal::BadSignature)
    );
    assert_eq!(
        check(&with_kid("a"), &set(&[other.into(), oct(Some("a"), None)])),
        Ok(())
    );
    // A kid no key has: the keys without a kid stand in; with none, the kid is unknown.
    assert_eq!(
        check(&with_kid("zz"), &set(&[other.into(), nokid.clone()])),
        Ok(())
    );
    assert_eq!(
        check(&with_kid("zz"), &set(&[other.into()])),
        Err(Refusal::UnknownKid("zz".into()))
    );
    // A key restricted to HS384 never verifies HS256, even with the right secret.
    assert_eq!(
        check(&good, &set(&[oct(None, Some("HS384"))])),
        Err(Refusal::AlgNotAllowed(Alg::HS256))
    );
    let h384 = hs_segments(
        &URL_SAFE_NO_PAD.encode(r#"{"alg":"HS384"}"#),
        &URL_SAFE_NO_PAD.encode(CLAIMS),
        hmac::HMAC_SHA384,
    );
    assert_eq!(check(&h384, &set(&[oct(None, Some("HS384"))])), Ok(()));
    // A token whose HMAC is HS384 but whose header says HS256: the signature fails.
    let (_, rest) = h384.split_once('.').unwrap();
    let lying = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#));
    assert_eq!(
        check(&lying, &set(&[oct(None, None)])),
        Err(Refusal::BadSignature)
    );
    // Keys with "use":"enc" or key_ops without "verify" are not in the set at all.
    let enc = r#"{"kty":"oct","use":"enc","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    let sign_only =
        r#"{"kty":"oct","key_ops":["sign"],"k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    let s = set(&[enc.into(), sign_only.into(), oct(None, None)]);
    assert_eq!(s.keys().len(), 1);
    assert_eq!(s.warnings().len(), 2);
}

#[test]
fn header_members_naming_keys_are_ignored() {
    // A token carrying its own key (jwk), or pointing at one (jku, x5u): the set decides.
    let keys = set(&[oct(None, None)]);
    let header = r#"{"alg":"HS256","jwk":{"kty":"oct","k":"AAAA"},"jku":"http://evil/","x5u":"http://evil/"}"#;
    assert_eq!(check(&hs(header, CLAIMS), &keys), Ok(()));
    // Signed with the attacker's own 3-byte key: refused.
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","jwk":{"kty":"oct","k":"AAAA"}}"#),
        URL_SAFE_NO_PAD.encode(CLAIMS)
    );
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &[0, 0, 0]),
        input.as_bytes(),
    );
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    assert_eq!(check(&token, &keys), Err(Refusal::BadSignature));
}

#[test]
fn the_steps_can_be_taken_one_by_one() {
    let keys = set(&[oct(Some("k"), None)]);
    let token = hs(r#"{"alg":"HS256","kid":"k","typ":"at+jwt"}"#, CLAIMS);
    let c = Compact::parse(token.as_bytes()).unwrap();
    assert_eq!(c.alg(), Alg::HS256);
    assert_eq!(c.kid(), Some("k"));
    assert_eq!(c.header()["typ"], "at+jwt");
    c.verify_signature(&keys).unwrap();
    let jwt = c.into_jwt().unwrap();
    assert_eq!(jwt.check_times(NOW, 0), Ok(()));
    assert_eq!(jwt.claim("sub"), Some(&serde_json::json!("a")));
    // A malformed header is reported with its part and JSON error.
    let bad = format!("{}.e30.", URL_SAFE_NO_PAD.encode("{\"alg\":\"HS256\",}"));
    assert!(matches!(
        Compact::parse(bad.as_bytes()),
        Err(Refusal::Malformed(Malformed::Json(
            Part::Header,
            JsonError::Syntax { line: 1, .. }
        )))
    ));
}

#[test]
fn key_sets_and_tokens_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<KeySet>();
    shared::<proton_jwt::Jwt>();
    shared::<Refusal>();
}
