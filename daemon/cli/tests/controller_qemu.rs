//! `lethe degauss`, `lethe controller status` and bay LEDs against the real
//! front-panel firmware booted in QEMU (mps2-an386), plus the refusals that
//! need no controller at all. The image is a simulation build: `lethe degauss`
//! fires it only with `LETHE_TEST_ALLOW_SIMULATED_CONTROLLER=1`, and refuses it
//! without.

mod common;

use common::*;
use lethe_controller::ALLOW_SIMULATION_ENV;
use lethe_hw_tests::qemu_board::{
    firmware_elf, missing_prereq, one_at_a_time, relay_pulses, QemuBoard,
};
use lethe_hw_tests::{loop_tier_unavailable, skip, LoopDevice};

const MIB: u64 = 1 << 20;

fn board() -> Option<QemuBoard> {
    if let Some(why) = missing_prereq() {
        eprintln!("SKIPPED: controller QEMU test: {why}");
        return None;
    }
    let elf = firmware_elf().as_ref().unwrap_or_else(|e| panic!("{e}"));
    Some(QemuBoard::boot(elf).expect("boot the controller firmware"))
}

#[test]
fn degauss_refuses_media_that_is_not_magnetic_and_writes_nothing() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(8 * MIB, 512, 0x5a).unwrap();
    let before = dev.backing_sha256();
    let state = state_dir();
    let out = lethe(state.path())
        .args(["degauss", "--yes", "--port", "/nonexistent/controller"])
        .arg(dev.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("refused") && err.contains("magnetic"), "{err}");
    assert!(
        !err.contains("/nonexistent/controller"),
        "the controller must not be contacted: {err}"
    );
    assert_eq!(dev.backing_sha256(), before);
    // No job and no certificate.
    assert!(!state.path().join("certificates").exists());
}

