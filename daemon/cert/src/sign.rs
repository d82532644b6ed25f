//! Signing and strict verification of certificate files.
//!
//! Signed file: the canonical JSON of
//! `{"certificate": <body>, "signature": {"algorithm": "ed25519", "key_id": ..,
//! "public_key": .., "value": ..}}` followed by exactly one `\n`. A
//! certificate issued with an audit log may carry a third member, `"audit"`:
//! the inclusion proof of its `certificate.issued` entry (an object,
//! outside the signature, self-authenticating through the signed checkpoint
//! inside it; `lethe_audit::verify_certificate_attachment` checks it). A
//! file without it is byte for byte what earlier versions wrote.
//!
//! Signing input: the 21 ASCII bytes `lethe-certificate-v1\n` followed by the
//! canonical JSON of the body (the exact bytes that appear after
//! `{"certificate":` in the file). The prefix separates these signatures from
//! anything else the appliance key might ever sign.
//!
//! Verification is strict: the file must be byte-for-byte what [`sign`] would
//! have written for its content, so changing any byte fails.

use crate::canonical::{parse_strict, to_canonical, ParseError};
use crate::key::{key_id_of, parse_hex32, ApplianceKey};
use crate::model::{valid_id, CertificateBody, FORMAT};
use crate::CertError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Domain-separation prefix of the signing input.
pub const SIGNING_PREFIX: &[u8] = b"lethe-certificate-v1\n";
/// Value of `signature.algorithm`.
pub const ALGORITHM: &str = "ed25519";
/// Files larger than this are not certificates (a full one is a few KiB; this
/// leaves room for tens of thousands of failed ranges).
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// The `signature` object of a certificate file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureBlock {
    /// Always `"ed25519"`.
    pub algorithm: String,
    /// First 16 hex digits of SHA-256 of the public key bytes.
    pub key_id: String,
    /// The 32-byte public key, 64 lowercase hex digits.
    pub public_key: String,
    /// The 64-byte signature, standard base64 with padding (88 characters).
    pub value: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayout {
    certificate: Value,
    signature: Value,
    #[serde(default)]
    audit: Option<Value>,
}

/// A signed certificate and the exact bytes of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCertificate {
    body: CertificateBody,
    signature: SignatureBlock,
    body_canonical: Vec<u8>,
    /// The audit attachment (an object), outside the signature.
    audit: Option<Value>,
    file: Vec<u8>,
}

impl SignedCertificate {
    /// The certificate file: canonical JSON and one trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.file.clone()
    }
    /// The file bytes without copying.
    pub fn as_bytes(&self) -> &[u8] {
        &self.file
    }
    /// The signed body.
    pub fn body(&self) -> &CertificateBody {
        &self.body
    }
    /// The signature block.
    pub fn signature(&self) -> &SignatureBlock {
        &self.signature
    }
    /// Key id of the signing key.
    pub fn key_id(&self) -> &str {
        &self.signature.key_id
    }
    /// The canonical JSON of the body (signed after [`SIGNING_PREFIX`]).
    pub fn body_canonical(&self) -> &[u8] {
        &self.body_canonical
    }
    /// SHA-256 (lowercase hex) of the canonical body JSON.
    pub fn body_sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.body_canonical))
    }
    /// SHA-256 (lowercase hex) of the whole file, as `sha256sum <id>.json` prints.
    pub fn file_sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.file))
    }
    /// The audit attachment, if the certificate carries one.
    pub fn audit(&self) -> Option<&Value> {
        self.audit.as_ref()
    }
    /// The same certificate carrying `audit` (a JSON object: the inclusion
    /// proof of its `certificate.issued` audit entry). The body and its
    /// signature are unchanged; only the file gains the `"audit"` member.
    pub fn with_audit(mut self, audit: Value) -> Result<Self, CertError> {
        if !audit.is_object() {
            return Err(CertError::InvalidBody(
                "the audit attachment must be a JSON object".into(),
            ));
        }
        let body =
            serde_json::to_value(&self.body).map_err(|e| CertError::InvalidBody(e.to_string()))?;
        self.file =
            assemble(&body, &self.signature, Some(&audit)).map_err(CertError::InvalidBody)?;
        self.audit = Some(audit);
        Ok(self)
    }
}

