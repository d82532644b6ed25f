//! The front of `lethe serve`: the unprivileged process that serves the
//! APIs and talks to the privileged worker only through the worker socket
//! (`lethe-wire`).
//!
//! It runs as the system user `lethe` (started by the worker, restarted by
//! it when it dies), with no capabilities and `no_new_privs`, and refuses to
//! run as root. It links neither the job library nor the key code nor any
//! store: no secret can be in its memory, and it cannot open the state
//! directory (`keys/` is root-only).
//!
//! - [`client`]: the worker socket client ([`SocketWorker`]) behind the
//!   [`Worker`] trait;
//! - [`app`]: the axum router (`GET /healthz`, `GET /metrics`, the local
//!   API `/v0/...`); the next version adds HTTPS, sessions and the console
//!   to the same router;
//! - [`metrics`]: the Prometheus/OpenMetrics text;
//! - [`local`]: the command line's client of the local API (`lethe status`);
//! - [`confine`]: the process's own checks and limits.
//!
//! Routes and the socket layout: `docs/worker-socket.md`.

pub mod app;
pub mod client;
pub mod confine;
pub mod local;
pub mod metrics;

pub use app::{app, Peer};
pub use client::{ClientError, SocketWorker, Worker};

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use lethe_wire::paths::{
    ADMIN_SOCKET, API_SOCKET, DEFAULT_RUNTIME_DIR, FRONT_DIR, WORKER_SOCKET,
};

/// Why the front stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrontError {
    /// Its own confinement checks failed; it does not serve.
    #[error(transparent)]
    Confine(#[from] confine::ConfineError),
    /// A socket could not be set up.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What the front needs to know.
#[derive(Debug, Clone)]
pub struct FrontOptions {
    /// The runtime directory (sockets).
    pub runtime_dir: PathBuf,
}

/// The front process: confine, listen on the local API socket, serve until
/// SIGTERM (or until the worker, its parent, dies).
pub fn run(opts: FrontOptions) -> Result<(), FrontError> {
    confine::confine()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lethe-front")
        .enable_all()
        .build()
        .map_err(|source| FrontError::Io {
            what: "starting the runtime for",
            path: opts.runtime_dir.clone(),
            source,
        })?;
    rt.block_on(serve(opts))
}

/// Bind `path` for the local API: an old socket there (from a front that
/// died) is replaced, anything else is left alone and refused.
pub fn bind_api(path: &Path) -> Result<tokio::net::UnixListener, FrontError> {
    let io = |what, source| FrontError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| io("removing the stale socket", e))?
        }
        Ok(_) => {
            return Err(io(
                "refusing to replace a non-socket at",
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            ))
        }
        Err(_) => {}
    }
    let l = tokio::net::UnixListener::bind(path).map_err(|e| io("binding", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| io("setting the mode of", e))?;
    Ok(l)
}

async fn serve(opts: FrontOptions) -> Result<(), FrontError> {
    let worker = Arc::new(SocketWorker::new(opts.runtime_dir.join(WORKER_SOCKET)));
    let api = opts.runtime_dir.join(API_SOCKET);
    let listener = bind_api(&api)?;
    tracing::info!("front serving the local API on {}", api.display());
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        term.recv().await;
    };
    axum::serve(
        listener,
        app(worker).into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|source| FrontError::Io {
        what: "serving",
        path: api,
        source,
    })
}
