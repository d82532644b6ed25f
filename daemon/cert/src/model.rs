//! The certificate body: what was sanitized, how, how it was checked, and by whom.
//!
//! Field set follows NIST SP 800-88 Rev.1 §4.8 / Appendix G ("Certificate of
//! Sanitization") and the IEEE 2883 vocabulary (Clear / Purge / Destroy, the
//! technique, the verification). Only strings, integers, booleans, arrays and
//! objects appear — never floats — so the canonical JSON is exact. Every field
//! of the first version is always serialized: an absent optional value is
//! written as `null`, never omitted, so the layout is fixed and independent
//! verifiers can rely on it. Fields added later (`method.requested_level`,
//! `method.drive_command`, `verification.detail`, `verification.attestation`,
//! `device.health`) are left out when absent, so older certificates verify
//! byte for byte.
//!
//! [`ResultStatus`] is the typed result the job library sets; see its table
//! for the mapping from job outcomes. [`CertificateBody::validate`] holds the
//! format and consistency rules (checked when signing and verifying), and
//! [`CertificateBody::settled`] lowers a status its evidence does not support.
//! Enums serialize as `snake_case` strings; their `Display` is a human label
//! for the PDF and summaries.

pub use lethe_cmds::smart::{Assessment as HealthAssessment, DriveHealth, HealthSource};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Value of [`CertificateBody::format`] for this version of the format.
pub const FORMAT: &str = "lethe-certificate/1";

/// The signed content of a certificate of sanitization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateBody {
    /// Always [`FORMAT`] (`"lethe-certificate/1"`).
    pub format: String,
    /// Certificate id (the job id): 1-128 chars of `[A-Za-z0-9._-]`, not starting with `.`.
    pub id: String,
    /// When the certificate was issued, RFC 3339 UTC (`2026-11-23T14:05:00Z`).
    pub issued_at: String,
    /// The appliance that performed the sanitization (NIST: location).
    pub appliance: Appliance,
    /// The tool and its version (NIST: "Tool Used (including version)").
    pub tool: Tool,
    /// The sanitized media (NIST: manufacturer, model, serial, media type).
    pub device: Device,
    /// Sanitization category and technique (NIST: description and method used).
    pub method: Method,
    /// How the result was verified (NIST: verification method).
    pub verification: Verification,
    /// Who ran the job (NIST: name/position, signature).
    pub operator: Operator,
    /// Start, end and duration of the job.
    pub timing: Timing,
    /// Customer (data owner) the media belongs to, if recorded.
    pub customer: Option<String>,
    /// Organizationally assigned asset / property number, if recorded.
    pub asset_tag: Option<String>,
    /// NIST "Media Source" (user or computer the media came from), if recorded.
    pub media_source: Option<String>,
    /// NIST "Post-Sanitization Destination", if recorded.
    pub destination: Option<Destination>,
    /// Outcome: status, bytes written, failed ranges, messages.
    pub result: Outcome,
    /// Job history: started, interrupted, resumed, completed...
    pub events: Vec<Event>,
}

/// The appliance that issued the certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appliance {
    /// Stable appliance id (e.g. `/etc/machine-id` or a configured name).
    pub id: String,
    /// Host name at the time of the job.
    pub hostname: String,
    /// Physical location / site, if configured.
    pub location: Option<String>,
}

/// The sanitization tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// Always `"lethe"` for certificates made by this project.
    pub name: String,
    /// Tool version (`CARGO_PKG_VERSION` of the CLI).
    pub version: String,
}

