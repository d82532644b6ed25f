//! Sense data decoding (SPC-5 4.4): fixed (70h/71h) and descriptor (72h/73h)
//! formats, sense-key-specific progress indication (descriptor 02h, fixed bytes
//! 15-17), the another-progress-indication descriptor 0Ah (SPC-5 4.4.2.11:
//! the progress of an operation other than the one the sense key describes,
//! e.g. NO SENSE with a sanitize still running; layout as sg3_utils'
//! `sg_get_sense_progress_fld` reads it), and the ATA Status Return descriptor
//! 09h (SAT-4 12.2.2.6).

use crate::ata::AtaRegisters;
use crate::{be16, need, DecodeError};
use serde::{Deserialize, Serialize};

/// Sense keys used by Lethe (SPC-5 table 48).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SenseKey {
    /// 0h.
    NoSense,
    /// 1h.
    RecoveredError,
    /// 2h: e.g. 04h/1Bh sanitize in progress.
    NotReady,
    /// 3h: e.g. 31h/03h sanitize command failed.
    MediumError,
    /// 4h.
    HardwareError,
    /// 5h: unsupported command or field.
    IllegalRequest,
    /// 6h.
    UnitAttention,
    /// Bh.
    AbortedCommand,
    /// Any other key.
    Other(u8),
}

impl SenseKey {
    /// Decode the 4-bit key.
    pub fn from_code(k: u8) -> Self {
        match k & 0xF {
            0x0 => SenseKey::NoSense,
            0x1 => SenseKey::RecoveredError,
            0x2 => SenseKey::NotReady,
            0x3 => SenseKey::MediumError,
            0x4 => SenseKey::HardwareError,
            0x5 => SenseKey::IllegalRequest,
            0x6 => SenseKey::UnitAttention,
            0xB => SenseKey::AbortedCommand,
            x => SenseKey::Other(x),
        }
    }

    /// The 4-bit code.
    pub fn code(self) -> u8 {
        match self {
            SenseKey::NoSense => 0x0,
            SenseKey::RecoveredError => 0x1,
            SenseKey::NotReady => 0x2,
            SenseKey::MediumError => 0x3,
            SenseKey::HardwareError => 0x4,
            SenseKey::IllegalRequest => 0x5,
            SenseKey::UnitAttention => 0x6,
            SenseKey::AbortedCommand => 0xB,
            SenseKey::Other(x) => x & 0xF,
        }
    }
}

/// Sense data format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SenseFormat {
    /// Response code 70h/71h.
    Fixed,
    /// Response code 72h/73h.
    Descriptor,
}

/// The another-progress-indication descriptor (0Ah): which operation the
/// progress belongs to, and the progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnotherProgress {
    /// Sense key of the operation in progress.
    pub key: SenseKey,
    /// Its additional sense code.
    pub asc: u8,
    /// Its additional sense code qualifier.
    pub ascq: u8,
    /// Progress, numerator over 65536.
    pub progress: u16,
}

/// Decoded sense data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sense {
    /// Format it arrived in.
    pub format: SenseFormat,
    /// Sense key.
    pub key: SenseKey,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
    /// Progress indication (SKSV set, numerator over 65536).
    pub progress: Option<u16>,
    /// ATA Status Return descriptor, if present.
    pub ata: Option<AtaRegisters>,
    /// Another-progress-indication descriptor (descriptor format only).
    pub another_progress: Option<AnotherProgress>,
}

impl Sense {
    /// A sense with key/ASC/ASCQ only.
    pub fn new(format: SenseFormat, key: SenseKey, asc: u8, ascq: u8) -> Self {
        Sense {
            format,
            key,
            asc,
            ascq,
            progress: None,
            ata: None,
            another_progress: None,
        }
    }

    /// NOT READY, 04h/1Bh: logical unit not ready, sanitize in progress —
    /// as the sense itself, or in an another-progress-indication descriptor.
    pub fn is_sanitize_in_progress(&self) -> bool {
        let sanitizing =
            |k: SenseKey, asc: u8, ascq: u8| k == SenseKey::NotReady && asc == 0x04 && ascq == 0x1B;
        sanitizing(self.key, self.asc, self.ascq)
            || self
                .another_progress
                .is_some_and(|p| sanitizing(p.key, p.asc, p.ascq))
    }

    /// Progress of a running sanitize, out of 65536, from whichever
    /// descriptor carries it.
    pub fn sanitize_progress(&self) -> Option<u16> {
        if self.key == SenseKey::NotReady && (self.asc, self.ascq) == (0x04, 0x1B) {
            if let Some(p) = self.progress {
                return Some(p);
            }
        }
        self.another_progress
            .filter(|p| p.key == SenseKey::NotReady && (p.asc, p.ascq) == (0x04, 0x1B))
            .map(|p| p.progress)
    }

