//! NVMe admin command model (NVMe Base 2.0): Identify, Format NVM, Sanitize and
//! the Sanitize Status log page.
//!
//! [`NvmeAdminCmd`] mirrors the fields of Linux `struct nvme_admin_cmd` that carry
//! meaning; the `repr(C)` struct lives in `lethe-linux`.

use crate::{BuildError, DataDir};
use serde::{Deserialize, Serialize};

/// Admin opcodes (NVMe Base 2.0 figure 84).
pub mod opcode {
    /// Get Log Page.
    pub const GET_LOG_PAGE: u8 = 0x02;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Format NVM.
    pub const FORMAT_NVM: u8 = 0x80;
    /// Sanitize.
    pub const SANITIZE: u8 = 0x84;
}

/// Log identifier of the Sanitize Status log (NVMe Base 2.0 5.16.1.25).
pub const LID_SANITIZE_STATUS: u8 = 0x81;
/// Length of the Sanitize Status log we read.
pub const SANITIZE_LOG_LEN: u32 = 512;
/// NSID meaning "all namespaces".
pub const NSID_ALL: u32 = 0xFFFF_FFFF;

/// An NVMe admin command as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NvmeAdminCmd {
    /// Opcode (bits 1:0 give the data direction).
    pub opcode: u8,
    /// Namespace identifier.
    pub nsid: u32,
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
    /// Data buffer direction and length.
    pub data: DataDir,
    /// Timeout in milliseconds (0 = the kernel's default).
    pub timeout_ms: u32,
}

impl NvmeAdminCmd {
    fn new(opcode: u8, nsid: u32) -> Self {
        NvmeAdminCmd {
            opcode,
            nsid,
            cdw10: 0,
            cdw11: 0,
            cdw12: 0,
            cdw13: 0,
            cdw14: 0,
            cdw15: 0,
            data: DataDir::None,
            timeout_ms: 0,
        }
    }

    /// Length of the data buffer.
    pub fn data_len(&self) -> u32 {
        self.data.len()
    }
}

/// Completion of an admin command: status field (SCT/SC, phase bit stripped)
/// and dword 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct NvmeCompletion {
    /// Status: bits 7:0 status code, bits 10:8 status code type, bit 14 DNR.
    pub status: u16,
    /// Command specific dword 0.
    pub result: u32,
}

/// Status codes used by Lethe (NVMe Base 2.0 figures 100-103).
pub mod sc {
    /// Generic: successful completion.
    pub const SUCCESS: u16 = 0x000;
    /// Generic: invalid opcode.
    pub const INVALID_OPCODE: u16 = 0x001;
    /// Generic: invalid field in command.
    pub const INVALID_FIELD: u16 = 0x002;
    /// Generic: sanitize failed.
    pub const SANITIZE_FAILED: u16 = 0x01C;
    /// Generic: sanitize in progress.
    pub const SANITIZE_IN_PROGRESS: u16 = 0x01D;
    /// Generic: namespace not ready.
    pub const NAMESPACE_NOT_READY: u16 = 0x082;
    /// Command specific: invalid format.
    pub const INVALID_FORMAT: u16 = 0x10A;
    /// Command specific: prohibited by command and feature lockdown / access denied.
    pub const ACCESS_DENIED: u16 = 0x286;
}

impl NvmeCompletion {
    /// True for a successful completion.
    pub fn is_success(&self) -> bool {
        self.status & 0x7FF == sc::SUCCESS
    }

    /// Status code type and code, bits 10:0.
    pub fn code(&self) -> u16 {
        self.status & 0x7FF
    }
}

/// Identify Controller (CNS 01h), 4096 bytes in.
pub fn identify_controller() -> NvmeAdminCmd {
    NvmeAdminCmd {
        cdw10: 1,
        data: DataDir::In(4096),
        ..NvmeAdminCmd::new(opcode::IDENTIFY, 0)
    }
}

