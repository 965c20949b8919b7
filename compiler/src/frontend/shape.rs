//! The vocabulary of the JSON/YAML document, derived from [`crate::directives::TABLE`]: which
//! keys each context object has, how a block directive is written (`servers`, `upstreams`,
//! `locations`…), and what shape a directive's value takes. The reader, the writers and the
//! schema all ask this module, so a new table row needs no front-end change.

use super::arg_types::Numbers;
use crate::directives::{lookup, Arity, Ctx, Kind, Spec, TABLE};
use std::borrow::Cow;
use std::ops::Range;

/// A context object of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DocCtx {
    Main,
    Events,
    Http,
    Server,
    Location,
    Upstream,
    /// The block of an `if` in a server: an entry `{ "if": { … } }` of a server's `script`.
    IfServer,
    /// The block of an `if` in a location: an entry `{ "if": { … } }` of a location's `script`.
    IfLocation,
    /// The block of a location's `limit_except`.
    LimitExcept,
    /// A `match` block (the tests of a health check's answer), a value of `matches`.
    Match,
}

impl DocCtx {
    /// Every context, outermost first.
    pub(crate) const ALL: [DocCtx; 10] = [
        DocCtx::Main,
        DocCtx::Events,
        DocCtx::Http,
        DocCtx::Server,
        DocCtx::Location,
        DocCtx::Upstream,
        DocCtx::IfServer,
        DocCtx::IfLocation,
        DocCtx::LimitExcept,
        DocCtx::Match,
    ];

    /// The directive-table context.
    pub(crate) fn ctx(self) -> Ctx {
        match self {
            DocCtx::Main => Ctx::MAIN,
            DocCtx::Events => Ctx::EVENTS,
            DocCtx::Http => Ctx::HTTP,
            DocCtx::Server => Ctx::SERVER,
            DocCtx::Location => Ctx::LOCATION,
            DocCtx::Upstream => Ctx::UPSTREAM,
            DocCtx::IfServer => Ctx::IF_SERVER,
            DocCtx::IfLocation => Ctx::IF_LOCATION,
            DocCtx::LimitExcept => Ctx::LIMIT_EXCEPT,
            DocCtx::Match => Ctx::MATCH,
        }
    }

    /// The context's name, as in nginx's documentation (`main`, `http`…).
    pub(crate) fn name(self) -> &'static str {
        match self {
            DocCtx::Main => "main",
            DocCtx::Events => "events",
            DocCtx::Http => "http",
            DocCtx::Server => "server",
            DocCtx::Location => "location",
            DocCtx::Upstream => "upstream",
            DocCtx::IfServer => "if in server",
            DocCtx::IfLocation => "if in location",
            DocCtx::LimitExcept => "limit_except",
            DocCtx::Match => "match",
        }
    }

    /// How messages name the object of this context.
    pub(crate) fn object(self) -> &'static str {
        match self {
            DocCtx::Main => "the top-level object",
            DocCtx::Events => "the events object",
            DocCtx::Http => "the http object",
            DocCtx::Server => "a server object",
            DocCtx::Location => "a location object",
            DocCtx::Upstream => "an upstream object",
            DocCtx::IfServer => "an if object (in a server)",
            DocCtx::IfLocation => "an if object (in a location)",
            DocCtx::LimitExcept => "the limit_except object",
            DocCtx::Match => "a match object",
        }
    }

    /// The context opened by the block directive `name` written in `outer` (`server` →
    /// server, `if` in a location → if in location…).
    pub(crate) fn of_block(name: &str, outer: DocCtx) -> Option<DocCtx> {
        Some(match name {
            IF if matches!(outer, DocCtx::Location | DocCtx::IfLocation) => DocCtx::IfLocation,
            IF => DocCtx::IfServer,
            "limit_except" => DocCtx::LimitExcept,
            "events" => DocCtx::Events,
            "http" => DocCtx::Http,
            "server" => DocCtx::Server,
            "location" => DocCtx::Location,
            "upstream" => DocCtx::Upstream,
            "match" if outer == DocCtx::Http => DocCtx::Match,
            _ => return None,
        })
    }
}

