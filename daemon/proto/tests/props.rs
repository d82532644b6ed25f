//! Property tests: round trip for every message shape, and no input panics the decoders.
use lethe_proto::frame::{cobs_decode, cobs_encode, crc16};
use lethe_proto::*;
use proptest::prelude::*;

fn pattern() -> impl Strategy<Value = LedPattern> {
    prop_oneof![
        Just(LedPattern::Off),
        Just(LedPattern::Idle),
        Just(LedPattern::Busy),
        Just(LedPattern::Success),
        Just(LedPattern::Failure),
        Just(LedPattern::Attention)
    ]
}

fn fault() -> impl Strategy<Value = FaultCode> {
    prop_oneof![
        Just(FaultCode::InterlockOpened),
        Just(FaultCode::EStop),
        Just(FaultCode::LinkLost),
        Just(FaultCode::Aborted),
        Just(FaultCode::RelayWelded),
        Just(FaultCode::RelayNoPickup),
        Just(FaultCode::OutputMismatch),
        Just(FaultCode::PulseLimit),
        Just(FaultCode::UnexpectedReset)
    ]
}

fn dstate() -> impl Strategy<Value = DegausserState> {
    prop_oneof![
        Just(DegausserState::Idle),
        Just(DegausserState::Armed),
        Just(DegausserState::Firing),
        Just(DegausserState::Cooldown),
        Just(DegausserState::Fault)
    ]
}

fn refusal() -> impl Strategy<Value = Refusal> {
    (0u8..15).prop_map(|i| match i {
        0 => Refusal::NotArmed,
        1 => Refusal::BadNonce,
        2 => Refusal::ArmExpired,
        3 => Refusal::InterlockOpen,
        4 => Refusal::EStop,
        5 => Refusal::FaultLatched,
        6 => Refusal::Busy,
        7 => Refusal::NoSuchBay,
        8 => Refusal::Unsupported,
        9 => Refusal::Unexpected,
        10 => Refusal::NoFault,
        11 => Refusal::LocalResetRequired,
        12 => Refusal::CoolingDown,
        13 => Refusal::EnergizedAtRest,
        _ => Refusal::StaleSession,
    })
}

fn nak() -> impl Strategy<Value = NakReason> {
    prop_oneof![
        Just(NakReason::Crc),
        Just(NakReason::Malformed),
        Just(NakReason::Overflow),
        Just(NakReason::ProtocolMismatch)
    ]
}

fn contact() -> impl Strategy<Value = SimContact> {
    prop_oneof![
        Just(SimContact::Follows),
        Just(SimContact::StuckEnergized),
        Just(SimContact::StuckOff)
    ]
}

fn sim_fault() -> impl Strategy<Value = SimFault> {
    prop_oneof![
        Just(SimFault::Hang),
        Just(SimFault::HangMasked),
        Just(SimFault::Panic),
        Just(SimFault::HardFault)
    ]
}

fn welcome() -> impl Strategy<Value = Welcome> {
    (
        any::<u16>(),
        any::<(u8, u8, u8)>(),
        any::<u32>(),
        prop_oneof![Just(BuildKind::Production), Just(BuildKind::Simulation)],
        prop_oneof![
            Just(ResetCause::PowerOn),
            Just(ResetCause::Watchdog),
            Just(ResetCause::Panic),
            Just(ResetCause::HardFault),
            Just(ResetCause::Unknown)
        ],
    )
        .prop_map(
            |(protocol, (major, minor, patch), session, build, reset_cause)| Welcome {
                protocol,
                major,
                minor,
                patch,
                session,
                build,
                reset_cause,
            },
        )
}

