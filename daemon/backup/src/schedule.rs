//! Scheduled backup jobs: the TOML file, interval parsing, and what is due
//! (pure: "now" and the history are passed in). A slot that passed without a
//! run is reported as missed, never silently dropped.
//!
//! ```toml
//! [[job]]
//! name = "records"
//! repo = "s3:http://127.0.0.1:8333/backups/records"
//! password_file = "/etc/lethe/records.pass"
//! paths = ["/srv/records"]          # or device = "/dev/disk/by-id/…", or stdin_command = "pg_dump db"
//! exclude = ["*.tmp"]
//! every = "6h"                      # s, m, h, d, w
//! keep_last = 7
//! keep_daily = 14
//! drill_every = "1d"
//! drill_sample = 20
//! ```

use crate::BackupError;
use serde::Deserialize;

/// The schedule file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFile {
    /// Jobs.
    #[serde(rename = "job", default)]
    pub jobs: Vec<JobConfig>,
}

/// One scheduled backup job.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Unique name.
    pub name: String,
    /// Repository URL.
    pub repo: String,
    /// Passphrase file.
    pub password_file: String,
    /// Paths (a tree backup).
    #[serde(default)]
    pub paths: Vec<String>,
    /// A block device to image.
    pub device: Option<String>,
    /// A shell command whose stdout is backed up (database dumps).
    pub stdin_command: Option<String>,
    /// Exclude globs.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Include globs.
    #[serde(default)]
    pub include: Vec<String>,
    /// Backup interval.
    pub every: String,
    /// Retention.
    pub keep_last: Option<u32>,
    /// Retention.
    pub keep_hourly: Option<u32>,
    /// Retention.
    pub keep_daily: Option<u32>,
    /// Retention.
    pub keep_weekly: Option<u32>,
    /// Retention.
    pub keep_monthly: Option<u32>,
    /// Retention.
    pub keep_yearly: Option<u32>,
    /// Drill interval (none: no drills).
    pub drill_every: Option<String>,
    /// Items restored per drill.
    #[serde(default = "default_sample")]
    pub drill_sample: usize,
    /// Tags for the snapshots.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Private key for sftp: repositories.
    pub sftp_key: Option<String>,
    /// known_hosts for sftp: repositories.
    pub sftp_known_hosts: Option<String>,
}

fn default_sample() -> usize {
    20
}

/// Parse `90s`, `15m`, `6h`, `1d`, `2w` into seconds.
pub fn parse_interval(s: &str) -> Result<u64, BackupError> {
    let s = s.trim();
    let bad = || {
        BackupError::Invalid(format!(
            "interval {s:?}: expected a number and s, m, h, d or w (e.g. 6h)"
        ))
    };
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    let v = n.checked_mul(mult).ok_or_else(bad)?;
    if v == 0 {
        return Err(bad());
    }
    Ok(v)
}

impl ScheduleFile {
    /// Parse and validate a schedule.
    pub fn parse(text: &str) -> Result<Self, BackupError> {
        let f: ScheduleFile =
            toml::from_str(text).map_err(|e| BackupError::Invalid(format!("schedule: {e}")))?;
        let mut names = std::collections::BTreeSet::new();
        for j in &f.jobs {
            if !names.insert(j.name.clone()) {
                return Err(BackupError::Invalid(format!(
                    "job name {:?} used twice",
                    j.name
                )));
            }
            let sources = usize::from(!j.paths.is_empty())
                + usize::from(j.device.is_some())
                + usize::from(j.stdin_command.is_some());
            if sources != 1 {
                return Err(BackupError::Invalid(format!(
                    "job {:?}: give exactly one of paths, device or stdin_command",
                    j.name
                )));
            }
            parse_interval(&j.every)?;
            if let Some(d) = &j.drill_every {
                parse_interval(d)?;
            }
            if j.drill_sample == 0 {
                return Err(BackupError::Invalid(format!(
                    "job {:?}: drill_sample must be at least 1",
                    j.name
                )));
            }
            for (k, v) in [
                ("keep_last", j.keep_last),
                ("keep_hourly", j.keep_hourly),
                ("keep_daily", j.keep_daily),
                ("keep_weekly", j.keep_weekly),
                ("keep_monthly", j.keep_monthly),
                ("keep_yearly", j.keep_yearly),
            ] {
                if v == Some(0) {
                    return Err(BackupError::Invalid(format!(
                        "job {:?}: {k} must be at least 1 (leave it out to keep no such rule)",
                        j.name
                    )));
                }
            }
        }
        Ok(f)
    }
}

/// What to do for one job now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Run a backup now.
    pub backup: bool,
    /// Slots that passed without any attempt since the last one (to record as missed).
    pub missed: u64,
    /// Run a drill now.
    pub drill: bool,
}

