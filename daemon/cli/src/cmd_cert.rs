//! `lethe cert verify|list|show|get`, here or (with `--server`) through an
//! appliance's API: a certificate fetched from an appliance is verified
//! here, against the key the user names, never by the appliance.

use crate::exit;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use lethe_cert::{
    is_seed_of, load_public_key, read_certificate_file, CertStore, Signer, VerifyError,
    VerifyingKey,
};
use lethe_jobs::state::StateDir;

#[derive(Args)]
pub struct CertArgs {
    #[command(subcommand)]
    pub cmd: CertCmd,
}

/// `lethe cert verify`: the file is intact and correctly signed, but no key
/// was named to say *who* must have signed it (no `--key`, and this state
/// directory has no appliance key). Documented in the README.
pub const SIGNER_UNKNOWN: u8 = 10;

#[derive(Subcommand)]
pub enum CertCmd {
    /// Check a certificate offline. Exit 0 and "VALID" only when it is intact
    /// and signed by the expected key; 1 when it is invalid or cannot be read;
    /// 10 when it is intact but no key was named ("signer unknown").
    Verify {
        /// The certificate: a path to its JSON file, or its id in this
        /// appliance's certificate store (as the PDF prints it).
        file: String,
        /// The expected signer: an appliance.pub file or its 64 hex digits.
        /// Default: this appliance's own key when the state directory has one.
        #[arg(long)]
        key: Option<String>,
        /// Print one JSON object: result (valid, signer_unknown, invalid),
        /// file, key_id, error and the verified certificate body.
        #[arg(long)]
        json: bool,
    },
    /// List the certificates and reports in the store, newest first.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one certificate (by id or path), verified.
    Show {
        /// Certificate id or path.
        id: String,
        /// Print the body as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Save a certificate's signed JSON and its PDF as ID.json and ID.pdf
    /// (to hand over, or to check offline later).
    Get {
        /// Certificate id.
        id: String,
        /// The directory to save them in.
        #[arg(long, short = 'o', default_value = ".")]
        out: std::path::PathBuf,
    },
}

/// The key certificates are checked against when none is given: this
/// appliance's own public key, if the state directory has one.
fn local_key(state: &StateDir) -> Option<(VerifyingKey, String)> {
    let path = state.keys().join("appliance.pub");
    let p = path.to_str()?;
    load_public_key(p).ok().map(|k| (k, p.to_string()))
}

/// The outcome of `cert verify`, printed as text or JSON.
struct Report {
    result: &'static str,
    file: String,
    key_id: Option<String>,
    error: Option<String>,
    body: Option<serde_json::Value>,
    /// The certificate's audit proof, when it carries one and it verifies.
    audit: Option<serde_json::Value>,
}

fn print_report(r: &Report, json: bool, line: &str) -> Result<()> {
    if json {
        let v = serde_json::json!({
            "result": r.result, "file": r.file, "key_id": r.key_id,
            "error": r.error, "certificate": r.body, "audit": r.audit,
        });
        outln!("{}", serde_json::to_string(&v)?);
    } else if r.result == "invalid" {
        eprintln!("{line}");
    } else {
        outln!("{line}");
    }
    Ok(())
}

fn invalid(file: &str, json: bool, msg: String) -> Result<u8> {
    let r = Report {
        result: "invalid",
        file: file.to_owned(),
        key_id: None,
        error: Some(msg.clone()),
        body: None,
        audit: None,
    };
    print_report(&r, json, &format!("INVALID  {file}: {msg}"))?;
    Ok(exit::ERROR)
}

/// When a file fails with "signed by another key", was the `--key` the
/// signer's *private* seed? Then say so instead of "another key".
fn private_key_mixup(bytes: &[u8], given: &VerifyingKey) -> bool {
    lethe_cert::verify(bytes, None)
        .ok()
        .and_then(|v| load_public_key(&v.signed().signature().public_key).ok())
        .is_some_and(|signer| is_seed_of(given.as_bytes(), &signer))
}

fn verify(
    store: &CertStore,
    state: &StateDir,
    file: &str,
    key: Option<&str>,
    json: bool,
) -> Result<u8> {
    let expected = match key {
        Some(k) => match load_public_key(k) {
            Ok(v) => Some(v),
            Err(e) => return invalid(file, json, format!("--key: {e}")),
        },
        None => local_key(state).map(|(k, _)| k),
    };
    let path = match store.resolve(file) {
        Ok(p) => p,
        Err(e) => return invalid(file, json, e.to_string()),
    };
    let bytes = match read_certificate_file(&path) {
        Ok(b) => b,
        Err(e) => return invalid(file, json, e.to_string()),
    };
    check(&bytes, &path.display().to_string(), expected, json)
}

/// The expected signer named by `--key`, or the refusal to print.
pub fn named_key(key: &str, file: &str, json: bool) -> Result<Result<VerifyingKey, u8>> {
    match load_public_key(key) {
        Ok(v) => Ok(Ok(v)),
        Err(e) => Ok(Err(invalid(file, json, format!("--key: {e}"))?)),
    }
}

/// Verify a certificate's bytes (from a file, or fetched from an
/// appliance: `shown` says which) against `expected`, and print the
/// outcome as `cert verify` does.
pub fn check(bytes: &[u8], shown: &str, expected: Option<VerifyingKey>, json: bool) -> Result<u8> {
    let shown = shown.to_string();
    match lethe_cert::verify(bytes, expected.as_ref()) {
        Ok(v) => {
            let trusted = v.signer() == Signer::Trusted;
            // The audit proof is checked against the trusted key, or (signer
            // unknown) against the certificate's own, which proves only
            // that the file is consistent.
            let proof_key = match &expected {
                Some(k) => *k,
                None => load_public_key(&v.signed().signature().public_key)?,
            };
            let audit = match lethe_audit::verify_certificate_attachment(v.signed(), &proof_key) {
                Ok(a) => a,
                Err(e) => {
                    return invalid(
                        &shown,
                        json,
                        format!("the certificate's audit-log proof does not verify: {e}"),
                    )
                }
            };
            let audit_json = audit.as_ref().map(|a| {
                serde_json::json!({
                    "index": a.index, "checkpoint_size": a.checkpoint.size,
                    "origin": a.checkpoint.origin,
                })
            });
            let r = Report {
                result: if trusted { "valid" } else { "signer_unknown" },
                file: shown,
                key_id: Some(v.key_id().to_owned()),
                error: None,
                body: Some(serde_json::to_value(v.body())?),
                audit: audit_json,
            };
            print_report(&r, json, &v.summary())?;
            if let (Some(a), false) = (&audit, json) {
                println!(
                    "       audit log: entry {} (certificate.issued) of {}, included in its signed checkpoint of size {}",
                    a.index, a.checkpoint.origin, a.checkpoint.size
                );
            }
            if trusted {
                Ok(exit::OK)
            } else {
                if !json {
                    eprintln!(
                        "note: the file is intact and was signed by key {}, but no key was named to \
                         check who signed it; pass --key APPLIANCE.pub (the issuing appliance's public key)",
                        v.key_id()
                    );
                }
                Ok(SIGNER_UNKNOWN)
            }
        }
        Err(VerifyError::WrongKey { .. })
            if expected
                .as_ref()
                .is_some_and(|k| private_key_mixup(bytes, k)) =>
        {
            invalid(
                &shown,
                json,
                "the --key given is the signer's PRIVATE key (appliance.key): pass its public key \
                 (appliance.pub), and keep the private key secret"
                    .into(),
            )
        }
        Err(e) => invalid(&shown, json, e.to_string()),
    }
}

pub fn run(state: &StateDir, args: &CertArgs) -> Result<u8> {
    let store = CertStore::new(state.certificates());
    match &args.cmd {
        CertCmd::Verify { file, key, json } => verify(&store, state, file, key.as_deref(), *json),
        CertCmd::List { json } => {
            let mut list = store.list()?;
            // Newest first, like `lethe jobs` (RFC 3339 UTC sorts as text).
            list.sort_by(|a, b| (&b.issued_at, &b.id).cmp(&(&a.issued_at, &a.id)));
            if *json {
                let v: Vec<_> = list
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "id": c.id, "issued_at": c.issued_at, "status": c.status,
                            "model": c.model, "serial": c.serial, "key_id": c.key_id,
                            "path": c.path, "problem": c.problem,
                        })
                    })
                    .collect();
                outln!("{}", serde_json::to_string(&v)?);
            } else if list.is_empty() {
                outln!("no certificates in {}", store.dir().display());
            } else {
                let rows = list.iter().map(|c| ListRow {
                    id: &c.id,
                    issued_at: &c.issued_at,
                    status: c.status.as_ref().map(|s| s.as_str()),
                    problem: c.problem.as_deref(),
                    model: &c.model,
                    serial: &c.serial,
                });
                out!("{}", list_table(rows));
            }
            Ok(exit::OK)
        }
        CertCmd::Show { id, json } => {
            let expected = local_key(state);
            let v = store
                .load_with_key(id, expected.as_ref().map(|(k, _)| k))
                .with_context(|| format!("certificate {id}"))?;
            crate::audit_hook::viewed(state, &v.body().id);
            if *json {
                outln!("{}", serde_json::to_string(v.body())?);
            } else {
                outln!("{}", v.summary());
                outln!("{}", serde_json::to_string_pretty(v.body())?);
                outln!("pdf: {}", store.pdf_path(&v.body().id).display());
            }
            Ok(exit::OK)
        }
        CertCmd::Get { id, out } => {
            let json = store
                .resolve(id)
                .with_context(|| format!("certificate {id}"))?;
            let bytes = read_certificate_file(&json)?;
            let pdf = std::fs::read(store.pdf_path(id))
                .with_context(|| format!("the PDF of certificate {id}"))?;
            save_pair(id, &bytes, &pdf, out)
        }
    }
}

