//! End-to-end flows a purge runner will perform, driven only through the public
//! command values: identify → policy → command → poll on the injected clock →
//! watch verdict → read-back. Fault paths must end in a failure with no password left.

use lethe_cmds::ata::{self, IdentifyDevice, Password, PasswordId, SecurityLevel};
use lethe_cmds::nvme::{self, IdentifyController, SanitizeLog, SanitizeParams};
use lethe_cmds::policy::{
    select_method, AtaCaps, Capabilities, Level, Method, NvmeCaps, Transport,
};
use lethe_cmds::watch::{AtaSanitizeWatch, NvmeSanitizeWatch, Verdict};
use lethe_core::device::BlockDevice;
use lethe_sim::{CmdMatch, Fault, SimClock, SimConfig, SimDrive, SimError};

fn marker(d: &SimDrive) {
    d.write_at(&[0xC3; 512], 100 * 512).expect("write");
}

fn marker_gone(d: &SimDrive) -> bool {
    let mut b = [0u8; 512];
    d.read_at(&mut b, 100 * 512).expect("read");
    b != [0xC3; 512]
}

/// A minimal NVMe sanitize job: returns the verdict after polling.
fn nvme_job(d: &SimDrive) -> Result<Verdict, SimError> {
    let idc = d.nvme_admin(&nvme::identify_controller(), &[])?;
    let c = IdentifyController::decode(&idc.data).expect("identify");
    let caps = Capabilities {
        transport: Transport::Nvme,
        rotational: Some(false),
        removable_flash: false,
        ata: None,
        nvme: Some(NvmeCaps {
            sanicap: c.sanicap,
            format_supported: c.format_supported(),
            format_crypto: c.format_crypto_erase(),
            format_all_namespaces: c.format_all_namespaces(),
            secure_erase_all_namespaces: c.secure_erase_all_namespaces(),
        }),
        scsi: None,
    };
    let choice = select_method(&caps, Level::Purge);
    let Method::NvmeSanitize(action) = choice.method else {
        panic!("expected sanitize, got {choice:?}")
    };
    let cmd = nvme::sanitize(&SanitizeParams {
        action,
        ause: true,
        overwrite_passes: 1,
        invert: false,
        no_dealloc: false,
        pattern: 0,
    })
    .expect("build");
    let done = d.nvme_admin(&cmd, &[])?;
    if !done.completion.is_success() {
        return Ok(Verdict::Failed {
            reason: format!("sanitize rejected: {:#x}", done.completion.status),
        });
    }
    let watch = NvmeSanitizeWatch::new(cmd.cdw10);
    let log = nvme::get_log_page(nvme::LID_SANITIZE_STATUS, 512).expect("log");
    for _ in 0..100 {
        d.clock().advance_ms(1_000);
        let l = SanitizeLog::decode(&d.nvme_admin(&log, &[])?.data).expect("decode");
        match watch.observe(&l) {
            Verdict::Running(_) => continue,
            v => return Ok(v),
        }
    }
    Ok(Verdict::Failed {
        reason: "timed out".into(),
    })
}

#[test]
fn nvme_purge_succeeds_and_reads_back_changed() {
    let d = SimDrive::new(SimConfig::nvme(1024), SimClock::new());
    marker(&d);
    assert!(matches!(nvme_job(&d), Ok(Verdict::Succeeded { .. })));
    assert!(marker_gone(&d));
}

#[test]
fn nvme_faults_end_in_failure() {
    let fail = SimDrive::new(SimConfig::nvme(1024), SimClock::new());
    fail.inject(Fault::SanitizeFails);
    assert!(matches!(nvme_job(&fail), Ok(Verdict::Failed { .. })));

    let gone = SimDrive::new(SimConfig::nvme(1024), SimClock::new());
    gone.inject(Fault::GoneAfter(3));
    assert_eq!(nvme_job(&gone), Err(SimError::Gone));

    let aborted = SimDrive::new(SimConfig::nvme(1024), SimClock::new());
    aborted.inject(Fault::Abort(CmdMatch::Nvme(nvme::opcode::SANITIZE)));
    assert!(matches!(nvme_job(&aborted), Ok(Verdict::Failed { .. })));

    // Power loss mid-sanitize: the operation resumes and still completes.
    let power = SimDrive::new(SimConfig::nvme(1024), SimClock::new());
    marker(&power);
    power.inject(Fault::PowerLossAt(5_000));
    assert!(matches!(nvme_job(&power), Ok(Verdict::Succeeded { .. })));
    assert_eq!(power.power_cycles(), 1);
    assert!(marker_gone(&power));
}

