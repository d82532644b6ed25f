//! The embedded SQLite store (`audit.db` in the state directory).
//!
//! Three STRICT tables: `meta` (the origin), `entries` (index, leaf, leaf
//! hash, and `time`/`user_id`/`action` columns indexed for export filters)
//! and `checkpoints` (size and signed note, in append order). Triggers abort
//! any UPDATE or DELETE, so no code path, ours or a stray `sqlite3` session,
//! edits the log by accident; someone who edits the file directly is what
//! [`crate::verify`] is for. WAL mode, `synchronous=FULL`: an append is on
//! disk when it returns. The file is created 0600.

use crate::store::{AuditStore, EntryFilter, StoreError, StoredCheckpoint, StoredEntry};
use rusqlite::types::Value as SqlValue;
use rusqlite::{
    params, params_from_iter, Connection, OpenFlags, OptionalExtension, TransactionBehavior,
};
use std::ops::ControlFlow;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// File name of the audit database inside the state directory.
pub const DB_FILE: &str = "audit.db";

/// The schema this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE entries (
    idx INTEGER PRIMARY KEY CHECK (idx >= 0),
    leaf BLOB NOT NULL,
    leaf_hash BLOB NOT NULL,
    time INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    action TEXT NOT NULL
) STRICT;
CREATE INDEX entries_time ON entries (time);
CREATE INDEX entries_user ON entries (user_id, time);
CREATE INDEX entries_action ON entries (action, time);
CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    size INTEGER NOT NULL CHECK (size >= 0),
    note TEXT NOT NULL
) STRICT;
CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// An audit log in one SQLite database.
pub struct SqliteStore {
    conn: Connection,
    name: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("name", &self.name)
            .finish()
    }
}

fn backend(name: &str, doing: &str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let what = format!("{name}: {doing}");
    move |e| StoreError::Backend {
        what,
        source: Box::new(e),
    }
}

