//! `lethe`: find drives, wipe them with a verified overwrite, and issue
//! signed certificates of sanitization.

#[macro_use]
mod out;

mod admin;
mod audit_hook;
mod cmd_audit;
mod cmd_backup;
mod cmd_cert;
mod cmd_controller;
mod cmd_degauss;
mod cmd_drives;
mod cmd_jobs;
mod cmd_pack;
mod cmd_serve;
mod cmd_status;
mod cmd_user;
mod cmd_wipe;
mod edge;
mod remote;
mod render;
mod site;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use lethe_jobs::state::{StateDir, DEFAULT_STATE_DIR};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes, documented in the README ("Exit codes").
pub mod exit {
    /// The job passed, or the command succeeded.
    pub const OK: u8 = 0;
    /// A refusal (protected device, not confirmed, no operator, controller
    /// not ready…) or an error: nothing was written. Also a job that was
    /// recorded but stopped before its first write ("not started" report).
    pub const ERROR: u8 = 1;
    /// The wipe ran and failed: a failure report was issued.
    pub const FAILED: u8 = 2;
    /// The wipe was stopped (Ctrl-C) or interrupted after writing: an
    /// incomplete report was issued, or none could be; resumable.
    pub const INCOMPLETE: u8 = 3;
    /// Verified, but at a lower level than requested (a Purge request that
    /// could only be met with a Clear overwrite): a "CLEAR ONLY" certificate.
    pub const LOWER_LEVEL: u8 = 4;
    /// Every pass was written without an error but nothing was read back
    /// (`--verify off`): an "UNVERIFIED" report, never a certificate.
    pub const UNVERIFIED: u8 = 5;
    /// The command line is wrong (unknown option, missing or bad value, an
    /// option a resumed job cannot change): nothing was done. `EX_USAGE`
    /// of sysexits(3); never the "wipe failed" code.
    pub const USAGE: u8 = 64;
    /// Only when code that does not expect it finds stdout closed (`| head`):
    /// ended quietly, as a process killed by SIGPIPE would (128 + 13).
    pub const PIPE_CLOSED: u8 = 141;
}

/// A mistake on the command line found after parsing (exit [`exit::USAGE`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

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
    #[command(flatten)]
    remote: remote::RemoteArgs,
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
    /// Check an auditor pack: its release signature, and that no file was
    /// changed, added or removed (exit 0 valid, 10 signer unknown, 1 invalid).
    VerifyPack(cmd_pack::VerifyPackArgs),
    /// Run the appliance daemon (bays, hot-plug, jobs, backups, audit), or
    /// check its configuration with --check-config.
    Serve(cmd_serve::ServeArgs),
    /// Show the running daemon's bays, jobs and next backups.
    Status(cmd_status::StatusArgs),
    /// Manage the appliance's users through the running daemon (root).
    User(cmd_user::UserArgs),
    /// Log in to an appliance (with --server): password and second factor;
    /// the session is saved for the next commands.
    Login(remote::auth::LoginArgs),
    /// Password and second factor again on an appliance (with --server),
    /// which its destructive actions need within the last minutes.
    Reauth(remote::auth::ReauthArgs),
    /// End the saved session on an appliance (with --server).
    Logout,
    /// The daemon's unprivileged front (started by `lethe serve`).
    #[command(hide = true)]
    ServeFront(cmd_serve::FrontArgs),
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    // Asked for JSON? Then every ending, a bad command line included, leaves
    // a JSON object as the last line on stdout.
    let json = std::env::args_os().any(|a| a == "--json");
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return clap_error(&e, json),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return clap_error(&e, json),
    };
    let state = StateDir::new(&cli.state_dir);
    let sub = |name: &str| matches.subcommand_matches(name);
    // Only the commands that can run through the API look for an
    // appliance (so `lethe serve` and its front never read a client
    // configuration); the others refuse an explicit --server.
    let result = if !cli.cmd.through_api() {
        match &cli.remote.server {
            Some(_) => through_api_refused(&cli.cmd),
            None => here(&state, cli.cmd, sub("wipe")),
        }
    } else {
        match remote::target(&cli.remote) {
            Err(e) => Err(e),
            Ok(Some(r)) => through_api(&r, cli.cmd, sub("wipe")),
            Ok(None) => here(&state, cli.cmd, sub("wipe")),
        }
    };
    finish(result, json)
}

impl Cmd {
    /// Can this command run on an appliance through its HTTPS API?
    fn through_api(&self) -> bool {
        matches!(
            self,
            Cmd::Status(_)
                | Cmd::Jobs(_)
                | Cmd::Cert(_)
                | Cmd::Wipe(_)
                | Cmd::Login(_)
                | Cmd::Reauth(_)
                | Cmd::Logout
        )
    }
}

/// A command run through an appliance's HTTPS API (`--server`).
fn through_api(
    r: &remote::client::Remote,
    cmd: Cmd,
    wipe: Option<&clap::ArgMatches>,
) -> anyhow::Result<u8> {
    match cmd {
        Cmd::Status(a) => remote::views::status(r, a.json),
        Cmd::Jobs(a) => remote::views::jobs(r, &a),
        Cmd::Cert(a) => remote::views::cert(r, &a),
        Cmd::Wipe(a) => match wipe {
            Some(m) => remote::wipe::run(r, &a, m),
            None => Err(anyhow::anyhow!("internal: no wipe arguments")),
        },
        Cmd::Login(a) => remote::auth::login(r, &a),
        Cmd::Reauth(a) => remote::auth::reauth(r, &a),
        Cmd::Logout => remote::auth::logout(r),
        other => through_api_refused(&other),
    }
}

