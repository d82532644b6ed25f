//! The whole controller as a pure machine: decoded requests, sensed inputs and time in; replies,
//! the wanted relay level and simulation requests out. No pins, no clock, no I/O, so a test can
//! drive it through every sequence of requests and input changes.
//!
//! Protocol rules enforced here (`docs/protocol.md`):
//! * a request equal to the last one in every byte (sequence number *and* message) is answered
//!   again without being executed again; anything else, even with a reused sequence number, is
//!   executed. `Hello` always executes and starts a new conversation;
//! * the session id is drawn at the first `Hello` of a boot and announced in `Welcome`; `Arm` and
//!   `Fire` carrying another one are refused with `StaleSession`, so nothing armed before a
//!   restart can fire after it;
//! * simulation requests are refused by a production build.
use crate::degausser::{Degausser, Inputs};
use crate::link::LinkMonitor;
use crate::{Config, SimRequest, FW_VERSION};
use lethe_proto::{
    BuildKind, FaultCode, Frame, LedPattern, Msg, NakReason, Refusal, ResetCause, Status, Welcome,
    PROTOCOL_VERSION,
};

/// What the driver read from the pins in this pass. Unreadable pins must be reported unsafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sense {
    /// Door interlock input reads closed.
    pub door_closed: bool,
    /// E-stop loop intact (not pressed).
    pub estop_ok: bool,
    /// Feedback contact reads energized.
    pub energized: bool,
    /// Local reset button held.
    pub reset_pressed: bool,
    /// Relay output as read back from the pin.
    pub relay_readback: bool,
    /// Bay LED levels as driven (bit n = bay n).
    pub leds: u32,
}

impl Sense {
    /// A healthy board at rest: door closed, no e-stop, contact off, relay low, LEDs dark.
    pub const AT_REST: Sense = Sense {
        door_closed: true,
        estop_ok: true,
        energized: false,
        reset_pressed: false,
        relay_readback: false,
        leds: 0,
    };
}

/// The controller's decisions, for `N` bays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Machine<const N: usize> {
    deg: Degausser,
    link: LinkMonitor,
    build: BuildKind,
    reset_cause: ResetCause,
    session: u32,
    entropy: u32,
    leds: [LedPattern; N],
    /// The last request executed and its reply, replayed if the same request comes again.
    last: Option<(Frame, Frame)>,
    sense: Sense,
}

impl<const N: usize> Machine<N> {
    /// A freshly reset controller (clock at 0). An abnormal `reset_cause` (watchdog, panic,
    /// fault) boots with `UnexpectedReset` latched, so someone acknowledges it before the next
    /// cycle. Any reset with power kept (every cause but `PowerOn`, which means RAM, and so the
    /// coil supply, was off) may have cut a pulse: the cooldown then runs from boot.
    pub fn new(cfg: Config, build: BuildKind, reset_cause: ResetCause, seed: u32) -> Self {
        let mut deg = Degausser::new(cfg, seed);
        if matches!(
            reset_cause,
            ResetCause::Watchdog | ResetCause::Panic | ResetCause::HardFault
        ) {
            deg.detected(FaultCode::UnexpectedReset);
        }
        if reset_cause != ResetCause::PowerOn {
            deg.assume_hot(0);
        }
        Self {
            deg,
            link: LinkMonitor::new(cfg.link_timeout_ms),
            build,
            reset_cause,
            session: 0,
            entropy: seed ^ 0x6C65_7468,
            leds: [LedPattern::Off; N],
            last: None,
            sense: Sense::AT_REST,
        }
    }

    /// The degausser state machine (read-only).
    pub fn degausser(&self) -> &Degausser {
        &self.deg
    }

    /// Whether the relay must be energized.
    pub fn relay_wanted(&self) -> bool {
        self.deg.relay_on()
    }

    /// LED patterns per bay.
    pub fn led_patterns(&self) -> &[LedPattern; N] {
        &self.leds
    }

    /// This boot's session id (0 before the first `Hello`).
    pub fn session(&self) -> u32 {
        self.session
    }

    /// Mix timing entropy (e.g. a free-running counter at a frame's arrival) into the generators.
    pub fn stir(&mut self, entropy: u32) {
        self.entropy = (self.entropy.rotate_left(5) ^ entropy).wrapping_mul(0x2545_F491);
        self.deg.stir(entropy);
    }

    fn inputs(&self, now: u32, s: Sense) -> Inputs {
        Inputs {
            interlock_closed: s.door_closed,
            estop: !s.estop_ok,
            link_ok: self.link.alive(now),
            energized: s.energized,
            reset_pressed: s.reset_pressed,
        }
    }

    /// Periodic work: overrides, timeouts, contact supervision. Returns the wanted relay level.
    pub fn poll(&mut self, now: u32, s: Sense) -> bool {
        self.sense = s;
        let inp = self.inputs(now, s);
        self.deg.tick(now, inp);
        self.deg.relay_on()
    }

