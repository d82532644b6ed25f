//! The pack directory: hashing its files, and comparing them with a manifest.
//!
//! The walk never follows a symbolic link and accepts nothing but regular
//! files and directories: a link could make the check read a file outside
//! the pack, a FIFO would block it. Every difference is reported, not only
//! the first, so an auditor sees the whole extent of a change.

use crate::manifest::{is_pack_path, FileEntry, MANIFEST_FILE};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// One way the directory differs from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// Listed, but its size or SHA-256 differs.
    Changed(String),
    /// Present, but not listed.
    Added(String),
    /// Listed, but absent.
    Removed(String),
    /// Something that is not a regular file or directory (a link, a FIFO, a
    /// device), or a name the manifest format cannot list.
    NotAllowed(String),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Changed(p) => write!(f, "changed: {p}"),
            Difference::Added(p) => write!(f, "added (not in the manifest): {p}"),
            Difference::Removed(p) => write!(f, "removed (listed in the manifest): {p}"),
            Difference::NotAllowed(p) => {
                write!(
                    f,
                    "not allowed in a pack (not a regular file, or a bad name): {p}"
                )
            }
        }
    }
}

/// Open a regular file without following a link or waiting on a FIFO.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a regular file", path.display()),
        ));
    }
    Ok(f)
}

/// SHA-256 and length of a regular file's bytes (links are not followed).
pub fn hash_file(path: &Path) -> io::Result<([u8; 32], u64)> {
    let mut f = open_regular(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((h.finalize().into(), len))
}

/// What the walk found: regular files by relative path, and the entries it
/// refuses.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub files: BTreeMap<String, std::path::PathBuf>,
    pub refused: Vec<String>,
    /// Directories with no file anywhere below them.
    pub empty_dirs: Vec<String>,
}

/// Walk `root` without following links. The top-level manifest is left out.
pub(crate) fn walk(root: &Path) -> io::Result<Walk> {
    let mut w = Walk::default();
    walk_into(root, "", &mut w)?;
    Ok(w)
}

fn walk_into(dir: &Path, prefix: &str, w: &mut Walk) -> io::Result<bool> {
    let mut names: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    names.sort_by_key(|e| e.file_name());
    let mut any = false;
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if prefix.is_empty() && name == MANIFEST_FILE {
            continue;
        }
        let ft = fs::symlink_metadata(e.path())?.file_type();
        if ft.is_dir() {
            if walk_into(&e.path(), &rel, w)? {
                any = true;
            } else {
                w.empty_dirs.push(rel);
            }
        } else if ft.is_file() && is_pack_path(&rel) {
            w.files.insert(rel, e.path());
            any = true;
        } else {
            w.refused.push(rel);
            any = true;
        }
    }
    Ok(any)
}

/// Hash every file below `root` (the manifest excluded), sorted by path.
/// Refuses links, special files and names the manifest cannot list.
pub fn entries_of(root: &Path) -> io::Result<Vec<FileEntry>> {
    let w = walk(root)?;
    if let Some(bad) = w.refused.first() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{bad}: not a regular file, or a name a pack cannot hold"),
        ));
    }
    w.files
        .into_iter()
        .map(|(path, full)| {
            let (sha256, size) = hash_file(&full)?;
            Ok(FileEntry { path, size, sha256 })
        })
        .collect()
}

/// Every difference between `root` and `listed`.
pub fn compare(root: &Path, listed: &[FileEntry]) -> io::Result<Vec<Difference>> {
    let w = walk(root)?;
    let mut out: Vec<Difference> = w.refused.into_iter().map(Difference::NotAllowed).collect();
    out.extend(w.empty_dirs.into_iter().map(Difference::Added));
    let listed_paths: BTreeMap<&str, &FileEntry> =
        listed.iter().map(|f| (f.path.as_str(), f)).collect();
    for (path, full) in &w.files {
        match listed_paths.get(path.as_str()) {
            None => out.push(Difference::Added(path.clone())),
            Some(want) => {
                if hash_file(full)? != (want.sha256, want.size) {
                    out.push(Difference::Changed(path.clone()));
                }
            }
        }
    }
    for f in listed {
        if !w.files.contains_key(&f.path) {
            out.push(Difference::Removed(f.path.clone()));
        }
    }
    Ok(out)
}
