//! The purge runner against the software drive model: every fault path ends in
//! a failure report with the drive unlocked, and a property test over arbitrary
//! capability sets and fault schedules shows the job either ends verified (with
//! the erase confirmed independently, by peeking at the modelled media) or
//! fails with a reason, and never leaves Lethe's password on the drive.

use lethe_cmds::ata::{opcode as ata_op, Password};
use lethe_cmds::nvme::opcode as nvme_op;
use lethe_cmds::policy::{Level, Method, Transport};
use lethe_cmds::scsi::opcode as scsi_op;
use lethe_core::device::BlockDevice;
use lethe_core::pattern::Pattern;
use lethe_core::plan::{Checkpoint, VerifyMode, WipePlan};
use lethe_core::ranges::RangeSet;
use lethe_purge::{
    probe, run_purge, CanarySet, Clock, CommandPath, Hints, Outcome, PurgeError, PurgeReport,
    PurgeRequest,
};
use lethe_sim::{CmdMatch, Fault, SecState, SimClock, SimConfig, SimDrive, SimKind};
use proptest::prelude::*;
use std::cell::Cell;

const PW: &[u8] = b"lethe-test-temporary-password";

/// The injected clock; the "operator" power-cycles the drive at `unfreeze_at`.
struct TestClock<'a> {
    drive: &'a SimDrive,
    unfreeze_at: Option<u64>,
    done: Cell<bool>,
}

impl Clock for TestClock<'_> {
    fn now_ms(&self) -> u64 {
        self.drive.clock().now_ms()
    }
    fn sleep_ms(&self, ms: u64) {
        self.drive.clock().advance_ms(ms);
        if let Some(t) = self.unfreeze_at {
            if !self.done.get() && self.now_ms() >= t {
                self.done.set(true);
                self.drive.power_cycle();
            }
        }
    }
}

fn request(level: Level) -> PurgeRequest {
    PurgeRequest {
        level,
        method: None,
        remove_hpa: false,
        allow_fallback: true,
        unfreeze_wait_ms: 60_000,
        poll_ms: 1_000,
        samples: 64,
        seed: 0x5EED,
        password: Password::new(PW).unwrap_or_else(|e| panic!("{e}")),
    }
}

fn path_of(d: &SimDrive) -> CommandPath {
    match d.config().kind {
        SimKind::Sata => CommandPath::Ata,
        SimKind::Nvme => CommandPath::Nvme { nsid: 1 },
        SimKind::Sas => CommandPath::Scsi,
    }
}

fn hints_of(d: &SimDrive) -> Hints {
    Hints {
        transport: match d.config().kind {
            SimKind::Sata => Transport::Sata,
            SimKind::Nvme => Transport::Nvme,
            SimKind::Sas => Transport::Sas,
        },
        rotational: Some(d.config().rotational),
        removable_flash: false,
    }
}

/// How a whole job ended, as the CLI would see it.
#[derive(Debug)]
enum Job {
    ProbeFailed(PurgeError),
    Refused(PurgeError),
    Ran(Box<PurgeReport>, Option<lethe_wipe::Verdict>),
}

fn job(d: &SimDrive, req: &PurgeRequest, unfreeze_at: Option<u64>) -> Job {
    let clock = TestClock {
        drive: d,
        unfreeze_at,
        done: Cell::new(false),
    };
    let profile = match probe(d, path_of(d), hints_of(d)) {
        Ok(p) => p,
        Err(e) => return Job::ProbeFailed(e),
    };
    let rep = match run_purge(d, d, &clock, hints_of(d), profile, req, &|_| {}) {
        Ok(r) => r,
        Err(e) => return Job::Refused(e),
    };
    let overwrite = (rep.outcome == Outcome::Overwrite).then(|| {
        let plan = WipePlan::new(Pattern::ZERO, 1, false, VerifyMode::Full)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut cfg = lethe_wipe::WipeConfig::new(plan, lethe_wipe::StreamKey([7; 16]), 1);
        cfg.chunk_size = 64 << 10;
        cfg.depth = 1;
        lethe_wipe::run(d, &cfg, Checkpoint::START, RangeSet::new(), &()).verdict()
    });
    Job::Ran(Box::new(rep), overwrite)
}

fn report(j: Job) -> (PurgeReport, Option<lethe_wipe::Verdict>) {
    match j {
        Job::Ran(r, v) => (*r, v),
        other => panic!("job did not run: {other:?}"),
    }
}

