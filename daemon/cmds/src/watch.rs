//! Completion proof for background sanitize operations (pure).
//!
//! A sanitize is only "done" when the drive itself says so, and the status must
//! be about *our* command: idle ATA drives report "completed without error"
//! even when nothing ran, and NVMe keeps the last result forever. The watchers
//! here turn polled statuses into a verdict and never guess: a status that
//! cannot be read is the caller's error, not a success.

use crate::ata::{EraseTime, SanitizeState, SanitizeStatus};
use crate::nvme::{SanitizeLog, SanitizeStatusCode};
use serde::{Deserialize, Serialize};

/// What a poll means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Verdict {
    /// Still running; fraction done in [0, 1] when the drive reports it.
    Running(Option<f64>),
    /// The drive reports success for the command we sent.
    Succeeded {
        /// Raw status words for the certificate.
        raw: String,
    },
    /// The drive reports failure, or a state that cannot follow our command.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Watches ATA SANITIZE STATUS EXT results after a sanitize command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtaSanitizeWatch {
    before_completed: bool,
    seen_running: bool,
}

impl AtaSanitizeWatch {
    /// Start from the status read just before the sanitize command was sent.
    pub fn new(before: &SanitizeStatus) -> Self {
        AtaSanitizeWatch {
            before_completed: before.completed_without_error,
            seen_running: false,
        }
    }

    /// Interpret one SANITIZE STATUS EXT result.
    pub fn observe(&mut self, s: &SanitizeStatus) -> Verdict {
        let raw = format!(
            "ATA SANITIZE STATUS EXT: completed={} in_progress={} frozen={} progress={} failed={} reason={:?}",
            s.completed_without_error, s.in_progress, s.frozen, s.progress, s.failed, s.reason
        );
        match s.state() {
            SanitizeState::InProgress => {
                self.seen_running = true;
                Verdict::Running(Some(s.fraction()))
            }
            SanitizeState::Failed => Verdict::Failed { reason: raw },
            SanitizeState::Frozen => Verdict::Failed {
                reason: format!("sanitize frozen: {raw}"),
            },
            SanitizeState::IdleCompleted if self.seen_running || !self.before_completed => {
                Verdict::Succeeded { raw }
            }
            SanitizeState::IdleCompleted => Verdict::Failed {
                reason: format!(
                    "completion bit was already set before the command and no progress was seen: \
                     cannot attribute success ({raw})"
                ),
            },
            SanitizeState::Idle => Verdict::Failed {
                reason: format!("drive idle without completion: the sanitize did not run ({raw})"),
            },
        }
    }
}

/// Watches the NVMe Sanitize Status log after a Sanitize command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeSanitizeWatch {
    cdw10: u32,
}

impl NvmeSanitizeWatch {
    /// `cdw10` is the CDW10 we sent; the log's SCDW10 must echo it.
    pub fn new(cdw10: u32) -> Self {
        NvmeSanitizeWatch { cdw10 }
    }

    /// Interpret one log page. Every SSTAT value has its own arm.
    pub fn observe(&self, l: &SanitizeLog) -> Verdict {
        let raw = format!(
            "NVMe sanitize log: SPROG={:#06x} SSTAT={:?} GDE={} SCDW10={:#010x}",
            l.sprog, l.status, l.global_data_erased, l.scdw10
        );
        let ours = l.scdw10 == self.cdw10;
        match l.status {
            SanitizeStatusCode::InProgress => Verdict::Running(l.fraction()),
            SanitizeStatusCode::Completed | SanitizeStatusCode::CompletedWithDealloc if ours => {
                Verdict::Succeeded { raw }
            }
            SanitizeStatusCode::Completed | SanitizeStatusCode::CompletedWithDealloc => {
                Verdict::Failed {
                    reason: format!(
                        "completion is for another command (SCDW10 {:#x} != {:#x}): {raw}",
                        l.scdw10, self.cdw10
                    ),
                }
            }
            SanitizeStatusCode::Failed => Verdict::Failed { reason: raw },
            SanitizeStatusCode::NeverSanitized => Verdict::Failed {
                reason: format!("log says never sanitized after our command: {raw}"),
            },
            SanitizeStatusCode::Reserved(v) => Verdict::Failed {
                reason: format!("reserved SSTAT value {v}: {raw}"),
            },
        }
    }
}

/// Seconds to wait for a long command the drive gives no estimate for: the
/// capacity at 30 MiB/s plus 30 minutes (hdparm's "1 second per 30MB of
/// capacity ... add 30 mins of uncertainty"); 12 hours when the capacity is
/// unknown too (hdparm's default without IDENTIFY data).
pub fn capacity_timeout_secs(capacity_bytes: u64) -> u64 {
    if capacity_bytes == 0 {
        return 12 * 3600;
    }
    (capacity_bytes >> 20) / 30 + 30 * 60
}

/// SECURITY ERASE UNIT timeout in seconds from IDENTIFY word 89 or 90, as
/// hdparm's `get_erase_timeout_secs` computes it: the drive's estimate (already
/// in minutes) plus 60 minutes; the "more than" encodings (FFh: more than 508
/// minutes, 7FFFh extended: more than 65532 minutes) plus 90 minutes; never
/// less than the capacity estimate of [`capacity_timeout_secs`] when the
/// capacity is known.
pub fn erase_unit_timeout_secs(est: EraseTime, capacity_bytes: u64) -> u64 {
    let floor = if capacity_bytes == 0 {
        0
    } else {
        capacity_timeout_secs(capacity_bytes)
    };
    let minutes = match est {
        EraseTime::NotReported => return capacity_timeout_secs(capacity_bytes),
        EraseTime::Minutes(m) => u64::from(m) + 60,
        EraseTime::MoreThan(m) => u64::from(m) + 90,
    };
    (minutes * 60).max(floor)
}

