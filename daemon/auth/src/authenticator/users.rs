//! User management, password changes, second-factor resets, console recovery,
//! and the breached-password list.

use super::{AuthError, Authenticator};
use crate::authz::{Actor, Authorization};
use crate::entropy::{self, Entropy};
use crate::events::{EventKind, UnlockReason};
use crate::ids::{UserId, UserName};
use crate::password::{hash, policy, PasswordProblem, PasswordRejection};
use crate::privilege::{Privilege, Role};
use crate::recovery::{self, RecoveryCodes};
use crate::secret::SecretString;
use crate::session::{SessionEnd, SessionToken};
use crate::store::{AuthStore, Credentials, StoreError, UserRecord};
use crate::time::Timestamp;
use crate::totp::{TotpEnrolment, TotpSecret};

/// What `user add` hands back (shown once).
#[derive(Debug)]
pub struct NewUser {
    pub id: UserId,
    pub name: UserName,
    pub enrolment: TotpEnrolment,
    pub recovery_codes: RecoveryCodes,
    /// Set when no password was given: the user must change it at first login.
    pub one_time_password: Option<SecretString>,
}

/// What console recovery hands back to root (shown once).
#[derive(Debug)]
pub struct RecoveryKit {
    pub id: UserId,
    pub name: UserName,
    pub one_time_password: SecretString,
    pub enrolment: TotpEnrolment,
    pub recovery_codes: RecoveryCodes,
}

/// A user as listed (no secret).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UserSummary {
    pub id: UserId,
    pub name: UserName,
    pub role: Role,
    pub emergency: bool,
    pub disabled: bool,
    pub created: Timestamp,
    pub locked_until: Option<Timestamp>,
    pub must_change_password: bool,
    pub recovery_codes_left: usize,
    pub sessions: usize,
}

/// A one-time password: 20 characters from an alphabet without look-alikes
/// (about 113 bits), grouped by 5 for reading aloud over the phone.
fn one_time_password(e: &mut (impl Entropy + ?Sized)) -> SecretString {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(23);
    let mut i = 0;
    while i < 20 {
        let [b]: [u8; 1] = entropy::bytes(e);
        // rejection sampling: no modulo bias
        if usize::from(b) >= 256 - 256 % ALPHABET.len() {
            continue;
        }
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
        i += 1;
    }
    SecretString::new(out)
}

impl<S: AuthStore, E: Entropy> Authenticator<S, E> {
    fn user_or_err(&self, id: UserId) -> Result<UserRecord, AuthError> {
        self.store.user(id)?.ok_or(AuthError::NoSuchUser)
    }

    /// Refuses a change that leaves no enabled admin.
    fn keep_an_admin(&self, changed: &UserRecord, removed: bool) -> Result<(), AuthError> {
        let remaining = self
            .store
            .users()?
            .into_iter()
            .filter(|u| u.id != changed.id && u.role == Role::Admin && !u.disabled)
            .count();
        let changed_is_admin = !removed && changed.role == Role::Admin && !changed.disabled;
        let was_admin = self
            .store
            .user(changed.id)?
            .is_some_and(|u| u.role == Role::Admin && !u.disabled);
        if was_admin && remaining == 0 && !changed_is_admin {
            return Err(AuthError::LastAdmin);
        }
        Ok(())
    }

    fn fresh_second_factor(
        &mut self,
        user: &UserName,
    ) -> (
        TotpSecret,
        TotpEnrolment,
        RecoveryCodes,
        recovery::StoredRecovery,
    ) {
        let secret = TotpSecret::generate(&mut self.entropy);
        let enrolment = TotpEnrolment::new(&self.config.issuer, user, &secret, &self.config.totp);
        let (codes, stored) = recovery::generate(&mut self.entropy);
        (secret, enrolment, codes, stored)
    }

