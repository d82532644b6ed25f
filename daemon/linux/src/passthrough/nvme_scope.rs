//! Which namespaces of an NVM subsystem are in use.
//!
//! NVMe Sanitize erases every namespace of the subsystem, and Format does when
//! FNA bit 0 or 1 is set. Before such a command the purge runner needs every
//! namespace with its protection (root, mounted, swap, held, in use), assessed
//! by the same discovery code that guards `lethe wipe`. The target itself is
//! left unprotected: the caller assessed it and holds it open exclusively.

use super::topology::{self, NamespaceNode, TopologyError};
use crate::discovery;
use std::path::Path;

/// A namespace of the subsystem and why it must not be erased, if it must not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceProtection {
    /// Block device name.
    pub name: String,
    /// Namespace id.
    pub nsid: u32,
    /// The protection reasons, joined; `None` when it may be erased.
    pub protected: Option<String>,
}

/// Every namespace of the subsystem `target` (a whole namespace block device
/// name, e.g. `nvme0n1`) belongs to, with its protection.
pub fn subsystem_scope(
    sysfs: &Path,
    target: &str,
) -> Result<Vec<NamespaceProtection>, TopologyError> {
    let nodes = topology::subsystem_namespaces(sysfs, target)?;
    Ok(assess_with(&nodes, target, |name| {
        discovery::drive(name).map(|d| {
            (
                d.protected,
                d.reasons.iter().map(|r| r.to_string()).collect(),
            )
        })
    }))
}

/// The protection of `nodes` as `assess` classifies each device: whether it
/// is protected and why (pure; the target is never assessed, a device that
/// cannot be assessed is protected).
pub fn assess_with(
    nodes: &[NamespaceNode],
    target: &str,
    assess: impl Fn(&str) -> Option<(bool, Vec<String>)>,
) -> Vec<NamespaceProtection> {
    nodes
        .iter()
        .map(|n| NamespaceProtection {
            name: n.name.clone(),
            nsid: n.nsid,
            protected: if n.name == target {
                None
            } else {
                match assess(&n.name) {
                    Some((true, reasons)) if reasons.is_empty() => Some("protected".into()),
                    Some((true, reasons)) => Some(reasons.join("; ")),
                    Some((false, _)) => None,
                    None => Some("could not be assessed (no sysfs record)".into()),
                }
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, nsid: u32) -> NamespaceNode {
        NamespaceNode {
            name: name.into(),
            nsid,
        }
    }

    fn drive(protected: bool) -> (bool, Vec<String>) {
        let why = if protected {
            vec!["nvme0n2 is mounted on /srv".to_string()]
        } else {
            vec![]
        };
        (protected, why)
    }

    #[test]
    fn target_is_skipped_others_are_assessed_unknown_is_protected() {
        let nodes = [node("nvme0n1", 1), node("nvme0n2", 2), node("nvme0n3", 3)];
        let got = assess_with(&nodes, "nvme0n1", |n| match n {
            "nvme0n1" => panic!("the target must not be assessed"),
            "nvme0n2" => Some(drive(true)),
            _ => None,
        });
        assert_eq!(got[0].protected, None);
        assert!(got[1]
            .protected
            .as_deref()
            .is_some_and(|p| p.contains("/srv")));
        assert!(got[2]
            .protected
            .as_deref()
            .is_some_and(|p| p.contains("could not be assessed")));
        let free = assess_with(&nodes[1..2], "nvme0n1", |_| Some(drive(false)));
        assert_eq!(free[0].protected, None);
    }
}
