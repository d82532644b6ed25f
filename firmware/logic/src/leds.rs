//! Bay LED pattern scheduler: each pattern is a pure function of time, pins change only on edges.
use embedded_hal::digital::OutputPin;
use lethe_proto::LedPattern;

/// LED level for `pattern` at `t` ms.
pub fn pattern_level(pattern: LedPattern, t: u32) -> bool {
    match pattern {
        LedPattern::Off => false,
        LedPattern::Idle => t % 2000 < 100,
        LedPattern::Busy => t % 1000 < 500,
        LedPattern::Success => true,
        LedPattern::Failure => t % 250 < 125,
        LedPattern::Attention => matches!(t % 1000, 0..=99 | 200..=299),
    }
}

/// `N` bay LED pins and their driven levels.
#[derive(Clone)]
pub struct LedBank<L, const N: usize> {
    pins: [L; N],
    levels: [bool; N],
}

impl<L: OutputPin, const N: usize> LedBank<L, N> {
    /// Take the pins and drive them all low.
    pub fn new(mut pins: [L; N]) -> Self {
        for p in pins.iter_mut() {
            let _ = p.set_low();
        }
        Self {
            pins,
            levels: [false; N],
        }
    }

    /// Drive every LED to its pattern's level at `now`, touching only pins whose level changes.
    pub fn update(&mut self, now: u32, patterns: &[LedPattern; N]) {
        let slots = self.pins.iter_mut().zip(self.levels.iter_mut());
        for ((pin, level), &pattern) in slots.zip(patterns) {
            let want = pattern_level(pattern, now);
            if want != *level {
                let r = if want { pin.set_high() } else { pin.set_low() };
                if r.is_ok() {
                    *level = want;
                }
            }
        }
    }

    /// Driven levels as a bitmask (bit n = bay n).
    pub fn mask(&self) -> u32 {
        self.levels
            .iter()
            .enumerate()
            .fold(0, |m, (i, &on)| m | (u32::from(on) << i))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as T};

    #[test]
    fn patterns_follow_schedule() {
        assert!(!pattern_level(LedPattern::Off, 0));
        assert!(pattern_level(LedPattern::Success, 12345));
        assert!(pattern_level(LedPattern::Busy, 499) && !pattern_level(LedPattern::Busy, 500));
        assert!(
            pattern_level(LedPattern::Failure, 124) && !pattern_level(LedPattern::Failure, 125)
        );
        assert!(pattern_level(LedPattern::Idle, 2050) && !pattern_level(LedPattern::Idle, 2100));
        let att: std::vec::Vec<bool> = (0..10)
            .map(|k| pattern_level(LedPattern::Attention, k * 100))
            .collect();
        assert_eq!(
            att,
            [true, false, true, false, false, false, false, false, false, false]
        );
    }

    #[test]
    fn only_edges_touch_pins() {
        let pin0 = Mock::new(&[T::set(State::Low), T::set(State::High), T::set(State::Low)]);
        let pin1 = Mock::new(&[T::set(State::Low), T::set(State::High)]);
        let (mut c0, mut c1) = (pin0.clone(), pin1.clone());
        let mut bank = LedBank::new([pin0, pin1]);
        let patterns = [LedPattern::Busy, LedPattern::Success];
        bank.update(0, &patterns); // both go high
        assert_eq!(bank.mask(), 0b11);
        bank.update(100, &patterns); // no change
        bank.update(600, &patterns); // bay 0 low
        assert_eq!(bank.mask(), 0b10);
        c0.done();
        c1.done();
    }
}
