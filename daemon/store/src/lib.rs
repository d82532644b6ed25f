//! Embedded SQLite job store.
//!
//! Every job is a row written before the first byte goes to the device and
//! updated at each checkpoint (after a device flush).
//!
//! A running job is owned through a *lease*: an owner token and an expiry
//! time that the job's worker renews while it lives ([`JobStore::renew_lease`]).
//! [`JobStore::reap`] turns `running` rows into `interrupted` when their lease
//! expired (the worker thread died or hung, even inside a live process) or
//! when the owning process is gone (a faster answer after a crash than
//! waiting for the expiry). `lethe wipe --resume JOB` takes the lease over
//! ([`JobStore::take_over`]) only from a resumable row, so two resumes cannot
//! both own one job, and continues from the stored checkpoint.
//!
//! The database lives in the state directory (`/var/lib/lethe` by default) as
//! `lethe.db`, in WAL mode so that progress updates do not block readers.

use lethe_core::plan::Checkpoint;
use lethe_core::ranges::RangeSet;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors of the job store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("job database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("no job {0:?} in the job store")]
    NoSuchJob(String),
    #[error("job {id}: stored {field} is corrupt: {source}")]
    Corrupt {
        id: String,
        field: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "job database was written by a newer lethe (schema {found}, this build knows {known})"
    )]
    NewerSchema { found: i64, known: i64 },
}

/// Lifecycle of a job as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// A live process is working on it.
    Running,
    /// The process died (crash, kill -9, power loss) while running.
    Interrupted,
    /// Stopped on request (Ctrl-C); resumable.
    Incomplete,
    /// Finished and verified.
    Pass,
    /// Finished and verified, but at Clear where Purge was requested.
    ClearOnly,
    /// Ran to the end without a read-back (`--verify off`): never certified.
    Unverified,
    /// Finished with failures, or aborted.
    Fail,
    /// Recorded, then ended before anything was done to the medium (a
    /// degausser that refused to arm).
    NotStarted,
}

impl JobStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Interrupted => "interrupted",
            JobStatus::Incomplete => "incomplete",
            JobStatus::Pass => "pass",
            JobStatus::ClearOnly => "clear_only",
            JobStatus::Unverified => "unverified",
            JobStatus::Fail => "fail",
            JobStatus::NotStarted => "not_started",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => JobStatus::Running,
            "interrupted" => JobStatus::Interrupted,
            "incomplete" => JobStatus::Incomplete,
            "pass" => JobStatus::Pass,
            "clear_only" => JobStatus::ClearOnly,
            "unverified" => JobStatus::Unverified,
            "fail" => JobStatus::Fail,
            "not_started" => JobStatus::NotStarted,
            _ => return None,
        })
    }

    /// Whether `--resume` may continue this job.
    pub fn resumable(&self) -> bool {
        matches!(self, JobStatus::Interrupted | JobStatus::Incomplete)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who holds a running job: the lease token of one worker, the process it
/// runs in, and until when the lease holds unless renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Unique per worker (not per process: one daemon runs many jobs).
    pub token: String,
    pub pid: u32,
    pub boot_id: String,
    /// Unix seconds.
    pub expires: i64,
}

/// A job as written at creation. `spec` is opaque JSON owned by the caller
/// (device identity, plan, operator fields) so the store never needs a
/// migration when the CLI adds an option.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub kind: String,
    pub device_path: String,
    pub spec: serde_json::Value,
    /// Secret material needed to resume (the random-stream key).
    pub secret: Vec<u8>,
    pub lease: Lease,
    pub now: String,
}

/// One stored job.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: String,
    pub kind: String,
    pub device_path: String,
    pub spec: serde_json::Value,
    pub secret: Vec<u8>,
    pub status: JobStatus,
    pub checkpoint: Checkpoint,
    pub write_failures: RangeSet,
    pub pid: Option<u32>,
    pub boot_id: Option<String>,
    /// Lease token and expiry (unix seconds) while running.
    pub lease_token: Option<String>,
    pub lease_expires: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub certificate: Option<String>,
    pub result: Option<serde_json::Value>,
}

