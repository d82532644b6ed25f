//! Repository locks, restic-style: backups hold a shared lock, forget/prune an
//! exclusive one. A lock is a small file under `locks/`, refreshed every few
//! minutes while held; one not refreshed for [`STALE_SECS`] belongs to a dead
//! process and is ignored (and removed by an exclusive locker).

use crate::repo::{now, random, Repository};
use crate::store::Store;
use crate::BackupError;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A lock older than this (not refreshed) is stale.
pub const STALE_SECS: i64 = 30 * 60;
/// Refresh interval while held.
pub const REFRESH_SECS: u64 = 5 * 60;

/// Shared (backup, check, restore) or exclusive (forget, prune).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// Many at once; excludes exclusive.
    Shared,
    /// Alone.
    Exclusive,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockFile {
    kind: LockKind,
    host: String,
    pid: u32,
    time: i64,
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct Lock {
    store: Store,
    name: String,
    stop: Arc<AtomicBool>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

fn body(kind: LockKind) -> Vec<u8> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    serde_json::to_vec(&LockFile {
        kind,
        host,
        pid: std::process::id(),
        time: now().secs,
    })
    .unwrap_or_default()
}

/// Live locks other than `own` (stale ones are deleted when `reap`).
fn others(store: &Store, own: &str, reap: bool) -> Result<Vec<(String, LockFile)>, BackupError> {
    let mut out = Vec::new();
    let t = now().secs;
    for o in store.list("locks")? {
        if o.name == own {
            continue;
        }
        let Ok(bytes) = store.read(&o.name) else {
            continue; // removed meanwhile
        };
        let Ok(l) = serde_json::from_slice::<LockFile>(&bytes) else {
            continue; // not ours to judge; stale-by-garbage is ignored
        };
        if t - l.time > STALE_SECS {
            if reap {
                let _ = store.delete(&o.name);
            }
            continue;
        }
        out.push((o.name, l));
    }
    Ok(out)
}

impl Lock {
    /// Take a lock of `kind`, or fail naming the holder.
    pub fn acquire(repo: &Repository, kind: LockKind) -> Result<Lock, BackupError> {
        let store = repo.store.clone();
        let name = format!("locks/{}", hex(&random::<16>()?));
        let conflict = |l: &LockFile| kind == LockKind::Exclusive || l.kind == LockKind::Exclusive;
        let describe = |(n, l): &(String, LockFile)| {
            format!(
                "{:?} lock {n} held by pid {} on {:?}",
                l.kind, l.pid, l.host
            )
        };
        if let Some(c) = others(&store, &name, kind == LockKind::Exclusive)?
            .iter()
            .find(|(_, l)| conflict(l))
        {
            return Err(BackupError::Locked(describe(c)));
        }
        store.put(&name, body(kind))?;
        // Two lockers racing both see each other now: both back off.
        if let Some(c) = others(&store, &name, false)?
            .iter()
            .find(|(_, l)| conflict(l))
        {
            let _ = store.delete(&name);
            return Err(BackupError::Locked(describe(c)));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, n2, st2) = (store.clone(), name.clone(), Arc::clone(&stop));
        let refresher = std::thread::spawn(move || {
            let mut waited = 0;
            while !st2.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_secs(1));
                waited += 1;
                if waited >= REFRESH_SECS {
                    waited = 0;
                    let _ = s2.put(&n2, body(kind));
                }
            }
        });
        Ok(Lock {
            store,
            name,
            stop,
            refresher: Some(refresher),
        })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        let _ = self.store.delete(&self.name);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
