//! Pure domain logic of Lethe.
//!
//! Nothing in this crate performs I/O or reads the clock: every function is
//! deterministic and tested directly. The Linux layer (`lethe-linux`) and the
//! engines (`lethe-wipe`) feed it plain records and act on its answers.
//!
//! - [`device`]: the narrow [`device::BlockDevice`] trait every storage tier implements.
//! - [`inventory`]: turning sysfs/udev/blkid records into classified drives and protection verdicts.
//! - [`pattern`]: overwrite patterns and their parsing.
//! - [`ranges`]: byte-range sets used for failed and completed regions.
//! - [`sampling`]: the seeded sample plan of a sampled verification.
//! - [`plan`]: a wipe plan (passes, verification) and progress checkpoints.

pub mod device;
pub mod inventory;
pub mod pattern;
pub mod plan;
pub mod ranges;
pub mod sampling;
pub mod timefmt;
