//! `hw-tests/summarize.awk`, the closing line of `run-tests.sh`, against a
//! recorded `cargo test -- --show-output` log: tests that skip themselves
//! are counted as skipped (once each, per binary), opt-in tiers apart, and
//! with `ci=1` a skip fails the run.

use std::path::Path;
use std::process::Command;

fn summarize(ci: bool) -> (String, Option<i32>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("awk")
        .args(["-v", if ci { "ci=1" } else { "ci=0" }, "-f"])
        .arg(root.join("summarize.awk"))
        .arg(root.join("tests/fixtures/show-output.log"))
        .output()
        .expect("awk runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

#[test]
fn self_skipping_tests_are_counted_as_skipped_not_passed() {
    let (text, code) = summarize(false);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "skipped: lethe_core: a: needs root",
            "skipped: lethe_core: b: again",
            "opt-in, not run: real_drive: real_drive_sanitize_and_certificate: set LETHE_HW_DEVICE",
            "workspace: 0 passed, 1 failed, 2 skipped (1 opt-in not requested, 1 ignored)",
        ]
    );
    assert_eq!(code, Some(0));
}

#[test]
fn under_ci_a_skipped_tier_fails_the_run() {
    let (text, code) = summarize(true);
    assert!(text.ends_with("1 ignored)\n"), "{text}");
    assert_eq!(code, Some(1));
}
