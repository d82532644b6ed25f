//! `lethe wipe --level purge` / `--method` on loop devices (root only). A loop
//! device has no drive-native command: the policy says so, and either the job
//! falls back to a verified overwrite certified as Clear (exit 4), or it is
//! refused with nothing written.

mod common;

use common::*;
use lethe_hw_tests::{loop_tier_unavailable, skip, LoopDevice};

const MIB: u64 = 1 << 20;

/// safeguard: rule:never-certify-unverified
#[test]
fn purge_on_a_device_without_commands_is_certified_as_clear_with_exit_4() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(16 * MIB, 512, 0x5A).unwrap();
    let state = state_dir();
    let out = lethe(state.path())
        .args([
            "wipe",
            "--yes",
            "--json",
            "--level",
            "purge",
            "--pattern",
            "zero",
        ])
        .arg(dev.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let s = summary(&out);
    assert_eq!(s["result"], "clear_only", "never a plain pass");
    assert_eq!(s["certified"], true);
    assert_eq!(s["category"], "clear");
    assert_eq!(s["requested"], "purge");
    let b = cert_body(s["certificate"].as_str().unwrap());
    assert_eq!(b["result"]["status"], "clear_only");
    assert_eq!(b["method"]["category"], "clear");
    assert_eq!(b["method"]["requested_level"], "purge");
    // What the auditor reads: the amber banner, in the PDF the user gets.
    let pdf = pdf_text(std::path::Path::new(s["pdf"].as_str().unwrap()));
    assert!(pdf.contains("CLEAR ONLY"), "{pdf}");
    assert!(
        pdf.contains("Purge was requested: only a verified Clear was reached"),
        "{pdf}"
    );
    // The job list and the certificate list say the same.
    let jobs = lethe(state.path()).args(["jobs"]).output().unwrap();
    let text = String::from_utf8_lossy(&jobs.stdout);
    assert!(text.contains("clear_only"), "{text}");
    let certs = lethe(state.path()).args(["cert", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&certs.stdout);
    assert!(text.contains("clear_only"), "{text}");
    assert!(b["method"]["reason"]
        .as_str()
        .unwrap()
        .contains("Purge requires destruction"));
    // The chosen-method event came first, on stdout, for scripts.
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(first.contains("\"event\":\"chosen\""), "{first}");
    assert_file_matches(dev.backing(), |buf, _| buf.fill(0));
}

#[test]
fn purge_without_fallback_or_with_a_missing_method_is_refused_and_writes_nothing() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(8 * MIB, 512, 0xC3).unwrap();
    let before = dev.backing_sha256();
    let state = state_dir();
    for args in [
        vec!["--level", "purge", "--no-fallback"],
        vec!["--method", "nvme-format"],
        vec!["--method", "ata-secure-erase"],
    ] {
        let out = lethe(state.path())
            .args(["wipe", "--yes", "--json"])
            .args(&args)
            .arg(dev.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let s = summary(&out);
        assert_eq!(s["result"], "refused", "{args:?}");
        let why = s["error"].as_str().unwrap();
        assert!(
            why.contains("destroy") || why.contains("not supported"),
            "{args:?}: {why}"
        );
    }
    assert_eq!(
        dev.backing_sha256(),
        before,
        "a refusal wrote to the device"
    );
}
