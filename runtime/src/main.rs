//! `proton-run`: maps a Proton IR file, verifies it and (from the proton-run issue on)
//! serves it. This first version loads and verifies only: it never parses source config
//! and does not link the compiler, pest or codespan.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn usage() -> ExitCode {
    eprintln!(
        "usage: proton-run [-t] FILE.ir\n  -t   load and verify the IR, print a summary, exit"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut test_only = false;
    let mut file: Option<PathBuf> = None;
    for a in std::env::args_os().skip(1) {
        match a.to_str() {
            Some("-t") => test_only = true,
            Some("-h") | Some("--help") => return usage(),
            _ if file.is_none() => file = Some(PathBuf::from(a)),
            _ => return usage(),
        }
    }
    let Some(file) = file else {
        return usage();
    };
    let started = Instant::now();
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("proton-run: cannot read {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let read_done = Instant::now();
    let (header, ir) = match proton_ir::decode(&bytes) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("proton-run: {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let decoded = Instant::now();
    for (i, r) in ir.regexes.iter().enumerate() {
        if let Err(e) = regex::bytes::RegexBuilder::new(&r.pattern)
            .case_insensitive(r.case_insensitive)
            .build()
        {
            eprintln!(
                "proton-run: {}: regex #{i} does not compile: {e}",
                file.display()
            );
            return ExitCode::from(1);
        }
    }
    let elapsed = started.elapsed();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "proton-run: {} verified in {:.2} ms (read {:.2}, decode+verify {:.2}, {} regexes {:.2}): format v{}, source digest {}, {} listeners, {} servers, {} locations, {} upstreams",
        file.display(),
        ms(elapsed),
        ms(read_done - started),
        ms(decoded - read_done),
        ir.regexes.len(),
        ms(decoded.elapsed()),
        header.version,
        &header.digest_hex()[..16],
        ir.listeners.len(),
        ir.servers.len(),
        ir.locations.len(),
        ir.upstreams.len()
    );
    if test_only {
        return ExitCode::SUCCESS;
    }
    eprintln!("proton-run: serving is not implemented in this build yet; use -t to verify only");
    ExitCode::from(1)
}
