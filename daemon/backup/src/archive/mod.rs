//! Archivers: directory trees, raw block devices and streams become blobs, a
//! tree or extent lists, then a snapshot, and finally a manifest that lists
//! the snapshot and its index files (written last).
//!
//! Tree snapshots keep the absolute source paths (format version 2): the root
//! tree is the file system root, so `/srv/records` is `srv/records` in the
//! snapshot and two sources with the same last name do not collide. The
//! directories above a source path are recorded with their metadata but
//! without their other contents.
//!
//! A file whose size, mtime, ctime, device and inode match the parent snapshot
//! and whose blobs are all stored is not read again (as restic and borg do).
//!
//! The engine takes the repository's shared lock itself, deduplicates only
//! against blobs whose packs are on storage, and never fails a run because a
//! file changed while it was read: what was read is stored, the file is named
//! in the snapshot (`changed_during_backup`) and in the report, and the run
//! completes with warnings (see [`crate::Outcome`]).
//!
//! Trees are archived here; streams and device images in [`image`].

mod image;

pub use image::{backup_device, backup_stream};

use crate::lock::{Lock, LockKind};
use crate::repo::{now, Repository};
use crate::walk::Filter;
use crate::writer::{self, BlobSink, Cancel, WriteStats};
use crate::{BackupError, Outcome};
use lethe_repo::chunker::{is_zero, Chunker};
use lethe_repo::index::Index;
use lethe_repo::snapshot::{
    DeviceIdentity, Snapshot, SnapshotExtensions, Source, Summary, TreeLayout,
};
use lethe_repo::tree::{Extent, Node, NodeKind, Timestamp, Tree};
use lethe_repo::{BlobKind, FileKind, Id};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Options of one backup run.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Snapshot tags.
    pub tags: Vec<String>,
    /// Sealing workers.
    pub threads: usize,
    /// Include/exclude patterns (trees only).
    pub filter: Filter,
    /// Host name recorded in the snapshot.
    pub hostname: String,
    /// User name recorded in the snapshot.
    pub username: String,
    /// Stops the run at its next blob when set.
    pub cancel: Cancel,
}

impl BackupOptions {
    /// Options with this host's name and user, all CPUs, no tags or filters.
    pub fn for_this_host() -> BackupOptions {
        BackupOptions {
            tags: Vec::new(),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            filter: Filter::default(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            username: std::env::var("USER").unwrap_or_default(),
            cancel: Cancel::default(),
        }
    }
}

/// What to back up.
pub enum BackupSource<'r> {
    /// Files and directory trees (each becomes an entry of the root tree).
    Paths(Vec<PathBuf>),
    /// A raw block device or image file, with the identity to record.
    Device {
        /// Path to read.
        path: PathBuf,
        /// Identity recorded in the snapshot.
        identity: DeviceIdentity,
    },
    /// A stream (stdin, a database dump) under a name.
    Stream {
        /// Name recorded in the snapshot.
        name: String,
        /// The stream.
        reader: &'r mut dyn Read,
    },
}

/// Back up `source`: the typed entry point the CLI and the job library use.
pub fn backup(
    repo: &Repository,
    source: BackupSource<'_>,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupReport, BackupError> {
    match source {
        BackupSource::Paths(p) => backup_paths(repo, &p, opts, progress),
        BackupSource::Device { path, identity } => {
            backup_device(repo, &path, identity, opts, progress)
        }
        BackupSource::Stream { name, reader } => backup_stream(repo, reader, &name, opts, progress),
    }
}

