//! From a repository URL to an open [`Store`]: credentials for S3 from the
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), a key and a
//! known_hosts file for SFTP, and the I/O runtime the backend runs on.

use crate::store::Store;
use crate::{BackupError, Repository};
use lethe_backend::{BackendConfig, HostKeyCheck, Location, S3Credentials, SftpConfig};
use std::path::{Path, PathBuf};

/// SFTP settings (ignored for other locations).
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Private key for `sftp:` repositories.
    pub sftp_key: Option<PathBuf>,
    /// known_hosts file (default `$HOME/.ssh/known_hosts`); host keys are always checked.
    pub sftp_known_hosts: Option<PathBuf>,
}

/// An open store and the runtime its backend runs on (dropped after the store).
pub struct Connection {
    /// The storage.
    pub store: Store,
    /// Must outlive every clone of `store`.
    pub rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("store", &self.store.describe())
            .finish()
    }
}

/// Connect to the repository at `url` (a path, `s3:…` or `sftp:…`).
pub fn connect(url: &str, opts: &ConnectOptions) -> Result<Connection, BackupError> {
    let loc = lethe_backend::location::parse(url)
        .map_err(|e| BackupError::Invalid(format!("repository {url:?}: {e}")))?;
    let mut cfg = BackendConfig::default();
    match &loc {
        Location::S3(_) => cfg.s3 = Some(S3Credentials::from_env()?),
        Location::Sftp(_) => {
            let key_file = opts.sftp_key.clone().ok_or_else(|| {
                BackupError::Invalid(
                    "sftp: repositories need --sftp-key (or LETHE_SFTP_KEY)".into(),
                )
            })?;
            let kh = opts.sftp_known_hosts.clone().unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                    .join(".ssh/known_hosts")
            });
            cfg.sftp = Some(SftpConfig {
                key_file,
                host_key: HostKeyCheck::KnownHostsFile(kh),
            });
        }
        Location::Local(_) => {}
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| BackupError::Internal(format!("starting the I/O runtime: {e}")))?;
    let backend = rt.block_on(lethe_backend::open(&loc, &cfg))?;
    let store = Store::new(backend, rt.handle().clone());
    Ok(Connection { store, rt })
}

/// A passphrase file's content: a trailing newline is not part of it (as in restic).
pub fn read_secret(path: &Path) -> Result<Vec<u8>, BackupError> {
    let s = std::fs::read(path).map_err(|e| BackupError::io(path, e))?;
    let s = s.strip_suffix(b"\n").unwrap_or(&s);
    let s = s.strip_suffix(b"\r").unwrap_or(s);
    if s.is_empty() {
        return Err(BackupError::Invalid(format!("{} is empty", path.display())));
    }
    Ok(s.to_vec())
}

/// An unlocked repository and its connection (the repository is dropped first).
pub struct Opened {
    /// The repository.
    pub repo: Repository,
    /// Its connection.
    pub conn: Connection,
}

/// Connect and unlock with the passphrase in `password_file`.
pub fn open(url: &str, password_file: &Path, opts: &ConnectOptions) -> Result<Opened, BackupError> {
    let pw = read_secret(password_file)?;
    let conn = connect(url, opts)?;
    let repo = Repository::open(conn.store.clone(), &pw)?;
    Ok(Opened { repo, conn })
}
