//! SCSI builder/decoder tests with vectors from SPC-5, SBC-4 and SAT-4.

use super::*;
use crate::ata::{self, AtaRegisters};
use proptest::prelude::*;

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn sanitize_cdbs() {
    // SBC-4 5.30: byte 1 IMMED(7) AUSE(5) SERVICE ACTION(4:0).
    let (c, p) = ok(sanitize(&ScsiSanitizeAction::CryptoErase, true, true));
    assert_eq!(c.bytes(), &[0x48, 0xA3, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(p.is_empty());
    let (c, _) = ok(sanitize(&ScsiSanitizeAction::BlockErase, false, false));
    assert_eq!(c.cdb[1], 0x02);
    let (c, _) = ok(sanitize(&ScsiSanitizeAction::ExitFailureMode, false, false));
    assert_eq!(c.cdb[1], 0x1F);
    let ow = ScsiSanitizeAction::Overwrite {
        count: 3,
        invert: true,
        pattern: [0, 0, 0, 0],
    };
    let (c, p) = ok(sanitize(&ow, true, false));
    assert_eq!(c.bytes(), &[0x48, 0x81, 0, 0, 0, 0, 0, 0, 8, 0]);
    assert_eq!(p, vec![0x83, 0, 0, 4, 0, 0, 0, 0]);
    assert_eq!(decode_sanitize(&c, &p), Some((ow, true, false)));
    assert!(sanitize(
        &ScsiSanitizeAction::Overwrite {
            count: 0,
            invert: false,
            pattern: [0; 4]
        },
        false,
        false
    )
    .is_err());
}

#[test]
fn read_16_vector() {
    // SBC-4 5.16: 88h, LBA in bytes 2-9, TRANSFER LENGTH in 10-13.
    let c = read_16(0x0102_0304_0506_0708, 1, 512);
    assert_eq!(
        c.bytes(),
        &[0x88, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1, 0, 0]
    );
    assert_eq!(c.data, DataDir::In(512));
}

#[test]
fn read_capacity_16_vector() {
    let c = read_capacity_16();
    assert_eq!(&c.bytes()[..2], &[0x9E, 0x10]);
    assert_eq!(c.cdb[13], 32);
    let mut b = [0u8; 32];
    b[0..8].copy_from_slice(&0x0000_0000_7470_C05Fu64.to_be_bytes());
    b[8..12].copy_from_slice(&512u32.to_be_bytes());
    b[13] = 3;
    b[14] = 0x80;
    let cap = ok(decode_read_capacity_16(&b));
    assert_eq!(cap.bytes(), 0x7470_C060 * 512);
    assert_eq!(cap.physical_block(), 4096);
    assert!(cap.lbpme && !cap.prot_en);
}

#[test]
fn inquiry_and_vpd() {
    assert_eq!(
        inquiry(Some(0x80), 252).bytes(),
        &[0x12, 1, 0x80, 0, 252, 0]
    );
    let mut std = [b' '; 36];
    std[0] = 0;
    std[1] = 0x80;
    std[8..12].copy_from_slice(b"SEAG");
    std[16..25].copy_from_slice(b"ST4000NM0");
    std[32..36].copy_from_slice(b"E003");
    let i = ok(decode_inquiry(&std));
    assert_eq!(
        (i.vendor.as_str(), i.product.as_str(), i.revision.as_str()),
        ("SEAG", "ST4000NM0", "E003")
    );
    assert!(i.removable);
    let v80 = [
        0, 0x80, 0, 8, b'Z', b'1', b'Z', b'0', b'A', b'B', b' ', b' ',
    ];
    assert_eq!(ok(decode_vpd_80(&v80)), "Z1Z0AB");
    assert!(decode_vpd_80(&[0, 0x83, 0, 0]).is_err());
    // VPD 83h with an NAA-5 designator (binary, LU, type 3) and a T10 vendor one.
    let v83 = [
        0, 0x83, 0, 20, 0x01, 0x03, 0, 8, 0x50, 0x00, 0xC5, 0x00, 0x12, 0x34, 0x56, 0x78, 0x02,
        0x01, 0, 4, b'A', b'T', b'A', b' ',
    ];
    let d = ok(decode_vpd_83(&v83));
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].naa_wwn().as_deref(), Some("0x5000c50012345678"));
    assert_eq!(d[1].naa_wwn(), None);
}

#[test]
fn sense_progress_fixed_and_descriptor() {
    // Fixed: NOT READY 04h/1Bh, SKSV with progress 0x8000 (50 %).
    let mut f = [0u8; 18];
    f[0] = 0x70;
    f[2] = 0x02;
    f[7] = 10;
    f[12] = 0x04;
    f[13] = 0x1B;
    f[15] = 0x80;
    f[16] = 0x80;
    let s = ok(Sense::decode(&f));
    assert!(s.is_sanitize_in_progress());
    assert_eq!(s.progress, Some(0x8000));
    let d = [
        0x72, 0x02, 0x04, 0x1B, 0, 0, 0, 8, 0x02, 0x06, 0, 0, 0x80, 0x40, 0x00, 0,
    ];
    let s = ok(Sense::decode(&d));
    assert_eq!(
        (s.format, s.progress),
        (SenseFormat::Descriptor, Some(0x4000))
    );
    assert!(Sense::decode(&[0x7F]).is_err());
}

