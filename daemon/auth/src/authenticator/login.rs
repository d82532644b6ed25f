//! Login, re-authentication, sessions and the per-request authorisation.

use super::{AuthError, Authenticator};
use crate::authz::{self, Actor, Authorization, Decision, Elevation, Principal, Via};
use crate::entropy::Entropy;
use crate::events::{EventKind, FailureReason, UnlockReason};
use crate::ids::{ReauthId, SessionId, UserName};
use crate::password::hash;
use crate::privilege::Privilege;
use crate::recovery;
use crate::secret::SecretString;
use crate::session::{
    Activity, ReauthRecord, SecondFactorKind, SessionEnd, SessionRecord, SessionToken,
};
use crate::store::{AuthStore, Credentials, UserRecord};
use crate::time::Timestamp;
use crate::totp::{self, TotpCheck};
use std::net::IpAddr;
use std::time::Duration;

/// A login attempt (the JSON body of `POST /api/v1/login`, plus the peer).
#[derive(Debug)]
pub struct LoginRequest<'a> {
    pub username: &'a str,
    pub password: &'a SecretString,
    /// A TOTP code, or a recovery code (`xxxx-xxxx-xxxx-xxxx`).
    pub second_factor: &'a SecretString,
    pub source: Option<IpAddr>,
}

/// A successful login. `token` goes into the session cookie.
#[derive(Debug)]
pub struct LoginSuccess {
    pub token: SessionToken,
    pub session: SessionId,
    pub user: crate::ids::UserId,
    pub name: UserName,
    pub expires: Timestamp,
    pub idle_timeout: Duration,
    /// Only a password change is allowed until it is done.
    pub must_change_password: bool,
    /// Set when a recovery code was used: how many are left.
    pub recovery_codes_left: Option<usize>,
}

/// The second factor's verdict, before anything is stored.
enum Second {
    Totp(u64),
    Recovery(recovery::StoredRecovery),
    Replayed,
    Wrong,
}

/// The credential check's verdict.
struct Verdict {
    password_ok: bool,
    second: Second,
}

impl Verdict {
    fn failure(&self) -> Option<FailureReason> {
        let second_ok = matches!(self.second, Second::Totp(_) | Second::Recovery(_));
        match (self.password_ok, second_ok) {
            (true, true) => None,
            (true, false) if matches!(self.second, Second::Replayed) => {
                Some(FailureReason::ReplayedCode)
            }
            (true, false) => Some(FailureReason::BadSecondFactor),
            (false, true) => Some(FailureReason::BadPassword),
            (false, false) => Some(FailureReason::BadPasswordAndSecondFactor),
        }
    }
}

impl<S: AuthStore, E: Entropy> Authenticator<S, E> {
    /// Checks password and second factor together (both are always evaluated).
    fn verify(
        &self,
        creds: &Credentials,
        password: &SecretString,
        second: &SecretString,
        now: Timestamp,
    ) -> Result<Verdict, AuthError> {
        let password_ok = hash::verify_password(password.expose(), &creds.password)?;
        let second = if totp::parse_code(second.expose(), self.config.totp.digits).is_some() {
            match totp::verify(
                &creds.totp,
                &self.config.totp,
                second.expose(),
                now,
                creds.totp_last_step,
            ) {
                TotpCheck::Accepted { step } => Second::Totp(step),
                TotpCheck::Replayed => Second::Replayed,
                TotpCheck::Wrong => Second::Wrong,
            }
        } else {
            let mut rec = creds.recovery.clone();
            if recovery::consume(&mut rec, second.expose()) {
                Second::Recovery(rec)
            } else {
                Second::Wrong
            }
        };
        Ok(Verdict {
            password_ok,
            second,
        })
    }

    /// Stores what a successful check consumed (TOTP step, recovery code).
    fn consume_second(
        &mut self,
        user: &UserRecord,
        creds: &mut Credentials,
        second: Second,
        now: Timestamp,
    ) -> Result<(SecondFactorKind, Option<usize>), AuthError> {
        let out = match second {
            Second::Totp(step) => {
                creds.totp_last_step = Some(step);
                (SecondFactorKind::Totp, None)
            }
            Second::Recovery(rec) => {
                let remaining = rec.remaining();
                creds.recovery = rec;
                self.emit(
                    now,
                    EventKind::RecoveryCodeUsed {
                        user: user.id,
                        remaining,
                    },
                );
                (SecondFactorKind::RecoveryCode, Some(remaining))
            }
            Second::Replayed | Second::Wrong => unreachable!("only called after success"),
        };
        self.store.put_credentials(user.id, creds)?;
        Ok(out)
    }

