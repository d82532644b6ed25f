//! A blocking facade over the async [`Backend`]: the engine's CPU-bound
//! pipeline runs on plain threads and calls the backend through a runtime
//! handle, so uploads from several sealing workers overlap naturally.

use crate::BackupError;
use bytes::Bytes;
use lethe_backend::{Backend, BackendError, ObjectInfo, WriteOptions};
use std::sync::Arc;

/// The repository's storage, usable from any thread.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<dyn Backend>,
    rt: tokio::runtime::Handle,
}

impl Store {
    /// Wrap `backend`; `rt` runs its futures.
    pub fn new(backend: Arc<dyn Backend>, rt: tokio::runtime::Handle) -> Self {
        Store { backend, rt }
    }

    /// The backend's description (URL without credentials).
    pub fn describe(&self) -> String {
        self.backend.describe().to_string()
    }

    fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackupError> {
        // Called from engine threads, never from inside the runtime's workers.
        Ok(self.rt.block_on(f)?)
    }

    /// Create-only write (content-addressed names never change content).
    pub fn write(&self, name: &str, data: Vec<u8>, opts: &WriteOptions) -> Result<(), BackupError> {
        match self.run(self.backend.write(name, Bytes::from(data), opts)) {
            // A retried upload that had landed: same name = same content.
            Err(BackupError::Backend(BackendError::AlreadyExists { .. })) => Ok(()),
            r => r,
        }
    }

    /// Create-only write that says whether this call stored it: `false` when the name
    /// was already taken (by another writer, or by this write's own retried attempt).
    pub fn create(
        &self,
        name: &str,
        data: Vec<u8>,
        opts: &WriteOptions,
    ) -> Result<bool, BackupError> {
        match self.run(self.backend.write(name, Bytes::from(data), opts)) {
            Ok(()) => Ok(true),
            Err(BackupError::Backend(BackendError::AlreadyExists { .. })) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Set or extend Object Lock retention on an existing object.
    pub fn retain(&self, name: &str, r: &lethe_backend::Retention) -> Result<(), BackupError> {
        self.run(self.backend.retain(name, r))
    }

    /// Replace-or-create write (lock files, the config when a repository is upgraded).
    pub fn put(&self, name: &str, data: Vec<u8>) -> Result<(), BackupError> {
        self.put_with(name, data, None)
    }

    /// Replace-or-create write with optional Object Lock retention.
    pub fn put_with(
        &self,
        name: &str,
        data: Vec<u8>,
        retention: Option<lethe_backend::Retention>,
    ) -> Result<(), BackupError> {
        let opts = WriteOptions {
            overwrite: true,
            retention,
        };
        self.run(self.backend.write(name, Bytes::from(data), &opts))
    }

    /// Whole object.
    pub fn read(&self, name: &str) -> Result<Bytes, BackupError> {
        self.run(self.backend.read(name))
    }

    /// Byte range of an object.
    pub fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Bytes, BackupError> {
        self.run(self.backend.read_range(name, offset, len))
    }

    /// Objects under `prefix`.
    pub fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackupError> {
        self.run(self.backend.list(prefix))
    }

    /// Size of one object.
    pub fn stat(&self, name: &str) -> Result<ObjectInfo, BackupError> {
        self.run(self.backend.stat(name))
    }

    /// Delete one object.
    pub fn delete(&self, name: &str) -> Result<(), BackupError> {
        self.run(self.backend.delete(name))
    }
}
