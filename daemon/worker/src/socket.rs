//! The worker socket (`worker.sock`, `0660 root:lethe`) and the root-only
//! admin socket (`admin.sock`, `0600`), in the runtime directory
//! (`0750 root:lethe`, with `front/` owned by the front's user).
//!
//! Every connection's peer credentials are checked before its first byte
//! is read: the worker socket serves root and the front's uid, the admin
//! socket root only. A connection then starts with `hello` (the version),
//! and each request gets one reply. A frame that is not a known message of
//! this version ends the connection (`docs/worker-socket.md`).

use crate::daemon::Daemon;
use crate::WorkerError;
use lethe_wire::paths::{ADMIN_SOCKET, FRONT_DIR, WORKER_SOCKET};
use lethe_wire::{
    decode, encode, read_frame, write_frame, AdminReply, AdminRequest, ErrorCode, FromAdmin,
    FromWorker, ToAdmin, ToWorker, WireError, VERSION,
};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};

/// The two listening sockets.
pub struct Sockets {
    pub worker: UnixListener,
    pub admin: UnixListener,
}

fn setup(what: &str, path: &Path, e: impl ToString) -> WorkerError {
    WorkerError::setup(format!("{what} {}", path.display()), e)
}

fn dir(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<(), WorkerError> {
    std::fs::create_dir_all(path).map_err(|e| setup("creating", path, e))?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|e| setup("chown", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| setup("chmod", path, e))
}

fn listen(path: &Path, mode: u32, gid: u32) -> Result<UnixListener, WorkerError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| setup("removing the old socket", path, e))?
        }
        Ok(_) => {
            return Err(setup(
                "refusing to replace a non-socket at",
                path,
                "it exists",
            ))
        }
        Err(_) => {}
    }
    let l = UnixListener::bind(path).map_err(|e| setup("binding", path, e))?;
    std::os::unix::fs::chown(path, Some(0), Some(gid)).map_err(|e| setup("chown", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| setup("chmod", path, e))?;
    Ok(l)
}

/// Make the runtime directory and bind both sockets.
pub async fn bind(d: &Daemon) -> Result<Sockets, WorkerError> {
    let run = &d.opts.runtime_dir;
    let f = d.front_user;
    dir(run, 0o750, 0, f.gid)?;
    dir(&run.join(FRONT_DIR), 0o750, f.uid, f.gid)?;
    Ok(Sockets {
        worker: listen(&run.join(WORKER_SOCKET), 0o660, f.gid)?,
        admin: listen(&run.join(ADMIN_SOCKET), 0o600, 0)?,
    })
}

/// Remove the sockets (at shutdown).
pub fn remove(run: &Path) {
    for s in [WORKER_SOCKET, ADMIN_SOCKET] {
        let _ = std::fs::remove_file(run.join(s));
    }
}

/// The first frame must arrive soon: a peer that connects and says nothing
/// does not hold a task forever.
const HELLO_WITHIN: Duration = Duration::from_secs(10);

async fn hello(s: &mut UnixStream) -> Option<u32> {
    let body = tokio::time::timeout(HELLO_WITHIN, read_frame(s))
        .await
        .ok()?
        .ok()??;
    match ToWorker::decode(&body) {
        Ok(ToWorker::Hello { version }) => Some(version),
        _ => match decode::<ToAdmin>(&body) {
            Ok(ToAdmin::Hello { version }) => Some(version),
            _ => None,
        },
    }
}

