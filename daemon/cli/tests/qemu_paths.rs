//! A second path to a protected disk, in a QEMU guest (TCG): one raw file
//! seen by the guest as two SCSI disks (virtio-scsi, same WWN and serial, as
//! a dual-ported SAS disk behind two links looks without dm-multipath). One
//! path is in use as swap; `lethe wipe` on the other path must be refused,
//! matched by WWN, and nothing written: the host finds the file untouched
//! beyond the swap header.
//!
//! Prints `SKIPPED:` and returns without qemu-system-x86_64,
//! `LETHE_QEMU_KERNEL_ROOT` or `LETHE_BUSYBOX` (hw-tests/run-tests.sh sets them).

use lethe_hw_tests::qemu_guest::{markers, DiskSpec, GuestBuilder, DEFAULT_MODULES};
use std::path::Path;
use std::time::Duration;

const FILL: u8 = 0x5A;
const WWN: &str = "0x5000c500a1b2c3d4";

const SCRIPT: &str = r#"
export LETHE_OPERATOR_ID=qemu-test
L="/bin/lethe --state-dir /tmp/state"
set -- $(for d in /sys/block/sd*; do echo /dev/${d##*/}; done)
a=$1; b=$2
echo "@@DEVS a=$a b=$b@@"
mkswap $a >/dev/null 2>&1 && swapon $a
echo "@@SWAP rc=$?@@"
$L drives --json > /tmp/d.json 2>&1
echo "@@DRIVES $(tr -d '\n' < /tmp/d.json)@@"
$L wipe --yes --json --pattern zero $b > /tmp/w.out 2>/tmp/w.err
echo "@@WIPE rc=$?@@"
echo "@@WIPE_LAST $(tail -n 1 /tmp/w.out)@@"
echo "@@WIPE_ERR $(tr '\n' ' ' < /tmp/w.err | cut -c1-1500)@@"
swapoff $a
"#;

fn one(console: &str, name: &str) -> String {
    markers(console, name)
        .pop()
        .unwrap_or_else(|| panic!("no @@{name}@@ marker; console:\n{console}"))
}

/// safeguard: rule:protected-devices
#[test]
fn qemu_a_second_path_to_a_disk_in_use_is_refused_by_wwn() {
    let Some(mut b) = GuestBuilder::new("qemu_a_second_path_to_a_disk_in_use_is_refused_by_wwn")
    else {
        return;
    };
    let file = b.backing_file("disk", &DiskSpec::new("DUALPORT01", 16 << 20).fill(FILL));
    let drive = |id: &str| {
        format!(
            "file={},if=none,id={id},format=raw,file.locking=off",
            file.display()
        )
    };
    let path = |id: &str, lun: u32| {
        format!("scsi-hd,drive={id},bus=scsi0.0,scsi-id={lun},lun=0,serial=DUALPORT01,wwn={WWN},share-rw=on")
    };
    let mut modules: Vec<&str> = DEFAULT_MODULES.to_vec();
    modules.extend(["virtio_pci", "virtio_scsi"]);
    let mut g = b
        .binary("/bin/lethe", Path::new(env!("CARGO_BIN_EXE_lethe")))
        .modules(&modules)
        .qemu_args(&[
            "-device",
            "virtio-scsi-pci,id=scsi0",
            "-drive",
            &drive("p1"),
            "-device",
            &path("p1", 1),
            "-drive",
            &drive("p2"),
            "-device",
            &path("p2", 2),
        ])
        .extra_disks(2)
        .script(SCRIPT)
        .boot()
        .unwrap_or_else(|e| panic!("boot: {e}"));
    let console = g
        .wait_exit(Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "guest done in {:.1} s: {}",
        g.elapsed(),
        one(&console, "DEVS")
    );
    assert_eq!(one(&console, "SWAP"), "rc=0", "swap on the first path");

    // Both paths are listed as the same disk; both are protected.
    let drives: serde_json::Value = serde_json::from_str(&one(&console, "DRIVES"))
        .unwrap_or_else(|e| panic!("drives JSON: {e}"));
    let paths: Vec<&serde_json::Value> = drives
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["serial"] == "DUALPORT01")
        .collect();
    assert_eq!(paths.len(), 2, "{drives}");
    assert!(paths.iter().all(|d| d["protected"] == true), "{drives}");
    assert!(
        paths.iter().any(|d| d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "other_path")),
        "{drives}"
    );

    // The wipe of the second path is refused, by WWN, naming the swap.
    let last: serde_json::Value = serde_json::from_str(&one(&console, "WIPE_LAST"))
        .unwrap_or_else(|e| panic!("wipe JSON: {e}"));
    assert_eq!(
        one(&console, "WIPE"),
        "rc=1",
        "{last}\nstderr: {}",
        one(&console, "WIPE_ERR")
    );
    assert_eq!(last["result"], "refused", "{last}");
    let why = last["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("another path to the same disk")
            && why.contains("WWN")
            && why.contains("swap"),
        "{why}"
    );

    // Nothing written: past the swap header the file holds its fill.
    let bytes = std::fs::read(g.disk("disk").unwrap()).unwrap();
    assert!(
        bytes[1 << 20..].iter().all(|&x| x == FILL),
        "the disk was written through its second path"
    );
    assert_eq!(g.script_rc(), Some(0));
}
