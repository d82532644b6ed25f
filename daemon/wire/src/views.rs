//! What the worker shows the front: plain data, no handles, no secrets.
//!
//! Times are RFC 3339 UTC strings (`2026-11-23T14:05:01Z`); sizes and
//! counts are integers. Nothing here names a file the backups hold or a
//! volume label: drives are shown by model, serial, size and path.

use serde::{Deserialize, Serialize};

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthView {
    /// The worker's Lethe version.
    pub version: String,
    /// Seconds since the worker started.
    pub uptime_secs: u64,
    /// Jobs running now.
    pub jobs_running: u32,
}

/// One entry of a backup job's history (`GET /api/v1/backups/{job}/history`):
/// a backup, a retention run, a drill or a missed slot. Reports stay in
/// the worker (they name files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BackupRunView {
    /// `backup`, `forget`, `drill` or `missed`.
    pub kind: String,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// When it ended (RFC 3339, UTC).
    pub ended: String,
    /// `pass`, `warn`, `fail` or `missed`.
    pub result: String,
}

/// A backup job's snapshots (`GET /api/v1/backups/{job}/snapshots`), read
/// from its repository now. Paths and file names stay in the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SnapshotsView {
    /// The job's readable snapshots, newest first.
    pub snapshots: Vec<SnapshotView>,
    /// Snapshot files that are damaged (`lethe backup check` names them).
    pub damaged: u32,
    /// Signs of tampering the repository's state shows (rollback,
    /// replay...): `lethe backup check` explains each.
    pub tampering: u32,
}

/// One snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SnapshotView {
    /// Its id (hex).
    pub id: String,
    /// When it was taken (RFC 3339, UTC).
    pub time: String,
    /// The host it was taken on.
    pub hostname: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Files in it.
    pub files: u64,
    /// Directories in it.
    pub dirs: u64,
    /// Bytes read when it was taken.
    pub bytes_read: u64,
    /// Bytes of new data it added to the repository (before compression).
    pub bytes_added: u64,
}

/// The front-panel controller and degausser (`GET /api/v1/controller`):
/// what the controller itself reports, read when asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ControllerView {
    /// A controller is configured (`[controller] port`).
    pub configured: bool,
    /// The serial port, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// The controller answered just now.
    pub connected: bool,
    /// Why it did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it reported, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ControllerStateView>,
}

/// One status report of the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ControllerStateView {
    /// Firmware version, `major.minor.patch`.
    pub firmware_version: String,
    /// Serial protocol version.
    pub protocol: u16,
    /// `Production` or `Simulation` image.
    pub build: String,
    /// Why the controller last started (e.g. `PowerOn`, `Watchdog`).
    pub reset_cause: String,
    /// The relay output, read back from its pin.
    pub relay: bool,
    /// The feedback contact reads the coil energized.
    pub energized: bool,
    /// The door interlock is closed.
    pub interlock_closed: bool,
    /// The emergency stop is pressed.
    pub estop: bool,
    /// A latched fault, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// The fault needs the local reset at the machine.
    pub needs_local_reset: bool,
    /// The degausser's state (e.g. `Idle`, `Armed`, `Cooldown`).
    pub degausser: String,
    /// Completed degauss cycles since the controller started.
    pub cycles: u32,
    /// Measured energized time of the last completed cycle.
    pub last_cycle_ms: u32,
    /// Until the coil may be armed again (0: ready).
    pub cooldown_ms: u32,
    /// Since the controller started.
    pub uptime_ms: u32,
}

/// `lethe status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatusView {
    /// The daemon itself.
    pub daemon: DaemonView,
    /// Every configured bay, in configuration order.
    pub bays: Vec<BayView>,
    /// Jobs running now.
    pub running: Vec<JobView>,
    /// Jobs a crash or power loss interrupted, resumable.
    pub interrupted: Vec<JobView>,
    /// Every configured backup job, with its next run.
    pub backups: Vec<BackupView>,
}

/// The daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DaemonView {
    /// Lethe version.
    pub version: String,
    /// When the worker started.
    pub started_at: String,
    /// The worker's process id.
    pub pid: u32,
    /// Times the worker has restarted the front since it started.
    pub front_restarts: u32,
    /// Entries in the audit log.
    pub audit_entries: u64,
    /// Where the HTTPS API listens, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_listen: Option<String>,
    /// SHA-256 fingerprint of the HTTPS certificate (pin it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
}

/// One bay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BayView {
    /// Its name.
    pub name: String,
    /// Its LED on the controller.
    pub led: Option<u8>,
    /// `ask` or `auto`.
    pub policy: BayPolicy,
    /// `clear` or `purge`.
    pub level: BayLevel,
    /// What the bay is doing.
    pub state: BayState,
    /// The drive in it, if any.
    pub drive: Option<DriveView>,
    /// The bay's current or last job.
    pub job: Option<String>,
    /// What the operator should know (why a drive was refused, "move it
    /// to a direct SATA/NVMe port for Purge"...).
    pub message: Option<String>,
}

