//! Identity over the worker socket: the credential a request carries, and
//! the views of users, sessions, tokens, certificates, audit entries and
//! break-glass requests the HTTPS API shows.
//!
//! The front forwards what the client sent (a session cookie, an API token,
//! the body of a login); the worker, which owns the identity store, decides.
//! Secrets a person must see once (a new session's cookie value, a one-time
//! password, recovery codes, a new token's secret, the TLS key the front
//! terminates with) travel as [`Secret`], whose `Debug` is redacted so they
//! never reach a log line.

use serde::{Deserialize, Serialize};

/// A string that must not be logged. Serialized as the plain string.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The value, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// What proves who sent an API request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Credential {
    /// The value of the `__Host-lethe_session` cookie.
    Session {
        /// The cookie's value.
        token: Secret,
    },
    /// An API token (`Authorization: Bearer …`).
    Token {
        /// The whole presented token.
        secret: Secret,
    },
}

/// A role, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    /// Reads certificates, reports, the audit log, backup history.
    Auditor,
    /// Runs wipes, purges, degauss cycles, backups, drills.
    Operator,
    /// Users, configuration, keys, restores onto devices.
    Admin,
}

/// The logged-in session (`GET /api/v1/session`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SessionView {
    /// The session's public id (never its secret).
    pub id: String,
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub user: String,
    /// The user's role.
    pub role: RoleName,
    /// Privileges in effect now (role, plus an active break-glass elevation).
    pub privileges: Vec<String>,
    /// Logged off at this time at the latest.
    pub expires_at: String,
    /// Logged off after this many seconds without a user action.
    pub idle_timeout_secs: u64,
    /// Until when destructive actions are allowed without a new
    /// re-authentication, if a recent one exists.
    pub reauth_until: Option<String>,
    /// Set while an approved break-glass elevation is active: until when.
    pub elevated_until: Option<String>,
    /// Only a password change is allowed until it is done.
    pub must_change_password: bool,
    /// After a login with a recovery code: how many are left.
    pub recovery_codes_left: Option<u32>,
}

/// A user, as an admin sees them (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserView {
    /// Stable id.
    pub id: String,
    /// Login name.
    pub name: String,
    /// Role.
    pub role: RoleName,
    /// Holds the `emergency` grant (may ask for break-glass access).
    pub emergency: bool,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// When the user was created.
    pub created_at: String,
    /// Soft-locked after failed logins until this time.
    pub locked_until: Option<String>,
    /// Must change the password at the next login.
    pub must_change_password: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// Live sessions.
    pub sessions: u32,
}

/// What a new user, a second-factor reset or a console recovery hands back,
/// shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    /// The user.
    pub user: UserView,
    /// The `otpauth://totp/…` URI for an authenticator app.
    pub otpauth_uri: Secret,
    /// The same as an SVG QR code.
    pub qr_svg: Secret,
    /// The same for a terminal (Unicode half blocks).
    pub qr_terminal: Secret,
    /// Set when the user got a one-time password (changed at first login).
    pub one_time_password: Option<Secret>,
    /// Ten one-time recovery codes.
    pub recovery_codes: Vec<Secret>,
}

/// A change to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case", deny_unknown_fields)]
pub enum UserChange {
    /// Cannot log in; sessions end.
    Disable {},
    /// Can log in again.
    Enable {},
    /// A new role; sessions end.
    SetRole {
        /// The role.
        role: RoleName,
    },
    /// Give or take the `emergency` grant.
    SetEmergency {
        /// Granted or not.
        granted: bool,
    },
    /// A new TOTP secret and recovery codes (answered with an [`Enrolment`]).
    ResetSecondFactor {},
    /// A one-time password (answered with an [`Enrolment`] without a new
    /// second factor: its URI and codes are empty).
    ResetPassword {},
    /// Lift a soft lock.
    Unlock {},
    /// Remove the user (never the last enabled admin).
    Remove {},
}

