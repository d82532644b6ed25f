//! `lethe backup …`: encrypted, deduplicated backups with restic's
//! conventions (`--repo`/`LETHE_REPO`, `--password-file`/`LETHE_PASSWORD_FILE`,
//! `--password-command`/`LETHE_PASSWORD_COMMAND`, `LETHE_PASSWORD`, a prompt on a
//! terminal, AWS_* credentials for S3, `--host`/`--tag`/`--path` filters), plus
//! restore drills, repairs and key management.
//!
//! A thin edge: parse the arguments, build the engine's request, render its
//! report, map its [`Outcome`] to an exit code. Every piece of backup logic
//! (locks, freshness, damage handling, scheduled runs) lives in `lethe-backup`.
//! The highest manifest generation seen per repository is kept in the state
//! directory (`backup-generations/`), so a rolled-back repository is noticed.
//!
//! Exit codes: 0 ok; 1 error (nothing done, or the run did not complete);
//! 2 failed (`check` found damage, a rollback, deletion or replay; a restore
//! could not restore some entries; a drill failed; a scheduled step failed or
//! a slot was missed; `latest` refused because files were changed behind our
//! back); 3 completed with warnings (files unreadable or changed while read,
//! damaged objects skipped, entries left in place by `--existing refuse`).
//! With `--json` the last stdout line is always a JSON object or array, errors
//! included. Output to a closed pipe ends the command quietly.

mod args;
mod render;
mod schedule_check;
mod scheduled;
pub(crate) mod secret;

pub use args::BackupArgs;

use crate::exit;
use anyhow::{anyhow, bail, Context, Result};
use args::{BackupCmd, KeyCmd, RepairCmd, ScheduleCmd};
use lethe_backup::archive::{self, BackupOptions, BackupSource};
use lethe_backup::connect::{self, ConnectOptions, Connection};
use lethe_backup::drill::{self, DrillRequest};
use lethe_backup::prune::ForgetRequest;
use lethe_backup::repair;
use lethe_backup::repo::Selector;
use lethe_backup::restore::{self, RestoreOptions};
use lethe_backup::scheduled::RunResult;
use lethe_backup::seen::SeenDir;
use lethe_backup::walk::Filter;
use lethe_backup::{check, prune, BackupError, Outcome, Repository};
use lethe_jobs::state::StateDir;
use lethe_repo::keys::KdfParams;
use lethe_store::{BackupRun, JobStore};
use render::{out, BarProgress};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// Exit code of "completed with warnings" (the wipe's "incomplete" code).
const WARNINGS: u8 = exit::INCOMPLETE;

fn code(o: Outcome) -> u8 {
    match o {
        Outcome::Ok => exit::OK,
        Outcome::CompletedWithWarnings => WARNINGS,
        Outcome::Failed => exit::FAILED,
    }
}

fn connection(a: &BackupArgs) -> Result<Connection> {
    let url = a
        .repo
        .as_deref()
        .ok_or_else(|| anyhow!("no repository: give --repo or LETHE_REPO"))?;
    let opts = ConnectOptions {
        sftp_key: a.sftp_key.clone(),
        sftp_known_hosts: a.sftp_known_hosts.clone(),
    };
    connect::connect(url, &opts).with_context(|| format!("opening {url}"))
}

fn password(a: &BackupArgs) -> Result<secret::Secret> {
    secret::passphrase(
        a.password_file.as_deref(),
        a.password_command.as_deref(),
        "repository passphrase",
    )
}

/// An unlocked repository; the repository is dropped before its connection.
struct Open {
    repo: Repository,
    _conn: Connection,
}

fn open(state: &StateDir, a: &BackupArgs) -> Result<Open> {
    let conn = connection(a)?;
    let repo = match &a.recovery_key_file {
        Some(f) => {
            let text = secret::recovery_key(Some(f))?;
            Repository::open_with_recovery(conn.store.clone(), &String::from_utf8_lossy(&text))?
        }
        None => Repository::open(conn.store.clone(), &password(a)?)?,
    };
    for w in &repo.key_warnings {
        eprintln!("lethe: warning: {w}");
    }
    Ok(Open {
        repo: repo.with_seen(Arc::new(SeenDir::in_state_dir(state.root()))),
        _conn: conn,
    })
}

fn unix_now() -> i64 {
    lethe_backup::repo::now().secs
}

fn random_seed() -> Result<u64> {
    Ok(u64::from_le_bytes(lethe_backup::repo::random()?))
}

