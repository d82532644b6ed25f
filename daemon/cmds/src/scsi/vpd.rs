//! INQUIRY standard data and VPD pages 80h / 83h (SPC-5 6.7, 7.7.3, 7.7.4).

use crate::{ascii_trim, be16, need, DecodeError};
use serde::{Deserialize, Serialize};

/// Decoded standard INQUIRY data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inquiry {
    /// Peripheral device type (0 = direct access block device).
    pub device_type: u8,
    /// RMB: removable medium.
    pub removable: bool,
    /// T10 vendor identification (bytes 8-15).
    pub vendor: String,
    /// Product identification (bytes 16-31).
    pub product: String,
    /// Product revision level (bytes 32-35).
    pub revision: String,
}

/// Decode standard INQUIRY data (at least 36 bytes).
pub fn decode_inquiry(b: &[u8]) -> Result<Inquiry, DecodeError> {
    need("INQUIRY", b, 36)?;
    Ok(Inquiry {
        device_type: b[0] & 0x1F,
        removable: b[1] & 0x80 != 0,
        vendor: ascii_trim(&b[8..16]),
        product: ascii_trim(&b[16..32]),
        revision: ascii_trim(&b[32..36]),
    })
}

/// The payload of a VPD page after its 4-byte header, bounded by both the page
/// length and the buffer.
fn vpd_body<'a>(what: &'static str, b: &'a [u8], page: u8) -> Result<&'a [u8], DecodeError> {
    need(what, b, 4)?;
    if b[1] != page {
        return Err(DecodeError::Invalid {
            what,
            detail: format!("page code {:#04x}, expected {page:#04x}", b[1]),
        });
    }
    let len = usize::from(be16(b, 2));
    Ok(&b[4..(4 + len).min(b.len())])
}

/// Decode VPD page 80h: the unit serial number.
pub fn decode_vpd_80(b: &[u8]) -> Result<String, DecodeError> {
    vpd_body("VPD 80h", b, 0x80).map(ascii_trim)
}

/// One designation descriptor of VPD page 83h.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Designator {
    /// Code set: 1 binary, 2 ASCII, 3 UTF-8.
    pub code_set: u8,
    /// Association: 0 logical unit, 1 target port, 2 target device.
    pub association: u8,
    /// Designator type: 1 T10 vendor, 2 EUI-64, 3 NAA, 8 SCSI name string...
    pub designator_type: u8,
    /// Raw designator bytes.
    pub value: Vec<u8>,
}

impl Designator {
    /// For an NAA designator of the logical unit: the WWN as `0x` + hex.
    pub fn naa_wwn(&self) -> Option<String> {
        if self.designator_type != 3 || self.association != 0 || self.value.is_empty() {
            return None;
        }
        let hex: String = self.value.iter().map(|b| format!("{b:02x}")).collect();
        Some(format!("0x{hex}"))
    }
}

/// Decode VPD page 83h into its designation descriptors.
pub fn decode_vpd_83(b: &[u8]) -> Result<Vec<Designator>, DecodeError> {
    let mut body = vpd_body("VPD 83h", b, 0x83)?;
    let mut out = Vec::new();
    while body.len() >= 4 {
        let len = usize::from(body[3]);
        let end = (4 + len).min(body.len());
        out.push(Designator {
            code_set: body[0] & 0x0F,
            association: (body[1] >> 4) & 0x3,
            designator_type: body[1] & 0x0F,
            value: body[4..end].to_vec(),
        });
        body = &body[end..];
    }
    Ok(out)
}
