//! Message types. Field order is part of the wire format (postcard encodes in declaration order,
//! enums by variant index as a varint): only ever append variants and fields at the end.
use serde::{Deserialize, Serialize};

/// One frame on the wire: a sequence number plus one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Request sequence (1..=255) or, in a reply, the sequence it answers. 0 = unsolicited.
    pub seq: u8,
    /// The message.
    pub msg: Msg,
}

/// Bay LED patterns. The firmware turns each into an on/off schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DegausserState {
    /// Relay off, waiting for an arm.
    Idle,
    /// Armed with a nonce; fire must follow before expiry.
    Armed,
    /// Relay energized (bounded duration).
    Firing,
    /// Relay off, coil cooling down; arm refused.
    Cooldown,
    /// Fault latched; relay off until `ClearFault`.
    Fault,
}

/// Latched fault codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultCode {
    /// Door interlock opened while the relay was energized.
    InterlockOpened,
    /// Emergency stop pressed.
    EStop,
    /// Heartbeats stopped while the relay was energized.
    LinkLost,
    /// Operator abort while firing.
    Aborted,
}

/// Why a request was refused (the request was understood but not allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Degausser busy (firing or cooling down).
    Busy,
    /// Bay number out of range.
    NoSuchBay,
    /// Message not supported by this build (e.g. simulation inputs on a production build).
    Unsupported,
    /// A message only the firmware sends was sent to it.
    Unexpected,
}

/// Why a frame was rejected at the framing layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// Controller status snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Relay output level as driven.
    pub relay: bool,
    /// Door interlock closed (safe).
    pub interlock_closed: bool,
    /// Emergency stop active.
    pub estop: bool,
    /// Latched fault, if any.
    pub fault: Option<FaultCode>,
    /// Milliseconds since reset (wraps after ~49 days).
    pub uptime_ms: u32,
    /// Output pin shadow: bit 0 relay, bit 1+n bay n LED.
    pub pins: u32,
    /// Degausser state.
    pub degausser: DegausserState,
    /// Completed degauss cycles since reset.
    pub cycles: u32,
    /// Relay-on time of the last completed cycle in ms.
    pub last_cycle_ms: u32,
    /// Host link considered alive (heartbeat within the watchdog window).
    pub link_ok: bool,
}

/// All messages, both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Handshake. Host → fw with its own version; fw → host with the firmware version.
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
    Arm,
    /// Arm granted (fw → host).
    Armed {
        /// Nonce the fire must echo.
        nonce: u32,
        /// Milliseconds until the arm expires.
        expires_in_ms: u32,
    },
    /// Energize the relay for one bounded cycle.
    Fire {
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
    /// Disarm, or stop a running cycle (latches `Aborted`).
    Abort,
    /// Request a status snapshot.
    GetStatus,
    /// Status snapshot (fw → host).
    Status(Status),
    /// Clear a latched fault (refused while an input is unsafe).
    ClearFault,
    /// Simulation builds only: drive the interlock and e-stop inputs. Production firmware
    /// answers `Refused(Unsupported)`.
    SimInputs {
        /// Door open.
        interlock_open: bool,
        /// E-stop pressed.
        estop: bool,
    },
}
