//! `lethe drives` and the target assessment used by `lethe wipe`.
//! (Interim: identity from sysfs only; replaced by lethe-linux::discovery.)

use anyhow::Result;
use clap::Args;
use lethe_cli::identity::DeviceIdentity;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

#[derive(Args)]
pub struct DrivesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(_args: &DrivesArgs) -> Result<u8> {
    anyhow::bail!("lethe drives: discovery not wired yet")
}

pub fn assess(path: &Path) -> Result<DeviceIdentity, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}; nothing was written", path.display()))?;
    if !meta.file_type().is_block_device() {
        return Err(format!(
            "{}: not a block device; nothing was written",
            path.display()
        ));
    }
    let rdev = meta.rdev();
    let (maj, min) = (
        (rdev >> 8) & 0xfff,
        (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    );
    let sys = format!("/sys/dev/block/{maj}:{min}");
    let read = |f: &str| {
        std::fs::read_to_string(format!("{sys}/{f}"))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let size = read("size")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        * 512;
    let logical = read("queue/logical_block_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let physical = read("queue/physical_block_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    Ok(DeviceIdentity {
        path: path.display().to_string(),
        stable_id: read("loop/backing_file").map(|b| format!("loop-backing:{b}")),
        transport: "loop".into(),
        manufacturer: None,
        model: None,
        serial: None,
        wwn: None,
        firmware: None,
        size_bytes: size,
        logical_sector: logical,
        physical_sector: physical,
        rotational: None,
        removable: None,
        media_type: "unknown".into(),
    })
}