/// Independent oracle: no canary survives on the modelled media.
fn canaries_gone(d: &SimDrive, req: &PurgeRequest) -> bool {
    let g = d.geometry();
    let c = CanarySet::plan(g.size_bytes, g.logical_sector, req.samples, req.seed);
    let mut want = vec![0u8; c.unit as usize];
    c.offsets.iter().all(|&off| {
        c.bytes_at(off, &mut want);
        let first = off / 512;
        let got: Vec<u8> = (0..c.unit / 512).flat_map(|i| d.peek(first + i)).collect();
        got != want
    })
}

fn ours_left(d: &SimDrive) -> bool {
    let pw = Password::new(PW).unwrap_or_else(|e| panic!("{e}"));
    d.user_password() == Some(pw)
}

fn sata() -> SimDrive {
    SimDrive::new(SimConfig::sata_ssd(8192), SimClock::new())
}

#[test]
fn sata_ssd_purge_uses_sanitize_crypto_scramble_and_verifies() {
    let d = sata();
    let req = request(Level::Purge);
    let (rep, ow) = report(job(&d, &req, None));
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert!(ow.is_none());
    assert!(matches!(rep.method, Method::AtaSanitize(_)));
    assert!(rep
        .completion
        .as_deref()
        .is_some_and(|c| c.contains("SANITIZE STATUS")));
    assert!(rep
        .read_back
        .as_ref()
        .is_some_and(|r| r.passed() && r.samples >= 60));
    assert!(canaries_gone(&d, &req));
}

#[test]
fn nvme_purge_prefers_sanitize_crypto_erase_and_watches_the_log() {
    let d = SimDrive::new(SimConfig::nvme(8192), SimClock::new());
    let req = request(Level::Purge);
    let (rep, _) = report(job(&d, &req, None));
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert_eq!(
        rep.method,
        Method::NvmeSanitize(lethe_cmds::nvme::SanitizeAction::CryptoErase)
    );
    assert!(rep
        .completion
        .as_deref()
        .is_some_and(|c| c.contains("SSTAT")));
    assert!(canaries_gone(&d, &req));
}

#[test]
fn nvme_without_sanitize_uses_format_ses() {
    let mut cfg = SimConfig::nvme(8192);
    cfg.nvme_sanicap = 0;
    cfg.nvme_fna = 0;
    let d = SimDrive::new(cfg, SimClock::new());
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert_eq!(rep.outcome, Outcome::Verified);
    assert_eq!(
        rep.method,
        Method::NvmeFormat(lethe_cmds::nvme::Ses::UserData)
    );
    assert!(rep
        .completion
        .as_deref()
        .is_some_and(|c| c.contains("SES=1")));
}

#[test]
fn sas_hdd_purge_uses_scsi_sanitize_overwrite_and_checks_the_pattern() {
    let d = SimDrive::new(SimConfig::sas_hdd(8192), SimClock::new());
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert!(matches!(rep.method, Method::ScsiSanitize(_)));
    assert!(rep
        .read_back
        .as_ref()
        .is_some_and(|r| r.expect == lethe_purge::Expect::Byte(0)));
}

#[test]
fn security_erase_leaves_no_password_on_success() {
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.ata_sanitize = (false, false, false);
    let d = SimDrive::new(cfg, SimClock::new());
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert_eq!(rep.method, Method::AtaSecurityErase { enhanced: true });
    assert_eq!(d.security_state(), SecState::Sec1);
    assert!(!d.password_set());
}

fn security_only() -> SimDrive {
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.ata_sanitize = (false, false, false);
    SimDrive::new(cfg, SimClock::new())
}

#[test]
fn erase_unit_abort_falls_back_and_clears_the_password() {
    let d = security_only();
    d.inject(Fault::Abort(CmdMatch::Ata(ata_op::SECURITY_ERASE_UNIT)));
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    // Enhanced was aborted; normal erase ran next, with a fresh password each time.
    assert_eq!(rep.attempts.len(), 2, "{rep:#?}");
    assert_eq!(rep.outcome, Outcome::Verified);
    assert!(!d.password_set());
}

#[test]
fn erase_unit_abort_without_fallback_is_a_failure_with_the_drive_unlocked() {
    let d = security_only();
    d.inject(Fault::Abort(CmdMatch::Ata(ata_op::SECURITY_ERASE_UNIT)));
    let mut req = request(Level::Purge);
    req.allow_fallback = false;
    let (rep, _) = report(job(&d, &req, None));
    assert!(
        matches!(rep.outcome, Outcome::Failed(ref r) if r.contains("refused")),
        "{rep:#?}"
    );
    assert!(!d.password_set());
    assert_eq!(d.security_state(), SecState::Sec1);
}

