//! SFTP backend on `openssh-sftp-client` over the system OpenSSH client (`ssh`).
//!
//! Authentication is by key file only (`BatchMode`, `IdentitiesOnly`). The host key is checked
//! strictly against a known_hosts file, or against one pinned public key that is written to a
//! private known_hosts file under a fixed `HostKeyAlias`. Each backend gets its own ssh config
//! file and control socket directory in a private temp dir, so the user's `~/.ssh` is not used.
//!
//! Writes mirror the local backend: `.tmp-*` file opened create-new, written, fsynced (if the
//! server supports `fsync@openssh.com`), then published with `hardlink@openssh.com` (create-only)
//! or `posix-rename@openssh.com` (overwrite). A dropped session is reconnected on the next try.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use openssh::{ControlPersist, KnownHosts, SessionBuilder};
use openssh_sftp_client::error::SftpErrorKind;
use openssh_sftp_client::{Error as SftpError, Sftp, SftpOptions};
use tokio::io::AsyncSeekExt;
use tokio::sync::Mutex;

use crate::error::{validate_prefix, AttemptError, BackendError};
use crate::retry::{retry, RetryPolicy};
use crate::{
    validate_name, Backend, HostKeyCheck, Location, ObjectInfo, SftpConfig, SftpLocation,
    WriteOptions,
};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);
const PINNED_ALIAS: &str = "lethe-pinned-host";
const MASTER_IDLE_SECS: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(10) {
    Some(n) => n,
    None => panic!("non-zero"),
};

/// A directory on an SFTP server as a backend.
#[derive(Debug)]
pub struct SftpBackend {
    location: SftpLocation,
    describe: String,
    retry: RetryPolicy,
    key_file: PathBuf,
    known_hosts: PathBuf,
    ssh_config: PathBuf,
    private_dir: tempfile::TempDir,
    conn: Mutex<Option<Arc<Sftp>>>,
}

