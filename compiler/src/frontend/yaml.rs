//! YAML text → spanned [`Node`], from yaml-rust2's event parser (pulled in a loop, never
//! recursively, so nesting depth cannot exhaust the stack). Each event carries a marker
//! (a character index); the reader turns it into a byte offset and finds where each scalar
//! ends in the source. Plain scalars `true`/`false` (any YAML 1.2 spelling) are booleans,
//! `null`/`~`/empty are null, everything else is text exactly as written (so `1.0` stays
//! `1.0`). Anchors, aliases, tags other than `!!str`, and a second document are reported.

use super::node::{Key, Node, Scalar, ScalarType, Value, MAX_DEPTH};
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, Span};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Parses a YAML document. Returns `None` for an empty stream or after a syntax error; the
/// shape problems it finds (anchors, tags…) are reported and the rest is still returned.
pub(crate) fn read(file: FileId, text: &str, diags: &mut Diagnostics) -> Option<Node> {
    let mut b = Builder {
        file,
        text,
        chars: CharIndex::new(text),
        stack: Vec::new(),
        root: None,
        documents: 0,
        skip: 0,
        diags: Vec::new(),
    };
    // Events are pulled one by one: `Parser::load` recurses once per nesting level and
    // overflows the stack on deep documents; the builder keeps its own stack (and skips
    // what is nested deeper than MAX_DEPTH).
    let mut parser = Parser::new_from_str(text);
    let result = loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break Ok(()),
            Ok((ev, mark)) => b.on_event(ev, mark),
            Err(e) => break Err(e),
        }
    };
    let Builder {
        root, diags: found, ..
    } = b;
    if let Err(e) = result {
        let at = CharIndex::new(text).byte(e.marker().index());
        let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
        diags.push(
            Diagnostic::error(
                Code::Syntax,
                Span::new(file, at..end),
                format!("YAML syntax error: {}", e.info()),
            )
            .label("here")
            .help("check the indentation, quotes and brackets around this point"),
        );
        return None;
    }
    for d in found {
        diags.push(d);
    }
    root
}

/// Character index → byte offset.
struct CharIndex {
    /// Byte offset of each character (empty when the text is ASCII: identity).
    offsets: Vec<usize>,
    len: usize,
}

impl CharIndex {
    fn new(text: &str) -> CharIndex {
        let offsets = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices().map(|(i, _)| i).collect()
        };
        CharIndex {
            offsets,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.offsets.is_empty() {
            char_index.min(self.len)
        } else {
            self.offsets.get(char_index).copied().unwrap_or(self.len)
        }
    }
}

/// A collection being built.
enum Frame {
    Map {
        entries: Vec<(Key, Node)>,
        /// The key waiting for its value; `Err` for a key that could not be used.
        pending: Option<Result<Key, Span>>,
        start: usize,
        open: Option<Span>,
        flow: bool,
    },
    Seq {
        items: Vec<Node>,
        start: usize,
        flow: bool,
    },
}

struct Builder<'a> {
    file: FileId,
    text: &'a str,
    chars: CharIndex,
    stack: Vec<Frame>,
    root: Option<Node>,
    documents: usize,
    /// Depth of collections being skipped (too deep, or after the first document).
    skip: usize,
    diags: Vec<Diagnostic>,
}

