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
    last: Option<(Instant, Phase)>,
    last_pct: i64,
    /// The phase being shown: when it was first seen, and how much of it
    /// (and of the job) was done then. Rates and ETAs count from there, so a
    /// resumed job's earlier work does not look like this run's speed.
    phase: Option<PhaseClock>,
}

#[derive(Clone, Copy)]
struct PhaseClock {
    phase: Phase,
    since: Instant,
    phase_done: u64,
    job_done: u64,
}

/// What progress means for the operator: the phase's percentage, its speed
/// and ETA, and the whole job's ETA.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Estimate {
    phase_percent: f64,
    bytes_per_second: u64,
    phase_eta: Option<u64>,
    job_eta: Option<u64>,
}

fn estimate(p: &Progress, c: &PhaseClock, now: Instant) -> Estimate {
    let secs = now.duration_since(c.since).as_secs_f64();
    let rate = |done: u64, from: u64| {
        let n = done.saturating_sub(from);
        (secs > 0.0 && n > 0).then(|| n as f64 / secs)
    };
    let eta = |left: u64, rate: Option<f64>| rate.map(|r| (left as f64 / r).round() as u64);
    let phase_rate = rate(p.phase_done, c.phase_done);
    Estimate {
        phase_percent: if p.phase_total == 0 {
            100.0
        } else {
            p.phase_done as f64 * 100.0 / p.phase_total as f64
        },
        bytes_per_second: phase_rate.map_or(0, |r| r.round() as u64),
        phase_eta: eta(p.phase_total.saturating_sub(p.phase_done), phase_rate),
        job_eta: eta(
            p.job_total.saturating_sub(p.job_done),
            rate(p.job_done, c.job_done),
        ),
    }
}

/// `1:05:09`, `4:07`, `0:09`.
fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

fn phase_label(p: &Phase) -> String {
    match p {
        Phase::Writing { pass, passes } => format!("writing pass {}/{}", pass + 1, passes),
        Phase::Verifying => "verifying".to_string(),
    }
}

impl Render {
    /// JSON lines at most every `every` (and at phase ends) with `json`; else
    /// a bar when stderr is a terminal, else one line per phase on stderr.
    pub fn new(json: bool, every: Duration) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(4));
            let style = ProgressStyle::with_template(
                // wide_bar takes what the terminal has left, so the line never wraps.
                // The phase's percentage; speed and ETA (ours, in the prefix) are the phase's too.
                "{msg:<18} [{wide_bar:.cyan/blue}] {percent:>3}% {prefix}",
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
            last: None,
            last_pct: -1,
            phase: None,
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
        outln!("{v}");
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
        let now = Instant::now();
        let new_phase = self.phase.is_none_or(|c| c.phase != p.phase);
        if new_phase {
            self.phase = Some(PhaseClock {
                phase: p.phase,
                since: now,
                phase_done: p.phase_done,
                job_done: p.job_done,
            });
        }
        let Some(clock_now) = self.phase else { return };
        let est = estimate(p, &clock_now, now);
        if let Some(bar) = &self.bar {
            let mut msg = phase_label(&p.phase);
            if p.failed_bytes > 0 {
                msg = format!("{msg} ({} B failed)", p.failed_bytes);
            }
            if new_phase {
                bar.reset();
            }
            let speed = if est.bytes_per_second > 0 {
                format!("{}/s", indicatif::BinaryBytes(est.bytes_per_second))
            } else {
                String::new()
            };
            let eta = est.phase_eta.map_or("--:--".into(), clock);
            bar.set_prefix(format!("{speed:>12} ETA {eta:>5}"));
            // Message first: the position update triggers the redraw.
            bar.set_message(msg);
            bar.set_length(p.phase_total);
            bar.set_position(p.phase_done);
            return;
        }
        if !self.json {
            // Not a terminal, not JSON: one line as each phase begins.
            if new_phase {
                eprintln!("lethe: {}", phase_label(&p.phase));
            }
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
        self.last = Some((now, p.phase));
        let mut v = serde_json::to_value(p).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("event".into(), "progress".into());
            o.insert(
                "phase_percent".into(),
                ((est.phase_percent * 10.0).round() / 10.0).into(),
            );
            o.insert("bytes_per_second".into(), est.bytes_per_second.into());
            o.insert("phase_eta_seconds".into(), est.phase_eta.into());
            o.insert("eta_seconds".into(), est.job_eta.into());
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
        Outcome::Unverified => exit::UNVERIFIED,
        Outcome::Failed => exit::FAILED,
        Outcome::Stopped | Outcome::Interrupted { .. } => exit::INCOMPLETE,
        Outcome::NotStarted { .. } | Outcome::Refused(_) => exit::ERROR,
    }
}

