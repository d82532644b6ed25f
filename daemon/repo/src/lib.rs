//! Backup repository format (pure code: no file, network or clock access).
//!
//! Pipeline for one chunk: [`chunker::Chunker`] (keyed FastCDC) -> [`crypto::RepoKeys::blob_id`]
//! (keyed BLAKE3) -> dedup check against [`index::Index`] -> [`pack::seal_blob`] (zstd if it
//! helps, AES-256-GCM with per-session keys, header + id bound as AAD) ->
//! [`pack::PackBuilder`] (~16 MiB packs with an encrypted trailer header) ->
//! [`index::IndexFile`] -> [`tree::Tree`] / [`tree::ExtentList`] -> [`snapshot::Snapshot`].
//! Keys: [`keys::KeyFile`] (Argon2id-wrapped master key) and the printable recovery key.
//! Byte layouts are specified in `docs/backup-format.md`.

pub mod chunker;
pub mod codec;
pub mod crypto;
pub mod error;
pub mod ids;
pub mod index;
pub mod keys;
pub mod object;
pub mod pack;
pub mod recovery;
pub mod retention;
pub mod snapshot;
pub mod tree;

pub use error::{RepoError, Result};
pub use ids::{FileKind, Id};
pub use object::{BlobKind, ObjectType};
