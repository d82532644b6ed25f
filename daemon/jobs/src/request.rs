//! What an edge asks for: one typed request per job.
//!
//! The CLI and (later) the daemon's API build these values; the library does
//! everything else. A request says what to do and carries the operator's
//! confirmation; it never carries an opened device: the library assesses and
//! opens the device itself, so every edge gets the same checks.
//!
//! Backups, tree restores, restore drills and scheduled runs are requests
//! too ([`crate::backup`]): one typed request per job, whatever the job.

use crate::confirm::Confirmation;
use crate::restore::ImageSource;
use lethe_core::pattern::Pattern;
use lethe_core::plan::VerifyMode;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One job to run.
#[derive(Clone)]
#[non_exhaustive]
pub enum JobRequest {
    /// Sanitize a device: a verified overwrite (Clear) or a drive-native
    /// command chosen by the NIST SP 800-88 policy (Purge).
    Wipe(WipeRequest),
    /// Continue an interrupted or stopped overwrite.
    Resume(ResumeRequest),
    /// Destroy magnetic media in the degausser.
    Degauss(DegaussRequest),
    /// Write a backed-up device image onto a device.
    RestoreImage(RestoreImageRequest),
    /// Back up files or a device.
    Backup(crate::backup::BackupRequest),
    /// Restore a tree snapshot into a directory.
    RestoreTree(crate::backup::RestoreTreeRequest),
    /// Restore a sample of a snapshot and compare it with its backup-time hashes.
    Drill(crate::backup::DrillRequest),
    /// Run what a backup schedule has due (backups, retention, drills).
    ScheduledRun(crate::backup::ScheduledRunRequest),
}

impl JobRequest {
    /// The kind of job this request starts.
    pub fn kind(&self) -> JobKind {
        match self {
            JobRequest::Wipe(_) | JobRequest::Resume(_) => JobKind::Wipe,
            JobRequest::Degauss(_) => JobKind::Degauss,
            JobRequest::RestoreImage(_) => JobKind::RestoreImage,
            JobRequest::Backup(_) => JobKind::Backup,
            JobRequest::RestoreTree(_) => JobKind::RestoreTree,
            JobRequest::Drill(_) => JobKind::Drill,
            JobRequest::ScheduledRun(_) => JobKind::ScheduledRun,
        }
    }
}

impl std::fmt::Debug for JobRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobRequest::Wipe(r) => f.debug_tuple("Wipe").field(r).finish(),
            JobRequest::Resume(r) => f.debug_tuple("Resume").field(r).finish(),
            JobRequest::Degauss(r) => f.debug_tuple("Degauss").field(r).finish(),
            JobRequest::RestoreImage(r) => f
                .debug_struct("RestoreImage")
                .field("device", &r.device)
                .field("image", &r.image.describe())
                .finish(),
            JobRequest::Backup(r) => f.debug_tuple("Backup").field(r).finish(),
            JobRequest::RestoreTree(r) => f.debug_tuple("RestoreTree").field(r).finish(),
            JobRequest::Drill(r) => f.debug_tuple("Drill").field(r).finish(),
            JobRequest::ScheduledRun(r) => f.debug_tuple("ScheduledRun").field(r).finish(),
        }
    }
}

/// The kind of a job, as stored (`kind` column) and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Overwrite or drive-native purge (one job, possibly both: a purge that
    /// falls back to an overwrite keeps its id).
    Wipe,
    Degauss,
    RestoreImage,
    Backup,
    RestoreTree,
    Drill,
    ScheduledRun,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Wipe => "wipe",
            JobKind::Degauss => "degauss",
            JobKind::RestoreImage => "restore_image",
            JobKind::Backup => "backup",
            JobKind::RestoreTree => "restore_tree",
            JobKind::Drill => "drill",
            JobKind::ScheduledRun => "scheduled_run",
        }
    }

    /// A backup, tree restore, drill or scheduled run (no device, no record).
    pub fn is_backup(self) -> bool {
        matches!(
            self,
            JobKind::Backup | JobKind::RestoreTree | JobKind::Drill | JobKind::ScheduledRun
        )
    }
}

/// Who does the work, where, and for whom; all of it goes on the certificate.
///
/// The operator is required: a request whose `operator_id` is empty is
/// refused ([`crate::Refusal::NoOperator`]) unless the library was configured
/// to accept jobs without one ([`crate::JobsConfig::require_operator`]). The
/// edge fills these from its options, the site configuration (`[site]` of
/// `lethe.toml`: operator, location, media source) or the login, and says
/// which in `operator_source`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parties {
    pub operator_id: String,
    pub operator_name: String,
    /// Where the operator's identity came from (`--operator-id`, `[site]
    /// operator_id in /etc/lethe/lethe.toml`, `sudo login`, a console
    /// login...), for the job's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_source: Option<String>,
    pub customer: Option<String>,
    pub asset_tag: Option<String>,
    /// Where the drive goes after sanitization.
    pub destination: Option<Destination>,
    /// Where the appliance stands (the certificate's `appliance.location`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// NIST "Media Source": the user or computer the media came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_source: Option<String>,
}

