//! Policy tests: one per rule of issue 5, plus properties over any capability set.

use super::*;
use crate::ata::EraseTime;
use proptest::prelude::*;

fn sec(supported: bool, enhanced: bool, frozen: bool) -> SecurityStatus {
    SecurityStatus {
        supported,
        enabled: false,
        locked: false,
        frozen,
        count_expired: false,
        enhanced_erase_supported: enhanced,
        level_max: false,
        erase_time: EraseTime::Minutes(2),
        enhanced_erase_time: EraseTime::Minutes(2),
        master_password_revision: 0xFFFE,
    }
}

fn sata(rot: bool, san: SanitizeSupport, s: SecurityStatus) -> Capabilities {
    Capabilities {
        transport: Transport::Sata,
        rotational: Some(rot),
        removable_flash: false,
        ata: Some(AtaCaps {
            security: s,
            sanitize: san,
            sanitize_frozen: false,
        }),
        nvme: None,
        scsi: None,
    }
}

fn nvme(sanicap: u32, format: bool, fcrypto: bool) -> Capabilities {
    Capabilities {
        transport: Transport::Nvme,
        rotational: Some(false),
        removable_flash: false,
        ata: None,
        nvme: Some(NvmeCaps {
            sanicap: SaniCap::from_raw(sanicap),
            format_supported: format,
            format_crypto: fcrypto,
            format_all_namespaces: false,
            secure_erase_all_namespaces: false,
        }),
        scsi: None,
    }
}

const ALL_SANITIZE: SanitizeSupport = SanitizeSupport {
    supported: true,
    crypto_scramble: true,
    overwrite: true,
    block_erase: true,
    antifreeze_lock: false,
};

#[test]
fn nvme_purge_order() {
    assert_eq!(
        select_method(&nvme(0b111, true, true), Level::Purge).method,
        Method::NvmeSanitize(SanitizeAction::CryptoErase)
    );
    assert_eq!(
        select_method(&nvme(0b010, true, true), Level::Purge).method,
        Method::NvmeSanitize(SanitizeAction::BlockErase)
    );
    assert_eq!(
        select_method(&nvme(0, true, true), Level::Purge).method,
        Method::NvmeFormat(Ses::Crypto)
    );
    // QEMU accepts SES=2 without FNA bit 2: the policy must not use it.
    let q = select_method(&nvme(0, true, false), Level::Purge);
    assert_eq!(q.method, Method::NvmeFormat(Ses::UserData));
    assert_eq!(q.category, Level::Purge);
    assert_eq!(q.fallbacks, vec![(Method::Overwrite, Level::Clear)]);
    let none = select_method(&nvme(0, false, false), Level::Purge);
    assert_eq!(none.method, Method::Destroy);
}

#[test]
fn sata_purge_order() {
    let ssd = select_method(
        &sata(false, ALL_SANITIZE, sec(true, true, false)),
        Level::Purge,
    );
    assert_eq!(
        ssd.method,
        Method::AtaSanitize(AtaSanitizeKind::CryptoScramble)
    );
    let hdd = select_method(
        &sata(true, ALL_SANITIZE, sec(true, true, false)),
        Level::Purge,
    );
    assert_eq!(hdd.method, Method::AtaSanitize(AtaSanitizeKind::Overwrite));
    let none = SanitizeSupport::default();
    let enh = select_method(&sata(false, none, sec(true, true, false)), Level::Purge);
    assert_eq!(enh.method, Method::AtaSecurityErase { enhanced: true });
    assert_eq!(
        enh.fallbacks[0],
        (Method::AtaSecurityErase { enhanced: false }, Level::Purge)
    );
    assert_eq!(
        enh.fallbacks.last(),
        Some(&(Method::Overwrite, Level::Clear))
    );
    let normal = select_method(&sata(true, none, sec(true, false, false)), Level::Purge);
    assert_eq!(normal.method, Method::AtaSecurityErase { enhanced: false });
}

#[test]
fn frozen_drive_needs_unfreeze() {
    let c = sata(false, SanitizeSupport::default(), sec(true, true, true));
    let ch = select_method(&c, Level::Purge);
    assert_eq!(ch.method, Method::AtaSecurityErase { enhanced: true });
    assert_eq!(ch.blocker, Some(Blocker::SecurityFrozen));
    assert!(ch
        .reasons
        .iter()
        .any(|r| r.contains("suspend") && r.contains("hot-replug")));
    // Sanitize is not blocked by the security freeze lock: it wins without a blocker.
    let c2 = sata(false, ALL_SANITIZE, sec(true, true, true));
    assert_eq!(select_method(&c2, Level::Purge).blocker, None);
}

#[test]
fn usb_flash_purge_is_destroy() {
    let c = Capabilities {
        transport: Transport::Usb,
        rotational: Some(false),
        removable_flash: true,
        ata: None,
        nvme: None,
        scsi: None,
    };
    let ch = select_method(&c, Level::Purge);
    assert_eq!((ch.method, ch.category), (Method::Destroy, Level::Destroy));
    assert!(ch.reasons.iter().any(|r| r.contains("only be cleared")));
    assert_eq!(select_method(&c, Level::Clear).method, Method::Overwrite);
}

#[test]
fn sas_prefers_scsi_sanitize() {
    let c = Capabilities {
        transport: Transport::Sas,
        rotational: Some(true),
        removable_flash: false,
        ata: None,
        nvme: None,
        scsi: Some(ScsiCaps {
            overwrite: true,
            block_erase: false,
            crypto_erase: true,
        }),
    };
    assert_eq!(
        select_method(&c, Level::Purge).method,
        Method::ScsiSanitize(ScsiSanitizeKind::Overwrite)
    );
}

