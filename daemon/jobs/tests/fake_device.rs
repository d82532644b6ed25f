//! The job library against fake devices, one per edge case: each test drives
//! the library through its public requests exactly as an edge does, and
//! checks the outcome, the job record, the document, and (for refusals)
//! that the device received no write at all.

use lethe_cert::ApplianceKey;
use lethe_core::device::BlockDevice;
use lethe_core::pattern::Pattern;
use lethe_core::ranges::RangeSet;
use lethe_jobs::fake::{FakeDisk, FakeHost};
use lethe_jobs::restore::ImageSource;
use lethe_jobs::{
    Confirmation, DegaussRequest, DeviceIdentity, Event, Hooks, JobRequest, Jobs, JobsConfig,
    Level, Medium, Outcome, Parties, Refusal, Report, RestoreImageRequest, ResumeRequest, StateDir,
    WipeLevel, WipeRequest,
};
use lethe_sim::{Fault, SimClock, SimConfig, SimDrive};
use lethe_store::{JobStatus, JobStore};
use lethe_wipe::testdev::{FaultPlan, FaultyDevice, MemDevice};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const SIZE: u64 = 1 << 20;

fn identity(path: &str, serial: Option<&str>, size: u64) -> DeviceIdentity {
    DeviceIdentity {
        path: path.into(),
        stable_id: serial.map(|s| format!("ata-T_{s}")),
        transport: "sata".into(),
        manufacturer: None,
        model: Some("T".into()),
        serial: serial.map(Into::into),
        wwn: None,
        firmware: None,
        size_bytes: size,
        logical_sector: 512,
        physical_sector: 4096,
        rotational: Some(true),
        removable: Some(false),
        media_type: "magnetic".into(),
        backing: None,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    state: PathBuf,
    host: FakeHost,
    jobs: Jobs,
}

fn fixture_with(hooks: Hooks) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let host = FakeHost::new();
    let mut cfg = JobsConfig::new(StateDir::new(&state));
    cfg.host = Arc::new(host.clone());
    cfg.hooks = hooks;
    cfg.lease.renew_every = Duration::from_millis(50);
    cfg.tool_version = "test".into();
    let jobs = Jobs::open(cfg).unwrap();
    Fixture {
        _dir: dir,
        state,
        host,
        jobs,
    }
}

fn fixture() -> Fixture {
    fixture_with(Hooks::default())
}

fn yes() -> Confirmation {
    Confirmation::Waived { by: "test".into() }
}

fn parties() -> Parties {
    Parties {
        operator_id: "op-1".into(),
        operator_name: "Test Operator".into(),
        ..Default::default()
    }
}

fn clear(path: &str) -> WipeRequest {
    let mut r = WipeRequest::clear(path, yes(), parties());
    r.overwrite.pattern = Pattern::ZERO;
    r.overwrite.chunk_size = 64 << 10;
    r.overwrite.depth = 2;
    r.checkpoint_interval = Duration::from_millis(20);
    r
}

fn run(f: &Fixture, req: JobRequest) -> Report {
    f.jobs.submit(req).wait()
}

fn body(path: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["certificate"].clone()
}

fn verified_body(f: &Fixture, path: &str) -> serde_json::Value {
    let key = ApplianceKey::load_or_create(&f.state.join("keys")).unwrap();
    lethe_cert::verify(&std::fs::read(path).unwrap(), Some(&key.verifying_key()))
        .unwrap_or_else(|e| panic!("certificate does not verify: {e}"));
    body(path)
}

fn store(f: &Fixture) -> JobStore {
    JobStore::open(&f.state).unwrap()
}

fn refusal(r: &Report) -> &Refusal {
    match &r.outcome {
        Outcome::Refused(why) => why,
        other => panic!("expected a refusal, got {other:?} ({:?})", r.problems),
    }
}

