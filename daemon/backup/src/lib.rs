//! The backup engine (issue 3): repositories on any `lethe-backend` storage,
//! in the `lethe-repo` format.
//!
//! - [`repo`]: init/open (passphrase or recovery key), keys, index, snapshots.
//! - [`fresh`]: the sealed manifest: which files are live, rollback / deletion /
//!   replay found and named, writes committed; [`seen`]: what this client has
//!   seen of each repository (the caller's state).
//! - [`rotate`]: `key rotate` (a new master key for new data, every remaining
//!   key file re-wrapped).
//! - [`writer`]: dedup + parallel sealing workers + pack uploads + index files.
//! - [`archive`]: directory trees, raw block devices, streams → snapshots.
//! - [`restore`]: snapshots (or a sub-path) → files, images → files/devices,
//!   confined to the target ([`confined`]), past damaged blobs.
//! - [`check`]: structure, and optionally decrypt-and-verify content; every
//!   damaged object named.
//! - [`repair`]: rebuild the index from pack headers, rewrite damaged snapshots.
//! - [`lock`], [`prune`]: locks taken by the engine; forget/prune that a
//!   concurrent backup or restore cannot break.
//! - [`drill`]: restore drills that compare against backup-time hashes.
//! - [`schedule`], [`scheduled`]: the schedule file, what is due, and a
//!   scheduled run (time and history passed in).
//!
//! Every command's result carries an [`Outcome`]: ok, completed with
//! warnings, or failed.

pub mod archive;
pub mod check;
pub mod confined;
pub mod connect;
pub mod drill;
pub mod fresh;
pub mod lock;
pub mod prune;
pub mod repair;
pub mod repo;
pub mod restore;
pub mod rotate;
pub mod schedule;
pub mod scheduled;
pub mod seen;
pub mod store;
pub mod walk;
pub mod writer;

pub use repo::Repository;
pub use store::Store;

use lethe_backend::BackendError;

/// How a run ended, for exit codes and the history: never a string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything done and verified.
    #[default]
    Ok,
    /// Done, but something is named that needs attention: files that could not
    /// be read or changed while read, damaged objects that were skipped.
    CompletedWithWarnings,
    /// Not done (in part or at all): a restore that could not write some files,
    /// a check or drill that found damage.
    Failed,
}

impl Outcome {
    /// The worse of two outcomes.
    pub fn worst(self, other: Outcome) -> Outcome {
        use Outcome::*;
        match (self, other) {
            (Failed, _) | (_, Failed) => Failed,
            (CompletedWithWarnings, _) | (_, CompletedWithWarnings) => CompletedWithWarnings,
            _ => Ok,
        }
    }

    /// `ok`, `completed_with_warnings` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::CompletedWithWarnings => "completed_with_warnings",
            Outcome::Failed => "failed",
        }
    }
}
use lethe_repo::{Id, RepoError};

/// Errors of the backup engine.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The storage backend failed (after its retries).
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A format-level error outside a named object.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A stored object is damaged.
    #[error("{what} is damaged: {source}")]
    Corrupt {
        /// The object.
        what: String,
        /// Why.
        source: RepoError,
    },
    /// No key file accepts the passphrase. Nothing was written.
    #[error("wrong passphrase: no key file of this repository accepts it")]
    WrongPassphrase,
    /// `init` on an existing repository.
    #[error("{0} is already a repository; nothing was written")]
    AlreadyInitialized(String),
    /// No key files (or no config) at the location.
    #[error("{0} is not a Lethe repository (no key files or config): create one with `lethe backup init`")]
    NotARepository(String),
    /// The storage provider removed, replayed or rolled back files: the
    /// operation is refused (writes; `latest`), every finding named.
    #[error("{what}: the repository's files were changed behind this client's back: {}; run `lethe backup check` for details and `lethe backup repair manifest` to accept the repository as it is now", findings.join("; "))]
    Tampered {
        /// What was refused.
        what: String,
        /// Every tampering finding, in words.
        findings: Vec<String>,
    },
    /// A blob named by a tree or list is not in the index.
    #[error("blob {0} is missing from the index")]
    MissingBlob(Id),
    /// A snapshot or path was not found.
    #[error("{0}")]
    NotFound(String),
    /// Local file-system error, with the path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Another process holds a conflicting lock.
    #[error("repository is locked: {0}")]
    Locked(String),
    /// The lock could not be kept: the run stopped writing before others
    /// could take the lock as stale.
    #[error("stopped writing: the repository lock is lost ({0})")]
    LockLost(String),
    /// The run was stopped (cancelled) before it completed.
    #[error("stopped before completion: {0}")]
    Stopped(String),
    /// Restored content does not match the hash recorded at backup time.
    #[error("{0}: restored content does not match the BLAKE3 recorded at backup time")]
    HashMismatch(String),
    /// Bad option or input.
    #[error("{0}")]
    Invalid(String),
    /// The OS random generator failed.
    #[error("random generator: {0}")]
    Random(String),
    /// A bug or a broken invariant.
    #[error("internal error: {0}")]
    Internal(String),
}

impl BackupError {
    /// A damaged named object.
    pub fn corrupt(what: impl Into<String>, source: RepoError) -> Self {
        BackupError::Corrupt {
            what: what.into(),
            source,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        BackupError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
