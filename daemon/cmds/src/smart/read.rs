//! Reading health over a [`DriveIo`]: the one function the job library,
//! `lethe drives --health` and the software drive model tests call.
//!
//! Every command here only reads: SMART READ DATA / THRESHOLDS / RETURN
//! STATUS, Get Log Page, LOG SENSE and READ DEFECT DATA. None changes drive state.

use super::{ata, nvme, scsi, DriveHealth};
use crate::io::{DriveIo, DriveIoError};
use crate::DecodeError;

/// Which command set to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// ATA SMART (SATA, and USB bridges with SAT).
    Ata,
    /// NVMe SMART / Health log.
    Nvme,
    /// SCSI log pages (SAS, FC, iSCSI).
    Scsi,
}

/// The command set for a discovery transport name, `None` where no health
/// data exists (loop, virtio, mmc, nbd...).
pub fn protocol_for_transport(transport: &str) -> Option<Protocol> {
    match transport {
        "nvme" => Some(Protocol::Nvme),
        "sata" | "ata" | "usb" => Some(Protocol::Ata),
        "sas" | "scsi" | "fc" | "iscsi" => Some(Protocol::Scsi),
        _ => None,
    }
}

/// Why no health record could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    /// The path cannot carry the commands (a loop device, a USB bridge
    /// without SAT), or the transport has no health data.
    #[error("health data not available: {0}")]
    Unsupported(String),
    /// The drive answered with an error (SMART disabled, page not supported).
    #[error("the drive refused: {0}")]
    Refused(String),
    /// The transport failed; the drive's state is unknown.
    #[error(transparent)]
    Io(#[from] DriveIoError),
    /// The drive answered with bytes that do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Read the drive's health. `rotational` tells the ATA decoder to ignore the
/// flash wear attributes (whose ids mean other things on disks).
pub fn read_health(
    io: &dyn DriveIo,
    protocol: Protocol,
    rotational: bool,
) -> Result<DriveHealth, HealthError> {
    match protocol {
        Protocol::Ata => read_ata(io, rotational),
        Protocol::Nvme => read_nvme(io),
        Protocol::Scsi => read_scsi(io),
    }
}

fn read_ata(io: &dyn DriveIo, rotational: bool) -> Result<DriveHealth, HealthError> {
    let mut data = vec![0u8; 512];
    let regs = io.ata(&ata::read_data(), &mut data)?;
    if regs.failed() {
        return Err(HealthError::Refused(format!(
            "SMART READ DATA aborted (status {:#04x}, error {:#04x}): SMART is disabled or not supported",
            regs.status, regs.error
        )));
    }
    let mut thresholds = vec![0u8; 512];
    let have_thresholds = matches!(io.ata(&ata::read_thresholds(), &mut thresholds), Ok(r) if !r.failed())
        && ata::decode(&data, Some(&thresholds)).is_ok();
    let attrs = ata::decode(&data, have_thresholds.then_some(thresholds.as_slice()))?;
    let verdict = match io.ata(&ata::return_status(), &mut []) {
        Ok(r) if !r.failed() => ata::decode_return_status(&r),
        _ => None,
    };
    let mut h = ata::health(&attrs, verdict, rotational);
    if !have_thresholds {
        h.notes.push("SMART thresholds could not be read".into());
    }
    Ok(h)
}

fn read_nvme(io: &dyn DriveIo) -> Result<DriveHealth, HealthError> {
    let cmd = nvme::get_smart_log().map_err(|e| HealthError::Unsupported(e.to_string()))?;
    let mut data = vec![0u8; nvme::SMART_LOG_LEN as usize];
    let c = io.nvme_admin(&cmd, &mut data)?;
    if !c.is_success() {
        return Err(HealthError::Refused(format!(
            "Get Log Page 02h failed with status {:#05x}",
            c.code()
        )));
    }
    Ok(nvme::SmartLog::decode(&data)?.health())
}

const PAGES: [u8; 8] = [
    scsi::page::WRITE_ERRORS,
    scsi::page::READ_ERRORS,
    scsi::page::VERIFY_ERRORS,
    scsi::page::TEMPERATURE,
    scsi::page::START_STOP,
    scsi::page::SOLID_STATE,
    scsi::page::BACKGROUND_SCAN,
    scsi::page::INFO_EXCEPTIONS,
];

fn log_page(io: &dyn DriveIo, page: u8) -> Result<Option<Vec<u8>>, HealthError> {
    let mut buf = vec![0u8; 1024];
    let r = io.scsi(&scsi::log_sense(page, 1024), &mut buf)?;
    Ok(r.is_good().then_some(buf))
}

fn read_scsi(io: &dyn DriveIo) -> Result<DriveHealth, HealthError> {
    let Some(list) = log_page(io, scsi::page::SUPPORTED)? else {
        return Err(HealthError::Refused(
            "LOG SENSE of the supported pages failed: the device has no log pages".into(),
        ));
    };
    let supported = scsi::LogPage::supported_pages(&list)?;
    let mut s = scsi::ScsiHealth::default();
    let mut skipped = Vec::new();
    for page in PAGES.into_iter().filter(|p| supported.contains(p)) {
        match log_page(io, page)? {
            Some(b) => s.absorb(&scsi::LogPage::decode(&b)?),
            None => skipped.push(format!("{page:02X}h")),
        }
    }
    let mut hdr = [0u8; 4];
    if matches!(io.scsi(&scsi::read_grown_defects(), &mut hdr), Ok(r) if r.is_good()) {
        s.grown_defects = scsi::decode_defect_count(&hdr).ok();
    }
    let mut h = s.health();
    if !skipped.is_empty() {
        h.notes.push(format!(
            "log pages listed but refused: {}",
            skipped.join(", ")
        ));
    }
    Ok(h)
}
