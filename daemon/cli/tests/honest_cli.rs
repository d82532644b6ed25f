//! Honest results and a tool that behaves under pressure, through the CLI:
//! every result its own word and exit code, usage errors with their own
//! code, a JSON last line in every case, closed pipes, the operator and the
//! place on every certificate, and lists that sort and align.
//!
//! The tests without a device run everywhere; the others need the loop tier.

mod common;

use common::*;
use lethe_hw_tests::{loop_tier_unavailable, skip, LoopDevice};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const MIB: u64 = 1 << 20;

fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

/// The last stdout line as a JSON object.
fn last_json(out: &Output) -> serde_json::Value {
    let v = summary(out);
    assert!(v.is_object(), "{v}");
    v
}

#[test]
fn usage_errors_have_their_own_exit_code_and_a_json_last_line_on_every_command() {
    let state = state_dir();
    let cases: &[&[&str]] = &[
        &["wipe", "--json"],
        &["wipe", "--json", "--no-such-option", "/dev/null"],
        &["wipe", "--json", "--passes", "many", "/dev/null"],
        &["wipe", "--json", "--verify", "sometimes", "/dev/null"],
        &["jobs", "--json", "--bogus"],
        &["cert", "verify", "--json"],
        &["cert", "--json", "frobnicate"],
        &["drives", "--json", "--watch-timeout", "x"],
        &["degauss", "--json", "--tape", "T", "/dev/sdz"],
        &["controller", "status", "--json"],
        &["audit", "export", "--json", "--format", "xml"],
        &["backup", "--json", "--no-such-option", "snapshots"],
        &["--json", "no-such-command"],
    ];
    for args in cases {
        let out = run(lethe(state.path())
            .env_remove("LETHE_CONTROLLER_PORT")
            .args(*args));
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert_ne!(out.status.code(), Some(2), "never the 'wipe failed' code");
        let v = last_json(&out);
        assert_eq!(v["result"], "usage_error", "{args:?}: {v}");
        assert_eq!(v["exit_code"], 64);
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
        // Without --json: the same code, and clap's message on stderr only.
        let plain: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
        let out = run(lethe(state.path())
            .env_remove("LETHE_CONTROLLER_PORT")
            .args(&plain));
        assert_eq!(out.status.code(), Some(64), "{plain:?}");
        assert!(out.stdout.is_empty(), "{plain:?}");
    }
    // Help and version are not errors.
    for args in [
        &["--help"][..],
        &["--version"],
        &["wipe", "--help"],
        &["backup", "--help"],
    ] {
        let out = run(lethe(state.path()).args(args));
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
}

#[test]
fn unknown_jobs_and_certificates_end_with_a_json_object() {
    let state = state_dir();
    let out = run(lethe(state.path()).args(["jobs", "show", "wipe-nope", "--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = last_json(&out);
    assert_eq!(v["result"], "error");
    assert!(v["error"].as_str().unwrap().contains("wipe-nope"), "{v}");

    let out = run(lethe(state.path()).args(["wipe", "--yes", "--json", "--resume", "wipe-nope"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = last_json(&out);
    assert_eq!(v["result"], "refused");
    assert!(v["error"].as_str().unwrap().contains("wipe-nope"), "{v}");

    let out = run(lethe(state.path()).args(["cert", "show", "nope", "--json"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(last_json(&out)["result"], "error");
}

/// Run `lethe ARGS` with stdout a pipe whose reader is already gone.
fn with_closed_stdout(state: &Path, args: &[&str]) -> Output {
    // The write end of a pipe whose only reader, `true`, has already exited.
    let mut sink = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let writer = sink.stdin.take().unwrap();
    sink.wait().unwrap();
    let child = lethe(state)
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

fn assert_quiet(out: &Output, what: &str) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{what}: {err}"
    );
    assert_ne!(out.status.code(), Some(101), "{what}: a panic's exit code");
}

#[test]
fn a_closed_pipe_ends_every_listing_quietly() {
    let state = state_dir();
    for args in [
        &["--help"][..],
        &["--version"],
        &["backup", "--help"],
        &["jobs"],
        &["jobs", "--json"],
        &["cert", "list"],
        &["cert", "list", "--json"],
        &["drives"],
        &["drives", "--json"],
        &["audit", "export", "--format", "jsonl"],
        &["jobs", "--bogus", "--json"],
    ] {
        let out = with_closed_stdout(state.path(), args);
        assert_quiet(&out, &format!("{args:?}"));
    }
}

#[test]
fn a_wipe_whose_output_nobody_reads_still_finishes_and_certifies() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(8 * MIB, 512, 0x21).unwrap();
    let state = state_dir();
    let out = with_closed_stdout(
        state.path(),
        &[
            "wipe",
            "--yes",
            "--json",
            "--pattern",
            "zero",
            "--progress-interval-ms",
            "10",
            dev.path().to_str().unwrap(),
        ],
    );
    assert_quiet(&out, "wipe | closed");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_file_matches(dev.backing(), |b, _| b.fill(0));
    let jobs = run(lethe(state.path()).args(["jobs", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&jobs.stdout).unwrap();
    assert_eq!(v[0]["status"], "pass");
    assert!(v[0]["certificate"].is_string());
}

#[test]
fn verify_off_is_unverified_with_exit_5_a_report_and_its_own_word_everywhere() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(8 * MIB, 512, 0x33).unwrap();
    let state = state_dir();
    let out = run(lethe(state.path())
        .args([
            "wipe",
            "--yes",
            "--json",
            "--pattern",
            "zero",
            "--verify",
            "off",
        ])
        .arg(dev.path()));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let s = last_json(&out);
    assert_eq!(s["result"], "unverified");
    assert_eq!(s["certified"], false);
    assert_eq!(s["bytes_written"], 8 * MIB);
    assert_eq!(s["bytes_verified"], 0);
    let b = cert_body(s["certificate"].as_str().unwrap());
    assert_eq!(b["result"]["status"], "unverified");
    let pdf = pdf_text(Path::new(s["pdf"].as_str().unwrap()));
    assert!(pdf.contains("Sanitization report — UNVERIFIED"), "{pdf}");
    assert!(!pdf.contains("Certificate of Sanitization"), "{pdf}");
    // Its own word in the job list, the certificate list and the text summary.
    let jobs = run(lethe(state.path()).arg("jobs"));
    assert!(String::from_utf8_lossy(&jobs.stdout).contains("unverified"));
    let certs = run(lethe(state.path()).args(["cert", "list"]));
    assert!(String::from_utf8_lossy(&certs.stdout).contains("unverified"));
    let out = run(lethe(state.path())
        .args(["wipe", "--yes", "--pattern", "zero", "--verify", "off"])
        .arg(dev.path()));
    assert_eq!(out.status.code(), Some(5));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("UNVERIFIED:"), "{text}");
    assert!(text.contains("report"), "{text}");
    assert!(!text.contains("PASS"), "{text}");
}

#[test]
fn not_confirmed_ends_with_a_json_refusal_and_writes_nothing() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(4 * MIB, 512, 0x44).unwrap();
    let before = dev.backing_sha256();
    let state = state_dir();
    let mut child = lethe(state.path())
        .args(["wipe", "--json"])
        .arg(dev.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"yes\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = last_json(&out);
    assert_eq!(v["result"], "refused");
    assert!(
        v["error"].as_str().unwrap().contains("not confirmed"),
        "{v}"
    );
    assert_eq!(dev.backing_sha256(), before);
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("lethe.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_operator_and_the_place_are_on_every_certificate() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(4 * MIB, 512, 0x55).unwrap();
    let before = dev.backing_sha256();
    let state = state_dir();
    let wipe = |cfg: &str, extra: &[&str]| {
        run(lethe(state.path())
            .env_remove("LETHE_OPERATOR_ID")
            .env("LETHE_CONFIG", cfg)
            .args(["wipe", "--yes", "--json", "--pattern", "zero"])
            .args(extra)
            .arg(dev.path()))
    };
    // No operator anywhere: refused before anything, with the way to name one.
    let out = wipe("/dev/null", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--operator-id"), "{}", stderr(&out));
    let v = last_json(&out);
    assert_eq!(v["result"], "refused");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no operator of record"),
        "{v}"
    );
    assert_eq!(dev.backing_sha256(), before);
    assert!(!state.path().join("certificates").exists());

    // From the site configuration: operator, location, media source.
    let cfgdir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        cfgdir.path(),
        "[site]\noperator_id = \"tech-07\"\noperator_name = \"Ana Ødegård\"\n\
         location = \"St. Olav, IT depot B2\"\nmedia_source = \"Radiology PACS 3\"\n",
    );
    let out = wipe(cfg.to_str().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = last_json(&out);
    let b = cert_body(s["certificate"].as_str().unwrap());
    assert_eq!(b["operator"]["id"], "tech-07");
    assert_eq!(b["operator"]["name"], "Ana Ødegård");
    assert_eq!(b["appliance"]["location"], "St. Olav, IT depot B2");
    assert_eq!(b["media_source"], "Radiology PACS 3");
    let ev = b["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "operator")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ev.contains("[site] operator_id in"), "{ev}");
    let pdf = pdf_text(Path::new(s["pdf"].as_str().unwrap()));
    assert!(
        pdf.contains("St. Olav, IT depot B2") && pdf.contains("Ana Ødegård"),
        "{pdf}"
    );
    assert!(!pdf.contains("id unknown"), "{pdf}");

    // Options beat the configuration.
    let out = wipe(
        cfg.to_str().unwrap(),
        &["--operator-id", "jdoe", "--location", "Mobile unit 2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let b = cert_body(last_json(&out)["certificate"].as_str().unwrap());
    assert_eq!(b["operator"]["id"], "jdoe");
    assert_eq!(b["appliance"]["location"], "Mobile unit 2");
    assert_eq!(b["media_source"], "Radiology PACS 3");

    // A site that accepts jobs without an operator: accepted, and it says so.
    let open = write_config(cfgdir.path(), "[site]\nrequire_operator = false\n");
    let out = wipe(open.to_str().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let b = cert_body(last_json(&out)["certificate"].as_str().unwrap());
    assert_eq!(b["operator"]["id"], "");

    // A configuration with a mistake is refused with its line, never guessed.
    let bad = write_config(cfgdir.path(), "[site]\nlocaton = \"x\"\n");
    let out = wipe(bad.to_str().unwrap(), &["--operator-id", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("location"), "{}", stderr(&out));
}

#[test]
fn the_pdfs_own_verify_instruction_works_as_printed() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(4 * MIB, 512, 0x66).unwrap();
    let state = state_dir();
    let out = run(lethe(state.path())
        .args(["wipe", "--yes", "--json", "--pattern", "zero"])
        .arg(dev.path()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = last_json(&out);
    let pdf = pdf_text(Path::new(s["pdf"].as_str().unwrap()));
    let line = pdf
        .lines()
        .find_map(|l| l.trim().strip_prefix("Check offline: "))
        .unwrap_or_else(|| panic!("{pdf}"));
    let cmd = line.split(" (").next().unwrap();
    let words: Vec<&str> = cmd.split_whitespace().collect();
    assert_eq!(&words[..3], ["lethe", "cert", "verify"], "{cmd}");
    assert_eq!(words[3], s["job"].as_str().unwrap(), "{cmd}");
    // An auditor with the appliance's public key in the current directory.
    let out = run(lethe(state.path())
        .current_dir(state.path().join("keys"))
        .args(&words[1..]));
    assert_eq!(out.status.code(), Some(0), "{cmd}: {}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("VALID"));
}

/// The column at which `word` starts on each line that has it.
fn column_of(text: &str, word: &str) -> Vec<usize> {
    text.lines().filter_map(|l| l.find(word)).collect()
}

#[test]
fn lists_are_newest_first_with_aligned_columns() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(4 * MIB, 512, 0x77).unwrap();
    let state = state_dir();
    let mut ids = Vec::new();
    for verify in ["full", "off"] {
        // Ids are time-ordered by the second; keep the two jobs apart.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let out = run(lethe(state.path())
            .args([
                "wipe",
                "--yes",
                "--json",
                "--pattern",
                "zero",
                "--verify",
                verify,
            ])
            .arg(dev.path()));
        ids.push(last_json(&out)["job"].as_str().unwrap().to_string());
    }
    let jobs = String::from_utf8_lossy(&run(lethe(state.path()).arg("jobs")).stdout).into_owned();
    let lines: Vec<&str> = jobs.lines().collect();
    assert!(lines[0].starts_with("JOB"), "{jobs}");
    assert!(
        lines[1].starts_with(&ids[1]) && lines[2].starts_with(&ids[0]),
        "{jobs}"
    );
    let status_col = lines[0].find("STATUS").unwrap();
    assert_eq!(
        &lines[1][status_col..status_col + 10],
        "unverified",
        "{jobs}"
    );
    assert_eq!(&lines[2][status_col..status_col + 4], "pass", "{jobs}");
    let device_col = column_of(&jobs, "/dev/loop");
    assert_eq!(device_col.len(), 2);
    assert_eq!(device_col[0], device_col[1], "{jobs}");

    let certs = String::from_utf8_lossy(&run(lethe(state.path()).args(["cert", "list"])).stdout)
        .into_owned();
    let lines: Vec<&str> = certs.lines().collect();
    assert!(
        lines[1].starts_with(&ids[1]) && lines[2].starts_with(&ids[0]),
        "{certs}"
    );
    let status_col = lines[0].find("STATUS").unwrap();
    assert_eq!(
        &lines[1][status_col..status_col + 10],
        "unverified",
        "{certs}"
    );
    assert_eq!(&lines[2][status_col..status_col + 4], "pass", "{certs}");
}

#[test]
fn backup_listings_into_a_closed_pipe_end_quietly_too() {
    let state = state_dir();
    let repo = state.path().join("repo");
    let pw = state.path().join("pw");
    std::fs::write(&pw, "correct horse battery staple\n").unwrap();
    let backup = |args: &[&str]| {
        let mut v = vec![
            "backup",
            "--repo",
            repo.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ];
        v.extend_from_slice(args);
        v.into_iter().map(String::from).collect::<Vec<String>>()
    };
    let init = run(lethe(state.path())
        .env_remove("LETHE_REPO")
        .env_remove("LETHE_PASSWORD")
        .env_remove("LETHE_PASSWORD_FILE")
        .args(backup(&["init"])));
    assert_eq!(init.status.code(), Some(0), "{}", stderr(&init));
    for args in [
        &["snapshots"][..],
        &["snapshots", "--json"],
        &["key", "list"],
    ] {
        let argv = backup(args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = with_closed_stdout(state.path(), &argv);
        assert_quiet(&out, &format!("{args:?}"));
    }
}