/// `--server` with a command that acts on this machine.
fn through_api_refused(cmd: &Cmd) -> anyhow::Result<u8> {
    Err(remote::not_remote(match cmd {
        Cmd::Drives(_) => "drives",
        Cmd::Degauss(_) => "degauss",
        Cmd::Controller(_) => "controller",
        Cmd::Backup(_) => "backup",
        Cmd::Audit(_) => "audit",
        Cmd::VerifyPack(_) => "verify-pack",
        Cmd::User(_) => "user",
        _ => "serve",
    }))
}

/// A command run on this machine.
fn here(state: &StateDir, cmd: Cmd, wipe: Option<&clap::ArgMatches>) -> anyhow::Result<u8> {
    match cmd {
        Cmd::Drives(a) => cmd_drives::run(&a),
        Cmd::Wipe(a) => match wipe {
            Some(m) => cmd_wipe::run(state, &a, m),
            None => Err(anyhow::anyhow!("internal: no wipe arguments")),
        },
        Cmd::Jobs(a) => cmd_jobs::run(state, &a),
        Cmd::Cert(a) => cmd_cert::run(state, &a),
        Cmd::Degauss(a) => cmd_degauss::run(state, &a),
        Cmd::Controller(a) => cmd_controller::run(&a),
        Cmd::Backup(a) => cmd_backup::run(state, &a),
        Cmd::Audit(a) => cmd_audit::run(state, &a),
        Cmd::VerifyPack(a) => cmd_pack::run(&a),
        Cmd::Serve(a) => cmd_serve::run(state, &a),
        Cmd::Status(a) => cmd_status::run(&a),
        Cmd::User(a) => cmd_user::run(&a),
        Cmd::ServeFront(a) => cmd_serve::front(&a),
        Cmd::Login(_) => Err(remote::needs_server("login")),
        Cmd::Reauth(_) => Err(remote::needs_server("reauth")),
        Cmd::Logout => Err(remote::needs_server("logout")),
    }
}

/// The exit code of a command's result (errors on stderr, and as the JSON
/// last line under `--json`).
fn finish(result: anyhow::Result<u8>, json: bool) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let (code, word) = match e.downcast_ref::<UsageError>() {
                Some(_) => (exit::USAGE, "usage_error"),
                None => (exit::ERROR, "error"),
            };
            eprintln!("lethe: error: {e:#}");
            if code == exit::USAGE {
                eprintln!("For more information, try '--help'.");
            }
            if json {
                json_ending(word, &format!("{e:#}"), code);
            }
            ExitCode::from(code)
        }
    }
}

/// The last line of a command that ended with an error under `--json`.
fn json_ending(result: &str, error: &str, code: u8) {
    let v = serde_json::json!({
        "job": null, "result": result, "certificate": null,
        "error": error, "exit_code": code,
    });
    outln!("{v}");
}

/// Help and version go to stdout with exit 0; every other parse error is a
/// usage error: exit [`exit::USAGE`] for every command, and under `--json`
/// a JSON object as the last stdout line.
fn clap_error(e: &clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    // A closed stdout or stderr must not turn into a panic here either.
    let _ = e.print();
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return ExitCode::from(exit::OK);
    }
    if json {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        json_ending(
            "usage_error",
            first.trim_start_matches("error: "),
            exit::USAGE,
        );
    }
    ExitCode::from(exit::USAGE)
}

/// Code that still prints with `println!` (and the standard library itself)
/// panics when stdout's reader is gone; end such a process quietly with
/// [`exit::PIPE_CLOSED`] instead of a panic message. Every other panic keeps
/// its message.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") {
            std::process::exit(i32::from(exit::PIPE_CLOSED));
        }
        default(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option and positional argument of every command has help text.
    #[test]
    fn every_argument_of_every_command_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                let has = a
                    .get_help()
                    .is_some_and(|h| !h.to_string().trim().is_empty())
                    || a.get_long_help()
                        .is_some_and(|h| !h.to_string().trim().is_empty());
                if !has {
                    missing.push(format!("{path} {id}"));
                }
            }
            for s in cmd.get_subcommands() {
                if s.get_about().is_none() && s.get_name() != "help" {
                    missing.push(format!("{path} {} (no description)", s.get_name()));
                }
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cmd, "lethe", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without help:\n{}",
            missing.join("\n")
        );
    }

    /// The controller's serial port has one name everywhere.
    #[test]
    fn the_controller_port_has_one_name_on_every_command() {
        let cmd = Cli::command();
        let mut seen = Vec::new();
        fn walk(cmd: &clap::Command, path: &str, seen: &mut Vec<(String, String)>) {
            for a in cmd.get_arguments() {
                let env = a.get_env().map(|e| e.to_string_lossy().into_owned());
                if env.as_deref() == Some("LETHE_CONTROLLER_PORT") {
                    seen.push((path.to_string(), a.get_long().unwrap_or("").to_string()));
                }
            }
            for s in cmd.get_subcommands() {
                walk(s, &format!("{path} {}", s.get_name()), seen);
            }
        }
        walk(&cmd, "lethe", &mut seen);
        assert!(seen.len() >= 3, "{seen:?}");
        for (path, long) in &seen {
            assert_eq!(long, "controller-port", "{path}");
        }
        // The old spelling still parses (a hidden alias).
        for args in [
            &["lethe", "controller", "status", "--port", "/dev/x"][..],
            &["lethe", "degauss", "--tape", "T1", "--port", "/dev/x"][..],
        ] {
            Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }
}
