//! The authenticator: the stateful façade the worker calls. It owns the store,
//! the randomness source, the configuration, the per-source rate limiter and
//! the event queue; every method takes the current time.
//!
//! Methods take `&mut self`: the worker serialises calls (one authenticator
//! behind one lock), which also makes "a TOTP step is accepted once" and
//! "a recovery code is used once" hold under concurrent requests.
//!
//! Events are queued, never dropped: the worker calls
//! [`Authenticator::take_events`] after each call and writes them to the
//! audit log before answering the client.

mod breakglass_ops;
mod login;
mod tokens;
mod users;

#[cfg(test)]
mod tests;

use crate::authz::{Authorization, Refusal};
use crate::breakglass::{BreakGlassError, BreakGlassPolicy, BreakGlassRequest, Transition};
use crate::entropy::Entropy;
use crate::events::{AuthEvent, EventKind};
use crate::ids::{NameError, UserName};
use crate::lockout::LockoutPolicy;
use crate::password::{
    hash, Badlist, HashError, HashParams, PasswordHash, PasswordPolicy, PasswordRejection,
};
use crate::privilege::{Privilege, Role};
use crate::ratelimit::{RateLimitPolicy, SourceRateLimiter};
use crate::session::SessionPolicy;
use crate::store::{AuthStore, StoreError};
use crate::time::{duration_text, Timestamp};
use crate::totp::TotpParams;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use login::{LoginRequest, LoginSuccess};
pub use users::{NewUser, RecoveryKit, UserSummary};

/// The identity configuration (`[auth]` and `[session]` of the appliance
/// configuration). Every field has a default; see `docs/auth.md` for why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Shown in authenticator apps: "Lethe" plus the appliance's name.
    pub issuer: String,
    pub hash: HashParams,
    pub password: PasswordPolicy,
    pub session: SessionPolicy,
    pub lockout: LockoutPolicy,
    pub rate_limit: RateLimitPolicy,
    pub totp: TotpParams,
    pub break_glass: BreakGlassPolicy,
    /// How long the API waits before answering a failed login, measured from
    /// the start of the request (Proxmox uses 3 s): every failure then takes
    /// the same time, whatever was wrong.
    #[serde(with = "duration_text")]
    pub failure_delay: Duration,
    /// Longest API-token lifetime (90 days).
    #[serde(with = "duration_text")]
    pub token_max_lifetime: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "Lethe".to_owned(),
            hash: HashParams::DEFAULT,
            password: PasswordPolicy::default(),
            session: SessionPolicy::default(),
            lockout: LockoutPolicy::default(),
            rate_limit: RateLimitPolicy::default(),
            totp: TotpParams::default(),
            break_glass: BreakGlassPolicy::default(),
            failure_delay: Duration::from_secs(3),
            token_max_lifetime: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

impl AuthConfig {
    /// Defaults with the cheapest Argon2 parameters (tests only).
    pub fn for_tests() -> AuthConfig {
        AuthConfig {
            hash: HashParams::TEST_MINIMUM,
            ..AuthConfig::default()
        }
    }

    /// Validates, clamping what may be clamped; returns the warnings.
    pub fn normalized(mut self) -> Result<(AuthConfig, Vec<String>), AuthError> {
        self.hash.validate()?;
        if self.totp.digits < 6
            || self.totp.digits > 8
            || self.totp.step_secs == 0
            || self.totp.skew > 2
        {
            return Err(AuthError::Config(
                "totp: digits 6-8, step_secs > 0, skew at most 2".to_owned(),
            ));
        }
        if self.password.min_length < 8 {
            return Err(AuthError::Config(
                "password.min_length is at least 8".to_owned(),
            ));
        }
        let (session, warnings) = self.session.normalized();
        self.session = session;
        Ok((self, warnings))
    }
}