impl Builder<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start..end.max(start))
    }

    /// One character at `at`, for markers of collections and errors.
    fn point(&self, at: usize) -> Span {
        let end = self
            .text
            .get(at..)
            .and_then(|r| r.chars().next())
            .map_or(at, |c| at + c.len_utf8());
        self.span(at, end)
    }

    fn error(&mut self, span: Span, msg: &str, label: &str, help: &str) {
        self.diags.push(
            Diagnostic::error(Code::Document, span, msg)
                .label(label)
                .help(help),
        );
    }

    /// The `&anchor` or `!tag` written before the node whose marker is at `at` (markers of
    /// block mappings point past it, so the source is searched backwards).
    fn property_span(&self, at: usize, sigil: char) -> Span {
        let before = self.text.get(..at).unwrap_or("");
        let found = before.char_indices().rev().find(|&(i, c)| {
            c == sigil
                && before[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|p| p.is_whitespace() || matches!(p, '[' | '{' | ',' | ':' | '-'))
        });
        match found {
            Some((i, _)) => {
                let rest = &self.text[i..];
                let len = rest
                    .find(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '{' | '}'))
                    .unwrap_or(rest.len());
                self.span(i, i + len)
            }
            None => self.point(at),
        }
    }

    fn check_anchor(&mut self, anchor: usize, at: usize) {
        if anchor != 0 {
            let sp = self.property_span(at, '&');
            self.error(
                sp,
                "YAML anchors are not supported",
                "this value has an anchor",
                "write the value out where it is used, and remove the &anchor",
            );
        }
    }

    /// Reports a tag; returns true for `!!str`, which makes the scalar a string.
    fn check_tag(&mut self, tag: Option<&Tag>, at: usize) -> bool {
        match tag {
            None => false,
            Some(t) if t.handle == "tag:yaml.org,2002:" && t.suffix == "str" => true,
            Some(t) => {
                let shown = if t.handle == "tag:yaml.org,2002:" {
                    format!("!!{}", t.suffix)
                } else {
                    format!("{}{}", t.handle, t.suffix)
                };
                let sp = self.property_span(at, '!');
                self.error(
                    sp,
                    &format!("YAML tag \"{shown}\" is not supported"),
                    "tagged value",
                    "remove the tag; only !!str (to force a string) is accepted",
                );
                false
            }
        }
    }

    fn start_collection(&mut self, frame: Frame, at: usize) {
        if self.skip > 0 {
            self.skip += 1;
            return;
        }
        if self.stack.len() >= MAX_DEPTH {
            let sp = self.point(at);
            self.error(
                sp,
                "objects and arrays nested too deeply",
                "too deep here",
                &format!("a Proton document nests at most {MAX_DEPTH} levels"),
            );
            self.skip = 1;
            return;
        }
        self.stack.push(frame);
    }

    fn end_collection(&mut self, at: usize) {
        if self.skip > 0 {
            self.skip -= 1;
            if self.skip == 0 && self.documents <= 1 {
                let sp = self.point(at);
                self.add(Node {
                    value: Value::Invalid,
                    span: sp,
                });
            }
            return;
        }
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let node = match frame {
            Frame::Map {
                entries,
                pending,
                start,
                open,
                flow,
            } => {
                if let Some(Ok(key)) = pending {
                    // A key without a value cannot happen in parsed YAML; keep it as null.
                    let span = key.span;
                    let mut entries = entries;
                    entries.push((key, null_at(span)));
                    return self.finish_map(entries, start, open, flow, at);
                }
                return self.finish_map(entries, start, open, flow, at);
            }
            Frame::Seq { items, start, flow } => {
                let end = if flow {
                    at + 1
                } else {
                    items.last().map_or(start + 1, |n| n.span.end as usize)
                };
                Node {
                    value: Value::Seq(items),
                    span: self.span(start, end),
                }
            }
        };
        self.add(node);
    }

    fn finish_map(
        &mut self,
        entries: Vec<(Key, Node)>,
        start: usize,
        open: Option<Span>,
        flow: bool,
        at: usize,
    ) {
        let start = if flow {
            start
        } else {
            entries
                .first()
                .map_or(start, |(k, _)| k.span.start as usize)
        };
        let end = if flow {
            at + 1
        } else {
            entries
                .last()
                .map_or(start + 1, |(_, v)| v.span.end as usize)
        };
        let open = open.unwrap_or_else(|| {
            entries
                .first()
                .map_or_else(|| self.point(start), |(k, _)| k.span)
        });
        let node = Node {
            value: Value::Map { entries, open },
            span: self.span(start, end),
        };
        self.add(node);
    }

    /// Adds a finished node to the collection being built (or makes it the root).
    fn add(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, pending, ..
            }) => match pending.take() {
                Some(Ok(key)) => {
                    let mut node = node;
                    if node.span.start == node.span.end {
                        // `key:` with nothing after it: the key is the place to point at.
                        node.span = key.span;
                    }
                    entries.push((key, node))
                }
                Some(Err(_)) => {}
                None => match node.value {
                    Value::Scalar(s) => {
                        *pending = Some(Ok(Key {
                            text: s.text,
                            span: node.span,
                        }))
                    }
                    Value::Invalid => *pending = Some(Err(node.span)),
                    _ => {
                        *pending = Some(Err(node.span));
                        let span = node.span;
                        self.error(
                            span,
                            "object keys must be strings",
                            "a complex key",
                            "write keys as plain or quoted strings",
                        );
                    }
                },
            },
        }
    }

    fn scalar(
        &mut self,
        value: String,
        style: TScalarStyle,
        anchor: usize,
        tag: Option<Tag>,
        at: usize,
    ) {
        let end = self.scalar_end(&value, style, at);
        let span = self.span(at, end);
        self.check_anchor(anchor, at);
        let forced = self.check_tag(tag.as_ref(), at);
        let ty = if style != TScalarStyle::Plain || forced {
            ScalarType::Str
        } else {
            match value.as_str() {
                "true" | "True" | "TRUE" => ScalarType::Bool(true),
                "false" | "False" | "FALSE" => ScalarType::Bool(false),
                "" | "~" | "null" | "Null" | "NULL" => ScalarType::Null,
                v if looks_numeric(v) => ScalarType::Num,
                _ => ScalarType::Str,
            }
        };
        let verbatim = self.verbatim(&value, style, at);
        let span = if ty == ScalarType::Null && value.is_empty() {
            // An empty value has no text; its marker is at the next token.
            self.span(at, at)
        } else {
            span
        };
        self.add(Node {
            value: Value::Scalar(Scalar {
                text: value,
                ty,
                verbatim,
            }),
            span,
        });
    }

    /// Where the scalar's text starts in the source when it is written without escapes.
    fn verbatim(&self, value: &str, style: TScalarStyle, at: usize) -> Option<usize> {
        let inner = match style {
            TScalarStyle::Plain => at,
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => at + 1,
            _ => return None,
        };
        let src = self.text.get(inner..)?;
        src.starts_with(value).then_some(inner)
    }

    /// Byte offset just past the scalar that starts at `at`.
    fn scalar_end(&self, value: &str, style: TScalarStyle, at: usize) -> usize {
        let b = self.text.as_bytes();
        match style {
            TScalarStyle::DoubleQuoted => {
                let mut i = at + 1;
                while let Some(&c) = b.get(i) {
                    match c {
                        b'\\' => i += 2,
                        b'"' => return i + 1,
                        _ => i += 1,
                    }
                }
                self.text.len()
            }
            TScalarStyle::SingleQuoted => {
                let mut i = at + 1;
                while let Some(&c) = b.get(i) {
                    if c == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        return i + 1;
                    }
                    i += 1;
                }
                self.text.len()
            }
            TScalarStyle::Plain if self.text.get(at..).is_some_and(|s| s.starts_with(value)) => {
                at + value.len()
            }
            _ => {
                // Multi-line plain or block scalars: to the end of the first line.
                let rest = self.text.get(at..).unwrap_or("");
                let line = rest.split('\n').next().unwrap_or("");
                at + line.trim_end().len()
            }
        }
    }
}

