//! SCSI command model (SPC-5, SBC-4, SAT-4): CDB builders and response decoders.

pub mod sat;
mod sense;
mod vpd;

pub use sat::{
    ata_outcome, ata_pass_through_16, decode_ata_pass_through_16, decode_fixed_ata,
    encode_fixed_ata, AtaOutcome, FixedAtaLayout, ATA_PASS_THROUGH_16,
};
pub use sense::{decode_ata_status_return, AnotherProgress, Sense, SenseFormat, SenseKey};
pub use vpd::{decode_inquiry, decode_vpd_80, decode_vpd_83, Designator, Inquiry};

use crate::{be16, be32, be64, need, BuildError, DataDir, DecodeError};
use serde::{Deserialize, Serialize};

/// A SCSI command descriptor block with its data phase and timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScsiCdb {
    /// CDB bytes; only the first `len` are sent.
    pub cdb: [u8; 16],
    /// CDB length: 6, 10, 12 or 16.
    pub len: u8,
    /// Data phase.
    pub data: DataDir,
    /// Timeout in milliseconds.
    pub timeout_ms: u32,
}

/// Opcodes (SPC-5 / SBC-4).
pub mod opcode {
    /// TEST UNIT READY.
    pub const TEST_UNIT_READY: u8 = 0x00;
    /// REQUEST SENSE.
    pub const REQUEST_SENSE: u8 = 0x03;
    /// INQUIRY.
    pub const INQUIRY: u8 = 0x12;
    /// SANITIZE.
    pub const SANITIZE: u8 = 0x48;
    /// SERVICE ACTION IN(16), READ CAPACITY(16) is service action 10h.
    pub const SERVICE_ACTION_IN_16: u8 = 0x9E;
    /// MAINTENANCE IN; REPORT SUPPORTED OPERATION CODES is service action 0Ch.
    pub const MAINTENANCE_IN: u8 = 0xA3;
    /// MODE SENSE(10).
    pub const MODE_SENSE_10: u8 = 0x5A;
    /// MODE SELECT(10).
    pub const MODE_SELECT_10: u8 = 0x55;
    /// READ(16).
    pub const READ_16: u8 = 0x88;
}

/// Page code of the Control mode page (SPC-5 7.5.10), which holds D_SENSE.
pub const CONTROL_MODE_PAGE: u8 = 0x0A;

/// MODE SENSE(10) of one page's current values, without block descriptors.
pub fn mode_sense_10(page: u8, alloc: u16) -> ScsiCdb {
    let [hi, lo] = alloc.to_be_bytes();
    ScsiCdb::new(
        &[
            opcode::MODE_SENSE_10,
            0x08,
            page & 0x3F,
            0,
            0,
            0,
            0,
            hi,
            lo,
            0,
        ],
        DataDir::In(u32::from(alloc)),
    )
}

/// MODE SELECT(10) of a `len`-byte parameter list (PF set, SP clear: the
/// change lasts until the next reset or power cycle and is never saved).
pub fn mode_select_10(len: u16) -> ScsiCdb {
    let [hi, lo] = len.to_be_bytes();
    ScsiCdb::new(
        &[opcode::MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, hi, lo, 0],
        DataDir::Out(u32::from(len)),
    )
}

/// From a MODE SENSE(10) answer holding the Control mode page: whether
/// D_SENSE is set, and the MODE SELECT(10) parameter list that sets it.
///
/// libata answers ATA PASS-THROUGH with fixed-format sense unless D_SENSE is
/// set, and fixed format cannot carry the upper ATA registers (sanitize status,
/// native max address): descriptor format is needed for those.
pub fn control_page_d_sense(resp: &[u8]) -> Result<(bool, Vec<u8>), DecodeError> {
    need("MODE SENSE(10) header", resp, 8)?;
    let bdl = usize::from(be16(resp, 6));
    let start = 8 + bdl;
    need("MODE SENSE(10) control page", resp, start + 2)?;
    let page = &resp[start..];
    if page[0] & 0x3F != CONTROL_MODE_PAGE {
        return Err(DecodeError::Invalid {
            what: "MODE SENSE(10)",
            detail: format!("page {:#04x} instead of the Control page", page[0] & 0x3F),
        });
    }
    let plen = usize::from(page[1]) + 2;
    need("MODE SENSE(10) control page", page, plen.max(3))?;
    let d_sense = page[2] & 0x04 != 0;
    // Header with mode data length 0 (reserved for MODE SELECT), no block
    // descriptors; the page with PS cleared and D_SENSE set.
    let mut list = vec![0u8; 8];
    list.extend_from_slice(&page[..plen]);
    list[8] &= 0x7F;
    list[10] |= 0x04;
    Ok((d_sense, list))
}

/// Service action of REPORT SUPPORTED OPERATION CODES within MAINTENANCE IN.
pub const REPORT_SUPPORTED_OPCODES_SA: u8 = 0x0C;

