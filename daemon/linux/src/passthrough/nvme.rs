//! `NVME_IOCTL_ADMIN_CMD` and `NVME_IOCTL_ID`.
//!
//! The ioctl returns 0 on success, a positive NVMe status field (SCT/SC, DNR,
//! phase bit stripped) when the controller completed the command with an
//! error, and -errno when the command never completed. A timed-out admin
//! command is cancelled by the kernel's controller reset and comes back as
//! EINTR (`nvme_execute_rq`: `NVME_REQ_CANCELLED` gives -EINTR).

use super::sys;
use super::{check_len, PassthroughError};
use lethe_cmds::nvme::{NvmeAdminCmd, NvmeCompletion};
use lethe_cmds::DataDir;
use nix::errno::Errno;
use std::fs::File;
use std::os::fd::AsRawFd;

/// Linux `NVME_SC_HOST_PATH_ERROR`: no path to the controller (removed, dead).
const SC_HOST_PATH_ERROR: u16 = 0x370;

/// Send an admin command to a controller (`/dev/nvmeN`) or namespace handle.
/// `data` must hold at least the command's data length; it is filled for a
/// data-in command and only read for data-out.
pub fn admin(
    file: &File,
    cmd: &NvmeAdminCmd,
    data: &mut [u8],
) -> Result<NvmeCompletion, PassthroughError> {
    let len = check_len(cmd.data.len(), data)?;
    let mut raw = to_raw(cmd);
    if len > 0 && !matches!(cmd.data, DataDir::None) {
        raw.addr = data.as_mut_ptr() as u64;
        raw.data_len = len as u32;
    }
    // `addr` is 0 with `data_len` 0, or points at `data_len` bytes of `data`
    // (checked above), mutably borrowed for the whole synchronous ioctl.
    // SAFETY: `raw` is a valid nvme_passthru_cmd whose buffer outlives the call.
    let ret = unsafe { sys::nvme_admin_cmd(file.as_raw_fd(), &mut raw) };
    completion(ret, raw.result)
}

/// Map the ioctl result to a completion or an error (pure).
fn completion(
    ret: nix::Result<libc::c_int>,
    result: u32,
) -> Result<NvmeCompletion, PassthroughError> {
    match ret {
        Ok(status) => {
            // Bits 15:0 hold the status field; the kernel never sets more.
            let status = (status & 0xFFFF) as u16;
            if status & 0x7FF == SC_HOST_PATH_ERROR {
                return Err(PassthroughError::DeviceGone);
            }
            Ok(NvmeCompletion { status, result })
        }
        Err(Errno::EINTR) => Err(PassthroughError::Timeout),
        Err(e) => Err(PassthroughError::from_errno(e)),
    }
}

fn to_raw(c: &NvmeAdminCmd) -> sys::NvmeAdminCmd {
    sys::NvmeAdminCmd {
        opcode: c.opcode,
        nsid: c.nsid,
        cdw10: c.cdw10,
        cdw11: c.cdw11,
        cdw12: c.cdw12,
        cdw13: c.cdw13,
        cdw14: c.cdw14,
        cdw15: c.cdw15,
        timeout_ms: c.timeout_ms,
        ..Default::default()
    }
}

/// Namespace id of an open namespace handle (`/dev/nvme0n1`, `/dev/ng0n1`).
/// A controller handle fails with ENOTTY (`Unsupported`).
pub fn namespace_id(file: &File) -> Result<u32, PassthroughError> {
    // SAFETY: NVME_IOCTL_ID takes no argument and touches no user memory; the
    // fd is owned by `file` for the whole call.
    let ret = unsafe { sys::nvme_ioctl_id(file.as_raw_fd()) };
    let nsid = ret.map_err(PassthroughError::from_errno)?;
    u32::try_from(nsid).map_err(|_| PassthroughError::Io(Errno::ERANGE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lethe_cmds::nvme::{get_log_page, identify_controller, sc, LID_SANITIZE_STATUS};

    #[test]
    fn raw_command_carries_every_dword() {
        let c = get_log_page(LID_SANITIZE_STATUS, 512).unwrap_or_else(|e| panic!("{e}"));
        let r = to_raw(&c);
        assert_eq!(r.opcode, 0x02);
        assert_eq!(r.nsid, 0xFFFF_FFFF);
        assert_eq!(r.cdw10, c.cdw10);
        assert_eq!(r.cdw11, c.cdw11);
        assert_eq!((r.addr, r.data_len, r.metadata, r.flags), (0, 0, 0, 0));
        let id = to_raw(&identify_controller());
        assert_eq!((id.opcode, id.cdw10), (0x06, 1));
    }

    #[test]
    fn positive_return_is_device_status() {
        let c = completion(Ok(0x4002), 7).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.code(), sc::INVALID_FIELD);
        assert_eq!(c.result, 7);
        assert!(!c.is_success());
        assert!(completion(Ok(0), 0).is_ok_and(|c| c.is_success()));
    }

    #[test]
    fn transport_failures_are_errors() {
        assert_eq!(
            completion(Err(Errno::EINTR), 0),
            Err(PassthroughError::Timeout)
        );
        assert_eq!(
            completion(Err(Errno::ENOTTY), 0),
            Err(PassthroughError::Unsupported(Errno::ENOTTY))
        );
        assert_eq!(completion(Ok(0x370), 0), Err(PassthroughError::DeviceGone));
        assert_eq!(
            completion(Err(Errno::ENODEV), 0),
            Err(PassthroughError::DeviceGone)
        );
    }

    #[test]
    fn short_buffer_rejected_before_the_ioctl() {
        // /dev/null is not an NVMe device, but the length check comes first.
        let f = File::open("/dev/null").unwrap_or_else(|e| panic!("{e}"));
        let r = admin(&f, &identify_controller(), &mut [0u8; 100]);
        assert_eq!(
            r,
            Err(PassthroughError::BufferTooSmall {
                need: 4096,
                got: 100
            })
        );
    }
}
