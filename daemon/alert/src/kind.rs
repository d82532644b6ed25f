//! What an alert says, and how it is rendered: a short text (e-mail subject
//! and body) and a JSON body (webhooks), both documented in `docs/alerts.md`.
//!
//! Every field is a [`Label`], a [`Hostname`], a [`Timestamp`], a number or a
//! closed enum: there is no field a file name, a device label, an error
//! message or an operator's words could travel in. Details stay on the
//! appliance (console, audit log); the alert says where to look.

use crate::label::{Hostname, Label, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Version of the JSON body (`"v"`); bumped on any incompatible change.
pub const BODY_VERSION: u32 = 1;

/// Row id of a raised alert in the alert store (also sent to receivers so
/// they can drop a retried delivery they already have).
pub type AlertId = i64;

/// Why something failed, as a class: the full error stays on the appliance
/// (it may name files or devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The backup storage (S3, SFTP, directory) failed or was unreachable.
    Storage,
    /// The repository key or passphrase was refused.
    Credentials,
    /// The data to back up could not be read.
    Source,
    /// Stored data is damaged.
    Damage,
    /// A read-back or restore comparison found a mismatch.
    Verification,
    /// The drive disappeared during the job.
    DeviceRemoved,
    /// The drive reported errors.
    DeviceError,
    /// The target was refused before anything was written (protected, in use).
    Refused,
    /// The daemon stopped (crash, power loss) while the job ran.
    Interrupted,
    /// A configuration problem.
    Configuration,
    /// Anything else (a bug): see the appliance's log.
    Internal,
}

impl FailureClass {
    fn text(self) -> &'static str {
        match self {
            FailureClass::Storage => "storage failed or unreachable",
            FailureClass::Credentials => "key or passphrase refused",
            FailureClass::Source => "source unreadable",
            FailureClass::Damage => "stored data damaged",
            FailureClass::Verification => "verification mismatch",
            FailureClass::DeviceRemoved => "drive removed",
            FailureClass::DeviceError => "drive error",
            FailureClass::Refused => "target refused",
            FailureClass::Interrupted => "interrupted",
            FailureClass::Configuration => "configuration problem",
            FailureClass::Internal => "internal error",
        }
    }
}

/// Kind of a sanitization job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Overwrite (Clear).
    Wipe,
    /// Drive-native sanitize (Purge).
    Purge,
    /// Degausser (Destroy).
    Degauss,
    /// An image restored onto a device.
    Restore,
}

/// How a locked account was unlocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum Unlock {
    /// The lock expired.
    Expired,
    /// An administrator unlocked it.
    Admin {
        /// The administrator.
        admin: Label,
    },
    /// Local recovery at the appliance console.
    Recovery,
}

/// How break-glass access was granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum Grant {
    /// An approver approved.
    Approved {
        /// The approver.
        approver: Label,
    },
    /// Nobody answered within the configured wait.
    WaitElapsed,
}

