//! Arguments of `lethe backup`. Every number is range-checked here, with a
//! message that says the range, before anything is opened. Numbers are taken
//! as text and checked by the command itself, so a bad value is an error
//! (exit 1, nothing done), never mistaken for exit 2 ("damage found").

use clap::{Args, Subcommand, ValueEnum};
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
    /// File holding the recovery key printed by `init`: opens the repository
    /// without any key file (when every passphrase is lost).
    #[arg(
        long,
        env = "LETHE_RECOVERY_KEY_FILE",
        global = true,
        conflicts_with = "password_file"
    )]
    pub recovery_key_file: Option<PathBuf>,
    /// Private key for sftp: repositories.
    #[arg(long, env = "LETHE_SFTP_KEY", global = true)]
    pub sftp_key: Option<PathBuf>,
    /// known_hosts file for sftp: repositories (host keys are always checked).
    #[arg(long, env = "LETHE_SFTP_KNOWN_HOSTS", global = true)]
    pub sftp_known_hosts: Option<PathBuf>,
    /// JSON output (a JSON object as the last line).
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

#[derive(Subcommand)]
pub enum BackupCmd {
    /// Create a repository; prints the recovery key once.
    Init,
    /// Back up paths, a block device (--device) or stdin (--stdin).
    Run(RunArgs),
    /// List snapshots (damaged snapshot files are named on stderr; exit 3).
    Snapshots,
    /// List the files of a snapshot.
    Ls {
        /// Snapshot id (prefix) or `latest`.
        snapshot: String,
    },
    /// Restore a snapshot, a sub-path, or an image/stream onto a file or device.
    Restore(RestoreArgs),
    /// Verify the repository; --read-data[=PERCENT] also decrypts content. Exit 2 on damage.
    Check {
        /// Download and verify this share of the packs (more than 0, at most 100; default all).
        #[arg(long, num_args = 0..=1, default_missing_value = "100", value_name = "PERCENT")]
        read_data: Option<String>,
    },
    /// Remove snapshots by retention policy.
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
        /// Snapshot id (prefix) or `latest`.
        #[arg(long, default_value = "latest")]
        snapshot: String,
    },
}

#[derive(Subcommand)]
pub enum RepairCmd {
    /// Rebuild the index from the packs' own headers (supersedes every index file).
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
}

#[derive(Args)]
pub struct RunArgs {
    /// Files and directories to back up.
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
    /// Tag the snapshot.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Skip paths matching this glob (a bare name matches at any depth).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Keep only files matching this glob.
    #[arg(long)]
    pub include: Vec<String>,
    /// Sealing threads, 1 to 256 (default: CPU count).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub threads: Option<String>,
    /// S3 Object Lock: keep every object this run stores undeletable for N days (1 to 36500).
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
    /// Snapshot id (prefix) or `latest`.
    pub snapshot: String,
    /// Target directory (tree snapshots). Nothing outside it is ever written.
    #[arg(long, conflicts_with = "to")]
    pub target: Option<PathBuf>,
    /// Only this path inside the snapshot.
    #[arg(long)]
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
}

#[derive(Args)]
pub struct ForgetArgs {
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
    /// Show what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Prune afterwards.
    #[arg(long)]
    pub prune: bool,
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
            ..Policy::default()
        })
    }
}

#[derive(Subcommand)]
pub enum KeyCmd {
    /// List key files.
    List,
    /// Add a passphrase (read from --new-password-file).
    Add {
        /// File holding the new passphrase.
        #[arg(long)]
        new_password_file: PathBuf,
        /// A label to tell the key from the others in `key list`.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Remove a key file (never the one in use, never the last).
    Remove {
        /// The key's id (from `key list`).
        id: String,
    },
    /// Change the passphrase of the key in use.
    Passwd {
        /// File holding the new passphrase.
        #[arg(long)]
        new_password_file: PathBuf,
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
}
