//! The purge job: a sanitize already running, policy, NVMe namespace scope,
//! operator blockers, hidden areas, canaries, the command with its fallbacks,
//! and the read-back proof.

use crate::canary::{CanarySet, Expect, Medium, NativeView, ReadBack, Visible};
use crate::clock::Clock;
use crate::exec::{run_method, watch_running, Ctx, MethodResult};
use crate::hidden::{hidden_step, unreached, HiddenReport};
use crate::profile::{probe, CommandPath, DriveProfile, Hints};
use crate::scope::{self, NamespaceInfo};
use crate::{PurgeError, PurgeEvent};
use lethe_cmds::ata::Password;
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
    /// NVMe: every namespace of the NVM subsystem with its protection, as the
    /// caller found them (the target included, unprotected). `None`: not
    /// listed, and then no command that reaches other namespaces is sent.
    pub nvme_namespaces: Option<Vec<NamespaceInfo>>,
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
    /// HPA/AMA/DCO.
    pub hidden: Option<HiddenReport>,
    /// NVMe: the namespaces the successful command erased (`name (NSID n)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_namespaces: Option<Vec<String>>,
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

/// The NVMe target namespace id, if the drive is reached as NVMe.
fn target_nsid(p: &DriveProfile) -> Option<u32> {
    match p.path {
        CommandPath::Nvme { nsid } => Some(nsid),
        _ => None,
    }
}

