//! READ SECTORS EXT / WRITE SECTORS EXT (PIO): user data through the ATA
//! pass-through, for the few sectors the block device cannot reach.
//!
//! After an HPA or Accessible Max Address is removed, Linux keeps the block
//! device at its old size until the disk is revalidated, so the read-back
//! canaries in the formerly hidden area are written and read this way.

use super::{opcode, AtaCommand, AtaProtocol, SHORT_TIMEOUT_MS};
use crate::{BuildError, DataDir};

/// Most sectors one command moves here (the canaries need a few KiB).
pub const MAX_PIO_SECTORS: u16 = 256;

fn pio(
    command: u8,
    lba: u64,
    sectors: u16,
    sector_size: u32,
    out: bool,
) -> Result<AtaCommand, BuildError> {
    if sectors == 0 || sectors > MAX_PIO_SECTORS {
        return Err(BuildError::OutOfRange(format!(
            "PIO transfer of {sectors} sectors (1..={MAX_PIO_SECTORS})"
        )));
    }
    if !matches!(sector_size, 512 | 4096) {
        return Err(BuildError::OutOfRange(format!(
            "logical sector size {sector_size} (512 or 4096)"
        )));
    }
    let end = lba.checked_add(u64::from(sectors));
    if end.is_none_or(|e| e > super::LBA48_MAX + 1) {
        return Err(BuildError::OutOfRange(format!(
            "LBA {lba} + {sectors} exceeds 48 bits"
        )));
    }
    let len = u32::from(sectors) * sector_size;
    Ok(AtaCommand {
        feature: 0,
        count: sectors,
        lba,
        device: 0x40,
        command,
        protocol: if out {
            AtaProtocol::PioOut
        } else {
            AtaProtocol::PioIn
        },
        data: if out {
            DataDir::Out(len)
        } else {
            DataDir::In(len)
        },
        timeout_ms: SHORT_TIMEOUT_MS,
    })
}

/// READ SECTORS EXT (24h): `sectors` logical sectors from `lba`.
pub fn read_sectors_ext(
    lba: u64,
    sectors: u16,
    sector_size: u32,
) -> Result<AtaCommand, BuildError> {
    pio(opcode::READ_SECTORS_EXT, lba, sectors, sector_size, false)
}

/// WRITE SECTORS EXT (34h): `sectors` logical sectors at `lba`.
pub fn write_sectors_ext(
    lba: u64,
    sectors: u16,
    sector_size: u32,
) -> Result<AtaCommand, BuildError> {
    pio(opcode::WRITE_SECTORS_EXT, lba, sectors, sector_size, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::ata_pass_through_16;

    #[test]
    fn read_and_write_sectors_ext_vectors() {
        // ACS-3 7.28: 24h, COUNT = sectors, LBA(47:0), DEVICE bit 6 = LBA.
        let r = read_sectors_ext(0x0012_3456_789A, 8, 512).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (r.command, r.count, r.lba, r.device),
            (0x24, 8, 0x0012_3456_789A, 0x40)
        );
        assert_eq!(
            (r.protocol, r.data),
            (AtaProtocol::PioIn, DataDir::In(4096))
        );
        assert!(r.is_ext());
        // SAT-4: PIO-in (4) << 1 | EXTEND; no CK_COND on a data command;
        // T_DIR in, BYT_BLOK, T_LENGTH in COUNT; T_TYPE 0 (512-byte blocks).
        let c = ata_pass_through_16(&r);
        assert_eq!(&c.bytes()[..3], &[0x85, 0x09, 0x0E]);
        let w = write_sectors_ext(100, 1, 4096).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((w.command, w.data), (0x34, DataDir::Out(4096)));
        // A 4096-byte logical sector: T_TYPE 1 (length in logical sectors).
        assert_eq!(ata_pass_through_16(&w).cdb[2], 0x16);
    }

    #[test]
    fn bad_transfers_are_refused() {
        assert!(read_sectors_ext(0, 0, 512).is_err());
        assert!(read_sectors_ext(0, MAX_PIO_SECTORS + 1, 512).is_err());
        assert!(read_sectors_ext(0, 1, 520).is_err());
        assert!(write_sectors_ext(super::super::LBA48_MAX, 2, 512).is_err());
        assert!(write_sectors_ext(super::super::LBA48_MAX, 1, 512).is_ok());
    }
}
