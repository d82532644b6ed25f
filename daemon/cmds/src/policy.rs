//! NIST SP 800-88 / IEEE 2883 method selection (pure).
//!
//! From what the drive reports (IDENTIFY, Identify Controller, supported SCSI
//! service actions) and the requested level, pick the command that achieves it,
//! with the reasons that go on the certificate. Capability bits are always
//! checked here: drives and emulators accept commands they do not support.

use crate::ata::{SanitizeSupport, SecurityStatus};
use crate::nvme::{SaniCap, SanitizeAction, Ses};
use serde::{Deserialize, Serialize};

/// Sanitization level requested by the operator (NIST SP 800-88 §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Logical techniques on user-addressable storage.
    Clear,
    /// Techniques that defeat laboratory recovery.
    Purge,
    /// Physical destruction.
    Destroy,
}

/// The NIST category a method actually achieves.
pub type Category = Level;

/// How the drive is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Transport {
    /// SATA through libata (ATA commands via SAT in the kernel).
    Sata,
    /// SAS / SCSI.
    Sas,
    /// NVMe.
    Nvme,
    /// USB mass storage (bridge).
    Usb,
    /// Anything else (MMC, virtio...).
    Other,
}

/// ATA capabilities, from IDENTIFY DEVICE and SANITIZE STATUS EXT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtaCaps {
    /// Security feature set state.
    pub security: SecurityStatus,
    /// SANITIZE feature set support.
    pub sanitize: SanitizeSupport,
    /// SANITIZE FROZEN reported by SANITIZE STATUS EXT.
    pub sanitize_frozen: bool,
}

/// NVMe capabilities, from Identify Controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmeCaps {
    /// SANICAP.
    pub sanicap: SaniCap,
    /// OACS bit 1.
    pub format_supported: bool,
    /// FNA bit 2: Format supports cryptographic erase.
    pub format_crypto: bool,
    /// FNA bit 0: a format of any namespace formats every namespace of the
    /// NVM subsystem.
    pub format_all_namespaces: bool,
    /// FNA bit 1: a secure erase (SES 1 or 2) of any namespace erases every
    /// namespace of the NVM subsystem.
    pub secure_erase_all_namespaces: bool,
}

/// How far an NVMe method reaches beyond the namespace it is sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NvmeReach {
    /// Only the target namespace (Format with FNA bits 0 and 1 clear).
    Namespace,
    /// Every namespace of the NVM subsystem, for the reason given.
    Subsystem(&'static str),
}

/// What `m` erases on a controller with capabilities `n`; `None` for methods
/// that are not NVMe commands. Sanitize always acts on the whole NVM subsystem
/// (NVMe Base 2.0 5.24; the nvme-cli wiki says the same), Format does when FNA
/// says so (Identify Controller byte 524 bits 0 and 1).
pub fn nvme_reach(m: Method, n: &NvmeCaps) -> Option<NvmeReach> {
    match m {
        Method::NvmeSanitize(_) => Some(NvmeReach::Subsystem(
            "NVMe Sanitize acts on the whole NVM subsystem",
        )),
        Method::NvmeFormat(_) if n.format_all_namespaces => Some(NvmeReach::Subsystem(
            "FNA bit 0: a format applies to every namespace",
        )),
        Method::NvmeFormat(ses) if ses != Ses::None && n.secure_erase_all_namespaces => Some(
            NvmeReach::Subsystem("FNA bit 1: a secure erase applies to every namespace"),
        ),
        Method::NvmeFormat(_) => Some(NvmeReach::Namespace),
        _ => None,
    }
}

/// SCSI SANITIZE service actions the device reports as supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScsiCaps {
    /// OVERWRITE (01h).
    pub overwrite: bool,
    /// BLOCK ERASE (02h).
    pub block_erase: bool,
    /// CRYPTOGRAPHIC ERASE (03h).
    pub crypto_erase: bool,
}

/// Everything the policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Attachment.
    pub transport: Transport,
    /// `Some(true)` spinning media, `Some(false)` solid state, `None` unknown.
    pub rotational: Option<bool>,
    /// USB stick, SD card or other removable flash without sanitize commands.
    pub removable_flash: bool,
    /// ATA capabilities (SATA, or SATA behind SAT).
    pub ata: Option<AtaCaps>,
    /// NVMe capabilities.
    pub nvme: Option<NvmeCaps>,
    /// SCSI SANITIZE support.
    pub scsi: Option<ScsiCaps>,
}

