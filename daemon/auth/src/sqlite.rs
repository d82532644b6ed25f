//! The embedded SQLite implementation of [`AuthStore`] (rusqlite, bundled
//! SQLite, as `lethe-store`). The only file with SQL in this crate.
//!
//! - One database file, created mode 0600, WAL journal (SQLite creates the
//!   `-wal`/`-shm` files with the database's permissions).
//! - Foreign keys cascade a user's removal to credentials, history, lock
//!   state, sessions and tokens. Break-glass records are kept (the audit trail
//!   needs them).
//! - The breached-password table is append-only: triggers abort any UPDATE or
//!   DELETE on it.

use crate::breakglass::BreakGlassRequest;
use crate::ids::{BreakGlassId, SessionId, TokenId, UserId, UserName};
use crate::lockout::LockState;
use crate::password::PasswordHash;
use crate::privilege::Role;
use crate::recovery::StoredRecovery;
use crate::secret::SecretBytes;
use crate::session::{ReauthRecord, SessionRecord};
use crate::store::{AuthStore, Credentials, StoreError, UserRecord};
use crate::time::Timestamp;
use crate::token::ApiTokenRecord;
use crate::totp::TotpSecret;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    emergency   INTEGER NOT NULL,
    disabled    INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    user_id         TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    password        TEXT NOT NULL,
    password_set_ms INTEGER NOT NULL,
    must_change     INTEGER NOT NULL,
    totp_secret     BLOB NOT NULL,
    totp_last_step  INTEGER,
    recovery_key    BLOB NOT NULL,
    recovery_slots  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS password_history (
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    set_ms   INTEGER NOT NULL,
    password TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS lockout (
    user_id         TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    failures        INTEGER NOT NULL,
    last_failure_ms INTEGER,
    locked_until_ms INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash     BLOB NOT NULL UNIQUE,
    created_ms     INTEGER NOT NULL,
    last_action_ms INTEGER NOT NULL,
    idle_ms        INTEGER NOT NULL,
    expires_ms     INTEGER NOT NULL,
    source         TEXT,
    reauth         TEXT,
    elevation      TEXT,
    must_change    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
CREATE TABLE IF NOT EXISTS api_tokens (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    role         TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    revoked_ms   INTEGER,
    last_used_ms INTEGER
);
CREATE TABLE IF NOT EXISTS break_glass (
    id        TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    open      INTEGER NOT NULL,
    record    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS badlist (
    word     TEXT PRIMARY KEY,
    added_ms INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS badlist_no_update BEFORE UPDATE ON badlist
    BEGIN SELECT RAISE(ABORT, 'the breached-password list is append-only'); END;
CREATE TRIGGER IF NOT EXISTS badlist_no_delete BEFORE DELETE ON badlist
    BEGIN SELECT RAISE(ABORT, 'the breached-password list is append-only'); END;
"#;

/// The SQLite auth store.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Opens (creating, mode 0600) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let perm_err = |source| StoreError::Permissions {
            path: path.to_owned(),
            source,
        };
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(perm_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(perm_err)?;
        let conn = Connection::open(path).map_err(|source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        })?;
        let s = SqliteStore {
            conn,
            path: path.to_owned(),
        };
        s.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| s.err(e))?;
        s.init()?;
        Ok(s)
    }

    /// A private in-memory database (tests, tools).
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let s = SqliteStore { conn, path };
        s.init()?;
        Ok(s)
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn init(&self) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| self.err(e))?;
        let found: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found,
                known: SCHEMA_VERSION,
            });
        }
        self.conn.execute_batch(SCHEMA).map_err(|e| self.err(e))?;
        self.conn
            .pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

fn uid(s: String) -> Result<UserId, StoreError> {
    UserId::parse(&s).ok_or_else(|| corrupt(format!("user id {s:?}")))
}

fn role(s: String) -> Result<Role, StoreError> {
    Role::parse(&s).ok_or_else(|| corrupt(format!("role {s:?}")))
}

fn opt_ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_sql)
}

fn step_to_sql(s: Option<u64>) -> Option<i64> {
    s.map(|s| i64::try_from(s).unwrap_or(i64::MAX))
}

