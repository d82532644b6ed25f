//! What every job command shares at the edge: opening the job library,
//! asking the operator to confirm, Ctrl-C, and who the operator is.

use anyhow::{Context, Result};
use lethe_controller::ControllerConfig;
use lethe_jobs::confirm::{self, Consequence};
use lethe_jobs::{Confirmation, DeviceIdentity, Jobs, JobsConfig, Panel, StateDir};
use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The job library on this machine's devices, with the front-panel
/// controller on `port` when one is given (connected on first use).
pub fn jobs(state: &StateDir, port: Option<&str>) -> Result<Jobs> {
    let mut cfg = JobsConfig::new(state.clone());
    cfg.observers.extend(crate::audit_hook::observer(state));
    if let Some(port) = port {
        let panel = Panel::start(ControllerConfig::from_env(port))
            .context("starting the controller runtime")?;
        cfg.panel = Some(Arc::new(panel));
    }
    Jobs::open(cfg).context("opening the job library")
}

/// Ask the operator to type the serial or size of `shown`. `None` when the
/// answer does not confirm it (the library checks the answer again, against
/// the device it opens).
pub fn ask(shown: &DeviceIdentity, what: Consequence) -> Result<Option<Confirmation>> {
    let prompt = confirm::prompt(shown, what);
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}");
    } else {
        eprintln!("{prompt}");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading confirmation")?;
    if !confirm::accepts(shown, &line) {
        eprintln!("lethe: not confirmed; nothing was written");
        return Ok(None);
    }
    Ok(Some(Confirmation::typed(shown.clone(), line.trim())))
}

/// `--yes`: the operator confirmed on the command line.
pub fn waived() -> Confirmation {
    Confirmation::Waived {
        by: "--yes on the command line".into(),
    }
}

/// A flag set by SIGINT and SIGTERM: the job is cancelled at its next safe point.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    Ok(stop)
}

/// The operator recorded when none is given: $SUDO_USER or $USER.
pub fn default_operator() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}
