//! The real-drive tier: the same CLI bodies as the loop and QEMU tiers, run
//! against a physical drive only when the operator names it twice:
//!
//! ```sh
//! LETHE_HW_DEVICE=/dev/disk/by-id/ata-… LETHE_HW_I_ACCEPT_DATA_LOSS=<its serial> \
//!     cargo test -p lethe-cli --test real_drive -- --nocapture
//! ```
//!
//! The serial must match what `lethe drives` reads from the drive, or nothing
//! runs. `LETHE_HW_LEVEL=clear` runs the overwrite instead of the purge.
//! Never set in CI: there the test prints `SKIPPED (opt-in):` and passes
//! (counted apart from the tiers CI must run).

mod common;

use common::*;
use lethe_hw_tests::real_drive;

#[test]
fn real_drive_sanitize_and_certificate() {
    let Some((dev, serial)) = real_drive() else {
        eprintln!(
            "SKIPPED (opt-in): real_drive_sanitize_and_certificate: set LETHE_HW_DEVICE and \
             LETHE_HW_I_ACCEPT_DATA_LOSS=<serial> to run against a physical drive"
        );
        return;
    };
    let state = state_dir();
    let out = lethe(state.path())
        .args(["drives", "--json"])
        .output()
        .unwrap();
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let canon = std::fs::canonicalize(&dev).unwrap_or_else(|e| panic!("{}: {e}", dev.display()));
    let drive = list
        .iter()
        .find(|d| d["path"].as_str().map(std::path::PathBuf::from) == Some(canon.clone()))
        .unwrap_or_else(|| panic!("{} is not in `lethe drives`", canon.display()));
    assert_eq!(
        drive["serial"].as_str(),
        Some(serial.as_str()),
        "LETHE_HW_I_ACCEPT_DATA_LOSS does not match the drive's serial: nothing was written"
    );
    let level = std::env::var("LETHE_HW_LEVEL").unwrap_or_else(|_| "purge".into());
    let out = lethe(state.path())
        .args([
            "wipe",
            "--yes",
            "--json",
            "--level",
            &level,
            "--operator-id",
            "hw-test",
        ])
        .arg(&canon)
        .output()
        .unwrap();
    let s = summary(&out);
    eprintln!("{s}");
    assert!(
        matches!(out.status.code(), Some(0) | Some(4)),
        "{}",
        stderr(&out)
    );
    assert!(
        matches!(
            (out.status.code(), s["result"].as_str()),
            (Some(0), Some("pass")) | (Some(4), Some("clear_only"))
        ),
        "{s}"
    );
    let cert = s["certificate"].as_str().unwrap();
    let v = lethe(state.path())
        .args(["cert", "verify", cert])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", stderr(&v));
    let b = cert_body(cert);
    assert_eq!(b["device"]["serial"], serial.as_str());
    if s["category"] == "purge" {
        assert!(!b["method"]["drive_command"]["completion_status"]
            .as_str()
            .unwrap_or_default()
            .is_empty());
        assert_eq!(b["verification"]["result"], "pass");
    }
}
