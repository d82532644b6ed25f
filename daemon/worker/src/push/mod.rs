//! Pushing audit checkpoints off the box (`[audit.push]`), so that a log cut
//! short on the appliance is detectable by whoever holds a pushed copy
//! (`lethe audit verify --checkpoint`). Format: docs/audit-log.md §10.
//!
//! - Pushes run in their own task and read the newest checkpoint through
//!   their own read-only connection to `audit.db`: an append never waits for
//!   a push, and a receiver that hangs delays nothing but the next push.
//! - The "queue" holds one element, the newest checkpoint, read when a push
//!   is due: it covers every older one, so a burst of appends is one push
//!   and nothing piles up while a receiver is down ([`policy`]).
//! - Channels: the webhook of `url` (lethe-alert's client: HTTPS, pinned CA,
//!   HMAC signature) with a JSON body whose `checkpoint` is the exact note;
//!   the collector of `syslog` ([`syslog`]).
//! - Every attempt is logged, and each channel's last attempt and last
//!   success are kept in `audit-push.json` in the state directory; the
//!   `alert_after`-th failure in a row raises `audit_push_failed`.
//! - At stop, after `daemon.stopped` is appended, the newest checkpoint goes
//!   to every channel that does not have it yet.

pub mod policy;
pub mod syslog;

use crate::daemon::Daemon;
use lethe_alert::{AlertKind, Outcome, Timestamp, Webhook};
use lethe_audit::{open_checkpoint, AuditStore, SqliteStore};
use lethe_cert::VerifyingKey;
use lethe_config::{AuditPush, SyslogTarget};
use policy::{AfterAttempt, Due, Schedule, TargetState};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The webhook body's version (`v`).
pub const BODY_VERSION: u32 = 1;

/// Each channel's last attempt and success, in the state directory.
pub const STATUS_FILE: &str = "audit-push.json";

/// How often the newest checkpoint is looked at (one indexed read).
const POLL: Duration = Duration::from_secs(1);

/// The webhook body: a JSON object whose `checkpoint` is the signed note
/// exactly, so `jq -j .checkpoint` of it is a file `lethe audit verify
/// --checkpoint` reads.
#[derive(Debug, Serialize)]
pub struct Body<'a> {
    /// [`BODY_VERSION`].
    pub v: u32,
    /// Always `audit_checkpoint`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The appliance's host name (`[alerts] host`).
    pub host: &'a str,
    /// When this push was made (RFC 3339, UTC).
    pub pushed_at: Timestamp,
    /// The log's origin (the note's first line).
    pub origin: &'a str,
    /// Entries the checkpoint covers (the note's second line).
    pub tree_size: u64,
    /// The C2SP signed note, byte for byte.
    pub checkpoint: &'a str,
}

impl Body<'_> {
    /// Compact JSON, fields in declaration order.
    pub fn json(&self) -> Vec<u8> {
        // Strings and integers only: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The newest checkpoint, checked against the appliance key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub size: u64,
    pub origin: String,
    pub note: String,
}

/// Read the newest checkpoint and check it is ours: a note that does not
/// verify is not sent anywhere (it would only mislead its receiver).
pub fn read_latest(
    store: &SqliteStore,
    key: &VerifyingKey,
    origin: &str,
) -> Result<Option<Latest>, String> {
    let Some(stored) = store.latest_checkpoint().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let signed = open_checkpoint(stored.note.as_bytes(), key, Some(origin))
        .map_err(|e| format!("the newest stored checkpoint does not verify: {e}"))?;
    Ok(Some(Latest {
        size: signed.checkpoint.size,
        origin: signed.checkpoint.origin,
        note: signed.note,
    }))
}

enum Channel {
    Webhook(Webhook),
    Syslog(SyslogTarget),
}

/// One channel's record in [`STATUS_FILE`].
#[derive(Debug, Clone, Serialize)]
struct ChannelStatus {
    channel: &'static str,
    target: String,
    pushed_size: Option<u64>,
    pushed_at: Option<Timestamp>,
    last_attempt_at: Option<Timestamp>,
    last_result: Option<String>,
    failures: u32,
}

struct Target {
    channel: Channel,
    state: TargetState,
    status: ChannelStatus,
}

/// The state of the push task.
struct Pusher {
    name: lethe_alert::Label,
    host: String,
    origin: String,
    key: VerifyingKey,
    store: Arc<Mutex<SqliteStore>>,
    schedule: Schedule,
    timeout: Duration,
    targets: Vec<Target>,
    status_path: PathBuf,
    /// The last error reading the newest checkpoint (logged once).
    read_error: Option<String>,
}

/// The running push task; [`PushHandle::finish`] makes the final push.
pub struct PushHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    bound: Duration,
}

