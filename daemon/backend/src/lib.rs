//! Backup storage backends behind one trait: local directory, S3-compatible, SFTP.
//!
//! A repository is a set of immutable, content-addressed objects under a few prefixes
//! (`config`, `keys/`, `data/xx/<id>`, `index/`, `snapshots/`, `locks/`). [`Backend`] offers
//! exactly what such a repository needs: whole-object create-only writes, whole or ranged reads,
//! stat, recursive listing of a prefix, delete, and optional S3 Object Lock retention.
//!
//! The trait is async (the engine runs on tokio and both remote clients are async). The local
//! backend does its blocking file I/O inside `spawn_blocking`, so callers never block a runtime
//! worker. The trait is object-safe (`async_trait`), so [`open`] can return `Arc<dyn Backend>`
//! chosen at run time from a repository URL.

pub mod error;
pub mod local;
pub mod location;
pub mod retry;
pub mod s3;
pub mod sftp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

pub use error::{validate_name, BackendError};
pub use location::{Location, LocationError, S3Location, SftpLocation};
pub use retry::RetryPolicy;

/// Size and name of one stored object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectInfo {
    /// Object name relative to the repository root (e.g. `data/ab/ab12…`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// S3 Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionMode {
    /// Users with `s3:BypassGovernanceRetention` may still delete.
    Governance,
    /// Nobody can delete or shorten until the date passes.
    Compliance,
}

impl RetentionMode {
    /// The S3 wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionMode::Governance => "GOVERNANCE",
            RetentionMode::Compliance => "COMPLIANCE",
        }
    }
}

/// Object Lock retention to apply to a newly written object version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// GOVERNANCE or COMPLIANCE.
    pub mode: RetentionMode,
    /// The version cannot be deleted before this instant.
    pub retain_until: SystemTime,
}

/// Options of one write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Replace an existing object. Default `false`: create-only, [`BackendError::AlreadyExists`]
    /// if the name is taken.
    pub overwrite: bool,
    /// Object Lock retention (S3 only; other backends return [`BackendError::Unsupported`]).
    pub retention: Option<Retention>,
}

/// One storage backend. All names are validated with [`validate_name`].
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Human-readable identity for errors and logs: the repository URL without credentials.
    fn describe(&self) -> &str;

    /// Stores a whole object. Create-only unless `opts.overwrite`. A failed write leaves no
    /// object (and no partial object) under `name`.
    async fn write(&self, name: &str, data: Bytes, opts: &WriteOptions)
        -> Result<(), BackendError>;

    /// Reads a whole object.
    async fn read(&self, name: &str) -> Result<Bytes, BackendError>;

    /// Reads `len` bytes at `offset`. The range must lie inside the object, otherwise
    /// [`BackendError::InvalidRange`].
    async fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Bytes, BackendError>;

    /// Size of an object.
    async fn stat(&self, name: &str) -> Result<ObjectInfo, BackendError>;

    /// All objects whose name is below `prefix` (a directory-like name such as `data` or `data/`,
    /// or `""` for everything), recursively, sorted by name. Paginates internally.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError>;

    /// Deletes an object; [`BackendError::NotFound`] if it does not exist (checked where the
    /// backend can tell).
    async fn delete(&self, name: &str) -> Result<(), BackendError>;

    /// Sets (or extends) Object Lock retention on the current version of an existing
    /// object. Only S3 can; the others return [`BackendError::Unsupported`].
    async fn retain(&self, name: &str, retention: &Retention) -> Result<(), BackendError> {
        let _ = (name, retention);
        Err(BackendError::Unsupported {
            backend: self.describe().to_string(),
            what: "Object Lock retention",
        })
    }
}

/// S3 credentials. Passed in by the caller; see [`S3Credentials::from_env`].
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl S3Credentials {
    /// Reads `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`. The only place this crate reads
    /// the environment.
    pub fn from_env() -> Result<Self, BackendError> {
        let get = |k: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| BackendError::Config(format!("{k} is not set")))
        };
        Ok(S3Credentials {
            access_key_id: get("AWS_ACCESS_KEY_ID")?,
            secret_access_key: get("AWS_SECRET_ACCESS_KEY")?,
        })
    }
}

/// How the SFTP server's host key is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// Accept only keys listed in this known_hosts file.
    KnownHostsFile(PathBuf),
    /// Accept only this public key (`ssh-ed25519 AAAA…` as in a `.pub` file or
    /// `ssh-keyscan` output); it is written to a private known_hosts file.
    PinnedKey(String),
    /// Accept only a host key with this fingerprint (`SHA256:…` as printed by
    /// `ssh-keygen -lf`). The keys are fetched with `ssh-keyscan`, the matching one is pinned,
    /// and ssh then checks the real connection strictly against it.
    Fingerprint(String),
}

/// SFTP authentication and host verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpConfig {
    /// Private key file for public-key authentication.
    pub key_file: PathBuf,
    /// Host key verification; there is no "accept anything" mode.
    pub host_key: HostKeyCheck,
}

/// Everything [`open`] may need besides the location.
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// S3 credentials (required for `s3:` locations).
    pub s3: Option<S3Credentials>,
    /// S3 region for signing (default `us-east-1`).
    pub s3_region: Option<String>,
    /// Objects larger than this use multipart upload on S3 (default 16 MiB, min 5 MiB).
    pub s3_multipart_threshold: Option<usize>,
    /// SFTP settings (required for `sftp:` locations).
    pub sftp: Option<SftpConfig>,
    /// Retry policy for remote backends.
    pub retry: RetryPolicy,
}

/// Opens the backend for a repository location.
pub async fn open(
    location: &Location,
    config: &BackendConfig,
) -> Result<Arc<dyn Backend>, BackendError> {
    Ok(match location {
        Location::Local(path) => Arc::new(local::LocalBackend::open(path.clone()).await?),
        Location::S3(l) => {
            let creds = config.s3.clone().ok_or_else(|| {
                BackendError::Config("S3 credentials are required for an s3: repository".into())
            })?;
            Arc::new(s3::S3Backend::new(
                l,
                &creds,
                s3::S3Options {
                    region: config
                        .s3_region
                        .clone()
                        .unwrap_or_else(|| "us-east-1".to_string()),
                    multipart_threshold: config.s3_multipart_threshold,
                    retry: config.retry.clone(),
                },
            )?)
        }
        Location::Sftp(l) => {
            let cfg = config.sftp.clone().ok_or_else(|| {
                BackendError::Config("SFTP key file and host key are required".into())
            })?;
            Arc::new(sftp::SftpBackend::connect(l, &cfg, config.retry.clone()).await?)
        }
    })
}
