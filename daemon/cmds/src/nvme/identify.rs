//! Identify Controller and Identify Namespace decoding (NVMe Base 2.0 figures 275, 280).

use crate::{ascii_trim, le16, le32, le64, need, DecodeError};
use serde::{Deserialize, Serialize};

/// SANICAP: Sanitize Capabilities (Identify Controller bytes 331:328).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SaniCap {
    /// Bit 0 CES: Crypto Erase sanitize supported.
    pub crypto_erase: bool,
    /// Bit 1 BES: Block Erase sanitize supported.
    pub block_erase: bool,
    /// Bit 2 OWS: Overwrite sanitize supported.
    pub overwrite: bool,
    /// Bit 29 NDI: No-Deallocate Inhibited.
    pub no_dealloc_inhibited: bool,
    /// Bits 31:30 NODMMAS: No-Deallocate Modifies Media After Sanitize (0 undefined,
    /// 1 not modified, 2 modified).
    pub nodmmas: u8,
    /// The raw dword.
    pub raw: u32,
}

impl SaniCap {
    /// Decode the SANICAP dword.
    pub fn from_raw(raw: u32) -> Self {
        SaniCap {
            crypto_erase: raw & 1 != 0,
            block_erase: raw & 2 != 0,
            overwrite: raw & 4 != 0,
            no_dealloc_inhibited: raw & (1 << 29) != 0,
            nodmmas: ((raw >> 30) & 0x3) as u8,
            raw,
        }
    }

    /// True when any sanitize action is supported.
    pub fn any(&self) -> bool {
        self.crypto_erase || self.block_erase || self.overwrite
    }
}

/// Decoded Identify Controller data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifyController {
    /// PCI vendor ID (bytes 1:0).
    pub vid: u16,
    /// Serial number (bytes 23:4).
    pub serial: String,
    /// Model number (bytes 63:24).
    pub model: String,
    /// Firmware revision (bytes 71:64).
    pub firmware: String,
    /// Controller ID (bytes 79:78).
    pub cntlid: u16,
    /// Version (bytes 83:80).
    pub version: u32,
    /// OACS (bytes 257:256).
    pub oacs: u16,
    /// Total NVM capacity in bytes (bytes 295:280, low 64 bits; 0 if not reported).
    pub tnvmcap: u64,
    /// Sanitize capabilities (bytes 331:328).
    pub sanicap: SaniCap,
    /// Number of namespaces (bytes 519:516).
    pub nn: u32,
    /// FNA: Format NVM Attributes (byte 524).
    pub fna: u8,
}

impl IdentifyController {
    /// OACS bit 0: Security Send/Receive supported.
    pub fn security_send_receive(&self) -> bool {
        self.oacs & 1 != 0
    }
    /// OACS bit 1: Format NVM supported.
    pub fn format_supported(&self) -> bool {
        self.oacs & 2 != 0
    }
    /// FNA bit 0: a format applies to all namespaces.
    pub fn format_all_namespaces(&self) -> bool {
        self.fna & 1 != 0
    }
    /// FNA bit 1: a secure erase applies to all namespaces.
    pub fn secure_erase_all_namespaces(&self) -> bool {
        self.fna & 2 != 0
    }
    /// FNA bit 2: cryptographic erase supported as part of Format NVM.
    pub fn format_crypto_erase(&self) -> bool {
        self.fna & 4 != 0
    }
    /// FNA bit 3: Format NVM with NSID FFFFFFFFh is not supported.
    pub fn format_nsid_all_unsupported(&self) -> bool {
        self.fna & 8 != 0
    }

    /// Decode 4096 bytes (at least 528 are needed for the fields used).
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        need("Identify Controller", b, 528)?;
        Ok(IdentifyController {
            vid: le16(b, 0),
            serial: ascii_trim(&b[4..24]),
            model: ascii_trim(&b[24..64]),
            firmware: ascii_trim(&b[64..72]),
            cntlid: le16(b, 78),
            version: le32(b, 80),
            oacs: le16(b, 256),
            tnvmcap: le64(b, 280),
            sanicap: SaniCap::from_raw(le32(b, 328)),
            nn: le32(b, 516),
            fna: b[524],
        })
    }
}

/// One LBA format (Identify Namespace bytes 128+4n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbaFormat {
    /// Metadata size in bytes.
    pub ms: u16,
    /// LBA data size as a power of two (LBADS).
    pub lbads: u8,
    /// Relative performance 0 (best) ..= 3.
    pub rp: u8,
}

impl LbaFormat {
    /// LBA data size in bytes, or `None` when LBADS is outside 9..=31 (unusable).
    pub fn data_size(&self) -> Option<u32> {
        (9..32).contains(&self.lbads).then(|| 1u32 << self.lbads)
    }
}

/// Decoded Identify Namespace data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifyNamespace {
    /// Namespace size in logical blocks.
    pub nsze: u64,
    /// Namespace capacity in logical blocks.
    pub ncap: u64,
    /// Namespace utilisation.
    pub nuse: u64,
    /// FLBAS (byte 26).
    pub flbas: u8,
    /// Supported LBA formats (NLBAF + 1 entries).
    pub lba_formats: Vec<LbaFormat>,
}

impl IdentifyNamespace {
    /// Index of the format in use: FLBAS bits 3:0, plus bits 6:5 as the upper
    /// bits when more than 16 formats exist.
    pub fn current_format_index(&self) -> usize {
        let low = usize::from(self.flbas & 0xF);
        if self.lba_formats.len() > 16 {
            low | usize::from((self.flbas >> 5) & 0x3) << 4
        } else {
            low
        }
    }

    /// The format in use.
    pub fn current_format(&self) -> Option<LbaFormat> {
        self.lba_formats.get(self.current_format_index()).copied()
    }

    /// Logical block size in bytes of the format in use.
    pub fn block_size(&self) -> Option<u32> {
        self.current_format().and_then(|f| f.data_size())
    }

    /// Size in bytes (NSZE × block size).
    pub fn size_bytes(&self) -> Option<u64> {
        self.block_size()
            .map(|bs| self.nsze.saturating_mul(u64::from(bs)))
    }

    /// Decode 4096 bytes (at least 384 are needed: 64 format entries).
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        need("Identify Namespace", b, 384)?;
        let n = usize::from(b[25]) + 1;
        let lba_formats = (0..n.min(64))
            .map(|i| {
                let d = le32(b, 128 + 4 * i);
                LbaFormat {
                    ms: (d & 0xFFFF) as u16,
                    lbads: ((d >> 16) & 0xFF) as u8,
                    rp: ((d >> 24) & 0x3) as u8,
                }
            })
            .collect();
        Ok(IdentifyNamespace {
            nsze: le64(b, 0),
            ncap: le64(b, 8),
            nuse: le64(b, 16),
            flbas: b[26],
            lba_formats,
        })
    }
}
