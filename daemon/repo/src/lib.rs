//! Backup repository format (pure code: no file, network or clock access).
//!
//! Pipeline for one chunk: [`chunker::Chunker`] (keyed FastCDC) -> [`crypto::RepoKeys::blob_id`]
//! (keyed BLAKE3) -> dedup check against [`index::Index`] -> [`pack::PackBuilder`] (zstd if
//! it helps, AES-256-GCM-SIV with kind, lengths and id bound as AAD, no per-blob header,
//! ~16 MiB packs padded to a Padmé length with an encrypted header) ->
//! [`index::IndexFile`] -> [`tree::Tree`] / [`tree::ExtentList`] -> [`snapshot::Snapshot`]
//! -> [`manifest::Manifest`] (the sealed list of live snapshots and index files, with a
//! generation counter). Keys: [`keys::KeyFile`] slots (passphrase or recovery key) that
//! open the [`crypto::Keyring`] of master keys, one per epoch.
//! Format version 2 is written; version 1 is read. Byte layouts are specified in
//! `docs/backup-format.md`.

pub mod chunker;
pub mod codec;
pub mod crypto;
pub mod error;
pub mod ids;
pub mod index;
pub mod keys;
pub mod manifest;
pub mod object;
pub mod pack;
pub mod recovery;
pub mod retention;
pub mod snapshot;
pub mod tree;

pub use error::{RepoError, Result};
pub use ids::{FileKind, Id};
pub use object::{BlobKind, ObjectType};
