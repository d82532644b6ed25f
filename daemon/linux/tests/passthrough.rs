//! Pass-through against real kernel devices this test creates.
//!
//! - loop devices (root, `losetup`): SG_IO and NVMe admin must fail as
//!   `Unsupported`, never as a device answer;
//! - a QEMU guest (TCG) with an emulated NVMe drive and AHCI disk over temp
//!   files: Identify Controller, Get Log Page, NVME_IOCTL_ID, READ CAPACITY(16),
//!   ATA IDENTIFY and SANITIZE STATUS through ATA PASS-THROUGH(16); and, in the
//!   same boot, a `scsi_debug` disk (the guest kernel's module; many host
//!   kernels, this CI host's included, do not ship it): TEST UNIT READY,
//!   INQUIRY, READ CAPACITY(16) and an unknown opcode through SG_IO. Read-only.
//!
//! Each test prints `SKIPPED:` and returns when its prerequisite is missing.

use lethe_cmds::scsi::{self, Sense};
use lethe_cmds::{ata, nvme};
use lethe_hw_tests::qemu_guest::{DiskSpec, GuestBuilder};
use lethe_linux::passthrough::{nvme as pt_nvme, sgio, PassthroughError};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A loop device over a temp file; detached on drop.
struct LoopDev {
    dev: PathBuf,
    _backing: tempfile::NamedTempFile,
}

impl LoopDev {
    fn new() -> Option<Self> {
        let backing = tempfile::NamedTempFile::new().ok()?;
        backing.as_file().set_len(4 << 20).ok()?;
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(backing.path())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "losetup failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        let dev = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Some(LoopDev {
            dev,
            _backing: backing,
        })
    }

    fn open(&self) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.dev)
            .unwrap_or_else(|e| panic!("{}: {e}", self.dev.display()))
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

fn loop_or_skip(test: &str) -> Option<LoopDev> {
    if !is_root() {
        eprintln!("SKIPPED: {test}: needs root for losetup");
        return None;
    }
    let l = LoopDev::new();
    if l.is_none() {
        eprintln!("SKIPPED: {test}: no loop device available");
    }
    l
}

#[test]
fn sg_io_on_a_loop_device_is_unsupported() {
    let Some(l) = loop_or_skip("sg_io_on_a_loop_device_is_unsupported") else {
        return;
    };
    let f = l.open();
    let r = sgio::scsi(&f, &scsi::test_unit_ready(), &mut []);
    assert!(matches!(r, Err(PassthroughError::Unsupported(_))), "{r:?}");
    let mut buf = [0u8; 512];
    let r = sgio::ata(&f, &ata::identify_device(), &mut buf);
    assert!(matches!(r, Err(PassthroughError::Unsupported(_))), "{r:?}");
    assert_eq!(buf, [0u8; 512], "nothing may be written on failure");
}

#[test]
fn nvme_admin_on_a_loop_device_is_unsupported() {
    let Some(l) = loop_or_skip("nvme_admin_on_a_loop_device_is_unsupported") else {
        return;
    };
    let f = l.open();
    let mut buf = vec![0u8; 4096];
    let r = pt_nvme::admin(&f, &nvme::identify_controller(), &mut buf);
    assert!(matches!(r, Err(PassthroughError::Unsupported(_))), "{r:?}");
    let r = pt_nvme::namespace_id(&f);
    assert!(matches!(r, Err(PassthroughError::Unsupported(_))), "{r:?}");
}

#[test]
fn a_regular_file_is_unsupported_too() {
    // No root needed: a file's ioctl path rejects both requests with ENOTTY.
    let t = tempfile::tempfile().unwrap_or_else(|e| panic!("{e}"));
    let r = sgio::scsi(&t, &scsi::test_unit_ready(), &mut []);
    assert!(matches!(r, Err(PassthroughError::Unsupported(_))), "{r:?}");
    let r = pt_nvme::admin(&t, &nvme::identify_controller(), &mut [0u8; 4096]);
    assert!(matches!(r, Err(PassthroughError::Unsupported(_))), "{r:?}");
}

