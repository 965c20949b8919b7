//! Directive tree → the typed document, as a `serde_json::Value`, as pretty JSON text, or as
//! YAML text. The document keeps the order in which keys first appear in each block; the
//! JSON and YAML text writers keep it too (a `serde_json::Value` keeps it only when
//! serde_json's `preserve_order` feature is on).

use super::arg_types::Numbers;
use super::shape::{
    condition_words, has_script, is_script_directive, key_of, spec_for, structure_of, DocCtx,
    Structure, ValueShape, CONDITION_KEY, IF, MAP_ENTRIES_KEY, MAP_SOURCE_KEY, MATCH_KEY,
    METHODS_KEY, SCRIPT_KEY, TABLE_ARGS_KEY, TABLE_ENTRIES_KEY,
};
use crate::ast::Directive;
use crate::directives::{Spec, TABLE};

/// A document value with ordered objects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    Str(String),
    /// A canonical non-negative decimal integer (written as a number).
    Int(u64),
    Bool(bool),
    Arr(Vec<Out>),
    Obj(Vec<(String, Out)>),
}

impl Out {
    fn is_scalar(&self) -> bool {
        !matches!(self, Out::Arr(_) | Out::Obj(_))
    }

    /// Scalars, or arrays of scalars: written on one line.
    fn is_flat(&self) -> bool {
        match self {
            Out::Arr(items) => items.iter().all(Out::is_scalar),
            other => other.is_scalar(),
        }
    }

