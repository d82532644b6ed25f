//! The privileged worker of `lethe serve`.
//!
//! It owns what must not leave root: the devices, the job library and its
//! store, the appliance key, the backup passphrases, the alert channels'
//! secrets, the front-panel controller and the audit-log writer. It starts
//! the unprivileged front (and restarts it when it dies) and answers it
//! only over the worker socket's closed request set (`lethe-wire`).
//!
//! - [`bays`]: pure bay logic (policies, auto-resume, pulled drives);
//! - [`daemon`]: start-up, the shared state and shutdown;
//! - [`hotplug`]: the uevent watcher feeding the bay thread, which
//!   assesses each drive, finds its bay and carries out the bay's actions;
//! - [`observer`]: what the worker learns from every job (progress, ends,
//!   backup steps) and the alerts it raises;
//! - [`socket`]: the worker socket and the root-only admin socket, with
//!   peer-credential checks; [`handler`]: what each request does;
//! - [`front`]: running the front as its own user, restarting it;
//! - [`backups`]: the backup schedule, maximum-age alerts;
//! - [`push`]: pushing audit checkpoints off the box;
//! - [`notify`]: systemd readiness, status and watchdog.
//!
//! Processes, sockets and data flow: `docs/ARCHITECTURE.md`; for
//! administrators: `docs/operations.md`.

pub mod api;
pub mod backups;
pub mod bays;
pub mod daemon;
pub mod front;
pub mod handler;
pub mod hotplug;
pub mod identity;
pub mod notify;
pub mod observer;
pub mod push;
pub mod snapshot;
pub mod socket;
pub mod tls;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub use daemon::run;

/// What `lethe serve` is started with.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// The state directory (job store, keys, certificates, audit log).
    pub state_dir: PathBuf,
    /// Where the sockets go.
    pub runtime_dir: PathBuf,
    /// The system user the front runs as.
    pub front_user: String,
    /// The program and arguments that start the front (run as
    /// `front_user`, with a clean environment).
    pub front_command: Vec<OsString>,
    /// How often the backup schedule is looked at.
    pub schedule_tick: Duration,
}

/// Why the worker did not start, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The configuration file is unusable (line-precise diagnostics).
    #[error(transparent)]
    Config(#[from] lethe_config::ConfigError),
    /// The front's user does not exist.
    #[error("the front's user {0:?} does not exist: create it (hw-tests/setup.sh does: useradd --system lethe) or pass --front-user")]
    NoFrontUser(String),
    /// The appliance key could not be loaded or created.
    #[error("the appliance key: {0}")]
    Key(#[from] lethe_cert::CertError),
    /// The audit log cannot be written; the daemon does not run unaudited.
    #[error("the audit log: {0}")]
    Audit(String),
    /// The job library could not be opened.
    #[error("the job library: {0}")]
    Jobs(#[from] lethe_jobs::runner::OpenError),
    /// Something else at start-up.
    #[error("{what}: {why}")]
    Setup {
        /// What was being set up.
        what: String,
        /// Why it failed.
        why: String,
    },
}

impl WorkerError {
    pub(crate) fn setup(what: impl Into<String>, why: impl ToString) -> Self {
        WorkerError::Setup {
            what: what.into(),
            why: why.to_string(),
        }
    }
}
