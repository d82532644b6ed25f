//! `lethe --server https://HOST:PORT …`: the job commands of this CLI run
//! through an appliance's HTTPS API, so a technician's laptop drives the
//! appliance with the same commands and the same output (issue 12, item 8).
//!
//! What goes where:
//! - [`client`]: whom to trust (a pinned fingerprint, a CA file, or the
//!   system's CAs), how requests are authenticated (an API token, or the
//!   session `lethe login` saved), and the API's one error shape;
//! - [`session`]: the saved sessions (0600, removed on logout or when the
//!   appliance says they ended);
//! - [`sse`]: reading a job's progress stream;
//! - [`auth`]: `login`, `reauth`, `logout`;
//! - [`wipe`]: `wipe BAY|DEVICE` and `wipe --resume JOB`, followed to the end;
//! - [`views`]: `status`, `jobs`, `cert`.
//!
//! Every decision stays on the appliance: the CLI only sends requests and
//! renders answers. It checks a typed confirmation before sending it only to
//! fail early; the worker checks it again against the device it opens.

pub mod auth;
pub mod client;
pub mod pin;
pub mod session;
pub mod sse;
pub mod views;
pub mod wipe;

use anyhow::{Context, Result};
use client::{Credential, Remote, Trust};
use serde::Deserialize;
use session::SessionStore;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The command-line options that point the CLI at an appliance.
#[derive(clap::Args, Debug, Default)]
pub struct RemoteArgs {
    /// Run the command on this appliance through its HTTPS API
    /// (https://HOST:PORT) instead of on this machine. Default: `server` in
    /// the client configuration file, if any.
    #[arg(
        long,
        global = true,
        env = "LETHE_SERVER",
        value_name = "https://HOST:PORT"
    )]
    pub server: Option<String>,
    /// Trust exactly the appliance certificate with this SHA-256
    /// fingerprint (`lethe status` on the appliance prints it).
    #[arg(
        long,
        global = true,
        env = "LETHE_SERVER_FINGERPRINT",
        value_name = "SHA256"
    )]
    pub server_fingerprint: Option<String>,
    /// Trust the appliance's certificate when this CA (PEM) issued it for
    /// the server's name.
    #[arg(long, global = true, env = "LETHE_SERVER_CA", value_name = "PEM")]
    pub server_ca: Option<PathBuf>,
    /// Authenticate with the API token in this file instead of a session
    /// saved by `lethe login` (for automation).
    #[arg(long, global = true, env = "LETHE_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// `client.toml`: defaults for the options above.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub server: Option<String>,
    pub fingerprint: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
}

/// `$LETHE_CLIENT_CONFIG`, else `$XDG_CONFIG_HOME/lethe/client.toml`, else
/// `~/.config/lethe/client.toml`; `None` when that file does not exist
/// (and no file was named).
fn client_config_path() -> (PathBuf, bool) {
    if let Some(p) = std::env::var_os("LETHE_CLIENT_CONFIG") {
        return (PathBuf::from(p), true);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".config")
        });
    (base.join("lethe/client.toml"), false)
}

pub fn load_client_config(path: &Path, named: bool) -> Result<ClientConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => {
            return Ok(ClientConfig::default())
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Where the command runs: here, or on an appliance.
pub fn target(args: &RemoteArgs) -> Result<Option<Remote>> {
    let (path, named) = client_config_path();
    let cfg = load_client_config(&path, named)?;
    let Some(server) = args.server.clone().or(cfg.server) else {
        return Ok(None);
    };
    let base = client::parse_server(&server).map_err(crate::UsageError)?;
    let trust = match (
        args.server_fingerprint.clone().or(cfg.fingerprint),
        args.server_ca.clone().or(cfg.ca_file),
    ) {
        (Some(f), _) => Trust::Pinned(
            pin::Fingerprint::parse(&f).map_err(|e| crate::UsageError(e.to_string()))?,
        ),
        (None, Some(ca)) => Trust::Ca(ca),
        (None, None) => Trust::System,
    };
    let sessions = SessionStore::new(SessionStore::default_dir());
    let server = base.as_str().trim_end_matches('/').to_string();
    let credential = match args.token_file.clone().or(cfg.token_file) {
        Some(f) => {
            let t = Zeroizing::new(
                std::fs::read_to_string(&f)
                    .with_context(|| format!("reading the API token file {}", f.display()))?,
            );
            let t = t.trim();
            if t.is_empty() {
                return Err(
                    crate::UsageError(format!("the token file {} is empty", f.display())).into(),
                );
            }
            Credential::Token(Zeroizing::new(t.to_string()))
        }
        None => match sessions.load(&server)? {
            Some(s) => Credential::Session(s),
            None => Credential::None,
        },
    };
    Ok(Some(Remote::new(base, &trust, credential, sessions)?))
}

/// `lethe CMD` that has no meaning through `--server`.
pub fn not_remote(what: &str) -> anyhow::Error {
    crate::UsageError(format!(
        "`lethe {what}` runs on the appliance itself, not through --server; through the API: \
         status, jobs, wipe (a bay's drive), cert, login, reauth, logout"
    ))
    .into()
}

/// `lethe login|reauth|logout` without an appliance to talk to.
pub fn needs_server(what: &str) -> anyhow::Error {
    crate::UsageError(format!(
        "`lethe {what}` talks to an appliance: give --server https://HOST:PORT (or `server` in \
         ~/.config/lethe/client.toml)"
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_configuration_is_optional_unless_named_and_strict() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("client.toml");
        assert!(load_client_config(&missing, false)
            .unwrap()
            .server
            .is_none());
        assert!(load_client_config(&missing, true).is_err());
        std::fs::write(
            &missing,
            "server = \"https://a:8443\"\nfingerprint = \"AB\"\n",
        )
        .unwrap();
        let c = load_client_config(&missing, true).unwrap();
        assert_eq!(c.server.as_deref(), Some("https://a:8443"));
        std::fs::write(&missing, "sever = \"https://a:8443\"\n").unwrap();
        let e = load_client_config(&missing, false).unwrap_err().to_string();
        assert!(e.contains("sever"), "{e}");
    }
}
