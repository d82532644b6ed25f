//! ATA command model (ACS-3): register-level commands and their builders.
//!
//! An [`AtaCommand`] carries the 48-bit task-file registers plus the protocol and
//! data phase; the Linux layer wraps it in ATA PASS-THROUGH(16) (see
//! [`crate::scsi::ata_pass_through_16`]) and the simulator executes it directly.

mod identify;
mod sanitize;
mod security;

pub use identify::{
    decode_string, EraseTime, IdentifyDevice, SanitizeSupport, SecurityStatus, IDENTIFY_LEN,
};
pub use sanitize::{
    decode_overwrite_count, decode_sanitize_status, feature as sanitize_feature,
    sanitize_block_erase, sanitize_crypto_scramble, sanitize_freeze_lock, sanitize_overwrite,
    sanitize_status, SanitizeErrorReason, SanitizeState, SanitizeStatus, ANTIFREEZE_KEY,
    BLOCK_ERASE_KEY, CRYPTO_SCRAMBLE_KEY, FREEZE_LOCK_KEY, OVERWRITE_KEY,
};
pub use security::{
    decode_security_payload, erase_prepare, erase_unit, security_disable_password,
    security_freeze_lock, security_set_password, security_unlock, Password, PasswordId,
    SecurityLevel, SecurityPayload, PASSWORD_LEN,
};

use crate::DataDir;
use serde::{Deserialize, Serialize};

/// ATA command opcodes used by Lethe (ACS-3 table 30 onwards).
pub mod opcode {
    /// IDENTIFY DEVICE (ACS-3 7.12).
    pub const IDENTIFY_DEVICE: u8 = 0xEC;
    /// SANITIZE DEVICE family (ACS-3 7.36).
    pub const SANITIZE: u8 = 0xB4;
    /// DEVICE CONFIGURATION OVERLAY family (ACS-2 7.10).
    pub const DCO: u8 = 0xB1;
    /// SECURITY SET PASSWORD (ACS-3 7.45.8).
    pub const SECURITY_SET_PASSWORD: u8 = 0xF1;
    /// SECURITY UNLOCK (ACS-3 7.45.9).
    pub const SECURITY_UNLOCK: u8 = 0xF2;
    /// SECURITY ERASE PREPARE (ACS-3 7.45.4).
    pub const SECURITY_ERASE_PREPARE: u8 = 0xF3;
    /// SECURITY ERASE UNIT (ACS-3 7.45.5).
    pub const SECURITY_ERASE_UNIT: u8 = 0xF4;
    /// SECURITY FREEZE LOCK (ACS-3 7.45.6).
    pub const SECURITY_FREEZE_LOCK: u8 = 0xF5;
    /// SECURITY DISABLE PASSWORD (ACS-3 7.45.3).
    pub const SECURITY_DISABLE_PASSWORD: u8 = 0xF6;
    /// READ NATIVE MAX ADDRESS EXT (ATA8-ACS 7.34).
    pub const READ_NATIVE_MAX_EXT: u8 = 0x27;
    /// SET MAX ADDRESS EXT (ATA8-ACS 7.49).
    pub const SET_MAX_EXT: u8 = 0x37;
}

/// DCO feature codes (ACS-2 7.10, command B1h).
pub mod dco {
    /// DEVICE CONFIGURATION RESTORE.
    pub const RESTORE: u16 = 0xC0;
    /// DEVICE CONFIGURATION FREEZE LOCK.
    pub const FREEZE_LOCK: u16 = 0xC1;
    /// DEVICE CONFIGURATION IDENTIFY (512-byte PIO-in).
    pub const IDENTIFY: u16 = 0xC2;
}

/// ATA transport protocol of a command, as SAT's PROTOCOL field names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AtaProtocol {
    /// No data phase.
    NonData,
    /// PIO data-in (device to host).
    PioIn,
    /// PIO data-out (host to device).
    PioOut,
    /// DMA in either direction.
    Dma,
}

