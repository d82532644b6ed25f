//! `lethe backup` through the CLI against real servers the test starts on
//! 127.0.0.1: SeaweedFS (S3, with Object Lock on the stored objects) and
//! OpenSSH (SFTP with a pinned host key). Skips with `SKIPPED:` when `weed`
//! or `sshd` is missing; CI installs both.

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
        std::fs::read(out.join("src/a.bin")).unwrap(),
        noise(11, 20 << 20)
    );
    let mut dr = cli(&state, repo, &pw);
    with(&mut dr);
    assert_eq!(ok(dr.arg("drill"))["result"], "pass");
}

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
