//! Running one drive-native method and watching the drive report completion.
//!
//! Every method ends in one of three ways: the drive reports success for our
//! command ([`MethodResult::Succeeded`], with the raw status for the
//! certificate), the drive refused it before anything changed
//! ([`MethodResult::Refused`], so a fallback may run), or it failed or the
//! state is unknown ([`MethodResult::Failed`]: no fallback, a failure report).

use crate::clock::Clock;
use crate::profile::{ata_identify, DriveProfile};
use crate::PurgeEvent;
use lethe_cmds::ata::{self, AtaCommand, Password, PasswordId, SecurityLevel};
use lethe_cmds::io::{DriveIo, DriveIoError};
use lethe_cmds::nvme::{self, FormatParams, SanitizeAction, SanitizeLog, SanitizeParams, Ses};
use lethe_cmds::policy::{AtaSanitizeKind, Method, ScsiSanitizeKind};
use lethe_cmds::scsi::{self, ScsiSanitizeAction, SenseKey};
use lethe_cmds::watch::{erase_unit_timeout_ms, AtaSanitizeWatch, NvmeSanitizeWatch, Verdict};
use serde::{Deserialize, Serialize};

/// How one method attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MethodResult {
    /// The drive reports success for our command.
    Succeeded {
        /// The drive's own completion status, verbatim.
        raw: String,
    },
    /// The drive refused the command before changing anything.
    Refused {
        /// Why.
        reason: String,
    },
    /// The command failed, or its effect is unknown.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Context shared by the method runners.
pub struct Ctx<'a> {
    pub io: &'a dyn DriveIo,
    pub clock: &'a dyn Clock,
    pub profile: &'a DriveProfile,
    pub poll_ms: u64,
    pub password: Password,
    pub events: &'a dyn Fn(&PurgeEvent),
    /// Commands sent, for the report.
    pub log: std::cell::RefCell<Vec<String>>,
    /// Set when a temporary ATA password could not be removed.
    pub password_left: std::cell::Cell<bool>,
}

impl Ctx<'_> {
    fn note(&self, s: String) {
        self.log.borrow_mut().push(s);
    }

    fn ata(
        &self,
        name: &str,
        cmd: &AtaCommand,
        data: &mut [u8],
    ) -> Result<ata::AtaRegisters, DriveIoError> {
        let r = self.io.ata(cmd, data);
        self.note(match &r {
            Ok(regs) => format!(
                "ATA {name}: status {:#04x} error {:#04x} count {:#06x} lba {:#x}",
                regs.status, regs.error, regs.count, regs.lba
            ),
            Err(e) => format!("ATA {name}: {e}"),
        });
        r
    }

    fn capacity(&self) -> u64 {
        self.profile.capacity_bytes
    }
}

/// Run `m`. `Overwrite` and `Destroy` are not drive commands and are refused.
pub fn run_method(ctx: &Ctx<'_>, m: Method) -> MethodResult {
    (ctx.events)(&PurgeEvent::Command(format!("{m:?}")));
    match m {
        Method::AtaSecurityErase { enhanced } => ata_security_erase(ctx, enhanced),
        Method::AtaSanitize(k) => ata_sanitize(ctx, k),
        Method::NvmeSanitize(a) => nvme_sanitize(ctx, a),
        Method::NvmeFormat(ses) => nvme_format(ctx, ses),
        Method::ScsiSanitize(k) => scsi_sanitize(ctx, k),
        Method::Overwrite | Method::Destroy => MethodResult::Refused {
            reason: format!("{m:?} is not a drive command"),
        },
    }
}

fn transport_failed(what: &str, e: &DriveIoError) -> MethodResult {
    MethodResult::Failed {
        reason: format!("{what}: {e}; the drive's state is unknown"),
    }
}

// ---------------------------------------------------------------- ATA Security

