//! ATA SANITIZE DEVICE feature set (ACS-3 7.36): B4h with a FEATURE code and
//! a key in LBA that guards against accidental issue.
//!
//! Sanitize commands return at once; the operation runs in the background and
//! survives power loss. Progress and outcome come from SANITIZE STATUS EXT.

use super::{opcode, AtaCommand, AtaRegisters, SHORT_TIMEOUT_MS};
use serde::{Deserialize, Serialize};

/// FEATURE codes (ACS-3 table 109).
pub mod feature {
    /// SANITIZE STATUS EXT.
    pub const STATUS_EXT: u16 = 0x0000;
    /// CRYPTO SCRAMBLE EXT.
    pub const CRYPTO_SCRAMBLE_EXT: u16 = 0x0011;
    /// BLOCK ERASE EXT.
    pub const BLOCK_ERASE_EXT: u16 = 0x0012;
    /// OVERWRITE EXT.
    pub const OVERWRITE_EXT: u16 = 0x0014;
    /// SANITIZE FREEZE LOCK EXT.
    pub const FREEZE_LOCK_EXT: u16 = 0x0020;
    /// SANITIZE ANTIFREEZE LOCK EXT.
    pub const ANTIFREEZE_LOCK_EXT: u16 = 0x0040;
}

/// LBA key of CRYPTO SCRAMBLE EXT: ASCII "Cryp" (ACS-3 7.36.3).
pub const CRYPTO_SCRAMBLE_KEY: u64 = 0x4372_7970;
/// LBA key of BLOCK ERASE EXT: ASCII "BkEr" (ACS-3 7.36.2).
pub const BLOCK_ERASE_KEY: u64 = 0x426B_4572;
/// LBA(47:32) key of OVERWRITE EXT: ASCII "OW" (ACS-3 7.36.5).
pub const OVERWRITE_KEY: u64 = 0x4F57;
/// LBA key of SANITIZE FREEZE LOCK EXT: ASCII "FrLk".
pub const FREEZE_LOCK_KEY: u64 = 0x4672_4C6B;
/// LBA key of SANITIZE ANTIFREEZE LOCK EXT: ASCII "Anti".
pub const ANTIFREEZE_KEY: u64 = 0x416E_7469;

/// COUNT bit 4: FAILURE MODE. Set = a failed sanitize can be cleared by SANITIZE
/// STATUS EXT with CLEAR SANITIZE OPERATION FAILED (unrestricted exit).
const FAILURE_MODE: u16 = 1 << 4;
/// COUNT bit 7 of OVERWRITE EXT: INVERT PATTERN BETWEEN OVERWRITE PASSES.
const OW_INVERT: u16 = 1 << 7;

fn sanitize(feature: u16, count: u16, lba: u64) -> AtaCommand {
    AtaCommand {
        timeout_ms: SHORT_TIMEOUT_MS,
        ..AtaCommand::non_data(opcode::SANITIZE, feature, count, lba)
    }
}

/// CRYPTO SCRAMBLE EXT.
pub fn sanitize_crypto_scramble(failure_mode: bool) -> AtaCommand {
    let c = if failure_mode { FAILURE_MODE } else { 0 };
    sanitize(feature::CRYPTO_SCRAMBLE_EXT, c, CRYPTO_SCRAMBLE_KEY)
}

/// BLOCK ERASE EXT.
pub fn sanitize_block_erase(failure_mode: bool) -> AtaCommand {
    let c = if failure_mode { FAILURE_MODE } else { 0 };
    sanitize(feature::BLOCK_ERASE_EXT, c, BLOCK_ERASE_KEY)
}

/// OVERWRITE EXT with `passes` in 1..=16 (the field encodes 16 as 0), the
/// 32-bit pattern in LBA(31:0) and the key in LBA(47:32).
pub fn sanitize_overwrite(
    passes: u8,
    pattern: u32,
    invert: bool,
    failure_mode: bool,
) -> Result<AtaCommand, crate::BuildError> {
    if !(1..=16).contains(&passes) {
        return Err(crate::BuildError::OutOfRange(format!(
            "OVERWRITE EXT passes must be 1..=16, got {passes}"
        )));
    }
    let mut count = u16::from(passes) & 0x0F;
    if invert {
        count |= OW_INVERT;
    }
    if failure_mode {
        count |= FAILURE_MODE;
    }
    Ok(sanitize(
        feature::OVERWRITE_EXT,
        count,
        OVERWRITE_KEY << 32 | u64::from(pattern),
    ))
}

