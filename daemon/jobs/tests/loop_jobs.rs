//! The job library on real loop devices and real filesystems (root only;
//! skipped loudly otherwise): a device swapped between the confirmation and
//! the open, and a state directory that is full or read-only, are all
//! refused before a single byte reaches any device.

use lethe_hw_tests::{fill_file, loop_tier_unavailable, sha256_file, skip, LoopDevice};
use lethe_jobs::{
    Confirmation, Hooks, JobRequest, Jobs, JobsConfig, Outcome, Parties, Refusal, Report, StateDir,
    WipeRequest,
};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

const MIB: u64 = 1 << 20;

fn clear(dev: &Path, confirmation: Confirmation) -> JobRequest {
    let mut r = WipeRequest::clear(
        dev,
        confirmation,
        Parties {
            operator_id: "t".into(),
            ..Default::default()
        },
    );
    r.overwrite.pattern = lethe_core::pattern::Pattern::ZERO;
    JobRequest::Wipe(r)
}

fn refusal(r: &Report) -> &Refusal {
    match &r.outcome {
        Outcome::Refused(why) => why,
        other => panic!("expected a refusal, got {other:?} ({:?})", r.problems),
    }
}

/// A tmpfs of `size` mounted for a test, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn new(size: &str) -> Self {
        let d = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(d.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        Tmpfs(d)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn remount_ro(&self) {
        let st = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(st.success(), "remount ro");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// safeguard: rule:checked-device
#[test]
fn a_loop_device_rebound_to_another_file_between_confirmation_and_open_is_refused() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let lo = Arc::new(Mutex::new(LoopDevice::new(8 * MIB, 512, 0x11).unwrap()));
    let (node, first) = {
        let l = lo.lock().unwrap();
        (l.path().to_path_buf(), l.backing().to_path_buf())
    };
    let other_dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let second = other_dir.path().join("other.img");
    fill_file(&second, 8 * MIB, 0x22).unwrap();
    let (h1, h2) = (sha256_file(&first), sha256_file(&second));

    let state = tempfile::tempdir().unwrap();
    let mut cfg = JobsConfig::new(StateDir::new(state.path()));
    let (lo2, second2) = (Arc::clone(&lo), second.clone());
    cfg.hooks = Hooks {
        // The operator confirmed; now, before the open, the drive in the
        // "bay" is replaced: same node, same size, another medium.
        before_open: Some(Arc::new(move |_| {
            lo2.lock()
                .unwrap()
                .rebind(&second2)
                .expect("rebind the loop node")
        })),
        ..Default::default()
    };
    let jobs = Jobs::open(cfg).unwrap();
    let shown = jobs.inspect(&node).expect("a free loop device");
    assert!(
        shown.backing.is_some(),
        "a loop device is identified by its backing file"
    );
    let typed = Confirmation::typed(shown.clone(), shown.size_bytes.to_string());
    let r = jobs.submit(clear(&node, typed)).wait();
    assert!(
        matches!(refusal(&r), Refusal::Changed { .. }),
        "{:?}",
        r.outcome
    );
    let why = refusal(&r).to_string();
    assert!(
        why.contains("changed between the check and the open"),
        "{why}"
    );
    assert!(
        why.contains("backing file") && why.contains("nothing was written"),
        "{why}"
    );
    assert!(r.job.is_none());
    assert_eq!(
        sha256_file(&first),
        h1,
        "the confirmed medium was not written"
    );
    assert_eq!(
        sha256_file(&second),
        h2,
        "the swapped-in medium was not written"
    );
}

/// safeguard: rule:record-before-write
#[test]
fn a_full_or_read_only_state_directory_is_refused_before_the_device_is_written() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let lo = LoopDevice::new(8 * MIB, 512, 0x33).unwrap();
    let before = lo.backing_sha256();

    // Nearly full: the job's record and documents would not fit.
    let fs = Tmpfs::new("16m");
    let state = fs.path().join("state");
    let jobs = Jobs::open(JobsConfig::new(StateDir::new(&state))).unwrap();
    let free = lethe_linux::fsinfo::space(fs.path()).unwrap().available;
    fill_file(&fs.path().join("ballast"), free - 512 * 1024, 0).unwrap();
    let r = jobs
        .submit(clear(lo.path(), Confirmation::Waived { by: "t".into() }))
        .wait();
    let why = refusal(&r);
    assert!(matches!(why, Refusal::StateDir { .. }), "{why}");
    assert!(why.to_string().contains("reserve"), "{why}");
    assert_eq!(lo.backing_sha256(), before);
    assert!(
        !std::fs::read_dir(&state)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".reserve")),
        "the failed reservation was removed"
    );

    // Read-only.
    std::fs::remove_file(fs.path().join("ballast")).unwrap();
    fs.remount_ro();
    let r = jobs
        .submit(clear(lo.path(), Confirmation::Waived { by: "t".into() }))
        .wait();
    let why = refusal(&r).to_string();
    assert!(why.contains("read-only"), "{why}");
    assert_eq!(lo.backing_sha256(), before);
    drop(jobs);
}