fn regs(d: &SimDrive, c: (ata::AtaCommand, Vec<u8>)) -> Result<ata::AtaRegisters, SimError> {
    d.ata(&c.0, &c.1).map(|r| r.regs)
}

/// ATA Security Erase with the mandatory cleanup: on any failure, disable the password.
fn security_erase_job(d: &SimDrive) -> Result<bool, SimError> {
    let pw = Password::new(b"lethe-temp").expect("pw");
    let id = IdentifyDevice::decode(&d.ata(&ata::identify_device(), &[])?.data).expect("identify");
    if id.security.frozen {
        return Ok(false);
    }
    if regs(
        d,
        ata::security_set_password(PasswordId::User, SecurityLevel::High, &pw, 0),
    )?
    .failed()
    {
        return Ok(false);
    }
    let ok = (|| -> Result<bool, SimError> {
        if regs(d, (ata::erase_prepare(), vec![]))?.failed() {
            return Ok(false);
        }
        let t = ata::erase_unit(PasswordId::User, true, &pw, 60_000);
        Ok(!regs(d, t)?.failed())
    })();
    if !matches!(ok, Ok(true)) {
        // Cleanup even after a timeout: unlock if needed, then disable.
        let _ = regs(d, ata::security_unlock(PasswordId::User, &pw));
        let _ = regs(d, ata::security_disable_password(PasswordId::User, &pw));
    }
    ok
}

#[test]
fn ata_security_erase_paths_never_leave_a_password() {
    let good = SimDrive::new(SimConfig::sata_ssd(512), SimClock::new());
    marker(&good);
    assert_eq!(security_erase_job(&good), Ok(true));
    assert!(!good.password_set() && marker_gone(&good));

    for f in [
        Fault::Abort(CmdMatch::Ata(ata::opcode::SECURITY_ERASE_UNIT)),
        Fault::Abort(CmdMatch::Ata(ata::opcode::SECURITY_ERASE_PREPARE)),
        Fault::Timeout(CmdMatch::Ata(ata::opcode::SECURITY_ERASE_UNIT)),
    ] {
        let d = SimDrive::new(SimConfig::sata_ssd(512), SimClock::new());
        d.inject(f);
        assert!(!matches!(security_erase_job(&d), Ok(true)), "{f:?}");
        assert!(!d.password_set(), "{f:?} left a password");
    }

    let frozen = SimDrive::new(SimConfig::sata_ssd(512), SimClock::new());
    frozen.bios_freeze();
    assert_eq!(security_erase_job(&frozen), Ok(false));
    let id = IdentifyDevice::decode(&frozen.ata(&ata::identify_device(), &[]).expect("id").data)
        .expect("decode");
    let caps = Capabilities {
        transport: Transport::Sata,
        rotational: Some(false),
        removable_flash: false,
        ata: Some(AtaCaps {
            security: id.security,
            sanitize: Default::default(),
            sanitize_frozen: false,
        }),
        nvme: None,
        scsi: None,
    };
    assert!(select_method(&caps, Level::Purge).blocker.is_some());
}

#[test]
fn ata_sanitize_watch_through_sat() {
    let d = SimDrive::new(SimConfig::sata_ssd(512), SimClock::new());
    marker(&d);
    let io = lethe_sim::SatPath::new(&d);
    let pt = |c: &ata::AtaCommand| {
        let r = lethe_cmds::io::DriveIo::ata(&io, c, &mut []).expect("sat");
        ata::decode_sanitize_status(&r)
    };
    let before = pt(&ata::sanitize_status(false));
    let mut w = AtaSanitizeWatch::new(&before);
    pt(&ata::sanitize_crypto_scramble(false));
    let verdict = loop {
        d.clock().advance_ms(3_000);
        match w.observe(&pt(&ata::sanitize_status(false))) {
            Verdict::Running(_) => continue,
            v => break v,
        }
    };
    assert!(matches!(verdict, Verdict::Succeeded { .. }));
    assert!(marker_gone(&d));
}
