//! NVMe builder/decoder tests with byte vectors from NVMe Base 2.0.

use super::*;
use proptest::prelude::*;

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn sanact_values_are_not_off_by_one() {
    // Figure 372: 001b exit failure mode, 010b block, 011b overwrite, 100b crypto.
    let p = |action| SanitizeParams {
        action,
        ause: false,
        overwrite_passes: 1,
        invert: false,
        no_dealloc: false,
        pattern: 0,
    };
    assert_eq!(ok(sanitize(&p(SanitizeAction::BlockErase))).cdw10, 2);
    assert_eq!(ok(sanitize(&p(SanitizeAction::CryptoErase))).cdw10, 4);
    assert_eq!(ok(sanitize(&p(SanitizeAction::ExitFailureMode))).cdw10, 1);
    assert_eq!(SanitizeAction::from_sanact(0), None);
}

#[test]
fn sanitize_overwrite_bits() {
    let c = ok(sanitize(&SanitizeParams {
        action: SanitizeAction::Overwrite,
        ause: true,
        overwrite_passes: 16,
        invert: true,
        no_dealloc: true,
        pattern: 0xA5A5_5A5A,
    }));
    // SANACT 3 | AUSE bit 3 | OWPASS 0 (=16) in 7:4 | OIPBP bit 8 | NDAS bit 9.
    assert_eq!(c.cdw10, 0x3 | 0x8 | 0x100 | 0x200);
    assert_eq!((c.opcode, c.nsid, c.cdw11), (0x84, 0, 0xA5A5_5A5A));
    let three = ok(sanitize(&SanitizeParams {
        action: SanitizeAction::Overwrite,
        ause: false,
        overwrite_passes: 3,
        invert: false,
        no_dealloc: false,
        pattern: 0,
    }));
    assert_eq!(three.cdw10, 0x33);
    assert!(sanitize(&SanitizeParams {
        overwrite_passes: 0,
        ..ok(decode_sanitize(three.cdw10, 0).ok_or("none"))
    })
    .is_err());
}

#[test]
fn format_ses_bits() {
    let p = FormatParams {
        lbaf: 1,
        ses: Ses::UserData,
        pi: 0,
        pil: false,
        mset: false,
    };
    let c = ok(format_nvm(1, &p, 60_000));
    // SES in bits 11:9: SES=1 → 0x200, LBAF 1.
    assert_eq!((c.opcode, c.nsid, c.cdw10), (0x80, 1, 0x201));
    let c2 = ok(format_nvm(
        NSID_ALL,
        &FormatParams {
            ses: Ses::Crypto,
            lbaf: 17,
            ..p
        },
        0,
    ));
    assert_eq!(c2.cdw10, 0x400 | 0x1 | 0x1000);
    assert_eq!(
        decode_format(c2.cdw10).map(|f| (f.lbaf, f.ses)),
        Some((17, Ses::Crypto))
    );
    assert_eq!(decode_format(3 << 9), None);
}

#[test]
fn get_log_page_numd() {
    let c = ok(get_log_page(LID_SANITIZE_STATUS, 512));
    // NUMD = 127 zero-based dwords in CDW10 31:16.
    assert_eq!((c.opcode, c.cdw10, c.cdw11), (0x02, 127 << 16 | 0x81, 0));
    let big = ok(get_log_page(0x81, 1 << 20));
    assert_eq!(decode_get_log_page(&big), (0x81, 1 << 20));
    assert_eq!(big.cdw11, ((1u32 << 18) - 1) >> 16);
    assert!(get_log_page(0x81, 6).is_err());
}

#[test]
fn identify_controller_offsets() {
    let mut b = vec![0u8; 4096];
    b[0..2].copy_from_slice(&0x144Du16.to_le_bytes());
    b[4..24].copy_from_slice(b"S4EWNX0R123456      ");
    b[24..64].copy_from_slice(b"Samsung SSD 970 EVO Plus 1TB            ");
    b[64..72].copy_from_slice(b"2B2QEXM7");
    b[256] = 0x17;
    b[328..332].copy_from_slice(&(0x0000_0003u32 | 1 << 29).to_le_bytes());
    b[524] = 0x04;
    let c = ok(IdentifyController::decode(&b));
    assert_eq!(c.vid, 0x144D);
    assert_eq!(c.serial, "S4EWNX0R123456");
    assert_eq!(c.model, "Samsung SSD 970 EVO Plus 1TB");
    assert_eq!(c.firmware, "2B2QEXM7");
    assert!(c.format_supported() && c.security_send_receive());
    assert!(c.format_crypto_erase() && !c.format_all_namespaces());
    assert!(c.sanicap.crypto_erase && c.sanicap.block_erase && !c.sanicap.overwrite);
    assert!(c.sanicap.no_dealloc_inhibited);
}

