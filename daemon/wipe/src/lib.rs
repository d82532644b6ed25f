//! Verified overwrite engine.
//!
//! [`run`] writes the passes of a [`WipePlan`](lethe_core::plan::WipePlan) to
//! any [`BlockDevice`](lethe_core::device::BlockDevice), then reads the result
//! back and compares it with what must be there. It is the same code for a
//! loop device, a real drive and the fault-injecting devices in [`testdev`].
//!
//! How it keeps the drive busy: `depth` worker threads take 4 MiB chunks in
//! order from a shared cursor, generate the chunk's data (an AES-128-CTR
//! keystream can start at any offset, so chunks are independent) and write it
//! with positioned I/O. The coordinating thread reports progress, and every few
//! seconds flushes the device and records a checkpoint below which everything
//! is durable, so a crash loses at most that interval.
//!
//! Media errors are retried, then the chunk is bisected down to single
//! sectors so that exactly the failing sectors are recorded. Any range that
//! was not written or did not verify fails the job: see [`WipeOutcome::verdict`].

mod engine;
mod stream;
pub mod testdev;
mod tracker;

pub use engine::{run, EndState, Observer, Phase, Progress, WipeConfig, WipeOutcome};
pub use stream::{PatternStream, StreamKey};

/// The final judgement of a job, derived from its outcome only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every byte written and the verification read back what was expected.
    Pass,
    /// Something was not written, did not verify, or was never verified.
    Fail,
    /// Stopped before the end (Ctrl-C); resumable.
    Incomplete,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Incomplete => "incomplete",
        })
    }
}