impl Parties {
    /// Whether an operator of record is named.
    pub fn has_operator(&self) -> bool {
        !self.operator_id.trim().is_empty()
    }
}

/// Where a drive goes after sanitization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    Reuse,
    ReturnToLessor,
    Destroy,
}

/// The NIST SP 800-88 level asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WipeLevel {
    /// Verified overwrite of every user-addressable sector.
    Clear,
    /// Drive-native sanitize command chosen by the policy, then a read-back proof.
    Purge,
}

/// A method family the operator forces (`--method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodFamily {
    /// The policy chooses.
    Auto,
    /// Verified software overwrite (Clear).
    Overwrite,
    AtaSecureErase,
    AtaSanitize,
    NvmeFormat,
    NvmeSanitize,
    ScsiSanitize,
}

/// How an overwrite writes and verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverwriteOptions {
    pub pattern: Pattern,
    pub passes: u32,
    /// A final zero pass (it is the pass verified).
    pub blank: bool,
    pub verify: VerifyMode,
    /// Bytes per I/O; a multiple of 4096.
    pub chunk_size: usize,
    /// I/Os in flight (worker threads).
    pub depth: usize,
}

impl Default for OverwriteOptions {
    fn default() -> Self {
        Self {
            pattern: Pattern::Random,
            passes: 1,
            blank: false,
            verify: VerifyMode::Full,
            chunk_size: 1 << 20,
            depth: 4,
        }
    }
}

/// How a drive-native purge runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeOptions {
    /// Restore the native max address (remove an ATA HPA) before the erase.
    pub remove_hpa: bool,
    /// Fall back to another command, or to a Clear overwrite, when needed.
    pub allow_fallback: bool,
    /// How long to wait for the operator to unfreeze a frozen drive.
    pub unfreeze_wait: Duration,
    /// Canary blocks read back after the command.
    pub canaries: usize,
    /// Seed of the canary plan; `None`: from the OS random generator.
    pub seed: Option<u64>,
}

impl Default for PurgeOptions {
    fn default() -> Self {
        Self {
            remove_hpa: false,
            allow_fallback: true,
            unfreeze_wait: Duration::from_secs(600),
            canaries: 256,
            seed: None,
        }
    }
}

/// Sanitize a whole device.
#[derive(Debug, Clone)]
pub struct WipeRequest {
    /// The whole device, e.g. `/dev/sdb` or a `/dev/disk/by-id/…` link.
    pub device: PathBuf,
    pub confirmation: Confirmation,
    pub level: WipeLevel,
    pub method: MethodFamily,
    pub overwrite: OverwriteOptions,
    pub purge: PurgeOptions,
    pub parties: Parties,
    /// Front-panel bay whose LED follows the job.
    pub bay: Option<u8>,
    /// Seconds between durable checkpoints (flush + job-store update).
    pub checkpoint_interval: Duration,
}

impl WipeRequest {
    /// A Clear overwrite of `device` with default options.
    pub fn clear(device: impl Into<PathBuf>, confirmation: Confirmation, parties: Parties) -> Self {
        Self {
            device: device.into(),
            confirmation,
            level: WipeLevel::Clear,
            method: MethodFamily::Auto,
            overwrite: OverwriteOptions::default(),
            purge: PurgeOptions::default(),
            parties,
            bay: None,
            checkpoint_interval: Duration::from_secs(5),
        }
    }

    /// Whether the job starts with a drive-native command (a Purge level, or
    /// a forced command family).
    pub fn native(&self) -> bool {
        self.level == WipeLevel::Purge
            || !matches!(self.method, MethodFamily::Auto | MethodFamily::Overwrite)
    }
}

/// Continue a stopped or interrupted overwrite.
#[derive(Debug, Clone)]
pub struct ResumeRequest {
    pub job: String,
    /// The device, when it got a new name; else the one the job recorded.
    pub device: Option<PathBuf>,
    pub confirmation: Confirmation,
    pub bay: Option<u8>,
    pub checkpoint_interval: Duration,
}

/// What goes into the degausser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Medium {
    /// A rotating magnetic disk attached to this appliance.
    Device(PathBuf),
    /// A tape the operator declares by its label or barcode.
    Tape(String),
}

/// Destroy magnetic media in the degausser.
#[derive(Debug, Clone)]
pub struct DegaussRequest {
    pub medium: Medium,
    pub confirmation: Confirmation,
    pub parties: Parties,
}

/// Write an image onto a device.
#[derive(Clone)]
pub struct RestoreImageRequest {
    pub device: PathBuf,
    pub confirmation: Confirmation,
    pub image: Arc<dyn ImageSource>,
    /// Who restores, for the job's history.
    pub operator_id: String,
}