impl PushHandle {
    /// Push the newest checkpoint to every channel that lacks it (one
    /// attempt each, bounded), then end the task.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let abort = self.task.abort_handle();
        if tokio::time::timeout(self.bound, self.task).await.is_err() {
            tracing::warn!("the final audit checkpoint push did not finish in time");
            abort.abort();
        }
    }
}

/// Start pushing (nothing to do without `[audit.push]`; a target whose
/// secret or CA file cannot be read is logged and not started).
pub fn start(d: Arc<Daemon>) -> Option<PushHandle> {
    let conf = d.cfg.audit.push.clone()?;
    let pusher = match Pusher::new(&d, &conf) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("audit checkpoint push to {}: {e}", conf.name);
            return None;
        }
    };
    let (stop, stopped) = oneshot::channel();
    let bound = conf.timeout * (pusher.targets.len() as u32 + 1) + Duration::from_secs(5);
    let task = tokio::spawn(pusher.run(d, stopped));
    Some(PushHandle { stop, task, bound })
}

impl Pusher {
    fn new(d: &Daemon, conf: &AuditPush) -> Result<Pusher, String> {
        let (key, origin) = d
            .audit
            .log()
            .with(|l| (l.public_key(), l.origin().to_string()));
        let store = SqliteStore::open_read_only(&d.state.root().join(lethe_audit::DB_FILE))
            .map_err(|e| e.to_string())?;
        let mut channels = Vec::new();
        if let Some(hook) = conf.webhook().map_err(|e| e.to_string())? {
            channels.push((
                Channel::Webhook(hook),
                "webhook",
                // Without its query: a receiver may take a token there, and
                // the status file is no place for it.
                conf.url
                    .as_deref()
                    .map(|u| u.split(['?', '#']).next().unwrap_or(u).to_string())
                    .unwrap_or_default(),
            ));
        }
        if let Some(s) = &conf.syslog {
            channels.push((Channel::Syslog(s.clone()), "syslog", s.to_string()));
        }
        let targets = channels
            .into_iter()
            .map(|(channel, kind, target)| Target {
                channel,
                state: TargetState::default(),
                status: ChannelStatus {
                    channel: kind,
                    target,
                    pushed_size: None,
                    pushed_at: None,
                    last_attempt_at: None,
                    last_result: None,
                    failures: 0,
                },
            })
            .collect();
        Ok(Pusher {
            name: conf.name.clone(),
            host: crate::daemon::appliance_host(&d.cfg).as_str().to_string(),
            origin,
            key,
            store: Arc::new(Mutex::new(store)),
            schedule: Schedule {
                every: conf.every,
                retry_first: conf.retry_first,
                retry_max_delay: conf.retry_max_delay,
                alert_after: conf.alert_after,
            },
            timeout: conf.timeout,
            targets,
            status_path: d.state.root().join(STATUS_FILE),
            read_error: None,
        })
    }

