//! The messages: what the front may ask the worker, what the worker
//! answers, and the admin socket's own smaller set.
//!
//! Every message is a JSON object whose `type` names it; every enum is
//! closed and every struct refuses unknown fields, so a message this build
//! does not know is a decode error, never a silently ignored request.
//! Strings a peer sends are bounded ([`ToWorker::check`]) before the worker
//! looks at them.

use crate::auth::{
    AuditVerifyView, AuditView, BreakGlassView, CertFormat, CertQuery, CertView, Credential,
    Enrolment, KeyView, RoleName, Secret, SessionView, TlsMaterial, TokenView, UserChange,
    UserView,
};
use crate::views::{
    BackupRunView, ControllerView, HealthView, JobView, MetricsView, SnapshotsView, StatusView,
};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The protocol version this build speaks. A connection starts with the
/// client's `hello`; a worker that does not speak that version answers
/// `incompatible` with the versions it does, and closes.
pub const VERSION: u32 = 1;

/// Longest job id, bay name or confirmation answer accepted, in
/// characters (as the HTTPS API's OpenAPI `maxLength` counts them).
pub const MAX_NAME: usize = 128;

/// Longest password, code, token or credential accepted, in characters.
pub const MAX_SECRET: usize = 1024;

/// Longest free text accepted (a break-glass reason or review), in
/// characters.
pub const MAX_TEXT: usize = 4096;

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

/// Who made a request, as the front saw it: the Unix account at the other
/// end of the front's local API socket (from `SO_PEERCRED`), or, over
/// HTTPS, the credential the client presented and its address. The worker
/// checks the credential; the front never decides who someone is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// Which interface the request came through.
    pub via: Via,
    /// The local account's uid, when the request came over a Unix socket.
    pub uid: Option<u32>,
    /// The session cookie or API token presented over HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
    /// The client's address over HTTPS (rate limits, the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// The request is automatic polling (status, progress): it does not
    /// count as a user action for the idle timeout.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub polling: bool,
}

impl Caller {
    /// A caller on the local API socket.
    pub fn local(uid: Option<u32>) -> Caller {
        Caller {
            via: Via::Cli,
            uid,
            credential: None,
            source: None,
            polling: false,
        }
    }
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
    /// The front-panel controller's status, read from it now.
    Controller {},
    /// Run a restore drill of one configured backup job now: a sample of
    /// its newest snapshot restored to scratch and compared with the hashes
    /// recorded at backup time. Answered with [`Reply::Started`].
    BackupDrill {
        /// The job's name in the configuration.
        job: String,
    },
    /// The snapshots of one configured backup job, read from its
    /// repository now (the worker holds the passphrase).
    BackupSnapshots {
        /// The job's name in the configuration.
        job: String,
    },
    /// The history of one configured backup job, newest first.
    BackupHistory {
        /// The job's name in the configuration.
        job: String,
        /// At most this many (the worker caps it at 1000).
        limit: u32,
    },
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
    /// Log in (`POST /api/v1/login`): password and second factor together.
    Login {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
        /// A TOTP code or a recovery code.
        totp: Secret,
    },
    /// End the caller's session.
    Logout {},
    /// End every session of the caller's user.
    LogoutEverywhere {},
    /// Password and second factor again, for destructive actions in the
    /// next few minutes.
    Reauth {
        /// The password.
        password: Secret,
        /// A TOTP code or a recovery code.
        totp: Secret,
    },
    /// The caller's session.
    WhoAmI {},
    /// Change one's own password.
    ChangePassword {
        /// The current password.
        current: Secret,
        /// The new one.
        new: Secret,
    },
    /// Every user (admins).
    Users {},
    /// Add a user with a one-time password (admins).
    UserAdd {
        /// Login name.
        name: String,
        /// Role.
        role: RoleName,
        /// Give the `emergency` grant.
        emergency: bool,
    },
    /// Change a user (admins).
    UserChange {
        /// Login name.
        name: String,
        /// What changes.
        change: UserChange,
    },
    /// API tokens: the caller's own, or everyone's for admins.
    Tokens {},
    /// Create an API token for oneself.
    TokenCreate {
        /// A label.
        label: String,
        /// At most the caller's role.
        role: RoleName,
        /// Lifetime in seconds (at most 90 days).
        lifetime_secs: u64,
    },
    /// Revoke an API token (one's own, or any for admins).
    TokenRevoke {
        /// Its public id.
        id: String,
    },
    /// Search certificates and reports.
    Certificates {
        /// The search.
        query: CertQuery,
    },
    /// One certificate (signed JSON or PDF).
    Certificate {
        /// Its id.
        id: String,
        /// Which rendering.
        format: CertFormat,
    },
    /// Verify one stored certificate against the appliance key.
    CertificateVerify {
        /// Its id.
        id: String,
    },
    /// The newest audit entries.
    Audit {
        /// At most this many (capped at 1000).
        limit: u32,
        /// Only entries before this position (paging back).
        before: Option<u64>,
    },
    /// Verify the whole audit log.
    AuditVerify {},
    /// Key ids and fingerprints (admins; never key material).
    Keys {},
    /// Ask for time-boxed elevated access (users with the `emergency` grant).
    BreakGlassRequest {
        /// Why, for the approvers and the review.
        reason: String,
    },
    /// Open and recent break-glass requests.
    BreakGlassList {},
    /// Approve or deny a request (configured approvers).
    BreakGlassDecide {
        /// The request.
        id: String,
        /// Approve (true) or deny.
        approve: bool,
    },
    /// Use a granted break-glass request in the caller's session: its
    /// privileges apply until it ends.
    BreakGlassEnter {
        /// The request.
        id: String,
    },
    /// The review that closes an ended episode.
    BreakGlassReview {
        /// The request.
        id: String,
        /// What was done and why it was justified.
        notes: String,
    },
    /// The TLS certificate and key the front serves with (the front's own
    /// account only).
    Tls {},
}

