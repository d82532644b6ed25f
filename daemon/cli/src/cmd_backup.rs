//! `lethe backup …`: encrypted, deduplicated backups with restic's
//! conventions (`--repo`/`LETHE_REPO`, `--password-file`/`LETHE_PASSWORD_FILE`/
//! `LETHE_PASSWORD`, AWS_* credentials for S3), plus restore drills.

use crate::exit;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lethe_backend::{BackendConfig, HostKeyCheck, Location, S3Credentials, SftpConfig};
use lethe_backup::archive::{self, BackupOptions, Progress};
use lethe_backup::schedule::{self, JobConfig, ScheduleFile};
use lethe_backup::walk::Filter;
use lethe_backup::{check, drill, prune, restore, Repository, Store};
use lethe_jobs::state::StateDir;
use lethe_repo::keys::KdfParams;
use lethe_repo::retention::{KeepN, Policy};
use lethe_repo::snapshot::Source;
use lethe_repo::tree::NodeKind;
use lethe_repo::FileKind;
use lethe_store::{BackupRun, JobStore};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct BackupArgs {
    /// Repository: a local path, s3:http://HOST:PORT/BUCKET/PREFIX or sftp:USER@HOST:PORT/PATH.
    #[arg(long, short = 'r', env = "LETHE_REPO", global = true)]
    repo: Option<String>,
    /// File holding the repository passphrase.
    #[arg(long, env = "LETHE_PASSWORD_FILE", global = true)]
    password_file: Option<PathBuf>,
    /// Private key for sftp: repositories.
    #[arg(long, env = "LETHE_SFTP_KEY", global = true)]
    sftp_key: Option<PathBuf>,
    /// known_hosts file for sftp: repositories (host keys are always checked).
    #[arg(long, env = "LETHE_SFTP_KNOWN_HOSTS", global = true)]
    sftp_known_hosts: Option<PathBuf>,
    /// JSON output (a JSON object as the last line).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: BackupCmd,
}

