//! Pattern generation for writing and for re-generation during verification.
//!
//! The random pattern is AES-128 in counter mode. The 128-bit counter block is
//! `pass index (64-bit big-endian) || block index (64-bit big-endian)` where
//! block index = byte offset / 16, so every pass has its own stream and any
//! offset can be produced without generating what comes before it.

use aes::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use lethe_core::pattern::Pattern;

type Aes128Ctr64 = ctr::Ctr64BE<aes::Aes128>;

/// The secret that makes a random pass unpredictable and reproducible.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamKey(pub [u8; 16]);

impl StreamKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut k = [0u8; 16];
        getrandom::fill(&mut k)?;
        Ok(Self(k))
    }
}

impl std::fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamKey(..)")
    }
}

/// Fills buffers with the bytes a given pass writes at a given offset.
#[derive(Debug, Clone)]
pub struct PatternStream {
    pattern: Pattern,
    pass: u64,
    key: StreamKey,
}

impl PatternStream {
    pub fn new(pattern: Pattern, pass: usize, key: &StreamKey) -> Self {
        Self {
            pattern,
            pass: pass as u64,
            key: key.clone(),
        }
    }

    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// Write into `buf` the bytes that belong at device offset `offset`.
    /// `offset` must be a multiple of 16 (it is always sector-aligned).
    pub fn fill(&self, buf: &mut [u8], offset: u64) {
        match self.pattern {
            Pattern::Fill(b) => buf.fill(b),
            Pattern::Random => {
                debug_assert_eq!(offset % 16, 0);
                let mut iv = [0u8; 16];
                iv[..8].copy_from_slice(&self.pass.to_be_bytes());
                let mut cipher = Aes128Ctr64::new(&self.key.0.into(), &iv.into());
                cipher.seek(offset);
                buf.fill(0);
                cipher.apply_keystream(buf);
            }
        }
    }

    /// Whether `buf` is already correct without needing a refill for the next
    /// chunk (fixed patterns are written from one pre-filled buffer).
    pub fn is_constant(&self) -> bool {
        matches!(self.pattern, Pattern::Fill(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockEncrypt;
    use aes::cipher::KeyInit;

    #[test]
    fn any_offset_matches_a_continuous_stream() {
        let key = StreamKey([7; 16]);
        let s = PatternStream::new(Pattern::Random, 3, &key);
        let mut whole = vec![0u8; 8192];
        s.fill(&mut whole, 0);
        let mut part = vec![0u8; 4096];
        s.fill(&mut part, 4096);
        assert_eq!(&whole[4096..], &part[..]);
        assert_ne!(whole[..16], [0u8; 16]);
    }

    #[test]
    fn counter_block_layout_is_pass_then_block_index() {
        // Documented layout: keystream block i of pass p = AES_k(p_be64 || i_be64).
        let key = StreamKey(*b"0123456789abcdef");
        let s = PatternStream::new(Pattern::Random, 2, &key);
        let mut got = [0u8; 16];
        s.fill(&mut got, 5 * 16);
        let aes = aes::Aes128::new(&key.0.into());
        let mut block = [0u8; 16];
        block[7] = 2;
        block[15] = 5;
        let mut b = block.into();
        aes.encrypt_block(&mut b);
        assert_eq!(got, <[u8; 16]>::from(b));
    }

    #[test]
    fn passes_differ_and_fills_are_constant() {
        let key = StreamKey([1; 16]);
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        PatternStream::new(Pattern::Random, 0, &key).fill(&mut a, 0);
        PatternStream::new(Pattern::Random, 1, &key).fill(&mut b, 0);
        assert_ne!(a, b);
        PatternStream::new(Pattern::Fill(0xa5), 0, &key).fill(&mut a, 512);
        assert!(a.iter().all(|&x| x == 0xa5));
    }
}
