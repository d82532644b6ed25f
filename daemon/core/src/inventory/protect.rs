//! Protection: the reasons a device must not be wiped, each with a clear
//! sentence, decided from a record and the running system's [`SystemFacts`].
//!
//! A device is protected by what is built on it, not only by its own state:
//! [`evaluate_in`] also follows loop devices stacked on it (which `holders/`
//! does not show), the block device under a loop device, and other paths to
//! the same physical disk (a second SAS link, a multipath member without
//! dm-multipath), matched by WWN or by model and serial.

use super::{classify, transport, DevNum, DeviceRecord, Drive, SystemFacts, Transport};
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
    /// A loop device stacked on this device (`on`: the disk or the partition
    /// it is bound to) is protected for `reasons`: writing here would write
    /// under its data.
    Stacked {
        upper: String,
        on: String,
        reasons: Vec<ProtectReason>,
    },
    /// This loop device is backed by block device `lower`, which is protected.
    BackedBy {
        lower: String,
        reasons: Vec<ProtectReason>,
    },
    /// `path` reaches the same physical disk (`matched`: "WWN …" or "model
    /// and serial …") and is protected.
    OtherPath {
        path: String,
        matched: String,
        reasons: Vec<ProtectReason>,
    },
}

fn joined(reasons: &[ProtectReason]) -> String {
    reasons
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("; ")
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
            ProtectReason::Stacked { upper, on, reasons } => write!(
                f,
                "loop device {upper} is stacked on {on} and is protected ({})",
                joined(reasons)
            ),
            ProtectReason::BackedBy { lower, reasons } => write!(
                f,
                "it is a loop device over {lower}, which is protected ({})",
                joined(reasons)
            ),
            ProtectReason::OtherPath {
                path,
                matched,
                reasons,
            } => write!(
                f,
                "{path} is another path to the same disk ({matched}) and is protected ({})",
                joined(reasons)
            ),
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
            ProtectReason::Stacked { .. } => "stacked",
            ProtectReason::BackedBy { .. } => "backing",
            ProtectReason::OtherPath { .. } => "other-path",
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

/// Classify and evaluate in one go (the device's own state only).
pub fn assess(r: &DeviceRecord, facts: &SystemFacts) -> Drive {
    let mut d = classify(r);
    d.reasons = evaluate(r, facts);
    d.protected = !d.reasons.is_empty();
    d
}

/// Classify `r` and evaluate it among `records`: its own state, and what is
/// stacked on it, under it, or another path to it ([`evaluate_in`]).
pub fn assess_in(records: &[DeviceRecord], facts: &SystemFacts, r: &DeviceRecord) -> Drive {
    let mut d = classify(r);
    d.reasons = evaluate_in(records, facts, &r.name);
    d.protected = !d.reasons.is_empty();
    d
}

/// How deep stacks are followed; deeper ones are refused outright.
const MAX_DEPTH: usize = 8;

/// Protection of device `name` among `records` (which should hold every
/// device related to it: loop devices bound to it or its partitions, the
/// device under it if it is a loop device, and other paths to the same disk).
/// A device missing from `records` has no reasons of its own.
pub fn evaluate_in(
    records: &[DeviceRecord],
    facts: &SystemFacts,
    name: &str,
) -> Vec<ProtectReason> {
    let mut visiting = Vec::new();
    go(records, facts, name, &mut visiting)
}

fn go(
    records: &[DeviceRecord],
    facts: &SystemFacts,
    name: &str,
    visiting: &mut Vec<String>,
) -> Vec<ProtectReason> {
    let Some(r) = records.iter().find(|r| r.name == name) else {
        return Vec::new();
    };
    let mut reasons = evaluate(r, facts);
    if visiting.len() >= MAX_DEPTH {
        reasons.push(ProtectReason::InUse {
            by: format!("{name} (devices stacked more than {MAX_DEPTH} deep)"),
        });
        return reasons;
    }
    visiting.push(name.to_string());
    // Loop devices bound to this device or to one of its partitions.
    let nodes: Vec<(&str, DevNum)> = std::iter::once((r.name.as_str(), r.devnum))
        .chain(r.partitions.iter().map(|p| (p.name.as_str(), p.devnum)))
        .filter_map(|(n, d)| d.map(|d| (n, d)))
        .collect();
    for u in records {
        let Some(on) = u
            .loop_backing
            .and_then(|b| b.block)
            .and_then(|b| nodes.iter().find(|(_, d)| *d == b))
        else {
            continue;
        };
        if visiting.contains(&u.name) {
            continue;
        }
        let theirs = in_use(go(records, facts, &u.name, visiting));
        if !theirs.is_empty() {
            reasons.push(ProtectReason::Stacked {
                upper: u.name.clone(),
                on: on.0.to_string(),
                reasons: theirs,
            });
        }
    }
    // The block device under a loop device.
    if let Some(b) = r.loop_backing.and_then(|b| b.block) {
        let lower = records
            .iter()
            .find(|l| l.devnum == Some(b) || l.partitions.iter().any(|p| p.devnum == Some(b)));
        match lower {
            Some(l) if !visiting.contains(&l.name) => {
                let theirs: Vec<ProtectReason> = go(records, facts, &l.name, visiting)
                    .into_iter()
                    .filter(|x| *x != ProtectReason::ReadOnly)
                    .collect();
                if !theirs.is_empty() {
                    let node = l
                        .partitions
                        .iter()
                        .find(|p| p.devnum == Some(b))
                        .map_or(l.name.as_str(), |p| p.name.as_str());
                    reasons.push(ProtectReason::BackedBy {
                        lower: node.to_string(),
                        reasons: theirs,
                    });
                }
            }
            Some(_) => {}
            // The lower device was not gathered: protection cannot be judged.
            None => reasons.push(ProtectReason::BackedBy {
                lower: b.to_string(),
                reasons: vec![ProtectReason::InUse {
                    by: format!("block device {b} (its state could not be read)"),
                }],
            }),
        }
    }
    // Other paths to the same physical disk.
    for o in records {
        if o.name == r.name || visiting.contains(&o.name) {
            continue;
        }
        let Some(matched) = same_disk(r, o) else {
            continue;
        };
        let theirs = in_use(go(records, facts, &o.name, visiting));
        if !theirs.is_empty() {
            reasons.push(ProtectReason::OtherPath {
                path: o.devnode.clone(),
                matched,
                reasons: theirs,
            });
        }
    }
    visiting.pop();
    reasons
}

/// The reasons that mean "something uses this device": a read-only flag, a
/// partition or a virtual device on its own does not make the device below
/// or beside it busy.
fn in_use(reasons: Vec<ProtectReason>) -> Vec<ProtectReason> {
    reasons
        .into_iter()
        .filter(|r| {
            !matches!(
                r,
                ProtectReason::ReadOnly
                    | ProtectReason::IsPartition { .. }
                    | ProtectReason::Virtual { .. }
            )
        })
        .collect()
}

/// Whether `a` and `b` are two paths to one physical disk: the same WWN, or
/// the same model and serial. Virtual devices (loop, zram, dm, md) have no
/// such identity. Returns what matched.
pub fn same_disk(a: &DeviceRecord, b: &DeviceRecord) -> Option<String> {
    let virt = |r: &DeviceRecord| {
        matches!(
            transport(r),
            Transport::Loop | Transport::Zram | Transport::DeviceMapper | Transport::Md
        )
    };
    if virt(a) || virt(b) {
        return None;
    }
    // NVMe: the serial and model belong to the controller (the subsystem), so
    // every namespace shares them. Namespaces are different media; only the
    // same namespace reached through another controller is another path. The
    // namespace's own identifier (sysfs `wwid`: NGUID, EUI-64 or the
    // kernel's vendor-specific form) decides when both have one; otherwise
    // the same controller serial and model *and* the same namespace number.
    if transport(a) == Transport::Nvme || transport(b) == Transport::Nvme {
        let wwid = |r: &DeviceRecord| {
            r.attrs
                .get("wwid")
                .map(|w| w.trim().to_ascii_lowercase())
                .filter(|w| !w.is_empty())
        };
        if let (Some(w), Some(v)) = (wwid(a), wwid(b)) {
            return (w == v).then(|| format!("NVMe namespace id {w}"));
        }
        let ns = |r: &DeviceRecord| {
            r.name
                .rsplit_once('n')
                .and_then(|(_, n)| n.parse::<u32>().ok())
        };
        if ns(a).is_none() || ns(a) != ns(b) {
            return None;
        }
    }
    let (x, y) = (classify(a), classify(b));
    let norm = |s: &Option<String>| {
        s.as_deref()
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
    };
    if let (Some(w), Some(v)) = (norm(&x.wwn), norm(&y.wwn)) {
        // Two devices with WWNs are the same disk exactly when they agree.
        return (w == v).then(|| format!("WWN {}", x.wwn.unwrap_or_default()));
    }
    match (
        norm(&x.serial),
        norm(&y.serial),
        norm(&x.model),
        norm(&y.model),
    ) {
        (Some(s), Some(t), Some(m), Some(n)) if s == t && m == n => Some(format!(
            "model {} and serial {}",
            x.model.unwrap_or_default(),
            x.serial.unwrap_or_default()
        )),
        _ => None,
    }
}
