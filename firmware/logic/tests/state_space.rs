//! Exhaustive search of the firmware's reachable behaviour.
//!
//! The real driver ([`Firmware`], with the real [`Machine`] inside) runs against a plant model: a
//! relay whose output the board holds low once the hardware pulse limit has fired, a feedback
//! contact that follows the relay or sticks (welded / no pick-up), a door, an e-stop and a local
//! reset button. From a few start states the search applies **every** sequence of events up to
//! the depth (requests with good, wrong and stale values, duplicates, the Abort that reuses a
//! Fire's sequence number, input changes, and time steps short and long enough to stall the loop
//! past the pulse limit, the link timeout and the arm expiry), and after each step checks:
//!
//! * the relay is never on with the door open, the e-stop pressed or latched, a fault latched,
//!   the link lost, past the pulse limit (the command past `fire_ms`, the relay past the
//!   hardware limit), or without a live matching arm of this session (an independent record of
//!   granted arms, invalidated by abort, door, e-stop, link loss, expiry and use);
//! * a contact reading energized with the relay commanded off for the drop-out time has latched
//!   `RelayWelded`;
//! * arms are granted only with the door closed, no e-stop, no fault, the contact off and the
//!   coil cooled down since it was last energized;
//! * `ClearFault` is accepted only with a soft fault latched, never ends a pulse, and never clears
//!   a trip; faults disappear only through `ClearFault` (soft) or a local reset release;
//! * an executed `Abort` leaves nothing armed or firing; a completed cycle was physically
//!   energized for at least `fire_ms` and is never reported shorter than it was.
//!
//! Depth 6 from each start state by default (`LETHE_FW_SEARCH_DEPTH` overrides). Run in release
//! for speed; the firmware workspace's test profile is optimised so it stays quick in CI too.
use embedded_hal::digital::{ErrorType, InputPin, OutputPin, StatefulOutputPin};
use lethe_fw_logic::firmware::{Firmware, InputPins};
use lethe_fw_logic::machine::Machine;
use lethe_fw_logic::{Board, BuildKind, Config, ResetCause, SimRequest};
use lethe_proto::{DegausserState, FaultCode, Frame, Msg, Refusal, SimContact, PROTOCOL_VERSION};
use std::cell::RefCell;
use std::convert::Infallible;

const CFG: Config = Config {
    arm_expiry_ms: 100,
    fire_ms: 40,
    cooldown_ms: 30,
    link_timeout_ms: 25,
    contact_ms: 10,
    pulse_margin_ms: 5,
};

/// The physical world the firmware's pins and board see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plant {
    now: u32,
    relay: bool,
    /// The board lets the relay go high (opened by `start_pulse_limit`, closed when it fires).
    window: bool,
    deadline: Option<u32>,
    tripped: bool,
    door_closed: bool,
    estop: bool,
    contact: SimContact,
    reset: bool,
}

impl Plant {
    const START: Plant = Plant {
        now: 0,
        relay: false,
        window: false,
        deadline: None,
        tripped: false,
        door_closed: true,
        estop: false,
        contact: SimContact::Follows,
        reset: false,
    };

    fn energized(&self) -> bool {
        match self.contact {
            SimContact::Follows => self.relay,
            SimContact::StuckEnergized => true,
            SimContact::StuckOff => false,
        }
    }
}

thread_local! {
    static PLANT: RefCell<Plant> = const { RefCell::new(Plant::START) };
}

fn plant() -> Plant {
    PLANT.with(|p| *p.borrow())
}
fn set_plant(p: Plant) {
    PLANT.with(|c| *c.borrow_mut() = p);
}
fn with<R>(f: impl FnOnce(&mut Plant) -> R) -> R {
    PLANT.with(|p| f(&mut p.borrow_mut()))
}

