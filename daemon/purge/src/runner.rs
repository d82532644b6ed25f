//! The purge job: policy, operator blockers, hidden areas, canaries, the
//! command with its fallbacks, and the read-back proof.

use crate::canary::{CanarySet, Expect, ReadBack};
use crate::clock::Clock;
use crate::exec::{run_method, Ctx, MethodResult};
use crate::profile::{probe, CommandPath, DriveProfile, HiddenArea, Hints};
use crate::{PurgeError, PurgeEvent};
use lethe_cmds::ata::{self, Password};
use lethe_cmds::io::DriveIo;
use lethe_cmds::nvme::SanitizeAction;
use lethe_cmds::policy::{
    check_method, select_method, AtaSanitizeKind, Blocker, Category, Level, Method, MethodChoice,
    ScsiSanitizeKind,
};
use lethe_core::device::BlockDevice;
use serde::{Deserialize, Serialize};

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct PurgeRequest {
    /// Requested level.
    pub level: Level,
    /// `None` = the policy chooses; `Some` = this method or a refusal.
    pub method: Option<Method>,
    /// Restore the native max address (remove an HPA) before erasing.
    pub remove_hpa: bool,
    /// Allow fallbacks after a refusal or a frozen drive, including a verified
    /// overwrite (which only achieves Clear, and says so).
    pub allow_fallback: bool,
    /// How long to wait for the operator to unfreeze the drive.
    pub unfreeze_wait_ms: u64,
    /// Status polling interval.
    pub poll_ms: u64,
    /// Number of read-back samples.
    pub samples: usize,
    /// Seed of the sample plan and canaries.
    pub seed: u64,
    /// Temporary ATA password (random per job; never logged).
    pub password: Password,
}

/// How the job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The drive reported completion and the read-back proved it.
    Verified,
    /// A verified overwrite must run instead (the caller runs the engine).
    Overwrite,
    /// The level cannot be reached on this device: destroy it.
    Destroy,
    /// The job failed; a failure report, never a certificate of sanitization.
    Failed(String),
}

/// One method tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The method.
    pub method: String,
    /// How it ended.
    pub result: MethodResult,
}

/// Hidden-area handling, for the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiddenReport {
    /// What was found before the job.
    pub found: HiddenArea,
    /// True when the HPA was removed (SET MAX ADDRESS EXT, volatile).
    pub hpa_removed: bool,
    /// Note for the certificate.
    pub note: String,
}

/// Everything the certificate needs about a drive-native job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurgeReport {
    /// Requested level.
    pub requested: Level,
    /// The method that produced the outcome (or the last one tried).
    pub method: Method,
    /// The NIST category that method achieves.
    pub category: Category,
    /// Policy reasons plus everything that happened, in order.
    pub reasons: Vec<String>,
    /// Methods tried, in order.
    pub attempts: Vec<Attempt>,
    /// The drive's raw completion status of the successful command.
    pub completion: Option<String>,
    /// Read-back proof.
    pub read_back: Option<ReadBack>,
    /// HPA/DCO.
    pub hidden: Option<HiddenReport>,
    /// Milliseconds spent waiting for the operator to unfreeze the drive.
    pub waited_ms: u64,
    /// Every command's raw answer, for the audit trail.
    pub command_log: Vec<String>,
    /// Set when a temporary ATA password could not be removed (the drive is
    /// then named in the failure report so the operator can unlock it).
    pub password_left_set: bool,
    /// The outcome.
    pub outcome: Outcome,
}

fn expect_for(m: Method) -> Expect {
    match m {
        // Overwrite with pattern 0 and no invert: every byte must read as 0.
        Method::AtaSanitize(AtaSanitizeKind::Overwrite)
        | Method::NvmeSanitize(SanitizeAction::Overwrite)
        | Method::ScsiSanitize(ScsiSanitizeKind::Overwrite) => Expect::Byte(0),
        _ => Expect::Changed,
    }
}

fn is_frozen(b: Option<Blocker>) -> bool {
    matches!(b, Some(Blocker::SecurityFrozen | Blocker::SanitizeFrozen))
}

fn choose(p: &DriveProfile, req: &PurgeRequest) -> Result<MethodChoice, PurgeError> {
    match req.method {
        None => Ok(select_method(&p.caps, req.level)),
        Some(m) => check_method(&p.caps, req.level, m).map_err(PurgeError::MethodRefused),
    }
}

