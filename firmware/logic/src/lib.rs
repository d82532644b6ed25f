//! Board-independent controller firmware logic (`no_std`, no alloc, no `unsafe`).
//!
//! * [`degausser`]: the pure degausser state machine (idle → armed → firing → releasing →
//!   cooldown), contact supervision (welded / no pick-up), faults latched by severity, trips
//!   cleared only by the local reset.
//! * [`machine`]: the whole controller as a pure machine: requests, sensed inputs and time in;
//!   replies and the wanted relay level out (sessions, whole-request duplicate suppression, link
//!   monitor, LED patterns). The exhaustive state-space test drives this.
//! * [`firmware`]: the thin driver around it: pins (embedded-hal 1.0), the relay rewritten and read
//!   back on every poll, the hardware pulse limit and watchdog through [`Board`], bounded receive.
//! * [`leds`], [`link`], [`ring`] (ISR → main-loop byte queue), [`reset`] (the reset-cause record
//!   kept in RAM across resets).
//!
//! A board crate implements the pins, [`Board`] and the UART, keeps a free-running millisecond
//! clock, and calls [`firmware::Firmware::service`] from its main loop.
#![no_std]
#![forbid(unsafe_code)]

pub mod degausser;
pub mod firmware;
pub mod leds;
pub mod link;
pub mod machine;
pub mod reset;
pub mod ring;

pub use degausser::Inputs;
pub use lethe_proto::{BuildKind, ResetCause, SimContact, SimFault};

/// A request from the host that a simulation build applies to its simulated hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimRequest {
    /// Set the inputs QEMU cannot drive.
    Inputs {
        /// Door open.
        interlock_open: bool,
        /// E-stop pressed.
        estop: bool,
        /// Feedback contact model.
        contact: SimContact,
        /// Local reset button held.
        reset_pressed: bool,
    },
    /// Inject a fault after the acknowledgement has been sent.
    Fault(SimFault),
}

/// Board hooks that are not plain pins: the independent safety hardware and simulation.
pub trait Board {
    /// Production or simulation image (a production board never simulates anything).
    fn build(&self) -> BuildKind;
    /// Start the one-shot hardware timer whose interrupt drops the relay after `ms`, whatever the
    /// main loop does. Called just before the relay is energized. Once the timer has fired the
    /// board keeps the relay low (a `set_high` is ignored) until the next `start_pulse_limit`, so
    /// the main loop's rewrite cannot re-energize a cut pulse.
    fn start_pulse_limit(&mut self, ms: u32);
    /// Stop the pulse-limit timer (the relay was dropped by the main loop).
    fn stop_pulse_limit(&mut self);
    /// Whether the pulse-limit interrupt dropped the relay since the last call (read and clear).
    fn pulse_limit_tripped(&mut self) -> bool;
    /// Restart the hardware watchdog. Called only at the end of a healthy poll.
    fn kick_watchdog(&mut self);
    /// A few bits of timing entropy (e.g. a free-running counter read when a frame arrives).
    fn entropy(&mut self) -> u32;
    /// Apply a simulation request. Only called on a [`BuildKind::Simulation`] board.
    fn simulate(&mut self, req: SimRequest);
}

/// Timing configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    /// How long an arm stays valid.
    pub arm_expiry_ms: u32,
    /// Relay-on time of one cycle; the main loop ends the pulse here.
    pub fire_ms: u32,
    /// Minimum time from the coil's last energized instant to the next arm.
    pub cooldown_ms: u32,
    /// Link timeout: with no valid frame for this long the link counts as lost (a running pulse
    /// is dropped and latches `LinkLost`, an arm is withdrawn).
    pub link_timeout_ms: u32,
    /// Pick-up / drop-out time allowed to the relay and its feedback contact before a
    /// disagreement with the command latches a fault.
    pub contact_ms: u32,
    /// The hardware pulse limit is `fire_ms + pulse_margin_ms`: a backstop that only acts when the
    /// main loop is late.
    pub pulse_margin_ms: u32,
}

impl Config {
    /// The hardware pulse limit.
    pub const fn pulse_limit_ms(&self) -> u32 {
        self.fire_ms + self.pulse_margin_ms
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            arm_expiry_ms: 5_000,
            fire_ms: 1_500,
            cooldown_ms: 1_000,
            link_timeout_ms: 500,
            contact_ms: 50,
            pulse_margin_ms: 20,
        }
    }
}

/// Firmware version reported in the welcome.
pub const FW_VERSION: (u8, u8, u8) = (0, 2, 0);
