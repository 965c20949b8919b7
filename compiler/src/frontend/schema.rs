//! The JSON Schema (draft 2020-12) of the JSON/YAML document, generated with schemars from
//! the directive table: one property per directive with its doc, default and value shape,
//! `additionalProperties: false` everywhere, and `$defs` for each context object.

use super::arg_types::Numbers;
use super::shape::{
    arity_bounds, directive_specs, has_script, spec_for, structurals, DocCtx, Structure,
    CONDITION_KEY, IF, MAP_ENTRIES_KEY, MAP_SOURCE_KEY, MATCH_KEY, METHODS_KEY, MODIFIERS,
    SCHEMA_KEY, SCRIPT_DIRECTIVES, SCRIPT_KEY, TABLE_ARGS_KEY, TABLE_ENTRIES_KEY,
};
use super::write::{self, Out};
use crate::diagnostics::Diagnostics;
use crate::directives::{Kind, Spec};
use crate::source::FileId;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};
use std::borrow::Cow;

/// The whole document (the main context). Its schema is built by hand from the directive
/// table; there is no Rust value of this type.
pub struct Document;

macro_rules! context_object {
    ($(#[$doc:meta])* $t:ident, $name:literal, $ctx:expr) => {
        $(#[$doc])*
        struct $t;
        impl JsonSchema for $t {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            fn schema_id() -> Cow<'static, str> {
                Cow::Borrowed(concat!("proton::frontend::", $name))
            }
            fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                context_schema(generator, $ctx)
            }
        }
    };
}

context_object!(
    /// The `events` object.
    EventsObject,
    "events",
    DocCtx::Events
);
context_object!(
    /// The `http` object.
    HttpObject,
    "http",
    DocCtx::Http
);
context_object!(
    /// An entry of `servers`.
    ServerObject,
    "server",
    DocCtx::Server
);
context_object!(
    /// An entry of `locations`.
    LocationObject,
    "location",
    DocCtx::Location
);
context_object!(
    /// A value of `upstreams`.
    UpstreamObject,
    "upstream",
    DocCtx::Upstream
);
context_object!(
    /// An `if` entry of a server's `script`.
    IfServerObject,
    "if_in_server",
    DocCtx::IfServer
);
context_object!(
    /// An `if` entry of a location's `script`.
    IfLocationObject,
    "if_in_location",
    DocCtx::IfLocation
);
context_object!(
    /// The `limit_except` of a location.
    LimitExceptObject,
    "limit_except",
    DocCtx::LimitExcept
);
context_object!(
    /// A value of `matches`.
    MatchObject,
    "match",
    DocCtx::Match
);

impl JsonSchema for Document {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("ProtonConfig")
    }
    fn schema_id() -> Cow<'static, str> {
        Cow::Borrowed("proton::frontend::Document")
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut s = context_schema(generator, DocCtx::Main);
        s.insert("title".into(), json!("Proton configuration"));
        s
    }
}

/// The schema's `$id`: the name it is known by. JSON Schema tools use it to tell schemas
/// apart and to resolve references; it is an identifier, and nothing fetches it (editors are
/// pointed at `schemas/proton.schema.json` by path, see docs/configuration.md).
pub const SCHEMA_ID: &str = "https://proton.dev/schemas/proton.schema.json";

/// The JSON Schema of the document.
pub fn schema() -> Value {
    let mut v = SchemaGenerator::new(SchemaSettings::draft2020_12())
        .into_root_schema_for::<Document>()
        .to_value();
    if let Value::Object(m) = &mut v {
        m.insert("$id".into(), json!(SCHEMA_ID));
    }
    v
}

/// The schema as written to `schemas/proton.schema.json`: pretty, with a trailing newline.
pub fn schema_string() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    s.push('\n');
    s
}

fn to_schema(v: Value) -> Schema {
    match v {
        Value::Object(m) => Schema::from(m),
        Value::Bool(b) => Schema::from(b),
        _ => Schema::from(true),
    }
}

