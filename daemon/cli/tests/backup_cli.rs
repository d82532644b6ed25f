//! `lethe backup` end to end on a local repository: init, run, snapshots,
//! restore byte-exact, check, drill, wrong passphrase, scheduled runs, a full
//! disk and a device image. (`kill -9` trials: `backup_kill.rs`; issue-10
//! points: `backup_trust.rs`.)

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

fn backup(state: &Path, repo: &Path, pw: &Path) -> Command {
    let mut c = lethe(state);
    c.arg("backup")
        .arg("--repo")
        .arg(repo)
        .arg("--password-file")
        .arg(pw)
        .env_remove("LETHE_REPO")
        .env_remove("LETHE_PASSWORD")
        .env_remove("LETHE_PASSWORD_FILE");
    c
}

fn ok(c: &mut Command) -> serde_json::Value {
    let out = c.arg("--json").output().unwrap();
    assert!(out.status.success(), "{:?}: {}", c, stderr(&out));
    summary(&out)
}

fn same_tree(a: &Path, b: &Path) {
    let mut n = 0;
    for e in std::fs::read_dir(a).unwrap() {
        let e = e.unwrap();
        let (pa, pb) = (e.path(), b.join(e.file_name()));
        if pa.is_dir() {
            same_tree(&pa, &pb);
        } else {
            assert_eq!(
                std::fs::read(&pa).unwrap(),
                std::fs::read(&pb).unwrap(),
                "{}",
                pb.display()
            );
        }
        n += 1;
    }
    assert!(n > 0);
}

/// safeguard: 164.312(c)(2), 164.312(a)(2)(iv), 164.310(d)(2)(iv)
#[test]
fn backup_restore_check_drill_and_wrong_passphrase() {
    let t = tempfile::tempdir().unwrap();
    let (state, repo, pw) = (
        t.path().join("state"),
        t.path().join("repo"),
        t.path().join("pw"),
    );
    std::fs::write(&pw, "correct horse\n").unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("a.bin"), noise(1, 3 << 20)).unwrap();
    std::fs::write(src.join("d/b.txt"), "patient record\n".repeat(10_000)).unwrap();

    let v = ok(backup(&state, &repo, &pw).arg("init"));
    assert!(v["recovery_key"].as_str().is_some_and(|k| k.len() > 40));
    let r1 = ok(backup(&state, &repo, &pw).args(["run"]).arg(&src));
    assert!(r1["bytes_new"].as_u64().unwrap() > 3 << 20);
    let r2 = ok(backup(&state, &repo, &pw).args(["run"]).arg(&src));
    assert_eq!(
        r2["bytes_read"], 0,
        "unchanged files are not read again: {r2}"
    );
    let snaps = ok(backup(&state, &repo, &pw).arg("snapshots"));
    assert_eq!(snaps.as_array().unwrap().len(), 2);
    let out = t.path().join("out");
    ok(backup(&state, &repo, &pw)
        .args(["restore", "latest", "--target"])
        .arg(&out));
    same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
    let c = ok(backup(&state, &repo, &pw).args(["check", "--read-data"]));
    assert_eq!(c["errors"].as_array().unwrap().len(), 0, "{c}");
    let d = ok(backup(&state, &repo, &pw).args(["drill", "--sample", "5"]));
    assert_eq!(d["result"], "pass", "{d}");

    // Wrong passphrase: clear error, exit 1, nothing written.
    let before = walk(&repo);
    std::fs::write(t.path().join("bad"), "wrong").unwrap();
    let out = backup(&state, &repo, &t.path().join("bad"))
        .args(["run"])
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wrong passphrase"),
        "{}",
        stderr(&out)
    );
    assert_eq!(walk(&repo), before);

    // stdin.
    let mut child = backup(&state, &repo, &pw)
        .args(["run", "--stdin", "--stdin-name", "dump.sql", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let data = noise(5, 1 << 20);
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let id = summary(&o)["snapshot"].as_str().unwrap().to_string();
    let f = t.path().join("dump.out");
    ok(backup(&state, &repo, &pw)
        .args(["restore", &id[..12], "--to"])
        .arg(&f));
    assert_eq!(std::fs::read(&f).unwrap(), data);
}

fn walk(p: &Path) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                v.extend(walk(&path));
            } else {
                v.push((
                    path.display().to_string(),
                    e.metadata().map(|m| m.len()).unwrap_or(0),
                ));
            }
        }
    }
    v.sort();
    v
}

