//! Authenticator tests over the real SQLite store with a fake clock and a
//! seeded randomness source.

use super::*;
use crate::authz::Authorization;
use crate::breakglass::BreakGlassState;
use crate::entropy::TestEntropy;
use crate::events::{FailureReason, UnlockReason};
use crate::ids::UserId;
use crate::privilege::{Privilege, Role};
use crate::secret::SecretString;
use crate::session::{Activity, SessionEnd, SessionToken};
use crate::sqlite::SqliteStore;
use crate::totp::{self, TotpSecret};
use crate::{DenyReason, Refusal};
use std::net::IpAddr;
use std::time::Duration;

const PW: &str = "vivid-Tundra-47-quokka-Lantern";
const PW2: &str = "amber-Glacier-19-walrus-Trumpet";

struct H {
    a: Authenticator<SqliteStore, TestEntropy>,
    now: Timestamp,
}

struct U {
    id: UserId,
    name: String,
    totp: TotpSecret,
    codes: Vec<String>,
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

impl H {
    fn with(config: AuthConfig) -> H {
        let now = Timestamp::from_unix_secs(1_800_000_000);
        let a = Authenticator::new(
            SqliteStore::open_in_memory().unwrap(),
            TestEntropy(1),
            config,
            now,
        )
        .unwrap();
        H { a, now }
    }

    fn new() -> H {
        H::with(AuthConfig::for_tests())
    }

    fn advance(&mut self, secs: u64) {
        self.now = self.now.plus(Duration::from_secs(secs));
    }

    fn console(&self, p: Privilege) -> Authorization {
        Authorization::console(p, self.now)
    }

    fn add(&mut self, name: &str, role: Role) -> U {
        let auth = self.console(Privilege::ManageUsers);
        let n = self
            .a
            .add_user(&auth, name, role, Some(&SecretString::from(PW)), self.now)
            .unwrap();
        let raw = data_encoding::BASE32_NOPAD
            .decode(n.enrolment.secret_base32().expose().as_bytes())
            .unwrap();
        U {
            id: n.id,
            name: name.to_owned(),
            totp: TotpSecret::from_bytes(raw),
            codes: n
                .recovery_codes
                .codes()
                .iter()
                .map(|c| c.expose().to_owned())
                .collect(),
        }
    }

    fn code(&self, u: &U) -> SecretString {
        SecretString::new(totp::code_at(&u.totp, self.now, &self.a.config().totp))
    }

    fn try_login(
        &mut self,
        u: &U,
        pw: &str,
        code: &SecretString,
    ) -> Result<LoginSuccess, AuthError> {
        let pw = SecretString::from(pw);
        let req = LoginRequest {
            username: &u.name,
            password: &pw,
            second_factor: code,
            source: ip("192.0.2.10"),
        };
        self.a.login(&req, self.now)
    }

    /// Logs in with a fresh TOTP step (moves the clock one step on).
    fn login(&mut self, u: &U) -> SessionToken {
        self.advance(30);
        let c = self.code(u);
        self.try_login(u, PW, &c).unwrap().token
    }

    fn reauth(&mut self, t: &SessionToken, u: &U) -> crate::session::ReauthRecord {
        self.advance(30);
        let c = self.code(u);
        self.a
            .reauthenticate(t, &SecretString::from(PW), &c, ip("192.0.2.10"), self.now)
            .unwrap()
    }

    fn events(&mut self) -> Vec<EventKind> {
        self.a.take_events().into_iter().map(|e| e.kind).collect()
    }
}

fn generic(e: &AuthError) -> String {
    assert!(matches!(e, AuthError::LoginFailed { .. }), "{e:?}");
    e.to_string()
}

/// safeguard: 164.312(d)
#[test]
fn login_with_password_and_totp_and_replay_is_refused() {
    let mut h = H::new();
    let u = h.add("alice", Role::Operator);
    h.events();
    h.advance(30);
    let c = h.code(&u);
    let ok = h.try_login(&u, PW, &c).unwrap();
    assert_eq!(ok.name.as_str(), "alice");
    assert!(!ok.must_change_password);
    assert_eq!(ok.expires, h.now.plus(Duration::from_secs(8 * 3600)));
    let ev = h.events();
    assert!(
        matches!(
            ev.as_slice(),
            [EventKind::LoginSucceeded {
                second_factor: crate::session::SecondFactorKind::Totp,
                ..
            }]
        ),
        "{ev:?}"
    );
    // the same code again, even with the right password
    let e = h.try_login(&u, PW, &c).unwrap_err();
    generic(&e);
    assert!(matches!(
        h.events().as_slice(),
        [EventKind::LoginFailed {
            reason: FailureReason::ReplayedCode,
            ..
        }]
    ));
    // the session works
    let p = h.a.session(&ok.token, Activity::UserAction, h.now).unwrap();
    assert_eq!(p.user, u.id);
}

/// safeguard: 164.312(d)
#[test]
fn every_failure_gives_the_same_answer() {
    let mut h = H::new();
    let u = h.add("bob", Role::Operator);
    let disabled = h.add("carol", Role::Operator);
    h.add("root-admin", Role::Admin);
    let auth = h.console(Privilege::ManageUsers);
    h.a.set_disabled(&auth, disabled.id, true, h.now).unwrap();
    h.advance(30);
    let good = h.code(&u);
    let wrong_code = SecretString::from(if good.expose() == "000000" {
        "111111"
    } else {
        "000000"
    });
    let ghost = U {
        id: u.id,
        name: "nobody".into(),
        totp: u.totp.clone(),
        codes: vec![],
    };
    let dc = h.code(&disabled);
    let answers = [
        h.try_login(&u, "wrong password entirely", &good)
            .unwrap_err(),
        h.try_login(&u, PW, &wrong_code).unwrap_err(),
        h.try_login(&u, "wrong password entirely", &wrong_code)
            .unwrap_err(),
        h.try_login(&ghost, PW, &good).unwrap_err(),
        h.try_login(&disabled, PW, &dc).unwrap_err(),
        h.try_login(
            &U {
                name: "not a name!".into(),
                ..ghost
            },
            PW,
            &good,
        )
        .unwrap_err(),
    ];
    let texts: std::collections::HashSet<String> = answers.iter().map(generic).collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    for a in &answers {
        assert!(matches!(a, AuthError::LoginFailed { delay } if *delay == Duration::from_secs(3)));
    }
    let reasons: Vec<FailureReason> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            EventKind::LoginFailed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            FailureReason::BadPassword,
            FailureReason::BadSecondFactor,
            FailureReason::BadPasswordAndSecondFactor,
            FailureReason::UnknownUser,
            FailureReason::UserDisabled,
            FailureReason::UnknownUser
        ]
    );
}

