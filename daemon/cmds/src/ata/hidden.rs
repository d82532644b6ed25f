//! Hidden areas: Host Protected Area (ATA8-ACS, READ NATIVE MAX ADDRESS EXT /
//! SET MAX ADDRESS EXT), its ACS-3 replacement Accessible Max Address
//! Configuration (78h GET NATIVE MAX ADDRESS EXT / SET ACCESSIBLE MAX ADDRESS
//! EXT / FREEZE ACCESSIBLE MAX ADDRESS EXT), and Device Configuration Overlay
//! identification.
//!
//! Sequencing rules a drive enforces (the runner must keep them):
//!
//! - SET MAX ADDRESS EXT is aborted unless a READ NATIVE MAX ADDRESS EXT is the
//!   command immediately before it (ATA8-ACS 7.49; Fujitsu MHW2xxxBJ manual
//!   C141-E259 5-155 "The READ NATIVE MAX ADDRESS EXT command (27h) is not
//!   issued immediately before this command: ST = 51h, ER = 04h"; hdparm's
//!   `do_set_max_sectors` re-reads the native max first for the same reason).
//!   Only one non-volatile SET MAX per power cycle; a second one gets IDNF.
//! - A drive with the Accessible Max Address Configuration feature set (IDENTIFY
//!   word 119 bit 8, words 119-120 valid per word 86 bit 15) takes 78h instead;
//!   the setting is non-volatile (hdparm: "Power cycle your device after every
//!   ACCESSIBLE MAX ADDRESS"), and a FREEZE makes SET fail until power-on.

use super::{opcode, AtaCommand, AtaProtocol, AtaRegisters, LBA48_MAX};
use crate::{BuildError, DataDir};
use serde::{Deserialize, Serialize};

/// FEATURE codes of ACCESSIBLE MAX ADDRESS CONFIGURATION (78h), ACS-3 7.7.
pub mod ama {
    /// GET NATIVE MAX ADDRESS EXT: the native max LBA comes back in LBA(47:0).
    pub const GET_NATIVE_MAX: u16 = 0x0000;
    /// SET ACCESSIBLE MAX ADDRESS EXT: LBA(47:0) is the new max LBA.
    pub const SET_ACCESSIBLE_MAX: u16 = 0x0001;
    /// FREEZE ACCESSIBLE MAX ADDRESS EXT: SET is aborted until power-on reset.
    pub const FREEZE_ACCESSIBLE_MAX: u16 = 0x0002;
}

fn check48(max_lba: u64) -> Result<(), BuildError> {
    if max_lba > LBA48_MAX {
        return Err(BuildError::OutOfRange(format!(
            "max LBA {max_lba} exceeds 48 bits"
        )));
    }
    Ok(())
}

/// READ NATIVE MAX ADDRESS EXT (27h): the native max LBA comes back in LBA.
pub fn read_native_max_ext() -> AtaCommand {
    AtaCommand::non_data(opcode::READ_NATIVE_MAX_EXT, 0, 0, 0)
}

/// SET MAX ADDRESS EXT (37h): set the accessible max LBA. `persistent` sets the
/// value-volatile bit (COUNT bit 0) so the setting survives a power cycle.
/// Must come immediately after [`read_native_max_ext`].
pub fn set_max_ext(max_lba: u64, persistent: bool) -> Result<AtaCommand, BuildError> {
    check48(max_lba)?;
    Ok(AtaCommand::non_data(
        opcode::SET_MAX_EXT,
        0,
        u16::from(persistent),
        max_lba,
    ))
}

/// GET NATIVE MAX ADDRESS EXT (78h/0000h).
pub fn get_native_max_address_ext() -> AtaCommand {
    AtaCommand::non_data(opcode::ACCESSIBLE_MAX_ADDRESS, ama::GET_NATIVE_MAX, 0, 0)
}

/// SET ACCESSIBLE MAX ADDRESS EXT (78h/0001h). Non-volatile. COUNT stays 0
/// (its bit 0 is a later standard's "change identify strings" option).
pub fn set_accessible_max_address_ext(max_lba: u64) -> Result<AtaCommand, BuildError> {
    check48(max_lba)?;
    Ok(AtaCommand::non_data(
        opcode::ACCESSIBLE_MAX_ADDRESS,
        ama::SET_ACCESSIBLE_MAX,
        0,
        max_lba,
    ))
}

/// FREEZE ACCESSIBLE MAX ADDRESS EXT (78h/0002h). Lethe never sends it to a
/// drive it erases; the simulator uses it to model a BIOS that froze the setting.
pub fn freeze_accessible_max_address_ext() -> AtaCommand {
    AtaCommand::non_data(
        opcode::ACCESSIBLE_MAX_ADDRESS,
        ama::FREEZE_ACCESSIBLE_MAX,
        0,
        0,
    )
}

/// The native max LBA from the registers READ NATIVE MAX ADDRESS EXT or GET
/// NATIVE MAX ADDRESS EXT returned; the native capacity is this plus one.
pub fn native_max_lba(r: &AtaRegisters) -> u64 {
    r.lba & LBA48_MAX
}

/// How a drive exposes hidden-area control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HiddenAreaFeature {
    /// Host Protected Area (word 82 bit 10): 27h / 37h, volatile removal.
    Hpa,
    /// Accessible Max Address Configuration (word 119 bit 8): 78h, non-volatile.
    Ama,
}

/// DEVICE CONFIGURATION IDENTIFY (B1h/C2h): 512 bytes PIO-in.
pub fn dco_identify() -> AtaCommand {
    AtaCommand {
        protocol: AtaProtocol::PioIn,
        data: DataDir::In(512),
        ..AtaCommand::non_data(opcode::DCO, super::dco::IDENTIFY, 1, 0)
    }
}