#[derive(Clone, Copy)]
struct Relay;
impl ErrorType for Relay {
    type Error = Infallible;
}
impl OutputPin for Relay {
    fn set_low(&mut self) -> Result<(), Infallible> {
        with(|p| p.relay = false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        with(|p| {
            if p.window {
                p.relay = true;
            }
        });
        Ok(())
    }
}
impl StatefulOutputPin for Relay {
    fn is_set_high(&mut self) -> Result<bool, Infallible> {
        Ok(plant().relay)
    }
    fn is_set_low(&mut self) -> Result<bool, Infallible> {
        Ok(!plant().relay)
    }
}

#[derive(Clone, Copy)]
enum Pin {
    Door,
    EStop,
    Contact,
    Reset,
}
impl ErrorType for Pin {
    type Error = Infallible;
}
impl InputPin for Pin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        let p = plant();
        Ok(match self {
            Pin::Door => p.door_closed,
            Pin::EStop => !p.estop,
            Pin::Contact => !p.energized(), // high = coil off
            Pin::Reset => p.reset,
        })
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}

#[derive(Clone, Copy)]
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

#[derive(Clone, Copy)]
struct PlantBoard;
impl Board for PlantBoard {
    fn build(&self) -> BuildKind {
        BuildKind::Production
    }
    fn start_pulse_limit(&mut self, ms: u32) {
        with(|p| {
            p.deadline = Some(p.now + ms);
            p.window = true;
        });
    }
    fn stop_pulse_limit(&mut self) {
        with(|p| {
            p.deadline = None;
            p.window = false;
        });
    }
    fn pulse_limit_tripped(&mut self) -> bool {
        with(|p| std::mem::replace(&mut p.tripped, false))
    }
    fn kick_watchdog(&mut self) {}
    fn entropy(&mut self) -> u32 {
        0
    }
    fn simulate(&mut self, _: SimRequest) {
        unreachable!("production build")
    }
}

type Fw = Firmware<Relay, Pin, Led, PlantBoard, 1>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Arm,
    Fire,
    FireWrongNonce,
    FireStaleSession,
    Abort,
    /// An Abort with the sequence number of the request before it (v1 mistook it for a duplicate).
    AbortSameSeq,
    ClearFault,
    Hello,
    Retransmit,
    ToggleDoor,
    ToggleEStop,
    /// Follows → StuckEnergized (welded) → StuckOff → Follows.
    CycleContact,
    ToggleReset,
    Wait(u32),
}

const EVENTS: [Ev; 16] = [
    Ev::Arm,
    Ev::Fire,
    Ev::FireWrongNonce,
    Ev::FireStaleSession,
    Ev::Abort,
    Ev::AbortSameSeq,
    Ev::ClearFault,
    Ev::Hello,
    Ev::Retransmit,
    Ev::ToggleDoor,
    Ev::ToggleEStop,
    Ev::CycleContact,
    Ev::ToggleReset,
    Ev::Wait(5),
    Ev::Wait(20),
    Ev::Wait(60),
];

/// The host's side and the independent record the invariants are checked against.
#[derive(Clone, Copy, Debug)]
struct Oracle {
    seq: u8,
    session: u32,
    /// The last request the firmware executed or replayed (cleared by Hello, like the firmware).
    last_req: Option<Frame>,
    last_nonce: u32,
    /// A granted arm still valid: (nonce, granted at).
    live_arm: Option<(u32, u32)>,
    last_frame: u32,
    /// Last instant the coil was known energized (relay on or contact reading energized).
    last_hot: Option<u32>,
    /// The physical pulse running and when it started; whether it was legitimately fired.
    pulse: Option<(u32, bool)>,
    /// Physical length of the last pulse that ended.
    last_pulse_len: Option<u32>,
    /// Since when the contact reads energized with the relay commanded off.
    weld_since: Option<u32>,
}

/// What the checks need from before the step.
#[derive(Clone, Copy)]
struct Before {
    plant: Plant,
    o: Oracle,
    cycles: u32,
    fault: Option<FaultCode>,
    want: bool,
    link_alive: bool,
}

