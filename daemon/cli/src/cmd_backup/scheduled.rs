//! `run-scheduled` and `history`: the engine's scheduled run with the job
//! store as its history, the system clock, and Linux discovery for device
//! identities.

use super::render::out;
use super::{code, render};
use crate::exit;
use anyhow::Result;
use lethe_backup::archive::BackupOptions;
use lethe_backup::scheduled::{self, Devices, Env, History, PastRun, RunRecord, SystemClock};
use lethe_backup::seen::SeenDir;
use lethe_backup::BackupError;
use lethe_jobs::state::StateDir;
use lethe_repo::snapshot::DeviceIdentity;
use lethe_store::{BackupRun, JobStore};
use std::path::Path;

struct StoreHistory(JobStore);

fn store_err(e: impl std::fmt::Display) -> BackupError {
    BackupError::Internal(format!("backup history: {e}"))
}

impl History for StoreHistory {
    fn runs(&self, job: &str) -> Result<Vec<PastRun>, BackupError> {
        Ok(self
            .0
            .runs(Some(job))
            .map_err(store_err)?
            .into_iter()
            .map(|r| PastRun {
                kind: r.kind,
                started: r.started,
            })
            .collect())
    }

    fn record(&mut self, r: &RunRecord) -> Result<(), BackupError> {
        self.0
            .record_run(&BackupRun {
                job: r.job.clone(),
                kind: r.kind.as_str().into(),
                started: r.started,
                ended: r.ended,
                result: r.result.as_str().into(),
                detail: r.detail.clone(),
            })
            .map_err(store_err)
    }
}

struct Discovery;

impl Devices for Discovery {
    fn identity(&self, path: &Path) -> Result<DeviceIdentity, BackupError> {
        render::device_identity(path).map_err(|e| BackupError::Invalid(format!("{e:#}")))
    }
}

pub fn run(state: &StateDir, config: &Path, json: bool) -> Result<u8> {
    let sched = scheduled::load(config)?;
    let mut history = StoreHistory(JobStore::open(state.root())?);
    let env = Env {
        clock: &SystemClock,
        devices: &Discovery,
        euid: scheduled::euid(),
        scratch: std::env::temp_dir(),
        base: BackupOptions::for_this_host(),
        seen: Some(std::sync::Arc::new(SeenDir::in_state_dir(state.root()))),
        // Only the daemon holds an audit log to vouch for the manifest.
        audit_checkpoint: None,
    };
    let rep = scheduled::run_due(&sched, &env, &mut history, &mut |r| {
        if r.result.as_str() != "pass" {
            eprintln!(
                "lethe: {}: {} {}: {}",
                r.job,
                r.kind.as_str(),
                r.result.as_str().to_uppercase(),
                r.detail
            );
        }
    })?;
    if json {
        let runs: Vec<serde_json::Value> = rep
            .runs
            .iter()
            .map(|r| {
                serde_json::json!({"job": r.job, "kind": r.kind, "started": r.started,
                    "ended": r.ended, "result": r.result, "detail": detail(&r.detail)})
            })
            .collect();
        out(
            serde_json::json!({"runs": runs, "failed": rep.failed, "outcome": rep.outcome, "next": rep.next}),
        )?;
    } else {
        for r in &rep.runs {
            out(format_args!(
                "{:<16} {:<7} {}",
                r.job,
                r.kind.as_str(),
                r.result.as_str().to_uppercase()
            ))?;
        }
        if rep.runs.is_empty() {
            out("nothing due")?;
        }
        for n in &rep.next {
            out(format_args!(
                "{:<16} next backup {}{}",
                n.job,
                lethe_core::timefmt::rfc3339_utc(n.backup),
                n.drill
                    .map(|d| format!(", next drill {}", lethe_core::timefmt::rfc3339_utc(d)))
                    .unwrap_or_default()
            ))?;
        }
    }
    Ok(code(rep.outcome))
}

/// A run's detail: the JSON report it holds, or its text.
fn detail(d: &str) -> serde_json::Value {
    serde_json::from_str(d).unwrap_or_else(|_| serde_json::Value::String(d.to_string()))
}

pub fn history(state: &StateDir, job: Option<&str>, json: bool) -> Result<u8> {
    let db = JobStore::open(state.root())?;
    let runs = db.runs(job)?;
    if json {
        let v: Vec<serde_json::Value> = runs
            .iter()
            .rev()
            .map(|r| {
                serde_json::json!({"job": r.job, "kind": r.kind, "started": r.started,
                    "ended": r.ended, "result": r.result, "detail": detail(&r.detail)})
            })
            .collect();
        out(serde_json::Value::Array(v))?;
        return Ok(exit::OK);
    }
    out(format_args!(
        "{:<20}  {:<16} {:<7} {:>6}  result",
        "started (UTC)", "job", "kind", "secs"
    ))?;
    // Newest first, as every other list.
    for r in runs.iter().rev() {
        out(format_args!(
            "{:<20}  {:<16} {:<7} {:>6}  {}",
            lethe_core::timefmt::rfc3339_utc(r.started),
            r.job,
            r.kind,
            r.ended - r.started,
            if r.result == "pass" {
                "pass".to_string()
            } else {
                format!(
                    "{} — {}",
                    r.result.to_uppercase(),
                    r.detail.chars().take(120).collect::<String>()
                )
            }
        ))?;
    }
    Ok(exit::OK)
}
