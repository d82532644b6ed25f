//! Progress display: a bar with rate and ETA on a terminal, JSON lines for
//! scripts, nothing otherwise.

use crate::job::ProgressSink;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lethe_wipe::{Phase, Progress};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn phase_label(p: &Phase) -> String {
    match p {
        Phase::Writing { pass, passes } => format!("writing pass {}/{}", pass + 1, passes),
        Phase::Verifying => "verifying".to_string(),
    }
}

/// An indicatif bar over the whole job (all passes plus verification).
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template(
            // wide_bar takes what the terminal has left, so the line never wraps.
            "{msg:<18} [{wide_bar:.cyan/blue}] {percent:>3}% {binary_bytes_per_sec:>12} ETA {eta:>4}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Self { bar }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Default for Bar {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressSink for Bar {
    fn progress(&self, p: &Progress) {
        let mut msg = phase_label(&p.phase);
        if p.failed_bytes > 0 {
            msg = format!("{msg} ({} B failed)", p.failed_bytes);
        }
        // Message first: the position update triggers the redraw.
        self.bar.set_message(msg);
        self.bar.set_length(p.job_total);
        self.bar.set_position(p.job_done);
    }
}

/// One JSON object per line on stdout, at most once per interval (and at phase ends).
pub struct JsonLines {
    start: Instant,
    every: Duration,
    last: Mutex<Option<(Instant, Phase)>>,
}

impl JsonLines {
    pub fn new() -> Self {
        Self::with_interval(Duration::from_secs(1))
    }

    pub fn with_interval(every: Duration) -> Self {
        Self {
            start: Instant::now(),
            every,
            last: Mutex::new(None),
        }
    }
}

impl Default for JsonLines {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressSink for JsonLines {
    fn progress(&self, p: &Progress) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let phase_end = p.phase_done == p.phase_total;
        let due = match *last {
            None => true,
            Some((t, phase)) => phase != p.phase || phase_end || t.elapsed() >= self.every,
        };
        if !due {
            return;
        }
        *last = Some((Instant::now(), p.phase));
        let secs = self.start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            p.job_done as f64 / secs
        } else {
            0.0
        };
        let eta = if rate > 0.0 {
            Some(((p.job_total - p.job_done) as f64 / rate).round() as u64)
        } else {
            None
        };
        let mut v = serde_json::to_value(p).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("event".into(), "progress".into());
            o.insert("bytes_per_second".into(), (rate.round() as u64).into());
            o.insert("eta_seconds".into(), eta.into());
        }
        println!("{v}");
    }
}
