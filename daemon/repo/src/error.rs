//! Typed errors for every parser and operation in the repository format.
//!
//! Each variant names *what* was being read, so `check` can report "pack header of
//! data/ab/ab12..: authentication failed" rather than a bare "invalid data".

use thiserror::Error;

/// Result alias for this crate.
pub type Result<T, E = RepoError> = std::result::Result<T, E>;

/// Everything that can go wrong while building or parsing repository objects.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RepoError {
    /// Input ended before a fixed-size field or declared length.
    #[error("{what}: truncated (need {need} bytes, have {have})")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    /// Magic bytes do not match.
    #[error("{what}: bad magic {found:02x?}")]
    BadMagic { what: &'static str, found: Vec<u8> },
    /// Known magic but a format version this code does not read.
    #[error("{what}: unsupported format version {version}")]
    UnsupportedVersion { what: &'static str, version: u8 },
    /// Object type byte is not one we know.
    #[error("unknown object type {0:#04x}")]
    UnknownObjectType(u8),
    /// Object decrypted fine but is of a different type than the caller asked for.
    #[error("wrong object type: expected {expected}, found {found}")]
    WrongObjectType {
        expected: &'static str,
        found: &'static str,
    },
    /// Compression byte is not one we know.
    #[error("unknown compression {0:#04x}")]
    UnknownCompression(u8),
    /// A reserved byte or field is not zero.
    #[error("{what}: reserved field is {value:#x}, expected 0")]
    Reserved { what: &'static str, value: u64 },
    /// AEAD tag did not verify: wrong key, tampered or corrupted bytes, or the object
    /// was moved to a different id/place than it was sealed for.
    #[error("{what}: authentication failed (wrong key, or corrupted/tampered data)")]
    Authentication { what: &'static str },
    /// The decrypted plaintext is not a valid encoding of the expected structure.
    #[error("{what}: malformed encoding: {detail}")]
    Decode { what: &'static str, detail: String },
    /// zstd refused the compressed payload.
    #[error("{what}: decompression failed: {detail}")]
    Decompress { what: &'static str, detail: String },
    /// A declared length does not match the actual one.
    #[error("{what}: length mismatch (declared {declared}, actual {actual})")]
    LengthMismatch {
        what: &'static str,
        declared: u64,
        actual: u64,
    },
    /// Content hash does not match the id it is stored under.
    #[error("{what}: id mismatch (expected {expected}, computed {computed})")]
    IdMismatch {
        what: &'static str,
        expected: String,
        computed: String,
    },
    /// A value is outside the range this format allows.
    #[error("{what}: value {value} out of range ({min}..={max})")]
    OutOfRange {
        what: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    /// Structural rule violated (ordering, duplicates, overlaps...).
    #[error("{what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    /// Hex or recovery-key text could not be parsed.
    #[error("{what}: cannot parse text: {detail}")]
    Text { what: &'static str, detail: String },
    /// Passphrase did not unlock the key file.
    #[error("wrong passphrase for key file (or the key file is corrupted)")]
    WrongPassphrase,
    /// Recovery key checksum failed: a typo, or a key for another repository.
    #[error("recovery key checksum mismatch (typo?)")]
    RecoveryChecksum,
    /// Key-management rule refused the operation.
    #[error("key management: {0}")]
    KeyPolicy(&'static str),
    /// A session used up its nonce space; start a new session.
    #[error("encryption session exhausted after {0} objects; start a new session")]
    SessionExhausted(u64),
    /// An object is sealed under a key epoch this keyring does not have (a key file
    /// older than a `key rotate`, or a forged epoch).
    #[error("sealed under key epoch {epoch}, but the key file knows only {known} epoch(s): it predates a key rotation")]
    UnknownEpoch { epoch: u32, known: u32 },
    /// The underlying crypto library failed (should not happen with valid inputs).
    #[error("crypto library error in {0}")]
    Crypto(&'static str),
}

pub(crate) fn need(what: &'static str, buf: &[u8], n: usize) -> Result<()> {
    if buf.len() < n {
        Err(RepoError::Truncated {
            what,
            need: n,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}