#[derive(Subcommand)]
enum BackupCmd {
    /// Create a repository; prints the recovery key once.
    Init,
    /// Back up paths, a block device (--device) or stdin (--stdin).
    Run(RunArgs),
    /// List snapshots.
    Snapshots,
    /// List the files of a snapshot.
    Ls {
        /// Snapshot id (prefix) or `latest`.
        snapshot: String,
    },
    /// Restore a snapshot, a sub-path, or an image/stream onto a file or device.
    Restore(RestoreArgs),
    /// Verify the repository; --read-data[=PERCENT] also decrypts content.
    Check {
        /// Download and verify this share of the packs (default all).
        #[arg(long, num_args = 0..=1, default_missing_value = "100", value_name = "PERCENT")]
        read_data: Option<f64>,
    },
    /// Remove snapshots by retention policy.
    Forget(ForgetArgs),
    /// Delete data no snapshot needs.
    Prune {
        /// Repack packs with more than this share unused.
        #[arg(long, default_value_t = 5.0)]
        max_unused: f64,
    },
    /// Manage passphrases.
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Run the jobs of a schedule file that are due (backup, retention, drill),
    /// recording every run, failure and missed slot in the history.
    RunScheduled {
        /// The schedule (TOML).
        #[arg(long, env = "LETHE_SCHEDULE")]
        config: PathBuf,
    },
    /// The history of scheduled runs, failures, missed slots and drills.
    History {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
    },
    /// Restore a random sample of the newest snapshot and compare with backup-time hashes.
    Drill {
        /// Files (or device ranges) to restore.
        #[arg(long, default_value_t = 20)]
        sample: usize,
        /// Scratch directory (default: a temporary directory).
        #[arg(long)]
        scratch: Option<PathBuf>,
        /// Seed of the sample (default: random, printed).
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Files and directories to back up.
    paths: Vec<PathBuf>,
    /// Image this block device (or file) instead.
    #[arg(long, conflicts_with_all = ["paths", "stdin"])]
    device: Option<PathBuf>,
    /// Back up standard input (e.g. a database dump).
    #[arg(long, conflicts_with = "paths")]
    stdin: bool,
    /// Name recorded for --stdin.
    #[arg(long, default_value = "stdin")]
    stdin_name: String,
    /// Tag the snapshot.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Skip paths matching this glob (a bare name matches at any depth).
    #[arg(long)]
    exclude: Vec<String>,
    /// Keep only files matching this glob.
    #[arg(long)]
    include: Vec<String>,
    /// Sealing threads (default: CPU count).
    #[arg(long)]
    threads: Option<usize>,
    /// S3 Object Lock: keep every object this run stores undeletable for N days.
    #[arg(long, value_name = "DAYS")]
    lock_days: Option<u32>,
    /// Object Lock mode: compliance (nobody can delete early) or governance.
    #[arg(long, default_value = "compliance", value_parser = ["compliance", "governance"])]
    lock_mode: String,
}

#[derive(Args)]
struct RestoreArgs {
    /// Snapshot id (prefix) or `latest`.
    snapshot: String,
    /// Target directory (tree snapshots).
    #[arg(long, conflicts_with = "to")]
    target: Option<PathBuf>,
    /// Only this path inside the snapshot.
    #[arg(long)]
    path: Option<String>,
    /// File or block device to write an image or stream to. A device is
    /// overwritten through the job library, like a wipe: protected devices
    /// are refused, it is held exclusively, a confirmation is asked, a device
    /// smaller than the image is refused, and the restore is recorded as a job.
    #[arg(long)]
    to: Option<PathBuf>,
    /// Do not ask for confirmation before overwriting a device.
    #[arg(long, short = 'y')]
    yes: bool,
}

#[derive(Args)]
struct ForgetArgs {
    #[arg(long)]
    keep_last: Option<u32>,
    #[arg(long)]
    keep_hourly: Option<u32>,
    #[arg(long)]
    keep_daily: Option<u32>,
    #[arg(long)]
    keep_weekly: Option<u32>,
    #[arg(long)]
    keep_monthly: Option<u32>,
    #[arg(long)]
    keep_yearly: Option<u32>,
    /// Show what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Prune afterwards.
    #[arg(long)]
    prune: bool,
}

#[derive(Subcommand)]
enum KeyCmd {
    /// List key files.
    List,
    /// Add a passphrase (read from --new-password-file).
    Add {
        #[arg(long)]
        new_password_file: PathBuf,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Remove a key file (never the one in use, never the last).
    Remove { id: String },
    /// Change the passphrase of the key in use.
    Passwd {
        #[arg(long)]
        new_password_file: PathBuf,
    },
}

impl ForgetArgs {
    fn policy(&self) -> Policy {
        let k = |v: Option<u32>| v.map(KeepN::Count);
        Policy {
            last: k(self.keep_last),
            hourly: k(self.keep_hourly),
            daily: k(self.keep_daily),
            weekly: k(self.keep_weekly),
            monthly: k(self.keep_monthly),
            yearly: k(self.keep_yearly),
            ..Policy::default()
        }
    }
}

fn read_secret(path: &Path) -> Result<Vec<u8>> {
    let s = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // A trailing newline is not part of the passphrase (as in restic).
    let s = s.strip_suffix(b"\n").unwrap_or(&s);
    let s = s.strip_suffix(b"\r").unwrap_or(s);
    if s.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(s.to_vec())
}

fn password(a: &BackupArgs) -> Result<Vec<u8>> {
    if let Some(p) = &a.password_file {
        return read_secret(p);
    }
    match std::env::var("LETHE_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(p.into_bytes()),
        _ => bail!("no passphrase: give --password-file, LETHE_PASSWORD_FILE or LETHE_PASSWORD"),
    }
}

/// The runtime and the store for `--repo`.
fn store(a: &BackupArgs) -> Result<(tokio::runtime::Runtime, Store)> {
    let url = a
        .repo
        .as_deref()
        .ok_or_else(|| anyhow!("no repository: give --repo or LETHE_REPO"))?;
    store_at(url, a.sftp_key.clone(), a.sftp_known_hosts.clone())
}

/// The runtime and the store for a repository URL.
fn store_at(
    url: &str,
    sftp_key: Option<PathBuf>,
    sftp_known_hosts: Option<PathBuf>,
) -> Result<(tokio::runtime::Runtime, Store)> {
    let a = SftpOpts {
        sftp_key,
        sftp_known_hosts,
    };
    let loc = lethe_backend::location::parse(url).map_err(|e| anyhow!("{e}"))?;
    let mut cfg = BackendConfig::default();
    match &loc {
        Location::S3(_) => cfg.s3 = Some(S3Credentials::from_env()?),
        Location::Sftp(_) => {
            let key_file = a
                .sftp_key
                .clone()
                .ok_or_else(|| anyhow!("sftp: repositories need --sftp-key (or LETHE_SFTP_KEY)"))?;
            let kh = a.sftp_known_hosts.clone().unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                    .join(".ssh/known_hosts")
            });
            cfg.sftp = Some(SftpConfig {
                key_file,
                host_key: HostKeyCheck::KnownHostsFile(kh),
            });
        }
        Location::Local(_) => {}
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    let backend = rt
        .block_on(lethe_backend::open(&loc, &cfg))
        .with_context(|| format!("opening {loc}"))?;
    let s = Store::new(backend, rt.handle().clone());
    Ok((rt, s))
}

struct SftpOpts {
    sftp_key: Option<PathBuf>,
    sftp_known_hosts: Option<PathBuf>,
}

fn open(a: &BackupArgs) -> Result<(tokio::runtime::Runtime, Repository)> {
    let (rt, s) = store(a)?;
    let pw = password(a)?;
    let repo = Repository::open(s, &pw)?;
    Ok((rt, repo))
}

struct BarProgress(Option<ProgressBar>);

impl BarProgress {
    fn new(json: bool, total: Option<u64>) -> Self {
        if json || !std::io::stderr().is_terminal() {
            return BarProgress(None);
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(4));
        let t = if total.is_some() {
            "{msg:<10} [{wide_bar:.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec:>12} ETA {eta:>4}"
        } else {
            "{msg:<10} {spinner} {bytes} {binary_bytes_per_sec:>12} {elapsed}"
        };
        bar.set_style(
            ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message("backup");
        BarProgress(Some(bar))
    }
}

impl Progress for BarProgress {
    fn bytes(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
}

fn human(n: u64) -> String {
    let u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < u.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", u[i])
}

pub fn run(state: &StateDir, a: &BackupArgs) -> Result<u8> {
    match &a.cmd {
        BackupCmd::RunScheduled { config } => run_scheduled(state, config, a.json),
        BackupCmd::History { job } => history(state, job.as_deref(), a.json),
        BackupCmd::Init => {
            let (_rt, s) = store(a)?;
            let pw = password(a)?;
            let (repo, recovery) = Repository::init(s, &pw, KdfParams::DEFAULT, "init")?;
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
        BackupCmd::Run(r) => {
            let (_rt, mut repo) = open(a)?;
            if let Some(days) = r.lock_days {
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
            let _lock =
                lethe_backup::lock::Lock::acquire(&repo, lethe_backup::lock::LockKind::Shared)?;
            let opts = BackupOptions {
                tags: r.tags.clone(),
                threads: r
                    .threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
                filter: Filter::new(&r.include, &r.exclude)?,
                hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default(),
                username: std::env::var("USER").unwrap_or_default(),
            };
            let started = unix_now();
            let report = if let Some(dev) = &r.device {
                let id = device_identity(dev)?;
                let bar = BarProgress::new(a.json, Some(id.size_bytes));
                archive::backup_device(&repo, dev, id, &opts, &bar)?
            } else if r.stdin {
                let bar = BarProgress::new(a.json, None);
                let mut stdin = std::io::stdin().lock();
                archive::backup_stream(&repo, &mut stdin, &r.stdin_name, &opts, &bar)?
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
                    .then(|| paths.iter().map(|p| tree_bytes(p)).sum());
                let bar = BarProgress::new(a.json, total);
                archive::backup_paths(&repo, &paths, &opts, &bar)?
            };
            record_manual(
                state,
                &repo,
                "backup",
                started,
                if report.warnings.is_empty() {
                    "pass"
                } else {
                    "fail"
                },
                serde_json::to_string(&report)?,
            );
            if a.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("snapshot {} saved", &report.snapshot[..16]);
                println!(
                    "  {} files, {} dirs, {} processed, {} read in {:.1} s",
                    report.files,
                    report.dirs,
                    human(report.bytes_total),
                    human(report.bytes_read),
                    report.seconds
                );
                println!(
                    "  new {}  reused {}  stored {}  dedup ratio {:.2}",
                    human(report.bytes_new),
                    human(report.bytes_reused),
                    human(report.bytes_stored),
                    report.dedup_ratio
                );
                for w in &report.warnings {
                    eprintln!("  warning: {w}");
                }
            }
            // Files that could not be read make the run incomplete, not silent.
            Ok(if report.warnings.is_empty() {
                exit::OK
            } else {
                exit::INCOMPLETE
            })
        }
        BackupCmd::Snapshots => {
            let (_rt, repo) = open(a)?;
            let snaps = repo.snapshots()?;
            if a.json {
                let v: Vec<_> = snaps
                    .iter()
                    .map(|(id, s)| {
                        serde_json::json!({
                            "id": id.to_hex(), "time": s.time.secs, "hostname": s.hostname,
                            "tags": s.tags, "source": source_label(&s.source),
                            "bytes_read": s.summary.bytes_read, "bytes_added": s.summary.bytes_added,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string(&v)?);
            } else {
                println!("{:<16}  {:<20}  {:<12}  source", "id", "time (UTC)", "host");
                for (id, s) in &snaps {
                    println!(
                        "{:<16}  {:<20}  {:<12}  {}",
                        &id.to_hex()[..16],
                        lethe_core::timefmt::rfc3339_utc(s.time.secs),
                        s.hostname,
                        source_label(&s.source)
                    );
                }
            }
            Ok(exit::OK)
        }
        BackupCmd::Ls { snapshot } => {
            let (_rt, repo) = open(a)?;
            let (_, snap) = repo.find_snapshot(snapshot)?;
            let Source::Tree { root, .. } = snap.source else {
                println!("{}", source_label(&snap.source));
                return Ok(exit::OK);
            };
            let mut r = restore::Reader::new(&repo)?;
            let mut stack = vec![(root, String::new())];
            while let Some((tid, path)) = stack.pop() {
                let t = r.tree(&tid)?;
                for n in t.nodes.iter().rev() {
                    let p = format!("{path}/{}", String::from_utf8_lossy(&n.name));
                    match &n.kind {
                        NodeKind::Dir { subtree } => {
                            println!("{p}/");
                            stack.push((*subtree, p));
                        }
                        _ => println!("{p}  {}", n.size),
                    }
                }
            }
            Ok(exit::OK)
        }
        BackupCmd::Restore(r) => {
            let (_rt, repo) = open(a)?;
            let (id, snap) = repo.find_snapshot(&r.snapshot)?;
            let rep = match (&r.target, &r.to) {
                (Some(t), None) => restore::restore_tree(&repo, &snap, r.path.as_deref(), t)?,
                (None, Some(to)) => {
                    if std::fs::metadata(to).is_ok_and(|m| {
                        use std::os::unix::fs::FileTypeExt;
                        m.file_type().is_block_device()
                    }) {
                        // Restoring onto a device overwrites it: the same chain as a wipe.
                        return restore_to_device(state, a, r.yes, repo, id, snap, to);
                    }
                    let mut sink = restore::FileSink::create(to)?;
                    restore::restore_image(&repo, &snap, &mut sink, &to.display().to_string())?
                }
                _ => bail!(
                    "give --target DIR (directory trees) or --to FILE|DEVICE (images, streams)"
                ),
            };
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"snapshot": id.to_hex(), "restored": rep})
                );
            } else {
                println!(
                    "restored {} files, {} dirs, {} from {}; every file matched its backup-time BLAKE3",
                    rep.files,
                    rep.dirs,
                    human(rep.bytes),
                    &id.to_hex()[..16]
                );
                for w in &rep.warnings {
                    eprintln!("  warning: {w}");
                }
            }
            Ok(exit::OK)
        }
        BackupCmd::Check { read_data } => {
            let (_rt, repo) = open(a)?;
            let ppm = read_data.map_or(0, |p| (p.clamp(0.0, 100.0) * 10_000.0) as u32);
            let seed = u64::from_le_bytes(lethe_backup::repo::random()?);
            let rep = check::check(&repo, ppm, seed)?;
            if a.json {
                println!("{}", serde_json::to_string(&rep)?);
            } else {
                println!(
                    "{} snapshots, {} blobs in {} packs; {} packs read back",
                    rep.snapshots, rep.blobs, rep.packs, rep.packs_read
                );
                for w in &rep.warnings {
                    println!("  warning: {w}");
                }
                for e in &rep.errors {
                    println!("  ERROR: {e}");
                }
                println!(
                    "{}",
                    if rep.ok() {
                        "no errors"
                    } else {
                        "THE REPOSITORY IS DAMAGED"
                    }
                );
            }
            Ok(if rep.ok() { exit::OK } else { exit::FAILED })
        }
        BackupCmd::Forget(f) => {
            let (_rt, repo) = open(a)?;
            let dec = prune::forget(&repo, &f.policy(), f.dry_run)?;
            let removed = dec.iter().filter(|d| !d.keep).count();
            if a.json {
                let v: Vec<_> = dec
                    .iter()
                    .map(|d| {
                        serde_json::json!({"id": d.id.to_hex(), "time": d.time, "keep": d.keep,
                        "reasons": d.reasons.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>()})
                    })
                    .collect();
                println!("{}", serde_json::to_string(&v)?);
            } else {
                for d in &dec {
                    println!(
                        "{} {}  {:?}",
                        if d.keep { "keep  " } else { "remove" },
                        &d.id.to_hex()[..16],
                        d.reasons
                    );
                }
                println!(
                    "{removed} snapshot(s) {}",
                    if f.dry_run {
                        "would be removed"
                    } else {
                        "removed"
                    }
                );
            }
            if f.prune && !f.dry_run {
                let rep = prune::prune(&repo, 50_000)?;
                println!("{}", serde_json::to_string(&rep)?);
            }
            Ok(exit::OK)
        }
        BackupCmd::Prune { max_unused } => {
            let (_rt, repo) = open(a)?;
            let rep = prune::prune(&repo, (max_unused.clamp(0.0, 100.0) * 10_000.0) as u32)?;
            if a.json {
                println!("{}", serde_json::to_string(&rep)?);
            } else {
                println!(
                    "deleted {} packs, repacked {} into {}, freed {}",
                    rep.packs_deleted,
                    rep.packs_repacked,
                    rep.packs_written,
                    human(rep.bytes_freed)
                );
            }
            Ok(exit::OK)
        }
        BackupCmd::Key { cmd } => {
            let (_rt, mut repo) = open(a)?;
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
                    let id = repo.key_add(&read_secret(new_password_file)?, label)?;
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
                        &read_secret(new_password_file)?,
                        KdfParams::DEFAULT,
                    )?;
                    println!("passphrase changed; key is now {}", id.to_hex());
                }
            }
            Ok(exit::OK)
        }
        BackupCmd::Drill {
            sample,
            scratch,
            seed,
        } => {
            let (_rt, repo) = open(a)?;
            let tmp;
            let dir = match scratch {
                Some(d) => d.clone(),
                None => {
                    tmp = tempfile::tempdir().context("scratch directory")?;
                    tmp.path().to_path_buf()
                }
            };
            let seed = match seed {
                Some(s) => *s,
                None => u64::from_le_bytes(lethe_backup::repo::random()?),
            };
            let started = unix_now();
            let rep = drill::drill(&repo, *sample, seed, &dir)?;
            record_manual(
                state,
                &repo,
                "drill",
                started,
                &rep.result,
                serde_json::to_string(&rep)?,
            );
            if a.json {
                println!("{}", serde_json::to_string(&rep)?);
            } else {
                println!(
                    "drill of {}: {} items, {} restored and compared in {:.1} s (seed {:#x}): {}",
                    &rep.snapshot[..16],
                    rep.items,
                    human(rep.bytes),
                    rep.seconds,
                    rep.seed,
                    rep.result.to_uppercase()
                );
                for f in &rep.failures {
                    eprintln!("  DRILL FAILURE: {f}");
                }
            }
            Ok(if rep.result == "pass" {
                exit::OK
            } else {
                exit::FAILED
            })
        }
    }
}

