//! `forget` (retention) and `prune` (reclaim space), safe against a concurrent
//! backup, a hostile storage provider, and being killed at any point:
//!
//! - both take the exclusive lock, which no backup, restore, check or drill
//!   holds at the same time, and refuse when files were removed, replayed or
//!   rolled back behind our back ([`crate::fresh`]);
//! - forget applies the policy per source (host and paths, restic's default
//!   grouping) to the snapshots a filter selects, or removes named snapshots;
//!   damaged snapshot files are skipped and named;
//! - prune refuses to delete anything while an index file or a snapshot is
//!   damaged or a snapshot cannot be read fully;
//! - the order is: write repacked packs → write the new index files → write the
//!   manifest (the new index files live, the old ones obsolete) → delete the old
//!   index files → delete packs no live index names. A kill before the manifest
//!   leaves only unlisted new files (adopted or pruned later); a kill after it
//!   leaves obsolete files that the next exclusive operation deletes.

use crate::check::{referenced, CheckReport};
use crate::fresh::{Change, Obsolete, RepoState};
use crate::lock::{Lock, LockKind};
use crate::repo::{Damaged, Repository, SnapshotFilter, SourceKey, SourceMatch};
use crate::restore::Reader;
use crate::writer::write_index;
use crate::BackupError;
use lethe_repo::index::{BlobFormat, IndexEntry};
use lethe_repo::pack::{PackBuilder, PackReader};
use lethe_repo::retention::{self, Policy, SnapshotInfo};
use lethe_repo::snapshot::Snapshot;
use lethe_repo::{BlobKind, FileKind, Id};
use std::collections::{BTreeMap, BTreeSet};

/// What to forget.
#[derive(Debug, Clone, Default)]
pub struct ForgetRequest {
    /// The retention policy (applied per source).
    pub policy: Policy,
    /// Only snapshots this filter accepts are considered.
    pub filter: SnapshotFilter,
    /// Only snapshots of exactly this host and source (a scheduled job's own).
    pub source: Option<SourceMatch>,
    /// Snapshots removed by name (id prefixes), whatever the policy says.
    pub ids: Vec<String>,
    /// Decide and report; remove nothing.
    pub dry_run: bool,
}

/// One snapshot's fate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decided {
    /// Snapshot id.
    pub id: String,
    /// Unix seconds.
    pub time: i64,
    /// Host that made it.
    pub host: String,
    /// Its source, in words.
    pub source: String,
    /// Kept or removed.
    pub keep: bool,
    /// Why it is kept (or removed), in words.
    pub reasons: Vec<String>,
}

/// What forget decided, and the damaged snapshot files it left alone.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ForgetReport {
    /// One decision per snapshot considered, newest first within each source.
    pub decisions: Vec<Decided>,
    /// Damaged snapshot files (not decided on, not removed).
    pub damaged: Vec<Damaged>,
    /// Removed snapshot files that could not be deleted yet (Object Lock), and
    /// what the start of the operation cleaned up.
    pub notes: Vec<String>,
    /// Nothing was removed.
    pub dry_run: bool,
}

/// Apply a retention policy to every snapshot; with `dry_run` nothing is
/// deleted. (Kept for callers of the first API; see [`forget_with`].)
pub fn forget(
    repo: &Repository,
    policy: &Policy,
    dry_run: bool,
) -> Result<ForgetReport, BackupError> {
    forget_with(
        repo,
        &ForgetRequest {
            policy: policy.clone(),
            dry_run,
            ..ForgetRequest::default()
        },
    )
}

fn info(s: &Snapshot, id: Id) -> SnapshotInfo {
    SnapshotInfo {
        id,
        time: s.time.secs,
        nanos: s.time.nanos,
        tags: s.tags.clone(),
    }
}