    async fn run(mut self, d: Arc<Daemon>, mut stopped: oneshot::Receiver<()>) {
        loop {
            self.round(&d, false).await;
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = &mut stopped => {
                    self.round(&d, true).await;
                    return;
                }
            }
        }
    }

    async fn latest(&mut self) -> Option<Latest> {
        let store = Arc::clone(&self.store);
        let key = self.key;
        let origin = self.origin.clone();
        let read = tokio::task::spawn_blocking(move || {
            let s = store.lock().unwrap_or_else(|p| p.into_inner());
            read_latest(&s, &key, &origin)
        })
        .await;
        let err = match read {
            Ok(Ok(l)) => {
                self.read_error = None;
                return l;
            }
            Ok(Err(e)) => e,
            Err(e) => format!("reading the log: {e}"),
        };
        // Polled every second: say it once, not every second.
        if self.read_error.as_deref() != Some(err.as_str()) {
            tracing::error!("audit checkpoint push: {err}");
            self.read_error = Some(err);
        }
        None
    }

    /// Push where due (`last`: the final round at stop, which ignores the
    /// wait after a push or a failure).
    async fn round(&mut self, d: &Daemon, last: bool) {
        let Some(latest) = self.latest().await else {
            return;
        };
        let mut changed = false;
        for i in 0..self.targets.len() {
            let now = Timestamp::from_unix(u64::try_from(d.clock.unix_now()).unwrap_or(0));
            let due = self.targets[i].state.due(latest.size, now, &self.schedule);
            if !(due == Due::Now || (last && matches!(due, Due::At(_)))) {
                continue;
            }
            let (delivered, result) = self.attempt(i, &latest, now).await;
            changed = true;
            let t = &mut self.targets[i];
            let after = t.state.record(latest.size, delivered, now, &self.schedule);
            t.status.last_attempt_at = Some(now);
            t.status.last_result = Some(result.clone());
            t.status.failures = t.state.failures;
            if delivered {
                t.status.pushed_size = t.state.pushed;
                t.status.pushed_at = Some(now);
            }
            let what = t.status.channel;
            match after {
                AfterAttempt::Delivered { recovered_after } => {
                    if recovered_after > 0 {
                        tracing::info!(
                            "audit checkpoint push to {} ({what}) works again after {recovered_after} failure(s)",
                            self.name
                        );
                    }
                    tracing::info!(
                        target: "lethe::audit",
                        "checkpoint of {} entries pushed to {} ({what}, {result}):\n{}",
                        latest.size, self.name, latest.note
                    );
                }
                AfterAttempt::Failed { failures, retry_at } => tracing::warn!(
                    "pushing the audit checkpoint of {} entries to {} ({what}): {result}; failure {failures} in a row, next try at {retry_at}",
                    latest.size, self.name
                ),
                AfterAttempt::Alert { failures, retry_at } => {
                    tracing::error!(
                        "pushing the audit checkpoint of {} entries to {} ({what}): {result}; failure {failures} in a row, next try at {retry_at}; raising audit_push_failed",
                        latest.size, self.name
                    );
                    let kind = AlertKind::AuditPushFailed {
                        target: self.name.clone(),
                        tree_size: latest.size,
                        failures,
                    };
                    match d.alerter.raise(kind, now) {
                        Ok(_) => d.alert_wake.notify_one(),
                        Err(e) => tracing::error!("raising audit_push_failed: {e}"),
                    }
                }
            }
        }
        if changed {
            self.write_status();
        }
    }

    /// One attempt on target `i`: (delivered, what happened).
    async fn attempt(&self, i: usize, latest: &Latest, now: Timestamp) -> (bool, String) {
        match &self.targets[i].channel {
            Channel::Webhook(hook) => {
                let body = Body {
                    v: BODY_VERSION,
                    kind: "audit_checkpoint",
                    host: &self.host,
                    pushed_at: now,
                    origin: &latest.origin,
                    tree_size: latest.size,
                    checkpoint: &latest.note,
                };
                match hook.post("application/json", body.json(), now).await {
                    Outcome::Delivered(d) => (true, d.to_string()),
                    Outcome::Retryable(d) => (false, d.to_string()),
                    Outcome::Permanent(d) => (false, format!("refused: {d}")),
                }
            }
            Channel::Syslog(target) => {
                let msg = syslog::message(&self.host, now, latest.size, &latest.note);
                match syslog::send(target, &msg, self.timeout).await {
                    Ok(()) => (true, "sent".into()),
                    Err(d) => (false, d.to_string()),
                }
            }
        }
    }

    /// Replace the status file (temp + rename, so a reader never sees half).
    fn write_status(&self) {
        let all: Vec<&ChannelStatus> = self.targets.iter().map(|t| &t.status).collect();
        let json = serde_json::json!({ "name": self.name.as_str(), "channels": all });
        let tmp = self.status_path.with_extension("json.tmp");
        let r = serde_json::to_vec_pretty(&json)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&tmp, b))
            .and_then(|()| std::fs::rename(&tmp, &self.status_path));
        if let Err(e) = r {
            tracing::warn!("writing {}: {e}", self.status_path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fenced block after `<!-- push-vector: NAME -->` in docs/audit-log.md.
    pub(crate) fn doc_vector(name: &str) -> String {
        let doc = include_str!("../../../../docs/audit-log.md");
        let marker = format!("<!-- push-vector: {name} -->\n");
        let rest = &doc[doc.find(&marker).unwrap() + marker.len()..];
        let rest = &rest[rest.find('\n').unwrap() + 1..];
        rest[..rest.find("\n```").unwrap()].to_string()
    }

    /// The body of docs/audit-log.md §10's example (the checkpoint of size 3
    /// of §11): its `checkpoint` is the note byte for byte.
    /// safeguard: 164.312(b)
    #[test]
    fn the_webhook_body_holds_the_exact_note() {
        let note = "lethe/audit/56475aa75463474c\n3\nw9jlNG9oD/wMBn0m9iDOqQiQxZRku8KCvEMiLb9BypQ=\n\n\u{2014} lethe/audit/56475aa75463474c kXcelebeVsjQpm2YJvWva9NeCA9NSWpSQHjbcDLpvnIGO+GaQ1BRBWcZeadKmTLqM+7aG6+1WkRqU8WjxNVqBH1NJgQ=\n";
        let body = Body {
            v: BODY_VERSION,
            kind: "audit_checkpoint",
            host: "lethe-01",
            pushed_at: Timestamp::try_from("2026-11-23T15:20:05Z".to_string()).unwrap(),
            origin: "lethe/audit/56475aa75463474c",
            tree_size: 3,
            checkpoint: note,
        }
        .json();
        let vector = doc_vector("body");
        assert_eq!(String::from_utf8(body.clone()).unwrap(), vector);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["checkpoint"].as_str(), Some(note));
    }
}
