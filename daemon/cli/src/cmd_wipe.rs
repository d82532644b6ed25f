//! `lethe wipe DEVICE`: refuse protected devices, confirm, wipe, verify, certify.

use crate::{cmd_drives, exit};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use lethe_cert::ApplianceKey;
use lethe_cli::confirm;
use lethe_cli::identity::DeviceIdentity;
use lethe_cli::job::{self, JobContext, JobParties, JobReport, ProgressSink, WipeSpec};
use lethe_cli::progress::{Bar, JsonLines};
use lethe_cli::state::StateDir;
use lethe_controller::{Controller, ControllerConfig, LedPattern};
use lethe_core::device::BlockDevice;
use lethe_core::pattern::Pattern;
use lethe_core::plan::{VerifyMode, WipePlan};
use lethe_linux::blockdev::{DirectDevice, OpenError};
use lethe_wipe::Verdict;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Destination {
    Reuse,
    ReturnToLessor,
    Destroy,
}

impl Destination {
    fn as_str(self) -> &'static str {
        match self {
            Destination::Reuse => "reuse",
            Destination::ReturnToLessor => "return_to_lessor",
            Destination::Destroy => "destroy",
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

impl From<LevelArg> for lethe_cmds::policy::Level {
    fn from(l: LevelArg) -> Self {
        match l {
            LevelArg::Clear => lethe_cmds::policy::Level::Clear,
            LevelArg::Purge => lethe_cmds::policy::Level::Purge,
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

#[derive(Args)]
pub struct WipeArgs {
    /// The whole device to wipe, e.g. /dev/sdb or /dev/disk/by-id/ata-…
    #[arg(required_unless_present = "resume")]
    device: Option<PathBuf>,
    /// Continue an interrupted or stopped job (its device is taken from the
    /// job unless DEVICE is given, e.g. when the drive got a new name).
    #[arg(long, value_name = "JOB")]
    resume: Option<String>,
    /// random (AES-128-CTR stream), zero, one, or a byte such as 0xA5.
    #[arg(long, default_value = "random")]
    pattern: Pattern,
    /// Number of passes of the pattern.
    #[arg(long, default_value_t = 1)]
    passes: u32,
    /// full, sample:PERCENT (e.g. sample:10) or off. With off, no pass certificate can be issued.
    #[arg(long, default_value = "full")]
    verify: VerifyMode,
    /// Add a final zero pass (for drives going back to reuse); it is the pass verified.
    #[arg(long)]
    blank: bool,
    /// clear: verified overwrite. purge: drive-native command chosen by the
    /// NIST SP 800-88 policy, then a read-back proof.
    #[arg(long, value_enum, default_value = "clear")]
    pub(crate) level: LevelArg,
    /// Force a method family; refused with an explanation if the drive lacks it.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) method: MethodArg,
    /// Restore the native max address (remove an ATA HPA) before the erase.
    #[arg(long)]
    pub(crate) remove_hpa: bool,
    /// Fail instead of falling back (to another command, or to a Clear overwrite).
    #[arg(long)]
    pub(crate) no_fallback: bool,
    /// Seconds to wait for the operator to unfreeze a frozen drive.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub(crate) unfreeze_wait: u64,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    /// JSON lines of progress on stdout, and a JSON summary as the last line.
    #[arg(long)]
    json: bool,
    /// Operator id recorded on the certificate (default: $SUDO_USER or $USER).
    #[arg(long, env = "LETHE_OPERATOR_ID")]
    operator_id: Option<String>,
    /// Operator name recorded on the certificate.
    #[arg(long, env = "LETHE_OPERATOR_NAME")]
    operator_name: Option<String>,
    /// Customer the drive belongs to.
    #[arg(long)]
    customer: Option<String>,
    /// Asset or property number of the drive or of the machine it came from.
    #[arg(long)]
    asset_tag: Option<String>,
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
    #[arg(long, env = "LETHE_CONTROLLER_PORT")]
    controller_port: Option<String>,
    /// Milliseconds between JSON progress lines (tests use short intervals).
    #[arg(long, default_value_t = 1000, hide = true)]
    progress_interval_ms: u64,
}

pub fn default_operator() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

pub fn run(state: &StateDir, args: &WipeArgs) -> Result<u8> {
    let (path, resume_spec) = match &args.resume {
        Some(id) => {
            let spec = job::load_resumable(state, id)?;
            let path = args
                .device
                .clone()
                .unwrap_or_else(|| PathBuf::from(&spec.device.path));
            (path, Some(spec))
        }
        None => match &args.device {
            Some(p) => (p.clone(), None),
            None => bail!("give a DEVICE or --resume JOB"),
        },
    };

    // 1. Refuse protected devices before anything is opened for writing.
    let identity = match cmd_drives::assess(&path) {
        Ok(id) => id,
        Err(refusal) => return Ok(refuse(args.json, &refusal.to_string())),
    };

    let leds = BayLeds::connect(args.bay, args.controller_port.as_deref());
    // 2. Confirmation.
    if !args.yes {
        leds.set(LedPattern::Attention);
        let shown = resume_spec.as_ref().map(|s| &s.device).unwrap_or(&identity);
        if !std::io::stdin().is_terminal() {
            eprintln!("{}", confirm::prompt(shown));
        } else {
            eprint!("{}", confirm::prompt(shown));
        }
        let confirmed =
            confirm::ask(shown, &mut std::io::stdin().lock()).context("reading confirmation")?;
        if !confirmed {
            leds.set(LedPattern::Idle);
            eprintln!("lethe: not confirmed; nothing was written");
            return Ok(exit::ERROR);
        }
    }

    // 3. Exclusive direct open: the kernel's own check that nobody holds it.
    let dev = match DirectDevice::open(&path) {
        Ok(d) => d,
        Err(e @ (OpenError::Busy { .. } | OpenError::NotBlockDevice { .. })) => {
            return Ok(refuse(args.json, &e.to_string()));
        }
        Err(e) => return Err(e).context("opening the device"),
    };
    if dev.geometry().size_bytes != identity.size_bytes {
        bail!(
            "{}: size changed between inspection ({}) and open ({}); nothing was written",
            path.display(),
            identity.size_bytes,
            dev.geometry().size_bytes
        );
    }

    let key =
        ApplianceKey::load_or_create(&state.keys()).context("loading the appliance signing key")?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }

    let mut bar = None;
    let json_lines;
    let sink: &dyn ProgressSink = if args.json {
        json_lines = JsonLines::with_interval(Duration::from_millis(args.progress_interval_ms));
        &json_lines
    } else if std::io::stderr().is_terminal() {
        &*bar.insert(Bar::new())
    } else {
        &()
    };
    let ctx = JobContext {
        state,
        key: &key,
        stop: &stop,
        sink,
        checkpoint_interval: Duration::from_secs(u64::from(args.checkpoint_secs)),
    };

    let native = args.resume.is_none()
        && (args.level == LevelArg::Purge
            || !matches!(args.method, MethodArg::Auto | MethodArg::Overwrite));
    let setup = if native {
        match crate::cmd_purge::prepare(args, &path, &identity)? {
            crate::cmd_purge::Prepared::Run(s) => Some(s),
            crate::cmd_purge::Prepared::Refused(why) => {
                leds.set(LedPattern::Attention);
                return Ok(refuse(args.json, &why));
            }
        }
    } else {
        None
    };
    leds.set(LedPattern::Busy);
    let report = match (&args.resume, resume_spec, setup) {
        (Some(id), Some(_), _) => {
            job::resume(&ctx, &dev, id, &identity).map_err(anyhow::Error::from)
        }
        (_, _, Some(setup)) => new_spec(args, identity).and_then(|spec| {
            crate::cmd_purge::run(&ctx, &dev, *setup, spec, args.json, &|| {
                leds.set(LedPattern::Attention)
            })
        }),
        _ => new_spec(args, identity).and_then(|spec| Ok(job::start(&ctx, &dev, spec)?)),
    };
    if let Some(b) = &bar {
        b.finish();
    }
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            leds.set(LedPattern::Failure);
            return Err(e);
        }
    };
    leds.set(match report.result {
        Verdict::Pass => LedPattern::Success,
        Verdict::Fail => LedPattern::Failure,
        Verdict::Incomplete => LedPattern::Attention,
    });
    print_report(args.json, &report)?;
    Ok(match report.result {
        Verdict::Pass if report.requested.is_some() => exit::LOWER_LEVEL,
        Verdict::Pass => exit::OK,
        Verdict::Fail => exit::FAILED,
        Verdict::Incomplete => exit::INCOMPLETE,
    })
}

/// Buffers are the only memory that grows with the options: each worker owns
/// a write buffer and a read buffer of one chunk. Nothing scales with the
/// device size, so this cap keeps peak memory far below 128 MiB.
const MAX_BUFFER_MIB: u32 = 64;

/// The bay LED of the drive being wiped, when a controller is configured.
/// The LED is a convenience: if the controller is unreachable the wipe goes on
/// and a warning says why.
struct BayLeds {
    inner: Option<(tokio::runtime::Runtime, Controller, u8)>,
}

impl BayLeds {
    fn connect(bay: Option<u8>, port: Option<&str>) -> Self {
        let Some(bay) = bay else {
            return Self { inner: None };
        };
        let Some(port) = port else {
            eprintln!("lethe: warning: --bay needs --controller-port or LETHE_CONTROLLER_PORT; no bay LED");
            return Self { inner: None };
        };
        let rt = match crate::cmd_controller::runtime() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("lethe: warning: no bay LED: {e:#}");
                return Self { inner: None };
            }
        };
        match rt.block_on(Controller::connect(ControllerConfig::new(port))) {
            Ok(c) => Self {
                inner: Some((rt, c, bay)),
            },
            Err(e) => {
                eprintln!("lethe: warning: controller on {port} unavailable, no bay LED: {e}");
                Self { inner: None }
            }
        }
    }

