//! The reader of NGINX-style text: bytes → spanned [`Directive`] tree, in one pass and without
//! recursion. It is Proton's only parser for this language: on well-formed text it builds
//! the tree, on anything else it stops at the first byte it cannot read and says what it
//! expected there ([`Failure`]); [`super::parse_text`] turns that into a diagnostic, blanks
//! the statement and reads again, so that one run reports every syntax error of a file.
//!
//! # The language
//!
//! The lexical rules follow nginx's `ngx_conf_read_token`:
//!
//! * A file is a sequence of directives. A directive is a name, zero or more arguments, and
//!   either `;` or a block: `{`, directives, `}`. Blocks nest up to
//!   [`MAX_BLOCK_DEPTH`] levels; deeper text is refused (one error at the first `{` too
//!   deep), so that no walker over the tree can exhaust the stack.
//! * Whitespace between tokens is space, `\t`, `\n`, `\u{b}`, `\u{c}`, `\r` (CR LF and a
//!   lone LF both end lines) and U+FEFF (a byte-order mark, anywhere).
//! * `#` starts a comment, up to the end of the line, only where a token could start:
//!   `a#b` is one word, `a #b` is `a` and a comment.
//! * A name or an argument is a bare word or a quoted string. As in nginx the name may be
//!   quoted too (`map` and `types` entries often are).
//! * A bare word runs up to whitespace (space, `\t`, `\r`, `\n`), `;` or `{`; it cannot start
//!   with a quote or `}`. A backslash escapes the next character, whatever it is (`\;`,
//!   `\ `, `\{` stay in the word). `${var}` keeps its braces inside the word (a `${` not
//!   closed before `;`, a space or a line end is a plain `$`, and its `{` opens a block).
//!   Beyond nginx, a regex quantifier `{n}`, `{n,}` or `{n,m}` is kept in the word, so
//!   `~ ^/a\d{2,3}$` needs no quotes (nginx refuses it unquoted).
//! * A quoted string is `"…"` or `'…'`; a backslash escapes the next character (`\"` does
//!   not end it). It must be followed by whitespace, `;`, `{`, `)` or the end of the file:
//!   `"a"b` is an error, as in nginx.
//! * Values are unescaped as nginx does ([`super::unescape`]): `\"`, `\'`, `\\` lose the
//!   backslash, `\t`, `\r`, `\n` become control characters, any other `\x` is kept as
//!   written (regexes keep `\d`, `\.`).
//!
//! The design card named pest for this language. pest alone took ~40–80 ms to parse the
//! 10,000-location benchmark config, this reader ~8 ms, and a pest-only `protonc compile`
//! missed the 100 ms goal (docs/performance.md), so this reader is the one parser.

use super::unescape;
use crate::ast::{Arg, Directive, Quote, MAX_BLOCK_DEPTH};
use crate::source::{FileId, Span};
use std::ops::Range;

/// Where and why reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Byte offset of the first byte that could not be read (a char boundary, at most the
    /// text's length).
    pub pos: usize,
    /// What the reader was looking for there.
    pub expected: Expected,
}

/// What the reader was looking for where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A directive: at the top level of the file.
    Directive,
    /// A directive or the `}` that closes the block.
    DirectiveOrClose,
    /// After a directive's name or one of its arguments: another argument, `;` or `{`.
    ArgumentOrEnd,
    /// The closing quote of the string that starts at `pos`.
    ClosingQuote,
    /// What may follow a closing quote: whitespace, `;`, `{`, `)` or the end of the file.
    Separator,
    /// Nothing: the `{` at `pos` opens a block deeper than [`MAX_BLOCK_DEPTH`] levels.
    Shallower,
}

impl Expected {
    /// In words, for a diagnostic's help ("expected …").
    pub fn describe(self) -> &'static str {
        match self {
            Expected::Directive => "a directive",
            Expected::DirectiveOrClose => "a directive or \"}\"",
            Expected::ArgumentOrEnd => "an argument, \";\" or \"{\"",
            Expected::ClosingQuote => "the closing quote",
            Expected::Separator => "a space, \";\" or \"{\" after the quoted string",
            Expected::Shallower => "fewer nested blocks",
        }
    }
}

/// A file's directives and where its comments are (byte ranges, in file order).
pub type WithComments = (Vec<Directive>, Vec<Range<usize>>);

/// Reads a whole file.
pub fn parse(file: FileId, text: &str) -> Result<Vec<Directive>, Failure> {
    read(file, text, false).map(|(tree, _)| tree)
}

