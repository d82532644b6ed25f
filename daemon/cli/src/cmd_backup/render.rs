//! How `lethe backup` shows the engine's reports: text on a terminal, one
//! JSON object (or array) as the last stdout line with `--json`. Problems go
//! to stderr, named.

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lethe_backup::archive::{BackupReport, Progress};
use lethe_backup::check::CheckReport;
use lethe_backup::drill::DrillReport;
use lethe_backup::prune::{ForgetReport, PruneReport};
use lethe_backup::repair::{RepairIndexReport, RepairSnapshotsReport};
use lethe_backup::repo::SnapshotList;
use lethe_backup::restore::{Reader, RestoreReport};
use lethe_backup::{Outcome, Repository};
use lethe_repo::snapshot::{Snapshot, Source};
use lethe_repo::tree::NodeKind;
use lethe_repo::Id;
use std::io::IsTerminal;
use std::path::Path;

pub struct BarProgress(Option<ProgressBar>);

impl BarProgress {
    pub fn new(json: bool, total: Option<u64>) -> Self {
        if json || !std::io::stderr().is_terminal() {
            return BarProgress(None);
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(4));
        let t = if total.is_some() {
            "{msg:<10} [{wide_bar:.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec:>12} ETA {eta:>4}"
        } else {
            "{msg:<10} {spinner} {bytes} {binary_bytes_per_sec:>12} {elapsed}"
        };
        bar.set_style(
            ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message("backup");
        BarProgress(Some(bar))
    }
}

impl Progress for BarProgress {
    fn bytes(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
}

pub fn human(n: u64) -> String {
    let u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < u.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", u[i])
}

/// Bytes of regular files below `p` (not following symlinks).
pub fn tree_bytes(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| tree_bytes(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    }
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(16)]
}

pub fn source_label(s: &Source) -> String {
    match s {
        Source::Tree { paths, .. } => paths
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        Source::Device { identity, .. } => format!(
            "device {} ({} {}, {} bytes)",
            identity.path, identity.model, identity.serial, identity.size_bytes
        ),
        Source::Stream { name, size, .. } => format!("stream {name} ({size} bytes)"),
    }
}

/// Identity recorded with a device image: from discovery for block devices,
/// from the file itself for image files.
pub fn device_identity(path: &Path) -> Result<lethe_repo::snapshot::DeviceIdentity> {
    let canon = std::fs::canonicalize(path).with_context(|| path.display().to_string())?;
    let md = std::fs::metadata(&canon)?;
    use std::os::unix::fs::FileTypeExt;
    if md.file_type().is_block_device() {
        let drives = lethe_linux::discovery::discover().context("listing block devices")?;
        let d = drives
            .iter()
            .find(|d| Path::new(&d.path) == canon)
            .ok_or_else(|| anyhow!("{} is not a whole block device", canon.display()))?;
        if d.reasons.iter().any(|r| r.to_string().contains("mounted")) {
            eprintln!(
                "lethe: warning: {} is mounted: the image may be inconsistent",
                d.path
            );
        }
        Ok(lethe_repo::snapshot::DeviceIdentity {
            path: d.path.clone(),
            model: d.model.clone().unwrap_or_default(),
            serial: d.serial.clone().unwrap_or_default(),
            wwn: d.wwn.clone(),
            size_bytes: d.size_bytes,
            logical_block_size: d.logical_sector,
        })
    } else if md.is_file() {
        Ok(lethe_repo::snapshot::DeviceIdentity {
            path: canon.display().to_string(),
            model: "image file".into(),
            serial: String::new(),
            wwn: None,
            size_bytes: md.len(),
            logical_block_size: 512,
        })
    } else {
        bail!("{} is neither a block device nor a file", canon.display())
    }
}

pub fn backup(report: &BackupReport, json: bool) -> Result<()> {
    for c in &report.changed_during_backup {
        eprintln!("  warning: {c}: changed while it was read; stored as read");
    }
    for w in &report.warnings {
        eprintln!("  warning: {w}");
    }
    if report.outcome == Outcome::CompletedWithWarnings {
        eprintln!("completed with warnings");
    }
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!("snapshot {} saved", short(&report.snapshot));
    println!(
        "  {} files, {} dirs, {} processed, {} read in {:.1} s",
        report.files,
        report.dirs,
        human(report.bytes_total),
        human(report.bytes_read),
        report.seconds
    );
    println!(
        "  new {}  reused {}  stored {}  dedup ratio {:.2}",
        human(report.bytes_new),
        human(report.bytes_reused),
        human(report.bytes_stored),
        report.dedup_ratio
    );
    Ok(())
}

pub fn snapshots(list: &SnapshotList, json: bool) -> Result<()> {
    for d in &list.damaged {
        eprintln!(
            "lethe: warning: {} is damaged and skipped: {}",
            d.object, d.error
        );
    }
    if json {
        let v: Vec<_> = list
            .ok
            .iter()
            .map(|(id, s)| {
                serde_json::json!({
                    "id": id.to_hex(), "time": s.time.secs, "hostname": s.hostname,
                    "tags": s.tags, "source": source_label(&s.source),
                    "bytes_read": s.summary.bytes_read, "bytes_added": s.summary.bytes_added,
                    "changed_during_backup": s.ext.changed_during_backup.len(),
                    "repaired_from": s.ext.repaired.as_ref().map(|r| r.original.to_hex()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    println!("{:<16}  {:<20}  {:<12}  source", "id", "time (UTC)", "host");
    for (id, s) in &list.ok {
        let mut note = String::new();
        if !s.ext.changed_during_backup.is_empty() {
            note.push_str(&format!(
                "  [{} changed during backup]",
                s.ext.changed_during_backup.len()
            ));
        }
        if let Some(r) = &s.ext.repaired {
            note.push_str(&format!(
                "  [repaired from {}]",
                short(&r.original.to_hex())
            ));
        }
        println!(
            "{:<16}  {:<20}  {:<12}  {}{note}",
            short(&id.to_hex()),
            lethe_core::timefmt::rfc3339_utc(s.time.secs),
            s.hostname,
            source_label(&s.source)
        );
    }
    Ok(())
}

/// List a snapshot's files; an unreadable directory is named and skipped.
pub fn ls(repo: &Repository, snap: &Snapshot) -> Result<Outcome> {
    let Source::Tree { root, .. } = snap.source else {
        println!("{}", source_label(&snap.source));
        return Ok(Outcome::Ok);
    };
    let mut r = Reader::new(repo)?;
    let mut outcome = Outcome::Ok;
    let mut stack = vec![(root, String::new())];
    while let Some((tid, path)) = stack.pop() {
        let t = match r.tree(&tid) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("lethe: warning: {path}/: contents unreadable: {e}");
                outcome = Outcome::CompletedWithWarnings;
                continue;
            }
        };
        for n in t.nodes.iter().rev() {
            let p = format!("{path}/{}", String::from_utf8_lossy(&n.name));
            match &n.kind {
                NodeKind::Dir { subtree } => {
                    println!("{p}/");
                    stack.push((*subtree, p));
                }
                _ => println!("{p}  {}", n.size),
            }
        }
    }
    Ok(outcome)
}

pub fn restore(id: &Id, rep: &RestoreReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({"snapshot": id.to_hex(), "restored": rep})
        );
    } else {
        println!(
            "restored {} files, {} dirs, {} from {}; every restored file matched its backup-time BLAKE3",
            rep.files,
            rep.dirs,
            human(rep.bytes),
            short(&id.to_hex())
        );
    }
    for d in &rep.damaged_objects {
        eprintln!(
            "  warning: {} is damaged and was skipped: {}",
            d.object, d.error
        );
    }
    for w in &rep.warnings {
        eprintln!("  warning: {w}");
    }
    for r in &rep.refused {
        eprintln!("  NOT RESTORED (in the way): {r}");
    }
    for f in &rep.failed {
        eprintln!("  NOT RESTORED: {f}");
    }
    if !rep.failed.is_empty() {
        eprintln!(
            "{} entr{} could not be restored; no partial file was left under its name",
            rep.failed.len(),
            if rep.failed.len() == 1 { "y" } else { "ies" }
        );
    }
}

pub fn check(rep: &CheckReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(rep)?);
        return Ok(());
    }
    println!(
        "{} snapshots, {} blobs in {} packs; {} packs read back",
        rep.snapshots, rep.blobs, rep.packs, rep.packs_read
    );
    for w in &rep.warnings {
        println!("  warning: {w}");
    }
    for e in &rep.errors {
        println!("  ERROR: {e}");
    }
    for s in &rep.damaged_snapshots {
        println!("  damaged snapshot: {s}");
    }
    println!(
        "{}",
        if rep.ok() {
            "no errors"
        } else {
            "THE REPOSITORY IS DAMAGED (see docs/backup-recovery.md)"
        }
    );
    Ok(())
}

pub fn forget(rep: &ForgetReport, dry_run: bool, json: bool) -> Result<()> {
    for d in &rep.damaged {
        eprintln!(
            "lethe: warning: {} is damaged: not decided on, not removed ({})",
            d.object, d.error
        );
    }
    let removed = rep.decisions.iter().filter(|d| !d.keep).count();
    if json {
        let v: Vec<_> = rep
            .decisions
            .iter()
            .map(|d| {
                serde_json::json!({"id": d.id.to_hex(), "time": d.time, "keep": d.keep,
                "reasons": d.reasons.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>()})
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    for d in &rep.decisions {
        println!(
            "{} {}  {:?}",
            if d.keep { "keep  " } else { "remove" },
            short(&d.id.to_hex()),
            d.reasons
        );
    }
    println!(
        "{removed} snapshot(s) {}",
        if dry_run {
            "would be removed"
        } else {
            "removed"
        }
    );
    Ok(())
}

pub fn prune(rep: &PruneReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(rep)?);
    } else {
        println!(
            "deleted {} packs, repacked {} into {}, freed {}",
            rep.packs_deleted,
            rep.packs_repacked,
            rep.packs_written,
            human(rep.bytes_freed)
        );
    }
    Ok(())
}

pub fn repair_index(rep: &RepairIndexReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(rep)?);
        return Ok(());
    }
    println!(
        "read {} packs; indexed {} blobs in {} new index file(s); removed {} old index file(s)",
        rep.packs_read, rep.blobs_indexed, rep.index_files_written, rep.index_files_removed
    );
    for d in &rep.packs_damaged {
        eprintln!(
            "  LOST: {}: {} (its blobs are not indexed)",
            d.object, d.error
        );
    }
    for b in &rep.blobs_dropped {
        eprintln!("  LOST: {b}");
    }
    Ok(())
}

