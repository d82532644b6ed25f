//! A drive-native purge: probe the drive through its pass-through, let the
//! NIST policy choose, refuse up front what only destruction reaches, run
//! the command (or its fallbacks) and certify what was proven, or continue
//! the same job with the verified overwrite when the policy sends it there.

use crate::certificate::{technique, Common, Work};
use crate::event::{Event, Level, Outcome, PurgeStep, Report};
use crate::host::{PassThrough, Target};
use crate::record::{self, JobLog};
use crate::refusal::Refusal;
use crate::request::{JobKind, MethodFamily, WipeLevel, WipeRequest};
use crate::runner::Ctx;
use crate::spec::{PurgeContext, WipeSpec};
use crate::state::{self, Reservation};
use crate::wipe::{self, Run};
use lethe_cmds::ata::{AtaCommand, AtaRegisters, Password};
use lethe_cmds::io::{DriveIo, DriveIoError, ScsiReply};
use lethe_cmds::nvme::{NvmeAdminCmd, NvmeCompletion};
use lethe_cmds::policy::{self, Level as PolicyLevel, Method, Transport};
use lethe_cmds::scsi::ScsiCdb;
use lethe_controller::LedPattern;
use lethe_core::plan::Checkpoint;
use lethe_core::ranges::RangeSet;
use lethe_purge::{probe, run_purge, CommandPath, DriveProfile, Hints, PurgeEvent, PurgeRequest};
use lethe_store::JobStatus;
use lethe_wipe::StreamKey;
use std::cell::Cell;

/// A path with no pass-through (loop, virtio…): every command is unsupported.
struct NoPassthrough;

impl DriveIo for NoPassthrough {
    fn ata(&self, _: &AtaCommand, _: &mut [u8]) -> Result<AtaRegisters, DriveIoError> {
        Err(DriveIoError::Unsupported(
            "no pass-through on this device".into(),
        ))
    }
    fn nvme_admin(&self, _: &NvmeAdminCmd, _: &mut [u8]) -> Result<NvmeCompletion, DriveIoError> {
        Err(DriveIoError::Unsupported(
            "no pass-through on this device".into(),
        ))
    }
    fn scsi(&self, _: &ScsiCdb, _: &mut [u8]) -> Result<ScsiReply, DriveIoError> {
        Err(DriveIoError::Unsupported(
            "no pass-through on this device".into(),
        ))
    }
}

fn transport_of(t: &str) -> Transport {
    match t {
        "sata" | "ata" => Transport::Sata,
        "sas" | "scsi" => Transport::Sas,
        "nvme" => Transport::Nvme,
        "usb" => Transport::Usb,
        _ => Transport::Other,
    }
}

/// What discovery knows that the policy needs.
fn hints(target: &dyn Target) -> Hints {
    let id = target.identity();
    let transport = transport_of(&id.transport);
    Hints {
        transport,
        rotational: id.rotational,
        // Memory cards are flash; a USB device is a flash stick when it says it
        // is removable media (RMB) or solid state. Many sticks claim to be
        // rotational, so that flag alone proves nothing.
        removable_flash: id.transport == "mmc"
            || (id.transport == "usb"
                && (id.removable == Some(true) || id.rotational == Some(false))),
    }
}