/// Identify Namespace (CNS 00h) for `nsid`, 4096 bytes in.
pub fn identify_namespace(nsid: u32) -> NvmeAdminCmd {
    NvmeAdminCmd {
        data: DataDir::In(4096),
        ..NvmeAdminCmd::new(opcode::IDENTIFY, nsid)
    }
}

/// Get Log Page for `lid`, `len` bytes (a multiple of 4, at least 4), all namespaces.
/// NUMD = dwords - 1 is split into NUMDL (CDW10 31:16) and NUMDU (CDW11 15:0).
pub fn get_log_page(lid: u8, len: u32) -> Result<NvmeAdminCmd, BuildError> {
    if len < 4 || len % 4 != 0 {
        return Err(BuildError::OutOfRange(format!(
            "log length {len} must be a non-zero multiple of 4"
        )));
    }
    let numd = len / 4 - 1;
    Ok(NvmeAdminCmd {
        cdw10: (numd & 0xFFFF) << 16 | u32::from(lid),
        cdw11: numd >> 16,
        data: DataDir::In(len),
        ..NvmeAdminCmd::new(opcode::GET_LOG_PAGE, NSID_ALL)
    })
}

/// Decoded Get Log Page CDW10/11 (device side).
pub fn decode_get_log_page(c: &NvmeAdminCmd) -> (u8, u32) {
    let numd = (c.cdw10 >> 16) | (c.cdw11 & 0xFFFF) << 16;
    (
        (c.cdw10 & 0xFF) as u8,
        numd.saturating_add(1).saturating_mul(4),
    )
}

/// Secure Erase Settings of Format NVM (CDW10 bits 11:9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ses {
    /// 0: no secure erase. Never used for sanitization: it erases nothing.
    None,
    /// 1: User Data Erase.
    UserData,
    /// 2: Cryptographic Erase.
    Crypto,
}

impl Ses {
    fn bits(self) -> u32 {
        match self {
            Ses::None => 0,
            Ses::UserData => 1,
            Ses::Crypto => 2,
        }
    }
}

/// Format NVM parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatParams {
    /// LBA format index 0..=63 (bits 3:0 LBAF, 13:12 LBAFU).
    pub lbaf: u8,
    /// Secure erase setting.
    pub ses: Ses,
    /// Protection information type 0..=7 (bits 7:5).
    pub pi: u8,
    /// PI location first (bit 8).
    pub pil: bool,
    /// Metadata settings: extended LBA (bit 4).
    pub mset: bool,
}

/// Format NVM (80h). `nsid` is a namespace or [`NSID_ALL`].
pub fn format_nvm(
    nsid: u32,
    p: &FormatParams,
    timeout_ms: u32,
) -> Result<NvmeAdminCmd, BuildError> {
    if p.lbaf > 63 || p.pi > 7 {
        return Err(BuildError::OutOfRange(format!(
            "format LBAF {} (max 63) / PI {} (max 7)",
            p.lbaf, p.pi
        )));
    }
    let lbaf = u32::from(p.lbaf);
    let cdw10 = (lbaf & 0xF)
        | u32::from(p.mset) << 4
        | u32::from(p.pi) << 5
        | u32::from(p.pil) << 8
        | p.ses.bits() << 9
        | (lbaf >> 4) << 12;
    Ok(NvmeAdminCmd {
        cdw10,
        timeout_ms,
        ..NvmeAdminCmd::new(opcode::FORMAT_NVM, nsid)
    })
}

/// Decode Format NVM CDW10 (device side). Unknown SES values give `None`.
pub fn decode_format(cdw10: u32) -> Option<FormatParams> {
    let ses = match (cdw10 >> 9) & 0x7 {
        0 => Ses::None,
        1 => Ses::UserData,
        2 => Ses::Crypto,
        _ => return None,
    };
    Some(FormatParams {
        lbaf: ((cdw10 & 0xF) | ((cdw10 >> 12) & 0x3) << 4) as u8,
        ses,
        pi: ((cdw10 >> 5) & 0x7) as u8,
        pil: cdw10 & (1 << 8) != 0,
        mset: cdw10 & (1 << 4) != 0,
    })
}

