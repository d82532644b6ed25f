//! The HTTPS API's router over a fake worker: every route of the table is
//! served and becomes exactly one worker request of the declared kind,
//! with the caller as presented (credential, address, polling); answers
//! match the OpenAPI document; errors have one JSON shape and the right
//! status; every response carries the security headers.

mod common;

use axum::body::Body;
use axum::http::{header, Request as HttpRequest, StatusCode};
use axum::Router;
use common::*;
use http_body_util::BodyExt;
use lethe_front::api::routes::{Route, PUBLIC, ROUTES};
use lethe_front::api::{openapi, router, ApiOptions, ClientAddr};
use lethe_front::client::ClientError;
use lethe_wire::*;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 50123);
const COOKIE: &str = "__Host-lethe_session=sess-abc";

fn api(w: &Arc<Fake>) -> Router {
    router(
        w.clone(),
        ApiOptions {
            progress_interval: Duration::from_millis(1),
            keep_alive: Duration::from_secs(60),
        },
    )
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// An error answer: its code, after checking the one shape.
    fn error_code(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/json"));
        let v = self.json();
        let e = v["error"].as_object().expect("an error object");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        for k in e.keys() {
            assert!(
                ["code", "message", "retry_after_secs"].contains(&k.as_str()),
                "{v}"
            );
        }
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        e["code"].as_str().unwrap().to_string()
    }
}

fn request(method: &str, uri: &str, body: Option<&str>) -> axum::http::request::Builder {
    let mut b = HttpRequest::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "lethe.local:8443")
        .extension(ClientAddr(PEER));
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    b
}

async fn send(app: &Router, req: HttpRequest<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<&str>) -> Answer {
    let req = request(method, uri, body)
        .header(header::COOKIE, COOKIE)
        .body(Body::from(body.unwrap_or("").to_string()))
        .unwrap();
    send(app, req).await
}

/// A path of the table with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{bay}", "bay-1")
        .replace("{job}", "wipe-0")
        .replace("{id}", "c1")
        .replace("{name}", "bob")
}

/// A valid body for each route that takes one.
fn body_of(r: &Route) -> Option<&'static str> {
    Some(match (r.method.as_str(), r.path) {
        ("POST", "/api/v1/login") => r#"{"username":"alice","password":"pw","totp":"123456"}"#,
        ("POST", "/api/v1/reauth") => r#"{"password":"pw","totp":"123456"}"#,
        ("POST", "/api/v1/session/password") => r#"{"current":"old","new":"new"}"#,
        ("POST", "/api/v1/bays/{bay}/start") => r#"{"answer":"WD-WX12A3456789"}"#,
        ("POST", "/api/v1/users") => r#"{"name":"bob","role":"auditor","emergency":true}"#,
        ("POST", "/api/v1/users/{name}/role") => r#"{"role":"operator"}"#,
        ("POST", "/api/v1/users/{name}/emergency") => r#"{"granted":true}"#,
        ("POST", "/api/v1/tokens") => r#"{"label":"m","role":"auditor","lifetime_secs":3600}"#,
        ("POST", "/api/v1/breakglass") => r#"{"reason":"the admin is on leave"}"#,
        ("POST", "/api/v1/breakglass/{id}/review") => r#"{"notes":"checked"}"#,
        _ => return None,
    })
}

// --- a small JSON Schema check for the subset utoipa writes ------------

fn resolve<'a>(doc: &'a Value, r: &str) -> &'a Value {
    let mut v = doc;
    for part in r.trim_start_matches("#/").split('/') {
        v = &v[part];
    }
    assert!(!v.is_null(), "no {r} in the document");
    v
}

