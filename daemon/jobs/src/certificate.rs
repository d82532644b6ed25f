//! From a finished (or stopped) job to a signed certificate or report.
//!
//! One builder for every kind of job: [`body`] assembles the parts every
//! certificate shares (appliance, tool, device, operator, timing, parties,
//! history) once, and takes what differs, the method, the verification, the
//! result and the hidden-area statement, from the [`Work`] that was done.
//! It is pure: the same job, work and facts always give the same body.

use crate::identity::DeviceIdentity;
use crate::panel::DegaussFailure;
use crate::request::{Destination as RequestDestination, Parties};
use crate::spec::{PurgeContext, WipeSpec};
use lethe_cert::{
    Appliance, Attestation, Category, CertificateBody, Destination, Device, DriveCommand, Event,
    FailedRange, MediaType, Method, Operator, Outcome, ResultStatus, Timing, Tool, Verification,
    VerificationMethod, VerificationResult, FORMAT,
};
use lethe_cmds::policy::{Level as PolicyLevel, Method as PolicyMethod};
use lethe_controller::DegaussConfirmation;
use lethe_core::plan::{Checkpoint, VerifyMode};
use lethe_purge::{Expect, Outcome as PurgeOutcome, PurgeReport};
use lethe_store::JobEvent;
use lethe_wipe::{EndState, Verdict, WipeOutcome};

/// Facts about the issuing appliance and moment.
#[derive(Debug, Clone)]
pub struct IssueFacts {
    pub appliance_id: String,
    pub hostname: String,
    pub issued_at: String,
}

/// What every certificate of a job shares.
#[derive(Debug, Clone, Copy)]
pub struct Common<'a> {
    /// The document's id (the job id, or a numbered incomplete report).
    pub id: &'a str,
    /// When the job was created (RFC 3339).
    pub started_at: &'a str,
    pub device: &'a DeviceIdentity,
    pub parties: &'a Parties,
    pub tool_version: &'a str,
    pub events: &'a [JobEvent],
    /// The drive's health as read before the job wrote anything.
    pub health: Option<&'a lethe_cmds::smart::DriveHealth>,
}

/// The work a job did: the part of a certificate that differs by kind.
#[derive(Debug, Clone, Copy)]
pub enum Work<'a> {
    /// The overwrite engine ran (alone, or as a purge's fallback).
    Overwrite {
        spec: &'a WipeSpec,
        outcome: &'a WipeOutcome,
        /// Bytes made durable by earlier runs of the same job.
        carried_bytes: u64,
    },
    /// A drive-native command ran (or was refused).
    DriveCommand { report: &'a PurgeReport },
    /// A degausser cycle (or its failure, fired or not).
    Degauss {
        outcome: &'a Result<DegaussConfirmation, DegaussFailure>,
    },
}

/// The parts of a body that differ by [`Work`].
struct Parts {
    method: Method,
    verification: Verification,
    result: Outcome,
    hidden_areas: Option<String>,
    /// Overrides the operator's destination (a degaussed drive is destroyed).
    destination: Option<Destination>,
}

/// The certificate body of a job. Pure.
pub fn body(facts: &IssueFacts, c: &Common<'_>, work: Work<'_>) -> CertificateBody {
    let parts = match work {
        Work::Overwrite {
            spec,
            outcome,
            carried_bytes,
        } => overwrite(spec, outcome, carried_bytes),
        Work::DriveCommand { report } => drive_command_parts(c.device, report),
        Work::Degauss { outcome } => degauss(c.device, outcome),
    };
    let mut device = device(c.device);
    if let Some(h) = parts.hidden_areas {
        device.hidden_areas = Some(h);
    }
    device.health = c.health.cloned();
    CertificateBody {
        format: FORMAT.to_string(),
        id: c.id.to_string(),
        issued_at: facts.issued_at.clone(),
        appliance: Appliance {
            id: facts.appliance_id.clone(),
            hostname: facts.hostname.clone(),
            location: c.parties.location.clone(),
        },
        tool: Tool {
            name: "lethe".into(),
            version: c.tool_version.to_string(),
        },
        device,
        method: parts.method,
        verification: parts.verification,
        operator: Operator {
            id: c.parties.operator_id.clone(),
            name: c.parties.operator_name.clone(),
        },
        timing: timing(c.started_at, &facts.issued_at),
        customer: c.parties.customer.clone(),
        asset_tag: c.parties.asset_tag.clone(),
        media_source: c.parties.media_source.clone(),
        destination: parts.destination.or(c.parties.destination.map(destination)),
        result: parts.result,
        events: c
            .events
            .iter()
            .map(|e| Event {
                at: e.at.clone(),
                kind: e.kind.clone(),
                detail: e.detail.clone(),
            })
            .collect(),
    }
}