/// An ATA command: the 48-bit register set, protocol, data phase and timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AtaCommand {
    /// FEATURE (15:0).
    pub feature: u16,
    /// COUNT (15:0).
    pub count: u16,
    /// LBA (47:0); bits above 47 are ignored by every transport.
    pub lba: u64,
    /// DEVICE register (bit 6 = LBA mode).
    pub device: u8,
    /// COMMAND opcode.
    pub command: u8,
    /// Transport protocol.
    pub protocol: AtaProtocol,
    /// Data phase direction and length in bytes.
    pub data: DataDir,
    /// How long the transport waits before giving up, in milliseconds.
    pub timeout_ms: u32,
}

/// Timeout for commands that complete at once (IDENTIFY, status, prepare).
pub const SHORT_TIMEOUT_MS: u32 = 30_000;

/// Largest 48-bit LBA.
pub const LBA48_MAX: u64 = (1 << 48) - 1;

impl AtaCommand {
    /// True when the command needs 48-bit (EXT) register handling.
    pub fn is_ext(&self) -> bool {
        matches!(
            self.command,
            opcode::SANITIZE | opcode::READ_NATIVE_MAX_EXT | opcode::SET_MAX_EXT
        ) || self.lba > 0x0FFF_FFFF
            || self.count > 0xFF
            || self.feature > 0xFF
    }

    /// A non-data command with the LBA bit set in DEVICE.
    fn non_data(command: u8, feature: u16, count: u16, lba: u64) -> Self {
        AtaCommand {
            feature,
            count,
            lba: lba & LBA48_MAX,
            device: 0x40,
            command,
            protocol: AtaProtocol::NonData,
            data: DataDir::None,
            timeout_ms: SHORT_TIMEOUT_MS,
        }
    }
}

/// The task-file registers a device returns when a command completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct AtaRegisters {
    /// ERROR register.
    pub error: u8,
    /// COUNT (15:0).
    pub count: u16,
    /// LBA (47:0).
    pub lba: u64,
    /// DEVICE register.
    pub device: u8,
    /// STATUS register.
    pub status: u8,
}

/// STATUS register bits (ACS-3 6.2).
pub mod status {
    /// ERR: the command failed, see ERROR.
    pub const ERR: u8 = 0x01;
    /// DF: device fault.
    pub const DF: u8 = 0x20;
    /// DRDY: device ready.
    pub const DRDY: u8 = 0x40;
    /// BSY: device busy.
    pub const BSY: u8 = 0x80;
}

/// ERROR register bits (ACS-3 6.3).
pub mod error {
    /// ABRT: command aborted (unsupported, bad password, wrong state).
    pub const ABRT: u8 = 0x04;
    /// IDNF: address not found (beyond max LBA).
    pub const IDNF: u8 = 0x10;
    /// UNC: uncorrectable data.
    pub const UNC: u8 = 0x40;
}

impl AtaRegisters {
    /// Registers of a successful completion.
    pub fn ok() -> Self {
        AtaRegisters {
            status: status::DRDY,
            ..Default::default()
        }
    }

    /// Registers of an aborted command.
    pub fn aborted() -> Self {
        AtaRegisters {
            status: status::DRDY | status::ERR,
            error: error::ABRT,
            ..Default::default()
        }
    }

    /// True when the device reported an error or a fault.
    pub fn failed(&self) -> bool {
        self.status & (status::ERR | status::DF) != 0
    }

    /// True when the device aborted the command.
    pub fn is_abort(&self) -> bool {
        self.failed() && self.error & error::ABRT != 0
    }
}

/// IDENTIFY DEVICE (ECh): 512 bytes PIO-in.
pub fn identify_device() -> AtaCommand {
    AtaCommand {
        count: 1,
        protocol: AtaProtocol::PioIn,
        data: DataDir::In(512),
        ..AtaCommand::non_data(opcode::IDENTIFY_DEVICE, 0, 1, 0)
    }
}

