//! `lethe wipe --level purge` / `--method …`: probe the drive through the
//! kernel's pass-through, let the NIST policy choose, run the drive-native
//! command (or its fallback) and certify what was proven.

use crate::cmd_wipe::{MethodArg, WipeArgs};
use anyhow::{Context, Result};
use lethe_cli::identity::DeviceIdentity;
use lethe_cli::job::{JobContext, JobReport, WipeSpec};
use lethe_cli::purge_job::{self, PurgeSetup};
use lethe_cmds::ata::Password;
use lethe_cmds::io::{DriveIo, DriveIoError, ScsiReply};
use lethe_cmds::policy::{self, Level, Method, Transport};
use lethe_core::device::BlockDevice;
use lethe_linux::passthrough::drive::LinuxDrive;
use lethe_purge::{probe, CommandPath, DriveProfile, Hints, PurgeEvent, PurgeRequest, SystemClock};
use std::cell::Cell;
use std::path::Path;

/// What the purge path decided before any job exists.
pub enum Prepared {
    /// Ready to run.
    Run(Box<PurgeSetupOwned>),
    /// Refused with an explanation; nothing was written.
    Refused(String),
}

/// A probed drive and its request, owning the pass-through handle.
pub struct PurgeSetupOwned {
    io: Box<dyn DriveIo>,
    hints: Hints,
    profile: DriveProfile,
    request: PurgeRequest,
}

/// A path with no pass-through (loop, virtio…): every command is unsupported.
struct NoPassthrough;

