//! Retries with exponential backoff and a per-attempt timeout.
//!
//! Remote backends classify each failed attempt as transient (network error, 5xx, timeout, dropped
//! session) or fatal (not found, exists, denied). Transient failures are retried until the policy
//! is exhausted; the final error names the backend, the operation and the object.

use std::future::Future;
use std::time::Duration;

use crate::error::{AttemptError, BackendError};

/// How often and how patiently remote operations are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (at least 1).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Upper bound for one delay.
    pub max_backoff: Duration,
    /// Time limit for one attempt (connect + transfer); exceeding it counts as transient.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Delay after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(1u32 << shift)
            .min(self.max_backoff)
    }
}

/// Error text for an attempt that ran past `attempt_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("attempt timed out after {0:?}")]
pub struct AttemptTimeout(pub Duration);

/// Runs `f` until it succeeds, fails fatally, or the policy is exhausted.
pub(crate) async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    backend: &str,
    op: &'static str,
    name: &str,
    mut f: F,
) -> Result<T, BackendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let max = policy.max_attempts.max(1);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let err = match tokio::time::timeout(policy.attempt_timeout, f()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(AttemptError::Fatal(e))) => return Err(e),
            Ok(Err(AttemptError::Transient(e))) => e,
            Err(_) => Box::new(AttemptTimeout(policy.attempt_timeout)) as _,
        };
        if attempt >= max {
            return Err(BackendError::Failed {
                backend: backend.to_string(),
                op,
                name: name.to_string(),
                attempts: attempt,
                source: err,
            });
        }
        tokio::time::sleep(policy.backoff(attempt)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(25),
            attempt_timeout: Duration::from_millis(200),
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = quick();
        assert_eq!(p.backoff(1), Duration::from_millis(10));
        assert_eq!(p.backoff(2), Duration::from_millis(20));
        assert_eq!(p.backoff(3), Duration::from_millis(25));
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(25));
    }

    #[tokio::test]
    async fn transient_errors_are_retried_then_reported() {
        let calls = AtomicU32::new(0);
        let start = std::time::Instant::now();
        let r: Result<(), _> = retry(&quick(), "test:be", "read", "data/x", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(AttemptError::Transient("boom".into())) }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // 10 + 20 + 25 ms of backoff at least.
        assert!(start.elapsed() >= Duration::from_millis(55));
        match r {
            Err(e @ BackendError::Failed { attempts: 4, .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("test:be") && msg.contains("data/x") && msg.contains("boom"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn timeouts_are_transient() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(&quick(), "b", "write", "n", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(
            matches!(r, Err(BackendError::Failed { ref source, .. }) if source.is::<AttemptTimeout>())
        );
    }

    #[tokio::test]
    async fn fatal_errors_stop_at_once_and_success_after_retry() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(&quick(), "b", "stat", "n", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(AttemptError::Fatal(BackendError::NotFound {
                    backend: "b".into(),
                    name: "n".into(),
                }))
            }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(r.is_err_and(|e| e.is_not_found()));

        let calls = AtomicU32::new(0);
        let r = retry(&quick(), "b", "stat", "n", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(AttemptError::Transient("flaky".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.ok(), Some(2));
    }
}
