//! The authorisation decision: `(principal, privilege) → Allow | Deny(reason)`.
//!
//! [`check`] is pure: it looks only at the [`Principal`] (built by the
//! authenticator from the store: the user, the session or token, re-auth and
//! elevation state) and the time. An [`Authorization`] can only be made here
//! (or, for root at the appliance console, by [`Authorization::console`]); the
//! authenticator's management operations demand one for the right privilege,
//! so the worker cannot perform one without having asked. It is `Serialize`:
//! the audit entry of the action carries it, with the re-authentication record
//! (the user's signature) and the break-glass tag.

use crate::ids::{BreakGlassId, SessionId, TokenId, UserId, UserName};
use crate::privilege::{Privilege, PrivilegeSet, Role, EMERGENCY_GRANT};
use crate::session::ReauthRecord;
use crate::time::Timestamp;
use serde::Serialize;
use std::time::Duration;

/// How the principal authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Via {
    /// A browser or CLI session.
    Session { session: SessionId },
    /// An API token, with the role it was scoped to.
    Token { token: TokenId, scope: Role },
}

/// Active break-glass elevation of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Elevation {
    pub request: BreakGlassId,
    pub role: Role,
    pub until: Timestamp,
}

/// Everything a decision depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: UserId,
    pub name: UserName,
    pub role: Role,
    pub emergency_grant: bool,
    pub disabled: bool,
    pub must_change_password: bool,
    pub via: Via,
    pub reauth: Option<ReauthRecord>,
    pub elevation: Option<Elevation>,
}

/// Who acted, as the audit log records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// Root at the appliance console (the worker's root-only socket).
    Console,
    /// A user through a session or a token.
    User {
        user: UserId,
        name: UserName,
        #[serde(flatten)]
        via: Via,
    },
}

impl Actor {
    /// The user id, if a user acted.
    pub fn user(&self) -> Option<UserId> {
        match self {
            Actor::Console => None,
            Actor::User { user, .. } => Some(*user),
        }
    }
}

/// Permission to perform one action, now. Carry it into the audit entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Authorization {
    actor: Actor,
    privilege: Privilege,
    at: Timestamp,
    /// The re-authentication this sensitive action rests on (the signature).
    #[serde(skip_serializing_if = "Option::is_none")]
    reauth: Option<ReauthRecord>,
    /// Set while a break-glass elevation is active: every action is tagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    break_glass: Option<BreakGlassId>,
}

impl Authorization {
    /// For root at the appliance console (checked by the worker through
    /// `SO_PEERCRED` on its root-only socket). Console actions need no
    /// re-authentication: the person is at the machine with root.
    pub fn console(privilege: Privilege, at: Timestamp) -> Authorization {
        Authorization {
            actor: Actor::Console,
            privilege,
            at,
            reauth: None,
            break_glass: None,
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }
    pub fn privilege(&self) -> Privilege {
        self.privilege
    }
    pub fn at(&self) -> Timestamp {
        self.at
    }
    pub fn reauth(&self) -> Option<&ReauthRecord> {
        self.reauth.as_ref()
    }
    pub fn break_glass(&self) -> Option<BreakGlassId> {
        self.break_glass
    }
}

/// Why a privilege was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DenyReason {
    UserDisabled,
    /// Only password change and logout until the password is changed.
    PasswordChangeRequired,
    /// The role does not include the privilege.
    NotInRole {
        role: Role,
    },
    /// The token's scope (intersected with the owner's role) does not.
    OutsideTokenScope {
        scope: Role,
        owner_role: Role,
    },
    /// Needs a re-authentication within the window.
    FreshAuthRequired {
        #[serde(with = "crate::time::duration_text")]
        window: Duration,
    },
    /// Tokens cannot re-authenticate, so never get sensitive privileges.
    NotForTokens,
}

impl std::fmt::Display for DenyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DenyReason::UserDisabled => f.write_str("the account is disabled"),
            DenyReason::PasswordChangeRequired => f.write_str("the password must be changed first"),
            DenyReason::NotInRole { role } => write!(f, "the {role} role does not allow this"),
            DenyReason::OutsideTokenScope { scope, owner_role } => write!(
                f,
                "the token is scoped to {scope} (owner: {owner_role}) and does not allow this"
            ),
            DenyReason::FreshAuthRequired { window } => write!(
                f,
                "re-authenticate (password and code) first; it stays valid {}",
                humantime::format_duration(*window)
            ),
            DenyReason::NotForTokens => {
                f.write_str("this action needs a re-authenticated session, not an API token")
            }
        }
    }
}