/// Errors of the authenticator. Login and re-authentication failures are
/// deliberately uninformative; the audit event says what really happened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("login failed: check the user name, password and code")]
    LoginFailed { delay: Duration },
    #[error("re-authentication failed: check the password and code")]
    ReauthFailed { delay: Duration },
    #[error("too many attempts from this address; try again in {}", humantime::format_duration(*retry_after))]
    RateLimited { retry_after: Duration },
    #[error("not logged in, or the session has ended")]
    NotAuthenticated,
    #[error(transparent)]
    Denied(#[from] Refusal),
    #[error(transparent)]
    Password(#[from] PasswordRejection),
    #[error("the current password is wrong")]
    WrongCurrentPassword { delay: Duration },
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("no such user")]
    NoSuchUser,
    #[error("a user named {0} already exists")]
    NameTaken(UserName),
    #[error("refused: this would leave no enabled admin")]
    LastAdmin,
    #[error("no such API token")]
    NoSuchToken,
    #[error("an API token cannot have the {requested} role: its owner is {owner}")]
    TokenRoleTooHigh { requested: Role, owner: Role },
    #[error("an API token lives at most {}", humantime::format_duration(*max))]
    TokenLifetime { max: Duration },
    #[error("a token label is 1 to 64 printable characters")]
    BadLabel,
    #[error("no such break-glass request")]
    NoSuchRequest,
    #[error(transparent)]
    BreakGlass(#[from] BreakGlassError),
    #[error("there is already an open break-glass request for this user")]
    BreakGlassAlreadyOpen,
    #[error("only a configured approver can decide on break-glass requests")]
    NotAnApprover,
    #[error("internal error: this operation needs {needed}, the authorization is for {got}")]
    WrongAuthorization { needed: Privilege, got: Privilege },
    #[error("internal error: the authorization was made at {at} and is stale")]
    StaleAuthorization { at: Timestamp },
    #[error("invalid auth configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// How long an [`Authorization`] may be used after it was made: it is meant for
/// the request that asked for it.
const AUTHORIZATION_TTL: Duration = Duration::from_secs(60);

/// The identity service.
pub struct Authenticator<S: AuthStore, E: Entropy> {
    store: S,
    entropy: E,
    config: AuthConfig,
    limiter: SourceRateLimiter,
    badlist: Badlist,
    events: Vec<AuthEvent>,
    /// Verified against for unknown user names, so that they cost the same time.
    dummy_hash: PasswordHash,
}

impl<S: AuthStore, E: Entropy> std::fmt::Debug for Authenticator<S, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.config)
            .field("pending_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl<S: AuthStore, E: Entropy> Authenticator<S, E> {
    /// Builds the service over `store`. Configuration warnings (a clamped idle
    /// timeout) are queued as events.
    pub fn new(
        store: S,
        mut entropy: E,
        config: AuthConfig,
        now: Timestamp,
    ) -> Result<Self, AuthError> {
        let (config, warnings) = config.normalized()?;
        let badlist = Badlist::new(store.badlist()?);
        let dummy_hash = hash::hash_password("lethe-dummy-password", &config.hash, &mut entropy)?;
        let mut a = Authenticator {
            store,
            entropy,
            limiter: SourceRateLimiter::new(config.rate_limit.clone()),
            config,
            badlist,
            events: Vec::new(),
            dummy_hash,
        };
        for message in warnings {
            a.emit(now, EventKind::ConfigurationWarning { message });
        }
        Ok(a)
    }

    /// The effective configuration (after clamping).
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The queued events, oldest first; the queue is left empty.
    pub fn take_events(&mut self) -> Vec<AuthEvent> {
        std::mem::take(&mut self.events)
    }

    /// The store (read access for the worker's own queries).
    pub fn store(&self) -> &S {
        &self.store
    }

    fn emit(&mut self, at: Timestamp, kind: EventKind) {
        self.events.push(AuthEvent { at, kind });
    }

    /// Checks that `auth` is for one of `needed` and fresh.
    fn require(
        &self,
        auth: &Authorization,
        needed: &[Privilege],
        now: Timestamp,
    ) -> Result<(), AuthError> {
        if !needed.contains(&auth.privilege()) {
            return Err(AuthError::WrongAuthorization {
                needed: needed[0],
                got: auth.privilege(),
            });
        }
        if auth.at() > now || now.since(auth.at()) > AUTHORIZATION_TTL {
            return Err(AuthError::StaleAuthorization { at: auth.at() });
        }
        Ok(())
    }

    /// Housekeeping, to call every few seconds: auto-grants and expires
    /// break-glass requests, ends timed-out sessions, and reports locks whose
    /// time ran out. Everything it does is queued as events.
    pub fn tick(&mut self, now: Timestamp) -> Result<(), AuthError> {
        for mut r in self.store.open_break_glass()? {
            self.tick_request(&mut r, now)?;
        }
        for s in self.store.sessions()? {
            if let Some(reason) = s.expired_at(now) {
                self.end_session(&s, reason, now)?;
            }
        }
        for (user, mut st) in self.store.locked_users()? {
            if st.expire(now) {
                self.store.put_lock_state(user, &st)?;
                if let Some(u) = self.store.user(user)? {
                    self.emit(
                        now,
                        EventKind::AccountUnlocked {
                            user,
                            name: u.name,
                            reason: crate::events::UnlockReason::Expired,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Applies time to one request, storing and reporting what changed.
    fn tick_request(&mut self, r: &mut BreakGlassRequest, now: Timestamp) -> Result<(), AuthError> {
        let trs = r.tick(now);
        if !trs.is_empty() {
            self.store.update_break_glass(r)?;
            for t in trs {
                self.emit_transition(r, t);
            }
        }
        Ok(())
    }

    fn emit_transition(&mut self, r: &BreakGlassRequest, t: Transition) {
        let (at, kind) = match t {
            Transition::Granted { by, at, until } => (
                at,
                EventKind::BreakGlassGranted {
                    request: r.id,
                    requester: r.requester,
                    by,
                    until,
                },
            ),
            Transition::Denied { by, at } => (
                at,
                EventKind::BreakGlassDenied {
                    request: r.id,
                    requester: r.requester,
                    by,
                },
            ),
            Transition::Cancelled { at } => (
                at,
                EventKind::BreakGlassCancelled {
                    request: r.id,
                    requester: r.requester,
                },
            ),
            Transition::Ended { reason, at } => (
                at,
                EventKind::BreakGlassEnded {
                    request: r.id,
                    requester: r.requester,
                    reason,
                },
            ),
            Transition::Reviewed { reviewer, at } => (
                at,
                EventKind::BreakGlassReviewed {
                    request: r.id,
                    requester: r.requester,
                    reviewer,
                },
            ),
        };
        self.emit(at, kind);
    }
}
