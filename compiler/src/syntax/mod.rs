//! The NGINX-style front end: pest grammar → spanned [`Directive`] tree, then `include`
//! expansion. Syntax errors are recovered from (the failing statement is blanked and the
//! file parsed again) so one run reports every syntax error of a file.

use crate::ast::{Arg, Directive, Quote};
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, SourceMap, Span};
use pest::iterators::Pair;
use pest::Parser;
use std::path::{Path, PathBuf};

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/proton.pest"]
struct ConfParser;

/// How many syntax errors of one file are reported before giving up.
const MAX_SYNTAX_ERRORS: usize = 20;
/// Deepest include nesting accepted.
const MAX_INCLUDE_DEPTH: usize = 32;

/// Parses one file's text. Syntax errors go to `diags`; what parsed is returned.
pub fn parse_text(file: FileId, text: &str, diags: &mut Diagnostics) -> Vec<Directive> {
    let mut work = text.to_string();
    for _ in 0..MAX_SYNTAX_ERRORS {
        match ConfParser::parse(Rule::file, &work) {
            Ok(mut pairs) => {
                let Some(file_pair) = pairs.next() else {
                    return Vec::new();
                };
                return file_pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::directive)
                    .map(|p| directive(file, p))
                    .collect();
            }
            Err(e) => {
                let pos = match e.location {
                    pest::error::InputLocation::Pos(p) => p,
                    pest::error::InputLocation::Span((s, _)) => s,
                };
                let pos = pos.min(work.len());
                diags.push(syntax_error(file, &work, pos, &e));
                if !blank_statement(&mut work, pos) {
                    return Vec::new();
                }
            }
        }
    }
    Vec::new()
}

fn syntax_error(file: FileId, text: &str, pos: usize, e: &pest::error::Error<Rule>) -> Diagnostic {
    let rest = &text[pos..];
    let end = pos + rest.chars().next().map_or(0, char::len_utf8);
    let span = Span::new(file, pos..end);
    if rest.is_empty() {
        let open = text.matches('{').count();
        let close = text.matches('}').count();
        if open > close {
            return Diagnostic::error(
                Code::Syntax,
                span,
                "unexpected end of file, expecting \"}\"",
            )
            .label("the file ends here")
            .help("a block opened with \"{\" is not closed; add the missing \"}\"");
        }
        return Diagnostic::error(
            Code::Syntax,
            span,
            "unexpected end of file, expecting \";\" or \"}\"",
        )
        .label("the file ends here")
        .help("end the last directive with \";\"");
    }
    let c = rest.chars().next().unwrap_or(' ');
    let (msg, help) = match c {
        '}' => (
            "unexpected \"}\"".to_string(),
            "a directive before it lacks its \";\", or there is one \"}\" too many".to_string(),
        ),
        ';' => (
            "unexpected \";\"".to_string(),
            "a directive needs a name before its arguments".to_string(),
        ),
        '{' => (
            "unexpected \"{\"".to_string(),
            "a block needs a directive name before it; quote regexes that contain braces"
                .to_string(),
        ),
        '"' | '\'' => (
            format!("unexpected {c}"),
            "a quoted string must be closed and followed by a space, \";\" or \"{\"".to_string(),
        ),
        _ => {
            let prev = text[..pos].trim_end();
            if prev.ends_with('"') || prev.ends_with('\'') {
                (
                    "unexpected character after a quoted string".to_string(),
                    "put a space between a quoted string and what follows".to_string(),
                )
            } else {
                (
                    format!("unexpected {:?}", c),
                    format!("expected {}", expected_of(e)),
                )
            }
        }
    };
    Diagnostic::error(Code::Syntax, span, msg)
        .label("here")
        .help(help)
}

fn expected_of(e: &pest::error::Error<Rule>) -> String {
    match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } if !positives.is_empty() => {
            positives
                .iter()
                .map(|r| match r {
                    Rule::semicolon => "\";\"",
                    Rule::block | Rule::open => "\"{\"",
                    Rule::close => "\"}\"",
                    Rule::directive | Rule::name => "a directive",
                    Rule::dq_string | Rule::sq_string | Rule::word => "an argument",
                    _ => "a directive",
                })
                .collect::<Vec<_>>()
                .join(" or ")
        }
        _ => "a directive".to_string(),
    }
}