/// safeguard: 164.312(b), 164.312(d)
#[test]
fn soft_lock_engages_progressively_is_audited_and_lifts() {
    let mut h = H::new();
    let u = h.add("dave", Role::Operator);
    h.events();
    for _ in 0..3 {
        h.advance(1);
        let c = h.code(&u);
        h.try_login(&u, "not the password", &c).unwrap_err();
    }
    assert!(!h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::AccountLocked { .. })));
    h.advance(1);
    let c = h.code(&u);
    h.try_login(&u, "not the password", &c).unwrap_err();
    let locked_until = h.events().into_iter().find_map(|e| match e {
        EventKind::AccountLocked {
            until, failures, ..
        } => Some((until, failures)),
        _ => None,
    });
    let (until, failures) = locked_until.expect("lock engaged");
    assert_eq!(failures, 4);
    assert_eq!(until, h.now.plus(Duration::from_secs(30)));
    // the right credentials are refused while locked, with the same answer
    h.advance(5);
    let c = h.code(&u);
    generic(&h.try_login(&u, PW, &c).unwrap_err());
    assert!(matches!(
        h.events().as_slice(),
        [EventKind::LoginFailed {
            reason: FailureReason::AccountLocked,
            ..
        }]
    ));
    // the lock's end is reported by the housekeeping tick
    h.advance(30);
    h.a.tick(h.now).unwrap();
    assert!(matches!(
        h.events().as_slice(),
        [EventKind::AccountUnlocked {
            reason: UnlockReason::Expired,
            ..
        }]
    ));
    // another failure climbs the ladder (60 s)
    let c = h.code(&u);
    h.try_login(&u, "not the password", &c).unwrap_err();
    assert!(h.events().iter().any(|e| matches!(e, EventKind::AccountLocked { failures: 5, until, .. } if *until == h.now.plus(Duration::from_secs(60)))));
    // an admin lifts it
    h.a.unlock(&h.console(Privilege::ManageUsers), u.id, h.now)
        .unwrap();
    assert!(matches!(
        h.events().as_slice(),
        [EventKind::AccountUnlocked {
            reason: UnlockReason::Admin,
            ..
        }]
    ));
    let t = h.login(&u);
    h.a.session(&t, Activity::UserAction, h.now).unwrap();
    // success reset the ladder: three more free failures
    for _ in 0..3 {
        let c = h.code(&u);
        h.try_login(&u, "nope nope nope", &c).unwrap_err();
    }
    assert!(!h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::AccountLocked { .. })));
}

/// safeguard: 164.312(d)
#[test]
fn rate_limit_per_source_address() {
    let mut h = H::new();
    let u = h.add("erin", Role::Auditor);
    let c = h.code(&u);
    let pw = SecretString::from("x");
    for _ in 0..10 {
        let r = h.a.login(
            &LoginRequest {
                username: "erin",
                password: &pw,
                second_factor: &c,
                source: ip("198.51.100.1"),
            },
            h.now,
        );
        assert!(matches!(r, Err(AuthError::LoginFailed { .. })));
    }
    let r = h.a.login(
        &LoginRequest {
            username: "erin",
            password: &pw,
            second_factor: &c,
            source: ip("198.51.100.1"),
        },
        h.now,
    );
    assert!(matches!(r, Err(AuthError::RateLimited { .. })), "{r:?}");
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::RateLimited { .. })));
    // a different source is not limited (the account lock still applies separately)
    let _ = u;
    h.a.unlock(
        &h.console(Privilege::ManageUsers),
        h.a.store()
            .user_by_name(&crate::ids::UserName::parse("erin").unwrap())
            .unwrap()
            .unwrap()
            .id,
        h.now,
    )
    .unwrap();
    let r = h.a.login(
        &LoginRequest {
            username: "erin",
            password: &pw,
            second_factor: &c,
            source: ip("198.51.100.2"),
        },
        h.now,
    );
    assert!(matches!(r, Err(AuthError::LoginFailed { .. })));
}

