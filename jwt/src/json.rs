//! JSON objects read strictly: a member name twice in one object (at any depth) is an error,
//! where serde_json alone would keep the last one. A token whose header says `"alg":"HS256"`
//! and then `"alg":"none"` means different things to different readers; Proton refuses it.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Why a text is not a JSON object Proton accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON (or not UTF-8, or text after the value); the position is serde_json's
    /// (1-based line and column).
    Syntax { line: usize, column: usize },
    /// A member name twice in one object.
    Duplicate(String),
    /// Valid JSON, but not an object.
    NotObject,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax { .. } => f.write_str("not valid JSON"),
            JsonError::Duplicate(name) => {
                write!(f, "member \"{}\" appears twice", printable(name, 64))
            }
            JsonError::NotObject => f.write_str("not a JSON object"),
        }
    }
}

/// Reads `bytes` as one JSON object, refusing duplicate member names at any depth.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match Strict::deserialize(&mut de).and_then(|v| de.end().map(|()| v)) {
        Ok(Strict(v)) => v,
        Err(e) => {
            // A duplicate member is reported through serde's custom error; its message
            // carries the name behind a marker no syntax error message starts with.
            let text = e.to_string();
            if let Some(rest) = text.strip_prefix(DUPLICATE_MARK) {
                let name = rest.rsplit_once(" at line ").map_or(rest, |(n, _)| n);
                return Err(JsonError::Duplicate(name.to_owned()));
            }
            return Err(JsonError::Syntax {
                line: e.line(),
                column: e.column(),
            });
        }
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotObject),
    }
}

const DUPLICATE_MARK: &str = "\u{1}duplicate:";

/// A `Value` built by a visitor that refuses duplicate member names.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Strict(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Strict, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            if map.contains_key(&name) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_MARK}{name}")));
            }
            let Strict(v) = access.next_value()?;
            map.insert(name, v);
        }
        Ok(Strict(Value::Object(map)))
    }
}

/// `text` cut to `max` characters with anything but printable ASCII shown as `\xNN` (or
/// `\u{…}`), for log lines that quote a token's own words.
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push_str("...");
            break;
        }
        match c {
            ' '..='~' if c != '"' && c != '\\' => out.push(c),
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push_str(&format!("\\u{{{:X}}}", c as u32)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_read() {
        let m = parse_object(br#"{"a":1,"b":{"c":[1,"x",null,true]}}"#).unwrap();
        assert_eq!(m["a"], 1);
        assert_eq!(m["b"]["c"][1], "x");
    }

    #[test]
    fn duplicates_are_refused_at_any_depth() {
        assert_eq!(
            parse_object(br#"{"alg":"HS256","alg":"none"}"#),
            Err(JsonError::Duplicate("alg".into()))
        );
        assert_eq!(
            parse_object(br#"{"a":{"b":1,"b":2}}"#),
            Err(JsonError::Duplicate("b".into()))
        );
        assert_eq!(
            parse_object(br#"{"a":[{"x":1,"x":1}]}"#),
            Err(JsonError::Duplicate("x".into()))
        );
        // The same name spelt with an escape is the same name.
        assert_eq!(
            parse_object(br#"{"alg":1,"\u0061lg":2}"#),
            Err(JsonError::Duplicate("alg".into()))
        );
        // A name that looks like serde's position suffix stays whole.
        assert_eq!(
            parse_object(br#"{"x at line 1":1,"x at line 1":2}"#),
            Err(JsonError::Duplicate("x at line 1".into()))
        );
    }

    #[test]
    fn other_values_and_bad_text_are_refused() {
        assert_eq!(parse_object(b"[1]"), Err(JsonError::NotObject));
        assert_eq!(parse_object(b"\"x\""), Err(JsonError::NotObject));
        assert!(matches!(
            parse_object(b"{} x"),
            Err(JsonError::Syntax { .. })
        ));
        assert!(matches!(
            parse_object(b"{\"a\":\xff}"),
            Err(JsonError::Syntax { .. })
        ));
        assert!(matches!(parse_object(b""), Err(JsonError::Syntax { .. })));
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert!(matches!(
            parse_object(deep.as_bytes()),
            Err(JsonError::Syntax { .. })
        ));
    }

    #[test]
    fn printable_escapes() {
        assert_eq!(printable("HS256", 10), "HS256");
        assert_eq!(printable("a\"b\n", 10), "a\\\"b\\x0A");
        assert_eq!(printable("abcdef", 3), "abc...");
        assert_eq!(printable("é", 3), "\\u{E9}");
    }
}
