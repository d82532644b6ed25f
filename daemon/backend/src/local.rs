//! Local directory backend.
//!
//! Writes go to `<dir>/.tmp-<unique>` opened with O_EXCL, are fsynced, then published with
//! `link(2)` (create-only: fails atomically if the name exists) or `rename(2)` (overwrite), and
//! the directory is fsynced. Any failure removes the temporary file, so a full disk never leaves
//! a partial object. Blocking I/O runs in `spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{validate_prefix, BackendError};
use crate::{validate_name, Backend, ObjectInfo, WriteOptions};

/// Objects stored as files below a root directory.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
    describe: String,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

const ENOSPC: i32 = 28;
const EFBIG: i32 = 27;
const EDQUOT: i32 = 122;

fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(ENOSPC | EFBIG | EDQUOT))
        || matches!(
            e.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::FileTooLarge | io::ErrorKind::QuotaExceeded
        )
}

impl LocalBackend {
    /// A backend rooted at `root`. The directory is created on the first write if missing.
    pub async fn open(root: PathBuf) -> Result<Self, BackendError> {
        let describe = crate::Location::Local(root.clone()).to_string();
        Ok(LocalBackend { root, describe })
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn io_err(&self, op: &'static str, name: &str, e: io::Error) -> BackendError {
        if e.kind() == io::ErrorKind::NotFound {
            BackendError::NotFound {
                backend: self.describe.clone(),
                name: name.to_string(),
            }
        } else if is_disk_full(&e) {
            BackendError::DiskFull {
                backend: self.describe.clone(),
                name: name.to_string(),
                source: e,
            }
        } else {
            BackendError::Failed {
                backend: self.describe.clone(),
                op,
                name: name.to_string(),
                attempts: 1,
                source: Box::new(e),
            }
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        name: &str,
        f: impl FnOnce(LocalBackend) -> Result<T, BackendError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(this))
            .await
            .map_err(|e| BackendError::Failed {
                backend: self.describe.clone(),
                op,
                name: name.to_string(),
                attempts: 1,
                source: Box::new(e),
            })?
    }

    fn write_sync(&self, name: &str, data: &[u8], overwrite: bool) -> Result<(), BackendError> {
        let path = self.path_of(name);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| self.io_err("write", name, e))?;
            // Make the new directory entries durable up to the root.
            let mut d = dir.as_path();
            while let Some(parent) = d.parent() {
                sync_dir(parent).map_err(|e| self.io_err("write", name, e))?;
                if parent == self.root || !parent.starts_with(&self.root) {
                    break;
                }
                d = parent;
            }
        }
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = write_tmp(&tmp, data).and_then(|()| {
            if overwrite {
                fs::rename(&tmp, &path)
            } else {
                let linked = fs::hard_link(&tmp, &path);
                let _ = fs::remove_file(&tmp);
                linked
            }
        });
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            if e.kind() == io::ErrorKind::AlreadyExists {
                return Err(BackendError::AlreadyExists {
                    backend: self.describe.clone(),
                    name: name.to_string(),
                });
            }
            return Err(self.io_err("write", name, e));
        }
        sync_dir(&dir).map_err(|e| self.io_err("write", name, e))
    }

    fn list_sync(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        let mut out = Vec::new();
        let start = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path_of(prefix)
        };
        let mut stack = vec![(start, prefix.to_string())];
        while let Some((dir, rel)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => continue,
                Err(e) => return Err(self.io_err("list", prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.io_err("list", prefix, e))?;
                let Some(fname) = entry.file_name().to_str().map(str::to_string) else {
                    continue; // Not a name this crate could have written.
                };
                let child = if rel.is_empty() {
                    fname.clone()
                } else {
                    format!("{rel}/{fname}")
                };
                let ft = entry
                    .file_type()
                    .map_err(|e| self.io_err("list", prefix, e))?;
                if ft.is_dir() {
                    stack.push((entry.path(), child));
                } else if ft.is_file() && validate_name(&child).is_ok() {
                    let size = entry
                        .metadata()
                        .map_err(|e| self.io_err("list", prefix, e))?
                        .len();
                    out.push(ObjectInfo { name: child, size });
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

fn write_tmp(tmp: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    f.write_all(data)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[async_trait]
impl Backend for LocalBackend {
    fn describe(&self) -> &str {
        &self.describe
    }

    async fn write(
        &self,
        name: &str,
        data: Bytes,
        opts: &WriteOptions,
    ) -> Result<(), BackendError> {
        validate_name(name)?;
        if opts.retention.is_some() {
            return Err(BackendError::Unsupported {
                backend: self.describe.clone(),
                what: "Object Lock retention on a local directory",
            });
        }
        let n = name.to_string();
        let overwrite = opts.overwrite;
        self.blocking("write", name, move |b| b.write_sync(&n, &data, overwrite))
            .await
    }

    async fn read(&self, name: &str) -> Result<Bytes, BackendError> {
        validate_name(name)?;
        let n = name.to_string();
        self.blocking("read", name, move |b| {
            fs::read(b.path_of(&n))
                .map(Bytes::from)
                .map_err(|e| b.io_err("read", &n, e))
        })
        .await
    }

    async fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Bytes, BackendError> {
        validate_name(name)?;
        let n = name.to_string();
        self.blocking("read", name, move |b| {
            let mut f = File::open(b.path_of(&n)).map_err(|e| b.io_err("read", &n, e))?;
            let size = f.metadata().map_err(|e| b.io_err("read", &n, e))?.len();
            let in_range = offset.checked_add(len).is_some_and(|end| end <= size);
            let buf_len = usize::try_from(len).ok().filter(|_| in_range);
            let Some(buf_len) = buf_len else {
                return Err(BackendError::InvalidRange {
                    backend: b.describe.clone(),
                    name: n,
                    offset,
                    len,
                    size: Some(size),
                });
            };
            let mut buf = vec![0u8; buf_len];
            f.seek(SeekFrom::Start(offset))
                .and_then(|_| f.read_exact(&mut buf))
                .map_err(|e| b.io_err("read", &n, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn stat(&self, name: &str) -> Result<ObjectInfo, BackendError> {
        validate_name(name)?;
        let n = name.to_string();
        self.blocking("stat", name, move |b| {
            let md = fs::metadata(b.path_of(&n)).map_err(|e| b.io_err("stat", &n, e))?;
            if !md.is_file() {
                return Err(BackendError::NotFound {
                    backend: b.describe.clone(),
                    name: n,
                });
            }
            Ok(ObjectInfo {
                name: n,
                size: md.len(),
            })
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        let p = validate_prefix(prefix)?;
        self.blocking("list", prefix, move |b| b.list_sync(&p))
            .await
    }

    async fn delete(&self, name: &str) -> Result<(), BackendError> {
        validate_name(name)?;
        let n = name.to_string();
        self.blocking("delete", name, move |b| {
            let path = b.path_of(&n);
            fs::remove_file(&path).map_err(|e| b.io_err("delete", &n, e))?;
            if let Some(dir) = path.parent() {
                sync_dir(dir).map_err(|e| b.io_err("delete", &n, e))?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_errors_are_recognised() {
        for code in [ENOSPC, EFBIG, EDQUOT] {
            assert!(is_disk_full(&io::Error::from_raw_os_error(code)));
        }
        assert!(!is_disk_full(&io::Error::from_raw_os_error(5))); // EIO
        assert!(!is_disk_full(&io::Error::other("x")));
    }

    /// safeguard: rule:restore-confinement
    #[tokio::test]
    async fn crash_leftovers_are_not_listed_and_names_stay_inside_root() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let b = LocalBackend::open(dir.path().to_path_buf())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        b.write(
            "data/aa/x",
            Bytes::from_static(b"abc"),
            &WriteOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        // A temp file left by a crash mid-write and a stray non-object file.
        std::fs::write(dir.path().join("data/aa/.tmp-1-2"), b"partial").unwrap_or_default();
        std::fs::write(dir.path().join("data/aa/bad name"), b"?").unwrap_or_default();
        let listed = b.list("").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            listed,
            vec![ObjectInfo {
                name: "data/aa/x".into(),
                size: 3
            }]
        );
        assert!(matches!(
            b.read("data/aa/.tmp-1-2").await,
            Err(BackendError::InvalidName { .. })
        ));
        assert!(matches!(
            b.read("../etc/passwd").await,
            Err(BackendError::InvalidName { .. })
        ));
    }
}