fn ata_security_erase(ctx: &Ctx<'_>, enhanced: bool) -> MethodResult {
    let pw = ctx.password;
    let (set, payload) = ata::security_set_password(PasswordId::User, SecurityLevel::High, &pw, 0);
    let mut p = payload;
    match ctx.ata("SECURITY SET PASSWORD", &set, &mut p) {
        Err(e) => {
            // The password may or may not be set: clean up before reporting.
            let r = transport_failed("SECURITY SET PASSWORD", &e);
            cleanup_password(ctx);
            return r;
        }
        Ok(r) if r.failed() => {
            return MethodResult::Refused {
                reason: format!(
                    "SECURITY SET PASSWORD rejected (status {:#04x} error {:#04x})",
                    r.status, r.error
                ),
            }
        }
        Ok(_) => {}
    }
    // From here on a password is set: every exit path below must clean up.
    let result = erase_with_password(ctx, enhanced, &pw);
    let unlocked = match &result {
        MethodResult::Succeeded { .. } => after_erase_unlocked(ctx),
        _ => false,
    };
    if !unlocked {
        cleanup_password(ctx);
    }
    if ctx.password_left.get() {
        return MethodResult::Failed {
            reason: format!(
                "{}; the temporary ATA password could not be removed",
                match &result {
                    MethodResult::Succeeded { .. } => "erase reported success".to_string(),
                    MethodResult::Refused { reason } | MethodResult::Failed { reason } =>
                        reason.clone(),
                }
            ),
        };
    }
    result
}

fn erase_with_password(ctx: &Ctx<'_>, enhanced: bool, pw: &Password) -> MethodResult {
    match ctx.ata("SECURITY ERASE PREPARE", &ata::erase_prepare(), &mut []) {
        Err(e) => return transport_failed("SECURITY ERASE PREPARE", &e),
        Ok(r) if r.failed() => {
            return MethodResult::Refused {
                reason: format!("SECURITY ERASE PREPARE rejected (error {:#04x})", r.error),
            }
        }
        Ok(_) => {}
    }
    let est = ctx.profile.ata.as_ref().and_then(|id| {
        if enhanced {
            id.security.enhanced_erase_time.minutes()
        } else {
            id.security.erase_time.minutes()
        }
    });
    let timeout = erase_unit_timeout_ms(est, ctx.capacity());
    let (cmd, payload) = ata::erase_unit(PasswordId::User, enhanced, pw, timeout);
    let mut p = payload;
    (ctx.events)(&PurgeEvent::Waiting(format!(
        "SECURITY ERASE UNIT ({}), drive estimate {}, timeout {} min",
        if enhanced { "enhanced" } else { "normal" },
        est.map_or("not reported".into(), |m| format!("{m} min")),
        timeout / 60_000
    )));
    match ctx.ata("SECURITY ERASE UNIT", &cmd, &mut p) {
        Err(e) => transport_failed("SECURITY ERASE UNIT", &e),
        Ok(r) if r.is_abort() => MethodResult::Refused {
            reason: format!("SECURITY ERASE UNIT aborted (error {:#04x})", r.error),
        },
        Ok(r) if r.failed() => MethodResult::Failed {
            reason: format!(
                "SECURITY ERASE UNIT failed (status {:#04x} error {:#04x})",
                r.status, r.error
            ),
        },
        Ok(r) => MethodResult::Succeeded {
            raw: format!(
                "ATA SECURITY ERASE UNIT ({}) completed: status {:#04x} error {:#04x}",
                if enhanced { "enhanced" } else { "normal" },
                r.status,
                r.error
            ),
        },
    }
}

/// After a good ERASE UNIT the drive must be back in SEC1 (no password).
fn after_erase_unlocked(ctx: &Ctx<'_>) -> bool {
    matches!(ata_identify(ctx.io), Ok(id) if !id.security.enabled && !id.security.locked)
}

/// Unlock and disable our temporary password; records whether it worked.
fn cleanup_password(ctx: &Ctx<'_>) {
    let pw = ctx.password;
    for _ in 0..3 {
        // After a timeout the drive may still be resetting: give it a moment.
        ctx.clock.sleep_ms(ctx.poll_ms.max(1));
        let Ok(id) = ata_identify(ctx.io) else {
            continue;
        };
        if !id.security.enabled && !id.security.locked {
            ctx.password_left.set(false);
            return;
        }
        if id.security.locked {
            let (c, p) = ata::security_unlock(PasswordId::User, &pw);
            let mut p = p;
            let _ = ctx.ata("SECURITY UNLOCK (cleanup)", &c, &mut p);
        }
        let (c, p) = ata::security_disable_password(PasswordId::User, &pw);
        let mut p = p;
        let _ = ctx.ata("SECURITY DISABLE PASSWORD (cleanup)", &c, &mut p);
    }
    let clean =
        matches!(ata_identify(ctx.io), Ok(id) if !id.security.enabled && !id.security.locked);
    ctx.password_left.set(!clean);
}

