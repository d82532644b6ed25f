//! The audit log (entries, export, verification) and the keys.

use super::bays::limit;
use super::extract::{Who, Q};
use super::{ask, unexpected, ApiError, ApiState};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lethe_wire::{AuditVerifyView, AuditView, KeyView, Reply, Request};
use serde::Deserialize;
use utoipa::IntoParams;

/// `GET /api/v1/audit` and `GET /api/v1/audit/export`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many (default 100 for the entries, 1000 for the
    /// export).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only entries before this position (`seq`): the next page back.
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub before: Option<u64>,
}

/// The largest `before`: the document's `int64` (a position is never
/// larger).
const MAX_BEFORE: u64 = i64::MAX as u64;

async fn entries_of(
    st: &ApiState,
    who: &Who,
    q: AuditQuery,
    default: u32,
) -> Result<Vec<AuditView>, ApiError> {
    if let Some(b) = q.before.filter(|b| *b > MAX_BEFORE) {
        return Err(ApiError::bad_request(format!(
            "before must be at most {MAX_BEFORE}, not {b}"
        )));
    }
    let r = Request::Audit {
        limit: limit(q.limit, default)?,
        before: q.before,
    };
    match ask(st, who, r).await? {
        Reply::Audit { entries } => Ok(entries),
        other => Err(unexpected(&other)),
    }
}

/// The newest audit-log entries, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "Entries, newest first", body = Vec<AuditView>)))]
pub async fn entries(
    State(st): State<ApiState>,
    who: Who,
    Q(q): Q<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    Ok(Json(entries_of(&st, &who, q, 100).await?))
}

/// Entries as JSON lines, oldest first: one `AuditView` object a line.
/// A page holds at most 1000 entries; the next page back is `before` the
/// first line's `seq`.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "One AuditView JSON object a line, oldest first",
        content_type = "application/x-ndjson", body = String)))]
pub async fn export(
    State(st): State<ApiState>,
    who: Who,
    Q(q): Q<AuditQuery>,
) -> Result<Response, ApiError> {
    let mut entries = entries_of(&st, &who, q, 1000).await?;
    entries.reverse();
    let mut out = Vec::new();
    for e in &entries {
        serde_json::to_writer(&mut out, e).expect("an audit view always serializes");
        out.push(b'\n');
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"lethe-audit.jsonl\""),
            ),
        ],
        out,
    )
        .into_response())
}

/// Verify the whole audit log: the hash chain, the Merkle tree and every
/// signed checkpoint. A log that does not verify is a 200 with `ok: false`.
#[utoipa::path(post, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "The verification", body = AuditVerifyView)))]
pub async fn verify(
    State(st): State<ApiState>,
    who: Who,
) -> Result<Json<AuditVerifyView>, ApiError> {
    match ask(&st, &who, Request::AuditVerify {}).await? {
        Reply::AuditVerified { verify } => Ok(Json(verify)),
        other => Err(unexpected(&other)),
    }
}

/// Key ids and fingerprints (never key material).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, description = "The keys", body = Vec<KeyView>)))]
pub async fn keys(State(st): State<ApiState>, who: Who) -> Result<Json<Vec<KeyView>>, ApiError> {
    match ask(&st, &who, Request::Keys {}).await? {
        Reply::Keys { keys } => Ok(Json(keys)),
        other => Err(unexpected(&other)),
    }
}
