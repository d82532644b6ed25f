//! The auditor pack's signed manifest and its check (`lethe verify-pack`).
//!
//! An auditor pack (built by `hw-tests/pack.sh`, see `docs/auditor-pack.md`)
//! is a directory: the documents as PDF and HTML, the test results by
//! safeguard, the SBOM and the dependency list. At its top, `MANIFEST` lists
//! the SHA-256 and size of every other file, and is a C2SP signed note
//! (the audit log's format, `lethe_audit::note`) signed by an Ed25519
//! release key kept like the appliance key (`lethe_cert::ApplianceKey`).
//!
//! - [`manifest`]: the signed text, parsed strictly (pure).
//! - [`dir`]: hashing the directory and comparing it with the manifest; no
//!   links followed, every difference reported.
//! - [`sign_pack`] writes the manifest of a finished directory;
//!   [`verify_pack`] checks one: the signature, then that no file was
//!   changed, added or removed.

pub mod dir;
pub mod manifest;

pub use dir::Difference;
pub use lethe_cert::Signer;
pub use manifest::{FileEntry, KeyKind, Manifest, ManifestError, FORMAT_LINE, MANIFEST_FILE};

use ed25519_dalek::VerifyingKey;
use lethe_audit::note::{sign_note, Note, NoteError, NoteVerifier, MAX_NOTE_BYTES};
use lethe_cert::{key_id_of, load_public_key, ApplianceKey};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The signed-note key name of release signatures.
pub const KEY_NAME: &str = "lethe-release";
/// The release public key's file inside a pack (64 hex digits, as
/// `appliance.pub`): a convenience for reading the key id, never a reason
/// to trust the pack.
pub const PUBLIC_KEY_FILE: &str = "release.pub";

/// Why a pack was not signed or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The manifest is larger than any note this format allows.
    #[error("the manifest is larger than {MAX_NOTE_BYTES} bytes")]
    TooLarge,
    /// `MANIFEST` is not a well-formed signed note.
    #[error("MANIFEST: {0}")]
    Note(NoteError),
    /// The signed text is not a manifest.
    #[error("MANIFEST: {0}")]
    Manifest(#[from] ManifestError),
    /// The manifest names another key than the one that must have signed it.
    #[error("signed by key {signer}, but the key to check against is {expected}")]
    WrongKey {
        /// The key id the manifest states.
        signer: String,
        /// The key id of the key given.
        expected: String,
    },
    /// The signature does not verify.
    #[error("the release signature does not verify: {0}")]
    BadSignature(NoteError),
    /// No key was given and the pack holds no usable `release.pub`.
    #[error("no key to check the signature with: pass --key RELEASE.pub ({PUBLIC_KEY_FILE} in the pack: {0})")]
    NoKey(String),
    /// The files differ from the manifest.
    #[error("{} file(s) differ from the signed manifest: {}", .0.len(), list(.0))]
    Differs(Vec<Difference>),
}

fn list(d: &[Difference]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PackError {
    let path = path.to_path_buf();
    move |source| PackError::Io { what, path, source }
}

/// The header of a manifest: everything but the file list.
#[derive(Debug, Clone)]
pub struct Header {
    /// Software version.
    pub version: String,
    /// Git commit, `+dirty` when the work tree had changes.
    pub commit: String,
    /// Build time, `YYYY-MM-DDTHH:MM:SSZ`.
    pub built: String,
    /// Release or throw-away key.
    pub key_kind: KeyKind,
}

/// Write `dir/release.pub`, hash every file of `dir` and write the signed
/// `dir/MANIFEST`. Call it last: any later change breaks the pack.
pub fn sign_pack(dir: &Path, header: &Header, key: &ApplianceKey) -> Result<Manifest, PackError> {
    let pubfile = dir.join(PUBLIC_KEY_FILE);
    std::fs::write(&pubfile, format!("{}\n", key.public_key_hex()))
        .map_err(io("writing", &pubfile))?;
    let files = dir::entries_of(dir).map_err(io("hashing the files of", dir))?;
    let manifest = Manifest {
        version: header.version.clone(),
        commit: header.commit.clone(),
        built: header.built.clone(),
        key_id: key.key_id().to_owned(),
        key_kind: header.key_kind,
        files,
    };
    manifest.validate()?;
    let note = sign_note(&manifest.to_text(), KEY_NAME, key)
        .map_err(|e| PackError::BadSignature(NoteError::BadSignature(e.0)))?;
    let text = note.to_text();
    if text.len() > MAX_NOTE_BYTES {
        return Err(PackError::TooLarge);
    }
    let path = dir.join(MANIFEST_FILE);
    std::fs::write(&path, text).map_err(io("writing", &path))?;
    Ok(manifest)
}

/// A pack that passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedPack {
    /// The signed manifest.
    pub manifest: Manifest,
    /// Trusted (signed by the key given) or unknown (checked only against
    /// the pack's own `release.pub`, which anyone could have put there).
    pub signer: Signer,
}

fn read_manifest(dir: &Path) -> Result<Note, PackError> {
    let path = dir.join(MANIFEST_FILE);
    let f = dir::open_regular(&path).map_err(io("opening", &path))?;
    let mut bytes = Vec::new();
    f.take(MAX_NOTE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io("reading", &path))?;
    if bytes.len() > MAX_NOTE_BYTES {
        return Err(PackError::TooLarge);
    }
    Note::parse(&bytes).map_err(PackError::Note)
}

/// Check the pack in `dir`: `MANIFEST` is signed by `trusted` (or, without
/// it, by the pack's own `release.pub`: [`Signer::Unknown`]), and the files
/// are exactly the ones listed, with their sizes and SHA-256.
pub fn verify_pack(dir: &Path, trusted: Option<&VerifyingKey>) -> Result<VerifiedPack, PackError> {
    let note = read_manifest(dir)?;
    let manifest = Manifest::parse(&note.text)?;
    let (key, signer) = match trusted {
        Some(k) => (*k, Signer::Trusted),
        None => {
            let p = dir.join(PUBLIC_KEY_FILE);
            let k = dir::open_regular(&p)
                .map_err(|e| e.to_string())
                .and_then(|_| load_public_key(&p.to_string_lossy()).map_err(|e| e.to_string()))
                .map_err(PackError::NoKey)?;
            (k, Signer::Unknown)
        }
    };
    let expected = key_id_of(&key);
    if manifest.key_id != expected {
        return Err(PackError::WrongKey {
            signer: manifest.key_id,
            expected,
        });
    }
    let verifier = NoteVerifier::new(KEY_NAME, key).map_err(PackError::Note)?;
    note.verify(&verifier).map_err(PackError::BadSignature)?;
    let diffs = dir::compare(dir, &manifest.files).map_err(io("reading the files of", dir))?;
    if !diffs.is_empty() {
        return Err(PackError::Differs(diffs));
    }
    Ok(VerifiedPack { manifest, signer })
}

#[cfg(test)]
mod tests;