/// ATA SANITIZE operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AtaSanitizeKind {
    /// CRYPTO SCRAMBLE EXT.
    CryptoScramble,
    /// BLOCK ERASE EXT.
    BlockErase,
    /// OVERWRITE EXT.
    Overwrite,
}

/// SCSI SANITIZE operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScsiSanitizeKind {
    /// CRYPTOGRAPHIC ERASE.
    CryptoErase,
    /// BLOCK ERASE.
    BlockErase,
    /// OVERWRITE.
    Overwrite,
}

/// A sanitization method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// Verified software overwrite of every addressable LBA (Clear).
    Overwrite,
    /// ATA SANITIZE.
    AtaSanitize(AtaSanitizeKind),
    /// ATA SECURITY ERASE UNIT.
    AtaSecurityErase {
        /// Enhanced mode.
        enhanced: bool,
    },
    /// NVMe Sanitize (never `ExitFailureMode`).
    NvmeSanitize(SanitizeAction),
    /// NVMe Format NVM with a secure erase setting (never `Ses::None`).
    NvmeFormat(Ses),
    /// SCSI SANITIZE.
    ScsiSanitize(ScsiSanitizeKind),
    /// No command can reach the level: physical destruction.
    Destroy,
}

/// Something the operator must do before the chosen method can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Blocker {
    /// SECURITY FREEZE LOCK is set (usually by the BIOS).
    SecurityFrozen,
    /// SANITIZE FREEZE LOCK is set.
    SanitizeFrozen,
    /// The drive is locked with a password Lethe does not know.
    Locked,
    /// Five failed unlock attempts: the password counter expired.
    CountExpired,
}

impl Blocker {
    /// What the operator must do.
    pub fn instructions(&self) -> &'static str {
        match self {
            Blocker::SecurityFrozen | Blocker::SanitizeFrozen => {
                "the drive is frozen by the firmware: suspend the machine to RAM and resume \
                 (S3), or unplug and replug the drive's power/SATA cable while the system runs \
                 (hot-replug); then rescan the drive"
            }
            Blocker::Locked => {
                "the drive is locked by an unknown ATA password: unlock it with the user or \
                 master password, or route it to destruction"
            }
            Blocker::CountExpired => {
                "five wrong ATA passwords were tried: power-cycle the drive before retrying"
            }
        }
    }
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodChoice {
    /// The method to run.
    pub method: Method,
    /// The category it achieves.
    pub category: Category,
    /// Why, in order, for the certificate.
    pub reasons: Vec<String>,
    /// When set, the method cannot run until the operator acts (NeedsUnfreeze...).
    pub blocker: Option<Blocker>,
    /// Further methods to try, in order, if the device aborts this one, with
    /// the category each achieves. The runner must record any fallback.
    pub fallbacks: Vec<(Method, Category)>,
}

