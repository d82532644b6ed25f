//! The messages: what the front may ask the worker, what the worker
//! answers, and the admin socket's own smaller set.
//!
//! Every message is a JSON object whose `type` names it; every enum is
//! closed and every struct refuses unknown fields, so a message this build
//! does not know is a decode error, never a silently ignored request.
//! Strings a peer sends are bounded ([`ToWorker::check`]) before the worker
//! looks at them.

use crate::views::{HealthView, JobView, MetricsView, StatusView};
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. A connection starts with the
/// client's `hello`; a worker that does not speak that version answers
/// `incompatible` with the versions it does, and closes.
pub const VERSION: u32 = 1;

/// Longest job id, bay name or confirmation answer accepted.
pub const MAX_NAME: usize = 128;

/// A message from the front to the worker (`worker.sock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToWorker {
    /// First message of a connection.
    Hello {
        /// [`VERSION`] of the client.
        version: u32,
    },
    /// A request; the reply carries the same `id`.
    Request {
        /// Chosen by the client, echoed in the reply.
        id: u64,
        /// Who asked, as the front saw them.
        caller: Caller,
        /// What is asked.
        request: Request,
    },
}

/// Who made a request, as the front established it. In this version that
/// is the Unix account at the other end of the front's local API socket
/// (from `SO_PEERCRED`); sessions of the HTTPS API come with users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// Which interface the request came through.
    pub via: Via,
    /// The local account's uid, when the request came over a Unix socket.
    pub uid: Option<u32>,
}

/// The interface a request came through (recorded in the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The `lethe` command line, over the front's local API socket.
    Cli,
    /// The HTTPS JSON API.
    Api,
    /// The web console.
    Console,
}

/// Everything the front may ask. Nothing here carries a key, a path to
/// open or a command to run: the worker decides what each request does.
/// (Requests without arguments are written `Status {}` so that serde
/// refuses unknown fields on them too.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Is the worker up (for `GET /healthz`)?
    Health {},
    /// Bays, running and interrupted jobs, the next backups.
    Status {},
    /// The newest jobs from the job history.
    Jobs {
        /// At most this many (the worker caps it at 1000).
        limit: u32,
    },
    /// Counters and gauges for `GET /metrics`.
    Metrics {},
    /// Start the job of an `ask` bay on the drive waiting in it. `answer`
    /// is what the operator typed: the drive's serial number or its exact
    /// size in bytes, checked by the job library against the device it
    /// opens.
    StartBay {
        /// The bay's name.
        bay: String,
        /// The operator's confirmation.
        answer: String,
    },
    /// Resume an interrupted or stopped wipe on the same drive.
    Resume {
        /// The job id.
        job: String,
    },
    /// Ask a running job to stop at its next safe point.
    Cancel {
        /// The job id.
        job: String,
    },
}

/// A message from the worker to the front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FromWorker {
    /// The answer to `hello` in a version both speak.
    Welcome {
        /// The version the connection uses.
        version: u32,
        /// The worker's Lethe version.
        worker: String,
    },
    /// The answer to `hello` in a version the worker does not speak; the
    /// worker closes the connection after it.
    Incompatible {
        /// Versions the worker speaks.
        supported: Vec<u32>,
    },
    /// The reply to request `id`.
    Reply {
        /// The request's id.
        id: u64,
        /// The answer.
        reply: Reply,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// To [`Request::Health`].
    Health {
        /// The worker's health.
        health: HealthView,
    },
    /// To [`Request::Status`].
    Status {
        /// The appliance's state.
        status: StatusView,
    },
    /// To [`Request::Jobs`].
    Jobs {
        /// Newest first.
        jobs: Vec<JobView>,
    },
    /// To [`Request::Metrics`].
    Metrics {
        /// The numbers.
        metrics: MetricsView,
    },
    /// A job was submitted ([`Request::StartBay`], [`Request::Resume`]).
    Started {
        /// Its id.
        job: String,
    },
    /// The job was asked to stop ([`Request::Cancel`]).
    Cancelling {
        /// Its id.
        job: String,
    },
    /// The request was not carried out.
    Error {
        /// Why.
        error: WireError,
    },
}

