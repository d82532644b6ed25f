//! The front-panel controller, one connection shared by every job.
//!
//! The controller driver is async (tokio-serial, a heartbeat task). Jobs run
//! on plain threads. A [`Panel`] owns one task on a tokio runtime that holds
//! the only [`Controller`] and executes commands in the order they arrive;
//! jobs send commands over a channel and wait on a plain reply channel. No
//! `block_on` anywhere: a daemon can start the panel on its own runtime
//! ([`Panel::spawn`]) and call it from anywhere.
//!
//! The connection is made on first use, so a job that is refused before it
//! needs the controller never touches the serial port. A failed connection
//! is remembered for LEDs (they are a convenience: one warning, no retries
//! per LED change); a degauss always tries to connect again.

use lethe_controller::cli_support::StatusReport;
use lethe_controller::{
    Consent, Controller, ControllerConfig, CycleStage, DegaussConfirmation, LedPattern,
};
use std::sync::mpsc as std_mpsc;
use tokio::sync::mpsc;

/// A degauss cycle that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DegaussFailure {
    /// `false` when the relay certainly never energized (no connection, the
    /// arm or the fire refused): the medium was not touched.
    pub fired: bool,
    pub message: String,
}

impl DegaussFailure {
    fn not_fired(message: impl Into<String>) -> Self {
        Self {
            fired: false,
            message: message.into(),
        }
    }
}

enum Command {
    Led {
        bay: u8,
        pattern: LedPattern,
        reply: std_mpsc::Sender<Result<(), String>>,
    },
    Ready {
        reply: std_mpsc::Sender<Result<(), String>>,
    },
    Status {
        reply: std_mpsc::Sender<Result<StatusReport, String>>,
    },
    Degauss {
        consent: Consent,
        reply: std_mpsc::Sender<Result<DegaussConfirmation, DegaussFailure>>,
    },
}

/// A shared handle on the front-panel controller.
pub struct Panel {
    port: String,
    tx: mpsc::UnboundedSender<Command>,
    /// The runtime this panel started for itself (none on a daemon's runtime).
    _rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Panel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Panel").field("port", &self.port).finish()
    }
}

impl Panel {
    /// A panel on its own small runtime (for a command-line process).
    pub fn start(cfg: ControllerConfig) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("lethe-panel")
            .enable_all()
            .build()?;
        let mut p = Self::spawn(rt.handle(), cfg);
        p._rt = Some(rt);
        Ok(p)
    }

    /// A panel whose task runs on `rt` (a daemon's runtime).
    pub fn spawn(rt: &tokio::runtime::Handle, cfg: ControllerConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let port = cfg.port.clone();
        rt.spawn(serve(cfg, rx));
        Self {
            port,
            tx,
            _rt: None,
        }
    }

    /// The serial port in use.
    pub fn port(&self) -> &str {
        &self.port
    }

    /// Set bay `bay`'s LED; waits for the controller's acknowledgement.
    pub fn set_led(&self, bay: u8, pattern: LedPattern) -> Result<(), String> {
        let (reply, rx) = std_mpsc::channel();
        self.send(Command::Led {
            bay,
            pattern,
            reply,
        })?;
        rx.recv()
            .map_err(|_| "the controller task ended".to_string())?
    }

    /// Connect if needed and ask whether the degausser can run a cycle now
    /// (see `lethe_controller::Controller::ready`): `Err` says why not, in
    /// words for the operator. Nothing is armed. Edges ask this before they
    /// ask the operator to confirm; the degauss job asks again before it
    /// records itself.
    pub fn ready(&self) -> Result<(), String> {
        let (reply, rx) = std_mpsc::channel();
        self.send(Command::Ready { reply })?;
        rx.recv()
            .map_err(|_| "the controller task ended".to_string())?
    }

    /// Connect if needed and read the controller's status now (for the
    /// API's controller page). Nothing is changed on the controller.
    pub fn status(&self) -> Result<StatusReport, String> {
        let (reply, rx) = std_mpsc::channel();
        self.send(Command::Status { reply })?;
        rx.recv()
            .map_err(|_| "the controller task ended".to_string())?
    }

    /// Arm, fire and wait for the controller to confirm one degauss cycle.
    /// Blocks the calling thread (a job's worker) for the cycle's duration.
    pub fn degauss(&self, consent: &Consent) -> Result<DegaussConfirmation, DegaussFailure> {
        let (reply, rx) = std_mpsc::channel();
        self.send(Command::Degauss {
            consent: consent.clone(),
            reply,
        })
        .map_err(DegaussFailure::not_fired)?;
        rx.recv()
            .map_err(|_| DegaussFailure::not_fired("the controller task ended"))?
    }

    fn send(&self, c: Command) -> Result<(), String> {
        self.tx
            .send(c)
            .map_err(|_| "the controller task ended".to_string())
    }
}

