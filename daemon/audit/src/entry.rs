//! One audit entry: who did what to which record, when, from where, and how
//! it ended.
//!
//! # No patient data, no secrets
//!
//! An audit log is kept for years and shown to auditors, so an entry must
//! never hold patient data (file names, file contents, volume labels, patient
//! or staff names in free text) or secrets (keys, passwords, TOTP seeds,
//! session cookies, recovery codes). The types make that hard to get wrong:
//!
//! - there is no free-text field. Identifiers are [`Token`]s: 1–128 bytes of
//!   `[A-Za-z0-9._:@/-]` starting with a letter or digit (no spaces, so no
//!   sentences or names "First Last"), for job ids, certificate ids, key ids,
//!   user names, serial numbers;
//! - the detail object is built with [`Detail`]: its keys are `&'static str`
//!   (chosen in code, never from input) and its values are integers, booleans,
//!   labels (`&'static str`, so again chosen in code), tokens, hex digests and
//!   nested details. A key that names a secret or patient field (words
//!   containing `password`, `passwd`, `passphrase`, `secret`, `private`,
//!   `totp`, `credential`, `cookie`, `patient` or `birth`, or the words
//!   `seed`, `otp`, `mrn`, `ssn`, `dob`, `pin`) is refused when the entry is
//!   written;
//! - keys are referred to by key id, sessions by their public id.
//!
//! What the types cannot stop is a caller putting a patient's name into a
//! token (`JohnSmith`). Callers pass machine identifiers only; review keeps
//! it that way.

use crate::names::{Action, Entity, Outcome, Source, TagKind};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Why an entry cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// A token with characters or a length a token may not have.
    #[error(
        "{0:?} is not a token (1-128 bytes of [A-Za-z0-9._:@/-], starting with a letter or digit)"
    )]
    BadToken(String),
    /// A time outside years 0000-9999 or not in `YYYY-MM-DDTHH:MM:SSZ` form.
    #[error("{0:?} is not an RFC 3339 UTC time of the form YYYY-MM-DDTHH:MM:SSZ")]
    BadTime(String),
    /// A detail key that is not `[a-z][a-z0-9_]{0,63}`.
    #[error("detail key {0:?} is not [a-z][a-z0-9_]{{0,63}}")]
    BadKey(String),
    /// A detail key that names a secret or patient field.
    #[error("detail key {0:?} names a secret or patient field; audit entries must not hold those")]
    ForbiddenKey(String),
    /// A detail label that is not a token.
    #[error("detail label {0:?} is not a token")]
    BadLabel(String),
    /// The encoded entry is larger than a leaf may be.
    #[error("the entry encodes to {0} bytes; the limit is {max}", max = crate::leaf::MAX_LEAF_BYTES)]
    TooLarge(usize),
}

/// An identifier: 1-128 bytes of `[A-Za-z0-9._:@/-]`, starting with an ASCII
/// letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(String);

impl Token {
    /// Check and wrap `s`.
    pub fn new(s: impl Into<String>) -> Result<Self, EntryError> {
        let s = s.into();
        if is_token(&s) {
            Ok(Token(s))
        } else {
            Err(EntryError::BadToken(s))
        }
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn is_token(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|&c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'@' | b'/' | b'-')
        })
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who acted: a user name, or one of the appliance's own principals.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Token);

impl UserId {
    /// A user name (a token).
    pub fn new(s: impl Into<String>) -> Result<Self, EntryError> {
        Token::new(s).map(UserId)
    }

    /// The daemon acting on its own (schedules, hotplug policies).
    pub fn daemon() -> Self {
        UserId(Token("lethe:daemon".into()))
    }