/// Run a purge job on a probed drive. `dev` is the block device used for the
/// canaries and the read-back; `io` carries the commands.
#[allow(clippy::too_many_arguments)]
pub fn run_purge(
    io: &dyn DriveIo,
    dev: &dyn BlockDevice,
    clock: &dyn Clock,
    hints: Hints,
    profile: DriveProfile,
    req: &PurgeRequest,
    events: &dyn Fn(&PurgeEvent),
) -> Result<PurgeReport, PurgeError> {
    let mut profile = profile;
    let mut choice = choose(&profile, req)?;
    let mut rep = PurgeReport {
        requested: req.level,
        method: choice.method,
        category: choice.category,
        reasons: choice.reasons.clone(),
        attempts: Vec::new(),
        completion: None,
        read_back: None,
        hidden: None,
        waited_ms: 0,
        command_log: Vec::new(),
        password_left_set: false,
        outcome: Outcome::Failed("not started".into()),
    };
    events(&PurgeEvent::Chosen(choice.clone()));

    // Operator blockers: wait for an unfreeze, then re-probe and re-choose.
    if let Some(b) = choice.blocker {
        events(&PurgeEvent::Attention(format!(
            "{b:?}: {}",
            b.instructions()
        )));
        let start = clock.now_ms();
        while is_frozen(choice.blocker) && clock.now_ms() - start < req.unfreeze_wait_ms {
            clock.sleep_ms(req.poll_ms.max(1));
            if let Ok(p) = probe(io, profile.path, hints) {
                profile = p;
                choice = choose(&profile, req)?;
            }
        }
        rep.waited_ms = clock.now_ms() - start;
        match choice.blocker {
            None => rep.reasons.push(format!(
                "the operator cleared {b:?} after {} s; re-probed and chose {:?}",
                rep.waited_ms / 1000,
                choice.method
            )),
            Some(b2) => {
                let fallback = choice
                    .fallbacks
                    .first()
                    .copied()
                    .filter(|_| req.allow_fallback);
                let Some((m, cat)) = fallback else {
                    rep.outcome = Outcome::Failed(format!(
                        "{b2:?} not cleared after {} s ({}); no fallback allowed",
                        rep.waited_ms / 1000,
                        b2.instructions()
                    ));
                    return Ok(rep);
                };
                rep.reasons.push(format!(
                    "{b2:?} not cleared after {} s: falling back to {m:?} ({cat:?}) as the policy allows",
                    rep.waited_ms / 1000
                ));
                choice.method = m;
                choice.category = cat;
                choice.blocker = None;
                choice.fallbacks.retain(|(x, _)| *x != m);
            }
        }
        rep.reasons.extend(
            choice
                .reasons
                .iter()
                .filter(|r| !rep.reasons.contains(r))
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    rep.method = choice.method;
    rep.category = choice.category;

    // Purge that no command can reach.
    if choice.method == Method::Destroy {
        let overwrite_ok = req.allow_fallback
            && req.level != Level::Destroy
            && !profile.caps.removable_flash
            && choice
                .fallbacks
                .iter()
                .any(|(m, _)| *m == Method::Overwrite);
        if overwrite_ok {
            rep.method = Method::Overwrite;
            rep.category = Level::Clear;
            rep.reasons.push(
                "falling back to a verified overwrite, which achieves Clear only: to reach Purge, destroy the device".into(),
            );
            rep.outcome = Outcome::Overwrite;
        } else {
            rep.outcome = Outcome::Destroy;
        }
        return Ok(rep);
    }
    if choice.method == Method::Overwrite {
        rep.outcome = Outcome::Overwrite;
        return Ok(rep);
    }

    // Hidden areas: report, and remove the HPA when asked.
    if let Some(h) = profile.hidden.filter(|h| h.hpa() || h.dco()) {
        rep.hidden = Some(hidden_step(io, h, req.remove_hpa, &mut rep));
        if let Some(hr) = &rep.hidden {
            events(&PurgeEvent::Attention(hr.note.clone()));
        }
    }

    let geo = dev.geometry();
    let canaries = CanarySet::plan(geo.size_bytes, geo.logical_sector, req.samples, req.seed);
    if let Err(e) = canaries.plant(dev) {
        rep.outcome = Outcome::Failed(format!("could not write the read-back canaries: {e}"));
        return Ok(rep);
    }

    let ctx = Ctx {
        io,
        clock,
        profile: &profile,
        poll_ms: req.poll_ms,
        password: req.password,
        events,
        log: Default::default(),
        password_left: Default::default(),
    };
    let mut queue: Vec<(Method, Category)> = vec![(choice.method, choice.category)];
    if req.allow_fallback {
        queue.extend(choice.fallbacks.iter().copied());
    }
    for (m, cat) in queue {
        rep.method = m;
        rep.category = cat;
        if m == Method::Overwrite {
            rep.reasons.push(
                "every drive-native method was refused: falling back to a verified overwrite (Clear)".into(),
            );
            rep.outcome = Outcome::Overwrite;
            break;
        }
        let r = run_method(&ctx, m);
        rep.attempts.push(Attempt {
            method: format!("{m:?}"),
            result: r.clone(),
        });
        match r {
            MethodResult::Succeeded { raw } => {
                rep.completion = Some(raw);
                let rb = canaries.check(dev, expect_for(m));
                rep.outcome = if rb.passed() {
                    Outcome::Verified
                } else {
                    Outcome::Failed(format!(
                        "the drive reported success but the read-back failed: {}",
                        rb.summary()
                    ))
                };
                rep.read_back = Some(rb);
                break;
            }
            MethodResult::Refused { reason } => {
                rep.reasons
                    .push(format!("{m:?} refused by the drive: {reason}"));
                rep.outcome = Outcome::Failed(format!("{m:?} refused by the drive: {reason}"));
                if !req.allow_fallback {
                    break;
                }
            }
            MethodResult::Failed { reason } => {
                rep.outcome = Outcome::Failed(format!("{m:?} failed: {reason}"));
                break;
            }
        }
    }
    rep.command_log = ctx.log.take();
    rep.password_left_set = ctx.password_left.get();
    if rep.password_left_set {
        if let Outcome::Verified = rep.outcome {
            rep.outcome = Outcome::Failed("the temporary ATA password could not be removed".into());
        }
    }
    Ok(rep)
}

fn hidden_step(
    io: &dyn DriveIo,
    h: HiddenArea,
    remove: bool,
    rep: &mut PurgeReport,
) -> HiddenReport {
    let mut note = format!(
        "{} visible sectors, {} native (HPA hides {}){}",
        h.visible_sectors,
        h.native_sectors,
        h.native_sectors.saturating_sub(h.visible_sectors),
        h.dco_sectors.map_or(String::new(), |d| format!(
            ", factory {d} (DCO hides {})",
            d.saturating_sub(h.native_sectors)
        ))
    );
    let mut removed = false;
    if h.hpa() && remove {
        // Volatile: the owner's HPA returns at the next power cycle, but this
        // job sanitizes and verifies the whole native capacity.
        match ata::set_max_ext(h.native_sectors - 1, false) {
            Ok(cmd) => match io.ata(&cmd, &mut []) {
                Ok(r) if !r.failed() => {
                    removed = true;
                    note.push_str("; HPA removed with SET MAX ADDRESS EXT (volatile)");
                }
                Ok(r) => note.push_str(&format!(
                    "; SET MAX ADDRESS EXT rejected (error {:#04x}): hidden sectors stay outside the read-back",
                    r.error
                )),
                Err(e) => note.push_str(&format!("; SET MAX ADDRESS EXT failed: {e}")),
            },
            Err(e) => note.push_str(&format!("; {e}")),
        }
    } else if h.hpa() {
        note.push_str(
            "; not removed (use --remove-hpa): the read-back cannot sample hidden sectors",
        );
    }
    if h.dco() {
        note.push_str("; DCO left in place (DCO RESTORE is not sent)");
    }
    rep.reasons.push(format!("hidden area: {note}"));
    HiddenReport {
        found: h,
        hpa_removed: removed,
        note,
    }
}

/// The command path a transport uses (the caller may override for USB bridges).
pub fn default_path(t: lethe_cmds::policy::Transport, nsid: Option<u32>) -> CommandPath {
    use lethe_cmds::policy::Transport as T;
    match t {
        T::Sata | T::Usb => CommandPath::Ata,
        T::Nvme => CommandPath::Nvme {
            nsid: nsid.unwrap_or(1),
        },
        T::Sas => CommandPath::Scsi,
        T::Other => CommandPath::None,
    }
}
