//! JSON and YAML front ends (same directive tree as the NGINX-style parser), the JSON Schema,
//! and converters back to every format.
//!
//! The document is typed, not a generic directive list: each context is an object whose keys
//! are the directives allowed there (by [`crate::directives::TABLE`]) plus structural keys —
//! `events` and `http` (objects), `servers` (array of server objects), `upstreams` (name →
//! upstream object), `types` (MIME type → extension or array of extensions), `locations`
//! (array of location objects, each with a `match` such as `"~* \\.png$"` or `"@fallback"`).
//! A directive's value is `true` when it takes no arguments, a scalar for one argument, an
//! array for several; a repeatable directive takes an array of entries, each a scalar or an
//! array of arguments. Flags may be booleans. A server or location may hold its
//! rewrite-module directives in order in `script` (`[{ "set": ["$a", "1"] }, { "return": 204 }]`);
//! an `if` is written only there, `{ "if": { "condition": ["$a", "=", "1"], … } }` (the words
//! between nginx's parentheses, then the block's directives), and `limit_except` is a
//! location key, `"limit_except": { "methods": ["GET"], "deny": "all" }`.
//! See [`schema`] for the full shape.
//!
//! Readers report every shape problem with the span of the key or value at fault
//! ([`crate::diagnostics::Code::Document`]) and never panic on their input; what the table
//! check judges (wrong context, unsupported, arity, values) is left to it, so JSON, YAML and
//! `.conf` files get the same messages for the same mistakes. Nothing here reads files (the
//! caller registers the text in the `SourceMap`), and documents have no `include`.
//!
//! Module map: `node` (spanned JSON/YAML value) ← `json` / `yaml` (readers) → `document`
//! (value → directives); `shape` (the document vocabulary, from the table); `write` (directives
//! → JSON/YAML), `conf` (directives → NGINX-style text), `schema` (JSON Schema).

mod arg_types;
mod conf;
mod crossplane;
mod document;
mod json;
mod layout;
mod node;
mod schema;
mod shape;
mod write;
mod yaml;

pub use conf::to_conf_string;
pub use crossplane::{from_crossplane, to_crossplane};
pub use layout::format_conf;
pub use schema::{schema, schema_string, Document, SCHEMA_ID};

use crate::ast::Directive;
use crate::diagnostics::Diagnostics;
use crate::source::FileId;
use std::path::Path;

/// The document formats besides NGINX-style text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    Json,
    Yaml,
}

/// The document format of a file by its extension (`.json`, `.yaml`, `.yml`; any case), or
/// `None` for NGINX-style text.
pub fn format_of(path: &Path) -> Option<DocFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "json" => Some(DocFormat::Json),
        "yaml" | "yml" => Some(DocFormat::Yaml),
        _ => None,
    }
}

/// Reads a JSON or YAML document into the directive tree. Problems go to `diags` (all of
/// them, each with a span in `file`); what could be read is returned.
pub fn parse_document(
    file: FileId,
    text: &str,
    format: DocFormat,
    diags: &mut Diagnostics,
) -> Vec<Directive> {
    let root = match format {
        DocFormat::Json => json::read(file, text, diags),
        DocFormat::Yaml => yaml::read(file, text, diags),
    };
    document::build(root, diags)
}

/// The first directive (depth first) that cannot be written as JSON/YAML, with the reason:
/// an `if` whose condition is not in parentheses, or an `if` outside a server or location
/// (nginx refuses both, but convert does not compile the config; the document form has only
/// the words between the parentheses, and a `script` only in servers and locations).
pub fn without_document_form(tree: &[Directive]) -> Option<(&Directive, &'static str)> {
    fn walk<'t>(tree: &'t [Directive], parent: &str) -> Option<(&'t Directive, &'static str)> {
        tree.iter().find_map(|d| {
            if d.name == shape::IF && d.block.is_some() {
                if !matches!(parent, "server" | "location" | shape::IF) {
                    return Some((d, "an if belongs in a server or location"));
                }
                let args: Vec<&str> = d.values().collect();
                if shape::condition_words(&args).is_none() {
                    return Some((d, "its condition is not in parentheses"));
                }
            }
            walk(d.children(), &d.name)
        })
    }
    walk(tree, "")
}

/// The tree as the typed document.
///
/// The tree should have passed the table check (`include`s expanded). Directives are grouped
/// by name, in the order each name first appears in its block, except the rewrite-module
/// directives (`rewrite`, `return`, `set`, `break`, `if`) of a server, location or `if` that
/// has more than one kind of them or an `if`: those go, in order, in the block's `script`
/// list, because nginx runs them
/// in the order written (`set $a 1; return 200 $a; set $a 2;` must not become
/// `set $a 1; set $a 2; return 200 $a;`). Limitations of the grouping, none of which changes
/// what the config means: a non-repeatable directive written twice (an error anyway) keeps
/// its first value; a MIME type listed twice in `types` gets the extensions of both lines.
/// Comments are not kept.
///
/// Object keys of the returned value are in serde_json's map order (sorted, unless serde_json's
/// `preserve_order` feature is on); [`to_json_string`] and [`to_yaml_string`] always keep the
/// document order.
pub fn to_json(tree: &[Directive]) -> serde_json::Value {
    write::document(tree).to_value()
}

/// The tree as pretty JSON text (2-space indentation, short arrays on one line, trailing
/// newline), keys in document order. Same limitations as [`to_json`].
pub fn to_json_string(tree: &[Directive]) -> String {
    write::json_text(&write::document(tree))
}

/// The tree as YAML text (block style, argument arrays in flow style, strings quoted where
/// YAML 1.1 or 1.2 would read them as something else). Same limitations as [`to_json`].
pub fn to_yaml_string(tree: &[Directive]) -> String {
    write::yaml_text(&write::document(tree))
}