/// Did the command stop because stdout is a closed pipe (`| head`)?
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub fn run(state: &StateDir, a: &BackupArgs) -> Result<u8> {
    match dispatch(state, a) {
        Ok(c) => Ok(c),
        Err(e) if closed_pipe(&e) => Ok(exit::OK),
        Err(e) => {
            // Files changed behind our back: "failed", not "error".
            let tampered = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<BackupError>(),
                    Some(BackupError::Tampered { .. })
                )
            });
            let c = if tampered { exit::FAILED } else { exit::ERROR };
            if a.json {
                eprintln!("lethe: error: {e:#}");
                let _ = out(serde_json::json!({"error": format!("{e:#}"), "exit": c}));
                Ok(c)
            } else if tampered {
                eprintln!("lethe: error: {e:#}");
                Ok(c)
            } else {
                Err(e)
            }
        }
    }
}

fn dispatch(state: &StateDir, a: &BackupArgs) -> Result<u8> {
    match &a.cmd {
        BackupCmd::RunScheduled { config } => scheduled::run(state, config, a.json),
        BackupCmd::History { job } => scheduled::history(state, job.as_deref(), a.json),
        BackupCmd::Schedule {
            cmd: ScheduleCmd::Check { file },
        } => schedule_check::run(file, a.json),
        BackupCmd::Init => {
            let conn = connection(a)?;
            let pw = match (&a.password_file, &a.password_command) {
                (None, None)
                    if std::env::var_os("LETHE_PASSWORD").is_none() && secret::can_prompt() =>
                {
                    secret::prompt_new("the new repository's passphrase")?
                }
                _ => password(a)?,
            };
            let (repo, recovery) =
                Repository::init(conn.store.clone(), &pw, KdfParams::DEFAULT, "init")?;
            let repo = repo.with_seen(Arc::new(SeenDir::in_state_dir(state.root())));
            // Remember generation 1: from now on a missing manifest is noticed.
            repo.state()?;
            if a.json {
                out(
                    serde_json::json!({"repository": repo.store.describe(), "recovery_key": recovery}),
                )?;
            } else {
                out(format_args!("created repository {}", repo.store.describe()))?;
                out("recovery key (print it and store it offline; it is shown only now):")?;
                out(format_args!("  {recovery}"))?;
            }
            Ok(exit::OK)
        }
        BackupCmd::Run(r) => backup_run(state, a, r),
        BackupCmd::Snapshots(f) => {
            let o = open(state, a)?;
            let st = o.repo.state()?;
            let mut list = o.repo.snapshots_in(&st)?;
            let filter = f.filter();
            list.ok.retain(|(_, s)| filter.matches(s));
            render::findings(&st.findings);
            render::snapshots(&list, &st, a.json)?;
            Ok(if !st.tampering().is_empty() {
                exit::FAILED
            } else if list.damaged.is_empty() {
                exit::OK
            } else {
                WARNINGS
            })
        }
        BackupCmd::Ls { snapshot, filter } => {
            let o = open(state, a)?;
            let (id, snap) = o
                .repo
                .select(&Selector::parse_with(snapshot, &filter.filter()))?;
            Ok(code(render::ls(&o.repo, &id, &snap, a.json)?))
        }
        BackupCmd::Restore(r) => {
            let o = open(state, a)?;
            let (id, snap) = o
                .repo
                .select(&Selector::parse_with(&r.snapshot, &r.filter()))?;
            let st = o.repo.state()?;
            render::findings(&st.findings);
            let mut rep = match (&r.target, &r.to) {
                (Some(t), None) => {
                    let opts = RestoreOptions {
                        existing: r.existing.into(),
                        ..RestoreOptions::default()
                    };
                    restore::restore_tree(&o.repo, &snap, r.path.as_deref(), t, &opts)?
                }
                (None, Some(to)) => {
                    if std::fs::metadata(to).is_ok_and(|m| {
                        use std::os::unix::fs::FileTypeExt;
                        m.file_type().is_block_device()
                    }) {
                        // Restoring onto a device overwrites it: the same chain as a wipe.
                        let Open { repo, _conn } = o;
                        let code = restore_to_device(state, a, r.yes, repo, id, snap, to);
                        drop(_conn);
                        return code;
                    }
                    let mut sink = restore::FileSink::create(to)?;
                    restore::restore_image(&o.repo, &snap, &mut sink, &to.display().to_string())?
                }
                _ => bail!(
                    "give --target DIR (directory trees) or --to FILE|DEVICE (images, streams)"
                ),
            };
            // Files changed behind our back are named with the restore.
            rep.warnings
                .extend(st.tampering().iter().map(|f| f.to_string()));
            rep.classify();
            render::restore(&id, &rep, a.json)?;
            Ok(code(rep.outcome))
        }
        BackupCmd::Check { read_data } => {
            let ppm = match read_data {
                Some(s) => args::read_data_percent(s)
                    .map_err(|e| anyhow!("--read-data {e}"))?
                    .ppm(),
                None => 0,
            };
            let o = open(state, a)?;
            let rep = check::check(&o.repo, ppm, random_seed()?)?;
            render::check(&rep, a.json)?;
            Ok(code(rep.outcome()))
        }
        BackupCmd::Forget(f) => {
            let policy = f.policy().map_err(|e| anyhow!(e))?;
            let o = open(state, a)?;
            let req = ForgetRequest {
                policy,
                filter: f.filter.filter(),
                source: None,
                ids: f.ids.clone(),
                dry_run: f.dry_run,
            };
            let rep = prune::forget_with(&o.repo, &req)?;
            let pruned = if f.prune && !f.dry_run {
                Some(prune::prune(&o.repo, 50_000)?)
            } else {
                None
            };
            render::forget(&rep, pruned.as_ref(), a.json)?;
            Ok(if rep.damaged.is_empty() {
                exit::OK
            } else {
                WARNINGS
            })
        }
        BackupCmd::Prune { max_unused } => {
            let ppm = args::max_unused_percent(max_unused)
                .map_err(|e| anyhow!("--max-unused {e}"))?
                .ppm();
            let o = open(state, a)?;
            let rep = prune::prune(&o.repo, ppm)?;
            render::prune(&rep, a.json)?;
            Ok(exit::OK)
        }
        BackupCmd::Repair { cmd } => {
            let o = open(state, a)?;
            match cmd {
                RepairCmd::Index { read_data } => {
                    let rep = repair::repair_index(&o.repo, *read_data)?;
                    render::repair_index(&rep, a.json)?;
                    Ok(
                        if rep.packs_damaged.is_empty() && rep.blobs_dropped.is_empty() {
                            exit::OK
                        } else {
                            WARNINGS
                        },
                    )
                }
                RepairCmd::Snapshots { forget, dry_run } => {
                    let rep = repair::repair_snapshots(
                        &o.repo,
                        *forget,
                        *dry_run,
                        lethe_backup::repo::now(),
                    )?;
                    render::repair_snapshots(&rep, a.json)?;
                    Ok(if rep.unrepairable.is_empty() {
                        exit::OK
                    } else {
                        WARNINGS
                    })
                }
                RepairCmd::Manifest => {
                    let rep = repair::repair_manifest(&o.repo)?;
                    render::repair_manifest(&rep, a.json)?;
                    Ok(if rep.lost.is_empty() {
                        exit::OK
                    } else {
                        WARNINGS
                    })
                }
            }
        }
        BackupCmd::Key { cmd } => key(state, a, cmd),
        BackupCmd::Drill {
            sample,
            scratch,
            seed,
            snapshot,
            filter,
        } => {
            let sample = args::ranged("--sample", sample, 1, 1_000_000).map_err(|e| anyhow!(e))?;
            let o = open(state, a)?;
            let req = DrillRequest {
                snapshot: Selector::parse_with(snapshot, &filter.filter()),
                sample: sample as usize,
                seed: match seed {
                    Some(s) => *s,
                    None => random_seed()?,
                },
                scratch: scratch.clone().unwrap_or_else(std::env::temp_dir),
            };
            let started = unix_now();
            let rep = drill::drill(&o.repo, &req)?;
            let result = if rep.outcome() == Outcome::Ok {
                RunResult::Pass
            } else {
                RunResult::Fail
            };
            record_manual(
                state,
                &o.repo,
                "drill",
                started,
                result,
                serde_json::to_string(&rep)?,
            );
            render::drill(&rep, a.json)?;
            Ok(code(rep.outcome()))
        }
    }
}

