//! The printable recovery key: Crockford base32 of master key || 4-byte checksum.
//!
//! It *is* the master key (like borg's paper key), so it still works when every key file
//! is lost; it must be stored offline.

use crate::crypto::MasterKey;
use crate::error::{RepoError, Result};

const B32: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RECOVERY_CHARS: usize = 58; // ceil(36 * 8 / 5)

fn recovery_check(master: &[u8; 32]) -> [u8; 4] {
    let h = blake3::derive_key("lethe 2026 recovery key checksum v1", master);
    [h[0], h[1], h[2], h[3]]
}

/// Printable recovery key: Crockford base32 of master key || 4-byte checksum, in groups
/// of 5 characters. It *is* the master key: store it offline (paper, safe).
pub fn encode(master: &MasterKey) -> String {
    let mut payload = master.as_bytes().to_vec();
    payload.extend_from_slice(&recovery_check(master.as_bytes()));
    let (mut acc, mut nbits, mut chars) = (0u32, 0u32, Vec::with_capacity(RECOVERY_CHARS));
    for b in payload {
        acc = (acc << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 5 {
            nbits -= 5;
            chars.push(B32[((acc >> nbits) & 31) as usize]);
        }
    }
    if nbits > 0 {
        chars.push(B32[((acc << (5 - nbits)) & 31) as usize]);
    }
    chars
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// Parse a recovery key (case-insensitive; '-' and spaces ignored; O->0, I/L->1).
pub fn decode(text: &str) -> Result<MasterKey> {
    let bad = |detail: String| RepoError::Text {
        what: "recovery key",
        detail,
    };
    let mut vals = Vec::with_capacity(RECOVERY_CHARS);
    for c in text.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        let v = B32
            .iter()
            .position(|b| char::from(*b) == c)
            .ok_or_else(|| bad(format!("invalid character {c:?}")))?;
        vals.push(v as u32);
    }
    if vals.len() != RECOVERY_CHARS {
        return Err(bad(format!(
            "expected {RECOVERY_CHARS} characters, got {}",
            vals.len()
        )));
    }
    let (mut acc, mut nbits, mut out) = (0u32, 0u32, Vec::with_capacity(36));
    for v in vals {
        acc = (acc << 5) | v;
        nbits += 5;
        if nbits >= 8 {
            nbits -= 8;
            out.push((acc >> nbits) as u8);
        }
    }
    if acc & ((1 << nbits) - 1) != 0 {
        return Err(RepoError::RecoveryChecksum);
    }
    let mut m = [0u8; 32];
    m.copy_from_slice(&out[..32]);
    if recovery_check(&m)[..] != out[32..36] {
        return Err(RepoError::RecoveryChecksum);
    }
    Ok(MasterKey::from_bytes(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recovery_key_typos_detected() {
        let m = MasterKey::from_bytes([0xA5; 32]);
        let s = encode(&m);
        assert_eq!(s.replace('-', "").len(), RECOVERY_CHARS);
        assert_eq!(decode(&s.to_lowercase()).unwrap().as_bytes(), m.as_bytes());
        let mut typo: Vec<char> = s.chars().collect();
        typo[7] = if typo[7] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        assert!(decode(&typo).is_err());
        assert!(decode("ABC").is_err());
        assert!(decode(&s.replace('0', "U")).is_err() || !s.contains('0'));
    }

    proptest! {
        /// safeguard: 164.312(a)(2)(iv)
        #[test]
        fn recovery_round_trip(b in any::<[u8; 32]>()) {
            let m = MasterKey::from_bytes(b);
            let back = decode(&encode(&m)).unwrap();
            prop_assert_eq!(back.as_bytes(), &b);
        }

        #[test]
        fn decode_never_panics(s in ".{0,80}") {
            let _ = decode(&s);
        }
    }
}
