//! C2SP signed notes (`c2sp.org/signed-note`) with Ed25519 signatures.
//!
//! ```text
//! <text, one or more lines, each ending in "\n">
//! <empty line>
//! — <key name> <base64(key id (4 bytes, big-endian) || Ed25519 signature (64 bytes))>
//! ```
//!
//! The key id is `SHA-256(key name || 0x0A || 0x01 || public key)[:4]`
//! (`0x01` is the signed-note type byte for Ed25519). A verifier knows keys
//! as (name, id, public key); it ignores signature lines from keys it does
//! not know, rejects the note if a known key's signature fails, and accepts
//! it only if at least one known key's signature verifies. Notes are UTF-8
//! without control characters other than newline; this parser also caps a
//! note at [`MAX_NOTE_BYTES`] and [`MAX_SIGNATURES`] lines (the spec asks
//! verifiers to accept at least 16), and requires canonical padded base64.
//!
//! A verifier key ("vkey") is written `<name>+<hex key id>+<base64(0x01 ||
//! public key)>`, as in the spec's example, which a test here checks.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signed-note signature type byte for Ed25519.
pub const ED25519_TYPE: u8 = 0x01;
/// The largest note parsed.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// The most signature lines parsed.
pub const MAX_SIGNATURES: usize = 64;

/// Why a note was not parsed or not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Larger than [`MAX_NOTE_BYTES`], or too many signatures.
    #[error("the note is too large")]
    TooLarge,
    /// Not UTF-8, or a control character other than newline.
    #[error("the note is not UTF-8 text without control characters")]
    Encoding,
    /// No blank line separating text from signatures, or no signatures.
    #[error("the note has no signature block")]
    NoSignatures,
    /// The text does not end in a newline, or is empty.
    #[error("the note text is empty or does not end with a newline")]
    Text,
    /// A signature line that is not `— <name> <base64>`.
    #[error("malformed signature line {0}")]
    SignatureLine(usize),
    /// A key name with spaces or `+`, or empty.
    #[error("{0:?} is not a key name (non-empty, no spaces, no '+')")]
    KeyName(String),
    /// No signature from a known key.
    #[error("no signature from the trusted key (key name {name:?}, id {id})")]
    NotSignedByTrustedKey {
        /// The trusted key's name.
        name: String,
        /// The trusted key's id, hex.
        id: String,
    },
    /// A known key's signature does not verify.
    #[error("the signature of key {0:?} does not verify")]
    BadSignature(String),
    /// A malformed verifier key string.
    #[error("malformed verifier key: {0}")]
    VerifierKey(&'static str),
}

/// Whether `name` may be a key name: non-empty, no Unicode white space, no `+`.
pub fn is_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// `SHA-256(name || 0x0A || 0x01 || public key)[:4]`.
pub fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519_TYPE]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// Something that can sign note text: the appliance key, or a bare
/// `ed25519_dalek::SigningKey` in tests and tools.
pub trait NoteSigner: Send {
    /// The public half.
    fn public_key(&self) -> VerifyingKey;
    /// Sign `text` (the note text, including its final newline).
    fn sign_text(&self, text: &[u8]) -> Result<Signature, SignError>;
}

/// The signer refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the signer refused to sign the note: {0}")]
pub struct SignError(pub String);

impl NoteSigner for ed25519_dalek::SigningKey {
    fn public_key(&self) -> VerifyingKey {
        self.verifying_key()
    }
    fn sign_text(&self, text: &[u8]) -> Result<Signature, SignError> {
        use ed25519_dalek::Signer;
        Ok(self.sign(text))
    }
}

impl NoteSigner for lethe_cert::ApplianceKey {
    fn public_key(&self) -> VerifyingKey {
        self.verifying_key()
    }
    fn sign_text(&self, text: &[u8]) -> Result<Signature, SignError> {
        self.sign_note(text)
            .ok_or_else(|| SignError("the text begins like a certificate's signing input".into()))
    }
}

