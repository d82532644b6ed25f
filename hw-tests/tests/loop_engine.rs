//! The overwrite engine through the real Linux block layer (O_DIRECT|O_EXCL
//! on loop devices created here).

use lethe_core::device::BlockDevice;
use lethe_core::pattern::Pattern;
use lethe_core::plan::{Checkpoint, VerifyMode, WipePlan};
use lethe_core::ranges::RangeSet;
use lethe_hw_tests::{loop_tier_unavailable, skip, LoopDevice};
use lethe_linux::blockdev::{DirectDevice, OpenError};
use lethe_wipe::{run, PatternStream, StreamKey, Verdict, WipeConfig};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

const MIB: u64 = 1 << 20;

#[test]
fn geometry_comes_from_the_kernel() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    for (size, sector) in [(MIB + 512, 512u32), (2 * MIB + 4096, 4096)] {
        let lo = LoopDevice::new(size, sector, 0).unwrap();
        let dev = DirectDevice::open(lo.path()).unwrap();
        let g = dev.geometry();
        assert_eq!((g.size_bytes, g.logical_sector), (size, sector));
        assert!(g.physical_sector >= sector);
    }
}

/// safeguard: 164.310(d)(2)(i)
#[test]
fn engine_on_a_loop_device_is_byte_exact() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let size = 64 * MIB + 4096;
    let lo = LoopDevice::new(size, 512, 0xC3).unwrap();
    let dev = DirectDevice::open(lo.path()).unwrap();
    let plan = WipePlan::new(Pattern::Random, 1, false, VerifyMode::Full).unwrap();
    let key = StreamKey([9; 16]);
    let cfg = WipeConfig::new(plan, key.clone(), 0);
    let out = run(&dev, &cfg, Checkpoint::START, RangeSet::new(), &());
    assert_eq!(out.verdict(), Verdict::Pass, "{:?}", out.problems());
    drop(dev);
    let mut got = Vec::new();
    std::fs::File::open(lo.backing())
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    let mut want = vec![0u8; size as usize];
    PatternStream::new(Pattern::Random, 0, &key).fill(&mut want, 0);
    assert!(got == want, "backing file differs from the keystream");
}

/// safeguard: rule:protected-devices
#[test]
fn exclusive_open_fails_while_someone_holds_the_device() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let lo = LoopDevice::new(MIB, 512, 0).unwrap();
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(lo.path())
        .unwrap();
    assert!(matches!(
        DirectDevice::open(lo.path()),
        Err(OpenError::Busy { .. })
    ));
    drop(holder);
    let dev = DirectDevice::open(lo.path()).unwrap();
    // And while we hold it, nobody else can claim it.
    let other = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(lo.path());
    assert_eq!(other.unwrap_err().raw_os_error(), Some(libc::EBUSY));
    drop(dev);
}

#[test]
fn regular_files_are_not_block_devices() {
    let f = tempfile::NamedTempFile::new().unwrap();
    assert!(matches!(
        DirectDevice::open(f.path()),
        Err(OpenError::NotBlockDevice { .. })
    ));
    assert!(matches!(
        DirectDevice::open(std::path::Path::new("/dev/null")),
        Err(OpenError::NotBlockDevice { .. })
    ));
}