#[derive(Clone)]
struct Node {
    fw: Fw,
    plant: Plant,
    o: Oracle,
}

struct Search {
    nodes: u64,
    path: Vec<Ev>,
}

fn fail(path: &[Ev], ev: Ev, what: &str, node: &Node) -> ! {
    panic!(
        "{what}\n  after {path:?} then {ev:?}\n  plant {:?}\n  state {:?} fault {:?}\n  oracle {:?}",
        node.plant,
        node.fw.machine().degausser().state(),
        node.fw.machine().degausser().fault(),
        node.o
    )
}

impl Node {
    fn start() -> Node {
        set_plant(Plant::START);
        let fw: Fw = Firmware::new(
            CFG,
            Relay,
            InputPins {
                door: Pin::Door,
                estop: Pin::EStop,
                contact: Pin::Contact,
                reset: Pin::Reset,
            },
            [Led],
            PlantBoard,
            ResetCause::PowerOn,
            1,
        );
        let mut n = Node {
            fw,
            plant: plant(),
            o: Oracle {
                seq: 0,
                session: 0,
                last_req: None,
                last_nonce: 0,
                live_arm: None,
                last_frame: 0,
                last_hot: None,
                pulse: None,
                last_pulse_len: None,
                weld_since: None,
            },
        };
        n.step(Ev::Hello, &[]);
        n
    }

    fn machine(&self) -> &Machine<1> {
        self.fw.machine()
    }

    /// Send one request the way the board's service loop handles it (handle, then the pass's
    /// closing poll). Returns the reply and whether it was a replay.
    fn request(&mut self, f: Frame) -> (Msg, bool) {
        let replay = !matches!(f.msg, Msg::Hello { .. }) && self.o.last_req == Some(f);
        let now = plant().now;
        let reply = self.fw.handle(f, now);
        self.fw.poll(now);
        self.o.last_req = if matches!(f.msg, Msg::Hello { .. }) {
            None
        } else {
            Some(f)
        };
        (reply.msg, replay)
    }

    fn next(&mut self, msg: Msg) -> Frame {
        self.o.seq = self.o.seq.wrapping_add(1).max(1);
        Frame {
            seq: self.o.seq,
            msg,
        }
    }

