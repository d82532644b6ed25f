//! From a finished (or stopped) job to a signed certificate on disk.
//!
//! [`body`] is pure: the same job, outcome and events always give the same
//! certificate body. [`issue`] signs it and writes the JSON and PDF.

use crate::degauss::DegaussSpec;
use crate::identity::DeviceIdentity;
use crate::job::{JobContext, WipeSpec};
use crate::state;
use lethe_cert::{
    Appliance, Category, CertStore, CertificateBody, Destination, Device, Event, FailedRange,
    MediaType, Method, Operator, Outcome, ResultStatus, Timing, Tool, Verification,
    VerificationMethod, VerificationResult, FORMAT,
};
use lethe_controller::DegaussConfirmation;
use lethe_core::plan::{Checkpoint, VerifyMode};
use lethe_store::{JobEvent, JobRecord};
use lethe_wipe::{EndState, Verdict, WipeOutcome};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    #[error(transparent)]
    Cert(#[from] lethe_cert::CertError),
}

/// Where an issued document was written.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub id: String,
    pub json_path: PathBuf,
    pub pdf_path: PathBuf,
}

/// Facts about the issuing appliance and moment.
#[derive(Debug, Clone)]
pub struct IssueFacts {
    pub appliance_id: String,
    pub hostname: String,
    pub issued_at: String,
    /// Bytes made durable by earlier runs of the same job (before a resume).
    pub carried_bytes: u64,
}

fn media_type(s: &str) -> MediaType {
    match s {
        "magnetic" => MediaType::Magnetic,
        "flash" => MediaType::Flash,
        "hybrid" => MediaType::Hybrid,
        _ => MediaType::Unknown,
    }
}

/// Bytes a job had durably written before `start`.
pub fn carried_bytes(start: &Checkpoint, passes: usize, size: u64) -> u64 {
    match start {
        Checkpoint::Writing { pass, offset } => *pass as u64 * size + offset,
        Checkpoint::Verifying | Checkpoint::Done => passes as u64 * size,
    }
}

fn describe_passes(spec: &WipeSpec) -> String {
    let plan = &spec.plan;
    let main = plan.passes.len() - usize::from(plan.blank);
    let pattern = plan
        .passes
        .first()
        .map(|p| p.describe())
        .unwrap_or_default();
    let mut s = format!("{main} × {pattern}");
    if plan.blank {
        s.push_str(", then a zero blanking pass");
    }
    s
}

/// The certificate body of a job. Pure.
pub fn body(
    facts: &IssueFacts,
    id: &str,
    job: &JobRecord,
    spec: &WipeSpec,
    outcome: &WipeOutcome,
    events: &[JobEvent],
) -> CertificateBody {
    let d = &spec.device;
    let verdict = outcome.verdict();
    let verified = outcome.bytes_verified > 0;
    let coverage_ppm = if d.size_bytes == 0 {
        0
    } else {
        (u128::from(outcome.verified.total()) * 1_000_000 / u128::from(d.size_bytes)) as u32
    };
    let mut messages = outcome.problems();
    if let EndState::Aborted { reason, .. } = &outcome.end {
        if !messages.iter().any(|m| m.contains(reason.as_str())) {
            messages.push(reason.clone());
        }
    }
    if outcome.retries > 0 {
        messages.push(format!("{} I/O retries were needed", outcome.retries));
    }
    CertificateBody {
        format: FORMAT.to_string(),
        id: id.to_string(),
        issued_at: facts.issued_at.clone(),
        appliance: appliance(facts),
        tool: Tool {
            name: "lethe".into(),
            version: spec.tool_version.clone(),
        },
        device: device(d),
        method: Method {
            category: Category::Clear,
            technique: "overwrite".into(),
            pattern: describe_passes(spec),
            passes: spec.plan.passes.len() as u32,
            final_blank: spec.plan.blank,
            standard: "NIST SP 800-88 Rev.1 Clear; IEEE 2883-2022 Clear (overwrite)".into(),
            reason: format!(
                "Operator requested a verified overwrite ({}; verification {}). An overwrite \
                 reaches every user-addressable sector (Clear); it cannot reach remapped sectors \
                 or flash over-provisioning, which only drive-native Purge commands do.",
                describe_passes(spec),
                spec.plan.verify
            ),
        },
        verification: Verification {
            method: match spec.plan.verify {
                VerifyMode::Full => VerificationMethod::Full,
                VerifyMode::Sample { .. } => VerificationMethod::Sample,
                VerifyMode::Off => VerificationMethod::None,
            },
            coverage_ppm,
            bytes_verified: outcome.bytes_verified,
            sample_seed: matches!(spec.plan.verify, VerifyMode::Sample { .. })
                .then(|| format!("{:016x}", spec.sample_seed)),
            result: if !verified {
                VerificationResult::NotPerformed
            } else if outcome.verify_failures.is_empty() {
                VerificationResult::Pass
            } else {
                VerificationResult::Fail
            },
        },
        operator: Operator {
            id: spec.parties.operator_id.clone(),
            name: spec.parties.operator_name.clone(),
        },
        timing: timing(job, facts),
        customer: spec.parties.customer.clone(),
        asset_tag: spec.parties.asset_tag.clone(),
        media_source: None,
        destination: spec.parties.destination.as_deref().and_then(destination),
        result: Outcome {
            status: match verdict {
                Verdict::Pass => ResultStatus::Pass,
                Verdict::Fail => ResultStatus::Fail,
                Verdict::Incomplete => ResultStatus::Incomplete,
            },
            bytes_written: facts.carried_bytes + outcome.bytes_written,
            failed_ranges: outcome
                .failed_ranges()
                .iter()
                .map(|r| FailedRange {
                    offset: r.offset,
                    length: r.length,
                })
                .collect(),
            messages,
        },
        events: events_of(events),
    }
}

