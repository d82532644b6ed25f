//! A drive-native purge job end to end against the software drive model: job
//! row, runner, signed certificate (or failure report), and the overwrite
//! fallback under the same job id. The certificate of a native purge names the
//! command, the drive's completion status and the read-back verification.

mod common;

use lethe_cert::ApplianceKey;
use lethe_cli::identity::DeviceIdentity;
use lethe_cli::job::{JobContext, JobParties, JobReport, WipeSpec};
use lethe_cli::purge_job::{self, PurgeSetup};
use lethe_cli::state::StateDir;
use lethe_cmds::ata::Password;
use lethe_cmds::policy::{Level, Transport};
use lethe_core::device::BlockDevice;
use lethe_core::pattern::Pattern;
use lethe_core::plan::{VerifyMode, WipePlan};
use lethe_purge::{probe, Clock, CommandPath, Hints, PurgeRequest};
use lethe_sim::{Fault, SimClock, SimConfig, SimDrive, SimKind};
use lethe_store::{JobStatus, JobStore};
use lethe_wipe::Verdict;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

struct Sleepless<'a>(&'a SimClock);

impl Clock for Sleepless<'_> {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
    fn sleep_ms(&self, ms: u64) {
        self.0.advance_ms(ms);
    }
}

fn identity(d: &SimDrive) -> DeviceIdentity {
    let g = d.geometry();
    DeviceIdentity {
        path: "/dev/sim0".into(),
        stable_id: None,
        transport: match d.config().kind {
            SimKind::Sata => "sata",
            SimKind::Sas => "sas",
            SimKind::Nvme => "nvme",
        }
        .into(),
        manufacturer: None,
        model: Some(d.config().model.clone()),
        serial: Some(d.config().serial.clone()),
        wwn: None,
        firmware: None,
        size_bytes: g.size_bytes,
        logical_sector: g.logical_sector,
        physical_sector: g.physical_sector,
        rotational: Some(d.config().rotational),
        removable: Some(false),
        media_type: "flash".into(),
    }
}

fn run(d: &SimDrive, state: &StateDir) -> JobReport {
    let key = ApplianceKey::load_or_create(&state.keys()).unwrap();
    let stop = AtomicBool::new(false);
    let ctx = JobContext {
        state,
        key: &key,
        stop: &stop,
        sink: &(),
        checkpoint_interval: Duration::from_secs(1),
    };
    let (path, transport) = match d.config().kind {
        SimKind::Sata => (CommandPath::Ata, Transport::Sata),
        SimKind::Sas => (CommandPath::Scsi, Transport::Sas),
        SimKind::Nvme => (CommandPath::Nvme { nsid: 1 }, Transport::Nvme),
    };
    let hints = Hints {
        transport,
        rotational: Some(d.config().rotational),
        removable_flash: false,
    };
    let profile = probe(d, path, hints).unwrap();
    let spec = WipeSpec {
        device: identity(d),
        plan: WipePlan::new(Pattern::ZERO, 1, false, VerifyMode::Full).unwrap(),
        sample_seed: 3,
        chunk_size: 64 << 10,
        depth: 1,
        parties: JobParties {
            operator_id: "op-1".into(),
            operator_name: "Test Operator".into(),
            ..Default::default()
        },
        tool_version: "test".into(),
        purge: None,
    };
    let clock = Sleepless(d.clock());
    let setup = PurgeSetup {
        io: d,
        clock: &clock,
        hints,
        profile,
        request: PurgeRequest {
            level: Level::Purge,
            method: None,
            remove_hpa: false,
            allow_fallback: true,
            unfreeze_wait_ms: 0,
            poll_ms: 1000,
            samples: 32,
            seed: 42,
            password: Password::new(b"cli-test").unwrap(),
            nvme_namespaces: (d.config().kind == SimKind::Nvme).then(|| {
                vec![lethe_purge::NamespaceInfo {
                    name: "nvme0n1".into(),
                    nsid: 1,
                    protected: None,
                }]
            }),
        },
    };
    purge_job::run(&ctx, d, setup, spec, &|_| {}).unwrap()
}

fn verified_body(path: &str, state: &StateDir) -> serde_json::Value {
    let key = ApplianceKey::load_or_create(&state.keys()).unwrap();
    let bytes = std::fs::read(path).unwrap();
    lethe_cert::verify(&bytes, Some(&key.verifying_key()))
        .unwrap_or_else(|e| panic!("certificate does not verify: {e}"));
    common::cert_body(path)
}

