//! End-to-end: the real board firmware (`firmware/board-mps2`, built with `sim-inputs`) booted in
//! `qemu-system-arm -M mps2-an386 -serial pty`, driven by `lethe-controller` over the pty.
//! Pin activity is checked in QEMU's log: `-trace led_change_intensity` for the FPGAIO bay LEDs and
//! `-d unimp` for the relay (CMSDK GPIO0 DATAOUT, unimplemented in QEMU, so every write is logged).
//!
//! Skips loudly when `qemu-system-arm` or the `thumbv7em-none-eabihf` target is missing.
//! Set `LETHE_FW_ELF` to use a prebuilt image; otherwise the test builds it with cargo into
//! `LETHE_FW_TARGET_DIR` (default `firmware/target`).
use lethe_controller::{
    Controller, ControllerConfig, ControllerError, DegausserState, FaultCode, LedPattern, Refusal,
};
use lethe_proto::{encode_frame, Frame, Msg, NakReason, MAX_FRAME};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const RELAY_ON: &str =
    "cmsdk-ahb-gpio: unimplemented device write (size 4, offset 0x004, value 0x00000001)";
const RELAY_OFF: &str =
    "cmsdk-ahb-gpio: unimplemented device write (size 4, offset 0x004, value 0x00000000)";

/// The repository root: the nearest ancestor holding `firmware/Cargo.toml` (so this file works
/// unchanged from `daemon/controller/tests` or `hw-tests/tests`).
fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|d| d.join("firmware/Cargo.toml").exists())
        .unwrap_or(here)
        .to_path_buf()
}

