//! The identity service in the worker: the `lethe-auth` authenticator over
//! its SQLite store in the state directory (`auth.db`, `0600`, root only),
//! its configuration from `[auth]`, `[session]` and `[breakglass]`, and the
//! path of its events into the audit log and the alert channels.
//!
//! One authenticator sits behind one mutex: calls are short (an Argon2
//! verification is the longest, ~0.5 s) and serialising them is what makes
//! "a TOTP step is accepted once" hold under concurrent logins. Calls run on
//! the blocking pool, never on the async workers.

use lethe_audit::{
    Action, AuditTime, Detail, Entity, Entry, Outcome, RecordId, Source, TagKind, Token, UserId,
};
use lethe_auth::events::{AuthEvent, EventKind, Severity};
use lethe_auth::{AuthConfig, Authenticator, OsEntropy, SqliteStore, Timestamp};
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;

/// The file of the identity store in the state directory.
pub const AUTH_DB: &str = "auth.db";

/// The authenticator the worker owns.
pub type Auth = Authenticator<SqliteStore, OsEntropy>;

/// The identity service.
pub struct Identity {
    auth: Mutex<Auth>,
}

/// The identity configuration from the appliance configuration.
pub fn auth_config(cfg: &lethe_config::Config, issuer: &str) -> AuthConfig {
    let mut a = AuthConfig {
        issuer: format!("Lethe {issuer}"),
        ..AuthConfig::default()
    };
    a.hash.memory_kib = cfg.auth.argon2.memory_kib;
    a.hash.iterations = cfg.auth.argon2.iterations;
    a.hash.parallelism = cfg.auth.argon2.parallelism;
    a.password.min_length = cfg.auth.password.min_length as usize;
    a.password.min_score = cfg.auth.password.min_score;
    a.password.history = cfg.auth.password.history as usize;
    a.session.idle_timeout = cfg.session.idle_timeout;
    a.session.absolute_lifetime = cfg.session.absolute_lifetime;
    a.break_glass.auto_grant_after = cfg.breakglass.wait;
    a.break_glass.duration = cfg.breakglass.lifetime;
    a.break_glass.approvers = cfg
        .breakglass
        .approvers
        .iter()
        .filter_map(|l| lethe_auth::UserName::parse(l.as_str()).ok())
        .collect();
    a
}

impl Identity {
    /// Open (creating) the store under `state_dir` with `config`; the
    /// site's extra refused passwords (`deny_list`) are added to the
    /// shipped breached list.
    pub fn open(
        state_dir: &Path,
        config: AuthConfig,
        deny_list: Option<&Path>,
    ) -> Result<Identity, String> {
        let store = SqliteStore::open(&state_dir.join(AUTH_DB)).map_err(|e| e.to_string())?;
        let now = Timestamp::now();
        let mut auth =
            Authenticator::new(store, OsEntropy, config, now).map_err(|e| e.to_string())?;
        if let Some(path) = deny_list {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("the password deny list {}: {e}", path.display()))?;
            let words: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect();
            let console =
                lethe_auth::Authorization::console(lethe_auth::Privilege::ManageConfiguration, now);
            auth.extend_badlist(&console, &words, now)
                .map_err(|e| e.to_string())?;
        }
        Ok(Identity {
            auth: Mutex::new(auth),
        })
    }

    /// Run `f` on the authenticator and hand back its queued events too.
    pub fn with<T>(&self, f: impl FnOnce(&mut Auth) -> T) -> (T, Vec<AuthEvent>) {
        let mut a = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut a);
        let events = a.take_events();
        (out, events)
    }
}