/// The JSON summary: one object, the last line on stdout.
pub fn summary(r: &Report) -> serde_json::Value {
    let error = match &r.outcome {
        Outcome::Refused(why) => Some(why.to_string()),
        Outcome::Interrupted { reason } | Outcome::NotStarted { reason } => Some(reason.clone()),
        _ => r
            .problems
            .first()
            .cloned()
            .filter(|_| r.outcome == Outcome::Failed),
    };
    let mut v = serde_json::json!({
        "job": r.job,
        "result": r.outcome.word(),
        "certified": r.outcome.certifies(),
        "outcome": r.outcome,
        "exit_code": exit_code(&r.outcome),
        "certificate": r.document.as_ref().map(|d| &d.json),
        "pdf": r.document.as_ref().map(|d| &d.pdf),
        "device": r.device,
        "bytes_written": r.bytes_written,
        "bytes_written_earlier": r.bytes_written_earlier,
        "bytes_verified": r.bytes_verified,
        "failed_ranges": r.failed_ranges,
        "problems": r.problems,
        "resumable": r.resumable(),
        "write_seconds": r.write_seconds,
        "verify_seconds": r.verify_seconds,
        "method": r.method,
        "category": r.category.map(|c| c.as_str()),
        "health": r.health,
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

fn say_refusal(why: &Refusal) {
    match why {
        Refusal::NotConfirmed(_) => eprintln!("lethe: {why}"),
        _ => eprintln!("lethe: refused: {why}"),
    }
}

/// Say why nothing was written, on stderr (and as the JSON last line).
pub fn refusal(json: bool, why: &Refusal) -> u8 {
    say_refusal(why);
    if json {
        let v = serde_json::json!({"job": null, "result": "refused", "certified": false,
            "certificate": null, "error": why.to_string(), "refusal": why,
            "exit_code": exit::ERROR});
        outln!("{v}");
    }
    exit::ERROR
}

/// The first line of a report: what happened, in capitals where it matters.
fn headline(r: &Report) -> String {
    let category = r.category.map_or("", |c| c.as_str());
    let method = r.method.as_deref().unwrap_or("");
    match &r.outcome {
        Outcome::PassedAtLowerLevel { requested, reached } => format!(
            "CLEAR ONLY: verified at {} only; {} was requested (the certificate says why)",
            reached.as_str(),
            requested.as_str()
        ),
        Outcome::Passed if method == "degauss" => {
            "DESTROYED: degausser cycle confirmed by the controller".into()
        }
        Outcome::Passed => format!("PASS: {method} ({category}) and verified"),
        Outcome::Unverified => "UNVERIFIED: every pass was written but nothing was read back \
             (--verify off); the device is NOT certified as sanitized"
            .into(),
        Outcome::Failed if method == "degauss" => {
            "FAIL: no completed degauss cycle; the medium is NOT certified as destroyed".into()
        }
        Outcome::Failed => "FAIL: the device is NOT certified as sanitized".into(),
        Outcome::Stopped => "INCOMPLETE: stopped before the end".into(),
        Outcome::Interrupted { reason } => format!("INTERRUPTED: {reason}"),
        Outcome::NotStarted { reason } => {
            format!("NOT STARTED: {reason}; nothing was done to the medium")
        }
        Outcome::Refused(why) => format!("REFUSED: {why}"),
    }
}

/// Print the report of a sanitization job and return its exit code.
pub fn report(json: bool, r: &Report) -> u8 {
    let code = exit_code(&r.outcome);
    if let Outcome::Refused(why) = &r.outcome {
        if !json {
            return refusal(false, why);
        }
        say_refusal(why);
        outln!("{}", summary(r));
        return code;
    }
    if json {
        outln!("{}", summary(r));
        return code;
    }
    let category = r.category.map_or("", |c| c.as_str());
    let method = r.method.as_deref().unwrap_or("");
    outln!("{}", headline(r));
    if let Some(j) = &r.job {
        outln!("  job          {j}");
    }
    if let Some(d) = &r.device {
        outln!("  device       {d}");
    }
    if method != "degauss" {
        outln!("  method       {method} ({category})");
        if r.bytes_written_earlier > 0 {
            outln!(
                "  written      {} bytes ({} of them before the job was resumed)",
                r.bytes_written,
                r.bytes_written_earlier
            );
        } else {
            outln!("  written      {} bytes", r.bytes_written);
        }
        outln!("  verified     {} bytes", r.bytes_verified);
    }
    if let Some(h) = &r.health {
        outln!("  health       {}", h.summary());
    }
    for p in &r.problems {
        outln!("  problem      {p}");
    }
    for range in r.failed_ranges.iter().take(20) {
        outln!(
            "  failed range bytes {}..{} ({} bytes)",
            range.offset,
            range.end(),
            range.length
        );
    }
    if r.failed_ranges.len() > 20 {
        outln!(
            "  … {} more failed ranges in the report",
            r.failed_ranges.len() - 20
        );
    }
    if let Some(d) = &r.document {
        let what = if d.certifies { "certificate" } else { "report" };
        outln!("  {what:<12} {}", d.json);
        outln!("  pdf          {}", d.pdf);
    }
    if r.resumable() {
        if let Some(j) = &r.job {
            outln!("  resume with  lethe wipe --resume {j}");
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use lethe_jobs::Level;
    use lethe_wipe::Phase;

    fn progress(phase: Phase, phase_done: u64, job_done: u64) -> Progress {
        Progress {
            phase,
            phase_done,
            phase_total: 1000,
            job_done,
            job_total: 4000,
            failed_bytes: 0,
        }
    }

    #[test]
    fn eta_counts_from_where_this_run_started_in_the_phase() {
        let t0 = Instant::now();
        let w = Phase::Writing { pass: 1, passes: 3 };
        // Resumed at 40 % of pass 2: the first report has no speed yet.
        let c = PhaseClock {
            phase: w,
            since: t0,
            phase_done: 400,
            job_done: 1400,
        };
        let e = estimate(&progress(w, 400, 1400), &c, t0);
        assert_eq!((e.phase_percent, e.bytes_per_second), (40.0, 0));
        assert_eq!((e.phase_eta, e.job_eta), (None, None));
        // 100 more bytes in 10 s: 10 B/s, 500 left of the phase, 2500 of the job.
        let e = estimate(&progress(w, 500, 1500), &c, t0 + Duration::from_secs(10));
        assert_eq!(e.phase_percent, 50.0);
        assert_eq!(e.bytes_per_second, 10);
        assert_eq!(e.phase_eta, Some(50));
        assert_eq!(e.job_eta, Some(250));
        assert_eq!(clock(3909), "1:05:09");
        assert_eq!(clock(247), "4:07");
    }

    #[test]
    fn every_outcome_has_its_own_word_exit_code_and_headline() {
        let outcomes = [
            (Outcome::Passed, "pass", exit::OK),
            (
                Outcome::PassedAtLowerLevel {
                    requested: Level::Purge,
                    reached: Level::Clear,
                },
                "clear_only",
                exit::LOWER_LEVEL,
            ),
            (Outcome::Unverified, "unverified", exit::UNVERIFIED),
            (Outcome::Failed, "fail", exit::FAILED),
            (Outcome::Stopped, "incomplete", exit::INCOMPLETE),
            (
                Outcome::NotStarted {
                    reason: "stopped before anything was written".into(),
                },
                "not_started",
                exit::ERROR,
            ),
            (Outcome::Refused(Refusal::Cancelled), "refused", exit::ERROR),
        ];
        let mut codes = std::collections::BTreeSet::new();
        for (o, word, code) in outcomes {
            let mut r = Report::refused(None, lethe_jobs::JobKind::Wipe, None, Refusal::Cancelled);
            r.outcome = o.clone();
            r.method = Some("overwrite".into());
            assert_eq!(o.word(), word);
            assert_eq!(exit_code(&o), code, "{word}");
            let s = summary(&r);
            assert_eq!(s["result"], word);
            assert_eq!(s["exit_code"], code);
            assert_eq!(s["certified"], matches!(word, "pass" | "clear_only"));
            let h = headline(&r);
            if word != "pass" {
                assert!(!h.starts_with("PASS"), "{word}: {h}");
                assert!(!h.contains("and verified"), "{word}: {h}");
            }
            codes.insert((word != "not_started" && word != "refused").then_some(code));
        }
        // pass, clear_only, unverified, fail, incomplete: five distinct codes,
        // none of them the usage code.
        assert_eq!(codes.iter().flatten().count(), 5);
        assert!(!codes.contains(&Some(exit::USAGE)));
    }
}
