//! The front's router over a fake worker: each route asks the worker one
//! typed request and turns its reply into HTTP; errors keep their class;
//! over the real Unix socket the caller's uid comes from the peer
//! credentials.

use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode};
use http_body_util::BodyExt;
use lethe_front::client::{BoxFuture, ClientError, Worker};
use lethe_front::{app, Peer};
use lethe_wire::*;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

/// Answers from a script and remembers what it was asked.
#[derive(Default)]
struct Fake {
    asked: Mutex<Vec<(Caller, Request)>>,
    down: bool,
}

impl Worker for Fake {
    fn call(&self, caller: Caller, request: Request) -> BoxFuture<'_, Result<Reply, ClientError>> {
        self.asked.lock().unwrap().push((caller, request.clone()));
        let down = self.down;
        Box::pin(async move {
            if down {
                return Err(ClientError::Unreachable {
                    path: "/run/lethe/worker.sock".into(),
                    why: "connection refused".into(),
                });
            }
            Ok(match request {
                Request::Health {} => Reply::Health {
                    health: HealthView {
                        version: "0.1.0".into(),
                        uptime_secs: 5,
                        jobs_running: 1,
                    },
                },
                Request::Metrics {} => Reply::Metrics {
                    metrics: MetricsView {
                        uptime_secs: 5,
                        jobs: vec![],
                        bytes_written: 7,
                        bytes_verified: 7,
                        job_failures: 0,
                        backups: vec![],
                        audit_entries: 3,
                        front_restarts: 0,
                    },
                },
                Request::Jobs { limit } => Reply::Jobs {
                    jobs: (0..limit.min(2))
                        .map(|i| JobView {
                            id: format!("wipe-{i}"),
                            kind: "wipe".into(),
                            state: JobState::Passed,
                            device: "/dev/loop0".into(),
                            bay: None,
                            created_at: "2026-11-23T14:05:01Z".into(),
                            updated_at: "2026-11-23T14:06:01Z".into(),
                            certificate: None,
                            progress: None,
                        })
                        .collect(),
                },
                Request::StartBay { bay, .. } if bay == "bay-1" => Reply::Started {
                    job: "wipe-1".into(),
                },
                Request::StartBay { bay, .. } => Reply::Error {
                    error: WireError::new(
                        ErrorCode::Conflict,
                        format!("no drive is waiting in bay {bay}"),
                    ),
                },
                Request::Cancel { job } => Reply::Cancelling { job },
                Request::Resume { .. } => Reply::Error {
                    error: WireError::new(ErrorCode::NotFound, "no such job"),
                },
                Request::Status {} => Reply::Health {
                    // A wrong reply kind: the front must not pass it on as a status.
                    health: HealthView {
                        version: "x".into(),
                        uptime_secs: 0,
                        jobs_running: 0,
                    },
                },
                _ => Reply::Error {
                    error: WireError::new(ErrorCode::BadRequest, "not in this fake"),
                },
            })
        })
    }
}

async fn call(
    w: Arc<Fake>,
    method: &str,
    uri: &str,
    body: &str,
) -> (StatusCode, String, Option<String>) {
    let req = HttpRequest::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app(w).oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned(), ct)
}

#[tokio::test]
async fn routes_map_to_requests_and_replies_to_http() {
    let w = Arc::new(Fake::default());
    let (s, b, _) = call(w.clone(), "GET", "/healthz", "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        b.contains(r#""status":"ok""#) && b.contains(r#""jobs_running":1"#),
        "{b}"
    );

    let (s, b, ct) = call(w.clone(), "GET", "/metrics", "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.unwrap().starts_with("application/openmetrics-text"));
    assert!(
        b.contains("lethe_audit_entries 3") && b.ends_with("# EOF\n"),
        "{b}"
    );

    let (s, b, _) = call(w.clone(), "GET", "/v0/jobs?limit=5", "").await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);

    let (s, b, _) = call(
        w.clone(),
        "POST",
        "/v0/bays/bay-1/start",
        r#"{"answer":"S1"}"#,
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (StatusCode::ACCEPTED, r#"{"job":"wipe-1"}"#)
    );
    let (s, b, _) = call(
        w.clone(),
        "POST",
        "/v0/bays/bay-9/start",
        r#"{"answer":"S1"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        b.contains(r#""code":"conflict""#) && b.contains("bay-9"),
        "{b}"
    );
    let (s, _, _) = call(w.clone(), "POST", "/v0/jobs/wipe-1/resume", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b, _) = call(w.clone(), "POST", "/v0/jobs/wipe-1/cancel", "").await;
    assert_eq!(
        (s, b.as_str()),
        (StatusCode::ACCEPTED, r#"{"job":"wipe-1"}"#)
    );

    // A reply of the wrong kind is an error, never passed on.
    let (s, _, _) = call(w.clone(), "GET", "/v0/status", "").await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);

    let asked = w.asked.lock().unwrap();
    assert_eq!(asked.len(), 8);
    assert_eq!(
        asked[3].1,
        Request::StartBay {
            bay: "bay-1".into(),
            answer: "S1".into()
        }
    );
    // Without a socket there is no peer: no uid is invented.
    assert!(asked
        .iter()
        .all(|(c, _)| c.via == Via::Cli && c.uid.is_none()));
}

#[tokio::test]
async fn bad_requests_never_reach_the_worker() {
    let w = Arc::new(Fake::default());
    for (m, uri, body) in [
        (
            "POST",
            "/v0/bays/bay-1/start",
            r#"{"answer":"S1","path":"/dev/sda"}"#,
        ),
        ("POST", "/v0/bays/bay-1/start", "not json"),
        ("GET", "/v0/bays/bay-1/start", ""),
        ("GET", "/v0/jobs?limit=-1", ""),
        ("GET", "/admin", ""),
        ("POST", "/v0/exec", "{}"),
    ] {
        let (s, _, _) = call(w.clone(), m, uri, body).await;
        assert!(s.is_client_error(), "{m} {uri}: {s}");
    }
    assert!(w.asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_worker_that_is_down_is_unavailable() {
    let w = Arc::new(Fake {
        down: true,
        ..Fake::default()
    });
    let (s, b, _) = call(w.clone(), "GET", "/healthz", "").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(b.contains(r#""status":"unavailable""#), "{b}");
    let (s, b, _) = call(w, "GET", "/v0/status", "").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(b.contains("connection refused"), "{b}");
}

#[tokio::test]
async fn over_the_unix_socket_the_caller_is_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.sock");
    let w = Arc::new(Fake::default());
    let listener = lethe_front::bind_api(&path).unwrap();
    let svc = app(w.clone()).into_make_service_with_connect_info::<Peer>();
    let server = tokio::spawn(async move { axum::serve(listener, svc).await });
    let a = lethe_front::local::request(&path, axum::http::Method::GET, "/healthz", None)
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    assert_eq!(w.asked.lock().unwrap()[0].0.uid, Some(uid));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o660
    );
    // A socket left behind is replaced; anything else at the path is not.
    server.abort();
    let _ = server.await;
    drop(lethe_front::bind_api(&path).unwrap());
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(lethe_front::bind_api(&file).is_err());
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn the_front_refuses_to_run_as_root() {
    if !nix_is_root() {
        eprintln!("not root: the refusal of root is shown only when run as root");
        return;
    }
    assert!(matches!(
        lethe_front::confine::confine(),
        Err(lethe_front::confine::ConfineError::Root)
    ));
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
