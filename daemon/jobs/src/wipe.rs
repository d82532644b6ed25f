//! The wipe job: preflight, assess, open exclusively, check the
//! confirmation, record the job, then either a drive-native purge
//! ([`crate::purge`]) or the verified overwrite, and the document.
//! Also resume: the same chain, continuing from the stored checkpoint.

use crate::certificate::{self, Common, Work};
use crate::event::{Event, Level, Outcome, Report};
use crate::host::Target;
use crate::record::{self, JobLog};
use crate::refusal::Refusal;
use crate::request::{JobKind, ResumeRequest, WipeRequest};
use crate::runner::{Ctx, Inner};
use crate::spec::WipeSpec;
use crate::state::{self, Reservation};
use lethe_cert::ResultStatus;
use lethe_controller::LedPattern;
use lethe_core::device::BlockDevice;
use lethe_core::plan::{Checkpoint, WipePlan};
use lethe_core::ranges::RangeSet;
use lethe_store::{JobStatus, JobStore};
use lethe_wipe::{EndState, Observer, Progress, StreamKey, WipeConfig, WipeOutcome};
use std::sync::Mutex;
use std::time::Duration;

/// Buffers are the only memory that grows with the options: each worker owns
/// a write buffer and a read buffer of one chunk. Nothing scales with the
/// device size, so this cap keeps peak memory far below 128 MiB.
const MAX_BUFFER_BYTES: usize = 64 << 20;

fn refused(device: Option<String>, why: Refusal) -> Report {
    Report::refused(None, JobKind::Wipe, device, why)
}

/// A new wipe job.
pub(crate) fn run(ctx: &Ctx<'_>, req: WipeRequest) -> Report {
    let device = req.device.display().to_string();
    let plan = match validate(&req) {
        Ok(p) => p,
        Err(why) => return refused(Some(device), why),
    };
    if ctx.cfg().require_operator && !req.parties.has_operator() {
        return refused(Some(device), Refusal::NoOperator);
    }
    let reservation = match ctx.cfg().state.preflight(ctx.id) {
        Ok(r) => r,
        Err(why) => return refused(Some(device), why),
    };
    let target = match ctx.acquire(&req.device) {
        Ok(t) => t,
        Err(why) => return refused(Some(device), why),
    };
    if let Err(why) = req.confirmation.check(target.identity()) {
        return refused(Some(device), why);
    }
    if ctx.cancelled() {
        return refused(Some(device), Refusal::Cancelled);
    }
    let seed = match state::random::<8>() {
        Ok(b) => u64::from_le_bytes(b),
        Err(e) => return refused(Some(device), Refusal::Invalid(e)),
    };
    // Health first: read-only, before anything is written, through the
    // device that was checked and opened.
    let (health, health_note) = crate::health::read(target.as_ref());
    let spec = WipeSpec {
        device: target.identity().clone(),
        plan,
        sample_seed: seed,
        chunk_size: req.overwrite.chunk_size,
        depth: req.overwrite.depth,
        parties: req.parties.clone(),
        tool_version: ctx.cfg().tool_version.clone(),
        purge: None,
        health,
    };
    let opening = Opening {
        confirmation: req.confirmation.describe(),
        parties: req.parties.clone(),
        health: health_note,
    };
    if req.native() {
        return crate::purge::run(ctx, &req, target.as_ref(), spec, reservation, &opening);
    }
    let key = match StreamKey::generate() {
        Ok(k) => k,
        Err(e) => return refused(Some(device), Refusal::Invalid(e.to_string())),
    };
    let log = match JobLog::create(ctx, JobKind::Wipe, &spec.device.path, &spec, key.0.to_vec()) {
        Ok(l) => l,
        Err(why) => return refused(Some(device), why),
    };
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
    let _ = log.event("started", &detail);
    opening.record(&log);
    overwrite(
        ctx,
        &log,
        target.as_ref(),
        &spec,
        Run {
            key,
            start: Checkpoint::START,
            prior: RangeSet::new(),
            checkpoint_interval: req.checkpoint_interval,
            bay: req.bay,
        },
        reservation,
    )
}

