//! SCSI health: LOG SENSE(10) pages (SPC-5 7.3) and the grown defect count
//! from READ DEFECT DATA(10) (SBC-4 5.7).
//!
//! A log page is a 4-byte header (page code in byte 0 bits 5:0, subpage in
//! byte 1, page length big-endian in bytes 2-3) followed by parameters: a
//! 2-byte parameter code, a control byte, a length byte and the value.
//!
//! | page | parameter | value |
//! |---|---|---|
//! | 02h / 03h / 05h write / read / verify error counters | 0006h | total uncorrected errors |
//! | 0Dh temperature | 0000h | byte 1: °C (FFh = not available) |
//! | 0Eh start-stop cycle counter | 0004h | accumulated start-stop cycles |
//! | 11h solid state media | 0001h | byte 3: percentage used endurance indicator |
//! | 15h background scan results | 0000h | bytes 0-3: accumulated power-on minutes |
//! | 2Fh informational exceptions | 0000h | ASC, ASCQ, most recent temperature |

use super::{Assessment, DriveHealth, HealthSource};
use crate::scsi::{ScsiCdb, SHORT_TIMEOUT_MS};
use crate::{be16, need, DataDir, DecodeError};

/// LOG SENSE opcode.
pub const LOG_SENSE: u8 = 0x4D;
/// READ DEFECT DATA(10) opcode.
pub const READ_DEFECT_DATA_10: u8 = 0x37;

/// Log pages Lethe reads.
pub mod page {
    /// Supported log pages.
    pub const SUPPORTED: u8 = 0x00;
    /// Write error counters.
    pub const WRITE_ERRORS: u8 = 0x02;
    /// Read error counters.
    pub const READ_ERRORS: u8 = 0x03;
    /// Verify error counters.
    pub const VERIFY_ERRORS: u8 = 0x05;
    /// Temperature.
    pub const TEMPERATURE: u8 = 0x0D;
    /// Start-stop cycle counter.
    pub const START_STOP: u8 = 0x0E;
    /// Solid state media.
    pub const SOLID_STATE: u8 = 0x11;
    /// Background scan results.
    pub const BACKGROUND_SCAN: u8 = 0x15;
    /// Informational exceptions.
    pub const INFO_EXCEPTIONS: u8 = 0x2F;
}

/// LOG SENSE(10) of the cumulative values (PC = 01b) of `page`.
pub fn log_sense(page: u8, alloc: u16) -> ScsiCdb {
    let [hi, lo] = alloc.to_be_bytes();
    let mut cdb = [0u8; 16];
    cdb[..10].copy_from_slice(&[LOG_SENSE, 0, 0x40 | (page & 0x3F), 0, 0, 0, 0, hi, lo, 0]);
    ScsiCdb {
        cdb,
        len: 10,
        data: DataDir::In(u32::from(alloc)),
        timeout_ms: SHORT_TIMEOUT_MS,
    }
}

/// READ DEFECT DATA(10) asking only for the header of the grown list
/// (REQ_GLIST, bytes-from-index format, 4-byte allocation).
pub fn read_grown_defects() -> ScsiCdb {
    let mut cdb = [0u8; 16];
    cdb[..10].copy_from_slice(&[READ_DEFECT_DATA_10, 0, 0x08 | 0x04, 0, 0, 0, 0, 0, 4, 0]);
    ScsiCdb {
        cdb,
        len: 10,
        data: DataDir::In(4),
        timeout_ms: SHORT_TIMEOUT_MS,
    }
}

/// A decoded log page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// Page code.
    pub page: u8,
    /// `(parameter code, value bytes)` in order.
    pub params: Vec<(u16, Vec<u8>)>,
}

