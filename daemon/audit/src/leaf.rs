//! The leaf: the one byte string an entry may be, and the only thing hashed.
//!
//! ```text
//! leaf = "lethe-audit-v1" 0x0A canonical-json(object)
//! object keys: action detail entity outcome record_id seq source tags time user_id
//! ```
//!
//! Canonical JSON is `lethe_cert::canonical` (the certificate rules: keys
//! sorted by bytes, no whitespace, integers only, `serde_json` string
//! escaping). `seq` is the entry's 0-based position in the log, so an entry
//! moved to another position no longer matches its own leaf. `tags` and
//! `detail` are always present (possibly `{}`), so each entry has exactly one
//! encoding. [`decode_leaf`] accepts only bytes that [`encode_leaf`] would
//! produce again. The format, with vectors, is in `docs/audit-log.md`.

use crate::entry::{AuditTime, Detail, Entry, EntryError, RecordId, Tags, Token, UserId};
use crate::names::{Action, Entity, Outcome, Source, TagKind};
use lethe_cert::canonical::{parse_strict, to_canonical};
use serde_json::{Map, Value};

/// The first bytes of every leaf: format name and version, then a newline.
pub const LEAF_PREFIX: &[u8] = b"lethe-audit-v1\n";

/// The largest leaf written or read (64 KiB).
pub const MAX_LEAF_BYTES: usize = 64 * 1024;

/// Why bytes are not a leaf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    /// Does not start with `lethe-audit-v1\n`.
    #[error("does not start with \"lethe-audit-v1\\n\"")]
    Prefix,
    /// Longer than [`MAX_LEAF_BYTES`].
    #[error("{0} bytes is over the leaf limit")]
    TooLarge(usize),
    /// Not strict JSON (duplicate keys, floats, syntax).
    #[error("not strict JSON: {0}")]
    Json(String),
    /// JSON, but not in canonical form.
    #[error("JSON is not in canonical form")]
    NotCanonical,
    /// A field is missing, extra, or of the wrong shape.
    #[error("field {field}: {problem}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An unexpected field.
    #[error("unexpected field {0:?}")]
    Extra(String),
}

/// Encode entry number `seq`, applying the write rules (no secret or patient
/// keys, labels are tokens, size limit).
pub fn encode_leaf(seq: u64, entry: &Entry) -> Result<Vec<u8>, EntryError> {
    entry.detail.check()?;
    let leaf = encode_unchecked(seq, entry);
    if leaf.len() > MAX_LEAF_BYTES {
        return Err(EntryError::TooLarge(leaf.len()));
    }
    Ok(leaf)
}

fn encode_unchecked(seq: u64, e: &Entry) -> Vec<u8> {
    let tags: Map<String, Value> = e
        .tags
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.as_str().to_owned())))
        .collect();
    let mut o = Map::new();
    o.insert("action".into(), e.action.as_str().into());
    o.insert("detail".into(), Value::Object(e.detail.as_json().clone()));
    o.insert("entity".into(), e.entity.as_str().into());
    o.insert("outcome".into(), e.outcome.as_str().into());
    o.insert("record_id".into(), e.record_id.as_str().into());
    o.insert("seq".into(), seq.into());
    o.insert("source".into(), e.source.as_str().into());
    o.insert("tags".into(), Value::Object(tags));
    o.insert("time".into(), e.time.to_string().into());
    o.insert("user_id".into(), e.user_id.as_str().into());
    let mut out = LEAF_PREFIX.to_vec();
    // Integers, strings and objects only: the canonical writer cannot fail.
    out.extend(to_canonical(&Value::Object(o)).unwrap_or_default());
    out
}

const FIELDS: [&str; 10] = [
    "action",
    "detail",
    "entity",
    "outcome",
    "record_id",
    "seq",
    "source",
    "tags",
    "time",
    "user_id",
];

