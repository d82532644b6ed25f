//! Security headers on every HTTPS response (errors and the fallback
//! included). The API serves JSON only: nothing may be framed, run as a
//! script, sniffed into another type, cached or sent as a referrer.

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

/// The headers and their values.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
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
    // Sessions, tokens and enrolments pass through here: never cached.
    ("cache-control", "no-store"),
];

/// Middleware: set [`SECURITY_HEADERS`] (replacing any a handler set).
pub async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    resp
}
