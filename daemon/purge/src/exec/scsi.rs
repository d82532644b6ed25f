//! SCSI SANITIZE (IMMED), polled with REQUEST SENSE.
//!
//! Polling asks for descriptor-format sense and falls back to fixed format for
//! good when the device answers that request with ILLEGAL REQUEST (as
//! sg_sanitize does). Progress comes from the sense-key-specific field or the
//! another-progress-indication descriptor (0Ah). NO SENSE alone is not proof:
//! a translator may answer REQUEST SENSE (and TEST UNIT READY) itself without
//! asking the drive — libata's `ata_scsi_simulate` does exactly that — so
//! completion also needs TEST UNIT READY to be GOOD and a READ(16) of LBA 0,
//! which reaches the medium, to succeed before the canaries are read. A read
//! that is aborted or "becoming ready" right after is polled again a few times
//! before it counts as a failure.

use super::{deadline, transport_failed, Ctx, MethodResult};
use crate::PurgeEvent;
use lethe_cmds::io::{DriveIoError, ScsiReply};
use lethe_cmds::policy::ScsiSanitizeKind;
use lethe_cmds::scsi::{self, ScsiSanitizeAction, Sense, SenseKey};
use lethe_cmds::watch::capacity_timeout_secs;

fn brief(s: Option<&Sense>) -> String {
    match s {
        None => "no sense data".into(),
        Some(s) => format!(
            "{:?} {:02X}h/{:02X}h{}",
            s.key,
            s.asc,
            s.ascq,
            s.sanitize_progress()
                .map_or(String::new(), |p| format!(" progress {p}/65536"))
        ),
    }
}

fn send(
    ctx: &Ctx<'_>,
    name: &str,
    cdb: &scsi::ScsiCdb,
    data: &mut [u8],
) -> Result<ScsiReply, MethodResult> {
    let r = ctx.io.scsi(cdb, data).map_err(|e| match e {
        DriveIoError::Gone(s) => MethodResult::Failed {
            reason: format!("drive vanished during SANITIZE: {s}"),
        },
        e => transport_failed(name, &e),
    })?;
    ctx.note(format!(
        "SCSI {name}: status {:#04x} {}",
        r.status,
        brief(r.sense.as_ref())
    ));
    Ok(r)
}

/// REQUEST SENSE, descriptor format until the device refuses it.
fn request_sense(ctx: &Ctx<'_>) -> Result<Option<Sense>, MethodResult> {
    loop {
        let desc = ctx.scsi_descriptor.get();
        let mut b = vec![0u8; 252];
        let name = if desc {
            "REQUEST SENSE (descriptor)"
        } else {
            "REQUEST SENSE (fixed)"
        };
        let r = send(ctx, name, &scsi::request_sense(desc), &mut b)?;
        if r.is_good() {
            return Ok(Sense::decode(&b).ok());
        }
        if desc && r.sense.is_some_and(|s| s.key == SenseKey::IllegalRequest) {
            // sg_sanitize: "Descriptor type sense may not be supported, try
            // again with fixed type".
            ctx.scsi_descriptor.set(false);
            continue;
        }
        return Ok(r.sense);
    }
}

/// How one look at the drive came out.
enum Look {
    Running(Option<u16>),
    /// Not ready yet for a reason that may pass (ABORTED COMMAND, becoming
    /// ready): polled again a bounded number of times.
    NotYet(String),
    Done(String),
    Failed(String),
}

/// Consecutive [`Look::NotYet`] answers tolerated before failing.
const NOT_YET_LIMIT: u32 = 10;

/// After NO SENSE: TEST UNIT READY must be GOOD, READ CAPACITY(16) must give
/// the block length, and READ(16) of LBA 0 must succeed.
fn confirm(ctx: &Ctx<'_>, rs: &str) -> Result<Look, MethodResult> {
    let tur = send(ctx, "TEST UNIT READY", &scsi::test_unit_ready(), &mut [])?;
    if let Some(s) = tur.sense.filter(|_| !tur.is_good()) {
        return Ok(classify(&s, "TEST UNIT READY"));
    }
    let mut cap = vec![0u8; 32];
    let rc = send(
        ctx,
        "READ CAPACITY(16)",
        &scsi::read_capacity_16(),
        &mut cap,
    )?;
    if !rc.is_good() {
        return Ok(match rc.sense {
            Some(s) => classify(&s, "READ CAPACITY(16)"),
            None => Look::Failed(format!("READ CAPACITY(16) status {:#04x}", rc.status)),
        });
    }
    let block = match scsi::decode_read_capacity_16(&cap) {
        Ok(c) if (512..=65536).contains(&c.block_len) => c.block_len,
        other => {
            return Ok(Look::Failed(format!(
                "READ CAPACITY(16) unusable: {other:?}"
            )))
        }
    };
    let mut buf = vec![0u8; block as usize];
    let rd = send(ctx, "READ(16) LBA 0", &scsi::read_16(0, 1, block), &mut buf)?;
    if !rd.is_good() {
        return Ok(match rd.sense {
            Some(s) => classify(&s, "READ(16)"),
            None => Look::Failed(format!("READ(16) status {:#04x}", rd.status)),
        });
    }
    Ok(Look::Done(format!(
        "SCSI after SANITIZE: REQUEST SENSE {rs}; TEST UNIT READY GOOD; READ(16) of LBA 0 GOOD"
    )))
}

