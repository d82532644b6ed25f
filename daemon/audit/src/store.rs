//! The storage seam: what the log needs from a database, and nothing more.
//!
//! The trait is append-only: there is no call that changes or removes an
//! entry or a checkpoint. Rows cross it as plain values (leaf bytes, hashes,
//! note text, a few index columns for filtering), so no SQL or file layout
//! leaks out. The embedded implementation is [`crate::SqliteStore`]; a
//! PostgreSQL one can follow for fleets. Reads stream through callbacks that
//! return [`ControlFlow`], so a long log is never held in memory and a
//! reader can stop early.

use std::ops::ControlFlow;

/// Errors of a store implementation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("audit database {what}: {source}")]
    Backend {
        /// What was being done, and where.
        what: String,
        /// The database's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another writer appended first: the caller's view is stale.
    #[error("audit log append conflict: expected entry {expected}, the log has {found}")]
    Conflict {
        /// The index the caller tried to write.
        expected: u64,
        /// The number of entries actually stored.
        found: u64,
    },
    /// The log was created already (with another origin, or twice).
    #[error("the audit log already exists (origin {0:?})")]
    AlreadyCreated(String),
    /// There is no log here.
    #[error("no audit log at {0}")]
    Missing(String),
    /// A schema this build does not know.
    #[error("the audit database was written by a newer lethe (schema {found}, this build knows {known})")]
    NewerSchema {
        /// The stored schema version.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
}

/// One entry row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The position in the log (0-based).
    pub index: u64,
    /// The leaf bytes.
    pub leaf: Vec<u8>,
    /// The stored leaf hash (32 bytes when intact).
    pub leaf_hash: Vec<u8>,
    /// Index column: Unix seconds of the entry's time.
    pub time: i64,
    /// Index column: the entry's user id.
    pub user_id: String,
    /// Index column: the entry's action name.
    pub action: String,
}

/// One checkpoint row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Index column: the tree size the note claims.
    pub size: u64,
    /// The signed note.
    pub note: String,
}

/// Which entries a reader wants. Empty fields match everything; the bounds
/// are `since <= time < until` in Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFilter {
    /// Earliest time, inclusive.
    pub since: Option<i64>,
    /// Latest time, exclusive.
    pub until: Option<i64>,
    /// Only this user id.
    pub user_id: Option<String>,
    /// Only these action names (any of them).
    pub actions: Vec<String>,
}

impl EntryFilter {
    /// Whether the index columns of `e` pass the filter.
    pub fn matches(&self, time: i64, user_id: &str, action: &str) -> bool {
        self.since.is_none_or(|s| time >= s)
            && self.until.is_none_or(|u| time < u)
            && self.user_id.as_deref().is_none_or(|u| u == user_id)
            && (self.actions.is_empty() || self.actions.iter().any(|a| a == action))
    }
}

/// Storage of one audit log.
pub trait AuditStore: Send {
    /// The log's origin, or `None` if the log has not been created.
    fn origin(&self) -> Result<Option<String>, StoreError>;

    /// Create the log with its origin and the signed checkpoint of the empty
    /// tree. Fails if it exists.
    fn create(&mut self, origin: &str, empty: &StoredCheckpoint) -> Result<(), StoreError>;

    /// Number of entries stored.
    fn len(&self) -> Result<u64, StoreError>;

    /// Whether no entry is stored.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Append `entry` (whose index must equal [`AuditStore::len`], else
    /// [`StoreError::Conflict`]) and the checkpoint that covers it, in one
    /// atomic, durable step.
    fn append(
        &mut self,
        entry: &StoredEntry,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError>;

    /// The most recently appended checkpoint.
    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// One entry by index.
    fn entry(&self, index: u64) -> Result<Option<StoredEntry>, StoreError>;

    /// Entries passing `filter`, in index order.
    fn scan_entries(
        &self,
        filter: &EntryFilter,
        visit: &mut dyn FnMut(StoredEntry) -> ControlFlow<()>,
    ) -> Result<(), StoreError>;

    /// `(index, stored leaf hash)` of every entry, in index order (what a
    /// writer needs to rebuild its tree without reading the leaves).
    fn scan_leaf_hashes(
        &self,
        visit: &mut dyn FnMut(u64, Vec<u8>) -> ControlFlow<()>,
    ) -> Result<(), StoreError>;

    /// Every checkpoint, in the order appended.
    fn scan_checkpoints(
        &self,
        visit: &mut dyn FnMut(StoredCheckpoint) -> ControlFlow<()>,
    ) -> Result<(), StoreError>;
}
