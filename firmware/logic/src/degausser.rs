//! The degausser state machine. Pure: no pins, time injected, inputs passed in.
//!
//! ```text
//!   Idle --arm (door closed, no e-stop, contact off, cooled down)--> Armed(nonce)
//!   Armed --fire(nonce, before expiry)--> Firing --fire_ms--> Releasing --contact off--> Idle (cooldown)
//!   Armed --expiry | abort | door open | link loss--> Idle
//!   Firing --door open--> fault InterlockOpened     Firing --link loss--> fault LinkLost
//!   Firing --abort--> fault Aborted                 any --e-stop--> fault EStop
//!   contact disagrees with the command for contact_ms --> fault RelayWelded (reads energized while
//!       commanded off) or RelayNoPickup (reads off while commanded on)
//!   fault --ClearFault (soft faults only, inputs safe)--> Idle
//!   fault --local reset released (inputs safe, contact off)--> Idle
//! ```
//! The relay may be on only in `Firing` with no fault; [`Degausser::tick`] ends `Firing` once
//! `fire_ms` has elapsed. A cycle counts as completed only when the feedback contact has been seen
//! energized and then seen dropping out, and its reported length is the time between the two.
//! The cooldown runs from the coil's last energized instant, so no fault or clear shortens it.
use crate::Config;
use lethe_proto::{DegausserState, FaultCode, Refusal};

/// Input snapshot the state machine acts on. Unreadable inputs count as unsafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Inputs {
    /// Door interlock closed.
    pub interlock_closed: bool,
    /// Emergency stop active.
    pub estop: bool,
    /// Host link alive.
    pub link_ok: bool,
    /// The feedback contact reads energized.
    pub energized: bool,
    /// The local reset button is held down (a reset acts when it is released).
    pub reset_pressed: bool,
}

impl Inputs {
    /// All safe and at rest: door closed, no e-stop, link alive, contact off, reset not held.
    pub const SAFE: Inputs = Inputs {
        interlock_closed: true,
        estop: false,
        link_ok: true,
        energized: false,
        reset_pressed: false,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum State {
    Idle,
    Armed {
        nonce: u32,
        armed_at: u32,
    },
    /// Relay commanded on since `started`; `on_seen` is the first tick the contact read energized.
    Firing {
        started: u32,
        on_seen: Option<u32>,
    },
    /// Normal end: relay commanded off, waiting for the contact to drop out.
    Releasing {
        on_seen: u32,
    },
}

/// Degausser state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Degausser {
    cfg: Config,
    state: State,
    fault: Option<FaultCode>,
    cycles: u32,
    last_cycle_ms: u32,
    rng: u32,
    /// Nonce of an arm that expired, so a late fire is reported as `ArmExpired`.
    expired_nonce: Option<u32>,
    /// Last instant the coil was energized (commanded on, or the contact reading energized).
    hot_at: Option<u32>,
    /// Since when the contact disagrees with the command, and whether it reads energized.
    mismatch: Option<(u32, bool)>,
    /// The coil was hot at the last tick (so the first tick that sees it cold still counts as
    /// hot: the drop-out happened somewhere in between).
    was_hot: bool,
    /// Reset button level at the last tick (a reset acts on the release).
    reset_held: bool,
    /// Time of the last tick.
    now: u32,
}

impl Degausser {
    /// New machine in `Idle` (the reset state: relay off). `seed` feeds the nonce generator.
    pub fn new(cfg: Config, seed: u32) -> Self {
        Self {
            cfg,
            state: State::Idle,
            fault: None,
            cycles: 0,
            last_cycle_ms: 0,
            rng: seed | 1,
            expired_nonce: None,
            hot_at: None,
            mismatch: None,
            was_hot: false,
            reset_held: false,
            now: 0,
        }
    }

    /// Reported state.
    pub fn state(&self) -> DegausserState {
        if self.fault.is_some() {
            return DegausserState::Fault;
        }
        match self.state {
            State::Idle if self.cooldown_ms() > 0 => DegausserState::Cooldown,
            State::Idle => DegausserState::Idle,
            State::Armed { .. } => DegausserState::Armed,
            State::Firing { .. } => DegausserState::Firing,
            State::Releasing { .. } => DegausserState::Cooldown,
        }
    }

