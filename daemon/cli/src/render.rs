//! The command line's view of a job: its events as a progress bar on a
//! terminal, JSON lines for scripts (`--json`), or plain lines on stderr;
//! its report as a summary and an exit code.

use crate::exit;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lethe_jobs::{Event, JobHandle, Outcome, PurgeStep, Refusal, Report};
use lethe_wipe::{Phase, Progress};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Receives a job's events and shows them.
pub struct Render {
    json: bool,
    bar: Option<ProgressBar>,
    every: Duration,
    start: Instant,
    last: Option<(Instant, Phase)>,
    last_pct: i64,
}

fn phase_label(p: &Phase) -> String {
    match p {
        Phase::Writing { pass, passes } => format!("writing pass {}/{}", pass + 1, passes),
        Phase::Verifying => "verifying".to_string(),
    }
}

impl Render {
    /// JSON lines at most every `every` (and at phase ends) with `json`; else
    /// a bar when stderr is a terminal.
    pub fn new(json: bool, every: Duration) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(4));
            let style = ProgressStyle::with_template(
                // wide_bar takes what the terminal has left, so the line never wraps.
                "{msg:<18} [{wide_bar:.cyan/blue}] {percent:>3}% {binary_bytes_per_sec:>12} ETA {eta:>4}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Self {
            json,
            bar,
            every,
            start: Instant::now(),
            last: None,
            last_pct: -1,
        }
    }

    /// Show events until the report; Ctrl-C (`stop`) cancels the job.
    pub fn follow(&mut self, job: &JobHandle, stop: &Arc<AtomicBool>) -> Report {
        loop {
            match job.events().recv_timeout(Duration::from_millis(100)) {
                Ok(Event::Finished(r)) => {
                    if let Some(b) = &self.bar {
                        b.finish_and_clear();
                    }
                    return *r;
                }
                Ok(e) => self.event(&e),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return job_vanished(job.id());
                }
            }
            if stop.load(Ordering::Relaxed) {
                job.cancel();
            }
        }
    }

    fn line(&self, v: serde_json::Value) {
        println!("{v}");
    }

    fn event(&mut self, e: &Event) {
        match e {
            Event::Overwrite(p) => self.progress(p),
            Event::Purge(step) => self.purge(step),
            Event::Attention { message } => {
                if self.json {
                    self.line(serde_json::json!({"event": "attention", "message": message}));
                } else {
                    eprintln!("lethe: ATTENTION: {message}");
                }
            }
            Event::Note { message } => eprintln!("lethe: note: {message}"),
            Event::Warning { message } => eprintln!("lethe: warning: {message}"),
            Event::Degaussing if !self.json => {
                eprintln!("lethe: degausser armed and fired; waiting for the controller");
            }
            _ => {}
        }
    }

    fn purge(&mut self, step: &PurgeStep) {
        if self.json {
            let v = match step {
                PurgeStep::Chosen {
                    method,
                    category,
                    reasons,
                } => serde_json::json!({"event": "chosen", "method": method,
                    "category": category.as_str(), "reasons": reasons}),
                PurgeStep::Command { command } => {
                    serde_json::json!({"event": "command", "command": command})
                }
                PurgeStep::Waiting { message } => {
                    serde_json::json!({"event": "waiting", "message": message})
                }
                PurgeStep::Progress { fraction } => {
                    serde_json::json!({"event": "progress", "fraction": fraction})
                }
            };
            self.line(v);
            return;
        }
        match step {
            PurgeStep::Chosen {
                method,
                category,
                reasons,
            } => {
                eprintln!("lethe: method {method} ({})", category.as_str());
                for r in reasons {
                    eprintln!("         {r}");
                }
            }
            PurgeStep::Command { command } => eprintln!("lethe: sending {command}"),
            PurgeStep::Waiting { message } => eprintln!("lethe: {message}"),
            PurgeStep::Progress { fraction: Some(f) } => {
                let pct = (f * 100.0) as i64;
                if pct != self.last_pct {
                    self.last_pct = pct;
                    eprintln!("lethe: drive reports {pct}% done");
                }
            }
            PurgeStep::Progress { fraction: None } => {}
        }
    }

    fn progress(&mut self, p: &Progress) {
        if let Some(bar) = &self.bar {
            let mut msg = phase_label(&p.phase);
            if p.failed_bytes > 0 {
                msg = format!("{msg} ({} B failed)", p.failed_bytes);
            }
            // Message first: the position update triggers the redraw.
            bar.set_message(msg);
            bar.set_length(p.job_total);
            bar.set_position(p.job_done);
            return;
        }
        if !self.json {
            return;
        }
        let phase_end = p.phase_done == p.phase_total;
        let due = match self.last {
            None => true,
            Some((t, phase)) => phase != p.phase || phase_end || t.elapsed() >= self.every,
        };
        if !due {
            return;
        }
        self.last = Some((Instant::now(), p.phase));
        let secs = self.start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            p.job_done as f64 / secs
        } else {
            0.0
        };
        let eta = (rate > 0.0).then(|| ((p.job_total - p.job_done) as f64 / rate).round() as u64);
        let mut v = serde_json::to_value(p).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("event".into(), "progress".into());
            o.insert("bytes_per_second".into(), (rate.round() as u64).into());
            o.insert("eta_seconds".into(), eta.into());
        }
        self.line(v);
    }
}

