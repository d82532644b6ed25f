//! Repository locks, restic-style, taken by the engine itself: backups,
//! restores, checks and drills hold a shared lock; forget, prune and repair an
//! exclusive one.
//!
//! A lock is a small JSON file under `locks/`, rewritten every
//! [`LockTiming::refresh`] while held. It carries the kind, a keyed hash of the
//! host name and of the boot id (so the storage provider cannot tell which
//! machines use the repository; holders of the key can compare them), the
//! process id, the process start time (clock ticks since boot) and the time of
//! the last refresh: nothing else. Another process treats it as stale, and
//! ignores it (an exclusive locker also deletes it), when
//!
//! - it was not rewritten for [`LockTiming::stale`], or
//! - it belongs to this host and its process is gone: the pid no longer exists,
//!   or it exists but started at another time (the pid was reused), or the host
//!   was rebooted since (another boot id). A killed backup therefore never
//!   blocks the next command on the same host.
//!
//! A writer must never keep writing under a lock others may already treat as
//! stale: [`Lock::ensure`] fails once the last successful refresh is older than
//! `stale - margin` (or the lock file was removed), and the writer calls it
//! before every upload. The refresher thread waits on a condition variable, so
//! dropping the lock wakes it at once and joins it.

use crate::repo::{now, random, Repository};
use crate::store::Store;
use crate::BackupError;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often a held lock is rewritten, and when an untouched one is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTiming {
    /// Rewrite interval while held.
    pub refresh: Duration,
    /// A lock not rewritten for this long is stale.
    pub stale: Duration,
}

impl Default for LockTiming {
    fn default() -> Self {
        LockTiming {
            refresh: Duration::from_secs(5 * 60),
            stale: Duration::from_secs(30 * 60),
        }
    }
}

impl LockTiming {
    /// A writer stops this long before its lock could be judged stale: the
    /// refresh interval, so that an upload started just before the deadline
    /// still lands while the lock is valid.
    pub fn margin(&self) -> Duration {
        self.refresh.min(self.stale / 2)
    }

    /// Delay before retrying a failed refresh.
    fn retry(&self) -> Duration {
        (self.refresh / 5).max(Duration::from_millis(50))
    }
}

/// Shared (backup, restore, check, drill) or exclusive (forget, prune, repair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// Many at once; excludes exclusive.
    Shared,
    /// Alone.
    Exclusive,
}

/// The lock file (JSON). `start` and `boot` were added later: older files
/// lack them and are judged by pid and time only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    /// Shared or exclusive.
    pub kind: LockKind,
    /// Host name of the holder.
    pub host: String,
    /// Process id of the holder.
    pub pid: u32,
    /// Unix seconds of the last refresh.
    pub time: i64,
    /// Start time of the holder process (clock ticks since boot, `/proc/PID/stat` field 22).
    #[serde(default)]
    pub start: Option<u64>,
    /// Boot id of the holder's host (`/proc/sys/kernel/random/boot_id`).
    #[serde(default)]
    pub boot: Option<String>,
}

/// This host, as lock files describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Here {
    /// Host name.
    pub host: String,
    /// Boot id, when readable.
    pub boot: Option<String>,
}

impl Here {
    /// Read from /proc, in clear.
    pub fn current() -> Here {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        Here {
            host: read("/proc/sys/kernel/hostname").unwrap_or_default(),
            boot: read("/proc/sys/kernel/random/boot_id"),
        }
    }

    /// As lock files of `repo` name this host: keyed hashes of the host name and
    /// boot id, comparable by every holder of the repository key and meaningless
    /// to the storage provider.
    pub fn for_repo(repo: &Repository) -> Here {
        let h = Here::current();
        let k = repo.keys();
        Here {
            host: if h.host.is_empty() {
                String::new()
            } else {
                k.private_name("host", h.host.as_bytes())
            },
            boot: h.boot.map(|b| k.private_name("boot", b.as_bytes())),
        }
    }
}

/// Why a lock is stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// Not refreshed for longer than the stale time.
    Expired,
    /// Held by a process of this host that no longer runs.
    DeadProcess,
}

/// The start time (field 22) from a `/proc/PID/stat` line.
pub fn parse_start_time(stat: &str) -> Option<u64> {
    // "pid (comm) state ppid ...": comm may contain spaces and ')', so split
    // after the last ')'; starttime is then the 20th field.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Start time of a running process, `None` when there is no such process.
pub fn process_start(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_start_time(&s))
}

