//! Arguments of `lethe backup`. Every number is range-checked here, with a
//! message that says the range, before anything is opened. Numbers are taken
//! as text and checked by the command itself, so a bad value is an error
//! (exit 1, nothing done), never mistaken for exit 2 ("damage found").

use clap::{Args, Subcommand, ValueEnum};
use lethe_backup::repo::SnapshotFilter;
use lethe_repo::retention::{KeepN, Policy};
use std::path::PathBuf;

#[derive(Args)]
pub struct BackupArgs {
    /// Repository: a local path, s3:http://HOST:PORT/BUCKET/PREFIX or sftp:USER@HOST:PORT/PATH.
    #[arg(long, short = 'r', env = "LETHE_REPO", global = true)]
    pub repo: Option<String>,
    /// File holding the repository passphrase.
    #[arg(long, env = "LETHE_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Shell command whose output is the passphrase (as restic's --password-command).
    #[arg(
        long,
        env = "LETHE_PASSWORD_COMMAND",
        global = true,
        conflicts_with = "password_file"
    )]
    pub password_command: Option<String>,
    /// File holding the recovery key printed by `init`: opens the repository
    /// without any key file (when every passphrase is lost).
    #[arg(
        long,
        env = "LETHE_RECOVERY_KEY_FILE",
        global = true,
        conflicts_with_all = ["password_file", "password_command"]
    )]
    pub recovery_key_file: Option<PathBuf>,
    /// Private key for sftp: repositories.
    #[arg(long, env = "LETHE_SFTP_KEY", global = true)]
    pub sftp_key: Option<PathBuf>,
    /// known_hosts file for sftp: repositories (host keys are always checked).
    #[arg(long, env = "LETHE_SFTP_KNOWN_HOSTS", global = true)]
    pub sftp_known_hosts: Option<PathBuf>,
    /// JSON output (a JSON object or array as the last stdout line).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: BackupCmd,
}

/// A share in percent: finite, within its range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percent(f64);

impl Percent {
    /// Parts per million.
    pub fn ppm(self) -> u32 {
        (self.0 * 10_000.0).round() as u32
    }
}

/// An integer option within `min..=max`.
pub fn ranged(option: &str, s: &str, min: u32, max: u32) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{option} {s:?} is out of range: give a whole number from {min} to {max}"
        )),
    }
}

fn percent(s: &str, min_exclusive: bool) -> Result<Percent, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    let low_ok = if min_exclusive { v > 0.0 } else { v >= 0.0 };
    if !v.is_finite() || !low_ok || v > 100.0 {
        return Err(format!(
            "{s:?} is out of range: give a percentage {} 0 and at most 100",
            if min_exclusive {
                "above"
            } else {
                "of at least"
            }
        ));
    }
    Ok(Percent(v))
}

/// `--read-data`: more than 0 (at least 0.0001, one pack in a million), at most 100.
pub fn read_data_percent(s: &str) -> Result<Percent, String> {
    let p = percent(s, true)?;
    if p.ppm() == 0 {
        return Err(format!("{s:?} is below the smallest share, 0.0001 %"));
    }
    Ok(p)
}

/// `--max-unused`: 0 to 100.
pub fn max_unused_percent(s: &str) -> Result<Percent, String> {
    percent(s, false)
}

/// `--keep-within`: restic's durations, `1y2m3d4h` (y = 365 days, m = 30 days,
/// d = day, h = hour; at least one hour in all).
pub fn keep_within(s: &str) -> Result<u64, String> {
    let bad = || {
        format!("--keep-within {s:?}: give a duration such as 7d, 2m, 1y6m or 36h (y, m = 30 days, d, h)")
    };
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: u64 = match c {
            'y' => 365 * 86_400,
            'm' => 30 * 86_400,
            'd' => 86_400,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        num.clear();
        any = true;
    }
    if !any || !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

/// restic's snapshot filters.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only snapshots made by this host (repeatable: any of them).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only snapshots with these tags (`a,b` = both; repeat for either).
    #[arg(long = "tag", value_name = "TAG[,TAG]")]
    pub tags: Vec<String>,
    /// Only snapshots whose source paths include this absolute path (repeatable: all).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
}

