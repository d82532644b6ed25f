//! Crash and Ctrl-C during a wipe, then `--resume` (root only).

mod common;

use common::*;
use lethe_core::pattern::Pattern;
use lethe_hw_tests::{loop_tier_unavailable, skip, LoopDevice};
use lethe_wipe::{PatternStream, StreamKey};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;

/// A running wipe whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

const MIB: u64 = 1 << 20;

/// Start a long multi-pass wipe with frequent checkpoints and progress lines.
fn start_long_wipe(state: &std::path::Path, dev: &LoopDevice) -> Running {
    let mut child = lethe(state)
        .args([
            "wipe",
            "--yes",
            "--json",
            "--pattern",
            "random",
            "--passes",
            "6",
            "--checkpoint-secs",
            "1",
            "--progress-interval-ms",
            "50",
            "--chunk-mib",
            "1",
        ])
        .arg(dev.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running { child, lines }
}

/// Read progress lines until the job has stored a durable checkpoint past
/// the start and is at most 80 % done; returns the job id.
fn wait_until_midway(run: &Running, state: &std::path::Path) -> String {
    for line in run.lines.iter() {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let (done, total) = (
            v["job_done"].as_u64().unwrap(),
            v["job_total"].as_u64().unwrap(),
        );
        assert!(
            done * 10 <= total * 8,
            "wipe went too fast to interrupt midway"
        );
        let Ok(store) = lethe_store::JobStore::open(state) else {
            continue;
        };
        let Some(job) = store.list().unwrap().into_iter().next() else {
            continue;
        };
        let past_start = match job.checkpoint {
            lethe_core::plan::Checkpoint::Writing { pass, offset } => pass > 0 || offset > 0,
            _ => true,
        };
        if past_start && done * 10 >= total * 2 {
            return job.id;
        }
    }
    panic!("wipe ended before reaching the middle");
}

fn final_stream(state: &std::path::Path, job: &str) -> PatternStream {
    PatternStream::new(Pattern::Random, 5, &StreamKey(job_key(state, job)))
}

/// safeguard: 164.310(d)(2)(iii), rule:record-before-write
#[test]
fn kill_9_midway_leaves_an_interrupted_job_that_resumes_to_a_valid_certificate() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(512 * MIB, 512, 0x66).unwrap();
    let state = state_dir();
    let mut run = start_long_wipe(state.path(), &dev);
    let job = wait_until_midway(&run, state.path());
    run.child.kill().unwrap(); // SIGKILL
    run.child.wait().unwrap();

    let out = lethe(state.path())
        .args(["jobs", "--json"])
        .output()
        .unwrap();
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(jobs[0]["job"], job.as_str());
    assert_eq!(jobs[0]["status"], "interrupted");
    assert_eq!(jobs[0]["resumable"], true);
    let cp = &jobs[0]["checkpoint"];
    assert_eq!(cp["phase"], "writing", "{cp}");
    assert!(
        cp["offset"].as_u64().unwrap() > 0 || cp["pass"].as_u64().unwrap() > 0,
        "{cp}"
    );

    // An option the job cannot change is an error, not silently ignored;
    // nothing happens to the job.
    for extra in [
        &["--passes", "2"][..],
        &["--pattern", "zero"],
        &["--verify", "off"],
    ] {
        let out = lethe(state.path())
            .args(["wipe", "--yes", "--json", "--resume", &job])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{extra:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("cannot be changed when resuming"),
            "{}",
            stderr(&out)
        );
        let s = summary(&out);
        assert_eq!(s["result"], "usage_error");
        assert!(s["error"].as_str().unwrap().contains(extra[0]), "{s}");
    }

    let out = lethe(state.path())
        .args([
            "wipe",
            "--yes",
            "--json",
            "--resume",
            &job,
            "--progress-interval-ms",
            "50",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["result"], "pass");
    assert_eq!(s["job"], job.as_str());
    // The summary counts the whole job, as the certificate does, and says
    // how much of it the interrupted run had written.
    let total = 6 * (512 * MIB);
    let earlier = s["bytes_written_earlier"].as_u64().unwrap();
    assert!(earlier > 0 && earlier < total, "{s}");
    assert_eq!(s["bytes_written"].as_u64().unwrap(), total, "{s}");
    // Progress starts from what was already done, not from zero.
    let first: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("\"event\":\"progress\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .expect("a progress line");
    assert!(
        first["job_done"].as_u64().unwrap() >= earlier,
        "first progress {first} after {earlier} bytes"
    );
    assert_eq!(first["job_total"].as_u64().unwrap(), total + 512 * MIB);

    let stream = final_stream(state.path(), &job);
    assert_file_matches(dev.backing(), |b, off| stream.fill(b, off));
    let cert = s["certificate"].as_str().unwrap();
    let body = cert_body(cert);
    assert_eq!(
        body["result"]["bytes_written"], s["bytes_written"],
        "the resumed run's summary and its certificate agree"
    );
    let kinds: Vec<String> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"interrupted".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"resumed".to_string()), "{kinds:?}");
    let v = lethe(state.path())
        .args(["cert", "verify", cert])
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));

    // A finished job cannot be resumed again.
    let again = lethe(state.path())
        .args(["wipe", "--yes", "--resume", &job])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("cannot be resumed"),
        "{}",
        stderr(&again)
    );
}

/// safeguard: rule:never-certify-unverified
#[test]
fn ctrl_c_gives_an_incomplete_report_and_the_job_resumes() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(512 * MIB, 512, 0x66).unwrap();
    let state = state_dir();
    let mut run = start_long_wipe(state.path(), &dev);
    let job = wait_until_midway(&run, state.path());
    // Ctrl-C as a terminal would send it.
    let st = std::process::Command::new("kill")
        .args(["-INT", &run.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = run.child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    let last = run.lines.iter().last().expect("a final JSON line");
    let s: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(s["result"], "incomplete");
    assert_eq!(s["resumable"], true);
    let report = s["certificate"].as_str().unwrap();
    let body = cert_body(report);
    assert_eq!(body["result"]["status"], "incomplete");
    assert_ne!(body["result"]["status"], "pass");

    let out = lethe(state.path())
        .args(["wipe", "--yes", "--json", "--resume", &job])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary(&out)["result"], "pass");
    let stream = final_stream(state.path(), &job);
    assert_file_matches(dev.backing(), |b, off| stream.fill(b, off));
}