fn slots_to_blob(r: &StoredRecovery) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.slots.len() * 33);
    for s in &r.slots {
        match s {
            Some(h) => {
                out.push(1);
                out.extend_from_slice(h);
            }
            None => out.extend_from_slice(&[0u8; 33]),
        }
    }
    out
}

fn slots_from_blob(b: &[u8]) -> Result<Vec<Option<[u8; 32]>>, StoreError> {
    if b.len() % 33 != 0 {
        return Err(corrupt("recovery slots length"));
    }
    b.chunks(33)
        .map(|c| match c[0] {
            0 => Ok(None),
            1 => Ok(Some(c[1..].try_into().expect("32 bytes"))),
            _ => Err(corrupt("recovery slot flag")),
        })
        .collect()
}

/// Raw user row (mapping errors are converted after the query).
type UserRow = (String, String, String, bool, bool, i64);

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn user_from(row: UserRow) -> Result<UserRecord, StoreError> {
    let (id, name, r, emergency, disabled, created) = row;
    Ok(UserRecord {
        id: uid(id)?,
        name: UserName::parse(&name).map_err(corrupt)?,
        role: role(r)?,
        emergency,
        disabled,
        created: Timestamp::from_sql(created),
    })
}

const USER_COLS: &str = "id, name, role, emergency, disabled, created_ms";

type SessionRow = (
    String,
    String,
    Vec<u8>,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

const SESSION_COLS: &str = "id, user_id, token_hash, created_ms, last_action_ms, idle_ms, expires_ms, source, reauth, elevation, must_change";

fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
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
    ))
}

fn session_from(row: SessionRow) -> Result<SessionRecord, StoreError> {
    let (id, user, hash, created, last, idle, expires, source, reauth, elevation, must_change) =
        row;
    Ok(SessionRecord {
        id: SessionId::parse(&id).ok_or_else(|| corrupt("session id"))?,
        user: uid(user)?,
        token_hash: hash.try_into().map_err(|_| corrupt("session token hash"))?,
        created: Timestamp::from_sql(created),
        last_action: Timestamp::from_sql(last),
        idle_timeout: Duration::from_millis(u64::try_from(idle).unwrap_or(0)),
        expires: Timestamp::from_sql(expires),
        source: source
            .map(|s| s.parse().map_err(|_| corrupt("session source")))
            .transpose()?,
        reauth: reauth
            .map(|j| serde_json::from_str::<ReauthRecord>(&j).map_err(corrupt))
            .transpose()?,
        elevation: elevation
            .map(|s| BreakGlassId::parse(&s).ok_or_else(|| corrupt("session elevation")))
            .transpose()?,
        must_change_password: must_change,
    })
}

type TokenRow = (
    String,
    String,
    String,
    String,
    Vec<u8>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
);

const TOKEN_COLS: &str =
    "id, owner, label, role, secret_hash, created_ms, expires_ms, revoked_ms, last_used_ms";

fn token_row(r: &Row<'_>) -> rusqlite::Result<TokenRow> {
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
    ))
}

fn token_from(row: TokenRow) -> Result<ApiTokenRecord, StoreError> {
    let (id, owner, label, r, hash, created, expires, revoked, used) = row;
    Ok(ApiTokenRecord {
        id: TokenId::parse(&id).ok_or_else(|| corrupt("token id"))?,
        owner: uid(owner)?,
        label,
        role: role(r)?,
        secret_hash: hash.try_into().map_err(|_| corrupt("token hash"))?,
        created: Timestamp::from_sql(created),
        expires: Timestamp::from_sql(expires),
        revoked: opt_ts(revoked),
        last_used: opt_ts(used),
    })
}

impl SqliteStore {
    fn query_users(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let mut st = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(p, user_row)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter().map(user_from).collect()
    }

    fn query_sessions(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut st = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(p, session_row)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter().map(session_from).collect()
    }