    /// A local Unix account running the CLI, by uid (`uid:0` for root).
    pub fn unix_uid(uid: u32) -> Self {
        UserId(Token(format!("uid:{uid}")))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which record an action concerns (a job id, certificate id, key id...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId(Token);

impl RecordId {
    /// A record id (a token).
    pub fn new(s: impl Into<String>) -> Result<Self, EntryError> {
        Token::new(s).map(RecordId)
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A UTC time with whole seconds, written `YYYY-MM-DDTHH:MM:SSZ`. Passed in
/// by the caller: the log never reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditTime(i64);

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the four-digit years.
const MIN_UNIX: i64 = -62_167_219_200;
const MAX_UNIX: i64 = 253_402_300_799;

impl AuditTime {
    /// From Unix seconds (years 0000-9999).
    pub fn from_unix(secs: i64) -> Result<Self, EntryError> {
        if (MIN_UNIX..=MAX_UNIX).contains(&secs) {
            Ok(AuditTime(secs))
        } else {
            Err(EntryError::BadTime(secs.to_string()))
        }
    }

    /// Parse `YYYY-MM-DDTHH:MM:SSZ` exactly (no offsets, no fractions), so
    /// each instant has one spelling.
    pub fn parse(s: &str) -> Result<Self, EntryError> {
        lethe_core::timefmt::parse_rfc3339_utc(s)
            .filter(|t| (MIN_UNIX..=MAX_UNIX).contains(t))
            .map(AuditTime)
            .ok_or_else(|| EntryError::BadTime(s.to_owned()))
    }

    /// Unix seconds.
    pub fn unix(&self) -> i64 {
        self.0
    }
}

impl fmt::Display for AuditTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&lethe_core::timefmt::rfc3339_utc(self.0))
    }
}

/// Parts of words a detail key may not contain (secrets and patient fields).
const FORBIDDEN_KEY_PARTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "private",
    "totp",
    "credential",
    "cookie",
    "patient",
    "birth",
];

/// Whole words a detail key may not contain (too short to match inside words).
const FORBIDDEN_KEY_WORDS: &[&str] = &["seed", "otp", "mrn", "ssn", "dob", "pin"];

fn check_key(key: &str) -> Result<(), EntryError> {
    let b = key.as_bytes();
    let well_formed = !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    if !well_formed {
        return Err(EntryError::BadKey(key.to_owned()));
    }
    if key.split('_').any(|w| {
        FORBIDDEN_KEY_WORDS.contains(&w) || FORBIDDEN_KEY_PARTS.iter().any(|f| w.contains(f))
    }) {
        return Err(EntryError::ForbiddenKey(key.to_owned()));
    }
    Ok(())
}

/// The structured detail of an entry: a JSON object built from typed values.
///
/// ```
/// use lethe_audit::{Detail, Token};
/// let d = Detail::new()
///     .label("level", "clear")
///     .count("bytes_verified", 1 << 30)
///     .flag("verified", true)
///     .token("serial", &Token::new("WD-WX12A3456789").unwrap());
/// assert_eq!(d.len(), 4);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    map: Map<String, Value>,
    /// The first key or label a builder call got wrong, reported on write.
    problem: Option<EntryError>,
}

impl Detail {
    /// An empty detail object.
    pub fn new() -> Self {
        Self::default()
    }

    fn put(mut self, key: &'static str, value: Value) -> Self {
        if self.problem.is_none() {
            if let Err(e) = check_key(key) {
                self.problem = Some(e);
            }
        }
        self.map.insert(key.to_owned(), value);
        self
    }

    /// The first key or label a builder call got wrong (the log refuses
    /// such an entry when it is written).
    pub fn problem(&self) -> Option<&EntryError> {
        self.problem.as_ref()
    }

    /// A non-negative count (bytes, passes, seconds...).
    pub fn count(self, key: &'static str, n: u64) -> Self {
        self.put(key, Value::from(n))
    }

    /// A signed integer.
    pub fn int(self, key: &'static str, n: i64) -> Self {
        self.put(key, Value::from(n))
    }

    /// A boolean.
    pub fn flag(self, key: &'static str, b: bool) -> Self {
        self.put(key, Value::Bool(b))
    }

    /// A label chosen in code (`"clear"`, `"mounted"`); must be a token.
    pub fn label(mut self, key: &'static str, label: &'static str) -> Self {
        if self.problem.is_none() && !is_token(label) {
            self.problem = Some(EntryError::BadLabel(label.to_owned()));
        }
        self.put(key, Value::String(label.to_owned()))
    }

    /// An identifier (a serial number, a job id, a key id).
    pub fn token(self, key: &'static str, token: &Token) -> Self {
        self.put(key, Value::String(token.as_str().to_owned()))
    }

    /// A digest, written as lowercase hex.
    pub fn digest(self, key: &'static str, bytes: &[u8]) -> Self {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.put(key, Value::String(hex))
    }

    /// A list of labels chosen in code.
    pub fn labels(mut self, key: &'static str, labels: &[&'static str]) -> Self {
        if let Some(bad) = labels.iter().find(|l| !is_token(l)) {
            self.problem
                .get_or_insert(EntryError::BadLabel((*bad).to_owned()));
        }
        let v = labels
            .iter()
            .map(|l| Value::String((*l).to_owned()))
            .collect();
        self.put(key, Value::Array(v))
    }

    /// A nested detail object.
    pub fn object(mut self, key: &'static str, inner: Detail) -> Self {
        if let Some(p) = inner.problem {
            self.problem.get_or_insert(p);
        }
        self.put(key, Value::Object(inner.map))
    }

    /// Number of top-level keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The detail as a JSON object (for display and export).
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.map
    }

    /// A detail read back from a stored leaf; the write rules are not
    /// re-applied (an old entry stays readable if a rule tightens).
    pub(crate) fn decoded(map: Map<String, Value>) -> Self {
        Detail { map, problem: None }
    }

    pub(crate) fn check(&self) -> Result<(), EntryError> {
        match &self.problem {
            Some(p) => Err(p.clone()),
            None => Ok(()),
        }
    }
}

/// Optional context tags (break-glass session, re-authentication record...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(BTreeMap<TagKind, Token>);

impl Tags {
    /// No tags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set a tag.
    pub fn with(mut self, kind: TagKind, value: Token) -> Self {
        self.0.insert(kind, value);
        self
    }

    /// A tag's value.
    pub fn get(&self, kind: &TagKind) -> Option<&Token> {
        self.0.get(kind)
    }

