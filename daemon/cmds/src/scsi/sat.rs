//! ATA PASS-THROUGH(16) (SAT-4 12.2.2): carries an [`AtaCommand`] to SATA drives
//! behind libata, SAS HBAs and SAT-capable USB bridges, and reads the result
//! registers back out of the sense data.
//!
//! CK_COND ("return the registers even on success") is set only on non-data
//! commands. On PIO data-in/out commands (IDENTIFY, SECURITY with a payload)
//! libata on AHCI reads the registers while DRQ is still set and answers
//! ABORTED COMMAND for a command that worked, and bridges mishandle it too;
//! hdparm (`sgio.c`, "libata/AHCI workaround: don't demand sense data for
//! IDENTIFY commands") leaves it off for data commands for that reason. A data
//! command that fails still comes back with CHECK CONDITION and its registers.

use super::{ScsiCdb, Sense, SenseFormat, SenseKey};
use crate::ata::{AtaCommand, AtaProtocol, AtaRegisters};
use crate::DataDir;

/// Opcode of ATA PASS-THROUGH(16). The 12-byte A1h variant collides with MMC BLANK.
pub const ATA_PASS_THROUGH_16: u8 = 0x85;

/// CDB byte 2 bits (SAT-4 table 163).
pub mod byte2 {
    /// CK_COND: return the ATA registers in sense data even on success.
    pub const CK_COND: u8 = 1 << 5;
    /// T_TYPE: transfer length in logical sectors rather than 512-byte blocks.
    pub const T_TYPE: u8 = 1 << 4;
    /// T_DIR: data from the device.
    pub const T_DIR_IN: u8 = 1 << 3;
    /// BYT_BLOK: transfer length in blocks.
    pub const BYT_BLOK: u8 = 1 << 2;
    /// T_LENGTH = 2: the transfer length is in the COUNT field.
    pub const T_LENGTH_COUNT: u8 = 2;
}

fn protocol_code(p: AtaProtocol) -> u8 {
    // SAT-4 table 162.
    match p {
        AtaProtocol::NonData => 3,
        AtaProtocol::PioIn => 4,
        AtaProtocol::PioOut => 5,
        AtaProtocol::Dma => 6,
    }
}