impl SftpBackend {
    /// Prepares the ssh configuration and connects once (so bad keys fail early).
    pub async fn connect(
        location: &SftpLocation,
        cfg: &SftpConfig,
        retry_policy: RetryPolicy,
    ) -> Result<Self, BackendError> {
        let describe = Location::Sftp(location.clone()).to_string();
        let cfg_err = |what: String| BackendError::Config(format!("{describe}: {what}"));
        if !cfg.key_file.is_file() {
            return Err(cfg_err(format!(
                "key file {} does not exist",
                cfg.key_file.display()
            )));
        }
        let private_dir = tempfile::Builder::new()
            .prefix("lethe-ssh-")
            .tempdir()
            .map_err(|e| cfg_err(format!("temp dir: {e}")))?;
        let (known_hosts, alias) = match &cfg.host_key {
            HostKeyCheck::KnownHostsFile(p) => {
                if !p.is_file() {
                    return Err(cfg_err(format!("known_hosts file {} missing", p.display())));
                }
                (p.clone(), None)
            }
            HostKeyCheck::Fingerprint(fp) => {
                let key = pin_by_fingerprint(location, fp, &describe, &retry_policy).await?;
                let path = private_dir.path().join("known_hosts");
                std::fs::write(&path, format!("{PINNED_ALIAS} {key}\n"))
                    .map_err(|e| cfg_err(format!("writing known_hosts: {e}")))?;
                (path, Some(PINNED_ALIAS))
            }
            HostKeyCheck::PinnedKey(key) => {
                let mut parts = key.split_whitespace();
                let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
                    return Err(cfg_err("pinned host key must be 'TYPE BASE64'".into()));
                };
                let ok = |s: &str, extra: &[u8]| {
                    !s.is_empty()
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
                };
                if !ok(kind, b"-@.") || !ok(b64, b"+/=") {
                    return Err(cfg_err("pinned host key has unexpected characters".into()));
                }
                let path = private_dir.path().join("known_hosts");
                std::fs::write(&path, format!("{PINNED_ALIAS} {kind} {b64}\n"))
                    .map_err(|e| cfg_err(format!("writing known_hosts: {e}")))?;
                (path, Some(PINNED_ALIAS))
            }
        };
        let mut conf = String::from("Host *\n");
        for line in [
            "BatchMode yes",
            "IdentitiesOnly yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "StrictHostKeyChecking yes",
            "GlobalKnownHostsFile /dev/null",
            "ServerAliveInterval 15",
            "ServerAliveCountMax 3",
        ] {
            conf.push_str(&format!("  {line}\n"));
        }
        conf.push_str(&format!(
            "  UserKnownHostsFile \"{}\"\n",
            known_hosts.display()
        ));
        if let Some(a) = alias {
            conf.push_str(&format!("  HostKeyAlias {a}\n"));
        }
        let ssh_config = private_dir.path().join("ssh_config");
        std::fs::write(&ssh_config, conf).map_err(|e| cfg_err(format!("ssh config: {e}")))?;
        let backend = SftpBackend {
            location: location.clone(),
            describe,
            retry: retry_policy,
            key_file: cfg.key_file.clone(),
            known_hosts,
            ssh_config,
            private_dir,
            conn: Mutex::new(None),
        };
        retry(&backend.retry, &backend.describe, "connect", "", || async {
            backend.session().await.map(|_| ())
        })
        .await?;
        Ok(backend)
    }

    async fn session(&self) -> Result<Arc<Sftp>, AttemptError> {
        let mut guard = self.conn.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let mut b = SessionBuilder::default();
        b.port(self.location.port)
            .keyfile(&self.key_file)
            .known_hosts_check(KnownHosts::Strict)
            .user_known_hosts_file(&self.known_hosts)
            .config_file(&self.ssh_config)
            .control_directory(self.private_dir.path())
            // The master exits by itself once no sftp channel uses it, even if we crash.
            .control_persist(ControlPersist::IdleFor(MASTER_IDLE_SECS))
            .connect_timeout(std::time::Duration::from_secs(10));
        if let Some(u) = &self.location.user {
            b.user(u.clone());
        }
        let session = b
            .connect(&self.location.host)
            .await
            .map_err(|e| AttemptError::Transient(Box::new(e)))?;
        let sftp = Sftp::from_session(session, SftpOptions::default())
            .await
            .map_err(|e| AttemptError::Transient(Box::new(e)))?;
        let sftp = Arc::new(sftp);
        *guard = Some(sftp.clone());
        Ok(sftp)
    }

    /// Forgets the session after a transport error so the next attempt reconnects.
    async fn drop_session(&self) {
        self.conn.lock().await.take();
    }

    fn path(&self, name: &str) -> String {
        if name.is_empty() {
            self.location.path.clone()
        } else if self.location.path.ends_with('/') {
            format!("{}{name}", self.location.path)
        } else {
            format!("{}/{name}", self.location.path)
        }
    }

    fn not_found(&self, name: &str) -> BackendError {
        BackendError::NotFound {
            backend: self.describe.clone(),
            name: name.to_string(),
        }
    }

    /// Maps an SFTP error: server answers are final, transport failures are retried.
    async fn classify(&self, op: &'static str, name: &str, e: SftpError) -> AttemptError {
        match e {
            SftpError::SftpError(SftpErrorKind::NoSuchFile, _) => {
                AttemptError::Fatal(self.not_found(name))
            }
            SftpError::SftpError(..)
            | SftpError::UnsupportedExtension(_)
            | SftpError::BufferTooLong(_)
            | SftpError::HandleTooLong => AttemptError::Fatal(BackendError::Failed {
                backend: self.describe.clone(),
                op,
                name: name.to_string(),
                attempts: 1,
                source: Box::new(e),
            }),
            other => {
                self.drop_session().await;
                AttemptError::Transient(Box::new(other))
            }
        }
    }

    async fn mkdir_p(&self, sftp: &Sftp, dir: &str, name: &str) -> Result<(), AttemptError> {
        let mut fs = sftp.fs();
        if fs.metadata(dir).await.is_ok() {
            return Ok(());
        }
        let mut cur = String::new();
        for (i, part) in dir.split('/').enumerate() {
            if i > 0 {
                cur.push('/');
            }
            cur.push_str(part);
            if part.is_empty() || part == "." || fs.metadata(&cur).await.is_ok() {
                continue;
            }
            if let Err(e) = fs.create_dir(&cur).await {
                // Another writer may have created it meanwhile.
                if fs.metadata(&cur).await.is_err() {
                    return Err(self.classify("write", name, e).await);
                }
            }
        }
        Ok(())
    }

    async fn write_once(
        &self,
        name: &str,
        data: &Bytes,
        overwrite: bool,
    ) -> Result<(), AttemptError> {
        let sftp = self.session().await?;
        let target = self.path(name);
        let dir = match target.rfind('/') {
            Some(i) => target[..i].to_string(),
            None => ".".to_string(),
        };
        self.mkdir_p(&sftp, &dir, name).await?;
        let tmp = format!(
            "{dir}/.tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let result = self
            .write_publish(&sftp, &tmp, &target, data, overwrite)
            .await;
        let mut fs = sftp.fs();
        // The temp name is always removed; after a successful link it is a second name.
        let _ = fs.remove_file(&tmp).await;
        let exists = || BackendError::AlreadyExists {
            backend: self.describe.clone(),
            name: name.to_string(),
        };
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(AttemptError::Fatal(exists())),
            Err(e) => {
                if !overwrite && fs.metadata(&target).await.is_ok() {
                    return Err(AttemptError::Fatal(exists()));
                }
                Err(self.classify("write", name, e).await)
            }
        }
    }

    async fn write_publish(
        &self,
        sftp: &Sftp,
        tmp: &str,
        target: &str,
        data: &Bytes,
        overwrite: bool,
    ) -> Result<bool, SftpError> {
        let mut file = sftp
            .options()
            .write(true)
            .create_new(true)
            .open(tmp)
            .await?;
        file.write_all(data).await?;
        if sftp.support_fsync() {
            file.sync_all().await?;
        }
        file.close().await?;
        let mut fs = sftp.fs();
        if overwrite {
            fs.rename(tmp, target).await?;
        } else if sftp.support_hardlink() {
            fs.hard_link(tmp, target).await?;
        } else {
            // Without hardlink@openssh.com: check, then rename (a small race window).
            if fs.metadata(target).await.is_ok() {
                return Ok(false);
            }
            fs.rename(tmp, target).await?;
        }
        Ok(true)
    }

    async fn list_once(&self, prefix: &str) -> Result<Vec<ObjectInfo>, AttemptError> {
        let sftp = self.session().await?;
        let mut out = Vec::new();
        let mut stack = vec![prefix.to_string()];
        while let Some(rel) = stack.pop() {
            let mut fs = sftp.fs();
            let dir = match fs.open_dir(self.path(&rel)).await {
                Ok(d) => d,
                Err(SftpError::SftpError(SftpErrorKind::NoSuchFile, _)) => continue,
                Err(e) => return Err(self.classify("list", prefix, e).await),
            };
            let mut entries = std::pin::pin!(dir.read_dir());
            while let Some(entry) = entries.next().await {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => return Err(self.classify("list", prefix, e).await),
                };
                let Some(fname) = entry.filename().to_str().map(str::to_string) else {
                    continue;
                };
                if fname == "." || fname == ".." {
                    continue;
                }
                let child = if rel.is_empty() {
                    fname
                } else {
                    format!("{rel}/{fname}")
                };
                let md = entry.metadata();
                match entry.file_type() {
                    Some(t) if t.is_dir() => stack.push(child),
                    Some(t) if t.is_file() && validate_name(&child).is_ok() => {
                        out.push(ObjectInfo {
                            name: child,
                            size: md.len().unwrap_or(0),
                        });
                    }
                    _ => {}
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// SHA256 fingerprint of a base64 public key blob, in `ssh-keygen -l` format.
pub fn fingerprint(key_b64: &str) -> Option<String> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .ok()?;
    let digest = sha2::Sha256::digest(&blob);
    Some(format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    ))
}

/// Fetches the server's host keys with `ssh-keyscan` and returns the `TYPE BASE64` of the one
/// whose fingerprint matches `expected`.
async fn pin_by_fingerprint(
    location: &SftpLocation,
    expected: &str,
    describe: &str,
    policy: &RetryPolicy,
) -> Result<String, BackendError> {
    let want = expected.trim().trim_end_matches('=').to_string();
    if !want.starts_with("SHA256:") {
        return Err(BackendError::Config(format!(
            "{describe}: host key fingerprint must look like SHA256:…"
        )));
    }
    let host = location.host.clone();
    let port = location.port.to_string();
    let offered: Vec<(String, String)> = retry(policy, describe, "keyscan", "", || {
        let (host, port) = (host.clone(), port.clone());
        async move {
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new("ssh-keyscan")
                    .args(["-T", "10", "-p", &port, &host])
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .output()
            })
            .await
            .map_err(|e| AttemptError::Transient(Box::new(e)))?
            .map_err(|e| AttemptError::Transient(Box::new(e)))?;
            let keys: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let mut p = l.split_whitespace();
                    let (_host, kind, b64) = (p.next()?, p.next()?, p.next()?);
                    Some((kind.to_string(), b64.to_string()))
                })
                .collect();
            if keys.is_empty() {
                return Err(AttemptError::Transient(
                    "ssh-keyscan got no host keys".into(),
                ));
            }
            Ok(keys)
        }
    })
    .await?;
    let mut seen = Vec::new();
    for (kind, b64) in &offered {
        let Some(fp) = fingerprint(b64) else { continue };
        if fp == want {
            return Ok(format!("{kind} {b64}"));
        }
        seen.push(fp);
    }
    Err(BackendError::HostKeyMismatch {
        backend: describe.to_string(),
        expected: want,
        offered: seen,
    })
}

