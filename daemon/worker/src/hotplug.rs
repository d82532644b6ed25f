//! Hot-plug and the bay thread.
//!
//! A watcher thread turns the kernel's uevents (`lethe-linux`'s `Watcher`,
//! netlink, with or without udev) into arrivals and removals. One bay
//! thread handles them in order, with everything that changes a bay: job
//! ends from the observer and the operator's `start_bay` and `resume`
//! requests. For an arrival it gathers what bay rules match on (udev links,
//! transport, a loop device's backing file), finds the bay (`bay_for`, pure),
//! has the job library assess the drive (the same assessment a job makes:
//! protected drives are refused here and never offered), looks up the
//! drive's past jobs by identity, and carries out what [`BayBook`] decides.
//!
//! [`BayBook`]: crate::bays::BayBook

use crate::bays::{Action, Arrival, PastJob};
use crate::daemon::Daemon;
use crate::WorkerError;
use lethe_config::{Bay, DeviceFacts, Level, Method, Policy, Site};
use lethe_core::inventory::Drive;
use lethe_jobs::{
    Confirmation, DeviceIdentity, JobRequest, MethodFamily, Origin, OriginSource, Outcome, Parties,
    ResumeRequest, WipeLevel, WipeRequest,
};
use lethe_linux::discovery::uevent::{DriveEvent, Watcher};
use lethe_wire::{Caller, DriveView, ErrorCode, JobState, Via, WireError};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// What the bay thread handles, in order.
pub enum BayMsg {
    /// A drive appeared (`startup`: present when the daemon started).
    Arrived { drive: Box<Drive>, startup: bool },
    /// A drive went away.
    Removed { name: String },
    /// A job ended.
    Finished {
        job: String,
        outcome: Outcome,
        problems: Vec<String>,
    },
    /// An operator starts the drive waiting in an `ask` bay.
    StartBay {
        bay: String,
        answer: String,
        /// Who asked (the bay is filled in here).
        origin: Origin,
        reply: oneshot::Sender<Result<String, WireError>>,
    },
    /// An operator resumes an interrupted or stopped job.
    Resume {
        job: String,
        /// Who asked.
        origin: Origin,
        reply: oneshot::Sender<Result<String, WireError>>,
    },
    /// Liveness: answered at once (the watchdog's probe).
    Ping { reply: oneshot::Sender<()> },
    /// The daemon stops.
    Stop,
}

/// Start the watcher and the bay thread; the bay thread's handle.
pub fn start(
    d: Arc<Daemon>,
    rx: Receiver<BayMsg>,
) -> Result<std::thread::JoinHandle<()>, WorkerError> {
    let (watcher, present) =
        Watcher::start().map_err(|e| WorkerError::setup("watching for drives", e))?;
    for drive in present {
        let _ = d.bay_tx.send(BayMsg::Arrived {
            drive: Box::new(drive),
            startup: true,
        });
    }
    let wd = Arc::clone(&d);
    std::thread::Builder::new()
        .name("lethe-hotplug".into())
        .spawn(move || watch(wd, watcher))
        .map_err(|e| WorkerError::setup("the hot-plug thread", e))?;
    std::thread::Builder::new()
        .name("lethe-bays".into())
        .spawn(move || bay_loop(d, rx))
        .map_err(|e| WorkerError::setup("the bay thread", e))
}