/// Probe the drive, trying SCSI when an ATA probe fails (USB bridges
/// without SAT, SATA behind odd HBAs). Notes say what did not work.
fn probe_drive(pt: &PassThrough, hints: Hints, size: u64, ctx: &Ctx<'_>) -> DriveProfile {
    let none = |why: String| {
        ctx.note(why);
        probe(&NoPassthrough, CommandPath::None, hints).ok()
    };
    let profile = match &pt.io {
        Err(why) => none(why.clone()),
        Ok(io) => {
            let first = match hints.transport {
                Transport::Nvme => CommandPath::Nvme {
                    nsid: pt.nsid.unwrap_or(1),
                },
                Transport::Sas => CommandPath::Scsi,
                Transport::Sata | Transport::Usb => CommandPath::Ata,
                Transport::Other => CommandPath::None,
            };
            match probe(io.as_ref(), first, hints) {
                Ok(p) => Some(p),
                Err(e) if first == CommandPath::Ata => {
                    ctx.note(format!("ATA pass-through probe failed ({e}); trying SCSI"));
                    match probe(io.as_ref(), CommandPath::Scsi, hints) {
                        Ok(p) => Some(p),
                        Err(e) => none(format!("SCSI probe failed: {e}")),
                    }
                }
                Err(e) => none(format!("probe failed: {e}")),
            }
        }
    };
    profile.unwrap_or(DriveProfile {
        path: CommandPath::None,
        model: String::new(),
        serial: String::new(),
        firmware: String::new(),
        capacity_bytes: size,
        caps: policy::Capabilities {
            transport: hints.transport,
            rotational: hints.rotational,
            removable_flash: hints.removable_flash,
            ata: None,
            nvme: None,
            scsi: None,
        },
        ata: None,
        nvme_ctrl: None,
        nvme_ns: None,
        hidden: None,
    })
}

/// The concrete method of a `--method` family on this drive, best first.
fn resolve(family: MethodFamily, p: &DriveProfile) -> Option<Method> {
    let c = policy::select_method(&p.caps, PolicyLevel::Purge);
    std::iter::once(c.method)
        .chain(c.fallbacks.iter().map(|(m, _)| *m))
        .find(|m| {
            matches!(
                (family, m),
                (
                    MethodFamily::AtaSecureErase,
                    Method::AtaSecurityErase { .. }
                ) | (MethodFamily::AtaSanitize, Method::AtaSanitize(_))
                    | (MethodFamily::NvmeFormat, Method::NvmeFormat(_))
                    | (MethodFamily::NvmeSanitize, Method::NvmeSanitize(_))
                    | (MethodFamily::ScsiSanitize, Method::ScsiSanitize(_))
            )
        })
}

fn refused(device: &str, why: Refusal) -> Report {
    Report::refused(None, JobKind::Wipe, Some(device.to_string()), why)
}