/// Decode a leaf into its sequence number and entry. Accepts exactly the
/// bytes [`encode_leaf`] writes (names this build does not know decode as
/// `Unrecognised`).
pub fn decode_leaf(bytes: &[u8]) -> Result<(u64, Entry), LeafError> {
    if bytes.len() > MAX_LEAF_BYTES {
        return Err(LeafError::TooLarge(bytes.len()));
    }
    let json = bytes.strip_prefix(LEAF_PREFIX).ok_or(LeafError::Prefix)?;
    let value = parse_strict(json).map_err(|e| LeafError::Json(format!("{e:?}")))?;
    let Value::Object(mut o) = value else {
        return Err(LeafError::Field {
            field: "(leaf)",
            problem: "is not a JSON object",
        });
    };
    if let Some(extra) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(LeafError::Extra(extra.clone()));
    }
    let seq = take(&mut o, "seq")?
        .as_u64()
        .ok_or(bad("seq", "is not a non-negative integer"))?;
    let entry = Entry {
        action: Action::decode(&string(&mut o, "action")?).ok_or(bad("action", "is not a name"))?,
        entity: Entity::decode(&string(&mut o, "entity")?).ok_or(bad("entity", "is not a name"))?,
        outcome: Outcome::decode(&string(&mut o, "outcome")?)
            .ok_or(bad("outcome", "is not a name"))?,
        source: Source::decode(&string(&mut o, "source")?).ok_or(bad("source", "is not a name"))?,
        record_id: RecordId::new(string(&mut o, "record_id")?)
            .map_err(|_| bad("record_id", "is not a token"))?,
        user_id: UserId::new(string(&mut o, "user_id")?)
            .map_err(|_| bad("user_id", "is not a token"))?,
        time: AuditTime::parse(&string(&mut o, "time")?)
            .map_err(|_| bad("time", "is not YYYY-MM-DDTHH:MM:SSZ"))?,
        detail: match take(&mut o, "detail")? {
            Value::Object(m) => Detail::decoded(m),
            _ => return Err(bad("detail", "is not an object")),
        },
        tags: decode_tags(take(&mut o, "tags")?)?,
    };
    // Everything parsed; now insist on the one spelling.
    if encode_unchecked(seq, &entry) != bytes {
        return Err(LeafError::NotCanonical);
    }
    Ok((seq, entry))
}

fn bad(field: &'static str, problem: &'static str) -> LeafError {
    LeafError::Field { field, problem }
}

fn take(o: &mut Map<String, Value>, field: &'static str) -> Result<Value, LeafError> {
    o.remove(field).ok_or(bad(field, "is missing"))
}

fn string(o: &mut Map<String, Value>, field: &'static str) -> Result<String, LeafError> {
    match take(o, field)? {
        Value::String(s) => Ok(s),
        _ => Err(bad(field, "is not a string")),
    }
}

