//! [`DriveIo`] for the simulated drive: the runner talks to it exactly as it
//! talks to a real drive through the Linux layer.

use crate::{SimDrive, SimError};
use lethe_cmds::ata::{AtaCommand, AtaRegisters};
use lethe_cmds::io::{DriveIo, DriveIoError, ScsiReply};
use lethe_cmds::nvme::{NvmeAdminCmd, NvmeCompletion};
use lethe_cmds::sat_client::{RawScsi, RawScsiReply, SatClient};
use lethe_cmds::scsi::ScsiCdb;
use lethe_cmds::DataDir;

impl From<SimError> for DriveIoError {
    fn from(e: SimError) -> Self {
        match e {
            SimError::Gone => DriveIoError::Gone("simulated drive removed".into()),
            SimError::Timeout => DriveIoError::Timeout,
            SimError::BadRequest(s) => DriveIoError::Transport(s),
        }
    }
}

/// The data-out payload of a command, checked against the buffer length.
fn out_payload(dir: DataDir, data: &[u8]) -> Result<&[u8], DriveIoError> {
    match dir {
        DataDir::Out(n) => data
            .get(..n as usize)
            .ok_or_else(|| DriveIoError::Transport(format!("data-out buffer shorter than {n}"))),
        _ => Ok(&[]),
    }
}

/// Copy a data-in answer into the caller's buffer.
fn copy_in(dir: DataDir, data: &mut [u8], got: &[u8]) -> Result<(), DriveIoError> {
    if let DataDir::In(n) = dir {
        let n = n as usize;
        if data.len() < n {
            return Err(DriveIoError::Transport(format!(
                "data-in buffer holds {} bytes, command transfers {n}",
                data.len()
            )));
        }
        let k = got.len().min(n);
        data[..k].copy_from_slice(&got[..k]);
        data[k..n].fill(0);
    }
    Ok(())
}

impl DriveIo for SimDrive {
    fn ata(&self, cmd: &AtaCommand, data: &mut [u8]) -> Result<AtaRegisters, DriveIoError> {
        let r = SimDrive::ata(self, cmd, out_payload(cmd.data, data)?)?;
        copy_in(cmd.data, data, &r.data)?;
        Ok(r.regs)
    }

    fn nvme_admin(
        &self,
        cmd: &NvmeAdminCmd,
        data: &mut [u8],
    ) -> Result<NvmeCompletion, DriveIoError> {
        let r = SimDrive::nvme_admin(self, cmd, out_payload(cmd.data, data)?)?;
        copy_in(cmd.data, data, &r.data)?;
        Ok(r.completion)
    }

    fn scsi(&self, cdb: &ScsiCdb, data: &mut [u8]) -> Result<ScsiReply, DriveIoError> {
        let r = SimDrive::scsi(self, cdb, out_payload(cdb.data, data)?)?;
        copy_in(cdb.data, data, &r.data)?;
        Ok(ScsiReply {
            status: r.status,
            sense: r.sense,
        })
    }
}

impl RawScsi for SimDrive {
    fn raw_scsi(&self, cdb: &ScsiCdb, data: &mut [u8]) -> Result<RawScsiReply, DriveIoError> {
        let r = SimDrive::scsi(self, cdb, out_payload(cdb.data, data)?)?;
        copy_in(cdb.data, data, &r.data)?;
        Ok(RawScsiReply {
            status: r.status,
            sense: r.sense_bytes,
        })
    }
}

/// The drive reached the way Linux reaches a SATA disk: every ATA command
/// wrapped in ATA PASS-THROUGH(16) by the shared [`SatClient`] and answered by
/// the model's libata-like translator, so the CDB bits (CK_COND, T_TYPE) and
/// the sense decoding are the ones the ioctl path uses.
#[derive(Debug)]
pub struct SatPath<'a> {
    drive: &'a SimDrive,
    client: SatClient,
}

impl<'a> SatPath<'a> {
    /// A SAT path to `drive` that has not sent anything yet.
    pub fn new(drive: &'a SimDrive) -> Self {
        SatPath {
            drive,
            client: SatClient::new(),
        }
    }

    /// Whether the translator ended up in descriptor-format sense.
    pub fn descriptor_sense(&self) -> Option<bool> {
        self.client.descriptor_sense()
    }
}

impl DriveIo for SatPath<'_> {
    fn ata(&self, cmd: &AtaCommand, data: &mut [u8]) -> Result<AtaRegisters, DriveIoError> {
        self.client.ata(self.drive, cmd, data)
    }

    fn nvme_admin(
        &self,
        cmd: &NvmeAdminCmd,
        data: &mut [u8],
    ) -> Result<NvmeCompletion, DriveIoError> {
        DriveIo::nvme_admin(self.drive, cmd, data)
    }

    fn scsi(&self, cdb: &ScsiCdb, data: &mut [u8]) -> Result<ScsiReply, DriveIoError> {
        DriveIo::scsi(self.drive, cdb, data)
    }
}