/// safeguard: 164.312(a)(2)(iii)
#[test]
fn idle_logoff_polling_does_not_count_and_lifetime_ends_all() {
    let mut cfg = AuthConfig::for_tests();
    cfg.session.idle_timeout = Duration::from_secs(45);
    cfg.session.absolute_lifetime = Duration::from_secs(600);
    let mut h = H::with(cfg);
    let u = h.add("frank", Role::Operator);
    let worker = h.login(&u);
    let poller = h.login(&u);
    h.a.session(&worker, Activity::UserAction, h.now).unwrap();
    h.events();
    // the poller only polls progress; the worker clicks
    h.advance(20);
    h.a.session(&poller, Activity::Poll, h.now).unwrap();
    h.a.session(&worker, Activity::UserAction, h.now).unwrap();
    h.advance(30);
    h.a.session(&worker, Activity::UserAction, h.now).unwrap();
    assert!(matches!(
        h.a.session(&poller, Activity::Poll, h.now),
        Err(AuthError::NotAuthenticated)
    ));
    assert!(h.events().iter().any(|e| matches!(
        e,
        EventKind::SessionEnded {
            reason: SessionEnd::IdleTimeout,
            ..
        }
    )));
    // the active one lives until the absolute lifetime
    loop {
        h.advance(20);
        match h.a.session(&worker, Activity::UserAction, h.now) {
            Ok(_) => continue,
            Err(AuthError::NotAuthenticated) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let ended = h.events().into_iter().find_map(|e| match e {
        EventKind::SessionEnded { reason, .. } => Some(reason),
        _ => None,
    });
    assert_eq!(ended, Some(SessionEnd::LifetimeExpired));
}

/// safeguard: 164.312(a)(2)(iii)
#[test]
fn tick_ends_idle_sessions_without_a_request() {
    let mut h = H::new();
    let u = h.add("gina", Role::Auditor);
    let t = h.login(&u);
    h.events();
    h.advance(599);
    h.a.tick(h.now).unwrap();
    assert!(h.events().is_empty());
    h.advance(1);
    h.a.tick(h.now).unwrap();
    assert!(matches!(
        h.events().as_slice(),
        [EventKind::SessionEnded {
            reason: SessionEnd::IdleTimeout,
            ..
        }]
    ));
    assert!(h.a.session(&t, Activity::UserAction, h.now).is_err());
}

/// safeguard: 164.312(a)(2)(iii)
#[test]
fn idle_timeout_above_15_minutes_is_clamped_with_a_warning() {
    let mut cfg = AuthConfig::for_tests();
    cfg.session.idle_timeout = Duration::from_secs(3600);
    let mut h = H::with(cfg);
    assert_eq!(h.a.config().session.idle_timeout, Duration::from_secs(900));
    let ev = h.a.take_events();
    assert!(
        matches!(ev.as_slice(), [e] if matches!(e.kind, EventKind::ConfigurationWarning { .. }) && e.severity() == crate::Severity::Warning)
    );
}

/// safeguard: 164.312(c)(1), 164.312(d)
#[test]
fn sensitive_actions_need_a_fresh_reauthentication() {
    let mut h = H::new();
    let u = h.add("hana", Role::Operator);
    let t = h.login(&u);
    let r =
        h.a.authorize_session(&t, Activity::UserAction, Privilege::StartWipe, h.now);
    assert!(
        matches!(
            r,
            Err(AuthError::Denied(Refusal {
                reason: DenyReason::FreshAuthRequired { .. },
                ..
            }))
        ),
        "{r:?}"
    );
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::PrivilegeRefused { .. })));
    // a failed re-auth gives the generic answer and counts on the ladder
    h.advance(30);
    let c = h.code(&u);
    let e =
        h.a.reauthenticate(&t, &SecretString::from("wrong"), &c, None, h.now)
            .unwrap_err();
    assert!(matches!(e, AuthError::ReauthFailed { .. }));
    assert_eq!(h.a.store().lock_state(u.id).unwrap().failures, 1);
    let rec = h.reauth(&t, &u);
    let auth =
        h.a.authorize_session(&t, Activity::UserAction, Privilege::StartWipe, h.now)
            .unwrap();
    assert_eq!(auth.reauth(), Some(&rec));
    // the audit entry carries the signature
    let v = serde_json::to_value(&auth).unwrap();
    assert_eq!(v["reauth"]["id"], rec.id.to_string());
    // a successful re-auth also reset the ladder? no: only a login does; the
    // count stays until success at login or the quiet period
    h.advance(300);
    assert!(h
        .a
        .authorize_session(&t, Activity::UserAction, Privilege::StartWipe, h.now)
        .is_ok());
    h.advance(1);
    assert!(h
        .a
        .authorize_session(&t, Activity::UserAction, Privilege::StartWipe, h.now)
        .is_err());
}

/// safeguard: 164.312(a)(1)
#[test]
fn roles_are_enforced_through_sessions() {
    let mut h = H::new();
    let auditor = h.add("ivan", Role::Auditor);
    let operator = h.add("jane", Role::Operator);
    let ta = h.login(&auditor);
    let to = h.login(&operator);
    h.reauth(&ta, &auditor);
    h.reauth(&to, &operator);
    h.events();
    for p in [
        Privilege::StartWipe,
        Privilege::ManageUsers,
        Privilege::ManageKeys,
    ] {
        let r = h.a.authorize_session(&ta, Activity::UserAction, p, h.now);
        assert!(
            matches!(
                r,
                Err(AuthError::Denied(Refusal {
                    reason: DenyReason::NotInRole {
                        role: Role::Auditor
                    },
                    ..
                }))
            ),
            "{p}"
        );
    }
    assert!(h
        .a
        .authorize_session(&ta, Activity::Poll, Privilege::ReadCertificates, h.now)
        .is_ok());
    assert!(matches!(
        h.a.authorize_session(&to, Activity::UserAction, Privilege::ManageUsers, h.now),
        Err(AuthError::Denied(_))
    ));
    assert!(h
        .a
        .authorize_session(&to, Activity::UserAction, Privilege::StartWipe, h.now)
        .is_ok());
    let refusals = h
        .events()
        .iter()
        .filter(|e| matches!(e, EventKind::PrivilegeRefused { .. }))
        .count();
    assert_eq!(refusals, 4);
}

/// safeguard: 164.312(a)(1), 164.312(d)
#[test]
fn one_time_password_restricts_until_changed() {
    let mut h = H::new();
    let auth = h.console(Privilege::ManageUsers);
    let n =
        h.a.add_user(&auth, "kim", Role::Operator, None, h.now)
            .unwrap();
    let otp = n.one_time_password.clone().unwrap();
    assert_eq!(otp.expose().len(), 23);
    let raw = data_encoding::BASE32_NOPAD
        .decode(n.enrolment.secret_base32().expose().as_bytes())
        .unwrap();
    let u = U {
        id: n.id,
        name: "kim".into(),
        totp: TotpSecret::from_bytes(raw),
        codes: vec![],
    };
    h.advance(30);
    let c = h.code(&u);
    let s = h.try_login(&u, otp.expose(), &c).unwrap();
    assert!(s.must_change_password);
    let r =
        h.a.authorize_session(&s.token, Activity::UserAction, Privilege::ReadJobs, h.now);
    assert!(matches!(
        r,
        Err(AuthError::Denied(Refusal {
            reason: DenyReason::PasswordChangeRequired,
            ..
        }))
    ));
    // a weak new password is refused with reasons
    let e =
        h.a.change_own_password(&s.token, &otp, &SecretString::from("kim12345"), h.now)
            .unwrap_err();
    let AuthError::Password(rej) = e else {
        panic!("{e:?}")
    };
    assert!(rej.problems.len() >= 2, "{rej:?}");
    h.a.change_own_password(&s.token, &otp, &SecretString::from(PW), h.now)
        .unwrap();
    assert!(h
        .a
        .authorize_session(&s.token, Activity::UserAction, Privilege::ReadJobs, h.now)
        .is_ok());
}

