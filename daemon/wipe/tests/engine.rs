//! Engine behaviour against in-memory and fault-injecting devices.

use lethe_core::pattern::Pattern;
use lethe_core::plan::{Checkpoint, VerifyMode, WipePlan};
use lethe_core::ranges::{ByteRange, RangeSet};
use lethe_wipe::testdev::{FaultPlan, FaultyDevice, MemDevice};
use lethe_wipe::{run, EndState, Observer, PatternStream, StreamKey, Verdict, WipeConfig};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const MIB: u64 = 1 << 20;

fn cfg(pattern: Pattern, passes: u32, blank: bool, verify: VerifyMode) -> WipeConfig {
    let plan = WipePlan::new(pattern, passes, blank, verify).unwrap();
    let mut c = WipeConfig::new(plan, StreamKey([0x42; 16]), 99);
    c.chunk_size = 256 * 1024;
    c.depth = 3;
    c.retries = 1;
    c.progress_interval = Duration::from_millis(5);
    c
}

fn expected(c: &WipeConfig, size: u64) -> Vec<u8> {
    let mut v = vec![0u8; size as usize];
    PatternStream::new(c.plan.final_pattern(), c.plan.final_pass_index(), &c.key).fill(&mut v, 0);
    v
}

fn set(ranges: &[(u64, u64)]) -> RangeSet {
    let mut s = RangeSet::new();
    for &(o, l) in ranges {
        s.insert(o, l);
    }
    s
}

/// safeguard: 164.310(d)(2)(i)
#[test]
fn random_pass_with_odd_size_is_byte_exact_and_passes() {
    let size = 3 * MIB + 4096;
    let dev = MemDevice::new(size, 512);
    let c = cfg(Pattern::Random, 1, false, VerifyMode::Full);
    let out = run(&dev, &c, Checkpoint::START, RangeSet::new(), &());
    assert_eq!(out.end, EndState::Completed);
    assert_eq!(out.verdict(), Verdict::Pass, "{:?}", out.problems());
    assert_eq!(dev.contents(), expected(&c, size));
    assert_eq!(out.bytes_written, size);
    assert_eq!(out.bytes_verified, size);
}

/// safeguard: 164.310(d)(2)(ii)
#[test]
fn multi_pass_fill_then_blank_ends_in_zeros() {
    let dev = MemDevice::new(MIB + 512, 512);
    let c = cfg(Pattern::Fill(0xA5), 2, true, VerifyMode::Full);
    let out = run(&dev, &c, Checkpoint::START, RangeSet::new(), &());
    assert_eq!(out.verdict(), Verdict::Pass);
    assert!(dev.contents().iter().all(|&b| b == 0));
    assert_eq!(out.bytes_written, 3 * (MIB + 512));
}

#[test]
fn unwritable_sectors_fail_the_job_with_their_exact_range() {
    let bad = set(&[(MIB + 1024, 1536)]);
    let dev = FaultyDevice::new(
        MemDevice::new(2 * MIB, 512),
        FaultPlan {
            bad_writes: bad.clone(),
            ..Default::default()
        },
    );
    let c = cfg(Pattern::Random, 1, false, VerifyMode::Full);
    let out = run(&dev, &c, Checkpoint::START, RangeSet::new(), &());
    assert_eq!(out.verdict(), Verdict::Fail);
    assert_eq!(out.write_failures, bad);
    // Everything else was written.
    let want = expected(&c, 2 * MIB);
    let got = dev.inner().contents();
    assert_eq!(got[..(MIB + 1024) as usize], want[..(MIB + 1024) as usize]);
    assert_eq!(got[(MIB + 2560) as usize..], want[(MIB + 2560) as usize..]);
    assert!(out.retries > 0);
}

/// safeguard: rule:never-certify-unverified, 164.310(d)(2)(ii)
#[test]
fn a_drive_that_drops_writes_is_caught_by_verification() {
    let dropped = set(&[(4096, 512), (MIB + 8192, 4096)]);
    let dev = FaultyDevice::new(
        MemDevice::new(2 * MIB, 512),
        FaultPlan {
            dropped_writes: dropped.clone(),
            ..Default::default()
        },
    );
    let out = run(
        &dev,
        &cfg(Pattern::Fill(0), 1, false, VerifyMode::Full),
        Checkpoint::START,
        RangeSet::new(),
        &(),
    );
    assert!(out.write_failures.is_empty());
    assert_eq!(out.verify_failures, dropped);
    assert_eq!(out.verdict(), Verdict::Fail);
}

/// safeguard: rule:never-certify-unverified
#[test]
fn unreadable_sectors_fail_verification() {
    let dev = FaultyDevice::new(
        MemDevice::new(MIB, 4096),
        FaultPlan {
            bad_reads: set(&[(0, 100)]),
            ..Default::default()
        },
    );
    let out = run(
        &dev,
        &cfg(Pattern::Random, 1, false, VerifyMode::Full),
        Checkpoint::START,
        RangeSet::new(),
        &(),
    );
    assert_eq!(out.verify_failures, set(&[(0, 4096)]));
    assert_eq!(out.verdict(), Verdict::Fail);
}

