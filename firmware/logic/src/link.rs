//! Link monitor: the host link counts as alive only while a valid frame arrived within the
//! timeout. (The hardware watchdog, which resets a stalled controller, is the board's.)

/// Link monitor with an injected clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkMonitor {
    timeout_ms: u32,
    last: Option<u32>,
}

impl LinkMonitor {
    /// New monitor; starts dead (no host yet).
    pub const fn new(timeout_ms: u32) -> Self {
        Self {
            timeout_ms,
            last: None,
        }
    }

    /// A valid frame arrived at `now`.
    pub fn feed(&mut self, now: u32) {
        self.last = Some(now);
    }

    /// True while the last frame is younger than the timeout.
    pub fn alive(&self, now: u32) -> bool {
        self.last
            .is_some_and(|t| now.wrapping_sub(t) < self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_dead_and_expires_after_timeout() {
        let mut w = LinkMonitor::new(500);
        assert!(!w.alive(0));
        w.feed(100);
        assert!(w.alive(100));
        assert!(w.alive(599));
        assert!(!w.alive(600));
        w.feed(u32::MAX - 10);
        assert!(w.alive(100), "wrapping clock");
    }
}