/// safeguard: 164.312(d)
#[test]
fn recent_passwords_cannot_be_reused() {
    let mut h = H::new();
    let u = h.add("lena", Role::Auditor);
    let t = h.login(&u);
    let e =
        h.a.change_own_password(&t, &SecretString::from(PW), &SecretString::from(PW), h.now)
            .unwrap_err();
    assert!(
        matches!(e, AuthError::Password(ref r) if r.problems == [crate::password::PasswordProblem::RecentlyUsed { history: 5 }]),
        "{e:?}"
    );
    h.a.change_own_password(&t, &SecretString::from(PW), &SecretString::from(PW2), h.now)
        .unwrap();
    let e =
        h.a.change_own_password(&t, &SecretString::from(PW2), &SecretString::from(PW), h.now)
            .unwrap_err();
    assert!(matches!(e, AuthError::Password(_)), "{e:?}");
    let e =
        h.a.change_own_password(
            &t,
            &SecretString::from("wrong current"),
            &SecretString::from("fresh-Meadow-88-otter-Bugle"),
            h.now,
        )
        .unwrap_err();
    assert!(matches!(e, AuthError::WrongCurrentPassword { .. }));
    // history is bounded: after 5 more changes the first is allowed again
    let mut current = PW2.to_owned();
    for i in 0..5 {
        let next = format!("fresh-Meadow-{i}{i}-otter-Bugle-{i}");
        h.a.change_own_password(
            &t,
            &SecretString::from(current.as_str()),
            &SecretString::from(next.as_str()),
            h.now,
        )
        .unwrap();
        current = next;
    }
    h.a.change_own_password(
        &t,
        &SecretString::from(current.as_str()),
        &SecretString::from(PW),
        h.now,
    )
    .unwrap();
}

/// safeguard: 164.312(d)
#[test]
fn weak_hashes_are_rehashed_at_login() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.db");
    let now = Timestamp::from_unix_secs(1_800_000_000);
    let u = {
        let mut h = H {
            a: Authenticator::new(
                SqliteStore::open(&path).unwrap(),
                TestEntropy(2),
                AuthConfig::for_tests(),
                now,
            )
            .unwrap(),
            now,
        };
        h.add("mia", Role::Auditor)
    };
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stronger = crate::password::HashParams {
        memory_kib: 64,
        iterations: 2,
        parallelism: 1,
    };
    let cfg = AuthConfig {
        hash: stronger,
        ..AuthConfig::for_tests()
    };
    let mut h = H {
        a: Authenticator::new(SqliteStore::open(&path).unwrap(), TestEntropy(3), cfg, now).unwrap(),
        now,
    };
    h.login(&u);
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::PasswordRehashed { .. })));
    assert_eq!(
        h.a.store()
            .credentials(u.id)
            .unwrap()
            .unwrap()
            .password
            .params(),
        stronger
    );
    h.login(&u);
    assert!(!h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::PasswordRehashed { .. })));
}

/// safeguard: 164.312(d)
#[test]
fn recovery_codes_work_once_and_a_reset_invalidates_everything() {
    let mut h = H::new();
    let u = h.add("nina", Role::Operator);
    h.add("olga", Role::Admin);
    let s = h
        .try_login(&u, PW, &SecretString::from(u.codes[0].as_str()))
        .unwrap();
    assert_eq!(s.recovery_codes_left, Some(9));
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::RecoveryCodeUsed { remaining: 9, .. })));
    h.advance(1);
    generic(
        &h.try_login(&u, PW, &SecretString::from(u.codes[0].as_str()))
            .unwrap_err(),
    );
    // admin resets the second factor: sessions end, old TOTP and codes are dead
    let (enrol, codes) =
        h.a.reset_second_factor(&h.console(Privilege::ManageUsers), u.id, h.now)
            .unwrap();
    assert!(matches!(
        h.a.session(&s.token, Activity::Poll, h.now),
        Err(AuthError::NotAuthenticated)
    ));
    h.advance(30);
    let old = h.code(&u);
    generic(&h.try_login(&u, PW, &old).unwrap_err());
    generic(
        &h.try_login(&u, PW, &SecretString::from(u.codes[1].as_str()))
            .unwrap_err(),
    );
    let raw = data_encoding::BASE32_NOPAD
        .decode(enrol.secret_base32().expose().as_bytes())
        .unwrap();
    let u2 = U {
        totp: TotpSecret::from_bytes(raw),
        ..u
    };
    h.a.unlock(&h.console(Privilege::ManageUsers), u2.id, h.now)
        .unwrap();
    h.login(&u2);
    h.advance(1);
    h.try_login(&u2, PW, &codes.codes()[3]).unwrap();
    // the user's own regeneration invalidates the admin-issued batch
    let t = h.login(&u2);
    let auth =
        h.a.authorize_session(
            &t,
            Activity::UserAction,
            Privilege::ManageOwnCredentials,
            h.now,
        )
        .unwrap();
    let fresh = h.a.regenerate_recovery_codes(&auth, h.now).unwrap();
    h.advance(1);
    generic(&h.try_login(&u2, PW, &codes.codes()[4]).unwrap_err());
    h.try_login(&u2, PW, &fresh.codes()[0]).unwrap();
}

/// safeguard: 164.312(a)(2)(ii)
#[test]
fn console_recovery_always_restores_the_last_admin() {
    let mut h = H::new();
    let admin = h.add("root-admin", Role::Admin);
    let m = h.console(Privilege::ManageUsers);
    // the API cannot remove the last admin's access
    assert!(matches!(
        h.a.set_disabled(&m, admin.id, true, h.now),
        Err(AuthError::LastAdmin)
    ));
    assert!(matches!(
        h.a.set_role(&m, admin.id, Role::Operator, h.now),
        Err(AuthError::LastAdmin)
    ));
    assert!(matches!(
        h.a.remove_user(&m, admin.id, h.now),
        Err(AuthError::LastAdmin)
    ));
    // lock the admin out completely and lose the phone
    for i in 0..12 {
        h.advance(1800 * u64::from(i > 3));
        let c = h.code(&admin);
        let _ = h.try_login(&admin, "forgotten", &c);
    }
    assert!(h
        .a
        .store()
        .lock_state(admin.id)
        .unwrap()
        .locked_at(h.now)
        .is_some());
    h.events();
    // recovery is console-only
    let t = {
        let other = h.add("pete", Role::Admin);
        let t = h.login(&other);
        h.reauth(&t, &other);
        t
    };
    let api_auth =
        h.a.authorize_session(&t, Activity::UserAction, Privilege::ManageUsers, h.now)
            .unwrap();
    assert!(matches!(
        h.a.recover(&api_auth, "root-admin", h.now),
        Err(AuthError::WrongAuthorization { .. })
    ));
    let kit =
        h.a.recover(&h.console(Privilege::ManageUsers), "root-admin", h.now)
            .unwrap();
    let ev = h.a.take_events();
    let rec = ev
        .iter()
        .find(|e| matches!(e.kind, EventKind::AccountRecovered { .. }))
        .expect("recovered event");
    assert_eq!(rec.severity(), crate::Severity::Alert);
    assert!(ev.iter().any(|e| matches!(
        e.kind,
        EventKind::AccountUnlocked {
            reason: UnlockReason::Recovery,
            ..
        }
    )));
    let raw = data_encoding::BASE32_NOPAD
        .decode(kit.enrolment.secret_base32().expose().as_bytes())
        .unwrap();
    let admin2 = U {
        totp: TotpSecret::from_bytes(raw),
        ..admin
    };
    h.advance(30);
    let c = h.code(&admin2);
    let s = h
        .try_login(&admin2, kit.one_time_password.expose(), &c)
        .unwrap();
    assert!(s.must_change_password);
}