/// What a backup produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    /// The new snapshot.
    pub snapshot: String,
    /// Counters.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Bytes read from the source (unchanged files skipped are not read).
    pub bytes_read: u64,
    /// Bytes of the source covered by this snapshot.
    pub bytes_total: u64,
    /// Plaintext bytes of new blobs.
    pub bytes_new: u64,
    /// Plaintext bytes that were already in the repository.
    pub bytes_reused: u64,
    /// Bytes uploaded.
    pub bytes_stored: u64,
    /// bytes_total / bytes_stored; `None` when nothing new was stored (everything
    /// was already in the repository).
    pub dedup_ratio: Option<f64>,
    /// Share of the source, in percent, that was already in the repository
    /// (unchanged files and deduplicated chunks).
    pub already_stored_percent: f64,
    /// Seconds.
    pub seconds: f64,
    /// Files that could not be read (skipped, named here), and other findings.
    pub warnings: Vec<String>,
    /// Files that changed while they were read (stored as read, named in the snapshot).
    pub changed_during_backup: Vec<String>,
    /// Index entries ignored for deduplication because their pack is missing.
    pub index_entries_unavailable: usize,
    /// `ok` or `completed_with_warnings` (a failed run returns an error instead).
    pub outcome: Outcome,
}

/// Live progress (bytes of source processed).
pub trait Progress: Sync {
    /// `n` more source bytes processed.
    fn bytes(&self, _n: u64) {}
    /// Current file.
    fn file(&self, _p: &Path) {}
}

impl Progress for () {}

fn ts(secs: i64, nanos: i64) -> Timestamp {
    Timestamp {
        secs,
        nanos: u32::try_from(nanos.clamp(0, 999_999_999)).unwrap_or(0),
    }
}

/// Extents, BLAKE3 and length of one content.
type ContentOut = (Vec<Extent>, [u8; 32], u64);

/// Reads a source's content into chunks and blobs.
pub(crate) struct Content<'c> {
    pub(crate) chunker: &'c Chunker,
    pub(crate) buf: Vec<u8>,
}

