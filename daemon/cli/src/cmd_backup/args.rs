//! Arguments of `lethe backup`. Every number is range-checked here, with a
//! message that says the range, before anything is opened.

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
        #[arg(long, num_args = 0..=1, default_missing_value = "100", value_name = "PERCENT",
              value_parser = read_data_percent)]
        read_data: Option<Percent>,
    },
    /// Remove snapshots by retention policy.
    Forget(ForgetArgs),
    /// Delete data no snapshot needs.
    Prune {
        /// Repack packs with more than this share (0 to 100 %) of unused blobs.
        #[arg(long, default_value = "5", value_parser = max_unused_percent)]
        max_unused: Percent,
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
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        sample: u32,
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
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
    /// S3 Object Lock: keep every object this run stores undeletable for N days (1 to 36500).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub lock_days: Option<u32>,
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
    /// File or block device to write an image or stream to.
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// Entries already in the target: replace them, or refuse (leave them).
    #[arg(long, value_enum, default_value = "replace")]
    pub existing: ExistingArg,
}

fn keep(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?}: give a count of at least 1")),
    }
}

#[derive(Args)]
pub struct ForgetArgs {
    #[arg(long, value_parser = keep)]
    pub keep_last: Option<u32>,
    #[arg(long, value_parser = keep)]
    pub keep_hourly: Option<u32>,
    #[arg(long, value_parser = keep)]
    pub keep_daily: Option<u32>,
    #[arg(long, value_parser = keep)]
    pub keep_weekly: Option<u32>,
    #[arg(long, value_parser = keep)]
    pub keep_monthly: Option<u32>,
    #[arg(long, value_parser = keep)]
    pub keep_yearly: Option<u32>,
    /// Show what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Prune afterwards.
    #[arg(long)]
    pub prune: bool,
}

impl ForgetArgs {
    pub fn policy(&self) -> Policy {
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

#[derive(Subcommand)]
pub enum KeyCmd {
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
        assert!(keep("0").is_err() && keep("-1").is_err() && keep("3").is_ok());
    }
}
