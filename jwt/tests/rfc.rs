//! The examples of the JOSE RFCs, typed in from the RFC text: RFC 7515 appendix A (HS256,
//! RS256, ES256, ES512, the unsecured JWS) and E (`crit`), RFC 7517 appendix A (key sets),
//! RFC 8037 appendix A (Ed25519), RFC 7516 appendix A.3 (a JWE).

use proton_jwt::{verify, Alg, Compact, JsonError, KeySet, Malformed, Part, Refusal};
use serde_json::json;

/// RFC 7515 A.1.1 / RFC 7519 §3.1: the claims every RFC 7515 A example signs.
const PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

/// Just before the examples' `exp` (1300819380).
const NOW: u64 = 1300819379;

/// RFC 7517 A.3: a symmetric key set (an AES key wrap key, then the HMAC key of RFC 7515 A.1).
const RFC7517_A3: &str = r#"{"keys":
  [
    {"kty":"oct",
     "alg":"A128KW",
     "k":"GawgguFyGrWKav7AX4VKUg"},

    {"kty":"oct",
     "k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
     "kid":"HMAC key used in JWS spec Appendix A.1 example"}
  ]
}"#;

/// RFC 7517 A.1: public keys, an EC key for encryption and an RSA signing key.
const RFC7517_A1: &str = r#"{"keys":
  [
    {"kty":"EC",
     "crv":"P-256",
     "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
     "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
     "use":"enc",
     "kid":"1"},

    {"kty":"RSA",
     "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
     "e":"AQAB",
     "alg":"RS256",
     "kid":"2011-04-29"}
  ]
}"#;

/// RFC 7515 A.2.1: the RSA key (public part).
const RFC7515_A2_KEY: &str = r#"{"kty":"RSA",
  "n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
  "e":"AQAB"}"#;

/// RFC 7515 A.3.1: the P-256 key (public part).
const RFC7515_A3_KEY: &str = r#"{"kty":"EC",
  "crv":"P-256",
  "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
  "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

/// RFC 7515 A.4.1: the P-521 key (public part).
const RFC7515_A4_KEY: &str = r#"{"kty":"EC",
  "crv":"P-521",
  "x":"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk",
  "y":"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2"}"#;

/// RFC 8037 A.2: the Ed25519 key (public part).
const RFC8037_A2_KEY: &str = r#"{"kty":"OKP","crv":"Ed25519",
  "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

fn token(header: &str, signature: &str) -> String {
    format!("{header}.{PAYLOAD}.{signature}")
}

/// RFC 7515 A.1.1.
fn a1() -> String {
    token(
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9",
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    )
}

/// RFC 7515 A.2.1.
fn a2() -> String {
    token(
        "eyJhbGciOiJSUzI1NiJ9",
        "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw",
    )
}

/// RFC 7515 A.3.1.
fn a3() -> String {
    token(
        "eyJhbGciOiJFUzI1NiJ9",
        "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
    )
}

/// RFC 7515 A.4.1: ES512 over the payload "Payload" (not JSON).
const A4: &str = "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA.AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn";

/// RFC 8037 A.4: EdDSA over "Example of Ed25519 signing" (not JSON).
const RFC8037_A4: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn set(text: &str) -> KeySet {
    KeySet::from_json(text.as_bytes()).unwrap()
}

#[test]
fn rfc7515_a1_hs256() {
    let keys = set(RFC7517_A3);
    // The A128KW key is an encryption key: left out, with a word.
    assert_eq!(keys.keys().len(), 1);
    assert_eq!(keys.warnings().len(), 1);
    assert_eq!(keys.warnings()[0].line, 3);
    assert!(keys.warnings()[0].message.contains("A128KW"));
    let jwt = verify(a1().as_bytes(), &keys, NOW, 0).unwrap();
    assert_eq!(jwt.alg(), Alg::HS256);
    assert_eq!(jwt.claim("iss"), Some(&json!("joe")));
    assert_eq!(jwt.claim("exp"), Some(&json!(1300819380)));
    assert_eq!(jwt.claim("http://example.com/is_root"), Some(&json!(true)));
    assert_eq!(jwt.header("typ"), Some(&json!("JWT")));
    // RFC 7519 §4.1.4: not accepted on or after exp.
    assert_eq!(
        verify(a1().as_bytes(), &keys, NOW + 1, 0),
        Err(Refusal::Expired {
            exp: 1300819380.0,
            now: NOW + 1,
            leeway: 0
        })
    );
    assert!(verify(a1().as_bytes(), &keys, NOW + 1, 1).is_ok());
}

#[test]
fn rfc7515_a2_rs256() {
    let keys = set(RFC7515_A2_KEY);
    let algs: Vec<Alg> = keys.keys()[0].algs().collect();
    assert_eq!(
        algs,
        [
            Alg::RS256,
            Alg::RS384,
            Alg::RS512,
            Alg::PS256,
            Alg::PS384,
            Alg::PS512
        ]
    );
    let jwt = verify(a2().as_bytes(), &keys, NOW, 0).unwrap();
    assert_eq!(jwt.alg(), Alg::RS256);
    assert_eq!(jwt.claim("iss"), Some(&json!("joe")));
    // The A.2 token against the RFC 7517 A.1 key set: another RSA key, same alg.
    assert_eq!(
        verify(a2().as_bytes(), &set(RFC7517_A1), NOW, 0),
        Err(Refusal::BadSignature)
    );
}

