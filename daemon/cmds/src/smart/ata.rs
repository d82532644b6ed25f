//! ATA SMART (ATA8-ACS 7.52; ACS-3 7.44): READ DATA, READ THRESHOLDS and
//! RETURN STATUS.
//!
//! SMART commands are B0h with a FEATURE sub-command and the signature
//! 4Fh / C2h in LBA (15:8) / (23:16). READ DATA and READ THRESHOLDS return one
//! 512-byte sector each: a revision word, 30 entries of 12 bytes from byte 2,
//! and a checksum in byte 511 that makes the sum of all 512 bytes zero.
//!
//! Attribute entry (READ DATA): id, flags (u16 LE; bit 0 pre-failure), current
//! normalized value, worst, raw value (6 bytes LE), reserved.
//! Threshold entry: id, threshold, 10 reserved bytes.
//!
//! RETURN STATUS answers in the registers: LBA (23:8) = C24Fh when the drive is
//! fine, 2CF4h when a threshold is exceeded.

use super::{Assessment, DriveHealth, HealthSource};
use crate::ata::{AtaCommand, AtaProtocol, AtaRegisters, SHORT_TIMEOUT_MS};
use crate::{need, DataDir, DecodeError};
use serde::{Deserialize, Serialize};

/// SMART opcode.
pub const SMART: u8 = 0xB0;
/// FEATURE: SMART READ DATA.
pub const READ_DATA: u16 = 0xD0;
/// FEATURE: SMART READ ATTRIBUTE THRESHOLDS (obsolete in ACS, still answered widely).
pub const READ_THRESHOLDS: u16 = 0xD1;
/// FEATURE: SMART RETURN STATUS.
pub const RETURN_STATUS: u16 = 0xDA;
/// LBA (23:8) signature every SMART command carries.
pub const SIGNATURE_LBA: u64 = 0xC2_4F00;
/// LBA (23:8) of a RETURN STATUS answer when a threshold is exceeded.
pub const THRESHOLD_EXCEEDED_LBA: u64 = 0x2C_F400;

fn smart(feature: u16, data: DataDir) -> AtaCommand {
    AtaCommand {
        feature,
        count: u16::from(!data.is_empty()),
        lba: SIGNATURE_LBA,
        device: 0,
        command: SMART,
        protocol: if data.is_empty() {
            AtaProtocol::NonData
        } else {
            AtaProtocol::PioIn
        },
        data,
        timeout_ms: SHORT_TIMEOUT_MS,
    }
}

/// SMART READ DATA: 512 bytes PIO-in.
pub fn read_data() -> AtaCommand {
    smart(READ_DATA, DataDir::In(512))
}

/// SMART READ ATTRIBUTE THRESHOLDS: 512 bytes PIO-in.
pub fn read_thresholds() -> AtaCommand {
    smart(READ_THRESHOLDS, DataDir::In(512))
}

/// SMART RETURN STATUS: non-data, the answer is in the LBA registers.
pub fn return_status() -> AtaCommand {
    smart(RETURN_STATUS, DataDir::None)
}

/// The verdict in RETURN STATUS registers: `Some(true)` threshold exceeded,
/// `Some(false)` fine, `None` neither signature (the translator lost the registers).
pub fn decode_return_status(r: &AtaRegisters) -> Option<bool> {
    match r.lba & 0xFF_FF00 {
        SIGNATURE_LBA => Some(false),
        THRESHOLD_EXCEEDED_LBA => Some(true),
        _ => None,
    }
}

/// One SMART attribute with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    /// Attribute id (1-255).
    pub id: u8,
    /// Flags; bit 0 = pre-failure (a value at or below threshold predicts failure).
    pub flags: u16,
    /// Current normalized value (1-253, higher is better).
    pub current: u8,
    /// Worst normalized value seen.
    pub worst: u8,
    /// The 48-bit raw value (vendor-defined meaning).
    pub raw: u64,
    /// The threshold for this id, 0 when none (or thresholds were not read).
    pub threshold: u8,
}

impl Attribute {
    /// True for pre-failure (warranty) attributes.
    pub fn prefail(&self) -> bool {
        self.flags & 1 != 0
    }
    /// True when the normalized value is at or below a non-zero threshold.
    pub fn failing_now(&self) -> bool {
        self.threshold != 0 && self.current <= self.threshold
    }
    /// Raw value, lower 32 bits (counters and hours; vendors use the upper
    /// 16 bits for other things).
    pub fn raw32(&self) -> u64 {
        self.raw & 0xFFFF_FFFF
    }
}

fn check_sum(what: &'static str, b: &[u8]) -> Result<(), DecodeError> {
    need(what, b, 512)?;
    let sum = b[..512].iter().fold(0u8, |a, &x| a.wrapping_add(x));
    if sum != 0 {
        return Err(DecodeError::Invalid {
            what,
            detail: format!("checksum byte 511 is wrong (sum is {sum:#04x}, not 0)"),
        });
    }
    Ok(())
}

