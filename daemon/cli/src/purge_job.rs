//! A drive-native purge job: job row, runner, certificate — or, when the
//! policy or the drive sends it there, the verified-overwrite fallback under
//! the same job id, with the reasons carried onto its certificate.

use crate::certify::{self, technique};
use crate::job::{self, JobContext, JobError, JobReport, PurgeContext, WipeSpec};
use crate::state;
use lethe_cmds::io::DriveIo;
use lethe_core::device::BlockDevice;
use lethe_core::ranges::RangeSet;
use lethe_purge::{
    run_purge, Clock, DriveProfile, Hints, Outcome, PurgeEvent, PurgeReport, PurgeRequest,
};
use lethe_store::{JobStatus, JobStore};
use lethe_wipe::Verdict;

/// The drive side of a purge job.
pub struct PurgeSetup<'a> {
    /// Carries the commands.
    pub io: &'a dyn DriveIo,
    /// Polling and waiting.
    pub clock: &'a dyn Clock,
    /// What discovery knows.
    pub hints: Hints,
    /// What the probe found.
    pub profile: DriveProfile,
    /// What the operator asked for.
    pub request: PurgeRequest,
}

/// Run a purge job on `dev` (the exclusively opened block device).
pub fn run(
    ctx: &JobContext<'_>,
    dev: &dyn BlockDevice,
    setup: PurgeSetup<'_>,
    spec: WipeSpec,
    events: &dyn Fn(&PurgeEvent),
) -> Result<JobReport, JobError> {
    let mut spec = spec;
    spec.purge = Some(PurgeContext {
        requested: setup.request.level,
        report: None,
    });
    let (id, key) = job::create(ctx, &spec)?;
    let store = JobStore::open(ctx.state.root())?;
    let p = &setup.profile;
    store.event(
        &id,
        &state::now_rfc3339(),
        "probed",
        &format!(
            "{:?}: model {:?} serial {:?} firmware {:?}, {} bytes",
            p.path, p.model, p.serial, p.firmware, p.capacity_bytes
        ),
    )?;
    let rep = run_purge(
        setup.io,
        dev,
        setup.clock,
        setup.hints,
        setup.profile,
        &setup.request,
        events,
    );
    let rep = match rep {
        Ok(r) => r,
        Err(e) => {
            let now = state::now_rfc3339();
            store.event(&id, &now, "error", &e.to_string())?;
            store.set_status(&id, JobStatus::Fail, None, &now)?;
            return Err(JobError::Purge(e));
        }
    };
    let now = state::now_rfc3339();
    for a in &rep.attempts {
        store.event(
            &id,
            &now,
            "drive_command",
            &format!("{}: {:?}", a.method, a.result),
        )?;
    }
    if rep.outcome == Outcome::Overwrite {
        store.event(
            &id,
            &now,
            "fallback",
            &format!(
                "no drive-native command reached {:?}: verified overwrite (Clear)",
                rep.requested
            ),
        )?;
        spec.purge = Some(PurgeContext {
            requested: rep.requested,
            report: Some(rep),
        });
        let v = serde_json::to_value(&spec)
            .map_err(|e| JobError::BadSpec(id.clone(), e.to_string()))?;
        store.set_spec(&id, &v, &now)?;
        drop(store);
        return job::run_created(ctx, dev, &id, &spec, key);
    }
    finish_native(ctx, &store, &id, &spec, &rep)
}

fn finish_native(
    ctx: &JobContext<'_>,
    store: &JobStore,
    id: &str,
    spec: &WipeSpec,
    rep: &PurgeReport,
) -> Result<JobReport, JobError> {
    let now = state::now_rfc3339();
    let (verdict, status, kind, detail) = match &rep.outcome {
        Outcome::Verified => (
            Verdict::Pass,
            JobStatus::Pass,
            "completed",
            format!(
                "{} reported completion ({}); read-back: {}",
                technique(rep.method),
                rep.completion.as_deref().unwrap_or(""),
                rep.read_back
                    .as_ref()
                    .map(|r| r.summary())
                    .unwrap_or_default()
            ),
        ),
        Outcome::Failed(why) => (Verdict::Fail, JobStatus::Fail, "failed", why.clone()),
        Outcome::Destroy | Outcome::Overwrite => (
            Verdict::Fail,
            JobStatus::Fail,
            "failed",
            "Purge is not reachable on this device by any drive command: destroy it".into(),
        ),
    };
    store.event(id, &now, kind, &detail)?;
    let job = store.get(id)?;
    let events = store.events(id)?;
    let issued = match certify::issue_purge(ctx, &job, spec, rep, &events) {
        Ok(c) => c,
        Err(e) => {
            store.event(id, &now, "error", &format!("certificate not issued: {e}"))?;
            store.set_status(id, JobStatus::Fail, None, &now)?;
            return Err(e.into());
        }
    };
    let read = rep
        .read_back
        .as_ref()
        .map_or(0, |b| b.samples as u64 * b.unit_bytes);
    let mut problems = Vec::new();
    if verdict == Verdict::Fail {
        problems.push(detail);
    }
    let report = JobReport {
        job: id.to_string(),
        result: verdict,
        certificate: Some(issued.json_path.display().to_string()),
        pdf: Some(issued.pdf_path.display().to_string()),
        device: spec.device.path.clone(),
        bytes_written: 0,
        bytes_verified: read,
        failed_ranges: RangeSet::new(),
        problems,
        resumable: false,
        write_seconds: 0.0,
        verify_seconds: 0.0,
        method: technique(rep.method),
        category: format!("{:?}", rep.category).to_lowercase(),
        requested: (rep.requested != rep.category)
            .then(|| format!("{:?}", rep.requested).to_lowercase()),
    };
    let result_json = serde_json::to_value(&report).unwrap_or_default();
    store.finish(
        id,
        status,
        &result_json,
        report.certificate.as_deref(),
        &now,
    )?;
    Ok(report)
}
