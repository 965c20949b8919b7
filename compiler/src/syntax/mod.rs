//! The NGINX-style front end: text → spanned [`Directive`] tree ([`reader`]), then `include`
//! expansion. Syntax errors are recovered from (the failing statement is blanked and the
//! file read again) so one run reports every syntax error of a file.

use crate::ast::{Arg, Directive, Quote, MAX_BLOCK_DEPTH};
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, SourceMap, Span};
pub mod reader;

use reader::{Expected, Failure};
use std::path::{Path, PathBuf};

/// How many syntax errors of one file are reported before giving up.
const MAX_SYNTAX_ERRORS: usize = 20;
/// Deepest include nesting accepted.
const MAX_INCLUDE_DEPTH: usize = 32;

/// Parses one file's text. Syntax errors go to `diags`; what parsed is returned.
pub fn parse_text(file: FileId, text: &str, diags: &mut Diagnostics) -> Vec<Directive> {
    match reader::parse(file, text) {
        Ok(tree) => split_missing_semicolons(tree, text, diags),
        Err(_) => recover(file, text, diags),
    }
}

/// Reads a text that has syntax errors: reports the first, blanks the statement it is in
/// (offsets and line breaks kept) and reads again, up to [`MAX_SYNTAX_ERRORS`] times; what
/// finally reads is returned.
///
/// Text nested deeper than [`MAX_BLOCK_DEPTH`] is refused as a whole, with one error at the
/// first `{` too deep, whatever other errors it has.
fn recover(file: FileId, text: &str, diags: &mut Diagnostics) -> Vec<Directive> {
    if let Some(open) = scan_braces(text).too_deep {
        diags.push(too_deep(Span::new(file, open..open + 1)));
        return Vec::new();
    }
    let mut work = text.to_string();
    for _ in 0..MAX_SYNTAX_ERRORS {
        match reader::parse(file, &work) {
            Ok(mut tree) => {
                if work.len() > text.len() {
                    clamp_spans(&mut tree, text.len(), 0);
                }
                return split_missing_semicolons(tree, text, diags);
            }
            Err(Failure {
                pos,
                expected: Expected::Shallower,
            }) => {
                diags.push(too_deep(Span::new(file, pos..pos + 1)));
                return Vec::new();
            }
            // Past the end of the text, in the `}`s that closed its blocks: the end of the
            // file has been reported already.
            Err(Failure { pos, .. }) if pos > text.len() => return Vec::new(),
            Err(Failure { pos, expected }) => {
                diags.push(syntax_error(file, &work, pos, expected));
                if !blank_statement(&mut work, pos) {
                    return Vec::new();
                }
            }
        }
    }
    Vec::new()
}

/// Ends the spans of `tree` (whose directives are at nesting level `depth`) at `len` at the
/// latest: the blocks that recovery closed end past the text.
fn clamp_spans(tree: &mut [Directive], len: usize, depth: usize) {
    for d in tree {
        d.span.end = d.span.end.min(len as u32);
        if let Some(block) = &mut d.block {
            if depth < MAX_BLOCK_DEPTH {
                clamp_spans(block, len, depth + 1);
            }
        }
    }
}

/// The error for a `{` nested deeper than [`MAX_BLOCK_DEPTH`] levels.
pub(crate) fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::Syntax,
        span,
        format!("blocks nested too deeply (more than {MAX_BLOCK_DEPTH} levels)"),
    )
    .label("this block is too deep")
    .help("flatten the configuration; nginx configs rarely nest more than a few levels")
}