/// The policy's choice, restricted to the NVMe namespace scope. The second
/// value is set when the scope alone leaves no drive-native method.
fn choose(
    p: &DriveProfile,
    req: &PurgeRequest,
) -> Result<(MethodChoice, Option<String>), PurgeError> {
    let list = req.nvme_namespaces.as_deref();
    let nvme = p.caps.nvme.zip(target_nsid(p));
    match req.method {
        None => {
            let mut c = select_method(&p.caps, req.level);
            let mut blocked = None;
            if let Some((caps, nsid)) = nvme {
                let (why, b) = scope::restrict(&mut c, &caps, nsid, list);
                c.reasons.extend(why);
                blocked = b;
            }
            Ok((c, blocked))
        }
        Some(m) => {
            let c = check_method(&p.caps, req.level, m).map_err(PurgeError::MethodRefused)?;
            if let Some((caps, nsid)) = nvme {
                scope::erased_by(m, &caps, nsid, list).map_err(PurgeError::MethodRefused)?;
            }
            Ok((c, None))
        }
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
    let (mut choice, mut scope_blocked) = choose(&profile, req)?;
    let mut rep = PurgeReport {
        requested: req.level,
        method: choice.method,
        category: choice.category,
        reasons: choice.reasons.clone(),
        attempts: Vec::new(),
        completion: None,
        read_back: None,
        hidden: None,
        erased_namespaces: None,
        waited_ms: 0,
        command_log: Vec::new(),
        password_left_set: false,
        outcome: Outcome::Failed("not started".into()),
    };
    events(&PurgeEvent::Chosen(choice.clone()));

    // A sanitize already running (resumed after a power loss) is watched to
    // its end, not taken as a failure; the drive is then probed afresh, since
    // commands like READ NATIVE MAX were refused while it ran.
    let pre = {
        let ctx = Ctx::new(io, clock, &profile, req.poll_ms, req.password, events);
        let r = watch_running(&ctx);
        rep.command_log.extend(ctx.log.take());
        r
    };
    match pre {
        Ok(None) => {}
        Ok(Some(raw)) => {
            rep.reasons.push(format!(
                "a sanitize this job did not send was already running (resumed after a power \
                 loss, or started by another host) and was watched to completion ({raw}); the \
                 drive was then probed again and this job's own command still runs, with its \
                 own read-back proof"
            ));
            profile = probe(io, profile.path, hints)?;
            (choice, scope_blocked) = choose(&profile, req)?;
            let fresh: Vec<String> = choice
                .reasons
                .iter()
                .filter(|r| !rep.reasons.contains(r))
                .cloned()
                .collect();
            rep.reasons.extend(fresh);
        }
        Err(MethodResult::Failed { reason } | MethodResult::Refused { reason }) => {
            rep.outcome = Outcome::Failed(reason);
            return Ok(rep);
        }
        Err(MethodResult::Succeeded { .. }) => {}
    }

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
                (choice, scope_blocked) = choose(&profile, req)?;
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

    // Purge that no command can reach (or none may be sent).
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
        } else if let Some(why) = scope_blocked {
            rep.outcome = Outcome::Failed(format!("refused, nothing was sent: {why}"));
        } else {
            rep.outcome = Outcome::Destroy;
        }
        rep.hidden = unreached(&profile, &mut rep.reasons);
        return Ok(rep);
    }
    if choice.method == Method::Overwrite {
        rep.outcome = Outcome::Overwrite;
        rep.hidden = unreached(&profile, &mut rep.reasons);
        return Ok(rep);
    }

    // Hidden areas: report, and remove the HPA/AMA when asked.
    let mut native_bytes = None;
    if let Some(h) = profile.hidden.filter(|h| h.hpa() || h.dco()) {
        let hr = hidden_step(io, h, req.remove_hpa, &mut rep.command_log);
        events(&PurgeEvent::Attention(hr.note.clone()));
        rep.reasons.push(format!("hidden area: {}", hr.note));
        if hr.hpa_removed {
            let sector = profile
                .ata
                .as_ref()
                .map_or(512, |id| id.logical_sector_size);
            native_bytes = Some((h.native_sectors * u64::from(sector), sector));
        }
        rep.hidden = Some(hr);
    }

    // The canaries span the native capacity when a hidden area was removed.
    let visible = Visible(dev);
    let native = native_bytes.map(|(bytes, sector)| NativeView {
        dev,
        io,
        native_bytes: bytes,
        sector,
    });
    let medium: &dyn Medium = match &native {
        Some(n) => n,
        None => &visible,
    };
    let geo = dev.geometry();
    let canaries = CanarySet::plan(medium.span(), geo.logical_sector, req.samples, req.seed);
    if let Err(e) = canaries.plant(medium) {
        rep.outcome = Outcome::Failed(format!("could not write the read-back canaries: {e}"));
        return Ok(rep);
    }

    let ctx = Ctx::new(io, clock, &profile, req.poll_ms, req.password, events);
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
            if let Some(h) = rep.hidden.as_mut() {
                h.overwrite_follows(geo.size_bytes / u64::from(geo.logical_sector.max(1)));
            }
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
                let rb = canaries.check(medium, expect_for(m));
                rep.outcome = if rb.passed() {
                    Outcome::Verified
                } else {
                    Outcome::Failed(format!(
                        "the drive reported success but the read-back failed: {}",
                        rb.summary()
                    ))
                };
                if let (Some(h), true) = (rep.hidden.as_mut(), rb.passed()) {
                    h.proven(native.is_some());
                }
                rep.erased_namespaces = erased_names(&profile, req, m);
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
    rep.reasons.extend(ctx.watched.take());
    rep.command_log.extend(ctx.log.take());
    rep.password_left_set = ctx.password_left.get();
    if rep.password_left_set {
        if let Outcome::Verified = rep.outcome {
            rep.outcome = Outcome::Failed("the temporary ATA password could not be removed".into());
        }
    }
    Ok(rep)
}

/// The namespaces `m` erased, for the certificate (NVMe only).
fn erased_names(p: &DriveProfile, req: &PurgeRequest, m: Method) -> Option<Vec<String>> {
    let (caps, nsid) = p.caps.nvme.zip(target_nsid(p))?;
    match scope::erased_by(m, &caps, nsid, req.nvme_namespaces.as_deref()) {
        Ok(Some(names)) => Some(names),
        _ => Some(vec![format!("NSID {nsid}")]),
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
