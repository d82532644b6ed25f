//! Backups inside `lethe serve` (root only, and the front's user `lethe`):
//! the configuration's `[[backup]]` jobs run on their schedule in the
//! worker (backup, retention, drill), a failing job and a backup older
//! than its `max_age` raise alerts that are recorded and carry no path or
//! file name, every step is in the audit log, and `lethe status` shows the
//! jobs with their last results and next runs.

mod common;
mod common_serve;

use common::*;
use common_serve::*;
use lethe_hw_tests::skip;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

#[test]
fn the_daemon_runs_the_backup_schedule_and_alerts_without_patient_data() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let t = tempfile::Builder::new()
        .prefix("lethe-serve-backup-")
        .tempdir()
        .unwrap();
    // The front (user lethe) must reach the runtime directory inside.
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (state, repo, pw, wrong) = (
        t.path().join("state"),
        t.path().join("repo"),
        t.path().join("pw"),
        t.path().join("wrong-pw"),
    );
    std::fs::write(&pw, "correct horse").unwrap();
    std::fs::write(&wrong, "not the passphrase").unwrap();
    let src = t.path().join("records");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("jane-doe-chart.txt"),
        "patient record\n".repeat(5000),
    )
    .unwrap();
    let init = lethe(&state)
        .args(["backup", "--repo"])
        .arg(&repo)
        .arg("--password-file")
        .arg(&pw)
        .args(["init", "--json"])
        .env_remove("LETHE_REPO")
        .env_remove("LETHE_PASSWORD")
        .env_remove("LETHE_PASSWORD_FILE")
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));

    let config = t.path().join("lethe.toml");
    std::fs::write(
        &config,
        format!(
            "[[backup]]\nname = \"records\"\nrepo = \"{repo}\"\npassword_file = \"{pw}\"\n\
             paths = [\"{src}\"]\nevery = \"1h\"\nkeep_last = 3\ndrill_every = \"1h\"\n\
             drill_sample = 2\nmax_age = \"2s\"\n\n\
             [[backup]]\nname = \"broken\"\nrepo = \"{repo}\"\npassword_file = \"{wrong}\"\n\
             paths = [\"{src}\"]\nevery = \"1h\"\n",
            repo = repo.display(),
            pw = pw.display(),
            src = src.display(),
            wrong = wrong.display(),
        ),
    )
    .unwrap();
    let check = lethe(&state)
        .args(["serve", "--check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));

    let mut serve = Serve::start(
        &state,
        &config,
        &t.path().join("run"),
        &t.path().join("serve.log"),
        &["--schedule-tick", "1"],
    );
    let job = |st: &Value, name: &str| -> Value {
        st["backups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["job"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let st = wait_for(&serve, 180, "both backup jobs to run", |st| {
        let r = job(st, "records");
        let b = job(st, "broken");
        r["last_result"] == "pass" && r["last_drill_result"] == "pass" && b["last_result"] == "fail"
    });
    let r = job(&st, "records");
    assert_eq!(r["every_secs"], 3600);
    assert!(r["next_due"].as_str().is_some_and(|n| !n.is_empty()), "{r}");

    // Alerts: the failed backup, and `records` older than its 2 s max_age
    // once its backup is done. Recorded, and naming no path or file.
    let alerts = t.path().join("state/alerts.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    let bodies = loop {
        let db = rusqlite::Connection::open(&alerts).unwrap();
        let bodies: Vec<String> = db
            .prepare("SELECT body FROM alert ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let all = bodies.join("\n");
        if all.contains("backup_failed") && all.contains("backup_too_old") {
            break bodies;
        }
        assert!(
            Instant::now() < deadline,
            "alerts so far: {all}\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    for b in &bodies {
        assert!(!b.contains("jane"), "{b}");
        assert!(!b.contains(t.path().to_str().unwrap()), "{b}");
    }

    // The snapshot is in the repository; the audit log has every step.
    let snaps = lethe(&state)
        .args(["backup", "--repo"])
        .arg(&repo)
        .arg("--password-file")
        .arg(&pw)
        .args(["snapshots", "--json"])
        .output()
        .unwrap();
    assert!(snaps.status.success(), "{}", stderr(&snaps));
    assert_eq!(summary(&snaps).as_array().unwrap().len(), 1);

    assert!(serve.terminate().success(), "{}", serve.log());
    let v = lethe(&state).args(["audit", "verify"]).output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    let e = lethe(&state)
        .args(["audit", "export", "--format", "json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&e.stdout);
    for action in [
        "backup.run",
        "backup.drill",
        "daemon.started",
        "daemon.stopped",
    ] {
        assert!(text.contains(action), "no {action} in the audit log");
    }
}
