//! The state directory, the preflight that proves it can take a job's
//! record and documents, and small facts about this host and process.
//!
//! Layout under the state directory (`/var/lib/lethe` by default):
//! - `lethe.db`: the SQLite job store;
//! - `keys/appliance.key` (0600) and `keys/appliance.pub`: the signing key;
//! - `certificates/<id>.json` and `.pdf`: issued certificates and reports;
//! - `.reserve-<job>`: a job's space reservation while it runs (see [`StateDir::preflight`]).

use crate::refusal::Refusal;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const DEFAULT_STATE_DIR: &str = "/var/lib/lethe";

/// Space set aside for a job's certificate or report (signed JSON and PDF)
/// before its device is opened. Measured documents are far smaller (tens of
/// KiB); the margin covers long event histories and failed-range lists.
pub const DOCUMENT_RESERVE: u64 = 4 << 20;

/// Free space the job store needs beside the reservation: checkpoints,
/// events and SQLite's write-ahead log (which grows to ~4 MiB before it is
/// checkpointed).
pub const DATABASE_MARGIN: u64 = 8 << 20;

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

    /// Prove, before a device is touched, that the state directory can take
    /// the job: it is writable, [`DOCUMENT_RESERVE`] bytes are written and
    /// synced to a reservation file (released just before the document is
    /// written), and [`DATABASE_MARGIN`] bytes remain free beside it.
    pub fn preflight(&self, job: &str) -> Result<Reservation, Refusal> {
        let refuse = |why: String| Refusal::StateDir {
            path: self.root.display().to_string(),
            why,
        };
        std::fs::create_dir_all(&self.root)
            .map_err(|e| refuse(format!("cannot create it: {e}")))?;
        let space = lethe_linux::fsinfo::space(&self.root)
            .map_err(|e| refuse(format!("cannot read its free space: {e}")))?;
        if space.read_only {
            return Err(refuse("it is on a read-only filesystem".into()));
        }
        let path = self.root.join(format!(".reserve-{job}"));
        let r = Reservation { path: Some(path) };
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(r.path())?;
            let block = vec![0u8; 1 << 20];
            let mut left = DOCUMENT_RESERVE;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                f.write_all(&block[..n])?;
                left -= n as u64;
            }
            f.sync_all()
        };
        write().map_err(|e| {
            refuse(format!(
                "cannot reserve {} KiB for the job's certificate: {e}",
                DOCUMENT_RESERVE >> 10
            ))
        })?;
        let after = lethe_linux::fsinfo::space(&self.root)
            .map_err(|e| refuse(format!("cannot read its free space: {e}")))?;
        if after.available < DATABASE_MARGIN {
            return Err(refuse(format!(
                "only {} KiB free besides the job's reservation; a job needs {} KiB for its records",
                after.available >> 10,
                DATABASE_MARGIN >> 10
            )));
        }
        Ok(r)
    }
}

/// Space held for a job's document. Released (deleted) right before the
/// document is written, or when dropped.
#[derive(Debug)]
pub struct Reservation {
    path: Option<PathBuf>,
}

impl Reservation {
    fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Give the space back for the document that is about to be written.
    pub fn release(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

/// Identifies this boot, so a pid from before a reboot is never taken as alive.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether process `pid` of boot `boot` still exists. Pids are reused, so
/// this only speeds up finding a crashed owner: the lease's expiry decides
/// in the end (a reused pid keeps a dead job "running" only until then).
pub fn process_alive(pid: u32, boot: &str) -> bool {
    boot == boot_id() && Path::new(&format!("/proc/{pid}")).exists()
}

/// The name of this host, for certificates.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Random bytes from the operating system.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| format!("OS random generator: {e}"))?;
    Ok(b)
}

/// A new job id: time-ordered and unique, e.g. `wipe-20261123T140501Z-3fa9c2b1`.
pub fn new_job_id(kind: &str, unix_now: i64) -> String {
    // If the OS RNG fails, the pid and a counter still separate jobs.
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let r = random::<4>().unwrap_or_else(|_| {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (std::process::id() ^ n.rotate_left(16)).to_le_bytes()
    });
    format!(
        "{kind}-{}-{}",
        lethe_core::timefmt::compact_utc(unix_now),
        hex::encode(r)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// safeguard: rule:record-before-write
    #[test]
    fn job_ids_are_unique_and_shaped() {
        let a = new_job_id("wipe", 0);
        let b = new_job_id("wipe", 0);
        assert_ne!(a, b);
        assert!(
            a.starts_with("wipe-19700101T000000Z-")
                && a.len() == "wipe-20261123T140501Z-3fa9c2b1".len(),
            "{a}"
        );
    }

    #[test]
    fn this_process_is_alive_only_for_this_boot() {
        assert!(process_alive(std::process::id(), &boot_id()));
        assert!(!process_alive(u32::MAX - 1, &boot_id()));
        assert!(!process_alive(std::process::id(), "another-boot"));
    }

    /// safeguard: rule:record-before-write
    #[test]
    fn preflight_reserves_space_and_releases_it() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::new(d.path().join("state"));
        let mut r = s.preflight("job-1").unwrap();
        let file = d.path().join("state/.reserve-job-1");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), DOCUMENT_RESERVE);
        r.release();
        assert!(!file.exists());
        drop(s.preflight("job-2").unwrap());
        assert!(!d.path().join("state/.reserve-job-2").exists());
    }

    /// safeguard: rule:record-before-write
    #[test]
    fn an_unusable_state_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let e = StateDir::new(file.join("sub")).preflight("j").unwrap_err();
        assert!(matches!(e, Refusal::StateDir { .. }), "{e}");
        assert!(e.to_string().ends_with("nothing was written"), "{e}");
    }
}