/// Blanks the statement around `pos` (keeping byte offsets and newlines) so parsing can go on.
/// Returns false when nothing could be blanked.
fn blank_statement(text: &mut String, pos: usize) -> bool {
    let bytes = text.as_bytes();
    if pos >= bytes.len() {
        // Unclosed block at EOF: close it so the rest can be checked.
        if text.matches('{').count() > text.matches('}').count() {
            text.push('}');
            return true;
        }
        return false;
    }
    // From the start of the statement (after the previous ; { or }) …
    let start = bytes[..pos]
        .iter()
        .rposition(|&b| b == b';' || b == b'{' || b == b'}')
        .map_or(0, |i| i + 1);
    // … to the next ; or } (inclusive of ;, exclusive of } when the error is elsewhere).
    let mut end = pos;
    while end < bytes.len() && bytes[end] != b';' && bytes[end] != b'}' && bytes[end] != b'\n' {
        end += 1;
    }
    if end < bytes.len() && (bytes[end] == b';' || (end == pos && bytes[end] == b'}')) {
        end += 1;
    }
    if end <= start {
        return false;
    }
    // Keep byte offsets: replace multi-byte chars by as many spaces as bytes.
    let blanked: String = text[start..end]
        .chars()
        .flat_map(|c| {
            let n = c.len_utf8();
            std::iter::repeat_n(
                if c == '\n' { '\n' } else { ' ' },
                if c == '\n' { 1 } else { n },
            )
        })
        .collect::<String>();
    text.replace_range(start..end, &blanked);
    true
}

fn directive(file: FileId, pair: Pair<'_, Rule>) -> Directive {
    let span = pair.as_span();
    let mut d = Directive {
        name: String::new(),
        name_span: Span::new(file, span.start()..span.start()),
        args: Vec::new(),
        block: None,
        span: Span::new(file, span.start()..span.end()),
    };
    for p in pair.into_inner() {
        let ps = p.as_span();
        let sp = Span::new(file, ps.start()..ps.end());
        match p.as_rule() {
            Rule::name => {
                d.name = unescape(p.as_str());
                d.name_span = sp;
            }
            Rule::word => d.args.push(Arg {
                value: unescape(p.as_str()),
                quote: Quote::Bare,
                span: sp,
            }),
            Rule::dq_string | Rule::sq_string => {
                let quote = if p.as_rule() == Rule::dq_string {
                    Quote::Double
                } else {
                    Quote::Single
                };
                let inner = p.into_inner().next().map_or("", |i| i.as_str());
                d.args.push(Arg {
                    value: unescape(inner),
                    quote,
                    span: sp,
                });
            }
            Rule::block => {
                d.block = Some(
                    p.into_inner()
                        .filter(|c| c.as_rule() == Rule::directive)
                        .map(|c| directive(file, c))
                        .collect(),
                );
            }
            _ => {}
        }
    }
    d
}

/// nginx's unescaping: `\"`, `\'`, `\\` lose the backslash; `\t`, `\r`, `\n` become control
/// characters; any other `\x` is kept as written (so regexes keep `\d`, `\.`).
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('"') | Some('\'') | Some('\\') => {
                out.push(chars.next().unwrap_or('\\'));
            }
            Some('t') => {
                chars.next();
                out.push('\t');
            }
            Some('r') => {
                chars.next();
                out.push('\r');
            }
            Some('n') => {
                chars.next();
                out.push('\n');
            }
            _ => out.push('\\'),
        }
    }
    out
}

/// Reads a file, parses it and expands every `include` (globs relative to the including
/// file; a cycle is an error).
pub fn load(path: &Path, map: &mut SourceMap, diags: &mut Diagnostics) -> Option<Vec<Directive>> {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return None;
        }
    };
    let file = map.add(path.to_path_buf(), text);
    let tree = parse_text(file, map.text(file).to_string().as_str(), diags);
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut stack = vec![canon];
    Some(expand(tree, path, map, diags, &mut stack))
}

