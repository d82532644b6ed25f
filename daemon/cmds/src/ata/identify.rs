//! IDENTIFY DEVICE decoding (ACS-3 7.12.7, table 45).
//!
//! Words are little-endian; ATA strings hold two characters per word with the
//! first character in the high byte, so every word's bytes must be swapped.

use crate::{need, DecodeError};
use serde::{Deserialize, Serialize};

/// Length of the IDENTIFY DEVICE data.
pub const IDENTIFY_LEN: usize = 512;

/// A SECURITY ERASE UNIT time estimate (words 89/90).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EraseTime {
    /// The drive gives no estimate (word is 0).
    NotReported,
    /// Estimated minutes.
    Minutes(u32),
    /// More than this many minutes (the field's maximum value).
    MoreThan(u32),
}

impl EraseTime {
    /// Decode word 89 or 90. Bit 15 selects the ACS-3 extended format (bits 14:0);
    /// otherwise bits 7:0. Units are 2 minutes; the all-ones value means "more than".
    pub fn from_word(w: u16) -> Self {
        let (v, max) = if w & 0x8000 != 0 {
            (u32::from(w & 0x7FFF), 0x7FFF)
        } else {
            (u32::from(w & 0x00FF), 0xFF)
        };
        match v {
            0 => EraseTime::NotReported,
            v if v == max => EraseTime::MoreThan((v - 1) * 2),
            v => EraseTime::Minutes(v * 2),
        }
    }

    /// The estimate in minutes (for `MoreThan`, the value it exceeds), if any.
    pub fn minutes(&self) -> Option<u32> {
        match *self {
            EraseTime::NotReported => None,
            EraseTime::Minutes(m) | EraseTime::MoreThan(m) => Some(m),
        }
    }
}

/// Security feature set state (word 82 bit 1, word 128, words 89/90/92).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityStatus {
    /// Security feature set supported (word 82 bit 1 or word 128 bit 0).
    pub supported: bool,
    /// A user password is set (word 128 bit 1).
    pub enabled: bool,
    /// Media access is locked (word 128 bit 2).
    pub locked: bool,
    /// SECURITY FREEZE LOCK is in force (word 128 bit 3).
    pub frozen: bool,
    /// Five failed unlocks: needs a power cycle (word 128 bit 4).
    pub count_expired: bool,
    /// Enhanced erase supported (word 128 bit 5).
    pub enhanced_erase_supported: bool,
    /// Security level maximum (word 128 bit 8); high otherwise.
    pub level_max: bool,
    /// Normal erase time (word 89).
    pub erase_time: EraseTime,
    /// Enhanced erase time (word 90).
    pub enhanced_erase_time: EraseTime,
    /// Master password revision code (word 92; 0xFFFE = factory default).
    pub master_password_revision: u16,
}

/// SANITIZE feature set support (word 59, ACS-3 table 45).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SanitizeSupport {
    /// Bit 12: SANITIZE feature set supported.
    pub supported: bool,
    /// Bit 13: CRYPTO SCRAMBLE EXT supported.
    pub crypto_scramble: bool,
    /// Bit 14: OVERWRITE EXT supported.
    pub overwrite: bool,
    /// Bit 15: BLOCK ERASE EXT supported.
    pub block_erase: bool,
    /// Bit 10: SANITIZE ANTIFREEZE LOCK EXT supported.
    pub antifreeze_lock: bool,
}

/// Decoded IDENTIFY DEVICE data: what discovery and the policy need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifyDevice {
    /// Words 27-46.
    pub model: String,
    /// Words 10-19.
    pub serial: String,
    /// Words 23-26.
    pub firmware: String,
    /// Words 60-61: user-addressable sectors in 28-bit mode.
    pub lba28_sectors: u32,
    /// Words 100-103 when 48-bit addressing is supported (word 83 bit 10).
    pub lba48_sectors: Option<u64>,
    /// Logical sector size in bytes (words 106, 117-118); 512 when not reported.
    pub logical_sector_size: u32,
    /// Physical sector size in bytes (word 106 bits 13, 3:0).
    pub physical_sector_size: u32,
    /// True when word 106 is valid (the sizes were reported, not assumed).
    pub sector_sizes_reported: bool,
    /// Word 217: `None` not reported, `Some(1)` non-rotating, else rpm.
    pub rotation_rate: Option<u16>,
    /// Security feature set.
    pub security: SecurityStatus,
    /// SANITIZE feature set.
    pub sanitize: SanitizeSupport,
    /// HPA feature set supported (word 82 bit 10).
    pub hpa_supported: bool,
    /// HPA feature set enabled (word 85 bit 10).
    pub hpa_enabled: bool,
    /// DCO supported (word 83 bit 11).
    pub dco_supported: bool,
    /// Accessible Max Address Configuration supported (ACS-3): word 119 bit 8,
    /// with words 119-120 valid (word 86 bit 15) and word 119 bits 15:14 = 01b,
    /// the test openSeaChest's `ata_Get_Native_Max_LBA` makes. Such a drive
    /// takes 78h instead of READ NATIVE MAX / SET MAX.
    pub ama_supported: bool,
    /// DSM TRIM supported (word 169 bit 0).
    pub trim_supported: bool,
    /// Word 255 signature and checksum: `None` when no signature, else validity.
    pub checksum_valid: Option<bool>,
    /// Raw words, kept so certificates can carry the drive's own answer.
    pub words: Vec<u16>,
}

