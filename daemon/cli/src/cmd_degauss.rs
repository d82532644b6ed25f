//! `lethe degauss DEVICE | --tape LABEL`: destroy magnetic media in the degausser.

use crate::{edge, exit, render};
use anyhow::{bail, Result};
use clap::Args;
use lethe_jobs::confirm::Consequence;
use lethe_jobs::degauss::{eligibility, tape_identity};
use lethe_jobs::{DegaussRequest, Destination, JobRequest, Medium, Parties, Refusal, StateDir};
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
    let medium = match (&args.device, &args.tape) {
        (_, Some(label)) => Medium::Tape(label.clone()),
        (Some(path), None) => Medium::Device(path.clone()),
        (None, None) => bail!("give a DEVICE or --tape LABEL"),
    };
    // The controller is connected only when the job needs it: a medium
    // refused here never touches the serial port.
    let jobs = edge::jobs(state, Some(&args.port))?;
    let confirmation = if args.yes {
        edge::waived()
    } else {
        // Identify, refuse protected devices and anything not magnetic
        // before asking; the library checks all of it again.
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
        match edge::ask(&shown, Consequence::Degaussed)? {
            Some(c) => c,
            None => return Ok(exit::ERROR),
        }
    };
    let req = JobRequest::Degauss(DegaussRequest {
        medium,
        confirmation,
        parties: Parties {
            operator_id: args
                .operator_id
                .clone()
                .unwrap_or_else(edge::default_operator),
            operator_name: args.operator_name.clone().unwrap_or_default(),
            customer: args.customer.clone(),
            asset_tag: args.asset_tag.clone(),
            destination: Some(Destination::Destroy),
        },
    });
    let stop = edge::stop_flag()?;
    let job = jobs.submit(req);
    let report = render::Render::new(args.json, Duration::from_secs(1)).follow(&job, &stop);
    Ok(render::report(args.json, &report))
}
