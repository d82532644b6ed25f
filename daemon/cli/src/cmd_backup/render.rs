//! How `lethe backup` shows the engine's reports: text on a terminal, one
//! JSON object (or array) as the last stdout line with `--json`. Problems go
//! to stderr, named. Everything on stdout goes through [`out`], so a closed
//! pipe ends the command quietly instead of a panic.

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lethe_backup::archive::{BackupReport, Progress};
use lethe_backup::check::CheckReport;
use lethe_backup::drill::DrillReport;
use lethe_backup::fresh::{Finding, RepoState};
use lethe_backup::prune::{ForgetReport, PruneReport};
use lethe_backup::repair::{RepairIndexReport, RepairManifestReport, RepairSnapshotsReport};
use lethe_backup::repo::{KeyInfo, SnapshotList};
use lethe_backup::restore::{Reader, RestoreReport};
use lethe_backup::rotate::RotateReport;
use lethe_backup::{Outcome, Repository};
use lethe_repo::snapshot::{Snapshot, Source};
use lethe_repo::tree::NodeKind;
use lethe_repo::Id;
use std::io::{IsTerminal, Write};
use std::path::Path;

/// One line on stdout; a closed pipe is an error the command ends on quietly.
pub fn out(line: impl std::fmt::Display) -> Result<()> {
    let mut o = std::io::stdout().lock();
    writeln!(o, "{line}")?;
    o.flush()?;
    Ok(())
}

/// What the storage provider did, on stderr: tampering loudly, the rest as warnings.
pub fn findings(f: &[Finding]) {
    for x in f {
        if x.kind.is_tampering() {
            eprintln!("lethe: SECURITY: {x}");
        } else {
            eprintln!("lethe: warning: {x}");
        }
    }
}

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
        out(serde_json::to_string(report)?)?;
        return Ok(());
    }
    out(format_args!("snapshot {} saved", short(&report.snapshot)))?;
    out(format_args!(
        "  {} files, {} dirs, {} processed, {} read in {:.1} s",
        report.files,
        report.dirs,
        human(report.bytes_total),
        human(report.bytes_read),
        report.seconds
    ))?;
    match report.dedup_ratio {
        _ if report.bytes_new == 0 || report.bytes_read == 0 => out(format_args!(
            "  unchanged: all {} was already in the repository (stored {}: directory metadata)",
            human(report.bytes_total),
            human(report.bytes_stored)
        ))?,
        Some(r) if r >= 1.05 => out(format_args!(
            "  new {}  stored {}  ({:.1} % of the source was already in the repository; {r:.1} x less stored than processed)",
            human(report.bytes_new),
            human(report.bytes_stored),
            report.already_stored_percent
        ))?,
        Some(_) => out(format_args!(
            "  new {}  stored {}  ({:.1} % of the source was already in the repository)",
            human(report.bytes_new),
            human(report.bytes_stored),
            report.already_stored_percent
        ))?,
        None => out(format_args!("  new {}", human(report.bytes_new)))?,
    }
    Ok(())
}

pub fn snapshots(list: &SnapshotList, st: &RepoState, json: bool) -> Result<()> {
    for d in &list.damaged {
        eprintln!(
            "lethe: warning: {} is damaged and skipped: {}",
            d.object, d.error
        );
    }
    let _ = st;
    if json {
        let v: Vec<_> = list
            .ok
            .iter()
            .map(|(id, s)| {
                serde_json::json!({
                    "id": id.to_hex(), "time": s.time.secs, "hostname": s.hostname,
                    "tags": s.tags, "source": source_label(&s.source),
                    "paths": match &s.source { Source::Tree { paths, .. } => paths.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect::<Vec<_>>(), _ => Vec::new() },
                    "format": match s.layout { lethe_repo::snapshot::TreeLayout::Absolute => 2, lethe_repo::snapshot::TreeLayout::Named => 1 },
                    "bytes_read": s.summary.bytes_read, "bytes_added": s.summary.bytes_added,
                    "changed_during_backup": s.ext.changed_during_backup.len(),
                    "repaired_from": s.ext.repaired.as_ref().map(|r| r.original.to_hex()),
                })
            })
            .collect();
        out(serde_json::to_string(&v)?)?;
        return Ok(());
    }
    out(format_args!(
        "{:<16}  {:<20}  {:<12}  {:<12}  source",
        "id", "time (UTC)", "host", "tags"
    ))?;
    // Newest first, as every other list.
    for (id, s) in list.ok.iter().rev() {
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
        out(format_args!(
            "{:<16}  {:<20}  {:<12}  {:<12}  {}{note}",
            short(&id.to_hex()),
            lethe_core::timefmt::rfc3339_utc(s.time.secs),
            s.hostname,
            s.tags.join(","),
            source_label(&s.source)
        ))?;
    }
    Ok(())
}

