//! When to try a delivery again: a pure schedule (time passed in).
//!
//! Delays grow exponentially from `first` (doubling) up to `max_delay`; after
//! `attempts` tries the delivery is recorded as failed. The delay sequence
//! comes from `backon`'s exponential builder without jitter, so a test (and a
//! reader of the attempt log) can predict every time.

use crate::label::Timestamp;
use backon::{BackoffBuilder, ExponentialBuilder};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The retry schedule of every channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub first: Duration,
    /// Longest delay between two attempts.
    pub max_delay: Duration,
    /// Attempts in all (the first one included) before giving up.
    pub attempts: u32,
}

impl Default for RetryPolicy {
    /// 30 s, doubling to at most 1 h, 12 attempts (about 6 h in all).
    fn default() -> Self {
        RetryPolicy {
            first: Duration::from_secs(30),
            max_delay: Duration::from_secs(3600),
            attempts: 12,
        }
    }
}

/// Why an attempt did not deliver, or how it did: a closed set, so no reply
/// text from a server (which could echo anything) is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detail {
    /// HTTP status of the webhook's answer.
    Http(u16),
    /// SMTP reply code of the relay.
    Smtp(u16),
    /// No connection (refused, unreachable, DNS).
    Connect,
    /// No answer in time.
    Timeout,
    /// TLS handshake or certificate failure.
    Tls,
    /// Another transport-level failure.
    Transport,
    /// The message could not be built (bad address).
    Message,
    /// The peer lacks something required (e.g. a login mechanism we accept).
    Protocol,
    /// The channel is no longer configured.
    ChannelRemoved,
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Http(c) => write!(f, "HTTP {c}"),
            Detail::Smtp(c) => write!(f, "SMTP {c}"),
            Detail::Connect => f.write_str("connection failed"),
            Detail::Timeout => f.write_str("timed out"),
            Detail::Tls => f.write_str("TLS failure"),
            Detail::Transport => f.write_str("transport failure"),
            Detail::Message => f.write_str("message could not be built"),
            Detail::Protocol => f.write_str("peer lacks a required feature"),
            Detail::ChannelRemoved => f.write_str("channel no longer configured"),
        }
    }
}

/// The result of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum Outcome {
    /// The receiver accepted it.
    Delivered(Detail),
    /// Failed in a way that may pass (server error, no connection).
    Retryable(Detail),
    /// Failed in a way that retrying will not fix (the receiver refused it).
    Permanent(Detail),
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Done: delivered.
    Delivered,
    /// Try again at this time.
    RetryAt(Timestamp),
    /// Done: recorded as failed.
    Failed(FailReason),
}

/// Why a delivery was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// The receiver refused it.
    Refused,
    /// Every allowed attempt failed.
    Exhausted,
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1-based), or `None`
    /// when it was the last one allowed.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || attempt >= self.attempts {
            return None;
        }
        ExponentialBuilder::new()
            .with_min_delay(self.first)
            .with_max_delay(self.max_delay.max(self.first))
            .with_factor(2.0)
            .with_max_times(self.attempts as usize - 1)
            .build()
            .nth(attempt as usize - 1)
    }

    /// What follows attempt number `attempt` (1-based) with `outcome`, made at `now`.
    pub fn decide(&self, attempt: u32, outcome: &Outcome, now: Timestamp) -> Next {
        match outcome {
            Outcome::Delivered(_) => Next::Delivered,
            Outcome::Permanent(_) => Next::Failed(FailReason::Refused),
            // At least a second later, so a zero delay cannot spin.
            Outcome::Retryable(_) => match self.delay_after(attempt) {
                Some(d) => Next::RetryAt(now + d.max(Duration::from_secs(1))),
                None => Next::Failed(FailReason::Exhausted),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_schedule() {
        let p = RetryPolicy::default();
        let delays: Vec<u64> = (1..p.attempts)
            .map(|n| p.delay_after(n).unwrap().as_secs())
            .collect();
        assert_eq!(
            delays,
            [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]
        );
        assert_eq!(p.delay_after(12), None);
        assert_eq!(p.delay_after(0), None);
    }

    #[test]
    fn decisions() {
        let p = RetryPolicy {
            first: Duration::from_secs(10),
            max_delay: Duration::from_secs(15),
            attempts: 3,
        };
        let now = Timestamp::from_unix(1000);
        let busy = Outcome::Retryable(Detail::Http(503));
        assert_eq!(
            p.decide(1, &busy, now),
            Next::RetryAt(Timestamp::from_unix(1010))
        );
        assert_eq!(
            p.decide(2, &busy, now),
            Next::RetryAt(Timestamp::from_unix(1015))
        );
        assert_eq!(p.decide(3, &busy, now), Next::Failed(FailReason::Exhausted));
        let zero = RetryPolicy {
            first: Duration::ZERO,
            max_delay: Duration::ZERO,
            attempts: 3,
        };
        assert_eq!(
            zero.decide(1, &busy, now),
            Next::RetryAt(Timestamp::from_unix(1001))
        );
        assert_eq!(
            p.decide(1, &Outcome::Permanent(Detail::Http(410)), now),
            Next::Failed(FailReason::Refused)
        );
        assert_eq!(
            p.decide(3, &Outcome::Delivered(Detail::Http(200)), now),
            Next::Delivered
        );
    }

    proptest! {
        /// Delays never shrink, never exceed the cap (or `first`, if larger),
        /// and stop exactly at the attempt limit.
        #[test]
        fn schedule_is_monotonic_and_bounded(first in 1u64..10_000, cap in 1u64..100_000, attempts in 1u32..40) {
            let p = RetryPolicy { first: Duration::from_secs(first), max_delay: Duration::from_secs(cap), attempts };
            let mut last = Duration::ZERO;
            for n in 1..attempts {
                let d = p.delay_after(n).unwrap();
                prop_assert!(d >= last);
                prop_assert!(d <= Duration::from_secs(cap.max(first)));
                last = d;
            }
            prop_assert_eq!(p.delay_after(attempts), None);
        }
    }
}