impl LogPage {
    /// Decode a page; parameters cut short by the allocation length are dropped.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        need("log page header", b, 4)?;
        let end = (4 + usize::from(be16(b, 2))).min(b.len());
        let mut params = Vec::new();
        let mut at = 4;
        while at + 4 <= end {
            let len = usize::from(b[at + 3]);
            if at + 4 + len > end {
                break;
            }
            params.push((be16(b, at), b[at + 4..at + 4 + len].to_vec()));
            at += 4 + len;
        }
        Ok(LogPage {
            page: b[0] & 0x3F,
            params,
        })
    }

    /// Encode (the software drive model answers with it).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![self.page & 0x3F, 0, 0, 0];
        for (code, v) in &self.params {
            b.extend_from_slice(&code.to_be_bytes());
            b.push(0x03);
            b.push(v.len().min(255) as u8);
            b.extend_from_slice(&v[..v.len().min(255)]);
        }
        let len = u16::try_from(b.len() - 4).unwrap_or(u16::MAX);
        b[2..4].copy_from_slice(&len.to_be_bytes());
        b
    }

    /// The value of parameter `code`.
    pub fn param(&self, code: u16) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }

    /// Parameter `code` as a big-endian counter (up to 8 bytes; longer saturates).
    pub fn counter(&self, code: u16) -> Option<u64> {
        let v = self.param(code)?;
        if v.len() > 8 && v[..v.len() - 8].iter().any(|&x| x != 0) {
            return Some(u64::MAX);
        }
        Some(
            v.iter()
                .fold(0u64, |a, &x| a.wrapping_shl(8) | u64::from(x)),
        )
    }

    /// The page codes listed by the Supported Log Pages page.
    pub fn supported_pages(b: &[u8]) -> Result<Vec<u8>, DecodeError> {
        need("supported log pages", b, 4)?;
        let end = (4 + usize::from(be16(b, 2))).min(b.len());
        Ok(b[4..end].iter().map(|p| p & 0x3F).collect())
    }
}

/// Encode a Supported Log Pages answer.
pub fn encode_supported(pages: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&u16::try_from(pages.len()).unwrap_or(0).to_be_bytes());
    b.extend_from_slice(pages);
    b
}

/// Number of entries in a READ DEFECT DATA(10) header's list.
pub fn decode_defect_count(b: &[u8]) -> Result<u64, DecodeError> {
    need("READ DEFECT DATA header", b, 4)?;
    let size = match b[1] & 0x07 {
        0 => 4,
        3..=5 => 8,
        f => {
            return Err(DecodeError::Invalid {
                what: "READ DEFECT DATA header",
                detail: format!("defect list format {f} has no known entry size"),
            })
        }
    };
    Ok(u64::from(be16(b, 2)) / size)
}

/// Encode a READ DEFECT DATA(10) header for `count` bytes-from-index entries.
pub fn encode_defect_header(count: u16) -> Vec<u8> {
    let len = count.saturating_mul(8);
    let [hi, lo] = len.to_be_bytes();
    vec![0, 0x08 | 0x04, hi, lo]
}

/// Facts read from the pages (each `None` when the drive lacks the page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScsiHealth {
    /// Accumulated power-on minutes (page 15h).
    pub power_on_minutes: Option<u64>,
    /// Accumulated start-stop cycles (page 0Eh).
    pub start_stop_cycles: Option<u64>,
    /// Total uncorrected errors, per counter page (02h, 03h, 05h).
    pub uncorrected: Vec<(u8, u64)>,
    /// Temperature in °C (page 0Dh, or 2Fh).
    pub temperature: Option<u8>,
    /// Percentage used endurance indicator (page 11h).
    pub percentage_used: Option<u8>,
    /// Informational exception ASC/ASCQ (page 2Fh); (0, 0) = none.
    pub exception: Option<(u8, u8)>,
    /// Grown defect list entries.
    pub grown_defects: Option<u64>,
}

impl ScsiHealth {
    /// Take what a decoded page says.
    pub fn absorb(&mut self, p: &LogPage) {
        match p.page {
            page::WRITE_ERRORS | page::READ_ERRORS | page::VERIFY_ERRORS => {
                if let Some(n) = p.counter(0x0006) {
                    self.uncorrected.push((p.page, n));
                }
            }
            page::TEMPERATURE => {
                if let Some(&t) = p.param(0).and_then(|v| v.get(1)).filter(|&&t| t != 0xFF) {
                    self.temperature = Some(t);
                }
            }
            page::START_STOP => self.start_stop_cycles = p.counter(0x0004),
            page::SOLID_STATE => self.percentage_used = p.param(1).and_then(|v| v.get(3)).copied(),
            page::BACKGROUND_SCAN => {
                self.power_on_minutes = p
                    .param(0)
                    .filter(|v| v.len() >= 4)
                    .map(|v| u64::from(u32::from_be_bytes([v[0], v[1], v[2], v[3]])));
            }
            page::INFO_EXCEPTIONS => {
                if let Some(v) = p.param(0).filter(|v| v.len() >= 2) {
                    self.exception = Some((v[0], v[1]));
                    if self.temperature.is_none() {
                        self.temperature = v.get(2).copied().filter(|&t| t != 0xFF && t != 0);
                    }
                }
            }
            _ => {}
        }
    }

