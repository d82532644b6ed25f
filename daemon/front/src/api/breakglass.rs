//! Break-glass (emergency access): request, list, approve or deny, review.

use super::extract::{Body, Who, P};
use super::{ask, unexpected, ApiError, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use lethe_wire::{BreakGlassView, Reply, Request, SessionView};
use serde::Deserialize;
use utoipa::ToSchema;

fn requests(r: Reply) -> Result<Vec<BreakGlassView>, ApiError> {
    match r {
        Reply::BreakGlass { requests } => Ok(requests),
        other => Err(unexpected(&other)),
    }
}

/// The one request an action concerns.
fn one(r: Reply) -> Result<Json<BreakGlassView>, ApiError> {
    requests(r)?
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| ApiError::internal("the worker answered without the request"))
}

/// Open and recent break-glass requests: one's own; approvers see all.
#[utoipa::path(get, path = "/api/v1/breakglass", tag = "breakglass",
    responses((status = 200, description = "The requests", body = Vec<BreakGlassView>)))]
pub async fn list(
    State(st): State<ApiState>,
    who: Who,
) -> Result<Json<Vec<BreakGlassView>>, ApiError> {
    Ok(Json(requests(
        ask(&st, &who, Request::BreakGlassList {}).await?,
    )?))
}

/// `POST /api/v1/breakglass`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassBody {
    /// Why, for the approvers and the review (no patient data: approvers
    /// see it).
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

/// Ask for time-boxed elevated access (users with the `emergency` grant).
#[utoipa::path(post, path = "/api/v1/breakglass", tag = "breakglass",
    request_body = BreakGlassBody,
    responses((status = 201, description = "The request, pending", body = BreakGlassView)))]
pub async fn request(
    State(st): State<ApiState>,
    who: Who,
    Body(b): Body<BreakGlassBody>,
) -> Result<(StatusCode, Json<BreakGlassView>), ApiError> {
    let r = Request::BreakGlassRequest { reason: b.reason };
    Ok((StatusCode::CREATED, one(ask(&st, &who, r).await?)?))
}

async fn decide(
    st: &ApiState,
    who: &Who,
    id: String,
    approve: bool,
) -> Result<Json<BreakGlassView>, ApiError> {
    one(ask(st, who, Request::BreakGlassDecide { id, approve }).await?)
}

/// Approve a break-glass request (configured approvers; not one's own).
#[utoipa::path(post, path = "/api/v1/breakglass/{id}/approve", tag = "breakglass",
    params(("id" = String, Path, description = "The request's id", max_length = 128)),
    responses((status = 200, description = "The request, granted", body = BreakGlassView)))]
pub async fn approve(
    State(st): State<ApiState>,
    who: Who,
    P(id): P<String>,
) -> Result<Json<BreakGlassView>, ApiError> {
    decide(&st, &who, id, true).await
}

/// Deny a break-glass request (configured approvers; not one's own).
#[utoipa::path(post, path = "/api/v1/breakglass/{id}/deny", tag = "breakglass",
    params(("id" = String, Path, description = "The request's id", max_length = 128)),
    responses((status = 200, description = "The request, denied", body = BreakGlassView)))]
pub async fn deny(
    State(st): State<ApiState>,
    who: Who,
    P(id): P<String>,
) -> Result<Json<BreakGlassView>, ApiError> {
    decide(&st, &who, id, false).await
}

/// Use a granted break-glass request in this session (the requester's
/// own, sessions only): its privileges apply until it ends, every action
/// tagged with it. Sensitive actions still need a re-authentication.
#[utoipa::path(post, path = "/api/v1/breakglass/{id}/enter", tag = "breakglass",
    params(("id" = String, Path, description = "The request's id", max_length = 128)),
    responses((status = 200, description = "The session, elevated (`elevated_until`)", body = SessionView)))]
pub async fn enter(
    State(st): State<ApiState>,
    who: Who,
    P(id): P<String>,
) -> Result<Json<SessionView>, ApiError> {
    match ask(&st, &who, Request::BreakGlassEnter { id }).await? {
        Reply::Session { session } => Ok(Json(session)),
        other => Err(unexpected(&other)),
    }
}

/// `POST /api/v1/breakglass/{id}/review`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// What was done and why it was justified.
    #[schema(min_length = 1, max_length = 4096)]
    pub notes: String,
}

/// The review that closes an ended episode (someone other than the
/// requester).
#[utoipa::path(post, path = "/api/v1/breakglass/{id}/review", tag = "breakglass",
    params(("id" = String, Path, description = "The request's id", max_length = 128)),
    request_body = ReviewBody,
    responses((status = 200, description = "The request, reviewed", body = BreakGlassView)))]
pub async fn review(
    State(st): State<ApiState>,
    who: Who,
    P(id): P<String>,
    Body(b): Body<ReviewBody>,
) -> Result<Json<BreakGlassView>, ApiError> {
    let r = Request::BreakGlassReview { id, notes: b.notes };
    one(ask(&st, &who, r).await?)
}