/// Candidates for Purge, best first, each with the reason it qualifies.
fn purge_candidates(c: &Capabilities, why: &mut Vec<String>) -> Vec<(Method, String)> {
    let mut out = Vec::new();
    if let Some(n) = c.nvme {
        let s = n.sanicap;
        if s.crypto_erase {
            out.push((
                Method::NvmeSanitize(SanitizeAction::CryptoErase),
                "SANICAP.CES: Sanitize crypto erase supported".into(),
            ));
        }
        if s.block_erase {
            out.push((
                Method::NvmeSanitize(SanitizeAction::BlockErase),
                "SANICAP.BES: Sanitize block erase supported".into(),
            ));
        }
        if n.format_supported {
            if n.format_crypto {
                out.push((
                    Method::NvmeFormat(Ses::Crypto),
                    "OACS Format NVM supported and FNA bit 2: Format with SES=2 (crypto erase)"
                        .into(),
                ));
            }
            out.push((
                Method::NvmeFormat(Ses::UserData),
                "OACS Format NVM supported: Format with SES=1 (user data erase)".into(),
            ));
        } else {
            why.push("NVMe Format NVM not supported (OACS bit 1 clear)".into());
        }
        if s.overwrite {
            out.push((
                Method::NvmeSanitize(SanitizeAction::Overwrite),
                "SANICAP.OWS: Sanitize overwrite supported".into(),
            ));
        }
        if !s.any() {
            why.push("NVMe SANICAP reports no sanitize action".into());
        }
    }
    if let Some(a) = c.ata {
        let sz = a.sanitize;
        let hdd = c.rotational == Some(true);
        if sz.supported {
            let mut kinds = Vec::new();
            if hdd {
                if sz.overwrite {
                    kinds.push((
                        AtaSanitizeKind::Overwrite,
                        "OVERWRITE EXT on rotating media (word 59 bit 14)",
                    ));
                }
                if sz.crypto_scramble {
                    kinds.push((
                        AtaSanitizeKind::CryptoScramble,
                        "CRYPTO SCRAMBLE EXT (word 59 bit 13)",
                    ));
                }
                if sz.block_erase {
                    kinds.push((
                        AtaSanitizeKind::BlockErase,
                        "BLOCK ERASE EXT (word 59 bit 15)",
                    ));
                }
            } else {
                if sz.crypto_scramble {
                    kinds.push((
                        AtaSanitizeKind::CryptoScramble,
                        "CRYPTO SCRAMBLE EXT on solid-state media (word 59 bit 13)",
                    ));
                }
                if sz.block_erase {
                    kinds.push((
                        AtaSanitizeKind::BlockErase,
                        "BLOCK ERASE EXT on solid-state media (word 59 bit 15)",
                    ));
                }
                if sz.overwrite {
                    kinds.push((AtaSanitizeKind::Overwrite, "OVERWRITE EXT (word 59 bit 14)"));
                }
            }
            for (k, r) in kinds {
                out.push((
                    Method::AtaSanitize(k),
                    format!("ATA SANITIZE supported: {r}"),
                ));
            }
        } else {
            why.push("ATA SANITIZE feature set not supported (word 59 bit 12 clear)".into());
        }
        if a.security.supported {
            if a.security.enhanced_erase_supported {
                out.push((
                    Method::AtaSecurityErase { enhanced: true },
                    "ATA Security enhanced erase supported (word 128 bit 5)".into(),
                ));
            }
            let note = if hdd {
                ""
            } else {
                "; on solid-state media NIST accepts it only with vendor attestation"
            };
            out.push((
                Method::AtaSecurityErase { enhanced: false },
                format!("ATA Security normal erase (word 82 bit 1){note}"),
            ));
        } else {
            why.push("ATA Security feature set not supported".into());
        }
    }
    if let Some(s) = c.scsi {
        let hdd = c.rotational == Some(true);
        let mut v = Vec::new();
        if s.crypto_erase {
            v.push(ScsiSanitizeKind::CryptoErase);
        }
        if s.block_erase && !hdd {
            v.push(ScsiSanitizeKind::BlockErase);
        }
        if s.overwrite {
            if hdd {
                v.insert(0, ScsiSanitizeKind::Overwrite)
            } else {
                v.push(ScsiSanitizeKind::Overwrite)
            }
        }
        if s.block_erase && hdd {
            v.push(ScsiSanitizeKind::BlockErase);
        }
        for k in v {
            out.push((
                Method::ScsiSanitize(k),
                format!("SCSI SANITIZE {k:?} supported"),
            ));
        }
        if !(s.crypto_erase || s.block_erase || s.overwrite) {
            why.push("SCSI SANITIZE not supported".into());
        }
    }
    out
}

/// The blocker that prevents `m` from running now, if any.
fn blocker_for(m: Method, c: &Capabilities) -> Option<Blocker> {
    let a = c.ata?;
    match m {
        Method::AtaSecurityErase { .. } if a.security.count_expired => Some(Blocker::CountExpired),
        Method::AtaSecurityErase { .. } if a.security.locked => Some(Blocker::Locked),
        Method::AtaSecurityErase { .. } if a.security.frozen => Some(Blocker::SecurityFrozen),
        Method::AtaSanitize(_) if a.sanitize_frozen => Some(Blocker::SanitizeFrozen),
        Method::AtaSanitize(_) | Method::Overwrite if a.security.locked => Some(Blocker::Locked),
        _ => None,
    }
}

