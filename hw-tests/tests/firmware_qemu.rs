//! End-to-end: the real board firmware (`firmware/board-mps2`, simulation build) booted in
//! `qemu-system-arm -M mps2-an386 -serial pty`, driven by `lethe-controller` (or raw frames) over
//! the pty. Relay timings are taken from QEMU's own record of the GPIO writes, with host
//! timestamps (`-msg timestamp=on -trace memory_region_ops_write`), never from the firmware's clock.
//!
//! Skips loudly when `qemu-system-arm` or the `thumbv7em-none-eabihf` target is missing.
//! Set `LETHE_FW_ELF` to use a prebuilt image; otherwise the test builds it with cargo into
//! `LETHE_FW_TARGET_DIR` (default `firmware/target`).
use lethe_controller::{
    BuildKind, Consent, Controller, ControllerConfig, ControllerError, DegausserState, FaultCode,
    LedPattern, Refusal, ResetCause, SimContact, SimFault, SimInputs,
};
use lethe_proto::{encode_frame, Frame, FrameDecoder, Msg, NakReason, MAX_FRAME};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use lethe_hw_tests::qemu_board::{
    event_times, firmware_elf, missing_prereq, relay_pulses, relay_writes, traced, QemuBoard,
    PULSE_INTCLR_REG, TX_PENDING, WATCHDOG_ACTION,
};

/// The firmware's constants (lethe-fw-logic `Config::default()` and the board's watchdog).
const FIRE_MS: f64 = 1_500.0;
const PULSE_LIMIT_MS: f64 = 1_520.0;
const WATCHDOG_MS: f64 = 1_000.0;

/// The shared board harness plus the controller connection these tests use.
struct Qemu(QemuBoard);

impl Qemu {
    fn boot(elf: &Path) -> Qemu {
        Qemu(QemuBoard::boot(elf).expect("boot qemu-system-arm"))
    }

    fn log(&self) -> String {
        self.0.log()
    }

    fn mark(&self) -> usize {
        self.log().len()
    }

    fn since(&self, mark: usize) -> String {
        self.log().get(mark..).unwrap_or("").to_owned()
    }

    /// A test host: allowed to fire this simulation build.
    async fn connect(&self) -> Controller {
        let mut cfg = ControllerConfig::new(self.0.pty());
        cfg.allow_simulation = true;
        Controller::connect(cfg).await.expect("connect to firmware")
    }
}

/// One QEMU at a time: on a 2-core CI runner, parallel guests plus the host threads can starve
/// the link long enough for the firmware's 500 ms link timeout to (correctly) drop the relay.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

macro_rules! boot_or_skip {
    ($guard:ident, $q:ident) => {
        if let Some(why) = missing_prereq() {
            eprintln!("SKIPPED: firmware QEMU test: {why}");
            return;
        }
        let $guard = ONE_AT_A_TIME.lock().await;
        let $q = match firmware_elf() {
            Ok(elf) => Qemu::boot(elf),
            Err(e) => panic!("{e}"),
        };
    };
}

fn consent() -> Consent {
    Consent::assume_yes("tape:QEMU-TEST")
}

fn ms(a: f64, b: f64) -> f64 {
    (b - a) * 1_000.0
}

