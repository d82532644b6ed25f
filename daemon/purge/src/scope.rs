//! NVMe namespace scope (pure): which namespaces a command erases, and the
//! policy's choice restricted to commands that erase nothing protected.
//!
//! NVMe Sanitize erases the whole NVM subsystem; Format NVM erases every
//! namespace when FNA bit 0 (format) or bit 1 (secure erase) says so, and only
//! the target namespace otherwise. The caller lists every namespace of the
//! subsystem with its protection (root, mounted, swap, held); a command that
//! would reach a protected one is not sent. A namespace listed twice under
//! different names (two controllers without multipath) is the same namespace:
//! a protected second path to the target also blocks a per-namespace Format.

use lethe_cmds::policy::{nvme_reach, Category, Level, Method, MethodChoice, NvmeCaps, NvmeReach};
use serde::{Deserialize, Serialize};

/// One namespace of the NVM subsystem, as the caller found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceInfo {
    /// Block device name (`nvme0n2`).
    pub name: String,
    /// Namespace id.
    pub nsid: u32,
    /// Why it must not be erased (mounted, root, swap, held...), or `None`.
    pub protected: Option<String>,
}

impl NamespaceInfo {
    fn label(&self) -> String {
        format!("{} (NSID {})", self.name, self.nsid)
    }
}

/// The namespaces `m` would erase: `Ok(None)` for a method that is not an
/// NVMe command (or a per-namespace one when the list is unknown),
/// `Ok(Some(names))`, or why it must not be sent.
pub fn erased_by(
    m: Method,
    caps: &NvmeCaps,
    target_nsid: u32,
    list: Option<&[NamespaceInfo]>,
) -> Result<Option<Vec<String>>, String> {
    let Some(reach) = nvme_reach(m, caps) else {
        return Ok(None);
    };
    let Some(list) = list else {
        return match reach {
            NvmeReach::Namespace => Ok(None),
            NvmeReach::Subsystem(why) => Err(format!(
                "{m:?} is not sent: {why}, and the namespaces of this subsystem could not be \
                 listed to check that none is in use"
            )),
        };
    };
    let hit: Vec<&NamespaceInfo> = match reach {
        NvmeReach::Namespace => list.iter().filter(|n| n.nsid == target_nsid).collect(),
        NvmeReach::Subsystem(_) => list.iter().collect(),
    };
    let blocked: Vec<String> = hit
        .iter()
        .filter_map(|n| n.protected.as_ref().map(|p| format!("{}: {p}", n.label())))
        .collect();
    if !blocked.is_empty() {
        let why = match reach {
            NvmeReach::Subsystem(w) => w,
            NvmeReach::Namespace => "it formats this namespace, which another path shows in use",
        };
        return Err(format!(
            "{m:?} is not sent: {why}, and that includes protected namespaces ({})",
            blocked.join("; ")
        ));
    }
    let mut names: Vec<String> = hit.iter().map(|n| n.label()).collect();
    names.dedup();
    Ok(Some(names))
}

