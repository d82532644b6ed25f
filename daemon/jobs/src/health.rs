//! Drive health, read before a job's first write and carried into its
//! certificate (`device.health`) and its report.
//!
//! Read-only commands only (SMART READ DATA / THRESHOLDS / RETURN STATUS,
//! the NVMe SMART / Health log, SCSI LOG SENSE and READ DEFECT DATA), sent
//! through the target's own pass-through, so the health read is the health
//! of the device that was checked and opened. A device that reports no
//! health (a loop device, a USB bridge without SAT) is not an error: the job
//! history says why there is no record.

use crate::host::Target;
use lethe_cmds::smart::{self, DriveHealth};

/// The drive's health, or why there is none, in words for the job history.
pub(crate) fn read(target: &dyn Target) -> (Option<DriveHealth>, String) {
    let id = target.identity();
    let Some(protocol) = smart::protocol_for_transport(&id.transport) else {
        return (
            None,
            format!(
                "not available: a {} device reports no drive health",
                id.transport
            ),
        );
    };
    let pt = target.pass_through();
    let io = match &pt.io {
        Ok(io) => io,
        Err(why) => return (None, format!("not available: {why}")),
    };
    match smart::read_health(io.as_ref(), protocol, id.rotational.unwrap_or(false)) {
        Ok(h) => {
            let line = format!("{} ({})", h.summary(), h.source);
            (Some(h), line)
        }
        Err(e) => (None, format!("not available: {e}")),
    }
}
