//! The write side of a backup session: dedup against the index, then a pool of
//! sealing workers (each its own encryption session, so nonces never repeat)
//! that compress, encrypt and pack blobs and upload full packs. Data and
//! metadata blobs go to separate packs, so trees can be read without
//! downloading file contents.

use crate::repo::Repository;
use crate::BackupError;
use lethe_repo::index::{Index, IndexEntry, IndexFile, INDEX_FLUSH_ENTRIES};
use lethe_repo::pack::{FinishedPack, PackBuilder};
use lethe_repo::{BlobKind, FileKind, Id};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Hands blobs to the sealing workers.
pub struct BlobSink<'a> {
    repo: &'a Repository,
    index: &'a Index,
    pending: HashSet<Id>,
    tx: Option<SyncSender<Job>>,
    /// Live counters (read by progress displays).
    pub stats: Arc<WriteStats>,
}

impl BlobSink<'_> {
    /// Store `data` as a blob of `kind` unless an identical one exists; returns its id.
    pub fn add(&mut self, kind: BlobKind, data: Vec<u8>) -> Result<Id, BackupError> {
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
        tx.send(Job { kind, id, data })
            .map_err(|_| BackupError::Internal("every sealing worker stopped".into()))?;
        Ok(id)
    }

    /// True when `id` is stored or being stored.
    pub fn has(&self, id: &Id) -> bool {
        self.index.contains(id) || self.pending.contains(id)
    }
}

fn upload(
    repo: &Repository,
    p: FinishedPack,
    stats: &WriteStats,
) -> Result<Vec<IndexEntry>, BackupError> {
    let n = p.bytes.len() as u64;
    repo.store
        .write(&FileKind::Pack.path(&p.id), p.bytes, &repo.write_opts)?;
    stats.bytes_stored.fetch_add(n, Ordering::Relaxed);
    stats.packs.fetch_add(1, Ordering::Relaxed);
    Ok(p.entries)
}

fn worker(
    repo: &Repository,
    rx: &Mutex<Receiver<Job>>,
    stats: &WriteStats,
) -> Result<Vec<IndexEntry>, BackupError> {
    let mut sealer = repo.sealer()?;
    let target = repo.config.pack_target;
    let mut data = PackBuilder::new(target);
    let mut meta = PackBuilder::new(target);
    let mut entries = Vec::new();
    loop {
        let job = {
            let guard = rx
                .lock()
                .map_err(|_| BackupError::Internal("job queue poisoned".into()))?;
            guard.recv()
        };
        let Ok(job) = job else { break };
        let pb = if job.kind == BlobKind::Data {
            &mut data
        } else {
            &mut meta
        };
        pb.seal_and_add(&mut sealer, job.kind, job.id, &job.data)?;
        if pb.is_full() {
            let full = std::mem::replace(pb, PackBuilder::new(target));
            entries.extend(upload(repo, full.finish(&mut sealer)?, stats)?);
        }
    }
    for pb in [data, meta] {
        if !pb.is_empty() {
            entries.extend(upload(repo, pb.finish(&mut sealer)?, stats)?);
        }
    }
    Ok(entries)
}

/// Run `f` with a sink backed by `threads` sealing workers; when it returns,
/// flush every pack and write the index files. Returns `f`'s value and the new
/// index entries (already stored in index files).
pub fn session<T>(
    repo: &Repository,
    index: &Index,
    threads: usize,
    stats: Arc<WriteStats>,
    f: impl FnOnce(&mut BlobSink<'_>) -> Result<T, BackupError>,
) -> Result<(T, Vec<IndexEntry>), BackupError> {
    let threads = threads.max(1);
    let (tx, rx) = sync_channel::<Job>(threads * 2);
    let rx = Mutex::new(rx);
    let (value, entries) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| worker(repo, &rx, &stats)))
            .collect();
        let mut sink = BlobSink {
            repo,
            index,
            pending: HashSet::new(),
            tx: Some(tx),
            stats: Arc::clone(&stats),
        };
        let value = f(&mut sink);
        sink.tx = None;
        let mut entries = Vec::new();
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(e)) => entries.extend(e),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err
                        .get_or_insert(BackupError::Internal("a sealing worker panicked".into()));
                }
            }
        }
        // A worker error explains a failed send better than the send error.
        match (value, first_err) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(e),
            (Ok(v), None) => Ok((v, entries)),
        }
    })?;
    write_index(repo, &entries, Vec::new())?;
    Ok((value, entries))
}

/// Write `entries` as index files (at most [`INDEX_FLUSH_ENTRIES`] each).
pub fn write_index(
    repo: &Repository,
    entries: &[IndexEntry],
    supersedes: Vec<Id>,
) -> Result<Vec<Id>, BackupError> {
    let mut ids = Vec::new();
    let mut sealer = repo.sealer()?;
    let chunks: Vec<&[IndexEntry]> = if entries.is_empty() {
        if supersedes.is_empty() {
            return Ok(ids);
        }
        vec![&[]]
    } else {
        entries.chunks(INDEX_FLUSH_ENTRIES).collect()
    };
    let last = chunks.len() - 1;
    for (i, c) in chunks.into_iter().enumerate() {
        // Only the last file written carries the supersedes list: until it
        // exists the old files stay authoritative, so a crash in between
        // loses nothing (duplicate entries are harmless).
        let sup = if i == last {
            supersedes.clone()
        } else {
            Vec::new()
        };
        let f = IndexFile::from_entries(c, sup);
        ids.push(repo.write_file(FileKind::Index, f.seal(&mut sealer)?)?);
    }
    Ok(ids)
}
