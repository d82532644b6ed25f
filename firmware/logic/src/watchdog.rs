//! Link watchdog: alive only while a valid frame arrived within the window.

/// Link watchdog with an injected clock.
#[derive(Debug, Clone, Copy)]
pub struct Watchdog {
    window_ms: u32,
    last: Option<u32>,
}

impl Watchdog {
    /// New watchdog; starts expired (no host yet).
    pub const fn new(window_ms: u32) -> Self {
        Self {
            window_ms,
            last: None,
        }
    }

    /// A valid frame arrived at `now`.
    pub fn feed(&mut self, now: u32) {
        self.last = Some(now);
    }

    /// True while the last frame is younger than the window.
    pub fn alive(&self, now: u32) -> bool {
        self.last
            .is_some_and(|t| now.wrapping_sub(t) < self.window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_dead_and_expires_after_window() {
        let mut w = Watchdog::new(500);
        assert!(!w.alive(0));
        w.feed(100);
        assert!(w.alive(100));
        assert!(w.alive(599));
        assert!(!w.alive(600));
        w.feed(u32::MAX - 10);
        assert!(w.alive(100), "wrapping clock");
    }
}