#[test]
fn identify_namespace_formats() {
    let mut b = vec![0u8; 4096];
    b[0..8].copy_from_slice(&1_953_525_168u64.to_le_bytes());
    b[25] = 1; // two formats
    b[26] = 1; // using format 1
    b[128..132].copy_from_slice(&(9u32 << 16).to_le_bytes());
    b[132..136].copy_from_slice(&(12u32 << 16 | 8).to_le_bytes());
    let n = ok(IdentifyNamespace::decode(&b));
    assert_eq!(n.lba_formats.len(), 2);
    assert_eq!(n.block_size(), Some(4096));
    assert_eq!(n.current_format().map(|f| f.ms), Some(8));
    assert_eq!(n.size_bytes(), Some(1_953_525_168 * 4096));
}

#[test]
fn sanitize_log_every_sstat() {
    let mut b = vec![0u8; 512];
    b[0..2].copy_from_slice(&0xFFFFu16.to_le_bytes());
    b[2..4].copy_from_slice(&0x0101u16.to_le_bytes());
    b[4..8].copy_from_slice(&4u32.to_le_bytes());
    b[8..12].copy_from_slice(&NO_ESTIMATE.to_le_bytes());
    b[16..20].copy_from_slice(&30u32.to_le_bytes());
    let l = ok(SanitizeLog::decode(&b));
    assert_eq!(l.status, SanitizeStatusCode::Completed);
    assert!(l.global_data_erased && l.fraction().is_none());
    assert_eq!(SanitizeLog::estimate(l.est_overwrite), None);
    assert_eq!(SanitizeLog::estimate(l.est_crypto_erase), Some(30));
    let expect = [
        (0, SanitizeStatusCode::NeverSanitized, false),
        (1, SanitizeStatusCode::Completed, true),
        (2, SanitizeStatusCode::InProgress, false),
        (3, SanitizeStatusCode::Failed, false),
        (4, SanitizeStatusCode::CompletedWithDealloc, true),
        (5, SanitizeStatusCode::Reserved(5), false),
        (7, SanitizeStatusCode::Reserved(7), false),
    ];
    for (v, code, success) in expect {
        assert_eq!(SanitizeStatusCode::from_bits(v), code);
        assert_eq!(code.is_success(), success);
    }
}

proptest! {
    #[test]
    fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let _ = IdentifyController::decode(&b);
        let _ = IdentifyNamespace::decode(&b).map(|n| (n.block_size(), n.size_bytes()));
        let _ = SanitizeLog::decode(&b);
    }

    #[test]
    fn sanitize_round_trip(act in 1u32..=4, ause: bool, passes in 1u8..=16, inv: bool, nd: bool, pat: u32) {
        let action = SanitizeAction::from_sanact(act).ok_or_else(|| TestCaseError::fail("act"))?;
        let p = SanitizeParams { action, ause, overwrite_passes: passes, invert: inv, no_dealloc: nd, pattern: pat };
        let c = sanitize(&p).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let d = decode_sanitize(c.cdw10, c.cdw11).ok_or_else(|| TestCaseError::fail("decode"))?;
        prop_assert_eq!(d.action, action);
        prop_assert_eq!(d.ause, ause);
        prop_assert_eq!(d.no_dealloc, nd);
        if action == SanitizeAction::Overwrite {
            prop_assert_eq!((d.overwrite_passes, d.invert, d.pattern), (passes, inv, pat));
        }
    }

    #[test]
    fn format_round_trip(lbaf in 0u8..64, ses in 0u8..3, pi in 0u8..8, pil: bool, mset: bool) {
        let ses = [Ses::None, Ses::UserData, Ses::Crypto][usize::from(ses)];
        let p = FormatParams { lbaf, ses, pi, pil, mset };
        let c = format_nvm(1, &p, 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decode_format(c.cdw10), Some(p));
    }

    #[test]
    fn log_round_trip(sprog: u16, st in 0u8..8, passes in 0u8..32, gde: bool, cdw: u32, e1: u32, e2: u32, e3: u32) {
        let l = SanitizeLog { sprog, status: SanitizeStatusCode::from_bits(st), overwrite_passes_done: passes,
            global_data_erased: gde, scdw10: cdw, est_overwrite: e1, est_block_erase: e2, est_crypto_erase: e3 };
        prop_assert_eq!(SanitizeLog::decode(&l.encode()).map_err(|e| TestCaseError::fail(e.to_string()))?, l);
    }
}