/// safeguard: 164.312(a)(2)(ii)
#[test]
fn recovery_makes_an_admin_when_none_is_left() {
    let mut h = H::new();
    let op = h.add("quinn", Role::Operator);
    let kit =
        h.a.recover(&h.console(Privilege::ManageUsers), "quinn", h.now)
            .unwrap();
    assert_eq!(h.a.store().user(op.id).unwrap().unwrap().role, Role::Admin);
    assert_eq!(kit.name.as_str(), "quinn");
}

/// safeguard: 164.312(a)(1), 164.312(b)
#[test]
fn api_tokens_are_scoped_hashed_audited_and_revocable() {
    let mut h = H::new();
    let op = h.add("rita", Role::Operator);
    let admin = h.add("sam", Role::Admin);
    let t = h.login(&op);
    // creating a token is sensitive: fresh re-auth first
    assert!(h
        .a
        .authorize_session(&t, Activity::UserAction, Privilege::ManageOwnTokens, h.now)
        .is_err());
    h.reauth(&t, &op);
    let auth =
        h.a.authorize_session(&t, Activity::UserAction, Privilege::ManageOwnTokens, h.now)
            .unwrap();
    let e =
        h.a.create_token(
            &auth,
            "too much",
            Role::Admin,
            Duration::from_secs(3600),
            h.now,
        )
        .unwrap_err();
    assert!(matches!(
        e,
        AuthError::TokenRoleTooHigh {
            requested: Role::Admin,
            owner: Role::Operator
        }
    ));
    assert!(matches!(
        h.a.create_token(
            &auth,
            "x",
            Role::Auditor,
            Duration::from_secs(400 * 86400),
            h.now
        ),
        Err(AuthError::TokenLifetime { .. })
    ));
    assert!(matches!(
        h.a.create_token(&auth, " ", Role::Auditor, Duration::from_secs(60), h.now),
        Err(AuthError::BadLabel)
    ));
    let (tid, secret) =
        h.a.create_token(
            &auth,
            "nightly export",
            Role::Operator,
            Duration::from_secs(86400),
            h.now,
        )
        .unwrap();
    h.events();
    // use
    let a =
        h.a.authorize_token(secret.expose(), Privilege::RunBackup, h.now)
            .unwrap();
    assert!(matches!(
        a.actor(),
        crate::authz::Actor::User {
            via: crate::authz::Via::Token { .. },
            ..
        }
    ));
    assert!(matches!(
        h.events().as_slice(),
        [EventKind::TokenUsed {
            allowed: true,
            privilege: Privilege::RunBackup,
            ..
        }]
    ));
    // never sensitive
    assert!(matches!(
        h.a.authorize_token(secret.expose(), Privilege::StartWipe, h.now),
        Err(AuthError::Denied(Refusal {
            reason: DenyReason::NotForTokens,
            ..
        }))
    ));
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::TokenUsed { allowed: false, .. })));
    // the owner is demoted: the token shrinks with them
    let m = h.console(Privilege::ManageUsers);
    h.a.set_role(&m, op.id, Role::Auditor, h.now).unwrap();
    assert!(h
        .a
        .authorize_token(secret.expose(), Privilege::RunBackup, h.now)
        .is_err());
    assert!(h
        .a
        .authorize_token(secret.expose(), Privilege::ReadCertificates, h.now)
        .is_ok());
    // only the hash is stored
    let rec = h.a.store().token(tid).unwrap().unwrap();
    assert_eq!(rec.last_used, Some(h.now));
    // `last_used` moves by the minute, not with every request (each use
    // is an audit event already)
    let first = h.now;
    let used = |h: &mut H| {
        h.a.authorize_token(secret.expose(), Privilege::ReadCertificates, h.now)
            .unwrap();
        h.a.store().token(tid).unwrap().unwrap().last_used
    };
    h.advance(59);
    assert_eq!(used(&mut h), Some(first));
    h.advance(1);
    assert_eq!(used(&mut h), Some(h.now));
    let stored = format!("{rec:?}");
    assert!(!stored.contains(&secret.expose()[39..]));
    // wrong secret, garbage, expiry, revocation
    let mut bad = secret.expose().to_owned();
    bad.replace_range(40..41, if &bad[40..41] == "A" { "B" } else { "A" });
    assert!(h
        .a
        .authorize_token(&bad, Privilege::ReadJobs, h.now)
        .is_err());
    assert!(h
        .a
        .authorize_token("Bearer nonsense", Privilege::ReadJobs, h.now)
        .is_err());
    let rej: Vec<_> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            EventKind::TokenRejected { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        rej,
        [
            crate::token::TokenRejection::WrongSecret,
            crate::token::TokenRejection::Malformed
        ]
    );
    h.advance(86400);
    assert!(h
        .a
        .authorize_token(secret.expose(), Privilege::ReadJobs, h.now)
        .is_err());
    // an admin revokes someone else's token
    let ta = h.login(&admin);
    h.reauth(&ta, &admin);
    let am =
        h.a.authorize_session(&ta, Activity::UserAction, Privilege::ManageUsers, h.now)
            .unwrap();
    h.a.revoke_token(&am, tid, h.now).unwrap();
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::TokenRevoked { .. })));
    assert_eq!(
        h.a.list_tokens(&am, Some(op.id), h.now).unwrap()[0].revoked,
        Some(h.now)
    );
}

