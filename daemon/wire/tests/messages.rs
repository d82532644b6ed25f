//! Messages round-trip, unknown messages and fields are refused, and no
//! input makes the decoder panic.

use lethe_wire::*;
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "\\PC{0,40}"
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Health {}),
        Just(Request::Status {}),
        Just(Request::Metrics {}),
        any::<u32>().prop_map(|limit| Request::Jobs { limit }),
        (name(), name()).prop_map(|(bay, answer)| Request::StartBay { bay, answer }),
        name().prop_map(|job| Request::Resume { job }),
        name().prop_map(|job| Request::Cancel { job }),
    ]
}

fn to_worker() -> impl Strategy<Value = ToWorker> {
    prop_oneof![
        any::<u32>().prop_map(|version| ToWorker::Hello { version }),
        (
            any::<u64>(),
            prop_oneof![Just(Via::Cli), Just(Via::Api), Just(Via::Console)],
            proptest::option::of(any::<u32>()),
            request()
        )
            .prop_map(|(id, via, uid, request)| ToWorker::Request {
                id,
                caller: Caller {
                    via,
                    ..Caller::local(uid)
                },
                request
            }),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        name().prop_map(|job| Reply::Started { job }),
        name().prop_map(|job| Reply::Cancelling { job }),
        (
            prop_oneof![
                Just(ErrorCode::BadRequest),
                Just(ErrorCode::NotFound),
                Just(ErrorCode::Conflict),
                Just(ErrorCode::Refused),
                Just(ErrorCode::Unavailable),
                Just(ErrorCode::Internal)
            ],
            name()
        )
            .prop_map(|(code, m)| Reply::Error {
                error: WireError::new(code, m)
            }),
        (name(), any::<u64>(), any::<u32>()).prop_map(|(version, uptime_secs, jobs_running)| {
            Reply::Health {
                health: HealthView {
                    version,
                    uptime_secs,
                    jobs_running,
                },
            }
        }),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip_through_frames(m in to_worker()) {
        let mut d = FrameDecoder::new();
        d.push(&frame(&encode(&m)));
        let body = d.next_frame().unwrap().unwrap();
        let back: ToWorker = decode(&body).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn replies_round_trip(id in any::<u64>(), reply in reply()) {
        let m = FromWorker::Reply { id, reply };
        let back: FromWorker = decode(&encode(&m)).unwrap();
        prop_assert_eq!(back, m);
    }

    /// Arbitrary bytes and arbitrary JSON never panic a decoder.
    #[test]
    fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256), text in "\\PC{0,200}") {
        let _ = ToWorker::decode(&bytes);
        let _ = ToWorker::decode(text.as_bytes());
        let _ = decode::<ToAdmin>(&bytes);
        let _ = decode::<FromWorker>(text.as_bytes());
    }
}

#[test]
fn unknown_messages_fields_and_ops_are_refused() {
    for bad in [
        r#"{"type":"hello","version":1,"extra":true}"#,
        r#"{"type":"goodbye"}"#,
        r#"{"type":"request","id":1,"caller":{"via":"cli","uid":0},"request":{"op":"exec","cmd":"sh"}}"#,
        r#"{"type":"request","id":1,"caller":{"via":"cli","uid":0,"root":true},"request":{"op":"status"}}"#,
        r#"{"type":"request","id":1,"caller":{"via":"cli","uid":0},"request":{"op":"status","path":"/etc/shadow"}}"#,
        r#"{"type":"request","id":1,"caller":{"via":"http","uid":0},"request":{"op":"status"}}"#,
        r#"{"type":"request","id":-1,"caller":{"via":"cli","uid":0},"request":{"op":"status"}}"#,
        r#"{"type":"hello","version":1} trailing"#,
        "",
        "null",
    ] {
        assert!(ToWorker::decode(bad.as_bytes()).is_err(), "{bad}");
    }
    let ok = r#"{"type":"request","id":7,"caller":{"via":"cli","uid":1000},"request":{"op":"cancel","job":"wipe-1"}}"#;
    assert!(matches!(
        ToWorker::decode(ok.as_bytes()).unwrap(),
        ToWorker::Request {
            id: 7,
            request: Request::Cancel { .. },
            ..
        }
    ));
}

#[test]
fn long_strings_are_refused() {
    let m = ToWorker::Request {
        id: 1,
        caller: Caller::local(Some(0)),
        request: Request::Resume {
            job: "j".repeat(MAX_NAME + 1),
        },
    };
    assert!(matches!(
        ToWorker::decode(&encode(&m)),
        Err(DecodeError::TooLong { field: "job", .. })
    ));
}

#[test]
fn limits_count_characters_not_bytes() {
    // 128 characters of 4 bytes each: within the limit.
    let m = ToWorker::Request {
        id: 1,
        caller: Caller::local(Some(0)),
        request: Request::Resume {
            job: "\u{1D54B}".repeat(MAX_NAME),
        },
    };
    assert!(ToWorker::decode(&encode(&m)).is_ok());
    let m = ToWorker::Request {
        id: 1,
        caller: Caller::local(Some(0)),
        request: Request::Resume {
            job: "\u{1D54B}".repeat(MAX_NAME + 1),
        },
    };
    assert!(matches!(
        ToWorker::decode(&encode(&m)),
        Err(DecodeError::TooLong { field: "job", len, .. }) if len == MAX_NAME + 1
    ));
}
