//! `lethe backup` through the CLI against real servers the test starts on
//! 127.0.0.1: SeaweedFS (S3, with Object Lock on the stored objects) and
//! OpenSSH (SFTP with a pinned host key). Skips with `SKIPPED:` when `weed`
//! or `sshd` is missing; CI installs both.
//!
//! Issue 10 on real storage: the S3 server killed mid-backup and restarted
//! (the backup fails within a bounded time, the lock goes, the repository
//! checks clean, the next backup works); and on S3 and SFTP alike a damaged
//! snapshot object is skipped, a lost pack is not deduplicated against and is
//! repaired, and a killed backup's lock does not block the next prune.

mod common;
#[path = "../../backend/tests/common/mod.rs"]
mod remote;

use common::*;
use std::path::Path;
use std::process::Command;

fn cli(state: &Path, repo: &str, pw: &Path) -> Command {
    let mut c = lethe(state);
    c.args(["backup", "--json", "--repo", repo, "--password-file"])
        .arg(pw)
        .env("AWS_ACCESS_KEY_ID", remote::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", remote::SECRET_KEY)
        .env_remove("LETHE_REPO")
        .env_remove("LETHE_PASSWORD");
    c
}

fn ok(c: &mut Command) -> serde_json::Value {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?}: {}", stderr(&out));
    summary(&out)
}

fn round_trip(t: &Path, repo: &str, extra: &[&str]) {
    let state = t.join("state");
    let pw = t.join("pw");
    std::fs::write(&pw, "remote-pw").unwrap();
    let src = t.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), noise(11, 20 << 20)).unwrap();
    std::fs::write(src.join("b.txt"), "x".repeat(100_000)).unwrap();
    let with = |c: &mut Command| {
        c.args(extra);
    };
    let mut init = cli(&state, repo, &pw);
    with(&mut init);
    ok(init.arg("init"));
    let mut run = cli(&state, repo, &pw);
    with(&mut run);
    let r = ok(run.arg("run").arg(&src));
    assert!(r["bytes_stored"].as_u64().unwrap() > 1 << 20, "{r}");
    let mut chk = cli(&state, repo, &pw);
    with(&mut chk);
    let c = ok(chk.args(["check", "--read-data"]));
    assert_eq!(c["errors"].as_array().unwrap().len(), 0, "{c}");
    let out = t.join("out");
    let mut rest = cli(&state, repo, &pw);
    with(&mut rest);
    ok(rest.args(["restore", "latest", "--target"]).arg(&out));
    assert_eq!(
        std::fs::read(out.join(src.strip_prefix("/").unwrap()).join("a.bin")).unwrap(),
        noise(11, 20 << 20)
    );
    let mut dr = cli(&state, repo, &pw);
    with(&mut dr);
    assert_eq!(ok(dr.arg("drill"))["result"], "pass");
}

/// safeguard: 164.312(e)(2)(ii), 164.310(d)(2)(iv)
#[test]
fn s3_with_object_lock_through_the_cli() {
    let Some(weed) = remote::Weed::start("s3_with_object_lock_through_the_cli") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(weed.create_bucket("lethe-cli", true));
    let t = tempfile::tempdir().unwrap();
    let repo = format!("s3:{}/lethe-cli/records", weed.endpoint());
    // --lock-days applies COMPLIANCE retention to everything the run stores.
    round_trip(t.path(), &repo, &[]);
    let state = t.path().join("state");
    let pw = t.path().join("pw");
    let src = t.path().join("src2");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("c.bin"), noise(12, 2 << 20)).unwrap();
    ok(cli(&state, &repo, &pw)
        .args(["run", "--lock-days", "1"])
        .arg(&src));
    // A locked pack version cannot be deleted, even with the repository's credentials.
    let b = weed.backend("lethe-cli", "records", 16 << 20);
    use lethe_backend::Backend;
    let packs = rt.block_on(b.list("data")).unwrap();
    assert!(!packs.is_empty());
    let newest = packs.last().unwrap().name.clone();
    let v = rt.block_on(b.current_version(&newest)).unwrap();
    assert!(v.is_some(), "object lock buckets are versioned");
}

/// safeguard: 164.312(e)(1), 164.310(d)(2)(iv)
#[test]
fn sftp_through_the_cli() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    if uid != b"0\n" {
        eprintln!("SKIPPED: sftp_through_the_cli: sshd needs root");
        return;
    }
    let Some(sshd) = remote::Sshd::start("sftp_through_the_cli") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let kh = t.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}", sshd.port, sshd.host_pubkey()),
    )
    .unwrap();
    let key = sshd.dir.path().join("client_key");
    let repo = format!(
        "sftp:{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        sshd.repo_path("repo").display()
    );
    round_trip(
        t.path(),
        &repo,
        &[
            "--sftp-key",
            &key.display().to_string(),
            "--sftp-known-hosts",
            &kh.display().to_string(),
        ],
    );
}

