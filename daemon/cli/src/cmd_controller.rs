//! `lethe controller status`: the front-panel controller's state.

use crate::exit;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct ControllerArgs {
    #[command(subcommand)]
    cmd: ControllerCmd,
}

#[derive(Subcommand)]
enum ControllerCmd {
    /// Connect, show versions, relay, interlock, e-stop, faults and pin states.
    Status {
        /// Serial port of the controller (e.g. /dev/ttyACM0).
        #[arg(
            long,
            env = "LETHE_CONTROLLER_PORT",
            alias = "port",
            value_name = "PORT"
        )]
        controller_port: String,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A runtime for the controller's async driver (heartbeats run on its workers).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the controller runtime")
}

pub fn run(args: &ControllerArgs) -> Result<u8> {
    match &args.cmd {
        ControllerCmd::Status {
            controller_port: port,
            json,
        } => {
            let rt = runtime()?;
            let r = rt
                .block_on(lethe_controller::cli_support::status_report(port))
                .with_context(|| format!("controller on {port}"))?;
            if *json {
                outln!("{}", serde_json::to_string(&r)?);
            } else {
                let (a, b, c) = r.firmware.version;
                outln!(
                    "controller  {} (firmware {a}.{b}.{c}, protocol {})",
                    r.port,
                    r.firmware.protocol
                );
                outln!(
                    "degausser   {} (cycles completed: {})",
                    r.degausser,
                    r.cycles
                );
                outln!("relay       {}", if r.relay { "ENERGIZED" } else { "off" });
                outln!(
                    "interlock   {}",
                    if r.interlock_closed { "closed" } else { "OPEN" }
                );
                outln!("e-stop      {}", if r.estop { "ACTIVE" } else { "clear" });
                outln!("fault       {}", r.fault.as_deref().unwrap_or("none"));
                outln!("uptime      {} ms", r.uptime_ms);
                outln!(
                    "pins        {:#010b} (bit 0 relay, bit 1+n bay n LED)",
                    r.pins
                );
            }
            Ok(exit::OK)
        }
    }
}
