//! Kernel ABI for pass-through: `struct sg_io_hdr`, `struct nvme_passthru_cmd`
//! and their ioctl numbers, with compile-time layout checks (x86_64 / LP64).
//!
//! Sources:
//! - `include/scsi/sg.h` (glibc) / `include/uapi/scsi/sg.h`: `typedef struct sg_io_hdr {...}`,
//!   `#define SG_IO 0x2285`, `SG_DXFER_NONE -1`, `SG_DXFER_TO_DEV -2`, `SG_DXFER_FROM_DEV -3`.
//! - `include/uapi/linux/nvme_ioctl.h`: `struct nvme_passthru_cmd` (lines 43-62 in v6.x),
//!   `#define nvme_admin_cmd nvme_passthru_cmd`, `NVME_IOCTL_ID _IO('N', 0x40)`,
//!   `NVME_IOCTL_ADMIN_CMD _IOWR('N', 0x41, struct nvme_admin_cmd)`.

use std::mem::{offset_of, size_of};

/// `struct sg_io_hdr` (interface id 'S'). Pointers are raw because the kernel
/// reads and writes through them; they never leave this module's callers.
#[repr(C)]
#[derive(Debug)]
pub struct SgIoHdr {
    /// Always `'S'`.
    pub interface_id: libc::c_int,
    /// `SG_DXFER_*`.
    pub dxfer_direction: libc::c_int,
    /// CDB length.
    pub cmd_len: u8,
    /// Capacity of the sense buffer.
    pub mx_sb_len: u8,
    /// 0: `dxferp` is a flat buffer.
    pub iovec_count: u16,
    /// Data length in bytes.
    pub dxfer_len: u32,
    /// Data buffer.
    pub dxferp: *mut libc::c_void,
    /// CDB.
    pub cmdp: *const u8,
    /// Sense buffer.
    pub sbp: *mut u8,
    /// Timeout in milliseconds.
    pub timeout: u32,
    /// `SG_FLAG_*`.
    pub flags: u32,
    /// Unused by SG_IO.
    pub pack_id: libc::c_int,
    /// Unused by SG_IO.
    pub usr_ptr: *mut libc::c_void,
    /// SCSI status byte (out).
    pub status: u8,
    /// Shifted status (out, obsolete).
    pub masked_status: u8,
    /// Messaging status (out).
    pub msg_status: u8,
    /// Sense bytes written (out).
    pub sb_len_wr: u8,
    /// `DID_*` host adapter status (out).
    pub host_status: u16,
    /// `DRIVER_*` status (out).
    pub driver_status: u16,
    /// `dxfer_len` minus bytes actually transferred (out).
    pub resid: libc::c_int,
    /// Command duration in milliseconds (out).
    pub duration: u32,
    /// `SG_INFO_*` (out).
    pub info: u32,
}

const _: () = assert!(size_of::<SgIoHdr>() == 88);
const _: () = assert!(offset_of!(SgIoHdr, dxfer_direction) == 4);
const _: () = assert!(offset_of!(SgIoHdr, cmd_len) == 8);
const _: () = assert!(offset_of!(SgIoHdr, mx_sb_len) == 9);
const _: () = assert!(offset_of!(SgIoHdr, dxfer_len) == 12);
const _: () = assert!(offset_of!(SgIoHdr, dxferp) == 16);
const _: () = assert!(offset_of!(SgIoHdr, cmdp) == 24);
const _: () = assert!(offset_of!(SgIoHdr, sbp) == 32);
const _: () = assert!(offset_of!(SgIoHdr, timeout) == 40);
const _: () = assert!(offset_of!(SgIoHdr, usr_ptr) == 56);
const _: () = assert!(offset_of!(SgIoHdr, status) == 64);
const _: () = assert!(offset_of!(SgIoHdr, sb_len_wr) == 67);
const _: () = assert!(offset_of!(SgIoHdr, host_status) == 68);
const _: () = assert!(offset_of!(SgIoHdr, driver_status) == 70);
const _: () = assert!(offset_of!(SgIoHdr, resid) == 72);
const _: () = assert!(offset_of!(SgIoHdr, duration) == 76);
const _: () = assert!(offset_of!(SgIoHdr, info) == 80);

/// `SG_DXFER_NONE`.
pub const SG_DXFER_NONE: libc::c_int = -1;
/// `SG_DXFER_TO_DEV`.
pub const SG_DXFER_TO_DEV: libc::c_int = -2;
/// `SG_DXFER_FROM_DEV`.
pub const SG_DXFER_FROM_DEV: libc::c_int = -3;
/// `SG_IO` request number (a "bad" ioctl number: not built with `_IOWR`).
pub const SG_IO: libc::c_ulong = 0x2285;

