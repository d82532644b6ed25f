//! `lethe backup schedule check FILE`: everything `run-scheduled` would trip
//! over, found before the first night: the TOML itself (keys, intervals,
//! retention counts), and per job its repository location, its passphrase file,
//! its source, and whether its dump command may run (who owns and who can
//! write the file). Nothing is opened, written or run. Exit 0 when every job
//! is usable, 1 otherwise.

use super::render::out;
use crate::exit;
use anyhow::Result;
use lethe_backup::schedule::{self, JobConfig};
use lethe_backup::scheduled;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

#[derive(serde::Serialize)]
struct JobCheck {
    name: String,
    ok: bool,
    problems: Vec<String>,
    summary: String,
}

fn summary(j: &JobConfig) -> String {
    let source = if let Some(d) = &j.device {
        format!("device {d}")
    } else if let Some(c) = &j.stdin_command {
        format!("the output of `{c}`")
    } else {
        j.paths.join(" ")
    };
    let keep: Vec<String> = [
        ("last", j.keep_last),
        ("hourly", j.keep_hourly),
        ("daily", j.keep_daily),
        ("weekly", j.keep_weekly),
        ("monthly", j.keep_monthly),
        ("yearly", j.keep_yearly),
    ]
    .iter()
    .filter_map(|(k, v)| v.map(|n| format!("{k} {n}")))
    .collect();
    format!(
        "{source} to {} every {}; {}; {}",
        j.repo,
        j.every,
        if keep.is_empty() {
            "no retention (every snapshot is kept)".to_string()
        } else {
            format!("keep {}", keep.join(", "))
        },
        match &j.drill_every {
            Some(d) => format!("drill of {} item(s) every {d}", j.drill_sample),
            None => "no drills".into(),
        }
    )
}

fn check_job(j: &JobConfig, sched: &scheduled::LoadedSchedule, euid: u32) -> Vec<String> {
    let mut p = Vec::new();
    if let Err(e) = lethe_backend::location::parse(&j.repo) {
        p.push(format!("repo: {e}"));
    }
    let pw = Path::new(&j.password_file);
    match std::fs::metadata(pw) {
        Ok(m) if !m.is_file() => p.push(format!("password_file {}: not a file", pw.display())),
        Ok(m) => {
            if m.mode() & 0o044 != 0 {
                p.push(format!(
                    "password_file {}: readable by group or others (mode {:04o}); make it `chmod 600`",
                    pw.display(),
                    m.mode() & 0o7777
                ));
            }
            if m.len() == 0 {
                p.push(format!("password_file {}: empty", pw.display()));
            }
        }
        Err(e) => p.push(format!("password_file {}: {e}", pw.display())),
    }
    if let Some(d) = &j.device {
        match std::fs::metadata(d) {
            Ok(m) if m.file_type().is_block_device() || m.is_file() => {}
            Ok(_) => p.push(format!(
                "device {d}: neither a block device nor an image file"
            )),
            Err(e) => p.push(format!("device {d}: {e}")),
        }
    }
    for path in &j.paths {
        if let Err(e) = std::fs::symlink_metadata(path) {
            p.push(format!("paths: {path}: {e}"));
        } else if !Path::new(path).is_absolute() {
            p.push(format!("paths: {path}: give an absolute path"));
        }
    }
    if j.stdin_command.is_some() {
        if let Err(e) = scheduled::trust(sched.owner, sched.mode, euid, &sched.path) {
            p.push(e);
        }
    }
    if j.repo.starts_with("sftp:") && j.sftp_key.is_none() {
        p.push("sftp repository without sftp_key".into());
    }
    for (k, v) in [
        ("sftp_key", &j.sftp_key),
        ("sftp_known_hosts", &j.sftp_known_hosts),
    ] {
        if let Some(f) = v {
            if let Err(e) = std::fs::metadata(f) {
                p.push(format!("{k} {f}: {e}"));
            }
        }
    }
    for (k, v) in [
        ("every", Some(&j.every)),
        ("drill_every", j.drill_every.as_ref()),
    ] {
        if let Some(v) = v {
            if let Err(e) = schedule::parse_interval(v) {
                p.push(format!("{k}: {e}"));
            }
        }
    }
    p
}

pub fn run(file: &Path, json: bool) -> Result<u8> {
    let sched = match scheduled::load(file) {
        Ok(s) => s,
        Err(e) => {
            if json {
                out(
                    serde_json::json!({"file": file.display().to_string(), "ok": false, "error": e.to_string()}),
                )?;
            } else {
                out(format_args!("{}: NOT USABLE: {e}", file.display()))?;
            }
            return Ok(exit::ERROR);
        }
    };
    let euid = scheduled::euid();
    let jobs: Vec<JobCheck> = sched
        .file
        .jobs
        .iter()
        .map(|j| {
            let problems = check_job(j, &sched, euid);
            JobCheck {
                name: j.name.clone(),
                ok: problems.is_empty(),
                problems,
                summary: summary(j),
            }
        })
        .collect();
    let ok = !jobs.is_empty() && jobs.iter().all(|j| j.ok);
    if json {
        out(serde_json::json!({"file": file.display().to_string(), "ok": ok, "jobs": jobs}))?;
    } else {
        if jobs.is_empty() {
            out(format_args!("{}: no [[job]] in the file", file.display()))?;
        }
        for j in &jobs {
            out(format_args!(
                "job {}: {} — {}",
                j.name,
                if j.ok { "ok" } else { "PROBLEMS" },
                j.summary
            ))?;
            for p in &j.problems {
                out(format_args!("    {p}"))?;
            }
        }
    }
    Ok(if ok { exit::OK } else { exit::ERROR })
}