fn source_label(s: &Source) -> String {
    match s {
        Source::Tree { paths, .. } => paths
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        Source::Device { identity, .. } => format!(
            "device {} ({} {}, {} bytes)",
            identity.path, identity.model, identity.serial, identity.size_bytes
        ),
        Source::Stream { name, size, .. } => format!("stream {name} ({size} bytes)"),
    }
}

/// Identity recorded with a device image: from discovery for block devices,
/// from the file itself for image files.
fn device_identity(path: &Path) -> Result<lethe_repo::snapshot::DeviceIdentity> {
    let canon = std::fs::canonicalize(path).with_context(|| path.display().to_string())?;
    let md = std::fs::metadata(&canon)?;
    use std::os::unix::fs::FileTypeExt;
    if md.file_type().is_block_device() {
        let drives = lethe_linux::discovery::discover().context("listing block devices")?;
        let d = drives
            .iter()
            .find(|d| Path::new(&d.path) == canon)
            .ok_or_else(|| anyhow!("{} is not a whole block device", canon.display()))?;
        if d.reasons.iter().any(|r| r.to_string().contains("mounted")) {
            eprintln!(
                "lethe: warning: {} is mounted: the image may be inconsistent",
                d.path
            );
        }
        Ok(lethe_repo::snapshot::DeviceIdentity {
            path: d.path.clone(),
            model: d.model.clone().unwrap_or_default(),
            serial: d.serial.clone().unwrap_or_default(),
            wwn: d.wwn.clone(),
            size_bytes: d.size_bytes,
            logical_block_size: d.logical_sector,
        })
    } else if md.is_file() {
        Ok(lethe_repo::snapshot::DeviceIdentity {
            path: canon.display().to_string(),
            model: "image file".into(),
            serial: String::new(),
            wwn: None,
            size_bytes: md.len(),
            logical_block_size: 512,
        })
    } else {
        bail!("{} is neither a block device nor a file", canon.display())
    }
}

