//! `lethe cert verify|list|show`.

use crate::exit;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use lethe_cert::{load_public_key, CertStore, VerifyingKey};
use lethe_jobs::state::StateDir;

#[derive(Args)]
pub struct CertArgs {
    #[command(subcommand)]
    cmd: CertCmd,
}

#[derive(Subcommand)]
enum CertCmd {
    /// Check a certificate offline: exit 0 and a one-line summary if it is valid.
    Verify {
        /// The certificate JSON file.
        file: String,
        /// The expected signer: 64 hex digits or a path to an appliance.pub file.
        /// Default: this appliance's key when it has one, else any valid signature
        /// (the summary then says which key signed).
        #[arg(long)]
        key: Option<String>,
        /// Print the verified certificate body as JSON instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// List the certificates in the store, oldest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one certificate (by id or path), verified.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

/// The key certificates are checked against when none is given: this
/// appliance's own public key, if the state directory has one.
fn local_key(state: &StateDir) -> Option<(VerifyingKey, String)> {
    let path = state.keys().join("appliance.pub");
    let p = path.to_str()?;
    load_public_key(p).ok().map(|k| (k, p.to_string()))
}

fn expected_key(state: &StateDir, key: &Option<String>) -> Result<Option<(VerifyingKey, String)>> {
    match key {
        Some(k) => Ok(Some((load_public_key(k)?, k.clone()))),
        None => Ok(local_key(state)),
    }
}

pub fn run(state: &StateDir, args: &CertArgs) -> Result<u8> {
    let store = CertStore::new(state.certificates());
    match &args.cmd {
        CertCmd::Verify { file, key, json } => {
            let bytes = match std::fs::read(file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("INVALID  {file}: cannot read: {e}");
                    return Ok(exit::ERROR);
                }
            };
            let expected = expected_key(state, key)?;
            match lethe_cert::verify(&bytes, expected.as_ref().map(|(k, _)| k)) {
                Ok(v) => {
                    if *json {
                        println!("{}", serde_json::to_string_pretty(v.body())?);
                    } else {
                        println!("{}", v.summary());
                        if expected.is_none() {
                            println!("note: signer not pinned; pass --key APPLIANCE.pub to require a specific appliance");
                        }
                    }
                    Ok(exit::OK)
                }
                Err(e) => {
                    eprintln!("INVALID  {file}: {e}");
                    Ok(exit::ERROR)
                }
            }
        }
        CertCmd::List { json } => {
            let list = store.list()?;
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
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if list.is_empty() {
                println!("no certificates in {}", store.dir().display());
            } else {
                println!("{:<44} {:<21} {:<11} DEVICE", "ID", "ISSUED", "STATUS");
                for c in &list {
                    let status = match (&c.status, &c.problem) {
                        (_, Some(p)) => format!("INVALID: {p}"),
                        (Some(s), None) => s.as_str().to_string(),
                        (None, None) => "?".into(),
                    };
                    println!(
                        "{:<44} {:<21} {:<11} {} {}",
                        c.id, c.issued_at, status, c.model, c.serial
                    );
                }
            }
            Ok(exit::OK)
        }
        CertCmd::Show { id, json } => {
            let expected = local_key(state);
            let v = store
                .load_with_key(id, expected.as_ref().map(|(k, _)| k))
                .with_context(|| format!("certificate {id}"))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(v.body())?);
            } else {
                println!("{}", v.summary());
                println!("{}", serde_json::to_string_pretty(v.body())?);
                println!("pdf: {}", store.pdf_path(&v.body().id).display());
            }
            Ok(exit::OK)
        }
    }
}