impl SqliteStore {
    /// Open (creating if needed, mode 0600) the database at `path` for
    /// writing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        if !path.exists() {
            // Create the file ourselves so its mode is 0600 whatever the umask;
            // SQLite gives its -wal and -shm files the same mode.
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|e| StoreError::Backend {
                    what: format!("{name}: creating"),
                    source: Box::new(e),
                })?;
        }
        let conn = Connection::open(path).map_err(backend(&name, "opening"))?;
        Self::init(conn, name)
    }

    /// Open an existing database without writing to it (verify, export).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        if !path.exists() {
            return Err(StoreError::Missing(name));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(backend(&name, "opening read-only"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend(&name, "setting the busy timeout"))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend(&name, "reading the schema version"))?;
        if version == 0 {
            return Err(StoreError::Missing(name));
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        Ok(SqliteStore { conn, name })
    }

    /// A private in-memory database (tests, tools).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(backend(":memory:", "opening"))?;
        Self::init(conn, ":memory:".into())
    }

    fn init(conn: Connection, name: String) -> Result<Self, StoreError> {
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
        )
        .map_err(backend(&name, "setting pragmas"))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend(&name, "reading the schema version"))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if version == 0 {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .or_else(|e| {
                // Another process may have created the schema first.
                let _ = conn.execute_batch("ROLLBACK;");
                let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                if v == SCHEMA_VERSION {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(backend(&name, "creating the schema"))?;
        }
        Ok(SqliteStore { conn, name })
    }

    /// The raw connection, for tests that play the attacker.
    #[cfg(test)]
    pub(crate) fn raw(&self) -> &Connection {
        &self.conn
    }

    fn next_index(conn: &Connection) -> rusqlite::Result<u64> {
        conn.query_row("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n.max(0) as u64)
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn row_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEntry> {
    Ok(StoredEntry {
        index: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(u64::MAX),
        leaf: r.get(1)?,
        leaf_hash: r.get(2)?,
        time: r.get(3)?,
        user_id: r.get(4)?,
        action: r.get(5)?,
    })
}

impl AuditStore for SqliteStore {
    fn origin(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'origin'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend(&self.name, "reading the origin"))
    }

    fn create(&mut self, origin: &str, empty: &StoredCheckpoint) -> Result<(), StoreError> {
        let name = self.name.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(&name, "starting a transaction"))?;
        let existing: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'origin'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend(&name, "reading the origin"))?;
        if let Some(o) = existing {
            return Err(StoreError::AlreadyCreated(o));
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('origin', ?1)",
            [origin],
        )
        .map_err(backend(&name, "storing the origin"))?;
        tx.execute(
            "INSERT INTO checkpoints (size, note) VALUES (?1, ?2)",
            params![to_i64(empty.size), empty.note],
        )
        .map_err(backend(&name, "storing the first checkpoint"))?;
        tx.commit().map_err(backend(&name, "committing"))
    }

    fn len(&self) -> Result<u64, StoreError> {
        Self::next_index(&self.conn).map_err(backend(&self.name, "counting entries"))
    }

    fn append(
        &mut self,
        entry: &StoredEntry,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        let name = self.name.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(&name, "starting a transaction"))?;
        let next = Self::next_index(&tx).map_err(backend(&name, "counting entries"))?;
        if next != entry.index {
            return Err(StoreError::Conflict {
                expected: entry.index,
                found: next,
            });
        }
        tx.execute(
            "INSERT INTO entries (idx, leaf, leaf_hash, time, user_id, action)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                to_i64(entry.index),
                entry.leaf,
                entry.leaf_hash,
                entry.time,
                entry.user_id,
                entry.action
            ],
        )
        .map_err(backend(&name, "appending an entry"))?;
        tx.execute(
            "INSERT INTO checkpoints (size, note) VALUES (?1, ?2)",
            params![to_i64(checkpoint.size), checkpoint.note],
        )
        .map_err(backend(&name, "appending a checkpoint"))?;
        tx.commit().map_err(backend(&name, "committing"))
    }

    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.conn
            .query_row(
                "SELECT size, note FROM checkpoints ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(StoredCheckpoint {
                        size: r.get::<_, i64>(0)?.max(0) as u64,
                        note: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(backend(&self.name, "reading the latest checkpoint"))
    }

    fn entry(&self, index: u64) -> Result<Option<StoredEntry>, StoreError> {
        self.conn
            .query_row(
                "SELECT idx, leaf, leaf_hash, time, user_id, action FROM entries WHERE idx = ?1",
                [to_i64(index)],
                row_entry,
            )
            .optional()
            .map_err(backend(&self.name, "reading an entry"))
    }

    fn scan_entries(
        &self,
        filter: &EntryFilter,
        visit: &mut dyn FnMut(StoredEntry) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let mut sql =
            String::from("SELECT idx, leaf, leaf_hash, time, user_id, action FROM entries");
        let mut args: Vec<SqlValue> = Vec::new();
        let mut clauses: Vec<String> = Vec::new();
        if let Some(s) = filter.since {
            args.push(SqlValue::Integer(s));
            clauses.push(format!("time >= ?{}", args.len()));
        }
        if let Some(u) = filter.until {
            args.push(SqlValue::Integer(u));
            clauses.push(format!("time < ?{}", args.len()));
        }
        if let Some(user) = &filter.user_id {
            args.push(SqlValue::Text(user.clone()));
            clauses.push(format!("user_id = ?{}", args.len()));
        }
        if !filter.actions.is_empty() {
            let mut marks = Vec::new();
            for a in &filter.actions {
                args.push(SqlValue::Text(a.clone()));
                marks.push(format!("?{}", args.len()));
            }
            clauses.push(format!("action IN ({})", marks.join(", ")));
        }
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY idx");
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(backend(&self.name, "reading entries"))?;
        let mut rows = stmt
            .query(params_from_iter(args))
            .map_err(backend(&self.name, "reading entries"))?;
        while let Some(r) = rows
            .next()
            .map_err(backend(&self.name, "reading entries"))?
        {
            let e = row_entry(r).map_err(backend(&self.name, "reading an entry"))?;
            if visit(e).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn scan_leaf_hashes(
        &self,
        visit: &mut dyn FnMut(u64, Vec<u8>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT idx, leaf_hash FROM entries ORDER BY idx")
            .map_err(backend(&self.name, "reading leaf hashes"))?;
        let mut rows = stmt
            .query([])
            .map_err(backend(&self.name, "reading leaf hashes"))?;
        while let Some(r) = rows
            .next()
            .map_err(backend(&self.name, "reading leaf hashes"))?
        {
            let idx: i64 = r
                .get(0)
                .map_err(backend(&self.name, "reading a leaf hash"))?;
            let hash: Vec<u8> = r
                .get(1)
                .map_err(backend(&self.name, "reading a leaf hash"))?;
            if visit(u64::try_from(idx).unwrap_or(u64::MAX), hash).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn scan_checkpoints(
        &self,
        visit: &mut dyn FnMut(StoredCheckpoint) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT size, note FROM checkpoints ORDER BY id")
            .map_err(backend(&self.name, "reading checkpoints"))?;
        let mut rows = stmt
            .query([])
            .map_err(backend(&self.name, "reading checkpoints"))?;
        while let Some(r) = rows
            .next()
            .map_err(backend(&self.name, "reading checkpoints"))?
        {
            let size: i64 = r
                .get(0)
                .map_err(backend(&self.name, "reading a checkpoint"))?;
            let note: String = r
                .get(1)
                .map_err(backend(&self.name, "reading a checkpoint"))?;
            let cp = StoredCheckpoint {
                size: size.max(0) as u64,
                note,
            };
            if visit(cp).is_break() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn row(index: u64) -> StoredEntry {
        StoredEntry {
            index,
            leaf: vec![index as u8; 3],
            leaf_hash: vec![0; 32],
            time: 1000 + index as i64,
            user_id: if index % 2 == 0 { "alice" } else { "bob" }.into(),
            action: if index % 3 == 0 {
                "job.started"
            } else {
                "job.ended"
            }
            .into(),
        }
    }

    fn cp(size: u64) -> StoredCheckpoint {
        StoredCheckpoint {
            size,
            note: format!("note {size}"),
        }
    }

    /// safeguard: 164.312(b)
    #[test]
    fn appends_in_order_refuses_conflicts_and_filters() {
        let mut s = SqliteStore::open_in_memory().unwrap();
        assert_eq!(s.origin().unwrap(), None);
        s.create("lethe/audit/t", &cp(0)).unwrap();
        assert!(matches!(
            s.create("lethe/audit/t", &cp(0)),
            Err(StoreError::AlreadyCreated(_))
        ));
        for i in 0..10 {
            s.append(&row(i), &cp(i + 1)).unwrap();
        }
        assert!(matches!(
            s.append(&row(5), &cp(6)),
            Err(StoreError::Conflict {
                expected: 5,
                found: 10
            })
        ));
        assert!(matches!(
            s.append(&row(11), &cp(12)),
            Err(StoreError::Conflict {
                expected: 11,
                found: 10
            })
        ));
        assert_eq!(s.len().unwrap(), 10);
        assert_eq!(s.latest_checkpoint().unwrap(), Some(cp(10)));
        assert_eq!(s.entry(4).unwrap(), Some(row(4)));
        assert_eq!(s.entry(10).unwrap(), None);

        let collect = |f: &EntryFilter| {
            let mut got = Vec::new();
            s.scan_entries(f, &mut |e| {
                got.push(e.index);
                ControlFlow::Continue(())
            })
            .unwrap();
            got
        };
        assert_eq!(
            collect(&EntryFilter::default()),
            (0..10).collect::<Vec<_>>()
        );
        let f = EntryFilter {
            since: Some(1002),
            until: Some(1008),
            user_id: Some("alice".into()),
            actions: vec!["job.started".into(), "job.ended".into()],
        };
        assert_eq!(collect(&f), vec![2, 4, 6]);
        let f = EntryFilter {
            actions: vec!["job.started".into()],
            ..Default::default()
        };
        assert_eq!(collect(&f), vec![0, 3, 6, 9]);
        // The filter's own predicate agrees with the SQL.
        for i in 0..10 {
            let r = row(i);
            assert_eq!(f.matches(r.time, &r.user_id, &r.action), i % 3 == 0);
        }
        let mut cps = 0;
        s.scan_checkpoints(&mut |_| {
            cps += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(cps, 11);
        // A reader can stop early.
        let mut seen = 0;
        s.scan_leaf_hashes(&mut |_, _| {
            seen += 1;
            if seen == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(seen, 3);
    }

    /// safeguard: 164.312(b), rule:audit-integrity
    #[test]
    fn updates_and_deletes_are_refused_by_the_database() {
        let mut s = SqliteStore::open_in_memory().unwrap();
        s.create("o", &cp(0)).unwrap();
        s.append(&row(0), &cp(1)).unwrap();
        for sql in [
            "UPDATE entries SET leaf = x'00'",
            "DELETE FROM entries",
            "UPDATE checkpoints SET note = 'x'",
            "DELETE FROM checkpoints",
            "UPDATE meta SET value = 'x'",
            "DELETE FROM meta",
        ] {
            let e = s.raw().execute(sql, []).unwrap_err();
            assert!(e.to_string().contains("append-only"), "{sql}: {e}");
        }
    }

    /// safeguard: rule:secrets-in-worker
    #[test]
    fn file_is_private_reopens_and_read_only_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        assert!(matches!(
            SqliteStore::open_read_only(&path),
            Err(StoreError::Missing(_))
        ));
        {
            let mut s = SqliteStore::open(&path).unwrap();
            s.create("o", &cp(0)).unwrap();
            s.append(&row(0), &cp(1)).unwrap();
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.len().unwrap(), 1);
        drop(s);
        let mut ro = SqliteStore::open_read_only(&path).unwrap();
        assert_eq!(ro.origin().unwrap().as_deref(), Some("o"));
        assert!(ro.append(&row(1), &cp(2)).is_err());
        // A SQLite file that is not an audit log.
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x);")
            .unwrap();
        assert!(matches!(
            SqliteStore::open_read_only(&other),
            Err(StoreError::Missing(_))
        ));
        // A newer schema is refused rather than misread.
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StoreError::NewerSchema { found: 99, .. })
        ));
    }
}