#[test]
fn erase_unit_timeout_fails_and_cleans_up() {
    let d = security_only();
    d.inject(Fault::Timeout(CmdMatch::Ata(ata_op::SECURITY_ERASE_UNIT)));
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert!(
        matches!(rep.outcome, Outcome::Failed(ref r) if r.contains("timed out")),
        "{rep:#?}"
    );
    assert!(!d.password_set(), "cleanup disabled the temporary password");
    assert!(!rep.password_left_set);
}

#[test]
fn power_loss_after_set_password_is_unlocked_by_cleanup() {
    let d = security_only();
    // Power is lost while ERASE PREPARE times out: the drive comes back locked
    // (SEC4) with Lethe's password, and cleanup must unlock and disable it.
    d.inject(Fault::Timeout(CmdMatch::Ata(
        ata_op::SECURITY_ERASE_PREPARE,
    )));
    d.inject(Fault::PowerLossAt(500));
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert!(matches!(rep.outcome, Outcome::Failed(_)), "{rep:#?}");
    assert!(d.power_cycles() >= 1);
    assert!(!d.password_set());
    assert!(
        rep.command_log.iter().any(|l| l.contains("UNLOCK")),
        "{:#?}",
        rep.command_log
    );
}

#[test]
fn drive_gone_mid_erase_reports_the_password_left_behind() {
    let d = security_only();
    // The drive vanishes a few commands after SET PASSWORD, before cleanup ends.
    d.inject(Fault::Abort(CmdMatch::Ata(ata_op::SECURITY_ERASE_PREPARE)));
    d.inject(Fault::GoneAfter(6));
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert!(matches!(rep.outcome, Outcome::Failed(_)), "{rep:#?}");
    if ours_left(&d) {
        assert!(
            rep.password_left_set,
            "a password left on a vanished drive must be reported"
        );
    }
}

#[test]
fn sanitize_failure_is_a_failure_report() {
    let d = sata();
    d.inject(Fault::SanitizeFails);
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert!(matches!(rep.outcome, Outcome::Failed(_)), "{rep:#?}");
    assert!(rep.read_back.is_none());
}

#[test]
fn power_loss_mid_sanitize_restarts_and_still_verifies() {
    let d = sata();
    d.inject(Fault::PowerLossAt(4_000));
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert_eq!(d.power_cycles(), 1);
}

#[test]
fn drive_gone_mid_sanitize_fails() {
    let d = sata();
    d.inject(Fault::GoneAfter(9));
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert!(matches!(rep.outcome, Outcome::Failed(_)), "{rep:#?}");
}

#[test]
fn nvme_sanitize_timeout_fails() {
    let d = SimDrive::new(SimConfig::nvme(8192), SimClock::new());
    d.inject(Fault::Timeout(CmdMatch::Nvme(nvme_op::SANITIZE)));
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert!(
        matches!(rep.outcome, Outcome::Failed(ref r) if r.contains("timed out")),
        "{rep:#?}"
    );
}

#[test]
fn scsi_sanitize_abort_without_fallback_fails() {
    let d = SimDrive::new(SimConfig::sas_hdd(8192), SimClock::new());
    d.inject(Fault::Abort(CmdMatch::Scsi(scsi_op::SANITIZE)));
    let mut req = request(Level::Purge);
    req.allow_fallback = false;
    let (rep, _) = report(job(&d, &req, None));
    assert!(matches!(rep.outcome, Outcome::Failed(_)), "{rep:#?}");
}

#[test]
fn a_lying_drive_is_caught_by_the_read_back() {
    let d = sata();
    d.inject(Fault::LieAboutErase);
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert!(
        matches!(rep.outcome, Outcome::Failed(ref r) if r.contains("read-back")),
        "{rep:#?}"
    );
    assert!(rep
        .read_back
        .as_ref()
        .is_some_and(|r| !r.unchanged.is_empty()));
}

#[test]
fn medium_error_on_a_sample_fails_the_job() {
    let d = sata();
    d.inject(Fault::MediumError(0));
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    assert!(matches!(rep.outcome, Outcome::Failed(_)), "{rep:#?}");
}

