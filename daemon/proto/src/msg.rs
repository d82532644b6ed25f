//! Message types. Field order is part of the wire format (postcard encodes in declaration order,
//! enums by variant index as a varint): only ever append variants and fields at the end, and
//! bump [`crate::PROTOCOL_VERSION`] for anything else.
use serde::{Deserialize, Serialize};

/// One frame on the wire: a sequence number plus one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    /// Request sequence (1..=255) or, in a reply, the sequence it answers. 0 = unsolicited.
    pub seq: u8,
    /// The message.
    pub msg: Msg,
}

/// Bay LED patterns. The firmware turns each into an on/off schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LedPattern {
    /// Dark.
    Off,
    /// Short blip every 2 s: bay empty / nothing running.
    Idle,
    /// 1 Hz blink: job running.
    Busy,
    /// Solid on: job finished successfully.
    Success,
    /// 4 Hz blink: job failed.
    Failure,
    /// Double blink every second: operator needed.
    Attention,
}

/// Degausser state as reported in [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DegausserState {
    /// Relay off, waiting for an arm.
    Idle,
    /// Armed with a nonce; fire must follow before expiry.
    Armed,
    /// Relay commanded on (bounded duration).
    Firing,
    /// Relay off, coil cooling down (or the contact still dropping out); arm refused.
    Cooldown,
    /// Fault latched; relay off until the fault is cleared.
    Fault,
}

/// Latched fault codes. A more severe class replaces a lesser one (soft < trip < hardware);
/// within a class the first fault stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultCode {
    /// Trip: the door interlock opened while the relay was energized. Local reset only.
    InterlockOpened,
    /// Trip: emergency stop pressed. Local reset only.
    EStop,
    /// Soft: no valid frame from the host within the link timeout while the relay was energized.
    LinkLost,
    /// Soft: operator abort while firing.
    Aborted,
    /// Hardware: the feedback contact still reads energized after the drop-out time with the relay
    /// commanded off (welded contact, stuck driver). Local reset only, and only once it reads off.
    RelayWelded,
    /// Soft: the feedback contact did not read energized within the pick-up time, or stopped
    /// reading energized, while the relay was commanded on (open coil, failed driver).
    RelayNoPickup,
    /// Hardware: the relay output read back at a level other than the one written. Local reset only.
    OutputMismatch,
    /// Soft: the hardware pulse limit cut the pulse before the main loop ended it (the loop was late).
    PulseLimit,
    /// Soft: the controller restarted after a watchdog, panic or fault (see [`Welcome::reset_cause`]).
    UnexpectedReset,
}

/// Why a request was refused (the request was understood but not allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Refusal {
    /// Fire without a valid arm.
    NotArmed,
    /// Fire with a nonce that does not match the arm.
    BadNonce,
    /// Fire after the arm expired.
    ArmExpired,
    /// Door interlock open.
    InterlockOpen,
    /// Emergency stop active.
    EStop,
    /// A fault is latched.
    FaultLatched,
    /// Degausser busy (firing).
    Busy,
    /// Bay number out of range.
    NoSuchBay,
    /// Message not supported by this build (e.g. simulation requests on a production build).
    Unsupported,
    /// A message only the firmware sends was sent to it.
    Unexpected,
    /// `ClearFault` with no fault latched.
    NoFault,
    /// The latched fault (e-stop, interlock, welded relay, output mismatch) is cleared only by the
    /// local reset input at the machine, never over the link.
    LocalResetRequired,
    /// The coil is still cooling down (or its contact has not dropped out): arm later.
    CoolingDown,
    /// The feedback contact does not read "off": arming refused.
    EnergizedAtRest,
    /// `Arm`/`Fire` carry a session id other than this boot's (the controller restarted).
    StaleSession,
}

/// Why a frame was rejected at the framing layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NakReason {
    /// CRC mismatch.
    Crc,
    /// COBS or postcard decoding failed, or the frame was too short.
    Malformed,
    /// Frame longer than the receive buffer.
    Overflow,
    /// Hello with an incompatible protocol version.
    ProtocolMismatch,
}

/// What kind of firmware image answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BuildKind {
    /// Reads its safety inputs from pins; refuses simulation requests.
    Production,
    /// A test image: the host may set the inputs and inject faults ([`Msg::SimInputs`],
    /// [`Msg::SimFault`]). Hosts refuse to fire it outside tests.
    Simulation,
}

/// Why the controller last started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResetCause {
    /// Power-on (no valid reset record in RAM).
    PowerOn,
    /// The hardware watchdog expired (main loop stalled).
    Watchdog,
    /// A Rust panic.
    Panic,
    /// A HardFault (or another unexpected exception).
    HardFault,
    /// A reset nobody recorded (reset button, debugger).
    Unknown,
}

/// The firmware's answer to [`Msg::Hello`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Welcome {
    /// [`crate::PROTOCOL_VERSION`] of the firmware.
    pub protocol: u16,
    /// Firmware major version.
    pub major: u8,
    /// Firmware minor version.
    pub minor: u8,
    /// Firmware patch version.
    pub patch: u8,
    /// This boot's session id (never 0). `Arm` and `Fire` must carry it.
    pub session: u32,
    /// Production or simulation image.
    pub build: BuildKind,
    /// Why the controller last started.
    pub reset_cause: ResetCause,
}