/// Decode SMART READ DATA, with thresholds when given. Entries with id 0 are
/// empty slots and are skipped.
pub fn decode(data: &[u8], thresholds: Option<&[u8]>) -> Result<Vec<Attribute>, DecodeError> {
    check_sum("SMART READ DATA", data)?;
    if let Some(t) = thresholds {
        check_sum("SMART READ THRESHOLDS", t)?;
    }
    let mut out = Vec::new();
    for e in data[2..362].chunks_exact(12) {
        if e[0] == 0 {
            continue;
        }
        let mut raw = [0u8; 8];
        raw[..6].copy_from_slice(&e[5..11]);
        let threshold = thresholds
            .and_then(|t| t[2..362].chunks_exact(12).find(|x| x[0] == e[0]))
            .map_or(0, |x| x[1]);
        out.push(Attribute {
            id: e[0],
            flags: u16::from_le_bytes([e[1], e[2]]),
            current: e[3],
            worst: e[4],
            raw: u64::from_le_bytes(raw),
            threshold,
        });
    }
    Ok(out)
}

fn finish_sector(mut b: Vec<u8>) -> Vec<u8> {
    let sum = b[..511].iter().fold(0u8, |a, &x| a.wrapping_add(x));
    b[511] = 0u8.wrapping_sub(sum);
    b
}

/// Encode attributes as a READ DATA sector (the software drive model answers with it).
pub fn encode_data(attrs: &[Attribute]) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[0] = 0x10;
    for (a, e) in attrs.iter().take(30).zip(b[2..362].chunks_exact_mut(12)) {
        e[0] = a.id;
        e[1..3].copy_from_slice(&a.flags.to_le_bytes());
        e[3] = a.current;
        e[4] = a.worst;
        e[5..11].copy_from_slice(&a.raw.to_le_bytes()[..6]);
    }
    finish_sector(b)
}

/// Encode the thresholds of `attrs` as a READ THRESHOLDS sector.
pub fn encode_thresholds(attrs: &[Attribute]) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[0] = 0x10;
    for (a, e) in attrs.iter().take(30).zip(b[2..362].chunks_exact_mut(12)) {
        e[0] = a.id;
        e[1] = a.threshold;
    }
    finish_sector(b)
}

/// Power-on hours above this (about 23 years) are a vendor encoding
/// (minutes, seconds, packed fields), not hours.
pub const MAX_PLAUSIBLE_HOURS: u64 = 200_000;

/// Attribute ids whose normalized value is "percent of life remaining" on
/// the vendors that define them: 177 Samsung Wear_Leveling_Count, 231
/// SSD_Life_Left, 233 Intel Media_Wearout_Indicator, 202 Micron/Crucial
/// Percent_Lifetime_Remain. The first one present is used.
pub const WEAR_IDS: [u8; 4] = [233, 177, 231, 202];

