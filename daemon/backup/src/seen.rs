//! What this client has seen of each repository: the highest manifest generation and
//! key epoch. A storage provider can put back an older manifest, and nothing in the
//! repository can tell; only a client that remembers a higher generation can. The
//! engine reads it through [`SeenStore`]; [`SeenDir`] keeps it in the state directory
//! (`<state>/backup-generations/<repository id>`), one small file per repository,
//! replaced atomically under a file lock so concurrent commands only ever raise it.

use crate::BackupError;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The highest generation and epoch seen for one repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Highest manifest generation seen.
    pub generation: u64,
    /// Highest key epoch seen in a manifest.
    pub epoch: u32,
}

/// Where a client keeps what it has seen (the state database of the caller).
pub trait SeenStore: Send + Sync + std::fmt::Debug {
    /// What was seen of the repository with this id, if anything.
    fn get(&self, repo_id: &[u8; 32]) -> Result<Option<Seen>, BackupError>;
    /// Raise what was seen (never lowers either number).
    fn raise(&self, repo_id: &[u8; 32], seen: Seen) -> Result<(), BackupError>;
}

/// [`SeenStore`] in a directory of small files.
#[derive(Debug, Clone)]
pub struct SeenDir {
    dir: PathBuf,
}

impl SeenDir {
    /// Files in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> SeenDir {
        SeenDir { dir: dir.into() }
    }

    /// The place in a state directory: `<state>/backup-generations`.
    pub fn in_state_dir(state: &Path) -> SeenDir {
        SeenDir::new(state.join("backup-generations"))
    }

    fn file(&self, repo_id: &[u8; 32]) -> PathBuf {
        let hex: String = repo_id.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(hex)
    }

    fn read(path: &Path) -> Result<Option<Seen>, BackupError> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                BackupError::Invalid(format!(
                    "{}: not a record of seen generations: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackupError::io(path, e)),
        }
    }
}

impl SeenStore for SeenDir {
    fn get(&self, repo_id: &[u8; 32]) -> Result<Option<Seen>, BackupError> {
        Self::read(&self.file(repo_id))
    }

    fn raise(&self, repo_id: &[u8; 32], seen: Seen) -> Result<(), BackupError> {
        use nix::fcntl::{Flock, FlockArg};
        std::fs::create_dir_all(&self.dir).map_err(|e| BackupError::io(&self.dir, e))?;
        let lock_path = self.dir.join(".lock");
        let lf = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| BackupError::io(&lock_path, e))?;
        let _held = Flock::lock(lf, FlockArg::LockExclusive)
            .map_err(|(_, e)| BackupError::io(&lock_path, e.into()))?;
        let path = self.file(repo_id);
        let old = Self::read(&path)?.unwrap_or_default();
        let new = Seen {
            generation: old.generation.max(seen.generation),
            epoch: old.epoch.max(seen.epoch),
        };
        if new == old && path.exists() {
            return Ok(());
        }
        let tmp = path.with_extension("tmp");
        let body = serde_json::to_vec(&new)
            .map_err(|e| BackupError::Internal(format!("seen generations: {e}")))?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| BackupError::io(&tmp, e))?;
        f.write_all(&body)
            .and_then(|()| f.sync_all())
            .map_err(|e| BackupError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| BackupError::io(&path, e))?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ever_raises() {
        let t = tempfile::tempdir().unwrap();
        let s = SeenDir::in_state_dir(t.path());
        let id = [7u8; 32];
        assert_eq!(s.get(&id).unwrap(), None);
        s.raise(
            &id,
            Seen {
                generation: 5,
                epoch: 0,
            },
        )
        .unwrap();
        s.raise(
            &id,
            Seen {
                generation: 3,
                epoch: 1,
            },
        )
        .unwrap();
        assert_eq!(
            s.get(&id).unwrap(),
            Some(Seen {
                generation: 5,
                epoch: 1
            })
        );
        assert_eq!(s.get(&[8; 32]).unwrap(), None, "per repository");
        std::fs::write(s.file(&id), b"garbage").unwrap();
        assert!(
            s.get(&id).is_err(),
            "a damaged record is an error, not a fresh start"
        );
    }
}
