//! `forget` (retention) and `prune` (reclaim space), safe against a concurrent
//! backup and against being killed at any point:
//!
//! - both take the exclusive lock, which no backup, restore, check or drill
//!   holds at the same time;
//! - forget skips damaged snapshot files (named in its result; `repair
//!   snapshots --forget` removes them);
//! - prune refuses to delete anything while an index file or a snapshot is
//!   damaged or a snapshot cannot be read fully;
//! - the order is: write repacked packs → write the new index (its last file
//!   supersedes every old index file) → delete old index files → delete packs
//!   no index names. A kill before the new index leaves only unreferenced new
//!   packs; a kill after it leaves extra files that the next prune removes.

use crate::check::{referenced, CheckReport};
use crate::lock::{Lock, LockKind};
use crate::repo::Damaged;
use crate::repo::Repository;
use crate::restore::Reader;
use crate::writer::write_index;
use crate::BackupError;
use lethe_repo::index::IndexEntry;
use lethe_repo::pack::{PackBuilder, PackReader};
use lethe_repo::retention::{self, Decision, Policy, SnapshotInfo};
use lethe_repo::{BlobKind, FileKind, Id};
use std::collections::{BTreeMap, BTreeSet};

/// What forget decided, and the damaged snapshot files it left alone.
#[derive(Debug, Clone, Default)]
pub struct ForgetReport {
    /// One decision per readable snapshot.
    pub decisions: Vec<Decision>,
    /// Damaged snapshot files (not decided on, not removed).
    pub damaged: Vec<Damaged>,
}

/// Apply a retention policy; with `dry_run` nothing is deleted.
pub fn forget(
    repo: &Repository,
    policy: &Policy,
    dry_run: bool,
) -> Result<ForgetReport, BackupError> {
    if policy.is_empty() {
        return Err(BackupError::Invalid(
            "no retention rule given: refusing to decide (use --keep-last, --keep-daily, ...)"
                .into(),
        ));
    }
    let lock = if dry_run {
        None
    } else {
        Some(Lock::acquire(repo, LockKind::Exclusive)?)
    };
    let list = repo.snapshots()?;
    let infos: Vec<SnapshotInfo> = list
        .ok
        .into_iter()
        .map(|(id, s)| SnapshotInfo {
            id,
            time: s.time.secs,
            nanos: s.time.nanos,
            tags: s.tags,
        })
        .collect();
    let decisions = retention::apply(&infos, policy);
    if let Some(l) = &lock {
        for d in decisions.iter().filter(|d| !d.keep) {
            l.ensure()?;
            repo.store.delete(&FileKind::Snapshot.path(&d.id))?;
        }
    }
    Ok(ForgetReport {
        decisions,
        damaged: list.damaged,
    })
}

/// What prune did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    /// Packs deleted whole.
    pub packs_deleted: usize,
    /// Packs rewritten without their unused blobs.
    pub packs_repacked: usize,
    /// Packs written by the repack.
    pub packs_written: usize,
    /// Bytes of packs deleted.
    pub bytes_deleted: u64,
    /// Bytes of packs written by the repack.
    pub bytes_written: u64,
    /// Bytes freed: deleted minus written (never more than what was deleted).
    pub bytes_freed: u64,
    /// Index files replaced.
    pub index_files_replaced: usize,
}

