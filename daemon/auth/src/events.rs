//! Typed events for the audit log and alerts. Nothing secret is in them: no
//! password, hash, code, token or TOTP secret, and no attempted user name for
//! unknown users (people type passwords into the name field). The daemon
//! writes each to the audit log and sends those of [`Severity::Alert`] to the
//! configured alert channels.

use crate::authz::{Actor, Refusal};
use crate::breakglass::{Approval, EndReason};
use crate::ids::{BreakGlassId, SessionId, TokenId, UserId, UserName};
use crate::privilege::{Privilege, Role};
use crate::session::{ReauthRecord, SecondFactorKind, SessionEnd};
use crate::time::Timestamp;
use crate::token::TokenRejection;
use serde::Serialize;
use std::net::IpAddr;

/// How loud an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Notice,
    Warning,
    /// Notify people now (lockouts, break-glass, console recovery).
    Alert,
}

/// Why a login or re-authentication failed (for the audit log only; the
/// client always gets the same generic answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    UnknownUser,
    BadPassword,
    BadSecondFactor,
    BadPasswordAndSecondFactor,
    ReplayedCode,
    AccountLocked,
    UserDisabled,
}

/// Why a lock was lifted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnlockReason {
    /// Its time ran out.
    Expired,
    /// An admin lifted it.
    Admin,
    /// Console recovery.
    Recovery,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthEvent {
    pub at: Timestamp,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    LoginSucceeded {
        user: UserId,
        name: UserName,
        session: SessionId,
        source: Option<IpAddr>,
        second_factor: SecondFactorKind,
        must_change_password: bool,
    },
    LoginFailed {
        /// Absent for unknown user names.
        user: Option<UserId>,
        source: Option<IpAddr>,
        reason: FailureReason,
    },
    RateLimited {
        source: IpAddr,
    },
    AccountLocked {
        user: UserId,
        name: UserName,
        until: Timestamp,
        failures: u32,
    },
    AccountUnlocked {
        user: UserId,
        name: UserName,
        reason: UnlockReason,
    },
    PasswordRehashed {
        user: UserId,
    },
    PasswordChanged {
        user: UserId,
        by: Actor,
        /// A one-time password the user must change at next login.
        one_time: bool,
    },
    PasswordOnBadlistAtLogin {
        user: UserId,
    },
    RecoveryCodeUsed {
        user: UserId,
        remaining: usize,
    },
    RecoveryCodesRegenerated {
        user: UserId,
        by: Actor,
    },
    SecondFactorReset {
        user: UserId,
        by: Actor,
    },
    SessionEnded {
        user: UserId,
        session: SessionId,
        reason: SessionEnd,
    },
    Reauthenticated {
        record: ReauthRecord,
    },
    ReauthFailed {
        user: UserId,
        session: SessionId,
        reason: FailureReason,
    },
    PrivilegeRefused {
        actor: Actor,
        #[serde(flatten)]
        refusal: Refusal,
    },
    TokenCreated {
        token: TokenId,
        owner: UserId,
        role: Role,
        expires: Timestamp,
        by: Actor,
    },
    TokenRevoked {
        token: TokenId,
        owner: UserId,
        by: Actor,
    },
    TokenUsed {
        token: TokenId,
        owner: UserId,
        privilege: Privilege,
        allowed: bool,
    },
    TokenRejected {
        token: Option<TokenId>,
        reason: TokenRejection,
    },
    UserAdded {
        user: UserId,
        name: UserName,
        role: Role,
        by: Actor,
    },
    UserDisabled {
        user: UserId,
        by: Actor,
    },
    UserEnabled {
        user: UserId,
        by: Actor,
    },
    UserRemoved {
        user: UserId,
        name: UserName,
        by: Actor,
    },
    RoleChanged {
        user: UserId,
        from: Role,
        to: Role,
        by: Actor,
    },
    EmergencyGrantChanged {
        user: UserId,
        granted: bool,
        by: Actor,
    },
    /// Local break-glass: root at the console restored an account.
    AccountRecovered {
        user: UserId,
        name: UserName,
        role: Role,
    },
    BreakGlassRequested {
        request: BreakGlassId,
        requester: UserId,
        name: UserName,
        reason: String,
        approvers: Vec<UserId>,
        auto_grant_at: Timestamp,
    },
    BreakGlassGranted {
        request: BreakGlassId,
        requester: UserId,
        by: Approval,
        until: Timestamp,
    },
    BreakGlassDenied {
        request: BreakGlassId,
        requester: UserId,
        by: UserId,
    },
    BreakGlassCancelled {
        request: BreakGlassId,
        requester: UserId,
    },
    BreakGlassEnded {
        request: BreakGlassId,
        requester: UserId,
        reason: EndReason,
    },
    BreakGlassReviewed {
        request: BreakGlassId,
        requester: UserId,
        reviewer: UserId,
    },
    ElevatedSessionStarted {
        request: BreakGlassId,
        user: UserId,
        session: SessionId,
        until: Timestamp,
    },
    BadlistExtended {
        added: usize,
        by: Actor,
    },
    ConfigurationWarning {
        message: String,
    },
}

impl AuthEvent {
    /// How loud it is.
    pub fn severity(&self) -> Severity {
        use EventKind::*;
        match &self.kind {
            LoginSucceeded { .. }
            | SessionEnded { .. }
            | Reauthenticated { .. }
            | TokenUsed { allowed: true, .. }
            | PasswordRehashed { .. } => Severity::Info,
            LoginFailed { .. }
            | ReauthFailed { .. }
            | PasswordChanged { .. }
            | UserAdded { .. }
            | UserEnabled { .. }
            | RoleChanged { .. }
            | TokenCreated { .. }
            | TokenRevoked { .. }
            | BadlistExtended { .. }
            | RecoveryCodesRegenerated { .. }
            | EmergencyGrantChanged { .. }
            | BreakGlassReviewed { .. }
            | BreakGlassCancelled { .. } => Severity::Notice,
            RateLimited { .. }
            | PrivilegeRefused { .. }
            | TokenUsed { allowed: false, .. }
            | TokenRejected { .. }
            | UserDisabled { .. }
            | UserRemoved { .. }
            | PasswordOnBadlistAtLogin { .. }
            | RecoveryCodeUsed { .. }
            | SecondFactorReset { .. }
            | ConfigurationWarning { .. }
            | BreakGlassDenied { .. }
            | BreakGlassEnded { .. } => Severity::Warning,
            AccountLocked { .. }
            | AccountUnlocked { .. }
            | AccountRecovered { .. }
            | BreakGlassRequested { .. }
            | BreakGlassGranted { .. }
            | ElevatedSessionStarted { .. } => Severity::Alert,
        }
    }

    /// The stable event name (`login_failed`, …).
    pub fn name(&self) -> String {
        serde_json::to_value(&self.kind)
            .ok()
            .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_default()
    }
}