/// A message from the worker to the front.
// A message lives only between reading a line and writing the answer:
// its size on the stack costs nothing worth a Box in every match.
#[allow(clippy::large_enum_variant)]
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
    /// To [`Request::Controller`].
    Controller {
        /// The controller as it answered (or why it did not).
        controller: ControllerView,
    },
    /// To [`Request::BackupSnapshots`].
    BackupSnapshots {
        /// The snapshots.
        snapshots: SnapshotsView,
    },
    /// To [`Request::BackupHistory`].
    BackupHistory {
        /// Newest first.
        runs: Vec<BackupRunView>,
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
    /// Logged in: the session and the cookie value to set.
    LoggedIn {
        /// The session.
        session: SessionView,
        /// The value of the session cookie.
        cookie: Secret,
    },
    /// The caller's session (to `who_am_i` and `reauth`).
    Session {
        /// The session.
        session: SessionView,
    },
    /// Done; nothing to show.
    Done {},
    /// To [`Request::Users`].
    Users {
        /// Every user.
        users: Vec<UserView>,
    },
    /// A user was added or got new credentials: shown once.
    Enrolled {
        /// What to hand the user.
        enrolment: Enrolment,
    },
    /// To [`Request::UserChange`] without new credentials.
    User {
        /// The user as changed (none once removed).
        user: Option<UserView>,
    },
    /// To [`Request::Tokens`].
    Tokens {
        /// The tokens.
        tokens: Vec<TokenView>,
    },
    /// A new token: its secret is shown once.
    TokenCreated {
        /// The token.
        token: TokenView,
        /// The bearer secret.
        secret: Secret,
    },
    /// To [`Request::Certificates`].
    Certificates {
        /// Newest first.
        certificates: Vec<CertView>,
    },
    /// A certificate's document.
    Document {
        /// `application/json` or `application/pdf`.
        content_type: String,
        /// The bytes, base64 (standard alphabet, padded).
        base64: String,
    },
    /// To [`Request::CertificateVerify`].
    CertificateVerified {
        /// The certificate.
        certificate: CertView,
        /// Signature and every rule hold.
        ok: bool,
        /// What is wrong, when something is.
        problem: Option<String>,
    },
    /// To [`Request::Audit`].
    Audit {
        /// Newest first.
        entries: Vec<AuditView>,
    },
    /// To [`Request::AuditVerify`].
    AuditVerified {
        /// The result.
        verify: AuditVerifyView,
    },
    /// To [`Request::Keys`].
    Keys {
        /// The keys.
        keys: Vec<KeyView>,
    },
    /// To the break-glass requests.
    BreakGlass {
        /// The requests concerned.
        requests: Vec<BreakGlassView>,
    },
    /// To [`Request::Tls`].
    Tls {
        /// The certificate and key.
        tls: TlsMaterial,
    },
    /// The request was not carried out.
    Error {
        /// Why.
        error: WireError,
    },
}

/// Why a request was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[error("{code:?}: {message}")]
pub struct WireError {
    /// The class (the front maps it to an HTTP status).
    pub code: ErrorCode,
    /// For the operator: what was not done and why.
    pub message: String,
    /// For [`ErrorCode::RateLimited`]: seconds before trying again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl WireError {
    /// An error of class `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }
}

/// Classes of [`WireError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// No valid session or token (HTTP 401): log in.
    Unauthenticated,
    /// Logged in, but the role does not hold the privilege (HTTP 403).
    Forbidden,
    /// The action needs a fresh re-authentication (HTTP 403, code
    /// `reauth_required`): password and code again.
    ReauthRequired,
    /// Too many attempts (HTTP 429).
    RateLimited,
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
    /// Add a user (`lethe user add`). Without a password the user gets a
    /// one-time password.
    UserAdd {
        /// Login name.
        name: String,
        /// Role.
        role: RoleName,
        /// The password, checked against the policy.
        password: Option<Secret>,
        /// Give the `emergency` grant.
        emergency: bool,
    },
    /// Every user (`lethe user list`).
    Users {},
    /// Change a user (`lethe user disable|enable|reset-2fa|remove|…`).
    UserChange {
        /// Login name.
        name: String,
        /// What changes.
        change: UserChange,
    },
    /// Set a user's password (`lethe user passwd`).
    UserPassword {
        /// Login name.
        name: String,
        /// The new password, checked against the policy.
        password: Secret,
    },
    /// Break-glass at the console (`lethe user recover`): enable the
    /// account, lift its lock, make it an admin when no other enabled admin
    /// exists, a one-time password and a
    /// new second factor. Loudly audited and alerted.
    UserRecover {
        /// Login name.
        name: String,
    },
}