/// SANITIZE STATUS EXT; `clear_failure` sets COUNT bit 0 (CLEAR SANITIZE OPERATION FAILED).
pub fn sanitize_status(clear_failure: bool) -> AtaCommand {
    sanitize(feature::STATUS_EXT, u16::from(clear_failure), 0)
}

/// SANITIZE FREEZE LOCK EXT (used by the simulator to model a BIOS lock).
pub fn sanitize_freeze_lock() -> AtaCommand {
    sanitize(feature::FREEZE_LOCK_EXT, 0, FREEZE_LOCK_KEY)
}

/// Decoded OVERWRITE EXT count field (device side).
pub fn decode_overwrite_count(count: u16) -> (u8, bool, bool) {
    let passes = match count & 0x0F {
        0 => 16,
        n => n as u8,
    };
    (passes, count & OW_INVERT != 0, count & FAILURE_MODE != 0)
}

/// Sanitize state as ACS-3 7.36.1 names it (SD0..SD4), inferred from STATUS EXT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SanitizeState {
    /// SD0/SD4: idle; the last sanitize (if any) completed without error.
    IdleCompleted,
    /// SD0 with no completion bit: idle, nothing to report.
    Idle,
    /// SD1: sanitize frozen.
    Frozen,
    /// SD2: sanitize in progress.
    InProgress,
    /// SD3: sanitize operation failed.
    Failed,
}

/// Reason code returned in LBA(7:0) when a sanitize command fails (ACS-3 table 110).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SanitizeErrorReason {
    /// 00h: no reason given.
    None,
    /// 01h: the last sanitize command completed in error.
    LastFailed,
    /// 02h: unsupported sanitize device command.
    Unsupported,
    /// 03h: device is in SD1 (frozen).
    Frozen,
    /// 04h: SANITIZE FREEZE LOCK EXT failed because antifreeze is set.
    AntifreezeLocked,
    /// Any other value.
    Other(u8),
}

impl SanitizeErrorReason {
    /// Decode LBA(7:0).
    pub fn from_code(c: u8) -> Self {
        match c {
            0 => SanitizeErrorReason::None,
            1 => SanitizeErrorReason::LastFailed,
            2 => SanitizeErrorReason::Unsupported,
            3 => SanitizeErrorReason::Frozen,
            4 => SanitizeErrorReason::AntifreezeLocked,
            x => SanitizeErrorReason::Other(x),
        }
    }

    /// Encode into LBA(7:0).
    pub fn code(self) -> u8 {
        match self {
            SanitizeErrorReason::None => 0,
            SanitizeErrorReason::LastFailed => 1,
            SanitizeErrorReason::Unsupported => 2,
            SanitizeErrorReason::Frozen => 3,
            SanitizeErrorReason::AntifreezeLocked => 4,
            SanitizeErrorReason::Other(x) => x,
        }
    }
}

/// Decoded SANITIZE STATUS EXT output (ACS-3 table 111).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SanitizeStatus {
    /// COUNT bit 15: SANITIZE OPERATION COMPLETED WITHOUT ERROR.
    pub completed_without_error: bool,
    /// COUNT bit 14: SANITIZE IN PROGRESS.
    pub in_progress: bool,
    /// COUNT bit 13: SANITIZE FROZEN.
    pub frozen: bool,
    /// COUNT bit 12: SANITIZE ANTIFREEZE.
    pub antifreeze: bool,
    /// LBA(15:0): progress, 0..=65535 out of 65536 (valid while in progress).
    pub progress: u16,
    /// The command itself failed (ERR set): sanitize operation failed (SD3).
    pub failed: bool,
    /// LBA(7:0) on error.
    pub reason: SanitizeErrorReason,
}

impl SanitizeStatus {
    /// The state this status implies. Idle devices report "completed" even when
    /// no sanitize ever ran, so the runner must also have seen `InProgress`.
    pub fn state(&self) -> SanitizeState {
        if self.failed {
            SanitizeState::Failed
        } else if self.in_progress {
            SanitizeState::InProgress
        } else if self.frozen {
            SanitizeState::Frozen
        } else if self.completed_without_error {
            SanitizeState::IdleCompleted
        } else {
            SanitizeState::Idle
        }
    }

    /// Progress as a fraction in [0, 1].
    pub fn fraction(&self) -> f64 {
        f64::from(self.progress) / 65536.0
    }

