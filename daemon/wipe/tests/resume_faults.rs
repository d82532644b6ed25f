//! Resume never skips an unwritten range (issue 9, item 6).
//!
//! A property test drives the engine against a disk with a volatile write
//! cache and a fault schedule: the "process" dies after a random number of
//! writes (every later I/O fails as if the device vanished, and writes that
//! were not flushed are lost, except a seeded few the drive happened to
//! store), one write may fail with a non-media error that aborts the run while
//! the device keeps working, some sectors fail a few times before they take a
//! write, some never do, and the operator may stop the job. After each end
//! the job resumes from the last checkpoint the observer stored, as
//! `lethe wipe --resume` does from the job store, until it completes.
//!
//! The disk records, for every pass, which sectors received that pass's data
//! *durably* (committed by a flush). At the end every sector has every pass,
//! or is among the recorded write failures; the final pattern is on the disk;
//! and the verdict is a pass exactly when nothing failed.

use lethe_core::device::{BlockDevice, Geometry, IoFault};
use lethe_core::pattern::Pattern;
use lethe_core::plan::{Checkpoint, VerifyMode, WipePlan};
use lethe_core::ranges::RangeSet;
use lethe_wipe::{run, EndState, Observer, PatternStream, StreamKey, Verdict, WipeConfig};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const SECTOR: u64 = 512;

/// What goes wrong, and when.
#[derive(Debug, Clone)]
struct Schedule {
    /// Writes until the process dies, one entry per death (then no more deaths).
    deaths: Vec<u64>,
    /// The write (counted over the whole job) that fails once with EINVAL.
    hiccup: Option<u64>,
    /// Sector → number of write attempts that fail before one succeeds (fewer
    /// than the engine's attempts, so the sector always takes the write).
    flaky: BTreeMap<u64, u32>,
    /// Sectors that never take a write.
    bad: Vec<u64>,
    /// Progress reports after which the operator stops the job (first round only).
    stop_after: Option<u64>,
    /// Which unflushed writes survive a death (bit i of the seed, i mod 64).
    survivors: u64,
}

struct Disk {
    geo: Geometry,
    durable: Mutex<Vec<u8>>,
    /// Written since the last flush: visible to reads, lost on a death.
    pending: Mutex<Vec<(u64, Vec<u8>)>>,
    /// [pass][sector]: that pass's bytes were committed by a flush.
    covered: Mutex<Vec<Vec<bool>>>,
    passes: Vec<PatternStream>,
    writes: AtomicU64,
    die_at: AtomicU64,
    dead: AtomicBool,
    hiccup: Option<u64>,
    flaky: Mutex<BTreeMap<u64, u32>>,
    bad: Vec<u64>,
}

impl Disk {
    fn new(size: u64, passes: Vec<PatternStream>, s: &Schedule) -> Self {
        let sectors = (size / SECTOR) as usize;
        Self {
            geo: Geometry {
                size_bytes: size,
                logical_sector: SECTOR as u32,
                physical_sector: 4096,
            },
            durable: Mutex::new(vec![0xEE; size as usize]),
            pending: Mutex::new(Vec::new()),
            covered: Mutex::new(vec![vec![false; sectors]; passes.len()]),
            passes,
            writes: AtomicU64::new(0),
            die_at: AtomicU64::new(u64::MAX),
            dead: AtomicBool::new(false),
            hiccup: s.hiccup,
            flaky: Mutex::new(s.flaky.clone()),
            bad: s.bad.clone(),
        }
    }

    fn gone(&self, what: &str) -> IoFault {
        IoFault::from_errno(19, format!("{what}: the process died"))
    }

