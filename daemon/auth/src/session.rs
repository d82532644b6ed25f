//! Server-side sessions: records, timers and the secret token.
//!
//! Three clocks (kanidm / service notes §0.3):
//! - **idle**: the session ends when no *user action* happened for
//!   `idle_timeout` (default 10 min, never above 15). Status polling is
//!   [`Activity::Poll`] and does not count, so a console left open on a
//!   progress page still logs off (HIPAA §164.312(a)(2)(iii)).
//! - **absolute**: it ends `absolute_lifetime` after login (8 h) whatever happens.
//! - **re-authentication**: destructive and sensitive privileges need a
//!   password + second-factor check within `reauth_window` (5 min); the
//!   [`ReauthRecord`] is the user's signature for the action.
//!
//! The cookie value is 32 random bytes (base64url, 43 characters); only its
//! SHA-256 is stored, so a copy of the store does not yield live sessions.

use crate::entropy::{self, Entropy};
use crate::ids::{BreakGlassId, ReauthId, SessionId, UserId};
use crate::secret::SecretString;
use crate::time::{duration_text, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::time::Duration;

/// Session timers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionPolicy {
    /// Idle timeout (`[session] idle_timeout`, default 10 min, at most 15).
    #[serde(with = "duration_text")]
    pub idle_timeout: Duration,
    /// Absolute lifetime (default 8 h: one shift).
    #[serde(with = "duration_text")]
    pub absolute_lifetime: Duration,
    /// Freshness window for sensitive actions (default 5 min).
    #[serde(with = "duration_text")]
    pub reauth_window: Duration,
}

impl SessionPolicy {
    /// The ceiling on the idle timeout.
    pub const MAX_IDLE: Duration = Duration::from_secs(15 * 60);

    /// Clamps out-of-range values, saying what was changed.
    pub fn normalized(mut self) -> (SessionPolicy, Vec<String>) {
        let mut warnings = Vec::new();
        if self.idle_timeout > Self::MAX_IDLE {
            warnings.push(format!(
                "session idle_timeout {} is above the 15 min ceiling; using 15m",
                humantime::format_duration(self.idle_timeout)
            ));
            self.idle_timeout = Self::MAX_IDLE;
        }
        if self.idle_timeout < Duration::from_secs(1) {
            warnings.push("session idle_timeout below 1s; using 1s".to_owned());
            self.idle_timeout = Duration::from_secs(1);
        }
        if self.absolute_lifetime < self.idle_timeout {
            warnings.push(format!(
                "session absolute_lifetime is shorter than idle_timeout; using {}",
                humantime::format_duration(self.idle_timeout)
            ));
            self.absolute_lifetime = self.idle_timeout;
        }
        if self.reauth_window > Self::MAX_IDLE {
            warnings.push("session reauth_window is above 15 min; using 5m".to_owned());
            self.reauth_window = Duration::from_secs(5 * 60);
        }
        (self, warnings)
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle_timeout: Duration::from_secs(10 * 60),
            absolute_lifetime: Duration::from_secs(8 * 3600),
            reauth_window: Duration::from_secs(5 * 60),
        }
    }
}

/// What a request did, for the idle clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// A user-initiated request: resets the idle timer.
    UserAction,
    /// Automatic polling (progress, status): does not.
    Poll,
}

/// How the user proved themselves at a (re-)authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorKind {
    Totp,
    RecoveryCode,
}

/// A re-authentication: password and second factor checked at `at` inside
/// `session`. Carried by the audit entry of each sensitive action it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReauthRecord {
    pub id: ReauthId,
    pub user: UserId,
    pub session: SessionId,
    pub at: Timestamp,
    pub second_factor: SecondFactorKind,
}

/// A stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user: UserId,
    pub token_hash: [u8; 32],
    pub created: Timestamp,
    pub last_action: Timestamp,
    pub idle_timeout: Duration,
    pub expires: Timestamp,
    pub source: Option<IpAddr>,
    pub reauth: Option<ReauthRecord>,
    /// The break-glass request whose elevation this session has entered.
    pub elevation: Option<BreakGlassId>,
    /// Only password change and logout are allowed (one-time password in use,
    /// or the password has since appeared on the breached list).
    pub must_change_password: bool,
}

/// Why a session is no longer valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEnd {
    Logout,
    LogoutEverywhere,
    IdleTimeout,
    LifetimeExpired,
    UserDisabled,
    UserRemoved,
    CredentialsReset,
}

impl SessionRecord {
    /// `None` while valid at `now`, else why it ended.
    pub fn expired_at(&self, now: Timestamp) -> Option<SessionEnd> {
        if now >= self.expires {
            Some(SessionEnd::LifetimeExpired)
        } else if now >= self.last_action.plus(self.idle_timeout) {
            Some(SessionEnd::IdleTimeout)
        } else {
            None
        }
    }

    /// Records activity (only user actions move the idle clock).
    pub fn touch(&mut self, activity: Activity, now: Timestamp) {
        if activity == Activity::UserAction && now > self.last_action {
            self.last_action = now;
        }
    }

    /// The re-auth record if it is within `window` at `now`.
    pub fn fresh_reauth(&self, now: Timestamp, window: Duration) -> Option<ReauthRecord> {
        self.reauth
            .filter(|r| r.at <= now && now.since(r.at) <= window)
    }
}

/// The session cookie value. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(SecretString);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

impl SessionToken {
    /// A new random token.
    pub fn generate(e: &mut (impl Entropy + ?Sized)) -> SessionToken {
        let raw: [u8; 32] = entropy::bytes(e);
        SessionToken(SecretString::new(
            data_encoding::BASE64URL_NOPAD.encode(&raw),
        ))
    }

