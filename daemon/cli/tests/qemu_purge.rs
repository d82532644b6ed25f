//! The QEMU drive tier for `lethe wipe --level purge`: one x86 guest (TCG)
//! with an emulated NVMe controller holding two namespaces, an AHCI SATA disk
//! and a USB stick, each over a raw file prepared by the host.
//!
//! - NVMe namespace 1 holds an ext2 filesystem the guest mounts; namespace 2
//!   is filled with a known byte. The job on namespace 2 lists the subsystem's
//!   namespaces (sysfs) and their protection (discovery): the policy picks
//!   Format NVM with SES=1 (QEMU has no Sanitize and FNA says no crypto erase,
//!   nor that a format reaches every namespace), a per-namespace command, so
//!   it is scoped, not refused; the certificate says it erased namespace 2
//!   only. The host then finds no sector of namespace 2's backing file still
//!   holding the pattern, namespace 1's backing file byte for byte unchanged,
//!   and the guest's e2fsck finds the filesystem clean. A purge of the mounted
//!   namespace itself is refused;
//! - AHCI: IDENTIFY arrives through SG_IO and shows neither Security nor
//!   SANITIZE, so the job falls back to a verified overwrite certified as
//!   Clear with `requested_level = purge` (exit 4), exactly as the policy says;
//! - USB stick: removable flash cannot be purged: refused with "destroy",
//!   nothing written.
//!
//! Prints `SKIPPED:` and passes without qemu-system-x86_64,
//! `LETHE_QEMU_KERNEL_ROOT` or `LETHE_BUSYBOX` (hw-tests/run-tests.sh sets them).

use lethe_hw_tests::qemu_guest::{markers, DiskSpec, GuestBuilder};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

const FILL: u8 = 0xA5;

const SCRIPT: &str = r#"
export LETHE_OPERATOR_ID=qemu-test
L="/bin/lethe --state-dir /tmp/state"
sata=""; usb=""; ns1=""; ns2=""
for d in /sys/block/sd*; do
    b=${d##*/}
    case "$(readlink -f $d/device)" in *usb*) usb=/dev/$b;; *) sata=/dev/$b;; esac
done
for d in /sys/block/nvme*; do
    b=${d##*/}
    [ -e /dev/$b ] || continue
    case "$(cat $d/nsid 2>/dev/null)" in 1) ns1=/dev/$b;; 2) ns2=/dev/$b;; esac
done
echo "@@DEVS sata=$sata usb=$usb ns1=$ns1 ns2=$ns2@@"
mkdir -p /mnt
mount -t ext2 -o ro $ns1 /mnt
echo "@@MOUNT rc=$? $(cat /mnt/keep.txt)@@"
run() {
    name=$1; shift
    $L wipe "$@" --yes --json --operator-id qemu > /tmp/$name.out 2>/tmp/$name.err
    rc=$?
    echo "@@${name}_RC rc=$rc@@"
    echo "@@${name}_LAST $(tail -n 1 /tmp/$name.out)@@"
    echo "@@${name}_ERR $(tr '\n' ' ' < /tmp/$name.err | cut -c1-1500)@@"
    cert=$(tail -n 1 /tmp/$name.out | sed -n 's/.*"certificate":"\([^"]*\)".*/\1/p')
    if [ -n "$cert" ]; then
        $L cert verify "$cert" > /tmp/$name.verify 2>&1
        echo "@@${name}_VERIFY rc=$? $(tr '\n' ' ' < /tmp/$name.verify)@@"
        echo "@@${name}_CERT $(tr -d '\n' < $cert)@@"
    fi
}
run NVME $ns2 --level purge
run NVMEBUSY $ns1 --level purge
umount /mnt
e2fsck -fn $ns1 > /tmp/fsck.out 2>&1
echo "@@FSCK rc=$? $(tr '\n' ' ' < /tmp/fsck.out | cut -c1-400)@@"
run SATA $sata --level purge --pattern zero
run USB $usb --level purge
"#;

fn one(console: &str, name: &str) -> String {
    markers(console, name).pop().unwrap_or_else(|| {
        panic!("no @@{name}@@ marker; console:\n{console}");
    })
}