impl Default for Tool {
    fn default() -> Self {
        Tool {
            name: "lethe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Identity and geometry of the sanitized media.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Manufacturer, when the drive reports one.
    pub manufacturer: Option<String>,
    /// Model string.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// World wide name, if any (empty string when the drive has none).
    pub wwn: String,
    /// Firmware revision.
    pub firmware: String,
    /// Capacity in bytes.
    pub capacity_bytes: u64,
    /// Logical sector size in bytes.
    pub logical_sector_size: u32,
    /// Physical sector size in bytes.
    pub physical_sector_size: u32,
    /// Magnetic, flash, hybrid or unknown.
    pub media_type: MediaType,
    /// Bus: `sata`, `sas`, `nvme`, `usb`, `mmc`, `virtio`, `loop`...
    pub transport: String,
    /// Kernel path at the time of the job, e.g. `/dev/sdb`.
    pub path: String,
    /// Stable identifier used by the appliance (e.g. by-id name).
    pub stable_id: String,
    /// Hidden areas (HPA/DCO) status, e.g. "none", "HPA removed", "not checked (USB bridge)".
    pub hidden_areas: Option<String>,
    /// Drive health (SMART / NVMe health log / SCSI log pages) read before
    /// the job wrote anything. Optional: left out when not read, so
    /// certificates issued before it existed verify unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<DriveHealth>,
}

/// Storage medium family (NIST "Media Type").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    /// Spinning disk.
    Magnetic,
    /// SSD, NVMe, USB stick, memory card.
    Flash,
    /// SSHD.
    Hybrid,
    /// Could not be determined.
    #[default]
    Unknown,
}

/// The sanitization performed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Method {
    /// Clear, Purge or Destroy.
    pub category: Category,
    /// Technique: `overwrite`, `block_erase`, `crypto_erase`, `ata_secure_erase`...
    pub technique: String,
    /// Pattern written, e.g. `random (AES-128-CTR stream)` or `0x00`.
    pub pattern: String,
    /// Number of overwrite passes (0 for firmware commands without passes).
    pub passes: u32,
    /// Whether a final zero pass was written.
    pub final_blank: bool,
    /// Standard followed, e.g. `NIST SP 800-88 Rev.1`.
    pub standard: String,
    /// Why this method was chosen.
    pub reason: String,
    /// The level the operator asked for, when a job reached a different one
    /// (a Purge request that ended in a Clear overwrite) or ran a drive command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_level: Option<Category>,
    /// The drive-native command, for firmware sanitize methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drive_command: Option<DriveCommand>,
}

/// A drive-native sanitize command and the drive's own answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriveCommand {
    /// The command, e.g. `NVMe Format NVM (SES=1)`.
    pub name: String,
    /// The drive's raw completion status, verbatim (empty when it never completed).
    pub completion_status: String,
    /// Every command sent with its raw answer, in order.
    pub commands: Vec<String>,
    /// NVMe: the namespaces the command erased, e.g. `nvme0n2 (NSID 2)`
    /// (Sanitize, and Format with FNA bit 0/1, erase every namespace of the
    /// subsystem). Absent for other drives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_namespaces: Option<Vec<String>>,
}

/// NIST SP 800-88 sanitization category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Logical techniques against simple non-invasive recovery.
    #[default]
    Clear,
    /// Physical or logical techniques against laboratory recovery.
    Purge,
    /// Media rendered unusable.
    Destroy,
}

/// How the result was verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// Full read-back, sampled read-back, or none.
    pub method: VerificationMethod,
    /// Share of the device verified, in parts per million (1_000_000 = all).
    pub coverage_ppm: u32,
    /// Bytes read back and compared.
    pub bytes_verified: u64,
    /// Seed of the sample plan (lowercase hex) for sampled verification.
    pub sample_seed: Option<String>,
    /// Outcome of the verification.
    pub result: VerificationResult,
    /// How the read-back was done, when it is not a plain pattern compare
    /// (drive-native methods: canaries written before the erase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For results Lethe cannot read back (a degauss): what Lethe checked
    /// itself and what only the controller reported. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
}

/// What was verified by Lethe and what was only attested by a controller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// Who attests, e.g. `degausser controller, firmware 1.2.0`.
    pub attested_by: String,
    /// Facts Lethe checked itself (medium type before arming, the controller
    /// link, the confirmation's cycle number matching the command...).
    pub verified: Vec<String>,
    /// Facts only the controller reported and Lethe cannot check (relay on
    /// time, interlock closed, the field strength of the degausser).
    pub attested: Vec<String>,
}

/// Verification method (NIST §4.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationMethod {
    /// Every sector read back.
    Full,
    /// Seeded random sample of sectors read back.
    Sample,
    /// Destruction confirmed by the controller that performed it (a degausser
    /// cycle the front-panel firmware reports as completed with the interlock
    /// closed); the medium cannot be read back afterwards.
    ControllerConfirmed,
    /// No verification.
    #[default]
    None,
}

/// Verification outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationResult {
    /// Everything read back matched.
    Pass,
    /// A mismatch or read error was found.
    Fail,
    /// No verification was run.
    #[default]
    NotPerformed,
}

/// The person who ran the job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    /// Operator id (login or badge number).
    pub id: String,
    /// Full name.
    pub name: String,
}

