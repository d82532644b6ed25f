//! Backup jobs: a backup, a tree restore, a restore drill and a scheduled
//! run, each a typed request the library runs like any other job (worker
//! thread, event stream, typed report, observers), all on the backup
//! engine's public API (`lethe-backup`).
//!
//! None of these touches a device the way a wipe does, so none takes a
//! lease or a job record: a scheduled run's steps go to the backup history
//! (the job store's `backup_runs`, the same table `lethe backup
//! run-scheduled` writes), and each step is also an [`Event::Backup`], so
//! the audit log and the daemon's alerts see every backup, retention and
//! drill as it is recorded.

use crate::event::{Event, Outcome, Report};
use crate::request::JobKind;
use crate::runner::Ctx;
use crate::state::StateDir;
use lethe_backup::archive::{BackupOptions, BackupReport, BackupSource};
use lethe_backup::connect::{self, ConnectOptions};
use lethe_backup::drill::{DrillReport, DrillRequest as EngineDrill, Verdict};
use lethe_backup::repo::Selector;
use lethe_backup::restore::tree::RestoreOptions;
use lethe_backup::restore::RestoreReport;
use lethe_backup::scheduled::{
    self, Devices, Env, History, LoadedSchedule, PastRun, RunRecord, ScheduledReport,
};
use lethe_backup::BackupError;
use lethe_store::{BackupRun, JobStore};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A repository and how to unlock it. The passphrase stays in its file
/// (read by the engine in the process that runs the job).
#[derive(Debug, Clone)]
pub struct RepoAccess {
    /// A directory, `s3:URL` or `sftp:USER@HOST:/PATH`.
    pub url: String,
    /// The passphrase file.
    pub password_file: PathBuf,
    /// SFTP key and known_hosts.
    pub connect: ConnectOptions,
}

/// What a backup reads.
#[derive(Debug, Clone)]
pub enum BackupFrom {
    /// Files and directory trees.
    Paths(Vec<PathBuf>),
    /// A block device or image file (its identity is recorded).
    Device(PathBuf),
}

/// Back up files or a device.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    pub repo: RepoAccess,
    pub from: BackupFrom,
    pub options: BackupOptions,
}

/// Restore a tree snapshot (or a path in it) into a directory.
#[derive(Debug, Clone)]
pub struct RestoreTreeRequest {
    pub repo: RepoAccess,
    /// `latest` or an id prefix.
    pub snapshot: String,
    /// A path inside the snapshot, or the whole tree.
    pub sub: Option<String>,
    pub target: PathBuf,
    pub options: RestoreOptions,
}

/// Restore a sample of a snapshot to scratch space and compare it with
/// the hashes recorded at backup time.
#[derive(Debug, Clone)]
pub struct DrillRequest {
    pub repo: RepoAccess,
    pub drill: EngineDrill,
    /// Record the drill in this scheduled backup job's history, as its
    /// schedule records its own (a drill on demand counts like one).
    pub history: Option<String>,
}

/// Run whatever of a schedule is due: backups, retention, drills, and a
/// record of slots that were missed.
#[derive(Debug, Clone)]
pub struct ScheduledRunRequest {
    pub schedule: LoadedSchedule,
    /// Where drills make their scratch directories.
    pub scratch: PathBuf,
    /// Host, user and threads of the backups (tags and filters are the jobs').
    pub base: BackupOptions,
    /// The service's signed audit-log checkpoint, for the manifests the
    /// run writes (none from the command line).
    pub audit_checkpoint: Option<String>,
}

/// A step of a backup job, as it happens.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum BackupStep {
    /// One entry of a scheduled run, as recorded in the backup history.
    Recorded(RunRecord),
}

/// What a backup job produced (the engine's own reports).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackupResult {
    Backup(BackupReport),
    RestoreTree(RestoreReport),
    Drill(DrillReport),
    ScheduledRun(ScheduledReport),
}

fn outcome(o: lethe_backup::Outcome) -> Outcome {
    match o {
        lethe_backup::Outcome::Ok => Outcome::Passed,
        // Done, but something needs attention: not a pass.
        lethe_backup::Outcome::CompletedWithWarnings | lethe_backup::Outcome::Failed => {
            Outcome::Failed
        }
    }
}

fn failed(ctx: &Ctx<'_>, kind: JobKind, e: BackupError) -> Report {
    let mut r = Report::new(Some(ctx.id.to_string()), kind, Outcome::Failed);
    r.problems.push(e.to_string());
    r
}

fn done(ctx: &Ctx<'_>, kind: JobKind, o: lethe_backup::Outcome, res: BackupResult) -> Report {
    let mut r = Report::new(Some(ctx.id.to_string()), kind, outcome(o));
    if o == lethe_backup::Outcome::CompletedWithWarnings {
        r.problems
            .push("completed with warnings: see the job's report".into());
    }
    r.backup = Some(Box::new(res));
    r
}

