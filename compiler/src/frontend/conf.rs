//! Directive tree → NGINX-style text. Arguments are quoted only when they must be (or were
//! quoted in the source), and escaped so that [`crate::syntax::parse_text`] reads back exactly
//! the same values. Comments are not part of the tree and so are not written.

use crate::ast::{Directive, Quote};

/// Indentation of one block level.
const INDENT: &str = "    ";

/// Writes a directive tree as NGINX-style configuration text (4-space indentation, a blank
/// line around blocks).
pub fn to_conf_string(tree: &[Directive]) -> String {
    let mut out = String::new();
    write_block(tree, 0, &mut out);
    out
}

fn write_block(tree: &[Directive], depth: usize, out: &mut String) {
    let mut prev_block = false;
    for (i, d) in tree.iter().enumerate() {
        let is_block = d.block.is_some();
        if i > 0 && (is_block || prev_block) {
            out.push('\n');
        }
        prev_block = is_block;
        push_indent(depth, out);
        // Names are bare words, except map keys such as "" or "a b".
        out.push_str(&quote(&d.name, false));
        for a in &d.args {
            out.push(' ');
            out.push_str(&quote(&a.value, a.quote != Quote::Bare));
        }
        match &d.block {
            Some(children) => {
                out.push_str(" {\n");
                write_block(children, depth + 1, out);
                push_indent(depth, out);
                out.push_str("}\n");
            }
            None => out.push_str(";\n"),
        }
    }
}

fn push_indent(depth: usize, out: &mut String) {
    for _ in 0..depth {
        out.push_str(INDENT);
    }
}

/// True when `value` cannot be written as a bare word: empty, containing whitespace (the
/// reader's: vertical tab, form feed and U+FEFF too), `;`, braces or quotes, or starting
/// with `#`.
pub(crate) fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value.starts_with('#')
        || value.contains(|c: char| {
            matches!(
                c,
                ' ' | '\t'..='\r' | ';' | '{' | '}' | '"' | '\'' | '\u{feff}'
            )
        })
}

/// One argument as written: bare, or double-quoted when needed (or `force`d).
///
/// The reader ([`crate::syntax::unescape`]) turns `\"`, `\'`, `\\` into the character and
/// `\t`, `\r`, `\n` into control characters, and keeps any other backslash (so regexes keep
/// `\d`). A backslash is therefore doubled only before one of `"'\trn`, before a character
/// that is escaped itself, or at the end; inside quotes `"`, tab, CR and LF are escaped.
pub(crate) fn quote(value: &str, force: bool) -> String {
    quote_with(value, force, '"')
}

/// [`quote`] with `q` (`"` or `'`) as the quote character when quotes are needed.
pub(crate) fn quote_with(value: &str, force: bool, q: char) -> String {
    let quoted = force || needs_quotes(value);
    let mut out = String::with_capacity(value.len() + 2);
    if quoted {
        out.push(q);
    }
    push_escaped(&mut out, value, quoted.then_some(q), quoted);
    if quoted {
        out.push(q);
    }
    out
}

/// `value` with the escapes the reader undoes: backslashes doubled where needed (see
/// [`quote`]), `quote` (the quote character around it, if any) escaped, and with `controls`
/// tab, CR and LF written as `\t`, `\r`, `\n`.
pub(crate) fn push_escaped(out: &mut String, value: &str, quote: Option<char>, controls: bool) {
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.peek().copied();
                // Before a character that is itself escaped, the backslash must be doubled too.
                if next.is_none()
                    || matches!(
                        next,
                        Some('"' | '\'' | '\\' | 't' | 'r' | 'n' | '\t' | '\r' | '\n')
                    )
                {
                    out.push_str("\\\\");
                } else {
                    out.push('\\');
                }
            }
            c if Some(c) == quote => {
                out.push('\\');
                out.push(c);
            }
            '\n' if controls => out.push_str("\\n"),
            '\t' if controls => out.push_str("\\t"),
            '\r' if controls => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}