fn backup_run(state: &StateDir, a: &BackupArgs, r: &args::RunArgs) -> Result<u8> {
    let threads = r
        .threads
        .as_deref()
        .map(|s| args::ranged("--threads", s, 1, 256))
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let lock_days = r
        .lock_days
        .as_deref()
        .map(|s| args::ranged("--lock-days", s, 1, 36_500))
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let Open { mut repo, _conn } = open(state, a)?;
    if let Some(days) = lock_days {
        // Ransomware protection: the backend refuses to delete these
        // objects (even with the repository's credentials) until then.
        let retention = lethe_backend::Retention {
            mode: if r.lock_mode == "governance" {
                lethe_backend::RetentionMode::Governance
            } else {
                lethe_backend::RetentionMode::Compliance
            },
            retain_until: std::time::SystemTime::now()
                + std::time::Duration::from_secs(u64::from(days) * 86_400),
        };
        repo.write_opts.retention = Some(retention);
        // The config and the key files get the same retention as the data.
        repo.retain_keys_and_config(&retention)?;
    }
    let mut opts = BackupOptions::for_this_host();
    opts.tags = r.tags.clone();
    if let Some(h) = &r.host {
        opts.hostname = h.clone();
    }
    opts.filter = Filter::new(&r.include, &r.exclude)?;
    if let Some(t) = threads {
        opts.threads = t as usize;
    }
    let started = unix_now();
    let report = if let Some(dev) = &r.device {
        let identity = render::device_identity(dev)?;
        let bar = BarProgress::new(a.json, Some(identity.size_bytes));
        let src = BackupSource::Device {
            path: dev.clone(),
            identity,
        };
        archive::backup(&repo, src, &opts, &bar)?
    } else if r.stdin {
        let bar = BarProgress::new(a.json, None);
        let mut stdin = std::io::stdin().lock();
        let src = BackupSource::Stream {
            name: r.stdin_name.clone(),
            reader: &mut stdin,
        };
        archive::backup(&repo, src, &opts, &bar)?
    } else {
        if r.paths.is_empty() {
            bail!("nothing to back up: give paths, --device or --stdin");
        }
        let paths: Vec<PathBuf> = r
            .paths
            .iter()
            .map(|p| std::fs::canonicalize(p).with_context(|| p.display().to_string()))
            .collect::<Result<_>>()?;
        // On a terminal, a quick stat pass gives the bar its total (and an ETA).
        let total = (!a.json && std::io::stderr().is_terminal())
            .then(|| paths.iter().map(|p| render::tree_bytes(p)).sum());
        let bar = BarProgress::new(a.json, total);
        archive::backup(&repo, BackupSource::Paths(paths), &opts, &bar)?
    };
    let result = match report.outcome {
        Outcome::Ok => RunResult::Pass,
        Outcome::CompletedWithWarnings => RunResult::Warn,
        Outcome::Failed => RunResult::Fail,
    };
    record_manual(
        state,
        &repo,
        "backup",
        started,
        result,
        serde_json::to_string(&report)?,
    );
    render::backup(&report, a.json)?;
    Ok(code(report.outcome))
}

