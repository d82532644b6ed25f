//! `lethe degauss DEVICE | --tape LABEL`: destroy magnetic media in the degausser.
//!
//! Order, so that nothing is asked for or recorded in vain: the medium is
//! identified (a protected device, or anything not magnetic, is refused
//! without contacting the controller), then the controller must answer and
//! say the degausser is ready (no fault, no e-stop, door closed), and only
//! then is the operator asked to confirm. The job library checks all of it
//! again before it records the job.

use crate::site;
use crate::{edge, render};
use anyhow::Result;
use clap::Args;
use lethe_jobs::confirm::Consequence;
use lethe_jobs::degauss::{eligibility, tape_identity};
use lethe_jobs::{DegaussRequest, Destination, JobRequest, Medium, Refusal, StateDir};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct DegaussArgs {
    /// The drive to destroy (a rotating magnetic disk).
    #[arg(required_unless_present = "tape", conflicts_with = "tape")]
    device: Option<PathBuf>,
    /// Degauss a tape the operator declares, identified by its label or barcode.
    #[arg(long, value_name = "LABEL")]
    tape: Option<String>,
    /// Serial port of the degausser controller (e.g. /dev/ttyACM0).
    #[arg(
        long,
        env = "LETHE_CONTROLLER_PORT",
        alias = "port",
        value_name = "PORT"
    )]
    controller_port: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print the result as JSON (the last line on stdout is always a JSON object).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    parties: edge::PartyArgs,
}

pub fn run(state: &StateDir, args: &DegaussArgs) -> Result<u8> {
    let medium = match (&args.device, &args.tape) {
        (_, Some(label)) => Medium::Tape(label.clone()),
        (Some(path), None) => Medium::Device(path.clone()),
        (None, None) => {
            return Err(crate::UsageError("give a DEVICE or --tape LABEL".into()).into())
        }
    };
    let site = site::load(args.parties.config.as_deref())?;
    let parties = match edge::parties(&args.parties, &site, Some(Destination::Destroy)) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("lethe: {}", edge::OPERATOR_HINT);
            return Ok(render::refusal(args.json, &why));
        }
    };
    // The controller is connected only when the job needs it: a medium
    // refused here never touches the serial port.
    let jobs = edge::jobs_for_site(state, Some(&args.controller_port), &site)?;
    // Identify, refuse protected devices and anything not magnetic first.
    let shown = match &medium {
        Medium::Tape(label) => tape_identity(label),
        Medium::Device(path) => match jobs.inspect(path) {
            Ok(id) => id,
            Err(why) => return Ok(render::refusal(args.json, &why)),
        },
    };
    if let Err(why) = eligibility(&shown) {
        return Ok(render::refusal(args.json, &Refusal::NotMagnetic(why)));
    }
    // Then the controller must answer and be ready, before anyone is asked
    // to confirm (or, with --yes, before anything is recorded).
    let ready = match jobs.config().panel.as_ref() {
        Some(panel) => panel.ready().map_err(Refusal::ControllerNotReady),
        None => Err(Refusal::NoController),
    };
    if let Err(why) = ready {
        return Ok(render::refusal(args.json, &why));
    }
    let confirmation = if args.yes {
        edge::waived()
    } else {
        match edge::ask_or_refuse(&shown, Consequence::Degaussed)? {
            Ok(c) => c,
            Err(why) => return Ok(render::refusal(args.json, &why)),
        }
    };
    let req = JobRequest::Degauss(DegaussRequest {
        medium,
        confirmation,
        parties,
    });
    let stop = edge::stop_flag()?;
    let job = jobs.submit(req);
    let report = render::Render::new(args.json, Duration::from_secs(1)).follow(&job, &stop);
    Ok(render::report(args.json, &report))
}
