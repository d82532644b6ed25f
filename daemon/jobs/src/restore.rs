//! Restoring a device image onto a device: the same chain as a wipe.
//!
//! Overwriting a device with an image destroys what is on it, so the job
//! refuses protected devices, holds the device exclusively, requires the
//! operator's confirmation, refuses a device smaller than the image before
//! anything is written, and is recorded as a job. The backup engine writes
//! through its `ImageSink` seam; here that sink is the exclusive target,
//! behind an adapter that turns the engine's sequential writes into aligned
//! direct I/O.

use crate::event::{Event, Outcome, Report};
use crate::record::JobLog;
use crate::refusal::Refusal;
use crate::request::{JobKind, RestoreImageRequest};
use crate::runner::Ctx;
use crate::spec::RestoreSpec;
use aligned_vec::{AVec, ConstAlign};
use lethe_backup::restore::ImageSink;
use lethe_core::device::BlockDevice;
use lethe_store::JobStatus;
use std::sync::Arc;

/// An image to write: its length, and a way to stream it into a sink.
pub trait ImageSource: Send + Sync {
    /// Bytes of the image.
    fn len(&self) -> u64;
    /// True for an empty image.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// What it is, for the job's history ("snapshot 3fa9… (image of /dev/sdb)").
    fn describe(&self) -> String;
    /// Write the image into `sink` (and check it); bytes written.
    fn restore_into(&self, sink: &mut dyn ImageSink) -> Result<u64, String>;
}

/// A device or stream snapshot of a backup repository.
pub struct SnapshotImage {
    repo: Arc<lethe_backup::Repository>,
    snap: lethe_repo::snapshot::Snapshot,
    id: String,
    len: u64,
}

impl SnapshotImage {
    /// The image of `snap` (an image or stream snapshot, not a tree).
    pub fn new(
        repo: Arc<lethe_backup::Repository>,
        snap: lethe_repo::snapshot::Snapshot,
        id: String,
    ) -> Result<Self, String> {
        let len = lethe_backup::restore::image_len(&snap).map_err(|e| e.to_string())?;
        Ok(Self {
            repo,
            snap,
            id,
            len,
        })
    }
}

impl ImageSource for SnapshotImage {
    fn len(&self) -> u64 {
        self.len
    }
    fn describe(&self) -> String {
        format!("snapshot {} ({} bytes)", self.id, self.len)
    }
    fn restore_into(&self, sink: &mut dyn ImageSink) -> Result<u64, String> {
        lethe_backup::restore::restore_image(&self.repo, &self.snap, sink, &self.id)
            .map(|r| r.bytes)
            .map_err(|e| e.to_string())
    }
}

/// 4 KiB alignment satisfies O_DIRECT for every logical sector size in use.
type IoBuf = AVec<u8, ConstAlign<4096>>;

/// The engine's sequential writes as aligned, whole-sector direct I/O.
/// Bytes are staged in an aligned buffer and written a buffer at a time; the
/// last partial sector is merged with what the device holds there.
pub(crate) struct DeviceSink<'a> {
    dev: &'a dyn BlockDevice,
    buf: IoBuf,
    /// Device offset of `buf[0]`.
    base: u64,
    /// Bytes staged in `buf`.
    fill: usize,
    written: u64,
    total: u64,
    progress: &'a dyn Fn(u64, u64) -> bool,
}

const STAGE: usize = 1 << 20;

impl<'a> DeviceSink<'a> {
    /// `progress(done, total)` returns `false` to stop (cancelled).
    pub(crate) fn new(
        dev: &'a dyn BlockDevice,
        total: u64,
        progress: &'a dyn Fn(u64, u64) -> bool,
    ) -> Self {
        let mut buf = IoBuf::with_capacity(4096, STAGE);
        buf.resize(STAGE, 0);
        Self {
            dev,
            buf,
            base: 0,
            fill: 0,
            written: 0,
            total,
            progress,
        }
    }