/// A sense that is not NO SENSE.
fn classify(s: &Sense, what: &str) -> Look {
    if s.is_sanitize_in_progress() {
        Look::Running(s.sanitize_progress())
    } else if s.is_sanitize_failed() {
        Look::Failed(format!("{what}: sanitize failed ({})", brief(Some(s))))
    } else if s.key == SenseKey::AbortedCommand
        || s.key == SenseKey::UnitAttention
        || (s.key == SenseKey::NotReady && s.asc == 0x04)
    {
        Look::NotYet(format!("{what}: {}", brief(Some(s))))
    } else {
        Look::Failed(format!("{what}: unexpected {}", brief(Some(s))))
    }
}

fn look(ctx: &Ctx<'_>) -> Result<Look, MethodResult> {
    let s = request_sense(ctx)?;
    match s {
        Some(s) if s.is_sanitize_in_progress() => Ok(Look::Running(s.sanitize_progress())),
        Some(s) if s.key == SenseKey::NoSense => confirm(ctx, &brief(Some(&s))),
        Some(s) => Ok(classify(&s, "REQUEST SENSE")),
        // No decodable sense after the command proves nothing: fail.
        None => Ok(Look::Failed(
            "REQUEST SENSE returned no decodable sense".into(),
        )),
    }
}

/// Poll until the sanitize ends: `Ok(raw)` on proven completion.
fn poll(ctx: &Ctx<'_>) -> Result<String, MethodResult> {
    let end = deadline(ctx, capacity_timeout_secs(ctx.capacity()));
    let mut not_yet = 0;
    loop {
        ctx.clock.sleep_ms(ctx.poll_ms.max(1));
        match look(ctx)? {
            Look::Done(raw) => return Ok(raw),
            Look::Failed(reason) => return Err(MethodResult::Failed { reason }),
            Look::NotYet(why) => {
                not_yet += 1;
                if not_yet >= NOT_YET_LIMIT {
                    return Err(MethodResult::Failed {
                        reason: format!("no proof of completion after {not_yet} polls: {why}"),
                    });
                }
                continue;
            }
            Look::Running(p) => {
                (ctx.events)(&PurgeEvent::Progress(p.map(|p| f64::from(p) / 65536.0)))
            }
        }
        not_yet = 0;
        if ctx.clock.now_ms() > end {
            return Err(MethodResult::Failed {
                reason: "SANITIZE did not complete before its deadline".into(),
            });
        }
    }
}

pub(super) fn sanitize(ctx: &Ctx<'_>, k: ScsiSanitizeKind, retry: bool) -> MethodResult {
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
    let r = match send(ctx, &format!("SANITIZE {k:?}"), &cdb, &mut param) {
        Ok(r) => r,
        Err(m) => return m,
    };
    if !r.is_good() {
        if r.sense.is_some_and(|s| s.is_sanitize_in_progress()) {
            if !retry {
                return MethodResult::Failed {
                    reason: "the device kept refusing SANITIZE: a sanitize is in progress".into(),
                };
            }
            return match super::watch_running(ctx) {
                Ok(_) => sanitize(ctx, k, false),
                Err(m) => m,
            };
        }
        let illegal = r.sense.is_some_and(|s| s.key == SenseKey::IllegalRequest);
        let why = format!("SANITIZE {k:?} rejected: {}", brief(r.sense.as_ref()));
        return if illegal {
            MethodResult::Refused { reason: why }
        } else {
            MethodResult::Failed { reason: why }
        };
    }
    match poll(ctx) {
        Ok(raw) => MethodResult::Succeeded { raw },
        Err(m) => m,
    }
}

/// Watch a sanitize that is running now (not ours) until it ends.
pub(super) fn watch_running(ctx: &Ctx<'_>) -> Result<Option<String>, MethodResult> {
    let tur = send(ctx, "TEST UNIT READY", &scsi::test_unit_ready(), &mut [])?;
    let rs = request_sense(ctx)?;
    let running = tur.sense.is_some_and(|s| s.is_sanitize_in_progress())
        || rs.is_some_and(|s| s.is_sanitize_in_progress());
    if !running {
        return Ok(None);
    }
    (ctx.events)(&PurgeEvent::Attention(
        "a sanitize is already running on this device (resumed after a power loss, or started \
         by another host): waiting for it to end"
            .into(),
    ));
    poll(ctx).map(Some)
}