/// DEVICE CONFIGURATION RESTORE (B1h/C0h): undo a DCO, exposing native capacity.
pub fn dco_restore() -> AtaCommand {
    AtaCommand::non_data(opcode::DCO, super::dco::RESTORE, 0, 0)
}

/// Decoded DEVICE CONFIGURATION IDENTIFY data (ACS-2 table 20): the max LBA
/// the overlay allows (words 3-6) and whether the checksum is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcoIdentify {
    /// Word 0: data structure revision (0x0002).
    pub revision: u16,
    /// Words 3-6: maximum LBA the device could report with DCO restored.
    pub max_lba: u64,
}

/// Decode DEVICE CONFIGURATION IDENTIFY data.
pub fn decode_dco_identify(b: &[u8]) -> Result<DcoIdentify, crate::DecodeError> {
    crate::need("DCO IDENTIFY", b, 512)?;
    super::identify::check_integrity("DCO IDENTIFY", &b[..512])?;
    Ok(DcoIdentify {
        revision: crate::le16(b, 0),
        max_lba: crate::le64(b, 6) & LBA48_MAX,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::{ata_pass_through_16, Sense};

    fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn set_max_rejects_over_48_bits_and_sets_vv() {
        assert!(set_max_ext(1 << 48, false).is_err());
        let c = ok(set_max_ext(0x0012_3456_789A, true));
        assert_eq!((c.command, c.count, c.lba), (0x37, 1, 0x0012_3456_789A));
        assert!(c.is_ext());
        assert_eq!(ok(set_max_ext(5, false)).count, 0, "volatile");
        assert_eq!(read_native_max_ext().command, 0x27);
    }

    /// ACS-3 7.7 (ACCESSIBLE MAX ADDRESS CONFIGURATION): every sub-command is
    /// 78h, non-data, 48-bit, with the sub-command in FEATURE(15:0) and the
    /// address in LBA(47:0); COUNT is reserved. Wrapped in ATA PASS-THROUGH(16)
    /// (SAT-4 table 162): byte 1 PROTOCOL 3 (non-data) << 1 | EXTEND, byte 2
    /// CK_COND, bytes 3/4 FEATURE, 5/6 COUNT, 7..12 LBA interleaved, 13 DEVICE,
    /// 14 COMMAND.
    #[test]
    fn ama_command_vectors() {
        let get = get_native_max_address_ext();
        assert_eq!(
            (get.command, get.feature, get.count, get.lba),
            (0x78, 0x0000, 0, 0)
        );
        assert_eq!(get.protocol, AtaProtocol::NonData);
        assert!(get.is_ext());
        assert_eq!(
            ata_pass_through_16(&get).bytes(),
            &[0x85, 0x07, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x78, 0]
        );

        let set = ok(set_accessible_max_address_ext(0x0000_1D1C_596F));
        assert_eq!((set.command, set.feature, set.count), (0x78, 0x0001, 0));
        assert_eq!(
            ata_pass_through_16(&set).bytes(),
            &[
                0x85, 0x07, 0x20, 0x00, 0x01, 0x00, 0x00, // FEATURE 0001h, COUNT 0
                0x1D, 0x6F, // LBA 31:24, 7:0
                0x00, 0x59, // LBA 39:32, 15:8
                0x00, 0x1C, // LBA 47:40, 23:16
                0x40, 0x78, 0x00
            ]
        );
        assert!(set_accessible_max_address_ext(1 << 48).is_err());

        let frz = freeze_accessible_max_address_ext();
        assert_eq!((frz.command, frz.feature, frz.lba), (0x78, 0x0002, 0));
        assert_eq!(ata_pass_through_16(&frz).cdb[4], 0x02);
    }

    /// GET NATIVE MAX ADDRESS EXT normal output: LBA(47:0) = native max, read
    /// from the ATA Status Return descriptor (SAT-4 12.2.2.6): bytes 6/8/10
    /// hold LBA 31:24, 39:32, 47:40 and 7/9/11 hold LBA 7:0, 15:8, 23:16.
    #[test]
    fn native_max_from_the_status_return_descriptor() {
        // A 250 GB drive: 488 397 168 sectors, native max LBA 0x1D1C596F.
        let sense = [
            0x72, 0x01, 0x00, 0x1D, 0, 0, 0, 14, 0x09, 0x0C, 0x01, 0x00, 0x00, 0x00, 0x1D, 0x6F,
            0x00, 0x59, 0x00, 0x1C, 0x40, 0x50,
        ];
        let r = ok(Sense::decode(&sense))
            .ata
            .unwrap_or_else(|| panic!("no descriptor"));
        assert_eq!(native_max_lba(&r) + 1, 488_397_168);
        assert!(!r.failed());
    }

    #[test]
    fn dco_commands() {
        assert_eq!(
            (dco_identify().command, dco_identify().feature),
            (0xB1, 0xC2)
        );
        assert_eq!(dco_restore().feature, 0xC0);
    }

    #[test]
    fn dco_identify_decodes_max_lba_and_checks_sum() {
        let mut b = [0u8; 512];
        b[0] = 2;
        b[6..12].copy_from_slice(&[0x30, 0x75, 0xF9, 0x0D, 0, 0]);
        b[510] = 0xA5;
        let sum = b[..511].iter().fold(0u8, |a, &x| a.wrapping_add(x));
        b[511] = 0u8.wrapping_sub(sum);
        let d = ok(decode_dco_identify(&b));
        assert_eq!(d.max_lba, 0x0DF9_7530);
        b[100] ^= 1;
        assert!(decode_dco_identify(&b).is_err());
    }
}
