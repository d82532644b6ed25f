//! The write → flush → verify pipeline.

use crate::stream::{PatternStream, StreamKey};
use crate::tracker::{Chunk, ChunkTracker};
use crate::Verdict;
use aligned_vec::{AVec, ConstAlign};
use lethe_core::device::{BlockDevice, IoFault};
use lethe_core::plan::{Checkpoint, VerifyMode, WipePlan};
use lethe_core::ranges::RangeSet;
use lethe_core::sampling::sample_plan;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 4 KiB alignment satisfies O_DIRECT for every logical sector size in use.
type IoBuf = AVec<u8, ConstAlign<4096>>;

fn io_buf(len: usize) -> IoBuf {
    let mut v = IoBuf::with_capacity(4096, len);
    v.resize(len, 0);
    v
}

/// Tunables of one run. `Default` gives what the CLI uses.
#[derive(Debug, Clone)]
pub struct WipeConfig {
    pub plan: WipePlan,
    pub key: StreamKey,
    /// Seed of the sampled-verification plan (recorded on the certificate).
    pub sample_seed: u64,
    /// Largest single I/O, in bytes; a multiple of 4096.
    pub chunk_size: usize,
    /// Worker threads, i.e. I/Os in flight.
    pub depth: usize,
    /// Extra attempts for a failing I/O before it is bisected or recorded.
    pub retries: u32,
    /// How often to flush and persist a checkpoint.
    pub checkpoint_interval: Duration,
    /// How often to call [`Observer::progress`].
    pub progress_interval: Duration,
}

impl WipeConfig {
    pub fn new(plan: WipePlan, key: StreamKey, sample_seed: u64) -> Self {
        Self {
            plan,
            key,
            sample_seed,
            chunk_size: 1 << 20,
            depth: 4,
            retries: 2,
            checkpoint_interval: Duration::from_secs(5),
            progress_interval: Duration::from_millis(250),
        }
    }
}

/// What the engine is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum Phase {
    Writing { pass: usize, passes: usize },
    Verifying,
}

/// A progress report; bytes are counted within the phase and for the whole job.
///
/// Both count what the *job* has done, not only this run: after a resume
/// from a checkpoint at pass 2, byte N, the first report already says
/// `phase_done >= N` and `job_done >= 1 × size + N`, so a progress bar
/// continues where the stopped run left it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Progress {
    #[serde(flatten)]
    pub phase: Phase,
    /// Bytes of this phase done (a write pass: of the device; verifying: of
    /// the ranges read back).
    pub phase_done: u64,
    pub phase_total: u64,
    /// Bytes of the whole job done: every pass written, then verified.
    pub job_done: u64,
    pub job_total: u64,
    pub failed_bytes: u64,
}

