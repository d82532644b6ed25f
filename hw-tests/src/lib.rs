//! Hardware-tier test harness.
//!
//! Tests here and in the crates that use this harness run the real code
//! against devices the test itself creates:
//! - loop devices over temporary files ([`LoopDevice`], detached in `Drop`);
//! - QEMU guests and the emulated controller board (see `tests/`);
//! - real drives only when `LETHE_HW_DEVICE` names one AND
//!   `LETHE_HW_I_ACCEPT_DATA_LOSS` equals its serial ([`real_drive`]).
//!
//! A tier whose prerequisites are missing is skipped loudly with [`skip!`],
//! never passed silently. CI runs as root, so the loop tier always runs there.
//!
//! Skips are counted: a test that skips prints a line starting with
//! `SKIPPED:` (or `SKIPPED (opt-in):` for a tier that runs only when an
//! operator asks for it, the real-drive tier). `hw-tests/run-tests.sh` runs
//! the tests with `--show-output`, finds those lines under each test's name,
//! and reports passed, failed and skipped tests in its closing line; with
//! `CI=true` a skipped (not opt-in) test fails the run.

pub mod auditor;
pub mod qemu_board;
pub mod qemu_guest;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The marker a skipping test prints first on a line of its output.
pub const SKIP_MARKER: &str = "SKIPPED:";

/// Print why a test does not run (a countable `SKIPPED:` line) and return from it.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {{
        eprintln!("{} {}", $crate::SKIP_MARKER, format!($($arg)*));
        return;
    }};
}

/// Why the loop tier cannot run here, if it cannot.
pub fn loop_tier_unavailable() -> Option<String> {
    // Read the effective uid from /proc: no libc call needed in the harness.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid_root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !euid_root {
        return Some("loop-device tests need root".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("/dev/loop-control is missing".into());
    }
    if Command::new("losetup").arg("--version").output().is_err() {
        return Some("losetup is not installed (util-linux)".into());
    }
    None
}

/// A loop device over a temporary backing file, detached and deleted on drop.
pub struct LoopDevice {
    path: PathBuf,
    backing: PathBuf,
    sector: u32,
    _dir: Option<tempfile::TempDir>,
}

