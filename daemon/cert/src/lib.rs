//! Certificates of sanitization: canonical JSON, Ed25519 signatures, PDF rendering.
//!
//! A certificate is a [`CertificateBody`] (NIST SP 800-88 Rev.1 Appendix G /
//! IEEE 2883 fields) signed by the appliance's Ed25519 key. The signed file is
//! canonical JSON, so a single changed byte anywhere makes [`verify`] fail; the
//! PDF is a rendering for people and carries the key id and hashes needed to
//! tie it back to the JSON. The format is specified in `docs/certificate.md`.
//!
//! - [`model`]: the body and its nested records, the typed [`ResultStatus`]
//!   the job library sets, and the consistency rules.
//! - [`canonical`]: the canonical JSON writer and the strict reader.
//! - [`sign`](mod@sign): signing, the file layout, strict verification.
//! - [`key`]: the appliance key files and public-key loading.
//! - [`store`]: the certificate directory (`<id>.json` + `<id>.pdf`).
//! - [`read`]: reading a certificate file (regular files only, bounded size).
//! - [`pdf`]: the auditor-facing PDF ("Certificate of Sanitization" only for
//!   `pass` / `clear_only`, otherwise "Sanitization report — STATUS"), with
//!   embedded subsetted fonts for Latin, Greek, Cyrillic and CJK text.
//!
//! ```no_run
//! use lethe_cert::{sign, verify, render_pdf, ApplianceKey, CertStore, CertificateBody};
//! # fn body() -> CertificateBody { unimplemented!() }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = ApplianceKey::load_or_create(std::path::Path::new("/var/lib/lethe/keys"))?;
//! let signed = sign(&body(), &key)?;
//! let (json, _pdf) = CertStore::new("/var/lib/lethe/certs").save(&signed)?;
//! let checked = verify(&std::fs::read(json)?, Some(&key.verifying_key()))?;
//! println!("{}", checked.summary());
//! let _pdf_bytes: Vec<u8> = render_pdf(&signed);
//! # Ok(()) }
//! ```

pub mod canonical;
pub mod key;
pub mod model;
pub mod pdf;
pub mod read;
pub mod sign;
pub mod store;

pub use ed25519_dalek::VerifyingKey;
pub use key::{is_seed_of, key_id_of, load_public_key, ApplianceKey};
pub use model::*;
pub use pdf::render_pdf;
pub use read::read_certificate_file;
pub use sign::{
    sign, verify, SignatureBlock, SignedCertificate, Signer, VerifiedCertificate, VerifyError,
    SIGNING_PREFIX,
};
pub use store::{CertStore, CertSummary};

use std::path::PathBuf;

/// Errors of signing, key handling and the certificate store.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The private key file is unusable.
    #[error("appliance key {path}: {problem}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A public key argument could not be used.
    #[error("public key: {0}")]
    PublicKey(String),
    /// The OS random generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
    /// The body breaks a format rule and was not signed.
    #[error("certificate cannot be signed: {0}")]
    InvalidBody(String),
    /// A stored certificate failed verification.
    #[error("{path}: {source}")]
    Verify {
        /// The certificate file.
        path: PathBuf,
        /// Why it failed.
        source: VerifyError,
    },
    /// A different certificate with this id is already stored.
    #[error("a different certificate {0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// The path is not a regular file; nothing was read from it.
    #[error("{path}: is {kind}, not a certificate file; nothing was read")]
    NotARegularFile {
        /// The path given.
        path: PathBuf,
        /// What it is.
        kind: String,
    },
    /// The file is larger than any certificate; nothing was read.
    #[error("{path}: {len} bytes, far larger than any certificate; nothing was read")]
    TooLarge {
        /// The path given.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
    /// A private key was given where a public key belongs.
    #[error("{0} is a PRIVATE key: pass the public key (appliance.pub, or its 64 hex digits) and keep the private key secret")]
    PrivateKeyGiven(String),
    /// No certificate with this id or path.
    #[error("no certificate {0:?} (not a file, and not an id in {1})")]
    NotFound(String, PathBuf),
}

/// The current time as RFC 3339 UTC (`2026-11-23T14:05:00Z`), for callers
/// filling `issued_at`. The rest of the crate never reads the clock.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    lethe_core::timefmt::rfc3339_utc(i64::try_from(secs).unwrap_or(i64::MAX))
}
