//! Completion proof for background sanitize operations (pure).
//!
//! A sanitize is only "done" when the drive itself says so, and the status must
//! be about *our* command: idle ATA drives report "completed without error"
//! even when nothing ran, and NVMe keeps the last result forever. The watchers
//! here turn polled statuses into a verdict and never guess: a status that
//! cannot be read is the caller's error, not a success.

use crate::ata::{SanitizeState, SanitizeStatus};
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

/// SECURITY ERASE UNIT timeout in milliseconds from IDENTIFY words 89/90, the way
/// hdparm computes it: max(2 × estimate + 60 min, capacity at 30 MB/s + 30 min);
/// 12 hours when the drive gives no estimate and capacity is unknown.
pub fn erase_unit_timeout_ms(estimate_minutes: Option<u32>, capacity_bytes: u64) -> u32 {
    const MIN: u64 = 60_000;
    let by_estimate = estimate_minutes.map(|m| (2 * u64::from(m) + 60) * MIN);
    let by_size = (capacity_bytes > 0).then(|| (capacity_bytes / 30_000_000) * 1000 + 30 * MIN);
    let ms = match (by_estimate, by_size) {
        (None, None) => 12 * 60 * MIN,
        (a, b) => a.unwrap_or(0).max(b.unwrap_or(0)),
    };
    u32::try_from(ms).unwrap_or(u32::MAX)
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
    fn erase_timeouts() {
        // 120 min estimate: 2*120+60 = 300 min.
        assert_eq!(erase_unit_timeout_ms(Some(120), 0), 300 * 60_000);
        // 3 TB at 30 MB/s = 100000 s + 30 min beats a 2 min estimate.
        assert_eq!(
            erase_unit_timeout_ms(Some(2), 3_000_000_000_000),
            100_000_000 + 1_800_000
        );
        assert_eq!(erase_unit_timeout_ms(None, 0), 12 * 3_600_000);
        assert_eq!(erase_unit_timeout_ms(Some(u32::MAX), 0), u32::MAX);
    }
}
