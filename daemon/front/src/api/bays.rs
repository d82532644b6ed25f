//! Bays, jobs and backups: the appliance's status, the job history,
//! starting, stopping and resuming jobs.

use super::extract::{Body, Who, P, Q};
use super::{ask, unexpected, ApiError, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use lethe_wire::{BackupView, BayView, JobView, Reply, Request, StatusView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

async fn status_view(st: &ApiState, who: &Who) -> Result<StatusView, ApiError> {
    match ask(st, who, Request::Status {}).await? {
        Reply::Status { status } => Ok(status),
        other => Err(unexpected(&other)),
    }
}

/// Bays, running and interrupted jobs, backup jobs.
#[utoipa::path(get, path = "/api/v1/status", tag = "drives",
    responses((status = 200, description = "The appliance's state", body = StatusView)))]
pub async fn status(State(st): State<ApiState>, who: Who) -> Result<Json<StatusView>, ApiError> {
    Ok(Json(status_view(&st, &who).await?))
}

/// Every configured bay, in configuration order.
#[utoipa::path(get, path = "/api/v1/bays", tag = "drives",
    responses((status = 200, description = "The bays", body = Vec<BayView>)))]
pub async fn bays(State(st): State<ApiState>, who: Who) -> Result<Json<Vec<BayView>>, ApiError> {
    Ok(Json(status_view(&st, &who).await?.bays))
}

/// Every configured backup job with its last and next runs and drills.
#[utoipa::path(get, path = "/api/v1/backups", tag = "backups",
    responses((status = 200, description = "The backup jobs", body = Vec<BackupView>)))]
pub async fn backups(
    State(st): State<ApiState>,
    who: Who,
) -> Result<Json<Vec<BackupView>>, ApiError> {
    Ok(Json(status_view(&st, &who).await?.backups))
}

/// A page size: 1 to 1000.
pub(crate) fn limit(v: Option<u32>, default: u32) -> Result<u32, ApiError> {
    match v.unwrap_or(default) {
        n @ 1..=1000 => Ok(n),
        n => Err(ApiError::bad_request(format!(
            "limit must be between 1 and 1000, not {n}"
        ))),
    }
}

/// `GET /api/v1/jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The newest jobs of the job history, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "drives", params(JobsQuery),
    responses((status = 200, description = "Jobs, newest first", body = Vec<JobView>)))]
pub async fn jobs(
    State(st): State<ApiState>,
    who: Who,
    Q(q): Q<JobsQuery>,
) -> Result<Json<Vec<JobView>>, ApiError> {
    let limit = limit(q.limit, 50)?;
    match ask(&st, &who, Request::Jobs { limit }).await? {
        Reply::Jobs { jobs } => Ok(Json(jobs)),
        other => Err(unexpected(&other)),
    }
}

/// `POST /api/v1/bays/{bay}/start`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// The drive's serial number or its exact size in bytes, as the
    /// operator read it: checked against the device the job opens.
    #[schema(max_length = 128)]
    pub answer: String,
}

/// A job that was started, resumed or asked to stop.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobRef {
    /// The job's id.
    pub job: String,
}

pub(crate) fn accepted(r: Reply) -> Result<(StatusCode, Json<JobRef>), ApiError> {
    match r {
        Reply::Started { job } | Reply::Cancelling { job } => {
            Ok((StatusCode::ACCEPTED, Json(JobRef { job })))
        }
        other => Err(unexpected(&other)),
    }
}

/// Start the bay's job (wipe or purge, by the bay's level) on the drive
/// waiting in it. Needs a recent re-authentication.
#[utoipa::path(post, path = "/api/v1/bays/{bay}/start", tag = "drives",
    params(("bay" = String, Path, description = "The bay's name", max_length = 128)),
    request_body = StartBody,
    responses((status = 202, description = "The job was started", body = JobRef)))]
pub async fn start(
    State(st): State<ApiState>,
    who: Who,
    P(bay): P<String>,
    Body(b): Body<StartBody>,
) -> Result<(StatusCode, Json<JobRef>), ApiError> {
    let r = Request::StartBay {
        bay,
        answer: b.answer,
    };
    accepted(ask(&st, &who, r).await?)
}

/// Ask a running job to stop at its next safe point.
#[utoipa::path(post, path = "/api/v1/jobs/{job}/cancel", tag = "drives",
    params(("job" = String, Path, description = "The job's id", max_length = 128)),
    responses((status = 202, description = "The job was asked to stop", body = JobRef)))]
pub async fn cancel(
    State(st): State<ApiState>,
    who: Who,
    P(job): P<String>,
) -> Result<(StatusCode, Json<JobRef>), ApiError> {
    accepted(ask(&st, &who, Request::Cancel { job }).await?)
}

/// Resume an interrupted or stopped wipe on the drive it recorded.
#[utoipa::path(post, path = "/api/v1/jobs/{job}/resume", tag = "drives",
    params(("job" = String, Path, description = "The job's id", max_length = 128)),
    responses((status = 202, description = "The job was resumed", body = JobRef)))]
pub async fn resume(
    State(st): State<ApiState>,
    who: Who,
    P(job): P<String>,
) -> Result<(StatusCode, Json<JobRef>), ApiError> {
    accepted(ask(&st, &who, Request::Resume { job }).await?)
}