fn signing_input(body_canonical: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(SIGNING_PREFIX.len() + body_canonical.len());
    input.extend_from_slice(SIGNING_PREFIX);
    input.extend_from_slice(body_canonical);
    input
}

fn assemble(body: &Value, sig: &SignatureBlock, audit: Option<&Value>) -> Result<Vec<u8>, String> {
    let sig_value = serde_json::to_value(sig).map_err(|e| e.to_string())?;
    let mut top = serde_json::Map::new();
    top.insert("certificate".into(), body.clone());
    top.insert("signature".into(), sig_value);
    if let Some(a) = audit {
        top.insert("audit".into(), a.clone());
    }
    let mut file = to_canonical(&Value::Object(top)).map_err(|e| e.to_string())?;
    file.push(b'\n');
    Ok(file)
}

/// Sign `body` with the appliance key.
///
/// The body is first [settled](CertificateBody::settled): a status its
/// evidence does not support is lowered (never raised) and a message says so.
/// [`SignedCertificate::body`] is what was signed. A body that breaks a
/// format or consistency rule is refused ([`CertError::InvalidBody`]).
pub fn sign(body: &CertificateBody, key: &ApplianceKey) -> Result<SignedCertificate, CertError> {
    let body = &body.settled();
    body.validate().map_err(|e| CertError::InvalidBody(e.0))?;
    let value = serde_json::to_value(body).map_err(|e| CertError::InvalidBody(e.to_string()))?;
    let body_canonical = to_canonical(&value).map_err(|e| CertError::InvalidBody(e.to_string()))?;
    let sig = key.signing_key().sign(&signing_input(&body_canonical));
    let signature = SignatureBlock {
        algorithm: ALGORITHM.into(),
        key_id: key.key_id().to_owned(),
        public_key: key.public_key_hex(),
        value: STANDARD.encode(sig.to_bytes()),
    };
    let file = assemble(&value, &signature, None).map_err(CertError::InvalidBody)?;
    Ok(SignedCertificate {
        body: body.clone(),
        signature,
        body_canonical,
        audit: None,
        file,
    })
}

/// Why a certificate file did not verify. Messages are written for the
/// technician holding the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not JSON at all.
    #[error("not a certificate: the file is not JSON ({0})")]
    NotJson(String),
    /// The file ends early.
    #[error("the certificate file is truncated: {0}; copy it again from the appliance")]
    Truncated(String),
    /// JSON, but not shaped like a certificate.
    #[error("not a Lethe certificate: {0}")]
    NotACertificate(String),
    /// A format or algorithm this version does not know.
    #[error("unsupported certificate format: {0}")]
    UnsupportedFormat(String),
    /// Same content but different bytes (re-formatted, re-ordered, duplicated...).
    #[error("the file was modified or re-formatted after signing ({0}); only the original file can be verified")]
    NotCanonical(String),
    /// The signature block's hex/base64 is malformed.
    #[error("the signature block is damaged: {0}")]
    BadEncoding(String),
    /// Valid signature, but not by the expected key.
    #[error("signed by another key: expected key_id {expected}, found {found}")]
    WrongKey {
        /// Key id the caller expected.
        expected: String,
        /// Key id that signed the file.
        found: String,
    },
    /// Well formed, but a rule of the format is broken (a time that is not a
    /// real UTC time, a sample seed that is not hex, a status its evidence
    /// does not support...). Lethe never signs such a body.
    #[error("the certificate breaks a rule of the format: {0}")]
    BreaksRule(String),
    /// The signature does not match the content.
    #[error("INVALID signature: the certificate content does not match its signature (it was altered after signing, or the signature is forged)")]
    BadSignature,
}

