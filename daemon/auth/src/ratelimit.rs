//! Per-source-address token bucket for unauthenticated routes (login,
//! re-authentication), as vaultwarden does with governor. IPv6 sources are
//! keyed by their /64 (one host usually owns a whole /64), IPv4-mapped IPv6 by
//! the IPv4 address. The table is bounded: when full, buckets that have refilled
//! (idle sources) are dropped first, then the least recently seen.

use crate::time::{duration_text, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// Bucket shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitPolicy {
    /// Attempts allowed in a burst (10).
    pub burst: u32,
    /// One attempt is regained per this interval (6 s: 10 a minute sustained).
    #[serde(with = "duration_text")]
    pub refill_every: Duration,
    /// Sources tracked at most (16384).
    pub max_sources: usize,
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        RateLimitPolicy {
            burst: 10,
            refill_every: Duration::from_secs(6),
            max_sources: 16384,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens × 1000 (integer arithmetic).
    milli: u64,
    last: Timestamp,
}

/// The limiter (in memory: a restart forgives, the account soft lock does not).
#[derive(Debug, Default)]
pub struct SourceRateLimiter {
    policy: RateLimitPolicy,
    buckets: HashMap<IpAddr, Bucket>,
}

/// The key a source is counted under.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut seg = v6.segments();
            seg[4..].fill(0);
            IpAddr::V6(seg.into())
        }
    }
}

impl SourceRateLimiter {
    /// A limiter with `policy`.
    pub fn new(policy: RateLimitPolicy) -> Self {
        SourceRateLimiter {
            policy,
            buckets: HashMap::new(),
        }
    }

    fn cap(&self) -> u64 {
        u64::from(self.policy.burst.max(1)) * 1000
    }

    fn refill(&self, b: &mut Bucket, now: Timestamp) {
        let per_ms = self.policy.refill_every.as_millis().max(1) as u64;
        let gained = now.since(b.last).as_millis() as u64 * 1000 / per_ms;
        if gained > 0 {
            b.milli = (b.milli + gained).min(self.cap());
            b.last = now;
        } else if now < b.last {
            b.last = now; // clock stepped back: restart the interval
        }
    }

    /// Takes one token for `ip`; `Err(wait)` when empty.
    pub fn check(&mut self, ip: IpAddr, now: Timestamp) -> Result<(), Duration> {
        let key = source_key(ip);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.policy.max_sources {
            self.evict(now);
        }
        let cap = self.cap();
        let mut b = self.buckets.get(&key).copied().unwrap_or(Bucket {
            milli: cap,
            last: now,
        });
        self.refill(&mut b, now);
        let result = if b.milli >= 1000 {
            b.milli -= 1000;
            Ok(())
        } else {
            let per_ms = self.policy.refill_every.as_millis().max(1) as u64;
            let missing = 1000 - b.milli;
            Err(Duration::from_millis((missing * per_ms).div_ceil(1000)))
        };
        self.buckets.insert(key, b);
        result
    }

    fn evict(&mut self, now: Timestamp) {
        let cap = self.cap();
        let full: Vec<IpAddr> = self
            .buckets
            .iter()
            .filter(|(_, b)| {
                let mut b = **b;
                self.refill(&mut b, now);
                b.milli >= cap
            })
            .map(|(k, _)| *k)
            .collect();
        for k in full {
            self.buckets.remove(&k);
        }
        while self.buckets.len() >= self.policy.max_sources {
            let Some(oldest) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.buckets.remove(&oldest);
        }
    }

    /// Sources currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_refill() {
        let mut l = SourceRateLimiter::new(RateLimitPolicy::default());
        let t0 = Timestamp::from_unix_secs(100);
        for _ in 0..10 {
            l.check(ip("192.0.2.1"), t0).unwrap();
        }
        assert_eq!(l.check(ip("192.0.2.1"), t0), Err(Duration::from_secs(6)));
        // another source is unaffected
        l.check(ip("192.0.2.2"), t0).unwrap();
        assert_eq!(
            l.check(ip("192.0.2.1"), t0.plus(Duration::from_secs(3))),
            Err(Duration::from_secs(3))
        );
        l.check(ip("192.0.2.1"), t0.plus(Duration::from_secs(6)))
            .unwrap();
        assert!(l
            .check(ip("192.0.2.1"), t0.plus(Duration::from_secs(6)))
            .is_err());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        assert_eq!(source_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(source_key(ip("::ffff:192.0.2.9")), ip("192.0.2.9"));
        let mut l = SourceRateLimiter::new(RateLimitPolicy {
            burst: 2,
            ..Default::default()
        });
        let t0 = Timestamp::from_unix_secs(100);
        l.check(ip("2001:db8:1:2::1"), t0).unwrap();
        l.check(ip("2001:db8:1:2::2"), t0).unwrap();
        assert!(l.check(ip("2001:db8:1:2:ffff::3"), t0).is_err());
        l.check(ip("2001:db8:1:3::1"), t0).unwrap();
    }

    #[test]
    fn table_is_bounded_and_keeps_busy_sources() {
        let mut l = SourceRateLimiter::new(RateLimitPolicy {
            burst: 2,
            max_sources: 4,
            ..Default::default()
        });
        let t0 = Timestamp::from_unix_secs(100);
        // a busy attacker
        l.check(ip("10.0.0.1"), t0).unwrap();
        l.check(ip("10.0.0.1"), t0).unwrap();
        for i in 2..50 {
            let _ = l.check(
                ip(&format!("10.0.0.{i}")),
                t0.plus(Duration::from_millis(i)),
            );
            assert!(l.tracked() <= 4);
        }
        // the busy source was least recently seen and got evicted eventually, but
        // never while fuller buckets existed; with refills all equal, just bound
        assert!(l.tracked() <= 4);
    }

    proptest! {
        /// safeguard: 164.312(d)
        #[test]
        fn never_more_than_burst_plus_refill(gaps in proptest::collection::vec(0u64..3000, 1..200)) {
            let p = RateLimitPolicy::default();
            let mut l = SourceRateLimiter::new(p.clone());
            let t0 = Timestamp::from_unix_secs(1000);
            let mut now = t0;
            let mut allowed = 0u64;
            for g in gaps {
                now = now.plus(Duration::from_millis(g));
                if l.check(ip("198.51.100.7"), now).is_ok() { allowed += 1; }
            }
            let elapsed = now.since(t0).as_millis() as u64;
            let bound = u64::from(p.burst) + elapsed / p.refill_every.as_millis() as u64;
            prop_assert!(allowed <= bound, "{allowed} > {bound}");
        }
    }
}