/// Forget: named snapshots, and the policy per source among those the filter
/// selects.
pub fn forget_with(repo: &Repository, req: &ForgetRequest) -> Result<ForgetReport, BackupError> {
    if req.policy.is_empty() && req.ids.is_empty() {
        return Err(BackupError::Invalid(
            "no retention rule and no snapshot given: refusing to decide (use --keep-last, --keep-daily, ..., or name snapshots)"
                .into(),
        ));
    }
    let lock = if req.dry_run {
        None
    } else {
        Some(Lock::acquire(repo, LockKind::Exclusive)?)
    };
    let (st, adopt, undeletable, mut notes) = match &lock {
        Some(l) => {
            let ws = repo.begin_write(l, true)?;
            (ws.state, ws.adopt, ws.undeletable, ws.notes)
        }
        None => (
            repo.state()?,
            Change::default(),
            Obsolete::default(),
            Vec::new(),
        ),
    };
    let mut live = st.clone();
    live.snapshots.extend(&adopt.add_snapshots);
    let list = repo.snapshots_in(&live)?;
    let mut named: BTreeSet<Id> = BTreeSet::new();
    for p in &req.ids {
        let p = p.to_ascii_lowercase();
        let m: Vec<Id> = list
            .ok
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| id.to_hex().starts_with(&p))
            .collect();
        match m.as_slice() {
            [one] => {
                named.insert(*one);
            }
            [] => return Err(BackupError::NotFound(format!("no snapshot {p}"))),
            _ => {
                return Err(BackupError::NotFound(format!(
                    "{p} is ambiguous ({} snapshots)",
                    m.len()
                )))
            }
        }
    }
    let mut decisions = Vec::new();
    let describe = |id: &Id, s: &Snapshot, keep: bool, reasons: Vec<String>| Decided {
        id: id.to_hex(),
        time: s.time.secs,
        host: s.hostname.clone(),
        source: SourceKey::of(s).describe(),
        keep,
        reasons,
    };
    for (id, s) in list.ok.iter().filter(|(id, _)| named.contains(id)) {
        decisions.push(describe(
            id,
            s,
            false,
            vec!["named on the command line".into()],
        ));
    }
    if !req.policy.is_empty() {
        let mut groups: BTreeMap<(String, SourceKey), Vec<(Id, &Snapshot)>> = BTreeMap::new();
        for (id, s) in &list.ok {
            if named.contains(id)
                || !req.filter.matches(s)
                || req.source.as_ref().is_some_and(|m| !m.matches(s))
            {
                continue;
            }
            groups
                .entry((s.hostname.clone(), SourceKey::of(s)))
                .or_default()
                .push((*id, s));
        }
        for members in groups.values() {
            let by_id: BTreeMap<Id, &Snapshot> = members.iter().copied().collect();
            let infos: Vec<SnapshotInfo> = members.iter().map(|(id, s)| info(s, *id)).collect();
            for d in retention::apply(&infos, &req.policy) {
                let s = by_id[&d.id];
                let reasons = if d.keep {
                    d.reasons.iter().map(|r| r.to_string()).collect()
                } else {
                    vec!["no --keep rule keeps it".to_string()]
                };
                decisions.push(describe(&d.id, s, d.keep, reasons));
            }
        }
    }
    let removed: Vec<Id> = decisions
        .iter()
        .filter(|d| !d.keep)
        .filter_map(|d| Id::from_hex(&d.id).ok())
        .collect();
    if let Some(l) = &lock {
        let mut obsolete = undeletable.clone();
        obsolete.snapshots.extend(&removed);
        repo.commit(
            l,
            &Change {
                add_snapshots: adopt.add_snapshots.clone(),
                add_index: adopt.add_index.clone(),
                remove_snapshots: removed.clone(),
                exclusive: Some(obsolete),
                ..Change::default()
            },
        )?;
        let mut still = undeletable;
        for id in &removed {
            l.ensure()?;
            if let Err(e) = repo.store.delete(&FileKind::Snapshot.path(id)) {
                still.snapshots.push(*id);
                notes.push(format!(
                    "snapshot {id} is forgotten but its file could not be deleted yet ({e}); the next forget or prune deletes it"
                ));
            }
        }
        if !removed.is_empty() {
            repo.settle(l, still)?;
        }
    }
    Ok(ForgetReport {
        decisions,
        damaged: list.damaged,
        notes,
        dry_run: req.dry_run,
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
    /// Objects that could not be deleted yet (Object Lock), and clean-up notes.
    pub notes: Vec<String>,
}

/// Remove unreferenced data. `max_unused_ppm`: a pack is repacked when more
/// than this share of it is unused (packs with nothing used are always deleted).
/// Blobs of format version 1 in repacked packs are sealed again in version 2.
pub fn prune(repo: &Repository, max_unused_ppm: u32) -> Result<PruneReport, BackupError> {
    if max_unused_ppm > 1_000_000 {
        return Err(BackupError::Invalid(format!(
            "max-unused {max_unused_ppm} ppm is above 100 %"
        )));
    }
    let lock = Lock::acquire(repo, LockKind::Exclusive)?;
    let ws = repo.begin_write(&lock, true)?;
    let mut rep = PruneReport {
        notes: ws.notes.clone(),
        ..PruneReport::default()
    };
    let mut live: RepoState = ws.state.clone();
    live.snapshots.extend(&ws.adopt.add_snapshots);
    live.index.extend(&ws.adopt.add_index);
    // One pass over the index files: all entries (duplicates included) for
    // the rewrite, the lookup index for reading snapshots.
    let ie = repo.index_entries_in(&live)?;
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
    let snaps = repo.snapshots_in(&live)?;
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
    let mut keep_entries: Vec<IndexEntry> = Vec::new();
    let mut delete_packs: BTreeSet<Id> = BTreeSet::new();
    let mut repack: Vec<(Id, Vec<IndexEntry>)> = Vec::new();
    let mut kept_blobs: BTreeSet<Id> = BTreeSet::new();
    for (pack, entries) in &by_pack {
        let Some(&size) = stored.get(pack) else {
            // Missing from storage: nothing to read or delete; `check` names it.
            let mut here = BTreeSet::new();
            keep_entries.extend(entries.iter().filter(|e| here.insert(e.offset)).copied());
            continue;
        };
        // The first copy of each used blob is the one kept (an entry listed by
        // two index files, e.g. one adopted from an interrupted prune, counts once).
        let mut here: BTreeSet<(Id, u32)> = BTreeSet::new();
        let live: Vec<IndexEntry> = entries
            .iter()
            .filter(|e| {
                used.contains_key(&e.id)
                    && !kept_blobs.contains(&e.id)
                    && here.insert((e.id, e.offset))
            })
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
        let offsets: BTreeMap<u32, u32> = entries.iter().map(|e| (e.offset, e.length)).collect();
        let all_bytes: u64 = offsets.values().map(|l| u64::from(*l)).sum();
        let live_bytes: u64 = live.iter().map(|e| u64::from(e.length)).sum();
        let unused = all_bytes.saturating_sub(live_bytes);
        if unused > 0 && unused * 1_000_000 > u64::from(max_unused_ppm) * size {
            repack.push((*pack, live));
        } else {
            keep_entries.extend(live);
        }
    }
    // Packs on storage that no live index names: left by killed backups, or
    // named only by replayed index files.
    for p in stored.keys() {
        if !by_pack.contains_key(p) {
            delete_packs.insert(*p);
        }
    }
    // 1. Repack.
    if !repack.is_empty() {
        let mut sealer = repo.sealer()?;
        let mut opener = repo.opener();
        let target = repo.config.pack_target;
        let mut data = PackBuilder::new(target);
        let mut meta = PackBuilder::new(target);
        for (pack, live) in &repack {
            let bytes = repo.store.read(&FileKind::Pack.path(pack))?;
            let reader = PackReader::open(repo.keys(), &mut opener, pack, &bytes, true)
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
                match e.format {
                    // Version-2 blobs are copied as they are: no re-encryption.
                    BlobFormat::V2 { .. } => pb.add_sealed(e, sealed)?,
                    // Version-1 blobs are sealed again in version 2 (no header left in
                    // clear).
                    BlobFormat::V1 => {
                        let plain =
                            lethe_repo::pack::open_blob(&mut opener, repo.keys(), e, sealed)
                                .map_err(|err| BackupError::corrupt(format!("pack {pack}"), err))?;
                        pb.seal_and_add(&mut sealer, e.kind, e.id, &plain)?;
                    }
                }
                if pb.is_full() {
                    let full = std::mem::replace(pb, PackBuilder::new(target));
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
    let adopt_only = Change {
        add_snapshots: ws.adopt.add_snapshots.clone(),
        add_index: ws.adopt.add_index.clone(),
        exclusive: Some(ws.undeletable.clone()),
        ..Change::default()
    };
    if delete_packs.is_empty() && repack.is_empty() && ie.superseded.is_empty() {
        repo.commit(&lock, &adopt_only)?;
        return Ok(rep);
    }
    // 2. The new index files, 3. the manifest: they are live, the old ones obsolete.
    let new_files = write_index(repo, &lock, &keep_entries, ws.base)?;
    let mut obsolete = ws.undeletable.clone();
    obsolete.index.extend(&old_index_files);
    repo.commit(
        &lock,
        &Change {
            add_snapshots: ws.adopt.add_snapshots.clone(),
            add_index: new_files,
            remove_index: live.index.clone(),
            exclusive: Some(obsolete),
            ..Change::default()
        },
    )?;
    // 4. Old index files, 5. a manifest that no longer names them, then 6.
    // packs no live index names.
    let mut still = ws.undeletable.clone();
    for id in &old_index_files {
        lock.ensure()?;
        if let Err(e) = repo.store.delete(&FileKind::Index.path(id)) {
            still.index.push(*id);
            rep.notes
                .push(format!("index {id} could not be deleted yet: {e}"));
        }
    }
    if !old_index_files.is_empty() {
        repo.settle(&lock, still)?;
    }
    rep.index_files_replaced = old_index_files.len();
    let still: BTreeSet<Id> = keep_entries.iter().map(|e| e.pack).collect();
    for p in &delete_packs {
        if still.contains(p) {
            continue;
        }
        if let Some(sz) = stored.get(p) {
            lock.ensure()?;
            match repo.store.delete(&FileKind::Pack.path(p)) {
                Ok(()) => {
                    rep.bytes_deleted += sz;
                    rep.packs_deleted += 1;
                }
                Err(e) => rep
                    .notes
                    .push(format!("pack {p} could not be deleted yet: {e}")),
            }
        }
    }
    rep.bytes_freed = rep.bytes_deleted.saturating_sub(rep.bytes_written);
    Ok(rep)
}