/// The engine's link to its caller: progress display, persistence and Ctrl-C.
pub trait Observer: Sync {
    fn progress(&self, _p: &Progress) {}
    /// Persist a checkpoint. Called only after a successful device flush, so
    /// everything it claims is on the medium. An error stops the job.
    fn checkpoint(&self, _cp: Checkpoint, _write_failures: &RangeSet) -> Result<(), String> {
        Ok(())
    }
    /// Polled between chunks; `true` stops the job cleanly (Ctrl-C).
    fn stop_requested(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
impl Observer for () {}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndState {
    /// All passes written and the verification (if any) performed.
    Completed,
    /// Stopped on request; `checkpoint` is where `--resume` continues.
    Stopped { checkpoint: Checkpoint },
    /// A fatal error (device gone, I/O setup error): the job cannot finish.
    Aborted {
        reason: String,
        checkpoint: Checkpoint,
    },
}

/// Everything a report or certificate needs to know about a run.
#[derive(Debug, Clone)]
pub struct WipeOutcome {
    pub end: EndState,
    pub verify: VerifyMode,
    /// Ranges that could not be written, even after retries.
    pub write_failures: RangeSet,
    /// Ranges that could not be read back or held the wrong bytes.
    pub verify_failures: RangeSet,
    /// Ranges that were read back (the verification coverage).
    pub verified: RangeSet,
    pub bytes_written: u64,
    pub bytes_verified: u64,
    pub retries: u64,
    /// Wall time spent writing (all passes, including flushes).
    pub write_time: Duration,
    /// Wall time spent reading back.
    pub verify_time: Duration,
}

impl WipeOutcome {
    /// Pass only when every pass completed, nothing failed, and the result was
    /// actually read back. An unverified wipe is never a pass.
    pub fn verdict(&self) -> Verdict {
        match self.end {
            EndState::Stopped { .. } => Verdict::Incomplete,
            EndState::Aborted { .. } => Verdict::Fail,
            EndState::Completed => {
                let verified = self.verify != VerifyMode::Off && self.bytes_verified > 0;
                if verified && self.write_failures.is_empty() && self.verify_failures.is_empty() {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                }
            }
        }
    }

    /// Human explanations of why the verdict is not a pass.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.end {
            EndState::Stopped { .. } => out.push("stopped before the end; resumable".into()),
            EndState::Aborted { reason, .. } => out.push(format!("aborted: {reason}")),
            EndState::Completed => {}
        }
        if !self.write_failures.is_empty() {
            out.push(format!(
                "{} bytes in {} range(s) could not be written",
                self.write_failures.total(),
                self.write_failures.len()
            ));
        }
        if !self.verify_failures.is_empty() {
            out.push(format!(
                "{} bytes in {} range(s) failed verification",
                self.verify_failures.total(),
                self.verify_failures.len()
            ));
        }
        if self.end == EndState::Completed && self.verify == VerifyMode::Off {
            out.push("verification was turned off: the overwrite is not verified, so it cannot be certified".into());
        }
        out
    }

    /// Every failed range, write and verify together.
    pub fn failed_ranges(&self) -> RangeSet {
        let mut all = self.write_failures.clone();
        all.extend(&self.verify_failures);
        all
    }
}

/// Shared state of one run.
struct Run<'a> {
    dev: &'a dyn BlockDevice,
    cfg: &'a WipeConfig,
    obs: &'a dyn Observer,
    sector: u64,
    size: u64,
    write_failures: Mutex<RangeSet>,
    verify_failures: Mutex<RangeSet>,
    bytes_written: AtomicU64,
    bytes_verified: AtomicU64,
    retries: AtomicU64,
    job_done: AtomicU64,
    job_total: u64,
    stop: AtomicBool,
    fatal: Mutex<Option<String>>,
    times: Mutex<(Duration, Duration)>,
}

enum PhaseEnd {
    Finished,
    Stopped,
    Fatal(String),
}

/// Run (or resume from `start`) the plan of `cfg` on `dev`.
///
/// `prior_write_failures` carries the failures of earlier runs of the same job
/// so that a resumed job still fails for them.
pub fn run(
    dev: &dyn BlockDevice,
    cfg: &WipeConfig,
    start: Checkpoint,
    prior_write_failures: RangeSet,
    obs: &dyn Observer,
) -> WipeOutcome {
    let geo = dev.geometry();
    let size = geo.size_bytes;
    let passes = cfg.plan.passes.len();
    let verify_ranges = match cfg.plan.verify {
        VerifyMode::Full => {
            let mut r = RangeSet::new();
            r.insert(0, size);
            r
        }
        VerifyMode::Sample { ppm } => {
            let align = u64::from(geo.logical_sector).max(4096);
            sample_plan(size, align, ppm, cfg.sample_seed)
        }
        VerifyMode::Off => RangeSet::new(),
    };
    let (first_pass, first_offset) = match start {
        Checkpoint::Writing { pass, offset } => (pass.min(passes), offset.min(size)),
        Checkpoint::Verifying | Checkpoint::Done => (passes, 0),
    };
    // Progress counts the whole job, so a resumed run starts from what
    // earlier runs already did, not from zero.
    let done_before = first_pass as u64 * size + if first_pass < passes { first_offset } else { 0 };
    let run = Run {
        dev,
        cfg,
        obs,
        sector: u64::from(geo.logical_sector.max(1)),
        size,
        write_failures: Mutex::new(prior_write_failures),
        verify_failures: Mutex::new(RangeSet::new()),
        bytes_written: AtomicU64::new(0),
        bytes_verified: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        job_done: AtomicU64::new(done_before),
        job_total: passes as u64 * size + verify_ranges.total(),
        stop: AtomicBool::new(false),
        fatal: Mutex::new(None),
        times: Mutex::new((Duration::ZERO, Duration::ZERO)),
    };
    let end = run.execute(first_pass, first_offset, &verify_ranges);
    WipeOutcome {
        end,
        verify: cfg.plan.verify,
        write_failures: take(&run.write_failures),
        verify_failures: take(&run.verify_failures),
        verified: if run.bytes_verified.load(Ordering::Relaxed) > 0 {
            verify_ranges
        } else {
            RangeSet::new()
        },
        bytes_written: run.bytes_written.load(Ordering::Relaxed),
        bytes_verified: run.bytes_verified.load(Ordering::Relaxed),
        retries: run.retries.load(Ordering::Relaxed),
        write_time: run.times.lock().map(|t| t.0).unwrap_or_default(),
        verify_time: run.times.lock().map(|t| t.1).unwrap_or_default(),
    }
}

