//! systemd: `READY=1` once everything listens, `STATUS=` lines, `STOPPING=1`,
//! and `WATCHDOG=1` at half the unit's `WatchdogSec` while the worker's
//! runtime and its bay thread answer (a worker that hangs is restarted by
//! systemd). Outside systemd (no `NOTIFY_SOCKET`) these do nothing.

use crate::daemon::Daemon;
use sd_notify::NotifyState;
use std::sync::Arc;
use std::time::Duration;

/// Tell systemd the daemon is ready.
pub fn ready(d: &Daemon) {
    let status = format!(
        "{} bay(s), {} backup job(s)",
        d.cfg.bays.len(),
        d.cfg.backups.len()
    );
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&status)]) {
        tracing::warn!("sd_notify: {e}");
    }
}

/// Tell systemd the daemon is stopping.
pub fn stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}

/// Ping the watchdog while the daemon's parts answer.
pub async fn watchdog(d: Arc<Daemon>) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (period / 2).max(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = d.shutdown.notified() => return,
        }
        // The bay thread answers a ping through its queue only if it is not
        // stuck; a stuck thread stops the pings and systemd restarts us.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ping = crate::hotplug::BayMsg::Ping { reply: tx };
        if d.bay_tx.send(ping).is_err() {
            continue;
        }
        if tokio::time::timeout(every, rx).await.is_ok() {
            let running = d.jobs.running().len();
            let status = format!("{running} job(s) running");
            let _ = sd_notify::notify(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
        }
    }
}
