//! Sanitize Status log page 81h (NVMe Base 2.0 figure 287).
//!
//! SSTAT 1 means completed OK and 2 means in progress; public code has these
//! swapped. Every value is handled explicitly.

use crate::{le16, le32, need, DecodeError};
use serde::{Deserialize, Serialize};

/// Estimated-time value meaning "no estimate reported".
pub const NO_ESTIMATE: u32 = 0xFFFF_FFFF;

/// SSTAT bits 2:0, the status of the most recent sanitize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SanitizeStatusCode {
    /// 0: the subsystem has never been sanitized.
    NeverSanitized,
    /// 1: the most recent sanitize completed successfully.
    Completed,
    /// 2: a sanitize is in progress.
    InProgress,
    /// 3: the most recent sanitize failed.
    Failed,
    /// 4: completed successfully with deallocation although No-Deallocate was
    /// requested (NDI set).
    CompletedWithDealloc,
    /// 5-7: reserved values; never treated as success.
    Reserved(u8),
}

impl SanitizeStatusCode {
    /// Decode SSTAT bits 2:0.
    pub fn from_bits(v: u8) -> Self {
        match v & 0x7 {
            0 => SanitizeStatusCode::NeverSanitized,
            1 => SanitizeStatusCode::Completed,
            2 => SanitizeStatusCode::InProgress,
            3 => SanitizeStatusCode::Failed,
            4 => SanitizeStatusCode::CompletedWithDealloc,
            x => SanitizeStatusCode::Reserved(x),
        }
    }

    /// Encode into SSTAT bits 2:0.
    pub fn bits(self) -> u16 {
        match self {
            SanitizeStatusCode::NeverSanitized => 0,
            SanitizeStatusCode::Completed => 1,
            SanitizeStatusCode::InProgress => 2,
            SanitizeStatusCode::Failed => 3,
            SanitizeStatusCode::CompletedWithDealloc => 4,
            SanitizeStatusCode::Reserved(x) => u16::from(x & 0x7),
        }
    }

    /// True only for the two success codes.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            SanitizeStatusCode::Completed | SanitizeStatusCode::CompletedWithDealloc
        )
    }
}

/// Decoded Sanitize Status log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SanitizeLog {
    /// SPROG: progress numerator over 65536; FFFFh when no sanitize is in progress.
    pub sprog: u16,
    /// SSTAT bits 2:0.
    pub status: SanitizeStatusCode,
    /// SSTAT bits 7:3: overwrite passes completed.
    pub overwrite_passes_done: u8,
    /// SSTAT bit 8: Global Data Erased (no user data written since sanitize/manufacture).
    pub global_data_erased: bool,
    /// SCDW10: CDW10 of the sanitize this status is about.
    pub scdw10: u32,
    /// ETO, ETBE, ETCE: estimated seconds for overwrite, block and crypto erase.
    pub est_overwrite: u32,
    /// Block erase estimate in seconds.
    pub est_block_erase: u32,
    /// Crypto erase estimate in seconds.
    pub est_crypto_erase: u32,
}

impl SanitizeLog {
    /// Progress as a fraction in [0, 1], `None` when SPROG is FFFFh.
    pub fn fraction(&self) -> Option<f64> {
        (self.sprog != 0xFFFF).then(|| f64::from(self.sprog) / 65536.0)
    }

    /// An estimate in seconds, `None` for [`NO_ESTIMATE`].
    pub fn estimate(secs: u32) -> Option<u32> {
        (secs != NO_ESTIMATE).then_some(secs)
    }

    /// Decode at least 20 bytes of the log.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        need("Sanitize Status log", b, 20)?;
        let sstat = le16(b, 2);
        Ok(SanitizeLog {
            sprog: le16(b, 0),
            status: SanitizeStatusCode::from_bits((sstat & 0x7) as u8),
            overwrite_passes_done: ((sstat >> 3) & 0x1F) as u8,
            global_data_erased: sstat & (1 << 8) != 0,
            scdw10: le32(b, 4),
            est_overwrite: le32(b, 8),
            est_block_erase: le32(b, 12),
            est_crypto_erase: le32(b, 16),
        })
    }

    /// Encode into a 512-byte log page (used by the simulator).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        let sstat = self.status.bits()
            | u16::from(self.overwrite_passes_done & 0x1F) << 3
            | u16::from(self.global_data_erased) << 8;
        b[0..2].copy_from_slice(&self.sprog.to_le_bytes());
        b[2..4].copy_from_slice(&sstat.to_le_bytes());
        b[4..8].copy_from_slice(&self.scdw10.to_le_bytes());
        b[8..12].copy_from_slice(&self.est_overwrite.to_le_bytes());
        b[12..16].copy_from_slice(&self.est_block_erase.to_le_bytes());
        b[16..20].copy_from_slice(&self.est_crypto_erase.to_le_bytes());
        // ETOND/ETBEND/ETCEND: no estimates.
        for off in [20, 24, 28] {
            b[off..off + 4].copy_from_slice(&NO_ESTIMATE.to_le_bytes());
        }
        b
    }
}
