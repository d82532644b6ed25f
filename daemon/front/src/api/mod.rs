//! The HTTPS JSON API (`/api/v1/...`, and `/healthz`).
//!
//! Every route is in one table ([`routes::ROUTES`]) with the privilege it
//! needs, whether it is polling and the one worker request it becomes; the
//! router is built from that table. A handler takes the caller
//! ([`extract::Who`]: the session cookie or bearer token as presented, the
//! client's address, the route's polling flag), the checked body, query
//! and path, asks the worker one [`Request`] and turns the [`Reply`] into
//! JSON. The front decides nothing about identity: the worker
//! authenticates and authorises every request.
//!
//! - [`routes`]: the table;
//! - [`error`]: the one error shape;
//! - [`extract`]: caller, body, query, path;
//! - [`headers`]: security headers on every response;
//! - [`openapi`]: the OpenAPI 3.1 document (`utoipa`);
//! - the handlers: [`session`], [`bays`], [`events`] (server-sent
//!   events), [`backups`], [`certificates`], [`controller`], [`audit`], [`users`], [`tokens`],
//!   [`breakglass`].

pub mod audit;
pub mod backups;
pub mod bays;
pub mod breakglass;
pub mod certificates;
pub mod controller;
pub mod error;
pub mod events;
pub mod extract;
pub mod headers;
pub mod openapi;
pub mod routes;
pub mod session;
pub mod tokens;
pub mod users;

pub use error::{ApiError, ErrorBody};
pub use extract::{ClientAddr, Who, SESSION_COOKIE};
pub use routes::{Route, ROUTES};

use crate::client::Worker;
use axum::extract::{DefaultBodyLimit, Request as HttpRequest};
use axum::middleware::{from_fn, map_response, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use lethe_wire::{Reply, Request};
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted (JSON bodies are a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// A request (body included) must be read and answered within this; a
/// client sending its body a byte at a time is cut off. (Worker calls time
/// out sooner: [`crate::client::TIMEOUT`].) Streams of events run on once
/// their response has started.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the API's behaviour depends on besides the worker.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// How often a progress stream asks the worker (default 1 s).
    pub progress_interval: Duration,
    /// How often an idle progress stream sends a keep-alive comment.
    pub keep_alive: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            progress_interval: Duration::from_secs(1),
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// The router's state.
#[derive(Clone)]
pub struct ApiState {
    worker: Arc<dyn Worker>,
    options: ApiOptions,
}

/// The HTTPS router over `worker`, built from [`ROUTES`]: every response
/// gets the security headers, every error the JSON shape.
pub fn router(worker: Arc<dyn Worker>, options: ApiOptions) -> Router {
    let mut r = Router::new();
    for route in ROUTES {
        r = r.route(
            route.path,
            (route.handler)(route.method.filter()).layer(Extension(route)),
        );
    }
    r.fallback(no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(from_fn(request_timeout))
        .layer(map_response(error::json_errors))
        .layer(map_response(headers::security_headers))
        .with_state(ApiState { worker, options })
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}

async fn request_timeout(req: HttpRequest, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::bad_request("the request was not received in time")
            .with_status(axum::http::StatusCode::REQUEST_TIMEOUT)
            .into_response(),
    }
}

/// Ask the worker `request` for `who`: the one worker call of a route.
/// Strings over the wire's limits are refused here (the worker would end
/// the connection); a worker error keeps its class.
pub(crate) async fn ask(st: &ApiState, who: &Who, request: Request) -> Result<Reply, ApiError> {
    request
        .check()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    match st.worker.call(who.0.clone(), request).await {
        Ok(Reply::Error { error }) => Err(error.into()),
        Ok(reply) => Ok(reply),
        Err(e) => {
            tracing::warn!("worker request failed: {e}");
            Err(ApiError::unavailable())
        }
    }
}

/// A reply of the wrong kind: a bug, never passed on.
pub(crate) fn unexpected(r: &Reply) -> ApiError {
    tracing::error!("the worker answered with an unexpected reply: {r:?}");
    ApiError::internal("the worker answered with an unexpected reply")
}
