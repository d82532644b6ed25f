//! Drive health (SMART) as plain command values and decoders, and the one
//! record that reaches the certificate: [`DriveHealth`].
//!
//! Each transport reports health its own way:
//!
//! - [`ata`]: SMART READ DATA (B0h/D0h), READ THRESHOLDS (B0h/D1h) and RETURN
//!   STATUS (B0h/DAh), ATA8-ACS 7.52 / ACS-3 7.44. Attributes are vendor
//!   defined; only the ids every vendor agrees on are interpreted.
//! - [`nvme`]: the SMART / Health Information log page (Get Log Page 02h, NVMe
//!   Base 2.0 figure 207), fully standard.
//! - [`scsi`]: LOG SENSE pages (SPC-5 7.3): error counters (02h/03h/05h),
//!   temperature (0Dh), start-stop cycles (0Eh), solid state media (11h),
//!   background scan (15h, power-on minutes), informational exceptions (2Fh);
//!   and the grown defect count from READ DEFECT DATA(10) (SBC-4 5.7).
//!
//! [`read`] sends these over a [`crate::io::DriveIo`], so the job library,
//! `lethe drives` and the software drive model share one code path. Every
//! decoder is pure and total: bad bytes give a [`crate::DecodeError`], never a panic.

pub mod ata;
pub mod nvme;
mod read;
pub mod scsi;

pub use read::{protocol_for_transport, read_health, HealthError, Protocol};

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a [`DriveHealth`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthSource {
    /// ATA SMART attributes, thresholds and RETURN STATUS.
    AtaSmart,
    /// NVMe SMART / Health Information log page 02h.
    NvmeSmartLog,
    /// SCSI LOG SENSE pages and READ DEFECT DATA.
    ScsiLogPages,
}

/// The drive's own verdict, plus what Lethe reads into the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assessment {
    /// The drive reports no problem and no counter shows media trouble.
    Passed,
    /// The drive still passes its own check, but counters show wear or media
    /// errors (reallocated or pending sectors, uncorrectable errors, wear at
    /// or past 100 %, a temperature warning). `notes` say which.
    Warning,
    /// The drive predicts its own failure (a SMART threshold exceeded, an
    /// NVMe critical warning, a SCSI failure prediction).
    Failing,
    /// The health data could not be judged.
    Unknown,
}

/// Drive health as read at the start of a job: the record a certificate
/// carries in `device.health` (docs/certificate.md §2).
///
/// Its serde form is part of the certificate format `lethe-certificate/1`:
/// every field is always present (`null` when the drive does not report it)
/// and fields may only ever be added as optional. Integers only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriveHealth {
    /// The command set the values came from.
    pub source: HealthSource,
    /// Overall assessment.
    pub assessment: Assessment,
    /// Power-on hours (ATA attribute 9, NVMe log, SCSI page 15h minutes / 60).
    pub power_on_hours: Option<u64>,
    /// Power cycles (ATA attribute 12, NVMe log, SCSI accumulated start-stop cycles).
    pub power_cycles: Option<u64>,
    /// Reallocated sectors (ATA attribute 5) or grown defects (SCSI).
    pub reallocated_sectors: Option<u64>,
    /// Sectors waiting to be reallocated (ATA attribute 197).
    pub pending_sectors: Option<u64>,
    /// Uncorrectable errors: ATA attributes 198 / 187, NVMe media and data
    /// integrity errors, SCSI total uncorrected read/write/verify errors.
    pub uncorrectable_errors: Option<u64>,
    /// Endurance used in percent (may exceed 100): NVMe and SCSI report it;
    /// for ATA it is derived from a vendor wear attribute (see `notes`).
    pub percentage_used: Option<u32>,
    /// Remaining spare capacity in percent (NVMe).
    pub available_spare_percent: Option<u32>,
    /// Current temperature in °C (never negative here: a drive below 0 °C reads 0).
    pub temperature_celsius: Option<u32>,
    /// How values were read and why the assessment is what it is.
    pub notes: Vec<String>,
}