/// One API token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenView {
    /// Public id.
    pub id: String,
    /// The owner's name.
    pub owner: String,
    /// A label chosen by the owner.
    pub label: String,
    /// The role the token acts with (at most its owner's).
    pub role: RoleName,
    /// Created.
    pub created_at: String,
    /// Expires.
    pub expires_at: String,
    /// Last used, if ever.
    pub last_used_at: Option<String>,
    /// Revoked.
    pub revoked: bool,
}

/// Search for certificates (`GET /api/v1/certificates`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CertQuery {
    /// Drive serial number (substring, case-insensitive).
    pub serial: Option<String>,
    /// Asset tag (substring, case-insensitive).
    pub asset_tag: Option<String>,
    /// Customer (substring, case-insensitive).
    pub customer: Option<String>,
    /// Issued at or after (RFC 3339 date or time).
    pub from: Option<String>,
    /// Issued before (RFC 3339 date or time).
    pub to: Option<String>,
    /// At most this many (capped at 1000; default 100).
    pub limit: Option<u32>,
}

/// One certificate or report, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CertView {
    /// Certificate id.
    pub id: String,
    /// Issued.
    pub issued_at: String,
    /// `pass`, `clear_only`, `fail`, …; none when the file does not verify.
    pub result: Option<String>,
    /// Drive model.
    pub model: String,
    /// Drive serial.
    pub serial: String,
    /// Asset tag, if recorded.
    pub asset_tag: Option<String>,
    /// Customer, if recorded.
    pub customer: Option<String>,
    /// Signer's key id.
    pub key_id: String,
    /// Why the file does not verify, if it does not.
    pub problem: Option<String>,
}

/// The format of a certificate download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertFormat {
    /// The signed JSON document.
    Json,
    /// The PDF rendering.
    Pdf,
}

/// One audit-log entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditView {
    /// Position in the log (0-based).
    pub seq: u64,
    /// When.
    pub at: String,
    /// Who (a user id, `root`, `lethe:daemon`…).
    pub actor: String,
    /// Through what (`cli`, `api`, `console`, `daemon`).
    pub source: String,
    /// What (`job.started`, `session.login`…).
    pub action: String,
    /// `success`, `failure`, `denied`.
    pub outcome: String,
    /// The record it concerns (`job`, `user`…) and its id.
    pub entity: String,
    /// The record's id.
    pub record_id: String,
    /// Details (no secrets, no patient data).
    pub detail: serde_json::Value,
}

/// The audit log's verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditVerifyView {
    /// Entries checked.
    pub entries: u64,
    /// The Merkle root over them (hex).
    pub root: String,
    /// True when the chain, the tree and every checkpoint agree.
    pub ok: bool,
    /// What is wrong, when something is.
    pub problem: Option<String>,
}

/// A key, by id and fingerprint (never its material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyView {
    /// `appliance_signing`, `tls`…
    pub purpose: String,
    /// Its id or fingerprint.
    pub id: String,
    /// The public half (PEM or hex), if it has one.
    pub public: Option<String>,
}

/// A break-glass request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BreakGlassView {
    /// Its id.
    pub id: String,
    /// Who asked.
    pub requester: String,
    /// Why (as typed by the requester).
    pub reason: String,
    /// `pending`, `granted`, `denied`, `cancelled`, `ended`, `reviewed`.
    pub state: String,
    /// Asked at.
    pub requested_at: String,
    /// Granted without an answer at this time.
    pub auto_grant_at: String,
    /// Access ends (when granted).
    pub until: Option<String>,
}

/// What the front needs to terminate TLS: the certificate chain and its key
/// (PEM). Only the front's own account is answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsMaterial {
    /// PEM certificate chain.
    pub cert_pem: String,
    /// PEM private key.
    pub key_pem: Secret,
    /// SHA-256 of the leaf certificate (DER), hex with colons.
    pub fingerprint: String,
    /// Self-signed by the appliance on first start.
    pub self_signed: bool,
}
