//! Arbitrary sequences of host requests (well-formed ones and whatever decodes from raw bytes),
//! input changes and time steps against the controller's pure machine (`lethe-fw-logic`), with a
//! relay and feedback contact that follow its command (or stick). Deeper and more random than the
//! exhaustive depth-6 search in `firmware/logic/tests/state_space.rs`; the same core invariants:
//! the relay is never commanded on with the door open, the e-stop pressed, a fault latched, past
//! `fire_ms`, or without a `Fire` accepted for a live arm; a fault leaves only through `ClearFault`
//! (soft) or a local reset release; a welded contact latches `RelayWelded`.
#![no_main]

use lethe_fw_logic::machine::{Machine, Sense};
use lethe_fw_logic::{BuildKind, Config, ResetCause};
use lethe_proto::{decode_frame, FaultCode, Frame, Msg, PROTOCOL_VERSION};
use libfuzzer_sys::fuzz_target;

const CFG: Config = Config {
    arm_expiry_ms: 100,
    fire_ms: 40,
    cooldown_ms: 30,
    link_timeout_ms: 25,
    contact_ms: 10,
    pulse_margin_ms: 5,
};

struct World {
    m: Machine<2>,
    now: u32,
    door_closed: bool,
    estop: bool,
    /// 0 follows the relay, 1 stuck energized, 2 stuck off.
    contact: u8,
    reset: bool,
    seq: u8,
    session: u32,
    nonce: u32,
    last: Option<Frame>,
    weld_since: Option<u32>,
}

impl World {
    fn sense(&self) -> Sense {
        let want = self.m.relay_wanted();
        Sense {
            door_closed: self.door_closed,
            estop_ok: !self.estop,
            energized: match self.contact {
                0 => want,
                1 => true,
                _ => false,
            },
            reset_pressed: self.reset,
            relay_readback: want,
            leds: 0,
        }
    }

    fn send(&mut self, f: Frame) -> Msg {
        let (reply, _) = self.m.request(f, self.now, self.sense());
        self.m.poll(self.now, self.sense());
        self.last = (!matches!(f.msg, Msg::Hello { .. })).then_some(f);
        match reply.msg {
            Msg::Welcome(w) => self.session = w.session,
            Msg::Armed { nonce, .. } => self.nonce = nonce,
            _ => {}
        }
        reply.msg
    }

    fn next(&mut self, msg: Msg) -> Frame {
        self.seq = self.seq.wrapping_add(1).max(1);
        Frame { seq: self.seq, msg }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut w = World {
        m: Machine::new(CFG, BuildKind::Production, ResetCause::PowerOn, 3),
        now: 0,
        door_closed: true,
        estop: false,
        contact: 0,
        reset: false,
        seq: 0,
        session: 0,
        nonce: 0,
        last: None,
        weld_since: None,
    };
    let hello = w.next(Msg::Hello {
        protocol: PROTOCOL_VERSION,
        major: 0,
        minor: 0,
        patch: 0,
    });
    w.send(hello);
    let mut i = 0;
    while i < data.len() {
        let op = data[i];
        i += 1;
        let fault_before = w.m.degausser().fault();
        let want_before = w.m.relay_wanted();
        let mut fresh_fire_accepted = false;
        let mut cleared_ok = false;
        match op & 0x0F {
            0 => {
                let f = w.next(Msg::Arm { session: w.session });
                w.send(f);
            }
            1 | 2 => {
                let nonce = if op & 0x0F == 1 { w.nonce } else { w.nonce ^ u32::from(op) };
                let f = w.next(Msg::Fire {
                    session: w.session,
                    nonce,
                });
                fresh_fire_accepted = matches!(w.send(f), Msg::Firing { .. });
            }
            3 => {
                let f = w.next(Msg::Abort);
                w.send(f);
                assert!(!w.m.relay_wanted(), "an Abort left the relay on");
            }
            4 => {
                // Abort reusing the previous request's sequence number.
                let seq = w.last.map_or(1, |l| l.seq);
                let f = Frame {
                    seq,
                    msg: Msg::Abort,
                };
                if w.last != Some(f) {
                    w.send(f);
                    assert!(!w.m.relay_wanted(), "an executed Abort left the relay on");
                }
            }
            5 => {
                let f = w.next(Msg::ClearFault);
                cleared_ok = w.send(f) == Msg::Ack;
                if want_before {
                    assert!(w.m.relay_wanted(), "ClearFault ended a pulse");
                }
            }
            6 => {
                if let Some(f) = w.last {
                    w.send(f);
                    if !want_before {
                        assert!(!w.m.relay_wanted(), "a duplicate started a pulse");
                    }
                }
            }
            7 => {
                // Whatever decodes from the next bytes (any message, any seq).
                let n = usize::from(op >> 4) + 1;
                let end = (i + n).min(data.len());
                if let Ok(f) = decode_frame(&data[i..end]) {
                    let was_on = w.m.relay_wanted();
                    let r = w.send(f);
                    fresh_fire_accepted = !was_on && matches!(r, Msg::Firing { .. });
                    cleared_ok = f.msg == Msg::ClearFault && r == Msg::Ack;
                }
                i = end;
            }
            8 => w.door_closed = !w.door_closed,
            9 => w.estop = !w.estop,
            10 => w.contact = (w.contact + 1) % 3,
            11 => w.reset = !w.reset,
            _ => {
                w.now += u32::from(op >> 4) * 4 + 1;
            }
        }
        w.m.poll(w.now, w.sense());
        let deg = *w.m.degausser();
        let fault = deg.fault();
        if w.m.relay_wanted() {
            assert!(w.door_closed && !w.estop, "relay on with the door open or the e-stop");
            assert!(fault.is_none(), "relay on with a fault latched");
            let started = deg.pulse_started().expect("on means a pulse");
            assert!(w.now - started < CFG.fire_ms, "relay on past fire_ms");
            if !want_before {
                assert!(fresh_fire_accepted, "the relay went on without an accepted Fire");
            }
        }
        if let (Some(f), None) = (fault_before, fault) {
            let released = op & 0x0F == 11 && !w.reset;
            assert!(
                (cleared_ok && !f.needs_local_reset()) || released,
                "{f:?} disappeared without ClearFault or a local reset"
            );
        }
        let energized = w.sense().energized;
        if energized && !w.m.relay_wanted() {
            let since = *w.weld_since.get_or_insert(w.now);
            if w.now - since >= CFG.contact_ms {
                assert_eq!(fault, Some(FaultCode::RelayWelded), "welded contact");
            }
        } else {
            w.weld_since = None;
        }
    }
});
