//! `protonc`: the thin command line over the compiler library.
#![forbid(unsafe_code)]

// Bin-only: `protonc generate man|completions DIR`, outside the clap definition.
mod cli_docs;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use proton_compiler::compile::{self, Matchers};
use proton_compiler::diagnostics::{render, Diagnostics, MessageFormat};
use proton_compiler::expect;
use proton_compiler::source::SourceMap;
use proton_ir::Ir;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "protonc",
    version,
    about = "Compile Proton (NGINX-style, JSON or YAML) configuration into a verified routing IR",
    override_usage = "protonc <CONFIG> [-o FILE.ir]    (the same as `protonc compile`)\n       protonc <COMMAND> [ARGS]",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Without a command: compile, as `protonc compile`.
    #[command(flatten)]
    compile: CompileArgs,
}

/// What `protonc compile` (and `protonc CONFIG`) take.
#[derive(Args)]
struct CompileArgs {
    /// The config to compile: NGINX-style text, or a .json / .yaml / .yml document
    #[arg(value_name = "CONFIG", required = true)]
    config: Option<PathBuf>,
    /// Where to write the IR (default: CONFIG with extension .ir); written to FILE.ir.tmp
    /// first, then renamed, so a running server never reads half a file
    #[arg(short, long, value_name = "FILE.ir")]
    output: Option<PathBuf>,
    /// How diagnostics are printed on stderr: rustc-style with source lines (human), one
    /// line each (short), or one JSON object per line (json)
    #[arg(long, value_enum, default_value = "human")]
    message_format: Fmt,
}

#[derive(Clone, Copy, ValueEnum)]
enum Fmt {
    Human,
    Short,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum To {
    Json,
    Yaml,
    Conf,
    /// The JSON payload of nginx's crossplane tool (`crossplane build` reads it).
    Crossplane,
}

/// What `protonc convert` reads.
#[derive(Clone, Copy, ValueEnum)]
enum From {
    /// By the file's extension: NGINX-style, or a .json / .yaml / .yml document.
    Auto,
    /// A crossplane payload (what `crossplane parse nginx.conf` prints).
    Crossplane,
}

#[derive(Clone, Copy, ValueEnum)]
enum DiffFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compile a config into an IR file (also what `protonc CONFIG` does).
    Compile(CompileArgs),
    /// Check a config and print every diagnostic; writes nothing.
    Check {
        config: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        message_format: Fmt,
        /// Also print every file the config reads, as `nginx -T` does: `# configuration
        /// file PATH:` and its text, each file once, on stdout.
        #[arg(long)]
        dump: bool,
    },
    /// Print an IR file (or a compiled config) as JSON.
    Inspect { file: PathBuf },
    /// Show which server and location a request would reach, and why.
    Route {
        /// A config or an IR file.
        file: PathBuf,
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        port: Option<u16>,
        /// Local address the request arrives on (for address-specific listen lines).
        #[arg(long)]
        addr: Option<String>,
        /// One JSON object per answer.
        #[arg(long)]
        json: bool,
        /// Read requests from FILE: `HOST URI` lines (`-` for no Host; a GET), or the request
        /// lines of a `protonc test` file (`GET http://host/path`, `H: Name: value`). Each
        /// answer is one line that starts with its request.
        #[arg(long)]
        batch: Option<PathBuf>,
        /// With --batch: also say where each location is written (`file:line`).
        #[arg(long)]
        with_lines: bool,
        /// A request header, `Name: value` (repeatable): `if`, `map`… see `$http_name` and
        /// `$cookie_name` with it.
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        method: Option<String>,
        uri: Option<String>,
    },
    /// Print every change in meaning between two configs or IR files, and the requests
    /// answered differently (exit 1 when there is any).
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// text (for a terminal), markdown (for a pull-request comment), json (for tools).
        #[arg(long, value_enum, default_value = "text")]
        format: DiffFormat,
        /// The requests to route in both (the `protonc test` or `route --batch` format);
        /// default: one per server name and location of either config.
        #[arg(long, value_name = "FILE")]
        requests: Option<PathBuf>,
    },
    /// Check a config against a file of requests and the answers expected of them (exit 1,
    /// with a report, when any answer changed; 2 when the file is malformed).
    Test {
        /// A config or an IR file.
        config: PathBuf,
        /// The expected answers: request lines (`GET http://host/path`), each followed by
        /// `server …`, `location …`, `handler …`, `status …`, `upstream …`, `uri …`,
        /// `header Name: value` lines (see docs/ci.md).
        expect: PathBuf,
        /// Write the config's answers into EXPECT instead (the keys each request already
        /// has, every key for a request that has none; comments are kept).
        #[arg(long)]
        update: bool,
        /// Also check (and write) `at file:line`, where each location is written.
        #[arg(long)]
        with_lines: bool,
    },
    /// Print an NGINX-style config in the canonical layout, comments kept (the file itself:
    /// includes are not expanded).
    Fmt {
        /// The files to format (several only with --check or --write).
        #[arg(required = true, value_name = "CONFIG")]
        configs: Vec<PathBuf>,
        /// Print nothing; exit 1 and name each file that is not in the canonical layout.
        #[arg(long, conflicts_with = "write")]
        check: bool,
        /// Rewrite each file that is not in the canonical layout, in place.
        #[arg(short, long)]
        write: bool,
    },
    /// Convert a config to another format.
    Convert {
        config: PathBuf,
        #[arg(long, value_enum)]
        to: To,
        /// What CONFIG is.
        #[arg(long, value_enum, default_value = "auto")]
        from: From,
    },
    /// Print the JSON Schema of the JSON/YAML config format.
    Schema,
    /// Print the directive reference table (Markdown) generated from the directive table.
    Directives {
        /// The short table (name, contexts, default) used in the README.
        #[arg(long)]
        short: bool,
    },
}

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if let Some(code) = cli_docs::run_if_asked(&args, Cli::command, "1") {
        return code;
    }
    // `--version` also names the IR format this protonc writes (`-V` is the short form).
    let long = format!(
        "{} (writes IR format v{})",
        env!("CARGO_PKG_VERSION"),
        proton_ir::FORMAT_VERSION
    );
    let long: &'static str = Box::leak(long.into_boxed_str());
    let matches = Cli::command().long_version(long).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

