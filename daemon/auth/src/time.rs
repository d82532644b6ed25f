//! Time as a value. Every function of this crate that depends on the clock takes a
//! [`Timestamp`]; only the edge (the daemon) reads the wall clock, with
//! [`Timestamp::now`], so tests move time by hand.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time: milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From milliseconds since the epoch.
    pub const fn from_unix_ms(ms: u64) -> Self {
        Timestamp(ms)
    }

    /// From whole seconds since the epoch.
    pub const fn from_unix_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn unix_ms(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down).
    pub const fn unix_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The wall clock. Only edges call this; everything else is handed a value.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// `self + d`, saturating at the far future.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// `self - d`, saturating at the epoch.
    pub fn minus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// Time elapsed from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// As a signed SQLite integer (milliseconds); saturates past year 292 million.
    pub(crate) fn to_sql(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// From a stored SQLite integer; negative values (never written) map to the epoch.
    pub(crate) fn from_sql(v: i64) -> Self {
        Timestamp(u64::try_from(v).unwrap_or(0))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = UNIX_EPOCH + Duration::from_millis(self.0);
        write!(f, "{}", humantime::format_rfc3339_millis(t))
    }
}

/// Serde helpers for durations written as `"10m"`, `"30s"`, `"8h"` in the configuration.
pub mod duration_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes a duration in humantime's form (`"10m"`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Reads `"10m"`, `"30s"`, `"1h 30m"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix_secs(10);
        assert_eq!(t.plus(Duration::from_millis(1500)).unix_ms(), 11_500);
        assert_eq!(t.minus(Duration::from_secs(20)), Timestamp::EPOCH);
        assert_eq!(
            t.since(Timestamp::from_unix_secs(4)),
            Duration::from_secs(6)
        );
        assert_eq!(Timestamp::from_unix_secs(4).since(t), Duration::ZERO);
        assert_eq!(
            Timestamp::from_unix_ms(u64::MAX)
                .plus(Duration::from_secs(1))
                .unix_ms(),
            u64::MAX
        );
        assert_eq!(Timestamp::from_sql(-5), Timestamp::EPOCH);
        assert_eq!(Timestamp::from_sql(t.to_sql()), t);
    }

    #[test]
    fn displays_rfc3339() {
        assert_eq!(
            Timestamp::from_unix_ms(1_111_111_111_123).to_string(),
            "2005-03-18T01:58:31.123Z"
        );
    }

    #[test]
    fn durations_parse_from_configuration_text() {
        #[derive(serde::Deserialize)]
        struct C {
            #[serde(with = "duration_text")]
            d: Duration,
        }
        let c: C = serde_json::from_str(r#"{"d":"10m"}"#).unwrap();
        assert_eq!(c.d, Duration::from_secs(600));
        let c: C = serde_json::from_str(r#"{"d":"30s"}"#).unwrap();
        assert_eq!(c.d, Duration::from_secs(30));
        assert!(serde_json::from_str::<C>(r#"{"d":"ten minutes"}"#).is_err());
    }
}
