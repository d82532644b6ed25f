//! Firmware-level tests: pins via embedded-hal-mock / shared fake inputs, the link via byte queues.
extern crate std;
use super::*;
use core::cell::Cell;
use core::convert::Infallible;
use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as T};
use lethe_proto::{decode_frame, DegausserState, FaultCode, LedPattern};
use std::collections::VecDeque;
use std::rc::Rc;
use std::vec::Vec;

/// Input pin whose level the test (or the fake board) sets.
#[derive(Clone)]
struct FakeIn(Rc<Cell<bool>>);
impl embedded_hal::digital::ErrorType for FakeIn {
    type Error = Infallible;
}
impl InputPin for FakeIn {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.get())
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.0.get())
    }
}

struct SimBoard {
    door: FakeIn,
    estop_ok: FakeIn,
    allow: bool,
}
impl Board for SimBoard {
    fn sim_inputs(&mut self, interlock_open: bool, estop: bool) -> bool {
        if self.allow {
            self.door.0.set(!interlock_open);
            self.estop_ok.0.set(!estop);
        }
        self.allow
    }
}

#[derive(Default)]
struct Link {
    rx: VecDeque<u8>,
    tx: Vec<u8>,
}
impl embedded_io::ErrorType for Link {
    type Error = Infallible;
}
impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        while n < buf.len() {
            match self.rx.pop_front() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }
}
impl ReadReady for Link {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(!self.rx.is_empty())
    }
}
impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.tx.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

type Fw = Firmware<Mock, Mock, FakeIn, FakeIn, SimBoard, 1>;

struct Rig {
    fw: Fw,
    relay: Mock,
    led: Mock,
    door: FakeIn,
    link: Link,
    seq: u8,
}

impl Rig {
    /// `relay_tx`: every write the relay must see, starting with the reset-time `Low`.
    fn new(relay_tx: &[T], led_tx: &[T], allow_sim: bool) -> Self {
        let relay = Mock::new(relay_tx);
        let led = Mock::new(led_tx);
        let door = FakeIn(Rc::new(Cell::new(true)));
        let estop_ok = FakeIn(Rc::new(Cell::new(true)));
        let board = SimBoard {
            door: door.clone(),
            estop_ok: estop_ok.clone(),
            allow: allow_sim,
        };
        let fw = Firmware::new(
            Config::default(),
            relay.clone(),
            [led.clone()],
            door.clone(),
            estop_ok,
            board,
            7,
        );
        Rig {
            fw,
            relay,
            led,
            door,
            link: Link::default(),
            seq: 0,
        }
    }

    fn send_raw(&mut self, bytes: &[u8], now: u32) -> Vec<Frame> {
        self.link.rx.extend(bytes.iter().copied());
        self.fw.service(&mut self.link, now);
        let out = core::mem::take(&mut self.link.tx);
        out.split(|&b| b == 0)
            .filter(|f| !f.is_empty())
            .map(|f| decode_frame(f).unwrap())
            .collect()
    }

    fn req(&mut self, msg: Msg, now: u32) -> Msg {
        self.seq = self.seq.wrapping_add(1).max(1);
        let mut buf = [0u8; MAX_FRAME];
        let n = encode_frame(&Frame { seq: self.seq, msg }, &mut buf).unwrap();
        let replies = self.send_raw(&buf[..n], now);
        assert_eq!(replies.len(), 1, "one reply per request");
        assert_eq!(replies[0].seq, self.seq, "reply echoes the sequence");
        replies[0].msg
    }

    fn arm(&mut self, now: u32) -> u32 {
        match self.req(Msg::Arm, now) {
            Msg::Armed {
                nonce,
                expires_in_ms: 5_000,
            } => nonce,
            other => panic!("arm: {other:?}"),
        }
    }

    fn done(mut self) {
        self.relay.done();
        self.led.done();
    }
}

#[test]
fn relay_driven_low_at_reset_and_hello_reports_versions() {
    let mut r = Rig::new(&[T::set(State::Low)], &[T::set(State::Low)], false);
    let hello = r.req(
        Msg::Hello {
            protocol: PROTOCOL_VERSION,
            major: 9,
            minor: 9,
            patch: 9,
        },
        0,
    );
    assert_eq!(
        hello,
        Msg::Hello {
            protocol: PROTOCOL_VERSION,
            major: 0,
            minor: 1,
            patch: 0
        }
    );
    let bad = r.req(
        Msg::Hello {
            protocol: PROTOCOL_VERSION + 1,
            major: 0,
            minor: 0,
            patch: 0,
        },
        1,
    );
    assert_eq!(bad, Msg::Nak(NakReason::ProtocolMismatch));
    r.done();
}

#[test]
fn full_cycle_drives_relay_exactly_once() {
    let relay = [T::set(State::Low), T::set(State::High), T::set(State::Low)];
    let mut r = Rig::new(&relay, &[T::set(State::Low)], false);
    let n = r.arm(0);
    assert_eq!(
        r.req(Msg::Fire { nonce: n }, 10),
        Msg::Firing {
            cycle: 1,
            duration_ms: 1_500
        }
    );
    assert!(r.fw.relay_level());
    for t in (100..1_510).step_by(100) {
        match r.req(Msg::Heartbeat, t) {
            Msg::Status(s) => {
                assert!(s.relay && s.pins & 1 == 1 && s.degausser == DegausserState::Firing)
            }
            other => panic!("{other:?}"),
        }
    }
    r.fw.poll(1_510);
    assert!(!r.fw.relay_level());
    let Msg::Status(s) = r.req(Msg::GetStatus, 1_520) else {
        panic!()
    };
    assert_eq!(
        (s.cycles, s.last_cycle_ms, s.degausser, s.relay),
        (1, 1_500, DegausserState::Cooldown, false)
    );
    r.fw.poll(2_510);
    assert_eq!(r.fw.degausser().state(), DegausserState::Idle);
    r.done();
}

