//! Content-defined chunking: FastCDC (2020 variant, "rolling two bytes") with a keyed gear table.
//!
//! The gear table is 256 u64 read from the BLAKE3 XOF keyed with the repository's chunker
//! secret (borg2 does the same), so cut points depend on a secret: an observer cannot
//! precompute the chunk sizes of a known file. (Keyed gear hashing is *not* the provably
//! secure construction of Truong et al. 2025, but chunk sizes are also hidden inside
//! encrypted pack headers: the storage provider only sees pack sizes.)
//!
//! Defaults: min 512 KiB, average 1 MiB, max 8 MiB, normalization level 1 (restic's
//! sizes: 1 MiB keeps the index at ~1 M entries per TiB and packs of 16 MiB hold ~16 blobs).
//! The gear-hash loop is written here because the `fastcdc` crate only takes a 64-bit seed.
//! Block devices use fixed-size chunks instead (see [`DEVICE_CHUNK_SIZE`]).

use crate::error::{RepoError, Result};
use serde::{Deserialize, Serialize};

/// Fixed chunk size for raw block device images (aligned to the device; all-zero chunks
/// become sparse extents).
pub const DEVICE_CHUNK_SIZE: u32 = 1 << 20;

/// Chunk size limits (bytes). Stored in the repository config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// No chunk (except the last) is shorter.
    pub min_size: u32,
    /// Target average; must be a power of two.
    pub avg_size: u32,
    /// No chunk is longer.
    pub max_size: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 512 << 10,
            avg_size: 1 << 20,
            max_size: 8 << 20,
        }
    }
}

impl ChunkerParams {
    /// Check the limits: 64 B <= min < avg < max <= 64 MiB, avg a power of two.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| RepoError::Invalid {
            what: "chunker parameters",
            detail,
        };
        if !self.avg_size.is_power_of_two() || !(256..=(16 << 20)).contains(&self.avg_size) {
            return Err(bad(format!(
                "avg {} must be a power of two in 256..=16MiB",
                self.avg_size
            )));
        }
        if self.min_size < 64 || self.min_size >= self.avg_size || self.avg_size >= self.max_size {
            return Err(bad(format!(
                "need 64 <= min < avg < max ({} {} {})",
                self.min_size, self.avg_size, self.max_size
            )));
        }
        if self.max_size > 64 << 20 {
            return Err(bad(format!("max {} exceeds 64 MiB", self.max_size)));
        }
        Ok(())
    }
}

/// A mask with `bits` one-bits spread over bits 63..16 (high bits of a gear hash depend on
/// the most bytes, which makes the effective window ~48 bytes).
fn spread_mask(bits: u32) -> u64 {
    let bits = bits.clamp(1, 48);
    (0..bits).fold(0u64, |m, i| m | 1u64 << (63 - i * 48 / bits))
}

/// Keyed FastCDC chunker.
pub struct Chunker {
    gear: [u64; 256],
    gear_ls: [u64; 256],
    params: ChunkerParams,
    mask_s: u64,
    mask_l: u64,
    mask_s_ls: u64,
    mask_l_ls: u64,
}

impl Chunker {
    /// Build a chunker from validated params and the 32-byte chunker secret.
    pub fn new(params: ChunkerParams, gear_key: &[u8; 32]) -> Result<Chunker> {
        params.validate()?;
        let mut raw = [0u8; 256 * 8];
        blake3::Hasher::new_keyed(gear_key)
            .update(b"lethe/v1/gear-table")
            .finalize_xof()
            .fill(&mut raw);
        let mut gear = [0u64; 256];
        for (g, c) in gear.iter_mut().zip(raw.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            *g = u64::from_le_bytes(b);
        }
        let mut gear_ls = [0u64; 256];
        for (l, g) in gear_ls.iter_mut().zip(gear.iter()) {
            *l = g << 1;
        }
        let bits = params.avg_size.trailing_zeros();
        let mask_s = spread_mask(bits + 1);
        let mask_l = spread_mask(bits - 1);
        Ok(Chunker {
            gear,
            gear_ls,
            params,
            mask_s,
            mask_l,
            mask_s_ls: mask_s << 1,
            mask_l_ls: mask_l << 1,
        })
    }

    /// The parameters in use.
    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// FastCDC 2020 cut: returns (length, found_by_hash).
    fn cut(&self, src: &[u8]) -> (usize, bool) {
        let min = self.params.min_size as usize;
        let max = self.params.max_size as usize;
        let mut remaining = src.len();
        if remaining <= min {
            return (remaining, false);
        }
        let mut center = self.params.avg_size as usize;
        if remaining > max {
            remaining = max;
        } else if remaining < center {
            center = remaining;
        }
        let mut hash: u64 = 0;
        // Two bytes per step; `a` indexes the first byte of the pair.
        let mut a = min & !1;
        let small_end = center & !1;
        let src_small = &src[..small_end];
        while a + 1 < src_small.len() {
            hash = (hash << 2).wrapping_add(self.gear_ls[usize::from(src_small[a])]);
            if hash & self.mask_s_ls == 0 {
                return (a + 1, true);
            }
            hash = hash.wrapping_add(self.gear[usize::from(src_small[a + 1])]);
            if hash & self.mask_s == 0 {
                return (a + 2, true);
            }
            a += 2;
        }
        let src_large = &src[..remaining & !1];
        while a + 1 < src_large.len() {
            hash = (hash << 2).wrapping_add(self.gear_ls[usize::from(src_large[a])]);
            if hash & self.mask_l_ls == 0 {
                return (a + 1, true);
            }
            hash = hash.wrapping_add(self.gear[usize::from(src_large[a + 1])]);
            if hash & self.mask_l == 0 {
                return (a + 2, true);
            }
            a += 2;
        }
        (remaining, false)
    }