#[test]
fn frozen_drive_waits_for_the_operator_then_runs() {
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.ata_sanitize = (false, false, false);
    let d = SimDrive::new(cfg, SimClock::new());
    d.bios_freeze();
    let (rep, _) = report(job(&d, &request(Level::Purge), Some(20_000)));
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert!(rep.waited_ms >= 20_000);
    assert!(rep
        .reasons
        .iter()
        .any(|r| r.contains("cleared SecurityFrozen")));
}

#[test]
fn frozen_drive_without_operator_falls_back_as_policy_allows() {
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.ata_sanitize = (false, false, false);
    let d = SimDrive::new(cfg, SimClock::new());
    d.bios_freeze();
    let (rep, ow) = report(job(&d, &request(Level::Purge), None));
    assert_eq!(rep.outcome, Outcome::Overwrite, "{rep:#?}");
    assert_eq!(rep.category, Level::Clear);
    assert!(rep.reasons.iter().any(|r| r.contains("not cleared")));
    assert_eq!(ow, Some(lethe_wipe::Verdict::Pass));
    let mut req = request(Level::Purge);
    req.allow_fallback = false;
    let d2 = SimDrive::new(d.config().clone(), SimClock::new());
    d2.bios_freeze();
    let (rep, _) = report(job(&d2, &req, None));
    assert!(
        matches!(rep.outcome, Outcome::Failed(ref r) if r.contains("suspend")),
        "{rep:#?}"
    );
}

#[test]
fn hpa_is_reported_and_removed_on_request() {
    let d = sata();
    d.set_hpa(6000);
    let (rep, _) = report(job(&d, &request(Level::Purge), None));
    let h = rep.hidden.clone().unwrap_or_else(|| panic!("{rep:#?}"));
    assert!(!h.hpa_removed && h.note.contains("--remove-hpa"));
    let d = sata();
    d.set_hpa(6000);
    let mut req = request(Level::Purge);
    req.remove_hpa = true;
    let (rep, _) = report(job(&d, &req, None));
    assert!(rep.hidden.as_ref().is_some_and(|h| h.hpa_removed));
    assert_eq!(d.geometry().sectors(), 8192, "native capacity restored");
    assert_eq!(rep.outcome, Outcome::Verified);
    // The last canary sits in the formerly hidden area.
    assert!(rep
        .read_back
        .as_ref()
        .is_some_and(|r| r.samples > 0 && r.unchanged.is_empty()));
}

#[test]
fn explicit_method_the_drive_lacks_is_refused_before_anything_is_written() {
    let d = SimDrive::new(SimConfig::sas_hdd(8192), SimClock::new());
    let mut req = request(Level::Purge);
    req.method = Some(Method::NvmeFormat(lethe_cmds::nvme::Ses::UserData));
    assert!(matches!(
        job(&d, &req, None),
        Job::Refused(PurgeError::MethodRefused(_))
    ));
}

// ---------------------------------------------------------------- property

#[derive(Debug, Clone)]
struct Scenario {
    cfg: SimConfig,
    freeze: bool,
    sanitize_freeze: bool,
    hpa: Option<u64>,
    faults: Vec<Fault>,
    unfreeze_at: Option<u64>,
    allow_fallback: bool,
    remove_hpa: bool,
}

fn arb_cfg() -> impl Strategy<Value = SimConfig> {
    (
        0..3u8,
        any::<bool>(),
        any::<(bool, bool)>(),
        any::<(bool, bool, bool)>(),
        0u32..8,
        any::<(bool, bool, bool)>(),
        any::<(bool, bool, bool)>(),
    )
        .prop_map(
            |(k, rot, (sec, enh), san, sanicap, (fmt, fna, lax), scsi)| {
                let mut c = match k {
                    0 => SimConfig::sata_ssd(4096),
                    1 => SimConfig::nvme(4096),
                    _ => SimConfig::sas_hdd(4096),
                };
                c.rotational = rot;
                if c.kind == SimKind::Sata {
                    c.ata_security = sec;
                    c.ata_enhanced_erase = sec && enh;
                    c.ata_sanitize = san;
                }
                if c.kind == SimKind::Nvme {
                    c.nvme_sanicap = sanicap;
                    c.nvme_format = fmt;
                    c.nvme_fna = if fna { 0x04 } else { 0 };
                    c.nvme_lax_ses = lax;
                }
                if c.kind == SimKind::Sas {
                    c.scsi_sanitize = scsi;
                }
                c
            },
        )
}