fn validate(req: &WipeRequest) -> Result<WipePlan, Refusal> {
    let o = &req.overwrite;
    if o.depth == 0 || o.depth > 64 {
        return Err(Refusal::Invalid(format!(
            "{} I/Os in flight: between 1 and 64 please",
            o.depth
        )));
    }
    if o.chunk_size < 4096 || o.chunk_size % 4096 != 0 || o.chunk_size > 64 << 20 {
        return Err(Refusal::Invalid(format!(
            "I/O size {} bytes: a multiple of 4096 up to 64 MiB please",
            o.chunk_size
        )));
    }
    let buffers = 2 * o.depth * o.chunk_size;
    if buffers > MAX_BUFFER_BYTES {
        return Err(Refusal::Invalid(format!(
            "{} I/Os in flight of {} MiB need {} MiB of buffers; the limit is {} MiB",
            o.depth,
            o.chunk_size >> 20,
            buffers >> 20,
            MAX_BUFFER_BYTES >> 20
        )));
    }
    WipePlan::new(o.pattern, o.passes, o.blank, o.verify)
        .map_err(|e| Refusal::Invalid(e.to_string()))
}

/// Load a resumable wipe job: its spec and record, after checking it may be
/// resumed. Jobs whose owner is gone are marked interrupted first.
pub(crate) fn load_resumable(
    inner: &Inner,
    id: &str,
) -> Result<(WipeSpec, lethe_store::JobRecord), Refusal> {
    let cfg = &inner.cfg;
    let store = JobStore::open(cfg.state.root())?;
    store.reap(
        cfg.clock.unix_now(),
        state::process_alive,
        &cfg.clock.rfc3339(),
    )?;
    let job = store.get(id).map_err(|e| Refusal::Job(e.to_string()))?;
    if job.status == JobStatus::Running {
        return Err(Refusal::Job(format!(
            "job {id} is still running (process {})",
            job.pid.unwrap_or(0)
        )));
    }
    if !job.status.resumable() {
        return Err(Refusal::Job(format!(
            "job {id} cannot be resumed: it is {}",
            job.status
        )));
    }
    if job.kind != JobKind::Wipe.as_str() {
        return Err(Refusal::Job(format!(
            "job {id} is a {} job; only wipes resume",
            job.kind
        )));
    }
    let spec: WipeSpec = serde_json::from_value(job.spec.clone()).map_err(|e| {
        Refusal::Job(format!(
            "job {id}: its stored specification is unreadable: {e}"
        ))
    })?;
    // A drive-native command cannot be resumed half-way; only its overwrite
    // fallback (recorded with its report) can.
    if spec.purge.as_ref().is_some_and(|p| p.report.is_none()) {
        return Err(Refusal::Job(format!(
            "job {id} was a drive-native purge interrupted during its command: start a new job"
        )));
    }
    Ok((spec, job))
}

