//! What the job store keeps about each job (its `spec` column): enough to
//! resume it and to certify it. The JSON shapes are those earlier versions
//! stored, so their jobs still resume.

use crate::identity::DeviceIdentity;
use crate::request::Parties;
use lethe_core::plan::WipePlan;
use serde::{Deserialize, Serialize};

/// Everything that defines a wipe job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WipeSpec {
    pub device: DeviceIdentity,
    pub plan: WipePlan,
    pub sample_seed: u64,
    pub chunk_size: usize,
    pub depth: usize,
    pub parties: Parties,
    pub tool_version: String,
    /// Set when the operator asked for a drive-native Purge: what was
    /// requested and, once the job fell back to an overwrite, why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge: Option<PurgeContext>,
    /// The drive's health, read before the first write (none when the
    /// device reports none); the certificate's `device.health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<lethe_cmds::smart::DriveHealth>,
}

/// A Purge request carried by a job whose method may end up an overwrite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeContext {
    /// The level the operator asked for.
    pub requested: lethe_cmds::policy::Level,
    /// The drive-native part of the job, once it has run.
    pub report: Option<lethe_purge::PurgeReport>,
    /// HPA/DCO as the probe found them before anything ran (the runner's
    /// report carries them only when a drive command ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probed_hidden: Option<lethe_purge::HiddenArea>,
}

impl PurgeContext {
    /// The hidden area known for this drive, if any hides sectors.
    pub fn hidden(&self) -> Option<lethe_purge::HiddenArea> {
        self.report
            .as_ref()
            .and_then(|r| r.hidden.as_ref().map(|h| h.found))
            .or(self.probed_hidden)
            .filter(|h| h.hpa() || h.dco())
    }
}

/// Everything that defines a degauss job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DegaussSpec {
    pub device: DeviceIdentity,
    pub parties: Parties,
    /// The controller it ran on.
    pub port: String,
    pub tool_version: String,
}

/// Everything that defines an image restore job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreSpec {
    pub device: DeviceIdentity,
    /// The image (snapshot id and what it is).
    pub image: String,
    pub image_bytes: u64,
    pub operator_id: String,
    pub tool_version: String,
}
