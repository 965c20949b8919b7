//! `protonc generate man|completions DIR` and `protonctl generate …`: man pages and shell
//! completions written from the clap definition, so they always say what the parser accepts.
//! `packaging/install.sh` runs it at install time; nothing it writes is committed. The command
//! is looked for before clap parses anything and is not part of the clap definition, so
//! neither `--help`, the pages nor the completions mention it. (protonctl compiles this same
//! file, `#[path]`-included: the two programs share no crate on purpose.)

use clap::Command;
use clap_complete::Shell;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The shells completions are written for.
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Runs `generate man|completions DIR` when `args` (without the program name) ask for it,
/// man pages in `section`; `None` for every other command line.
pub fn run_if_asked(
    args: &[OsString],
    cmd: impl Fn() -> Command,
    section: &'static str,
) -> Option<ExitCode> {
    if args.first().is_none_or(|a| a != "generate") {
        return None;
    }
    let (what, dir) = match args {
        [_, what, dir] => (what.to_str().unwrap_or(""), Path::new(dir)),
        _ => ("", Path::new("")),
    };
    let bin = cmd().get_name().to_string();
    let written = match what {
        "man" => man_pages(cmd(), section, dir),
        "completions" => completions(cmd(), &bin, dir),
        _ => {
            eprintln!("usage: {bin} generate man|completions DIR");
            return Some(ExitCode::from(2));
        }
    };
    match written {
        Ok(paths) => {
            for p in paths {
                println!("{}", p.display());
            }
            Some(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{bin}: cannot write into {}: {e}", dir.display());
            Some(ExitCode::from(1))
        }
    }
}

/// Writes `NAME.SECTION`, and `NAME-SUB.SECTION` for every visible subcommand, into `dir`.
fn man_pages(mut cmd: Command, section: &'static str, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    cmd.build();
    let mut written = Vec::new();
    write_page(&cmd, section, dir, &mut written)?;
    Ok(written)
}

fn write_page(
    cmd: &Command,
    section: &'static str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let path = dir.join(format!("{name}.{section}"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section(section)
        .render(&mut page)?;
    std::fs::write(&path, page)?;
    written.push(path);
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_page(sub, section, dir, written)?;
    }
    Ok(())
}

/// Writes the bash (`BIN.bash`), zsh (`_BIN`) and fish (`BIN.fish`) completions into `dir`.
fn completions(mut cmd: Command, bin: &str, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    SHELLS
        .iter()
        .map(|&shell| clap_complete::generate_to(shell, &mut cmd, bin, dir))
        .collect()
}
