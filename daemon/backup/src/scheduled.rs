//! A scheduled run: for every job of a schedule that is due, back up, apply
//! retention (forget + prune) and drill the job's own newest snapshot; record
//! each step, every failure and every missed slot in the history.
//!
//! The clock, the history and the device-identity lookup are passed in
//! ([`Clock`], [`History`], [`Devices`]), so the daemon and tests can run it
//! in process. A job's `stdin_command` runs only when the schedule file is
//! owned by root (or by the user running the schedule) and is not writable by
//! group or others ([`trust`]); otherwise that job fails with the reason. It runs
//! without the repository secrets in its environment ([`SECRET_ENV`]), and its
//! exit status is known before the snapshot is written: a dump that fails
//! leaves no snapshot.

use crate::archive::{backup, BackupOptions, BackupSource};
use crate::connect::{self, ConnectOptions};
use crate::drill::{drill, DrillRequest, Verdict};
use crate::prune::{self, ForgetRequest};
use crate::repo::{Selector, SourceKey, SourceMatch};
use crate::schedule::{self, JobConfig, ScheduleFile};
use crate::seen::SeenStore;
use crate::walk::Filter;
use crate::{BackupError, Outcome, Repository};
use lethe_repo::retention::{KeepN, Policy};
use lethe_repo::snapshot::DeviceIdentity;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Environment variables that carry repository secrets: never passed to a
/// child process (a dump command, a password command).
pub const SECRET_ENV: &[&str] = &[
    "LETHE_PASSWORD",
    "LETHE_PASSWORD_FILE",
    "LETHE_PASSWORD_COMMAND",
    "LETHE_RECOVERY_KEY_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// A shell command with the secrets removed from its environment.
pub fn shell(cmd: &str) -> std::process::Command {
    let mut c = std::process::Command::new("sh");
    c.arg("-c").arg(cmd);
    for v in SECRET_ENV {
        c.env_remove(v);
    }
    c
}

/// Unix seconds, passed in.
pub trait Clock {
    /// Now.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        crate::repo::now().secs
    }
}

/// What one history entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// A backup.
    Backup,
    /// Retention (forget + prune).
    Forget,
    /// A restore drill.
    Drill,
    /// Slots that passed without a run.
    Missed,
}

impl RunKind {
    /// As stored in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Backup => "backup",
            RunKind::Forget => "forget",
            RunKind::Drill => "drill",
            RunKind::Missed => "missed",
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    /// Done.
    Pass,
    /// Done with warnings (files changed while read or unreadable).
    Warn,
    /// Not done.
    Fail,
    /// Did not run at all.
    Missed,
}

impl RunResult {
    /// As stored in the history.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Pass => "pass",
            RunResult::Warn => "warn",
            RunResult::Fail => "fail",
            RunResult::Missed => "missed",
        }
    }

    fn outcome(self) -> Outcome {
        match self {
            RunResult::Pass => Outcome::Ok,
            RunResult::Warn => Outcome::CompletedWithWarnings,
            RunResult::Fail | RunResult::Missed => Outcome::Failed,
        }
    }
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRecord {
    /// Job name.
    pub job: String,
    /// Step.
    pub kind: RunKind,
    /// Unix seconds.
    pub started: i64,
    /// Unix seconds.
    pub ended: i64,
    /// Result.
    pub result: RunResult,
    /// JSON report or error text.
    pub detail: String,
}

/// A previous entry, as far as scheduling needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastRun {
    /// `backup`, `drill`, ...
    pub kind: String,
    /// Unix seconds.
    pub started: i64,
}

/// Where runs are recorded.
pub trait History {
    /// The job's past runs, oldest first.
    fn runs(&self, job: &str) -> Result<Vec<PastRun>, BackupError>;
    /// Record one entry.
    fn record(&mut self, r: &RunRecord) -> Result<(), BackupError>;
}

/// Device identities for `device` jobs (the Linux discovery layer).
pub trait Devices {
    /// Identity of the device or image file at `path`.
    fn identity(&self, path: &Path) -> Result<DeviceIdentity, BackupError>;
}