fn arb_fault() -> impl Strategy<Value = Fault> {
    let cmd = prop::sample::select(vec![
        CmdMatch::Any,
        CmdMatch::Ata(ata_op::SECURITY_SET_PASSWORD),
        CmdMatch::Ata(ata_op::SECURITY_ERASE_PREPARE),
        CmdMatch::Ata(ata_op::SECURITY_ERASE_UNIT),
        CmdMatch::Ata(ata_op::SECURITY_DISABLE_PASSWORD),
        CmdMatch::Ata(ata_op::SANITIZE),
        CmdMatch::Ata(ata_op::IDENTIFY_DEVICE),
        CmdMatch::Nvme(nvme_op::SANITIZE),
        CmdMatch::Nvme(nvme_op::FORMAT_NVM),
        CmdMatch::Nvme(nvme_op::GET_LOG_PAGE),
        CmdMatch::Scsi(scsi_op::SANITIZE),
        CmdMatch::Scsi(scsi_op::REQUEST_SENSE),
    ]);
    prop_oneof![
        cmd.clone().prop_map(Fault::Abort),
        cmd.prop_map(Fault::Timeout),
        (0u32..30).prop_map(Fault::GoneAfter),
        (0u64..30_000).prop_map(Fault::PowerLossAt),
        (0u64..4096).prop_map(Fault::MediumError),
        Just(Fault::SanitizeFails),
        Just(Fault::LieAboutErase),
    ]
}

fn arb_scenario() -> impl Strategy<Value = Scenario> {
    (
        arb_cfg(),
        any::<(bool, bool)>(),
        prop::option::of(2000u64..4096),
        prop::collection::vec(arb_fault(), 0..4),
        prop::option::of(0u64..120_000),
        any::<(bool, bool)>(),
    )
        .prop_map(
            |(cfg, (freeze, sf), hpa, faults, unfreeze_at, (fb, rh))| Scenario {
                freeze: freeze && cfg.kind == SimKind::Sata,
                sanitize_freeze: sf && cfg.kind == SimKind::Sata,
                hpa: hpa.filter(|_| cfg.kind == SimKind::Sata),
                cfg,
                faults,
                unfreeze_at,
                allow_fallback: fb,
                remove_hpa: rh,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_job_is_verified_or_fails_with_a_reason_and_never_keeps_our_password(s in arb_scenario()) {
        let d = SimDrive::new(s.cfg.clone(), SimClock::new());
        if s.freeze { d.bios_freeze(); }
        if s.sanitize_freeze { d.bios_sanitize_freeze(); }
        if let Some(h) = s.hpa { d.set_hpa(h); }
        for f in &s.faults { d.inject(*f); }
        let mut req = request(Level::Purge);
        req.allow_fallback = s.allow_fallback;
        req.remove_hpa = s.remove_hpa;
        match job(&d, &req, s.unfreeze_at) {
            Job::ProbeFailed(e) => prop_assert!(!e.to_string().is_empty()),
            Job::Refused(e) => prop_assert!(!e.to_string().is_empty()),
            Job::Ran(rep, overwrite) => {
                match &rep.outcome {
                    Outcome::Verified => {
                        prop_assert!(rep.completion.is_some(), "verified without a completion status");
                        prop_assert!(rep.read_back.as_ref().is_some_and(|r| r.passed()));
                        prop_assert!(canaries_gone(&d, &req), "certified but a canary survived: {rep:#?}");
                        prop_assert_eq!(rep.category, Level::Purge);
                    }
                    Outcome::Failed(reason) => prop_assert!(!reason.is_empty()),
                    Outcome::Overwrite => {
                        prop_assert!(s.allow_fallback || rep.reasons.iter().any(|r| r.contains("Clear")));
                        prop_assert_eq!(rep.category, Level::Clear);
                        prop_assert!(overwrite.is_some());
                    }
                    Outcome::Destroy => prop_assert!(rep.reasons.iter().any(|r| r.contains("destruction"))),
                }
                if ours_left(&d) {
                    prop_assert!(rep.password_left_set, "our password is on the drive and the report does not say so");
                    prop_assert!(!matches!(rep.outcome, Outcome::Verified));
                }
                // A drive that is still reachable never keeps our password.
                if !d.is_gone() {
                    prop_assert!(!ours_left(&d), "reachable drive still holds Lethe's password: {rep:#?}");
                }
            }
        }
    }
}
