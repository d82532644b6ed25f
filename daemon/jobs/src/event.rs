//! One event stream for every kind of job, ending in one typed report.
//!
//! A subscriber receives [`Event`]s in order; the last one is always
//! [`Event::Finished`] with the [`Report`]. Outcomes are an enum
//! ([`Outcome`]), never the strings "pass"/"fail"; an edge maps them to what
//! it shows (an exit code, a JSON document, a banner).

use crate::refusal::Refusal;
use crate::request::JobKind;
use lethe_controller::DegaussConfirmation;
use lethe_core::ranges::RangeSet;
use serde::Serialize;

/// Something that happened in a job.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The job has its record (`job`) and works on `device`.
    Started {
        job: String,
        kind: JobKind,
        device: String,
    },
    /// Information for the operator (what the probe found, why a path was taken).
    Note { message: String },
    /// Something that does not stop the job but should be seen (a bay LED
    /// that cannot be set).
    Warning { message: String },
    /// The operator must act (unfreeze a drive, look at a bay).
    Attention { message: String },
    /// Overwrite progress.
    Overwrite(lethe_wipe::Progress),
    /// A drive-native purge step.
    Purge(PurgeStep),
    /// The degausser was armed and fired; waiting for the controller's confirmation.
    Degaussing,
    /// Image restore progress.
    Restore { done: u64, total: u64 },
    /// A step of a backup job (an entry of a scheduled run).
    Backup(crate::backup::BackupStep),
    /// The end. Nothing follows.
    Finished(Box<Report>),
}

/// The steps of a drive-native purge.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum PurgeStep {
    /// The policy's choice.
    Chosen {
        method: String,
        category: Level,
        reasons: Vec<String>,
    },
    /// A command is being sent.
    Command { command: String },
    /// A long command is running.
    Waiting { message: String },
    /// The drive's own progress report (fraction done), when it gives one.
    Progress { fraction: Option<f64> },
}

/// A NIST SP 800-88 sanitization level, as reached or requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Clear,
    Purge,
    Destroy,
}

impl From<lethe_cmds::policy::Level> for Level {
    fn from(l: lethe_cmds::policy::Level) -> Self {
        match l {
            lethe_cmds::policy::Level::Clear => Level::Clear,
            lethe_cmds::policy::Level::Purge => Level::Purge,
            lethe_cmds::policy::Level::Destroy => Level::Destroy,
        }
    }
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Clear => "clear",
            Level::Purge => "purge",
            Level::Destroy => "destroy",
        }
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// Sanitized (or restored) and verified as requested; a certificate was issued.
    Passed,
    /// Verified, but at a lower level than requested (a Purge request met by
    /// a Clear overwrite); the certificate says so and why ("CLEAR ONLY").
    PassedAtLowerLevel { requested: Level, reached: Level },
    /// Every pass was written without an error, but nothing was read back
    /// (`--verify off`): an "UNVERIFIED" report, never a certificate, and not
    /// a failed wipe either.
    Unverified,
    /// The job ran and failed: a failure report was issued, never a
    /// certificate of sanitization. The device may have been written.
    Failed,
    /// Stopped by the operator: an incomplete report was issued; resumable.
    Stopped,
    /// The job was written to but could not finish its record or document
    /// (the state directory filled up, the worker died). The device holds
    /// what was written; the job is resumable and issues its document then.
    Interrupted { reason: String },
    /// The job was recorded, then ended before anything was done to the
    /// medium (the degausser refused to arm, or refused the fire): a "NOT
    /// STARTED" report says so. Nothing was written, nothing fired.
    NotStarted { reason: String },
    /// Refused before anything was written (and before a record existed).
    Refused(Refusal),
}

impl Outcome {
    /// The one word edges show for this outcome (the JSON summary's
    /// `result`): `pass`, `clear_only`, `unverified`, `fail`, `incomplete`,
    /// `not_started` or `refused`. The first six are the certificate's own
    /// `result.status` values for the same job.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Passed => "pass",
            Outcome::PassedAtLowerLevel { .. } => "clear_only",
            Outcome::Unverified => "unverified",
            Outcome::Failed => "fail",
            Outcome::Stopped | Outcome::Interrupted { .. } => "incomplete",
            Outcome::NotStarted { .. } => "not_started",
            Outcome::Refused(_) => "refused",
        }
    }

    /// True only for outcomes whose document is a certificate of
    /// sanitization (`pass`, `clear_only`).
    pub fn certifies(&self) -> bool {
        matches!(self, Outcome::Passed | Outcome::PassedAtLowerLevel { .. })
    }
}

/// A signed document written to the certificate store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issued {
    pub id: String,
    pub json: String,
    pub pdf: String,
    /// A certificate of sanitization (`true`) or a failure/incomplete report.
    pub certifies: bool,
}

/// What a job produced. Built by the library; rendered by edges.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `None` when the job was refused before it had a record.
    pub job: Option<String>,
    pub kind: JobKind,
    pub outcome: Outcome,
    /// The device (or tape) worked on, once known.
    pub device: Option<String>,
    pub document: Option<Issued>,
    /// The method that ran (`overwrite`, `nvme_format_ses1`, `degauss`, `restore_image`…).
    pub method: Option<String>,
    /// The level reached, for sanitization jobs.
    pub category: Option<Level>,
    /// The level asked for, when it differs from the one reached.
    pub requested: Option<Level>,
    /// Bytes the whole job wrote (all its runs), as its certificate states.
    pub bytes_written: u64,
    /// Of `bytes_written`, what earlier runs of a resumed job had written.
    pub bytes_written_earlier: u64,
    pub bytes_verified: u64,
    pub failed_ranges: RangeSet,
    /// Why the outcome is not a pass, in words.
    pub problems: Vec<String>,
    /// Wall time of this run's write and verify phases, for throughput figures.
    pub write_seconds: f64,
    pub verify_seconds: f64,
    /// The controller's record of a degauss cycle.
    pub degauss: Option<DegaussConfirmation>,
    /// The drive's health as read before the first write.
    pub health: Option<lethe_cmds::smart::DriveHealth>,
    /// The backup engine's report, for backup jobs.
    pub backup: Option<Box<crate::backup::BackupResult>>,
}

impl Report {
    /// A report for a job refused with `why`.
    pub fn refused(
        job: Option<String>,
        kind: JobKind,
        device: Option<String>,
        why: Refusal,
    ) -> Self {
        let mut r = Self::new(job, kind, Outcome::Refused(why));
        r.device = device;
        r
    }

    pub(crate) fn new(job: Option<String>, kind: JobKind, outcome: Outcome) -> Self {
        Self {
            job,
            kind,
            outcome,
            device: None,
            document: None,
            method: None,
            category: None,
            requested: None,
            bytes_written: 0,
            bytes_written_earlier: 0,
            bytes_verified: 0,
            failed_ranges: RangeSet::new(),
            problems: Vec::new(),
            write_seconds: 0.0,
            verify_seconds: 0.0,
            degauss: None,
            health: None,
            backup: None,
        }
    }

    /// Whether `lethe wipe --resume` can continue this job.
    pub fn resumable(&self) -> bool {
        matches!(self.outcome, Outcome::Stopped | Outcome::Interrupted { .. })
            && self.job.is_some()
            && self.kind == JobKind::Wipe
    }
}