/// safeguard: 164.312(a)(1)
#[test]
fn disabled_owner_kills_tokens_and_sessions() {
    let mut h = H::new();
    let op = h.add("tom", Role::Operator);
    h.add("uma", Role::Admin);
    let t = h.login(&op);
    h.reauth(&t, &op);
    let auth =
        h.a.authorize_session(&t, Activity::UserAction, Privilege::ManageOwnTokens, h.now)
            .unwrap();
    let (_, secret) =
        h.a.create_token(
            &auth,
            "monitor",
            Role::Auditor,
            Duration::from_secs(3600),
            h.now,
        )
        .unwrap();
    h.a.set_disabled(&h.console(Privilege::ManageUsers), op.id, true, h.now)
        .unwrap();
    assert!(h
        .a
        .authorize_token(secret.expose(), Privilege::ReadJobs, h.now)
        .is_err());
    assert!(h.a.session(&t, Activity::Poll, h.now).is_err());
    assert!(h.events().iter().any(|e| matches!(
        e,
        EventKind::SessionEnded {
            reason: SessionEnd::UserDisabled,
            ..
        }
    )));
}

/// safeguard: 164.312(a)(2)(ii), 164.312(b)
#[test]
fn break_glass_auto_grant_elevation_expiry_and_review() {
    let mut h = H::new();
    let op = h.add("vera", Role::Operator);
    let admin = h.add("walt", Role::Admin);
    h.a.set_emergency_grant(&h.console(Privilege::ManageUsers), op.id, true, h.now)
        .unwrap();
    let t = h.login(&op);
    let auth =
        h.a.authorize_session(
            &t,
            Activity::UserAction,
            Privilege::RequestEmergencyAccess,
            h.now,
        )
        .unwrap();
    assert!(matches!(
        h.a.request_break_glass(&auth, "  ", h.now),
        Err(AuthError::BreakGlass(_))
    ));
    let id =
        h.a.request_break_glass(&auth, "PACS restore at 3 a.m., no admin reachable", h.now)
            .unwrap();
    assert!(matches!(
        h.a.request_break_glass(&auth, "again", h.now),
        Err(AuthError::BreakGlassAlreadyOpen)
    ));
    let ev = h.a.take_events();
    let req = ev
        .iter()
        .find(|e| matches!(e.kind, EventKind::BreakGlassRequested { .. }))
        .unwrap();
    assert_eq!(req.severity(), crate::Severity::Alert);
    let EventKind::BreakGlassRequested {
        approvers,
        auto_grant_at,
        ..
    } = &req.kind
    else {
        unreachable!()
    };
    assert_eq!(approvers, &vec![admin.id]);
    assert_eq!(*auto_grant_at, h.now.plus(Duration::from_secs(1800)));
    // no elevation yet
    assert!(matches!(
        h.a.enter_elevation(&t, id, h.now),
        Err(AuthError::BreakGlass(_))
    ));
    // nobody answers: granted after the wait (the tick reports it)
    for wait in [300, 300, 300, 300, 300, 299] {
        h.advance(wait);
        h.a.session(&t, Activity::UserAction, h.now).unwrap();
        h.a.tick(h.now).unwrap();
    }
    assert!(!h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::BreakGlassGranted { .. })));
    h.advance(1);
    h.a.tick(h.now).unwrap();
    assert!(h.events().iter().any(|e| matches!(
        e,
        EventKind::BreakGlassGranted {
            by: crate::breakglass::Approval::AutoAfterWait,
            ..
        }
    )));
    let el = h.a.enter_elevation(&t, id, h.now).unwrap();
    assert_eq!(el.until, h.now.plus(Duration::from_secs(3600)));
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::ElevatedSessionStarted { .. })));
    // elevated: admin privileges, every authorisation tagged
    h.reauth(&t, &op);
    let a =
        h.a.authorize_session(&t, Activity::UserAction, Privilege::ManageKeys, h.now)
            .unwrap();
    assert_eq!(a.break_glass(), Some(id));
    let a =
        h.a.authorize_session(&t, Activity::Poll, Privilege::ReadJobs, h.now)
            .unwrap();
    assert_eq!(a.break_glass(), Some(id));
    assert_eq!(
        serde_json::to_value(&a).unwrap()["break_glass"],
        id.to_string()
    );
    // keep the session alive until the box closes
    for _ in 0..12 {
        h.advance(300);
        h.a.session(&t, Activity::UserAction, h.now).unwrap();
    }
    let a =
        h.a.authorize_session(&t, Activity::UserAction, Privilege::ReadJobs, h.now)
            .unwrap();
    assert_eq!(a.break_glass(), None, "expired on time");
    assert!(matches!(
        h.a.authorize_session(
            &t,
            Activity::UserAction,
            Privilege::ManageConfiguration,
            h.now
        ),
        Err(AuthError::Denied(Refusal {
            reason: DenyReason::NotInRole {
                role: Role::Operator
            },
            ..
        }))
    ));
    assert!(h.events().iter().any(|e| matches!(
        e,
        EventKind::BreakGlassEnded {
            reason: crate::breakglass::EndReason::Expired,
            ..
        }
    )));
    // the episode stays open until reviewed, by someone else
    let ta = h.login(&admin);
    let rv =
        h.a.authorize_session(
            &ta,
            Activity::UserAction,
            Privilege::ReviewBreakGlass,
            h.now,
        )
        .unwrap();
    let open = h.a.open_break_glass(&rv, h.now).unwrap();
    assert!(matches!(open.as_slice(), [r] if matches!(r.state, BreakGlassState::Ended { .. })));
    h.a.review_break_glass(&rv, id, "Restore verified; keys untouched.", h.now)
        .unwrap();
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::BreakGlassReviewed { .. })));
    assert!(h.a.open_break_glass(&rv, h.now).unwrap().is_empty());
}