/// A schedule file as read, with who may have written it.
#[derive(Debug, Clone)]
pub struct LoadedSchedule {
    /// The jobs.
    pub file: ScheduleFile,
    /// Its path.
    pub path: PathBuf,
    /// Owner uid of the file.
    pub owner: u32,
    /// Its mode bits.
    pub mode: u32,
}

/// Read and parse a schedule file: owner and mode are taken from the very
/// descriptor the text is read from.
pub fn load(path: &Path) -> Result<LoadedSchedule, BackupError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let mut f = std::fs::File::open(path).map_err(|e| BackupError::io(path, e))?;
    let md = f.metadata().map_err(|e| BackupError::io(path, e))?;
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| BackupError::io(path, e))?;
    Ok(LoadedSchedule {
        file: ScheduleFile::parse(&text)?,
        path: path.to_path_buf(),
        owner: md.uid(),
        mode: md.mode(),
    })
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// May commands from this file run as `euid`? Only if root (or `euid`
/// itself) owns it and neither group nor others can write it.
pub fn trust(owner: u32, mode: u32, euid: u32, path: &Path) -> Result<(), String> {
    if owner != 0 && owner != euid {
        return Err(format!(
            "stdin_command refused: {} is owned by uid {owner}, not by root: a schedule never runs what an unprivileged user wrote",
            path.display()
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "stdin_command refused: {} is writable by {} (mode {:04o}); make it `chmod go-w`",
            path.display(),
            match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => "group and others",
                (true, false) => "its group",
                _ => "others",
            },
            mode & 0o7777
        ));
    }
    Ok(())
}

/// The retention policy of a job.
pub fn retention(j: &JobConfig) -> Policy {
    let k = |v: Option<u32>| v.map(KeepN::Count);
    Policy {
        last: k(j.keep_last),
        hourly: k(j.keep_hourly),
        daily: k(j.keep_daily),
        weekly: k(j.keep_weekly),
        monthly: k(j.keep_monthly),
        yearly: k(j.keep_yearly),
        ..Policy::default()
    }
}

/// Everything a scheduled run needs from outside.
pub struct Env<'e> {
    /// Time.
    pub clock: &'e dyn Clock,
    /// Device identities.
    pub devices: &'e dyn Devices,
    /// Effective uid of the runner.
    pub euid: u32,
    /// Where drills make their scratch directories.
    pub scratch: PathBuf,
    /// Backup options (host, user, threads); tags and filters come from the job.
    pub base: BackupOptions,
    /// What this client has seen of each repository (rollback detection).
    pub seen: Option<Arc<dyn SeenStore>>,
    /// The service's signed audit-log checkpoint, written into every
    /// manifest the run writes (the daemon has one; the CLI has none).
    pub audit_checkpoint: Option<String>,
}

/// The result of a scheduled run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScheduledReport {
    /// Entries recorded by this run.
    pub runs: Vec<RunRecord>,
    /// Entries that are failures or missed slots.
    pub failed: usize,
    /// Worst result: failed if any step failed or slots were missed.
    pub outcome: Outcome,
    /// When each job is next due.
    pub next: Vec<NextDue>,
}

/// When a job is next due.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NextDue {
    /// Job name.
    pub job: String,
    /// Next backup (unix seconds).
    pub backup: i64,
    /// Next drill (unix seconds), if the job has drills.
    pub drill: Option<i64>,
}

/// A job's paths as backed up: canonical (absolute) where they exist.
pub fn job_paths(j: &JobConfig) -> Vec<PathBuf> {
    j.paths
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p)))
        .collect()
}

/// Which of a job's snapshots are its own.
pub fn job_source(j: &JobConfig, hostname: &str) -> SourceMatch {
    let source = if let Some(d) = &j.device {
        let canon = std::fs::canonicalize(d).unwrap_or_else(|_| PathBuf::from(d));
        SourceKey::Device(canon.display().to_string())
    } else if j.stdin_command.is_some() {
        SourceKey::Stream(j.name.clone())
    } else {
        SourceKey::Paths(
            job_paths(j)
                .iter()
                .map(|p| p.as_os_str().as_bytes().to_vec())
                .collect(),
        )
    };
    SourceMatch {
        hostname: hostname.to_string(),
        source,
    }
}

