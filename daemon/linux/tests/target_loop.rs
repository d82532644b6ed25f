//! The exclusive target and protection by stacking, on loop devices the
//! tests create (root only; skipped loudly otherwise).

use lethe_core::device::BlockDevice;
use lethe_core::inventory::ProtectReason;
use lethe_hw_tests::{
    fill_file, loop_tier_unavailable, mkfs_ext4, sha256_file, skip, LoopDevice, Mount,
};
use lethe_linux::discovery::{assess_target, Refusal};
use lethe_linux::target::{ExclusiveTarget, TargetError};
use std::os::unix::fs::MetadataExt;

const MIB: u64 = 1 << 20;

fn name(l: &LoopDevice) -> String {
    l.path().file_name().unwrap().to_string_lossy().into_owned()
}

fn reasons(e: TargetError) -> Vec<ProtectReason> {
    match e {
        TargetError::Refused(Refusal::Protected { reasons, .. }) => reasons,
        other => panic!("expected a protection refusal, got {other}"),
    }
}

/// safeguard: rule:checked-device
#[test]
fn the_target_is_the_assessed_loop_device_and_knows_its_backing_file() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let l = LoopDevice::new(4 * MIB, 512, 0x11).unwrap();
    let t = ExclusiveTarget::acquire(l.path()).expect("a free loop device");
    let meta = std::fs::metadata(l.backing()).unwrap();
    let b = t.identity().loop_backing.expect("loop backing");
    assert_eq!(b.file.ino, meta.ino());
    assert_eq!(b.block, None);
    assert_eq!(t.geometry().size_bytes, 4 * MIB);
    // Held exclusively: a second target on the same device is refused.
    let again = ExclusiveTarget::acquire(l.path()).expect_err("held");
    assert!(again.to_string().contains("in use"), "{again}");
}

/// safeguard: rule:checked-device
#[test]
fn a_loop_node_rebound_to_another_file_after_the_check_is_refused() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let mut l = LoopDevice::new(4 * MIB, 512, 0x11).unwrap();
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let other = dir.path().join("other.img");
    fill_file(&other, 4 * MIB, 0x22).unwrap();
    let (first, second) = (l.backing().to_path_buf(), other.clone());
    let (h1, h2) = (sha256_file(&first), sha256_file(&second));

    let assessed = assess_target(l.path()).expect("allowed");
    // Same node, same size, no serial: only the backing file tells them apart.
    l.rebind(&other).expect("rebind the same loop node");
    let err = ExclusiveTarget::open(assessed).expect_err("swapped device");
    let msg = err.to_string();
    assert!(
        matches!(err, TargetError::Changed { .. }) && msg.contains("backing file"),
        "{msg}"
    );
    assert!(msg.contains("nothing was written"), "{msg}");
    assert_eq!(sha256_file(&first), h1);
    assert_eq!(sha256_file(&second), h2);
}

/// safeguard: rule:protected-devices
#[test]
fn a_mounted_loop_stacked_on_a_device_protects_it_and_a_loop_on_a_mounted_device_is_refused() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    // loop L over a file; loop U over L; U carries a mounted filesystem.
    let lower = LoopDevice::new(32 * MIB, 512, 0).unwrap();
    let upper = LoopDevice::over(lower.path(), 512).unwrap();
    mkfs_ext4(upper.path()).unwrap();
    {
        let _m = Mount::new(upper.path(), "rw").unwrap();
        let r = reasons(ExclusiveTarget::acquire(lower.path()).expect_err("stacked"));
        assert!(
            r.iter().any(
                |x| matches!(x, ProtectReason::Stacked { upper: u, reasons, .. }
                if *u == name(&upper)
                    && reasons.iter().any(|y| matches!(y, ProtectReason::Mounted { .. })))
            ),
            "{r:?}"
        );
    }
    // Unmounted: nothing uses the stack any more.
    assert!(assess_target(lower.path()).is_ok());
    drop(upper);

    // L mounted; a loop over L is refused because of what is under it.
    mkfs_ext4(lower.path()).unwrap();
    let _m = Mount::new(lower.path(), "rw").unwrap();
    let over = LoopDevice::over(lower.path(), 512).unwrap();
    let r = reasons(ExclusiveTarget::acquire(over.path()).expect_err("backed by mounted"));
    assert!(
        r.iter()
            .any(|x| matches!(x, ProtectReason::BackedBy { lower: l, .. } if *l == name(&lower))),
        "{r:?}"
    );
}