/// List a snapshot's files; an unreadable directory is named and skipped.
/// With `--json`, one array of `{path, type, size, mode, mtime}` objects.
pub fn ls(repo: &Repository, id: &Id, snap: &Snapshot, json: bool) -> Result<Outcome> {
    let Source::Tree { root, .. } = snap.source else {
        if json {
            out(
                serde_json::json!({"snapshot": id.to_hex(), "source": source_label(&snap.source)}),
            )?;
        } else {
            out(source_label(&snap.source))?;
        }
        return Ok(Outcome::Ok);
    };
    let mut rows = Vec::new();
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
            let kind = match &n.kind {
                NodeKind::Dir { subtree } => {
                    stack.push((*subtree, p.clone()));
                    "dir"
                }
                NodeKind::File { .. } => "file",
                NodeKind::Symlink { .. } => "symlink",
                NodeKind::HardLink { .. } => "hardlink",
                NodeKind::BlockDev { .. } => "blockdev",
                NodeKind::CharDev { .. } => "chardev",
                NodeKind::Fifo => "fifo",
                NodeKind::Socket => "socket",
            };
            if json {
                rows.push(serde_json::json!({"path": p, "type": kind, "size": n.size,
                    "mode": format!("{:o}", n.mode), "mtime": n.mtime.secs}));
            } else if kind == "dir" {
                out(format_args!("{p}/"))?;
            } else {
                out(format_args!("{p}  {}", n.size))?;
            }
        }
    }
    if json {
        out(serde_json::Value::Array(rows))?;
    }
    Ok(outcome)
}