/// What happened. The JSON `type` is the snake_case variant name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum AlertKind {
    /// Scheduled backup runs did not happen.
    BackupMissed {
        /// The backup job.
        job: Label,
        /// Scheduled runs that passed without an attempt.
        missed: u64,
        /// The last attempt, if any.
        last_run: Option<Timestamp>,
    },
    /// A backup run failed.
    BackupFailed {
        /// The backup job.
        job: Label,
        /// Why, as a class.
        reason: FailureClass,
    },
    /// The newest good backup of a job is older than its `max_age`.
    BackupTooOld {
        /// The backup job.
        job: Label,
        /// The newest successful backup, if any.
        last_success: Option<Timestamp>,
        /// The configured maximum age, in seconds.
        max_age_secs: u64,
    },
    /// A restore drill failed.
    DrillFailed {
        /// The backup job.
        job: Label,
        /// Items restored and compared.
        checked: u64,
        /// Items that did not match (0 when the drill could not run).
        mismatched: u64,
        /// Why, as a class.
        reason: FailureClass,
    },
    /// A sanitization job failed.
    JobFailed {
        /// The job id.
        job: Label,
        /// What the job was.
        kind: JobKind,
        /// The bay, for a bay job.
        bay: Option<Label>,
        /// Why, as a class.
        reason: FailureClass,
    },
    /// An account was soft-locked after failed logins.
    AccountLocked {
        /// The user.
        user: Label,
        /// Failed attempts that led to the lock.
        failures: u32,
        /// When the lock lifts by itself, if it does.
        until: Option<Timestamp>,
    },
    /// A locked account was unlocked.
    AccountUnlocked {
        /// The user.
        user: Label,
        /// How.
        by: Unlock,
    },
    /// Emergency access was requested. The requester's reason is free text:
    /// it is shown on the console, never sent.
    BreakGlassRequested {
        /// The request id.
        request: Label,
        /// The requester.
        user: Label,
        /// When access is granted if no approver answers.
        grant_at: Timestamp,
    },
    /// Emergency access was granted.
    BreakGlassGranted {
        /// The request id.
        request: Label,
        /// The requester.
        user: Label,
        /// Approval or wait.
        by: Grant,
        /// When the elevated session ends.
        until: Timestamp,
    },
    /// Emergency access was denied.
    BreakGlassDenied {
        /// The request id.
        request: Label,
        /// The requester.
        user: Label,
        /// Who denied it.
        approver: Label,
    },
    /// An audit-log checkpoint could not be pushed off the box.
    AuditPushFailed {
        /// The push target's name.
        target: Label,
        /// Size of the checkpoint's tree.
        tree_size: u64,
        /// Consecutive failed pushes.
        failures: u32,
    },
    /// A test alert (`lethe alert test`).
    Test,
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Info,
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
}

impl AlertKind {
    /// The severity of this kind.
    pub fn severity(&self) -> Severity {
        match self {
            AlertKind::Test | AlertKind::AccountUnlocked { .. } => Severity::Info,
            AlertKind::BackupMissed { .. }
            | AlertKind::BackupTooOld { .. }
            | AlertKind::AccountLocked { .. }
            | AlertKind::BreakGlassDenied { .. }
            | AlertKind::JobFailed { .. } => Severity::Warning,
            AlertKind::BackupFailed { .. }
            | AlertKind::DrillFailed { .. }
            | AlertKind::BreakGlassRequested { .. }
            | AlertKind::BreakGlassGranted { .. }
            | AlertKind::AuditPushFailed { .. } => Severity::Critical,
        }
    }

    /// One line, without the host.
    pub fn summary(&self) -> String {
        let when = |t: &Option<Timestamp>| match t {
            Some(t) => t.to_string(),
            None => "never".to_string(),
        };
        match self {
            AlertKind::BackupMissed {
                job,
                missed,
                last_run,
            } => format!(
                "backup job {job} missed {missed} scheduled run(s); last run {}",
                when(last_run)
            ),
            AlertKind::BackupFailed { job, reason } => {
                format!("backup job {job} failed: {}", reason.text())
            }
            AlertKind::BackupTooOld {
                job,
                last_success,
                max_age_secs,
            } => format!(
                "backup job {job} has no good backup newer than {}; last success {}",
                humantime::format_duration(std::time::Duration::from_secs(*max_age_secs)),
                when(last_success)
            ),
            AlertKind::DrillFailed {
                job,
                checked,
                mismatched,
                reason,
            } => format!(
                "restore drill of backup job {job} failed: {} ({mismatched} of {checked} items mismatched)",
                reason.text()
            ),
            AlertKind::JobFailed {
                job,
                kind,
                bay,
                reason,
            } => {
                let kind = match kind {
                    JobKind::Wipe => "wipe",
                    JobKind::Purge => "purge",
                    JobKind::Degauss => "degauss",
                    JobKind::Restore => "restore",
                };
                let bay = bay
                    .as_ref()
                    .map(|b| format!(" in bay {b}"))
                    .unwrap_or_default();
                format!("{kind} job {job}{bay} failed: {}", reason.text())
            }
            AlertKind::AccountLocked {
                user,
                failures,
                until,
            } => {
                let until = until
                    .map(|t| format!(" until {t}"))
                    .unwrap_or_else(|| " until unlocked".to_string());
                format!("account {user} locked after {failures} failed logins{until}")
            }
            AlertKind::AccountUnlocked { user, by } => match by {
                Unlock::Expired => format!("account {user} unlocked: the lock expired"),
                Unlock::Admin { admin } => format!("account {user} unlocked by {admin}"),
                Unlock::Recovery => format!("account {user} unlocked by console recovery"),
            },
            AlertKind::BreakGlassRequested {
                request,
                user,
                grant_at,
            } => format!(
                "break-glass request {request} by {user}: granted at {grant_at} unless an approver denies it"
            ),
            AlertKind::BreakGlassGranted {
                request,
                user,
                by,
                until,
            } => match by {
                Grant::Approved { approver } => format!(
                    "break-glass request {request} by {user} approved by {approver}; elevated until {until}"
                ),
                Grant::WaitElapsed => format!(
                    "break-glass request {request} by {user} granted (no answer within the wait); elevated until {until}"
                ),
            },
            AlertKind::BreakGlassDenied {
                request,
                user,
                approver,
            } => format!("break-glass request {request} by {user} denied by {approver}"),
            AlertKind::AuditPushFailed {
                target,
                tree_size,
                failures,
            } => format!(
                "audit checkpoint (tree size {tree_size}) not pushed to {target}: {failures} consecutive failure(s)"
            ),
            AlertKind::Test => "test alert: delivery works".to_string(),
        }
    }
}