/// A timestamped entry in a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEvent {
    pub at: String,
    pub kind: String,
    pub detail: String,
}

const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    device_path     TEXT NOT NULL,
    spec            TEXT NOT NULL,
    secret          BLOB NOT NULL,
    status          TEXT NOT NULL,
    checkpoint      TEXT NOT NULL,
    write_failures  TEXT NOT NULL,
    pid             INTEGER,
    boot_id         TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    certificate     TEXT,
    result          TEXT
);
CREATE TABLE IF NOT EXISTS job_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  TEXT NOT NULL REFERENCES jobs(id),
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events(job_id, seq);
-- Version 2: scheduled backup history (runs, failures, missed slots, drills).
CREATE TABLE IF NOT EXISTS backup_runs (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    job      TEXT NOT NULL,
    kind     TEXT NOT NULL,
    started  INTEGER NOT NULL,
    ended    INTEGER NOT NULL,
    result   TEXT NOT NULL,
    detail   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS backup_runs_by_job ON backup_runs(job, kind, seq);
";

/// Version 3: job ownership by lease.
const LEASE_COLUMNS: &str = "
ALTER TABLE jobs ADD COLUMN lease_token TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires INTEGER;
";

/// One entry of the backup history: a backup, forget, drill or a missed slot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupRun {
    /// Job name from the schedule.
    pub job: String,
    /// `backup`, `forget`, `drill` or `missed`.
    pub kind: String,
    /// Unix seconds.
    pub started: i64,
    /// Unix seconds.
    pub ended: i64,
    /// `pass`, `fail` or `missed`.
    pub result: String,
    /// JSON report or error text.
    pub detail: String,
}

/// Handle on the job database.
pub struct JobStore {
    conn: Connection,
    path: PathBuf,
}