/// READ NATIVE MAX ADDRESS EXT (27h): the native max LBA comes back in LBA.
pub fn read_native_max_ext() -> AtaCommand {
    AtaCommand::non_data(opcode::READ_NATIVE_MAX_EXT, 0, 0, 0)
}

/// SET MAX ADDRESS EXT (37h): set the accessible max LBA. `persistent` sets the
/// value-volatile bit (COUNT bit 0) so the setting survives a power cycle.
pub fn set_max_ext(max_lba: u64, persistent: bool) -> Result<AtaCommand, crate::BuildError> {
    if max_lba > LBA48_MAX {
        return Err(crate::BuildError::OutOfRange(format!(
            "max LBA {max_lba} exceeds 48 bits"
        )));
    }
    Ok(AtaCommand::non_data(
        opcode::SET_MAX_EXT,
        0,
        u16::from(persistent),
        max_lba,
    ))
}

/// DEVICE CONFIGURATION IDENTIFY (B1h/C2h): 512 bytes PIO-in.
pub fn dco_identify() -> AtaCommand {
    AtaCommand {
        protocol: AtaProtocol::PioIn,
        data: DataDir::In(512),
        ..AtaCommand::non_data(opcode::DCO, dco::IDENTIFY, 1, 0)
    }
}

/// DEVICE CONFIGURATION RESTORE (B1h/C0h): undo a DCO, exposing native capacity.
pub fn dco_restore() -> AtaCommand {
    AtaCommand::non_data(opcode::DCO, dco::RESTORE, 0, 0)
}

/// Decoded DEVICE CONFIGURATION IDENTIFY data (ACS-2 table 20): the max LBA
/// the overlay allows (words 3-6) and whether the checksum is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcoIdentify {
    /// Word 0: data structure revision (0x0002).
    pub revision: u16,
    /// Words 3-6: maximum LBA the device could report with DCO restored.
    pub max_lba: u64,
}

/// Decode DEVICE CONFIGURATION IDENTIFY data.
pub fn decode_dco_identify(b: &[u8]) -> Result<DcoIdentify, crate::DecodeError> {
    crate::need("DCO IDENTIFY", b, 512)?;
    identify::check_integrity("DCO IDENTIFY", &b[..512])?;
    Ok(DcoIdentify {
        revision: crate::le16(b, 0),
        max_lba: crate::le64(b, 6) & LBA48_MAX,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_is_pio_in_512() {
        let c = identify_device();
        assert_eq!(c.command, 0xEC);
        assert_eq!(c.protocol, AtaProtocol::PioIn);
        assert_eq!(c.data, DataDir::In(512));
        assert!(!c.is_ext());
    }

    #[test]
    fn set_max_rejects_over_48_bits_and_sets_vv() {
        assert!(set_max_ext(1 << 48, false).is_err());
        let c = set_max_ext(0x0012_3456_789A, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.command, c.count, c.lba), (0x37, 1, 0x0012_3456_789A));
        assert!(c.is_ext());
    }

    #[test]
    fn dco_commands() {
        assert_eq!(
            (dco_identify().command, dco_identify().feature),
            (0xB1, 0xC2)
        );
        assert_eq!(dco_restore().feature, 0xC0);
    }

    #[test]
    fn dco_identify_decodes_max_lba_and_checks_sum() {
        let mut b = [0u8; 512];
        b[0] = 2;
        b[6..12].copy_from_slice(&[0x30, 0x75, 0xF9, 0x0D, 0, 0]);
        b[510] = 0xA5;
        let sum = b[..511].iter().fold(0u8, |a, &x| a.wrapping_add(x));
        b[511] = 0u8.wrapping_sub(sum);
        let d = decode_dco_identify(&b).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.max_lba, 0x0DF9_7530);
        b[100] ^= 1;
        assert!(decode_dco_identify(&b).is_err());
    }

    #[test]
    fn registers_abort() {
        assert!(AtaRegisters::aborted().is_abort());
        assert!(!AtaRegisters::ok().failed());
    }
}
