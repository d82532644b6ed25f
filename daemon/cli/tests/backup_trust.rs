//! Issue 10 (backup trust) through the CLI on local repositories, one test per
//! point: restore stays in its target; failures end promptly and free the
//! lock; live files complete with warnings (exit 3); one damaged object does
//! not block the repository; lost packs do not spread and are repaired;
//! restore keeps going past bad blobs and ENOSPC; locks are taken by the
//! engine (a prune during a restore is refused); a scheduled drill tests its
//! own job's snapshot; a schedule only runs commands from a root-owned,
//! non-writable file; numbers are range-checked.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Repo {
    _t: tempfile::TempDir,
    dir: PathBuf,
    state: PathBuf,
    repo: PathBuf,
    pw: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        let r = Repo {
            state: dir.join("state"),
            repo: dir.join("repo"),
            pw: dir.join("pw"),
            dir,
            _t: t,
        };
        std::fs::write(&r.pw, "pw").unwrap();
        r.ok(&["init"]);
        r
    }

    fn cmd(&self) -> Command {
        let mut c = lethe(&self.state);
        c.arg("backup")
            .arg("--json")
            .arg("--repo")
            .arg(&self.repo)
            .arg("--password-file")
            .arg(&self.pw)
            .env_remove("LETHE_REPO")
            .env_remove("LETHE_PASSWORD")
            .env_remove("LETHE_PASSWORD_FILE");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        summary(&out)
    }

    /// Exit code and the JSON summary.
    fn code(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        let out = self.run(args);
        let v = serde_json::from_str(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or("null"),
        )
        .unwrap_or(serde_json::Value::Null);
        (out.status.code().unwrap_or(-1), v, stderr(&out))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Where `restore --target <out>` puts the source `<name>` (snapshots keep
    /// absolute paths).
    fn restored(&self, out: &str, name: &str) -> PathBuf {
        self.path(out)
            .join(self.path(name).strip_prefix("/").unwrap())
    }

    fn s(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    /// Lock files (not the backend's temporary files of a write in progress).
    fn locks(&self) -> usize {
        std::fs::read_dir(self.repo.join("locks"))
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .unwrap_or(0)
    }

    fn packs(&self) -> Vec<(PathBuf, u64)> {
        let mut v = Vec::new();
        for sub in std::fs::read_dir(self.repo.join("data")).unwrap().flatten() {
            for f in std::fs::read_dir(sub.path()).unwrap().flatten() {
                v.push((f.path(), f.metadata().unwrap().len()));
            }
        }
        v.sort();
        v
    }
}

/// Every entry below `p`: relative path → type and content (not following symlinks).
fn tree(p: &Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    fn walk(base: &Path, p: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            let path = e.path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            if m.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&path).unwrap().display()),
                );
            } else if m.is_dir() {
                out.insert(rel.clone(), "dir".into());
                walk(base, &path, out);
            } else {
                out.insert(rel, {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    std::fs::read(&path).unwrap().hash(&mut h);
                    format!("{:016x}", h.finish())
                });
            }
        }
    }
    if p.exists() {
        walk(p, p, &mut out);
    }
    out
}

