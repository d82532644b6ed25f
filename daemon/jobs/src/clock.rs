//! Wall-clock time, passed in: job records, certificates and leases read the
//! time through [`Clock`] so a test can move it.

use std::time::{SystemTime, UNIX_EPOCH};

/// The time source of a job library.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn unix_now(&self) -> i64;

    /// RFC 3339 UTC of [`Clock::unix_now`].
    fn rfc3339(&self) -> String {
        lethe_core::timefmt::rfc3339_utc(self.unix_now())
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}