fn key(state: &StateDir, a: &BackupArgs, cmd: &KeyCmd) -> Result<u8> {
    if let KeyCmd::Recover {
        new_password_file,
        label,
    } = cmd
    {
        // Every passphrase lost: the recovery key opens the repository, a new
        // passphrase is added.
        let text = secret::recovery_key(a.recovery_key_file.as_deref())?;
        let conn = connection(a)?;
        let repo =
            Repository::open_with_recovery(conn.store.clone(), &String::from_utf8_lossy(&text))?
                .with_seen(Arc::new(SeenDir::in_state_dir(state.root())));
        let pw = secret::new_passphrase(new_password_file.as_deref(), "the new passphrase")?;
        let id = repo.key_add(&pw, label)?;
        if a.json {
            out(serde_json::json!({"added": id.to_hex(), "label": label}))?;
        } else {
            out(format_args!(
                "the recovery key opened the repository; new passphrase added as key {} (\"{label}\")",
                &id.to_hex()[..16]
            ))?;
        }
        return Ok(exit::OK);
    }
    let Open { mut repo, _conn } = open(state, a)?;
    match cmd {
        KeyCmd::List => render::keys(&repo.key_list()?, a.json)?,
        KeyCmd::Add {
            new_password_file,
            label,
        } => {
            let pw = secret::new_passphrase(new_password_file.as_deref(), "the added passphrase")?;
            let id = repo.key_add(&pw, label)?;
            if a.json {
                out(serde_json::json!({"added": id.to_hex(), "label": label}))?;
            } else {
                out(format_args!("added key {}", id.to_hex()))?;
            }
        }
        KeyCmd::Remove { id } => {
            let all = repo.list_files(lethe_repo::FileKind::Key)?;
            let m: Vec<_> = all
                .iter()
                .filter(|(k, _)| k.to_hex().starts_with(id.as_str()))
                .collect();
            let [(k, _)] = m.as_slice() else {
                bail!("{id} matches {} key files", m.len());
            };
            repo.key_remove(k)?;
            if a.json {
                out(serde_json::json!({"removed": k.to_hex()}))?;
            } else {
                out(format_args!(
                    "removed key {}; run `lethe backup key rotate` so a copy of it opens nothing written from now on",
                    k.to_hex()
                ))?;
            }
        }
        KeyCmd::Passwd { new_password_file } => {
            let old = if a.recovery_key_file.is_some() {
                bail!("`key passwd` changes a passphrase: open with it, not with the recovery key (use `key recover`)");
            } else {
                password(a)?
            };
            let new = secret::new_passphrase(new_password_file.as_deref(), "the new passphrase")?;
            let id = repo.key_passwd(&old, &new, KdfParams::DEFAULT)?;
            if a.json {
                out(serde_json::json!({"key": id.to_hex()}))?;
            } else {
                out(format_args!(
                    "passphrase changed; key is now {}",
                    id.to_hex()
                ))?;
            }
        }
        KeyCmd::Rotate => {
            let pw = if a.recovery_key_file.is_some() {
                None
            } else {
                Some(password(a)?)
            };
            let rep =
                lethe_backup::rotate::key_rotate(&mut repo, pw.as_ref().map(|p| p.as_slice()))?;
            render::rotate(&rep, a.json)?;
        }
        KeyCmd::Recover { .. } => unreachable!("handled above"),
    }
    Ok(exit::OK)
}