    fn sector(&self) -> usize {
        self.dev.geometry().logical_sector.max(1) as usize
    }

    fn io(e: lethe_core::device::IoFault) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }

    /// Write the staged bytes; a partial last sector is merged with the device.
    fn flush_stage(&mut self, last: bool) -> std::io::Result<()> {
        if self.fill == 0 {
            return Ok(());
        }
        let s = self.sector();
        let whole = self.fill / s * s;
        let len = if last && whole < self.fill {
            // Read the device's sector and lay the tail over it.
            let mut tmp = IoBuf::with_capacity(4096, s);
            tmp.resize(s, 0);
            self.dev
                .read_at(&mut tmp, self.base + whole as u64)
                .map_err(Self::io)?;
            let tail = self.fill - whole;
            tmp[..tail].copy_from_slice(&self.buf[whole..self.fill]);
            self.buf[whole..whole + s].copy_from_slice(&tmp);
            whole + s
        } else {
            whole
        };
        if len > 0 {
            self.dev
                .write_at(&self.buf[..len], self.base)
                .map_err(Self::io)?;
        }
        let kept = self.fill - len.min(self.fill);
        self.buf.copy_within(len.min(self.fill)..self.fill, 0);
        self.base += len as u64;
        self.written += len.min(self.fill) as u64;
        self.fill = kept;
        if !(self.progress)(self.written.min(self.total), self.total) {
            return Err(std::io::Error::other("cancelled by the operator"));
        }
        Ok(())
    }
}

