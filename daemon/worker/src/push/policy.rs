//! When to push a checkpoint to one target: a pure schedule over the time
//! passed in, so a test can run hours of appends and failures in a loop.
//!
//! - Nothing is pushed while the target already holds the newest checkpoint.
//! - After a successful push the next one waits `every`: a burst of appends
//!   is one push, of the newest checkpoint when the wait ends (newest wins:
//!   older checkpoints are never queued, the newest one covers them).
//! - After `n` failed pushes in a row the next attempt waits
//!   `retry_first * 2^(n-1)`, at most `retry_max_delay`.
//! - The `alert_after`-th failure in a row raises the alert, once per streak.

use lethe_alert::Timestamp;
use std::time::Duration;

/// The schedule of one target (from `[audit.push]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Shortest time between two pushes after a success.
    pub every: Duration,
    /// Delay after the first failure.
    pub retry_first: Duration,
    /// Longest delay after failures.
    pub retry_max_delay: Duration,
    /// Failures in a row that raise the alert.
    pub alert_after: u32,
}

impl Schedule {
    /// The wait after `failures` failed pushes in a row (`failures >= 1`).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        self.retry_first
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(Duration::MAX)
            .min(self.retry_max_delay)
            // A zero delay must not spin.
            .max(Duration::from_secs(1))
    }
}

/// What one target has had so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetState {
    /// Tree size of the last checkpoint the target accepted.
    pub pushed: Option<u64>,
    /// When the last attempt was made.
    pub last_attempt: Option<Timestamp>,
    /// Failed attempts since the last success.
    pub failures: u32,
}

/// What to do for one target now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Push the newest checkpoint now.
    Now,
    /// Not before this time.
    At(Timestamp),
    /// The target holds the newest checkpoint.
    UpToDate,
}

/// What an attempt's result calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    /// Delivered (after `recovered_after` failures, if any).
    Delivered { recovered_after: u32 },
    /// Failed; retry at this time.
    Failed { failures: u32, retry_at: Timestamp },
    /// Failed, and this failure is the one that raises the alert.
    Alert { failures: u32, retry_at: Timestamp },
}

impl TargetState {
    /// Whether the checkpoint of `newest` entries should go out at `now`.
    pub fn due(&self, newest: u64, now: Timestamp, s: &Schedule) -> Due {
        if self.pushed == Some(newest) {
            return Due::UpToDate;
        }
        let Some(last) = self.last_attempt else {
            // Nothing sent since start-up: the first push goes at once.
            return Due::Now;
        };
        let wait = if self.failures == 0 {
            s.every
        } else {
            s.backoff(self.failures)
        };
        let at = last + wait;
        if at <= now {
            Due::Now
        } else {
            Due::At(at)
        }
    }

    /// Record an attempt to push the checkpoint of `size` entries at `now`.
    pub fn record(
        &mut self,
        size: u64,
        delivered: bool,
        now: Timestamp,
        s: &Schedule,
    ) -> AfterAttempt {
        self.last_attempt = Some(now);
        if delivered {
            let recovered_after = self.failures;
            self.failures = 0;
            // A slow push may complete after an older one: keep the largest.
            self.pushed = Some(self.pushed.map_or(size, |p| p.max(size)));
            return AfterAttempt::Delivered { recovered_after };
        }
        self.failures = self.failures.saturating_add(1);
        let retry_at = now + s.backoff(self.failures);
        if self.failures == s.alert_after {
            AfterAttempt::Alert {
                failures: self.failures,
                retry_at,
            }
        } else {
            AfterAttempt::Failed {
                failures: self.failures,
                retry_at,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> Schedule {
        Schedule {
            every: Duration::from_secs(60),
            retry_first: Duration::from_secs(10),
            retry_max_delay: Duration::from_secs(900),
            alert_after: 3,
        }
    }

    fn t(secs: u64) -> Timestamp {
        Timestamp::from_unix(1_800_000_000 + secs)
    }

    /// safeguard: 164.312(b)
    #[test]
    fn a_burst_of_appends_is_one_push_of_the_newest_checkpoint() {
        let s = s();
        let mut st = TargetState::default();
        // Start-up: pushed at once.
        assert_eq!(st.due(5, t(0), &s), Due::Now);
        st.record(5, true, t(0), &s);
        assert_eq!(st.due(5, t(1), &s), Due::UpToDate);
        // 1000 appends within the next minute: nothing goes out before it ends...
        let mut sent = Vec::new();
        for i in 1..=1000u64 {
            let now = t(i * 59 / 1000);
            match st.due(5 + i, now, &s) {
                Due::Now => {
                    st.record(5 + i, true, now, &s);
                    sent.push(5 + i);
                }
                Due::At(at) => assert_eq!(at, t(60)),
                Due::UpToDate => panic!("{i}"),
            }
        }
        assert!(sent.is_empty(), "{sent:?}");
        // ...then the newest one, once.
        assert_eq!(st.due(1005, t(60), &s), Due::Now);
        st.record(1005, true, t(60), &s);
        assert_eq!(st.pushed, Some(1005));
        assert_eq!(st.due(1005, t(500), &s), Due::UpToDate);
    }

    /// safeguard: 164.312(b)
    #[test]
    fn failures_back_off_doubling_to_the_maximum_and_alert_once_per_streak() {
        let s = s();
        let mut st = TargetState::default();
        let mut now = t(0);
        let mut waits = Vec::new();
        let mut alerts = Vec::new();
        for _ in 0..10 {
            assert_eq!(st.due(7, now, &s), Due::Now);
            match st.record(7, false, now, &s) {
                AfterAttempt::Failed { retry_at, .. } => {
                    waits.push(retry_at.since(now));
                    now = retry_at;
                }
                AfterAttempt::Alert { failures, retry_at } => {
                    alerts.push(failures);
                    waits.push(retry_at.since(now));
                    now = retry_at;
                }
                AfterAttempt::Delivered { .. } => unreachable!(),
            }
        }
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 900, 900, 900]);
        assert_eq!(alerts, [3]);
        // Not due before the backoff ends.
        assert_eq!(st.due(8, t(0), &s), Due::At(now));
        // Recovery resets the streak: a new streak alerts again.
        assert_eq!(
            st.record(8, true, now, &s),
            AfterAttempt::Delivered {
                recovered_after: 10
            }
        );
        for n in 1..=3 {
            let r = st.record(9, false, now, &s);
            assert_eq!(matches!(r, AfterAttempt::Alert { .. }), n == 3, "{r:?}");
        }
    }

    #[test]
    fn backoff_never_overflows_or_spins() {
        let s = Schedule {
            every: Duration::from_secs(1),
            retry_first: Duration::from_secs(86_400),
            retry_max_delay: Duration::from_secs(86_400),
            alert_after: 1,
        };
        assert_eq!(s.backoff(u32::MAX), Duration::from_secs(86_400));
        let z = Schedule {
            retry_first: Duration::ZERO,
            retry_max_delay: Duration::ZERO,
            ..s
        };
        assert_eq!(z.backoff(1), Duration::from_secs(1));
    }

    #[test]
    fn an_older_push_finishing_late_does_not_lower_what_the_target_holds() {
        let s = s();
        let mut st = TargetState::default();
        st.record(10, true, t(0), &s);
        st.record(4, true, t(1), &s);
        assert_eq!(st.pushed, Some(10));
    }
}
