//! Restore: a snapshot (or a sub-path of it) into a directory ([`tree`]), or
//! an image or stream into a file or device. Every file's BLAKE3 is recomputed
//! while it is written and compared with the one recorded at backup time.
//!
//! A restore takes the repository's shared lock (so no prune deletes what it
//! reads), never writes outside its target ([`crate::confined`]), never leaves
//! a partial file under a final name, and keeps going past damaged blobs,
//! naming every file it could not restore.

pub mod tree;

pub use tree::{restore_tree, RestoreOptions};

use crate::confined::{Dir, Existing};
use crate::repo::{Damaged, Repository};
use crate::{BackupError, Outcome};
use lethe_repo::crypto::Opener;
use lethe_repo::index::Index;
use lethe_repo::snapshot::{Snapshot, Source};
use lethe_repo::tree::{Extent, ExtentList, Node, NodeKind, Tree};
use lethe_repo::{BlobKind, Id};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// What a restore did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreReport {
    /// Files written (and verified).
    pub files: u64,
    /// Directories created or reused.
    pub dirs: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Entries restored without all their metadata, special files not recreated.
    pub warnings: Vec<String>,
    /// Entries NOT restored because the repository is damaged or writing
    /// failed (ENOSPC...): `path: reason`. None is left under its final name.
    pub failed: Vec<String>,
    /// Entries NOT restored because something was in the way (per [`Existing`]).
    pub refused: Vec<String>,
    /// Damaged repository objects that were skipped while loading.
    pub damaged_objects: Vec<Damaged>,
    /// `ok`, `completed_with_warnings` (warnings or refusals) or `failed`.
    pub outcome: Outcome,
}

impl RestoreReport {
    /// Set `outcome` from the lists.
    pub fn classify(&mut self) {
        self.outcome = if !self.failed.is_empty() {
            Outcome::Failed
        } else if !self.refused.is_empty()
            || !self.warnings.is_empty()
            || !self.damaged_objects.is_empty()
        {
            Outcome::CompletedWithWarnings
        } else {
            Outcome::Ok
        };
    }
}

/// Reads blobs of one snapshot.
pub struct Reader<'a> {
    /// The repository.
    pub repo: &'a Repository,
    /// Its index (shared by forked readers).
    pub index: std::sync::Arc<Index>,
    opener: Opener,
}

impl<'a> Reader<'a> {
    /// Load the index (damaged index files skipped; see [`Repository::load_index`]).
    pub fn new(repo: &'a Repository) -> Result<Self, BackupError> {
        Ok(Self::loaded(repo)?.0)
    }

    /// Load the index, returning the damaged objects it skipped.
    pub fn loaded(repo: &'a Repository) -> Result<(Self, Vec<Damaged>), BackupError> {
        let li = repo.load_index()?;
        let mut damaged = li.damaged;
        damaged.extend(li.damaged_packs);
        Ok((Reader::with_index(repo, li.index), damaged))
    }

    /// A reader over an index the caller already loaded.
    pub fn with_index(repo: &'a Repository, index: Index) -> Self {
        Reader {
            repo,
            index: std::sync::Arc::new(index),
            opener: repo.opener(),
        }
    }