/// Job timing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// RFC 3339 UTC start time.
    pub started_at: String,
    /// RFC 3339 UTC end time.
    pub ended_at: String,
    /// Wall-clock duration in whole seconds (time spent interrupted excluded or not: as recorded by the job).
    pub duration_seconds: u64,
}

/// NIST "Post-Sanitization Destination".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// Reused inside the organization.
    Reuse,
    /// Sold.
    Resale,
    /// Donated.
    Donation,
    /// Returned to the lessor at end of lease.
    ReturnToLessor,
    /// Returned to its owner / customer.
    ReturnToOwner,
    /// Sent to recycling.
    Recycle,
    /// Sent to physical destruction.
    Destroy,
    /// Kept in storage.
    Storage,
}

/// Outcome of the job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Pass, fail or incomplete.
    pub status: ResultStatus,
    /// Bytes written by all passes together.
    pub bytes_written: u64,
    /// Byte ranges that could not be written or verified.
    pub failed_ranges: Vec<FailedRange>,
    /// Human-readable notes and warnings.
    pub messages: Vec<String>,
}

/// The result of a job: what a certificate or report says at a glance.
///
/// This is the typed result the job library sets. Its job outcomes map to it
/// one to one; only `Pass` and `ClearOnly` are certificates, everything else
/// is a *report* (see [`ResultStatus::is_certificate`]):
///
/// | job outcome | status | document |
/// |---|---|---|
/// | sanitized at the requested level, verification passed | `Pass` | Certificate of Sanitization |
/// | Purge requested, only a verified Clear overwrite was possible (CLI exit 4) | `ClearOnly` | Certificate, amber banner "CLEAR ONLY — Purge was requested" |
/// | ran to the end with `--verify off` | `Unverified` | Sanitization report — UNVERIFIED |
/// | write or verify errors, drive command failed, degausser cycle not confirmed | `Fail` | Sanitization report — FAILED |
/// | stopped (Ctrl-C, power loss, device gone) before the end | `Incomplete` | Sanitization report — INCOMPLETE |
/// | refused or aborted before anything was written | `NotStarted` | Sanitization report — NOT STARTED |
///
/// [`CertificateBody::validate`] refuses a status the rest of the body does
/// not support, and [`crate::sign`] first lowers an unsupported status (see
/// [`CertificateBody::settled`]): a lesser result never signs as a pass.
/// `ClearOnly`, `Unverified` and `NotStarted` are new in this version;
/// certificates that use only the first three values are unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// Sanitized at the requested level and verified.
    Pass,
    /// Purge was requested; a verified Clear was reached instead.
    ClearOnly,
    /// The job ran to the end without verification: never certified.
    Unverified,
    /// Errors left data possibly readable.
    Fail,
    /// The job did not finish.
    #[default]
    Incomplete,
    /// The job never started writing (refused, aborted before the first write).
    NotStarted,
}

impl ResultStatus {
    /// True for the two statuses that make the document a certificate.
    pub fn is_certificate(self) -> bool {
        matches!(self, ResultStatus::Pass | ResultStatus::ClearOnly)
    }

    /// The document's title: "Certificate of Sanitization" only for a
    /// certificate, otherwise "Sanitization report — FAILED" and so on.
    pub fn document_title(self) -> String {
        if self.is_certificate() {
            "Certificate of Sanitization".into()
        } else {
            format!("Sanitization report \u{2014} {self}")
        }
    }
}

/// A byte range of the device that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedRange {
    /// Byte offset from the start of the device.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
}

/// One entry of the job history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// RFC 3339 UTC time.
    pub at: String,
    /// `started`, `interrupted`, `resumed`, `pass_completed`, `verified`, `completed`...
    pub kind: String,
    /// Free-text detail.
    pub detail: String,
}

macro_rules! labels {
    ($ty:ty { $($var:ident => $wire:literal, $label:literal;)* }) => {
        impl $ty {
            /// The wire (JSON) name of this value.
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$var => $wire,)* }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$var => $label,)* })
            }
        }
    };
}