#[test]
fn another_progress_descriptor_0ah() {
    // SPC-5 4.4.2.11: NO SENSE, and descriptor 0Ah (length 06h) naming NOT READY
    // 04h/1Bh (sanitize in progress) at 0x4000 (25 %), bytes 6-7.
    let d = [
        0x72, 0x00, 0x00, 0x00, 0, 0, 0, 8, 0x0A, 0x06, 0x02, 0x04, 0x1B, 0x00, 0x40, 0x00,
    ];
    let s = ok(Sense::decode(&d));
    assert_eq!(s.key, SenseKey::NoSense);
    assert_eq!(
        s.another_progress,
        Some(AnotherProgress {
            key: SenseKey::NotReady,
            asc: 0x04,
            ascq: 0x1B,
            progress: 0x4000
        })
    );
    assert!(s.is_sanitize_in_progress());
    assert_eq!(s.sanitize_progress(), Some(0x4000));
    assert_eq!(s.encode(), d.to_vec());
    // The SKS form (02h) on NOT READY 04/1B gives the same answer.
    let sks = [
        0x72, 0x02, 0x04, 0x1B, 0, 0, 0, 8, 0x02, 0x06, 0, 0, 0x80, 0x40, 0x00, 0,
    ];
    assert_eq!(ok(Sense::decode(&sks)).sanitize_progress(), Some(0x4000));
    // A 0Ah descriptor about another operation is not a sanitize.
    let mut other = d;
    other[11] = 0x04;
    other[12] = 0x04;
    let s = ok(Sense::decode(&other));
    assert!(!s.is_sanitize_in_progress());
    assert_eq!(s.sanitize_progress(), None);
    // A truncated 0Ah descriptor is ignored, not misread.
    let short = [
        0x72, 0x00, 0x00, 0x00, 0, 0, 0, 6, 0x0A, 0x04, 0x02, 0x04, 0x1B, 0x00,
    ];
    assert_eq!(ok(Sense::decode(&short)).another_progress, None);
}

#[test]
fn ata_status_return_descriptor() {
    // SAT-4 table 186: 09h, length 0Ch, EXTEND, error, count, LBA interleaved, device, status.
    let d = [
        0x72, 0x01, 0x00, 0x1D, 0, 0, 0, 14, 0x09, 0x0C, 0x01, 0x00, 0x80, 0x00, 0x00, 0xFF, 0x00,
        0xFF, 0x00, 0x01, 0x40, 0x50,
    ];
    let s = ok(Sense::decode(&d));
    let r = s.ata.unwrap_or_else(|| panic!("no ATA descriptor"));
    assert_eq!(r.count, 0x8000);
    // LBA 23:16 = 01h (byte 11), 15:8 = FFh (byte 9), 7:0 = FFh (byte 7).
    assert_eq!(r.lba, 0x01_FFFF);
    assert_eq!((r.device, r.status), (0x40, 0x50));
    assert!(!r.failed());
}

#[test]
fn ata_pass_through_16_layout() {
    // SANITIZE CRYPTO SCRAMBLE EXT: non-data (3) with EXTEND, CK_COND.
    let c = ata_pass_through_16(&ata::sanitize_crypto_scramble(false));
    assert_eq!(
        c.bytes(),
        &[
            0x85, 0x07, 0x20, 0x00, 0x11, 0x00, 0x00, 0x43, 0x70, 0x00, 0x79, 0x00, 0x72, 0x40,
            0xB4, 0
        ]
    );
    // IDENTIFY: PIO-in (4), T_DIR, BYT_BLOK, T_LENGTH=2, count 1, and no
    // CK_COND on a data command (hdparm's libata/AHCI workaround).
    let c = ata_pass_through_16(&ata::identify_device());
    assert_eq!(&c.bytes()[..3], &[0x85, 0x08, 0x0E]);
    assert_eq!((c.cdb[6], c.cdb[14]), (1, 0xEC));
    let (pw, _) = ata::erase_unit(
        ata::PasswordId::User,
        false,
        &ok(ata::Password::new(b"x")),
        1,
    );
    assert_eq!(ata_pass_through_16(&pw).cdb[2], 0x06);
}

fn arb_ata() -> impl Strategy<Value = ata::AtaCommand> {
    (
        any::<u16>(),
        any::<u16>(),
        0u64..(1 << 48),
        any::<u8>(),
        any::<u8>(),
        0usize..4,
        any::<u32>(),
    )
        .prop_map(|(feature, count, lba, device, command, p, timeout_ms)| {
            let (protocol, data) = [
                (ata::AtaProtocol::NonData, DataDir::None),
                (ata::AtaProtocol::PioIn, DataDir::In(512)),
                (ata::AtaProtocol::PioOut, DataDir::Out(512)),
                (ata::AtaProtocol::Dma, DataDir::In(4096)),
            ][p];
            ata::AtaCommand {
                feature,
                count,
                lba,
                device,
                command,
                protocol,
                data,
                timeout_ms,
            }
        })
}