/// Serve the worker socket until shutdown.
pub async fn serve_worker(d: Arc<Daemon>, l: UnixListener) {
    loop {
        let (stream, _) = tokio::select! {
            r = l.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!("worker socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = d.shutdown.notified() => return,
        };
        let uid = stream.peer_cred().map(|c| c.uid()).ok();
        if !matches!(uid, Some(u) if u == 0 || u == d.front_user.uid) {
            tracing::warn!("worker socket: refused a connection from uid {uid:?}");
            continue;
        }
        tokio::spawn(worker_conn(Arc::clone(&d), stream, uid.unwrap_or(u32::MAX)));
    }
}

async fn worker_conn(d: Arc<Daemon>, mut s: UnixStream, peer_uid: u32) {
    match hello(&mut s).await {
        Some(VERSION) => {
            let w = FromWorker::Welcome {
                version: VERSION,
                worker: env!("CARGO_PKG_VERSION").into(),
            };
            if write_frame(&mut s, &encode(&w)).await.is_err() {
                return;
            }
        }
        Some(v) => {
            tracing::warn!("worker socket: a client of protocol version {v}");
            let _ = write_frame(
                &mut s,
                &encode(&FromWorker::Incompatible {
                    supported: vec![VERSION],
                }),
            )
            .await;
            return;
        }
        None => {
            tracing::warn!("worker socket: the first frame was not a hello; closed");
            return;
        }
    }
    loop {
        let body = match read_frame(&mut s).await {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("worker socket: {e}; closed");
                return;
            }
        };
        let (id, caller, request) = match ToWorker::decode(&body) {
            Ok(ToWorker::Request {
                id,
                caller,
                request,
            }) => (id, caller, request),
            Ok(ToWorker::Hello { .. }) => {
                tracing::warn!("worker socket: a second hello; closed");
                return;
            }
            Err(e) => {
                tracing::warn!("worker socket: {e}; closed");
                return;
            }
        };
        let reply = if matches!(request, lethe_wire::Request::Tls {}) {
            // The TLS key goes to the front's own account only (and root).
            crate::api::tls_for(&d, peer_uid)
        } else {
            crate::handler::handle(&d, caller, request).await
        };
        let out = encode(&FromWorker::Reply { id, reply });
        if write_frame(&mut s, &out).await.is_err() {
            return;
        }
    }
}

/// Serve the admin socket (root only) until shutdown.
pub async fn serve_admin(d: Arc<Daemon>, l: UnixListener) {
    loop {
        let (stream, _) = tokio::select! {
            r = l.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!("admin socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = d.shutdown.notified() => return,
        };
        let uid = stream.peer_cred().map(|c| c.uid()).ok();
        if uid != Some(0) {
            tracing::warn!("admin socket: refused a connection from uid {uid:?}");
            continue;
        }
        tokio::spawn(admin_conn(Arc::clone(&d), stream));
    }
}

async fn admin_conn(d: Arc<Daemon>, mut s: UnixStream) {
    match hello(&mut s).await {
        Some(VERSION) => {
            let w = FromAdmin::Welcome {
                version: VERSION,
                worker: env!("CARGO_PKG_VERSION").into(),
            };
            if write_frame(&mut s, &encode(&w)).await.is_err() {
                return;
            }
        }
        Some(_) => {
            let _ = write_frame(
                &mut s,
                &encode(&FromAdmin::Incompatible {
                    supported: vec![VERSION],
                }),
            )
            .await;
            return;
        }
        None => return,
    }
    while let Ok(Some(body)) = read_frame(&mut s).await {
        let Ok(ToAdmin::Request { id, request }) = decode::<ToAdmin>(&body) else {
            tracing::warn!("admin socket: not a request of this version; closed");
            return;
        };
        if let Err(e) = request.check() {
            tracing::warn!("admin socket: {e}; closed");
            return;
        }
        let reply = match request {
            AdminRequest::UserAdd { .. }
            | AdminRequest::Users {}
            | AdminRequest::UserChange { .. }
            | AdminRequest::UserPassword { .. }
            | AdminRequest::UserRecover { .. } => crate::api::admin(&d, request).await,
            AdminRequest::Ping {} => AdminReply::Pong {
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            AdminRequest::Checkpoint {} => {
                let d = Arc::clone(&d);
                tokio::task::spawn_blocking(move || {
                    d.audit.log().with(|l| match l.reload() {
                        Ok(()) => AdminReply::Checkpoint {
                            size: l.size(),
                            note: l.latest_checkpoint().note.clone(),
                        },
                        Err(e) => AdminReply::Error {
                            error: WireError::new(ErrorCode::Internal, e.to_string()),
                        },
                    })
                })
                .await
                .unwrap_or_else(|e| AdminReply::Error {
                    error: WireError::new(ErrorCode::Internal, e.to_string()),
                })
            }
        };
        if write_frame(&mut s, &encode(&FromAdmin::Reply { id, reply }))
            .await
            .is_err()
        {
            return;
        }
    }
}