/// A message from the admin socket.
// A message lives only between reading a line and writing the answer:
// its size on the stack costs nothing worth a Box in every match.
#[allow(clippy::large_enum_variant)]
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
    /// A user was added or recovered: shown once.
    Enrolled {
        /// What to hand the user.
        enrolment: Enrolment,
    },
    /// To [`AdminRequest::Users`].
    Users {
        /// Every user.
        users: Vec<UserView>,
    },
    /// A user changed (none once removed).
    User {
        /// The user.
        user: Option<UserView>,
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
    /// A string longer than its limit ([`MAX_NAME`], [`MAX_SECRET`],
    /// [`MAX_TEXT`]).
    #[error("{field} is {len} characters; the limit is {limit}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
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
        match self {
            ToWorker::Request {
                request, caller, ..
            } => {
                if let Some(c) = &caller.credential {
                    let (Credential::Session { token: v } | Credential::Token { secret: v }) = c;
                    bound("credential", &v.0, MAX_SECRET)?;
                }
                request.check()
            }
            ToWorker::Hello { .. } => Ok(()),
        }
    }
}

/// At most `limit` characters: a string of them is at most four times as
/// many bytes, far below a frame's limit.
fn bound(field: &'static str, s: &str, limit: usize) -> Result<(), DecodeError> {
    // No string within the limit in bytes is over it in characters.
    if s.len() <= limit {
        return Ok(());
    }
    let len = s.chars().count();
    if len > limit {
        Err(DecodeError::TooLong { field, len, limit })
    } else {
        Ok(())
    }
}

impl Request {
    /// Bound every string the request carries.
    pub fn check(&self) -> Result<(), DecodeError> {
        let name = |f, s: &str| bound(f, s, MAX_NAME);
        let secret = |f, s: &Secret| bound(f, &s.0, MAX_SECRET);
        let q = |f, s: &Option<String>| s.as_deref().map_or(Ok(()), |s| name(f, s));
        match self {
            Request::StartBay { bay, answer } => {
                name("bay", bay)?;
                name("answer", answer)
            }
            Request::Resume { job } | Request::Cancel { job } => name("job", job),
            Request::Login {
                username,
                password,
                totp,
            } => {
                name("username", username)?;
                secret("password", password)?;
                secret("totp", totp)
            }
            Request::Reauth { password, totp } => {
                secret("password", password)?;
                secret("totp", totp)
            }
            Request::ChangePassword { current, new } => {
                secret("current", current)?;
                secret("new", new)
            }
            Request::UserAdd { name: n, .. } | Request::UserChange { name: n, .. } => {
                name("name", n)
            }
            Request::TokenCreate { label, .. } => name("label", label),
            Request::TokenRevoke { id }
            | Request::Certificate { id, .. }
            | Request::CertificateVerify { id }
            | Request::BreakGlassDecide { id, .. }
            | Request::BreakGlassEnter { id } => name("id", id),
            Request::Certificates { query } => {
                q("serial", &query.serial)?;
                q("asset_tag", &query.asset_tag)?;
                q("customer", &query.customer)?;
                q("from", &query.from)?;
                q("to", &query.to)
            }
            Request::BreakGlassRequest { reason } => bound("reason", reason, MAX_TEXT),
            Request::BackupHistory { job, .. }
            | Request::BackupDrill { job }
            | Request::BackupSnapshots { job } => name("job", job),
            Request::BreakGlassReview { id, notes } => {
                name("id", id)?;
                bound("notes", notes, MAX_TEXT)
            }
            Request::Health {}
            | Request::Status {}
            | Request::Jobs { .. }
            | Request::Metrics {}
            | Request::Controller {}
            | Request::Logout {}
            | Request::LogoutEverywhere {}
            | Request::WhoAmI {}
            | Request::Users {}
            | Request::Tokens {}
            | Request::Audit { .. }
            | Request::AuditVerify {}
            | Request::Keys {}
            | Request::BreakGlassList {}
            | Request::Tls {} => Ok(()),
        }
    }
}

impl AdminRequest {
    /// Bound every string the request carries.
    pub fn check(&self) -> Result<(), DecodeError> {
        match self {
            AdminRequest::UserAdd { name, password, .. } => {
                bound("name", name, MAX_NAME)?;
                password
                    .as_ref()
                    .map_or(Ok(()), |p| bound("password", &p.0, MAX_SECRET))
            }
            AdminRequest::UserChange { name, .. } | AdminRequest::UserRecover { name } => {
                bound("name", name, MAX_NAME)
            }
            AdminRequest::UserPassword { name, password } => {
                bound("name", name, MAX_NAME)?;
                bound("password", &password.0, MAX_SECRET)
            }
            AdminRequest::Ping {} | AdminRequest::Checkpoint {} | AdminRequest::Users {} => Ok(()),
        }
    }
}
