//! ATA commands over a raw SCSI pass-through: the one SAT client that the
//! Linux edge (`SG_IO`) and the drive model's SCSI-to-ATA translator both use,
//! so what a model test proves about the CDBs and the sense decoding holds for
//! the ioctl path too.
//!
//! Before the first ATA command the client asks the translator for
//! descriptor-format sense (D_SENSE in the Control mode page, current value
//! only): fixed format cannot carry the upper ATA registers. A translator that
//! refuses leaves fixed format, and commands whose result lives in the
//! registers then fail rather than be misread (see
//! [`crate::scsi::AtaOutcome::registers_for`]). D_SENSE is a current mode
//! value that a power-on or reset of the translator clears, so a truncated
//! answer to a read-only status query (native max address, SANITIZE STATUS)
//! makes the client ask for descriptor sense again and repeat the query once.

use crate::ata::{AtaCommand, AtaRegisters};
use crate::io::{DriveIoError, ScsiReply};
use crate::scsi::{self, ata_outcome, ata_pass_through_16, ScsiCdb, Sense};
use std::sync::atomic::{AtomicU8, Ordering};

/// A SCSI command's raw answer: the status byte and the sense bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawScsiReply {
    /// SCSI status: 00h GOOD, 02h CHECK CONDITION.
    pub status: u8,
    /// Sense bytes as the transport returned them (empty when none).
    pub sense: Vec<u8>,
}

impl RawScsiReply {
    /// The decoded form the [`crate::io::DriveIo`] seam carries.
    pub fn decoded(&self) -> ScsiReply {
        ScsiReply {
            status: self.status,
            sense: (!self.sense.is_empty())
                .then(|| Sense::decode(&self.sense).ok())
                .flatten(),
        }
    }
}

/// Sends SCSI CDBs and returns the raw answer.
pub trait RawScsi {
    /// One command; `data` as in [`crate::io::DriveIo::scsi`].
    fn raw_scsi(&self, cdb: &ScsiCdb, data: &mut [u8]) -> Result<RawScsiReply, DriveIoError>;
}

/// Per-device SAT state: whether descriptor sense was asked for yet.
#[derive(Debug, Default)]
pub struct SatClient {
    /// 0: not asked yet; 1: fixed format; 2: descriptor format.
    dsense: AtomicU8,
}

impl SatClient {
    /// A client that has not talked to the device yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the translator uses descriptor-format sense (known after the
    /// first ATA command).
    pub fn descriptor_sense(&self) -> Option<bool> {
        match self.dsense.load(Ordering::SeqCst) {
            0 => None,
            v => Some(v == 2),
        }
    }

    fn ask_for_descriptor_sense(&self, port: &dyn RawScsi) {
        let on = enable_descriptor_sense(port);
        self.dsense.store(if on { 2 } else { 1 }, Ordering::SeqCst);
    }

    /// Send `cmd` wrapped in ATA PASS-THROUGH(16) and return the registers the
    /// caller may act on.
    pub fn ata(
        &self,
        port: &dyn RawScsi,
        cmd: &AtaCommand,
        data: &mut [u8],
    ) -> Result<AtaRegisters, DriveIoError> {
        if self.descriptor_sense().is_none() {
            self.ask_for_descriptor_sense(port);
        }
        let cdb = ata_pass_through_16(cmd);
        let r = port.raw_scsi(&cdb, data)?;
        let out = ata_outcome(r.status, &r.sense);
        match out.registers_for(cmd) {
            Err(_) if !out.registers_complete && cmd.is_status_query() => {
                self.ask_for_descriptor_sense(port);
                let r = port.raw_scsi(&cdb, data)?;
                ata_outcome(r.status, &r.sense)
                    .registers_for(cmd)
                    .map_err(DriveIoError::Transport)
            }
            other => other.map_err(DriveIoError::Transport),
        }
    }
}

/// Ask for descriptor-format sense; returns whether it is on afterwards.
fn enable_descriptor_sense(port: &dyn RawScsi) -> bool {
    let mut buf = [0u8; 64];
    let Ok(r) = port.raw_scsi(&scsi::mode_sense_10(scsi::CONTROL_MODE_PAGE, 64), &mut buf) else {
        return false;
    };
    if r.status != 0 {
        return false;
    }
    match scsi::control_page_d_sense(&buf) {
        Ok((true, _)) => true,
        Ok((false, mut list)) => {
            let len = u16::try_from(list.len()).unwrap_or(0);
            matches!(port.raw_scsi(&scsi::mode_select_10(len), &mut list), Ok(r) if r.status == 0)
        }
        Err(_) => false,
    }
}
