//! Host-side retransmission state machine with injected time (milliseconds, any epoch).
//! One request is outstanding at a time; a reply with the same sequence completes it, a
//! sequence-0 NAK or a timeout triggers a retransmission, and after `max_tries` sends it gives up.

/// What the caller should do after [`RetrySession::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// Nothing outstanding or not yet due.
    Wait,
    /// Send the outstanding frame again (the session already counted the try).
    Retransmit,
    /// All tries used; the request failed.
    GiveUp,
}

/// Sequence allocator plus the single outstanding request.
#[derive(Debug, Clone)]
pub struct RetrySession {
    next_seq: u8,
    timeout_ms: u64,
    max_tries: u8,
    pending: Option<Pending>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u8,
    deadline: u64,
    tries: u8,
}

impl RetrySession {
    /// New session; `max_tries` counts the first send.
    pub const fn new(timeout_ms: u64, max_tries: u8) -> Self {
        Self {
            next_seq: 1,
            timeout_ms,
            max_tries,
            pending: None,
        }
    }

    /// Start a request at `now`; returns its sequence number (1..=255, never 0).
    pub fn start(&mut self, now: u64) -> u8 {
        let seq = self.next_seq;
        self.next_seq = if seq == 255 { 1 } else { seq + 1 };
        self.pending = Some(Pending {
            seq,
            deadline: now + self.timeout_ms,
            tries: 1,
        });
        seq
    }

    /// The outstanding sequence, if any.
    pub fn pending_seq(&self) -> Option<u8> {
        self.pending.map(|p| p.seq)
    }

    /// A reply with sequence `seq` arrived; true if it completes the outstanding request.
    pub fn on_reply(&mut self, seq: u8) -> bool {
        match self.pending {
            Some(p) if p.seq == seq && seq != 0 => {
                self.pending = None;
                true
            }
            _ => false,
        }
    }

    /// An unsolicited NAK arrived (our frame was garbled on the way): retransmit now if allowed.
    pub fn on_nak(&mut self, now: u64) -> RetryAction {
        match self.pending {
            Some(_) => self.retry(now),
            None => RetryAction::Wait,
        }
    }

    /// Check the timeout at `now`.
    pub fn poll(&mut self, now: u64) -> RetryAction {
        match self.pending {
            Some(p) if now >= p.deadline => self.retry(now),
            _ => RetryAction::Wait,
        }
    }

    /// Milliseconds until the outstanding request times out (0 if due, None if idle).
    pub fn time_left(&self, now: u64) -> Option<u64> {
        self.pending.map(|p| p.deadline.saturating_sub(now))
    }

    fn retry(&mut self, now: u64) -> RetryAction {
        let Some(p) = self.pending.as_mut() else {
            return RetryAction::Wait;
        };
        if p.tries >= self.max_tries {
            self.pending = None;
            return RetryAction::GiveUp;
        }
        p.tries += 1;
        p.deadline = now + self.timeout_ms;
        RetryAction::Retransmit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_completes_and_seq_skips_zero() {
        let mut s = RetrySession::new(100, 3);
        for _ in 0..254 {
            let q = s.start(0);
            assert!(s.on_reply(q));
        }
        assert_eq!(s.start(0), 255);
        assert!(s.on_reply(255));
        assert_eq!(s.start(0), 1, "wraps past 0");
        assert!(!s.on_reply(0));
    }

    #[test]
    fn timeout_retransmits_then_gives_up() {
        let mut s = RetrySession::new(100, 3);
        let q = s.start(1000);
        assert_eq!(s.poll(1099), RetryAction::Wait);
        assert_eq!(s.poll(1100), RetryAction::Retransmit);
        assert_eq!(s.time_left(1150), Some(50));
        assert_eq!(s.on_nak(1150), RetryAction::Retransmit);
        assert_eq!(s.poll(1250), RetryAction::GiveUp);
        assert_eq!(s.pending_seq(), None);
        assert!(!s.on_reply(q), "late reply after give-up is stale");
    }

    #[test]
    fn wrong_seq_does_not_complete() {
        let mut s = RetrySession::new(100, 2);
        let q = s.start(0);
        assert!(!s.on_reply(q.wrapping_add(1)));
        assert_eq!(s.pending_seq(), Some(q));
        assert_eq!(s.on_nak(10), RetryAction::Retransmit);
        assert!(s.on_reply(q));
        assert_eq!(s.poll(10_000), RetryAction::Wait);
    }
}
