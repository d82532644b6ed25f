//! `lethe status`: bays, jobs and the next backups, from a running
//! `lethe serve` (through the front's local API socket).

use crate::exit;
use anyhow::{bail, Result};
use clap::Args;
use lethe_wire::paths::{API_SOCKET, DEFAULT_RUNTIME_DIR};
use lethe_wire::{BayState, JobView, StatusView};
use std::path::PathBuf;

#[derive(Args)]
pub struct StatusArgs {
    /// The daemon's runtime directory.
    #[arg(long, env = "LETHE_RUNTIME_DIR", default_value = DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// Print the status as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn state(s: BayState) -> &'static str {
    match s {
        BayState::Empty => "empty",
        BayState::Waiting => "waiting",
        BayState::Running => "running",
        BayState::Passed => "passed",
        BayState::ClearOnly => "CLEAR ONLY",
        BayState::Unverified => "UNVERIFIED",
        BayState::Failed => "FAILED",
        BayState::Refused => "refused",
        BayState::Stopped => "stopped",
        BayState::Interrupted => "interrupted",
    }
}

fn job_line(j: &JobView) -> String {
    let progress = j.progress.as_ref().map_or(String::new(), |p| {
        let pct = if p.total > 0 {
            format!(" {:.0}%", p.done as f64 * 100.0 / p.total as f64)
        } else {
            String::new()
        };
        format!("  {}{pct}", p.phase)
    });
    format!(
        "  {:<34} {:<8} {:<12} {}{}{}",
        j.id,
        j.kind,
        format!("{:?}", j.state).to_lowercase(),
        j.device,
        j.bay
            .as_ref()
            .map_or(String::new(), |b| format!("  (bay {b})")),
        progress
    )
}

fn render(s: &StatusView) {
    let d = &s.daemon;
    println!(
        "lethe serve {} (pid {}), up since {}; front restarted {} time(s); audit log: {} entries",
        d.version, d.pid, d.started_at, d.front_restarts, d.audit_entries
    );
    if let Some(l) = &d.https_listen {
        println!(
            "HTTPS API on {l}; certificate SHA-256 fingerprint (pin it): {}",
            d.tls_fingerprint.as_deref().unwrap_or("not available")
        );
    }
    println!("\nBAYS");
    for b in &s.bays {
        let drive = b.drive.as_ref().map_or(String::new(), |dv| {
            format!(
                "{} ({} {}, serial {}, {})",
                dv.path,
                dv.transport,
                dv.model.as_deref().unwrap_or("unknown model"),
                dv.serial.as_deref().unwrap_or("none"),
                lethe_core::inventory::human_size(dv.size_bytes)
            )
        });
        println!(
            "  {:<12} {:<4} {:<5} {:<11} {}{}",
            b.name,
            format!("{:?}", b.policy).to_lowercase(),
            format!("{:?}", b.level).to_lowercase(),
            state(b.state),
            drive,
            b.job
                .as_ref()
                .map_or(String::new(), |j| format!("  job {j}"))
        );
        if let Some(m) = &b.message {
            println!("  {:<12} {m}", "");
        }
    }
    println!("\nRUNNING");
    if s.running.is_empty() {
        println!("  none");
    }
    for j in &s.running {
        println!("{}", job_line(j));
    }
    if !s.interrupted.is_empty() {
        println!("\nINTERRUPTED OR STOPPED (resumable)");
        for j in &s.interrupted {
            println!("{}", job_line(j));
        }
    }
    println!("\nBACKUPS");
    if s.backups.is_empty() {
        println!("  none configured");
    }
    for b in &s.backups {
        println!(
            "  {:<16} every {:>6}s  last {} {}  next {}  drill {} {}",
            b.job,
            b.every_secs,
            b.last_backup.as_deref().unwrap_or("never"),
            b.last_result.as_deref().unwrap_or(""),
            b.next_due,
            b.last_drill.as_deref().unwrap_or("never"),
            b.last_drill_result.as_deref().unwrap_or("")
        );
    }
}

pub fn run(args: &StatusArgs) -> Result<u8> {
    let socket = args.runtime_dir.join(API_SOCKET);
    let a = lethe_front::local::get_blocking(&socket, "/v0/status")?;
    if let Some(m) = a.error_message() {
        bail!("lethe serve: {m}");
    }
    if !a.status.is_success() {
        bail!("lethe serve answered {}", a.status);
    }
    let s: StatusView = serde_json::from_slice(&a.body)?;
    show(&s, args.json)
}

/// Print a status (from the local socket or from `--server`'s API).
pub fn show(s: &StatusView, json: bool) -> Result<u8> {
    if json {
        println!("{}", serde_json::to_string(s)?);
    } else {
        render(s);
    }
    Ok(exit::OK)
}