    /// Latched fault.
    pub fn fault(&self) -> Option<FaultCode> {
        self.fault
    }

    /// Completed cycles.
    pub fn cycles(&self) -> u32 {
        self.cycles
    }

    /// Energized time of the last completed cycle, measured on the feedback contact.
    pub fn last_cycle_ms(&self) -> u32 {
        self.last_cycle_ms
    }

    /// Milliseconds of cooldown left at the last tick (0 = may arm).
    pub fn cooldown_ms(&self) -> u32 {
        match self.hot_at {
            Some(t) => self
                .cfg
                .cooldown_ms
                .saturating_sub(self.now.wrapping_sub(t)),
            None => 0,
        }
    }

    /// Whether the relay must be energized now.
    pub fn relay_on(&self) -> bool {
        self.fault.is_none() && matches!(self.state, State::Firing { .. })
    }

    /// When the current pulse was commanded on, if one is running.
    pub fn pulse_started(&self) -> Option<u32> {
        match self.state {
            State::Firing { started, .. } if self.fault.is_none() => Some(started),
            _ => None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Mix timing entropy into the nonce generator.
    pub fn stir(&mut self, entropy: u32) {
        self.rng = (self.rng ^ entropy.rotate_left(7)).wrapping_mul(0x9E37_79B9) | 1;
    }

    fn gate(&self, inp: Inputs) -> Result<(), Refusal> {
        if self.fault.is_some() {
            Err(Refusal::FaultLatched)
        } else if inp.estop {
            Err(Refusal::EStop)
        } else if !inp.interlock_closed {
            Err(Refusal::InterlockOpen)
        } else {
            Ok(())
        }
    }

    fn next_nonce(&mut self, now: u32) -> u32 {
        // xorshift32 mixed with the clock: the nonce binds a fire to its arm, it is not a secret.
        let mut x = self.rng ^ now.rotate_left(16);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = if x == 0 { 0x9E37_79B9 } else { x };
        self.rng
    }

    /// Arm: returns the nonce and its lifetime in ms.
    pub fn arm(&mut self, now: u32, inp: Inputs) -> Result<(u32, u32), Refusal> {
        self.tick(now, inp);
        self.gate(inp)?;
        match self.state {
            State::Firing { .. } => Err(Refusal::Busy),
            State::Releasing { .. } => Err(Refusal::CoolingDown),
            State::Idle | State::Armed { .. } => {
                if inp.energized || self.mismatch.is_some() {
                    return Err(Refusal::EnergizedAtRest);
                }
                if self.cooldown_ms() > 0 {
                    return Err(Refusal::CoolingDown);
                }
                let nonce = self.next_nonce(now);
                self.expired_nonce = None;
                self.state = State::Armed {
                    nonce,
                    armed_at: now,
                };
                Ok((nonce, self.cfg.arm_expiry_ms))
            }
        }
    }

    /// Fire: returns the number the cycle will get and its duration.
    pub fn fire(&mut self, now: u32, nonce: u32, inp: Inputs) -> Result<(u32, u32), Refusal> {
        self.tick(now, inp);
        self.gate(inp)?;
        match self.state {
            State::Armed { nonce: n, .. } if n == nonce => {
                if inp.energized || self.mismatch.is_some() {
                    return Err(Refusal::EnergizedAtRest);
                }
                self.state = State::Firing {
                    started: now,
                    on_seen: None,
                };
                // The contact has `contact_ms` from now to pick up.
                self.supervise_contact(now, inp);
                Ok((self.cycles.wrapping_add(1), self.cfg.fire_ms))
            }
            State::Armed { .. } => Err(Refusal::BadNonce),
            State::Idle if self.expired_nonce == Some(nonce) => Err(Refusal::ArmExpired),
            State::Idle => Err(Refusal::NotArmed),
            State::Firing { .. } | State::Releasing { .. } => Err(Refusal::Busy),
        }
    }

    /// Operator abort: disarms, or stops a cycle and latches `Aborted`. Always accepted.
    pub fn abort(&mut self) {
        match self.state {
            State::Firing { .. } => self.latch(FaultCode::Aborted),
            State::Armed { .. } => self.state = State::Idle,
            State::Idle | State::Releasing { .. } => {}
        }
    }

    /// Clear a latched soft fault over the link. Refused with no fault, for a fault that needs
    /// the local reset, and while the door is open or the e-stop active. The cooldown stays.
    pub fn clear_fault(&mut self, now: u32, inp: Inputs) -> Result<(), Refusal> {
        self.tick(now, inp);
        match self.fault {
            None => Err(Refusal::NoFault),
            Some(f) if f.needs_local_reset() => Err(Refusal::LocalResetRequired),
            Some(_) if inp.estop => Err(Refusal::EStop),
            Some(_) if !inp.interlock_closed => Err(Refusal::InterlockOpen),
            Some(_) => {
                self.fault = None;
                self.state = State::Idle;
                Ok(())
            }
        }
    }

    /// Count the coil as energized at `now`, so the cooldown runs from here (after a reset the
    /// firmware cannot know whether a pulse was just cut).
    pub fn assume_hot(&mut self, now: u32) {
        self.hot_at = Some(now);
        self.now = now;
    }

    /// A fault the driver detected (output read-back mismatch, hardware pulse limit, unexpected
    /// reset): latched like any other, relay off.
    pub fn detected(&mut self, code: FaultCode) {
        self.latch(code);
    }

    fn latch(&mut self, code: FaultCode) {
        match self.fault {
            Some(f) if f.severity() >= code.severity() => {}
            _ => self.fault = Some(code),
        }
        self.state = State::Idle;
    }

    /// Advance time and apply the overrides. Call on every poll (every few ms).
    pub fn tick(&mut self, now: u32, inp: Inputs) {
        self.now = now;
        if inp.estop {
            self.latch(FaultCode::EStop);
        }
        match self.state {
            State::Firing { .. } if !inp.interlock_closed => self.latch(FaultCode::InterlockOpened),
            State::Firing { .. } if !inp.link_ok => self.latch(FaultCode::LinkLost),
            State::Firing {
                started,
                mut on_seen,
            } => {
                if inp.energized && on_seen.is_none() {
                    on_seen = Some(now);
                }
                if now.wrapping_sub(started) < self.cfg.fire_ms {
                    self.state = State::Firing { started, on_seen };
                } else if let Some(on_seen) = on_seen {
                    self.state = State::Releasing { on_seen };
                } else {
                    // The whole pulse without the contact ever reading energized.
                    self.latch(FaultCode::RelayNoPickup);
                }
            }
            State::Releasing { on_seen } => {
                if !inp.energized {
                    self.cycles = self.cycles.wrapping_add(1);
                    self.last_cycle_ms = now.wrapping_sub(on_seen);
                    self.state = State::Idle;
                }
            }
            State::Armed { nonce, armed_at } => {
                if now.wrapping_sub(armed_at) >= self.cfg.arm_expiry_ms {
                    self.expired_nonce = Some(nonce);
                    self.state = State::Idle;
                } else if !inp.interlock_closed || !inp.link_ok {
                    self.state = State::Idle;
                }
            }
            State::Idle => {}
        }
        self.supervise_contact(now, inp);
        self.local_reset(inp);
    }

    /// The contact must follow the command within `contact_ms`.
    fn supervise_contact(&mut self, now: u32, inp: Inputs) {
        let commanded = self.relay_on();
        let hot = commanded || inp.energized;
        if hot || self.was_hot {
            self.hot_at = Some(now);
        }
        self.was_hot = hot;
        if inp.energized == commanded {
            self.mismatch = None;
            return;
        }
        let since = match self.mismatch {
            Some((since, energized)) if energized == inp.energized => since,
            _ => {
                self.mismatch = Some((now, inp.energized));
                now
            }
        };
        if now.wrapping_sub(since) >= self.cfg.contact_ms {
            self.latch(if inp.energized {
                FaultCode::RelayWelded
            } else {
                FaultCode::RelayNoPickup
            });
        }
    }

    /// The local reset acts when the button is released (a stuck button never resets), with the
    /// door closed, no e-stop and the contact off.
    fn local_reset(&mut self, inp: Inputs) {
        let released = self.reset_held && !inp.reset_pressed;
        self.reset_held = inp.reset_pressed;
        if released && self.fault.is_some() && inp.interlock_closed && !inp.estop && !inp.energized
        {
            self.fault = None;
            self.state = State::Idle;
            self.mismatch = None;
        }
    }
}

#[cfg(test)]
mod tests;
