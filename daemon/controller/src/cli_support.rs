//! Small entry points for the `lethe` CLI.
use crate::{
    Consent, Controller, ControllerConfig, ControllerError, DegaussConfirmation, FirmwareInfo,
    Status,
};
use serde::Serialize;

/// What `lethe controller status` prints.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Port used.
    pub port: String,
    /// Firmware versions.
    pub firmware: FirmwareInfo,
    /// Relay output read back high.
    pub relay: bool,
    /// The feedback contact reads the coil energized.
    pub energized: bool,
    /// Door closed.
    pub interlock_closed: bool,
    /// E-stop active.
    pub estop: bool,
    /// Latched fault as text.
    pub fault: Option<String>,
    /// Uptime.
    pub uptime_ms: u32,
    /// Output pin shadow (bit 0 relay, bit 1+n bay n LED).
    pub pins: u32,
    /// Degausser state as text.
    pub degausser: String,
    /// Completed cycles.
    pub cycles: u32,
    /// Measured energized time of the last completed cycle.
    pub last_cycle_ms: u32,
    /// Until the next arm is allowed.
    pub cooldown_ms: u32,
    /// Whether a latched fault needs the local reset at the machine.
    pub needs_local_reset: bool,
}

impl StatusReport {
    /// The report of one status read on `port`.
    pub fn new(port: &str, firmware: FirmwareInfo, s: Status) -> Self {
        Self {
            port: port.to_owned(),
            firmware,
            relay: s.relay,
            energized: s.energized,
            interlock_closed: s.interlock_closed,
            estop: s.estop,
            fault: s.fault.map(|f| format!("{f:?}")),
            uptime_ms: s.uptime_ms,
            pins: s.pins,
            degausser: format!("{:?}", s.degausser),
            cycles: s.cycles,
            last_cycle_ms: s.last_cycle_ms,
            cooldown_ms: s.cooldown_ms,
            needs_local_reset: s.fault.is_some_and(|f| f.needs_local_reset()),
        }
    }
}

/// Connect, read one status, disconnect.
pub async fn status_report(port: &str) -> Result<StatusReport, ControllerError> {
    let c = Controller::connect(ControllerConfig::new(port)).await?;
    let s = c.status().await?;
    Ok(StatusReport::new(port, c.firmware(), s))
}

/// Connect and run one degauss cycle for the medium `consent` names; the record goes into the
/// Destroy certificate. A simulation build is refused unless the environment allows it
/// ([`crate::ALLOW_SIMULATION_ENV`], set by the QEMU test suites).
pub async fn degauss_once(
    port: &str,
    consent: &Consent,
) -> Result<DegaussConfirmation, ControllerError> {
    let c = Controller::connect(ControllerConfig::from_env(port)).await?;
    c.degauss_cycle(consent).await
}
