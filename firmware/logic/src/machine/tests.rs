//! The protocol rules of the pure machine: sessions, whole-request duplicate suppression,
//! simulation requests, reset causes.
use super::*;
use lethe_proto::{DegausserState, SimContact, SimFault};

const HOT: Sense = Sense {
    energized: true,
    relay_readback: true,
    ..Sense::AT_REST
};

struct Host {
    m: Machine<2>,
    seq: u8,
    session: u32,
    now: u32,
}

impl Host {
    fn new(build: BuildKind, cause: ResetCause) -> Self {
        let mut h = Host {
            m: Machine::new(Config::default(), build, cause, 7),
            seq: 0,
            session: 0,
            now: 0,
        };
        match h.req(hello()) {
            Msg::Welcome(w) => h.session = w.session,
            other => panic!("hello: {other:?}"),
        }
        h
    }

    fn send(&mut self, f: Frame) -> Frame {
        let s = if self.m.relay_wanted() {
            HOT
        } else {
            Sense::AT_REST
        };
        let (reply, _) = self.m.request(f, self.now, s);
        assert_eq!(reply.seq, f.seq, "reply echoes the sequence");
        reply
    }

    fn req(&mut self, msg: Msg) -> Msg {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.send(Frame { seq: self.seq, msg }).msg
    }

    fn arm(&mut self) -> u32 {
        match self.req(Msg::Arm {
            session: self.session,
        }) {
            Msg::Armed { nonce, .. } => nonce,
            other => panic!("arm: {other:?}"),
        }
    }
}

fn hello() -> Msg {
    Msg::Hello {
        protocol: PROTOCOL_VERSION,
        major: 9,
        minor: 9,
        patch: 9,
    }
}

#[test]
fn welcome_announces_versions_session_build_and_reset_cause() {
    let mut h = Host::new(BuildKind::Simulation, ResetCause::PowerOn);
    let Msg::Welcome(w) = h.req(hello()) else {
        panic!()
    };
    assert_eq!((w.protocol, w.major, w.minor, w.patch), (2, 0, 2, 0));
    assert_eq!(w.session, h.session, "one session per boot");
    assert_ne!(w.session, 0);
    assert_eq!(
        (w.build, w.reset_cause),
        (BuildKind::Simulation, ResetCause::PowerOn)
    );
    let bad = Msg::Hello {
        protocol: PROTOCOL_VERSION + 1,
        major: 0,
        minor: 0,
        patch: 0,
    };
    assert_eq!(h.req(bad), Msg::Nak(NakReason::ProtocolMismatch));
}

#[test]
fn sessions_differ_with_entropy_and_bind_arm_and_fire() {
    let mut a = Machine::<1>::new(
        Config::default(),
        BuildKind::Production,
        ResetCause::PowerOn,
        1,
    );
    let mut b = a;
    a.stir(0x1234);
    b.stir(0x1235);
    let hello = Frame {
        seq: 1,
        msg: hello(),
    };
    let (ra, _) = a.request(hello, 0, Sense::AT_REST);
    let (rb, _) = b.request(hello, 0, Sense::AT_REST);
    assert_ne!(ra, rb, "entropy changes the session");

    let mut h = Host::new(BuildKind::Production, ResetCause::PowerOn);
    assert_eq!(
        h.req(Msg::Arm {
            session: h.session ^ 1
        }),
        Msg::Refused(Refusal::StaleSession)
    );
    let n = h.arm();
    assert_eq!(
        h.req(Msg::Fire {
            session: h.session.wrapping_add(1),
            nonce: n
        }),
        Msg::Refused(Refusal::StaleSession)
    );
    assert!(!h.m.relay_wanted());
    assert!(matches!(
        h.req(Msg::Fire {
            session: h.session,
            nonce: n
        }),
        Msg::Firing { cycle: 1, .. }
    ));
    assert!(h.m.relay_wanted());

    // Before any Hello there is no session: nothing can be armed.
    let mut fresh = Machine::<1>::new(
        Config::default(),
        BuildKind::Production,
        ResetCause::PowerOn,
        1,
    );
    let (r, _) = fresh.request(
        Frame {
            seq: 1,
            msg: Msg::Arm { session: 0 },
        },
        0,
        Sense::AT_REST,
    );
    assert_eq!(r.msg, Msg::Refused(Refusal::StaleSession));
}

