//! The appliance's Ed25519 signing key and public-key loading.
//!
//! Files in the key directory:
//! - `appliance.key`: the 32-byte Ed25519 seed as 64 lowercase hex digits and a
//!   newline, mode 0600. Created with `create_new` and mode 0600 at open time
//!   under a temporary name, fsynced, then hard-linked into place (which fails
//!   if another process won the race, in which case its key is used). A key
//!   file readable by group or others is refused.
//! - `appliance.pub`: the 32-byte public key as 64 lowercase hex digits and a
//!   newline, mode 0644. Rewritten from the private key when missing or stale.
//!
//! The key id is the first 16 hex digits of SHA-256 over the 32 raw public-key bytes.

use crate::CertError;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File name of the private key inside the key directory.
pub const PRIVATE_KEY_FILE: &str = "appliance.key";
/// File name of the public key inside the key directory.
pub const PUBLIC_KEY_FILE: &str = "appliance.pub";

/// The appliance signing key. `Debug` shows only the key id.
pub struct ApplianceKey {
    signing: SigningKey,
    key_id: String,
}

impl fmt::Debug for ApplianceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplianceKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Key id of a public key: first 16 hex digits of SHA-256 of its 32 bytes.
pub fn key_id_of(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

fn io_err(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> CertError {
    let path = path.to_path_buf();
    let what = what.to_owned();
    move |source| CertError::Io { what, path, source }
}

impl ApplianceKey {
    /// A key from a fixed 32-byte seed (test vectors, tests). Real appliances
    /// use [`ApplianceKey::load_or_create`].
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let key_id = key_id_of(&signing.verifying_key());
        ApplianceKey { signing, key_id }
    }

    /// Load `dir/appliance.key`, creating the directory (0700), a fresh random
    /// key (0600) and `dir/appliance.pub` (0644) when absent.
    pub fn load_or_create(dir: &Path) -> Result<Self, CertError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir, "creating the key directory"))?;
        let path = dir.join(PRIVATE_KEY_FILE);
        let key = match Self::load_private(&path) {
            Ok(key) => key,
            Err(CertError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Self::create(dir, &path)?
            }
            Err(e) => return Err(e),
        };
        key.ensure_public_file(dir)?;
        Ok(key)
    }

    /// Load an existing `dir/appliance.key` without creating anything.
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        Self::load_private(&dir.join(PRIVATE_KEY_FILE))
    }

    /// Load a private key file of the same format kept elsewhere (the
    /// auditor pack's release key): 64 lowercase hex digits, mode 0600.
    pub fn load_file(path: &Path) -> Result<Self, CertError> {
        Self::load_private(path)
    }

    fn load_private(path: &Path) -> Result<Self, CertError> {
        let file = File::open(path).map_err(io_err(path, "opening the appliance key"))?;
        let meta = file
            .metadata()
            .map_err(io_err(path, "reading the appliance key's permissions"))?;
        if !meta.is_file() {
            return Err(CertError::KeyFile {
                path: path.to_path_buf(),
                problem: "is not a regular file".into(),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CertError::KeyFile {
                path: path.to_path_buf(),
                problem: format!(
                    "has permissions {mode:04o}, which let other users read the secret key; \
                     it must be 0600 (run: chmod 600 {})",
                    path.display()
                ),
            });
        }
        let mut text = String::new();
        file.take(4096)
            .read_to_string(&mut text)
            .map_err(io_err(path, "reading the appliance key"))?;
        let seed =
            parse_hex32(text.trim_end_matches('\n'), true).ok_or_else(|| CertError::KeyFile {
                path: path.to_path_buf(),
                problem: "does not hold 64 lowercase hex digits (a 32-byte Ed25519 seed)".into(),
            });
        wipe_string(&mut text);
        let mut seed = seed?;
        let key = Self::from_seed(&seed);
        seed.fill(0);
        Ok(key)
    }

    fn create(dir: &Path, path: &Path) -> Result<Self, CertError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| CertError::Random(e.to_string()))?;
        let key = Self::from_seed(&seed);
        let mut text = hex::encode(seed);
        seed.fill(0);
        text.push('\n');
        let tmp = temp_name(dir, PRIVATE_KEY_FILE)?;
        let written = write_new_file(&tmp, text.as_bytes(), 0o600);
        wipe_string(&mut text);
        written?;
        // hard_link refuses to replace an existing file: a concurrent creator wins cleanly.
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(dir)?;
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_private(path),
            Err(e) => Err(io_err(path, "installing the new appliance key")(e)),
        }
    }

    fn ensure_public_file(&self, dir: &Path) -> Result<(), CertError> {
        let path = dir.join(PUBLIC_KEY_FILE);
        let want = format!("{}\n", self.public_key_hex());
        if fs::read_to_string(&path).ok().as_deref() == Some(want.as_str()) {
            return Ok(());
        }
        write_atomic(&path, want.as_bytes(), 0o644)
    }

    /// The public key as 64 lowercase hex digits.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().as_bytes())
    }

    /// First 16 hex digits of SHA-256 of the public key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public (verifying) key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// Sign the text of a signed note (c2sp.org/signed-note): the audit log's
    /// checkpoints. Returns `None` for text that begins like a certificate's
    /// signing input ([`crate::SIGNING_PREFIX`]), so a note signature can
    /// never stand for a certificate signature.
    pub fn sign_note(&self, text: &[u8]) -> Option<ed25519_dalek::Signature> {
        use ed25519_dalek::Signer;
        (!text.starts_with(crate::SIGNING_PREFIX)).then(|| self.signing.sign(text))
    }
}