/// safeguard: 164.310(d)(2)(iv)
#[test]
fn scheduled_runs_drills_failures_and_missed_slots_are_recorded() {
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("state");
    let (repo, pw) = (t.path().join("repo"), t.path().join("pw"));
    std::fs::write(&pw, "pw").unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), noise(7, 1 << 20)).unwrap();
    ok(backup(&state, &repo, &pw).arg("init"));
    let cfg = t.path().join("schedule.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[job]]\nname = 'records'\nrepo = '{}'\npassword_file = '{}'\npaths = ['{}']\n\
             every = '1h'\nkeep_last = 2\ndrill_every = '1d'\ndrill_sample = 3\n\n\
             [[job]]\nname = 'broken'\nrepo = '{}'\npassword_file = '{}'\npaths = ['{}']\nevery = '1h'\n",
            repo.display(),
            pw.display(),
            src.display(),
            repo.display(),
            t.path().join("no-such-password-file").display(),
            src.display()
        ),
    )
    .unwrap();
    let sched = |state: &Path| {
        lethe(state)
            .args(["backup", "run-scheduled", "--json", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let out = sched(&state);
    // The broken job fails loudly: exit 2 and a `fail` row.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let v = summary(&out);
    let runs = v["runs"].as_array().unwrap();
    let find = |job: &str, kind: &str| {
        runs.iter()
            .find(|r| r["job"] == job && r["kind"] == kind)
            .unwrap_or_else(|| panic!("no {job}/{kind} in {v}"))
            .clone()
    };
    assert_eq!(find("records", "backup")["result"], "pass");
    assert_eq!(find("records", "forget")["result"], "pass");
    let drill = find("records", "drill");
    assert_eq!(drill["result"], "pass", "{drill}");
    let dd = drill["detail"].clone();
    assert!(
        dd["bytes"].as_u64().unwrap() > 0 && dd["seconds"].as_f64().is_some(),
        "{dd}"
    );
    assert_eq!(find("broken", "backup")["result"], "fail");

    // Right after: nothing due for `records` (the broken job is retried hourly too).
    let out = sched(&state);
    let v = summary(&out);
    assert!(
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["job"] != "records"),
        "{v}"
    );

    // The appliance was off for 4 hours: the missed slots are recorded as such.
    let db = lethe_store::JobStore::open(&state).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    db.record_run(&lethe_store::BackupRun {
        job: "records".into(),
        kind: "backup".into(),
        started: now - 4 * 3600 - 60,
        ended: now - 4 * 3600,
        result: "pass".into(),
        detail: "{}".into(),
    })
    .unwrap();
    let out = sched(&state);
    assert_eq!(out.status.code(), Some(2), "missed slots fail the run");
    let hist = lethe(&state)
        .args(["backup", "history", "--json", "--job", "records"])
        .output()
        .unwrap();
    let h: serde_json::Value = summary(&hist);
    let missed = h
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "missed")
        .unwrap_or_else(|| panic!("{h}"));
    assert_eq!(missed["result"], "missed");
    assert!(
        missed["detail"]
            .as_str()
            .unwrap()
            .starts_with("3 scheduled"),
        "{missed}"
    );
    // And the backup that was due ran.
    assert_eq!(
        h.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "backup" && r["result"] == "pass")
            .count(),
        3
    );
}