impl DriveHealth {
    /// An empty record for `source` (every value unknown).
    pub fn empty(source: HealthSource) -> Self {
        DriveHealth {
            source,
            assessment: Assessment::Unknown,
            power_on_hours: None,
            power_cycles: None,
            reallocated_sectors: None,
            pending_sectors: None,
            uncorrectable_errors: None,
            percentage_used: None,
            available_spare_percent: None,
            temperature_celsius: None,
            notes: Vec::new(),
        }
    }

    /// Raise the assessment to at least `a` (never lowers it), noting why.
    pub(crate) fn raise(&mut self, a: Assessment, why: String) {
        if a != Assessment::Unknown
            && (self.assessment == Assessment::Unknown || a > self.assessment)
        {
            self.assessment = a;
        }
        self.notes.push(why);
    }

    /// Warnings every transport shares: media errors and wear.
    pub(crate) fn judge_counters(&mut self) {
        let counters = [
            ("reallocated sectors", self.reallocated_sectors),
            ("pending sectors", self.pending_sectors),
            ("uncorrectable errors", self.uncorrectable_errors),
        ];
        for (what, v) in counters {
            if let Some(n) = v.filter(|&n| n > 0) {
                self.raise(Assessment::Warning, format!("{n} {what}"));
            }
        }
        if let Some(p) = self.percentage_used.filter(|&p| p >= 100) {
            self.raise(Assessment::Warning, format!("{p}% of rated endurance used"));
        }
    }

    /// One line for tables: `passed · 1234 h · 0 realloc · 3% used`.
    pub fn summary(&self) -> String {
        let mut parts = vec![self.assessment.to_string()];
        if let Some(h) = self.power_on_hours {
            parts.push(format!("{h} h"));
        }
        if let Some(n) = self.reallocated_sectors {
            parts.push(format!("{n} realloc"));
        }
        if let Some(n) = self.pending_sectors {
            parts.push(format!("{n} pending"));
        }
        if let Some(n) = self.uncorrectable_errors {
            parts.push(format!("{n} uncorr"));
        }
        if let Some(p) = self.percentage_used {
            parts.push(format!("{p}% used"));
        }
        parts.join(" \u{b7} ")
    }
}

impl fmt::Display for Assessment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Assessment::Passed => "passed",
            Assessment::Warning => "warning",
            Assessment::Failing => "FAILING",
            Assessment::Unknown => "unknown",
        })
    }
}

impl fmt::Display for HealthSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthSource::AtaSmart => "ATA SMART attributes",
            HealthSource::NvmeSmartLog => "NVMe SMART / Health log (02h)",
            HealthSource::ScsiLogPages => "SCSI log pages",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assessment_only_rises_and_counters_warn() {
        let mut h = DriveHealth::empty(HealthSource::NvmeSmartLog);
        h.raise(Assessment::Passed, "drive reports no warning".into());
        assert_eq!(h.assessment, Assessment::Passed);
        h.raise(Assessment::Failing, "critical warning".into());
        h.raise(Assessment::Warning, "x".into());
        assert_eq!(h.assessment, Assessment::Failing);

        let mut h = DriveHealth::empty(HealthSource::AtaSmart);
        h.raise(Assessment::Passed, "ok".into());
        h.pending_sectors = Some(2);
        h.reallocated_sectors = Some(0);
        h.percentage_used = Some(101);
        h.judge_counters();
        assert_eq!(h.assessment, Assessment::Warning);
        assert!(
            h.notes.iter().any(|n| n == "2 pending sectors"),
            "{:?}",
            h.notes
        );
        assert!(!h.notes.iter().any(|n| n.contains("reallocated")));
        assert!(h.notes.iter().any(|n| n.contains("101%")));
        assert_eq!(
            h.summary(),
            "warning \u{b7} 0 realloc \u{b7} 2 pending \u{b7} 101% used"
        );
    }

    #[test]
    fn serde_form_is_snake_case_with_nulls() {
        let h = DriveHealth::empty(HealthSource::ScsiLogPages);
        let v = serde_json::to_value(&h).unwrap_or_default();
        assert_eq!(v["source"], "scsi_log_pages");
        assert_eq!(v["assessment"], "unknown");
        assert!(v["power_on_hours"].is_null());
        assert_eq!(v.as_object().map(|o| o.len()), Some(11));
    }
}