/// Parse exactly 64 hex digits into 32 bytes (`lowercase_only` refuses A-F).
pub(crate) fn parse_hex32(s: &str, lowercase_only: bool) -> Option<[u8; 32]> {
    let ok = s.len() == 64
        && s.bytes().all(|b| {
            b.is_ascii_digit()
                || (b'a'..=b'f').contains(&b)
                || (!lowercase_only && (b'A'..=b'F').contains(&b))
        });
    if !ok {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Accept a public key given as 64 hex digits or as a path to a `.pub` file
/// holding them (as `lethe cert verify --key` does).
///
/// A private key is recognised and refused ([`CertError::PrivateKeyGiven`]):
/// a file named `*.key`, a PEM/OpenSSH "PRIVATE KEY" block, or a file that
/// only its owner may read (how `appliance.key` is kept). A bare seed typed
/// as hex cannot be told from a public key by its look; see [`is_seed_of`].
pub fn load_public_key(arg: &str) -> Result<VerifyingKey, CertError> {
    let trimmed = arg.trim();
    let (bytes, source) = if let Some(b) = parse_hex32(trimmed, false) {
        (b, "the key given on the command line".to_owned())
    } else {
        let path = Path::new(arg);
        let mut text = String::new();
        let file = File::open(path).map_err(|source| {
            CertError::PublicKey(format!(
                "{arg:?} is neither 64 hex digits nor a readable public key file ({source})"
            ))
        })?;
        let meta = file
            .metadata()
            .map_err(|e| CertError::PublicKey(format!("{}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(CertError::PublicKey(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        file.take(4096)
            .read_to_string(&mut text)
            .map_err(|source| CertError::PublicKey(format!("{}: {source}", path.display())))?;
        let named_private = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".key"));
        let owner_only = meta.permissions().mode() & 0o077 == 0;
        if named_private
            || text.contains("PRIVATE KEY")
            || (owner_only && parse_hex32(text.trim(), false).is_some())
        {
            wipe_string(&mut text);
            return Err(CertError::PrivateKeyGiven(path.display().to_string()));
        }
        let b = parse_hex32(text.trim(), false).ok_or_else(|| {
            CertError::PublicKey(format!(
                "{} does not contain a public key (expected 64 hex digits, like appliance.pub)",
                path.display()
            ))
        })?;
        (b, path.display().to_string())
    };
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| CertError::PublicKey(format!("{source} is not a valid Ed25519 public key")))
}

/// True when `candidate`, read as an Ed25519 seed (a private key), derives
/// `public`: the user passed the signer's *private* key where its public key
/// belongs.
pub fn is_seed_of(candidate: &[u8; 32], public: &VerifyingKey) -> bool {
    let derived = SigningKey::from_bytes(candidate).verifying_key();
    &derived == public
}

fn wipe_string(s: &mut String) {
    // Overwrite the secret's text before freeing it (best effort).
    let mut bytes = std::mem::take(s).into_bytes();
    bytes.fill(0);
    std::hint::black_box(&bytes);
}

/// A fresh unique temporary path beside `final_name` in `dir`.
pub(crate) fn temp_name(dir: &Path, final_name: &str) -> Result<PathBuf, CertError> {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).map_err(|e| CertError::Random(e.to_string()))?;
    Ok(dir.join(format!(".{final_name}.tmp-{}", hex::encode(r))))
}

fn write_new_file(path: &Path, data: &[u8], mode: u32) -> Result<(), CertError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_err(path, "creating"))?;
    // The umask may have removed bits we want (0644 for public files).
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err(path, "setting permissions of"))?;
    f.write_all(data).map_err(io_err(path, "writing"))?;
    f.sync_all().map_err(io_err(path, "syncing"))?;
    Ok(())
}