/// The first `block/<name>` below the scsi_debug driver's adapters, as /dev/<name>.
fn scsi_debug_disk(driver: &Path) -> Option<PathBuf> {
    let mut stack = vec![driver.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        seen += 1;
        if seen > 200 {
            return None;
        }
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if d.file_name().is_some_and(|n| n == "block") {
                return Some(Path::new("/dev").join(name));
            }
            let is_hier = name.starts_with("adapter")
                || name.starts_with("host")
                || name.starts_with("target")
                || name == "block"
                || name.chars().next().is_some_and(|c| c.is_ascii_digit());
            if is_hier && e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    None
}

/// Guest half: SCSI commands through SG_IO on the guest kernel's
/// `scsi_debug` disk (loaded at boot by the guest's init). Read-only.
#[test]
fn guest_side_scsi_debug() {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if !cmdline.split_whitespace().any(|w| w == GUEST_FLAG) {
        return; // Host run: this half only runs inside the QEMU guest.
    }
    let disk = scsi_debug_disk(Path::new("/sys/bus/pseudo/drivers/scsi_debug"))
        .unwrap_or_else(|| panic!("the guest has no scsi_debug disk"));
    let f = File::open(&disk).unwrap_or_else(|e| panic!("{}: {e}", disk.display()));
    // The first command after attach may see UNIT ATTENTION (power on / reset).
    let mut tur = sgio::scsi(&f, &scsi::test_unit_ready(), &mut []);
    if let Ok(o) = &tur {
        if o.is_check_condition() {
            tur = sgio::scsi(&f, &scsi::test_unit_ready(), &mut []);
        }
    }
    let tur = tur.unwrap_or_else(|e| panic!("TUR: {e}"));
    let mut inq = [0u8; 96];
    let o = sgio::scsi(&f, &scsi::inquiry(None, 96), &mut inq).unwrap_or_else(|e| panic!("{e}"));
    assert!(o.is_good(), "{o:?}");
    let i =
        scsi::decode_inquiry(&inq[..o.transferred(96) as usize]).unwrap_or_else(|e| panic!("{e}"));
    let mut cap = [0u8; 32];
    let c = sgio::scsi(&f, &scsi::read_capacity_16(), &mut cap).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.is_good(), "{c:?}");
    let bytes = scsi::decode_read_capacity_16(&cap)
        .unwrap_or_else(|e| panic!("{e}"))
        .bytes();
    // An opcode scsi_debug does not implement is a device answer, not an error.
    let mut bogus = scsi::test_unit_ready();
    bogus.cdb[0] = 0xFF;
    let b = sgio::scsi(&f, &bogus, &mut []).unwrap_or_else(|e| panic!("{e}"));
    let sense: Option<Sense> = b.decode_sense().and_then(Result::ok);
    println!(
        "@@SD tur_good={} product={} bytes={bytes} bogus_check={} bogus_key={:?}@@",
        tur.is_good(),
        i.product,
        b.is_check_condition(),
        sense.map(|s| s.key),
    );
}

// ---------------------------------------------------------------------------
// QEMU tier: Identify Controller through `admin()` on an emulated NVMe drive.
//
// Through `lethe_hw_tests::qemu_guest`, the host side packs this very test
// binary, its shared libraries, a static busybox and the NVMe modules into an
// initramfs, boots Debian's kernel under `qemu-system-x86_64` (TCG) with
// `-device nvme` over a temp raw file, and the guest runs `guest_side_passthrough` below. Needs:
//   LETHE_QEMU_KERNEL_ROOT  a directory with boot/vmlinuz-<kver> and
//                           lib/modules/<kver> (e.g. `dpkg-deb -x` of
//                           linux-image-6.1.0-*-amd64),
//   LETHE_BUSYBOX           a static busybox (default /bin/busybox),
//   qemu-system-x86_64      on PATH.
// ---------------------------------------------------------------------------

