//! The frames whose exact wire bytes are documented in `docs/protocol.md` ("Test vectors").
//! Both the host tests (this crate) and the firmware logic tests check the document against these.
use crate::msg::*;

/// (name used in `docs/protocol.md`, frame).
pub const CASES: &[(&str, Frame)] = &[
    (
        "hello-host",
        Frame {
            seq: 1,
            msg: Msg::Hello {
                protocol: 1,
                major: 0,
                minor: 2,
                patch: 3,
            },
        },
    ),
    (
        "hello-fw",
        Frame {
            seq: 1,
            msg: Msg::Hello {
                protocol: 1,
                major: 0,
                minor: 1,
                patch: 0,
            },
        },
    ),
    (
        "heartbeat",
        Frame {
            seq: 2,
            msg: Msg::Heartbeat,
        },
    ),
    (
        "set-led-bay1-busy",
        Frame {
            seq: 3,
            msg: Msg::SetLed {
                bay: 1,
                pattern: LedPattern::Busy,
            },
        },
    ),
    (
        "ack",
        Frame {
            seq: 3,
            msg: Msg::Ack,
        },
    ),
    (
        "arm",
        Frame {
            seq: 4,
            msg: Msg::Arm,
        },
    ),
    (
        "armed",
        Frame {
            seq: 4,
            msg: Msg::Armed {
                nonce: 0xDEAD_BEEF,
                expires_in_ms: 5000,
            },
        },
    ),
    (
        "fire",
        Frame {
            seq: 5,
            msg: Msg::Fire { nonce: 0xDEAD_BEEF },
        },
    ),
    (
        "firing",
        Frame {
            seq: 5,
            msg: Msg::Firing {
                cycle: 1,
                duration_ms: 1500,
            },
        },
    ),
    (
        "refused-not-armed",
        Frame {
            seq: 5,
            msg: Msg::Refused(Refusal::NotArmed),
        },
    ),
    (
        "abort",
        Frame {
            seq: 7,
            msg: Msg::Abort,
        },
    ),
    (
        "get-status",
        Frame {
            seq: 8,
            msg: Msg::GetStatus,
        },
    ),
    (
        "status",
        Frame {
            seq: 8,
            msg: Msg::Status(Status {
                relay: false,
                interlock_closed: true,
                estop: false,
                fault: Some(FaultCode::LinkLost),
                uptime_ms: 123_456,
                pins: 0b101,
                degausser: DegausserState::Fault,
                cycles: 2,
                last_cycle_ms: 1500,
                link_ok: true,
            }),
        },
    ),
    (
        "nak-crc",
        Frame {
            seq: 0,
            msg: Msg::Nak(NakReason::Crc),
        },
    ),
    (
        "nak-malformed",
        Frame {
            seq: 0,
            msg: Msg::Nak(NakReason::Malformed),
        },
    ),
    (
        "clear-fault",
        Frame {
            seq: 9,
            msg: Msg::ClearFault,
        },
    ),
    (
        "sim-door-open",
        Frame {
            seq: 10,
            msg: Msg::SimInputs {
                interlock_open: true,
                estop: false,
            },
        },
    ),
];
