//! ATA command model (ACS-3): register-level commands and their builders.
//!
//! An [`AtaCommand`] carries the 48-bit task-file registers plus the protocol and
//! data phase; the Linux layer wraps it in ATA PASS-THROUGH(16) (see
//! [`crate::scsi::ata_pass_through_16`]) and the simulator executes it directly.

mod hidden;
mod identify;
mod rw;
mod sanitize;
mod security;

pub use hidden::{
    ama, dco_identify, dco_restore, decode_dco_identify, freeze_accessible_max_address_ext,
    get_native_max_address_ext, native_max_lba, read_native_max_ext,
    set_accessible_max_address_ext, set_max_ext, DcoIdentify, HiddenAreaFeature,
};
pub use rw::{read_sectors_ext, write_sectors_ext, MAX_PIO_SECTORS};

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
    /// ACCESSIBLE MAX ADDRESS CONFIGURATION (ACS-3 7.7): GET NATIVE MAX /
    /// SET ACCESSIBLE MAX / FREEZE ACCESSIBLE MAX ADDRESS EXT by FEATURE.
    pub const ACCESSIBLE_MAX_ADDRESS: u8 = 0x78;
    /// READ SECTORS EXT (ACS-3 7.28), PIO data-in.
    pub const READ_SECTORS_EXT: u8 = 0x24;
    /// WRITE SECTORS EXT (ACS-3 7.63), PIO data-out.
    pub const WRITE_SECTORS_EXT: u8 = 0x34;
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
            opcode::SANITIZE
                | opcode::READ_NATIVE_MAX_EXT
                | opcode::SET_MAX_EXT
                | opcode::ACCESSIBLE_MAX_ADDRESS
                | opcode::READ_SECTORS_EXT
                | opcode::WRITE_SECTORS_EXT
        ) || self.lba > 0x0FFF_FFFF
            || self.count > 0xFF
            || self.feature > 0xFF
    }

    /// True when the command's result is in the output registers (native max
    /// address, sanitize status): an answer without complete registers cannot
    /// be used and must be an error, never read as zeros.
    pub fn returns_registers(&self) -> bool {
        match self.command {
            opcode::READ_NATIVE_MAX_EXT | opcode::SANITIZE => true,
            opcode::ACCESSIBLE_MAX_ADDRESS => self.feature == ama::GET_NATIVE_MAX,
            _ => false,
        }
    }

    /// True for a read-only query whose answer is in the registers (native
    /// max address, SANITIZE STATUS EXT): safe to send again.
    pub fn is_status_query(&self) -> bool {
        match self.command {
            opcode::READ_NATIVE_MAX_EXT => true,
            opcode::SANITIZE => self.feature == sanitize_feature::STATUS_EXT,
            opcode::ACCESSIBLE_MAX_ADDRESS => self.feature == ama::GET_NATIVE_MAX,
            _ => false,
        }
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
    fn registers_abort() {
        assert!(AtaRegisters::aborted().is_abort());
        assert!(!AtaRegisters::ok().failed());
    }
}
