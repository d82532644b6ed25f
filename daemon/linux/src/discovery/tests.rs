//! Discovery and target assessment on this machine: loop devices over temp
//! files (created and detached here), plus paths that must never be accepted.
//! The loop tests need root and `losetup`; without them they say so and stop.

use super::*;
use std::io::Write;
use std::process::Command;

/// A loop device over a temp file, detached on drop.
struct LoopDevice {
    dev: PathBuf,
    _file: tempfile::NamedTempFile,
}

impl LoopDevice {
    fn new(bytes: u64) -> Option<Self> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("SKIPPED: loop devices need root");
            return None;
        }
        let mut file = tempfile::NamedTempFile::new().ok()?;
        file.as_file_mut().set_len(bytes).ok()?;
        file.flush().ok()?;
        let out = Command::new("losetup")
            .args(["--find", "--show", "--partscan"])
            .arg(file.path())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "SKIPPED: losetup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let dev = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Some(Self { dev, _file: file })
    }

    fn name(&self) -> String {
        self.dev
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// safeguard: rule:protected-devices
#[test]
fn an_exclusively_opened_loop_device_is_refused_as_in_use() {
    let Some(lo) = LoopDevice::new(8 << 20) else {
        return;
    };
    // Free: allowed, and the record describes this very device.
    let ok = assess_target(&lo.dev).expect("a fresh loop device is allowed");
    assert_eq!(ok.drive.name, lo.name());
    assert_eq!(ok.drive.size_bytes, 8 << 20);
    assert_eq!(ok.drive.transport, lethe_core::inventory::Transport::Loop);

    // Held with O_EXCL by "another program" (this test): refused as in use.
    let held = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL | libc::O_CLOEXEC)
        .open(&lo.dev)
        .expect("exclusive open of our own loop device");
    let err = assess_target(&lo.dev).expect_err("held device must be refused");
    match &err {
        Refusal::Protected { reasons, .. } => assert!(
            reasons.contains(&ProtectReason::InUse { by: lo.name() }),
            "{reasons:?}"
        ),
        other => panic!("unexpected refusal {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("refusing to touch {}", lo.dev.display())),
        "{msg}"
    );
    assert!(
        msg.contains("in use") && msg.ends_with("nothing was written"),
        "{msg}"
    );
    // discover() agrees while it is held…
    let listed = discover().expect("discover");
    let d = listed.iter().find(|d| d.name == lo.name()).expect("listed");
    assert!(d.protected && d.reasons.contains(&ProtectReason::InUse { by: lo.name() }));
    drop(held);
    // …and the device is free again once it is closed.
    if let Err(e) = assess_target(&lo.dev) {
        panic!("still refused after close: {e}");
    }
}

#[test]
fn regular_files_and_char_devices_are_not_block_devices() {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    for p in [f.path(), Path::new("/dev/null")] {
        let err = assess_target(p).expect_err("must be refused");
        assert!(matches!(err, Refusal::NotBlockDevice { .. }), "{err:?}");
        assert!(err.to_string().contains("not a block device"), "{err}");
    }
    let err = assess_target(Path::new("/nonexistent/lethe-disc")).expect_err("missing");
    assert!(matches!(err, Refusal::Missing { .. }), "{err:?}");
}

#[test]
fn by_id_style_symlinks_resolve_to_their_device() {
    let Some(lo) = LoopDevice::new(4 << 20) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join("loop-link");
    std::os::unix::fs::symlink(&lo.dev, &link).expect("symlink");
    let a = assess_target(&link).expect("allowed through a link");
    assert_eq!(a.drive.name, lo.name());
    assert_eq!(Path::new(&a.drive.path), lo.dev.as_path());
}

#[test]
fn partition_table_entries_carry_start_and_type() {
    let Some(lo) = LoopDevice::new(16 << 20) else {
        return;
    };
    let mut child = match Command::new("sfdisk")
        .args(["--quiet", "--label", "gpt"])
        .arg(&lo.dev)
        .stdin(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIPPED: sfdisk unavailable: {e}");
            return;
        }
    };
    // One Linux-filesystem partition starting at sector 2048, 8 MiB long.
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"start=2048, size=16384, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n")
        .expect("write script");
    assert!(child.wait().expect("sfdisk").success());
    // The kernel has not loaded the new table yet: the record says so.
    let before = record(&lo.name()).expect("record of our loop device");
    if before.partitions.is_empty() {
        assert!(
            before
                .probe_error
                .as_deref()
                .is_some_and(|e| e.contains("partition(s) 1 that the kernel has not loaded")),
            "{before:?}"
        );
    }
    // Make it load the table, and wait for the partition's sysfs entry.
    assert!(Command::new("partx")
        .arg("-u")
        .arg(&lo.dev)
        .status()
        .expect("partx")
        .success());
    let sys_part = Path::new(SYS_BLOCK).join(format!("{}p1", lo.name()));
    for _ in 0..50 {
        if sys_part.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = record(&lo.name()).expect("record of our loop device");
    assert_eq!(r.partition_table.as_deref(), Some("gpt"));
    assert_eq!(r.partitions.len(), 1, "{r:?}");
    let p = &r.partitions[0];
    assert_eq!((p.number, p.size_bytes), (1, 16384 * 512));
    assert_eq!(p.start_sector, Some(2048));
    assert_eq!(
        p.part_type.as_deref(),
        Some("0fc63daf-8483-4772-8e79-3d69d8477de4")
    );
    assert_eq!(r.probe_error, None);
}

