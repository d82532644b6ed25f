//! A job's record in the store, and the documents it issues.
//!
//! The record is written before the first byte reaches the device, and a
//! document (certificate, failure or incomplete report) is issued from the
//! space the preflight reserved. Document ids never collide: a job's
//! certificate has the job's id, and each incomplete report of a job gets
//! the next free number (`<job>-incomplete-<n>`), however many stops happen
//! in one second.

use crate::certificate::{self, Common, IssueFacts, Work};
use crate::event::Issued;
use crate::refusal::Refusal;
use crate::request::JobKind;
use crate::runner::Ctx;
use crate::state::{self, Reservation};
use lethe_cert::CertStore;
use lethe_store::{JobEvent, JobRecord, JobStatus, JobStore, NewJob, StoreError};
use serde::Serialize;

/// An open job record.
pub(crate) struct JobLog<'a> {
    pub(crate) store: JobStore,
    pub(crate) ctx: &'a Ctx<'a>,
}

impl<'a> JobLog<'a> {
    /// Record a new job as running under this worker's lease.
    pub(crate) fn create(
        ctx: &'a Ctx<'a>,
        kind: JobKind,
        device: &str,
        spec: &impl Serialize,
        secret: Vec<u8>,
    ) -> Result<Self, Refusal> {
        let store = JobStore::open(ctx.cfg().state.root())?;
        let spec = serde_json::to_value(spec).map_err(|e| Refusal::Store(e.to_string()))?;
        store.create(&NewJob {
            id: ctx.id.to_string(),
            kind: kind.as_str().into(),
            device_path: device.to_string(),
            spec,
            secret,
            lease: ctx.lease(),
            now: ctx.now(),
        })?;
        ctx.recorded(kind, device);
        Ok(Self { store, ctx })
    }

    /// Take over a stopped job for this worker (a resume).
    pub(crate) fn take_over(ctx: &'a Ctx<'a>, device: &str) -> Result<Self, Refusal> {
        let store = JobStore::open(ctx.cfg().state.root())?;
        if !store.take_over(ctx.id, &ctx.lease(), &ctx.now())? {
            return Err(Refusal::Job(format!(
                "job {} was taken over by another process, or finished, while it was being resumed",
                ctx.id
            )));
        }
        ctx.recorded(JobKind::Wipe, device);
        Ok(Self { store, ctx })
    }

    /// The job stops running under this worker (stopped, interrupted):
    /// its lease is released first, so the keeper does not take it back.
    pub(crate) fn set_status(&self, status: JobStatus) -> Result<(), StoreError> {
        self.ctx.release();
        self.store.set_status(self.ctx.id, status, &self.ctx.now())
    }

    /// The job ended: its result, document and final status.
    pub(crate) fn finish(
        &self,
        status: JobStatus,
        result: &serde_json::Value,
        document: Option<&str>,
    ) -> Result<(), StoreError> {
        self.ctx.release();
        self.store
            .finish(self.ctx.id, status, result, document, &self.ctx.now())
    }

    pub(crate) fn event(&self, kind: &str, detail: &str) -> Result<(), StoreError> {
        self.store.event(self.ctx.id, &self.ctx.now(), kind, detail)
    }

    pub(crate) fn record(&self) -> Result<(JobRecord, Vec<JobEvent>), StoreError> {
        Ok((
            self.store.get(self.ctx.id)?,
            self.store.events(self.ctx.id)?,
        ))
    }
}

/// Sign `work`'s document and write it, from the reserved space.
pub(crate) fn issue(
    ctx: &Ctx<'_>,
    reservation: &mut Reservation,
    id: &str,
    common: Common<'_>,
    work: Work<'_>,
) -> Result<Issued, String> {
    let facts = IssueFacts {
        appliance_id: ctx.inner.key.key_id().to_string(),
        hostname: state::hostname(),
        issued_at: ctx.now(),
    };
    let body = certificate::body(&facts, &Common { id, ..common }, work);
    let certifies = body.result.status == lethe_cert::ResultStatus::Pass;
    let cert = lethe_cert::sign(&body, &ctx.inner.key).map_err(|e| e.to_string())?;
    let cert = attach(ctx, cert);
    reservation.release();
    let (json, pdf) = CertStore::new(ctx.cfg().state.certificates())
        .save(&cert)
        .map_err(|e| e.to_string())?;
    Ok(Issued {
        id: id.to_string(),
        json: json.display().to_string(),
        pdf: pdf.display().to_string(),
        certifies,
    })
}

/// Let the observers see the signed document, and attach the first
/// attachment one returns (the audit log's inclusion proof). A failing
/// observer costs the attachment, never the document.
fn attach(ctx: &Ctx<'_>, cert: lethe_cert::SignedCertificate) -> lethe_cert::SignedCertificate {
    for o in &ctx.cfg().observers {
        match o.signed(&ctx.job_info(), &cert) {
            Ok(None) => {}
            Ok(Some(a)) => match cert.clone().with_audit(a) {
                Ok(with) => return with,
                Err(e) => ctx.emit(crate::Event::Warning {
                    message: format!("the document's attachment was refused: {e}"),
                }),
            },
            Err(e) => ctx.emit(crate::Event::Warning {
                message: format!("{e}; the document is issued without its audit proof"),
            }),
        }
    }
    cert
}

/// The id of a job's next incomplete report: the first `<job>-incomplete-<n>`
/// not yet in the certificate store.
pub(crate) fn next_incomplete_id(ctx: &Ctx<'_>) -> String {
    let dir = ctx.cfg().state.certificates();
    (1u32..)
        .map(|n| format!("{}-incomplete-{n}", ctx.id))
        .find(|id| !dir.join(format!("{id}.json")).exists())
        .unwrap_or_else(|| format!("{}-incomplete", ctx.id))
}