    /// MEDIUM ERROR, 31h/03h: sanitize command failed.
    pub fn is_sanitize_failed(&self) -> bool {
        self.asc == 0x31 && self.ascq == 0x03
    }

    /// Decode sense data of either format.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        need("sense", b, 1)?;
        match b[0] & 0x7F {
            0x70 | 0x71 => {
                need("fixed sense", b, 14)?;
                let progress = (b.len() >= 18 && b[15] & 0x80 != 0).then(|| be16(b, 16));
                Ok(Sense {
                    format: SenseFormat::Fixed,
                    key: SenseKey::from_code(b[2]),
                    asc: b[12],
                    ascq: b[13],
                    progress,
                    ata: None,
                    another_progress: None,
                })
            }
            0x72 | 0x73 => {
                need("descriptor sense", b, 8)?;
                let mut s = Sense::new(
                    SenseFormat::Descriptor,
                    SenseKey::from_code(b[1]),
                    b[2],
                    b[3],
                );
                let end = (8 + usize::from(b[7])).min(b.len());
                let mut d = &b[8..end];
                while d.len() >= 2 {
                    let dlen = (2 + usize::from(d[1])).min(d.len());
                    let desc = &d[..dlen];
                    match desc[0] {
                        0x02 if desc.len() >= 7 && desc[4] & 0x80 != 0 => {
                            s.progress = Some(be16(desc, 5));
                        }
                        0x09 => s.ata = decode_ata_status_return(desc).ok(),
                        0x0A if desc.len() >= 8 && desc[1] == 0x06 => {
                            s.another_progress = Some(AnotherProgress {
                                key: SenseKey::from_code(desc[2]),
                                asc: desc[3],
                                ascq: desc[4],
                                progress: be16(desc, 6),
                            });
                        }
                        _ => {}
                    }
                    d = &d[dlen..];
                }
                Ok(s)
            }
            rc => Err(DecodeError::Invalid {
                what: "sense",
                detail: format!("response code {rc:#04x}"),
            }),
        }
    }

    /// Encode (used by the simulator). Fixed format has no room for the ATA
    /// Status Return or another-progress descriptors: they are dropped.
    pub fn encode(&self) -> Vec<u8> {
        match self.format {
            SenseFormat::Fixed => {
                let mut b = vec![0u8; 18];
                b[0] = 0x70;
                b[2] = self.key.code();
                b[7] = 10;
                b[12] = self.asc;
                b[13] = self.ascq;
                if let Some(p) = self.progress {
                    b[15] = 0x80;
                    b[16..18].copy_from_slice(&p.to_be_bytes());
                }
                b
            }
            SenseFormat::Descriptor => {
                let mut b = vec![0x72, self.key.code(), self.asc, self.ascq, 0, 0, 0, 0];
                if let Some(p) = self.progress {
                    let [hi, lo] = p.to_be_bytes();
                    b.extend_from_slice(&[0x02, 0x06, 0, 0, 0x80, hi, lo, 0]);
                }
                if let Some(r) = self.ata {
                    b.extend_from_slice(&encode_ata_status_return(&r));
                }
                if let Some(p) = self.another_progress {
                    let [hi, lo] = p.progress.to_be_bytes();
                    b.extend_from_slice(&[0x0A, 0x06, p.key.code(), p.asc, p.ascq, 0, hi, lo]);
                }
                b[7] = (b.len() - 8) as u8;
                b
            }
        }
    }
}

/// Decode an ATA Status Return descriptor (type 09h, 14 bytes).
pub fn decode_ata_status_return(d: &[u8]) -> Result<AtaRegisters, DecodeError> {
    need("ATA Status Return descriptor", d, 14)?;
    if d[0] != 0x09 {
        return Err(DecodeError::Invalid {
            what: "ATA Status Return descriptor",
            detail: format!("descriptor type {:#04x}", d[0]),
        });
    }
    let ext = d[2] & 1 != 0;
    let hi = |x: u8| if ext { x } else { 0 };
    Ok(AtaRegisters {
        error: d[3],
        count: u16::from_be_bytes([hi(d[4]), d[5]]),
        lba: u64::from_be_bytes([0, 0, hi(d[10]), hi(d[8]), hi(d[6]), d[11], d[9], d[7]]),
        device: d[12],
        status: d[13],
    })
}

fn encode_ata_status_return(r: &AtaRegisters) -> [u8; 14] {
    let l = r.lba.to_be_bytes();
    let n = r.count.to_be_bytes();
    [
        0x09, 0x0C, 0x01, r.error, n[0], n[1], l[4], l[7], l[3], l[6], l[2], l[5], r.device,
        r.status,
    ]
}