/// safeguard: rule:fail-safe-relay
#[test]
fn abort_reusing_a_fires_sequence_number_is_executed() {
    let mut h = Host::new(BuildKind::Production, ResetCause::PowerOn);
    let n = h.arm();
    let fire = Frame {
        seq: 50,
        msg: Msg::Fire {
            session: h.session,
            nonce: n,
        },
    };
    let fired = h.send(fire);
    assert!(matches!(fired.msg, Msg::Firing { .. }));
    assert_eq!(
        h.send(fire),
        fired,
        "the same request again: answered, not repeated"
    );
    assert!(h.m.relay_wanted());
    // Same sequence number, different request: executed (v1 answered it as the Fire).
    let abort = h.send(Frame {
        seq: 50,
        msg: Msg::Abort,
    });
    assert_eq!(abort.msg, Msg::Ack);
    assert!(!h.m.relay_wanted(), "the abort dropped the relay");
    assert_eq!(h.m.degausser().fault(), Some(FaultCode::Aborted));
    // And a Fire reusing the Abort's sequence number is executed too (and refused: disarmed).
    assert_eq!(h.send(fire).msg, Msg::Refused(Refusal::FaultLatched));
}

#[test]
fn a_late_copy_of_a_fire_after_its_cycle_never_fires_again() {
    let mut h = Host::new(BuildKind::Production, ResetCause::PowerOn);
    let n = h.arm();
    let fire = Frame {
        seq: 9,
        msg: Msg::Fire {
            session: h.session,
            nonce: n,
        },
    };
    let a = h.send(fire);
    for t in (100..=1_400).step_by(100) {
        h.now = t;
        h.req(Msg::Heartbeat);
    }
    h.m.poll(1_500, HOT);
    h.m.poll(1_510, Sense::AT_REST);
    assert_eq!(h.m.degausser().cycles(), 1);
    assert_eq!(h.m.degausser().last_cycle_ms(), 1_410);
    assert!(matches!(a.msg, Msg::Firing { cycle: 1, .. }));
    h.now = 1_620;
    // Other requests came in between, so it is executed: the arm was used up.
    assert_eq!(h.send(fire).msg, Msg::Refused(Refusal::NotArmed));
    assert!(!h.m.relay_wanted());
    assert_eq!(h.m.degausser().state(), DegausserState::Cooldown);
    assert_eq!(h.m.degausser().cycles(), 1);
}

#[test]
fn hello_always_executes_and_starts_a_new_conversation() {
    let mut h = Host::new(BuildKind::Production, ResetCause::PowerOn);
    let hello = Frame {
        seq: 1,
        msg: hello(),
    };
    let a = h.send(hello);
    let b = h.send(hello);
    assert_eq!(a, b);
    let st = Frame {
        seq: 2,
        msg: Msg::GetStatus,
    };
    h.send(st);
    h.now = 100;
    h.send(hello);
    let Msg::Status(s) = h.send(st).msg else {
        panic!()
    };
    assert_eq!(
        s.uptime_ms, 100,
        "after a Hello the same GetStatus is executed, not replayed"
    );
}

