//! Pushing audit checkpoints off the box (`[audit.push]`): every `every`,
//! when the log has grown, the latest signed checkpoint (the C2SP note,
//! `text/plain`) is POSTed to the configured URL, signed with the HMAC
//! scheme of the alert webhooks when a secret is set. Whoever keeps them can
//! later run `lethe audit verify --checkpoint` and detect a log cut short or
//! rewritten. Each checkpoint pushed is also logged (journald). Three
//! failed pushes in a row raise `audit_push_failed`, once per streak.

use crate::daemon::Daemon;
use lethe_alert::{AlertKind, Timestamp};
use std::sync::Arc;

/// Failed pushes in a row before the alert.
const ALERT_AFTER: u32 = 3;

/// Push until shutdown (nothing to do without `[audit.push]`).
pub async fn push_checkpoints(d: Arc<Daemon>) {
    let Some(conf) = d.cfg.audit.push.clone() else {
        return;
    };
    let hook = match conf.webhook() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("audit push target {}: {e}", conf.name);
            return;
        }
    };
    let mut pushed: Option<u64> = None;
    let mut failures = 0u32;
    loop {
        let dd = Arc::clone(&d);
        let latest = tokio::task::spawn_blocking(move || {
            dd.audit.log().with(|l| {
                let _ = l.reload();
                (l.size(), l.latest_checkpoint().note.clone())
            })
        })
        .await;
        if let Ok((size, note)) = latest {
            if pushed != Some(size) {
                let outcome = hook
                    .post(
                        "text/plain; charset=utf-8",
                        note.clone().into_bytes(),
                        Timestamp::now(),
                    )
                    .await;
                match outcome {
                    lethe_alert::Outcome::Delivered(_) => {
                        tracing::info!(target: "lethe::audit", "checkpoint of {size} entries pushed to {}:\n{note}", conf.name);
                        pushed = Some(size);
                        failures = 0;
                    }
                    other => {
                        failures += 1;
                        tracing::warn!("pushing the audit checkpoint to {}: {other:?}", conf.name);
                        if failures == ALERT_AFTER {
                            let kind = AlertKind::AuditPushFailed {
                                target: conf.name.clone(),
                                tree_size: size,
                                failures,
                            };
                            if d.alerter.raise(kind, Timestamp::now()).is_ok() {
                                d.alert_wake.notify_one();
                            }
                        }
                    }
                }
            }
        }
        let wait = if failures > 0 {
            conf.every.min(std::time::Duration::from_secs(60))
        } else {
            conf.every
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = d.shutdown.notified() => return,
        }
    }
}
