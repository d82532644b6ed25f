//! Driver-level tests: fake pins and board that record what the firmware does to them, the link
//! via byte queues.
extern crate std;
use super::*;
use crate::{SimContact, SimFault, SimRequest};
use core::cell::{Cell, RefCell};
use core::convert::Infallible;
use embedded_hal::digital::{ErrorKind, ErrorType, OutputPin};
use lethe_proto::{decode_frame, DegausserState, FaultCode, Refusal, PROTOCOL_VERSION};
use std::collections::VecDeque;
use std::rc::Rc;
use std::vec::Vec;

/// Everything the fakes saw, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    RelayHigh,
    RelayLow,
    PulseStart(u32),
    PulseStop,
    Kick,
}

#[derive(Default)]
struct World {
    log: RefCell<Vec<Ev>>,
    /// Output level as written.
    relay: Cell<bool>,
    /// The pin reads back this level whatever is written.
    stuck: Cell<Option<bool>>,
    door_closed: Cell<bool>,
    estop_ok: Cell<bool>,
    /// Coil energized per the contact; None: follows the relay.
    contact: Cell<Option<bool>>,
    reset: Cell<bool>,
    unreadable: Cell<bool>,
    tripped: Cell<bool>,
    simulated: RefCell<Vec<SimRequest>>,
}

impl World {
    fn new() -> Rc<World> {
        let w = World::default();
        w.door_closed.set(true);
        w.estop_ok.set(true);
        Rc::new(w)
    }
    fn events(&self) -> Vec<Ev> {
        core::mem::take(&mut *self.log.borrow_mut())
    }
    fn level(&self) -> bool {
        self.stuck.get().unwrap_or(self.relay.get())
    }
}

struct Relay(Rc<World>);
impl ErrorType for Relay {
    type Error = Infallible;
}
impl OutputPin for Relay {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.relay.set(false);
        self.0.log.borrow_mut().push(Ev::RelayLow);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.relay.set(true);
        self.0.log.borrow_mut().push(Ev::RelayHigh);
        Ok(())
    }
}
impl StatefulOutputPin for Relay {
    fn is_set_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.level())
    }
    fn is_set_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.0.level())
    }
}

#[derive(Clone, Copy)]
enum Which {
    Door,
    EStop,
    Contact,
    Reset,
}
struct In(Rc<World>, Which);
impl ErrorType for In {
    type Error = ErrorKind;
}
impl InputPin for In {
    fn is_high(&mut self) -> Result<bool, ErrorKind> {
        let w = &self.0;
        if w.unreadable.get() {
            return Err(ErrorKind::Other);
        }
        Ok(match self.1 {
            Which::Door => w.door_closed.get(),
            Which::EStop => w.estop_ok.get(),
            Which::Contact => !w.contact.get().unwrap_or(w.level()), // high = coil off
            Which::Reset => w.reset.get(),
        })
    }
    fn is_low(&mut self) -> Result<bool, ErrorKind> {
        self.is_high().map(|h| !h)
    }
}

