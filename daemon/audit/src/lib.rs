//! The tamper-evident audit log: every action on the appliance, in a Merkle
//! log with signed checkpoints that nobody can edit, drop, reorder or cut
//! short without [`verify_log`] noticing and naming the first bad entry.
//!
//! - [`entry`](mod@entry) and [`names`]: the entry model (who, what, which
//!   record, when, from where, how it ended, detail, tags), built so that no
//!   free text, secret or patient data fits in.
//! - [`leaf`]: the canonical byte encoding of an entry (`lethe-audit-v1\n` +
//!   canonical JSON), the only thing hashed.
//! - [`merkle`]: RFC 6962 hashing, the incremental tree, inclusion and
//!   consistency proofs and their verifiers.
//! - [`note`] and [`checkpoint`]: C2SP signed notes with Ed25519, and
//!   `tlog-checkpoint` tree heads.
//! - [`store`]: the append-only [`AuditStore`] seam; [`SqliteStore`] is the
//!   embedded implementation (feature `sqlite`, on by default).
//! - [`log`](mod@log): the writer, [`AuditLog`], and [`Appender`], its
//!   thread-safe handle for the daemon.
//! - [`verify`](mod@verify): whole-log verification, optionally against an
//!   external checkpoint.
//! - [`bundle`]: inclusion bundles for certificates and their offline
//!   verifier, [`verify_inclusion`].
//! - [`export`](mod@export): CSV / JSON / JSON Lines export with filters.
//!
//! The format, the verification algorithm, test vectors and the threat model
//! are in `docs/audit-log.md`.
//!
//! ```
//! use lethe_audit::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
//! let public = key.verifying_key();
//! let log = Appender::new(AuditLog::open(SqliteStore::open_in_memory()?, key)?);
//! let receipt = log.append(&Entry::new(
//!     AuditTime::parse("2026-11-23T14:05:01Z")?,
//!     Source::Cli,
//!     UserId::unix_uid(0),
//!     Action::ConfigChanged,
//!     Entity::Config,
//!     RecordId::new("lethe.toml")?,
//!     Outcome::Success,
//! ))?;
//! assert_eq!(receipt.index, 0);
//! let report = log.with(|l| verify_log(l.store(), &public, None))?;
//! assert!(report.is_intact());
//! let bundle = log.with(|l| l.inclusion_bundle(0))?;
//! verify_inclusion(&bundle, bundle.leaf.as_bytes(), &public)?;
//! # Ok(()) }
//! ```

pub mod bundle;
pub mod checkpoint;
pub mod entry;
pub mod export;
pub mod leaf;
pub mod log;
pub mod merkle;
pub mod names;
pub mod note;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;
pub mod verify;

pub use bundle::{
    verify_certificate_attachment, verify_inclusion, AttachmentError, InclusionBundle,
    InclusionError, VerifiedInclusion,
};
pub use checkpoint::{open_checkpoint, Checkpoint, CheckpointError, SignedCheckpoint};
pub use entry::{AuditTime, Detail, Entry, EntryError, RecordId, Tags, Token, UserId};
pub use export::{export, ExportError, ExportFilter, ExportFormat};
pub use leaf::{decode_leaf, encode_leaf, LeafError, LEAF_PREFIX};
pub use log::{default_origin, Appender, AuditError, AuditLog, Receipt};
pub use merkle::Hash;
pub use names::{Action, Entity, Outcome, Source, TagKind};
pub use note::{NoteSigner, NoteVerifier};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, DB_FILE};
pub use store::{AuditStore, EntryFilter, StoreError, StoredCheckpoint, StoredEntry};
pub use verify::{verify_log, Finding, Reason, VerifyError, VerifyReport};
