//! The regex engines of `proton_ir::pattern` side by side (issue 21): compile time and match
//! time of location-style patterns on the fast engine (the regex crate), on PCRE2 without JIT
//! (nginx's default, `pcre_jit off`) and with JIT (`pcre_jit on`). PCRE2 only gets patterns
//! the fast engine cannot express, so the comparison is of comparable patterns: the same
//! routing written with a look-ahead (PCRE2) and without (fast).
//!
//! `cargo run --release --manifest-path bench/regex/Cargo.toml [ROUNDS]`

use proton_ir::pattern::{compile, compile_jit, Regex};
use std::hint::black_box;
use std::time::Instant;

/// (name, pattern for the fast engine, the same routing with a look-ahead).
const PAIRS: &[(&str, &str, &str)] = &[
    (
        "nextcloud front controller",
        r"^/(?:index|remote|public|cron|core/ajax/update|status|ocs/v[12]|updater/.+|ocs-provider/.+)\.php(?:$|/)",
        r"^/(?!(?:data|config|lib|3rdparty|templates)/)(?:index|remote|public|cron|core/ajax/update|status|ocs/v[12]|updater/.+|ocs-provider/.+)\.php(?:$|/)",
    ),
    (
        "php split",
        r"^(.+?\.php)(/.*)?$",
        r"^(.+?\.php)(?=/|$)(/.*)?$",
    ),
    (
        "static assets",
        r"\.(?:css|js|svg|gif|png|jpg|ico|wasm|tflite|map|ogg|flac)$",
        r"(?<!/)\.(?:css|js|svg|gif|png|jpg|ico|wasm|tflite|map|ogg|flac)$",
    ),
];

const SUBJECTS: &[&[u8]] = &[
    b"/index.php/apps/files/",
    b"/remote.php/dav/files/alice/Documents/report.pdf",
    b"/data/alice/files/secret.txt",
    b"/apps/theming/css/default.css",
    b"/core/js/dist/main.js?v=123456",
    b"/ocs/v2.php/apps/notifications/api/v2/notifications",
    b"/a/very/long/path/that/matches/nothing/at/all/really/not/at/all",
];

fn time_compile(rounds: u32, f: impl Fn() -> Regex) -> (f64, Regex) {
    let start = Instant::now();
    let mut last = f();
    for _ in 1..rounds {
        last = black_box(f());
    }
    (start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds), last)
}

fn time_match(re: &Regex, rounds: u32) -> f64 {
    let mut locs = re.locations();
    let start = Instant::now();
    let mut hits = 0u32;
    for _ in 0..rounds {
        for s in SUBJECTS {
            if re.read(&mut locs, black_box(s)).is_some() {
                hits += 1;
            }
        }
    }
    black_box(hits);
    start.elapsed().as_secs_f64() * 1e9 / f64::from(rounds) / SUBJECTS.len() as f64
}

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    println!("| pattern | engine | compile (µs) | match with captures (ns per subject) |");
    println!("|---|---|---:|---:|");
    for (name, fast, look) in PAIRS {
        let (c, re) = time_compile(200, || compile(fast, false).expect("fast"));
        assert!(!re.is_pcre());
        println!("| {name} | regex crate | {c:.1} | {:.0} |", time_match(&re, rounds));
        let (c, re) = time_compile(200, || compile(look, false).expect("pcre"));
        assert!(re.is_pcre());
        println!("| {name} (look-around) | PCRE2 | {c:.1} | {:.0} |", time_match(&re, rounds));
        let (c, re) = time_compile(200, || compile_jit(look, false, true).expect("jit"));
        println!("| {name} (look-around) | PCRE2 JIT | {c:.1} | {:.0} |", time_match(&re, rounds));
    }
}