/// Bytes a job had durably written before `start`.
pub fn carried_bytes(start: &Checkpoint, passes: usize, size: u64) -> u64 {
    match start {
        Checkpoint::Writing { pass, offset } => *pass as u64 * size + offset,
        Checkpoint::Verifying | Checkpoint::Done => passes as u64 * size,
    }
}

/// Why an overwrite that fell back from a purge is not a certificate of the
/// whole drive: sectors an HPA or DCO hid were never written (the kernel's
/// block device, and so the overwrite, stops at the visible capacity, even
/// after a volatile HPA removal).
pub fn hidden_not_overwritten(p: &PurgeContext, d: &DeviceIdentity) -> Option<String> {
    let h = p.hidden()?;
    let sector = u64::from(d.logical_sector.max(1));
    let visible = d.size_bytes / sector;
    let top = h.dco_sectors.unwrap_or(0).max(h.native_sectors);
    let hidden = top.saturating_sub(visible);
    (hidden > 0).then(|| {
        format!(
            "{hidden} sectors hidden by {} were NOT overwritten: the overwrite covers the {visible} \
             host-visible sectors only, so data there may remain (remove the HPA and run the job \
             again, or destroy the drive)",
            match (h.hpa(), h.dco()) {
                (true, true) => "an HPA and a DCO",
                (true, false) => "an HPA",
                _ => "a DCO",
            }
        )
    })
}

fn overwrite(spec: &WipeSpec, outcome: &WipeOutcome, carried: u64) -> Parts {
    let d = &spec.device;
    let coverage_ppm = ppm(outcome.verified.total(), d.size_bytes);
    let mut messages = outcome.problems();
    if let EndState::Aborted { reason, .. } = &outcome.end {
        if !messages.iter().any(|m| m.contains(reason.as_str())) {
            messages.push(reason.clone());
        }
    }
    if outcome.retries > 0 {
        messages.push(format!("{} I/O retries were needed", outcome.retries));
    }
    let purge = spec.purge.as_ref();
    let hidden_gap = purge.and_then(|p| hidden_not_overwritten(p, d));
    let status = overwrite_status(spec, outcome, carried);
    if let Some(gap) = &hidden_gap {
        messages.push(gap.clone());
    }
    if status == ResultStatus::NotStarted {
        messages = vec![NOT_STARTED.into()];
    }
    // (`--verify off` is explained by the engine's own problems above.)
    let report = purge.and_then(|p| p.report.as_ref());
    Parts {
        method: Method {
            category: Category::Clear,
            technique: "overwrite".into(),
            pattern: describe_passes(spec),
            passes: spec.plan.passes.len() as u32,
            final_blank: spec.plan.blank,
            standard: "NIST SP 800-88 Rev.1 Clear; IEEE 2883-2022 Clear (overwrite)".into(),
            reason: overwrite_reason(spec),
            requested_level: purge
                .map(|p| category(p.requested))
                .filter(|c| *c != Category::Clear),
            drive_command: report
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
            result: if outcome.bytes_verified == 0 {
                VerificationResult::NotPerformed
            } else if outcome.verify_failures.is_empty() {
                VerificationResult::Pass
            } else {
                VerificationResult::Fail
            },
            detail: None,
            attestation: None,
        },
        result: Outcome {
            status,
            bytes_written: carried + outcome.bytes_written,
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
        hidden_areas: match (hidden_gap, report) {
            (Some(gap), _) => Some(gap),
            (None, Some(r)) => Some(hidden_note(r, d)),
            (None, None) => None,
        },
        destination: None,
    }
}

/// What a job stopped before its first write says, in its document and report.
pub const NOT_STARTED: &str =
    "stopped before anything was written: the device is unchanged and NOT sanitized; start a new job";

/// The result of an overwrite job: the one rule the certificate and the
/// job's own outcome (`lethe wipe`'s exit code, `--json` `result`, the job
/// store's status) are both derived from, so they can never disagree.
///
/// - the engine's verdict (pass, fail, incomplete);
/// - a pass that left sectors hidden by an HPA/DCO unwritten is a `fail`;
/// - a pass where Purge was requested is `clear_only`;
/// - every pass written without an error but nothing read back
///   (`--verify off`) is `unverified`, never certified, and not a failure;
/// - stopped before its first write, with nothing written by an earlier run
///   or a drive command, is `not_started`.
///
/// `carried`: bytes earlier runs of the same job wrote.
pub fn overwrite_status(spec: &WipeSpec, outcome: &WipeOutcome, carried: u64) -> ResultStatus {
    let purge = spec.purge.as_ref();
    let command_ran = purge
        .and_then(|p| p.report.as_ref())
        .is_some_and(|r| !r.attempts.is_empty());
    if matches!(outcome.end, EndState::Stopped { .. })
        && carried == 0
        && outcome.bytes_written == 0
        && outcome.write_failures.is_empty()
        && !command_ran
    {
        return ResultStatus::NotStarted;
    }
    let hidden_gap = purge.and_then(|p| hidden_not_overwritten(p, &spec.device));
    let mut status = match outcome.verdict() {
        Verdict::Pass => ResultStatus::Pass,
        Verdict::Fail => ResultStatus::Fail,
        Verdict::Incomplete => ResultStatus::Incomplete,
    };
    if hidden_gap.is_some() && status == ResultStatus::Pass {
        // Verified where it wrote, but not the whole drive: never a pass.
        status = ResultStatus::Fail;
    }
    if status == ResultStatus::Pass
        && purge.is_some_and(|p| category(p.requested) != Category::Clear)
    {
        status = ResultStatus::ClearOnly;
    }
    if matches!(spec.plan.verify, VerifyMode::Off)
        && matches!(outcome.end, EndState::Completed)
        && outcome.failed_ranges().is_empty()
        && hidden_gap.is_none()
    {
        status = ResultStatus::Unverified;
    }
    status
}

fn drive_command_parts(d: &DeviceIdentity, r: &PurgeReport) -> Parts {
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
    Parts {
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
            coverage_ppm: ppm(read, d.size_bytes),
            bytes_verified: read,
            sample_seed: rb.map(|b| format!("{:016x}", b.seed)),
            result: match rb {
                None => VerificationResult::NotPerformed,
                Some(b) if b.passed() => VerificationResult::Pass,
                Some(_) => VerificationResult::Fail,
            },
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
            attestation: None,
        },
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
        hidden_areas: Some(hidden_note(r, d)),
        destination: None,
    }
}

