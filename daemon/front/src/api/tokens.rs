//! API tokens: list, create (the secret shown once), revoke.

use super::extract::{Body, Who, P};
use super::{ask, unexpected, ApiError, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lethe_wire::{Reply, Request, RoleName, Secret, TokenView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// API tokens: one's own (admins see every token). Never their secrets.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, description = "The tokens", body = Vec<TokenView>)))]
pub async fn list(State(st): State<ApiState>, who: Who) -> Result<Json<Vec<TokenView>>, ApiError> {
    match ask(&st, &who, Request::Tokens {}).await? {
        Reply::Tokens { tokens } => Ok(Json(tokens)),
        other => Err(unexpected(&other)),
    }
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// A label (what the token is for).
    #[schema(max_length = 128)]
    pub label: String,
    /// The role it acts with: at most one's own.
    pub role: RoleName,
    /// Lifetime in seconds (at most 90 days).
    #[schema(minimum = 1, maximum = 7776000)]
    pub lifetime_secs: u64,
}

/// A new token and its secret, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The token.
    pub token: TokenView,
    /// The bearer secret (`Authorization: Bearer …`), shown this once.
    #[schema(value_type = String)]
    pub secret: Secret,
}

/// Create an API token for oneself. Its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body = TokenBody,
    responses((status = 201, description = "Created: the token and its secret, shown once", body = TokenCreated)))]
pub async fn create(
    State(st): State<ApiState>,
    who: Who,
    Body(b): Body<TokenBody>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let r = Request::TokenCreate {
        label: b.label,
        role: b.role,
        lifetime_secs: b.lifetime_secs,
    };
    match ask(&st, &who, r).await? {
        Reply::TokenCreated { token, secret } => {
            Ok((StatusCode::CREATED, Json(TokenCreated { token, secret })))
        }
        other => Err(unexpected(&other)),
    }
}

/// Revoke an API token (one's own; admins any).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "The token's public id", max_length = 128)),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke(
    State(st): State<ApiState>,
    who: Who,
    P(id): P<String>,
) -> Result<Response, ApiError> {
    match ask(&st, &who, Request::TokenRevoke { id }).await? {
        Reply::Done {} => Ok(StatusCode::NO_CONTENT.into_response()),
        other => Err(unexpected(&other)),
    }
}