labels!(MediaType {
    Magnetic => "magnetic", "Magnetic";
    Flash => "flash", "Flash";
    Hybrid => "hybrid", "Hybrid";
    Unknown => "unknown", "Unknown";
});
labels!(Category {
    Clear => "clear", "Clear";
    Purge => "purge", "Purge";
    Destroy => "destroy", "Destroy";
});
labels!(VerificationMethod {
    Full => "full", "Full read-back";
    Sample => "sample", "Sampled read-back";
    ControllerConfirmed => "controller_confirmed", "Completed cycle confirmed by the degausser controller";
    None => "none", "None";
});
labels!(VerificationResult {
    Pass => "pass", "Pass";
    Fail => "fail", "Fail";
    NotPerformed => "not_performed", "Not performed";
});
labels!(ResultStatus {
    Pass => "pass", "PASS";
    ClearOnly => "clear_only", "CLEAR ONLY";
    Unverified => "unverified", "UNVERIFIED";
    Fail => "fail", "FAILED";
    Incomplete => "incomplete", "INCOMPLETE";
    NotStarted => "not_started", "NOT STARTED";
});
labels!(Destination {
    Reuse => "reuse", "Reuse";
    Resale => "resale", "Resale";
    Donation => "donation", "Donation";
    ReturnToLessor => "return_to_lessor", "Return to lessor";
    ReturnToOwner => "return_to_owner", "Return to owner";
    Recycle => "recycle", "Recycle";
    Destroy => "destroy", "Destroy";
    Storage => "storage", "Storage";
});

/// Why a body cannot be signed or was rejected after parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidBody(pub String);

/// Whether `id` is usable as a certificate id (and so as a file name).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `s` is `YYYY-MM-DDTHH:MM:SS[.fraction]Z` with a real date and
/// time of day: month 01-12, a day that exists in that month (leap years
/// included), hour 00-23, minute 00-59, second 00-60 (a leap second).
pub fn valid_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || b.last() != Some(&b'Z') {
        return false;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let head_ok = shape.iter().zip(b).all(|(want, got)| match want {
        b'd' => got.is_ascii_digit(),
        w => w == got,
    });
    let tail = &b[19..b.len() - 1];
    let tail_ok = tail.is_empty()
        || (tail.len() >= 2 && tail[0] == b'.' && tail[1..].iter().all(u8::is_ascii_digit));
    if !(head_ok && tail_ok) {
        return false;
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day) && num(11..13) <= 23 && num(14..16) <= 59 && num(17..19) <= 60
}