impl Content<'_> {
    /// Chunk `r` to the end: extents (zero runs sparse), BLAKE3 and length.
    pub(crate) fn read(
        &mut self,
        r: &mut dyn Read,
        sink: &mut BlobSink<'_>,
        progress: &dyn Progress,
    ) -> std::io::Result<Result<ContentOut, BackupError>> {
        let cap = self.buf.len();
        let mut filled = 0;
        let mut start = 0;
        let mut eof = false;
        let mut hasher = blake3::Hasher::new();
        let mut ext: Vec<Extent> = Vec::new();
        let mut total = 0u64;
        loop {
            while !eof && filled < cap {
                match r.read(&mut self.buf[filled..]) {
                    Ok(0) => eof = true,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            while let Some(n) = self.chunker.next_boundary(&self.buf[start..filled], eof) {
                let chunk = &self.buf[start..start + n];
                hasher.update(chunk);
                total += n as u64;
                progress.bytes(n as u64);
                if is_zero(chunk) {
                    match ext.last_mut() {
                        Some(Extent::Zero { len }) => *len += n as u64,
                        _ => ext.push(Extent::Zero { len: n as u64 }),
                    }
                } else {
                    let id = match sink.add(BlobKind::Data, chunk.to_vec()) {
                        Ok(id) => id,
                        Err(e) => return Ok(Err(e)),
                    };
                    ext.push(Extent::Data { id, len: n as u32 });
                }
                start += n;
            }
            if eof {
                return Ok(Ok((ext, *hasher.finalize().as_bytes(), total)));
            }
            self.buf.copy_within(start..filled, 0);
            filled -= start;
            start = 0;
        }
    }
}

struct TreeArchiver<'a, 'c> {
    repo: &'a Repository,
    index: &'a Index,
    filter: &'a Filter,
    progress: &'a dyn Progress,
    content: Content<'c>,
    hardlinks: HashMap<(u64, u64), NodeKind>,
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
    opener: lethe_repo::crypto::Opener,
    summary: Summary,
    bytes_total: u64,
    warnings: Vec<String>,
    /// Snapshot paths of files that changed while read.
    changed: Vec<Vec<u8>>,
    /// The parent's changed files: never reused, always read again.
    parent_changed: HashSet<Vec<u8>>,
}

impl TreeArchiver<'_, '_> {
    fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone()
    }

    fn parent_tree(&mut self, id: Option<Id>) -> Option<Tree> {
        let id = id?;
        let bytes = self
            .repo
            .blob(self.index, BlobKind::Tree, &id, &mut self.opener)
            .ok()?;
        Tree::decode(&bytes).ok()
    }

    fn node(&mut self, name: &[u8], md: &std::fs::Metadata, kind: NodeKind) -> Node {
        Node {
            name: name.to_vec(),
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            user: self.user(md.uid()),
            group: self.group(md.gid()),
            size: if md.is_file() { md.len() } else { 0 },
            mtime: ts(md.mtime(), md.mtime_nsec()),
            atime: ts(md.atime(), md.atime_nsec()),
            ctime: ts(md.ctime(), md.ctime_nsec()),
            dev: md.dev(),
            inode: md.ino(),
            nlink: md.nlink(),
            xattrs: Vec::new(),
        }
    }

    /// One directory entry (recursing into directories). `None`: skipped.
    fn entry(
        &mut self,
        sink: &mut BlobSink<'_>,
        path: &Path,
        name: &[u8],
        rel: &[u8],
        parent: Option<&Node>,
    ) -> Result<Option<Node>, BackupError> {
        if self.filter.excluded(path) {
            return Ok(None);
        }
        let md = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.warnings.push(format!("{}: {e}", path.display()));
                return Ok(None);
            }
        };
        let ft = md.file_type();
        if !ft.is_dir() && !self.filter.included(path) {
            return Ok(None);
        }
        self.progress.file(path);
        let kind = if ft.is_dir() {
            let sub_parent = parent.and_then(|n| match &n.kind {
                NodeKind::Dir { subtree } => Some(*subtree),
                _ => None,
            });
            let subtree = self.dir(sink, path, rel, sub_parent)?;
            self.summary.dirs += 1;
            NodeKind::Dir { subtree }
        } else if ft.is_symlink() {
            match std::fs::read_link(path) {
                Ok(t) => NodeKind::Symlink {
                    target: t.as_os_str().as_bytes().to_vec(),
                },
                Err(e) => {
                    self.warnings.push(format!("{}: {e}", path.display()));
                    return Ok(None);
                }
            }
        } else if ft.is_file() {
            self.summary.files += 1;
            self.bytes_total += md.len();
            // Every name of a hard-linked inode carries the content (so any
            // sub-path restores alone); restore re-links names of one inode.
            // The content is read once.
            let linked = (md.nlink() > 1)
                .then(|| self.hardlinks.get(&(md.dev(), md.ino())).cloned())
                .flatten();
            let reuse = if self.parent_changed.contains(rel) {
                None
            } else {
                self.unchanged(parent, &md, sink)
            };
            let kind = match linked.or(reuse) {
                Some(k) => {
                    self.progress.bytes(md.len());
                    k
                }
                None => match self.file(sink, path, rel, &md)? {
                    Some(k) => k,
                    None => return Ok(None),
                },
            };
            if md.nlink() > 1 {
                self.hardlinks.insert((md.dev(), md.ino()), kind.clone());
            }
            kind
        } else if ft.is_block_device() {
            NodeKind::BlockDev { rdev: md.rdev() }
        } else if ft.is_char_device() {
            NodeKind::CharDev { rdev: md.rdev() }
        } else if ft.is_fifo() {
            NodeKind::Fifo
        } else {
            NodeKind::Socket
        };
        let mut node = self.node(name, &md, kind);
        if let NodeKind::File { content, .. } = &node.kind {
            // What was read, which differs from the stat size if the file changed.
            node.size = content.iter().map(Extent::len).sum();
        }
        Ok(Some(node))
    }

    /// The parent snapshot's content, when the file has not changed.
    fn unchanged(
        &self,
        parent: Option<&Node>,
        md: &std::fs::Metadata,
        sink: &BlobSink<'_>,
    ) -> Option<NodeKind> {
        let p = parent?;
        let NodeKind::File { content, .. } = &p.kind else {
            return None;
        };
        let same = p.size == md.len()
            && p.mtime == ts(md.mtime(), md.mtime_nsec())
            && p.ctime == ts(md.ctime(), md.ctime_nsec())
            && p.inode == md.ino()
            && p.dev == md.dev();
        let stored = content.iter().all(|e| match e {
            Extent::Data { id, .. } => sink.has(id),
            Extent::Zero { .. } => true,
        });
        (same && stored).then(|| p.kind.clone())
    }

    /// Read a regular file. A file that changes while it is read (grows, is
    /// truncated or rewritten) is stored as read and named in `changed`.
    fn file(
        &mut self,
        sink: &mut BlobSink<'_>,
        path: &Path,
        rel: &[u8],
        before: &std::fs::Metadata,
    ) -> Result<Option<NodeKind>, BackupError> {
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                self.warnings.push(format!("{}: {e}", path.display()));
                return Ok(None);
            }
        };
        match self.content.read(&mut f, sink, self.progress) {
            Ok(r) => {
                let (content, blake3, n) = r?;
                self.summary.bytes_read += n;
                let changed = match f.metadata() {
                    Ok(after) => {
                        n != before.len()
                            || after.len() != before.len()
                            || after.mtime() != before.mtime()
                            || after.mtime_nsec() != before.mtime_nsec()
                            || after.ctime() != before.ctime()
                            || after.ctime_nsec() != before.ctime_nsec()
                            || after.ino() != before.ino()
                    }
                    Err(_) => true,
                };
                if changed {
                    self.changed.push(rel.to_vec());
                }
                Ok(Some(NodeKind::File { content, blake3 }))
            }
            Err(e) => {
                self.warnings.push(format!("{}: {e}", path.display()));
                Ok(None)
            }
        }
    }

    /// The tree of a directory above (or holding) source paths: only the
    /// entries on the way to them, with the directories' own metadata.
    fn prefix_dir(
        &mut self,
        sink: &mut BlobSink<'_>,
        node: &Trie,
        path: &Path,
        rel: &[u8],
        parent: Option<Tree>,
    ) -> Result<Id, BackupError> {
        let mut nodes = Vec::with_capacity(node.children.len());
        for (name, child) in &node.children {
            let cpath = path.join(std::ffi::OsStr::from_bytes(name));
            let mut crel = rel.to_vec();
            if !crel.is_empty() {
                crel.push(b'/');
            }
            crel.extend_from_slice(name);
            let pnode = parent
                .as_ref()
                .and_then(|t| t.nodes.iter().find(|n| n.name == *name));
            if child.source {
                match self.entry(sink, &cpath, name, &crel, pnode)? {
                    Some(n) => nodes.push(n),
                    None => {
                        return Err(BackupError::NotFound(format!(
                            "{}: cannot be read or is excluded",
                            cpath.display()
                        )))
                    }
                }
                continue;
            }
            let md = std::fs::symlink_metadata(&cpath).map_err(|e| BackupError::io(&cpath, e))?;
            if !md.is_dir() {
                return Err(BackupError::Invalid(format!(
                    "{}: not a directory (give canonical paths)",
                    cpath.display()
                )));
            }
            let sub_parent = pnode.and_then(|n| match &n.kind {
                NodeKind::Dir { subtree } => self.parent_tree(Some(*subtree)),
                _ => None,
            });
            let subtree = self.prefix_dir(sink, child, &cpath, &crel, sub_parent)?;
            nodes.push(self.node(name, &md, NodeKind::Dir { subtree }));
        }
        sink.add(BlobKind::Tree, Tree { nodes }.encode()?)
    }

    fn dir(
        &mut self,
        sink: &mut BlobSink<'_>,
        path: &Path,
        rel: &[u8],
        parent: Option<Id>,
    ) -> Result<Id, BackupError> {
        let parent = self.parent_tree(parent);
        let mut names: Vec<Vec<u8>> = match std::fs::read_dir(path) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().as_bytes().to_vec())
                .collect(),
            Err(e) => {
                self.warnings.push(format!("{}: {e}", path.display()));
                Vec::new()
            }
        };
        names.sort();
        let mut nodes = Vec::with_capacity(names.len());
        for name in names {
            let child = path.join(std::ffi::OsStr::from_bytes(&name));
            let mut crel = rel.to_vec();
            crel.push(b'/');
            crel.extend_from_slice(&name);
            let pnode = parent
                .as_ref()
                .and_then(|t| t.nodes.iter().find(|n| n.name == name));
            if let Some(n) = self.entry(sink, &child, &name, &crel, pnode)? {
                nodes.push(n);
            }
        }
        sink.add(BlobKind::Tree, Tree { nodes }.encode()?)
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn report(
    snapshot: Id,
    summary: &Summary,
    stats: &WriteStats,
    bytes_total: u64,
    started: Instant,
    mut warnings: Vec<String>,
    changed: &[Vec<u8>],
    unavailable: usize,
) -> BackupReport {
    let stored = stats.bytes_stored.load(Ordering::Relaxed);
    if unavailable > 0 {
        warnings.push(format!(
            "{unavailable} index entries point into packs that are missing: those blobs were stored again (run `check`, then `repair index` and `repair snapshots`)"
        ));
    }
    let changed: Vec<String> = changed
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    BackupReport {
        snapshot: snapshot.to_hex(),
        files: summary.files,
        dirs: summary.dirs,
        bytes_read: summary.bytes_read,
        bytes_total,
        bytes_new: stats.bytes_new.load(Ordering::Relaxed),
        bytes_reused: stats.bytes_reused.load(Ordering::Relaxed),
        bytes_stored: stored,
        dedup_ratio: (stored > 0).then(|| bytes_total as f64 / stored as f64),
        already_stored_percent: if bytes_total == 0 {
            100.0
        } else {
            let new = stats.bytes_new.load(Ordering::Relaxed).min(bytes_total);
            (bytes_total - new) as f64 * 100.0 / bytes_total as f64
        },
        seconds: started.elapsed().as_secs_f64(),
        outcome: if warnings.is_empty() && changed.is_empty() {
            Outcome::Ok
        } else {
            Outcome::CompletedWithWarnings
        },
        warnings,
        changed_during_backup: changed,
        index_entries_unavailable: unavailable,
    }
}