fn syntax_error(file: FileId, text: &str, pos: usize, expected: Expected) -> Diagnostic {
    let rest = &text[pos..];
    let end = pos + rest.chars().next().map_or(0, char::len_utf8);
    let span = Span::new(file, pos..end);
    let braces = scan_braces(text);
    if rest.trim().is_empty() {
        if let Some(open) = braces.suspect_unclosed(text) {
            return Diagnostic::error(
                Code::Syntax,
                Span::new(file, open..open + 1),
                "unclosed block: this \"{\" has no matching \"}\"",
            )
            .label("this block is not closed")
            .also(span, "the file ends here")
            .help("add the missing \"}\" where the block should end");
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
    if (c == '"' || c == '\'') && braces.unterminated_quote == Some(pos) {
        return Diagnostic::error(Code::Syntax, span, "unterminated quoted string")
            .label("this quote is never closed")
            .help(format!("add the closing {c}"));
    }
    let (msg, help) = match c {
        '}' if braces.stray_closes.contains(&pos) => (
            "unexpected \"}\": there is no block to close".to_string(),
            "remove this \"}\", or add the \"{\" it was meant to close".to_string(),
        ),
        '}' => (
            "unexpected \"}\": the directive before it is not terminated by \";\"".to_string(),
            "end the directive before this \"}\" with \";\"".to_string(),
        ),
        ';' => (
            "unexpected \";\"".to_string(),
            "a directive needs a name before its arguments".to_string(),
        ),
        '{' => (
            "unexpected \"{\": a block needs a directive name".to_string(),
            "write the directive name before the block (e.g. `server {`); quote regexes that contain braces".to_string(),
        ),
        '"' | '\'' => (
            format!("unexpected {c}"),
            "a quoted string must be followed by a space, \";\" or \"{\"".to_string(),
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
                    format!("expected {}", expected.describe()),
                )
            }
        }
    };
    Diagnostic::error(Code::Syntax, span, msg)
        .label("here")
        .help(help)
}

/// Brace structure of a config text, found by a lexer that knows nginx's quoting, escapes,
/// comments, `${var}` and regex quantifiers; used to explain and recover from syntax errors.
#[derive(Default)]
struct Braces {
    /// `(open, close)` byte offsets of every `{`; `close` is `None` when never closed.
    pairs: Vec<(usize, Option<usize>)>,
    /// `}` with no block to close.
    stray_closes: Vec<usize>,
    /// Offset of a quote that is never closed.
    unterminated_quote: Option<usize>,
    /// The first `{` nested deeper than [`MAX_BLOCK_DEPTH`] levels.
    too_deep: Option<usize>,
}

impl Braces {
    /// The `{` most likely missing its `}`: the innermost block whose closing brace is
    /// indented differently from its opening line (the brace that closed it belonged to an
    /// outer block), else the innermost block left open at the end.
    fn suspect_unclosed(&self, text: &str) -> Option<usize> {
        if self.pairs.iter().all(|(_, c)| c.is_some()) {
            return None;
        }
        let indent = |at: usize| {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            text[line_start..]
                .chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .count()
        };
        self.pairs
            .iter()
            .rev()
            .find(|(o, c)| c.is_some_and(|c| indent(c) != indent(*o)))
            .map(|(o, _)| *o)
            .or_else(|| {
                self.pairs
                    .iter()
                    .rev()
                    .find(|(_, c)| c.is_none())
                    .map(|(o, _)| *o)
            })
    }

    fn close_of(&self, open: usize) -> Option<usize> {
        self.pairs
            .iter()
            .find(|(o, _)| *o == open)
            .and_then(|(_, c)| *c)
    }
}

/// Scans `text` with the reader's lexical rules (quotes and comments only where a token
/// starts, `\\` escapes, `${var}`, `{n,m}` quantifiers inside words) and records its blocks.
fn scan_braces(text: &str) -> Braces {
    let b = text.as_bytes();
    let mut out = Braces::default();
    let mut stack: Vec<usize> = Vec::new();
    let mut i = 0;
    let mut token_start = true;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' => {
                i += 2;
                token_start = false;
                continue;
            }
            // U+FEFF is whitespace to the reader.
            0xEF if b[i..].starts_with("\u{FEFF}".as_bytes()) => {
                i += 3;
                token_start = true;
                continue;
            }
            b'"' | b'\'' if token_start => {
                let q = c;
                let mut j = i + 1;
                while j < b.len() && b[j] != q {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                if j >= b.len() {
                    out.unterminated_quote = Some(i);
                    break;
                }
                i = j + 1;
                token_start = false;
                continue;
            }
            b'#' if token_start => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            // `${name}` stays in the word; a `$` whose `{` is not closed before `;`, a space
            // or a line end is a plain character, and that `{` opens a block.
            b'$' if b.get(i + 1) == Some(&b'{') => {
                let close = b[i + 2..]
                    .iter()
                    .position(|&c| matches!(c, b'}' | b';' | b' ' | b'\n'))
                    .map(|p| i + 2 + p);
                match close {
                    Some(j) if b[j] == b'}' => i = j + 1,
                    _ => i += 1,
                }
                token_start = false;
                continue;
            }
            b'{' if !token_start && is_quantifier(&b[i..]) => {
                while i < b.len() && b[i] != b'}' {
                    i += 1;
                }
                i += 1;
                continue;
            }
            b'{' => {
                if stack.len() >= MAX_BLOCK_DEPTH && out.too_deep.is_none() {
                    out.too_deep = Some(i);
                }
                out.pairs.push((i, None));
                stack.push(out.pairs.len() - 1);
                token_start = true;
            }
            b'}' if token_start => {
                match stack.pop() {
                    Some(k) => out.pairs[k].1 = Some(i),
                    None => out.stray_closes.push(i),
                }
                token_start = true;
            }
            b' ' | b'\t'..=b'\r' | b';' => token_start = true,
            _ => token_start = false,
        }
        i += 1;
    }
    out
}

