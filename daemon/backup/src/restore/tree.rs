//! Restoring a directory tree, confined to its target.
//!
//! Order: one walk over the snapshot's trees creates directories (mode 0700
//! for now), symlinks and fifos and lists the files; workers then write the
//! files in parallel, each into a temporary name, verified against its
//! backup-time BLAKE3, given its metadata and only then renamed to its final
//! name; hard links follow; directory metadata comes last (creating entries
//! changes a directory's mtime). A damaged tree, a damaged blob or a write
//! error (ENOSPC) costs only the entries concerned: they are named in
//! [`RestoreReport::failed`] and everything else is restored. A rerun after a
//! crash replaces the leftovers (temporary names are fixed per entry).

use super::{lookup, Reader, RestoreReport};
use crate::archive::Progress;
use crate::confined::{check_name, set_meta_fd, ConfineError, Dir, Existing, Meta};
use crate::lock::{Lock, LockKind};
use crate::repo::Repository;
use crate::writer::Cancel;
use crate::BackupError;
use lethe_repo::snapshot::{Snapshot, Source, TreeLayout};
use lethe_repo::tree::{Node, NodeKind};
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::Path;

/// Options of a tree restore.
#[derive(Clone)]
pub struct RestoreOptions {
    /// What to do with entries in the way.
    pub existing: Existing,
    /// File-writing workers.
    pub threads: usize,
    /// Stops the restore between files when set.
    pub cancel: Cancel,
    /// Told the bytes and name of every file restored.
    pub progress: Option<std::sync::Arc<dyn Progress + Send>>,
}

impl std::fmt::Debug for RestoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreOptions")
            .field("existing", &self.existing)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            existing: Existing::Replace,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            cancel: Cancel::default(),
            progress: None,
        }
    }
}

/// Where an entry goes: its parent directory (components below the target)
/// and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    dir: Vec<Vec<u8>>,
    name: Vec<u8>,
}

impl Place {
    fn child(&self, name: &[u8]) -> Place {
        let mut dir = self.dir.clone();
        dir.push(self.name.clone());
        Place {
            dir,
            name: name.to_vec(),
        }
    }

    fn components(&self) -> Vec<Vec<u8>> {
        let mut c = self.dir.clone();
        c.push(self.name.clone());
        c
    }
}

fn meta(n: &Node) -> Meta {
    let t =
        |s: &lethe_repo::tree::Timestamp| nix::sys::time::TimeSpec::new(s.secs, i64::from(s.nanos));
    Meta {
        uid: n.uid,
        gid: n.gid,
        mode: n.mode & 0o7777,
        atime: t(&n.atime),
        mtime: t(&n.mtime),
    }
}

struct Walk<'r, 'a> {
    r: &'r mut Reader<'a>,
    target: &'r Path,
    existing: Existing,
    chown: bool,
    report: RestoreReport,
    /// Snapshot path of each restored file → where it went (hard links).
    placed: HashMap<Vec<u8>, Place>,
    /// (dev, inode) of hard-linked files → their first place.
    inodes: HashMap<(u64, u64), Place>,
    files: Vec<(Node, Place)>,
    /// (first name, this name, display)
    links: Vec<(Place, Place)>,
    /// Directories whose metadata is set last (post-order).
    dirs: Vec<(Node, Place)>,
}

impl Walk<'_, '_> {
    fn show(&self, p: &Place) -> String {
        let mut s = self.target.display().to_string();
        for c in p.components() {
            s.push('/');
            s.push_str(&String::from_utf8_lossy(&c));
        }
        s
    }

    fn not_restored(&mut self, p: &Place, e: ConfineError) {
        let line = format!("{}: {e}", self.show(p));
        if e.is_in_the_way() {
            self.report.refused.push(line);
        } else {
            self.report.failed.push(line);
        }
    }