// ---------------------------------------------------------------- ATA SANITIZE

fn ata_sanitize(ctx: &Ctx<'_>, k: AtaSanitizeKind) -> MethodResult {
    let before = match ctx.ata(
        "SANITIZE STATUS EXT (before)",
        &ata::sanitize_status(false),
        &mut [],
    ) {
        Ok(r) => ata::decode_sanitize_status(&r),
        Err(e) => return transport_failed("SANITIZE STATUS EXT", &e),
    };
    // Restricted failure mode (FAILURE MODE = 0): a failed sanitize keeps the
    // media inaccessible until a sanitize succeeds, which is the safe default.
    let cmd = match k {
        AtaSanitizeKind::CryptoScramble => ata::sanitize_crypto_scramble(false),
        AtaSanitizeKind::BlockErase => ata::sanitize_block_erase(false),
        AtaSanitizeKind::Overwrite => match ata::sanitize_overwrite(1, 0, false, false) {
            Ok(c) => c,
            Err(e) => {
                return MethodResult::Refused {
                    reason: e.to_string(),
                }
            }
        },
    };
    let first = match ctx.ata(&format!("SANITIZE {k:?}"), &cmd, &mut []) {
        Err(e) => return transport_failed("SANITIZE", &e),
        Ok(r) if r.is_abort() && !before.in_progress => {
            return MethodResult::Refused {
                reason: format!("SANITIZE {k:?} aborted (error {:#04x})", r.error),
            }
        }
        Ok(r) => ata::decode_sanitize_status(&r),
    };
    let mut watch = AtaSanitizeWatch::new(&before);
    let deadline = ctx.clock.now_ms() + u64::from(erase_unit_timeout_ms(None, ctx.capacity()));
    let mut v = watch.observe(&first);
    let mut transport_errors = 0;
    loop {
        match v {
            Verdict::Succeeded { raw } => return MethodResult::Succeeded { raw },
            Verdict::Failed { reason } => return MethodResult::Failed { reason },
            Verdict::Running(p) => (ctx.events)(&PurgeEvent::Progress(p)),
        }
        if ctx.clock.now_ms() > deadline {
            return MethodResult::Failed {
                reason: "SANITIZE did not complete before its deadline".into(),
            };
        }
        ctx.clock.sleep_ms(ctx.poll_ms);
        v = match ctx.io.ata(&ata::sanitize_status(false), &mut []) {
            Ok(r) => watch.observe(&ata::decode_sanitize_status(&r)),
            Err(DriveIoError::Gone(s)) => {
                return MethodResult::Failed {
                    reason: format!("drive vanished during SANITIZE: {s}"),
                }
            }
            Err(e) => {
                transport_errors += 1;
                if transport_errors > 5 {
                    return transport_failed("SANITIZE STATUS EXT", &e);
                }
                Verdict::Running(None)
            }
        };
    }
}

// ---------------------------------------------------------------- NVMe

fn nvme_nsid(ctx: &Ctx<'_>) -> u32 {
    match ctx.profile.path {
        crate::profile::CommandPath::Nvme { nsid } => nsid,
        _ => 1,
    }
}

fn nvme_log(ctx: &Ctx<'_>) -> Result<SanitizeLog, MethodResult> {
    let cmd =
        nvme::get_log_page(nvme::LID_SANITIZE_STATUS, nvme::SANITIZE_LOG_LEN).map_err(|e| {
            MethodResult::Failed {
                reason: e.to_string(),
            }
        })?;
    let mut b = vec![0u8; nvme::SANITIZE_LOG_LEN as usize];
    let c = ctx.io.nvme_admin(&cmd, &mut b).map_err(|e| match e {
        DriveIoError::Gone(s) => MethodResult::Failed {
            reason: format!("drive vanished during Sanitize: {s}"),
        },
        e => transport_failed("Get Log Page 81h", &e),
    })?;
    if !c.is_success() {
        return Err(MethodResult::Failed {
            reason: format!("Sanitize Status log unreadable: status {:#06x}", c.status),
        });
    }
    SanitizeLog::decode(&b).map_err(|e| MethodResult::Failed {
        reason: e.to_string(),
    })
}