/// Manual runs and drills go into the same history as scheduled ones, under
/// the job name `manual:<repository>`. The history is a record, not a
/// precondition: failing to write it only warns.
fn record_manual(
    state: &StateDir,
    repo: &Repository,
    kind: &str,
    started: i64,
    result: RunResult,
    detail: String,
) {
    let run = BackupRun {
        job: format!("manual:{}", repo.store.describe()),
        kind: kind.into(),
        started,
        ended: unix_now(),
        result: result.as_str().into(),
        detail,
    };
    if let Err(e) = JobStore::open(state.root()).and_then(|db| db.record_run(&run)) {
        eprintln!("lethe: warning: backup history not updated: {e}");
    }
}

/// `restore --to DEVICE`: a job of the job library (exclusive, confirmed,
/// size-checked, recorded); this edge only asks and renders.
fn restore_to_device(
    state: &StateDir,
    a: &BackupArgs,
    yes: bool,
    repo: Repository,
    id: lethe_repo::Id,
    snap: lethe_repo::snapshot::Snapshot,
    to: &std::path::Path,
) -> Result<u8> {
    use lethe_jobs::{JobRequest, Outcome, RestoreImageRequest};
    let image =
        lethe_jobs::restore::SnapshotImage::new(std::sync::Arc::new(repo), snap, id.to_hex())
            .map_err(|e| anyhow!(e))?;
    let jobs = crate::edge::jobs(state, None)?;
    let confirmation = if yes {
        crate::edge::waived()
    } else {
        let shown = match jobs.inspect(to) {
            Ok(s) => s,
            Err(why) => return Ok(crate::render::refusal(a.json, &why)),
        };
        match crate::edge::ask(&shown, lethe_jobs::confirm::Consequence::Overwritten)? {
            Some(c) => c,
            None => return Ok(exit::ERROR),
        }
    };
    let stop = crate::edge::stop_flag()?;
    let job = jobs.submit(JobRequest::RestoreImage(RestoreImageRequest {
        device: to.to_path_buf(),
        confirmation,
        image: std::sync::Arc::new(image),
        operator_id: crate::edge::default_operator(),
    }));
    let report =
        crate::render::Render::new(a.json, std::time::Duration::from_secs(1)).follow(&job, &stop);
    match &report.outcome {
        Outcome::Passed => {
            if a.json {
                out(
                    serde_json::json!({"snapshot": id.to_hex(), "restored": {"files": 1, "bytes": report.bytes_written}, "job": report.job}),
                )?;
            } else {
                out(format_args!(
                    "restored {} onto {} from {} (job {}); the image matched its backup-time BLAKE3",
                    render::human(report.bytes_written),
                    to.display(),
                    &id.to_hex()[..16],
                    report.job.as_deref().unwrap_or("-")
                ))?;
            }
            Ok(exit::OK)
        }
        Outcome::Refused(why) => Ok(crate::render::refusal(a.json, why)),
        _ => {
            for p in &report.problems {
                eprintln!("lethe: error: {p}");
            }
            if a.json {
                out(crate::render::summary(&report))?;
            }
            Ok(crate::render::exit_code(&report.outcome))
        }
    }
}