pub fn repair_snapshots(rep: &RepairSnapshotsReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(rep)?);
        return Ok(());
    }
    let verb = if rep.dry_run {
        "would rewrite"
    } else {
        "rewrote"
    };
    println!(
        "{} snapshot(s) intact; {verb} {}",
        rep.intact,
        rep.repaired.len()
    );
    for r in &rep.repaired {
        println!(
            "  {} -> {}",
            short(&r.original),
            if r.new.is_empty() {
                "(dry run)"
            } else {
                short(&r.new)
            }
        );
        for d in &r.dropped {
            println!("      {d}");
        }
    }
    for u in &rep.unrepairable {
        eprintln!("  UNREPAIRABLE: {u}");
    }
    for d in &rep.damaged_files {
        eprintln!("  unreadable: {}: {}", d.object, d.error);
    }
    for r in &rep.removed {
        println!(
            "  {} {r}",
            if rep.dry_run {
                "would remove"
            } else {
                "removed"
            }
        );
    }
    Ok(())
}

pub fn drill(rep: &DrillReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(rep)?);
        return Ok(());
    }
    println!(
        "drill of {}: {} items, {} restored and compared in {:.1} s (seed {:#x}): {}",
        short(&rep.snapshot),
        rep.items,
        human(rep.bytes),
        rep.seconds,
        rep.seed,
        if rep.outcome() == Outcome::Ok {
            "PASS"
        } else {
            "FAIL"
        }
    );
    for f in &rep.failures {
        eprintln!("  DRILL FAILURE: {f}");
    }
    Ok(())
}