/// Guest-side marker on the kernel command line: the guest test refuses to
/// run anywhere else, so it can never touch a host NVMe drive.
const GUEST_FLAG: &str = "lethe.ptguest=1";
const NVME_SERIAL: &str = "LETHEPT0001";
const SATA_SERIAL: &str = "LETHESATA01";

#[test]
fn guest_side_passthrough() {
    use lethe_linux::passthrough::topology;
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if !cmdline.split_whitespace().any(|w| w == GUEST_FLAG) {
        return; // Host run: this half only runs inside the QEMU guest.
    }
    let sys = Path::new("/sys");
    // The namespace's name is not predictable (the multipath head takes the
    // subsystem's instance: nvme0n1 or nvme1n1), so find it: the block device
    // with a /dev node whose sysfs walk reaches an NVMe controller. Hidden
    // per-path disks (nvmeXcYnZ) have no node.
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/block")
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| Path::new("/dev").join(n).exists())
        .filter(|n| topology::controllers_for_namespace(sys, n).is_ok())
        .collect();
    names.sort();
    let ns_name = names
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no NVMe namespace"));
    let ctrl = topology::controller_for_namespace(sys, &ns_name)
        .unwrap_or_else(|e| panic!("topology: {e}"));
    let f = topology::open_controller(&ctrl, Path::new("/dev"))
        .unwrap_or_else(|e| panic!("open {}: {e}", ctrl.name));
    let mut buf = vec![0u8; 4096];
    let c = pt_nvme::admin(&f, &nvme::identify_controller(), &mut buf)
        .unwrap_or_else(|e| panic!("identify: {e}"));
    assert!(c.is_success(), "identify status {:#x}", c.status);
    let id = nvme::IdentifyController::decode(&buf).unwrap_or_else(|e| panic!("{e}"));
    // A device refusal is an Ok completion with a status, not an Err:
    // QEMU has no sanitize log (Invalid Field).
    let log = nvme::get_log_page(nvme::LID_SANITIZE_STATUS, nvme::SANITIZE_LOG_LEN)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut lbuf = vec![0u8; 512];
    let lc = pt_nvme::admin(&f, &log, &mut lbuf).unwrap_or_else(|e| panic!("log: {e}"));
    let ns = File::open(Path::new("/dev").join(&ns_name)).unwrap_or_else(|e| panic!("{e}"));
    let nsid = pt_nvme::namespace_id(&ns).unwrap_or_else(|e| panic!("{e}"));
    let sysfs_nsid = topology::namespace_id(sys, &ns_name).unwrap_or_else(|e| panic!("{e}"));
    // Admin commands on a controller handle have no namespace: NVME_IOCTL_ID refuses.
    let ctrl_id = pt_nvme::namespace_id(&f);
    let ctrls: Vec<String> = topology::controllers_for_namespace(sys, &ns_name)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|c| c.name)
        .collect();
    let ctrls = ctrls.join(",");
    let multipath = std::fs::canonicalize(sys.join("class/block").join(&ns_name).join("device"))
        .is_ok_and(|p| p.to_string_lossy().contains("nvme-subsystem"));

    // The AHCI disk: SCSI through libata's SAT, and ATA wrapped in ATA PASS-THROUGH(16).
    // The guest's SCSI disks are the emulated AHCI one (vendor "ATA", from
    // libata) and the scsi_debug one; find the first in sysfs.
    let sd_name = std::fs::read_dir(sys.join("block"))
        .unwrap_or_else(|e| panic!("guest sysfs: {e}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| {
            n.starts_with("sd")
                && std::fs::read_to_string(sys.join("block").join(n).join("device/vendor"))
                    .is_ok_and(|v| v.trim() == "ATA")
        })
        .expect("the guest has an AHCI disk");
    let sd_path = format!("/dev/{sd_name}");
    let sda = File::open(&sd_path).unwrap_or_else(|e| panic!("{sd_path}: {e}"));
    let mut cap = [0u8; 32];
    let o = sgio::scsi(&sda, &scsi::read_capacity_16(), &mut cap)
        .unwrap_or_else(|e| panic!("read capacity: {e}"));
    assert!(o.is_good(), "{o:?}");
    let sda_bytes = scsi::decode_read_capacity_16(&cap)
        .unwrap_or_else(|e| panic!("{e}"))
        .bytes();
    let mut ident = [0u8; 512];
    let a = sgio::ata(&sda, &ata::identify_device(), &mut ident)
        .unwrap_or_else(|e| panic!("ata identify: {e}"));
    assert!(!a.ata.failed(), "{a:?}");
    let idd = ata::IdentifyDevice::decode(&ident).unwrap_or_else(|e| panic!("{e}"));
    // QEMU's AHCI disk has no SANITIZE feature set: the drive aborts, and that
    // is a device answer (registers with ERR/ABRT), not a transport error.
    let st = sgio::ata(&sda, &ata::sanitize_status(false), &mut [])
        .unwrap_or_else(|e| panic!("sanitize status: {e}"));
    // The subsystem's namespaces: one, shared by both controllers.
    let subsys: Vec<String> = topology::subsystem_namespaces(sys, &ns_name)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|n| format!("{}:{}", n.name, n.nsid))
        .collect();
    println!(
        "@@PT ns={ns_name} namespaces={} ctrl={} serial={} model={} oacs={:#x} nsid={} sysfs_nsid={} log_status={:#x} \
         ctrl_id_unsupported={} multipath={multipath} ctrls={ctrls} subsys_ns={} sda_bytes={sda_bytes} \
         ata_serial={} identify_scsi_status={:#x} identify_regs={} sanitize_abort={} sanitize_failed={}@@",
        names.len(),
        ctrl.name,
        id.serial,
        id.model.replace(' ', "_"),
        id.oacs,
        nsid,
        sysfs_nsid,
        lc.status,
        ctrl_id
            .as_ref()
            .is_err_and(PassthroughError::is_unsupported),
        subsys.join(","),
        idd.serial,
        a.scsi.status,
        a.ata.registers.is_some(),
        st.ata.registers.is_some_and(|r| r.is_abort()),
        st.ata.failed(),
    );
    println!(
        "@@RAW identify status={:#x} sense={:02x?} sanitize status={:#x} sense={:02x?}@@",
        a.scsi.status, a.scsi.sense, st.scsi.status, st.scsi.sense
    );
}

