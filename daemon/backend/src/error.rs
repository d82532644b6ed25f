//! Typed errors of the backend layer.
//!
//! Every error that concerns one object names the backend (its repository URL, credentials never
//! included) and the object, so a log line is enough to find the failing file.

use std::io;

use crate::location::LocationError;

/// Boxed source error from a client library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors returned by every [`crate::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The object does not exist.
    #[error("{backend}: object {name} not found")]
    NotFound {
        /// Backend description (repository URL).
        backend: String,
        /// Object name.
        name: String,
    },
    /// A create-only write found the object already present.
    #[error("{backend}: object {name} already exists")]
    AlreadyExists {
        /// Backend description.
        backend: String,
        /// Object name.
        name: String,
    },
    /// The object name is not a valid repository name.
    #[error("invalid object name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A range read outside the object.
    #[error("{backend}: range {offset}+{len} is outside object {name} (size {size:?})")]
    InvalidRange {
        /// Backend description.
        backend: String,
        /// Object name.
        name: String,
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// Object size when known.
        size: Option<u64>,
    },
    /// The local file system is full; no partial object was left behind.
    #[error("{backend}: no space left while writing {name} (nothing was stored)")]
    DiskFull {
        /// Backend description.
        backend: String,
        /// Object name.
        name: String,
        /// The underlying I/O error (ENOSPC / EDQUOT / EFBIG).
        #[source]
        source: io::Error,
    },
    /// The backend cannot do what was asked (e.g. Object Lock on a local directory).
    #[error("{backend}: not supported: {what}")]
    Unsupported {
        /// Backend description.
        backend: String,
        /// The unsupported feature.
        what: &'static str,
    },
    /// An operation failed, after `attempts` tries when the failure looked transient.
    #[error("{backend}: {op} {name} failed after {attempts} attempt(s): {source}")]
    Failed {
        /// Backend description.
        backend: String,
        /// Operation (write, read, stat, list, delete, retention, connect).
        op: &'static str,
        /// Object name or prefix.
        name: String,
        /// Number of attempts made.
        attempts: u32,
        /// Last error seen.
        #[source]
        source: BoxError,
    },
    /// The SFTP server offered no host key with the pinned fingerprint.
    #[error("{backend}: no host key matches fingerprint {expected} (server offered: {offered:?})")]
    HostKeyMismatch {
        /// Backend description.
        backend: String,
        /// The configured fingerprint.
        expected: String,
        /// Fingerprints the server offered.
        offered: Vec<String>,
    },
    /// The repository URL could not be parsed.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// The backend configuration is incomplete or inconsistent.
    #[error("configuration error: {0}")]
    Config(String),
}

impl BackendError {
    /// True for [`BackendError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, BackendError::NotFound { .. })
    }

    /// True for [`BackendError::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        matches!(self, BackendError::AlreadyExists { .. })
    }
}

/// Outcome of one attempt: retry it or give up at once.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Worth retrying (network error, 5xx, timeout, dropped session).
    Transient(BoxError),
    /// Retrying cannot help (not found, exists, permission, bad request).
    Fatal(BackendError),
}

/// Validates a repository object name: relative, `/`-separated, no empty, `.` or `..` parts, only
/// `[A-Za-z0-9._-]` characters. Keeps names portable between file systems and S3 keys.
pub fn validate_name(name: &str) -> Result<(), BackendError> {
    let bad = |reason| {
        Err(BackendError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    for part in name.split('/') {
        if part.is_empty() {
            return bad("empty path component (leading, trailing or double '/')");
        }
        if part == "." || part == ".." {
            return bad("'.' or '..' component");
        }
        if part.starts_with(".tmp-") {
            return bad("'.tmp-' prefix is reserved for temporary files");
        }
        if !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        {
            return bad("only A-Z a-z 0-9 . _ - and '/' are allowed");
        }
    }
    Ok(())
}

/// Validates a list prefix: empty (whole repository) or a valid name, optionally ending in '/'.
pub(crate) fn validate_prefix(prefix: &str) -> Result<String, BackendError> {
    let p = prefix.strip_suffix('/').unwrap_or(prefix);
    if p.is_empty() {
        return Ok(String::new());
    }
    validate_name(p)?;
    Ok(p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        for ok in ["config", "data/ab/abcdef", "keys/k-1.json", "a_b"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/x", "x/", "a//b", "../x", "a/./b", "a b", "a\\b", "é", ".tmp-x", "d/.tmp-1",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_prefix("data/").ok().as_deref(), Some("data"));
        assert_eq!(validate_prefix("").ok().as_deref(), Some(""));
        assert!(validate_prefix("/").is_ok());
        assert!(validate_prefix("..").is_err());
    }

    proptest! {
        #[test]
        fn name_validation_never_panics(s in ".{0,80}") {
            let _ = validate_name(&s);
            let _ = validate_prefix(&s);
        }
    }
}
