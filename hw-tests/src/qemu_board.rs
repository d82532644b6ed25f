//! The front-panel firmware booted in QEMU (`qemu-system-arm -M mps2-an386`),
//! with its UART on a pty, for tests that drive it like the real board.
//!
//! Pin activity shows in QEMU's log: `-trace led_change_intensity` for the
//! FPGAIO bay LEDs and `-d unimp` for the relay (CMSDK GPIO0 DATAOUT).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The relay output going on, as QEMU logs it.
pub const RELAY_ON: &str =
    "cmsdk-ahb-gpio: unimplemented device write (size 4, offset 0x004, value 0x00000001)";
/// The relay output going off.
pub const RELAY_OFF: &str =
    "cmsdk-ahb-gpio: unimplemented device write (size 4, offset 0x004, value 0x00000000)";

/// The repository root: the nearest ancestor holding `firmware/Cargo.toml`.
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|d| d.join("firmware/Cargo.toml").exists())
        .unwrap_or(here)
        .to_path_buf()
}

/// Why the QEMU board tier cannot run here, if it cannot.
pub fn missing_prereq() -> Option<String> {
    if Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("qemu-system-arm not installed (hw-tests/setup.sh installs it)".into());
    }
    if std::env::var_os("LETHE_FW_ELF").is_some() {
        return None;
    }
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    if !Path::new(&sysroot)
        .join("lib/rustlib/thumbv7em-none-eabihf")
        .exists()
    {
        return Some(
            "rust target thumbv7em-none-eabihf missing (rustup target add thumbv7em-none-eabihf)"
                .into(),
        );
    }
    None
}

/// Build (once per test binary) the board image with simulated inputs, or
/// take `LETHE_FW_ELF`. Built into `LETHE_FW_TARGET_DIR` (default `firmware/target`).
pub fn firmware_elf() -> &'static Result<PathBuf, String> {
    static ELF: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ELF.get_or_init(|| {
        if let Some(p) = std::env::var_os("LETHE_FW_ELF") {
            return Ok(PathBuf::from(p));
        }
        let fw = repo_root().join("firmware");
        let target_dir = std::env::var_os("LETHE_FW_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| fw.join("target"));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(&fw)
            .args([
                "build",
                "--release",
                "-p",
                "lethe-fw-mps2",
                "--target",
                "thumbv7em-none-eabihf",
            ])
            .args(["--features", "sim-inputs"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .output()
            .map_err(|e| format!("cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "firmware build failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(target_dir.join("thumbv7em-none-eabihf/release/lethe-fw-mps2"))
    })
}

/// One board at a time: on a 2-core machine, parallel guests plus the host
/// threads can starve the link long enough for the firmware's 500 ms watchdog
/// to (correctly) drop the relay.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running emulated board; QEMU is killed in Drop.
pub struct QemuBoard {
    child: Child,
    pty: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl QemuBoard {
    /// Boot `elf` and wait for QEMU to announce the UART's pty.
    pub fn boot(elf: &Path) -> std::io::Result<QemuBoard> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("qemu.log");
        let mut child = Command::new("qemu-system-arm")
            .args([
                "-M",
                "mps2-an386",
                "-nographic",
                "-monitor",
                "none",
                "-serial",
                "pty",
            ])
            .args(["-d", "unimp", "-D"])
            .arg(&log)
            .args(["-trace", "led_change_intensity", "-kernel"])
            .arg(elf)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let pty = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(i) = line.find("/dev/pts/") {
                        break line[i..]
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    return Err(std::io::Error::other(
                        "qemu exited before announcing the pty",
                    ));
                }
            }
        };
        // Keep draining stdout so QEMU never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Ok(QemuBoard {
            child,
            pty,
            log,
            _dir: dir,
        })
    }

    /// The pty the firmware's UART0 is connected to.
    pub fn pty(&self) -> &str {
        &self.pty
    }

    /// Everything QEMU logged so far (trace and unimplemented-device writes).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for QemuBoard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
