//! `GET /api/v1/jobs/{job}/events`: a job's progress as server-sent
//! events.
//!
//! The front asks the worker for the status (`status`, as polling: it does
//! not keep the session alive) every [`super::ApiOptions::progress_interval`]
//! and sends
//!
//! - `progress` (a [`ProgressEvent`]) when the job's progress or state
//!   changed since the last one sent;
//! - `end` (an [`EndEvent`]) once the job is no longer running: its state
//!   from the interrupted list or, when it finished, from the job history
//!   (one `jobs` request); then the stream ends;
//! - `error` (the API's error body) when the worker refuses (the session
//!   ended, say) or does not answer; then the stream ends.
//!
//! Comment lines keep an idle connection open. A job that is neither
//! running nor in the history is a 404 before the stream starts; a job that
//! already ended gets its `end` event alone. Clients should stop on `end`
//! (an `EventSource` would otherwise reconnect and get it again).

use super::extract::{Who, P};
use super::{ask, unexpected, ApiError, ApiState, ErrorBody};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use lethe_wire::{JobState, JobView, ProgressView, Reply, Request};
use serde::Serialize;
use std::convert::Infallible;
use tokio::sync::mpsc;
use utoipa::ToSchema;

/// The data of a `progress` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProgressEvent {
    /// The job.
    pub job: String,
    /// Its state (`running` while it runs).
    pub state: JobState,
    /// Its progress, when the worker knows it.
    pub progress: Option<ProgressView>,
}

/// The data of the `end` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EndEvent {
    /// The job.
    pub job: String,
    /// How it ended (none: no longer in the newest 1000 jobs of the
    /// history).
    pub state: Option<JobState>,
    /// Its certificate or report, once issued.
    pub certificate: Option<String>,
}

/// Where the job is, as one status shows it.
enum Seen {
    Running(ProgressEvent),
    Stopped(JobView),
    Gone,
}

fn progress_of(j: &JobView) -> ProgressEvent {
    ProgressEvent {
        job: j.id.clone(),
        state: j.state,
        progress: j.progress.clone(),
    }
}

async fn look(st: &ApiState, who: &Who, job: &str) -> Result<Seen, ApiError> {
    match ask(st, who, Request::Status {}).await? {
        Reply::Status { status } => {
            if let Some(j) = status.running.iter().find(|j| j.id == job) {
                return Ok(Seen::Running(progress_of(j)));
            }
            Ok(status
                .interrupted
                .into_iter()
                .find(|j| j.id == job)
                .map_or(Seen::Gone, Seen::Stopped))
        }
        other => Err(unexpected(&other)),
    }
}

/// The job's end, from the history.
async fn ending(st: &ApiState, who: &Who, job: &str) -> Result<Option<EndEvent>, ApiError> {
    match ask(st, who, Request::Jobs { limit: 1000 }).await? {
        Reply::Jobs { jobs } => Ok(jobs.into_iter().find(|j| j.id == job).map(end_of)),
        other => Err(unexpected(&other)),
    }
}

fn end_of(j: JobView) -> EndEvent {
    EndEvent {
        job: j.id,
        state: Some(j.state),
        certificate: j.certificate,
    }
}

fn event(name: &str, data: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).expect("event data always serializes"))
}

fn error_event(e: ApiError) -> Event {
    event(
        "error",
        &ErrorBody {
            error: e.error().clone(),
        },
    )
}

/// Follow the job until it ends, the worker refuses, or the client leaves.
async fn follow(
    st: ApiState,
    who: Who,
    job: String,
    first: ProgressEvent,
    tx: mpsc::Sender<Event>,
) {
    let mut last = first;
    if tx.send(event("progress", &last)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(st.options.progress_interval) => {}
        }
        let seen = match look(&st, &who, &job).await {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(error_event(e)).await;
                return;
            }
        };
        let end = match seen {
            Seen::Running(p) => {
                if p != last {
                    if tx.send(event("progress", &p)).await.is_err() {
                        return;
                    }
                    last = p;
                }
                continue;
            }
            Seen::Stopped(j) => Ok(Some(end_of(j))),
            Seen::Gone => ending(&st, &who, &job).await,
        };
        let ev = match end {
            Ok(e) => event(
                "end",
                &e.unwrap_or(EndEvent {
                    job: job.clone(),
                    state: None,
                    certificate: None,
                }),
            ),
            Err(e) => error_event(e),
        };
        let _ = tx.send(ev).await;
        return;
    }
}

/// A job's progress as server-sent events (`progress`, then `end`; or
/// `error`). See the module documentation for the events.
#[utoipa::path(get, path = "/api/v1/jobs/{job}/events", tag = "drives",
    params(("job" = String, Path, description = "The job's id", max_length = 128)),
    responses((status = 200,
        description = "A stream of server-sent events: `progress` (data: a ProgressEvent) whenever the progress changes, then `end` (data: an EndEvent) when the job is no longer running, or `error` (data: an ErrorBody); comment lines keep the connection open",
        content_type = "text/event-stream", body = String)))]
pub async fn job_events(
    State(st): State<ApiState>,
    who: Who,
    P(job): P<String>,
) -> Result<Response, ApiError> {
    let first = match look(&st, &who, &job).await? {
        Seen::Running(p) => p,
        Seen::Stopped(j) => return Ok(once(event("end", &end_of(j)), &st)),
        Seen::Gone => match ending(&st, &who, &job).await? {
            Some(e) => return Ok(once(event("end", &e), &st)),
            None => return Err(ApiError::not_found(format!("no job {job}"))),
        },
    };
    let (tx, rx) = mpsc::channel(4);
    let keep_alive = st.options.keep_alive;
    tokio::spawn(follow(st, who, job, first, tx));
    let events = stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response())
}

fn once(e: Event, st: &ApiState) -> Response {
    Sse::new(stream::iter([Ok::<_, Infallible>(e)]))
        .keep_alive(KeepAlive::new().interval(st.options.keep_alive))
        .into_response()
}
