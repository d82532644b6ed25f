//! Progressive per-account soft lock (kanidm's idea: never a hard lock).
//!
//! The first `free_failures` failed logins cost nothing but the failure delay.
//! Each failure after that locks the account for a doubling time, `base`,
//! `2·base`, `4·base`… capped at `max`. While locked, attempts are refused
//! without looking at the credentials and do not count. A success resets the
//! ladder; so does `reset_after` without a failure. A lock always ends by
//! itself, and console recovery lifts it at once, so the last admin can
//! always get back in.

use crate::time::{duration_text, Timestamp};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The ladder's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutPolicy {
    /// Failures allowed before the first lock (3).
    pub free_failures: u32,
    /// First lock time (30 s).
    #[serde(with = "duration_text")]
    pub base: Duration,
    /// Longest lock (30 min): an attacker gets about 2 guesses an hour per
    /// account; a locked-out user waits at most this long (or uses recovery).
    #[serde(with = "duration_text")]
    pub max: Duration,
    /// A quiet period after which the failure count starts again (24 h).
    #[serde(with = "duration_text")]
    pub reset_after: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            free_failures: 3,
            base: Duration::from_secs(30),
            max: Duration::from_secs(30 * 60),
            reset_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl LockoutPolicy {
    /// Lock time after the `failures`-th consecutive failure (zero for free ones).
    pub fn lock_for(&self, failures: u32) -> Duration {
        if failures <= self.free_failures {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free_failures - 1).min(32);
        self.base
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// An account's ladder position (stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LockState {
    /// Consecutive failures counted.
    pub failures: u32,
    /// When the last counted failure happened.
    pub last_failure: Option<Timestamp>,
    /// Locked until then (exclusive).
    pub locked_until: Option<Timestamp>,
}

/// A lock that just engaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engaged {
    pub until: Timestamp,
    pub failures: u32,
}

impl LockState {
    /// `Some(until)` while locked.
    pub fn locked_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.locked_until.filter(|u| now < *u)
    }

    /// Counts a failed attempt made at `now` (while not locked). Returns the
    /// lock it engages, if any.
    pub fn on_failure(&mut self, now: Timestamp, policy: &LockoutPolicy) -> Option<Engaged> {
        if self.locked_at(now).is_some() {
            return None; // attempts during a lock are refused unseen and not counted
        }
        if self
            .last_failure
            .is_some_and(|l| now.since(l) >= policy.reset_after)
        {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = Some(now);
        let d = policy.lock_for(self.failures);
        if d.is_zero() {
            self.locked_until = None;
            None
        } else {
            let until = now.plus(d);
            self.locked_until = Some(until);
            Some(Engaged {
                until,
                failures: self.failures,
            })
        }
    }

    /// A successful login: back to the bottom of the ladder.
    pub fn on_success(&mut self) {
        *self = LockState::default();
    }

    /// A lock whose time is over: forget the lock (not the count, so the next
    /// failure climbs on). Returns whether a lock ended.
    pub fn expire(&mut self, now: Timestamp) -> bool {
        match self.locked_until {
            Some(u) if now >= u => {
                self.locked_until = None;
                true
            }
            _ => false,
        }
    }

    /// Lifted by an admin or console recovery: clean slate.
    pub fn lift(&mut self) -> bool {
        let was = self.locked_until.is_some();
        *self = LockState::default();
        was
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_unix_secs(1_000_000 + s)
    }

    #[test]
    fn ladder() {
        let p = LockoutPolicy::default();
        let got: Vec<u64> = (1..=12).map(|n| p.lock_for(n).as_secs()).collect();
        assert_eq!(got, [0, 0, 0, 30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
        assert_eq!(p.lock_for(u32::MAX), p.max);
    }

    /// safeguard: 164.312(d)
    #[test]
    fn locks_progressively_and_resets_on_success() {
        let p = LockoutPolicy::default();
        let mut s = LockState::default();
        for i in 0..3 {
            assert_eq!(s.on_failure(t(i), &p), None);
        }
        let e = s.on_failure(t(3), &p).unwrap();
        assert_eq!(
            e,
            Engaged {
                until: t(33),
                failures: 4
            }
        );
        assert_eq!(s.locked_at(t(10)), Some(t(33)));
        // attempts during the lock are not counted
        assert_eq!(s.on_failure(t(20), &p), None);
        assert_eq!(s.failures, 4);
        assert_eq!(s.locked_at(t(33)), None);
        assert!(s.expire(t(33)));
        assert!(!s.expire(t(34)));
        let e = s.on_failure(t(40), &p).unwrap();
        assert_eq!(e.until, t(100));
        s.on_success();
        assert_eq!(s, LockState::default());
    }

    #[test]
    fn quiet_period_resets_the_count() {
        let p = LockoutPolicy::default();
        let mut s = LockState::default();
        for i in 0..3 {
            s.on_failure(t(i), &p);
        }
        assert_eq!(s.on_failure(t(2 + 24 * 3600), &p), None);
        assert_eq!(s.failures, 1);
    }

    #[test]
    fn lift_clears() {
        let p = LockoutPolicy::default();
        let mut s = LockState::default();
        for i in 0..5 {
            s.on_failure(t(i * 100), &p);
        }
        assert!(s.locked_at(t(401)).is_some());
        assert!(s.lift());
        assert_eq!(s.locked_at(t(401)), None);
        assert!(!s.lift());
    }

    proptest! {
        /// safeguard: 164.312(d)
        #[test]
        fn locks_never_exceed_max_and_always_end(steps in proptest::collection::vec((0u64..4000, any::<bool>()), 1..60)) {
            let p = LockoutPolicy::default();
            let mut s = LockState::default();
            let mut now = t(0);
            let mut prev_lock = Duration::ZERO;
            for (dt, ok) in steps {
                now = now.plus(Duration::from_secs(dt));
                let locked_before = s.locked_at(now);
                if ok {
                    if locked_before.is_none() { s.on_success(); prev_lock = Duration::ZERO; }
                } else if let Some(e) = s.on_failure(now, &p) {
                    prop_assert!(locked_before.is_none());
                    let d = e.until.since(now);
                    prop_assert!(d <= p.max);
                    // the ladder never goes down without a success or quiet period
                    prop_assert!(d >= prev_lock || s.failures <= p.free_failures + 1);
                    prev_lock = d;
                }
                if let Some(u) = s.locked_at(now) {
                    prop_assert!(u.since(now) <= p.max);
                    prop_assert!(s.locked_at(u).is_none());
                }
            }
        }
    }
}
