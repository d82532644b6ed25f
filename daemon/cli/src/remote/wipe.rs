//! `lethe --server … wipe BAY|DEVICE` and `wipe --resume JOB`: start (or
//! resume) a bay's job on an appliance, follow its progress stream to the
//! end, and print the outcome with the exit codes of a local wipe.
//!
//! What is done to the drive (level, method, passes, verification) is the
//! bay's policy on the appliance; options that would change it locally are
//! refused here rather than silently ignored. The operator still types the
//! drive's serial or exact size, and the appliance checks that answer
//! against the device its job opens.

use super::auth::reauth_now;
use super::client::{Remote, RemoteError};
use super::sse::SseParser;
use super::views::{seg, status_word};
use crate::cmd_wipe::WipeArgs;
use crate::exit;
use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::ArgMatches;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lethe_wire::{BayState, BayView, JobState, ProgressView, StatusView};
use serde::Deserialize;
use std::io::{BufRead, BufReader, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The wipe options that make sense through `--server`; every other one is
/// the bay's policy on the appliance.
const REMOTE_OPTIONS: &[&str] = &[
    "device",
    "resume",
    "json",
    "yes",
    "progress_interval_ms",
    // global options
    "state_dir",
    "server",
    "server_fingerprint",
    "server_ca",
    "token_file",
];

/// Options given on the command line that the bay's policy decides.
pub fn policy_options_given(m: &ArgMatches) -> Vec<String> {
    let mut given: Vec<String> = m
        .ids()
        .map(|id| id.as_str())
        .filter(|id| !REMOTE_OPTIONS.contains(id))
        .filter(|id| m.value_source(id) == Some(ValueSource::CommandLine))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    given.sort();
    given
}

/// The outcome of a job as a local wipe reports it: the result word, the
/// exit code, and the headline.
pub fn outcome(state: Option<JobState>) -> (&'static str, u8, &'static str) {
    match state {
        Some(JobState::Passed) => ("pass", exit::OK, "PASS: sanitized and verified"),
        Some(JobState::ClearOnly) => (
            "clear_only",
            exit::LOWER_LEVEL,
            "CLEAR ONLY: verified at clear only; purge was requested (the certificate says why)",
        ),
        Some(JobState::Unverified) => (
            "unverified",
            exit::UNVERIFIED,
            "UNVERIFIED: every pass was written but nothing was read back; the device is NOT \
             certified as sanitized",
        ),
        Some(JobState::Failed) => ("fail", exit::FAILED, "FAIL: the device is NOT certified as sanitized"),
        Some(JobState::Incomplete) => ("incomplete", exit::INCOMPLETE, "INCOMPLETE: stopped before the end"),
        Some(JobState::Interrupted) => (
            "incomplete",
            exit::INCOMPLETE,
            "INTERRUPTED: the job stopped before the end (the appliance restarted or lost the drive)",
        ),
        Some(JobState::NotStarted) => (
            "not_started",
            exit::ERROR,
            "NOT STARTED: nothing was done to the medium",
        ),
        Some(JobState::Running) | None => (
            "unknown",
            exit::ERROR,
            "UNKNOWN: the appliance no longer lists the job",
        ),
    }
}

/// The bay `target` names: a bay's name, or the device path of the drive
/// waiting in it.
pub fn find_bay<'a>(status: &'a StatusView, target: &str) -> Result<&'a BayView, String> {
    if let Some(b) = status.bays.iter().find(|b| b.name == target) {
        return Ok(b);
    }
    if let Some(b) = status
        .bays
        .iter()
        .find(|b| b.drive.as_ref().is_some_and(|d| d.path == target))
    {
        return Ok(b);
    }
    let names: Vec<&str> = status.bays.iter().map(|b| b.name.as_str()).collect();
    Err(format!(
        "no bay is named {target:?} and no bay holds a drive at {target:?}; the appliance's \
         bays: {}",
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    ))
}

/// What the operator is asked to type, as on the appliance.
pub fn prompt(bay: &BayView) -> Option<String> {
    let d = bay.drive.as_ref()?;
    let label = format!(
        "{} ({} {}, in bay {})",
        d.path,
        d.transport,
        d.model.as_deref().unwrap_or("unknown model"),
        bay.name
    );
    let expect = match d.serial.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => format!(
            "its serial number ({s}) or its size in bytes ({})",
            d.size_bytes
        ),
        _ => format!("its size in bytes ({})", d.size_bytes),
    };
    Some(format!(
        "ALL DATA on {label} will be destroyed.\nTo confirm, type {expect}: "
    ))
}

