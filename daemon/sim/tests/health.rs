//! Health read over `DriveIo` from the software drive model, for each
//! transport: the same `read_health` the job library and `lethe drives` use.

use lethe_cmds::smart::{
    protocol_for_transport, read_health, Assessment, HealthError, HealthSource, Protocol,
};
use lethe_sim::{SimClock, SimConfig, SimDrive, SimHealth};

fn drive(cfg: SimConfig) -> SimDrive {
    SimDrive::new(cfg, SimClock::new())
}

#[test]
fn sata_ssd_reports_smart_attributes_and_wear() {
    let d = drive(SimConfig::sata_ssd(1 << 20));
    let h = read_health(&d, Protocol::Ata, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.source, HealthSource::AtaSmart);
    assert_eq!(h.assessment, Assessment::Passed, "{:?}", h.notes);
    assert_eq!(h.power_on_hours, Some(1234));
    assert_eq!(h.power_cycles, Some(56));
    assert_eq!(
        (
            h.reallocated_sectors,
            h.pending_sectors,
            h.uncorrectable_errors
        ),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(h.percentage_used, Some(3));
    assert_eq!(h.temperature_celsius, Some(35));
}

#[test]
fn sata_with_pending_sectors_warns_and_a_failing_drive_says_so() {
    let d = drive(SimConfig::sata_ssd(1 << 20));
    d.set_health(SimHealth {
        pending: 8,
        reallocated: 2,
        ..SimHealth::default()
    });
    let h = read_health(&d, Protocol::Ata, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.assessment, Assessment::Warning);
    assert!(
        h.notes.iter().any(|n| n == "8 pending sectors"),
        "{:?}",
        h.notes
    );
    d.set_health(SimHealth {
        failing: true,
        ..SimHealth::default()
    });
    let h = read_health(&d, Protocol::Ata, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.assessment, Assessment::Failing);
    assert!(
        h.notes.iter().any(|n| n.contains("threshold exceeded")),
        "{:?}",
        h.notes
    );
}

#[test]
fn sata_with_smart_disabled_is_refused_not_guessed() {
    let d = drive(SimConfig::sata_ssd(1 << 20));
    d.set_health(SimHealth {
        smart_enabled: false,
        ..SimHealth::default()
    });
    assert!(matches!(
        read_health(&d, Protocol::Ata, false),
        Err(HealthError::Refused(_))
    ));
}

#[test]
fn nvme_reports_the_health_log() {
    let d = drive(SimConfig::nvme(1 << 20));
    d.set_health(SimHealth {
        percentage_used: 104,
        power_on_hours: 9000,
        ..SimHealth::default()
    });
    let h = read_health(&d, Protocol::Nvme, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.source, HealthSource::NvmeSmartLog);
    assert_eq!(
        (h.power_on_hours, h.percentage_used),
        (Some(9000), Some(104))
    );
    assert_eq!(h.available_spare_percent, Some(100));
    assert_eq!(h.assessment, Assessment::Warning, "{:?}", h.notes);
    d.set_health(SimHealth {
        failing: true,
        ..SimHealth::default()
    });
    let h = read_health(&d, Protocol::Nvme, false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.assessment, Assessment::Failing);
}

#[test]
fn sas_reports_log_pages_and_grown_defects() {
    let d = drive(SimConfig::sas_hdd(1 << 20));
    d.set_health(SimHealth {
        reallocated: 7,
        uncorrectable: 1,
        ..SimHealth::default()
    });
    let h = read_health(&d, Protocol::Scsi, true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.source, HealthSource::ScsiLogPages);
    assert_eq!(h.power_on_hours, Some(1234));
    assert_eq!(h.power_cycles, Some(56));
    assert_eq!(h.reallocated_sectors, Some(7));
    assert_eq!(h.uncorrectable_errors, Some(1));
    assert_eq!(h.temperature_celsius, Some(35));
    assert_eq!(
        h.percentage_used, None,
        "a disk has no solid state media page"
    );
    assert_eq!(h.assessment, Assessment::Warning, "{:?}", h.notes);
    d.set_health(SimHealth {
        failing: true,
        ..SimHealth::default()
    });
    assert_eq!(
        read_health(&d, Protocol::Scsi, true).map(|h| h.assessment),
        Ok(Assessment::Failing)
    );
}

#[test]
fn transports_map_to_protocols() {
    assert_eq!(protocol_for_transport("nvme"), Some(Protocol::Nvme));
    assert_eq!(protocol_for_transport("sata"), Some(Protocol::Ata));
    assert_eq!(protocol_for_transport("sas"), Some(Protocol::Scsi));
    assert_eq!(protocol_for_transport("loop"), None);
    assert_eq!(protocol_for_transport("virtio"), None);
}