    /// Password quality for `user`.
    fn check_new_password(
        &self,
        user: &UserName,
        password: &SecretString,
    ) -> Result<(), AuthError> {
        let issuer = self.config.issuer.clone();
        policy::check_quality(
            password.expose(),
            user,
            &[issuer.as_str()],
            &self.config.password,
            &self.badlist,
        )?;
        Ok(())
    }

    /// Adds a user (`ManageUsers`, or the console for the first admin). Every
    /// user gets a TOTP secret and ten recovery codes at once: the second
    /// factor is never optional.
    pub fn add_user(
        &mut self,
        auth: &Authorization,
        name: &str,
        role: Role,
        password: Option<&SecretString>,
        now: Timestamp,
    ) -> Result<NewUser, AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        let name = UserName::parse(name)?;
        if self.store.user_by_name(&name)?.is_some() {
            return Err(AuthError::NameTaken(name));
        }
        let (pw, one_time) = match password {
            Some(p) => {
                self.check_new_password(&name, p)?;
                (p.clone(), None)
            }
            None => {
                let p = one_time_password(&mut self.entropy);
                (p.clone(), Some(p))
            }
        };
        let (totp, enrolment, recovery_codes, recovery) = self.fresh_second_factor(&name);
        let user = UserRecord {
            id: UserId::generate(&mut self.entropy),
            name: name.clone(),
            role,
            emergency: false,
            disabled: false,
            created: now,
        };
        let creds = Credentials {
            password: hash::hash_password(pw.expose(), &self.config.hash, &mut self.entropy)?,
            password_set: now,
            must_change_password: one_time.is_some(),
            totp,
            totp_last_step: None,
            recovery,
        };
        self.store.insert_user(&user, &creds).map_err(|e| match e {
            StoreError::NameTaken(n) => AuthError::NameTaken(n),
            e => e.into(),
        })?;
        self.emit(
            now,
            EventKind::UserAdded {
                user: user.id,
                name: name.clone(),
                role,
                by: auth.actor().clone(),
            },
        );
        Ok(NewUser {
            id: user.id,
            name,
            enrolment,
            recovery_codes,
            one_time_password: one_time,
        })
    }

    /// Every user, for the admin page (`ManageUsers`).
    pub fn list_users(
        &mut self,
        auth: &Authorization,
        now: Timestamp,
    ) -> Result<Vec<UserSummary>, AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        let mut out = Vec::new();
        for u in self.store.users()? {
            let creds = self.store.credentials(u.id)?;
            let lock = self.store.lock_state(u.id)?;
            out.push(UserSummary {
                locked_until: lock.locked_at(now),
                must_change_password: creds.as_ref().is_some_and(|c| c.must_change_password),
                recovery_codes_left: creds.as_ref().map_or(0, |c| c.recovery.remaining()),
                sessions: self.store.sessions_of(u.id)?.len(),
                id: u.id,
                name: u.name,
                role: u.role,
                emergency: u.emergency,
                disabled: u.disabled,
                created: u.created,
            });
        }
        Ok(out)
    }

    /// Looks a user up by name (`ManageUsers`).
    pub fn find_user(
        &mut self,
        auth: &Authorization,
        name: &str,
        now: Timestamp,
    ) -> Result<UserRecord, AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        self.store
            .user_by_name(&UserName::parse(name)?)?
            .ok_or(AuthError::NoSuchUser)
    }

    /// Disables or enables a user. Disabling ends their sessions at once; the
    /// last enabled admin cannot be disabled.
    pub fn set_disabled(
        &mut self,
        auth: &Authorization,
        id: UserId,
        disabled: bool,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        let mut u = self.user_or_err(id)?;
        if u.disabled == disabled {
            return Ok(());
        }
        u.disabled = disabled;
        self.keep_an_admin(&u, false)?;
        self.store.update_user(&u)?;
        let by = auth.actor().clone();
        if disabled {
            self.end_sessions_of(id, SessionEnd::UserDisabled, now)?;
            self.emit(now, EventKind::UserDisabled { user: id, by });
        } else {
            self.emit(now, EventKind::UserEnabled { user: id, by });
        }
        Ok(())
    }

    /// Changes a user's role (the last enabled admin keeps theirs).
    pub fn set_role(
        &mut self,
        auth: &Authorization,
        id: UserId,
        role: Role,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        let mut u = self.user_or_err(id)?;
        let from = u.role;
        if from == role {
            return Ok(());
        }
        u.role = role;
        self.keep_an_admin(&u, false)?;
        self.store.update_user(&u)?;
        self.emit(
            now,
            EventKind::RoleChanged {
                user: id,
                from,
                to: role,
                by: auth.actor().clone(),
            },
        );
        Ok(())
    }

    /// Gives or takes the `emergency` grant.
    pub fn set_emergency_grant(
        &mut self,
        auth: &Authorization,
        id: UserId,
        granted: bool,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        let mut u = self.user_or_err(id)?;
        if u.emergency == granted {
            return Ok(());
        }
        u.emergency = granted;
        self.store.update_user(&u)?;
        self.emit(
            now,
            EventKind::EmergencyGrantChanged {
                user: id,
                granted,
                by: auth.actor().clone(),
            },
        );
        Ok(())
    }

    /// Removes a user with their credentials, sessions and tokens. Their id is
    /// never reused; audit records keep it.
    pub fn remove_user(
        &mut self,
        auth: &Authorization,
        id: UserId,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        let u = self.user_or_err(id)?;
        self.keep_an_admin(&u, true)?;
        self.end_sessions_of(id, SessionEnd::UserRemoved, now)?;
        self.store.delete_user(id)?;
        self.emit(
            now,
            EventKind::UserRemoved {
                user: id,
                name: u.name,
                by: auth.actor().clone(),
            },
        );
        Ok(())
    }

    /// New TOTP secret and recovery codes for a user (lost phone). Their
    /// sessions end.
    pub fn reset_second_factor(
        &mut self,
        auth: &Authorization,
        id: UserId,
        now: Timestamp,
    ) -> Result<(TotpEnrolment, RecoveryCodes), AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        let u = self.user_or_err(id)?;
        let mut creds = self.store.credentials(id)?.ok_or(AuthError::NoSuchUser)?;
        let (totp, enrolment, codes, stored) = self.fresh_second_factor(&u.name);
        creds.totp = totp;
        creds.totp_last_step = None;
        creds.recovery = stored;
        self.store.put_credentials(id, &creds)?;
        self.end_sessions_of(id, SessionEnd::CredentialsReset, now)?;
        self.emit(
            now,
            EventKind::SecondFactorReset {
                user: id,
                by: auth.actor().clone(),
            },
        );
        Ok((enrolment, codes))
    }

    /// A user's own new batch of recovery codes (`ManageOwnCredentials`); the
    /// old batch stops working.
    pub fn regenerate_recovery_codes(
        &mut self,
        auth: &Authorization,
        now: Timestamp,
    ) -> Result<RecoveryCodes, AuthError> {
        self.require(auth, &[Privilege::ManageOwnCredentials], now)?;
        let id = auth.actor().user().ok_or(AuthError::NoSuchUser)?;
        let mut creds = self.store.credentials(id)?.ok_or(AuthError::NoSuchUser)?;
        let (codes, stored) = recovery::generate(&mut self.entropy);
        creds.recovery = stored;
        self.store.put_credentials(id, &creds)?;
        self.emit(
            now,
            EventKind::RecoveryCodesRegenerated {
                user: id,
                by: auth.actor().clone(),
            },
        );
        Ok(codes)
    }

    /// Stores a new password after the policy and history checks.
    fn set_password(
        &mut self,
        user: &UserRecord,
        creds: &mut Credentials,
        new: &SecretString,
        one_time: bool,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let previous = self.store.password_history(user.id)?;
        let history = self.config.password.history;
        let mut reused = hash::verify_password(new.expose(), &creds.password)?;
        for old in previous.iter().take(history) {
            if reused {
                break;
            }
            reused = hash::verify_password(new.expose(), old)?;
        }
        if reused {
            return Err(PasswordRejection {
                problems: vec![PasswordProblem::RecentlyUsed { history }],
            }
            .into());
        }
        let old = std::mem::replace(
            &mut creds.password,
            hash::hash_password(new.expose(), &self.config.hash, &mut self.entropy)?,
        );
        self.store
            .push_password_history(user.id, &old, now, history)?;
        creds.password_set = now;
        creds.must_change_password = one_time;
        self.store.put_credentials(user.id, creds)?;
        Ok(())
    }

    /// The user changes their own password, proving the current one. Works in
    /// a restricted session (one-time password) and lifts the restriction.
    pub fn change_own_password(
        &mut self,
        token: &SessionToken,
        current: &SecretString,
        new: &SecretString,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let p = self.session(token, crate::session::Activity::UserAction, now)?;
        let auth = self.authorize(&p, Privilege::ManageOwnCredentials, now)?;
        let user = self.user_or_err(p.user)?;
        let mut creds = self
            .store
            .credentials(user.id)?
            .ok_or(AuthError::NoSuchUser)?;
        if !hash::verify_password(current.expose(), &creds.password)? {
            self.count_failure(&user, now)?;
            return Err(AuthError::WrongCurrentPassword {
                delay: self.config.failure_delay,
            });
        }
        self.check_new_password(&user.name, new)?;
        self.set_password(&user, &mut creds, new, false, now)?;
        // lift the restriction in every session of the user
        for mut s in self.store.sessions_of(user.id)? {
            if s.must_change_password {
                s.must_change_password = false;
                self.store.update_session(&s)?;
            }
        }
        self.emit(
            now,
            EventKind::PasswordChanged {
                user: user.id,
                by: auth.actor().clone(),
                one_time: false,
            },
        );
        Ok(())
    }

    /// An admin resets a user's password to a one-time password the user must
    /// change at the next login. Their sessions end.
    pub fn reset_password(
        &mut self,
        auth: &Authorization,
        id: UserId,
        now: Timestamp,
    ) -> Result<SecretString, AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        let u = self.user_or_err(id)?;
        let mut creds = self.store.credentials(id)?.ok_or(AuthError::NoSuchUser)?;
        let otp = one_time_password(&mut self.entropy);
        creds.password = hash::hash_password(otp.expose(), &self.config.hash, &mut self.entropy)?;
        creds.password_set = now;
        creds.must_change_password = true;
        self.store.put_credentials(id, &creds)?;
        self.end_sessions_of(id, SessionEnd::CredentialsReset, now)?;
        self.emit(
            now,
            EventKind::PasswordChanged {
                user: u.id,
                by: auth.actor().clone(),
                one_time: true,
            },
        );
        Ok(otp)
    }

    /// Root at the console (`lethe user passwd NAME`) or an admin sets a
    /// user's password: checked against the policy and the user's history;
    /// the user's sessions end. Not a one-time password: the user keeps it.
    pub fn set_user_password(
        &mut self,
        auth: &Authorization,
        id: UserId,
        new: &SecretString,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        let u = self.user_or_err(id)?;
        let mut creds = self.store.credentials(id)?.ok_or(AuthError::NoSuchUser)?;
        self.check_new_password(&u.name, new)?;
        self.set_password(&u, &mut creds, new, false, now)?;
        self.end_sessions_of(id, SessionEnd::CredentialsReset, now)?;
        self.emit(
            now,
            EventKind::PasswordChanged {
                user: u.id,
                by: auth.actor().clone(),
                one_time: false,
            },
        );
        Ok(())
    }

    /// An admin lifts a soft lock.
    pub fn unlock(
        &mut self,
        auth: &Authorization,
        id: UserId,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        let u = self.user_or_err(id)?;
        let mut st = self.store.lock_state(id)?;
        let was_locked = st.locked_at(now).is_some();
        st.lift();
        self.store.put_lock_state(id, &st)?;
        if was_locked {
            self.emit(
                now,
                EventKind::AccountUnlocked {
                    user: id,
                    name: u.name,
                    reason: UnlockReason::Admin,
                },
            );
        }
        Ok(())
    }

    /// Local break-glass: root at the appliance console restores an account
    /// (`lethe user recover NAME` over the worker's root-only socket). The
    /// account is enabled, its lock lifted, its sessions ended, and it gets a
    /// one-time password, a new TOTP secret and new recovery codes. If no
    /// enabled admin exists, the account is made admin: the appliance must
    /// never be left without one. Loud: an [`EventKind::AccountRecovered`] alert.
    pub fn recover(
        &mut self,
        auth: &Authorization,
        name: &str,
        now: Timestamp,
    ) -> Result<RecoveryKit, AuthError> {
        self.require(auth, &[Privilege::ManageUsers], now)?;
        if *auth.actor() != Actor::Console {
            return Err(AuthError::WrongAuthorization {
                needed: Privilege::ManageUsers,
                got: auth.privilege(),
            });
        }
        let name = UserName::parse(name)?;
        let mut u = self
            .store
            .user_by_name(&name)?
            .ok_or(AuthError::NoSuchUser)?;
        let mut creds = self.store.credentials(u.id)?.ok_or(AuthError::NoSuchUser)?;
        let any_admin = self
            .store
            .users()?
            .iter()
            .any(|o| o.id != u.id && o.role == Role::Admin && !o.disabled);
        u.disabled = false;
        if !any_admin {
            u.role = Role::Admin;
        }
        self.store.update_user(&u)?;
        let mut st = self.store.lock_state(u.id)?;
        if st.locked_at(now).is_some() {
            self.emit(
                now,
                EventKind::AccountUnlocked {
                    user: u.id,
                    name: u.name.clone(),
                    reason: UnlockReason::Recovery,
                },
            );
        }
        st.lift();
        self.store.put_lock_state(u.id, &st)?;
        let otp = one_time_password(&mut self.entropy);
        let (totp, enrolment, recovery_codes, stored) = self.fresh_second_factor(&u.name);
        creds.password = hash::hash_password(otp.expose(), &self.config.hash, &mut self.entropy)?;
        creds.password_set = now;
        creds.must_change_password = true;
        creds.totp = totp;
        creds.totp_last_step = None;
        creds.recovery = stored;
        self.store.put_credentials(u.id, &creds)?;
        self.end_sessions_of(u.id, SessionEnd::CredentialsReset, now)?;
        self.emit(
            now,
            EventKind::AccountRecovered {
                user: u.id,
                name: u.name.clone(),
                role: u.role,
            },
        );
        Ok(RecoveryKit {
            id: u.id,
            name: u.name,
            one_time_password: otp,
            enrolment,
            recovery_codes,
        })
    }

    /// Appends words to the breached-password list (`ManageConfiguration`);
    /// returns how many were new. The list only grows.
    pub fn extend_badlist(
        &mut self,
        auth: &Authorization,
        words: &[String],
        now: Timestamp,
    ) -> Result<usize, AuthError> {
        self.require(auth, &[Privilege::ManageConfiguration], now)?;
        let clean: Vec<String> = words
            .iter()
            .map(|w| w.trim().to_lowercase())
            .filter(|w| !w.is_empty() && w.chars().count() <= self.config.password.max_length)
            .collect();
        let added = self.store.badlist_append(&clean, now)?;
        self.badlist.extend(clean);
        self.emit(
            now,
            EventKind::BadlistExtended {
                added,
                by: auth.actor().clone(),
            },
        );
        Ok(added)
    }
}
