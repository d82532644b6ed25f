//! Writing beneath a directory without ever leaving it: what restore and the
//! drill's scratch area write through.
//!
//! Every operation is relative to an open directory descriptor and takes one
//! plain name (never `.`, `..`, empty, or containing `/` or NUL), so no path
//! resolution happens except one step at a time:
//!
//! - directories are opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_XDEV)` and `O_NOFOLLOW | O_DIRECTORY`: a symlink (even one an
//!   earlier restore created) or a mount point in the way is never followed.
//!   Kernels without `openat2` get `openat(O_NOFOLLOW)` plus a device-number
//!   check against the parent (which cannot see bind mounts of the same file
//!   system);
//! - files are created under a temporary name with `O_CREAT | O_EXCL |
//!   O_NOFOLLOW`, filled, their metadata set through the descriptor, and only
//!   then renamed to their final name, so a final name never holds a partial
//!   file; symlinks, hard links and fifos take the same temporary-name route;
//! - whatever is in the way is replaced or refused per [`Existing`]: a
//!   non-directory (file, symlink, fifo) is unlinked and replaced, never written
//!   through; a directory where a non-directory belongs, and a mount point, are
//!   always refused (nothing is deleted recursively).
//!
//! All system calls go through `nix`'s safe wrappers: no `unsafe` here.

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What to do with an entry that is already where a restored one goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Existing {
    /// Replace files, symlinks and fifos in the way (unlinked, never followed).
    /// Existing directories are reused for directories.
    Replace,
    /// Leave anything in the way alone and report the entry as not restored.
    /// Existing directories are still reused for directories.
    Refuse,
}

/// Why an operation beneath the root did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfineError {
    /// A stored name that is not one plain path component.
    #[error("unsafe name {0:?}: not a single path component")]
    BadName(String),
    /// Something is where the entry goes and may not be replaced.
    #[error("{what} is in the way{why}")]
    InTheWay {
        /// A symlink, a mount point, a directory, a file...
        what: &'static str,
        /// Policy note.
        why: &'static str,
    },
    /// A system call failed.
    #[error("{op}: {errno}")]
    Sys {
        /// The operation.
        op: &'static str,
        /// The error.
        errno: Errno,
    },
}

impl ConfineError {
    fn sys(op: &'static str) -> impl Fn(Errno) -> ConfineError {
        move |errno| ConfineError::Sys { op, errno }
    }

    /// An `io::Error` for callers that report I/O errors.
    pub fn into_io(self) -> std::io::Error {
        match self {
            ConfineError::Sys { errno, .. } => std::io::Error::from(errno),
            other => std::io::Error::other(other.to_string()),
        }
    }

    /// True for "left in place by policy" (as opposed to a failure).
    pub fn is_in_the_way(&self) -> bool {
        matches!(self, ConfineError::InTheWay { .. })
    }
}

/// One plain path component.
pub fn check_name(name: &[u8]) -> Result<&OsStr, ConfineError> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(ConfineError::BadName(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    Ok(OsStr::from_bytes(name))
}

/// The temporary name an entry is prepared under (fixed per name, so a rerun
/// after a crash replaces a leftover instead of adding another).
pub fn temp_name(name: &[u8]) -> String {
    let h = blake3::hash(name);
    format!(".lethe-tmp.{}", &h.to_hex()[..16])
}

/// An open directory that everything below is resolved against.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    dev: u64,
}

fn stat_kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

fn describe(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFLNK => "a symlink",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFREG => "a file",
        SFlag::S_IFIFO => "a fifo",
        _ => "a special file",
    }
}

impl Dir {
    /// Open (creating it if needed) the root the caller chose. The operator's
    /// own path is resolved normally; everything below it is confined.
    pub fn open_root(path: &Path) -> std::io::Result<Dir> {
        std::fs::create_dir_all(path)?;
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(std::io::Error::from)?;
        let st = nix::sys::stat::fstat(&fd).map_err(std::io::Error::from)?;
        Ok(Dir { fd, dev: st.st_dev })
    }

    /// The descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `fstat` of this directory.
    pub fn stat(&self) -> Result<FileStat, ConfineError> {
        nix::sys::stat::fstat(&self.fd).map_err(ConfineError::sys("fstat"))
    }

    /// What is at `name` (not following a symlink), if anything.
    pub fn lstat(&self, name: &[u8]) -> Result<Option<FileStat>, ConfineError> {
        let n = check_name(name)?;
        match nix::sys::stat::fstatat(&self.fd, n, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(ConfineError::sys("fstatat")(e)),
        }
    }