fn degauss(d: &DeviceIdentity, outcome: &Result<DegaussConfirmation, DegaussFailure>) -> Parts {
    let (status, result, message) = match outcome {
        Ok(c) => (
            ResultStatus::Pass,
            VerificationResult::Pass,
            format!(
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
            ),
        ),
        Err(f) if !f.fired => (
            ResultStatus::NotStarted,
            VerificationResult::NotPerformed,
            format!(
                "the degausser never fired: {}; the medium was not exposed to the field and is \
                 NOT sanitized",
                f.message
            ),
        ),
        Err(f) => (
            ResultStatus::Fail,
            VerificationResult::Fail,
            format!("no completed degauss cycle: {}", f.message),
        ),
    };
    let medium = if d.transport == "tape" {
        format!(
            "the medium was declared a magnetic tape by the operator (label {})",
            d.serial.as_deref().unwrap_or("none")
        )
    } else {
        format!(
            "the medium is magnetic (media type {} established from the drive before arming)",
            d.media_type
        )
    };
    let attestation = Attestation {
        attested_by: match outcome {
            Ok(c) => format!(
                "degausser controller, firmware {}.{}.{}",
                c.firmware.version.0, c.firmware.version.1, c.firmware.version.2
            ),
            Err(f) if !f.fired => "degausser controller (the cycle never started)".into(),
            Err(_) => "degausser controller (no completed cycle reported)".into(),
        },
        verified: {
            let mut v = vec![
                medium,
                "the operator confirmed this medium before the degausser was armed".to_string(),
            ];
            if let Ok(c) = outcome {
                v.push(format!(
                    "the controller answered our arm and fire with cycle {} on the same link \
                     session, and its reported relay time ({} ms) is within the tolerance of the \
                     commanded pulse ({} ms)",
                    c.cycle, c.relay_on_ms, c.commanded_ms
                ));
            }
            v
        },
        attested: match outcome {
            Ok(c) => vec![
                format!("relay energized for {} ms, measured on its feedback contact", c.relay_on_ms),
                "the door interlock stayed closed and no e-stop was pressed during the pulse".into(),
                "the degausser's field strength is as rated for this medium (not measured by Lethe)"
                    .into(),
            ],
            Err(_) => Vec::new(),
        },
    };
    Parts {
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
            result,
            detail: None,
            attestation: Some(attestation),
        },
        result: Outcome {
            status,
            bytes_written: 0,
            failed_ranges: Vec::new(),
            messages: vec![message],
        },
        hidden_areas: None,
        destination: Some(Destination::Destroy),
    }
}

