//! The test vectors in docs/worker-socket.md are what this code produces.
//!
//! Each vector is a fenced block right after a marker line
//! `<!-- vector: NAME -->`. Every JSON vector must be exactly the encoding
//! of the value built here, and must decode back to it; the frame vector
//! is the hex of a whole frame.

use lethe_wire::*;
use std::collections::BTreeMap;

fn vectors() -> BTreeMap<String, String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/worker-socket.md"
    ))
    .expect("docs/worker-socket.md");
    let mut out = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(l) = lines.next() {
        let Some(name) = l
            .strip_prefix("<!-- vector: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().expect("a fenced block after the marker");
        assert!(fence.starts_with("```"), "vector {name}: no fence");
        let mut body = Vec::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push(l);
        }
        out.insert(name.to_string(), body.join("\n"));
    }
    out
}

fn cli(uid: u32) -> Caller {
    Caller::local(Some(uid))
}

/// A vector's name, its expected text, and a check that it decodes back.
type Vector = (&'static str, String, Box<dyn Fn(&[u8]) -> bool>);

fn expected() -> Vec<Vector> {
    fn v<T>(name: &'static str, m: T) -> Vector
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + 'static,
    {
        let text = String::from_utf8(encode(&m)).unwrap();
        (
            name,
            text,
            Box::new(move |b| decode::<T>(b).map(|d| d == m).unwrap_or(false)),
        )
    }
    vec![
        v("hello", ToWorker::Hello { version: VERSION }),
        v(
            "welcome",
            FromWorker::Welcome {
                version: 1,
                worker: "0.1.0".into(),
            },
        ),
        v(
            "incompatible",
            FromWorker::Incompatible { supported: vec![1] },
        ),
        v(
            "request-login",
            ToWorker::Request {
                id: 5,
                caller: Caller {
                    via: Via::Api,
                    uid: None,
                    credential: None,
                    source: Some("192.0.2.7".parse().unwrap()),
                    polling: false,
                },
                request: Request::Login {
                    username: "alice".into(),
                    password: "correct horse battery staple".into(),
                    totp: "123456".into(),
                },
            },
        ),
        v(
            "request-api-session",
            ToWorker::Request {
                id: 6,
                caller: Caller {
                    via: Via::Api,
                    uid: None,
                    credential: Some(Credential::Session {
                        token: "c2Vzc2lvbi10b2tlbg".into(),
                    }),
                    source: Some("192.0.2.7".parse().unwrap()),
                    polling: true,
                },
                request: Request::Jobs { limit: 50 },
            },
        ),
        v(
            "request-status",
            ToWorker::Request {
                id: 1,
                caller: cli(0),
                request: Request::Status {},
            },
        ),
        v(
            "request-start-bay",
            ToWorker::Request {
                id: 2,
                caller: cli(1000),
                request: Request::StartBay {
                    bay: "bay-2".into(),
                    answer: "WD-WX12A3456789".into(),
                },
            },
        ),
        v(
            "reply-started",
            FromWorker::Reply {
                id: 2,
                reply: Reply::Started {
                    job: "wipe-20261123T140501Z-3fa9c2b1".into(),
                },
            },
        ),
        v(
            "reply-error",
            FromWorker::Reply {
                id: 3,
                reply: Reply::Error {
                    error: WireError::new(ErrorCode::Conflict, "no drive is waiting in bay bay-2"),
                },
            },
        ),
        v(
            "reply-health",
            FromWorker::Reply {
                id: 4,
                reply: Reply::Health {
                    health: HealthView {
                        version: "0.1.0".into(),
                        uptime_secs: 3600,
                        jobs_running: 2,
                    },
                },
            },
        ),
        v(
            "admin-ping",
            ToAdmin::Request {
                id: 1,
                request: AdminRequest::Ping {},
            },
        ),
        v(
            "admin-pong",
            FromAdmin::Reply {
                id: 1,
                reply: AdminReply::Pong {
                    pid: 812,
                    version: "0.1.0".into(),
                },
            },
        ),
    ]
}

#[test]
fn every_json_vector_is_what_the_code_writes_and_reads() {
    let doc = vectors();
    for (name, text, reads) in expected() {
        let got = doc
            .get(name)
            .unwrap_or_else(|| panic!("docs/worker-socket.md has no vector {name}"));
        assert_eq!(got, &text, "vector {name}");
        assert!(reads(got.as_bytes()), "vector {name} does not decode back");
    }
}

#[test]
fn the_frame_vector_is_the_hello_frame() {
    let doc = vectors();
    let hex: String = doc["frame-hello"].split_whitespace().collect();
    let bytes = frame(&encode(&ToWorker::Hello { version: VERSION }));
    let want: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, want);
}

#[test]
fn the_document_has_no_stray_vectors() {
    let known: Vec<&str> = expected().iter().map(|e| e.0).collect();
    for name in vectors().keys() {
        assert!(
            known.contains(&name.as_str()) || name == "frame-hello",
            "vector {name} is not checked"
        );
    }
}