    /// Apply `ev`, then check every invariant. Returns false if `ev` does not apply here.
    fn step(&mut self, ev: Ev, path: &[Ev]) -> bool {
        set_plant(self.plant);
        let before = Before {
            plant: self.plant,
            o: self.o,
            cycles: self.machine().degausser().cycles(),
            fault: self.machine().degausser().fault(),
            want: self.machine().relay_wanted(),
            link_alive: self.plant.now.wrapping_sub(self.o.last_frame) < CFG.link_timeout_ms,
        };
        let mut cut_at = None;
        let s = self.o.session;
        let mut reply = None;
        match ev {
            Ev::Arm => reply = Some(self.next(Msg::Arm { session: s })),
            Ev::Fire => {
                reply = Some(self.next(Msg::Fire {
                    session: s,
                    nonce: self.o.last_nonce,
                }))
            }
            Ev::FireWrongNonce => {
                reply = Some(self.next(Msg::Fire {
                    session: s,
                    nonce: self.o.last_nonce ^ 1,
                }))
            }
            Ev::FireStaleSession => {
                reply = Some(self.next(Msg::Fire {
                    session: s ^ 0x8000_0000,
                    nonce: self.o.last_nonce,
                }))
            }
            Ev::Abort => reply = Some(self.next(Msg::Abort)),
            Ev::AbortSameSeq => {
                let Some(last) = self.o.last_req else {
                    return false;
                };
                if last.msg == Msg::Abort {
                    return false; // that is a plain retransmission
                }
                reply = Some(Frame {
                    seq: last.seq,
                    msg: Msg::Abort,
                });
            }
            Ev::ClearFault => reply = Some(self.next(Msg::ClearFault)),
            Ev::Hello => {
                reply = Some(self.next(Msg::Hello {
                    protocol: PROTOCOL_VERSION,
                    major: 0,
                    minor: 0,
                    patch: 0,
                }))
            }
            Ev::Retransmit => {
                let Some(last) = self.o.last_req else {
                    return false;
                };
                reply = Some(last);
            }
            Ev::ToggleDoor => with(|p| p.door_closed = !p.door_closed),
            Ev::ToggleEStop => with(|p| p.estop = !p.estop),
            Ev::CycleContact => with(|p| {
                p.contact = match p.contact {
                    SimContact::Follows => SimContact::StuckEnergized,
                    SimContact::StuckEnergized => SimContact::StuckOff,
                    SimContact::StuckOff => SimContact::Follows,
                }
            }),
            Ev::ToggleReset => with(|p| p.reset = !p.reset),
            Ev::Wait(d) => with(|p| {
                let end = p.now + d;
                if let Some(deadline) = p.deadline.filter(|&t| t <= end) {
                    // The pulse-limit interrupt: relay low, held low.
                    if p.relay {
                        p.relay = false;
                        p.tripped = true;
                        cut_at = Some(deadline);
                    }
                    p.window = false;
                    p.deadline = None;
                }
                p.now = end;
            }),
        }
        let now = plant().now;
        let mut answer = None;
        match reply {
            Some(f) => {
                let (msg, replay) = self.request(f);
                if !replay {
                    answer = Some((f.msg, msg));
                }
                self.o.last_frame = now;
            }
            None => {
                self.fw.poll(now);
                // A real loop polls again within a few ms; one more poll at the same instant
                // models the pass after an input change.
                self.fw.poll(now);
            }
        }
        self.plant = plant();
        self.check(ev, path, &before, answer, cut_at);
        true
    }