#[test]
fn a_vanishing_drive_aborts_and_fails() {
    let dev = FaultyDevice::new(
        MemDevice::new(4 * MIB, 512),
        FaultPlan {
            gone_after_writes: Some(3),
            ..Default::default()
        },
    );
    let out = run(
        &dev,
        &cfg(Pattern::Random, 1, false, VerifyMode::Full),
        Checkpoint::START,
        RangeSet::new(),
        &(),
    );
    assert!(
        matches!(out.end, EndState::Aborted { ref reason, .. } if reason.contains("vanished")),
        "{:?}",
        out.end
    );
    assert_eq!(out.verdict(), Verdict::Fail);
}

/// safeguard: rule:never-certify-unverified
#[test]
fn verify_off_is_never_a_pass() {
    let dev = MemDevice::new(MIB, 512);
    let out = run(
        &dev,
        &cfg(Pattern::Random, 1, false, VerifyMode::Off),
        Checkpoint::START,
        RangeSet::new(),
        &(),
    );
    assert_eq!(out.end, EndState::Completed);
    assert_eq!(out.bytes_verified, 0);
    assert_eq!(out.verdict(), Verdict::Fail);
    assert!(out
        .problems()
        .iter()
        .any(|p| p.contains("verification was turned off")));
}

/// safeguard: 164.310(d)(2)(ii)
#[test]
fn sampled_verification_reads_head_tail_and_a_share() {
    let size = 64 * MIB;
    let dev = FaultyDevice::new(
        MemDevice::new(size, 512),
        // A lying drive in the last sector: the tail MiB is always sampled.
        FaultPlan {
            dropped_writes: set(&[(size - 512, 512)]),
            ..Default::default()
        },
    );
    let c = cfg(
        Pattern::Random,
        1,
        false,
        VerifyMode::Sample { ppm: 100_000 },
    );
    let out = run(&dev, &c, Checkpoint::START, RangeSet::new(), &());
    assert!(
        out.bytes_verified >= size / 10 && out.bytes_verified < size / 2,
        "{}",
        out.bytes_verified
    );
    assert_eq!(out.verified.total(), out.bytes_verified);
    assert_eq!(out.verify_failures, set(&[(size - 512, 512)]));
}

/// Stops after a given number of progress reports, records checkpoints.
struct StopAfter {
    reports: AtomicU64,
    stop_at: u64,
    checkpoints: Mutex<Vec<Checkpoint>>,
}

impl Observer for StopAfter {
    fn progress(&self, _p: &lethe_wipe::Progress) {
        self.reports.fetch_add(1, Ordering::SeqCst);
    }
    fn checkpoint(&self, cp: Checkpoint, _f: &RangeSet) -> Result<(), String> {
        self.checkpoints.lock().unwrap().push(cp);
        Ok(())
    }
    fn stop_requested(&self) -> bool {
        self.reports.load(Ordering::SeqCst) >= self.stop_at
    }
}

/// A device that writes slowly, so a stop lands in the middle.
struct Slow(MemDevice);
impl lethe_core::device::BlockDevice for Slow {
    fn geometry(&self) -> lethe_core::device::Geometry {
        self.0.geometry()
    }
    fn write_at(&self, b: &[u8], o: u64) -> Result<(), lethe_core::device::IoFault> {
        std::thread::sleep(Duration::from_millis(2));
        self.0.write_at(b, o)
    }
    fn read_at(&self, b: &mut [u8], o: u64) -> Result<(), lethe_core::device::IoFault> {
        self.0.read_at(b, o)
    }
    fn flush(&self) -> Result<(), lethe_core::device::IoFault> {
        self.0.flush()
    }
}

#[test]
fn stop_then_resume_from_checkpoint_finishes_byte_exact() {
    let size = 16 * MIB;
    let dev = Slow(MemDevice::new(size, 512));
    let mut c = cfg(Pattern::Random, 2, false, VerifyMode::Full);
    c.chunk_size = 64 * 1024;
    c.checkpoint_interval = Duration::from_millis(10);
    let obs = StopAfter {
        reports: AtomicU64::new(0),
        stop_at: 8,
        checkpoints: Mutex::new(vec![]),
    };
    let out = run(&dev, &c, Checkpoint::START, RangeSet::new(), &obs);
    let EndState::Stopped { checkpoint } = out.end else {
        panic!("{:?}", out.end)
    };
    assert_eq!(out.verdict(), Verdict::Incomplete);
    let Checkpoint::Writing { pass, offset } = checkpoint else {
        panic!("{checkpoint:?}")
    };
    assert!(pass == 0 && offset > 0 && offset < size, "{checkpoint:?}");
    assert!(out.bytes_written < 2 * size);
    // Checkpoints only move forward.
    let cps = obs.checkpoints.lock().unwrap().clone();
    assert_eq!(cps.last(), Some(&checkpoint));

    let out2 = run(&dev, &c, checkpoint, RangeSet::new(), &());
    assert_eq!(out2.verdict(), Verdict::Pass);
    assert_eq!(out2.bytes_written, 2 * size - offset);
    assert_eq!(dev.0.contents(), expected(&c, size));
}

