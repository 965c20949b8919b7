//! Key files: what is refused (with its line and column, for protonc's diagnostics), what is
//! skipped with a warning, and what is read.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proton_jwt::{Alg, KeyFileError, KeySet};

const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

fn err(text: &str) -> KeyFileError {
    KeySet::from_json(text.as_bytes()).unwrap_err()
}

fn b(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn refusals_say_where() {
    let e = err("{\n  \"keys\": [\n    {\"kty\": \"oct\", \"k\": 1}\n  ]\n}");
    assert_eq!(e.message, "key 1: \"k\" is not a string");
    assert_eq!((e.line, e.column), (Some(3), Some(5)));
    assert_eq!(e.to_string(), "3:5: key 1: \"k\" is not a string");

    let e = err("{\"keys\": [\n {\"kty\":\"oct\",\"k\":\"AAAA\"} ]");
    assert_eq!(
        e.message,
        "the key file is not valid JSON (a JWK set or a JWK is a JSON object)"
    );
    assert_eq!(e.line, Some(2));

    let e = err(&format!(
        "{{\"keys\":[\n{{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"{P256_X}\",\"y\":\"{P256_Y}\"}},\n  {{\"kty\":\"EC\",\"kid\":\"b\",\"crv\":\"P-256\",\"x\":\"{P256_X}\",\"y\":\"{P256_X}\"}}]}}"
    ));
    assert!(
        e.message
            .starts_with("key 2 (kid \"b\"): the P-256 point is rejected"),
        "{e}"
    );
    assert_eq!((e.line, e.column), (Some(3), Some(3)));
}

#[test]
fn broken_keys_are_refused() {
    let rsa1024 = b(&[0xC1; 128]);
    let cases: Vec<(String, &str)> = vec![
        ("[]".into(), "the key file is not a JSON object (a JWK set or a JWK is a JSON object)"),
        ("{}".into(), "neither a JWK set (no \"keys\") nor a JWK (no \"kty\")"),
        (r#"{"keys":{}}"#.into(), "\"keys\" is not an array"),
        (r#"{"keys":[]}"#.into(), "no key in the file"),
        (r#"{"keys":[7]}"#.into(), "key 1 of \"keys\" is not a JSON object"),
        (r#"{"keys":[{"k":"AAAA"}]}"#.into(), "key 1: \"kty\" is missing"),
        (r#"{"kty":"oct","k":"AAAA","kty":"RSA"}"#.into(), "the key file is member \"kty\" appears twice (a JWK set or a JWK is a JSON object)"),
        (r#"{"kty":"oct"}"#.into(), "the key: \"k\" is missing"),
        (r#"{"kty":"oct","k":"A+A/"}"#.into(), "the key: \"k\" is not base64url"),
        (r#"{"kty":"oct","k":"AAAA"}"#.into(), "the key: an HMAC secret of 3 bytes is shorter than HS256 needs (32)"),
        (format!(r#"{{"kty":"oct","alg":"HS512","k":"{}"}}"#, b(&[7; 48])), "the key: an HMAC secret of 48 bytes is shorter than HS512 needs (64)"),
        (r#"{"kty":"oct","kid":3,"k":"AAAA"}"#.into(), "the key: \"kid\" is not a string"),
        (r#"{"kty":"oct","key_ops":"verify","k":"AAAA"}"#.into(), "the key: \"key_ops\" is not an array"),
        (format!(r#"{{"kty":"RSA","n":"{rsa1024}","e":"AQAB"}}"#), "the key: an RSA modulus of 1024 bits (JWS needs 2048 to 8192 bits)"),
        (format!(r#"{{"kty":"RSA","n":"{}","e":""}}"#, b(&[0xC1; 256])), "the key: the RSA exponent \"e\" is out of range"),
        (format!(r#"{{"kty":"RSA","n":"{}"}}"#, b(&[0xC1; 256])), "the key: \"e\" is missing"),
        (format!(r#"{{"kty":"RSA","alg":"ES256","n":"{}","e":"AQAB"}}"#, b(&[0xC1; 256])), "the key: \"alg\" \"ES256\" needs a key of \"kty\" \"EC\", not \"RSA\""),
        (format!(r#"{{"kty":"EC","alg":"ES384","crv":"P-256","x":"{P256_X}","y":"{P256_Y}"}}"#), "the key: \"alg\" \"ES384\" does not go with the curve \"P-256\" (ES256 does)"),
        (format!(r#"{{"kty":"EC","crv":"P-384","x":"{P256_X}","y":"{P256_Y}"}}"#), "the key: \"x\" and \"y\" of a P-384 key are 48 bytes each, not 32 and 32"),
        (format!(r#"{{"kty":"EC","x":"{P256_X}","y":"{P256_Y}"}}"#), "the key: \"crv\" is missing"),
        (r#"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#.into(), "the key: \"x\" of an Ed25519 key is 32 bytes, not 3"),
        (r#"{"kty":"OKP","crv":"Ed448","x":"AAAA"}"#.into(), "no key in the file can verify a JWS signature (the key is skipped: the curve \"Ed448\" is not one Proton verifies with (Ed25519))"),
    ];
    let mut failures = Vec::new();
    for (text, message) in &cases {
        match KeySet::from_json(text.as_bytes()) {
            Ok(s) => failures.push(format!("{text}: accepted as {s:?}")),
            Err(e) if e.message != *message => {
                failures.push(format!("{text}: \"{}\", expected \"{message}\"", e.message))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn keys_proton_cannot_use_are_skipped_with_a_warning() {
    let text = format!(
        r#"{{"keys":[
 {{"kty":"OKP","crv":"Ed448","x":"AAAA"}},
 {{"kty":"OKP","crv":"X25519","x":"AAAA"}},
 {{"kty":"EC","crv":"secp256k1","x":"AAAA","y":"AAAA"}},
 {{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}},
 {{"kty":"oct","alg":"A256GCM","k":"AAAA"}},
 {{"kty":"AKP","pub":"AAAA"}},
 {{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"{ED_X}","d":"secret"}}
]}}"#
    );
    let s = KeySet::from_json(text.as_bytes()).unwrap();
    assert_eq!(s.keys().len(), 1);
    assert_eq!(s.keys()[0].kid(), Some("ed"));
    assert_eq!(s.keys()[0].algs().collect::<Vec<_>>(), [Alg::EdDSA]);
    let w: Vec<String> = s.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        [
            "2:2: key 1 is skipped: the curve \"Ed448\" is not one Proton verifies with (Ed25519)",
            "3:2: key 2 is skipped: the curve \"X25519\" is not one Proton verifies with (Ed25519)",
            "4:2: key 3 is skipped: the curve \"secp256k1\" is not one Proton verifies with (P-256, P-384, P-521)",
            "5:2: key 4 is skipped: its \"use\" is \"enc\", not \"sig\"",
            "6:2: key 5 is skipped: its \"alg\" \"A256GCM\" is not a JWS algorithm Proton verifies",
            "7:2: key 6 is skipped: \"kty\" \"AKP\" is not a key type Proton verifies with",
            "8:2: key 7 (kid \"ed\") holds private key material (\"d\"); only its public part is used, and the file need not hold the rest",
        ]
    );
}

#[test]
fn hmac_secrets_allow_what_their_length_allows() {
    let algs = |len: usize, alg: Option<&str>| {
        let alg = alg.map_or(String::new(), |a| format!(r#","alg":"{a}""#));
        let text = format!(r#"{{"kty":"oct","k":"{}"{alg}}}"#, b(&vec![9; len]));
        KeySet::from_json(text.as_bytes()).unwrap().keys()[0]
            .algs()
            .collect::<Vec<_>>()
    };
    assert_eq!(algs(32, None), [Alg::HS256]);
    assert_eq!(algs(47, None), [Alg::HS256]);
    assert_eq!(algs(48, None), [Alg::HS256, Alg::HS384]);
    assert_eq!(algs(64, None), [Alg::HS256, Alg::HS384, Alg::HS512]);
    assert_eq!(algs(64, Some("HS384")), [Alg::HS384]);
}

#[test]
fn key_files_are_read_from_disk_and_sets_combine() {
    let dir = std::env::temp_dir().join(format!("proton-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys.json");
    // Padding in key members is tolerated.
    std::fs::write(
        &path,
        format!(
            r#"{{"keys":[{{"kty":"oct","kid":"a","k":"{}="}}]}}"#,
            b(&[1; 32])
        ),
    )
    .unwrap();
    let mut s = KeySet::load(&path).unwrap();
    s.extend(
        KeySet::from_json(format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}"}}"#).as_bytes())
            .unwrap(),
    );
    assert_eq!(s.keys().len(), 2);
    let missing = KeySet::load(&dir.join("nope.json")).unwrap_err();
    assert!(missing.message.starts_with("cannot read "), "{missing}");
    assert_eq!(missing.line, None);
    std::fs::remove_dir_all(&dir).unwrap();

    let big = vec![b' '; proton_jwt::MAX_KEY_FILE + 1];
    assert!(KeySet::from_json(&big)
        .unwrap_err()
        .message
        .contains("over the limit"));
}