impl JobStore {
    /// Open (creating if needed) `<state_dir>/lethe.db`.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join("lethe.db");
        let conn = Connection::open(&path).map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let store = Self { conn, path };
        store.init()?;
        Ok(store)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn init(&self) -> Result<(), StoreError> {
        // WAL lets `lethe jobs` read while a wipe updates its checkpoint;
        // synchronous=FULL makes a committed checkpoint survive power loss.
        self.conn
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
            )
            .map_err(self.err())?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(self.err())?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        self.conn.execute_batch(SCHEMA).map_err(self.err())?;
        let has_lease: bool = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'lease_token'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(self.err())?
            > 0;
        if !has_lease {
            self.conn.execute_batch(LEASE_COLUMNS).map_err(self.err())?;
        }
        // Only when it changes: every reader opens the store (a status poll
        // does), and setting it is a write transaction with an fsync.
        if version != SCHEMA_VERSION {
            self.conn
                .execute_batch(&format!("PRAGMA user_version={SCHEMA_VERSION}"))
                .map_err(self.err())?;
        }
        Ok(())
    }

    /// Record a new job as running, before any byte is written.
    pub fn create(&self, job: &NewJob) -> Result<(), StoreError> {
        let cp = json(&Checkpoint::START);
        let failures = json(&RangeSet::new());
        self.conn
            .execute(
                "INSERT INTO jobs (id, kind, device_path, spec, secret, status, checkpoint, write_failures,
                                   pid, boot_id, lease_token, lease_expires, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
                params![
                    job.id,
                    job.kind,
                    job.device_path,
                    job.spec.to_string(),
                    job.secret,
                    cp,
                    failures,
                    job.lease.pid,
                    job.lease.boot_id,
                    job.lease.token,
                    job.lease.expires,
                    job.now
                ],
            )
            .map_err(self.err())?;
        self.event(
            &job.id,
            &job.now,
            "created",
            &format!("job created for {}", job.device_path),
        )
    }

    /// Persist a checkpoint (the device was flushed just before).
    pub fn checkpoint(
        &self,
        id: &str,
        cp: &Checkpoint,
        write_failures: &RangeSet,
        now: &str,
    ) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE jobs SET checkpoint = ?2, write_failures = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, json(cp), json(write_failures), now],
            )
            .map_err(self.err())?;
        if n == 0 {
            return Err(StoreError::NoSuchJob(id.to_string()));
        }
        Ok(())
    }

    /// Replace a job's stored specification (a purge that falls back to an
    /// overwrite records why, so a resumed job still certifies it).
    pub fn set_spec(
        &self,
        id: &str,
        spec: &serde_json::Value,
        now: &str,
    ) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE jobs SET spec = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, spec.to_string(), now],
            )
            .map_err(self.err())?;
        if n == 0 {
            return Err(StoreError::NoSuchJob(id.to_string()));
        }
        Ok(())
    }

    /// Append to the backup history.
    pub fn record_run(&self, r: &BackupRun) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO backup_runs (job, kind, started, ended, result, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![r.job, r.kind, r.started, r.ended, r.result, r.detail],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Backup history, oldest first; only `job` when given.
    pub fn runs(&self, job: Option<&str>) -> Result<Vec<BackupRun>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT job, kind, started, ended, result, detail FROM backup_runs
                 WHERE ?1 IS NULL OR job = ?1 ORDER BY seq",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![job], |r| {
                Ok(BackupRun {
                    job: r.get(0)?,
                    kind: r.get(1)?,
                    started: r.get(2)?,
                    ended: r.get(3)?,
                    result: r.get(4)?,
                    detail: r.get(5)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Change the status of a job that is not running any more (interrupted,
    /// incomplete, failed): its lease is released.
    pub fn set_status(&self, id: &str, status: JobStatus, now: &str) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE jobs SET status = ?2, pid = NULL, boot_id = NULL, lease_token = NULL,
                                 lease_expires = NULL, updated_at = ?3 WHERE id = ?1",
                params![id, status.as_str(), now],
            )
            .map_err(self.err())?;
        if n == 0 {
            return Err(StoreError::NoSuchJob(id.to_string()));
        }
        Ok(())
    }

    /// Take a resumable job (interrupted or incomplete) and make it running
    /// under `lease`. `false` when it is not resumable (any more): someone
    /// else took it, or it finished.
    pub fn take_over(&self, id: &str, lease: &Lease, now: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE jobs SET status = 'running', pid = ?2, boot_id = ?3, lease_token = ?4,
                                 lease_expires = ?5, updated_at = ?6
                 WHERE id = ?1 AND status IN ('interrupted', 'incomplete')",
                params![
                    id,
                    lease.pid,
                    lease.boot_id,
                    lease.token,
                    lease.expires,
                    now
                ],
            )
            .map_err(self.err())?;
        Ok(n == 1)
    }

    /// Extend the lease of a running job held by `token` to `expires`.
    /// `false` when the job is not running under that token any more (it was
    /// reaped after the lease ran out): the caller must take it back or stop.
    pub fn renew_lease(&self, id: &str, token: &str, expires: i64) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE jobs SET lease_expires = ?3
                 WHERE id = ?1 AND lease_token = ?2 AND status = 'running'",
                params![id, token, expires],
            )
            .map_err(self.err())?;
        Ok(n == 1)
    }

    /// Take back a running job whose lease was reaped while its worker still
    /// lived (the host was suspended longer than the lease, say).
    pub fn retake(&self, id: &str, lease: &Lease, now: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE jobs SET status = 'running', pid = ?2, boot_id = ?3, lease_token = ?4,
                                 lease_expires = ?5, updated_at = ?6
                 WHERE id = ?1 AND status = 'interrupted'",
                params![
                    id,
                    lease.pid,
                    lease.boot_id,
                    lease.token,
                    lease.expires,
                    now
                ],
            )
            .map_err(self.err())?;
        Ok(n == 1)
    }

    /// Record the end of a job: its final status, result document and certificate path.
    pub fn finish(
        &self,
        id: &str,
        status: JobStatus,
        result: &serde_json::Value,
        certificate: Option<&str>,
        now: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE jobs SET status = ?2, result = ?3, certificate = ?4, pid = NULL, boot_id = NULL,
                                 lease_token = NULL, lease_expires = NULL, updated_at = ?5
                 WHERE id = ?1",
                params![id, status.as_str(), result.to_string(), certificate, now],
            )
            .map_err(self.err())?;
        Ok(())
    }

    pub fn event(&self, id: &str, at: &str, kind: &str, detail: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO job_events (job_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
                params![id, at, kind, detail],
            )
            .map_err(self.err())?;
        Ok(())
    }

    pub fn events(&self, id: &str) -> Result<Vec<JobEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, kind, detail FROM job_events WHERE job_id = ?1 ORDER BY seq")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(JobEvent {
                    at: r.get(0)?,
                    kind: r.get(1)?,
                    detail: r.get(2)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    pub fn get(&self, id: &str) -> Result<JobRecord, StoreError> {
        let row = self
            .conn
            .query_row(&format!("{SELECT} WHERE id = ?1"), [id], raw_row)
            .optional()
            .map_err(self.err())?
            .ok_or_else(|| StoreError::NoSuchJob(id.to_string()))?;
        decode(row)
    }

    /// All jobs, newest first.
    pub fn list(&self) -> Result<Vec<JobRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("{SELECT} ORDER BY created_at DESC, id DESC"))
            .map_err(self.err())?;
        let rows = stmt.query_map([], raw_row).map_err(self.err())?;
        let raws = rows.collect::<Result<Vec<_>, _>>().map_err(self.err())?;
        raws.into_iter().map(decode).collect()
    }

    /// Mark `running` jobs whose owner is gone as `interrupted`: the lease
    /// expired before `now_unix` (its worker died or hung), or
    /// `alive(pid, boot_id)` says the owning process is gone. Returns the ids.
    pub fn reap(
        &self,
        now_unix: i64,
        alive: impl Fn(u32, &str) -> bool,
        now: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut reaped = Vec::new();
        for job in self.list()? {
            if job.status != JobStatus::Running {
                continue;
            }
            let process = match (job.pid, job.boot_id.as_deref()) {
                (Some(p), Some(b)) => alive(p, b),
                _ => false,
            };
            // A row from before leases has none: its process alone decides.
            let expired = job.lease_expires.is_some_and(|t| t < now_unix);
            let why = match (process, expired) {
                (true, false) => continue,
                (false, _) => "its owner process ended while it was running",
                (true, true) => "its worker stopped renewing its lease while the process lived on",
            };
            // Only a row still running under the same lease is reaped: a
            // worker that renewed in between keeps its job.
            let n = self
                .conn
                .execute(
                    "UPDATE jobs SET status = 'interrupted', pid = NULL, boot_id = NULL,
                                     lease_token = NULL, lease_expires = NULL, updated_at = ?3
                     WHERE id = ?1 AND status = 'running' AND lease_token IS ?2
                       AND (lease_expires IS ?4)",
                    params![job.id, job.lease_token, now, job.lease_expires],
                )
                .map_err(self.err())?;
            if n == 0 {
                continue;
            }
            let detail = format!("{why}; last checkpoint {}", json(&job.checkpoint));
            self.event(&job.id, now, "interrupted", &detail)?;
            reaped.push(job.id);
        }
        Ok(reaped)
    }
}