/// Write `data` to `path` atomically: temp file, fsync, rename, fsync dir.
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), CertError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = temp_name(dir, &name)?;
    if let Err(e) = write_new_file(&tmp, data, mode) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(path, "renaming into place")(e));
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), CertError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "syncing directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_0600_key_and_0644_pub_and_reloads_same_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let k1 = ApplianceKey::load_or_create(&dir).unwrap();
        assert_eq!(mode(&dir.join(PRIVATE_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.join(PUBLIC_KEY_FILE)), 0o644);
        assert_eq!(mode(&dir), 0o700);
        let pubtext = fs::read_to_string(dir.join(PUBLIC_KEY_FILE)).unwrap();
        assert_eq!(pubtext, format!("{}\n", k1.public_key_hex()));
        let keytext = fs::read_to_string(dir.join(PRIVATE_KEY_FILE)).unwrap();
        assert_eq!(keytext.len(), 65);
        assert!(parse_hex32(keytext.trim_end(), true).is_some());
        let k2 = ApplianceKey::load_or_create(&dir).unwrap();
        assert_eq!(k1.public_key_hex(), k2.public_key_hex());
        assert_eq!(k1.key_id(), k2.key_id());
        assert_eq!(k1.key_id().len(), 16);
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // A second directory gets a different key.
        let k3 = ApplianceKey::load_or_create(&tmp.path().join("other")).unwrap();
        assert_ne!(k1.public_key_hex(), k3.public_key_hex());
    }

    /// safeguard: rule:secrets-in-worker
    #[test]
    fn refuses_group_or_world_readable_key() {
        let tmp = tempfile::tempdir().unwrap();
        ApplianceKey::load_or_create(tmp.path()).unwrap();
        let p = tmp.path().join(PRIVATE_KEY_FILE);
        for bad in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&p, fs::Permissions::from_mode(bad)).unwrap();
            let e = ApplianceKey::load_or_create(tmp.path()).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, CertError::KeyFile { .. }), "{msg}");
            assert!(
                msg.contains(&format!("{bad:04o}")) && msg.contains("chmod 600"),
                "{msg}"
            );
        }
        fs::set_permissions(&p, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(ApplianceKey::load(tmp.path()).is_ok());
    }

    #[test]
    fn refuses_garbage_key_and_rewrites_stale_pub() {
        let tmp = tempfile::tempdir().unwrap();
        let k = ApplianceKey::load_or_create(tmp.path()).unwrap();
        let pubp = tmp.path().join(PUBLIC_KEY_FILE);
        fs::write(&pubp, "00\n").unwrap();
        ApplianceKey::load_or_create(tmp.path()).unwrap();
        assert_eq!(
            fs::read_to_string(&pubp).unwrap().trim(),
            k.public_key_hex()
        );

        let p = tmp.path().join(PRIVATE_KEY_FILE);
        fs::write(&p, "not hex\n").unwrap();
        let e = ApplianceKey::load(tmp.path()).unwrap_err();
        assert!(e.to_string().contains("64 lowercase hex"), "{e}");
    }

    #[test]
    fn concurrent_creators_agree_on_one_key() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let keys: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| ApplianceKey::load_or_create(&dir).unwrap().public_key_hex()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| k == &keys[0]), "{keys:?}");
        assert_eq!(ApplianceKey::load(&dir).unwrap().public_key_hex(), keys[0]);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn signs_notes_but_never_certificate_inputs() {
        use ed25519_dalek::Verifier;
        let k = ApplianceKey::from_seed(&[5u8; 32]);
        let sig = k.sign_note(b"lethe/audit/x\n0\nAAAA\n").unwrap();
        assert!(k
            .verifying_key()
            .verify(b"lethe/audit/x\n0\nAAAA\n", &sig)
            .is_ok());
        let mut cert_input = crate::SIGNING_PREFIX.to_vec();
        cert_input.extend_from_slice(b"{}");
        assert!(k.sign_note(&cert_input).is_none());
    }

    /// safeguard: rule:secrets-in-worker
    #[test]
    fn debug_never_shows_secret() {
        let seed = [0x42u8; 32];
        let k = ApplianceKey::from_seed(&seed);
        let dbg = format!("{k:?}");
        assert!(dbg.contains(k.key_id()));
        assert!(!dbg.contains(&hex::encode(seed)));
        assert!(!dbg.contains("42, 42"));
    }

    #[test]
    fn public_key_from_hex_or_file() {
        let k = ApplianceKey::from_seed(&[7u8; 32]);
        let hexkey = k.public_key_hex();
        assert_eq!(load_public_key(&hexkey).unwrap(), k.verifying_key());
        assert_eq!(
            load_public_key(&hexkey.to_uppercase()).unwrap(),
            k.verifying_key()
        );
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a.pub");
        fs::write(&p, format!("{hexkey}\n")).unwrap();
        assert_eq!(
            load_public_key(p.to_str().unwrap()).unwrap(),
            k.verifying_key()
        );
        fs::write(&p, "hello").unwrap();
        assert!(load_public_key(p.to_str().unwrap()).is_err());
        assert!(load_public_key("/nonexistent/x.pub").is_err());
        assert!(load_public_key(&hexkey[..63]).is_err());
    }
}