#[test]
fn watchdog_drops_relay_within_500ms() {
    let relay = [T::set(State::Low), T::set(State::High), T::set(State::Low)];
    let mut r = Rig::new(&relay, &[T::set(State::Low)], false);
    let n = r.arm(0);
    r.req(Msg::Fire { nonce: n }, 100);
    r.fw.poll(599);
    assert!(r.fw.relay_level(), "499 ms after the last frame: still on");
    r.fw.poll(600);
    assert!(!r.fw.relay_level(), "500 ms after the last frame: dropped");
    let Msg::Status(s) = r.req(Msg::GetStatus, 700) else {
        panic!()
    };
    assert_eq!(s.fault, Some(FaultCode::LinkLost));
    r.done();
}

#[test]
fn door_opening_drops_relay_and_latches() {
    let relay = [T::set(State::Low), T::set(State::High), T::set(State::Low)];
    let mut r = Rig::new(&relay, &[T::set(State::Low)], false);
    let n = r.arm(0);
    r.req(Msg::Fire { nonce: n }, 1);
    r.door.0.set(false);
    r.fw.poll(2);
    assert!(!r.fw.relay_level());
    assert_eq!(r.fw.degausser().fault(), Some(FaultCode::InterlockOpened));
    assert_eq!(
        r.req(Msg::ClearFault, 3),
        Msg::Refused(Refusal::InterlockOpen)
    );
    r.door.0.set(true);
    assert_eq!(r.req(Msg::ClearFault, 4), Msg::Ack);
    r.done();
}

#[test]
fn sim_inputs_only_when_board_allows() {
    let mut r = Rig::new(&[T::set(State::Low)], &[T::set(State::Low)], false);
    let m = Msg::SimInputs {
        interlock_open: true,
        estop: false,
    };
    assert_eq!(r.req(m, 0), Msg::Refused(Refusal::Unsupported));
    r.done();
    let mut r = Rig::new(&[T::set(State::Low)], &[T::set(State::Low)], true);
    assert_eq!(r.req(m, 0), Msg::Ack);
    assert_eq!(r.req(Msg::Arm, 1), Msg::Refused(Refusal::InterlockOpen));
    let Msg::Status(s) = r.req(Msg::GetStatus, 2) else {
        panic!()
    };
    assert!(!s.interlock_closed);
    r.req(
        Msg::SimInputs {
            interlock_open: false,
            estop: true,
        },
        3,
    );
    let Msg::Status(s) = r.req(Msg::GetStatus, 4) else {
        panic!()
    };
    assert!(s.estop && s.fault == Some(FaultCode::EStop));
    r.done();
}

#[test]
fn retransmitted_fire_is_answered_not_repeated() {
    let relay = [T::set(State::Low), T::set(State::High), T::set(State::Low)];
    let mut r = Rig::new(&relay, &[T::set(State::Low)], false);
    let n = r.arm(0);
    let mut buf = [0u8; MAX_FRAME];
    let len = encode_frame(
        &Frame {
            seq: 50,
            msg: Msg::Fire { nonce: n },
        },
        &mut buf,
    )
    .unwrap();
    let a = r.send_raw(&buf[..len], 10);
    let b = r.send_raw(&buf[..len], 20);
    assert_eq!(a, b, "identical reply to the duplicate");
    for t in [300, 600, 900, 1_200, 1_500] {
        r.req(Msg::Heartbeat, t);
    }
    r.fw.poll(1_510);
    assert_eq!(r.fw.degausser().cycles(), 1);
    r.done();
}

#[test]
fn garbage_and_truncated_frames_get_naks_then_link_still_works() {
    let led = [T::set(State::Low), T::set(State::High)];
    let mut r = Rig::new(&[T::set(State::Low)], &led, false);
    let naks = r.send_raw(&[0x13, 0x37, 0xFF, 0x00], 0);
    assert_eq!(
        naks,
        [Frame {
            seq: 0,
            msg: Msg::Nak(NakReason::Malformed)
        }]
    );
    let mut buf = [0u8; MAX_FRAME];
    let n = encode_frame(
        &Frame {
            seq: 9,
            msg: Msg::GetStatus,
        },
        &mut buf,
    )
    .unwrap();
    let mut cut = buf[..n - 2].to_vec(); // drop last data byte: CRC no longer matches
    cut.push(0);
    let naks = r.send_raw(&cut, 1);
    assert_eq!(naks.len(), 1);
    assert!(matches!(
        naks[0].msg,
        Msg::Nak(NakReason::Crc | NakReason::Malformed)
    ));
    let long: Vec<u8> = core::iter::repeat_n(0x55, 300).chain([0]).collect();
    assert_eq!(r.send_raw(&long, 2)[0].msg, Msg::Nak(NakReason::Overflow));
    assert_eq!(
        r.req(
            Msg::SetLed {
                bay: 0,
                pattern: LedPattern::Success
            },
            3
        ),
        Msg::Ack
    );
    assert_eq!(
        r.req(
            Msg::SetLed {
                bay: 1,
                pattern: LedPattern::Success
            },
            4
        ),
        Msg::Refused(Refusal::NoSuchBay)
    );
    assert_eq!(r.req(Msg::Ack, 5), Msg::Refused(Refusal::Unexpected));
    r.done();
}
