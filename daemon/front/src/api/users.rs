//! Users (admins): list, add, and one route for each change.

use super::extract::{Body, Who, P};
use super::{ask, unexpected, ApiError, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lethe_wire::{Enrolment, Reply, Request, RoleName, UserChange, UserView};
use serde::Deserialize;
use utoipa::ToSchema;

/// Every user.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, description = "Every user", body = Vec<UserView>)))]
pub async fn list(State(st): State<ApiState>, who: Who) -> Result<Json<Vec<UserView>>, ApiError> {
    match ask(&st, &who, Request::Users {}).await? {
        Reply::Users { users } => Ok(Json(users)),
        other => Err(unexpected(&other)),
    }
}

/// `POST /api/v1/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAddBody {
    /// Login name (`a-z 0-9 . _ -`, starting with a letter).
    #[schema(max_length = 128)]
    pub name: String,
    /// Role.
    pub role: RoleName,
    /// Give the `emergency` grant (may ask for break-glass access).
    #[serde(default)]
    pub emergency: bool,
}

/// Add a user. The answer (shown once) holds their one-time password,
/// the TOTP enrolment and recovery codes.
#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    request_body = UserAddBody,
    responses((status = 201, description = "Added: what to hand the user, shown once", body = Enrolment)))]
pub async fn add(
    State(st): State<ApiState>,
    who: Who,
    Body(b): Body<UserAddBody>,
) -> Result<(StatusCode, Json<Enrolment>), ApiError> {
    let r = Request::UserAdd {
        name: b.name,
        role: b.role,
        emergency: b.emergency,
    };
    match ask(&st, &who, r).await? {
        Reply::Enrolled { enrolment } => Ok((StatusCode::CREATED, Json(enrolment))),
        other => Err(unexpected(&other)),
    }
}

async fn change(
    st: &ApiState,
    who: &Who,
    name: String,
    change: UserChange,
) -> Result<Reply, ApiError> {
    ask(st, who, Request::UserChange { name, change }).await
}

/// The user as changed.
fn changed(r: Reply) -> Result<Json<UserView>, ApiError> {
    match r {
        Reply::User { user: Some(u) } => Ok(Json(u)),
        Reply::User { user: None } => Err(ApiError::not_found("no such user")),
        other => Err(unexpected(&other)),
    }
}

fn enrolled(r: Reply) -> Result<Json<Enrolment>, ApiError> {
    match r {
        Reply::Enrolled { enrolment } => Ok(Json(enrolment)),
        other => Err(unexpected(&other)),
    }
}

/// Remove a user (never the last enabled admin).
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "users",
    params(("name" = String, Path, description = "The login name", max_length = 128)),
    responses((status = 204, description = "Removed")))]
pub async fn remove(
    State(st): State<ApiState>,
    who: Who,
    P(name): P<String>,
) -> Result<Response, ApiError> {
    match change(&st, &who, name, UserChange::Remove {}).await? {
        Reply::User { user: None } => Ok(StatusCode::NO_CONTENT.into_response()),
        other => Err(unexpected(&other)),
    }
}

/// Disable a user: they cannot log in, their sessions end.
#[utoipa::path(post, path = "/api/v1/users/{name}/disable", tag = "users",
    params(("name" = String, Path, description = "The login name", max_length = 128)),
    responses((status = 200, description = "The user", body = UserView)))]
pub async fn disable(
    State(st): State<ApiState>,
    who: Who,
    P(name): P<String>,
) -> Result<Json<UserView>, ApiError> {
    changed(change(&st, &who, name, UserChange::Disable {}).await?)
}

/// Enable a user again.
#[utoipa::path(post, path = "/api/v1/users/{name}/enable", tag = "users",
    params(("name" = String, Path, description = "The login name", max_length = 128)),
    responses((status = 200, description = "The user", body = UserView)))]
pub async fn enable(
    State(st): State<ApiState>,
    who: Who,
    P(name): P<String>,
) -> Result<Json<UserView>, ApiError> {
    changed(change(&st, &who, name, UserChange::Enable {}).await?)
}

/// `POST /api/v1/users/{name}/role`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// The new role.
    pub role: RoleName,
}

/// Give a user another role; their sessions end.
#[utoipa::path(post, path = "/api/v1/users/{name}/role", tag = "users",
    params(("name" = String, Path, description = "The login name", max_length = 128)),
    request_body = RoleBody,
    responses((status = 200, description = "The user", body = UserView)))]
pub async fn set_role(
    State(st): State<ApiState>,
    who: Who,
    P(name): P<String>,
    Body(b): Body<RoleBody>,
) -> Result<Json<UserView>, ApiError> {
    changed(change(&st, &who, name, UserChange::SetRole { role: b.role }).await?)
}

/// `POST /api/v1/users/{name}/emergency`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyBody {
    /// Granted or not.
    pub granted: bool,
}

/// Give or take the `emergency` grant.
#[utoipa::path(post, path = "/api/v1/users/{name}/emergency", tag = "users",
    params(("name" = String, Path, description = "The login name", max_length = 128)),
    request_body = EmergencyBody,
    responses((status = 200, description = "The user", body = UserView)))]
pub async fn set_emergency(
    State(st): State<ApiState>,
    who: Who,
    P(name): P<String>,
    Body(b): Body<EmergencyBody>,
) -> Result<Json<UserView>, ApiError> {
    let c = UserChange::SetEmergency { granted: b.granted };
    changed(change(&st, &who, name, c).await?)
}

/// Lift a soft lock.
#[utoipa::path(post, path = "/api/v1/users/{name}/unlock", tag = "users",
    params(("name" = String, Path, description = "The login name", max_length = 128)),
    responses((status = 200, description = "The user", body = UserView)))]
pub async fn unlock(
    State(st): State<ApiState>,
    who: Who,
    P(name): P<String>,
) -> Result<Json<UserView>, ApiError> {
    changed(change(&st, &who, name, UserChange::Unlock {}).await?)
}

/// A one-time password for a user (changed at their next login); their
/// sessions end. The enrolment's TOTP fields and codes are empty.
#[utoipa::path(post, path = "/api/v1/users/{name}/reset-password", tag = "users",
    params(("name" = String, Path, description = "The login name", max_length = 128)),
    responses((status = 200, description = "The one-time password, shown once", body = Enrolment)))]
pub async fn reset_password(
    State(st): State<ApiState>,
    who: Who,
    P(name): P<String>,
) -> Result<Json<Enrolment>, ApiError> {
    enrolled(change(&st, &who, name, UserChange::ResetPassword {}).await?)
}

/// A new TOTP secret and recovery codes for a user; their sessions end.
#[utoipa::path(post, path = "/api/v1/users/{name}/reset-second-factor", tag = "users",
    params(("name" = String, Path, description = "The login name", max_length = 128)),
    responses((status = 200, description = "The new enrolment, shown once", body = Enrolment)))]
pub async fn reset_second_factor(
    State(st): State<ApiState>,
    who: Who,
    P(name): P<String>,
) -> Result<Json<Enrolment>, ApiError> {
    enrolled(change(&st, &who, name, UserChange::ResetSecondFactor {}).await?)
}