/// The device section, from the identity a job recorded.
fn device(d: &DeviceIdentity) -> Device {
    Device {
        manufacturer: d.manufacturer.clone(),
        model: d.model.clone().unwrap_or_default(),
        serial: d.serial.clone().unwrap_or_default(),
        wwn: d.wwn.clone().unwrap_or_default(),
        firmware: d.firmware.clone().unwrap_or_default(),
        capacity_bytes: d.size_bytes,
        logical_sector_size: d.logical_sector,
        physical_sector_size: d.physical_sector,
        media_type: media_type(&d.media_type),
        transport: d.transport.clone(),
        path: d.path.clone(),
        stable_id: d.stable_id.clone().unwrap_or_default(),
        hidden_areas: Some(hidden_areas_note(&d.transport)),
    }
}

/// Job start to issue time.
fn timing(job: &JobRecord, facts: &IssueFacts) -> Timing {
    let started = lethe_core::timefmt::parse_rfc3339_utc(&job.created_at);
    let ended = lethe_core::timefmt::parse_rfc3339_utc(&facts.issued_at);
    let duration_seconds = match (started, ended) {
        (Some(a), Some(b)) if b >= a => (b - a) as u64,
        _ => 0,
    };
    Timing {
        started_at: job.created_at.clone(),
        ended_at: facts.issued_at.clone(),
        duration_seconds,
    }
}

fn events_of(events: &[JobEvent]) -> Vec<Event> {
    events
        .iter()
        .map(|e| Event {
            at: e.at.clone(),
            kind: e.kind.clone(),
            detail: e.detail.clone(),
        })
        .collect()
}

fn appliance(facts: &IssueFacts) -> Appliance {
    Appliance {
        id: facts.appliance_id.clone(),
        hostname: facts.hostname.clone(),
        location: None,
    }
}

