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
                protocol: 2,
                major: 0,
                minor: 2,
                patch: 3,
            },
        },
    ),
    (
        "welcome",
        Frame {
            seq: 1,
            msg: Msg::Welcome(Welcome {
                protocol: 2,
                major: 0,
                minor: 2,
                patch: 0,
                session: 0x5E55_1011,
                build: BuildKind::Production,
                reset_cause: ResetCause::PowerOn,
            }),
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
            msg: Msg::Arm {
                session: 0x5E55_1011,
            },
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
            msg: Msg::Fire {
                session: 0x5E55_1011,
                nonce: 0xDEAD_BEEF,
            },
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
        "abort-reusing-fire-seq",
        Frame {
            seq: 5,
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
                energized: false,
                interlock_closed: true,
                estop: false,
                fault: Some(FaultCode::LinkLost),
                uptime_ms: 123_456,
                pins: 0b101,
                degausser: DegausserState::Fault,
                cycles: 2,
                last_cycle_ms: 1505,
                link_ok: true,
                cooldown_ms: 0,
                session: 0x5E55_1011,
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
                contact: SimContact::Follows,
                reset_pressed: false,
            },
        },
    ),
    (
        "refused-local-reset",
        Frame {
            seq: 9,
            msg: Msg::Refused(Refusal::LocalResetRequired),
        },
    ),
    (
        "sim-fault-hang",
        Frame {
            seq: 11,
            msg: Msg::SimFault(SimFault::Hang),
        },
    ),
];
