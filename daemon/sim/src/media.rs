//! Sparse medium: written sectors in a map, everything else reads as the fill.

use std::collections::BTreeMap;

/// What unwritten sectors read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Every byte is this value.
    Byte(u8),
    /// A 32-bit pattern repeated (little-endian), as OVERWRITE leaves it.
    Pattern(u32),
    /// Ciphertext under a discarded key: pseudo-random per LBA.
    Scrambled(u64),
}

/// How an erase changes the medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erase {
    /// Nothing changes (Format with SES=0).
    Nothing,
    /// Every sector reads as this byte (block erase, user data erase).
    Fill(u8),
    /// Overwrite with a pattern; with `invert` the pattern alternates per pass.
    Pattern {
        /// The 32-bit pattern.
        pattern: u32,
        /// Passes 1..=16.
        passes: u8,
        /// Invert between passes.
        invert: bool,
    },
    /// Crypto erase: the key changes, old data becomes noise.
    Crypto,
}

#[derive(Debug)]
pub(crate) struct Media {
    written: BTreeMap<u64, Vec<u8>>,
    fill: Fill,
    key_counter: u64,
}

/// SplitMix64 step: cheap deterministic noise for scrambled sectors.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Media {
    pub(crate) fn new(fill: Fill) -> Self {
        Media {
            written: BTreeMap::new(),
            fill,
            key_counter: 0,
        }
    }

    pub(crate) fn read_sector(&self, lba: u64) -> Vec<u8> {
        if let Some(s) = self.written.get(&lba) {
            return s.clone();
        }
        let mut out = vec![0u8; 512];
        match self.fill {
            Fill::Byte(b) => out.fill(b),
            Fill::Pattern(p) => {
                for c in out.chunks_mut(4) {
                    c.copy_from_slice(&p.to_le_bytes());
                }
            }
            Fill::Scrambled(key) => {
                for (i, c) in out.chunks_mut(8).enumerate() {
                    c.copy_from_slice(
                        &mix(key ^ lba.wrapping_mul(64).wrapping_add(i as u64)).to_le_bytes(),
                    );
                }
            }
        }
        out
    }

    pub(crate) fn write_sector(&mut self, lba: u64, data: &[u8]) {
        let mut v = vec![0u8; 512];
        let n = data.len().min(512);
        v[..n].copy_from_slice(&data[..n]);
        self.written.insert(lba, v);
    }

    pub(crate) fn erase(&mut self, e: Erase) {
        let fill = match e {
            Erase::Nothing => return,
            Erase::Fill(b) => Fill::Byte(b),
            Erase::Pattern {
                pattern,
                passes,
                invert,
            } => {
                // The last pass writes the inverted pattern when the pass count is even.
                Fill::Pattern(if invert && passes % 2 == 0 {
                    !pattern
                } else {
                    pattern
                })
            }
            Erase::Crypto => {
                self.key_counter += 1;
                Fill::Scrambled(mix(self.key_counter ^ 0x4C45_5448_4521))
            }
        };
        self.written.clear();
        self.fill = fill;
    }
}
