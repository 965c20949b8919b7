//! Validates each directive against [`crate::directives::TABLE`]: known, supported, in an
//! allowed context, right number of arguments, a block only where one belongs, simple values
//! of the right kind, and no forbidden duplicates. Every problem is reported, not just the first.

use crate::ast::Directive;
use crate::ast::MAX_BLOCK_DEPTH;
use crate::diagnostics::{did_you_mean, Code, Diagnostic, Diagnostics};
use crate::directives::{
    self, contexts_of, is_unsupported, lookup, parse_number, parse_size, parse_time_ms, Ctx, Kind,
    TABLE,
};
use crate::source::FileId;
use std::collections::{HashMap, HashSet};

/// Checks a whole configuration (the main context). Returns the tree without the
/// directives that failed, so lowering can go on and report its own findings without
/// cascading from the same mistake.
pub fn check(tree: &[Directive], diags: &mut Diagnostics) -> Vec<Directive> {
    match check_in_place(tree, diags) {
        Some(pruned) => pruned,
        None => tree.to_vec(),
    }
}

/// Like [`check`], but returns `None` (no copy) when the tree has no problem, so a valid
/// config is lowered from the tree as parsed.
pub fn check_in_place(tree: &[Directive], diags: &mut Diagnostics) -> Option<Vec<Directive>> {
    let before = diags.list.len();
    check_block(tree, Ctx::MAIN, diags, 0);
    if diags.list.len() == before {
        return None;
    }
    let bad: HashSet<(FileId, u32)> = diags.list[before..]
        .iter()
        .map(|d| (d.span.file, d.span.start))
        .collect();
    Some(prune(tree, &bad, 0))
}

/// Copies `tree`, leaving out every directive that a diagnostic points into (but keeping
/// blocks whose problem lies inside a child). `bad` holds the start of every diagnostic's span.
fn prune(tree: &[Directive], bad: &HashSet<(FileId, u32)>, depth: usize) -> Vec<Directive> {
    let hit = |d: &Directive| {
        let file = d.name_span.file;
        bad.contains(&(file, d.name_span.start))
            || d.args.iter().any(|a| bad.contains(&(file, a.span.start)))
    };
    tree.iter()
        .filter(|d| !hit(d))
        .map(|d| Directive {
            name: d.name.clone(),
            name_span: d.name_span,
            args: d.args.clone(),
            block: d.block.as_ref().map(|b| {
                if depth < MAX_BLOCK_DEPTH {
                    prune(b, bad, depth + 1)
                } else {
                    Vec::new()
                }
            }),
            span: d.span,
        })
        .collect()
}

/// The context a block directive opens inside `outer`.
fn block_ctx(name: &str, outer: Ctx) -> Option<Ctx> {
    Some(match name {
        "if" if outer == Ctx::SERVER => Ctx::IF_SERVER,
        "if" if outer == Ctx::LOCATION => Ctx::IF_LOCATION,
        "limit_except" if outer == Ctx::LOCATION => Ctx::LIMIT_EXCEPT,
        "events" => Ctx::EVENTS,
        "http" => Ctx::HTTP,
        "server" => Ctx::SERVER,
        "location" => Ctx::LOCATION,
        "upstream" => Ctx::UPSTREAM,
        "match" if outer == Ctx::HTTP => Ctx::MATCH,
        _ => return None,
    })
}

fn check_block(tree: &[Directive], ctx: Ctx, diags: &mut Diagnostics, depth: usize) {
    let mut seen: HashMap<&str, &Directive> = HashMap::new();
    for d in tree {
        let Some(spec) = lookup(&d.name, ctx) else {
            report_unknown(d, ctx, diags);
            continue;
        };
        if !spec.repeat {
            if let Some(first) = seen.get(spec.name) {
                diags.push(
                    Diagnostic::error(
                        Code::Duplicate,
                        d.name_span,
                        format!("\"{}\" directive is duplicate", d.name),
                    )
                    .label("second occurrence")
                    .also(first.name_span, "first set here")
                    .help("remove one of them; this directive may appear once per block"),
                );
            } else {
                seen.insert(spec.name, d);
            }
        }
        if !spec.arity.accepts(d.args.len()) {
            let at = d
                .args
                .get(arity_limit(spec.arity))
                .map_or(d.name_span, |a| a.span);
            diags.push(
                Diagnostic::error(
                    Code::Arity,
                    at,
                    format!("invalid number of arguments in \"{}\" directive", d.name),
                )
                .label(format!("\"{}\" takes {}", d.name, spec.arity.describe()))
                .help(syntax_help(spec)),
            );
        }
        let wants_block = matches!(spec.kind, Kind::Block) || spec.name == "types";
        match (&d.block, wants_block) {
            (Some(_), false) => diags.push(
                Diagnostic::error(
                    Code::Arity,
                    d.name_span,
                    format!("directive \"{}\" takes no block", d.name),
                )
                .label("this directive ends with \";\", not a block")
                .help(syntax_help(spec)),
            ),
            (None, true) => diags.push(
                Diagnostic::error(
                    Code::Arity,
                    d.name_span,
                    format!("directive \"{}\" has no opening \"{{\"", d.name),
                )
                .label("a block is expected here")
                .help(syntax_help(spec)),
            ),
            _ => {}
        }
        check_kind(d, spec.kind, diags);
        if let Some((_, instead)) = OBSOLETE.iter().find(|(name, _)| *name == d.name) {
            diags.push(
                Diagnostic::warning(
                    Code::NginxWarning,
                    d.name_span,
                    format!("the \"{}\" directive is obsolete, ignored", d.name),
                )
                .label("obsolete since nginx 1.25.1, which ignores it too")
                .help(match instead {
                    Some(i) => format!("use the \"{i}\" directive instead"),
                    None => "remove it (HTTP/2 server push is gone from nginx and browsers)".into(),
                }),
            );
        }
        if let (Some(children), Some(inner)) = (&d.block, block_ctx(&d.name, ctx)) {
            // The readers refuse deeper trees; this bound only keeps the walk finite.
            if depth < MAX_BLOCK_DEPTH {
                check_block(children, inner, diags, depth + 1);
            }
        }
    }
}

