//! Inclusion bundles: offline proof that one entry is in the audit log.
//!
//! A certificate carries the bundle of its `certificate.issued` entry: the
//! signed checkpoint current when the entry was sealed, the entry's index,
//! its RFC 6962 audit path and the leaf itself. An auditor with the
//! appliance's public key checks it with [`verify_inclusion`] alone, without
//! the appliance or its database. Keeping the checkpoint from the bundle
//! also pins the log: a later `lethe audit verify --checkpoint` against it
//! detects truncation or rewriting below that size.
//!
//! JSON form (field order irrelevant, unknown fields refused):
//!
//! ```json
//! {"checkpoint":"<signed note text>","index":12,"leaf":"lethe-audit-v1\n{...}","proof":["<base64 hash>",...]}
//! ```

use crate::checkpoint::{open_checkpoint, Checkpoint, CheckpointError};
use crate::entry::Entry;
use crate::leaf::{decode_leaf, LeafError};
use crate::merkle::{leaf_hash, verify_inclusion as verify_path, Hash, ProofError};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

/// Proof that `leaf` is entry `index` of the log described by `checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionBundle {
    /// The signed checkpoint (signed-note text).
    pub checkpoint: String,
    /// The entry's index.
    pub index: u64,
    /// The audit path, base64 hashes, leaf side first.
    pub proof: Vec<String>,
    /// The leaf (`lethe-audit-v1\n{...}`).
    pub leaf: String,
}

/// Why a bundle did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InclusionError {
    /// The bundle's leaf is not the entry the caller expected.
    #[error("the bundle is for another entry than the one given")]
    LeafMismatch,
    /// The leaf is not a valid entry.
    #[error("the bundle's leaf is not an audit entry: {0}")]
    Leaf(#[from] LeafError),
    /// The leaf's own sequence number is not the bundle's index.
    #[error("the leaf says it is entry {leaf}, the bundle says {bundle}")]
    IndexMismatch {
        /// `seq` inside the leaf.
        leaf: u64,
        /// The bundle's index.
        bundle: u64,
    },
    /// The checkpoint is malformed or not signed by the trusted key.
    #[error("the bundle's checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A proof element is not 32 bytes of base64.
    #[error("proof element {0} is not a base64 SHA-256 hash")]
    ProofEncoding(usize),
    /// The audit path does not lead to the checkpoint's root.
    #[error("the inclusion proof does not verify: {0}")]
    Proof(#[from] ProofError),
}

/// What a verified bundle establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedInclusion {
    /// The signed checkpoint that includes the entry.
    pub checkpoint: Checkpoint,
    /// The entry's index.
    pub index: u64,
    /// The entry.
    pub entry: Entry,
}

/// Check that `entry_bytes` (the leaf the caller expects) is entry
/// `bundle.index` of a log whose checkpoint `trusted` signed.
pub fn verify_inclusion(
    bundle: &InclusionBundle,
    entry_bytes: &[u8],
    trusted: &VerifyingKey,
) -> Result<VerifiedInclusion, InclusionError> {
    if bundle.leaf.as_bytes() != entry_bytes {
        return Err(InclusionError::LeafMismatch);
    }
    let (seq, entry) = decode_leaf(entry_bytes)?;
    if seq != bundle.index {
        return Err(InclusionError::IndexMismatch {
            leaf: seq,
            bundle: bundle.index,
        });
    }
    let signed = open_checkpoint(bundle.checkpoint.as_bytes(), trusted, None)?;
    let proof: Vec<Hash> = bundle
        .proof
        .iter()
        .enumerate()
        .map(|(i, p)| {
            B64.decode(p)
                .ok()
                .and_then(|b| <Hash>::try_from(b.as_slice()).ok())
                .ok_or(InclusionError::ProofEncoding(i))
        })
        .collect::<Result<_, _>>()?;
    let cp = signed.checkpoint;
    verify_path(
        bundle.index,
        cp.size,
        &leaf_hash(entry_bytes),
        &proof,
        &cp.root,
    )?;
    Ok(VerifiedInclusion {
        checkpoint: cp,
        index: bundle.index,
        entry,
    })
}

/// Why a certificate's audit attachment did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// The attachment is not an inclusion bundle.
    #[error("the audit attachment is not an inclusion bundle: {0}")]
    Shape(String),
    /// The bundle does not prove inclusion under the trusted key.
    #[error(transparent)]
    Inclusion(#[from] InclusionError),
    /// The entry proved is not this certificate's `certificate.issued` entry.
    #[error("the audit entry is not this certificate's issue record: {0}")]
    NotThisCertificate(String),
}

/// Check the `audit` attachment of a certificate: a bundle proving, under
/// `trusted`, that the log holds a `certificate.issued` entry for this
/// certificate's id whose `body_sha256` is the hash of this certificate's
/// signed body. `None` when the certificate carries no attachment (one
/// issued without an audit log, or before audit logs existed).
///
/// The attachment is outside the certificate's own signature; it needs none:
/// the checkpoint in it is signed, and the entry binds the body by hash.
pub fn verify_certificate_attachment(
    cert: &lethe_cert::SignedCertificate,
    trusted: &VerifyingKey,
) -> Result<Option<VerifiedInclusion>, AttachmentError> {
    let Some(value) = cert.audit() else {
        return Ok(None);
    };
    let bundle: InclusionBundle =
        serde_json::from_value(value.clone()).map_err(|e| AttachmentError::Shape(e.to_string()))?;
    let v = verify_inclusion(&bundle, bundle.leaf.as_bytes(), trusted)?;
    let e = &v.entry;
    let not = |why: String| Err(AttachmentError::NotThisCertificate(why));
    if e.action != crate::names::Action::CertificateIssued {
        return not(format!("it records {}", e.action));
    }
    if e.entity != crate::names::Entity::Certificate {
        return not(format!("it concerns a {}", e.entity));
    }
    if e.record_id.as_str() != cert.body().id {
        return not(format!(
            "it is for certificate {}, this is {}",
            e.record_id,
            cert.body().id
        ));
    }
    let hash = cert.body_sha256();
    match e
        .detail
        .as_json()
        .get("body_sha256")
        .and_then(|h| h.as_str())
    {
        Some(h) if h == hash => Ok(Some(v)),
        Some(h) => not(format!(
            "it records body hash {h}, this certificate's body hashes to {hash}"
        )),
        None => not("it records no body hash".into()),
    }
}