/// A `$ref` to the object schema of `ctx`.
fn reference(generator: &mut SchemaGenerator, ctx: DocCtx) -> Value {
    let s = match ctx {
        DocCtx::Main => generator.subschema_for::<Document>(),
        DocCtx::Events => generator.subschema_for::<EventsObject>(),
        DocCtx::Http => generator.subschema_for::<HttpObject>(),
        DocCtx::Server => generator.subschema_for::<ServerObject>(),
        DocCtx::Location => generator.subschema_for::<LocationObject>(),
        DocCtx::Upstream => generator.subschema_for::<UpstreamObject>(),
        DocCtx::IfServer => generator.subschema_for::<IfServerObject>(),
        DocCtx::IfLocation => generator.subschema_for::<IfLocationObject>(),
        DocCtx::LimitExcept => generator.subschema_for::<LimitExceptObject>(),
        DocCtx::Match => generator.subschema_for::<MatchObject>(),
    };
    s.to_value()
}

fn context_schema(generator: &mut SchemaGenerator, ctx: DocCtx) -> Schema {
    let mut props = Map::new();
    if ctx == DocCtx::Location {
        props.insert(
            MATCH_KEY.into(),
            json!({
                "type": "string",
                "minLength": 1,
                "description": format!(
                    "What the location matches: an optional modifier ({}), a space, then the URI prefix or \
                     regex; or `@name` for a named location. Examples: `/`, `= /exact`, `^~ /static/`, \
                     `~* \\.(png|jpg)$`, `@fallback`.",
                    MODIFIERS.map(|m| format!("`{m}`")).join(", ")
                ),
            }),
        );
    }
    if matches!(ctx, DocCtx::IfServer | DocCtx::IfLocation) {
        props.insert(
            CONDITION_KEY.into(),
            json!({
                "anyOf": [
                    { "type": "string", "pattern": "^[^ \\t\\n]*$" },
                    {
                        "type": "array",
                        "items": { "type": ["string", "number"] },
                        "minItems": 1,
                        "maxItems": 3
                    }
                ],
                "description": "The condition: the words nginx writes between the parentheses, one per \
                    item. `[\"$var\"]` (true unless empty or `0`), `[\"$var\", \"=\", \"text\"]` and `\"!=\"`, \
                    `[\"$var\", \"~\", \"regex\"]` and `\"~*\"`, `\"!~\"`, `\"!~*\"` (a match sets the captures), \
                    `[\"-f\", \"path\"]` and `-d`, `-e`, `-x`, `!-f`…. `[\"$arg_x\", \"=\", \"1\"]` is \
                    `if ($arg_x = 1)`. A lone variable may be a string: `\"$http_x\"`.",
            }),
        );
    }
    if ctx == DocCtx::LimitExcept {
        props.insert(
            METHODS_KEY.into(),
            json!({
                "anyOf": [
                    { "type": "string", "pattern": "^[A-Za-z]+$" },
                    {
                        "type": "array",
                        "items": { "type": "string", "pattern": "^[A-Za-z]+$" },
                        "minItems": 1
                    }
                ],
                "description": "The methods that keep the location's configuration (`GET` also covers \
                    `HEAD`): GET, HEAD, POST, PUT, DELETE, MKCOL, COPY, MOVE, OPTIONS, PROPFIND, \
                    PROPPATCH, LOCK, UNLOCK, PATCH. Every other method takes this object's directives.",
            }),
        );
    }
    if ctx == DocCtx::Main {
        props.insert(
            SCHEMA_KEY.into(),
            json!({
                "type": "string",
                "description": "The JSON Schema of this document, for editors (e.g. \"schemas/proton.schema.json\"); protonc ignores it.",
            }),
        );
    }
    for spec in directive_specs(ctx) {
        props.insert(spec.name.into(), directive_schema(spec, ctx));
    }
    if has_script(ctx) {
        props.insert(SCRIPT_KEY.into(), script_schema(generator, ctx));
    }
    for st in structurals(ctx) {
        let mut s = match (st.structure, st.inner(ctx)) {
            (Structure::Object, Some(inner)) => reference(generator, inner),
            (Structure::List, Some(inner)) => {
                json!({ "type": "array", "items": reference(generator, inner) })
            }
            (Structure::Named, Some(inner)) => {
                json!({ "type": "object", "additionalProperties": reference(generator, inner) })
            }
            (Structure::Matched, Some(inner)) => {
                json!({ "type": "array", "items": reference(generator, inner) })
            }
            (Structure::Methods, Some(inner)) => reference(generator, inner),
            (Structure::Types, _) => json!({
                "type": "object",
                "additionalProperties": {
                    "anyOf": [
                        { "type": "string" },
                        { "type": "array", "items": { "type": "string" } }
                    ]
                }
            }),
            (Structure::Map, _) => json!({
                "type": "object",
                "propertyNames": { "pattern": "^\\$" },
                "additionalProperties": {
                    "type": "object",
                    "description": "One map, under the name of the variable it defines (`$name`).",
                    "properties": {
                        MAP_SOURCE_KEY: {
                            "type": "string",
                            "description": "The string looked up (text with variables), e.g. `$http_upgrade`."
                        },
                        MAP_ENTRIES_KEY: {
                            "type": "object",
                            "description": "The map's lines in order, as nginx writes them: `\"key\": \"value\"` (`\"~regex\"`/`\"~*regex\"` keys, `\"\"` for the empty string, `\"default\"`), and `\"hostnames\": true`, `\"volatile\": true`.",
                            "additionalProperties": {
                                "anyOf": [
                                    { "type": "string" },
                                    { "type": "number" },
                                    { "type": "boolean" }
                                ]
                            }
                        }
                    },
                    "required": [MAP_SOURCE_KEY],
                    "additionalProperties": false
                }
            }),
            (Structure::Table, _) => json!({
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        TABLE_ARGS_KEY: {
                            "type": "array",
                            "minItems": 1,
                            "items": { "type": ["string", "number"] },
                            "description": "The block's arguments, as in the NGINX-style form."
                        },
                        TABLE_ENTRIES_KEY: {
                            "type": "array",
                            "description": "The block's lines in order, each an array of its words.",
                            "items": {
                                "type": "array",
                                "minItems": 1,
                                "items": { "type": ["string", "number"] }
                            }
                        }
                    },
                    "required": [TABLE_ARGS_KEY],
                    "additionalProperties": false
                }
            }),
            (_, None) => json!({ "type": "object" }),
        };
        if let Value::Object(m) = &mut s {
            m.insert("description".into(), json!(describe(st.spec, &st.key)));
            if let Some(d) = default_of(st.spec, ctx) {
                m.insert("default".into(), d);
            }
        }
        props.insert(st.key.into_owned(), s);
    }
    let mut v = json!({
        "type": "object",
        "description": context_doc(ctx),
        "properties": props,
        "additionalProperties": false,
    });
    let required = match ctx {
        DocCtx::Location => Some(MATCH_KEY),
        DocCtx::IfServer | DocCtx::IfLocation => Some(CONDITION_KEY),
        DocCtx::LimitExcept => Some(METHODS_KEY),
        _ => None,
    };
    if let (Some(r), Value::Object(m)) = (required, &mut v) {
        m.insert("required".into(), json!([r]));
    }
    to_schema(v)
}

