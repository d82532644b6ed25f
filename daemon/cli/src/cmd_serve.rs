//! `lethe serve`: the appliance daemon (the privileged worker, which starts
//! the unprivileged front), `lethe serve --check-config`, and the hidden
//! `lethe serve-front` the worker runs as the front's user.

use crate::exit;
use anyhow::Result;
use clap::Args;
use lethe_jobs::StateDir;
use lethe_wire::paths::DEFAULT_RUNTIME_DIR;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct ServeArgs {
    /// The configuration file (default /etc/lethe/lethe.toml).
    #[arg(long, env = "LETHE_CONFIG", default_value = lethe_config::DEFAULT_PATH)]
    config: PathBuf,
    /// Check the configuration file (every error and warning with its line
    /// and column) and exit: 0 when it is usable, 1 when it is not.
    #[arg(long)]
    check_config: bool,
    /// Where the worker and admin sockets, and the front's API socket, go.
    #[arg(long, env = "LETHE_RUNTIME_DIR", default_value = DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// The unprivileged system user the front runs as.
    #[arg(long, env = "LETHE_FRONT_USER", default_value = "lethe")]
    front_user: String,
    /// Seconds between looks at the backup schedule.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    schedule_tick: u64,
}

#[derive(Args)]
pub struct FrontArgs {
    /// The runtime directory the worker made.
    #[arg(long, env = "LETHE_RUNTIME_DIR", default_value = DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// Serve the HTTPS API on this address (`0.0.0.0:8443`), with the
    /// certificate the worker hands over. Without it, the local API only.
    #[arg(long, value_name = "ADDR")]
    https_listen: Option<std::net::SocketAddr>,
}

/// Logs to stderr (journald under systemd), filtered by `LETHE_LOG`
/// (default `info`). Under systemd no timestamps: journald adds its own.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LETHE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if std::env::var_os("JOURNAL_STREAM").is_some() {
        b.without_time().try_init()
    } else {
        b.try_init()
    };
}

fn check(args: &ServeArgs) -> Result<u8> {
    match lethe_config::load(&args.config) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{}\n", w.render(Some(&args.config)));
            }
            println!(
                "{}: usable ({} bay(s), {} backup job(s), {} warning(s))",
                args.config.display(),
                loaded.config.bays.len(),
                loaded.config.backups.len(),
                loaded.warnings.len()
            );
            Ok(exit::OK)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(exit::ERROR)
        }
    }
}

pub fn run(state: &StateDir, args: &ServeArgs) -> Result<u8> {
    if args.check_config {
        return check(args);
    }
    init_logging();
    let exe = std::env::current_exe()?;
    let opts = lethe_worker::ServeOptions {
        config: args.config.clone(),
        state_dir: state.root().to_path_buf(),
        runtime_dir: args.runtime_dir.clone(),
        front_user: args.front_user.clone(),
        front_command: vec![
            exe.into_os_string(),
            "serve-front".into(),
            "--runtime-dir".into(),
            args.runtime_dir.clone().into_os_string(),
        ],
        schedule_tick: Duration::from_secs(args.schedule_tick),
    };
    lethe_worker::run(opts)?;
    Ok(exit::OK)
}

pub fn front(args: &FrontArgs) -> Result<u8> {
    init_logging();
    lethe_front::run(lethe_front::FrontOptions {
        runtime_dir: args.runtime_dir.clone(),
        https_listen: args.https_listen,
    })?;
    Ok(exit::OK)
}