fn refused_or_failed(what: &str, status: u16) -> MethodResult {
    let code = status & 0x7FF;
    if code == nvme::sc::INVALID_OPCODE || code == nvme::sc::INVALID_FIELD {
        MethodResult::Refused {
            reason: format!("{what} rejected by the controller: status {status:#06x}"),
        }
    } else {
        MethodResult::Failed {
            reason: format!("{what} failed: status {status:#06x}"),
        }
    }
}

fn nvme_sanitize(ctx: &Ctx<'_>, action: SanitizeAction) -> MethodResult {
    let params = SanitizeParams {
        action,
        ause: false,
        overwrite_passes: 1,
        invert: false,
        no_dealloc: false,
        pattern: 0,
    };
    let cmd = match nvme::sanitize(&params) {
        Ok(c) => c,
        Err(e) => {
            return MethodResult::Refused {
                reason: e.to_string(),
            }
        }
    };
    let c = match ctx.io.nvme_admin(&cmd, &mut []) {
        Ok(c) => c,
        Err(e) => return transport_failed("Sanitize", &e),
    };
    ctx.note(format!(
        "NVMe Sanitize {action:?}: CDW10 {:#010x} CDW11 {:#010x} status {:#06x}",
        cmd.cdw10, cmd.cdw11, c.status
    ));
    if !c.is_success() {
        return refused_or_failed("Sanitize", c.status);
    }
    let watch = NvmeSanitizeWatch::new(cmd.cdw10);
    let mut deadline = None;
    let mut v;
    loop {
        let log = match nvme_log(ctx) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let est = match action {
            SanitizeAction::CryptoErase => log.est_crypto_erase,
            SanitizeAction::BlockErase => log.est_block_erase,
            _ => log.est_overwrite,
        };
        // The drive's own estimate, doubled, plus margin; capacity-based without one.
        let budget = SanitizeLog::estimate(est)
            .map(|s| 2 * u64::from(s) * 1000 + 600_000)
            .unwrap_or_else(|| u64::from(erase_unit_timeout_ms(None, ctx.capacity())));
        let dl = *deadline.get_or_insert(ctx.clock.now_ms() + budget);
        v = watch.observe(&log);
        match v {
            Verdict::Succeeded { raw } => return MethodResult::Succeeded { raw },
            Verdict::Failed { reason } => return MethodResult::Failed { reason },
            Verdict::Running(p) => (ctx.events)(&PurgeEvent::Progress(p)),
        }
        if ctx.clock.now_ms() > dl {
            return MethodResult::Failed {
                reason: "Sanitize did not complete before its deadline".into(),
            };
        }
        ctx.clock.sleep_ms(ctx.poll_ms);
    }
}

