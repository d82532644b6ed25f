//! `GET /metrics`: the worker's numbers in the OpenMetrics text format
//! (which Prometheus reads), rendered with `prometheus-client`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `lethe_uptime_seconds` | gauge | |
//! | `lethe_jobs` | gauge | `state`: running, interrupted, incomplete, passed, failed (the job history) |
//! | `lethe_bytes_written` | counter | (bytes written by this daemon's jobs since it started) |
//! | `lethe_bytes_verified` | counter | |
//! | `lethe_job_failures` | counter | (this daemon's jobs that failed since it started) |
//! | `lethe_backup_age_seconds` | gauge | `job` (absent until a first good backup) |
//! | `lethe_backup_failures` | gauge | `job` (failed backups and missed slots in the history) |
//! | `lethe_backup_drills` | gauge | `job`, `result`: pass, fail |
//! | `lethe_audit_entries` | gauge | |
//! | `lethe_front_restarts` | counter | |
//!
//! Labels are job states and backup job names (checked names, never a path).

use lethe_wire::{JobState, MetricsView};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DrillLabel {
    job: String,
    result: &'static str,
}

fn state_name(s: JobState) -> &'static str {
    match s {
        JobState::Running => "running",
        JobState::Interrupted => "interrupted",
        JobState::Incomplete => "incomplete",
        JobState::Passed => "passed",
        JobState::Failed => "failed",
        JobState::ClearOnly => "clear_only",
        JobState::Unverified => "unverified",
        JobState::NotStarted => "not_started",
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The text exposition of `m`.
pub fn render(m: &MetricsView) -> String {
    let mut reg = Registry::default();
    let gauge = |reg: &mut Registry, name: &str, help: &str, v: u64| {
        let g = Gauge::<i64>::default();
        g.set(clamp(v));
        reg.register(name, help, g);
    };
    let counter = |reg: &mut Registry, name: &str, help: &str, v: u64| {
        let c = Counter::<u64>::default();
        c.inc_by(v);
        reg.register(name, help, c);
    };
    gauge(
        &mut reg,
        "lethe_uptime_seconds",
        "Seconds since the worker started",
        m.uptime_secs,
    );
    let jobs = Family::<StateLabel, Gauge>::default();
    for s in [
        JobState::Running,
        JobState::Interrupted,
        JobState::Incomplete,
        JobState::Passed,
        JobState::Failed,
    ] {
        let n = m
            .jobs
            .iter()
            .filter(|c| c.state == s)
            .map(|c| c.count)
            .sum();
        jobs.get_or_create(&StateLabel {
            state: state_name(s),
        })
        .set(clamp(n));
    }
    reg.register("lethe_jobs", "Jobs in the job history, by state", jobs);
    counter(
        &mut reg,
        "lethe_bytes_written",
        "Bytes written by this daemon's jobs since it started",
        m.bytes_written,
    );
    counter(
        &mut reg,
        "lethe_bytes_verified",
        "Bytes read back and verified by this daemon's jobs since it started",
        m.bytes_verified,
    );
    counter(
        &mut reg,
        "lethe_job_failures",
        "Jobs of this daemon that failed since it started",
        m.job_failures,
    );
    let age = Family::<JobLabel, Gauge>::default();
    let failures = Family::<JobLabel, Gauge>::default();
    let drills = Family::<DrillLabel, Gauge>::default();
    for b in &m.backups {
        let job = JobLabel { job: b.job.clone() };
        if let Some(a) = b.age_secs {
            age.get_or_create(&job).set(clamp(a));
        }
        failures.get_or_create(&job).set(clamp(b.backups_failed));
        for (result, n) in [("pass", b.drills_passed), ("fail", b.drills_failed)] {
            drills
                .get_or_create(&DrillLabel {
                    job: b.job.clone(),
                    result,
                })
                .set(clamp(n));
        }
    }
    reg.register(
        "lethe_backup_age_seconds",
        "Seconds since the newest successful backup of each backup job",
        age,
    );
    reg.register(
        "lethe_backup_failures",
        "Failed backups and missed slots in each backup job's history",
        failures,
    );
    reg.register(
        "lethe_backup_drills",
        "Restore drills in each backup job's history, by result",
        drills,
    );
    gauge(
        &mut reg,
        "lethe_audit_entries",
        "Entries in the audit log",
        m.audit_entries,
    );
    counter(
        &mut reg,
        "lethe_front_restarts",
        "Times the worker restarted the front",
        m.front_restarts,
    );
    let mut out = String::new();
    // Writing to a String cannot fail.
    prometheus_client::encoding::text::encode(&mut out, &reg).expect("encoding to a String");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lethe_wire::{BackupMetrics, StateCount};

    #[test]
    fn every_number_is_exposed() {
        let m = MetricsView {
            uptime_secs: 42,
            jobs: vec![
                StateCount {
                    state: JobState::Passed,
                    count: 3,
                },
                StateCount {
                    state: JobState::Failed,
                    count: 1,
                },
            ],
            bytes_written: 1 << 30,
            bytes_verified: 1 << 29,
            job_failures: 1,
            backups: vec![
                BackupMetrics {
                    job: "records".into(),
                    age_secs: Some(600),
                    drills_passed: 2,
                    drills_failed: 1,
                    backups_failed: 0,
                },
                BackupMetrics {
                    job: "pacs".into(),
                    age_secs: None,
                    drills_passed: 0,
                    drills_failed: 0,
                    backups_failed: 4,
                },
            ],
            audit_entries: 17,
            front_restarts: 2,
        };
        let t = render(&m);
        for line in [
            "lethe_uptime_seconds 42",
            "lethe_jobs{state=\"passed\"} 3",
            "lethe_jobs{state=\"running\"} 0",
            "lethe_bytes_written_total 1073741824",
            "lethe_bytes_verified_total 536870912",
            "lethe_job_failures_total 1",
            "lethe_backup_age_seconds{job=\"records\"} 600",
            "lethe_backup_failures{job=\"pacs\"} 4",
            "lethe_backup_drills{job=\"records\",result=\"fail\"} 1",
            "lethe_audit_entries 17",
            "lethe_front_restarts_total 2",
            "# EOF",
        ] {
            assert!(t.lines().any(|l| l == line), "missing {line:?} in\n{t}");
        }
        assert!(!t.contains("lethe_backup_age_seconds{job=\"pacs\"}"), "{t}");
    }
}
