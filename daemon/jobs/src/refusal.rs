//! Refusals: every way a job can end before anything was written.
//!
//! The type is the promise. A [`Refusal`] means no byte reached the device
//! (and, for a degauss, the relay never fired); every message says so, so an
//! operator reading only the last line knows the state of the drive.

use lethe_core::inventory::ProtectReason;
use serde::Serialize;

/// Why a job did not start writing. Nothing was written in every case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "refusal", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// The device is protected: its own state, or what is stacked on it,
    /// under it, or another path to it, uses it (every reason listed).
    #[error("refusing to touch {device}: {}; nothing was written", reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; "))]
    Protected {
        device: String,
        reasons: Vec<ProtectReason>,
    },
    /// The exclusive open failed: something claimed the device since the check.
    #[error("{device} is in use (mounted, swap, or held by md/dm/LVM); nothing was written")]
    Busy { device: String },
    /// The device opened is not the device that was checked.
    #[error("refusing {device}: the device changed between the check and the open ({why}); nothing was written")]
    Changed { device: String, why: String },
    /// The device may not be touched for another reason (not a whole block
    /// device, missing, no permission…), in the Linux layer's words.
    #[error("{0}")]
    Target(String),
    /// The operator's confirmation does not match the device opened.
    #[error("not confirmed: {0}; nothing was written")]
    NotConfirmed(String),
    /// The state directory cannot hold the job's record and documents.
    #[error("state directory {path}: {why}; nothing was written")]
    StateDir { path: String, why: String },
    /// The request itself is invalid (options out of range, …).
    #[error("{0}; nothing was written")]
    Invalid(String),
    /// Degaussing only sanitizes magnetic media.
    #[error("{0}; nothing was done")]
    NotMagnetic(String),
    /// A degauss needs the front-panel controller.
    #[error("no degausser controller is configured; nothing was done")]
    NoController,
    /// The controller did not answer, or answered that the degausser cannot
    /// run a cycle now (fault latched, e-stop, door open, busy, a simulation
    /// build outside tests). Checked before the operator is asked to confirm.
    #[error("the degausser is not ready: {0}; nothing was done")]
    ControllerNotReady(String),
    /// No operator of record, and the site requires one on every certificate.
    #[error("no operator of record: every certificate names who ran the job, and this site requires one; nothing was written")]
    NoOperator,
    /// The device cannot hold the image.
    #[error("{device} holds {capacity} bytes but the image is {image} bytes; nothing was written")]
    TooSmall {
        device: String,
        capacity: u64,
        image: u64,
    },
    /// The requested sanitization method cannot be used on this device.
    #[error("{0}")]
    Method(String),
    /// The job to resume cannot be resumed (unknown, finished, running, another device…).
    #[error("{0}; nothing was written")]
    Job(String),
    /// The job store could not record the job before the first write.
    #[error("job store: {0}; nothing was written")]
    Store(String),
    /// The operator cancelled the job before anything was written.
    #[error("cancelled before anything was written")]
    Cancelled,
}

impl From<lethe_store::StoreError> for Refusal {
    fn from(e: lethe_store::StoreError) -> Self {
        Refusal::Store(e.to_string())
    }
}