fn ppm(part: u64, whole: u64) -> u32 {
    if whole == 0 {
        0
    } else {
        (u128::from(part) * 1_000_000 / u128::from(whole)).min(1_000_000) as u32
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

fn overwrite_reason(spec: &WipeSpec) -> String {
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
        _ => format!(
            "Operator requested a verified overwrite ({}; verification {}). An overwrite \
             reaches every user-addressable sector (Clear); it cannot reach remapped sectors \
             or flash over-provisioning, which only drive-native Purge commands do.",
            describe_passes(spec),
            spec.plan.verify
        ),
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

/// What a purge probe learned about hidden areas.
fn hidden_note(r: &PurgeReport, d: &DeviceIdentity) -> String {
    match &r.hidden {
        Some(h) => h.note.clone(),
        None if r.method == PolicyMethod::Overwrite => hidden_areas_note(&d.transport),
        None => "checked: no HPA or DCO hides sectors (or the drive has neither feature)".into(),
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
        media_type: match d.media_type.as_str() {
            "magnetic" => MediaType::Magnetic,
            "flash" => MediaType::Flash,
            "hybrid" => MediaType::Hybrid,
            _ => MediaType::Unknown,
        },
        transport: d.transport.clone(),
        path: d.path.clone(),
        stable_id: d.stable_id.clone().unwrap_or_default(),
        hidden_areas: (d.transport != "tape").then(|| hidden_areas_note(&d.transport)),
        health: None,
    }
}

/// What the certificate can honestly say about HPA/DCO when nothing probed
/// them: an overwrite does not query HPA/DCO (that needs ATA pass-through).
fn hidden_areas_note(transport: &str) -> String {
    match transport {
        "loop" | "virtio" | "zram" | "nbd" => format!("not applicable ({transport} device has no HPA/DCO)"),
        _ => "not checked: this version does not query HPA/DCO; only the host-visible capacity was overwritten".into(),
    }
}

fn timing(started_at: &str, issued_at: &str) -> Timing {
    let started = lethe_core::timefmt::parse_rfc3339_utc(started_at);
    let ended = lethe_core::timefmt::parse_rfc3339_utc(issued_at);
    let duration_seconds = match (started, ended) {
        (Some(a), Some(b)) if b >= a => (b - a) as u64,
        _ => 0,
    };
    Timing {
        started_at: started_at.to_string(),
        ended_at: issued_at.to_string(),
        duration_seconds,
    }
}

fn destination(d: RequestDestination) -> Destination {
    match d {
        RequestDestination::Reuse => Destination::Reuse,
        RequestDestination::ReturnToLessor => Destination::ReturnToLessor,
        RequestDestination::Destroy => Destination::Destroy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> IssueFacts {
        IssueFacts {
            appliance_id: "a1".into(),
            hostname: "h".into(),
            issued_at: "2026-11-23T14:05:00Z".into(),
        }
    }

    /// A degauss whose cycle never fired is NOT STARTED, one whose fate is
    /// unknown FAILED; both sign (the rules hold) and neither certifies.
    #[test]
    fn a_degauss_that_never_fired_is_not_started_and_one_that_may_have_is_failed() {
        let tape = crate::degauss::tape_identity("LTO-9");
        let parties = Parties {
            operator_id: "op".into(),
            ..Parties::default()
        };
        let common = Common {
            id: "degauss-1",
            started_at: "2026-11-23T14:00:00Z",
            device: &tape,
            parties: &parties,
            tool_version: "t",
            events: &[],
            health: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let key = lethe_cert::ApplianceKey::load_or_create(dir.path()).unwrap();
        for (fired, want) in [
            (false, ResultStatus::NotStarted),
            (true, ResultStatus::Fail),
        ] {
            let outcome = Err(DegaussFailure {
                fired,
                message: "controller refused: InterlockOpen".into(),
            });
            let b = body(&facts(), &common, Work::Degauss { outcome: &outcome });
            assert_eq!(b.result.status, want);
            let signed = lethe_cert::sign(&b, &key).unwrap();
            assert_eq!(signed.body().result.status, want, "not lowered or raised");
            assert!(!want.is_certificate());
            if !fired {
                assert_eq!(b.verification.result, VerificationResult::NotPerformed);
                assert!(b.result.messages[0].contains("never fired"), "{b:?}");
            }
        }
    }
}
