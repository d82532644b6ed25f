//! Running one drive-native method and watching the drive report completion.
//!
//! Every method ends in one of three ways: the drive reports success for our
//! command ([`MethodResult::Succeeded`], with the raw status for the
//! certificate), the drive refused it before anything changed
//! ([`MethodResult::Refused`], so a fallback may run), or it failed or the
//! state is unknown ([`MethodResult::Failed`]: no fallback, a failure report).
//!
//! A sanitize that is already running when Lethe's command arrives (one
//! resumed after a power loss, or started by another host) is not a failure:
//! the drive aborts the new command with "sanitize in progress"; the runner
//! watches that sanitize to its end, reports it, and sends its own command once
//! more ([`watch_running`] does the watching for every command set).
//!
//! - [`ata`]: Security Erase (with its temporary password) and SANITIZE.
//! - [`nvme`]: Sanitize and Format NVM.
//! - [`scsi`]: SANITIZE, polled with REQUEST SENSE and confirmed by TEST UNIT
//!   READY and a read.

mod ata;
mod nvme;
mod scsi;

use crate::clock::Clock;
use crate::profile::{CommandPath, DriveProfile};
use crate::PurgeEvent;
use lethe_cmds::ata::{AtaCommand, Password};
use lethe_cmds::io::{DriveIo, DriveIoError};
use lethe_cmds::policy::Method;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};

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
    pub log: RefCell<Vec<String>>,
    /// Set when a temporary ATA password could not be removed.
    pub password_left: Cell<bool>,
    /// SCSI: REQUEST SENSE still asks for descriptor format (cleared when the
    /// device rejects it).
    pub scsi_descriptor: Cell<bool>,
    /// Sanitize operations this job found running and watched to their end.
    pub watched: RefCell<Vec<String>>,
}

impl<'a> Ctx<'a> {
    /// A context for one job.
    pub fn new(
        io: &'a dyn DriveIo,
        clock: &'a dyn Clock,
        profile: &'a DriveProfile,
        poll_ms: u64,
        password: Password,
        events: &'a dyn Fn(&PurgeEvent),
    ) -> Self {
        Ctx {
            io,
            clock,
            profile,
            poll_ms,
            password,
            events,
            log: RefCell::default(),
            password_left: Cell::new(false),
            scsi_descriptor: Cell::new(true),
            watched: RefCell::default(),
        }
    }

    pub(crate) fn note(&self, s: String) {
        self.log.borrow_mut().push(s);
    }

    pub(crate) fn ata(
        &self,
        name: &str,
        cmd: &AtaCommand,
        data: &mut [u8],
    ) -> Result<lethe_cmds::ata::AtaRegisters, DriveIoError> {
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

    /// Record a sanitize that was running before our command and its end.
    fn watched(&self, what: String) {
        (self.events)(&PurgeEvent::Attention(what.clone()));
        self.watched.borrow_mut().push(what);
    }
}

/// Run `m`. `Overwrite` and `Destroy` are not drive commands and are refused.
pub fn run_method(ctx: &Ctx<'_>, m: Method) -> MethodResult {
    (ctx.events)(&PurgeEvent::Command(format!("{m:?}")));
    match m {
        Method::AtaSecurityErase { enhanced } => ata::security_erase(ctx, enhanced),
        Method::AtaSanitize(k) => ata::sanitize(ctx, k, true),
        Method::NvmeSanitize(a) => nvme::sanitize(ctx, a, true),
        Method::NvmeFormat(ses) => nvme::format(ctx, ses, true),
        Method::ScsiSanitize(k) => scsi::sanitize(ctx, k, true),
        Method::Overwrite | Method::Destroy => MethodResult::Refused {
            reason: format!("{m:?} is not a drive command"),
        },
    }
}

/// If a sanitize is running on the drive now (for example one that resumed
/// after a power loss), wait for it to end. `Ok(None)`: none was running;
/// `Ok(Some(raw))`: one ran and completed, with the drive's final status;
/// `Err`: it failed, or its status could not be read.
pub fn watch_running(ctx: &Ctx<'_>) -> Result<Option<String>, MethodResult> {
    let r = match ctx.profile.path {
        CommandPath::Ata if ctx.profile.caps.ata.is_some_and(|a| a.sanitize.supported) => {
            ata::watch_running(ctx)
        }
        CommandPath::Nvme { .. } if ctx.profile.caps.nvme.is_some_and(|n| n.sanicap.any()) => {
            nvme::watch_running(ctx)
        }
        CommandPath::Scsi => scsi::watch_running(ctx),
        _ => Ok(None),
    };
    if let Ok(Some(raw)) = &r {
        ctx.watched(format!(
            "a sanitize that this job did not send was already running (resumed after a \
             power loss, or started by another host): watched it to completion: {raw}"
        ));
    }
    r
}

fn transport_failed(what: &str, e: &DriveIoError) -> MethodResult {
    MethodResult::Failed {
        reason: format!("{what}: {e}; the drive's state is unknown"),
    }
}

/// A deadline `secs` from now on the job's clock.
fn deadline(ctx: &Ctx<'_>, secs: u64) -> u64 {
    ctx.clock.now_ms().saturating_add(secs.saturating_mul(1000))
}
