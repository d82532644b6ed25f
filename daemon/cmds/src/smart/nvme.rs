//! NVMe SMART / Health Information log page (LID 02h, NVMe Base 2.0
//! figure 207), read for the whole controller (NSID FFFFFFFFh).
//!
//! | bytes | field |
//! |---|---|
//! | 0 | Critical Warning: bit 0 spare below threshold, 1 temperature, 2 reliability degraded, 3 read-only, 4 volatile backup failed, 5 PMR read-only |
//! | 2:1 | Composite Temperature, kelvin |
//! | 3 / 4 | Available Spare / Available Spare Threshold, percent |
//! | 5 | Percentage Used (may exceed 100) |
//! | 47:32 / 63:48 | Data Units Read / Written (thousands of 512-byte units) |
//! | 127:112 | Power Cycles |
//! | 143:128 | Power On Hours |
//! | 159:144 | Unsafe Shutdowns |
//! | 175:160 | Media and Data Integrity Errors |
//!
//! The 16-byte counters are little-endian; values beyond 64 bits saturate.

use super::{Assessment, DriveHealth, HealthSource};
use crate::nvme::{get_log_page, NvmeAdminCmd};
use crate::{need, BuildError, DecodeError};
use serde::{Deserialize, Serialize};

/// Log identifier of the SMART / Health Information log.
pub const LID_SMART: u8 = 0x02;
/// Length of the log page.
pub const SMART_LOG_LEN: u32 = 512;

/// Get Log Page 02h, 512 bytes, controller scope.
pub fn get_smart_log() -> Result<NvmeAdminCmd, BuildError> {
    get_log_page(LID_SMART, SMART_LOG_LEN)
}

/// The decoded fields Lethe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SmartLog {
    /// Critical Warning bits.
    pub critical_warning: u8,
    /// Composite temperature in kelvin (0 = not reported).
    pub temperature_k: u16,
    /// Available spare, percent.
    pub available_spare: u8,
    /// Available spare threshold, percent.
    pub spare_threshold: u8,
    /// Percentage used.
    pub percentage_used: u8,
    /// Data units written (thousands of 512-byte units).
    pub data_units_written: u64,
    /// Power cycles.
    pub power_cycles: u64,
    /// Power-on hours.
    pub power_on_hours: u64,
    /// Unsafe shutdowns.
    pub unsafe_shutdowns: u64,
    /// Media and data integrity errors.
    pub media_errors: u64,
}

fn le128_sat(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[off..off + 16]);
    u64::try_from(u128::from_le_bytes(a)).unwrap_or(u64::MAX)
}

impl SmartLog {
    /// Decode the first 512 bytes of the log.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        need("NVMe SMART / Health log", b, 512)?;
        Ok(SmartLog {
            critical_warning: b[0],
            temperature_k: u16::from_le_bytes([b[1], b[2]]),
            available_spare: b[3],
            spare_threshold: b[4],
            percentage_used: b[5],
            data_units_written: le128_sat(b, 48),
            power_cycles: le128_sat(b, 112),
            power_on_hours: le128_sat(b, 128),
            unsafe_shutdowns: le128_sat(b, 144),
            media_errors: le128_sat(b, 160),
        })
    }

    /// Encode as a 512-byte log page (the software drive model answers with it).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0] = self.critical_warning;
        b[1..3].copy_from_slice(&self.temperature_k.to_le_bytes());
        b[3] = self.available_spare;
        b[4] = self.spare_threshold;
        b[5] = self.percentage_used;
        for (off, v) in [
            (48, self.data_units_written),
            (112, self.power_cycles),
            (128, self.power_on_hours),
            (144, self.unsafe_shutdowns),
            (160, self.media_errors),
        ] {
            b[off..off + 16].copy_from_slice(&u128::from(v).to_le_bytes());
        }
        b
    }

    /// The certificate's health record.
    pub fn health(&self) -> DriveHealth {
        let mut h = DriveHealth::empty(HealthSource::NvmeSmartLog);
        h.power_on_hours = Some(self.power_on_hours);
        h.power_cycles = Some(self.power_cycles);
        h.uncorrectable_errors = Some(self.media_errors);
        h.percentage_used = Some(u32::from(self.percentage_used));
        h.available_spare_percent = Some(u32::from(self.available_spare));
        h.temperature_celsius =
            (self.temperature_k != 0).then(|| u32::from(self.temperature_k.saturating_sub(273)));
        const WARNINGS: [(u8, Assessment, &str); 6] = [
            (0x01, Assessment::Failing, "available spare below threshold"),
            (
                0x02,
                Assessment::Warning,
                "temperature outside its threshold",
            ),
            (
                0x04,
                Assessment::Failing,
                "reliability degraded by media errors",
            ),
            (0x08, Assessment::Failing, "media placed in read-only mode"),
            (0x10, Assessment::Failing, "volatile memory backup failed"),
            (
                0x20,
                Assessment::Failing,
                "persistent memory region read-only",
            ),
        ];
        if self.critical_warning == 0 {
            h.raise(Assessment::Passed, "critical warning: none".into());
        }
        for (bit, level, what) in WARNINGS {
            if self.critical_warning & bit != 0 {
                h.raise(level, format!("critical warning: {what}"));
            }
        }
        h.judge_counters();
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-written from figure 207: warning 0, 0x0141 K (321 K = 48 °C),
    /// spare 100 / threshold 10, 3 % used, power cycles 0x2A, power-on hours
    /// 0x04D2, media errors 0.
    #[test]
    fn decodes_a_hand_written_vector() {
        let mut b = vec![0u8; 512];
        b[1..6].copy_from_slice(&[0x41, 0x01, 100, 10, 3]);
        b[112] = 0x2A;
        b[128..130].copy_from_slice(&[0xD2, 0x04]);
        let log = SmartLog::decode(&b).unwrap_or_default();
        assert_eq!(log.temperature_k, 321);
        assert_eq!((log.power_cycles, log.power_on_hours), (42, 1234));
        assert_eq!(log.encode(), b);
        let h = log.health();
        assert_eq!(h.assessment, Assessment::Passed);
        assert_eq!(h.temperature_celsius, Some(48));
        assert_eq!(
            (h.percentage_used, h.available_spare_percent),
            (Some(3), Some(100))
        );
        assert_eq!(h.uncorrectable_errors, Some(0));
        assert!(SmartLog::decode(&b[..511]).is_err());
    }

    #[test]
    fn warnings_and_saturation() {
        let mut b = vec![0u8; 512];
        b[0] = 0x04 | 0x02;
        b[128..144].fill(0xFF);
        let h = SmartLog::decode(&b).unwrap_or_default().health();
        assert_eq!(h.assessment, Assessment::Failing);
        assert_eq!(h.power_on_hours, Some(u64::MAX));
        assert_eq!(h.temperature_celsius, None);
        assert!(h.notes.iter().any(|n| n.contains("reliability degraded")));
        let worn = SmartLog {
            percentage_used: 120,
            ..SmartLog::default()
        }
        .health();
        assert_eq!(worn.assessment, Assessment::Warning);
    }

    #[test]
    fn command_reads_lid_02_for_the_controller() {
        let c = get_smart_log().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(crate::nvme::decode_get_log_page(&c), (LID_SMART, 512));
        assert_eq!(c.nsid, crate::nvme::NSID_ALL);
    }
}
