//! `auth_jwt` over real sockets: every algorithm and refusal of the PyJWT fixture
//! (`jwt/tests/fixtures/pyjwt.json`: keys and tokens made by PyJWT, with its verdicts) sent
//! to proton-run as `Authorization: Bearer` tokens; a token in a cookie; claims as
//! variables; `auth_jwt_require`; `satisfy any` with `allow`; a key file protonc refuses.

use proton_tests::{raw_exchange, Proton, TempDir};
use std::time::Duration;

fn fixture() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../jwt/tests/fixtures/pyjwt.json"
    );
    let text = std::fs::read_to_string(path).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

fn ask(port: u16, uri: &str, extra: &str) -> (u16, String) {
    let raw = format!("GET {uri} HTTP/1.0\r\nHost: jwt.test\r\n{extra}\r\n");
    let (bytes, _) = raw_exchange(port, raw.as_bytes(), Duration::from_secs(10));
    let text = String::from_utf8_lossy(&bytes).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn auth_jwt_checks_every_algorithm_and_refusal_as_pyjwt() {
    let t = TempDir::new("jwt");
    let fx = fixture();
    std::fs::write(
        t.path().join("keys.json"),
        serde_json::to_string(&fx["keys"]).expect("keys"),
    )
    .expect("key file");
    // (Static files: a `return` would answer in the rewrite phase, before the access
    // phase, as in nginx.)
    for d in [
        "",
        "cookie",
        "require",
        "require-zero",
        "any",
        "off",
        "payload",
    ] {
        std::fs::create_dir_all(t.path().join("html").join(d)).expect("dir");
        std::fs::write(t.path().join("html").join(d).join("f"), "file\n").expect("file");
    }
    let conf = "worker_processes 1;\nerror_log {dir}/logs/error.log info;\nevents {}\nhttp {\n\
        access_log off;\n\
        map $jwt_claim_zero $zero_ok { default 1; \"0\" 0; }\n\
        server {\n listen 127.0.0.1:{port};\n root {dir}/html;\n\
          auth_jwt_key_file keys.json;\n\
          location / { auth_jwt \"api $host\"; add_header X-Sub \"$jwt_claim_sub $jwt_claim_level $jwt_claim_aud $jwt_header_alg\" always; }\n\
          location /cookie/ { auth_jwt \"c\" token=$cookie_auth; add_header X-Sub $jwt_claim_sub; }\n\
          location /require/ { auth_jwt \"r\"; auth_jwt_require $jwt_claim_admin; }\n\
          location /require-zero/ { auth_jwt \"r\"; auth_jwt_require $zero_ok error=403; }\n\
          location /any/ { satisfy any; allow 127.0.0.1; deny all; auth_jwt \"a\"; }\n\
          location /off/ { auth_jwt off; }\n\
          location /payload/ { auth_jwt \"p\"; add_header X-Payload $jwt_payload; }\n\
        }\n}\n";
    let p = Proton::start(t.path(), conf, 1);
    let cases = fx["cases"].as_array().expect("cases");
    assert!(cases.len() >= 80);
    for c in cases {
        let name = c["name"].as_str().unwrap_or("");
        let token = c["token"].as_str().unwrap_or("");
        let ok = c["expect"] == "ok";
        let (status, text) = ask(p.port, "/f", &format!("Authorization: Bearer {token}\r\n"));
        if ok {
            assert_eq!(status, 200, "{name}: {text}");
            let alg = c["alg"].as_str().unwrap_or("");
            assert!(
                text.contains(&format!("X-Sub: alice 3 api,web {alg}\r\n")),
                "{name}: {text}"
            );
        } else {
            assert_eq!(status, 401, "{name}: {text}");
            assert!(
                text.contains(
                    "WWW-Authenticate: Bearer realm=\"api jwt.test\", error=\"invalid_token\"\r\n"
                ),
                "{name}: {text}"
            );
        }
    }
    // The refusals are logged with their reason.
    let logs = p.logs();
    for line in [
        "JWT signature is invalid",
        "JWT with alg \"none\" is refused",
        "no JWT key with kid",
        "JWT expired at",
    ] {
        assert!(logs.contains(line), "no {line:?} in\n{logs}");
    }
    let good = cases
        .iter()
        .find(|c| c["name"] == "ES256 valid")
        .and_then(|c| c["token"].as_str())
        .expect("ES256 token");
    // No token: a challenge without an error.
    let (status, text) = ask(p.port, "/f", "");
    assert_eq!(status, 401);
    assert!(
        text.contains("WWW-Authenticate: Bearer realm=\"api jwt.test\"\r\n"),
        "{text}"
    );
    // From a cookie.
    let (status, text) = ask(
        p.port,
        "/cookie/f",
        &format!("Cookie: x=1; auth={good}\r\n"),
    );
    assert_eq!(
        (status, text.contains("X-Sub: alice\r\n")),
        (200, true),
        "{text}"
    );
    assert_eq!(
        ask(
            p.port,
            "/cookie/f",
            &format!("Authorization: Bearer {good}\r\n")
        )
        .0,
        401
    );
    // Requirements: `admin` is true; `zero` is "0" (403 as asked).
    let bearer = format!("Authorization: Bearer {good}\r\n");
    assert_eq!(ask(p.port, "/require/f", &bearer).0, 200);
    assert_eq!(ask(p.port, "/require/f", "").0, 401);
    assert_eq!(ask(p.port, "/require-zero/f", &bearer).0, 403);
    // satisfy any: the address is enough; off: nothing asked.
    assert_eq!(ask(p.port, "/any/f", "").0, 200);
    assert_eq!(ask(p.port, "/off/f", "").0, 200);
    let (_, text) = ask(p.port, "/payload/f", &bearer);
    assert!(text.contains("\"sub\":\"alice\""), "{text}");
}

#[test]
fn a_broken_key_file_is_refused_by_protonc_with_its_place() {
    let t = TempDir::new("jwt-bad");
    std::fs::write(
        t.path().join("keys.json"),
        "{\"keys\": [\n  {\"kty\": \"RSA\", \"n\": \"AQAB\", \"e\": \"AQAB\"}\n]}\n",
    )
    .expect("key file");
    let conf = t.write(
        "proton.conf",
        "events {}\nhttp {\n server {\n  listen 127.0.0.1:8080;\n  location / { auth_jwt \"x\"; auth_jwt_key_file keys.json; }\n }\n}\n",
    );
    let out = std::process::Command::new(proton_tests::bin("protonc"))
        .arg(&conf)
        .arg("-o")
        .arg(t.path().join("out.ir"))
        .output()
        .expect("protonc");
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("cannot use auth_jwt_key_file \"keys.json\""),
        "{text}"
    );
    assert!(text.contains("proton.conf:5:"), "{text}");
}