    /// The process died: unflushed writes are lost, except the survivors.
    fn crash(&self, survivors: u64) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        let mut d = self.durable.lock().unwrap();
        for (i, (off, data)) in pending.into_iter().enumerate() {
            if survivors >> (i % 64) & 1 == 1 {
                d[off as usize..off as usize + data.len()].copy_from_slice(&data);
            }
        }
        self.dead.store(false, Ordering::SeqCst);
    }

    fn die_after(&self, writes: Option<u64>) {
        let now = self.writes.load(Ordering::SeqCst);
        self.die_at
            .store(writes.map_or(u64::MAX, |w| now + w), Ordering::SeqCst);
    }

    /// Record which pass each sector of a committed write belongs to.
    fn account(&self, off: u64, data: &[u8]) {
        let mut cov = self.covered.lock().unwrap();
        let mut want = vec![0u8; SECTOR as usize];
        for (i, got) in data.chunks(SECTOR as usize).enumerate() {
            let at = off + i as u64 * SECTOR;
            for (p, stream) in self.passes.iter().enumerate() {
                stream.fill(&mut want, at);
                if got == want.as_slice() {
                    cov[p][(at / SECTOR) as usize] = true;
                }
            }
        }
    }
}

impl BlockDevice for Disk {
    fn geometry(&self) -> Geometry {
        self.geo
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(self.gone("write"));
        }
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.die_at.load(Ordering::SeqCst) {
            self.dead.store(true, Ordering::SeqCst);
            return Err(self.gone("write"));
        }
        if self.hiccup == Some(n) {
            return Err(IoFault::from_errno(22, "write: injected EINVAL"));
        }
        let first = offset / SECTOR;
        let last = (offset + buf.len() as u64).div_ceil(SECTOR);
        if self.bad.iter().any(|s| (first..last).contains(s)) {
            return Err(IoFault::from_errno(5, "write: bad sector"));
        }
        {
            let mut flaky = self.flaky.lock().unwrap();
            let mut failed = false;
            for s in first..last {
                if let Some(left) = flaky.get_mut(&s).filter(|l| **l > 0) {
                    *left -= 1;
                    failed = true;
                }
            }
            if failed {
                return Err(IoFault::from_errno(5, "write: flaky sector"));
            }
        }
        self.pending.lock().unwrap().push((offset, buf.to_vec()));
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(self.gone("read"));
        }
        let d = self.durable.lock().unwrap();
        buf.copy_from_slice(&d[offset as usize..offset as usize + buf.len()]);
        drop(d);
        // What the drive holds in its cache reads back too.
        let end = offset + buf.len() as u64;
        for (off, data) in self.pending.lock().unwrap().iter() {
            let (a, b) = (*off, off + data.len() as u64);
            if a < end && offset < b {
                let (lo, hi) = (a.max(offset), b.min(end));
                buf[(lo - offset) as usize..(hi - offset) as usize]
                    .copy_from_slice(&data[(lo - a) as usize..(hi - a) as usize]);
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), IoFault> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(self.gone("flush"));
        }
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        let mut d = self.durable.lock().unwrap();
        for (off, data) in &pending {
            d[*off as usize..*off as usize + data.len()].copy_from_slice(data);
        }
        drop(d);
        for (off, data) in &pending {
            self.account(*off, data);
        }
        Ok(())
    }
}

/// The job store's part: the last checkpoint and failures it committed.
struct Store {
    stored: Mutex<(Checkpoint, RangeSet)>,
    reports: AtomicU64,
    stop_after: Option<u64>,
}

impl Observer for Store {
    fn progress(&self, _p: &lethe_wipe::Progress) {
        self.reports.fetch_add(1, Ordering::SeqCst);
    }
    fn checkpoint(&self, cp: Checkpoint, failures: &RangeSet) -> Result<(), String> {
        *self.stored.lock().unwrap() = (cp, failures.clone());
        Ok(())
    }
    fn stop_requested(&self) -> bool {
        self.stop_after
            .is_some_and(|n| self.reports.load(Ordering::SeqCst) >= n)
    }
}

