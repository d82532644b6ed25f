//! Drive pass-through: sends the plain command values of `lethe-cmds` to real
//! drives through `SG_IO` (SCSI, and ATA wrapped in ATA PASS-THROUGH(16)) and
//! `NVME_IOCTL_ADMIN_CMD`, and finds the NVMe controller behind a namespace
//! through sysfs.
//!
//! Errors keep transport failures (the ioctl failed, the host adapter gave up,
//! the device vanished, the command timed out) apart from device answers (a
//! SCSI CHECK CONDITION with sense data, an NVMe status code, ATA ERR/ABRT),
//! because only the second kind says anything about the drive itself.
//!
//! - [`sys`]: `#[repr(C)]` kernel structs and ioctl numbers.
//! - [`sgio`]: [`sgio::scsi`] and [`sgio::ata`].
//! - [`nvme`]: [`nvme::admin`] and [`nvme::namespace_id`].
//! - [`topology`]: namespace block device to controller character device,
//!   and every namespace of the NVM subsystem.
//! - [`nvme_scope`]: which of those namespaces are in use (discovery's verdict).
//! - [`drive`]: [`drive::LinuxDrive`], the `DriveIo` the purge runner uses.

pub mod drive;
pub mod nvme;
pub mod nvme_scope;
pub mod sgio;
pub mod sys;
pub mod topology;

use nix::errno::Errno;

/// Why a pass-through command did not produce a device answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassthroughError {
    /// The device node does not accept this kind of pass-through (a loop
    /// device, a partition, a driver without SG_IO): EINVAL, ENOTTY, EOPNOTSUPP.
    #[error("pass-through not supported by this device ({0})")]
    Unsupported(Errno),
    /// Any other ioctl failure.
    #[error("pass-through ioctl failed: {0}")]
    Io(Errno),
    /// The command did not complete in its timeout (the kernel aborted it).
    #[error("command timed out")]
    Timeout,
    /// The device disappeared (removed, controller dead, no path).
    #[error("device gone")]
    DeviceGone,
    /// The host adapter or driver reported a failure; the drive's own status
    /// is unknown.
    #[error(
        "transport failure: host status {host_status:#06x}, driver status {driver_status:#06x}"
    )]
    Transport {
        /// `DID_*` value.
        host_status: u16,
        /// `DRIVER_*` value.
        driver_status: u16,
    },
    /// The command value cannot be sent (e.g. a CDB shorter than 6 bytes).
    #[error("malformed command: {0}")]
    BadCommand(String),
    /// The caller's data buffer is shorter than the command's data phase.
    #[error("data buffer holds {got} bytes, the command transfers {need}")]
    BufferTooSmall {
        /// Bytes the command transfers.
        need: usize,
        /// Bytes in the buffer.
        got: usize,
    },
}

impl PassthroughError {
    /// Classify an ioctl errno.
    pub fn from_errno(e: Errno) -> Self {
        match e {
            Errno::EINVAL | Errno::ENOTTY | Errno::EOPNOTSUPP => PassthroughError::Unsupported(e),
            Errno::ENODEV | Errno::ENXIO | Errno::ESHUTDOWN => PassthroughError::DeviceGone,
            Errno::ETIMEDOUT => PassthroughError::Timeout,
            e => PassthroughError::Io(e),
        }
    }

    /// True for errors that say the drive cannot be reached this way at all.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, PassthroughError::Unsupported(_))
    }
}

/// Check that `data` covers a data phase of `need` bytes.
fn check_len(need: u32, data: &[u8]) -> Result<usize, PassthroughError> {
    let need = need as usize;
    if data.len() < need {
        Err(PassthroughError::BufferTooSmall {
            need,
            got: data.len(),
        })
    } else {
        Ok(need)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_classification() {
        for e in [Errno::EINVAL, Errno::ENOTTY, Errno::EOPNOTSUPP] {
            assert_eq!(
                PassthroughError::from_errno(e),
                PassthroughError::Unsupported(e)
            );
        }
        assert_eq!(
            PassthroughError::from_errno(Errno::ENODEV),
            PassthroughError::DeviceGone
        );
        assert_eq!(
            PassthroughError::from_errno(Errno::ETIMEDOUT),
            PassthroughError::Timeout
        );
        assert_eq!(
            PassthroughError::from_errno(Errno::EIO),
            PassthroughError::Io(Errno::EIO)
        );
    }

    #[test]
    fn short_buffer_is_an_error_not_a_panic() {
        assert_eq!(
            check_len(512, &[0u8; 100]),
            Err(PassthroughError::BufferTooSmall {
                need: 512,
                got: 100
            })
        );
        assert_eq!(check_len(4, &[0u8; 100]), Ok(4));
        assert_eq!(check_len(0, &[]), Ok(0));
    }
}
