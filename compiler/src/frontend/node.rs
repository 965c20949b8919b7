//! A spanned JSON/YAML value: what the JSON and YAML readers produce and the document reader
//! turns into directives. Keeps key order and the exact source range of every key and value.

use crate::source::Span;

/// Deepest nesting of objects and arrays accepted (serde_json's own limit is 128).
pub(crate) const MAX_DEPTH: usize = 64;

/// One value with its source range.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub value: Value,
    /// From the first to the last character of the value.
    pub span: Span,
}

/// What a node holds.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// An object (mapping), keys in source order.
    Map {
        entries: Vec<(Key, Node)>,
        /// The opening `{`, or the first key of a YAML block mapping.
        open: Span,
    },
    /// An array (sequence).
    Seq(Vec<Node>),
    Scalar(Scalar),
    /// Already reported (an alias, nesting too deep…): skipped without further errors.
    Invalid,
}

/// An object key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub text: String,
    pub span: Span,
}

/// A string, number, boolean or null.
#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    /// The value: decoded string, number as written, `true`/`false`, or empty for null.
    pub text: String,
    pub ty: ScalarType,
    /// Byte offset where `text` appears verbatim in the source (no escapes), if it does; lets
    /// a part of the value (a location modifier) get its own span.
    pub verbatim: Option<usize>,
}

/// The type of a scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarType {
    Str,
    Num,
    Bool(bool),
    Null,
}

impl Node {
    /// What the value is, for messages ("an array", "a string"…).
    pub(crate) fn describe(&self) -> &'static str {
        match &self.value {
            Value::Map { .. } => "an object",
            Value::Seq(_) => "an array",
            Value::Scalar(s) => match s.ty {
                ScalarType::Str => "a string",
                ScalarType::Num => "a number",
                ScalarType::Bool(_) => "a boolean",
                ScalarType::Null => "null",
            },
            Value::Invalid => "an invalid value",
        }
    }
}