    /// Length of the next chunk at the start of `buf`.
    ///
    /// With `eof == false`, returns `None` when no cut point is certain yet (fewer than
    /// `max_size` bytes buffered and no hash cut found): read more and call again.
    /// With `eof == true`, always returns the next chunk (or `None` if `buf` is empty).
    pub fn next_boundary(&self, buf: &[u8], eof: bool) -> Option<usize> {
        if buf.is_empty() {
            return None;
        }
        let (len, by_hash) = self.cut(buf);
        if by_hash || eof || len >= self.params.max_size as usize {
            Some(len)
        } else {
            None
        }
    }

    /// Split a complete in-memory buffer into chunks.
    pub fn chunks<'a>(&'a self, data: &'a [u8]) -> Chunks<'a> {
        Chunks {
            c: self,
            rest: data,
        }
    }
}

/// Iterator over the chunks of a buffer.
pub struct Chunks<'a> {
    c: &'a Chunker,
    rest: &'a [u8],
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let n = self.c.next_boundary(self.rest, true)?;
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }
}

/// True if every byte is zero (used for sparse extents of devices and files).
pub fn is_zero(buf: &[u8]) -> bool {
    let mut it = buf.chunks_exact(64);
    let full = it.by_ref().all(|c| c.iter().fold(0u8, |a, b| a | b) == 0);
    full && it.remainder().iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> ChunkerParams {
        ChunkerParams {
            min_size: 2048,
            avg_size: 8192,
            max_size: 65536,
        }
    }

    fn pseudo_random(n: usize, seed: u8) -> Vec<u8> {
        let mut v = vec![0u8; n];
        blake3::Hasher::new()
            .update(&[seed])
            .finalize_xof()
            .fill(&mut v);
        v
    }

    #[test]
    fn validate_rejects_bad_params() {
        assert!(ChunkerParams::default().validate().is_ok());
        for p in [
            (100, 1000, 4000),
            (4096, 4096, 8192),
            (64, 256, 256),
            (64, 1 << 24, 1 << 27),
        ] {
            let cp = ChunkerParams {
                min_size: p.0,
                avg_size: p.1,
                max_size: p.2,
            };
            assert!(cp.validate().is_err(), "{p:?}");
        }
    }

    #[test]
    fn sizes_within_limits_and_average_near_target() {
        let c = Chunker::new(small(), &[7; 32]).unwrap();
        let data = pseudo_random(4 << 20, 1);
        let lens: Vec<usize> = c.chunks(&data).map(|c| c.len()).collect();
        assert_eq!(lens.iter().sum::<usize>(), data.len());
        for l in &lens[..lens.len() - 1] {
            assert!((2048..=65536).contains(l), "{l}");
        }
        let avg = data.len() / lens.len();
        assert!((6000..=14000).contains(&avg), "average {avg}");
    }

    #[test]
    fn key_changes_cut_points() {
        let data = pseudo_random(1 << 20, 2);
        let a: Vec<usize> = Chunker::new(small(), &[1; 32])
            .unwrap()
            .chunks(&data)
            .map(<[u8]>::len)
            .collect();
        let b: Vec<usize> = Chunker::new(small(), &[2; 32])
            .unwrap()
            .chunks(&data)
            .map(<[u8]>::len)
            .collect();
        assert_ne!(a, b);
    }

    #[test]
    fn insertion_only_disturbs_nearby_chunks() {
        let c = Chunker::new(small(), &[3; 32]).unwrap();
        let data = pseudo_random(2 << 20, 3);
        let mut edited = data.clone();
        edited.splice(100_000..100_000, b"inserted bytes".iter().copied());
        let set = |d: &[u8]| -> std::collections::HashSet<Vec<u8>> {
            c.chunks(d).map(<[u8]>::to_vec).collect()
        };
        let (a, b) = (set(&data), set(&edited));
        let shared = a.intersection(&b).count();
        assert!(shared + 3 >= a.len(), "shared {shared} of {}", a.len());
    }

    #[test]
    fn streaming_matches_whole_buffer() {
        let c = Chunker::new(small(), &[4; 32]).unwrap();
        let data = pseudo_random(500_000, 4);
        let whole: Vec<usize> = c.chunks(&data).map(<[u8]>::len).collect();
        // Feed 10 000 bytes at a time.
        let (mut buf, mut out, mut pos) = (Vec::new(), Vec::new(), 0);
        loop {
            let eof = pos >= data.len();
            match c.next_boundary(&buf, eof) {
                Some(n) => {
                    out.push(n);
                    buf.drain(..n);
                }
                None if eof => break,
                None => {
                    let end = (pos + 10_000).min(data.len());
                    buf.extend_from_slice(&data[pos..end]);
                    pos = end;
                }
            }
        }
        assert_eq!(out, whole);
    }

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[]));
        assert!(is_zero(&[0; 1000]));
        let mut v = vec![0u8; 1000];
        v[999] = 1;
        assert!(!is_zero(&v));
        v[999] = 0;
        v[3] = 1;
        assert!(!is_zero(&v));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn chunks_cover_input(data in prop::collection::vec(any::<u8>(), 0..20000)) {
            let c = Chunker::new(ChunkerParams { min_size: 64, avg_size: 256, max_size: 1024 }, &[5; 32]).unwrap();
            let parts: Vec<&[u8]> = c.chunks(&data).collect();
            prop_assert_eq!(parts.concat(), data.clone());
            for p in &parts { prop_assert!(!p.is_empty() && p.len() <= 1024); }
        }
    }
}