/// safeguard: 164.312(a)(2)(ii)
#[test]
fn break_glass_approval_denial_and_approver_list() {
    let mut cfg = AuthConfig::for_tests();
    cfg.break_glass.approvers = vec![crate::ids::UserName::parse("yara").unwrap()];
    let mut h = H::with(cfg);
    let op = h.add("xena", Role::Operator);
    let yara = h.add("yara", Role::Admin);
    let zed = h.add("zed", Role::Admin);
    h.a.set_emergency_grant(&h.console(Privilege::ManageUsers), op.id, true, h.now)
        .unwrap();
    let t = h.login(&op);
    let auth =
        h.a.authorize_session(
            &t,
            Activity::UserAction,
            Privilege::RequestEmergencyAccess,
            h.now,
        )
        .unwrap();
    let id =
        h.a.request_break_glass(&auth, "ransomware triage", h.now)
            .unwrap();
    // zed is an admin but not a configured approver
    let tz = h.login(&zed);
    h.reauth(&tz, &zed);
    let az =
        h.a.authorize_session(
            &tz,
            Activity::UserAction,
            Privilege::ApproveBreakGlass,
            h.now,
        )
        .unwrap();
    assert!(matches!(
        h.a.approve_break_glass(&az, id, h.now),
        Err(AuthError::NotAnApprover)
    ));
    let ty = h.login(&yara);
    h.reauth(&ty, &yara);
    let ay =
        h.a.authorize_session(
            &ty,
            Activity::UserAction,
            Privilege::ApproveBreakGlass,
            h.now,
        )
        .unwrap();
    h.a.deny_break_glass(&ay, id, h.now).unwrap();
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::BreakGlassDenied { .. })));
    assert!(matches!(
        h.a.enter_elevation(&t, id, h.now),
        Err(AuthError::BreakGlass(_))
    ));
    // a second request, approved at once
    h.advance(10);
    let auth =
        h.a.authorize_session(
            &t,
            Activity::UserAction,
            Privilege::RequestEmergencyAccess,
            h.now,
        )
        .unwrap();
    let id2 = h.a.request_break_glass(&auth, "second try", h.now).unwrap();
    let ay =
        h.a.authorize_session(
            &ty,
            Activity::UserAction,
            Privilege::ApproveBreakGlass,
            h.now,
        )
        .unwrap();
    h.a.approve_break_glass(&ay, id2, h.now).unwrap();
    h.a.enter_elevation(&t, id2, h.now).unwrap();
    // ended early by the requester
    let own =
        h.a.authorize_session(&t, Activity::UserAction, Privilege::OwnSession, h.now)
            .unwrap();
    h.a.end_break_glass(&own, id2, h.now).unwrap();
    let p = h.a.session(&t, Activity::UserAction, h.now).unwrap();
    assert!(p.elevation.is_none());
    // the requester cannot review their own episode
    let e =
        h.a.review_break_glass(&h.console(Privilege::ReviewBreakGlass), id2, "x", h.now)
            .unwrap_err();
    assert!(
        matches!(e, AuthError::NoSuchUser),
        "console has no user id: {e:?}"
    );
}

/// safeguard: rule:secrets-in-worker
#[test]
fn no_secret_reaches_debug_or_events() {
    let mut h = H::new();
    let auth = h.console(Privilege::ManageUsers);
    let n =
        h.a.add_user(&auth, "amy", Role::Admin, None, h.now)
            .unwrap();
    let otp = n.one_time_password.clone().unwrap();
    let b32 = n.enrolment.secret_base32().expose().to_owned();
    let codes: Vec<String> = n
        .recovery_codes
        .codes()
        .iter()
        .map(|c| c.expose().to_owned())
        .collect();
    let debug = format!("{n:?} {h:?}", h = h.a);
    assert!(
        !debug.contains(&b32) && !debug.contains(otp.expose()),
        "{debug}"
    );
    for c in &codes {
        assert!(!debug.contains(c.as_str()));
    }
    let creds = h.a.store().credentials(n.id).unwrap().unwrap();
    let cd = format!("{creds:?}");
    assert!(!cd.contains("argon2") && !cd.contains(&b32), "{cd}");
    // run a full flow and check every event's JSON
    let raw = data_encoding::BASE32_NOPAD.decode(b32.as_bytes()).unwrap();
    let u = U {
        id: n.id,
        name: "amy".into(),
        totp: TotpSecret::from_bytes(raw),
        codes,
    };
    h.advance(30);
    let c = h.code(&u);
    let s = h.try_login(&u, otp.expose(), &c).unwrap();
    let _ = h.try_login(&u, "typo", &c);
    h.a.change_own_password(&s.token, &otp, &SecretString::from(PW), h.now)
        .unwrap();
    let json = serde_json::to_string(&h.a.take_events()).unwrap();
    for secret in [
        otp.expose(),
        PW,
        c.expose(),
        s.token.expose(),
        &b32,
        "typo",
        "$argon2",
    ] {
        assert!(!json.contains(secret), "{secret} leaked: {json}");
    }
    assert!(format!("{:?}", s.token) == "SessionToken(<redacted>)");
}

/// safeguard: 164.312(d)
#[test]
fn badlist_additions_apply_at_change_and_at_login() {
    let mut h = H::new();
    let u = h.add("bea", Role::Operator);
    let cfg = h.console(Privilege::ManageConfiguration);
    assert_eq!(
        h.a.extend_badlist(&cfg, &[PW.to_uppercase(), " ".into(), PW.to_owned()], h.now)
            .unwrap(),
        1
    );
    assert!(matches!(
        h.a.extend_badlist(&h.console(Privilege::ManageUsers), &[], h.now),
        Err(AuthError::WrongAuthorization { .. })
    ));
    // at the next login the now-breached password must be changed
    h.advance(30);
    let c = h.code(&u);
    let s = h.try_login(&u, PW, &c).unwrap();
    assert!(s.must_change_password);
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, EventKind::PasswordOnBadlistAtLogin { .. })));
    // the list is append-only in the store
    assert!(h
        .a
        .store()
        .conn()
        .execute("DELETE FROM badlist", [])
        .is_err());
    assert!(h
        .a
        .store()
        .conn()
        .execute("UPDATE badlist SET word = 'x'", [])
        .is_err());
    assert_eq!(h.a.store().badlist().unwrap().len(), 1);
}

