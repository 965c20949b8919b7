//! JSON text → spanned [`Node`]. serde_json validates the text first (precise syntax errors
//! with line and column, full JSON string escapes including surrogate pairs); a small pass over
//! the validated text then records the byte range of every key and value, which serde_json
//! does not expose. This reader never panics: anything unexpected becomes a diagnostic.

use super::node::{Key, Node, Scalar, ScalarType, Value, MAX_DEPTH};
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, Span};

/// Parses a JSON document. Returns `None` after reporting a syntax error.
pub(crate) fn read(file: FileId, text: &str, diags: &mut Diagnostics) -> Option<Node> {
    // serde_json does not skip a byte-order mark; the span pass does.
    let bom = if text.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text[bom..]) {
        diags.push(syntax_error(file, text, bom, &e));
        return None;
    }
    let mut r = SpanPass {
        file,
        text,
        bytes: text.as_bytes(),
        pos: bom,
        too_deep: false,
    };
    match r.value(0) {
        Ok(node) => Some(node),
        Err(at) => {
            let at = at.min(text.len());
            let d = if r.too_deep {
                Diagnostic::error(
                    Code::Document,
                    Span::new(file, at..at),
                    "objects and arrays nested too deeply",
                )
                .label("too deep here")
                .help(format!(
                    "a Proton document nests at most {MAX_DEPTH} levels"
                ))
            } else {
                Diagnostic::error(
                    Code::Document,
                    Span::new(file, at..at),
                    "cannot read this JSON document",
                )
                .label("unexpected here")
            };
            diags.push(d);
            None
        }
    }
}

fn syntax_error(file: FileId, text: &str, bom: usize, e: &serde_json::Error) -> Diagnostic {
    let at = offset_of(&text[bom..], e.line(), e.column()) + bom;
    let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
    let full = e.to_string();
    let msg = full
        .rfind(" at line ")
        .map_or(full.as_str(), |i| &full[..i]);
    let after_comma = text[..at].trim_end().ends_with(',') && text[at..].starts_with(['}', ']']);
    let help = if msg.contains("trailing comma") || after_comma {
        "JSON allows no comma after the last member of an object or array"
    } else if msg.contains("key must be a string") {
        "object keys are double-quoted strings in JSON"
    } else if e.is_eof() {
        "the document ends before every \"{\" and \"[\" is closed"
    } else if msg.contains("recursion limit") {
        "objects and arrays are nested too deeply"
    } else if msg.contains("trailing characters") {
        "a JSON document is a single object; remove what follows it"
    } else {
        "check the quotes, commas, colons and brackets around this point"
    };
    Diagnostic::error(
        Code::Syntax,
        Span::new(file, at..end),
        format!("JSON syntax error: {msg}"),
    )
    .label("here")
    .help(help)
}

/// Byte offset of serde_json's 1-based line and 1-based byte column (0 = line start).
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => break,
        }
    }
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut at = (start + column.saturating_sub(1)).min(line_end.max(start));
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Records spans over text serde_json has accepted. `Err(pos)` only on text it would reject.
struct SpanPass<'a> {
    file: FileId,
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    too_deep: bool,
}

impl SpanPass<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start..end)
    }

    fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), usize> {
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.pos)
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, usize> {
        self.skip_ws();
        let start = self.pos;
        if depth > MAX_DEPTH {
            self.too_deep = true;
            return Err(start);
        }
        match self.bytes.get(start) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let (text, end, verbatim) = self.string()?;
                Ok(Node {
                    value: Value::Scalar(Scalar {
                        text,
                        ty: ScalarType::Str,
                        verbatim,
                    }),
                    span: self.span(start, end),
                })
            }
            Some(_) => self.literal(),
            None => Err(start),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Node, usize> {
        let start = self.pos;
        self.pos += 1;
        let mut entries = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let key_start = self.pos;
                if self.bytes.get(key_start) != Some(&b'"') {
                    return Err(key_start);
                }
                let (text, key_end, _) = self.string()?;
                let key = Key {
                    text,
                    span: self.span(key_start, key_end),
                };
                self.eat(b':')?;
                let value = self.value(depth + 1)?;
                entries.push((key, value));
                self.skip_ws();
                match self.bytes.get(self.pos) {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.pos),
                }
            }
        }
        Ok(Node {
            value: Value::Map {
                entries,
                open: self.span(start, start + 1),
            },
            span: self.span(start, self.pos),
        })
    }

    fn array(&mut self, depth: usize) -> Result<Node, usize> {
        let start = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b']') {
            self.pos += 1;
        } else {
            loop {
                items.push(self.value(depth + 1)?);
                self.skip_ws();
                match self.bytes.get(self.pos) {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.pos),
                }
            }
        }
        Ok(Node {
            value: Value::Seq(items),
            span: self.span(start, self.pos),
        })
    }

    /// A string at `pos` (on its opening quote): decoded value, end offset, and the offset of
    /// its text when the source has no escapes.
    fn string(&mut self) -> Result<(String, usize, Option<usize>), usize> {
        let start = self.pos;
        let mut i = start + 1;
        let mut escaped = false;
        loop {
            match self.bytes.get(i) {
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(b'"') => break,
                Some(_) => i += 1,
                None => return Err(start),
            }
        }
        let end = i + 1;
        let raw = self.text.get(start..end).ok_or(start)?;
        self.pos = end;
        if !escaped {
            return Ok((raw[1..raw.len() - 1].to_string(), end, Some(start + 1)));
        }
        let decoded: String = serde_json::from_str(raw).map_err(|_| start)?;
        Ok((decoded, end, None))
    }

    /// `true`, `false`, `null` or a number, kept as written.
    fn literal(&mut self) -> Result<Node, usize> {
        let start = self.pos;
        let mut end = start;
        while let Some(&b) = self.bytes.get(end) {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.') {
                end += 1;
            } else {
                break;
            }
        }
        let word = self.text.get(start..end).ok_or(start)?;
        let ty = match word {
            "true" => ScalarType::Bool(true),
            "false" => ScalarType::Bool(false),
            "null" => ScalarType::Null,
            w if w.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => ScalarType::Num,
            _ => return Err(start),
        };
        self.pos = end;
        Ok(Node {
            value: Value::Scalar(Scalar {
                text: if ty == ScalarType::Null {
                    String::new()
                } else {
                    word.to_string()
                },
                ty,
                verbatim: Some(start),
            }),
            span: self.span(start, end),
        })
    }
}