pub fn restore(id: &Id, rep: &RestoreReport, json: bool) -> Result<()> {
    if json {
        out(serde_json::json!({"snapshot": id.to_hex(), "restored": rep}))?;
    } else {
        out(format_args!(
            "restored {} files, {} dirs, {} from {}; every restored file matched its backup-time BLAKE3",
            rep.files,
            rep.dirs,
            human(rep.bytes),
            short(&id.to_hex())
        ))?;
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
    Ok(())
}

pub fn check(rep: &CheckReport, json: bool) -> Result<()> {
    if json {
        out(serde_json::to_string(rep)?)?;
        return Ok(());
    }
    out(format_args!(
        "manifest generation {}; {} snapshots, {} blobs in {} packs; {} packs read back",
        rep.generation, rep.snapshots, rep.blobs, rep.packs, rep.packs_read
    ))?;
    for w in &rep.warnings {
        out(format_args!("  warning: {w}"))?;
    }
    for e in &rep.errors {
        out(format_args!("  ERROR: {e}"))?;
    }
    for s in &rep.damaged_snapshots {
        out(format_args!("  damaged snapshot: {s}"))?;
    }
    let tampered = rep.freshness.iter().any(|f| f.kind.is_tampering());
    out(if rep.ok() {
        "no errors"
    } else if tampered {
        "FILES WERE CHANGED BEHIND THIS CLIENT'S BACK (see docs/backup-recovery.md, \"Rollback, deletion, replay\")"
    } else {
        "THE REPOSITORY IS DAMAGED (see docs/backup-recovery.md)"
    })?;
    Ok(())
}

pub fn forget(rep: &ForgetReport, pruned: Option<&PruneReport>, json: bool) -> Result<()> {
    for d in &rep.damaged {
        eprintln!(
            "lethe: warning: {} is damaged: not decided on, not removed ({})",
            d.object, d.error
        );
    }
    for n in &rep.notes {
        eprintln!("lethe: note: {n}");
    }
    let removed = rep.decisions.iter().filter(|d| !d.keep).count();
    if json {
        out(serde_json::json!({
            "decisions": rep.decisions,
            "removed": removed,
            "dry_run": rep.dry_run,
            "prune": pruned,
        }))?;
        return Ok(());
    }
    let mut group = None;
    for d in &rep.decisions {
        let g = (d.host.clone(), d.source.clone());
        if group.as_ref() != Some(&g) {
            out(format_args!("{} on {}:", d.source, d.host))?;
            group = Some(g);
        }
        out(format_args!(
            "  {} {}  {}  {}",
            if d.keep { "keep  " } else { "remove" },
            short(&d.id),
            lethe_core::timefmt::rfc3339_utc(d.time),
            d.reasons.join("; ")
        ))?;
    }
    out(format_args!(
        "{removed} snapshot(s) {}",
        if rep.dry_run {
            "would be removed"
        } else {
            "removed"
        }
    ))?;
    if let Some(p) = pruned {
        prune(p, false)?;
    }
    Ok(())
}

pub fn prune(rep: &PruneReport, json: bool) -> Result<()> {
    for n in &rep.notes {
        eprintln!("lethe: note: {n}");
    }
    if json {
        out(serde_json::to_string(rep)?)?;
    } else {
        out(format_args!(
            "deleted {} packs, repacked {} into {}, freed {}",
            rep.packs_deleted,
            rep.packs_repacked,
            rep.packs_written,
            human(rep.bytes_freed)
        ))?;
    }
    Ok(())
}

pub fn repair_index(rep: &RepairIndexReport, json: bool) -> Result<()> {
    for n in &rep.notes {
        eprintln!("lethe: note: {n}");
    }
    if json {
        out(serde_json::to_string(rep)?)?;
        return Ok(());
    }
    out(format_args!(
        "read {} packs; indexed {} blobs in {} new index file(s); removed {} old index file(s)",
        rep.packs_read, rep.blobs_indexed, rep.index_files_written, rep.index_files_removed
    ))?;
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
    for n in &rep.notes {
        eprintln!("lethe: note: {n}");
    }
    if json {
        out(serde_json::to_string(rep)?)?;
        return Ok(());
    }
    let verb = if rep.dry_run {
        "would rewrite"
    } else {
        "rewrote"
    };
    out(format_args!(
        "{} snapshot(s) intact; {verb} {}",
        rep.intact,
        rep.repaired.len()
    ))?;
    for r in &rep.repaired {
        out(format_args!(
            "  {} -> {}",
            short(&r.original),
            if r.new.is_empty() {
                "(dry run)"
            } else {
                short(&r.new)
            }
        ))?;
        for d in &r.dropped {
            out(format_args!("      {d}"))?;
        }
    }
    for u in &rep.unrepairable {
        eprintln!("  UNREPAIRABLE: {u}");
    }
    for d in &rep.damaged_files {
        eprintln!("  unreadable: {}: {}", d.object, d.error);
    }
    for r in &rep.removed {
        out(format_args!(
            "  {} {r}",
            if rep.dry_run {
                "would remove"
            } else {
                "removed"
            }
        ))?;
    }
    Ok(())
}

pub fn repair_manifest(rep: &RepairManifestReport, json: bool) -> Result<()> {
    if json {
        out(serde_json::to_string(rep)?)?;
        return Ok(());
    }
    out(format_args!(
        "manifest generation {} written: {} snapshot(s), {} index file(s) are live",
        rep.generation, rep.snapshots, rep.index_files
    ))?;
    for a in &rep.accepted {
        out(format_args!("  accepted: {a}"))?;
    }
    for l in &rep.lost {
        out(format_args!("  LOST (no longer listed): {l}"))?;
    }
    for a in &rep.adopted {
        out(format_args!("  taken in: {a}"))?;
    }
    for d in &rep.deleted {
        out(format_args!("  deleted (replayed): {d}"))?;
    }
    out("next: `lethe backup check --read-data`; if blobs are missing, `repair index` and `repair snapshots`")?;
    Ok(())
}

pub fn keys(list: &[KeyInfo], json: bool) -> Result<()> {
    if json {
        out(serde_json::to_string(list)?)?;
        return Ok(());
    }
    out(format_args!(
        "  {:<16}  {:<10}  {:<20}  {:<6}  label",
        "id", "kind", "created (UTC)", "format"
    ))?;
    for k in list {
        out(format_args!(
            "{} {:<16}  {:<10}  {:<20}  {:<6}  {}{}",
            if k.in_use { "*" } else { " " },
            short(&k.id),
            k.kind,
            if k.created == 0 {
                "-".to_string()
            } else {
                lethe_core::timefmt::rfc3339_utc(k.created)
            },
            k.format,
            k.label,
            k.problem
                .as_deref()
                .map(|p| format!("  ({p})"))
                .unwrap_or_default()
        ))?;
    }
    Ok(())
}

pub fn rotate(rep: &RotateReport, json: bool) -> Result<()> {
    for n in &rep.notes {
        eprintln!("lethe: note: {n}");
    }
    if json {
        out(serde_json::to_string(rep)?)?;
        return Ok(());
    }
    out(format_args!(
        "new master key (epoch {}) for everything written from now on; {} key file(s) re-wrapped; manifest generation {}",
        rep.epoch,
        rep.key_files.len(),
        rep.generation
    ))?;
    if let Some(k) = &rep.new_recovery_key {
        out("NEW recovery key (print it and store it offline; the old one opens only data written before now):")?;
        out(format_args!("  {k}"))?;
    }
    Ok(())
}

pub fn drill(rep: &DrillReport, json: bool) -> Result<()> {
    if json {
        out(serde_json::to_string(rep)?)?;
        return Ok(());
    }
    out(format_args!(
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
    ))?;
    for f in &rep.failures {
        eprintln!("  DRILL FAILURE: {f}");
    }
    Ok(())
}
