//! Where alerts, their deliveries and every attempt are recorded.
//!
//! [`AlertStore`] is the seam: the dispatcher needs only these calls, so a
//! later PostgreSQL store (shared by a fleet) fits behind it. [`SqliteAlertStore`]
//! is the embedded default; no SQL leaves this module.
//!
//! Model: an alert has one delivery per channel it was raised on; a delivery
//! is `pending` (with the time of its next attempt), `delivered` or `failed`;
//! each attempt is a row with its time, outcome and detail.

use crate::kind::{Alert, AlertId};
use crate::label::{Label, Timestamp};
use crate::retry::{FailReason, Next, Outcome};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Errors of an alert store.
#[derive(Debug, thiserror::Error)]
pub enum AlertStoreError {
    /// The database failed.
    #[error("alert database {path}: {source}")]
    Sqlite {
        /// The database file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// The error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row does not decode (edited by hand, or a newer writer).
    #[error("alert database {path}: stored {what} is corrupt")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What did not decode.
        what: &'static str,
    },
    /// The database was written by a newer Lethe.
    #[error(
        "alert database was written by a newer lethe (schema {found}, this build knows {known})"
    )]
    NewerSchema {
        /// Its schema version.
        found: i64,
        /// Ours.
        known: i64,
    },
}

/// A delivery whose next attempt is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    /// The alert.
    pub id: AlertId,
    /// What it says.
    pub alert: Alert,
    /// The channel to deliver on.
    pub channel: Label,
    /// Attempts made so far.
    pub attempts: u32,
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The alert.
    pub id: AlertId,
    /// The channel.
    pub channel: Label,
    /// 1-based attempt number on this channel.
    pub number: u32,
    /// When it was made.
    pub at: Timestamp,
    /// What happened.
    pub outcome: Outcome,
}

/// The state of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending {
        /// When.
        next_at: Timestamp,
    },
    /// Delivered.
    Delivered {
        /// When.
        at: Timestamp,
    },
    /// Given up.
    Failed {
        /// When.
        at: Timestamp,
        /// Why.
        reason: FailReason,
    },
}

/// One delivery of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The channel.
    pub channel: Label,
    /// Attempts made.
    pub attempts: u32,
    /// Where it stands.
    pub state: DeliveryState,
}

