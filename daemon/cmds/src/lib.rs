//! Pure command model for drive-native sanitization (issue 5).
//!
//! Every ATA, NVMe and SCSI command is plain data here: the same values go to the
//! Linux ioctl layer (`SG_IO`, `NVME_IOCTL_ADMIN_CMD`) and to the software drive
//! model in `lethe-sim`. Builders produce commands; decoders turn the bytes a
//! drive returns into typed values and never panic on arbitrary input.
//! The [`policy`] module picks the NIST SP 800-88 / IEEE 2883 method.

pub mod ata;
pub mod io;
pub mod nvme;
pub mod policy;
pub mod sat_client;
pub mod scsi;
pub mod smart;
pub mod watch;

use serde::{Deserialize, Serialize};

/// Why bytes returned by a drive could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer is shorter than the structure needs.
    #[error("{what}: need {need} bytes, got {got}")]
    Short {
        /// Structure being decoded.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// The bytes are present but inconsistent (bad checksum, unknown format...).
    #[error("{what}: {detail}")]
    Invalid {
        /// Structure being decoded.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Why a command could not be built from the requested parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A parameter is outside what the command format can carry.
    #[error("{0}")]
    OutOfRange(String),
}

/// Direction and length of a command's data phase, shared by every transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataDir {
    /// No data phase.
    None,
    /// Device to host, this many bytes.
    In(u32),
    /// Host to device, this many bytes.
    Out(u32),
}

impl DataDir {
    /// Number of bytes transferred.
    pub fn len(&self) -> u32 {
        match *self {
            DataDir::None => 0,
            DataDir::In(n) | DataDir::Out(n) => n,
        }
    }

    /// True when there is no data phase.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Check that `buf` holds at least `need` bytes.
pub(crate) fn need(what: &'static str, buf: &[u8], need: usize) -> Result<(), DecodeError> {
    if buf.len() < need {
        Err(DecodeError::Short {
            what,
            need,
            got: buf.len(),
        })
    } else {
        Ok(())
    }
}

/// Little-endian u16 at `off`; callers have checked the length.
pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

/// Little-endian u32 at `off`; callers have checked the length.
pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Little-endian u64 at `off`; callers have checked the length.
pub(crate) fn le64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Big-endian u16 at `off`; callers have checked the length.
pub(crate) fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Big-endian u32 at `off`; callers have checked the length.
pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Big-endian u64 at `off`; callers have checked the length.
pub(crate) fn be64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_be_bytes(a)
}

/// ASCII field with trailing spaces and NULs removed (NVMe, SCSI strings).
pub(crate) fn ascii_trim(b: &[u8]) -> String {
    let s: String = b
        .iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                ' '
            }
        })
        .collect();
    s.trim().to_string()
}