/// Turn attributes (and the RETURN STATUS verdict, when it could be read)
/// into a [`DriveHealth`]. `rotational` drives ignore the wear attributes
/// (on disks those ids mean other things).
pub fn health(
    attrs: &[Attribute],
    threshold_exceeded: Option<bool>,
    rotational: bool,
) -> DriveHealth {
    let mut h = DriveHealth::empty(HealthSource::AtaSmart);
    let get = |id: u8| attrs.iter().find(|a| a.id == id);
    h.power_on_hours = get(9).map(Attribute::raw32);
    if let Some(hours) = h.power_on_hours.filter(|&v| v > MAX_PLAUSIBLE_HOURS) {
        h.power_on_hours = None;
        h.notes.push(format!(
            "attribute 9 raw value {hours} is not plausible as hours (a vendor encoding); not reported"
        ));
    }
    if !attrs.is_empty() {
        h.notes
            .push("counters are the lower 32 bits of the 48-bit raw values".into());
    }
    h.power_cycles = get(12).map(Attribute::raw32);
    h.reallocated_sectors = get(5).map(Attribute::raw32);
    h.pending_sectors = get(197).map(Attribute::raw32);
    h.uncorrectable_errors = get(198).or_else(|| get(187)).map(Attribute::raw32);
    h.temperature_celsius = get(194).or_else(|| get(190)).map(|a| (a.raw & 0xFF) as u32);
    if !rotational {
        if let Some(a) = WEAR_IDS
            .iter()
            .find_map(|&id| get(id))
            .filter(|a| a.current <= 100)
        {
            h.percentage_used = Some(100 - u32::from(a.current));
            h.notes.push(format!(
                "endurance used derived from vendor attribute {} (normalized value {} of 100 remaining)",
                a.id, a.current
            ));
        }
    }
    match threshold_exceeded {
        Some(true) => h.raise(
            Assessment::Failing,
            "SMART RETURN STATUS: threshold exceeded (the drive predicts its failure)".into(),
        ),
        Some(false) => h.raise(Assessment::Passed, "SMART RETURN STATUS: passed".into()),
        None => h
            .notes
            .push("SMART RETURN STATUS could not be read; judged from attributes".into()),
    }
    for a in attrs.iter().filter(|a| a.failing_now()) {
        let (level, kind) = if a.prefail() {
            (Assessment::Failing, "pre-failure")
        } else {
            (Assessment::Warning, "old-age")
        };
        h.raise(
            level,
            format!(
                "{kind} attribute {} at {} is at or below its threshold {}",
                a.id, a.current, a.threshold
            ),
        );
    }
    if h.assessment == Assessment::Unknown && !attrs.is_empty() {
        h.raise(
            Assessment::Passed,
            "no attribute at or below its threshold".into(),
        );
    }
    h.judge_counters();
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(id: u8, flags: u16, current: u8, raw: u64, threshold: u8) -> Attribute {
        Attribute {
            id,
            flags,
            current,
            worst: current,
            raw,
            threshold,
        }
    }

    /// A READ DATA sector written out by hand from ATA8-ACS table 52's layout:
    /// attribute 9 (power-on hours) with raw 0x0000_0000_1234, attribute 5
    /// with raw 3, current 100 / threshold 36 (pre-failure).
    #[test]
    fn decodes_a_hand_written_vector() {
        let mut d = vec![0u8; 512];
        d[0] = 0x10;
        // id 5: flags 0x0033, current 100, worst 100, raw 3.
        d[2..14].copy_from_slice(&[5, 0x33, 0x00, 100, 100, 3, 0, 0, 0, 0, 0, 0]);
        // id 9: flags 0x0032, current 97, worst 97, raw 0x1234.
        d[14..26].copy_from_slice(&[9, 0x32, 0x00, 97, 97, 0x34, 0x12, 0, 0, 0, 0, 0]);
        let sum = d[..511].iter().fold(0u8, |a, &x| a.wrapping_add(x));
        d[511] = 0u8.wrapping_sub(sum);
        let mut t = vec![0u8; 512];
        t[0] = 0x10;
        t[2..4].copy_from_slice(&[5, 36]);
        t[14..16].copy_from_slice(&[9, 0]);
        let sum = t[..511].iter().fold(0u8, |a, &x| a.wrapping_add(x));
        t[511] = 0u8.wrapping_sub(sum);

        let a = decode(&d, Some(&t)).unwrap_or_default();
        assert_eq!(
            a,
            vec![attr(5, 0x33, 100, 3, 36), attr(9, 0x32, 97, 0x1234, 0)]
        );
        assert_eq!(encode_data(&a), d);
        assert_eq!(encode_thresholds(&a), t);
        let h = health(&a, Some(false), true);
        assert_eq!(h.power_on_hours, Some(0x1234));
        assert_eq!(h.reallocated_sectors, Some(3));
        assert_eq!(h.assessment, Assessment::Warning, "{:?}", h.notes);

        d[100] ^= 1;
        assert!(matches!(decode(&d, None), Err(DecodeError::Invalid { .. })));
        assert!(matches!(
            decode(&d[..300], None),
            Err(DecodeError::Short { .. })
        ));
    }

    #[test]
    fn thresholds_and_return_status_decide() {
        let ok = [attr(9, 0x32, 100, 10, 0), attr(5, 0x33, 100, 0, 36)];
        assert_eq!(
            health(&ok, Some(false), true).assessment,
            Assessment::Passed
        );
        assert_eq!(health(&ok, None, true).assessment, Assessment::Passed);
        assert_eq!(
            health(&ok, Some(true), true).assessment,
            Assessment::Failing
        );
        let prefail = [attr(5, 0x33, 30, 900, 36)];
        assert_eq!(
            health(&prefail, Some(false), true).assessment,
            Assessment::Failing
        );
        let oldage = [attr(194, 0x22, 20, 45, 25)];
        let h = health(&oldage, Some(false), true);
        assert_eq!(
            (h.assessment, h.temperature_celsius),
            (Assessment::Warning, Some(45))
        );
        assert_eq!(health(&[], None, true).assessment, Assessment::Unknown);
    }

    #[test]
    fn wear_only_on_flash() {
        let a = [attr(233, 0x32, 97, 0, 0)];
        assert_eq!(health(&a, None, false).percentage_used, Some(3));
        assert_eq!(health(&a, None, true).percentage_used, None);
    }

    #[test]
    fn commands_and_return_status_registers() {
        let c = read_data();
        assert_eq!(
            (c.command, c.feature, c.lba, c.data),
            (0xB0, 0xD0, 0xC2_4F00, DataDir::In(512))
        );
        assert_eq!(read_thresholds().feature, 0xD1);
        let s = return_status();
        assert_eq!(
            (s.feature, s.protocol, s.data),
            (0xDA, AtaProtocol::NonData, DataDir::None)
        );
        let regs = |lba| AtaRegisters {
            lba,
            ..AtaRegisters::ok()
        };
        assert_eq!(decode_return_status(&regs(0xC2_4F00)), Some(false));
        assert_eq!(decode_return_status(&regs(0x2C_F400)), Some(true));
        assert_eq!(decode_return_status(&regs(0)), None);
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = decode(&b, Some(&b));
        }
    }
}
