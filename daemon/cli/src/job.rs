//! Running a wipe job end to end: job row, engine, checkpoints, certificate.
//!
//! This is the glue between the pure pieces (plan, engine verdict,
//! certificate contents) and the stateful ones (job store, key, device). It
//! takes any [`BlockDevice`], so tests drive it with fault-injecting devices
//! and the CLI with a real `O_DIRECT` device.

use crate::certify::{self, IssuedCertificate};
use crate::identity::DeviceIdentity;
use crate::state::{self, StateDir};
use lethe_cert::ApplianceKey;
use lethe_core::device::BlockDevice;
use lethe_core::plan::{Checkpoint, WipePlan};
use lethe_core::ranges::RangeSet;
use lethe_store::{JobStatus, JobStore, NewJob, StoreError};
use lethe_wipe::{run, EndState, Observer, Progress, StreamKey, Verdict, WipeConfig, WipeOutcome};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Errors of job orchestration (not of the wipe itself: a failed wipe is a
/// successful job run with a `fail` verdict).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("job {id} cannot be resumed: it is {status}")]
    NotResumable { id: String, status: JobStatus },
    #[error("job {id} is still running in process {pid}")]
    StillRunning { id: String, pid: u32 },
    #[error("job {0} is not a wipe job or its stored specification is unreadable: {1}")]
    BadSpec(String, String),
    #[error("refusing to resume job {id} on {path}: {why}")]
    DifferentDevice {
        id: String,
        path: String,
        why: String,
    },
    #[error("could not issue the certificate: {0}")]
    Certify(#[from] certify::CertifyError),
    #[error("cannot read the operating system's random generator: {0}")]
    Random(String),
    #[error(transparent)]
    Purge(#[from] lethe_purge::PurgeError),
}

/// Who is doing the work, and for whom; all of it goes on the certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobParties {
    pub operator_id: String,
    pub operator_name: String,
    pub customer: Option<String>,
    pub asset_tag: Option<String>,
    /// reuse, return_to_lessor or destroy.
    pub destination: Option<String>,
}

/// Everything that defines a wipe job; stored as the job's spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WipeSpec {
    pub device: DeviceIdentity,
    pub plan: WipePlan,
    pub sample_seed: u64,
    pub chunk_size: usize,
    pub depth: usize,
    pub parties: JobParties,
    pub tool_version: String,
    /// Set when the operator asked for a drive-native Purge: what was
    /// requested and, once the job fell back to this overwrite, why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge: Option<PurgeContext>,
}

/// A Purge request carried by a job whose method may end up an overwrite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeContext {
    /// The level the operator asked for.
    pub requested: lethe_cmds::policy::Level,
    /// The drive-native part of the job, once it has run.
    pub report: Option<lethe_purge::PurgeReport>,
}

/// What a finished (or stopped) run produced.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub job: String,
    pub result: Verdict,
    /// Path of the signed JSON certificate or report.
    pub certificate: Option<String>,
    pub pdf: Option<String>,
    pub device: String,
    pub bytes_written: u64,
    pub bytes_verified: u64,
    pub failed_ranges: RangeSet,
    pub problems: Vec<String>,
    pub resumable: bool,
    /// Wall time of this run's write and verify phases, for throughput figures.
    pub write_seconds: f64,
    pub verify_seconds: f64,
    /// The method that ran (`overwrite`, `nvme_format_ses1`...).
    pub method: String,
    /// The NIST category reached: `clear` or `purge`.
    pub category: String,
    /// The level asked for, when it differs from the one reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
}

/// Receives progress for display.
pub trait ProgressSink: Sync {
    fn progress(&self, p: &Progress);
}

impl ProgressSink for () {
    fn progress(&self, _p: &Progress) {}
}

/// Shared handles a job needs.
pub struct JobContext<'a> {
    pub state: &'a StateDir,
    pub key: &'a ApplianceKey,
    /// Set by Ctrl-C / SIGTERM.
    pub stop: &'a AtomicBool,
    pub sink: &'a dyn ProgressSink,
    pub checkpoint_interval: Duration,
}

/// Connects the engine to the store, the display and the stop flag.
struct JobObserver<'a> {
    // rusqlite connections are Send but not Sync; the engine shares the
    // observer across threads, so the store sits behind a mutex.
    store: Mutex<JobStore>,
    id: &'a str,
    ctx: &'a JobContext<'a>,
}

