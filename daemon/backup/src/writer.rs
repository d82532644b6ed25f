//! The write side of a backup session: dedup against the index, then a pool of
//! sealing workers that compress, encrypt and pack blobs and upload full packs.
//! Data and metadata blobs go to separate packs, so trees can be read without
//! downloading file contents.
//!
//! Less to fingerprint: each worker fills two data packs at once and puts every
//! blob into one of them at random (restic 0.18 does the same), so the chunks of
//! one file do not sit in one pack in order; the packs left unfinished by all
//! workers at the end are merged, so a small backup does not spread over several
//! small packs whose sizes would each tell something.
//!
//! Failure never hangs the producer: the workers own the job queue's receiver,
//! so when the last worker stops the queue closes and [`BlobSink::add`] returns
//! at once; the first worker error also raises a flag that stops the others
//! and the producer. Every upload first checks that the repository lock is
//! still valid ([`Lock::ensure`]).

use crate::check::lethe_rng;
use crate::lock::Lock;
use crate::repo::Repository;
use crate::BackupError;
use lethe_repo::index::{Index, IndexEntry, IndexFile, INDEX_FLUSH_ENTRIES};
use lethe_repo::pack::{FinishedPack, PackBuilder};
use lethe_repo::{BlobKind, FileKind, Id};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// Counters of one session.
#[derive(Debug, Default)]
pub struct WriteStats {
    /// Plaintext bytes of new blobs.
    pub bytes_new: AtomicU64,
    /// Plaintext bytes that were already stored (deduplicated).
    pub bytes_reused: AtomicU64,
    /// Bytes uploaded (sealed packs).
    pub bytes_stored: AtomicU64,
    /// New blobs.
    pub blobs_new: AtomicU64,
    /// Packs uploaded.
    pub packs: AtomicU64,
}

struct Job {
    kind: BlobKind,
    id: Id,
    data: Vec<u8>,
}

/// A cancel token: set it to stop a run at its next step.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Ask the run to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Was it asked to stop?
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// An error when cancelled.
    pub fn check(&self) -> Result<(), BackupError> {
        if self.is_cancelled() {
            Err(BackupError::Stopped("cancelled".into()))
        } else {
            Ok(())
        }
    }
}

/// Hands blobs to the sealing workers.
pub struct BlobSink<'a> {
    repo: &'a Repository,
    index: &'a Index,
    pending: HashSet<Id>,
    tx: Option<SyncSender<Job>>,
    failed: Arc<AtomicBool>,
    cancel: Cancel,
    /// Live counters (read by progress displays).
    pub stats: Arc<WriteStats>,
}

/// The producer's error once a worker failed: the worker's own error is reported instead.
fn workers_failed() -> BackupError {
    BackupError::Internal("the sealing workers stopped".into())
}

impl BlobSink<'_> {
    /// Store `data` as a blob of `kind` unless an identical one exists; returns its id.
    pub fn add(&mut self, kind: BlobKind, data: Vec<u8>) -> Result<Id, BackupError> {
        self.cancel.check()?;
        if self.failed.load(Ordering::SeqCst) {
            return Err(workers_failed());
        }
        let id = self.repo.keys().blob_id(kind, &data);
        let len = data.len() as u64;
        if self.index.contains(&id) || !self.pending.insert(id) {
            self.stats.bytes_reused.fetch_add(len, Ordering::Relaxed);
            return Ok(id);
        }
        self.stats.bytes_new.fetch_add(len, Ordering::Relaxed);
        self.stats.blobs_new.fetch_add(1, Ordering::Relaxed);
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| BackupError::Internal("sink closed".into()))?;
        // Returns an error as soon as every worker is gone (they own the receiver).
        tx.send(Job { kind, id, data })
            .map_err(|_| workers_failed())?;
        Ok(id)
    }

    /// True when `id` is stored or being stored.
    pub fn has(&self, id: &Id) -> bool {
        self.index.contains(id) || self.pending.contains(id)
    }
}