/// How a directive with a block is written in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Structure {
    /// `events { … }` → `"events": { … }`: one object under the directive's own name.
    Object,
    /// `server { … }`, repeated → `"servers": [ { … }, … ]`.
    List,
    /// `upstream NAME { … }` → `"upstreams": { "NAME": { … } }`.
    Named,
    /// `location [modifier] uri { … }` → `"locations": [ { "match": "[modifier ]uri", … } ]`.
    Matched,
    /// `types { mime ext…; }` → `"types": { "mime": ["ext", …] }`.
    Types,
    /// `map SOURCE $var { key value; … }` →
    /// `"maps": { "$var": { "source": "SOURCE", "entries": { "key": "value", … } } }`.
    Map,
    /// `limit_except GET POST { … }` → `"limit_except": { "methods": ["GET", "POST"], … }`.
    Methods,
    /// A block of free-form lines, `geo $a $var { default 0; 10.0.0.0/8 1; }` →
    /// `"geo": [ { "args": ["$a", "$var"], "entries": [["default", "0"], ["10.0.0.0/8", "1"]] } ]`
    /// (lines in order, as arrays of words: a key may come twice, and some lines have no
    /// value, such as `ranges;`).
    Table,
}

/// The key of a [`Structure::Table`] object that holds the block's arguments.
pub(crate) const TABLE_ARGS_KEY: &str = "args";

/// The key of a [`Structure::Table`] object that holds the block's lines.
pub(crate) const TABLE_ENTRIES_KEY: &str = "entries";

/// The key of a map object that holds its source string.
pub(crate) const MAP_SOURCE_KEY: &str = "source";

/// The key of a map object that holds its lines (`key: value`, in order).
pub(crate) const MAP_ENTRIES_KEY: &str = "entries";

/// The key of a location object that carries its modifier and URI.
pub(crate) const MATCH_KEY: &str = "match";

/// The top-level key an editor reads to find the JSON Schema; the reader skips it.
pub(crate) const SCHEMA_KEY: &str = "$schema";

/// The key of a server or location object that holds its rewrite-module directives in order:
/// `"script": [ { "set": ["$a", "1"] }, { "rewrite": ["^/a", "/b"] }, { "return": [200, "$a"] } ]`.
/// nginx runs these directives in the order they are written, so their relative order is
/// part of the config's meaning; one key per directive name cannot say it (and JSON tools may
/// reorder keys).
pub(crate) const SCRIPT_KEY: &str = "script";

/// The directives that may go in `script`: nginx's rewrite-module directives Proton supports.
pub(crate) const SCRIPT_DIRECTIVES: [&str; 5] = ["rewrite", "return", "set", "break", "if"];

/// `if`: a rewrite-module directive with a block. It is written only in `script`, as
/// `{ "if": { "condition": ["$a", "=", "1"], … } }`, because its place among the other
/// rewrite-module directives is part of its meaning.
pub(crate) const IF: &str = "if";

/// The key of an `if` object that holds its condition, the words between the parentheses:
/// `"condition": ["$http_x", "~*", "^a"]` is `if ($http_x ~* ^a)`.
pub(crate) const CONDITION_KEY: &str = "condition";

/// The key of the `limit_except` object that holds its methods.
pub(crate) const METHODS_KEY: &str = "methods";

/// Whether `name` is written in `script` when order matters.
pub(crate) fn is_script_directive(name: &str) -> bool {
    SCRIPT_DIRECTIVES.contains(&name)
}

/// Whether objects of `ctx` may have a `script` key.
pub(crate) fn has_script(ctx: DocCtx) -> bool {
    matches!(
        ctx,
        DocCtx::Server | DocCtx::Location | DocCtx::IfServer | DocCtx::IfLocation
    )
}

/// The location modifiers `match` may start with.
pub(crate) const MODIFIERS: [&str; 4] = ["=", "^~", "~", "~*"];

/// How `spec` is written when it is a block directive, or `None` for a plain directive.
pub(crate) fn structure_of(spec: &Spec) -> Option<Structure> {
    if spec.name == "types" {
        return Some(Structure::Types);
    }
    if spec.name == "map" {
        return Some(Structure::Map);
    }
    if spec.name == "limit_except" {
        return Some(Structure::Methods);
    }
    if matches!(spec.name, "geo" | "split_clients" | "charset_map") {
        return Some(Structure::Table);
    }
    // `if` is an entry of `script`, not a key of its own.
    if spec.kind != Kind::Block || spec.name == IF {
        return None;
    }
    Some(match (spec.arity, spec.repeat) {
        (Arity::Exactly(0), false) => Structure::Object,
        (Arity::Exactly(0), true) => Structure::List,
        (Arity::Exactly(1), _) => Structure::Named,
        _ => Structure::Matched,
    })
}

