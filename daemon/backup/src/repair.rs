//! Repairs, under the exclusive lock (see `docs/backup-recovery.md`).
//!
//! - [`repair_index`]: rebuild the index from the packs' own headers (packs are
//!   self-describing), superseding every old index file, damaged or not. With
//!   `read_data` every blob is also decrypted and authenticated, and only the
//!   good ones are indexed, so a flipped bit in one blob costs that blob only.
//! - [`repair_snapshots`]: rewrite every snapshot that needs a blob the index
//!   does not have (or whose pack is gone): files with missing content are
//!   dropped, unreadable directories become empty, missing image ranges become
//!   zeros (listed as unreadable), and the new snapshot carries a
//!   [`RepairRecord`] naming the original and everything dropped. With
//!   `forget`, the originals, and snapshot files that cannot be read at all,
//!   are removed (restic's `repair snapshots --forget`).
//! - [`repair_manifest`]: after a rollback, deletion or replay was found,
//!   accept the repository as it is now: a new manifest (above every generation
//!   this client has seen) lists the live files that are still there and the
//!   files interrupted backups wrote; replayed files are deleted. What is lost is
//!   named.

use crate::fresh::{Change, FindingKind, Obsolete};
use crate::lock::{Lock, LockKind};
use crate::repo::{Damaged, Repository};
use crate::writer::{self, BlobSink, Cancel, WriteStats};
use crate::BackupError;
use lethe_repo::index::{Index, IndexEntry};
use lethe_repo::pack::PackReader;
use lethe_repo::snapshot::{RepairRecord, Snapshot, Source};
use lethe_repo::tree::{Extent, ExtentList, NodeKind, Timestamp, Tree};
use lethe_repo::{BlobKind, FileKind, Id};
use std::collections::HashSet;
use std::sync::Arc;

/// What `repair index` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairIndexReport {
    /// Packs whose header (or, with read_data, whole content) was read.
    pub packs_read: usize,
    /// Blobs in the new index.
    pub blobs_indexed: usize,
    /// Blobs left out because they failed authentication (read_data only).
    pub blobs_dropped: Vec<String>,
    /// Packs that could not be indexed at all (header unreadable): their blobs are lost.
    pub packs_damaged: Vec<Damaged>,
    /// Index files written.
    pub index_files_written: usize,
    /// Old index files removed (every one, damaged or not).
    pub index_files_removed: usize,
    /// Clean-up notes.
    pub notes: Vec<String>,
}

/// Rebuild the index from the packs.
pub fn repair_index(repo: &Repository, read_data: bool) -> Result<RepairIndexReport, BackupError> {
    let lock = Lock::acquire(repo, LockKind::Exclusive)?;
    let ws = repo.begin_write(&lock, true)?;
    let mut rep = RepairIndexReport {
        notes: ws.notes.clone(),
        ..RepairIndexReport::default()
    };
    // Every index file on storage is replaced; only the live ones are named in
    // the manifest, so replayed files stay ignored (and are deleted with the rest).
    let old: Vec<Id> = repo
        .list_files(FileKind::Index)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut entries: Vec<IndexEntry> = Vec::new();
    let mut opener = repo.opener();
    for (pack, size) in repo.list_files(FileKind::Pack)? {
        rep.packs_read += 1;
        let res = if read_data {
            read_whole(repo, &pack, &mut opener, &mut rep.blobs_dropped)
        } else {
            repo.pack_header(&pack, size)
        };
        match res {
            Ok(es) => entries.extend(es),
            Err(e @ (BackupError::Corrupt { .. } | BackupError::Repo(_))) => {
                rep.packs_damaged.push(Damaged {
                    object: format!("pack {pack}"),
                    error: e.to_string(),
                })
            }
            Err(e) => return Err(e),
        }
    }
    rep.blobs_indexed = entries.len();
    let written = writer::write_index(repo, &lock, &entries, ws.base)?;
    rep.index_files_written = written.len();
    let mut obsolete = ws.undeletable.clone();
    let mut still = ws.undeletable.clone();
    obsolete
        .index
        .extend(old.iter().filter(|id| !written.contains(id)));
    let mut remove = ws.state.index.clone();
    remove.extend(&ws.adopt.add_index);
    repo.commit(
        &lock,
        &Change {
            add_snapshots: ws.adopt.add_snapshots.clone(),
            add_index: written.clone(),
            remove_index: remove,
            exclusive: Some(obsolete),
            ..Change::default()
        },
    )?;
    for id in &old {
        if written.contains(id) {
            continue;
        }
        lock.ensure()?;
        match repo.store.delete(&FileKind::Index.path(id)) {
            Ok(()) => rep.index_files_removed += 1,
            Err(e) => {
                still.index.push(*id);
                rep.notes
                    .push(format!("index {id} could not be deleted yet: {e}"))
            }
        }
    }
    if rep.index_files_removed > 0 {
        repo.settle(&lock, still)?;
    }
    Ok(rep)
}

