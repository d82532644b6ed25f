//! The front's client of the worker socket.
//!
//! A small pool of connections ([`MAX_CONNECTIONS`]): the worker answers
//! the requests of one connection in order, and a failed login is held
//! back for a few seconds on purpose, so one connection would make every
//! other client wait behind it. Each connection carries one request at a
//! time; an idle one is kept for the next request, a lost one is replaced,
//! and a worker that does not answer within [`TIMEOUT`] (waiting for a
//! free connection included) is reported as unavailable rather than waited
//! for. A connection whose request timed out is dropped, never reused.

use lethe_wire::{
    decode, encode, read_frame, write_frame, Caller, FromWorker, Reply, Request, ToWorker, VERSION,
};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;
use tokio::net::UnixStream;
use tokio::sync::Semaphore;

/// How long a request may take before the worker counts as unavailable.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Connections to the worker at most (and requests in flight).
pub const MAX_CONNECTIONS: usize = 16;

/// Why the worker did not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket could not be reached or failed.
    #[error("the worker is not reachable at {path}: {why}")]
    Unreachable {
        /// The worker socket.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The worker speaks other versions.
    #[error("the worker speaks protocol versions {0:?}, this front speaks {VERSION}")]
    Incompatible(Vec<u32>),
    /// The worker sent something that is not the expected answer.
    #[error("the worker's answer is not a valid reply: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("the worker did not answer within {0:?}")]
    Timeout(Duration),
}

/// A boxed future, for the object-safe [`Worker`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the HTTP layer needs from the worker: one typed call. The socket
/// client implements it; tests use a fake.
pub trait Worker: Send + Sync + 'static {
    /// Ask `request` on behalf of `caller`.
    fn call(&self, caller: Caller, request: Request) -> BoxFuture<'_, Result<Reply, ClientError>>;
}

struct Conn {
    stream: UnixStream,
    next_id: u64,
}

/// The worker socket client.
pub struct SocketWorker {
    path: PathBuf,
    idle: std::sync::Mutex<Vec<Conn>>,
    slots: Semaphore,
}

impl SocketWorker {
    /// A client of the worker at `path` (connected on first use).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            idle: std::sync::Mutex::new(Vec::new()),
            slots: Semaphore::new(MAX_CONNECTIONS),
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn put_idle(&self, conn: Conn) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }

    /// The worker socket.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn unreachable(&self, why: impl ToString) -> ClientError {
        ClientError::Unreachable {
            path: self.path.clone(),
            why: why.to_string(),
        }
    }

    async fn connect(&self) -> Result<Conn, ClientError> {
        let mut stream = UnixStream::connect(&self.path)
            .await
            .map_err(|e| self.unreachable(e))?;
        write_frame(&mut stream, &encode(&ToWorker::Hello { version: VERSION }))
            .await
            .map_err(|e| self.unreachable(e))?;
        let body = read_frame(&mut stream)
            .await
            .map_err(|e| self.unreachable(e))?
            .ok_or_else(|| self.unreachable("the worker closed the connection"))?;
        match decode::<FromWorker>(&body).map_err(|e| ClientError::Protocol(e.to_string()))? {
            FromWorker::Welcome { version, .. } if version == VERSION => {
                Ok(Conn { stream, next_id: 1 })
            }
            FromWorker::Incompatible { supported } => Err(ClientError::Incompatible(supported)),
            other => Err(ClientError::Protocol(format!(
                "expected welcome, got {other:?}"
            ))),
        }
    }

    async fn exchange(
        &self,
        conn: &mut Conn,
        caller: &Caller,
        request: &Request,
    ) -> Result<Reply, ClientError> {
        let id = conn.next_id;
        conn.next_id += 1;
        let msg = ToWorker::Request {
            id,
            caller: caller.clone(),
            request: request.clone(),
        };
        write_frame(&mut conn.stream, &encode(&msg))
            .await
            .map_err(|e| self.unreachable(e))?;
        let body = read_frame(&mut conn.stream)
            .await
            .map_err(|e| self.unreachable(e))?
            .ok_or_else(|| self.unreachable("the worker closed the connection"))?;
        match decode::<FromWorker>(&body).map_err(|e| ClientError::Protocol(e.to_string()))? {
            FromWorker::Reply { id: got, reply } if got == id => Ok(reply),
            other => Err(ClientError::Protocol(format!(
                "expected the reply to request {id}, got {other:?}"
            ))),
        }
    }

    async fn call_inner(&self, caller: Caller, request: Request) -> Result<Reply, ClientError> {
        // At most MAX_CONNECTIONS requests in flight; the semaphore is
        // never closed.
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| self.unreachable(e))?;
        // A kept connection may have been closed by a restarted worker:
        // one retry on a fresh connection. A fresh connection that fails
        // is not retried.
        let (mut conn, mut kept) = match self.take_idle() {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        loop {
            match self.exchange(&mut conn, &caller, &request).await {
                Ok(r) => {
                    self.put_idle(conn);
                    return Ok(r);
                }
                Err(e @ ClientError::Unreachable { .. }) if kept => {
                    tracing::debug!("worker connection lost ({e}); reconnecting");
                    conn = self.connect().await?;
                    kept = false;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Worker for SocketWorker {
    fn call(&self, caller: Caller, request: Request) -> BoxFuture<'_, Result<Reply, ClientError>> {
        Box::pin(async move {
            // On a timeout the connection in use is dropped with the
            // future: its state is unknown.
            tokio::time::timeout(TIMEOUT, self.call_inner(caller, request))
                .await
                .unwrap_or(Err(ClientError::Timeout(TIMEOUT)))
        })
    }
}
