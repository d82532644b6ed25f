//! The device that is written is the device that was checked.
//!
//! An [`ExclusiveTarget`] exists only after four steps, in this order:
//! 1. **assessment** ([`assess_target`]): a whole block device, not protected
//!    by its own state, by anything stacked on it or under it, or by another
//!    path to the same disk;
//! 2. **exclusive open**: `O_RDWR | O_DIRECT | O_EXCL`; a device mounted or
//!    claimed since step 1 fails with `EBUSY`, and nothing can claim it
//!    while we hold it;
//! 3. **same device number**: `fstat` of the open descriptor must give the
//!    device number that was assessed (a path now pointing elsewhere fails);
//! 4. **same identity**: size, model, serial and WWN read again from sysfs
//!    for that device number, and for a loop device the backing file's
//!    device and inode from `LOOP_GET_STATUS64` on our own descriptor, must
//!    equal what was assessed. A drive swapped in the same slot, or a loop
//!    node re-bound to another file while a prompt waited, is refused here.
//!
//! Wipes, purges and image restores take only this type (through the job
//! library), so a write can never reach a device that skipped a step.

use crate::blockdev::{self, DirectDevice, OpenError};
use crate::discovery::{assess_target, LiveIdentity, Refusal, TargetAssessment};
use lethe_core::device::{BlockDevice, Geometry, IoFault};
use lethe_core::inventory::{DevNum, Drive};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why no exclusive target was handed out. Every variant means nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The assessment refused the device (protected, not a whole block device…).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The exclusive open failed (busy since the check, permissions…).
    #[error("{0}")]
    Open(#[from] OpenError),
    /// The opened device is not the one that was checked.
    #[error("refusing {path}: the device changed between the check and the open ({why}); nothing was written")]
    Changed { path: PathBuf, why: String },
}

/// A whole block device that passed assessment, is held `O_EXCL`, and was
/// found to be the assessed device after the open.
#[derive(Debug)]
pub struct ExclusiveTarget {
    dev: DirectDevice,
    drive: Drive,
    identity: LiveIdentity,
}

impl ExclusiveTarget {
    /// Assess `path` and open it.
    pub fn acquire(path: &Path) -> Result<Self, TargetError> {
        Self::open(assess_target(path)?)
    }

    /// Open an assessed device exclusively and check that it is still the
    /// device assessed. Nothing is written.
    pub fn open(a: TargetAssessment) -> Result<Self, TargetError> {
        let node = PathBuf::from(&a.drive.path);
        let dev = DirectDevice::open(&node)?;
        let changed = |why: String| TargetError::Changed {
            path: node.clone(),
            why,
        };
        let meta = dev.file().metadata().map_err(|e| OpenError::Io {
            path: node.clone(),
            source: e,
        })?;
        let devnum = DevNum {
            major: nix::sys::stat::major(meta.rdev()) as u32,
            minor: nix::sys::stat::minor(meta.rdev()) as u32,
        };
        if devnum != a.identity.devnum {
            return Err(changed(format!(
                "device number was {} when checked, {devnum} when opened",
                a.identity.devnum
            )));
        }
        let backing = if a.identity.loop_backing.is_some() || a.record.name.starts_with("loop") {
            blockdev::loop_backing(dev.file())
                .map_err(|e| changed(format!("cannot read the loop device's backing file: {e}")))?
        } else {
            None
        };
        let now = LiveIdentity::read(devnum, dev.geometry().size_bytes, backing)
            .ok_or_else(|| changed(format!("device {devnum} vanished from sysfs")))?;
        if let Some(why) = a.identity.mismatch(&now) {
            return Err(changed(why));
        }
        Ok(Self {
            dev,
            drive: a.drive,
            identity: now,
        })
    }

    /// The classified drive, as assessed (its `path` is the device node).
    pub fn drive(&self) -> &Drive {
        &self.drive
    }

    /// The identity read through the open descriptor.
    pub fn identity(&self) -> &LiveIdentity {
        &self.identity
    }

    /// The device node held open.
    pub fn path(&self) -> &Path {
        self.dev.path()
    }
}

impl BlockDevice for ExclusiveTarget {
    fn geometry(&self) -> Geometry {
        self.dev.geometry()
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault> {
        self.dev.write_at(buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault> {
        self.dev.read_at(buf, offset)
    }
    fn flush(&self) -> Result<(), IoFault> {
        self.dev.flush()
    }
}