    fn query_tokens(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<ApiTokenRecord>, StoreError> {
        let mut st = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(p, token_row)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter().map(token_from).collect()
    }

    fn write_credentials(
        conn: &Connection,
        user: UserId,
        c: &Credentials,
    ) -> rusqlite::Result<usize> {
        conn.execute(
            "INSERT INTO credentials (user_id, password, password_set_ms, must_change, totp_secret, totp_last_step, recovery_key, recovery_slots)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(user_id) DO UPDATE SET password = ?2, password_set_ms = ?3, must_change = ?4,
                 totp_secret = ?5, totp_last_step = ?6, recovery_key = ?7, recovery_slots = ?8",
            params![
                user.to_string(),
                c.password.as_phc(),
                c.password_set.to_sql(),
                c.must_change_password,
                c.totp.expose(),
                step_to_sql(c.totp_last_step),
                c.recovery.key.expose(),
                slots_to_blob(&c.recovery),
            ],
        )
    }
}

impl AuthStore for SqliteStore {
    fn insert_user(&mut self, u: &UserRecord, c: &Credentials) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|source| StoreError::Sqlite {
                path: path.clone(),
                source,
            })?;
        let r = tx.execute(
            "INSERT INTO users (id, name, role, emergency, disabled, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![u.id.to_string(), u.name.as_str(), u.role.name(), u.emergency, u.disabled, u.created.to_sql()],
        );
        match r {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(StoreError::NameTaken(u.name.clone()));
            }
            Err(source) => return Err(StoreError::Sqlite { path, source }),
            Ok(_) => {}
        }
        Self::write_credentials(&tx, u.id, c).map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        tx.commit()
            .map_err(|source| StoreError::Sqlite { path, source })
    }

    fn update_user(&mut self, u: &UserRecord) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE users SET name = ?2, role = ?3, emergency = ?4, disabled = ?5 WHERE id = ?1",
                params![u.id.to_string(), u.name.as_str(), u.role.name(), u.emergency, u.disabled],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn delete_user(&mut self, id: UserId) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM users WHERE id = ?1", params![id.to_string()])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .query_users(
                &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
                params![id.to_string()],
            )?
            .pop())
    }

    fn user_by_name(&self, name: &UserName) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .query_users(
                &format!("SELECT {USER_COLS} FROM users WHERE name = ?1"),
                params![name.as_str()],
            )?
            .pop())
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.query_users(&format!("SELECT {USER_COLS} FROM users ORDER BY name"), [])
    }

    fn credentials(&self, user: UserId) -> Result<Option<Credentials>, StoreError> {
        type Raw = (String, i64, bool, Vec<u8>, Option<i64>, Vec<u8>, Vec<u8>);
        let raw: Option<Raw> = self
            .conn
            .query_row(
                "SELECT password, password_set_ms, must_change, totp_secret, totp_last_step, recovery_key, recovery_slots
                 FROM credentials WHERE user_id = ?1",
                params![user.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((pw, set, must_change, totp, step, key, slots)) = raw else {
            return Ok(None);
        };
        Ok(Some(Credentials {
            password: PasswordHash::from_phc(pw).map_err(corrupt)?,
            password_set: Timestamp::from_sql(set),
            must_change_password: must_change,
            totp: TotpSecret::from_bytes(totp),
            totp_last_step: step.map(|s| u64::try_from(s).unwrap_or(0)),
            recovery: StoredRecovery {
                key: SecretBytes::new(key),
                slots: slots_from_blob(&slots)?,
            },
        }))
    }

    fn put_credentials(&mut self, user: UserId, c: &Credentials) -> Result<(), StoreError> {
        Self::write_credentials(&self.conn, user, c).map_err(|e| self.err(e))?;
        Ok(())
    }

    fn password_history(&self, user: UserId) -> Result<Vec<PasswordHash>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT password FROM password_history WHERE user_id = ?1 ORDER BY seq DESC")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![user.to_string()], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|s| PasswordHash::from_phc(s).map_err(corrupt))
            .collect()
    }

    fn push_password_history(
        &mut self,
        user: UserId,
        old: &PasswordHash,
        at: Timestamp,
        keep: usize,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "INSERT INTO password_history (user_id, set_ms, password) VALUES (?1, ?2, ?3)",
            params![user.to_string(), at.to_sql(), old.as_phc()],
        )
        .map_err(e)?;
        tx.execute(
            "DELETE FROM password_history WHERE user_id = ?1 AND seq NOT IN
               (SELECT seq FROM password_history WHERE user_id = ?1 ORDER BY seq DESC LIMIT ?2)",
            params![user.to_string(), i64::try_from(keep).unwrap_or(i64::MAX)],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    fn lock_state(&self, user: UserId) -> Result<LockState, StoreError> {
        let raw: Option<(i64, Option<i64>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT failures, last_failure_ms, locked_until_ms FROM lockout WHERE user_id = ?1",
                params![user.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(raw
            .map(|(f, l, u)| LockState {
                failures: u32::try_from(f).unwrap_or(u32::MAX),
                last_failure: opt_ts(l),
                locked_until: opt_ts(u),
            })
            .unwrap_or_default())
    }

    fn put_lock_state(&mut self, user: UserId, s: &LockState) -> Result<(), StoreError> {
        if *s == LockState::default() {
            self.conn
                .execute(
                    "DELETE FROM lockout WHERE user_id = ?1",
                    params![user.to_string()],
                )
                .map_err(|e| self.err(e))?;
        } else {
            self.conn
                .execute(
                    "INSERT INTO lockout (user_id, failures, last_failure_ms, locked_until_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(user_id) DO UPDATE SET failures = ?2, last_failure_ms = ?3, locked_until_ms = ?4",
                    params![
                        user.to_string(),
                        i64::from(s.failures),
                        s.last_failure.map(Timestamp::to_sql),
                        s.locked_until.map(Timestamp::to_sql)
                    ],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn locked_users(&self) -> Result<Vec<(UserId, LockState)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT user_id, failures, last_failure_ms, locked_until_ms FROM lockout WHERE locked_until_ms IS NOT NULL")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(u, f, l, until)| {
                Ok((
                    uid(u)?,
                    LockState {
                        failures: u32::try_from(f).unwrap_or(u32::MAX),
                        last_failure: opt_ts(l),
                        locked_until: opt_ts(until),
                    },
                ))
            })
            .collect()
    }

    fn insert_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
        let reauth = s
            .reauth
            .map(|r| serde_json::to_string(&r))
            .transpose()
            .map_err(corrupt)?;
        self.conn
            .execute(
                &format!("INSERT INTO sessions ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                params![
                    s.id.to_string(),
                    s.user.to_string(),
                    &s.token_hash[..],
                    s.created.to_sql(),
                    s.last_action.to_sql(),
                    ms(s.idle_timeout),
                    s.expires.to_sql(),
                    s.source.map(|a| a.to_string()),
                    reauth,
                    s.elevation.map(|e| e.to_string()),
                    s.must_change_password,
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn session_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .query_sessions(
                &format!("SELECT {SESSION_COLS} FROM sessions WHERE token_hash = ?1"),
                params![&hash[..]],
            )?
            .pop())
    }

    fn update_session(&mut self, s: &SessionRecord) -> Result<(), StoreError> {
        let reauth = s
            .reauth
            .map(|r| serde_json::to_string(&r))
            .transpose()
            .map_err(corrupt)?;
        self.conn
            .execute(
                "UPDATE sessions SET last_action_ms = ?2, reauth = ?3, elevation = ?4, must_change = ?5 WHERE id = ?1",
                params![
                    s.id.to_string(),
                    s.last_action.to_sql(),
                    reauth,
                    s.elevation.map(|e| e.to_string()),
                    s.must_change_password
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn delete_session(&mut self, id: SessionId) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM sessions WHERE id = ?1",
                params![id.to_string()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn sessions_of(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError> {
        self.query_sessions(
            &format!("SELECT {SESSION_COLS} FROM sessions WHERE user_id = ?1 ORDER BY created_ms"),
            params![user.to_string()],
        )
    }

    fn sessions(&self) -> Result<Vec<SessionRecord>, StoreError> {
        self.query_sessions(
            &format!("SELECT {SESSION_COLS} FROM sessions ORDER BY created_ms"),
            [],
        )
    }

    fn insert_token(&mut self, t: &ApiTokenRecord) -> Result<(), StoreError> {
        self.conn
            .execute(
                &format!("INSERT INTO api_tokens ({TOKEN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    t.id.to_string(),
                    t.owner.to_string(),
                    t.label,
                    t.role.name(),
                    &t.secret_hash[..],
                    t.created.to_sql(),
                    t.expires.to_sql(),
                    t.revoked.map(Timestamp::to_sql),
                    t.last_used.map(Timestamp::to_sql),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn token(&self, id: TokenId) -> Result<Option<ApiTokenRecord>, StoreError> {
        Ok(self
            .query_tokens(
                &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?1"),
                params![id.to_string()],
            )?
            .pop())
    }

    fn update_token(&mut self, t: &ApiTokenRecord) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE api_tokens SET revoked_ms = ?2, last_used_ms = ?3 WHERE id = ?1",
                params![
                    t.id.to_string(),
                    t.revoked.map(Timestamp::to_sql),
                    t.last_used.map(Timestamp::to_sql)
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn tokens_of(&self, owner: UserId) -> Result<Vec<ApiTokenRecord>, StoreError> {
        self.query_tokens(
            &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE owner = ?1 ORDER BY created_ms"),
            params![owner.to_string()],
        )
    }

    fn insert_break_glass(&mut self, r: &BreakGlassRequest) -> Result<(), StoreError> {
        let j = serde_json::to_string(r).map_err(corrupt)?;
        self.conn
            .execute(
                "INSERT INTO break_glass (id, requester, open, record) VALUES (?1, ?2, ?3, ?4)",
                params![r.id.to_string(), r.requester.to_string(), r.is_open(), j],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn update_break_glass(&mut self, r: &BreakGlassRequest) -> Result<(), StoreError> {
        let j = serde_json::to_string(r).map_err(corrupt)?;
        self.conn
            .execute(
                "UPDATE break_glass SET open = ?2, record = ?3 WHERE id = ?1",
                params![r.id.to_string(), r.is_open(), j],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn break_glass(&self, id: BreakGlassId) -> Result<Option<BreakGlassRequest>, StoreError> {
        let j: Option<String> = self
            .conn
            .query_row(
                "SELECT record FROM break_glass WHERE id = ?1",
                params![id.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        j.map(|j| serde_json::from_str(&j).map_err(corrupt))
            .transpose()
    }

    fn open_break_glass(&self) -> Result<Vec<BreakGlassRequest>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT record FROM break_glass WHERE open = 1 ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|j| serde_json::from_str(&j).map_err(corrupt))
            .collect()
    }

    fn badlist_append(&mut self, words: &[String], at: Timestamp) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let mut added = 0;
        for w in words {
            added += tx
                .execute(
                    "INSERT OR IGNORE INTO badlist (word, added_ms) VALUES (?1, ?2)",
                    params![w, at.to_sql()],
                )
                .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(added)
    }

    fn badlist(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT word FROM badlist ORDER BY word")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breakglass::BreakGlassPolicy;
    use crate::entropy::TestEntropy;
    use crate::ids::{ReauthId, UserName};
    use crate::password::hash::{hash_password, HashParams};
    use crate::session::SecondFactorKind;

    fn user(e: &mut TestEntropy, name: &str) -> (UserRecord, Credentials) {
        let (_, recovery) = crate::recovery::generate(e);
        (
            UserRecord {
                id: UserId::generate(e),
                name: UserName::parse(name).unwrap(),
                role: Role::Operator,
                emergency: true,
                disabled: false,
                created: Timestamp::from_unix_secs(5),
            },
            Credentials {
                password: hash_password("pw", &HashParams::TEST_MINIMUM, e).unwrap(),
                password_set: Timestamp::from_unix_secs(5),
                must_change_password: true,
                totp: TotpSecret::generate(e),
                totp_last_step: Some(u64::from(u32::MAX) + 7),
                recovery,
            },
        )
    }

    /// safeguard: 164.312(a)(2)(i)
    #[test]
    fn records_round_trip_and_removal_cascades() {
        let mut e = TestEntropy(21);
        let mut s = SqliteStore::open_in_memory().unwrap();
        let (u, c) = user(&mut e, "ann");
        s.insert_user(&u, &c).unwrap();
        assert!(matches!(
            s.insert_user(
                &UserRecord {
                    id: UserId::generate(&mut e),
                    ..u.clone()
                },
                &c
            ),
            Err(StoreError::NameTaken(_))
        ));
        assert_eq!(s.user(u.id).unwrap(), Some(u.clone()));
        assert_eq!(s.user_by_name(&u.name).unwrap(), Some(u.clone()));
        assert_eq!(s.credentials(u.id).unwrap(), Some(c.clone()));
        let session = SessionRecord {
            id: SessionId::generate(&mut e),
            user: u.id,
            token_hash: [7; 32],
            created: Timestamp::from_unix_secs(10),
            last_action: Timestamp::from_unix_ms(10_500),
            idle_timeout: Duration::from_secs(600),
            expires: Timestamp::from_unix_secs(9000),
            source: Some("2001:db8::1".parse().unwrap()),
            reauth: Some(ReauthRecord {
                id: ReauthId::generate(&mut e),
                user: u.id,
                session: SessionId::generate(&mut e),
                at: Timestamp::from_unix_secs(11),
                second_factor: SecondFactorKind::RecoveryCode,
            }),
            elevation: Some(BreakGlassId::generate(&mut e)),
            must_change_password: true,
        };
        s.insert_session(&session).unwrap();
        assert_eq!(
            s.session_by_token_hash(&[7; 32]).unwrap(),
            Some(session.clone())
        );
        let token = ApiTokenRecord {
            id: TokenId::generate(&mut e),
            owner: u.id,
            label: "export".into(),
            role: Role::Auditor,
            secret_hash: [9; 32],
            created: Timestamp::from_unix_secs(1),
            expires: Timestamp::from_unix_secs(2),
            revoked: None,
            last_used: Some(Timestamp::from_unix_secs(1)),
        };
        s.insert_token(&token).unwrap();
        assert_eq!(s.token(token.id).unwrap(), Some(token.clone()));
        let lock = LockState {
            failures: 4,
            last_failure: Some(Timestamp::from_unix_secs(3)),
            locked_until: Some(Timestamp::from_unix_secs(33)),
        };
        s.put_lock_state(u.id, &lock).unwrap();
        assert_eq!(s.lock_state(u.id).unwrap(), lock);
        assert_eq!(s.locked_users().unwrap(), vec![(u.id, lock)]);
        for i in 0..4 {
            let h = hash_password(&format!("old{i}"), &HashParams::TEST_MINIMUM, &mut e).unwrap();
            s.push_password_history(u.id, &h, Timestamp::from_unix_secs(i), 2)
                .unwrap();
        }
        let hist = s.password_history(u.id).unwrap();
        assert_eq!(hist.len(), 2);
        assert!(
            crate::password::hash::verify_password("old3", &hist[0]).unwrap(),
            "newest first"
        );
        let bg = BreakGlassRequest::new(
            BreakGlassId::generate(&mut e),
            u.id,
            "why",
            Timestamp::from_unix_secs(1),
            &BreakGlassPolicy::default(),
        )
        .unwrap();
        s.insert_break_glass(&bg).unwrap();
        assert_eq!(s.open_break_glass().unwrap(), vec![bg.clone()]);
        // removal cascades to everything but the break-glass record
        s.delete_user(u.id).unwrap();
        assert_eq!(s.credentials(u.id).unwrap(), None);
        assert_eq!(s.session_by_token_hash(&[7; 32]).unwrap(), None);
        assert_eq!(s.token(token.id).unwrap(), None);
        assert_eq!(s.lock_state(u.id).unwrap(), LockState::default());
        assert!(s.password_history(u.id).unwrap().is_empty());
        assert_eq!(s.break_glass(bg.id).unwrap(), Some(bg));
    }

    /// safeguard: rule:secrets-in-worker
    #[test]
    fn newer_schema_is_refused_and_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        drop(SqliteStore::open(&path).unwrap());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(SqliteStore::open(&path).unwrap());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "re-secured"
        );
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StoreError::NewerSchema {
                found: 99,
                known: 1
            })
        ));
    }

    #[test]
    fn corrupt_rows_are_errors_not_panics() {
        let mut e = TestEntropy(22);
        let mut s = SqliteStore::open_in_memory().unwrap();
        let (u, c) = user(&mut e, "bea");
        s.insert_user(&u, &c).unwrap();
        s.conn()
            .execute("UPDATE credentials SET password = 'plaintext'", [])
            .unwrap();
        assert!(matches!(s.credentials(u.id), Err(StoreError::Corrupt(_))));
        s.conn()
            .execute("UPDATE users SET role = 'root'", [])
            .unwrap();
        assert!(matches!(s.user(u.id), Err(StoreError::Corrupt(_))));
    }
}
