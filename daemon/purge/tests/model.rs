//! The purge runner against the software drive model: every fault path ends in
//! a failure report with the drive unlocked, and a property test over arbitrary
//! capability sets and fault schedules shows the job either ends verified (with
//! the erase confirmed independently, by peeking at the modelled media) or
//! fails with a reason, and never leaves Lethe's password on the drive.

use lethe_cmds::ata::{opcode as ata_op, Password};
use lethe_cmds::io::DriveIo;
use lethe_cmds::nvme::opcode as nvme_op;
use lethe_cmds::policy::{Level, Method, Transport};
use lethe_cmds::scsi::opcode as scsi_op;
use lethe_core::device::BlockDevice;
use lethe_core::pattern::Pattern;
use lethe_core::plan::{Checkpoint, VerifyMode, WipePlan};
use lethe_core::ranges::RangeSet;
use lethe_purge::{
    probe, run_purge, CanarySet, Clock, CommandPath, Hints, NamespaceInfo, Outcome, PurgeError,
    PurgeEvent, PurgeReport, PurgeRequest,
};
use lethe_sim::{
    CmdMatch, Fault, SatPath, ScsiProgress, SecState, SimClock, SimConfig, SimDrive, SimKind,
};
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
        nvme_namespaces: None,
    }
}

/// Every namespace of the model's NVMe subsystem, with the protection given
/// for each NSID (the caller's discovery, in the real job).
fn namespaces(d: &SimDrive, protected: &[(u32, &str)]) -> Option<Vec<NamespaceInfo>> {
    (d.config().kind == SimKind::Nvme).then(|| {
        (1..=d.config().nvme_namespaces.max(1))
            .map(|nsid| NamespaceInfo {
                name: format!("nvme0n{nsid}"),
                nsid,
                protected: protected
                    .iter()
                    .find(|(n, _)| *n == nsid)
                    .map(|(_, why)| why.to_string()),
            })
            .collect()
    })
}