/// REPORT SUPPORTED OPERATION CODES for one opcode and service action
/// (SPC-5 6.35, REPORTING OPTIONS 010b), answered in the one_command format.
pub fn report_supported_opcode(op: u8, service_action: u16) -> ScsiCdb {
    let [sa_hi, sa_lo] = service_action.to_be_bytes();
    ScsiCdb::new(
        &[
            opcode::MAINTENANCE_IN,
            REPORT_SUPPORTED_OPCODES_SA,
            0x02,
            op,
            sa_hi,
            sa_lo,
            0,
            0,
            0,
            20,
            0,
            0,
        ],
        DataDir::In(20),
    )
}

/// SUPPORT field of the one_command parameter data (SPC-5 table 253).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpcodeSupport {
    /// 000b: the device cannot say.
    NotAvailable,
    /// 001b: not supported.
    NotSupported,
    /// 011b: supported as the standard defines it.
    Standard,
    /// 101b: supported in a vendor-specific way.
    VendorSpecific,
    /// Reserved values.
    Reserved(u8),
}

impl OpcodeSupport {
    /// True for the two "supported" values.
    pub fn is_supported(&self) -> bool {
        matches!(
            self,
            OpcodeSupport::Standard | OpcodeSupport::VendorSpecific
        )
    }
}

/// Decode the one_command answer of [`report_supported_opcode`].
pub fn decode_supported_opcode(b: &[u8]) -> Result<OpcodeSupport, DecodeError> {
    need("REPORT SUPPORTED OPERATION CODES", b, 2)?;
    Ok(match b[1] & 0x07 {
        0 => OpcodeSupport::NotAvailable,
        1 => OpcodeSupport::NotSupported,
        3 => OpcodeSupport::Standard,
        5 => OpcodeSupport::VendorSpecific,
        v => OpcodeSupport::Reserved(v),
    })
}

/// Default timeout for short commands.
pub const SHORT_TIMEOUT_MS: u32 = 30_000;

impl ScsiCdb {
    fn new(bytes: &[u8], data: DataDir) -> Self {
        let mut cdb = [0u8; 16];
        let n = bytes.len().min(16);
        cdb[..n].copy_from_slice(&bytes[..n]);
        ScsiCdb {
            cdb,
            len: n as u8,
            data,
            timeout_ms: SHORT_TIMEOUT_MS,
        }
    }

    /// The bytes that go on the wire.
    pub fn bytes(&self) -> &[u8] {
        &self.cdb[..usize::from(self.len.min(16))]
    }

    /// Opcode.
    pub fn opcode(&self) -> u8 {
        self.cdb[0]
    }
}

/// TEST UNIT READY.
pub fn test_unit_ready() -> ScsiCdb {
    ScsiCdb::new(&[opcode::TEST_UNIT_READY, 0, 0, 0, 0, 0], DataDir::None)
}

/// READ(16) of `blocks` logical blocks of `block_len` bytes from `lba` (SBC-4 5.16).
pub fn read_16(lba: u64, blocks: u32, block_len: u32) -> ScsiCdb {
    let mut c = [0u8; 16];
    c[0] = opcode::READ_16;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    ScsiCdb::new(&c, DataDir::In(blocks.saturating_mul(block_len)))
}

/// INQUIRY; `vpd` selects a VPD page (EVPD=1), else standard data.
pub fn inquiry(vpd: Option<u8>, alloc: u16) -> ScsiCdb {
    let [hi, lo] = alloc.to_be_bytes();
    let (evpd, page) = vpd.map_or((0, 0), |p| (1, p));
    ScsiCdb::new(
        &[opcode::INQUIRY, evpd, page, hi, lo, 0],
        DataDir::In(u32::from(alloc)),
    )
}

/// READ CAPACITY(16) with a 32-byte allocation.
pub fn read_capacity_16() -> ScsiCdb {
    let mut c = [0u8; 16];
    c[0] = opcode::SERVICE_ACTION_IN_16;
    c[1] = 0x10;
    c[13] = 32;
    ScsiCdb::new(&c, DataDir::In(32))
}

/// REQUEST SENSE; `descriptor` asks for descriptor-format sense (DESC bit).
pub fn request_sense(descriptor: bool) -> ScsiCdb {
    ScsiCdb::new(
        &[opcode::REQUEST_SENSE, u8::from(descriptor), 0, 0, 252, 0],
        DataDir::In(252),
    )
}

/// Decoded READ CAPACITY(16) data (SBC-4 5.20.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity16 {
    /// Last addressable LBA.
    pub last_lba: u64,
    /// Logical block length in bytes.
    pub block_len: u32,
    /// Logical blocks per physical block exponent.
    pub lbppbe: u8,
    /// Protection enabled.
    pub prot_en: bool,
    /// Logical block provisioning management enabled (thin / UNMAP).
    pub lbpme: bool,
}

