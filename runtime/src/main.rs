//! `proton-run`: loads a Proton IR file, binds its listeners, forks workers and serves.
//! Stays in the foreground (systemd, containers); `protonctl start` is what detaches it.

use proton_runtime::config::Loaded;
use proton_runtime::master::{self, Options};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: proton-run [-t] [-V] [-p PREFIX] [--pid FILE] FILE.ir
  -t          load and verify the IR, print a summary, exit
  -V          print the version (and the IR format it reads), exit
  -p PREFIX   directory that relative paths in the IR are resolved against
              (default: the directory of FILE.ir)
  --pid FILE  write the master's pid here (default: the IR's `pid`)
env: PROTON_WORKERS overrides worker_processes; PROTON_LOG_LEVEL overrides error_log's level;
     NOTIFY_SOCKET (set by systemd) receives READY=1, RELOADING=1 and STOPPING=1
(the man page, packaging/man/proton-run.8, describes each of these)";

fn main() -> ExitCode {
    let mut test_only = false;
    let mut file: Option<PathBuf> = None;
    let mut prefix = None;
    let mut pid_file = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("-t") => test_only = true,
            Some("-p") => prefix = args.next().map(PathBuf::from),
            Some("--pid") => pid_file = args.next().map(PathBuf::from),
            Some("-h") | Some("--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some("-V") | Some("--version") => {
                println!(
                    "proton-run {} (reads IR format v{})",
                    env!("CARGO_PKG_VERSION"),
                    proton_ir::FORMAT_VERSION
                );
                return ExitCode::SUCCESS;
            }
            Some(s) if s.starts_with('-') => {
                eprintln!("proton-run: unknown option {s}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ if file.is_none() => file = Some(PathBuf::from(a)),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(file) = file else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if test_only {
        return match Loaded::load(&file, prefix.as_deref()) {
            Ok(l) => {
                let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
                eprintln!(
                    "proton-run: {} verified in {:.2} ms (read+decode+verify {:.2}, {} regexes {:.2}): format v{}, source digest {}, {} listeners, {} servers, {} locations, {} upstreams",
                    file.display(),
                    ms(l.load_time + l.regex_time),
                    ms(l.load_time),
                    l.ir.regexes.len(),
                    ms(l.regex_time),
                    l.header.version,
                    &l.header.digest_hex()[..16],
                    l.ir.listeners.len(),
                    l.ir.servers.len(),
                    l.ir.locations.len(),
                    l.ir.upstreams.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("proton-run: {e}");
                ExitCode::from(1)
            }
        };
    }
    master::run(Options {
        ir_path: file,
        prefix,
        pid_file,
    })
}