fn upload(
    repo: &Repository,
    lock: &Lock,
    p: FinishedPack,
    stats: &WriteStats,
) -> Result<Vec<IndexEntry>, BackupError> {
    lock.ensure()?;
    let n = p.bytes.len() as u64;
    repo.store
        .write(&FileKind::Pack.path(&p.id), p.bytes, &repo.write_opts)?;
    stats.bytes_stored.fetch_add(n, Ordering::Relaxed);
    stats.packs.fetch_add(1, Ordering::Relaxed);
    Ok(p.entries)
}

struct Shared<'a> {
    repo: &'a Repository,
    lock: &'a Lock,
    stats: &'a WriteStats,
    failed: &'a AtomicBool,
}

/// What a worker hands back: the entries of the packs it uploaded, and the
/// packs it left unfinished (merged by the session).
type WorkerOut = (Vec<IndexEntry>, Vec<PackBuilder>);

fn worker(sh: &Shared<'_>, rx: Arc<Mutex<Receiver<Job>>>) -> Result<WorkerOut, BackupError> {
    let r = work(sh, &rx);
    if r.is_err() {
        sh.failed.store(true, Ordering::SeqCst);
    }
    // Dropping `rx` here: when the last worker is gone, the producer's next
    // send fails at once instead of blocking on a full queue.
    drop(rx);
    r
}

/// Open data packs per worker, filled at random.
const DATA_PACKS: usize = 2;

fn work(sh: &Shared<'_>, rx: &Mutex<Receiver<Job>>) -> Result<WorkerOut, BackupError> {
    let repo = sh.repo;
    let mut sealer = repo.sealer()?;
    let mut rng = lethe_rng(u64::from_le_bytes(crate::repo::random()?));
    let target = repo.config.pack_target;
    let mut data: Vec<PackBuilder> = (0..DATA_PACKS).map(|_| PackBuilder::new(target)).collect();
    let mut meta = PackBuilder::new(target);
    let mut entries = Vec::new();
    loop {
        if sh.failed.load(Ordering::SeqCst) {
            // Another worker failed: the run is lost, stop uploading.
            return Err(workers_failed());
        }
        let job = {
            let guard = rx
                .lock()
                .map_err(|_| BackupError::Internal("job queue poisoned".into()))?;
            guard.recv()
        };
        let Ok(job) = job else { break };
        let pb = if job.kind == BlobKind::Data {
            &mut data[(rng() % DATA_PACKS as u64) as usize]
        } else {
            &mut meta
        };
        pb.seal_and_add(&mut sealer, job.kind, job.id, &job.data)?;
        if pb.is_full() {
            let full = std::mem::replace(pb, PackBuilder::new(target));
            entries.extend(upload(repo, sh.lock, full.finish(&mut sealer)?, sh.stats)?);
        }
    }
    data.push(meta);
    data.retain(|b| !b.is_empty());
    Ok((entries, data))
}

/// Merge the unfinished packs of every worker (data and metadata apart) and
/// upload them.
fn flush_leftovers(
    repo: &Repository,
    lock: &Lock,
    stats: &WriteStats,
    leftovers: Vec<PackBuilder>,
) -> Result<Vec<IndexEntry>, BackupError> {
    let target = repo.config.pack_target;
    let mut sealer = repo.sealer()?;
    let mut entries = Vec::new();
    let (meta, data): (Vec<PackBuilder>, Vec<PackBuilder>) =
        leftovers.into_iter().partition(PackBuilder::holds_metadata);
    for group in [data, meta] {
        let mut cur = PackBuilder::new(target);
        for b in group {
            cur.absorb(b)?;
            if cur.is_full() {
                let full = std::mem::replace(&mut cur, PackBuilder::new(target));
                entries.extend(upload(repo, lock, full.finish(&mut sealer)?, stats)?);
            }
        }
        if !cur.is_empty() {
            entries.extend(upload(repo, lock, cur.finish(&mut sealer)?, stats)?);
        }
    }
    Ok(entries)
}

