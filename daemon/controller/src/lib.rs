//! Host driver for the Lethe front-panel / degausser controller.
//!
//! [`Controller::connect`] opens the serial port named in [`ControllerConfig`], performs the
//! hello handshake (protocol version check), and starts a heartbeat task that keeps the
//! firmware's link watchdog fed and mirrors the last [`Status`]. If the link fails, the task
//! reconnects with exponential backoff. Requests are serialized over one link; every request
//! is retransmitted on timeout or NAK (the firmware answers duplicates without acting twice).
//!
//! [`Controller::degauss_cycle`] runs arm → fire → wait-for-completion and returns a
//! [`DegaussConfirmation`] that a Destroy certificate can cite.

pub mod cli_support;
mod error;
mod link;

pub use error::ControllerError;
pub use lethe_proto::{DegausserState, FaultCode, Frame, LedPattern, NakReason, Refusal, Status};
pub use link::{Link, SerialIo};

use lethe_proto::{Msg, PROTOCOL_VERSION};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

/// Connection settings (the `[controller]` section of the daemon config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerConfig {
    /// Serial device, e.g. `/dev/ttyACM0` or a pty.
    pub port: String,
    /// Baud rate.
    pub baud: u32,
    /// Reply timeout per try.
    pub reply_timeout: Duration,
    /// Sends per request (first send included).
    pub max_tries: u8,
    /// Heartbeat period; must be well under the firmware's 500 ms watchdog.
    pub heartbeat_every: Duration,
    /// Open/handshake attempts before giving up.
    pub connect_attempts: u32,
    /// First backoff delay; doubles per attempt up to 2 s.
    pub backoff: Duration,
}

impl ControllerConfig {
    /// Defaults for `port`.
    pub fn new(port: impl Into<String>) -> Self {
        Self {
            port: port.into(),
            baud: 115_200,
            reply_timeout: Duration::from_millis(300),
            max_tries: 4,
            heartbeat_every: Duration::from_millis(100),
            connect_attempts: 5,
            backoff: Duration::from_millis(100),
        }
    }
}

/// Software versions learned in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareInfo {
    /// Protocol version.
    pub protocol: u16,
    /// Firmware version (major, minor, patch).
    pub version: (u8, u8, u8),
}

/// Evidence of one completed degauss cycle, as confirmed by the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DegaussConfirmation {
    /// Cycle number assigned by the firmware (completed cycles since its reset).
    pub cycle: u32,
    /// Relay-on time the firmware committed to.
    pub commanded_ms: u32,
    /// Relay-on time the firmware measured.
    pub relay_on_ms: u32,
    /// Host time from arm to the completion report.
    pub host_elapsed_ms: u64,
    /// The firmware accepted fire only with the interlock closed; this is the state after.
    pub interlock_closed_after: bool,
    /// Firmware uptime when completion was observed.
    pub fw_uptime_ms: u32,
    /// Unix time (ms) of the fire command.
    pub fired_at_unix_ms: u64,
    /// Firmware identity.
    pub firmware: FirmwareInfo,
}

/// This crate's version, sent in the hello.
fn host_version() -> (u8, u8, u8) {
    let p = |s: &str| s.parse().unwrap_or(0);
    (
        p(env!("CARGO_PKG_VERSION_MAJOR")),
        p(env!("CARGO_PKG_VERSION_MINOR")),
        p(env!("CARGO_PKG_VERSION_PATCH")),
    )
}

fn open_port(cfg: &ControllerConfig) -> Result<Box<dyn SerialIo>, ControllerError> {
    use tokio_serial::SerialPortBuilderExt;
    let port = tokio_serial::new(&cfg.port, cfg.baud)
        .open_native_async()
        .map_err(|source| ControllerError::Open {
            port: cfg.port.clone(),
            source,
        })?;
    Ok(Box::new(port))
}

async fn handshake(link: &mut Link) -> Result<FirmwareInfo, ControllerError> {
    let (major, minor, patch) = host_version();
    match link
        .request(
            "hello",
            Msg::Hello {
                protocol: PROTOCOL_VERSION,
                major,
                minor,
                patch,
            },
        )
        .await?
    {
        Msg::Hello {
            protocol,
            major,
            minor,
            patch,
        } if protocol == PROTOCOL_VERSION => Ok(FirmwareInfo {
            protocol,
            version: (major, minor, patch),
        }),
        Msg::Hello { protocol, .. } => Err(ControllerError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: protocol,
        }),
        Msg::Nak(NakReason::ProtocolMismatch) => Err(ControllerError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: 0,
        }),
        other => Err(unexpected("hello", other)),
    }
}