fn unix_now() -> i64 {
    lethe_backup::repo::now().secs
}

fn backup_opts(j: &JobConfig) -> Result<BackupOptions> {
    Ok(BackupOptions {
        tags: j.tags.clone(),
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        filter: Filter::new(&j.include, &j.exclude)?,
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        username: std::env::var("USER").unwrap_or_default(),
    })
}

/// One scheduled backup (and its retention), as a history entry each.
fn scheduled_backup(repo: &Repository, j: &JobConfig) -> Result<serde_json::Value> {
    let _lock = lethe_backup::lock::Lock::acquire(repo, lethe_backup::lock::LockKind::Shared)?;
    let opts = backup_opts(j)?;
    let report = if let Some(dev) = &j.device {
        let p = Path::new(dev);
        archive::backup_device(repo, p, device_identity(p)?, &opts, &())?
    } else if let Some(cmd) = &j.stdin_command {
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let mut out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let r = archive::backup_stream(repo, &mut out, &j.name, &opts, &())?;
        let st = child.wait()?;
        if !st.success() {
            // The dump failed: its snapshot is incomplete and must not pass.
            bail!(
                "{cmd:?} exited with {st}; snapshot {} holds its partial output",
                r.snapshot
            );
        }
        r
    } else {
        let paths: Vec<PathBuf> = j.paths.iter().map(PathBuf::from).collect();
        archive::backup_paths(repo, &paths, &opts, &())?
    };
    if !report.warnings.is_empty() {
        bail!(
            "{} file(s) could not be read: {}",
            report.warnings.len(),
            report.warnings.join("; ")
        );
    }
    Ok(serde_json::to_value(&report)?)
}