/// Continue a stopped or interrupted wipe on its device.
pub(crate) fn resume(ctx: &Ctx<'_>, req: ResumeRequest) -> Report {
    let refuse = |why| Report::refused(Some(req.job.clone()), JobKind::Wipe, None, why);
    if req.job != ctx.id {
        // The runner gave this worker the id of the job it resumes.
        return refuse(Refusal::Invalid(
            "resume request and job id disagree".into(),
        ));
    }
    let (spec, job) = match load_resumable(ctx.inner, &req.job) {
        Ok(x) => x,
        Err(why) => return refuse(why),
    };
    let key: [u8; 16] = match job.secret.as_slice().try_into() {
        Ok(k) => k,
        Err(_) => {
            return refuse(Refusal::Job(format!(
                "job {}: the stored stream key has the wrong length",
                req.job
            )))
        }
    };
    let reservation = match ctx.cfg().state.preflight(ctx.id) {
        Ok(r) => r,
        Err(why) => return refuse(why),
    };
    let path = req
        .device
        .clone()
        .unwrap_or_else(|| spec.device.path.clone().into());
    let target = match ctx.acquire(&path) {
        Ok(t) => t,
        Err(why) => return refuse(why),
    };
    if let Some(why) = spec.device.mismatch(target.identity()) {
        return refuse(Refusal::Job(format!(
            "refusing to resume job {} on {}: {why}",
            req.job,
            path.display()
        )));
    }
    if let Err(why) = req.confirmation.check(target.identity()) {
        return refuse(why);
    }
    let log = match JobLog::take_over(ctx, &spec.device.path) {
        Ok(l) => l,
        Err(why) => return refuse(why),
    };
    let _ = log.event(
        "resumed",
        &format!("resumed from checkpoint {}", describe(&job.checkpoint)),
    );
    let _ = log.event("confirmed", &req.confirmation.describe());
    overwrite(
        ctx,
        &log,
        target.as_ref(),
        &spec,
        Run {
            key: StreamKey(key),
            start: job.checkpoint,
            prior: job.write_failures,
            checkpoint_interval: req.checkpoint_interval,
            bay: req.bay,
        },
        reservation,
    )
}

/// What a new job's history says before its first write: how it was
/// confirmed, who runs it (and where that name came from), and the drive's
/// health or why there is none.
pub(crate) struct Opening {
    pub(crate) confirmation: String,
    pub(crate) parties: crate::request::Parties,
    pub(crate) health: String,
}

impl Opening {
    pub(crate) fn record(&self, log: &JobLog<'_>) {
        let _ = log.event("confirmed", &self.confirmation);
        let p = &self.parties;
        let who = match (p.has_operator(), p.operator_name.trim().is_empty()) {
            (false, _) => "none named (this site accepts jobs without an operator)".to_string(),
            (true, true) => p.operator_id.clone(),
            (true, false) => format!("{} ({})", p.operator_id, p.operator_name),
        };
        let from = p
            .operator_source
            .as_deref()
            .map(|s| format!(", from {s}"))
            .unwrap_or_default();
        let _ = log.event("operator", &format!("{who}{from}"));
        let _ = log.event("health", &self.health);
    }
}

/// Where an overwrite starts and what it carries.
pub(crate) struct Run {
    pub(crate) key: StreamKey,
    pub(crate) start: Checkpoint,
    pub(crate) prior: RangeSet,
    pub(crate) checkpoint_interval: Duration,
    pub(crate) bay: Option<u8>,
}

fn describe(cp: &Checkpoint) -> String {
    match cp {
        Checkpoint::Writing { pass, offset } => format!("pass {} at byte {offset}", pass + 1),
        Checkpoint::Verifying => "verification (restarted from the beginning)".into(),
        Checkpoint::Done => "done".into(),
    }
}

/// Connects the engine to the store, the event stream and the cancel token.
struct JobObserver<'a> {
    // rusqlite connections are Send but not Sync; the engine shares the
    // observer across threads, so the store sits behind a mutex.
    store: Mutex<JobStore>,
    ctx: &'a Ctx<'a>,
}

impl Observer for JobObserver<'_> {
    fn progress(&self, p: &Progress) {
        self.ctx.emit(Event::Overwrite(p.clone()));
    }

    fn checkpoint(&self, cp: Checkpoint, failures: &RangeSet) -> Result<(), String> {
        let store = self
            .store
            .lock()
            .map_err(|_| "job store lock poisoned".to_string())?;
        store
            .checkpoint(self.ctx.id, &cp, failures, &self.ctx.now())
            .map_err(|e| e.to_string())
    }

    fn stop_requested(&self) -> bool {
        self.ctx.cancelled()
    }
}

