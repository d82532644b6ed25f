//! A single-producer single-consumer byte queue for an interrupt handler (producer) and the main
//! loop (consumer), built from atomics only, so it lives in a `static` with no `unsafe`.
//!
//! Head and tail are free-running counters; the slot of a counter is `counter % N`. The producer
//! writes the slot before publishing the new head (release), the consumer reads it after seeing
//! the head (acquire). When full, a byte is dropped and counted: the frame it belonged to then
//! fails its CRC and is answered with a NAK, and the host retransmits.
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Byte queue with `N` slots.
pub struct ByteRing<const N: usize> {
    buf: [AtomicU8; N],
    head: AtomicUsize,
    tail: AtomicUsize,
    dropped: AtomicUsize,
}

impl<const N: usize> Default for ByteRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ByteRing<N> {
    /// Empty queue.
    pub const fn new() -> Self {
        Self {
            buf: [const { AtomicU8::new(0) }; N],
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        }
    }

    /// Producer side: queue `b`; false (and counted) if full.
    pub fn push(&self, b: u8) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        if head.wrapping_sub(tail) >= N {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.buf[head % N].store(b, Ordering::Relaxed);
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Consumer side: the oldest byte, if any.
    pub fn pop(&self) -> Option<u8> {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        let b = self.buf[tail % N].load(Ordering::Relaxed);
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Some(b)
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.head.load(Ordering::Acquire) == self.tail.load(Ordering::Relaxed)
    }

    /// Bytes dropped because the queue was full.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_wraps_and_drops_when_full() {
        let r = ByteRing::<4>::new();
        assert!(r.is_empty() && r.pop().is_none());
        for round in 0..10u8 {
            for i in 0..3 {
                assert!(r.push(round * 3 + i));
            }
            for i in 0..3 {
                assert_eq!(r.pop(), Some(round * 3 + i));
            }
        }
        for i in 0..4 {
            assert!(r.push(i));
        }
        assert!(!r.push(99), "full");
        assert_eq!(r.dropped(), 1);
        assert_eq!(r.pop(), Some(0));
        assert!(r.push(4));
        assert_eq!([r.pop(), r.pop(), r.pop(), r.pop()], [1, 2, 3, 4].map(Some));
        assert!(r.is_empty());
    }

    #[test]
    fn producer_and_consumer_threads_lose_nothing() {
        extern crate std;
        static R: ByteRing<16> = ByteRing::new();
        let n = 100_000usize;
        let prod = std::thread::spawn(move || {
            for i in 0..n {
                while !R.push(i as u8) {
                    std::hint::spin_loop();
                }
            }
        });
        let mut got = 0usize;
        while got < n {
            if let Some(b) = R.pop() {
                assert_eq!(b, got as u8, "in order");
                got += 1;
            }
        }
        prod.join().unwrap();
        assert!(R.is_empty());
    }
}
