//! The audit log as a job observer: the command line (run as root) and the
//! daemon both hang an [`AuditObserver`] on their job library, so every job
//! start and end, refusal, resume, interruption and issued document is
//! written the same way whoever asked for it.
//!
//! | job event | entry |
//! |---|---|
//! | `Started` | `job.started` (or `job.resumed`), entity `job` |
//! | `Finished`, refused | `device.refused`, entity `device` (serial, or the node's name), detail `refusal` and the protection reasons |
//! | `Finished`, interrupted | `job.interrupted` |
//! | `Finished`, otherwise | `job.ended`: `success` only for a pass at the level asked; a lower level, a failure or a stop is `failure` with `result` saying which |
//! | document signed | `certificate.issued`, entity `certificate`: `body_sha256`, `status`, `certifies`; its inclusion proof becomes the certificate's `audit` attachment |
//! | a scheduled run's step | `backup.run`, `backup.prune` or `backup.drill`, entity `backup_job` (the job's name); a missed slot is a failed `backup.run` with `result: missed` |
//! | a backup, tree restore or drill job ends | `backup.run`, `backup.restore` or `backup.drill`, entity `job` |
//!
//! Entries carry only machine identifiers and labels chosen here (see
//! `lethe_audit::entry`): job ids, serial numbers, counts. A value that is
//! not a valid token (a serial with spaces) is left out, never forced in.
//! An append that fails does not stop the job: it is counted
//! ([`AuditObserver::failures`]) and, for a certificate, the document is
//! issued without its proof. The daemon reports both.

