//! Hands out chunks in order to worker threads and knows the low-water mark
//! below which every chunk has completed.
//!
//! The low-water mark is what a checkpoint stores, so it must never pass a
//! chunk that is still being written or whose write failed: a resumed job
//! starts there and would otherwise skip an unwritten range. A chunk leaves
//! the in-flight set only through [`ChunkTracker::done`]; a failed chunk goes
//! through [`ChunkTracker::failed`] and pins the mark below it for good.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// One unit of work: a byte range of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub len: usize,
}

/// A list of byte ranges cut into chunks, consumed in order.
pub struct ChunkTracker {
    inner: Mutex<Inner>,
}

struct Inner {
    /// Ranges still to hand out, in order; the front one is partly consumed.
    ranges: std::collections::VecDeque<(u64, u64)>,
    chunk: u64,
    /// Offsets of chunks handed out and not yet finished.
    in_flight: BTreeSet<u64>,
    /// Offset of the lowest chunk whose work failed: nothing at or past it
    /// may ever be claimed as done.
    failed: Option<u64>,
    /// Where the next chunk starts (end of everything handed out).
    next: u64,
}

impl ChunkTracker {
    /// `ranges` must be sorted and disjoint; `chunk` is the largest chunk size.
    pub fn new(ranges: impl IntoIterator<Item = (u64, u64)>, chunk: u64) -> Self {
        let ranges: std::collections::VecDeque<_> =
            ranges.into_iter().filter(|(_, l)| *l > 0).collect();
        let next = ranges.front().map(|r| r.0).unwrap_or(0);
        Self {
            inner: Mutex::new(Inner {
                ranges,
                chunk,
                in_flight: BTreeSet::new(),
                failed: None,
                next,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A worker that panicked cannot leave the tracker inconsistent: every
        // update is a single insert/remove. Keep going with the data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next chunk to process, or `None` when everything was handed out.
    pub fn take(&self) -> Option<Chunk> {
        let mut g = self.lock();
        let chunk_size = g.chunk;
        let (off, len) = g.ranges.front_mut().map(|r| {
            let take = r.1.min(chunk_size);
            let c = (r.0, take);
            r.0 += take;
            r.1 -= take;
            c
        })?;
        if g.ranges.front().is_some_and(|r| r.1 == 0) {
            g.ranges.pop_front();
        }
        g.next = g.ranges.front().map(|r| r.0).unwrap_or(off + len);
        g.in_flight.insert(off);
        Some(Chunk {
            offset: off,
            len: len as usize,
        })
    }

    /// The chunk's work completed (written, or its bad sectors recorded).
    pub fn done(&self, chunk: Chunk) {
        self.lock().in_flight.remove(&chunk.offset);
    }

    /// The chunk's work failed: the mark stays below it from now on.
    pub fn failed(&self, chunk: Chunk) {
        let mut g = self.lock();
        g.in_flight.remove(&chunk.offset);
        g.failed = Some(g.failed.map_or(chunk.offset, |f| f.min(chunk.offset)));
    }

    /// Every byte of the handed-out ranges below this offset is finished:
    /// the lowest of the first in-flight chunk, the first failed chunk, and
    /// the end of what was handed out.
    pub fn watermark(&self) -> u64 {
        let g = self.lock();
        let mark = g.in_flight.first().copied().unwrap_or(g.next);
        g.failed.map_or(mark, |f| f.min(mark))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_in_order_and_watermark_waits_for_the_slowest() {
        let t = ChunkTracker::new([(0, 10), (20, 5)], 4);
        let a = t.take().unwrap();
        let b = t.take().unwrap();
        let c = t.take().unwrap();
        assert_eq!(
            (a.offset, a.len, b.offset, c.offset, c.len),
            (0, 4, 4, 8, 2)
        );
        t.done(b);
        assert_eq!(t.watermark(), 0);
        t.done(a);
        assert_eq!(t.watermark(), 8);
        t.done(c);
        assert_eq!(t.watermark(), 20);
        let d = t.take().unwrap();
        assert_eq!((d.offset, d.len), (20, 4));
        t.done(d);
        let e = t.take().unwrap();
        assert_eq!((e.offset, e.len), (24, 1));
        assert!(t.take().is_none());
        t.done(e);
        assert_eq!(t.watermark(), 25);
    }

    #[test]
    fn a_failed_chunk_pins_the_watermark_below_it() {
        let t = ChunkTracker::new([(0, 16)], 4);
        let a = t.take().unwrap();
        let b = t.take().unwrap();
        let c = t.take().unwrap();
        t.done(a);
        t.failed(b);
        t.done(c);
        // b (4..8) failed: nothing from 4 on may be claimed, even after later
        // chunks complete.
        assert_eq!(t.watermark(), 4);
        let d = t.take().unwrap();
        t.done(d);
        assert!(t.take().is_none());
        assert_eq!(t.watermark(), 4);
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever order chunks complete or fail in, every byte below the
        /// watermark belongs to a chunk that completed.
        #[test]
        fn watermark_never_passes_an_unfinished_or_failed_chunk(
            len in 1u64..200,
            chunk in 1u64..20,
            events in prop::collection::vec((any::<prop::sample::Index>(), 0u8..10), 0..60),
        ) {
            let t = ChunkTracker::new([(0, len)], chunk);
            let mut open: Vec<Chunk> = Vec::new();
            let mut completed: Vec<Chunk> = Vec::new();
            for (pick, action) in events {
                match action {
                    0..=3 => if let Some(c) = t.take() { open.push(c) },
                    4..=8 if !open.is_empty() => completed.push({
                        let c = open.remove(pick.index(open.len()));
                        t.done(c);
                        c
                    }),
                    9 if !open.is_empty() => t.failed(open.remove(pick.index(open.len()))),
                    _ => {}
                }
                let mark = t.watermark();
                for off in 0..mark {
                    prop_assert!(
                        completed.iter().any(|c| c.offset <= off && off < c.offset + c.len as u64),
                        "byte {} below watermark {} was never completed", off, mark
                    );
                }
            }
        }
    }
}
