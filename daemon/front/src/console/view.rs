//! What the templates show, made from the worker's views: plain strings
//! and flags, so the templates hold no logic but loops and conditions.

use super::{ConsoleState, Samples};
use lethe_wire::{BayLevel, BayPolicy, BayState, BayView, CertView, JobView, SessionView};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The page frame: assets, who is logged in, where we are.
pub struct Chrome {
    pub css: String,
    pub js: String,
    /// Which navigation entry is current (`bays`, `certificates`).
    pub here: &'static str,
    pub session: Option<SessionChrome>,
}

/// The logged-in part of the frame.
pub struct SessionChrome {
    pub user: String,
    pub role: String,
    /// How often the page asks whether the session still lasts: a quarter
    /// of the idle timeout (1 to 15 s), so the return to the login page
    /// follows the end closely without a request storm.
    pub check_ms: u64,
}

impl Chrome {
    pub fn new(here: &'static str, session: Option<&SessionView>) -> Chrome {
        Chrome {
            css: super::assets::href("console.css"),
            js: super::assets::href("console.js"),
            here,
            session: session.map(|s| SessionChrome {
                user: s.user.clone(),
                role: serde_json::to_value(s.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                check_ms: (s.idle_timeout_secs / 4).clamp(1, 15) * 1000,
            }),
        }
    }
}

/// Whether the session may start the job of a bay of `level` (the worker
/// checks again; this only decides whether to show the button).
pub fn may_start(s: &SessionView, level: BayLevel) -> bool {
    let want = match level {
        BayLevel::Clear => "start_wipe",
        BayLevel::Purge => "start_purge",
    };
    s.privileges.iter().any(|p| p == want)
}

/// A drive as a tile or the start form shows it.
pub struct Drive {
    pub path: String,
    pub model: String,
    pub serial: String,
    pub size: String,
    pub size_bytes: u64,
    pub has_serial: bool,
}

/// A running job's progress.
pub struct Progress {
    pub phase: String,
    pub done: u64,
    pub total: u64,
    pub percent: u64,
    /// "12.5 MB/s, about 3 min left", once computable.
    pub rate: Option<String>,
}

/// One bay's tile.
pub struct Tile {
    pub index: usize,
    pub bay: String,
    pub bay_url: String,
    /// The state's words and CSS class.
    pub state: &'static str,
    pub class: &'static str,
    pub level: &'static str,
    pub policy: &'static str,
    pub drive: Option<Drive>,
    pub progress: Option<Progress>,
    pub message: Option<String>,
    /// A refused (protected) device: greyed, with the reason.
    pub protected: bool,
    pub can_start: bool,
    pub certificate: Option<String>,
    pub certificate_url: String,
}

/// A certificate in the search results.
pub struct CertRow {
    pub id: String,
    pub id_url: String,
    pub issued_at: String,
    pub result: String,
    pub class: &'static str,
    pub model: String,
    pub serial: String,
    pub asset_tag: String,
    pub customer: String,
    pub problem: Option<String>,
}

/// A backup job's row.
pub struct BackupRow {
    pub job: String,
    pub every: String,
    pub last_backup: String,
    /// The last result's words and badge class (`fail` and `missed` are
    /// failures: red).
    pub result: String,
    pub class: &'static str,
    pub failed: bool,
    pub last_success: String,
    pub next_due: String,
    pub drill: String,
    pub drill_class: &'static str,
    pub max_age: String,
}

fn result_class(r: Option<&str>) -> &'static str {
    match r {
        Some("pass") => "passed",
        Some("warn") => "waiting",
        Some(_) => "failed",
        None => "empty",
    }
}

pub fn backup_row(b: &lethe_wire::BackupView) -> BackupRow {
    let never = || "never".to_string();
    BackupRow {
        job: b.job.clone(),
        every: duration(b.every_secs),
        last_backup: b.last_backup.clone().unwrap_or_else(never),
        result: b.last_result.clone().unwrap_or_else(|| "none yet".into()),
        class: result_class(b.last_result.as_deref()),
        failed: matches!(b.last_result.as_deref(), Some("fail" | "missed")),
        last_success: b.last_success.clone().unwrap_or_else(never),
        next_due: b.next_due.clone(),
        drill: match (&b.last_drill, &b.last_drill_result) {
            (Some(at), Some(r)) => format!("{r} ({at})"),
            (Some(at), None) => at.clone(),
            _ => never(),
        },
        drill_class: result_class(b.last_drill_result.as_deref()),
        max_age: b.max_age_secs.map_or_else(|| "none".into(), duration),
    }
}

/// Percent-encode a path segment: everything but letters, digits and
/// `-_.~` (bay names and ids are plain, but a page must not trust that).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `16.0 MiB (16777216 bytes)`: the drives table's size and the exact
/// count an operator types to confirm.
pub fn size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!(
            "{} ({bytes} bytes)",
            lethe_core::inventory::human_size(bytes)
        )
    }
}

pub fn drive(d: &lethe_wire::DriveView) -> Drive {
    Drive {
        path: d.path.clone(),
        model: d.model.clone().unwrap_or_else(|| "unknown".into()),
        serial: d.serial.clone().unwrap_or_else(|| "none reported".into()),
        has_serial: d.serial.is_some(),
        size: size(d.size_bytes),
        size_bytes: d.size_bytes,
    }
}

fn state(s: BayState) -> (&'static str, &'static str) {
    match s {
        BayState::Empty => ("empty", "empty"),
        BayState::Waiting => ("waiting", "waiting"),
        BayState::Running => ("busy", "busy"),
        BayState::Passed => ("passed", "passed"),
        BayState::ClearOnly => ("clear only", "clear-only"),
        BayState::Unverified => ("unverified", "failed"),
        BayState::Failed => ("failed", "failed"),
        BayState::Refused => ("refused", "refused"),
        BayState::Stopped => ("stopped", "failed"),
        BayState::Interrupted => ("interrupted", "failed"),
    }
}

fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs.div_ceil(60)),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

/// Speed and time left of `job` in `phase`, from the first sample the
/// console saw of that phase to this one (`None` until a second has
/// passed and something was done).
fn rate(
    samples: &Mutex<Samples>,
    job: &str,
    p: &lethe_wire::ProgressView,
    now: Instant,
) -> Option<String> {
    let mut rates = samples.lock().unwrap_or_else(|e| e.into_inner());
    let (t0, d0) = *rates
        .entry((job.to_string(), p.phase.clone()))
        .or_insert((now, p.done));
    let secs = now.duration_since(t0).as_secs_f64();
    if secs < 1.0 || p.done <= d0 {
        return None;
    }
    let per_sec = (p.done - d0) as f64 / secs;
    let left = p.total.saturating_sub(p.done) as f64 / per_sec;
    Some(format!(
        "{:.1} MB/s, about {} left",
        per_sec / 1e6,
        duration(left.ceil() as u64)
    ))
}

/// The tiles of `bays`; `running` gives progress, `history` the
/// certificates of ended jobs.
pub fn tiles(
    st: &ConsoleState,
    session: &SessionView,
    bays: &[BayView],
    running: &[JobView],
    history: &[JobView],
) -> Vec<Tile> {
    let now = Instant::now();
    let jobs: HashMap<&str, &JobView> = history
        .iter()
        .chain(running)
        .map(|j| (j.id.as_str(), j))
        .collect();
    // Forget the samples of jobs that are no longer running.
    {
        let mut rates = st.rates.lock().unwrap_or_else(|e| e.into_inner());
        rates.retain(|(job, _), _| running.iter().any(|j| &j.id == job));
    }
    bays.iter()
        .enumerate()
        .map(|(index, b)| {
            let (state_words, class) = state(b.state);
            let job = b.job.as_deref().and_then(|j| jobs.get(j).copied());
            let progress = (b.state == BayState::Running)
                .then(|| job.and_then(|j| j.progress.as_ref().map(|p| (j, p))))
                .flatten()
                .map(|(j, p)| Progress {
                    phase: p.phase.clone(),
                    done: p.done,
                    total: p.total.max(1),
                    percent: p.done.saturating_mul(100) / p.total.max(1),
                    rate: rate(&st.rates, &j.id, p, now),
                });
            // The job names its certificate by its path on the
            // appliance; the API by its id (the file name without
            // `.json`). The path is not shown.
            let certificate = job
                .and_then(|j| j.certificate.as_deref())
                .map(certificate_id);
            Tile {
                index,
                bay: b.name.clone(),
                bay_url: segment(&b.name),
                state: state_words,
                class,
                level: match b.level {
                    BayLevel::Clear => "wipe",
                    BayLevel::Purge => "purge",
                },
                policy: match b.policy {
                    BayPolicy::Ask => "starts when asked",
                    BayPolicy::Auto => "starts by itself",
                },
                drive: b.drive.as_ref().map(drive),
                progress,
                message: b.message.clone(),
                protected: b.state == BayState::Refused,
                can_start: b.state == BayState::Waiting
                    && b.policy == BayPolicy::Ask
                    && may_start(session, b.level),
                certificate_url: certificate
                    .as_deref()
                    .map(|c| format!("/api/v1/certificates/{}/pdf", segment(c)))
                    .unwrap_or_default(),
                certificate,
            }
        })
        .collect()
}

/// A certificate's id from its path on the appliance (`…/ID.json`).
pub fn certificate_id(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.strip_suffix(".json").unwrap_or(name).to_string()
}

pub fn cert_row(c: &CertView) -> CertRow {
    let result = c.result.clone().unwrap_or_else(|| "report".into());
    let class = match result.as_str() {
        "pass" | "passed" => "passed",
        r if r.contains("clear") => "clear-only",
        "report" => "empty",
        _ => "failed",
    };
    CertRow {
        id: c.id.clone(),
        id_url: segment(&c.id),
        issued_at: c.issued_at.clone(),
        result,
        class,
        model: c.model.clone(),
        serial: c.serial.clone(),
        asset_tag: c.asset_tag.clone().unwrap_or_default(),
        customer: c.customer.clone().unwrap_or_default(),
        problem: c.problem.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_segments_rates_and_durations_read_well() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(16 << 20), "16.0 MiB (16777216 bytes)");
        assert_eq!(segment("bay 1/ü"), "bay%201%2F%C3%BC");
        assert_eq!(segment("cert-2026_1.x"), "cert-2026_1.x");
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(61), "2 min");
        assert_eq!(duration(7320), "2 h 2 min");
        let samples = Mutex::new(Samples::new());
        let t0 = Instant::now();
        let at = |done| lethe_wire::ProgressView {
            phase: "writing".into(),
            done,
            total: 1_000_000_000,
        };
        // The first sample gives no rate; 100 MB in 2 s later: 50 MB/s,
        // 800 MB left: 16 s.
        assert_eq!(rate(&samples, "j", &at(100_000_000), t0), None);
        assert_eq!(
            rate(
                &samples,
                "j",
                &at(200_000_000),
                t0 + std::time::Duration::from_secs(2)
            ),
            Some("50.0 MB/s, about 16 s left".into())
        );
        assert_eq!(
            certificate_id("/var/lib/lethe/certificates/wipe-20261204T144343Z-eb623043.json"),
            "wipe-20261204T144343Z-eb623043"
        );
    }
}
