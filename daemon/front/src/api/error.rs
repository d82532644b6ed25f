//! One error shape for the whole HTTPS API:
//! `{"error":{"code":"<snake_case>","message":"…"}}` (and
//! `"retry_after_secs"` with a `Retry-After` header on `rate_limited`).
//!
//! The codes are the worker's [`ErrorCode`]s. Each code has one status
//! ([`status_of`]); the HTTP layer's own refusals keep their more precise
//! status with the code `bad_request` (405 wrong method, 408 slow body,
//! 413 body too large, 415 not JSON). [`json_errors`] rewrites any error
//! response that is not already in this shape (axum's own 404, 405 and
//! body-limit answers), so no error leaves without a JSON body.

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, Response as HttpResponse, StatusCode};
use axum::response::{IntoResponse, Response};
use lethe_wire::{ErrorCode, WireError};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: WireError,
}

/// An error as the HTTPS API answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    error: WireError,
}

/// The status of each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::Refused | ErrorCode::Forbidden | ErrorCode::ReauthRequired => {
            StatusCode::FORBIDDEN
        }
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
    }
}

/// The code of an error status the HTTP layer produced by itself.
pub fn code_of(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::Unavailable,
        500..=599 => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    }
}

impl ApiError {
    /// An error of class `code`, with its status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: status_of(code),
            error: WireError::new(code, message),
        }
    }

    /// The same error with a more precise status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The worker did not answer (the details go to the log, not to the
    /// client: they name the worker's socket).
    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::Unavailable,
            "the appliance's worker is not answering; try again shortly",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error as the body carries it.
    pub fn error(&self) -> &WireError {
        &self.error
    }

    /// An HTTP-layer rejection (its status kept, 422 answered as 400).
    pub fn rejection(status: StatusCode, message: impl Into<String>) -> Self {
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        Self::new(code_of(status), message).with_status(status)
    }
}

impl From<WireError> for ApiError {
    fn from(error: WireError) -> Self {
        ApiError {
            status: status_of(error.code),
            error,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let message = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                "the body must be JSON with `Content-Type: application/json`".to_string()
            }
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                format!("the body is larger than {} bytes", super::MAX_BODY)
            }
            _ => r.body_text(),
        };
        Self::rejection(r.status(), message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::rejection(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::rejection(r.status(), r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.error.retry_after_secs;
        let body = serde_json::to_vec(&ErrorBody { error: self.error })
            .expect("an error body always serializes");
        let mut resp = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(secs) = retry {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

fn is_json(resp: &HttpResponse<Body>) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Middleware: an error response that is not JSON (axum's own 404, 405 or
/// 413, a layer's refusal) gets the API's error body; its other headers
/// (`Allow` on a 405) are kept.
pub async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&resp) {
        return resp;
    }
    let message = match status {
        StatusCode::NOT_FOUND => "no such route".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "this route does not take that method".to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the body is larger than {} bytes", super::MAX_BODY)
        }
        s => s
            .canonical_reason()
            .unwrap_or("the request was not carried out")
            .to_string(),
    };
    let (mut parts, _) = resp.into_parts();
    let fresh = ApiError::new(code_of(status), message)
        .with_status(status)
        .into_response();
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (k, v) in &fresh_parts.headers {
        parts.headers.insert(k, v.clone());
    }
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn every_code_has_its_status() {
        for (code, status, name) in [
            (ErrorCode::BadRequest, 400, "bad_request"),
            (ErrorCode::Unauthenticated, 401, "unauthenticated"),
            (ErrorCode::Refused, 403, "refused"),
            (ErrorCode::Forbidden, 403, "forbidden"),
            (ErrorCode::ReauthRequired, 403, "reauth_required"),
            (ErrorCode::NotFound, 404, "not_found"),
            (ErrorCode::Conflict, 409, "conflict"),
            (ErrorCode::RateLimited, 429, "rate_limited"),
            (ErrorCode::Internal, 500, "internal"),
            (ErrorCode::Unavailable, 503, "unavailable"),
        ] {
            assert_eq!(status_of(code).as_u16(), status, "{code:?}");
            assert_eq!(serde_json::to_value(code).unwrap(), name);
            // Every status a code has maps back to a code of that status.
            assert_eq!(status_of(code_of(status_of(code))), status_of(code));
        }
    }

    #[tokio::test]
    async fn a_bare_error_gets_the_json_shape_and_keeps_its_headers() {
        let resp = Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET,HEAD")
            .header(header::CONTENT_LENGTH, "0")
            .body(Body::empty())
            .unwrap();
        let resp = json_errors(resp).await;
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[header::ALLOW], "GET,HEAD");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "bad_request");
        assert_eq!(
            v["error"]["message"],
            "this route does not take that method"
        );
    }

    #[tokio::test]
    async fn rate_limited_says_when_to_retry() {
        let mut e = WireError::new(ErrorCode::RateLimited, "too many login attempts");
        e.retry_after_secs = Some(6);
        let resp = ApiError::from(e).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "6");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"error":{"code":"rate_limited","message":"too many login attempts","retry_after_secs":6}}"#
        );
    }
}