/// Run what is due; `on_record` sees each entry as it is recorded.
pub fn run_due(
    sched: &LoadedSchedule,
    env: &Env<'_>,
    history: &mut dyn History,
    on_record: &mut dyn FnMut(&RunRecord),
) -> Result<ScheduledReport, BackupError> {
    let mut out = ScheduledReport {
        runs: Vec::new(),
        failed: 0,
        outcome: Outcome::Ok,
        next: Vec::new(),
    };
    let mut next = Vec::new();
    let mut record = |job: &str,
                      kind: RunKind,
                      started: i64,
                      result: RunResult,
                      detail: String,
                      history: &mut dyn History|
     -> Result<(), BackupError> {
        let r = RunRecord {
            job: job.into(),
            kind,
            started,
            ended: env.clock.now(),
            result,
            detail,
        };
        history.record(&r)?;
        on_record(&r);
        if matches!(result, RunResult::Fail | RunResult::Missed) {
            out.failed += 1;
        }
        out.outcome = out.outcome.worst(result.outcome());
        out.runs.push(r);
        Ok(())
    };
    for j in &sched.file.jobs {
        let runs = history.runs(&j.name)?;
        let last = |k: &str| runs.iter().rev().find(|r| r.kind == k).map(|r| r.started);
        let now = env.clock.now();
        let due = schedule::due(
            schedule::parse_interval(&j.every)?,
            j.drill_every
                .as_deref()
                .map(schedule::parse_interval)
                .transpose()?,
            last("backup"),
            last("drill"),
            now,
        );
        if due.missed > 0 {
            let msg = format!(
                "{} scheduled backup(s) every {} did not run (appliance off or scheduler stopped)",
                due.missed, j.every
            );
            record(
                &j.name,
                RunKind::Missed,
                now,
                RunResult::Missed,
                msg,
                history,
            )?;
        }
        let every = schedule::parse_interval(&j.every)?;
        let drill_every = j
            .drill_every
            .as_deref()
            .map(schedule::parse_interval)
            .transpose()?;
        let (nb, nd) = schedule::next_due(
            every,
            drill_every,
            if due.backup {
                Some(now)
            } else {
                last("backup")
            },
            if due.drill { Some(now) } else { last("drill") },
            now,
        );
        next.push(NextDue {
            job: j.name.clone(),
            backup: nb,
            drill: nd,
        });
        if !due.backup && !due.drill {
            continue;
        }
        let conn = ConnectOptions {
            sftp_key: j.sftp_key.as_ref().map(PathBuf::from),
            sftp_known_hosts: j.sftp_known_hosts.as_ref().map(PathBuf::from),
        };
        let opened = match connect::open(&j.repo, Path::new(&j.password_file), &conn) {
            Ok(mut o) => {
                if let Some(s) = &env.seen {
                    o.repo.seen = Some(Arc::clone(s));
                }
                o.repo.audit_checkpoint = env.audit_checkpoint.clone();
                o
            }
            Err(e) => {
                let kind = if due.backup {
                    RunKind::Backup
                } else {
                    RunKind::Drill
                };
                record(&j.name, kind, now, RunResult::Fail, e.to_string(), history)?;
                continue;
            }
        };
        let repo = &opened.repo;
        if due.backup {
            let t = env.clock.now();
            let (result, detail) = match job_backup(repo, j, sched, env) {
                Ok((res, v)) => (res, v),
                Err(e) => (RunResult::Fail, e.to_string()),
            };
            record(&j.name, RunKind::Backup, t, result, detail, history)?;
            let policy = retention(j);
            if result != RunResult::Fail && !policy.is_empty() {
                let t = env.clock.now();
                let req = ForgetRequest {
                    policy: policy.clone(),
                    source: Some(job_source(j, &env.base.hostname)),
                    ..ForgetRequest::default()
                };
                let r = prune::forget_with(repo, &req).and_then(|f| {
                    let removed = f.decisions.iter().filter(|x| !x.keep).count();
                    let p = prune::prune(repo, 50_000)?;
                    Ok(serde_json::json!({
                        "removed_snapshots": removed,
                        "damaged_snapshots": f.damaged,
                        "prune": p,
                    }))
                });
                let (res, detail) = match r {
                    Ok(v) => (RunResult::Pass, v.to_string()),
                    Err(e) => (RunResult::Fail, e.to_string()),
                };
                record(&j.name, RunKind::Forget, t, res, detail, history)?;
            }
        }
        if due.drill {
            let t = env.clock.now();
            let req = DrillRequest {
                snapshot: Selector::LatestOf(job_source(j, &env.base.hostname)),
                sample: j.drill_sample,
                seed: u64::from_le_bytes(crate::repo::random()?),
                scratch: env.scratch.clone(),
            };
            let (res, detail) = match drill(repo, &req) {
                Ok(rep) => (
                    if rep.result == Verdict::Pass {
                        RunResult::Pass
                    } else {
                        RunResult::Fail
                    },
                    serde_json::to_string(&rep).unwrap_or_default(),
                ),
                Err(e) => (RunResult::Fail, e.to_string()),
            };
            record(&j.name, RunKind::Drill, t, res, detail, history)?;
        }
    }
    out.next = next;
    Ok(out)
}

