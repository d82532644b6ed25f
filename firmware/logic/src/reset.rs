//! The reset record: four words the board keeps in RAM that its startup code does not clear
//! (`.uninit`), so the cause of a reset survives it.
//!
//! ```text
//! word 0  MAGIC 0x4C45_5448 ("LETH")
//! word 1  cause: 0 running (nothing recorded), 1 watchdog, 2 panic, 3 hard fault
//! word 2  boots since the record was last valid (power-on starts at 0)
//! word 3  check = MAGIC ^ cause.rotate_left(11) ^ boots.rotate_left(23) ^ 0xA5A5_5A5A
//! ```
//!
//! At boot [`boot`] turns the stored words into the [`ResetCause`] and the words to store while
//! running; the watchdog NMI, panic and HardFault handlers call [`record`] before the reset. After
//! power-on the RAM holds noise, the check fails and the cause is `PowerOn`. Everything here is
//! total (no panics, wrapping arithmetic), because the handlers run it.
use lethe_proto::ResetCause;

/// Words of the record.
pub type Words = [u32; 4];

const MAGIC: u32 = 0x4C45_5448;
const RUNNING: u32 = 0;

/// A cause the firmware records itself just before a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Hardware watchdog interrupt (first expiry; the second resets the board).
    Watchdog = 1,
    /// Panic handler.
    Panic = 2,
    /// HardFault or an unexpected exception.
    HardFault = 3,
}

fn check(cause: u32, boots: u32) -> u32 {
    MAGIC ^ cause.rotate_left(11) ^ boots.rotate_left(23) ^ 0xA5A5_5A5A
}

fn encode(cause: u32, boots: u32) -> Words {
    [MAGIC, cause, boots, check(cause, boots)]
}

fn decode(w: Words) -> Option<(u32, u32)> {
    (w[0] == MAGIC && w[1] <= 3 && w[3] == check(w[1], w[2])).then_some((w[1], w[2]))
}

/// At boot: the reset cause, the boot count, and the words to store while running.
pub fn boot(stored: Words) -> (ResetCause, u32, Words) {
    let (cause, boots) = match decode(stored) {
        None => (ResetCause::PowerOn, 0),
        Some((c, b)) => {
            let cause = match c {
                1 => ResetCause::Watchdog,
                2 => ResetCause::Panic,
                3 => ResetCause::HardFault,
                _ => ResetCause::Unknown,
            };
            (cause, b.wrapping_add(1))
        }
    };
    (cause, boots, encode(RUNNING, boots))
}

/// Record `cause` before a reset. The first recorded cause stays (a panic that ends in the
/// watchdog is reported as the panic); an invalid record becomes valid with this cause.
pub fn record(stored: Words, cause: Recorded) -> Words {
    match decode(stored) {
        Some((RUNNING, boots)) => encode(cause as u32, boots),
        Some(_) => stored,
        None => encode(cause as u32, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_on_then_causes_survive_resets() {
        let noise = [0x1234_5678, 0, 0xFFFF_FFFF, 7];
        let (cause, boots, run) = boot(noise);
        assert_eq!((cause, boots), (ResetCause::PowerOn, 0));
        // A reset nobody recorded (reset button).
        let (cause, boots, run) = boot(run);
        assert_eq!((cause, boots), (ResetCause::Unknown, 1));
        let (cause, boots, run) = boot(record(run, Recorded::Watchdog));
        assert_eq!((cause, boots), (ResetCause::Watchdog, 2));
        let (cause, _, run) = boot(record(run, Recorded::Panic));
        assert_eq!(cause, ResetCause::Panic);
        let (cause, _, _) = boot(record(run, Recorded::HardFault));
        assert_eq!(cause, ResetCause::HardFault);
    }

    #[test]
    fn first_recorded_cause_wins_and_corruption_reads_as_power_on() {
        let (_, _, run) = boot([0; 4]);
        let w = record(record(run, Recorded::Panic), Recorded::Watchdog);
        assert_eq!(boot(w).0, ResetCause::Panic);
        let mut bad = record(run, Recorded::Watchdog);
        bad[2] ^= 1;
        assert_eq!(boot(bad).0, ResetCause::PowerOn);
        assert_eq!(
            boot(record(bad, Recorded::HardFault)).0,
            ResetCause::HardFault
        );
    }
}