fn losetup_attach(args: &[&str], backing: &Path) -> std::io::Result<PathBuf> {
    let out = Command::new("losetup").args(args).arg(backing).output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "losetup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

impl LoopDevice {
    /// Create a `size`-byte backing file (on tmpfs when available, for speed)
    /// filled with `fill`, and attach it with the given logical sector size.
    pub fn new(size: u64, sector: u32, fill: u8) -> std::io::Result<Self> {
        let base = if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let dir = tempfile::Builder::new()
            .prefix("lethe-loop-")
            .tempdir_in(base)?;
        let backing = dir.path().join("disk.img");
        write_fill(&backing, size, fill)?;
        let mut l = Self::over(&backing, sector)?;
        l._dir = Some(dir);
        Ok(l)
    }

    /// A loop device over an existing file or block device (a loop stacked on
    /// another loop device, say). The backing stays; the loop is detached on drop.
    pub fn over(backing: &Path, sector: u32) -> std::io::Result<Self> {
        // --partscan so partitions made by tests get their own nodes.
        let path = losetup_attach(
            &[
                "--find",
                "--show",
                "--partscan",
                "--sector-size",
                &sector.to_string(),
            ],
            backing,
        )?;
        Ok(Self {
            path,
            backing: backing.to_path_buf(),
            sector,
            _dir: None,
        })
    }

    /// Detach this node and bind the same node to `file` at once: the device
    /// path stays, the device behind it changes (a drive swapped in its bay).
    /// Fails if another process takes the node in between.
    pub fn rebind(&mut self, file: &Path) -> std::io::Result<()> {
        let st = Command::new("losetup").arg("-d").arg(&self.path).status()?;
        if !st.success() {
            return Err(std::io::Error::other("losetup -d failed"));
        }
        let node = self.path.to_string_lossy().into_owned();
        // The kernel defers the detach while anybody (a blkid or udev probe
        // of some other process) has the node open: the attach then fails
        // with EBUSY until that probe closes it. Poll for it, briefly.
        let mut last = None;
        for _ in 0..50 {
            match losetup_attach(&["--sector-size", &self.sector.to_string(), &node], file) {
                Ok(_) => {
                    self.backing = file.to_path_buf();
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("losetup attach failed")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// SHA-256 of the backing file, to prove that nothing was written.
    pub fn backing_sha256(&self) -> String {
        sha256_file(&self.backing)
    }
}

/// SHA-256 of a file (or a block device), hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path).expect("open file to hash");
    std::io::copy(&mut f, &mut h).expect("hash file");
    hex::encode(h.finalize())
}

/// Write `size` bytes of `fill` to a new file at `path`.
pub fn fill_file(path: &Path, size: u64, fill: u8) -> std::io::Result<()> {
    write_fill(path, size, fill)
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}

fn write_fill(path: &Path, size: u64, fill: u8) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    let block = vec![fill; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

/// A filesystem mounted for a test, unmounted on drop.
pub struct Mount {
    dir: tempfile::TempDir,
}

impl Mount {
    /// Mount `dev` with `-o options` on a fresh temporary directory.
    pub fn new(dev: &Path, options: &str) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let out = Command::new("mount")
            .args(["-o", options])
            .arg(dev)
            .arg(dir.path())
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "mount {}: {}",
                dev.display(),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// `mkfs.ext4 -q -F dev`.
pub fn mkfs_ext4(dev: &Path) -> std::io::Result<()> {
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(dev)
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "mkfs.ext4: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// `e2fsck -fn dev`: whether the (unmounted or read-only) ext4 filesystem checks clean.
pub fn fsck_clean(dev: &Path) -> Result<(), String> {
    let out = Command::new("e2fsck")
        .args(["-f", "-n"])
        .arg(dev)
        .output()
        .map_err(|e| format!("e2fsck: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "e2fsck exit {:?}: {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The whole disk that holds `/`, found from mountinfo and sysfs (never hard-coded).
pub fn root_disk() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let majmin = info.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(4) == Some(&"/")).then(|| f[2].to_string())
    })?;
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{majmin}")).ok()?;
    // A partition's sysfs dir has a `partition` file; its parent is the disk.
    let disk = if sys.join("partition").exists() {
        sys.parent()?.to_path_buf()
    } else {
        sys
    };
    let name = disk.file_name()?.to_string_lossy().to_string();
    let dev = PathBuf::from(format!("/dev/{name}"));
    dev.exists().then_some(dev)
}

/// A real drive named by the operator for destructive tests, if both
/// environment variables agree. Never used in CI.
pub fn real_drive() -> Option<(PathBuf, String)> {
    let dev = std::env::var("LETHE_HW_DEVICE").ok()?;
    let serial = std::env::var("LETHE_HW_I_ACCEPT_DATA_LOSS").ok()?;
    (!serial.is_empty()).then(|| (PathBuf::from(dev), serial))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_device_is_created_and_detached() {
        if let Some(why) = loop_tier_unavailable() {
            skip!("{why}");
        }
        let path;
        {
            let l = LoopDevice::new(1 << 20, 512, 0x5a).unwrap();
            path = l.path().to_path_buf();
            let sys = format!(
                "/sys/block/{}/loop/backing_file",
                path.file_name().unwrap().to_string_lossy()
            );
            let backing = std::fs::read_to_string(sys).unwrap();
            assert_eq!(backing.trim(), l.backing().to_string_lossy());
            assert_eq!(l.backing_sha256().len(), 64);
        }
        let sys = format!(
            "/sys/block/{}/loop/backing_file",
            path.file_name().unwrap().to_string_lossy()
        );
        assert!(
            !Path::new(&sys).exists(),
            "loop device still attached after drop"
        );
    }

    #[test]
    fn root_disk_is_found() {
        // Every Linux machine running this has a root filesystem; in a
        // container without a block-device root there is nothing to find.
        match root_disk() {
            Some(d) => assert!(d.to_string_lossy().starts_with("/dev/")),
            None => skip!("root is not on a block device here"),
        }
    }
}
