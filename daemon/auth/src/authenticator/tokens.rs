//! API tokens: creation (scoped to at most the owner's role), use, listing,
//! revocation.

use super::{AuthError, Authenticator};
use crate::authz::{Authorization, Principal, Via};
use crate::entropy::Entropy;
use crate::events::EventKind;
use crate::ids::TokenId;
use crate::privilege::{Privilege, Role};
use crate::store::AuthStore;
use crate::time::Timestamp;
use crate::token::{ApiTokenRecord, ApiTokenSecret, PresentedToken, TokenRejection};
use std::time::Duration;

/// How stale a token's `last_used` may get before a use rewrites it.
pub const TOKEN_LAST_USED_STEP: Duration = Duration::from_secs(60);

impl<S: AuthStore, E: Entropy> Authenticator<S, E> {
    /// Creates a token for the authorised user (`ManageOwnTokens`, which needs
    /// a fresh re-authentication). `role`'s privileges must all be the owner's.
    /// The secret is returned once.
    pub fn create_token(
        &mut self,
        auth: &Authorization,
        label: &str,
        role: Role,
        lifetime: Duration,
        now: Timestamp,
    ) -> Result<(TokenId, ApiTokenSecret), AuthError> {
        self.require(auth, &[Privilege::ManageOwnTokens], now)?;
        let owner_id = auth.actor().user().ok_or(AuthError::NoSuchUser)?;
        let owner = self.store.user(owner_id)?.ok_or(AuthError::NoSuchUser)?;
        if !role.privileges().is_subset(owner.role.privileges()) {
            return Err(AuthError::TokenRoleTooHigh {
                requested: role,
                owner: owner.role,
            });
        }
        if lifetime.is_zero() || lifetime > self.config.token_max_lifetime {
            return Err(AuthError::TokenLifetime {
                max: self.config.token_max_lifetime,
            });
        }
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
            return Err(AuthError::BadLabel);
        }
        let id = TokenId::generate(&mut self.entropy);
        let (secret, secret_hash) = ApiTokenSecret::generate(id, &mut self.entropy);
        let rec = ApiTokenRecord {
            id,
            owner: owner_id,
            label: label.to_owned(),
            role,
            secret_hash,
            created: now,
            expires: now.plus(lifetime),
            revoked: None,
            last_used: None,
        };
        self.store.insert_token(&rec)?;
        self.emit(
            now,
            EventKind::TokenCreated {
                token: id,
                owner: owner_id,
                role,
                expires: rec.expires,
                by: auth.actor().clone(),
            },
        );
        Ok((id, secret))
    }

    /// Checks a presented token and returns its principal (then call
    /// [`Authenticator::authorize`], which records the use). Every failure is
    /// [`AuthError::NotAuthenticated`]; the event says why.
    pub fn token_principal(
        &mut self,
        presented: &str,
        now: Timestamp,
    ) -> Result<Principal, AuthError> {
        let reject = |this: &mut Self, token, reason| {
            this.emit(now, EventKind::TokenRejected { token, reason });
            Err(AuthError::NotAuthenticated)
        };
        let Some(p) = PresentedToken::parse(presented) else {
            return reject(self, None, TokenRejection::Malformed);
        };
        let Some(mut rec) = self.store.token(p.id)? else {
            return reject(self, Some(p.id), TokenRejection::Unknown);
        };
        if !p.matches(&rec) {
            return reject(self, Some(p.id), TokenRejection::WrongSecret);
        }
        if let Err(r) = rec.usable_at(now) {
            return reject(self, Some(p.id), r);
        }
        let owner = match self.store.user(rec.owner)? {
            Some(o) if !o.disabled => o,
            _ => return reject(self, Some(p.id), TokenRejection::OwnerDisabled),
        };
        // Every use is in the audit log (the `TokenUsed` event below);
        // the record's `last_used` is kept to the minute, so that a token
        // polling every second does not cost a store write per request.
        if rec
            .last_used
            .is_none_or(|t| t > now || now.since(t) >= TOKEN_LAST_USED_STEP)
        {
            rec.last_used = Some(now);
            self.store.update_token(&rec)?;
        }
        Ok(Principal {
            user: owner.id,
            name: owner.name,
            role: owner.role,
            emergency_grant: false,
            disabled: false,
            must_change_password: false,
            via: Via::Token {
                token: rec.id,
                scope: rec.role,
            },
            reauth: None,
            elevation: None,
        })
    }

    /// Token check and authorisation in one call.
    pub fn authorize_token(
        &mut self,
        presented: &str,
        privilege: Privilege,
        now: Timestamp,
    ) -> Result<Authorization, AuthError> {
        let p = self.token_principal(presented, now)?;
        self.authorize(&p, privilege, now)
    }

    /// The authorised user's tokens (`ManageOwnTokens`), or anyone's (`ManageUsers`).
    pub fn list_tokens(
        &mut self,
        auth: &Authorization,
        owner: Option<crate::ids::UserId>,
        now: Timestamp,
    ) -> Result<Vec<ApiTokenRecord>, AuthError> {
        let me = auth.actor().user();
        let owner = match owner {
            Some(o) if Some(o) != me => {
                self.require(auth, &[Privilege::ManageUsers], now)?;
                o
            }
            _ => {
                self.require(
                    auth,
                    &[Privilege::ManageOwnTokens, Privilege::ManageUsers],
                    now,
                )?;
                me.ok_or(AuthError::NoSuchUser)?
            }
        };
        Ok(self.store.tokens_of(owner)?)
    }

    /// Revokes a token: the owner's own (`ManageOwnTokens`) or anyone's
    /// (`ManageUsers`). Immediate.
    pub fn revoke_token(
        &mut self,
        auth: &Authorization,
        id: TokenId,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let mut rec = self.store.token(id)?.ok_or(AuthError::NoSuchToken)?;
        if Some(rec.owner) == auth.actor().user() {
            self.require(
                auth,
                &[Privilege::ManageOwnTokens, Privilege::ManageUsers],
                now,
            )?;
        } else {
            self.require(auth, &[Privilege::ManageUsers], now)?;
        }
        if rec.revoked.is_none() {
            rec.revoked = Some(now);
            self.store.update_token(&rec)?;
            self.emit(
                now,
                EventKind::TokenRevoked {
                    token: id,
                    owner: rec.owner,
                    by: auth.actor().clone(),
                },
            );
        }
        Ok(())
    }
}
