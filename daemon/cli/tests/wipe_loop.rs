//! `lethe wipe` end to end on loop devices the tests create (root only).

mod common;

use common::*;
use lethe_core::pattern::Pattern;
use lethe_hw_tests::{loop_tier_unavailable, root_disk, skip, LoopDevice};
use lethe_wipe::{PatternStream, StreamKey};
use std::io::Write;
use std::process::Stdio;

const MIB: u64 = 1 << 20;

/// safeguard: 164.310(d)(2)(i), 164.310(d)(2)(iii)
#[test]
fn random_wipe_of_odd_sized_device_is_byte_exact_and_certified() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let size = 256 * MIB + 4096;
    let dev = LoopDevice::new(size, 512, 0x77).unwrap();
    let state = state_dir();
    let out = lethe(state.path())
        .args([
            "wipe",
            "--yes",
            "--json",
            "--pattern",
            "random",
            "--operator-id",
            "t1",
        ])
        .arg(dev.path())
        .output()
        .unwrap();
    let s = summary(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(s["result"], "pass");
    assert_eq!(s["bytes_written"], size);
    assert_eq!(s["bytes_verified"], size);
    let job = s["job"].as_str().unwrap();
    let key = StreamKey(job_key(state.path(), job));
    let stream = PatternStream::new(Pattern::Random, 0, &key);
    assert_file_matches(dev.backing(), |buf, off| stream.fill(buf, off));

    let cert = s["certificate"].as_str().unwrap();
    let body = cert_body(cert);
    assert_eq!(body["result"]["status"], "pass");
    assert_eq!(body["device"]["capacity_bytes"], size);
    assert_eq!(body["verification"]["method"], "full");
    assert_eq!(body["operator"]["id"], "t1");
    let v = lethe(state.path())
        .args(["cert", "verify", cert, "--key"])
        .arg(pub_key(state.path()))
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    assert!(std::path::Path::new(s["pdf"].as_str().unwrap()).exists());
}

/// safeguard: 164.310(d)(2)(i), 164.310(d)(2)(ii)
#[test]
fn fixed_patterns_passes_and_blank_leave_the_final_pattern() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    // (size, sector, args, final byte)
    let cases: [(u64, u32, &[&str], u8); 3] = [
        (
            64 * MIB + 512,
            512,
            &["--pattern", "0xA5", "--passes", "2"],
            0xA5,
        ),
        (
            32 * MIB + 4096,
            4096,
            &["--pattern", "one", "--verify", "sample:5"],
            0xFF,
        ),
        (
            48 * MIB + 1024,
            512,
            &["--pattern", "random", "--passes", "2", "--blank"],
            0x00,
        ),
    ];
    for (size, sector, args, want) in cases {
        let dev = LoopDevice::new(size, sector, 0x3c).unwrap();
        let state = state_dir();
        let out = lethe(state.path())
            .args(["wipe", "--yes", "--json"])
            .args(args)
            .arg(dev.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(summary(&out)["result"], "pass");
        assert_file_matches(dev.backing(), |buf, _| buf.fill(want));
    }
}

/// safeguard: 164.310(d)(2)(ii)
#[test]
fn sampled_verification_records_seed_and_coverage() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(128 * MIB, 512, 0).unwrap();
    let state = state_dir();
    let out = lethe(state.path())
        .args([
            "wipe",
            "--yes",
            "--json",
            "--pattern",
            "zero",
            "--verify",
            "sample:10",
        ])
        .arg(dev.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&out);
    let verified = s["bytes_verified"].as_u64().unwrap();
    assert!(
        (128 * MIB / 10..128 * MIB / 2).contains(&verified),
        "{verified}"
    );
    let body = cert_body(s["certificate"].as_str().unwrap());
    assert_eq!(body["verification"]["method"], "sample");
    // The certificate states the coverage achieved: at least what was asked.
    let ppm = body["verification"]["coverage_ppm"].as_u64().unwrap();
    assert!((100_000..150_000).contains(&ppm), "{ppm}");
    assert!(body["verification"]["sample_seed"]
        .as_str()
        .is_some_and(|s| s.len() == 16));
}

/// safeguard: rule:protected-devices
#[test]
fn root_disk_is_refused() {
    let Some(root) = root_disk() else {
        skip!("root is not on a block device here")
    };
    let state = state_dir();
    // No --yes and empty stdin: even if the refusal were broken, the
    // confirmation prompt would stop the command before anything is opened.
    let out = lethe(state.path())
        .arg("wipe")
        .arg(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("refus"), "{err}");
    assert!(err.contains("root") || err.contains("mounted"), "{err}");
}

/// safeguard: rule:protected-devices
#[test]
fn mounted_device_is_refused_and_untouched() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(32 * MIB, 512, 0).unwrap();
    mkfs_ext4(dev.path());
    {
        let rw = Mount::new(dev.path());
        std::fs::write(rw.dir.path().join("record.txt"), "patient data").unwrap();
    }
    // A read-only mount without journal replay writes nothing itself, so any
    // change to the backing file would be lethe's.
    let before = dev.backing_sha256();
    let mount = Mount::with_options(dev.path(), "ro,noload");
    let state = state_dir();
    let out = lethe(state.path())
        .args(["wipe", "--yes", "--json"])
        .arg(dev.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("mounted"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    let s = summary(&out);
    assert_eq!(s["result"], "refused");
    assert!(s["error"].as_str().unwrap().contains("mounted"), "{s}");
    assert!(s["job"].is_null() && s["certificate"].is_null());
    drop(mount);
    assert_eq!(dev.backing_sha256(), before);
}

/// safeguard: rule:protected-devices
#[test]
fn device_held_open_exclusively_is_refused_and_untouched() {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(8 * MIB, 512, 0x11).unwrap();
    let before = dev.backing_sha256();
    let _holder = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(dev.path())
        .unwrap();
    let state = state_dir();
    let out = lethe(state.path())
        .args(["wipe", "--yes"])
        .arg(dev.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
    assert_eq!(dev.backing_sha256(), before);
}

#[test]
fn things_that_are_not_block_devices_are_refused() {
    let state = state_dir();
    let file = state.path().join("plain-file");
    std::fs::write(&file, vec![0x42; 4096]).unwrap();
    for target in [
        file.to_str().unwrap(),
        "/dev/null",
        "/nonexistent/lethe-device",
    ] {
        let out = lethe(state.path())
            .args(["wipe", "--yes", target])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{target}");
        let err = stderr(&out);
        assert!(
            err.contains("not a block device") || err.contains("No such file"),
            "{target}: {err}"
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), vec![0x42; 4096]);
}

/// safeguard: rule:checked-device
#[test]
fn wrong_confirmation_writes_nothing_and_right_one_proceeds() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let dev = LoopDevice::new(4 * MIB, 512, 0x11).unwrap();
    let before = dev.backing_sha256();
    let state = state_dir();
    let run = |answer: &str| {
        let mut child = lethe(state.path())
            .args(["wipe", "--json", "--pattern", "zero"])
            .arg(dev.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run("yes\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not confirmed"));
    assert_eq!(dev.backing_sha256(), before);
    let out = run(&format!("{}\n", 4 * MIB));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_file_matches(dev.backing(), |b, _| b.fill(0));
}
