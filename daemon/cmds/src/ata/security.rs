//! ATA Security feature set commands (ACS-3 7.45) and their 512-byte payload.
//!
//! Payload layout (ACS-3 tables 59-63): word 0 control (bit 0 identifier
//! user/master, bit 1 enhanced erase, bit 8 security level maximum), words 1-16 the
//! 32-byte password, word 17 master password identifier (SET PASSWORD only).

use super::{opcode, AtaCommand, AtaProtocol, SHORT_TIMEOUT_MS};
use crate::{need, DataDir, DecodeError};
use serde::{Deserialize, Serialize};

/// Password length in bytes.
pub const PASSWORD_LEN: usize = 32;

/// A 32-byte ATA password, zero-padded (hdparm copies the text the same way).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Password(pub [u8; PASSWORD_LEN]);

impl Password {
    /// Pad `text` with NULs; longer text is an error.
    pub fn new(text: &[u8]) -> Result<Self, crate::BuildError> {
        if text.len() > PASSWORD_LEN {
            return Err(crate::BuildError::OutOfRange(format!(
                "ATA password is {} bytes, at most {PASSWORD_LEN}",
                text.len()
            )));
        }
        let mut p = [0u8; PASSWORD_LEN];
        p[..text.len()].copy_from_slice(text);
        Ok(Password(p))
    }
}

impl std::fmt::Debug for Password {
    // Passwords end up in logs through Debug; never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Which password a command names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PasswordId {
    /// The user password (word 0 bit 0 = 0).
    User,
    /// The master password (word 0 bit 0 = 1).
    Master,
}

/// Security level set with a user password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SecurityLevel {
    /// High: the master password can unlock.
    High,
    /// Maximum: the master password can only erase.
    Maximum,
}

/// A decoded security payload (what a device sees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityPayload {
    /// Which password.
    pub id: PasswordId,
    /// Enhanced erase requested (ERASE UNIT only).
    pub enhanced: bool,
    /// Security level (SET PASSWORD only).
    pub level: SecurityLevel,
    /// The password.
    pub password: Password,
    /// Master password identifier (SET PASSWORD with master only).
    pub master_revision: u16,
}

fn payload(id: PasswordId, control_extra: u16, pw: &Password, master_rev: u16) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    let control = u16::from(id == PasswordId::Master) | control_extra;
    b[0..2].copy_from_slice(&control.to_le_bytes());
    b[2..2 + PASSWORD_LEN].copy_from_slice(&pw.0);
    b[34..36].copy_from_slice(&master_rev.to_le_bytes());
    b
}

fn pio_out(command: u8, timeout_ms: u32) -> AtaCommand {
    AtaCommand {
        feature: 0,
        count: 1,
        lba: 0,
        device: 0x40,
        command,
        protocol: AtaProtocol::PioOut,
        data: DataDir::Out(512),
        timeout_ms,
    }
}

/// SECURITY SET PASSWORD (F1h) with its payload. For the master password,
/// `master_revision` must not be 0xFFFF (ACS-3 7.45.8.3).
pub fn security_set_password(
    id: PasswordId,
    level: SecurityLevel,
    pw: &Password,
    master_revision: u16,
) -> (AtaCommand, Vec<u8>) {
    let level_bit = if level == SecurityLevel::Maximum {
        1 << 8
    } else {
        0
    };
    let rev = if id == PasswordId::Master {
        master_revision
    } else {
        0
    };
    (
        pio_out(opcode::SECURITY_SET_PASSWORD, SHORT_TIMEOUT_MS),
        payload(id, level_bit, pw, rev),
    )
}

/// SECURITY UNLOCK (F2h).
pub fn security_unlock(id: PasswordId, pw: &Password) -> (AtaCommand, Vec<u8>) {
    (
        pio_out(opcode::SECURITY_UNLOCK, SHORT_TIMEOUT_MS),
        payload(id, 0, pw, 0),
    )
}

