//! The spanned directive tree every front end produces: the NGINX-style parser, and the JSON
//! and YAML readers. Checks and lowering only ever see this.

use crate::source::Span;

/// Deepest block nesting accepted in any format. The NGINX-style reader refuses deeper text
/// before parsing it (one error at the first `{` too deep), `include` expansion refuses to
/// nest files deeper, and every walker over the tree stops at this depth, so no input can
/// exhaust the stack.
pub const MAX_BLOCK_DEPTH: usize = 256;

/// How an argument was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    Bare,
    Single,
    Double,
}

/// One argument, unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub value: String,
    pub quote: Quote,
    pub span: Span,
}

/// A directive with its arguments and optional block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub name_span: Span,
    pub args: Vec<Arg>,
    pub block: Option<Vec<Directive>>,
    /// From the name to the `;` or the closing `}`.
    pub span: Span,
}

impl Directive {
    /// The argument values as string slices.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.args.iter().map(|a| a.value.as_str())
    }

    /// The span of argument `i`, or of the name when there is none.
    pub fn arg_span(&self, i: usize) -> Span {
        self.args.get(i).map_or(self.name_span, |a| a.span)
    }

    /// The block's directives (empty for a simple directive).
    pub fn children(&self) -> &[Directive] {
        self.block.as_deref().unwrap_or(&[])
    }
}
