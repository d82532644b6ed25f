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
}

/// Rebuild the index from the packs.
pub fn repair_index(repo: &Repository, read_data: bool) -> Result<RepairIndexReport, BackupError> {
    let lock = Lock::acquire(repo, LockKind::Exclusive)?;
    let mut rep = RepairIndexReport::default();
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
    let written = writer::write_index(repo, &lock, &entries, old.clone())?;
    rep.index_files_written = written.len();
    // Nothing to supersede and nothing new (an empty repository): keep as is.
    for id in &old {
        if written.contains(id) {
            continue;
        }
        lock.ensure()?;
        repo.store.delete(&FileKind::Index.path(id))?;
        rep.index_files_removed += 1;
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
    let reader = PackReader::open(opener, pack, &bytes, false)
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
    // Only blobs whose pack is stored count as present.
    let li = repo.dedup_index()?;
    let list = repo.snapshots()?;
    let mut rep = RepairSnapshotsReport {
        dry_run,
        damaged_files: list.damaged.clone(),
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
    if dry_run {
        walk(&mut Out::Dry(repo))?;
    } else {
        let stats = Arc::new(WriteStats::default());
        writer::session(
            repo,
            &lock,
            &li.index,
            1,
            stats,
            &Cancel::default(),
            |sink| walk(&mut Out::Sink(sink)),
        )?;
    }
    for p in plans {
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
            let bytes = p.snap.seal(&mut repo.sealer()?)?;
            lock.ensure()?;
            repo.write_file(FileKind::Snapshot, bytes)?.to_hex()
        };
        rep.repaired.push(RepairedSnapshot {
            original: p.original.to_hex(),
            new,
            dropped,
        });
        if forget {
            if !dry_run {
                lock.ensure()?;
                repo.store.delete(&FileKind::Snapshot.path(&p.original))?;
            }
            rep.removed
                .push(format!("snapshot {} (repaired)", p.original));
        }
    }
    if forget {
        for id in &unrepairable {
            if !dry_run {
                lock.ensure()?;
                repo.store.delete(&FileKind::Snapshot.path(id))?;
            }
            rep.removed.push(format!("snapshot {id} (unrepairable)"));
        }
        for d in &list.damaged {
            let Some(hex) = d.object.strip_prefix("snapshot ") else {
                continue;
            };
            let id = Id::from_hex(hex)?;
            if !dry_run {
                lock.ensure()?;
                repo.store.delete(&FileKind::Snapshot.path(&id))?;
            }
            rep.removed.push(format!("{} (unreadable file)", d.object));
        }
    }
    Ok(rep)
}