/// How a simulation build models the relay's feedback contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SimContact {
    /// Reads energized exactly while the relay output is high (a healthy relay).
    Follows,
    /// Always reads energized (welded contact).
    StuckEnergized,
    /// Never reads energized (open coil, broken driver).
    StuckOff,
}

/// Faults a simulation build injects on request (after sending its `Ack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SimFault {
    /// The main loop spins forever with interrupts enabled.
    Hang,
    /// The main loop spins forever with interrupts masked (only NMI and faults get through).
    HangMasked,
    /// `panic!()` in the main loop.
    Panic,
    /// An undefined instruction in the main loop (UsageFault escalated to HardFault).
    HardFault,
}

/// Controller status snapshot. Every field is measured, not inferred from commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Status {
    /// Relay output level as read back from the pin.
    pub relay: bool,
    /// The feedback contact (force-guided auxiliary contact or coil-current sense) reads energized.
    pub energized: bool,
    /// Door interlock closed (safe).
    pub interlock_closed: bool,
    /// Emergency stop active.
    pub estop: bool,
    /// Latched fault, if any.
    pub fault: Option<FaultCode>,
    /// Milliseconds since reset (wraps after ~49 days).
    pub uptime_ms: u32,
    /// Output pin levels: bit 0 relay (read back), bit 1+n bay n LED.
    pub pins: u32,
    /// Degausser state.
    pub degausser: DegausserState,
    /// Completed degauss cycles since reset.
    pub cycles: u32,
    /// Energized time of the last completed cycle in ms, measured on the feedback contact.
    pub last_cycle_ms: u32,
    /// Host link considered alive (a valid frame within the link timeout).
    pub link_ok: bool,
    /// Milliseconds until the coil may be armed again (0 = ready).
    pub cooldown_ms: u32,
    /// This boot's session id (0 before the first `Hello`).
    pub session: u32,
}

/// All messages, both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// Handshake, host → fw, with the host's versions. Answered with [`Msg::Welcome`] or
    /// `Nak(ProtocolMismatch)`. Always executed, never treated as a duplicate.
    Hello {
        /// [`crate::PROTOCOL_VERSION`] of the sender.
        protocol: u16,
        /// Software major version.
        major: u8,
        /// Software minor version.
        minor: u8,
        /// Software patch version.
        patch: u8,
    },
    /// Generic positive reply.
    Ack,
    /// Framing-level rejection.
    Nak(NakReason),
    /// Request understood but not allowed.
    Refused(Refusal),
    /// Keep-alive (host → fw); answered with [`Msg::Status`].
    Heartbeat,
    /// Set a bay LED pattern.
    SetLed {
        /// Bay index.
        bay: u8,
        /// Pattern.
        pattern: LedPattern,
    },
    /// Request to arm the degausser.
    Arm {
        /// The session id from [`Welcome`].
        session: u32,
    },
    /// Arm granted (fw → host).
    Armed {
        /// Nonce the fire must echo.
        nonce: u32,
        /// Milliseconds until the arm expires.
        expires_in_ms: u32,
    },
    /// Energize the relay for one bounded cycle.
    Fire {
        /// The session id from [`Welcome`].
        session: u32,
        /// Nonce from [`Msg::Armed`].
        nonce: u32,
    },
    /// Fire accepted (fw → host).
    Firing {
        /// Number the cycle will have once complete.
        cycle: u32,
        /// Relay-on duration the firmware will apply.
        duration_ms: u32,
    },
    /// Disarm, or stop a running cycle (latches `Aborted`). Always accepted.
    Abort,
    /// Request a status snapshot.
    GetStatus,
    /// Status snapshot (fw → host).
    Status(Status),
    /// Clear a latched soft fault (refused while an input is unsafe, with no fault, or for a
    /// fault that needs the local reset).
    ClearFault,
    /// Simulation builds only: drive the inputs QEMU cannot. Production firmware answers
    /// `Refused(Unsupported)`.
    SimInputs {
        /// Door open.
        interlock_open: bool,
        /// E-stop pressed.
        estop: bool,
        /// How the feedback contact behaves.
        contact: SimContact,
        /// Local reset button held down.
        reset_pressed: bool,
    },
    /// The firmware's answer to [`Msg::Hello`].
    Welcome(Welcome),
    /// Simulation builds only: acknowledge, then inject a fault. Production firmware answers
    /// `Refused(Unsupported)`.
    SimFault(SimFault),
}

impl FaultCode {
    /// Severity class: 0 soft (cleared by `ClearFault`), 1 trip (a safety input acted), 2 hardware
    /// (the relay or its output failed). Trips and hardware faults need the local reset.
    pub const fn severity(self) -> u8 {
        match self {
            FaultCode::LinkLost
            | FaultCode::Aborted
            | FaultCode::RelayNoPickup
            | FaultCode::PulseLimit
            | FaultCode::UnexpectedReset => 0,
            FaultCode::InterlockOpened | FaultCode::EStop => 1,
            FaultCode::RelayWelded | FaultCode::OutputMismatch => 2,
        }
    }

    /// Only the local reset input at the machine clears this fault, never a serial command.
    pub const fn needs_local_reset(self) -> bool {
        self.severity() > 0
    }
}
