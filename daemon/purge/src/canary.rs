//! Read-back proof for drive-native erases.
//!
//! Before the command, known per-job bytes ("canaries") are written to sampled
//! blocks spread over the device, always including the first and last block,
//! and read back. After the drive reports completion every sample must read
//! back changed, and equal to the pattern where the method promises one. A
//! drive that was already blank still proves something this way: the canaries
//! are ours, so only an erase removes them.

use aligned_vec::{AVec, ConstAlign};
use lethe_core::device::{BlockDevice, IoFault};
use lethe_core::sampling::SplitMix64;
use serde::{Deserialize, Serialize};

type Buf = AVec<u8, ConstAlign<4096>>;

fn buf(len: usize) -> Buf {
    let mut v = Buf::with_capacity(4096, len);
    v.resize(len, 0);
    v
}

/// What a sample must read as after the erase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    /// Anything but the canary (crypto erase, block erase, Format SES=1).
    Changed,
    /// Every byte equals this value (overwrite with a fixed pattern).
    Byte(u8),
}

/// The sampled blocks of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanarySet {
    /// Seed of the sample plan and of the canary bytes.
    pub seed: u64,
    /// Bytes per sample (a multiple of the logical sector, at least 4 KiB).
    pub unit: u64,
    /// Byte offsets of the samples, ascending.
    pub offsets: Vec<u64>,
}

/// Result of checking the samples after the erase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadBack {
    /// Samples read.
    pub samples: usize,
    /// Bytes per sample.
    pub unit_bytes: u64,
    /// Seed of the plan (recorded so an auditor can regenerate it).
    pub seed: u64,
    /// What each sample had to read as.
    pub expect: Expect,
    /// Offsets that still held the canary.
    pub unchanged: Vec<u64>,
    /// Offsets that changed but not to the promised pattern.
    pub wrong_pattern: Vec<u64>,
    /// Offsets that could not be read, with the error.
    pub read_errors: Vec<(u64, String)>,
}

impl ReadBack {
    /// True when every sample passed.
    pub fn passed(&self) -> bool {
        self.samples > 0
            && self.unchanged.is_empty()
            && self.wrong_pattern.is_empty()
            && self.read_errors.is_empty()
    }

    /// One line for reports.
    pub fn summary(&self) -> String {
        format!(
            "{} samples of {} bytes (seed {:#018x}) expected {:?}: {} unchanged, {} wrong pattern, {} unreadable",
            self.samples,
            self.unit_bytes,
            self.seed,
            self.expect,
            self.unchanged.len(),
            self.wrong_pattern.len(),
            self.read_errors.len()
        )
    }
}

impl CanarySet {
    /// Plan `count` samples (at least the first and last block) over `size` bytes.
    pub fn plan(size: u64, logical_sector: u32, count: usize, seed: u64) -> Self {
        let unit = u64::from(logical_sector).max(4096);
        let blocks = size / unit;
        let mut offsets = Vec::new();
        if blocks > 0 {
            offsets.push(0);
            offsets.push((blocks - 1) * unit);
            // Stratified: one random block per stratum, so samples cover the device.
            let strata = count.saturating_sub(2).max(1) as u64;
            let mut rng = SplitMix64::new(seed);
            for s in 0..strata {
                let lo = s * blocks / strata;
                let hi = ((s + 1) * blocks / strata).max(lo + 1);
                offsets.push((lo + rng.below(hi - lo)) * unit);
            }
        }
        offsets.sort_unstable();
        offsets.dedup();
        CanarySet {
            seed,
            unit,
            offsets,
        }
    }