/// Run the overwrite of a recorded job and finish it.
pub(crate) fn overwrite(
    ctx: &Ctx<'_>,
    log: &JobLog<'_>,
    target: &dyn Target,
    spec: &WipeSpec,
    run: Run,
    reservation: Reservation,
) -> Report {
    let mut cfg = WipeConfig::new(spec.plan.clone(), run.key, spec.sample_seed);
    cfg.chunk_size = spec.chunk_size;
    cfg.depth = spec.depth;
    cfg.checkpoint_interval = run.checkpoint_interval;
    if let Some(bay) = run.bay {
        ctx.led(bay, LedPattern::Busy);
    }
    ctx.before_write();
    let observer = match JobStore::open(ctx.cfg().state.root()) {
        Ok(s) => JobObserver {
            store: Mutex::new(s),
            ctx,
        },
        Err(e) => {
            return interrupt(
                ctx,
                log,
                spec,
                format!("job store unavailable before the first write: {e}"),
            )
        }
    };
    let dev: &dyn BlockDevice = target.device();
    let outcome = lethe_wipe::run(dev, &cfg, run.start, run.prior, &observer);
    finish(ctx, log, spec, &outcome, &run.start, reservation)
}

fn interrupt(ctx: &Ctx<'_>, log: &JobLog<'_>, spec: &WipeSpec, reason: String) -> Report {
    let _ = log.event("error", &reason);
    let _ = log.set_status(JobStatus::Interrupted);
    let mut r = Report::new(
        Some(ctx.id.to_string()),
        JobKind::Wipe,
        Outcome::Interrupted { reason },
    );
    r.device = Some(spec.device.path.clone());
    r
}

