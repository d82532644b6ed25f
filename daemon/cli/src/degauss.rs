//! Degaussing magnetic media through the front-panel controller.
//!
//! [`eligibility`] is pure: only media that is magnetic may be degaussed,
//! because a degausser does nothing to flash (SSD, NVMe, USB sticks, SD/eMMC)
//! and an operator who thinks otherwise would certify a drive that still holds
//! its data. [`run`] records the job, runs one arm → fire → cooldown cycle on
//! the controller, and issues a Destroy certificate only when the controller
//! confirms a completed cycle; anything else gives a failure report.

use crate::certify::{self, IssuedCertificate};
use crate::identity::DeviceIdentity;
use crate::job::{JobContext, JobError, JobParties};
use crate::state;
use lethe_controller::DegaussConfirmation;
use lethe_store::{JobStatus, JobStore, NewJob};
use serde::{Deserialize, Serialize};

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
    }
}

/// Everything that defines a degauss job; stored as the job's spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DegaussSpec {
    pub device: DeviceIdentity,
    pub parties: JobParties,
    pub port: String,
    pub tool_version: String,
}

/// What a degauss job produced.
#[derive(Debug, Clone, Serialize)]
pub struct DegaussReport {
    pub job: String,
    /// `pass` when the controller confirmed a completed cycle, else `fail`.
    pub result: &'static str,
    pub certificate: String,
    pub pdf: String,
    pub device: String,
    pub confirmation: Option<DegaussConfirmation>,
    pub error: Option<String>,
}

/// Run one degauss cycle for `spec.device` and certify the outcome.
/// `cycle` performs the controller exchange (the CLI passes the real one).
pub fn run(
    ctx: &JobContext<'_>,
    spec: &DegaussSpec,
    cycle: impl FnOnce(&str) -> Result<DegaussConfirmation, String>,
) -> Result<DegaussReport, JobError> {
    if let Err(why) = eligibility(&spec.device) {
        return Err(JobError::BadSpec("degauss".into(), why));
    }
    let store = JobStore::open(ctx.state.root())?;
    let id = state::new_job_id("degauss");
    let now = state::now_rfc3339();
    store.create(&NewJob {
        id: id.clone(),
        kind: "degauss".into(),
        device_path: spec.device.path.clone(),
        spec: serde_json::to_value(spec)
            .map_err(|e| JobError::BadSpec(id.clone(), e.to_string()))?,
        secret: Vec::new(),
        pid: std::process::id(),
        boot_id: state::boot_id(),
        now: now.clone(),
    })?;
    store.event(
        &id,
        &now,
        "started",
        &format!(
            "degauss cycle requested on controller {} for {}",
            spec.port,
            spec.device.label()
        ),
    )?;
    let outcome = cycle(&spec.port);
    let now = state::now_rfc3339();
    match &outcome {
        Ok(c) => store.event(
            &id,
            &now,
            "completed",
            &format!(
                "controller confirmed cycle {}: relay on {} ms (commanded {} ms), interlock closed after: {}, firmware {}.{}.{}",
                c.cycle, c.relay_on_ms, c.commanded_ms, c.interlock_closed_after,
                c.firmware.version.0, c.firmware.version.1, c.firmware.version.2
            ),
        )?,
        Err(e) => store.event(&id, &now, "failed", e)?,
    }
    let job = store.get(&id)?;
    let events = store.events(&id)?;
    let IssuedCertificate {
        json_path,
        pdf_path,
        ..
    } = certify::issue_degauss(ctx, &job, spec, &outcome, &events)?;
    let (status, result) = match outcome {
        Ok(_) => (JobStatus::Pass, "pass"),
        Err(_) => (JobStatus::Fail, "fail"),
    };
    let report = DegaussReport {
        job: id.clone(),
        result,
        certificate: json_path.display().to_string(),
        pdf: pdf_path.display().to_string(),
        device: spec.device.path.clone(),
        confirmation: outcome.as_ref().ok().cloned(),
        error: outcome.err(),
    };
    store.finish(
        &id,
        status,
        &serde_json::to_value(&report).unwrap_or_default(),
        Some(&report.certificate),
        &state::now_rfc3339(),
    )?;
    Ok(report)
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
