//! Sessions saved by `lethe --server … login`, one file per appliance.
//!
//! The file holds the session cookie: whoever reads it can act as the user
//! until the session ends (idle timeout, absolute lifetime, logout), so it
//! is written 0600 in a 0700 directory, and removed on logout or as soon as
//! the appliance says the session has ended.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// One saved session.
#[derive(Serialize, Deserialize)]
pub struct SavedSession {
    /// `https://host:port`.
    pub server: String,
    /// Who logged in.
    pub user: String,
    /// The `__Host-lethe_session` cookie's value.
    pub cookie: Zeroizing<String>,
}

/// Where sessions are saved.
#[derive(Debug, Clone)]
pub struct SessionStore {
    dir: PathBuf,
}

/// A session file that could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is readable by other users (mode {mode:o}); a session file must be private: \
         remove it and log in again"
    )]
    NotPrivate { path: String, mode: u32 },
    #[error("{path} is not a session file: {detail}")]
    Damaged { path: String, detail: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SessionError + '_ {
    move |source| SessionError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A file name for a server: its host and port, nothing else.
pub fn file_name(server: &str) -> String {
    let rest = server.strip_prefix("https://").unwrap_or(server);
    let clean: String = rest
        .trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{clean}.json")
}

impl SessionStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `$LETHE_SESSION_DIR`, else `$XDG_STATE_HOME/lethe/sessions`, else
    /// `~/.local/state/lethe/sessions`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("LETHE_SESSION_DIR") {
            return PathBuf::from(d);
        }
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
                PathBuf::from(home).join(".local/state")
            });
        state.join("lethe/sessions")
    }

    pub fn path(&self, server: &str) -> PathBuf {
        self.dir.join(file_name(server))
    }

    /// The saved session for `server`, if there is one.
    pub fn load(&self, server: &str) -> Result<Option<SavedSession>, SessionError> {
        let path = self.path(server);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SessionError::NotPrivate {
                path: path.display().to_string(),
                mode,
            });
        }
        let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(io(&path))?);
        let s: SavedSession = serde_json::from_str(&text).map_err(|e| SessionError::Damaged {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        if s.server != server {
            return Ok(None);
        }
        Ok(Some(s))
    }

    /// Save (replacing) the session for its server: 0600, atomically.
    pub fn save(&self, s: &SavedSession) -> Result<PathBuf, SessionError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io(&self.dir))?;
        let path = self.path(&s.server);
        let tmp = path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        let text = Zeroizing::new(serde_json::to_string(s).map_err(|e| SessionError::Damaged {
            path: tmp.display().to_string(),
            detail: e.to_string(),
        })?);
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(path)
    }

    /// Remove the saved session of `server` (nothing if there is none).
    pub fn forget(&self, server: &str) {
        let _ = std::fs::remove_file(self.path(server));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(server: &str) -> SavedSession {
        SavedSession {
            server: server.into(),
            user: "oscar".into(),
            cookie: Zeroizing::new("c00kie".into()),
        }
    }

    #[test]
    fn a_session_is_saved_private_loaded_for_its_server_only_and_forgotten() {
        let d = tempfile::tempdir().unwrap();
        let store = SessionStore::new(d.path().join("sessions"));
        let a = "https://appliance-1:8443";
        assert!(store.load(a).unwrap().is_none());
        let path = store.save(&session(a)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(d.path().join("sessions"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        let s = store.load(a).unwrap().unwrap();
        assert_eq!((s.user.as_str(), s.cookie.as_str()), ("oscar", "c00kie"));
        assert!(store.load("https://appliance-2:8443").unwrap().is_none());
        store.forget(a);
        assert!(store.load(a).unwrap().is_none());
    }

    #[test]
    fn a_session_file_others_can_read_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let store = SessionStore::new(d.path().to_path_buf());
        let a = "https://appliance:8443";
        let path = store.save(&session(a)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            store.load(a),
            Err(SessionError::NotPrivate { mode: 0o644, .. })
        ));
    }

    #[test]
    fn file_names_keep_only_host_and_port() {
        assert_eq!(file_name("https://10.0.0.5:8443"), "10.0.0.5_8443.json");
        assert_eq!(file_name("https://[::1]:8443"), "___1__8443.json");
        assert_eq!(file_name("https://a/../../etc"), "a_.._.._etc.json");
    }
}
