//! Verifications per second on one core, per algorithm: the whole `proton_jwt::verify` (token
//! split, header and claims JSON, key choice, signature, exp/nbf) on the PyJWT fixture's
//! tokens (2048-bit RSA, the three NIST curves, Ed25519, a 64-byte HMAC secret), and the
//! signature step alone for comparison. A measurement, not a test; run it on a quiet machine:
//!
//! ```sh
//! cargo run --release -p proton-jwt --example verify_bench [SECONDS_PER_ALG]
//! taskset -c 1 target/release/examples/verify_bench 2
//! ```

use proton_jwt::{verify, Compact, KeySet};
use serde_json::Value;
use std::hint::black_box;
use std::time::{Duration, Instant};

const FIXTURE: &str = include_str!("../tests/fixtures/pyjwt.json");

fn rate(seconds: f64, mut f: impl FnMut()) -> f64 {
    // Warm up, then run in batches until the time is up.
    for _ in 0..100 {
        f();
    }
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let f: Value = serde_json::from_str(FIXTURE).expect("fixture");
    let keys = KeySet::from_json(&serde_json::to_vec(&f["keys"]).unwrap()).expect("keys");
    let now = f["now"].as_u64().unwrap();
    println!(
        "{:<7} {:>10} {:>10} {:>9}",
        "alg", "verify/s", "sig-only/s", "µs/verify"
    );
    for alg in [
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
        "ES384", "ES512", "EdDSA",
    ] {
        let case = f["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == format!("{alg} valid").as_str())
            .expect("case");
        let token = case["token"].as_str().unwrap().as_bytes().to_vec();
        assert!(verify(&token, &keys, now, 0).is_ok());
        let full = rate(seconds, || {
            black_box(verify(black_box(&token), &keys, now, 0).is_ok());
        });
        let sig = rate(seconds, || {
            let c = Compact::parse(black_box(&token)).unwrap();
            black_box(c.verify_signature(&keys).is_ok());
        });
        println!("{alg:<7} {full:>10.0} {sig:>10.0} {:>9.2}", 1e6 / full);
    }
}
