//! Library side of the `lethe` command: job orchestration and display,
//! kept out of `main.rs` so integration tests can drive a job against any
//! block device.

pub mod certify;
pub mod confirm;
pub mod degauss;
pub mod identity;
pub mod job;
pub mod progress;
pub mod purge_job;
pub mod state;
