//! Drive health for `lethe drives --health` and the job library: the
//! read-only commands of `lethe_cmds::smart` sent through the pass-through on
//! a descriptor opened **read-only**.
//!
//! Unlike [`crate::passthrough::drive::LinuxDrive`] (which a purge job uses,
//! and which switches libata to descriptor-format sense with a MODE SELECT),
//! this path changes nothing on the drive or in the kernel, so it is safe to
//! run against every disk, the system disk included. Sending pass-through
//! commands on a read-only descriptor needs CAP_SYS_RAWIO (SCSI/ATA) and
//! CAP_SYS_ADMIN (NVMe admin), as `smartctl` does.
//!
//! NVMe admin commands go to the namespace's block node: the kernel forwards
//! admin pass-through on a namespace handle to its controller, and the
//! SMART / Health log is read for the whole controller (NSID FFFFFFFFh).

use crate::passthrough::{nvme as pt_nvme, sgio};
use lethe_cmds::ata::{AtaCommand, AtaRegisters};
use lethe_cmds::io::{DriveIo, DriveIoError, ScsiReply};
use lethe_cmds::nvme::{NvmeAdminCmd, NvmeCompletion};
use lethe_cmds::scsi::ScsiCdb;
use lethe_cmds::smart::{self, DriveHealth, HealthError};
use lethe_cmds::DataDir;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// A whole-disk block device opened read-only for health commands.
#[derive(Debug)]
pub struct ReadOnlyDrive {
    file: File,
}

impl ReadOnlyDrive {
    /// Open `block` (e.g. `/dev/sda`, `/dev/nvme0n1`) read-only and
    /// non-blocking; anything but a block device is refused.
    pub fn open(block: &Path) -> Result<Self, DriveIoError> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(block)
            .map_err(|e| DriveIoError::Transport(format!("{}: {e}", block.display())))?;
        let is_block = file
            .metadata()
            .map(|m| m.file_type().is_block_device())
            .unwrap_or(false);
        if !is_block {
            return Err(DriveIoError::Unsupported(format!(
                "{} is not a block device",
                block.display()
            )));
        }
        Ok(ReadOnlyDrive { file })
    }
}

impl DriveIo for ReadOnlyDrive {
    fn ata(&self, cmd: &AtaCommand, data: &mut [u8]) -> Result<AtaRegisters, DriveIoError> {
        let o = sgio::ata(&self.file, cmd, data)?.ata;
        // libata answers in fixed-format sense unless D_SENSE is set (which
        // this read-only path never changes), and older kernels cut LBA
        // (23:8) from it. For a data-in command (SMART READ DATA) the answer
        // is the data, and ERROR/STATUS are intact, so the registers are
        // still good enough; a non-data command answers *in* the LBA (RETURN
        // STATUS), so it gets an error, never a guess.
        if !o.registers_complete && !matches!(cmd.data, DataDir::In(_)) {
            return Err(DriveIoError::Transport(
                "ATA result registers truncated by fixed-format sense data".into(),
            ));
        }
        Ok(match o.registers {
            Some(r) => r,
            None if o.failed() => AtaRegisters::aborted(),
            None => AtaRegisters::ok(),
        })
    }

    fn nvme_admin(
        &self,
        cmd: &NvmeAdminCmd,
        data: &mut [u8],
    ) -> Result<NvmeCompletion, DriveIoError> {
        Ok(pt_nvme::admin(&self.file, cmd, data)?)
    }

    fn scsi(&self, cdb: &ScsiCdb, data: &mut [u8]) -> Result<ScsiReply, DriveIoError> {
        let o = sgio::scsi(&self.file, cdb, data)?;
        Ok(ScsiReply {
            status: o.status,
            sense: o.decode_sense().and_then(Result::ok),
        })
    }
}

/// Read the health of the drive at `block` whose discovery transport is
/// `transport` (`sata`, `nvme`, `sas`, `usb`...). Transports without health
/// data (loop, virtio, mmc...) give [`HealthError::Unsupported`] without
/// opening anything. `rotational` (when known) keeps flash wear attributes
/// off disks.
pub fn read_drive_health(
    block: &Path,
    transport: &str,
    rotational: Option<bool>,
) -> Result<DriveHealth, HealthError> {
    let Some(protocol) = smart::protocol_for_transport(transport) else {
        return Err(HealthError::Unsupported(format!(
            "a {transport} device reports no drive health"
        )));
    };
    let drive = ReadOnlyDrive::open(block)?;
    smart::read_health(&drive, protocol, rotational.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_without_health_open_nothing() {
        let e = read_drive_health(Path::new("/nonexistent/loop0"), "loop", None).unwrap_err();
        assert!(matches!(e, HealthError::Unsupported(_)), "{e}");
    }

    #[test]
    fn only_block_devices_are_opened() {
        let e = ReadOnlyDrive::open(Path::new("/dev/null")).unwrap_err();
        assert!(matches!(e, DriveIoError::Unsupported(_)), "{e}");
    }
}
