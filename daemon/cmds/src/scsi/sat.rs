//! ATA PASS-THROUGH(16) (SAT-4 12.2.2): carries an [`AtaCommand`] to SATA drives
//! behind SAS HBAs and SAT-capable USB bridges.

use super::ScsiCdb;
use crate::ata::{AtaCommand, AtaProtocol};
use crate::DataDir;

/// Opcode of ATA PASS-THROUGH(16). The 12-byte A1h variant collides with MMC BLANK.
pub const ATA_PASS_THROUGH_16: u8 = 0x85;

fn protocol_code(p: AtaProtocol) -> u8 {
    // SAT-4 table 162.
    match p {
        AtaProtocol::NonData => 3,
        AtaProtocol::PioIn => 4,
        AtaProtocol::PioOut => 5,
        AtaProtocol::Dma => 6,
    }
}

/// Build the CDB. CK_COND is always set so the result registers come back in an
/// ATA Status Return descriptor, which sanitize status and HPA need.
pub fn ata_pass_through_16(c: &AtaCommand) -> ScsiCdb {
    let mut b = [0u8; 16];
    b[0] = ATA_PASS_THROUGH_16;
    b[1] = protocol_code(c.protocol) << 1 | u8::from(c.is_ext());
    // T_LENGTH 2 = length in COUNT, BYT_BLOK 1 = in 512-byte blocks, T_DIR 1 = in.
    b[2] = 1 << 5
        | match c.data {
            DataDir::None => 0,
            DataDir::In(_) => 1 << 3 | 1 << 2 | 2,
            DataDir::Out(_) => 1 << 2 | 2,
        };
    let f = c.feature.to_be_bytes();
    let n = c.count.to_be_bytes();
    let l = c.lba.to_be_bytes(); // l[2..8] = LBA 47:0
    b[3] = f[0];
    b[4] = f[1];
    b[5] = n[0];
    b[6] = n[1];
    b[7] = l[4]; // 31:24
    b[8] = l[7]; // 7:0
    b[9] = l[3]; // 39:32
    b[10] = l[6]; // 15:8
    b[11] = l[2]; // 47:40
    b[12] = l[5]; // 23:16
    b[13] = c.device;
    b[14] = c.command;
    ScsiCdb {
        cdb: b,
        len: 16,
        data: c.data,
        timeout_ms: c.timeout_ms,
    }
}

/// Decode an ATA PASS-THROUGH(16) CDB back into the command (what a SAT layer does).
pub fn decode_ata_pass_through_16(cdb: &ScsiCdb) -> Option<AtaCommand> {
    let b = &cdb.cdb;
    if b[0] != ATA_PASS_THROUGH_16 || cdb.len != 16 {
        return None;
    }
    let protocol = match (b[1] >> 1) & 0xF {
        3 => AtaProtocol::NonData,
        4 => AtaProtocol::PioIn,
        5 => AtaProtocol::PioOut,
        6 => AtaProtocol::Dma,
        _ => return None,
    };
    let ext = b[1] & 1 != 0;
    let hi = |x: u8| if ext { x } else { 0 };
    let lba = u64::from_be_bytes([0, 0, hi(b[11]), hi(b[9]), hi(b[7]), b[12], b[10], b[8]]);
    Some(AtaCommand {
        feature: u16::from_be_bytes([hi(b[3]), b[4]]),
        count: u16::from_be_bytes([hi(b[5]), b[6]]),
        lba,
        device: b[13],
        command: b[14],
        protocol,
        data: cdb.data,
        timeout_ms: cdb.timeout_ms,
    })
}