/// Open with the passphrase and remember the repository's generations in
/// the state directory, as the CLI does: a rolled-back manifest is noticed
/// whichever edge ran the previous backup.
fn open(ctx: &Ctx<'_>, a: &RepoAccess) -> Result<connect::Opened, BackupError> {
    let o = connect::open(&a.url, &a.password_file, &a.connect)?;
    Ok(connect::Opened {
        repo: o.repo.with_seen(seen(ctx)),
        conn: o.conn,
    })
}

fn seen(ctx: &Ctx<'_>) -> std::sync::Arc<lethe_backup::seen::SeenDir> {
    std::sync::Arc::new(lethe_backup::seen::SeenDir::in_state_dir(
        ctx.cfg().state.root(),
    ))
}

pub(crate) fn backup(ctx: &Ctx<'_>, req: BackupRequest) -> Report {
    let kind = JobKind::Backup;
    ctx.started(kind, &req.repo.url);
    let run = || -> Result<BackupReport, BackupError> {
        let o = open(ctx, &req.repo)?;
        let source = match &req.from {
            BackupFrom::Paths(p) => BackupSource::Paths(p.clone()),
            BackupFrom::Device(path) => BackupSource::Device {
                path: path.clone(),
                identity: LinuxDevices.identity(path)?,
            },
        };
        lethe_backup::archive::backup(&o.repo, source, &req.options, &())
    };
    match run() {
        Ok(rep) => done(ctx, kind, rep.outcome, BackupResult::Backup(rep)),
        Err(e) => failed(ctx, kind, e),
    }
}

pub(crate) fn restore_tree(ctx: &Ctx<'_>, req: RestoreTreeRequest) -> Report {
    let kind = JobKind::RestoreTree;
    ctx.started(kind, &req.target.display().to_string());
    let run = || -> Result<RestoreReport, BackupError> {
        let o = open(ctx, &req.repo)?;
        let (_, snap) = o.repo.select(&Selector::parse(&req.snapshot))?;
        lethe_backup::restore::tree::restore_tree(
            &o.repo,
            &snap,
            req.sub.as_deref(),
            &req.target,
            &req.options,
        )
    };
    match run() {
        Ok(rep) => done(ctx, kind, rep.outcome, BackupResult::RestoreTree(rep)),
        Err(e) => failed(ctx, kind, e),
    }
}

pub(crate) fn drill(ctx: &Ctx<'_>, req: DrillRequest) -> Report {
    let kind = JobKind::Drill;
    ctx.started(kind, &req.repo.url);
    let run = || -> Result<DrillReport, BackupError> {
        let o = open(ctx, &req.repo)?;
        lethe_backup::drill::drill(&o.repo, &req.drill)
    };
    let started = ctx.cfg().clock.unix_now();
    let result = run();
    if let Some(job) = &req.history {
        let (res, detail) = match &result {
            Ok(rep) if drill_passed(rep) => {
                ("pass", serde_json::to_string(rep).unwrap_or_default())
            }
            Ok(rep) => ("fail", serde_json::to_string(rep).unwrap_or_default()),
            Err(e) => ("fail", e.to_string()),
        };
        let recorded = JobStore::open(ctx.cfg().state.root()).and_then(|s| {
            s.record_run(&BackupRun {
                job: job.clone(),
                kind: "drill".into(),
                started,
                ended: ctx.cfg().clock.unix_now(),
                result: res.into(),
                detail,
            })
        });
        if let Err(e) = recorded {
            let mut r = match result {
                Ok(rep) => done(ctx, kind, rep.outcome(), BackupResult::Drill(rep)),
                Err(e) => failed(ctx, kind, e),
            };
            // The drill ran, but the job's history lacks it: the proof
            // the schedule and the alerts rely on is missing, so it fails.
            r.problems
                .push(format!("recording the drill in the backup history: {e}"));
            r.outcome = Outcome::Failed;
            return r;
        }
    }
    match result {
        Ok(rep) => done(ctx, kind, rep.outcome(), BackupResult::Drill(rep)),
        Err(e) => failed(ctx, kind, e),
    }
}

pub(crate) fn scheduled_run(ctx: &Ctx<'_>, req: ScheduledRunRequest) -> Report {
    let kind = JobKind::ScheduledRun;
    ctx.started(kind, &req.schedule.path.display().to_string());
    let store = match JobStore::open(ctx.cfg().state.root()) {
        Ok(s) => s,
        Err(e) => {
            let mut r = Report::new(Some(ctx.id.to_string()), kind, Outcome::Failed);
            r.problems.push(format!("backup history: {e}"));
            return r;
        }
    };
    let mut history = StoreHistory(store);
    let clock = ClockAdapter(ctx.cfg().clock.as_ref());
    let env = Env {
        clock: &clock,
        devices: &LinuxDevices,
        euid: scheduled::euid(),
        scratch: req.scratch.clone(),
        base: req.base.clone(),
        seen: Some(seen(ctx)),
        audit_checkpoint: req.audit_checkpoint.clone(),
    };
    let result = scheduled::run_due(&req.schedule, &env, &mut history, &mut |r| {
        ctx.emit(Event::Backup(BackupStep::Recorded(r.clone())));
    });
    match result {
        Ok(rep) => done(ctx, kind, rep.outcome, BackupResult::ScheduledRun(rep)),
        Err(e) => failed(ctx, kind, e),
    }
}

