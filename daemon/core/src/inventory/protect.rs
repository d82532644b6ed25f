//! Protection: the reasons a device must not be wiped, each with a clear
//! sentence, decided from a record and the running system's [`SystemFacts`].

use super::{classify, transport, DeviceRecord, Drive, SystemFacts, Transport};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a device must not be touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum ProtectReason {
    /// It holds a filesystem the running system needs (/, /boot, /usr…).
    SystemDisk {
        mountpoint: String,
        via: String,
    },
    Mounted {
        by: String,
        mountpoint: String,
    },
    Swap {
        by: String,
    },
    HeldBy {
        by: String,
        holders: Vec<String>,
    },
    /// Another process has it open exclusively.
    InUse {
        by: String,
    },
    ReadOnly,
    IsPartition {
        parent: String,
    },
    /// A device-mapper or md device: wipe its member disks instead.
    Virtual {
        kind: String,
    },
}

impl fmt::Display for ProtectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtectReason::SystemDisk { mountpoint, via } => {
                write!(f, "holds the system filesystem {mountpoint} (via {via})")
            }
            ProtectReason::Mounted { by, mountpoint } => {
                write!(f, "{by} is mounted at {mountpoint}")
            }
            ProtectReason::Swap { by } => write!(f, "{by} is in use as swap"),
            ProtectReason::HeldBy { by, holders } => {
                write!(
                    f,
                    "{by} is held by {} (md/dm/LVM member)",
                    holders.join(", ")
                )
            }
            ProtectReason::InUse { by } => {
                write!(f, "{by} is in use (opened exclusively by another program)")
            }
            ProtectReason::ReadOnly => f.write_str("the device is read-only"),
            ProtectReason::IsPartition { parent } => {
                write!(
                    f,
                    "it is a partition of {parent}; lethe wipes whole devices only"
                )
            }
            ProtectReason::Virtual { kind } => {
                write!(
                    f,
                    "it is a {kind} device; wipe the physical member disks instead"
                )
            }
        }
    }
}

impl ProtectReason {
    /// A few words for the table.
    pub fn short(&self) -> &'static str {
        match self {
            ProtectReason::SystemDisk { .. } => "system",
            ProtectReason::Mounted { .. } => "mounted",
            ProtectReason::Swap { .. } => "swap",
            ProtectReason::HeldBy { .. } => "held",
            ProtectReason::InUse { .. } => "in-use",
            ProtectReason::ReadOnly => "read-only",
            ProtectReason::IsPartition { .. } => "partition",
            ProtectReason::Virtual { .. } => "virtual",
        }
    }
}

/// Decide protection of a classified drive from the system's state.
pub fn evaluate(r: &DeviceRecord, facts: &SystemFacts) -> Vec<ProtectReason> {
    let mut reasons = Vec::new();
    if let Some((mp, via)) = facts.system_disks.get(&r.name) {
        reasons.push(ProtectReason::SystemDisk {
            mountpoint: mp.clone(),
            via: via.clone(),
        });
    }
    let members = std::iter::once((r.name.as_str(), r.devnum, &r.holders)).chain(
        r.partitions
            .iter()
            .map(|p| (p.name.as_str(), p.devnum, &p.holders)),
    );
    for (name, devnum, holders) in members {
        if let Some(d) = devnum {
            for m in facts.mounts.iter().filter(|m| m.devnum == d) {
                reasons.push(ProtectReason::Mounted {
                    by: name.to_string(),
                    mountpoint: m.mountpoint.clone(),
                });
            }
            if facts.swaps.contains(&d) {
                reasons.push(ProtectReason::Swap {
                    by: name.to_string(),
                });
            }
        }
        if !holders.is_empty() {
            reasons.push(ProtectReason::HeldBy {
                by: name.to_string(),
                holders: holders.clone(),
            });
        }
        if facts.busy.contains(name) && !reasons.iter().any(|x| matches!(x, ProtectReason::Mounted { by, .. } | ProtectReason::Swap { by } | ProtectReason::HeldBy { by, .. } if by == name)) {
            reasons.push(ProtectReason::InUse { by: name.to_string() });
        }
    }
    if r.attrs.get("ro").is_some_and(|v| v.trim() == "1") {
        reasons.push(ProtectReason::ReadOnly);
    }
    match transport(r) {
        Transport::DeviceMapper => reasons.push(ProtectReason::Virtual {
            kind: "device-mapper".into(),
        }),
        Transport::Md => reasons.push(ProtectReason::Virtual {
            kind: "md RAID".into(),
        }),
        _ => {}
    }
    reasons
}

/// Classify and evaluate in one go.
pub fn assess(r: &DeviceRecord, facts: &SystemFacts) -> Drive {
    let mut d = classify(r);
    d.reasons = evaluate(r, facts);
    d.protected = !d.reasons.is_empty();
    d
}
