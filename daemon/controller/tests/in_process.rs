//! The driver against the real firmware logic (`lethe-fw-logic`) running in a thread-free tokio
//! task on the other end of an in-memory pipe, with a lossy link to exercise retransmission.
use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use lethe_controller::{
    Controller, ControllerConfig, ControllerError, DegausserState, LedPattern, Refusal,
};
use lethe_fw_logic::firmware::Firmware;
use lethe_fw_logic::{Board, Config};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

#[derive(Clone)]
struct Pin(Arc<AtomicBool>);
impl ErrorType for Pin {
    type Error = Infallible;
}
impl OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.store(false, Ordering::SeqCst);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}
impl InputPin for Pin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0.load(Ordering::SeqCst))
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.0.load(Ordering::SeqCst))
    }
}
struct NoSim;
impl Board for NoSim {
    fn sim_inputs(&mut self, _: bool, _: bool) -> bool {
        false
    }
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

/// Runs the firmware; drops every byte of the first `drop_frames` incoming frames.
async fn run_firmware(mut io: DuplexStream, relay: Pin, drop_frames: Arc<AtomicUsize>) {
    let t0 = Instant::now();
    let door = Pin(Arc::new(AtomicBool::new(true)));
    let estop_ok = Pin(Arc::new(AtomicBool::new(true)));
    let leds = [
        Pin(Arc::new(AtomicBool::new(false))),
        Pin(Arc::new(AtomicBool::new(false))),
    ];
    let cfg = Config {
        fire_ms: 300,
        cooldown_ms: 200,
        ..Config::default()
    };
    let mut fw = Firmware::new(cfg, relay, leds, door, estop_ok, NoSim, 99);
    let mut buf = [0u8; 64];
    loop {
        let now = u32::try_from(t0.elapsed().as_millis()).unwrap_or(u32::MAX);
        let mut out = Sink(Vec::new());
        match tokio::time::timeout(Duration::from_millis(5), io.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => {
                for &b in &buf[..n] {
                    if drop_frames.load(Ordering::SeqCst) > 0 {
                        if b == 0 {
                            drop_frames.fetch_sub(1, Ordering::SeqCst);
                        }
                        continue;
                    }
                    fw.on_byte(b, now, &mut out);
                }
            }
            Err(_) => {}
        }
        fw.poll(now);
        if !out.0.is_empty() && io.write_all(&out.0).await.is_err() {
            return;
        }
    }
}

async fn setup(drop_first: usize) -> (Controller, Pin, Arc<AtomicUsize>) {
    let (host, dev) = tokio::io::duplex(1024);
    let relay = Pin(Arc::new(AtomicBool::new(true)));
    let drops = Arc::new(AtomicUsize::new(drop_first));
    tokio::spawn(run_firmware(dev, relay.clone(), Arc::clone(&drops)));
    let mut cfg = ControllerConfig::new("in-process");
    cfg.reply_timeout = Duration::from_millis(100);
    let c = Controller::connect_stream(Box::new(host), cfg)
        .await
        .expect("handshake");
    (c, relay, drops)
}

#[tokio::test]
async fn handshake_survives_lost_frames_by_retransmission() {
    let (c, relay, drops) = setup(2).await;
    assert_eq!(drops.load(Ordering::SeqCst), 0, "two sends were lost");
    assert_eq!(c.firmware().version, lethe_fw_logic::FW_VERSION);
    assert!(
        !relay.0.load(Ordering::SeqCst),
        "relay forced low at firmware start"
    );
}

#[tokio::test]
async fn too_many_losses_time_out() {
    let (host, dev) = tokio::io::duplex(1024);
    let drops = Arc::new(AtomicUsize::new(10));
    tokio::spawn(run_firmware(
        dev,
        Pin(Arc::new(AtomicBool::new(false))),
        drops,
    ));
    let mut cfg = ControllerConfig::new("in-process");
    cfg.reply_timeout = Duration::from_millis(50);
    let err = Controller::connect_stream(Box::new(host), cfg)
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
    let (c, relay, drops) = setup(0).await;
    c.set_led(1, LedPattern::Attention).await.unwrap();
    // A lost Fire is retransmitted (firmware-side duplicate suppression is tested in lethe-fw-logic).
    let (nonce, _) = c.arm().await.unwrap();
    drops.store(1, Ordering::SeqCst);
    let (cycle, ms) = c.fire(nonce).await.unwrap();
    assert_eq!((cycle, ms), (1, 300));
    assert!(relay.0.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!relay.0.load(Ordering::SeqCst), "bounded on-time");
    let mirrored = c.mirrored_status().expect("heartbeats mirror status");
    assert_eq!(mirrored.cycles, 1);
    let conf = c.degauss_cycle().await.unwrap();
    assert_eq!(conf.cycle, 2);
    assert!(
        conf.relay_on_ms >= 300 && conf.relay_on_ms < 400,
        "{conf:?}"
    );
    assert!(matches!(
        c.sim_inputs(true, false).await,
        Err(ControllerError::Refused(Refusal::Unsupported))
    ));
    assert!(matches!(
        c.status().await.unwrap().degausser,
        DegausserState::Cooldown | DegausserState::Idle
    ));
}
