//! Single-object sources: a stream (stdin, a database dump) chunked with the
//! content-defined chunker, and a device image in fixed-size chunks; both
//! become extent lists and a snapshot.

use super::{finish_snapshot, report, BackupOptions, BackupReport, Content, Progress};
use crate::lock::{Lock, LockKind};
use crate::repo::{now, Repository};
use crate::writer::{self, BlobSink, WriteStats};
use crate::BackupError;
use lethe_repo::chunker::{is_zero, Chunker};
use lethe_repo::snapshot::{
    DeviceIdentity, Snapshot, SnapshotExtensions, Source, Summary, TreeLayout,
};
use lethe_repo::tree::{Extent, ExtentList, Timestamp};
use lethe_repo::{BlobKind, Id};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn store_extents(sink: &mut BlobSink<'_>, ext: &[Extent]) -> Result<Vec<Id>, BackupError> {
    ExtentList::split(ext)
        .into_iter()
        .map(|l| sink.add(BlobKind::ExtentList, l.encode()?))
        .collect()
}

/// Back up a stream (stdin, a database dump) under `name`.
pub fn backup_stream(
    repo: &Repository,
    r: &mut dyn Read,
    name: &str,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    let time = now();
    let lock = Lock::acquire(repo, LockKind::Shared)?;
    let ws = repo.begin_write(&lock, false)?;
    let li = repo.load_in(&ws.state, true)?;
    let chunker = Chunker::new(repo.config.chunker, repo.keys().gear_key())?;
    let stats = Arc::new(WriteStats::default());
    let mut content = Content {
        chunker: &chunker,
        buf: vec![0u8; 2 * repo.config.chunker.max_size as usize],
    };
    let out = writer::session(
        repo,
        &lock,
        &li.index,
        ws.base,
        opts.threads,
        Arc::clone(&stats),
        &opts.cancel,
        |sink| {
            let (ext, blake3, size) =
                content
                    .read(r, sink, progress)
                    .map_err(|e| BackupError::Io {
                        path: name.into(),
                        source: e,
                    })??;
            Ok((store_extents(sink, &ext)?, blake3, size))
        },
    )?;
    let (lists, blake3, size) = out.value;
    let source = Source::Stream {
        name: name.into(),
        size,
        extent_lists: lists,
        blake3,
    };
    let done = Done {
        lock: &lock,
        stats: &stats,
        started,
        unavailable: li.unavailable,
        generation: ws.base,
        index_files: out.index_files,
    };
    single_source_snapshot(repo, opts, time, source, size, done, Vec::new())
}

/// Image a raw block device (or any file) in fixed-size chunks; all-zero
/// chunks are sparse; unreadable chunks are retried, then stored as zeros and
/// listed in the snapshot.
pub fn backup_device(
    repo: &Repository,
    path: &Path,
    identity: DeviceIdentity,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupReport, BackupError> {
    use std::os::unix::fs::FileExt;
    let started = Instant::now();
    let time = now();
    let lock = Lock::acquire(repo, LockKind::Shared)?;
    let ws = repo.begin_write(&lock, false)?;
    let li = repo.load_in(&ws.state, true)?;
    let f = std::fs::File::open(path).map_err(|e| BackupError::io(path, e))?;
    let size = identity.size_bytes;
    let cs = u64::from(repo.config.device_chunk_size);
    let stats = Arc::new(WriteStats::default());
    let mut warnings = Vec::new();
    let out = writer::session(
        repo,
        &lock,
        &li.index,
        ws.base,
        opts.threads,
        Arc::clone(&stats),
        &opts.cancel,
        |sink| {
            let mut hasher = blake3::Hasher::new();
            let mut ext: Vec<Extent> = Vec::new();
            let mut unreadable = Vec::new();
            let mut buf = vec![0u8; cs as usize];
            let mut off = 0u64;
            while off < size {
                let n = (size - off).min(cs) as usize;
                let b = &mut buf[..n];
                let ok = f.read_exact_at(b, off).or_else(|_| f.read_exact_at(b, off));
                if let Err(e) = ok {
                    warnings.push(format!(
                        "{}: bytes {off}..{}: {e}",
                        path.display(),
                        off + n as u64
                    ));
                    unreadable.push((off, n as u64));
                    b.fill(0);
                }
                hasher.update(b);
                progress.bytes(n as u64);
                if is_zero(b) {
                    match ext.last_mut() {
                        Some(Extent::Zero { len }) => *len += n as u64,
                        _ => ext.push(Extent::Zero { len: n as u64 }),
                    }
                } else {
                    let id = sink.add(BlobKind::Data, b.to_vec())?;
                    ext.push(Extent::Data { id, len: n as u32 });
                }
                off += n as u64;
            }
            Ok((
                store_extents(sink, &ext)?,
                *hasher.finalize().as_bytes(),
                unreadable,
            ))
        },
    )?;
    let (lists, blake3, unreadable) = out.value;
    let source = Source::Device {
        identity,
        chunk_size: repo.config.device_chunk_size,
        extent_lists: lists,
        blake3,
        unreadable,
    };
    let done = Done {
        lock: &lock,
        stats: &stats,
        started,
        unavailable: li.unavailable,
        generation: ws.base,
        index_files: out.index_files,
    };
    single_source_snapshot(repo, opts, time, source, size, done, warnings)
}

/// The end state of a writing session.
struct Done<'a> {
    lock: &'a Lock,
    stats: &'a WriteStats,
    started: Instant,
    unavailable: usize,
    generation: u64,
    index_files: Vec<Id>,
}

/// Snapshot and report of a one-object source (a stream or a device image).
fn single_source_snapshot(
    repo: &Repository,
    opts: &BackupOptions,
    time: Timestamp,
    source: Source,
    size: u64,
    done: Done<'_>,
    warnings: Vec<String>,
) -> Result<BackupReport, BackupError> {
    let summary = Summary {
        files: 1,
        bytes_read: size,
        ..Summary::default()
    };
    let snap = Snapshot {
        time,
        hostname: opts.hostname.clone(),
        username: opts.username.clone(),
        tags: opts.tags.clone(),
        parent: None,
        source,
        summary: summary.clone(),
        ext: SnapshotExtensions::default(),
        generation: done.generation,
        layout: TreeLayout::Absolute,
    };
    let id = finish_snapshot(
        repo,
        done.lock,
        snap,
        done.stats,
        done.started,
        done.index_files,
    )?;
    Ok(report(
        id,
        &summary,
        done.stats,
        size,
        done.started,
        warnings,
        &[],
        done.unavailable,
    ))
}
