//! The JSON payload of nginx's `crossplane` tool (`crossplane parse` writes it, `crossplane
//! build` reads it), both ways:
//!
//! ```json
//! { "status": "ok", "errors": [], "config": [ { "file": "nginx.conf", "status": "ok", "errors": [],
//!   "parsed": [ { "directive": "listen", "line": 3, "args": ["8080"] },
//!               { "directive": "location", "line": 4, "args": ["/"], "block": [ … ] } ] } ] }
//! ```
//!
//! Every argument is a string, as crossplane keeps it: nginx's escapes (`\n`, `\\`) as
//! written, the quotes taken off. An `if`'s arguments are the words between its parentheses
//! (`["$a", "=", "1"]` for `if ($a = 1)`), as crossplane writes them. Protonc writes one
//! config with the includes already in place and each directive's own `file` (crossplane's
//! `--combine` form). It reads that form and crossplane's default one, where an `include`
//! lists in `includes` the configs it read (they are put in its place, as nginx does);
//! comments (`"directive": "#"`) are skipped, as the tree has no place for them. A payload
//! that records parse errors is refused. Every shape problem is reported with the line and
//! column of the JSON value at fault.

use super::document::parenthesised;
use super::json;
use super::node::{Key, Node, ScalarType, Value};
use super::shape::{condition_words, IF};
use crate::ast::{Arg, Directive, Quote};
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, SourceMap, Span};
use crate::syntax::unescape;
use serde_json::json;

/// Deepest chain of `includes` followed (a payload may list a cycle).
const MAX_INCLUDE_DEPTH: usize = 32;

/// The tree as a crossplane payload: one config, named `main`, holding every directive with
/// the file and line it came from.
pub fn to_crossplane(tree: &[Directive], map: &SourceMap, main: &str) -> serde_json::Value {
    json!({
        "status": "ok",
        "errors": [],
        "config": [{
            "file": main,
            "status": "ok",
            "errors": [],
            "parsed": directives(tree, map),
        }],
    })
}

fn directives(tree: &[Directive], map: &SourceMap) -> serde_json::Value {
    let list = tree
        .iter()
        .map(|d| {
            let values: Vec<&str> = d.values().collect();
            let words = match (&d.block, d.name == IF) {
                (Some(_), true) => condition_words(&values).unwrap_or(values),
                _ => values,
            };
            let args: Vec<String> = words.into_iter().map(escaped).collect();
            let mut o = serde_json::Map::new();
            o.insert("directive".into(), json!(escaped(&d.name)));
            if let Some(p) = map.path(d.name_span.file) {
                o.insert("file".into(), json!(p.display().to_string()));
            }
            o.insert("line".into(), json!(map.line(d.name_span)));
            o.insert("args".into(), json!(args));
            if let Some(children) = &d.block {
                o.insert("block".into(), directives(children, map));
            }
            serde_json::Value::Object(o)
        })
        .collect();
    serde_json::Value::Array(list)
}

/// Reads a crossplane payload into the directive tree. Problems go to `diags`, each with
/// the span of the JSON value at fault.
pub fn from_crossplane(file: FileId, text: &str, diags: &mut Diagnostics) -> Vec<Directive> {
    let Some(root) = json::read(file, text, diags) else {
        return Vec::new();
    };
    let mut r = Reader {
        diags,
        configs: Vec::new(),
    };
    let Some(top) = r.object(&root, "the payload") else {
        return Vec::new();
    };
    r.refuse_errors(top, "the payload");
    let Some(configs) = r.field(&root, top, "config") else {
        return Vec::new();
    };
    let Value::Seq(configs) = &configs.value else {
        r.wrong(configs, "\"config\" must be an array of configs");
        return Vec::new();
    };
    if configs.is_empty() {
        r.wrong(&root, "\"config\" holds no config");
        return Vec::new();
    }
    for c in configs {
        let Some(entries) = r.object(c, "a config") else {
            r.configs.push(None);
            continue;
        };
        r.refuse_errors(entries, "this config");
        let parsed = r.field(c, entries, "parsed").cloned();
        r.configs.push(parsed);
    }
    r.config(0, 0)
}

struct Reader<'d> {
    diags: &'d mut Diagnostics,
    /// The `parsed` list of each config.
    configs: Vec<Option<Node>>,
}