enum Link {
    Unopened,
    Up(Box<Controller>),
    Failed(String),
}

async fn connect(cfg: &ControllerConfig) -> Link {
    match Controller::connect(cfg.clone()).await {
        Ok(c) => Link::Up(Box::new(c)),
        Err(e) => Link::Failed(format!("controller on {} unavailable: {e}", cfg.port)),
    }
}

async fn serve(cfg: ControllerConfig, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut link = Link::Unopened;
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::Led {
                bay,
                pattern,
                reply,
            } => {
                if matches!(link, Link::Unopened) {
                    link = connect(&cfg).await;
                }
                let r = match &link {
                    Link::Up(c) => c.set_led(bay, pattern).await.map_err(|e| e.to_string()),
                    Link::Failed(why) => Err(why.clone()),
                    Link::Unopened => Err("not connected".into()),
                };
                let _ = reply.send(r);
            }
            Command::Ready { reply } => {
                if !matches!(link, Link::Up(_)) {
                    link = connect(&cfg).await;
                }
                let r = match &link {
                    Link::Up(c) => c.ready().await.map(|_| ()).map_err(|e| e.to_string()),
                    Link::Failed(why) => Err(why.clone()),
                    Link::Unopened => Err("not connected".into()),
                };
                let _ = reply.send(r);
            }
            Command::Status { reply } => {
                if !matches!(link, Link::Up(_)) {
                    link = connect(&cfg).await;
                }
                let r = match &link {
                    Link::Up(c) => match c.status().await {
                        Ok(s) => Ok(StatusReport::new(&cfg.port, c.firmware(), s)),
                        Err(e) => Err(format!("controller on {}: {e}", cfg.port)),
                    },
                    Link::Failed(why) => Err(why.clone()),
                    Link::Unopened => Err("not connected".into()),
                };
                let _ = reply.send(r);
            }
            Command::Degauss { consent, reply } => {
                if !matches!(link, Link::Up(_)) {
                    link = connect(&cfg).await;
                }
                let r = match &link {
                    Link::Up(c) => {
                        c.degauss_cycle_staged(&consent)
                            .await
                            .map_err(|f| DegaussFailure {
                                fired: f.stage == CycleStage::Fired,
                                message: f.error.to_string(),
                            })
                    }
                    Link::Failed(why) => Err(DegaussFailure::not_fired(why.clone())),
                    Link::Unopened => Err(DegaussFailure::not_fired("not connected")),
                };
                let _ = reply.send(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> ControllerConfig {
        let mut cfg = ControllerConfig::new("/nonexistent/lethe-controller");
        cfg.connect_attempts = 1;
        cfg
    }

    #[test]
    fn an_unreachable_controller_is_an_error_for_every_caller_never_a_panic() {
        let p = Panel::start(unreachable()).unwrap();
        let e = p.set_led(1, LedPattern::Busy).unwrap_err();
        assert!(e.contains("/nonexistent/lethe-controller"), "{e}");
        // Remembered for LEDs: the second change fails at once, the same way.
        assert_eq!(p.set_led(1, LedPattern::Idle).unwrap_err(), e);
        // A degauss tries to connect again, and fails the same way, before
        // anything could fire; so does the readiness question.
        let f = p.degauss(&Consent::assume_yes("/dev/null")).unwrap_err();
        assert!(f.message.contains("unavailable") && !f.fired, "{f:?}");
        assert!(p.ready().unwrap_err().contains("unavailable"));
        assert!(p.status().unwrap_err().contains("unavailable"));
        // Shared by threads.
        let p = std::sync::Arc::new(p);
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let p = std::sync::Arc::clone(&p);
                std::thread::spawn(move || p.set_led(i, LedPattern::Attention).is_err())
            })
            .collect();
        assert!(handles.into_iter().all(|h| h.join().unwrap()));
    }

    #[test]
    fn a_panel_runs_on_a_daemons_runtime() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let p = Panel::spawn(rt.handle(), unreachable());
        // From a plain thread (a job's worker), while the runtime serves it.
        let r = std::thread::spawn(move || p.set_led(0, LedPattern::Success))
            .join()
            .unwrap();
        assert!(r.is_err());
    }
}
