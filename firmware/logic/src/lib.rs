//! Board-independent controller firmware logic (`no_std`, no alloc).
//!
//! * [`degausser`]: the pure degausser state machine (idle → armed → firing → cooldown, faults latched).
//! * [`leds`]: the bay LED pattern scheduler.
//! * [`watchdog`]: the link watchdog.
//! * [`firmware`]: ties them to pins (`embedded-hal` 1.0), a clock and the serial link (`embedded-io`).
//!
//! A board crate only implements the pins, [`Monotonic`], [`Board`] and the UART, then calls
//! [`firmware::Firmware::service`] from its main loop.
#![no_std]
#![forbid(unsafe_code)]

pub mod degausser;
pub mod firmware;
pub mod leds;
pub mod watchdog;

/// A millisecond clock. Wraps at `u32::MAX`; all comparisons use wrapping arithmetic.
pub trait Monotonic {
    /// Milliseconds since reset.
    fn now_ms(&mut self) -> u32;
}

/// Board hooks that are not pins.
pub trait Board {
    /// Drive the simulated door interlock / e-stop inputs. Return false if this build does not
    /// support simulation (production boards), which makes the firmware refuse the request.
    fn sim_inputs(&mut self, interlock_open: bool, estop: bool) -> bool;
}

/// Timing configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How long an arm stays valid.
    pub arm_expiry_ms: u32,
    /// Relay-on time of one cycle (hard bound).
    pub fire_ms: u32,
    /// Relay-off time after a cycle before the next arm.
    pub cooldown_ms: u32,
    /// Link watchdog window; the relay drops when no valid frame arrived for this long.
    pub watchdog_ms: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            arm_expiry_ms: 5_000,
            fire_ms: 1_500,
            cooldown_ms: 1_000,
            watchdog_ms: 500,
        }
    }
}

/// Firmware version reported in the hello.
pub const FW_VERSION: (u8, u8, u8) = (0, 1, 0);

/// Input snapshot the state machine acts on. Unreadable inputs count as unsafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    /// Door interlock closed.
    pub interlock_closed: bool,
    /// Emergency stop active.
    pub estop: bool,
    /// Host link alive.
    pub link_ok: bool,
}

impl Inputs {
    /// All safe: door closed, no e-stop, link alive.
    pub const SAFE: Inputs = Inputs {
        interlock_closed: true,
        estop: false,
        link_ok: true,
    };
}
