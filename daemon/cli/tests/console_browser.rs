//! The web console in a real browser (issue 15): `lethe serve` with a loop
//! device in an `ask` bay, users made with `lethe user add`, and Debian's
//! Chromium (headless) driven by playwright-core from
//! `tests/browser/console.mjs`, which also runs axe-core on every page.
//!
//! Needs root (loop devices, the daemon), the system user `lethe`,
//! `/usr/bin/chromium`, `node`, and `npm ci` in `tests/browser/`
//! (hw-tests/setup.sh does all of it). Screenshots go to
//! `target/test-results/console/` (`docs/console.md`).
//!
//! Two tests, two daemons, run side by side: the flows (operator, auditor)
//! under the default idle timeout, so watching a wipe does not log the
//! operator out; the idle logoff under a short one.

mod common;
mod common_serve;

use common::*;
use common_serve::*;
use lethe_hw_tests::{skip, LoopDevice};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const MIB: u64 = 1 << 20;

/// The drive: big enough that the wipe runs for a few seconds on tmpfs
/// (the worker's status is a snapshot of at most a second ago).
const DRIVE_BYTES: u64 = 512 * MIB;

fn password_of(user: &str) -> String {
    let n: u32 = user.bytes().map(u32::from).sum();
    format!("Correct-Horse-Battery-Staple-{n}")
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Where the screenshots go: `target/test-results/console/<scenario>/`.
fn screenshots(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-results/console")
        .join(scenario)
}

/// Why the browser tier cannot run here, if it cannot.
fn browser_unavailable() -> Option<String> {
    if let Some(why) = unavailable() {
        return Some(why);
    }
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("/usr/bin/chromium is missing: run hw-tests/setup.sh".into());
    }
    if !Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some("node is missing: run hw-tests/setup.sh".into());
    }
    for m in ["playwright-core", "axe-core"] {
        if !browser_dir().join("node_modules").join(m).is_dir() {
            return Some(format!(
                "{m} is not installed: run hw-tests/setup.sh (npm ci in daemon/cli/tests/browser)"
            ));
        }
    }
    None
}

/// A daemon with one `ask` bay over loop devices.
struct Site {
    dir: tempfile::TempDir,
    serve: Serve,
    port: u16,
    users: serde_json::Map<String, Value>,
}

impl Site {
    fn start(extra: &str) -> Site {
        let dir = daemon_tempdir("lethe-console-");
        std::fs::create_dir(dir.path().join("bays")).unwrap();
        let port = free_port();
        let cfg = format!(
            r#"[site]
operator_id = "tech-7"
operator_name = "Test Technician"

[server]
listen = "127.0.0.1:{port}"

[auth.argon2]
memory_kib = 8192
iterations = 1
parallelism = 1

[[bay]]
name = "loops"
match = ["loop:{}/bays/drive-*.img"]
policy = "ask"
level = "clear"
verify = "full"

{extra}
"#,
            dir.path().display()
        );
        let config = dir.path().join("lethe.toml");
        std::fs::write(&config, cfg).unwrap();
        let serve = Serve::start(
            &dir.path().join("state"),
            &config,
            &dir.path().join("run"),
            &dir.path().join("serve.log"),
            &[],
        );
        let site = Site {
            dir,
            serve,
            port,
            users: serde_json::Map::new(),
        };
        wait_for(&site.serve, 30, "the HTTPS listener", |st| {
            st["daemon"]["https_listen"].is_string()
        });
        site
    }