/// A bay's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BayPolicy {
    /// Waits for an operator.
    Ask,
    /// Starts its job by itself.
    Auto,
}

/// A bay's NIST SP 800-88 level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BayLevel {
    /// Verified overwrite.
    Clear,
    /// Drive-native sanitize.
    Purge,
}

/// What a bay is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BayState {
    /// No drive.
    Empty,
    /// A drive waits for an operator (`ask` bay).
    Waiting,
    /// A job runs.
    Running,
    /// The last job passed at the level asked.
    Passed,
    /// The last job was verified at Clear where Purge was asked (see
    /// `message`): never shown as a plain pass.
    ClearOnly,
    /// The last job wrote every pass but read nothing back (`verify off`):
    /// not certified.
    Unverified,
    /// The last job failed: a failure report was issued.
    Failed,
    /// The drive was refused before anything was written.
    Refused,
    /// The last job was stopped; resumable.
    Stopped,
    /// The last job was interrupted (crash, power loss); resumable.
    Interrupted,
}

/// A drive, as shown to an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DriveView {
    /// Its device node.
    pub path: String,
    /// How it is attached (`sata`, `nvme`, `usb`, `loop`...).
    pub transport: String,
    /// Model, if known.
    pub model: Option<String>,
    /// Serial number, if known.
    pub serial: Option<String>,
    /// Capacity in bytes.
    pub size_bytes: u64,
}

/// A job's state in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Running now.
    Running,
    /// Interrupted by a crash or power loss; resumable.
    Interrupted,
    /// Stopped on request; resumable.
    Incomplete,
    /// Finished and verified.
    Passed,
    /// Finished with failures, or aborted.
    Failed,
    /// Verified, but at Clear where Purge was asked for.
    ClearOnly,
    /// Every pass written, nothing read back (`verify off`): not certified.
    Unverified,
    /// Stopped before anything was written (or a cycle that never fired).
    NotStarted,
}

/// One job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobView {
    /// Its id.
    pub id: String,
    /// `wipe`, `degauss`, `restore_image`...
    pub kind: String,
    /// Its state.
    pub state: JobState,
    /// The device it works on.
    pub device: String,
    /// The bay, for a bay job of this daemon.
    pub bay: Option<String>,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Its certificate or report file, once issued.
    pub certificate: Option<String>,
    /// Progress, while it runs.
    pub progress: Option<ProgressView>,
}

/// A running job's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProgressView {
    /// `writing`, `verifying`, `purging`...
    pub phase: String,
    /// Bytes done over the whole job.
    pub done: u64,
    /// Bytes the whole job handles.
    pub total: u64,
}

/// One scheduled backup job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BackupView {
    /// The job's name.
    pub job: String,
    /// Its interval in seconds.
    pub every_secs: u64,
    /// The last backup attempt.
    pub last_backup: Option<String>,
    /// How it ended: `pass`, `warn`, `fail` or `missed`.
    pub last_result: Option<String>,
    /// The newest successful backup.
    pub last_success: Option<String>,
    /// When the next backup is due (now or earlier: at the next tick).
    pub next_due: String,
    /// The last drill and how it ended.
    pub last_drill: Option<String>,
    /// `pass` or `fail`.
    pub last_drill_result: Option<String>,
    /// The configured maximum age of the newest good backup, in seconds.
    pub max_age_secs: Option<u64>,
}

/// `GET /metrics`: what the front renders in the Prometheus text format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsView {
    /// Seconds since the worker started.
    pub uptime_secs: u64,
    /// Jobs in the history by state.
    pub jobs: Vec<StateCount>,
    /// Bytes written by jobs of this daemon since it started.
    pub bytes_written: u64,
    /// Bytes read back and verified by jobs of this daemon since it started.
    pub bytes_verified: u64,
    /// Jobs of this daemon that failed since it started.
    pub job_failures: u64,
    /// Per backup job.
    pub backups: Vec<BackupMetrics>,
    /// Entries in the audit log.
    pub audit_entries: u64,
    /// Times the front was restarted.
    pub front_restarts: u64,
}

/// A count of jobs in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateCount {
    /// The state.
    pub state: JobState,
    /// How many.
    pub count: u64,
}

/// Numbers of one backup job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupMetrics {
    /// The job's name.
    pub job: String,
    /// Seconds since its newest successful backup (none: never).
    pub age_secs: Option<u64>,
    /// Drills that passed, in the history.
    pub drills_passed: u64,
    /// Drills that failed, in the history.
    pub drills_failed: u64,
    /// Backups that failed or were missed, in the history.
    pub backups_failed: u64,
}
