//! A medium error during the wipe fails the job: a failure report lists the
//! range, and no pass certificate exists anywhere in the store.

mod common;

use common::*;
use lethe_cert::ApplianceKey;
use lethe_cli::identity::DeviceIdentity;
use lethe_cli::job::{self, JobContext, JobParties, WipeSpec};
use lethe_cli::state::StateDir;
use lethe_core::device::BlockDevice;
use lethe_core::pattern::Pattern;
use lethe_core::plan::{VerifyMode, WipePlan};
use lethe_core::ranges::RangeSet;
use lethe_hw_tests::{loop_tier_unavailable, skip, LoopDevice};
use lethe_linux::blockdev::DirectDevice;
use lethe_wipe::testdev::{FaultPlan, FaultyDevice};
use lethe_wipe::Verdict;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const MIB: u64 = 1 << 20;

fn spec(dev: &dyn BlockDevice, path: &str) -> WipeSpec {
    let g = dev.geometry();
    WipeSpec {
        device: DeviceIdentity {
            path: path.into(),
            stable_id: None,
            transport: "loop".into(),
            manufacturer: None,
            model: None,
            serial: None,
            wwn: None,
            firmware: None,
            size_bytes: g.size_bytes,
            logical_sector: g.logical_sector,
            physical_sector: g.physical_sector,
            rotational: Some(false),
            removable: Some(false),
            media_type: "unknown".into(),
        },
        plan: WipePlan::new(Pattern::Random, 1, false, VerifyMode::Full).unwrap(),
        sample_seed: 1,
        chunk_size: MIB as usize,
        depth: 2,
        parties: JobParties {
            operator_id: "tester".into(),
            ..Default::default()
        },
        tool_version: "test".into(),
        purge: None,
    }
}

/// Run a wipe job on a fresh 16 MiB loop device wrapped in `faults`; returns
/// the report and the state directory (kept alive by the returned guard).
fn job_with_faults(faults: FaultPlan) -> (lethe_cli::job::JobReport, tempfile::TempDir) {
    let lo = LoopDevice::new(16 * MIB, 512, 0x99).unwrap();
    let direct = DirectDevice::open(lo.path()).unwrap();
    let dev = FaultyDevice::new(direct, faults);
    let state_tmp = state_dir();
    let state = StateDir::new(state_tmp.path());
    let key = ApplianceKey::load_or_create(&state.keys()).unwrap();
    let stop = AtomicBool::new(false);
    let ctx = JobContext {
        state: &state,
        key: &key,
        stop: &stop,
        sink: &(),
        checkpoint_interval: Duration::from_secs(1),
    };
    let report = job::start(&ctx, &dev, spec(&dev, &lo.path().display().to_string())).unwrap();
    (report, state_tmp)
}

#[test]
fn medium_error_on_a_real_loop_device_fails_the_job_with_the_range() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let mut bad = RangeSet::new();
    bad.insert(5 * MIB + 3 * 512, 2 * 512);
    let (report, state_tmp) = job_with_faults(FaultPlan {
        bad_writes: bad.clone(),
        ..Default::default()
    });
    let state = StateDir::new(state_tmp.path());

    assert_eq!(report.result, Verdict::Fail);
    assert_eq!(report.failed_ranges, bad);
    let body = cert_body(report.certificate.as_deref().unwrap());
    assert_eq!(body["result"]["status"], "fail");
    let ranges = body["result"]["failed_ranges"].as_array().unwrap();
    assert_eq!(ranges.len(), 1);
    assert_eq!(ranges[0]["offset"], 5 * MIB + 3 * 512);
    assert_eq!(ranges[0]["length"], 1024);

    // Nothing in the certificate store claims a pass.
    for entry in std::fs::read_dir(state.certificates()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            assert_ne!(cert_body(p.to_str().unwrap())["result"]["status"], "pass");
        }
    }
    // The job store agrees.
    let store = lethe_store::JobStore::open(state.root()).unwrap();
    assert_eq!(
        store.get(&report.job).unwrap().status,
        lethe_store::JobStatus::Fail
    );
}

#[test]
fn a_drive_that_vanishes_mid_wipe_gets_a_failure_report() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let (report, _state) = job_with_faults(FaultPlan {
        gone_after_writes: Some(4),
        ..Default::default()
    });
    assert_eq!(report.result, Verdict::Fail);
    assert!(
        report.problems.iter().any(|p| p.contains("vanished")),
        "{:?}",
        report.problems
    );
    let body = cert_body(report.certificate.as_deref().unwrap());
    assert_eq!(body["result"]["status"], "fail");
    assert_eq!(body["verification"]["result"], "not_performed");
}