/// The auto-selected choice restricted to methods that erase nothing
/// protected. Returns the reasons to record, and `Some(why)` when no
/// drive-native method is left only because of the scope.
pub fn restrict(
    choice: &mut MethodChoice,
    caps: &NvmeCaps,
    target_nsid: u32,
    list: Option<&[NamespaceInfo]>,
) -> (Vec<String>, Option<String>) {
    let mut reasons = Vec::new();
    let ok = |m: Method| erased_by(m, caps, target_nsid, list);
    let mut refused = Vec::new();
    choice.fallbacks.retain(|(m, _)| match ok(*m) {
        Ok(_) => true,
        Err(why) => {
            refused.push(why);
            false
        }
    });
    if let Err(why) = ok(choice.method) {
        reasons.push(why.clone());
        refused.insert(0, why);
        let next = choice
            .fallbacks
            .iter()
            .position(|(m, c)| *m != Method::Overwrite && *c == Level::Purge);
        match next {
            Some(i) => {
                let (m, c): (Method, Category) = choice.fallbacks.remove(i);
                reasons.push(format!(
                    "chosen {m:?} instead: it erases no namespace that is in use"
                ));
                choice.method = m;
                choice.category = c;
            }
            None => {
                let why = format!(
                    "every drive-native Purge command of this controller would erase a \
                     protected namespace: {}",
                    refused.join("; ")
                );
                reasons.push(why.clone());
                choice.method = Method::Destroy;
                choice.category = Level::Destroy;
                return (reasons, Some(why));
            }
        }
    } else {
        reasons.extend(refused);
    }
    (reasons, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lethe_cmds::nvme::{SaniCap, SanitizeAction, Ses};

    fn caps(fna: u8) -> NvmeCaps {
        NvmeCaps {
            sanicap: SaniCap::from_raw(0b011),
            format_supported: true,
            format_crypto: false,
            format_all_namespaces: fna & 1 != 0,
            secure_erase_all_namespaces: fna & 2 != 0,
        }
    }

    fn ns(name: &str, nsid: u32, protected: Option<&str>) -> NamespaceInfo {
        NamespaceInfo {
            name: name.into(),
            nsid,
            protected: protected.map(str::to_string),
        }
    }

    const SAN: Method = Method::NvmeSanitize(SanitizeAction::CryptoErase);
    const FMT: Method = Method::NvmeFormat(Ses::UserData);

    #[test]
    fn sanitize_reaches_every_namespace_format_only_its_own() {
        let list = [ns("nvme0n1", 1, None), ns("nvme0n2", 2, None)];
        assert_eq!(
            erased_by(SAN, &caps(0), 1, Some(&list)),
            Ok(Some(vec![
                "nvme0n1 (NSID 1)".into(),
                "nvme0n2 (NSID 2)".into()
            ]))
        );
        assert_eq!(
            erased_by(FMT, &caps(0), 1, Some(&list)),
            Ok(Some(vec!["nvme0n1 (NSID 1)".into()]))
        );
        assert_eq!(
            erased_by(Method::Overwrite, &caps(0), 1, Some(&list)),
            Ok(None)
        );
    }

    #[test]
    fn a_protected_namespace_blocks_what_reaches_it() {
        let list = [
            ns("nvme0n1", 1, None),
            ns("nvme0n2", 2, Some("mounted on /data")),
        ];
        assert!(erased_by(SAN, &caps(0), 1, Some(&list)).is_err_and(|e| e.contains("/data")));
        assert!(erased_by(FMT, &caps(0), 1, Some(&list)).is_ok());
        assert!(erased_by(FMT, &caps(0b01), 1, Some(&list)).is_err());
        assert!(erased_by(FMT, &caps(0b10), 1, Some(&list)).is_err());
        // The target namespace in use through a second controller.
        let two_paths = [
            ns("nvme0n1", 1, None),
            ns("nvme1n1", 1, Some("mounted on /")),
        ];
        assert!(erased_by(FMT, &caps(0), 1, Some(&two_paths)).is_err());
    }

    #[test]
    fn unknown_list_refuses_subsystem_wide_commands_only() {
        assert!(erased_by(SAN, &caps(0), 1, None).is_err());
        assert_eq!(erased_by(FMT, &caps(0), 1, None), Ok(None));
        assert!(erased_by(FMT, &caps(0b01), 1, None).is_err());
    }

    fn choice() -> MethodChoice {
        MethodChoice {
            method: SAN,
            category: Level::Purge,
            reasons: vec![],
            blocker: None,
            fallbacks: vec![
                (
                    Method::NvmeSanitize(SanitizeAction::BlockErase),
                    Level::Purge,
                ),
                (FMT, Level::Purge),
                (Method::Overwrite, Level::Clear),
            ],
        }
    }

    #[test]
    fn restrict_falls_to_a_per_namespace_format_or_to_nothing() {
        let list = [ns("nvme0n1", 1, None), ns("nvme0n2", 2, Some("mounted"))];
        let mut c = choice();
        let (why, blocked) = restrict(&mut c, &caps(0), 1, Some(&list));
        assert_eq!(c.method, FMT);
        assert_eq!(c.fallbacks, vec![(Method::Overwrite, Level::Clear)]);
        assert!(blocked.is_none() && why.len() >= 2);
        let mut c = choice();
        let (_, blocked) = restrict(&mut c, &caps(0b01), 1, Some(&list));
        assert_eq!(c.method, Method::Destroy);
        assert_eq!(c.fallbacks, vec![(Method::Overwrite, Level::Clear)]);
        assert!(blocked.is_some_and(|b| b.contains("mounted")));
        let mut c = choice();
        let ok = [ns("nvme0n1", 1, None), ns("nvme0n2", 2, None)];
        let (why, blocked) = restrict(&mut c, &caps(0), 1, Some(&ok));
        assert_eq!((c.method, why.len(), blocked), (SAN, 0, None));
    }
}