    /// Counts a failure on the ladder; reports a lock that engages.
    pub(super) fn count_failure(
        &mut self,
        user: &UserRecord,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let mut st = self.store.lock_state(user.id)?;
        if let Some(e) = st.on_failure(now, &self.config.lockout) {
            self.emit(
                now,
                EventKind::AccountLocked {
                    user: user.id,
                    name: user.name.clone(),
                    until: e.until,
                    failures: e.failures,
                },
            );
        }
        self.store.put_lock_state(user.id, &st)?;
        Ok(())
    }

    /// `Some(until)` if the account is locked now; a lock that ran out is
    /// reported and forgotten.
    fn current_lock(
        &mut self,
        user: &UserRecord,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, AuthError> {
        let mut st = self.store.lock_state(user.id)?;
        if let Some(until) = st.locked_at(now) {
            return Ok(Some(until));
        }
        if st.expire(now) {
            self.store.put_lock_state(user.id, &st)?;
            self.emit(
                now,
                EventKind::AccountUnlocked {
                    user: user.id,
                    name: user.name.clone(),
                    reason: UnlockReason::Expired,
                },
            );
        }
        Ok(None)
    }

    fn rate_limit(&mut self, source: Option<IpAddr>, now: Timestamp) -> Result<(), AuthError> {
        if let Some(ip) = source {
            if let Err(retry_after) = self.limiter.check(ip, now) {
                self.emit(now, EventKind::RateLimited { source: ip });
                return Err(AuthError::RateLimited { retry_after });
            }
        }
        Ok(())
    }

    /// Logs in with password and second factor. Every failure is the same
    /// [`AuthError::LoginFailed`] (rate limiting aside, which is per address);
    /// the queued event carries the real reason.
    pub fn login(
        &mut self,
        req: &LoginRequest<'_>,
        now: Timestamp,
    ) -> Result<LoginSuccess, AuthError> {
        self.rate_limit(req.source, now)?;
        let failed = AuthError::LoginFailed {
            delay: self.config.failure_delay,
        };
        let user = match UserName::parse(req.username) {
            Ok(name) => self.store.user_by_name(&name)?,
            Err(_) => None,
        };
        let creds = match &user {
            Some(u) => self.store.credentials(u.id)?,
            None => None,
        };
        let (Some(user), Some(mut creds)) = (user, creds) else {
            // same work as a real check: one Argon2 verification
            let _ = hash::verify_password(req.password.expose(), &self.dummy_hash);
            self.emit(
                now,
                EventKind::LoginFailed {
                    user: None,
                    source: req.source,
                    reason: FailureReason::UnknownUser,
                },
            );
            return Err(failed);
        };
        if self.current_lock(&user, now)?.is_some() {
            self.emit(
                now,
                EventKind::LoginFailed {
                    user: Some(user.id),
                    source: req.source,
                    reason: FailureReason::AccountLocked,
                },
            );
            return Err(failed);
        }
        let verdict = self.verify(&creds, req.password, req.second_factor, now)?;
        if let Some(reason) = verdict.failure() {
            self.emit(
                now,
                EventKind::LoginFailed {
                    user: Some(user.id),
                    source: req.source,
                    reason,
                },
            );
            self.count_failure(&user, now)?;
            return Err(failed);
        }
        if user.disabled {
            self.emit(
                now,
                EventKind::LoginFailed {
                    user: Some(user.id),
                    source: req.source,
                    reason: FailureReason::UserDisabled,
                },
            );
            return Err(failed);
        }
        // success
        let mut st = self.store.lock_state(user.id)?;
        st.on_success();
        self.store.put_lock_state(user.id, &st)?;
        if creds.password.below(&self.config.hash) {
            creds.password =
                hash::hash_password(req.password.expose(), &self.config.hash, &mut self.entropy)?;
            self.emit(now, EventKind::PasswordRehashed { user: user.id });
        }
        if !creds.must_change_password && self.badlist.contains(req.password.expose()) {
            // kanidm checks the badlist at login too: a password that has since
            // been breached must be changed now
            creds.must_change_password = true;
            self.emit(now, EventKind::PasswordOnBadlistAtLogin { user: user.id });
        }
        let (second_factor, recovery_codes_left) =
            self.consume_second(&user, &mut creds, verdict.second, now)?;
        let token = SessionToken::generate(&mut self.entropy);
        let session = SessionRecord {
            id: SessionId::generate(&mut self.entropy),
            user: user.id,
            token_hash: token.hash(),
            created: now,
            last_action: now,
            idle_timeout: self.config.session.idle_timeout,
            expires: now.plus(self.config.session.absolute_lifetime),
            source: req.source,
            reauth: None,
            elevation: None,
            must_change_password: creds.must_change_password,
        };
        self.store.insert_session(&session)?;
        self.emit(
            now,
            EventKind::LoginSucceeded {
                user: user.id,
                name: user.name.clone(),
                session: session.id,
                source: req.source,
                second_factor,
                must_change_password: session.must_change_password,
            },
        );
        Ok(LoginSuccess {
            token,
            session: session.id,
            user: user.id,
            name: user.name,
            expires: session.expires,
            idle_timeout: session.idle_timeout,
            must_change_password: session.must_change_password,
            recovery_codes_left,
        })
    }

    pub(super) fn end_session(
        &mut self,
        s: &SessionRecord,
        reason: SessionEnd,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.store.delete_session(s.id)?;
        self.emit(
            now,
            EventKind::SessionEnded {
                user: s.user,
                session: s.id,
                reason,
            },
        );
        Ok(())
    }

    /// Ends every session of `user` (disable, removal, credential reset).
    pub(super) fn end_sessions_of(
        &mut self,
        user: crate::ids::UserId,
        reason: SessionEnd,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        for s in self.store.sessions_of(user)? {
            self.end_session(&s, reason, now)?;
        }
        Ok(())
    }

    /// Looks up a live session by its cookie value, ending it if it timed out.
    fn live_session(
        &mut self,
        token: &SessionToken,
        now: Timestamp,
    ) -> Result<(SessionRecord, UserRecord), AuthError> {
        let Some(s) = self.store.session_by_token_hash(&token.hash())? else {
            return Err(AuthError::NotAuthenticated);
        };
        if let Some(reason) = s.expired_at(now) {
            self.end_session(&s, reason, now)?;
            return Err(AuthError::NotAuthenticated);
        }
        let user = match self.store.user(s.user)? {
            Some(u) if !u.disabled => u,
            Some(_) => {
                self.end_session(&s, SessionEnd::UserDisabled, now)?;
                return Err(AuthError::NotAuthenticated);
            }
            None => {
                self.end_session(&s, SessionEnd::UserRemoved, now)?;
                return Err(AuthError::NotAuthenticated);
            }
        };
        Ok((s, user))
    }

    /// Validates a session for one request and records its activity (only
    /// [`Activity::UserAction`] resets the idle clock). Returns the principal
    /// to authorise with.
    pub fn session(
        &mut self,
        token: &SessionToken,
        activity: Activity,
        now: Timestamp,
    ) -> Result<Principal, AuthError> {
        let (mut s, user) = self.live_session(token, now)?;
        let before = s.clone();
        s.touch(activity, now);
        let elevation = match s.elevation {
            Some(id) => {
                let active = match self.store.break_glass(id)? {
                    Some(mut r) => {
                        self.tick_request(&mut r, now)?;
                        r.active_until(now).map(|until| Elevation {
                            request: id,
                            role: r.role,
                            until,
                        })
                    }
                    None => None,
                };
                if active.is_none() {
                    s.elevation = None;
                }
                active
            }
            None => None,
        };
        if s != before {
            self.store.update_session(&s)?;
        }
        Ok(Principal {
            user: user.id,
            name: user.name,
            role: user.role,
            emergency_grant: user.emergency,
            disabled: user.disabled,
            must_change_password: s.must_change_password,
            via: Via::Session { session: s.id },
            reauth: s.reauth,
            elevation,
        })
    }

    /// The authorisation decision, with its event: a refusal is always
    /// recorded; a token's use is recorded whatever the outcome.
    pub fn authorize(
        &mut self,
        p: &Principal,
        privilege: Privilege,
        now: Timestamp,
    ) -> Result<Authorization, AuthError> {
        let decision = authz::check(p, privilege, now, self.config.session.reauth_window);
        if let Via::Token { token, .. } = p.via {
            self.emit(
                now,
                EventKind::TokenUsed {
                    token,
                    owner: p.user,
                    privilege,
                    allowed: matches!(decision, Decision::Allow(_)),
                },
            );
        }
        match decision {
            Decision::Allow(a) => Ok(a),
            Decision::Deny(refusal) => {
                self.emit(
                    now,
                    EventKind::PrivilegeRefused {
                        actor: Actor::User {
                            user: p.user,
                            name: p.name.clone(),
                            via: p.via,
                        },
                        refusal: refusal.clone(),
                    },
                );
                Err(AuthError::Denied(refusal))
            }
        }
    }

    /// Session check and authorisation in one call (what most routes need).
    pub fn authorize_session(
        &mut self,
        token: &SessionToken,
        activity: Activity,
        privilege: Privilege,
        now: Timestamp,
    ) -> Result<Authorization, AuthError> {
        let p = self.session(token, activity, now)?;
        self.authorize(&p, privilege, now)
    }

    /// Re-authenticates inside a session (password and second factor). The
    /// record is the signature that sensitive actions in the next
    /// `reauth_window` carry. Failures count on the soft-lock ladder.
    pub fn reauthenticate(
        &mut self,
        token: &SessionToken,
        password: &SecretString,
        second_factor: &SecretString,
        source: Option<IpAddr>,
        now: Timestamp,
    ) -> Result<ReauthRecord, AuthError> {
        self.rate_limit(source, now)?;
        let (mut s, user) = self.live_session(token, now)?;
        let failed = AuthError::ReauthFailed {
            delay: self.config.failure_delay,
        };
        let Some(mut creds) = self.store.credentials(user.id)? else {
            return Err(AuthError::NoSuchUser);
        };
        if self.current_lock(&user, now)?.is_some() {
            self.emit(
                now,
                EventKind::ReauthFailed {
                    user: user.id,
                    session: s.id,
                    reason: FailureReason::AccountLocked,
                },
            );
            return Err(failed);
        }
        let verdict = self.verify(&creds, password, second_factor, now)?;
        if let Some(reason) = verdict.failure() {
            self.emit(
                now,
                EventKind::ReauthFailed {
                    user: user.id,
                    session: s.id,
                    reason,
                },
            );
            self.count_failure(&user, now)?;
            return Err(failed);
        }
        let (second_factor, _) = self.consume_second(&user, &mut creds, verdict.second, now)?;
        let record = ReauthRecord {
            id: ReauthId::generate(&mut self.entropy),
            user: user.id,
            session: s.id,
            at: now,
            second_factor,
        };
        s.reauth = Some(record);
        s.touch(Activity::UserAction, now);
        self.store.update_session(&s)?;
        self.emit(now, EventKind::Reauthenticated { record });
        Ok(record)
    }

    /// Ends this session.
    pub fn logout(&mut self, token: &SessionToken, now: Timestamp) -> Result<(), AuthError> {
        match self.store.session_by_token_hash(&token.hash())? {
            Some(s) => self.end_session(&s, SessionEnd::Logout, now),
            None => Err(AuthError::NotAuthenticated),
        }
    }

    /// Ends every session of the authorised user (`OwnSession`), or of
    /// `target` (`ManageUsers`).
    pub fn logout_everywhere(
        &mut self,
        auth: &Authorization,
        target: Option<crate::ids::UserId>,
        now: Timestamp,
    ) -> Result<usize, AuthError> {
        let me = auth.actor().user();
        let user = match target {
            Some(t) if Some(t) != me => {
                self.require(auth, &[Privilege::ManageUsers], now)?;
                t
            }
            _ => {
                self.require(auth, &[Privilege::OwnSession, Privilege::ManageUsers], now)?;
                me.ok_or(AuthError::NoSuchUser)?
            }
        };
        let sessions = self.store.sessions_of(user)?;
        let n = sessions.len();
        for s in sessions {
            self.end_session(&s, SessionEnd::LogoutEverywhere, now)?;
        }
        Ok(n)
    }
}
