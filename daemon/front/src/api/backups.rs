//! A backup job's history (its backups, retention runs, drills and missed
//! slots) and a restore drill on demand. (The jobs with their last and
//! next runs are `GET /api/v1/backups`.)

use super::bays::{accepted, limit, JobRef, JobsQuery};
use super::extract::{Who, P, Q};
use super::{ask, unexpected, ApiError, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use lethe_wire::{BackupRunView, Reply, Request, SnapshotsView};

/// A configured backup job's history, newest first. Reports stay on the
/// appliance: they name files.
#[utoipa::path(get, path = "/api/v1/backups/{job}/history", tag = "backups",
    params(("job" = String, Path, description = "The backup job's name", max_length = 128), JobsQuery),
    responses((status = 200, description = "Runs, newest first", body = Vec<BackupRunView>)))]
pub async fn history(
    State(st): State<ApiState>,
    who: Who,
    P(job): P<String>,
    Q(q): Q<JobsQuery>,
) -> Result<Json<Vec<BackupRunView>>, ApiError> {
    let limit = limit(q.limit, 50)?;
    match ask(&st, &who, Request::BackupHistory { job, limit }).await? {
        Reply::BackupHistory { runs } => Ok(Json(runs)),
        other => Err(unexpected(&other)),
    }
}

/// Run a restore drill of the job now, as its schedule would: a sample of
/// the job's newest snapshot restored to private scratch space and compared
/// with the hashes recorded at backup time. Follow it with
/// `GET /api/v1/jobs/{job}/events`; its result is the job's.
#[utoipa::path(post, path = "/api/v1/backups/{job}/drill", tag = "backups",
    params(("job" = String, Path, description = "The backup job's name", max_length = 128)),
    responses((status = 202, description = "The drill was started", body = JobRef)))]
pub async fn drill(
    State(st): State<ApiState>,
    who: Who,
    P(job): P<String>,
) -> Result<(StatusCode, Json<JobRef>), ApiError> {
    accepted(ask(&st, &who, Request::BackupDrill { job }).await?)
}

/// The job's snapshots, read from its repository now, newest first, with
/// the count of damaged snapshot files and of tampering findings. Paths
/// and file names stay in the repository.
#[utoipa::path(get, path = "/api/v1/backups/{job}/snapshots", tag = "backups",
    params(("job" = String, Path, description = "The backup job's name", max_length = 128)),
    responses((status = 200, description = "Snapshots, newest first", body = SnapshotsView)))]
pub async fn snapshots(
    State(st): State<ApiState>,
    who: Who,
    P(job): P<String>,
) -> Result<Json<SnapshotsView>, ApiError> {
    match ask(&st, &who, Request::BackupSnapshots { job }).await? {
        Reply::BackupSnapshots { snapshots } => Ok(Json(snapshots)),
        other => Err(unexpected(&other)),
    }
}
