//! Degaussing magnetic media through the front-panel controller.
//!
//! [`eligibility`] is pure: only media that is magnetic may be degaussed,
//! because a degausser does nothing to flash (SSD, NVMe, USB sticks, SD/eMMC)
//! and an operator who thinks otherwise would certify a drive that still holds
//! its data. The job records itself, runs one arm → fire → cooldown cycle on
//! the shared controller, and issues a Destroy certificate only when the
//! controller confirms a completed cycle; anything else gives a failure report.

use crate::certificate::{Common, Work};
use crate::event::{Event, Level, Outcome, Report};
use crate::identity::DeviceIdentity;
use crate::panel::DegaussFailure;
use crate::record::{self, JobLog};
use crate::refusal::Refusal;
use crate::request::{DegaussRequest, JobKind, Medium};
use crate::runner::Ctx;
use crate::spec::DegaussSpec;
use lethe_store::JobStatus;

/// Why a device must not be degaussed, if it must not.
pub fn eligibility(d: &DeviceIdentity) -> Result<(), String> {
    let flash =
        "degaussing only sanitizes magnetic media; flash keeps its data in a magnetic field";
    match d.transport.as_str() {
        "tape" => return Ok(()),
        "nvme" => {
            return Err(format!(
                "{} is an NVMe drive, i.e. flash memory: {flash}. Use `lethe wipe` (drive-native Purge) or physical destruction",
                d.path
            ))
        }
        "mmc" => return Err(format!("{} is an SD/eMMC card (flash): {flash}", d.path)),
        _ => {}
    }
    match (d.media_type.as_str(), d.rotational) {
        ("magnetic", Some(true)) => Ok(()),
        ("flash", _) | (_, Some(false)) => Err(format!(
            "{} is a solid-state (non-rotating) device: {flash}. Use `lethe wipe` or physical destruction",
            d.path
        )),
        _ => Err(format!(
            "cannot establish that {} is magnetic media ({} device, media type {}): degaussing only sanitizes magnetic media",
            d.path, d.transport, d.media_type
        )),
    }
}

/// The identity of a tape the operator declares (tapes have no block device).
pub fn tape_identity(label: &str) -> DeviceIdentity {
    DeviceIdentity {
        path: format!("tape:{label}"),
        stable_id: Some(format!("tape-{label}")),
        transport: "tape".into(),
        manufacturer: None,
        model: Some("magnetic tape (declared by the operator)".into()),
        serial: Some(label.to_string()),
        wwn: None,
        firmware: None,
        size_bytes: 0,
        logical_sector: 0,
        physical_sector: 0,
        rotational: None,
        removable: Some(true),
        media_type: "magnetic".into(),
        backing: None,
    }
}

/// The controller's own consent value for `medium`, from the confirmation the
/// library already checked: the controller library checks it again and binds
/// the arm to this medium, so a fire can never act on another one.
fn consent(
    confirmation: &crate::confirm::Confirmation,
    medium: &DeviceIdentity,
) -> Result<lethe_controller::Consent, String> {
    match confirmation {
        crate::confirm::Confirmation::Waived { .. } => {
            Ok(lethe_controller::Consent::assume_yes(medium.path.clone()))
        }
        crate::confirm::Confirmation::Typed { answer, .. } => {
            let size = medium.size_bytes.to_string();
            let mut accepted: Vec<&str> = medium.serial.as_deref().into_iter().collect();
            if medium.size_bytes > 0 {
                accepted.push(&size);
            }
            lethe_controller::Consent::typed(medium.path.clone(), &accepted, answer)
                .map_err(|e| e.to_string())
        }
    }
}