/// The calls the dispatcher makes. Implementations must make each call atomic.
pub trait AlertStore: Send + Sync {
    /// Record a new alert with one pending delivery per channel, due at `now`.
    fn add(
        &self,
        alert: &Alert,
        channels: &[Label],
        now: Timestamp,
    ) -> Result<AlertId, AlertStoreError>;
    /// Pending deliveries due at `now`, oldest first, at most `limit`.
    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<PendingDelivery>, AlertStoreError>;
    /// Record an attempt and the delivery's next state together.
    fn record(&self, attempt: &Attempt, next: Next) -> Result<(), AlertStoreError>;
    /// The earliest pending attempt time, if any (when to wake up next).
    fn next_due(&self) -> Result<Option<Timestamp>, AlertStoreError>;
    /// The deliveries of an alert.
    fn deliveries(&self, id: AlertId) -> Result<Vec<Delivery>, AlertStoreError>;
    /// Every attempt made for an alert, in order.
    fn attempts(&self, id: AlertId) -> Result<Vec<Attempt>, AlertStoreError>;
    /// The alert with this id, if recorded.
    fn alert(&self, id: AlertId) -> Result<Option<Alert>, AlertStoreError>;
}

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert (
    id        INTEGER PRIMARY KEY,
    raised_at INTEGER NOT NULL,
    body      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_delivery (
    alert_id    INTEGER NOT NULL REFERENCES alert(id),
    channel     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER,
    finished_at INTEGER,
    fail_reason TEXT,
    PRIMARY KEY (alert_id, channel)
);
CREATE INDEX IF NOT EXISTS alert_delivery_due ON alert_delivery (state, next_at);
CREATE TABLE IF NOT EXISTS alert_attempt (
    alert_id INTEGER NOT NULL,
    channel  TEXT NOT NULL,
    number   INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    outcome  TEXT NOT NULL,
    PRIMARY KEY (alert_id, channel, number)
);
";

/// The embedded SQLite store (`alerts.db` in the state directory, WAL mode).
pub struct SqliteAlertStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteAlertStore {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, AlertStoreError> {
        let conn = Connection::open(path).map_err(|e| sql(path, e))?;
        Self::init(conn, path.to_path_buf())
    }

    /// A private in-memory store (tests, dry runs).
    pub fn in_memory() -> Result<Self, AlertStoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| sql(&path, e))?;
        Self::init(conn, path)
    }

    fn init(conn: Connection, path: PathBuf) -> Result<Self, AlertStoreError> {
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| sql(&path, e))?;
        if found > SCHEMA_VERSION {
            return Err(AlertStoreError::NewerSchema {
                found,
                known: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;\
             BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
        .map_err(|e| sql(&path, e))?;
        Ok(SqliteAlertStore {
            conn: Mutex::new(conn),
            path,
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, AlertStoreError> {
        // A panic while holding the lock leaves the connection usable: SQLite
        // rolls back any open transaction when its guard drops.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(|e| sql(&self.path, e))
    }

    fn corrupt(&self, what: &'static str) -> AlertStoreError {
        AlertStoreError::Corrupt {
            path: self.path.clone(),
            what,
        }
    }
}

fn sql(path: &Path, source: rusqlite::Error) -> AlertStoreError {
    AlertStoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn ts(v: i64) -> Timestamp {
    Timestamp::from_unix(u64::try_from(v).unwrap_or(0))
}

fn db_time(t: Timestamp) -> i64 {
    i64::try_from(t.unix()).unwrap_or(i64::MAX)
}

fn reason_str(r: FailReason) -> &'static str {
    match r {
        FailReason::Refused => "refused",
        FailReason::Exhausted => "exhausted",
    }
}

impl AlertStore for SqliteAlertStore {
    fn add(
        &self,
        alert: &Alert,
        channels: &[Label],
        now: Timestamp,
    ) -> Result<AlertId, AlertStoreError> {
        let body = serde_json::to_string(alert).map_err(|_| self.corrupt("alert"))?;
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO alert (raised_at, body) VALUES (?1, ?2)",
                params![db_time(alert.raised_at), body],
            )?;
            let id = tx.last_insert_rowid();
            for ch in channels {
                tx.execute(
                    "INSERT INTO alert_delivery (alert_id, channel, state, next_at) VALUES (?1, ?2, 'pending', ?3)",
                    params![id, ch.as_str(), db_time(now)],
                )?;
            }
            tx.commit()?;
            Ok(id)
        })
    }

    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<PendingDelivery>, AlertStoreError> {
        let rows: Vec<(i64, String, String, i64)> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT d.alert_id, a.body, d.channel, d.attempts FROM alert_delivery d
                 JOIN alert a ON a.id = d.alert_id
                 WHERE d.state = 'pending' AND d.next_at <= ?1
                 ORDER BY d.next_at, d.alert_id, d.channel LIMIT ?2",
            )?;
            let rows = st
                .query_map(
                    params![db_time(now), i64::try_from(limit).unwrap_or(i64::MAX)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(id, body, channel, attempts)| {
                Ok(PendingDelivery {
                    id,
                    alert: serde_json::from_str(&body).map_err(|_| self.corrupt("alert"))?,
                    channel: Label::new(channel).map_err(|_| self.corrupt("channel"))?,
                    attempts: u32::try_from(attempts).map_err(|_| self.corrupt("attempts"))?,
                })
            })
            .collect()
    }

    fn record(&self, a: &Attempt, next: Next) -> Result<(), AlertStoreError> {
        let outcome = serde_json::to_string(&a.outcome).map_err(|_| self.corrupt("outcome"))?;
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO alert_attempt (alert_id, channel, number, at, outcome) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![a.id, a.channel.as_str(), a.number, db_time(a.at), outcome],
            )?;
            let (state, next_at, finished, reason) = match next {
                Next::Delivered => ("delivered", None, Some(db_time(a.at)), None),
                Next::RetryAt(t) => ("pending", Some(db_time(t)), None, None),
                Next::Failed(r) => ("failed", None, Some(db_time(a.at)), Some(reason_str(r))),
            };
            let updated = tx.execute(
                "UPDATE alert_delivery SET state = ?3, attempts = ?4, next_at = ?5, finished_at = ?6, fail_reason = ?7
                 WHERE alert_id = ?1 AND channel = ?2 AND state = 'pending'",
                params![a.id, a.channel.as_str(), state, a.number, next_at, finished, reason],
            )?;
            if updated == 1 {
                tx.commit()?;
            }
            Ok(updated)
        })
        .and_then(|updated| match updated {
            1 => Ok(()),
            // Rolled back: no pending delivery to record against.
            _ => Err(self.corrupt("delivery (no pending delivery for this attempt)")),
        })
    }

    fn next_due(&self) -> Result<Option<Timestamp>, AlertStoreError> {
        let v: Option<i64> = self.with(|c| {
            c.query_row(
                "SELECT MIN(next_at) FROM alert_delivery WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
        })?;
        Ok(v.map(ts))
    }

    fn deliveries(&self, id: AlertId) -> Result<Vec<Delivery>, AlertStoreError> {
        type Row = (
            String,
            i64,
            String,
            Option<i64>,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT channel, attempts, state, next_at, finished_at, fail_reason
                 FROM alert_delivery WHERE alert_id = ?1 ORDER BY channel",
            )?;
            let rows = st
                .query_map(params![id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(channel, attempts, state, next_at, finished, reason)| {
                let bad = || self.corrupt("delivery");
                let state = match (state.as_str(), next_at, finished, reason.as_deref()) {
                    ("pending", Some(n), _, _) => DeliveryState::Pending { next_at: ts(n) },
                    ("delivered", _, Some(f), _) => DeliveryState::Delivered { at: ts(f) },
                    ("failed", _, Some(f), Some(r)) => DeliveryState::Failed {
                        at: ts(f),
                        reason: match r {
                            "refused" => FailReason::Refused,
                            "exhausted" => FailReason::Exhausted,
                            _ => return Err(bad()),
                        },
                    },
                    _ => return Err(bad()),
                };
                Ok(Delivery {
                    channel: Label::new(channel).map_err(|_| bad())?,
                    attempts: u32::try_from(attempts).map_err(|_| bad())?,
                    state,
                })
            })
            .collect()
    }

    fn attempts(&self, id: AlertId) -> Result<Vec<Attempt>, AlertStoreError> {
        let rows: Vec<(String, i64, i64, String)> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT channel, number, at, outcome FROM alert_attempt
                 WHERE alert_id = ?1 ORDER BY at, channel, number",
            )?;
            let rows = st
                .query_map(params![id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(channel, number, at, outcome)| {
                let bad = || self.corrupt("attempt");
                Ok(Attempt {
                    id,
                    channel: Label::new(channel).map_err(|_| bad())?,
                    number: u32::try_from(number).map_err(|_| bad())?,
                    at: ts(at),
                    outcome: serde_json::from_str(&outcome).map_err(|_| bad())?,
                })
            })
            .collect()
    }

    fn alert(&self, id: AlertId) -> Result<Option<Alert>, AlertStoreError> {
        let body: Option<String> = self.with(|c| {
            c.query_row("SELECT body FROM alert WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()
        })?;
        body.map(|b| serde_json::from_str(&b).map_err(|_| self.corrupt("alert")))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::AlertKind;
    use crate::label::Hostname;
    use crate::retry::Detail;

    fn alert() -> Alert {
        Alert {
            kind: AlertKind::Test,
            raised_at: Timestamp::from_unix(100),
            host: Hostname::new("lethe").unwrap(),
        }
    }

    #[test]
    fn lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.db");
        let s = SqliteAlertStore::open(&path).unwrap();
        let (a, b) = (Label::new("ops").unwrap(), Label::new("mail").unwrap());
        let id = s
            .add(&alert(), &[a.clone(), b.clone()], Timestamp::from_unix(100))
            .unwrap();
        assert_eq!(s.next_due().unwrap(), Some(Timestamp::from_unix(100)));
        assert!(s.due(Timestamp::from_unix(99), 10).unwrap().is_empty());
        let due = s.due(Timestamp::from_unix(100), 10).unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].alert, alert());

        let t = Timestamp::from_unix(101);
        s.record(
            &Attempt {
                id,
                channel: a.clone(),
                number: 1,
                at: t,
                outcome: Outcome::Retryable(Detail::Http(503)),
            },
            Next::RetryAt(Timestamp::from_unix(131)),
        )
        .unwrap();
        s.record(
            &Attempt {
                id,
                channel: b.clone(),
                number: 1,
                at: t,
                outcome: Outcome::Permanent(Detail::Smtp(550)),
            },
            Next::Failed(FailReason::Refused),
        )
        .unwrap();
        assert_eq!(s.next_due().unwrap(), Some(Timestamp::from_unix(131)));
        // A finished delivery takes no further attempt.
        let late = Attempt {
            id,
            channel: b.clone(),
            number: 2,
            at: t,
            outcome: Outcome::Delivered(Detail::Smtp(250)),
        };
        assert!(s.record(&late, Next::Delivered).is_err());
        drop(s);

        // Reopened: the record survives.
        let s = SqliteAlertStore::open(&path).unwrap();
        let d = s.deliveries(id).unwrap();
        assert_eq!(
            d,
            vec![
                Delivery {
                    channel: b,
                    attempts: 1,
                    state: DeliveryState::Failed {
                        at: t,
                        reason: FailReason::Refused
                    }
                },
                Delivery {
                    channel: a,
                    attempts: 1,
                    state: DeliveryState::Pending {
                        next_at: Timestamp::from_unix(131)
                    }
                },
            ]
        );
        assert_eq!(s.attempts(id).unwrap().len(), 2);
        assert_eq!(s.alert(id).unwrap(), Some(alert()));
        assert_eq!(s.alert(id + 1).unwrap(), None);
    }

    #[test]
    fn newer_schema_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        assert!(matches!(
            SqliteAlertStore::open(&path),
            Err(AlertStoreError::NewerSchema { found: 99, .. })
        ));
    }
}