fn take(m: &Mutex<RangeSet>) -> RangeSet {
    std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner()))
}

fn lock(m: &Mutex<RangeSet>) -> std::sync::MutexGuard<'_, RangeSet> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Run<'_> {
    fn execute(&self, first_pass: usize, first_offset: u64, verify_ranges: &RangeSet) -> EndState {
        let started = Instant::now();
        let end = self.write_passes(first_pass, first_offset);
        self.add_time(started.elapsed(), Duration::ZERO);
        if let Some(end) = end {
            return end;
        }
        let started = Instant::now();
        let end = self.verify(verify_ranges);
        self.add_time(Duration::ZERO, started.elapsed());
        end
    }

    fn add_time(&self, write: Duration, verify: Duration) {
        if let Ok(mut t) = self.times.lock() {
            t.0 += write;
            t.1 += verify;
        }
    }

    /// Write every remaining pass; `Some(end)` when the run ends early.
    fn write_passes(&self, first_pass: usize, first_offset: u64) -> Option<EndState> {
        let passes = self.cfg.plan.passes.len();
        for pass in first_pass..passes {
            let from = if pass == first_pass { first_offset } else { 0 };
            let stream = PatternStream::new(self.cfg.plan.passes[pass], pass, &self.cfg.key);
            let tracker = ChunkTracker::new([(from, self.size - from)], self.cfg.chunk_size as u64);
            let phase = Phase::Writing { pass, passes };
            let end = self.run_phase(&tracker, (from, self.size), phase, |chunk, bufs| {
                self.write_chunk(&stream, chunk, bufs)
            });
            match end {
                PhaseEnd::Finished => {}
                PhaseEnd::Stopped => {
                    let cp = Checkpoint::Writing {
                        pass,
                        offset: tracker.watermark(),
                    };
                    return Some(match self.persist(cp) {
                        Ok(()) => EndState::Stopped { checkpoint: cp },
                        Err(reason) => EndState::Aborted {
                            reason,
                            checkpoint: cp,
                        },
                    });
                }
                PhaseEnd::Fatal(reason) => {
                    let checkpoint = Checkpoint::Writing { pass, offset: from };
                    return Some(EndState::Aborted { reason, checkpoint });
                }
            }
            let next = Checkpoint::Writing {
                pass: pass + 1,
                offset: 0,
            };
            if let Err(reason) = self.persist(next) {
                return Some(EndState::Aborted {
                    reason,
                    checkpoint: next,
                });
            }
        }
        if let Err(reason) = self.persist(Checkpoint::Verifying) {
            return Some(EndState::Aborted {
                reason,
                checkpoint: Checkpoint::Verifying,
            });
        }
        None
    }

    /// Read back `verify_ranges` and compare them with the final pass.
    fn verify(&self, verify_ranges: &RangeSet) -> EndState {
        if self.cfg.plan.verify != VerifyMode::Off {
            let last = self.cfg.plan.final_pass_index();
            let stream = PatternStream::new(self.cfg.plan.final_pattern(), last, &self.cfg.key);
            let tracker = ChunkTracker::new(
                verify_ranges.iter().map(|r| (r.offset, r.length)),
                self.cfg.chunk_size as u64,
            );
            let end = self.run_phase(
                &tracker,
                (0, verify_ranges.total()),
                Phase::Verifying,
                |chunk, bufs| self.verify_chunk(&stream, chunk, bufs),
            );
            match end {
                PhaseEnd::Finished => {}
                PhaseEnd::Stopped => {
                    return EndState::Stopped {
                        checkpoint: Checkpoint::Verifying,
                    }
                }
                PhaseEnd::Fatal(reason) => {
                    return EndState::Aborted {
                        reason,
                        checkpoint: Checkpoint::Verifying,
                    }
                }
            }
        }
        EndState::Completed
    }

    /// Flush the device, then record the checkpoint.
    fn persist(&self, cp: Checkpoint) -> Result<(), String> {
        self.dev.flush().map_err(|e| format!("flush failed: {e}"))?;
        let failures = lock(&self.write_failures).clone();
        self.obs
            .checkpoint(cp, &failures)
            .map_err(|e| format!("could not record checkpoint: {e}"))
    }

    fn failed_bytes(&self) -> u64 {
        lock(&self.write_failures).total() + lock(&self.verify_failures).total()
    }

    /// Run `work` over every chunk of `tracker` on `depth` threads, while this
    /// thread reports progress, checkpoints writes and watches for Ctrl-C.
    /// `(done, total)`: the phase's size, and how much of it earlier runs did.
    fn run_phase<F>(
        &self,
        tracker: &ChunkTracker,
        (done, total): (u64, u64),
        phase: Phase,
        work: F,
    ) -> PhaseEnd
    where
        F: Fn(Chunk, &mut Buffers) -> Result<(), IoFault> + Sync,
    {
        // A stop asked for before the phase starts writes nothing more.
        if self.obs.stop_requested() {
            self.stop.store(true, Ordering::Relaxed);
        }
        let phase_done = AtomicU64::new(done);
        let (tx, rx) = mpsc::channel::<()>();
        let depth = self.cfg.depth.max(1);
        std::thread::scope(|s| {
            for _ in 0..depth {
                let tx = tx.clone();
                let work = &work;
                let phase_done = &phase_done;
                s.spawn(move || {
                    let mut bufs = Buffers::new(self.cfg.chunk_size);
                    while !self.stop.load(Ordering::Relaxed) {
                        let Some(chunk) = tracker.take() else { break };
                        if let Err(e) = work(chunk, &mut bufs) {
                            // Marked failed, never done: no checkpoint may
                            // claim this chunk, even one the coordinating
                            // thread takes before it sees the stop.
                            tracker.failed(chunk);
                            *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(e.to_string());
                            self.stop.store(true, Ordering::Relaxed);
                            break;
                        }
                        tracker.done(chunk);
                        phase_done.fetch_add(chunk.len as u64, Ordering::Relaxed);
                        self.job_done.fetch_add(chunk.len as u64, Ordering::Relaxed);
                    }
                    drop(tx);
                });
            }
            drop(tx);
            let mut last_checkpoint = Instant::now();
            let report = || {
                self.obs.progress(&Progress {
                    phase,
                    phase_done: phase_done.load(Ordering::Relaxed),
                    phase_total: total,
                    job_done: self.job_done.load(Ordering::Relaxed),
                    job_total: self.job_total,
                    failed_bytes: self.failed_bytes(),
                })
            };
            loop {
                match rx.recv_timeout(self.cfg.progress_interval) {
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                }
                report();
                if self.obs.stop_requested() {
                    self.stop.store(true, Ordering::Relaxed);
                }
                if let Phase::Writing { pass, .. } = phase {
                    if last_checkpoint.elapsed() >= self.cfg.checkpoint_interval
                        && !self.stop.load(Ordering::Relaxed)
                    {
                        let cp = Checkpoint::Writing {
                            pass,
                            offset: tracker.watermark(),
                        };
                        if let Err(e) = self.persist(cp) {
                            *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                            self.stop.store(true, Ordering::Relaxed);
                        }
                        last_checkpoint = Instant::now();
                    }
                }
            }
            report();
        });
        if let Some(reason) = self.fatal.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return PhaseEnd::Fatal(reason);
        }
        if self.stop.load(Ordering::Relaxed) {
            return PhaseEnd::Stopped;
        }
        PhaseEnd::Finished
    }

    fn write_chunk(
        &self,
        stream: &PatternStream,
        chunk: Chunk,
        bufs: &mut Buffers,
    ) -> Result<(), IoFault> {
        bufs.prepare(stream, chunk);
        self.write_resilient(&bufs.data[..chunk.len], chunk.offset, true)
    }

    /// Write with retries; on persistent media errors bisect down to single
    /// sectors and record exactly those that cannot be written.
    fn write_resilient(&self, data: &[u8], offset: u64, top: bool) -> Result<(), IoFault> {
        let len = data.len() as u64;
        let single = len <= self.sector;
        let attempts = if top || single {
            1 + self.cfg.retries
        } else {
            1
        };
        let mut last = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.retries.fetch_add(1, Ordering::Relaxed);
            }
            match self.dev.write_at(data, offset) {
                Ok(()) => {
                    self.bytes_written.fetch_add(len, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if e.is_media() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        if single {
            debug_assert!(last.is_some());
            lock(&self.write_failures).insert(offset, len);
            return Ok(());
        }
        let half = (len / 2).div_ceil(self.sector) * self.sector;
        let (a, b) = data.split_at(half as usize);
        self.write_resilient(a, offset, false)?;
        self.write_resilient(b, offset + half, false)
    }

    fn verify_chunk(
        &self,
        stream: &PatternStream,
        chunk: Chunk,
        bufs: &mut Buffers,
    ) -> Result<(), IoFault> {
        bufs.prepare(stream, chunk);
        if bufs.read.len() < chunk.len {
            bufs.read = io_buf(self.cfg.chunk_size.max(chunk.len));
        }
        let read = &mut bufs.read[..chunk.len];
        self.read_resilient(read, chunk.offset, true)?;
        let expected = &bufs.data[..chunk.len];
        let read = &bufs.read[..chunk.len];
        if read != expected {
            let sector = self.sector as usize;
            let mut failures = lock(&self.verify_failures);
            for (i, (got, want)) in read.chunks(sector).zip(expected.chunks(sector)).enumerate() {
                if got != want {
                    failures.insert(chunk.offset + (i * sector) as u64, got.len() as u64);
                }
            }
        }
        self.bytes_verified
            .fetch_add(chunk.len as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Read with retries and bisection; unreadable sectors are recorded as
    /// verification failures.
    fn read_resilient(&self, buf: &mut [u8], offset: u64, top: bool) -> Result<(), IoFault> {
        let len = buf.len() as u64;
        let single = len <= self.sector;
        let attempts = if top || single {
            1 + self.cfg.retries
        } else {
            1
        };
        for attempt in 0..attempts {
            if attempt > 0 {
                self.retries.fetch_add(1, Ordering::Relaxed);
            }
            match self.dev.read_at(buf, offset) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_media() => {}
                Err(e) => return Err(e),
            }
        }
        if single {
            lock(&self.verify_failures).insert(offset, len);
            return Ok(());
        }
        let half = (len / 2).div_ceil(self.sector) * self.sector;
        let (a, b) = buf.split_at_mut(half as usize);
        self.read_resilient(a, offset, false)?;
        self.read_resilient(b, offset + half, false)
    }
}

/// Per-worker aligned buffers, reused for every chunk.
struct Buffers {
    data: IoBuf,
    read: IoBuf,
    /// The fixed pattern `data` currently holds in full, if any.
    filled_with: Option<lethe_core::pattern::Pattern>,
}

impl Buffers {
    fn new(chunk: usize) -> Self {
        Self {
            data: io_buf(chunk),
            // Only verification reads; an empty buffer costs nothing until then.
            read: IoBuf::new(4096),
            filled_with: None,
        }
    }

    /// Put the bytes `chunk` must hold into `data[..chunk.len]`. A fixed
    /// pattern fills the whole buffer once per worker and phase.
    fn prepare(&mut self, stream: &PatternStream, chunk: Chunk) {
        if stream.is_constant() {
            if self.filled_with != Some(stream.pattern()) {
                stream.fill(&mut self.data, 0);
                self.filled_with = Some(stream.pattern());
            }
        } else {
            stream.fill(&mut self.data[..chunk.len], chunk.offset);
            self.filled_with = None;
        }
    }
}
