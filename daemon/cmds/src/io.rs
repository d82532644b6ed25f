//! The narrow hardware seam: one trait that carries the plain command values of
//! this crate to a drive and brings back its answer.
//!
//! The Linux layer implements it with `SG_IO` and `NVME_IOCTL_ADMIN_CMD`; the
//! software drive model in `lethe-sim` implements it in memory. The purge runner
//! is written against this trait only, so one runner body runs at every tier.

use crate::ata::{AtaCommand, AtaRegisters};
use crate::nvme::{NvmeAdminCmd, NvmeCompletion};
use crate::scsi::{ScsiCdb, Sense};
use serde::{Deserialize, Serialize};

/// A SCSI command's answer: the status byte and decoded sense, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScsiReply {
    /// SCSI status: 00h GOOD, 02h CHECK CONDITION.
    pub status: u8,
    /// Sense data that came with CHECK CONDITION.
    pub sense: Option<Sense>,
}

impl ScsiReply {
    /// GOOD status.
    pub fn is_good(&self) -> bool {
        self.status == 0
    }
}

/// Why a command produced no device answer (transport-level failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DriveIoError {
    /// This path cannot carry this kind of command (a loop device, a USB bridge
    /// without SAT, an NVMe namespace without a controller handle).
    #[error("not supported on this path: {0}")]
    Unsupported(String),
    /// The device vanished.
    #[error("device gone: {0}")]
    Gone(String),
    /// No completion within the command's timeout.
    #[error("command timed out")]
    Timeout,
    /// Any other transport failure; the drive's state is unknown.
    #[error("transport failure: {0}")]
    Transport(String),
}

/// Sends command values to one drive.
///
/// `data` is the data phase: read for data-out commands, filled for data-in
/// commands; it must be at least as long as the command's [`crate::DataDir`].
pub trait DriveIo {
    /// An ATA command (through SAT on Linux SATA/USB paths).
    fn ata(&self, cmd: &AtaCommand, data: &mut [u8]) -> Result<AtaRegisters, DriveIoError>;
    /// An NVMe admin command to the namespace's controller.
    fn nvme_admin(
        &self,
        cmd: &NvmeAdminCmd,
        data: &mut [u8],
    ) -> Result<NvmeCompletion, DriveIoError>;
    /// A SCSI command.
    fn scsi(&self, cdb: &ScsiCdb, data: &mut [u8]) -> Result<ScsiReply, DriveIoError>;
}