/// safeguard: 164.312(a)(2)(iii)
#[test]
fn logout_and_logout_everywhere() {
    let mut h = H::new();
    let u = h.add("cleo", Role::Auditor);
    let a = h.login(&u);
    let b = h.login(&u);
    let c = h.login(&u);
    h.a.logout(&a, h.now).unwrap();
    assert!(h.a.session(&a, Activity::Poll, h.now).is_err());
    assert!(matches!(
        h.a.logout(&a, h.now),
        Err(AuthError::NotAuthenticated)
    ));
    let own =
        h.a.authorize_session(&b, Activity::UserAction, Privilege::OwnSession, h.now)
            .unwrap();
    assert_eq!(h.a.logout_everywhere(&own, None, h.now).unwrap(), 2);
    assert!(h.a.session(&b, Activity::Poll, h.now).is_err());
    assert!(h.a.session(&c, Activity::Poll, h.now).is_err());
    let reasons: Vec<SessionEnd> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            EventKind::SessionEnded { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            SessionEnd::Logout,
            SessionEnd::LogoutEverywhere,
            SessionEnd::LogoutEverywhere
        ]
    );
}

/// safeguard: 164.312(a)(2)(i), 164.312(b)
#[test]
fn user_management_events_and_listing() {
    let mut h = H::new();
    let m = h.console(Privilege::ManageUsers);
    let a = h.add("dora", Role::Admin);
    let o = h.add("eli", Role::Operator);
    assert!(matches!(
        h.a.add_user(
            &m,
            "ELI",
            Role::Auditor,
            Some(&SecretString::from(PW)),
            h.now
        ),
        Err(AuthError::NameTaken(_))
    ));
    assert!(matches!(
        h.a.add_user(&m, "9lives", Role::Auditor, None, h.now),
        Err(AuthError::Name(_))
    ));
    h.a.set_role(&m, o.id, Role::Auditor, h.now).unwrap();
    h.a.set_disabled(&m, o.id, true, h.now).unwrap();
    h.a.set_disabled(&m, o.id, false, h.now).unwrap();
    let list = h.a.list_users(&m, h.now).unwrap();
    assert_eq!(
        list.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["dora", "eli"]
    );
    assert_eq!(list[1].role, Role::Auditor);
    assert_eq!(list[0].recovery_codes_left, 10);
    h.a.remove_user(&m, o.id, h.now).unwrap();
    assert!(h.a.store().user(o.id).unwrap().is_none());
    assert!(h.a.store().credentials(o.id).unwrap().is_none());
    let names: Vec<String> = h.a.take_events().iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            "user_added",
            "user_added",
            "role_changed",
            "user_disabled",
            "user_enabled",
            "user_removed"
        ]
    );
    // a stale or wrong authorization is refused
    h.advance(61);
    assert!(matches!(
        h.a.set_role(&m, a.id, Role::Admin, h.now),
        Err(AuthError::StaleAuthorization { .. })
    ));
    let r = h.console(Privilege::ReadJobs);
    assert!(matches!(
        h.a.list_users(&r, h.now),
        Err(AuthError::WrongAuthorization { .. })
    ));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Good(u64),
        BadPassword(u64),
        BadCode(u64),
        Tick(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u64..400).prop_map(Step::Good),
            (0u64..400).prop_map(Step::BadPassword),
            (0u64..400).prop_map(Step::BadCode),
            (0u64..4000).prop_map(Step::Tick),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever the sequence: never a session while locked, every lock
        /// engagement is an event, locks never exceed the maximum, and a
        /// successful login always resets the ladder.
        /// safeguard: 164.312(d)
        #[test]
        fn soft_lock_ladder_through_the_authenticator(steps in proptest::collection::vec(step(), 1..25)) {
            let mut h = H::new();
            let u = h.add("prop", Role::Operator);
            let max = h.a.config().lockout.max;
            h.events();
            for s in steps {
                let (dt, pw, good_code) = match s {
                    Step::Good(d) => (d, PW, true),
                    Step::BadPassword(d) => (d, "wrong wrong", true),
                    Step::BadCode(d) => (d, PW, false),
                    Step::Tick(d) => { h.advance(d); h.a.tick(h.now).unwrap(); continue; }
                };
                h.advance(dt.max(30)); // a fresh TOTP step per attempt
                let locked = h.a.store().lock_state(u.id).unwrap().locked_at(h.now);
                let c = if good_code { h.code(&u) } else { SecretString::from("000000") };
                let r = h.try_login(&u, pw, &c);
                let correct = pw == PW && (good_code || h.code(&u).expose() == "000000");
                if locked.is_some() {
                    prop_assert!(r.is_err(), "logged in while locked");
                } else if correct {
                    prop_assert!(r.is_ok());
                    prop_assert_eq!(h.a.store().lock_state(u.id).unwrap(), crate::lockout::LockState::default());
                } else {
                    prop_assert!(r.is_err());
                }
                for e in h.events() {
                    if let EventKind::AccountLocked { until, .. } = e {
                        prop_assert!(until.since(h.now) <= max);
                    }
                }
            }
        }
    }
}

#[test]
fn configuration_parses_from_text_with_defaults() {
    let cfg: AuthConfig = serde_json::from_str(
        r#"{
            "issuer": "Lethe st-mungo-01",
            "session": { "idle_timeout": "30s" },
            "hash": { "memory_kib": 65536, "iterations": 4, "parallelism": 1 },
            "break_glass": { "auto_grant_after": "15m", "approvers": ["Alice"] },
            "failure_delay": "2s"
        }"#,
    )
    .unwrap();
    assert_eq!(cfg.session.idle_timeout, Duration::from_secs(30));
    assert_eq!(cfg.session.absolute_lifetime, Duration::from_secs(8 * 3600));
    assert_eq!(cfg.break_glass.approvers[0].as_str(), "alice");
    assert_eq!(cfg.break_glass.duration, Duration::from_secs(3600));
    assert_eq!(cfg.failure_delay, Duration::from_secs(2));
    assert_eq!(cfg.password, crate::password::PasswordPolicy::default());
    assert!(
        serde_json::from_str::<AuthConfig>(r#"{"sesion": {}}"#).is_err(),
        "typos are refused"
    );
    let bad = AuthConfig {
        totp: crate::totp::TotpParams {
            digits: 4,
            ..Default::default()
        },
        ..AuthConfig::for_tests()
    };
    assert!(matches!(bad.normalized(), Err(AuthError::Config(_))));
}
