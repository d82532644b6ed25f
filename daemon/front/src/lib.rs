//! The front of `lethe serve`: the unprivileged process that serves the
//! APIs and talks to the privileged worker only through the worker socket
//! (`lethe-wire`).
//!
//! It runs as the system user `lethe` (started by the worker, restarted by
//! it when it dies), with no capabilities and `no_new_privs`, and refuses to
//! run as root. It links neither the job library nor the key code nor any
//! store: no secret can be in its memory but the TLS key it serves with
//! (which the worker hands it), and it cannot open the state directory
//! (`keys/` is root-only).
//!
//! - [`client`]: the worker socket client ([`SocketWorker`]) behind the
//!   [`Worker`] trait;
//! - [`app`]: the local API's router on the Unix socket (`GET /healthz`,
//!   `GET /metrics`, `/v0/...`), for the `lethe` command line;
//! - [`api`]: the HTTPS JSON API (`/api/v1/...`, `/healthz`), its route
//!   table, errors, security headers and OpenAPI document;
//! - [`console`]: the web console (server-rendered pages on the same
//!   listener, `docs/console.md`);
//! - [`https`]: the TLS listener and its connection limits;
//! - [`tls`]: the certificate from the worker, reloaded without a restart;
//! - [`metrics`]: the Prometheus/OpenMetrics text;
//! - [`local`]: the command line's client of the local API (`lethe status`);
//! - [`confine`]: the process's own checks and limits.
//!
//! The local socket: `docs/worker-socket.md`; the HTTPS API: `docs/api.md`.

pub mod api;
pub mod app;
pub mod client;
pub mod confine;
pub mod console;
pub mod https;
pub mod local;
pub mod metrics;
pub mod tls;

pub use app::{app, Peer};
pub use client::{ClientError, SocketWorker, Worker};

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    /// Where the HTTPS API listens (none: the local API only).
    pub https_listen: Option<SocketAddr>,
}

/// How often the TLS certificate is asked for again (besides SIGHUP).
pub const TLS_RELOAD_EVERY: Duration = Duration::from_secs(60);

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

/// Resolves on SIGTERM (never, if the handler cannot be set).
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

async fn serve(opts: FrontOptions) -> Result<(), FrontError> {
    let worker = Arc::new(SocketWorker::new(opts.runtime_dir.join(WORKER_SOCKET)));
    let api = opts.runtime_dir.join(API_SOCKET);
    let listener = bind_api(&api)?;
    tracing::info!("front serving the local API on {}", api.display());
    let shutdown = tokio::sync::watch::channel(false);
    let mut https_task = None;
    if let Some(addr) = opts.https_listen {
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| FrontError::Io {
                what: "binding the HTTPS listener on",
                path: PathBuf::from(addr.to_string()),
                source,
            })?;
        // SIGHUP reloads the certificate; set before anything can send it.
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(
            |source| FrontError::Io {
                what: "setting the SIGHUP handler for",
                path: PathBuf::from(addr.to_string()),
                source,
            },
        )?;
        let mut stop = shutdown.1.clone();
        let w: Arc<dyn Worker> = Arc::clone(&worker) as Arc<dyn Worker>;
        https_task = Some(tokio::spawn(async move {
            tokio::select! {
                _ = serve_https(w, tcp, addr, hup) => {}
                _ = stop.changed() => {}
            }
        }));
    }
    let result = axum::serve(
        listener,
        app(worker).into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(terminated())
    .await
    .map_err(|source| FrontError::Io {
        what: "serving",
        path: api,
        source,
    });
    let _ = shutdown.0.send(true);
    if let Some(t) = https_task {
        let _ = t.await;
    }
    result
}

/// Everything the HTTPS listener serves: the JSON API and the web console
/// (each with its own headers and error pages).
pub fn https_router(worker: Arc<dyn Worker>) -> axum::Router {
    api::router(Arc::clone(&worker), api::ApiOptions::default()).merge(console::router(worker))
}

/// The HTTPS side: the first certificate (waiting for the worker as long
/// as it takes), then the listener, and the certificate asked for again on
/// SIGHUP and every [`TLS_RELOAD_EVERY`].
async fn serve_https(
    worker: Arc<dyn Worker>,
    tcp: tokio::net::TcpListener,
    addr: SocketAddr,
    mut hup: tokio::signal::unix::Signal,
) {
    let reloader = Arc::new(tls::TlsReloader::new(Arc::clone(&worker)));
    reloader.first(Duration::from_secs(30)).await;
    let config = match tls::server_config(reloader.resolver()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("HTTPS not served: {e}");
            return;
        }
    };
    let (now, rx) = tokio::sync::mpsc::channel(1);
    let forward = async move {
        while hup.recv().await.is_some() {
            // A reload already pending covers this signal too.
            let _ = now.try_send(());
        }
    };
    let watch = reloader.watch(TLS_RELOAD_EVERY, rx);
    tracing::info!("front serving the HTTPS API on {addr}");
    let router = https_router(worker);
    tokio::select! {
        _ = https::serve(tcp, config, router, https::HttpsLimits::default(), std::future::pending()) => {}
        _ = watch => {}
        _ = forward => {}
    }
}
