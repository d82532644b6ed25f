//! `lethe jobs`: the job history from the SQLite store.

use crate::exit;
use anyhow::Result;
use clap::{Args, Subcommand};
use lethe_jobs::{history, StateDir, SystemClock};
use lethe_store::JobRecord;

#[derive(Args)]
pub struct JobsArgs {
    #[command(subcommand)]
    cmd: Option<JobsCmd>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum JobsCmd {
    /// List jobs, newest first (the default).
    List,
    /// Show one job with its event history.
    Show { job: String },
}

fn summary(j: &JobRecord) -> serde_json::Value {
    serde_json::json!({
        "job": j.id,
        "status": j.status,
        "device": j.device_path,
        "created_at": j.created_at,
        "updated_at": j.updated_at,
        "checkpoint": j.checkpoint,
        "certificate": j.certificate,
        "resumable": j.status.resumable(),
    })
}

pub fn run(state: &StateDir, args: &JobsArgs) -> Result<u8> {
    // A job whose owner is gone shows as interrupted, not as running forever.
    match &args.cmd {
        None | Some(JobsCmd::List) => {
            let jobs = history::list(state, &SystemClock)?;
            if args.json {
                let v: Vec<_> = jobs.iter().map(summary).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if jobs.is_empty() {
                println!("no jobs in {}", state.root().display());
            } else {
                println!("{:<32} {:<12} {:<22} DEVICE", "JOB", "STATUS", "UPDATED");
                for j in &jobs {
                    let hint = if j.status.resumable() {
                        "  (lethe wipe --resume to continue)"
                    } else {
                        ""
                    };
                    println!(
                        "{:<32} {:<12} {:<22} {}{hint}",
                        j.id,
                        j.status.as_str(),
                        j.updated_at,
                        j.device_path
                    );
                }
            }
        }
        Some(JobsCmd::Show { job }) => {
            let (j, events) = history::show(state, &SystemClock, job)?;
            if args.json {
                let mut v = summary(&j);
                v["spec"] = j.spec.clone();
                v["result"] = j.result.clone().unwrap_or_default();
                v["events"] = serde_json::to_value(&events)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("job         {}", j.id);
                println!("status      {}", j.status);
                println!("device      {}", j.device_path);
                println!("checkpoint  {}", serde_json::to_string(&j.checkpoint)?);
                if let Some(c) = &j.certificate {
                    println!("certificate {c}");
                }
                println!("events:");
                for e in &events {
                    println!("  {}  {:<11} {}", e.at, e.kind, e.detail);
                }
            }
        }
    }
    Ok(exit::OK)
}