/// The audit action of an event (none: not audited, e.g. a configuration
/// warning, which goes to the operational log).
fn action_of(k: &EventKind) -> Option<(Action, Entity, Outcome)> {
    use EventKind::*;
    Some(match k {
        LoginSucceeded { .. } => (Action::Login, Entity::Session, Outcome::Success),
        LoginFailed { .. } => (Action::LoginFailed, Entity::User, Outcome::Failure),
        RateLimited { .. } => (Action::LoginFailed, Entity::User, Outcome::Refused),
        AccountLocked { .. } => (Action::AccountLocked, Entity::User, Outcome::Success),
        AccountUnlocked { .. } => (Action::AccountUnlocked, Entity::User, Outcome::Success),
        SessionEnded { reason, .. } => {
            let expired = matches!(
                reason,
                lethe_auth::session::SessionEnd::IdleTimeout
                    | lethe_auth::session::SessionEnd::LifetimeExpired
            );
            (
                if expired {
                    Action::SessionExpired
                } else {
                    Action::Logout
                },
                Entity::Session,
                Outcome::Success,
            )
        }
        Reauthenticated { .. } => (Action::Reauthenticated, Entity::Session, Outcome::Success),
        ReauthFailed { .. } => (Action::Reauthenticated, Entity::Session, Outcome::Failure),
        PrivilegeRefused { .. } => (Action::PermissionRefused, Entity::User, Outcome::Refused),
        TokenCreated { .. } => (Action::TokenCreated, Entity::User, Outcome::Success),
        TokenRevoked { .. } => (Action::TokenRevoked, Entity::User, Outcome::Success),
        TokenUsed { allowed, .. } => (
            Action::TokenUsed,
            Entity::User,
            if *allowed {
                Outcome::Success
            } else {
                Outcome::Refused
            },
        ),
        TokenRejected { .. } => (Action::TokenUsed, Entity::User, Outcome::Refused),
        UserAdded { .. } => (Action::UserCreated, Entity::User, Outcome::Success),
        UserRemoved { .. } => (Action::UserDeleted, Entity::User, Outcome::Success),
        PasswordRehashed { .. }
        | PasswordChanged { .. }
        | PasswordOnBadlistAtLogin { .. }
        | RecoveryCodeUsed { .. }
        | RecoveryCodesRegenerated { .. }
        | SecondFactorReset { .. }
        | UserDisabled { .. }
        | UserEnabled { .. }
        | RoleChanged { .. }
        | EmergencyGrantChanged { .. }
        | BadlistExtended { .. } => (Action::UserChanged, Entity::User, Outcome::Success),
        AccountRecovered { .. } => (Action::UserRecovered, Entity::User, Outcome::Success),
        BreakGlassRequested { .. } => (Action::BreakGlassRequested, Entity::User, Outcome::Success),
        BreakGlassGranted { .. } | ElevatedSessionStarted { .. } => {
            (Action::BreakGlassStarted, Entity::User, Outcome::Success)
        }
        BreakGlassDenied { .. } | BreakGlassCancelled { .. } => {
            (Action::BreakGlassDecided, Entity::User, Outcome::Refused)
        }
        BreakGlassEnded { .. } => (Action::BreakGlassEnded, Entity::User, Outcome::Success),
        BreakGlassReviewed { .. } => (Action::BreakGlassReviewed, Entity::User, Outcome::Success),
        ConfigurationWarning { .. } => return None,
    })
}

/// Detail keys the audit log accepts from identity events (keys are
/// `&'static str` by design: nothing a client typed becomes a key).
const KEYS: &[&str] = &[
    "event",
    "user",
    "name",
    "session",
    "source",
    "second_factor",
    "change_required",
    "reason",
    "until",
    "failures",
    "by",
    "one_time",
    "remaining",
    "record",
    "privilege",
    "token",
    "owner",
    "role",
    "expires",
    "allowed",
    "from",
    "to",
    "granted",
    "request",
    "requester",
    "approvers",
    "auto_grant_at",
    "reviewer",
    "actor",
    "added",
    "id",
    "at",
    "kind",
    "window",
    "scope",
    "owner_role",
    "via",
    "approver",
];

/// The audit key of an event's field. The audit log refuses keys that
/// name secrets (`password`, `totp`...), so fields named after them are
/// renamed here; their values are never secrets.
fn key(k: &str) -> Option<&'static str> {
    let k = match k {
        "must_change_password" => "change_required",
        k => k,
    };
    KEYS.iter().copied().find(|x| *x == k)
}

/// A JSON value as audit detail: tokens stay, numbers and flags stay,
/// free text becomes its SHA-256 (a break-glass reason may name a patient).
fn detail_of(map: &serde_json::Map<String, Value>, free_text: &[&str]) -> Detail {
    let mut d = Detail::new();
    for (k, v) in map {
        let Some(k) = key(k) else { continue };
        d = match v {
            Value::Bool(b) => d.flag(k, *b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => d.count(k, u),
                (None, Some(i)) => d.int(k, i),
                _ => d,
            },
            Value::String(s) if free_text.contains(&k) => {
                let h: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(s.as_bytes()).into();
                d.digest(k, &h)
            }
            Value::String(s) => match Token::new(s.clone()) {
                Ok(t) => d.token(k, &t),
                Err(_) => {
                    let h: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(s.as_bytes()).into();
                    d.digest(k, &h)
                }
            },
            Value::Object(o) => d.object(k, detail_of(o, free_text)),
            Value::Array(a) => d.count(k, a.len() as u64),
            Value::Null => d,
        };
    }
    d
}

