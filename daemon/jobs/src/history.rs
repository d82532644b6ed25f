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