/// `syntax: name args;` for a help line.
fn syntax_help(spec: &directives::Spec) -> String {
    let end = if matches!(spec.kind, Kind::Block) {
        ""
    } else {
        ";"
    };
    if spec.syntax.is_empty() {
        format!("syntax: {}{end}", spec.name)
    } else {
        format!("syntax: {} {}{end}", spec.name, spec.syntax)
    }
}

fn arity_limit(a: directives::Arity) -> usize {
    match a {
        directives::Arity::Exactly(n) | directives::Arity::Range(_, n) => n as usize,
        directives::Arity::AtLeast(_) => usize::MAX,
    }
}

fn report_unknown(d: &Directive, ctx: Ctx, diags: &mut Diagnostics) {
    if let Some(allowed) = contexts_of(&d.name) {
        let here = ctx.names().first().copied().unwrap_or("main");
        diags.push(
            Diagnostic::error(
                Code::WrongContext,
                d.name_span,
                format!("\"{}\" directive is not allowed here", d.name),
            )
            .label(format!("not allowed in the {here} context"))
            .help(format!(
                "\"{}\" belongs in: {}",
                d.name,
                allowed.names().join(", ")
            )),
        );
    } else if is_unsupported(&d.name) {
        diags.push(
            Diagnostic::error(
                Code::Unsupported,
                d.name_span,
                format!("\"{}\" directive is not supported yet", d.name),
            )
            .label("an nginx directive Proton does not implement yet")
            .help(
                crate::directives::unsupported_hint(&d.name)
                    .unwrap_or("remove it, or see docs/configuration.md for what Proton supports"),
            ),
        );
    } else {
        let mut diag = Diagnostic::error(
            Code::UnknownDirective,
            d.name_span,
            format!("unknown directive \"{}\"", d.name),
        )
        .label("not an nginx or Proton directive");
        diag = diag.help(match did_you_mean(&d.name, TABLE.iter().map(|s| s.name)) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => {
                "check the spelling; docs/configuration.md lists every directive Proton supports"
                    .to_string()
            }
        });
        diags.push(diag);
    }
}

/// The help line of a bad time.
pub(crate) const TIME_HELP: &str = "times are like 30s, 500ms, 1h30m (units w d h m s ms, each once, largest first; a bare number is seconds)";

/// nginx's obsolete HTTP/2 directives (1.25.1 on): accepted and ignored with a warning
/// naming what replaced them.
const OBSOLETE: &[(&str, Option<&str>)] = &[
    ("http2_idle_timeout", Some("keepalive_timeout")),
    ("http2_recv_timeout", Some("client_header_timeout")),
    ("http2_max_requests", Some("keepalive_requests")),
    ("http2_max_field_size", Some("large_client_header_buffers")),
    ("http2_max_header_size", Some("large_client_header_buffers")),
    ("http2_max_concurrent_pushes", None),
    ("http2_push", None),
    ("http2_push_preload", None),
];

/// Numbers Proton bounds where nginx does not: (directive, largest value).
const INT_MAX: &[(&str, u32)] = &[
    // A request head is parsed into a fixed table of fields.
    ("max_headers", 1000),
];

fn check_kind(d: &Directive, kind: Kind, diags: &mut Diagnostics) {
    for (i, a) in d.args.iter().enumerate() {
        let v = a.value.as_str();
        let problem = match kind {
            Kind::Flag if v != "on" && v != "off" => {
                Some(("on or off", "write on or off".to_string()))
            }
            Kind::Size if parse_size(v).is_none() => Some((
                "a size",
                "sizes are a number with an optional k, m or g suffix, e.g. 16k".to_string(),
            )),
            Kind::Time if parse_time_ms(v).is_none() => Some(("a time", TIME_HELP.to_string())),
            Kind::Int if parse_number::<u32>(v).is_none() => {
                Some(("a non-negative number", "write a whole number".to_string()))
            }
            Kind::Int => INT_MAX
                .iter()
                .find(|(name, max)| {
                    *name == d.name && parse_number::<u32>(v).is_some_and(|n| n > *max)
                })
                .map(|(_, max)| ("no larger than Proton takes", format!("at most {max}"))),
            Kind::Keyword(words) if !words.contains(&v) => Some((
                "one of the allowed words",
                match did_you_mean(v, words.iter().copied()) {
                    Some(w) => format!("did you mean \"{w}\"?"),
                    None => format!("expected one of: {}", words.join(", ")),
                },
            )),
            _ => None,
        };
        if let Some((what, help)) = problem {
            diags.push(
                Diagnostic::error(
                    Code::BadValue,
                    a.span,
                    format!("invalid value \"{v}\" in \"{}\" directive", d.name),
                )
                .label(format!("argument {} must be {what}", i + 1))
                .help(help),
            );
        }
    }
}