    /// Open the directory `name` beneath this one, refusing symlinks and mount points.
    fn open_beneath(&self, name: &OsStr) -> Result<Dir, Errno> {
        use nix::fcntl::{openat2, OpenHow, ResolveFlag};
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let how = OpenHow::new().flags(flags).resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_XDEV
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
        let fd = match openat2(&self.fd, name, how) {
            Ok(fd) => fd,
            // No openat2 (old kernel, or filtered): one-step openat + same-device check.
            Err(Errno::ENOSYS) | Err(Errno::EPERM) => {
                nix::fcntl::openat(&self.fd, name, flags, Mode::empty())?
            }
            Err(e) => return Err(e),
        };
        let st = nix::sys::stat::fstat(&fd)?;
        if st.st_dev != self.dev {
            return Err(Errno::EXDEV);
        }
        Ok(Dir { fd, dev: st.st_dev })
    }

    /// The directory `name` beneath this one, created (mode 0700 until the
    /// caller sets the final mode) when absent. A symlink or non-directory in
    /// the way is replaced with `Existing::Replace`; a mount point is refused.
    pub fn subdir(
        &self,
        name: &[u8],
        existing: Existing,
        create: bool,
    ) -> Result<Dir, ConfineError> {
        let n = check_name(name)?;
        for _ in 0..3 {
            match self.open_beneath(n) {
                Ok(d) => return Ok(d),
                Err(Errno::ENOENT) if create => {
                    match nix::sys::stat::mkdirat(&self.fd, n, Mode::from_bits_truncate(0o700)) {
                        Ok(()) | Err(Errno::EEXIST) => continue,
                        Err(e) => return Err(ConfineError::sys("mkdirat")(e)),
                    }
                }
                Err(Errno::EXDEV) => {
                    return Err(ConfineError::InTheWay {
                        what: "a mount point",
                        why: " (never crossed)",
                    })
                }
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    let kind = self
                        .lstat(name)?
                        .map_or(SFlag::S_IFREG, |st| stat_kind(&st));
                    if existing == Existing::Refuse || !create {
                        return Err(ConfineError::InTheWay {
                            what: describe(kind),
                            why: " (not followed)",
                        });
                    }
                    match nix::unistd::unlinkat(
                        &self.fd,
                        n,
                        nix::unistd::UnlinkatFlags::NoRemoveDir,
                    ) {
                        Ok(()) | Err(Errno::ENOENT) => continue,
                        Err(e) => return Err(ConfineError::sys("unlinkat")(e)),
                    }
                }
                Err(e) => return Err(ConfineError::sys("openat2")(e)),
            }
        }
        Err(ConfineError::InTheWay {
            what: "an entry that keeps changing",
            why: "",
        })
    }

    /// Walk down `components` (each opened with [`Dir::subdir`]).
    pub fn walk(
        &self,
        components: &[Vec<u8>],
        existing: Existing,
        create: bool,
    ) -> Result<Dir, ConfineError> {
        let mut d = self.subdir_self()?;
        for c in components {
            d = d.subdir(c, existing, create)?;
        }
        Ok(d)
    }

    fn subdir_self(&self) -> Result<Dir, ConfineError> {
        Ok(Dir {
            fd: self.fd.try_clone().map_err(|e| ConfineError::Sys {
                op: "dup",
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            })?,
            dev: self.dev,
        })
    }

    /// Create the temporary file for `name` (`O_EXCL`, never following a
    /// symlink); a leftover of an interrupted run is removed first.
    pub fn create_temp(&self, name: &[u8]) -> Result<(File, String), ConfineError> {
        check_name(name)?;
        let tmp = temp_name(name);
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        for _ in 0..3 {
            match nix::fcntl::openat(
                &self.fd,
                tmp.as_str(),
                flags,
                Mode::from_bits_truncate(0o600),
            ) {
                Ok(fd) => return Ok((File::from(fd), tmp)),
                Err(Errno::EEXIST) => self.remove_temp(&tmp)?,
                Err(e) => return Err(ConfineError::sys("openat")(e)),
            }
        }
        Err(ConfineError::InTheWay {
            what: "a temporary file that keeps reappearing",
            why: "",
        })
    }

    /// Create a new file `name` for reading and writing (`O_EXCL`, `O_NOFOLLOW`).
    pub fn create_new(&self, name: &[u8]) -> Result<File, ConfineError> {
        let n = check_name(name)?;
        let flags =
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(&self.fd, n, flags, Mode::from_bits_truncate(0o600)) {
            Ok(fd) => Ok(File::from(fd)),
            Err(Errno::EEXIST) => Err(ConfineError::InTheWay {
                what: "an entry",
                why: " (refused)",
            }),
            Err(e) => Err(ConfineError::sys("openat")(e)),
        }
    }

    /// Remove a temporary entry (never a directory).
    pub fn remove_temp(&self, tmp: &str) -> Result<(), ConfineError> {
        match nix::unistd::unlinkat(&self.fd, tmp, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR) => Err(ConfineError::InTheWay {
                what: "a directory",
                why: " (at a temporary name)",
            }),
            Err(e) => Err(ConfineError::sys("unlinkat")(e)),
        }
    }

    /// Give the prepared temporary entry its final name. With `Replace` a
    /// non-directory already there is replaced atomically; a directory is
    /// refused. On refusal the temporary entry is removed.
    pub fn commit(&self, tmp: &str, name: &[u8], existing: Existing) -> Result<(), ConfineError> {
        let n = check_name(name)?;
        let r = match existing {
            Existing::Replace => nix::fcntl::renameat(&self.fd, tmp, &self.fd, n),
            Existing::Refuse => nix::fcntl::renameat2(
                &self.fd,
                tmp,
                &self.fd,
                n,
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            ),
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = self.remove_temp(tmp);
                match e {
                    Errno::EEXIST
                    | Errno::ENOTEMPTY
                    | Errno::EISDIR
                    | Errno::ENOTDIR
                    | Errno::EBUSY => {
                        let what = self
                            .lstat(name)
                            .ok()
                            .flatten()
                            .map_or("an entry", |st| describe(stat_kind(&st)));
                        Err(ConfineError::InTheWay {
                            what,
                            why: if existing == Existing::Refuse {
                                " (refused)"
                            } else {
                                " (not replaced)"
                            },
                        })
                    }
                    e => Err(ConfineError::sys("renameat")(e)),
                }
            }
        }
    }

    /// Create a symlink `name -> target` (the target is stored content, never resolved).
    pub fn symlink(&self, target: &[u8], name: &[u8]) -> Result<String, ConfineError> {
        check_name(name)?;
        let tmp = temp_name(name);
        self.remove_temp(&tmp)?;
        nix::unistd::symlinkat(OsStr::from_bytes(target), &self.fd, tmp.as_str())
            .map_err(ConfineError::sys("symlinkat"))?;
        Ok(tmp)
    }

    /// Prepare a hard link to `src_name` in `src` at the temporary name of `name`.
    pub fn hard_link(
        &self,
        src: &Dir,
        src_name: &[u8],
        name: &[u8],
    ) -> Result<String, ConfineError> {
        let s = check_name(src_name)?;
        check_name(name)?;
        let tmp = temp_name(name);
        self.remove_temp(&tmp)?;
        // linkat without AT_SYMLINK_FOLLOW links the entry itself, never a symlink's target.
        nix::unistd::linkat(&src.fd, s, &self.fd, tmp.as_str(), AtFlags::empty())
            .map_err(ConfineError::sys("linkat"))?;
        Ok(tmp)
    }

    /// Prepare a fifo at the temporary name of `name`.
    pub fn mkfifo(&self, name: &[u8], mode: u32) -> Result<String, ConfineError> {
        check_name(name)?;
        let tmp = temp_name(name);
        self.remove_temp(&tmp)?;
        nix::unistd::mkfifoat(
            &self.fd,
            tmp.as_str(),
            Mode::from_bits_truncate(mode & 0o777),
        )
        .map_err(ConfineError::sys("mkfifoat"))?;
        Ok(tmp)
    }

    /// Set owner (when `chown`), mode (unless a symlink) and times of the entry
    /// `name` itself, never following a symlink. Returns the failures.
    pub fn set_meta_at(&self, name: &str, meta: &Meta, chown: bool, symlink: bool) -> Vec<String> {
        let mut w = Vec::new();
        if chown {
            if let Err(e) = nix::unistd::fchownat(
                &self.fd,
                name,
                Some(nix::unistd::Uid::from_raw(meta.uid)),
                Some(nix::unistd::Gid::from_raw(meta.gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                w.push(format!("chown: {e}"));
            }
        }
        if !symlink {
            if let Err(e) = nix::sys::stat::fchmodat(
                &self.fd,
                name,
                Mode::from_bits_truncate(meta.mode),
                nix::sys::stat::FchmodatFlags::NoFollowSymlink,
            ) {
                w.push(format!("chmod: {e}"));
            }
        }
        if let Err(e) = nix::sys::stat::utimensat(
            &self.fd,
            name,
            &meta.atime,
            &meta.mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        ) {
            w.push(format!("times: {e}"));
        }
        w
    }

    /// Remove `name` and, if it is a directory, everything below it, without
    /// following symlinks or crossing mount points. For scratch areas this
    /// process created.
    pub fn remove_tree(&self, name: &[u8]) -> Result<(), ConfineError> {
        let n = check_name(name)?;
        match nix::unistd::unlinkat(&self.fd, n, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EISDIR) => {}
            Err(e) => return Err(ConfineError::sys("unlinkat")(e)),
        }
        let sub = match self.open_beneath(n) {
            Ok(d) => d,
            Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EXDEV) => {
                return Err(ConfineError::InTheWay {
                    what: "a mount point",
                    why: " (not removed)",
                })
            }
            Err(e) => return Err(ConfineError::sys("openat2")(e)),
        };
        for child in sub.names()? {
            sub.remove_tree(&child)?;
        }
        match nix::unistd::unlinkat(&self.fd, n, nix::unistd::UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(ConfineError::sys("unlinkat")(e)),
        }
    }

    /// The names in this directory (without `.` and `..`).
    pub fn names(&self) -> Result<Vec<Vec<u8>>, ConfineError> {
        let fd = self.fd.try_clone().map_err(|e| ConfineError::Sys {
            op: "dup",
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        })?;
        let mut d = nix::dir::Dir::from_fd(fd).map_err(ConfineError::sys("fdopendir"))?;
        let mut out = Vec::new();
        for e in d.iter() {
            let e = e.map_err(ConfineError::sys("readdir"))?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                out.push(n.to_vec());
            }
        }
        Ok(out)
    }
}