fn status() -> impl Strategy<Value = Status> {
    (
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(fault()),
        ),
        (
            any::<u32>(),
            any::<u32>(),
            dstate(),
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (relay, energized, interlock_closed, estop, fault),
                (uptime_ms, pins, degausser, cycles, last, link_ok, cooldown_ms, session),
            )| {
                Status {
                    relay,
                    energized,
                    interlock_closed,
                    estop,
                    fault,
                    uptime_ms,
                    pins,
                    degausser,
                    cycles,
                    last_cycle_ms: last,
                    link_ok,
                    cooldown_ms,
                    session,
                }
            },
        )
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        (any::<u16>(), any::<u8>(), any::<u8>(), any::<u8>()).prop_map(
            |(protocol, major, minor, patch)| Msg::Hello {
                protocol,
                major,
                minor,
                patch
            }
        ),
        Just(Msg::Ack),
        nak().prop_map(Msg::Nak),
        refusal().prop_map(Msg::Refused),
        Just(Msg::Heartbeat),
        (any::<u8>(), pattern()).prop_map(|(bay, pattern)| Msg::SetLed { bay, pattern }),
        any::<u32>().prop_map(|session| Msg::Arm { session }),
        (any::<u32>(), any::<u32>()).prop_map(|(nonce, expires_in_ms)| Msg::Armed {
            nonce,
            expires_in_ms
        }),
        (any::<u32>(), any::<u32>()).prop_map(|(session, nonce)| Msg::Fire { session, nonce }),
        (any::<u32>(), any::<u32>())
            .prop_map(|(cycle, duration_ms)| Msg::Firing { cycle, duration_ms }),
        Just(Msg::Abort),
        Just(Msg::GetStatus),
        status().prop_map(Msg::Status),
        Just(Msg::ClearFault),
        (any::<bool>(), any::<bool>(), contact(), any::<bool>()).prop_map(
            |(interlock_open, estop, contact, reset_pressed)| Msg::SimInputs {
                interlock_open,
                estop,
                contact,
                reset_pressed
            }
        ),
        welcome().prop_map(Msg::Welcome),
        sim_fault().prop_map(Msg::SimFault),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn frame_round_trip(seq in any::<u8>(), msg in msg()) {
        let f = Frame { seq, msg };
        let mut buf = [0u8; MAX_FRAME];
        let n = encode_frame(&f, &mut buf).unwrap();
        prop_assert_eq!(buf[n - 1], 0);
        prop_assert!(!buf[..n - 1].contains(&0), "COBS leaves no zero inside");
        prop_assert_eq!(decode_frame(&buf[..n - 1]).unwrap(), f);
        let mut d = FrameDecoder::new();
        let got: Vec<_> = buf[..n].iter().filter_map(|&b| d.push(b)).collect();
        prop_assert_eq!(got, vec![Ok(f)]);
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_frame(&bytes);
        let mut d = FrameDecoder::new();
        for b in bytes {
            let _ = d.push(b);
        }
    }

    #[test]
    fn single_bit_flip_is_rejected(seq in 1u8.., msg in msg(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let f = Frame { seq, msg };
        let mut buf = [0u8; MAX_FRAME];
        let n = encode_frame(&f, &mut buf).unwrap();
        let i = pos.index(n - 1);
        buf[i] ^= 1 << bit;
        // A flip may create a 0x00 (splitting the frame) or break COBS; either way no frame
        // must decode to something other than the original.
        for part in buf[..n - 1].split(|&b| b == 0) {
            if let Ok(g) = decode_frame(part) {
                prop_assert_eq!(g, f, "corruption produced a different valid frame");
            }
        }
    }

    #[test]
    fn cobs_round_trip(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut enc = vec![0u8; data.len() + data.len() / 254 + 2];
        let n = cobs_encode(&data, &mut enc).unwrap();
        prop_assert!(!enc[..n].contains(&0));
        let mut dec = vec![0u8; data.len() + 1];
        let m = cobs_decode(&enc[..n], &mut dec).unwrap();
        prop_assert_eq!(&dec[..m], &data[..]);
    }

    #[test]
    fn cobs_small_buffers_error_not_panic(data in proptest::collection::vec(any::<u8>(), 0..100), cap in 0usize..120) {
        let mut out = vec![0u8; cap];
        let _ = cobs_encode(&data, &mut out);
        let _ = cobs_decode(&data, &mut out);
    }
}

#[test]
fn crc_is_x25() {
    assert_eq!(crc16(b"123456789"), 0x906E);
}