/// A block directive as a document key.
#[derive(Debug, Clone)]
pub(crate) struct Structural {
    /// The document key (`servers`, `upstreams`, `events`…).
    pub key: Cow<'static, str>,
    pub spec: &'static Spec,
    pub structure: Structure,
}

impl Structural {
    /// The context of the objects this key holds, if it holds context objects.
    pub(crate) fn inner(&self, outer: DocCtx) -> Option<DocCtx> {
        DocCtx::of_block(self.spec.name, outer)
    }

    /// An example of the document form, for help messages.
    pub(crate) fn example(&self) -> String {
        match self.structure {
            Structure::Object => format!("\"{}\": {{ … }}", self.key),
            Structure::List => format!("\"{}\": [ {{ … }}, … ]", self.key),
            Structure::Named => format!("\"{}\": {{ \"NAME\": {{ … }} }}", self.key),
            Structure::Matched => format!("\"{}\": [ {{ \"{MATCH_KEY}\": \"/\", … }} ]", self.key),
            Structure::Types => {
                format!("\"{}\": {{ \"text/html\": [\"html\", \"htm\"] }}", self.key)
            }
            Structure::Map => format!(
                "\"{}\": {{ \"$connection_upgrade\": {{ \"{MAP_SOURCE_KEY}\": \"$http_upgrade\", \"{MAP_ENTRIES_KEY}\": {{ \"default\": \"upgrade\", \"\": \"close\" }} }} }}",
                self.key
            ),
            Structure::Table => format!(
                "\"{}\": [ {{ \"{TABLE_ARGS_KEY}\": [\"$remote_addr\", \"$var\"], \"{TABLE_ENTRIES_KEY}\": [[\"default\", \"0\"]] }} ]",
                self.key
            ),
            Structure::Methods => format!(
                "\"{}\": {{ \"{METHODS_KEY}\": [\"GET\"], \"deny\": \"all\" }}",
                self.key
            ),
        }
    }
}

/// The document key of a block directive.
pub(crate) fn key_of(spec: &'static Spec, structure: Structure) -> Cow<'static, str> {
    match structure {
        Structure::Object | Structure::Types | Structure::Methods | Structure::Table => {
            Cow::Borrowed(spec.name)
        }
        // `match` → `matches`.
        Structure::List | Structure::Named | Structure::Matched | Structure::Map
            if spec.name.ends_with("ch") =>
        {
            Cow::Owned(format!("{}es", spec.name))
        }
        Structure::List | Structure::Named | Structure::Matched | Structure::Map => {
            Cow::Owned(format!("{}s", spec.name))
        }
    }
}

/// The block-directive keys of a context, in table order.
pub(crate) fn structurals(ctx: DocCtx) -> Vec<Structural> {
    TABLE
        .iter()
        .filter(|s| s.ctx.contains(ctx.ctx()))
        .filter_map(|spec| {
            structure_of(spec).map(|structure| Structural {
                key: key_of(spec, structure),
                spec,
                structure,
            })
        })
        .collect()
}

/// Every block-directive key of every context, with the contexts where it is allowed.
pub(crate) fn all_structurals() -> Vec<(DocCtx, Structural)> {
    DocCtx::ALL
        .iter()
        .flat_map(|&c| structurals(c).into_iter().map(move |s| (c, s)))
        .collect()
}

/// The plain-directive keys of a context (table rows without a block), in table order.
pub(crate) fn directive_specs(ctx: DocCtx) -> impl Iterator<Item = &'static Spec> {
    TABLE
        .iter()
        .filter(move |s| s.ctx.contains(ctx.ctx()) && structure_of(s).is_none() && s.name != IF)
}

