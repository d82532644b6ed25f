//! Start-up, the state every part of the worker shares, and shutdown.
//!
//! Start-up order (each step fails the start with its reason):
//! 1. the state directory (made `0700`), the appliance key, the audit log
//!    (a damaged log is refused: the daemon does not run unaudited);
//! 2. jobs whose owner died are marked interrupted and audited;
//!    `daemon.started`, and `config.changed` when the file's hash differs
//!    from the last one recorded;
//! 3. alert channels (their secrets are read here, in the worker), the
//!    front-panel controller, the job library with its observers;
//! 4. the runtime directory and sockets, the front, hot-plug, the
//!    schedule, alert delivery, checkpoint pushing; then `READY=1`.
//!
//! Shutdown (SIGTERM, SIGINT): stop taking requests, ask running jobs to
//! stop at their next safe point (an overwrite keeps a checkpoint and is
//! resumable), wait for them (up to a minute), record `daemon.stopped`.

use crate::bays::BayBook;
use crate::observer::{Counters, WorkerObserver};
use crate::{ServeOptions, WorkerError};
use lethe_alert::{Alerter, Hostname, SqliteAlertStore};
use lethe_audit::{
    Action, Appender, AuditLog, AuditStore, AuditTime, Detail, Entity, Entry, EntryFilter, Outcome,
    RecordId, Source, SqliteStore, UserId,
};
use lethe_cert::ApplianceKey;
use lethe_config::Config;
use lethe_jobs::audit::AuditObserver;
use lethe_jobs::{Clock, Jobs, JobsConfig, Origin, Panel, StateDir, SystemClock};
use lethe_wire::ProgressView;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The front's system account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontUser {
    pub uid: u32,
    pub gid: u32,
}

/// Everything the worker's parts share.
pub struct Daemon {
    pub opts: ServeOptions,
    pub cfg: Config,
    pub state: StateDir,
    pub jobs: Jobs,
    pub audit: Arc<AuditObserver<SqliteStore>>,
    pub alerter: Arc<Alerter<SqliteAlertStore>>,
    /// Wakes the alert delivery task after a new alert.
    pub alert_wake: Arc<Notify>,
    pub panel: Option<Arc<Panel>>,
    pub book: Arc<Mutex<BayBook>>,
    pub progress: Arc<Mutex<HashMap<String, ProgressView>>>,
    pub counters: Arc<Counters>,
    pub front_user: FrontUser,
    pub front_restarts: AtomicU32,
    pub started: Instant,
    pub started_at: String,
    pub clock: Arc<dyn Clock>,
    /// To the bay thread.
    pub bay_tx: std::sync::mpsc::Sender<crate::hotplug::BayMsg>,
    pub shutting_down: AtomicBool,
    pub shutdown: Notify,
    /// Users, sessions and break-glass (none when its store cannot be
    /// opened: the HTTPS API then answers "unavailable", the rest runs).
    pub identity: Option<Arc<crate::identity::Identity>>,
    /// The HTTPS certificate's fingerprint, once made or loaded.
    pub tls_fingerprint: Mutex<Option<String>>,
    /// The stored half of the last status, shared by the polls.
    pub status_snapshot: crate::snapshot::StatusSnapshot,
}

impl Daemon {
    /// Lock a mutex, recovering from a panicked holder (the data is plain).
    pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append the daemon's own entry (`lethe:daemon`, source `daemon`).
    pub fn audit_daemon(
        &self,
        action: Action,
        entity: Entity,
        record: &str,
        outcome: Outcome,
        detail: Detail,
    ) {
        let e = (|| -> Result<Entry, String> {
            Ok(Entry::new(
                AuditTime::from_unix(self.clock.unix_now()).map_err(|e| e.to_string())?,
                Source::Daemon,
                UserId::daemon(),
                action,
                entity,
                RecordId::new(record).map_err(|e| e.to_string())?,
                outcome,
            )
            .with_detail(detail))
        })();
        if let Err(e) = e.and_then(|e| self.audit.log().append(&e).map_err(|e| e.to_string())) {
            tracing::error!("audit log: {e}");
        }
    }

