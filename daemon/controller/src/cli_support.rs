//! Small entry points for the `lethe` CLI.
use crate::{
    Controller, ControllerConfig, ControllerError, DegaussConfirmation, FirmwareInfo, Status,
};
use serde::Serialize;

/// What `lethe controller status` prints.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// Port used.
    pub port: String,
    /// Firmware versions.
    pub firmware: FirmwareInfo,
    /// Relay energized.
    pub relay: bool,
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
}

impl StatusReport {
    fn new(port: &str, firmware: FirmwareInfo, s: Status) -> Self {
        Self {
            port: port.to_owned(),
            firmware,
            relay: s.relay,
            interlock_closed: s.interlock_closed,
            estop: s.estop,
            fault: s.fault.map(|f| format!("{f:?}")),
            uptime_ms: s.uptime_ms,
            pins: s.pins,
            degausser: format!("{:?}", s.degausser),
            cycles: s.cycles,
        }
    }
}

/// Connect, read one status, disconnect.
pub async fn status_report(port: &str) -> Result<StatusReport, ControllerError> {
    let c = Controller::connect(ControllerConfig::new(port)).await?;
    let s = c.status().await?;
    Ok(StatusReport::new(port, c.firmware(), s))
}

/// Connect and run one degauss cycle; the record goes into the Destroy certificate.
pub async fn degauss_once(port: &str) -> Result<DegaussConfirmation, ControllerError> {
    let c = Controller::connect(ControllerConfig::new(port)).await?;
    c.degauss_cycle().await
}
