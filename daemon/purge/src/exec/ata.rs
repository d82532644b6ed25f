//! ATA Security Erase and ATA SANITIZE.

use super::{deadline, transport_failed, Ctx, MethodResult};
use crate::profile::ata_identify;
use crate::PurgeEvent;
use lethe_cmds::ata::{self, EraseTime, Password, PasswordId, SanitizeStatus, SecurityLevel};
use lethe_cmds::io::DriveIoError;
use lethe_cmds::policy::AtaSanitizeKind;
use lethe_cmds::watch::{
    capacity_timeout_secs, erase_unit_timeout_secs, timeout_ms, AtaSanitizeWatch, Verdict,
};

// ---------------------------------------------------------------- Security

pub(super) fn security_erase(ctx: &Ctx<'_>, enhanced: bool) -> MethodResult {
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
    let est = ctx
        .profile
        .ata
        .as_ref()
        .map_or(EraseTime::NotReported, |id| {
            if enhanced {
                id.security.enhanced_erase_time
            } else {
                id.security.erase_time
            }
        });
    let secs = erase_unit_timeout_secs(est, ctx.capacity());
    let (cmd, payload) = ata::erase_unit(PasswordId::User, enhanced, pw, timeout_ms(secs));
    let mut p = payload;
    (ctx.events)(&PurgeEvent::Waiting(format!(
        "SECURITY ERASE UNIT ({}), drive estimate {}, timeout {} min",
        if enhanced { "enhanced" } else { "normal" },
        match est {
            EraseTime::NotReported => "not reported".to_string(),
            EraseTime::Minutes(m) => format!("{m} min"),
            EraseTime::MoreThan(m) => format!("more than {m} min"),
        },
        secs / 60
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
/// A sanitize that started meanwhile makes the drive abort every security
/// command, so it is waited for first.
fn cleanup_password(ctx: &Ctx<'_>) {
    let pw = ctx.password;
    if ctx.profile.caps.ata.is_some_and(|a| a.sanitize.supported) {
        let _ = super::watch_running(ctx);
    }
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

// ---------------------------------------------------------------- SANITIZE

fn status(ctx: &Ctx<'_>, name: &str) -> Result<SanitizeStatus, DriveIoError> {
    ctx.ata(name, &ata::sanitize_status(false), &mut [])
        .map(|r| ata::decode_sanitize_status(&r))
}

/// `retry`: when the drive aborts the command because a sanitize is already
/// running, watch that one to its end and send this command once more.
pub(super) fn sanitize(ctx: &Ctx<'_>, k: AtaSanitizeKind, retry: bool) -> MethodResult {
    let before = match status(ctx, "SANITIZE STATUS EXT (before)") {
        Ok(s) => s,
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
        Ok(r) => r,
    };
    let first_status = ata::decode_sanitize_status(&first);
    if first.is_abort() && first_status.in_progress {
        // Aborted because the drive is already sanitizing: not our command.
        if !retry {
            return MethodResult::Failed {
                reason: "the drive kept refusing SANITIZE: another sanitize is in progress".into(),
            };
        }
        return match super::watch_running(ctx) {
            Ok(_) => sanitize(ctx, k, false),
            Err(r) => r,
        };
    }
    if first.is_abort() && !before.in_progress {
        return MethodResult::Refused {
            reason: format!("SANITIZE {k:?} aborted (error {:#04x})", first.error),
        };
    }
    let mut watch = AtaSanitizeWatch::new(&before);
    let end = deadline(ctx, capacity_timeout_secs(ctx.capacity()));
    let mut v = watch.observe(&first_status);
    let mut transport_errors = 0;
    loop {
        match v {
            Verdict::Succeeded { raw } => return MethodResult::Succeeded { raw },
            Verdict::Failed { reason } => return MethodResult::Failed { reason },
            Verdict::Running(p) => (ctx.events)(&PurgeEvent::Progress(p)),
        }
        if ctx.clock.now_ms() > end {
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

/// Watch a sanitize that is running now (not ours) until it ends.
pub(super) fn watch_running(ctx: &Ctx<'_>) -> Result<Option<String>, MethodResult> {
    let end = deadline(ctx, capacity_timeout_secs(ctx.capacity()));
    let mut seen = false;
    loop {
        let s = status(ctx, "SANITIZE STATUS EXT (running sanitize)")
            .map_err(|e| transport_failed("SANITIZE STATUS EXT", &e))?;
        let raw = format!(
            "ATA SANITIZE STATUS EXT: completed={} in_progress={} progress={} failed={} reason={:?}",
            s.completed_without_error, s.in_progress, s.progress, s.failed, s.reason
        );
        if !s.in_progress {
            if !seen {
                return Ok(None);
            }
            if s.failed {
                return Err(MethodResult::Failed {
                    reason: format!(
                        "the sanitize that was already running failed; the media stays \
                         inaccessible until a sanitize succeeds: {raw}"
                    ),
                });
            }
            return Ok(Some(raw));
        }
        if !seen {
            (ctx.events)(&PurgeEvent::Attention(
                "a sanitize is already running on this drive (resumed after a power loss, or \
                 started by another host): waiting for it to end"
                    .into(),
            ));
        }
        seen = true;
        (ctx.events)(&PurgeEvent::Progress(Some(s.fraction())));
        if ctx.clock.now_ms() > end {
            return Err(MethodResult::Failed {
                reason: format!("the sanitize already running did not end in time: {raw}"),
            });
        }
        ctx.clock.sleep_ms(ctx.poll_ms.max(1));
    }
}