/// Download a pack and return the entries of the blobs that authenticate.
fn read_whole(
    repo: &Repository,
    pack: &Id,
    opener: &mut lethe_repo::crypto::Opener,
    dropped: &mut Vec<String>,
) -> Result<Vec<IndexEntry>, BackupError> {
    let bytes = repo.store.read(&FileKind::Pack.path(pack))?;
    let reader = PackReader::open(repo.keys(), opener, pack, &bytes, false)
        .map_err(|e| BackupError::corrupt(format!("pack {pack}"), e))?;
    let mut good = Vec::new();
    for e in reader.entries() {
        let ok = reader
            .sealed(e)
            .and_then(|s| lethe_repo::pack::open_blob(opener, repo.keys(), e, s));
        match ok {
            Ok(_) => good.push(*e),
            Err(err) => dropped.push(format!("{:?} blob {} in pack {pack}: {err}", e.kind, e.id)),
        }
    }
    Ok(good)
}

/// One rewritten snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RepairedSnapshot {
    /// The damaged original.
    pub original: String,
    /// The new snapshot (empty in a dry run).
    pub new: String,
    /// What is not in the new snapshot.
    pub dropped: Vec<String>,
}

/// What `repair snapshots` did (or would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairSnapshotsReport {
    /// Snapshots that needed nothing.
    pub intact: usize,
    /// Rewritten snapshots.
    pub repaired: Vec<RepairedSnapshot>,
    /// Snapshots nothing could be saved from (root tree or extent list unreadable).
    pub unrepairable: Vec<String>,
    /// Snapshot files removed (`forget`): originals of repaired ones, unrepairable
    /// ones and unreadable snapshot files.
    pub removed: Vec<String>,
    /// Snapshot files that cannot be read at all.
    pub damaged_files: Vec<Damaged>,
    /// Nothing was written.
    pub dry_run: bool,
    /// Clean-up notes.
    pub notes: Vec<String>,
}

/// Where new tree and extent-list blobs go: the session's sink, or nowhere
/// (dry run; ids are computed all the same).
enum Out<'s, 'a> {
    Sink(&'s mut BlobSink<'a>),
    Dry(&'a Repository),
}

impl Out<'_, '_> {
    fn add(&mut self, kind: BlobKind, data: Vec<u8>) -> Result<Id, BackupError> {
        match self {
            Out::Sink(s) => s.add(kind, data),
            Out::Dry(repo) => Ok(repo.keys().blob_id(kind, &data)),
        }
    }
}

struct Fixer<'a> {
    repo: &'a Repository,
    index: &'a Index,
    opener: lethe_repo::crypto::Opener,
    dropped: Vec<String>,
    /// Snapshot paths of dropped files (their hard links go too).
    gone: HashSet<Vec<u8>>,
}

