//! [`DriveIo`] over the Linux pass-through: the purge runner's commands reach a
//! real (or QEMU-emulated) drive exactly as they reach the software model.
//!
//! - ATA goes through ATA PASS-THROUGH(16) on the block device (libata's SAT,
//!   SAS HBAs and SAT-capable USB bridges), by the shared
//!   [`lethe_cmds::sat_client::SatClient`] the drive model's tests also use;
//! - SCSI goes through `SG_IO` on the block device;
//! - NVMe admin commands go to the controller character device found through
//!   sysfs (never by trimming the namespace name).

use super::{nvme as pt_nvme, sgio, topology, PassthroughError};
use lethe_cmds::ata::{AtaCommand, AtaRegisters};
use lethe_cmds::io::{DriveIo, DriveIoError, ScsiReply};
use lethe_cmds::nvme::{NvmeAdminCmd, NvmeCompletion};
use lethe_cmds::sat_client::{RawScsi, RawScsiReply, SatClient};
use lethe_cmds::scsi::ScsiCdb;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

impl From<PassthroughError> for DriveIoError {
    fn from(e: PassthroughError) -> Self {
        match e {
            PassthroughError::Unsupported(_) => DriveIoError::Unsupported(e.to_string()),
            PassthroughError::DeviceGone => DriveIoError::Gone(e.to_string()),
            PassthroughError::Timeout => DriveIoError::Timeout,
            other => DriveIoError::Transport(other.to_string()),
        }
    }
}

/// A drive reached through the kernel's pass-through interfaces.
#[derive(Debug)]
pub struct LinuxDrive {
    /// The whole-disk block device (SG_IO).
    block: File,
    /// ATA over SCSI: descriptor sense and the register decoding.
    sat: SatClient,
    /// The NVMe controller node and the namespace id, for NVMe drives.
    nvme: Option<(File, u32)>,
}

impl LinuxDrive {
    /// Open `block` (e.g. `/dev/sdb`) for SG_IO. Not exclusive: the caller
    /// already holds the device with `O_EXCL` for the read-back.
    pub fn open_block(block: &Path) -> Result<Self, DriveIoError> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(block)
            .map_err(|e| DriveIoError::Transport(format!("{}: {e}", block.display())))?;
        Ok(LinuxDrive {
            block: f,
            sat: SatClient::new(),
            nvme: None,
        })
    }

    /// Open an NVMe namespace `block` (e.g. `/dev/nvme0n1`) and its controller.
    pub fn open_nvme(block: &Path, sysfs: &Path, dev_root: &Path) -> Result<Self, DriveIoError> {
        let mut d = Self::open_block(block)?;
        let name = block
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ctrl = topology::controller_for_namespace(sysfs, &name)
            .map_err(|e| DriveIoError::Unsupported(e.to_string()))?;
        let nsid = topology::namespace_id(sysfs, &name)
            .map_err(|e| DriveIoError::Unsupported(e.to_string()))?;
        let f = topology::open_controller(&ctrl, dev_root)
            .map_err(|e| DriveIoError::Transport(e.to_string()))?;
        d.nvme = Some((f, nsid));
        Ok(d)
    }

    /// The namespace id, for NVMe drives.
    pub fn nsid(&self) -> Option<u32> {
        self.nvme.as_ref().map(|(_, n)| *n)
    }
}

impl DriveIo for LinuxDrive {
    fn ata(&self, cmd: &AtaCommand, data: &mut [u8]) -> Result<AtaRegisters, DriveIoError> {
        self.sat.ata(self, cmd, data)
    }

    fn nvme_admin(
        &self,
        cmd: &NvmeAdminCmd,
        data: &mut [u8],
    ) -> Result<NvmeCompletion, DriveIoError> {
        let Some((ctrl, _)) = &self.nvme else {
            return Err(DriveIoError::Unsupported("not an NVMe drive".into()));
        };
        Ok(pt_nvme::admin(ctrl, cmd, data)?)
    }

    fn scsi(&self, cdb: &ScsiCdb, data: &mut [u8]) -> Result<ScsiReply, DriveIoError> {
        Ok(self.raw_scsi(cdb, data)?.decoded())
    }
}

impl RawScsi for LinuxDrive {
    fn raw_scsi(&self, cdb: &ScsiCdb, data: &mut [u8]) -> Result<RawScsiReply, DriveIoError> {
        let o = sgio::scsi(&self.block, cdb, data)?;
        Ok(RawScsiReply {
            status: o.status,
            sense: o.sense,
        })
    }
}
