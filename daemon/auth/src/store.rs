//! The store seam: a narrow trait of typed records, and its one
//! implementation, embedded SQLite ([`crate::sqlite::SqliteStore`]). No SQL
//! exists outside `sqlite.rs`.
//!
//! Everything here is owned by the privileged worker. The store holds password
//! hashes, TOTP secrets and recovery-code keys: its file is created 0600 and
//! lives in the worker's state directory.

use crate::breakglass::BreakGlassRequest;
use crate::ids::{BreakGlassId, SessionId, TokenId, UserId, UserName};
use crate::lockout::LockState;
use crate::password::PasswordHash;
use crate::privilege::Role;
use crate::recovery::StoredRecovery;
use crate::session::SessionRecord;
use crate::time::Timestamp;
use crate::token::ApiTokenRecord;
use crate::totp::TotpSecret;
use std::path::PathBuf;

/// A user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub name: UserName,
    pub role: Role,
    /// The `emergency` grant: may request break-glass elevation.
    pub emergency: bool,
    pub disabled: bool,
    pub created: Timestamp,
}

/// A user's credentials (one row per user). `Debug` shows no secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub password: PasswordHash,
    pub password_set: Timestamp,
    /// Set for one-time passwords (admin reset, console recovery, `user add`
    /// without a password): only a password change is allowed until changed.
    pub must_change_password: bool,
    pub totp: TotpSecret,
    /// The last accepted TOTP step (replay defence).
    pub totp_last_step: Option<u64>,
    pub recovery: StoredRecovery,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("auth database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot secure auth database file {path}: {source}")]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a user named {0} already exists")]
    NameTaken(UserName),
    #[error("auth database row is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "auth database was written by a newer lethe (schema {found}, this build knows {known})"
    )]
    NewerSchema { found: i64, known: i64 },
}

/// The narrow seam between the authenticator and its persistence.
pub trait AuthStore {
    // users
    fn insert_user(&mut self, u: &UserRecord, c: &Credentials) -> Result<(), StoreError>;
    fn update_user(&mut self, u: &UserRecord) -> Result<(), StoreError>;
    fn delete_user(&mut self, id: UserId) -> Result<(), StoreError>;
    fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError>;
    fn user_by_name(&self, name: &UserName) -> Result<Option<UserRecord>, StoreError>;
    fn users(&self) -> Result<Vec<UserRecord>, StoreError>;

    // credentials
    fn credentials(&self, user: UserId) -> Result<Option<Credentials>, StoreError>;
    fn put_credentials(&mut self, user: UserId, c: &Credentials) -> Result<(), StoreError>;
    /// Previous password hashes, newest first.
    fn password_history(&self, user: UserId) -> Result<Vec<PasswordHash>, StoreError>;
    /// Records `old` as the newest previous password, keeping `keep` entries.
    fn push_password_history(
        &mut self,
        user: UserId,
        old: &PasswordHash,
        at: Timestamp,
        keep: usize,
    ) -> Result<(), StoreError>;

    // soft lock
    fn lock_state(&self, user: UserId) -> Result<LockState, StoreError>;
    fn put_lock_state(&mut self, user: UserId, s: &LockState) -> Result<(), StoreError>;
    /// Users with a lock recorded (ended or not).
    fn locked_users(&self) -> Result<Vec<(UserId, LockState)>, StoreError>;

    // sessions
    fn insert_session(&mut self, s: &SessionRecord) -> Result<(), StoreError>;
    fn session_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError>;
    fn update_session(&mut self, s: &SessionRecord) -> Result<(), StoreError>;
    fn delete_session(&mut self, id: SessionId) -> Result<(), StoreError>;
    fn sessions_of(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError>;
    fn sessions(&self) -> Result<Vec<SessionRecord>, StoreError>;

    // API tokens
    fn insert_token(&mut self, t: &ApiTokenRecord) -> Result<(), StoreError>;
    fn token(&self, id: TokenId) -> Result<Option<ApiTokenRecord>, StoreError>;
    fn update_token(&mut self, t: &ApiTokenRecord) -> Result<(), StoreError>;
    fn tokens_of(&self, owner: UserId) -> Result<Vec<ApiTokenRecord>, StoreError>;

    // break-glass
    fn insert_break_glass(&mut self, r: &BreakGlassRequest) -> Result<(), StoreError>;
    fn update_break_glass(&mut self, r: &BreakGlassRequest) -> Result<(), StoreError>;
    fn break_glass(&self, id: BreakGlassId) -> Result<Option<BreakGlassRequest>, StoreError>;
    /// Requests still pending, active or awaiting review.
    fn open_break_glass(&self) -> Result<Vec<BreakGlassRequest>, StoreError>;

    // breached-password list additions (append-only)
    /// Appends the words not yet present; returns how many were new.
    fn badlist_append(&mut self, words: &[String], at: Timestamp) -> Result<usize, StoreError>;
    fn badlist(&self) -> Result<Vec<String>, StoreError>;
}