impl Drop for SftpBackend {
    /// Stops the ssh control master now (`ssh -O exit`) instead of waiting for its idle
    /// timeout; the sftp session's own cleanup may not run if the runtime is shutting down.
    fn drop(&mut self) {
        let Ok(dirs) = std::fs::read_dir(self.private_dir.path()) else {
            return;
        };
        for d in dirs.flatten() {
            let sock = d.path().join("master");
            if sock.exists() {
                let _ = std::process::Command::new("ssh")
                    .arg("-S")
                    .arg(&sock)
                    .args(["-O", "exit", &self.location.host])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

#[async_trait]
impl Backend for SftpBackend {
    fn describe(&self) -> &str {
        &self.describe
    }

    async fn write(
        &self,
        name: &str,
        data: Bytes,
        opts: &WriteOptions,
    ) -> Result<(), BackendError> {
        validate_name(name)?;
        if opts.retention.is_some() {
            return Err(BackendError::Unsupported {
                backend: self.describe.clone(),
                what: "Object Lock retention over SFTP",
            });
        }
        retry(&self.retry, &self.describe, "write", name, || {
            self.write_once(name, &data, opts.overwrite)
        })
        .await
    }

    async fn read(&self, name: &str) -> Result<Bytes, BackendError> {
        validate_name(name)?;
        retry(&self.retry, &self.describe, "read", name, || async {
            let sftp = self.session().await?;
            let mut fs = sftp.fs();
            match fs.read(self.path(name)).await {
                Ok(b) => Ok(b.freeze()),
                Err(e) => Err(self.classify("read", name, e).await),
            }
        })
        .await
    }

    async fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Bytes, BackendError> {
        validate_name(name)?;
        retry(&self.retry, &self.describe, "read", name, || async {
            let sftp = self.session().await?;
            let attempt = async {
                let mut file = sftp.open(self.path(name)).await?;
                let size = file.metadata().await?.len();
                let end = offset.checked_add(len);
                let n = usize::try_from(len).ok();
                match (size, end, n) {
                    (Some(size), Some(end), Some(n)) if end <= size => {
                        file.seek(std::io::SeekFrom::Start(offset)).await?;
                        let buf = file.read_all(n, BytesMut::with_capacity(n)).await?;
                        file.close().await?;
                        Ok(Ok(buf.freeze()))
                    }
                    (size, ..) => Ok(Err(size)),
                }
            };
            match attempt.await {
                Ok(Ok(b)) => Ok(b),
                Ok(Err(size)) => Err(AttemptError::Fatal(BackendError::InvalidRange {
                    backend: self.describe.clone(),
                    name: name.to_string(),
                    offset,
                    len,
                    size,
                })),
                Err(e) => Err(self.classify("read", name, e).await),
            }
        })
        .await
    }

    async fn stat(&self, name: &str) -> Result<ObjectInfo, BackendError> {
        validate_name(name)?;
        retry(&self.retry, &self.describe, "stat", name, || async {
            let sftp = self.session().await?;
            let mut fs = sftp.fs();
            match fs.metadata(self.path(name)).await {
                Ok(md) if md.file_type().is_some_and(|t| t.is_file()) => Ok(ObjectInfo {
                    name: name.to_string(),
                    size: md.len().unwrap_or(0),
                }),
                Ok(_) => Err(AttemptError::Fatal(self.not_found(name))),
                Err(e) => Err(self.classify("stat", name, e).await),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        let p = validate_prefix(prefix)?;
        retry(&self.retry, &self.describe, "list", prefix, || {
            self.list_once(&p)
        })
        .await
    }

    async fn delete(&self, name: &str) -> Result<(), BackendError> {
        validate_name(name)?;
        retry(&self.retry, &self.describe, "delete", name, || async {
            let sftp = self.session().await?;
            let mut fs = sftp.fs();
            match fs.remove_file(self.path(name)).await {
                Ok(()) => Ok(()),
                Err(e) => Err(self.classify("delete", name, e).await),
            }
        })
        .await
    }
}