/// Write the snapshot, then the manifest that lists it and the run's index files.
pub(crate) fn finish_snapshot(
    repo: &Repository,
    lock: &Lock,
    mut snap: Snapshot,
    stats: &WriteStats,
    started: Instant,
    index_files: Vec<Id>,
) -> Result<Id, BackupError> {
    snap.summary.bytes_added = stats.bytes_new.load(Ordering::Relaxed);
    snap.summary.bytes_stored = stats.bytes_stored.load(Ordering::Relaxed);
    snap.summary.blobs_added = stats.blobs_new.load(Ordering::Relaxed);
    snap.summary.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut sealer = repo.sealer()?;
    let bytes = snap.seal(&mut sealer)?;
    lock.ensure()?;
    let id = repo.write_file(FileKind::Snapshot, bytes)?;
    repo.commit(
        lock,
        &crate::fresh::Change {
            add_snapshots: vec![id],
            add_index: index_files,
            ..Default::default()
        },
    )?;
    Ok(id)
}

/// The source paths as a tree of components (`/srv/records` and `/srv/x` share
/// `srv`); a path inside another given path is covered by it.
#[derive(Default, Debug)]
struct Trie {
    source: bool,
    children: std::collections::BTreeMap<Vec<u8>, Trie>,
}

impl Trie {
    fn build(paths: &[Vec<u8>]) -> Result<Trie, BackupError> {
        let mut root = Trie::default();
        for p in paths {
            if !p.starts_with(b"/") {
                return Err(BackupError::Invalid(format!(
                    "{}: source paths must be absolute",
                    String::from_utf8_lossy(p)
                )));
            }
            let parts: Vec<&[u8]> = p.split(|b| *b == b'/').filter(|c| !c.is_empty()).collect();
            if parts.iter().any(|c| *c == b"." || *c == b"..") {
                return Err(BackupError::Invalid(format!(
                    "{}: source paths must not contain . or ..",
                    String::from_utf8_lossy(p)
                )));
            }
            if parts.is_empty() {
                return Err(BackupError::Invalid(
                    "backing up / itself is not supported: give its directories".into(),
                ));
            }
            let mut node = &mut root;
            for c in parts {
                if node.source {
                    break; // inside a path that is backed up whole
                }
                node = node.children.entry(c.to_vec()).or_default();
            }
            node.source = true;
            node.children.clear();
        }
        Ok(root)
    }
}

