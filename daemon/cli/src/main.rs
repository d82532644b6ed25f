//! `lethe`: find drives, wipe them with a verified overwrite, and issue
//! signed certificates of sanitization.

mod audit_hook;
mod cmd_audit;
mod cmd_backup;
mod cmd_cert;
mod cmd_controller;
mod cmd_degauss;
mod cmd_drives;
mod cmd_jobs;
mod cmd_serve;
mod cmd_status;
mod cmd_wipe;
mod edge;
mod render;

use clap::{Parser, Subcommand};
use lethe_jobs::state::{StateDir, DEFAULT_STATE_DIR};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes, documented in the README.
pub mod exit {
    /// The job passed, or the command succeeded.
    pub const OK: u8 = 0;
    /// Bad usage, a refusal (protected device) or an error: nothing was written.
    pub const ERROR: u8 = 1;
    /// The wipe ran and failed: a failure report was issued.
    pub const FAILED: u8 = 2;
    /// The wipe was stopped (Ctrl-C): an incomplete report was issued; resumable.
    pub const INCOMPLETE: u8 = 3;
    /// Verified, but at a lower level than requested (a Purge request that
    /// could only be met with a Clear overwrite): the certificate says why.
    pub const LOWER_LEVEL: u8 = 4;
}

#[derive(Parser)]
#[command(
    name = "lethe",
    version,
    about = "Verified media sanitization with signed certificates"
)]
struct Cli {
    /// Where the job database, the appliance key and the certificates live.
    #[arg(long, global = true, env = "LETHE_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List block devices with identity, partitions and protection status.
    Drives(cmd_drives::DrivesArgs),
    /// Overwrite a whole device, verify it, and issue a certificate.
    Wipe(Box<cmd_wipe::WipeArgs>),
    /// Show wipe jobs from the job store.
    Jobs(cmd_jobs::JobsArgs),
    /// Verify, list and show certificates.
    Cert(cmd_cert::CertArgs),
    /// Destroy magnetic media in the degausser and issue a Destroy certificate.
    Degauss(cmd_degauss::DegaussArgs),
    /// The front-panel controller (bay LEDs, degausser relay).
    Controller(cmd_controller::ControllerArgs),
    /// Encrypted, deduplicated backups and restore drills.
    Backup(Box<cmd_backup::BackupArgs>),
    /// Verify and export the tamper-evident audit log (exit 2: tampering found).
    Audit(cmd_audit::AuditArgs),
    /// Run the appliance daemon (bays, hot-plug, jobs, backups, audit), or
    /// check its configuration with --check-config.
    Serve(cmd_serve::ServeArgs),
    /// Show the running daemon's bays, jobs and next backups.
    Status(cmd_status::StatusArgs),
    /// The daemon's unprivileged front (started by `lethe serve`).
    #[command(hide = true)]
    ServeFront(cmd_serve::FrontArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let state = StateDir::new(&cli.state_dir);
    let result = match cli.cmd {
        Cmd::Drives(a) => cmd_drives::run(&a),
        Cmd::Wipe(a) => cmd_wipe::run(&state, &a),
        Cmd::Jobs(a) => cmd_jobs::run(&state, &a),
        Cmd::Cert(a) => cmd_cert::run(&state, &a),
        Cmd::Degauss(a) => cmd_degauss::run(&state, &a),
        Cmd::Controller(a) => cmd_controller::run(&a),
        Cmd::Backup(a) => cmd_backup::run(&state, &a),
        Cmd::Audit(a) => cmd_audit::run(&state, &a),
        Cmd::Serve(a) => cmd_serve::run(&state, &a),
        Cmd::Status(a) => cmd_status::run(&a),
        Cmd::ServeFront(a) => cmd_serve::front(&a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("lethe: error: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}