/// Pick the method for `level` on a drive with capabilities `c`.
pub fn select_method(c: &Capabilities, level: Level) -> MethodChoice {
    let mut reasons = vec![format!(
        "requested level {level:?} on {:?} transport",
        c.transport
    )];
    let clear = |mut reasons: Vec<String>| {
        reasons.push("Clear: one verified overwrite pass over every user-addressable LBA (NIST SP 800-88 Table A)".into());
        MethodChoice {
            method: Method::Overwrite,
            category: Level::Clear,
            blocker: blocker_for(Method::Overwrite, c),
            reasons,
            fallbacks: vec![],
        }
    };
    match level {
        Level::Destroy => {
            reasons.push("destruction requested: no logical method applies".into());
            return MethodChoice {
                method: Method::Destroy,
                category: Level::Destroy,
                reasons,
                blocker: None,
                fallbacks: vec![],
            };
        }
        Level::Clear => return clear(reasons),
        Level::Purge => {}
    }
    if c.removable_flash {
        reasons.push("removable flash media (USB stick, memory card) has no sanitize command that reaches spare blocks: it can only be cleared, so Purge requires destruction (NIST SP 800-88 Table A)".into());
        return MethodChoice {
            method: Method::Destroy,
            category: Level::Destroy,
            reasons,
            blocker: None,
            fallbacks: vec![(Method::Overwrite, Level::Clear)],
        };
    }
    if c.transport == Transport::Usb && c.ata.is_some() {
        reasons.push("ATA commands pass through a USB bridge: bridges may time out long commands; a direct SATA port is safer".into());
    }
    let cands = purge_candidates(c, &mut reasons);
    // Prefer the first candidate that can run now; a frozen/locked best candidate
    // still wins if nothing else qualifies, with its blocker set.
    let runnable = cands.iter().position(|(m, _)| blocker_for(*m, c).is_none());
    let Some(first) = runnable.or(if cands.is_empty() { None } else { Some(0) }) else {
        reasons.push("no drive-native purge command is supported: Purge requires destruction (overwrite only achieves Clear)".into());
        return MethodChoice {
            method: Method::Destroy,
            category: Level::Destroy,
            reasons,
            blocker: None,
            fallbacks: vec![(Method::Overwrite, Level::Clear)],
        };
    };
    for (m, r) in cands.iter().take(first) {
        let b = blocker_for(*m, c);
        reasons.push(format!(
            "skipped {m:?} ({r}): {}",
            b.map_or("", |b| b.instructions())
        ));
    }
    let (method, why) = cands[first].clone();
    reasons.push(format!("chosen {method:?}: {why}"));
    let blocker = blocker_for(method, c);
    if let Some(b) = blocker {
        reasons.push(format!("needs operator action: {}", b.instructions()));
    }
    let mut fallbacks: Vec<(Method, Category)> = cands
        .iter()
        .enumerate()
        .filter(|&(i, (m, _))| i != first && blocker_for(*m, c).is_none())
        .map(|(_, (m, _))| (*m, Level::Purge))
        .collect();
    fallbacks.push((Method::Overwrite, Level::Clear));
    MethodChoice {
        method,
        category: Level::Purge,
        reasons,
        blocker,
        fallbacks,
    }
}

/// Check an explicitly requested method (`--method`) against the capabilities.
/// Returns the choice with its category, or why it cannot be used.
pub fn check_method(c: &Capabilities, level: Level, m: Method) -> Result<MethodChoice, String> {
    if m == Method::Overwrite {
        let mut ch = select_method(c, Level::Clear);
        if level == Level::Purge {
            return Err("overwrite achieves Clear, not Purge".into());
        }
        ch.reasons
            .push("method overwrite requested explicitly".into());
        return Ok(ch);
    }
    let mut reasons = vec![format!("method {m:?} requested explicitly")];
    let cands = purge_candidates(c, &mut reasons);
    let Some((_, why)) = cands.iter().find(|(x, _)| *x == m) else {
        return Err(format!(
            "{m:?} is not supported by this drive: {}",
            reasons.join("; ")
        ));
    };
    reasons.push(why.clone());
    let blocker = blocker_for(m, c);
    Ok(MethodChoice {
        method: m,
        category: Level::Purge,
        reasons,
        blocker,
        fallbacks: vec![],
    })
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