fn unexpected(what: &'static str, reply: Msg) -> ControllerError {
    match reply {
        Msg::Refused(r) => ControllerError::Refused(r),
        Msg::Nak(n) => ControllerError::Nak(n),
        other => ControllerError::UnexpectedReply {
            what,
            reply: format!("{other:?}"),
        },
    }
}

struct Shared {
    link: Mutex<Link>,
    status: watch::Sender<Option<Status>>,
    hb_paused: AtomicBool,
    info: std::sync::Mutex<FirmwareInfo>,
}

/// A connected controller. Dropping it stops the heartbeats (the firmware then drops the relay).
pub struct Controller {
    cfg: ControllerConfig,
    shared: Arc<Shared>,
    hb: JoinHandle<()>,
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.hb.abort();
    }
}

impl Controller {
    /// Open the configured port and handshake, retrying with exponential backoff.
    pub async fn connect(cfg: ControllerConfig) -> Result<Self, ControllerError> {
        let mut delay = cfg.backoff;
        let mut last = None;
        for attempt in 1..=cfg.connect_attempts.max(1) {
            match Self::try_open(&cfg).await {
                Ok((link, info)) => return Ok(Self::start(cfg, link, info)),
                Err(e @ ControllerError::VersionMismatch { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
            if attempt < cfg.connect_attempts {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
        Err(ControllerError::Unreachable {
            port: cfg.port.clone(),
            attempts: cfg.connect_attempts.max(1),
            last: Box::new(last.unwrap_or(ControllerError::Closed)),
        })
    }

    /// Handshake over an already-open stream (tests, in-process firmware). No reconnects.
    pub async fn connect_stream(
        io: Box<dyn SerialIo>,
        cfg: ControllerConfig,
    ) -> Result<Self, ControllerError> {
        let mut link = Link::new(io, cfg.reply_timeout, cfg.max_tries);
        let info = handshake(&mut link).await?;
        Ok(Self::start(cfg, link, info))
    }

    async fn try_open(cfg: &ControllerConfig) -> Result<(Link, FirmwareInfo), ControllerError> {
        let mut link = Link::new(open_port(cfg)?, cfg.reply_timeout, cfg.max_tries);
        let info = handshake(&mut link).await?;
        Ok((link, info))
    }

    fn start(cfg: ControllerConfig, link: Link, info: FirmwareInfo) -> Self {
        let (tx, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            link: Mutex::new(link),
            status: tx,
            hb_paused: AtomicBool::new(false),
            info: std::sync::Mutex::new(info),
        });
        let hb = tokio::spawn(heartbeat_task(cfg.clone(), Arc::clone(&shared)));
        Self { cfg, shared, hb }
    }

    /// Versions from the last handshake.
    pub fn firmware(&self) -> FirmwareInfo {
        match self.shared.info.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ControllerConfig {
        &self.cfg
    }

    /// Last status mirrored by the heartbeat task (None before the first heartbeat).
    pub fn mirrored_status(&self) -> Option<Status> {
        *self.shared.status.borrow()
    }

    /// Subscribe to status updates.
    pub fn watch_status(&self) -> watch::Receiver<Option<Status>> {
        self.shared.status.subscribe()
    }

    /// Stop or resume heartbeats (tests: the firmware must drop the relay within 500 ms).
    pub fn pause_heartbeats(&self, paused: bool) {
        self.shared.hb_paused.store(paused, Ordering::SeqCst);
    }

    async fn request(&self, what: &'static str, msg: Msg) -> Result<Msg, ControllerError> {
        self.shared.link.lock().await.request(what, msg).await
    }

    /// Fresh status from the firmware.
    pub async fn status(&self) -> Result<Status, ControllerError> {
        match self.request("status", Msg::GetStatus).await? {
            Msg::Status(s) => {
                self.shared.status.send_replace(Some(s));
                Ok(s)
            }
            other => Err(unexpected("status", other)),
        }
    }

    /// Set bay `bay`'s LED pattern.
    pub async fn set_led(&self, bay: u8, pattern: LedPattern) -> Result<(), ControllerError> {
        self.expect_ack("set_led", Msg::SetLed { bay, pattern })
            .await
    }

    async fn expect_ack(&self, what: &'static str, msg: Msg) -> Result<(), ControllerError> {
        match self.request(what, msg).await? {
            Msg::Ack => Ok(()),
            other => Err(unexpected(what, other)),
        }
    }

    /// Low level: arm. Returns (nonce, expiry in ms).
    pub async fn arm(&self) -> Result<(u32, u32), ControllerError> {
        match self.request("arm", Msg::Arm).await? {
            Msg::Armed {
                nonce,
                expires_in_ms,
            } => Ok((nonce, expires_in_ms)),
            other => Err(unexpected("arm", other)),
        }
    }

    /// Low level: fire with the arm's nonce. Returns (cycle number, duration ms).
    pub async fn fire(&self, nonce: u32) -> Result<(u32, u32), ControllerError> {
        match self.request("fire", Msg::Fire { nonce }).await? {
            Msg::Firing { cycle, duration_ms } => Ok((cycle, duration_ms)),
            other => Err(unexpected("fire", other)),
        }
    }

    /// Disarm, or stop a running cycle (the firmware latches `Aborted`).
    pub async fn abort(&self) -> Result<(), ControllerError> {
        self.expect_ack("abort", Msg::Abort).await
    }

    /// Clear a latched fault (refused while the door is open or e-stop active).
    pub async fn clear_fault(&self) -> Result<(), ControllerError> {
        self.expect_ack("clear_fault", Msg::ClearFault).await
    }

    /// Simulation firmware only: set the door interlock and e-stop inputs.
    pub async fn sim_inputs(
        &self,
        interlock_open: bool,
        estop: bool,
    ) -> Result<(), ControllerError> {
        self.expect_ack(
            "sim_inputs",
            Msg::SimInputs {
                interlock_open,
                estop,
            },
        )
        .await
    }

    /// Send raw bytes and collect what comes back within `wait` (garbage/truncation tests).
    pub async fn raw_exchange(
        &self,
        bytes: &[u8],
        wait: Duration,
    ) -> Result<Vec<Frame>, ControllerError> {
        self.shared
            .link
            .lock()
            .await
            .raw_exchange(bytes, wait)
            .await
    }

    /// Arm, fire, and wait until the firmware reports the cycle complete.
    pub async fn degauss_cycle(&self) -> Result<DegaussConfirmation, ControllerError> {
        let t0 = Instant::now();
        let (nonce, _expiry) = self.arm().await?;
        let fired_at_unix_ms = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
        )
        .unwrap_or(u64::MAX);
        let (cycle, commanded_ms) = self.fire(nonce).await?;
        let deadline = Instant::now()
            + Duration::from_millis(u64::from(commanded_ms))
            + Duration::from_secs(5);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let s = self.status().await?;
            if s.fault.is_some() {
                return Err(ControllerError::CycleFaulted {
                    cycle,
                    fault: s.fault,
                    status: Box::new(s),
                });
            }
            if s.cycles >= cycle && s.degausser != DegausserState::Firing {
                return Ok(DegaussConfirmation {
                    cycle,
                    commanded_ms,
                    relay_on_ms: s.last_cycle_ms,
                    host_elapsed_ms: u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX),
                    interlock_closed_after: s.interlock_closed,
                    fw_uptime_ms: s.uptime_ms,
                    fired_at_unix_ms,
                    firmware: self.firmware(),
                });
            }
            if Instant::now() > deadline {
                let _ = self.abort().await;
                return Err(ControllerError::CycleFaulted {
                    cycle,
                    fault: s.fault,
                    status: Box::new(s),
                });
            }
        }
    }
}

async fn heartbeat_task(cfg: ControllerConfig, shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(cfg.heartbeat_every).await;
        if shared.hb_paused.load(Ordering::SeqCst) {
            continue;
        }
        let mut link = shared.link.lock().await;
        match link.request("heartbeat", Msg::Heartbeat).await {
            Ok(Msg::Status(s)) => {
                shared.status.send_replace(Some(s));
            }
            Ok(_) => {}
            Err(
                ControllerError::Io(_) | ControllerError::Closed | ControllerError::Timeout { .. },
            ) => {
                // Reconnect with backoff (only possible for a real port path).
                let mut delay = cfg.backoff;
                for _ in 0..cfg.connect_attempts.max(1) {
                    if let Ok((new, info)) = Controller::try_open(&cfg).await {
                        *link = new;
                        if let Ok(mut g) = shared.info.lock() {
                            *g = info;
                        }
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
            Err(_) => {}
        }
    }
}
