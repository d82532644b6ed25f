//! `lethe backup …`: encrypted, deduplicated backups with restic's
//! conventions (`--repo`/`LETHE_REPO`, `--password-file`/`LETHE_PASSWORD_FILE`/
//! `LETHE_PASSWORD`, AWS_* credentials for S3), plus restore drills and repairs.
//!
//! A thin edge: parse the arguments, build the engine's request, render its
//! report, map its [`Outcome`] to an exit code. Every piece of backup logic
//! (locks, damage handling, scheduled runs) lives in `lethe-backup`.
//!
//! Exit codes: 0 ok; 1 error (nothing done, or the run did not complete);
//! 2 failed (`check` found damage, a restore could not restore some entries,
//! a drill failed, a scheduled step failed or a slot was missed);
//! 3 completed with warnings (files unreadable or changed while read, damaged
//! objects skipped, entries left in place by `--existing refuse`).

mod args;
mod render;
mod scheduled;

pub use args::BackupArgs;

use crate::exit;
use anyhow::{anyhow, bail, Context, Result};
use args::{BackupCmd, KeyCmd, RepairCmd};
use lethe_backup::archive::{self, BackupOptions, BackupSource};
use lethe_backup::connect::{self, ConnectOptions, Connection};
use lethe_backup::drill::{self, DrillRequest};
use lethe_backup::repair;
use lethe_backup::repo::Selector;
use lethe_backup::restore::{self, RestoreOptions};
use lethe_backup::scheduled::RunResult;
use lethe_backup::walk::Filter;
use lethe_backup::{check, prune, Outcome, Repository};
use lethe_jobs::state::StateDir;
use lethe_repo::keys::KdfParams;
use lethe_repo::FileKind;
use lethe_store::{BackupRun, JobStore};
use render::BarProgress;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Exit code of "completed with warnings" (the wipe's "incomplete" code).
const WARNINGS: u8 = exit::INCOMPLETE;

fn code(o: Outcome) -> u8 {
    match o {
        Outcome::Ok => exit::OK,
        Outcome::CompletedWithWarnings => WARNINGS,
        Outcome::Failed => exit::FAILED,
    }
}

fn password(a: &BackupArgs) -> Result<Vec<u8>> {
    if let Some(p) = &a.password_file {
        return Ok(connect::read_secret(p)?);
    }
    match std::env::var("LETHE_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(p.into_bytes()),
        _ => bail!("no passphrase: give --password-file, LETHE_PASSWORD_FILE or LETHE_PASSWORD"),
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

/// An unlocked repository; the repository is dropped before its connection.
struct Open {
    repo: Repository,
    _conn: Connection,
}

fn open(a: &BackupArgs) -> Result<Open> {
    let conn = connection(a)?;
    let repo = match &a.recovery_key_file {
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| f.display().to_string())?;
            Repository::open_with_recovery(conn.store.clone(), text.trim())?
        }
        None => Repository::open(conn.store.clone(), &password(a)?)?,
    };
    Ok(Open { repo, _conn: conn })
}

fn unix_now() -> i64 {
    lethe_backup::repo::now().secs
}

fn random_seed() -> Result<u64> {
    Ok(u64::from_le_bytes(lethe_backup::repo::random()?))
}

pub fn run(state: &StateDir, a: &BackupArgs) -> Result<u8> {
    match &a.cmd {
        BackupCmd::RunScheduled { config } => scheduled::run(state, config, a.json),
        BackupCmd::History { job } => scheduled::history(state, job.as_deref(), a.json),
        BackupCmd::Init => {
            let conn = connection(a)?;
            let pw = password(a)?;
            let (repo, recovery) =
                Repository::init(conn.store.clone(), &pw, KdfParams::DEFAULT, "init")?;
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"repository": repo.store.describe(), "recovery_key": recovery})
                );
            } else {
                println!("created repository {}", repo.store.describe());
                println!("recovery key (print it and store it offline; it is shown only now):");
                println!("  {recovery}");
            }
            Ok(exit::OK)
        }
        BackupCmd::Run(r) => backup_run(state, a, r),
        BackupCmd::Snapshots => {
            let o = open(a)?;
            let list = o.repo.snapshots()?;
            render::snapshots(&list, a.json)?;
            Ok(if list.damaged.is_empty() {
                exit::OK
            } else {
                WARNINGS
            })
        }
        BackupCmd::Ls { snapshot } => {
            let o = open(a)?;
            let (_, snap) = o.repo.find_snapshot(snapshot)?;
            Ok(code(render::ls(&o.repo, &snap)?))
        }
        BackupCmd::Restore(r) => {
            let o = open(a)?;
            let (id, snap) = o.repo.find_snapshot(&r.snapshot)?;
            let rep = match (&r.target, &r.to) {
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
            render::restore(&id, &rep, a.json);
            Ok(code(rep.outcome))
        }
        BackupCmd::Check { read_data } => {
            let ppm = match read_data {
                Some(s) => args::read_data_percent(s)
                    .map_err(|e| anyhow!("--read-data {e}"))?
                    .ppm(),
                None => 0,
            };
            let o = open(a)?;
            let rep = check::check(&o.repo, ppm, random_seed()?)?;
            render::check(&rep, a.json)?;
            Ok(code(rep.outcome()))
        }
        BackupCmd::Forget(f) => {
            let policy = f.policy().map_err(|e| anyhow!(e))?;
            let o = open(a)?;
            let rep = prune::forget(&o.repo, &policy, f.dry_run)?;
            render::forget(&rep, f.dry_run, a.json)?;
            if f.prune && !f.dry_run {
                let p = prune::prune(&o.repo, 50_000)?;
                render::prune(&p, a.json)?;
            }
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
            let o = open(a)?;
            let rep = prune::prune(&o.repo, ppm)?;
            render::prune(&rep, a.json)?;
            Ok(exit::OK)
        }
        BackupCmd::Repair { cmd } => {
            let o = open(a)?;
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
            }
        }
        BackupCmd::Key { cmd } => key(a, cmd),
        BackupCmd::Drill {
            sample,
            scratch,
            seed,
            snapshot,
        } => {
            let sample = args::ranged("--sample", sample, 1, 1_000_000).map_err(|e| anyhow!(e))?;
            let o = open(a)?;
            let req = DrillRequest {
                snapshot: Selector::parse(snapshot),
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
    let Open { mut repo, _conn } = open(a)?;
    if let Some(days) = lock_days {
        // Ransomware protection: the backend refuses to delete these
        // objects (even with the repository's credentials) until then.
        repo.write_opts.retention = Some(lethe_backend::Retention {
            mode: if r.lock_mode == "governance" {
                lethe_backend::RetentionMode::Governance
            } else {
                lethe_backend::RetentionMode::Compliance
            },
            retain_until: std::time::SystemTime::now()
                + std::time::Duration::from_secs(u64::from(days) * 86_400),
        });
    }
    let mut opts = BackupOptions::for_this_host();
    opts.tags = r.tags.clone();
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

fn key(a: &BackupArgs, cmd: &KeyCmd) -> Result<u8> {
    let Open { mut repo, _conn } = open(a)?;
    match cmd {
        KeyCmd::List => {
            for (id, _) in repo.list_files(FileKind::Key)? {
                let mark = if id == repo.key_id { "*" } else { " " };
                println!("{mark} {}", id.to_hex());
            }
        }
        KeyCmd::Add {
            new_password_file,
            label,
        } => {
            let id = repo.key_add(&connect::read_secret(new_password_file)?, label)?;
            println!("added key {}", id.to_hex());
        }
        KeyCmd::Remove { id } => {
            let all = repo.list_files(FileKind::Key)?;
            let m: Vec<_> = all
                .iter()
                .filter(|(k, _)| k.to_hex().starts_with(id.as_str()))
                .collect();
            let [(k, _)] = m.as_slice() else {
                bail!("{id} matches {} key files", m.len());
            };
            repo.key_remove(k)?;
            println!("removed key {}", k.to_hex());
        }
        KeyCmd::Passwd { new_password_file } => {
            let old = password(a)?;
            let id = repo.key_passwd(
                &old,
                &connect::read_secret(new_password_file)?,
                KdfParams::DEFAULT,
            )?;
            println!("passphrase changed; key is now {}", id.to_hex());
        }
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
                println!(
                    "{}",
                    serde_json::json!({"snapshot": id.to_hex(), "restored": {"files": 1, "bytes": report.bytes_written}, "job": report.job})
                );
            } else {
                println!(
                    "restored {} onto {} from {} (job {}); the image matched its backup-time BLAKE3",
                    render::human(report.bytes_written),
                    to.display(),
                    &id.to_hex()[..16],
                    report.job.as_deref().unwrap_or("-")
                );
            }
            Ok(exit::OK)
        }
        Outcome::Refused(why) => Ok(crate::render::refusal(a.json, why)),
        _ => {
            for p in &report.problems {
                eprintln!("lethe: error: {p}");
            }
            if a.json {
                println!("{}", crate::render::summary(&report));
            }
            Ok(crate::render::exit_code(&report.outcome))
        }
    }
}