#[test]
fn prior_failures_survive_a_resume() {
    let dev = MemDevice::new(MIB, 512);
    let prior = set(&[(512, 512)]);
    let out = run(
        &dev,
        &cfg(Pattern::Fill(0), 1, false, VerifyMode::Full),
        Checkpoint::Writing {
            pass: 0,
            offset: 4096,
        },
        prior.clone(),
        &(),
    );
    assert_eq!(out.write_failures, prior);
    assert_eq!(out.verdict(), Verdict::Fail);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    /// Whatever the faults, the job passes exactly when nothing was injected,
    /// and every injected range shows up in the failed ranges.
    /// safeguard: rule:never-certify-unverified
    #[test]
    fn never_certifies_a_faulty_wipe(
        bad_w in prop::collection::vec((0u64..512, 1u64..8), 0..3),
        drop_w in prop::collection::vec((0u64..512, 1u64..8), 0..3),
        bad_r in prop::collection::vec((0u64..512, 1u64..8), 0..3),
        depth in 1usize..4,
    ) {
        let sector = 512u64;
        let to_set = |v: &[(u64, u64)]| set(&v.iter().map(|&(s, n)| (s * sector, n * sector)).collect::<Vec<_>>());
        let plan = FaultPlan {
            bad_writes: to_set(&bad_w),
            dropped_writes: to_set(&drop_w),
            bad_reads: to_set(&bad_r),
            gone_after_writes: None,
        };
        let injected = !(plan.bad_writes.is_empty() && plan.dropped_writes.is_empty() && plan.bad_reads.is_empty());
        let mut all = plan.bad_writes.clone();
        all.extend(&plan.dropped_writes);
        all.extend(&plan.bad_reads);
        let dev = FaultyDevice::new(MemDevice::new(260 * 1024, 512), plan);
        let mut c = cfg(Pattern::Random, 1, false, VerifyMode::Full);
        c.chunk_size = 16 * 1024;
        c.depth = depth;
        let out = run(&dev, &c, Checkpoint::START, RangeSet::new(), &());
        prop_assert_eq!(out.verdict() == Verdict::Pass, !injected);
        let failed = out.failed_ranges();
        for r in all.iter() {
            for s in (r.offset..r.end()).step_by(512) {
                prop_assert!(failed.contains(s), "sector {} missing from {:?}", s, failed);
            }
        }
        // Nothing outside the injected ranges is reported.
        for ByteRange { offset, length } in failed.iter() {
            for s in (offset..offset + length).step_by(512) {
                prop_assert!(all.contains(s));
            }
        }
    }
}

/// Records every progress report.
#[derive(Default)]
struct Reports(Mutex<Vec<lethe_wipe::Progress>>);

impl Observer for Reports {
    fn progress(&self, p: &lethe_wipe::Progress) {
        self.0.lock().unwrap().push(p.clone());
    }
}

#[test]
fn progress_after_a_resume_starts_from_what_was_already_done() {
    let size = 4 * MIB;
    let dev = MemDevice::new(size, 512);
    let c = cfg(Pattern::Random, 3, false, VerifyMode::Full);
    let start = Checkpoint::Writing {
        pass: 1,
        offset: MIB,
    };
    let obs = Reports::default();
    let out = run(&dev, &c, start, RangeSet::new(), &obs);
    assert_eq!(out.verdict(), Verdict::Pass, "{:?}", out.problems());
    // This run wrote what was left: the rest of pass 2, and pass 3.
    assert_eq!(out.bytes_written, 2 * size - MIB);
    let reports = obs.0.into_inner().unwrap();
    let first = reports.first().expect("progress reported");
    assert_eq!(
        first.phase,
        lethe_wipe::Phase::Writing { pass: 1, passes: 3 }
    );
    assert_eq!(first.phase_total, size, "a pass is the whole device");
    assert!(first.phase_done >= MIB, "{first:?}");
    assert_eq!(first.job_total, 3 * size + size, "3 passes, then verify");
    assert!(first.job_done >= size + MIB, "{first:?}");
    // Never backwards, and the job ends complete.
    assert!(reports.windows(2).all(|w| w[1].job_done >= w[0].job_done));
    let last = reports.last().unwrap();
    assert_eq!(
        (last.job_done, last.phase),
        (last.job_total, lethe_wipe::Phase::Verifying)
    );
}

/// Asks to stop from the start.
struct StopAtOnce;
impl Observer for StopAtOnce {
    fn stop_requested(&self) -> bool {
        true
    }
}

#[test]
fn a_stop_asked_before_the_first_write_writes_nothing() {
    let dev = MemDevice::new(MIB, 512);
    let before = dev.contents();
    let c = cfg(Pattern::Fill(0x11), 1, false, VerifyMode::Full);
    let out = run(&dev, &c, Checkpoint::START, RangeSet::new(), &StopAtOnce);
    assert_eq!(
        out.end,
        EndState::Stopped {
            checkpoint: Checkpoint::START
        }
    );
    assert_eq!((out.bytes_written, out.bytes_verified), (0, 0));
    assert_eq!(dev.contents(), before);
}