impl CertificateBody {
    /// Check the rules the format imposes beyond the types: format string,
    /// id syntax, timestamp syntax and lowercase-hex sample seed.
    pub fn validate(&self) -> Result<(), InvalidBody> {
        if self.format != FORMAT {
            return Err(InvalidBody(format!(
                "format is {:?}, expected {FORMAT:?}",
                self.format
            )));
        }
        if !valid_id(&self.id) {
            return Err(InvalidBody(format!(
                "certificate id {:?} is not valid (1-128 characters of A-Z a-z 0-9 . _ -, not starting with '.')",
                self.id
            )));
        }
        let stamps = [
            ("issued_at", &self.issued_at),
            ("timing.started_at", &self.timing.started_at),
            ("timing.ended_at", &self.timing.ended_at),
        ];
        for (name, value) in stamps
            .into_iter()
            .chain(self.events.iter().map(|e| ("events[].at", &e.at)))
        {
            if !valid_timestamp(value) {
                return Err(InvalidBody(format!(
                    "{name} {value:?} is not an RFC 3339 UTC time like 2026-11-23T14:05:00Z"
                )));
            }
        }
        if let Some(seed) = &self.verification.sample_seed {
            if seed.is_empty() || !seed.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(InvalidBody(format!(
                    "verification.sample_seed {seed:?} is not lowercase hex"
                )));
            }
        }
        self.check_consistency()
    }

    /// The rules that tie the result to its evidence (docs/certificate.md §2,
    /// "Consistency"). Checked when signing and when verifying.
    fn check_consistency(&self) -> Result<(), InvalidBody> {
        let v = &self.verification;
        let fail = |m: String| Err(InvalidBody(m));
        if v.coverage_ppm > 1_000_000 {
            return fail(format!(
                "verification.coverage_ppm {} is more than 1000000 (all of the device)",
                v.coverage_ppm
            ));
        }
        if (v.method == VerificationMethod::Sample) != v.sample_seed.is_some() {
            return fail(
                "verification.sample_seed must be set for sampled verification and only then"
                    .into(),
            );
        }
        if v.result != VerificationResult::NotPerformed && v.method == VerificationMethod::None {
            return fail(format!(
                "verification.result is {} but verification.method is none",
                v.result.as_str()
            ));
        }
        let status = self.result.status;
        let lower = self.reached_lower_level();
        let verified = v.result == VerificationResult::Pass;
        let problem = match status {
            ResultStatus::Pass if !verified => Some(format!(
                "verification.result is {}, a pass needs a passing verification",
                v.result.as_str()
            )),
            ResultStatus::Pass if lower => Some(
                "the level reached is below the requested level: that is clear_only, not pass"
                    .into(),
            ),
            ResultStatus::ClearOnly if !verified => {
                Some("clear_only needs a passing verification".into())
            }
            ResultStatus::ClearOnly if self.method.category != Category::Clear || !lower => Some(
                "clear_only means a Clear was reached where Purge (or Destroy) was requested"
                    .into(),
            ),
            ResultStatus::Unverified if v.result != VerificationResult::NotPerformed => {
                Some(format!(
                    "unverified, but verification.result is {}",
                    v.result.as_str()
                ))
            }
            ResultStatus::NotStarted
                if self.result.bytes_written != 0
                    || v.result != VerificationResult::NotPerformed =>
            {
                Some("not_started, but bytes were written or verified".into())
            }
            _ => None,
        };
        match problem {
            Some(p) => fail(format!("result.status {}: {p}", status.as_str())),
            None => Ok(()),
        }
    }

    /// True when `method.requested_level` is above `method.category`.
    pub fn reached_lower_level(&self) -> bool {
        let rank = |c: Category| match c {
            Category::Clear => 0,
            Category::Purge => 1,
            Category::Destroy => 2,
        };
        self.method
            .requested_level
            .is_some_and(|r| rank(r) > rank(self.method.category))
    }

    /// The body with its status lowered to what the evidence supports (never
    /// raised), and a message saying so when it changed:
    ///
    /// - `pass`, `clear_only` or `unverified` with a failed verification → `fail`;
    /// - `pass` or `clear_only` without a passing verification → `unverified`;
    /// - `pass` where a Clear was reached but more was requested → `clear_only`;
    /// - `not_started` with bytes written or verified → `incomplete`.
    ///
    /// [`crate::sign`] signs the settled body, so a caller's mistake can make
    /// a certificate say less, never more.
    pub fn settled(&self) -> CertificateBody {
        let mut b = self.clone();
        let v = b.verification.result;
        let from = b.result.status;
        let to = match from {
            ResultStatus::Pass | ResultStatus::ClearOnly | ResultStatus::Unverified
                if v == VerificationResult::Fail =>
            {
                ResultStatus::Fail
            }
            ResultStatus::Pass | ResultStatus::ClearOnly if v != VerificationResult::Pass => {
                ResultStatus::Unverified
            }
            ResultStatus::Pass
                if b.reached_lower_level() && b.method.category == Category::Clear =>
            {
                ResultStatus::ClearOnly
            }
            ResultStatus::NotStarted
                if b.result.bytes_written != 0 || v != VerificationResult::NotPerformed =>
            {
                ResultStatus::Incomplete
            }
            s => s,
        };
        if to != from {
            b.result.status = to;
            b.result.messages.push(format!(
                "result lowered from {} to {} when signing: the recorded evidence does not support {}",
                from.as_str(),
                to.as_str(),
                from.as_str()
            ));
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_serialize_snake_case() {
        assert_eq!(
            serde_json::to_string(&Destination::ReturnToLessor).unwrap(),
            "\"return_to_lessor\""
        );
        assert_eq!(
            serde_json::to_string(&VerificationResult::NotPerformed).unwrap(),
            "\"not_performed\""
        );
        for d in [Destination::ReturnToOwner, Destination::Storage] {
            assert_eq!(
                serde_json::to_string(&d).unwrap(),
                format!("\"{}\"", d.as_str())
            );
        }
        assert_eq!(Category::Purge.to_string(), "Purge");
        assert_eq!(ResultStatus::Incomplete.to_string(), "INCOMPLETE");
    }

    #[test]
    fn ids_and_timestamps() {
        assert!(valid_id("job-20261123-0001"));
        assert!(valid_id("a1b2c3.d_e"));
        for bad in ["", ".hidden", "a/b", "../x", "a b", "é", &"x".repeat(129)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
        assert!(valid_timestamp("2026-11-23T14:05:00Z"));
        assert!(valid_timestamp("2026-11-23T14:05:00.123Z"));
        for bad in [
            "2026-11-23 14:05:00Z",
            "2026-11-23T14:05:00",
            "2026-11-23T14:05:00+01:00",
            "2026-11-23T14:05:00.Z",
            "",
        ] {
            assert!(!valid_timestamp(bad), "{bad:?}");
        }
    }
}
