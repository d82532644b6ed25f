//! The QEMU drive tier for `lethe drives`: one x86 guest (TCG) with an
//! emulated NVMe drive, an AHCI SATA disk and a USB stick on xHCI, no udev.
//!
//! - `lethe drives --json` in the guest must report transport, model and
//!   serial of all three (what sysfs alone gives, since nothing else runs);
//! - `lethe drives --json --health` must read SMART from the SATA disk and
//!   the SMART / Health log from the NVMe drive (QEMU implements both), and
//!   say why the USB stick (no SAT in QEMU's usb-storage) has none;
//! - `lethe drives --watch --json` must report a second USB stick hot-added
//!   through QMP `device_add` (with its serial), and its `device_del`.
//!
//! Prints `SKIPPED:` and passes without qemu-system-x86_64,
//! `LETHE_QEMU_KERNEL_ROOT` or `LETHE_BUSYBOX` (hw-tests/run-tests.sh sets them).

use lethe_hw_tests::qemu_guest::{markers, DiskSpec, GuestBuilder};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const NVME_SERIAL: &str = "LETHENVME001";
const SATA_SERIAL: &str = "LETHESATA001";
/// libata passes the first 16 characters of the ATA model as the SCSI product.
const SATA_MODEL: &str = "LETHE SATA DISK";
const USB_SERIAL: &str = "LETHEUSB0001";
const HOT_SERIAL: &str = "LETHEHOT0002";

/// The guest: list once, then watch until the hot-plugged stick is removed.
/// The watcher is stopped with SIGTERM, which must end it cleanly (rc 0).
const SCRIPT: &str = r#"
/bin/lethe drives --json > /tmp/list.json 2>/tmp/list.err
echo "@@LIST rc=$?@@"
echo "@@LISTJSON $(tr -d '\n' < /tmp/list.json)@@"
echo "@@LISTERR $(tr '\n' ' ' < /tmp/list.err)@@"
/bin/lethe drives --json --health > /tmp/health.json 2>&1
echo "@@HEALTHJSON $(tr -d '\n' < /tmp/health.json)@@"
mkfifo /tmp/wf
/bin/lethe drives --watch --json --watch-timeout 90 > /tmp/wf 2>/tmp/watch.err &
pid=$!
while IFS= read -r l; do
    echo "@@W $l@@"
    case "$l" in *'"event":"remove"'*) kill -TERM $pid;; esac
done < /tmp/wf
wait $pid
echo "@@WATCH_EXIT rc=$?@@"
echo "@@WATCHERR $(tr '\n' ' ' < /tmp/watch.err)@@"
"#;

fn drive_by_serial<'a>(list: &'a [Value], serial: &str) -> &'a Value {
    list.iter()
        .find(|d| d["serial"] == serial)
        .unwrap_or_else(|| {
            panic!(
                "no drive with serial {serial} in `lethe drives --json`: {}",
                serde_json::to_string_pretty(list).unwrap_or_default()
            )
        })
}

fn check(d: &Value, transport: &str, model: &str) {
    assert_eq!(d["transport"], transport, "transport of {d}");
    assert_eq!(d["model"], model, "model of {d}");
    assert_eq!(
        d["protected"], false,
        "an emulated scratch drive is not protected: {d}"
    );
    assert!(
        d["size_bytes"].as_u64().is_some_and(|s| s > 0),
        "size of {d}"
    );
}

