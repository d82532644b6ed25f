//! The sample plan of a sampled verification.
//!
//! NIST SP 800-88 asks for representative sampling; Blancco splits the drive
//! into subsections and reads random sectors in each. We do the same with a
//! stratified plan:
//!
//! - the first and the last MiB are always read (partition tables, backup GPT,
//!   RAID superblocks live there);
//! - the space between is cut into `n` equal strata and one 1 MiB sample is
//!   drawn uniformly inside each, so samples cover the whole device evenly;
//! - `n` is the smallest count that reaches the requested coverage.
//!
//! The draw is a SplitMix64 stream from a 64-bit seed that the certificate
//! records, so anyone can recompute exactly which ranges were read.

use crate::ranges::RangeSet;

/// Size of one sample and of the fixed head and tail regions.
pub const SAMPLE_UNIT: u64 = 1 << 20;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fully specified, so a
/// sample plan can be recomputed by independent tools.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0), by rejection so there is no modulo bias.
    pub fn below(&mut self, bound: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % bound;
            }
        }
    }
}

/// Build the byte ranges to read for a sampled verification.
///
/// `coverage_ppm` is the requested share of the device in parts per million
/// (1_000_000 = everything). `align` is the I/O alignment (a power of two, at
/// least the logical sector size); `size` need not be a multiple of it, the
/// tail sample ends exactly at `size`.
pub fn sample_plan(size: u64, align: u64, coverage_ppm: u32, seed: u64) -> RangeSet {
    let mut plan = RangeSet::new();
    let align = align.max(1);
    if size == 0 {
        return plan;
    }
    let target = (u128::from(size) * u128::from(coverage_ppm.min(1_000_000))).div_ceil(1_000_000);
    let target = u64::try_from(target).unwrap_or(size);
    // Small devices or full coverage: read everything.
    if size <= 2 * SAMPLE_UNIT || target >= size {
        plan.insert(0, size);
        return plan;
    }
    let head_end = SAMPLE_UNIT;
    let tail_start = (size - SAMPLE_UNIT) / align * align;
    plan.insert(0, head_end);
    plan.insert(tail_start, size - tail_start);

    let middle = tail_start - head_end;
    let already = head_end + (size - tail_start);
    let wanted = target.saturating_sub(already);
    let n = wanted.div_ceil(SAMPLE_UNIT);
    if n == 0 || middle == 0 {
        return plan;
    }
    let mut rng = SplitMix64::new(seed);
    // Strata start on alignment boundaries so every sample can be read with O_DIRECT.
    let stratum = middle / n / align * align;
    if stratum <= SAMPLE_UNIT {
        plan.insert(head_end, middle);
        return plan;
    }
    for i in 0..n {
        let start = head_end + i * stratum;
        let end = if i + 1 == n {
            tail_start
        } else {
            start + stratum
        };
        let slack = (end - start - SAMPLE_UNIT) / align;
        let off = start + rng.below(slack + 1) * align;
        plan.insert(off, SAMPLE_UNIT);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 from the reference C implementation.
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    /// safeguard: 164.310(d)(2)(ii)
    #[test]
    fn head_and_tail_always_included() {
        let size = 10 * 1024 * SAMPLE_UNIT + 4096;
        let plan = sample_plan(size, 4096, 10_000, 42);
        assert!(plan.contains(0) && plan.contains(SAMPLE_UNIT - 1));
        assert!(plan.contains(size - 1) && plan.contains(size - SAMPLE_UNIT));
        // 1 % of 10 GiB is about 102 MiB.
        let total = plan.total();
        assert!(total >= size / 100, "{total}");
        assert!(total <= size / 100 + 2 * SAMPLE_UNIT + 4096, "{total}");
    }

    #[test]
    fn full_coverage_and_small_devices_read_everything() {
        assert_eq!(sample_plan(1 << 30, 4096, 1_000_000, 1).total(), 1 << 30);
        assert_eq!(sample_plan(3 << 19, 512, 1, 1).total(), 3 << 19);
    }

    #[test]
    fn same_seed_same_plan_other_seed_other_plan() {
        let a = sample_plan(1 << 34, 4096, 5_000, 7);
        assert_eq!(a, sample_plan(1 << 34, 4096, 5_000, 7));
        assert_ne!(a, sample_plan(1 << 34, 4096, 5_000, 8));
    }

    proptest! {
        #[test]
        fn plan_is_aligned_in_bounds_and_spread(
            size_mib in 3u64..100_000, extra in 0u64..8, ppm in 1u32..=1_000_000, seed in any::<u64>()
        ) {
            let size = size_mib * SAMPLE_UNIT + extra * 512;
            let plan = sample_plan(size, 512, ppm, seed);
            let mut last_end = 0;
            for r in plan.iter() {
                prop_assert!(r.end() <= size);
                prop_assert_eq!(r.offset % 512, 0);
                prop_assert!(r.offset >= last_end);
                last_end = r.end();
            }
            prop_assert!(plan.contains(0) && plan.contains(size - 1));
            let want = (u128::from(size) * u128::from(ppm)).div_ceil(1_000_000) as u64;
            prop_assert!(plan.total() >= want.min(size), "total {} want {}", plan.total(), want);
        }
    }
}