/// One line of `cert list`, from the local store or an appliance's API.
pub struct ListRow<'a> {
    pub id: &'a str,
    pub issued_at: &'a str,
    pub status: Option<&'a str>,
    pub problem: Option<&'a str>,
    pub model: &'a str,
    pub serial: &'a str,
}

/// `cert list`'s table.
pub fn list_table<'a>(rows: impl Iterator<Item = ListRow<'a>>) -> String {
    let rows: Vec<Vec<String>> = rows
        .map(|c| {
            // A problem's text is long: it goes last, after the device.
            let (status, problem) = match (c.status, c.problem) {
                (_, Some(p)) => ("INVALID".to_string(), format!("  ({p})")),
                (Some(s), None) => (s.to_string(), String::new()),
                (None, None) => ("?".to_string(), String::new()),
            };
            vec![
                c.id.to_string(),
                c.issued_at.to_string(),
                status,
                format!("{} {}{problem}", c.model, c.serial)
                    .trim()
                    .to_string(),
            ]
        })
        .collect();
    crate::cmd_jobs::table(&["ID", "ISSUED", "STATUS", "DEVICE"], &rows)
}

/// Write ID.json and ID.pdf into `dir` (an id with a path in it is refused).
pub fn save_pair(id: &str, json: &[u8], pdf: &[u8], dir: &std::path::Path) -> Result<u8> {
    let plain = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.');
    if !plain {
        return Err(crate::UsageError(format!("{id:?} is not a certificate id")).into());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (ext, bytes) in [("json", json), ("pdf", pdf)] {
        let path = dir.join(format!("{id}.{ext}"));
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        outln!("{}", path.display());
    }
    Ok(exit::OK)
}
