//! What each worker-socket request does. Reads (status, jobs, metrics) are
//! answered from the bay book, the running jobs and the histories; the
//! requests that change a bay (`start_bay`, `resume`) go through the bay
//! thread, in order with arrivals and job ends.

use crate::daemon::Daemon;
use crate::hotplug::BayMsg;
use lethe_jobs::history;
use lethe_store::JobStatus;
use lethe_wire::{
    BackupMetrics, BackupView, Caller, DaemonView, ErrorCode, HealthView, JobState, JobView,
    MetricsView, Reply, Request, StateCount, StatusView, Via, WireError,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The wire state of a stored job status.
pub fn job_state(s: JobStatus) -> JobState {
    match s {
        JobStatus::Running => JobState::Running,
        JobStatus::Interrupted => JobState::Interrupted,
        JobStatus::Incomplete => JobState::Incomplete,
        JobStatus::Pass => JobState::Passed,
        JobStatus::Fail => JobState::Failed,
        JobStatus::ClearOnly => JobState::ClearOnly,
        JobStatus::Unverified => JobState::Unverified,
        JobStatus::NotStarted => JobState::NotStarted,
    }
}

fn err(code: ErrorCode, m: impl Into<String>) -> Reply {
    Reply::Error {
        error: WireError::new(code, m),
    }
}

/// Answer one request: those of the HTTPS API go through authentication
/// and authorisation first ([`crate::api`]); those of the local API socket
/// (the appliance's own command line) are answered here.
pub async fn handle(d: &Arc<Daemon>, caller: Caller, request: Request) -> Reply {
    if caller.via != Via::Cli {
        return crate::api::handle(d, caller, request).await;
    }
    local(d, caller, request).await
}

/// Answer a request of the local API socket, or a read the API authorised.
pub async fn local(d: &Arc<Daemon>, caller: Caller, request: Request) -> Reply {
    if d.stopping() && matches!(request, Request::StartBay { .. } | Request::Resume { .. }) {
        return err(ErrorCode::Unavailable, "the daemon is stopping");
    }
    match request {
        Request::Health {} => Reply::Health {
            health: HealthView {
                version: env!("CARGO_PKG_VERSION").into(),
                uptime_secs: d.started.elapsed().as_secs(),
                jobs_running: d.jobs.running().len() as u32,
            },
        },
        Request::Status {} => {
            blocking(d, |d| status(d).map(|status| Reply::Status { status })).await
        }
        Request::Jobs { limit } => {
            blocking(d, move |d| {
                jobs(d, limit.min(1000)).map(|jobs| Reply::Jobs { jobs })
            })
            .await
        }
        Request::Metrics {} => {
            blocking(d, |d| metrics(d).map(|metrics| Reply::Metrics { metrics })).await
        }
        Request::Controller {} => {
            let panel = d.panel.clone();
            let port = d
                .cfg
                .controller
                .as_ref()
                .map(|c| c.port.display().to_string());
            match tokio::task::spawn_blocking(move || controller_view(panel.as_deref(), port)).await
            {
                Ok(controller) => Reply::Controller { controller },
                Err(e) => err(ErrorCode::Internal, e.to_string()),
            }
        }
        Request::BackupHistory { job, limit } => {
            blocking(d, move |d| backup_history(d, &job, limit.min(1000))).await
        }
        Request::Cancel { job } => {
            if d.jobs.cancel(&job) {
                tracing::info!("job {job}: stop requested by uid {:?}", caller.uid);
                Reply::Cancelling { job }
            } else {
                err(
                    ErrorCode::NotFound,
                    format!("job {job} is not running here"),
                )
            }
        }
        Request::StartBay { bay, answer } => {
            let (reply, rx) = tokio::sync::oneshot::channel();
            via_bays(
                d,
                BayMsg::StartBay {
                    bay,
                    answer,
                    origin: crate::hotplug::origin_of(&caller, None),
                    reply,
                },
                rx,
            )
            .await
        }
        Request::Resume { job } => {
            let (reply, rx) = tokio::sync::oneshot::channel();
            let origin = crate::hotplug::origin_of(&caller, None);
            via_bays(d, BayMsg::Resume { job, origin, reply }, rx).await
        }
        _ => err(
            ErrorCode::BadRequest,
            "this request is served by the HTTPS API only (/api/v1)",
        ),
    }
}

pub(crate) async fn via_bays(
    d: &Daemon,
    msg: BayMsg,
    rx: tokio::sync::oneshot::Receiver<Result<String, WireError>>,
) -> Reply {
    if d.bay_tx.send(msg).is_err() {
        return err(ErrorCode::Unavailable, "the bay thread has stopped");
    }
    match rx.await {
        Ok(Ok(job)) => Reply::Started { job },
        Ok(Err(error)) => Reply::Error { error },
        Err(_) => err(ErrorCode::Unavailable, "the bay thread has stopped"),
    }
}

async fn blocking(
    d: &Arc<Daemon>,
    f: impl FnOnce(&Daemon) -> Result<Reply, String> + Send + 'static,
) -> Reply {
    let d = Arc::clone(d);
    match tokio::task::spawn_blocking(move || f(&d)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => err(ErrorCode::Unavailable, e),
        Err(e) => err(ErrorCode::Internal, e.to_string()),
    }
}

fn bay_of(d: &Daemon, job: &str) -> Option<String> {
    let book = Daemon::lock(&d.book);
    book.slot_of_job(job)
        .map(|s| book.bay_name(s.bay).to_string())
}

fn view(d: &Daemon, r: &lethe_store::JobRecord) -> JobView {
    JobView {
        id: r.id.clone(),
        kind: r.kind.clone(),
        state: job_state(r.status),
        device: r.device_path.clone(),
        bay: bay_of(d, &r.id),
        created_at: r.created_at.clone(),
        updated_at: r.updated_at.clone(),
        certificate: r.certificate.clone(),
        progress: Daemon::lock(&d.progress).get(&r.id).cloned(),
    }
}

fn jobs(d: &Daemon, limit: u32) -> Result<Vec<JobView>, String> {
    let list = history::list(&d.state, d.clock.as_ref()).map_err(|e| e.to_string())?;
    Ok(list
        .iter()
        .take(limit as usize)
        .map(|r| view(d, r))
        .collect())
}

/// A configured backup job's history, newest first (an unknown job is
/// `not_found`: names outside the configuration are not looked up).
fn backup_history(d: &Daemon, job: &str, limit: u32) -> Result<Reply, String> {
    if !d.cfg.backups.iter().any(|b| b.name.as_str() == job) {
        return Ok(err(
            ErrorCode::NotFound,
            format!("no backup job {job:?} in the configuration"),
        ));
    }
    let store = lethe_store::JobStore::open(d.state.root()).map_err(|e| e.to_string())?;
    let runs = store.runs(Some(job)).map_err(|e| e.to_string())?;
    Ok(Reply::BackupHistory {
        runs: runs
            .iter()
            .rev()
            .take(limit as usize)
            .map(|r| lethe_wire::BackupRunView {
                kind: r.kind.clone(),
                started: rfc3339(r.started),
                ended: rfc3339(r.ended),
                result: r.result.clone(),
            })
            .collect(),
    })
}

fn rfc3339(t: i64) -> String {
    lethe_core::timefmt::rfc3339_utc(t)
}

fn backups(d: &Daemon) -> Vec<(BackupView, BackupMetrics)> {
    let now = d.clock.unix_now();
    d.cfg
        .backups
        .iter()
        .map(|b| {
            let name = b.name.as_str().to_string();
            let st = lethe_jobs::backup::backup_status(&d.state, &name).unwrap_or_default();
            let every = lethe_backup::schedule::parse_interval(&b.job.every).unwrap_or(0);
            let next = st
                .last_backup
                .as_ref()
                .map_or(now, |(t, _)| t + every as i64);
            (
                BackupView {
                    job: name.clone(),
                    every_secs: every,
                    last_backup: st.last_backup.as_ref().map(|(t, _)| rfc3339(*t)),
                    last_result: st.last_backup.as_ref().map(|(_, r)| r.clone()),
                    last_success: st.last_success.map(rfc3339),
                    next_due: rfc3339(next),
                    last_drill: st.last_drill.as_ref().map(|(t, _)| rfc3339(*t)),
                    last_drill_result: st.last_drill.as_ref().map(|(_, r)| r.clone()),
                    max_age_secs: b.max_age.map(|a| a.as_secs()),
                },
                BackupMetrics {
                    job: name,
                    age_secs: st.last_success.map(|t| (now - t).max(0) as u64),
                    drills_passed: st.drills_passed,
                    drills_failed: st.drills_failed,
                    backups_failed: st.backups_failed,
                },
            )
        })
        .collect()
}

/// `lethe status`: the bays and running jobs as they are now, the job
/// history's interrupted jobs and the backups from the shared snapshot
/// ([`crate::snapshot`]).
pub fn status(d: &Daemon) -> Result<StatusView, String> {
    let live = d.jobs.running();
    let ids: Vec<String> = live.iter().map(|j| j.id.clone()).collect();
    let stored = d.status_snapshot.get(Instant::now(), &ids, || {
        let list = history::list(&d.state, d.clock.as_ref()).map_err(|e| e.to_string())?;
        Ok(crate::snapshot::Stored {
            jobs: list
                .into_iter()
                .filter(|r| {
                    ids.contains(&r.id)
                        || matches!(r.status, JobStatus::Interrupted | JobStatus::Incomplete)
                })
                .collect(),
            backups: backups(d).into_iter().map(|(v, _)| v).collect(),
        })
    })?;
    let list = &stored.jobs;
    let running: Vec<JobView> = live
        .into_iter()
        .map(|j| match list.iter().find(|r| r.id == j.id) {
            Some(r) => JobView {
                // The record was read while it ran; only the live progress
                // changes until it ends.
                state: JobState::Running,
                ..view(d, r)
            },
            None => JobView {
                id: j.id.clone(),
                kind: j.kind.as_str().into(),
                state: JobState::Running,
                device: j.device.clone().unwrap_or_default(),
                bay: bay_of(d, &j.id),
                created_at: j.started_at.clone(),
                updated_at: j.started_at.clone(),
                certificate: None,
                progress: Daemon::lock(&d.progress).get(&j.id).cloned(),
            },
        })
        .collect();
    let interrupted = list
        .iter()
        .filter(|r| matches!(r.status, JobStatus::Interrupted | JobStatus::Incomplete))
        .filter(|r| !ids.contains(&r.id))
        .map(|r| view(d, r))
        .collect();
    Ok(StatusView {
        daemon: DaemonView {
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: d.started_at.clone(),
            pid: std::process::id(),
            front_restarts: d.front_restarts.load(Ordering::Relaxed),
            audit_entries: d.audit_entries(),
            https_listen: Some(d.cfg.server.listen.to_string()),
            tls_fingerprint: d.tls_fingerprint(),
        },
        bays: Daemon::lock(&d.book).views(),
        running,
        interrupted,
        backups: stored.backups,
    })
}

/// `GET /metrics`.
pub fn metrics(d: &Daemon) -> Result<MetricsView, String> {
    let list = history::list(&d.state, d.clock.as_ref()).map_err(|e| e.to_string())?;
    let mut counts: Vec<StateCount> = Vec::new();
    for r in &list {
        let state = job_state(r.status);
        match counts.iter_mut().find(|c| c.state == state) {
            Some(c) => c.count += 1,
            None => counts.push(StateCount { state, count: 1 }),
        }
    }
    Ok(MetricsView {
        uptime_secs: d.started.elapsed().as_secs(),
        jobs: counts,
        bytes_written: d.counters.bytes_written.load(Ordering::Relaxed),
        bytes_verified: d.counters.bytes_verified.load(Ordering::Relaxed),
        job_failures: d.counters.failures.load(Ordering::Relaxed),
        backups: backups(d).into_iter().map(|(_, m)| m).collect(),
        audit_entries: d.audit_entries(),
        front_restarts: u64::from(d.front_restarts.load(Ordering::Relaxed)),
    })
}

/// The controller as it answers now (blocks for at most the controller
/// driver's timeouts).
pub(crate) fn controller_view(
    panel: Option<&lethe_jobs::panel::Panel>,
    port: Option<String>,
) -> lethe_wire::ControllerView {
    let Some(panel) = panel else {
        return lethe_wire::ControllerView {
            configured: false,
            port: None,
            connected: false,
            error: None,
            state: None,
        };
    };
    match panel.status() {
        Ok(r) => lethe_wire::ControllerView {
            configured: true,
            port,
            connected: true,
            error: None,
            state: Some(lethe_wire::ControllerStateView {
                firmware_version: format!(
                    "{}.{}.{}",
                    r.firmware.version.0, r.firmware.version.1, r.firmware.version.2
                ),
                protocol: r.firmware.protocol,
                build: format!("{:?}", r.firmware.build),
                reset_cause: format!("{:?}", r.firmware.reset_cause),
                relay: r.relay,
                energized: r.energized,
                interlock_closed: r.interlock_closed,
                estop: r.estop,
                fault: r.fault,
                needs_local_reset: r.needs_local_reset,
                degausser: r.degausser,
                cycles: r.cycles,
                last_cycle_ms: r.last_cycle_ms,
                cooldown_ms: r.cooldown_ms,
                uptime_ms: r.uptime_ms,
            }),
        },
        Err(e) => lethe_wire::ControllerView {
            configured: true,
            port,
            connected: false,
            error: Some(e),
            state: None,
        },
    }
}