    fn check(
        &mut self,
        ev: Ev,
        path: &[Ev],
        before: &Before,
        answer: Option<(Msg, Msg)>,
        cut_at: Option<u32>,
    ) {
        let (fault_before, want_before, link_alive_before) =
            (before.fault, before.want, before.link_alive);
        let p = self.plant;
        let now = p.now;
        let deg = *self.machine().degausser();
        let fault = deg.fault();
        let want = self.machine().relay_wanted();
        let bad = |what: &str, n: &Node| -> ! { fail(path, ev, what, n) };

        // --- the independent record of arms ---
        let was_live = before
            .o
            .live_arm
            .filter(|&(_, at)| now.wrapping_sub(at) < CFG.arm_expiry_ms && link_alive_before);
        if let Some((req, rep)) = answer {
            // An executed request gets an answer of its own kind (a replay of another request's
            // answer means it was not executed).
            let fits = match req {
                Msg::Hello { .. } => matches!(rep, Msg::Welcome(_)),
                Msg::Arm { .. } => matches!(rep, Msg::Armed { .. } | Msg::Refused(_)),
                Msg::Fire { .. } => matches!(rep, Msg::Firing { .. } | Msg::Refused(_)),
                Msg::Abort => rep == Msg::Ack,
                Msg::ClearFault => matches!(rep, Msg::Ack | Msg::Refused(_)),
                _ => true,
            };
            if !fits {
                bad("an executed request got another request's answer", self);
            }
            match (req, rep) {
                (Msg::Arm { .. }, Msg::Armed { nonce, .. }) => {
                    let b = &before.plant;
                    if !b.door_closed || b.estop || fault_before.is_some() || b.energized() {
                        bad("arm granted with an unsafe input or a fault", self);
                    }
                    if let Some(h) = self.o.last_hot {
                        if now.wrapping_sub(h) < CFG.cooldown_ms {
                            bad("arm granted before the coil cooled down", self);
                        }
                    }
                    self.o.live_arm = Some((nonce, now));
                    self.o.last_nonce = nonce;
                }
                (Msg::Fire { session, nonce }, Msg::Firing { .. }) => {
                    let legit = session == self.o.session
                        && was_live.is_some_and(|(n, _)| n == nonce)
                        && before.plant.door_closed
                        && !before.plant.estop
                        && !before.plant.energized();
                    if !legit {
                        bad(
                            "Fire accepted without a live matching arm of this session",
                            self,
                        );
                    }
                    self.o.live_arm = None;
                }
                (Msg::Abort, Msg::Ack) => {
                    self.o.live_arm = None;
                    if want || deg.state() == DegausserState::Armed {
                        bad("an executed Abort left the relay on or the arm alive", self);
                    }
                }
                (Msg::ClearFault, r) => {
                    match fault_before {
                        None if r != Msg::Refused(Refusal::NoFault) => {
                            bad("ClearFault without a fault was not refused NoFault", self)
                        }
                        Some(f) if f.needs_local_reset() && fault != Some(f) => {
                            bad("ClearFault cleared a trip or hardware fault", self)
                        }
                        _ => {}
                    }
                    if want_before && !want {
                        bad("ClearFault ended a pulse", self);
                    }
                }
                (Msg::Hello { .. }, Msg::Welcome(w)) => {
                    if self.o.session != 0 && w.session != self.o.session {
                        bad("the session changed within a boot", self);
                    }
                    self.o.session = w.session;
                }
                _ => {}
            }
        }
        if !p.door_closed || p.estop || fault.is_some() {
            self.o.live_arm = None;
        }
        if now.wrapping_sub(self.o.last_frame) >= CFG.link_timeout_ms {
            self.o.live_arm = None;
        }
        if self
            .o
            .live_arm
            .is_some_and(|(_, at)| now.wrapping_sub(at) >= CFG.arm_expiry_ms)
        {
            self.o.live_arm = None;
        }

        // --- the physical pulse ---
        match (before.plant.relay, p.relay) {
            (false, true) => {
                let legit = matches!(answer, Some((Msg::Fire { .. }, Msg::Firing { .. })));
                if !legit {
                    bad("the relay went on without an accepted Fire", self);
                }
                self.o.pulse = Some((now, true));
            }
            (true, false) => {
                // Off at the hardware limit during a long wait, or at this step's poll.
                let off = cut_at.unwrap_or(now);
                if let Some((start, _)) = self.o.pulse.take() {
                    self.o.last_pulse_len = Some(off - start);
                }
                self.o.last_hot = Some(off);
            }
            _ => {}
        }
        if p.relay || p.energized() {
            self.o.last_hot = Some(now);
        }
        if p.relay {
            let (start, legit) = self
                .o
                .pulse
                .unwrap_or_else(|| bad("relay on, no pulse", self));
            if !legit {
                bad("relay on without a live matching arm", self);
            }
            if !p.door_closed {
                bad("relay on with the door open", self);
            }
            if p.estop || fault == Some(FaultCode::EStop) {
                bad("relay on with the e-stop pressed or latched", self);
            }
            if fault.is_some() {
                bad("relay on with a fault latched", self);
            }
            if now - start >= CFG.pulse_limit_ms() {
                bad("relay on past the hardware pulse limit", self);
            }
            if now.wrapping_sub(self.o.last_frame) >= CFG.link_timeout_ms {
                bad("relay on with the link lost", self);
            }
        }
        if want {
            match deg.pulse_started() {
                Some(t) if now.wrapping_sub(t) < CFG.fire_ms => {}
                _ => bad("relay commanded on past fire_ms", self),
            }
        }

        // --- welded contact ---
        if p.energized() && !want {
            let since = *self.o.weld_since.get_or_insert(now);
            if now - since >= CFG.contact_ms && fault != Some(FaultCode::RelayWelded) {
                bad(
                    "energized with the relay off for the drop-out time: not RelayWelded",
                    self,
                );
            }
        } else {
            self.o.weld_since = None;
        }

        // --- faults leave only through ClearFault (soft) or a local reset release ---
        if let (Some(f), None) = (fault_before, fault) {
            let ok = match ev {
                Ev::ClearFault => !f.needs_local_reset(),
                Ev::ToggleReset => before.plant.reset && !p.reset,
                _ => false,
            };
            if !ok {
                bad(
                    "a fault disappeared without ClearFault or a local reset",
                    self,
                );
            }
            if ev == Ev::ToggleReset && (!p.door_closed || p.estop || p.energized()) {
                bad("local reset with an unsafe input", self);
            }
        }

        // --- completed cycles ---
        if deg.cycles() > before.cycles {
            let len = self
                .o
                .last_pulse_len
                .unwrap_or_else(|| bad("a cycle completed without a pulse", self));
            if len < CFG.fire_ms {
                bad("a cycle shorter than fire_ms counted as completed", self);
            }
            if deg.last_cycle_ms() < len {
                bad(
                    "the reported cycle is shorter than the physical pulse",
                    self,
                );
            }
        }
    }
}

