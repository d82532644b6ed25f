//! Writes that must never happen, through the `lethe` binary on loop devices
//! the tests create (root only): an image restored onto a mounted device or
//! onto a device smaller than the image, and a wipe or a restore onto the
//! lower device of a stacked loop whose upper device is mounted. Each is
//! refused, the device is unchanged (hashed before and after), and a mounted
//! filesystem still checks clean afterwards.

mod common;

use common::*;
use lethe_hw_tests::{fsck_clean, loop_tier_unavailable, skip, LoopDevice};
use std::path::Path;
use std::process::Command;

const MIB: u64 = 1 << 20;

struct Repo {
    _dir: tempfile::TempDir,
    state: std::path::PathBuf,
    repo: std::path::PathBuf,
    pw: std::path::PathBuf,
    snapshot: String,
}

fn backup(r: &Repo) -> Command {
    let mut c = lethe(&r.state);
    c.arg("backup")
        .arg("--repo")
        .arg(&r.repo)
        .arg("--password-file")
        .arg(&r.pw)
        .env_remove("LETHE_REPO")
        .env_remove("LETHE_PASSWORD")
        .env_remove("LETHE_PASSWORD_FILE");
    c
}

/// A repository holding one 8 MiB image (of a plain file).
fn repo_with_image() -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let r = Repo {
        state: dir.path().join("state"),
        repo: dir.path().join("repo"),
        pw: dir.path().join("pw"),
        snapshot: String::new(),
        _dir: dir,
    };
    std::fs::write(&r.pw, "pw").unwrap();
    let img = r.state.parent().unwrap().join("image.bin");
    std::fs::write(&img, noise(5, 8 << 20)).unwrap();
    let out = backup(&r).args(["--json", "init"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = backup(&r)
        .args(["--json", "run", "--device"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let snapshot = summary(&out)["snapshot"].as_str().unwrap().to_string();
    Repo { snapshot, ..r }
}

fn restore(r: &Repo, to: &Path) -> std::process::Output {
    backup(r)
        .args(["--json", "restore", "--yes", &r.snapshot, "--to"])
        .arg(to)
        .output()
        .unwrap()
}

fn assert_refused(out: &std::process::Output, want: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let err = stderr(out);
    assert!(err.contains("refused") && err.contains(want), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    let s = summary(out);
    assert_eq!(s["result"], "refused", "{s}");
}

/// safeguard: rule:restore-confinement, rule:protected-devices
#[test]
fn an_image_is_not_restored_onto_a_mounted_or_too_small_device() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let r = repo_with_image();

    // Mounted (read-only without journal replay, so only lethe could change it).
    let mounted = LoopDevice::new(16 * MIB, 512, 0).unwrap();
    mkfs_ext4(mounted.path());
    let before = mounted.backing_sha256();
    {
        let _m = Mount::with_options(mounted.path(), "ro,noload");
        assert_refused(&restore(&r, mounted.path()), "mounted");
    }
    assert_eq!(mounted.backing_sha256(), before);

    // Smaller than the image: refused before the first write.
    let small = LoopDevice::new(4 * MIB, 512, 0x5c).unwrap();
    let before = small.backing_sha256();
    let out = restore(&r, small.path());
    assert_refused(&out, "the image is 8388608 bytes");
    assert_eq!(small.backing_sha256(), before);

    // And a device that fits takes it, recorded as a job.
    let fits = LoopDevice::new(8 * MIB, 512, 0x5c).unwrap();
    let out = restore(&r, fits.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let job = summary(&out)["job"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read(fits.backing()).unwrap(), noise(5, 8 << 20));
    let j = lethe_store::JobStore::open(&r.state)
        .unwrap()
        .get(&job)
        .unwrap();
    assert_eq!(
        (j.kind.as_str(), j.status.as_str()),
        ("restore_image", "pass")
    );
}

/// safeguard: rule:protected-devices, rule:restore-confinement
#[test]
fn the_lower_device_of_a_mounted_stacked_loop_is_neither_wiped_nor_restored_onto() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let r = repo_with_image();
    // loop L over a file, loop U over L, a filesystem on U, mounted.
    let lower = LoopDevice::new(32 * MIB, 512, 0).unwrap();
    let upper = LoopDevice::over(lower.path(), 512).unwrap();
    mkfs_ext4(upper.path());
    let mount = Mount::new(upper.path());
    std::fs::write(mount.dir.path().join("record.txt"), "patient data").unwrap();
    // Settle what the kernel writes for the mount before hashing.
    Command::new("sync").status().unwrap();
    let upper_name = upper
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();

    let state = state_dir();
    let out = lethe(state.path())
        .args(["wipe", "--yes", "--json", "--pattern", "zero"])
        .arg(lower.path())
        .output()
        .unwrap();
    assert_refused(&out, &upper_name);
    assert!(stderr(&out).contains("stacked"), "{}", stderr(&out));

    let out = restore(&r, lower.path());
    assert_refused(&out, "stacked");

    // The filesystem never noticed.
    assert_eq!(
        std::fs::read_to_string(mount.dir.path().join("record.txt")).unwrap(),
        "patient data"
    );
    drop(mount);
    fsck_clean(upper.path()).unwrap();
}