impl Capacity16 {
    /// Capacity in bytes.
    pub fn bytes(&self) -> u64 {
        self.last_lba
            .saturating_add(1)
            .saturating_mul(u64::from(self.block_len))
    }

    /// Physical block size in bytes.
    pub fn physical_block(&self) -> u32 {
        self.block_len
            .checked_shl(u32::from(self.lbppbe))
            .unwrap_or(self.block_len)
    }
}

/// Decode READ CAPACITY(16) parameter data.
pub fn decode_read_capacity_16(b: &[u8]) -> Result<Capacity16, DecodeError> {
    need("READ CAPACITY(16)", b, 16)?;
    Ok(Capacity16 {
        last_lba: be64(b, 0),
        block_len: be32(b, 8),
        lbppbe: b[13] & 0x0F,
        prot_en: b[12] & 1 != 0,
        lbpme: b[14] & 0x80 != 0,
    })
}

/// SANITIZE service actions (SBC-4 5.30.1, table 99).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScsiSanitizeAction {
    /// 01h OVERWRITE with a parameter list.
    Overwrite {
        /// Passes 1..=31.
        count: u8,
        /// Invert between passes.
        invert: bool,
        /// Initialization pattern, 1..=(block length) bytes; here at most 512.
        pattern: [u8; 4],
    },
    /// 02h BLOCK ERASE.
    BlockErase,
    /// 03h CRYPTOGRAPHIC ERASE.
    CryptoErase,
    /// 1Fh EXIT FAILURE MODE.
    ExitFailureMode,
}

impl ScsiSanitizeAction {
    /// The service action code.
    pub fn code(&self) -> u8 {
        match self {
            ScsiSanitizeAction::Overwrite { .. } => 0x01,
            ScsiSanitizeAction::BlockErase => 0x02,
            ScsiSanitizeAction::CryptoErase => 0x03,
            ScsiSanitizeAction::ExitFailureMode => 0x1F,
        }
    }
}

/// SANITIZE (48h) CDB and its parameter list (empty unless OVERWRITE).
pub fn sanitize(
    action: &ScsiSanitizeAction,
    immed: bool,
    ause: bool,
) -> Result<(ScsiCdb, Vec<u8>), BuildError> {
    let mut param = Vec::new();
    if let ScsiSanitizeAction::Overwrite {
        count,
        invert,
        pattern,
    } = action
    {
        if !(1..=31).contains(count) {
            return Err(BuildError::OutOfRange(format!(
                "SCSI overwrite count must be 1..=31, got {count}"
            )));
        }
        // SBC-4 table 100: byte 0 INVERT(7) TEST(6:5) COUNT(4:0); bytes 2-3 pattern length.
        param.push(u8::from(*invert) << 7 | (count & 0x1F));
        param.push(0);
        param.extend_from_slice(&(pattern.len() as u16).to_be_bytes());
        param.extend_from_slice(pattern);
    }
    let [hi, lo] = (param.len() as u16).to_be_bytes();
    let byte1 = u8::from(immed) << 7 | u8::from(ause) << 5 | action.code();
    let data = if param.is_empty() {
        DataDir::None
    } else {
        DataDir::Out(param.len() as u32)
    };
    Ok((
        ScsiCdb::new(&[opcode::SANITIZE, byte1, 0, 0, 0, 0, 0, hi, lo, 0], data),
        param,
    ))
}

/// Decode a SANITIZE CDB and parameter list (device side): action, IMMED, AUSE.
pub fn decode_sanitize(cdb: &ScsiCdb, param: &[u8]) -> Option<(ScsiSanitizeAction, bool, bool)> {
    if cdb.opcode() != opcode::SANITIZE || cdb.len < 10 {
        return None;
    }
    let b1 = cdb.cdb[1];
    let action = match b1 & 0x1F {
        0x01 => {
            if param.len() < 5 {
                return None;
            }
            let ipl = usize::from(u16::from_be_bytes([param[2], param[3]]));
            let mut pattern = [0u8; 4];
            let n = ipl.min(4).min(param.len() - 4);
            pattern[..n].copy_from_slice(&param[4..4 + n]);
            let count = param[0] & 0x1F;
            if count == 0 || ipl == 0 {
                return None;
            }
            ScsiSanitizeAction::Overwrite {
                count,
                invert: param[0] & 0x80 != 0,
                pattern,
            }
        }
        0x02 => ScsiSanitizeAction::BlockErase,
        0x03 => ScsiSanitizeAction::CryptoErase,
        0x1F => ScsiSanitizeAction::ExitFailureMode,
        _ => return None,
    };
    Some((action, b1 & 0x80 != 0, b1 & 0x20 != 0))
}

#[cfg(test)]
mod tests;