/// `{n}`, `{n,}` or `{n,m}` at the start of `b` (a quantifier inside a word, see [`reader`]).
fn is_quantifier(b: &[u8]) -> bool {
    let digits = |from: usize| {
        b[from.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let n = digits(1);
    if n == 0 {
        return false;
    }
    let mut j = 1 + n;
    if b.get(j) == Some(&b',') {
        j += 1 + digits(j + 1);
    }
    b.get(j) == Some(&b'}')
}

/// Blanks the statement around `pos` (keeping byte offsets and newlines) so parsing can go on.
/// Returns false when nothing could be blanked.
fn blank_statement(text: &mut String, pos: usize) -> bool {
    let bytes = text.as_bytes();
    if text[pos.min(text.len())..].trim().is_empty() {
        // Unclosed block at the end: close it so the rest can be checked.
        let braces = scan_braces(text);
        let open = braces.pairs.iter().filter(|(_, c)| c.is_none()).count();
        if open > 0 && braces.unterminated_quote.is_none() {
            // On a line of its own, so a comment or a word at the end does not take it.
            text.push_str(&"\n}".repeat(open));
            return true;
        }
        return false;
    }
    let start = bytes[..pos]
        .iter()
        .rposition(|&b| b == b';' || b == b'{' || b == b'}')
        .map_or(0, |i| i + 1);
    let (from, to) = match bytes[pos] {
        // `name args }`: drop the unterminated directive, keep the brace.
        b'}' if !text[start..pos].trim().is_empty() => (start, pos),
        b'}' => (pos, pos + 1),
        // A nameless block: drop it whole.
        b'{' => {
            let braces = scan_braces(text);
            (pos, braces.close_of(pos).map_or(pos + 1, |c| c + 1))
        }
        // Nothing after an unterminated string can be read reliably.
        b'"' | b'\'' if scan_braces(text).unterminated_quote == Some(pos) => return false,
        _ => {
            let mut end = pos;
            while end < bytes.len()
                && bytes[end] != b';'
                && bytes[end] != b'}'
                && bytes[end] != b'\n'
            {
                end += 1;
            }
            if end < bytes.len() && bytes[end] == b';' {
                end += 1;
            }
            (start, end)
        }
    };
    if to <= from {
        return false;
    }
    // Keep byte offsets: replace multi-byte chars by as many spaces as bytes.
    let blanked: String = text[from..to]
        .chars()
        .flat_map(|c| {
            let n = if c == '\n' { 1 } else { c.len_utf8() };
            std::iter::repeat_n(if c == '\n' { '\n' } else { ' ' }, n)
        })
        .collect();
    text.replace_range(from..to, &blanked);
    true
}

/// Finds a directive that swallowed the next line because its `;` is missing (an argument
/// that starts a line and is itself a directive name), reports it, and splits the two.
pub fn split_missing_semicolons(
    tree: Vec<Directive>,
    text: &str,
    diags: &mut Diagnostics,
) -> Vec<Directive> {
    split_at_depth(tree, text, diags, 0)
}

fn split_at_depth(
    tree: Vec<Directive>,
    text: &str,
    diags: &mut Diagnostics,
    depth: usize,
) -> Vec<Directive> {
    let mut out = Vec::with_capacity(tree.len());
    for mut d in tree {
        if let Some(block) = d.block.take() {
            d.block = Some(if depth < MAX_BLOCK_DEPTH {
                split_at_depth(block, text, diags, depth + 1)
            } else {
                block
            });
        }
        let mut prev_end = d.name_span.end as usize;
        let mut cut = None;
        for (i, a) in d.args.iter().enumerate() {
            let gap = text.get(prev_end..a.span.start as usize).unwrap_or("");
            if a.quote == Quote::Bare
                && gap.contains('\n')
                && crate::directives::TABLE.iter().any(|s| s.name == a.value)
                && (d.block.is_some() || starts_directive(&a.value, &d.args[i + 1..]))
            {
                cut = Some((i, prev_end));
                break;
            }
            prev_end = a.span.end as usize;
        }
        let Some((i, after)) = cut else {
            out.push(d);
            continue;
        };
        diags.push(
            Diagnostic::error(
                Code::Syntax,
                Span::new(d.name_span.file, after..after),
                format!("missing \";\" after the \"{}\" directive", d.name),
            )
            .label("\";\" expected here")
            .also(
                d.args[i].span,
                format!(
                    "\"{}\" on the next line starts a new directive",
                    d.args[i].value
                ),
            )
            .help(format!("end the \"{}\" directive with \";\"", d.name)),
        );
        let rest: Vec<Arg> = d.args.split_off(i);
        let second = Directive {
            name: rest[0].value.clone(),
            name_span: rest[0].span,
            args: rest[1..].to_vec(),
            block: d.block.take(),
            span: rest[0].span.to(d.span),
        };
        d.span = Span::new(d.span.file, d.span.start as usize..after);
        out.push(d);
        out.extend(split_at_depth(vec![second], text, diags, depth));
    }
    out
}

/// Whether `name` followed by `args` reads as a directive of its own: a directive name
/// whose row takes that many arguments (and, for a flag or keyword directive, those words).
/// An argument that only happens to be a directive's name — `access_log … test` then
/// `gzip buffer=1m;` on the next line — is not taken for one.
fn starts_directive(name: &str, args: &[Arg]) -> bool {
    use crate::directives::Kind;
    crate::directives::TABLE
        .iter()
        .filter(|s| s.name == name)
        .any(|s| {
            s.arity.accepts(args.len())
                && match s.kind {
                    Kind::Flag => args
                        .iter()
                        .all(|a| matches!(a.value.as_str(), "on" | "off")),
                    Kind::Keyword(words) => args.iter().all(|a| words.contains(&a.value.as_str())),
                    Kind::Block => false,
                    _ => true,
                }
        })
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
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return None;
        }
    };
    let file = add_checked(map, path.to_path_buf(), &bytes, None, diags);
    let tree = parse_text(file, map.text(file).to_string().as_str(), diags);
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut stack = vec![canon];
    let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    Some(expand(tree, path, &root, map, diags, &mut stack, 0))
}