/// The one pulse in `log`, as (on, off) host times.
fn single_pulse(log: &str) -> (f64, f64) {
    match relay_pulses(log)[..] {
        [(on, Some(off))] => (on, off),
        ref other => panic!("expected one finished pulse, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_leds_and_the_host_refuses_a_simulation_build() {
    boot_or_skip!(_serial, q);
    // A production host (the default configuration) refuses to fire a simulation build.
    let c = Controller::connect(ControllerConfig::new(q.0.pty()))
        .await
        .expect("connect");
    let fw = c.firmware();
    assert_eq!(fw.protocol, lethe_proto::PROTOCOL_VERSION);
    assert_eq!(fw.version, (0, 2, 0));
    assert_eq!(
        (fw.build, fw.reset_cause),
        (BuildKind::Simulation, ResetCause::PowerOn)
    );
    assert!(matches!(
        c.arm(&consent()).await,
        Err(ControllerError::SimulationBuild)
    ));
    assert!(matches!(
        c.degauss_cycle(&consent()).await,
        Err(ControllerError::SimulationBuild)
    ));
    let s = c.status().await.unwrap();
    assert!(!s.relay && !s.energized && s.interlock_closed && !s.estop && s.fault.is_none());
    assert_eq!(s.degausser, DegausserState::Idle, "not even armed");
    assert_eq!(s.session, fw.session);
    assert!(
        relay_writes(&q.log()).iter().all(|&(_, on)| !on),
        "the relay was never written high"
    );

    let mark = q.mark();
    c.set_led(0, LedPattern::Success).await.unwrap();
    c.set_led(1, LedPattern::Busy).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let new = q.since(mark);
    assert!(
        new.contains("'USERLED0' color:green intensity 0% -> 100%"),
        "bay 0 on:\n{new}"
    );
    assert!(
        new.contains("'USERLED1' color:green intensity 0% -> 100%"),
        "bay 1 blinks on"
    );
    assert!(
        new.contains("'USERLED1' color:green intensity 100% -> 0%"),
        "bay 1 blinks off"
    );
    let s = c.status().await.unwrap();
    assert_eq!(s.pins & 0b10, 0b10, "bay 0 LED reported on: {:#b}", s.pins);
    assert!(s.uptime_ms >= 1_000, "uptime advances: {}", s.uptime_ms);
    assert!(matches!(
        c.set_led(7, LedPattern::Busy).await,
        Err(ControllerError::Refused(Refusal::NoSuchBay))
    ));
}

/// safeguard: rule:fail-safe-relay, 164.310(d)(2)(i)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_is_measured_and_matches_qemus_record() {
    boot_or_skip!(_serial, q);
    let c = q.connect().await;
    let mark = q.mark();
    let conf = c.degauss_cycle(&consent()).await.expect("cycle completes");
    assert_eq!((conf.cycle, conf.commanded_ms), (1, 1_500));
    assert_eq!(conf.medium, "tape:QEMU-TEST");
    let (on, off) = single_pulse(&q.since(mark));
    let qemu_ms = ms(on, off);
    eprintln!(
        "cycle: QEMU recorded {qemu_ms:.1} ms on, the firmware measured {} ms",
        conf.relay_on_ms
    );
    assert!(
        (FIRE_MS - 5.0..PULSE_LIMIT_MS + 100.0).contains(&qemu_ms),
        "QEMU saw the relay on for {qemu_ms:.1} ms"
    );
    assert!(
        (f64::from(conf.relay_on_ms) - qemu_ms).abs() <= 50.0,
        "the firmware reports {} ms, QEMU recorded {qemu_ms:.1} ms",
        conf.relay_on_ms
    );
    let s = c.status().await.unwrap();
    assert!(!s.relay && !s.energized && s.cycles == 1 && s.fault.is_none());
    // The next cycle waits out the cooldown and gets the next number.
    assert_eq!(c.degauss_cycle(&consent()).await.unwrap().cycle, 2);
}

/// safeguard: rule:fail-safe-relay
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_drops_when_heartbeats_stop() {
    boot_or_skip!(_serial, q);
    let c = q.connect().await;
    let mark = q.mark();
    let armed = c.arm(&consent()).await.unwrap();
    c.fire(&armed, &consent()).await.unwrap();
    assert!(c.status().await.unwrap().relay);
    c.pause_heartbeats(true);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (on, off) = single_pulse(&q.since(mark));
    assert!(
        ms(on, off) < 500.0 + 300.0,
        "dropped by the link timeout, {:.0} ms",
        ms(on, off)
    );
    let s = c.status().await.unwrap();
    assert!(!s.relay);
    assert_eq!(s.fault, Some(FaultCode::LinkLost));
    assert_eq!(s.cycles, 0, "an interrupted cycle is not counted");
    c.pause_heartbeats(false);
    c.clear_fault().await.unwrap();
    assert_eq!(
        c.clear_fault().await.unwrap_err().to_string(),
        ControllerError::Refused(Refusal::NoFault).to_string(),
        "ClearFault only with a fault latched"
    );
}

/// safeguard: rule:fail-safe-relay
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_trips_that_need_the_local_reset() {
    boot_or_skip!(_serial, q);
    let c = q.connect().await;
    let session = c.firmware().session;
    // Fire without an arm, and with another boot's session (raw frames: the API has no way to).
    let fire = |session, seq| Frame {
        seq,
        msg: Msg::Fire {
            session,
            nonce: 0x1234,
        },
    };
    let mut buf = [0u8; MAX_FRAME];
    for (f, want) in [
        (fire(session, 201), Refusal::NotArmed),
        (fire(session ^ 1, 202), Refusal::StaleSession),
    ] {
        let n = encode_frame(&f, &mut buf).unwrap();
        c.pause_heartbeats(true);
        let got = c
            .raw_exchange(&buf[..n], Duration::from_millis(300))
            .await
            .unwrap();
        c.pause_heartbeats(false);
        assert_eq!(got.last().map(|g| g.msg), Some(Msg::Refused(want)));
    }

    // Door open: arming refused.
    let open = SimInputs {
        interlock_open: true,
        ..SimInputs::default()
    };
    c.sim_inputs(open).await.unwrap();
    assert!(matches!(
        c.arm(&consent()).await,
        Err(ControllerError::Refused(Refusal::InterlockOpen))
    ));
    // Door opening mid-cycle: relay dropped, trip latched, ClearFault refused, local reset clears.
    c.sim_inputs(SimInputs::default()).await.unwrap();
    let mark = q.mark();
    let armed = c.arm(&consent()).await.unwrap();
    c.fire(&armed, &consent()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.sim_inputs(open).await.unwrap();
    let s = c.status().await.unwrap();
    assert!(!s.relay);
    assert_eq!(s.fault, Some(FaultCode::InterlockOpened));
    let (on, off) = single_pulse(&q.since(mark));
    assert!(ms(on, off) < 600.0, "dropped when the door opened");
    assert!(matches!(
        c.clear_fault().await,
        Err(ControllerError::Refused(Refusal::LocalResetRequired))
    ));
    c.sim_local_reset(open).await.unwrap();
    assert_eq!(
        c.status().await.unwrap().fault,
        Some(FaultCode::InterlockOpened),
        "no reset with the door open"
    );
    c.sim_local_reset(SimInputs::default()).await.unwrap();
    assert_eq!(c.status().await.unwrap().fault, None, "local reset");

    // E-stop: latched even at rest; the reset acts only once it is released.
    let estop = SimInputs {
        estop: true,
        ..SimInputs::default()
    };
    c.sim_inputs(estop).await.unwrap();
    let s = c.status().await.unwrap();
    assert!(s.estop && s.fault == Some(FaultCode::EStop));
    c.sim_local_reset(estop).await.unwrap();
    assert_eq!(c.status().await.unwrap().fault, Some(FaultCode::EStop));
    c.sim_inputs(SimInputs::default()).await.unwrap();
    assert!(matches!(
        c.clear_fault().await,
        Err(ControllerError::Refused(Refusal::LocalResetRequired))
    ));
    c.sim_local_reset(SimInputs::default()).await.unwrap();
    assert_eq!(c.status().await.unwrap().fault, None);
    assert_eq!(relay_pulses(&q.log()).len(), 1, "only the one pulse ever");
}

/// safeguard: rule:fail-safe-relay
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welded_contact_latches_and_blocks_arming() {
    boot_or_skip!(_serial, q);
    let c = q.connect().await;
    let armed = c.arm(&consent()).await.unwrap();
    c.fire(&armed, &consent()).await.unwrap();
    // The contact welds during the pulse: after the pulse it stays energized.
    let welded = SimInputs {
        contact: SimContact::StuckEnergized,
        ..SimInputs::default()
    };
    c.sim_inputs(welded).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let s = c.status().await.unwrap();
    assert!(!s.relay && s.energized, "relay off, coil still energized");
    assert_eq!(s.fault, Some(FaultCode::RelayWelded));
    assert_eq!(
        s.cycles, 0,
        "a cycle that never dropped out is not complete"
    );
    assert!(matches!(
        c.arm(&consent()).await,
        Err(ControllerError::Refused(Refusal::FaultLatched))
    ));
    assert!(matches!(
        c.clear_fault().await,
        Err(ControllerError::Refused(Refusal::LocalResetRequired))
    ));
    c.sim_local_reset(welded).await.unwrap();
    assert_eq!(
        c.status().await.unwrap().fault,
        Some(FaultCode::RelayWelded),
        "no reset while the contact reads energized"
    );
    c.sim_local_reset(SimInputs::default()).await.unwrap();
    assert_eq!(c.status().await.unwrap().fault, None);
    // A relay that never picks up: the pulse is dropped, nothing is certified.
    let dead = SimInputs {
        contact: SimContact::StuckOff,
        ..SimInputs::default()
    };
    c.sim_inputs(dead).await.unwrap();
    let err = c.degauss_cycle(&consent()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ControllerError::CycleFaulted {
                fault: Some(FaultCode::RelayNoPickup),
                ..
            }
        ),
        "{err:?}"
    );
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
    let mut long = vec![0x55u8; 500];
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

/// The pty opened raw, for a host that stops reading. A thread reads while `reading` is set and
/// hands the bytes over a channel (after it is cleared it finishes at most the read under way).
struct RawPty {
    writer: std::fs::File,
    rx: mpsc::Receiver<Vec<u8>>,
    reading: Arc<AtomicBool>,
    dec: FrameDecoder,
}

impl RawPty {
    fn open(path: &str) -> RawPty {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open pty");
        let stty = std::process::Command::new("stty")
            .args(["-F", path, "raw", "-echo"])
            .status()
            .expect("stty");
        assert!(stty.success(), "stty raw");
        let mut reader = file.try_clone().unwrap();
        let reading = Arc::new(AtomicBool::new(true));
        let (tx, rx) = mpsc::channel();
        let r = Arc::clone(&reading);
        std::thread::spawn(move || loop {
            if !r.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            let mut b = vec![0u8; 4096];
            match reader.read(&mut b) {
                Ok(0) | Err(_) => return, // QEMU gone
                Ok(n) => {
                    b.truncate(n);
                    if tx.send(b).is_err() {
                        return;
                    }
                }
            }
        });
        RawPty {
            writer: file,
            rx,
            reading,
            dec: FrameDecoder::new(),
        }
    }

    /// Send `msg` (retrying) and return the answer with the same sequence number.
    fn ask(&mut self, seq: u8, msg: Msg) -> Msg {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode_frame(&Frame { seq, msg }, &mut buf).unwrap();
        for _ in 0..10 {
            self.writer.write_all(&buf[..n]).unwrap();
            let end = Instant::now() + Duration::from_millis(300);
            while let Some(left) = end.checked_duration_since(Instant::now()) {
                let Ok(bytes) = self.rx.recv_timeout(left) else {
                    break;
                };
                for x in bytes {
                    if let Some(Ok(f)) = self.dec.push(x) {
                        if f.seq == seq {
                            return f.msg;
                        }
                    }
                }
            }
        }
        panic!("no answer to {msg:?}")
    }

    /// Read (again) and drop everything until the line is quiet for `quiet`.
    fn drain(&mut self, quiet: Duration) -> usize {
        self.reading.store(true, Ordering::SeqCst);
        let mut total = 0;
        while let Ok(b) = self.rx.recv_timeout(quiet) {
            total += b.len();
        }
        self.dec = FrameDecoder::new();
        total
    }
}

/// Issue 16's trial: just after a fire, the host stops draining the port while it keeps sending.
/// The firmware's transmit gives up instead of wedging the loop, and the relay drops on time.
/// safeguard: rule:fail-safe-relay
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_stops_reading_cannot_stall_the_pulse() {
    boot_or_skip!(_serial, q);
    let mut link = RawPty::open(q.0.pty());
    let Msg::Welcome(w) = link.ask(
        1,
        Msg::Hello {
            protocol: lethe_proto::PROTOCOL_VERSION,
            major: 0,
            minor: 0,
            patch: 0,
        },
    ) else {
        panic!("welcome")
    };
    let Msg::Armed { nonce, .. } = link.ask(2, Msg::Arm { session: w.session }) else {
        panic!("arm")
    };
    let mark = q.mark();
    let fired = link.ask(
        3,
        Msg::Fire {
            session: w.session,
            nonce,
        },
    );
    assert!(matches!(fired, Msg::Firing { .. }), "{fired:?}");
    // From now on nobody reads: a burst fills the pty (~20 KiB of Status replies), then a frame
    // every 50 ms keeps the link alive through the pulse.
    link.reading.store(false, Ordering::SeqCst);
    let mut writer = link.writer.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let frame = |seq: u8| {
            let mut buf = [0u8; MAX_FRAME];
            let n = encode_frame(
                &Frame {
                    seq,
                    msg: Msg::GetStatus,
                },
                &mut buf,
            )
            .unwrap();
            buf[..n].to_vec()
        };
        let burst: Vec<u8> = (0..1_500u32)
            .flat_map(|i| frame(10 + (i % 200) as u8))
            .collect();
        writer.write_all(&burst).unwrap();
        for i in 0..50u32 {
            std::thread::sleep(Duration::from_millis(50));
            writer.write_all(&frame(10 + (i % 200) as u8)).unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    let log = q.since(mark);
    let (on, off) = single_pulse(&log);
    let pending = event_times(&log, TX_PENDING);
    assert!(
        pending.iter().any(|&t| t > on && t < off),
        "the transmit was blocked during the pulse ({} tx_pending events)",
        pending.len()
    );
    let on_ms = ms(on, off);
    eprintln!(
        "blocked transmit: relay on {on_ms:.1} ms (QEMU), {} tx_pending events in the pulse",
        pending.iter().filter(|&&t| t > on && t < off).count()
    );
    assert!(
        on_ms <= PULSE_LIMIT_MS + WATCHDOG_MS,
        "relay on {on_ms:.1} ms: beyond the pulse limit plus the watchdog period"
    );
    assert!(
        (FIRE_MS - 5.0..PULSE_LIMIT_MS + 100.0).contains(&on_ms),
        "the loop kept running and ended the pulse itself: {on_ms:.1} ms"
    );
    assert!(
        event_times(&log, WATCHDOG_ACTION).is_empty(),
        "no watchdog reset: the loop never stalled"
    );
    flood.join().unwrap();
    // Draining again, the firmware answers and reports the cycle QEMU saw.
    assert!(link.drain(Duration::from_millis(300)) > 0);
    let Msg::Status(s) = link.ask(250, Msg::GetStatus) else {
        panic!("status")
    };
    assert_eq!((s.cycles, s.fault, s.relay), (1, None, false), "{s:?}");
    assert!(
        (f64::from(s.last_cycle_ms) - on_ms).abs() <= 50.0,
        "reported {} ms, QEMU recorded {on_ms:.1} ms",
        s.last_cycle_ms
    );
}

/// Fire, inject `fault` after `delay`, and wait for the board to come back. Returns the pulse
/// (on, off) from QEMU's record and the host time of the reset.
async fn stall(
    q: &Qemu,
    c: &Controller,
    fault: SimFault,
    delay: Duration,
    cause: ResetCause,
) -> (f64, f64, f64) {
    // After the previous reset the coil may still be hot: degauss_cycle-style wait.
    let cool = c.status().await.unwrap().cooldown_ms;
    tokio::time::sleep(Duration::from_millis(u64::from(cool) + 50)).await;
    let mark = q.mark();
    let armed = c.arm(&consent()).await.unwrap();
    c.fire(&armed, &consent()).await.unwrap();
    tokio::time::sleep(delay).await;
    c.sim_fault(fault).await.unwrap();
    let reset_event = match fault {
        SimFault::Hang | SimFault::HangMasked => WATCHDOG_ACTION,
        // Any system reset resets the devices.
        SimFault::Panic | SimFault::HardFault => "cmsdk_apb_watchdog_reset",
    };
    let reset =
        q.0.wait_for_event(mark, reset_event, Duration::from_secs(6))
            .unwrap_or_else(|| panic!("{fault:?}: no {reset_event} in QEMU's log"));
    // Back up: a new session, the cause reported, the relay low, a fault to acknowledge.
    let mut info = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(i) = c.rehandshake().await {
            info = Some(i);
            break;
        }
    }
    let info = info.unwrap_or_else(|| panic!("{fault:?}: the board did not come back"));
    assert_eq!(info.reset_cause, cause, "{fault:?}");
    let s = c.status().await.unwrap();
    assert!(!s.relay && !s.energized, "{fault:?}: {s:?}");
    assert_eq!(s.fault, Some(FaultCode::UnexpectedReset), "{fault:?}");
    assert_eq!(s.cycles, 0, "{fault:?}: the cut cycle is not counted");
    c.clear_fault().await.unwrap();
    let log = q.since(mark);
    let (on, off) = single_pulse(&log);
    eprintln!(
        "{fault:?}: relay on {:.1} ms (QEMU), reset {:.1} ms after the fire, cause {:?}",
        ms(on, off),
        ms(on, reset),
        info.reset_cause
    );
    assert!(
        off <= reset,
        "{fault:?}: the relay dropped before the reset"
    );
    assert!(
        relay_writes(&log)
            .iter()
            .filter(|&&(t, _)| t > reset)
            .all(|&(_, on)| !on),
        "{fault:?}: after the reset the relay is only ever written low"
    );
    assert!(
        ms(on, off) <= PULSE_LIMIT_MS + WATCHDOG_MS,
        "{fault:?}: relay on {:.1} ms, beyond the pulse limit plus the watchdog period",
        ms(on, off)
    );
    (on, off, reset)
}

/// The main loop stalls, panics or faults during a pulse: the pulse-limit interrupt, the watchdog
/// NMI or the panic/fault handler drops the relay, and the board comes back with the relay low
/// and the cause reported. One boot for all of them (each ends in a reset).
/// safeguard: rule:fail-safe-relay
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalls_panics_and_faults_drop_the_relay_and_report_the_reset() {
    boot_or_skip!(_serial, q);
    let c = q.connect().await;

    // Loop hung with interrupts enabled, 0.9 s into the pulse: the pulse-limit interrupt drops
    // the relay at its limit (its first act after the relay write is to clear its timer), the
    // watchdog resets the board later.
    let (on, off, reset) = stall(
        &q,
        &c,
        SimFault::Hang,
        Duration::from_millis(900),
        ResetCause::Watchdog,
    )
    .await;
    let len = ms(on, off);
    assert!(
        (PULSE_LIMIT_MS - 25.0..PULSE_LIMIT_MS + 250.0).contains(&len),
        "dropped by the pulse limit: {len:.1} ms"
    );
    let log = q.log();
    let after_off: Vec<_> = traced(&log)
        .filter(|e| e.t >= off && e.what.starts_with("memory_region_ops_write"))
        .take(3)
        .collect();
    assert!(
        after_off.iter().any(|e| e.what.contains(PULSE_INTCLR_REG)),
        "the pulse-limit interrupt dropped it: {after_off:?}"
    );
    assert!(reset > off);

    // Loop hung with interrupts masked right after the fire: only the watchdog's NMI can act.
    let (on, off, _) = stall(
        &q,
        &c,
        SimFault::HangMasked,
        Duration::ZERO,
        ResetCause::Watchdog,
    )
    .await;
    assert!(
        ms(on, off) <= WATCHDOG_MS + 250.0,
        "dropped by the NMI within the watchdog period: {:.1} ms",
        ms(on, off)
    );

    // Panic and HardFault: the handler drops the relay at once and resets.
    for (fault, cause) in [
        (SimFault::Panic, ResetCause::Panic),
        (SimFault::HardFault, ResetCause::HardFault),
    ] {
        let (on, off, _) = stall(&q, &c, fault, Duration::from_millis(200), cause).await;
        assert!(
            ms(on, off) < 200.0 + 300.0,
            "{fault:?}: dropped by the handler, {:.1} ms",
            ms(on, off)
        );
    }
    // And it still works.
    assert!(c.degauss_cycle(&consent()).await.is_ok());
}