/// A refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{privilege} refused: {reason}")]
pub struct Refusal {
    pub privilege: Privilege,
    pub reason: DenyReason,
}

/// The decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow(Authorization),
    Deny(Refusal),
}

/// Privileges while only a password change is allowed.
const RESTRICTED: PrivilegeSet =
    PrivilegeSet::of(&[Privilege::OwnSession, Privilege::ManageOwnCredentials]);

/// The principal's privileges at `now` (for an "effective permissions" view).
pub fn effective(p: &Principal, now: Timestamp) -> PrivilegeSet {
    if p.disabled {
        return PrivilegeSet::EMPTY;
    }
    let mut set = match p.via {
        Via::Token { scope, .. } => scope.privileges().intersection(p.role.privileges()),
        Via::Session { .. } => {
            let mut s = p.role.privileges();
            if p.emergency_grant {
                s = s.union(EMERGENCY_GRANT);
            }
            if let Some(e) = p.elevation.filter(|e| now < e.until) {
                s = s.union(e.role.privileges());
            }
            s
        }
    };
    if p.must_change_password {
        set = set.intersection(RESTRICTED);
    }
    set
}

/// Decides whether `p` may use `privilege` at `now`.
pub fn check(
    p: &Principal,
    privilege: Privilege,
    now: Timestamp,
    reauth_window: Duration,
) -> Decision {
    let deny = |reason| Decision::Deny(Refusal { privilege, reason });
    if p.disabled {
        return deny(DenyReason::UserDisabled);
    }
    if p.must_change_password && !RESTRICTED.contains(privilege) {
        return deny(DenyReason::PasswordChangeRequired);
    }
    if !effective(p, now).contains(privilege) {
        return deny(match p.via {
            Via::Token { scope, .. } if p.role.privileges().contains(privilege) => {
                DenyReason::OutsideTokenScope {
                    scope,
                    owner_role: p.role,
                }
            }
            _ => DenyReason::NotInRole { role: p.role },
        });
    }
    let mut reauth = None;
    if privilege.requires_fresh_auth() {
        match p.via {
            Via::Token { .. } => return deny(DenyReason::NotForTokens),
            Via::Session { .. } => {
                let fresh = p
                    .reauth
                    .filter(|r| r.at <= now && now.since(r.at) <= reauth_window);
                match fresh {
                    Some(r) => reauth = Some(r),
                    None => {
                        return deny(DenyReason::FreshAuthRequired {
                            window: reauth_window,
                        })
                    }
                }
            }
        }
    }
    let break_glass = match p.via {
        Via::Session { .. } => p.elevation.filter(|e| now < e.until).map(|e| e.request),
        Via::Token { .. } => None,
    };
    Decision::Allow(Authorization {
        actor: Actor::User {
            user: p.user,
            name: p.name.clone(),
            via: p.via,
        },
        privilege,
        at: now,
        reauth,
        break_glass,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::TestEntropy;
    use crate::ids::ReauthId;
    use crate::session::SecondFactorKind;
    use proptest::prelude::*;

    const W: Duration = Duration::from_secs(300);

    fn t(s: u64) -> Timestamp {
        Timestamp::from_unix_secs(70_000 + s)
    }

    fn principal(role: Role) -> Principal {
        let mut e = TestEntropy(5);
        Principal {
            user: UserId::generate(&mut e),
            name: UserName::parse("pat").unwrap(),
            role,
            emergency_grant: false,
            disabled: false,
            must_change_password: false,
            via: Via::Session {
                session: SessionId::generate(&mut e),
            },
            reauth: None,
            elevation: None,
        }
    }

    fn reauthed(mut p: Principal, at: Timestamp) -> Principal {
        let Via::Session { session } = p.via else {
            panic!()
        };
        p.reauth = Some(ReauthRecord {
            id: ReauthId::generate(&mut TestEntropy(6)),
            user: p.user,
            session,
            at,
            second_factor: SecondFactorKind::Totp,
        });
        p
    }

    /// Every role × every privilege, with and without a fresh re-authentication.
    /// safeguard: 164.312(a)(1)
    #[test]
    fn every_role_times_every_privilege() {
        for role in Role::ALL {
            for priv_ in Privilege::ALL {
                let in_role = role.privileges().contains(*priv_);
                let plain = check(&principal(*role), *priv_, t(0), W);
                let fresh = check(&reauthed(principal(*role), t(0)), *priv_, t(10), W);
                match (in_role, priv_.requires_fresh_auth()) {
                    (false, _) => {
                        assert_eq!(
                            plain,
                            Decision::Deny(Refusal {
                                privilege: *priv_,
                                reason: DenyReason::NotInRole { role: *role }
                            }),
                            "{role} {priv_}"
                        );
                        assert!(matches!(fresh, Decision::Deny(_)), "{role} {priv_}");
                    }
                    (true, false) => {
                        assert!(matches!(plain, Decision::Allow(_)), "{role} {priv_}");
                        assert!(
                            matches!(fresh, Decision::Allow(ref a) if a.reauth().is_none()),
                            "{role} {priv_}"
                        );
                    }
                    (true, true) => {
                        assert_eq!(
                            plain,
                            Decision::Deny(Refusal {
                                privilege: *priv_,
                                reason: DenyReason::FreshAuthRequired { window: W }
                            }),
                            "{role} {priv_}"
                        );
                        assert!(
                            matches!(fresh, Decision::Allow(ref a) if a.reauth().is_some()),
                            "{role} {priv_}"
                        );
                    }
                }
            }
        }
    }

    /// safeguard: 164.312(c)(1)
    #[test]
    fn reauth_expires_after_the_window() {
        let p = reauthed(principal(Role::Operator), t(0));
        assert!(matches!(
            check(&p, Privilege::StartWipe, t(300), W),
            Decision::Allow(_)
        ));
        assert!(matches!(
            check(&p, Privilege::StartWipe, t(301), W),
            Decision::Deny(Refusal {
                reason: DenyReason::FreshAuthRequired { .. },
                ..
            })
        ));
    }

    /// safeguard: 164.312(a)(1)
    #[test]
    fn disabled_and_restricted_users() {
        let mut p = principal(Role::Admin);
        p.disabled = true;
        for priv_ in Privilege::ALL {
            assert!(matches!(
                check(&p, *priv_, t(0), W),
                Decision::Deny(Refusal {
                    reason: DenyReason::UserDisabled,
                    ..
                })
            ));
        }
        let mut p = reauthed(principal(Role::Admin), t(0));
        p.must_change_password = true;
        assert!(matches!(
            check(&p, Privilege::ManageOwnCredentials, t(1), W),
            Decision::Allow(_)
        ));
        assert!(matches!(
            check(&p, Privilege::OwnSession, t(1), W),
            Decision::Allow(_)
        ));
        assert!(matches!(
            check(&p, Privilege::ReadJobs, t(1), W),
            Decision::Deny(Refusal {
                reason: DenyReason::PasswordChangeRequired,
                ..
            })
        ));
    }

    /// safeguard: 164.312(a)(2)(ii)
    #[test]
    fn emergency_grant_and_elevation() {
        let mut p = principal(Role::Operator);
        assert!(matches!(
            check(&p, Privilege::RequestEmergencyAccess, t(0), W),
            Decision::Deny(_)
        ));
        p.emergency_grant = true;
        assert!(matches!(
            check(&p, Privilege::RequestEmergencyAccess, t(0), W),
            Decision::Allow(_)
        ));
        let req = BreakGlassId::generate(&mut TestEntropy(9));
        p.elevation = Some(Elevation {
            request: req,
            role: Role::Admin,
            until: t(3600),
        });
        let p = reauthed(p, t(100));
        match check(&p, Privilege::ManageKeys, t(200), W) {
            Decision::Allow(a) => assert_eq!(a.break_glass(), Some(req)),
            d => panic!("{d:?}"),
        }
        // even base-role actions are tagged while elevated
        match check(&p, Privilege::ReadJobs, t(200), W) {
            Decision::Allow(a) => assert_eq!(a.break_glass(), Some(req)),
            d => panic!("{d:?}"),
        }
        // expiry removes both the privileges and the tag
        assert!(matches!(
            check(&p, Privilege::ManageKeys, t(3600), W),
            Decision::Deny(Refusal {
                reason: DenyReason::NotInRole { .. },
                ..
            })
        ));
        match check(&p, Privilege::ReadJobs, t(3600), W) {
            Decision::Allow(a) => assert_eq!(a.break_glass(), None),
            d => panic!("{d:?}"),
        }
    }

    /// safeguard: 164.312(a)(1)
    #[test]
    fn tokens_are_intersected_and_never_sensitive() {
        let mut e = TestEntropy(3);
        let mut p = principal(Role::Operator);
        p.emergency_grant = true;
        p.via = Via::Token {
            token: TokenId::generate(&mut e),
            scope: Role::Auditor,
        };
        assert!(matches!(
            check(&p, Privilege::ReadCertificates, t(0), W),
            Decision::Allow(_)
        ));
        assert!(matches!(
            check(&p, Privilege::RunBackup, t(0), W),
            Decision::Deny(Refusal {
                reason: DenyReason::OutsideTokenScope { .. },
                ..
            })
        ));
        assert!(matches!(
            check(&p, Privilege::RequestEmergencyAccess, t(0), W),
            Decision::Deny(_)
        ));
        // an admin-scoped token of a demoted owner only has the owner's current role
        p.via = Via::Token {
            token: TokenId::generate(&mut e),
            scope: Role::Admin,
        };
        assert!(matches!(
            check(&p, Privilege::ManageConfiguration, t(0), W),
            Decision::Deny(Refusal {
                reason: DenyReason::NotInRole { .. },
                ..
            })
        ));
        assert!(matches!(
            check(&p, Privilege::RunBackup, t(0), W),
            Decision::Allow(_)
        ));
        assert_eq!(
            check(&p, Privilege::StartWipe, t(0), W),
            Decision::Deny(Refusal {
                privilege: Privilege::StartWipe,
                reason: DenyReason::NotForTokens
            })
        );
    }

    /// safeguard: 164.312(a)(2)(i), 164.312(b)
    #[test]
    fn authorization_serializes_for_the_audit_log() {
        let p = reauthed(principal(Role::Operator), t(0));
        let Decision::Allow(a) = check(&p, Privilege::StartWipe, t(5), W) else {
            panic!()
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["privilege"], "start_wipe");
        assert_eq!(v["actor"]["kind"], "user");
        assert_eq!(v["actor"]["via"], "session");
        assert_eq!(v["actor"]["name"], "pat");
        assert!(v["reauth"]["id"].is_string());
        assert!(v.get("break_glass").is_none());
        let c = Authorization::console(Privilege::ManageUsers, t(0));
        assert_eq!(
            serde_json::to_value(&c).unwrap()["actor"]["kind"],
            "console"
        );
        for r in [
            DenyReason::UserDisabled,
            DenyReason::NotForTokens,
            DenyReason::FreshAuthRequired { window: W },
        ] {
            assert!(!r.to_string().is_empty());
        }
    }

    fn any_role() -> impl Strategy<Value = Role> {
        prop_oneof![Just(Role::Auditor), Just(Role::Operator), Just(Role::Admin)]
    }

    proptest! {
        /// safeguard: 164.312(a)(1)
        #[test]
        fn token_effective_set_never_exceeds_owner(owner in any_role(), scope in any_role(), emergency in any::<bool>()) {
            let mut p = principal(owner);
            p.emergency_grant = emergency;
            p.via = Via::Token { token: TokenId::generate(&mut TestEntropy(1)), scope };
            let eff = effective(&p, t(0));
            prop_assert!(eff.is_subset(owner.privileges()));
            prop_assert!(eff.is_subset(scope.privileges()));
            for priv_ in eff.iter() {
                let d = check(&p, priv_, t(0), W);
                prop_assert_eq!(matches!(d, Decision::Allow(_)), !priv_.requires_fresh_auth());
            }
        }
    }
}
