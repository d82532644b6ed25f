//! `lethe audit verify|export|checkpoint`: read the audit log in the state
//! directory (`audit.db`). These commands never write to it.
//!
//! Exit codes: 0 verified (or done), 2 tampering found, 1 error (no log, a
//! bad argument, an unusable external checkpoint). With `--json` the last
//! stdout line is one JSON object (`"status"`: `verified`, `tampered`,
//! `error`, or `ok` for `checkpoint`).

use crate::exit;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use lethe_audit::{
    export, verify_log, AuditStore, AuditTime, ExportFilter, ExportFormat, NoteVerifier,
    SqliteStore, VerifyReport, DB_FILE,
};
use lethe_cert::{load_public_key, VerifyingKey};
use lethe_jobs::state::StateDir;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    cmd: AuditCmd,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute the Merkle tree, check every checkpoint, name the first bad entry.
    Verify {
        /// A checkpoint saved off this appliance earlier (from `lethe audit
        /// checkpoint` or a certificate): detects truncation and rewrites.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// The appliance's public key: 64 hex digits or an appliance.pub file.
        /// Default: keys/appliance.pub in the state directory.
        #[arg(long)]
        key: Option<String>,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Export entries for auditors.
    Export {
        /// csv (RFC 4180, header row), json (one array) or jsonl (one object per line).
        #[arg(long, value_enum)]
        format: Format,
        /// Entries at or after this time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Entries before this time (same forms).
        #[arg(long)]
        until: Option<String>,
        /// Only entries by this user id.
        #[arg(long)]
        user: Option<String>,
        /// Only entries with this action (e.g. job.started); repeatable.
        #[arg(long)]
        action: Vec<String>,
        /// Write here instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the latest signed checkpoint, to keep off this appliance.
    Checkpoint {
        /// Print it inside one JSON object (with the verifier key).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Json,
    Jsonl,
}

fn db_path(state: &StateDir) -> PathBuf {
    state.root().join(DB_FILE)
}

fn open(state: &StateDir) -> Result<SqliteStore> {
    let path = db_path(state);
    SqliteStore::open_read_only(&path).with_context(|| "opening the audit log".to_string())
}

pub fn run(state: &StateDir, args: &AuditArgs) -> Result<u8> {
    match &args.cmd {
        AuditCmd::Verify {
            checkpoint,
            key,
            json,
        } => match verify(state, checkpoint.as_ref(), key.as_deref()) {
            Ok(report) => Ok(print_report(&report, *json)),
            Err(e) if *json => {
                eprintln!("lethe: error: {e:#}");
                outln!("{}", json!({"status": "error", "error": format!("{e:#}")}));
                Ok(exit::ERROR)
            }
            Err(e) => Err(e),
        },
        AuditCmd::Export {
            format,
            since,
            until,
            user,
            action,
            output,
        } => {
            let filter = ExportFilter {
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
                user_id: user.clone(),
                actions: action.clone(),
            };
            for a in &filter.actions {
                if lethe_audit::Action::from_name(a).is_none() {
                    eprintln!("lethe: note: {a:?} is not an action this lethe writes");
                }
            }
            let format = match format {
                Format::Csv => ExportFormat::Csv,
                Format::Json => ExportFormat::Json,
                Format::Jsonl => ExportFormat::JsonLines,
            };
            let store = open(state)?;
            let n = match output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut w = std::io::BufWriter::new(file);
                    let n = export(&store, &filter, format, &mut w)?;
                    w.into_inner()
                        .map_err(|e| anyhow!("writing {}: {}", path.display(), e.error()))?
                        .sync_all()
                        .with_context(|| format!("syncing {}", path.display()))?;
                    n
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    let n = export(&store, &filter, format, &mut w)?;
                    w.flush()?;
                    n
                }
            };
            eprintln!("exported {n} entries");
            Ok(exit::OK)
        }
        AuditCmd::Checkpoint { json } => {
            let store = open(state)?;
            let latest = store
                .latest_checkpoint()?
                .ok_or_else(|| anyhow!("the audit log has no checkpoint"))?;
            if *json {
                let vkey = local_key(state)
                    .and_then(|k| {
                        let origin = store.origin().ok()??;
                        NoteVerifier::new(&origin, k).ok()
                    })
                    .map(|v| v.to_vkey());
                outln!(
                    "{}",
                    json!({
                        "status": "ok",
                        "size": latest.size,
                        "checkpoint": latest.note,
                        "vkey": vkey,
                    })
                );
            } else {
                // Exactly the signed note, so `> file` saves a checkpoint
                // that `verify --checkpoint file` reads back.
                out!("{}", latest.note);
            }
            Ok(exit::OK)
        }
    }
}

fn local_key(state: &StateDir) -> Option<VerifyingKey> {
    let path = state.keys().join(lethe_cert::key::PUBLIC_KEY_FILE);
    load_public_key(path.to_str()?).ok()
}

fn verify(
    state: &StateDir,
    checkpoint: Option<&PathBuf>,
    key: Option<&str>,
) -> Result<VerifyReport> {
    let key = match key {
        Some(k) => load_public_key(k)?,
        None => local_key(state).ok_or_else(|| {
            anyhow!(
                "no public key: {} is missing; pass --key",
                state
                    .keys()
                    .join(lethe_cert::key::PUBLIC_KEY_FILE)
                    .display()
            )
        })?,
    };
    let external = checkpoint
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let store = open(state)?;
    Ok(verify_log(&store, &key, external.as_deref())?)
}

fn print_report(r: &VerifyReport, json: bool) -> u8 {
    let latest = r.latest.as_ref();
    let root = latest.map(|c| c.root_base64());
    if json {
        outln!(
            "{}",
            json!({
                "status": if r.is_intact() { "verified" } else { "tampered" },
                "origin": r.origin,
                "entries": r.entries,
                "checkpoints": r.checkpoints,
                "size": latest.map(|c| c.size),
                "root": root,
                "anchored": r.is_anchored(),
                "external_size": r.external.as_ref().map(|e| e.checkpoint.size),
                "first_bad_entry": r.finding.as_ref().map(|f| f.index),
                "reason": r.finding.as_ref().map(|f| f.reason.to_string()),
            })
        );
    } else {
        match &r.finding {
            None => {
                outln!(
                    "VERIFIED  {}: {} entries, {} checkpoints, root {}",
                    r.origin,
                    r.entries,
                    r.checkpoints,
                    root.as_deref().unwrap_or("-")
                );
                match &r.external {
                    Some(e) => outln!(
                        "anchored: consistent with the external checkpoint of size {}",
                        e.checkpoint.size
                    ),
                    None => outln!(
                        "note: not anchored. Removing the newest entries together with their \
                         checkpoints cannot be seen from inside; pass --checkpoint FILE with a \
                         checkpoint saved off this appliance"
                    ),
                }
            }
            Some(f) => outln!("TAMPERED  {}: {f}", r.origin),
        }
    }
    if r.is_intact() {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_time(s: &str) -> Result<AuditTime> {
    if let Ok(t) = AuditTime::parse(s) {
        return Ok(t);
    }
    match AuditTime::parse(&format!("{s}T00:00:00Z")) {
        Ok(t) if s.len() == 10 => Ok(t),
        _ => bail!("{s:?} is not a date (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)"),
    }
}
