//! The front-panel firmware booted in QEMU (`qemu-system-arm -M mps2-an386`),
//! with its UART on a pty, for tests that drive it like the real board.
//!
//! Pin activity comes from QEMU's own record, not from the firmware: the board
//! runs with `-msg timestamp=on -trace memory_region_ops_write`, so every MMIO
//! write the guest makes is logged with the host's wall-clock time, e.g.
//!
//! ```text
//! 1186@1796341788.576143:memory_region_ops_write cpu 0 mr 0x… addr 0x40010004 value 0x1 size 4 name 'cmsdk-ahb-gpio'
//! ```
//!
//! `0x40010004` is GPIO0 DATAOUT, bit 0 the relay (QEMU does not model the GPIO
//! block, but the write is still traced). The FPGAIO LEDs also show as
//! `led_change_intensity`, and the watchdog's reset as `watchdog_perform_action`
//! followed by the devices' reset events (`cmsdk_apb_watchdog_reset`).
//! `cmsdk_apb_uart_tx_pending` marks a transmit the host did not drain.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// GPIO0 DATAOUT, whose bit 0 drives the relay.
pub const RELAY_REG: &str = "addr 0x40010004 ";
/// The CMSDK dual timer 1 interrupt-clear register (written by the pulse-limit interrupt first).
pub const PULSE_INTCLR_REG: &str = "addr 0x4000200c ";
/// The trace event QEMU logs when the watchdog resets the machine.
pub const WATCHDOG_ACTION: &str = "watchdog_perform_action";
/// The trace event QEMU logs when a guest transmit waits for the host to drain the pty.
pub const TX_PENDING: &str = "cmsdk_apb_uart_tx_pending";

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

/// Build (once per test binary) the simulation board image (`sim-inputs`: inputs settable and
/// faults injectable over the link), or take `LETHE_FW_ELF`. Built into `LETHE_FW_TARGET_DIR`
/// (default `firmware/target`).
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
/// threads can starve the link long enough for the firmware's 500 ms link
/// timeout to (correctly) drop the relay.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A line of QEMU's trace with its host timestamp (seconds since the epoch).
#[derive(Debug, Clone)]
pub struct Traced<'a> {
    /// Host wall-clock time of the event.
    pub t: f64,
    /// The rest of the line after `PID@TIME:`.
    pub what: &'a str,
}

/// Parse `PID@SEC.USEC:rest` trace lines; other lines are skipped.
pub fn traced(log: &str) -> impl Iterator<Item = Traced<'_>> {
    log.lines().filter_map(|l| {
        let (_, rest) = l.split_once('@')?;
        let (t, what) = rest.split_once(':')?;
        Some(Traced {
            t: t.parse().ok()?,
            what,
        })
    })
}

/// The value of a `memory_region_ops_write` line (`value 0x…`).
fn written_value(what: &str) -> Option<u32> {
    let v = what.split(" value 0x").nth(1)?.split(' ').next()?;
    u32::from_str_radix(v, 16).ok()
}

/// Every write to the relay register in `log`: (host time, relay bit).
pub fn relay_writes(log: &str) -> Vec<(f64, bool)> {
    traced(log)
        .filter(|e| e.what.starts_with("memory_region_ops_write") && e.what.contains(RELAY_REG))
        .filter_map(|e| Some((e.t, written_value(e.what)? & 1 == 1)))
        .collect()
}

/// The relay's level changes in `log` (the relay is off before the first write).
pub fn relay_edges(log: &str) -> Vec<(f64, bool)> {
    let mut level = false;
    let mut edges = Vec::new();
    for (t, on) in relay_writes(log) {
        if on != level {
            edges.push((t, on));
            level = on;
        }
    }
    edges
}

/// The energized intervals in `log` as (on, off) host times; an interval still open at the end
/// of the log has no off time.
pub fn relay_pulses(log: &str) -> Vec<(f64, Option<f64>)> {
    let mut pulses = Vec::new();
    for (t, on) in relay_edges(log) {
        if on {
            pulses.push((t, None));
        } else if let Some(last) = pulses.last_mut() {
            last.1 = Some(t);
        }
    }
    pulses
}

/// Host times of the trace events whose line starts with `event`.
pub fn event_times(log: &str, event: &str) -> Vec<f64> {
    traced(log)
        .filter(|e| e.what.starts_with(event))
        .map(|e| e.t)
        .collect()
}

/// A running emulated board; QEMU is killed in Drop.
pub struct QemuBoard {
    child: Child,
    pty: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl QemuBoard {
    /// Boot `elf` and wait for QEMU to announce the UART's pty. The watchdog's action is set to
    /// `reset` explicitly (it is QEMU's default): its expiry resets the whole machine.
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
                "-action",
                "watchdog=reset",
                "-msg",
                "timestamp=on",
            ])
            .arg("-D")
            .arg(&log)
            .args([
                "-trace",
                "memory_region_ops_write",
                "-trace",
                "led_change_intensity",
                "-trace",
                WATCHDOG_ACTION,
                "-trace",
                "cmsdk_apb_watchdog_reset",
                "-trace",
                TX_PENDING,
                "-kernel",
            ])
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
                    let _ = child.wait();
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

    /// Everything QEMU logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until `event` is in the log after byte `mark`, up to `limit`; its host time.
    pub fn wait_for_event(&self, mark: usize, event: &str, limit: Duration) -> Option<f64> {
        let end = Instant::now() + limit;
        loop {
            let log = self.log();
            if let Some(t) = event_times(log.get(mark..).unwrap_or(""), event)
                .first()
                .copied()
            {
                return Some(t);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for QemuBoard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
10@100.000000:memory_region_ops_write cpu 0 mr 0x1 addr 0x40010004 value 0x0 size 4 name 'cmsdk-ahb-gpio'
10@100.500000:memory_region_ops_write cpu 0 mr 0x1 addr 0x40010004 value 0x1 size 4 name 'cmsdk-ahb-gpio'
10@100.505000:memory_region_ops_write cpu 0 mr 0x1 addr 0x40010004 value 0x1 size 4 name 'cmsdk-ahb-gpio'
10@100.600000:memory_region_ops_write cpu 0 mr 0x2 addr 0x4000200c value 0x1 size 4 name 'cmsdk-apb-dualtimer'
10@102.000000:memory_region_ops_write cpu 0 mr 0x1 addr 0x40010004 value 0x0 size 4 name 'cmsdk-ahb-gpio'
10@103.250000:watchdog_perform_action Watchdog perform action=0
not a trace line
10@104.000000:memory_region_ops_write cpu 0 mr 0x1 addr 0x40010004 value 0x1 size 4 name 'cmsdk-ahb-gpio'
";

    #[test]
    fn parses_relay_edges_pulses_and_events() {
        assert_eq!(relay_writes(LOG).len(), 5);
        assert_eq!(
            relay_edges(LOG),
            [(100.5, true), (102.0, false), (104.0, true)]
        );
        assert_eq!(relay_pulses(LOG), [(100.5, Some(102.0)), (104.0, None)]);
        assert_eq!(event_times(LOG, WATCHDOG_ACTION), [103.25]);
    }
}