use crate::backup::BackupStep;
use crate::event::{Event, Outcome, Report};
use crate::observe::{JobInfo, JobObserver, OriginSource};
use crate::refusal::Refusal;
use lethe_audit::{
    Action, Appender, AuditStore, AuditTime, Detail, Entity, Entry, RecordId, Source, TagKind,
    Token, UserId,
};
use lethe_backup::scheduled::{RunKind, RunRecord, RunResult};
use lethe_cert::SignedCertificate;
use lethe_core::inventory::ProtectReason;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Writes job entries to an audit log.
pub struct AuditObserver<S: AuditStore> {
    log: Appender<S>,
    clock: Arc<dyn crate::Clock>,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl<S: AuditStore> AuditObserver<S> {
    /// Write to `log`, stamping entries with `clock`.
    pub fn new(log: Appender<S>, clock: Arc<dyn crate::Clock>) -> Self {
        Self {
            log,
            clock,
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The log it writes to (a daemon appends its own entries there too).
    pub fn log(&self) -> &Appender<S> {
        &self.log
    }

    /// Record that `device` was refused outside any job: a daemon that
    /// finds a protected drive in a bay never offers it, and says so here
    /// exactly as a refused job would.
    pub fn device_refused(&self, origin: &crate::Origin, device: &str, why: &Refusal) {
        let info = JobInfo {
            id: "",
            kind: crate::JobKind::Wipe,
            origin,
            resumed: false,
        };
        let r = Report::refused(None, crate::JobKind::Wipe, Some(device.into()), why.clone());
        self.finished(&info, &r);
    }

    /// Appends that failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// The last failure, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn failed(&self, e: String) {
        self.failures.fetch_add(1, Ordering::SeqCst);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    fn entry(
        &self,
        job: &JobInfo<'_>,
        action: Action,
        entity: Entity,
        record: &str,
        outcome: lethe_audit::Outcome,
    ) -> Result<Entry, String> {
        let time = AuditTime::from_unix(self.clock.unix_now()).map_err(|e| e.to_string())?;
        let user = UserId::new(job.origin.user.clone()).map_err(|e| e.to_string())?;
        let record = RecordId::new(record).map_err(|e| e.to_string())?;
        let mut e = Entry::new(
            time,
            source(job.origin.source),
            user,
            action,
            entity,
            record,
            outcome,
        );
        if let Ok(t) = Token::new(job.id) {
            e = e.with_tag(TagKind::Job, t);
        }
        if let Some(bay) = job.origin.bay.as_deref().and_then(|b| Token::new(b).ok()) {
            e = e.with_tag(TagKind::Bay, bay);
        }
        for (tag, id) in &job.origin.authorization {
            let kind = match tag {
                crate::observe::AuthTag::Session => TagKind::Session,
                crate::observe::AuthTag::Reauth => TagKind::Reauth,
                crate::observe::AuthTag::BreakGlass => TagKind::BreakGlass,
            };
            if let Ok(t) = Token::new(id) {
                e = e.with_tag(kind, t);
            }
        }
        Ok(e)
    }

    fn write(&self, e: Result<Entry, String>) {
        match e.and_then(|e| self.log.append(&e).map_err(|e| e.to_string())) {
            Ok(_) => {}
            Err(e) => self.failed(e),
        }
    }

    fn finished(&self, job: &JobInfo<'_>, r: &Report) {
        let e = match &r.outcome {
            Outcome::Refused(why) => {
                let record = device_token(r).unwrap_or_else(|| "unknown".into());
                self.entry(
                    job,
                    Action::DeviceRefused,
                    Entity::Device,
                    &record,
                    lethe_audit::Outcome::Refused,
                )
                .map(|e| e.with_detail(refusal_detail(job, why)))
            }
            Outcome::Interrupted { .. } => self
                .entry(
                    job,
                    Action::JobInterrupted,
                    Entity::Job,
                    job.id,
                    lethe_audit::Outcome::Failure,
                )
                .map(|e| e.with_detail(result_detail(job, r, "interrupted"))),
            o if job.kind.is_backup() => {
                let action = match job.kind {
                    crate::JobKind::RestoreTree => Action::RestoreRun,
                    crate::JobKind::Drill => Action::DrillRun,
                    crate::JobKind::ScheduledRun => Action::JobEnded,
                    _ => Action::BackupRun,
                };
                let (outcome, result) = match o {
                    Outcome::Passed => (lethe_audit::Outcome::Success, "pass"),
                    _ => (lethe_audit::Outcome::Failure, "fail"),
                };
                self.entry(job, action, Entity::Job, job.id, outcome)
                    .map(|e| {
                        e.with_detail(
                            Detail::new()
                                .label("kind", job.kind.as_str())
                                .label("result", result),
                        )
                    })
            }
            o => {
                let (outcome, result) = match o {
                    Outcome::Passed => (lethe_audit::Outcome::Success, "pass"),
                    Outcome::PassedAtLowerLevel { .. } => {
                        (lethe_audit::Outcome::Failure, "lower_level")
                    }
                    Outcome::Stopped => (lethe_audit::Outcome::Failure, "stopped"),
                    _ => (lethe_audit::Outcome::Failure, "fail"),
                };
                self.entry(job, Action::JobEnded, Entity::Job, job.id, outcome)
                    .map(|e| e.with_detail(result_detail(job, r, result)))
            }
        };
        self.write(e);
    }
}

impl<S: AuditStore> AuditObserver<S> {
    fn backup_step(&self, job: &JobInfo<'_>, r: &RunRecord) -> Result<Entry, String> {
        let action = match r.kind {
            RunKind::Backup | RunKind::Missed => Action::BackupRun,
            RunKind::Forget => Action::BackupPruned,
            RunKind::Drill => Action::DrillRun,
        };
        let outcome = match r.result {
            RunResult::Pass => lethe_audit::Outcome::Success,
            // Done with warnings is not full success.
            RunResult::Warn | RunResult::Fail | RunResult::Missed => lethe_audit::Outcome::Failure,
        };
        let mut e = self.entry(job, action, Entity::BackupJob, &r.job, outcome)?;
        e.time = AuditTime::from_unix(r.ended).map_err(|e| e.to_string())?;
        Ok(e.with_detail(
            Detail::new()
                .label("step", r.kind.as_str())
                .label("result", r.result.as_str())
                .count("seconds", r.ended.saturating_sub(r.started).max(0) as u64),
        ))
    }
}

impl<S: AuditStore> JobObserver for AuditObserver<S> {
    fn event(&self, job: &JobInfo<'_>, event: &Event) {
        match event {
            Event::Started { .. } => {
                let action = if job.resumed {
                    Action::JobResumed
                } else {
                    Action::JobStarted
                };
                let e = self
                    .entry(
                        job,
                        action,
                        Entity::Job,
                        job.id,
                        lethe_audit::Outcome::Success,
                    )
                    .map(|e| e.with_detail(Detail::new().label("kind", job.kind.as_str())));
                self.write(e);
            }
            Event::Finished(r) => self.finished(job, r),
            Event::Backup(BackupStep::Recorded(r)) => self.write(self.backup_step(job, r)),
            _ => {}
        }
    }

    fn signed(
        &self,
        job: &JobInfo<'_>,
        cert: &SignedCertificate,
    ) -> Result<Option<serde_json::Value>, String> {
        let body = cert.body();
        let hash = hex::decode(cert.body_sha256()).map_err(|e| e.to_string())?;
        let entry = self
            .entry(
                job,
                Action::CertificateIssued,
                Entity::Certificate,
                &body.id,
                lethe_audit::Outcome::Success,
            )?
            .with_detail(
                Detail::new()
                    .digest("body_sha256", &hash)
                    .label("status", body.result.status.as_str())
                    .flag("certifies", body.result.status.is_certificate()),
            );
        let bundle = self
            .log
            .with(|l| {
                let receipt = l.append(&entry)?;
                l.inclusion_bundle(receipt.index)
            })
            .map_err(|e| {
                let msg = format!("audit log: {e}");
                self.failed(msg.clone());
                msg
            })?;
        serde_json::to_value(bundle)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

fn source(s: OriginSource) -> Source {
    match s {
        OriginSource::Cli => Source::Cli,
        OriginSource::Daemon => Source::Daemon,
        OriginSource::Api => Source::Api,
        OriginSource::Console => Source::Console,
    }
}

/// The device a report names, as a token: its serial if it has a usable
/// one, else its node's name (`sdb`, `loop3`).
fn device_token(r: &Report) -> Option<String> {
    let d = r.device.as_deref()?;
    let name = d.rsplit('/').next().unwrap_or(d);
    Token::new(name).ok().map(|t| t.as_str().to_string())
}

fn result_detail(job: &JobInfo<'_>, r: &Report, result: &'static str) -> Detail {
    let mut d = Detail::new()
        .label("kind", job.kind.as_str())
        .label("result", result)
        .count("bytes_written", r.bytes_written)
        .count("bytes_verified", r.bytes_verified);
    if let Some(c) = r.category {
        d = d.label("level", c.as_str());
    }
    if let Some(doc) = &r.document {
        if let Ok(t) = Token::new(doc.id.clone()) {
            d = d.token("certificate", &t);
        }
    }
    d
}

fn refusal_detail(job: &JobInfo<'_>, why: &Refusal) -> Detail {
    let d = Detail::new()
        .label("kind", job.kind.as_str())
        .label("refusal", refusal_label(why));
    match why {
        Refusal::Protected { reasons, .. } => {
            let labels: Vec<&'static str> = reasons.iter().map(protect_label).collect();
            d.labels("reasons", &labels)
        }
        _ => d,
    }
}

/// A label per refusal kind (the words stay on the appliance's screens).
pub fn refusal_label(r: &Refusal) -> &'static str {
    match r {
        Refusal::Protected { .. } => "protected",
        Refusal::Busy { .. } => "busy",
        Refusal::Changed { .. } => "changed",
        Refusal::Target(_) => "target",
        Refusal::NotConfirmed(_) => "not_confirmed",
        Refusal::StateDir { .. } => "state_dir",
        Refusal::Invalid(_) => "invalid",
        Refusal::NotMagnetic(_) => "not_magnetic",
        Refusal::NoController => "no_controller",
        Refusal::ControllerNotReady(_) => "controller_not_ready",
        Refusal::NoOperator => "no_operator",
        Refusal::TooSmall { .. } => "too_small",
        Refusal::Method(_) => "method",
        Refusal::Job(_) => "job",
        Refusal::Store(_) => "store",
        Refusal::Cancelled => "cancelled",
    }
}

/// A label per protection reason.
pub fn protect_label(r: &ProtectReason) -> &'static str {
    match r {
        ProtectReason::SystemDisk { .. } => "system_disk",
        ProtectReason::Mounted { .. } => "mounted",
        ProtectReason::Swap { .. } => "swap",
        ProtectReason::HeldBy { .. } => "held",
        ProtectReason::InUse { .. } => "in_use",
        ProtectReason::ReadOnly => "read_only",
        ProtectReason::IsPartition { .. } => "partition",
        ProtectReason::Virtual { .. } => "virtual",
        ProtectReason::Stacked { .. } => "stacked",
        ProtectReason::BackedBy { .. } => "backed_by",
        ProtectReason::OtherPath { .. } => "other_path",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Origin;
    use crate::request::JobKind;
    use lethe_audit::{verify_log, AuditLog, SqliteStore};

    struct Fixed;
    impl crate::Clock for Fixed {
        fn unix_now(&self) -> i64 {
            1_795_000_000
        }
    }

    fn observer() -> (AuditObserver<SqliteStore>, ed25519_dalek::VerifyingKey) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let public = key.verifying_key();
        let log =
            Appender::new(AuditLog::open(SqliteStore::open_in_memory().unwrap(), key).unwrap());
        (AuditObserver::new(log, Arc::new(Fixed)), public)
    }

    fn leaves(o: &AuditObserver<SqliteStore>) -> Vec<String> {
        let mut out = Vec::new();
        o.log.with(|l| {
            let n = l.store().len().unwrap();
            for i in 0..n {
                let e = l.store().entry(i).unwrap().unwrap();
                out.push(String::from_utf8(e.leaf).unwrap());
            }
        });
        out
    }

    #[test]
    fn a_job_start_a_refusal_and_an_end_are_entries_with_no_free_text() {
        let (o, public) = observer();
        let origin = Origin::daemon(Some("bay-1".into()));
        let info = JobInfo {
            id: "wipe-20261123T140501Z-3fa9c2b1",
            kind: JobKind::Wipe,
            origin: &origin,
            resumed: false,
        };
        o.event(
            &info,
            &Event::Started {
                job: info.id.into(),
                kind: JobKind::Wipe,
                device: "/dev/loop3".into(),
            },
        );
        let mut refused = Report::refused(
            None,
            JobKind::Wipe,
            Some("/dev/loop4".into()),
            Refusal::Protected {
                device: "/dev/loop4".into(),
                reasons: vec![ProtectReason::Mounted {
                    by: "/dev/loop4".into(),
                    mountpoint: "/mnt/Patient Files".into(),
                }],
            },
        );
        o.event(&info, &Event::Finished(Box::new(refused.clone())));
        refused.outcome = Outcome::PassedAtLowerLevel {
            requested: crate::Level::Purge,
            reached: crate::Level::Clear,
        };
        refused.bytes_written = 4096;
        o.event(&info, &Event::Finished(Box::new(refused)));
        assert_eq!(o.failures(), 0, "{:?}", o.last_error());
        let l = leaves(&o);
        assert_eq!(l.len(), 3);
        assert!(l[0].contains(r#""action":"job.started""#), "{}", l[0]);
        assert!(
            l[0].contains(r#""tags":{"bay":"bay-1","job":"wipe-20261123T140501Z-3fa9c2b1"}"#),
            "{}",
            l[0]
        );
        assert!(
            l[1].contains(r#""action":"device.refused""#)
                && l[1].contains(r#""record_id":"loop4""#),
            "{}",
            l[1]
        );
        assert!(
            l[1].contains(r#""reasons":["mounted"]"#) && l[1].contains(r#""outcome":"refused""#),
            "{}",
            l[1]
        );
        // The mount point (it could name anything) is not in the log.
        assert!(!l[1].contains("Patient"), "{}", l[1]);
        // A lower level than asked is never a success.
        assert!(
            l[2].contains(r#""outcome":"failure""#) && l[2].contains(r#""result":"lower_level""#),
            "{}",
            l[2]
        );
        assert!(o
            .log
            .with(|l| verify_log(l.store(), &public, None))
            .unwrap()
            .is_intact());
    }
}