/// SECURITY DISABLE PASSWORD (F6h): clears the user password.
pub fn security_disable_password(id: PasswordId, pw: &Password) -> (AtaCommand, Vec<u8>) {
    (
        pio_out(opcode::SECURITY_DISABLE_PASSWORD, SHORT_TIMEOUT_MS),
        payload(id, 0, pw, 0),
    )
}

/// SECURITY ERASE PREPARE (F3h): must immediately precede ERASE UNIT.
pub fn erase_prepare() -> AtaCommand {
    AtaCommand::non_data(opcode::SECURITY_ERASE_PREPARE, 0, 0, 0)
}

/// SECURITY FREEZE LOCK (F5h). Lethe never sends it to a drive it erases; the
/// simulator uses it to model a BIOS that froze the drive.
pub fn security_freeze_lock() -> AtaCommand {
    AtaCommand::non_data(opcode::SECURITY_FREEZE_LOCK, 0, 0, 0)
}

/// SECURITY ERASE UNIT (F4h); `timeout_ms` comes from words 89/90.
pub fn erase_unit(
    id: PasswordId,
    enhanced: bool,
    pw: &Password,
    timeout_ms: u32,
) -> (AtaCommand, Vec<u8>) {
    (
        pio_out(opcode::SECURITY_ERASE_UNIT, timeout_ms),
        payload(id, u16::from(enhanced) << 1, pw, 0),
    )
}

/// Decode a security payload (the device side of F1h/F2h/F4h/F6h).
pub fn decode_security_payload(b: &[u8]) -> Result<SecurityPayload, DecodeError> {
    need("security payload", b, 512)?;
    let control = crate::le16(b, 0);
    let mut pw = [0u8; PASSWORD_LEN];
    pw.copy_from_slice(&b[2..2 + PASSWORD_LEN]);
    Ok(SecurityPayload {
        id: if control & 1 != 0 {
            PasswordId::Master
        } else {
            PasswordId::User
        },
        enhanced: control & 2 != 0,
        level: if control & (1 << 8) != 0 {
            SecurityLevel::Maximum
        } else {
            SecurityLevel::High
        },
        password: Password(pw),
        master_revision: crate::le16(b, 34),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pw(s: &str) -> Password {
        Password::new(s.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn set_password_layout() {
        // ACS-3 table 62: word 0 bit 0 identifier, bit 8 level; words 1-16 password.
        let (c, b) =
            security_set_password(PasswordId::Master, SecurityLevel::Maximum, &pw("p"), 0x0001);
        assert_eq!(
            (c.command, c.protocol, c.data),
            (0xF1, AtaProtocol::PioOut, DataDir::Out(512))
        );
        assert_eq!(&b[0..4], &[0x01, 0x01, b'p', 0x00]);
        assert_eq!(&b[34..36], &[0x01, 0x00]);
        assert_eq!(b.len(), 512);
    }

    #[test]
    fn erase_unit_enhanced_bit() {
        let (c, b) = erase_unit(PasswordId::User, true, &pw("lethe"), 7_200_000);
        assert_eq!((c.command, c.timeout_ms), (0xF4, 7_200_000));
        assert_eq!(b[0], 0x02);
        assert_eq!(&b[2..7], b"lethe");
        assert_eq!(erase_prepare().command, 0xF3);
        assert_eq!(security_unlock(PasswordId::User, &pw("x")).0.command, 0xF2);
        assert_eq!(
            security_disable_password(PasswordId::User, &pw("x"))
                .0
                .command,
            0xF6
        );
    }

    #[test]
    fn long_password_rejected_and_debug_hides_it() {
        assert!(Password::new(&[b'a'; 33]).is_err());
        assert_eq!(format!("{:?}", pw("secret")), "Password(..)");
    }

    proptest! {
        #[test]
        fn payload_round_trip(text in proptest::collection::vec(any::<u8>(), 0..=32), master: bool, enh: bool) {
            let p = Password::new(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let id = if master { PasswordId::Master } else { PasswordId::User };
            let (_, b) = erase_unit(id, enh, &p, 1);
            let d = decode_security_payload(&b).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(d.id, id);
            prop_assert_eq!(d.enhanced, enh);
            prop_assert_eq!(d.password, p);
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_security_payload(&b);
        }
    }
}
