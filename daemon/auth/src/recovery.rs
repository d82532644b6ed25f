//! One-time recovery codes, the second factor of last resort.
//!
//! Ten codes of 64 random bits each, shown once as `xxxx-xxxx-xxxx-xxxx`
//! (lowercase hex). Only keyed hashes are stored: HMAC-SHA-256 under a random
//! 32-byte key per batch (Proxmox's scheme), so the store never holds a usable
//! code. A used code's slot is emptied; a new batch replaces the key and every
//! slot, so old codes stop working at once.

use crate::entropy::{self, Entropy};
use crate::secret::{SecretBytes, SecretString};
use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

/// Codes per batch.
pub const CODES_PER_BATCH: usize = 10;

/// A fresh batch, to show to the user once. `Debug` is redacted.
pub struct RecoveryCodes(Vec<SecretString>);

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryCodes(<{} codes redacted>)", self.0.len())
    }
}

impl RecoveryCodes {
    /// The codes, formatted `xxxx-xxxx-xxxx-xxxx`.
    pub fn codes(&self) -> &[SecretString] {
        &self.0
    }
}

/// What the store keeps: the key and one hash per unused code.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredRecovery {
    pub(crate) key: SecretBytes,
    pub(crate) slots: Vec<Option<[u8; 32]>>,
}

impl std::fmt::Debug for StoredRecovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredRecovery(<redacted>, {} unused)", self.remaining())
    }
}

impl StoredRecovery {
    /// Unused codes left.
    pub fn remaining(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}

/// Parses a submitted code: 16 hex digits, dashes, spaces and case ignored.
pub fn parse_code(input: &str) -> Option<[u8; 8]> {
    let hex: String = input
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() != 16 {
        return None;
    }
    let v = data_encoding::HEXLOWER.decode(hex.as_bytes()).ok()?;
    v.try_into().ok()
}

fn keyed_hash(key: &[u8], code: &[u8; 8]) -> [u8; 32] {
    let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    m.update(b"lethe-recovery-code-v1\0");
    m.update(code);
    m.finalize().into_bytes().into()
}

/// Makes a new batch: the codes to show and what to store.
pub fn generate(e: &mut (impl Entropy + ?Sized)) -> (RecoveryCodes, StoredRecovery) {
    let key: [u8; 32] = entropy::bytes(e);
    let mut codes = Vec::with_capacity(CODES_PER_BATCH);
    let mut slots = Vec::with_capacity(CODES_PER_BATCH);
    for _ in 0..CODES_PER_BATCH {
        let raw: [u8; 8] = entropy::bytes(e);
        let hex = data_encoding::HEXLOWER.encode(&raw);
        codes.push(SecretString::new(format!(
            "{}-{}-{}-{}",
            &hex[0..4],
            &hex[4..8],
            &hex[8..12],
            &hex[12..16]
        )));
        slots.push(Some(keyed_hash(&key, &raw)));
    }
    (
        RecoveryCodes(codes),
        StoredRecovery {
            key: SecretBytes::new(key.to_vec()),
            slots,
        },
    )
}

/// If `input` is an unused code, empties its slot and returns true. Every slot
/// is compared (constant time in the position of the match).
pub fn consume(stored: &mut StoredRecovery, input: &str) -> bool {
    let Some(raw) = parse_code(input) else {
        return false;
    };
    let h = keyed_hash(stored.key.expose(), &raw);
    let mut hit: Option<usize> = None;
    for (i, slot) in stored.slots.iter().enumerate() {
        if let Some(s) = slot {
            if bool::from(s.ct_eq(&h)) && hit.is_none() {
                hit = Some(i);
            }
        }
    }
    match hit {
        Some(i) => {
            stored.slots[i] = None;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::TestEntropy;
    use proptest::prelude::*;

    /// safeguard: 164.312(d)
    #[test]
    fn each_code_works_once() {
        let (codes, mut stored) = generate(&mut TestEntropy(3));
        assert_eq!(codes.codes().len(), 10);
        assert_eq!(stored.remaining(), 10);
        let first = codes.codes()[0].expose().to_owned();
        assert_eq!(first.len(), 19);
        assert!(consume(&mut stored, &first));
        assert!(!consume(&mut stored, &first));
        assert_eq!(stored.remaining(), 9);
        // dashes, spaces and case do not matter
        let second = codes.codes()[1].expose().replace('-', " ").to_uppercase();
        assert!(consume(&mut stored, &second));
        assert!(!consume(&mut stored, "0000-0000-0000-0000"));
        assert!(!consume(&mut stored, "not a code"));
        assert_eq!(stored.remaining(), 8);
    }

    #[test]
    fn a_new_batch_invalidates_the_old() {
        let (old, _) = generate(&mut TestEntropy(3));
        let (_, mut new_stored) = generate(&mut TestEntropy(4));
        for c in old.codes() {
            assert!(!consume(&mut new_stored, c.expose()));
        }
        assert_eq!(new_stored.remaining(), 10);
    }

    /// safeguard: rule:secrets-in-worker
    #[test]
    fn nothing_secret_in_debug() {
        let (codes, stored) = generate(&mut TestEntropy(3));
        let d = format!("{codes:?} {stored:?}");
        for c in codes.codes() {
            assert!(!d.contains(&c.expose()[..4]), "{d}");
        }
        assert_eq!(
            d,
            "RecoveryCodes(<10 codes redacted>) StoredRecovery(<redacted>, 10 unused)"
        );
    }

    proptest! {
        #[test]
        fn parser_is_total_and_strict(s in "\\PC{0,40}") {
            if let Some(raw) = parse_code(&s) {
                let hex = data_encoding::HEXLOWER.encode(&raw);
                let norm: String = s.chars().filter(|c| *c != '-' && !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
                prop_assert_eq!(hex, norm);
            }
        }
    }
}
