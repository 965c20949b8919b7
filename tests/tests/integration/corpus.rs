//! The realistic corpus (`tests/corpus/realistic/`, described in `tests/corpus/README.md`):
//! nginx configs written in the way well-known projects deploy nginx (PHP applications over
//! FastCGI, TLS reverse proxies with WebSockets, caching proxies, load balancers, static
//! sites, uWSGI, SCGI and gRPC back ends, Debian's `sites-enabled`/`snippets` layout).
//!
//! Each config is copied into a private prefix with what it needs at run time — Debian's
//! own `fastcgi_params`, `snippets/fastcgi-php.conf`, `mime.types`… from `/etc/nginx`
//! (never committed here), a self-signed certificate and key for every `ssl_certificate*`
//! line, DH parameters, password files — and checked twice:
//!
//! * `nginx -t` must accept it: a config nginx rejects is a defect of the corpus;
//! * `protonc check` must either compile it, or fail only with E0003 "not supported yet"
//!   errors naming a directive or variable of an open issue ([`OPEN_ISSUES`]); a syntax,
//!   context or value error (E0001, E0002, E0004–E0013) on a config nginx accepts is a
//!   protonc bug.
//!
//! The configs that break the rule today are listed in [`KNOWN_FAILURES`] with the reason;
//! a listed config that keeps the rule fails the test until it is taken off the list. The
//! test prints the share that compiles (`corpus: N of M configs compile`; run with
//! `--nocapture` to see it), the figure `tests/corpus/README.md` quotes.

use proton_tests::{bin, nginx_binary, TempDir};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The corpus: one directory per config, its entry point `nginx.conf`.
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/realistic");

/// Debian's files (package nginx-common) that configs include by these relative names;
/// copied from `/etc/nginx` at run time when a config mentions them, never committed.
const DEBIAN_FILES: &[&str] = &[
    "mime.types",
    "fastcgi_params",
    "fastcgi.conf",
    "snippets/fastcgi-php.conf",
    "uwsgi_params",
    "scgi_params",
    "proxy_params",
];

/// What Proton does not implement yet and an open issue will bring: a directive (a name
/// ending in `*` is a family prefix) or a `$variable`, and the issue. A "not supported
/// yet" error naming anything else breaks the rule.
const OPEN_ISSUES: &[(&str, u32)] = &[
    // Issue 20: the content cache.
    ("proxy_cache*", 20),
    ("proxy_no_cache", 20),
    ("proxy_store*", 20),
    ("fastcgi_cache*", 20),
    ("fastcgi_no_cache", 20),
    ("fastcgi_store*", 20),
    ("uwsgi_cache*", 20),
    ("uwsgi_no_cache", 20),
    ("uwsgi_store*", 20),
    ("scgi_cache*", 20),
    ("scgi_no_cache", 20),
    ("scgi_store*", 20),
    ("$upstream_cache_status", 20),
    ("$upstream_cache_last_modified", 20),
    ("$upstream_cache_etag", 20),
    // Issue 21: gRPC back ends.
    ("grpc_*", 21),
];

/// Configs that break the rule today, and why: a protonc error that is not "not supported
/// yet" on a config nginx accepts (a compiler bug), or a "not supported yet" that no open
/// issue covers. Empty this list as the compiler catches up; a config listed here that
/// keeps the rule fails the test so that the list cannot go stale.
const KNOWN_FAILURES: &[(&str, &str)] = &[(
    "peertube",
    "E0003 for `aio threads` (file I/O off the event loop), which no open issue covers",
)];

/// How protonc judged one config.
#[derive(Debug, Default)]
struct Verdict {
    /// It compiled (exit 0).
    compiles: bool,
    /// Features named by allowed "not supported yet" errors, with their issue.
    unsupported: BTreeSet<(String, u32)>,
    /// Errors that break the rule, each `file:line: code message`.
    violations: Vec<String>,
}

