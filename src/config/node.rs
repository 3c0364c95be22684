//! The YAML document as a tree of nodes that each know their place in the file.
//!
//! serde-saphyr parses and resolves scalars (YAML 1.2 core schema, strict booleans, so `on:` and
//! `yes` stay strings); every node is wrapped in [`serde_saphyr::Spanned`] to keep its line and
//! column. Maps keep their keys in file order, duplicates included, so that the validator can
//! report a duplicate key at its own place.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::rules::ast::Span;

/// One YAML node and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where the node starts (for a map or sequence: its first token).
    pub span: Span,
    /// What the node holds.
    pub value: Value,
}

/// A YAML value after scalar resolution.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing at all.
    Null,
    /// `true` / `false` (YAML 1.2 spellings only).
    Bool(bool),
    /// An integer that fits in i64 / u64 (negative ones as `Int`).
    Int(i64),
    /// A non-negative integer beyond `i64::MAX`.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// A string, quoted or plain.
    Str(String),
    /// A sequence, in order.
    Seq(Vec<Node>),
    /// A map's entries in file order, duplicate keys kept.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// What the user wrote, in words for error messages ("a string", "a list").
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }
}

impl Node {
    /// The string of a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar's text as a map key or message quote: strings as written, other scalars in
    /// their canonical spelling.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::UInt(u) => Some(u.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Null => Some(String::new()),
            Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

fn to_span(loc: &serde_saphyr::Location) -> Span {
    Span {
        line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
        column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
    }
}

/// The inner, span-less part that serde fills; [`Node`] is built from `Spanned<RawValue>`.
struct RawValue(Value);

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<RawValue>::deserialize(deserializer)?;
        Ok(Node {
            // `referenced` is where the node is used: for an alias, the alias itself.
            span: to_span(&spanned.referenced),
            value: spanned.value.0,
        })
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor).map(RawValue)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => match u64::try_from(v) {
                Ok(u) => Value::UInt(u),
                Err(_) => Value::Float(v as f64),
            },
        })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        })
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(match u64::try_from(v) {
            Ok(u) => self.visit_u64::<E>(u)?,
            Err(_) => Value::Float(v as f64),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        RawValue::deserialize(d).map(|r| r.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// Why a document could not be parsed at all, with the parser's place when it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub span: Option<Span>,
    /// The parser's message, without its source snippet.
    pub message: String,
}

/// Parse one YAML document into a node tree. An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
    };
    match serde_saphyr::from_str_with_options::<Option<Node>>(text, options) {
        Ok(Some(node)) => Ok(node),
        Ok(None) => Ok(Node {
            span: Span { line: 1, column: 1 },
            value: Value::Null,
        }),
        Err(err) => {
            let span = err.location().map(|l| to_span(&l)).filter(|s| s.line > 0);
            let message = err.without_snippet().to_string();
            Err(SyntaxError { span, message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32, column: u32) -> Span {
        Span { line, column }
    }

    fn entries(node: &Node) -> Vec<(String, Span, Value, Span)> {
        let Value::Map(e) = &node.value else {
            panic!("not a map: {node:?}")
        };
        e.iter()
            .map(|(k, v)| (k.scalar_text().unwrap(), k.span, v.value.clone(), v.span))
            .collect()
    }

    #[test]
    fn keeps_places_order_and_duplicates() {
        let root = parse("b: 1\na: x\nb: 2\n").unwrap();
        let got = entries(&root);
        assert_eq!(
            got,
            vec![
                ("b".into(), at(1, 1), Value::Int(1), at(1, 4)),
                ("a".into(), at(2, 1), Value::Str("x".into()), at(2, 4)),
                ("b".into(), at(3, 1), Value::Int(2), at(3, 4)),
            ]
        );
    }

    #[test]
    fn scalars_resolve_as_yaml_1_2() {
        let root = parse(
            "on: yes\nt: true\nq: \"true\"\nn: ~\nz: 0755\nf: 1.5\nneg: -3\nbig: 18446744073709551615\nd: 1h\n",
        )
        .unwrap();
        let values: Vec<(String, Value)> = entries(&root)
            .into_iter()
            .map(|(k, _, v, _)| (k, v))
            .collect();
        let want = [
            ("on", Value::Str("yes".into())),
            ("t", Value::Bool(true)),
            ("q", Value::Str("true".into())),
            ("n", Value::Null),
            ("z", Value::Str("0755".into())),
            ("f", Value::Float(1.5)),
            ("neg", Value::Int(-3)),
            ("big", Value::UInt(u64::MAX)),
            ("d", Value::Str("1h".into())),
        ];
        let want: Vec<(String, Value)> = want.into_iter().map(|(k, v)| (k.into(), v)).collect();
        assert_eq!(values, want);
    }

    #[test]
    fn nested_places() {
        let root = parse("r:\n  - {c: d}\n  - x\n").unwrap();
        let Value::Map(e) = &root.value else { panic!() };
        let Value::Seq(items) = &e[0].1.value else {
            panic!()
        };
        assert_eq!(items[0].span, at(2, 5));
        assert_eq!(items[1].span, at(3, 5));
        assert_eq!(entries(&items[0])[0].3, at(2, 9));
    }

    #[test]
    fn empty_documents_are_null() {
        for text in ["", "# just a comment\n", "---\n"] {
            assert_eq!(parse(text).unwrap().value, Value::Null, "{text:?}");
        }
    }

    #[test]
    fn syntax_errors_have_a_place() {
        for (text, line) in [
            ("a: b: c\n", 1),
            ("a: [1, 2\nb: c\n", 2),
            ("a:\n\t- b\n", 2),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.span.map(|s| s.line), Some(line), "{text:?}: {e:?}");
            assert!(!e.message.is_empty());
        }
    }
}