    /// The canary bytes of the sample at `offset`: seeded, never constant.
    pub fn bytes_at(&self, offset: u64, out: &mut [u8]) {
        let mut rng = SplitMix64::new(self.seed ^ offset.rotate_left(17) ^ 0x4C45_5448_4543);
        for c in out.chunks_mut(8) {
            let v = rng.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }

    /// Write every canary, flush, and read each back.
    pub fn plant(&self, dev: &dyn BlockDevice) -> Result<(), IoFault> {
        let n = self.unit as usize;
        let mut want = buf(n);
        for &off in &self.offsets {
            self.bytes_at(off, &mut want);
            dev.write_at(&want, off)?;
        }
        dev.flush()?;
        let mut got = buf(n);
        for &off in &self.offsets {
            self.bytes_at(off, &mut want);
            dev.read_at(&mut got, off)?;
            if got[..] != want[..] {
                return Err(IoFault::Other(format!(
                    "canary at offset {off} did not read back as written: the device drops writes"
                )));
            }
        }
        Ok(())
    }

    /// Read every sample and compare.
    pub fn check(&self, dev: &dyn BlockDevice, expect: Expect) -> ReadBack {
        let n = self.unit as usize;
        let mut canary = buf(n);
        let mut got = buf(n);
        let mut rb = ReadBack {
            samples: self.offsets.len(),
            unit_bytes: self.unit,
            seed: self.seed,
            expect,
            unchanged: Vec::new(),
            wrong_pattern: Vec::new(),
            read_errors: Vec::new(),
        };
        for &off in &self.offsets {
            if let Err(e) = dev.read_at(&mut got, off) {
                rb.read_errors.push((off, e.to_string()));
                continue;
            }
            self.bytes_at(off, &mut canary);
            if got[..] == canary[..] {
                rb.unchanged.push(off);
            } else if let Expect::Byte(b) = expect {
                if got.iter().any(|&x| x != b) {
                    rb.wrong_pattern.push(off);
                }
            }
        }
        rb
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Mem(std::sync::Mutex<Vec<u8>>);
    impl BlockDevice for Mem {
        fn geometry(&self) -> lethe_core::device::Geometry {
            let n = self.0.lock().map(|v| v.len()).unwrap_or(0) as u64;
            lethe_core::device::Geometry {
                size_bytes: n,
                logical_sector: 512,
                physical_sector: 4096,
            }
        }
        fn write_at(&self, b: &[u8], o: u64) -> Result<(), IoFault> {
            let mut v = self
                .0
                .lock()
                .map_err(|_| IoFault::Other("poisoned".into()))?;
            v[o as usize..o as usize + b.len()].copy_from_slice(b);
            Ok(())
        }
        fn read_at(&self, b: &mut [u8], o: u64) -> Result<(), IoFault> {
            let v = self
                .0
                .lock()
                .map_err(|_| IoFault::Other("poisoned".into()))?;
            b.copy_from_slice(&v[o as usize..o as usize + b.len()]);
            Ok(())
        }
        fn flush(&self) -> Result<(), IoFault> {
            Ok(())
        }
    }

    #[test]
    fn canaries_detect_an_erase_and_its_absence() {
        let dev = Mem(std::sync::Mutex::new(vec![0u8; 1 << 20]));
        let c = CanarySet::plan(1 << 20, 512, 16, 7);
        assert_eq!(c.offsets.first(), Some(&0));
        assert_eq!(c.offsets.last(), Some(&((1 << 20) - 4096)));
        c.plant(&dev).unwrap_or_else(|e| panic!("{e}"));
        let rb = c.check(&dev, Expect::Changed);
        assert_eq!(rb.unchanged.len(), c.offsets.len(), "nothing erased yet");
        assert!(!rb.passed());
        if let Ok(mut v) = dev.0.lock() {
            v.fill(0);
        }
        assert!(c.check(&dev, Expect::Changed).passed());
        assert!(c.check(&dev, Expect::Byte(0)).passed());
        let rb = c.check(&dev, Expect::Byte(0xFF));
        assert_eq!(rb.wrong_pattern.len(), c.offsets.len());
    }

    #[test]
    fn a_tiny_device_gets_no_samples_and_cannot_pass() {
        let c = CanarySet::plan(2048, 512, 16, 1);
        assert!(c.offsets.is_empty());
        let dev = Mem(std::sync::Mutex::new(vec![0u8; 2048]));
        assert!(!c.check(&dev, Expect::Changed).passed());
    }

    proptest! {
        #[test]
        fn plans_stay_inside_the_device_and_are_aligned(
            blocks in 1u64..100_000, count in 0usize..300, seed: u64, sector in prop::sample::select(vec![512u32, 4096])
        ) {
            let size = blocks * 4096 + 17;
            let c = CanarySet::plan(size, sector, count, seed);
            prop_assert!(c.offsets.contains(&0));
            prop_assert!(c.offsets.contains(&((blocks - 1) * 4096)));
            for w in c.offsets.windows(2) {
                prop_assert!(w[0] < w[1]);
            }
            for &o in &c.offsets {
                prop_assert_eq!(o % c.unit, 0);
                prop_assert!(o + c.unit <= size);
            }
        }
    }
}