/// safeguard: 164.310(d)(2)(i), 164.310(d)(2)(iii)
#[test]
fn a_clear_overwrite_is_certified_and_streams_its_events() {
    let f = fixture();
    let disk = f.host.add(
        "/dev/fake0",
        FakeDisk::memory(identity("/dev/fake0", Some("S1"), SIZE), SIZE),
    );
    let h = f.jobs.submit(JobRequest::Wipe(clear("/dev/fake0")));
    let mut started = false;
    let mut progress = 0;
    let report = loop {
        match h.events().recv().unwrap() {
            Event::Started { job, device, .. } => {
                assert_eq!((job.as_str(), device.as_str()), (h.id(), "/dev/fake0"));
                started = true;
            }
            Event::Overwrite(_) => progress += 1,
            Event::Finished(r) => break *r,
            _ => {}
        }
    };
    assert!(started && progress > 0);
    assert_eq!(report.outcome, Outcome::Passed);
    assert_eq!(report.bytes_written, SIZE);
    assert_eq!(report.bytes_verified, SIZE);
    assert!(disk.contents().unwrap().iter().all(|&b| b == 0));
    let doc = report.document.as_ref().unwrap();
    assert!(doc.certifies);
    let b = verified_body(&f, &doc.json);
    assert_eq!(b["result"]["status"], "pass");
    assert_eq!(b["operator"]["id"], "op-1");
    let kinds: Vec<String> = b["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"confirmed".to_string()), "{kinds:?}");
    let j = store(&f).get(h.id()).unwrap();
    assert_eq!(j.status, JobStatus::Pass);
    assert_eq!(j.lease_token, None, "a finished job holds no lease");
    // A finished job is no longer listed as running.
    for _ in 0..100 {
        if f.jobs.running().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(f.jobs.running().is_empty());
}

/// safeguard: rule:protected-devices, rule:checked-device
#[test]
fn protected_busy_and_swapped_devices_are_refused_with_nothing_written() {
    let f = fixture();
    let protected = f.host.add("/dev/p", {
        let mut d = FakeDisk::memory(identity("/dev/p", Some("P"), SIZE), SIZE);
        d.refused = Some(
            "loop device loop7 is stacked on p and is protected (loop7 is mounted at /mnt)".into(),
        );
        d
    });
    let busy = f.host.add("/dev/b", {
        let mut d = FakeDisk::memory(identity("/dev/b", Some("B"), SIZE), SIZE);
        d.busy_at_open = true;
        d
    });
    let swapped = f.host.add("/dev/s", {
        let mut d = FakeDisk::memory(identity("/dev/s", Some("S1"), SIZE), SIZE);
        d.after_open = Some(identity("/dev/s", Some("S2"), SIZE));
        d
    });
    for (path, want) in [
        ("/dev/p", "stacked"),
        ("/dev/b", "in use"),
        ("/dev/s", "changed between the check and the open"),
        ("/dev/none", "No such file"),
    ] {
        let r = run(&f, JobRequest::Wipe(clear(path)));
        let why = refusal(&r).to_string();
        assert!(
            why.contains(want) && why.contains("nothing was written"),
            "{path}: {why}"
        );
        assert!(r.job.is_none() && r.document.is_none());
    }
    assert_eq!(protected.writes() + busy.writes() + swapped.writes(), 0);
    assert!(
        store(&f).list().unwrap().is_empty(),
        "no job rows for refusals"
    );
    // The space reservation was given back.
    let left: Vec<_> = std::fs::read_dir(&f.state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with(".reserve"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// safeguard: rule:checked-device
#[test]
fn a_confirmation_is_checked_against_the_device_actually_opened() {
    let f = fixture();
    let shown = identity("/dev/c", Some("SHOWN"), SIZE);
    let disk = f.host.add("/dev/c", FakeDisk::memory(shown.clone(), SIZE));
    let typed = |answer: &str| {
        let mut r = clear("/dev/c");
        r.confirmation = Confirmation::typed(shown.clone(), answer);
        JobRequest::Wipe(r)
    };
    // A wrong answer.
    let r = run(&f, typed("yes"));
    assert!(matches!(refusal(&r), Refusal::NotConfirmed(_)));
    // The drive was swapped while the prompt waited: same size, the right
    // answer for the drive that was shown, another drive in the slot.
    f.host.update(Path::new("/dev/c"), |d| {
        d.identity = identity("/dev/c", Some("OTHER"), SIZE)
    });
    let r = run(&f, typed(&SIZE.to_string()));
    let why = refusal(&r).to_string();
    assert!(why.contains("not the one that was confirmed"), "{why}");
    assert_eq!(disk.writes(), 0);
    // Back in place: the typed serial is accepted.
    f.host
        .update(Path::new("/dev/c"), |d| d.identity = shown.clone());
    assert_eq!(run(&f, typed("SHOWN")).outcome, Outcome::Passed);
    assert!(disk.writes() > 0);
}

/// safeguard: rule:record-before-write
#[test]
fn an_unusable_state_directory_is_found_before_the_device_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let host = FakeHost::new();
    let disk = host.add(
        "/dev/f",
        FakeDisk::memory(identity("/dev/f", Some("F"), SIZE), SIZE),
    );
    let mut cfg = JobsConfig::new(StateDir::new(&state));
    cfg.host = Arc::new(host.clone());
    let jobs = Jobs::open(cfg).unwrap();
    // The state directory becomes unusable after the library opened it
    // (here: replaced by a file, which even root cannot write into).
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::write(&state, b"not a directory").unwrap();
    let r = jobs.submit(JobRequest::Wipe(clear("/dev/f"))).wait();
    assert!(
        matches!(refusal(&r), Refusal::StateDir { .. }),
        "{:?}",
        r.outcome
    );
    assert_eq!(disk.writes(), 0);
}

/// 8 MiB written 64 KiB at a time, 50 ms a write, two in flight: a run takes
/// about 3 s, so a stop at the first progress report (250 ms in) always lands
/// midway, even on a loaded machine.
fn slow_disk(f: &Fixture, path: &str) -> FakeDisk {
    let mut d = FakeDisk::memory(identity(path, Some("SLOW"), 8 * SIZE), 8 * SIZE);
    d.slow_writes = Duration::from_millis(50);
    f.host.add(path, d)
}

/// Submit, cancel once the job has written a little, and wait.
fn stop_midway(f: &Fixture, req: JobRequest) -> Report {
    let h = f.jobs.submit(req);
    loop {
        match h.events().recv().unwrap() {
            Event::Overwrite(p) if p.job_done > 0 => h.cancel(),
            Event::Finished(r) => return *r,
            _ => {}
        }
    }
}

/// safeguard: rule:never-certify-unverified, rule:record-before-write
#[test]
fn stops_give_numbered_incomplete_reports_and_the_job_resumes_to_a_certificate() {
    let f = fixture();
    let disk = slow_disk(&f, "/dev/slow");
    let first = stop_midway(&f, JobRequest::Wipe(clear("/dev/slow")));
    assert_eq!(first.outcome, Outcome::Stopped);
    assert!(first.resumable());
    let job = first.job.clone().unwrap();
    let d1 = first.document.clone().unwrap();
    assert_eq!(d1.id, format!("{job}-incomplete-1"));
    assert!(!d1.certifies);
    assert_eq!(body(&d1.json)["result"]["status"], "incomplete");
    let resume = || {
        JobRequest::Resume(ResumeRequest {
            job: job.clone(),
            device: None,
            confirmation: yes(),
            bay: None,
            checkpoint_interval: Duration::from_millis(20),
        })
    };
    // A second stop, within the same second: a second report, not a collision.
    let second = stop_midway(&f, resume());
    assert_eq!(second.outcome, Outcome::Stopped, "{:?}", second.problems);
    let d2 = second.document.unwrap();
    assert_eq!(d2.id, format!("{job}-incomplete-2"));
    assert!(Path::new(&d1.json).exists() && Path::new(&d2.json).exists());
    assert_eq!(store(&f).get(&job).unwrap().status, JobStatus::Incomplete);
    // The resumed job finishes and certifies under its own id.
    f.host
        .update(Path::new("/dev/slow"), |d| d.slow_writes = Duration::ZERO);
    let done = run(&f, resume());
    assert_eq!(done.outcome, Outcome::Passed, "{:?}", done.problems);
    assert_eq!(done.job.as_deref(), Some(job.as_str()));
    assert_eq!(done.document.unwrap().id, job);
    assert!(disk.contents().unwrap().iter().all(|&b| b == 0));
    // And it cannot be resumed again.
    let again = run(&f, resume());
    assert!(
        refusal(&again).to_string().contains("cannot be resumed"),
        "{:?}",
        again.outcome
    );
}

/// safeguard: rule:checked-device, 164.310(d)(2)(iii)
#[test]
fn a_resume_refuses_another_device_even_without_a_serial() {
    let f = fixture();
    let mut id = identity("/dev/l", None, 4 * SIZE);
    id.transport = "loop".into();
    id.backing = Some(lethe_core::inventory::FileId {
        dev: lethe_core::inventory::DevNum {
            major: 0,
            minor: 40,
        },
        ino: 7,
    });
    let mut d = FakeDisk::memory(id.clone(), 4 * SIZE);
    d.slow_writes = Duration::from_millis(20);
    let disk = f.host.add("/dev/l", d);
    let stopped = stop_midway(&f, JobRequest::Wipe(clear("/dev/l")));
    let job = stopped.job.unwrap();
    let writes = disk.writes();
    // Another file behind the same loop node, same size, no serial.
    let mut other = id.clone();
    other.backing = Some(lethe_core::inventory::FileId {
        ino: 8,
        ..id.backing.unwrap()
    });
    f.host.update(Path::new("/dev/l"), |d| d.identity = other);
    let r = run(
        &f,
        JobRequest::Resume(ResumeRequest {
            job,
            device: None,
            confirmation: yes(),
            bay: None,
            checkpoint_interval: Duration::from_secs(1),
        }),
    );
    let why = refusal(&r).to_string();
    assert!(why.contains("backing file"), "{why}");
    assert_eq!(disk.writes(), writes);
}

/// safeguard: rule:record-before-write
#[test]
fn a_worker_thread_that_dies_leaves_an_interrupted_resumable_job() {
    let hooks = Hooks {
        before_write: Some(Arc::new(|_id: &str| panic!("injected worker death"))),
        ..Default::default()
    };
    let f = fixture_with(hooks);
    let disk = f.host.add(
        "/dev/d",
        FakeDisk::memory(identity("/dev/d", Some("D"), SIZE), SIZE),
    );
    let r = run(&f, JobRequest::Wipe(clear("/dev/d")));
    let Outcome::Interrupted { reason } = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert!(reason.contains("injected worker death"), "{reason}");
    assert!(r.resumable());
    let job = r.job.unwrap();
    let j = store(&f).get(&job).unwrap();
    assert_eq!(
        j.status,
        JobStatus::Interrupted,
        "found and marked by the live process"
    );
    assert_eq!(disk.writes(), 0);
}

#[test]
fn the_lease_is_renewed_while_the_worker_lives() {
    let f = fixture();
    let mut d = FakeDisk::memory(identity("/dev/long", Some("L"), 16 * SIZE), 16 * SIZE);
    d.slow_writes = Duration::from_millis(20);
    f.host.add("/dev/long", d);
    let h = f.jobs.submit(JobRequest::Wipe(clear("/dev/long")));
    let id = h.id().to_string();
    let mut first = None;
    let started = std::time::Instant::now();
    loop {
        match h.events().recv_timeout(Duration::from_secs(30)).unwrap() {
            Event::Overwrite(_) if !h.cancel_token().is_cancelled() => {
                let s = store(&f);
                let j = s.get(&id).unwrap();
                assert_eq!(j.status, JobStatus::Running);
                let now = lethe_jobs::Clock::unix_now(&lethe_jobs::SystemClock);
                // A live worker's job is never reaped, even by another process.
                assert!(s.reap(now, |_, _| true, "t").unwrap().is_empty());
                let exp = j.lease_expires.unwrap();
                match first {
                    None => first = Some(exp),
                    Some(f0) if exp > f0 => h.cancel(),
                    Some(_) => assert!(
                        started.elapsed() < Duration::from_secs(10),
                        "lease never renewed"
                    ),
                }
            }
            Event::Finished(r) => {
                assert_eq!(r.outcome, Outcome::Stopped, "renewed, then stopped");
                break;
            }
            _ => {}
        }
    }
    assert!(f.jobs.running().is_empty());
}

/// safeguard: rule:never-certify-unverified
#[test]
fn medium_errors_and_a_vanishing_drive_fail_with_a_report_never_a_certificate() {
    let f = fixture();
    let mut bad = RangeSet::new();
    bad.insert(SIZE / 2 + 3 * 512, 2 * 512);
    let faulty = |plan: FaultPlan| {
        let dev: Arc<dyn BlockDevice> =
            Arc::new(FaultyDevice::new(MemDevice::new(SIZE, 512), plan));
        FakeDisk::block(identity("/dev/x", Some("X"), SIZE), dev)
    };
    f.host.add(
        "/dev/x",
        faulty(FaultPlan {
            bad_writes: bad.clone(),
            ..Default::default()
        }),
    );
    let r = run(&f, JobRequest::Wipe(clear("/dev/x")));
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.failed_ranges, bad);
    let doc = r.document.unwrap();
    assert!(!doc.certifies);
    let b = verified_body(&f, &doc.json);
    assert_eq!(b["result"]["status"], "fail");
    assert_eq!(
        b["result"]["failed_ranges"][0]["offset"],
        SIZE / 2 + 3 * 512
    );
    assert_eq!(
        store(&f).get(r.job.as_deref().unwrap()).unwrap().status,
        JobStatus::Fail
    );

    f.host.add(
        "/dev/x",
        faulty(FaultPlan {
            gone_after_writes: Some(4),
            ..Default::default()
        }),
    );
    let r = run(&f, JobRequest::Wipe(clear("/dev/x")));
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(
        r.problems.iter().any(|p| p.contains("vanished")),
        "{:?}",
        r.problems
    );
    let b = body(&r.document.unwrap().json);
    assert_eq!(b["verification"]["result"], "not_performed");
}

fn purge(path: &str) -> JobRequest {
    let mut r = clear(path);
    r.level = WipeLevel::Purge;
    r.purge.unfreeze_wait = Duration::ZERO;
    r.purge.canaries = 32;
    r.purge.seed = Some(42);
    JobRequest::Wipe(r)
}

/// safeguard: 164.310(d)(2)(i)
#[test]
fn a_native_purge_certificate_names_command_status_and_read_back() {
    let f = fixture();
    f.host.add(
        "/dev/nvme0n1",
        FakeDisk::drive(
            SimDrive::new(SimConfig::nvme(8192), SimClock::new()),
            "/dev/nvme0n1",
        ),
    );
    let h = f.jobs.submit(purge("/dev/nvme0n1"));
    let mut chosen = None;
    let r = loop {
        match h.events().recv().unwrap() {
            Event::Purge(lethe_jobs::PurgeStep::Chosen { method, .. }) => chosen = Some(method),
            Event::Finished(r) => break *r,
            _ => {}
        }
    };
    assert_eq!(chosen.as_deref(), Some("nvme_sanitize_crypto_erase"));
    assert_eq!(r.outcome, Outcome::Passed);
    assert_eq!(r.method.as_deref(), Some("nvme_sanitize_crypto_erase"));
    assert_eq!(r.category, Some(Level::Purge));
    let b = verified_body(&f, &r.document.unwrap().json);
    assert_eq!(b["method"]["category"], "purge");
    let status = b["method"]["drive_command"]["completion_status"]
        .as_str()
        .unwrap();
    assert!(
        status.contains("SSTAT") && status.contains("SCDW10"),
        "{status}"
    );
    assert_eq!(b["verification"]["result"], "pass");
    assert_eq!(b["verification"]["sample_seed"], format!("{:016x}", 42));
    // Sanitize erases the whole NVM subsystem: the certificate names what it erased.
    assert_eq!(
        b["method"]["drive_command"]["erased_namespaces"],
        serde_json::json!(["nvme0n1 (NSID 1)"])
    );
    assert_eq!(
        store(&f).get(r.job.as_deref().unwrap()).unwrap().status,
        JobStatus::Pass
    );
}

/// safeguard: rule:never-certify-unverified
#[test]
fn a_drive_that_lies_gets_a_failure_report() {
    let f = fixture();
    let d = SimDrive::new(SimConfig::sata_ssd(8192), SimClock::new());
    d.inject(Fault::LieAboutErase);
    f.host.add("/dev/sda", FakeDisk::drive(d, "/dev/sda"));
    let r = run(&f, purge("/dev/sda"));
    assert_eq!(r.outcome, Outcome::Failed);
    let b = verified_body(&f, &r.document.unwrap().json);
    assert_eq!(
        (
            b["result"]["status"].as_str(),
            b["verification"]["result"].as_str()
        ),
        (Some("fail"), Some("fail"))
    );
}

#[test]
fn a_frozen_drive_falls_back_to_a_clear_overwrite_under_the_same_job() {
    let f = fixture();
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.ata_sanitize = (false, false, false);
    let d = SimDrive::new(cfg, SimClock::new());
    d.bios_freeze();
    f.host.add("/dev/sdb", FakeDisk::drive(d, "/dev/sdb"));
    let r = run(&f, purge("/dev/sdb"));
    assert_eq!(
        r.outcome,
        Outcome::PassedAtLowerLevel {
            requested: Level::Purge,
            reached: Level::Clear
        }
    );
    assert_eq!(r.method.as_deref(), Some("overwrite"));
    let b = verified_body(&f, &r.document.unwrap().json);
    assert_eq!(b["method"]["requested_level"], "purge");
    assert_eq!(
        b["result"]["status"], "clear_only",
        "a Clear reached where Purge was asked never reads as a plain pass"
    );
    assert!(b["method"]["reason"]
        .as_str()
        .unwrap()
        .contains("Clear only"));
    assert_eq!(
        store(&f).list().unwrap().len(),
        1,
        "one job for the whole operator action"
    );
    assert_eq!(
        store(&f).get(r.job.as_deref().unwrap()).unwrap().status,
        JobStatus::ClearOnly,
        "the job store says clear_only too"
    );
    // The drive's health was read (before anything was written) and is on
    // the certificate and in the report.
    assert_eq!(b["device"]["health"]["source"], "ata_smart");
    assert!(r.health.is_some());
}

/// safeguard: 164.310(d)(2)(ii), rule:never-certify-unverified
#[test]
fn an_overwrite_fallback_that_cannot_reach_an_hpa_is_not_a_pass() {
    let f = fixture();
    let mut cfg = SimConfig::sata_ssd(8192);
    cfg.ata_sanitize = (false, false, false);
    let d = SimDrive::new(cfg, SimClock::new());
    d.set_hpa(6000);
    d.bios_freeze();
    f.host.add("/dev/sdh", FakeDisk::drive(d, "/dev/sdh"));
    let r = run(&f, purge("/dev/sdh"));
    assert_eq!(r.outcome, Outcome::Failed, "{:?}", r.problems);
    assert!(
        r.problems.iter().any(|p| p.contains("NOT overwritten")),
        "{:?}",
        r.problems
    );
    let doc = r.document.unwrap();
    assert!(!doc.certifies);
    let b = verified_body(&f, &doc.json);
    assert_eq!(b["result"]["status"], "fail");
    let hidden = b["device"]["hidden_areas"].as_str().unwrap();
    assert!(
        hidden.contains("2192 sectors hidden by an HPA were NOT overwritten"),
        "{hidden}"
    );
    assert_eq!(
        b["verification"]["result"], "pass",
        "what was written verified"
    );
}

/// safeguard: rule:protected-devices
#[test]
fn purge_refusals_write_nothing() {
    let f = fixture();
    let disk = f.host.add(
        "/dev/m",
        FakeDisk::memory(identity("/dev/m", Some("M"), SIZE), SIZE),
    );
    for (mut req, want) in [
        (
            {
                let JobRequest::Wipe(mut r) = purge("/dev/m") else {
                    unreachable!()
                };
                r.purge.allow_fallback = false;
                r
            },
            "destroy",
        ),
        (
            {
                let JobRequest::Wipe(mut r) = purge("/dev/m") else {
                    unreachable!()
                };
                r.method = lethe_jobs::MethodFamily::NvmeFormat;
                r
            },
            "not supported",
        ),
    ] {
        req.device = "/dev/m".into();
        let r = run(&f, JobRequest::Wipe(req));
        let why = refusal(&r).to_string();
        assert!(why.contains(want), "{why}");
    }
    assert_eq!(disk.writes(), 0);
}

struct Bytes(Vec<u8>);

impl ImageSource for Bytes {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn describe(&self) -> String {
        "test image".into()
    }
    fn restore_into(&self, sink: &mut dyn lethe_backup::restore::ImageSink) -> Result<u64, String> {
        if sink.capacity().is_some_and(|c| c < self.len()) {
            return Err("too small".into());
        }
        for (i, c) in self.0.chunks(3000).enumerate() {
            sink.write_at(i as u64 * 3000, c)
                .map_err(|e| e.to_string())?;
        }
        sink.finish(self.len()).map_err(|e| e.to_string())?;
        Ok(self.len())
    }
}

/// safeguard: rule:restore-confinement
#[test]
fn an_image_restore_is_a_job_and_refuses_small_and_protected_devices() {
    let f = fixture();
    let image: Vec<u8> = (0..SIZE / 2 + 77).map(|i| (i % 251) as u8).collect();
    let restore = |path: &str| {
        JobRequest::RestoreImage(RestoreImageRequest {
            device: path.into(),
            confirmation: yes(),
            image: Arc::new(Bytes(image.clone())),
            operator_id: "op".into(),
        })
    };
    let small = f.host.add(
        "/dev/small",
        FakeDisk::memory(identity("/dev/small", Some("SM"), SIZE / 4), SIZE / 4),
    );
    let r = run(&f, restore("/dev/small"));
    assert!(
        matches!(refusal(&r), Refusal::TooSmall { .. }),
        "{:?}",
        r.outcome
    );
    let prot = f.host.add("/dev/prot", {
        let mut d = FakeDisk::memory(identity("/dev/prot", Some("PR"), SIZE), SIZE);
        d.refused = Some("prot is mounted at /srv".into());
        d
    });
    let r = run(&f, restore("/dev/prot"));
    assert!(refusal(&r).to_string().contains("mounted"));
    assert_eq!(small.writes() + prot.writes(), 0);
    assert!(store(&f).list().unwrap().is_empty());

    let ok = f.host.add(
        "/dev/ok",
        FakeDisk::memory(identity("/dev/ok", Some("OK"), SIZE), SIZE),
    );
    let r = run(&f, restore("/dev/ok"));
    assert_eq!(r.outcome, Outcome::Passed, "{:?}", r.problems);
    let got = ok.contents().unwrap();
    assert_eq!(&got[..image.len()], &image[..]);
    assert!(got[image.len()..].iter().all(|&b| b == 0xEE));
    let j = store(&f).get(r.job.as_deref().unwrap()).unwrap();
    assert_eq!(
        (j.kind.as_str(), j.status),
        ("restore_image", JobStatus::Pass)
    );
}

/// safeguard: 164.310(d)(2)(i)
#[test]
fn a_degauss_needs_magnetic_media_and_a_controller() {
    let f = fixture();
    let mut flash = identity("/dev/ssd", Some("F"), SIZE);
    flash.media_type = "flash".into();
    flash.rotational = Some(false);
    let ssd = f.host.add("/dev/ssd", FakeDisk::memory(flash, SIZE));
    let degauss = |m: Medium| {
        JobRequest::Degauss(DegaussRequest {
            medium: m,
            confirmation: yes(),
            parties: parties(),
        })
    };
    let r = run(&f, degauss(Medium::Device("/dev/ssd".into())));
    assert!(
        matches!(refusal(&r), Refusal::NotMagnetic(_)),
        "{:?}",
        r.outcome
    );
    let r = run(&f, degauss(Medium::Tape("LTO-1".into())));
    assert_eq!(refusal(&r), &Refusal::NoController);
    assert_eq!(ssd.writes(), 0);
    assert!(!f.state.join("certificates").exists());
}

#[test]
fn the_library_is_shareable_and_safe_to_drive_from_an_async_runtime() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    fn sendable<T: Send + 'static>() {}
    shareable::<Jobs>();
    sendable::<lethe_jobs::JobHandle>();
    sendable::<Report>();
    // A daemon submits from a tokio worker; nothing here may block_on or panic.
    let f = fixture();
    f.host.add(
        "/dev/a",
        FakeDisk::memory(identity("/dev/a", Some("A"), SIZE), SIZE),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let jobs = f.jobs.clone();
    let report = rt.block_on(async move {
        let h = jobs.submit(JobRequest::Wipe(clear("/dev/a")));
        assert_eq!(jobs.running().len(), 1);
        tokio::task::spawn_blocking(move || h.wait()).await.unwrap()
    });
    assert_eq!(report.outcome, Outcome::Passed);
}

/// safeguard: rule:record-before-write
#[test]
fn a_job_whose_document_cannot_be_written_stays_resumable_and_certifies_on_resume() {
    // After the preflight passed, the certificate store becomes unwritable
    // (here: a file where its directory should be).
    let state_for_hook: Arc<std::sync::Mutex<Option<PathBuf>>> = Arc::default();
    let s2 = Arc::clone(&state_for_hook);
    let hooks = Hooks {
        before_write: Some(Arc::new(move |_id: &str| {
            if let Some(state) = s2.lock().unwrap().as_ref() {
                std::fs::write(state.join("certificates"), b"in the way").unwrap();
            }
        })),
        ..Default::default()
    };
    let f = fixture_with(hooks);
    *state_for_hook.lock().unwrap() = Some(f.state.clone());
    let disk = f.host.add(
        "/dev/w",
        FakeDisk::memory(identity("/dev/w", Some("W"), SIZE), SIZE),
    );
    let r = run(&f, JobRequest::Wipe(clear("/dev/w")));
    let Outcome::Interrupted { reason } = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert!(
        reason.contains("document not issued") && reason.contains("resume"),
        "{reason}"
    );
    assert!(r.resumable() && r.document.is_none());
    assert!(disk.writes() > 0, "the device was written");
    let job = r.job.unwrap();
    assert_eq!(store(&f).get(&job).unwrap().status, JobStatus::Interrupted);
    // The operator frees the store; the resume verifies again and certifies.
    *state_for_hook.lock().unwrap() = None;
    std::fs::remove_file(f.state.join("certificates")).unwrap();
    let done = run(
        &f,
        JobRequest::Resume(ResumeRequest {
            job: job.clone(),
            device: None,
            confirmation: yes(),
            bay: None,
            checkpoint_interval: Duration::from_secs(1),
        }),
    );
    assert_eq!(done.outcome, Outcome::Passed, "{:?}", done.problems);
    // Nothing was left to write (verification only): every byte the report
    // counts was written by the first run, as the certificate says too.
    assert_eq!(
        (done.bytes_written, done.bytes_written_earlier),
        (SIZE, SIZE),
        "nothing left to write: verification only"
    );
    assert_eq!(done.bytes_verified, SIZE);
    let b = verified_body(&f, &done.document.unwrap().json);
    assert_eq!(b["result"]["status"], "pass");
    assert_eq!(
        b["result"]["bytes_written"], done.bytes_written,
        "carried from the first run; the report and the certificate agree"
    );
}

/// safeguard: 164.310(d)(2)(iii)
#[test]
fn several_jobs_run_at_once_and_can_be_listed_followed_and_cancelled() {
    let f = fixture();
    slow_disk(&f, "/dev/one");
    slow_disk(&f, "/dev/two");
    let a = f.jobs.submit(JobRequest::Wipe(clear("/dev/one")));
    let b = f.jobs.submit(JobRequest::Wipe(clear("/dev/two")));
    let running: Vec<String> = f.jobs.running().into_iter().map(|r| r.id).collect();
    assert!(running.contains(&a.id().to_string()) && running.contains(&b.id().to_string()));
    // A second subscriber (an API client) follows job b, and cancels it
    // once it writes.
    let watcher = f.jobs.subscribe(b.id()).expect("b runs");
    for e in b.events().iter() {
        if matches!(e, Event::Overwrite(_)) {
            break;
        }
    }
    assert!(f.jobs.cancel(b.id()));
    let seen_by_watcher = watcher.iter().find_map(|e| match e {
        Event::Finished(r) => Some(r.outcome),
        _ => None,
    });
    assert_eq!(seen_by_watcher, Some(Outcome::Stopped));
    assert_eq!(b.wait().outcome, Outcome::Stopped);
    for e in a.events().iter() {
        if matches!(e, Event::Overwrite(_)) {
            break;
        }
    }
    a.cancel();
    assert_eq!(a.wait().outcome, Outcome::Stopped);
    assert!(!f.jobs.cancel("no-such-job"));
}

#[test]
fn verify_off_is_unverified_everywhere_never_a_pass_nor_a_failure() {
    let f = fixture();
    let disk = f.host.add(
        "/dev/u",
        FakeDisk::memory(identity("/dev/u", Some("U"), SIZE), SIZE),
    );
    let mut req = clear("/dev/u");
    req.overwrite.verify = lethe_core::plan::VerifyMode::Off;
    let r = run(&f, JobRequest::Wipe(req));
    assert_eq!(r.outcome, Outcome::Unverified, "{:?}", r.problems);
    assert_eq!(r.outcome.word(), "unverified");
    assert!(!r.outcome.certifies());
    assert_eq!((r.bytes_written, r.bytes_verified), (SIZE, 0));
    assert!(disk.contents().unwrap().iter().all(|&b| b == 0));
    let doc = r.document.as_ref().unwrap();
    assert!(!doc.certifies, "a report, not a certificate");
    let b = verified_body(&f, &doc.json);
    assert_eq!(b["result"]["status"], "unverified");
    assert_eq!(b["verification"]["result"], "not_performed");
    let j = store(&f).get(r.job.as_deref().unwrap()).unwrap();
    assert_eq!(j.status, JobStatus::Unverified);
    assert!(!j.status.resumable());
}

#[test]
fn a_job_stopped_before_its_first_write_is_not_started_and_says_so() {
    // The operator's Ctrl-C lands after the record, before the first write.
    let jobs_slot: Arc<std::sync::Mutex<Option<Jobs>>> = Arc::default();
    let j2 = Arc::clone(&jobs_slot);
    let hooks = Hooks {
        before_write: Some(Arc::new(move |id: &str| {
            if let Some(jobs) = j2.lock().unwrap().as_ref() {
                assert!(jobs.cancel(id));
            }
        })),
        ..Default::default()
    };
    let f = fixture_with(hooks);
    *jobs_slot.lock().unwrap() = Some(f.jobs.clone());
    let disk = f.host.add(
        "/dev/n",
        FakeDisk::memory(identity("/dev/n", Some("N"), SIZE), SIZE),
    );
    let before = disk.contents().unwrap();
    let r = run(&f, JobRequest::Wipe(clear("/dev/n")));
    *jobs_slot.lock().unwrap() = None;
    assert!(
        matches!(&r.outcome, Outcome::NotStarted { reason } if reason.contains("before anything")),
        "{:?}",
        r.outcome
    );
    assert_eq!(r.outcome.word(), "not_started");
    assert!(!r.resumable());
    assert_eq!(disk.writes(), 0);
    assert_eq!(disk.contents().unwrap(), before);
    let doc = r.document.as_ref().expect("a NOT STARTED report");
    assert!(!doc.certifies);
    assert_eq!(
        doc.id,
        r.job.clone().unwrap(),
        "the job's own id, not an incomplete-N"
    );
    let b = verified_body(&f, &doc.json);
    assert_eq!(b["result"]["status"], "not_started");
    assert_eq!(b["result"]["bytes_written"], 0);
    assert_eq!(b["verification"]["result"], "not_performed");
    let j = store(&f).get(r.job.as_deref().unwrap()).unwrap();
    assert_eq!(j.status, JobStatus::NotStarted);
}

#[test]
fn no_operator_is_refused_unless_the_site_allows_it_and_the_site_fills_the_certificate() {
    let f = fixture();
    let disk = f.host.add(
        "/dev/o",
        FakeDisk::memory(identity("/dev/o", Some("O"), SIZE), SIZE),
    );
    let mut req = clear("/dev/o");
    req.parties = Parties::default();
    let r = run(&f, JobRequest::Wipe(req.clone()));
    assert_eq!(refusal(&r), &Refusal::NoOperator);
    assert!(r.job.is_none() && store(&f).list().unwrap().is_empty());
    assert_eq!(disk.writes(), 0);
    let deg = run(
        &f,
        JobRequest::Degauss(DegaussRequest {
            medium: Medium::Tape("LTO-2".into()),
            confirmation: yes(),
            parties: Parties::default(),
        }),
    );
    assert_eq!(refusal(&deg), &Refusal::NoOperator);

    // A site that accepts jobs without an operator says so in the history;
    // location and media source reach the certificate.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = JobsConfig::new(StateDir::new(dir.path().join("state")));
    cfg.host = Arc::new(f.host.clone());
    cfg.require_operator = false;
    let jobs = Jobs::open(cfg).unwrap();
    req.parties.location = Some("Radiology, basement B2".into());
    req.parties.media_source = Some("PACS server 3".into());
    let r = jobs.submit(JobRequest::Wipe(req)).wait();
    assert_eq!(r.outcome, Outcome::Passed, "{:?}", r.problems);
    let b = body(&r.document.unwrap().json);
    assert_eq!(b["appliance"]["location"], "Radiology, basement B2");
    assert_eq!(b["media_source"], "PACS server 3");
    assert_eq!(b["operator"]["id"], "");
    let op = b["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "operator")
        .expect("an operator event");
    assert!(
        op["detail"].as_str().unwrap().contains("none named"),
        "{op}"
    );
}

#[test]
fn drive_health_is_read_before_the_first_write_and_certified() {
    let f = fixture();
    // A SATA disk model: SMART attributes over its ATA pass-through.
    let d = SimDrive::new(SimConfig::sata_ssd(8192), SimClock::new());
    f.host.add("/dev/sdh", FakeDisk::drive(d, "/dev/sdh"));
    let mut req = clear("/dev/sdh");
    req.parties.operator_source = Some("--operator-id".into());
    let r = run(&f, JobRequest::Wipe(req));
    assert_eq!(r.outcome, Outcome::Passed, "{:?}", r.problems);
    let h = r.health.as_ref().expect("health in the report");
    let b = verified_body(&f, &r.document.unwrap().json);
    assert_eq!(b["device"]["health"], serde_json::to_value(h).unwrap());
    assert_eq!(b["device"]["health"]["source"], "ata_smart");
    let events = b["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    // Health and operator are recorded before the work starts.
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k}: {kinds:?}"))
    };
    assert!(pos("health") < pos("completed"), "{kinds:?}");
    assert!(events[pos("operator")]["detail"]
        .as_str()
        .unwrap()
        .contains("op-1 (Test Operator), from --operator-id"));

    // A device with no health data (memory, as a loop device) says why not.
    let mut id = identity("/dev/loopish", Some("L"), SIZE);
    id.transport = "loop".into();
    f.host.add("/dev/loopish", FakeDisk::memory(id, SIZE));
    let mut req = clear("/dev/loopish");
    req.parties = parties();
    let r = run(&f, JobRequest::Wipe(req));
    assert!(r.health.is_none());
    let b = verified_body(&f, &r.document.unwrap().json);
    assert!(b["device"].get("health").is_none(), "omitted, not invented");
    let note = b["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "health")
        .unwrap()["detail"]
        .clone();
    assert_eq!(
        note, "not available: a loop device reports no drive health",
        "{note}"
    );
}