impl IdentifyDevice {
    /// Sectors the host can address: LBA48 count when supported, else LBA28.
    pub fn user_sectors(&self) -> u64 {
        self.lba48_sectors
            .filter(|&n| n != 0)
            .unwrap_or(u64::from(self.lba28_sectors))
    }

    /// Capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.user_sectors()
            .saturating_mul(u64::from(self.logical_sector_size))
    }

    /// True when word 217 says the device does not rotate (SSD).
    pub fn is_non_rotating(&self) -> bool {
        self.rotation_rate == Some(1)
    }
}

/// Decode an ATA string field: swap bytes within each word, trim spaces and NULs.
pub fn decode_string(b: &[u8]) -> String {
    let mut out = Vec::with_capacity(b.len());
    for pair in b.chunks(2) {
        if let [lo, hi] = pair {
            out.push(*hi);
            out.push(*lo);
        }
    }
    let s: String = out
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

/// Word 255 integrity (ACS-3 7.12.7.93): when the low byte is A5h, the sum of all
/// 512 bytes must be 0 mod 256. Returns `Ok(None)` when no signature is present.
pub(crate) fn check_integrity(what: &'static str, b: &[u8]) -> Result<Option<bool>, DecodeError> {
    need(what, b, 512)?;
    if b[510] != 0xA5 {
        return Ok(None);
    }
    let sum = b[..512].iter().fold(0u8, |a, &x| a.wrapping_add(x));
    if sum == 0 {
        Ok(Some(true))
    } else {
        Err(DecodeError::Invalid {
            what,
            detail: format!("word 255 checksum mismatch (sum {sum:#04x})"),
        })
    }
}

impl IdentifyDevice {
    /// Decode 512 bytes of IDENTIFY DEVICE data. A present-but-wrong word 255
    /// checksum is an error: the data cannot be trusted to drive an erase.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        need("IDENTIFY DEVICE", b, IDENTIFY_LEN)?;
        let checksum_valid = check_integrity("IDENTIFY DEVICE", b)?;
        let words: Vec<u16> = (0..256).map(|i| crate::le16(b, i * 2)).collect();
        let w = |i: usize| words[i];
        let lba48_sectors = (w(83) & (1 << 10) != 0).then(|| {
            u64::from(w(100))
                | u64::from(w(101)) << 16
                | u64::from(w(102)) << 32
                | u64::from(w(103)) << 48
        });
        // Word 106 is valid when bit 14 is one and bit 15 zero (ACS-3 7.12.7.58).
        let w106 = w(106);
        let sizes_valid = w106 & 0xC000 == 0x4000;
        let logical = if sizes_valid && w106 & (1 << 12) != 0 {
            // Words 117-118 count 16-bit words per logical sector.
            (u32::from(w(117)) | u32::from(w(118)) << 16).saturating_mul(2)
        } else {
            512
        };
        let logical = if logical == 0 { 512 } else { logical };
        let physical = if sizes_valid && w106 & (1 << 13) != 0 {
            logical
                .checked_shl(u32::from(w106 & 0xF))
                .unwrap_or(logical)
        } else {
            logical
        };
        let w128 = w(128);
        let security = SecurityStatus {
            supported: w(82) & 0x2 != 0 || w128 & 0x1 != 0,
            enabled: w128 & (1 << 1) != 0,
            locked: w128 & (1 << 2) != 0,
            frozen: w128 & (1 << 3) != 0,
            count_expired: w128 & (1 << 4) != 0,
            enhanced_erase_supported: w128 & (1 << 5) != 0,
            level_max: w128 & (1 << 8) != 0,
            erase_time: EraseTime::from_word(w(89)),
            enhanced_erase_time: EraseTime::from_word(w(90)),
            master_password_revision: w(92),
        };
        let w59 = w(59);
        let sanitize = SanitizeSupport {
            supported: w59 & (1 << 12) != 0,
            crypto_scramble: w59 & (1 << 13) != 0,
            overwrite: w59 & (1 << 14) != 0,
            block_erase: w59 & (1 << 15) != 0,
            antifreeze_lock: w59 & (1 << 10) != 0,
        };
        let rotation_rate = match w(217) {
            0 | 0xFFFF => None,
            r => Some(r),
        };
        // Words 82-87 are valid only when bit 15 is 0 and bit 14 is 1 (hdparm does the same).
        let valid = |x: u16| x & 0xC000 == 0x4000 || x & 0xC000 == 0;
        Ok(IdentifyDevice {
            model: decode_string(&b[54..94]),
            serial: decode_string(&b[20..40]),
            firmware: decode_string(&b[46..54]),
            lba28_sectors: u32::from(w(60)) | u32::from(w(61)) << 16,
            lba48_sectors,
            logical_sector_size: logical,
            physical_sector_size: physical,
            sector_sizes_reported: sizes_valid,
            rotation_rate,
            security,
            sanitize,
            hpa_supported: valid(w(82)) && w(82) & (1 << 10) != 0,
            hpa_enabled: w(85) & (1 << 10) != 0,
            dco_supported: w(83) & (1 << 11) != 0,
            ama_supported: w(86) & (1 << 15) != 0
                && w(119) & 0xC000 == 0x4000
                && w(119) & (1 << 8) != 0,
            trim_supported: w(169) & 1 != 0,
            checksum_valid,
            words,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Build IDENTIFY data from (word, value) pairs with a valid checksum.
    pub(crate) fn with_words(pairs: &[(usize, u16)]) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        for &(i, v) in pairs {
            b[i * 2..i * 2 + 2].copy_from_slice(&v.to_le_bytes());
        }
        b[510] = 0xA5;
        let sum = b[..511].iter().fold(0u8, |a, &x| a.wrapping_add(x));
        b[511] = 0u8.wrapping_sub(sum);
        b
    }

    #[test]
    fn erase_time_formats() {
        // ACS-3 7.12.7.42: bits 7:0 ×2 min; FFh = more than 508 minutes.
        assert_eq!(EraseTime::from_word(0x003C), EraseTime::Minutes(120));
        assert_eq!(EraseTime::from_word(0x00FF), EraseTime::MoreThan(508));
        assert_eq!(EraseTime::from_word(0), EraseTime::NotReported);
        // Extended format: bit 15 set, bits 14:0; 7FFFh = more than 65532 minutes.
        assert_eq!(EraseTime::from_word(0x8100), EraseTime::Minutes(512));
        assert_eq!(EraseTime::from_word(0xFFFF), EraseTime::MoreThan(65532));
    }

    #[test]
    fn strings_are_byte_swapped() {
        assert_eq!(decode_string(b"UFIJST U"), "FUJITSU");
        assert_eq!(decode_string(b"AB\0\0"), "BA");
    }

    #[test]
    fn security_and_sanitize_bits() {
        let b = with_words(&[
            (59, 0xF400),
            (82, 0x0402),
            (83, 0x4C00),
            (85, 0x0400),
            (128, 0x013F),
            (217, 1),
            (106, 0x6003),
            (100, 0x5000),
            (101, 0x0001),
        ]);
        let id = IdentifyDevice::decode(&b).unwrap_or_else(|e| panic!("{e}"));
        let s = id.security;
        assert!(s.supported && s.enabled && s.locked && s.frozen && s.count_expired);
        assert!(s.enhanced_erase_supported && s.level_max);
        assert_eq!(
            id.sanitize,
            SanitizeSupport {
                supported: true,
                crypto_scramble: true,
                overwrite: true,
                block_erase: true,
                antifreeze_lock: true
            }
        );
        assert!(id.hpa_supported && id.hpa_enabled && id.dco_supported);
        assert!(id.is_non_rotating());
        assert_eq!(id.lba48_sectors, Some(0x1_5000));
        assert_eq!(
            (id.logical_sector_size, id.physical_sector_size),
            (512, 4096)
        );
        assert_eq!(id.checksum_valid, Some(true));
    }

    #[test]
    fn accessible_max_address_needs_valid_words_119_120() {
        let ama = |w86: u16, w119: u16| {
            IdentifyDevice::decode(&with_words(&[(86, w86), (119, w119)]))
                .unwrap_or_else(|e| panic!("{e}"))
                .ama_supported
        };
        assert!(ama(0x8000, 0x4100));
        assert!(!ama(0x0000, 0x4100), "words 119-120 not valid");
        assert!(!ama(0x8000, 0xC100), "word 119 bits 15:14 = 11b");
        assert!(!ama(0x8000, 0x0100), "word 119 bits 15:14 = 00b");
        assert!(!ama(0x8000, 0x4000), "bit 8 clear");
    }

    #[test]
    fn large_logical_sectors_from_words_117_118() {
        let b = with_words(&[(106, 0x5000), (117, 2048)]);
        let id = IdentifyDevice::decode(&b).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id.logical_sector_size, 4096);
    }

    #[test]
    fn bad_checksum_is_rejected() {
        let mut b = with_words(&[(10, 0x4142)]);
        b[20] ^= 0xFF;
        assert!(IdentifyDevice::decode(&b).is_err());
        assert!(IdentifyDevice::decode(&b[..100]).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = IdentifyDevice::decode(&b);
        }

        #[test]
        fn lba48_round_trip(n in 0u64..(1 << 48)) {
            let b = with_words(&[(83, 0x4400), (100, n as u16), (101, (n >> 16) as u16), (102, (n >> 32) as u16)]);
            let id = IdentifyDevice::decode(&b).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(id.lba48_sectors, Some(n));
        }
    }
}
