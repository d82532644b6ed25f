//! `lethe verify-pack DIR`: check an auditor pack (docs/auditor-pack.md).

use crate::exit;
use anyhow::Result;
use clap::Args;
use lethe_cert::{load_public_key, Signer};
use lethe_pack::{verify_pack, KeyKind, PackError};
use std::path::PathBuf;

/// Exit code when the pack is intact and signed, but no key was named to
/// say who must have signed it (as `lethe cert verify`).
pub const SIGNER_UNKNOWN: u8 = crate::cmd_cert::SIGNER_UNKNOWN;

#[derive(Args)]
pub struct VerifyPackArgs {
    /// The pack directory (the one holding MANIFEST).
    dir: PathBuf,
    /// The release public key the pack must be signed with: a .pub file or
    /// its 64 hex digits. Without it the signature is checked against the
    /// pack's own release.pub and the signer is unknown (exit 10).
    #[arg(long, env = "LETHE_RELEASE_PUB")]
    key: Option<String>,
    /// Print one JSON object: result (valid, signer_unknown, invalid), dir,
    /// version, commit, key_id, key_kind, files, problems.
    #[arg(long)]
    json: bool,
}

fn print(args: &VerifyPackArgs, v: serde_json::Value, line: &str, ok: bool) -> Result<()> {
    if args.json {
        let mut v = v;
        v["dir"] = args.dir.display().to_string().into();
        println!("{}", serde_json::to_string(&v)?);
    } else if ok {
        println!("{line}");
    } else {
        eprintln!("{line}");
    }
    Ok(())
}

/// Exit 0 VALID (intact and signed by `--key`), 10 SIGNER UNKNOWN (intact,
/// signed by the pack's own release.pub), 1 INVALID.
pub fn run(args: &VerifyPackArgs) -> Result<u8> {
    let dir = args.dir.display();
    let trusted = match args.key.as_deref().map(load_public_key).transpose() {
        Ok(k) => k,
        Err(e) => {
            let msg = format!("--key: {e}");
            let v = serde_json::json!({"result": "invalid", "problems": [msg]});
            print(args, v, &format!("INVALID  {dir}: {msg}"), false)?;
            return Ok(exit::ERROR);
        }
    };
    match verify_pack(&args.dir, trusted.as_ref()) {
        Ok(p) => {
            let m = &p.manifest;
            let kind = match m.key_kind {
                KeyKind::Release => "release",
                KeyKind::ThrowAway => "throw-away",
            };
            let known = p.signer == Signer::Trusted;
            let v = serde_json::json!({
                "result": if known { "valid" } else { "signer_unknown" },
                "version": m.version, "commit": m.commit, "built": m.built,
                "key_id": m.key_id, "key_kind": kind, "files": m.files.len(),
                "problems": [],
            });
            let line =
                format!(
                "{}  Lethe {} auditor pack, commit {}, built {}: {} files, signed by {kind} key {}",
                if known { "VALID" } else { "SIGNATURE VALID, SIGNER UNKNOWN" },
                m.version,
                m.commit,
                m.built,
                m.files.len(),
                m.key_id
            );
            print(args, v, &line, true)?;
            if !args.json && m.key_kind == KeyKind::ThrowAway {
                eprintln!(
                    "note: a throw-away key (made for one CI build) signed this pack: it shows the \
                     files are unchanged since that build, not who built it"
                );
            }
            if known {
                Ok(exit::OK)
            } else {
                if !args.json {
                    eprintln!(
                        "note: checked only against the pack's own release.pub; pass --key with \
                         the project's release public key to know who signed it"
                    );
                }
                Ok(SIGNER_UNKNOWN)
            }
        }
        Err(e) => {
            let problems: Vec<String> = match &e {
                PackError::Differs(d) => d.iter().map(|x| x.to_string()).collect(),
                other => vec![other.to_string()],
            };
            let v = serde_json::json!({"result": "invalid", "problems": problems});
            let mut line = format!("INVALID  {dir}");
            for p in &problems {
                line.push_str(&format!("\n  {p}"));
            }
            print(args, v, &line, false)?;
            Ok(exit::ERROR)
        }
    }
}