#[test]
fn qemu_nvme_ahci_and_scsi_debug_through_passthrough() {
    let Some(mut b) = GuestBuilder::new("qemu_nvme_ahci_and_scsi_debug_through_passthrough") else {
        return;
    };
    let disk = b.backing_file("nvme", &DiskSpec::new(NVME_SERIAL, 64 << 20));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut guest = b
        .binary("/bin/passthrough", &exe)
        // crc64_rocksoft_generic is only a soft dependency of crc64_rocksoft.
        .modules(&[
            "crc64_rocksoft_generic",
            "nvme",
            "ahci",
            "sd_mod",
            "scsi_debug",
        ])
        .kernel_arg(GUEST_FLAG)
        .qemu_args(&[
            "-drive",
            &format!("file={},if=none,id=n0,format=raw", disk.display()),
            // Two controllers sharing namespace 1 in one NVM subsystem: the
            // kernel builds the multipath layout the topology walk must follow.
            "-device",
            "nvme-subsys,id=subsys0,nqn=lethe-passthrough",
            "-device",
            &format!("nvme,id=nvme0,serial={NVME_SERIAL},subsys=subsys0"),
            "-device",
            &format!("nvme,id=nvme1,serial={NVME_SERIAL},subsys=subsys0"),
            "-device",
            "nvme-ns,drive=n0,bus=nvme0,nsid=1,shared=on",
        ])
        .extra_disks(1)
        .sata("sata", &DiskSpec::new(SATA_SERIAL, 32 << 20))
        .script(
            "/bin/passthrough --exact guest_side_passthrough --nocapture --test-threads=1\n\
             echo \"@@RC=$?@@\"\n\
             /bin/passthrough --exact guest_side_scsi_debug --nocapture --test-threads=1\n\
             echo \"@@SDRC=$?@@\"\n",
        )
        .boot()
        .unwrap_or_else(|e| panic!("boot: {e}"));
    let out = guest
        .wait_exit(std::time::Duration::from_secs(240))
        .unwrap_or_else(|e| panic!("{e}"));
    let line = out
        .lines()
        .find_map(|l| l.split("@@PT ").nth(1))
        .and_then(|l| l.split("@@").next())
        .unwrap_or_else(|| panic!("guest produced no result; console:\n{out}"));
    let kv: std::collections::BTreeMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect();
    eprintln!("guest: {line}");
    for raw in out.lines().filter(|l| l.contains("@@RAW")) {
        eprintln!("guest: {raw}");
    }
    assert!(
        out.contains("@@RC=0@@"),
        "guest test failed; console:\n{out}"
    );
    assert_eq!(kv.get("serial"), Some(&NVME_SERIAL));
    assert!(
        kv.get("model").is_some_and(|m| m.starts_with("QEMU_NVMe")),
        "{line}"
    );
    assert_eq!(kv.get("nsid"), Some(&"1"));
    assert_eq!(kv.get("sysfs_nsid"), Some(&"1"));
    assert_eq!(kv.get("namespaces"), Some(&"1"), "{line}");
    assert_eq!(kv.get("ctrl"), Some(&"nvme0"));
    assert_eq!(kv.get("multipath"), Some(&"true"), "{line}");
    assert_eq!(kv.get("ctrls"), Some(&"nvme0,nvme1"), "{line}");
    // Invalid Field in Command (SCT 0, SC 2), possibly with DNR (bit 14).
    let log_status = kv
        .get("log_status")
        .and_then(|s| u16::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(log_status & 0x7FF, nvme::sc::INVALID_FIELD, "{line}");
    assert_eq!(kv.get("ctrl_id_unsupported"), Some(&"true"));
    assert_eq!(kv.get("sda_bytes"), Some(&"33554432"));
    assert_eq!(kv.get("ata_serial"), Some(&SATA_SERIAL));
    // IDENTIFY goes without CK_COND (a data command): GOOD, no sense, no
    // registers; libata answered ABORTED COMMAND/DRQ when CK_COND was set.
    assert_eq!(kv.get("identify_scsi_status"), Some(&"0x0"), "{line}");
    assert_eq!(kv.get("identify_regs"), Some(&"false"), "{line}");
    assert_eq!(
        kv.get("subsys_ns"),
        Some(&format!("{}:1", kv["ns"]).as_str()),
        "{line}"
    );
    assert_eq!(kv.get("sanitize_abort"), Some(&"true"), "{line}");
    assert_eq!(kv.get("sanitize_failed"), Some(&"true"), "{line}");

    // The scsi_debug disk, in the same boot.
    assert!(
        out.contains("@@SDRC=0@@"),
        "guest scsi_debug test failed; console:\n{out}"
    );
    let sd = out
        .lines()
        .find_map(|l| l.split("@@SD ").nth(1))
        .and_then(|l| l.split("@@").next())
        .unwrap_or_else(|| panic!("no scsi_debug result; console:\n{out}"));
    eprintln!("guest: {sd}");
    let kv: std::collections::BTreeMap<&str, &str> = sd
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect();
    assert_eq!(kv.get("tur_good"), Some(&"true"), "{sd}");
    assert_eq!(kv.get("product"), Some(&"scsi_debug"), "{sd}");
    assert_eq!(kv.get("bytes"), Some(&"8388608"), "{sd}");
    assert_eq!(kv.get("bogus_check"), Some(&"true"), "{sd}");
    assert_eq!(kv.get("bogus_key"), Some(&"Some(IllegalRequest)"), "{sd}");
}