const SELECT: &str =
    "SELECT id, kind, device_path, spec, secret, status, checkpoint, write_failures,
                             pid, boot_id, created_at, updated_at, certificate, result,
                             lease_token, lease_expires FROM jobs";

type RawRow = (
    String,
    String,
    String,
    String,
    Vec<u8>,
    String,
    String,
    String,
    Option<u32>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
        r.get(15)?,
    ))
}

fn decode(r: RawRow) -> Result<JobRecord, StoreError> {
    let id = r.0.clone();
    let corrupt = |field: &'static str| {
        let id = id.clone();
        move |source| StoreError::Corrupt { id, field, source }
    };
    let status = JobStatus::parse(&r.5).ok_or_else(|| StoreError::Corrupt {
        id: id.clone(),
        field: "status",
        source: serde::de::Error::custom(format!("unknown status {:?}", r.5)),
    })?;
    Ok(JobRecord {
        spec: serde_json::from_str(&r.3).map_err(corrupt("spec"))?,
        checkpoint: serde_json::from_str(&r.6).map_err(corrupt("checkpoint"))?,
        write_failures: serde_json::from_str(&r.7).map_err(corrupt("write_failures"))?,
        result: r
            .13
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(corrupt("result"))?,
        id: r.0,
        kind: r.1,
        device_path: r.2,
        secret: r.4,
        status,
        pid: r.8,
        boot_id: r.9,
        lease_token: r.14,
        lease_expires: r.15,
        created_at: r.10,
        updated_at: r.11,
        certificate: r.12,
    })
}

