//! `lethe-auth`: the identity core of the appliance (issue 12), a pure library
//! with no HTTP. Time and randomness are passed in; persistence sits behind
//! one narrow trait with an embedded SQLite implementation. The HTTPS front
//! end asks; the privileged worker, which owns this crate's state, decides.
//!
//! Modules:
//! - [`privilege`]: the `Privilege` enum (one per kind of API action) and the
//!   auditor / operator / admin roles as fixed privilege sets.
//! - [`authz`]: the pure decision `(principal, privilege, now) → Allow | Deny(reason)`
//!   and the `Authorization` an audit entry carries (re-auth signature, break-glass tag).
//! - [`password`]: Argon2id PHC hashes, calibration, rehash policy; the quality
//!   policy (length, user-name variants, breached list, zxcvbn).
//! - [`totp`]: RFC 6238 codes, ±1 step, replay refusal, `otpauth://` URI and QR codes.
//! - [`recovery`]: ten one-time recovery codes stored as keyed hashes.
//! - [`lockout`]: the progressive per-account soft lock; [`ratelimit`]: the
//!   per-source token bucket.
//! - [`session`]: session records, idle / absolute / re-auth clocks, the cookie token.
//! - [`token`]: API tokens scoped to at most the owner's role.
//! - [`breakglass`]: the remote emergency-access state machine.
//! - [`events`]: typed events for the audit log and alerts.
//! - [`store`] and [`sqlite`]: the persistence seam and its SQLite implementation.
//! - [`authenticator`]: the stateful façade the worker calls.
//!
//! Secrets (password hashes, TOTP secrets, recovery keys, session and token
//! secrets) are wrapped in types whose `Debug` is redacted and that are not
//! `Serialize`; they leave the crate only where a person must see them once
//! (enrolment URI, recovery codes, one-time passwords, new token secrets).
//!
//! Model, defaults and the HIPAA §164.312 mapping: `docs/auth.md`.

pub mod authenticator;
pub mod authz;
pub mod breakglass;
pub mod entropy;
pub mod events;
pub mod ids;
pub mod lockout;
pub mod password;
pub mod privilege;
pub mod ratelimit;
pub mod recovery;
pub mod secret;
pub mod session;
pub mod sqlite;
pub mod store;
pub mod time;
pub mod token;
pub mod totp;

pub use authenticator::{
    AuthConfig, AuthError, Authenticator, LoginRequest, LoginSuccess, NewUser, RecoveryKit,
    UserSummary,
};
pub use authz::{check, Authorization, Decision, DenyReason, Principal, Refusal};
pub use entropy::{Entropy, OsEntropy};
pub use events::{AuthEvent, EventKind, Severity};
pub use ids::{BreakGlassId, ReauthId, SessionId, TokenId, UserId, UserName};
pub use privilege::{Privilege, PrivilegeSet, Role};
pub use secret::SecretString;
pub use session::{Activity, ReauthRecord, SessionToken};
pub use sqlite::SqliteStore;
pub use store::AuthStore;
pub use time::Timestamp;
