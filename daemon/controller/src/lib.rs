//! Host driver for the Lethe front-panel / degausser controller.
//!
//! [`Controller::connect`] opens the serial port named in [`ControllerConfig`], performs the
//! hello handshake (protocol version check), and starts a heartbeat task that keeps the
//! firmware's link watchdog fed and mirrors the last [`Status`]. If the link fails, the task
//! reconnects with exponential backoff. Requests are serialized over one link; every request
//! is retransmitted on timeout or NAK (the firmware answers duplicates without acting twice).
//!
//! [`Controller::degauss_cycle`] runs arm → fire → wait-for-completion and returns a
//! [`DegaussConfirmation`] that a Destroy certificate can cite. Arming and firing take the
//! operator's [`Consent`] for the medium. The driver refuses to arm a simulation build unless
//! [`ControllerConfig::allow_simulation`] is set (tests only). When a `Fire` goes unanswered it
//! sends `Abort` and reads the status before reporting the failure, so no pulse is left in doubt.

pub mod cli_support;
mod consent;
mod error;
mod link;

pub use consent::{Consent, ConsentBy};
pub use error::ControllerError;
pub use lethe_proto::{
    BuildKind, DegausserState, FaultCode, Frame, LedPattern, NakReason, Refusal, ResetCause,
    SimContact, SimFault, Status,
};
pub use link::{Link, SerialIo};

use lethe_proto::{Msg, Welcome, PROTOCOL_VERSION};
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
    /// Arm and fire a simulation build (one whose inputs are set over the link). Tests only.
    pub allow_simulation: bool,
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
            allow_simulation: false,
        }
    }

    /// Defaults for `port`; simulation builds allowed only when the environment variable
    /// [`ALLOW_SIMULATION_ENV`] is `1` (the QEMU test suites set it).
    pub fn from_env(port: impl Into<String>) -> Self {
        Self {
            allow_simulation: std::env::var(ALLOW_SIMULATION_ENV).is_ok_and(|v| v == "1"),
            ..Self::new(port)
        }
    }
}

/// Environment variable that lets [`ControllerConfig::from_env`] fire a simulation build.
pub const ALLOW_SIMULATION_ENV: &str = "LETHE_TEST_ALLOW_SIMULATED_CONTROLLER";

/// What the handshake learned about the firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareInfo {
    /// Protocol version.
    pub protocol: u16,
    /// Firmware version (major, minor, patch).
    pub version: (u8, u8, u8),
    /// This boot's session id.
    pub session: u32,
    /// Production or simulation image.
    pub build: BuildKind,
    /// Why the controller last started.
    pub reset_cause: ResetCause,
}

impl From<Welcome> for FirmwareInfo {
    fn from(w: Welcome) -> Self {
        Self {
            protocol: w.protocol,
            version: (w.major, w.minor, w.patch),
            session: w.session,
            build: w.build,
            reset_cause: w.reset_cause,
        }
    }
}

/// A granted arm, bound to the session it was granted in and the medium it was granted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Armed {
    nonce: u32,
    session: u32,
    medium: String,
    /// Milliseconds until the arm expires (from the grant).
    pub expires_in_ms: u32,
}

/// Simulated inputs of a simulation build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimInputs {
    /// Door open.
    pub interlock_open: bool,
    /// E-stop pressed.
    pub estop: bool,
    /// Feedback contact behaviour.
    pub contact: SimContact,
    /// Local reset button held.
    pub reset_pressed: bool,
}

impl Default for SimInputs {
    /// Door closed, no e-stop, a healthy contact, reset released.
    fn default() -> Self {
        Self {
            interlock_open: false,
            estop: false,
            contact: SimContact::Follows,
            reset_pressed: false,
        }
    }
}

/// Evidence of one completed degauss cycle, as confirmed by the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DegaussConfirmation {
    /// Cycle number assigned by the firmware (completed cycles since its reset).
    pub cycle: u32,
    /// Relay-on time the firmware committed to.
    pub commanded_ms: u32,
    /// Energized time the firmware measured on the relay's feedback contact.
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
    /// The medium the operator consented to destroy.
    pub medium: String,
    /// How the operator consented.
    pub consent: ConsentBy,
}

/// A measured cycle may differ from the commanded one by the relay's pick-up and drop-out times
/// and the firmware's poll period: this much, or 5 % if more.
const CYCLE_TOLERANCE_MS: u32 = 50;

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
        Msg::Welcome(w) if w.protocol == PROTOCOL_VERSION => Ok(w.into()),
        Msg::Welcome(w) => Err(ControllerError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: w.protocol,
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

/// How far a failed degauss cycle got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleStage {
    /// The arm or the fire was refused, rejected or never sent: the relay never energized.
    NotFired,
    /// The fire was accepted, or its fate is unknown: the medium may have been exposed.
    Fired,
}