fn null_at(span: Span) -> Node {
    Node {
        value: Value::Scalar(Scalar {
            text: String::new(),
            ty: ScalarType::Null,
            verbatim: None,
        }),
        span,
    }
}

/// A YAML 1.2 core-schema number (kept as text; the type only matters for messages).
fn looks_numeric(v: &str) -> bool {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    !digits.is_empty()
        && digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && digits.parse::<f64>().is_ok()
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let at = self.chars.byte(mark.index());
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents == 2 {
                    let sp = self.point(at);
                    self.error(
                        sp,
                        "more than one YAML document",
                        "a second document starts here",
                        "a configuration file holds one document; remove the \"---\" separator and what follows",
                    );
                }
            }
            _ if self.documents > 1 => {}
            Event::MappingStart(anchor, tag) => {
                let flow = self.text.as_bytes().get(at) == Some(&b'{');
                let sp = self.point(at);
                if self.skip == 0 {
                    self.check_anchor(anchor, at);
                    self.check_tag(tag.as_ref(), at);
                }
                self.start_collection(
                    Frame::Map {
                        entries: Vec::new(),
                        pending: None,
                        start: at,
                        open: flow.then_some(sp),
                        flow,
                    },
                    at,
                );
            }
            Event::SequenceStart(anchor, tag) => {
                let flow = self.text.as_bytes().get(at) == Some(&b'[');
                if self.skip == 0 {
                    self.check_anchor(anchor, at);
                    self.check_tag(tag.as_ref(), at);
                }
                self.start_collection(
                    Frame::Seq {
                        items: Vec::new(),
                        start: at,
                        flow,
                    },
                    at,
                );
            }
            Event::MappingEnd | Event::SequenceEnd => self.end_collection(at),
            Event::Scalar(value, style, anchor, tag) => {
                if self.skip == 0 {
                    self.scalar(value, style, anchor, tag, at);
                }
            }
            Event::Alias(_) => {
                if self.skip == 0 {
                    let rest = self.text.get(at..).unwrap_or("");
                    let len = rest
                        .find(|c: char| {
                            c.is_whitespace() || matches!(c, ',' | '[' | ']' | '{' | '}')
                        })
                        .unwrap_or(rest.len());
                    let sp = self.span(at, at + len);
                    self.error(
                        sp,
                        "YAML aliases are not supported",
                        "an alias",
                        "write the value out in full here",
                    );
                    self.add(Node {
                        value: Value::Invalid,
                        span: sp,
                    });
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
}