/// The standard output of a dump command, as a stream whose end is the command's
/// end: on end of file it waits for the command, and a non-zero exit is a read
/// error, so the backup fails before it writes a snapshot.
struct Dump {
    child: std::process::Child,
    out: std::process::ChildStdout,
    cmd: String,
    done: bool,
}

impl std::io::Read for Dump {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.out.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        self.done = true;
        let st = self.child.wait()?;
        if st.success() {
            Ok(0)
        } else {
            Err(std::io::Error::other(format!(
                "{:?} exited with {st}: its output is incomplete, no snapshot was written",
                self.cmd
            )))
        }
    }
}

impl Drop for Dump {
    fn drop(&mut self) {
        if !self.done {
            // Stopped early (an error elsewhere): do not leave the command behind.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One scheduled backup: its result and its JSON report.
fn job_backup(
    repo: &Repository,
    j: &JobConfig,
    sched: &LoadedSchedule,
    env: &Env<'_>,
) -> Result<(RunResult, String), BackupError> {
    let mut opts = env.base.clone();
    opts.tags = j.tags.clone();
    opts.filter = Filter::new(&j.include, &j.exclude)?;
    let report = if let Some(dev) = &j.device {
        let path = PathBuf::from(dev);
        let identity = env.devices.identity(&path)?;
        backup(repo, BackupSource::Device { path, identity }, &opts, &())?
    } else if let Some(cmd) = &j.stdin_command {
        trust(sched.owner, sched.mode, env.euid, &sched.path).map_err(BackupError::Invalid)?;
        let mut child = shell(cmd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| BackupError::Invalid(format!("starting {cmd:?}: {e}")))?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| BackupError::Internal("no stdout".into()))?;
        let mut dump = Dump {
            child,
            out,
            cmd: cmd.clone(),
            done: false,
        };
        backup(
            repo,
            BackupSource::Stream {
                name: j.name.clone(),
                reader: &mut dump,
            },
            &opts,
            &(),
        )?
    } else {
        backup(repo, BackupSource::Paths(job_paths(j)), &opts, &())?
    };
    let result = match report.outcome {
        Outcome::Ok => RunResult::Pass,
        Outcome::CompletedWithWarnings => RunResult::Warn,
        Outcome::Failed => RunResult::Fail,
    };
    Ok((result, serde_json::to_string(&report).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_owned_unwritable_files_may_run_commands() {
        let p = Path::new("/etc/lethe/schedule.toml");
        assert!(trust(0, 0o100644, 0, p).is_ok());
        assert!(trust(0, 0o100600, 0, p).is_ok());
        assert!(trust(0, 0o100640, 0, p).is_ok());
        let e = trust(1000, 0o100644, 0, p).unwrap_err();
        assert!(e.contains("uid 1000") && e.contains("not by root"), "{e}");
        let e = trust(0, 0o100664, 0, p).unwrap_err();
        assert!(e.contains("group") && e.contains("0664"), "{e}");
        let e = trust(0, 0o100646, 0, p).unwrap_err();
        assert!(e.contains("others"), "{e}");
        // A service user may run its own file, not another user's.
        assert!(trust(998, 0o100600, 998, p).is_ok());
        assert!(trust(1000, 0o100600, 998, p).is_err());
    }
}
