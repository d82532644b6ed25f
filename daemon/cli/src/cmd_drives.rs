//! `lethe drives` and the target assessment used by `lethe wipe`.

use crate::exit;
use anyhow::{Context, Result};
use clap::Args;
use lethe_cli::identity::DeviceIdentity;
use lethe_core::inventory::{render_table, Drive};
use lethe_linux::discovery::{self, Refusal};
use std::path::Path;

#[derive(Args)]
pub struct DrivesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &DrivesArgs) -> Result<u8> {
    let drives = discovery::discover().context("listing block devices")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&drives)?);
        return Ok(exit::OK);
    }
    print!("{}", render_table(&drives));
    for d in drives.iter().filter(|d| d.protected) {
        let why: Vec<String> = d.reasons.iter().map(|r| r.to_string()).collect();
        println!("  {} is protected: {}", d.path, why.join("; "));
    }
    for d in &drives {
        for w in &d.warnings {
            println!("  note: {}: {w}", d.path);
        }
    }
    Ok(exit::OK)
}

/// The identity a job records for a drive.
pub fn identity(d: &Drive) -> DeviceIdentity {
    DeviceIdentity {
        path: d.path.clone(),
        stable_id: d.stable_id.clone(),
        transport: d.transport.to_string(),
        manufacturer: d.vendor.clone(),
        model: d.model.clone(),
        serial: d.serial.clone(),
        wwn: d.wwn.clone(),
        firmware: d.firmware.clone(),
        size_bytes: d.size_bytes,
        logical_sector: d.logical_sector,
        physical_sector: d.physical_sector,
        rotational: d.rotational,
        removable: d.removable,
        media_type: d.media_type.clone(),
    }
}

/// Refuse protected devices; otherwise the identity of the device at `path`.
pub fn assess(path: &Path) -> Result<DeviceIdentity, Refusal> {
    discovery::assess_target(path).map(|t| identity(&t.drive))
}