/// Build the CDB: CK_COND on non-data commands only; T_TYPE when the data
/// phase is counted in logical sectors larger than 512 bytes.
pub fn ata_pass_through_16(c: &AtaCommand) -> ScsiCdb {
    let mut b = [0u8; 16];
    b[0] = ATA_PASS_THROUGH_16;
    b[1] = protocol_code(c.protocol) << 1 | u8::from(c.is_ext());
    let blocks = |n: u32| {
        let t_type = if c.count != 0 && n != u32::from(c.count) * 512 {
            byte2::T_TYPE
        } else {
            0
        };
        byte2::BYT_BLOK | byte2::T_LENGTH_COUNT | t_type
    };
    b[2] = match c.data {
        DataDir::None => byte2::CK_COND,
        DataDir::In(n) => byte2::T_DIR_IN | blocks(n),
        DataDir::Out(n) => blocks(n),
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

/// The ATA side of an ATA PASS-THROUGH answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtaOutcome {
    /// SCSI status byte.
    pub status: u8,
    /// Decoded sense data, if any was returned and it parsed.
    pub sense: Option<Sense>,
    /// Result registers from the ATA Status Return descriptor (or the fixed
    /// format information fields). `None`: the translator returned none (GOOD
    /// without CK_COND, or a bridge that ignores CK_COND or lacks SAT).
    pub registers: Option<AtaRegisters>,
    /// False when fixed-format sense said bits above LBA 23:0 / COUNT 7:0 were
    /// non-zero but could not carry them (libata without D_SENSE).
    pub registers_complete: bool,
}

impl AtaOutcome {
    /// The drive reported ERR or DF, or the translator rejected the command.
    pub fn failed(&self) -> bool {
        match (&self.registers, &self.sense) {
            (Some(r), _) => r.failed(),
            (None, Some(s)) => !matches!(s.key, SenseKey::NoSense | SenseKey::RecoveredError),
            (None, None) => self.status != 0,
        }
    }

    /// The registers the caller may act on for `cmd`, or why there are none.
    ///
    /// A command whose result lives in the registers ([`AtaCommand::returns_registers`])
    /// needs them complete: reading a truncated native max address or sanitize
    /// status as zeros would misread the drive. Other commands only need the
    /// verdict: GOOD is success, a rejection without registers is an abort.
    pub fn registers_for(&self, cmd: &AtaCommand) -> Result<AtaRegisters, String> {
        match self.registers {
            Some(r) if self.registers_complete || !cmd.returns_registers() || r.failed() => Ok(r),
            Some(_) => Err("ATA result registers truncated by fixed-format sense data".into()),
            None if self.failed() => Ok(AtaRegisters::aborted()),
            None if cmd.returns_registers() => Err(
                "no ATA result registers came back (CK_COND ignored: a bridge without SAT?)".into(),
            ),
            None => Ok(AtaRegisters::ok()),
        }
    }
}

/// Decode the ATA part of an ATA PASS-THROUGH answer: SCSI `status` and the
/// raw sense bytes (pure; both the Linux edge and the drive model use it).
pub fn ata_outcome(status: u8, sense_bytes: &[u8]) -> AtaOutcome {
    let sense = (!sense_bytes.is_empty())
        .then(|| Sense::decode(sense_bytes).ok())
        .flatten();
    let (registers, registers_complete) = match &sense {
        Some(s) if s.ata.is_some() => (s.ata, true),
        Some(s) if s.format == SenseFormat::Fixed => match decode_fixed_ata(sense_bytes, s) {
            Some((r, complete)) => (Some(r), complete),
            None => (None, true),
        },
        _ => (None, true),
    };
    AtaOutcome {
        status,
        sense,
        registers,
        registers_complete,
    }
}

/// ATA registers from fixed-format sense, in either of the two layouts found
/// in the field. Returns the registers and whether they are complete.
///
/// - SAT-4 12.2.2.6 (VALID set, or INFORMATION non-zero): bytes 3-6 hold
///   ERROR, STATUS, DEVICE, COUNT(7:0); byte 8 holds EXTEND (7), COUNT UPPER
///   NONZERO (6), LBA UPPER NONZERO (5); bytes 9-11 LBA(23:0).
/// - Linux libata before 6.10 (VALID clear, INFORMATION zero; fixed by "ata:
///   libata-scsi: Fix offsets for the fixed format sense data", not in every
///   stable branch: Debian's 6.1.192 still has it): the same fields at bytes
///   8-11 and 16-19. The kernel reports 18 sense bytes, so LBA(23:8) is cut
///   off and the registers are incomplete.
///
/// Only trusted when the translator ran the command: ILLEGAL REQUEST, NOT
/// READY and UNIT ATTENTION come from the translator itself.
pub fn decode_fixed_ata(b: &[u8], s: &Sense) -> Option<(AtaRegisters, bool)> {
    if s.format != SenseFormat::Fixed || b.len() < 12 {
        return None;
    }
    let from_device = (s.asc, s.ascq) == (0x00, 0x1D)
        || matches!(
            s.key,
            SenseKey::AbortedCommand | SenseKey::MediumError | SenseKey::HardwareError
        );
    if !from_device {
        return None;
    }
    let sat = b[0] & 0x80 != 0 || b[3..7].iter().any(|&x| x != 0);
    let (regs, flags, lba) = if sat {
        (&b[3..7], b.get(8), b.get(9..12))
    } else {
        (&b[8..12], b.get(16), b.get(17..20))
    };
    let lba_bytes = lba.map_or([0u8; 3], |l| [l[0], l[1], l[2]]);
    let complete = flags.is_some_and(|f| f & 0x60 == 0) && lba.is_some();
    Some((
        AtaRegisters {
            error: regs[0],
            status: regs[1],
            device: regs[2],
            count: u16::from(regs[3]),
            lba: u64::from_be_bytes([0, 0, 0, 0, 0, lba_bytes[2], lba_bytes[1], lba_bytes[0]]),
        },
        complete,
    ))
}

/// Which fixed-format layout a translator writes the registers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedAtaLayout {
    /// SAT-4 12.2.2.6: VALID set, registers in INFORMATION and the
    /// command-specific field; 18 bytes.
    Sat4,
    /// Linux libata before 6.10: the fields at bytes 8-11 and 16-19, with the
    /// kernel reporting only 18 bytes (LBA 23:8 is lost).
    LibataLegacy,
}

