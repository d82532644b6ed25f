//! The engine under faults: uploads that fail, a lock that cannot be
//! refreshed, locks of dead processes, conflicting locks, files that change
//! while they are read, lost packs and damaged index files, and the repairs.

mod common;

use common::*;
use lethe_backup::archive::{backup_paths, backup_stream, Progress};
use lethe_backup::check::check;
use lethe_backup::lock::{Lock, LockKind, LockTiming};
use lethe_backup::prune::{forget, prune};
use lethe_backup::repair::{repair_index, repair_snapshots};
use lethe_backup::restore::{restore_tree, RestoreOptions};
use lethe_backup::{BackupError, Outcome, Repository};
use lethe_repo::retention::{KeepN, Policy};
use lethe_repo::FileKind;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Run `f` on a thread; fail the test if it does not return within `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not return within {limit:?}: a hang"))
}

fn locks(env: &Env) -> usize {
    std::fs::read_dir(env.repo_path().join("locks"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// safeguard: 164.310(d)(2)(iv)
#[test]
fn failed_uploads_end_the_backup_promptly_and_release_the_lock() {
    let env = std::sync::Arc::new(Env::new());
    env.init();
    let (store, faulty) = env.faulty();
    // The first pack lands, every later upload fails (a dead server).
    faulty.data_writes_left.store(1, Ordering::SeqCst);
    let repo = Repository::open(store, b"pw").unwrap();
    let data = noise(1, 48 << 20);
    let started = Instant::now();
    let r = within(Duration::from_secs(60), move || {
        backup_stream(&repo, &mut &data[..], "big", &opts(), &())
    });
    let err = r.expect_err("the backup fails");
    assert!(
        err.to_string().contains("injected fault"),
        "the storage error itself is reported: {err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(locks(&env), 0, "the lock is released");
    // Consistent: no snapshot, check clean (leftover packs are warnings), and
    // the next backup succeeds.
    let repo = Repository::open(env.store(), b"pw").unwrap();
    assert!(repo.snapshots().unwrap().ok.is_empty());
    let c = check(&repo, 1_000_000, 1).unwrap();
    assert!(c.ok(), "{c:?}");
    let data = noise(2, 4 << 20);
    backup_stream(&repo, &mut &data[..], "small", &opts(), &()).unwrap();
}

/// A source that delivers `total` bytes in 1 MiB pieces, `pause` apart.
struct Slow {
    left: usize,
    pause: Duration,
    seed: u64,
}

impl Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        std::thread::sleep(self.pause);
        let n = buf.len().min(1 << 20).min(self.left);
        self.seed += 1;
        buf[..n].copy_from_slice(&noise(self.seed, n));
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn a_backup_that_cannot_refresh_its_lock_stops_writing_before_it_could_be_stale() {
    let env = Env::new();
    env.init();
    let (store, faulty) = env.faulty();
    let mut repo = Repository::open(store, b"pw").unwrap();
    let timing = LockTiming {
        refresh: Duration::from_millis(100),
        stale: Duration::from_millis(1500),
    };
    repo.lock_timing = timing;
    // Every refresh fails (revoked credentials, a partition) from the start.
    faulty.fail_lock_refresh.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let mut src = Slow {
        left: 80 << 20,
        pause: Duration::from_millis(25),
        seed: 0,
    };
    let err = backup_stream(&repo, &mut src, "slow", &opts(), &()).expect_err("stops");
    assert!(matches!(err, BackupError::LockLost(_)), "{err}");
    // Nothing was written after the moment the lock could look stale to others.
    let deadline = started + timing.stale;
    for (t, name) in faulty.writes.lock().unwrap().iter() {
        assert!(
            *t < deadline,
            "{name} written {:?} after the start",
            *t - started
        );
    }
    assert!(repo.snapshots().unwrap().ok.is_empty(), "no snapshot");
}

#[test]
fn locks_of_dead_processes_are_recognised_at_once() {
    let env = Env::new();
    let repo = env.init();
    // A process that has exited: its pid is dead.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    // Lock files name hosts by a keyed hash of their name.
    let host = lethe_backup::lock::Here::for_repo(&repo).host;
    let now = lethe_backup::repo::now().secs;
    let stale = env
        .repo_path()
        .join("locks/00ff00ff00ff00ff00ff00ff00ff00ff");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(
        &stale,
        format!(r#"{{"kind":"exclusive","host":"{host}","pid":{dead},"time":{now}}}"#),
    )
    .unwrap();
    // A fresh exclusive lock of a dead local process neither blocks a shared
    // nor an exclusive locker; it is removed.
    let l = Lock::acquire(&repo, LockKind::Shared).unwrap();
    assert!(!stale.exists(), "the dead process's lock was removed");
    drop(l);
    // A live holder on another host blocks until it is stale (30 min).
    std::fs::write(
        &stale,
        format!(r#"{{"kind":"exclusive","host":"elsewhere","pid":1,"time":{now}}}"#),
    )
    .unwrap();
    let e = Lock::acquire(&repo, LockKind::Shared).unwrap_err();
    assert!(
        matches!(&e, BackupError::Locked(m) if m.contains("elsewhere")),
        "{e}"
    );
    std::fs::remove_file(&stale).unwrap();
}

#[test]
fn restores_checks_and_drills_share_prune_and_repair_are_exclusive() {
    let env = Env::new();
    let repo = env.init();
    let src = env.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), noise(3, 1 << 20)).unwrap();
    backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
    // A restore in progress (its shared lock): prune and repair are refused.
    let reader = Lock::acquire(&repo, LockKind::Shared).unwrap();
    assert!(matches!(prune(&repo, 0), Err(BackupError::Locked(_))));
    assert!(matches!(
        repair_index(&repo, false),
        Err(BackupError::Locked(_))
    ));
    let policy = Policy {
        last: Some(KeepN::Count(1)),
        ..Policy::default()
    };
    assert!(matches!(
        forget(&repo, &policy, false),
        Err(BackupError::Locked(_))
    ));
    // Readers share.
    assert!(check(&repo, 0, 1).unwrap().ok());
    drop(reader);
    // Under an exclusive lock (a prune), restores and checks wait their turn.
    let pruner = Lock::acquire(&repo, LockKind::Exclusive).unwrap();
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let out = env.dir.path().join("out");
    assert!(matches!(
        restore_tree(&repo, &snap, None, &out, &RestoreOptions::default()),
        Err(BackupError::Locked(_))
    ));
    assert!(matches!(check(&repo, 0, 1), Err(BackupError::Locked(_))));
    drop(pruner);
    assert_eq!(locks(&env), 0);
}

/// Changes a file the moment the archiver is about to read it.
struct Meddler {
    grow: std::path::PathBuf,
    shrink: std::path::PathBuf,
}

impl Progress for Meddler {
    fn file(&self, p: &Path) {
        use std::io::Write;
        if p == self.grow {
            let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(&noise(9, 100_000)).unwrap();
        } else if p == self.shrink {
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(1000).unwrap();
        }
    }
}

#[test]
fn files_that_change_while_read_are_recorded_not_fatal() {
    let env = Env::new();
    let repo = env.init();
    let src = env.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("app.log"), noise(1, 300_000)).unwrap();
    std::fs::write(src.join("db.wal"), noise(2, 300_000)).unwrap();
    std::fs::write(src.join("quiet"), noise(3, 300_000)).unwrap();
    let m = Meddler {
        grow: src.join("app.log"),
        shrink: src.join("db.wal"),
    };
    let r = backup_paths(&repo, std::slice::from_ref(&src), &opts(), &m).unwrap();
    assert_eq!(r.outcome, Outcome::CompletedWithWarnings, "{r:?}");
    let mut changed = r.changed_during_backup.clone();
    changed.sort();
    let sp = snap_path(&src);
    assert_eq!(
        changed,
        [format!("{sp}/app.log"), format!("{sp}/db.wal")],
        "{r:?}"
    );
    let (_, snap) = repo.find_snapshot(&r.snapshot).unwrap();
    assert_eq!(snap.ext.changed_during_backup.len(), 2);
    // What was read is what is restored.
    let out = env.dir.path().join("out");
    let rep = restore_tree(&repo, &snap, None, &out, &RestoreOptions::default()).unwrap();
    assert_eq!(rep.outcome, Outcome::Ok, "{rep:?}");
    assert_eq!(
        std::fs::read(under(&out, &src).join("app.log")).unwrap(),
        std::fs::read(src.join("app.log")).unwrap()
    );
    assert_eq!(
        std::fs::read(under(&out, &src).join("db.wal"))
            .unwrap()
            .len(),
        1000
    );
    // The next run reads the changed files again (never reused from the
    // parent), and with nothing changing it is a clean run.
    let r2 = backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
    assert_eq!(r2.outcome, Outcome::Ok, "{r2:?}");
    assert_eq!(r2.bytes_read, 400_000 + 1000, "{r2:?}");
    assert!(check(&repo, 1_000_000, 1).unwrap().ok());
}

/// safeguard: 164.312(c)(2)
#[test]
fn lost_packs_are_not_deduplicated_against_and_repairs_restore_a_clean_check() {
    let env = Env::new();
    let repo = env.init();
    let src = env.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), noise(1, 2 << 20)).unwrap();
    std::fs::write(src.join("b"), noise(2, 2 << 20)).unwrap();
    let first = backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
    // Lose the data pack(s) holding `a` and `b`.
    for (id, size) in repo.list_files(FileKind::Pack).unwrap() {
        if size > 16 << 10 {
            std::fs::remove_file(env.repo_path().join(FileKind::Pack.path(&id))).unwrap();
        }
    }
    let c = check(&repo, 0, 1).unwrap();
    assert!(
        !c.ok() && c.damaged_snapshots.contains(&first.snapshot),
        "{c:?}"
    );
    // A new backup stores the content again instead of pointing into the lost
    // pack (`b`, unchanged, is stored anew: that heals the first snapshot's `b`;
    // `a` changed, so the first snapshot's `a` stays lost).
    std::fs::write(src.join("a"), noise(11, 2 << 20)).unwrap();
    let second = backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
    assert!(second.index_entries_unavailable > 0, "{second:?}");
    assert!(second.bytes_new >= 4 << 20, "{second:?}");
    let (_, snap) = repo.find_snapshot(&second.snapshot).unwrap();
    let out = env.dir.path().join("out");
    let rep = restore_tree(&repo, &snap, None, &out, &RestoreOptions::default()).unwrap();
    assert!(rep.failed.is_empty(), "{rep:?}");
    assert_eq!(
        std::fs::read(under(&out, &src).join("a")).unwrap(),
        noise(11, 2 << 20)
    );
    assert_eq!(
        std::fs::read(under(&out, &src).join("b")).unwrap(),
        noise(2, 2 << 20)
    );
    // The first snapshot is still damaged: repair index, then snapshots.
    let ri = repair_index(&repo, false).unwrap();
    assert!(ri.packs_damaged.is_empty(), "{ri:?}");
    let dry = repair_snapshots(&repo, true, true, lethe_backup::repo::now()).unwrap();
    assert_eq!(dry.repaired.len(), 1, "{dry:?}");
    assert!(
        repo.find_snapshot(&first.snapshot).is_ok(),
        "dry run writes nothing"
    );
    let rs = repair_snapshots(&repo, true, false, lethe_backup::repo::now()).unwrap();
    assert_eq!(rs.repaired.len(), 1, "{rs:?}");
    assert_eq!(rs.repaired[0].original, first.snapshot);
    assert!(
        rs.repaired[0].dropped.len() == 1
            && rs.repaired[0].dropped[0].starts_with(&format!("{}/a:", snap_path(&src))),
        "only the lost file is dropped: {rs:?}"
    );
    let c = check(&repo, 1_000_000, 2).unwrap();
    assert!(c.ok(), "{c:?}");
    let (_, fixed) = repo.find_snapshot(&rs.repaired[0].new).unwrap();
    let rec = fixed.ext.repaired.as_ref().unwrap();
    assert_eq!(rec.original.to_hex(), first.snapshot);
    assert!(
        repo.find_snapshot(&first.snapshot).is_err(),
        "original forgotten"
    );
    // Prune now runs, and the repaired snapshot still restores what it kept.
    prune(&repo, 50_000).unwrap();
    assert!(check(&repo, 1_000_000, 3).unwrap().ok());
    let out2 = env.dir.path().join("out2");
    let rep = restore_tree(&repo, &fixed, None, &out2, &RestoreOptions::default()).unwrap();
    assert!(
        rep.failed.is_empty() && !under(&out2, &src).join("a").exists(),
        "{rep:?}"
    );
    assert_eq!(
        std::fs::read(under(&out2, &src).join("b")).unwrap(),
        noise(2, 2 << 20)
    );
    assert!(
        rep.warnings.iter().any(|w| w.contains("repaired")),
        "a restore says the snapshot was repaired: {rep:?}"
    );
}

/// safeguard: 164.312(c)(2)
#[test]
fn damaged_index_and_snapshot_files_are_skipped_and_named() {
    let env = Env::new();
    let repo = env.init();
    let src = env.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), noise(5, 1 << 20)).unwrap();
    let old = backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
    std::fs::write(src.join("b"), noise(6, 1 << 20)).unwrap();
    let new = backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
    let flip = |p: &Path| {
        let mut b = std::fs::read(p).unwrap();
        let n = b.len();
        b[n / 2] ^= 0x01;
        std::fs::write(p, b).unwrap();
    };
    // A flipped byte in the old snapshot and in every index file.
    let old_id = lethe_repo::Id::from_hex(&old.snapshot).unwrap();
    flip(&env.repo_path().join(FileKind::Snapshot.path(&old_id)));
    for (id, _) in repo.list_files(FileKind::Index).unwrap() {
        flip(&env.repo_path().join(FileKind::Index.path(&id)));
    }
    let list = repo.snapshots().unwrap();
    assert_eq!(list.ok.len(), 1);
    assert!(list.damaged[0].object.contains(&old.snapshot));
    // Every pack is intact: restore works from the packs' own headers.
    let (_, snap) = repo.find_snapshot("latest").unwrap();
    assert_eq!(snap.summary.files, 2);
    let out = env.dir.path().join("out");
    let rep = restore_tree(&repo, &snap, None, &out, &RestoreOptions::default()).unwrap();
    assert!(rep.failed.is_empty(), "{rep:?}");
    assert_eq!(rep.outcome, Outcome::CompletedWithWarnings, "damage named");
    assert_eq!(
        std::fs::read(under(&out, &src).join("b")).unwrap(),
        noise(6, 1 << 20)
    );
    // Naming the damaged snapshot says so.
    let e = repo.find_snapshot(&old.snapshot[..12]).unwrap_err();
    assert!(e.to_string().contains("damaged"), "{e}");
    // check names every damaged object.
    let c = check(&repo, 1_000_000, 1).unwrap();
    let index_errors = c.errors.iter().filter(|e| e.starts_with("index ")).count();
    assert!(
        index_errors >= 1 && c.errors.iter().any(|e| e.contains(&old.snapshot)),
        "{c:?}"
    );
    // A new backup works; prune refuses until the repairs ran.
    std::fs::write(src.join("c"), noise(7, 1 << 20)).unwrap();
    backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
    assert!(prune(&repo, 50_000).is_err());
    repair_index(&repo, true).unwrap();
    let rs = repair_snapshots(&repo, true, false, lethe_backup::repo::now()).unwrap();
    assert_eq!(rs.removed.len(), 1, "the unreadable snapshot file: {rs:?}");
    let c = check(&repo, 1_000_000, 1).unwrap();
    assert!(c.ok(), "{c:?}");
    prune(&repo, 50_000).unwrap();
    assert!(check(&repo, 1_000_000, 1).unwrap().ok());
    assert_eq!(new.outcome, Outcome::Ok);
}

#[test]
fn a_prune_interrupted_after_its_new_index_never_revives_old_index_files() {
    let env = Env::new();
    let repo = env.init();
    for seed in 0..2 {
        let data = noise(seed, 2 << 20);
        backup_stream(&repo, &mut &data[..], "s", &opts(), &()).unwrap();
    }
    let policy = Policy {
        last: Some(KeepN::Count(1)),
        ..Policy::default()
    };
    forget(&repo, &policy, false).unwrap();
    // A prune killed right after writing its new index, before its manifest:
    // the new file is not live (the manifest still names the old ones).
    let ie = repo.index_entries().unwrap();
    let gen = repo.state().unwrap().generation();
    let lock = Lock::acquire(&repo, LockKind::Exclusive).unwrap();
    lethe_backup::writer::write_index(&repo, &lock, &ie.entries, gen).unwrap();
    drop(lock);
    assert_eq!(repo.state().unwrap().uncommitted_index.len(), 1);
    assert_eq!(repo.index_entries().unwrap().current, ie.current);
    // The next prune deletes the forgotten data; no old index file may come
    // back and point into a deleted pack.
    let rep = prune(&repo, 0).unwrap();
    assert!(rep.packs_deleted > 0, "{rep:?}");
    let li = repo.load_index().unwrap();
    assert_eq!(li.unavailable, 0, "stale index entries revived");
    let after = repo.index_entries().unwrap();
    assert!(after.superseded.is_empty(), "{after:?}");
    assert!(check(&repo, 1_000_000, 1).unwrap().ok());
    let data = noise(0, 2 << 20);
    let r = backup_stream(&repo, &mut &data[..], "s", &opts(), &()).unwrap();
    assert_eq!(r.index_entries_unavailable, 0, "{r:?}");
}
