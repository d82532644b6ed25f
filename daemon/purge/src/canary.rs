//! Read-back proof for drive-native erases.
//!
//! Before the command, known per-job bytes ("canaries") are written to sampled
//! blocks spread over the device, always including the first and last block,
//! and read back. After the drive reports completion every sample must read
//! back changed, and equal to the pattern where the method promises one. A
//! drive that was already blank still proves something this way: the canaries
//! are ours, so only an erase removes them.
//!
//! The samples span the drive's native capacity when a hidden area was
//! removed. Linux keeps the block device at its old size until the disk is
//! revalidated, so [`NativeView`] reaches the formerly hidden sectors through
//! ATA READ/WRITE SECTORS EXT on the pass-through instead.

use aligned_vec::{AVec, ConstAlign};
use lethe_cmds::ata;
use lethe_cmds::io::DriveIo;
use lethe_core::device::{BlockDevice, IoFault};
use lethe_core::sampling::SplitMix64;
use serde::{Deserialize, Serialize};

/// What the canaries are written to and read from.
pub trait Medium {
    /// Bytes the samples may span.
    fn span(&self) -> u64;
    /// Write all of `buf` at byte `offset`.
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault>;
    /// Fill all of `buf` from byte `offset`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault>;
    /// Make the writes durable.
    fn flush(&self) -> Result<(), IoFault>;
}

/// The block device as the host sees it.
pub struct Visible<'a>(pub &'a dyn BlockDevice);

impl Medium for Visible<'_> {
    fn span(&self) -> u64 {
        self.0.geometry().size_bytes
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault> {
        self.0.write_at(buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault> {
        self.0.read_at(buf, offset)
    }
    fn flush(&self) -> Result<(), IoFault> {
        self.0.flush()
    }
}

/// The whole native capacity of an ATA drive whose hidden area was removed:
/// the block device up to its (old) size, the ATA pass-through beyond it.
pub struct NativeView<'a> {
    /// The block device.
    pub dev: &'a dyn BlockDevice,
    /// The pass-through to the same drive.
    pub io: &'a dyn DriveIo,
    /// Native capacity in bytes.
    pub native_bytes: u64,
    /// Logical sector size (512 or 4096).
    pub sector: u32,
}

impl NativeView<'_> {
    fn visible(&self) -> u64 {
        self.dev.geometry().size_bytes.min(self.native_bytes)
    }

    /// One pass-through transfer of whole sectors at `offset`.
    fn pio(&self, buf: &mut [u8], offset: u64, write: bool) -> Result<(), IoFault> {
        let sector = u64::from(self.sector);
        if offset % sector != 0 || buf.len() as u64 % sector != 0 {
            return Err(IoFault::Other(format!(
                "unaligned pass-through I/O at {offset} len {}",
                buf.len()
            )));
        }
        let per = usize::from(ata::MAX_PIO_SECTORS) * self.sector as usize;
        for (i, chunk) in buf.chunks_mut(per).enumerate() {
            let lba = (offset + (i * per) as u64) / sector;
            let n = (chunk.len() as u64 / sector) as u16;
            let cmd = if write {
                ata::write_sectors_ext(lba, n, self.sector)
            } else {
                ata::read_sectors_ext(lba, n, self.sector)
            }
            .map_err(|e| IoFault::Other(e.to_string()))?;
            let what = if write { "WRITE" } else { "READ" };
            match self.io.ata(&cmd, chunk) {
                Ok(r) if !r.failed() => {}
                Ok(r) => {
                    return Err(IoFault::Media(format!(
                        "{what} SECTORS EXT at LBA {lba}: status {:#04x} error {:#04x}",
                        r.status, r.error
                    )))
                }
                Err(e) => {
                    return Err(IoFault::Other(format!(
                        "{what} SECTORS EXT at LBA {lba}: {e}"
                    )))
                }
            }
        }
        Ok(())
    }

    fn split(&self, len: usize, offset: u64) -> usize {
        let vis = self.visible();
        if offset >= vis {
            0
        } else {
            (vis - offset).min(len as u64) as usize
        }
    }
}

impl Medium for NativeView<'_> {
    fn span(&self) -> u64 {
        self.native_bytes
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault> {
        let k = self.split(buf.len(), offset);
        if k > 0 {
            self.dev.write_at(&buf[..k], offset)?;
        }
        if k < buf.len() {
            let mut rest = buf[k..].to_vec();
            self.pio(&mut rest, offset + k as u64, true)?;
        }
        Ok(())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault> {
        let k = self.split(buf.len(), offset);
        if k > 0 {
            self.dev.read_at(&mut buf[..k], offset)?;
        }
        if k < buf.len() {
            self.pio(&mut buf[k..], offset + k as u64, false)?;
        }
        Ok(())
    }
    fn flush(&self) -> Result<(), IoFault> {
        // PIO writes complete on the medium before the command ends; the
        // block device's cache is flushed the usual way.
        self.dev.flush()
    }
}

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
    /// Bytes the plan spans.
    pub span: u64,
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
    /// Bytes the sample plan spanned (the native capacity when a hidden area
    /// was removed), so an auditor can regenerate the plan.
    #[serde(default)]
    pub span_bytes: u64,
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
            span: size,
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
    pub fn plant(&self, dev: &dyn Medium) -> Result<(), IoFault> {
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
    pub fn check(&self, dev: &dyn Medium, expect: Expect) -> ReadBack {
        let n = self.unit as usize;
        let mut canary = buf(n);
        let mut got = buf(n);
        let mut rb = ReadBack {
            samples: self.offsets.len(),
            span_bytes: self.span,
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
        let m = Visible(&dev);
        c.plant(&m).unwrap_or_else(|e| panic!("{e}"));
        let rb = c.check(&m, Expect::Changed);
        assert_eq!(rb.unchanged.len(), c.offsets.len(), "nothing erased yet");
        assert!(!rb.passed());
        if let Ok(mut v) = dev.0.lock() {
            v.fill(0);
        }
        assert!(c.check(&m, Expect::Changed).passed());
        assert!(c.check(&m, Expect::Byte(0)).passed());
        let rb = c.check(&m, Expect::Byte(0xFF));
        assert_eq!(rb.wrong_pattern.len(), c.offsets.len());
    }

    #[test]
    fn a_tiny_device_gets_no_samples_and_cannot_pass() {
        let c = CanarySet::plan(2048, 512, 16, 1);
        assert!(c.offsets.is_empty());
        let dev = Mem(std::sync::Mutex::new(vec![0u8; 2048]));
        assert!(!c.check(&Visible(&dev), Expect::Changed).passed());
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