/// A timeout in seconds as the milliseconds of a pass-through timeout field
/// (`u32`). Every value the functions above give for a drive under 100 TB fits
/// (the largest estimate, "more than 65532 minutes", is 3 937 320 000 ms);
/// beyond that it is clamped to the field's maximum, 49.7 days.
pub fn timeout_ms(secs: u64) -> u32 {
    u32::try_from(secs.saturating_mul(1000)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ata::{decode_sanitize_status, AtaRegisters};

    fn ata(count: u16, lba: u64) -> SanitizeStatus {
        let mut r = AtaRegisters::ok();
        r.count = count;
        r.lba = lba;
        decode_sanitize_status(&r)
    }

    #[test]
    fn ata_needs_attributable_completion() {
        let idle_done = ata(0x8000, 0);
        let mut w = AtaSanitizeWatch::new(&idle_done);
        assert!(
            matches!(w.observe(&idle_done), Verdict::Failed { .. }),
            "stale completion"
        );
        assert!(
            matches!(w.observe(&ata(0x4000, 0x8000)), Verdict::Running(Some(f)) if (f - 0.5).abs() < 1e-9)
        );
        assert!(matches!(w.observe(&idle_done), Verdict::Succeeded { .. }));
        let mut fresh = AtaSanitizeWatch::new(&ata(0, 0));
        assert!(matches!(
            fresh.observe(&idle_done),
            Verdict::Succeeded { .. }
        ));
        assert!(matches!(fresh.observe(&ata(0, 0)), Verdict::Failed { .. }));
        assert!(matches!(
            fresh.observe(&ata(0x2000, 0)),
            Verdict::Failed { .. }
        ));
    }

    #[test]
    fn nvme_every_sstat_and_scdw10_echo() {
        let w = NvmeSanitizeWatch::new(0x4);
        let log = |st: u8, scdw10: u32| SanitizeLog {
            sprog: if st == 2 { 0x4000 } else { 0xFFFF },
            status: SanitizeStatusCode::from_bits(st),
            overwrite_passes_done: 0,
            global_data_erased: st == 1,
            scdw10,
            est_overwrite: u32::MAX,
            est_block_erase: u32::MAX,
            est_crypto_erase: u32::MAX,
        };
        assert!(matches!(w.observe(&log(0, 4)), Verdict::Failed { .. }));
        assert!(matches!(w.observe(&log(1, 4)), Verdict::Succeeded { .. }));
        assert!(
            matches!(w.observe(&log(1, 2)), Verdict::Failed { .. }),
            "someone else's sanitize"
        );
        assert!(
            matches!(w.observe(&log(2, 4)), Verdict::Running(Some(f)) if (f - 0.25).abs() < 1e-9)
        );
        assert!(matches!(w.observe(&log(3, 4)), Verdict::Failed { .. }));
        assert!(matches!(w.observe(&log(4, 4)), Verdict::Succeeded { .. }));
        for v in 5..8 {
            assert!(matches!(w.observe(&log(v, 4)), Verdict::Failed { .. }));
        }
    }

    #[test]
    fn erase_timeouts_follow_hdparm() {
        // Word 89 = 003Ch: 60 units of 2 minutes = 120 minutes, plus 60.
        let est = EraseTime::from_word(0x003C);
        assert_eq!(est, EraseTime::Minutes(120));
        assert_eq!(erase_unit_timeout_secs(est, 0), 180 * 60);
        // FFh: "more than 508 minutes": 508 + 90.
        assert_eq!(
            erase_unit_timeout_secs(EraseTime::from_word(0x00FF), 0),
            598 * 60
        );
        // Extended format 7FFFh: "more than 65532 minutes": 65532 + 90, which
        // still fits the u32 millisecond field without saturating.
        let most = erase_unit_timeout_secs(EraseTime::from_word(0xFFFF), 0);
        assert_eq!(most, 65_622 * 60);
        assert_eq!(timeout_ms(most), 3_937_320_000);
        // Extended format 8100h: 256 units = 512 minutes, plus 60.
        assert_eq!(
            erase_unit_timeout_secs(EraseTime::from_word(0x8100), 0),
            572 * 60
        );
        // 3 TB at 30 MiB/s (2 861 022 MiB / 30 = 95 367 s) + 30 min beats a
        // 2-minute estimate.
        assert_eq!(
            erase_unit_timeout_secs(EraseTime::Minutes(2), 3_000_000_000_000),
            95_367 + 1800
        );
        // No estimate: the capacity estimate; nothing known: 12 hours.
        assert_eq!(
            erase_unit_timeout_secs(EraseTime::NotReported, 1 << 30),
            1024 / 30 + 1800
        );
        assert_eq!(
            erase_unit_timeout_secs(EraseTime::NotReported, 0),
            12 * 3600
        );
        assert_eq!(timeout_ms(u64::MAX), u32::MAX);
    }
}
