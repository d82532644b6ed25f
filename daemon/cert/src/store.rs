//! The certificate directory: `<dir>/<id>.json` (the signed file) and
//! `<dir>/<id>.pdf` (its rendering), both written atomically (temp file,
//! fsync, rename, directory fsync). Backs `lethe cert list` and `lethe cert show`.

use crate::key::write_atomic;
use crate::model::{valid_id, ResultStatus};
use crate::pdf::render_pdf;
use crate::read::read_certificate_file;
use crate::sign::{verify, SignedCertificate, VerifiedCertificate};
use crate::{CertError, VerifyingKey};
use std::fs;
use std::path::{Path, PathBuf};

/// A directory of certificates.
#[derive(Debug, Clone)]
pub struct CertStore {
    dir: PathBuf,
}

/// One line of `lethe cert list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// Certificate id (from the file name when the file does not verify).
    pub id: String,
    /// Issue time (empty when the file does not verify).
    pub issued_at: String,
    /// Result status (None when the file does not verify).
    pub status: Option<ResultStatus>,
    /// Device model.
    pub model: String,
    /// Device serial.
    pub serial: String,
    /// Key id of the signer.
    pub key_id: String,
    /// Path of the JSON file.
    pub path: PathBuf,
    /// Why the file failed verification, if it did.
    pub problem: Option<String>,
}

impl CertStore {
    /// A store over `dir` (created on first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CertStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the JSON file for `id`.
    pub fn json_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Path of the PDF file for `id`.
    pub fn pdf_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.pdf"))
    }

    /// Write `<id>.json` and `<id>.pdf`. Saving the identical certificate again
    /// is a no-op rewrite; a *different* certificate with the same id is refused
    /// ([`CertError::Exists`]) — use [`CertStore::replace`] deliberately.
    pub fn save(&self, cert: &SignedCertificate) -> Result<(PathBuf, PathBuf), CertError> {
        let json = self.json_path(&cert.body().id);
        if let Ok(existing) = fs::read(&json) {
            if existing != cert.as_bytes() {
                return Err(CertError::Exists(json));
            }
        }
        self.replace(cert)
    }

    /// Write `<id>.json` and `<id>.pdf`, replacing any existing files.
    pub fn replace(&self, cert: &SignedCertificate) -> Result<(PathBuf, PathBuf), CertError> {
        let id = &cert.body().id;
        if !valid_id(id) {
            return Err(CertError::InvalidBody(format!(
                "certificate id {id:?} is not valid"
            )));
        }
        fs::create_dir_all(&self.dir).map_err(|source| CertError::Io {
            what: "creating the certificate directory".into(),
            path: self.dir.clone(),
            source,
        })?;
        let (json, pdf) = (self.json_path(id), self.pdf_path(id));
        // PDF first: a JSON without its PDF can be re-rendered, the reverse is useless.
        write_atomic(&pdf, &render_pdf(cert), 0o644)?;
        write_atomic(&json, cert.as_bytes(), 0o644)?;
        Ok((json, pdf))
    }

    /// Load and verify a certificate given by id or by path.
    pub fn load(&self, id_or_path: &str) -> Result<VerifiedCertificate, CertError> {
        self.load_with_key(id_or_path, None)
    }

    /// Like [`CertStore::load`], also requiring the signer to be `expected`.
    pub fn load_with_key(
        &self,
        id_or_path: &str,
        expected: Option<&VerifyingKey>,
    ) -> Result<VerifiedCertificate, CertError> {
        let path = self.resolve(id_or_path)?;
        let bytes = read_certificate_file(&path)?;
        verify(&bytes, expected).map_err(|source| CertError::Verify { path, source })
    }

    /// The file a `lethe cert verify` argument names: an existing path as
    /// given (whatever it is: [`read_certificate_file`] refuses what is not a
    /// regular file), else the id `ARG` (or `ARG.json`) in this store.
    pub fn resolve(&self, id_or_path: &str) -> Result<PathBuf, CertError> {
        let as_path = Path::new(id_or_path);
        if fs::symlink_metadata(as_path).is_ok() {
            return Ok(as_path.to_path_buf());
        }
        let id = id_or_path.strip_suffix(".json").unwrap_or(id_or_path);
        let p = self.json_path(id);
        if valid_id(id) && fs::symlink_metadata(&p).is_ok() {
            Ok(p)
        } else {
            Err(CertError::NotFound(id_or_path.to_owned(), self.dir.clone()))
        }
    }

    /// Every `*.json` in the directory, verified, sorted by issue time then id.
    /// Files that fail verification are listed with their problem.
    pub fn list(&self) -> Result<Vec<CertSummary>, CertError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(CertError::Io {
                    what: "listing certificates in".into(),
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            if stem.starts_with('.') || !path.is_file() {
                continue;
            }
            let summary = match read_certificate_file(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| verify(&b, None).map_err(|e| e.to_string()))
            {
                Ok(v) => {
                    let b = v.body();
                    CertSummary {
                        id: b.id.clone(),
                        issued_at: b.issued_at.clone(),
                        status: Some(b.result.status),
                        model: b.device.model.clone(),
                        serial: b.device.serial.clone(),
                        key_id: v.key_id().to_owned(),
                        path,
                        problem: None,
                    }
                }
                Err(problem) => CertSummary {
                    id: stem.to_owned(),
                    issued_at: String::new(),
                    status: None,
                    model: String::new(),
                    serial: String::new(),
                    key_id: String::new(),
                    path,
                    problem: Some(problem),
                },
            };
            out.push(summary);
        }
        out.sort_by(|a, b| (&a.issued_at, &a.id).cmp(&(&b.issued_at, &b.id)));
        Ok(out)
    }
}