    /// Encode as the registers a device returns (used by the simulator).
    pub fn to_registers(&self) -> AtaRegisters {
        let mut r = if self.failed {
            AtaRegisters::aborted()
        } else {
            AtaRegisters::ok()
        };
        r.count = u16::from(self.completed_without_error) << 15
            | u16::from(self.in_progress) << 14
            | u16::from(self.frozen) << 13
            | u16::from(self.antifreeze) << 12;
        r.lba = if self.failed {
            u64::from(self.reason.code())
        } else {
            u64::from(self.progress)
        };
        r
    }
}

/// Decode the registers returned by SANITIZE STATUS EXT (or any sanitize command).
pub fn decode_sanitize_status(r: &AtaRegisters) -> SanitizeStatus {
    let failed = r.failed();
    SanitizeStatus {
        completed_without_error: r.count & (1 << 15) != 0,
        in_progress: r.count & (1 << 14) != 0,
        frozen: r.count & (1 << 13) != 0,
        antifreeze: r.count & (1 << 12) != 0,
        progress: if failed { 0 } else { (r.lba & 0xFFFF) as u16 },
        failed,
        reason: if failed {
            SanitizeErrorReason::from_code((r.lba & 0xFF) as u8)
        } else {
            SanitizeErrorReason::None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_are_the_ascii_the_spec_names() {
        assert_eq!(&(CRYPTO_SCRAMBLE_KEY as u32).to_be_bytes(), b"Cryp");
        assert_eq!(&(BLOCK_ERASE_KEY as u32).to_be_bytes(), b"BkEr");
        assert_eq!(&(OVERWRITE_KEY as u16).to_be_bytes(), b"OW");
        assert_eq!(&(FREEZE_LOCK_KEY as u32).to_be_bytes(), b"FrLk");
        assert_eq!(&(ANTIFREEZE_KEY as u32).to_be_bytes(), b"Anti");
    }

    #[test]
    fn commands_carry_feature_key_and_count() {
        let c = sanitize_crypto_scramble(true);
        assert_eq!(
            (c.command, c.feature, c.count, c.lba),
            (0xB4, 0x11, 0x10, 0x4372_7970)
        );
        let b = sanitize_block_erase(false);
        assert_eq!((b.feature, b.count, b.lba), (0x12, 0, 0x426B_4572));
        let o = sanitize_overwrite(16, 0xDEAD_BEEF, true, true).unwrap_or_else(|e| panic!("{e}"));
        // 16 passes encode as 0 in COUNT(3:0).
        assert_eq!((o.feature, o.count, o.lba), (0x14, 0x90, 0x4F57_DEAD_BEEF));
        assert!(sanitize_overwrite(0, 0, false, false).is_err());
        assert!(sanitize_overwrite(17, 0, false, false).is_err());
        assert_eq!(sanitize_status(true).count, 1);
    }

    #[test]
    fn status_states() {
        let mut r = AtaRegisters::ok();
        r.count = 0x4000;
        r.lba = 0x8000;
        let s = decode_sanitize_status(&r);
        assert_eq!(s.state(), SanitizeState::InProgress);
        assert!((s.fraction() - 0.5).abs() < 1e-9);
        r.count = 0x8000;
        assert_eq!(
            decode_sanitize_status(&r).state(),
            SanitizeState::IdleCompleted
        );
        r.count = 0x2000;
        assert_eq!(decode_sanitize_status(&r).state(), SanitizeState::Frozen);
        r.count = 0;
        assert_eq!(decode_sanitize_status(&r).state(), SanitizeState::Idle);
        let mut e = AtaRegisters::aborted();
        e.lba = 1;
        let s = decode_sanitize_status(&e);
        assert_eq!(
            (s.state(), s.reason),
            (SanitizeState::Failed, SanitizeErrorReason::LastFailed)
        );
    }

    proptest! {
        #[test]
        fn status_round_trip(c: bool, i: bool, f: bool, a: bool, p: u16, failed: bool, reason: u8) {
            let s = SanitizeStatus {
                completed_without_error: c, in_progress: i, frozen: f, antifreeze: a,
                progress: if failed { 0 } else { p }, failed,
                reason: if failed { SanitizeErrorReason::from_code(reason) } else { SanitizeErrorReason::None },
            };
            prop_assert_eq!(decode_sanitize_status(&s.to_registers()), s);
        }

        #[test]
        fn overwrite_count_round_trip(passes in 1u8..=16, inv: bool, fm: bool) {
            let c = sanitize_overwrite(passes, 0, inv, fm).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decode_overwrite_count(c.count), (passes, inv, fm));
        }
    }
}