fn missing_prereq() -> Option<String> {
    if Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("qemu-system-arm not installed (apt-get install qemu-system-arm)".into());
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

/// Build (once per test binary) and return the firmware ELF.
fn firmware_elf() -> &'static Result<PathBuf, String> {
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

/// A running QEMU; killed in Drop.
struct Qemu {
    child: Child,
    pty: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Qemu {
    fn boot(elf: &Path) -> Qemu {
        let dir = tempfile::tempdir().unwrap();
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
            .spawn()
            .expect("spawn qemu-system-arm");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let pty = loop {
            let line = lines
                .next()
                .expect("qemu exited before announcing the pty")
                .unwrap();
            if let Some(i) = line.find("/dev/pts/") {
                break line[i..].split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining stdout so QEMU never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Qemu {
            child,
            pty,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn connect(&self) -> Controller {
        Controller::connect(ControllerConfig::new(&self.pty))
            .await
            .expect("connect to firmware")
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One QEMU at a time: on a 2-core CI runner, parallel guests plus the host threads can starve
/// the link long enough for the firmware's 500 ms watchdog to (correctly) drop the relay.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

macro_rules! boot_or_skip {
    ($guard:ident, $q:ident) => {
        if let Some(why) = missing_prereq() {
            eprintln!("SKIPPING firmware QEMU test: {why}");
            return;
        }
        let $guard = ONE_AT_A_TIME.lock().await;
        let $q = match firmware_elf() {
            Ok(elf) => Qemu::boot(elf),
            Err(e) => panic!("{e}"),
        };
    };
}

fn since(log: &str, mark: usize) -> &str {
    log.get(mark..).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_versions_and_leds() {
    boot_or_skip!(_serial, q);
    let c = q.connect().await;
    let fw = c.firmware();
    assert_eq!(fw.protocol, lethe_proto::PROTOCOL_VERSION);
    assert_eq!(fw.version, (0, 1, 0));
    let s = c.status().await.unwrap();
    assert!(!s.relay && s.interlock_closed && !s.estop && s.fault.is_none());
    assert_eq!(s.degausser, DegausserState::Idle);

    let mark = q.log().len();
    c.set_led(0, LedPattern::Success).await.unwrap();
    c.set_led(1, LedPattern::Busy).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let log = q.log();
    let new = since(&log, mark);
    assert!(
        new.contains("'USERLED0' color:green intensity 0% -> 100%"),
        "bay 0 on:\n{new}"
    );
    assert!(
        new.contains("'USERLED1' color:green intensity 0% -> 100%"),
        "bay 1 blinks on:\n{new}"
    );
    assert!(
        new.contains("'USERLED1' color:green intensity 100% -> 0%"),
        "bay 1 blinks off:\n{new}"
    );
    let s = c.status().await.unwrap();
    assert_eq!(
        s.pins & 0b10,
        0b10,
        "pin shadow reports bay 0 LED on: {:#b}",
        s.pins
    );
    assert!(s.uptime_ms >= 1_000, "uptime advances: {}", s.uptime_ms);

    let mark = q.log().len();
    c.set_led(0, LedPattern::Off).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(since(&q.log(), mark).contains("'USERLED0' color:green intensity 100% -> 0%"));
    assert!(matches!(
        c.set_led(7, LedPattern::Busy).await,
        Err(ControllerError::Refused(Refusal::NoSuchBay))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_degauss_cycle_and_relay_in_log() {
    boot_or_skip!(_serial, q);
    let c = q.connect().await;
    let mark = q.log().len();
    let conf = c.degauss_cycle().await.expect("cycle completes");
    assert_eq!(conf.cycle, 1);
    assert_eq!(conf.commanded_ms, 1_500);
    assert!(
        (1_500..1_600).contains(&conf.relay_on_ms),
        "relay on {} ms",
        conf.relay_on_ms
    );
    assert!(conf.interlock_closed_after);
    let log = q.log();
    let new = since(&log, mark);
    let on = new.find(RELAY_ON).expect("relay-on write in the QEMU log");
    assert!(
        new[on..].contains(RELAY_OFF),
        "relay-off write after relay-on"
    );
    let s = c.status().await.unwrap();
    assert!(matches!(
        s.degausser,
        DegausserState::Cooldown | DegausserState::Idle
    ));
    assert!(!s.relay && s.cycles == 1);
    let json = serde_json::to_string(&conf).unwrap();
    assert!(json.contains("\"cycle\":1"), "{json}");
    // Cooldown ends, a second cycle gets the next number.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(c.degauss_cycle().await.unwrap().cycle, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_drops_when_heartbeats_stop() {
    boot_or_skip!(_serial, q);
    let c = q.connect().await;
    let (nonce, _) = c.arm().await.unwrap();
    c.fire(nonce).await.unwrap();
    assert!(c.status().await.unwrap().relay);
    c.pause_heartbeats(true);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let log = q.log();
    let on = log.rfind(RELAY_ON).expect("relay went on");
    assert!(
        log[on..].contains(RELAY_OFF),
        "relay dropped without heartbeats:\n{}",
        &log[on..]
    );
    let s = c.status().await.unwrap();
    assert!(!s.relay);
    assert_eq!(s.fault, Some(FaultCode::LinkLost));
    assert_eq!(s.cycles, 0, "an interrupted cycle is not counted");
    c.pause_heartbeats(false);
    c.clear_fault().await.unwrap();
    assert_eq!(c.status().await.unwrap().degausser, DegausserState::Idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_refusals() {
    boot_or_skip!(_serial, q);
    let c = q.connect().await;
    assert!(matches!(
        c.fire(0x1234).await,
        Err(ControllerError::Refused(Refusal::NotArmed))
    ));
    let (nonce, expiry) = c.arm().await.unwrap();
    assert_eq!(expiry, 5_000);
    assert!(matches!(
        c.fire(nonce ^ 1).await,
        Err(ControllerError::Refused(Refusal::BadNonce))
    ));
    tokio::time::sleep(Duration::from_millis(5_200)).await;
    assert!(matches!(
        c.fire(nonce).await,
        Err(ControllerError::Refused(Refusal::ArmExpired))
    ));

    // Interlock: simulated door input (sim-inputs build only; QEMU cannot drive GPIO inputs).
    let (nonce, _) = c.arm().await.unwrap();
    c.sim_inputs(true, false).await.unwrap();
    assert!(matches!(
        c.fire(nonce).await,
        Err(ControllerError::Refused(Refusal::InterlockOpen))
    ));
    assert!(matches!(
        c.arm().await,
        Err(ControllerError::Refused(Refusal::InterlockOpen))
    ));
    let s = c.status().await.unwrap();
    assert!(!s.interlock_closed && !s.relay);
    assert!(!q.log().contains(RELAY_ON), "relay never energized");

    // Door opening mid-cycle drops the relay and latches a fault.
    c.sim_inputs(false, false).await.unwrap();
    let (nonce, _) = c.arm().await.unwrap();
    c.fire(nonce).await.unwrap();
    c.sim_inputs(true, false).await.unwrap();
    let s = c.status().await.unwrap();
    assert!(!s.relay);
    assert_eq!(s.fault, Some(FaultCode::InterlockOpened));
    let log = q.log();
    let on = log.find(RELAY_ON).unwrap();
    assert!(log[on..].contains(RELAY_OFF));
    // E-stop overrides too.
    c.sim_inputs(false, true).await.unwrap();
    assert!(c.status().await.unwrap().estop);
    assert!(matches!(
        c.clear_fault().await,
        Err(ControllerError::Refused(Refusal::EStop))
    ));
    c.sim_inputs(false, false).await.unwrap();
    c.clear_fault().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_frames_get_naks() {
    boot_or_skip!(_serial, q);
    let c = q.connect().await;
    c.pause_heartbeats(true);
    let wait = Duration::from_millis(300);
    let naks = c
        .raw_exchange(&[0x13, 0x37, 0x42, 0x00], wait)
        .await
        .unwrap();
    assert_eq!(
        naks,
        [Frame {
            seq: 0,
            msg: Msg::Nak(NakReason::Malformed)
        }]
    );

    let mut buf = [0u8; MAX_FRAME];
    let n = encode_frame(
        &Frame {
            seq: 200,
            msg: Msg::GetStatus,
        },
        &mut buf,
    )
    .unwrap();
    let mut cut = buf[..n - 3].to_vec();
    cut.push(0);
    let naks = c.raw_exchange(&cut, wait).await.unwrap();
    assert_eq!(naks.len(), 1, "{naks:?}");
    assert!(matches!(
        naks[0].msg,
        Msg::Nak(NakReason::Crc | NakReason::Malformed)
    ));

    let mut flipped = buf[..n].to_vec();
    flipped[2] ^= 0x40;
    let naks = c.raw_exchange(&flipped, wait).await.unwrap();
    assert!(
        matches!(
            naks[..],
            [Frame {
                seq: 0,
                msg: Msg::Nak(_)
            }]
        ),
        "{naks:?}"
    );

    let long = vec![0x55u8; 500];
    let mut long = long.clone();
    long.push(0);
    let naks = c
        .raw_exchange(&long, Duration::from_millis(800))
        .await
        .unwrap();
    assert_eq!(
        naks,
        [Frame {
            seq: 0,
            msg: Msg::Nak(NakReason::Overflow)
        }]
    );

    c.pause_heartbeats(false);
    let s = c.status().await.expect("firmware still answers");
    assert!(s.fault.is_none() && !s.relay);
}
