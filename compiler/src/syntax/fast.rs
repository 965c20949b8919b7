//! A hand-written reader for well-formed configs, the fast path in front of the pest parser.
//!
//! It accepts exactly the language of `grammar/proton.pest` and builds the same tree, but
//! byte by byte without pest's per-rule bookkeeping (large configs parse ~10× faster). It
//! does no error reporting: on anything unexpected it returns `None`, and the pest parser
//! runs to produce the diagnostics. The property test `fast_reader_agrees_with_pest` checks
//! that both give identical trees, or both refuse, on generated inputs.

use super::unescape;
use crate::ast::{Arg, Directive, Quote};
use crate::source::{FileId, Span};
use std::ops::Range;

/// Deepest block nesting the fast path handles; deeper files go to pest (and its limits).
const MAX_DEPTH: usize = 256;

struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    file: FileId,
    /// The byte ranges of the comments skipped (`#` to the end of the line, the line break
    /// not included), when the caller asked for them.
    comments: Option<Vec<Range<usize>>>,
}

/// Reads a whole file, or returns `None` if it is not well formed.
pub fn parse(file: FileId, text: &str) -> Option<Vec<Directive>> {
    read(file, text, false).map(|(tree, _)| tree)
}

/// A file's directives and where its comments are (byte ranges, in file order).
pub type WithComments = (Vec<Directive>, Vec<Range<usize>>);

/// [`parse`], also returning where the comments are: the tree has no place for them, and
/// `protonc fmt` writes them back.
pub fn parse_with_comments(file: FileId, text: &str) -> Option<WithComments> {
    read(file, text, true)
}

fn read(file: FileId, text: &str, keep_comments: bool) -> Option<WithComments> {
    let mut r = Reader {
        text,
        b: text.as_bytes(),
        pos: 0,
        file,
        comments: keep_comments.then(Vec::new),
    };
    let list = r.statements(0)?;
    r.skip();
    (r.pos == r.b.len()).then(|| (list, r.comments.unwrap_or_default()))
}

impl Reader<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start..end)
    }

    /// pest's implicit WHITESPACE (space, \t..\r, U+FEFF) and COMMENT (`#` to end of line).
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

    /// Directives until `}` or the end.
    fn statements(&mut self, depth: usize) -> Option<Vec<Directive>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut out = Vec::new();
        loop {
            self.skip();
            match self.b.get(self.pos) {
                None | Some(b'}') => return Some(out),
                _ => out.push(self.directive(depth)?),
            }
        }
    }

    fn directive(&mut self, depth: usize) -> Option<Directive> {
        let start = self.pos;
        let (name, name_span) = match self.b[self.pos] {
            b'"' | b'\'' => {
                let a = self.quoted()?;
                (a.value, a.span)
            }
            _ => {
                let (s, e) = self.word()?;
                (unescape(&self.text[s..e]), self.span(s, e))
            }
        };
        let mut args = Vec::new();
        loop {
            self.skip();
            match *self.b.get(self.pos)? {
                b';' => {
                    self.pos += 1;
                    return Some(Directive {
                        name,
                        name_span,
                        args,
                        block: None,
                        span: self.span(start, self.pos),
                    });
                }
                b'{' if self.word_char(self.pos).is_none() => {
                    self.pos += 1;
                    let block = self.statements(depth + 1)?;
                    if self.b.get(self.pos) != Some(&b'}') {
                        return None;
                    }
                    self.pos += 1;
                    return Some(Directive {
                        name,
                        name_span,
                        args,
                        block: Some(block),
                        span: self.span(start, self.pos),
                    });
                }
                b'"' | b'\'' => args.push(self.quoted()?),
                _ => {
                    let (s, e) = self.word()?;
                    args.push(Arg {
                        value: unescape(&self.text[s..e]),
                        quote: Quote::Bare,
                        span: self.span(s, e),
                    });
                }
            }
        }
    }

    /// A quoted string followed by a separator (space, \t, \r, \n, `;`, `{`, `)` or the end).
    fn quoted(&mut self) -> Option<Arg> {
        let start = self.pos;
        let q = self.b[start];
        let mut i = start + 1;
        loop {
            match *self.b.get(i)? {
                c if c == q => break,
                b'\\' => i += 1 + self.char_len(i + 1)?,
                _ => i += self.char_len(i)?,
            }
        }
        let inner = &self.text[start + 1..i];
        self.pos = i + 1;
        match self.b.get(self.pos) {
            None | Some(b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' | b')') => {}
            _ => return None,
        }
        Some(Arg {
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

    /// A bare word: returns its byte range.
    fn word(&mut self) -> Option<(usize, usize)> {
        let start = self.pos;
        if matches!(self.b.get(start), Some(b'"' | b'\'' | b'}') | None) {
            return None;
        }
        let mut i = start;
        while let Some(n) = self.word_char(i) {
            i += n;
        }
        if i == start {
            return None;
        }
        self.pos = i;
        Some((start, i))
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