fn nvme_format(ctx: &Ctx<'_>, ses: Ses) -> MethodResult {
    if ses == Ses::None {
        return MethodResult::Refused {
            reason: "Format with SES=0 erases nothing".into(),
        };
    }
    let Some((ns, dps)) = ctx.profile.nvme_ns.as_ref() else {
        return MethodResult::Refused {
            reason: "no Identify Namespace data".into(),
        };
    };
    // Keep the current LBA format and protection settings: only SES changes.
    let p = FormatParams {
        lbaf: ns.current_format_index() as u8,
        ses,
        pi: dps & 0x7,
        pil: dps & 0x8 != 0,
        mset: ns.flbas & 0x10 != 0,
    };
    let timeout = erase_unit_timeout_ms(None, ctx.capacity());
    let cmd = match nvme::format_nvm(nvme_nsid(ctx), &p, timeout) {
        Ok(c) => c,
        Err(e) => {
            return MethodResult::Refused {
                reason: e.to_string(),
            }
        }
    };
    (ctx.events)(&PurgeEvent::Waiting(format!(
        "Format NVM SES={ses:?}, timeout {} min",
        timeout / 60_000
    )));
    let c = match ctx.io.nvme_admin(&cmd, &mut []) {
        Ok(c) => c,
        Err(e) => return transport_failed("Format NVM", &e),
    };
    ctx.note(format!(
        "NVMe Format NVM: NSID {} CDW10 {:#010x} status {:#06x} result {:#x}",
        cmd.nsid, cmd.cdw10, c.status, c.result
    ));
    if c.is_success() {
        MethodResult::Succeeded {
            raw: format!(
                "NVMe Format NVM SES={} completed: status {:#06x} (CDW10 {:#010x})",
                match ses {
                    Ses::UserData => 1,
                    Ses::Crypto => 2,
                    Ses::None => 0,
                },
                c.status,
                cmd.cdw10
            ),
        }
    } else {
        refused_or_failed("Format NVM", c.status)
    }
}

// ---------------------------------------------------------------- SCSI

fn scsi_sanitize(ctx: &Ctx<'_>, k: ScsiSanitizeKind) -> MethodResult {
    let action = match k {
        ScsiSanitizeKind::CryptoErase => ScsiSanitizeAction::CryptoErase,
        ScsiSanitizeKind::BlockErase => ScsiSanitizeAction::BlockErase,
        ScsiSanitizeKind::Overwrite => ScsiSanitizeAction::Overwrite {
            count: 1,
            invert: false,
            pattern: [0; 4],
        },
    };
    let (cdb, param) = match scsi::sanitize(&action, true, false) {
        Ok(x) => x,
        Err(e) => {
            return MethodResult::Refused {
                reason: e.to_string(),
            }
        }
    };
    let mut param = param;
    let r = match ctx.io.scsi(&cdb, &mut param) {
        Ok(r) => r,
        Err(e) => return transport_failed("SANITIZE", &e),
    };
    ctx.note(format!(
        "SCSI SANITIZE {k:?}: CDB {:02x?} status {:#04x} sense {:?}",
        cdb.bytes(),
        r.status,
        r.sense.map(|s| (s.key, s.asc, s.ascq))
    ));
    if !r.is_good() {
        let illegal = r.sense.is_some_and(|s| s.key == SenseKey::IllegalRequest);
        let why = format!("SANITIZE {k:?} rejected: sense {:?}", r.sense);
        return if illegal {
            MethodResult::Refused { reason: why }
        } else {
            MethodResult::Failed { reason: why }
        };
    }
    let deadline = ctx.clock.now_ms() + u64::from(erase_unit_timeout_ms(None, ctx.capacity()));
    loop {
        ctx.clock.sleep_ms(ctx.poll_ms);
        let mut b = vec![0u8; 252];
        let rs = match ctx.io.scsi(&scsi::request_sense(true), &mut b) {
            Ok(r) => r,
            Err(DriveIoError::Gone(s)) => {
                return MethodResult::Failed {
                    reason: format!("drive vanished during SANITIZE: {s}"),
                }
            }
            Err(e) => return transport_failed("REQUEST SENSE", &e),
        };
        let sense = if rs.is_good() {
            scsi::Sense::decode(&b).ok()
        } else {
            rs.sense
        };
        let raw = format!(
            "SCSI REQUEST SENSE after SANITIZE: {:?}",
            sense.map(|s| (s.key, s.asc, s.ascq))
        );
        match sense {
            Some(s) if s.is_sanitize_in_progress() => (ctx.events)(&PurgeEvent::Progress(
                s.progress.map(|p| f64::from(p) / 65536.0),
            )),
            Some(s) if s.is_sanitize_failed() => return MethodResult::Failed { reason: raw },
            Some(s) if s.key == SenseKey::NoSense => return MethodResult::Succeeded { raw },
            // No decodable sense after the command proves nothing: fail.
            None | Some(_) => return MethodResult::Failed { reason: raw },
        }
        if ctx.clock.now_ms() > deadline {
            return MethodResult::Failed {
                reason: "SANITIZE did not complete before its deadline".into(),
            };
        }
    }
}