fn finish(
    ctx: &Ctx<'_>,
    log: &JobLog<'_>,
    spec: &WipeSpec,
    outcome: &WipeOutcome,
    start: &Checkpoint,
    mut reservation: Reservation,
) -> Report {
    let mut problems = outcome.problems();
    let hidden_gap = spec
        .purge
        .as_ref()
        .and_then(|p| certificate::hidden_not_overwritten(p, &spec.device));
    if let Some(g) = &hidden_gap {
        problems.push(g.clone());
    }
    let carried = certificate::carried_bytes(start, spec.plan.passes.len(), spec.device.size_bytes);
    // The same rule the certificate's result follows: the two never disagree.
    let result = certificate::overwrite_status(spec, outcome, carried);
    let requested = spec
        .purge
        .as_ref()
        .map(|p| Level::from(p.requested))
        .filter(|l| *l != Level::Clear);
    let (status, kind, job_outcome) = match result {
        ResultStatus::Pass => (JobStatus::Pass, "completed", Outcome::Passed),
        ResultStatus::ClearOnly => (
            JobStatus::ClearOnly,
            "completed",
            Outcome::PassedAtLowerLevel {
                requested: requested.unwrap_or(Level::Purge),
                reached: Level::Clear,
            },
        ),
        ResultStatus::Unverified => (JobStatus::Unverified, "unverified", Outcome::Unverified),
        ResultStatus::Incomplete => (JobStatus::Incomplete, "stopped", Outcome::Stopped),
        ResultStatus::NotStarted => (
            JobStatus::NotStarted,
            "not_started",
            Outcome::NotStarted {
                reason: "stopped before anything was written".into(),
            },
        ),
        ResultStatus::Fail => (JobStatus::Fail, "failed", Outcome::Failed),
    };
    let detail = match (&outcome.end, problems.is_empty()) {
        (EndState::Stopped { .. }, _) if result == ResultStatus::NotStarted => {
            "stopped by the operator before anything was written; the device is unchanged".into()
        }
        (EndState::Stopped { checkpoint }, _) => {
            format!("stopped by operator at {}", describe(checkpoint))
        }
        (_, true) => format!(
            "{} bytes written, {} bytes verified, no errors",
            carried + outcome.bytes_written,
            outcome.bytes_verified
        ),
        (_, false) => problems.join("; "),
    };
    let _ = log.event(kind, &detail);
    if result == ResultStatus::Incomplete {
        let _ = log.set_status(JobStatus::Incomplete);
    }
    let mut report = Report::new(Some(ctx.id.to_string()), JobKind::Wipe, job_outcome);
    report.device = Some(spec.device.path.clone());
    report.method = Some("overwrite".into());
    report.category = Some(Level::Clear);
    report.requested = requested;
    // Bytes of the whole job, as its certificate states them; the part
    // earlier runs wrote is said separately.
    report.bytes_written = carried + outcome.bytes_written;
    report.bytes_written_earlier = carried;
    report.bytes_verified = outcome.bytes_verified;
    report.failed_ranges = outcome.failed_ranges();
    report.problems = if result == ResultStatus::NotStarted {
        vec![certificate::NOT_STARTED.into()]
    } else {
        problems
    };
    report.write_seconds = outcome.write_time.as_secs_f64();
    report.verify_seconds = outcome.verify_time.as_secs_f64();
    report.health = spec.health.clone();

    let (job, events) = match log.record() {
        Ok(x) => x,
        Err(e) => return not_issued(log, report, result, e.to_string()),
    };
    let doc_id = match result {
        ResultStatus::Incomplete => record::next_incomplete_id(ctx),
        _ => ctx.id.to_string(),
    };
    let common = Common {
        id: &doc_id,
        started_at: &job.created_at,
        device: &spec.device,
        parties: &spec.parties,
        tool_version: &spec.tool_version,
        events: &events,
        health: spec.health.as_ref(),
    };
    let work = Work::Overwrite {
        spec,
        outcome,
        carried_bytes: carried,
    };
    let issued = match record::issue(ctx, &mut reservation, &doc_id, common, work) {
        Ok(i) => i,
        Err(e) => return not_issued(log, report, result, e),
    };
    report.document = Some(issued.clone());
    let result_json = result_json(&report);
    if result == ResultStatus::Incomplete {
        // Keep the job resumable; the report is a document, not a result.
        let _ = log.event("report", &format!("incomplete report {}", issued.json));
    } else if let Err(e) = log.finish(status, &result_json, Some(&issued.json)) {
        report.problems.push(format!(
            "the document was issued but the job record could not be closed: {e}"
        ));
    }
    report
}

/// The job ran, but its document could not be issued (state directory full
/// or unwritable). Never leave it looking finished without its document: a
/// verified job becomes resumable (a resume verifies again, then issues the
/// certificate); a failed one stays failed and says the report is missing.
fn not_issued(log: &JobLog<'_>, mut report: Report, result: ResultStatus, why: String) -> Report {
    let msg = format!("document not issued: {why}");
    let _ = log.event("error", &msg);
    report.problems.push(msg.clone());
    match result {
        ResultStatus::Fail => {
            let _ = log.finish(JobStatus::Fail, &result_json(&report), None);
        }
        ResultStatus::NotStarted => {
            let _ = log.finish(JobStatus::NotStarted, &result_json(&report), None);
        }
        ResultStatus::Incomplete => {
            let _ = log.set_status(JobStatus::Incomplete);
            report.outcome = interrupted(&msg);
        }
        ResultStatus::Pass | ResultStatus::ClearOnly | ResultStatus::Unverified => {
            let _ = log.set_status(JobStatus::Interrupted);
            report.outcome = interrupted(&msg);
        }
    }
    report
}

fn interrupted(msg: &str) -> Outcome {
    Outcome::Interrupted {
        reason: format!(
            "{msg}; the device was written; free space in the state directory and resume \
             the job to verify it again and issue its document"
        ),
    }
}

/// What the job store keeps as the job's result.
pub(crate) fn result_json(r: &Report) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or_default()
}