struct Led;
impl ErrorType for Led {
    type Error = Infallible;
}
impl OutputPin for Led {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

struct FakeBoard(Rc<World>, BuildKind);
impl Board for FakeBoard {
    fn build(&self) -> BuildKind {
        self.1
    }
    fn start_pulse_limit(&mut self, ms: u32) {
        self.0.log.borrow_mut().push(Ev::PulseStart(ms));
    }
    fn stop_pulse_limit(&mut self) {
        self.0.log.borrow_mut().push(Ev::PulseStop);
    }
    fn pulse_limit_tripped(&mut self) -> bool {
        self.0.tripped.replace(false)
    }
    fn kick_watchdog(&mut self) {
        self.0.log.borrow_mut().push(Ev::Kick);
    }
    fn entropy(&mut self) -> u32 {
        0x1234
    }
    fn simulate(&mut self, req: SimRequest) {
        self.0.simulated.borrow_mut().push(req);
    }
}

/// A link whose transmit can be made to fail (a board's transmit timeout).
#[derive(Default)]
struct Link {
    rx: VecDeque<u8>,
    tx: Vec<u8>,
    tx_blocked: bool,
}
#[derive(Debug)]
struct TxTimeout;
impl core::fmt::Display for TxTimeout {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("transmit timed out")
    }
}
impl core::error::Error for TxTimeout {}
impl embedded_io::Error for TxTimeout {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::TimedOut
    }
}
impl embedded_io::ErrorType for Link {
    type Error = TxTimeout;
}
impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, TxTimeout> {
        match (buf.first_mut(), self.rx.pop_front()) {
            (Some(slot), Some(b)) => {
                *slot = b;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}
impl ReadReady for Link {
    fn read_ready(&mut self) -> Result<bool, TxTimeout> {
        Ok(!self.rx.is_empty())
    }
}
impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> Result<usize, TxTimeout> {
        if self.tx_blocked {
            return Err(TxTimeout);
        }
        self.tx.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), TxTimeout> {
        Ok(())
    }
}

type Fw = Firmware<Relay, In, Led, FakeBoard, 1>;

struct Rig {
    fw: Fw,
    w: Rc<World>,
    link: Link,
    seq: u8,
    session: u32,
}

impl Rig {
    fn new(build: BuildKind) -> Self {
        Self::with_cause(build, ResetCause::PowerOn)
    }

    fn with_cause(build: BuildKind, cause: ResetCause) -> Self {
        let w = World::new();
        w.relay.set(true); // whatever the pin was before reset
        let inputs = InputPins {
            door: In(w.clone(), Which::Door),
            estop: In(w.clone(), Which::EStop),
            contact: In(w.clone(), Which::Contact),
            reset: In(w.clone(), Which::Reset),
        };
        let fw = Firmware::new(
            Config::default(),
            Relay(w.clone()),
            inputs,
            [Led],
            FakeBoard(w.clone(), build),
            cause,
            7,
        );
        let mut r = Rig {
            fw,
            w,
            link: Link::default(),
            seq: 0,
            session: 0,
        };
        match r.req(
            Msg::Hello {
                protocol: PROTOCOL_VERSION,
                major: 0,
                minor: 0,
                patch: 0,
            },
            0,
        ) {
            Msg::Welcome(welcome) => {
                assert_eq!((welcome.build, welcome.reset_cause), (build, cause));
                r.session = welcome.session;
            }
            other => panic!("{other:?}"),
        }
        r
    }

    fn send_raw(&mut self, bytes: &[u8], now: u32) -> Vec<Frame> {
        self.link.rx.extend(bytes.iter().copied());
        while !self.link.rx.is_empty() {
            self.fw.service(&mut self.link, now);
        }
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
        match self.req(
            Msg::Arm {
                session: self.session,
            },
            now,
        ) {
            Msg::Armed {
                nonce,
                expires_in_ms: 5_000,
            } => nonce,
            other => panic!("arm: {other:?}"),
        }
    }

    fn fire(&mut self, now: u32) -> Msg {
        let nonce = self.arm(now);
        self.req(
            Msg::Fire {
                session: self.session,
                nonce,
            },
            now,
        )
    }

    fn status(&mut self, now: u32) -> lethe_proto::Status {
        match self.req(Msg::GetStatus, now) {
            Msg::Status(s) => s,
            other => panic!("{other:?}"),
        }
    }
}

/// safeguard: rule:fail-safe-relay
#[test]
fn relay_driven_low_before_anything_else() {
    let r = Rig::new(BuildKind::Production);
    let first = r.w.events();
    assert_eq!(first[0], Ev::RelayLow, "{first:?}");
    assert_eq!(first[1], Ev::PulseStop);
    assert!(!r.fw.relay_driven());
}

#[test]
fn full_cycle_starts_the_pulse_limit_first_and_measures_the_contact() {
    let mut r = Rig::new(BuildKind::Production);
    r.w.events();
    assert_eq!(
        r.fire(10),
        Msg::Firing {
            cycle: 1,
            duration_ms: 1_500
        }
    );
    let ev = r.w.events();
    let start = ev.iter().position(|e| *e == Ev::PulseStart(1_520)).unwrap();
    let high = ev.iter().position(|e| *e == Ev::RelayHigh).unwrap();
    assert!(
        start < high,
        "pulse limit runs before the relay goes high: {ev:?}"
    );
    assert!(r.fw.relay_driven());
    for t in (100..1_510).step_by(100) {
        let s = r.status(t);
        assert!(s.relay && s.energized && s.degausser == DegausserState::Firing);
    }
    r.fw.poll(1_510);
    assert!(!r.fw.relay_driven());
    let ev = r.w.events();
    let low = ev.iter().position(|e| *e == Ev::RelayLow).unwrap();
    let stop = ev.iter().position(|e| *e == Ev::PulseStop).unwrap();
    assert!(low < stop, "{ev:?}");
    r.fw.poll(1_515);
    let s = r.status(1_520);
    assert_eq!(
        (s.cycles, s.last_cycle_ms, s.degausser, s.relay),
        (1, 1_505, DegausserState::Cooldown, false),
        "seen picked up by the poll closing the Fire's pass (10), seen dropped out at 1_515"
    );
    r.fw.poll(2_514);
    assert_eq!(r.fw.machine().degausser().state(), DegausserState::Cooldown);
    r.fw.poll(2_515);
    assert_eq!(r.fw.machine().degausser().state(), DegausserState::Idle);
}

/// safeguard: rule:fail-safe-relay
#[test]
fn relay_is_rewritten_and_read_back_on_every_poll_and_kicks_follow_health() {
    let mut r = Rig::new(BuildKind::Production);
    r.w.events();
    r.fw.poll(1);
    r.fw.poll(2);
    assert_eq!(
        r.w.events(),
        [Ev::RelayLow, Ev::Kick, Ev::RelayLow, Ev::Kick],
        "rewritten every poll, kicked after each healthy one"
    );
    // Output stuck high against a low command: latched, relay driven low, no kick (the watchdog
    // reset then releases the pin).
    r.w.stuck.set(Some(true));
    r.fw.poll(3);
    let ev = r.w.events();
    assert!(!ev.contains(&Ev::Kick), "{ev:?}");
    assert_eq!(
        r.fw.machine().degausser().fault(),
        Some(FaultCode::OutputMismatch)
    );
    r.w.stuck.set(None);
    assert_eq!(
        r.req(Msg::ClearFault, 4),
        Msg::Refused(Refusal::LocalResetRequired)
    );
}

#[test]
fn output_stuck_low_while_firing_latches_but_keeps_kicking() {
    let mut r = Rig::new(BuildKind::Production);
    r.w.stuck.set(Some(false));
    r.fire(0);
    let ev = r.w.events();
    assert!(ev.contains(&Ev::Kick));
    assert_eq!(
        r.fw.machine().degausser().fault(),
        Some(FaultCode::OutputMismatch)
    );
    assert!(!r.fw.relay_driven());
}

/// safeguard: rule:fail-safe-relay
#[test]
fn pulse_limit_interrupt_latches_and_the_loop_does_not_reenergize() {
    let mut r = Rig::new(BuildKind::Production);
    r.fire(0);
    r.w.events();
    // The interrupt cut the relay and the board holds it low.
    r.w.relay.set(false);
    r.w.stuck.set(Some(false));
    r.w.tripped.set(true);
    r.fw.poll(1_520);
    assert_eq!(
        r.fw.machine().degausser().fault(),
        Some(FaultCode::PulseLimit)
    );
    assert!(!r.w.events().contains(&Ev::RelayHigh));
    assert_eq!(r.fw.machine().degausser().cycles(), 0, "not a good cycle");
    // The race: the interrupt fires between the poll's check and its rewrite.
    let mut r = Rig::new(BuildKind::Production);
    r.fire(0);
    r.w.stuck.set(Some(false));
    r.w.tripped.set(true);
    assert!(
        r.fw.drive(true),
        "reading low is the safe side: keep kicking"
    );
    assert_eq!(
        r.fw.machine().degausser().fault(),
        Some(FaultCode::PulseLimit),
        "classified as the pulse limit, not a broken output"
    );
}

/// safeguard: rule:fail-safe-relay
#[test]
fn unreadable_inputs_count_as_unsafe() {
    let mut r = Rig::new(BuildKind::Production);
    r.w.unreadable.set(true);
    let s = r.status(1);
    assert!(!s.interlock_closed && s.estop && s.energized);
    assert_eq!(s.fault, Some(FaultCode::EStop));
    assert!(!r.fw.relay_driven());
}

#[test]
fn a_flood_never_delays_the_poll_and_blocked_transmit_drops_replies() {
    let mut r = Rig::new(BuildKind::Production);
    r.fire(0);
    r.w.events();
    let mut buf = [0u8; MAX_FRAME];
    let n = encode_frame(
        &Frame {
            seq: 77,
            msg: Msg::GetStatus,
        },
        &mut buf,
    )
    .unwrap();
    for _ in 0..100 {
        r.link.rx.extend(buf[..n].iter().copied());
    }
    r.link.tx_blocked = true;
    r.fw.service(&mut r.link, 600);
    assert_eq!(r.link.rx.len(), 100 * n - RX_BUDGET, "bounded per pass");
    assert!(r.w.events().contains(&Ev::Kick), "the poll ran");
    let mut t = 600;
    while !r.link.rx.is_empty() {
        t += 5;
        r.fw.service(&mut r.link, t);
    }
    for t in (700..=1_500).step_by(100) {
        r.link.rx.extend(buf[..n].iter().copied());
        r.fw.service(&mut r.link, t);
    }
    r.fw.service(&mut r.link, 1_510);
    assert!(
        !r.fw.relay_driven(),
        "pulse ended on time with transmit blocked"
    );
    r.link.tx_blocked = false;
    let s = r.status(1_520);
    assert_eq!(s.cycles, 1);
    assert!(r.link.tx.is_empty());
}

#[test]
fn simulation_requests_reach_only_a_simulation_board() {
    let inputs = Msg::SimInputs {
        interlock_open: true,
        estop: false,
        contact: SimContact::StuckEnergized,
        reset_pressed: false,
    };
    let mut r = Rig::new(BuildKind::Production);
    assert_eq!(r.req(inputs, 0), Msg::Refused(Refusal::Unsupported));
    assert_eq!(
        r.req(Msg::SimFault(SimFault::Panic), 0),
        Msg::Refused(Refusal::Unsupported)
    );
    assert!(r.w.simulated.borrow().is_empty());
    let mut r = Rig::new(BuildKind::Simulation);
    assert_eq!(r.req(inputs, 0), Msg::Ack);
    assert_eq!(r.req(Msg::SimFault(SimFault::Hang), 0), Msg::Ack);
    assert_eq!(
        *r.w.simulated.borrow(),
        [
            SimRequest::Inputs {
                interlock_open: true,
                estop: false,
                contact: SimContact::StuckEnergized,
                reset_pressed: false
            },
            SimRequest::Fault(SimFault::Hang)
        ]
    );
}

#[test]
fn welded_contact_is_reported_and_blocks_arming() {
    let mut r = Rig::new(BuildKind::Production);
    r.fire(0);
    for t in (100..=1_400).step_by(100) {
        r.status(t);
    }
    r.fw.poll(1_500);
    r.w.contact.set(Some(true)); // welded: stays energized with the relay off
    for t in (1_505..1_560).step_by(5) {
        r.fw.poll(t);
    }
    let s = r.status(1_560);
    assert!(!s.relay && s.energized);
    assert_eq!(s.fault, Some(FaultCode::RelayWelded));
    assert_eq!(s.cycles, 0);
    r.w.contact.set(None);
    r.w.reset.set(true);
    r.fw.poll(1_600);
    r.w.reset.set(false);
    r.fw.poll(1_601);
    assert_eq!(r.fw.machine().degausser().fault(), None, "local reset");
}

#[test]
fn garbage_and_truncated_frames_get_naks_then_link_still_works() {
    let mut r = Rig::new(BuildKind::Production);
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
    let mut cut = buf[..n - 2].to_vec();
    cut.push(0);
    let naks = r.send_raw(&cut, 1);
    assert_eq!(naks.len(), 1);
    assert!(matches!(
        naks[0].msg,
        Msg::Nak(NakReason::Crc | NakReason::Malformed)
    ));
    let long: Vec<u8> = core::iter::repeat_n(0x55, 300).chain([0]).collect();
    assert_eq!(r.send_raw(&long, 2)[0].msg, Msg::Nak(NakReason::Overflow));
    assert!(matches!(r.req(Msg::GetStatus, 3), Msg::Status(_)));
}