fn context_doc(ctx: DocCtx) -> String {
    let what = match ctx {
        DocCtx::Main => "A Proton configuration: the same directives as an NGINX-style proton.conf, as an object.",
        DocCtx::Events => "Connection processing settings (nginx's `events { … }`).",
        DocCtx::Http => "The HTTP server configuration (nginx's `http { … }`).",
        DocCtx::Server => "A virtual server (nginx's `server { … }`).",
        DocCtx::Location => "Settings by request URI (nginx's `location … { … }`).",
        DocCtx::Upstream => "A group of servers for proxy_pass (nginx's `upstream NAME { … }`).",
        DocCtx::IfServer => "An `if` of a server's `script` (nginx's `if (condition) { … }`): its `condition` and the rewrite-module directives it runs when the condition holds.",
        DocCtx::IfLocation => "An `if` of a location's `script` (nginx's `if (condition) { … }`): its `condition`, and the configuration the request takes when it holds (the location's plus these directives).",
        DocCtx::LimitExcept => "The configuration of the requests whose method is not in `methods` (nginx's `limit_except METHOD … { … }`): the location's plus these directives.",
        DocCtx::Match => "The tests a health check's answer must pass, all of them (nginx Plus's `match NAME { … }`): `status`, `header` and `body` lines; `health_check` names it with `match=NAME`.",
    };
    format!(
        "{what} A directive without arguments is `true`; one argument is a string or number; several \
         are an array. A repeatable directive takes an array of entries, each a value or an array \
         of arguments. Keys are read in order."
    )
}