/// A real loop device, opened `O_EXCL|O_DIRECT` by the Linux layer, behind
/// a fault-injecting wrapper served by the fake host: the engine's real I/O
/// path with a medium error or a vanishing drive.
fn faulty_loop_job(
    plan: lethe_wipe::testdev::FaultPlan,
) -> (Report, tempfile::TempDir, LoopDevice) {
    use lethe_jobs::fake::{FakeDisk, FakeHost};
    let lo = LoopDevice::new(16 * MIB, 512, 0x99).unwrap();
    let direct = lethe_linux::blockdev::DirectDevice::open(lo.path()).unwrap();
    let dev: Arc<dyn lethe_core::device::BlockDevice> =
        Arc::new(lethe_wipe::testdev::FaultyDevice::new(direct, plan));
    let host = FakeHost::new();
    let mut id = lethe_jobs::DeviceIdentity {
        path: lo.path().display().to_string(),
        stable_id: None,
        transport: "loop".into(),
        manufacturer: None,
        model: None,
        serial: None,
        wwn: None,
        firmware: None,
        size_bytes: 16 * MIB,
        logical_sector: 512,
        physical_sector: 512,
        rotational: Some(false),
        removable: Some(false),
        media_type: "unknown".into(),
        backing: None,
    };
    id.stable_id = Some(format!("loop-backing:{}", lo.backing().display()));
    host.add(lo.path(), FakeDisk::block(id, dev));
    let state = tempfile::tempdir().unwrap();
    let mut cfg = JobsConfig::new(StateDir::new(state.path()));
    cfg.host = Arc::new(host);
    let jobs = Jobs::open(cfg).unwrap();
    let mut req = WipeRequest::clear(
        lo.path(),
        Confirmation::Waived { by: "t".into() },
        Parties {
            operator_id: "t".into(),
            ..Default::default()
        },
    );
    req.overwrite.depth = 2;
    let r = jobs.submit(JobRequest::Wipe(req)).wait();
    (r, state, lo)
}

fn cert_status(path: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["certificate"].clone()
}

/// safeguard: rule:never-certify-unverified
#[test]
fn a_medium_error_on_a_real_loop_device_fails_the_job_with_the_range() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let mut bad = lethe_core::ranges::RangeSet::new();
    bad.insert(5 * MIB + 3 * 512, 2 * 512);
    let (r, state, _lo) = faulty_loop_job(lethe_wipe::testdev::FaultPlan {
        bad_writes: bad.clone(),
        ..Default::default()
    });
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.failed_ranges, bad);
    let b = cert_status(&r.document.unwrap().json);
    assert_eq!(b["result"]["status"], "fail");
    assert_eq!(b["result"]["failed_ranges"][0]["length"], 1024);
    // Nothing in the certificate store claims a pass.
    for e in std::fs::read_dir(state.path().join("certificates")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            assert_ne!(cert_status(p.to_str().unwrap())["result"]["status"], "pass");
        }
    }
}

/// safeguard: rule:never-certify-unverified
#[test]
fn a_drive_that_vanishes_mid_wipe_gets_a_failure_report() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let (r, _state, _lo) = faulty_loop_job(lethe_wipe::testdev::FaultPlan {
        gone_after_writes: Some(4),
        ..Default::default()
    });
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(
        r.problems.iter().any(|p| p.contains("vanished")),
        "{:?}",
        r.problems
    );
    let b = cert_status(&r.document.unwrap().json);
    assert_eq!(b["verification"]["result"], "not_performed");
}