/// The request for `d`, with its namespaces listed and none protected.
fn request_for(d: &SimDrive, level: Level) -> PurgeRequest {
    PurgeRequest {
        nvme_namespaces: namespaces(d, &[]),
        ..request(level)
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
    job_seen(d, req, unfreeze_at, &|_| {})
}

/// A whole job; SATA drives are reached through the SCSI-to-ATA translator,
/// as Linux reaches them.
fn job_seen(
    d: &SimDrive,
    req: &PurgeRequest,
    unfreeze_at: Option<u64>,
    events: &dyn Fn(&PurgeEvent),
) -> Job {
    let clock = TestClock {
        drive: d,
        unfreeze_at,
        done: Cell::new(false),
    };
    let sat = SatPath::new(d);
    let io: &dyn DriveIo = match d.config().kind {
        SimKind::Sata => &sat,
        _ => d,
    };
    let profile = match probe(io, path_of(d), hints_of(d)) {
        Ok(p) => p,
        Err(e) => return Job::ProbeFailed(e),
    };
    let rep = match run_purge(io, d, &clock, hints_of(d), profile, req, events) {
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

/// Independent oracle: no canary of the job's plan survives on the modelled
/// media (the plan spans what the report says it spanned).
fn canaries_gone(d: &SimDrive, rep: &PurgeReport, req: &PurgeRequest) -> bool {
    let span = rep
        .read_back
        .as_ref()
        .map_or(d.geometry().size_bytes, |r| r.span_bytes);
    let c = CanarySet::plan(span, 512, req.samples, req.seed);
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

/// safeguard: 164.310(d)(2)(i)
#[test]
fn sata_ssd_purge_uses_sanitize_crypto_scramble_and_verifies() {
    let d = sata();
    let req = request_for(&d, Level::Purge);
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
    assert!(canaries_gone(&d, &rep, &req));
}

/// safeguard: 164.310(d)(2)(i)
#[test]
fn nvme_purge_prefers_sanitize_crypto_erase_and_watches_the_log() {
    let d = SimDrive::new(SimConfig::nvme(8192), SimClock::new());
    let req = request_for(&d, Level::Purge);
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
    assert!(canaries_gone(&d, &rep, &req));
}

#[test]
fn nvme_without_sanitize_uses_format_ses() {
    let mut cfg = SimConfig::nvme(8192);
    cfg.nvme_sanicap = 0;
    cfg.nvme_fna = 0;
    let d = SimDrive::new(cfg, SimClock::new());
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
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

/// safeguard: 164.310(d)(2)(i)
#[test]
fn sas_hdd_purge_uses_scsi_sanitize_overwrite_and_checks_the_pattern() {
    let d = SimDrive::new(SimConfig::sas_hdd(8192), SimClock::new());
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
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
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
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
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
    // Enhanced was aborted; normal erase ran next, with a fresh password each time.
    assert_eq!(rep.attempts.len(), 2, "{rep:#?}");
    assert_eq!(rep.outcome, Outcome::Verified);
    assert!(!d.password_set());
}

#[test]
fn erase_unit_abort_without_fallback_is_a_failure_with_the_drive_unlocked() {
    let d = security_only();
    d.inject(Fault::Abort(CmdMatch::Ata(ata_op::SECURITY_ERASE_UNIT)));
    let mut req = request_for(&d, Level::Purge);
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
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
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
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
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
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
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
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
    assert!(matches!(rep.outcome, Outcome::Failed(_)), "{rep:#?}");
    assert!(rep.read_back.is_none());
}

#[test]
fn power_loss_mid_sanitize_restarts_and_still_verifies() {
    let d = sata();
    d.inject(Fault::PowerLossAt(4_000));
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert_eq!(d.power_cycles(), 1);
}

#[test]
fn drive_gone_mid_sanitize_fails() {
    let d = sata();
    d.inject(Fault::GoneAfter(9));
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
    assert!(matches!(rep.outcome, Outcome::Failed(_)), "{rep:#?}");
}

#[test]
fn nvme_sanitize_timeout_fails() {
    let d = SimDrive::new(SimConfig::nvme(8192), SimClock::new());
    d.inject(Fault::Timeout(CmdMatch::Nvme(nvme_op::SANITIZE)));
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
    assert!(
        matches!(rep.outcome, Outcome::Failed(ref r) if r.contains("timed out")),
        "{rep:#?}"
    );
}

#[test]
fn scsi_sanitize_abort_without_fallback_fails() {
    let d = SimDrive::new(SimConfig::sas_hdd(8192), SimClock::new());
    d.inject(Fault::Abort(CmdMatch::Scsi(scsi_op::SANITIZE)));
    let mut req = request_for(&d, Level::Purge);
    req.allow_fallback = false;
    let (rep, _) = report(job(&d, &req, None));
    assert!(matches!(rep.outcome, Outcome::Failed(_)), "{rep:#?}");
}

/// safeguard: 164.310(d)(2)(i), rule:never-certify-unverified
#[test]
fn a_lying_drive_is_caught_by_the_read_back() {
    let d = sata();
    d.inject(Fault::LieAboutErase);
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
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
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
    assert!(matches!(rep.outcome, Outcome::Failed(_)), "{rep:#?}");
}

#[test]
fn frozen_drive_waits_for_the_operator_then_runs() {
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.ata_sanitize = (false, false, false);
    let d = SimDrive::new(cfg, SimClock::new());
    d.bios_freeze();
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), Some(20_000)));
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
    let (rep, ow) = report(job(&d, &request_for(&d, Level::Purge), None));
    assert_eq!(rep.outcome, Outcome::Overwrite, "{rep:#?}");
    assert_eq!(rep.category, Level::Clear);
    assert!(rep.reasons.iter().any(|r| r.contains("not cleared")));
    assert_eq!(ow, Some(lethe_wipe::Verdict::Pass));
    let mut req = request_for(&d, Level::Purge);
    req.allow_fallback = false;
    let d2 = SimDrive::new(d.config().clone(), SimClock::new());
    d2.bios_freeze();
    let (rep, _) = report(job(&d2, &req, None));
    assert!(
        matches!(rep.outcome, Outcome::Failed(ref r) if r.contains("suspend")),
        "{rep:#?}"
    );
}

/// safeguard: 164.310(d)(2)(ii)
#[test]
fn hpa_is_reported_and_left_without_remove_hpa() {
    let d = sata();
    d.set_hpa(6000);
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
    let h = rep.hidden.clone().unwrap_or_else(|| panic!("{rep:#?}"));
    assert!(!h.hpa_removed && !h.covered && h.note.contains("--remove-hpa"));
    assert_eq!(rep.outcome, Outcome::Verified);
    assert_eq!(d.accessible_sectors(), 6000);
}

/// Rule: SET MAX ADDRESS EXT only right after READ NATIVE MAX ADDRESS EXT
/// (the probe's DCO IDENTIFY comes between the probe's read and the SET).
/// Rule: the host's block device keeps its old size after the HPA is removed,
/// so the canaries reach the formerly hidden sectors through the pass-through.
/// safeguard: 164.310(d)(2)(ii)
#[test]
fn hpa_removal_rereads_native_max_and_the_canaries_cover_the_native_capacity() {
    let d = sata();
    d.set_hpa(6000);
    let mut req = request_for(&d, Level::Purge);
    req.remove_hpa = true;
    let (rep, _) = report(job(&d, &req, None));
    let h = rep.hidden.clone().unwrap_or_else(|| panic!("{rep:#?}"));
    assert!(h.hpa_removed, "{rep:#?}");
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert_eq!(d.accessible_sectors(), 8192, "native capacity restored");
    assert_eq!(
        d.geometry().sectors(),
        6000,
        "the block device kept its size"
    );
    let rb = rep.read_back.clone().unwrap_or_else(|| panic!("{rep:#?}"));
    assert_eq!(
        rb.span_bytes,
        8192 * 512,
        "the plan spans the native capacity"
    );
    let plan = CanarySet::plan(rb.span_bytes, 512, req.samples, req.seed);
    assert!(plan.offsets.iter().any(|&o| o >= 6000 * 512));
    assert!(rb.passed() && h.covered, "{h:#?}");
    assert!(canaries_gone(&d, &rep, &req));
    let i = rep
        .command_log
        .iter()
        .position(|l| l.starts_with("ATA SET MAX ADDRESS EXT"))
        .unwrap_or_else(|| panic!("{:#?}", rep.command_log));
    assert!(rep.command_log[i - 1].starts_with("ATA READ NATIVE MAX ADDRESS EXT"));
    d.power_cycle();
    assert_eq!(
        d.accessible_sectors(),
        6000,
        "volatile: the owner's HPA is back"
    );
}

/// Rule: an ACS-3 drive with Accessible Max Address Configuration (word 119
/// bit 8) aborts READ NATIVE MAX / SET MAX; 78h finds and removes its hidden
/// area.
#[test]
fn accessible_max_address_is_found_and_removed() {
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.ata_ama = true;
    let d = SimDrive::new(cfg, SimClock::new());
    d.set_hpa(5000);
    let mut req = request_for(&d, Level::Purge);
    req.remove_hpa = true;
    let (rep, _) = report(job(&d, &req, None));
    let h = rep
        .hidden
        .clone()
        .unwrap_or_else(|| panic!("no hidden area found: {rep:#?}"));
    assert_eq!(h.found.feature, lethe_cmds::ata::HiddenAreaFeature::Ama);
    assert_eq!(
        (h.found.visible_sectors, h.found.native_sectors),
        (5000, 8192)
    );
    assert!(h.hpa_removed && h.covered, "{h:#?}");
    assert!(h.note.contains("non-volatile"));
    assert_eq!(rep.outcome, Outcome::Verified);
    assert!(canaries_gone(&d, &rep, &req));
    d.power_cycle();
    assert_eq!(d.accessible_sectors(), 8192, "AMA removal is non-volatile");
}

/// Item 7: when the job ends in an overwrite, the hidden sectors are said to
/// be NOT overwritten (the overwrite reaches only the block device).
/// safeguard: 164.310(d)(2)(ii), rule:never-certify-unverified
#[test]
fn overwrite_fallback_says_the_hidden_area_was_not_overwritten() {
    // No drive-native method at all.
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.ata_sanitize = (false, false, false);
    cfg.ata_security = false;
    let d = SimDrive::new(cfg.clone(), SimClock::new());
    d.set_hpa(6000);
    let mut req = request_for(&d, Level::Purge);
    req.remove_hpa = true;
    let (rep, ow) = report(job(&d, &req, None));
    assert_eq!(rep.outcome, Outcome::Overwrite, "{rep:#?}");
    assert_eq!(ow, Some(lethe_wipe::Verdict::Pass));
    let h = rep
        .hidden
        .clone()
        .unwrap_or_else(|| panic!("hidden area not reported: {rep:#?}"));
    assert!(!h.covered && h.note.contains("NOT overwritten"), "{h:#?}");
    // Every drive-native method is refused after the HPA was removed.
    let d = security_only();
    d.set_hpa(6000);
    d.inject(Fault::Abort(CmdMatch::Ata(ata_op::SECURITY_ERASE_UNIT)));
    d.inject(Fault::Abort(CmdMatch::Ata(ata_op::SECURITY_ERASE_UNIT)));
    let (rep, _) = report(job(&d, &req, None));
    assert_eq!(rep.outcome, Outcome::Overwrite, "{rep:#?}");
    let h = rep.hidden.clone().unwrap_or_else(|| panic!("{rep:#?}"));
    assert!(
        h.hpa_removed && !h.covered && h.note.contains("NOT overwritten"),
        "{h:#?}"
    );
}

/// Rule: CK_COND on a PIO data command makes libata/AHCI (and bridges) answer
/// ABORTED COMMAND without the data; without it IDENTIFY arrives whole and the
/// policy sees what the drive supports.
#[test]
fn identify_through_the_translator_arrives_whole() {
    let d = sata();
    let req = request_for(&d, Level::Purge);
    let (rep, _) = report(job(&d, &req, None));
    assert!(matches!(rep.method, Method::AtaSanitize(_)), "{rep:#?}");
    assert_eq!(rep.outcome, Outcome::Verified);
}

/// Rule: a translator that refuses D_SENSE leaves fixed-format sense; data
/// commands still work, and the truncated sanitize status is an error, never
/// read as "completed".
#[test]
fn translator_without_descriptor_sense_never_misreads_the_status() {
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.sat_dsense = false;
    let d = SimDrive::new(cfg, SimClock::new());
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
    assert_ne!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert!(rep.completion.is_none());
}

fn sas_with(f: impl FnOnce(&mut SimConfig)) -> SimDrive {
    let mut cfg = SimConfig::sas_hdd(8192);
    f(&mut cfg);
    SimDrive::new(cfg, SimClock::new())
}

/// Rule: a device that rejects descriptor-format REQUEST SENSE (ILLEGAL
/// REQUEST) is polled in fixed format, as sg_sanitize does.
#[test]
fn scsi_polling_falls_back_to_fixed_sense() {
    let d = sas_with(|c| c.scsi_dsense = false);
    let seen = std::cell::RefCell::new(Vec::new());
    let rep = match job_seen(&d, &request_for(&d, Level::Purge), None, &|e| {
        if let PurgeEvent::Progress(p) = e {
            seen.borrow_mut().push(*p);
        }
    }) {
        Job::Ran(r, _) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert!(seen.borrow().iter().any(|p| p.is_some_and(|f| f > 0.0)));
    assert!(rep
        .command_log
        .iter()
        .any(|l| l.contains("REQUEST SENSE (fixed)")));
}

/// Rule: progress may come as NO SENSE with descriptor 0Ah naming the running
/// sanitize (SPC-5 4.4.2.11); that is not completion.
#[test]
fn scsi_progress_descriptor_0ah_is_not_completion() {
    let d = sas_with(|c| c.scsi_progress = ScsiProgress::Another);
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert!(canaries_gone(&d, &rep, &request_for(&d, Level::Purge)));
}

/// Rule: NO SENSE from REQUEST SENSE is not proof (translators emulate it):
/// completion needs TEST UNIT READY and a read to succeed before the canaries.
#[test]
fn scsi_no_sense_needs_test_unit_ready_and_a_read() {
    let d = sas_with(|c| c.scsi_request_sense_blind = true);
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    let c = rep.completion.clone().unwrap_or_default();
    assert!(
        c.contains("TEST UNIT READY GOOD") && c.contains("READ(16)"),
        "{c}"
    );
}

/// Rule: a sanitize that resumed at power-on is watched to its end, then the
/// job's own command runs with its own proof.
#[test]
fn a_sanitize_already_running_after_power_loss_is_watched_not_failed() {
    let drives = [
        sata(),
        SimDrive::new(SimConfig::nvme(8192), SimClock::new()),
        SimDrive::new(SimConfig::sas_hdd(8192), SimClock::new()),
    ];
    for d in &drives {
        d.sanitize_running_at_power_on();
        let req = request_for(d, Level::Purge);
        let (rep, _) = report(job(d, &req, None));
        assert_eq!(
            rep.outcome,
            Outcome::Verified,
            "{:?}: {rep:#?}",
            d.config().kind
        );
        assert!(
            rep.reasons.iter().any(|r| r.contains("already running")),
            "{rep:#?}"
        );
        assert!(canaries_gone(d, &rep, &req));
    }
}

/// Rule: a command the drive aborts because a sanitize it did not get from
/// Lethe is running ("sanitize in progress") is retried after that one ends.
#[test]
fn a_command_that_meets_a_running_sanitize_is_sent_again_after_it() {
    for (d, cmd) in [
        (sata(), CmdMatch::Ata(ata_op::SANITIZE)),
        (
            SimDrive::new(SimConfig::nvme(8192), SimClock::new()),
            CmdMatch::Nvme(nvme_op::SANITIZE),
        ),
        (
            SimDrive::new(SimConfig::sas_hdd(8192), SimClock::new()),
            CmdMatch::Scsi(scsi_op::SANITIZE),
        ),
    ] {
        d.inject(Fault::ForeignSanitize(cmd));
        let req = request_for(&d, Level::Purge);
        let (rep, _) = report(job(&d, &req, None));
        assert_eq!(rep.outcome, Outcome::Verified, "{cmd:?}: {rep:#?}");
        assert!(
            rep.reasons.iter().any(|r| r.contains("already running")),
            "{rep:#?}"
        );
        assert!(canaries_gone(&d, &rep, &req));
    }
}

/// Rule: while a sanitize runs the drive aborts every security command, so
/// the temporary password is removed only after that sanitize ends.
#[test]
fn password_cleanup_waits_for_a_sanitize_that_started_meanwhile() {
    let d = sata();
    d.inject(Fault::ForeignSanitize(CmdMatch::Ata(
        ata_op::SECURITY_ERASE_PREPARE,
    )));
    let mut req = request_for(&d, Level::Purge);
    req.method = Some(Method::AtaSecurityErase { enhanced: true });
    let (rep, _) = report(job(&d, &req, None));
    assert!(matches!(rep.outcome, Outcome::Failed(_)), "{rep:#?}");
    assert!(!d.password_set(), "{rep:#?}");
    assert!(!rep.password_left_set);
}

/// Rule (hdparm `get_erase_timeout_secs`): the ERASE UNIT timeout is the
/// drive's estimate (already in minutes) plus 60 minutes, not double it.
#[test]
fn erase_unit_timeout_is_the_estimate_plus_an_hour() {
    let d = security_only();
    let (rep, _) = report(job(&d, &request_for(&d, Level::Purge), None));
    assert_eq!(rep.outcome, Outcome::Verified);
    // The model's drive says 2 minutes (word 90 = 1); 8192 sectors are far
    // below the capacity floor's reach, which is 30 minutes.
    assert_eq!(
        d.last_timeout_ms(ata_op::SECURITY_ERASE_UNIT),
        Some(62 * 60_000)
    );
}

fn nvme_two_namespaces(fna: u8) -> SimDrive {
    let mut cfg = SimConfig::nvme(8192);
    cfg.nvme_namespaces = 2;
    cfg.nvme_fna = fna;
    let d = SimDrive::new(cfg, SimClock::new());
    d.poke_ns(2, 7, &[0xEE; 512]);
    d
}

/// Issue 9 item 4: Sanitize erases the whole subsystem, so with the other
/// namespace mounted it is not sent; a per-namespace Format (FNA = 0) is.
/// safeguard: rule:protected-devices
#[test]
fn nvme_sanitize_is_not_sent_when_another_namespace_is_in_use() {
    let d = nvme_two_namespaces(0x04);
    let mut req = request_for(&d, Level::Purge);
    req.nvme_namespaces = namespaces(&d, &[(2, "mounted on /srv")]);
    let (rep, _) = report(job(&d, &req, None));
    assert_eq!(rep.outcome, Outcome::Verified, "{rep:#?}");
    assert!(matches!(rep.method, Method::NvmeFormat(_)), "{rep:#?}");
    assert_eq!(
        d.peek_ns(2, 7),
        vec![0xEE; 512],
        "the mounted namespace is untouched"
    );
    assert_eq!(
        rep.erased_namespaces,
        Some(vec!["nvme0n1 (NSID 1)".to_string()])
    );
    assert!(rep.reasons.iter().any(|r| r.contains("/srv")));
    // Nothing protected: Sanitize, and the report names both namespaces.
    let d = nvme_two_namespaces(0x04);
    let req = request_for(&d, Level::Purge);
    let (rep, _) = report(job(&d, &req, None));
    assert!(matches!(rep.method, Method::NvmeSanitize(_)), "{rep:#?}");
    assert_eq!(rep.erased_namespaces.map(|v| v.len()), Some(2));
    assert_ne!(d.peek_ns(2, 7), vec![0xEE; 512]);
}

/// FNA bit 0 (or bit 1): every Format reaches the other namespace too, so no
/// drive-native command may run; the overwrite fallback (Clear) when allowed,
/// a refusal otherwise.
/// safeguard: rule:protected-devices
#[test]
fn nvme_format_for_all_namespaces_is_refused_when_one_is_in_use() {
    for fna in [0x01, 0x02] {
        let d = nvme_two_namespaces(fna);
        let mut req = request_for(&d, Level::Purge);
        req.nvme_namespaces = namespaces(&d, &[(2, "mounted on /")]);
        let (rep, ow) = report(job(&d, &req, None));
        assert_eq!(rep.outcome, Outcome::Overwrite, "{rep:#?}");
        assert_eq!(ow, Some(lethe_wipe::Verdict::Pass));
        assert_eq!(d.peek_ns(2, 7), vec![0xEE; 512]);
        req.allow_fallback = false;
        let d = nvme_two_namespaces(fna);
        let (rep, _) = report(job(&d, &req, None));
        assert!(
            matches!(rep.outcome, Outcome::Failed(ref r) if r.contains("protected namespace")),
            "{rep:#?}"
        );
        assert!(rep.attempts.is_empty());
        assert_eq!(d.peek_ns(2, 7), vec![0xEE; 512]);
    }
}

#[test]
fn nvme_explicit_sanitize_with_a_namespace_in_use_is_refused() {
    let d = nvme_two_namespaces(0);
    let mut req = request_for(&d, Level::Purge);
    req.method = Some(Method::NvmeSanitize(
        lethe_cmds::nvme::SanitizeAction::CryptoErase,
    ));
    req.nvme_namespaces = namespaces(&d, &[(2, "swap")]);
    assert!(matches!(
        job(&d, &req, None),
        Job::Refused(PurgeError::MethodRefused(ref r)) if r.contains("swap")
    ));
    // Namespaces not listed: nothing that reaches the whole subsystem is sent.
    req.nvme_namespaces = None;
    assert!(matches!(job(&d, &req, None), Job::Refused(_)));
    req.method = None;
    let (rep, _) = report(job(&d, &req, None));
    assert!(matches!(rep.method, Method::NvmeFormat(_)), "{rep:#?}");
    assert_eq!(d.peek_ns(2, 7), vec![0xEE; 512]);
}

#[test]
fn explicit_method_the_drive_lacks_is_refused_before_anything_is_written() {
    let d = SimDrive::new(SimConfig::sas_hdd(8192), SimClock::new());
    let mut req = request_for(&d, Level::Purge);
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
    running_at_power_on: bool,
    protect_ns2: bool,
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
        (
            any::<(bool, bool, bool)>(),
            any::<(bool, bool)>(),
            1u32..3,
            0u8..4,
        ),
    )
        .prop_map(
            |(k, rot, (sec, enh), san, sanicap, (fmt, fna, lax), scsi, extra)| {
                let ((ama, sat_dsense, scsi_dsense), (another, blind), namespaces, fna_scope) =
                    extra;
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
                    c.ata_ama = ama;
                    c.sat_dsense = sat_dsense;
                }
                if c.kind == SimKind::Nvme {
                    c.nvme_sanicap = sanicap;
                    c.nvme_format = fmt;
                    c.nvme_fna = if fna { 0x04 } else { 0 } | fna_scope;
                    c.nvme_lax_ses = lax;
                    c.nvme_namespaces = namespaces;
                }
                if c.kind == SimKind::Sas {
                    c.scsi_sanitize = scsi;
                    c.scsi_dsense = scsi_dsense;
                    c.scsi_progress = if another {
                        ScsiProgress::Another
                    } else {
                        ScsiProgress::SenseKeySpecific
                    };
                    c.scsi_request_sense_blind = blind;
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
        CmdMatch::Ata(ata_op::READ_NATIVE_MAX_EXT),
        CmdMatch::Ata(ata_op::SET_MAX_EXT),
        CmdMatch::Ata(ata_op::ACCESSIBLE_MAX_ADDRESS),
        CmdMatch::Ata(ata_op::WRITE_SECTORS_EXT),
        CmdMatch::Ata(ata_op::READ_SECTORS_EXT),
        CmdMatch::Nvme(nvme_op::SANITIZE),
        CmdMatch::Nvme(nvme_op::FORMAT_NVM),
        CmdMatch::Nvme(nvme_op::GET_LOG_PAGE),
        CmdMatch::Scsi(scsi_op::SANITIZE),
        CmdMatch::Scsi(scsi_op::REQUEST_SENSE),
        CmdMatch::Scsi(scsi_op::TEST_UNIT_READY),
        CmdMatch::Scsi(scsi_op::READ_16),
    ]);
    prop_oneof![
        cmd.clone().prop_map(Fault::Abort),
        cmd.clone().prop_map(Fault::Timeout),
        cmd.prop_map(Fault::ForeignSanitize),
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
        any::<(bool, bool)>(),
    )
        .prop_map(
            |(cfg, (freeze, sf), hpa, faults, unfreeze_at, (fb, rh), (running, protect))| {
                Scenario {
                    freeze: freeze && cfg.kind == SimKind::Sata,
                    sanitize_freeze: sf && cfg.kind == SimKind::Sata,
                    hpa: hpa.filter(|_| cfg.kind == SimKind::Sata),
                    protect_ns2: protect && cfg.nvme_namespaces > 1,
                    cfg,
                    faults,
                    unfreeze_at,
                    allow_fallback: fb,
                    remove_hpa: rh,
                    running_at_power_on: running,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// safeguard: 164.310(d)(2)(i), rule:never-certify-unverified
    #[test]
    fn every_job_is_verified_or_fails_with_a_reason_and_never_keeps_our_password(s in arb_scenario()) {
        let d = SimDrive::new(s.cfg.clone(), SimClock::new());
        if s.freeze { d.bios_freeze(); }
        if s.sanitize_freeze { d.bios_sanitize_freeze(); }
        if let Some(h) = s.hpa { d.set_hpa(h); }
        for f in &s.faults { d.inject(*f); }
        if s.running_at_power_on { d.sanitize_running_at_power_on(); }
        if s.protect_ns2 { d.poke_ns(2, 9, &[0xEE; 512]); }
        let mut req = request_for(&d, Level::Purge);
        if s.protect_ns2 { req.nvme_namespaces = namespaces(&d, &[(2, "mounted")]); }
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
                        prop_assert!(canaries_gone(&d, &rep, &req), "certified but a canary survived: {rep:#?}");
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
                // A namespace in use is never erased by a command of this job.
                if s.protect_ns2 && !s.running_at_power_on
                    && !s.faults.iter().any(|f| matches!(f, Fault::ForeignSanitize(_))) {
                    prop_assert_eq!(d.peek_ns(2, 9), vec![0xEE; 512], "protected namespace erased: {:#?}", rep);
                }
                // Hidden sectors are claimed covered only when removed and proven.
                if let Some(h) = &rep.hidden {
                    if h.covered {
                        prop_assert!(h.hpa_removed && rep.outcome == Outcome::Verified);
                    }
                }
            }
        }
    }
}
