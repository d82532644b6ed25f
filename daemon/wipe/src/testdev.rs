//! Block devices for tests and simulations: an in-memory device, a plain file,
//! and a fault-injecting wrapper around any device.
//!
//! The wrapper keeps the real contract (positioned, sector-aligned I/O that
//! fails with the same [`IoFault`] kinds the Linux layer reports) and adds
//! scripted faults: media errors on writes or reads in given ranges, a drive
//! that acknowledges writes it silently drops, and a drive that vanishes.

use lethe_core::device::{BlockDevice, Geometry, IoFault};
use lethe_core::ranges::RangeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

fn check_aligned(geo: &Geometry, len: usize, offset: u64) -> Result<(), IoFault> {
    let s = u64::from(geo.logical_sector);
    if offset % s != 0 || len as u64 % s != 0 {
        return Err(IoFault::Other(format!(
            "unaligned I/O: {len} bytes at {offset} (errno 22)"
        )));
    }
    if offset + len as u64 > geo.size_bytes {
        return Err(IoFault::Other(format!(
            "I/O past the end: {len} bytes at {offset} (errno 22)"
        )));
    }
    Ok(())
}

/// A device held in memory.
pub struct MemDevice {
    geo: Geometry,
    data: Mutex<Vec<u8>>,
}

impl MemDevice {
    pub fn new(size: u64, logical_sector: u32) -> Self {
        Self::with_content(vec![0xEE; size as usize], logical_sector)
    }

    pub fn with_content(data: Vec<u8>, logical_sector: u32) -> Self {
        Self {
            geo: Geometry {
                size_bytes: data.len() as u64,
                logical_sector,
                physical_sector: logical_sector.max(4096),
            },
            data: Mutex::new(data),
        }
    }

    pub fn contents(&self) -> Vec<u8> {
        self.data.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl BlockDevice for MemDevice {
    fn geometry(&self) -> Geometry {
        self.geo
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault> {
        check_aligned(&self.geo, buf.len(), offset)?;
        let mut d = self.data.lock().unwrap_or_else(|e| e.into_inner());
        d[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault> {
        check_aligned(&self.geo, buf.len(), offset)?;
        let d = self.data.lock().unwrap_or_else(|e| e.into_inner());
        buf.copy_from_slice(&d[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn flush(&self) -> Result<(), IoFault> {
        Ok(())
    }
}

/// A regular file used as a device (buffered I/O; for simulations and tests).
pub struct FileDevice {
    file: File,
    geo: Geometry,
}

impl FileDevice {
    pub fn open(path: &std::path::Path, logical_sector: u32) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            file,
            geo: Geometry {
                size_bytes: size / u64::from(logical_sector) * u64::from(logical_sector),
                logical_sector,
                physical_sector: logical_sector.max(4096),
            },
        })
    }
}

fn io_fault(e: std::io::Error, what: &str) -> IoFault {
    IoFault::from_errno(e.raw_os_error().unwrap_or(5), format!("{what}: {e}"))
}

impl BlockDevice for FileDevice {
    fn geometry(&self) -> Geometry {
        self.geo
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault> {
        check_aligned(&self.geo, buf.len(), offset)?;
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| io_fault(e, "write"))
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault> {
        check_aligned(&self.geo, buf.len(), offset)?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| io_fault(e, "read"))
    }
    fn flush(&self) -> Result<(), IoFault> {
        self.file.sync_data().map_err(|e| io_fault(e, "fdatasync"))
    }
}

/// Scripted faults applied on top of another device.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Writes touching these ranges fail with a medium error (EIO).
    pub bad_writes: RangeSet,
    /// Reads touching these ranges fail with a medium error.
    pub bad_reads: RangeSet,
    /// Writes to these ranges report success but store nothing (a lying drive).
    pub dropped_writes: RangeSet,
    /// After this many successful writes the device disappears (ENODEV).
    pub gone_after_writes: Option<u64>,
}

/// A device that misbehaves as its [`FaultPlan`] says.
pub struct FaultyDevice<D> {
    inner: D,
    plan: FaultPlan,
    writes: AtomicU64,
}

impl<D: BlockDevice> FaultyDevice<D> {
    pub fn new(inner: D, plan: FaultPlan) -> Self {
        Self {
            inner,
            plan,
            writes: AtomicU64::new(0),
        }
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    fn gone(&self) -> bool {
        self.plan
            .gone_after_writes
            .is_some_and(|n| self.writes.load(Ordering::SeqCst) >= n)
    }
}

fn overlaps(set: &RangeSet, offset: u64, len: u64) -> bool {
    set.iter()
        .any(|r| r.offset < offset + len && offset < r.end())
}

impl<D: BlockDevice> BlockDevice for FaultyDevice<D> {
    fn geometry(&self) -> Geometry {
        self.inner.geometry()
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault> {
        if self.gone() {
            return Err(IoFault::from_errno(19, "write: device vanished"));
        }
        let len = buf.len() as u64;
        if overlaps(&self.plan.bad_writes, offset, len) {
            return Err(IoFault::from_errno(
                5,
                format!("write at {offset}: injected medium error"),
            ));
        }
        if overlaps(&self.plan.dropped_writes, offset, len) {
            // Store only the parts outside the dropped ranges.
            let sector = u64::from(self.geometry().logical_sector);
            for (i, part) in buf.chunks(sector as usize).enumerate() {
                let at = offset + i as u64 * sector;
                if !overlaps(&self.plan.dropped_writes, at, sector) {
                    self.inner.write_at(part, at)?;
                }
            }
        } else {
            self.inner.write_at(buf, offset)?;
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault> {
        if self.gone() {
            return Err(IoFault::from_errno(19, "read: device vanished"));
        }
        if overlaps(&self.plan.bad_reads, offset, buf.len() as u64) {
            return Err(IoFault::from_errno(
                61,
                format!("read at {offset}: injected medium error"),
            ));
        }
        self.inner.read_at(buf, offset)
    }

    fn flush(&self) -> Result<(), IoFault> {
        if self.gone() {
            return Err(IoFault::from_errno(19, "flush: device vanished"));
        }
        self.inner.flush()
    }
}