fn watch(d: Arc<Daemon>, mut w: Watcher) {
    while !d.stopping() {
        match w.next(Duration::from_millis(500)) {
            Ok(Some(DriveEvent::Added(drive))) => {
                tracing::info!("drive added: {} ({})", drive.path, drive.transport);
                let _ = d.bay_tx.send(BayMsg::Arrived {
                    drive,
                    startup: false,
                });
            }
            Ok(Some(DriveEvent::Removed { name, path, .. })) => {
                tracing::info!("drive removed: {path}");
                let _ = d.bay_tx.send(BayMsg::Removed { name });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!("hot-plug watcher: {e}");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn bay_loop(d: Arc<Daemon>, rx: Receiver<BayMsg>) {
    loop {
        let msg = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) if !d.stopping() => continue,
            Err(_) => return,
        };
        match msg {
            BayMsg::Stop => return,
            BayMsg::Ping { reply } => {
                let _ = reply.send(());
            }
            BayMsg::Arrived { drive, startup } => arrived(&d, &drive, startup),
            BayMsg::Removed { name } => {
                let actions = Daemon::lock(&d.book).removed(&name);
                act(&d, actions);
            }
            BayMsg::Finished {
                job,
                outcome,
                problems,
            } => {
                let actions = Daemon::lock(&d.book).job_finished(&job, &outcome, &problems);
                act(&d, actions);
            }
            BayMsg::StartBay {
                bay,
                answer,
                origin,
                reply,
            } => {
                let _ = reply.send(start_bay(&d, &bay, &answer, origin));
            }
            BayMsg::Resume { job, origin, reply } => {
                let _ = reply.send(resume(&d, &job, origin));
            }
        }
    }
}

/// The facts a bay rule matches on.
pub fn facts(drive: &Drive) -> DeviceFacts {
    let (links, backing) = lethe_linux::discovery::match_facts(&drive.name);
    DeviceFacts {
        links,
        transport: drive.transport,
        loop_backing_file: backing,
    }
}

fn view(drive: &Drive) -> DriveView {
    DriveView {
        path: drive.path.clone(),
        transport: drive.transport.to_string(),
        model: drive.model.clone(),
        serial: drive.serial.clone(),
        size_bytes: drive.size_bytes,
    }
}

/// The drive's past wipe jobs (same identity), newest first.
fn past_jobs(d: &Daemon, id: &DeviceIdentity) -> Vec<PastJob> {
    match lethe_jobs::history::wipe_jobs(&d.state, d.clock.as_ref()) {
        Ok(list) => list
            .into_iter()
            .filter(|j| id.mismatch(&j.device).is_none())
            .map(|j| PastJob {
                id: j.record.id.clone(),
                state: crate::handler::job_state(j.record.status),
            })
            .collect(),
        Err(e) => {
            tracing::error!("reading the job history: {e}");
            Vec::new()
        }
    }
}

fn arrived(d: &Arc<Daemon>, drive: &Drive, startup: bool) {
    let f = facts(drive);
    let Some(bay) = lethe_config::bay_for(&d.cfg.bays, &f) else {
        tracing::debug!("{} is in no bay", drive.path);
        return;
    };
    let i = d
        .cfg
        .bays
        .iter()
        .position(|b| std::ptr::eq(b, bay))
        .unwrap_or(0);
    let assessed = d.jobs.inspect(Path::new(&drive.path));
    if let Err(why) = &assessed {
        // Never offered: say so in the audit log, as a refused job would.
        tracing::warn!("bay {}: {} not offered: {why}", bay.name, drive.path);
        d.audit.device_refused(
            &Origin::daemon(Some(bay.name.as_str().to_string())),
            &drive.path,
            why,
        );
    }
    let past = match &assessed {
        Ok(id) => past_jobs(d, id),
        Err(_) => Vec::new(),
    };
    let a = Arrival {
        name: drive.name.clone(),
        view: view(drive),
        assessed: assessed.map_err(|e| e.to_string()),
    };
    let actions = Daemon::lock(&d.book).arrived(i, a, &past, startup);
    act(d, actions);
}

fn act(d: &Arc<Daemon>, actions: Vec<Action>) {
    for a in actions {
        match a {
            Action::Led { led, pattern } => {
                if let Some(p) = &d.panel {
                    if let Err(e) = p.set_led(led, pattern) {
                        tracing::warn!("LED {led}: {e}");
                    }
                }
            }
            Action::Start { name } => {
                let slot = Daemon::lock(&d.book).slot(&name).cloned();
                if let Some(s) = slot {
                    let bay = &d.cfg.bays[s.bay];
                    let req = wipe_request(
                        &d.cfg.site,
                        bay,
                        &s.view.path,
                        Confirmation::Waived {
                            by: format!("the auto policy of bay {} (lethe.toml)", bay.name),
                        },
                        None,
                    );
                    let h = d.jobs.submit_as(
                        JobRequest::Wipe(req),
                        Origin::daemon(Some(bay.name.as_str().to_string())),
                    );
                    tracing::info!(
                        "bay {}: job {} started on {}",
                        bay.name,
                        h.id(),
                        s.view.path
                    );
                    Daemon::lock(&d.book).job_submitted(&name, h.id());
                }
            }
            Action::Resume { name, job } => {
                let slot = Daemon::lock(&d.book).slot(&name).cloned();
                if let Some(s) = slot {
                    let bay = &d.cfg.bays[s.bay];
                    let h = d.jobs.submit_as(
                        JobRequest::Resume(ResumeRequest {
                            job: job.clone(),
                            device: Some(PathBuf::from(&s.view.path)),
                            confirmation: Confirmation::Waived {
                                by: format!(
                                    "the auto policy of bay {}: the same drive is back",
                                    bay.name
                                ),
                            },
                            bay: bay.led,
                            checkpoint_interval: Duration::from_secs(5),
                        }),
                        Origin::daemon(Some(bay.name.as_str().to_string())),
                    );
                    tracing::info!("bay {}: job {job} resumed on {}", bay.name, s.view.path);
                    Daemon::lock(&d.book).job_submitted(&name, h.id());
                }
            }
            Action::Refused { .. } => {}
        }
    }
}

/// The wipe a bay runs on `path`.
pub fn wipe_request(
    site: &Site,
    bay: &Bay,
    path: &str,
    confirmation: Confirmation,
    operator: Option<&str>,
) -> WipeRequest {
    let w = &bay.wipe;
    // The configuration refuses an `auto` bay without an operator of record
    // unless the site waived it; the source says which one this is.
    let (id, name, source) = match (&w.operator, operator) {
        (Some(o), _) => (
            o.id.clone(),
            o.name.clone().unwrap_or_else(|| o.id.clone()),
            format!("the operator of bay {} (lethe.toml)", bay.name),
        ),
        (None, Some(u)) => (
            u.to_string(),
            u.to_string(),
            "the user who started the bay".to_string(),
        ),
        (None, None) => (
            "lethe:daemon".into(),
            "lethe serve".into(),
            "none: [site] require_operator = false (lethe.toml)".to_string(),
        ),
    };
    let parties = Parties {
        operator_id: id,
        operator_name: name,
        operator_source: Some(source),
        location: site.location.clone(),
        media_source: site.media_source.clone(),
        customer: None,
        asset_tag: None,
        destination: w.destination.map(|d| match d {
            lethe_config::Destination::Reuse => lethe_jobs::Destination::Reuse,
            lethe_config::Destination::ReturnToLessor => lethe_jobs::Destination::ReturnToLessor,
            lethe_config::Destination::Destroy => lethe_jobs::Destination::Destroy,
        }),
    };
    let mut r = WipeRequest::clear(path, confirmation, parties);
    r.level = match w.level {
        Level::Clear => WipeLevel::Clear,
        Level::Purge => WipeLevel::Purge,
    };
    r.method = match w.method {
        Method::Auto => MethodFamily::Auto,
        Method::Overwrite => MethodFamily::Overwrite,
        Method::AtaSecureErase => MethodFamily::AtaSecureErase,
        Method::AtaSanitize => MethodFamily::AtaSanitize,
        Method::NvmeFormat => MethodFamily::NvmeFormat,
        Method::NvmeSanitize => MethodFamily::NvmeSanitize,
        Method::ScsiSanitize => MethodFamily::ScsiSanitize,
    };
    r.overwrite.pattern = w.pattern;
    r.overwrite.passes = w.passes;
    r.overwrite.verify = w.verify;
    r.bay = bay.led;
    r
}

/// The origin of an operator's request.
pub fn origin_of(caller: &Caller, bay: Option<&str>) -> Origin {
    Origin {
        source: match caller.via {
            Via::Cli => OriginSource::Cli,
            Via::Api => OriginSource::Api,
            Via::Console => OriginSource::Console,
        },
        user: caller
            .uid
            .map_or_else(|| "lethe:front".to_string(), |u| format!("uid:{u}")),
        bay: bay.map(str::to_string),
        authorization: Vec::new(),
    }
}

fn start_bay(d: &Daemon, bay: &str, answer: &str, origin: Origin) -> Result<String, WireError> {
    let slot = Daemon::lock(&d.book).waiting_for(bay, answer)?.clone();
    let identity = slot
        .identity
        .clone()
        .ok_or_else(|| WireError::new(ErrorCode::Internal, "a waiting drive without identity"))?;
    let b = &d.cfg.bays[slot.bay];
    let origin = origin.in_bay(bay);
    let req = wipe_request(
        &d.cfg.site,
        b,
        &slot.view.path,
        Confirmation::typed(identity, answer),
        Some(&origin.user),
    );
    let h = d.jobs.submit_as(JobRequest::Wipe(req), origin);
    tracing::info!("bay {bay}: job {} started by an operator", h.id());
    Daemon::lock(&d.book).job_submitted(&slot.name, h.id());
    Ok(h.id().to_string())
}

fn resume(d: &Daemon, job: &str, origin: Origin) -> Result<String, WireError> {
    let list = lethe_jobs::history::wipe_jobs(&d.state, d.clock.as_ref())
        .map_err(|e| WireError::new(ErrorCode::Unavailable, e.to_string()))?;
    let j = list.iter().find(|j| j.record.id == job).ok_or_else(|| {
        WireError::new(ErrorCode::NotFound, format!("there is no wipe job {job}"))
    })?;
    let state = crate::handler::job_state(j.record.status);
    if !matches!(state, JobState::Interrupted | JobState::Incomplete) {
        return Err(WireError::new(
            ErrorCode::Conflict,
            format!("job {job} cannot be resumed: it is {state:?}"),
        ));
    }
    // The drive, if it sits in a bay: resume there (its LED follows).
    let slot = {
        let book = Daemon::lock(&d.book);
        let found = book
            .views()
            .into_iter()
            .filter_map(|v| v.drive.map(|dv| dv.path))
            .filter_map(|p| {
                let name = p.rsplit('/').next().unwrap_or(&p).to_string();
                book.slot(&name).cloned()
            })
            .find(|s| {
                s.identity
                    .as_ref()
                    .is_some_and(|i| i.mismatch(&j.device).is_none())
            });
        found
    };
    let origin = match slot.as_ref() {
        Some(s) => origin.in_bay(d.cfg.bays[s.bay].name.as_str()),
        None => origin,
    };
    let h = d.jobs.submit_as(
        JobRequest::Resume(ResumeRequest {
            job: job.to_string(),
            device: slot.as_ref().map(|s| PathBuf::from(&s.view.path)),
            confirmation: Confirmation::Waived {
                by: format!(
                    "resume requested by {} through {:?}",
                    origin.user, origin.source
                ),
            },
            bay: slot.as_ref().and_then(|s| d.cfg.bays[s.bay].led),
            checkpoint_interval: Duration::from_secs(5),
        }),
        origin,
    );
    if let Some(s) = &slot {
        Daemon::lock(&d.book).job_submitted(&s.name, h.id());
    }
    Ok(h.id().to_string())
}

/// Whether a bay's policy is `auto`.
pub fn is_auto(bay: &Bay) -> bool {
    bay.policy == Policy::Auto
}
