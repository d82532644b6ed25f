//! [`Jobs`]: the handle an edge holds. It runs each job on its own worker
//! thread, streams the job's events to every subscriber, keeps the job's
//! lease alive while the worker lives, and lists what is running.
//!
//! Threads, not async tasks: a job spends its life in blocking device I/O
//! and ioctls. A daemon may call every method here from a tokio task; none
//! of them blocks (except [`JobHandle::wait`], which is meant for plain
//! threads) and none calls `block_on`.

use crate::clock::{Clock, SystemClock};
use crate::event::{Event, Outcome, Report};
use crate::host::{Assessed, DeviceHost, LinuxHost, Target};
use crate::identity::DeviceIdentity;
use crate::observe::{JobInfo, JobObserver, Origin};
use crate::panel::Panel;
use crate::refusal::Refusal;
use crate::request::{JobKind, JobRequest};
use crate::state::{self, StateDir};
use lethe_cert::ApplianceKey;
use lethe_controller::LedPattern;
use lethe_store::{JobStatus, JobStore, Lease};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A callback given a device path.
pub type PathHook = Arc<dyn Fn(&Path) + Send + Sync>;
/// A callback given a job id.
pub type JobHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Callbacks at fixed points of a job, for tests that must act at exactly
/// that point (swap a device while "the prompt waits", kill a worker).
#[derive(Clone, Default)]
pub struct Hooks {
    /// Between a device's assessment and its exclusive open.
    pub before_open: Option<PathHook>,
    /// After the job's record exists, before its first write (job id).
    pub before_write: Option<JobHook>,
}

/// How long a job's lease lasts, and how often its keeper renews it.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    pub ttl: Duration,
    pub renew_every: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            renew_every: Duration::from_secs(5),
        }
    }
}

/// What a job library is made of.
pub struct JobsConfig {
    pub state: StateDir,
    pub host: Arc<dyn DeviceHost>,
    /// The front-panel controller (bay LEDs, degausser), shared by all jobs.
    pub panel: Option<Arc<Panel>>,
    pub clock: Arc<dyn Clock>,
    pub lease: LeaseTiming,
    pub hooks: Hooks,
    /// Recorded on certificates.
    pub tool_version: String,
    /// Refuse a wipe or degauss whose request names no operator (the site
    /// configuration's `require_operator`, true unless set otherwise).
    pub require_operator: bool,
    /// Hear about every job (the audit log, a daemon's bays).
    pub observers: Vec<Arc<dyn JobObserver>>,
    /// Who [`Jobs::submit`] records as asking (see [`Jobs::submit_as`]).
    pub origin: Origin,
}