fn decode_tags(v: Value) -> Result<Tags, LeafError> {
    let Value::Object(m) = v else {
        return Err(bad("tags", "is not an object"));
    };
    let mut tags = Tags::new();
    for (k, v) in m {
        let kind = TagKind::decode(&k).ok_or(bad("tags", "has a key that is not a name"))?;
        let Value::String(s) = v else {
            return Err(bad("tags", "has a value that is not a string"));
        };
        let token = Token::new(s).map_err(|_| bad("tags", "has a value that is not a token"))?;
        tags = tags.with(kind, token);
    }
    Ok(tags)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The entry of the first vector in docs/audit-log.md.
    pub(crate) fn vector_entry() -> Entry {
        Entry::new(
            AuditTime::parse("2026-11-23T14:05:01Z").unwrap(),
            Source::Daemon,
            UserId::daemon(),
            Action::JobStarted,
            Entity::Job,
            RecordId::new("wipe-20261123T140501Z-3fa9c2").unwrap(),
            Outcome::Success,
        )
        .with_detail(
            Detail::new()
                .label("level", "clear")
                .label("method", "overwrite")
                .count("passes", 1)
                .token(
                    "device",
                    &Token::new("WDC_WD10EZEX-00BN5A0_WD-WCC3F7XXXXXX").unwrap(),
                ),
        )
        .with_tag(TagKind::Bay, Token::new("bay-1").unwrap())
    }

    #[test]
    fn encodes_canonically_and_round_trips() {
        let e = vector_entry();
        let leaf = encode_leaf(0, &e).unwrap();
        let text = std::str::from_utf8(&leaf).unwrap();
        assert_eq!(
            text,
            "lethe-audit-v1\n{\"action\":\"job.started\",\"detail\":{\"device\":\"WDC_WD10EZEX-00BN5A0_WD-WCC3F7XXXXXX\",\"level\":\"clear\",\"method\":\"overwrite\",\"passes\":1},\"entity\":\"job\",\"outcome\":\"success\",\"record_id\":\"wipe-20261123T140501Z-3fa9c2\",\"seq\":0,\"source\":\"daemon\",\"tags\":{\"bay\":\"bay-1\"},\"time\":\"2026-11-23T14:05:01Z\",\"user_id\":\"lethe:daemon\"}"
        );
        assert_eq!(decode_leaf(&leaf).unwrap(), (0, e));
    }

    #[test]
    fn refuses_every_other_spelling() {
        let leaf = encode_leaf(7, &vector_entry()).unwrap();
        let text = String::from_utf8(leaf.clone()).unwrap();
        let cases: Vec<(String, &str)> = vec![
            (
                text.replacen("lethe-audit-v1", "lethe-audit-v2", 1),
                "prefix",
            ),
            (
                text.replacen("{\"action\"", "{ \"action\"", 1),
                "whitespace",
            ),
            (text.replacen("\"seq\":7", "\"seq\":7.0", 1), "float"),
            (text.replacen("\"seq\":7", "\"seq\":-7", 1), "negative seq"),
            (
                text.replacen("\"entity\":\"job\",", "", 1).replacen(
                    "{\"action",
                    "{\"entity\":\"job\",\"action",
                    1,
                ),
                "unsorted",
            ),
            (
                text.replacen(",\"user_id\"", ",\"x\":1,\"user_id\"", 1),
                "extra",
            ),
            (
                text.replacen(",\"tags\":{\"bay\":\"bay-1\"}", "", 1),
                "missing",
            ),
            (
                text.replacen(
                    "\"time\":\"2026-11-23T14:05:01Z\"",
                    "\"time\":\"2026-11-23T14:05:01+00:00\"",
                    1,
                ),
                "time",
            ),
            (text.replacen("lethe:daemon", "lethe daemon", 1), "token"),
            (format!("{text} "), "trailing"),
            (
                text.replacen(
                    "\"action\":\"job.started\"",
                    "\"action\":\"job.started\",\"action\":\"job.ended\"",
                    1,
                ),
                "dup",
            ),
        ];
        for (bad, what) in cases {
            assert!(
                decode_leaf(bad.as_bytes()).is_err(),
                "{what}: accepted {bad}"
            );
        }
        assert!(decode_leaf(&leaf).is_ok());
    }

    #[test]
    fn unknown_names_survive_a_round_trip() {
        let leaf = String::from_utf8(encode_leaf(3, &vector_entry()).unwrap())
            .unwrap()
            .replace("job.started", "job.teleported")
            .replace("\"bay\":", "\"zone\":");
        let (seq, e) = decode_leaf(leaf.as_bytes()).unwrap();
        assert_eq!(seq, 3);
        assert_eq!(e.action.as_str(), "job.teleported");
        assert_eq!(encode_unchecked(3, &e), leaf.as_bytes());
    }

    #[test]
    fn write_rules_apply_on_encode() {
        let e = vector_entry().with_detail(Detail::new().label("password", "x"));
        assert!(matches!(
            encode_leaf(0, &e),
            Err(EntryError::ForbiddenKey(_))
        ));
        let big = "a".repeat(100);
        let mut d = Detail::new();
        for k in KEYS {
            d = d.token(k, &Token::new(big.clone()).unwrap());
        }
        let e = vector_entry().with_detail(Detail::new().object("a", d.clone()).object("b", d));
        assert!(encode_leaf(0, &e).is_ok());
    }

    // Static keys for the size test.
    const KEYS: [&str; 8] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];

    fn arb_token() -> impl Strategy<Value = Token> {
        "[A-Za-z0-9][A-Za-z0-9._:@/-]{0,40}".prop_map(|s| Token::new(s).unwrap())
    }

    pub(crate) fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            0i64..4_000_000_000,
            prop::sample::select(Action::ALL.to_vec()),
            prop::sample::select(Entity::ALL.to_vec()),
            prop::sample::select(Source::ALL.to_vec()),
            prop::sample::select(Outcome::ALL.to_vec()),
            arb_token(),
            arb_token(),
            prop::option::of(arb_token()),
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(
                |(t, action, entity, source, outcome, user, rec, tag, n, b)| {
                    let mut e = Entry::new(
                        AuditTime::from_unix(t).unwrap(),
                        source,
                        UserId::new(user.as_str()).unwrap(),
                        action,
                        entity,
                        RecordId::new(rec.as_str()).unwrap(),
                        outcome,
                    )
                    .with_detail(Detail::new().count("bytes", n).flag("verified", b));
                    if let Some(tag) = tag {
                        e = e.with_tag(TagKind::Session, tag);
                    }
                    e
                },
            )
    }

    proptest! {
        #[test]
        fn any_entry_round_trips(e in arb_entry(), seq in any::<u64>()) {
            let leaf = encode_leaf(seq, &e).unwrap();
            prop_assert_eq!(decode_leaf(&leaf).unwrap(), (seq, e));
        }

        #[test]
        fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let mut leaf = LEAF_PREFIX.to_vec();
            leaf.extend(bytes);
            let _ = decode_leaf(&leaf);
        }
    }
}