    /// A JSON value (object key order as serde_json's map keeps it).
    pub(crate) fn to_value(&self) -> serde_json::Value {
        use serde_json::Value as V;
        match self {
            Out::Str(s) => V::String(s.clone()),
            Out::Int(n) => V::Number((*n).into()),
            Out::Bool(b) => V::Bool(*b),
            Out::Arr(items) => V::Array(items.iter().map(Out::to_value).collect()),
            Out::Obj(entries) => V::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// An object being built: entries in first-appearance order.
#[derive(Default)]
struct Obj {
    entries: Vec<(String, Out)>,
}

impl Obj {
    fn get_mut(&mut self, key: &str) -> Option<&mut Out> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Sets `key` unless it is already set (a duplicate non-repeatable directive keeps the first).
    fn set(&mut self, key: &str, v: Out) {
        if self.get_mut(key).is_none() {
            self.entries.push((key.to_string(), v));
        }
    }

    /// Appends to the array under `key`.
    fn push(&mut self, key: &str, v: Out) {
        match self.get_mut(key) {
            Some(Out::Arr(items)) => items.push(v),
            Some(_) => {}
            None => self.entries.push((key.to_string(), Out::Arr(vec![v]))),
        }
    }

    /// Adds `name: v` to the object under `key`.
    fn insert_in(&mut self, key: &str, name: &str, v: Out) {
        if self.get_mut(key).is_none() {
            self.entries.push((key.to_string(), Out::Obj(Vec::new())));
        }
        if let Some(Out::Obj(entries)) = self.get_mut(key) {
            if !entries.iter().any(|(k, _)| k == name) {
                entries.push((name.to_string(), v));
            }
        }
    }
}

/// The whole tree (main context) as a document.
pub(crate) fn document(tree: &[Directive]) -> Out {
    document_in(tree, DocCtx::Main)
}

/// The directives of one block of context `ctx` as an object.
pub(crate) fn document_in(tree: &[Directive], ctx: DocCtx) -> Out {
    Out::Obj(block(tree, ctx))
}

/// How the block directive `d` is written in `ctx`.
fn structure_in(name: &str, ctx: DocCtx) -> Option<(&'static Spec, Structure)> {
    let spec = spec_for(name, ctx)
        .filter(|s| structure_of(s).is_some())
        .or_else(|| {
            TABLE
                .iter()
                .find(|s| s.name == name && structure_of(s).is_some())
        })?;
    structure_of(spec).map(|st| (spec, st))
}

/// Whether the rewrite-module directives of a block go in `script`: when there are two
/// different ones, their relative order matters (`set $a 1; return 200 $a; set $a 2;`) and
/// one key per name would lose it; and always when there is an `if`, which is written only
/// there. A block with one kind only (a lone `return`, a list of `rewrite`s) keeps the plain
/// keys.
fn needs_script(tree: &[Directive], ctx: DocCtx) -> bool {
    if !has_script(ctx) {
        return false;
    }
    if tree.iter().any(is_if) {
        return true;
    }
    let mut names = tree
        .iter()
        .filter(|d| d.block.is_none() && is_script_directive(&d.name))
        .map(|d| d.name.as_str());
    let Some(first) = names.next() else {
        return false;
    };
    names.any(|n| n != first)
}

fn block(tree: &[Directive], ctx: DocCtx) -> Vec<(String, Out)> {
    let mut obj = Obj::default();
    let script = needs_script(tree, ctx);
    for d in tree {
        if script && is_if(d) {
            obj.push(
                SCRIPT_KEY,
                Out::Obj(vec![(IF.to_string(), if_object(d, ctx))]),
            );
            continue;
        }
        if script && d.block.is_none() && is_script_directive(&d.name) {
            // One line per entry: `{ "set": ["$a", "1"] }`.
            let shape = ValueShape {
                repeat: false,
                ..ValueShape::of(spec_for(&d.name, ctx))
            };
            obj.push(SCRIPT_KEY, Out::Obj(vec![(d.name.clone(), line(d, shape))]));
            continue;
        }
        match (&d.block, structure_in(&d.name, ctx)) {
            (Some(children), Some((spec, st))) => {
                let inner = DocCtx::of_block(spec.name, ctx).unwrap_or(ctx);
                let key = key_of(spec, st);
                match st {
                    Structure::Object => obj.set(&d.name, Out::Obj(block(children, inner))),
                    Structure::List => obj.push(&key, Out::Obj(block(children, inner))),
                    Structure::Named => {
                        let name = d.args.first().map_or("", |a| a.value.as_str());
                        obj.insert_in(&key, name, Out::Obj(block(children, inner)));
                    }
                    Structure::Matched => {
                        let m = d.values().collect::<Vec<_>>().join(" ");
                        let mut entries = vec![(MATCH_KEY.to_string(), Out::Str(m))];
                        entries.extend(block(children, inner));
                        obj.push(&key, Out::Obj(entries));
                    }
                    Structure::Types => types(children, &mut obj, &d.name),
                    Structure::Table => obj.push(&key, table_object(d, children)),
                    Structure::Map => {
                        let var = d.args.get(1).map_or("", |a| a.value.as_str());
                        obj.insert_in(&key, var, map_object(d, children));
                    }
                    Structure::Methods => {
                        let methods = d.values().map(|m| Out::Str(m.to_string())).collect();
                        let mut entries = vec![(METHODS_KEY.to_string(), Out::Arr(methods))];
                        entries.extend(block(children, inner));
                        obj.set(&d.name, Out::Obj(entries));
                    }
                }
            }
            (Some(children), None) => {
                // Not a block Proton knows: kept as an object so nothing is silently lost.
                obj.set(&d.name, Out::Obj(block(children, ctx)));
            }
            (None, _) => {
                let shape =
                    ValueShape::of(spec_for(&d.name, ctx).filter(|s| structure_of(s).is_none()));
                let v = line(d, shape);
                if shape.repeat {
                    obj.push(&d.name, v);
                } else {
                    obj.set(&d.name, v);
                }
            }
        }
    }
    obj.entries
}

/// An `if` with its block (the only form `if` has).
fn is_if(d: &Directive) -> bool {
    d.name == IF && d.block.is_some()
}

/// `if ($a = 1) { … }` → `{ "condition": ["$a", "=", 1], … }`, the block's directives as in
/// any other object (with their own `script`). A condition not in parentheses (nginx refuses
/// it; [`super::without_document_form`] finds it first) is written as its arguments.
fn if_object(d: &Directive, ctx: DocCtx) -> Out {
    let args: Vec<&str> = d.values().collect();
    let words = condition_words(&args).unwrap_or(args);
    let condition = words.iter().map(|w| scalar(w, false)).collect();
    let mut entries = vec![(CONDITION_KEY.to_string(), Out::Arr(condition))];
    let inner = DocCtx::of_block(IF, ctx).unwrap_or(ctx);
    entries.extend(block(d.children(), inner));
    Out::Obj(entries)
}

/// `types { mime ext…; }` → `"types": { "mime": ext | [ext, …] }`; a MIME type listed twice
/// gets the extensions of both lines.
fn types(children: &[Directive], obj: &mut Obj, key: &str) {
    let mut map: Vec<(String, Vec<String>)> = Vec::new();
    for c in children {
        let exts = c.values().map(str::to_string);
        match map.iter_mut().find(|(m, _)| *m == c.name) {
            Some((_, v)) => v.extend(exts),
            None => map.push((c.name.clone(), exts.collect())),
        }
    }
    let entries = map
        .into_iter()
        .map(|(mime, mut exts)| {
            let v = if exts.len() == 1 {
                Out::Str(exts.remove(0))
            } else {
                Out::Arr(exts.into_iter().map(Out::Str).collect())
            };
            (mime, v)
        })
        .collect();
    obj.set(key, Out::Obj(entries));
}

/// `map SOURCE $var { key value; … }` → `{ "source": "SOURCE", "entries": { "key": "value" } }`
/// (a line without value, such as `hostnames;`, is `true`).
/// A [`Structure::Table`] block: its arguments, and each line as an array of its words.
fn table_object(d: &Directive, children: &[Directive]) -> Out {
    let words = |name: Option<&str>, args: &[crate::ast::Arg]| {
        Out::Arr(
            name.into_iter()
                .map(str::to_string)
                .chain(args.iter().map(|a| a.value.clone()))
                .map(Out::Str)
                .collect(),
        )
    };
    let lines = children
        .iter()
        .map(|c| words(Some(&c.name), &c.args))
        .collect();
    Out::Obj(vec![
        (TABLE_ARGS_KEY.to_string(), words(None, &d.args)),
        (TABLE_ENTRIES_KEY.to_string(), Out::Arr(lines)),
    ])
}

fn map_object(d: &Directive, children: &[Directive]) -> Out {
    let source = d.args.first().map_or("", |a| a.value.as_str());
    let shape = ValueShape {
        flag: false,
        zero: true,
        repeat: false,
        numbers: Numbers::ANY,
    };
    let lines = children
        .iter()
        .map(|c| (c.name.clone(), line(c, shape)))
        .collect();
    Out::Obj(vec![
        (MAP_SOURCE_KEY.to_string(), Out::Str(source.to_string())),
        (MAP_ENTRIES_KEY.to_string(), Out::Obj(lines)),
    ])
}

/// One directive line: `true` (no arguments), a scalar (one), or an array (several). An
/// argument is a number only where the directive's syntax lets a number stand
/// ([`Numbers`]): `"root": "5"`, but `"keepalive_timeout": 65`.
fn line(d: &Directive, shape: ValueShape) -> Out {
    let arg = |i: usize, v: &str| {
        if shape.numbers.at(i) {
            scalar(v, shape.flag)
        } else {
            Out::Str(v.to_string())
        }
    };
    match d.args.as_slice() {
        [] if shape.zero => Out::Bool(true),
        [a] => arg(0, &a.value),
        args => Out::Arr(
            args.iter()
                .enumerate()
                .map(|(i, a)| arg(i, &a.value))
                .collect(),
        ),
    }
}

fn scalar(v: &str, flag: bool) -> Out {
    match v {
        "on" if flag => Out::Bool(true),
        "off" if flag => Out::Bool(false),
        _ => match canonical_int(v) {
            Some(n) => Out::Int(n),
            None => Out::Str(v.to_string()),
        },
    }
}

/// `0` or a decimal without a leading zero that fits in 53 bits (so every JSON reader keeps it).
fn canonical_int(v: &str) -> Option<u64> {
    if v.is_empty()
        || v.len() > 15
        || !v.bytes().all(|b| b.is_ascii_digit())
        || (v.len() > 1 && v.starts_with('0'))
    {
        return None;
    }
    v.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// JSON text

/// Widest line the writers put a flat array on.
const WIDTH: usize = 100;

pub(crate) fn json_text(doc: &Out) -> String {
    let mut s = String::new();
    json_value(doc, 0, &mut s);
    s.push('\n');
    s
}

fn json_value(v: &Out, indent: usize, s: &mut String) {
    match v {
        Out::Str(t) => json_str(t, s),
        Out::Int(n) => s.push_str(&n.to_string()),
        Out::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
        Out::Arr(items) => {
            if items.is_empty() {
                s.push_str("[]");
                return;
            }
            let inline = items
                .iter()
                .all(Out::is_flat)
                .then(|| json_inline(v))
                .filter(|t| indent + t.len() <= WIDTH);
            if let Some(t) = inline {
                s.push_str(&t);
                return;
            }
            s.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                spaces(indent + 2, s);
                // A one-key object of a flat value (an entry of `script`) on one line.
                let short = match item {
                    Out::Obj(e) if e.len() == 1 && e[0].1.is_flat() => {
                        let mut t = String::from("{ ");
                        json_str(&e[0].0, &mut t);
                        t.push_str(": ");
                        t.push_str(&json_inline(&e[0].1));
                        t.push_str(" }");
                        Some(t).filter(|t| indent + 2 + t.len() <= WIDTH)
                    }
                    _ => None,
                };
                match short {
                    Some(t) => s.push_str(&t),
                    None => json_value(item, indent + 2, s),
                }
                s.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            spaces(indent, s);
            s.push(']');
        }
        Out::Obj(entries) => {
            if entries.is_empty() {
                s.push_str("{}");
                return;
            }
            s.push_str("{\n");
            for (i, (k, item)) in entries.iter().enumerate() {
                spaces(indent + 2, s);
                json_str(k, s);
                s.push_str(": ");
                json_value(item, indent + 2, s);
                s.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
            }
            spaces(indent, s);
            s.push('}');
        }
    }
}

/// A flat value on one line.
fn json_inline(v: &Out) -> String {
    let mut s = String::new();
    match v {
        Out::Arr(items) => {
            s.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&json_inline(item));
            }
            s.push(']');
        }
        other => json_value(other, 0, &mut s),
    }
    s
}

fn json_str(t: &str, s: &mut String) {
    s.push('"');
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
}

fn spaces(n: usize, s: &mut String) {
    for _ in 0..n {
        s.push(' ');
    }
}

// ---------------------------------------------------------------------------------------------
// YAML text

pub(crate) fn yaml_text(doc: &Out) -> String {
    let mut s = String::new();
    match doc {
        Out::Obj(entries) if !entries.is_empty() => yaml_entries(entries, 0, &mut s),
        other => {
            s.push_str(&yaml_inline(other));
            s.push('\n');
        }
    }
    s
}

/// The entries of an object, each on its own line at `indent`.
fn yaml_entries(entries: &[(String, Out)], indent: usize, s: &mut String) {
    for (k, v) in entries {
        spaces(indent, s);
        s.push_str(&yaml_scalar(k));
        s.push(':');
        yaml_after_key(v, indent, s);
    }
}

/// A value after `key:` (on the same line when flat, else on the following lines).
fn yaml_after_key(v: &Out, indent: usize, s: &mut String) {
    match v {
        Out::Obj(entries) if !entries.is_empty() => {
            s.push('\n');
            yaml_entries(entries, indent + 2, s);
        }
        Out::Arr(items) if !items.is_empty() => {
            let t = yaml_inline(v);
            if items.iter().all(Out::is_flat) && indent + t.len() <= WIDTH {
                s.push(' ');
                s.push_str(&t);
                s.push('\n');
            } else {
                s.push('\n');
                yaml_items(items, indent + 2, s);
            }
        }
        other => {
            s.push(' ');
            s.push_str(&yaml_inline(other));
            s.push('\n');
        }
    }
}

/// The items of a block sequence at `indent`.
fn yaml_items(items: &[Out], indent: usize, s: &mut String) {
    for item in items {
        match item {
            Out::Obj(entries) if !entries.is_empty() => {
                // `- first: …` then the other keys aligned under `first`.
                let mut body = String::new();
                yaml_entries(entries, indent + 2, &mut body);
                spaces(indent, s);
                s.push_str("- ");
                s.push_str(body.get(indent + 2..).unwrap_or(""));
            }
            Out::Arr(inner) if !item.is_flat() && !inner.is_empty() => {
                spaces(indent, s);
                s.push_str("-\n");
                yaml_items(inner, indent + 2, s);
            }
            other => {
                spaces(indent, s);
                s.push_str("- ");
                s.push_str(&yaml_inline(other));
                s.push('\n');
            }
        }
    }
}

/// A value in flow style (`[a, b]`, `{}`), or a scalar.
fn yaml_inline(v: &Out) -> String {
    match v {
        Out::Str(t) => yaml_scalar(t),
        Out::Int(n) => n.to_string(),
        Out::Bool(b) => if *b { "true" } else { "false" }.to_string(),
        Out::Arr(items) => format!(
            "[{}]",
            items.iter().map(yaml_inline).collect::<Vec<_>>().join(", ")
        ),
        Out::Obj(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", yaml_scalar(k), yaml_inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A string as a YAML scalar: plain when every YAML reader reads it back as this string (in
/// block and flow context alike), else double-quoted.
fn yaml_scalar(t: &str) -> String {
    if !yaml_needs_quotes(t) {
        return t.to_string();
    }
    let mut s = String::with_capacity(t.len() + 2);
    s.push('"');
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                s.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Strings YAML would read as something else (a number, boolean, null — YAML 1.1 spellings
/// included), or that hold characters with a meaning in YAML.
fn yaml_needs_quotes(t: &str) -> bool {
    const WORDS: &[&str] = &[
        "true", "false", "True", "False", "TRUE", "FALSE", "null", "Null", "NULL", "~", "y", "Y",
        "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
    ];
    t.is_empty()
        || t.starts_with(' ')
        || t.ends_with(' ')
        || t.starts_with([
            '&', '*', '?', '|', '-', '<', '>', '=', '!', '%', '@', '.', '`',
        ])
        || t.contains([':', '{', '}', '[', ']', ',', '#', '`', '"', '\'', '\\'])
        || t.contains(|c: char| {
            c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{feff}')
        })
        || WORDS.contains(&t)
        || t.starts_with("0x")
        || t.starts_with("0o")
        || t.starts_with('+')
        || t.parse::<f64>().is_ok()
        || t.parse::<i64>().is_ok()
}
