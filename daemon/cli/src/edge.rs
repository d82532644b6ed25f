//! What every job command shares at the edge: opening the job library,
//! asking the operator to confirm, Ctrl-C, and who the operator is.

use crate::site::SiteDefaults;
use anyhow::{Context, Result};
use clap::Args;
use lethe_controller::ControllerConfig;
use lethe_jobs::confirm::{self, Consequence};
use lethe_jobs::{
    Confirmation, DeviceIdentity, Jobs, JobsConfig, Panel, Parties, Refusal, StateDir,
};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The job library on this machine's devices, with the front-panel
/// controller on `port` when one is given (connected on first use), and the
/// site's operator policy.
pub fn jobs_for_site(state: &StateDir, port: Option<&str>, site: &SiteDefaults) -> Result<Jobs> {
    let mut cfg = JobsConfig::new(state.clone());
    cfg.require_operator = site.site.require_operator;
    cfg.observers.extend(crate::audit_hook::observer(state));
    if let Some(port) = port {
        let panel = Panel::start(ControllerConfig::from_env(port))
            .context("starting the controller runtime")?;
        cfg.panel = Some(Arc::new(panel));
    }
    Jobs::open(cfg).context("opening the job library")
}

/// The job library for jobs that issue no certificate (an image restore):
/// no site policy applies.
pub fn jobs(state: &StateDir, port: Option<&str>) -> Result<Jobs> {
    jobs_for_site(state, port, &SiteDefaults::none())
}

/// [`ask_or_refuse`], saying "not confirmed" on stderr and giving `None`.
pub fn ask(shown: &DeviceIdentity, what: Consequence) -> Result<Option<Confirmation>> {
    Ok(match ask_or_refuse(shown, what)? {
        Ok(c) => Some(c),
        Err(why) => {
            eprintln!("lethe: {why}");
            None
        }
    })
}

/// Who restores an image, for the job's history (not a certificate):
/// $SUDO_USER or $USER.
pub fn default_operator() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Ask the operator to type the serial or size of `shown`. `Err` with the
/// refusal when the answer does not confirm it (the library checks the
/// answer again, against the device it opens).
pub fn ask_or_refuse(
    shown: &DeviceIdentity,
    what: Consequence,
) -> Result<Result<Confirmation, Refusal>> {
    let prompt = confirm::prompt(shown, what);
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}");
    } else {
        eprintln!("{prompt}");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading confirmation")?;
    if !confirm::accepts(shown, &line) {
        let answer = line.trim();
        let why = if answer.is_empty() {
            "no answer was given".to_string()
        } else {
            format!("{answer:?} does not match what was asked for")
        };
        return Ok(Err(Refusal::NotConfirmed(why)));
    }
    Ok(Ok(Confirmation::typed(shown.clone(), line.trim())))
}

/// `--yes`: the operator confirmed on the command line.
pub fn waived() -> Confirmation {
    Confirmation::Waived {
        by: "--yes on the command line".into(),
    }
}

/// A flag set by SIGINT and SIGTERM: the job is cancelled at its next safe point.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    Ok(stop)
}

/// Who runs a sanitization job, where, and for whom: the options every
/// certificate-issuing command shares. Unset values come from the site
/// configuration (`[site]` of `lethe.toml`).
#[derive(Args, Debug, Clone)]
pub struct PartyArgs {
    /// Operator id recorded on the certificate. Default: `operator_id` in the
    /// configuration's [site], else the user who ran `sudo` ($SUDO_USER).
    /// Without one the job is refused, unless [site] require_operator = false.
    #[arg(long, env = "LETHE_OPERATOR_ID", value_name = "ID")]
    pub operator_id: Option<String>,
    /// Operator name recorded on the certificate (default: [site] operator_name).
    #[arg(long, env = "LETHE_OPERATOR_NAME", value_name = "NAME")]
    pub operator_name: Option<String>,
    /// Where the appliance stands, on the certificate (default: [site] location).
    #[arg(long, value_name = "TEXT")]
    pub location: Option<String>,
    /// NIST "media source": the user or computer the media came from
    /// (default: [site] media_source).
    #[arg(long, value_name = "TEXT")]
    pub media_source: Option<String>,
    /// Customer (data owner) the media belongs to.
    #[arg(long, value_name = "TEXT")]
    pub customer: Option<String>,
    /// Asset or property number of the drive or of the machine it came from.
    #[arg(long, value_name = "TAG")]
    pub asset_tag: Option<String>,
    /// The configuration file to take [site] defaults from (default:
    /// $LETHE_CONFIG, else /etc/lethe/lethe.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The parties of a new job: options first, then the site configuration,
/// then the `sudo` login. `Err` (a refusal, before any prompt) when no
/// operator is named and the site requires one.
pub fn parties(
    a: &PartyArgs,
    site: &SiteDefaults,
    destination: Option<lethe_jobs::Destination>,
) -> Result<Parties, Refusal> {
    let from_env = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    let given = a.operator_id.clone().filter(|v| !v.trim().is_empty());
    let (operator_id, source, config_name) = match (given, &site.site.operator) {
        (Some(id), _) => {
            let source = if from_env("LETHE_OPERATOR_ID").as_deref() == Some(id.as_str()) {
                "LETHE_OPERATOR_ID"
            } else {
                "--operator-id"
            };
            (id, Some(source.to_string()), None)
        }
        (None, Some(op)) => (
            op.id.clone(),
            Some(site.source("operator_id")),
            op.name.clone(),
        ),
        (None, None) => match from_env("SUDO_USER").filter(|u| u != "root") {
            Some(user) => (user, Some("the sudo login ($SUDO_USER)".into()), None),
            None => (String::new(), None, None),
        },
    };
    let parties = Parties {
        operator_id,
        operator_name: a.operator_name.clone().or(config_name).unwrap_or_default(),
        operator_source: source,
        customer: a.customer.clone(),
        asset_tag: a.asset_tag.clone(),
        destination,
        location: a.location.clone().or_else(|| site.site.location.clone()),
        media_source: a
            .media_source
            .clone()
            .or_else(|| site.site.media_source.clone()),
    };
    if site.site.require_operator && !parties.has_operator() {
        return Err(Refusal::NoOperator);
    }
    Ok(parties)
}

/// How to name an operator, after a [`Refusal::NoOperator`].
pub const OPERATOR_HINT: &str =
    "name the operator with --operator-id ID (or LETHE_OPERATOR_ID=ID, \
     or operator_id in the [site] section of /etc/lethe/lethe.toml)";
