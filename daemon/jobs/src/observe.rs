//! Observers: who else hears about every job, whoever submitted it.
//!
//! An edge renders the events of the jobs it submits; an observer sees the
//! events of *every* job, in order, before any subscriber does, and is
//! asked once more when a job's document has been signed, before it is
//! stored. The audit log is one ([`crate::audit::AuditObserver`]): because
//! it hangs on the library, the command line and the daemon write the same
//! entries for the same jobs and cannot drift. The daemon adds its own
//! (bay states, LEDs, metrics).
//!
//! Observers run on the job's worker thread: they must return quickly (an
//! audit append is one short transaction) and must not call back into
//! [`crate::Jobs`] for the same job.

use crate::event::Event;
use crate::request::JobKind;
use lethe_cert::SignedCertificate;
use serde::Serialize;

/// Where a job came from: recorded with it in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The interface.
    pub source: OriginSource,
    /// Who: a user name, `uid:N` for a local account, `lethe:daemon` for
    /// the daemon acting on its own.
    pub user: String,
    /// The bay, for a job a bay started.
    pub bay: Option<String>,
    /// For a job started through the HTTPS API: the session, the
    /// re-authentication that allowed it (the user's signature for this
    /// action) and the break-glass episode it ran under, as audit tags.
    pub authorization: Vec<(AuthTag, String)>,
}

/// Which authorization record an [`Origin`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthTag {
    /// The session (public id).
    Session,
    /// The re-authentication record.
    Reauth,
    /// The break-glass request.
    BreakGlass,
}

/// The interface a job was asked for through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginSource {
    /// The `lethe` command line, run locally.
    Cli,
    /// The daemon on its own (an `auto` bay, a schedule).
    Daemon,
    /// The HTTPS API.
    Api,
    /// The web console.
    Console,
}

impl Origin {
    /// The command line, run by local account `uid`.
    pub fn cli(uid: u32) -> Self {
        Origin {
            source: OriginSource::Cli,
            user: format!("uid:{uid}"),
            bay: None,
            authorization: Vec::new(),
        }
    }

    /// The command line, run by this process's own account.
    pub fn this_process() -> Self {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
        Self::cli(uid)
    }

    /// The daemon on its own, for bay `bay`.
    pub fn daemon(bay: Option<String>) -> Self {
        Origin {
            source: OriginSource::Daemon,
            user: "lethe:daemon".into(),
            bay,
            authorization: Vec::new(),
        }
    }

    /// The same origin, for bay `bay`.
    pub fn in_bay(mut self, bay: impl Into<String>) -> Self {
        self.bay = Some(bay.into());
        self
    }
}

/// What an observer is told about the job an event belongs to.
#[derive(Debug, Clone, Copy)]
pub struct JobInfo<'a> {
    /// The job's id (a refused job has one too, though it was never stored).
    pub id: &'a str,
    /// Its kind.
    pub kind: JobKind,
    /// Who asked for it.
    pub origin: &'a Origin,
    /// A resume of a stopped or interrupted job (same id).
    pub resumed: bool,
}

/// Hears about every job of a [`crate::Jobs`].
pub trait JobObserver: Send + Sync {
    /// Every event of every job, in order; the last is
    /// [`Event::Finished`] (also for a job refused before it was stored).
    fn event(&self, job: &JobInfo<'_>, event: &Event);

    /// The job's document (certificate, failure or incomplete report) was
    /// signed and is about to be stored. An observer may return an
    /// attachment for the file (the audit log returns the inclusion proof
    /// of its `certificate.issued` entry); the first one returned is used.
    /// An error is reported as a warning and the document is stored
    /// without it: a job that ran is never left without its document.
    fn signed(
        &self,
        _job: &JobInfo<'_>,
        _cert: &SignedCertificate,
    ) -> Result<Option<serde_json::Value>, String> {
        Ok(None)
    }
}
