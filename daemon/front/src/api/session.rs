//! Logging in and out, re-authentication, the session, one's own password;
//! and the public health check.
//!
//! Login answers the session and sets the session cookie
//! `__Host-lethe_session` (`Path=/; Secure; HttpOnly; SameSite=Strict`, no
//! `Max-Age`: the worker ends the session, the browser forgets the cookie
//! when it closes). Logging out clears it (`Max-Age=0`), whatever the
//! worker answered: the client asked to be logged out.

use super::extract::{Body, Who, SESSION_COOKIE};
use super::{ask, unexpected, ApiError, ApiState};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lethe_wire::{Reply, Request, Secret, SessionView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /healthz` over HTTPS: up or not, nothing more (no version, no
/// counts: it needs no login).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` (a worker that does not answer is a 503 error).
    #[schema(example = "ok")]
    pub status: String,
}

/// Is the appliance up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The worker answers", body = Health)))]
pub async fn healthz(State(st): State<ApiState>, who: Who) -> Result<Json<Health>, ApiError> {
    match ask(&st, &who, Request::Health {}).await? {
        Reply::Health { .. } => Ok(Json(Health {
            status: "ok".into(),
        })),
        other => Err(unexpected(&other)),
    }
}

/// `POST /api/v1/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The user name.
    #[schema(max_length = 128)]
    pub username: String,
    /// The password.
    #[schema(value_type = String, max_length = 1024)]
    pub password: Secret,
    /// A TOTP code, or a recovery code.
    #[schema(value_type = String, max_length = 1024)]
    pub totp: Secret,
}

/// A cookie value the worker made: base64url, checked again here so that
/// nothing else ever reaches a `Set-Cookie` header.
fn cookie_value_ok(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~'))
}

/// The `Set-Cookie` header of a new session.
pub fn session_cookie(value: &str) -> Result<HeaderValue, ApiError> {
    if !cookie_value_ok(value) {
        return Err(ApiError::internal(
            "the worker's session cookie value is not a cookie value",
        ));
    }
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .map_err(|_| ApiError::internal("the session cookie is not a header value"))
}

/// The `Set-Cookie` header that removes the session cookie.
pub fn cleared_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-lethe_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// Log in with password and second factor together. Every failure is the
/// same `unauthenticated` answer, after the same delay. Sets the session
/// cookie.
#[utoipa::path(post, path = "/api/v1/login", tag = "session",
    request_body = LoginBody,
    responses((status = 200, description = "Logged in: the session; the cookie is set",
        body = SessionView,
        headers(("set-cookie" = String, description = "`__Host-lethe_session=…; Path=/; Secure; HttpOnly; SameSite=Strict`")))))]
pub async fn login(
    State(st): State<ApiState>,
    who: Who,
    Body(b): Body<LoginBody>,
) -> Result<Response, ApiError> {
    let r = Request::Login {
        username: b.username,
        password: b.password,
        totp: b.totp,
    };
    match ask(&st, &who, r).await? {
        Reply::LoggedIn { session, cookie } => {
            let set = session_cookie(cookie.expose())?;
            Ok(([(header::SET_COOKIE, set)], Json(session)).into_response())
        }
        other => Err(unexpected(&other)),
    }
}

fn logged_out(r: Result<Reply, ApiError>) -> Response {
    let mut resp = match r {
        Ok(Reply::Done {}) => StatusCode::NO_CONTENT.into_response(),
        Ok(other) => unexpected(&other).into_response(),
        Err(e) => e.into_response(),
    };
    resp.headers_mut()
        .insert(header::SET_COOKIE, cleared_cookie());
    resp
}

/// End this session. The cookie is cleared whatever the answer.
#[utoipa::path(post, path = "/api/v1/logout", tag = "session",
    responses((status = 204, description = "Logged out; the cookie is cleared",
        headers(("set-cookie" = String, description = "`__Host-lethe_session=; …; Max-Age=0`")))))]
pub async fn logout(State(st): State<ApiState>, who: Who) -> Response {
    logged_out(ask(&st, &who, Request::Logout {}).await)
}

/// End every session of this user. The cookie is cleared whatever the
/// answer.
#[utoipa::path(post, path = "/api/v1/logout-everywhere", tag = "session",
    responses((status = 204, description = "Every session of the user ended; the cookie is cleared",
        headers(("set-cookie" = String, description = "`__Host-lethe_session=; …; Max-Age=0`")))))]
pub async fn logout_everywhere(State(st): State<ApiState>, who: Who) -> Response {
    logged_out(ask(&st, &who, Request::LogoutEverywhere {}).await)
}

/// `POST /api/v1/reauth`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthBody {
    /// The password.
    #[schema(value_type = String, max_length = 1024)]
    pub password: Secret,
    /// A TOTP code, or a recovery code.
    #[schema(value_type = String, max_length = 1024)]
    pub totp: Secret,
}

fn session_of(r: Reply) -> Result<Json<SessionView>, ApiError> {
    match r {
        Reply::Session { session } => Ok(Json(session)),
        other => Err(unexpected(&other)),
    }
}

/// Password and second factor again: destructive actions are allowed for
/// a few minutes (`reauth_until`). Sessions only; API tokens cannot.
#[utoipa::path(post, path = "/api/v1/reauth", tag = "session",
    request_body = ReauthBody,
    responses((status = 200, description = "Re-authenticated: the session", body = SessionView)))]
pub async fn reauth(
    State(st): State<ApiState>,
    who: Who,
    Body(b): Body<ReauthBody>,
) -> Result<Json<SessionView>, ApiError> {
    let r = Request::Reauth {
        password: b.password,
        totp: b.totp,
    };
    session_of(ask(&st, &who, r).await?)
}

/// This session: who, which role and privileges, when it ends.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, description = "The session", body = SessionView)))]
pub async fn whoami(State(st): State<ApiState>, who: Who) -> Result<Json<SessionView>, ApiError> {
    session_of(ask(&st, &who, Request::WhoAmI {}).await?)
}

/// `POST /api/v1/session/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// The current password.
    #[schema(value_type = String, max_length = 1024)]
    pub current: Secret,
    /// The new one (checked against the password policy).
    #[schema(value_type = String, max_length = 1024)]
    pub new: Secret,
}

/// Change one's own password (the only thing a session with a one-time
/// password may do).
#[utoipa::path(post, path = "/api/v1/session/password", tag = "session",
    request_body = PasswordBody,
    responses((status = 200, description = "Changed: the session", body = SessionView)))]
pub async fn change_password(
    State(st): State<ApiState>,
    who: Who,
    Body(b): Body<PasswordBody>,
) -> Result<Json<SessionView>, ApiError> {
    let r = Request::ChangePassword {
        current: b.current,
        new: b.new,
    };
    session_of(ask(&st, &who, r).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_token_becomes_a_cookie() {
        let v = session_cookie("Zm9vYmFy-_x").unwrap();
        assert_eq!(
            v,
            "__Host-lethe_session=Zm9vYmFy-_x; Path=/; Secure; HttpOnly; SameSite=Strict"
        );
        for bad in ["", "a;Domain=evil", "a b", "a\"", "a,b", "a\\b"] {
            assert!(session_cookie(bad).is_err(), "{bad:?}");
        }
    }
}