#[test]
fn a_full_local_disk_fails_clearly_and_the_repository_stays_consistent() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    if uid != b"0\n" {
        eprintln!("SKIPPED: full disk: mounting a small tmpfs needs root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    // A 12 MiB file system of our own for the repository, unmounted on drop.
    struct Mount(std::path::PathBuf);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=12m", "lethe-full"])
        .arg(&repo)
        .status()
        .unwrap();
    if !st.success() {
        eprintln!("SKIPPED: full disk: cannot mount tmpfs");
        return;
    }
    let _m = Mount(repo.clone());
    let (state, pw) = (t.path().join("state"), t.path().join("pw"));
    std::fs::write(&pw, "pw").unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("small"), noise(1, 2 << 20)).unwrap();
    ok(backup(&state, &repo, &pw).arg("init"));
    let first = ok(backup(&state, &repo, &pw).arg("run").arg(&src));
    // 30 MiB of incompressible data cannot fit.
    std::fs::write(src.join("big"), noise(2, 30 << 20)).unwrap();
    let out = backup(&state, &repo, &pw)
        .arg("run")
        .arg(&src)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no space left"), "{err}");
    assert!(
        std::fs::read_dir(repo.join("locks"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "the failed backup released its lock"
    );
    // Still consistent: check is clean (leftover packs are only warnings) and
    // the earlier snapshot restores byte-exact.
    let c = ok(backup(&state, &repo, &pw).args(["check", "--read-data"]));
    assert_eq!(c["errors"].as_array().unwrap().len(), 0, "{c}");
    let snaps = ok(backup(&state, &repo, &pw).arg("snapshots"));
    assert_eq!(
        snaps.as_array().unwrap().len(),
        1,
        "no snapshot for the failed run"
    );
    let out_dir = t.path().join("out");
    ok(backup(&state, &repo, &pw)
        .args(["restore", first["snapshot"].as_str().unwrap(), "--target"])
        .arg(&out_dir));
    assert_eq!(
        std::fs::read(out_dir.join(src.strip_prefix("/").unwrap()).join("small")).unwrap(),
        noise(1, 2 << 20)
    );
}

/// safeguard: 164.310(d)(2)(iv)
#[test]
fn device_image_back_onto_a_loop_device_and_manual_history() {
    if let Some(why) = lethe_hw_tests::loop_tier_unavailable() {
        eprintln!("SKIPPED: device image: {why}");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (state, repo, pw) = (
        t.path().join("state"),
        t.path().join("repo"),
        t.path().join("pw"),
    );
    std::fs::write(&pw, "pw").unwrap();
    // 16 MiB: a patterned head, zeros, a patterned tail (zero runs stay sparse).
    let dev = lethe_hw_tests::LoopDevice::new(16 << 20, 512, 0).unwrap();
    let mut content = vec![0u8; 16 << 20];
    content[..1 << 20].copy_from_slice(&noise(21, 1 << 20));
    content[(15 << 20)..].copy_from_slice(&noise(22, 1 << 20));
    std::fs::write(dev.path(), &content).unwrap();
    ok(backup(&state, &repo, &pw).arg("init"));
    let r = ok(backup(&state, &repo, &pw)
        .args(["run", "--device"])
        .arg(dev.path()));
    assert!(
        r["bytes_stored"].as_u64().unwrap() < 4 << 20,
        "zeros are sparse: {r}"
    );
    // Wipe the device, then restore the image onto it.
    std::fs::write(dev.path(), vec![0xEEu8; 16 << 20]).unwrap();
    ok(backup(&state, &repo, &pw)
        .args(["restore", "--yes", r["snapshot"].as_str().unwrap(), "--to"])
        .arg(dev.path()));
    assert_eq!(
        std::fs::read(dev.path()).unwrap(),
        content,
        "image restored byte-exact, zeros included"
    );
    // A drill of device ranges, and both runs in the history.
    assert_eq!(
        ok(backup(&state, &repo, &pw).arg("drill"))["result"],
        "pass"
    );
    let h = summary(
        &lethe(&state)
            .args(["backup", "history", "--json"])
            .output()
            .unwrap(),
    );
    let kinds: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["drill", "backup"], "newest first: {h}");
}