fn describe(spec: &Spec, key: &str) -> String {
    let mut d = spec.doc.to_string();
    if !spec.syntax.is_empty() || key != spec.name {
        d.push_str(&format!(
            "\n\nnginx syntax: `{} {}`",
            spec.name, spec.syntax
        ));
    }
    if spec.repeat && key == spec.name {
        d.push_str("\n\nRepeatable: an array of entries, each a value or an array of arguments.");
    }
    d
}

fn directive_schema(spec: &Spec, ctx: DocCtx) -> Value {
    let (min, max) = arity_bounds(spec.arity);
    let entry = entry_schema(&ArgSchemas::of(spec), min, max);
    let mut s = if spec.repeat {
        // One entry (its own alternatives, flattened) or an array of entries.
        let mut alts = match entry.get("anyOf").and_then(Value::as_array) {
            Some(a) => a.clone(),
            None => vec![entry.clone()],
        };
        alts.push(json!({ "type": "array", "items": entry }));
        json!({ "anyOf": alts })
    } else {
        entry
    };
    if let Value::Object(m) = &mut s {
        m.insert("description".into(), json!(describe(spec, spec.name)));
        if let Some(d) = default_of(spec, ctx) {
            m.insert("default".into(), d);
        }
    }
    s
}

/// `script`: the rewrite-module directives in order, each entry an object with one key.
fn script_schema(generator: &mut SchemaGenerator, ctx: DocCtx) -> Value {
    let mut entry_props = Map::new();
    for name in SCRIPT_DIRECTIVES {
        let Some(spec) = spec_for(name, ctx) else {
            continue;
        };
        if name == IF {
            // Not in an if's own script: an if cannot hold another if.
            if let (true, Some(inner)) = (spec.ctx.contains(ctx.ctx()), DocCtx::of_block(IF, ctx)) {
                let mut e = reference(generator, inner);
                if let Value::Object(m) = &mut e {
                    m.insert("description".into(), json!(describe(spec, "")));
                }
                entry_props.insert(name.into(), e);
            }
            continue;
        }
        let (min, max) = arity_bounds(spec.arity);
        let mut e = entry_schema(&ArgSchemas::of(spec), min, max);
        if let Value::Object(m) = &mut e {
            m.insert("description".into(), json!(describe(spec, "")));
        }
        entry_props.insert(name.into(), e);
    }
    json!({
        "type": "array",
        "description": format!(
            "The rewrite-module directives ({}) in the order they run, one directive per entry: \
             `[{{\"set\": [\"$a\", \"1\"]}}, {{\"rewrite\": [\"^/old/(.*)$\", \"/new/$1\"]}}, {{\"return\": [200, \"$a\"]}}]`. \
             nginx runs them in the order written, so a block that has more than one kind of them \
             keeps them here (protonc convert writes them so); a block with only one kind may use \
             the directive's own key instead, but not both. An `if` is written only here: \
             `{{\"if\": {{\"condition\": [\"$arg_x\", \"=\", \"1\"], \"return\": 204}}}}`.",
            SCRIPT_DIRECTIVES.join(", ")
        ),
        "items": {
            "type": "object",
            "properties": entry_props,
            "additionalProperties": false,
            "minProperties": 1,
            "maxProperties": 1,
        }
    })
}

/// The schemas of a directive's arguments, place by place.
struct ArgSchemas {
    /// The first argument (also the value of a one-argument line).
    first: Value,
    /// The places, from the first, that differ from `rest`.
    prefix: Vec<Value>,
    /// Every later place.
    rest: Value,
}

