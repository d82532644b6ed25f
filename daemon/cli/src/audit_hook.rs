//! The command line's part of the audit log: when `lethe` runs jobs
//! locally (as root) it hangs the same audit observer on its job library as
//! the daemon does, and records certificates it shows.
//!
//! The log is `audit.db` in the state directory, signed with the appliance
//! key. If it cannot be opened (a state directory this user cannot write,
//! a damaged log), the command says so on stderr and goes on: a wipe is not
//! refused for want of its audit entry, and `lethe audit verify` names
//! what is wrong with the log.

use lethe_audit::{
    Action, Appender, AuditLog, AuditTime, Entity, Entry, Outcome, RecordId, Source, SqliteStore,
    UserId,
};
use lethe_cert::ApplianceKey;
use lethe_jobs::audit::AuditObserver;
use lethe_jobs::{JobObserver, StateDir, SystemClock};
use std::sync::Arc;

/// Open the log; `create`: make the appliance key if there is none yet (a
/// job is about to need it anyway).
fn open(state: &StateDir, create: bool) -> Result<Appender<SqliteStore>, String> {
    let key = if create {
        ApplianceKey::load_or_create(&state.keys())
    } else {
        ApplianceKey::load(&state.keys())
    }
    .map_err(|e| e.to_string())?;
    let store =
        SqliteStore::open(&state.root().join(lethe_audit::DB_FILE)).map_err(|e| e.to_string())?;
    let log = AuditLog::open(store, key).map_err(|e| e.to_string())?;
    Ok(Appender::new(log))
}

/// The audit observer for this process's jobs, or `None` (with a warning).
pub fn observer(state: &StateDir) -> Option<Arc<dyn JobObserver>> {
    match open(state, true) {
        Ok(log) => Some(Arc::new(AuditObserver::new(log, Arc::new(SystemClock)))),
        Err(e) => {
            eprintln!(
                "lethe: warning: the audit log is not available ({e}); this job is not audited"
            );
            None
        }
    }
}

/// Record that this local account viewed certificate `id`.
pub fn viewed(state: &StateDir, id: &str) {
    let uid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
    };
    let entry = (|| -> Result<Entry, String> {
        Ok(Entry::new(
            AuditTime::from_unix(lethe_jobs::Clock::unix_now(&SystemClock))
                .map_err(|e| e.to_string())?,
            Source::Cli,
            UserId::unix_uid(uid),
            Action::CertificateViewed,
            Entity::Certificate,
            RecordId::new(id).map_err(|e| e.to_string())?,
            Outcome::Success,
        ))
    })();
    if let Err(e) = entry.and_then(|e| open(state, false)?.append(&e).map_err(|e| e.to_string())) {
        eprintln!(
            "lethe: warning: viewing certificate {id} was not recorded in the audit log ({e})"
        );
    }
}