/// The Destroy certificate (or failure report) of a degauss job. Pure.
pub fn degauss_body(
    facts: &IssueFacts,
    id: &str,
    job: &JobRecord,
    spec: &DegaussSpec,
    outcome: &Result<DegaussConfirmation, String>,
    events: &[JobEvent],
) -> CertificateBody {
    let (status, vresult, messages) = match outcome {
        Ok(c) => (
            ResultStatus::Pass,
            VerificationResult::Pass,
            vec![format!(
                "degausser cycle {} completed: relay energized {} ms of a commanded {} ms, interlock closed \
                 throughout (firmware refuses to fire otherwise), confirmed by controller firmware {}.{}.{} \
                 at uptime {} ms",
                c.cycle,
                c.relay_on_ms,
                c.commanded_ms,
                c.firmware.version.0,
                c.firmware.version.1,
                c.firmware.version.2,
                c.fw_uptime_ms
            )],
        ),
        Err(e) => (
            ResultStatus::Fail,
            VerificationResult::Fail,
            vec![format!("no completed degauss cycle: {e}")],
        ),
    };
    CertificateBody {
        format: FORMAT.to_string(),
        id: id.to_string(),
        issued_at: facts.issued_at.clone(),
        appliance: appliance(facts),
        tool: Tool {
            name: "lethe".into(),
            version: spec.tool_version.clone(),
        },
        device: device(&spec.device),
        method: Method {
            category: Category::Destroy,
            technique: "degauss".into(),
            pattern: "one degausser cycle".into(),
            passes: 1,
            final_blank: false,
            standard: "NIST SP 800-88 Rev.1 (degauss, magnetic media only); IEEE 2883-2022".into(),
            reason: "Magnetic medium routed to the degausser. Degaussing erases the servo tracks: the \
                     drive is destroyed, not reusable. It is only effective on magnetic media, which \
                     lethe checks before arming."
                .into(),
        },
        verification: Verification {
            method: VerificationMethod::ControllerConfirmed,
            coverage_ppm: 0,
            bytes_verified: 0,
            sample_seed: None,
            result: vresult,
        },
        operator: Operator {
            id: spec.parties.operator_id.clone(),
            name: spec.parties.operator_name.clone(),
        },
        timing: timing(job, facts),
        customer: spec.parties.customer.clone(),
        asset_tag: spec.parties.asset_tag.clone(),
        media_source: None,
        destination: Some(Destination::Destroy),
        result: Outcome {
            status,
            bytes_written: 0,
            failed_ranges: Vec::new(),
            messages,
        },
        events: events_of(events),
    }
}

/// Sign and store the certificate of a degauss job.
pub fn issue_degauss(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    spec: &DegaussSpec,
    outcome: &Result<DegaussConfirmation, String>,
    events: &[JobEvent],
) -> Result<IssuedCertificate, CertifyError> {
    let now = state::unix_now();
    let facts = IssueFacts {
        appliance_id: ctx.key.key_id().to_string(),
        hostname: state::hostname(),
        issued_at: lethe_core::timefmt::rfc3339_utc(now),
        carried_bytes: 0,
    };
    let cert = lethe_cert::sign(
        &degauss_body(&facts, &job.id, job, spec, outcome, events),
        ctx.key,
    )?;
    let (json_path, pdf_path) = CertStore::new(ctx.state.certificates()).save(&cert)?;
    Ok(IssuedCertificate {
        id: job.id.clone(),
        json_path,
        pdf_path,
    })
}

/// What the certificate can honestly say about HPA/DCO hidden areas: this
/// version reads neither (that needs ATA pass-through), so it says so.
fn hidden_areas_note(transport: &str) -> String {
    match transport {
        "loop" | "virtio" | "zram" | "nbd" => format!("not applicable ({transport} device has no HPA/DCO)"),
        _ => "not checked: this version does not query HPA/DCO; only the host-visible capacity was overwritten".into(),
    }
}

fn destination(s: &str) -> Option<Destination> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// Sign the job's certificate and write `<id>.json` and `<id>.pdf`.
pub fn issue(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    spec: &WipeSpec,
    outcome: &WipeOutcome,
    events: &[JobEvent],
    start: &Checkpoint,
) -> Result<IssuedCertificate, CertifyError> {
    let now = state::unix_now();
    let id = match outcome.verdict() {
        Verdict::Incomplete => format!(
            "{}-incomplete-{}",
            job.id,
            lethe_core::timefmt::compact_utc(now)
        ),
        _ => job.id.clone(),
    };
    let facts = IssueFacts {
        appliance_id: ctx.key.key_id().to_string(),
        hostname: state::hostname(),
        issued_at: lethe_core::timefmt::rfc3339_utc(now),
        carried_bytes: carried_bytes(start, spec.plan.passes.len(), spec.device.size_bytes),
    };
    let cert = lethe_cert::sign(&body(&facts, &id, job, spec, outcome, events), ctx.key)?;
    let store = CertStore::new(ctx.state.certificates());
    let (json_path, pdf_path) = store.save(&cert)?;
    Ok(IssuedCertificate {
        id,
        json_path,
        pdf_path,
    })
}