impl Fixer<'_> {
    fn has(&self, id: &Id) -> bool {
        self.index.contains(id)
    }

    /// The tree `id` at `path`, with unavailable content dropped; `None` when unchanged.
    fn tree(
        &mut self,
        out: &mut Out<'_, '_>,
        id: &Id,
        path: &[u8],
    ) -> Result<Option<Id>, BackupError> {
        let bytes = self
            .repo
            .blob(self.index, BlobKind::Tree, id, &mut self.opener);
        let tree = bytes.and_then(|b| {
            Tree::decode(&b).map_err(|e| BackupError::corrupt(format!("tree {id}"), e))
        })?;
        let mut changed = false;
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for mut n in tree.nodes {
            let mut p = path.to_vec();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(&n.name);
            let show = String::from_utf8_lossy(&p).into_owned();
            match &n.kind {
                NodeKind::File { content, .. } => {
                    let missing = content
                        .iter()
                        .filter(|e| matches!(e, Extent::Data { id, .. } if !self.has(id)))
                        .count();
                    if missing > 0 {
                        self.dropped.push(format!(
                            "{show}: {missing} of {} content blobs missing (file dropped)",
                            content.len()
                        ));
                        self.gone.insert(p);
                        changed = true;
                        continue;
                    }
                }
                NodeKind::HardLink { target } if self.gone.contains(target) => {
                    self.dropped.push(format!(
                        "{show}: hard link to dropped {} (dropped)",
                        String::from_utf8_lossy(target)
                    ));
                    changed = true;
                    continue;
                }
                NodeKind::Dir { subtree } => match self.tree(out, subtree, &p) {
                    Ok(None) => {}
                    Ok(Some(new)) => {
                        n.kind = NodeKind::Dir { subtree: new };
                        changed = true;
                    }
                    Err(e) => {
                        self.dropped.push(format!(
                            "{show}/: directory unreadable ({e}); replaced by an empty directory"
                        ));
                        let empty = out.add(BlobKind::Tree, Tree::default().encode()?)?;
                        n.kind = NodeKind::Dir { subtree: empty };
                        changed = true;
                    }
                },
                _ => {}
            }
            nodes.push(n);
        }
        if !changed {
            return Ok(None);
        }
        Ok(Some(out.add(BlobKind::Tree, Tree { nodes }.encode()?)?))
    }

    /// Extents of an image with unavailable or damaged data replaced by zeros,
    /// the new whole-content BLAKE3 and the replaced ranges; `None` when intact.
    #[allow(clippy::type_complexity)]
    fn image(
        &mut self,
        lists: &[Id],
    ) -> Result<Option<(Vec<Extent>, [u8; 32], Vec<(u64, u64)>)>, BackupError> {
        let mut ext = Vec::new();
        for l in lists {
            let b = self
                .repo
                .blob(self.index, BlobKind::ExtentList, l, &mut self.opener)?;
            ext.extend(
                ExtentList::decode(&b)
                    .map_err(|e| BackupError::corrupt(format!("extent list {l}"), e))?
                    .extents,
            );
        }
        if ext.iter().all(|e| {
            matches!(e, Extent::Zero { .. }) || matches!(e, Extent::Data { id, .. } if self.has(id))
        }) {
            return Ok(None);
        }
        // Read everything that is there to compute the new whole-content hash.
        let mut h = blake3::Hasher::new();
        let mut out = Vec::with_capacity(ext.len());
        let mut zeroed = Vec::new();
        let mut off = 0u64;
        let zeros = vec![0u8; 1 << 20];
        for e in ext {
            let len = e.len();
            let data = match e {
                Extent::Data { id, .. } if self.has(&id) => self
                    .repo
                    .blob(self.index, BlobKind::Data, &id, &mut self.opener)
                    .ok()
                    .filter(|b| b.len() as u64 == len),
                _ => None,
            };
            match (e, data) {
                (Extent::Data { .. }, Some(b)) => {
                    h.update(&b);
                    out.push(e);
                }
                (Extent::Zero { .. }, _) | (Extent::Data { .. }, None) => {
                    if matches!(e, Extent::Data { .. }) {
                        zeroed.push((off, len));
                        self.dropped.push(format!(
                            "bytes {off}..{}: data missing, restored as zeros",
                            off + len
                        ));
                    }
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(zeros.len() as u64) as usize;
                        h.update(&zeros[..n]);
                        left -= n as u64;
                    }
                    out.push(Extent::Zero { len });
                }
            }
            off += len;
        }
        Ok(Some((out, *h.finalize().as_bytes(), zeroed)))
    }
}