/// Run one degauss job.
pub(crate) fn run(ctx: &Ctx<'_>, req: DegaussRequest) -> Report {
    let refuse = |device: Option<String>, why| Report::refused(None, JobKind::Degauss, device, why);
    if ctx.cfg().require_operator && !req.parties.has_operator() {
        return refuse(None, Refusal::NoOperator);
    }
    // 1. Identify, refuse protected devices and anything not magnetic,
    //    before the controller is even contacted.
    let identity = match &req.medium {
        Medium::Tape(label) => tape_identity(label),
        Medium::Device(path) => match ctx.cfg().host.assess(path) {
            Ok(a) => a.identity,
            Err(why) => return refuse(Some(path.display().to_string()), why),
        },
    };
    let device = identity.path.clone();
    if let Err(why) = eligibility(&identity) {
        return refuse(Some(device), Refusal::NotMagnetic(why));
    }
    let Some(panel) = ctx.cfg().panel.clone() else {
        return refuse(Some(device), Refusal::NoController);
    };
    // 2. The operator confirmed this medium.
    if let Err(why) = req.confirmation.check(&identity) {
        return refuse(Some(device), why);
    }
    // 3. The controller answers and the degausser can run a cycle now: a
    //    job that cannot even start leaves no record and no document.
    if let Err(why) = panel.ready() {
        return refuse(Some(device), Refusal::ControllerNotReady(why));
    }
    let mut reservation = match ctx.cfg().state.preflight(ctx.id) {
        Ok(r) => r,
        Err(why) => return refuse(Some(device), why),
    };
    let spec = DegaussSpec {
        device: identity,
        parties: req.parties.clone(),
        port: panel.port().to_string(),
        tool_version: ctx.cfg().tool_version.clone(),
    };
    if ctx.cancelled() {
        return refuse(Some(device), Refusal::Cancelled);
    }
    let log = match JobLog::create(ctx, JobKind::Degauss, &device, &spec, Vec::new()) {
        Ok(l) => l,
        Err(why) => return refuse(Some(device), why),
    };
    let _ = log.event(
        "started",
        &format!(
            "degauss cycle requested on controller {} for {}",
            spec.port,
            spec.device.label()
        ),
    );
    opening_events(&log, &req);
    ctx.before_write();
    let outcome = if ctx.cancelled() {
        Err(DegaussFailure {
            fired: false,
            message: "cancelled before the degausser was armed".into(),
        })
    } else {
        ctx.emit(Event::Degaussing);
        consent(&req.confirmation, &spec.device)
            .map_err(|message| DegaussFailure {
                fired: false,
                message,
            })
            .and_then(|c| panel.degauss(&c))
    };
    match &outcome {
        Ok(c) => log.event(
            "completed",
            &format!(
                "controller confirmed cycle {}: relay on {} ms (commanded {} ms), interlock closed after: {}, firmware {}.{}.{}",
                c.cycle, c.relay_on_ms, c.commanded_ms, c.interlock_closed_after,
                c.firmware.version.0, c.firmware.version.1, c.firmware.version.2
            ),
        ),
        Err(f) if !f.fired => log.event(
            "not_started",
            &format!("the degausser never fired: {}", f.message),
        ),
        Err(f) => log.event("failed", &f.message),
    }
    .ok();
    let (status, o) = match &outcome {
        Ok(_) => (JobStatus::Pass, Outcome::Passed),
        Err(f) if !f.fired => (
            JobStatus::NotStarted,
            Outcome::NotStarted {
                reason: format!("the degausser never fired: {}", f.message),
            },
        ),
        Err(_) => (JobStatus::Fail, Outcome::Failed),
    };
    let mut report = Report::new(Some(ctx.id.to_string()), JobKind::Degauss, o);
    report.device = Some(device);
    report.method = Some("degauss".into());
    report.category = Some(Level::Destroy);
    report.degauss = outcome.as_ref().ok().cloned();
    if let Err(f) = &outcome {
        report.problems.push(f.message.clone());
    }
    let issued = log
        .record()
        .map_err(|e| e.to_string())
        .and_then(|(job, events)| {
            record::issue(
                ctx,
                &mut reservation,
                ctx.id,
                Common {
                    id: ctx.id,
                    started_at: &job.created_at,
                    device: &spec.device,
                    parties: &spec.parties,
                    tool_version: &spec.tool_version,
                    events: &events,
                    health: None,
                },
                Work::Degauss { outcome: &outcome },
            )
        });
    match issued {
        Ok(i) => {
            report.document = Some(i.clone());
            let _ = log.finish(status, &crate::wipe::result_json(&report), Some(&i.json));
        }
        Err(e) => {
            let msg = format!("document not issued: {e}");
            let _ = log.event("error", &msg);
            report.problems.push(msg);
            // Without its document a cycle is not certified: a failure
            // (a cycle that never fired stays "not started").
            let status = if status == JobStatus::NotStarted {
                status
            } else {
                report.outcome = Outcome::Failed;
                JobStatus::Fail
            };
            let _ = log.finish(status, &crate::wipe::result_json(&report), None);
        }
    }
    report
}

/// The history before the cycle: confirmation and operator.
fn opening_events(log: &JobLog<'_>, req: &DegaussRequest) {
    let _ = log.event("confirmed", &req.confirmation.describe());
    let p = &req.parties;
    let who = if p.has_operator() {
        p.operator_id.clone()
    } else {
        "none named (this site accepts jobs without an operator)".into()
    };
    let from = p
        .operator_source
        .as_deref()
        .map(|s| format!(", from {s}"))
        .unwrap_or_default();
    let _ = log.event("operator", &format!("{who}{from}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(transport: &str, media: &str, rotational: Option<bool>) -> DeviceIdentity {
        let mut d = tape_identity("X");
        d.path = "/dev/x".into();
        d.transport = transport.into();
        d.media_type = media.into();
        d.rotational = rotational;
        d
    }

    /// safeguard: 164.310(d)(2)(i)
    #[test]
    fn only_magnetic_media_may_be_degaussed() {
        assert!(eligibility(&dev("sata", "magnetic", Some(true))).is_ok());
        assert!(eligibility(&dev("sas", "magnetic", Some(true))).is_ok());
        assert!(eligibility(&dev("usb", "magnetic", Some(true))).is_ok());
        assert!(eligibility(&tape_identity("LTO-0001")).is_ok());
        for (t, m, r, want) in [
            ("nvme", "flash", Some(false), "NVMe"),
            ("sata", "flash", Some(false), "solid-state"),
            ("usb", "flash", Some(false), "solid-state"),
            ("mmc", "flash", Some(false), "SD/eMMC"),
            ("loop", "unknown", Some(true), "cannot establish"),
            ("virtio", "unknown", None, "cannot establish"),
        ] {
            let e = eligibility(&dev(t, m, r)).unwrap_err();
            assert!(e.contains(want) && e.contains("magnetic"), "{t}: {e}");
        }
    }
}