    /// Entries in the audit log.
    /// SHA-256 fingerprint of the HTTPS certificate, once made or loaded.
    pub fn tls_fingerprint(&self) -> Option<String> {
        Self::lock(&self.tls_fingerprint).clone()
    }

    /// Append an entry for a user's action through the API (source `api`).
    pub fn audit_as(
        &self,
        user: &str,
        action: Action,
        entity: Entity,
        record: &str,
        detail: Detail,
    ) {
        let e = (|| -> Result<Entry, String> {
            Ok(Entry::new(
                AuditTime::from_unix(self.clock.unix_now()).map_err(|e| e.to_string())?,
                Source::Api,
                UserId::new(user).map_err(|e| e.to_string())?,
                action,
                entity,
                RecordId::new(record).map_err(|e| e.to_string())?,
                Outcome::Success,
            )
            .with_detail(detail))
        })();
        if let Err(e) = e.and_then(|e| self.audit.log().append(&e).map_err(|e| e.to_string())) {
            tracing::error!("audit log: {e}");
        }
    }

    pub fn audit_entries(&self) -> u64 {
        self.audit
            .log()
            .with(|l| l.store().len().unwrap_or(l.size()))
    }

    /// Ask every part to stop.
    pub fn stop(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.notify_waiters();
        let _ = self.bay_tx.send(crate::hotplug::BayMsg::Stop);
    }

    pub fn stopping(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// The appliance's name in alerts and pushed checkpoints: `[alerts] host`,
/// else the system's host name, else `lethe`.
pub fn appliance_host(cfg: &Config) -> Hostname {
    cfg.alerts
        .host
        .clone()
        .or_else(|| Hostname::new(lethe_jobs::state::hostname()).ok())
        .unwrap_or_else(|| Hostname::new("lethe").expect("a valid host name"))
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> WorkerError {
    let what = what.into();
    move |e| WorkerError::setup(what, e)
}

/// The front's account.
pub fn front_user(name: &str) -> Result<FrontUser, WorkerError> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) if !u.uid.is_root() => Ok(FrontUser {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }),
        Ok(Some(_)) => Err(WorkerError::setup(
            "the front's user",
            format!("{name} is root: the front must run unprivileged"),
        )),
        _ => Err(WorkerError::NoFrontUser(name.to_string())),
    }
}

/// The SHA-256 of the configuration file recorded by the newest
/// `config.changed` entry.
fn last_config_hash(log: &Appender<SqliteStore>) -> Option<String> {
    let filter = EntryFilter {
        actions: vec![Action::ConfigChanged.as_str().to_string()],
        ..EntryFilter::default()
    };
    let mut last = None;
    let _ = log.with(|l| {
        l.store().scan_entries(&filter, &mut |e| {
            if let Ok((_, entry)) = lethe_audit::decode_leaf(&e.leaf) {
                if let Some(h) = entry
                    .detail
                    .as_json()
                    .get("sha256")
                    .and_then(|v| v.as_str())
                {
                    last = Some(h.to_string());
                }
            }
            ControlFlow::Continue(())
        })
    });
    last
}

/// The record ids of every entry with `action`.
fn audited_records(
    log: &Appender<SqliteStore>,
    action: Action,
) -> std::collections::HashSet<String> {
    let filter = EntryFilter {
        actions: vec![action.as_str().to_string()],
        ..EntryFilter::default()
    };
    let mut ids = std::collections::HashSet::new();
    let _ = log.with(|l| {
        l.store().scan_entries(&filter, &mut |e| {
            if let Ok((_, entry)) = lethe_audit::decode_leaf(&e.leaf) {
                ids.insert(entry.record_id.as_str().to_string());
            }
            ControlFlow::Continue(())
        })
    });
    ids
}