    /// `lethe user add`: its enrolment URI gives the TOTP secret.
    fn add_user(&mut self, name: &str, role: &str) {
        let pw = self.dir.path().join(format!("{name}.pw"));
        std::fs::write(&pw, format!("{}\n", password_of(name))).unwrap();
        let out = lethe(&self.dir.path().join("state"))
            .args(["user", "add", name, "--role", role, "--json"])
            .arg("--password-file")
            .arg(&pw)
            .arg("--runtime-dir")
            .arg(self.dir.path().join("run"))
            .output()
            .unwrap();
        assert!(out.status.success(), "user add {name}: {}", stderr(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        let uri = v["otpauth_uri"]
            .as_str()
            .or_else(|| v["enrolment"]["otpauth_uri"].as_str())
            .unwrap_or_else(|| panic!("no otpauth_uri in {v}"));
        let secret = uri
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("secret="))
            .unwrap();
        self.users.insert(
            name.into(),
            json!({"password": password_of(name), "secret": secret}),
        );
    }

    /// Run the browser script's `scenario`; its measurements.
    fn browse(&self, scenario: &str, extra: Value) -> Value {
        let mut cfg = json!({
            "url": format!("https://127.0.0.1:{}", self.port),
            "scenario": scenario,
            "screenshots": screenshots(scenario),
            "users": self.users,
        });
        if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        // This run's screenshots only (a failure's shot must not linger).
        let _ = std::fs::remove_dir_all(screenshots(scenario));
        let t = Instant::now();
        let out = Command::new("node")
            .arg(browser_dir().join("console.mjs"))
            .env("LETHE_CONSOLE_TEST", cfg.to_string())
            .current_dir(browser_dir())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "browser {scenario} ({:.1} s): {stdout}",
            t.elapsed().as_secs_f64()
        );
        assert!(
            out.status.success(),
            "the browser scenario {scenario} failed:\n{}\n{stdout}\ndaemon log:\n{}",
            stderr(&out),
            self.serve.log()
        );
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap()
    }
}

/// An operator logs in with a TOTP code, sees the loop device waiting in
/// its bay, is refused a wrong confirmation, starts the wipe by typing the
/// drive's serial (or size) and re-authenticating, watches the progress
/// bar move without reloading, and gets the PDF naming the drive. An
/// auditor logs in, sees no start button, finds the certificate by serial
/// and verifies it. axe-core finds no serious or critical violation on any
/// page, no page breaks its CSP, and the bays page's first load is under
/// 200 KB.
///
/// safeguard: 164.312(a)(1)
/// safeguard: 164.312(d)
#[test]
fn operator_wipes_from_the_console_and_auditor_verifies_without_start_button() {
    if let Some(why) = browser_unavailable() {
        skip!("{why}");
    }
    // Three passes and a full verification: long enough to watch.
    let mut site = Site::start("passes = 3\n");
    site.add_user("oscar", "operator");
    site.add_user("audrey", "auditor");
    let backing = site.dir.path().join("bays/drive-1.img");
    lethe_hw_tests::fill_file(&backing, DRIVE_BYTES, 0x5a).unwrap();
    let drive = LoopDevice::over(&backing, 512).unwrap();
    wait_for(&site.serve, 30, "the drive to wait in its bay", |st| {
        st["bays"][0]["state"] == "waiting"
    });
    let device = drive.path().display().to_string();
    let r = site.browse(
        "flows",
        json!({"answer": DRIVE_BYTES.to_string(), "device": device}),
    );
    // What the browser saw, the appliance agrees with.
    let st = site.serve.status();
    assert_eq!(st["bays"][0]["state"], "passed", "{st:#}");
    assert!(
        std::fs::read(&backing).unwrap().iter().any(|&b| b != 0x5a),
        "the drive was not overwritten"
    );
    assert!(r["progress_values_seen"].as_u64().unwrap() >= 1, "{r}");
    let weight = r["bays_first_load_bytes"].as_u64().unwrap();
    assert!(weight > 0 && weight < 200 * 1024, "{r}");
    for page in [
        "login",
        "bays-waiting",
        "start-refused",
        "start-reauth",
        "bays-busy",
        "bays-passed",
        "bays-auditor",
        "certificates",
        "certificates-verified",
        "backups",
    ] {
        assert!(
            r["pages_checked"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == page),
            "{page} not checked: {r}"
        );
    }
    for s in r["screenshots"].as_array().unwrap() {
        let png = std::fs::read(s.as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{s}");
    }
    drop(drive);
}

/// An idle session (no user action; the page's own session checks are
/// polling and do not count) ends after the configured idle timeout, and
/// the open page returns by itself to the login page, which says why.
///
/// safeguard: 164.312(a)(2)(iii)
#[test]
fn an_idle_console_session_returns_to_the_login_page() {
    if let Some(why) = browser_unavailable() {
        skip!("{why}");
    }
    let mut site = Site::start("[session]\nidle_timeout = \"6s\"\n");
    site.add_user("ivan", "auditor");
    let r = site.browse("idle", json!({"idle_wait_ms": 20_000}));
    let after = r["returned_after_ms"].as_u64().unwrap();
    // Not before the timeout (6 s less the certificates page's own load),
    // and soon after it: a check every quarter of the timeout.
    assert!((4_000..=12_000).contains(&after), "{r}");
    assert!(r["pages_checked"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "session-ended"));
}