/// `struct nvme_passthru_cmd` (`== struct nvme_admin_cmd`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct NvmeAdminCmd {
    /// Opcode.
    pub opcode: u8,
    /// Fused / PSDT flags; 0.
    pub flags: u8,
    /// Reserved.
    pub rsvd1: u16,
    /// Namespace id.
    pub nsid: u32,
    /// Command dword 2.
    pub cdw2: u32,
    /// Command dword 3.
    pub cdw3: u32,
    /// Metadata buffer address; 0.
    pub metadata: u64,
    /// Data buffer address (user pointer as integer).
    pub addr: u64,
    /// Metadata length; 0.
    pub metadata_len: u32,
    /// Data length in bytes.
    pub data_len: u32,
    /// Command dword 10.
    pub cdw10: u32,
    /// Command dword 11.
    pub cdw11: u32,
    /// Command dword 12.
    pub cdw12: u32,
    /// Command dword 13.
    pub cdw13: u32,
    /// Command dword 14.
    pub cdw14: u32,
    /// Command dword 15.
    pub cdw15: u32,
    /// Timeout in milliseconds; 0 = the kernel's admin timeout (60 s).
    pub timeout_ms: u32,
    /// Completion dword 0 (out).
    pub result: u32,
}

const _: () = assert!(size_of::<NvmeAdminCmd>() == 72);
const _: () = assert!(offset_of!(NvmeAdminCmd, nsid) == 4);
const _: () = assert!(offset_of!(NvmeAdminCmd, metadata) == 16);
const _: () = assert!(offset_of!(NvmeAdminCmd, addr) == 24);
const _: () = assert!(offset_of!(NvmeAdminCmd, metadata_len) == 32);
const _: () = assert!(offset_of!(NvmeAdminCmd, data_len) == 36);
const _: () = assert!(offset_of!(NvmeAdminCmd, cdw10) == 40);
const _: () = assert!(offset_of!(NvmeAdminCmd, cdw15) == 60);
const _: () = assert!(offset_of!(NvmeAdminCmd, timeout_ms) == 64);
const _: () = assert!(offset_of!(NvmeAdminCmd, result) == 68);

/// `NVME_IOCTL_ADMIN_CMD` = `_IOWR('N', 0x41, struct nvme_admin_cmd)`.
pub const NVME_IOCTL_ADMIN_CMD: libc::c_ulong =
    nix::request_code_readwrite!(b'N', 0x41, size_of::<NvmeAdminCmd>()) as libc::c_ulong;
const _: () = assert!(NVME_IOCTL_ADMIN_CMD == 0xC048_4E41);
/// `NVME_IOCTL_ID` = `_IO('N', 0x40)`.
pub const NVME_IOCTL_ID: libc::c_ulong = nix::request_code_none!(b'N', 0x40) as libc::c_ulong;
const _: () = assert!(NVME_IOCTL_ID == 0x4E40);

nix::ioctl_readwrite_bad!(
    /// `ioctl(fd, SG_IO, &mut SgIoHdr)`.
    sg_io,
    SG_IO,
    SgIoHdr
);
nix::ioctl_readwrite!(
    /// `ioctl(fd, NVME_IOCTL_ADMIN_CMD, &mut NvmeAdminCmd)`; a positive return
    /// is the NVMe status field.
    nvme_admin_cmd,
    b'N',
    0x41,
    NvmeAdminCmd
);
nix::ioctl_none!(
    /// `ioctl(fd, NVME_IOCTL_ID)`: returns the namespace id of a namespace handle.
    nvme_ioctl_id,
    b'N',
    0x40
);

/// `DID_OK` and friends (`include/scsi/scsi_status.h`, `enum host_status`).
pub mod host {
    /// No error.
    pub const DID_OK: u16 = 0x00;
    /// Could not connect before timeout: device not there.
    pub const DID_NO_CONNECT: u16 = 0x01;
    /// Timed out.
    pub const DID_TIME_OUT: u16 = 0x03;
    /// Bad target.
    pub const DID_BAD_TARGET: u16 = 0x04;
    /// Transport disrupted / device gone for good.
    pub const DID_TRANSPORT_FAILFAST: u16 = 0x0F;
}

/// `DRIVER_*` (`include/scsi/sg.h` era values; only the low nibble is an error).
pub mod driver {
    /// Timed out.
    pub const DRIVER_TIMEOUT: u16 = 0x06;
    /// Sense data is valid; not an error by itself.
    pub const DRIVER_SENSE: u16 = 0x08;
    /// Mask of the error part.
    pub const DRIVER_MASK: u16 = 0x07;
}
