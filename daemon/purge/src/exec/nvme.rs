//! NVMe Sanitize and Format NVM.

use super::{deadline, transport_failed, Ctx, MethodResult};
use crate::profile::CommandPath;
use crate::PurgeEvent;
use lethe_cmds::io::DriveIoError;
use lethe_cmds::nvme::{
    self, FormatParams, SanitizeAction, SanitizeLog, SanitizeParams, SanitizeStatusCode, Ses,
};
use lethe_cmds::watch::{capacity_timeout_secs, timeout_ms, NvmeSanitizeWatch, Verdict};

fn nsid(ctx: &Ctx<'_>) -> u32 {
    match ctx.profile.path {
        CommandPath::Nvme { nsid } => nsid,
        _ => 1,
    }
}

fn log(ctx: &Ctx<'_>) -> Result<SanitizeLog, MethodResult> {
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

/// The command met a sanitize already in progress: watch it, then (once)
/// send ours again.
fn after_running(
    ctx: &Ctx<'_>,
    what: &str,
    retry: bool,
    again: impl FnOnce() -> MethodResult,
) -> MethodResult {
    if !retry {
        return MethodResult::Failed {
            reason: format!("the controller kept refusing {what}: a sanitize is in progress"),
        };
    }
    match super::watch_running(ctx) {
        Ok(_) => again(),
        Err(r) => r,
    }
}

pub(super) fn sanitize(ctx: &Ctx<'_>, action: SanitizeAction, retry: bool) -> MethodResult {
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
    if c.code() == nvme::sc::SANITIZE_IN_PROGRESS {
        return after_running(ctx, "Sanitize", retry, || sanitize(ctx, action, false));
    }
    if !c.is_success() {
        return refused_or_failed("Sanitize", c.status);
    }
    let watch = NvmeSanitizeWatch::new(cmd.cdw10);
    let mut end = None;
    loop {
        let l = match log(ctx) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let est = match action {
            SanitizeAction::CryptoErase => l.est_crypto_erase,
            SanitizeAction::BlockErase => l.est_block_erase,
            _ => l.est_overwrite,
        };
        // The drive's own estimate, doubled, plus 10 minutes; without one, the
        // capacity estimate.
        let budget = SanitizeLog::estimate(est).map_or_else(
            || capacity_timeout_secs(ctx.capacity()),
            |s| 2 * u64::from(s) + 600,
        );
        let dl = *end.get_or_insert_with(|| deadline(ctx, budget));
        match watch.observe(&l) {
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

pub(super) fn format(ctx: &Ctx<'_>, ses: Ses, retry: bool) -> MethodResult {
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
    let secs = capacity_timeout_secs(ctx.capacity());
    let cmd = match nvme::format_nvm(nsid(ctx), &p, timeout_ms(secs)) {
        Ok(c) => c,
        Err(e) => {
            return MethodResult::Refused {
                reason: e.to_string(),
            }
        }
    };
    (ctx.events)(&PurgeEvent::Waiting(format!(
        "Format NVM SES={ses:?}, timeout {} min",
        secs / 60
    )));
    let c = match ctx.io.nvme_admin(&cmd, &mut []) {
        Ok(c) => c,
        Err(e) => return transport_failed("Format NVM", &e),
    };
    ctx.note(format!(
        "NVMe Format NVM: NSID {} CDW10 {:#010x} status {:#06x} result {:#x}",
        cmd.nsid, cmd.cdw10, c.status, c.result
    ));
    if c.code() == nvme::sc::SANITIZE_IN_PROGRESS {
        return after_running(ctx, "Format NVM", retry, || format(ctx, ses, false));
    }
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

/// Watch a sanitize that is running now (not ours) until it ends.
pub(super) fn watch_running(ctx: &Ctx<'_>) -> Result<Option<String>, MethodResult> {
    let end = deadline(ctx, capacity_timeout_secs(ctx.capacity()));
    let mut seen = false;
    loop {
        let l = log(ctx)?;
        let which = nvme::decode_sanitize(l.scdw10, 0)
            .map_or_else(|| "unknown".to_string(), |p| format!("{:?}", p.action));
        let raw = format!(
            "NVMe sanitize log: SPROG={:#06x} SSTAT={:?} GDE={} SCDW10={:#010x} ({which})",
            l.sprog, l.status, l.global_data_erased, l.scdw10
        );
        match l.status {
            SanitizeStatusCode::InProgress => {
                if !seen {
                    (ctx.events)(&PurgeEvent::Attention(format!(
                        "a sanitize ({which}) is already running on this NVM subsystem \
                         (resumed after a power loss, or started by another host): waiting \
                         for it to end"
                    )));
                }
                seen = true;
                (ctx.events)(&PurgeEvent::Progress(l.fraction()));
            }
            _ if !seen => return Ok(None),
            SanitizeStatusCode::Completed | SanitizeStatusCode::CompletedWithDealloc => {
                return Ok(Some(raw))
            }
            _ => {
                return Err(MethodResult::Failed {
                    reason: format!("the sanitize that was already running did not succeed: {raw}"),
                })
            }
        }
        if ctx.clock.now_ms() > end {
            return Err(MethodResult::Failed {
                reason: format!("the sanitize already running did not end in time: {raw}"),
            });
        }
        ctx.clock.sleep_ms(ctx.poll_ms.max(1));
    }
}
