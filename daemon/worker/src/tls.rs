//! The HTTPS certificate. With `[tls] cert`/`key` configured, those files
//! (root-readable; the worker reads them for the front). Without, a
//! self-signed certificate made on first start in `<state>/tls/`
//! (`cert.pem`, `key.pem`, `0600`) for the host's name, `localhost` and the
//! loopback addresses, kept across restarts so its fingerprint can be
//! pinned.
//!
//! The files are read again at every request of the front (at its start,
//! on SIGHUP and every minute): replacing them renews the certificate
//! without restarting anything.

use lethe_jobs::StateDir;
use lethe_wire::{Secret, TlsMaterial};
use sha2::Digest;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where the self-signed certificate lives.
pub fn self_signed_paths(state: &StateDir) -> (PathBuf, PathBuf) {
    let dir = state.root().join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// The certificate and key files in use.
fn files(cfg: &lethe_config::Config, state: &StateDir) -> (PathBuf, PathBuf, bool) {
    match &cfg.tls {
        Some(t) => (t.cert.clone(), t.key.clone(), false),
        None => {
            let (c, k) = self_signed_paths(state);
            (c, k, true)
        }
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Make the self-signed certificate when none is configured and none
/// exists yet; answer the fingerprint of the certificate in use.
pub fn prepare(cfg: &lethe_config::Config, state: &StateDir) -> Result<String, String> {
    let (cert, key, self_signed) = files(cfg, state);
    if self_signed && !cert.exists() {
        let dir = cert.parent().expect("a file in a directory");
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let host = lethe_jobs::state::hostname();
        let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        if !host.is_empty() && host != "localhost" {
            names.insert(0, host);
        }
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| format!("making a self-signed certificate: {e}"))?;
        // Key first: a certificate without its key is never left behind.
        let _ = std::fs::remove_file(&key);
        write_new(&key, made.signing_key.serialize_pem().as_bytes())?;
        write_new(&cert, made.cert.pem().as_bytes())?;
        tracing::info!("made a self-signed HTTPS certificate in {}", dir.display());
    }
    let m = read(&cert, &key, self_signed)?;
    tracing::info!("HTTPS certificate fingerprint (SHA-256): {}", m.fingerprint);
    Ok(m.fingerprint)
}

/// SHA-256 of the first certificate of a PEM chain, as `AB:CD:…`.
pub fn fingerprint(cert_pem: &str) -> Result<String, String> {
    let der = first_der(cert_pem).ok_or("no CERTIFICATE block in the PEM file")?;
    let h = sha2::Sha256::digest(&der);
    Ok(h.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

fn first_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let start = pem.find(begin)? + begin.len();
    let stop = start + pem[start..].find(end)?;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn read(cert: &Path, key: &Path, self_signed: bool) -> Result<TlsMaterial, String> {
    let cert_pem =
        std::fs::read_to_string(cert).map_err(|e| format!("reading {}: {e}", cert.display()))?;
    let key_pem =
        std::fs::read_to_string(key).map_err(|e| format!("reading {}: {e}", key.display()))?;
    if !key_pem.contains("PRIVATE KEY-----") {
        return Err(format!("{} holds no PEM private key", key.display()));
    }
    Ok(TlsMaterial {
        fingerprint: fingerprint(&cert_pem)?,
        cert_pem,
        key_pem: Secret(key_pem),
        self_signed,
    })
}

/// The certificate and key the front serves with, read now.
pub fn material(d: &crate::daemon::Daemon) -> Result<TlsMaterial, String> {
    let (cert, key, self_signed) = files(&d.cfg, &d.state);
    let m = read(&cert, &key, self_signed)?;
    let mut fp = crate::daemon::Daemon::lock(&d.tls_fingerprint);
    if fp.as_deref() != Some(m.fingerprint.as_str()) {
        tracing::info!("HTTPS certificate now {}", m.fingerprint);
        *fp = Some(m.fingerprint.clone());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let cfg = lethe_config::parse("").unwrap().config;
        let fp1 = prepare(&cfg, &state).unwrap();
        let fp2 = prepare(&cfg, &state).unwrap();
        assert_eq!(fp1, fp2, "a restart keeps the pinned certificate");
        assert_eq!(fp1.len(), 32 * 3 - 1);
        let (c, k) = self_signed_paths(&state);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let m = read(&c, &k, true).unwrap();
        assert_eq!(m.fingerprint, fp1);
        assert!(m.cert_pem.contains("BEGIN CERTIFICATE"));
        assert!(!format!("{m:?}").contains("PRIVATE"), "the key is redacted");
    }

    #[test]
    fn a_pem_without_a_certificate_is_refused() {
        assert!(fingerprint("nothing here").is_err());
    }
}
