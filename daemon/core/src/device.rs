//! The block-device contract shared by every storage tier.
//!
//! The same engine runs against a loop device, a real drive (both through
//! `lethe-linux`), a file, or a fault-injecting model in tests. Implementations
//! must be usable from several threads at once: positioned I/O (`pread`/`pwrite`)
//! needs no shared cursor.

use serde::{Deserialize, Serialize};

/// Size and sector sizes of a block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geometry {
    /// Capacity in bytes that the host can address.
    pub size_bytes: u64,
    /// Logical sector size: the unit of addressing and of `O_DIRECT` alignment.
    pub logical_sector: u32,
    /// Physical sector size: writes smaller than this cause read-modify-write.
    pub physical_sector: u32,
}

impl Geometry {
    /// Number of logical sectors, i.e. one past the last LBA.
    pub fn sectors(&self) -> u64 {
        self.size_bytes / u64::from(self.logical_sector)
    }
}

/// Why an I/O failed, reduced to what the engine must decide on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IoFault {
    /// The medium could not read or write this range (EIO, ENODATA, EILSEQ…).
    /// Worth retrying, then recording as a failed range.
    #[error("medium error: {0}")]
    Media(String),
    /// The device went away (ENODEV, ENXIO): nothing more can be done.
    #[error("device gone: {0}")]
    Gone(String),
    /// Anything else (EINVAL from misalignment, EROFS…): a bug or a setup problem.
    #[error("I/O error: {0}")]
    Other(String),
}

impl IoFault {
    /// Classify an OS error number the way the engine needs it.
    pub fn from_errno(errno: i32, context: impl Into<String>) -> Self {
        // Values from <asm-generic/errno-base.h> and <errno.h>; stable on every Linux arch we target.
        const EIO: i32 = 5;
        const ENXIO: i32 = 6;
        const ENODEV: i32 = 19;
        const ENOSPC: i32 = 28;
        const ENODATA: i32 = 61;
        const EILSEQ: i32 = 84;
        const EREMOTEIO: i32 = 121;
        const EMEDIUMTYPE: i32 = 124;
        let msg = format!("{} (errno {errno})", context.into());
        match errno {
            EIO | ENODATA | EILSEQ | EREMOTEIO | ENOSPC => IoFault::Media(msg),
            ENXIO | ENODEV | EMEDIUMTYPE => IoFault::Gone(msg),
            _ => IoFault::Other(msg),
        }
    }

    /// True when the fault may go away on retry or be confined to a range.
    pub fn is_media(&self) -> bool {
        matches!(self, IoFault::Media(_))
    }
}

/// Positioned, thread-safe block I/O.
///
/// Buffers and offsets passed in are multiples of `geometry().logical_sector`
/// and buffers are aligned to 4096 bytes, so `O_DIRECT` implementations can
/// pass them straight to the kernel.
pub trait BlockDevice: Send + Sync {
    /// The device's geometry, read once when it was opened.
    fn geometry(&self) -> Geometry;
    /// Write all of `buf` at byte `offset`.
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault>;
    /// Fill all of `buf` from byte `offset`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault>;
    /// Make every completed write durable (fdatasync / FLUSH CACHE).
    fn flush(&self) -> Result<(), IoFault>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_classification() {
        assert!(IoFault::from_errno(5, "w").is_media());
        assert!(matches!(IoFault::from_errno(19, "w"), IoFault::Gone(_)));
        assert!(matches!(IoFault::from_errno(22, "w"), IoFault::Other(_)));
    }

    #[test]
    fn sectors_rounds_down() {
        let g = Geometry {
            size_bytes: 4096 * 3 + 512,
            logical_sector: 512,
            physical_sector: 4096,
        };
        assert_eq!(g.sectors(), 25);
    }
}