    /// Another reader of the same index (for a worker thread).
    pub fn fork(&self) -> Reader<'a> {
        Reader {
            repo: self.repo,
            index: std::sync::Arc::clone(&self.index),
            opener: self.repo.opener(),
        }
    }

    /// A tree blob.
    pub fn tree(&mut self, id: &Id) -> Result<Tree, BackupError> {
        let b = self
            .repo
            .blob(&self.index, BlobKind::Tree, id, &mut self.opener)?;
        Tree::decode(&b).map_err(|e| BackupError::corrupt(format!("tree {id}"), e))
    }

    /// A data blob.
    pub fn data(&mut self, id: &Id) -> Result<Vec<u8>, BackupError> {
        self.repo
            .blob(&self.index, BlobKind::Data, id, &mut self.opener)
    }

    /// The extents of an image or stream, from its extent-list blobs.
    pub fn extents(&mut self, lists: &[Id]) -> Result<Vec<Extent>, BackupError> {
        let mut out = Vec::new();
        for id in lists {
            let b = self
                .repo
                .blob(&self.index, BlobKind::ExtentList, id, &mut self.opener)?;
            out.extend(
                ExtentList::decode(&b)
                    .map_err(|e| BackupError::corrupt(format!("extent list {id}"), e))?
                    .extents,
            );
        }
        Ok(out)
    }

    /// Write `ext` to `out`, returning the BLAKE3 of the content. Zero runs are
    /// written as zeros when `dense` (devices must be overwritten), else skipped.
    pub fn write_extents(
        &mut self,
        ext: &[Extent],
        out: &mut std::fs::File,
        dense: bool,
        what: &str,
    ) -> Result<([u8; 32], u64), BackupError> {
        let mut h = blake3::Hasher::new();
        let mut pos = 0u64;
        let zeros = vec![0u8; 1 << 20];
        let werr = |e| BackupError::Io {
            path: what.into(),
            source: e,
        };
        for e in ext {
            match e {
                Extent::Data { id, len } => {
                    let b = self.data(id)?;
                    if b.len() != *len as usize {
                        return Err(BackupError::HashMismatch(format!(
                            "{what}: blob {id} length"
                        )));
                    }
                    h.update(&b);
                    out.write_all(&b).map_err(werr)?;
                }
                Extent::Zero { len } => {
                    let mut left = *len;
                    while left > 0 {
                        let n = left.min(zeros.len() as u64) as usize;
                        h.update(&zeros[..n]);
                        if dense {
                            out.write_all(&zeros[..n]).map_err(werr)?;
                        }
                        left -= n as u64;
                    }
                    if !dense {
                        out.seek(SeekFrom::Current(*len as i64)).map_err(werr)?;
                    }
                }
            }
            pos += e.len();
        }
        if !dense {
            // A trailing hole needs the length set explicitly.
            out.set_len(pos).map_err(werr)?;
        }
        Ok((*h.finalize().as_bytes(), pos))
    }
}

impl Reader<'_> {
    /// Write `ext` into `sink` at increasing offsets, returning the BLAKE3 of
    /// the content and its length. Zero runs are written only to dense sinks.
    pub fn write_extents_to(
        &mut self,
        ext: &[Extent],
        sink: &mut dyn ImageSink,
        what: &str,
    ) -> Result<([u8; 32], u64), BackupError> {
        let mut h = blake3::Hasher::new();
        let mut pos = 0u64;
        let zeros = vec![0u8; 1 << 20];
        let dense = sink.dense();
        let werr = |e| BackupError::Io {
            path: what.into(),
            source: e,
        };
        for e in ext {
            match e {
                Extent::Data { id, len } => {
                    let b = self.data(id)?;
                    if b.len() != *len as usize {
                        return Err(BackupError::HashMismatch(format!(
                            "{what}: blob {id} length"
                        )));
                    }
                    h.update(&b);
                    sink.write_at(pos, &b).map_err(werr)?;
                }
                Extent::Zero { len } => {
                    let mut left = *len;
                    let mut off = pos;
                    while left > 0 {
                        let n = left.min(zeros.len() as u64) as usize;
                        h.update(&zeros[..n]);
                        if dense {
                            sink.write_at(off, &zeros[..n]).map_err(werr)?;
                        }
                        left -= n as u64;
                        off += n as u64;
                    }
                }
            }
            pos += e.len();
        }
        Ok((*h.finalize().as_bytes(), pos))
    }
}

/// Find the node at `sub` ('/'-separated, relative to the snapshot root).
pub fn lookup(r: &mut Reader<'_>, root: &Id, sub: &str) -> Result<Node, BackupError> {
    let mut tree = r.tree(root)?;
    let parts: Vec<&str> = sub.split('/').filter(|s| !s.is_empty()).collect();
    if parts.is_empty() {
        return Err(BackupError::Invalid("empty sub-path".into()));
    }
    for (i, part) in parts.iter().enumerate() {
        let node = tree
            .nodes
            .iter()
            .find(|n| n.name == part.as_bytes())
            .cloned()
            .ok_or_else(|| BackupError::NotFound(format!("{sub}: not in the snapshot")))?;
        if i + 1 == parts.len() {
            return Ok(node);
        }
        match &node.kind {
            NodeKind::Dir { subtree } => tree = r.tree(subtree)?,
            _ => {
                return Err(BackupError::NotFound(format!(
                    "{sub}: {part} is not a directory"
                )))
            }
        }
    }
    Err(BackupError::NotFound(sub.into()))
}

/// Where an image or stream restore writes. The engine never opens a block
/// device itself: a device restore goes through the job library, which hands in
/// an exclusive, identity-checked target that implements this seam.
pub trait ImageSink {
    /// Bytes the sink can hold, or `None` when it grows as written (a file).
    fn capacity(&self) -> Option<u64>;
    /// True when zero runs must be written out (a device must be overwritten in
    /// full); false when they may stay holes (a sparse file).
    fn dense(&self) -> bool;
    /// Write `buf` at byte `offset`.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> std::io::Result<()>;
    /// Make the first `len` bytes durable (a file is also cut or extended to `len`).
    fn finish(&mut self, len: u64) -> std::io::Result<()>;
}