/// A key a verifier trusts: its name, id and Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier for `key` under `name` (the id is derived).
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        if !is_key_name(name) {
            return Err(NoteError::KeyName(name.to_owned()));
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            id: key_id(name, &key),
            key,
        })
    }

    /// Parse a vkey `<name>+<hex id>+<base64(0x01 || key)>`.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::VerifierKey("expected name+id+key"));
        };
        if id_hex.len() != 8 || !id_hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(NoteError::VerifierKey("the key id is not 8 hex digits"));
        }
        let raw = B64
            .decode(b64)
            .map_err(|_| NoteError::VerifierKey("the key is not base64"))?;
        let [ED25519_TYPE, key @ ..] = raw.as_slice() else {
            return Err(NoteError::VerifierKey("not an Ed25519 key"));
        };
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| NoteError::VerifierKey("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key)
            .map_err(|_| NoteError::VerifierKey("not a valid Ed25519 point"))?;
        let v = NoteVerifier::new(name, key)?;
        if hex4(&v.id) != id_hex.to_ascii_lowercase() {
            return Err(NoteError::VerifierKey(
                "the key id does not match the name and key",
            ));
        }
        Ok(v)
    }

    /// The vkey string.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![ED25519_TYPE];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex4(&self.id), B64.encode(raw))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key id.
    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    /// The public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }
}

fn hex4(id: &[u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id.
    pub id: [u8; 4],
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

/// A parsed (not yet verified) note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The note text, ending in a newline.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parse `bytes` as a signed note (structure only; see [`Note::verify`]).
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge);
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::Encoding)?;
        if s.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::Encoding);
        }
        let split = s.rfind("\n\n").ok_or(NoteError::NoSignatures)?;
        let (text, sigs) = (&s[..=split], &s[split + 2..]);
        if text.len() < 2 {
            return Err(NoteError::Text);
        }
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::NoSignatures);
        }
        let mut signatures = Vec::new();
        for (i, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooLarge);
            }
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or(NoteError::SignatureLine(i + 1))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or(NoteError::SignatureLine(i + 1))?;
            if !is_key_name(name) {
                return Err(NoteError::KeyName(name.to_owned()));
            }
            let raw = B64
                .decode(b64)
                .map_err(|_| NoteError::SignatureLine(i + 1))?;
            if raw.len() < 5 {
                return Err(NoteError::SignatureLine(i + 1));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id: [raw[0], raw[1], raw[2], raw[3]],
                signature: raw[4..].to_vec(),
            });
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Check the note against one trusted key: a signature line with its
    /// name and id must exist and verify; other keys' lines are ignored.
    pub fn verify(&self, trusted: &NoteVerifier) -> Result<(), NoteError> {
        let mut verified = false;
        for s in &self.signatures {
            if s.name != trusted.name || s.id != trusted.id {
                continue;
            }
            let sig = <[u8; 64]>::try_from(s.signature.as_slice())
                .map(|b| Signature::from_bytes(&b))
                .map_err(|_| NoteError::BadSignature(s.name.clone()))?;
            trusted
                .key
                .verify(self.text.as_bytes(), &sig)
                .map_err(|_| NoteError::BadSignature(s.name.clone()))?;
            verified = true;
        }
        if verified {
            Ok(())
        } else {
            Err(NoteError::NotSignedByTrustedKey {
                name: trusted.name.clone(),
                id: hex4(&trusted.id),
            })
        }
    }

    /// The note as text.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            let mut raw = s.id.to_vec();
            raw.extend_from_slice(&s.signature);
            out.push_str(&format!("\u{2014} {} {}\n", s.name, B64.encode(raw)));
        }
        out
    }
}