/// Given the last backup attempt and last drill (unix seconds), what is due at `now`.
pub fn due(
    every: u64,
    drill_every: Option<u64>,
    last_backup: Option<i64>,
    last_drill: Option<i64>,
    now: i64,
) -> Due {
    let (backup, missed) = match last_backup {
        None => (true, 0),
        Some(t) => {
            let elapsed = (now - t).max(0) as u64;
            // One slot is the run we do now; every further full slot was missed.
            (elapsed >= every, (elapsed / every).saturating_sub(1))
        }
    };
    let drill = match (drill_every, last_drill) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(d), Some(t)) => (now - t).max(0) as u64 >= d,
    };
    Due {
        backup,
        missed,
        drill,
    }
}

/// When a job is next due (unix seconds): its next backup, and its next drill if it
/// has drills. Nothing run yet: due now.
pub fn next_due(
    every: u64,
    drill_every: Option<u64>,
    last_backup: Option<i64>,
    last_drill: Option<i64>,
    now: i64,
) -> (i64, Option<i64>) {
    let step = |last: Option<i64>, every: u64| match last {
        None => now,
        Some(t) => t.saturating_add(i64::try_from(every).unwrap_or(i64::MAX)),
    };
    (
        step(last_backup, every),
        drill_every.map(|d| step(last_drill, d)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("90s").unwrap(), 90);
        assert_eq!(parse_interval("6h").unwrap(), 21_600);
        assert_eq!(parse_interval("2w").unwrap(), 1_209_600);
        for bad in ["", "h", "6", "6x", "0h", "-1h", "99999999999999999999d"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn due_and_missed() {
        assert_eq!(
            due(3600, None, None, None, 0),
            Due {
                backup: true,
                missed: 0,
                drill: false
            }
        );
        assert!(!due(3600, None, Some(0), None, 1800).backup);
        assert_eq!(
            due(3600, None, Some(0), None, 3600),
            Due {
                backup: true,
                missed: 0,
                drill: false
            }
        );
        // Three and a half hours later: now's run plus two missed slots.
        assert_eq!(
            due(3600, Some(86_400), Some(0), Some(0), 12_600),
            Due {
                backup: true,
                missed: 2,
                drill: false
            }
        );
        assert!(due(3600, Some(86_400), Some(0), None, 10).drill);
    }

    #[test]
    fn next_due_times() {
        assert_eq!(next_due(3600, None, None, None, 100), (100, None));
        assert_eq!(
            next_due(3600, Some(86_400), Some(0), None, 100),
            (3600, Some(100))
        );
        assert_eq!(
            next_due(3600, Some(86_400), Some(0), Some(50), 100),
            (3600, Some(86_450))
        );
        // Overdue: the time it was due (now or earlier), never "never".
        assert_eq!(next_due(3600, None, Some(0), None, 10_000).0, 3600);
    }

    #[test]
    fn schedule_file_validation() {
        let ok = "[[job]]\nname='a'\nrepo='/r'\npassword_file='/p'\npaths=['/x']\nevery='1h'\nkeep_last=3\n";
        let f = ScheduleFile::parse(ok).unwrap();
        assert_eq!(f.jobs[0].keep_last, Some(3));
        assert_eq!(f.jobs[0].drill_sample, 20);
        assert!(
            ScheduleFile::parse(&format!("{ok}{ok}")).is_err(),
            "duplicate names"
        );
        assert!(
            ScheduleFile::parse(&ok.replace("paths=['/x']", "")).is_err(),
            "no source"
        );
        assert!(ScheduleFile::parse(&ok.replace("1h", "soon")).is_err());
        assert!(
            ScheduleFile::parse(&format!("{ok}colour='blue'\n")).is_err(),
            "unknown key"
        );
        assert!(ScheduleFile::parse("[[job]\n").is_err());
        assert!(ScheduleFile::parse(&format!("{ok}drill_sample=0\n")).is_err());
        assert!(ScheduleFile::parse(&ok.replace("keep_last=3", "keep_last=0")).is_err());
        assert!(ScheduleFile::parse(&ok.replace("keep_last=3", "keep_last=-1")).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = parse_interval(&s);
            let _ = ScheduleFile::parse(&s);
        }

        #[test]
        fn due_is_monotonic(every in 1u64..100_000, last in 0i64..1_000_000, d in 0i64..1_000_000) {
            let a = due(every, None, Some(last), None, last + d);
            let b = due(every, None, Some(last), None, last + d + 1);
            prop_assert!(!a.backup || b.backup);
            prop_assert!(a.missed <= b.missed);
        }
    }
}