/// Does `answer` name the drive (its serial, or its exact size)?
pub fn confirms(bay: &BayView, answer: &str) -> bool {
    let a = answer.trim();
    let Some(d) = bay.drive.as_ref() else {
        return false;
    };
    !a.is_empty()
        && (d.serial.as_deref().map(str::trim) == Some(a) || a == d.size_bytes.to_string())
}

#[derive(Deserialize)]
struct JobRef {
    job: String,
}

#[derive(Deserialize)]
struct ProgressEvent {
    state: JobState,
    progress: Option<ProgressView>,
}

#[derive(Deserialize)]
struct EndEvent {
    state: Option<JobState>,
    certificate: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEvent {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

fn refused(json: bool, why: &str) -> u8 {
    eprintln!("lethe: refused: {why}");
    if json {
        let v = serde_json::json!({"job": null, "result": "refused", "certified": false,
            "certificate": null, "error": why, "exit_code": exit::ERROR});
        outln!("{v}");
    }
    exit::ERROR
}

/// POST a start or resume; a `reauth_required` answer on a terminal asks
/// for the password and code and tries once more.
fn post_job(r: &Remote, path: &str, body: &serde_json::Value) -> Result<Result<String, String>> {
    let mut asked = false;
    loop {
        match r.post::<JobRef>(path, body) {
            Ok(j) => return Ok(Ok(j.job)),
            Err(e) if e.code() == Some("reauth_required") && !asked && r.has_session() => {
                if !std::io::stdin().is_terminal() {
                    return Ok(Err(format!(
                        "{e}: run `lethe --server {} reauth`, then this command again within the \
                         appliance's re-authentication window",
                        r.server()
                    )));
                }
                eprintln!("lethe: {e}");
                reauth_now(r, None)?;
                asked = true;
            }
            Err(
                e @ RemoteError::Api {
                    status: 403 | 404 | 409 | 400,
                    ..
                },
            ) => return Ok(Err(e.to_string())),
            Err(e) => return Err(e.into()),
        }
    }
}

pub fn run(r: &Remote, args: &WipeArgs, m: &ArgMatches) -> Result<u8> {
    let json = args.json;
    let given = policy_options_given(m);
    if !given.is_empty() {
        return Err(crate::UsageError(format!(
            "{} cannot be given with --server: what is done to a drive is its bay's policy on \
             the appliance (see `lethe --server {} status`)",
            given.join(", "),
            r.server()
        ))
        .into());
    }
    if !r.has_credential() {
        return Err(RemoteError::NotLoggedIn { server: r.server() }.into());
    }
    let job = match (&args.resume, &args.device) {
        (Some(job), None) => {
            match post_job(
                r,
                &format!("/api/v1/jobs/{}/resume", seg(job)),
                &serde_json::json!({}),
            )? {
                Ok(j) => j,
                Err(why) => return Ok(refused(json, &why)),
            }
        }
        (Some(_), Some(_)) => {
            return Err(crate::UsageError(
                "with --server, --resume JOB resumes the job on the drive it recorded; give no \
                 DEVICE"
                    .into(),
            )
            .into())
        }
        (None, Some(target)) => {
            if args.yes {
                return Err(crate::UsageError(
                    "--yes cannot be given with --server: the appliance needs the drive's serial \
                     or exact size typed (answer the prompt, or pipe it on stdin)"
                        .into(),
                )
                .into());
            }
            let status: StatusView = r.get("/api/v1/status")?;
            let target = target.to_string_lossy();
            let bay = match find_bay(&status, &target) {
                Ok(b) => b,
                Err(why) => return Ok(refused(json, &why)),
            };
            if bay.state != BayState::Waiting {
                let why = format!(
                    "bay {} has no drive waiting for an operator (it is {}){}",
                    bay.name,
                    format!("{:?}", bay.state).to_lowercase(),
                    bay.message
                        .as_deref()
                        .map_or(String::new(), |m| format!(": {m}"))
                );
                return Ok(refused(json, &why));
            }
            let Some(text) = prompt(bay) else {
                return Ok(refused(json, &format!("bay {} holds no drive", bay.name)));
            };
            if std::io::stdin().is_terminal() {
                eprint!("{text}");
            } else {
                eprintln!("{text}");
            }
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the confirmation")?;
            if !confirms(bay, &line) {
                let a = line.trim();
                let why = if a.is_empty() {
                    "not confirmed: no answer was given".to_string()
                } else {
                    format!("not confirmed: {a:?} does not match what was asked for")
                };
                eprintln!("lethe: {why}; nothing was written");
                if json {
                    let v = serde_json::json!({"job": null, "result": "refused", "certified": false,
                        "certificate": null, "error": why, "exit_code": exit::ERROR});
                    outln!("{v}");
                }
                return Ok(exit::ERROR);
            }
            let body = serde_json::json!({"answer": line.trim()});
            match post_job(r, &format!("/api/v1/bays/{}/start", seg(&bay.name)), &body)? {
                Ok(j) => j,
                Err(why) => return Ok(refused(json, &why)),
            }
        }
        (None, None) => bail!("internal: no device and no --resume"),
    };
    if !json {
        eprintln!("lethe: job {job} started on {}", r.server());
    }
    follow(r, &job, json)
}

/// Follow the job's event stream to its end; Ctrl-C asks the appliance to
/// stop the job (once) and keeps following until it has.
fn follow(r: &Remote, job: &str, json: bool) -> Result<u8> {
    let stop = crate::edge::stop_flag()?;
    let cancelled = Arc::new(AtomicBool::new(false));
    let response = r.stream(&format!("/api/v1/jobs/{}/events", seg(job)))?;
    let mut reader = BufReader::new(response);
    let mut parser = SseParser::default();
    let mut view = Progress::new(json);
    let mut line = String::new();
    loop {
        if stop.load(Ordering::Relaxed) && !cancelled.swap(true, Ordering::Relaxed) {
            eprintln!("lethe: asking the appliance to stop job {job} at its next safe point…");
            if let Err(e) = r.post_unit(
                &format!("/api/v1/jobs/{}/cancel", seg(job)),
                &serde_json::json!({}),
            ) {
                eprintln!("lethe: the job could not be stopped: {e}");
            }
        }
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("reading job {job}'s progress from {}", r.server()))?;
        if n == 0 {
            view.clear();
            bail!(
                "the appliance closed job {job}'s progress stream before the job ended; it may \
                 still be running: `lethe --server {} jobs show {job}`",
                r.server()
            );
        }
        let Some(ev) = parser.line(line.trim_end_matches('\n')) else {
            continue;
        };
        match ev.name.as_str() {
            "progress" => {
                if let Ok(p) = serde_json::from_str::<ProgressEvent>(&ev.data) {
                    view.show(job, p.state, p.progress.as_ref());
                }
            }
            "end" => {
                view.clear();
                let end: EndEvent = serde_json::from_str(&ev.data)
                    .with_context(|| format!("the end of job {job}: {}", ev.data))?;
                return Ok(report(r, job, &end, json));
            }
            "error" => {
                view.clear();
                let e: ErrorEvent = serde_json::from_str(&ev.data)
                    .with_context(|| format!("an error event: {}", ev.data))?;
                bail!(
                    "{} ({}); the job may still be running on the appliance: `lethe --server {} jobs show {job}`",
                    e.error.message,
                    e.error.code,
                    r.server()
                );
            }
            _ => {}
        }
    }
}

fn report(r: &Remote, job: &str, end: &EndEvent, json: bool) -> u8 {
    let (word, code, headline) = outcome(end.state);
    let certified = matches!(end.state, Some(JobState::Passed | JobState::ClearOnly));
    // The appliance names the document by its path there; the API knows
    // it by its id (the file name without `.json`).
    let id = end.certificate.as_deref().map(certificate_id);
    if json {
        let v = serde_json::json!({
            "job": job, "result": word, "certified": certified, "exit_code": code,
            "certificate": end.certificate, "certificate_id": id,
            "status": end.state.map(status_word),
            "resumable": matches!(end.state, Some(JobState::Interrupted | JobState::Incomplete)),
            "server": r.server(),
        });
        outln!("{v}");
        return code;
    }
    outln!("{headline}");
    outln!("  job          {job}");
    outln!("  appliance    {}", r.server());
    if let (Some(path), Some(id)) = (&end.certificate, &id) {
        let what = if certified { "certificate" } else { "report" };
        outln!("  {what:<12} {path} on the appliance");
        outln!("  save it      lethe --server {} cert get {id}", r.server());
    }
    if matches!(
        end.state,
        Some(JobState::Interrupted | JobState::Incomplete)
    ) {
        outln!(
            "  continue     lethe --server {} wipe --resume {job}",
            r.server()
        );
    }
    code
}

/// A certificate's id from its path on the appliance (`…/ID.json`).
pub fn certificate_id(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.strip_suffix(".json").unwrap_or(name)
}

/// Progress on stderr (a bar on a terminal, a line per phase otherwise) or
/// JSON lines on stdout.
struct Progress {
    json: bool,
    bar: Option<ProgressBar>,
    phase: Option<String>,
}

impl Progress {
    fn new(json: bool) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(4));
            let style =
                ProgressStyle::with_template("{msg:<18} [{wide_bar:.cyan/blue}] {percent:>3}%")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Self {
            json,
            bar,
            phase: None,
        }
    }

    fn show(&mut self, job: &str, state: JobState, p: Option<&ProgressView>) {
        let Some(p) = p else { return };
        let new_phase = self.phase.as_deref() != Some(p.phase.as_str());
        self.phase = Some(p.phase.clone());
        if self.json {
            let pct = if p.total > 0 {
                (p.done as f64 * 1000.0 / p.total as f64).round() / 10.0
            } else {
                0.0
            };
            outln!(
                "{}",
                serde_json::json!({"event": "progress", "job": job, "state": status_word(state),
                    "phase": p.phase, "done": p.done, "total": p.total, "percent": pct})
            );
        } else if let Some(bar) = &self.bar {
            bar.set_message(p.phase.clone());
            bar.set_length(p.total);
            bar.set_position(p.done);
        } else if new_phase {
            eprintln!("lethe: {}", p.phase);
        }
    }

    fn clear(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lethe_wire::{BayLevel, BayPolicy, DriveView};

    fn bay(serial: Option<&str>) -> BayView {
        BayView {
            name: "bay-1".into(),
            led: Some(1),
            policy: BayPolicy::Ask,
            level: BayLevel::Clear,
            state: BayState::Waiting,
            drive: Some(DriveView {
                path: "/dev/loop7".into(),
                transport: "sata".into(),
                model: Some("WDC WD10".into()),
                serial: serial.map(Into::into),
                size_bytes: 1_000_204_886_016,
            }),
            job: None,
            message: None,
        }
    }

    #[test]
    fn the_serial_or_the_exact_size_confirms_and_nothing_else() {
        let b = bay(Some("WD-123"));
        assert!(confirms(&b, "WD-123\n"));
        assert!(confirms(&b, " 1000204886016 "));
        assert!(!confirms(&b, ""));
        assert!(!confirms(&b, "yes"));
        assert!(!confirms(&b, "1000204886017"));
        let none = bay(None);
        assert!(confirms(&none, "1000204886016"));
        assert!(prompt(&none)
            .unwrap()
            .contains("its size in bytes (1000204886016)"));
        assert!(prompt(&b)
            .unwrap()
            .contains("its serial number (WD-123) or its size in bytes"));
    }

    #[test]
    fn a_bay_is_found_by_name_or_by_its_drives_path() {
        let st = StatusView {
            daemon: lethe_wire::DaemonView {
                version: "0".into(),
                started_at: "2026-12-04T00:00:00Z".into(),
                pid: 1,
                front_restarts: 0,
                audit_entries: 0,
                https_listen: None,
                tls_fingerprint: None,
            },
            bays: vec![bay(Some("WD-123"))],
            running: vec![],
            interrupted: vec![],
            backups: vec![],
        };
        assert_eq!(find_bay(&st, "bay-1").unwrap().name, "bay-1");
        assert_eq!(find_bay(&st, "/dev/loop7").unwrap().name, "bay-1");
        let e = find_bay(&st, "/dev/loop-absent").unwrap_err();
        assert!(e.contains("bays: bay-1"), "{e}");
    }

    #[test]
    fn a_certificate_id_is_its_file_name_without_json() {
        assert_eq!(
            certificate_id("/var/lib/lethe/certificates/wipe-20261204T144343Z-eb623043.json"),
            "wipe-20261204T144343Z-eb623043"
        );
        assert_eq!(certificate_id("wipe-1"), "wipe-1");
    }

    #[test]
    fn outcomes_keep_the_local_exit_codes_and_only_passes_look_like_passes() {
        assert_eq!(outcome(Some(JobState::Passed)).1, exit::OK);
        assert_eq!(outcome(Some(JobState::ClearOnly)).1, exit::LOWER_LEVEL);
        assert_eq!(outcome(Some(JobState::Unverified)).1, exit::UNVERIFIED);
        assert_eq!(outcome(Some(JobState::Failed)).1, exit::FAILED);
        assert_eq!(outcome(Some(JobState::Incomplete)).1, exit::INCOMPLETE);
        assert_eq!(outcome(Some(JobState::Interrupted)).1, exit::INCOMPLETE);
        assert_eq!(outcome(Some(JobState::NotStarted)).1, exit::ERROR);
        assert_eq!(outcome(None).1, exit::ERROR);
        for s in [
            JobState::ClearOnly,
            JobState::Unverified,
            JobState::Failed,
            JobState::Incomplete,
            JobState::Interrupted,
            JobState::NotStarted,
        ] {
            assert!(!outcome(Some(s)).2.starts_with("PASS"), "{s:?}");
        }
    }
}
