//! The stored half of a status, read once and shared by every poll.
//!
//! A status is the bays and running jobs (in memory) plus the job history's
//! interrupted jobs and the backup jobs' last runs (in SQLite). With 200
//! clients polling `GET /api/v1/status` every second, reading the stores
//! for each poll cost the worker about 0.7 ms of CPU per request, taken
//! from the wipes. The stored half changes when a job starts or ends (the
//! set of running jobs changes, which this snapshot notices at once) or a
//! backup run ends (shown at most [`MAX_AGE`] late), so one read serves all
//! the polls of that interval.

use lethe_store::JobRecord;
use lethe_wire::BackupView;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a snapshot serves polls while the running jobs stay the same.
pub const MAX_AGE: Duration = Duration::from_millis(1000);

/// The stored records a status shows.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The job records of the running jobs and of the interrupted or
    /// stopped ones, in the history's order (newest first).
    pub jobs: Vec<JobRecord>,
    /// The backup jobs' views.
    pub backups: Vec<BackupView>,
}

struct Taken {
    at: Instant,
    running: Vec<String>,
    stored: Stored,
}

/// The last read of the stores.
#[derive(Default)]
pub struct StatusSnapshot {
    last: Mutex<Option<Taken>>,
}

impl std::fmt::Debug for StatusSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusSnapshot")
    }
}

impl StatusSnapshot {
    /// The stored half of a status at `now` with these jobs running: the
    /// last read when it is younger than [`MAX_AGE`] and was taken with the
    /// same running jobs, else a new one from `read`.
    pub fn get(
        &self,
        now: Instant,
        running: &[String],
        read: impl FnOnce() -> Result<Stored, String>,
    ) -> Result<Stored, String> {
        {
            let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = last.as_ref() {
                if t.running == running && now.saturating_duration_since(t.at) < MAX_AGE {
                    return Ok(t.stored.clone());
                }
            }
        }
        let stored = read()?;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Taken {
            at: now,
            running: running.to_vec(),
            stored: stored.clone(),
        });
        Ok(stored)
    }

    /// Forget the last read (the next status reads the stores).
    pub fn invalidate(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn tag(s: Stored) -> String {
        s.backups[0].job.clone()
    }

    fn stored(tag: &str) -> Stored {
        Stored {
            jobs: vec![],
            backups: vec![BackupView {
                job: tag.into(),
                every_secs: 60,
                last_backup: None,
                last_result: None,
                last_success: None,
                next_due: String::new(),
                last_drill: None,
                last_drill_result: None,
                max_age_secs: None,
            }],
        }
    }

    #[test]
    fn polls_within_the_age_share_one_read_and_a_changed_job_set_reads_again() {
        let s = StatusSnapshot::default();
        let t0 = Instant::now();
        let reads = Cell::new(0);
        let read = |tag: &'static str| {
            let reads = &reads;
            move || {
                reads.set(reads.get() + 1);
                Ok(stored(tag))
            }
        };
        let none: Vec<String> = vec![];
        assert_eq!(tag(s.get(t0, &none, read("a")).unwrap()), "a");
        assert_eq!(tag(s.get(t0 + MAX_AGE / 2, &none, read("b")).unwrap()), "a");
        assert_eq!(reads.get(), 1);
        // A job started: read again at once.
        let one = vec!["job-1".to_string()];
        assert_eq!(tag(s.get(t0 + MAX_AGE / 2, &one, read("c")).unwrap()), "c");
        // Too old: read again.
        assert_eq!(tag(s.get(t0 + MAX_AGE * 2, &one, read("d")).unwrap()), "d");
        assert_eq!(reads.get(), 3);
        s.invalidate();
        assert_eq!(tag(s.get(t0 + MAX_AGE * 2, &one, read("e")).unwrap()), "e");
        assert_eq!(reads.get(), 4);
    }

    #[test]
    fn a_failed_read_is_not_kept() {
        let s = StatusSnapshot::default();
        let t0 = Instant::now();
        assert!(s.get(t0, &[], || Err("locked".into())).is_err());
        assert_eq!(tag(s.get(t0, &[], || Ok(stored("a"))).unwrap()), "a");
    }
}
