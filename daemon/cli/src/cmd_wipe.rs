//! `lethe wipe DEVICE`: parse, build a request, render the job's events,
//! map its outcome to an exit code. The job itself (assessment, exclusive
//! open, confirmation check, record, engine, certificate) is the job
//! library's.

use crate::site::{self, SiteDefaults};
use crate::{edge, render, UsageError};
use anyhow::Result;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ValueEnum};
use lethe_controller::LedPattern;
use lethe_core::pattern::Pattern;
use lethe_core::plan::VerifyMode;
use lethe_jobs::confirm::Consequence;
use lethe_jobs::{
    JobRequest, MethodFamily, OverwriteOptions, Parties, PurgeOptions, ResumeRequest, StateDir,
    WipeLevel, WipeRequest,
};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Destination {
    Reuse,
    ReturnToLessor,
    Destroy,
}

impl From<Destination> for lethe_jobs::Destination {
    fn from(d: Destination) -> Self {
        match d {
            Destination::Reuse => lethe_jobs::Destination::Reuse,
            Destination::ReturnToLessor => lethe_jobs::Destination::ReturnToLessor,
            Destination::Destroy => lethe_jobs::Destination::Destroy,
        }
    }
}

/// `--level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    /// Verified overwrite of every user-addressable sector.
    Clear,
    /// Drive-native sanitize command chosen by the NIST SP 800-88 policy.
    Purge,
}

impl From<LevelArg> for WipeLevel {
    fn from(l: LevelArg) -> Self {
        match l {
            LevelArg::Clear => WipeLevel::Clear,
            LevelArg::Purge => WipeLevel::Purge,
        }
    }
}

/// `--method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// The policy chooses.
    Auto,
    /// Verified software overwrite (Clear).
    Overwrite,
    /// ATA SECURITY ERASE UNIT (enhanced when supported).
    AtaSecureErase,
    /// ATA SANITIZE (crypto scramble, block erase or overwrite, best first).
    AtaSanitize,
    /// NVMe Format NVM with Secure Erase Settings.
    NvmeFormat,
    /// NVMe Sanitize (crypto erase, block erase or overwrite, best first).
    NvmeSanitize,
    /// SCSI SANITIZE.
    ScsiSanitize,
}

impl From<MethodArg> for MethodFamily {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Auto => MethodFamily::Auto,
            MethodArg::Overwrite => MethodFamily::Overwrite,
            MethodArg::AtaSecureErase => MethodFamily::AtaSecureErase,
            MethodArg::AtaSanitize => MethodFamily::AtaSanitize,
            MethodArg::NvmeFormat => MethodFamily::NvmeFormat,
            MethodArg::NvmeSanitize => MethodFamily::NvmeSanitize,
            MethodArg::ScsiSanitize => MethodFamily::ScsiSanitize,
        }
    }
}

#[derive(Args)]
pub struct WipeArgs {
    /// The whole device to wipe, e.g. /dev/sdb or /dev/disk/by-id/ata-…
    #[arg(required_unless_present = "resume")]
    pub(crate) device: Option<PathBuf>,
    /// Continue an interrupted or stopped job (its device is taken from the
    /// job unless DEVICE is given, e.g. when the drive got a new name).
    #[arg(long, value_name = "JOB")]
    pub(crate) resume: Option<String>,
    /// random (AES-128-CTR stream), zero, one, or a byte such as 0xA5.
    #[arg(long, default_value = "random")]
    pattern: Pattern,
    /// Number of passes of the pattern.
    #[arg(long, default_value_t = 1)]
    passes: u32,
    /// full, sample:PERCENT (e.g. sample:10) or off. With off nothing is read
    /// back: the result is "unverified" (exit 5), a report, never a certificate.
    #[arg(long, default_value = "full")]
    verify: VerifyMode,
    /// Add a final zero pass (for drives going back to reuse); it is the pass verified.
    #[arg(long)]
    blank: bool,
    /// clear: verified overwrite. purge: drive-native command chosen by the
    /// NIST SP 800-88 policy, then a read-back proof.
    #[arg(long, value_enum, default_value = "clear")]
    level: LevelArg,
    /// Force a method family; refused with an explanation if the drive lacks it.
    #[arg(long, value_enum, default_value = "auto")]
    method: MethodArg,
    /// Restore the native max address (remove an ATA HPA) before the erase.
    #[arg(long)]
    remove_hpa: bool,
    /// Fail instead of falling back (to another command, or to a Clear overwrite).
    #[arg(long)]
    no_fallback: bool,
    /// Seconds to wait for the operator to unfreeze a frozen drive.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    unfreeze_wait: u64,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    /// JSON lines of progress on stdout, and a JSON summary as the last line.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    parties: edge::PartyArgs,
    /// Where the drive goes after sanitization.
    #[arg(long, value_enum)]
    destination: Option<Destination>,
    /// I/Os in flight (worker threads).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    io_depth: u16,
    /// Size of each I/O in MiB (1 MiB measured fastest: the generated data is
    /// still in cache when it is written).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    chunk_mib: u16,
    /// Seconds between durable checkpoints (flush + job-store update).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=3600))]
    checkpoint_secs: u16,
    /// Front-panel bay of this drive: its LED shows attention while waiting for
    /// confirmation, busy while wiping, then success or failure.
    #[arg(long, value_name = "N")]
    bay: Option<u8>,
    /// Serial port of the front-panel controller (needed with --bay).
    #[arg(
        long,
        env = "LETHE_CONTROLLER_PORT",
        alias = "port",
        value_name = "PORT"
    )]
    controller_port: Option<String>,
    /// Milliseconds between JSON progress lines (tests use short intervals).
    #[arg(long, default_value_t = 1000, hide = true)]
    progress_interval_ms: u64,
}