/// Run the daemon until SIGTERM or SIGINT.
pub fn run(opts: ServeOptions) -> Result<(), WorkerError> {
    let loaded = lethe_config::load(&opts.config)?;
    for w in &loaded.warnings {
        tracing::warn!("{}: {}", opts.config.display(), w.message);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lethe-worker")
        .enable_all()
        .build()
        .map_err(io("starting the runtime"))?;
    rt.block_on(start(opts, loaded.config))
}

async fn start(opts: ServeOptions, cfg: Config) -> Result<(), WorkerError> {
    let front = front_user(&opts.front_user)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = StateDir::new(&opts.state_dir);
    std::fs::create_dir_all(state.root()).map_err(io("creating the state directory"))?;
    // The job store holds stream keys and the directory holds the signing
    // key: nobody but root reads it (the front least of all).
    std::fs::set_permissions(state.root(), std::fs::Permissions::from_mode(0o700))
        .map_err(io("securing the state directory"))?;
    let key = ApplianceKey::load_or_create(&state.keys())?;
    let store = SqliteStore::open(&state.root().join(lethe_audit::DB_FILE))
        .map_err(|e| WorkerError::Audit(e.to_string()))?;
    let log =
        Appender::new(AuditLog::open(store, key).map_err(|e| WorkerError::Audit(e.to_string()))?);
    let audit = Arc::new(AuditObserver::new(log.clone(), Arc::clone(&clock)));

    // Alert channels: their secret files are read here, in the worker.
    let channels = cfg.alerts.channels()?;
    let host = appliance_host(&cfg);
    let alert_store = SqliteAlertStore::open(&state.root().join("alerts.db"))
        .map_err(|e| WorkerError::setup("the alert store", e))?;
    let alerter = Arc::new(
        Alerter::new(alert_store, host, channels, cfg.alerts.retry)
            .map_err(|e| WorkerError::setup("the alert channels", e))?,
    );
    let alert_wake = Arc::new(Notify::new());

    let panel = cfg.controller.as_ref().map(|c| {
        let mut cc = lethe_controller::ControllerConfig::new(c.port.display().to_string());
        cc.baud = c.baud;
        Arc::new(Panel::spawn(&tokio::runtime::Handle::current(), cc))
    });
    let book = Arc::new(Mutex::new(BayBook::new(&cfg.bays)));
    let progress = Arc::new(Mutex::new(HashMap::new()));
    let counters = Arc::new(Counters::default());
    let (bay_tx, bay_rx) = std::sync::mpsc::channel();
    let observer = Arc::new(WorkerObserver {
        book: Arc::clone(&book),
        progress: Arc::clone(&progress),
        counters: Arc::clone(&counters),
        alerter: Arc::clone(&alerter),
        alert_wake: Arc::clone(&alert_wake),
        bay_tx: Mutex::new(bay_tx.clone()),
    });

    // Jobs whose owner died (a crash, a power loss, kill -9) are found
    // before the library opens, so each is audited once.
    let reaped = lethe_jobs::history::reap(&state, clock.as_ref())
        .map_err(|e| WorkerError::setup("the job store", e))?;
    let mut jcfg = JobsConfig::new(state.clone());
    jcfg.panel = panel.clone();
    jcfg.observers = vec![audit.clone(), observer];
    jcfg.origin = Origin::daemon(None);
    jcfg.require_operator = cfg.site.require_operator;
    let jobs = Jobs::open(jcfg)?;

    // Users and sessions: their store is root's, in the state directory.
    let issuer = lethe_jobs::state::hostname();
    let identity = match crate::identity::Identity::open(
        state.root(),
        crate::identity::auth_config(&cfg, &issuer),
        cfg.auth.password.deny_list.as_deref(),
    ) {
        Ok(i) => Some(Arc::new(i)),
        Err(e) => {
            tracing::error!("the identity store: {e}; the HTTPS API will answer unavailable");
            None
        }
    };
    let tls_fingerprint = match crate::tls::prepare(&cfg, &state) {
        Ok(fp) => Some(fp),
        Err(e) => {
            tracing::error!("the HTTPS certificate: {e}");
            None
        }
    };

    let d = Arc::new(Daemon {
        opts,
        cfg,
        state,
        jobs,
        audit,
        alerter,
        alert_wake,
        panel,
        book,
        progress,
        counters,
        front_user: front,
        front_restarts: AtomicU32::new(0),
        started: Instant::now(),
        started_at: clock.rfc3339(),
        clock,
        bay_tx,
        shutting_down: AtomicBool::new(false),
        shutdown: Notify::new(),
        identity,
        tls_fingerprint: Mutex::new(tls_fingerprint),
        status_snapshot: Default::default(),
    });
    let pid = format!("pid-{}", std::process::id());
    d.audit_daemon(
        Action::DaemonStarted,
        Entity::Daemon,
        &pid,
        Outcome::Success,
        Detail::new()
            .label("version", env!("CARGO_PKG_VERSION"))
            .count("bays", d.cfg.bays.len() as u64)
            .count("backup_jobs", d.cfg.backups.len() as u64),
    );
    // Every interrupted job is audited once: those reaped just now, and
    // those another reader of the job store (`lethe jobs`, say) marked
    // interrupted while the daemon was down.
    let mut interrupted = reaped;
    match lethe_jobs::history::list(&d.state, d.clock.as_ref()) {
        Ok(list) => interrupted.extend(
            list.into_iter()
                .filter(|j| j.status == lethe_store::JobStatus::Interrupted)
                .map(|j| j.id),
        ),
        Err(e) => tracing::error!("reading the job history: {e}"),
    }
    interrupted.sort();
    interrupted.dedup();
    let audited = audited_records(d.audit.log(), Action::JobInterrupted);
    for job in interrupted.iter().filter(|j| !audited.contains(*j)) {
        d.audit_daemon(
            Action::JobInterrupted,
            Entity::Job,
            job,
            Outcome::Failure,
            Detail::new().label("found", "at_daemon_start"),
        );
    }
    match std::fs::read(&d.opts.config) {
        Ok(bytes) => {
            let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
            if last_config_hash(d.audit.log()).as_deref() != Some(hash.as_str()) {
                let raw: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
                d.audit_daemon(
                    Action::ConfigChanged,
                    Entity::Config,
                    "lethe.toml",
                    Outcome::Success,
                    Detail::new().digest("sha256", &raw),
                );
            }
        }
        Err(e) => tracing::warn!("reading {} for its hash: {e}", d.opts.config.display()),
    }

    let sockets = crate::socket::bind(&d).await?;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(crate::socket::serve_worker(Arc::clone(&d), sockets.worker));
    tasks.spawn(crate::socket::serve_admin(Arc::clone(&d), sockets.admin));
    tasks.spawn(crate::front::supervise(Arc::clone(&d)));
    tasks.spawn(crate::backups::schedule(Arc::clone(&d)));
    tasks.spawn(crate::observer::deliver_alerts(Arc::clone(&d)));
    // Outside the task set: it outlives the others to push the checkpoint
    // that seals `daemon.stopped`.
    let pusher = crate::push::start(Arc::clone(&d));
    tasks.spawn(crate::notify::watchdog(Arc::clone(&d)));
    tasks.spawn(crate::api::tick(Arc::clone(&d)));
    let bay_thread = crate::hotplug::start(Arc::clone(&d), bay_rx)?;

    crate::notify::ready(&d);
    tracing::info!(
        "lethe serve: {} bay(s), {} backup job(s), state {}, sockets in {}",
        d.cfg.bays.len(),
        d.cfg.backups.len(),
        d.state.root().display(),
        d.opts.runtime_dir.display()
    );

    wait_for_signal().await;
    tracing::info!("stopping: asking running jobs to stop at their next safe point");
    crate::notify::stopping();
    d.stop();
    for j in d.jobs.running() {
        d.jobs.cancel(&j.id);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.jobs.running().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let _ = tokio::task::spawn_blocking(move || bay_thread.join()).await;
    d.audit_daemon(
        Action::DaemonStopped,
        Entity::Daemon,
        &pid,
        Outcome::Success,
        Detail::new().count("jobs_left_running", d.jobs.running().len() as u64),
    );
    if let Some(p) = pusher {
        p.finish().await;
    }
    crate::socket::remove(&d.opts.runtime_dir);
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
