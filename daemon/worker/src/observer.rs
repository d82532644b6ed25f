//! What the worker learns from every job, and the alerts it raises.
//!
//! The observer runs on the job's own thread, so it only records (progress,
//! counters), hands job ends to the bay thread and raises alerts (one
//! SQLite insert each); delivery happens in [`deliver_alerts`], with the
//! retry schedule of `lethe-alert`. Alerts carry names, counts and classes,
//! never a path or an error message (`docs/alerts.md`).

use crate::bays::BayBook;
use crate::daemon::Daemon;
use crate::hotplug::BayMsg;
use lethe_alert::{AlertKind, Alerter, FailureClass, Label, SqliteAlertStore, Timestamp};
use lethe_backup::scheduled::{RunKind, RunRecord, RunResult};
use lethe_jobs::backup::{drill_counts, BackupStep};
use lethe_jobs::{Event, JobInfo, JobKind, JobObserver, Outcome};
use lethe_wire::ProgressView;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// This daemon's job counters, since it started.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_written: AtomicU64,
    pub bytes_verified: AtomicU64,
    pub failures: AtomicU64,
}

/// The worker's observer of every job.
pub struct WorkerObserver {
    pub book: Arc<Mutex<BayBook>>,
    pub progress: Arc<Mutex<HashMap<String, ProgressView>>>,
    pub counters: Arc<Counters>,
    pub alerter: Arc<Alerter<SqliteAlertStore>>,
    pub alert_wake: Arc<Notify>,
    pub bay_tx: Mutex<std::sync::mpsc::Sender<BayMsg>>,
}

/// The class of a backup failure, from the engine's message (the message
/// itself stays in the backup history: it may name files).
pub fn failure_class(detail: &str) -> FailureClass {
    let d = detail.to_ascii_lowercase();
    let has = |w: &[&str]| w.iter().any(|x| d.contains(x));
    if has(&[
        "passphrase",
        "key file",
        "credentials",
        "access denied",
        "forbidden",
    ]) {
        FailureClass::Credentials
    } else if has(&["damaged", "corrupt"]) {
        FailureClass::Damage
    } else if has(&["does not match", "mismatch", "blake3"]) {
        FailureClass::Verification
    } else if has(&["stdin_command", "interval", "invalid", "schedule"]) {
        FailureClass::Configuration
    } else if has(&[
        "backend",
        "s3",
        "sftp",
        "connect",
        "storage",
        "timed out",
        "locked",
    ]) {
        FailureClass::Storage
    } else if has(&[
        "no such file",
        "permission denied",
        "not a whole block device",
    ]) {
        FailureClass::Source
    } else {
        FailureClass::Internal
    }
}

impl WorkerObserver {
    fn raise(&self, kind: AlertKind) {
        match self.alerter.raise(kind, Timestamp::now()) {
            Ok(id) => {
                tracing::warn!("alert {id} raised");
                self.alert_wake.notify_one();
            }
            Err(e) => tracing::error!("recording an alert failed: {e}"),
        }
    }

    fn backup_step(&self, r: &RunRecord) {
        let Ok(job) = Label::new(r.job.clone()) else {
            return;
        };
        match (r.kind, r.result) {
            (RunKind::Missed, _) => {
                let missed = r
                    .detail
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                self.raise(AlertKind::BackupMissed {
                    job,
                    missed,
                    last_run: None,
                });
            }
            (RunKind::Backup, RunResult::Fail) => self.raise(AlertKind::BackupFailed {
                job,
                reason: failure_class(&r.detail),
            }),
            (RunKind::Drill, RunResult::Fail) => {
                let (checked, mismatched) = drill_counts(r);
                self.raise(AlertKind::DrillFailed {
                    job,
                    checked,
                    mismatched,
                    reason: if mismatched > 0 {
                        FailureClass::Verification
                    } else {
                        failure_class(&r.detail)
                    },
                });
            }
            _ => {}
        }
    }