/// Run a purge job on an opened, confirmed target.
pub(crate) fn run(
    ctx: &Ctx<'_>,
    req: &WipeRequest,
    target: &dyn Target,
    spec: WipeSpec,
    reservation: Reservation,
    opening: &wipe::Opening,
) -> Report {
    let device = spec.device.path.clone();
    let hints = hints(target);
    let pt = target.pass_through();
    let profile = probe_drive(&pt, hints, spec.device.size_bytes, ctx);
    let level = match req.level {
        WipeLevel::Clear => PolicyLevel::Clear,
        WipeLevel::Purge => PolicyLevel::Purge,
    };
    let method = match req.method {
        MethodFamily::Auto => None,
        MethodFamily::Overwrite => Some(Method::Overwrite),
        fam => match resolve(fam, &profile) {
            Some(m) => Some(m),
            None => {
                return refused(
                    &device,
                    Refusal::Method(format!(
                        "--method {fam:?} is not supported by this drive ({:?} path; {}); nothing was written",
                        profile.path,
                        policy::select_method(&profile.caps, PolicyLevel::Purge)
                            .reasons
                            .join("; ")
                    )),
                )
            }
        },
    };
    if let Some(m) = method {
        if let Err(why) = policy::check_method(&profile.caps, level, m) {
            return refused(
                &device,
                Refusal::Method(format!("{why}; nothing was written")),
            );
        }
    }
    let preview = policy::select_method(&profile.caps, level);
    if method.is_none()
        && preview.method == Method::Destroy
        && (hints.removable_flash || !req.purge.allow_fallback)
    {
        return refused(
            &device,
            Refusal::Method(format!(
                "{level:?} cannot be reached on this device: destroy it. {} (Run with --level clear \
                 for a verified overwrite, which is Clear only.) Nothing was written",
                preview.reasons.join("; ")
            )),
        );
    }
    let secrets = state::random::<32>().and_then(|pw| {
        let seed = match req.purge.seed {
            Some(s) => s,
            None => u64::from_le_bytes(state::random::<8>()?),
        };
        Ok((pw, seed))
    });
    let (pw, seed) = match secrets {
        Ok(x) => x,
        Err(e) => return refused(&device, Refusal::Invalid(e)),
    };
    let password = match Password::new(&pw) {
        Ok(p) => p,
        Err(e) => {
            return refused(
                &device,
                Refusal::Invalid(format!("temporary ATA password: {e}")),
            )
        }
    };
    let preq = PurgeRequest {
        level,
        method,
        remove_hpa: req.purge.remove_hpa,
        allow_fallback: req.purge.allow_fallback,
        unfreeze_wait_ms: u64::try_from(req.purge.unfreeze_wait.as_millis()).unwrap_or(u64::MAX),
        poll_ms: 1000,
        samples: req.purge.canaries,
        seed,
        password,
        nvme_namespaces: pt.nvme_namespaces.clone(),
    };
    let mut spec = spec;
    spec.purge = Some(PurgeContext {
        requested: level,
        report: None,
        probed_hidden: profile.hidden,
    });
    let key = match StreamKey::generate() {
        Ok(k) => k,
        Err(e) => return refused(&device, Refusal::Invalid(e.to_string())),
    };
    if ctx.cancelled() {
        return refused(&device, Refusal::Cancelled);
    }
    let log = match JobLog::create(ctx, JobKind::Wipe, &device, &spec, key.0.to_vec()) {
        Ok(l) => l,
        Err(why) => return refused(&device, why),
    };
    let _ = log.event(
        "started",
        &format!("{level:?} requested on {}", spec.device.label()),
    );
    opening.record(&log);
    let _ = log.event(
        "probed",
        &format!(
            "{:?}: model {:?} serial {:?} firmware {:?}, {} bytes",
            profile.path, profile.model, profile.serial, profile.firmware, profile.capacity_bytes
        ),
    );
    if let Some(bay) = req.bay {
        ctx.led(bay, LedPattern::Busy);
    }
    ctx.before_write();
    let last_pct = Cell::new(-1i64);
    let events = |e: &PurgeEvent| {
        let step = match e {
            PurgeEvent::Chosen(c) => PurgeStep::Chosen {
                method: technique(c.method),
                category: Level::from(c.category),
                reasons: c.reasons.clone(),
            },
            PurgeEvent::Attention(s) => {
                if let Some(bay) = req.bay {
                    ctx.led(bay, LedPattern::Attention);
                }
                ctx.emit(Event::Attention { message: s.clone() });
                return;
            }
            PurgeEvent::Command(s) => PurgeStep::Command { command: s.clone() },
            PurgeEvent::Waiting(s) => PurgeStep::Waiting { message: s.clone() },
            PurgeEvent::Progress(p) => {
                let pct = p.map_or(-1, |f| (f * 100.0) as i64);
                if pct == last_pct.get() {
                    return;
                }
                last_pct.set(pct);
                PurgeStep::Progress { fraction: *p }
            }
        };
        ctx.emit(Event::Purge(step));
    };
    let io: &dyn DriveIo = match &pt.io {
        Ok(io) => io.as_ref(),
        Err(_) => &NoPassthrough,
    };
    let rep = run_purge(
        io,
        target.device(),
        pt.clock.as_ref(),
        hints,
        profile,
        &preq,
        &events,
    );
    let rep = match rep {
        Ok(r) => r,
        Err(e) => {
            // The runner's errors come before anything is written.
            let _ = log.event("refused", &e.to_string());
            let _ = log.finish(
                JobStatus::Fail,
                &serde_json::json!({"result": "refused", "error": e.to_string()}),
                None,
            );
            let mut r = refused(
                &device,
                Refusal::Method(format!("{e}; nothing was written")),
            );
            r.job = Some(ctx.id.to_string());
            return r;
        }
    };
    for a in &rep.attempts {
        let _ = log.event("drive_command", &format!("{}: {:?}", a.method, a.result));
    }
    if rep.outcome == lethe_purge::Outcome::Overwrite {
        let _ = log.event(
            "fallback",
            &format!(
                "no drive-native command reached {:?}: verified overwrite (Clear)",
                rep.requested
            ),
        );
        if let Some(p) = spec.purge.as_mut() {
            p.requested = rep.requested;
            p.report = Some(rep);
        }
        if let Ok(v) = serde_json::to_value(&spec) {
            let _ = log.store.set_spec(ctx.id, &v, &ctx.now());
        }
        return wipe::overwrite(
            ctx,
            &log,
            target,
            &spec,
            Run {
                key,
                start: Checkpoint::START,
                prior: RangeSet::new(),
                checkpoint_interval: req.checkpoint_interval,
                bay: req.bay,
            },
            reservation,
        );
    }
    finish_native(ctx, &log, &spec, &rep, reservation)
}

