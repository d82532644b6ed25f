//! API tokens: list, create (the secret shown once), revoke.

use super::extract::{Body, Who, P};
use super::{ask, unexpected, ApiError, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lethe_wire::{Reply, Request, RoleName, Secret, TokenView};
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
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
    #[serde(deserialize_with = "whole_number")]
    pub lifetime_secs: u64,
}

/// A whole number, also written with a zero fraction (`150.0`): JSON
/// Schema's `integer` (the document's type) counts it as one.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Whole;
    impl Visitor<'_> for Whole {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a whole number of seconds")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            // 2^64 is exact as an f64; below it a whole f64 fits in a u64.
            if v.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&v) {
                Ok(v as u64)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
    }
    d.deserialize_any(Whole)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lifetime(v: &str) -> Result<u64, String> {
        let body = format!(r#"{{"label":"x","role":"admin","lifetime_secs":{v}}}"#);
        serde_json::from_str::<TokenBody>(&body)
            .map(|b| b.lifetime_secs)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_lifetime_is_a_whole_number_however_written() {
        assert_eq!(lifetime("150"), Ok(150));
        assert_eq!(lifetime("150.0"), Ok(150));
        assert_eq!(lifetime("1e3"), Ok(1000));
        for bad in ["150.5", "-1", "-1.0", "1e20", "\"150\"", "null"] {
            assert!(lifetime(bad).is_err(), "{bad}");
        }
    }
}