fn conforms(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return conforms(doc, resolve(doc, r), v, at);
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let n = one
            .iter()
            .filter(|s| conforms(doc, s, v, at).is_ok())
            .count();
        return if n == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {n} of oneOf match {v}"))
        };
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {v} is not of type {t}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Err(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            return Err(format!("{at}: {n} < {min}"));
        }
    }
    if let Value::Object(m) = v {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for k in req {
                if !m.contains_key(k.as_str().unwrap()) {
                    return Err(format!("{at}: {k} is required"));
                }
            }
        }
        for (k, x) in m {
            match props.and_then(|p| p.get(k)) {
                Some(s) => conforms(doc, s, x, &format!("{at}.{k}"))?,
                None if schema.get("additionalProperties") == Some(&json!(false)) => {
                    return Err(format!("{at}: {k} is not a documented property"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(a), Some(items)) = (v, schema.get("items")) {
        for (i, x) in a.iter().enumerate() {
            conforms(doc, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Check an answer against the document: its status is documented for
/// the operation, its content type too, and a JSON body matches the
/// schema.
fn documented(doc: &Value, r: &Route, a: &Answer) {
    let op = &doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()];
    let mut resp = &op["responses"][a.status.as_str()];
    assert!(
        !resp.is_null(),
        "{} {}: status {} is not documented",
        r.method.as_str(),
        r.path,
        a.status
    );
    if let Some(rf) = resp.get("$ref").and_then(Value::as_str) {
        resp = resolve(doc, rf);
    }
    let Some(content) = resp.get("content").and_then(Value::as_object) else {
        assert!(
            a.body.is_empty(),
            "{}: a body where none is documented",
            r.path
        );
        return;
    };
    let ct = a.header("content-type").expect("a content type");
    let (media, c) = content
        .iter()
        .find(|(m, _)| ct.starts_with(m.as_str()))
        .unwrap_or_else(|| panic!("{}: content type {ct} is not documented", r.path));
    if media == "application/json" {
        conforms(doc, &c["schema"], &a.json(), r.path)
            .unwrap_or_else(|e| panic!("{} {}: {e}", r.method.as_str(), r.path));
    }
}

#[tokio::test]
async fn every_route_makes_one_worker_request_with_the_callers_credential() {
    let doc: Value = serde_json::from_str(&openapi::json()).unwrap();
    let w = Fake::new();
    let app = api(&w);
    for r in ROUTES {
        w.clear();
        let body = body_of(r);
        let has_body =
            !doc["paths"][r.path][r.method.as_str().to_ascii_lowercase()]["requestBody"].is_null();
        assert_eq!(
            body.is_some(),
            has_body,
            "{}: body and document disagree",
            r.path
        );
        let a = call(&app, r.method.as_str(), &concrete(r.path), body).await;
        assert!(
            a.status.is_success(),
            "{} {}: {} {}",
            r.method.as_str(),
            r.path,
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        documented(&doc, r, &a);
        let asked = w.asked();
        let Some(expected) = r.op else {
            assert!(asked.is_empty(), "{} asked the worker", r.path);
            continue;
        };
        assert_eq!(
            asked.len(),
            1,
            "{} {}: {asked:?}",
            r.method.as_str(),
            r.path
        );
        let (caller, req) = &asked[0];
        assert_eq!(op(req), expected, "{}", r.path);
        assert_eq!(caller.via, Via::Api);
        assert_eq!(caller.uid, None);
        assert_eq!(caller.source, Some(PEER.ip()), "{}", r.path);
        assert_eq!(caller.polling, r.polling, "{}: polling", r.path);
        let cookie = Some(Credential::Session {
            token: Secret("sess-abc".into()),
        });
        if r.privilege == PUBLIC {
            assert_eq!(caller.credential, None, "{} forwards a credential", r.path);
        } else {
            assert_eq!(caller.credential, cookie, "{}", r.path);
        }
    }
}

#[tokio::test]
async fn requests_carry_what_the_client_sent() {
    let w = Fake::new();
    let app = api(&w);
    call(
        &app,
        "POST",
        "/api/v1/bays/bay-2/start",
        Some(r#"{"answer":"S1"}"#),
    )
    .await;
    call(&app, "GET", "/api/v1/jobs?limit=7", None).await;
    call(
        &app,
        "GET",
        "/api/v1/certificates?serial=WD&customer=Acme&from=2026-01-01&limit=5",
        None,
    )
    .await;
    call(&app, "GET", "/api/v1/audit?limit=2&before=40", None).await;
    call(
        &app,
        "POST",
        "/api/v1/users/bob/role",
        Some(r#"{"role":"admin"}"#),
    )
    .await;
    call(&app, "DELETE", "/api/v1/users/bob", None).await;
    call(&app, "POST", "/api/v1/breakglass/bg-3/deny", None).await;
    call(
        &app,
        "POST",
        "/api/v1/tokens",
        Some(r#"{"label":"l","role":"operator","lifetime_secs":60}"#),
    )
    .await;
    let asked: Vec<Request> = w.asked().into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        asked,
        [
            Request::StartBay {
                bay: "bay-2".into(),
                answer: "S1".into()
            },
            Request::Jobs { limit: 7 },
            Request::Certificates {
                query: CertQuery {
                    serial: Some("WD".into()),
                    asset_tag: None,
                    customer: Some("Acme".into()),
                    from: Some("2026-01-01".into()),
                    to: None,
                    limit: Some(5),
                }
            },
            Request::Audit {
                limit: 2,
                before: Some(40)
            },
            Request::UserChange {
                name: "bob".into(),
                change: UserChange::SetRole {
                    role: RoleName::Admin
                }
            },
            Request::UserChange {
                name: "bob".into(),
                change: UserChange::Remove {}
            },
            Request::BreakGlassDecide {
                id: "bg-3".into(),
                approve: false
            },
            Request::TokenCreate {
                label: "l".into(),
                role: RoleName::Operator,
                lifetime_secs: 60
            },
        ]
    );
    // Defaults when the query says nothing.
    w.clear();
    call(&app, "GET", "/api/v1/jobs", None).await;
    call(&app, "GET", "/api/v1/audit/export", None).await;
    call(&app, "GET", "/api/v1/certificates", None).await;
    let asked: Vec<Request> = w.asked().into_iter().map(|(_, r)| r).collect();
    assert_eq!(asked[0], Request::Jobs { limit: 50 });
    assert_eq!(
        asked[1],
        Request::Audit {
            limit: 1000,
            before: None
        }
    );
    assert!(matches!(&asked[2], Request::Certificates { query } if query.limit == Some(100)));
}

#[tokio::test]
async fn login_sets_the_session_cookie_and_logout_clears_it() {
    let w = Fake::new();
    let app = api(&w);
    // A stale cookie does not travel with a login.
    let a = call(
        &app,
        "POST",
        "/api/v1/login",
        Some(r#"{"username":"alice","password":"pw","totp":"123456"}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.header("set-cookie"),
        Some("__Host-lethe_session=q6Yx1z8Wb2Xc3Vd4Ue5Tf6Sg7Rh8Qi9Pj0Ok1Nl2Mm3; Path=/; Secure; HttpOnly; SameSite=Strict")
    );
    assert_eq!(a.json(), serde_json::to_value(session_view()).unwrap());
    let (caller, req) = &w.asked()[0];
    assert_eq!(caller.credential, None);
    assert_eq!(
        req,
        &Request::Login {
            username: "alice".into(),
            password: Secret("pw".into()),
            totp: Secret("123456".into())
        }
    );

    const CLEARED: &str =
        "__Host-lethe_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0";
    for path in ["/api/v1/logout", "/api/v1/logout-everywhere"] {
        let a = call(&app, "POST", path, None).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(a.header("set-cookie"), Some(CLEARED), "{path}");
        assert!(a.body.is_empty());
    }
    // Cleared even when the session had already ended.
    let w = Fake::scripted(|r, _| {
        matches!(r, Request::Logout {}).then(|| {
            Ok(wire_error(
                ErrorCode::Unauthenticated,
                "not logged in, or the session has ended",
            ))
        })
    });
    let a = call(&api(&w), "POST", "/api/v1/logout", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error_code(), "unauthenticated");
    assert_eq!(a.header("set-cookie"), Some(CLEARED));
}

#[tokio::test]
async fn a_failed_login_sets_no_cookie() {
    let w = Fake::scripted(|r, _| {
        matches!(r, Request::Login { .. }).then(|| {
            Ok(wire_error(
                ErrorCode::Unauthenticated,
                "login failed: check the user name, password and code",
            ))
        })
    });
    let a = call(
        &api(&w),
        "POST",
        "/api/v1/login",
        Some(r#"{"username":"alice","password":"no","totp":"000000"}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error_code(), "unauthenticated");
    assert_eq!(a.header("set-cookie"), None);
}

#[tokio::test]
async fn bearer_tokens_and_cookies_become_their_credentials() {
    let w = Fake::new();
    let app = api(&w);
    let send_with = |h: Vec<(&'static str, &'static str)>| {
        let mut b = request("GET", "/api/v1/status", None);
        for (k, v) in h {
            b = b.header(k, v);
        }
        send(&app, b.body(Body::empty()).unwrap())
    };
    send_with(vec![("authorization", "Bearer lethe_0123_secret")]).await;
    send_with(vec![("cookie", "theme=dark; __Host-lethe_session=s1")]).await;
    send_with(vec![
        ("cookie", "__Host-lethe_session=s1"),
        ("authorization", "Bearer t2"),
    ])
    .await;
    send_with(vec![]).await;
    let creds: Vec<_> = w.asked().into_iter().map(|(c, _)| c.credential).collect();
    assert_eq!(
        creds,
        [
            Some(Credential::Token {
                secret: Secret("lethe_0123_secret".into())
            }),
            Some(Credential::Session {
                token: Secret("s1".into())
            }),
            Some(Credential::Token {
                secret: Secret("t2".into())
            }),
            None,
        ]
    );
    // A malformed Authorization header is refused before the worker.
    w.clear();
    let a = send_with(vec![("authorization", "Basic YWxpY2U6cHc=")]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error_code(), "unauthenticated");
    assert!(w.asked().is_empty());
}

#[tokio::test]
async fn ipv4_mapped_peers_are_reported_as_ipv4() {
    let w = Fake::new();
    let app = api(&w);
    let mapped: SocketAddr = "[::ffff:198.51.100.9]:40000".parse().unwrap();
    let req = HttpRequest::builder()
        .uri("/api/v1/status")
        .extension(ClientAddr(mapped))
        .body(Body::empty())
        .unwrap();
    send(&app, req).await;
    // And without a connection (no peer) no address is invented.
    send(
        &app,
        HttpRequest::builder()
            .uri("/api/v1/status")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let sources: Vec<_> = w.asked().into_iter().map(|(c, _)| c.source).collect();
    assert_eq!(sources, [Some("198.51.100.9".parse().unwrap()), None]);
}

#[tokio::test]
async fn worker_errors_keep_their_class() {
    for (code, status) in [
        (ErrorCode::BadRequest, 400),
        (ErrorCode::Unauthenticated, 401),
        (ErrorCode::Forbidden, 403),
        (ErrorCode::ReauthRequired, 403),
        (ErrorCode::Refused, 403),
        (ErrorCode::NotFound, 404),
        (ErrorCode::Conflict, 409),
        (ErrorCode::RateLimited, 429),
        (ErrorCode::Internal, 500),
        (ErrorCode::Unavailable, 503),
    ] {
        let w = Fake::scripted(move |_, _| {
            let mut e = WireError::new(code, "as the worker says");
            if code == ErrorCode::RateLimited {
                e.retry_after_secs = Some(6);
            }
            Some(Ok(Reply::Error { error: e }))
        });
        let a = call(&api(&w), "POST", "/api/v1/jobs/wipe-1/cancel", None).await;
        assert_eq!(a.status.as_u16(), status, "{code:?}");
        assert_eq!(
            a.error_code(),
            serde_json::to_value(code).unwrap().as_str().unwrap()
        );
        assert_eq!(a.json()["error"]["message"], "as the worker says");
        if code == ErrorCode::RateLimited {
            assert_eq!(a.header("retry-after"), Some("6"));
            assert_eq!(a.json()["error"]["retry_after_secs"], 6);
        } else {
            assert_eq!(a.header("retry-after"), None);
        }
    }
}

#[tokio::test]
async fn a_worker_that_is_down_or_confused_is_an_error_without_details() {
    let w = Fake::scripted(|_, _| {
        Some(Err(ClientError::Unreachable {
            path: "/run/lethe/worker.sock".into(),
            why: "connection refused".into(),
        }))
    });
    for path in ["/healthz", "/api/v1/status"] {
        let a = call(&api(&w), "GET", path, None).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(a.error_code(), "unavailable");
        let text = String::from_utf8_lossy(&a.body);
        assert!(!text.contains("/run/lethe"), "{text}");
    }
    // A reply of the wrong kind is never passed on.
    let w = Fake::scripted(|_, _| Some(Ok(Reply::Done {})));
    let a = call(&api(&w), "GET", "/api/v1/status", None).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.error_code(), "internal");
}

#[tokio::test]
async fn the_http_layers_own_refusals_have_the_json_shape() {
    let w = Fake::new();
    let app = api(&w);
    let big = format!(r#"{{"answer":"{}"}}"#, "x".repeat(70 * 1024));
    let long = "x".repeat(200);
    // method, uri, content type, body, status, code
    type Case<'a> = (
        &'a str,
        String,
        Option<&'a str>,
        Option<&'a str>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/api/v1/nothing".into(),
            None,
            None,
            404,
            "not_found",
        ),
        ("GET", "/nothing".into(), None, None, 404, "not_found"),
        ("GET", "/v0/status".into(), None, None, 404, "not_found"),
        ("GET", "/metrics".into(), None, None, 404, "not_found"),
        (
            "DELETE",
            "/api/v1/status".into(),
            None,
            None,
            405,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/login".into(),
            None,
            None,
            405,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/bays/bay-1/start".into(),
            Some("application/json"),
            Some("not json"),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/bays/bay-1/start".into(),
            Some("application/json"),
            Some(r#"{"answer":"S1","path":"/dev/sda"}"#),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/bays/bay-1/start".into(),
            Some("application/json"),
            Some(r#"{"answer":7}"#),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/bays/bay-1/start".into(),
            Some("application/json"),
            Some("{}"),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/bays/bay-1/start".into(),
            Some("text/plain"),
            Some(r#"{"answer":"S1"}"#),
            415,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/bays/bay-1/start".into(),
            None,
            None,
            415,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/bays/bay-1/start".into(),
            Some("application/json"),
            Some(big.as_str()),
            413,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/jobs?limit=abc".into(),
            None,
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/jobs?limit=-1".into(),
            None,
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/jobs?limit=0".into(),
            None,
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/jobs?limit=1001".into(),
            None,
            None,
            400,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/audit?before=x".into(),
            None,
            None,
            400,
            "bad_request",
        ),
        (
            "POST",
            format!("/api/v1/jobs/{long}/cancel"),
            None,
            None,
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/login".into(),
            Some("application/json"),
            Some(r#"{"username":"a","password":"p","totp":"1","remember":true}"#),
            400,
            "bad_request",
        ),
    ];
    for (method, uri, ct, body, status, code) in cases {
        let mut b = HttpRequest::builder()
            .method(method)
            .uri(&uri)
            .header(header::COOKIE, COOKIE);
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let a = send(
            &app,
            b.body(Body::from(body.unwrap_or("").to_string())).unwrap(),
        )
        .await;
        let short = &uri[..uri.len().min(40)];
        assert_eq!(
            a.status.as_u16(),
            status,
            "{method} {short}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(a.error_code(), code, "{method} {short}");
        assert_eq!(
            a.header("x-content-type-options"),
            Some("nosniff"),
            "{short}"
        );
        if status == 405 {
            assert!(a.header("allow").is_some(), "{short}: no Allow header");
        }
    }
    assert!(w.asked().is_empty(), "{:?}", w.asked());
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let w = Fake::new();
    let app = api(&w);
    for (method, uri) in [
        ("GET", "/healthz"),
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/certificates/c1/pdf"),
        ("GET", "/api/v1/nothing"),
        ("PUT", "/api/v1/status"),
    ] {
        let a = call(&app, method, uri, None).await;
        for (name, value) in [
            (
                "strict-transport-security",
                "max-age=63072000; includeSubDomains",
            ),
            (
                "content-security-policy",
                "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(a.header(name), Some(value), "{method} {uri}: {name}");
        }
    }
}

#[tokio::test]
async fn a_session_cookie_from_another_origin_changes_nothing() {
    let w = Fake::new();
    let app = api(&w);
    let forged = request("POST", "/api/v1/jobs/wipe-1/cancel", None)
        .header(header::COOKIE, COOKIE)
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::empty())
        .unwrap();
    let a = send(&app, forged).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.error_code(), "forbidden");
    assert!(w.asked().is_empty());
    // The same origin, a bearer token, or a read pass.
    let ok = [
        request("POST", "/api/v1/jobs/wipe-1/cancel", None)
            .header(header::COOKIE, COOKIE)
            .header(header::ORIGIN, "https://lethe.local:8443")
            .body(Body::empty())
            .unwrap(),
        request("POST", "/api/v1/jobs/wipe-1/cancel", None)
            .header(header::AUTHORIZATION, "Bearer t")
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::empty())
            .unwrap(),
        request("GET", "/api/v1/status", None)
            .header(header::COOKIE, COOKIE)
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::empty())
            .unwrap(),
    ];
    for req in ok {
        assert!(send(&app, req).await.status.is_success());
    }
    assert_eq!(w.asked().len(), 3);
}

#[tokio::test]
async fn documents_come_as_their_bytes() {
    let w = Fake::new();
    let app = api(&w);
    let a = call(&app, "GET", "/api/v1/certificates/c1/pdf", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some("application/pdf"));
    assert_eq!(
        a.header("content-disposition"),
        Some("inline; filename=\"c1.pdf\"")
    );
    assert_eq!(a.body, PDF);
    let a = call(&app, "GET", "/api/v1/certificates/c1", None).await;
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.body, CERT_JSON.as_bytes());
    assert_eq!(
        w.asked().into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        [
            Request::Certificate {
                id: "c1".into(),
                format: CertFormat::Pdf
            },
            Request::Certificate {
                id: "c1".into(),
                format: CertFormat::Json
            },
        ]
    );
}

#[tokio::test]
async fn the_audit_export_is_json_lines_oldest_first() {
    let w = Fake::new();
    let a = call(
        &api(&w),
        "GET",
        "/api/v1/audit/export?limit=3&before=10",
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some("application/x-ndjson"));
    let text = String::from_utf8(a.body).unwrap();
    assert!(text.ends_with('\n'));
    let seqs: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<AuditView>(l).unwrap().seq)
        .collect();
    assert_eq!(seqs, [7, 8, 9]);
}

/// The events of a server-sent event stream: (event, data).
fn sse_events(body: &[u8]) -> Vec<(String, Value)> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .filter_map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(d).unwrap());
                }
            }
            Some((name?, data?))
        })
        .collect()
}

#[tokio::test]
async fn progress_streams_until_the_job_ends() {
    // The job runs for three looks (10, 10, 50 bytes), then is gone from
    // the running list and found passed in the history.
    let w = Fake::scripted(|r, n| match r {
        Request::Status {} => {
            let running = match n {
                0 | 1 => vec![job_view("wipe-7", JobState::Running, Some(10))],
                2 => vec![job_view("wipe-7", JobState::Running, Some(50))],
                _ => vec![],
            };
            Some(Ok(Reply::Status {
                status: status_view(running, vec![]),
            }))
        }
        Request::Jobs { .. } => Some(Ok(Reply::Jobs {
            jobs: vec![
                job_view("wipe-8", JobState::Failed, None),
                job_view("wipe-7", JobState::Passed, None),
            ],
        })),
        _ => None,
    });
    let a = call(&api(&w), "GET", "/api/v1/jobs/wipe-7/events", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some("text/event-stream"));
    let events = sse_events(&a.body);
    let progress = |done: u64| json!({"job":"wipe-7","state":"running","progress":{"phase":"writing","done":done,"total":1000}});
    assert_eq!(
        events,
        [
            ("progress".to_string(), progress(10)),
            ("progress".to_string(), progress(50)),
            (
                "end".to_string(),
                json!({"job":"wipe-7","state":"passed","certificate":"wipe-7.json"})
            ),
        ]
    );
    // Every look was polling, with the caller's credential.
    let asked = w.asked();
    assert_eq!(
        asked.iter().map(|(_, r)| op(r)).collect::<Vec<_>>(),
        ["status", "status", "status", "status", "jobs"]
    );
    assert!(asked.iter().all(|(c, _)| c.polling
        && c.credential
            == Some(Credential::Session {
                token: Secret("sess-abc".into())
            })));
}

#[tokio::test]
async fn a_progress_stream_ends_with_an_error_event_when_the_worker_refuses() {
    let w = Fake::scripted(|r, n| match (r, n) {
        (Request::Status {}, 0) => Some(Ok(Reply::Status {
            status: status_view(vec![job_view("wipe-7", JobState::Running, Some(1))], vec![]),
        })),
        _ => Some(Ok(wire_error(
            ErrorCode::Unauthenticated,
            "the session has ended",
        ))),
    });
    let a = call(&api(&w), "GET", "/api/v1/jobs/wipe-7/events", None).await;
    let events = sse_events(&a.body);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].0, "progress");
    assert_eq!(
        events[1],
        (
            "error".to_string(),
            json!({"error":{"code":"unauthenticated","message":"the session has ended"}})
        )
    );
}

#[tokio::test]
async fn events_of_an_unknown_job_are_a_404_and_of_an_ended_one_its_end() {
    let w = Fake::new();
    let app = api(&w);
    let a = call(&app, "GET", "/api/v1/jobs/nope/events", None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error_code(), "not_found");
    let a = call(&app, "GET", "/api/v1/jobs/old-1/events", None).await;
    assert_eq!(
        sse_events(&a.body),
        [(
            "end".to_string(),
            json!({"job":"old-1","state":"passed","certificate":"old-1.json"})
        )]
    );
}
