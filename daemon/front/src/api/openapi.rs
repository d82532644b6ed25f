//! The OpenAPI 3.1 document of the HTTPS API, generated from the code:
//! each handler's `#[utoipa::path]` (request and response schemas from the
//! very types the handlers use), completed from the route table
//! ([`super::ROUTES`]): the summary, the privilege (`x-lethe-privilege`
//! and a line of the description), polling (`x-lethe-polling`), the
//! worker request (`x-lethe-worker-request`), the security requirements
//! and the error responses.
//!
//! Served at `GET /api/v1/openapi.json`; a copy is committed as
//! `docs/api/openapi.json` and a test fails when they differ
//! (`LETHE_UPDATE_OPENAPI=1 cargo test -p lethe-front openapi` rewrites
//! it).

use super::routes::{Method, Route, PUBLIC, ROUTES};
use super::{
    audit, backups, bays, breakglass, certificates, controller, events, session, tokens, users,
};
use super::{ErrorBody, SESSION_COOKIE};
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use std::sync::OnceLock;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lethe HTTPS API",
        version = "1",
        description = "The JSON API of a Lethe appliance (media sanitization and backup). \
            Log in with `POST /api/v1/login` (password and TOTP code) to get the session \
            cookie, or send an API token as `Authorization: Bearer …`. Every operation \
            names the privilege it needs in `x-lethe-privilege` (`docs/auth.md`); the \
            appliance's worker checks it. Errors are `{\"error\":{\"code\",\"message\"}}`. \
            See `docs/api.md`.",
        license(name = "GPL-3.0-or-later", identifier = "GPL-3.0-or-later")
    ),
    paths(
        session::healthz,
        openapi_json,
        session::login,
        session::logout,
        session::logout_everywhere,
        session::reauth,
        session::whoami,
        session::change_password,
        bays::status,
        bays::bays,
        bays::start,
        bays::jobs,
        bays::cancel,
        bays::resume,
        events::job_events,
        bays::backups,
        backups::history,
        backups::drill,
        backups::snapshots,
        controller::status,
        certificates::search,
        certificates::json,
        certificates::pdf,
        certificates::verify,
        audit::entries,
        audit::export,
        audit::verify,
        audit::keys,
        users::list,
        users::add,
        users::remove,
        users::disable,
        users::enable,
        users::set_role,
        users::set_emergency,
        users::unlock,
        users::reset_password,
        users::reset_second_factor,
        tokens::list,
        tokens::create,
        tokens::revoke,
        breakglass::list,
        breakglass::request,
        breakglass::approve,
        breakglass::deny,
        breakglass::enter,
        breakglass::review,
    ),
    components(schemas(ErrorBody, events::ProgressEvent, events::EndEvent)),
    tags(
        (name = "health", description = "Is the appliance up"),
        (name = "meta", description = "This document"),
        (name = "session", description = "Logging in and out, re-authentication, one's own password"),
        (name = "drives", description = "Bays, drives and jobs"),
        (name = "backups", description = "Backup jobs"),
        (name = "controller", description = "The front-panel controller and degausser"),
        (name = "certificates", description = "Sanitization certificates and reports"),
        (name = "audit", description = "The audit log"),
        (name = "keys", description = "Key ids and fingerprints"),
        (name = "users", description = "User administration"),
        (name = "tokens", description = "API tokens"),
        (name = "breakglass", description = "Emergency access"),
    )
)]
struct ApiDoc;

/// The error responses, by name in `components.responses`: status, name,
/// description.
const ERRORS: &[(u16, &str, &str)] = &[
    (400, "BadRequest", "The request is malformed: bad JSON, an unknown field, a bad parameter, a string over its limit (`bad_request`)"),
    (401, "Unauthenticated", "No valid session or API token, or the login or re-authentication failed (`unauthenticated`)"),
    (403, "Forbidden", "The role does not hold the privilege (`forbidden`), the action needs a recent re-authentication (`reauth_required`), or policy refused it (`refused`)"),
    (404, "NotFound", "No such bay, job, certificate, user, token or request (`not_found`)"),
    (408, "RequestTimeout", "The request body did not arrive in time (`bad_request`)"),
    (409, "Conflict", "The request does not fit the current state (`conflict`)"),
    (413, "PayloadTooLarge", "The body is larger than 64 KiB (`bad_request`)"),
    (415, "UnsupportedMediaType", "The body is not `application/json` (`bad_request`)"),
    (429, "RateLimited", "Too many attempts: retry after `Retry-After` seconds (`rate_limited`)"),
    (500, "Internal", "A bug; see the appliance's log (`internal`)"),
    (503, "Unavailable", "The appliance's worker is not answering or cannot do it now (`unavailable`)"),
];

/// The worker requests that need a logged-in session: an API token gets
/// 401 (`unauthenticated`).
const SESSION_ONLY: &[&str] = &[
    "logout",
    "logout_everywhere",
    "reauth",
    "who_am_i",
    "change_password",
    "break_glass_enter",
];