/// safeguard: 164.310(d)(2)(i), rule:fail-safe-relay
#[test]
fn status_degauss_cycle_and_destroy_certificate() {
    let _one = one_at_a_time();
    let Some(q) = board() else { return };
    let state = state_dir();
    let out = lethe(state.path())
        .args(["controller", "status", "--json", "--port", q.pty()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["relay"], false);
    assert_eq!(st["energized"], false);
    assert_eq!(st["interlock_closed"], true);
    assert_eq!(st["firmware"]["version"], serde_json::json!([0, 2, 0]));
    assert_eq!(st["firmware"]["build"], "Simulation");

    // Asked to confirm only once the controller is ready; a tape is named by
    // its label (it has no size in bytes), and "0" confirms nothing.
    let mut child = lethe(state.path())
        .env(ALLOW_SIMULATION_ENV, "1")
        .args([
            "degauss",
            "--tape",
            "LTO-0042",
            "--json",
            "--controller-port",
            q.pty(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(b"0\n");
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Degaussing DESTROYS tape LTO-0042"), "{err}");
    assert!(err.contains("type its label (LTO-0042)"), "{err}");
    assert!(!err.contains("bytes"), "a tape has no size in bytes: {err}");
    assert_eq!(summary(&out)["result"], "refused");
    assert!(relay_pulses(&q.log()).is_empty(), "not confirmed: no pulse");

    let mark = q.log().len();
    let out = lethe(state.path())
        .env(ALLOW_SIMULATION_ENV, "1")
        .args([
            "degauss",
            "--tape",
            "LTO-0042",
            "--yes",
            "--json",
            "--operator-id",
            "op-9",
            "--controller-port",
            q.pty(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = summary(&out);
    assert_eq!(r["result"], "pass");
    assert_eq!(r["confirmation"]["cycle"], 1);
    assert_eq!(r["confirmation"]["medium"], "tape:LTO-0042");
    assert_eq!(r["confirmation"]["consent"], "assume_yes");
    let measured = r["confirmation"]["relay_on_ms"].as_f64().unwrap();
    let log = q.log();
    let pulses = relay_pulses(log.get(mark..).unwrap_or(""));
    let [(on, Some(off))] = pulses[..] else {
        panic!("one finished pulse in QEMU's record: {pulses:?}")
    };
    assert!(
        (measured - (off - on) * 1_000.0).abs() <= 50.0,
        "certified {measured} ms, QEMU recorded {:.1} ms",
        (off - on) * 1_000.0
    );

    let cert = r["certificate"].as_str().unwrap();
    let body = cert_body(cert);
    assert_eq!(body["method"]["category"], "destroy");
    assert_eq!(body["method"]["technique"], "degauss");
    assert_eq!(body["verification"]["method"], "controller_confirmed");
    assert_eq!(body["result"]["status"], "pass");
    assert_eq!(body["device"]["serial"], "LTO-0042");
    assert_eq!(body["device"]["media_type"], "magnetic");
    assert_eq!(body["operator"]["id"], "op-9");
    let v = lethe(state.path())
        .args(["cert", "verify", cert])
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
}

/// safeguard: rule:never-certify-unverified, rule:fail-safe-relay
#[test]
fn an_open_door_is_refused_before_anything_is_asked_or_recorded() {
    let _one = one_at_a_time();
    let Some(q) = board() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let set_door = |open: bool| {
        rt.block_on(async {
            let c = lethe_controller::Controller::connect(lethe_controller::ControllerConfig::new(
                q.pty(),
            ))
            .await
            .unwrap();
            c.sim_inputs(lethe_controller::SimInputs {
                interlock_open: open,
                ..Default::default()
            })
            .await
            .unwrap();
        })
    };
    set_door(true);
    let mark = q.log().len();
    let state = state_dir();
    // No --yes, and an answer ready on stdin: the prompt must never come.
    let mut child = lethe(state.path())
        .env(ALLOW_SIMULATION_ENV, "1")
        .args([
            "degauss",
            "--tape",
            "LTO-0043",
            "--json",
            "--controller-port",
            q.pty(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(b"LTO-0043\n");
    }
    let out = child.wait_with_output().unwrap();
    set_door(false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains("To confirm"),
        "asked before the controller was ready: {err}"
    );
    let r = summary(&out);
    assert_eq!(r["result"], "refused");
    assert!(r["error"].as_str().unwrap().contains("door is open"), "{r}");
    assert!(r["certificate"].is_null());
    assert!(
        !state.path().join("certificates").exists()
            || std::fs::read_dir(state.path().join("certificates"))
                .unwrap()
                .next()
                .is_none(),
        "nothing in the certificate store"
    );
    let jobs = lethe(state.path())
        .args(["jobs", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&jobs.stdout).trim(),
        "[]",
        "no job recorded"
    );
    assert!(
        relay_pulses(q.log().get(mark..).unwrap_or("")).is_empty(),
        "relay must never energize"
    );
}

#[test]
fn degauss_refuses_a_simulation_build_outside_tests() {
    let _one = one_at_a_time();
    let Some(q) = board() else { return };
    let state = state_dir();
    let out = lethe(state.path())
        .env_remove(ALLOW_SIMULATION_ENV)
        .args([
            "degauss",
            "--tape",
            "LTO-0044",
            "--yes",
            "--json",
            "--controller-port",
            q.pty(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = summary(&out);
    assert_eq!(r["result"], "refused");
    assert!(
        r["error"].as_str().unwrap().contains("simulation build"),
        "{r}"
    );
    assert!(r["certificate"].is_null(), "nothing recorded: {r}");
    assert!(
        relay_pulses(&q.log()).is_empty(),
        "the relay never energized"
    );
}

#[test]
fn without_a_controller_degauss_refuses_with_exit_1_and_records_nothing() {
    let state = state_dir();
    let out = lethe(state.path())
        .args([
            "degauss",
            "--tape",
            "LTO-0045",
            "--yes",
            "--json",
            "--controller-port",
            "/nonexistent/lethe-controller",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = summary(&out);
    assert_eq!(r["result"], "refused");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/lethe-controller"),
        "{r}"
    );
    assert!(!state.path().join("certificates").exists());
    let jobs = lethe(state.path())
        .args(["jobs", "--json"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&jobs.stdout).trim(), "[]");
}

#[test]
fn bay_led_follows_the_wipe() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let _one = one_at_a_time();
    let Some(q) = board() else { return };
    let dev = LoopDevice::new(16 * MIB, 512, 0).unwrap();
    let state = state_dir();
    let mark = q.log().len();
    let out = lethe(state.path())
        .args([
            "wipe",
            "--yes",
            "--json",
            "--bay",
            "1",
            "--controller-port",
            q.pty(),
        ])
        .arg(dev.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = q.log();
    let new = log.get(mark..).unwrap_or("");
    // Busy blinks, then success leaves the LED on.
    assert!(
        new.contains("'USERLED1' color:green intensity 0% -> 100%"),
        "bay 1 LED:\n{new}"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pins = rt.block_on(async {
        let c =
            lethe_controller::Controller::connect(lethe_controller::ControllerConfig::new(q.pty()))
                .await
                .unwrap();
        c.status().await.unwrap().pins
    });
    assert_eq!(
        pins & 0b100,
        0b100,
        "bay 1 LED reported on after success: {pins:#b}"
    );
}