fn retention(j: &JobConfig) -> Policy {
    ForgetArgs {
        keep_last: j.keep_last,
        keep_hourly: j.keep_hourly,
        keep_daily: j.keep_daily,
        keep_weekly: j.keep_weekly,
        keep_monthly: j.keep_monthly,
        keep_yearly: j.keep_yearly,
        dry_run: false,
        prune: false,
    }
    .policy()
}

fn run_scheduled(state: &StateDir, config: &Path, json: bool) -> Result<u8> {
    let text = std::fs::read_to_string(config).with_context(|| config.display().to_string())?;
    let sched = ScheduleFile::parse(&text)?;
    let db = JobStore::open(state.root())?;
    let mut failed = 0;
    let mut done = Vec::new();
    let mut record = |job: &str,
                      kind: &str,
                      started: i64,
                      r: std::result::Result<serde_json::Value, String>|
     -> Result<()> {
        let (result, detail) = match r {
            Ok(v) if kind == "drill" && v["result"] != "pass" => ("fail", v.to_string()),
            Ok(v) => ("pass", v.to_string()),
            Err(e) if kind == "missed" => ("missed", e),
            Err(e) => ("fail", e),
        };
        if result != "pass" {
            failed += 1;
            eprintln!("lethe: {job}: {kind} {}: {detail}", result.to_uppercase());
        }
        let run = BackupRun {
            job: job.into(),
            kind: kind.into(),
            started,
            ended: unix_now(),
            result: result.into(),
            detail,
        };
        db.record_run(&run)?;
        done.push(run);
        Ok(())
    };
    for j in &sched.jobs {
        let runs = db.runs(Some(&j.name))?;
        let last = |k: &str| runs.iter().rev().find(|r| r.kind == k).map(|r| r.started);
        let now = unix_now();
        let due = schedule::due(
            schedule::parse_interval(&j.every)?,
            j.drill_every
                .as_deref()
                .map(schedule::parse_interval)
                .transpose()?,
            last("backup"),
            last("drill"),
            now,
        );
        if due.missed > 0 {
            record(
                &j.name,
                "missed",
                now,
                Err(format!(
                    "{} scheduled backup(s) every {} did not run (appliance off or scheduler stopped)",
                    due.missed, j.every
                )),
            )?;
        }
        if !due.backup && !due.drill {
            continue;
        }
        let opened = read_secret(Path::new(&j.password_file)).and_then(|pw| {
            let (rt, s) = store_at(
                &j.repo,
                j.sftp_key.as_ref().map(PathBuf::from),
                j.sftp_known_hosts.as_ref().map(PathBuf::from),
            )?;
            Ok((rt, Repository::open(s, &pw)?))
        });
        let (_rt, repo) = match opened {
            Ok(x) => x,
            Err(e) => {
                let kind = if due.backup { "backup" } else { "drill" };
                record(&j.name, kind, now, Err(format!("{e:#}")))?;
                continue;
            }
        };
        if due.backup {
            let t = unix_now();
            let r = scheduled_backup(&repo, j).map_err(|e| format!("{e:#}"));
            let ok = r.is_ok();
            record(&j.name, "backup", t, r)?;
            let policy = retention(j);
            if ok && !policy.is_empty() {
                let t = unix_now();
                let r = prune::forget(&repo, &policy, false)
                    .and_then(|d| {
                        let removed = d.iter().filter(|x| !x.keep).count();
                        let p = prune::prune(&repo, 50_000)?;
                        Ok(serde_json::json!({"removed_snapshots": removed, "prune": p}))
                    })
                    .map_err(|e| format!("{e:#}"));
                record(&j.name, "forget", t, r)?;
            }
        }
        if due.drill {
            let t = unix_now();
            let r = tempfile::tempdir()
                .map_err(|e| format!("scratch: {e}"))
                .and_then(|d| {
                    let seed = u64::from_le_bytes(
                        lethe_backup::repo::random().map_err(|e| e.to_string())?,
                    );
                    drill::drill(&repo, j.drill_sample, seed, d.path())
                        .map_err(|e| e.to_string())
                        .and_then(|rep| serde_json::to_value(&rep).map_err(|e| e.to_string()))
                });
            record(&j.name, "drill", t, r)?;
        }
    }
    if json {
        println!("{}", serde_json::json!({"runs": done, "failed": failed}));
    } else {
        for r in &done {
            println!("{:<16} {:<7} {}", r.job, r.kind, r.result.to_uppercase());
        }
        if done.is_empty() {
            println!("nothing due");
        }
    }
    Ok(if failed == 0 { exit::OK } else { exit::FAILED })
}