fn message_format(f: Fmt) -> MessageFormat {
    match f {
        Fmt::Json => MessageFormat::Json,
        Fmt::Short => MessageFormat::Short,
        Fmt::Human if std::io::stderr().is_terminal() => MessageFormat::Human,
        Fmt::Human => MessageFormat::Plain,
    }
}

/// Compiles a config, printing diagnostics to stderr. `None` when it has errors.
fn compile_reporting(path: &Path, fmt: MessageFormat) -> Option<(Ir, [u8; 32])> {
    compile_reporting_in(path, fmt, &mut SourceMap::new())
}

/// [`compile_reporting`], leaving the files read in `map`.
fn compile_reporting_in(
    path: &Path,
    fmt: MessageFormat,
    map: &mut SourceMap,
) -> Option<(Ir, [u8; 32])> {
    let mut diags = Diagnostics::default();
    let out = compile::compile_path(path, map, &mut diags);
    let map = &*map;
    if !diags.list.is_empty() {
        eprint!("{}", render(map, &diags, fmt));
    }
    if fmt != MessageFormat::Json && (diags.has_errors() || diags.warning_count() > 0) {
        let (e, w) = (diags.error_count(), diags.warning_count());
        if e > 0 {
            eprintln!(
                "error: could not compile {} ({e} error{}, {w} warning{})",
                path.display(),
                plural(e),
                plural(w)
            );
        } else {
            eprintln!(
                "warning: {} compiled with {w} warning{}",
                path.display(),
                plural(w)
            );
        }
    }
    if diags.has_errors() {
        return None;
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// An IR file is recognised by its magic, or by the `.ir` extension (so a damaged one is
/// reported as such instead of being parsed as a config).
fn is_ir(path: &Path, bytes: &[u8]) -> bool {
    bytes.starts_with(&proton_ir::MAGIC) || path.extension().is_some_and(|e| e == "ir")
}

/// Loads an IR file, or compiles a config, by looking at the first bytes.
fn load_any(path: &Path) -> Result<Ir, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if is_ir(path, &bytes) {
        return proton_ir::decode(&bytes)
            .map(|(_, ir)| ir)
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    compile_reporting(path, message_format(Fmt::Human))
        .map(|(ir, _)| ir)
        .ok_or_else(|| format!("{} does not compile", path.display()))
}

/// `protonc compile` and `protonc CONFIG`.
fn compile_command(args: CompileArgs) -> Result<ExitCode, String> {
    let CompileArgs {
        config,
        output,
        message_format: f,
    } = args;
    // clap requires CONFIG unless a command is given.
    let config = config.ok_or("a config to compile is needed: protonc CONFIG [-o FILE.ir]")?;
    let Some((ir, digest)) = compile_reporting(&config, message_format(f)) else {
        return Ok(ExitCode::from(1));
    };
    let out = output.unwrap_or_else(|| config.with_extension("ir"));
    let bytes = proton_ir::encode(&ir, digest);
    let tmp = out.with_extension("ir.tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &out).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!(
        "compiled {} -> {} ({} bytes, {} servers, {} locations, {} upstreams)",
        config.display(),
        out.display(),
        bytes.len(),
        ir.servers.len(),
        ir.locations.len(),
        ir.upstreams.iter().filter(|u| u.explicit).count()
    );
    // The process ends here: skip freeing every string of a large IR.
    std::mem::forget(ir);
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let Some(cmd) = cli.cmd else {
        return compile_command(cli.compile);
    };
    match cmd {
        Cmd::Compile(args) => compile_command(args),
        Cmd::Check {
            config,
            message_format: f,
            dump,
        } => {
            let mut map = SourceMap::new();
            let ok = compile_reporting_in(&config, message_format(f), &mut map).is_some();
            if ok && !matches!(f, Fmt::Json) {
                eprintln!("{}: configuration is valid", config.display());
            }
            if dump && !ok {
                eprintln!(
                    "protonc: configuration file {} test failed",
                    config.display()
                );
            }
            if dump && ok {
                // nginx -T: each file once, in the order first read.
                let mut out = String::new();
                let mut seen = Vec::new();
                for i in 0..map.len() {
                    let id = proton_compiler::source::FileId(i as u32);
                    let Some(p) = map.path(id) else { continue };
                    if seen.contains(&p) {
                        continue;
                    }
                    seen.push(p);
                    out.push_str(&format!("# configuration file {}:\n", p.display()));
                    out.push_str(map.text(id));
                    out.push('\n');
                }
                print!("{out}");
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Inspect { file } => {
            let bytes =
                std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let (header, ir) = if is_ir(&file, &bytes) {
                let (h, ir) =
                    proton_ir::decode(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
                (Some(h), ir)
            } else {
                (None, load_any(&file)?)
            };
            let v = serde_json::json!({
                "format_version": proton_ir::FORMAT_VERSION,
                "source_digest": header.map(|h| h.digest_hex()),
                "ir": ir,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Route {
            file,
            host,
            port,
            addr,
            json,
            batch,
            with_lines,
            headers,
            method,
            uri,
        } => {
            let headers = headers
                .iter()
                .map(|h| match h.split_once(':') {
                    Some((n, v)) if !n.trim().is_empty() => {
                        Ok((n.trim().to_string(), v.trim().to_string()))
                    }
                    _ => Err(format!("--header {h:?} is not `Name: value`")),
                })
                .collect::<Result<Vec<_>, String>>()?;
            let ir = load_any(&file)?;
            let m = Matchers::new(&ir);
            if let Some(b) = batch {
                let requests = read_requests(&b)?;
                return Ok(route_batch(
                    &ir,
                    &m,
                    port,
                    addr.as_deref(),
                    &headers,
                    &requests,
                    json,
                    with_lines,
                ));
            }
            let (verb, uri) =
                match (method.as_deref(), uri) {
                    (Some(m), Some(u)) => (m.to_ascii_uppercase(), u),
                    (Some(u), None) if u.starts_with('/') => ("GET".to_string(), u.to_string()),
                    _ => return Err(
                        "route needs METHOD URI (e.g. `protonc route proton.conf GET /index.html`)"
                            .into(),
                    ),
                };
            let mut out = std::io::stdout().lock();
            let req = compile::RouteRequest {
                method: &verb,
                host: host.as_deref(),
                uri: &uri,
                headers: &headers,
            };
            match compile::route(&ir, &m, port, addr.as_deref(), &req) {
                Ok(a) if json => {
                    let _ = writeln!(out, "{}", serde_json::to_string(&a).unwrap_or_default());
                }
                Ok(a) => {
                    let names = a
                        .server_names
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(" ");
                    let loc = if a.location_kind == "server" {
                        "(none: server level)".to_string()
                    } else {
                        format!("{} {}", a.location_kind, a.location)
                    };
                    let _ = writeln!(out, "server   #{} {names} ({})", a.server, a.server_match);
                    for step in &a.steps {
                        let _ = writeln!(out, "uri      {step}");
                    }
                    let _ = writeln!(
                        out,
                        "location {loc} at {}\nreason   {}\nhandler  {}",
                        a.source, a.reason, a.handler
                    );
                    for (n, v) in &a.headers {
                        let _ = writeln!(out, "header   {n}: {v}");
                    }
                }
                Err(e) if json => {
                    let _ = writeln!(out, "{}", serde_json::json!({ "error": e }));
                    return Ok(ExitCode::from(1));
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Diff {
            a,
            b,
            format,
            requests,
        } => {
            let (ia, ib) = (load_any(&a)?, load_any(&b)?);
            let corpus = match requests {
                Some(f) => Some(read_requests(&f)?.into_iter().map(|(_, r)| r).collect()),
                None => None,
            };
            let d = proton_compiler::diff::diff(&ia, &ib, corpus);
            let format = match format {
                DiffFormat::Text => proton_compiler::diff::Format::Text,
                DiffFormat::Markdown => proton_compiler::diff::Format::Markdown,
                DiffFormat::Json => proton_compiler::diff::Format::Json,
            };
            print!("{}", proton_compiler::diff::render(&d, format));
            Ok(if d.different {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Test {
            config,
            expect,
            update,
            with_lines,
        } => test_command(&config, &expect, update, with_lines),
        Cmd::Convert { config, to, from } => {
            let mut map = SourceMap::new();
            let mut diags = Diagnostics::default();
            let tree = match from {
                From::Auto => compile::load_tree(&config, &mut map, &mut diags),
                From::Crossplane => {
                    let text = std::fs::read_to_string(&config)
                        .map_err(|e| format!("cannot read {}: {e}", config.display()))?;
                    let file = map.add(config.clone(), text);
                    let text = map.text(file).to_string();
                    Some(proton_compiler::frontend::from_crossplane(
                        file, &text, &mut diags,
                    ))
                }
            };
            if diags.has_errors() || tree.is_none() {
                eprint!("{}", render(&map, &diags, message_format(Fmt::Human)));
                return Ok(ExitCode::from(1));
            }
            let tree = tree.unwrap_or_default();
            if let To::Crossplane = to {
                let v = proton_compiler::frontend::to_crossplane(
                    &tree,
                    &map,
                    &config.display().to_string(),
                );
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
                );
                return Ok(ExitCode::SUCCESS);
            }
            if !matches!(to, To::Conf) {
                if let Some((d, why)) = proton_compiler::frontend::without_document_form(&tree) {
                    eprintln!(
                        "error: \"{}\" at {} has no JSON/YAML form: {why}\n  = help: write it as nginx does, in a server or location: if ($variable = value) {{ … }}",
                        d.name,
                        map.describe(d.name_span)
                    );
                    return Ok(ExitCode::from(1));
                }
            }
            let text = convert(&tree, to);
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Fmt {
            configs,
            check,
            write,
        } => fmt_command(&configs, check, write),
        Cmd::Directives { short } => {
            print!("{}", proton_compiler::directives::markdown_table(!short));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Schema => {
            print!("{}", schema_text());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `protonc fmt`: exit 0 when done (or, with --check, when every file is canonical), 1 when
/// --check finds a file that is not, 2 when a file cannot be read or does not parse.
fn fmt_command(configs: &[PathBuf], check: bool, write: bool) -> Result<ExitCode, String> {
    use proton_compiler::frontend::{format_conf, format_of};
    if configs.len() > 1 && !check && !write {
        return Err(
            "protonc fmt prints one file; give --check or --write to format several".into(),
        );
    }
    let mut unformatted = false;
    for path in configs {
        if format_of(path).is_some() {
            return Err(format!(
                "{}: protonc fmt lays out NGINX-style configs; a JSON or YAML document is written canonically by `protonc convert --to json|yaml`",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut map = SourceMap::new();
        let file = map.add(path.clone(), text);
        let mut diags = Diagnostics::default();
        let Some(out) = format_conf(file, map.text(file), &mut diags) else {
            eprint!("{}", render(&map, &diags, message_format(Fmt::Human)));
            return Err(format!(
                "cannot format {}: it does not parse",
                path.display()
            ));
        };
        let same = out == map.text(file);
        if check {
            if !same {
                eprintln!(
                    "{}: not in the canonical layout (protonc fmt --write rewrites it)",
                    path.display()
                );
                unformatted = true;
            }
        } else if write {
            if !same {
                write_in_place(path, &out)?;
                eprintln!("formatted {}", path.display());
            }
        } else {
            print!("{out}");
        }
    }
    Ok(if unformatted {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Replaces `path`'s contents through a temporary file and a rename (keeping its
/// permissions), so that nothing ever reads half a file.
fn write_in_place(path: &Path, text: &str) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".fmt.tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Reads a request list (`route --batch`, `diff --requests`); its errors name file:line.
fn read_requests(path: &Path) -> Result<Vec<(String, expect::Request)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    expect::parse_requests(&text).map_err(|errs| format_errors(path, &errs))
}

/// `file:line: message` for each error, one per line (the first after main's `error: `).
fn format_errors(path: &Path, errs: &[expect::FormatError]) -> String {
    errs.iter()
        .map(|e| format!("{}:{}: {}", path.display(), e.line, e.message))
        .collect::<Vec<_>>()
        .join("\nerror: ")
}

/// `protonc route --batch`: one line (or JSON object) per request, starting with the request
/// as written; `file:line` only `with_lines`.
#[allow(clippy::too_many_arguments)]
fn route_batch(
    ir: &Ir,
    m: &Matchers,
    port: Option<u16>,
    addr: Option<&str>,
    headers: &[(String, String)],
    requests: &[(String, expect::Request)],
    json: bool,
    with_lines: bool,
) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for (line, r) in requests {
        let mut all = headers.to_vec();
        all.extend(r.headers.iter().cloned());
        let req = compile::RouteRequest {
            method: &r.method,
            host: r.host.as_deref(),
            uri: &r.target,
            headers: &all,
        };
        let answer = compile::route(ir, m, r.port.or(port), addr, &req);
        let text = match (&answer, json) {
            (Ok(a), true) => {
                let mut v = serde_json::to_value(a).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    if !with_lines {
                        // Positions and ids move with the lines: only on request.
                        o.remove("source");
                        o.remove("server");
                        o.insert("reason".into(), stable_reason(&a.reason).into());
                        o.insert("server_match".into(), stable_reason(&a.server_match).into());
                    }
                    o.insert("request".into(), serde_json::Value::String(line.clone()));
                }
                v.to_string()
            }
            (Ok(a), false) => {
                let (reason, server_match) = if with_lines {
                    (a.reason.clone(), a.server_match.clone())
                } else {
                    (stable_reason(&a.reason), stable_reason(&a.server_match))
                };
                let mut s = format!(
                    "{line} => server {} ({server_match})",
                    expect::server_text(ir, a.server),
                );
                let loc = ir
                    .locations
                    .get(a.matched.0 as usize)
                    .map_or_else(|| "(none)".to_string(), |l| expect::location_text(ir, l));
                s.push_str(&format!(", location {loc}"));
                if with_lines {
                    s.push_str(&format!(" at {}", a.source));
                }
                s.push_str(&format!(" ({reason}), handler {}", a.handler));
                if let Some(u) = &a.rewritten {
                    s.push_str(&format!(", uri {u}"));
                }
                s
            }
            (Err(e), true) => {
                failed = true;
                serde_json::json!({ "request": line, "error": e }).to_string()
            }
            (Err(e), false) => {
                failed = true;
                format!("{line} => error: {e}")
            }
        };
        let _ = writeln!(out, "{text}");
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// A match reason without the regex's number (`regex #3` → `regex`): numbers change when
/// regexes elsewhere in the config are added or moved.
fn stable_reason(r: &str) -> String {
    match r.split_once('#') {
        Some((kind, _)) if kind.trim_end() == "regex" => "regex".to_string(),
        _ => r.to_string(),
    }
}

/// `protonc test CONFIG EXPECT [--update] [--with-lines]`.
fn test_command(
    config: &Path,
    expect_path: &Path,
    update: bool,
    with_lines: bool,
) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(expect_path)
        .map_err(|e| format!("cannot read {}: {e}", expect_path.display()))?;
    let file = expect::parse(&text).map_err(|errs| format_errors(expect_path, &errs))?;
    let ir = load_any(config)?;
    let m = Matchers::new(&ir);
    let answers: Vec<expect::Answer> = file
        .cases
        .iter()
        .map(|c| expect::answer(&ir, &m, &c.request, with_lines))
        .collect();
    if update {
        let new = expect::update(&file, &answers, with_lines);
        let mut tmp = expect_path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, &new).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, expect_path)
            .map_err(|e| format!("cannot write {}: {e}", expect_path.display()))?;
        eprintln!(
            "wrote the answers to {} request{} into {}",
            file.cases.len(),
            plural(file.cases.len()),
            expect_path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let results: Vec<(&expect::Case, expect::Outcome)> = file
        .cases
        .iter()
        .zip(&answers)
        .map(|(c, a)| (c, expect::check(c, a, with_lines)))
        .collect();
    print!(
        "{}",
        expect::report(&expect_path.display().to_string(), &results)
    );
    Ok(if results.iter().all(|(_, o)| o.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn convert(tree: &[proton_compiler::ast::Directive], to: To) -> String {
    use proton_compiler::frontend;
    match to {
        To::Json => frontend::to_json_string(tree),
        To::Yaml => frontend::to_yaml_string(tree),
        To::Conf => frontend::to_conf_string(tree),
        // Written by the caller, which has the source map.
        To::Crossplane => String::new(),
    }
}

fn schema_text() -> String {
    proton_compiler::frontend::schema_string()
}