/// Sanitize Action (CDW10 bits 2:0). The values start at 1: 0 is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SanitizeAction {
    /// 001b: Exit Failure Mode. Erases nothing.
    ExitFailureMode,
    /// 010b: Block Erase.
    BlockErase,
    /// 011b: Overwrite.
    Overwrite,
    /// 100b: Crypto Erase.
    CryptoErase,
}

impl SanitizeAction {
    /// The SANACT value (NVMe Base 2.0 figure 372).
    pub fn sanact(self) -> u32 {
        match self {
            SanitizeAction::ExitFailureMode => 1,
            SanitizeAction::BlockErase => 2,
            SanitizeAction::Overwrite => 3,
            SanitizeAction::CryptoErase => 4,
        }
    }

    /// Decode SANACT; reserved values give `None`.
    pub fn from_sanact(v: u32) -> Option<Self> {
        match v {
            1 => Some(SanitizeAction::ExitFailureMode),
            2 => Some(SanitizeAction::BlockErase),
            3 => Some(SanitizeAction::Overwrite),
            4 => Some(SanitizeAction::CryptoErase),
            _ => None,
        }
    }
}

/// Sanitize parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SanitizeParams {
    /// Action.
    pub action: SanitizeAction,
    /// Allow Unrestricted Sanitize Exit (bit 3).
    pub ause: bool,
    /// Overwrite passes 1..=16 (bits 7:4, 16 encoded as 0); ignored unless Overwrite.
    pub overwrite_passes: u8,
    /// Overwrite Invert Pattern Between Passes (bit 8).
    pub invert: bool,
    /// No-Deallocate After Sanitize (bit 9).
    pub no_dealloc: bool,
    /// Overwrite pattern (CDW11).
    pub pattern: u32,
}

/// Sanitize (84h). Applies to the whole NVM subsystem, so NSID is 0.
pub fn sanitize(p: &SanitizeParams) -> Result<NvmeAdminCmd, BuildError> {
    let mut cdw10 = p.action.sanact() | u32::from(p.ause) << 3 | u32::from(p.no_dealloc) << 9;
    let mut cdw11 = 0;
    if p.action == SanitizeAction::Overwrite {
        if !(1..=16).contains(&p.overwrite_passes) {
            return Err(BuildError::OutOfRange(format!(
                "overwrite passes must be 1..=16, got {}",
                p.overwrite_passes
            )));
        }
        cdw10 |= (u32::from(p.overwrite_passes) & 0xF) << 4 | u32::from(p.invert) << 8;
        cdw11 = p.pattern;
    }
    Ok(NvmeAdminCmd {
        cdw10,
        cdw11,
        ..NvmeAdminCmd::new(opcode::SANITIZE, 0)
    })
}

/// Decode Sanitize CDW10/11 (device side and SCDW10 echo).
pub fn decode_sanitize(cdw10: u32, cdw11: u32) -> Option<SanitizeParams> {
    let action = SanitizeAction::from_sanact(cdw10 & 0x7)?;
    let passes = match (cdw10 >> 4) & 0xF {
        0 => 16,
        n => n as u8,
    };
    Some(SanitizeParams {
        action,
        ause: cdw10 & (1 << 3) != 0,
        overwrite_passes: passes,
        invert: cdw10 & (1 << 8) != 0,
        no_dealloc: cdw10 & (1 << 9) != 0,
        pattern: cdw11,
    })
}

mod identify;
mod log;
pub use identify::{IdentifyController, IdentifyNamespace, LbaFormat, SaniCap};
pub use log::{SanitizeLog, SanitizeStatusCode, NO_ESTIMATE};

#[cfg(test)]
mod tests;
