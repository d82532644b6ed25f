//! The QEMU drive tier for `lethe wipe --level purge`: one x86 guest (TCG)
//! with an emulated NVMe drive, an AHCI SATA disk and a USB stick, each over a
//! raw file filled with a known byte by the host.
//!
//! - NVMe: the policy picks Format NVM with SES=1 (QEMU has no Sanitize and
//!   FNA says no crypto erase); the job passes with the drive's completion
//!   status and the canary read-back on its certificate, and the host then
//!   finds no sector of the backing file still holding the pattern;
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
L="/bin/lethe --state-dir /tmp/state"
sata=""; usb=""
for d in /sys/block/sd*; do
    b=${d##*/}
    case "$(readlink -f $d/device)" in *usb*) usb=/dev/$b;; *) sata=/dev/$b;; esac
done
echo "@@DEVS sata=$sata usb=$usb@@"
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
        echo "@@${name}_VERIFY rc=$? $(cat /tmp/$name.verify)@@"
        echo "@@${name}_CERT $(tr -d '\n' < $cert)@@"
    fi
}
run NVME /dev/nvme0n1 --level purge
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

#[test]
fn qemu_purge_nvme_format_sata_fallback_usb_refusal() {
    let t0 = Instant::now();
    let Some(b) = GuestBuilder::new("qemu_purge_nvme_format_sata_fallback_usb_refusal") else {
        return;
    };
    let mut b = b
        .binary("/bin/lethe", Path::new(env!("CARGO_BIN_EXE_lethe")))
        .nvme("nvme", &DiskSpec::new("LETHEPURGE01", 64 << 20).fill(FILL))
        .sata(
            "sata",
            &DiskSpec::new("LETHEPURGE02", 32 << 20)
                .model("LETHE PURGE SATA")
                .fill(FILL),
        )
        .xhci();
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
    assert!(c["verification"]["detail"]
        .as_str()
        .is_some_and(|d| d.contains("0 unchanged")));
    assert!(c["method"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("SES=1")));
    let nvme = g
        .disk("nvme")
        .unwrap_or_else(|| panic!("no nvme backing file"));
    assert_eq!(
        sectors_full_of(nvme, FILL),
        0,
        "the NVMe backing file still holds the pattern written before the purge"
    );

    // AHCI: IDENTIFY through SG_IO, no Security/SANITIZE: verified overwrite, Clear, exit 4.
    let rc = one(&console, "SATA_RC");
    let last = json(&console, "SATA_LAST");
    assert_eq!(rc, "rc=4", "{last}\nstderr: {}", one(&console, "SATA_ERR"));
    assert_eq!(last["result"], "pass");
    assert_eq!(
        (&last["method"], &last["category"], &last["requested"]),
        (&"overwrite".into(), &"clear".into(), &"purge".into())
    );
    let cert = json(&console, "SATA_CERT");
    let c = &cert["certificate"];
    assert_eq!(c["method"]["category"], "clear");
    assert_eq!(c["method"]["requested_level"], "purge");
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