/// Remove unreferenced data. `max_unused_ppm`: a pack is repacked when more
/// than this share of it is unused (packs with nothing used are always deleted).
pub fn prune(repo: &Repository, max_unused_ppm: u32) -> Result<PruneReport, BackupError> {
    if max_unused_ppm > 1_000_000 {
        return Err(BackupError::Invalid(format!(
            "max-unused {max_unused_ppm} ppm is above 100 %"
        )));
    }
    let lock = Lock::acquire(repo, LockKind::Exclusive)?;
    // One pass over the index files: all entries (duplicates included) for
    // the rewrite, the lookup index for reading snapshots.
    let ie = repo.index_entries()?;
    // The new index supersedes every index file read, current or already
    // superseded, and all of them are deleted afterwards.
    let old_index_files = ie.all_files();
    let (all_entries, damaged_index) = (ie.entries, ie.damaged);
    if !damaged_index.is_empty() {
        return Err(BackupError::Invalid(format!(
            "damaged index files; prune deletes nothing until `repair index` has run: {}",
            damaged_index
                .iter()
                .map(|d| format!("{}: {}", d.object, d.error))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let mut index = lethe_repo::index::Index::new();
    index.extend(all_entries.iter().copied());
    let mut r = Reader::with_index(repo, index);
    let mut cr = CheckReport::default();
    let snaps = repo.snapshots()?;
    if !snaps.damaged.is_empty() {
        return Err(BackupError::Invalid(format!(
            "damaged snapshot files; prune deletes nothing until `repair snapshots --forget` has run: {}",
            snaps
                .damaged
                .iter()
                .map(|d| d.object.clone())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let used = referenced(&mut r, &snaps.ok, &mut cr)?;
    if !cr.errors.is_empty() {
        return Err(BackupError::Invalid(format!(
            "the repository has damaged snapshots; prune deletes nothing until `check` is clean: {}",
            cr.errors.join("; ")
        )));
    }
    for id in used.keys() {
        if !r.index.contains(id) {
            return Err(BackupError::MissingBlob(*id));
        }
    }
    // Group the index by pack.
    let mut by_pack: BTreeMap<Id, Vec<IndexEntry>> = BTreeMap::new();
    for e in &all_entries {
        by_pack.entry(e.pack).or_default().push(*e);
    }
    let stored: BTreeMap<Id, u64> = repo.list_files(FileKind::Pack)?.into_iter().collect();
    let mut rep = PruneReport::default();
    let mut keep_entries: Vec<IndexEntry> = Vec::new();
    let mut delete_packs: BTreeSet<Id> = BTreeSet::new();
    let mut repack: Vec<(Id, Vec<IndexEntry>)> = Vec::new();
    let mut kept_blobs: BTreeSet<Id> = BTreeSet::new();
    for (pack, entries) in &by_pack {
        let Some(&size) = stored.get(pack) else {
            // Missing from storage: nothing to read or delete; `check` names it.
            keep_entries.extend(entries.iter().copied());
            continue;
        };
        // The first copy of each used blob is the one kept.
        let live: Vec<IndexEntry> = entries
            .iter()
            .filter(|e| used.contains_key(&e.id) && !kept_blobs.contains(&e.id))
            .copied()
            .collect();
        if live.is_empty() {
            delete_packs.insert(*pack);
            continue;
        }
        for e in &live {
            kept_blobs.insert(e.id);
        }
        // Unused = the blobs nobody needs (the pack header is neither).
        let all_bytes: u64 = entries.iter().map(|e| u64::from(e.length)).sum();
        let live_bytes: u64 = live.iter().map(|e| u64::from(e.length)).sum();
        let unused = all_bytes.saturating_sub(live_bytes);
        if unused > 0 && unused * 1_000_000 > u64::from(max_unused_ppm) * size {
            repack.push((*pack, live));
        } else {
            keep_entries.extend(live);
        }
    }
    // Packs on storage that no index names: left by killed backups.
    for p in stored.keys() {
        if !by_pack.contains_key(p) {
            delete_packs.insert(*p);
        }
    }
    // 1. Repack.
    if !repack.is_empty() {
        let mut sealer = repo.sealer()?;
        let mut opener = repo.opener();
        let mut data = PackBuilder::new(repo.config.pack_target);
        let mut meta = PackBuilder::new(repo.config.pack_target);
        for (pack, live) in &repack {
            let bytes = repo.store.read(&FileKind::Pack.path(pack))?;
            let reader = PackReader::open(&mut opener, pack, &bytes, true)
                .map_err(|e| BackupError::corrupt(format!("pack {pack}"), e))?;
            for e in live {
                let sealed = reader
                    .sealed(e)
                    .map_err(|err| BackupError::corrupt(format!("pack {pack}"), err))?;
                let pb = if e.kind == BlobKind::Data {
                    &mut data
                } else {
                    &mut meta
                };
                // Sealed blobs are copied as they are: no re-encryption.
                pb.add(e.kind, e.id, sealed)?;
                if pb.is_full() {
                    let full = std::mem::replace(pb, PackBuilder::new(repo.config.pack_target));
                    let fp = full.finish(&mut sealer)?;
                    lock.ensure()?;
                    rep.bytes_written += fp.bytes.len() as u64;
                    repo.store
                        .write(&FileKind::Pack.path(&fp.id), fp.bytes, &repo.write_opts)?;
                    keep_entries.extend(fp.entries);
                    rep.packs_written += 1;
                }
            }
            delete_packs.insert(*pack);
            rep.packs_repacked += 1;
        }
        for pb in [data, meta] {
            if !pb.is_empty() {
                let fp = pb.finish(&mut sealer)?;
                lock.ensure()?;
                rep.bytes_written += fp.bytes.len() as u64;
                repo.store
                    .write(&FileKind::Pack.path(&fp.id), fp.bytes, &repo.write_opts)?;
                keep_entries.extend(fp.entries);
                rep.packs_written += 1;
            }
        }
    }
    if delete_packs.is_empty() && repack.is_empty() && ie.superseded.is_empty() {
        return Ok(rep);
    }
    // 2. The new index, superseding every old one.
    write_index(repo, &lock, &keep_entries, old_index_files.clone())?;
    // 3. Old index files, then 4. unreferenced packs.
    for id in &old_index_files {
        lock.ensure()?;
        repo.store.delete(&FileKind::Index.path(id))?;
    }
    rep.index_files_replaced = old_index_files.len();
    let still: BTreeSet<Id> = keep_entries.iter().map(|e| e.pack).collect();
    for p in &delete_packs {
        if still.contains(p) {
            continue;
        }
        if let Some(sz) = stored.get(p) {
            lock.ensure()?;
            repo.store.delete(&FileKind::Pack.path(p))?;
            rep.bytes_deleted += sz;
            rep.packs_deleted += 1;
        }
    }
    rep.bytes_freed = rep.bytes_deleted.saturating_sub(rep.bytes_written);
    Ok(rep)
}