/// Back up directory trees (or single files), given as absolute paths. The
/// snapshot's root tree is the file system root; each path keeps its place in it.
pub fn backup_paths(
    repo: &Repository,
    paths: &[PathBuf],
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    let time = now();
    let raw: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .collect();
    let trie = Trie::build(&raw)?;
    let lock = Lock::acquire(repo, LockKind::Shared)?;
    let ws = repo.begin_write(&lock, false)?;
    let li = repo.load_in(&ws.state, true)?;
    let index = &li.index;
    // The newest readable snapshot of the same host and paths is the parent.
    let parent = repo
        .snapshots_in(&ws.state)?
        .ok
        .into_iter()
        .rev()
        .find(|(_, s)| {
            s.layout == TreeLayout::Absolute
                && s.hostname == opts.hostname
                && matches!(&s.source, Source::Tree { paths, .. } if *paths == raw)
        });
    let parent_changed: HashSet<Vec<u8>> = parent
        .as_ref()
        .map(|(_, s)| s.ext.changed_during_backup.iter().cloned().collect())
        .unwrap_or_default();
    let chunker = Chunker::new(repo.config.chunker, repo.keys().gear_key())?;
    let stats = Arc::new(WriteStats::default());
    let mut arch = TreeArchiver {
        repo,
        index,
        filter: &opts.filter,
        progress,
        content: Content {
            chunker: &chunker,
            buf: vec![0u8; 2 * repo.config.chunker.max_size as usize],
        },
        hardlinks: HashMap::new(),
        users: HashMap::new(),
        groups: HashMap::new(),
        opener: repo.opener(),
        summary: Summary::default(),
        bytes_total: 0,
        warnings: Vec::new(),
        changed: Vec::new(),
        parent_changed,
    };
    let parent_root = parent.as_ref().and_then(|(_, s)| match &s.source {
        Source::Tree { root, .. } => Some(*root),
        _ => None,
    });
    let out = writer::session(
        repo,
        &lock,
        index,
        ws.base,
        opts.threads,
        Arc::clone(&stats),
        &opts.cancel,
        |sink| {
            let proot = arch.parent_tree(parent_root);
            arch.prefix_dir(sink, &trie, Path::new("/"), b"", proot)
        },
    )?;
    let snap = Snapshot {
        time,
        hostname: opts.hostname.clone(),
        username: opts.username.clone(),
        tags: opts.tags.clone(),
        parent: parent.map(|(id, _)| id),
        source: Source::Tree {
            root: out.value,
            paths: raw,
        },
        summary: arch.summary.clone(),
        ext: SnapshotExtensions {
            changed_during_backup: arch.changed.clone(),
            ..SnapshotExtensions::default()
        },
        generation: ws.base,
        layout: TreeLayout::Absolute,
    };
    let id = finish_snapshot(repo, &lock, snap, &stats, started, out.index_files)?;
    Ok(report(
        id,
        &arch.summary,
        &stats,
        arch.bytes_total,
        started,
        std::mem::take(&mut arch.warnings),
        &arch.changed,
        li.unavailable,
    ))
}