    /// The certificate's health record.
    pub fn health(&self) -> DriveHealth {
        let mut h = DriveHealth::empty(HealthSource::ScsiLogPages);
        h.power_on_hours = self.power_on_minutes.map(|m| m / 60);
        h.power_cycles = self.start_stop_cycles;
        h.reallocated_sectors = self.grown_defects;
        h.uncorrectable_errors = (!self.uncorrected.is_empty()).then(|| {
            self.uncorrected
                .iter()
                .fold(0u64, |a, (_, n)| a.saturating_add(*n))
        });
        h.percentage_used = self.percentage_used.map(u32::from);
        h.temperature_celsius = self.temperature.map(u32::from);
        if self.grown_defects.is_some() {
            h.notes
                .push("reallocated sectors = entries in the grown defect list".into());
        }
        match self.exception {
            Some((0, _)) => h.raise(Assessment::Passed, "informational exceptions: none".into()),
            Some((0x5D, q)) => h.raise(
                Assessment::Failing,
                format!("failure prediction threshold exceeded (ASC 5Dh, ASCQ {q:02X}h)"),
            ),
            Some((asc, q)) => h.raise(
                Assessment::Warning,
                format!("informational exception ASC {asc:02X}h ASCQ {q:02X}h"),
            ),
            None => h
                .notes
                .push("no informational exceptions page; judged from counters".into()),
        }
        if h.assessment == Assessment::Unknown
            && (h.power_on_hours.is_some() || !self.uncorrected.is_empty())
        {
            h.raise(Assessment::Passed, "counters read".into());
        }
        h.judge_counters();
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-written from SPC-5 table 436 (background scan status parameter):
    /// 0x0001_E240 minutes = 123456 min = 2057 h.
    #[test]
    fn background_scan_power_on_minutes() {
        let b = [
            0x15, 0, 0x00, 0x10, // header, 16 bytes of parameters
            0x00, 0x00, 0x03, 0x0C, // parameter 0000h, 12 bytes
            0x00, 0x01, 0xE2, 0x40, 0, 0x00, 0, 0, 0, 0, 0, 0,
        ];
        let p = LogPage::decode(&b).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.page, 0x15);
        let mut s = ScsiHealth::default();
        s.absorb(&p);
        assert_eq!(s.power_on_minutes, Some(123_456));
        assert_eq!(s.health().power_on_hours, Some(2057));
    }

    #[test]
    fn counters_temperature_exceptions_and_defects() {
        let read = LogPage {
            page: 3,
            params: vec![(6, vec![0, 0, 0, 7]), (5, vec![1])],
        };
        assert_eq!(
            LogPage::decode(&read.encode()).unwrap_or_else(|e| panic!("{e}")),
            read
        );
        assert_eq!(read.counter(6), Some(7));
        let mut s = ScsiHealth::default();
        s.absorb(&read);
        s.absorb(&LogPage {
            page: 0x0D,
            params: vec![(0, vec![0, 41])],
        });
        s.absorb(&LogPage {
            page: 0x2F,
            params: vec![(0, vec![0x5D, 0x10, 40])],
        });
        s.grown_defects = decode_defect_count(&encode_defect_header(12)).ok();
        let h = s.health();
        assert_eq!(h.uncorrectable_errors, Some(7));
        assert_eq!(h.temperature_celsius, Some(41));
        assert_eq!(h.reallocated_sectors, Some(12));
        assert_eq!(h.assessment, Assessment::Failing);
        assert_eq!(decode_defect_count(&[0, 0x08, 0, 16]).ok(), Some(4));
        assert!(decode_defect_count(&[0, 0x0E, 0, 16]).is_err());
        assert_eq!(
            LogPage::supported_pages(&encode_supported(&[0, 3, 0x15])).ok(),
            Some(vec![0, 3, 0x15])
        );
    }

    #[test]
    fn truncated_parameters_are_dropped_and_counters_saturate() {
        let p =
            LogPage::decode(&[3, 0, 0, 20, 0, 6, 3, 10, 1, 2]).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.params.is_empty());
        let big = LogPage {
            page: 3,
            params: vec![(6, vec![1; 9])],
        };
        assert_eq!(big.counter(6), Some(u64::MAX));
    }

    #[test]
    fn cdbs() {
        let c = log_sense(0x15, 512);
        assert_eq!(c.bytes(), &[0x4D, 0, 0x55, 0, 0, 0, 0, 2, 0, 0]);
        assert_eq!(read_grown_defects().bytes()[..3], [0x37, 0, 0x0C]);
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(p) = LogPage::decode(&b) {
                let mut s = ScsiHealth::default();
                s.absorb(&p);
                let _ = s.health();
            }
            let _ = LogPage::supported_pages(&b);
            let _ = decode_defect_count(&b);
        }
    }
}