/// Whether `l` is stale at `now` (unix seconds), seen from `here`; `probe`
/// gives the start time of a live local process (pure given the probe).
pub fn staleness(
    l: &LockFile,
    now: i64,
    timing: &LockTiming,
    here: &Here,
    probe: impl Fn(u32) -> Option<u64>,
) -> Option<Stale> {
    let age = now.saturating_sub(l.time);
    if age > i64::try_from(timing.stale.as_secs()).unwrap_or(i64::MAX) {
        return Some(Stale::Expired);
    }
    if l.host.is_empty() || l.host != here.host {
        return None; // Another host: only time can tell.
    }
    match (&l.boot, &here.boot) {
        (Some(a), Some(b)) if a != b => return Some(Stale::DeadProcess),
        _ => {}
    }
    match probe(l.pid) {
        None => Some(Stale::DeadProcess),
        Some(start) if l.start.is_some_and(|s| s != start) => Some(Stale::DeadProcess),
        Some(_) => None,
    }
}

#[derive(Debug)]
struct State {
    stop: bool,
    /// When the last successful refresh *started* (its file time is later).
    last_ok: Instant,
    /// Why the lock is lost, once it is.
    lost: Option<String>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned mutex only means a panicking thread held it; the data is plain.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A held lock; released (and its refresher joined) on drop.
#[derive(Debug)]
pub struct Lock {
    store: Store,
    name: String,
    kind: LockKind,
    timing: LockTiming,
    shared: Arc<Shared>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

fn body(kind: LockKind, here: &Here) -> Vec<u8> {
    serde_json::to_vec(&LockFile {
        kind,
        host: here.host.clone(),
        pid: std::process::id(),
        time: now().secs,
        start: process_start(std::process::id()),
        boot: here.boot.clone(),
    })
    .unwrap_or_default()
}

/// Live locks other than `own`. Locks of dead local processes are always
/// deleted; expired ones only when `reap_expired` (an exclusive locker).
fn others(
    store: &Store,
    own: &str,
    timing: &LockTiming,
    here: &Here,
    reap_expired: bool,
) -> Result<Vec<(String, LockFile)>, BackupError> {
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
            continue; // not a lock file of ours: ignored, never deleted
        };
        match staleness(&l, t, timing, here, process_start) {
            Some(Stale::DeadProcess) => {
                let _ = store.delete(&o.name);
            }
            Some(Stale::Expired) => {
                if reap_expired {
                    let _ = store.delete(&o.name);
                }
            }
            None => out.push((o.name, l)),
        }
    }
    Ok(out)
}

impl Lock {
    /// Take a lock of `kind` with the repository's timing, or fail naming the holder.
    pub fn acquire(repo: &Repository, kind: LockKind) -> Result<Lock, BackupError> {
        Self::acquire_on(&repo.store, kind, repo.lock_timing, Here::for_repo(repo))
    }

    /// Take a lock of `kind` on `store`, naming this host as `here`.
    pub fn acquire_on(
        store: &Store,
        kind: LockKind,
        timing: LockTiming,
        here: Here,
    ) -> Result<Lock, BackupError> {
        let store = store.clone();
        let name = format!("locks/{}", hex(&random::<16>()?));
        let conflict = |l: &LockFile| kind == LockKind::Exclusive || l.kind == LockKind::Exclusive;
        let describe = |(n, l): &(String, LockFile)| {
            format!(
                "{:?} lock {n} held by pid {} on {} (refreshed at unix time {})",
                l.kind,
                l.pid,
                if l.host == here.host {
                    "this host".to_string()
                } else {
                    format!("another host (host id {})", l.host)
                },
                l.time
            )
        };
        let exclusive = kind == LockKind::Exclusive;
        if let Some(c) = others(&store, &name, &timing, &here, exclusive)?
            .iter()
            .find(|(_, l)| conflict(l))
        {
            return Err(BackupError::Locked(describe(c)));
        }
        let started = Instant::now();
        store.put(&name, body(kind, &here))?;
        // Two lockers racing both see each other now: both back off.
        if let Some(c) = others(&store, &name, &timing, &here, false)?
            .iter()
            .find(|(_, l)| conflict(l))
        {
            let _ = store.delete(&name);
            return Err(BackupError::Locked(describe(c)));
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                stop: false,
                last_ok: started,
                lost: None,
            }),
            wake: Condvar::new(),
        });
        let refresher = {
            let (store, name, shared) = (store.clone(), name.clone(), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("lethe-lock".into())
                .spawn(move || refresh_loop(&store, &name, kind, timing, &here, &shared))
                .map_err(|e| BackupError::Internal(format!("lock refresher: {e}")))?
        };
        Ok(Lock {
            store,
            name,
            kind,
            timing,
            shared,
            refresher: Some(refresher),
        })
    }

    /// The kind held.
    pub fn kind(&self) -> LockKind {
        self.kind
    }

    /// The lock file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ok while the lock is certainly valid; an error (and the writer must stop
    /// writing) once it may be stale for others or was removed.
    pub fn ensure(&self) -> Result<(), BackupError> {
        let st = self.shared.state();
        if let Some(why) = &st.lost {
            return Err(BackupError::LockLost(why.clone()));
        }
        let limit = self.timing.stale.saturating_sub(self.timing.margin());
        if st.last_ok.elapsed() > limit {
            return Err(BackupError::LockLost(format!(
                "the lock could not be refreshed for {} s; it would soon look stale to others",
                st.last_ok.elapsed().as_secs()
            )));
        }
        Ok(())
    }
}