    /// Parses a presented cookie value: exactly 43 base64url characters
    /// decoding to 32 bytes. Anything else is not a token.
    pub fn parse(s: &str) -> Option<SessionToken> {
        if s.len() != 43 {
            return None;
        }
        let raw = data_encoding::BASE64URL_NOPAD.decode(s.as_bytes()).ok()?;
        (raw.len() == 32).then(|| SessionToken(SecretString::from(s)))
    }

    /// The value to put in the cookie.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// What the store keeps.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.expose().as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::TestEntropy;
    use proptest::prelude::*;

    fn rec(now: Timestamp) -> SessionRecord {
        let mut e = TestEntropy(1);
        SessionRecord {
            id: SessionId::generate(&mut e),
            user: UserId::generate(&mut e),
            token_hash: [0; 32],
            created: now,
            last_action: now,
            idle_timeout: Duration::from_secs(600),
            expires: now.plus(Duration::from_secs(8 * 3600)),
            source: None,
            reauth: None,
            elevation: None,
            must_change_password: false,
        }
    }

    /// safeguard: 164.312(a)(2)(iii)
    #[test]
    fn polling_does_not_keep_a_session_alive() {
        let t0 = Timestamp::from_unix_secs(10_000);
        let mut s = rec(t0);
        for m in 1..10 {
            s.touch(Activity::Poll, t0.plus(Duration::from_secs(m * 60)));
        }
        assert_eq!(s.expired_at(t0.plus(Duration::from_secs(599))), None);
        assert_eq!(
            s.expired_at(t0.plus(Duration::from_secs(600))),
            Some(SessionEnd::IdleTimeout)
        );
    }

    /// safeguard: 164.312(a)(2)(iii)
    #[test]
    fn user_actions_do_until_the_absolute_lifetime() {
        let t0 = Timestamp::from_unix_secs(10_000);
        let mut s = rec(t0);
        let mut now = t0;
        while now < t0.plus(Duration::from_secs(8 * 3600 - 300)) {
            now = now.plus(Duration::from_secs(300));
            assert_eq!(s.expired_at(now), None, "{now}");
            s.touch(Activity::UserAction, now);
        }
        assert_eq!(
            s.expired_at(t0.plus(Duration::from_secs(8 * 3600))),
            Some(SessionEnd::LifetimeExpired)
        );
    }

    /// safeguard: 164.312(c)(1)
    #[test]
    fn reauth_freshness() {
        let t0 = Timestamp::from_unix_secs(10_000);
        let mut s = rec(t0);
        let w = Duration::from_secs(300);
        assert_eq!(s.fresh_reauth(t0, w), None);
        let r = ReauthRecord {
            id: ReauthId::generate(&mut TestEntropy(5)),
            user: s.user,
            session: s.id,
            at: t0,
            second_factor: SecondFactorKind::Totp,
        };
        s.reauth = Some(r);
        assert_eq!(s.fresh_reauth(t0.plus(w), w), Some(r));
        assert_eq!(
            s.fresh_reauth(t0.plus(w).plus(Duration::from_millis(1)), w),
            None
        );
    }

    /// safeguard: 164.312(a)(2)(iii)
    #[test]
    fn policy_clamps_with_warnings() {
        let (p, w) = SessionPolicy {
            idle_timeout: Duration::from_secs(3600),
            ..Default::default()
        }
        .normalized();
        assert_eq!(p.idle_timeout, SessionPolicy::MAX_IDLE);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("15 min"), "{w:?}");
        let (p, w) = SessionPolicy::default().normalized();
        assert_eq!(p, SessionPolicy::default());
        assert!(w.is_empty());
        let (p, _) = SessionPolicy {
            idle_timeout: Duration::from_secs(30),
            absolute_lifetime: Duration::from_secs(10),
            ..Default::default()
        }
        .normalized();
        assert_eq!(p.absolute_lifetime, Duration::from_secs(30));
        let p: SessionPolicy = serde_json::from_str(r#"{"idle_timeout":"30s"}"#).unwrap();
        assert_eq!(p.idle_timeout, Duration::from_secs(30));
        assert_eq!(p.absolute_lifetime, Duration::from_secs(8 * 3600));
    }

    #[test]
    fn tokens() {
        let t = SessionToken::generate(&mut TestEntropy(9));
        assert_eq!(t.expose().len(), 43);
        assert_eq!(SessionToken::parse(t.expose()), Some(t.clone()));
        assert_eq!(format!("{t:?}"), "SessionToken(<redacted>)");
        assert_ne!(
            t.hash(),
            SessionToken::generate(&mut TestEntropy(10)).hash()
        );
        assert_eq!(SessionToken::parse("short"), None);
        assert_eq!(SessionToken::parse(&"*".repeat(43)), None);
    }

    proptest! {
        #[test]
        fn token_parser_round_trips_only_tokens(s in "\\PC{0,60}") {
            if let Some(t) = SessionToken::parse(&s) {
                prop_assert_eq!(t.expose(), s.as_str());
            }
        }

        /// safeguard: 164.312(a)(2)(iii)
        #[test]
        fn idle_expiry_matches_last_user_action(events in proptest::collection::vec((1u64..400, any::<bool>()), 1..80)) {
            let t0 = Timestamp::from_unix_secs(10_000);
            let mut s = rec(t0);
            let mut now = t0;
            let mut last_user = t0;
            for (dt, user) in events {
                now = now.plus(Duration::from_secs(dt));
                let should_expire = now >= last_user.plus(Duration::from_secs(600)) || now >= s.expires;
                prop_assert_eq!(s.expired_at(now).is_some(), should_expire);
                if should_expire { break; }
                s.touch(if user { Activity::UserAction } else { Activity::Poll }, now);
                if user { last_user = now; }
            }
        }
    }
}