/// Whether the signer of a verified certificate is one the caller trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// Signed by the key the caller named (`--key`, or this appliance's own key).
    Trusted,
    /// The signature is valid, but no key was named: anyone could have made
    /// this file with a key of their own.
    Unknown,
}

/// A certificate whose file passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCertificate {
    signed: SignedCertificate,
    signer: Signer,
}

impl VerifiedCertificate {
    /// The verified body.
    pub fn body(&self) -> &CertificateBody {
        &self.signed.body
    }
    /// Key id that signed it.
    pub fn key_id(&self) -> &str {
        &self.signed.signature.key_id
    }
    /// Whether the signer is the key the caller asked for.
    pub fn signer(&self) -> Signer {
        self.signer
    }
    /// The signed certificate (for rendering a PDF or saving).
    pub fn signed(&self) -> &SignedCertificate {
        &self.signed
    }
    /// Consume into the signed certificate.
    pub fn into_signed(self) -> SignedCertificate {
        self.signed
    }
    /// The facts, without a verdict word:
    /// `cert job-1 · pass · Clear/overwrite · QEMU HARDDISK QM0001 · 268439552 bytes written · signed by key 1a2b3c4d5e6f7a8b`.
    pub fn describe(&self) -> String {
        let b = self.body();
        format!(
            "cert {} \u{b7} {} \u{b7} {}/{} \u{b7} {} {} \u{b7} {} bytes written \u{b7} signed by key {}",
            b.id,
            b.result.status.as_str(),
            b.method.category,
            b.method.technique,
            b.device.model,
            b.device.serial,
            b.result.bytes_written,
            self.key_id()
        )
    }
    /// One line for `lethe cert verify`: `VALID  <describe>` only when the
    /// signer is trusted, otherwise `SIGNATURE VALID, SIGNER UNKNOWN  <describe>`.
    pub fn summary(&self) -> String {
        match self.signer {
            Signer::Trusted => format!("VALID  {}", self.describe()),
            Signer::Unknown => format!("SIGNATURE VALID, SIGNER UNKNOWN  {}", self.describe()),
        }
    }
}