    fn finished(&self, job: &JobInfo<'_>, r: &lethe_jobs::Report) {
        Daemon::lock(&self.progress).remove(job.id);
        self.counters
            .bytes_written
            .fetch_add(r.bytes_written, Ordering::Relaxed);
        self.counters
            .bytes_verified
            .fetch_add(r.bytes_verified, Ordering::Relaxed);
        if matches!(r.outcome, Outcome::Failed) {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
            if !job.kind.is_backup() {
                let removed = Daemon::lock(&self.book)
                    .slot_of_job(job.id)
                    .is_some_and(|s| !s.present);
                if let Ok(id) = Label::new(job.id) {
                    self.raise(AlertKind::JobFailed {
                        job: id,
                        kind: match (job.kind, r.category) {
                            (JobKind::Degauss, _) => lethe_alert::JobKind::Degauss,
                            (JobKind::RestoreImage, _) => lethe_alert::JobKind::Restore,
                            (_, Some(lethe_jobs::Level::Purge)) => lethe_alert::JobKind::Purge,
                            _ => lethe_alert::JobKind::Wipe,
                        },
                        bay: job.origin.bay.as_deref().and_then(|b| Label::new(b).ok()),
                        reason: if removed {
                            FailureClass::DeviceRemoved
                        } else if r.failed_ranges.is_empty() && r.bytes_verified > 0 {
                            FailureClass::Verification
                        } else {
                            FailureClass::DeviceError
                        },
                    });
                }
            }
        }
        let _ = Daemon::lock(&self.bay_tx).send(BayMsg::Finished {
            job: job.id.to_string(),
            outcome: r.outcome.clone(),
            problems: r.problems.clone(),
        });
    }
}

impl JobObserver for WorkerObserver {
    fn event(&self, job: &JobInfo<'_>, event: &Event) {
        let progress = match event {
            Event::Overwrite(p) => Some(ProgressView {
                phase: match p.phase {
                    lethe_wipe::Phase::Verifying => "verifying".into(),
                    lethe_wipe::Phase::Writing { pass, passes } => {
                        format!("writing pass {} of {passes}", pass + 1)
                    }
                },
                done: p.job_done,
                total: p.job_total,
            }),
            Event::Purge(_) => Some(ProgressView {
                phase: "purging".into(),
                done: 0,
                total: 0,
            }),
            Event::Restore { done, total } => Some(ProgressView {
                phase: "restoring".into(),
                done: *done,
                total: *total,
            }),
            Event::Backup(BackupStep::Recorded(r)) => {
                self.backup_step(r);
                None
            }
            Event::Finished(r) => {
                self.finished(job, r);
                None
            }
            _ => None,
        };
        if let Some(p) = progress {
            Daemon::lock(&self.progress).insert(job.id.to_string(), p);
        }
    }
}

/// Deliver due alerts, then sleep until the next is due (at most a minute)
/// or a new alert is raised.
pub async fn deliver_alerts(d: Arc<Daemon>) {
    loop {
        if d.stopping() {
            return;
        }
        match d.alerter.deliver_due(Timestamp::now()).await {
            Ok(made) => {
                for a in made {
                    tracing::info!(
                        "alert {} to {}: attempt {} {:?}",
                        a.id,
                        a.channel,
                        a.number,
                        a.outcome
                    );
                }
            }
            Err(e) => tracing::error!("alert delivery: {e}"),
        }
        let wait = match d.alerter.next_due() {
            Ok(Some(t)) => Duration::from_secs(t.since(Timestamp::now()).min(60)),
            _ => Duration::from_secs(60),
        };
        tokio::select! {
            _ = tokio::time::sleep(wait.max(Duration::from_millis(200))) => {}
            _ = d.alert_wake.notified() => {}
            _ = d.shutdown.notified() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_failures_are_classed_without_their_words() {
        for (text, class) in [
            (
                "wrong passphrase: no key file of this repository accepts it",
                FailureClass::Credentials,
            ),
            ("index 3a is damaged: bad MAC", FailureClass::Damage),
            (
                "/srv/x: restored content does not match the BLAKE3 recorded at backup time",
                FailureClass::Verification,
            ),
            ("s3 backend: connect error", FailureClass::Storage),
            (
                "/srv/records: No such file or directory (os error 2)",
                FailureClass::Source,
            ),
            (
                "stdin_command refused: /etc/lethe/lethe.toml is writable by others",
                FailureClass::Configuration,
            ),
            ("internal error: boom", FailureClass::Internal),
        ] {
            assert_eq!(failure_class(text), class, "{text}");
        }
    }
}
