//! The typed document (a [`Node`] from the JSON or YAML reader) → the same spanned
//! [`Directive`] tree the NGINX-style parser builds. Every shape problem is reported, with the
//! span of the offending key or value, and reading goes on; the table check then judges the
//! directives exactly as it judges a `.conf` file.

use super::arg_types::{placeholder, Numbers};
use super::conf::needs_quotes;
use super::node::{Key, Node, Scalar, ScalarType, Value};
use super::shape::{
    all_structurals, allowed_keys, has_script, is_script_directive, spec_for, split_match,
    structurals, structure_of, DocCtx, Structural, Structure, ValueShape, CONDITION_KEY, IF,
    MAP_ENTRIES_KEY, MAP_SOURCE_KEY, MATCH_KEY, METHODS_KEY, SCHEMA_KEY, SCRIPT_DIRECTIVES,
    SCRIPT_KEY, TABLE_ARGS_KEY, TABLE_ENTRIES_KEY,
};
use crate::ast::{Arg, Directive, Quote};
use crate::diagnostics::{did_you_mean, Code, Diagnostic, Diagnostics};
use crate::directives::{is_unsupported, Spec};
use crate::source::Span;
use std::collections::HashMap;

/// Builds the directive tree of a whole document (the main context).
pub(crate) fn build(root: Option<Node>, diags: &mut Diagnostics) -> Vec<Directive> {
    let Some(root) = root else {
        return Vec::new();
    };
    let mut b = Reader { diags };
    match &root.value {
        Value::Map { entries, .. } => b.context(entries, DocCtx::Main),
        Value::Scalar(Scalar {
            ty: ScalarType::Null,
            ..
        })
        | Value::Invalid => Vec::new(),
        _ => {
            b.diags.push(
                Diagnostic::error(Code::Document, root.span, "the document must be an object")
                    .label(format!("found {}", root.describe()))
                    .help("a Proton document is an object with keys such as \"worker_processes\", \"events\" and \"http\""),
            );
            Vec::new()
        }
    }
}

struct Reader<'d> {
    diags: &'d mut Diagnostics,
}

/// A directive spanning from its key to the end of its value.
fn directive(
    name: &str,
    key: Span,
    args: Vec<Arg>,
    block: Option<Vec<Directive>>,
    value: Span,
) -> Directive {
    Directive {
        name: name.to_string(),
        name_span: key,
        args,
        block,
        span: key.to(value),
    }
}

fn arg(value: String, span: Span) -> Arg {
    let quote = if needs_quotes(&value) {
        Quote::Double
    } else {
        Quote::Bare
    };
    Arg { value, quote, span }
}