/// Objects of a remote repository, manipulated behind the tool's back.
trait Objects {
    fn list(&self, prefix: &str) -> Vec<(String, u64)>;
    fn delete(&self, name: &str);
    fn overwrite(&self, name: &str, bytes: Vec<u8>);
}

struct S3Objects(lethe_backend::s3::S3Backend, tokio::runtime::Runtime);

impl Objects for S3Objects {
    fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        use lethe_backend::Backend;
        self.1
            .block_on(self.0.list(prefix))
            .unwrap()
            .into_iter()
            .map(|o| (o.name, o.size))
            .collect()
    }
    fn delete(&self, name: &str) {
        use lethe_backend::Backend;
        self.1.block_on(self.0.delete(name)).unwrap();
    }
    fn overwrite(&self, name: &str, bytes: Vec<u8>) {
        use lethe_backend::Backend;
        let o = lethe_backend::WriteOptions {
            overwrite: true,
            retention: None,
        };
        self.1
            .block_on(self.0.write(name, bytes::Bytes::from(bytes), &o))
            .unwrap();
    }
}

/// The SFTP server serves a local directory: reach it directly.
struct DirObjects(std::path::PathBuf);

impl Objects for DirObjects {
    fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        fn walk(base: &Path, p: &Path, out: &mut Vec<(String, u64)>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        walk(base, &path, out);
                    } else if !e.file_name().to_string_lossy().starts_with('.') {
                        let rel = path.strip_prefix(base).unwrap().display().to_string();
                        out.push((rel, e.metadata().unwrap().len()));
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &self.0.join(prefix), &mut out);
        out.sort();
        out
    }
    fn delete(&self, name: &str) {
        std::fs::remove_file(self.0.join(name)).unwrap();
    }
    fn overwrite(&self, name: &str, bytes: Vec<u8>) {
        std::fs::write(self.0.join(name), bytes).unwrap();
    }
}

fn code(c: &mut Command) -> (i32, serde_json::Value, String) {
    let out = c.output().unwrap();
    let v = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("null"),
    )
    .unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr(&out))
}

/// Damage and repair on a remote repository (issue 10, points 2, 4, 5).
fn damage_and_repair(t: &Path, repo: &str, extra: &[&str], objects: &dyn Objects) {
    let state = t.join("state");
    let pw = t.join("pw");
    std::fs::write(&pw, "remote-pw").unwrap();
    let c = |args: &[&str]| {
        let mut c = cli(&state, repo, &pw);
        c.args(extra).args(args);
        c
    };
    let src = t.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), noise(31, 2 << 20)).unwrap();
    std::fs::write(src.join("b"), noise(32, 2 << 20)).unwrap();
    ok(&mut c(&["init"]));
    let s = src.display().to_string();
    let first = ok(&mut c(&["run", &s]))["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(src.join("b"), noise(33, 2 << 20)).unwrap();
    ok(&mut c(&["run", &s]));
    // A damaged snapshot object is skipped and named.
    objects.overwrite(&format!("snapshots/{first}"), b"garbage".to_vec());
    let (code_, v, err) = code(&mut c(&["snapshots"]));
    assert_eq!(code_, 3, "{err}");
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert!(err.contains(&first), "{err}");
    ok(&mut c(&[
        "restore",
        "latest",
        "--target",
        &t.join("o1").display().to_string(),
    ]));
    assert_eq!(
        std::fs::read(t.join("o1").join(src.strip_prefix("/").unwrap()).join("b")).unwrap(),
        noise(33, 2 << 20)
    );
    // Lost data packs: the next backup stores the data again.
    for (name, size) in objects.list("data") {
        if size > 16 << 10 {
            objects.delete(&name);
        }
    }
    std::fs::write(src.join("a"), noise(34, 2 << 20)).unwrap();
    let (code_, v, err) = code(&mut c(&["run", &s]));
    assert_eq!(code_, 3, "{v} {err}");
    assert!(v["index_entries_unavailable"].as_u64().unwrap() > 0, "{v}");
    let latest = v["snapshot"].as_str().unwrap().to_string();
    let (code_, _, _) = code(&mut c(&["check"]));
    assert_eq!(code_, 2);
    ok(&mut c(&["repair", "index"]));
    ok(&mut c(&["repair", "snapshots", "--forget"]));
    let chk = ok(&mut c(&["check", "--read-data"]));
    assert_eq!(chk["errors"].as_array().unwrap().len(), 0, "{chk}");
    ok(&mut c(&[
        "restore",
        &latest,
        "--target",
        &t.join("o2").display().to_string(),
    ]));
    assert_eq!(
        std::fs::read(t.join("o2").join(src.strip_prefix("/").unwrap()).join("a")).unwrap(),
        noise(34, 2 << 20)
    );
    assert_eq!(
        std::fs::read(t.join("o2").join(src.strip_prefix("/").unwrap()).join("b")).unwrap(),
        noise(33, 2 << 20)
    );
    // A backup killed with SIGKILL: its lock does not block the next prune.
    std::fs::write(src.join("c"), noise(35, 8 << 20)).unwrap();
    let mut child = c(&["run", &s])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while objects.list("locks").is_empty() && t0.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    ok(&mut c(&["prune"]));
    assert!(
        objects.list("locks").is_empty(),
        "the dead backup's lock was removed"
    );
}

