//! The only text an alert can carry: short validated tokens.
//!
//! An alert leaves the appliance for a webhook or a mailbox that is not
//! covered by the hospital's patient-data controls, so it must not be able to
//! carry a file name, a device label, an error message or anything an
//! operator typed. Instead of filtering strings, the alert types only accept
//! these newtypes, whose grammars leave no room for free text:
//!
//! - [`Label`]: job, bay, user, channel and request names, `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`
//!   (no spaces, no slashes: a path or a sentence cannot be a label);
//! - [`Hostname`]: the appliance's own host name (RFC 1123);
//! - [`Timestamp`]: a point in time, rendered as RFC 3339 UTC.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest label, in bytes.
pub const LABEL_MAX: usize = 64;

/// A name from the configuration or from the appliance's own records
/// (job, bay, user, webhook, break-glass request): 1–64 ASCII characters,
/// letters and digits first, then letters, digits, `.`, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Label(String);

/// A string that is not a [`Label`] or a [`Hostname`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// Not a label.
    #[error("{0:?} is not a valid name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")]
    Label(String),
    /// Not a host name.
    #[error(
        "{0:?} is not a valid host name (RFC 1123: letters, digits and '-' in dot-separated parts)"
    )]
    Hostname(String),
    /// Not an RFC 3339 time.
    #[error("{0:?} is not an RFC 3339 UTC time")]
    Timestamp(String),
}

impl Label {
    /// Validate `s` as a label.
    pub fn new(s: impl Into<String>) -> Result<Self, LabelError> {
        let s = s.into();
        if is_label(&s) {
            Ok(Label(s))
        } else {
            Err(LabelError::Label(s))
        }
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= LABEL_MAX
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

impl TryFrom<String> for Label {
    type Error = LabelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Label::new(s)
    }
}

impl From<Label> for String {
    fn from(l: Label) -> String {
        l.0
    }
}

impl FromStr for Label {
    type Err = LabelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Label::new(s)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The appliance's host name, as it appears in alerts (RFC 1123; at most 253
/// bytes, parts of 1–63 letters, digits or `-` not starting or ending with `-`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hostname(String);

impl Hostname {
    /// Validate `s` as a host name.
    pub fn new(s: impl Into<String>) -> Result<Self, LabelError> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|part| {
                let b = part.as_bytes();
                !b.is_empty()
                    && b.len() <= 63
                    && b[0] != b'-'
                    && b[b.len() - 1] != b'-'
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            });
        if ok {
            Ok(Hostname(s))
        } else {
            Err(LabelError::Hostname(s))
        }
    }

    /// The host name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Hostname {
    type Error = LabelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Hostname::new(s)
    }
}

impl From<Hostname> for String {
    fn from(h: Hostname) -> String {
        h.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A point in time, whole seconds since the Unix epoch (UTC). Serialized as
/// RFC 3339 (`2026-01-01T00:00:00Z`). Callers pass "now" in, so schedules and
/// tests control time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(u64);

impl Timestamp {
    /// From seconds since the epoch.
    pub const fn from_unix(secs: u64) -> Self {
        Timestamp(secs)
    }

    /// The current time of the system clock (for the edges that own a clock).
    pub fn now() -> Self {
        Timestamp(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }

    /// Seconds since the epoch.
    pub const fn unix(self) -> u64 {
        self.0
    }

    /// Seconds from `earlier` to `self` (0 if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// `t + d`: whole seconds, saturating.
impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.as_secs()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = UNIX_EPOCH + Duration::from_secs(self.0);
        write!(f, "{}", humantime::format_rfc3339_seconds(t))
    }
}

impl TryFrom<String> for Timestamp {
    type Error = LabelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        humantime::parse_rfc3339(&s)
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| Timestamp(d.as_secs()))
            .ok_or(LabelError::Timestamp(s))
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labels() {
        for ok in ["a", "records", "bay-1", "db_dump.v2", "0", &"x".repeat(64)] {
            assert!(Label::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".hidden",
            "a b",
            "/srv/records/Doe, John.pdf",
            "x/y",
            "é",
            "a\n",
            &"x".repeat(65),
        ] {
            assert!(Label::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostnames() {
        for ok in ["lethe", "lethe-01.radiology.example.org", "a1"] {
            assert!(Hostname::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "x-", "a..b", "a b", "a_b", &"x".repeat(64)] {
            assert!(Hostname::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_render_rfc3339() {
        let t = Timestamp::from_unix(1_767_225_600);
        assert_eq!(t.to_string(), "2026-01-01T00:00:00Z");
        assert_eq!(Timestamp::try_from(t.to_string()).unwrap(), t);
        assert!(Timestamp::try_from("yesterday".to_string()).is_err());
    }

    proptest! {
        /// Whatever a label holds, it has no space, slash, control or non-ASCII
        /// character: nothing that can spell a path or a sentence.
        #[test]
        fn a_label_is_a_token(s in "\\PC{0,80}") {
            if let Ok(l) = Label::new(s) {
                prop_assert!(l.as_str().bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c)));
            }
        }

        #[test]
        fn timestamps_round_trip(secs in 0u64..253_402_300_799) {
            let t = Timestamp::from_unix(secs);
            prop_assert_eq!(Timestamp::try_from(t.to_string()).unwrap(), t);
        }
    }
}