    /// All tags.
    pub fn iter(&self) -> impl Iterator<Item = (&TagKind, &Token)> {
        self.0.iter()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One audit entry, as a writer builds it.
///
/// ```
/// use lethe_audit::*;
/// let e = Entry::new(
///     AuditTime::parse("2026-11-23T14:05:01Z").unwrap(),
///     Source::Daemon,
///     UserId::daemon(),
///     Action::JobStarted,
///     Entity::Job,
///     RecordId::new("wipe-20261123T140501Z-3fa9c2").unwrap(),
///     Outcome::Success,
/// )
/// .with_detail(Detail::new().label("level", "clear"))
/// .with_tag(TagKind::Bay, Token::new("bay-1").unwrap());
/// assert_eq!(e.action, Action::JobStarted);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When it happened (passed in by the caller).
    pub time: AuditTime,
    /// Where the request came from.
    pub source: Source,
    /// Who acted.
    pub user_id: UserId,
    /// What happened.
    pub action: Action,
    /// The kind of record concerned.
    pub entity: Entity,
    /// The record concerned.
    pub record_id: RecordId,
    /// How it ended.
    pub outcome: Outcome,
    /// Structured detail.
    pub detail: Detail,
    /// Optional context.
    pub tags: Tags,
}

impl Entry {
    /// An entry with no detail and no tags.
    pub fn new(
        time: AuditTime,
        source: Source,
        user_id: UserId,
        action: Action,
        entity: Entity,
        record_id: RecordId,
        outcome: Outcome,
    ) -> Self {
        Entry {
            time,
            source,
            user_id,
            action,
            entity,
            record_id,
            outcome,
            detail: Detail::new(),
            tags: Tags::new(),
        }
    }

    /// Set the detail object.
    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }

    /// Add a tag.
    pub fn with_tag(mut self, kind: TagKind, value: Token) -> Self {
        self.tags = self.tags.with(kind, value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_refuse_spaces_control_and_leading_punctuation() {
        for ok in [
            "a",
            "job-1",
            "WD-WX12A3456789",
            "uid:0",
            "a@b.c",
            "pci-0000:00:17.0-ata-1",
        ] {
            assert!(Token::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", " a", "a b", "-a", "/dev/sda", "=cmd()", "a\nb", "é", "a+b", "a,b", "a\"b",
        ] {
            assert!(Token::new(bad).is_err(), "{bad:?}");
        }
        assert!(Token::new("a".repeat(128)).is_ok());
        assert!(Token::new("a".repeat(129)).is_err());
    }

    #[test]
    fn time_has_one_spelling_and_four_digit_years() {
        let t = AuditTime::parse("2026-11-23T14:05:01Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-23T14:05:01Z");
        assert_eq!(AuditTime::from_unix(t.unix()).unwrap(), t);
        for bad in [
            "2026-11-23T14:05:01+00:00",
            "2026-11-23T14:05:01.5Z",
            "2026-11-23 14:05:01Z",
            "2026-02-30T00:00:00Z",
            "2026-11-23",
        ] {
            assert!(AuditTime::parse(bad).is_err(), "{bad}");
        }
        assert!(AuditTime::from_unix(MAX_UNIX).is_ok());
        assert!(AuditTime::from_unix(MAX_UNIX + 1).is_err());
        assert_eq!(
            AuditTime::from_unix(MIN_UNIX).unwrap().to_string(),
            "0000-01-01T00:00:00Z"
        );
    }

    /// safeguard: rule:secrets-in-worker, 164.312(b)
    #[test]
    fn detail_refuses_secret_and_patient_keys_and_free_text_labels() {
        assert!(Detail::new().count("bytes", 1).check().is_ok());
        for key in [
            "password",
            "admin_password_hash",
            "totp_secret",
            "key_seed",
            "patient_name",
            "mrn",
            "date_of_birth",
            "session_cookie",
            "recovery_otp",
        ] {
            let d = Detail::new().flag(key, true);
            assert!(
                matches!(d.check(), Err(EntryError::ForbiddenKey(_))),
                "{key}"
            );
        }
        for key in ["Bytes", "1x", "a-b", "", "a b"] {
            assert!(matches!(
                Detail::new().flag(key, true).check(),
                Err(EntryError::BadKey(_))
            ));
        }
        assert!(matches!(
            Detail::new().label("reason", "mounted at /mnt/x").check(),
            Err(EntryError::BadLabel(_))
        ));
        // A problem inside a nested detail surfaces at the top.
        let inner = Detail::new().flag("password", true);
        assert!(Detail::new().object("x", inner).check().is_err());
        assert!(Detail::new()
            .labels("why", &["ok", "not ok"])
            .check()
            .is_err());
        // Short words are judged whole, so ordinary words that contain them pass.
        assert!(Detail::new().count("key_id_len", 1).check().is_ok());
        assert!(Detail::new().count("classname_spinner", 1).check().is_ok());
        assert!(Detail::new().count("user_pin", 1).check().is_err());
    }
}
