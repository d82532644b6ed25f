//! The state directory and small facts about this host and process.
//!
//! Layout under the state directory (`/var/lib/lethe` by default):
//! - `lethe.db`: the SQLite job store;
//! - `keys/appliance.key` (0600) and `keys/appliance.pub`: the signing key;
//! - `certificates/<id>.json` and `.pdf`: issued certificates and reports.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub const DEFAULT_STATE_DIR: &str = "/var/lib/lethe";

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    pub fn certificates(&self) -> PathBuf {
        self.root.join("certificates")
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn now_rfc3339() -> String {
    lethe_core::timefmt::rfc3339_utc(unix_now())
}

/// Identifies this boot, so a pid from before a reboot is never taken as alive.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether `pid` is a live lethe process of this boot.
pub fn process_alive(pid: u32, boot: &str) -> bool {
    if boot != boot_id() {
        return false;
    }
    // Pids are reused: also require the process to be a lethe.
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().starts_with("lethe"))
        .unwrap_or(false)
}

/// A new job id: time-ordered and unique, e.g. `wipe-20261123T140501Z-3fa9c2`.
pub fn new_job_id(kind: &str) -> String {
    let mut r = [0u8; 3];
    // If the OS RNG fails, the pid still separates concurrent jobs.
    if getrandom::fill(&mut r).is_err() {
        r = (std::process::id() as u32).to_le_bytes()[..3]
            .try_into()
            .unwrap_or([0; 3]);
    }
    format!(
        "{kind}-{}-{}",
        lethe_core::timefmt::compact_utc(unix_now()),
        hex::encode(r)
    )
}

/// The name of this host, for certificates.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_unique_and_shaped() {
        let a = new_job_id("wipe");
        let b = new_job_id("wipe");
        assert_ne!(a, b);
        assert!(
            a.starts_with("wipe-") && a.len() == "wipe-20261123T140501Z-3fa9c2".len(),
            "{a}"
        );
    }

    #[test]
    fn this_process_is_alive_only_for_this_boot() {
        // The test binary's comm is not "lethe…", so use a pid that cannot exist.
        assert!(!process_alive(u32::MAX - 1, &boot_id()));
        assert!(!process_alive(std::process::id(), "another-boot"));
    }
}