impl ArgSchemas {
    /// By the directive's kind; free text (`Text`, `Custom`) by its syntax: a string, or a
    /// string or number where the syntax puts a count, code, size, time, port or text
    /// ([`Numbers`]).
    fn of(spec: &Spec) -> ArgSchemas {
        if !matches!(spec.kind, Kind::Text | Kind::Custom) {
            let arg = arg_schema(spec.kind);
            return ArgSchemas {
                first: arg.clone(),
                prefix: Vec::new(),
                rest: arg,
            };
        }
        let numbers = Numbers::of(spec);
        let text = |number: bool| {
            if number {
                json!({ "type": ["string", "number"] })
            } else {
                json!({ "type": "string" })
            }
        };
        let (_, max) = arity_bounds(spec.arity);
        let tracked = max.map_or(Numbers::tracked(), |m| m.min(Numbers::tracked()));
        // Past the last place the arity allows, nothing: the last allowed place stands for
        // the rest (maxItems bounds the array).
        let rest = match max {
            Some(m) if m >= 1 && m <= Numbers::tracked() => text(numbers.at(m - 1)),
            _ => text(numbers.rest()),
        };
        let mut prefix: Vec<Value> = (0..tracked).map(|i| text(numbers.at(i))).collect();
        while prefix.last() == Some(&rest) {
            prefix.pop();
        }
        ArgSchemas {
            first: text(numbers.at(0)),
            prefix,
            rest,
        }
    }
}

/// One directive line: `true` (no arguments), one argument, or an array of them.
fn entry_schema(args: &ArgSchemas, min: usize, max: Option<usize>) -> Value {
    let mut alts = Vec::new();
    if min == 0 {
        alts.push(json!({ "type": "boolean", "description": "true: present without arguments; false: absent" }));
    }
    if max != Some(0) {
        if min <= 1 {
            alts.push(args.first.clone());
        }
        if max.is_none_or(|m| m >= 2) {
            let mut a = Map::new();
            a.insert("type".into(), json!("array"));
            if !args.prefix.is_empty() {
                a.insert("prefixItems".into(), Value::Array(args.prefix.clone()));
            }
            a.insert("items".into(), args.rest.clone());
            a.insert("minItems".into(), json!(min.max(1)));
            if let Some(m) = max {
                a.insert("maxItems".into(), json!(m));
            }
            alts.push(Value::Object(a));
        }
    }
    match alts.len() {
        1 => alts.remove(0),
        _ => json!({ "anyOf": alts }),
    }
}

/// One argument by the directive's kind.
fn arg_schema(kind: Kind) -> Value {
    let number_or = |pattern: &str| {
        json!({ "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "pattern": pattern }
        ] })
    };
    match kind {
        Kind::Flag => json!({ "enum": [true, false, "on", "off"] }),
        Kind::Int => number_or("^[0-9]+$"),
        Kind::Size => number_or("^[0-9]+[kKmMgG]?$"),
        Kind::Time => number_or("^([0-9]+(ms|[smhdwMy]))*[0-9]+$|^([0-9]+(ms|[smhdwMy]))+$"),
        Kind::Keyword(words) => {
            let mut all: Vec<Value> = words.iter().map(|w| json!(w)).collect();
            if super::shape::is_flag_like(kind) {
                all.extend([json!(true), json!(false)]);
            }
            all.extend(
                words
                    .iter()
                    .filter_map(|w| w.parse::<f64>().ok())
                    .map(|n| json!(n)),
            );
            json!({ "enum": all })
        }
        // Free text is judged by its syntax in `ArgSchemas::of`; a block has no arguments here.
        Kind::Text | Kind::Custom | Kind::Block => json!({ "type": ["string", "number"] }),
    }
}

/// nginx's default, written as the document would write it (`"sendfile": false`).
fn default_of(spec: &Spec, ctx: DocCtx) -> Option<Value> {
    if spec.default.is_empty() {
        return None;
    }
    let text = if spec.name == "types" {
        format!("types {{ {} }}", spec.default)
    } else {
        spec.default
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| format!("{} {p};\n", spec.name))
            .collect()
    };
    let mut diags = Diagnostics::default();
    let tree = crate::syntax::parse_text(FileId(0), &text, &mut diags);
    if diags.has_errors() {
        return None;
    }
    let Out::Obj(entries) = write::document_in(&tree, ctx) else {
        return None;
    };
    let key = structurals(ctx)
        .into_iter()
        .find(|s| s.spec.name == spec.name)
        .map_or(Cow::Borrowed(spec.name), |s| s.key);
    entries
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_value())
}