fn finish_native(
    ctx: &Ctx<'_>,
    log: &JobLog<'_>,
    spec: &WipeSpec,
    rep: &lethe_purge::PurgeReport,
    mut reservation: Reservation,
) -> Report {
    use lethe_purge::Outcome as P;
    let (outcome, status, kind, detail) = match &rep.outcome {
        P::Verified => (
            if rep.requested == rep.category {
                Outcome::Passed
            } else {
                Outcome::PassedAtLowerLevel {
                    requested: rep.requested.into(),
                    reached: rep.category.into(),
                }
            },
            JobStatus::Pass,
            "completed",
            format!(
                "{} reported completion ({}); read-back: {}",
                technique(rep.method),
                rep.completion.as_deref().unwrap_or(""),
                rep.read_back
                    .as_ref()
                    .map(|r| r.summary())
                    .unwrap_or_default()
            ),
        ),
        P::Failed(why) => (Outcome::Failed, JobStatus::Fail, "failed", why.clone()),
        P::Destroy | P::Overwrite => (
            Outcome::Failed,
            JobStatus::Fail,
            "failed",
            "Purge is not reachable on this device by any drive command: destroy it".into(),
        ),
    };
    let _ = log.event(kind, &detail);
    let mut report = Report::new(Some(ctx.id.to_string()), JobKind::Wipe, outcome);
    report.device = Some(spec.device.path.clone());
    report.method = Some(technique(rep.method));
    report.category = Some(rep.category.into());
    report.requested = (rep.requested != rep.category).then(|| rep.requested.into());
    report.bytes_verified = rep
        .read_back
        .as_ref()
        .map_or(0, |b| b.samples as u64 * b.unit_bytes);
    if status == JobStatus::Fail {
        report.problems.push(detail);
    }
    let issued = log
        .record()
        .map_err(|e| e.to_string())
        .and_then(|(job, events)| {
            record::issue(
                ctx,
                &mut reservation,
                ctx.id,
                Common {
                    id: ctx.id,
                    started_at: &job.created_at,
                    device: &spec.device,
                    parties: &spec.parties,
                    tool_version: &spec.tool_version,
                    events: &events,
                    health: spec.health.as_ref(),
                },
                Work::DriveCommand { report: rep },
            )
        });
    match issued {
        Ok(i) => {
            report.document = Some(i.clone());
            let _ = log.finish(status, &wipe::result_json(&report), Some(&i.json));
        }
        Err(e) => {
            // A drive-native command cannot be re-run to get its document:
            // the job ends with what happened and says the document is missing.
            // Without its certificate it is not certified: a failure.
            let msg = format!("document not issued: {e}");
            let _ = log.event("error", &msg);
            report.problems.push(msg);
            report.outcome = Outcome::Failed;
            let _ = log.finish(JobStatus::Fail, &wipe::result_json(&report), None);
        }
    }
    report
}