impl Search {
    fn dfs(&mut self, node: &Node, depth: u32) {
        if depth == 0 {
            return;
        }
        for ev in EVENTS {
            let mut child = node.clone();
            if !child.step(ev, &self.path) {
                continue;
            }
            self.nodes += 1;
            self.path.push(ev);
            self.dfs(&child, depth - 1);
            self.path.pop();
        }
    }
}

fn depth() -> u32 {
    std::env::var("LETHE_FW_SEARCH_DEPTH")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(6)
}

fn search_from(prefix: &[Ev]) -> u64 {
    let mut root = Node::start();
    for &ev in prefix {
        assert!(root.step(ev, &[]), "{ev:?}");
    }
    let mut s = Search {
        nodes: 0,
        path: prefix.to_vec(),
    };
    s.dfs(&root, depth());
    s.nodes
}

/// safeguard: rule:fail-safe-relay
#[test]
fn every_sequence_from_idle() {
    let n = search_from(&[]);
    eprintln!("idle: {n} states checked at depth {}", depth());
    assert!(n > 16u64.pow(depth() - 1), "the search ran");
}

/// safeguard: rule:fail-safe-relay
#[test]
fn every_sequence_from_a_pulse_in_progress() {
    let start = [Ev::Arm, Ev::Fire, Ev::Wait(5)];
    let mut n = Node::start();
    for ev in start {
        n.step(ev, &[]);
    }
    assert!(n.plant.relay && n.plant.energized(), "the prefix fires");
    let states = search_from(&start);
    eprintln!("firing: {states} states checked at depth {}", depth());
}

/// safeguard: rule:fail-safe-relay
#[test]
fn every_sequence_from_a_completed_cycle() {
    // Hello stands for the host's heartbeat here (any valid frame feeds the link).
    let start = [
        Ev::Arm,
        Ev::Fire,
        Ev::Wait(20),
        Ev::Hello,
        Ev::Wait(20),
        Ev::Wait(5),
    ];
    let mut n = Node::start();
    for ev in start {
        n.step(ev, &[]);
    }
    assert_eq!(
        n.machine().degausser().cycles(),
        1,
        "the prefix completes a cycle"
    );
    let states = search_from(&start);
    eprintln!(
        "after a cycle: {states} states checked at depth {}",
        depth()
    );
}

/// The search would catch the protocol-1 duplicate rule: a known-bad machine must fail it.
#[test]
fn the_abort_after_fire_sequence_case_is_in_the_alphabet() {
    let mut n = Node::start();
    for ev in [Ev::Arm, Ev::Fire, Ev::AbortSameSeq] {
        assert!(n.step(ev, &[]));
    }
    assert!(!n.plant.relay, "the Abort with the Fire's seq was executed");
    assert_eq!(n.machine().degausser().fault(), Some(FaultCode::Aborted));
}
