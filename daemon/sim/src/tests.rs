//! State-transition and fault tests for the drive model, plus a property test
//! over arbitrary command sequences.

use super::*;
use lethe_cmds::ata::{self, IdentifyDevice, PasswordId, SecurityLevel};
use lethe_cmds::io::DriveIo;
use lethe_cmds::nvme::{
    self, FormatParams, SanitizeAction, SanitizeLog, SanitizeParams, SanitizeStatusCode, Ses,
};
use lethe_cmds::scsi::{self, ScsiSanitizeAction};
use proptest::prelude::*;

fn pw(s: &str) -> Password {
    Password::new(s.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

fn sata() -> SimDrive {
    SimDrive::new(SimConfig::sata_ssd(4096), SimClock::new())
}

fn run(d: &SimDrive, (c, data): (AtaCommand, Vec<u8>)) -> AtaRegisters {
    d.ata(&c, &data).unwrap_or_else(|e| panic!("{e}")).regs
}

fn run1(d: &SimDrive, c: AtaCommand) -> AtaRegisters {
    run(d, (c, Vec::new()))
}

fn identify(d: &SimDrive) -> IdentifyDevice {
    let r = d
        .ata(&ata::identify_device(), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    IdentifyDevice::decode(&r.data).unwrap_or_else(|e| panic!("{e}"))
}

fn write_marker(d: &SimDrive, lba: u64) {
    d.write_at(&[0xAB; 512], lba * 512)
        .unwrap_or_else(|e| panic!("{e}"));
}

fn set_user(d: &SimDrive, p: &str) -> AtaRegisters {
    run(
        d,
        ata::security_set_password(PasswordId::User, SecurityLevel::High, &pw(p), 0),
    )
}

#[test]
fn identify_reflects_config_and_decodes() {
    let d = sata();
    let id = identify(&d);
    assert_eq!(id.model, "LETHE SIM SATA SSD");
    assert_eq!(id.user_sectors(), 4096);
    assert!(id.security.supported && id.security.enhanced_erase_supported && !id.security.frozen);
    assert!(id.sanitize.supported && id.sanitize.crypto_scramble && id.is_non_rotating());
    assert_eq!(id.checksum_valid, Some(true));
}

#[test]
fn security_erase_happy_path_sec1_sec5_sec1() {
    let d = sata();
    write_marker(&d, 7);
    assert_eq!(d.security_state(), SecState::Sec1);
    assert!(!set_user(&d, "lethe").failed());
    assert_eq!(d.security_state(), SecState::Sec5);
    assert!(identify(&d).security.enabled);
    assert!(!run1(&d, ata::erase_prepare()).failed());
    assert!(!run(&d, ata::erase_unit(PasswordId::User, true, &pw("lethe"), 1)).failed());
    assert_eq!(d.security_state(), SecState::Sec1);
    assert!(!d.password_set());
    assert_ne!(d.peek(7), vec![0xAB; 512]);
}

#[test]
fn erase_unit_requires_immediately_preceding_prepare() {
    let d = sata();
    set_user(&d, "x");
    assert!(run(&d, ata::erase_unit(PasswordId::User, false, &pw("x"), 1)).is_abort());
    run1(&d, ata::erase_prepare());
    identify(&d); // any command in between cancels the prepare
    assert!(run(&d, ata::erase_unit(PasswordId::User, false, &pw("x"), 1)).is_abort());
    assert!(d.password_set());
}

#[test]
fn wrong_password_then_disable_leaves_no_password() {
    let d = sata();
    set_user(&d, "good");
    run1(&d, ata::erase_prepare());
    assert!(run(&d, ata::erase_unit(PasswordId::User, false, &pw("bad"), 1)).is_abort());
    assert!(!run(
        &d,
        ata::security_disable_password(PasswordId::User, &pw("good"))
    )
    .failed());
    assert_eq!(d.security_state(), SecState::Sec1);
}

#[test]
fn power_cycle_locks_and_unlock_counts_attempts() {
    let d = sata();
    set_user(&d, "good");
    write_marker(&d, 1);
    d.power_cycle();
    assert_eq!(d.security_state(), SecState::Sec4);
    let mut buf = vec![0u8; 512];
    assert!(d.read_at(&mut buf, 512).is_err());
    for _ in 0..5 {
        assert!(run(&d, ata::security_unlock(PasswordId::User, &pw("bad"))).is_abort());
    }
    assert!(identify(&d).security.count_expired);
    // Even the right password fails once the counter expired.
    assert!(run(&d, ata::security_unlock(PasswordId::User, &pw("good"))).is_abort());
    d.power_cycle();
    assert!(!identify(&d).security.count_expired);
    assert!(!run(&d, ata::security_unlock(PasswordId::User, &pw("good"))).failed());
    assert_eq!(d.security_state(), SecState::Sec5);
    assert!(d.read_at(&mut buf, 512).is_ok());
}

#[test]
fn master_password_unlocks_only_at_high_level() {
    let d = sata();
    run(
        &d,
        ata::security_set_password(PasswordId::Master, SecurityLevel::High, &pw("m"), 1),
    );
    run(
        &d,
        ata::security_set_password(PasswordId::User, SecurityLevel::Maximum, &pw("u"), 0),
    );
    d.power_cycle();
    assert!(run(&d, ata::security_unlock(PasswordId::Master, &pw("m"))).is_abort());
    // At Maximum the master can still erase.
    run1(&d, ata::erase_prepare());
    assert!(!run(&d, ata::erase_unit(PasswordId::Master, false, &pw("m"), 1)).failed());
    assert_eq!(d.security_state(), SecState::Sec1);
}

#[test]
fn frozen_states_abort_security_commands() {
    let d = sata();
    d.bios_freeze();
    assert_eq!(d.security_state(), SecState::Sec2);
    assert!(set_user(&d, "x").is_abort());
    assert!(run1(&d, ata::erase_prepare()).is_abort());
    assert!(identify(&d).security.frozen);
    d.power_cycle();
    set_user(&d, "x");
    run1(&d, ata::security_freeze_lock());
    assert_eq!(d.security_state(), SecState::Sec6);
    assert!(run(
        &d,
        ata::security_disable_password(PasswordId::User, &pw("x"))
    )
    .is_abort());
}

#[test]
fn ata_sanitize_progress_on_injected_clock() {
    let d = sata();
    write_marker(&d, 3);
    let st = ata::decode_sanitize_status(&run1(&d, ata::sanitize_crypto_scramble(false)));
    assert_eq!(st.state(), ata::SanitizeState::InProgress);
    let mut buf = vec![0u8; 512];
    assert!(
        d.read_at(&mut buf, 0).is_err(),
        "media blocked during sanitize"
    );
    d.clock().advance_ms(5_000);
    let st = ata::decode_sanitize_status(&run1(&d, ata::sanitize_status(false)));
    assert_eq!(
        (st.state(), st.progress),
        (ata::SanitizeState::InProgress, 32768)
    );
    assert!(
        identify(&d).model.starts_with("LETHE"),
        "IDENTIFY allowed in SD2"
    );
    assert!(set_user(&d, "x").is_abort(), "others aborted in SD2");
    d.clock().advance_ms(5_000);
    let st = ata::decode_sanitize_status(&run1(&d, ata::sanitize_status(false)));
    assert_eq!(st.state(), ata::SanitizeState::IdleCompleted);
    assert_ne!(d.peek(3), vec![0xAB; 512]);
}

#[test]
fn ata_sanitize_keys_are_checked() {
    let d = sata();
    let mut bad = ata::sanitize_block_erase(false);
    bad.lba = ata::CRYPTO_SCRAMBLE_KEY;
    assert!(run1(&d, bad).is_abort());
    let ow = ata::sanitize_overwrite(2, 0x1122_3344, true, false).unwrap_or_else(|e| panic!("{e}"));
    assert!(!run1(&d, ow).failed());
    d.clock().advance_ms(10_000);
    // Two passes with invert: the last pass wrote the inverted pattern.
    assert_eq!(&d.peek(0)[..4], &(!0x1122_3344u32).to_le_bytes());
}

#[test]
fn sanitize_failure_and_exit() {
    let d = sata();
    d.inject(Fault::SanitizeFails);
    run1(&d, ata::sanitize_block_erase(true));
    d.clock().advance_ms(10_000);
    let st = ata::decode_sanitize_status(&run1(&d, ata::sanitize_status(false)));
    assert_eq!(st.state(), ata::SanitizeState::Failed);
    assert!(d.read_at(&mut [0u8; 512], 0).is_err());
    // Failure mode was set: STATUS EXT with CLEAR exits SD3.
    let st = ata::decode_sanitize_status(&run1(&d, ata::sanitize_status(true)));
    assert_eq!(st.state(), ata::SanitizeState::Idle);
    assert!(d.read_at(&mut [0u8; 512], 0).is_ok());
}

#[test]
fn restricted_failure_needs_a_successful_sanitize() {
    let d = sata();
    d.inject(Fault::SanitizeFails);
    run1(&d, ata::sanitize_block_erase(false));
    d.clock().advance_ms(10_000);
    let st = ata::decode_sanitize_status(&run1(&d, ata::sanitize_status(true)));
    assert_eq!(st.state(), ata::SanitizeState::Failed);
    run1(&d, ata::sanitize_block_erase(false));
    d.clock().advance_ms(10_000);
    assert_eq!(
        ata::decode_sanitize_status(&run1(&d, ata::sanitize_status(false))).state(),
        ata::SanitizeState::IdleCompleted
    );
}

#[test]
fn power_loss_mid_sanitize_resumes() {
    let d = sata();
    write_marker(&d, 9);
    d.inject(Fault::PowerLossAt(4_000));
    run1(&d, ata::sanitize_crypto_scramble(false));
    d.clock().advance_ms(6_000);
    let st = ata::decode_sanitize_status(&run1(&d, ata::sanitize_status(false)));
    assert_eq!(d.power_cycles(), 1);
    // Restarted at power-up (t=6000 when noticed): 0 ms elapsed since.
    assert_eq!(
        (st.state(), st.progress),
        (ata::SanitizeState::InProgress, 0)
    );
    assert_eq!(d.peek(9), vec![0xAB; 512], "not erased yet");
    d.clock().advance_ms(10_000);
    assert_eq!(
        ata::decode_sanitize_status(&run1(&d, ata::sanitize_status(false))).state(),
        ata::SanitizeState::IdleCompleted
    );
    assert_ne!(d.peek(9), vec![0xAB; 512]);
}

#[test]
fn sanitize_freeze_lock_blocks_until_power_cycle() {
    let d = sata();
    d.bios_sanitize_freeze();
    let r = run1(&d, ata::sanitize_block_erase(false));
    assert_eq!(
        ata::decode_sanitize_status(&r).reason,
        ata::SanitizeErrorReason::Frozen
    );
    d.power_cycle();
    assert!(!run1(&d, ata::sanitize_block_erase(false)).failed());
}

#[test]
fn hpa_and_dco() {
    let d = sata();
    d.set_dco(3500);
    d.set_hpa(3000);
    assert_eq!(d.geometry().sectors(), 3000);
    assert_eq!(identify(&d).user_sectors(), 3000);
    assert!(identify(&d).hpa_enabled);
    assert!(
        run1(&d, ata::dco_restore()).is_abort(),
        "DCO restore refused while HPA is set"
    );
    assert_eq!(run1(&d, ata::read_native_max_ext()).lba, 3499);
    let set = ata::set_max_ext(3499, true).unwrap_or_else(|e| panic!("{e}"));
    assert!(!run1(&d, set).failed());
    assert!(!run1(&d, ata::dco_restore()).failed());
    d.rescan();
    assert_eq!(d.geometry().sectors(), 4096);
    let dco = ata::decode_dco_identify(
        &d.ata(&ata::dco_identify(), &[])
            .map(|r| r.data)
            .unwrap_or_default(),
    );
    assert_eq!(dco.map(|x| x.max_lba), Ok(4095));
    run1(&d, ata::read_native_max_ext());
    assert!(run1(
        &d,
        ata::set_max_ext(5000, false).unwrap_or_else(|e| panic!("{e}"))
    )
    .failed());
}

fn set_max(d: &SimDrive, lba: u64, nv: bool) -> AtaRegisters {
    run1(
        d,
        ata::set_max_ext(lba, nv).unwrap_or_else(|e| panic!("{e}")),
    )
}

#[test]
fn set_max_needs_read_native_max_immediately_before() {
    let d = sata();
    d.set_hpa(3000);
    // Without READ NATIVE MAX first: ABRT (ST 51h, ER 04h).
    let r = set_max(&d, 4095, false);
    assert!(r.is_abort() && r.error & ata::error::IDNF == 0, "{r:?}");
    // Any command in between, block I/O included, breaks the pair.
    run1(&d, ata::read_native_max_ext());
    identify(&d);
    assert!(set_max(&d, 4095, false).is_abort());
    run1(&d, ata::read_native_max_ext());
    let mut b = vec![0u8; 512];
    d.read_at(&mut b, 0).unwrap_or_else(|e| panic!("{e}"));
    assert!(set_max(&d, 4095, false).is_abort());
    // Right after: accepted, but the host's block device keeps its size.
    run1(&d, ata::read_native_max_ext());
    assert!(!set_max(&d, 4095, false).failed());
    assert_eq!(d.accessible_sectors(), 4096);
    assert_eq!(d.geometry().sectors(), 3000, "until a rescan");
    // Volatile: the owner's HPA is back after a power cycle.
    d.power_cycle();
    assert_eq!(d.accessible_sectors(), 3000);
}

#[test]
fn one_non_volatile_set_max_per_power_cycle() {
    let d = sata();
    run1(&d, ata::read_native_max_ext());
    assert!(!set_max(&d, 3999, true).failed());
    run1(&d, ata::read_native_max_ext());
    let r = set_max(&d, 3899, true);
    assert!(r.failed() && r.error & ata::error::IDNF != 0, "{r:?}");
    d.power_cycle();
    assert_eq!(d.accessible_sectors(), 4000, "non-volatile setting kept");
    run1(&d, ata::read_native_max_ext());
    assert!(!set_max(&d, 3899, true).failed());
}

#[test]
fn accessible_max_address_drive() {
    let mut cfg = SimConfig::sata_ssd(4096);
    cfg.ata_ama = true;
    let d = SimDrive::new(cfg, SimClock::new());
    d.set_hpa(3000);
    let id = identify(&d);
    assert!(id.ama_supported && !id.hpa_supported && !id.dco_supported);
    // The legacy HPA commands and DCO are aborted.
    assert!(run1(&d, ata::read_native_max_ext()).is_abort());
    assert!(run1(&d, ata::dco_identify()).is_abort());
    assert_eq!(
        ata::native_max_lba(&run1(&d, ata::get_native_max_address_ext())),
        4095
    );
    let set = |lba| {
        run1(
            &d,
            ata::set_accessible_max_address_ext(lba).unwrap_or_else(|e| panic!("{e}")),
        )
    };
    assert!(set(4096).failed(), "past native max");
    assert!(!set(4095).failed());
    d.power_cycle();
    assert_eq!(d.accessible_sectors(), 4096, "non-volatile");
    run1(&d, ata::freeze_accessible_max_address_ext());
    assert!(set(2000).is_abort(), "frozen until power-on");
    d.power_cycle();
    assert!(!set(2000).failed());
}

#[test]
fn scripted_faults() {
    let d = sata();
    d.inject(Fault::Abort(CmdMatch::Ata(
        ata::opcode::SECURITY_ERASE_UNIT,
    )));
    set_user(&d, "p");
    run1(&d, ata::erase_prepare());
    assert!(run(&d, ata::erase_unit(PasswordId::User, false, &pw("p"), 1)).is_abort());
    assert!(
        d.password_set(),
        "abort leaves the password: the runner must disable it"
    );
    run(
        &d,
        ata::security_disable_password(PasswordId::User, &pw("p")),
    );
    d.inject(Fault::Timeout(CmdMatch::Any));
    assert_eq!(d.ata(&ata::identify_device(), &[]), Err(SimError::Timeout));
    d.inject(Fault::MediumError(5));
    assert!(matches!(
        d.read_at(&mut [0u8; 1024], 4 * 512),
        Err(IoFault::Media(_))
    ));
    d.inject(Fault::GoneAfter(1));
    assert!(d.ata(&ata::identify_device(), &[]).is_ok());
    assert_eq!(d.ata(&ata::identify_device(), &[]), Err(SimError::Gone));
    assert!(matches!(
        d.read_at(&mut [0u8; 512], 0),
        Err(IoFault::Gone(_))
    ));
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let d = sata();
    let (c, _) = ata::security_set_password(PasswordId::User, SecurityLevel::High, &pw("x"), 0);
    assert!(matches!(d.ata(&c, &[0; 10]), Err(SimError::BadRequest(_))));
    assert!(d.nvme_admin(&nvme::identify_controller(), &[]).is_err());
}

fn nvme_drive(cfg: SimConfig) -> SimDrive {
    SimDrive::new(cfg, SimClock::new())
}

fn admin(d: &SimDrive, c: &nvme::NvmeAdminCmd) -> NvmeResponse {
    d.nvme_admin(c, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn sanlog(d: &SimDrive) -> SanitizeLog {
    let c = nvme::get_log_page(nvme::LID_SANITIZE_STATUS, 512).unwrap_or_else(|e| panic!("{e}"));
    SanitizeLog::decode(&admin(d, &c).data).unwrap_or_else(|e| panic!("{e}"))
}

fn fmt(ses: Ses) -> nvme::NvmeAdminCmd {
    let p = FormatParams {
        lbaf: 0,
        ses,
        pi: 0,
        pil: false,
        mset: false,
    };
    nvme::format_nvm(1, &p, 0).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn nvme_identify_and_format_ses() {
    let d = nvme_drive(SimConfig::nvme(2048));
    let c = nvme::IdentifyController::decode(&admin(&d, &nvme::identify_controller()).data)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.format_supported() && c.format_crypto_erase() && c.sanicap.crypto_erase);
    let ns = nvme::IdentifyNamespace::decode(&admin(&d, &nvme::identify_namespace(1)).data)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ns.size_bytes(), Some(2048 * 512));
    write_marker(&d, 2);
    assert!(admin(&d, &fmt(Ses::None)).completion.is_success());
    assert_eq!(d.peek(2), vec![0xAB; 512], "SES=0 erases nothing");
    assert!(admin(&d, &fmt(Ses::UserData)).completion.is_success());
    assert_eq!(d.peek(2), vec![0; 512]);
}

#[test]
fn nvme_ses2_needs_fna_unless_lax() {
    let mut cfg = SimConfig::nvme(64);
    cfg.nvme_fna = 0;
    let strict = nvme_drive(cfg.clone());
    assert_eq!(
        admin(&strict, &fmt(Ses::Crypto)).completion.code(),
        nvme::sc::INVALID_FIELD
    );
    cfg.nvme_lax_ses = true;
    assert!(admin(&nvme_drive(cfg), &fmt(Ses::Crypto))
        .completion
        .is_success());
}

#[test]
fn nvme_sanitize_log_progress_and_scdw10() {
    let d = nvme_drive(SimConfig::nvme(64));
    assert_eq!(sanlog(&d).status, SanitizeStatusCode::NeverSanitized);
    let p = SanitizeParams {
        action: SanitizeAction::CryptoErase,
        ause: true,
        overwrite_passes: 1,
        invert: false,
        no_dealloc: false,
        pattern: 0,
    };
    let c = nvme::sanitize(&p).unwrap_or_else(|e| panic!("{e}"));
    assert!(admin(&d, &c).completion.is_success());
    d.clock().advance_ms(2_500);
    let l = sanlog(&d);
    assert_eq!(
        (l.status, l.sprog, l.scdw10),
        (SanitizeStatusCode::InProgress, 16384, c.cdw10)
    );
    assert_eq!(
        admin(&d, &fmt(Ses::UserData)).completion.code(),
        nvme::sc::SANITIZE_IN_PROGRESS
    );
    d.clock().advance_ms(7_500);
    let l = sanlog(&d);
    assert_eq!((l.status, l.sprog), (SanitizeStatusCode::Completed, 0xFFFF));
    assert!(l.global_data_erased);
    // Overwrite is not in SANICAP: rejected.
    let ow = SanitizeParams {
        action: SanitizeAction::Overwrite,
        ..p
    };
    assert_eq!(
        admin(&d, &nvme::sanitize(&ow).unwrap_or_else(|e| panic!("{e}")))
            .completion
            .code(),
        nvme::sc::INVALID_FIELD
    );
}

#[test]
fn nvme_sanitize_failure_restricted_and_unrestricted() {
    for ause in [false, true] {
        let d = nvme_drive(SimConfig::nvme(64));
        d.inject(Fault::SanitizeFails);
        let p = SanitizeParams {
            action: SanitizeAction::BlockErase,
            ause,
            overwrite_passes: 1,
            invert: false,
            no_dealloc: false,
            pattern: 0,
        };
        admin(&d, &nvme::sanitize(&p).unwrap_or_else(|e| panic!("{e}")));
        d.clock().advance_ms(10_000);
        assert_eq!(sanlog(&d).status, SanitizeStatusCode::Failed);
        let exit = nvme::sanitize(&SanitizeParams {
            action: SanitizeAction::ExitFailureMode,
            ..p
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(admin(&d, &exit).completion.is_success(), ause);
    }
}

#[test]
fn scsi_sanitize_and_request_sense_progress() {
    let d = nvme_drive(SimConfig::sas_hdd(128));
    let inq = scsi::decode_inquiry(
        &d.scsi(&scsi::inquiry(None, 96), &[])
            .map(|r| r.data)
            .unwrap_or_default(),
    );
    assert_eq!(inq.map(|i| i.product), Ok("LETHE SIM SAS".into()));
    let sn = scsi::decode_vpd_80(
        &d.scsi(&scsi::inquiry(Some(0x80), 252), &[])
            .map(|r| r.data)
            .unwrap_or_default(),
    );
    assert_eq!(sn, Ok("SIMSAS0001".into()));
    write_marker(&d, 1);
    let (c, p) = scsi::sanitize(
        &ScsiSanitizeAction::Overwrite {
            count: 1,
            invert: false,
            pattern: [0x5A; 4],
        },
        true,
        false,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.scsi(&c, &p).map(|r| r.status), Ok(0));
    d.clock().advance_ms(2_500);
    let rs = d
        .scsi(&scsi::request_sense(true), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let s = scsi::Sense::decode(&rs.data).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.is_sanitize_in_progress());
    assert_eq!(s.progress, Some(16384));
    d.clock().advance_ms(7_500);
    let rs = d
        .scsi(&scsi::request_sense(false), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        scsi::Sense::decode(&rs.data).map(|s| s.key),
        Ok(scsi::SenseKey::NoSense)
    );
    assert_eq!(d.peek(1), vec![0x5A; 512]);
    let cap = scsi::decode_read_capacity_16(
        &d.scsi(&scsi::read_capacity_16(), &[])
            .map(|r| r.data)
            .unwrap_or_default(),
    );
    assert_eq!(cap.map(|c| c.bytes()), Ok(128 * 512));
}

#[test]
fn sat_pass_through_returns_ata_registers() {
    let d = sata();
    let io = SatPath::new(&d);
    let mut b = vec![0u8; 512];
    let r = io
        .ata(&ata::identify_device(), &mut b)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.failed());
    assert_eq!(io.descriptor_sense(), Some(true));
    assert_eq!(
        IdentifyDevice::decode(&b).map(|i| i.serial),
        Ok("SIMSATA0001".into())
    );
    let r = io
        .ata(&ata::sanitize_block_erase(false), &mut [])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ata::decode_sanitize_status(&r).state(),
        ata::SanitizeState::InProgress
    );
}

#[test]
fn sat_ck_cond_on_a_data_command_gets_libatas_answer() {
    let d = sata();
    // CK_COND forced on IDENTIFY: ABORTED COMMAND with DRQ, and no data.
    let mut c = scsi::ata_pass_through_16(&ata::identify_device());
    c.cdb[2] |= scsi::sat::byte2::CK_COND;
    let r = d.scsi(&c, &[]).unwrap_or_else(|e| panic!("{e}"));
    let s = r.sense.unwrap_or_else(|| panic!("no sense"));
    assert_eq!((r.status, s.key), (2, scsi::SenseKey::AbortedCommand));
    assert!(r.data.is_empty(), "the data-in phase was lost");
    // Without CK_COND (as the builder sends it): GOOD with the data.
    let r = d
        .scsi(&scsi::ata_pass_through_16(&ata::identify_device()), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.status, r.data.len()), (0, 512));
}

#[test]
fn sat_without_d_sense_truncates_upper_registers() {
    let mut cfg = SimConfig::sata_ssd(1 << 25);
    cfg.sat_dsense = false;
    let d = SimDrive::new(cfg, SimClock::new());
    let io = SatPath::new(&d);
    let mut b = vec![0u8; 512];
    assert!(io.ata(&ata::identify_device(), &mut b).is_ok());
    assert_eq!(io.descriptor_sense(), Some(false));
    // READ NATIVE MAX of a drive past 2^24 sectors cannot be read in fixed
    // format: an error, never a misread address.
    assert!(matches!(
        io.ata(&ata::read_native_max_ext(), &mut []),
        Err(lethe_cmds::io::DriveIoError::Transport(m)) if m.contains("truncated")
    ));
    // Status and error bits still arrive: an abort is an abort.
    let r = io
        .ata(&ata::security_freeze_lock(), &mut [])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.failed());
}

/// Arbitrary ATA commands drawn from every builder plus random registers.
fn arb_ata() -> impl Strategy<Value = (AtaCommand, Vec<u8>)> {
    let pws = prop_oneof![Just("a"), Just("b")];
    prop_oneof![
        Just((ata::identify_device(), vec![])),
        Just((ata::erase_prepare(), vec![])),
        Just((ata::security_freeze_lock(), vec![])),
        Just((ata::sanitize_status(true), vec![])),
        Just((ata::sanitize_crypto_scramble(true), vec![])),
        Just((ata::sanitize_block_erase(false), vec![])),
        Just((ata::read_native_max_ext(), vec![])),
        Just((ata::dco_restore(), vec![])),
        (pws.clone(), any::<bool>(), any::<bool>()).prop_map(|(p, m, lvl)| {
            ata::security_set_password(
                if m {
                    PasswordId::Master
                } else {
                    PasswordId::User
                },
                if lvl {
                    SecurityLevel::Maximum
                } else {
                    SecurityLevel::High
                },
                &pw(p),
                1,
            )
        }),
        (pws.clone(), any::<bool>()).prop_map(|(p, m)| ata::security_unlock(
            if m {
                PasswordId::Master
            } else {
                PasswordId::User
            },
            &pw(p)
        )),
        pws.clone()
            .prop_map(|p| ata::security_disable_password(PasswordId::User, &pw(p))),
        (pws, any::<bool>(), any::<bool>()).prop_map(|(p, e, m)| ata::erase_unit(
            if m {
                PasswordId::Master
            } else {
                PasswordId::User
            },
            e,
            &pw(p),
            1
        )),
        (any::<u16>(), any::<u16>(), 0u64..(1 << 48), any::<u8>()).prop_map(
            |(feature, count, lba, command)| (
                AtaCommand {
                    feature,
                    count,
                    lba,
                    device: 0x40,
                    command,
                    protocol: ata::AtaProtocol::NonData,
                    data: lethe_cmds::DataDir::None,
                    timeout_ms: 1
                },
                vec![]
            )
        ),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Ata(AtaCommand, Vec<u8>),
    Advance(u64),
    PowerCycle,
    Inject(Fault),
    Io(u64),
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => arb_ata().prop_map(|(c, d)| Step::Ata(c, d)),
        1 => (0u64..20_000).prop_map(Step::Advance),
        1 => Just(Step::PowerCycle),
        1 => prop_oneof![
            Just(Fault::SanitizeFails),
            Just(Fault::Abort(CmdMatch::Any)),
            Just(Fault::Timeout(CmdMatch::Ata(0xF4))),
            (0u64..8).prop_map(Fault::MediumError),
            (0u64..40_000).prop_map(Fault::PowerLossAt),
        ].prop_map(Step::Inject),
        1 => (0u64..8).prop_map(Step::Io),
    ]
}

proptest! {
    #[test]
    fn arbitrary_sequences_keep_a_defined_security_state(steps in proptest::collection::vec(arb_step(), 0..60)) {
        let d = sata();
        for st in steps {
            match st {
                Step::Ata(c, data) => { let _ = d.ata(&c, &data); }
                Step::Advance(ms) => d.clock().advance_ms(ms),
                Step::PowerCycle => d.power_cycle(),
                Step::Inject(f) => d.inject(f),
                Step::Io(lba) => { let _ = d.write_at(&[1; 512], lba * 512); }
            }
            // A scripted one-shot abort may hit the first IDENTIFY.
            let id = d.ata(&ata::identify_device(), &[]).ok().filter(|r| !r.regs.failed())
                .or_else(|| d.ata(&ata::identify_device(), &[]).ok())
                .and_then(|r| IdentifyDevice::decode(&r.data).ok());
            let Some(id) = id else { return Err(TestCaseError::fail("IDENTIFY failed twice")) };
            let s = id.security;
            let state = d.security_state();
            // IDENTIFY word 128 always agrees with the state machine.
            prop_assert_eq!(s.enabled, matches!(state, SecState::Sec4 | SecState::Sec5 | SecState::Sec6));
            prop_assert_eq!(s.locked, state == SecState::Sec4);
            if matches!(state, SecState::Sec2 | SecState::Sec6) { prop_assert!(s.frozen); }
            prop_assert_eq!(s.enabled, d.password_set());
            // Locked drives never give data.
            if s.locked { prop_assert!(d.read_at(&mut [0u8; 512], 0).is_err()); }
        }
    }
}

#[test]
fn scsi_reports_sanitize_support_per_service_action() {
    let d = nvme_drive(SimConfig::sas_hdd(64));
    let ask = |sa: u16| {
        let r = d
            .scsi(
                &scsi::report_supported_opcode(scsi::opcode::SANITIZE, sa),
                &[],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        scsi::decode_supported_opcode(&r.data).unwrap_or_else(|e| panic!("{e}"))
    };
    // The SAS preset supports crypto erase and overwrite, not block erase.
    assert!(ask(0x03).is_supported());
    assert!(ask(0x01).is_supported());
    assert_eq!(ask(0x02), scsi::OpcodeSupport::NotSupported);
    let nv = nvme_drive(SimConfig::nvme(64));
    let r = nv
        .scsi(
            &scsi::report_supported_opcode(scsi::opcode::SANITIZE, 3),
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!scsi::decode_supported_opcode(&r.data).is_ok_and(|s| s.is_supported()));
}

fn fmt_ns(nsid: u32, ses: Ses) -> nvme::NvmeAdminCmd {
    let mut c = fmt(ses);
    c.nsid = nsid;
    c
}

#[test]
fn nvme_namespaces_format_scope_follows_fna() {
    let mut cfg = SimConfig::nvme(64);
    cfg.nvme_namespaces = 2;
    cfg.nvme_fna = 0;
    let d = nvme_drive(cfg.clone());
    let id = IdentifyControllerView::of(&d);
    assert_eq!(id.nn, 2);
    d.poke_ns(2, 3, &[0xCD; 512]);
    write_marker(&d, 2);
    // FNA = 0: a format of namespace 1 leaves namespace 2 alone.
    assert!(admin(&d, &fmt_ns(1, Ses::UserData)).completion.is_success());
    assert_eq!(d.peek(2), vec![0; 512]);
    assert_eq!(d.peek_ns(2, 3), vec![0xCD; 512]);
    // FNA bit 1: a secure erase of namespace 1 erases namespace 2 too.
    cfg.nvme_fna = 0x02;
    let d = nvme_drive(cfg.clone());
    d.poke_ns(2, 3, &[0xCD; 512]);
    assert!(admin(&d, &fmt_ns(1, Ses::UserData)).completion.is_success());
    assert_eq!(d.peek_ns(2, 3), vec![0; 512]);
    // FNA bit 0: any format reaches every namespace; NSID FFFFFFFFh too.
    cfg.nvme_fna = 0x01;
    let d = nvme_drive(cfg.clone());
    d.poke_ns(2, 3, &[0xCD; 512]);
    assert!(admin(&d, &fmt_ns(1, Ses::None)).completion.is_success());
    assert_eq!(d.peek_ns(2, 3), vec![0xCD; 512], "SES=0 erases nothing");
    assert!(admin(&d, &fmt_ns(1, Ses::UserData)).completion.is_success());
    assert_eq!(d.peek_ns(2, 3), vec![0; 512]);
    cfg.nvme_fna = 0;
    let d = nvme_drive(cfg);
    d.poke_ns(2, 3, &[0xCD; 512]);
    assert!(admin(&d, &fmt_ns(0xFFFF_FFFF, Ses::UserData))
        .completion
        .is_success());
    assert_eq!(d.peek_ns(2, 3), vec![0; 512]);
    assert_eq!(
        admin(&d, &fmt_ns(3, Ses::UserData)).completion.code(),
        nvme::sc::INVALID_FIELD
    );
}

#[test]
fn nvme_sanitize_erases_every_namespace() {
    let mut cfg = SimConfig::nvme(64);
    cfg.nvme_namespaces = 3;
    let d = nvme_drive(cfg);
    d.poke_ns(3, 1, &[0xCD; 512]);
    let p = SanitizeParams {
        action: SanitizeAction::BlockErase,
        ause: false,
        overwrite_passes: 1,
        invert: false,
        no_dealloc: false,
        pattern: 0,
    };
    assert!(
        admin(&d, &nvme::sanitize(&p).unwrap_or_else(|e| panic!("{e}")))
            .completion
            .is_success()
    );
    d.clock().advance_ms(10_000);
    assert_eq!(d.peek_ns(3, 1), vec![0; 512]);
}

/// Identify Controller decoded from the model.
struct IdentifyControllerView;

impl IdentifyControllerView {
    fn of(d: &SimDrive) -> nvme::IdentifyController {
        nvme::IdentifyController::decode(&admin(d, &nvme::identify_controller()).data)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

fn sas(cfg: impl FnOnce(&mut SimConfig)) -> SimDrive {
    let mut c = SimConfig::sas_hdd(128);
    cfg(&mut c);
    SimDrive::new(c, SimClock::new())
}

fn start_scsi_sanitize(d: &SimDrive) {
    let (c, p) = scsi::sanitize(&ScsiSanitizeAction::CryptoErase, true, false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.scsi(&c, &p).map(|r| r.status), Ok(0));
    d.clock().advance_ms(2_500);
}

fn request_sense(d: &SimDrive, desc: bool) -> ScsiResponse {
    d.scsi(&scsi::request_sense(desc), &[])
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn scsi_device_rejecting_descriptor_sense() {
    let d = sas(|c| c.scsi_dsense = false);
    start_scsi_sanitize(&d);
    let r = request_sense(&d, true);
    assert_eq!(r.status, 2);
    assert_eq!(
        r.sense.map(|s| (s.key, s.asc)),
        Some((scsi::SenseKey::IllegalRequest, 0x24))
    );
    let r = request_sense(&d, false);
    let s = scsi::Sense::decode(&r.data).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.is_sanitize_in_progress());
    assert_eq!(s.format, scsi::SenseFormat::Fixed);
    assert_eq!(s.sanitize_progress(), Some(16384));
}

#[test]
fn scsi_progress_in_another_progress_descriptor() {
    let d = sas(|c| c.scsi_progress = ScsiProgress::Another);
    start_scsi_sanitize(&d);
    let s = scsi::Sense::decode(&request_sense(&d, true).data).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.key, scsi::SenseKey::NoSense);
    assert!(s.is_sanitize_in_progress());
    assert_eq!(s.sanitize_progress(), Some(16384));
    // Fixed format has no 0Ah: NOT READY 04h/1Bh with the SKS progress.
    let s = scsi::Sense::decode(&request_sense(&d, false).data).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.key, s.progress), (scsi::SenseKey::NotReady, Some(16384)));
}

#[test]
fn scsi_blind_request_sense_but_tur_and_read_tell_the_truth() {
    let d = sas(|c| c.scsi_request_sense_blind = true);
    start_scsi_sanitize(&d);
    let s = scsi::Sense::decode(&request_sense(&d, true).data).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.key, scsi::SenseKey::NoSense);
    assert!(!s.is_sanitize_in_progress());
    let tur = d
        .scsi(&scsi::test_unit_ready(), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(tur.sense.is_some_and(|s| s.is_sanitize_in_progress()));
    let rd = d
        .scsi(&scsi::read_16(0, 1, 512), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(rd.sense.is_some_and(|s| s.is_sanitize_in_progress()));
    d.clock().advance_ms(10_000);
    let tur = d
        .scsi(&scsi::test_unit_ready(), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tur.status, 0);
    let rd = d
        .scsi(&scsi::read_16(0, 1, 512), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((rd.status, rd.data.len()), (0, 512));
}

#[test]
fn sanitize_already_running_at_power_on() {
    // ATA: a new sanitize is aborted and the error output says why.
    let d = sata();
    d.sanitize_running_at_power_on();
    let r = run1(&d, ata::sanitize_crypto_scramble(false));
    let st = ata::decode_sanitize_status(&r);
    assert!(st.failed && st.in_progress, "{st:?}");
    assert!(run1(&d, ata::read_native_max_ext()).is_abort());
    // NVMe: Sanitize In Progress; the log names the running action.
    let d = nvme_drive(SimConfig::nvme(64));
    d.sanitize_running_at_power_on();
    let l = sanlog(&d);
    assert_eq!((l.status, l.scdw10), (SanitizeStatusCode::InProgress, 4));
    // SCSI: NOT READY 04h/1Bh.
    let d = sas(|_| {});
    d.sanitize_running_at_power_on();
    let (c, p) = scsi::sanitize(&ScsiSanitizeAction::BlockErase, true, false)
        .unwrap_or_else(|e| panic!("{e}"));
    let r = d.scsi(&c, &p).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.sense.is_some_and(|s| s.is_sanitize_in_progress()));
}

#[test]
fn foreign_sanitize_fault_starts_before_the_matching_command() {
    let d = sata();
    d.inject(Fault::ForeignSanitize(CmdMatch::Ata(ata::opcode::SANITIZE)));
    assert!(!run1(&d, ata::identify_device()).failed());
    let st = ata::decode_sanitize_status(&run1(&d, ata::sanitize_status(false)));
    assert!(st.in_progress, "{st:?}");
}