impl FilterArgs {
    /// The engine's filter.
    pub fn filter(&self) -> SnapshotFilter {
        SnapshotFilter {
            hosts: self.hosts.clone(),
            tags: self
                .tags
                .iter()
                .map(|t| {
                    t.split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .collect(),
            paths: self
                .paths
                .iter()
                .map(|p| p.trim_end_matches('/').as_bytes().to_vec())
                .collect(),
            holding: None,
        }
    }
}

#[derive(Subcommand)]
pub enum BackupCmd {
    /// Create a repository; prints the recovery key once.
    Init,
    /// Back up paths, a block device (--device) or stdin (--stdin).
    Run(RunArgs),
    /// List snapshots (damaged snapshot files are named on stderr; exit 3; files
    /// changed behind our back: exit 2).
    Snapshots(FilterArgs),
    /// List the files of a snapshot.
    Ls {
        /// Snapshot id (prefix) or `latest`.
        snapshot: String,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Restore a snapshot, a sub-path, or an image/stream onto a file or device.
    Restore(RestoreArgs),
    /// Verify the repository; --read-data[=PERCENT] also decrypts content. Exit 2
    /// on damage, rollback, deletion or replay.
    Check {
        /// Download and verify this share of the packs (more than 0, at most 100;
        /// default all; at least one pack is read).
        #[arg(long, num_args = 0..=1, default_missing_value = "100", value_name = "PERCENT")]
        read_data: Option<String>,
    },
    /// Remove snapshots by retention policy (per host and source) or by id.
    Forget(ForgetArgs),
    /// Delete data no snapshot needs.
    Prune {
        /// Repack packs with more than this share (0 to 100 %) of unused blobs.
        #[arg(
            long,
            default_value = "5",
            value_name = "PERCENT",
            allow_hyphen_values = true
        )]
        max_unused: String,
    },
    /// Repair a damaged repository (see docs/backup-recovery.md).
    Repair {
        #[command(subcommand)]
        cmd: RepairCmd,
    },
    /// Manage passphrases, the recovery key and the master key.
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Run the jobs of a schedule file that are due (backup, retention, drill),
    /// recording every run, failure and missed slot in the history, and say when
    /// each job is next due.
    RunScheduled {
        /// The schedule (TOML; docs/backup-schedule.md).
        #[arg(long, env = "LETHE_SCHEDULE")]
        config: PathBuf,
    },
    /// Check a schedule file: syntax, intervals, retention, sources, repository
    /// locations, passphrase files, and who may run its commands.
    Schedule {
        #[command(subcommand)]
        cmd: ScheduleCmd,
    },
    /// The history of scheduled runs, failures, missed slots and drills.
    History {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
    },
    /// Restore a random sample of a snapshot and compare with backup-time hashes.
    Drill {
        /// Files (or device ranges) to restore (1 to 1000000).
        #[arg(
            long,
            default_value = "20",
            value_name = "N",
            allow_hyphen_values = true
        )]
        sample: String,
        /// Scratch area: the drill makes a private directory in it (default: the temp directory).
        #[arg(long)]
        scratch: Option<PathBuf>,
        /// Seed of the sample (default: random, printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Snapshot id (prefix) or `latest` (the newest the filters accept).
        #[arg(long, default_value = "latest")]
        snapshot: String,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

#[derive(Subcommand)]
pub enum ScheduleCmd {
    /// Validate a schedule file (exit 0 when every job is usable, 1 otherwise).
    Check {
        /// The schedule (TOML).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum RepairCmd {
    /// Rebuild the index from the packs' own headers (replaces every index file).
    Index {
        /// Also download every pack and index only blobs that authenticate.
        #[arg(long)]
        read_data: bool,
    },
    /// Rewrite snapshots that need missing blobs (dropping what is lost, with a record).
    Snapshots {
        /// Remove the originals, and snapshot files that cannot be read at all.
        #[arg(long)]
        forget: bool,
        /// Show what would be done; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// After `check` found a rollback, deletion or replay: accept the repository as
    /// it is now (a new manifest; replayed files deleted; what is lost named).
    Manifest,
}

#[derive(Args)]
pub struct RunArgs {
    /// Files and directories to back up (kept with their absolute paths).
    pub paths: Vec<PathBuf>,
    /// Image this block device (or file) instead.
    #[arg(long, conflicts_with_all = ["paths", "stdin"])]
    pub device: Option<PathBuf>,
    /// Back up standard input (e.g. a database dump).
    #[arg(long, conflicts_with = "paths")]
    pub stdin: bool,
    /// Name recorded for --stdin.
    #[arg(long, default_value = "stdin")]
    pub stdin_name: String,
    /// Tag the snapshot (repeatable; `a,b` adds both, as in restic).
    #[arg(long = "tag", value_name = "TAG[,TAG]", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Host name recorded in the snapshot (default: this host's).
    #[arg(long)]
    pub host: Option<String>,
    /// Skip paths matching this glob (a bare name matches at any depth).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Keep only files matching this glob.
    #[arg(long)]
    pub include: Vec<String>,
    /// Sealing threads, 1 to 256 (default: CPU count).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub threads: Option<String>,
    /// S3 Object Lock: keep every object this run stores, the config and the key
    /// files undeletable for N days (1 to 36500).
    #[arg(long, value_name = "DAYS", allow_hyphen_values = true)]
    pub lock_days: Option<String>,
    /// Object Lock mode: compliance (nobody can delete early) or governance.
    #[arg(long, default_value = "compliance", value_parser = ["compliance", "governance"])]
    pub lock_mode: String,
}

/// What to do with entries already in the target.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExistingArg {
    /// Replace files, symlinks and fifos in the way (never written through).
    Replace,
    /// Leave them and report the entries as not restored (exit 3).
    Refuse,
}

impl From<ExistingArg> for lethe_backup::confined::Existing {
    fn from(e: ExistingArg) -> Self {
        match e {
            ExistingArg::Replace => lethe_backup::confined::Existing::Replace,
            ExistingArg::Refuse => lethe_backup::confined::Existing::Refuse,
        }
    }
}

#[derive(Args)]
pub struct RestoreArgs {
    /// Snapshot id (prefix) or `latest` (the newest the filters accept).
    pub snapshot: String,
    /// Target directory (tree snapshots): `/srv/records` is restored to
    /// TARGET/srv/records. Nothing outside it is ever written.
    #[arg(long, conflicts_with = "to")]
    pub target: Option<PathBuf>,
    /// Only this path inside the snapshot (absolute, e.g. /srv/records/2026); with
    /// `latest`, the newest snapshot that holds it.
    #[arg(long, visible_alias = "include", value_name = "PATH")]
    pub path: Option<String>,
    /// File or block device to write an image or stream to. A device is
    /// overwritten through the job library, like a wipe: protected devices
    /// are refused, it is held exclusively, a confirmation is asked, a device
    /// smaller than the image is refused, and the restore is recorded as a job.
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// Do not ask for confirmation before overwriting a device.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Entries already in the target: replace them, or refuse (leave them).
    #[arg(long, value_enum, default_value = "replace")]
    pub existing: ExistingArg,
    /// With `latest`: only snapshots made by this host (repeatable: any of them).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// With `latest`: only snapshots with these tags (`a,b` = both; repeat for either).
    #[arg(long = "tag", value_name = "TAG[,TAG]")]
    pub tags: Vec<String>,
}

impl RestoreArgs {
    /// `--host`, `--tag`, and `--path` as "the snapshot holds this path".
    pub fn filter(&self) -> SnapshotFilter {
        let mut f = FilterArgs {
            hosts: self.hosts.clone(),
            tags: self.tags.clone(),
            paths: Vec::new(),
        }
        .filter();
        f.holding = self
            .path
            .as_ref()
            .map(|p| p.trim_end_matches('/').as_bytes().to_vec());
        f
    }
}

#[derive(Args)]
pub struct ForgetArgs {
    /// Snapshots to remove by id (prefixes), whatever the policy says.
    pub ids: Vec<String>,
    /// Keep the N newest snapshots (N at least 1).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub keep_last: Option<String>,
    /// Keep the newest snapshot of each of the last N hours.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub keep_hourly: Option<String>,
    /// ... days.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub keep_daily: Option<String>,
    /// ... weeks.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub keep_weekly: Option<String>,
    /// ... months.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub keep_monthly: Option<String>,
    /// ... years.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub keep_yearly: Option<String>,
    /// Keep snapshots newer than the newest one minus this duration (1y2m3d4h).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Keep snapshots with this tag (repeatable).
    #[arg(long, value_name = "TAG")]
    pub keep_tag: Vec<String>,
    /// Show what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Prune afterwards.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

impl ForgetArgs {
    /// The policy, every count checked (at least 1).
    pub fn policy(&self) -> Result<Policy, String> {
        let k = |name: &str, v: &Option<String>| {
            v.as_deref()
                .map(|s| ranged(name, s, 1, u32::MAX).map(KeepN::Count))
                .transpose()
        };
        Ok(Policy {
            last: k("--keep-last", &self.keep_last)?,
            hourly: k("--keep-hourly", &self.keep_hourly)?,
            daily: k("--keep-daily", &self.keep_daily)?,
            weekly: k("--keep-weekly", &self.keep_weekly)?,
            monthly: k("--keep-monthly", &self.keep_monthly)?,
            yearly: k("--keep-yearly", &self.keep_yearly)?,
            within_secs: self.keep_within.as_deref().map(keep_within).transpose()?,
            tags: self.keep_tag.clone(),
            ..Policy::default()
        })
    }
}

#[derive(Subcommand)]
pub enum KeyCmd {
    /// List key files with their kind, label and creation time.
    List,
    /// Add a passphrase (from --new-password-file, or asked for on a terminal).
    Add {
        /// File holding the new passphrase.
        #[arg(long)]
        new_password_file: Option<PathBuf>,
        /// A label to tell the key from the others in `key list`.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Remove a key file (never the one in use, never the last passphrase).
    /// Follow with `key rotate` so a copy of it opens nothing new.
    Remove {
        /// The key's id (from `key list`).
        id: String,
    },
    /// Change the passphrase of the key in use.
    Passwd {
        /// File holding the new passphrase.
        #[arg(long)]
        new_password_file: Option<PathBuf>,
    },
    /// A new master key for everything written from now on, given to every
    /// remaining key file; copies of removed key files open nothing new.
    Rotate,
    /// Every passphrase lost: open with the recovery key (asked for on a terminal,
    /// or `--recovery-key-file FILE`, `-` for stdin) and set a new passphrase.
    Recover {
        /// The new passphrase (default: asked for on a terminal).
        #[arg(long)]
        new_password_file: Option<PathBuf>,
        /// Label of the new key file.
        #[arg(long, default_value = "recovered")]
        label: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_range_checked() {
        for bad in [
            "nan", "NaN", "-5", "0", "100.5", "inf", "", "x", "1e400", "0.00001",
        ] {
            assert!(read_data_percent(bad).is_err(), "{bad}");
        }
        assert_eq!(read_data_percent("10").unwrap().ppm(), 100_000);
        assert_eq!(read_data_percent("100%").unwrap().ppm(), 1_000_000);
        assert_eq!(read_data_percent("0.0001").unwrap().ppm(), 1);
        assert_eq!(max_unused_percent("0").unwrap().ppm(), 0);
        for bad in ["nan", "-0.1", "101"] {
            assert!(max_unused_percent(bad).is_err(), "{bad}");
        }
        assert!(ranged("x", "0", 1, 9).is_err() && ranged("x", "-1", 1, 9).is_err());
        assert!(ranged("x", "10", 1, 9).is_err() && ranged("x", "nan", 1, 9).is_err());
        assert_eq!(ranged("x", "9", 1, 9), Ok(9));
    }

    #[test]
    fn keep_within_durations() {
        assert_eq!(keep_within("7d"), Ok(7 * 86_400));
        assert_eq!(keep_within("1y6m"), Ok((365 + 180) * 86_400));
        assert_eq!(keep_within("36h"), Ok(36 * 3600));
        for bad in [
            "",
            "7",
            "d",
            "7x",
            "0d",
            "-1d",
            "1.5d",
            "99999999999999999999y",
        ] {
            assert!(keep_within(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters() {
        let f = FilterArgs {
            hosts: vec!["a".into()],
            tags: vec!["x,y".into(), "z".into()],
            paths: vec!["/srv/records/".into()],
        }
        .filter();
        assert_eq!(
            f.tags,
            vec![vec!["x".to_string(), "y".into()], vec!["z".into()]]
        );
        assert_eq!(f.paths, vec![b"/srv/records".to_vec()]);
    }
}