fn refresh_loop(
    store: &Store,
    name: &str,
    kind: LockKind,
    timing: LockTiming,
    here: &Here,
    shared: &Shared,
) {
    let mut next = Instant::now() + timing.refresh;
    let mut st = shared.state();
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        let (g, _) = shared
            .wake
            .wait_timeout_while(st, wait, |s| !s.stop && Instant::now() < next)
            .unwrap_or_else(|p| p.into_inner());
        st = g;
        if st.stop {
            return;
        }
        drop(st);
        let attempt = Instant::now();
        // The file must still be ours: someone may have removed it as stale.
        let r = match store.stat(name) {
            Err(BackupError::Backend(e)) if e.is_not_found() => Err(Some(
                "the lock file was removed by another process".to_string(),
            )),
            Err(_) => Err(None),
            Ok(_) => store.put(name, body(kind, here)).map_err(|_| None),
        };
        st = shared.state();
        match r {
            Ok(()) => {
                st.last_ok = attempt;
                next = attempt + timing.refresh;
            }
            Err(lost) => {
                if let Some(why) = lost {
                    st.lost.get_or_insert(why);
                }
                next = Instant::now() + timing.retry();
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.shared.state().stop = true;
        self.shared.wake.notify_all();
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        let _ = self.store.delete(&self.name);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lf(host: &str, pid: u32, time: i64, start: Option<u64>, boot: Option<&str>) -> LockFile {
        LockFile {
            kind: LockKind::Shared,
            host: host.into(),
            pid,
            time,
            start,
            boot: boot.map(Into::into),
        }
    }

    #[test]
    fn stale_rules() {
        let t = LockTiming::default();
        let here = Here {
            host: "a".into(),
            boot: Some("b1".into()),
        };
        let alive = |pid: u32| (pid == 7).then_some(100);
        // Fresh, live process.
        assert_eq!(
            staleness(
                &lf("a", 7, 1000, Some(100), Some("b1")),
                1000,
                &t,
                &here,
                alive
            ),
            None
        );
        // Dead pid on this host: at once, however fresh.
        assert_eq!(
            staleness(
                &lf("a", 8, 1000, Some(5), Some("b1")),
                1000,
                &t,
                &here,
                alive
            ),
            Some(Stale::DeadProcess)
        );
        // Reused pid (other start time), and another boot.
        assert_eq!(
            staleness(
                &lf("a", 7, 1000, Some(99), Some("b1")),
                1000,
                &t,
                &here,
                alive
            ),
            Some(Stale::DeadProcess)
        );
        assert_eq!(
            staleness(
                &lf("a", 7, 1000, Some(100), Some("b0")),
                1000,
                &t,
                &here,
                alive
            ),
            Some(Stale::DeadProcess)
        );
        // An old-format file (no start, no boot) of a live pid is live.
        assert_eq!(
            staleness(&lf("a", 7, 1000, None, None), 1000, &t, &here, alive),
            None
        );
        // Another host: only time counts.
        assert_eq!(
            staleness(&lf("b", 8, 1000, None, None), 1000 + 1800, &t, &here, alive),
            None
        );
        assert_eq!(
            staleness(&lf("b", 8, 1000, None, None), 1000 + 1801, &t, &here, alive),
            Some(Stale::Expired)
        );
    }

    #[test]
    fn start_time_parses_odd_names() {
        let line =
            "4242 (a) b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(line), Some(987_654));
        assert_eq!(parse_start_time("garbage"), None);
        let me = process_start(std::process::id());
        assert!(me.is_some(), "our own start time is readable");
    }

    #[test]
    fn lock_file_without_new_fields_parses() {
        let l: LockFile =
            serde_json::from_str(r#"{"kind":"exclusive","host":"h","pid":3,"time":9}"#).unwrap();
        assert_eq!(l.start, None);
        assert_eq!(l.kind, LockKind::Exclusive);
    }
}