/// `auth_jwt_key_request`: the key set comes from a subrequest (here a file served by an
/// internal location, logged with `log_subrequest on`); fetched per request without
/// `auth_jwt_key_cache`, once per worker with it; a fetch that fails answers 500.
#[test]
fn auth_jwt_key_request_fetches_and_caches_the_key_set() {
    let t = TempDir::new("jwt-fetch");
    let fx = fixture();
    std::fs::create_dir_all(t.path().join("html/a")).expect("dir");
    std::fs::create_dir_all(t.path().join("html/b")).expect("dir");
    std::fs::create_dir_all(t.path().join("html/c")).expect("dir");
    for d in ["a", "b", "c"] {
        std::fs::write(t.path().join("html").join(d).join("f"), "file\n").expect("file");
    }
    std::fs::write(
        t.path().join("jwks.json"),
        serde_json::to_string(&fx["keys"]).expect("keys"),
    )
    .expect("jwks");
    let conf = "worker_processes 1;\nerror_log {dir}/logs/error.log info;\nevents {}\nhttp {\n\
        log_format sub \"$uri $status\";\n\
        access_log {dir}/logs/access.log sub;\n\
        log_subrequest on;\n\
        server {\n listen 127.0.0.1:{port};\n root {dir}/html;\n\
          location = /jwks { internal; alias {dir}/jwks.json; }\n\
          location /a/ { auth_jwt \"a\"; auth_jwt_key_request /jwks; }\n\
          location /b/ { auth_jwt \"b\"; auth_jwt_key_request /jwks; auth_jwt_key_cache 1h; }\n\
          location /c/ { auth_jwt \"c\"; auth_jwt_key_request /missing-jwks; }\n\
        }\n}\n";
    let p = Proton::start(t.path(), conf, 1);
    let token = |name: &str| {
        fx["cases"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == name))
            .and_then(|c| c["token"].as_str())
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .expect("token")
    };
    let (rs, es) = (token("RS256 valid"), token("ES256 valid"));
    for _ in 0..3 {
        assert_eq!(ask(p.port, "/a/f", &rs).0, 200);
        assert_eq!(ask(p.port, "/b/f", &es).0, 200);
    }
    assert_eq!(ask(p.port, "/a/f", &token("RS256 expired")).0, 401);
    assert_eq!(ask(p.port, "/c/f", &rs).0, 500);
    let log = || std::fs::read_to_string(t.path().join("logs/access.log")).unwrap_or_default();
    assert!(proton_tests::wait_until(Duration::from_secs(10), || log()
        .lines()
        .filter(|l| l.starts_with("/c/f "))
        .count()
        == 1));
    let lines = log();
    let fetches = |after: &str| {
        // A fetch is logged before the request it was for.
        let mut n = 0;
        let mut count = 0;
        for l in lines.lines() {
            if l.starts_with("/jwks 200") {
                n += 1;
            } else if l.starts_with(after) {
                count += n;
                n = 0;
            } else {
                n = 0;
            }
        }
        count
    };
    assert_eq!(fetches("/a/f 200"), 3, "{lines}");
    assert_eq!(fetches("/b/f 200"), 1, "{lines}");
    assert!(
        p.logs().contains("auth_jwt_key_request got status 404"),
        "{}",
        p.logs()
    );
}