#[test]
fn qemu_drives_list_and_hotplug() {
    let t0 = Instant::now();
    let Some(b) = GuestBuilder::new("qemu_drives_list_and_hotplug") else {
        return;
    };
    let mut g = b
        .binary("/bin/lethe", Path::new(env!("CARGO_BIN_EXE_lethe")))
        .nvme("nvme", &DiskSpec::new(NVME_SERIAL, 64 << 20))
        .sata(
            "sata",
            &DiskSpec::new(SATA_SERIAL, 32 << 20).model(SATA_MODEL),
        )
        .usb("usb", &DiskSpec::new(USB_SERIAL, 16 << 20))
        .script(SCRIPT)
        .boot()
        .unwrap_or_else(|e| panic!("boot: {e}"));
    let secs = Duration::from_secs;

    let ready = g
        .wait_marker("READY", secs(90))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("guest ready at {:.1} s: {ready}", g.elapsed());
    assert!(
        ready.contains("disks=3"),
        "the guest must see 3 disks: {ready}"
    );

    // 1. The listing at boot.
    let json = g
        .wait_marker("LISTJSON", secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let console = g.console();
    let rc = markers(&console, "LIST").pop().unwrap_or_default();
    assert_eq!(
        rc,
        "rc=0",
        "`lethe drives --json` failed in the guest: {:?}",
        markers(&console, "LISTERR")
    );
    let list: Vec<Value> = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("`lethe drives --json` is not a JSON array ({e}): {json}"));
    let names: Vec<String> = list
        .iter()
        .map(|d| format!("{}({}, {})", d["name"], d["transport"], d["serial"]))
        .collect();
    eprintln!("listed at {:.1} s: {}", g.elapsed(), names.join(" "));
    check(
        drive_by_serial(&list, NVME_SERIAL),
        "nvme",
        "QEMU NVMe Ctrl",
    );
    check(drive_by_serial(&list, SATA_SERIAL), "sata", SATA_MODEL);
    let usb = drive_by_serial(&list, USB_SERIAL);
    check(usb, "usb", "QEMU HARDDISK");
    assert_eq!(drive_by_serial(&list, NVME_SERIAL)["size_bytes"], 64 << 20);
    assert_eq!(drive_by_serial(&list, SATA_SERIAL)["size_bytes"], 32 << 20);
    assert_eq!(usb["size_bytes"], 16 << 20);

    // 1b. Drive health, read-only.
    let json = g
        .wait_marker("HEALTHJSON", secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let list: Vec<Value> = serde_json::from_str(&json).unwrap_or_else(|e| {
        panic!("`lethe drives --json --health` is not a JSON array ({e}): {json}")
    });
    let sata = drive_by_serial(&list, SATA_SERIAL);
    assert_eq!(sata["health"]["source"], "ata_smart", "{sata}");
    assert_eq!(sata["health"]["assessment"], "passed", "{sata}");
    assert!(sata["health"]["power_on_hours"].is_u64(), "{sata}");
    let nvme = drive_by_serial(&list, NVME_SERIAL);
    assert_eq!(nvme["health"]["source"], "nvme_smart_log", "{nvme}");
    assert_eq!(nvme["health"]["assessment"], "passed", "{nvme}");
    assert!(nvme["health"]["percentage_used"].is_u64(), "{nvme}");
    let usb = drive_by_serial(&list, USB_SERIAL);
    assert!(
        usb["health"].is_null() && usb["health_error"].is_string(),
        "{usb}"
    );
    eprintln!(
        "health at {:.1} s: sata {} / nvme {}",
        g.elapsed(),
        sata["health"],
        nvme["health"]
    );

    // 2. Hot-plug while `--watch` runs.
    let watch = |body: &str| serde_json::from_str::<Value>(body).ok();
    g.wait_for("W", secs(60), |b| {
        watch(b).is_some_and(|v| v["event"] == "watching")
    })
    .unwrap_or_else(|e| panic!("the watcher never started: {e}"));
    let present = markers(&g.console(), "W")
        .iter()
        .filter_map(|b| watch(b))
        .filter(|v| v["event"] == "present")
        .count();
    assert_eq!(present, 3, "--watch lists the 3 drives first");
    let plugged = Instant::now();
    let hot_file = g
        .usb_attach("hot", &DiskSpec::new(HOT_SERIAL, 8 << 20))
        .unwrap_or_else(|e| panic!("device_add: {e}"));
    let add = g
        .wait_for("W", secs(30), |b| {
            watch(b).is_some_and(|v| v["event"] == "add")
        })
        .unwrap_or_else(|e| panic!("no add event for the hot-plugged stick: {e}"));
    eprintln!("add event after {:.1} s", plugged.elapsed().as_secs_f64());
    let add: Value = serde_json::from_str(&add).unwrap_or_else(|e| panic!("{e}"));
    let dev = &add["device"];
    assert_eq!(
        dev["serial"], HOT_SERIAL,
        "the add event names the new stick: {add}"
    );
    check(dev, "usb", "QEMU HARDDISK");
    assert_eq!(dev["size_bytes"], 8 << 20, "{add}");
    let hot_path = dev["path"].as_str().unwrap_or_default().to_string();
    assert!(hot_path.starts_with("/dev/sd"), "{add}");
    assert!(hot_file.exists());

    let unplugged = Instant::now();
    g.usb_detach("hot")
        .unwrap_or_else(|e| panic!("device_del: {e}"));
    let rm = g
        .wait_for("W", secs(30), |b| {
            watch(b).is_some_and(|v| v["event"] == "remove")
        })
        .unwrap_or_else(|e| panic!("no remove event after device_del: {e}"));
    eprintln!(
        "remove event after {:.1} s",
        unplugged.elapsed().as_secs_f64()
    );
    let rm: Value = serde_json::from_str(&rm).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rm["path"], hot_path.as_str(), "{rm}");
    assert_eq!(rm["serial"], HOT_SERIAL, "{rm}");

    // 3. SIGTERM ends the watcher cleanly, and nothing else happened.
    let exit = g
        .wait_marker("WATCH_EXIT", secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let console = g.console();
    assert_eq!(
        exit,
        "rc=0",
        "--watch must exit 0 on SIGTERM; stderr: {:?}",
        markers(&console, "WATCHERR")
    );
    let events: Vec<String> = markers(&console, "W")
        .iter()
        .filter_map(|b| watch(b))
        .map(|v| v["event"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        events,
        ["present", "present", "present", "watching", "add", "remove"],
        "the whole --watch output"
    );
    g.wait_exit(secs(30)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.script_rc(), Some(0));
    eprintln!("total {:.1} s", t0.elapsed().as_secs_f64());
}
