//! Backups inside the daemon: the configuration's `[[backup]]` jobs run on
//! their schedule as `ScheduledRun` jobs of the job library (backup,
//! retention, drill, missed slots recorded; each step audited and, when it
//! fails, alerted by the observer), and a job whose newest good backup is
//! older than its `max_age` raises `backup_too_old`, once per newest backup.
//! This replaces the systemd timer; `lethe backup run-scheduled` stays for
//! machines without the daemon.

use crate::daemon::Daemon;
use lethe_alert::{AlertKind, Timestamp};
use lethe_backup::archive::BackupOptions;
use lethe_backup::connect::ConnectOptions;
use lethe_backup::drill::DrillRequest as EngineDrill;
use lethe_backup::repo::Selector;
use lethe_backup::schedule::ScheduleFile;
use lethe_backup::scheduled::job_source;
use lethe_backup::scheduled::LoadedSchedule;
use lethe_jobs::backup::{DrillRequest, RepoAccess, ScheduledRunRequest};
use lethe_jobs::{JobRequest, Origin};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

/// The schedule of the configuration's backup jobs. Owner and mode are the
/// configuration file's: a job's `stdin_command` runs only if root owns
/// the file and nobody else can write it.
pub fn schedule_of(d: &Daemon) -> Option<LoadedSchedule> {
    if d.cfg.backups.is_empty() {
        return None;
    }
    let md = std::fs::metadata(&d.opts.config).ok();
    Some(LoadedSchedule {
        file: ScheduleFile {
            jobs: d.cfg.backups.iter().map(|b| b.job.clone()).collect(),
        },
        path: d.opts.config.clone(),
        owner: md.as_ref().map_or(u32::MAX, |m| m.uid()),
        mode: md.as_ref().map_or(0o777, |m| m.mode()),
    })
}

/// A drill of configured backup job `job` now, as the schedule would run
/// it: a sample of the job's own newest snapshot (none: not a configured
/// job).
pub fn drill_request(d: &Daemon, job: &str) -> Option<JobRequest> {
    let b = d.cfg.backups.iter().find(|b| b.name.as_str() == job)?;
    let j = &b.job;
    let seed = u64::from_le_bytes(lethe_backup::repo::random().ok()?);
    Some(JobRequest::Drill(DrillRequest {
        repo: RepoAccess {
            url: j.repo.clone(),
            password_file: j.password_file.clone().into(),
            connect: ConnectOptions {
                sftp_key: j.sftp_key.as_ref().map(Into::into),
                sftp_known_hosts: j.sftp_known_hosts.as_ref().map(Into::into),
            },
        },
        drill: EngineDrill {
            snapshot: Selector::LatestOf(job_source(j, &BackupOptions::for_this_host().hostname)),
            sample: j.drill_sample,
            seed,
            scratch: std::env::temp_dir(),
        },
        history: Some(job.to_string()),
    }))
}

/// The snapshots of configured backup job `job`, read from its repository
/// now, newest first (`None`: not a configured job). Blocks: storage and
/// the key derivation.
pub fn snapshots(d: &Daemon, job: &str) -> Option<Result<lethe_wire::SnapshotsView, String>> {
    let b = d.cfg.backups.iter().find(|b| b.name.as_str() == job)?;
    let j = &b.job;
    let read = || -> Result<lethe_wire::SnapshotsView, lethe_backup::BackupError> {
        let conn = ConnectOptions {
            sftp_key: j.sftp_key.as_ref().map(Into::into),
            sftp_known_hosts: j.sftp_known_hosts.as_ref().map(Into::into),
        };
        let o =
            lethe_backup::connect::open(&j.repo, std::path::Path::new(&j.password_file), &conn)?;
        let st = o.repo.state()?;
        let list = o.repo.snapshots_in(&st)?;
        let mine = job_source(j, &BackupOptions::for_this_host().hostname);
        Ok(lethe_wire::SnapshotsView {
            snapshots: list
                .ok
                .iter()
                .rev()
                .filter(|(_, s)| mine.matches(s))
                .map(|(id, s)| lethe_wire::SnapshotView {
                    id: id.to_string(),
                    time: lethe_core::timefmt::rfc3339_utc(s.time.secs),
                    hostname: s.hostname.clone(),
                    tags: s.tags.clone(),
                    files: s.summary.files,
                    dirs: s.summary.dirs,
                    bytes_read: s.summary.bytes_read,
                    bytes_added: s.summary.bytes_added,
                })
                .collect(),
            damaged: list.damaged.len() as u32,
            tampering: st.tampering().len() as u32,
        })
    };
    Some(read().map_err(|e| format!("backup job {job}: {e}")))
}

/// Look at the schedule every tick until shutdown.
pub async fn schedule(d: Arc<Daemon>) {
    let Some(sched) = schedule_of(&d) else {
        return;
    };
    let mut current: Option<String> = None;
    let mut alerted: HashMap<String, Option<i64>> = HashMap::new();
    loop {
        let running = current
            .as_ref()
            .is_some_and(|id| d.jobs.running().iter().any(|j| &j.id == id));
        if !running && !d.stopping() {
            let mut base = BackupOptions::for_this_host();
            base.username = "lethe".into();
            // The audit log's newest signed checkpoint goes into every
            // manifest the run writes: a restored repository then says how
            // far the appliance's log had got.
            let checkpoint = d.audit.log().with(|l| l.latest_checkpoint().note.clone());
            let h = d.jobs.submit_as(
                JobRequest::ScheduledRun(ScheduledRunRequest {
                    schedule: sched.clone(),
                    scratch: std::env::temp_dir(),
                    base,
                    audit_checkpoint: Some(checkpoint),
                }),
                Origin::daemon(None),
            );
            current = Some(h.id().to_string());
        }
        let dd = Arc::clone(&d);
        let seen = std::mem::take(&mut alerted);
        alerted = tokio::task::spawn_blocking(move || too_old(&dd, seen))
            .await
            .unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(d.opts.schedule_tick) => {}
            _ = d.shutdown.notified() => return,
        }
    }
}

/// Raise `backup_too_old` for jobs past their `max_age`, once per newest
/// good backup (`alerted` remembers which). Never-succeeded jobs count
/// from the daemon's start.
fn too_old(d: &Daemon, mut alerted: HashMap<String, Option<i64>>) -> HashMap<String, Option<i64>> {
    let now = d.clock.unix_now();
    let since_start = d.started.elapsed().as_secs() as i64;
    for b in &d.cfg.backups {
        let Some(max) = b.max_age else { continue };
        let name = b.name.as_str().to_string();
        let st = match lethe_jobs::backup::backup_status(&d.state, &name) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("backup history of {name}: {e}");
                continue;
            }
        };
        let age = st.last_success.map_or(since_start, |t| now - t);
        if age <= max.as_secs() as i64 {
            alerted.remove(&name);
            continue;
        }
        if alerted.get(&name) == Some(&st.last_success) {
            continue;
        }
        let kind = AlertKind::BackupTooOld {
            job: b.name.clone(),
            last_success: st
                .last_success
                .map(|t| Timestamp::from_unix(t.max(0) as u64)),
            max_age_secs: max.as_secs(),
        };
        match d.alerter.raise(kind, Timestamp::now()) {
            Ok(id) => {
                tracing::warn!("alert {id}: backup job {name} is older than its max_age");
                d.alert_wake.notify_one();
                alerted.insert(name, st.last_success);
            }
            Err(e) => tracing::error!("recording an alert: {e}"),
        }
    }
    alerted
}