/// Registers a file; bytes that are not UTF-8 are an error at their position (the text is
/// kept, with replacement characters, so the caret can show the line).
fn add_checked(
    map: &mut SourceMap,
    path: PathBuf,
    bytes: &[u8],
    parent: Option<Span>,
    diags: &mut Diagnostics,
) -> FileId {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let bad = std::str::from_utf8(bytes).err().map(|e| e.valid_up_to());
    let id = map.add_included(path, text, parent);
    if let Some(at) = bad {
        let span = Span::new(id, at..at + '\u{FFFD}'.len_utf8());
        diags.push(
            Diagnostic::error(Code::Syntax, span, "the file is not valid UTF-8")
                .label("this byte sequence is not UTF-8")
                .help("save the file as UTF-8; Proton will not guess an encoding"),
        );
    }
    id
}

/// Expands globs of an include argument against `base`.
fn include_candidates(base: &Path, arg: &str) -> Result<(String, Vec<PathBuf>), String> {
    let pattern = if Path::new(arg).is_absolute() {
        PathBuf::from(arg)
    } else {
        base.join(arg)
    };
    let pattern_s = pattern.display().to_string();
    let mut files: Vec<PathBuf> = glob::glob(&pattern_s)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .collect();
    files.sort();
    Ok((pattern_s, files))
}