/// A degauss cycle that did not complete, and how far it got.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct CycleFailure {
    /// Whether the pulse may have run.
    pub stage: CycleStage,
    /// What went wrong.
    #[source]
    pub error: ControllerError,
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

    fn refuse_simulation(&self) -> Result<(), ControllerError> {
        if self.firmware().build == BuildKind::Simulation && !self.cfg.allow_simulation {
            return Err(ControllerError::SimulationBuild);
        }
        Ok(())
    }

    /// Arm the degausser for the medium `consent` names. Refused for a simulation build unless
    /// the configuration allows it.
    pub async fn arm(&self, consent: &Consent) -> Result<Armed, ControllerError> {
        self.refuse_simulation()?;
        let session = self.firmware().session;
        match self.request("arm", Msg::Arm { session }).await? {
            Msg::Armed {
                nonce,
                expires_in_ms,
            } => Ok(Armed {
                nonce,
                session,
                medium: consent.medium().to_owned(),
                expires_in_ms,
            }),
            other => Err(unexpected("arm", other)),
        }
    }

    /// Fire an arm; `consent` must be for the medium the arm was granted for. Returns (cycle
    /// number, duration ms). If the firmware never answers, this sends `Abort`, reads the status
    /// and returns [`ControllerError::FireUnconfirmed`].
    pub async fn fire(
        &self,
        armed: &Armed,
        consent: &Consent,
    ) -> Result<(u32, u32), ControllerError> {
        self.refuse_simulation()?;
        if consent.medium() != armed.medium {
            return Err(ControllerError::NotConfirmed(format!(
                "the arm was granted for {}, the consent is for {}",
                armed.medium,
                consent.medium()
            )));
        }
        let fire = Msg::Fire {
            session: armed.session,
            nonce: armed.nonce,
        };
        match self.request("fire", fire).await {
            Ok(Msg::Firing { cycle, duration_ms }) => Ok((cycle, duration_ms)),
            Ok(other) => Err(unexpected("fire", other)),
            Err(ControllerError::Timeout { tries, .. }) => {
                let (abort, status) = self.abort_and_read().await;
                Err(ControllerError::FireUnconfirmed {
                    tries,
                    abort,
                    status: status.map(Box::new),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// After losing track of a pulse: `Abort` (always accepted, ends a running pulse), then read
    /// the status. Returns what became of the abort and the status if it could be read.
    async fn abort_and_read(&self) -> (String, Option<Status>) {
        let abort = match self.abort().await {
            Ok(()) => "acknowledged".to_owned(),
            Err(e) => format!("failed: {e}"),
        };
        (abort, self.status().await.ok())
    }

    /// Disarm, or stop a running cycle (the firmware latches `Aborted`).
    pub async fn abort(&self) -> Result<(), ControllerError> {
        self.expect_ack("abort", Msg::Abort).await
    }

    /// Clear a latched soft fault (refused for e-stop, interlock and relay faults, which need the
    /// local reset at the machine, and while the door is open or the e-stop active).
    pub async fn clear_fault(&self) -> Result<(), ControllerError> {
        self.expect_ack("clear_fault", Msg::ClearFault).await
    }

    /// Simulation firmware only: set the inputs QEMU cannot drive.
    pub async fn sim_inputs(&self, inputs: SimInputs) -> Result<(), ControllerError> {
        let SimInputs {
            interlock_open,
            estop,
            contact,
            reset_pressed,
        } = inputs;
        self.expect_ack(
            "sim_inputs",
            Msg::SimInputs {
                interlock_open,
                estop,
                contact,
                reset_pressed,
            },
        )
        .await
    }

    /// Simulation firmware only: press and release the local reset button (`inputs` otherwise).
    pub async fn sim_local_reset(&self, inputs: SimInputs) -> Result<(), ControllerError> {
        self.sim_inputs(SimInputs {
            reset_pressed: true,
            ..inputs
        })
        .await?;
        // Let at least one poll see it held.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.sim_inputs(SimInputs {
            reset_pressed: false,
            ..inputs
        })
        .await
    }

    /// Simulation firmware only: acknowledge, then inject `fault`.
    pub async fn sim_fault(&self, fault: SimFault) -> Result<(), ControllerError> {
        self.expect_ack("sim_fault", Msg::SimFault(fault)).await
    }

    /// Handshake again over the same link (after the controller restarted); updates
    /// [`Controller::firmware`].
    pub async fn rehandshake(&self) -> Result<FirmwareInfo, ControllerError> {
        let info = handshake(&mut *self.shared.link.lock().await).await?;
        match self.shared.info.lock() {
            Ok(mut g) => *g = info,
            Err(p) => *p.into_inner() = info,
        }
        Ok(info)
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

    /// Whether the degausser can run a cycle now, from a fresh status: `Err` says why not
    /// (a simulation build this host may not fire, a latched fault, the e-stop, the door open,
    /// a cycle already armed or running). A coil still cooling down is ready: the cycle waits
    /// for it. Read-only: nothing is armed.
    pub async fn ready(&self) -> Result<Status, ControllerError> {
        self.refuse_simulation()?;
        let s = self.status().await?;
        let why = match (s.fault, s.degausser) {
            (Some(f), _) if f.needs_local_reset() => Some(format!(
                "fault {f:?} is latched: clear it with the reset button at the machine"
            )),
            (Some(f), _) => Some(format!("fault {f:?} is latched")),
            _ if s.estop => Some("the emergency stop is pressed".to_owned()),
            _ if !s.interlock_closed => {
                Some("the degausser door is open: load the medium and close the door".to_owned())
            }
            (None, DegausserState::Armed | DegausserState::Firing) => {
                Some("the degausser is busy with another cycle".to_owned())
            }
            (None, _) => None,
        };
        match why {
            Some(why) => Err(ControllerError::NotReady(why)),
            None => Ok(s),
        }
    }

    /// Arm, fire, and wait until the firmware reports the cycle complete, measured on the
    /// feedback contact. Any doubt about the pulse (no answer, a fault, a timeout, a length that
    /// does not fit) is an error; after losing track of a fired pulse the driver aborts it.
    pub async fn degauss_cycle(
        &self,
        consent: &Consent,
    ) -> Result<DegaussConfirmation, ControllerError> {
        self.degauss_cycle_staged(consent)
            .await
            .map_err(|f| f.error)
    }

    /// [`Controller::degauss_cycle`], saying on failure whether the pulse may have run
    /// ([`CycleStage::Fired`]: the fire was accepted, or its fate is unknown) or certainly did
    /// not ([`CycleStage::NotFired`]: the arm, or the fire itself, was refused or never sent).
    pub async fn degauss_cycle_staged(
        &self,
        consent: &Consent,
    ) -> Result<DegaussConfirmation, CycleFailure> {
        let not_fired = |error| CycleFailure {
            stage: CycleStage::NotFired,
            error,
        };
        let fired = |error| CycleFailure {
            stage: CycleStage::Fired,
            error,
        };
        let t0 = Instant::now();
        let armed = match self.arm(consent).await {
            // The coil is cooling down (after a cycle, or after the controller restarted): wait
            // the time it reports, once.
            Err(ControllerError::Refused(Refusal::CoolingDown)) => {
                let wait = self.status().await.map_err(not_fired)?.cooldown_ms;
                tokio::time::sleep(Duration::from_millis(u64::from(wait) + 50)).await;
                self.arm(consent).await.map_err(not_fired)?
            }
            other => other.map_err(not_fired)?,
        };
        let fired_at_unix_ms = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
        )
        .unwrap_or(u64::MAX);
        let (cycle, commanded_ms) = self.fire(&armed, consent).await.map_err(|e| match e {
            // Refused or rejected by the firmware, or never sent: the relay did not energize.
            ControllerError::Refused(_)
            | ControllerError::Nak(_)
            | ControllerError::SimulationBuild
            | ControllerError::NotConfirmed(_) => not_fired(e),
            // No answer, a closed link: whether it fired is unknown, so it counts as fired.
            e => fired(e),
        })?;
        let deadline = Instant::now()
            + Duration::from_millis(u64::from(commanded_ms))
            + Duration::from_secs(5);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let s = match self.status().await {
                Ok(s) => s,
                Err(e) => {
                    let _ = self.abort_and_read().await;
                    return Err(fired(e));
                }
            };
            if s.fault.is_some() || s.session != armed.session {
                return Err(fired(ControllerError::CycleFaulted {
                    cycle,
                    fault: s.fault,
                    status: Box::new(s),
                }));
            }
            if s.cycles >= cycle {
                let tolerance = CYCLE_TOLERANCE_MS.max(commanded_ms / 20);
                if s.last_cycle_ms.abs_diff(commanded_ms) > tolerance {
                    return Err(fired(ControllerError::CycleMismatch {
                        cycle,
                        commanded_ms,
                        measured_ms: s.last_cycle_ms,
                    }));
                }
                return Ok(DegaussConfirmation {
                    cycle,
                    commanded_ms,
                    relay_on_ms: s.last_cycle_ms,
                    host_elapsed_ms: u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX),
                    interlock_closed_after: s.interlock_closed,
                    fw_uptime_ms: s.uptime_ms,
                    fired_at_unix_ms,
                    firmware: self.firmware(),
                    medium: consent.medium().to_owned(),
                    consent: consent.by(),
                });
            }
            if Instant::now() > deadline {
                let (_, after) = self.abort_and_read().await;
                let s = after.unwrap_or(s);
                return Err(fired(ControllerError::CycleFaulted {
                    cycle,
                    fault: s.fault,
                    status: Box::new(s),
                }));
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
                let known = match shared.info.lock() {
                    Ok(g) => g.session,
                    Err(p) => p.into_inner().session,
                };
                if s.session != known {
                    // The controller restarted: learn its new session and why it restarted.
                    if let Ok(info) = handshake(&mut link).await {
                        if let Ok(mut g) = shared.info.lock() {
                            *g = info;
                        }
                    }
                }
                shared.status.send_replace(Some(s));
            }
            Err(ControllerError::Io(_) | ControllerError::Closed) => {
                // The port itself failed: reopen it with backoff (only possible for a real port).
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
            // No answer (the controller may be restarting) or an odd reply: try again next beat.
            Ok(_) | Err(_) => {}
        }
    }
}