/// A new snapshot to write, and the original it replaces.
struct Planned {
    original: Id,
    snap: Snapshot,
}

/// Rewrite damaged snapshots (see the module docs). `now` is recorded in the
/// repair record.
pub fn repair_snapshots(
    repo: &Repository,
    forget: bool,
    dry_run: bool,
    now: Timestamp,
) -> Result<RepairSnapshotsReport, BackupError> {
    let lock = Lock::acquire(repo, LockKind::Exclusive)?;
    let (st, adopt, undeletable, notes) = if dry_run {
        let st = repo.state()?;
        st.refuse_if_tampered("refusing to repair")?;
        (st, Change::default(), Obsolete::default(), Vec::new())
    } else {
        let ws = repo.begin_write(&lock, true)?;
        (ws.state, ws.adopt, ws.undeletable, ws.notes)
    };
    let base = st.generation();
    let mut live = st.clone();
    live.snapshots.extend(&adopt.add_snapshots);
    live.index.extend(&adopt.add_index);
    // Only blobs whose pack is stored count as present.
    let li = repo.load_in(&live, true)?;
    let list = repo.snapshots_in(&live)?;
    let mut rep = RepairSnapshotsReport {
        dry_run,
        damaged_files: list.damaged.clone(),
        notes,
        ..RepairSnapshotsReport::default()
    };
    let mut plans: Vec<Planned> = Vec::new();
    let mut unrepairable: Vec<Id> = Vec::new();
    let mut walk = |out: &mut Out<'_, '_>| -> Result<(), BackupError> {
        for (sid, s) in &list.ok {
            let mut fx = Fixer {
                repo,
                index: &li.index,
                opener: repo.opener(),
                dropped: Vec::new(),
                gone: HashSet::new(),
            };
            let mut snap = s.clone();
            let changed = match &s.source {
                Source::Tree { root, paths } => match fx.tree(out, root, b"") {
                    Ok(None) => false,
                    Ok(Some(new)) => {
                        snap.source = Source::Tree {
                            root: new,
                            paths: paths.clone(),
                        };
                        true
                    }
                    Err(e) => {
                        rep.unrepairable
                            .push(format!("snapshot {sid}: root tree: {e}"));
                        unrepairable.push(*sid);
                        continue;
                    }
                },
                Source::Device { extent_lists, .. } | Source::Stream { extent_lists, .. } => {
                    match fx.image(extent_lists) {
                        Ok(None) => false,
                        Ok(Some((ext, blake3, zeroed))) => {
                            let mut ids = Vec::new();
                            for l in ExtentList::split(&ext) {
                                ids.push(out.add(BlobKind::ExtentList, l.encode()?)?);
                            }
                            match &mut snap.source {
                                Source::Device {
                                    extent_lists,
                                    blake3: b,
                                    unreadable,
                                    ..
                                } => {
                                    *extent_lists = ids;
                                    *b = blake3;
                                    unreadable.extend(zeroed);
                                    unreadable.sort_unstable();
                                }
                                Source::Stream {
                                    extent_lists,
                                    blake3: b,
                                    ..
                                } => {
                                    *extent_lists = ids;
                                    *b = blake3;
                                }
                                Source::Tree { .. } => {}
                            }
                            true
                        }
                        Err(e) => {
                            rep.unrepairable
                                .push(format!("snapshot {sid}: extent lists: {e}"));
                            unrepairable.push(*sid);
                            continue;
                        }
                    }
                }
            };
            if !changed {
                rep.intact += 1;
                continue;
            }
            snap.ext.repaired = Some(RepairRecord {
                original: *sid,
                time: now,
                dropped: fx.dropped,
            });
            plans.push(Planned {
                original: *sid,
                snap,
            });
        }
        Ok(())
    };
    let mut new_index = Vec::new();
    if dry_run {
        walk(&mut Out::Dry(repo))?;
    } else {
        let stats = Arc::new(WriteStats::default());
        let out = writer::session(
            repo,
            &lock,
            &li.index,
            base,
            1,
            stats,
            &Cancel::default(),
            |sink| walk(&mut Out::Sink(sink)),
        )?;
        new_index = out.index_files;
    }
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for mut p in plans {
        let dropped = p
            .snap
            .ext
            .repaired
            .as_ref()
            .map(|r| r.dropped.clone())
            .unwrap_or_default();
        let new = if dry_run {
            String::new()
        } else {
            p.snap.generation = base;
            let bytes = p.snap.seal(&mut repo.sealer()?)?;
            lock.ensure()?;
            let id = repo.write_file(FileKind::Snapshot, bytes)?;
            added.push(id);
            id.to_hex()
        };
        rep.repaired.push(RepairedSnapshot {
            original: p.original.to_hex(),
            new,
            dropped,
        });
        if forget {
            removed.push(p.original);
            rep.removed
                .push(format!("snapshot {} (repaired)", p.original));
        }
    }
    if forget {
        for id in &unrepairable {
            removed.push(*id);
            rep.removed.push(format!("snapshot {id} (unrepairable)"));
        }
        for d in &list.damaged {
            let Some(hex) = d.object.strip_prefix("snapshot ") else {
                continue;
            };
            removed.push(Id::from_hex(hex)?);
            rep.removed.push(format!("{} (unreadable file)", d.object));
        }
    }
    if !dry_run {
        let mut obsolete = undeletable;
        obsolete.snapshots.extend(&removed);
        let mut add_snapshots = adopt.add_snapshots.clone();
        add_snapshots.extend(&added);
        let mut add_index = adopt.add_index.clone();
        add_index.extend(&new_index);
        repo.commit(
            &lock,
            &Change {
                add_snapshots,
                add_index,
                remove_snapshots: removed.clone(),
                exclusive: Some(obsolete),
                ..Change::default()
            },
        )?;
        for id in &removed {
            lock.ensure()?;
            if let Err(e) = repo.store.delete(&FileKind::Snapshot.path(id)) {
                rep.notes
                    .push(format!("snapshot {id} could not be deleted yet: {e}"));
            }
        }
    }
    Ok(rep)
}