impl Reader<'_> {
    fn wrong(&mut self, at: &Node, message: &str) {
        self.diags.push(
            Diagnostic::error(Code::Document, at.span, message.to_string())
                .label(format!("found {}", at.describe()))
                .help("a crossplane payload is what `crossplane parse nginx.conf` prints: { \"config\": [ { \"file\": …, \"parsed\": [ { \"directive\": …, \"args\": [ … ], \"block\": [ … ] } ] } ] }"),
        );
    }

    fn object<'n>(&mut self, n: &'n Node, what: &str) -> Option<&'n [(Key, Node)]> {
        match &n.value {
            Value::Map { entries, .. } => Some(entries),
            Value::Invalid => None,
            _ => {
                self.wrong(n, &format!("{what} must be an object"));
                None
            }
        }
    }

    /// The value of `key` in `entries` (the object `n`), reported when missing.
    fn field<'n>(&mut self, n: &Node, entries: &'n [(Key, Node)], key: &str) -> Option<&'n Node> {
        let found = entries.iter().find(|(k, _)| k.text == key).map(|(_, v)| v);
        if found.is_none() {
            self.diags.push(
                Diagnostic::error(Code::Document, open_of(n), format!("missing \"{key}\""))
                    .label("in this object")
                    .help(format!("add \"{key}\"")),
            );
        }
        found
    }

    /// A payload or config whose `errors` list is not empty: crossplane could not parse it.
    fn refuse_errors(&mut self, entries: &[(Key, Node)], what: &str) {
        let Some((_, errors)) = entries.iter().find(|(k, _)| k.text == "errors") else {
            return;
        };
        if let Value::Seq(list) = &errors.value {
            if let Some(first) = list.first() {
                let text = match &first.value {
                    Value::Map { entries, .. } => entries
                        .iter()
                        .find(|(k, _)| k.text == "error")
                        .and_then(|(_, v)| match &v.value {
                            Value::Scalar(s) => Some(s.text.clone()),
                            _ => None,
                        })
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                self.diags.push(
                    Diagnostic::error(
                        Code::Document,
                        first.span,
                        format!("{what} records {} parse error(s): {text}", list.len()),
                    )
                    .label("crossplane's error")
                    .help("fix the nginx config and run crossplane parse again"),
                );
            }
        }
    }

    /// The directives of config `i`.
    fn config(&mut self, i: usize, depth: usize) -> Vec<Directive> {
        let Some(Some(parsed)) = self.configs.get(i).cloned() else {
            return Vec::new();
        };
        self.list(&parsed, depth)
    }

    fn list(&mut self, n: &Node, depth: usize) -> Vec<Directive> {
        let Value::Seq(items) = &n.value else {
            self.wrong(n, "a list of directives must be an array");
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            self.directive(item, depth, &mut out);
        }
        out
    }

    /// One directive object; an `include` with `includes` becomes the directives it read.
    fn directive(&mut self, n: &Node, depth: usize, out: &mut Vec<Directive>) {
        let Some(entries) = self.object(n, "a directive") else {
            return;
        };
        let Some(name_node) = self.field(n, entries, "directive") else {
            return;
        };
        let name = match &name_node.value {
            Value::Scalar(s) if s.ty == ScalarType::Str => unescape(&s.text),
            _ => {
                self.wrong(name_node, "\"directive\" must be a string");
                return;
            }
        };
        if name == "#" {
            return; // a comment
        }
        let mut args = Vec::new();
        if let Some((_, a)) = entries.iter().find(|(k, _)| k.text == "args") {
            match &a.value {
                Value::Seq(items) => {
                    for item in items {
                        match &item.value {
                            Value::Scalar(s) if s.ty == ScalarType::Str => {
                                args.push(arg(unescape(&s.text), item.span))
                            }
                            _ => self.wrong(item, "an argument must be a string"),
                        }
                    }
                }
                _ => self.wrong(a, "\"args\" must be an array of strings"),
            }
        }
        let includes = entries.iter().find(|(k, _)| k.text == "includes");
        if let (true, Some((_, inc))) = (name == "include", includes) {
            let Value::Seq(list) = &inc.value else {
                self.wrong(inc, "\"includes\" must be an array of config indexes");
                return;
            };
            if depth >= MAX_INCLUDE_DEPTH {
                self.wrong(inc, "includes nested too deeply (a cycle?)");
                return;
            }
            for idx in list {
                match &idx.value {
                    Value::Scalar(s) if s.ty == ScalarType::Num => match s.text.parse::<usize>() {
                        Ok(i) if i < self.configs.len() => {
                            let inner = self.config(i, depth + 1);
                            out.extend(inner);
                        }
                        _ => self.wrong(idx, "no config has this index"),
                    },
                    _ => self.wrong(idx, "an index of \"includes\" must be a number"),
                }
            }
            return;
        }
        let block = entries
            .iter()
            .find(|(k, _)| k.text == "block")
            .map(|(_, b)| self.list(b, depth));
        if name == IF && block.is_some() {
            args = parenthesised(args);
        }
        out.push(Directive {
            name,
            name_span: name_node.span,
            args,
            block,
            span: n.span,
        });
    }
}

/// An argument as crossplane holds it: the text between the quotes in nginx's syntax, escapes
/// and all (`\n`, `\\`), but a quote character as itself: `crossplane build` adds the quotes
/// (and escapes the one it picks), and nginx, protonc and [`unescape`] read back `value`.
fn escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    super::conf::push_escaped(&mut out, value, None, true);
    out
}

fn arg(value: String, span: Span) -> Arg {
    let quote = if super::conf::needs_quotes(&value) {
        Quote::Double
    } else {
        Quote::Bare
    };
    Arg { value, quote, span }
}

/// The span of an object's `{`.
fn open_of(n: &Node) -> Span {
    match &n.value {
        Value::Map { open, .. } => *open,
        _ => n.span,
    }
}