    fn set(&self, pattern: LedPattern) {
        if let Some((rt, c, bay)) = &self.inner {
            if let Err(e) = rt.block_on(c.set_led(*bay, pattern)) {
                eprintln!("lethe: warning: bay {bay} LED: {e}");
            }
        }
    }
}

/// Report a refusal: always on stderr, and as the JSON last line for scripts.
fn refuse(json: bool, why: &str) -> u8 {
    eprintln!("lethe: refused: {why}");
    if json {
        let v = serde_json::json!({"job": null, "result": "refused", "certificate": null, "error": why});
        println!("{v}");
    }
    exit::ERROR
}

fn new_spec(args: &WipeArgs, device: DeviceIdentity) -> Result<WipeSpec> {
    let buffers = 2 * u32::from(args.io_depth) * u32::from(args.chunk_mib);
    if buffers > MAX_BUFFER_MIB {
        bail!(
            "--io-depth {} × --chunk-mib {} needs {buffers} MiB of buffers; the limit is {MAX_BUFFER_MIB} MiB",
            args.io_depth,
            args.chunk_mib
        );
    }
    let plan = WipePlan::new(args.pattern, args.passes, args.blank, args.verify)?;
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("OS random generator: {e}"))?;
    Ok(WipeSpec {
        device,
        plan,
        sample_seed: u64::from_le_bytes(seed),
        chunk_size: usize::from(args.chunk_mib) << 20,
        depth: usize::from(args.io_depth),
        parties: JobParties {
            operator_id: args.operator_id.clone().unwrap_or_else(default_operator),
            operator_name: args.operator_name.clone().unwrap_or_default(),
            customer: args.customer.clone(),
            asset_tag: args.asset_tag.clone(),
            destination: args.destination.map(|d| d.as_str().to_string()),
        },
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        purge: None,
    })
}

