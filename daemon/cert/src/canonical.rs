//! Canonical JSON: the one byte sequence a certificate may have.
//!
//! Rules (see docs/certificate.md): UTF-8; object keys sorted by their UTF-8
//! bytes; no whitespace outside strings; integers only, written in shortest
//! decimal form (no `+`, no leading zeros, no `-0`); strings escaped exactly as
//! `serde_json` does (`\"`, `\\`, `\b \f \n \r \t`, other control characters
//! as `\u00XX` in lowercase hex, everything else literal, `/` unescaped).
//!
//! The writer is our own rather than `serde_json::to_vec`, so the output does
//! not depend on whether some crate in the build enables serde_json's
//! `preserve_order` feature. The strict reader rejects duplicate keys and
//! non-integer numbers, which `serde_json::Value` would silently accept.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// A value that has no canonical form (a float).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("number {0} is not an integer; certificates contain integers only")]
pub struct NotCanonicalValue(pub String);

/// Serialize `value` canonically.
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, NotCanonicalValue> {
    let mut out = Vec::with_capacity(1024);
    write_value(value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), NotCanonicalValue> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Sort explicitly: Map iteration order depends on serde_json features.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_number(n: &Number, out: &mut Vec<u8>) -> Result<(), NotCanonicalValue> {
    if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else {
        return Err(NotCanonicalValue(n.to_string()));
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            // UTF-8 multi-byte sequences pass through byte by byte unchanged.
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// How strict parsing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The input ended inside a value.
    Eof(String),
    /// Not JSON at all.
    Syntax(String),
    /// JSON, but with a duplicate key or a float.
    Strict(String),
    /// Valid JSON followed by more bytes.
    Trailing(String),
}

/// Parse `bytes` as JSON, rejecting duplicate keys and non-integer numbers.
/// Whitespace is accepted here; canonical form is checked separately.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed.deserialize(&mut de).map_err(classify)?;
    de.end()
        .map_err(|e| ParseError::Trailing(format!("extra bytes after the JSON value ({e})")))?;
    Ok(value)
}

fn classify(e: serde_json::Error) -> ParseError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => ParseError::Eof(e.to_string()),
        Category::Data => ParseError::Strict(e.to_string()),
        Category::Syntax | Category::Io => ParseError::Syntax(e.to_string()),
    }
}

/// Builds a [`Value`] and refuses what canonical JSON cannot contain.
struct StrictSeed;

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Err(E::custom(format!(
            "the number {v} is not an integer (or is too large); certificates contain integers only"
        )))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictSeed)?;
            if out.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_strips_whitespace() {
        let v = json!({"b": 1, "a": [true, null, -3], "A": {"z": "x", "y": 0}});
        assert_eq!(
            to_canonical(&v).unwrap(),
            br#"{"A":{"y":0,"z":"x"},"a":[true,null,-3],"b":1}"#
        );
    }

    #[test]
    fn keys_sort_by_bytes_not_chars() {
        // U+00E9 (0xC3 0xA9) sorts after 'z' (0x7A) and before U+FF21.
        let v = json!({"\u{ff21}": 3, "z": 1, "\u{e9}": 2});
        let s = String::from_utf8(to_canonical(&v).unwrap()).unwrap();
        assert_eq!(s, "{\"z\":1,\"\u{e9}\":2,\"\u{ff21}\":3}");
    }

    #[test]
    fn floats_rejected() {
        assert!(to_canonical(&json!({"a": 1.5})).is_err());
        assert!(matches!(
            parse_strict(b"{\"a\":1.0}"),
            Err(ParseError::Strict(_))
        ));
        assert!(matches!(parse_strict(b"[1e3]"), Err(ParseError::Strict(_))));
        // Larger than u64: serde_json would make it a float.
        assert!(matches!(
            parse_strict(b"[18446744073709551616]"),
            Err(ParseError::Strict(_))
        ));
    }

    #[test]
    fn duplicates_rejected() {
        let e = parse_strict(br#"{"a":1,"a":2}"#).unwrap_err();
        assert!(matches!(&e, ParseError::Strict(m) if m.contains("duplicate key \"a\"")));
        assert!(matches!(
            parse_strict(br#"{"x":{"b":1,"b":1}}"#),
            Err(ParseError::Strict(_))
        ));
    }

    #[test]
    fn classifies_errors() {
        assert!(matches!(parse_strict(b"{\"a\":"), Err(ParseError::Eof(_))));
        assert!(matches!(parse_strict(b""), Err(ParseError::Eof(_))));
        assert!(matches!(parse_strict(b"{a}"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse_strict(b"{} x"),
            Err(ParseError::Trailing(_))
        ));
        assert_eq!(parse_strict(b" {} \n").unwrap(), json!({}));
    }

    proptest! {
        /// Our string escaping is byte-identical to serde_json's.
        #[test]
        fn strings_match_serde_json(s in any::<String>()) {
            let mut ours = Vec::new();
            write_string(&s, &mut ours);
            prop_assert_eq!(ours, serde_json::to_vec(&s).unwrap());
        }

        #[test]
        fn control_and_unicode_strings_match(chars in proptest::collection::vec(0u32..0x2100, 0..40)) {
            let s: String = chars.into_iter().filter_map(char::from_u32).collect();
            let mut ours = Vec::new();
            write_string(&s, &mut ours);
            prop_assert_eq!(ours, serde_json::to_vec(&s).unwrap());
        }

        /// Canonical output parses back to the same value and is a fixed point.
        #[test]
        fn canonical_round_trip(keys in proptest::collection::vec(".{0,6}", 0..8), n in any::<i64>(), u in any::<u64>()) {
            let mut map = Map::new();
            for (i, k) in keys.iter().enumerate() {
                let v = match i % 3 { 0 => json!(n), 1 => json!(u), _ => json!([k, null, false]) };
                map.insert(k.clone(), v);
            }
            let v = Value::Object(map);
            let bytes = to_canonical(&v).unwrap();
            let back = parse_strict(&bytes).unwrap();
            prop_assert_eq!(&back, &v);
            prop_assert_eq!(to_canonical(&back).unwrap(), bytes);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_strict(&bytes);
        }
    }
}