fn json<T: Serialize>(v: &T) -> String {
    // Serializing our own plain types cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(token: &str, pid: u32, expires: i64) -> Lease {
        Lease {
            token: token.into(),
            pid,
            boot_id: "boot-a".into(),
            expires,
        }
    }

    fn new_job(id: &str, pid: u32) -> NewJob {
        NewJob {
            id: id.into(),
            kind: "wipe".into(),
            device_path: "/dev/loop9".into(),
            spec: serde_json::json!({"serial": "S1", "size": 4096}),
            secret: vec![1, 2, 3],
            lease: lease(&format!("t-{id}"), pid, 1_000),
            now: "2026-11-23T10:00:00Z".into(),
        }
    }

    /// safeguard: 164.310(d)(2)(iii), 164.310(d)(2)(iv)
    #[test]
    fn backup_history_round_trips_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        let run = |job: &str, kind: &str, result: &str| BackupRun {
            job: job.into(),
            kind: kind.into(),
            started: 10,
            ended: 20,
            result: result.into(),
            detail: "{}".into(),
        };
        store.record_run(&run("a", "backup", "pass")).unwrap();
        store.record_run(&run("b", "drill", "fail")).unwrap();
        store.record_run(&run("a", "missed", "missed")).unwrap();
        assert_eq!(store.runs(None).unwrap().len(), 3);
        let a = store.runs(Some("a")).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1], run("a", "missed", "missed"));
        drop(store);
        // Reopening keeps the history.
        assert_eq!(
            JobStore::open(dir.path())
                .unwrap()
                .runs(None)
                .unwrap()
                .len(),
            3
        );
    }

    /// safeguard: 164.310(d)(2)(iii)
    #[test]
    fn every_status_round_trips_and_only_stops_resume() {
        use JobStatus::*;
        for s in [
            Running,
            Interrupted,
            Incomplete,
            Pass,
            ClearOnly,
            Unverified,
            Fail,
            NotStarted,
        ] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(s.as_str())
            );
            assert_eq!(s.resumable(), matches!(s, Interrupted | Incomplete));
        }
    }

    #[test]
    fn job_lifecycle_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        store.create(&new_job("j1", 42)).unwrap();
        let mut fails = RangeSet::new();
        fails.insert(512, 512);
        let cp = Checkpoint::Writing {
            pass: 1,
            offset: 1 << 20,
        };
        store
            .checkpoint("j1", &cp, &fails, "2026-11-23T10:00:05Z")
            .unwrap();
        let j = store.get("j1").unwrap();
        assert_eq!(j.status, JobStatus::Running);
        assert_eq!(j.checkpoint, cp);
        assert_eq!(j.write_failures, fails);
        assert_eq!(j.secret, vec![1, 2, 3]);
        assert_eq!(j.spec["serial"], "S1");
        store
            .set_spec("j1", &serde_json::json!({"serial": "S1", "purge": 1}), "t")
            .unwrap();
        assert_eq!(store.get("j1").unwrap().spec["purge"], 1);
        assert!(store.set_spec("nope", &serde_json::json!({}), "t").is_err());
        store
            .finish(
                "j1",
                JobStatus::Pass,
                &serde_json::json!({"ok": true}),
                Some("/c.json"),
                "t",
            )
            .unwrap();
        let j = store.get("j1").unwrap();
        assert_eq!(
            (j.status, j.certificate.as_deref()),
            (JobStatus::Pass, Some("/c.json"))
        );
        assert!(matches!(store.get("nope"), Err(StoreError::NoSuchJob(_))));
    }

    /// safeguard: 164.310(d)(2)(iii), rule:record-before-write
    #[test]
    fn dead_owners_become_interrupted_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = JobStore::open(dir.path()).unwrap();
            store.create(&new_job("dead", 1)).unwrap();
            store.create(&new_job("live", 2)).unwrap();
        }
        let store = JobStore::open(dir.path()).unwrap();
        let reaped = store.reap(500, |pid, _| pid == 2, "t2").unwrap();
        assert_eq!(reaped, vec!["dead".to_string()]);
        assert_eq!(store.get("dead").unwrap().status, JobStatus::Interrupted);
        assert!(store.get("dead").unwrap().status.resumable());
        assert_eq!(store.get("live").unwrap().status, JobStatus::Running);
        let ev = store.events("dead").unwrap();
        assert_eq!(
            ev.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["created", "interrupted"]
        );
    }

    #[test]
    fn a_lease_that_stops_being_renewed_is_reaped_even_in_a_live_process() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        store.create(&new_job("j", 7)).unwrap();
        let alive = |_: u32, _: &str| true;
        // Renewed in time: kept.
        assert!(store.renew_lease("j", "t-j", 2_000).unwrap());
        assert!(store.reap(1_500, alive, "t").unwrap().is_empty());
        // A stranger cannot renew it.
        assert!(!store.renew_lease("j", "t-other", 9_000).unwrap());
        // Not renewed: the process lives, the lease ran out.
        assert_eq!(
            store.reap(2_001, alive, "t").unwrap(),
            vec!["j".to_string()]
        );
        let j = store.get("j").unwrap();
        assert_eq!(j.status, JobStatus::Interrupted);
        assert_eq!((j.lease_token, j.pid), (None, None));
        let ev = store.events("j").unwrap();
        assert!(ev
            .last()
            .unwrap()
            .detail
            .contains("stopped renewing its lease"));
        // The lost worker notices on its next renewal and may take it back.
        assert!(!store.renew_lease("j", "t-j", 3_000).unwrap());
        assert!(store.retake("j", &lease("t-j", 7, 3_000), "t").unwrap());
        assert_eq!(store.get("j").unwrap().status, JobStatus::Running);
    }

    /// safeguard: rule:record-before-write
    #[test]
    fn only_one_resume_takes_a_job_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        store.create(&new_job("j", 7)).unwrap();
        // Running: nobody takes it over.
        assert!(!store.take_over("j", &lease("a", 8, 10), "t").unwrap());
        store.set_status("j", JobStatus::Incomplete, "t").unwrap();
        assert!(store.take_over("j", &lease("a", 8, 10), "t").unwrap());
        assert!(!store.take_over("j", &lease("b", 9, 10), "t").unwrap());
        let j = store.get("j").unwrap();
        assert_eq!((j.lease_token.as_deref(), j.pid), (Some("a"), Some(8)));
        store
            .finish("j", JobStatus::Pass, &serde_json::json!({}), None, "t")
            .unwrap();
        assert!(!store.take_over("j", &lease("c", 9, 10), "t").unwrap());
    }

    #[test]
    fn a_version_2_database_gains_the_lease_columns() {
        let dir = tempfile::tempdir().unwrap();
        let c = Connection::open(dir.path().join("lethe.db")).unwrap();
        c.execute_batch(SCHEMA).unwrap();
        c.execute_batch("PRAGMA user_version=2").unwrap();
        c.execute(
            "INSERT INTO jobs (id, kind, device_path, spec, secret, status, checkpoint, write_failures,
                               pid, boot_id, created_at, updated_at)
             VALUES ('old', 'wipe', '/dev/x', '{}', x'', 'pass', '{\"phase\":\"done\"}', '[]', NULL, NULL, 't', 't')",
            [],
        )
        .unwrap();
        drop(c);
        let store = JobStore::open(dir.path()).unwrap();
        let j = store.get("old").unwrap();
        assert_eq!((j.status, j.lease_token), (JobStatus::Pass, None));
        store.create(&new_job("new", 1)).unwrap();
        assert_eq!(store.get("new").unwrap().lease_expires, Some(1_000));
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(JobStore::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join("lethe.db")).unwrap();
        c.execute_batch("PRAGMA user_version=99").unwrap();
        drop(c);
        assert!(matches!(
            JobStore::open(dir.path()),
            Err(StoreError::NewerSchema { found: 99, .. })
        ));
    }
}
