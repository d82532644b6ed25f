//! The Linux edge of Lethe.
//!
//! This is the only crate that performs syscalls on devices and the only one
//! allowed `unsafe`. Every unsafe block carries a `// SAFETY:` comment, and
//! every `#[repr(C)]` kernel structure has a compile-time size assertion.
//!
//! - [`blockdev`]: opening a whole block device for exclusive direct I/O, and
//!   the `BLK*` size ioctls.
//! - [`discovery`]: records from sysfs, the udev database and /proc, and the
//!   target assessment `lethe wipe` runs before it opens anything.
//! - [`blkid`]: read-only libblkid probing (partitions, signatures).
//! - [`health`]: drive health (SMART, NVMe health log, SCSI log pages) over a
//!   read-only descriptor.
//! - [`target`]: the exclusive, identity-checked target every write goes to.
//! - [`passthrough`]: `SG_IO` and NVMe admin commands for `lethe-cmds` values.
//! - [`fsinfo`]: free space and writability of the state directory.

pub mod blkid;
pub mod blockdev;
pub mod discovery;
pub mod fsinfo;
pub mod health;
pub mod passthrough;
pub mod target;