impl JobsConfig {
    /// Linux devices, the system clock, no controller.
    pub fn new(state: StateDir) -> Self {
        Self {
            state,
            host: Arc::new(LinuxHost),
            panel: None,
            clock: Arc::new(SystemClock),
            lease: LeaseTiming::default(),
            hooks: Hooks::default(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            require_operator: true,
            observers: Vec::new(),
            origin: Origin::this_process(),
        }
    }
}

/// Why a job library could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("loading the appliance signing key: {0}")]
    Key(#[from] lethe_cert::CertError),
    #[error(transparent)]
    Store(#[from] lethe_store::StoreError),
}

/// A job's cancel token: set it, and the job stops at its next safe point
/// (an overwrite after the chunks in flight, with a checkpoint; a purge
/// before its command is sent, never during it; a degauss before it fires).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A job running in this process.
#[derive(Debug, Clone)]
pub struct RunningJob {
    pub id: String,
    pub kind: JobKind,
    /// The device, once the job has opened it.
    pub device: Option<String>,
    pub started_at: String,
}

pub(crate) struct Running {
    info: Mutex<RunningJob>,
    /// Fixed at submission, for observers.
    id: String,
    kind: JobKind,
    origin: Origin,
    resumed: bool,
    observers: Vec<Arc<dyn JobObserver>>,
    cancel: CancelToken,
    subscribers: Mutex<Vec<Sender<Event>>>,
    finished: AtomicBool,
    /// Set once the job's row exists (from then on the lease is renewed).
    recorded: AtomicBool,
    /// A bay LED failure was reported (once is enough).
    led_warned: AtomicBool,
    /// The body ended the job's run (stopped, interrupted, finished): the
    /// keeper stops renewing, and never takes the job back. A mutex, not a
    /// flag: the keeper holds it across its check and its store update, so a
    /// release waits for a renewal in flight and no renewal follows it.
    released: Mutex<bool>,
    lease_token: String,
}

impl Running {
    pub(crate) fn job_info(&self) -> JobInfo<'_> {
        JobInfo {
            id: &self.id,
            kind: self.kind,
            origin: &self.origin,
            resumed: self.resumed,
        }
    }

    fn emit(&self, e: Event) {
        for o in &self.observers {
            o.event(&self.job_info(), &e);
        }
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.retain(|s| s.send(e.clone()).is_ok());
    }

    /// Send the report, once: nothing follows it.
    fn finish(&self, r: Report) {
        if !self.finished.swap(true, Ordering::SeqCst) {
            self.emit(Event::Finished(Box::new(r)));
            self.subscribers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }
}

pub(crate) struct Inner {
    pub(crate) cfg: JobsConfig,
    pub(crate) key: ApplianceKey,
    running: Mutex<BTreeMap<String, Arc<Running>>>,
}

/// The job library. Cheap to clone; every clone drives the same jobs.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

/// One submitted job: its id, its events, its cancel token.
pub struct JobHandle {
    id: String,
    events: Receiver<Event>,
    cancel: CancelToken,
}

impl JobHandle {
    /// The job's id (its record in the store has it once the job gets that far).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The job's events, ending with [`Event::Finished`].
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    pub fn cancel(&self) {
        self.cancel.cancel()
    }

    /// Wait for the report, dropping the other events. For plain threads.
    pub fn wait(self) -> Report {
        for e in self.events.iter() {
            if let Event::Finished(r) = e {
                return *r;
            }
        }
        // The worker vanished without a report: its keeper reports it, but a
        // closed channel without one means this process is going down.
        Report::new(
            Some(self.id),
            JobKind::Wipe,
            Outcome::Interrupted {
                reason: "the job's worker ended without a report".into(),
            },
        )
    }
}

impl Jobs {
    /// Open the library: load (or create) the signing key, open the job
    /// store (migrating it), and mark jobs whose owner is gone as interrupted.
    pub fn open(cfg: JobsConfig) -> Result<Self, OpenError> {
        let key = ApplianceKey::load_or_create(&cfg.state.keys())?;
        let store = JobStore::open(cfg.state.root())?;
        store.reap(
            cfg.clock.unix_now(),
            state::process_alive,
            &cfg.clock.rfc3339(),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                cfg,
                key,
                running: Mutex::new(BTreeMap::new()),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &JobsConfig {
        &self.inner.cfg
    }

    /// Assess `path` for a destructive job without opening it: the identity
    /// to show the operator before asking for a confirmation.
    pub fn inspect(&self, path: &Path) -> Result<DeviceIdentity, Refusal> {
        self.inner.cfg.host.assess(path).map(|a| a.identity)
    }

    /// The device a stopped job recorded, to show before resuming it.
    pub fn resumable(&self, job: &str) -> Result<DeviceIdentity, Refusal> {
        crate::wipe::load_resumable(&self.inner, job).map(|(spec, _)| spec.device)
    }

    /// Start a job on its own worker thread, asked for by the
    /// configuration's [`JobsConfig::origin`].
    pub fn submit(&self, req: JobRequest) -> JobHandle {
        self.submit_as(req, self.inner.cfg.origin.clone())
    }

    /// Start a job on its own worker thread, asked for by `origin`
    /// (recorded by observers such as the audit log).
    pub fn submit_as(&self, req: JobRequest, origin: Origin) -> JobHandle {
        let clock = &self.inner.cfg.clock;
        let resumed = matches!(req, JobRequest::Resume(_));
        let kind = req.kind();
        // The id is chosen and the job listed under one lock: two submits
        // can never run under one id.
        let mut running = self.lock();
        let id = if let JobRequest::Resume(r) = &req {
            // A resume continues the job it names, under that job's id.
            if running.contains_key(&r.job) {
                let (tx, rx) = mpsc::channel();
                let done = Event::Finished(Box::new(Report::refused(
                    Some(r.job.clone()),
                    kind,
                    None,
                    Refusal::Job(format!("job {} is already running here", r.job)),
                )));
                let info = JobInfo {
                    id: &r.job,
                    kind,
                    origin: &origin,
                    resumed,
                };
                for o in &self.inner.cfg.observers {
                    o.event(&info, &done);
                }
                let _ = tx.send(done);
                return JobHandle {
                    id: r.job.clone(),
                    events: rx,
                    cancel: CancelToken::default(),
                };
            }
            r.job.clone()
        } else {
            let store = JobStore::open(self.inner.cfg.state.root()).ok();
            loop {
                let id = state::new_job_id(kind.as_str(), clock.unix_now());
                let taken =
                    running.contains_key(&id) || store.as_ref().is_some_and(|s| s.get(&id).is_ok());
                if !taken {
                    break id;
                }
            }
        };
        let (tx, rx) = mpsc::channel();
        let token = state::random::<8>()
            .map(hex::encode)
            .unwrap_or_else(|_| format!("{}-{id}", std::process::id()));
        let run = Arc::new(Running {
            info: Mutex::new(RunningJob {
                id: id.clone(),
                kind,
                device: None,
                started_at: clock.rfc3339(),
            }),
            id: id.clone(),
            kind,
            origin,
            resumed,
            observers: self.inner.cfg.observers.clone(),
            cancel: CancelToken::default(),
            subscribers: Mutex::new(vec![tx]),
            finished: AtomicBool::new(false),
            recorded: AtomicBool::new(false),
            led_warned: AtomicBool::new(false),
            released: Mutex::new(false),
            lease_token: token,
        });
        running.insert(id.clone(), Arc::clone(&run));
        drop(running);
        let handle = JobHandle {
            id: id.clone(),
            events: rx,
            cancel: run.cancel.clone(),
        };
        let (inner, r, jobs) = (Arc::clone(&self.inner), Arc::clone(&run), self.clone());
        let job_id = id.clone();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let worker = std::thread::Builder::new()
            .name(format!("job {id}"))
            .spawn(move || {
                let _done = done_tx; // dropped when the worker ends, however it ends
                let ctx = Ctx {
                    inner: &inner,
                    id: &job_id,
                    run: &r,
                };
                let bay = req_bay(&req);
                let report = ctx.dispatch(req);
                if let Some(bay) = bay {
                    ctx.led(bay, led_for(&report.outcome));
                }
                // Not running any more once its report is out.
                jobs.lock().remove(&job_id);
                r.finish(report);
            });
        let worker = match worker {
            Ok(w) => w,
            Err(e) => {
                run.finish(Report::refused(
                    None,
                    kind,
                    None,
                    Refusal::Invalid(format!("cannot start a worker thread: {e}")),
                ));
                self.lock().remove(&id);
                return handle;
            }
        };
        let (inner, r, jobs) = (Arc::clone(&self.inner), Arc::clone(&run), self.clone());
        let keeper = std::thread::Builder::new()
            .name(format!("lease {id}"))
            .spawn(move || {
                let id = r.info().id;
                keep_lease(&inner, &r, &done_rx, worker, &|| {
                    jobs.lock().remove(&id);
                });
            });
        if let Err(e) = keeper {
            // The worker runs on; without a keeper its lease simply expires
            // and a later reap marks it interrupted unless it finished.
            run.emit(Event::Warning {
                message: format!("no lease keeper thread: {e}"),
            });
        }
        handle
    }

    /// Jobs running in this process.
    pub fn running(&self) -> Vec<RunningJob> {
        self.lock().values().map(|r| r.info()).collect()
    }

    /// Events of a running job from now on (ending with its report).
    pub fn subscribe(&self, id: &str) -> Option<Receiver<Event>> {
        let r = self.lock().get(id).cloned()?;
        let (tx, rx) = mpsc::channel();
        r.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        Some(rx)
    }

    /// Ask a running job to stop; `false` if no such job runs here.
    pub fn cancel(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(r) => {
                r.cancel.cancel();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Running>>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Running {
    fn info(&self) -> RunningJob {
        self.info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn req_bay(req: &JobRequest) -> Option<u8> {
    match req {
        JobRequest::Wipe(w) => w.bay,
        JobRequest::Resume(r) => r.bay,
        _ => None,
    }
}

fn led_for(o: &Outcome) -> LedPattern {
    match o {
        Outcome::Passed => LedPattern::Success,
        Outcome::PassedAtLowerLevel { .. }
        | Outcome::Unverified
        | Outcome::Stopped
        | Outcome::Interrupted { .. } => LedPattern::Attention,
        Outcome::Failed => LedPattern::Failure,
        Outcome::NotStarted { .. } | Outcome::Refused(_) => LedPattern::Idle,
    }
}

/// Renew the job's lease while its worker lives; when the worker died
/// without a report (a panic), mark the job interrupted and report that.
fn keep_lease(
    inner: &Inner,
    run: &Running,
    done: &Receiver<()>,
    worker: std::thread::JoinHandle<()>,
    forget: &dyn Fn(),
) {
    let cfg = &inner.cfg;
    let id = run.info().id;
    let lease = |clock: &dyn Clock| Lease {
        token: run.lease_token.clone(),
        pid: std::process::id(),
        boot_id: state::boot_id(),
        expires: clock.unix_now() + cfg.lease.ttl.as_secs() as i64,
    };
    let mut store = None;
    while let Err(RecvTimeoutError::Timeout) = done.recv_timeout(cfg.lease.renew_every) {
        if !run.recorded.load(Ordering::SeqCst) {
            continue;
        }
        let released = run.released.lock().unwrap_or_else(|p| p.into_inner());
        if *released {
            continue;
        }
        if store.is_none() {
            store = JobStore::open(cfg.state.root()).ok();
        }
        let Some(s) = &store else { continue };
        let l = lease(cfg.clock.as_ref());
        match s.renew_lease(&id, &l.token, l.expires) {
            Ok(true) => {}
            Ok(false) => {
                // Reaped while alive (the host slept past the expiry, say):
                // the device is still held exclusively here, so take it back.
                if let Ok(true) = s.retake(&id, &l, &cfg.clock.rfc3339()) {
                    let _ = s.event(
                        &id,
                        &cfg.clock.rfc3339(),
                        "lease",
                        "the lease had expired while the job was alive; taken back",
                    );
                }
            }
            Err(e) => run.emit(Event::Warning {
                message: format!("could not renew the job's lease: {e}"),
            }),
        }
    }
    if let Err(panic) = worker.join() {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        let reason = format!("the job's worker thread died: {why}");
        if run.recorded.load(Ordering::SeqCst) {
            if let Ok(s) = JobStore::open(cfg.state.root()) {
                let now = cfg.clock.rfc3339();
                if s.get(&id).is_ok_and(|j| j.status == JobStatus::Running) {
                    let _ = s.set_status(&id, JobStatus::Interrupted, &now);
                    let _ = s.event(&id, &now, "interrupted", &reason);
                }
            }
        }
        let info = run.info();
        let mut r = Report::new(
            run.recorded.load(Ordering::SeqCst).then_some(id),
            info.kind,
            Outcome::Interrupted { reason },
        );
        r.device = info.device;
        forget();
        run.finish(r);
    }
    forget();
}

/// What a job body gets: the library, its id, its event stream and token.
pub(crate) struct Ctx<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) id: &'a str,
    run: &'a Running,
}

impl Ctx<'_> {
    fn dispatch(&self, req: JobRequest) -> Report {
        match req {
            JobRequest::Wipe(r) => crate::wipe::run(self, r),
            JobRequest::Resume(r) => crate::wipe::resume(self, r),
            JobRequest::Degauss(r) => crate::degauss::run(self, r),
            JobRequest::RestoreImage(r) => crate::restore::run(self, r),
            JobRequest::Backup(r) => crate::backup::backup(self, r),
            JobRequest::RestoreTree(r) => crate::backup::restore_tree(self, r),
            JobRequest::Drill(r) => crate::backup::drill(self, r),
            JobRequest::ScheduledRun(r) => crate::backup::scheduled_run(self, r),
        }
    }

    pub(crate) fn cfg(&self) -> &JobsConfig {
        &self.inner.cfg
    }

    /// The job, as observers know it.
    pub(crate) fn job_info(&self) -> JobInfo<'_> {
        self.run.job_info()
    }

    pub(crate) fn emit(&self, e: Event) {
        self.run.emit(e)
    }

    pub(crate) fn note(&self, message: impl Into<String>) {
        self.emit(Event::Note {
            message: message.into(),
        })
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.run.cancel.is_cancelled()
    }

    pub(crate) fn now(&self) -> String {
        self.inner.cfg.clock.rfc3339()
    }

    pub(crate) fn unix_now(&self) -> i64 {
        self.inner.cfg.clock.unix_now()
    }

    /// A fresh lease for this job's record.
    pub(crate) fn lease(&self) -> Lease {
        Lease {
            token: self.run.lease_token.clone(),
            pid: std::process::id(),
            boot_id: state::boot_id(),
            expires: self.unix_now() + self.inner.cfg.lease.ttl.as_secs() as i64,
        }
    }

    /// The job's record exists: announce it, and let the keeper renew its lease.
    pub(crate) fn recorded(&self, kind: JobKind, device: &str) {
        self.run.recorded.store(true, Ordering::SeqCst);
        self.run
            .info
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .device = Some(device.to_string());
        self.emit(Event::Started {
            job: self.id.to_string(),
            kind,
            device: device.to_string(),
        });
    }

    /// A job without a record (a backup job) starts: announce it. `what`
    /// is what it works on (a repository, a target directory).
    pub(crate) fn started(&self, kind: JobKind, what: &str) {
        self.run
            .info
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .device = Some(what.to_string());
        self.emit(Event::Started {
            job: self.id.to_string(),
            kind,
            device: what.to_string(),
        });
    }

    /// The body is about to end the job's run: stop renewing its lease.
    pub(crate) fn release(&self) {
        *self.run.released.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }

    /// Assess `path`, run the test hook, open it exclusively.
    pub(crate) fn acquire(&self, path: &Path) -> Result<Box<dyn Target>, Refusal> {
        let a: Assessed = self.inner.cfg.host.assess(path)?;
        if let Some(h) = &self.inner.cfg.hooks.before_open {
            h(path);
        }
        self.inner.cfg.host.open(a)
    }

    pub(crate) fn before_write(&self) {
        if let Some(h) = &self.inner.cfg.hooks.before_write {
            h(self.id);
        }
    }

    /// Set a bay LED and report a failure as a warning (once per job).
    pub(crate) fn led(&self, bay: u8, pattern: LedPattern) {
        if let Some(p) = &self.inner.cfg.panel {
            if let Err(e) = p.set_led(bay, pattern) {
                if !self.run.led_warned.swap(true, Ordering::SeqCst) {
                    self.emit(Event::Warning {
                        message: format!("no bay {bay} LED: {e}"),
                    });
                }
            }
        }
    }
}