impl Reader<'_> {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// The directives of one context object.
    fn context(&mut self, entries: &[(Key, Node)], ctx: DocCtx) -> Vec<Directive> {
        let structural = structurals(ctx);
        let mut out = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        // `script` and a rewrite-module directive as its own key: their order is ambiguous.
        let mut script_at: Option<Span> = None;
        let mut direct_at: Option<(&str, Span)> = None;
        for (key, value) in entries {
            let name = key.text.as_str();
            if let Some(first) = seen.get(name) {
                self.push(
                    Diagnostic::error(Code::Document, key.span, format!("duplicate key \"{name}\""))
                        .label("second occurrence")
                        .also(*first, "first here")
                        .help("a key may appear once per object; a repeatable directive takes an array of entries"),
                );
                continue;
            }
            seen.insert(name, key.span);
            if ctx == DocCtx::Location && name == MATCH_KEY {
                continue; // read by `location`
            }
            if matches!(ctx, DocCtx::IfServer | DocCtx::IfLocation) && name == CONDITION_KEY {
                continue; // read by `if`
            }
            if ctx == DocCtx::LimitExcept && name == METHODS_KEY {
                continue; // read by `limit_except`
            }
            if name == IF {
                let message = if has_script(ctx) {
                    format!("\"{IF}\" goes in \"{SCRIPT_KEY}\"")
                } else {
                    format!("\"{IF}\" is not allowed in {}", ctx.object())
                };
                self.push(
                    Diagnostic::error(Code::Document, key.span, message)
                        .label(format!("not a key of {}", ctx.object()))
                        .help(format!(
                            "an if runs where it stands among the rewrite-module directives of a server or location: write \"{SCRIPT_KEY}\": [ {{ \"{IF}\": {{ \"{CONDITION_KEY}\": [\"$arg_x\", \"=\", \"1\"], \"return\": 204 }} }} ]"
                        )),
                );
                continue;
            }
            if ctx == DocCtx::Main && name == SCHEMA_KEY {
                self.schema_reference(value);
                continue;
            }
            if has_script(ctx) && (name == SCRIPT_KEY || is_script_directive(name)) {
                // Reported once, at the second of the two kinds to appear.
                let conflict = if name == SCRIPT_KEY {
                    script_at = Some(key.span);
                    direct_at
                } else if direct_at.is_none() {
                    direct_at = Some((name, key.span));
                    script_at.and(direct_at)
                } else {
                    None
                };
                if let (Some(script), Some((direct, at))) = (script_at, conflict) {
                    self.push(
                        Diagnostic::error(
                            Code::Document,
                            at,
                            format!("\"{direct}\" beside \"{SCRIPT_KEY}\": the order of the two is not defined"),
                        )
                        .label("its own key")
                        .also(script, "the ordered list")
                        .help(format!("move it into \"{SCRIPT_KEY}\", where directives run in the order written: {{ \"{direct}\": … }}")),
                    );
                }
                if name == SCRIPT_KEY {
                    self.script(value, ctx, &mut out);
                    continue;
                }
            }
            if let Some(st) = structural.iter().find(|s| s.key == name) {
                self.structural(st, key, value, ctx, &mut out);
            } else if let Some(spec) = spec_for(name, ctx).filter(|s| structure_of(s).is_none()) {
                // Allowed here, or in another context (the table check reports that).
                self.plain(name, Some(spec), key, value, &mut out);
            } else if let Some(d) = self.misplaced_structure(name, key.span, ctx) {
                self.push(d);
            } else if is_unsupported(name) {
                // An nginx directive Proton lacks: the table check says so, as for .conf files.
                self.plain(name, None, key, value, &mut out);
            } else {
                self.unknown_key(key, ctx);
            }
        }
        out
    }

    /// `"$schema"`: for editors only, but it must be a string.
    fn schema_reference(&mut self, value: &Node) {
        if !matches!(&value.value, Value::Scalar(s) if s.ty == ScalarType::Str) {
            self.push(
                Diagnostic::error(
                    Code::Document,
                    value.span,
                    format!("\"{SCHEMA_KEY}\" must be a string"),
                )
                .label(format!("found {}", value.describe()))
                .help("give the path or URL of proton.schema.json, or leave the key out"),
            );
        }
    }

    fn unknown_key(&mut self, key: &Key, ctx: DocCtx) {
        let keys = allowed_keys(ctx);
        let mut d = Diagnostic::error(
            Code::Document,
            key.span,
            format!("unknown key \"{}\" in {}", key.text, ctx.object()),
        )
        .label(format!("not a directive of the {} context", ctx.name()));
        if key.text == "include" {
            d = d.help("JSON and YAML documents have no include: write the whole configuration in one document");
        } else if let Some(s) = did_you_mean(&key.text, keys.iter().map(|k| k.as_ref())) {
            d = d.help(format!("did you mean \"{s}\"?"));
        } else {
            d = d.help("schemas/proton.schema.json lists the keys of every object");
        }
        self.push(d);
    }

    /// A block directive's name or document key used where it does not belong.
    fn misplaced_structure(&self, name: &str, span: Span, ctx: DocCtx) -> Option<Diagnostic> {
        if let Some(st) = structurals(ctx).into_iter().find(|s| s.spec.name == name) {
            // `server` in http: the document writes `servers`.
            return Some(
                Diagnostic::error(
                    Code::Document,
                    span,
                    format!("\"{name}\" blocks are written as \"{}\"", st.key),
                )
                .label(format!("not a key of {}", ctx.object()))
                .help(format!("write {}", st.example())),
            );
        }
        let all = all_structurals();
        let matching: Vec<&(DocCtx, Structural)> = all
            .iter()
            .filter(|(_, s)| s.key == name || s.spec.name == name)
            .collect();
        let (_, st) = matching.first()?;
        let places: Vec<&str> = matching.iter().map(|(c, _)| c.name()).collect();
        Some(
            Diagnostic::error(
                Code::Document,
                span,
                format!("\"{name}\" is not allowed in {}", ctx.object()),
            )
            .label(format!("not allowed in the {} context", ctx.name()))
            .help(format!(
                "{} belongs in: {}",
                st.example(),
                places.join(", ")
            )),
        )
    }

    fn expect_object<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        example: &str,
    ) -> Option<&'n [(Key, Node)]> {
        match &node.value {
            Value::Map { entries, .. } => Some(entries),
            Value::Invalid => None,
            _ => {
                self.push(
                    Diagnostic::error(
                        Code::Document,
                        node.span,
                        format!("{what} must be an object"),
                    )
                    .label(format!("found {}", node.describe()))
                    .help(format!("write {example}")),
                );
                None
            }
        }
    }

    fn expect_array<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        example: &str,
    ) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            Value::Invalid => None,
            _ => {
                self.push(
                    Diagnostic::error(
                        Code::Document,
                        node.span,
                        format!("{what} must be an array"),
                    )
                    .label(format!("found {}", node.describe()))
                    .help(format!("write {example}")),
                );
                None
            }
        }
    }

    fn structural(
        &mut self,
        st: &Structural,
        key: &Key,
        value: &Node,
        ctx: DocCtx,
        out: &mut Vec<Directive>,
    ) {
        let name = st.spec.name;
        let example = st.example();
        let inner = st.inner(ctx);
        match st.structure {
            Structure::Object => {
                let Some(entries) = self.expect_object(value, &format!("\"{}\"", st.key), &example)
                else {
                    return;
                };
                let block = inner.map_or_else(Vec::new, |c| self.context(entries, c));
                out.push(directive(
                    name,
                    key.span,
                    Vec::new(),
                    Some(block),
                    value.span,
                ));
            }
            Structure::List => {
                let Some(items) = self.expect_array(value, &format!("\"{}\"", st.key), &example)
                else {
                    return;
                };
                for item in items {
                    let what = format!("each entry of \"{}\"", st.key);
                    let Some(entries) = self.expect_object(item, &what, &example) else {
                        continue;
                    };
                    let block = inner.map_or_else(Vec::new, |c| self.context(entries, c));
                    out.push(directive(
                        name,
                        open_of(item),
                        Vec::new(),
                        Some(block),
                        item.span,
                    ));
                }
            }
            Structure::Named => {
                let Some(entries) = self.expect_object(value, &format!("\"{}\"", st.key), &example)
                else {
                    return;
                };
                for (k, v) in entries {
                    let what = format!("\"{}\" in \"{}\"", k.text, st.key);
                    let Some(body) = self.expect_object(v, &what, &example) else {
                        continue;
                    };
                    let block = inner.map_or_else(Vec::new, |c| self.context(body, c));
                    let args = vec![arg(k.text.clone(), k.span)];
                    out.push(directive(name, k.span, args, Some(block), v.span));
                }
            }
            Structure::Matched => {
                let Some(items) = self.expect_array(value, &format!("\"{}\"", st.key), &example)
                else {
                    return;
                };
                for item in items {
                    let what = format!("each entry of \"{}\"", st.key);
                    let Some(entries) = self.expect_object(item, &what, &example) else {
                        continue;
                    };
                    let args = self.match_args(item, entries);
                    let block = inner.map_or_else(Vec::new, |c| self.context(entries, c));
                    if let Some(args) = args {
                        out.push(directive(name, open_of(item), args, Some(block), item.span));
                    }
                }
            }
            Structure::Types => {
                let Some(entries) = self.expect_object(value, &format!("\"{}\"", st.key), &example)
                else {
                    return;
                };
                let mut block = Vec::new();
                for (mime, exts) in entries {
                    let args = match &exts.value {
                        Value::Seq(items) => {
                            items.iter().filter_map(|n| self.type_ext(n)).collect()
                        }
                        _ => self.type_ext(exts).into_iter().collect(),
                    };
                    block.push(directive(&mime.text, mime.span, args, None, exts.span));
                }
                out.push(directive(
                    name,
                    key.span,
                    Vec::new(),
                    Some(block),
                    value.span,
                ));
            }
            Structure::Map => {
                let Some(entries) = self.expect_object(value, &format!("\"{}\"", st.key), &example)
                else {
                    return;
                };
                for (var, body) in entries {
                    let what = format!("\"{}\" in \"{}\"", var.text, st.key);
                    let Some(fields) = self.expect_object(body, &what, &example) else {
                        continue;
                    };
                    if let Some(d) = self.map_object(name, var, body, fields, &example) {
                        out.push(d);
                    }
                }
            }
            Structure::Table => {
                let Some(items) = self.expect_array(value, &format!("\"{}\"", st.key), &example)
                else {
                    return;
                };
                for item in items {
                    if let Some(d) = self.table_object(name, &st.key, item, &example) {
                        out.push(d);
                    }
                }
            }
            Structure::Methods => {
                let Some(entries) = self.expect_object(value, &format!("\"{}\"", st.key), &example)
                else {
                    return;
                };
                let args = self.words(value, entries, name, METHODS_KEY, "[\"GET\"]", &example);
                let block = inner.map_or_else(Vec::new, |c| self.context(entries, c));
                if let Some(args) = args {
                    out.push(directive(name, key.span, args, Some(block), value.span));
                }
            }
        }
    }

    /// The words under `field` of the object `node` (a string or an array of strings and
    /// numbers): the methods of `limit_except`, the condition of `if`.
    fn words(
        &mut self,
        node: &Node,
        entries: &[(Key, Node)],
        what: &str,
        field: &str,
        sample: &str,
        example: &str,
    ) -> Option<Vec<Arg>> {
        let Some((_, v)) = entries.iter().find(|(k, _)| k.text == field) else {
            self.push(
                Diagnostic::error(
                    Code::Document,
                    open_of(node),
                    format!("{what} without \"{field}\""),
                )
                .label("this object")
                .help(format!("add \"{field}\": {sample}, e.g. {example}")),
            );
            return None;
        };
        let shape = ValueShape {
            flag: false,
            zero: false,
            repeat: false,
            numbers: Numbers::ANY,
        };
        let args = self.entry(field, None, shape, v)?;
        if args.is_empty() {
            self.push(
                Diagnostic::error(Code::Document, v.span, format!("\"{field}\" is empty"))
                    .label("no words")
                    .help(format!("write \"{field}\": {sample}")),
            );
            return None;
        }
        Some(args)
    }

    /// One object of a [`Structure::Table`] key: `{ "args": [...], "entries": [[...], …] }`
    /// → `name args… { line; … }`.
    fn table_object(
        &mut self,
        name: &str,
        key: &str,
        item: &Node,
        example: &str,
    ) -> Option<Directive> {
        let what = format!("each entry of \"{key}\"");
        let fields = self.expect_object(item, &what, example)?;
        for (k, _) in fields {
            if k.text != TABLE_ARGS_KEY && k.text != TABLE_ENTRIES_KEY {
                self.push(
                    Diagnostic::error(
                        Code::Document,
                        k.span,
                        format!("unknown key \"{}\" in \"{key}\"", k.text),
                    )
                    .label("not a key of this object")
                    .help(format!(
                        "an entry of \"{key}\" has \"{TABLE_ARGS_KEY}\" and \"{TABLE_ENTRIES_KEY}\": {example}"
                    )),
                );
            }
        }
        let args = self.words(
            item,
            fields,
            &what,
            TABLE_ARGS_KEY,
            "[\"$variable\"]",
            example,
        )?;
        let words = ValueShape {
            flag: false,
            zero: false,
            repeat: false,
            numbers: super::arg_types::Numbers::ANY,
        };
        let mut block = Vec::new();
        if let Some((_, lines)) = fields.iter().find(|(k, _)| k.text == TABLE_ENTRIES_KEY) {
            let lines = self.expect_array(lines, &format!("\"{TABLE_ENTRIES_KEY}\""), example)?;
            for line in lines {
                let Some(mut line_words) = self.entry(TABLE_ENTRIES_KEY, None, words, line) else {
                    continue;
                };
                if line_words.is_empty() {
                    self.push(
                        Diagnostic::error(Code::Document, line.span, "an empty line")
                            .label("no words")
                            .help(
                                "write a line as an array of its words, e.g. [\"default\", \"0\"]",
                            ),
                    );
                    continue;
                }
                let first = line_words.remove(0);
                block.push(directive(
                    &first.value,
                    first.span,
                    line_words,
                    None,
                    line.span,
                ));
            }
        }
        Some(directive(name, open_of(item), args, Some(block), item.span))
    }

    /// `{ "if": { "condition": ["$a", "=", "1"], … } }` in `script` → `if ($a = 1) { … }`.
    fn if_entry(&mut self, key: &Key, v: &Node, ctx: DocCtx, out: &mut Vec<Directive>) {
        let example = format!(
            "{{ \"{IF}\": {{ \"{CONDITION_KEY}\": [\"$arg_x\", \"=\", \"1\"], \"return\": 204 }} }}"
        );
        let Some(entries) = self.expect_object(v, &format!("\"{IF}\""), &example) else {
            return;
        };
        let sample = "[\"$variable\", \"=\", \"value\"] (or \"~\", \"~*\", \"!~\", \"!~*\", \"!=\"; [\"-f\", \"$path\"]; [\"$variable\"])";
        let words = self.words(v, entries, IF, CONDITION_KEY, sample, &example);
        if let Some((_, c)) = entries.iter().find(|(k, _)| k.text == CONDITION_KEY) {
            if let Value::Scalar(s) = &c.value {
                if s.text.contains([' ', '\t', '\n']) {
                    self.push(
                        Diagnostic::error(
                            Code::Document,
                            c.span,
                            "a condition written as one string with spaces",
                        )
                        .label("one string")
                        .help(format!(
                            "write the words between nginx's parentheses as an array: [\"$a\", \"=\", \"1\"] for ($a = 1), e.g. {example}"
                        )),
                    );
                    return;
                }
            }
        }
        let inner = DocCtx::of_block(IF, ctx).unwrap_or(ctx);
        let block = self.context(entries, inner);
        if let Some(words) = words {
            out.push(directive(
                IF,
                key.span,
                parenthesised(words),
                Some(block),
                v.span,
            ));
        }
    }

    /// `"script": [ { "set": ["$a", "1"] }, { "return": 204 }, … ]`: rewrite-module
    /// directives in the order they run, one object with one key per line.
    fn script(&mut self, value: &Node, ctx: DocCtx, out: &mut Vec<Directive>) {
        let example = format!(
            "\"{SCRIPT_KEY}\": [ {{ \"set\": [\"$a\", \"1\"] }}, {{ \"return\": [200, \"$a\"] }} ]"
        );
        let Some(items) = self.expect_array(value, &format!("\"{SCRIPT_KEY}\""), &example) else {
            return;
        };
        for item in items {
            let what = format!("each entry of \"{SCRIPT_KEY}\"");
            let Some(entries) = self.expect_object(item, &what, &example) else {
                continue;
            };
            let [(key, v)] = entries else {
                self.push(
                    Diagnostic::error(
                        Code::Document,
                        open_of(item),
                        format!("an entry of \"{SCRIPT_KEY}\" has {} keys", entries.len()),
                    )
                    .label("this entry")
                    .help(format!(
                        "each entry is one directive, an object with one key: {example}"
                    )),
                );
                continue;
            };
            let name = key.text.as_str();
            if !is_script_directive(name) {
                let mut d = Diagnostic::error(
                    Code::Document,
                    key.span,
                    format!("\"{name}\" does not belong in \"{SCRIPT_KEY}\""),
                )
                .label(format!("not one of {}", SCRIPT_DIRECTIVES.join(", ")));
                d = d.help(match did_you_mean(name, SCRIPT_DIRECTIVES) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => format!(
                        "\"{SCRIPT_KEY}\" holds the rewrite-module directives ({}) in order; write other directives as keys of the {} object",
                        SCRIPT_DIRECTIVES.join(", "),
                        ctx.name()
                    ),
                });
                self.push(d);
                continue;
            }
            if name == IF {
                self.if_entry(key, v, ctx, out);
                continue;
            }
            let spec = spec_for(name, ctx);
            let shape = ValueShape {
                repeat: false,
                ..ValueShape::of(spec)
            };
            if let Some(args) = self.entry(name, spec, shape, v) {
                out.push(directive(name, key.span, args, None, v.span));
            }
        }
    }

    /// One value of `maps`: `"$var": { "source": "…", "entries": { "key": "value", … } }`
    /// → `map SOURCE $var { key value; … }`. An entry's value is a string or number, or
    /// `true` for the lines without value (`hostnames`, `volatile`).
    fn map_object(
        &mut self,
        name: &str,
        var: &Key,
        body: &Node,
        fields: &[(Key, Node)],
        example: &str,
    ) -> Option<Directive> {
        let mut source = None;
        let mut block = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for (k, v) in fields {
            if let Some(first) = seen.get(k.text.as_str()) {
                self.push(
                    Diagnostic::error(
                        Code::Document,
                        k.span,
                        format!("duplicate key \"{}\"", k.text),
                    )
                    .label("second occurrence")
                    .also(*first, "first here")
                    .help("a key may appear once per object"),
                );
                continue;
            }
            seen.insert(&k.text, k.span);
            match k.text.as_str() {
                MAP_SOURCE_KEY => {
                    match &v.value {
                        Value::Scalar(s) if matches!(s.ty, ScalarType::Str | ScalarType::Num) => {
                            source = Some(arg(s.text.clone(), v.span));
                        }
                        Value::Invalid => return None,
                        _ => {
                            self.push(
                            Diagnostic::error(
                                Code::Document,
                                v.span,
                                format!("\"{MAP_SOURCE_KEY}\" must be a string"),
                            )
                            .label(format!("found {}", v.describe()))
                            .help("the source is the string the map looks up, e.g. \"$http_upgrade\""),
                        );
                            return None;
                        }
                    }
                }
                MAP_ENTRIES_KEY => {
                    let what = format!("\"{MAP_ENTRIES_KEY}\" of \"{}\"", var.text);
                    let Some(lines) = self.expect_object(v, &what, example) else {
                        continue;
                    };
                    let shape = ValueShape {
                        flag: false,
                        zero: true,
                        repeat: false,
                        numbers: Numbers::ANY,
                    };
                    for (ek, ev) in lines {
                        if let Some(args) = self.entry(&ek.text, None, shape, ev) {
                            block.push(directive(&ek.text, ek.span, args, None, ev.span));
                        }
                    }
                }
                other => {
                    let mut d = Diagnostic::error(
                        Code::Document,
                        k.span,
                        format!("unknown key \"{other}\" in a map object"),
                    )
                    .label(format!(
                        "a map object has \"{MAP_SOURCE_KEY}\" and \"{MAP_ENTRIES_KEY}\""
                    ));
                    d = d.help(
                        match did_you_mean(other, [MAP_SOURCE_KEY, MAP_ENTRIES_KEY]) {
                            Some(s) => format!("did you mean \"{s}\"?"),
                            None => format!(
                                "map keys and values go in \"{MAP_ENTRIES_KEY}\": write {example}"
                            ),
                        },
                    );
                    self.push(d);
                }
            }
        }
        let Some(source) = source else {
            self.push(
                Diagnostic::error(
                    Code::Document,
                    open_of(body),
                    format!("map \"{}\" without \"{MAP_SOURCE_KEY}\"", var.text),
                )
                .label("this map object")
                .help(format!(
                    "add \"{MAP_SOURCE_KEY}\": the string to look up, e.g. {example}"
                )),
            );
            return None;
        };
        let args = vec![source, arg(var.text.clone(), var.span)];
        Some(directive(name, var.span, args, Some(block), body.span))
    }

    fn type_ext(&mut self, n: &Node) -> Option<Arg> {
        match &n.value {
            Value::Scalar(s) if matches!(s.ty, ScalarType::Str | ScalarType::Num) => {
                Some(arg(s.text.clone(), n.span))
            }
            Value::Invalid => None,
            _ => {
                self.push(
                    Diagnostic::error(Code::Document, n.span, "a file name extension must be a string")
                        .label(format!("found {}", n.describe()))
                        .help("map each MIME type to an extension or an array of them: \"text/html\": [\"html\", \"htm\"]"),
                );
                None
            }
        }
    }

    /// The arguments of a location, from its `match`.
    fn match_args(&mut self, item: &Node, entries: &[(Key, Node)]) -> Option<Vec<Arg>> {
        let help = format!(
            "add \"{MATCH_KEY}\": \"/path\" (or \"= /exact\", \"^~ /prefix\", \"~ regex\", \"~* regex\", \"@name\")"
        );
        let Some((_, m)) = entries.iter().find(|(k, _)| k.text == MATCH_KEY) else {
            self.push(
                Diagnostic::error(
                    Code::Document,
                    open_of(item),
                    format!("location without \"{MATCH_KEY}\""),
                )
                .label("this location object")
                .help(help),
            );
            return None;
        };
        let s = match &m.value {
            Value::Scalar(s) if matches!(s.ty, ScalarType::Str | ScalarType::Num) => s,
            Value::Invalid => return None,
            _ => {
                self.push(
                    Diagnostic::error(
                        Code::Document,
                        m.span,
                        format!("\"{MATCH_KEY}\" must be a string"),
                    )
                    .label(format!("found {}", m.describe()))
                    .help(help),
                );
                return None;
            }
        };
        let args = split_match(&s.text)
            .into_iter()
            .map(|r| {
                let span = s.verbatim.map_or(m.span, |at| {
                    Span::new(m.span.file, at + r.start..at + r.end)
                });
                arg(s.text.get(r).unwrap_or_default().to_string(), span)
            })
            .collect();
        Some(args)
    }

    /// A plain directive: one line, or one line per entry of a repeatable directive.
    fn plain(
        &mut self,
        name: &str,
        spec: Option<&'static Spec>,
        key: &Key,
        value: &Node,
        out: &mut Vec<Directive>,
    ) {
        let shape = ValueShape::of(spec);
        match &value.value {
            Value::Seq(items) if shape.repeat => {
                for item in items {
                    if let Some(args) = self.entry(name, spec, shape, item) {
                        out.push(directive(name, key.span, args, None, item.span));
                    }
                }
            }
            _ => {
                if let Some(args) = self.entry(name, spec, shape, value) {
                    out.push(directive(name, key.span, args, None, value.span));
                }
            }
        }
    }

    /// A number where the directive's syntax wants a URL, a path, a name… (`"proxy_pass": 5`).
    /// `at`: the argument's place in an array, `None` for a one-argument value.
    fn number_refused(
        &mut self,
        name: &str,
        spec: Option<&Spec>,
        at: Option<usize>,
        node: &Node,
        text: &str,
    ) {
        let what = spec
            .map(|s| placeholder(s, at.unwrap_or(0)))
            .unwrap_or_default();
        let place = if what.is_empty() {
            String::new()
        } else {
            format!(" ({what})")
        };
        let syntax = spec.map_or(String::new(), |s| {
            format!("; nginx syntax: {name} {}", s.syntax)
        });
        self.push(
            Diagnostic::error(
                Code::Document,
                node.span,
                match at {
                    Some(i) => format!(
                        "argument {} of \"{name}\" is a string{place}, not a number",
                        i + 1
                    ),
                    None => format!("\"{name}\" takes a string{place}, not a number"),
                },
            )
            .label("a number")
            .help(format!("quote it if you mean the text: \"{text}\"{syntax}")),
        );
    }

    /// The arguments of one directive line; `None` when absent (`false`) or wrong.
    fn entry(
        &mut self,
        name: &str,
        spec: Option<&Spec>,
        shape: ValueShape,
        node: &Node,
    ) -> Option<Vec<Arg>> {
        match &node.value {
            Value::Invalid => None,
            Value::Scalar(s) => match s.ty {
                ScalarType::Num if !shape.numbers.at(0) => {
                    self.number_refused(name, spec, None, node, &s.text);
                    None
                }
                ScalarType::Str | ScalarType::Num => Some(vec![arg(s.text.clone(), node.span)]),
                ScalarType::Bool(b) if shape.flag => {
                    Some(vec![arg(if b { "on" } else { "off" }.into(), node.span)])
                }
                ScalarType::Bool(true) if shape.zero => Some(Vec::new()),
                ScalarType::Bool(false) if shape.zero => None,
                ScalarType::Bool(b) => {
                    let syntax = spec.map_or(String::new(), |s| format!(": {name} {};", s.syntax));
                    let msg = format!("\"{name}\" needs arguments, not {b}");
                    let help = if b {
                        format!("true only switches on directives without arguments (such as internal); write the arguments as a string or an array{syntax}")
                    } else {
                        "leave the key out to keep the default".to_string()
                    };
                    self.push(
                        Diagnostic::error(Code::Document, node.span, msg)
                            .label("a boolean")
                            .help(help),
                    );
                    None
                }
                ScalarType::Null => {
                    self.push(
                        Diagnostic::error(
                            Code::Document,
                            node.span,
                            format!("missing value for \"{name}\""),
                        )
                        .label("no value")
                        .help(if shape.zero {
                            format!("write \"{name}\": true to switch it on, or leave the key out")
                        } else {
                            "give a value, or leave the key out".to_string()
                        }),
                    );
                    None
                }
            },
            Value::Seq(items) => {
                let mut args = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match &item.value {
                        Value::Scalar(s) => {
                            match s.ty {
                                ScalarType::Num if !shape.numbers.at(i) => {
                                    self.number_refused(name, spec, Some(i), item, &s.text);
                                    return None;
                                }
                                ScalarType::Str | ScalarType::Num => {
                                    args.push(arg(s.text.clone(), item.span))
                                }
                                ScalarType::Bool(b) if shape.flag => {
                                    args.push(arg(if b { "on" } else { "off" }.into(), item.span))
                                }
                                _ => {
                                    let shown = if s.ty == ScalarType::Null {
                                        "null"
                                    } else {
                                        s.text.as_str()
                                    };
                                    self.push(
                                    Diagnostic::error(
                                        Code::Document,
                                        item.span,
                                        format!("{shown} is not an argument of \"{name}\""),
                                    )
                                    .label(format!("found {}", item.describe()))
                                    .help(format!("arguments are strings or numbers; quote it: \"{shown}\"")),
                                );
                                    return None;
                                }
                            }
                        }
                        Value::Invalid => return None,
                        Value::Seq(_) | Value::Map { .. } => {
                            let help = if shape.repeat {
                                format!("each entry of \"{name}\" is a string or a flat array of its arguments, e.g. [\"a\", [\"b\", \"c\"]]")
                            } else {
                                format!(
                                    "\"{name}\" takes a string or a flat array of its arguments"
                                )
                            };
                            self.push(
                                Diagnostic::error(
                                    Code::Document,
                                    item.span,
                                    format!("arrays nested too deeply in \"{name}\""),
                                )
                                .label(format!("{} inside the arguments", item.describe()))
                                .help(help),
                            );
                            return None;
                        }
                    }
                }
                Some(args)
            }
            Value::Map { .. } => {
                self.push(
                    Diagnostic::error(
                        Code::Document,
                        node.span,
                        format!("\"{name}\" takes a value, not an object"),
                    )
                    .label("an object")
                    .help("write a string, a number, or an array of them"),
                );
                None
            }
        }
    }
}

/// The arguments of `if` from the words of its condition, in parentheses as nginx writes
/// them: `($a`, `=`, `1)`; a parenthesis stands alone where the word beside it is empty
/// (`( "" )`: the word must not be taken for a lone parenthesis) or must be quoted
/// (`($a ~ "a b" )`, as one writes it in nginx).
pub(crate) fn parenthesised(mut words: Vec<Arg>) -> Vec<Arg> {
    match words.first_mut() {
        Some(a) if !needs_quotes(&a.value) => a.value.insert(0, '('),
        Some(a) => {
            let span = a.span;
            words.insert(0, arg("(".into(), span));
        }
        None => return words,
    }
    match words.last_mut() {
        Some(a) if !needs_quotes(&a.value) => a.value.push(')'),
        Some(a) => {
            let span = a.span;
            words.push(arg(")".into(), span));
        }
        None => {}
    }
    words
}

/// The span a block made from an object points at: its `{` or first key.
fn open_of(node: &Node) -> Span {
    match &node.value {
        Value::Map { open, .. } => *open,
        _ => node.span,
    }
}