impl DriveIo for NoPassthrough {
    fn ata(
        &self,
        _: &lethe_cmds::ata::AtaCommand,
        _: &mut [u8],
    ) -> Result<lethe_cmds::ata::AtaRegisters, DriveIoError> {
        Err(DriveIoError::Unsupported(
            "no pass-through on this device".into(),
        ))
    }
    fn nvme_admin(
        &self,
        _: &lethe_cmds::nvme::NvmeAdminCmd,
        _: &mut [u8],
    ) -> Result<lethe_cmds::nvme::NvmeCompletion, DriveIoError> {
        Err(DriveIoError::Unsupported(
            "no pass-through on this device".into(),
        ))
    }
    fn scsi(&self, _: &lethe_cmds::scsi::ScsiCdb, _: &mut [u8]) -> Result<ScsiReply, DriveIoError> {
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

/// Open the pass-through for `path` and probe the drive.
fn open_and_probe(
    path: &Path,
    id: &DeviceIdentity,
    hints: Hints,
) -> (Box<dyn DriveIo>, DriveProfile, Vec<String>) {
    let mut notes = Vec::new();
    let dev_path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let none = |notes: &mut Vec<String>, why: String| {
        notes.push(why);
        let p = probe(&NoPassthrough, CommandPath::None, hints).ok();
        (Box::new(NoPassthrough) as Box<dyn DriveIo>, p)
    };
    let (io, profile): (Box<dyn DriveIo>, Option<DriveProfile>) = match hints.transport {
        Transport::Nvme => {
            match LinuxDrive::open_nvme(&dev_path, Path::new("/sys"), Path::new("/dev")) {
                Ok(d) => {
                    let nsid = d.nsid().unwrap_or(1);
                    let p = probe(&d, CommandPath::Nvme { nsid }, hints);
                    match p {
                        Ok(p) => (Box::new(d), Some(p)),
                        Err(e) => none(&mut notes, format!("NVMe probe failed: {e}")),
                    }
                }
                Err(e) => none(&mut notes, format!("no NVMe controller handle: {e}")),
            }
        }
        Transport::Sata | Transport::Sas | Transport::Usb => {
            match LinuxDrive::open_block(&dev_path) {
                Ok(d) => {
                    let first = if hints.transport == Transport::Sas {
                        CommandPath::Scsi
                    } else {
                        CommandPath::Ata
                    };
                    match probe(&d, first, hints) {
                        Ok(p) => (Box::new(d), Some(p)),
                        Err(e) if first == CommandPath::Ata => {
                            // USB bridges without SAT, SATA behind odd HBAs: try SCSI.
                            notes.push(format!("ATA pass-through probe failed ({e}); trying SCSI"));
                            match probe(&d, CommandPath::Scsi, hints) {
                                Ok(p) => (Box::new(d), Some(p)),
                                Err(e) => none(&mut notes, format!("SCSI probe failed: {e}")),
                            }
                        }
                        Err(e) => none(&mut notes, format!("probe failed: {e}")),
                    }
                }
                Err(e) => none(&mut notes, format!("pass-through unavailable: {e}")),
            }
        }
        Transport::Other => none(
            &mut notes,
            format!(
                "{} devices have no drive-native sanitize commands",
                id.transport
            ),
        ),
    };
    let profile = profile.unwrap_or(DriveProfile {
        path: CommandPath::None,
        model: String::new(),
        serial: String::new(),
        firmware: String::new(),
        capacity_bytes: id.size_bytes,
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
    });
    (io, profile, notes)
}

/// NVMe: every namespace of the target's subsystem and whether it is in use,
/// for the runner's scope check. `None` (then nothing that reaches other
/// namespaces is sent) when they cannot be listed.
fn nvme_scope(path: &Path, p: &DriveProfile) -> Option<Vec<lethe_purge::NamespaceInfo>> {
    if !matches!(p.path, CommandPath::Nvme { .. }) {
        return None;
    }
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = real.file_name()?.to_string_lossy().into_owned();
    match lethe_linux::passthrough::nvme_scope::subsystem_scope(Path::new("/sys"), &name) {
        Ok(list) => Some(
            list.into_iter()
                .map(|n| lethe_purge::NamespaceInfo {
                    name: n.name,
                    nsid: n.nsid,
                    protected: n.protected,
                })
                .collect(),
        ),
        Err(e) => {
            eprintln!("lethe: note: the NVMe subsystem's namespaces could not be listed ({e}): no command that erases every namespace will be sent");
            None
        }
    }
}

/// The concrete method of a `--method` family on this drive, best first.
fn resolve(family: MethodArg, p: &DriveProfile) -> Option<Method> {
    let c = policy::select_method(&p.caps, Level::Purge);
    std::iter::once(c.method)
        .chain(c.fallbacks.iter().map(|(m, _)| *m))
        .find(|m| {
            matches!(
                (family, m),
                (MethodArg::AtaSecureErase, Method::AtaSecurityErase { .. })
                    | (MethodArg::AtaSanitize, Method::AtaSanitize(_))
                    | (MethodArg::NvmeFormat, Method::NvmeFormat(_))
                    | (MethodArg::NvmeSanitize, Method::NvmeSanitize(_))
                    | (MethodArg::ScsiSanitize, Method::ScsiSanitize(_))
            )
        })
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("OS random generator: {e}"))?;
    Ok(b)
}

/// Probe, check the request against the drive, and build the runner's request.
pub fn prepare(args: &WipeArgs, path: &Path, id: &DeviceIdentity) -> Result<Prepared> {
    let transport = transport_of(&id.transport);
    let hints = Hints {
        transport,
        rotational: id.rotational,
        // Memory cards are flash; a USB device is a flash stick when it says it
        // is removable media (RMB) or solid state. Many sticks claim to be
        // rotational, so that flag alone proves nothing.
        removable_flash: id.transport == "mmc"
            || (id.transport == "usb"
                && (id.removable == Some(true) || id.rotational == Some(false))),
    };
    let (io, profile, notes) = open_and_probe(path, id, hints);
    for n in &notes {
        eprintln!("lethe: note: {n}");
    }
    let level = args.level.into();
    let method = match args.method {
        MethodArg::Auto => None,
        MethodArg::Overwrite => Some(Method::Overwrite),
        fam => match resolve(fam, &profile) {
            Some(m) => Some(m),
            None => {
                return Ok(Prepared::Refused(format!(
                    "--method {fam:?} is not supported by this drive ({:?} path; {})",
                    profile.path,
                    policy::select_method(&profile.caps, Level::Purge)
                        .reasons
                        .join("; ")
                )))
            }
        },
    };
    if let Some(m) = method {
        if let Err(why) = policy::check_method(&profile.caps, level, m) {
            return Ok(Prepared::Refused(why));
        }
    }
    let preview = policy::select_method(&profile.caps, level);
    if method.is_none()
        && preview.method == Method::Destroy
        && (hints.removable_flash || args.no_fallback)
    {
        return Ok(Prepared::Refused(format!(
            "{level:?} cannot be reached on this device: destroy it. {} (Run with --level clear for a verified overwrite, which is Clear only.)",
            preview.reasons.join("; ")
        )));
    }
    let nvme_namespaces = nvme_scope(path, &profile);
    let password = Password::new(&random::<32>()?).context("temporary ATA password")?;
    let request = PurgeRequest {
        level,
        method,
        remove_hpa: args.remove_hpa,
        allow_fallback: !args.no_fallback,
        unfreeze_wait_ms: args.unfreeze_wait * 1000,
        poll_ms: 1000,
        samples: 256,
        seed: u64::from_le_bytes(random::<8>()?),
        password,
        nvme_namespaces,
    };
    Ok(Prepared::Run(Box::new(PurgeSetupOwned {
        io,
        hints,
        profile,
        request,
    })))
}

/// Run the job, showing the runner's events on stderr (or as JSON lines).
pub fn run(
    ctx: &JobContext<'_>,
    dev: &dyn BlockDevice,
    setup: PurgeSetupOwned,
    spec: WipeSpec,
    json: bool,
    attention: &dyn Fn(),
) -> Result<JobReport> {
    let last_pct = Cell::new(-1i64);
    let show = |e: &PurgeEvent| {
        let line = match e {
            PurgeEvent::Chosen(c) => {
                serde_json::json!({"event": "chosen", "method": lethe_cli::certify::technique(c.method),
                    "category": format!("{:?}", c.category).to_lowercase(), "reasons": c.reasons})
            }
            PurgeEvent::Attention(s) => {
                attention();
                serde_json::json!({"event": "attention", "message": s})
            }
            PurgeEvent::Command(s) => serde_json::json!({"event": "command", "command": s}),
            PurgeEvent::Waiting(s) => serde_json::json!({"event": "waiting", "message": s}),
            PurgeEvent::Progress(p) => {
                let pct = p.map_or(-1, |f| (f * 100.0) as i64);
                if pct == last_pct.get() {
                    return;
                }
                last_pct.set(pct);
                serde_json::json!({"event": "progress", "fraction": p})
            }
        };
        if json {
            println!("{line}");
        } else {
            match e {
                PurgeEvent::Chosen(c) => {
                    eprintln!(
                        "lethe: method {} ({:?})",
                        lethe_cli::certify::technique(c.method),
                        c.category
                    );
                    for r in &c.reasons {
                        eprintln!("         {r}");
                    }
                }
                PurgeEvent::Attention(s) => eprintln!("lethe: ATTENTION: {s}"),
                PurgeEvent::Command(s) => eprintln!("lethe: sending {s}"),
                PurgeEvent::Waiting(s) => eprintln!("lethe: {s}"),
                PurgeEvent::Progress(Some(f)) => {
                    eprintln!("lethe: drive reports {:.0}% done", f * 100.0)
                }
                PurgeEvent::Progress(None) => {}
            }
        }
    };
    let clock = SystemClock::default();
    let s = PurgeSetup {
        io: setup.io.as_ref(),
        clock: &clock,
        hints: setup.hints,
        profile: setup.profile,
        request: setup.request,
    };
    Ok(purge_job::run(ctx, dev, s, spec, &show)?)
}