    /// Prepare a non-file entry under its temporary name, set its metadata, commit.
    fn place_special(
        &mut self,
        parent: &Dir,
        n: &Node,
        p: &Place,
        tmp: Result<String, ConfineError>,
    ) {
        let symlink = matches!(n.kind, NodeKind::Symlink { .. });
        let tmp = match tmp {
            Ok(t) => t,
            Err(e) => return self.not_restored(p, e),
        };
        for w in parent.set_meta_at(&tmp, &meta(n), self.chown, symlink) {
            let line = format!("{}: {w}", self.show(p));
            self.report.warnings.push(line);
        }
        if let Err(e) = parent.commit(&tmp, &p.name, self.existing) {
            self.not_restored(p, e);
        }
    }

    fn node(&mut self, parent: &Dir, n: &Node, p: Place, rel: &[u8]) {
        if let Err(e) = check_name(&n.name) {
            return self.not_restored(&p, e);
        }
        match &n.kind {
            NodeKind::Dir { subtree } => {
                let dir = match parent.subdir(&p.name, self.existing, true) {
                    Ok(d) => d,
                    Err(e) => return self.not_restored(&p, e),
                };
                self.report.dirs += 1;
                match self.r.tree(subtree) {
                    Ok(t) => {
                        for c in &t.nodes {
                            let mut crel = rel.to_vec();
                            crel.push(b'/');
                            crel.extend_from_slice(&c.name);
                            self.node(&dir, c, p.child(&c.name), &crel);
                        }
                    }
                    Err(e) => {
                        let line = format!("{}/: its contents are damaged: {e}", self.show(&p));
                        self.report.failed.push(line);
                    }
                }
                self.dirs.push((n.clone(), p));
            }
            NodeKind::File { .. } if n.nlink > 1 && self.inodes.contains_key(&(n.dev, n.inode)) => {
                let first = self.inodes[&(n.dev, n.inode)].clone();
                self.placed.insert(rel.to_vec(), p.clone());
                self.links.push((first, p));
            }
            NodeKind::File { .. } => {
                self.placed.insert(rel.to_vec(), p.clone());
                if n.nlink > 1 {
                    self.inodes.insert((n.dev, n.inode), p.clone());
                }
                self.files.push((n.clone(), p));
            }
            NodeKind::Symlink { target } => {
                let tmp = parent.symlink(target, &p.name);
                self.place_special(parent, n, &p, tmp);
            }
            NodeKind::HardLink { target } => match self.placed.get(target) {
                Some(first) => {
                    let first = first.clone();
                    self.links.push((first, p));
                }
                None => {
                    let line = format!(
                        "{}: hard link to {} which is outside the restored part",
                        self.show(&p),
                        String::from_utf8_lossy(target)
                    );
                    self.report.warnings.push(line);
                }
            },
            NodeKind::Fifo => {
                let tmp = parent.mkfifo(&p.name, n.mode);
                self.place_special(parent, n, &p, tmp);
            }
            NodeKind::BlockDev { .. } | NodeKind::CharDev { .. } | NodeKind::Socket => {
                let line = format!(
                    "{}: device nodes and sockets are recorded, not recreated",
                    self.show(&p)
                );
                self.report.warnings.push(line);
            }
        }
    }
}