fn history(state: &StateDir, job: Option<&str>, json: bool) -> Result<u8> {
    let db = JobStore::open(state.root())?;
    let runs = db.runs(job)?;
    if json {
        println!("{}", serde_json::to_string(&runs)?);
        return Ok(exit::OK);
    }
    println!(
        "{:<20}  {:<16} {:<7} {:>6}  result",
        "started (UTC)", "job", "kind", "secs"
    );
    for r in &runs {
        println!(
            "{:<20}  {:<16} {:<7} {:>6}  {}",
            lethe_core::timefmt::rfc3339_utc(r.started),
            r.job,
            r.kind,
            r.ended - r.started,
            if r.result == "pass" {
                "pass".to_string()
            } else {
                format!(
                    "{} — {}",
                    r.result.to_uppercase(),
                    r.detail.chars().take(120).collect::<String>()
                )
            }
        );
    }
    Ok(exit::OK)
}

/// Bytes of regular files below `p` (not following symlinks).
fn tree_bytes(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| tree_bytes(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    }
}

/// Manual runs and drills go into the same history as scheduled ones, under
/// the job name `manual:<repository>`. The history is a record, not a
/// precondition: failing to write it only warns.
fn record_manual(
    state: &StateDir,
    repo: &Repository,
    kind: &str,
    started: i64,
    result: &str,
    detail: String,
) {
    let run = BackupRun {
        job: format!("manual:{}", repo.store.describe()),
        kind: kind.into(),
        started,
        ended: unix_now(),
        result: result.into(),
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
    to: &Path,
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
            let rep = restore::RestoreReport {
                files: 1,
                dirs: 0,
                bytes: report.bytes_written,
                warnings: Vec::new(),
            };
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"snapshot": id.to_hex(), "restored": rep, "job": report.job})
                );
            } else {
                println!(
                    "restored {} onto {} from {} (job {}); the image matched its backup-time BLAKE3",
                    human(rep.bytes),
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