#[test]
fn vpd_page_80_gives_the_unit_serial() {
    // libata's page for an ATA disk: the 20-byte serial, space padded.
    let mut page = vec![0x00, 0x80, 0x00, 20];
    page.extend_from_slice(b"   LETHESATA01      ");
    assert_eq!(vpd80_serial(&page).as_deref(), Some("LETHESATA01"));
    // A length beyond the buffer takes what is there.
    assert_eq!(
        vpd80_serial(&[0, 0x80, 0, 99, b'A', b'B']).as_deref(),
        Some("AB")
    );
    assert_eq!(
        vpd80_serial(&[0, 0x83, 0, 2, b'A', b'B']),
        None,
        "wrong page"
    );
    assert_eq!(vpd80_serial(&[0, 0x80, 0, 4, b' ', 0, b' ', b' ']), None);
    assert_eq!(vpd80_serial(&[0, 0x80]), None);
}

proptest::proptest! {
    #[test]
    fn vpd80_serial_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        if let Some(s) = vpd80_serial(&b) {
            proptest::prop_assert!(!s.is_empty());
            proptest::prop_assert_eq!(s.trim(), s.as_str());
        }
    }
}

/// The next event `want` accepts within 10 s (other loop devices may come and go).
fn wait_event(
    w: &mut uevent::Watcher,
    want: impl Fn(&uevent::DriveEvent) -> bool,
) -> Option<uevent::DriveEvent> {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        match w.next(std::time::Duration::from_millis(500)) {
            Ok(Some(e)) if want(&e) => return Some(e),
            Ok(_) => {}
            Err(e) => panic!("watch: {e}"),
        }
    }
    None
}

#[test]
fn the_watcher_sees_a_loop_device_attached_and_detached() {
    // Bound before the loop device exists: its attach must be reported.
    let Ok((mut w, before)) = uevent::Watcher::start() else {
        eprintln!(
            "SKIPPED: the_watcher_sees_a_loop_device_attached_and_detached: no uevent socket"
        );
        return;
    };
    let Some(lo) = LoopDevice::new(4 << 20) else {
        return;
    };
    let name = lo.name();
    assert!(!before.iter().any(|d| d.name == name));
    let added = wait_event(
        &mut w,
        |e| matches!(e, uevent::DriveEvent::Added(d) if d.name == name),
    )
    .unwrap_or_else(|| panic!("no add event for {name}"));
    let uevent::DriveEvent::Added(d) = added else {
        unreachable!()
    };
    assert_eq!(d.transport, lethe_core::inventory::Transport::Loop);
    assert_eq!(d.size_bytes, 4 << 20);
    drop(lo);
    let removed = wait_event(
        &mut w,
        |e| matches!(e, uevent::DriveEvent::Removed { name: n, .. } if *n == name),
    )
    .unwrap_or_else(|| panic!("no remove event for {name}"));
    let uevent::DriveEvent::Removed { path, last, .. } = removed else {
        unreachable!()
    };
    assert_eq!(path, format!("/dev/{name}"));
    assert_eq!(last.map(|d| d.size_bytes), Some(4 << 20));
}