/// Owner, mode and times to apply.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission and special bits.
    pub mode: u32,
    /// Access time.
    pub atime: nix::sys::time::TimeSpec,
    /// Modification time.
    pub mtime: nix::sys::time::TimeSpec,
}

/// Set owner (when `chown`), mode and times through an open descriptor.
pub fn set_meta_fd(fd: BorrowedFd<'_>, meta: &Meta, chown: bool) -> Vec<String> {
    let mut w = Vec::new();
    if chown {
        if let Err(e) = nix::unistd::fchown(
            fd,
            Some(nix::unistd::Uid::from_raw(meta.uid)),
            Some(nix::unistd::Gid::from_raw(meta.gid)),
        ) {
            w.push(format!("chown: {e}"));
        }
    }
    // After chown: chown clears set-uid/set-gid bits.
    if let Err(e) = nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(meta.mode)) {
        w.push(format!("chmod: {e}"));
    }
    if let Err(e) = nix::sys::stat::futimens(fd, &meta.atime, &meta.mtime) {
        w.push(format!("times: {e}"));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// safeguard: rule:restore-confinement
    #[test]
    fn names_are_single_components() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"/etc", b"a\0b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(b"...").is_ok());
        assert!(check_name(b".hidden").is_ok());
    }

    /// safeguard: rule:restore-confinement
    #[test]
    fn symlinks_in_the_way_are_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("victim"), b"keep").unwrap();
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.join("victim"), root.join("victim")).unwrap();
        let d = Dir::open_root(&root).unwrap();
        // Refused without touching anything.
        let e = d.subdir(b"sub", Existing::Refuse, true).unwrap_err();
        assert!(e.is_in_the_way(), "{e}");
        // Replaced: the symlink goes, a real directory comes, the outside is untouched.
        let sub = d.subdir(b"sub", Existing::Replace, true).unwrap();
        assert!(std::fs::symlink_metadata(root.join("sub"))
            .unwrap()
            .is_dir());
        let (mut f, tmp) = sub.create_temp(b"victim").unwrap();
        f.write_all(b"new").unwrap();
        sub.commit(&tmp, b"victim", Existing::Replace).unwrap();
        // A file over a symlink replaces the link itself.
        let (mut f, tmp) = d.create_temp(b"victim").unwrap();
        f.write_all(b"mine").unwrap();
        d.commit(&tmp, b"victim", Existing::Replace).unwrap();
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"keep");
        assert_eq!(std::fs::read(root.join("victim")).unwrap(), b"mine");
        // Refuse keeps an existing file and removes the temporary one.
        let (mut f, tmp) = d.create_temp(b"victim").unwrap();
        f.write_all(b"other").unwrap();
        assert!(d
            .commit(&tmp, b"victim", Existing::Refuse)
            .unwrap_err()
            .is_in_the_way());
        assert_eq!(std::fs::read(root.join("victim")).unwrap(), b"mine");
        assert!(d.lstat(tmp.as_bytes()).unwrap().is_none());
        // A directory is never replaced by a file.
        let (_f, tmp) = d.create_temp(b"sub").unwrap();
        assert!(d
            .commit(&tmp, b"sub", Existing::Replace)
            .unwrap_err()
            .is_in_the_way());
        // A leftover temporary file (a crashed run) is replaced, not an error.
        let leftover = root.join(temp_name(b"x"));
        std::os::unix::fs::symlink(outside.join("victim"), &leftover).unwrap();
        let (mut f, tmp) = d.create_temp(b"x").unwrap();
        f.write_all(b"x").unwrap();
        d.commit(&tmp, b"x", Existing::Replace).unwrap();
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"keep");
        // Removal does not follow symlinks.
        std::os::unix::fs::symlink(&outside, root.join("sub/escape")).unwrap();
        d.remove_tree(b"sub").unwrap();
        assert!(outside.join("victim").exists());
    }
}