/// A raised alert: what, when, and on which appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// What happened.
    pub kind: AlertKind,
    /// When it was raised.
    pub raised_at: Timestamp,
    /// The appliance.
    pub host: Hostname,
}

/// The JSON body, in field order (see `docs/alerts.md`).
#[derive(Serialize)]
struct Body<'a> {
    v: u32,
    id: AlertId,
    host: &'a Hostname,
    raised_at: Timestamp,
    severity: Severity,
    summary: String,
    #[serde(flatten)]
    kind: &'a AlertKind,
}

impl Alert {
    /// E-mail subject: `[lethe HOST] SEVERITY: summary`.
    pub fn subject(&self) -> String {
        let sev = match self.kind.severity() {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "CRITICAL",
        };
        format!("[lethe {}] {sev}: {}", self.host, self.kind.summary())
    }

    /// E-mail body: a few lines of plain text.
    pub fn text(&self, id: AlertId) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.kind.summary());
        let _ = writeln!(s);
        let _ = writeln!(s, "Appliance: {}", self.host);
        let _ = writeln!(s, "Raised:    {}", self.raised_at);
        let _ = writeln!(s, "Alert id:  {id}");
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Details are on the appliance's console and audit log. Alerts never carry\nfile names, device contents or patient data."
        );
        s
    }

    /// The webhook body: compact JSON, fields in a fixed order.
    pub fn json(&self, id: AlertId) -> Vec<u8> {
        let body = Body {
            v: BODY_VERSION,
            id,
            host: &self.host,
            raised_at: self.raised_at,
            severity: self.kind.severity(),
            summary: self.kind.summary(),
            kind: &self.kind,
        };
        // Serializing plain structs, enums, strings and integers cannot fail.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Label {
        Label::new(s).unwrap()
    }

    fn every_kind() -> Vec<AlertKind> {
        let t = Timestamp::from_unix(1_767_225_600);
        vec![
            AlertKind::BackupMissed {
                job: l("records"),
                missed: 2,
                last_run: Some(t),
            },
            AlertKind::BackupFailed {
                job: l("records"),
                reason: FailureClass::Storage,
            },
            AlertKind::BackupTooOld {
                job: l("records"),
                last_success: None,
                max_age_secs: 93_600,
            },
            AlertKind::DrillFailed {
                job: l("records"),
                checked: 20,
                mismatched: 1,
                reason: FailureClass::Verification,
            },
            AlertKind::JobFailed {
                job: l("j-0042"),
                kind: JobKind::Wipe,
                bay: Some(l("bay-1")),
                reason: FailureClass::DeviceRemoved,
            },
            AlertKind::AccountLocked {
                user: l("alice"),
                failures: 5,
                until: Some(t),
            },
            AlertKind::AccountUnlocked {
                user: l("alice"),
                by: Unlock::Admin { admin: l("root") },
            },
            AlertKind::BreakGlassRequested {
                request: l("bg-7"),
                user: l("bob"),
                grant_at: t,
            },
            AlertKind::BreakGlassGranted {
                request: l("bg-7"),
                user: l("bob"),
                by: Grant::WaitElapsed,
                until: t,
            },
            AlertKind::BreakGlassDenied {
                request: l("bg-7"),
                user: l("bob"),
                approver: l("carol"),
            },
            AlertKind::AuditPushFailed {
                target: l("offsite"),
                tree_size: 1234,
                failures: 3,
            },
            AlertKind::Test,
        ]
    }

    #[test]
    fn every_kind_renders_and_round_trips() {
        for kind in every_kind() {
            let a = Alert {
                kind: kind.clone(),
                raised_at: Timestamp::from_unix(1_767_225_600),
                host: Hostname::new("lethe-01").unwrap(),
            };
            let json: serde_json::Value = serde_json::from_slice(&a.json(7)).unwrap();
            assert_eq!(json["v"], 1);
            assert_eq!(json["id"], 7);
            assert_eq!(json["host"], "lethe-01");
            assert!(json["type"].is_string());
            assert!(a.subject().starts_with("[lethe lethe-01] "));
            assert!(a.text(7).contains("Alert id:  7"));
            // The stored form (the Alert itself) round-trips.
            let stored = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<Alert>(&stored).unwrap(), a);
        }
    }

    /// Adding a kind without listing it here (and in the doc) fails to compile.
    fn type_of(k: &AlertKind) -> &'static str {
        match k {
            AlertKind::BackupMissed { .. } => "backup_missed",
            AlertKind::BackupFailed { .. } => "backup_failed",
            AlertKind::BackupTooOld { .. } => "backup_too_old",
            AlertKind::DrillFailed { .. } => "drill_failed",
            AlertKind::JobFailed { .. } => "job_failed",
            AlertKind::AccountLocked { .. } => "account_locked",
            AlertKind::AccountUnlocked { .. } => "account_unlocked",
            AlertKind::BreakGlassRequested { .. } => "break_glass_requested",
            AlertKind::BreakGlassGranted { .. } => "break_glass_granted",
            AlertKind::BreakGlassDenied { .. } => "break_glass_denied",
            AlertKind::AuditPushFailed { .. } => "audit_push_failed",
            AlertKind::Test => "test",
        }
    }

    const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/alerts.md"));

    /// The fenced block after `<!-- vector:NAME -->` in docs/alerts.md.
    fn doc_block(name: &str) -> &'static str {
        let after = DOC
            .split(&format!("<!-- vector:{name} -->"))
            .nth(1)
            .unwrap();
        let start = after.find("```").unwrap();
        let body = &after[start..];
        let body = &body[body.find('\n').unwrap() + 1..];
        body[..body.find("```").unwrap()].trim()
    }

    #[test]
    fn the_documented_kinds_and_fields_are_the_real_ones() {
        let rows: Vec<Vec<String>> = DOC
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| l.split('|').map(|c| c.trim().replace('`', "")).collect())
            .collect();
        let kinds = every_kind();
        assert_eq!(rows.len(), kinds.len(), "one table row per kind");
        for kind in kinds {
            let ty = type_of(&kind);
            let row = rows
                .iter()
                .find(|r| r[1] == ty)
                .unwrap_or_else(|| panic!("{ty} not documented"));
            let json = serde_json::to_value(&kind).unwrap();
            let mut keys: Vec<&str> = json
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .filter(|k| *k != "type")
                .collect();
            let mut documented: Vec<&str> = row[2]
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            keys.sort_unstable();
            documented.sort_unstable();
            assert_eq!(keys, documented, "{ty}");
            let sev = serde_json::to_value(kind.severity()).unwrap();
            assert_eq!(sev.as_str().unwrap(), row[3], "{ty}");
        }
    }

    /// safeguard: 164.312(e)(2)(i)
    #[test]
    fn the_documented_vector_is_what_is_sent() {
        let a = Alert {
            kind: AlertKind::BackupMissed {
                job: l("records"),
                missed: 2,
                last_run: Some(Timestamp::from_unix(1_767_225_600)),
            },
            raised_at: Timestamp::from_unix(1_767_247_200),
            host: Hostname::new("lethe-01").unwrap(),
        };
        let body = a.json(42);
        assert_eq!(std::str::from_utf8(&body).unwrap(), doc_block("body"));
        let sig =
            crate::webhook::signature(b"test-secret", Timestamp::from_unix(1_767_247_260), &body);
        assert_eq!(format!("X-Lethe-Signature: {sig}"), doc_block("signature"));
        // The e-mail body shown in the doc.
        let text_block = DOC.split("plain-text\nbody:").nth(1).unwrap();
        let text_block = &text_block[text_block.find("```text\n").unwrap() + 8..];
        let text_block = &text_block[..text_block.find("```").unwrap()];
        assert_eq!(a.text(42), text_block);
    }

    #[test]
    fn stored_alerts_are_revalidated() {
        let forged = r#"{"kind":{"type":"backup_failed","job":"/srv/Doe John.pdf","reason":"storage"},"raised_at":"2026-01-01T00:00:00Z","host":"lethe"}"#;
        assert!(serde_json::from_str::<Alert>(forged).is_err());
    }

    fn leaves<'a>(v: &'a serde_json::Value, key: &str, out: &mut Vec<(String, &'a str)>) {
        match v {
            serde_json::Value::String(s) => out.push((key.to_string(), s)),
            serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| leaves(v, k, out)),
            serde_json::Value::Array(a) => a.iter().for_each(|v| leaves(v, key, out)),
            _ => {}
        }
    }

    proptest::proptest! {
        /// Whatever names an alert is built from, every string in its body is
        /// a token (name, time, enum) and the summary is one line of ASCII.
        /// safeguard: rule:secrets-in-worker
        #[test]
        fn bodies_hold_tokens_only(
            a in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
            b in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
            n in proptest::prelude::any::<u32>(),
            t in 0u64..4_000_000_000,
            which in 0usize..12,
        ) {
            let t = Timestamp::from_unix(t);
            let kinds = [
                AlertKind::BackupMissed { job: l(&a), missed: n.into(), last_run: Some(t) },
                AlertKind::BackupFailed { job: l(&a), reason: FailureClass::Damage },
                AlertKind::BackupTooOld { job: l(&a), last_success: Some(t), max_age_secs: n.into() },
                AlertKind::DrillFailed { job: l(&a), checked: n.into(), mismatched: 1, reason: FailureClass::Verification },
                AlertKind::JobFailed { job: l(&a), kind: JobKind::Purge, bay: Some(l(&b)), reason: FailureClass::DeviceError },
                AlertKind::AccountLocked { user: l(&a), failures: n, until: Some(t) },
                AlertKind::AccountUnlocked { user: l(&a), by: Unlock::Admin { admin: l(&b) } },
                AlertKind::BreakGlassRequested { request: l(&a), user: l(&b), grant_at: t },
                AlertKind::BreakGlassGranted { request: l(&a), user: l(&b), by: Grant::Approved { approver: l(&b) }, until: t },
                AlertKind::BreakGlassDenied { request: l(&a), user: l(&b), approver: l(&a) },
                AlertKind::AuditPushFailed { target: l(&a), tree_size: n.into(), failures: n },
                AlertKind::Test,
            ];
            let alert = Alert { kind: kinds[which].clone(), raised_at: t, host: Hostname::new("lethe").unwrap() };
            let v: serde_json::Value = serde_json::from_slice(&alert.json(1)).unwrap();
            let mut out = Vec::new();
            leaves(&v, "", &mut out);
            for (k, s) in out {
                if k == "summary" {
                    proptest::prop_assert!(s.bytes().all(|c| (b' '..=b'~').contains(&c)), "{s}");
                } else {
                    proptest::prop_assert!(!s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(&c)), "{k}: {s}");
                }
            }
        }
    }
}