fn expand(
    tree: Vec<Directive>,
    path: &Path,
    map: &mut SourceMap,
    diags: &mut Diagnostics,
    stack: &mut Vec<PathBuf>,
) -> Vec<Directive> {
    let mut out = Vec::with_capacity(tree.len());
    for mut d in tree {
        if d.name != "include" || d.block.is_some() {
            if let Some(block) = d.block.take() {
                d.block = Some(expand(block, path, map, diags, stack));
            }
            out.push(d);
            continue;
        }
        if d.args.len() != 1 {
            diags.push(
                Diagnostic::error(
                    Code::Arity,
                    d.name_span,
                    "invalid number of arguments in \"include\" directive",
                )
                .label("expects exactly one file name or glob")
                .help("write `include FILE;` (globs such as conf.d/*.conf are allowed)"),
            );
            continue;
        }
        let arg = &d.args[0];
        let base = path.parent().unwrap_or(Path::new("."));
        let pattern = if Path::new(&arg.value).is_absolute() {
            PathBuf::from(&arg.value)
        } else {
            base.join(&arg.value)
        };
        let pattern_s = pattern.display().to_string();
        let is_glob = arg.value.contains(['*', '?', '[']);
        let mut files: Vec<PathBuf> = match glob::glob(&pattern_s) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(e) => {
                diags.push(
                    Diagnostic::error(
                        Code::Include,
                        arg.span,
                        format!("invalid include pattern: {e}"),
                    )
                    .label("this pattern"),
                );
                continue;
            }
        };
        files.sort();
        if files.is_empty() && !is_glob {
            diags.push(
                Diagnostic::error(
                    Code::Include,
                    arg.span,
                    format!("included file \"{}\" does not exist", pattern_s),
                )
                .label("no such file")
                .help("paths in include are relative to the including file"),
            );
            continue;
        }
        for f in files {
            let canon = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
            if stack.contains(&canon) {
                diags.push(
                    Diagnostic::error(
                        Code::Include,
                        arg.span,
                        format!("include cycle: \"{}\" includes itself", f.display()),
                    )
                    .label("this include leads back to a file being read")
                    .help("remove one of the includes that form the cycle"),
                );
                continue;
            }
            if stack.len() >= MAX_INCLUDE_DEPTH {
                diags.push(
                    Diagnostic::error(Code::Include, arg.span, "includes nested too deeply")
                        .label("here"),
                );
                continue;
            }
            let text = match std::fs::read(&f) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    diags.push(
                        Diagnostic::error(
                            Code::Include,
                            arg.span,
                            format!("cannot read \"{}\": {e}", f.display()),
                        )
                        .label("included here"),
                    );
                    continue;
                }
            };
            let id = map.add(f.clone(), text);
            let src = map.text(id).to_string();
            let sub = parse_text(id, &src, diags);
            stack.push(canon);
            out.extend(expand(sub, &f, map, diags, stack));
            stack.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> (Vec<Directive>, Diagnostics) {
        let mut d = Diagnostics::default();
        let t = parse_text(FileId(0), s, &mut d);
        (t, d)
    }

    fn shape(ds: &[Directive]) -> String {
        ds.iter()
            .map(|d| {
                let args: Vec<String> = d.args.iter().map(|a| format!("<{}>", a.value)).collect();
                match &d.block {
                    Some(b) => format!("{} {} {{{}}}", d.name, args.join(" "), shape(b)),
                    None => format!("{} {};", d.name, args.join(" ")),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn lexical_rules() {
        let cases = [
            ("a b c;", "a <b> <c>;"),
            ("a 'x y' \"z\\\"q\";", "a <x y> <z\"q>;"),
            ("a \"t\\tn\\n\";", "a <t\tn\n>;"),
            ("a ${host}x $uri;", "a <${host}x> <$uri>;"),
            (
                "location ~ ^/a\\d{2,3}$ { x; }",
                "location <~> <^/a\\d{2,3}$> {x ;}",
            ),
            (
                "location ~ \"^/(a|b){2}$\" { }",
                "location <~> <^/(a|b){2}$> {}",
            ),
            ("a b#c; # comment\r\nd;", "a <b#c>; d ;"),
            ("s { l { x 1; } }", "s  {l  {x <1>;}}"),
            ("überall ü;", "überall <ü>;"),
            ("a \\;b;", "a <\\;b>;"),
        ];
        for (src, want) in cases {
            let (t, d) = parse(src);
            assert!(!d.has_errors(), "{src}: {:?}", d.list);
            assert_eq!(shape(&t), want, "{src}");
        }
    }

    #[test]
    fn spans_point_at_args() {
        let (t, _) = parse("server {\n  listen 80;\n}");
        let l = &t[0].children()[0];
        assert_eq!(l.name_span.range(), 11..17);
        assert_eq!(l.args[0].span.range(), 18..20);
    }

    #[test]
    fn every_syntax_error_reported() {
        let (_, d) = parse("a 1;\nb \"x\"y;\nc 2\n}\nd;\ne {\n");
        assert!(d.error_count() >= 3, "{:#?}", d.list);
    }

    #[test]
    fn no_panic_on_junk() {
        for s in [
            "", "{", "}", ";", "\"", "'", "a", "a {", "a \"b", "${", "\\", "#", "a}b;", "\u{0}",
        ] {
            let _ = parse(s);
        }
    }
}
