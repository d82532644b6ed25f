//! Checkpoints: signed tree heads in the C2SP `tlog-checkpoint` format.
//!
//! ```text
//! lethe/audit/1f0e4b5c6d7a8b9c          origin (also the signing key's name)
//! 42                                    tree size, decimal, no leading zeros
//! 3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=   base64 root hash (32 bytes)
//!                                       blank line
//! — lethe/audit/1f0e4b5c6d7a8b9c <base64(key id || Ed25519 signature)>
//! ```
//!
//! Extension lines (after the root, non-empty) are parsed and kept but Lethe
//! writes none. The key name of Lethe's signature line is the origin, as the
//! spec recommends; a checkpoint is accepted when the line with that name and
//! the trusted key's id verifies.

use crate::merkle::Hash;
use crate::note::{is_key_name, sign_note, Note, NoteError, NoteSigner, NoteVerifier, SignError};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;

/// Why a checkpoint was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note around it is malformed or not signed by the trusted key.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The note text is not origin / size / root.
    #[error("not a checkpoint: {0}")]
    Body(&'static str),
    /// The checkpoint is for another log than the one expected.
    #[error("the checkpoint is for log {found:?}, not {expected:?}")]
    Origin {
        /// The origin expected.
        expected: String,
        /// The origin found.
        found: String,
    },
}

/// A tree head: which log, how many entries, and the Merkle root over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (and the signing key's name).
    pub origin: String,
    /// Number of entries covered.
    pub size: u64,
    /// RFC 6962 root hash over entries `0..size`.
    pub root: Hash,
    /// Opaque extension lines (Lethe writes none).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: origin, size, base64 root, extension lines.
    pub fn text(&self) -> String {
        let mut t = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            t.push_str(e);
            t.push('\n');
        }
        t
    }

    /// The root hash in base64, as on the checkpoint's third line.
    pub fn root_base64(&self) -> String {
        B64.encode(self.root)
    }

    /// Parse note text into a checkpoint (structure only).
    pub fn from_text(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Body("does not end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if !is_key_name(origin) {
            return Err(CheckpointError::Body(
                "the origin is empty or has spaces or '+'",
            ));
        }
        let size_line = lines.next().ok_or(CheckpointError::Body("no tree size"))?;
        let canonical_decimal = !size_line.is_empty()
            && size_line.bytes().all(|c| c.is_ascii_digit())
            && (size_line == "0" || !size_line.starts_with('0'));
        let size: u64 =
            size_line
                .parse()
                .ok()
                .filter(|_| canonical_decimal)
                .ok_or(CheckpointError::Body(
                    "the tree size is not a decimal number",
                ))?;
        let root_line = lines.next().ok_or(CheckpointError::Body("no root hash"))?;
        let root: Hash = B64
            .decode(root_line)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(CheckpointError::Body(
                "the root hash is not 32 bytes of base64",
            ))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(CheckpointError::Body("an extension line is empty"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Sign with `signer` under the key name `self.origin`.
    pub fn sign(&self, signer: &dyn NoteSigner) -> Result<SignedCheckpoint, SignError> {
        let note = sign_note(&self.text(), &self.origin, signer)?;
        Ok(SignedCheckpoint {
            checkpoint: self.clone(),
            note: note.to_text(),
        })
    }
}

/// A checkpoint with its signed-note text, as stored and published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed checkpoint.
    pub checkpoint: Checkpoint,
    /// The whole signed note.
    pub note: String,
}

/// Parse a signed checkpoint and check it is signed by `trusted` under the
/// key name equal to its origin (and, if given, that it is for `origin`).
pub fn open_checkpoint(
    note_text: &[u8],
    trusted: &VerifyingKey,
    origin: Option<&str>,
) -> Result<SignedCheckpoint, CheckpointError> {
    let note = Note::parse(note_text)?;
    let checkpoint = Checkpoint::from_text(&note.text)?;
    if let Some(expected) = origin {
        if checkpoint.origin != expected {
            return Err(CheckpointError::Origin {
                expected: expected.to_owned(),
                found: checkpoint.origin,
            });
        }
    }
    note.verify(&NoteVerifier::new(&checkpoint.origin, *trusted)?)?;
    Ok(SignedCheckpoint {
        checkpoint,
        note: note.to_text(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    /// The example in c2sp.org/tlog-checkpoint (its key is not published, so
    /// only the structure is checked).
    const SPEC_EXAMPLE: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

    #[test]
    fn parses_the_spec_example() {
        let note = Note::parse(SPEC_EXAMPLE.as_bytes()).unwrap();
        let cp = Checkpoint::from_text(&note.text).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20_852_163);
        assert_eq!(cp.text(), note.text);
        // Signed by a key we do not have: refused with the reason.
        let other = SigningKey::from_bytes(&[1; 32]).verifying_key();
        assert!(matches!(
            open_checkpoint(SPEC_EXAMPLE.as_bytes(), &other, None),
            Err(CheckpointError::Note(
                NoteError::NotSignedByTrustedKey { .. }
            ))
        ));
    }

    #[test]
    fn sign_then_open() {
        let k = SigningKey::from_bytes(&[4; 32]);
        let cp = Checkpoint {
            origin: "lethe/audit/test".into(),
            size: 3,
            root: [7; 32],
            extensions: vec![],
        };
        let signed = cp.sign(&k).unwrap();
        let opened = open_checkpoint(
            signed.note.as_bytes(),
            &k.verifying_key(),
            Some("lethe/audit/test"),
        )
        .unwrap();
        assert_eq!(opened, signed);
        assert!(matches!(
            open_checkpoint(
                signed.note.as_bytes(),
                &k.verifying_key(),
                Some("lethe/audit/other")
            ),
            Err(CheckpointError::Origin { .. })
        ));
        let tampered = signed.note.replacen("\n3\n", "\n4\n", 1);
        assert!(open_checkpoint(tampered.as_bytes(), &k.verifying_key(), None).is_err());
    }

    #[test]
    fn bodies_with_one_spelling_only() {
        let root = B64.encode([0u8; 32]);
        assert!(Checkpoint::from_text(&format!("o\n0\n{root}\n")).is_ok());
        assert!(Checkpoint::from_text(&format!("o\n5\n{root}\next\n")).is_ok());
        for bad in [
            format!("o\n05\n{root}\n"),
            format!("o\n+5\n{root}\n"),
            format!("o\n\n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            format!("o o\n5\n{root}\n"),
            format!("\n5\n{root}\n"),
            format!("o\n5\n{}\n", B64.encode([0u8; 31])),
            format!("o\n5\n{root}"),
            format!("o\n5\n{root}\n\nx\n"),
            "o\n5\n".to_string(),
        ] {
            assert!(Checkpoint::from_text(&bad).is_err(), "accepted {bad:?}");
        }
    }
}