proptest! {
    #[test]
    fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Sense::decode(&b);
        let _ = decode_inquiry(&b);
        let _ = decode_vpd_80(&b);
        let _ = decode_vpd_83(&b);
        let _ = decode_read_capacity_16(&b);
        let _ = decode_ata_status_return(&b);
        let o = ata_outcome(2, &b);
        let _ = o.failed();
        let _ = o.registers_for(&ata::read_native_max_ext());
        if let Ok(s) = Sense::decode(&b) {
            let _ = s.sanitize_progress();
            if s.format == SenseFormat::Descriptor {
                prop_assert_eq!(Sense::decode(&s.encode()), Ok(s));
            }
        }
        let mut cdb = [0u8; 16];
        let n = b.len().min(16);
        cdb[..n].copy_from_slice(&b[..n]);
        let c = ScsiCdb { cdb, len: 16, data: DataDir::None, timeout_ms: 0 };
        let _ = decode_ata_pass_through_16(&c);
        let _ = decode_sanitize(&ScsiCdb { len: 10, ..c }, &b);
    }

    #[test]
    fn pass_through_round_trip(c in arb_ata()) {
        let d = decode_ata_pass_through_16(&ata_pass_through_16(&c)).ok_or_else(|| TestCaseError::fail("decode"))?;
        prop_assert_eq!(d, c);
    }

    #[test]
    fn sense_round_trip(key in 0u8..16, asc: u8, ascq: u8, prog: Option<u16>, desc: bool,
                        regs in (any::<u8>(), any::<u16>(), 0u64..(1 << 48), any::<u8>(), any::<u8>())) {
        let format = if desc { SenseFormat::Descriptor } else { SenseFormat::Fixed };
        let ata = desc.then_some(AtaRegisters { error: regs.0, count: regs.1, lba: regs.2, device: regs.3, status: regs.4 });
        let another_progress = desc.then_some(AnotherProgress { key: SenseKey::NotReady, asc: 0x04, ascq: 0x1B, progress: regs.1 });
        let s = Sense { format, key: SenseKey::from_code(key), asc, ascq, progress: prog, ata, another_progress };
        prop_assert_eq!(Sense::decode(&s.encode()).map_err(|e| TestCaseError::fail(e.to_string()))?, s);
    }
}

#[test]
fn report_supported_opcode_cdb_and_answer() {
    // SPC-5 6.35: A3h, SA 0Ch, RO 010b, opcode 48h, SA 0003h, alloc 20.
    let c = report_supported_opcode(0x48, 0x03);
    assert_eq!(
        c.bytes(),
        &[0xA3, 0x0C, 0x02, 0x48, 0x00, 0x03, 0, 0, 0, 20, 0, 0]
    );
    assert_eq!(c.data, DataDir::In(20));
    assert_eq!(
        decode_supported_opcode(&[0, 0x03, 0, 10]),
        Ok(OpcodeSupport::Standard)
    );
    assert!(decode_supported_opcode(&[0, 0x05]).is_ok_and(|s| s.is_supported()));
    assert_eq!(
        decode_supported_opcode(&[0, 0x81]),
        Ok(OpcodeSupport::NotSupported)
    );
    assert!(decode_supported_opcode(&[0]).is_err());
}

#[test]
fn mode_pages_for_descriptor_sense() {
    // SPC-5 6.14 / 6.12: 5Ah DBD PC=0 page 0Ah; 55h PF.
    assert_eq!(
        mode_sense_10(CONTROL_MODE_PAGE, 64).bytes(),
        &[0x5A, 0x08, 0x0A, 0, 0, 0, 0, 0, 64, 0]
    );
    assert_eq!(
        mode_select_10(20).bytes(),
        &[0x55, 0x10, 0, 0, 0, 0, 0, 0, 20, 0]
    );
    // libata's answer: 8-byte header, no block descriptors, control page with
    // PS set and D_SENSE clear (byte 2 = 0x02: GLTSD).
    let resp = [
        0, 18, 0, 0, 0, 0, 0, 0, 0x8A, 0x0A, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let (on, list) = ok(control_page_d_sense(&resp));
    assert!(!on);
    assert_eq!(
        list,
        vec![0, 0, 0, 0, 0, 0, 0, 0, 0x0A, 0x0A, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    let mut set = resp;
    set[10] = 0x06;
    assert!(ok(control_page_d_sense(&set)).0);
    assert!(control_page_d_sense(&resp[..9]).is_err());
    let mut other = resp;
    other[8] = 0x08;
    assert!(control_page_d_sense(&other).is_err());
}

proptest! {
    #[test]
    fn control_page_decoder_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = control_page_d_sense(&b);
    }
}