fn flip(p: &Path, at: usize) {
    let mut b = std::fs::read(p).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x20;
    std::fs::write(p, b).unwrap();
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

/// safeguard: rule:restore-confinement
#[test]
fn restore_stays_inside_its_target() {
    let r = Repo::new();
    let outside = r.path("outside");
    std::fs::create_dir_all(outside.join("etc")).unwrap();
    std::fs::write(outside.join("etc/passwd"), "root:x:0:0").unwrap();
    std::fs::write(outside.join("etc/shadow"), "secret").unwrap();
    std::fs::set_permissions(
        outside.join("etc/shadow"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let before = tree(&outside);
    // Snapshot 1: a directory `sub` with files named like the victims.
    let src = r.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/passwd"), "restored").unwrap();
    std::fs::write(src.join("sub/shadow"), "restored").unwrap();
    std::fs::set_permissions(
        src.join("sub/shadow"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let s1 = r.ok(&["run", &r.s("src")])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    // Snapshot 2: `sub` is a symlink out, `chain` a chain of symlinks, `up` a `..` escape.
    std::fs::remove_dir_all(src.join("sub")).unwrap();
    std::os::unix::fs::symlink(outside.join("etc"), src.join("sub")).unwrap();
    std::os::unix::fs::symlink("chain2", src.join("chain")).unwrap();
    std::os::unix::fs::symlink("../../outside/etc", src.join("chain2")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", src.join("up")).unwrap();
    let s2 = r.ok(&["run", &r.s("src")])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    // A target with planted symlinks: the restore root itself, and inside it.
    // Snapshots keep absolute paths: `src` is restored to TARGET/<its path>.
    let rs = src.strip_prefix("/").unwrap().to_path_buf();
    let target = r.path("target");
    std::fs::create_dir_all(target.join(&rs)).unwrap();
    std::os::unix::fs::symlink(outside.join("etc"), target.join(&rs).join("sub")).unwrap();
    // Restore snapshot 2 (creates the symlinks), then snapshot 1 over it.
    r.ok(&["restore", &s2, "--target", &r.s("target")]);
    let (code, v, err) = r.code(&["restore", &s1, "--target", &r.s("target")]);
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(tree(&outside), before, "nothing outside the target changed");
    assert_eq!(
        std::fs::read_to_string(target.join(&rs).join("sub/passwd")).unwrap(),
        "restored"
    );
    assert!(std::fs::symlink_metadata(target.join(&rs).join("sub"))
        .unwrap()
        .is_dir());
    // --existing refuse: whatever is in the way stays, and is named (exit 3).
    std::fs::remove_dir_all(target.join(&rs).join("sub")).unwrap();
    std::os::unix::fs::symlink(outside.join("etc"), target.join(&rs).join("sub")).unwrap();
    let (code, v, err) = r.code(&[
        "restore",
        &s1,
        "--target",
        &r.s("target"),
        "--existing",
        "refuse",
    ]);
    assert_eq!(code, 3, "{v} {err}");
    let refused = v["restored"]["refused"].as_array().unwrap();
    assert!(
        refused
            .iter()
            .any(|x| x.as_str().unwrap().contains("src/sub")),
        "{v}"
    );
    assert!(err.contains("NOT RESTORED (in the way)"), "{err}");
    assert_eq!(tree(&outside), before);
    // The restore root given as a symlink out of the target is not followed either.
    let t2 = r.path("t2");
    std::fs::create_dir_all(&t2).unwrap();
    let top = rs.components().next().unwrap();
    std::os::unix::fs::symlink(&outside, t2.join(top)).unwrap();
    r.ok(&["restore", &s1, "--target", &r.s("t2")]);
    assert_eq!(tree(&outside), before);
    assert!(t2.join(&rs).join("sub/passwd").is_file());
    // The drill's scratch area: planted symlinks there are never followed.
    let scratch = r.path("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::os::unix::fs::symlink(&outside, scratch.join("lethe-drill-1-0")).unwrap();
    std::os::unix::fs::symlink(&outside, scratch.join("drill-x")).unwrap();
    let planted = tree(&scratch);
    let d = r.ok(&["drill", "--snapshot", &s1, "--scratch", &r.s("scratch")]);
    assert_eq!(d["result"], "pass", "{d}");
    assert_eq!(tree(&outside), before);
    assert_eq!(
        tree(&scratch),
        planted,
        "the drill removed its private directory only"
    );
}

#[test]
fn locks_of_killed_processes_do_not_block_the_next_command() {
    let r = Repo::new();
    let src = r.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..4 {
        std::fs::write(src.join(format!("f{i}")), noise(i, 3 << 20)).unwrap();
    }
    r.ok(&["run", &r.s("src")]);
    for i in 4..8 {
        std::fs::write(src.join(format!("f{i}")), noise(i, 3 << 20)).unwrap();
    }
    // (Storage that fails mid-backup: the full-disk test in backup_cli.rs, the
    // injected upload failures in the engine's tests, and the S3 kill test in
    // backup_remote.rs; all end promptly with the lock released.)
    // A backup killed with SIGKILL leaves its lock; a prune right after is not
    // blocked by it (same host, dead process), and removes it.
    let mut child = r
        .cmd()
        .args(["run", &r.s("src")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while r.locks() == 0 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    let left = r.locks();
    let p = r.ok(&["prune"]);
    assert!(p["packs_deleted"].is_u64(), "{p}");
    assert_eq!(
        r.locks(),
        0,
        "the dead process's lock ({left} left) was removed"
    );
    r.ok(&["run", &r.s("src")]);
}

#[test]
fn a_live_file_completes_with_warnings() {
    let r = Repo::new();
    let src = r.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("steady"), noise(1, 1 << 20)).unwrap();
    let log = src.join("app.log");
    std::fs::write(&log, noise(2, 24 << 20)).unwrap();
    // A writer that keeps appending while the backup runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, log) = (stop.clone(), log.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(&[b'x'; 4096]).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let (code, v, err) = r.code(&["run", &r.s("src")]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(code, 3, "completed with warnings: {v} {err}");
    assert_eq!(v["outcome"], "completed_with_warnings");
    assert!(
        v["changed_during_backup"][0]
            .as_str()
            .unwrap()
            .ends_with("src/app.log"),
        "{v}"
    );
    assert!(err.contains("changed while it was read"), "{err}");
    let snaps = r.ok(&["snapshots"]);
    assert_eq!(snaps[0]["changed_during_backup"], 1, "{snaps}");
    // The snapshot restores what was read (a prefix of the file now).
    let id = v["snapshot"].as_str().unwrap();
    r.ok(&["restore", id, "--target", &r.s("out")]);
    let got = std::fs::read(r.restored("out", "src").join("app.log")).unwrap();
    let now = std::fs::read(&log).unwrap();
    assert!(got.len() >= 24 << 20 && now.starts_with(&got));
    assert_eq!(
        std::fs::read(r.restored("out", "src").join("steady")).unwrap(),
        noise(1, 1 << 20)
    );
    // Quiet again: a clean run, exit 0.
    let (code, v, _) = r.code(&["run", &r.s("src")]);
    assert_eq!((code, v["outcome"].as_str()), (0, Some("ok")), "{v}");
}

/// safeguard: 164.312(c)(2)
#[test]
fn one_damaged_object_does_not_block_the_repository() {
    let r = Repo::new();
    let src = r.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), noise(1, 1 << 20)).unwrap();
    let old = r.ok(&["run", &r.s("src")])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(src.join("b"), noise(2, 1 << 20)).unwrap();
    r.ok(&["run", &r.s("src")]);
    // A flipped byte in the old snapshot file.
    flip(&r.repo.join("snapshots").join(&old), 40);
    let (code, v, err) = r.code(&["snapshots"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert!(err.contains(&old) && err.contains("damaged"), "{err}");
    r.ok(&["restore", "latest", "--target", &r.s("out")]);
    assert_eq!(
        std::fs::read(r.restored("out", "src").join("b")).unwrap(),
        noise(2, 1 << 20)
    );
    std::fs::write(src.join("c"), b"c").unwrap();
    r.ok(&["run", &r.s("src")]);
    let (code, _, err) = r.code(&["forget", "--keep-last", "5"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(&old), "{err}");
    assert_eq!(r.ok(&["drill"])["result"], "pass");
    let (code, v, _) = r.code(&["check"]);
    assert_eq!(code, 2);
    assert!(v["errors"].to_string().contains(&old), "{v}");
    // A damaged index file: every pack is intact, so restore still works
    // (exit 3: it names what it skipped), and check names the index (exit 2).
    let idx = std::fs::read_dir(r.repo.join("index"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    flip(&idx, 50);
    let (code, v, err) = r.code(&["restore", "latest", "--target", &r.s("out2")]);
    assert_eq!(code, 3, "{v} {err}");
    assert_eq!(v["restored"]["failed"].as_array().unwrap().len(), 0, "{v}");
    same_files(&src, &r.restored("out2", "src"));
    let (code, v, _) = r.code(&["check", "--read-data"]);
    assert_eq!(code, 2);
    let name = idx.file_name().unwrap().to_string_lossy().to_string();
    assert!(v["errors"].to_string().contains(&name), "{v}");
    // Repairs make it clean again.
    r.ok(&["repair", "index"]);
    r.ok(&["repair", "snapshots", "--forget"]);
    let c = r.ok(&["check", "--read-data"]);
    assert_eq!(c["errors"].as_array().unwrap().len(), 0, "{c}");
}

fn same_files(a: &Path, b: &Path) {
    let (ta, tb) = (tree(a), tree(b));
    assert_eq!(ta, tb, "{} vs {}", a.display(), b.display());
}

#[test]
fn lost_packs_do_not_spread_and_are_repaired() {
    let r = Repo::new();
    let src = r.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), noise(1, 2 << 20)).unwrap();
    std::fs::write(src.join("b"), noise(2, 2 << 20)).unwrap();
    let first = r.ok(&["run", &r.s("src")])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    for (p, size) in r.packs() {
        if size > 16 << 10 {
            std::fs::remove_file(p).unwrap();
        }
    }
    std::fs::write(src.join("a"), noise(3, 2 << 20)).unwrap();
    let (code, v, err) = r.code(&["run", &r.s("src")]);
    assert_eq!(code, 3, "warns about the lost pack: {v} {err}");
    assert!(v["index_entries_unavailable"].as_u64().unwrap() > 0, "{v}");
    let second = v["snapshot"].as_str().unwrap().to_string();
    r.ok(&["restore", &second, "--target", &r.s("out")]);
    same_files(&src, &r.restored("out", "src"));
    let (code, v, _) = r.code(&["check"]);
    assert_eq!(code, 2);
    assert_eq!(v["damaged_snapshots"][0], first, "{v}");
    assert!(v["errors"].to_string().contains("missing"), "{v}");
    let dry = r.ok(&["repair", "snapshots", "--dry-run"]);
    assert_eq!(dry["repaired"].as_array().unwrap().len(), 1, "{dry}");
    r.ok(&["repair", "index"]);
    let rs = r.ok(&["repair", "snapshots", "--forget"]);
    assert_eq!(rs["repaired"][0]["original"], first, "{rs}");
    assert!(
        rs["repaired"][0]["dropped"][0]
            .as_str()
            .unwrap()
            .contains("src/a"),
        "{rs}"
    );
    let c = r.ok(&["check", "--read-data"]);
    assert_eq!(c["errors"].as_array().unwrap().len(), 0, "{c}");
    let fixed = rs["repaired"][0]["new"].as_str().unwrap();
    let (code, v, err) = r.code(&["restore", fixed, "--target", &r.s("out3")]);
    assert_eq!(code, 3, "a repaired snapshot says so: {v} {err}");
    assert!(err.contains("repaired"), "{err}");
    assert_eq!(
        std::fs::read(r.restored("out3", "src").join("b")).unwrap(),
        noise(2, 2 << 20)
    );
    assert!(!r.restored("out3", "src").join("a").exists());
}

fn leftovers(p: &Path) -> Vec<String> {
    tree(p)
        .into_keys()
        .filter(|k| k.contains(".lethe-tmp"))
        .collect()
}

/// safeguard: 164.312(c)(2)
#[test]
fn restore_keeps_going_past_a_bad_blob_and_enospc() {
    let r = Repo::new();
    let src = r.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), noise(1, 1 << 20)).unwrap();
    r.ok(&["run", &r.s("src")]);
    let a_packs: Vec<_> = r
        .packs()
        .into_iter()
        .filter(|(_, s)| *s > 16 << 10)
        .collect();
    std::fs::write(src.join("b.bin"), noise(2, 1 << 20)).unwrap();
    std::fs::write(src.join("c.txt"), "c".repeat(1000)).unwrap();
    let id = r.ok(&["run", &r.s("src")])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    // Damage the pack holding a.bin's content.
    for (p, _) in &a_packs {
        flip(p, 100);
    }
    let (code, v, err) = r.code(&["restore", &id, "--target", &r.s("out")]);
    assert_eq!(code, 2, "{v} {err}");
    let failed = v["restored"]["failed"].to_string();
    assert!(failed.contains("src/a.bin"), "names the file: {v}");
    assert!(
        err.contains("NOT RESTORED") && err.contains("a.bin"),
        "{err}"
    );
    assert!(
        !r.restored("out", "src").join("a.bin").exists(),
        "no file under its final name"
    );
    assert!(leftovers(&r.path("out")).is_empty());
    assert_eq!(
        std::fs::read(r.restored("out", "src").join("b.bin")).unwrap(),
        noise(2, 1 << 20)
    );
    assert_eq!(
        std::fs::read(r.restored("out", "src").join("c.txt")).unwrap(),
        "c".repeat(1000).as_bytes()
    );
    if !is_root() {
        eprintln!("SKIPPED: restore on ENOSPC: mounting a small tmpfs needs root");
        return;
    }
    // ENOSPC: a 1.5 MiB file system holds some files, not all.
    for (p, _) in &a_packs {
        flip(p, 100); // undo the damage
    }
    let small = r.path("small");
    std::fs::create_dir_all(&small).unwrap();
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1536k", "lethe-enospc"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(st.success());
    let _m = Unmount(small.clone());
    let (code, v, _) = r.code(&["restore", &id, "--target", &r.s("small")]);
    assert_eq!(code, 2, "{v}");
    assert!(
        v["restored"]["failed"]
            .to_string()
            .contains("No space left"),
        "{v}"
    );
    assert!(leftovers(&small).is_empty(), "{:?}", tree(&small));
    for (name, size) in [("a.bin", 1 << 20), ("b.bin", 1 << 20)] {
        let p = small
            .join(r.path("src").strip_prefix("/").unwrap())
            .join(name);
        assert!(
            !p.exists() || std::fs::metadata(&p).unwrap().len() == size,
            "never a partial file"
        );
    }
    // More space: the rerun completes it.
    let st = Command::new("mount")
        .args(["-o", "remount,size=8m"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(st.success());
    r.ok(&["restore", &id, "--target", &r.s("small")]);
    same_files(&src, &small.join(src.strip_prefix("/").unwrap()));
}

#[test]
fn a_prune_during_a_restore_is_refused() {
    let r = Repo::new();
    let src = r.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..8 {
        std::fs::write(src.join(format!("f{i}")), noise(i, 4 << 20)).unwrap();
    }
    let id = r.ok(&["run", &r.s("src")])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(src.join("extra"), noise(99, 1 << 20)).unwrap();
    r.ok(&["run", &r.s("src")]);
    for attempt in 0..5 {
        let out = r.path(&format!("out{attempt}"));
        let mut child = r
            .cmd()
            .args(["restore", &id, "--target"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Freeze the restore while it holds its shared lock.
        let t0 = Instant::now();
        while r.locks() == 0 && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let pid = child.id().to_string();
        Command::new("kill").args(["-STOP", &pid]).status().unwrap();
        let caught = r.locks() > 0 && child.try_wait().unwrap().is_none();
        if caught {
            let (code, _, err) = r.code(&["forget", "--keep-last", "1", "--prune"]);
            assert_eq!(code, 1, "{err}");
            assert!(err.contains("locked") && err.contains("Shared"), "{err}");
            let (code, _, err) = r.code(&["prune"]);
            assert_eq!(code, 1, "{err}");
        }
        Command::new("kill").args(["-CONT", &pid]).status().unwrap();
        let st = child.wait().unwrap();
        assert!(st.success());
        for i in 0..8 {
            assert_eq!(
                std::fs::read(
                    r.path("src")
                        .strip_prefix("/")
                        .map(|p| out.join(p))
                        .unwrap()
                        .join(format!("f{i}"))
                )
                .unwrap(),
                noise(i, 4 << 20)
            );
        }
        if caught {
            // Afterwards the prune runs.
            r.ok(&["forget", "--keep-last", "1", "--prune"]);
            return;
        }
    }
    panic!("never caught a restore holding its lock");
}

#[test]
fn a_scheduled_drill_tests_its_own_jobs_snapshot() {
    let r = Repo::new();
    let (a, b) = (r.path("a"), r.path("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("a"), noise(1, 100_000)).unwrap();
    std::fs::write(b.join("b"), noise(2, 100_000)).unwrap();
    let sa = r.ok(&["run", &r.s("a")])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let cfg = r.path("schedule.toml");
    // Job `b` first: it backs up now (so the repository's newest snapshot is
    // b's); job `a` only drills.
    std::fs::write(
        &cfg,
        format!(
            "[[job]]\nname='b'\nrepo='{repo}'\npassword_file='{pw}'\npaths=['{b}']\nevery='1h'\n\n\
             [[job]]\nname='a'\nrepo='{repo}'\npassword_file='{pw}'\npaths=['{a}']\nevery='1h'\n\
             drill_every='1d'\ndrill_sample=5\n",
            repo = r.repo.display(),
            pw = r.pw.display(),
            a = a.display(),
            b = b.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let db = lethe_store::JobStore::open(&r.state).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    db.record_run(&lethe_store::BackupRun {
        job: "a".into(),
        kind: "backup".into(),
        started: now - 60,
        ended: now - 50,
        result: "pass".into(),
        detail: "{}".into(),
    })
    .unwrap();
    let out = lethe(&r.state)
        .args(["backup", "run-scheduled", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = summary(&out);
    let runs = v["runs"].as_array().unwrap();
    let drill = runs.iter().find(|x| x["kind"] == "drill").unwrap();
    assert_eq!(drill["job"], "a");
    let d = drill["detail"].clone();
    assert_eq!(
        d["snapshot"], sa,
        "job a's own snapshot, not b's newer one: {v}"
    );
    assert!(runs
        .iter()
        .any(|x| x["job"] == "b" && x["kind"] == "backup" && x["result"] == "pass"));
}

/// safeguard: 164.312(a)(1)
#[test]
fn a_schedule_never_runs_what_an_unprivileged_user_wrote() {
    if !is_root() {
        eprintln!("SKIPPED: stdin_command trust: changing a file's owner needs root");
        return;
    }
    let r = Repo::new();
    let cfg = r.path("schedule.toml");
    let marker = r.path("ran");
    std::fs::write(
        &cfg,
        format!(
            "[[job]]\nname='dump'\nrepo='{}'\npassword_file='{}'\nevery='1h'\n\
             stdin_command=\"touch {}; printf 'dump of the records'\"\n",
            r.repo.display(),
            r.pw.display(),
            marker.display()
        ),
    )
    .unwrap();
    let sched = || {
        lethe(&r.state)
            .args(["backup", "run-scheduled", "--json", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let clear = || {
        for f in ["lethe.db", "lethe.db-wal", "lethe.db-shm"] {
            let _ = std::fs::remove_file(r.state.join(f));
        }
    };
    // Writable by its group: refused with the reason, nothing run.
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o664)).unwrap();
    let out = sched();
    assert_eq!(out.status.code(), Some(2));
    let v = summary(&out);
    let detail = v["runs"][0]["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("refused") && detail.contains("0664"),
        "{detail}"
    );
    assert!(!marker.exists(), "the command did not run");
    // Owned by an unprivileged user: refused.
    clear();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&cfg, Some(65534), Some(65534)).unwrap();
    let out = sched();
    assert_eq!(out.status.code(), Some(2));
    let detail = summary(&out)["runs"][0]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("uid 65534"), "{detail}");
    assert!(!marker.exists());
    // Root's own, not writable by others: it runs and its output is backed up.
    clear();
    std::os::unix::fs::chown(&cfg, Some(0), Some(0)).unwrap();
    let out = sched();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(marker.exists());
    r.ok(&["restore", "latest", "--to", &r.s("dump.out")]);
    assert_eq!(
        std::fs::read_to_string(r.path("dump.out")).unwrap(),
        "dump of the records"
    );
}

#[test]
fn numbers_are_range_checked() {
    let r = Repo::new();
    let src = r.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), noise(1, 1 << 20)).unwrap();
    r.ok(&["run", &r.s("src")]);
    for args in [
        &["check", "--read-data=nan"][..],
        &["check", "--read-data=-5"],
        &["check", "--read-data=0"],
        &["check", "--read-data=101"],
        &["check", "--read-data=inf"],
        &["prune", "--max-unused", "nan"],
        &["prune", "--max-unused=-1"],
        &["prune", "--max-unused", "-1"],
        &["drill", "--sample", "-2"],
        &["prune", "--max-unused", "150"],
        &["drill", "--sample", "0"],
        &["run", "--threads", "0", "/nonexistent"],
        &["run", "--lock-days", "0", "/nonexistent"],
        &["forget", "--keep-last", "0"],
        &["forget", "--keep-daily", "-3"],
    ] {
        let (code, v, err) = r.code(args);
        assert_eq!(code, 1, "{args:?}: {v} {err}");
        assert!(
            err.contains("out of range")
                || err.contains("not a number")
                || err.contains("at least"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(r.locks(), 0);
    // --max-unused 0 on a repository with nothing unused frees nothing, and says so.
    let p = r.ok(&["prune", "--max-unused", "0"]);
    assert_eq!(p["bytes_freed"], 0, "{p}");
    assert_eq!(p["packs_repacked"], 0, "{p}");
    // A real share of the packs is read.
    let c = r.ok(&["check", "--read-data=100"]);
    assert!(c["packs_read"].as_u64().unwrap() > 0, "{c}");
}

/// safeguard: 164.312(a)(2)(iv)
#[test]
fn the_recovery_key_opens_a_repository_without_key_files() {
    let r = Repo::new();
    let src = r.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), noise(1, 100_000)).unwrap();
    // A repository whose recovery key the test keeps (as `init` printed it).
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("state");
    let repo2 = t.path().join("repo");
    let out = lethe(&state)
        .args(["backup", "--json", "init", "--repo"])
        .arg(&repo2)
        .arg("--password-file")
        .arg(&r.pw)
        .output()
        .unwrap();
    let key = summary(&out)["recovery_key"].as_str().unwrap().to_string();
    let run = |args: &[&str], auth: &[&str]| {
        lethe(&state)
            .args(["backup", "--json", "--repo"])
            .arg(&repo2)
            .args(auth)
            .args(args)
            .output()
            .unwrap()
    };
    let pw = r.pw.display().to_string();
    let o = run(&["run", &r.s("src")], &["--password-file", &pw]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Every passphrase key file lost: the passphrase no longer opens it, the
    // recovery key does. (Format 2: the recovery key opens the recovery slot
    // `keys/<id>`, which must survive; version-1 recovery keys were the master
    // key itself.)
    let keys = summary(&run(&["key", "list"], &["--password-file", &pw]));
    let mut removed = 0;
    for k in keys.as_array().unwrap() {
        if k["kind"] != "recovery" {
            std::fs::remove_file(repo2.join("keys").join(k["id"].as_str().unwrap())).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0, "{keys}");
    let o = run(&["snapshots"], &["--password-file", &pw]);
    assert_eq!(o.status.code(), Some(1));
    let kf = t.path().join("recovery.txt");
    std::fs::write(&kf, format!("{key}\n")).unwrap();
    let k = kf.display().to_string();
    let o = run(
        &["restore", "latest", "--target", &r.s("rec")],
        &["--recovery-key-file", &k],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(r.restored("rec", "src").join("a")).unwrap(),
        noise(1, 100_000)
    );
    // And a new passphrase can be added with it.
    let new_pw = t.path().join("new-pw");
    std::fs::write(&new_pw, "new").unwrap();
    let o = run(
        &[
            "key",
            "add",
            "--new-password-file",
            &new_pw.display().to_string(),
        ],
        &["--recovery-key-file", &k],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(
        &["snapshots"],
        &["--password-file", &new_pw.display().to_string()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}
