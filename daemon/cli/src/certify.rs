//! From a finished (or stopped) job to a signed certificate on disk.
//!
//! [`body`] is pure: the same job, outcome and events always give the same
//! certificate body. [`issue`] signs it and writes the JSON and PDF.

use crate::degauss::DegaussSpec;
use crate::identity::DeviceIdentity;
use crate::job::{JobContext, WipeSpec};
use crate::state;
use lethe_cert::{
    Appliance, Category, CertStore, CertificateBody, Destination, Device, DriveCommand, Event,
    FailedRange, MediaType, Method, Operator, Outcome, ResultStatus, Timing, Tool, Verification,
    VerificationMethod, VerificationResult, FORMAT,
};
use lethe_cmds::policy::{Level as PolicyLevel, Method as PolicyMethod};
use lethe_controller::DegaussConfirmation;
use lethe_core::plan::{Checkpoint, VerifyMode};
use lethe_purge::{Expect, Outcome as PurgeOutcome, PurgeReport};
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
    // A hidden area (HPA / Accessible Max Address) the overwrite could not reach.
    if let Some(h) = spec
        .purge
        .as_ref()
        .and_then(|p| p.report.as_ref())
        .and_then(|r| r.hidden.as_ref())
        .filter(|h| h.found.hpa() && !h.covered)
    {
        messages.push(format!(
            "the {} sectors hidden by the HPA were NOT overwritten: the overwrite reached only \
             the {} sectors the block device shows",
            h.found.hidden_sectors(),
            h.found.visible_sectors
        ));
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
        device: device_with_hidden(d, spec.purge.as_ref().and_then(|p| p.report.as_ref())),
        method: Method {
            category: Category::Clear,
            technique: "overwrite".into(),
            pattern: describe_passes(spec),
            passes: spec.plan.passes.len() as u32,
            final_blank: spec.plan.blank,
            standard: "NIST SP 800-88 Rev.1 Clear; IEEE 2883-2022 Clear (overwrite)".into(),
            reason: overwrite_reason(spec),
            requested_level: spec
                .purge
                .as_ref()
                .map(|p| category(p.requested))
                .filter(|c| *c != Category::Clear),
            drive_command: spec
                .purge
                .as_ref()
                .and_then(|p| p.report.as_ref())
                .filter(|r| !r.attempts.is_empty())
                .map(|r| drive_command(r, "")),
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
            detail: None,
            attestation: None,
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

fn overwrite_reason(spec: &WipeSpec) -> String {
    let base = format!(
        "Operator requested a verified overwrite ({}; verification {}). An overwrite \
         reaches every user-addressable sector (Clear); it cannot reach remapped sectors \
         or flash over-provisioning, which only drive-native Purge commands do.",
        describe_passes(spec),
        spec.plan.verify
    );
    match &spec.purge {
        Some(p) if p.requested != PolicyLevel::Clear => {
            let why = p
                .report
                .as_ref()
                .map(|r| r.reasons.join("; "))
                .unwrap_or_default();
            format!(
                "{:?} was requested and could not be reached by a drive-native command, so the job \
                 fell back to a verified overwrite, which achieves Clear only. Policy: {why}",
                p.requested
            )
        }
        _ => base,
    }
}

fn category(l: PolicyLevel) -> Category {
    match l {
        PolicyLevel::Clear => Category::Clear,
        PolicyLevel::Purge => Category::Purge,
        PolicyLevel::Destroy => Category::Destroy,
    }
}

/// Snake-case name of a method, for `method.technique` and JSON output.
pub fn technique(m: PolicyMethod) -> String {
    use lethe_cmds::nvme::{SanitizeAction as A, Ses};
    use lethe_cmds::policy::{AtaSanitizeKind as K, ScsiSanitizeKind as S};
    match m {
        PolicyMethod::Overwrite => "overwrite".into(),
        PolicyMethod::AtaSanitize(K::CryptoScramble) => "ata_sanitize_crypto_scramble".into(),
        PolicyMethod::AtaSanitize(K::BlockErase) => "ata_sanitize_block_erase".into(),
        PolicyMethod::AtaSanitize(K::Overwrite) => "ata_sanitize_overwrite".into(),
        PolicyMethod::AtaSecurityErase { enhanced: true } => "ata_secure_erase_enhanced".into(),
        PolicyMethod::AtaSecurityErase { enhanced: false } => "ata_secure_erase".into(),
        PolicyMethod::NvmeSanitize(A::CryptoErase) => "nvme_sanitize_crypto_erase".into(),
        PolicyMethod::NvmeSanitize(A::BlockErase) => "nvme_sanitize_block_erase".into(),
        PolicyMethod::NvmeSanitize(A::Overwrite) => "nvme_sanitize_overwrite".into(),
        PolicyMethod::NvmeSanitize(a) => format!("nvme_sanitize_{a:?}").to_lowercase(),
        PolicyMethod::NvmeFormat(Ses::UserData) => "nvme_format_ses1".into(),
        PolicyMethod::NvmeFormat(Ses::Crypto) => "nvme_format_ses2".into(),
        PolicyMethod::NvmeFormat(Ses::None) => "nvme_format_ses0".into(),
        PolicyMethod::ScsiSanitize(S::CryptoErase) => "scsi_sanitize_crypto_erase".into(),
        PolicyMethod::ScsiSanitize(S::BlockErase) => "scsi_sanitize_block_erase".into(),
        PolicyMethod::ScsiSanitize(S::Overwrite) => "scsi_sanitize_overwrite".into(),
        PolicyMethod::Destroy => "destroy".into(),
    }
}

fn drive_command(r: &PurgeReport, completion: &str) -> DriveCommand {
    DriveCommand {
        name: format!("{:?}", r.method),
        completion_status: completion.to_string(),
        commands: r
            .command_log
            .iter()
            .cloned()
            .chain(
                r.attempts
                    .iter()
                    .map(|a| format!("{}: {:?}", a.method, a.result)),
            )
            .collect(),
        erased_namespaces: r.erased_namespaces.clone(),
    }
}

/// The certificate (or failure report) of a drive-native purge job. Pure.
pub fn purge_body(
    facts: &IssueFacts,
    id: &str,
    job: &JobRecord,
    spec: &WipeSpec,
    r: &PurgeReport,
    events: &[JobEvent],
) -> CertificateBody {
    let d = &spec.device;
    let verified = matches!(r.outcome, PurgeOutcome::Verified);
    let rb = r.read_back.as_ref();
    let read = rb.map_or(0, |b| b.samples as u64 * b.unit_bytes);
    let mut messages: Vec<String> = Vec::new();
    if let PurgeOutcome::Failed(why) = &r.outcome {
        messages.push(format!("FAILED: {why}"));
    }
    if let PurgeOutcome::Destroy = r.outcome {
        messages
            .push("Purge cannot be reached on this device by any drive command: destroy it".into());
    }
    if r.password_left_set {
        messages.push(
            "the drive may still hold Lethe's temporary ATA user password: it vanished before \
             the password could be removed; reconnect it and run the job again to unlock it"
                .into(),
        );
    }
    if r.waited_ms > 0 {
        messages.push(format!(
            "waited {} s for the operator to unfreeze the drive",
            r.waited_ms / 1000
        ));
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
        device: device_with_hidden(d, Some(r)),
        method: Method {
            category: category(r.category),
            technique: technique(r.method),
            pattern: match rb.map(|b| b.expect) {
                Some(Expect::Byte(b)) => format!("0x{b:02x} (drive firmware)"),
                _ => "set by the drive firmware".into(),
            },
            passes: u32::from(matches!(rb.map(|b| b.expect), Some(Expect::Byte(_)))),
            final_blank: false,
            standard: format!(
                "NIST SP 800-88 Rev.1 {0:?}; IEEE 2883-2022 {0:?} ({1})",
                r.category,
                technique(r.method)
            ),
            reason: r.reasons.join("; "),
            requested_level: Some(category(r.requested)),
            drive_command: Some(drive_command(r, r.completion.as_deref().unwrap_or(""))),
        },
        verification: Verification {
            method: if rb.is_some() {
                VerificationMethod::Sample
            } else {
                VerificationMethod::None
            },
            coverage_ppm: if d.size_bytes == 0 {
                0
            } else {
                (u128::from(read) * 1_000_000 / u128::from(d.size_bytes)) as u32
            },
            bytes_verified: read,
            sample_seed: rb.map(|b| format!("{:016x}", b.seed)),
            result: match rb {
                None => VerificationResult::NotPerformed,
                Some(b) if b.passed() => VerificationResult::Pass,
                Some(_) => VerificationResult::Fail,
            },
            attestation: None,
            detail: rb.map(|b| {
                format!(
                    "read-back of canaries: before the command, per-job bytes were written to {} \
                     blocks of {} bytes (first, last and a seeded stratified sample) and read back; \
                     after the drive reported completion each block had to read back {}: {}",
                    b.samples,
                    b.unit_bytes,
                    match b.expect {
                        Expect::Changed => "changed".to_string(),
                        Expect::Byte(x) => format!("as 0x{x:02x}"),
                    },
                    b.summary()
                )
            }),
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
            status: if verified {
                ResultStatus::Pass
            } else {
                ResultStatus::Fail
            },
            bytes_written: 0,
            failed_ranges: Vec::new(),
            messages,
        },
        events: events_of(events),
    }
}

/// Sign and store the certificate of a drive-native purge job.
pub fn issue_purge(
    ctx: &JobContext<'_>,
    job: &JobRecord,
    spec: &WipeSpec,
    r: &PurgeReport,
    events: &[JobEvent],
) -> Result<IssuedCertificate, CertifyError> {
    let facts = issue_facts(ctx, state::unix_now(), 0);
    sign_and_save(
        ctx,
        job.id.clone(),
        &purge_body(&facts, &job.id, job, spec, r, events),
    )
}

/// Who issues, from where, and when.
fn issue_facts(ctx: &JobContext<'_>, now: i64, carried_bytes: u64) -> IssueFacts {
    IssueFacts {
        appliance_id: ctx.key.key_id().to_string(),
        hostname: state::hostname(),
        issued_at: lethe_core::timefmt::rfc3339_utc(now),
        carried_bytes,
    }
}

/// Sign `body` and write `<id>.json` and `<id>.pdf` to the certificate store.
fn sign_and_save(
    ctx: &JobContext<'_>,
    id: String,
    body: &CertificateBody,
) -> Result<IssuedCertificate, CertifyError> {
    let cert = lethe_cert::sign(body, ctx.key)?;
    let (json_path, pdf_path) = CertStore::new(ctx.state.certificates()).save(&cert)?;
    Ok(IssuedCertificate {
        id,
        json_path,
        pdf_path,
    })
}

/// The device section, with what a purge probe learned about hidden areas.
fn device_with_hidden(d: &DeviceIdentity, r: Option<&PurgeReport>) -> Device {
    let mut dev = device(d);
    if let Some(r) = r {
        dev.hidden_areas = Some(match &r.hidden {
            Some(h) => h.note.clone(),
            None if r.method == PolicyMethod::Overwrite => dev.hidden_areas.unwrap_or_default(),
            None => {
                "checked: no HPA or DCO hides sectors (or the drive has neither feature)".into()
            }
        });
    }
    dev
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
        health: None,
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
            requested_level: None,
            drive_command: None,
        },
        verification: Verification {
            method: VerificationMethod::ControllerConfirmed,
            coverage_ppm: 0,
            bytes_verified: 0,
            sample_seed: None,
            result: vresult,
            detail: None,
            attestation: None,
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
    let facts = issue_facts(ctx, state::unix_now(), 0);
    sign_and_save(
        ctx,
        job.id.clone(),
        &degauss_body(&facts, &job.id, job, spec, outcome, events),
    )
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
    let carried = carried_bytes(start, spec.plan.passes.len(), spec.device.size_bytes);
    let facts = issue_facts(ctx, now, carried);
    let b = body(&facts, &id, job, spec, outcome, events);
    sign_and_save(ctx, id, &b)
}