#[test]
fn nvme_purge_certificate_names_command_status_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let state = StateDir::new(tmp.path());
    let d = SimDrive::new(SimConfig::nvme(8192), SimClock::new());
    let r = run(&d, &state);
    assert_eq!(r.result, Verdict::Pass);
    assert_eq!(r.method, "nvme_sanitize_crypto_erase");
    assert_eq!(r.category, "purge");
    assert!(r.requested.is_none());
    let b = verified_body(r.certificate.as_deref().unwrap(), &state);
    assert_eq!(b["method"]["category"], "purge");
    assert_eq!(b["method"]["technique"], "nvme_sanitize_crypto_erase");
    assert_eq!(b["method"]["requested_level"], "purge");
    let status = b["method"]["drive_command"]["completion_status"]
        .as_str()
        .unwrap();
    assert!(
        status.contains("SSTAT") && status.contains("SCDW10"),
        "{status}"
    );
    assert!(b["method"]["drive_command"]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c.as_str().unwrap().contains("NVMe Sanitize CryptoErase")));
    // Sanitize erases the whole subsystem: the certificate names what it erased.
    assert_eq!(
        b["method"]["drive_command"]["erased_namespaces"],
        serde_json::json!(["nvme0n1 (NSID 1)"])
    );
    assert_eq!(b["verification"]["method"], "sample");
    assert_eq!(b["verification"]["result"], "pass");
    assert_eq!(b["verification"]["sample_seed"], format!("{:016x}", 42));
    assert!(b["verification"]["detail"]
        .as_str()
        .unwrap()
        .contains("canaries"));
    assert_eq!(b["result"]["status"], "pass");
    let store = JobStore::open(tmp.path()).unwrap();
    assert_eq!(store.get(&r.job).unwrap().status, JobStatus::Pass);
}

#[test]
fn a_drive_that_lies_gets_a_failure_report_not_a_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let state = StateDir::new(tmp.path());
    let d = SimDrive::new(SimConfig::sata_ssd(8192), SimClock::new());
    d.inject(Fault::LieAboutErase);
    let r = run(&d, &state);
    assert_eq!(r.result, Verdict::Fail);
    let b = verified_body(r.certificate.as_deref().unwrap(), &state);
    assert_eq!(b["result"]["status"], "fail");
    assert_eq!(b["verification"]["result"], "fail");
    // The drive's own "success" is on the report, next to the read-back that refutes it.
    assert!(!b["method"]["drive_command"]["completion_status"]
        .as_str()
        .unwrap()
        .is_empty());
    let store = JobStore::open(tmp.path()).unwrap();
    assert_eq!(store.get(&r.job).unwrap().status, JobStatus::Fail);
}

#[test]
fn frozen_security_only_drive_falls_back_to_a_clear_overwrite_under_the_same_job() {
    let tmp = tempfile::tempdir().unwrap();
    let state = StateDir::new(tmp.path());
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.ata_sanitize = (false, false, false);
    let d = SimDrive::new(cfg, SimClock::new());
    d.bios_freeze();
    let r = run(&d, &state);
    assert_eq!(r.result, Verdict::Pass);
    assert_eq!(
        (r.method.as_str(), r.category.as_str()),
        ("overwrite", "clear")
    );
    assert_eq!(r.requested.as_deref(), Some("purge"));
    let b = verified_body(r.certificate.as_deref().unwrap(), &state);
    assert_eq!(b["method"]["category"], "clear");
    assert_eq!(b["method"]["requested_level"], "purge");
    let reason = b["method"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("SecurityFrozen") && reason.contains("Clear only"),
        "{reason}"
    );
    let events: Vec<String> = b["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(events.contains(&"fallback".to_string()), "{events:?}");
    // One job row for the whole operator action.
    let store = JobStore::open(tmp.path()).unwrap();
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn an_hpa_the_fallback_overwrite_cannot_reach_is_on_the_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let state = StateDir::new(tmp.path());
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.ata_sanitize = (false, false, false);
    let d = SimDrive::new(cfg, SimClock::new());
    d.set_hpa(6000);
    d.bios_freeze();
    let r = run(&d, &state);
    // Not a plain pass: Clear where Purge was asked for (exit 4), and the
    // certificate says the hidden sectors were not overwritten.
    assert_eq!(r.result, Verdict::Pass);
    assert_eq!(r.category, "clear");
    assert_eq!(r.requested.as_deref(), Some("purge"));
    let b = verified_body(r.certificate.as_deref().unwrap(), &state);
    let hidden = b["device"]["hidden_areas"].as_str().unwrap();
    assert!(
        hidden.contains("2192 hidden sectors are NOT overwritten"),
        "{hidden}"
    );
    assert!(b["result"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m.as_str().unwrap().contains("NOT overwritten")));
}