/// A regular file for an image restore, written under a temporary name in
/// its directory and renamed over `path` only once complete and verified;
/// holes stay sparse. Dropped unfinished, the temporary file is removed.
pub struct FileSink {
    dir: Dir,
    name: Vec<u8>,
    file: std::fs::File,
    tmp: Option<String>,
}

impl FileSink {
    /// Prepare `path` (its directory is the operator's choice; the final
    /// component is never followed if it is a symlink: it is replaced).
    pub fn create(path: &Path) -> Result<Self, BackupError> {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if !m.file_type().is_file() && !m.file_type().is_symlink() {
                return Err(BackupError::Invalid(format!(
                    "{}: not a regular file; devices are restored through the job library",
                    path.display()
                )));
            }
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| BackupError::Invalid(format!("{}: no file name", path.display())))?
            .as_bytes()
            .to_vec();
        let dir = Dir::open_root(parent).map_err(|e| BackupError::io(parent, e))?;
        let (file, tmp) = dir
            .create_temp(&name)
            .map_err(|e| BackupError::io(path, e.into_io()))?;
        Ok(FileSink {
            dir,
            name,
            file,
            tmp: Some(tmp),
        })
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if let Some(t) = self.tmp.take() {
            let _ = self.dir.remove_temp(&t);
        }
    }
}

impl ImageSink for FileSink {
    fn capacity(&self) -> Option<u64> {
        None
    }
    fn dense(&self) -> bool {
        false
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(buf, offset)
    }
    fn finish(&mut self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)?;
        self.file.sync_all()?;
        let tmp = self
            .tmp
            .take()
            .ok_or_else(|| std::io::Error::other("image file already finished"))?;
        self.dir
            .commit(&tmp, &self.name, Existing::Replace)
            .map_err(|e| e.into_io())
    }
}

/// The logical size of an image or stream snapshot, or an error for a tree.
pub fn image_len(snap: &Snapshot) -> Result<u64, BackupError> {
    match &snap.source {
        Source::Device { identity, .. } => Ok(identity.size_bytes),
        Source::Stream { size, .. } => Ok(*size),
        Source::Tree { .. } => Err(BackupError::Invalid(
            "this snapshot is a directory tree: restore it to a directory".into(),
        )),
    }
}

/// Restore an image or stream snapshot into `sink`. A sink smaller than the
/// image is refused before anything is written. Checks the whole BLAKE3.
pub fn restore_image(
    repo: &Repository,
    snap: &Snapshot,
    sink: &mut dyn ImageSink,
    what: &str,
) -> Result<RestoreReport, BackupError> {
    let (lists, want) = match &snap.source {
        Source::Device {
            extent_lists,
            blake3,
            ..
        } => (extent_lists, blake3),
        Source::Stream {
            extent_lists,
            blake3,
            ..
        } => (extent_lists, blake3),
        Source::Tree { .. } => {
            return Err(BackupError::Invalid(
                "this snapshot is a directory tree: restore it to a directory".into(),
            ))
        }
    };
    let len = image_len(snap)?;
    if let Some(cap) = sink.capacity() {
        if cap < len {
            return Err(BackupError::Invalid(format!(
                "{what}: holds {cap} bytes but the image is {len} bytes; nothing written"
            )));
        }
    }
    let _lock = crate::lock::Lock::acquire(repo, crate::lock::LockKind::Shared)?;
    let (mut r, damaged) = Reader::loaded(repo)?;
    let ext = r.extents(lists)?;
    let (h, n) = r.write_extents_to(&ext, sink, what)?;
    // Verified before it is finished: a file sink only then takes its final name.
    if &h != want {
        return Err(BackupError::HashMismatch(what.to_string()));
    }
    sink.finish(n).map_err(|e| BackupError::Io {
        path: what.into(),
        source: e,
    })?;
    let mut warnings = Vec::new();
    if let Source::Device { unreadable, .. } = &snap.source {
        if !unreadable.is_empty() {
            warnings.push(format!(
                "{} range(s) of the device could not be read at backup time and were restored as zeros: {:?}",
                unreadable.len(),
                unreadable
            ));
        }
    }
    if let Some(rep) = &snap.ext.repaired {
        warnings.push(format!(
            "this snapshot was repaired (original {}): {}",
            rep.original,
            rep.dropped.join("; ")
        ));
    }
    let mut rep = RestoreReport {
        files: 1,
        bytes: n,
        warnings,
        damaged_objects: damaged,
        ..RestoreReport::default()
    };
    rep.classify();
    Ok(rep)
}