/// Options a resumed job keeps from its start: given with `--resume`, they
/// are an error, not silently ignored.
const FIXED_AT_START: &[(&str, &str)] = &[
    ("pattern", "--pattern"),
    ("passes", "--passes"),
    ("verify", "--verify"),
    ("blank", "--blank"),
    ("level", "--level"),
    ("method", "--method"),
    ("remove_hpa", "--remove-hpa"),
    ("no_fallback", "--no-fallback"),
    ("unfreeze_wait", "--unfreeze-wait"),
    ("operator_id", "--operator-id"),
    ("operator_name", "--operator-name"),
    ("location", "--location"),
    ("media_source", "--media-source"),
    ("customer", "--customer"),
    ("asset_tag", "--asset-tag"),
    ("config", "--config"),
    ("destination", "--destination"),
    ("io_depth", "--io-depth"),
    ("chunk_mib", "--chunk-mib"),
];

/// With `--resume`, the options given on the command line that the job
/// cannot change (it continues with the ones it started with).
fn fixed_options_given(m: &ArgMatches) -> Vec<&'static str> {
    FIXED_AT_START
        .iter()
        .filter(|(id, _)| m.value_source(id) == Some(ValueSource::CommandLine))
        .map(|(_, flag)| *flag)
        .collect()
}

pub fn run(state: &StateDir, args: &WipeArgs, matches: &ArgMatches) -> Result<u8> {
    if args.resume.is_some() {
        let fixed = fixed_options_given(matches);
        if !fixed.is_empty() {
            return Err(UsageError(format!(
                "{} cannot be changed when resuming: a job continues with the options it \
                 started with (see them with `lethe jobs show JOB`); to use others, start a new job",
                fixed.join(", ")
            ))
            .into());
        }
    }
    let port = match (args.bay, args.controller_port.as_deref()) {
        (Some(_), None) => {
            eprintln!("lethe: warning: --bay needs --controller-port or LETHE_CONTROLLER_PORT; no bay LED");
            None
        }
        (Some(_), Some(p)) => Some(p),
        (None, _) => None,
    };
    let bay = args.bay.filter(|_| port.is_some());
    let device = match (&args.device, &args.resume) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(_)) => None,
        (None, None) => return Err(UsageError("give a DEVICE or --resume JOB".into()).into()),
    };
    // A resumed job keeps the parties it started with.
    let site = match &args.resume {
        Some(_) => SiteDefaults::none(),
        None => site::load(args.parties.config.as_deref())?,
    };
    let parties = match &args.resume {
        Some(_) => Parties::default(),
        None => match edge::parties(&args.parties, &site, args.destination.map(Into::into)) {
            Ok(p) => p,
            Err(why) => {
                eprintln!("lethe: {}", edge::OPERATOR_HINT);
                return Ok(render::refusal(args.json, &why));
            }
        },
    };
    let jobs = edge::jobs_for_site(state, port, &site)?;

    // What the operator is shown and must confirm: the device as assessed
    // now (refused here already if protected), or the device a stopped job
    // recorded.
    let confirmation = if args.yes {
        edge::waived()
    } else {
        let shown = match (&args.resume, &device) {
            (Some(job), _) => jobs.resumable(job),
            (None, Some(d)) => jobs.inspect(d),
            (None, None) => unreachable!("checked above"),
        };
        let shown = match shown {
            Ok(s) => s,
            Err(why) => return Ok(render::refusal(args.json, &why)),
        };
        let panel = jobs.config().panel.clone();
        let led = |p| {
            if let (Some(panel), Some(bay)) = (&panel, bay) {
                if let Err(e) = panel.set_led(bay, p) {
                    eprintln!("lethe: warning: no bay {bay} LED: {e}");
                }
            }
        };
        led(LedPattern::Attention);
        match edge::ask_or_refuse(&shown, Consequence::Destroyed)? {
            Ok(c) => c,
            Err(why) => {
                led(LedPattern::Idle);
                return Ok(render::refusal(args.json, &why));
            }
        }
    };

    let checkpoint_interval = Duration::from_secs(u64::from(args.checkpoint_secs));
    let req = match &args.resume {
        Some(job) => JobRequest::Resume(ResumeRequest {
            job: job.clone(),
            device: device.clone(),
            confirmation,
            bay,
            checkpoint_interval,
        }),
        None => JobRequest::Wipe(WipeRequest {
            device: device.clone().unwrap_or_default(),
            confirmation,
            level: args.level.into(),
            method: args.method.into(),
            overwrite: OverwriteOptions {
                pattern: args.pattern,
                passes: args.passes,
                blank: args.blank,
                verify: args.verify,
                chunk_size: usize::from(args.chunk_mib) << 20,
                depth: usize::from(args.io_depth),
            },
            purge: PurgeOptions {
                remove_hpa: args.remove_hpa,
                allow_fallback: !args.no_fallback,
                unfreeze_wait: Duration::from_secs(args.unfreeze_wait),
                ..PurgeOptions::default()
            },
            parties,
            bay,
            checkpoint_interval,
        }),
    };
    let stop = edge::stop_flag()?;
    let job = jobs.submit(req);
    let mut view = render::Render::new(args.json, Duration::from_millis(args.progress_interval_ms));
    let report = view.follow(&job, &stop);
    Ok(render::report(args.json, &report))
}