/// Why a request was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(deny_unknown_fields)]
#[error("{code:?}: {message}")]
pub struct WireError {
    /// The class (the front maps it to an HTTP status).
    pub code: ErrorCode,
    /// For the operator: what was not done and why.
    pub message: String,
}

impl WireError {
    /// An error of class `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Classes of [`WireError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or names nothing valid.
    BadRequest,
    /// The bay or job does not exist.
    NotFound,
    /// The request does not fit the current state (no drive waiting, the
    /// job is not running...).
    Conflict,
    /// Refused by policy or protection; nothing was done.
    Refused,
    /// The worker cannot do it now (shutting down, store unavailable).
    Unavailable,
    /// A bug; see the worker's log.
    Internal,
}

/// A message to the worker's admin socket (`admin.sock`, root only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToAdmin {
    /// First message of a connection.
    Hello {
        /// [`VERSION`] of the client.
        version: u32,
    },
    /// A request; the reply carries the same `id`.
    Request {
        /// Chosen by the client.
        id: u64,
        /// What is asked.
        request: AdminRequest,
    },
}

/// What root may ask on the admin socket. Account recovery (`lethe user
/// recover`) joins this set with users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// Is the worker alive; which process is it?
    Ping {},
    /// The audit log's latest signed checkpoint, to keep off the box.
    Checkpoint {},
}

/// A message from the admin socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FromAdmin {
    /// As [`FromWorker::Welcome`].
    Welcome {
        /// The version the connection uses.
        version: u32,
        /// The worker's Lethe version.
        worker: String,
    },
    /// As [`FromWorker::Incompatible`].
    Incompatible {
        /// Versions the worker speaks.
        supported: Vec<u32>,
    },
    /// The reply to request `id`.
    Reply {
        /// The request's id.
        id: u64,
        /// The answer.
        reply: AdminReply,
    },
}

/// The answer to an [`AdminRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminReply {
    /// To [`AdminRequest::Ping`].
    Pong {
        /// The worker's process id.
        pid: u32,
        /// The worker's Lethe version.
        version: String,
    },
    /// To [`AdminRequest::Checkpoint`].
    Checkpoint {
        /// Entries the checkpoint covers.
        size: u64,
        /// The signed note, exactly as `lethe audit checkpoint` prints it.
        note: String,
    },
    /// The request was not carried out.
    Error {
        /// Why.
        error: WireError,
    },
}

/// Why a frame body is not a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON, not a known message, or an unknown field.
    #[error("not a message of protocol version {VERSION}: {0}")]
    Json(#[from] serde_json::Error),
    /// A string longer than [`MAX_NAME`].
    #[error("{field} is {len} bytes; the limit is {MAX_NAME}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
}

/// The JSON body of a message (frame it with [`crate::frame::frame`]).
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Every message type here is plain data: serializing cannot fail.
    serde_json::to_vec(msg).expect("wire messages always serialize")
}

/// Decode a frame body as `T`.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    Ok(serde_json::from_slice(body)?)
}

impl ToWorker {
    /// Decode a frame body and bound its strings.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let m: ToWorker = decode(body)?;
        m.check()?;
        Ok(m)
    }

    /// Bound every string a request carries.
    pub fn check(&self) -> Result<(), DecodeError> {
        let bound = |field: &'static str, s: &str| {
            if s.len() > MAX_NAME {
                Err(DecodeError::TooLong {
                    field,
                    len: s.len(),
                })
            } else {
                Ok(())
            }
        };
        match self {
            ToWorker::Request { request, .. } => match request {
                Request::StartBay { bay, answer } => {
                    bound("bay", bay)?;
                    bound("answer", answer)
                }
                Request::Resume { job } | Request::Cancel { job } => bound("job", job),
                Request::Health {}
                | Request::Status {}
                | Request::Jobs { .. }
                | Request::Metrics {} => Ok(()),
            },
            ToWorker::Hello { .. } => Ok(()),
        }
    }
}
