//! Certificates and reports: search, the signed JSON document, the PDF,
//! verification against the appliance key.

use super::bays::limit;
use super::extract::{Who, P, Q};
use super::{ask, unexpected, ApiError, ApiState};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use lethe_wire::{CertFormat, CertQuery, CertView, Reply, Request};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `GET /api/v1/certificates`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CertSearch {
    /// Drive serial number (substring, case-insensitive).
    #[param(max_length = 128)]
    pub serial: Option<String>,
    /// Asset tag (substring, case-insensitive).
    #[param(max_length = 128)]
    pub asset_tag: Option<String>,
    /// Customer (substring, case-insensitive).
    #[param(max_length = 128)]
    pub customer: Option<String>,
    /// Issued at or after (RFC 3339 date or time).
    #[param(max_length = 128)]
    pub from: Option<String>,
    /// Issued before (RFC 3339 date or time).
    #[param(max_length = 128)]
    pub to: Option<String>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Search certificates and reports, newest first.
#[utoipa::path(get, path = "/api/v1/certificates", tag = "certificates", params(CertSearch),
    responses((status = 200, description = "Certificates, newest first", body = Vec<CertView>)))]
pub async fn search(
    State(st): State<ApiState>,
    who: Who,
    Q(q): Q<CertSearch>,
) -> Result<Json<Vec<CertView>>, ApiError> {
    let query = CertQuery {
        serial: q.serial,
        asset_tag: q.asset_tag,
        customer: q.customer,
        from: q.from,
        to: q.to,
        limit: Some(limit(q.limit, 100)?),
    };
    match ask(&st, &who, Request::Certificates { query }).await? {
        Reply::Certificates { certificates } => Ok(Json(certificates)),
        other => Err(unexpected(&other)),
    }
}

/// A document as the worker sent it: the bytes, if their type is the one
/// asked for.
fn document(r: Reply, want: &str) -> Result<Vec<u8>, ApiError> {
    match r {
        Reply::Document {
            content_type,
            base64,
        } if content_type == want => base64::engine::general_purpose::STANDARD
            .decode(base64.as_bytes())
            .map_err(|e| ApiError::internal(format!("the worker's document is not base64: {e}"))),
        other => Err(unexpected(&other)),
    }
}

/// A file name for `Content-Disposition`: the id when it is plain.
fn filename(id: &str, ext: &str) -> Option<HeaderValue> {
    let plain = !id.is_empty()
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    plain
        .then(|| HeaderValue::from_str(&format!("inline; filename=\"{id}.{ext}\"")).ok())
        .flatten()
}

fn download(bytes: Vec<u8>, content_type: &'static str, id: &str, ext: &str) -> Response {
    let mut resp = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        bytes,
    )
        .into_response();
    if let Some(d) = filename(id, ext) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, d);
    }
    resp
}

/// A certificate's signed JSON document, exactly as stored (its
/// signature covers these bytes).
#[utoipa::path(get, path = "/api/v1/certificates/{id}", tag = "certificates",
    params(("id" = String, Path, description = "The certificate's id", max_length = 128)),
    responses((status = 200, description = "The signed certificate document (`docs/certificate.md`)",
        content_type = "application/json", body = Object)))]
pub async fn json(
    State(st): State<ApiState>,
    who: Who,
    P(id): P<String>,
) -> Result<Response, ApiError> {
    stored(&st, &who, id, CertFormat::Json).await
}

/// A certificate's PDF rendering.
#[utoipa::path(get, path = "/api/v1/certificates/{id}/pdf", tag = "certificates",
    params(("id" = String, Path, description = "The certificate's id", max_length = 128)),
    responses((status = 200, description = "The PDF (binary)", content_type = "application/pdf",
        body = String)))]
pub async fn pdf(
    State(st): State<ApiState>,
    who: Who,
    P(id): P<String>,
) -> Result<Response, ApiError> {
    stored(&st, &who, id, CertFormat::Pdf).await
}

/// A stored certificate document in `format`, as a download.
async fn stored(
    st: &ApiState,
    who: &Who,
    id: String,
    format: CertFormat,
) -> Result<Response, ApiError> {
    let (content_type, ext) = match format {
        CertFormat::Json => ("application/json", "json"),
        CertFormat::Pdf => ("application/pdf", "pdf"),
    };
    let r = Request::Certificate {
        id: id.clone(),
        format,
    };
    let bytes = document(ask(st, who, r).await?, content_type)?;
    Ok(download(bytes, content_type, &id, ext))
}

/// A certificate's verification.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CertVerification {
    /// The certificate.
    pub certificate: CertView,
    /// The signature and every rule hold.
    pub ok: bool,
    /// What is wrong, when something is.
    pub problem: Option<String>,
}

/// Verify a stored certificate against the appliance key. A certificate
/// that does not verify is a 200 with `ok: false`.
#[utoipa::path(post, path = "/api/v1/certificates/{id}/verify", tag = "certificates",
    params(("id" = String, Path, description = "The certificate's id", max_length = 128)),
    responses((status = 200, description = "The verification", body = CertVerification)))]
pub async fn verify(
    State(st): State<ApiState>,
    who: Who,
    P(id): P<String>,
) -> Result<Json<CertVerification>, ApiError> {
    match ask(&st, &who, Request::CertificateVerify { id }).await? {
        Reply::CertificateVerified {
            certificate,
            ok,
            problem,
        } => Ok(Json(CertVerification {
            certificate,
            ok,
            problem,
        })),
        other => Err(unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_must_be_of_the_type_asked_for() {
        let r = |t: &str, b: &str| Reply::Document {
            content_type: t.into(),
            base64: b.into(),
        };
        assert_eq!(
            document(r("application/pdf", "JVBERi0="), "application/pdf").unwrap(),
            b"%PDF-"
        );
        assert_eq!(
            document(r("application/json", "JVBERi0="), "application/pdf")
                .unwrap_err()
                .status()
                .as_u16(),
            500
        );
        assert!(document(r("application/pdf", "%%%"), "application/pdf").is_err());
        assert_eq!(
            filename("cert-2026_1.x", "pdf").unwrap(),
            "inline; filename=\"cert-2026_1.x.pdf\""
        );
        assert!(filename("a\"b", "pdf").is_none());
    }
}
