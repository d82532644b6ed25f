//! `lethe jobs`: the job history from the SQLite store.

use crate::exit;
use anyhow::Result;
use clap::{Args, Subcommand};
use lethe_jobs::{history, StateDir, SystemClock};
use lethe_store::JobRecord;

#[derive(Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    pub cmd: Option<JobsCmd>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum JobsCmd {
    /// List jobs, newest first (the default).
    List,
    /// Show one job with its event history.
    Show {
        /// The job's id (from `lethe jobs`).
        job: String,
    },
    /// Ask a job running on an appliance to stop at its next safe point
    /// (with --server; a local wipe stops with Ctrl-C in its terminal).
    Cancel {
        /// The job's id (from `lethe jobs`).
        job: String,
    },
}

fn summary(j: &JobRecord) -> serde_json::Value {
    serde_json::json!({
        "job": j.id,
        "kind": j.kind,
        "status": j.status,
        "device": j.device_path,
        "created_at": j.created_at,
        "updated_at": j.updated_at,
        "checkpoint": j.checkpoint,
        "certificate": j.certificate,
        "resumable": j.status.resumable(),
    })
}

/// Rows as text with every column as wide as its widest cell (the last
/// column is not padded).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(width[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// One line of `lethe jobs`, from the job store or an appliance's API.
pub struct ListRow<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub status: &'a str,
    pub updated_at: &'a str,
    pub device: &'a str,
    pub resumable: bool,
}

/// `lethe jobs`'s table; a resumable job says how to continue it.
pub fn list_table<'a>(rows: impl Iterator<Item = ListRow<'a>>) -> String {
    let rows: Vec<Vec<String>> = rows
        .map(|j| {
            let hint = if j.resumable {
                format!("  (continue: lethe wipe --resume {})", j.id)
            } else {
                String::new()
            };
            vec![
                j.id.to_string(),
                j.kind.to_string(),
                j.status.to_string(),
                j.updated_at.to_string(),
                format!("{}{hint}", j.device),
            ]
        })
        .collect();
    table(&["JOB", "KIND", "STATUS", "UPDATED", "DEVICE"], &rows)
}

pub fn run(state: &StateDir, args: &JobsArgs) -> Result<u8> {
    // A job whose owner is gone shows as interrupted, not as running forever.
    match &args.cmd {
        None | Some(JobsCmd::List) => {
            // Newest first (the store's order).
            let jobs = history::list(state, &SystemClock)?;
            if args.json {
                let v: Vec<_> = jobs.iter().map(summary).collect();
                outln!("{}", serde_json::to_string(&v)?);
            } else if jobs.is_empty() {
                outln!("no jobs in {}", state.root().display());
            } else {
                let rows = jobs.iter().map(|j| ListRow {
                    id: &j.id,
                    kind: &j.kind,
                    status: j.status.as_str(),
                    updated_at: &j.updated_at,
                    device: &j.device_path,
                    resumable: j.status.resumable(),
                });
                out!("{}", list_table(rows));
            }
        }
        Some(JobsCmd::Cancel { .. }) => {
            return Err(crate::UsageError(
                "`lethe jobs cancel` stops a job of an appliance (give --server); a wipe started \
                 here stops with Ctrl-C in its terminal"
                    .into(),
            )
            .into())
        }
        Some(JobsCmd::Show { job }) => {
            let (j, events) = history::show(state, &SystemClock, job)?;
            if args.json {
                let mut v = summary(&j);
                v["spec"] = j.spec.clone();
                v["result"] = j.result.clone().unwrap_or_default();
                v["events"] = serde_json::to_value(&events)?;
                outln!("{}", serde_json::to_string(&v)?);
            } else {
                outln!("job         {}", j.id);
                outln!("status      {}", j.status);
                outln!("device      {}", j.device_path);
                outln!("checkpoint  {}", serde_json::to_string(&j.checkpoint)?);
                if let Some(c) = &j.certificate {
                    outln!("certificate {c}");
                }
                outln!("events:");
                for e in &events {
                    outln!("  {}  {:<11} {}", e.at, e.kind, e.detail);
                }
            }
        }
    }
    Ok(exit::OK)
}
