//! The degausser state machine. Pure: no pins, time injected, inputs passed in.
//!
//! ```text
//!   Idle --arm--> Armed --fire(nonce, before expiry)--> Firing --fire_ms--> Cooldown --cooldown_ms--> Idle
//!                   |  expiry / abort / door open / link loss -> Idle
//!   Firing --door open | e-stop | link loss | abort--> fault latched (relay off)
//!   any state --e-stop--> fault latched;  fault --ClearFault (inputs safe)--> Idle
//! ```
//! The relay may be on only in `Firing` with no fault, and [`Degausser::tick`] ends `Firing` once
//! `fire_ms` has elapsed, so the on-time is bounded by `fire_ms` plus one tick.
use crate::{Config, Inputs};
use lethe_proto::{DegausserState, FaultCode, Refusal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Armed { nonce: u32, armed_at: u32 },
    Firing { started: u32 },
    Cooldown { since: u32 },
}

/// Degausser state machine.
#[derive(Debug, Clone)]
pub struct Degausser {
    cfg: Config,
    state: State,
    fault: Option<FaultCode>,
    cycles: u32,
    last_cycle_ms: u32,
    rng: u32,
    /// Nonce of an arm that expired, so a late fire is reported as `ArmExpired`.
    expired_nonce: Option<u32>,
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
        }
    }

    /// Reported state.
    pub fn state(&self) -> DegausserState {
        if self.fault.is_some() {
            return DegausserState::Fault;
        }
        match self.state {
            State::Idle => DegausserState::Idle,
            State::Armed { .. } => DegausserState::Armed,
            State::Firing { .. } => DegausserState::Firing,
            State::Cooldown { .. } => DegausserState::Cooldown,
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

    /// Relay-on time of the last completed cycle.
    pub fn last_cycle_ms(&self) -> u32 {
        self.last_cycle_ms
    }

    /// Whether the relay must be energized now.
    pub fn relay_on(&self) -> bool {
        self.fault.is_none() && matches!(self.state, State::Firing { .. })
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
            State::Idle | State::Armed { .. } => {
                let nonce = self.next_nonce(now);
                self.expired_nonce = None;
                self.state = State::Armed {
                    nonce,
                    armed_at: now,
                };
                Ok((nonce, self.cfg.arm_expiry_ms))
            }
            State::Firing { .. } | State::Cooldown { .. } => Err(Refusal::Busy),
        }
    }

    /// Fire: returns the number the cycle will get and its duration.
    pub fn fire(&mut self, now: u32, nonce: u32, inp: Inputs) -> Result<(u32, u32), Refusal> {
        self.tick(now, inp);
        self.gate(inp)?;
        match self.state {
            State::Armed { nonce: n, .. } if n == nonce => {
                self.state = State::Firing { started: now };
                Ok((self.cycles.wrapping_add(1), self.cfg.fire_ms))
            }
            State::Armed { .. } => Err(Refusal::BadNonce),
            State::Idle if self.expired_nonce == Some(nonce) => Err(Refusal::ArmExpired),
            State::Idle => Err(Refusal::NotArmed),
            State::Firing { .. } | State::Cooldown { .. } => Err(Refusal::Busy),
        }
    }

    /// Operator abort: disarms, or stops a cycle and latches `Aborted`.
    pub fn abort(&mut self, _now: u32) {
        match self.state {
            State::Firing { .. } => self.latch(FaultCode::Aborted),
            State::Armed { .. } => self.state = State::Idle,
            State::Idle | State::Cooldown { .. } => {}
        }
    }

    /// Clear a latched fault; refused while the door is open or e-stop active.
    pub fn clear_fault(&mut self, inp: Inputs) -> Result<(), Refusal> {
        if inp.estop {
            return Err(Refusal::EStop);
        }
        if !inp.interlock_closed {
            return Err(Refusal::InterlockOpen);
        }
        self.fault = None;
        self.state = State::Idle;
        Ok(())
    }

    fn latch(&mut self, code: FaultCode) {
        if self.fault.is_none() {
            self.fault = Some(code);
        }
        self.state = State::Idle;
    }

    /// Advance time and apply the overrides. Call at least every few ms.
    pub fn tick(&mut self, now: u32, inp: Inputs) {
        if inp.estop {
            self.latch(FaultCode::EStop);
            return;
        }
        match self.state {
            State::Firing { .. } if !inp.interlock_closed => self.latch(FaultCode::InterlockOpened),
            State::Firing { .. } if !inp.link_ok => self.latch(FaultCode::LinkLost),
            State::Firing { started } => {
                let on = now.wrapping_sub(started);
                if on >= self.cfg.fire_ms {
                    self.cycles = self.cycles.wrapping_add(1);
                    self.last_cycle_ms = on;
                    self.state = State::Cooldown { since: now };
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
            State::Cooldown { since } => {
                if now.wrapping_sub(since) >= self.cfg.cooldown_ms {
                    self.state = State::Idle;
                }
            }
            State::Idle => {}
        }
    }
}

#[cfg(test)]
mod tests;