/// Sign `text` (which must end in a newline) as key `name`, giving a note
/// with one signature line.
pub fn sign_note(text: &str, name: &str, signer: &dyn NoteSigner) -> Result<Note, SignError> {
    if !is_key_name(name) {
        return Err(SignError(format!("{name:?} is not a key name")));
    }
    let sig = signer.sign_text(text.as_bytes())?;
    Ok(Note {
        text: text.to_owned(),
        signatures: vec![NoteSignature {
            name: name.to_owned(),
            id: key_id(name, &signer.public_key()),
            signature: sig.to_bytes().to_vec(),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    /// The example of c2sp.org/signed-note ("Verifier keys").
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    #[test]
    fn the_spec_example_verifies() {
        let v = NoteVerifier::from_vkey(SPEC_VKEY).unwrap();
        assert_eq!(v.name(), "example.com/foo");
        assert_eq!(v.id(), [0x53, 0x0d, 0x90, 0x3a]);
        assert_eq!(v.to_vkey(), SPEC_VKEY);
        let note = Note::parse(SPEC_NOTE.as_bytes()).unwrap();
        assert_eq!(note.text, "This is an example message.\n");
        note.verify(&v).unwrap();
        assert_eq!(note.to_text(), SPEC_NOTE);
        // One changed character of text breaks it.
        let bad = SPEC_NOTE.replace("example message", "example massage");
        assert_eq!(
            Note::parse(bad.as_bytes()).unwrap().verify(&v),
            Err(NoteError::BadSignature("example.com/foo".into()))
        );
    }

    /// safeguard: rule:audit-integrity
    #[test]
    fn unknown_keys_are_ignored_and_known_failures_reject() {
        let a = SigningKey::from_bytes(&[1; 32]);
        let b = SigningKey::from_bytes(&[2; 32]);
        let va = NoteVerifier::new("log.example/a", a.verifying_key()).unwrap();
        let mut note = sign_note("hello\nworld\n", "log.example/a", &a).unwrap();
        note.verify(&va).unwrap();
        // A witness's extra line from an unknown key changes nothing.
        let witness = sign_note("hello\nworld\n", "witness.example/w", &b).unwrap();
        note.signatures.insert(0, witness.signatures[0].clone());
        let reparsed = Note::parse(note.to_text().as_bytes()).unwrap();
        reparsed.verify(&va).unwrap();
        // Same name, other key: its id differs, so it is ignored; no valid line remains.
        let impostor = sign_note("hello\nworld\n", "log.example/a", &b).unwrap();
        let only_impostor = Note {
            text: note.text.clone(),
            signatures: impostor.signatures.clone(),
        };
        assert!(matches!(
            only_impostor.verify(&va),
            Err(NoteError::NotSignedByTrustedKey { .. })
        ));
        // Known name and id with a broken signature rejects the note.
        let mut broken = note.clone();
        broken.signatures[1].signature[0] ^= 1;
        assert!(matches!(
            broken.verify(&va),
            Err(NoteError::BadSignature(_))
        ));
    }

    #[test]
    fn malformed_notes_are_refused() {
        let k = SigningKey::from_bytes(&[3; 32]);
        let good = sign_note("a\nb\n", "n", &k).unwrap().to_text();
        assert!(Note::parse(good.as_bytes()).is_ok());
        let cases = [
            good.replace("\n\n", "\n"),                   // no blank line
            good.trim_end().to_string(),                  // last line without newline
            good.replace("\u{2014} ", "- "),              // not an em dash
            good.replace("\u{2014} n ", "\u{2014} n+x "), // '+' in name
            good.replace("a\nb", "a\rb"),                 // control character
            good.replace('=', ""),                        // unpadded base64
            format!("{good}\u{2014} n\n"),                // line without signature
            "\n\n\u{2014} n AAAAAAA=\n".to_string(),      // empty text
        ];
        for c in cases {
            assert!(Note::parse(c.as_bytes()).is_err(), "accepted {c:?}");
        }
        assert!(Note::parse(&[0xff, b'\n', b'\n']).is_err());
        assert_eq!(
            Note::parse(&vec![b'a'; MAX_NOTE_BYTES + 1]),
            Err(NoteError::TooLarge)
        );
    }

    #[test]
    fn the_appliance_key_signs_notes_but_not_certificate_inputs() {
        let key = lethe_cert::ApplianceKey::from_seed(&[9; 32]);
        let note = sign_note("x\n", "n", &key).unwrap();
        note.verify(&NoteVerifier::new("n", key.verifying_key()).unwrap())
            .unwrap();
        let forged = String::from_utf8(lethe_cert::SIGNING_PREFIX.to_vec()).unwrap() + "{}\n";
        assert!(sign_note(&forged, "n", &key).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(n) = Note::parse(&bytes) {
                prop_assert_eq!(Note::parse(n.to_text().as_bytes()).unwrap(), n);
            }
        }

        #[test]
        fn signed_notes_round_trip(lines in prop::collection::vec("[a-z0-9 ]{1,20}", 1..5), seed in any::<[u8; 32]>()) {
            let k = SigningKey::from_bytes(&seed);
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let note = sign_note(&text, "lethe/audit/x", &k).unwrap();
            let parsed = Note::parse(note.to_text().as_bytes()).unwrap();
            prop_assert_eq!(&parsed, &note);
            prop_assert!(parsed.verify(&NoteVerifier::new("lethe/audit/x", k.verifying_key()).unwrap()).is_ok());
        }
    }
}