impl ImageSink for DeviceSink<'_> {
    fn capacity(&self) -> Option<u64> {
        Some(self.dev.geometry().size_bytes)
    }

    fn dense(&self) -> bool {
        true
    }

    fn write_at(&mut self, offset: u64, mut data: &[u8]) -> std::io::Result<()> {
        if offset != self.base + self.fill as u64 {
            return Err(std::io::Error::other(format!(
                "image writes must be sequential: got offset {offset}, expected {}",
                self.base + self.fill as u64
            )));
        }
        while !data.is_empty() {
            let n = data.len().min(STAGE - self.fill);
            self.buf[self.fill..self.fill + n].copy_from_slice(&data[..n]);
            self.fill += n;
            data = &data[n..];
            if self.fill == STAGE {
                self.flush_stage(false)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, len: u64) -> std::io::Result<()> {
        self.flush_stage(true)?;
        if self.base < len {
            return Err(std::io::Error::other(format!(
                "image ended at byte {} of {len}",
                self.base
            )));
        }
        self.dev.flush().map_err(Self::io)
    }
}

/// Restore an image onto a device.
pub(crate) fn run(ctx: &Ctx<'_>, req: RestoreImageRequest) -> Report {
    let device = req.device.display().to_string();
    let refuse = |why| Report::refused(None, JobKind::RestoreImage, Some(device.clone()), why);
    let _reservation = match ctx.cfg().state.preflight(ctx.id) {
        Ok(r) => r,
        Err(why) => return refuse(why),
    };
    let target = match ctx.acquire(&req.device) {
        Ok(t) => t,
        Err(why) => return refuse(why),
    };
    if let Err(why) = req.confirmation.check(target.identity()) {
        return refuse(why);
    }
    let image = req.image.len();
    let capacity = target.device().geometry().size_bytes;
    if capacity < image {
        return refuse(Refusal::TooSmall {
            device: target.identity().path.clone(),
            capacity,
            image,
        });
    }
    if ctx.cancelled() {
        return refuse(Refusal::Cancelled);
    }
    let spec = RestoreSpec {
        device: target.identity().clone(),
        image: req.image.describe(),
        image_bytes: image,
        operator_id: req.operator_id.clone(),
        tool_version: ctx.cfg().tool_version.clone(),
    };
    let log = match JobLog::create(
        ctx,
        JobKind::RestoreImage,
        &spec.device.path,
        &spec,
        Vec::new(),
    ) {
        Ok(l) => l,
        Err(why) => return refuse(why),
    };
    let _ = log.event(
        "started",
        &format!("restoring {} onto {}", spec.image, spec.device.label()),
    );
    let _ = log.event("confirmed", &req.confirmation.describe());
    ctx.before_write();
    let progress = |done: u64, total: u64| {
        ctx.emit(Event::Restore { done, total });
        !ctx.cancelled()
    };
    let mut sink = DeviceSink::new(target.device(), image, &progress);
    let result = req.image.restore_into(&mut sink);
    let mut report = Report::new(
        Some(ctx.id.to_string()),
        JobKind::RestoreImage,
        Outcome::Passed,
    );
    report.device = Some(spec.device.path.clone());
    report.method = Some("restore_image".into());
    let status = match result {
        Ok(n) => {
            report.bytes_written = n;
            let _ = log.event(
                "completed",
                &format!("{n} bytes restored; the image matched its backup-time BLAKE3"),
            );
            JobStatus::Pass
        }
        Err(e) => {
            report.outcome = Outcome::Failed;
            report.bytes_written = sink.written;
            report.problems.push(format!(
                "{e}; the device may hold a partial image ({} bytes written)",
                sink.written
            ));
            let _ = log.event("failed", &report.problems.join("; "));
            JobStatus::Fail
        }
    };
    let _ = log.finish(status, &crate::wipe::result_json(&report), None);
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use lethe_wipe::testdev::MemDevice;

    fn sink_roundtrip(image: &[u8], sector: u32, chunks: &[usize]) -> Vec<u8> {
        let dev = MemDevice::with_content(vec![0xEE; 64 * 1024], sector);
        let ok = |_: u64, _: u64| true;
        let mut s = DeviceSink::new(&dev, image.len() as u64, &ok);
        let mut off = 0;
        let mut it = chunks.iter().cycle();
        while off < image.len() {
            let n = (*it.next().unwrap()).min(image.len() - off);
            s.write_at(off as u64, &image[off..off + n]).unwrap();
            off += n;
        }
        s.finish(image.len() as u64).unwrap();
        dev.contents()
    }

    #[test]
    fn unaligned_sequential_writes_land_byte_exact_and_keep_the_rest() {
        let image: Vec<u8> = (0..10_007u32).map(|i| (i * 7 % 251) as u8).collect();
        for sector in [512, 4096] {
            let got = sink_roundtrip(&image, sector, &[1, 333, 4096, 7]);
            assert_eq!(&got[..image.len()], &image[..], "sector {sector}");
            // Past the image: the device's own bytes, untouched.
            assert!(got[image.len()..].iter().all(|&b| b == 0xEE));
        }
    }

    #[test]
    fn out_of_order_writes_and_cancellation_are_errors() {
        let dev = MemDevice::new(8192, 512);
        let ok = |_: u64, _: u64| true;
        let mut s = DeviceSink::new(&dev, 8192, &ok);
        assert!(s.write_at(512, &[0; 512]).is_err());
        let stop = |_: u64, _: u64| false;
        let mut s = DeviceSink::new(&dev, 8192, &stop);
        s.write_at(0, &[1; 600]).unwrap();
        assert!(s.finish(600).unwrap_err().to_string().contains("cancelled"));
    }

    proptest::proptest! {
        #[test]
        fn any_image_and_write_sizes_round_trip(
            len in 0usize..20_000,
            chunks in proptest::collection::vec(1usize..5000, 1..5),
        ) {
            let image: Vec<u8> = (0..len).map(|i| (i % 253) as u8 ^ 0x5a).collect();
            let got = sink_roundtrip(&image, 512, &chunks);
            proptest::prop_assert_eq!(&got[..len], &image[..]);
            proptest::prop_assert!(got[len..].iter().all(|&b| b == 0xEE));
        }
    }
}