/// Expands the `include`s of `tree`, whose directives are at nesting level `depth` (0 for
/// the main file's top level). A file included inside blocks adds its own nesting to theirs;
/// blocks that would end up deeper than [`MAX_BLOCK_DEPTH`] are refused.
fn expand(
    tree: Vec<Directive>,
    path: &Path,
    root: &Path,
    map: &mut SourceMap,
    diags: &mut Diagnostics,
    stack: &mut Vec<PathBuf>,
    depth: usize,
) -> Vec<Directive> {
    // This function recurses once per block level: everything else lives in the functions
    // it calls, so its stack frame stays small.
    let mut out = Vec::with_capacity(tree.len());
    for mut d in tree {
        if d.name == "include" && d.block.is_none() {
            include(d, path, root, map, diags, stack, depth, &mut out);
            continue;
        }
        if let Some(block) = d.block.take() {
            d.block = Some(if depth < MAX_BLOCK_DEPTH {
                expand(block, path, root, map, diags, stack, depth + 1)
            } else {
                include_too_deep(&d, diags);
                Vec::new()
            });
        }
        out.push(d);
    }
    out
}

#[inline(never)]
fn include_too_deep(d: &Directive, diags: &mut Diagnostics) {
    diags.push(
        too_deep(d.name_span)
            .help("this block is nested in included files; flatten the configuration"),
    );
}

/// Expands one `include` directive at nesting level `depth` into `out`.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn include(
    d: Directive,
    path: &Path,
    root: &Path,
    map: &mut SourceMap,
    diags: &mut Diagnostics,
    stack: &mut Vec<PathBuf>,
    depth: usize,
    out: &mut Vec<Directive>,
) {
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
        return;
    }
    let arg = &d.args[0];
    // Relative to the including file; like nginx, also relative to the main config's
    // directory when nothing matches there.
    let base = path.parent().unwrap_or(Path::new("."));
    let is_glob = arg.value.contains(['*', '?', '[']);
    let found = include_candidates(base, &arg.value).and_then(|(p, f)| {
        if f.is_empty() && base != root {
            let (p2, f2) = include_candidates(root, &arg.value)?;
            if !f2.is_empty() {
                return Ok((p2, f2));
            }
        }
        Ok((p, f))
    });
    let (pattern_s, files) = match found {
        Ok(x) => x,
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Code::Include,
                    arg.span,
                    format!("invalid include pattern: {e}"),
                )
                .label("this pattern")
                .help("globs use *, ? and [..]"),
            );
            return;
        }
    };
    if files.is_empty() && !is_glob {
        diags.push(
                Diagnostic::error(
                    Code::Include,
                    arg.span,
                    format!("included file \"{}\" does not exist", pattern_s),
                )
                .label("no such file")
                .help("paths in include are relative to the including file (or to the main config's directory)"),
            );
        return;
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
        if f.is_dir() {
            diags.push(
                Diagnostic::error(
                    Code::Include,
                    arg.span,
                    format!("\"{}\" is a directory", f.display()),
                )
                .label("include needs files")
                .help(format!(
                    "include the files in it with a glob: include {}/*.conf;",
                    arg.value.trim_end_matches('/')
                )),
            );
            continue;
        }
        let bytes = match std::fs::read(&f) {
            Ok(b) => b,
            Err(e) => {
                diags.push(
                    Diagnostic::error(
                        Code::Include,
                        arg.span,
                        format!("cannot read \"{}\": {e}", f.display()),
                    )
                    .label("included here")
                    .help("check the file's permissions"),
                );
                continue;
            }
        };
        let id = add_checked(map, f.clone(), &bytes, Some(arg.span), diags);
        let src = map.text(id).to_string();
        let sub = parse_text(id, &src, diags);
        stack.push(canon);
        out.extend(expand(sub, &f, root, map, diags, stack, depth));
        stack.pop();
    }
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
    fn depth_is_counted_with_the_reader_rules() {
        let deep = |unit: &str, n: usize| {
            let mut d = Diagnostics::default();
            parse_text(FileId(0), &unit.repeat(n), &mut d);
            d.list
                .iter()
                .any(|e| e.message.starts_with("blocks nested too deeply"))
        };
        // A `${` not closed before a space is a `$` and a block to the reader.
        assert!(deep("a ${ ", 300));
        // Quantifiers, `${var}`, quoted and commented braces open no block.
        assert!(!deep("a{2,3} ${x} \"{\" '{' #{\n", 300));
        assert!(!deep("a {", 256));
        assert!(deep("a {", 257));
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