impl Observer for JobObserver<'_> {
    fn progress(&self, p: &Progress) {
        self.ctx.sink.progress(p);
    }

    fn checkpoint(&self, cp: Checkpoint, failures: &RangeSet) -> Result<(), String> {
        let store = self
            .store
            .lock()
            .map_err(|_| "job store lock poisoned".to_string())?;
        store
            .checkpoint(self.id, &cp, failures, &state::now_rfc3339())
            .map_err(|e| e.to_string())
    }

    fn stop_requested(&self) -> bool {
        self.ctx.stop.load(Ordering::Relaxed)
    }
}

/// Start a new wipe job on `dev`.
pub fn start(
    ctx: &JobContext<'_>,
    dev: &dyn BlockDevice,
    spec: WipeSpec,
) -> Result<JobReport, JobError> {
    let (id, key) = create(ctx, &spec)?;
    run_created(ctx, dev, &id, &spec, key)
}

/// Run the overwrite of a job [`create`] recorded.
pub fn run_created(
    ctx: &JobContext<'_>,
    dev: &dyn BlockDevice,
    id: &str,
    spec: &WipeSpec,
    key: StreamKey,
) -> Result<JobReport, JobError> {
    execute(ctx, dev, id, spec, key, Checkpoint::START, RangeSet::new())
}

/// Record a new job (row, stream key, `started` event) before anything is written.
pub fn create(ctx: &JobContext<'_>, spec: &WipeSpec) -> Result<(String, StreamKey), JobError> {
    let store = JobStore::open(ctx.state.root())?;
    let id = state::new_job_id("wipe");
    let key = StreamKey::generate().map_err(|e| JobError::Random(e.to_string()))?;
    let now = state::now_rfc3339();
    store.create(&NewJob {
        id: id.clone(),
        kind: "wipe".into(),
        device_path: spec.device.path.clone(),
        spec: serde_json::to_value(spec)
            .map_err(|e| JobError::BadSpec(id.clone(), e.to_string()))?,
        secret: key.0.to_vec(),
        pid: std::process::id(),
        boot_id: state::boot_id(),
        now: now.clone(),
    })?;
    let detail = format!(
        "{} pass(es) of {}, verify {}, on {}",
        spec.plan.passes.len(),
        spec.plan
            .passes
            .first()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        spec.plan.verify,
        spec.device.label()
    );
    let detail = match &spec.purge {
        Some(p) => format!("{:?} requested on {}", p.requested, spec.device.label()),
        None => detail,
    };
    store.event(&id, &now, "started", &detail)?;
    Ok((id, key))
}

/// Load a resumable job: returns its spec after checking it may be resumed.
pub fn load_resumable(state: &StateDir, id: &str) -> Result<WipeSpec, JobError> {
    let store = JobStore::open(state.root())?;
    store.reap_dead(state::process_alive, &state::now_rfc3339())?;
    let job = store.get(id)?;
    if job.status == JobStatus::Running {
        return Err(JobError::StillRunning {
            id: id.into(),
            pid: job.pid.unwrap_or(0),
        });
    }
    if !job.status.resumable() {
        return Err(JobError::NotResumable {
            id: id.into(),
            status: job.status,
        });
    }
    if job.kind != "wipe" {
        return Err(JobError::BadSpec(
            id.into(),
            format!("kind is {}", job.kind),
        ));
    }
    let spec: WipeSpec = serde_json::from_value(job.spec)
        .map_err(|e| JobError::BadSpec(id.into(), e.to_string()))?;
    // A drive-native command cannot be resumed half-way; only its overwrite
    // fallback (recorded with its report) can.
    if spec.purge.as_ref().is_some_and(|p| p.report.is_none()) {
        return Err(JobError::BadSpec(
            id.into(),
            "it was a drive-native purge interrupted during its command: start a new job".into(),
        ));
    }
    Ok(spec)
}

/// Continue an interrupted or stopped job on `dev`, whose identity is `now_identity`.
pub fn resume(
    ctx: &JobContext<'_>,
    dev: &dyn BlockDevice,
    id: &str,
    now_identity: &DeviceIdentity,
) -> Result<JobReport, JobError> {
    let spec = load_resumable(ctx.state, id)?;
    if let Some(why) = spec.device.mismatch(now_identity) {
        return Err(JobError::DifferentDevice {
            id: id.into(),
            path: now_identity.path.clone(),
            why,
        });
    }
    let store = JobStore::open(ctx.state.root())?;
    let job = store.get(id)?;
    let key: [u8; 16] = job.secret.as_slice().try_into().map_err(|_| {
        JobError::BadSpec(id.into(), "stored stream key has the wrong length".into())
    })?;
    let now = state::now_rfc3339();
    store.set_status(
        id,
        JobStatus::Running,
        Some((std::process::id(), &state::boot_id())),
        &now,
    )?;
    store.event(
        id,
        &now,
        "resumed",
        &format!("resumed from checkpoint {}", describe(&job.checkpoint)),
    )?;
    drop(store);
    execute(
        ctx,
        dev,
        id,
        &spec,
        StreamKey(key),
        job.checkpoint,
        job.write_failures,
    )
}