/// What a session wrote.
#[derive(Debug)]
pub struct SessionOut<T> {
    /// What `f` returned.
    pub value: T,
    /// Index entries of the new blobs.
    pub entries: Vec<IndexEntry>,
    /// The index files written for them (to list in the manifest).
    pub index_files: Vec<Id>,
}

/// Run `f` with a sink backed by `threads` sealing workers; when it returns,
/// flush every pack and write the index files (recording `generation`, the
/// manifest generation the run started from). Any worker error (an upload that
/// failed after the backend's retries, a lost lock) ends the session with that
/// error once the other workers have stopped. The caller lists the index files
/// in the manifest it commits.
#[allow(clippy::too_many_arguments)]
pub fn session<T>(
    repo: &Repository,
    lock: &Lock,
    index: &Index,
    generation: u64,
    threads: usize,
    stats: Arc<WriteStats>,
    cancel: &Cancel,
    f: impl FnOnce(&mut BlobSink<'_>) -> Result<T, BackupError>,
) -> Result<SessionOut<T>, BackupError> {
    let threads = threads.max(1);
    let (tx, rx) = sync_channel::<Job>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    let failed = Arc::new(AtomicBool::new(false));
    let sh = Shared {
        repo,
        lock,
        stats: &stats,
        failed: &failed,
    };
    let sh = &sh;
    let (value, mut entries, leftovers) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                s.spawn(move || worker(sh, rx))
            })
            .collect();
        // Only the workers hold the receiver from now on.
        drop(rx);
        let mut sink = BlobSink {
            repo,
            index,
            pending: HashSet::new(),
            tx: Some(tx),
            failed: Arc::clone(&failed),
            cancel: cancel.clone(),
            stats: Arc::clone(&stats),
        };
        let value = f(&mut sink);
        if value.is_err() {
            // Stop the workers without flushing partial packs.
            failed.store(true, Ordering::SeqCst);
        }
        sink.tx = None;
        let mut entries = Vec::new();
        let mut leftovers = Vec::new();
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok((e, l))) => {
                    entries.extend(e);
                    leftovers.extend(l);
                }
                Ok(Err(e)) => {
                    // A real cause beats "another worker failed".
                    if first_err.as_ref().is_none_or(is_generic) {
                        first_err = Some(e);
                    }
                }
                Err(_) => {
                    first_err
                        .get_or_insert(BackupError::Internal("a sealing worker panicked".into()));
                }
            }
        }
        // A worker error explains a failed send better than the send error.
        match (value, first_err) {
            (Err(e), _) if !is_generic(&e) => Err(e),
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(e),
            (Ok(v), None) => Ok((v, entries, leftovers)),
        }
    })?;
    entries.extend(flush_leftovers(repo, lock, &stats, leftovers)?);
    let index_files = write_index(repo, lock, &entries, generation)?;
    Ok(SessionOut {
        value,
        entries,
        index_files,
    })
}

fn is_generic(e: &BackupError) -> bool {
    matches!(e, BackupError::Internal(m) if m == "the sealing workers stopped")
}

/// Write `entries` as index files (at most [`INDEX_FLUSH_ENTRIES`] each), each
/// recording `generation`. They are live once a manifest lists them.
pub fn write_index(
    repo: &Repository,
    lock: &Lock,
    entries: &[IndexEntry],
    generation: u64,
) -> Result<Vec<Id>, BackupError> {
    let mut ids = Vec::new();
    let mut sealer = repo.sealer()?;
    for c in entries.chunks(INDEX_FLUSH_ENTRIES) {
        let f = IndexFile::from_entries(c, generation);
        lock.ensure()?;
        ids.push(repo.write_file(FileKind::Index, f.seal(&mut sealer)?)?);
    }
    Ok(ids)
}