#[test]
fn rfc7515_a3_es256() {
    let keys = set(RFC7515_A3_KEY);
    assert_eq!(keys.keys()[0].algs().collect::<Vec<_>>(), [Alg::ES256]);
    let jwt = verify(a3().as_bytes(), &keys, NOW, 0).unwrap();
    assert_eq!(jwt.alg(), Alg::ES256);
    // The ES256 token against the RSA and HMAC sets: no key there may verify ES256.
    assert_eq!(
        verify(a3().as_bytes(), &set(RFC7515_A2_KEY), NOW, 0),
        Err(Refusal::AlgNotAllowed(Alg::ES256))
    );
    assert_eq!(
        verify(a3().as_bytes(), &set(RFC7517_A3), NOW, 0),
        Err(Refusal::AlgNotAllowed(Alg::ES256))
    );
}

#[test]
fn rfc7515_a4_es512() {
    let keys = set(RFC7515_A4_KEY);
    assert_eq!(keys.keys()[0].algs().collect::<Vec<_>>(), [Alg::ES512]);
    let c = Compact::parse(A4.as_bytes()).unwrap();
    assert_eq!(c.alg(), Alg::ES512);
    assert_eq!(c.verify_signature(&keys), Ok(()));
    // The signature holds, but "Payload" is no JWT claims set.
    assert!(matches!(
        verify(A4.as_bytes(), &keys, NOW, 0),
        Err(Refusal::Malformed(Malformed::Json(
            Part::Payload,
            JsonError::Syntax { .. }
        )))
    ));
}

#[test]
fn rfc8037_a4_ed25519() {
    let keys = set(RFC8037_A2_KEY);
    assert_eq!(keys.keys()[0].algs().collect::<Vec<_>>(), [Alg::EdDSA]);
    let c = Compact::parse(RFC8037_A4.as_bytes()).unwrap();
    assert_eq!(c.alg(), Alg::EdDSA);
    assert_eq!(c.verify_signature(&keys), Ok(()));
    // One bit off in the signature.
    let bad = RFC8037_A4.replace("MuM0KAg", "MuM0KAw");
    assert_eq!(
        Compact::parse(bad.as_bytes())
            .unwrap()
            .verify_signature(&keys),
        Err(Refusal::BadSignature)
    );
}

#[test]
fn rfc7515_a5_unsecured_is_refused() {
    let unsecured = format!("eyJhbGciOiJub25lIn0.{PAYLOAD}.");
    for keys in [set(RFC7517_A3), set(RFC7515_A2_KEY)] {
        assert_eq!(
            verify(unsecured.as_bytes(), &keys, NOW, 0),
            Err(Refusal::AlgNone)
        );
    }
}

#[test]
fn rfc7515_e_crit_is_refused() {
    // Appendix E: an unsecured JWS naming an unknown critical extension.
    let e = "eyJhbGciOiJub25lIiwNCiAiY3JpdCI6WyJodHRwOi8vZXhhbXBsZS5jb20vVU5ERUZJTkVEIl0sDQogImh0dHA6Ly9leGFtcGxlLmNvbS9VTkRFRklORUQiOnRydWUNCn0.RkFJTA.";
    assert_eq!(
        verify(e.as_bytes(), &set(RFC7517_A3), NOW, 0),
        Err(Refusal::AlgNone)
    );
    // §4.1.11's example header, HS256 this time: refused for its crit.
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","crit":["exp"],"exp":1363284000}"#);
    let t = format!("{header}.{PAYLOAD}.AAAA");
    assert_eq!(
        Compact::parse(t.as_bytes()).unwrap_err(),
        Refusal::CritUnsupported("exp".into())
    );
}

#[test]
fn rfc7517_a1_public_keys() {
    let keys = set(RFC7517_A1);
    // The "use":"enc" EC key is left out; the RSA key verifies RS256 only.
    assert_eq!(keys.keys().len(), 1);
    let k = &keys.keys()[0];
    assert_eq!(k.kid(), Some("2011-04-29"));
    assert_eq!(k.kty(), "RSA");
    assert_eq!(k.algs().collect::<Vec<_>>(), [Alg::RS256]);
    assert_eq!(keys.warnings().len(), 1);
    assert!(keys.warnings()[0]
        .message
        .starts_with("key 1 (kid \"1\") is skipped"));
    assert_eq!((keys.warnings()[0].line, keys.warnings()[0].column), (3, 5));
}

#[test]
fn rfc7516_a3_jwe_is_refused() {
    let jwe = "eyJhbGciOiJBMTI4S1ciLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.6KB707dM9YTIgHtLvtgWQ8mKwboJW3of9locizkDTHzBC2IlrT1oOQ.AxY8DCtDaGlsbGljb3RoZQ.KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY.U0m_YmjN04DJvceFICbCVQ";
    assert_eq!(
        verify(jwe.as_bytes(), &set(RFC7517_A3), NOW, 0),
        Err(Refusal::Encrypted)
    );
}