    /// A fault the driver detected (read-back mismatch, hardware pulse limit).
    pub fn detected(&mut self, code: FaultCode) {
        self.deg.detected(code);
    }

    /// Status snapshot as of the last poll.
    pub fn status(&self, now: u32) -> Status {
        let s = self.sense;
        Status {
            relay: s.relay_readback,
            energized: s.energized,
            interlock_closed: s.door_closed,
            estop: !s.estop_ok,
            fault: self.deg.fault(),
            uptime_ms: now,
            pins: u32::from(s.relay_readback) | (s.leds << 1),
            degausser: self.deg.state(),
            cycles: self.deg.cycles(),
            last_cycle_ms: self.deg.last_cycle_ms(),
            link_ok: self.link.alive(now),
            cooldown_ms: self.deg.cooldown_ms(),
            session: self.session,
        }
    }

    /// Answer one decoded request. The caller drives the relay from [`Machine::relay_wanted`]
    /// before sending the reply, and applies the simulation request, if any, on a simulation board.
    pub fn request(&mut self, req: Frame, now: u32, s: Sense) -> (Frame, Option<SimRequest>) {
        self.link.feed(now);
        let hello = matches!(req.msg, Msg::Hello { .. });
        if hello {
            self.last = None;
        } else if let Some((prev, reply)) = self.last {
            if req.seq != 0 && prev == req {
                return (reply, None); // retransmission: answer again, do not act twice
            }
        }
        self.poll(now, s);
        let (msg, sim) = self.execute(req.msg, now, s);
        self.poll(now, s);
        let reply = Frame { seq: req.seq, msg };
        if !hello {
            self.last = Some((req, reply));
        }
        (reply, sim)
    }

    fn new_session(&mut self) -> u32 {
        let mut x = self.entropy ^ 0x5E55_0000;
        x ^= x >> 16;
        x = x.wrapping_mul(0x7FEB_352D);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846C_A68B);
        x ^= x >> 16;
        if x == 0 {
            1
        } else {
            x
        }
    }

    fn session_ok(&self, session: u32) -> bool {
        self.session != 0 && session == self.session
    }

    fn execute(&mut self, msg: Msg, now: u32, s: Sense) -> (Msg, Option<SimRequest>) {
        let refused = |r| (Msg::Refused(r), None);
        let inp = self.inputs(now, s);
        match msg {
            Msg::Hello { protocol, .. } => {
                if protocol != PROTOCOL_VERSION {
                    return (Msg::Nak(NakReason::ProtocolMismatch), None);
                }
                if self.session == 0 {
                    self.session = self.new_session();
                }
                let (major, minor, patch) = FW_VERSION;
                let w = Welcome {
                    protocol: PROTOCOL_VERSION,
                    major,
                    minor,
                    patch,
                    session: self.session,
                    build: self.build,
                    reset_cause: self.reset_cause,
                };
                (Msg::Welcome(w), None)
            }
            Msg::Heartbeat | Msg::GetStatus => (Msg::Status(self.status(now)), None),
            Msg::SetLed { bay, pattern } => match self.leds.get_mut(usize::from(bay)) {
                Some(p) => {
                    *p = pattern;
                    (Msg::Ack, None)
                }
                None => refused(Refusal::NoSuchBay),
            },
            Msg::Arm { session } if !self.session_ok(session) => refused(Refusal::StaleSession),
            Msg::Arm { .. } => match self.deg.arm(now, inp) {
                Ok((nonce, expires_in_ms)) => (
                    Msg::Armed {
                        nonce,
                        expires_in_ms,
                    },
                    None,
                ),
                Err(r) => refused(r),
            },
            Msg::Fire { session, .. } if !self.session_ok(session) => {
                refused(Refusal::StaleSession)
            }
            Msg::Fire { nonce, .. } => match self.deg.fire(now, nonce, inp) {
                Ok((cycle, duration_ms)) => (Msg::Firing { cycle, duration_ms }, None),
                Err(r) => refused(r),
            },
            Msg::Abort => {
                self.deg.abort();
                (Msg::Ack, None)
            }
            Msg::ClearFault => match self.deg.clear_fault(now, inp) {
                Ok(()) => (Msg::Ack, None),
                Err(r) => refused(r),
            },
            Msg::SimInputs { .. } | Msg::SimFault(_) if self.build != BuildKind::Simulation => {
                refused(Refusal::Unsupported)
            }
            Msg::SimInputs {
                interlock_open,
                estop,
                contact,
                reset_pressed,
            } => (
                Msg::Ack,
                Some(SimRequest::Inputs {
                    interlock_open,
                    estop,
                    contact,
                    reset_pressed,
                }),
            ),
            Msg::SimFault(f) => (Msg::Ack, Some(SimRequest::Fault(f))),
            Msg::Ack
            | Msg::Nak(_)
            | Msg::Refused(_)
            | Msg::Armed { .. }
            | Msg::Firing { .. }
            | Msg::Status(_)
            | Msg::Welcome(_) => refused(Refusal::Unexpected),
        }
    }
}

#[cfg(test)]
mod tests;