fn job_vanished(id: &str) -> Report {
    Report::refused(
        Some(id.to_string()),
        lethe_jobs::JobKind::Wipe,
        None,
        Refusal::Invalid("the job ended without a report".into()),
    )
}

/// The exit code of a job's outcome (documented in the README).
pub fn exit_code(o: &Outcome) -> u8 {
    match o {
        Outcome::Passed => exit::OK,
        Outcome::PassedAtLowerLevel { .. } => exit::LOWER_LEVEL,
        Outcome::Failed => exit::FAILED,
        Outcome::Stopped | Outcome::Interrupted { .. } => exit::INCOMPLETE,
        Outcome::Refused(_) => exit::ERROR,
    }
}

/// The JSON summary: one object, the last line on stdout.
pub fn summary(r: &Report) -> serde_json::Value {
    let error = match &r.outcome {
        Outcome::Refused(why) => Some(why.to_string()),
        Outcome::Interrupted { reason } => Some(reason.clone()),
        _ => r
            .problems
            .first()
            .cloned()
            .filter(|_| r.outcome == Outcome::Failed),
    };
    let mut v = serde_json::json!({
        "job": r.job,
        "result": r.outcome.word(),
        "outcome": r.outcome,
        "certificate": r.document.as_ref().map(|d| &d.json),
        "pdf": r.document.as_ref().map(|d| &d.pdf),
        "device": r.device,
        "bytes_written": r.bytes_written,
        "bytes_verified": r.bytes_verified,
        "failed_ranges": r.failed_ranges,
        "problems": r.problems,
        "resumable": r.resumable(),
        "write_seconds": r.write_seconds,
        "verify_seconds": r.verify_seconds,
        "method": r.method,
        "category": r.category.map(|c| c.as_str()),
    });
    let o = v.as_object_mut().expect("an object");
    if let Some(req) = r.requested {
        o.insert("requested".into(), req.as_str().into());
    }
    if let Some(e) = error {
        o.insert("error".into(), e.into());
    }
    if let Some(c) = &r.degauss {
        o.insert(
            "confirmation".into(),
            serde_json::to_value(c).unwrap_or_default(),
        );
    }
    v
}

/// Say why nothing was written, on stderr (and as the JSON last line).
pub fn refusal(json: bool, why: &Refusal) -> u8 {
    match why {
        Refusal::NotConfirmed(_) => eprintln!("lethe: {why}"),
        _ => eprintln!("lethe: refused: {why}"),
    }
    if json {
        let v = serde_json::json!({"job": null, "result": "refused", "certificate": null,
            "error": why.to_string()});
        println!("{v}");
    }
    exit::ERROR
}

/// Print the report of a sanitization job and return its exit code.
pub fn report(json: bool, r: &Report) -> u8 {
    let code = exit_code(&r.outcome);
    if let Outcome::Refused(why) = &r.outcome {
        if !json {
            return refusal(false, why);
        }
        match why {
            Refusal::NotConfirmed(_) => eprintln!("lethe: {why}"),
            _ => eprintln!("lethe: refused: {why}"),
        }
        println!("{}", summary(r));
        return code;
    }
    if json {
        println!("{}", summary(r));
        return code;
    }
    let category = r.category.map_or("", |c| c.as_str());
    let method = r.method.as_deref().unwrap_or("");
    let headline = match &r.outcome {
        Outcome::PassedAtLowerLevel { requested, reached } => format!(
            "PASS at {} only ({} was requested): see the certificate's reasons",
            reached.as_str(),
            requested.as_str()
        ),
        Outcome::Passed if method == "degauss" => {
            "DESTROYED: degausser cycle confirmed by the controller".into()
        }
        Outcome::Passed => format!("PASS: {method} ({category}) and verified"),
        Outcome::Failed if method == "degauss" => {
            "FAIL: no completed degauss cycle; the medium is NOT certified as destroyed".into()
        }
        Outcome::Failed => "FAIL: the device is NOT certified as sanitized".into(),
        Outcome::Stopped => "INCOMPLETE: stopped before the end".into(),
        Outcome::Interrupted { reason } => format!("INTERRUPTED: {reason}"),
        Outcome::Refused(_) => unreachable!("handled above"),
    };
    println!("{headline}");
    if let Some(j) = &r.job {
        println!("  job          {j}");
    }
    if let Some(d) = &r.device {
        println!("  device       {d}");
    }
    if method != "degauss" {
        println!("  method       {method} ({category})");
        println!("  written      {} bytes", r.bytes_written);
        println!("  verified     {} bytes", r.bytes_verified);
    }
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
    if let Some(d) = &r.document {
        let what = if d.certifies { "certificate" } else { "report" };
        println!("  {what:<12} {}", d.json);
        println!("  pdf          {}", d.pdf);
    }
    if r.resumable() {
        if let Some(j) = &r.job {
            println!("  resume with  lethe wipe --resume {j}");
        }
    }
    code
}