fn describe(cp: &Checkpoint) -> String {
    match cp {
        Checkpoint::Writing { pass, offset } => format!("pass {} at byte {offset}", pass + 1),
        Checkpoint::Verifying => "verification (restarted from the beginning)".into(),
        Checkpoint::Done => "done".into(),
    }
}

fn execute(
    ctx: &JobContext<'_>,
    dev: &dyn BlockDevice,
    id: &str,
    spec: &WipeSpec,
    key: StreamKey,
    start: Checkpoint,
    prior: RangeSet,
) -> Result<JobReport, JobError> {
    let mut cfg = WipeConfig::new(spec.plan.clone(), key, spec.sample_seed);
    cfg.chunk_size = spec.chunk_size;
    cfg.depth = spec.depth;
    cfg.checkpoint_interval = ctx.checkpoint_interval;
    let observer = JobObserver {
        store: Mutex::new(JobStore::open(ctx.state.root())?),
        id,
        ctx,
    };
    let outcome = run(dev, &cfg, start, prior, &observer);
    let store = observer
        .store
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    finish(ctx, &store, id, spec, &outcome, &start)
}

fn finish(
    ctx: &JobContext<'_>,
    store: &JobStore,
    id: &str,
    spec: &WipeSpec,
    outcome: &WipeOutcome,
    start: &Checkpoint,
) -> Result<JobReport, JobError> {
    let verdict = outcome.verdict();
    let now = state::now_rfc3339();
    let problems = outcome.problems();
    let (status, kind) = match verdict {
        Verdict::Pass => (JobStatus::Pass, "completed"),
        Verdict::Fail => (JobStatus::Fail, "failed"),
        Verdict::Incomplete => (JobStatus::Incomplete, "stopped"),
    };
    let detail = match (&outcome.end, problems.is_empty()) {
        (EndState::Stopped { checkpoint }, _) => {
            format!("stopped by operator at {}", describe(checkpoint))
        }
        (_, true) => format!(
            "{} bytes written, {} bytes verified, no errors",
            outcome.bytes_written, outcome.bytes_verified
        ),
        (_, false) => problems.join("; "),
    };
    store.event(id, &now, kind, &detail)?;
    if verdict == Verdict::Incomplete {
        store.set_status(id, JobStatus::Incomplete, None, &now)?;
    }
    let job = store.get(id)?;
    let events = store.events(id)?;
    let issued: IssuedCertificate = match certify::issue(ctx, &job, spec, outcome, &events, start) {
        Ok(c) => c,
        Err(e) => {
            // Never leave a job looking finished without its document.
            store.event(id, &now, "error", &format!("certificate not issued: {e}"))?;
            store.set_status(id, JobStatus::Fail, None, &now)?;
            return Err(e.into());
        }
    };
    let report = JobReport {
        job: id.to_string(),
        result: verdict,
        certificate: Some(issued.json_path.display().to_string()),
        pdf: Some(issued.pdf_path.display().to_string()),
        device: spec.device.path.clone(),
        bytes_written: outcome.bytes_written,
        bytes_verified: outcome.bytes_verified,
        failed_ranges: outcome.failed_ranges(),
        problems,
        resumable: verdict == Verdict::Incomplete,
        write_seconds: outcome.write_time.as_secs_f64(),
        verify_seconds: outcome.verify_time.as_secs_f64(),
        method: "overwrite".into(),
        category: "clear".into(),
        requested: spec
            .purge
            .as_ref()
            .filter(|p| p.requested != lethe_cmds::policy::Level::Clear)
            .map(|p| format!("{:?}", p.requested).to_lowercase()),
    };
    let result_json = serde_json::to_value(&report).unwrap_or_default();
    if verdict == Verdict::Incomplete {
        // Keep the job resumable; the report is a document, not a result.
        store.event(
            id,
            &now,
            "report",
            &format!("incomplete report {}", issued.json_path.display()),
        )?;
    } else {
        store.finish(
            id,
            status,
            &result_json,
            report.certificate.as_deref(),
            &now,
        )?;
    }
    Ok(report)
}
