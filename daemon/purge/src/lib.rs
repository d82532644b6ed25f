//! Drive-native Purge runner (issue 5).
//!
//! Written against two narrow seams only: [`lethe_cmds::io::DriveIo`] carries
//! commands (Linux `SG_IO`/NVMe ioctls, or the software drive in `lethe-sim`)
//! and [`lethe_core::device::BlockDevice`] carries the read-back. So the same
//! runner body runs against the model in property tests, against QEMU's
//! emulated drives, and against real drives.
//!
//! - [`profile`]: probe identity, capabilities and hidden areas (read-only).
//! - [`runner`]: a sanitize already running, policy, operator blockers,
//!   hidden areas, canaries, fallbacks, proof.
//! - [`scope`]: which NVMe namespaces a command erases; protected ones are
//!   never reached.
//! - [`hidden`]: HPA / Accessible Max Address removal in the order drives
//!   demand, and whether the proof reached the hidden sectors.
//! - [`exec`]: one method, watched until the drive itself reports completion.
//! - [`canary`]: the read-back proof, over the native capacity when a hidden
//!   area was removed.

pub mod canary;
pub mod clock;
pub mod exec;
pub mod hidden;
pub mod profile;
pub mod runner;
pub mod scope;

pub use canary::{CanarySet, Expect, ReadBack};
pub use clock::{Clock, SystemClock};
pub use exec::MethodResult;
pub use hidden::HiddenReport;
pub use profile::{probe, CommandPath, DriveProfile, HiddenArea, Hints};
pub use runner::{default_path, run_purge, Outcome, PurgeReport, PurgeRequest};
pub use scope::NamespaceInfo;

use lethe_cmds::policy::MethodChoice;

/// Errors before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurgeError {
    /// The drive could not be probed.
    #[error("probing the drive: {0}")]
    Probe(String),
    /// An explicitly requested method cannot be used on this drive.
    #[error("{0}")]
    MethodRefused(String),
}

/// What the runner reports while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum PurgeEvent {
    /// The policy's choice.
    Chosen(MethodChoice),
    /// The operator must act (frozen drive, hidden area...).
    Attention(String),
    /// A command is being sent.
    Command(String),
    /// A long command is running.
    Waiting(String),
    /// Progress of a background sanitize, when the drive reports it.
    Progress(Option<f64>),
}
