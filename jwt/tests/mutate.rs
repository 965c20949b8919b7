//! Property tests: a valid token of any algorithm, changed in any way, never verifies and
//! never panics; arbitrary bytes as a token or as a key file never panic.

use proptest::prelude::*;
use proton_jwt::{verify, Compact, KeySet};
use serde_json::Value;
use std::sync::OnceLock;

const FIXTURE: &str = include_str!("fixtures/pyjwt.json");

struct Fixture {
    keys: KeySet,
    keys_text: Vec<u8>,
    tokens: Vec<Vec<u8>>,
    now: u64,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let f: Value = serde_json::from_str(FIXTURE).unwrap();
        let keys_text = serde_json::to_vec_pretty(&f["keys"]).unwrap();
        let tokens = f["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["expect"] == "ok")
            .map(|c| c["token"].as_str().unwrap().as_bytes().to_vec())
            .collect();
        Fixture {
            keys: KeySet::from_json(&keys_text).unwrap(),
            keys_text,
            tokens,
            now: f["now"].as_u64().unwrap(),
        }
    })
}

#[derive(Debug, Clone)]
enum Edit {
    FlipBit(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    /// Moves the cut between two segments (a dot) by some places.
    ShiftDot(usize, isize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let any_byte = prop_oneof![
        3 => proptest::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".to_vec()
        ),
        1 => any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Edit::FlipBit(i, b)),
        (any::<usize>(), any_byte.clone()).prop_map(|(i, c)| Edit::Set(i, c)),
        (any::<usize>(), any_byte).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), -3isize..=3).prop_map(|(i, d)| Edit::ShiftDot(i, d)),
    ]
}

fn apply(token: &mut Vec<u8>, e: &Edit) {
    let n = token.len();
    if n == 0 {
        return;
    }
    match *e {
        Edit::FlipBit(i, b) => token[i % n] ^= 1 << b,
        Edit::Set(i, c) => token[i % n] = c,
        Edit::Insert(i, c) => token.insert(i % (n + 1), c),
        Edit::Remove(i) => {
            token.remove(i % n);
        }
        Edit::Truncate(i) => token.truncate(i % n),
        Edit::ShiftDot(i, d) => {
            let dots: Vec<usize> = (0..n).filter(|&j| token[j] == b'.').collect();
            if dots.is_empty() {
                return;
            }
            let from = dots[i % dots.len()];
            let to = (from as isize + d).clamp(0, n as isize - 1) as usize;
            token.remove(from);
            token.insert(to.min(token.len()), b'.');
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn changed_tokens_never_verify(
        which in any::<usize>(),
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let f = fixture();
        let original = &f.tokens[which % f.tokens.len()];
        prop_assert!(verify(original, &f.keys, f.now, 0).is_ok());
        let mut token = original.clone();
        for e in &edits {
            apply(&mut token, e);
        }
        let got = verify(&token, &f.keys, f.now, 0);
        if &token != original {
            prop_assert!(got.is_err(), "{} verified", String::from_utf8_lossy(&token));
        }
    }

    #[test]
    fn arbitrary_tokens_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let f = fixture();
        prop_assert!(verify(&bytes, &f.keys, f.now, 0).is_err());
    }

    #[test]
    fn tokens_of_arbitrary_json_never_verify(
        header in "\\{(\"[a-z]{1,4}\":(\"[A-Za-z0-9]{0,6}\"|[0-9]{1,3}|null|\\[\\]|\\{\\}),?){0,4}\\}",
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        signature in proptest::collection::vec(any::<u8>(), 0..160),
        alg in proptest::sample::select(vec!["HS256", "RS256", "PS384", "ES256", "ES512", "EdDSA", "none", "x"]),
    ) {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let f = fixture();
        // The header as generated (often not JSON), and with the alg spliced in.
        for h in [header.clone(), header.replacen('{', &format!("{{\"alg\":\"{alg}\","), 1)] {
            let token = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(&h),
                URL_SAFE_NO_PAD.encode(&payload),
                URL_SAFE_NO_PAD.encode(&signature)
            );
            prop_assert!(verify(token.as_bytes(), &f.keys, f.now, 0).is_err());
            if let Ok(c) = Compact::parse(token.as_bytes()) {
                prop_assert!(c.verify_signature(&f.keys).is_err());
            }
        }
    }

    #[test]
    fn changed_key_files_never_panic(edits in proptest::collection::vec(edit(), 1..6)) {
        let f = fixture();
        let mut text = f.keys_text.clone();
        for e in &edits {
            apply(&mut text, e);
        }
        // Either a set (possibly smaller) or an error with a message; never a panic.
        match KeySet::from_json(&text) {
            Ok(s) => prop_assert!(!s.keys().is_empty()),
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }

    #[test]
    fn arbitrary_key_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        prop_assert!(KeySet::from_json(&bytes).is_err());
    }
}
