//! proton-jwt against PyJWT: keys and tokens for all thirteen algorithms made by PyJWT
//! (`tests/fixtures/gen_pyjwt.py`, output committed as `tests/fixtures/pyjwt.json`), each with
//! PyJWT's own verdict. Proton must accept exactly what PyJWT accepts, refuse the rest with
//! the expected kind, and read the same claims.

use proton_jwt::{verify, Alg, KeySet};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/pyjwt.json");

fn fixture() -> Value {
    serde_json::from_str(FIXTURE).expect("fixture is JSON")
}

fn keys(f: &Value) -> KeySet {
    let text = serde_json::to_vec(&f["keys"]).unwrap();
    KeySet::from_json(&text).expect("PyJWT's JWK set loads")
}

#[test]
fn the_key_set_has_every_algorithm() {
    let f = fixture();
    let set = keys(&f);
    assert!(set.warnings().is_empty(), "{:?}", set.warnings());
    let mut algs: Vec<Alg> = set.keys().iter().flat_map(|k| k.algs()).collect();
    algs.sort_by_key(|a| a.name());
    let mut all = Alg::ALL.to_vec();
    all.sort_by_key(|a| a.name());
    assert_eq!(algs, all);
}

#[test]
fn verdicts_agree_with_pyjwt() {
    let f = fixture();
    let set = keys(&f);
    let now = f["now"].as_u64().unwrap();
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() > 80);
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let token = case["token"].as_str().unwrap();
        let expect = case["expect"].as_str().unwrap();
        let pyjwt = case["pyjwt"].as_str().unwrap();
        // The fixture itself: PyJWT accepts exactly the tokens Proton must accept.
        assert_eq!(expect == "ok", pyjwt == "ok", "{name}: fixture disagrees");
        let got = match verify(token.as_bytes(), &set, now, 0) {
            Ok(jwt) => {
                if let Some(claims) = case.get("claims") {
                    assert_eq!(
                        &Value::Object(jwt.claims_map().clone()),
                        claims,
                        "{name}: claims"
                    );
                }
                assert_eq!(jwt.alg().name(), case["alg"].as_str().unwrap());
                "ok".to_owned()
            }
            Err(r) => r.code().to_owned(),
        };
        if got != expect {
            failures.push(format!("{name}: got {got}, expected {expect}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn claims_read_as_variables() {
    let f = fixture();
    let set = keys(&f);
    let now = f["now"].as_u64().unwrap();
    let case = f["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ES256 valid")
        .unwrap();
    let jwt = verify(case["token"].as_str().unwrap().as_bytes(), &set, now, 0).unwrap();
    let var = |name: &str| {
        let mut out = Vec::new();
        jwt.append_claim(name.as_bytes(), &mut out)
            .then(|| String::from_utf8(out).unwrap())
    };
    assert_eq!(var("sub").as_deref(), Some("alice"));
    assert_eq!(var("aud").as_deref(), Some("api,web"));
    assert_eq!(var("exp").as_deref(), Some("4102444800"));
    assert_eq!(var("admin").as_deref(), Some("true"));
    assert_eq!(var("level").as_deref(), Some("3"));
    assert_eq!(
        var("info").as_deref(),
        Some(r#"{"e-mail":"alice@example.com","job title":"tester"}"#)
    );
    assert_eq!(var("nothing"), None);
    assert_eq!(
        jwt.claim_path(["info", "job title"]),
        Some(&Value::from("tester"))
    );
    let mut out = Vec::new();
    assert!(jwt.append_header(b"kid", &mut out));
    assert!(jwt.append_header(b"alg", &mut out));
    assert_eq!(out, b"p256ES256");
    // auth_jwt_require: "0" fails, anything else non-empty passes.
    assert!(!proton_jwt::requirement_met(
        var("zero").unwrap().as_bytes()
    ));
    assert!(proton_jwt::requirement_met(
        var("level").unwrap().as_bytes()
    ));
}

#[test]
fn leeway_moves_both_bounds() {
    let f = fixture();
    let set = keys(&f);
    let case = |n: &str| {
        f["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()["token"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec()
    };
    // exp = 946684810: expired from that second on; a leeway of 10 s moves it.
    let expired = case("HS256 expired");
    assert!(verify(&expired, &set, 946684809, 0).is_ok());
    assert_eq!(
        verify(&expired, &set, 946684810, 0).unwrap_err().code(),
        "expired"
    );
    assert!(verify(&expired, &set, 946684819, 10).is_ok());
    assert_eq!(
        verify(&expired, &set, 946684820, 10).unwrap_err().code(),
        "expired"
    );
    // nbf = 4102444790: valid from that second on.
    let early = case("HS256 not yet valid");
    assert_eq!(
        verify(&early, &set, 4102444789, 0).unwrap_err().code(),
        "not_yet_valid"
    );
    assert!(verify(&early, &set, 4102444790, 0).is_ok());
    assert!(verify(&early, &set, 4102444780, 10).is_ok());
    assert_eq!(
        verify(&early, &set, 4102444779, 10)
            .unwrap_err()
            .to_string(),
        "JWT is not valid before 4102444790 (now 4102444779, leeway 10s)"
    );
}
