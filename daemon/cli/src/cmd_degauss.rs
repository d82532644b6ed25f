//! `lethe degauss DEVICE | --tape LABEL`: destroy magnetic media in the degausser.

use crate::{cmd_controller, cmd_drives, exit};
use anyhow::{bail, Context, Result};
use clap::Args;
use lethe_cert::ApplianceKey;
use lethe_cli::confirm;
use lethe_cli::degauss::{self, DegaussSpec};
use lethe_cli::job::{JobContext, JobParties};
use lethe_cli::state::StateDir;
use lethe_controller::Consent;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(Args)]
pub struct DegaussArgs {
    /// The drive to destroy (a rotating magnetic disk).
    #[arg(required_unless_present = "tape", conflicts_with = "tape")]
    device: Option<PathBuf>,
    /// Degauss a tape the operator declares, identified by its label or barcode.
    #[arg(long, value_name = "LABEL")]
    tape: Option<String>,
    /// Serial port of the degausser controller.
    #[arg(long, env = "LETHE_CONTROLLER_PORT")]
    port: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[arg(long, env = "LETHE_OPERATOR_ID")]
    operator_id: Option<String>,
    #[arg(long, env = "LETHE_OPERATOR_NAME")]
    operator_name: Option<String>,
    #[arg(long)]
    customer: Option<String>,
    #[arg(long)]
    asset_tag: Option<String>,
}

pub fn run(state: &StateDir, args: &DegaussArgs) -> Result<u8> {
    // 1. Identify, refuse protected devices, and refuse anything not magnetic,
    //    before the controller is even contacted.
    let identity = match (&args.device, &args.tape) {
        (_, Some(label)) => degauss::tape_identity(label),
        (Some(path), None) => match cmd_drives::assess(path) {
            Ok(id) => id,
            Err(refusal) => {
                eprintln!("lethe: refused: {refusal}");
                return Ok(exit::ERROR);
            }
        },
        (None, None) => bail!("give a DEVICE or --tape LABEL"),
    };
    if let Err(why) = degauss::eligibility(&identity) {
        eprintln!("lethe: refused: {why}; nothing was done");
        return Ok(exit::ERROR);
    }
    // 2. Confirmation: the drive will be physically unusable afterwards. The controller library
    //    checks the typed answer and binds the consent to the medium it arms for.
    let consent = if args.yes {
        Consent::assume_yes(identity.path.clone())
    } else {
        eprint!(
            "{}",
            confirm::prompt(&identity).replace("ALL DATA on", "Degaussing DESTROYS")
        );
        if !std::io::stdin().is_terminal() {
            eprintln!();
        }
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("reading confirmation")?;
        let size = identity.size_bytes.to_string();
        let mut accepted: Vec<&str> = identity.serial.as_deref().into_iter().collect();
        if identity.size_bytes > 0 {
            accepted.push(&size);
        }
        match Consent::typed(identity.path.clone(), &accepted, &answer) {
            Ok(c) => c,
            Err(_) => {
                eprintln!("lethe: not confirmed; nothing was done");
                return Ok(exit::ERROR);
            }
        }
    };
    let key =
        ApplianceKey::load_or_create(&state.keys()).context("loading the appliance signing key")?;
    let stop = AtomicBool::new(false);
    let ctx = JobContext {
        state,
        key: &key,
        stop: &stop,
        sink: &(),
        checkpoint_interval: Duration::from_secs(5),
    };
    let spec = DegaussSpec {
        device: identity,
        parties: JobParties {
            operator_id: args
                .operator_id
                .clone()
                .unwrap_or_else(crate::cmd_wipe::default_operator),
            operator_name: args.operator_name.clone().unwrap_or_default(),
            customer: args.customer.clone(),
            asset_tag: args.asset_tag.clone(),
            destination: Some("destroy".into()),
        },
        port: args.port.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let rt = cmd_controller::runtime()?;
    let report = degauss::run(&ctx, &spec, |port| {
        rt.block_on(lethe_controller::cli_support::degauss_once(port, &consent))
            .map_err(|e| e.to_string())
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if report.result == "pass" {
        println!("DESTROYED: degausser cycle confirmed by the controller");
        println!("  job          {}", report.job);
        println!("  certificate  {}", report.certificate);
        println!("  pdf          {}", report.pdf);
    } else {
        println!("FAIL: no completed degauss cycle; the medium is NOT certified as destroyed");
        println!(
            "  reason       {}",
            report.error.as_deref().unwrap_or("unknown")
        );
        println!("  report       {}", report.certificate);
    }
    Ok(if report.result == "pass" {
        exit::OK
    } else {
        exit::FAILED
    })
}