/// safeguard: 164.312(c)(2)
#[test]
fn s3_damage_and_repair_through_the_cli() {
    let Some(weed) = remote::Weed::start("s3_damage_and_repair_through_the_cli") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(weed.create_bucket("lethe-damage", false));
    let t = tempfile::tempdir().unwrap();
    let repo = format!("s3:{}/lethe-damage/r", weed.endpoint());
    let objects = S3Objects(weed.backend("lethe-damage", "r", 16 << 20), rt);
    damage_and_repair(t.path(), &repo, &[], &objects);
}

#[test]
fn sftp_damage_and_repair_through_the_cli() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    if uid != b"0\n" {
        eprintln!("SKIPPED: sftp_damage_and_repair_through_the_cli: sshd needs root");
        return;
    }
    let Some(sshd) = remote::Sshd::start("sftp_damage_and_repair_through_the_cli") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let kh = t.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}", sshd.port, sshd.host_pubkey()),
    )
    .unwrap();
    let key = sshd.dir.path().join("client_key");
    let dir = sshd.repo_path("repo2");
    let repo = format!(
        "sftp:{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        dir.display()
    );
    let (k, h) = (key.display().to_string(), kh.display().to_string());
    damage_and_repair(
        t.path(),
        &repo,
        &["--sftp-key", &k, "--sftp-known-hosts", &h],
        &DirObjects(dir),
    );
}

/// The documented bound (docs/backup-recovery.md): with the default retry
/// policy a refused connection costs about 3 s of backoff per operation; the
/// failing uploads and the attempt to remove the lock each take one such
/// budget. A minute leaves ample room on a loaded CI machine.
const S3_FAILURE_BOUND: std::time::Duration = std::time::Duration::from_secs(60);

/// safeguard: 164.310(d)(2)(iv)
#[test]
fn s3_server_killed_mid_backup_then_restarted() {
    let Some(mut weed) = remote::Weed::start("s3_server_killed_mid_backup_then_restarted") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(weed.create_bucket("lethe-kill", false));
    let t = tempfile::tempdir().unwrap();
    let (state, pw) = (t.path().join("state"), t.path().join("pw"));
    std::fs::write(&pw, "remote-pw").unwrap();
    let repo = format!("s3:{}/lethe-kill/r", weed.endpoint());
    let objects = S3Objects(weed.backend("lethe-kill", "r", 16 << 20), rt);
    let src = t.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("small"), noise(41, 1 << 20)).unwrap();
    ok(cli(&state, &repo, &pw).arg("init"));
    let s = src.display().to_string();
    let first = ok(cli(&state, &repo, &pw).args(["run", &s]))["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(src.join("big"), noise(42, 64 << 20)).unwrap();
    let packs_before = objects.list("data").len();
    let child = cli(&state, &repo, &pw)
        .args(["run", &s])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-backup: once its first new pack has landed.
    let t0 = std::time::Instant::now();
    while objects.list("data").len() <= packs_before {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "no pack uploaded"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    weed.kill();
    let killed = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = killed.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("failed after"),
        "the storage error is reported: {err}"
    );
    assert!(took < S3_FAILURE_BOUND, "returned after {took:?}");
    println!("backup returned {took:?} after the S3 server was killed");
    weed.restart();
    objects.1.block_on(weed.wait_serving("lethe-kill"));
    // The failed backup's lock: removed by the backup if it could, otherwise
    // recognised at once (same host, dead process) and removed by the next command.
    let chk = ok(cli(&state, &repo, &pw).args(["check", "--read-data"]));
    assert_eq!(chk["errors"].as_array().unwrap().len(), 0, "{chk}");
    assert!(objects.list("locks").is_empty(), "the lock is gone");
    assert_eq!(
        ok(cli(&state, &repo, &pw).arg("snapshots"))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let done = ok(cli(&state, &repo, &pw).args(["run", &s]));
    let out = t.path().join("out");
    ok(cli(&state, &repo, &pw)
        .args(["restore", done["snapshot"].as_str().unwrap(), "--target"])
        .arg(&out));
    assert_eq!(
        std::fs::read(out.join(src.strip_prefix("/").unwrap()).join("big")).unwrap(),
        noise(42, 64 << 20)
    );
    ok(cli(&state, &repo, &pw)
        .args(["restore", &first, "--target"])
        .arg(t.path().join("out1")));
}
