//! The closed vocabularies of an entry: actions, entities, sources, outcomes
//! and tag kinds.
//!
//! Writers pick a variant; they cannot spell a name of their own. Readers
//! accept any well-formed name, so a log written by a newer Lethe (with
//! actions this build does not know) still verifies: an unknown name decodes
//! as `Unrecognised`, which only the decoder can construct. Adding a name is
//! adding a variant here and a line to the table in `docs/audit-log.md`;
//! renaming one is a format change (the name is part of the signed leaf).

use std::fmt;

/// A well-formed name this build does not know. Only the leaf decoder makes
/// one, so writers cannot smuggle free text in through it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unrecognised(String);

impl Unrecognised {
    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `[a-z][a-z0-9_]*` segments joined by `.`, at most 64 bytes.
pub(crate) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('.').all(|seg| {
            let mut b = seg.bytes();
            b.next().is_some_and(|c| c.is_ascii_lowercase())
                && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        })
}

macro_rules! names {
    (
        $(#[$m:meta])*
        pub enum $name:ident {
            $( $(#[$vm:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vm])* $variant, )*
            /// A well-formed name this build does not know (decoded only).
            Unrecognised(Unrecognised),
        }

        impl $name {
            /// Every variant this build knows, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The name as written in the leaf.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Unrecognised(u) => u.as_str(),
                }
            }

            /// A known name, or `None`.
            pub fn from_name(s: &str) -> Option<Self> {
                match s {
                    $( $text => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// A known name, or an unrecognised but well-formed one.
            pub(crate) fn decode(s: &str) -> Option<Self> {
                Self::from_name(s).or_else(|| {
                    is_name(s).then(|| $name::Unrecognised(Unrecognised(s.to_owned())))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names! {
    /// What happened. Issue 11 lists the appliance's actions; issue 12 adds
    /// the session and account ones.
    pub enum Action {
        /// A wipe, purge or degauss job started (or was resumed).
        JobStarted = "job.started",
        /// A job reached its end (the outcome says how).
        JobEnded = "job.ended",
        /// A job was found interrupted (crash, power loss, drive pulled).
        JobInterrupted = "job.interrupted",
        /// A job was resumed from its checkpoint.
        JobResumed = "job.resumed",
        /// A device was refused (protected, in use, blocked bridge...).
        DeviceRefused = "device.refused",
        /// A certificate of sanitization was signed and stored.
        CertificateIssued = "certificate.issued",
        /// A certificate was viewed or downloaded.
        CertificateViewed = "certificate.viewed",
        /// A backup ran.
        BackupRun = "backup.run",
        /// A restore ran.
        RestoreRun = "backup.restore",
        /// A restore drill ran.
        DrillRun = "backup.drill",
        /// Retention removed snapshots.
        BackupPruned = "backup.prune",
        /// A key was created (signing key, backup key, recovery key).
        KeyCreated = "key.created",
        /// A key was rotated.
        KeyRotated = "key.rotated",
        /// A key (or its recovery form) was exported.
        KeyExported = "key.exported",
        /// A key was destroyed.
        KeyDestroyed = "key.destroyed",
        /// The configuration changed.
        ConfigChanged = "config.changed",
        /// The daemon started.
        DaemonStarted = "daemon.started",
        /// The daemon stopped.
        DaemonStopped = "daemon.stopped",
        /// An alert was sent (or failed to send).
        AlertSent = "alert.sent",
        /// The audit log was exported.
        AuditExported = "audit.exported",
        /// Someone logged in.
        Login = "session.login",
        /// A login failed.
        LoginFailed = "session.login_failed",
        /// Someone logged out.
        Logout = "session.logout",
        /// A session ended by idle or absolute timeout.
        SessionExpired = "session.expired",
        /// A user re-authenticated for a privileged action.
        Reauthenticated = "session.reauthenticated",
        /// A request was refused for lack of permission.
        PermissionRefused = "access.denied",
        /// An account was locked after failed logins.
        AccountLocked = "account.locked",
        /// An account was unlocked.
        AccountUnlocked = "account.unlocked",
        /// A user was created.
        UserCreated = "user.created",
        /// A user's roles, credentials or state changed.
        UserChanged = "user.changed",
        /// A user was deleted.
        UserDeleted = "user.deleted",
        /// Emergency (break-glass) access was requested.
        BreakGlassRequested = "breakglass.requested",
        /// Emergency access started.
        BreakGlassStarted = "breakglass.started",
        /// Emergency access ended.
        BreakGlassEnded = "breakglass.ended",
        /// An action taken under emergency access (every one is recorded).
        BreakGlassUsed = "breakglass.used",
        /// A break-glass request was denied or withdrawn.
        BreakGlassDecided = "breakglass.decided",
        /// The mandatory review closed a break-glass episode.
        BreakGlassReviewed = "breakglass.reviewed",
        /// Root restored an account at the console (local break-glass).
        UserRecovered = "user.recovered",
        /// An API token was created.
        TokenCreated = "token.created",
        /// An API token was revoked.
        TokenRevoked = "token.revoked",
        /// An API token was used (or refused).
        TokenUsed = "token.used",
    }
}

names! {
    /// The kind of record an action concerns; `record_id` names the record.
    pub enum Entity {
        /// A wipe, purge or degauss job (`record_id`: the job id).
        Job = "job",
        /// A drive (`record_id`: its identity, e.g. model and serial).
        Device = "device",
        /// A bay (`record_id`: the bay name).
        Bay = "bay",
        /// A certificate (`record_id`: the certificate id).
        Certificate = "certificate",
        /// A backup job (`record_id`: its name).
        BackupJob = "backup_job",
        /// A backup snapshot (`record_id`: the snapshot id).
        Snapshot = "snapshot",
        /// A key (`record_id`: its key id, never key material).
        Key = "key",
        /// The configuration (`record_id`: the file or section).
        Config = "config",
        /// The daemon itself (`record_id`: its instance or boot id).
        Daemon = "daemon",
        /// An alert (`record_id`: the alert id).
        Alert = "alert",
        /// The audit log itself.
        AuditLog = "audit_log",
        /// A user account (`record_id`: the user id).
        User = "user",
        /// A session (`record_id`: the session's public id, never its secret).
        Session = "session",
    }
}

names! {
    /// Where the request came from.
    pub enum Source {
        /// The web console.
        Console = "console",
        /// The HTTP API.
        Api = "api",
        /// The command-line tool.
        Cli = "cli",
        /// The daemon on its own (schedules, hotplug, policies).
        Daemon = "daemon",
    }
}

names! {
    /// How it ended. Anything short of full success is not `success`: a wipe
    /// verified at a lower level than asked is a `failure` with the reason in
    /// the detail, never a pass.
    pub enum Outcome {
        /// Done as asked.
        Success = "success",
        /// Attempted and failed, or done only in part.
        Failure = "failure",
        /// Not attempted: refused by policy, protection or permission.
        Refused = "refused",
    }
}

names! {
    /// Optional context attached to an entry.
    pub enum TagKind {
        /// The break-glass session under which the action ran.
        BreakGlass = "break_glass",
        /// The re-authentication record that allowed a privileged action.
        Reauth = "reauth",
        /// The session (public id) that made the request.
        Session = "session",
        /// The request id, to join with the operational log.
        Request = "request",
        /// The job the action belongs to.
        Job = "job",
        /// The bay involved.
        Bay = "bay",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_well_formed_unique_and_round_trip() {
        fn check<T: Clone + PartialEq + fmt::Debug>(
            all: &[T],
            as_str: impl Fn(&T) -> &str,
            from: impl Fn(&str) -> Option<T>,
        ) {
            let mut seen = std::collections::HashSet::new();
            for v in all {
                let s = as_str(v);
                assert!(is_name(s), "{s}");
                assert!(seen.insert(s.to_owned()), "duplicate {s}");
                assert_eq!(from(s).as_ref(), Some(v));
            }
        }
        check(Action::ALL, |v| v.as_str(), Action::from_name);
        check(Entity::ALL, |v| v.as_str(), Entity::from_name);
        check(Source::ALL, |v| v.as_str(), Source::from_name);
        check(Outcome::ALL, |v| v.as_str(), Outcome::from_name);
        check(TagKind::ALL, |v| v.as_str(), TagKind::from_name);
    }

    #[test]
    fn unknown_names_decode_only_when_well_formed() {
        let a = Action::decode("session.passkey_added").unwrap();
        assert!(matches!(a, Action::Unrecognised(_)));
        assert_eq!(a.as_str(), "session.passkey_added");
        assert_eq!(Action::from_name("session.passkey_added"), None);
        for bad in [
            "",
            "Job.started",
            "job..x",
            ".job",
            "job.",
            "job started",
            "é",
            "a-b",
        ] {
            assert_eq!(Action::decode(bad), None, "{bad:?}");
        }
        assert_eq!(Action::decode(&"a".repeat(65)), None);
    }
}
