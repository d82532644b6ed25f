//! `lethe drives` (optionally `--watch` for hot-plug).

use crate::exit;
use anyhow::{Context, Result};
use clap::Args;
use lethe_cmds::smart::DriveHealth;
use lethe_core::inventory::{render_table, Drive};
use lethe_linux::discovery;
use lethe_linux::discovery::uevent::{DriveEvent, Watcher};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct DrivesArgs {
    /// Print JSON instead of a table. With --watch, one object a line:
    /// `{"event":"present"|"add","device":{..}}` for each drive listed or
    /// arriving, `{"event":"watching"}` once the list is done, and
    /// `{"event":"remove","path":..,"name":..,"serial":..,"stable_id":..}`.
    #[arg(long)]
    json: bool,
    /// Keep running: after the current list, print one line per drive that
    /// arrives or leaves (kernel uevents; no udev needed). Stops on
    /// SIGINT/SIGTERM.
    #[arg(long)]
    watch: bool,
    /// With --watch: stop after this many seconds.
    #[arg(long, value_name = "SECS", requires = "watch")]
    watch_timeout: Option<u64>,
    /// Also read each drive's health (ATA SMART, NVMe health log, SCSI log
    /// pages; read-only commands, nothing is changed): assessment, power-on
    /// hours, reallocated/pending sectors, errors, wear. With --json each
    /// drive gains `health` (or null) and `health_error`.
    #[arg(long, conflicts_with = "watch")]
    health: bool,
}

pub fn run(args: &DrivesArgs) -> Result<u8> {
    if args.watch {
        return watch(args);
    }
    let drives = discovery::discover().context("listing block devices")?;
    let health: Vec<Result<DriveHealth, String>> = if args.health {
        drives.iter().map(health_of).collect()
    } else {
        Vec::new()
    };
    if args.json {
        if !args.health {
            outln!("{}", serde_json::to_string(&drives)?);
            return Ok(exit::OK);
        }
        let mut out = Vec::new();
        for (d, h) in drives.iter().zip(&health) {
            let mut v = serde_json::to_value(d)?;
            if let Some(o) = v.as_object_mut() {
                let (ok, err) = match h {
                    Ok(h) => (serde_json::to_value(h)?, serde_json::Value::Null),
                    Err(e) => (serde_json::Value::Null, e.clone().into()),
                };
                o.insert("health".into(), ok);
                o.insert("health_error".into(), err);
            }
            out.push(v);
        }
        outln!("{}", serde_json::to_string(&out)?);
        return Ok(exit::OK);
    }
    out!("{}", render_table(&drives));
    for (d, h) in drives.iter().zip(&health) {
        match h {
            Ok(h) => outln!("  {} health: {}", d.path, h.summary()),
            Err(e) => outln!("  {} health: not available ({e})", d.path),
        }
    }
    for d in drives.iter().filter(|d| d.protected) {
        let why: Vec<String> = d.reasons.iter().map(|r| r.to_string()).collect();
        outln!("  {} is protected: {}", d.path, why.join("; "));
    }
    for d in &drives {
        for w in &d.warnings {
            outln!("  note: {}: {w}", d.path);
        }
    }
    Ok(exit::OK)
}

/// Health of one drive, read over a read-only descriptor.
fn health_of(d: &Drive) -> Result<DriveHealth, String> {
    lethe_linux::health::read_drive_health(Path::new(&d.path), d.transport.as_str(), d.rotational)
        .map_err(|e| e.to_string())
}

/// One `--watch` line: JSON (`present`, `watching`, `add`, `remove`) or text.
fn emit(json: bool, ev: &str, d: Option<&Drive>, name: &str) -> Result<()> {
    if json {
        let v = match (ev, d) {
            ("add" | "present", Some(d)) => serde_json::json!({"event": ev, "device": d}),
            ("remove", _) => serde_json::json!({
                "event": ev,
                "path": format!("/dev/{name}"),
                "name": name,
                "serial": d.and_then(|d| d.serial.clone()),
                "stable_id": d.and_then(|d| d.stable_id.clone()),
            }),
            _ => serde_json::json!({"event": ev}),
        };
        outln!("{}", serde_json::to_string(&v)?);
    } else {
        let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        match (ev, d) {
            ("add", Some(d)) => outln!(
                "+ {} {} {} serial={} {} bytes{}",
                d.path,
                d.transport,
                dash(&d.model),
                dash(&d.serial),
                d.size_bytes,
                if d.protected { " (protected)" } else { "" }
            ),
            ("remove", d) => outln!(
                "- /dev/{name} removed (serial={})",
                dash(&d.and_then(|d| d.serial.clone()))
            ),
            _ => {}
        }
    }
    Ok(())
}

/// `--watch`: the list, then arrivals and removals until a signal or the timeout.
fn watch(args: &DrivesArgs) -> Result<u8> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handler")?;
    }
    // Listens before listing, so a drive arriving in between is not lost.
    let (mut watcher, drives) = Watcher::start().context("watching for drives")?;
    if args.json {
        for d in &drives {
            emit(true, "present", Some(d), &d.name)?;
        }
        emit(true, "watching", None, "")?;
    } else {
        out!("{}", render_table(&drives));
        outln!("watching for drives to arrive or leave (Ctrl-C to stop)");
    }
    let deadline = args
        .watch_timeout
        .map(|s| Instant::now() + Duration::from_secs(s));
    // Nobody reads any more (`| head`): stop watching.
    while !stop.load(Ordering::Relaxed) && !crate::out::closed() {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            break;
        }
        // Short slices, so a signal or the deadline is noticed promptly.
        let slice = left
            .unwrap_or(Duration::MAX)
            .min(Duration::from_millis(250));
        match watcher.next(slice).context("watching for drives")? {
            Some(DriveEvent::Added(d)) => emit(args.json, "add", Some(&d), &d.name)?,
            Some(DriveEvent::Removed { name, last, .. }) => {
                emit(args.json, "remove", last.as_deref(), &name)?
            }
            None => {}
        }
    }
    Ok(exit::OK)
}
