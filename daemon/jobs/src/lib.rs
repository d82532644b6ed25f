//! The job library: every job Lethe runs on a device, behind one typed
//! request set, for the `lethe` command line and the appliance daemon alike.
//!
//! An edge parses its input into a [`JobRequest`], submits it to [`Jobs`],
//! renders the [`Event`]s of the returned [`JobHandle`], and maps the final
//! [`Report`]'s [`Outcome`] to what it shows. Everything in between lives
//! here, once: the state-directory preflight, the assessment and exclusive
//! open of the device (through a [`DeviceHost`]), the check of the operator's
//! [`Confirmation`] against the device actually opened, the job record and
//! its lease, the engines, and the signed document.
//!
//! Modules:
//! - [`request`]: what an edge asks for (wipe, resume, degauss, image restore,
//!   and the backup jobs of [`backup`]: backup, tree restore, drill, scheduled run);
//! - [`confirm`]: the confirmation as data, and the prompt's wording;
//! - [`event`]: the event stream, the report and the outcome enum;
//! - [`refusal`]: every way a job ends before anything was written;
//! - [`runner`]: [`Jobs`], worker threads, leases, subscriptions, cancel tokens;
//! - [`host`]: the device seam ([`LinuxHost`] on Linux; `fake::FakeHost` in tests);
//! - [`panel`]: the front-panel controller, one connection for all jobs;
//! - [`state`]: the state directory and its preflight; [`history`]: listing jobs;
//! - [`certificate`]: one certificate builder for every kind of job;
//! - [`observe`]: observers of every job ([`JobObserver`]) and where a job
//!   came from ([`Origin`]); [`audit`]: the audit log as an observer;
//! - `wipe`, `purge`, `degauss`, `restore`: the job bodies.
//!
//! Features: `testkit` adds `fake::FakeHost`, a scripted device host.

pub mod audit;
pub mod backup;
pub mod certificate;
pub mod clock;
pub mod confirm;
pub mod degauss;
pub mod event;
#[cfg(feature = "testkit")]
pub mod fake;
mod health;
pub mod history;
pub mod host;
pub mod identity;
pub mod observe;
pub mod panel;
mod purge;
mod record;
pub mod refusal;
pub mod request;
pub mod restore;
pub mod runner;
pub mod spec;
pub mod state;
mod wipe;

pub use clock::{Clock, SystemClock};
pub use confirm::Confirmation;
pub use event::{Event, Issued, Level, Outcome, PurgeStep, Report};
pub use host::{DeviceHost, LinuxHost};
pub use identity::DeviceIdentity;
pub use observe::{AuthTag, JobInfo, JobObserver, Origin, OriginSource};
pub use panel::{DegaussFailure, Panel};
pub use refusal::Refusal;
pub use request::{
    DegaussRequest, Destination, JobKind, JobRequest, Medium, MethodFamily, OverwriteOptions,
    Parties, PurgeOptions, RestoreImageRequest, ResumeRequest, WipeLevel, WipeRequest,
};
pub use runner::{CancelToken, Hooks, JobHandle, Jobs, JobsConfig, LeaseTiming, RunningJob};
pub use state::StateDir;