/// [`parse`], also returning where the comments are (`#` to the end of the line, the line
/// break not included): the tree has no place for them, and `protonc fmt` writes them back.
pub fn parse_with_comments(file: FileId, text: &str) -> Result<WithComments, Failure> {
    read(file, text, true)
}

fn read(file: FileId, text: &str, keep_comments: bool) -> Result<WithComments, Failure> {
    let mut r = Reader {
        text,
        b: text.as_bytes(),
        pos: 0,
        file,
        comments: keep_comments.then(Vec::new),
    };
    let tree = r.file()?;
    Ok((tree, r.comments.unwrap_or_default()))
}

struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    file: FileId,
    /// The comments skipped, when the caller asked for them.
    comments: Option<Vec<Range<usize>>>,
}

/// A directive whose block is being read: its head, and the list it goes into once closed.
struct Open {
    name: String,
    name_span: Span,
    args: Vec<Arg>,
    start: usize,
    parent: Vec<Directive>,
}

impl Reader<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start..end)
    }

    fn fail(&self, pos: usize, expected: Expected) -> Failure {
        Failure { pos, expected }
    }

    /// Skips whitespace and comments.
    fn skip(&mut self) {
        loop {
            match self.b.get(self.pos) {
                Some(b' ' | b'\t'..=b'\r') => self.pos += 1,
                Some(0xEF) if self.b[self.pos..].starts_with("\u{FEFF}".as_bytes()) => {
                    self.pos += 3
                }
                Some(b'#') => {
                    let start = self.pos;
                    while self.pos < self.b.len() && self.b[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                    if let Some(c) = &mut self.comments {
                        c.push(start..self.pos);
                    }
                }
                _ => return,
            }
        }
    }

    /// The whole file. Blocks are kept on an explicit stack (`open`), not on the call stack.
    fn file(&mut self) -> Result<Vec<Directive>, Failure> {
        let mut open: Vec<Open> = Vec::new();
        let mut list: Vec<Directive> = Vec::new();
        loop {
            self.skip();
            let start = self.pos;
            match self.b.get(start) {
                None if open.is_empty() => return Ok(list),
                None => return Err(self.fail(start, Expected::DirectiveOrClose)),
                Some(b'}') => {
                    let Some(o) = open.pop() else {
                        return Err(self.fail(start, Expected::Directive));
                    };
                    self.pos += 1;
                    let block = std::mem::replace(&mut list, o.parent);
                    list.push(Directive {
                        name: o.name,
                        name_span: o.name_span,
                        args: o.args,
                        block: Some(block),
                        span: self.span(o.start, self.pos),
                    });
                }
                Some(_) => {
                    let in_block = if open.is_empty() {
                        Expected::Directive
                    } else {
                        Expected::DirectiveOrClose
                    };
                    let (name, name_span) = self.name(in_block)?;
                    let mut args = Vec::new();
                    loop {
                        self.skip();
                        match self.b.get(self.pos) {
                            Some(b';') => {
                                self.pos += 1;
                                list.push(Directive {
                                    name,
                                    name_span,
                                    args,
                                    block: None,
                                    span: self.span(start, self.pos),
                                });
                                break;
                            }
                            Some(b'{') if self.word_char(self.pos).is_none() => {
                                if open.len() >= MAX_BLOCK_DEPTH {
                                    return Err(self.fail(self.pos, Expected::Shallower));
                                }
                                self.pos += 1;
                                open.push(Open {
                                    name,
                                    name_span,
                                    args,
                                    start,
                                    parent: std::mem::take(&mut list),
                                });
                                break;
                            }
                            None | Some(b'}') => {
                                return Err(self.fail(self.pos, Expected::ArgumentOrEnd))
                            }
                            Some(b'"' | b'\'') => args.push(self.quoted()?),
                            Some(_) => {
                                let (s, e) = self.word(Expected::ArgumentOrEnd)?;
                                args.push(Arg {
                                    value: unescape(&self.text[s..e]),
                                    quote: Quote::Bare,
                                    span: self.span(s, e),
                                });
                            }
                        }
                    }
                }
            }
        }
    }

    /// A directive's name, bare or quoted.
    fn name(&mut self, expected: Expected) -> Result<(String, Span), Failure> {
        match self.b[self.pos] {
            b'"' | b'\'' => {
                let a = self.quoted()?;
                Ok((a.value, a.span))
            }
            _ => {
                let (s, e) = self.word(expected)?;
                Ok((unescape(&self.text[s..e]), self.span(s, e)))
            }
        }
    }

    /// A quoted string followed by a separator (whitespace, `;`, `{`, `)` or the end).
    fn quoted(&mut self) -> Result<Arg, Failure> {
        let start = self.pos;
        let q = self.b[start];
        let unterminated = self.fail(start, Expected::ClosingQuote);
        let mut i = start + 1;
        loop {
            match *self.b.get(i).ok_or(unterminated)? {
                c if c == q => break,
                b'\\' => i += 1 + self.char_len(i + 1).ok_or(unterminated)?,
                _ => i += self.char_len(i).ok_or(unterminated)?,
            }
        }
        let inner = &self.text[start + 1..i];
        self.pos = i + 1;
        match self.b.get(self.pos) {
            None | Some(b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b')') => {}
            _ => return Err(self.fail(self.pos, Expected::Separator)),
        }
        Ok(Arg {
            value: unescape(inner),
            quote: if q == b'"' {
                Quote::Double
            } else {
                Quote::Single
            },
            span: self.span(start, self.pos),
        })
    }

    /// Byte length of the char at `i`.
    fn char_len(&self, i: usize) -> Option<usize> {
        self.text.get(i..)?.chars().next().map(char::len_utf8)
    }

    /// A bare word: returns its byte range. It is never empty; where none starts, reading
    /// fails with `expected`.
    fn word(&mut self, expected: Expected) -> Result<(usize, usize), Failure> {
        let start = self.pos;
        let mut i = start;
        while let Some(n) = self.word_char(i) {
            i += n;
        }
        if i == start {
            return Err(self.fail(start, expected));
        }
        self.pos = i;
        Ok((start, i))
    }

    /// Length of the word character(s) at `i`, or `None` where the word ends.
    fn word_char(&self, i: usize) -> Option<usize> {
        let b = self.b;
        match *b.get(i)? {
            b' ' | b'\t' | b'\r' | b'\n' | b';' => None,
            b'\\' => match self.char_len(i + 1) {
                Some(n) => Some(1 + n),
                None => Some(1),
            },
            b'$' if b.get(i + 1) == Some(&b'{') => {
                let mut j = i + 2;
                while let Some(&c) = b.get(j) {
                    match c {
                        b'}' => return Some(j + 1 - i),
                        b';' | b' ' | b'\n' => break,
                        _ => j += self.char_len(j)?,
                    }
                }
                Some(1) // `$` alone; the `{` then ends the word
            }
            b'{' => {
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits == 0 {
                    return None;
                }
                let mut j = i + 1 + digits;
                if b.get(j) == Some(&b',') {
                    j += 1;
                    j += b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
                }
                (b.get(j) == Some(&b'}')).then_some(j + 1 - i)
            }
            _ => self.char_len(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(text: &str) -> (usize, Expected) {
        match parse(FileId(0), text) {
            Ok(_) => panic!("{text:?} reads"),
            Err(f) => (f.pos, f.expected),
        }
    }

    #[test]
    fn where_and_why_reading_stops() {
        use Expected::*;
        let cases = [
            ("}", (0, Directive)),
            ("a; ;", (3, Directive)),
            ("a {\n  {", (6, DirectiveOrClose)),
            ("a { b; ", (7, DirectiveOrClose)),
            ("a b", (3, ArgumentOrEnd)),
            ("a b # c", (7, ArgumentOrEnd)),
            ("a { b }", (6, ArgumentOrEnd)),
            ("a \"b;", (2, ClosingQuote)),
            ("a 'b\\'", (2, ClosingQuote)),
            ("\"a\"b;", (3, Separator)),
            ("a \"b\"c;", (5, Separator)),
            ("a 'b'\u{feff};", (5, Separator)),
            ("a ${ b", (6, ArgumentOrEnd)),
            ("a ${ b; ", (8, DirectiveOrClose)),
        ];
        for (text, want) in cases {
            assert_eq!(stop(text), want, "{text:?}");
        }
    }

    #[test]
    fn depth_limit_without_recursion() {
        let ok = "a {".repeat(MAX_BLOCK_DEPTH) + &"}".repeat(MAX_BLOCK_DEPTH);
        assert!(parse(FileId(0), &ok).is_ok());
        let deep = "a {".repeat(100_000);
        assert_eq!(stop(&deep), (3 * MAX_BLOCK_DEPTH + 2, Expected::Shallower));
    }

    #[test]
    fn comments_are_found() {
        let text = "# head\na b#c; # tail\n\"#q\" '#'; #";
        let (tree, comments) = parse_with_comments(FileId(0), text).expect("reads");
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].args[0].value, "b#c");
        let found: Vec<&str> = comments.into_iter().map(|r| &text[r]).collect();
        assert_eq!(found, ["# head", "# tail", "#"]);
    }
}
