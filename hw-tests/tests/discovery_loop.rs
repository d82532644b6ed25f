//! Discovery and target assessment against loop devices with real partition
//! tables, filesystems, mounts and swap (root only).

use lethe_core::inventory::{ProtectReason, Transport};
use lethe_hw_tests::{loop_tier_unavailable, root_disk, skip, LoopDevice};
use lethe_linux::discovery::{assess_target, discover, Refusal};
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A loop device with a GPT holding one ext4 partition; returns the partition path.
fn gpt_with_ext4(lo: &LoopDevice) -> PathBuf {
    let mut child = Command::new("sfdisk")
        .args(["--quiet", "--label", "gpt"])
        .arg(lo.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b",,L\n").unwrap();
    assert!(child.wait().unwrap().success());
    run("partx", &["-u", lo.path().to_str().unwrap()]);
    let part = PathBuf::from(format!("{}p1", lo.path().display()));
    for _ in 0..50 {
        if part.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    run(
        "mkfs.ext4",
        &["-q", "-F", "-L", "patients", part.to_str().unwrap()],
    );
    part
}

struct Mounted(tempfile::TempDir);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

struct SwapOn(PathBuf);
impl Drop for SwapOn {
    fn drop(&mut self) {
        let _ = Command::new("swapoff").arg(&self.0).status();
    }
}

fn reasons(r: Result<impl std::fmt::Debug, Refusal>) -> (Vec<ProtectReason>, String) {
    match r {
        Err(e @ Refusal::Protected { .. }) => {
            let text = e.to_string();
            let Refusal::Protected { reasons, .. } = e else {
                unreachable!()
            };
            (reasons, text)
        }
        other => panic!("expected a protection refusal, got {other:?}"),
    }
}

#[test]
fn partitions_and_filesystems_are_listed() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    if !have("sfdisk") {
        skip!("sfdisk missing (apt-get install fdisk)");
    }
    let lo = LoopDevice::new(64 * MIB, 512, 0).unwrap();
    gpt_with_ext4(&lo);
    let name = lo.path().file_name().unwrap().to_string_lossy().to_string();
    let drives = discover().unwrap();
    let d = drives
        .iter()
        .find(|d| d.name == name)
        .expect("loop device listed");
    assert_eq!(d.transport, Transport::Loop);
    assert_eq!(d.size_bytes, 64 * MIB);
    assert_eq!(d.partition_table.as_deref(), Some("gpt"));
    assert_eq!(d.partitions.len(), 1);
    assert_eq!(d.partitions[0].fs_type.as_deref(), Some("ext4"));
    assert_eq!(d.partitions[0].label.as_deref(), Some("patients"));
    assert!(!d.protected, "{:?}", d.reasons);
    // Not mounted: a wipe is allowed.
    let t = assess_target(lo.path()).unwrap();
    assert_eq!(t.drive.name, name);
}

/// safeguard: rule:protected-devices
#[test]
fn a_partition_is_refused_and_so_is_its_disk_while_mounted() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    if !have("sfdisk") {
        skip!("sfdisk missing (apt-get install fdisk)");
    }
    let lo = LoopDevice::new(64 * MIB, 512, 0).unwrap();
    let part = gpt_with_ext4(&lo);
    let (r, text) = reasons(assess_target(&part));
    assert!(
        matches!(&r[0], ProtectReason::IsPartition { parent } if Path::new(parent) == lo.path()),
        "{r:?}"
    );
    assert!(
        text.contains("whole devices only") && text.contains("nothing was written"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    run(
        "mount",
        &[part.to_str().unwrap(), dir.path().to_str().unwrap()],
    );
    let _m = Mounted(dir);
    let (r, text) = reasons(assess_target(lo.path()));
    assert!(
        r.iter().any(|x| matches!(x, ProtectReason::Mounted { .. })),
        "{r:?}"
    );
    assert!(text.contains("p1 is mounted at"), "{text}");
}

/// safeguard: rule:protected-devices
#[test]
fn active_swap_is_refused() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let lo = LoopDevice::new(32 * MIB, 512, 0).unwrap();
    run("mkswap", &["-q", lo.path().to_str().unwrap()]);
    if !Command::new("swapon")
        .arg(lo.path())
        .status()
        .is_ok_and(|s| s.success())
    {
        skip!("swapon is not permitted here");
    }
    let _s = SwapOn(lo.path().to_path_buf());
    let (r, text) = reasons(assess_target(lo.path()));
    assert!(
        r.iter().any(|x| matches!(x, ProtectReason::Swap { .. })),
        "{r:?}"
    );
    assert!(text.contains("in use as swap"), "{text}");
}

#[test]
fn a_signature_on_the_raw_device_is_reported() {
    if let Some(why) = loop_tier_unavailable() {
        skip!("{why}");
    }
    let lo = LoopDevice::new(32 * MIB, 512, 0).unwrap();
    run("mkfs.ext4", &["-q", "-F", lo.path().to_str().unwrap()]);
    let t = assess_target(lo.path()).unwrap();
    assert_eq!(t.drive.signatures, vec!["ext4".to_string()]);
}

/// safeguard: rule:protected-devices
#[test]
fn the_root_disk_is_refused_as_a_system_disk() {
    let Some(root) = root_disk() else {
        skip!("root is not on a block device here")
    };
    let (r, text) = reasons(assess_target(&root));
    assert!(
        r.iter().any(
            |x| matches!(x, ProtectReason::SystemDisk { mountpoint, .. } if mountpoint == "/")
        ),
        "{r:?}"
    );
    assert!(text.contains("holds the system filesystem /"), "{text}");
}

#[test]
fn non_block_paths_are_refused() {
    let f = tempfile::NamedTempFile::new().unwrap();
    assert!(matches!(
        assess_target(f.path()),
        Err(Refusal::NotBlockDevice { .. })
    ));
    assert!(matches!(
        assess_target(Path::new("/dev/null")),
        Err(Refusal::NotBlockDevice { .. })
    ));
    assert!(matches!(
        assess_target(Path::new("/nonexistent/disk")),
        Err(Refusal::Missing { .. })
    ));
}