/// Verify a certificate file. With `expected`, the file must also be signed
/// by that key.
pub fn verify(
    bytes: &[u8],
    expected: Option<&VerifyingKey>,
) -> Result<VerifiedCertificate, VerifyError> {
    if bytes.is_empty() {
        return Err(VerifyError::Truncated("the file is empty".into()));
    }
    if bytes.len() > MAX_FILE_BYTES {
        return Err(VerifyError::NotACertificate(format!(
            "the file is {} bytes, far larger than any certificate",
            bytes.len()
        )));
    }
    let value = parse_strict(bytes).map_err(|e| match e {
        ParseError::Eof(m) => {
            VerifyError::Truncated(format!("it ends in the middle of the JSON ({m})"))
        }
        ParseError::Syntax(m) => VerifyError::NotJson(m),
        ParseError::Strict(m) | ParseError::Trailing(m) => VerifyError::NotCanonical(m),
    })?;
    if !value.is_object() {
        return Err(VerifyError::NotACertificate(
            "the JSON is not an object with \"certificate\" and \"signature\" fields".into(),
        ));
    }
    let layout: FileLayout = serde_json::from_value(value)
        .map_err(|e| VerifyError::NotACertificate(format!("top level: {e}")))?;
    // Check the format before the full shape, so a future version says so clearly.
    if let Some(format) = layout.certificate.get("format") {
        if format.as_str() != Some(FORMAT) {
            return Err(VerifyError::UnsupportedFormat(format!(
                "the file says format {format}, this version of lethe reads {FORMAT:?}"
            )));
        }
    }
    let body: CertificateBody = serde_json::from_value(layout.certificate.clone())
        .map_err(|e| VerifyError::NotACertificate(format!("certificate: {e}")))?;
    let signature: SignatureBlock = serde_json::from_value(layout.signature)
        .map_err(|e| VerifyError::NotACertificate(format!("signature: {e}")))?;
    if layout.audit.as_ref().is_some_and(|a| !a.is_object()) {
        return Err(VerifyError::NotACertificate(
            "the audit attachment is not an object".into(),
        ));
    }
    if !valid_id(&body.id) {
        return Err(VerifyError::NotACertificate(format!(
            "certificate id {:?} is not a valid id",
            body.id
        )));
    }
    body.validate().map_err(|e| VerifyError::BreaksRule(e.0))?;
    if signature.algorithm != ALGORITHM {
        return Err(VerifyError::UnsupportedFormat(format!(
            "signature algorithm {:?}, this version of lethe checks {ALGORITHM:?} only",
            signature.algorithm
        )));
    }

    // Byte equality with what `sign` writes for this content. The body is
    // re-serialized from the typed struct, so omitted optional fields (which
    // serde reads as None) also fail here.
    let body_value =
        serde_json::to_value(&body).map_err(|e| VerifyError::NotACertificate(e.to_string()))?;
    let body_canonical =
        to_canonical(&body_value).map_err(|e| VerifyError::NotCanonical(e.to_string()))?;
    let expected_file = assemble(&body_value, &signature, layout.audit.as_ref())
        .map_err(VerifyError::NotCanonical)?;
    if bytes != expected_file.as_slice() {
        return Err(
            if bytes.len() + 1 == expected_file.len() && expected_file.starts_with(bytes) {
                VerifyError::Truncated("the final newline is missing".into())
            } else {
                VerifyError::NotCanonical(first_difference(bytes, &expected_file))
            },
        );
    }

    let pk_bytes = parse_hex32(&signature.public_key, true).ok_or_else(|| {
        VerifyError::BadEncoding("public_key must be 64 lowercase hex digits".into())
    })?;
    let public_key = VerifyingKey::from_bytes(&pk_bytes)
        .map_err(|_| VerifyError::BadEncoding("public_key is not a valid Ed25519 key".into()))?;
    // A y coordinate of p or more decodes modulo p: such a key has a second,
    // non-canonical spelling. Refuse it (RFC 8032 5.1.3 step 1).
    if public_key.to_edwards().compress().to_bytes() != pk_bytes {
        return Err(VerifyError::BadEncoding(
            "public_key is not a canonical Ed25519 encoding".into(),
        ));
    }
    let key_id = key_id_of(&public_key);
    if signature.key_id != key_id {
        return Err(VerifyError::BadEncoding(format!(
            "key_id {:?} does not belong to the public key in the file (its id is {key_id})",
            signature.key_id
        )));
    }
    let sig_bytes = STANDARD.decode(signature.value.as_bytes()).map_err(|e| {
        VerifyError::BadEncoding(format!("signature value is not canonical base64 ({e})"))
    })?;
    let sig_array: [u8; 64] = sig_bytes.as_slice().try_into().map_err(|_| {
        VerifyError::BadEncoding(format!(
            "signature value decodes to {} bytes, an Ed25519 signature has 64",
            sig_bytes.len()
        ))
    })?;
    let sig = Signature::from_bytes(&sig_array);
    public_key
        .verify_strict(&signing_input(&body_canonical), &sig)
        .map_err(|_| VerifyError::BadSignature)?;
    if let Some(want) = expected {
        if want != &public_key {
            return Err(VerifyError::WrongKey {
                expected: key_id_of(want),
                found: key_id,
            });
        }
    }
    Ok(VerifiedCertificate {
        signed: SignedCertificate {
            body,
            signature,
            body_canonical,
            audit: layout.audit,
            file: bytes.to_vec(),
        },
        signer: if expected.is_some() {
            Signer::Trusted
        } else {
            Signer::Unknown
        },
    })
}

fn first_difference(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    format!("first difference at byte {at}")
}