#[test]
fn production_build_refuses_simulation_requests() {
    let sim_inputs = Msg::SimInputs {
        interlock_open: true,
        estop: false,
        contact: SimContact::Follows,
        reset_pressed: false,
    };
    let mut h = Host::new(BuildKind::Production, ResetCause::PowerOn);
    for msg in [sim_inputs, Msg::SimFault(SimFault::Panic)] {
        h.seq += 1;
        let (r, sim) = h.m.request(Frame { seq: h.seq, msg }, 0, Sense::AT_REST);
        assert_eq!((r.msg, sim), (Msg::Refused(Refusal::Unsupported), None));
    }
    let mut h = Host::new(BuildKind::Simulation, ResetCause::PowerOn);
    let (r, sim) = h.m.request(
        Frame {
            seq: 40,
            msg: Msg::SimFault(SimFault::Hang),
        },
        0,
        Sense::AT_REST,
    );
    assert_eq!(r.msg, Msg::Ack);
    assert_eq!(sim, Some(SimRequest::Fault(SimFault::Hang)));
    let (_, again) = h.m.request(
        Frame {
            seq: 40,
            msg: Msg::SimFault(SimFault::Hang),
        },
        0,
        Sense::AT_REST,
    );
    assert_eq!(
        again, None,
        "a retransmitted fault request is not injected twice"
    );
}

#[test]
fn abnormal_reset_boots_with_a_fault_to_acknowledge() {
    for cause in [
        ResetCause::Watchdog,
        ResetCause::Panic,
        ResetCause::HardFault,
    ] {
        let mut h = Host::new(BuildKind::Production, cause);
        let Msg::Status(s) = h.req(Msg::GetStatus) else {
            panic!()
        };
        assert_eq!(s.fault, Some(FaultCode::UnexpectedReset), "{cause:?}");
        assert!(!s.relay);
        assert_eq!(
            h.req(Msg::Arm { session: h.session }),
            Msg::Refused(Refusal::FaultLatched)
        );
        assert_eq!(h.req(Msg::ClearFault), Msg::Ack);
        assert_eq!(
            h.req(Msg::Arm { session: h.session }),
            Msg::Refused(Refusal::CoolingDown),
            "a reset may have cut a pulse: the cooldown runs from boot"
        );
        h.now = 1_000;
        h.arm();
    }
    let mut h = Host::new(BuildKind::Production, ResetCause::Unknown);
    assert_eq!(
        h.req(Msg::Arm { session: h.session }),
        Msg::Refused(Refusal::CoolingDown)
    );
    let mut h = Host::new(BuildKind::Production, ResetCause::PowerOn);
    h.arm();
}

#[test]
fn status_reports_what_was_sensed() {
    let mut h = Host::new(BuildKind::Production, ResetCause::PowerOn);
    let sensed = Sense {
        door_closed: false,
        estop_ok: true,
        energized: true,
        reset_pressed: false,
        relay_readback: true,
        leds: 0b10,
    };
    h.m.poll(5, sensed);
    let s = h.m.status(6);
    assert!(s.relay && s.energized && !s.interlock_closed && !s.estop);
    assert_eq!(
        s.pins, 0b101,
        "relay read back in bit 0, bay 1 LED in bit 2"
    );
    assert_eq!((s.uptime_ms, s.session), (6, h.session));
    assert_eq!(
        s.cooldown_ms, 1_000,
        "an energized contact restarts the cooldown"
    );
    assert!(s.link_ok);
    assert!(!h.m.status(600).link_ok, "link timeout");
}

#[test]
fn leds_and_unexpected_messages() {
    let mut h = Host::new(BuildKind::Production, ResetCause::PowerOn);
    assert_eq!(
        h.req(Msg::SetLed {
            bay: 1,
            pattern: LedPattern::Busy
        }),
        Msg::Ack
    );
    assert_eq!(h.m.led_patterns(), &[LedPattern::Off, LedPattern::Busy]);
    assert_eq!(
        h.req(Msg::SetLed {
            bay: 2,
            pattern: LedPattern::Busy
        }),
        Msg::Refused(Refusal::NoSuchBay)
    );
    assert_eq!(h.req(Msg::Ack), Msg::Refused(Refusal::Unexpected));
}