#[test]
fn realistic_corpus_passes_nginx_and_compiles_or_is_not_supported_yet() {
    let Some(nginx) = nginx_binary() else {
        return;
    };
    let protonc = bin("protonc");
    let configs = corpus_configs();
    assert!(
        configs.len() >= 20,
        "the corpus should hold about 20 configs, found {}",
        configs.len()
    );
    for (name, _) in KNOWN_FAILURES {
        assert!(
            configs.iter().any(|c| c == name),
            "KNOWN_FAILURES names {name:?}, which is not in {CORPUS}"
        );
    }

    let tls = TempDir::new("corpus-tls");
    let material = Material::generate(tls.path());

    let mut problems = Vec::new();
    let mut compiled = 0;
    let mut report = Vec::new();
    for name in &configs {
        let dir = TempDir::new(&format!("corpus-{name}"));
        prepare(&Path::new(CORPUS).join(name), dir.path(), &material);
        // Relative, so that diagnostics name the corpus's files as they are in the repository.
        let conf = Path::new("nginx.conf");

        if let Err(msg) = nginx_accepts(&nginx, dir.path(), conf) {
            problems.push(format!(
                "{name}: nginx -t rejects it (a defect of the corpus):\n{msg}"
            ));
            continue;
        }

        let verdict = protonc_verdict(&protonc, dir.path(), conf);
        let known = KNOWN_FAILURES.iter().find(|(n, _)| n == name);
        match (verdict.violations.is_empty(), known) {
            (true, None) => {}
            (true, Some((_, why))) => problems.push(format!(
                "{name}: keeps the rule now; take it off KNOWN_FAILURES (it was listed for: {why})"
            )),
            (false, None) => problems.push(format!(
                "{name}: nginx accepts it, but protonc fails with errors other than \
                 \"not supported yet\" of an open issue:\n  {}",
                verdict.violations.join("\n  ")
            )),
            (false, Some(_)) => {}
        }
        if verdict.compiles {
            compiled += 1;
        }
        report.push(describe(name, &verdict, known.map(|(_, why)| *why)));
    }

    println!("realistic corpus ({CORPUS}):");
    for line in &report {
        println!("  {line}");
    }
    println!("corpus: {compiled} of {} configs compile", configs.len());
    assert!(
        problems.is_empty(),
        "{} problem(s) in the realistic corpus:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// The corpus's config names (directories with an `nginx.conf`), sorted; also checks that
/// no Debian file was committed into one.
fn corpus_configs() -> Vec<String> {
    let mut names = Vec::new();
    for entry in fs::read_dir(CORPUS).unwrap_or_else(|e| panic!("reading {CORPUS}: {e}")) {
        let path = entry.expect("corpus entry").path();
        if !path.is_dir() {
            continue;
        }
        assert!(
            path.join("nginx.conf").is_file(),
            "{} has no nginx.conf",
            path.display()
        );
        for f in DEBIAN_FILES {
            assert!(
                !path.join(f).exists(),
                "{} holds {f}: Debian's files are copied from /etc/nginx at run time, not committed",
                path.display()
            );
        }
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    names
}

/// Files the test makes once and copies wherever a config names them.
struct Material {
    cert: PathBuf,
    key: PathBuf,
    dhparam: PathBuf,
}

impl Material {
    fn generate(dir: &Path) -> Material {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("certificate parameters");
        let cert = params.self_signed(&key).expect("self-signed certificate");
        let material = Material {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dhparam: dir.join("dhparam.pem"),
        };
        fs::write(&material.cert, cert.pem()).expect("cert.pem");
        fs::write(&material.key, key.serialize_pem()).expect("key.pem");
        // RFC 7919's ffdhe2048 group: instant, unlike generating new parameters.
        let out = Command::new("openssl")
            .args(["genpkey", "-genparam", "-algorithm", "DH"])
            .args(["-pkeyopt", "dh_param:ffdhe2048", "-out"])
            .arg(&material.dhparam)
            .output()
            .expect("running openssl (CI installs it)");
        assert!(
            out.status.success(),
            "openssl genpkey -genparam: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        material
    }
}

/// Copies the config in `src` into the prefix `dir`, with Debian's files it mentions, a
/// `logs/` directory, and every certificate, key, DH parameter and password file its
/// directives name that the corpus does not hold.
fn prepare(src: &Path, dir: &Path, material: &Material) {
    copy_tree(src, dir);
    fs::create_dir_all(dir.join("logs")).expect("logs dir");

    // Debian's files, until none more is mentioned (fastcgi-php.conf includes fastcgi.conf).
    let mut copied = BTreeSet::new();
    loop {
        let text = all_text(dir);
        let wanted: Vec<&str> = DEBIAN_FILES
            .iter()
            .copied()
            .filter(|f| !copied.contains(f))
            .filter(|f| text.contains(Path::new(f).file_name().unwrap().to_str().unwrap()))
            .collect();
        if wanted.is_empty() {
            break;
        }
        for f in wanted {
            let from = Path::new("/etc/nginx").join(f);
            let to = dir.join(f);
            fs::create_dir_all(to.parent().unwrap()).expect("dir for a Debian file");
            fs::copy(&from, &to).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (Debian's nginx-common ships it; CI installs it)",
                    from.display()
                )
            });
            copied.insert(f);
        }
    }

    for (directive, path) in file_arguments(dir) {
        let target = dir.join(&path);
        if target.exists() {
            continue;
        }
        fs::create_dir_all(target.parent().unwrap()).expect("dir for a generated file");
        match directive.as_str() {
            "ssl_certificate" | "ssl_trusted_certificate" | "ssl_client_certificate" => {
                fs::copy(&material.cert, &target).map(drop)
            }
            "ssl_certificate_key" => fs::copy(&material.key, &target).map(drop),
            "ssl_dhparam" => fs::copy(&material.dhparam, &target).map(drop),
            // user "admin", password "corpus" ({PLAIN} as nginx's ngx_crypt reads it)
            _ => fs::write(&target, "admin:{PLAIN}corpus\n"),
        }
        .unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copying {}: {e}", entry.path().display()));
        }
    }
}

/// The text of every file under `dir`.
fn all_text(dir: &Path) -> String {
    let mut text = String::new();
    for file in proton_tests::files_under(dir) {
        text.push_str(&fs::read_to_string(&file).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// `(directive, relative path)` for each line of the configs that names a file the test
/// must provide (paths with variables are left alone).
fn file_arguments(dir: &Path) -> BTreeSet<(String, String)> {
    const DIRECTIVES: &[&str] = &[
        "ssl_certificate",
        "ssl_certificate_key",
        "ssl_trusted_certificate",
        "ssl_client_certificate",
        "ssl_dhparam",
        "auth_basic_user_file",
    ];
    let mut found = BTreeSet::new();
    for line in all_text(dir).lines() {
        let mut words = line.split_whitespace();
        let (Some(directive), Some(arg)) = (words.next(), words.next()) else {
            continue;
        };
        if !DIRECTIVES.contains(&directive) {
            continue;
        }
        let path = arg
            .trim_end_matches(';')
            .trim_matches(|c| c == '"' || c == '\'');
        if path.contains('$') || path.starts_with('/') || path.is_empty() {
            continue;
        }
        found.insert((directive.to_string(), path.to_string()));
    }
    found
}

/// `nginx -t` on the config in its prefix; the output when it fails.
fn nginx_accepts(nginx: &Path, dir: &Path, conf: &Path) -> Result<(), String> {
    let out = Command::new(nginx)
        .arg("-t")
        .arg("-q")
        .arg("-p")
        .arg(format!("{}/", dir.display()))
        .arg("-c")
        .arg(dir.join(conf))
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", nginx.display()));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `protonc check --message-format json` on the config, judged by the rule.
fn protonc_verdict(protonc: &Path, dir: &Path, conf: &Path) -> Verdict {
    let out = Command::new(protonc)
        .args(["check", "--message-format", "json"])
        .arg(conf)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", protonc.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut verdict = Verdict {
        compiles: out.status.success(),
        ..Verdict::default()
    };
    let mut errors = 0;
    for line in stderr.lines().filter(|l| l.starts_with('{')) {
        let d: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("protonc's JSON diagnostic {line:?}: {e}"));
        if d["severity"] != "error" {
            continue;
        }
        errors += 1;
        let code = d["code"].as_str().unwrap_or("?");
        let message = d["message"].as_str().unwrap_or("?");
        let at = format!(
            "{}:{}",
            d["file"].as_str().unwrap_or("?"),
            d["line"].as_u64().unwrap_or(0)
        );
        if code != "E0003" {
            verdict.violations.push(format!("{at}: {code} {message}"));
            continue;
        }
        let feature = unsupported_feature(message);
        match open_issue(&feature) {
            Some(issue) => {
                verdict.unsupported.insert((feature, issue));
            }
            None => verdict.violations.push(format!(
                "{at}: E0003 {message} (no open issue covers {feature})"
            )),
        }
    }
    // An included snippet reports its line once per inclusion: once is enough here.
    let mut seen = BTreeSet::new();
    verdict.violations.retain(|v| seen.insert(v.clone()));
    if !verdict.compiles && errors == 0 {
        verdict.violations.push(format!(
            "protonc failed ({}) without an error diagnostic:\n{stderr}",
            out.status
        ));
    }
    if verdict.compiles && errors > 0 {
        verdict
            .violations
            .push("protonc exited 0 but reported errors".to_string());
    }
    verdict
}

/// What an E0003 message names: `"name" directive is not supported yet` gives `name`,
/// `variable $name is not supported yet` gives `$name`; any other message is its own name
/// (and matches no entry of [`OPEN_ISSUES`]).
fn unsupported_feature(message: &str) -> String {
    if let Some(rest) = message.strip_prefix('"') {
        if let Some((name, tail)) = rest.split_once('"') {
            if tail.starts_with(" directive") {
                return name.to_string();
            }
        }
    }
    if let Some(rest) = message.strip_prefix("variable ") {
        if let Some(name) = rest.split_whitespace().next() {
            return name.to_string();
        }
    }
    message.to_string()
}

/// The open issue that will bring `feature`, if any.
fn open_issue(feature: &str) -> Option<u32> {
    OPEN_ISSUES.iter().find_map(|(pattern, issue)| {
        let hit = match pattern.strip_suffix('*') {
            Some(prefix) => feature.starts_with(prefix),
            None => feature == *pattern,
        };
        hit.then_some(*issue)
    })
}

/// The printed report's lines for one config.
fn describe(name: &str, verdict: &Verdict, known: Option<&str>) -> String {
    if verdict.compiles {
        return format!("{name:<24} compiles");
    }
    let mut issues = BTreeSet::new();
    let mut features = Vec::new();
    for (feature, issue) in &verdict.unsupported {
        issues.insert(*issue);
        features.push(feature.as_str());
    }
    let issues: Vec<String> = issues.iter().map(|i| format!("#{i}")).collect();
    let mut line = if features.is_empty() {
        name.to_string()
    } else {
        format!(
            "{name:<24} not supported yet ({}): {}",
            issues.join(", "),
            features.join(", ")
        )
    };
    if !verdict.violations.is_empty() {
        let label = if known.is_some() {
            "known failure"
        } else {
            "FAILS"
        };
        line.push_str(&format!(
            "\n      {label}: {}",
            verdict.violations.join("\n        ")
        ));
    }
    line
}

#[test]
fn unsupported_messages_name_their_feature() {
    assert_eq!(
        unsupported_feature("\"proxy_cache_path\" directive is not supported yet"),
        "proxy_cache_path"
    );
    assert_eq!(
        unsupported_feature("variable $upstream_cache_status is not supported yet"),
        "$upstream_cache_status"
    );
    assert_eq!(open_issue("proxy_cache_valid"), Some(20));
    assert_eq!(open_issue("$upstream_cache_status"), Some(20));
    assert_eq!(open_issue("grpc_pass"), Some(21));
    assert_eq!(open_issue("accept_mutex"), None);
    assert_eq!(open_issue("$realpath_root"), None);
}