/// The fields of an event that a person typed freely.
fn free_text(k: &EventKind) -> &'static [&'static str] {
    match k {
        EventKind::BreakGlassRequested { .. } => &["reason"],
        _ => &[],
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// The audit entry of one identity event, from `source`.
pub fn entry_of(ev: &AuthEvent, source: Source) -> Option<Entry> {
    let (action, entity, outcome) = action_of(&ev.kind)?;
    let v = serde_json::to_value(ev).ok()?;
    let map = v.as_object()?;
    // Who acted: the `by` actor, else the user the event is about, else
    // an anonymous client (a failed login with an unknown name).
    let actor = match v.get("by") {
        Some(by) if str_at(by, &["kind"]) == Some("console") => "root".to_string(),
        Some(by) => str_at(by, &["user"])
            .or_else(|| by.as_str())
            .unwrap_or("anonymous")
            .to_string(),
        None => str_at(&v, &["user"])
            .or_else(|| str_at(&v, &["requester"]))
            .or_else(|| str_at(&v, &["actor", "user"]))
            .or_else(|| str_at(&v, &["record", "user"]))
            .or_else(|| str_at(&v, &["owner"]))
            .unwrap_or("anonymous")
            .to_string(),
    };
    let record = str_at(&v, &["session"])
        .filter(|_| entity == Entity::Session)
        .or_else(|| str_at(&v, &["record", "session"]))
        .or_else(|| str_at(&v, &["user"]))
        .or_else(|| str_at(&v, &["requester"]))
        .or_else(|| str_at(&v, &["actor", "user"]))
        .or_else(|| str_at(&v, &["owner"]))
        .or_else(|| str_at(&v, &["source"]))
        .unwrap_or("unknown")
        .to_string();
    let entity = if record == "unknown" || str_at(&v, &["source"]) == Some(record.as_str()) {
        Entity::User
    } else {
        entity
    };
    let secs = (ev.at.unix_ms() / 1000) as i64;
    let mut e = Entry::new(
        AuditTime::from_unix(secs).ok()?,
        source,
        UserId::new(actor).unwrap_or_else(|_| UserId::daemon()),
        action,
        entity,
        RecordId::new(record).ok()?,
        outcome,
    )
    .with_detail(detail_of(map, free_text(&ev.kind)).label(
        "severity",
        match ev.severity() {
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Alert => "alert",
        },
    ));
    // Every action under a break-glass elevation, and re-authentications,
    // carry their records as tags.
    if let Some(r) = str_at(&v, &["request"]).and_then(|s| Token::new(s).ok()) {
        e = e.with_tag(TagKind::BreakGlass, r);
    }
    if let Some(r) = str_at(&v, &["record", "id"]).and_then(|s| Token::new(s).ok()) {
        e = e.with_tag(TagKind::Reauth, r);
    }
    if let Some(s) = str_at(&v, &["session"])
        .or_else(|| str_at(&v, &["actor", "session"]))
        .and_then(|s| Token::new(s).ok())
    {
        e = e.with_tag(TagKind::Session, s);
    }
    Some(e)
}

/// The alert an identity event raises, if any: locks and their lifting,
/// console recovery, and every step of break-glass. Names and ids only:
/// the requester's reason never leaves the appliance.
pub fn alert_of(
    ev: &AuthEvent,
    name_of: impl Fn(lethe_auth::UserId) -> String,
) -> Option<lethe_alert::AlertKind> {
    use lethe_alert::{AlertKind, Grant, Label, Timestamp as T, Unlock};
    let l = |s: String| Label::new(s).ok();
    let t = |ts: Timestamp| T::from_unix(ts.unix_ms() / 1000);
    Some(match &ev.kind {
        EventKind::AccountLocked {
            name,
            until,
            failures,
            ..
        } => AlertKind::AccountLocked {
            user: l(name.to_string())?,
            failures: *failures,
            until: Some(t(*until)),
        },
        EventKind::AccountUnlocked { name, reason, .. } => AlertKind::AccountUnlocked {
            user: l(name.to_string())?,
            by: match reason {
                lethe_auth::events::UnlockReason::Expired => Unlock::Expired,
                lethe_auth::events::UnlockReason::Admin => Unlock::Admin {
                    admin: l("admin".into())?,
                },
                lethe_auth::events::UnlockReason::Recovery => Unlock::Recovery,
            },
        },
        EventKind::AccountRecovered { name, .. } => AlertKind::AccountUnlocked {
            user: l(name.to_string())?,
            by: Unlock::Recovery,
        },
        EventKind::BreakGlassRequested {
            request,
            name,
            auto_grant_at,
            ..
        } => AlertKind::BreakGlassRequested {
            request: l(request.to_string())?,
            user: l(name.to_string())?,
            grant_at: t(*auto_grant_at),
        },
        EventKind::BreakGlassGranted {
            request,
            requester,
            by,
            until,
        } => AlertKind::BreakGlassGranted {
            request: l(request.to_string())?,
            user: l(name_of(*requester))?,
            by: match by {
                lethe_auth::breakglass::Approval::Approver(u) => Grant::Approved {
                    approver: l(name_of(*u))?,
                },
                _ => Grant::WaitElapsed,
            },
            until: t(*until),
        },
        EventKind::BreakGlassDenied {
            request,
            requester,
            by,
        } => AlertKind::BreakGlassDenied {
            request: l(request.to_string())?,
            user: l(name_of(*requester))?,
            approver: l(name_of(*by))?,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lethe_auth::ids::{SessionId, UserName};

    fn uid() -> lethe_auth::UserId {
        lethe_auth::UserId::parse("6f1c2f0e-8b1a-4c1e-9c1a-0d1e2f3a4b5c").unwrap()
    }

    #[test]
    fn a_login_is_audited_against_its_session_without_secrets() {
        let ev = AuthEvent {
            at: Timestamp::from_unix_secs(1_800_000_000),
            kind: EventKind::LoginSucceeded {
                user: uid(),
                name: UserName::parse("alice").unwrap(),
                session: SessionId::parse("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d").unwrap(),
                source: Some("192.0.2.7".parse().unwrap()),
                second_factor: lethe_auth::session::SecondFactorKind::Totp,
                must_change_password: false,
            },
        };
        let e = entry_of(&ev, Source::Api).unwrap();
        assert_eq!(e.action, Action::Login);
        assert_eq!(e.entity, Entity::Session);
        assert_eq!(e.user_id.as_str(), uid().to_string());
        assert_eq!(e.record_id.as_str(), "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
        let d = e.detail.as_json();
        assert_eq!(d["source"], "192.0.2.7");
        assert_eq!(d["name"], "alice");
        assert_eq!(d["severity"], "info");
        assert_eq!(d["change_required"], false);
        // The audit log would refuse the entry otherwise (and the login
        // would go unrecorded).
        assert!(e.detail.problem().is_none(), "{:?}", e.detail.problem());
    }

    #[test]
    fn every_detail_key_is_one_the_audit_log_accepts() {
        for k in KEYS {
            let d = Detail::new().flag(k, true);
            assert!(d.problem().is_none(), "{k}: {:?}", d.problem());
        }
    }

    #[test]
    fn a_break_glass_reason_is_kept_only_as_a_digest() {
        let ev = AuthEvent {
            at: Timestamp::from_unix_secs(1_800_000_000),
            kind: EventKind::BreakGlassRequested {
                request: lethe_auth::BreakGlassId::parse("1a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
                    .unwrap(),
                requester: uid(),
                name: UserName::parse("bob").unwrap(),
                reason: "patient Jane Doe's scans are needed now".into(),
                approvers: vec![],
                auto_grant_at: Timestamp::from_unix_secs(1_800_001_800),
            },
        };
        let e = entry_of(&ev, Source::Api).unwrap();
        assert_eq!(e.action, Action::BreakGlassRequested);
        let text = serde_json::to_string(e.detail.as_json()).unwrap();
        assert!(!text.contains("Jane"), "{text}");
        assert_eq!(e.detail.as_json()["reason"].as_str().unwrap().len(), 64);
        assert_eq!(
            e.tags.get(&TagKind::BreakGlass).unwrap().as_str(),
            "1a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
        );
    }

    #[test]
    fn a_failed_login_for_an_unknown_name_is_anonymous() {
        let ev = AuthEvent {
            at: Timestamp::from_unix_secs(1_800_000_000),
            kind: EventKind::LoginFailed {
                user: None,
                source: Some("192.0.2.7".parse().unwrap()),
                reason: lethe_auth::events::FailureReason::UnknownUser,
            },
        };
        let e = entry_of(&ev, Source::Api).unwrap();
        assert_eq!(e.user_id.as_str(), "anonymous");
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.detail.as_json()["reason"], "unknown_user");
    }
}