/// Encode registers as fixed-format sense in `layout` (the device side, used
/// by the drive model), with the upper-bits-nonzero flags set when COUNT or
/// LBA do not fit.
pub fn encode_fixed_ata(
    key: SenseKey,
    asc: u8,
    ascq: u8,
    r: &AtaRegisters,
    ext: bool,
    layout: FixedAtaLayout,
) -> Vec<u8> {
    let mut b = vec![0u8; 18];
    b[2] = key.code();
    b[7] = 10;
    b[12] = asc;
    b[13] = ascq;
    let flags =
        u8::from(ext) << 7 | u8::from(r.count > 0xFF) << 6 | u8::from(r.lba > 0x00FF_FFFF) << 5;
    let l = r.lba.to_le_bytes();
    let fields = [r.error, r.status, r.device, r.count as u8];
    match layout {
        FixedAtaLayout::Sat4 => {
            b[0] = 0xF0;
            b[3..7].copy_from_slice(&fields);
            b[8] = flags;
            b[9..12].copy_from_slice(&l[..3]);
        }
        FixedAtaLayout::LibataLegacy => {
            b[0] = 0x70;
            b[8..12].copy_from_slice(&fields);
            b[16] = flags;
            b[17] = l[0];
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ata::status;

    #[test]
    fn descriptor_sense_gives_full_registers() {
        let regs = AtaRegisters {
            error: 0,
            count: 0x1234,
            lba: 0x0000_ABCD_EF01_2345,
            device: 0x40,
            status: status::DRDY,
        };
        let mut s = Sense::new(SenseFormat::Descriptor, SenseKey::RecoveredError, 0, 0x1D);
        s.ata = Some(regs);
        let o = ata_outcome(2, &s.encode());
        assert_eq!(o.registers, Some(regs));
        assert!(o.registers_complete);
        assert!(!o.failed());
    }

    #[test]
    fn fixed_sense_gives_low_registers_and_flags_lost_bits() {
        // SAT-4 layout: RECOVERED ERROR, 00/1D, registers in INFORMATION.
        let mut b = vec![0u8; 18];
        b[0] = 0xF0;
        b[2] = 0x01;
        b[3..7].copy_from_slice(&[0x04, 0x51, 0x40, 0x07]);
        b[7] = 10;
        b[8] = 0x80 | 0x20;
        b[9..12].copy_from_slice(&[0x45, 0x23, 0x01]);
        b[12] = 0x00;
        b[13] = 0x1D;
        let o = ata_outcome(2, &b);
        let r = o.registers.unwrap_or_default();
        assert_eq!(
            (r.error, r.status, r.device, r.count),
            (0x04, 0x51, 0x40, 7)
        );
        assert_eq!(r.lba, 0x01_2345);
        assert!(!o.registers_complete);
        assert!(o.failed(), "ERR is set in STATUS 0x51");
        b[8] = 0x80;
        assert!(ata_outcome(2, &b).registers_complete);
    }

    /// Sense bytes captured from Debian's 6.1.192 kernel (libata, QEMU AHCI
    /// disk) in the QEMU tier test.
    #[test]
    fn legacy_libata_fixed_layout_from_a_real_kernel() {
        // IDENTIFY DEVICE (PIO-in) sent with CK_COND: DRQ still set, so libata
        // says ABORTED COMMAND 00/00, but the registers show no ERR.
        let identify = [
            0x70, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x58, 0x40, 0x01, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00,
        ];
        let o = ata_outcome(2, &identify);
        let r = o.registers.unwrap_or_else(|| panic!("{o:?}"));
        assert_eq!(
            (r.error, r.status, r.device, r.count),
            (0x00, 0x58, 0x40, 1)
        );
        assert!(!o.failed());
        assert!(!o.registers_complete, "LBA(23:8) is past the 18 bytes");
        // SANITIZE STATUS EXT on a drive without the feature set: ERR + ABRT.
        let sanitize = [
            0x70, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x04, 0x41, 0x40, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x80, 0x00,
        ];
        let o = ata_outcome(2, &sanitize);
        let r = o.registers.unwrap_or_else(|| panic!("{o:?}"));
        assert!(r.is_abort());
        assert!(o.failed());
        // The same registers in a 20-byte legacy sense are complete.
        let mut long = vec![0u8; 20];
        long[0] = 0x70;
        long[2] = 0x01;
        long[7] = 12;
        long[8..12].copy_from_slice(&[0, 0x50, 0x40, 2]);
        long[13] = 0x1D;
        long[16] = 0x80;
        long[17..20].copy_from_slice(&[0x33, 0x22, 0x11]);
        let o = ata_outcome(2, &long);
        assert_eq!(o.registers.map(|r| r.lba), Some(0x11_2233));
        assert!(o.registers_complete);
    }

    #[test]
    fn encoded_fixed_layouts_decode_back() {
        let r = AtaRegisters {
            error: 0,
            count: 0x8000,
            lba: 0x12_3456,
            device: 0x40,
            status: 0x50,
        };
        for (layout, lba, complete) in [
            (FixedAtaLayout::Sat4, 0x12_3456, false),
            (FixedAtaLayout::LibataLegacy, 0, false),
        ] {
            let b = encode_fixed_ata(SenseKey::RecoveredError, 0, 0x1D, &r, true, layout);
            let o = ata_outcome(2, &b);
            let got = o.registers.unwrap_or_else(|| panic!("{layout:?}"));
            assert_eq!((got.status, got.lba), (0x50, lba), "{layout:?}");
            assert_eq!(o.registers_complete, complete, "COUNT(15:8) was lost");
        }
        let small = AtaRegisters {
            count: 1,
            lba: 5,
            ..r
        };
        let b = encode_fixed_ata(
            SenseKey::RecoveredError,
            0,
            0x1D,
            &small,
            true,
            FixedAtaLayout::Sat4,
        );
        assert!(ata_outcome(2, &b).registers_complete);
    }

    #[test]
    fn registers_for_refuses_what_it_cannot_read() {
        let native = crate::ata::read_native_max_ext();
        let identify = crate::ata::identify_device();
        // GOOD without sense: fine for IDENTIFY (no CK_COND), useless for READ NATIVE MAX.
        let good = ata_outcome(0, &[]);
        assert_eq!(good.registers_for(&identify), Ok(AtaRegisters::ok()));
        assert!(good.registers_for(&native).is_err());
        // A translator rejection (no registers) is an abort for anything.
        let rej = ata_outcome(
            2,
            &Sense::new(SenseFormat::Fixed, SenseKey::IllegalRequest, 0x20, 0).encode(),
        );
        assert!(rej.registers_for(&native).is_ok_and(|r| r.is_abort()));
        // Truncated registers: an error for READ NATIVE MAX, fine for IDENTIFY.
        let trunc = encode_fixed_ata(
            SenseKey::RecoveredError,
            0,
            0x1D,
            &AtaRegisters {
                lba: 0x12_3456,
                status: 0x50,
                ..AtaRegisters::default()
            },
            true,
            FixedAtaLayout::LibataLegacy,
        );
        let o = ata_outcome(2, &trunc);
        assert!(o.registers_for(&native).is_err());
        assert!(o.registers_for(&identify).is_ok());
    }

    #[test]
    fn translator_rejection_has_no_registers_and_fails() {
        // USB bridge without SAT: ILLEGAL REQUEST, invalid opcode 20/00.
        let s = Sense::new(SenseFormat::Fixed, SenseKey::IllegalRequest, 0x20, 0x00);
        let o = ata_outcome(2, &s.encode());
        assert_eq!(o.registers, None);
        assert!(o.failed());
        // GOOD without sense: nothing to read back, not a failure.
        let o = ata_outcome(0, &[]);
        assert_eq!(o.registers, None);
        assert!(!o.failed());
    }
}
