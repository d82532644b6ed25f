//! Helpers of the engine's integration tests: a local repository in a temp
//! dir, deterministic data, and a fault-injecting backend around the local one
//! (failed uploads, failed lock refreshes, write times recorded).
#![allow(dead_code)]

use async_trait::async_trait;
use bytes::Bytes;
use lethe_backend::local::LocalBackend;
use lethe_backend::{Backend, BackendError, ObjectInfo, WriteOptions};
use lethe_backup::archive::BackupOptions;
use lethe_backup::walk::Filter;
use lethe_backup::{Repository, Store};
use lethe_repo::keys::KdfParams;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const FAST: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn repo_path(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn local(&self) -> LocalBackend {
        self.rt
            .block_on(LocalBackend::open(self.repo_path()))
            .unwrap()
    }

    pub fn store(&self) -> Store {
        Store::new(Arc::new(self.local()), self.rt.handle().clone())
    }

    /// A store through a fault-injecting wrapper.
    pub fn faulty(&self) -> (Store, Arc<Faulty>) {
        let f = Arc::new(Faulty::new(self.local()));
        let b: Arc<dyn Backend> = f.clone();
        (Store::new(b, self.rt.handle().clone()), f)
    }

    pub fn init(&self) -> Repository {
        Repository::init(self.store(), b"pw", FAST, "t").unwrap().0
    }
}

pub fn opts() -> BackupOptions {
    BackupOptions {
        tags: vec![],
        threads: 2,
        filter: Filter::default(),
        hostname: "test".into(),
        username: "tester".into(),
        cancel: Default::default(),
    }
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u8
        })
        .collect()
}

/// The local backend with switchable faults.
#[derive(Debug)]
pub struct Faulty {
    inner: LocalBackend,
    /// Uploads under `data/` that still succeed; negative: unlimited.
    pub data_writes_left: AtomicI64,
    /// Lock refreshes (rewrites of an existing lock file) fail.
    pub fail_lock_refresh: AtomicBool,
    locks_seen: Mutex<std::collections::HashSet<String>>,
    /// (time, name) of every successful create-only write.
    pub writes: Mutex<Vec<(Instant, String)>>,
}

impl Faulty {
    pub fn new(inner: LocalBackend) -> Faulty {
        Faulty {
            inner,
            data_writes_left: AtomicI64::new(-1),
            fail_lock_refresh: AtomicBool::new(false),
            locks_seen: Mutex::new(Default::default()),
            writes: Mutex::new(Vec::new()),
        }
    }

    fn fail(&self, op: &'static str, name: &str) -> BackendError {
        BackendError::Failed {
            backend: "faulty".into(),
            op,
            name: name.into(),
            attempts: 5,
            source: "injected fault: storage unreachable".into(),
        }
    }
}

#[async_trait]
impl Backend for Faulty {
    fn describe(&self) -> &str {
        self.inner.describe()
    }

    async fn write(
        &self,
        name: &str,
        data: Bytes,
        opts: &WriteOptions,
    ) -> Result<(), BackendError> {
        if name.starts_with("data/") {
            let left = self.data_writes_left.load(Ordering::SeqCst);
            if left == 0 {
                return Err(self.fail("write", name));
            }
            if left > 0 {
                self.data_writes_left.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if name.starts_with("locks/") {
            let first = self.locks_seen.lock().unwrap().insert(name.to_string());
            if !first && self.fail_lock_refresh.load(Ordering::SeqCst) {
                return Err(self.fail("write", name));
            }
        }
        self.inner.write(name, data, opts).await?;
        if !name.starts_with("locks/") {
            self.writes
                .lock()
                .unwrap()
                .push((Instant::now(), name.to_string()));
        }
        Ok(())
    }

    async fn read(&self, name: &str) -> Result<Bytes, BackendError> {
        self.inner.read(name).await
    }

    async fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Bytes, BackendError> {
        self.inner.read_range(name, offset, len).await
    }

    async fn stat(&self, name: &str) -> Result<ObjectInfo, BackendError> {
        self.inner.stat(name).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        self.inner.list(prefix).await
    }

    async fn delete(&self, name: &str) -> Result<(), BackendError> {
        self.inner.delete(name).await
    }
}

/// Where `src` lands under a restore target: snapshots keep absolute paths.
pub fn under(target: &std::path::Path, src: &std::path::Path) -> PathBuf {
    target.join(src.strip_prefix("/").expect("absolute source path"))
}

/// A source path as a path inside a snapshot (`srv/records`).
pub fn snap_path(src: &std::path::Path) -> String {
    src.strip_prefix("/")
        .expect("absolute source path")
        .display()
        .to_string()
}