/// Restore a tree snapshot (or `sub`, a path inside it) under `target`,
/// holding the repository's shared lock. A version-2 snapshot keeps absolute
/// paths: `/srv/records` is restored to `TARGET/srv/records`, and `sub` is an
/// absolute path too (`/srv/records/2026`, the leading `/` optional), restored
/// with the directories above it. In a version-1 snapshot `sub` starts with
/// the last component of a source path and lands directly in the target.
pub fn restore_tree(
    repo: &Repository,
    snap: &Snapshot,
    sub: Option<&str>,
    target: &Path,
    opts: &RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    let Source::Tree { root, .. } = &snap.source else {
        return Err(BackupError::Invalid(
            "this snapshot is a device image or a stream: restore it to a file or device".into(),
        ));
    };
    let _lock = Lock::acquire(repo, LockKind::Shared)?;
    let (mut r, damaged) = Reader::loaded(repo)?;
    let top = Dir::open_root(target).map_err(|e| BackupError::io(target, e))?;
    let mut w = Walk {
        r: &mut r,
        target,
        existing: opts.existing,
        chown: nix::unistd::geteuid().is_root(),
        report: RestoreReport {
            damaged_objects: damaged,
            ..RestoreReport::default()
        },
        placed: HashMap::new(),
        inodes: HashMap::new(),
        files: Vec::new(),
        links: Vec::new(),
        dirs: Vec::new(),
    };
    if let Some(rep) = &snap.ext.repaired {
        w.report.warnings.push(format!(
            "this snapshot was repaired (original {}); not in it: {}",
            rep.original,
            rep.dropped.join("; ")
        ));
    }
    // A version-1 snapshot names each source by its last component: an absolute
    // sub-path inside a source path is translated (`/srv/records/2026` in a
    // snapshot of `/srv/records` is `records/2026`).
    let translated = match (sub, &snap.source) {
        (Some(s), Source::Tree { paths, .. })
            if snap.layout == TreeLayout::Named && s.starts_with('/') =>
        {
            paths.iter().find_map(|p| {
                let p = String::from_utf8_lossy(p);
                let p = p.trim_end_matches('/');
                let rest = s.strip_prefix(p)?;
                if !rest.is_empty() && !rest.starts_with('/') {
                    return None;
                }
                let last = p.rsplit('/').next()?;
                Some(format!("{last}{rest}"))
            })
        }
        _ => None,
    };
    let sub = translated.as_deref().or(sub);
    match sub {
        Some(s) if snap.layout == TreeLayout::Named => {
            let node = lookup(w.r, root, s)?;
            let rel = s.trim_matches('/').as_bytes().to_vec();
            let p = Place {
                dir: Vec::new(),
                name: node.name.clone(),
            };
            w.node(&top, &node, p, &rel);
        }
        Some(s) => {
            let parts: Vec<Vec<u8>> = s
                .split('/')
                .filter(|c| !c.is_empty())
                .map(|c| c.as_bytes().to_vec())
                .collect();
            if parts.is_empty() {
                return Err(BackupError::Invalid("empty sub-path".into()));
            }
            let mut tree = w.r.tree(root)?;
            let mut held: Option<Dir> = None;
            for (i, part) in parts.iter().enumerate() {
                let node = tree
                    .nodes
                    .iter()
                    .find(|n| n.name == *part)
                    .cloned()
                    .ok_or_else(|| BackupError::NotFound(format!("{s}: not in the snapshot")))?;
                let place = Place {
                    dir: parts[..i].to_vec(),
                    name: part.clone(),
                };
                let rel = parts[..=i].join(&b'/');
                let parent = held.as_ref().unwrap_or(&top);
                if i + 1 == parts.len() {
                    w.node(parent, &node, place, &rel);
                    break;
                }
                let NodeKind::Dir { subtree } = &node.kind else {
                    return Err(BackupError::NotFound(format!(
                        "{s}: {} is not a directory",
                        String::from_utf8_lossy(part)
                    )));
                };
                let next = parent
                    .subdir(part, w.existing, true)
                    .map_err(|e| BackupError::Invalid(format!("{}: {e}", w.show(&place))))?;
                tree = w.r.tree(subtree)?;
                w.report.dirs += 1;
                w.dirs.push((node.clone(), place));
                held = Some(next);
            }
        }
        None => {
            let t = w.r.tree(root)?;
            for n in &t.nodes {
                let p = Place {
                    dir: Vec::new(),
                    name: n.name.clone(),
                };
                w.node(&top, n, p, &n.name);
            }
        }
    }
    let (files, links, dirs) = (
        std::mem::take(&mut w.files),
        std::mem::take(&mut w.links),
        std::mem::take(&mut w.dirs),
    );
    let (chown, existing) = (w.chown, w.existing);
    let mut report = std::mem::take(&mut w.report);
    let show = |p: &Place| {
        let mut s = target.display().to_string();
        for c in p.components() {
            s.push('/');
            s.push_str(&String::from_utf8_lossy(&c));
        }
        s
    };
    write_files(&r, &top, &files, opts, chown, &show, &mut report)?;
    for (first, p) in &links {
        let res = top.walk(&first.dir, existing, false).and_then(|src| {
            let dst = top.walk(&p.dir, existing, false)?;
            let tmp = dst.hard_link(&src, &first.name, &p.name)?;
            dst.commit(&tmp, &p.name, existing)
        });
        if let Err(e) = res {
            let line = format!("{}: hard link to {}: {e}", show(p), show(first));
            if e.is_in_the_way() {
                report.refused.push(line);
            } else {
                report.failed.push(line);
            }
        }
    }
    for (n, p) in &dirs {
        match top.walk(&p.components(), existing, false) {
            Ok(d) => {
                for m in set_meta_fd(d.fd(), &meta(n), chown) {
                    report.warnings.push(format!("{}/: {m}", show(p)));
                }
            }
            Err(e) => report.warnings.push(format!("{}/: metadata: {e}", show(p))),
        }
    }
    report.classify();
    Ok(report)
}

