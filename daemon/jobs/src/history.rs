//! The job history, for listing: every job in the store, with jobs whose
//! owner is gone marked interrupted first (so none shows as running forever).
//! Needs no signing key, and changes nothing else.

use crate::clock::Clock;
use crate::state::{self, StateDir};
use lethe_store::{JobEvent, JobRecord, JobStore, StoreError};

/// All jobs, newest first.
pub fn list(state: &StateDir, clock: &dyn Clock) -> Result<Vec<JobRecord>, StoreError> {
    let store = open(state, clock)?;
    store.list()
}

/// One job and its events.
pub fn show(
    state: &StateDir,
    clock: &dyn Clock,
    id: &str,
) -> Result<(JobRecord, Vec<JobEvent>), StoreError> {
    let store = open(state, clock)?;
    Ok((store.get(id)?, store.events(id)?))
}

fn open(state: &StateDir, clock: &dyn Clock) -> Result<JobStore, StoreError> {
    let store = JobStore::open(state.root())?;
    store.reap(clock.unix_now(), state::process_alive, &clock.rfc3339())?;
    Ok(store)
}

/// Mark jobs whose owner is gone as interrupted, and say which: a daemon
/// records each in its audit log when it starts.
pub fn reap(state: &StateDir, clock: &dyn Clock) -> Result<Vec<String>, StoreError> {
    let store = JobStore::open(state.root())?;
    store.reap(clock.unix_now(), state::process_alive, &clock.rfc3339())
}

/// A wipe job in the history with the device it recorded.
#[derive(Debug, Clone)]
pub struct WipeJob {
    /// The job as stored.
    pub record: JobRecord,
    /// The device its specification names.
    pub device: crate::DeviceIdentity,
}

/// Every wipe job whose specification is readable, newest first, with the
/// device it recorded (jobs whose owner is gone are marked interrupted
/// first). A daemon matches these against a drive that arrives in a bay:
/// an interrupted job of the same drive resumes, and a drive whose last
/// job finished is not started again when the daemon restarts.
pub fn wipe_jobs(state: &StateDir, clock: &dyn Clock) -> Result<Vec<WipeJob>, StoreError> {
    Ok(list(state, clock)?
        .into_iter()
        .filter(|j| j.kind == crate::JobKind::Wipe.as_str())
        .filter_map(|record| {
            let spec: crate::spec::WipeSpec = serde_json::from_value(record.spec.clone()).ok()?;
            Some(WipeJob {
                record,
                device: spec.device,
            })
        })
        .collect())
}