fn print_report(json: bool, r: &JobReport) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let headline = match (r.result, &r.requested) {
        (Verdict::Pass, Some(req)) => {
            format!(
                "PASS at {} only ({req} was requested): see the certificate's reasons",
                r.category
            )
        }
        (Verdict::Pass, None) => format!("PASS: {} ({}) and verified", r.method, r.category),
        (Verdict::Fail, _) => "FAIL: the device is NOT certified as sanitized".into(),
        (Verdict::Incomplete, _) => "INCOMPLETE: stopped before the end".into(),
    };
    println!("{headline}");
    println!("  job          {}", r.job);
    println!("  device       {}", r.device);
    println!("  method       {} ({})", r.method, r.category);
    println!("  written      {} bytes", r.bytes_written);
    println!("  verified     {} bytes", r.bytes_verified);
    for p in &r.problems {
        println!("  problem      {p}");
    }
    for range in r.failed_ranges.iter().take(20) {
        println!(
            "  failed range bytes {}..{} ({} bytes)",
            range.offset,
            range.end(),
            range.length
        );
    }
    if r.failed_ranges.len() > 20 {
        println!(
            "  … {} more failed ranges in the report",
            r.failed_ranges.len() - 20
        );
    }
    if let Some(c) = &r.certificate {
        let what = if r.result == Verdict::Pass {
            "certificate"
        } else {
            "report"
        };
        println!("  {what:<12} {c}");
    }
    if let Some(p) = &r.pdf {
        println!("  pdf          {p}");
    }
    if r.resumable {
        println!("  resume with  lethe wipe --resume {}", r.job);
    }
    Ok(())
}