/// What `repair manifest` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairManifestReport {
    /// The generation written.
    pub generation: u64,
    /// Everything that was found before (what is being accepted).
    pub accepted: Vec<String>,
    /// Listed files that are gone for good (no longer listed).
    pub lost: Vec<String>,
    /// Files written by interrupted backups that are now listed.
    pub adopted: Vec<String>,
    /// Replayed files, deleted.
    pub deleted: Vec<String>,
    /// Live snapshots after the repair.
    pub snapshots: usize,
    /// Live index files after the repair.
    pub index_files: usize,
}

/// Accept the repository as it is now, after `check` found a rollback, deletion
/// or replay: a new manifest, above every generation this client has seen, lists
/// the live files still there and what interrupted backups wrote; replayed files
/// are deleted. Blobs the remaining snapshots need but storage lost are then
/// `check`'s, `repair index`'s and `repair snapshots`' business.
pub fn repair_manifest(repo: &Repository) -> Result<RepairManifestReport, BackupError> {
    let lock = Lock::acquire(repo, LockKind::Exclusive)?;
    let st = repo.state()?;
    let mut rep = RepairManifestReport {
        accepted: st.findings.iter().map(|f| f.to_string()).collect(),
        ..RepairManifestReport::default()
    };
    let replayed: Vec<(FileKind, Id)> = st
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Replayed)
        .filter_map(|f| {
            let (kind, hex) = f.object.split_once(' ')?;
            let kind = if kind == "snapshot" {
                FileKind::Snapshot
            } else {
                FileKind::Index
            };
            Some((kind, Id::from_hex(hex).ok()?))
        })
        .collect();
    for f in st
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Deleted)
    {
        rep.lost.push(f.object.clone());
    }
    let mut m = match &st.manifest {
        Some(m) => m.clone(),
        None => {
            // No readable manifest at all: start from everything on storage that
            // reads (there is nothing to tell replays from live files with).
            let mut m = lethe_repo::manifest::Manifest::first(
                repo.keys().current_epoch(),
                crate::repo::now(),
            );
            m.generation = 0;
            m.watermark = 0;
            m.snapshots = st.snapshots.clone();
            m.index = st.index.clone();
            m
        }
    };
    let seen = match &repo.seen {
        Some(s) => s.get(&repo.config.repo_id)?.unwrap_or_default().generation,
        None => 0,
    };
    let newest_name = st
        .findings
        .iter()
        .filter_map(|f| {
            f.object
                .strip_prefix("manifest ")
                .and_then(|g| g.parse::<u64>().ok())
        })
        .max()
        .unwrap_or(0);
    m.generation = m.generation.max(seen).max(newest_name) + 1;
    m.watermark = m.generation;
    m.epoch = repo.keys().current_epoch();
    m.time = crate::repo::now();
    m.audit_checkpoint = repo.audit_checkpoint.clone();
    m.snapshots = st.snapshots.clone();
    m.snapshots.extend(&st.uncommitted_snapshots);
    m.index = st.index.clone();
    m.index.extend(&st.uncommitted_index);
    m.obsolete_snapshots = st.leftover_snapshots.clone();
    m.obsolete_index = st.leftover_index.clone();
    for (kind, id) in &replayed {
        match kind {
            FileKind::Snapshot => m.obsolete_snapshots.push(*id),
            _ => m.obsolete_index.push(*id),
        }
    }
    m.normalize();
    rep.adopted = st
        .uncommitted_snapshots
        .iter()
        .map(|id| format!("snapshot {id}"))
        .chain(st.uncommitted_index.iter().map(|id| format!("index {id}")))
        .collect();
    let bytes = m.seal(&mut repo.sealer()?)?;
    lock.ensure()?;
    if !repo.store.create(
        &lethe_repo::manifest::manifest_path(m.generation),
        bytes,
        &lethe_backend::WriteOptions::default(),
    )? {
        return Err(BackupError::Invalid(format!(
            "manifest generation {} already exists: run `repair manifest` again",
            m.generation
        )));
    }
    if let Some(s) = &repo.seen {
        s.raise(
            &repo.config.repo_id,
            crate::seen::Seen {
                generation: m.generation,
                epoch: m.epoch,
            },
        )?;
    }
    let mut still = crate::fresh::Obsolete {
        snapshots: st.leftover_snapshots.clone(),
        index: st.leftover_index.clone(),
    };
    for (kind, id) in &replayed {
        lock.ensure()?;
        if repo.store.delete(&kind.path(id)).is_ok() {
            rep.deleted.push(format!(
                "{} {id}",
                if *kind == FileKind::Snapshot {
                    "snapshot"
                } else {
                    "index"
                }
            ));
        } else if *kind == FileKind::Snapshot {
            still.snapshots.push(*id);
        } else {
            still.index.push(*id);
        }
    }
    for o in repo.store.list(lethe_repo::manifest::MANIFEST_DIR)? {
        if lethe_repo::manifest::parse_manifest_path(&o.name).is_some_and(|g| g < m.generation) {
            let _ = repo.store.delete(&o.name);
        }
    }
    // The replayed files are gone: a copy put back again is a replay again.
    let m = if replayed.is_empty() {
        m
    } else {
        repo.settle(&lock, still)?
    };
    rep.generation = m.generation;
    rep.snapshots = m.snapshots.len();
    rep.index_files = m.index.len();
    Ok(rep)
}