fn schedule(sectors: u64) -> impl Strategy<Value = Schedule> {
    (
        prop::collection::vec(1u64..40, 0..4),
        prop::option::of(1u64..60),
        prop::collection::btree_map(0..sectors, 1u32..3, 0..3),
        prop::collection::vec(0..sectors, 0..2),
        prop::option::of(1u64..6),
        any::<u64>(),
    )
        .prop_map(
            |(deaths, hiccup, flaky, bad, stop_after, survivors)| Schedule {
                deaths,
                hiccup,
                flaky,
                bad,
                stop_after,
                survivors,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// safeguard: 164.310(d)(2)(i), 164.310(d)(2)(ii), rule:never-certify-unverified
    #[test]
    fn killed_and_resumed_wipes_cover_every_byte_of_every_pass(
        sectors in 64u64..320,
        passes in 1u32..4,
        chunk_sectors in 1u64..24,
        depth in 1usize..5,
        s in schedule(320),
    ) {
        let size = sectors * SECTOR;
        let plan = WipePlan::new(Pattern::Random, passes, false, VerifyMode::Full).unwrap();
        let mut cfg = WipeConfig::new(plan, StreamKey([7; 16]), 1);
        cfg.chunk_size = (chunk_sectors * SECTOR) as usize;
        cfg.depth = depth;
        cfg.retries = 2;
        cfg.checkpoint_interval = Duration::ZERO;
        cfg.progress_interval = Duration::from_micros(200);
        let streams: Vec<PatternStream> = cfg
            .plan
            .passes
            .iter()
            .enumerate()
            .map(|(i, p)| PatternStream::new(*p, i, &cfg.key))
            .collect();
        let bad: Vec<u64> = s.bad.iter().copied().filter(|b| *b < sectors).collect();
        let disk = Disk::new(size, streams.clone(), &Schedule { bad: bad.clone(), ..s.clone() });
        let mut stored = (Checkpoint::START, RangeSet::new());
        let mut deaths = s.deaths.iter();
        let mut first = true;
        let outcome = loop {
            disk.die_after(deaths.next().copied());
            let store = Store {
                stored: Mutex::new(stored.clone()),
                reports: AtomicU64::new(0),
                stop_after: s.stop_after.filter(|_| first),
            };
            first = false;
            let out = run(&disk, &cfg, stored.0, stored.1.clone(), &store);
            stored = store.stored.into_inner().unwrap();
            match out.end {
                EndState::Completed => break out,
                EndState::Stopped { checkpoint } => {
                    prop_assert_eq!(checkpoint, stored.0);
                    prop_assert_eq!(out.verdict(), Verdict::Incomplete);
                }
                EndState::Aborted { .. } => prop_assert_eq!(out.verdict(), Verdict::Fail),
            }
            // Whatever ended the run, the host may lose power before the
            // next one: only flushed data is sure to be on the disk.
            disk.crash(s.survivors);
        };

        let failures = outcome.write_failures.clone();
        for b in &bad {
            prop_assert!(failures.contains(b * SECTOR), "bad sector {} not reported", b);
        }
        let cov = disk.covered.lock().unwrap();
        for sector in 0..sectors {
            if failures.contains(sector * SECTOR) {
                continue;
            }
            for (p, row) in cov.iter().enumerate() {
                prop_assert!(row[sector as usize], "pass {} never durably reached sector {}", p, sector);
            }
        }
        drop(cov);
        disk.flush().unwrap();
        let d = disk.durable.lock().unwrap();
        let mut want = vec![0u8; SECTOR as usize];
        let last = streams.last().unwrap();
        for sector in 0..sectors {
            let at = sector * SECTOR;
            if failures.contains(at) {
                continue;
            }
            last.fill(&mut want, at);
            prop_assert_eq!(&d[at as usize..(at + SECTOR) as usize], want.as_slice(), "sector {}", sector);
        }
        prop_assert_eq!(
            outcome.verdict() == Verdict::Pass,
            failures.is_empty() && outcome.verify_failures.is_empty()
        );
        if bad.is_empty() {
            // Flaky sectors recover within the retries or are reported; a
            // clean disk must end in a pass.
            prop_assert!(outcome.verify_failures.is_empty());
        }
    }
}