fn json(console: &str, name: &str) -> Value {
    let s = one(console, name);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("@@{name}@@ is not JSON ({e}): {s}"))
}

/// Sectors of `path` that still hold nothing but `byte`.
fn sectors_full_of(path: &Path, byte: u8) -> usize {
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        let got = f.read(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        if got == 0 {
            return n;
        }
        n += buf[..got]
            .chunks(512)
            .filter(|s| s.iter().all(|&b| b == byte))
            .count();
    }
}

/// safeguard: 164.310(d)(2)(i)
#[test]
fn qemu_purge_nvme_format_sata_fallback_usb_refusal() {
    let t0 = Instant::now();
    let Some(b) = GuestBuilder::new("qemu_purge_nvme_format_sata_fallback_usb_refusal") else {
        return;
    };
    let mut b = b
        .binary("/bin/lethe", Path::new(env!("CARGO_BIN_EXE_lethe")))
        .binary("/bin/e2fsck", Path::new("/usr/sbin/e2fsck"))
        .module("crc32c_generic")
        .module("ext4")
        .nvme_subsystem(
            "nvme",
            "LETHEPURGE01",
            &[
                ("nvme1", &DiskSpec::new("LETHEPURGE01", 32 << 20)),
                ("nvme2", &DiskSpec::new("LETHEPURGE01", 64 << 20).fill(FILL)),
            ],
        )
        .sata(
            "sata",
            &DiskSpec::new("LETHEPURGE02", 32 << 20)
                .model("LETHE PURGE SATA")
                .fill(FILL),
        )
        .xhci();
    // Namespace 1: an ext2 filesystem with one file, made by the host.
    let ns1 = b.dir().join("nvme1.raw");
    let content = b.dir().join("fs");
    std::fs::create_dir_all(&content).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(content.join("keep.txt"), "patient-free test data\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let mk = std::process::Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&content)
        .arg(&ns1)
        .status()
        .unwrap_or_else(|e| panic!("mke2fs (e2fsprogs, hw-tests/setup.sh): {e}"));
    assert!(mk.success(), "mke2fs failed");
    let ns1_before = std::fs::read(&ns1).unwrap_or_else(|e| panic!("{e}"));
    // A stick that reports removable media (RMB), as USB flash drives do.
    let usb_file = b.backing_file("usb", &DiskSpec::new("LETHEPURGE03", 16 << 20).fill(FILL));
    let mut g = b
        .qemu_args(&[
            "-drive",
            &format!("file={},if=none,id=usb,format=raw", usb_file.display()),
            "-device",
            "usb-storage,id=usb-dev,drive=usb,bus=xhci.0,serial=LETHEPURGE03,removable=on",
        ])
        .extra_disks(1)
        .script(SCRIPT)
        .boot()
        .unwrap_or_else(|e| panic!("boot: {e}"));
    let console = g
        .wait_exit(Duration::from_secs(400))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("guest done in {:.1} s", g.elapsed());
    eprintln!("{}", one(&console, "DEVS"));

    // NVMe: Format NVM SES=1, drive-reported completion, canary read-back.
    let rc = one(&console, "NVME_RC");
    let last = json(&console, "NVME_LAST");
    assert_eq!(
        rc,
        "rc=0",
        "NVMe purge failed: {last}\nstderr: {}",
        one(&console, "NVME_ERR")
    );
    assert_eq!(last["result"], "pass", "{last}");
    assert_eq!(last["method"], "nvme_format_ses1", "{last}");
    assert_eq!(last["category"], "purge", "{last}");
    assert!(one(&console, "NVME_VERIFY").starts_with("rc=0 VALID"));
    let cert = json(&console, "NVME_CERT");
    let c = &cert["certificate"];
    let status = c["method"]["drive_command"]["completion_status"]
        .as_str()
        .unwrap_or_default();
    assert!(
        status.contains("Format NVM SES=1") && status.contains("status 0x0000"),
        "{status}"
    );
    assert_eq!(c["verification"]["result"], "pass");
    // Drive health, read over the pass-through before anything was written.
    assert_eq!(c["device"]["health"]["source"], "nvme_smart_log", "{c}");
    assert!(c["device"]["health"]["percentage_used"].is_u64(), "{c}");
    assert!(c["verification"]["detail"]
        .as_str()
        .is_some_and(|d| d.contains("0 unchanged")));
    assert!(c["method"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("SES=1")));
    // The scope: the per-namespace Format erased namespace 2 only, and the
    // certificate says so (the list came from the guest's sysfs).
    let devs = one(&console, "DEVS");
    let ns2_name = devs
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ns2=/dev/"))
        .unwrap_or_else(|| panic!("{devs}"));
    assert_eq!(
        c["method"]["drive_command"]["erased_namespaces"],
        serde_json::json!([format!("{ns2_name} (NSID 2)")]),
        "{c}"
    );
    let nvme = g
        .disk("nvme2")
        .unwrap_or_else(|| panic!("no nvme backing file"));
    assert_eq!(
        sectors_full_of(nvme, FILL),
        0,
        "the NVMe backing file still holds the pattern written before the purge"
    );
    // The mounted namespace: untouched byte for byte, its filesystem clean,
    // and a purge aimed at it refused.
    let mount = one(&console, "MOUNT");
    assert!(
        mount.starts_with("rc=0 patient-free test data"),
        "{mount}\n{console}"
    );
    let ns1_after = std::fs::read(g.disk("nvme1").unwrap_or_else(|| panic!("no nvme1")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ns1_after == ns1_before,
        "the mounted namespace was written to"
    );
    let fsck = one(&console, "FSCK");
    assert!(fsck.starts_with("rc=0"), "e2fsck: {fsck}");
    let rc = one(&console, "NVMEBUSY_RC");
    let busy = json(&console, "NVMEBUSY_LAST");
    assert_eq!(rc, "rc=1", "{busy}");
    assert_eq!(busy["result"], "refused", "{busy}");

    // AHCI: IDENTIFY through SG_IO, no Security/SANITIZE: verified overwrite, Clear, exit 4.
    let rc = one(&console, "SATA_RC");
    let last = json(&console, "SATA_LAST");
    assert_eq!(rc, "rc=4", "{last}\nstderr: {}", one(&console, "SATA_ERR"));
    assert_eq!(last["result"], "clear_only");
    assert_eq!(
        (&last["method"], &last["category"], &last["requested"]),
        (&"overwrite".into(), &"clear".into(), &"purge".into())
    );
    let cert = json(&console, "SATA_CERT");
    let c = &cert["certificate"];
    assert_eq!(c["method"]["category"], "clear");
    assert_eq!(c["method"]["requested_level"], "purge");
    assert_eq!(c["result"]["status"], "clear_only");
    assert_eq!(c["device"]["health"]["source"], "ata_smart", "{c}");
    assert!(c["device"]["health"]["power_on_hours"].is_u64(), "{c}");
    let reason = c["method"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("ATA SANITIZE feature set not supported")
            && reason.contains("ATA Security feature set not supported"),
        "{reason}"
    );
    let probed = c["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["kind"] == "probed"))
        .unwrap_or_else(|| panic!("no probed event: {c}"));
    let detail = probed["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("Ata") && detail.contains("LETHEPURGE02"),
        "IDENTIFY through SG_IO: {detail}"
    );
    let sata = g
        .disk("sata")
        .unwrap_or_else(|| panic!("no sata backing file"));
    assert_eq!(sectors_full_of(sata, 0), (32 << 20) / 512, "zero-filled");

    // USB stick: refused with "destroy", nothing written.
    let rc = one(&console, "USB_RC");
    let last = json(&console, "USB_LAST");
    assert_eq!(rc, "rc=1", "{last}");
    assert_eq!(last["result"], "refused");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("destroy")),
        "{last}"
    );
    let usb = g
        .disk("usb")
        .unwrap_or_else(|| panic!("no usb backing file"));
    assert_eq!(sectors_full_of(usb, FILL), (16 << 20) / 512, "untouched");
    assert_eq!(g.script_rc(), Some(0));
    eprintln!("total {:.1} s", t0.elapsed().as_secs_f64());
}
