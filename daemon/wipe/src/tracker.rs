//! Hands out chunks in order to worker threads and knows the low-water mark
//! below which every chunk has completed.

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

    pub fn done(&self, chunk: Chunk) {
        self.lock().in_flight.remove(&chunk.offset);
    }

    /// Every byte of the handed-out ranges below this offset is finished.
    pub fn watermark(&self) -> u64 {
        let g = self.lock();
        g.in_flight.first().copied().unwrap_or(g.next)
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
}
