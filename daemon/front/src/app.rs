//! The HTTP layer: each route turns into one worker request and its reply
//! into a response. Nothing else happens here (axum's "the HTTP layer
//! translates"): no device, no key, no store.
//!
//! [`app`] builds the router over any [`Worker`], so tests drive it with
//! `tower::ServiceExt::oneshot` and a fake worker. The caller of a request
//! is the peer of the front's Unix socket ([`Peer`], from `SO_PEERCRED`);
//! the next version adds HTTPS and sessions to the same router.

use crate::client::{ClientError, Worker};
use crate::metrics::render;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lethe_wire::{Caller, ErrorCode, Reply, Request, WireError};
use serde::Deserialize;
use std::sync::Arc;

/// Who is at the other end of a connection to the front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Peer {
    /// Their uid, from the socket's peer credentials (none over TCP).
    pub uid: Option<u32>,
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, tokio::net::UnixListener>,
    > for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        Peer {
            uid: stream.io().peer_cred().ok().map(|c| c.uid()),
        }
    }
}

/// The router's state.
#[derive(Clone)]
pub struct AppState {
    worker: Arc<dyn Worker>,
}

/// The router of the front's local API over `worker`.
pub fn app(worker: Arc<dyn Worker>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v0/status", get(status))
        .route("/v0/jobs", get(jobs))
        .route("/v0/bays/{bay}/start", post(start_bay))
        .route("/v0/jobs/{job}/resume", post(resume))
        .route("/v0/jobs/{job}/cancel", post(cancel))
        .with_state(AppState { worker })
}

/// An error as the API shows it: `{"error":{"code","message"}}`.
pub struct ApiError(StatusCode, WireError);

impl ApiError {
    fn status(code: ErrorCode) -> StatusCode {
        match code {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Refused => StatusCode::FORBIDDEN,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::ReauthRequired => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        ApiError(Self::status(e.code), e)
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        tracing::warn!("worker request failed: {e}");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            WireError::new(ErrorCode::Unavailable, e.to_string()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// The caller of a request: the local API socket's peer (no peer, as in
/// router tests without a socket: no uid).
pub struct Who(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let uid = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            .and_then(|p| p.0.uid);
        Ok(Who(Caller::local(uid)))
    }
}

async fn ask(st: &AppState, who: Who, r: Request) -> Result<Reply, ApiError> {
    match st.worker.call(who.0, r).await? {
        Reply::Error { error } => Err(error.into()),
        other => Ok(other),
    }
}

fn unexpected(r: Reply) -> ApiError {
    ApiError(
        StatusCode::BAD_GATEWAY,
        WireError::new(
            ErrorCode::Internal,
            format!("the worker answered with an unexpected reply: {r:?}"),
        ),
    )
}

async fn healthz(State(st): State<AppState>, who: Who) -> Response {
    match ask(&st, who, Request::Health {}).await {
        Ok(Reply::Health { health }) => Json(serde_json::json!({
            "status": "ok",
            "version": health.version,
            "uptime_secs": health.uptime_secs,
            "jobs_running": health.jobs_running,
        }))
        .into_response(),
        Ok(other) => unexpected(other).into_response(),
        Err(ApiError(_, e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "error": e})),
        )
            .into_response(),
    }
}

async fn metrics(State(st): State<AppState>, who: Who) -> Result<Response, ApiError> {
    match ask(&st, who, Request::Metrics {}).await? {
        Reply::Metrics { metrics } => Ok((
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            render(&metrics),
        )
            .into_response()),
        other => Err(unexpected(other)),
    }
}

async fn status(State(st): State<AppState>, who: Who) -> Result<Response, ApiError> {
    match ask(&st, who, Request::Status {}).await? {
        Reply::Status { status } => Ok(Json(status).into_response()),
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize)]
struct JobsQuery {
    limit: Option<u32>,
}

async fn jobs(
    State(st): State<AppState>,
    who: Who,
    Query(q): Query<JobsQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(50);
    match ask(&st, who, Request::Jobs { limit }).await? {
        Reply::Jobs { jobs } => Ok(Json(jobs).into_response()),
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    answer: String,
}

fn started(r: Reply) -> Result<Response, ApiError> {
    match r {
        Reply::Started { job } | Reply::Cancelling { job } => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "job": job })),
        )
            .into_response()),
        other => Err(unexpected(other)),
    }
}

async fn start_bay(
    State(st): State<AppState>,
    who: Who,
    Path(bay): Path<String>,
    Json(body): Json<StartBody>,
) -> Result<Response, ApiError> {
    started(
        ask(
            &st,
            who,
            Request::StartBay {
                bay,
                answer: body.answer,
            },
        )
        .await?,
    )
}

async fn resume(
    State(st): State<AppState>,
    who: Who,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    started(ask(&st, who, Request::Resume { job }).await?)
}

async fn cancel(
    State(st): State<AppState>,
    who: Who,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    started(ask(&st, who, Request::Cancel { job }).await?)
}
