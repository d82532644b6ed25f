//! The driver against the real firmware logic (`lethe-fw-logic`) running in a tokio task on the
//! other end of an in-memory pipe, with a lossy link to exercise retransmission and a link that
//! loses every answer to a Fire.
use embedded_hal::digital::{ErrorType, InputPin, OutputPin, StatefulOutputPin};
use lethe_controller::{
    BuildKind, Consent, Controller, ControllerConfig, ControllerError, DegausserState, FaultCode,
    LedPattern, Refusal, SimInputs,
};
use lethe_fw_logic::firmware::{Firmware, InputPins};
use lethe_fw_logic::{Board, Config, ResetCause, SimRequest};
use lethe_proto::{decode_frame, Msg};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// The relay output (high = energized).
#[derive(Clone)]
struct Relay(Arc<AtomicBool>);
impl ErrorType for Relay {
    type Error = Infallible;
}
impl OutputPin for Relay {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.store(false, Ordering::SeqCst);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}
impl StatefulOutputPin for Relay {
    fn is_set_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.load(Ordering::SeqCst))
    }
    fn is_set_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.0.load(Ordering::SeqCst))
    }
}

/// An input reading a flag, optionally inverted (the contact reads high when the coil is off).
struct In(Arc<AtomicBool>, bool);
impl ErrorType for In {
    type Error = Infallible;
}
impl InputPin for In {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.load(Ordering::SeqCst) != self.1)
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}
struct Led;
impl ErrorType for Led {
    type Error = Infallible;
}
impl OutputPin for Led {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

struct TestBoard(BuildKind, Instant);
impl Board for TestBoard {
    fn build(&self) -> BuildKind {
        self.0
    }
    fn start_pulse_limit(&mut self, _: u32) {}
    fn stop_pulse_limit(&mut self) {}
    fn pulse_limit_tripped(&mut self) -> bool {
        false
    }
    fn kick_watchdog(&mut self) {}
    fn entropy(&mut self) -> u32 {
        self.1.elapsed().subsec_nanos()
    }
    fn simulate(&mut self, _: SimRequest) {}
}

struct Sink(Vec<u8>);
impl embedded_io::ErrorType for Sink {
    type Error = Infallible;
}
impl embedded_io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Link faults the test switches on.
#[derive(Default)]
struct Faults {
    /// Drop every byte of this many incoming frames.
    drop_requests: AtomicUsize,
    /// Drop every `Firing` answer.
    drop_firing: AtomicBool,
    /// The door interlock input reads open.
    door_open: Arc<AtomicBool>,
}

/// Runs the firmware until the pipe closes.
async fn run_firmware(
    mut io: DuplexStream,
    relay: Relay,
    build: BuildKind,
    fire_ms: u32,
    faults: Arc<Faults>,
) {
    let t0 = Instant::now();
    let flag = |v| Arc::new(AtomicBool::new(v));
    let inputs = InputPins {
        door: In(Arc::clone(&faults.door_open), true),
        estop: In(flag(true), false),
        contact: In(relay.0.clone(), true),
        reset: In(flag(false), false),
    };
    let cfg = Config {
        fire_ms,
        cooldown_ms: 200,
        ..Config::default()
    };
    let board = TestBoard(build, t0);
    let mut fw = Firmware::new(
        cfg,
        relay,
        inputs,
        [Led, Led],
        board,
        ResetCause::PowerOn,
        99,
    );
    let mut buf = [0u8; 64];
    loop {
        let now = u32::try_from(t0.elapsed().as_millis()).unwrap_or(u32::MAX);
        let mut out = Sink(Vec::new());
        match tokio::time::timeout(Duration::from_millis(5), io.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => {
                for &b in &buf[..n] {
                    if faults.drop_requests.load(Ordering::SeqCst) > 0 {
                        if b == 0 {
                            faults.drop_requests.fetch_sub(1, Ordering::SeqCst);
                        }
                        continue;
                    }
                    fw.on_byte(b, now, &mut out);
                }
            }
            Err(_) => {}
        }
        fw.poll(now);
        let mut wire = Vec::new();
        for frame in out.0.split_inclusive(|&b| b == 0) {
            let firing = matches!(
                decode_frame(&frame[..frame.len() - 1]),
                Ok(lethe_proto::Frame {
                    msg: Msg::Firing { .. },
                    ..
                })
            );
            if !(firing && faults.drop_firing.load(Ordering::SeqCst)) {
                wire.extend_from_slice(frame);
            }
        }
        if !wire.is_empty() && io.write_all(&wire).await.is_err() {
            return;
        }
    }
}

async fn setup_with(
    build: BuildKind,
    allow_simulation: bool,
    drop_first: usize,
    fire_ms: u32,
) -> Result<(Controller, Relay, Arc<Faults>), ControllerError> {
    let (host, dev) = tokio::io::duplex(1024);
    let relay = Relay(Arc::new(AtomicBool::new(true)));
    let faults = Arc::new(Faults::default());
    faults.drop_requests.store(drop_first, Ordering::SeqCst);
    tokio::spawn(run_firmware(
        dev,
        relay.clone(),
        build,
        fire_ms,
        Arc::clone(&faults),
    ));
    let mut cfg = ControllerConfig::new("in-process");
    cfg.reply_timeout = Duration::from_millis(100);
    cfg.allow_simulation = allow_simulation;
    let c = Controller::connect_stream(Box::new(host), cfg).await?;
    Ok((c, relay, faults))
}

async fn setup(drop_first: usize) -> (Controller, Relay, Arc<Faults>) {
    setup_with(BuildKind::Production, false, drop_first, 300)
        .await
        .expect("handshake")
}

fn on(r: &Relay) -> bool {
    r.0.load(Ordering::SeqCst)
}

fn consent() -> Consent {
    Consent::typed("tape:LTO-7", &["LTO-7"], "LTO-7").unwrap()
}

#[tokio::test]
async fn handshake_survives_lost_frames_by_retransmission() {
    let (c, relay, faults) = setup(2).await;
    assert_eq!(
        faults.drop_requests.load(Ordering::SeqCst),
        0,
        "two sends were lost"
    );
    let fw = c.firmware();
    assert_eq!(fw.version, lethe_fw_logic::FW_VERSION);
    assert_eq!(
        (fw.build, fw.reset_cause),
        (BuildKind::Production, ResetCause::PowerOn)
    );
    assert_ne!(fw.session, 0);
    assert!(!on(&relay), "relay forced low at firmware start");
}

#[tokio::test]
async fn too_many_losses_time_out() {
    let err = setup_with(BuildKind::Production, false, 10, 300)
        .await
        .err()
        .expect("must fail");
    assert!(
        matches!(
            err,
            ControllerError::Timeout {
                what: "hello",
                tries: 4
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn degauss_cycle_and_status_mirror() {
    let (c, relay, faults) = setup(0).await;
    c.set_led(1, LedPattern::Attention).await.unwrap();
    // A lost Fire is retransmitted (firmware-side duplicate suppression is tested in lethe-fw-logic).
    let armed = c.arm(&consent()).await.unwrap();
    faults.drop_requests.store(1, Ordering::SeqCst);
    let (cycle, ms) = c.fire(&armed, &consent()).await.unwrap();
    assert_eq!((cycle, ms), (1, 300));
    assert!(on(&relay));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!on(&relay), "bounded on-time");
    let mirrored = c.mirrored_status().expect("heartbeats mirror status");
    assert_eq!(mirrored.cycles, 1);
    assert_eq!(mirrored.session, c.firmware().session);
    let conf = c.degauss_cycle(&consent()).await.unwrap();
    assert_eq!(conf.cycle, 2);
    assert_eq!(conf.medium, "tape:LTO-7");
    assert!(
        conf.relay_on_ms >= 300 && conf.relay_on_ms < 400,
        "measured on the contact: {conf:?}"
    );
    assert!(matches!(
        c.sim_inputs(SimInputs {
            interlock_open: true,
            ..SimInputs::default()
        })
        .await,
        Err(ControllerError::Refused(Refusal::Unsupported))
    ));
    assert!(matches!(
        c.status().await.unwrap().degausser,
        DegausserState::Cooldown | DegausserState::Idle
    ));
}

/// safeguard: rule:fail-safe-relay
#[tokio::test]
async fn a_simulation_build_is_refused_unless_the_host_allows_it() {
    let (c, relay, _) = setup_with(BuildKind::Simulation, false, 0, 300)
        .await
        .unwrap();
    assert_eq!(c.firmware().build, BuildKind::Simulation);
    assert!(matches!(
        c.arm(&consent()).await,
        Err(ControllerError::SimulationBuild)
    ));
    assert!(matches!(
        c.degauss_cycle(&consent()).await,
        Err(ControllerError::SimulationBuild)
    ));
    assert_eq!(
        c.status().await.unwrap().degausser,
        DegausserState::Idle,
        "nothing was even armed"
    );
    assert!(!on(&relay));
    // The same firmware with a test host that allows it.
    let (c, _, _) = setup_with(BuildKind::Simulation, true, 0, 300)
        .await
        .unwrap();
    assert_eq!(c.degauss_cycle(&consent()).await.unwrap().cycle, 1);
}

/// safeguard: rule:fail-safe-relay
#[tokio::test]
async fn an_unanswered_fire_is_aborted_and_the_status_read() {
    // A pulse long enough to still run when the host gives up (4 sends x 100 ms).
    let (c, relay, faults) = setup_with(BuildKind::Production, false, 0, 5_000)
        .await
        .unwrap();
    let armed = c.arm(&consent()).await.unwrap();
    faults.drop_firing.store(true, Ordering::SeqCst);
    let err = c.fire(&armed, &consent()).await.unwrap_err();
    let ControllerError::FireUnconfirmed {
        tries,
        abort,
        status,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!((tries, abort.as_str()), (4, "acknowledged"));
    let s = status.expect("status read after the abort");
    assert!(!s.relay, "the abort ended the pulse the host lost track of");
    assert_eq!(s.fault, Some(FaultCode::Aborted));
    assert_eq!(s.cycles, 0);
    assert!(!on(&relay));
}

/// safeguard: rule:checked-device
#[tokio::test]
async fn consent_for_another_medium_cannot_fire_an_arm() {
    let (c, relay, _) = setup(0).await;
    let armed = c.arm(&consent()).await.unwrap();
    let other = Consent::assume_yes("tape:LTO-8");
    assert!(matches!(
        c.fire(&armed, &other).await,
        Err(ControllerError::NotConfirmed(_))
    ));
    assert!(!on(&relay));
    assert_eq!(c.status().await.unwrap().degausser, DegausserState::Armed);
    assert!(Consent::typed("tape:LTO-7", &["LTO-7"], "LTO-8").is_err());
}

#[tokio::test]
async fn readiness_is_read_before_arming_and_a_failed_cycle_says_whether_it_fired() {
    use lethe_controller::CycleStage;
    // A simulation build this host may not fire is not ready; nothing is armed.
    let (c, _, _) = setup_with(BuildKind::Simulation, false, 0, 300)
        .await
        .unwrap();
    assert!(matches!(
        c.ready().await,
        Err(ControllerError::SimulationBuild)
    ));
    let (c, relay, faults) = setup_with(BuildKind::Simulation, true, 0, 5_000)
        .await
        .unwrap();
    let s = c.ready().await.expect("idle, door closed: ready");
    assert_eq!(s.degausser, DegausserState::Idle);
    // Door open: not ready, in words an operator can act on; a cycle tried
    // anyway is refused before the relay energizes.
    faults.door_open.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    match c.ready().await {
        Err(ControllerError::NotReady(why)) => assert!(why.contains("door is open"), "{why}"),
        other => panic!("{other:?}"),
    }
    let f = c.degauss_cycle_staged(&consent()).await.unwrap_err();
    assert_eq!(f.stage, CycleStage::NotFired, "{f}");
    assert!(!on(&relay));
    // Door closed again, and the firing answer lost: the pulse may have run.
    faults.door_open.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.ready().await.unwrap();
    faults.drop_firing.store(true, Ordering::SeqCst);
    let f = c.degauss_cycle_staged(&consent()).await.unwrap_err();
    assert_eq!(f.stage, CycleStage::Fired, "{f}");
    assert!(
        matches!(f.error, ControllerError::FireUnconfirmed { .. }),
        "{f}"
    );
}