/// The error statuses a route can answer.
fn errors_of(r: &Route, has_body: bool) -> Vec<u16> {
    if r.op.is_none() {
        return Vec::new();
    }
    if r.path == "/healthz" {
        return vec![500, 503];
    }
    let mut s = vec![400, 401, 403, 404, 409, 429, 500, 503];
    if has_body {
        s.extend([408, 413, 415]);
    }
    s.sort_unstable();
    s
}

fn operation<'a>(doc: &'a mut Document, r: &Route) -> &'a mut Operation {
    let item =
        doc.paths.paths.get_mut(r.path).unwrap_or_else(|| {
            panic!("{} is in the route table, not in the OpenAPI paths", r.path)
        });
    match r.method {
        Method::Get => item.get.as_mut(),
        Method::Post => item.post.as_mut(),
        Method::Delete => item.delete.as_mut(),
    }
    .unwrap_or_else(|| {
        panic!(
            "{} {} is in the route table, not in the OpenAPI document",
            r.method.as_str(),
            r.path
        )
    })
}

/// A route's `operationId`: its method and path (`post_bays_bay_start`),
/// unique as the routes are.
pub fn operation_id(r: &Route) -> String {
    let path = r.path.strip_prefix("/api/v1/").unwrap_or(r.path);
    let mut id = r.method.as_str().to_ascii_lowercase();
    id.push('_');
    for c in path.chars() {
        match c {
            '{' | '}' => {}
            c if c.is_ascii_alphanumeric() => id.push(c),
            _ if id.ends_with('_') => {}
            _ => id.push('_'),
        }
    }
    id.trim_end_matches('_').to_string()
}

/// The document: the handlers' paths completed from the route table.
pub fn document() -> Document {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The session cookie set by `POST /api/v1/login`",
        ))),
    );
    components.add_security_scheme(
        "token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API token (`POST /api/v1/tokens`)"))
                .build(),
        ),
    );
    for (status, name, description) in ERRORS {
        let mut resp = ResponseBuilder::new().description(*description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        );
        if *status == 429 {
            resp = resp.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    )
                    .description(Some("Seconds before trying again"))
                    .build(),
            );
        }
        components
            .responses
            .insert((*name).to_string(), RefOr::T(resp.build()));
    }
    for r in ROUTES {
        let op = operation(&mut doc, r);
        op.operation_id = Some(operation_id(r));
        // The handler's doc comment (utoipa's summary and description)
        // becomes the description; the summary is the table's.
        let doc_text: Vec<String> = [op.summary.take(), op.description.take()]
            .into_iter()
            .flatten()
            .filter(|t| !t.is_empty())
            .collect();
        op.summary = Some(r.summary.to_string());
        let privilege = if r.privilege == PUBLIC {
            "Public: no session or token.".to_string()
        } else {
            format!("Privilege: `{}`.", r.privilege)
        };
        let polling = if r.polling {
            " Polling: does not count as activity for the session's idle timeout."
        } else {
            ""
        };
        op.description = Some(if doc_text.is_empty() {
            format!("{privilege}{polling}")
        } else {
            format!("{privilege}{polling}\n\n{}", doc_text.join("\n\n"))
        });
        op.extensions = Some(Extensions::from_iter([
            ("x-lethe-privilege", json!(r.privilege)),
            ("x-lethe-polling", json!(r.polling)),
            ("x-lethe-worker-request", json!(r.op)),
        ]));
        op.security = Some(if r.privilege == PUBLIC {
            Vec::new()
        } else if r.op.is_some_and(|o| SESSION_ONLY.contains(&o)) {
            vec![SecurityRequirement::new("session", Vec::<String>::new())]
        } else {
            vec![
                SecurityRequirement::new("session", Vec::<String>::new()),
                SecurityRequirement::new("token", Vec::<String>::new()),
            ]
        });
        let has_body = op.request_body.is_some();
        for status in errors_of(r, has_body) {
            let (_, name, _) = ERRORS
                .iter()
                .find(|(s, _, _)| *s == status)
                .expect("every error status is described");
            op.responses.responses.insert(
                status.to_string(),
                RefOr::Ref(Ref::from_response_name(*name)),
            );
        }
    }
    doc
}

/// Objects with their keys in order, whatever map serde_json uses.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut sorted: Vec<_> = m.into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(sorted.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        v => v,
    }
}

/// The document as served and committed: pretty JSON, keys sorted.
pub fn json() -> String {
    let v = serde_json::to_value(document()).expect("the OpenAPI document serializes");
    let mut s = serde_json::to_string_pretty(&canonical(v)).expect("JSON serializes");
    s.push('\n');
    s
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> impl IntoResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOC.get_or_init(json).as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_session_only_request_is_a_route() {
        for op in SESSION_ONLY {
            assert!(ROUTES.iter().any(|r| r.op == Some(*op)), "{op}");
        }
    }
}