#[test]
fn explicit_methods_are_checked() {
    let c = nvme(0, true, false);
    assert!(check_method(&c, Level::Purge, Method::NvmeFormat(Ses::Crypto)).is_err());
    assert!(check_method(&c, Level::Purge, Method::NvmeFormat(Ses::UserData)).is_ok());
    assert!(check_method(&c, Level::Purge, Method::Overwrite).is_err());
    assert!(check_method(&c, Level::Clear, Method::Overwrite).is_ok());
}

fn arb_caps() -> impl Strategy<Value = Capabilities> {
    (
        0usize..5,
        proptest::option::of(any::<bool>()),
        any::<bool>(),
        proptest::option::of((any::<u16>(), any::<u16>(), any::<u16>(), any::<bool>())),
        proptest::option::of((any::<u32>(), any::<bool>(), any::<bool>())),
        proptest::option::of((any::<bool>(), any::<bool>(), any::<bool>())),
    )
        .prop_map(
            |(t, rotational, removable_flash, ata, nv, sc)| Capabilities {
                transport: [
                    Transport::Sata,
                    Transport::Sas,
                    Transport::Nvme,
                    Transport::Usb,
                    Transport::Other,
                ][t],
                rotational,
                removable_flash,
                ata: ata.map(|(w59, w82, w128, sf)| {
                    let mut b = vec![0u8; 512];
                    b[118..120].copy_from_slice(&w59.to_le_bytes());
                    b[164..166].copy_from_slice(&w82.to_le_bytes());
                    b[256..258].copy_from_slice(&w128.to_le_bytes());
                    let id =
                        crate::ata::IdentifyDevice::decode(&b).unwrap_or_else(|e| panic!("{e}"));
                    AtaCaps {
                        security: id.security,
                        sanitize: id.sanitize,
                        sanitize_frozen: sf,
                    }
                }),
                nvme: nv.map(|(s, f, fc)| NvmeCaps {
                    sanicap: SaniCap::from_raw(s),
                    format_supported: f,
                    format_crypto: fc,
                    format_all_namespaces: false,
                    secure_erase_all_namespaces: false,
                }),
                scsi: sc.map(|(o, b, c)| ScsiCaps {
                    overwrite: o,
                    block_erase: b,
                    crypto_erase: c,
                }),
            },
        )
}

proptest! {
    #[test]
    fn purge_is_never_claimed_by_overwrite_or_unsupported_commands(c in arb_caps()) {
        let ch = select_method(&c, Level::Purge);
        prop_assert!(!ch.reasons.is_empty());
        match ch.method {
            Method::Overwrite => prop_assert!(false, "overwrite chosen for purge"),
            Method::Destroy => prop_assert_eq!(ch.category, Level::Destroy),
            Method::NvmeFormat(Ses::None) | Method::NvmeSanitize(SanitizeAction::ExitFailureMode) => prop_assert!(false),
            Method::NvmeFormat(Ses::Crypto) => prop_assert!(c.nvme.is_some_and(|n| n.format_crypto && n.format_supported)),
            Method::NvmeSanitize(a) => {
                let s = c.nvme.map(|n| n.sanicap).unwrap_or_default();
                let supported = match a { SanitizeAction::CryptoErase => s.crypto_erase, SanitizeAction::BlockErase => s.block_erase, _ => s.overwrite };
                prop_assert!(supported);
            }
            Method::AtaSanitize(_) => prop_assert!(c.ata.is_some_and(|a| a.sanitize.supported)),
            Method::AtaSecurityErase { enhanced } => prop_assert!(c.ata.is_some_and(|a| a.security.supported && (!enhanced || a.security.enhanced_erase_supported))),
            _ => prop_assert_eq!(ch.category, Level::Purge),
        }
        for (m, cat) in &ch.fallbacks {
            prop_assert!(*m != Method::Overwrite || *cat == Level::Clear);
        }
        if c.removable_flash {
            prop_assert_eq!(ch.method, Method::Destroy);
        }
    }
}

#[test]
fn nvme_reach_follows_sanitize_and_fna() {
    let mut n = NvmeCaps {
        sanicap: SaniCap::from_raw(0b111),
        format_supported: true,
        format_crypto: true,
        format_all_namespaces: false,
        secure_erase_all_namespaces: false,
    };
    let ns = Some(NvmeReach::Namespace);
    let sanitize = Method::NvmeSanitize(SanitizeAction::CryptoErase);
    assert!(matches!(
        nvme_reach(sanitize, &n),
        Some(NvmeReach::Subsystem(_))
    ));
    assert_eq!(nvme_reach(Method::NvmeFormat(Ses::UserData), &n), ns);
    n.secure_erase_all_namespaces = true;
    assert!(matches!(
        nvme_reach(Method::NvmeFormat(Ses::Crypto), &n),
        Some(NvmeReach::Subsystem(_))
    ));
    assert_eq!(nvme_reach(Method::NvmeFormat(Ses::None), &n), ns);
    n.secure_erase_all_namespaces = false;
    n.format_all_namespaces = true;
    assert!(matches!(
        nvme_reach(Method::NvmeFormat(Ses::None), &n),
        Some(NvmeReach::Subsystem(_))
    ));
    assert_eq!(nvme_reach(Method::Overwrite, &n), None);
    assert_eq!(
        nvme_reach(Method::AtaSecurityErase { enhanced: true }, &n),
        None
    );
}