/// Per-worker results.
#[derive(Default)]
struct Done {
    files: u64,
    bytes: u64,
    warnings: Vec<String>,
    failed: Vec<String>,
    refused: Vec<String>,
}

/// Write regular files with several workers; each one is checked against its
/// backup-time BLAKE3 before it gets its metadata and its final name.
fn write_files(
    r: &Reader<'_>,
    top: &Dir,
    files: &[(Node, Place)],
    opts: &RestoreOptions,
    chown: bool,
    show: &(dyn Fn(&Place) -> String + Sync),
    report: &mut RestoreReport,
) -> Result<(), BackupError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let existing = opts.existing;
    let results: Vec<Result<Done, BackupError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.threads.max(1))
            .map(|_| {
                let mut rd = r.fork();
                let next = &next;
                let cancel = &opts.cancel;
                s.spawn(move || {
                    let mut done = Done::default();
                    let mut cached: Option<(Vec<Vec<u8>>, Dir)> = None;
                    loop {
                        cancel.check()?;
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((n, p)) = files.get(i) else { break };
                        let NodeKind::File { content, blake3 } = &n.kind else {
                            continue;
                        };
                        if cached.as_ref().is_none_or(|(c, _)| *c != p.dir) {
                            match top.walk(&p.dir, existing, false) {
                                Ok(d) => cached = Some((p.dir.clone(), d)),
                                Err(e) => {
                                    cached = None;
                                    done.failed.push(format!("{}: {e}", show(p)));
                                    continue;
                                }
                            }
                        }
                        let Some((_, dir)) = &cached else { continue };
                        let (mut f, tmp) = match dir.create_temp(&p.name) {
                            Ok(x) => x,
                            Err(e) => {
                                let line = format!("{}: {e}", show(p));
                                if e.is_in_the_way() {
                                    done.refused.push(line);
                                } else {
                                    done.failed.push(line);
                                }
                                continue;
                            }
                        };
                        let what = show(p);
                        match rd.write_extents(content, &mut f, false, &what) {
                            Ok((h, b)) if &h == blake3 => {
                                for m in set_meta_fd(f.as_fd(), &meta(n), chown) {
                                    done.warnings.push(format!("{what}: {m}"));
                                }
                                drop(f);
                                match dir.commit(&tmp, &p.name, existing) {
                                    Ok(()) => {
                                        done.files += 1;
                                        done.bytes += b;
                                        if let Some(pr) = &opts.progress {
                                            pr.file(Path::new(&what));
                                            pr.bytes(b);
                                        }
                                    }
                                    Err(e) if e.is_in_the_way() => {
                                        done.refused.push(format!("{what}: {e}"))
                                    }
                                    Err(e) => done.failed.push(format!("{what}: {e}")),
                                }
                            }
                            Ok(_) => {
                                drop(f);
                                let _ = dir.remove_temp(&tmp);
                                done.failed.push(format!(
                                    "{what}: content does not match the BLAKE3 recorded at backup time"
                                ));
                            }
                            Err(e) => {
                                drop(f);
                                let _ = dir.remove_temp(&tmp);
                                done.failed.push(format!("{what}: {e}"));
                            }
                        }
                    }
                    Ok(done)
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
        let d = res?;
        report.files += d.files;
        report.bytes += d.bytes;
        report.warnings.extend(d.warnings);
        report.failed.extend(d.failed);
        report.refused.extend(d.refused);
    }
    report.failed.sort();
    report.refused.sort();
    Ok(())
}
