//! Restore: a snapshot (or a sub-path of it) into a directory, or an image or
//! stream into a file or device. Every file's BLAKE3 is recomputed while it is
//! written and compared with the one recorded at backup time.

use crate::repo::Repository;
use crate::BackupError;
use lethe_repo::crypto::Opener;
use lethe_repo::index::Index;
use lethe_repo::snapshot::{Snapshot, Source};
use lethe_repo::tree::{Extent, ExtentList, Node, NodeKind, Tree};
use lethe_repo::{BlobKind, Id};
use std::ffi::OsStr;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a restore did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreReport {
    /// Files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Entries that could not be restored completely (metadata, special files).
    pub warnings: Vec<String>,
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
    /// Load the index.
    pub fn new(repo: &'a Repository) -> Result<Self, BackupError> {
        Ok(Reader {
            repo,
            index: std::sync::Arc::new(repo.load_index()?.0),
            opener: repo.opener(),
        })
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

struct TreeRestore<'r, 'a> {
    r: &'r mut Reader<'a>,
    report: RestoreReport,
    /// Snapshot-relative path of restored files → where they went (hard links).
    placed: std::collections::HashMap<Vec<u8>, PathBuf>,
    /// (dev, inode) of hard-linked files → their first restored name.
    inodes: std::collections::HashMap<(u64, u64), PathBuf>,
    root_uid: bool,
    /// Regular files, written in parallel after the walk.
    files: Vec<(Node, PathBuf)>,
    /// Hard links (first name, this name), made once the files exist.
    links: Vec<(PathBuf, PathBuf)>,
    /// Directories, whose metadata is set last (creating entries changes mtime).
    dirs: Vec<(Node, PathBuf)>,
}

impl TreeRestore<'_, '_> {
    fn node(&mut self, n: &Node, dest: &Path, rel: &[u8]) -> Result<(), BackupError> {
        let io = |e| BackupError::io(dest, e);
        match &n.kind {
            NodeKind::Dir { subtree } => {
                std::fs::create_dir_all(dest).map_err(io)?;
                self.report.dirs += 1;
                let t = self.r.tree(subtree)?;
                for c in &t.nodes {
                    let mut crel = rel.to_vec();
                    crel.push(b'/');
                    crel.extend_from_slice(&c.name);
                    self.node(c, &dest.join(OsStr::from_bytes(&c.name)), &crel)?;
                }
                self.dirs.push((n.clone(), dest.to_path_buf()));
                return Ok(());
            }
            NodeKind::File { .. } if n.nlink > 1 && self.inodes.contains_key(&(n.dev, n.inode)) => {
                let first = self.inodes[&(n.dev, n.inode)].clone();
                self.links.push((first, dest.to_path_buf()));
                return Ok(());
            }
            NodeKind::File { .. } => {
                self.placed.insert(rel.to_vec(), dest.to_path_buf());
                if n.nlink > 1 {
                    self.inodes.insert((n.dev, n.inode), dest.to_path_buf());
                }
                self.files.push((n.clone(), dest.to_path_buf()));
                return Ok(());
            }
            NodeKind::Symlink { target } => {
                let _ = std::fs::remove_file(dest);
                std::os::unix::fs::symlink(OsStr::from_bytes(target), dest).map_err(io)?;
            }
            NodeKind::HardLink { target } => match self.placed.get(target) {
                Some(first) => {
                    self.links.push((first.clone(), dest.to_path_buf()));
                    return Ok(());
                }
                None => self.report.warnings.push(format!(
                    "{}: hard link to {} which is outside the restored part",
                    dest.display(),
                    String::from_utf8_lossy(target)
                )),
            },
            NodeKind::Fifo => {
                if let Err(e) =
                    nix::unistd::mkfifo(dest, nix::sys::stat::Mode::from_bits_truncate(n.mode))
                {
                    self.report
                        .warnings
                        .push(format!("{}: mkfifo: {e}", dest.display()));
                }
            }
            NodeKind::BlockDev { .. } | NodeKind::CharDev { .. } | NodeKind::Socket => {
                self.report.warnings.push(format!(
                    "{}: device nodes and sockets are recorded, not recreated",
                    dest.display()
                ));
                return Ok(());
            }
        }
        metadata(n, dest, self.root_uid, &mut self.report.warnings);
        Ok(())
    }
}

/// Owner, mode and times; after the content (and children) so mtime sticks.
fn metadata(n: &Node, dest: &Path, root_uid: bool, warnings: &mut Vec<String>) {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let is_link = matches!(n.kind, NodeKind::Symlink { .. });
    if root_uid {
        let r = nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            dest,
            Some(nix::unistd::Uid::from_raw(n.uid)),
            Some(nix::unistd::Gid::from_raw(n.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        if let Err(e) = r {
            warnings.push(format!("{}: chown: {e}", dest.display()));
        }
    }
    if !is_link {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(dest, std::fs::Permissions::from_mode(n.mode)) {
            warnings.push(format!("{}: chmod: {e}", dest.display()));
        }
    }
    let t = |s: &lethe_repo::tree::Timestamp| TimeSpec::new(s.secs, i64::from(s.nanos));
    if let Err(e) = utimensat(
        nix::fcntl::AT_FDCWD,
        dest,
        &t(&n.atime),
        &t(&n.mtime),
        UtimensatFlags::NoFollowSymlink,
    ) {
        warnings.push(format!("{}: times: {e}", dest.display()));
    }
}

/// Restore a tree snapshot (or `sub`, a path inside it) under `target`.
pub fn restore_tree(
    repo: &Repository,
    snap: &Snapshot,
    sub: Option<&str>,
    target: &Path,
) -> Result<RestoreReport, BackupError> {
    let Source::Tree { root, .. } = &snap.source else {
        return Err(BackupError::Invalid(
            "this snapshot is a device image or a stream: restore it to a file or device".into(),
        ));
    };
    let mut r = Reader::new(repo)?;
    std::fs::create_dir_all(target).map_err(|e| BackupError::io(target, e))?;
    let mut tr = TreeRestore {
        r: &mut r,
        report: RestoreReport::default(),
        placed: Default::default(),
        inodes: Default::default(),
        root_uid: nix::unistd::geteuid().is_root(),
        files: Vec::new(),
        links: Vec::new(),
        dirs: Vec::new(),
    };
    match sub {
        Some(s) => {
            let node = lookup(tr.r, root, s)?;
            let dest = target.join(OsStr::from_bytes(&node.name));
            let rel = s.trim_matches('/').as_bytes().to_vec();
            tr.node(&node, &dest, &rel)?;
        }
        None => {
            let t = tr.r.tree(root)?;
            for n in &t.nodes {
                tr.node(n, &target.join(OsStr::from_bytes(&n.name)), &n.name)?;
            }
        }
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let root_uid = tr.root_uid;
    let (files, links, dirs) = (
        std::mem::take(&mut tr.files),
        std::mem::take(&mut tr.links),
        std::mem::take(&mut tr.dirs),
    );
    let mut report = std::mem::take(&mut tr.report);
    write_files(tr.r, &files, threads, root_uid, &mut report)?;
    for (first, dest) in &links {
        let _ = std::fs::remove_file(dest);
        std::fs::hard_link(first, dest).map_err(|e| BackupError::io(dest, e))?;
    }
    for (n, dest) in &dirs {
        metadata(n, dest, root_uid, &mut report.warnings);
    }
    Ok(report)
}

/// Files, bytes and warnings of one restore worker.
type WorkerOut = (u64, u64, Vec<String>);

/// Write regular files with `threads` workers; every file is checked against
/// its backup-time BLAKE3 before its metadata is set.
fn write_files(
    r: &Reader<'_>,
    files: &[(Node, PathBuf)],
    threads: usize,
    root_uid: bool,
    report: &mut RestoreReport,
) -> Result<(), BackupError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Vec<Result<WorkerOut, BackupError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let mut rd = r.fork();
                let next = &next;
                s.spawn(move || {
                    let (mut n_files, mut n_bytes, mut warnings) = (0u64, 0u64, Vec::new());
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((n, dest)) = files.get(i) else { break };
                        let NodeKind::File { content, blake3 } = &n.kind else {
                            continue;
                        };
                        let mut f =
                            std::fs::File::create(dest).map_err(|e| BackupError::io(dest, e))?;
                        let (h, b) =
                            rd.write_extents(content, &mut f, false, &dest.display().to_string())?;
                        if &h != blake3 {
                            return Err(BackupError::HashMismatch(dest.display().to_string()));
                        }
                        drop(f);
                        metadata(n, dest, root_uid, &mut warnings);
                        n_files += 1;
                        n_bytes += b;
                    }
                    Ok((n_files, n_bytes, warnings))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(BackupError::Internal("a restore worker panicked".into()))
                })
            })
            .collect()
    });
    for res in results {
        let (f, b, w) = res?;
        report.files += f;
        report.bytes += b;
        report.warnings.extend(w);
    }
    Ok(())
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

/// A regular file created (or truncated) for an image restore; holes stay sparse.
pub struct FileSink {
    file: std::fs::File,
}

impl FileSink {
    /// Create `path`, refusing anything that is not a regular file or absent.
    pub fn create(path: &Path) -> Result<Self, BackupError> {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if !m.file_type().is_file() {
                return Err(BackupError::Invalid(format!(
                    "{}: not a regular file; devices are restored through the job library",
                    path.display()
                )));
            }
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| BackupError::io(path, e))?;
        Ok(FileSink { file })
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
        self.file.sync_all()
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
    let mut r = Reader::new(repo)?;
    let ext = r.extents(lists)?;
    let (h, n) = r.write_extents_to(&ext, sink, what)?;
    sink.finish(n).map_err(|e| BackupError::Io {
        path: what.into(),
        source: e,
    })?;
    if &h != want {
        return Err(BackupError::HashMismatch(what.to_string()));
    }
    Ok(RestoreReport {
        files: 1,
        dirs: 0,
        bytes: n,
        warnings: Vec::new(),
    })
}