struct ClockAdapter<'a>(&'a dyn crate::Clock);

impl scheduled::Clock for ClockAdapter<'_> {
    fn now(&self) -> i64 {
        self.0.unix_now()
    }
}

/// The backup history in the job store (`backup_runs`).
struct StoreHistory(JobStore);

fn store_err(e: impl std::fmt::Display) -> BackupError {
    BackupError::Internal(format!("backup history: {e}"))
}

impl History for StoreHistory {
    fn runs(&self, job: &str) -> Result<Vec<PastRun>, BackupError> {
        Ok(self
            .0
            .runs(Some(job))
            .map_err(store_err)?
            .into_iter()
            .map(|r| PastRun {
                kind: r.kind,
                started: r.started,
            })
            .collect())
    }

    fn record(&mut self, r: &RunRecord) -> Result<(), BackupError> {
        self.0
            .record_run(&BackupRun {
                job: r.job.clone(),
                kind: r.kind.as_str().into(),
                started: r.started,
                ended: r.ended,
                result: r.result.as_str().into(),
                detail: r.detail.clone(),
            })
            .map_err(store_err)
    }
}

/// Device identities from the Linux discovery layer.
struct LinuxDevices;

impl Devices for LinuxDevices {
    fn identity(&self, path: &Path) -> Result<lethe_repo::snapshot::DeviceIdentity, BackupError> {
        use std::os::unix::fs::FileTypeExt;
        let real = std::fs::canonicalize(path).map_err(|e| BackupError::io(path, e))?;
        let md = std::fs::metadata(&real).map_err(|e| BackupError::io(path, e))?;
        if !md.file_type().is_block_device() {
            // An image file: its size is its identity.
            return Ok(lethe_repo::snapshot::DeviceIdentity {
                path: real.display().to_string(),
                model: "image file".into(),
                serial: String::new(),
                wwn: None,
                size_bytes: md.len(),
                logical_block_size: 512,
            });
        }
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let d = lethe_linux::discovery::drive(&name).ok_or_else(|| {
            BackupError::Invalid(format!("{} is not a whole block device", real.display()))
        })?;
        Ok(lethe_repo::snapshot::DeviceIdentity {
            path: d.path,
            model: d.model.unwrap_or_default(),
            serial: d.serial.unwrap_or_default(),
            wwn: d.wwn,
            size_bytes: d.size_bytes,
            logical_block_size: d.logical_sector,
        })
    }
}

/// What the history says about one scheduled backup job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackupStatus {
    /// The last backup attempt (Unix seconds) and its result.
    pub last_backup: Option<(i64, String)>,
    /// The newest successful backup (`pass` or `warn`).
    pub last_success: Option<i64>,
    /// The last drill and its result.
    pub last_drill: Option<(i64, String)>,
    pub drills_passed: u64,
    pub drills_failed: u64,
    /// Backups that failed, and missed slots.
    pub backups_failed: u64,
}

/// Read the backup history of `job`.
pub fn backup_status(state: &StateDir, job: &str) -> Result<BackupStatus, lethe_store::StoreError> {
    let store = JobStore::open(state.root())?;
    let mut s = BackupStatus::default();
    for r in store.runs(Some(job))? {
        match r.kind.as_str() {
            "backup" => {
                if r.result == "pass" || r.result == "warn" {
                    s.last_success = Some(s.last_success.map_or(r.started, |t| t.max(r.started)));
                } else {
                    s.backups_failed += 1;
                }
                if s.last_backup.as_ref().is_none_or(|(t, _)| r.started >= *t) {
                    s.last_backup = Some((r.started, r.result.clone()));
                }
            }
            "missed" => s.backups_failed += 1,
            "drill" => {
                if r.result == "pass" {
                    s.drills_passed += 1;
                } else {
                    s.drills_failed += 1;
                }
                if s.last_drill.as_ref().is_none_or(|(t, _)| r.started >= *t) {
                    s.last_drill = Some((r.started, r.result.clone()));
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

/// Drill outcome of a recorded step, for alerts: items checked and
/// mismatched, when the record is a drill report.
pub fn drill_counts(r: &RunRecord) -> (u64, u64) {
    match serde_json::from_str::<serde_json::Value>(&r.detail) {
        Ok(v) => (
            v["items"].as_u64().unwrap_or(0),
            v["failures"].as_array().map_or(0, |f| f.len() as u64),
        ),
        Err(_) => (0, 0),
    }
}

/// Whether a drill report passed.
pub fn drill_passed(rep: &DrillReport) -> bool {
    rep.result == Verdict::Pass
}
