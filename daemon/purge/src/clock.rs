//! Time for the runner: real time on a drive, injected time in the model.

/// A clock the runner polls and sleeps on.
pub trait Clock {
    /// Milliseconds since an arbitrary start.
    fn now_ms(&self) -> u64;
    /// Wait `ms` milliseconds.
    fn sleep_ms(&self, ms: u64);
}

/// The wall clock (monotonic).
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: std::time::Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            start: std::time::Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
    fn sleep_ms(&self, ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}