/// Every key an object of `ctx` may have, for "did you mean" hints.
pub(crate) fn allowed_keys(ctx: DocCtx) -> Vec<Cow<'static, str>> {
    let mut keys: Vec<Cow<'static, str>> = directive_specs(ctx)
        .map(|s| Cow::Borrowed(s.name))
        .collect();
    keys.extend(structurals(ctx).into_iter().map(|s| s.key));
    match ctx {
        DocCtx::Location => keys.push(Cow::Borrowed(MATCH_KEY)),
        DocCtx::Main => keys.push(Cow::Borrowed(SCHEMA_KEY)),
        DocCtx::IfServer | DocCtx::IfLocation => keys.push(Cow::Borrowed(CONDITION_KEY)),
        DocCtx::LimitExcept => keys.push(Cow::Borrowed(METHODS_KEY)),
        _ => {}
    }
    if has_script(ctx) {
        keys.push(Cow::Borrowed(SCRIPT_KEY));
    }
    keys
}

/// The spec of a directive in `ctx`, or else of any row with that name (a directive in the
/// wrong context is still read with its own shape so the table check can report it).
pub(crate) fn spec_for(name: &str, ctx: DocCtx) -> Option<&'static Spec> {
    lookup(name, ctx.ctx()).or_else(|| TABLE.iter().find(|s| s.name == name))
}

/// What the value of a plain directive looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueShape {
    /// `on`/`off`, written as a boolean.
    pub flag: bool,
    /// May have no arguments: written `true`.
    pub zero: bool,
    /// May appear several times: the value is an array of entries.
    pub repeat: bool,
    /// Which arguments may be written as numbers.
    pub numbers: Numbers,
}

impl ValueShape {
    /// The shape of `spec`; an unknown directive is read as one non-repeatable line.
    pub(crate) fn of(spec: Option<&Spec>) -> ValueShape {
        match spec {
            Some(s) => ValueShape {
                flag: is_flag_like(s.kind),
                zero: s.arity.accepts(0),
                repeat: s.repeat,
                numbers: Numbers::of(s),
            },
            None => ValueShape {
                flag: false,
                zero: true,
                repeat: false,
                numbers: Numbers::ANY,
            },
        }
    }
}

/// `on`/`off`, or a keyword list holding both (`server_tokens on | off | build`): booleans
/// may stand for `on` and `off`.
pub(crate) fn is_flag_like(kind: Kind) -> bool {
    match kind {
        Kind::Flag => true,
        Kind::Keyword(words) => words.contains(&"on") && words.contains(&"off"),
        _ => false,
    }
}

/// The smallest and largest number of arguments (`None`: no limit).
pub(crate) fn arity_bounds(a: Arity) -> (usize, Option<usize>) {
    match a {
        Arity::Exactly(n) => (n as usize, Some(n as usize)),
        Arity::Range(lo, hi) => (lo as usize, Some(hi as usize)),
        Arity::AtLeast(n) => (n as usize, None),
    }
}

/// Splits a location `match` into its arguments: `"~* \.png$"` → `["~*", "\.png$"]`,
/// `"/img"` → `["/img"]`, `"@named"` → `["@named"]`. Only a leading modifier word followed by a
/// space is split off. Returns byte ranges into `m`.
pub(crate) fn split_match(m: &str) -> Vec<Range<usize>> {
    let mut parts = Vec::with_capacity(2);
    match m.split_once(' ') {
        Some((first, rest)) if MODIFIERS.contains(&first) => {
            parts.push(0..first.len());
            let rest_start = m.len() - rest.trim_start_matches(' ').len();
            if rest_start < m.len() {
                parts.push(rest_start..m.len());
            }
        }
        _ => parts.push(0..m.len()),
    }
    parts
}

/// The words of an `if` condition as the document writes them: the arguments with the
/// opening parenthesis taken off the first and the closing one off the last, a parenthesis
/// written apart (`if ( $a )`) dropped, as nginx reads them. `None` when the arguments are
/// not in parentheses (nginx refuses such a condition; it has no document form).
pub(crate) fn condition_words<'a>(args: &[&'a str]) -> Option<Vec<&'a str>> {
    let n = args.len();
    let first = args.first()?.strip_prefix('(')?;
    args.last()?.strip_suffix(')')?;
    let mut words = Vec::with_capacity(n);
    for (i, a) in args.iter().enumerate() {
        let mut t = if i == 0 { first } else { a };
        if i + 1 == n {
            t = t.strip_suffix(')').unwrap_or(t);
        }
        if t.is_empty() && (i == 0 || i + 1 == n) {
            continue; // a parenthesis alone
        }
        words.push(t);
    }
    Some(words)
}
