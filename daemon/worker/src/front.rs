//! Running the front: as its own user (uid and gid of `--front-user`,
//! supplementary groups dropped), with a clean environment, its output to
//! the worker's (journald), restarted when it exits. The front stopping or
//! crashing never stops a job: jobs run in the worker.

use crate::daemon::Daemon;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A front that lived this long is healthy: its next restart is quick.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Start the front, and start it again whenever it exits, until shutdown.
pub async fn supervise(d: Arc<Daemon>) {
    let Some((program, args)) = d.opts.front_command.split_first() else {
        tracing::error!("no front command: the local API is not served");
        return;
    };
    let mut backoff = Duration::from_secs(1);
    let mut first = true;
    while !d.stopping() {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .arg("--https-listen")
            .arg(d.cfg.server.listen.to_string())
            .uid(d.front_user.uid)
            .gid(d.front_user.gid)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(l) = std::env::var_os("LETHE_LOG") {
            cmd.env("LETHE_LOG", l);
        }
        let started = Instant::now();
        match cmd.spawn() {
            Ok(mut child) => {
                if !first {
                    d.front_restarts.fetch_add(1, Ordering::Relaxed);
                }
                first = false;
                tracing::info!("front started (pid {:?})", child.id());
                tokio::select! {
                    status = child.wait() => {
                        tracing::warn!("the front exited ({status:?}); restarting it");
                    }
                    _ = d.shutdown.notified() => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        return;
                    }
                }
            }
            Err(e) => tracing::error!("starting the front: {e}"),
        }
        backoff = if started.elapsed() >= HEALTHY_AFTER {
            Duration::from_secs(1)
        } else {
            (backoff * 2).min(MAX_BACKOFF)
        };
        tokio::select! {
            _ = tokio::time::sleep(backoff / 2) => {}
            _ = d.shutdown.notified() => return,
        }
    }
}
